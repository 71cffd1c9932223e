"""F-SIM's identity network (IResNet, ArcFace loss), its training, verification AUC and the evaluate-frames column."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from talkinghead.errors import TalkingHeadError
from talkinghead.evaluation.identity import (
    F_SIM,
    F_SIM_TRAINED,
    IdentityNet,
    IdentityNetConfig,
    arcface_logits,
    colour_histogram,
    f_sim,
    grey_copy,
    load_identity_net,
    load_identity_network,
    pair_auc,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def _bn(prefix: str) -> set[str]:
    return {f"{prefix}.{k}" for k in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")}


def test_parameter_names_are_arcface_torchs_iresnet() -> None:
    net = IdentityNet(IdentityNetConfig.preset("tiny"))
    keys = set(net.state_dict())
    expected = {"conv1.weight", "prelu.weight", "fc.weight", "fc.bias"} | _bn("bn1") | _bn("bn2") | _bn("features")
    for stage in range(1, 5):
        block = f"layer{stage}.0"
        expected |= {f"{block}.conv1.weight", f"{block}.conv2.weight", f"{block}.prelu.weight",
                     f"{block}.downsample.0.weight"} | _bn(f"{block}.bn1") | _bn(f"{block}.bn2") | _bn(
            f"{block}.bn3") | _bn(f"{block}.downsample.1")
    assert keys == expected
    # IResNet-50: 3 + 4 + 14 + 3 blocks, a 512 x 7 x 7 map into the 512-d embedding at 112 px
    paper = IdentityNetConfig.preset("paper")
    assert paper.layers == (3, 4, 14, 3) and paper.image_size == 112 and paper.embedding_dim == 512
    with torch.device("meta"):
        big = IdentityNet(paper)
    assert tuple(big.fc.weight.shape) == (512, 512 * 7 * 7)
    assert "layer3.13.bn3.running_var" in big.state_dict() and "layer3.14.conv1.weight" not in big.state_dict()


def test_embeddings_are_unit_vectors_of_the_centre_square() -> None:
    torch.manual_seed(0)
    net = IdentityNet(IdentityNetConfig.preset("tiny")).eval()
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (3, 48, 48, 3), dtype=np.uint8)
    e = net.embed(frames)
    assert e.shape == (3, 16) and np.allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-5)
    # only the centre square (0.6 of the side) is seen: the border does not change the embedding
    framed = frames.copy()
    framed[:, :5] = 0
    framed[:, :, -5:] = 255
    assert np.allclose(net.embed(framed), e, atol=1e-6)
    assert f_sim(e, e[:1])[0] == pytest.approx(1.0)


def test_published_weights_load_from_a_folder(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    torch.manual_seed(1)
    config = IdentityNetConfig.preset("tiny")
    net = IdentityNet(config).eval()
    for m in net.modules():   # BN statistics away from their defaults, so a wrong load shows
        if isinstance(m, torch.nn.BatchNorm2d | torch.nn.BatchNorm1d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    state = {k: v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    folder = tmp_path / "arcface"
    folder.mkdir()
    save_file(state, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(json.dumps(config.to_dict()))
    loaded = load_identity_net(folder)
    frames = np.random.default_rng(0).integers(0, 256, (2, 40, 40, 3), dtype=np.uint8)
    assert np.allclose(loaded.embed(frames), net.embed(frames), atol=1e-6)
    column = load_identity_network(folder)
    assert column is not None and column.name == F_SIM and "face-recognition weights" in column.note
    save_file({k: v for k, v in state.items() if k != "fc.bias"}, str(folder / "model.safetensors"))
    with pytest.raises(TalkingHeadError, match="missing"):
        load_identity_net(folder)
    with pytest.raises(TalkingHeadError, match="does not exist"):
        load_identity_net(tmp_path / "nowhere")


def test_arcface_logits_add_the_angular_margin_to_the_true_class_only() -> None:
    centres = torch.eye(3)
    angle = math.radians(60)
    embedding = torch.tensor([[math.cos(angle), math.sin(angle), 0.0]])   # 60 degrees from class 0, 30 from class 1
    labels = torch.tensor([0])
    logits = arcface_logits(embedding, centres, labels, scale=10.0, margin=0.3)
    assert logits[0, 0].item() == pytest.approx(10 * math.cos(angle + 0.3), abs=1e-5)
    assert logits[0, 1].item() == pytest.approx(10 * math.cos(math.radians(30)), abs=1e-5)
    assert logits[0, 2].item() == pytest.approx(0.0, abs=1e-5)
    plain = arcface_logits(embedding, centres, labels, scale=10.0, margin=0.0)
    assert plain[0, 0].item() == pytest.approx(10 * math.cos(angle), abs=1e-5)
    # past pi - m the logit keeps falling (cos theta - m sin m) instead of turning back up
    opposite = arcface_logits(torch.tensor([[-1.0, 0.0, 0.0]]), centres, labels, scale=1.0, margin=0.3)
    assert opposite[0, 0].item() == pytest.approx(-1 - 0.3 * math.sin(0.3), abs=1e-4)


def test_pair_auc_matches_scikit_learn() -> None:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 40)
    embeddings = rng.normal(size=(40, 8)) + np.eye(8)[labels] * 1.5
    groups = np.arange(40) // 2
    e = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    i, j = np.triu_indices(40, 1)
    keep = groups[i] != groups[j]
    reference = roc_auc_score(labels[i][keep] == labels[j][keep], (e[i] * e[j]).sum(1)[keep])
    assert pair_auc(embeddings, labels, groups) == pytest.approx(reference, abs=1e-12)
    other = rng.normal(size=(40, 8)) + np.eye(8)[labels]
    o = other / np.linalg.norm(other, axis=1, keepdims=True)
    a, b = np.nonzero(~np.eye(40, dtype=bool))
    cross = roc_auc_score(labels[a] == labels[b], (e[a] * o[b]).sum(1))
    assert pair_auc(embeddings, labels, other=other) == pytest.approx(cross, abs=1e-12)
    with pytest.raises(TalkingHeadError, match="same and of different"):
        pair_auc(embeddings, np.zeros(40))


def test_colour_histogram_and_grey_copy() -> None:
    frames = np.zeros((2, 20, 20, 3), np.uint8)
    frames[0, ..., 0] = 255                                  # red
    frames[1, ..., 2] = 255                                  # blue
    h = colour_histogram(frames, 1.0, bins=2)
    assert h.shape == (2, 8) and np.allclose(np.linalg.norm(h, axis=1), 1.0) and float(h[0] @ h[1]) == 0.0
    grey = grey_copy(frames, gamma=1.0)
    assert grey.shape == frames.shape and (grey[..., 0] == grey[..., 2]).all()
    assert grey[0, 0, 0, 0] == round(0.299 * 255) and grey[1, 0, 0, 0] == round(0.114 * 255)


@pytest.fixture(scope="module")
def two_faces(make_corpus: Callable[..., Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny video corpus of two portraits, both in the train split, each motion clip on both: the astronaut and a
    colour-swapped, mirrored astronaut."""
    from PIL import Image
    from skimage import data

    from talkinghead.data.video.build import VideoCorpusConfig, build_video_corpus

    portraits = tmp_path_factory.mktemp("identity_portraits")
    Image.fromarray(np.ascontiguousarray(data.astronaut()[:, ::-1, ::-1])).save(portraits / "other.png")
    out = tmp_path_factory.mktemp("identity") / "corpus"
    config = VideoCorpusConfig.preset("tiny", val_fraction=0, test_fraction=0, portraits_per_clip=2)
    build_video_corpus(make_corpus("tiny", "identity_motion"), portraits, out, config)
    return out


def test_training_separates_the_identities(two_faces: Path, tmp_path: Path) -> None:
    from talkinghead.data.video.format import VideoDataset
    from talkinghead.evaluation.identity_training import identity_frames
    from talkinghead.training.run import train

    data = VideoDataset(two_faces)
    names = {data.meta(i).identity for s in ("train", "val", "test") for i in data.ids(s)}
    assert len({data.meta(i).identity for i in data.ids("train")}) >= 2, names
    summary = train("judge.identity", two_faces, tmp_path / "id", "tiny", steps=40, seed=0)
    assert summary["last_loss"] < 0.5 * summary["first_loss"]
    net = IdentityNet.from_pretrained(tmp_path / "id")
    report = json.loads((tmp_path / "id" / "config.json").read_text())["extra"]["report"]
    assert net.config.num_classes == len(report["identities"]) == 2
    sample = identity_frames([data], ("train",), 4)
    assert pair_auc(net.embed(sample.frames), sample.labels) > 0.9
    column = load_identity_network(tmp_path / "id")
    assert column is not None and column.name == F_SIM_TRAINED and "trained here" in column.note


class _EchoVideoGenerator:
    """A video generator that shows the dataset's own frames of the train clips, in the order evaluate-frames asks for
    them (each clip's audio checked)."""

    kind, name, crop_scale = "video", "echo", 2.0

    def __init__(self, data: object) -> None:
        self.data = data
        self.queue = list(data.ids("train"))  # type: ignore[attr-defined]

    def crops(self, conditions: object, size: int) -> np.ndarray:
        clip_id = self.queue.pop(0)
        samples = conditions.audio.samples  # type: ignore[attr-defined]
        assert np.array_equal(self.data.clip(clip_id).audio[:len(samples)], samples)  # type: ignore[attr-defined]
        return self.data.frames(clip_id, range(conditions.num_frames))  # type: ignore[attr-defined]


def test_f_sim_columns_in_evaluate_frames(two_faces: Path, tmp_path: Path) -> None:
    from talkinghead.data.video.format import VideoDataset
    from talkinghead.evaluation.frames import FrameRow, evaluate_frames
    from talkinghead.training.run import train

    data = VideoDataset(two_faces)
    train("judge.identity", two_faces, tmp_path / "id", "tiny", steps=40, seed=0)
    rows = ["Ground truth=dataset", "Static=static",
            FrameRow("Echo, emotion by video", _EchoVideoGenerator(data), "self", (("emotion", "video"),))]
    report = evaluate_frames(two_faces, rows, None, split="train", max_frames=10, sync_judges={},
                             face_recognition=tmp_path / "id")
    table = report.tables[0]
    results = table.results
    assert F_SIM_TRAINED in table.columns and "F-SIM ref. person (id net)" in table.columns
    # the static row is the reference crop itself; the dataset's frames show the same person moving
    assert results["Static"][F_SIM_TRAINED] == pytest.approx(1.0, abs=1e-5)
    assert 0.5 < results["Ground truth"][F_SIM_TRAINED] < 1.0
    echo = results["Echo, emotion by video"]
    assert echo[F_SIM_TRAINED] == pytest.approx(results["Ground truth"][F_SIM_TRAINED], abs=1e-5)
    # the echo shows the portrait's person, not the reference video's: closer to the portrait
    assert echo["F-SIM ref. person (id net)"] < echo[F_SIM_TRAINED]
    assert "F-SIM ref. person" not in results["Ground truth"] and "F-SIM" not in table.columns
    assert any("trained here" in n for n in table.notes + report.notes)

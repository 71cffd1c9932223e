"""FID's Inception-v3 and FVD's I3D: published parameter names and sizes, local loading (safetensors only),
FID/FVD behaviour, and the FID/FVD columns of `talkinghead evaluate`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from talkinghead.cli import main
from talkinghead.errors import TalkingHeadError
from talkinghead.evaluation.frechet import fid, fvd
from talkinghead.evaluation.i3d import I3DConfig, InceptionI3D, Unit3D, load_i3d, same_padding, split_clips
from talkinghead.evaluation.inception import FIDInceptionV3, InceptionConfig, load_inception

sys.path.insert(0, str(Path(__file__).parent))
from sync_helpers import write_dataset  # noqa: E402

# A hand-written sample of the published state dicts (pytorch-fid's pt_inception-2015-12-05 and
# pytorch-i3d's InceptionI3d): names and shapes.
INCEPTION_KEYS = {
    "Conv2d_1a_3x3.conv.weight": (32, 3, 3, 3),
    "Conv2d_1a_3x3.bn.running_mean": (32,),
    "Conv2d_2b_3x3.conv.weight": (64, 32, 3, 3),
    "Conv2d_3b_1x1.conv.weight": (80, 64, 1, 1),
    "Conv2d_4a_3x3.bn.running_var": (192,),
    "Mixed_5b.branch1x1.conv.weight": (64, 192, 1, 1),
    "Mixed_5b.branch_pool.conv.weight": (32, 192, 1, 1),
    "Mixed_5d.branch5x5_2.conv.weight": (64, 48, 5, 5),
    "Mixed_6a.branch3x3.conv.weight": (384, 288, 3, 3),
    "Mixed_6b.branch7x7_2.conv.weight": (128, 128, 1, 7),
    "Mixed_6e.branch7x7dbl_5.conv.weight": (192, 192, 1, 7),
    "Mixed_7a.branch7x7x3_4.conv.weight": (192, 192, 3, 3),
    "Mixed_7b.branch3x3_2a.conv.weight": (384, 384, 1, 3),
    "Mixed_7c.branch3x3dbl_1.conv.weight": (448, 2048, 1, 1),
    "Mixed_7c.branch_pool.bn.bias": (192,),
    "fc.weight": (1008, 2048),
    "fc.bias": (1008,),
}
I3D_KEYS = {
    "Conv3d_1a_7x7.conv3d.weight": (64, 3, 7, 7, 7),
    "Conv3d_1a_7x7.bn.running_mean": (64,),
    "Conv3d_2b_1x1.conv3d.weight": (64, 64, 1, 1, 1),
    "Conv3d_2c_3x3.conv3d.weight": (192, 64, 3, 3, 3),
    "Mixed_3b.b0.conv3d.weight": (64, 192, 1, 1, 1),
    "Mixed_3b.b1b.conv3d.weight": (128, 96, 3, 3, 3),
    "Mixed_3c.b3b.conv3d.weight": (64, 256, 1, 1, 1),
    "Mixed_4b.b1a.conv3d.weight": (96, 480, 1, 1, 1),
    "Mixed_4b.b2b.conv3d.weight": (48, 16, 3, 3, 3),
    "Mixed_4f.b0.bn.weight": (256,),
    "Mixed_5b.b1a.conv3d.weight": (160, 832, 1, 1, 1),
    "Mixed_5c.b2b.conv3d.weight": (128, 48, 3, 3, 3),
    "Mixed_5c.b3b.bn.running_var": (128,),
    "logits.conv3d.weight": (400, 1024, 1, 1, 1),
    "logits.conv3d.bias": (400,),
}


def _randomise(net: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Calibrate the random network's batch norms on random inputs (cumulative statistics of one
    forward pass in train mode), so activations keep their scale through the depth, features vary
    with the input, and a load that missed the statistics would change them."""
    torch.manual_seed(seed)
    for module in net.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None
    size = net.config.image_size  # type: ignore[union-attr]
    shape = (4, 3, size, size) if isinstance(net, FIDInceptionV3) else (2, 3, 16, size, size)
    net.train()
    with torch.no_grad():
        net(torch.rand(shape) * 2 - 1)
    return net.eval()


def _frames(n: int, seed: int, size: int = 32, shift: float = 0.0) -> np.ndarray:
    """Smooth random RGB frames [n, size, size, 3] uint8 (plus ``shift`` grey levels)."""
    rng = np.random.default_rng(seed)
    low = rng.uniform(40, 200, (n, 4, 4, 3))
    up = np.kron(low, np.ones((1, size // 4, size // 4, 1))) + rng.normal(0, 10, (n, size, size, 3))
    return np.clip(up + shift, 0, 255).astype(np.uint8)


def test_paper_models_have_the_published_names_and_sizes() -> None:
    with torch.device("meta"):
        inception = FIDInceptionV3(InceptionConfig.preset("paper"))
        i3d = InceptionI3D(I3DConfig.preset("paper"))
    for net, keys in ((inception, INCEPTION_KEYS), (i3d, I3D_KEYS)):
        state = net.state_dict()
        for key, shape in keys.items():
            assert key in state, key
            assert tuple(state[key].shape) == shape, key
    assert not any(k.startswith("AuxLogits") for k in inception.state_dict())
    assert not any(k.startswith("logits.bn") for k in i3d.state_dict())
    # torchvision's inception_v3 without AuxLogits (23,834,568 at 1000 classes) + 8 classes x 2049
    assert sum(p.numel() for p in inception.parameters()) == 23_850_960
    # I3D: 12,287,264 up to Mixed_5c, + 1024 x 400 + 400 logits
    assert sum(p.numel() for p in i3d.parameters()) == 12_697_264
    assert inception.feature_dim == 2048 and i3d.feature_dim == 400


def test_same_padding_is_tensorflows() -> None:
    assert same_padding((16, 224, 224), (7, 7, 7), (2, 2, 2)) == (2, 3, 2, 3, 2, 3)   # odd pixel at the end
    assert same_padding((5, 7, 7), (3, 3, 3), (1, 1, 1)) == (1, 1, 1, 1, 1, 1)
    unit = Unit3D(3, 4, (7, 7, 7), (2, 2, 2))
    assert unit(torch.zeros(1, 3, 9, 15, 16)).shape == (1, 4, 5, 8, 8)              # ceil(size / stride)


@pytest.mark.parametrize("kind", ["inception", "i3d"])
def test_save_load_round_trip_gives_identical_features(kind: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    if kind == "inception":
        net: FIDInceptionV3 | InceptionI3D = _randomise(FIDInceptionV3(InceptionConfig.preset("tiny")))
        data, loader = _frames(5, 1), load_inception
    else:
        net = _randomise(InceptionI3D(I3DConfig.preset("tiny")))
        data, loader = _frames(32, 1).reshape(2, 16, 32, 32, 3), load_i3d
    net.save_pretrained(tmp_path / "ckpt")
    loaded = loader(tmp_path / "ckpt")
    expected = net.features(data)
    assert np.array_equal(loaded.features(data), expected)
    np.testing.assert_allclose(loaded.features(data, batch_size=2), expected, rtol=1e-4, atol=1e-5)
    assert expected.std(axis=0).mean() > 1e-3                     # the features depend on the input
    # a user's folder: bare weights (DataParallel prefix, no num_batches_tracked) + a plain config.json
    state = {f"module.{k}": v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    (tmp_path / "user").mkdir()
    save_file(state, str(tmp_path / "user" / "model.safetensors"))
    (tmp_path / "user" / "config.json").write_text(json.dumps(net.config.to_dict()))
    assert np.array_equal(loader(tmp_path / "user").features(data), expected)
    # without config.json the paper size is built, and the tiny weights do not fit it
    (tmp_path / "user" / "config.json").unlink()
    with pytest.raises(TalkingHeadError, match="of another shape") as err:
        loader(tmp_path / "user")
    assert "\n" not in str(err.value)


def test_loader_refuses_pickles_and_bad_folders(tmp_path: Path) -> None:
    with pytest.raises(TalkingHeadError, match="does not exist"):
        load_inception(tmp_path / "missing")
    (tmp_path / "pkl").mkdir()
    (tmp_path / "pkl" / "pt_inception-2015-12-05.pth").write_bytes(b"\x80\x02not unpickled")
    for path in (tmp_path / "pkl", tmp_path / "pkl" / "pt_inception-2015-12-05.pth"):
        with pytest.raises(TalkingHeadError, match="pickle") as err:
            load_inception(path)
        assert "save_file" in str(err.value) and "\n" not in str(err.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(TalkingHeadError, match="no model.safetensors"):
        load_i3d(tmp_path / "empty")
    (tmp_path / "empty" / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(TalkingHeadError, match="not a readable safetensors"):
        load_i3d(tmp_path / "empty")
    # a checkpoint of the other network is refused by its component name
    InceptionI3D(I3DConfig.preset("tiny")).save_pretrained(tmp_path / "i3d")
    with pytest.raises(TalkingHeadError, match="evaluation.i3d"):
        load_inception(tmp_path / "i3d")
    # extra tensors are reported, not ignored
    net = InceptionI3D(I3DConfig.preset("tiny"))
    (tmp_path / "extra").mkdir()
    save_file({**net.state_dict(), "head.weight": torch.zeros(2)}, str(tmp_path / "extra" / "model.safetensors"))
    (tmp_path / "extra" / "config.json").write_text(json.dumps(net.config.to_dict()))
    with pytest.raises(TalkingHeadError, match="1 unexpected"):
        load_i3d(tmp_path / "extra")
    with pytest.raises(TalkingHeadError, match="uint8"):
        net.features(np.zeros((1, 16, 8, 8, 3), np.float32))


def test_fid_and_fvd_are_zero_on_the_same_set_and_grow_with_a_shift() -> None:
    torch.manual_seed(0)
    inception = _randomise(FIDInceptionV3(InceptionConfig.preset("tiny")))
    a, b = _frames(48, 1), _frames(48, 2)
    assert fid(a, a, inception) == pytest.approx(0.0, abs=1e-6)
    same_distribution = fid(a, b, inception)
    shifted = fid(a, _frames(48, 2, shift=60), inception)
    assert 0 < same_distribution < shifted
    # a list of videos pools their frames, in batches
    assert fid([a[:20], a[20:]], a, inception, batch_size=7) == pytest.approx(0.0, abs=1e-6)

    i3d = _randomise(InceptionI3D(I3DConfig.preset("tiny")))
    clips = split_clips([_frames(40, 3), _frames(50, 4)])
    assert clips.shape == (5, 16, 32, 32, 3)                      # 2 + 3 whole clips, the rest dropped
    assert fvd(clips, clips, i3d) == pytest.approx(0.0, abs=1e-6)
    assert fvd(clips, np.clip(clips.astype(int) + 60, 0, 255).astype(np.uint8), i3d) > 0
    with pytest.raises(TalkingHeadError, match="16 frames"):
        split_clips(_frames(10, 5))


@pytest.fixture(scope="module")
def toy_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from talkinghead.data.speakers import base_identity
    from talkinghead.face.model import ARKIT_LAYOUT

    identity = {k: np.array(v) for k, v in base_identity().items()}
    return write_dataset(tmp_path_factory.mktemp("pretrained") / "ds", ARKIT_LAYOUT, identity,
                         {"train": 4, "val": 1, "test": 2}, frames=40, mouth=("jawOpen", "mouthFunnel"))


def test_evaluate_command_refuses_pickled_weights(toy_data: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "inception.pth").write_bytes(b"\x80\x02")
    code = main(["evaluate", "--data", str(toy_data), "--preset", "tiny", "--baselines", "gt", "--video-clips", "1",
                 "--inception", str(tmp_path / "w"), "-o", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error:") and "pickle" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "r" / "judges").exists()               # refused before any judge was trained


def test_evaluate_command_adds_fid_and_fvd_columns(toy_data: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    _randomise(FIDInceptionV3(InceptionConfig.preset("tiny"))).save_pretrained(tmp_path / "inception")
    _randomise(InceptionI3D(I3DConfig.preset("tiny"))).save_pretrained(tmp_path / "i3d")
    out = tmp_path / "report"
    code = main(["--quiet", "evaluate", "--data", str(toy_data), "--preset", "tiny", "--baselines", "gt", "static",
                 "--video-clips", "2", "--judge-steps", "2", "--inception", str(tmp_path / "inception"),
                 "--i3d", str(tmp_path / "i3d"), "-o", str(out)])
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    rows = report["results"]
    assert rows["Ground truth"]["FID"] == pytest.approx(0.0, abs=1e-6)
    assert rows["Ground truth"]["FVD"] == pytest.approx(0.0, abs=1e-6)
    assert rows["Static face"]["FID"] > 0 and rows["Static face"]["FVD"] > 0
    video = next(t for t in report["tables"] if t["title"] == "Rendered video")
    assert "FID" in video["metrics"] and "FVD" in video["metrics"]
    md = (out / "report.md").read_text()
    assert "FID ↓" in md and "FVD ↓" in md and "FVD-mouth" in md

"""FD2Talk's motion generator (3.2): a folder of tiny trained DiTs loaded through the registry, generation from a
dataset clip and from a real portrait with speech, seeds that repeat exactly, long audio covered by overlapping
windows fused at every step, short audio, the single-DiT and no-alignment-mask variants, one-sentence errors."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from error_helpers import one_sentence
from talkinghead.data.dataset import Dataset
from talkinghead.diffusion import make_scheduler, sample
from talkinghead.errors import TalkingHeadError
from talkinghead.face.model import ARKIT_LAYOUT
from talkinghead.generators import (
    MANIFEST,
    REGISTRY,
    Conditions,
    MotionGenerator,
    Portrait,
    StyleRequest,
    generator_name,
    installed,
    load,
    load_generator,
    shipped_weights,
)
from talkinghead.io.audio import Audio
from talkinghead.motion.dimitra.seams import recursive_windows, window_joins
from talkinghead.motion.fd2talk.generator import (
    FD2TalkGenerator,
    FD2TalkSampling,
    part_seed,
    sample_dit,
    window_weights,
    write_fd2talk_manifest,
)
from talkinghead.training.run import train

E, WINDOW = ARKIT_LAYOUT.size, 12          # the tiny preset's window length N

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py: tiny models run single-threaded


@pytest.fixture(scope="module")
def corpus(make_corpus: Callable[..., Path]) -> Path:
    return make_corpus("tiny", "fd2talk_generator_corpus")


@pytest.fixture(scope="module")
def folders(corpus: Path) -> dict[str, Path]:
    """``full``: the expression and pose DiTs with a manifest; ``single``: Table 2's single DiT, trained without
    the alignment mask. The sync loss is the training tests' business; these are trained without it."""
    root = corpus.parent
    train("fd2talk.expression", corpus, root / "full" / "expression", "tiny", steps=6, no_sync_loss=True,
          tensorboard=False)
    train("fd2talk.pose", corpus, root / "full" / "pose", "tiny", steps=6, tensorboard=False)
    write_fd2talk_manifest(root / "full", command="tests", seed=0)
    train("fd2talk.expression", corpus, root / "single" / "joint", "tiny", steps=4, no_sync_loss=True,
          single_dit=True, no_alignment_mask=True, tensorboard=False)
    write_fd2talk_manifest(root / "single", command="tests", seed=0)
    return {"full": root / "full", "single": root / "single"}


@pytest.fixture(scope="module")
def generator(folders: dict[str, Path]) -> FD2TalkGenerator:
    made = load(folders["full"])
    assert isinstance(made, FD2TalkGenerator)
    made.sampling = FD2TalkSampling.preset("tiny")
    return made


@pytest.fixture(scope="module")
def clip(corpus: Path) -> Any:
    ds = Dataset(corpus)
    return ds.clip(ds.ids("test")[0])


# ---------------------------------------------------------------------------------------------- loading

def test_the_registry_loads_an_fd2talk_folder(folders: dict[str, Path], generator: FD2TalkGenerator,
                                              tmp_path: Path) -> None:
    assert REGISTRY["fd2talk"].kind == "motion" and generator_name(folders["full"]) == "fd2talk"
    assert isinstance(load_generator(folders["full"]), FD2TalkGenerator) and isinstance(generator, MotionGenerator)
    with pytest.raises(TalkingHeadError, match="not 'dimitra'"):
        load_generator(folders["full"], name="dimitra")
    assert not generator.single_dit and generator.layout == ARKIT_LAYOUT
    assert generator.window_frames == {"expression": WINDOW, "pose": WINDOW}
    assert generator.models["pose"].net.config.motion_dim == 6
    assert generator.models["expression"].variant == ("no_sync_loss",)
    for name in ("full", "single"):                                  # recognised without a manifest too
        bare = shutil.copytree(folders[name], tmp_path / name, ignore=shutil.ignore_patterns(MANIFEST))
        assert generator_name(bare) == "fd2talk" and FD2TalkGenerator.recognises(bare)
    assert load(tmp_path / "single").single_dit
    rows = {(r["name"], r["kind"]): r for r in installed()}          # `talkinghead models`: generator and renderer
    assert rows[("fd2talk", "motion")]["ready"] == (shipped_weights("fd2talk") is not None)
    assert ("fd2talk", "renderer") in rows


def test_missing_or_misplaced_dits_give_one_sentence(folders: dict[str, Path], tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    no_pose = shutil.copytree(folders["full"], tmp_path / "no_pose", ignore=shutil.ignore_patterns("pose", MANIFEST))
    with pytest.raises(TalkingHeadError) as err:
        FD2TalkGenerator.from_pretrained(no_pose)
    assert "lacks FD2Talk's pose DiT" in one_sentence(err)
    swapped = shutil.copytree(folders["full"], tmp_path / "swapped", ignore=shutil.ignore_patterns("expression"))
    shutil.copytree(folders["full"] / "pose", swapped / "expression")
    with pytest.raises(TalkingHeadError) as err:
        FD2TalkGenerator.from_pretrained(swapped)
    assert "holds FD2Talk's pose DiT, not the expression DiT" in one_sentence(err)
    with pytest.raises(TalkingHeadError) as err:
        load_generator(tmp_path / "nowhere")
    one_sentence(err)
    monkeypatch.setattr("talkinghead.motion.fd2talk.generator.weights_root", lambda: tmp_path)
    with pytest.raises(TalkingHeadError) as err:
        FD2TalkGenerator.from_pretrained()
    assert "not shipped yet" in one_sentence(err)


# ------------------------------------------------------------------------------------------- generation

def test_a_clip_gives_expression_and_pose_and_a_seed_repeats_exactly(generator: FD2TalkGenerator,
                                                                     folders: dict[str, Path], clip: Any) -> None:
    a, b, c = (generator.generate(Conditions.from_clip(clip, seed=s)) for s in (7, 7, 8))
    frames = len(clip.motion)
    assert a.motion.expression.shape == (frames, E) and a.motion.pose.shape == (frames, 6)
    assert np.isfinite(a.motion.expression).all() and np.isfinite(a.motion.pose).all()
    assert a.pose_generated and a.style is None and a.source == "fd2talk:no_sync_loss"
    assert set(a.timings) == {"features", "motion"}
    assert a.motion.layout == ARKIT_LAYOUT and list(a.joins) == window_joins(frames, WINDOW, 4)
    np.testing.assert_array_equal(a.motion.expression, b.motion.expression)
    np.testing.assert_array_equal(a.motion.pose, b.motion.pose)
    assert not np.allclose(a.motion.pose, c.motion.pose) and not np.allclose(a.motion.expression, c.motion.expression)
    again = FD2TalkGenerator.from_pretrained(folders["full"], FD2TalkSampling.preset("tiny"))   # a fresh load
    np.testing.assert_array_equal(again.generate(Conditions.from_clip(clip, seed=7)).motion.pose, a.motion.pose)
    fewer = generator.generate(Conditions.from_clip(clip, seed=7, steps=2))
    assert not np.allclose(fewer.motion.expression, a.motion.expression)


def test_one_window_is_plain_sampling_and_overlapping_windows_are_fused(generator: FD2TalkGenerator,
                                                                         clip: Any) -> None:
    model = generator.models["pose"]
    settings = FD2TalkSampling.preset("tiny")
    audio = Conditions.from_clip(clip).features(model.net.audio_features, "pose DiT")
    # T == N: one window, weights cancel, exactly the reverse process over the network
    direct = sample(lambda x, t: model.net(x, t, torch.from_numpy(audio[None, :WINDOW])), (1, WINDOW, 6),
                    make_scheduler(model.schedule, "ddim"), settings.steps,
                    generator=torch.Generator().manual_seed(3))
    np.testing.assert_allclose(sample_dit(model, audio[:WINDOW], settings, 3),
                               model.net.motion_norm.inverse(direct)[0].numpy(), atol=1e-6)
    # short audio is edge-padded to N and cut
    short = sample_dit(model, audio[:5], settings, 3)
    assert short.shape == (5, 6) and np.isfinite(short).all()
    np.testing.assert_allclose(window_weights(WINDOW, 4), [.2, .4, .6, .8, 1, 1, 1, 1, .8, .6, .4, .2], atol=1e-6)
    # many windows: where every window predicts the same clean sequence, the fused prediction is that sequence
    total = 40
    target = torch.randn(total, 6)
    net = model.net

    def knows_x0(x: torch.Tensor, t: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        return net.motion_norm(target[audio[..., 0].long()])         # each window's frames, by the audio's index
    frame_index = np.repeat(np.arange(total, dtype=np.float32)[:, None], net.config.audio_dim, 1)
    net.forward = knows_x0                                           # type: ignore[method-assign,assignment]
    try:
        fused = sample_dit(model, frame_index, settings.replace(batch_windows=3), 0)
    finally:
        del net.forward
    assert len(recursive_windows(total, WINDOW, 4)) == 5
    np.testing.assert_allclose(fused, target.numpy(), atol=1e-4)


def test_a_portrait_and_speech(generator: FD2TalkGenerator, clip: Any) -> None:
    """The features are extracted from the audio with each checkpoint's spec, as ``generate --model`` does."""
    from skimage import data

    face = Portrait.fit(data.astronaut())
    conditions = Conditions(Audio(np.asarray(clip.audio, np.float32)), face, seed=1)
    made = generator.generate(conditions)
    assert made.motion.expression.shape == (conditions.num_frames, E) and np.isfinite(made.motion.pose).all()
    assert made.motion.identity is face.identity
    with pytest.raises(TalkingHeadError) as err:
        generator.generate(Conditions(conditions.audio, face, StyleRequest(emotion="happy")))
    one_sentence(err)
    with pytest.raises(TalkingHeadError) as err:
        generator.generate(Conditions(conditions.audio, face, guidance=2.0))
    one_sentence(err)


def test_the_single_dit_variant_is_split_into_expression_and_pose(folders: dict[str, Path], clip: Any) -> None:
    single = FD2TalkGenerator.from_pretrained(folders["single"], FD2TalkSampling.preset("tiny"))
    assert single.single_dit and tuple(single.models) == ("joint",)
    joint = single.models["joint"]
    assert joint.variant == ("no_alignment_mask", "no_sync_loss", "single_dit")
    assert not joint.net.config.alignment_mask
    made = single.generate(Conditions.from_clip(clip, seed=4))
    assert made.source == "fd2talk:no_alignment_mask,no_sync_loss,single_dit"
    audio = Conditions.from_clip(clip).features(joint.net.audio_features, "single DiT")
    both = sample_dit(joint, audio, single.sampling, part_seed(4, "joint"))
    np.testing.assert_array_equal(made.motion.expression, both[:, :E])
    np.testing.assert_array_equal(made.motion.pose, both[:, E:])

"""Dimitra's motion generator (III-B.4): a checkpoint folder of three tiny trained parts (and a tiny phoneme
recogniser) loaded through the registry; generation from a real portrait and espeak speech with and without a
transcript; long audio window by window, each window conditioned on the frame before it and the first one on the
portrait's own coefficients; seeds; a model trained without phonemes; one-sentence errors; the seam measure."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from talkinghead.audio.phonemes import PAD_ID
from talkinghead.data.dataset import Dataset
from talkinghead.errors import TalkingHeadError
from talkinghead.face.model import ARKIT_LAYOUT, MOUTH_CHANNELS, compose_expression
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
from talkinghead.motion.dimitra.generator import (
    DimitraGenerator,
    DimitraSampling,
    sample_window,
    window_seed,
    write_dimitra_manifest,
)
from talkinghead.motion.dimitra.seams import recursive_windows, seam_jumps
from talkinghead.sequence import MotionSequence
from talkinghead.training.run import train

WINDOW = 12  # the tiny preset's window length N
LIPS = [ARKIT_LAYOUT.channels.index(n) for n in MOUTH_CHANNELS]
FACE = [i for i in range(ARKIT_LAYOUT.size) if i not in LIPS]

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py: tiny models run single-threaded


@pytest.fixture(scope="module")
def corpus(make_corpus: Callable[..., Path]) -> Path:
    """The synthetic corpus's tiny preset: espeak speech with phone timings and transcripts, real features."""
    return make_corpus("tiny", "dimitra_corpus")


def _train_folder(corpus: Path, folder: Path, steps: int, recogniser: bool, **options: Any) -> Path:
    """The three parts (and the recogniser) trained a few tiny steps into one folder, with its manifest."""
    for part in ("lips", "face", "pose"):
        train(f"dimitra.{part}", corpus, folder / part, "tiny", steps=steps, tensorboard=False, **options)
    if recogniser:
        train("dimitra.phonemes", corpus, folder / "phonemes", "tiny", steps=steps, tensorboard=False)
    write_dimitra_manifest(folder, command="tests", seed=0)
    return folder


@pytest.fixture(scope="module")
def folder(corpus: Path) -> Path:
    return _train_folder(corpus, corpus.parent / "dimitra", steps=8, recogniser=True)


@pytest.fixture(scope="module")
def bare(corpus: Path) -> Path:
    """Parts trained with --no-phonemes and no recogniser."""
    return _train_folder(corpus, corpus.parent / "bare", steps=3, recogniser=False, no_phonemes=True)


@pytest.fixture(scope="module")
def generator(folder: Path) -> DimitraGenerator:
    made = load(folder)
    assert isinstance(made, DimitraGenerator)
    made.sampling = DimitraSampling.preset("tiny")
    return made


@pytest.fixture(scope="module")
def face() -> Portrait:
    from skimage import data

    return Portrait.fit(data.astronaut())


@pytest.fixture(scope="module")
def speech(corpus: Path) -> dict[str, Any]:
    """Two test clips: a neutral one (its transcript aligns) and a happy one."""
    ds = Dataset(corpus)
    clips = {ds.meta(i).emotion: ds.clip(i) for i in ds.ids("test")}
    return {"audio": Audio(clips["neutral"].audio), "transcript": clips["neutral"].transcript,
            "long": Audio(np.concatenate([clips["neutral"].audio, clips["happy"].audio]))}


def _one_sentence(err: pytest.ExceptionInfo[TalkingHeadError]) -> str:
    text = str(err.value)
    assert "\n" not in text and text.endswith(".") and ". " not in text.rstrip("."), text
    return text


# ---------------------------------------------------------------------------------------------- loading

def test_the_registry_loads_a_dimitra_folder(folder: Path, generator: DimitraGenerator, tmp_path: Path) -> None:
    assert REGISTRY["dimitra"].kind == "motion" and generator_name(folder) == "dimitra"
    assert isinstance(load_generator(folder), DimitraGenerator) and isinstance(generator, MotionGenerator)
    with pytest.raises(TalkingHeadError, match="not 'dreamtalk'"):
        load_generator(folder, name="dreamtalk")
    assert generator.recogniser is not None and generator.window_frames == dict.fromkeys(("lips", "face", "pose"),
                                                                                           WINDOW)
    assert generator.layout == ARKIT_LAYOUT and generator.parts["pose"].net.config.motion_dim == 6
    unlabelled = shutil.copytree(folder, tmp_path / "old", ignore=shutil.ignore_patterns(MANIFEST))
    assert generator_name(unlabelled) == "dimitra"                # recognised without a manifest
    # `talkinghead models` lists it; with no shipped weights it is not ready and loading it by name says why
    rows = {r["name"]: r for r in installed()}
    assert rows["dimitra"]["ready"] == (shipped_weights("dimitra") is not None) and rows["dreamtalk"]["ready"]
    if shipped_weights("dimitra") is None:
        with pytest.raises(TalkingHeadError) as err:
            load_generator(name="dimitra")
        assert "not shipped yet" in _one_sentence(err)


def test_missing_or_misplaced_parts_give_one_sentence(folder: Path, tmp_path: Path) -> None:
    no_face = shutil.copytree(folder, tmp_path / "no_face", ignore=shutil.ignore_patterns("face"))
    with pytest.raises(TalkingHeadError) as err:
        DimitraGenerator.from_pretrained(no_face)
    assert "lacks Dimitra's face model (face/)" in _one_sentence(err)
    with pytest.raises(TalkingHeadError) as err:
        load_generator(tmp_path / "nowhere")
    _one_sentence(err)
    swapped = shutil.copytree(folder, tmp_path / "swapped", ignore=shutil.ignore_patterns("lips"))
    shutil.copytree(folder / "face", swapped / "lips")
    with pytest.raises(TalkingHeadError) as err:
        DimitraGenerator.from_pretrained(swapped)
    assert "holds Dimitra's face model, not the lips model" in _one_sentence(err)


# ------------------------------------------------------------------------------------------- generation

def test_generate_with_and_without_a_transcript(generator: DimitraGenerator, face: Portrait,
                                                speech: dict[str, Any]) -> None:
    with_text = Conditions(speech["audio"], face, transcript=speech["transcript"], seed=3)
    without = Conditions(speech["audio"], face, seed=3)
    outputs = {}
    for name, conditions in (("text", with_text), ("none", without)):
        made = generator.generate(conditions)
        m = made.motion
        assert m.expression.shape == (conditions.num_frames, 40) and m.pose.shape == (conditions.num_frames, 6)
        assert np.isfinite(m.expression).all() and np.isfinite(m.pose).all()
        assert made.pose_generated and m.layout == ARKIT_LAYOUT and m.identity is face.identity
        assert set(made.timings) == {"conditions", "motion"}
        outputs[name] = made
    assert outputs["text"].source == "dimitra:phonemes=aligned,transcript=given"      # forced alignment
    assert outputs["none"].source == "dimitra:phonemes=recognised,transcript=none"    # the recogniser
    assert not np.array_equal(outputs["text"].motion.expression, outputs["none"].motion.expression)
    # guidance on the transcript (an extension) changes the motion; 1 is the plain conditional model
    guided = generator.generate(Conditions(speech["audio"], face, transcript=speech["transcript"], seed=3,
                                           guidance=3.0, steps=2))
    assert np.isfinite(guided.motion.expression).all()
    assert generator.settings(Conditions(speech["audio"], face, steps=2, guidance=3.0)) == \
        DimitraSampling.preset("tiny", steps=2, guidance=3.0)
    with pytest.raises(TalkingHeadError) as err:
        generator.generate(Conditions(speech["audio"], face, StyleRequest(emotion="happy")))
    _one_sentence(err)


def test_long_audio_window_by_window_from_the_portrait(generator: DimitraGenerator, face: Portrait,
                                                       speech: dict[str, Any]) -> None:
    conditions = Conditions(speech["long"], face, seed=5)
    made = generator.generate(conditions)
    total = conditions.num_frames
    starts = recursive_windows(total, WINDOW)
    assert total > 10 * WINDOW and len(starts) > 10 and starts[-1] == total - WINDOW
    assert made.motion.expression.shape == (total, 40) and np.isfinite(made.motion.pose).all()
    # the returned face channels are relative to the portrait where composition adds its values back
    offsets = generator.portrait_offsets(face)
    assert offsets[ARKIT_LAYOUT.channels.index("jawOpen")] == 0 and offsets[LIPS].max() == 0
    generated = {"lips": made.motion.expression[:, LIPS], "face": made.motion.expression[:, FACE] + offsets[FACE],
                 "pose": made.motion.pose}
    smile = ARKIT_LAYOUT.channels.index("mouthSmileLeft")
    assert offsets[smile] == face.expression[smile] > 0
    composed = compose_expression(face.expression, made.motion.expression)
    raw = made.motion.expression[:, smile] + face.expression[smile]
    np.testing.assert_allclose(composed[:, smile], np.minimum(raw, max(1.0, face.expression[smile])), atol=1e-6)
    # x^1 of the first window: the portrait's own expression split into lips and face channels, its pose
    inputs = generator.inputs(conditions)
    first = {"lips": face.expression[LIPS], "face": face.expression[FACE], "pose": face.pose}
    settings = generator.settings(conditions)
    for name, part in generator.parts.items():
        np.testing.assert_array_equal(inputs.parts[name].first_frame, first[name].astype(np.float32))
        # every window is what sampling it alone gives, conditioned on the frame before it (x^1 for the first)
        for index in (0, 1, len(starts) - 1):
            start = starts[index]
            condition = first[name] if start == 0 else generated[name][start - 1]
            window = sample_window(part, inputs.parts[name], start, condition, settings,
                                   window_seed(5, name, index))
            np.testing.assert_allclose(window, generated[name][start:start + WINDOW], atol=1e-5)  # offsets' rounding
    # the first frame condition is read: another portrait pose gives another head motion
    turned = Portrait(face.image, face.identity, face.expression, face.pose + np.float32(0.3))
    other = generator.generate(Conditions(speech["audio"], turned, seed=5)).motion.pose
    same = generator.generate(Conditions(speech["audio"], face, seed=5)).motion.pose
    assert not np.allclose(other, same)
    mean = generator.first_frames(conditions, settings.replace(first_pose="mean"))["pose"]
    np.testing.assert_array_equal(mean, generator.parts["pose"].net.motion_norm.mean.numpy())


def test_a_seed_repeats_exactly_and_two_seeds_differ(generator: DimitraGenerator, face: Portrait,
                                                     speech: dict[str, Any]) -> None:
    a, b, c = (generator.generate(Conditions(speech["audio"], face, seed=s)).motion for s in (7, 7, 8))
    np.testing.assert_array_equal(a.expression, b.expression)
    np.testing.assert_array_equal(a.pose, b.pose)
    # a few training steps teach the tiny models little use of the noisy input, so seeds differ by little here
    assert not np.allclose(a.pose, c.pose, rtol=0, atol=1e-4)
    assert not np.allclose(a.expression, c.expression, rtol=0, atol=1e-4)


def test_a_model_without_phonemes_needs_no_transcript_or_recogniser(bare: Path, folder: Path, face: Portrait,
                                                                    speech: dict[str, Any], tmp_path: Path) -> None:
    plain = DimitraGenerator.from_pretrained(bare, DimitraSampling.preset("tiny"))
    conditions = Conditions(speech["audio"], face, seed=1)
    assert plain.recogniser is None and not plain.needs_phonemes
    made = plain.generate(conditions)
    assert made.source == "dimitra:phonemes=unused,transcript=none"
    assert made.motion.expression.shape == (conditions.num_frames, 40) and np.isfinite(made.motion.pose).all()
    assert all((p.phonemes == PAD_ID).all() for p in plain.inputs(conditions).parts.values())   # as trained
    # models that read phonemes, with neither a transcript nor a recogniser: one sentence saying what is needed
    deaf = DimitraGenerator.from_pretrained(shutil.copytree(folder, tmp_path / "deaf",
                                                            ignore=shutil.ignore_patterns("phonemes")))
    with pytest.raises(TalkingHeadError) as err:
        deaf.generate(conditions)
    assert "transcript" in _one_sentence(err) and "recogniser" in str(err.value)


# ---------------------------------------------------------------------------------------------- seams

def test_recursive_windows_cover_the_sequence() -> None:
    assert recursive_windows(60, 12) == [0, 12, 24, 36, 48]
    assert recursive_windows(30, 12) == [0, 12, 18]                 # the last one moved back to end on frame 29
    assert recursive_windows(5, 12) == [0] and recursive_windows(12, 12) == [0]


def test_seam_jumps_finds_a_jump_planted_at_a_join() -> None:
    frames = np.arange(60, dtype=np.float32)[:, None]
    expression = np.repeat(0.01 * frames, ARKIT_LAYOUT.size, 1)     # every frame moves by the same step
    pose = np.repeat(0.002 * frames, 6, 1)
    smooth = seam_jumps(MotionSequence(expression, pose, ARKIT_LAYOUT), WINDOW)
    for group in ("lips", "expression", "pose"):
        assert smooth[group]["joins"] == 4 and smooth[group]["ratio"] == pytest.approx(1.0, rel=1e-4)
    planted = expression.copy()
    planted[24:, LIPS] += 0.5                                       # a step into the third window's first frame
    seams = seam_jumps(MotionSequence(planted, pose, ARKIT_LAYOUT), WINDOW)
    assert seams["lips"]["ratio"] > 10 and seams["lips"]["join_max"] > 10 * seams["lips"]["ordinary_p95"]
    assert seams["expression"]["ratio"] == pytest.approx(1.0, rel=1e-4)
    assert seams["pose"]["ratio"] == pytest.approx(1.0, rel=1e-4)
    off_join = expression.copy()
    off_join[30:, LIPS] += 0.5                                      # the same step inside a window: no seam
    assert seam_jumps(MotionSequence(off_join, pose, ARKIT_LAYOUT), WINDOW)["lips"]["ratio"] < 1

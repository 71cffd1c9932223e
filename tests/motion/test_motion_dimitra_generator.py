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

from error_helpers import one_sentence
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
from talkinghead.motion.dimitra.seams import crossfade_weights, recursive_windows, seam_jumps, window_joins
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
        assert "not shipped yet" in one_sentence(err)


def test_missing_or_misplaced_parts_give_one_sentence(folder: Path, tmp_path: Path) -> None:
    no_face = shutil.copytree(folder, tmp_path / "no_face", ignore=shutil.ignore_patterns("face"))
    with pytest.raises(TalkingHeadError) as err:
        DimitraGenerator.from_pretrained(no_face)
    assert "lacks Dimitra's face model (face/)" in one_sentence(err)
    with pytest.raises(TalkingHeadError) as err:
        load_generator(tmp_path / "nowhere")
    one_sentence(err)
    swapped = shutil.copytree(folder, tmp_path / "swapped", ignore=shutil.ignore_patterns("lips"))
    shutil.copytree(folder / "face", swapped / "lips")
    with pytest.raises(TalkingHeadError) as err:
        DimitraGenerator.from_pretrained(swapped)
    assert "holds Dimitra's face model, not the lips model" in one_sentence(err)


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
    one_sentence(err)


def test_speech_guidance_acts_on_parts_trained_with_speech_dropout(corpus: Path, folder: Path, face: Portrait,
                                                                  speech: dict[str, Any], tmp_path: Path) -> None:
    """``speech_guidance`` (an extension) changes the lips of a lips model trained with speech dropout and leaves
    parts trained without it (here the face and pose, and every part of the plain folder) as they were."""
    dropped = shutil.copytree(folder, tmp_path / "dropped", ignore=shutil.ignore_patterns("lips"))
    train("dimitra.lips", corpus, dropped / "lips", "tiny", steps=3, tensorboard=False, speech_dropout_percent=50)
    conditions = Conditions(speech["audio"], face, seed=3, steps=2)
    made = {}
    for name, path in (("plain", folder), ("dropped", dropped)):
        for scale in (1.0, 3.0):
            g = DimitraGenerator.from_pretrained(path, DimitraSampling.preset("tiny", speech_guidance=scale))
            made[name, scale] = g.generate(conditions).motion.expression
    np.testing.assert_array_equal(made["plain", 1.0], made["plain", 3.0])
    lips = np.isin(np.arange(ARKIT_LAYOUT.size), ARKIT_LAYOUT.indices("mouth"))
    assert not np.allclose(made["dropped", 1.0][:, lips], made["dropped", 3.0][:, lips], atol=1e-6)
    np.testing.assert_array_equal(made["dropped", 1.0][:, ~lips], made["dropped", 3.0][:, ~lips])
    with pytest.raises(TalkingHeadError, match="guidance scales"):
        DimitraSampling(speech_guidance=21.0)


@pytest.mark.parametrize("overlap", [0, 4])
def test_long_audio_window_by_window_from_the_portrait(generator: DimitraGenerator, face: Portrait,
                                                       speech: dict[str, Any], overlap: int) -> None:
    generator = DimitraGenerator(*generator.parts.values(), generator.recogniser, generator.directory,
                                 generator.sampling.replace(overlap=overlap))
    conditions = Conditions(speech["long"], face, seed=5)
    made = generator.generate(conditions)
    total = conditions.num_frames
    starts = recursive_windows(total, WINDOW, overlap)
    assert total > 10 * WINDOW and len(starts) > 10 and starts[-1] == total - WINDOW
    assert list(made.joins) == window_joins(total, WINDOW, overlap)
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
    # x^1 of the first window: the rest mouth, the portrait's own face channels, its pose
    inputs = generator.inputs(conditions)
    first = {"lips": np.zeros(len(LIPS), np.float32), "face": face.expression[FACE], "pose": face.pose}
    own = generator.first_frames(conditions, generator.sampling.replace(first_lips="portrait"))["lips"]
    np.testing.assert_array_equal(own, face.expression[LIPS])                 # the paper's reading, as an option
    settings = generator.settings(conditions)
    for name, part in generator.parts.items():
        np.testing.assert_array_equal(inputs.parts[name].first_frame, first[name].astype(np.float32))
        # every window is what sampling it alone gives, conditioned on the frame before it (x^1 for the first);
        # with overlap, the frames it shares with its predecessor cross-fade from the predecessor's to its own
        windows = {}
        for index in (0, 1, len(starts) - 2, len(starts) - 1):
            start = starts[index]
            condition = first[name] if start == 0 else generated[name][start - 1]
            windows[index] = sample_window(part, inputs.parts[name], start, condition, settings,
                                           window_seed(5, name, index))
        for index in (1, len(starts) - 1):
            start, before = starts[index], starts[index - 1]
            shared = before + WINDOW - start if overlap else 0
            end = starts[index + 1] if index + 1 < len(starts) and overlap else start + WINDOW   # next cross-fade
            np.testing.assert_allclose(windows[index][shared:end - start], generated[name][start + shared:end],
                                       atol=1e-5)                                              # offsets' rounding
            if shared:
                weight = crossfade_weights(shared)[:, None]
                mixed = (1 - weight) * windows[index - 1][start - before:] + weight * windows[index][:shared]
                np.testing.assert_allclose(mixed, generated[name][start:start + shared], atol=1e-5)
        np.testing.assert_allclose(windows[0][:starts[1]], generated[name][:starts[1]], atol=1e-5)
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
    assert "transcript" in one_sentence(err) and "recogniser" in str(err.value)


# ---------------------------------------------------------------------------------------------- seams

def test_recursive_windows_cover_the_sequence() -> None:
    assert recursive_windows(60, 12) == [0, 12, 24, 36, 48]
    assert recursive_windows(30, 12) == [0, 12, 18]                 # the last one moved back to end on frame 29
    assert recursive_windows(5, 12) == [0] and recursive_windows(12, 12) == [0]
    # with overlap: stride N - K, the last window still ends on the last frame
    assert recursive_windows(30, 12, 4) == [0, 8, 16, 18]
    assert window_joins(30, 12, 4) == [8, 9, 10, 11, 12, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28]
    assert window_joins(30, 12) == [12, 18]
    np.testing.assert_allclose(crossfade_weights(3), [0.25, 0.5, 0.75])
    with pytest.raises(TalkingHeadError):
        recursive_windows(30, 12, 12)


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


# ---------------------------------------------------------------------------------------------- evaluation

def test_evaluate_starts_from_the_first_frame_and_reports_window_joins(folder: Path, corpus: Path,
                                                                       tmp_path: Path) -> None:
    from talkinghead.evaluation.evaluate import EvaluateConfig, GroundTruth, Judges, evaluate, parse_baselines

    # the manifest's sampling entry sets the defaults; windows of 8 frames so every test clip has joins
    folder = shutil.copytree(folder, tmp_path / "dimitra")
    write_dimitra_manifest(folder, sampling={"steps": 2, "window_frames": 8, "overlap": 3})
    methods = parse_baselines([f"Dimitra={folder}", f"fixed-pose:Dimitra w/o pose={folder}"])
    dimitra, still = methods
    assert dimitra.generator.sampling == DimitraSampling(steps=2, window_frames=8, overlap=3)
    assert dimitra.first_frame and still.hold_pose and not dimitra.hold_pose
    clip = Dataset(corpus).clip(Dataset(corpus).ids("test")[0])
    conditions = dimitra.conditions(clip)                 # x^1 = the clip's first frame, as in Dimitra Sec. IV
    np.testing.assert_array_equal(conditions.portrait.expression, clip.motion.expression[0])
    np.testing.assert_array_equal(conditions.portrait.pose, clip.motion.pose[0])
    made, held = dimitra.generate(clip), still.generate(clip)
    np.testing.assert_array_equal(made.expression, held.expression)
    assert not np.allclose(made.pose, clip.motion.pose[:1]) and (held.pose == clip.motion.pose[:1]).all()
    assert dimitra.joins[clip.meta.id] == tuple(window_joins(len(clip.motion), 8, 3))
    report = evaluate(corpus, [GroundTruth(), *methods], config=EvaluateConfig(max_clips=3, video_clips=0),
                      judges=Judges())
    joined = report.results["Dimitra"]
    assert all(joined[f"Join jump: {g}"] > 0 for g in ("lips", "expr.", "pose"))
    assert "Join jump: lips" not in report.results["Ground truth"]
    assert report.results["Dimitra w/o pose"]["Velocity"] < 1e-4 < joined["Velocity"]   # float32 rounding
    with pytest.raises(TalkingHeadError):
        parse_baselines([f"fixed-pose:={folder}"])


def test_generate_motion_passes_the_transcript(generator: DimitraGenerator, speech: dict[str, Any]) -> None:
    from skimage import data

    from talkinghead import api

    said = api.generate_motion(data.astronaut(), speech["audio"], transcript=speech["transcript"], models=generator,
                               seed=2)
    unsaid = api.generate_motion(data.astronaut(), speech["audio"], models=generator, seed=2)
    assert said.motion is not None and unsaid.motion is not None
    assert "transcript=given" in said.motion.source and "transcript=none" in unsaid.motion.source
    assert not np.allclose(said.motion.expression, unsaid.motion.expression)

"""Dimitra's training (III-B.4): the windows per part (channels, the first-frame condition, phoneme ids on the
phone times, transcript tokens), the registry's components without torch, tiny runs of the three parts whose
loss falls, L_first on and off, exact resume, and checkpoints that load back into the same cMDT."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter1d

from talkinghead.audio.phonemes import PAD_ID, PHONEME_IDS, SILENCE_ID, PhoneSegment
from talkinghead.data.dataset import Clip, ClipMeta, DatasetInfo, DatasetWriter
from talkinghead.errors import TalkingHeadError
from talkinghead.face.model import ARKIT_LAYOUT, MOUTH_CHANNELS
from talkinghead.motion.dimitra import CMDT, CMDTConditions
from talkinghead.motion.dimitra.data import DimitraCorpus, collate
from talkinghead.motion.dimitra.model import TEXT_CHARACTERS, transcript_tokens
from talkinghead.motion.dimitra.training.motion import LAMBDA_DIFF, build_part
from talkinghead.sequence import POSE_NAMES, MotionSequence
from talkinghead.training.run import train
from talkinghead.training.state import load_state

FPS = 25.0
PHONES = ("AA", "B", "M", "IY", "UW", "S", "F", "OW")
SENTENCES = ("Open the door, please.", "Pick up a book!")
VAL_OFFSET = 5.0  # the validation clip's motion is shifted: statistics must not see it

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py: tiny models run single-threaded


def _phones(rng: np.random.Generator, frames: int) -> list[PhoneSegment]:
    """Silence, random phones of 80-160 ms, silence, covering ``frames`` frames."""
    end = frames / FPS
    out, t = [PhoneSegment("SIL", 0.0, 0.2)], 0.2
    while t < end - 0.3:
        d = float(rng.uniform(0.08, 0.16))
        out.append(PhoneSegment(str(rng.choice(PHONES)), t, t + d))
        t += d
    return [*out, PhoneSegment("SIL", t, end)]


def _make_corpus(root: Path) -> Path:
    """Six clips in the ARKit layout: the mouth follows the phones, the rest of the face the sentence, the pose a
    slow walk; audio features carry the phone identity. Five train clips, one validation clip (shifted)."""
    rng = np.random.default_rng(0)
    mouth = ARKIT_LAYOUT.indices("mouth")
    face = [i for i in range(ARKIT_LAYOUT.size) if i not in mouth]
    shapes = {PHONEME_IDS[p]: rng.uniform(0.0, 1.0, len(mouth)) for p in PHONES}
    shapes[SILENCE_ID] = np.zeros(len(mouth))
    sounds = rng.normal(size=(len(PHONEME_IDS), 6))
    moods = rng.normal(scale=0.3, size=(len(SENTENCES), len(face)))
    writer = DatasetWriter(root, DatasetInfo(FPS, ARKIT_LAYOUT, audio_features={"name": "test"}))
    for k in range(6):
        frames, sentence = 48 + 4 * k, k % 2
        phones = _phones(rng, frames)
        ids = _frame_ids_by_hand(phones, frames)
        expression = np.zeros((frames, ARKIT_LAYOUT.size))
        expression[:, mouth] = gaussian_filter1d(np.stack([shapes[i] for i in ids]), 1.0, axis=0)
        expression[:, face] = moods[sentence] + 0.05 * gaussian_filter1d(rng.normal(size=(frames, len(face))), 2, 0)
        pose = np.cumsum(rng.normal(scale=0.02, size=(frames, 6)), 0) + 0.2 * sentence
        split = "val" if k == 5 else "train"
        if split == "val":
            expression, pose = expression + VAL_OFFSET, pose + VAL_OFFSET
        features = {"sound": (sounds[ids] + 0.1 * rng.normal(size=(frames, 6))).astype(np.float32),
                    "energy": expression[:, mouth[0]].astype(np.float32)}
        motion = MotionSequence(expression, pose, ARKIT_LAYOUT, FPS, {}, "test")
        writer.write_clip(Clip(ClipMeta(f"c{k}", f"s{k % 3}", split=split), np.zeros(frames * 640, np.float32),
                               motion, features, phones, SENTENCES[sentence]))
    writer.finalize()
    return root


def _frame_ids_by_hand(phones: list[PhoneSegment], frames: int) -> list[int]:
    """The phone whose time span holds each frame's centre ``(i + 0.5) / fps``, one frame at a time."""
    out = []
    for i in range(frames):
        centre = (i + 0.5) / FPS
        label = next((p.label for p in phones if p.start <= centre < p.end), "SIL")
        out.append(PHONEME_IDS[label])
    return out


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _make_corpus(tmp_path_factory.mktemp("dimitra") / "corpus")


@pytest.fixture(scope="module")
def trained(data: Path) -> dict[str, dict[str, Any]]:
    """Each part trained for the tiny preset's 30 steps: its summary and checkpoint folder."""
    out = {}
    for part in ("lips", "face", "pose"):
        folder = data.parent / part
        out[part] = dict(train(f"dimitra.{part}", data, folder, "tiny", tensorboard=False), folder=folder)
    return out


# ------------------------------------------------------------------------------------------------- data

def test_windows_split_the_channels_and_condition_on_the_previous_frame(data: Path) -> None:
    from talkinghead.data.dataset import Dataset

    clip = Dataset(data).clip("c0")
    mouth = [ARKIT_LAYOUT.channels.index(n) for n in MOUTH_CHANNELS]
    face = [i for i in range(ARKIT_LAYOUT.size) if i not in mouth]
    expected = {"lips": (clip.motion.expression[:, mouth], MOUTH_CHANNELS),
                "face": (clip.motion.expression[:, face], tuple(ARKIT_LAYOUT.channels[i] for i in face)),
                "pose": (clip.motion.pose, POSE_NAMES)}
    for part, (motion, names) in expected.items():
        corpus = DimitraCorpus(data, part)
        assert corpus.channels == names and corpus.motion_dim == len(names) == {"lips": 13, "face": 27, "pose": 6}[part]
        index = [c.id for c in corpus.clips].index("c0")
        w = corpus.window(index, 7, 12)
        assert w.motion.shape == (12, len(names)) and w.audio.shape == (12, 7) and w.phonemes.shape == (12,)
        np.testing.assert_array_equal(w.motion, motion[7:19])
        np.testing.assert_array_equal(w.first_frame, motion[6])                # x^1: the frame before the window
        np.testing.assert_array_equal(corpus.window(index, 0, 12).first_frame, motion[0])  # at 0: frame 0 itself
        np.testing.assert_array_equal(w.audio, np.concatenate([clip.features["energy"][7:19, None],
                                                               clip.features["sound"][7:19]], 1))
    assert corpus.feature_names == ("energy", "sound") and corpus.audio_spec()["dims"] == [1, 6]
    assert len(corpus.clips) == 5 and "c5" not in [c.id for c in corpus.clips]    # the training split only


def test_phoneme_ids_line_up_with_the_phone_times(data: Path) -> None:
    from talkinghead.data.dataset import Dataset

    corpus, dataset = DimitraCorpus(data, "lips"), Dataset(data)
    for index, c in enumerate(corpus.clips):
        by_hand = _frame_ids_by_hand(dataset.clip(c.id).phones, len(c))
        np.testing.assert_array_equal(c.phonemes, by_hand)
        np.testing.assert_array_equal(corpus.window(index, 5, 20).phonemes, by_hand[5:25])
    assert len(set(np.concatenate([c.phonemes for c in corpus.clips]).tolist())) > 5


def test_batches_carry_transcript_tokens_and_the_ablations_remove_conditions(data: Path) -> None:
    corpus = DimitraCorpus(data, "face")
    windows = corpus.sample(np.random.default_rng(0), 6, 12)
    batch = collate(windows, 16)
    tokens, mask = transcript_tokens([w.transcript for w in windows], 16)
    assert torch.equal(batch["text_tokens"], tokens) and torch.equal(batch["text_mask"], mask)
    for w, row in zip(windows, batch["text_tokens"], strict=True):
        assert w.transcript in SENTENCES
        decoded = "".join(TEXT_CHARACTERS[i - 2] for i in row.tolist() if i >= 2)
        assert decoded == w.transcript.lower()[:16]
    assert batch["motion"].shape == (6, 12, 27) and batch["first_frame"].shape == (6, 27)

    solver = build_part("face", data, "tiny", no_phonemes=True, no_transcript=True).solver
    ablated = solver.make_batch(np.random.default_rng(0), 4)
    assert "text_tokens" not in ablated and bool((ablated["phonemes"] == PAD_ID).all())
    full = build_part("face", data, "tiny").solver.make_batch(np.random.default_rng(0), 4)
    assert bool((full["phonemes"] != PAD_ID).all()) and full["text_tokens"].shape[0] == 4


def test_a_dataset_without_phones_needs_no_phonemes(tmp_path: Path) -> None:
    writer = DatasetWriter(tmp_path / "bare", DatasetInfo(FPS, ARKIT_LAYOUT))
    motion = MotionSequence(np.zeros((20, ARKIT_LAYOUT.size)), np.zeros((20, 6)), ARKIT_LAYOUT, FPS)
    writer.write_clip(Clip(ClipMeta("a", "s"), np.zeros(20 * 640, np.float32), motion,
                           {"energy": np.ones((20, 1), np.float32)}))
    writer.finalize()
    with pytest.raises(TalkingHeadError, match="no usable clip with a phone alignment.*--no-phonemes"):
        DimitraCorpus(tmp_path / "bare", "lips")
    corpus = DimitraCorpus(tmp_path / "bare", "lips", phonemes=False)
    assert bool((corpus.clips[0].phonemes == SILENCE_ID).all())


# --------------------------------------------------------------------------------------------- registry

def test_the_registry_lists_the_components_without_torch() -> None:
    code = ("import sys; from talkinghead.training.registry import components; t = components(); "
            "from talkinghead.cli import build_parser; "
            "a = build_parser().parse_args(['train', 'dimitra.pose', '--data', 'D', '--out', 'O', "
            "'--no-first-loss', '--no-transcript']); "
            "print(*[n for n in t if n.startswith('dimitra.')], a.option_names, a.no_first_loss, a.no_phonemes, "
            "'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["dimitra.lips", "dimitra.face", "dimitra.pose", "dimitra.phonemes",
                           "('no_phonemes',", "'no_transcript',", "'no_first_loss')", "True", "False", "False"]


# ------------------------------------------------------------------------------------------------ training

def test_each_part_trains_and_its_loss_falls(trained: dict[str, dict[str, Any]]) -> None:
    for part, summary in trained.items():
        losses = summary["losses"]
        assert summary["steps_run"] == 30
        assert np.mean(losses[-8:]) < 0.8 * np.mean(losses[:8]), (part, losses)
        assert ("first" in summary["metrics"]) == (part == "pose")


def test_the_pose_loss_adds_l_first_and_no_first_loss_removes_it(data: Path, trained: dict[str, Any],
                                                                  tmp_path: Path) -> None:
    m = trained["pose"]["metrics"]
    np.testing.assert_allclose(m["loss"], LAMBDA_DIFF * np.array(m["diff"]) + np.array(m["first"]), rtol=1e-5)
    assert all(v > 0 for v in m["first"])
    summary = train("dimitra.pose", data, tmp_path / "pose", "tiny", steps=4, no_first_loss=True, tensorboard=False)
    assert "first" not in summary["metrics"]
    np.testing.assert_allclose(summary["metrics"]["loss"], LAMBDA_DIFF * np.array(summary["metrics"]["diff"]),
                               rtol=1e-5)
    pose_net = CMDT.from_pretrained(tmp_path / "pose")
    assert pose_net.layout is not None and pose_net.layout["channels"] == list(POSE_NAMES)
    info = _extra(tmp_path / "pose")
    assert info["command"] == "talkinghead train dimitra.pose --preset tiny --no-first-loss"
    assert info["variant"] == ["no_first_loss"]
    assert info["losses"] == {"lambda_diff": 6.0, "lambda_first": 0.0, "lambda_sync": 0.0}


def test_resume_continues_from_the_saved_step(data: Path, tmp_path: Path) -> None:
    full = train("dimitra.lips", data, tmp_path / "full", "tiny", steps=12, tensorboard=False)
    train("dimitra.lips", data, tmp_path / "cut", "tiny", steps=12, stop_after=11, tensorboard=False)
    assert load_state(tmp_path / "cut.train").step == 10                 # the step since the last save is lost
    rest = train("dimitra.lips", data, tmp_path / "cut", "tiny", steps=12, resume=True, tensorboard=False)
    assert rest["start"] == 10 and rest["end"] == 12
    np.testing.assert_allclose(full["losses"][10:], rest["losses"], rtol=0, atol=0)
    a, b = load_state(tmp_path / "full.train"), load_state(tmp_path / "cut.train")
    for k in a.ema:
        torch.testing.assert_close(a.ema[k], b.ema[k], atol=0, rtol=0)
    with pytest.raises(TalkingHeadError, match="dimitra.lips"):
        train("dimitra.face", data, tmp_path / "cut", "tiny", steps=14, resume=True, tensorboard=False)


def test_the_checkpoint_loads_into_a_cmdt_with_the_same_output(data: Path, trained: dict[str, Any]) -> None:
    folder = trained["lips"]["folder"]
    net = CMDT.from_pretrained(folder).eval()
    solver = build_part("lips", data, "tiny").solver
    reference = solver.build_model().eval()
    reference.load_state_dict(load_state(folder.with_name(folder.name + ".train")).ema)
    batch = solver.make_batch(np.random.default_rng(3), 4)
    conditions = CMDTConditions(audio=batch["audio"], phonemes=batch["phonemes"], first_frame=batch["first_frame"],
                                text_tokens=batch["text_tokens"], text_mask=batch["text_mask"])
    with torch.no_grad():
        torch.testing.assert_close(net(batch["noise"], batch["t"], conditions),
                                   reference(batch["noise"], batch["t"], conditions), atol=0, rtol=0)
    mean, std = solver.corpus.stats("motion")
    torch.testing.assert_close(net.motion_norm.mean, torch.from_numpy(mean))
    torch.testing.assert_close(net.motion_norm.std, torch.from_numpy(std))
    assert float(net.motion_norm.mean.max()) < VAL_OFFSET                # the validation clip is not in them
    assert net.config.motion_dim == 13 and net.config.audio_dim == 7 and net.preset_name == "tiny"
    lips = list(MOUTH_CHANNELS)
    assert net.layout == {"name": "arkit:lips", "channels": lips, "groups": {"mouth": lips}}
    assert net.audio_features is not None and net.audio_features["names"] == ["energy", "sound"]
    info = _extra(folder)
    assert info["part"] == "lips" and info["channels"] == list(MOUTH_CHANNELS) and info["seed"] == 0
    assert info["command"] == "talkinghead train dimitra.lips --preset tiny" and info["step"] == 30
    assert info["first_frame"] == "previous" and info["window_frames"] == 12
    assert info["conditions"] == {"phonemes": True, "transcript": True}
    assert info["dataset_layout"]["channels"] == list(ARKIT_LAYOUT.channels)


def _extra(folder: Path) -> dict[str, Any]:
    from talkinghead.checkpoint import read_checkpoint_info

    return read_checkpoint_info(folder, "dimitra.cmdt").extra

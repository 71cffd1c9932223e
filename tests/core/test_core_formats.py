"""Motion files and datasets: round trips, schema checks, resumable writing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from talkinghead.audio.phonemes import PhoneSegment
from talkinghead.data.dataset import Clip, ClipMeta, Dataset, DatasetInfo, DatasetWriter
from talkinghead.errors import TalkingHeadError
from talkinghead.sequence import ChannelLayout, MotionSequence

LAYOUT = ChannelLayout("test", ("jawOpen", "mouthSmileLeft", "eyeBlinkLeft"),
                       {"mouth": ("jawOpen", "mouthSmileLeft"), "face": ("eyeBlinkLeft",)})


def _motion(t: int = 20, seed: int = 0) -> MotionSequence:
    rng = np.random.default_rng(seed)
    return MotionSequence(rng.random((t, 3)), rng.normal(size=(t, 6)) * 0.1, LAYOUT, 25.0,
                          {"neutral": rng.normal(size=(468, 3)).astype(np.float32), "descriptor": rng.random(8)},
                          "unit-test")


def test_layout_groups_and_validation() -> None:
    assert LAYOUT.indices("mouth") == [0, 1]
    assert ChannelLayout.from_dict(LAYOUT.to_dict()) == LAYOUT
    with pytest.raises(TalkingHeadError, match="repeats"):
        ChannelLayout("bad", ("a", "a"))
    with pytest.raises(TalkingHeadError, match="unknown channels"):
        ChannelLayout("bad", ("a",), {"g": ("b",)})


def test_motion_round_trip(tmp_path: Path) -> None:
    motion = _motion()
    motion.save(tmp_path / "m.npz")
    back = MotionSequence.load(tmp_path / "m.npz")
    assert np.array_equal(back.expression, motion.expression) and np.array_equal(back.pose, motion.pose)
    assert back.layout == LAYOUT and back.fps == 25.0 and back.source == "unit-test"
    assert np.array_equal(back.identity["neutral"], motion.identity["neutral"])
    assert np.array_equal(back.channel("jawOpen"), motion.expression[:, 0])
    assert len(back.slice(5, 10)) == 5


def test_motion_validation(tmp_path: Path) -> None:
    with pytest.raises(TalkingHeadError, match=r"\[T, 3\]"):
        MotionSequence(np.zeros((5, 2)), np.zeros((5, 6)), LAYOUT)
    with pytest.raises(TalkingHeadError, match="Pose must be"):
        MotionSequence(np.zeros((5, 3)), np.zeros((4, 6)), LAYOUT)
    (tmp_path / "bad.npz").write_bytes(b"garbage")
    with pytest.raises(TalkingHeadError, match="not a readable motion file"):
        MotionSequence.load(tmp_path / "bad.npz")
    np.savez(tmp_path / "other.npz", meta=np.array(json.dumps({"format": "x"})))
    with pytest.raises(TalkingHeadError, match="not a talkinghead motion file"):
        MotionSequence.load(tmp_path / "other.npz")


def _clip(i: int, split: str = "train") -> Clip:
    motion = _motion(25 + i, seed=i)
    meta = ClipMeta(f"s{i}_happy_2_{i:03d}", f"s{i}", "happy", 2, split)
    return Clip(meta, np.random.default_rng(i).normal(size=16_000).astype(np.float32) * 0.1, motion,
                {"mfcc": np.random.default_rng(i).normal(size=(len(motion), 13))},
                [PhoneSegment("HH", 0.0, 0.1), PhoneSegment("AY", 0.1, 0.3)], f"sentence {i}")


def test_dataset_round_trip(tmp_path: Path) -> None:
    info = DatasetInfo(25.0, LAYOUT, audio_features={"name": "mfcc", "dims": 13})
    writer = DatasetWriter(tmp_path / "ds", info)
    clips = [_clip(0), _clip(1, "val"), _clip(2, "test")]
    for clip in clips:
        writer.write_clip(clip)
    writer.finalize()
    ds = Dataset(tmp_path / "ds")
    assert len(ds) == 3 and ds.ids("val") == [clips[1].meta.id]
    for clip in clips:
        back = ds.clip(clip.meta.id)
        assert np.array_equal(back.audio, clip.audio)
        assert np.array_equal(back.motion.expression, clip.motion.expression)
        assert np.allclose(back.features["mfcc"], clip.features["mfcc"])
        assert back.phones == clip.phones and back.transcript == clip.transcript
        assert back.meta.num_frames == len(clip.motion) and back.meta.duration == pytest.approx(1.0)
        assert np.array_equal(back.motion.identity["neutral"], clip.motion.identity["neutral"])
    assert ds.info.audio_features == {"name": "mfcc", "dims": 13}


def test_dataset_resume_and_checks(tmp_path: Path) -> None:
    info = DatasetInfo(25.0, LAYOUT)
    writer = DatasetWriter(tmp_path / "ds", info)
    writer.write_clip(_clip(0))
    # A killed writer leaves only temp files, which are ignored; a new writer resumes.
    (tmp_path / "ds" / "clips" / ".s1_x.part.npz").write_bytes(b"partial")
    writer2 = DatasetWriter(tmp_path / "ds", info)
    assert writer2.has_clip(_clip(0).meta.id) and not writer2.has_clip(_clip(1).meta.id)
    writer2.write_clip(_clip(1))
    writer2.finalize()
    assert len(Dataset(tmp_path / "ds")) == 2
    with pytest.raises(TalkingHeadError, match="another channel layout"):
        DatasetWriter(tmp_path / "ds", DatasetInfo(25.0, ChannelLayout("x", ("a",))))
    with pytest.raises(TalkingHeadError, match="split"):
        bad = _clip(3)
        writer2.write_clip(Clip(ClipMeta("x", "s", split="dev"), bad.audio, bad.motion))
    with pytest.raises(TalkingHeadError, match="not a valid clip id"):
        writer2.clip_path("../escape")
    meta = json.loads((tmp_path / "ds" / "dataset.json").read_text())
    (tmp_path / "ds" / "dataset.json").write_text(json.dumps({**meta, "schema_version": 7}))
    with pytest.raises(TalkingHeadError, match="schema version 7"):
        Dataset(tmp_path / "ds")
    with pytest.raises(TalkingHeadError, match="does not exist"):
        Dataset(tmp_path / "missing")


def test_outputs_get_ordinary_permissions(tmp_path: Path) -> None:
    import os

    path = _motion().save(tmp_path / "m.npz")
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask

"""Video reading and writing: the mp4 round trip, containers, fps resampling, atomic output."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from talkinghead.errors import TalkingHeadError
from talkinghead.io.audio import Audio
from talkinghead.io.video import iter_frames, probe_video, read_video, write_video

from media_helpers import make_video_file, tone


def _frames(n: int, h: int = 64, w: int = 80) -> np.ndarray:
    frames = np.zeros((n, h, w, 3), np.uint8)
    for i in range(n):
        frames[i, ..., 0] = (i * 7) % 256
        frames[i, : h // 2, : w // 3, 1] = 220
    return frames


@pytest.mark.parametrize(("num_frames", "fps", "audio_seconds"), [(50, 25, 2.0), (37, 30, 1.0), (25, 25, 3.0)])
def test_mp4_round_trip(tmp_path: Path, num_frames: int, fps: int, audio_seconds: float) -> None:
    frames = _frames(num_frames)
    out = write_video(tmp_path / "o.mp4", frames, fps, Audio(tone(audio_seconds)))
    video = read_video(out)
    assert len(video.frames) == num_frames
    assert video.fps == pytest.approx(fps)
    assert video.audio is not None
    # Audio trimmed/padded to the video's duration, equal within one frame.
    assert abs(video.audio.duration - num_frames / fps) < 1.0 / fps
    # Content survives encoding.
    levels = video.frames[..., 0].mean(axis=(1, 2))
    assert np.abs(levels - frames[..., 0].mean(axis=(1, 2))).max() < 6
    info = probe_video(out)
    assert (info.width, info.height) == (80, 64)
    assert "synthetic content" in video.metadata.get("comment", "")


def test_write_from_iterator_and_odd_size(tmp_path: Path) -> None:
    out = write_video(tmp_path / "o.mp4", iter(_frames(10, 63, 81)), 25)
    video = read_video(out)
    assert video.frames.shape == (10, 62, 80, 3)
    assert video.audio is None


@pytest.mark.parametrize(
    ("name", "vcodec", "acodec", "rate"),
    [("a.mov", "libx264", "aac", 44_100), ("a.avi", "mpeg4", "libmp3lame", 44_100),
     ("a.webm", "libvpx-vp9", "libopus", 48_000), ("a.mkv", "libx264", "aac", 44_100)],
)
def test_containers(tmp_path: Path, name: str, vcodec: str, acodec: str, rate: int) -> None:
    path = make_video_file(tmp_path / name, num_frames=30, vcodec=vcodec, acodec=acodec, audio_rate=rate)
    video = read_video(path)
    assert len(video.frames) == 30 and video.fps == pytest.approx(25)
    assert video.audio is not None and video.audio.duration == pytest.approx(1.2, abs=0.05)


def test_fps_resampling(tmp_path: Path) -> None:
    path = make_video_file(tmp_path / "v.mp4", num_frames=50, fps=25, acodec=None)
    down = read_video(path, fps=10)
    up = read_video(path, fps=50)
    assert len(down.frames) == 20 and len(up.frames) == 100
    # Output frame k shows the source frame at time k / fps: red level 8 * source index.
    assert abs(int(down.frames[3, 0, 0, 0]) - 8 * int(3 * 25 / 10)) <= 4
    assert abs(int(up.frames[9, 0, 0, 0]) - 8 * (9 // 2)) <= 4
    assert sum(1 for _ in iter_frames(path, 25)) == 50


def test_failed_write_leaves_nothing(tmp_path: Path) -> None:
    def bad_frames():
        yield _frames(1)[0]
        yield np.zeros((4, 4), np.float32)

    with pytest.raises(TalkingHeadError):
        write_video(tmp_path / "o.mp4", bad_frames(), 25)
    assert list(tmp_path.iterdir()) == []


def test_corrupt_and_wrong_inputs(tmp_path: Path) -> None:
    (tmp_path / "x.mp4").write_bytes(b"\x00" * 1000)
    with pytest.raises(TalkingHeadError, match="not a readable video"):
        read_video(tmp_path / "x.mp4")
    good = write_video(tmp_path / "g.mp4", _frames(20), 25)
    data = good.read_bytes()
    (tmp_path / "t.mp4").write_bytes(data[: len(data) // 3])
    with pytest.raises(TalkingHeadError):
        read_video(tmp_path / "t.mp4")
    with pytest.raises(TalkingHeadError, match="should end in .mp4"):
        write_video(tmp_path / "o.avi", _frames(2), 25)
    with pytest.raises(TalkingHeadError, match="no frames"):
        write_video(tmp_path / "o.mp4", [], 25)

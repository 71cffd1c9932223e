"""Video reading (mp4, mov, avi, webm, mkv) and writing (H.264 + AAC mp4), through PyAV.

Reading resamples frames to a requested fps by taking, for every output time ``k / fps``, the
most recent decoded frame (what a player would show). The audio track comes from
:func:`talkinghead.io.audio.load_audio`.

Writing encodes H.264 (yuv420p, even sizes) and AAC; the audio is trimmed or zero-padded to the
video duration ``T / fps`` so both streams have the same length within one frame (AAC's encoder
priming adds at most one 1024-sample frame). The file is written to a temporary name and moved
into place only when complete. Provenance metadata marks the file as synthetic content.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from talkinghead import __version__
from talkinghead.errors import TalkingHeadError
from talkinghead.io.audio import Audio, _check_file, load_audio
from talkinghead.io.files import atomic_path

VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".webm", ".mkv", ".m4v")
AUDIO_RATE_OUT = 48_000


@dataclass(frozen=True)
class VideoInfo:
    """Stream facts read without decoding: size, fps, frame count estimate, duration (s)."""

    width: int
    height: int
    fps: float
    num_frames: int
    duration: float
    has_audio: bool


@dataclass
class Video:
    """Decoded frames ``[T, H, W, 3]`` uint8 at ``fps``, and the audio track if any."""

    frames: np.ndarray
    fps: float
    audio: Audio | None = None
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def duration(self) -> float:
        return len(self.frames) / self.fps


def _open(path: Path) -> av.container.InputContainer:
    _check_file(path, "video")
    try:
        return av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as err:
        raise TalkingHeadError(f"{path} is not a readable video file.") from err


def probe_video(path: str | Path) -> VideoInfo:
    path = Path(path)
    with _open(path) as container:
        if not container.streams.video:
            raise TalkingHeadError(f"{path} has no video track.")
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or Fraction(25)
        duration = 0.0
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / av.time_base
        frames = stream.frames or int(round(duration * float(rate)))
        return VideoInfo(stream.width, stream.height, float(rate), frames, duration,
                         bool(container.streams.audio))


def iter_frames(path: str | Path, fps: float | None = None) -> Iterator[np.ndarray]:
    """Yield RGB uint8 frames ``[H, W, 3]``, resampled to ``fps`` when given (bounded memory)."""
    path = Path(path)
    container = _open(path)
    with container:
        if not container.streams.video:
            raise TalkingHeadError(f"{path} has no video track.")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        next_index = 0
        last: np.ndarray | None = None
        last_time = 0.0
        decoded_any = False
        try:
            for frame in container.decode(stream):
                image = frame.to_ndarray(format="rgb24")
                decoded_any = True
                if fps is None:
                    yield image
                    continue
                t = float(frame.time) if frame.time is not None else last_time + 1.0 / 25
                # Emit every output time that falls before this frame's time using the previous frame.
                while last is not None and next_index / fps < t - 1e-6:
                    yield last
                    next_index += 1
                last, last_time = image, t
            if fps is not None and last is not None:
                end = last_time + 1.0 / float(stream.average_rate or 25)
                while next_index / fps < end - 1e-6:
                    yield last
                    next_index += 1
        except (av.error.FFmpegError, ValueError) as err:
            if not decoded_any:
                raise TalkingHeadError(f"{path} is corrupt: no video frame could be decoded.") from err
            # A truncated file: stop at the last decodable frame.
        if not decoded_any:
            raise TalkingHeadError(f"{path} contains no video frames (empty or truncated).")


def read_video(path: str | Path, fps: float | None = None, with_audio: bool = True) -> Video:
    """Read all frames (resampled to ``fps`` if given) and the audio track."""
    path = Path(path)
    info = probe_video(path)
    frames = np.stack(list(iter_frames(path, fps)))
    audio = load_audio(path) if with_audio and info.has_audio else None
    with _open(path) as container:
        metadata = dict(container.metadata)
    return Video(frames, float(fps or info.fps), audio, metadata)


def _even(frames_shape: tuple[int, ...]) -> tuple[int, int]:
    h, w = frames_shape[:2]
    return h - h % 2, w - w % 2


def write_video(
    path: str | Path,
    frames: Iterable[np.ndarray],
    fps: float,
    audio: Audio | None = None,
    crf: int = 20,
    preset: str = "veryfast",
    metadata: dict[str, str] | None = None,
) -> Path:
    """Encode RGB uint8 frames ``[H, W, 3]`` (array or iterator) as H.264 + AAC mp4, atomically.

    Frames with odd sizes are cropped by one pixel to the even size H.264 needs. Returns ``path``.
    """
    path = Path(path)
    if path.suffix.lower() not in (".mp4", ".m4v", ".mov"):
        raise TalkingHeadError(f"The output {path} should end in .mp4.")
    tags = {"comment": "synthetic content: generated by talkinghead", "encoder_tool": f"talkinghead {__version__}"}
    tags.update(metadata or {})
    rate = Fraction(fps).limit_denominator(1001)
    iterator = iter(frames)
    first = next(iterator, None)
    if first is None:
        raise TalkingHeadError("There are no frames to write.")
    h, w = _even(np.asarray(first).shape)
    if h < 2 or w < 2:
        raise TalkingHeadError("Video frames are too small to encode.")
    count = 0
    with atomic_path(path) as tmp:
        with av.open(str(tmp), mode="w", format="mp4") as out:
            for key, value in tags.items():
                out.metadata[key] = value
            vstream = out.add_stream("libx264", rate=rate)
            vstream.width, vstream.height, vstream.pix_fmt = w, h, "yuv420p"
            vstream.options = {"crf": str(crf), "preset": preset}
            astream = None
            if audio is not None:
                astream = out.add_stream("aac", rate=AUDIO_RATE_OUT)
                astream.layout = "mono"
            for image in _chain(first, iterator):
                image = np.asarray(image)
                if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
                    raise TalkingHeadError("Video frames must be RGB uint8 arrays of shape [H, W, 3].")
                if image.shape[0] < h or image.shape[1] < w:
                    raise TalkingHeadError("All video frames must have the same size.")
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image[:h, :w]), format="rgb24")
                for packet in vstream.encode(frame):
                    out.mux(packet)
                count += 1
            for packet in vstream.encode():
                out.mux(packet)
            if audio is not None and astream is not None:
                _write_audio(out, astream, audio, count / float(rate))
    return path


def _chain(first: np.ndarray, rest: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    yield first
    yield from rest


def _write_audio(out: av.container.OutputContainer, astream: av.audio.stream.AudioStream, audio: Audio,
                 duration: float) -> None:
    """AAC at 48 kHz, trimmed or zero-padded to ``duration`` seconds."""
    n = int(round(duration * audio.sample_rate))
    samples = np.zeros(n, dtype=np.float32)
    m = min(n, len(audio.samples))
    samples[:m] = audio.samples[:m]
    resampler = av.AudioResampler(format="fltp", layout="mono", rate=AUDIO_RATE_OUT)
    block = audio.sample_rate  # one second at a time
    pts = 0
    for start in range(0, len(samples), block):
        chunk = samples[start : start + block][None, :]
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format="flt", layout="mono")
        frame.sample_rate = audio.sample_rate
        frame.pts = pts
        pts += chunk.shape[1]
        for rs in resampler.resample(frame):
            for packet in astream.encode(rs):
                out.mux(packet)
    for rs in resampler.resample(None):
        for packet in astream.encode(rs):
            out.mux(packet)
    for packet in astream.encode():
        out.mux(packet)

"""Video reading (mp4, mov, avi, webm, mkv) and writing (H.264 + AAC mp4), through PyAV.

Reading resamples frames to a requested fps by taking, for every output time ``k / fps``, the
most recent decoded frame (what a player would show). The audio track comes from
:func:`talkinghead.io.audio.load_audio`.

Writing encodes H.264 (yuv420p, even sizes) and AAC; the audio is trimmed or zero-padded to the
video duration ``T / fps`` so both streams have the same length within one frame (AAC's encoder
priming adds at most one 1024-sample frame). The file is written to a temporary name and moved
into place only when complete. Provenance metadata marks the file as synthetic content. The audio is
encoded in a thread while the video is, and with ``prefetch`` the frames are made in another (a renderer
overlapping the encoder); neither changes a byte of the file.
"""

from __future__ import annotations

import collections
import contextlib
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, cast

import av
import numpy as np

from talkinghead import __version__
from talkinghead.errors import TalkingHeadError
from talkinghead.io.audio import Audio, _check_file, load_audio
from talkinghead.io.files import atomic_path

VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".webm", ".mkv", ".m4v")
AUDIO_RATE_OUT = 48_000
#: the video encoder. (libx264 does not always write the same bytes for the same frames: under pytest one encode
#: in a few differs; the tests that compare files byte for byte swap in FFmpeg's deterministic mpeg4 here.)
_VIDEO_CODEC = "libx264"


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
    prefetch: int = 0,
) -> Path:
    """Encode RGB uint8 frames ``[H, W, 3]`` (array or iterator) as H.264 + AAC mp4, atomically.

    Frames with odd sizes are cropped by one pixel to the even size H.264 needs. Returns ``path``.

    ``prefetch`` > 0: ``frames`` is iterated in a worker thread, at most ``prefetch`` frames (and
    :data:`PREFETCH_BYTES`) ahead of the encoder, so that making the frames (a renderer) and encoding
    them (libx264 and the colour conversion run without the GIL) overlap on two cores. The audio track is
    encoded in a second thread as the video advances. The file is the same byte for byte either way; on an
    error or Ctrl-C in either thread both threads are stopped and joined and no file is left.
    """
    path = Path(path)
    if path.suffix.lower() not in (".mp4", ".m4v", ".mov"):
        raise TalkingHeadError(f"The output {path} should end in .mp4.")
    tags = {"comment": "synthetic content: generated by talkinghead", "encoder_tool": f"talkinghead {__version__}"}
    tags.update(metadata or {})
    rate = Fraction(fps).limit_denominator(1001)
    with frames_ahead(frames, prefetch) as iterator:
        first = next(iterator, None)
        if first is None:
            raise TalkingHeadError("There are no frames to write.")
        h, w = _even(np.asarray(first).shape)
        if h < 2 or w < 2:
            raise TalkingHeadError("Video frames are too small to encode.")
        with atomic_path(path) as tmp:
            with av.open(str(tmp), mode="w", format="mp4") as out:
                for key, value in tags.items():
                    out.metadata[key] = value
                vstream = cast(av.video.stream.VideoStream, out.add_stream(_VIDEO_CODEC, rate=rate))
                vstream.width, vstream.height, vstream.pix_fmt = w, h, "yuv420p"
                vstream.options = {"crf": str(crf), "preset": preset}
                astream = None
                if audio is not None:
                    astream = out.add_stream("aac", rate=AUDIO_RATE_OUT)
                    astream.layout = "mono"
                # open the codecs and write the header here, before the audio thread uses its codec (the
                # first mux would do the same)
                out.start_encoding()
                track = _AudioTrack(astream, audio, rate) if astream is not None and audio is not None else None
                try:
                    count = _encode_frames(out, vstream, _chain(first, iterator), h, w, track)
                    if track is not None:
                        out.mux(track.finish(count))
                finally:
                    if track is not None:
                        track.stop()
    return path


def _encode_frames(out: av.container.OutputContainer, vstream: av.video.stream.VideoStream,
                   frames: Iterator[np.ndarray], h: int, w: int, track: _AudioTrack | None) -> int:
    """Encode and mux every frame, then flush the video encoder; returns the frame count."""
    count = 0
    for image in frames:
        image = np.asarray(image)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise TalkingHeadError("Video frames must be RGB uint8 arrays of shape [H, W, 3].")
        if image.shape[0] < h or image.shape[1] < w:
            raise TalkingHeadError("All video frames must have the same size.")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image[:h, :w]), format="rgb24")
        for packet in vstream.encode(frame):
            out.mux(packet)
        count += 1
        if track is not None:
            track.frames_written(count)
    for packet in vstream.encode():
        out.mux(packet)
    return count


def _chain(first: np.ndarray, rest: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    yield first
    yield from rest


# ------------------------------------------------------------------------------------ frames made ahead

#: At most this many bytes of frames wait for the encoder (at least one frame always may).
PREFETCH_BYTES = 64 * 2**20
#: Frames a renderer may run ahead of the encoder (``write_video(prefetch=...)`` from the pipeline and the
#: ``render`` command): enough to keep both cores busy (BENCHMARKS.md).
RENDER_AHEAD = 8


@contextlib.contextmanager
def frames_ahead(frames: Iterable[np.ndarray], depth: int) -> Iterator[Iterator[np.ndarray]]:
    """An iterator over ``frames``; with ``depth`` > 0 they are made in a worker thread, at most ``depth``
    frames (and :data:`PREFETCH_BYTES`) ahead of the reader. An exception while making them is raised in the
    reader. Leaving the block (done, an error, Ctrl-C) stops the worker after the frame it is making and joins
    it; the frames' iterator is closed in the worker."""
    if depth <= 0:
        yield iter(frames)
        return
    ahead = _Ahead(frames, depth)
    try:
        yield ahead
    finally:
        ahead.stop()


_END = object()


class _Ahead:
    """A bounded buffer filled by a worker thread that iterates ``frames`` (see :func:`frames_ahead`)."""

    def __init__(self, frames: Iterable[np.ndarray], depth: int) -> None:
        self._depth = depth
        self._buffer: collections.deque[tuple[Any, int]] = collections.deque()
        self._bytes = 0
        self._cond = threading.Condition()
        self._stopped = False
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(frames,), name="talkinghead-frames", daemon=True)
        self._thread.start()

    def __iter__(self) -> Iterator[np.ndarray]:
        return self

    def __next__(self) -> np.ndarray:
        with self._cond:
            while not self._buffer:
                self._cond.wait()
            item, size = self._buffer.popleft()
            self._bytes -= size
            if item is _END:
                self._buffer.appendleft((_END, 0))  # stay exhausted
            self._cond.notify_all()
        if item is _END:
            if self._error is not None:
                error, self._error = self._error, None
                raise error
            raise StopIteration
        return item  # type: ignore[no-any-return]

    def _put(self, item: Any, size: int) -> bool:
        with self._cond:
            while not self._stopped and self._buffer and (
                    len(self._buffer) >= self._depth or self._bytes + size > PREFETCH_BYTES):
                self._cond.wait()
            if self._stopped:
                return False
            self._buffer.append((item, size))
            self._bytes += size
            self._cond.notify_all()
            return True

    def _run(self, frames: Iterable[np.ndarray]) -> None:
        iterator = iter(frames)
        try:
            for frame in iterator:
                if not self._put(frame, int(getattr(frame, "nbytes", 0))):
                    return
        except BaseException as err:  # handed to the reader, raised there
            self._error = err
        finally:
            close = getattr(iterator, "close", None)
            try:
                if close is not None:
                    close()
            finally:
                with self._cond:
                    self._buffer.append((_END, 0))
                    self._cond.notify_all()

    def stop(self) -> None:
        """Stop the worker (after the frame it is making) and wait for it."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        self._thread.join()


# ------------------------------------------------------------------------------------ the audio track

class _AudioTrack:
    """The AAC track, encoded in a worker thread while the video is encoded.

    The track is the audio trimmed or zero-padded to the video's duration ``count / fps``, fed to the
    encoder in one-second blocks. A block is encoded as soon as the frames written so far show that it lies
    wholly inside that duration (it cannot shrink), the rest once the frame count is final
    (:meth:`finish`); the packets are muxed by the caller after the video's. The blocks and their order are
    those of encoding after the video, so the file is the same.
    """

    def __init__(self, stream: av.audio.stream.AudioStream, audio: Audio, rate: Fraction) -> None:
        self._stream = stream
        self._audio = audio
        self._rate = rate
        self._known = 0  # samples certainly inside the final duration
        self._total: int | None = None  # the final number of samples
        self._stopped = False
        self._error: BaseException | None = None
        self._packets: list[av.Packet] = []
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="talkinghead-audio", daemon=True)
        self._thread.start()

    def _samples(self, count: int) -> int:
        return int(round(count / float(self._rate) * self._audio.sample_rate))

    def frames_written(self, count: int) -> None:
        n = self._samples(count)
        with self._cond:
            if n >= self._known + self._audio.sample_rate:
                self._known = n
                self._cond.notify_all()

    def finish(self, count: int) -> list[av.Packet]:
        """The track's packets for ``count`` video frames (waits for the worker)."""
        with self._cond:
            self._total = self._samples(count)
            self._cond.notify_all()
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._packets

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        self._thread.join()

    def _run(self) -> None:
        try:
            self._encode()
        except BaseException as err:  # raised by finish() in the writer's thread
            self._error = err

    def _encode(self) -> None:
        audio, stream = self._audio, self._stream
        block = audio.sample_rate  # one second at a time
        resampler = av.AudioResampler(format="fltp", layout="mono", rate=AUDIO_RATE_OUT)
        start = 0
        while True:
            with self._cond:
                while not self._stopped and self._total is None and start + block > self._known:
                    self._cond.wait()
                if self._stopped:
                    return
                total = self._total
            if total is not None and start >= total:
                break
            end = start + block if total is None else min(start + block, total)
            chunk = np.zeros(end - start, dtype=np.float32)
            m = min(end, len(audio.samples)) - start
            if m > 0:
                chunk[:m] = audio.samples[start : start + m]
            frame = av.AudioFrame.from_ndarray(chunk[None, :], format="flt", layout="mono")
            frame.sample_rate = audio.sample_rate
            frame.pts = start
            for rs in resampler.resample(frame):
                self._packets += stream.encode(rs)
            start = end
        for rs in resampler.resample(None):
            self._packets += stream.encode(rs)
        self._packets += stream.encode()

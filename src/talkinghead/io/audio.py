"""Audio reading: any container/codec FFmpeg knows (wav, flac, ogg, mp3, the audio of a video).

Everything is returned as mono float32 at 16 kHz (the rate every paper's audio encoder uses).
Decoding goes through PyAV (its bundled FFmpeg), resampling through FFmpeg's swresample.
Silence is valid input; an empty, truncated or non-audio file raises :class:`TalkingHeadError`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from talkinghead.errors import TalkingHeadError
from talkinghead.io.files import atomic_path

SAMPLE_RATE = 16_000


@dataclass(frozen=True)
class Audio:
    """Mono float32 samples in [-1, 1] at ``sample_rate`` Hz. ``samples: [N]``."""

    samples: np.ndarray
    sample_rate: int = SAMPLE_RATE

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate


def _check_file(path: Path, what: str) -> None:
    if not path.exists():
        raise TalkingHeadError(f"The {what} file {path} does not exist.")
    if path.is_dir():
        raise TalkingHeadError(f"{path} is a folder, not a {what} file.")
    if path.stat().st_size == 0:
        raise TalkingHeadError(f"The {what} file {path} is empty.")


def iter_audio(path: str | Path, sample_rate: int = SAMPLE_RATE) -> Iterator[np.ndarray]:
    """Decode the first audio stream of ``path`` as consecutive mono float32 blocks at ``sample_rate``.

    Blocks are whatever the decoder delivers (one packet each), so memory stays bounded for any
    length. A file that cannot be opened, has no audio track, or fails before its first block raises
    :class:`TalkingHeadError`; a decoding error later (a truncated tail) ends the stream, as players do.
    """
    path = Path(path)
    _check_file(path, "audio")
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as err:
        raise TalkingHeadError(f"{path} is not a readable audio or video file.") from err
    with container:
        if not container.streams.audio:
            raise TalkingHeadError(f"{path} has no audio track.")
        stream = container.streams.audio[0]
        # Keep the channel layout through resampling and average the channels ourselves: FFmpeg's
        # downmix to mono sums channels at -3 dB, which changes the level of identical channels.
        resampler = av.AudioResampler(format="fltp", rate=sample_rate)
        decoded_any = False
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    decoded_any = True
                    yield out.to_ndarray().mean(axis=0)
        except (av.error.FFmpegError, ValueError) as err:
            if not decoded_any:
                raise TalkingHeadError(f"{path} is corrupt: its audio could not be decoded.") from err
        for out in resampler.resample(None):
            yield out.to_ndarray().mean(axis=0)


def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE) -> Audio:
    """Decode the first audio stream of ``path`` to mono float32 at ``sample_rate``."""
    return join_audio(list(iter_audio(path, sample_rate)), path, sample_rate)


def join_audio(chunks: list[np.ndarray], path: str | Path, sample_rate: int = SAMPLE_RATE) -> Audio:
    """The blocks :func:`iter_audio` decoded from ``path``, as one :class:`Audio` (what :func:`load_audio` returns),
    for a caller that looked at the blocks as they came (e.g. to stop at a length limit)."""
    if not chunks:
        raise TalkingHeadError(f"{path} contains no audio samples (empty or truncated).")
    samples = np.concatenate(chunks).astype(np.float32)
    if not np.all(np.isfinite(samples)):
        raise TalkingHeadError(f"{path} decodes to invalid (non-finite) samples.")
    return Audio(np.clip(samples, -1.0, 1.0), sample_rate)


def save_wav(path: str | Path, audio: Audio) -> Path:
    """Write 16-bit PCM wav atomically."""
    import soundfile as sf

    with atomic_path(path) as tmp:
        sf.write(str(tmp), audio.samples, audio.sample_rate, subtype="PCM_16", format="WAV")
    return Path(path)

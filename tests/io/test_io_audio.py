"""Audio reading: formats, rates, channels, silence, and every bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from talkinghead.errors import TalkingHeadError
from talkinghead.io.audio import Audio, load_audio, save_wav

from media_helpers import make_video_file, tone


@pytest.mark.parametrize(
    ("suffix", "fmt", "subtype"),
    [(".wav", "WAV", "PCM_16"), (".flac", "FLAC", "PCM_16"), (".ogg", "OGG", "VORBIS"), (".mp3", "MP3", None)],
)
@pytest.mark.parametrize(("rate", "channels"), [(44_100, 2), (8_000, 1)])
def test_formats_rates_channels_become_mono_16k(tmp_path: Path, suffix, fmt, subtype, rate, channels) -> None:
    path = tmp_path / f"x{suffix}"
    sf.write(str(path), tone(1.5, rate, channels=channels), rate, format=fmt, subtype=subtype)
    audio = load_audio(path)
    assert audio.sample_rate == 16_000
    assert audio.samples.dtype == np.float32 and audio.samples.ndim == 1
    assert audio.duration == pytest.approx(1.5, abs=0.06)  # mp3/vorbis add encoder padding
    # The tone's amplitude survives the mono mix and resampling.
    mid = audio.samples[4000:20000]
    assert np.sqrt(np.mean(mid**2)) == pytest.approx(0.3 / np.sqrt(2), rel=0.05)


def test_silence_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "silence.wav"
    sf.write(str(path), np.zeros(16_000, np.float32), 16_000)
    audio = load_audio(path)
    assert audio.duration == pytest.approx(1.0)
    assert np.all(audio.samples == 0)


def test_audio_track_of_a_video(tmp_path: Path) -> None:
    video = make_video_file(tmp_path / "v.mp4", num_frames=25)
    assert load_audio(video).duration == pytest.approx(1.0, abs=0.05)


def test_wav_round_trip(tmp_path: Path) -> None:
    samples = tone(0.5)
    save_wav(tmp_path / "o.wav", Audio(samples))
    back = load_audio(tmp_path / "o.wav").samples
    assert np.abs(back - samples).max() < 1e-3


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "e.wav").write_bytes(b"")
    with pytest.raises(TalkingHeadError, match="is empty"):
        load_audio(tmp_path / "e.wav")


def test_not_audio(tmp_path: Path) -> None:
    (tmp_path / "t.wav").write_text("this is not audio at all " * 40)
    with pytest.raises(TalkingHeadError, match="not a readable audio"):
        load_audio(tmp_path / "t.wav")


def test_truncated_header_only(tmp_path: Path) -> None:
    path = tmp_path / "x.wav"
    sf.write(str(path), tone(1.0), 16_000)
    path.write_bytes(path.read_bytes()[:44])  # header, no samples
    with pytest.raises(TalkingHeadError):
        load_audio(path)


def test_video_without_audio(tmp_path: Path) -> None:
    video = make_video_file(tmp_path / "mute.mp4", acodec=None)
    with pytest.raises(TalkingHeadError, match="no audio track"):
        load_audio(video)


def test_missing(tmp_path: Path) -> None:
    with pytest.raises(TalkingHeadError, match="does not exist"):
        load_audio(tmp_path / "nope.wav")

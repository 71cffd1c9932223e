"""Small media files made on the fly for tests (nothing is downloaded)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def tone(seconds: float, sr: int = 16_000, freq: float = 440.0, channels: int = 1) -> np.ndarray:
    """A sine tone ``[N]`` (or ``[N, C]``) at amplitude 0.3."""
    t = np.arange(int(round(seconds * sr))) / sr
    mono = (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return mono if channels == 1 else np.stack([mono] * channels, axis=1)


def make_video_file(path: Path, num_frames: int = 30, fps: int = 25, size: tuple[int, int] = (64, 48),
                    vcodec: str = "libx264", acodec: str | None = "aac", audio_rate: int = 44_100,
                    audio_seconds: float | None = None) -> Path:
    """Write a test video with any container/codec PyAV knows; frame i has red level 8*i."""
    w, h = size
    with av.open(str(path), mode="w") as out:
        vs = out.add_stream(vcodec, rate=Fraction(fps))
        vs.width, vs.height = w, h
        vs.pix_fmt = "yuv420p"
        astream = None
        if acodec:
            astream = out.add_stream(acodec, rate=audio_rate)
            astream.layout = "stereo"
            formats = astream.codec_context.codec.audio_formats or []
            float_formats = [f.name for f in formats if f.name.startswith("flt")]
            if float_formats:
                astream.codec_context.format = float_formats[0]
        for i in range(num_frames):
            img = np.zeros((h, w, 3), np.uint8)
            img[..., 0] = min(255, 8 * i)
            img[: h // 2, : w // 2, 1] = 200
            for p in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(p)
        for p in vs.encode():
            out.mux(p)
        if astream is not None:
            secs = num_frames / fps if audio_seconds is None else audio_seconds
            samples = tone(secs, audio_rate, channels=2).T.copy()
            fmt = astream.codec_context.format.name  # the encoders used here take float samples
            assert fmt.startswith("flt"), fmt
            frame_size = astream.codec_context.frame_size or 1024
            pts = 0
            for start in range(0, samples.shape[1], frame_size):
                chunk = samples[:, start : start + frame_size]
                data = chunk if fmt.endswith("p") else chunk.T.reshape(1, -1)
                data = np.ascontiguousarray(data.astype(np.float32))
                frame = av.AudioFrame.from_ndarray(data, format=fmt, layout="stereo")
                frame.sample_rate = audio_rate
                frame.pts = pts
                pts += chunk.shape[1]
                for p in astream.encode(frame):
                    out.mux(p)
            for p in astream.encode():
                out.mux(p)
    return path

"""A tiny synthetic dataset for the sync judge and `evaluate` tests: speech-like audio whose loudness
envelope and timbre drive the mouth channels, so audio and mouth are in sync by construction."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from talkinghead.data.dataset import Clip, ClipMeta, DatasetInfo, DatasetWriter
from talkinghead.sequence import ChannelLayout, MotionSequence

SR, FPS = 16_000, 25.0


def envelope(rng: np.random.Generator, frames: int) -> np.ndarray:
    """A syllable-like envelope [frames] in [0, 1] (bursts of 3-7 frames with pauses)."""
    env = np.zeros(frames)
    t = int(rng.integers(0, 4))
    while t < frames:
        length = int(rng.integers(3, 8))
        env[t:t + length] = np.sin(np.linspace(0, np.pi, length))[: frames - t] * rng.uniform(0.5, 1.0)
        t += length + int(rng.integers(1, 6))
    return env


def speech_and_mouth(rng: np.random.Generator, frames: int) -> tuple[np.ndarray, np.ndarray]:
    """Audio [frames * 640] and mouth curves [frames, 2] (open, round) that follow it."""
    opening, rounding = envelope(rng, frames), envelope(rng, frames)
    hop = int(SR / FPS)
    t = np.arange(frames * hop) / SR
    up = np.repeat
    amp, rnd = up(opening, hop), up(rounding, hop)
    pitch = 120 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / SR
    voiced = sum(np.sin(k * phase) / k for k in range(1, 12))
    noise = rng.normal(0, 1, len(t))
    audio = amp * (0.6 * voiced * (1 - 0.7 * rnd)) + 0.25 * rnd * amp * np.sin(2 * np.pi * 300 * t) \
        + 0.3 * (1 - amp) * rnd * noise + 0.003 * rng.normal(0, 1, len(t))
    return audio.astype(np.float32), np.stack([opening, rounding], 1)


def write_dataset(root: Path, layout: ChannelLayout, identity: dict[str, np.ndarray], clips_per_split: dict[str, int],
                  frames: int = 60, seed: int = 0, mouth: tuple[str, str] | None = None) -> Path:
    """Clips whose ``mouth`` channels (open, round) follow the audio; other channels are noise."""
    rng = np.random.default_rng(seed)
    writer = DatasetWriter(root, DatasetInfo(FPS, layout))
    names = mouth or (layout.groups["mouth"][0], layout.groups["mouth"][1])
    cols = [layout.channels.index(n) for n in names]
    for split, count in clips_per_split.items():
        for i in range(count):
            audio, curves = speech_and_mouth(rng, frames)
            expr = 0.05 * rng.random((frames, layout.size)).astype(np.float32)
            expr[:, cols] = curves
            pose = np.zeros((frames, 6), np.float32)
            pose[:, 1] = 0.05 * np.sin(np.arange(frames) / 9.0 + rng.uniform(0, 6))
            emotion = ("neutral", "happy")[i % 2]
            motion = MotionSequence(expr, pose, layout, FPS, identity, "test")
            energy = np.log(1e-4 + (audio.reshape(frames, -1) ** 2).mean(1, keepdims=True))
            writer.write_clip(Clip(ClipMeta(f"{split}{i:03d}", f"spk{i % 3}", emotion, 1, split), audio, motion,
                                   {"energy": energy.astype(np.float32)}))
    writer.finalize()
    return root

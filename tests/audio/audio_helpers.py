"""Shared signals for the audio tests."""
from __future__ import annotations

import numpy as np

SR = 16_000


def chirp_tone(seconds: float, f0: float = 150.0, vibrato: float = 30.0, amp: float = 0.3,
               rate: float = 0.5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A harmonic 'vowel' with a slowly moving pitch; returns (samples [N], f0 per sample [N])."""
    t = np.arange(int(seconds * SR)) / SR
    f = f0 + vibrato * np.sin(2 * np.pi * rate * t)
    phase = 2 * np.pi * np.cumsum(f) / SR
    x = sum(amp / k * np.sin(k * phase) for k in (1, 2, 3))
    return np.asarray(x, dtype=np.float32), f

from __future__ import annotations

import numpy as np
import pytest
from audio_helpers import SR, chirp_tone


@pytest.fixture
def speechlike() -> np.ndarray:
    """2.6 s: 0.4 s silence, 1.4 s voiced tone, 0.3 s noise burst (unvoiced), 0.5 s silence."""
    rng = np.random.default_rng(0)
    tone, _ = chirp_tone(1.4)
    noise = (0.05 * rng.standard_normal(int(0.3 * SR))).astype(np.float32)
    return np.concatenate([np.zeros(int(0.4 * SR), np.float32), tone, noise, np.zeros(int(0.5 * SR), np.float32)])

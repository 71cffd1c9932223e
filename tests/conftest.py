"""Shared test fixtures (nothing is downloaded)."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("TALKINGHEAD_QUIET", "1")


@pytest.fixture
def portrait() -> np.ndarray:
    """skimage's astronaut: a real public-domain portrait, RGB uint8 [512, 512, 3]."""
    from skimage import data

    return data.astronaut()

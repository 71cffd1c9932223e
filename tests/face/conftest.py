"""Shared fixtures of the face tests: the astronaut portrait and its fit (MediaPipe runs once)."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    import skimage.data

    return skimage.data.astronaut()


@pytest.fixture(scope="session")
def astronaut_fit(astronaut: np.ndarray):  # noqa: ANN201
    from talkinghead.face.model import fit_image

    return fit_image(astronaut)

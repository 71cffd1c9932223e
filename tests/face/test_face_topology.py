"""The mesh topology constants: one definition, and the stable vertices really are the ones expressions
hardly move (they carry the head's rigid motion in fitting, smoothing and the warp renderer)."""

from __future__ import annotations

import numpy as np
import pytest

from talkinghead.face import topology
from talkinghead.face.model import FaceModel, fit_image


def test_counts_and_stable_set() -> None:
    assert (topology.NUM_VERTICES, topology.NUM_LANDMARKS) == (468, 478)
    stable = topology.STABLE_VERTICES
    assert len(set(stable.tolist())) == len(stable) and stable.min() >= 0 and stable.max() < topology.NUM_VERTICES
    with pytest.raises(ValueError):
        stable[0] = 0  # shared by every module: read-only


def test_expressions_hardly_move_the_stable_vertices(portrait: np.ndarray) -> None:
    model = FaceModel.for_identity(fit_image(portrait).identity["neutral"])
    width = float(np.ptp(model.neutral[:, 0]))
    moved = np.linalg.norm(model.basis, axis=-1).max(0) / width  # [468] largest move per unit coefficient
    assert moved[topology.STABLE_VERTICES].max() < 0.02
    assert moved[topology.STABLE_VERTICES].max() < np.median(moved)

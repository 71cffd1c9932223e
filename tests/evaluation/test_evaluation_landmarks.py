"""Kabsch-Umeyama parity with scikit-image's SimilarityTransform; F-LMD / M-LMD hand cases."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation
from skimage.transform import SimilarityTransform

from talkinghead.errors import TalkingHeadError
from talkinghead.evaluation.landmarks import (
    FACE_INDICES,
    MOUTH_INDICES,
    align_landmarks,
    f_lmd,
    kabsch_umeyama,
    landmark_distance,
    m_lmd,
)


def _face(seed: int = 0, t: int = 5, n: int = 478) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(t, n, 3)) * np.array([60.0, 80.0, 30.0]) + 128.0


def _random_similarity(rng: np.random.Generator, points: np.ndarray) -> np.ndarray:
    d = points.shape[-1]
    if d == 3:
        rot = Rotation.from_rotvec(rng.normal(size=3) * 0.4).as_matrix()
    else:
        a = rng.uniform(-0.5, 0.5)
        rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return rng.uniform(0.5, 2.0) * points @ rot.T + rng.normal(size=d) * 20.0


@pytest.mark.parametrize("dim", [2, 3])
def test_umeyama_matches_scikit_image(dim: int) -> None:
    rng = np.random.default_rng(dim)
    src = rng.normal(size=(6, 50, dim))
    dst = src + rng.normal(size=src.shape) * 0.3 + rng.normal(size=(6, 1, dim))
    dst[3] = src[3] * np.array([-1.0] + [1.0] * (dim - 1))  # a mirror image: the reflection guard matters
    fit = kabsch_umeyama(src, dst)
    for t in range(6):
        reference = SimilarityTransform.from_estimate(src[t], dst[t])
        np.testing.assert_allclose(fit.matrix()[t], reference.params, atol=1e-10)
        np.testing.assert_allclose(fit.apply(src)[t], reference(src[t]), atol=1e-10)
    assert np.allclose(np.linalg.det(fit.rotation), 1.0)


def test_umeyama_recovers_a_known_transform() -> None:
    rng = np.random.default_rng(3)
    src = rng.normal(size=(40, 3))
    rot = Rotation.from_euler("xyz", [0.2, -0.4, 0.1]).as_matrix()
    dst = 1.7 * src @ rot.T + np.array([3.0, -2.0, 5.0])
    fit = kabsch_umeyama(src, dst)
    assert fit.scale[0] == pytest.approx(1.7)
    np.testing.assert_allclose(fit.rotation[0], rot, atol=1e-12)
    np.testing.assert_allclose(fit.translation[0], [3.0, -2.0, 5.0], atol=1e-12)
    rigid = kabsch_umeyama(src, dst, with_scale=False)
    assert rigid.scale[0] == 1.0
    np.testing.assert_allclose(rigid.rotation[0], rot, atol=1e-12)


def test_mouth_indices_are_mediapipe_lips() -> None:
    from mediapipe.python.solutions.face_mesh_connections import FACEMESH_LIPS

    assert MOUTH_INDICES == tuple(sorted({i for edge in FACEMESH_LIPS for i in edge}))
    assert FACE_INDICES == tuple(range(468))


def test_lmd_ignores_per_frame_head_pose_and_scale() -> None:
    rng = np.random.default_rng(4)
    target = _face()
    moved = np.stack([_random_similarity(rng, frame) for frame in target])  # another pose each frame
    assert f_lmd(moved, target) == pytest.approx(0.0, abs=1e-9)
    assert m_lmd(moved, target) == pytest.approx(0.0, abs=1e-9)
    assert f_lmd(moved, target, align=False) > 1.0
    np.testing.assert_allclose(align_landmarks(moved, target), target, atol=1e-9)


def test_lmd_hand_computed() -> None:
    target = _face(t=3, n=468)
    shifted = target.copy()
    shifted[:, list(MOUTH_INDICES), :2] += np.array([3.0, 4.0])  # every mouth point 5 units away
    assert m_lmd(shifted, target, align=False) == pytest.approx(5.0)
    assert f_lmd(shifted, target, align=False) == pytest.approx(5.0 * 40 / 468)
    assert landmark_distance(shifted, target, indices=[0, 1, 2], align=False) == pytest.approx(
        np.mean([5.0 if i in MOUTH_INDICES else 0.0 for i in (0, 1, 2)]))
    # Aligned on the face, a mouth-only change survives the alignment (most of it).
    assert 3.0 < m_lmd(shifted, target) <= 5.0 + 1e-9


def test_landmark_errors() -> None:
    with pytest.raises(TalkingHeadError, match="468 or 478"):
        f_lmd(np.zeros((2, 68, 2)), np.zeros((2, 68, 2)))
    with pytest.raises(TalkingHeadError, match="same shape"):
        landmark_distance(np.zeros((2, 10, 2)), np.zeros((3, 10, 2)))
    with pytest.raises(TalkingHeadError, match="coincide"):
        kabsch_umeyama(np.ones((5, 3)), np.zeros((5, 3)))
    with pytest.raises(TalkingHeadError, match="NaN"):
        kabsch_umeyama(np.full((5, 3), np.nan), np.zeros((5, 3)))

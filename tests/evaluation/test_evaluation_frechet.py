"""Frechet distance: hand-computed Gaussians, an independent eigen-decomposition, E-FID, encoders."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from talkinghead.errors import TalkingHeadError
from talkinghead.evaluation.frechet import (
    encoder_frechet_distance,
    expression_fid,
    frechet_distance,
    frechet_distance_from_features,
    gaussian_statistics,
)
from talkinghead.sequence import ChannelLayout, MotionSequence


def _independent_frechet(mu1: np.ndarray, s1: np.ndarray, mu2: np.ndarray, s2: np.ndarray) -> float:
    """Tr((S1 S2)^1/2) = Tr((S1^1/2 S2 S1^1/2)^1/2), both roots by symmetric eigen-decomposition."""
    w, v = np.linalg.eigh(s1)
    root1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    inner = root1 @ s2 @ root1
    trace_root = np.sqrt(np.clip(np.linalg.eigvalsh((inner + inner.T) / 2), 0, None)).sum()
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * trace_root)


def _spd(rng: np.random.Generator, d: int) -> np.ndarray:
    a = rng.normal(size=(d, d))
    return a @ a.T + 0.1 * np.eye(d)


def test_hand_computed_gaussians() -> None:
    # 1-D: N(0, 1) vs N(1, 4): 1 + 1 + 4 - 2 * sqrt(4) = 2.
    assert frechet_distance(np.array([0.0]), np.array([[1.0]]), np.array([1.0]), np.array([[4.0]])) == \
        pytest.approx(2.0)
    # Diagonal: ||mu1 - mu2||^2 + sum (sqrt(a_i) - sqrt(b_i))^2 = 25 + (1 - 3)^2 + (2 - 1)^2 = 30.
    d = frechet_distance(np.array([0.0, 0.0]), np.diag([1.0, 4.0]), np.array([3.0, 4.0]), np.diag([9.0, 1.0]))
    assert d == pytest.approx(30.0)
    mu, sigma = np.array([1.0, 2.0, 3.0]), _spd(np.random.default_rng(0), 3)
    assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-8)


def test_matches_an_independent_computation() -> None:
    rng = np.random.default_rng(1)
    for d in (2, 8, 32):
        mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
        s1, s2 = _spd(rng, d), _spd(rng, d)
        ours = frechet_distance(mu1, s1, mu2, s2)
        assert ours == pytest.approx(_independent_frechet(mu1, s1, mu2, s2), rel=1e-8)
        assert ours == pytest.approx(frechet_distance(mu2, s2, mu1, s1), rel=1e-8)  # symmetric


def test_from_features_and_singular_covariances() -> None:
    rng = np.random.default_rng(2)
    a = rng.normal(size=(500, 4))
    b = rng.normal(size=(400, 4)) * 2.0 + 1.0
    mu, sigma = gaussian_statistics(a)
    np.testing.assert_allclose(sigma, np.cov(a, rowvar=False))
    expected = _independent_frechet(mu, sigma, *gaussian_statistics(b))
    assert frechet_distance_from_features(a, b) == pytest.approx(expected, rel=1e-8)
    # Fewer samples than dimensions: rank-deficient covariances still give a finite distance.
    small = frechet_distance_from_features(rng.normal(size=(5, 16)), rng.normal(size=(5, 16)) + 3.0)
    assert np.isfinite(small) and small > 16 * 9 * 0.5
    with pytest.raises(TalkingHeadError, match="two feature vectors"):
        gaussian_statistics(np.zeros((1, 3)))
    with pytest.raises(TalkingHeadError, match="disagree"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))


def test_expression_fid_grows_with_a_shift() -> None:
    rng = np.random.default_rng(3)
    layout = ChannelLayout("t", ("a", "b", "c"))
    real = [rng.normal(size=(40, 3)) for _ in range(10)]
    same = [MotionSequence(rng.normal(size=(40, 3)), np.zeros((40, 6)), layout) for _ in range(10)]
    shifted = [x + np.array([1.0, 0.0, 0.0]) for x in real]
    near, far = expression_fid(same, real), expression_fid(shifted, real)
    assert near < 0.05 and far == pytest.approx(1.0, abs=1e-9)  # a pure mean shift of 1
    with pytest.raises(TalkingHeadError, match="channels"):
        expression_fid([np.zeros((5, 2))], real)


def test_encoder_frechet_distance_uses_the_encoder_features() -> None:
    rng = np.random.default_rng(4)
    encoder = torch.nn.Linear(12, 3)
    gen = [rng.normal(size=(16, 12)).astype(np.float32) for _ in range(4)]
    ref = [(rng.normal(size=(16, 12)) + 0.5).astype(np.float32) for _ in range(4)]

    def encode(batch: np.ndarray) -> torch.Tensor:
        return encoder(torch.as_tensor(batch))

    with torch.no_grad():
        feats_gen = np.concatenate([encoder(torch.as_tensor(b)).numpy() for b in gen])
        feats_ref = np.concatenate([encoder(torch.as_tensor(b)).numpy() for b in ref])
    assert encoder_frechet_distance(encode, gen, ref) == pytest.approx(
        frechet_distance_from_features(feats_gen, feats_ref), rel=1e-6)
    with pytest.raises(TalkingHeadError, match="no batches"):
        encoder_frechet_distance(encode, [], ref)


def test_symmetric_trace_form_matches_scipy_sqrtm() -> None:
    """The eigenvalue form used for rank-deficient covariances equals Tr(sqrtm(S1 S2)) where both work."""
    from scipy import linalg

    from talkinghead.evaluation.frechet import _trace_sqrt_product

    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(6, 6)), rng.normal(size=(6, 6))
    s1, s2 = a @ a.T + 0.1 * np.eye(6), b @ b.T + 0.1 * np.eye(6)
    expected = float(np.trace(linalg.sqrtm(s1 @ s2)).real)
    assert _trace_sqrt_product(s1, s2) == pytest.approx(expected, rel=1e-9)

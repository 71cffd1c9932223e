"""Fitting: Umeyama pose, bounded least squares parity with scipy, recovery of known coefficients."""

from __future__ import annotations

import numpy as np
from scipy.optimize import lsq_linear
from scipy.spatial.transform import Rotation

from talkinghead.face.fit import ExpressionFitter, FitConfig, umeyama
from talkinghead.face.model import ARKIT_LAYOUT, project_3d

# Antagonist pairs: a face never does both at once (their blendshapes nearly cancel), so draws avoid it.
ANTAGONISTS = [("mouthLeft", "mouthRight"), ("jawLeft", "jawRight"), ("eyeBlinkLeft", "eyeWideLeft"),
               ("eyeBlinkRight", "eyeWideRight"), ("mouthSmileLeft", "mouthFrownLeft"),
               ("mouthSmileRight", "mouthFrownRight")]


def _random_expressions(rng: np.random.Generator, t: int) -> np.ndarray:
    e = rng.uniform(0.0, 1.0, (t, ARKIT_LAYOUT.size)) * (rng.uniform(size=(t, ARKIT_LAYOUT.size)) < 0.3)
    for a, b in ANTAGONISTS:
        ia, ib = ARKIT_LAYOUT.channels.index(a), ARKIT_LAYOUT.channels.index(b)
        keep_a = rng.uniform(size=t) < 0.5
        e[keep_a, ib] = 0.0
        e[~keep_a, ia] = 0.0
    return e.astype(np.float32)


def test_umeyama_recovers_a_similarity() -> None:
    rng = np.random.default_rng(0)
    src = rng.normal(size=(4, 30, 3))
    rot = Rotation.random(4, random_state=1).as_matrix()
    s, t = rng.uniform(0.5, 3.0, 4), rng.normal(size=(4, 3))
    dst = s[:, None, None] * np.einsum("tij,tnj->tni", rot, src) + t[:, None]
    s2, r2, t2 = umeyama(src, dst)
    np.testing.assert_allclose(s2, s, rtol=1e-9)
    np.testing.assert_allclose(r2, rot, atol=1e-9)
    np.testing.assert_allclose(t2, t, atol=1e-9)


def test_bounded_solve_matches_scipy_lsq_linear(astronaut_fit) -> None:  # noqa: ANN001
    fitter = ExpressionFitter(astronaut_fit.identity, FitConfig(iterations=800, sparsity=0.0))
    rng = np.random.default_rng(2)
    e = ARKIT_LAYOUT.size
    rot = Rotation.from_euler("xyz", rng.uniform(-0.3, 0.3, (4, 3))).as_matrix()
    a = np.einsum("tij,evj->tvie", rot[:, :2], fitter.basis).reshape(4, -1, e)  # (R B)_xy
    truth = _random_expressions(rng, 4)
    residual = (np.einsum("tne,te->tn", a, truth) + rng.normal(0, 0.01, (4, a.shape[1]))).reshape(4, 468, 2)
    got = fitter.solve_expression(rot, residual)
    for i in range(4):
        sw = np.sqrt(np.repeat(fitter.weights, 2))  # the fit's per-vertex weights, on x and y
        lam = fitter.config.ridge * np.trace(a[i].T @ (sw[:, None] ** 2 * a[i])) / e
        a_aug = np.vstack([sw[:, None] * a[i], np.sqrt(lam) * np.eye(e)])
        b = np.concatenate([sw * residual[i].reshape(-1), np.zeros(e)])
        ref = lsq_linear(a_aug, b, bounds=(0.0, 1.0), method="bvls").x
        np.testing.assert_allclose(got[i], ref, atol=2e-3)
    assert got.min() >= 0.0 and got.max() <= 1.0


def test_fit_recovers_known_coefficients_and_pose(astronaut_fit) -> None:  # noqa: ANN001
    identity, _, pose0, _ = astronaut_fit
    rng = np.random.default_rng(3)
    t = 60
    truth = _random_expressions(rng, t)
    pose = np.tile(pose0, (t, 1))
    pose[:, 0] += rng.uniform(-0.25, 0.25, t)
    pose[:, 1] += rng.uniform(-0.4, 0.4, t)
    pose[:, 2] += rng.uniform(-0.3, 0.3, t)
    pose[:, 3:5] = rng.normal(0.0, 0.2, (t, 2))
    pose[:, 5] = rng.normal(0.0, 0.2, t)
    points = project_3d(identity, truth, pose)
    exact = FitConfig(sparsity=0.0, ridge=1e-6, iterations=1500, refinements=2)
    expr, fitted_pose = ExpressionFitter(identity, exact).fit(points)
    err = np.abs(expr - truth)
    assert err.mean() < 0.01 and np.percentile(err, 99) < 0.1, (err.mean(), err.max(0))
    np.testing.assert_allclose(fitted_pose[:, :3], pose[:, :3], atol=np.radians(0.5))
    np.testing.assert_allclose(fitted_pose[:, 3:], pose[:, 3:], atol=0.01)
    # The driven channels one at a time come back almost exactly.
    for name in ("jawOpen", "mouthSmileLeft", "eyeBlinkRight", "mouthPucker", "browInnerUp"):
        e = np.zeros((5, ARKIT_LAYOUT.size), np.float32)
        e[:, ARKIT_LAYOUT.channels.index(name)] = np.linspace(0, 1, 5)
        got, _ = ExpressionFitter(identity, exact).fit(project_3d(identity, e, np.tile(pose0, (5, 1))))
        np.testing.assert_allclose(got, e, atol=0.02, err_msg=name)


def test_fit_is_robust_to_landmark_noise(astronaut_fit) -> None:  # noqa: ANN001
    identity, _, pose0, _ = astronaut_fit
    e = np.zeros((20, ARKIT_LAYOUT.size), np.float32)
    jaw = ARKIT_LAYOUT.channels.index("jawOpen")
    e[:, jaw] = 0.5 + 0.5 * np.sin(np.linspace(0, 6, 20))
    points = project_3d(identity, e, np.tile(pose0, (20, 1)))
    noisy = points + np.random.default_rng(4).normal(0.0, 0.5, points.shape).astype(np.float32)  # half a pixel
    got, pose = ExpressionFitter(identity).fit(noisy)
    assert np.corrcoef(got[:, jaw], e[:, jaw])[0, 1] > 0.98
    assert np.abs(np.degrees(pose[:, :3] - pose0[:3])).max() < 2.0

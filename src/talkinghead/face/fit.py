"""Fitting the face model to landmarks: pose by Umeyama, expression by bounded least squares.

Issue 3, item 3 (the stand-in for Deep3DFace's coefficient regression, Deng et al. 2019, which
DreamTalk Sec. 3.1 and Dimitra Sec. 3 use to turn video frames into 3DMM coefficients).

Per frame, with landmarks ``P [468, 3]`` in the y-up frame of :func:`image_to_model_axes`:

1. Pose: the similarity ``P ~ s R V + t`` on :data:`STABLE_VERTICES` (points that expressions
   hardly move) in closed form (Umeyama 1991, Eqs. 38-42: SVD of the cross-covariance with the
   reflection fix), batched over frames; then Gauss-Newton on the weak-perspective reprojection
   error ``|| P_xy - s (R V)_xy - t ||^2`` (:func:`refine_pose_2d`). MediaPipe's depth only
   initialises: it is its least reliable coordinate, and :func:`project` uses the image plane.
2. Expression: ``min_c || (R B c)_xy - r ||_W^2 + lambda ||c||^2 + mu sum(c)`` subject to
   ``0 <= c <= 1``, with ``r = (P_xy - t) / s - (R neutral)_xy``. The L1 term (linear, as ``c >= 0``)
   keeps channels the data does not ask for at 0. ``W`` weights MediaPipe's contour points 1 and the
   interior points ``interior_weight`` (:func:`vertex_weights`, like the sparse 68-landmark loss of
   Deep3DFace: interior points carry little image evidence). ``A^T A`` is assembled from nine precomputed
   ``E x E`` blocks; the box-constrained problem is solved for all frames at once by accelerated
   projected gradient (FISTA, Beck & Teboulle 2009, with adaptive restart) on the Jacobi-scaled
   problem and an exact solve on the active set it finds. Tests check it against
   :func:`scipy.optimize.lsq_linear`.
3. Pose is refit on the stable points of the deformed mesh, then the expression again
   (``refinements`` rounds), so an expression that moves a stable point slightly does not bias pose.

Deviation from Deep3DFace: no photometric term and no learned regressor; coefficients are fitted to
MediaPipe landmarks only, per frame.

The pose is reported in the convention of :mod:`talkinghead.face.model` relative to the
identity's reference frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from talkinghead.config import Config
from talkinghead.errors import TalkingHeadError
from talkinghead.face.model import (
    COEFF_LOWER,
    COEFF_UPPER,
    FaceModel,
    check_identity,
    image_to_model_axes,
    matrix_to_euler,
    mesh_regions,
)
from talkinghead.face.topology import NUM_VERTICES, STABLE_VERTICES


@dataclass(frozen=True)
class FitConfig(Config):
    """Fitting weights and solver settings."""

    ridge: float = 1e-3  # lambda, relative to the mean diagonal of A^T A
    sparsity: float = 2e-2  # mu: an L1 (= linear, as c >= 0) cost, relative to that mean diagonal
    interior_weight: float = 0.1  # weight of mesh points off the contours (lips, eyes, brows, nose, oval)
    iterations: int = 100  # projected-gradient iterations of the box-constrained solve (then an exact polish)
    pose_steps: int = 4  # Gauss-Newton steps of the 2D pose refinement
    refinements: int = 1  # extra pose + expression rounds on the deformed mesh

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {"iterations": 40, "refinements": 0},
        "cpu": {},
        "paper": {"iterations": 300, "refinements": 2},
    }


def umeyama(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Similarity ``dst ~ s R src + t`` per batch (Umeyama 1991).

    ``src, dst: [T, N, 3]`` -> ``s [T]``, ``R [T, 3, 3]``, ``t [T, 3]``.
    """
    mu_s, mu_d = src.mean(1, keepdims=True), dst.mean(1, keepdims=True)
    xs, xd = src - mu_s, dst - mu_d
    cov = np.einsum("tni,tnj->tij", xd, xs) / src.shape[1]  # Eq. 38
    u, sig, vt = np.linalg.svd(cov)
    d = np.ones_like(sig)
    d[:, 2] = np.sign(np.linalg.det(u) * np.linalg.det(vt))  # Eq. 39: no reflections
    d[d[:, 2] == 0, 2] = 1.0
    rot = np.einsum("tij,tj,tjk->tik", u, d, vt)  # Eq. 40
    var_s = (xs ** 2).sum(axis=(1, 2)) / src.shape[1]
    scale = (sig * d).sum(1) / np.maximum(var_s, 1e-12)  # Eq. 42
    trans = mu_d[:, 0] - scale[:, None] * np.einsum("tij,tj->ti", rot, mu_s[:, 0])  # Eq. 41
    return scale, rot, trans


def _skew(v: np.ndarray) -> np.ndarray:
    """``[..., 3] -> [..., 3, 3]`` with ``skew(a) @ b = a x b``."""
    z = np.zeros(v.shape[:-1])
    return np.stack([np.stack([z, -v[..., 2], v[..., 1]], -1), np.stack([v[..., 2], z, -v[..., 0]], -1),
                     np.stack([-v[..., 1], v[..., 0], z], -1)], -2)


def _rodrigues(w: np.ndarray) -> np.ndarray:
    """Rotation matrices ``[T, 3, 3]`` of rotation vectors ``w [T, 3]``."""
    theta = np.linalg.norm(w, axis=-1)[:, None, None]
    k = _skew(w / np.maximum(theta[:, :, 0], 1e-12))
    return np.eye(3) + np.sin(theta) * k + (1.0 - np.cos(theta)) * (k @ k)


def refine_pose_2d(verts: np.ndarray, target: np.ndarray, s: np.ndarray, rot: np.ndarray, t: np.ndarray,
                   steps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gauss-Newton on the weak-perspective reprojection error ``|| P_xy - s (R V)_xy - t_xy ||^2``.

    ``verts [T, N, 3]`` (model), ``target [T, N, 2]`` (y-up pixels); updates ``R <- R exp([w]x)``, ``log s``
    and ``t_xy``. Returns the refined ``(s, R, t)`` (``t[:, 2]`` unchanged).
    """
    s, rot, t = s.copy(), rot.copy(), t.copy()
    n = verts.shape[1]
    for _ in range(steps):
        rv = np.einsum("tij,tnj->tni", rot, verts)  # [T, N, 3]
        pred = s[:, None, None] * rv[..., :2] + t[:, None, :2]
        res = (target - pred).reshape(len(s), 2 * n)
        jac = np.empty((len(s), n, 2, 6))
        # d(R exp(w) v)/dw = -R [v]x
        jac[..., :3] = -s[:, None, None, None] * np.einsum("tij,tnjk->tnik", rot, _skew(verts))[..., :2, :]
        jac[..., 3] = s[:, None, None] * rv[..., :2]  # d/d(log s)
        jac[..., 4:] = np.eye(2)
        jac = jac.reshape(len(s), 2 * n, 6)
        jtj = np.einsum("tni,tnj->tij", jac, jac) + 1e-9 * np.eye(6)
        delta = np.linalg.solve(jtj, np.einsum("tni,tn->ti", jac, res)[..., None])[..., 0]
        rot = rot @ _rodrigues(delta[:, :3])
        s = s * np.exp(delta[:, 3])
        t[:, :2] += delta[:, 4:]
    return s, rot, t


def vertex_weights(interior: float) -> np.ndarray:
    """Per-vertex weights ``[468]`` of the expression fit: 1 on MediaPipe's contour points, ``interior``
    elsewhere. The contours are where the image has edges; interior points are placed by MediaPipe's
    shape prior and follow the face's deformation only partly (measured on warp-rendered video: they
    moved 0.7x as far as the rendered mesh), which, given full weight, pulls the fit toward mixtures of
    secondary channels and shrinks the primary one."""
    r = mesh_regions()
    contour = np.concatenate([r[k] for k in ("lips", "left_eye", "right_eye", "left_brow", "right_brow",
                                             "nose", "oval")])
    w = np.full(NUM_VERTICES, float(interior))
    w[contour] = 1.0
    return w


class ExpressionFitter:
    """Fits ``(expression [T, E], pose [T, 6])`` of one identity to landmark frames."""

    def __init__(self, identity: dict[str, np.ndarray], config: FitConfig | None = None) -> None:
        check_identity(identity)
        self.config = config or FitConfig()
        self.identity = identity
        self.model = FaceModel.for_identity(identity["neutral"])
        self.neutral = self.model.neutral.astype(np.float64)
        self.basis = self.model.basis.astype(np.float64)  # [E, V, 3]
        self.weights = vertex_weights(self.config.interior_weight)  # [V]
        weighted = self.basis * self.weights[None, :, None]
        self._b_flat = weighted.reshape(len(self.basis), -1).T  # [3V, E]: W B
        self._k = np.einsum("evc,fvd->cdef", weighted, self.basis)  # [3, 3, E, E]: B^T W B

    # ------------------------------------------------------------------------------------ solves
    def solve_expression(self, rot: np.ndarray, residual: np.ndarray) -> np.ndarray:
        """Bounded least squares ``min || (R B c)_xy - r ||_W^2 + lambda |c|^2 + mu sum(c)``, ``0 <= c <= 1``.

        ``rot [T, 3, 3]``, ``residual [T, 468, 2]`` (model units, image-aligned axes) -> ``c [T, E]``.
        """
        # A = (R B)_xy, so A^T W A = sum_cd M_cd K_cd with M = R_xy^T R_xy and K_cd = sum_v w_v B_vc^T B_vd
        # (precomputed), and A^T r = B^T (R_xy^T r): no [T, V, 2, E] tensor is ever formed.
        t = len(rot)
        m = rot[:, :2].transpose(0, 2, 1) @ rot[:, :2]  # [T, 3, 3]
        gram = (m.reshape(t, 9) @ self._k.reshape(9, -1)).reshape(t, len(self.basis), len(self.basis))
        diag_mean = np.einsum("tee->t", gram)[:, None] / gram.shape[1]
        e = gram.shape[1]
        gram = gram + (self.config.ridge * diag_mean)[..., None] * np.eye(e)
        back = residual @ rot[:, :2]  # R_xy^T r: [T, V, 3]
        h = back.reshape(t, -1) @ self._b_flat - self.config.sparsity * diag_mean
        return self._box_qp(gram, h)

    def _box_qp(self, gram: np.ndarray, h: np.ndarray) -> np.ndarray:
        """``min 0.5 c^T G c - h^T c`` over ``[lo, hi]^E`` per frame (``gram [T, E, E]``, ``h [T, E]``).

        FISTA with adaptive restart on the Jacobi-scaled problem finds the active set; an exact
        solve on that set then polishes each frame whose result is feasible and satisfies the KKT
        conditions (otherwise the FISTA iterate is kept).
        """
        d = 1.0 / np.sqrt(np.einsum("tee->te", gram))  # c = D y
        g = gram * d[:, :, None] * d[:, None, :]
        hs = (h * d)[..., None]
        lo, hi = (COEFF_LOWER / d)[..., None], (COEFF_UPPER / d)[..., None]
        step = 1.0 / np.linalg.eigvalsh(g)[:, -1:, None]
        c0 = np.clip(np.linalg.solve(gram, h[..., None]), COEFF_LOWER, COEFF_UPPER)
        y = c0 / d[..., None]
        z = y.copy()
        tk = np.ones((len(y), 1, 1))
        for _ in range(self.config.iterations):
            y_new = np.clip(z - step * (g @ z - hs), lo, hi)
            # Adaptive restart (O'Donoghue & Candes 2015): drop the momentum of rows it misleads.
            restart = ((z - y_new) * (y_new - y)).sum(1, keepdims=True) > 0
            tk = np.where(restart, 1.0, tk)
            t_new = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * tk * tk))
            z = y_new + ((tk - 1.0) / t_new) * (y_new - y)
            y, tk = y_new, t_new
        c = (y * d[..., None])[..., 0]
        return self._polish(gram, h, c)

    @staticmethod
    def _polish(gram: np.ndarray, h: np.ndarray, c: np.ndarray, tol: float = 1e-6) -> np.ndarray:
        at_lo, at_hi = c <= COEFF_LOWER + tol, c >= COEFF_UPPER - tol
        fixed = at_lo | at_hi
        c_fixed = np.where(at_hi, COEFF_UPPER, COEFF_LOWER) * fixed
        eye = np.eye(gram.shape[1])
        free = ~fixed
        g_mod = np.where(free[:, :, None] & free[:, None, :], gram, 0.0) + fixed[:, :, None] * eye
        rhs = np.where(free, h - (gram @ c_fixed[..., None])[..., 0], c_fixed)
        exact = np.linalg.solve(g_mod, rhs[..., None])[..., 0]
        grad = (gram @ exact[..., None])[..., 0] - h
        ok = ((exact >= COEFF_LOWER - tol) & (exact <= COEFF_UPPER + tol)).all(1)
        ok &= ~(at_lo & (grad < -1e-9 * np.abs(h).max())).any(1) & ~(at_hi & (grad > 1e-9 * np.abs(h).max())).any(1)
        return np.where(ok[:, None], np.clip(exact, COEFF_LOWER, COEFF_UPPER), c)

    # --------------------------------------------------------------------------------------- fit
    def fit(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Landmarks ``[T, 468+, 3]`` image pixels -> ``(expression [T, E], pose [T, 6])``.

        MediaPipe's depth only initialises the pose (3D Umeyama); the pose refinement and the
        expression use the image-plane positions, matching the weak-perspective :func:`project`.
        """
        pts = np.asarray(points, dtype=np.float64)
        if pts.ndim == 2:
            pts = pts[None]
        if pts.ndim != 3 or pts.shape[1] < NUM_VERTICES or pts.shape[2] != 3:
            raise TalkingHeadError("Landmarks to fit must be [T, 468 or 478, 3].")
        target = image_to_model_axes(pts[:, :NUM_VERTICES])
        t_frames, e = len(target), len(self.basis)
        verts = np.broadcast_to(self.neutral, (t_frames, NUM_VERTICES, 3))
        s, rot, trans = umeyama(verts[:, STABLE_VERTICES], target[:, STABLE_VERTICES])
        expr = np.zeros((t_frames, e))
        for _ in range(1 + self.config.refinements):
            s, rot, trans = refine_pose_2d(verts[:, STABLE_VERTICES], target[:, STABLE_VERTICES, :2],
                                           s, rot, trans, self.config.pose_steps)
            pred = np.einsum("tij,tvj->tvi", rot[:, :2], self.neutral[None].repeat(t_frames, 0))
            residual = (target[..., :2] - trans[:, None, :2]) / s[:, None, None] - pred
            expr = self.solve_expression(rot, residual)
            verts = self.neutral + np.einsum("te,evc->tvc", expr, self.basis)
        s, rot, trans = refine_pose_2d(verts[:, STABLE_VERTICES], target[:, STABLE_VERTICES, :2],
                                       s, rot, trans, self.config.pose_steps)
        return expr.astype(np.float32), self.pose_from_similarity(s, rot, trans)

    def pose_from_similarity(self, s: np.ndarray, rot: np.ndarray, trans: np.ndarray) -> np.ndarray:
        """``P = s R V + t`` (y-up pixel frame) -> pose ``[T, 6]`` in the identity's reference frame."""
        scale0, cx, cy = (float(v) for v in self.identity["frame"])
        pose = np.zeros((len(s), 6))
        pose[:, :3] = matrix_to_euler(rot)
        pose[:, 3] = (trans[:, 0] - cx) / s
        pose[:, 4] = (trans[:, 1] + cy) / s
        pose[:, 5] = np.log(s / scale0)
        return pose.astype(np.float32)

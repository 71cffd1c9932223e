"""Landmark distances F-LMD and M-LMD with per-frame Kabsch-Umeyama normalisation.

Dimitra (supplementary material, "Metrics"): F-LMD and M-LMD are "the average Euclidean norm
considering landmarks and frames" between generated and ground-truth landmarks, after normalising
the landmarks w.r.t. head pose "using the Kabsch-Umeyama algorithm [31] between the ground truth
landmarks and the generated landmarks ... independently for each frame", which removes translation,
rotation and scale. DreamTalk (Sec. 4.1, Tab. 1) reports the same two metrics.

Umeyama 1991, "Least-squares estimation of transformation parameters between two point patterns",
IEEE TPAMI 13(4), Eqs. 40-42: for point sets x_i (source) and y_i (target) with means mu_x, mu_y,
variance sigma_x^2 = mean ||x_i - mu_x||^2 and covariance Sigma_xy = mean (y_i - mu_y)(x_i - mu_x)^T
with SVD U D V^T, the least-squares similarity y ~ c R x + t is
``R = U S V^T`` (S = diag(1, ..., 1, det(U) det(V))), ``c = tr(D S) / sigma_x^2``, ``t = mu_y - c R mu_x``.

Deviations: the papers use dlib's 68 landmarks (F-LMD) and its 20 mouth points (M-LMD). This
project tracks MediaPipe's face mesh, so F-LMD uses the 468 mesh vertices (iris points 468-477 of
the refined 478-point mesh are left out) and M-LMD the 40 vertices of MediaPipe's ``FACEMESH_LIPS``.
The alignment is fitted on the full face for both metrics (head-pose normalisation, as Dimitra
describes), then the distance is measured on the metric's subset. Distances are in the landmarks'
own units (pixels for image landmarks), so values are comparable within this project only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from talkinghead.errors import TalkingHeadError
from talkinghead.evaluation._checks import as_array, same_shape
from talkinghead.face.topology import NUM_LANDMARKS, NUM_VERTICES

# Sorted vertex indices of mediapipe.solutions.face_mesh_connections.FACEMESH_LIPS (40 vertices:
# outer and inner lip contours). Checked against MediaPipe in tests/evaluation.
MOUTH_INDICES: tuple[int, ...] = (
    0, 13, 14, 17, 37, 39, 40, 61, 78, 80, 81, 82, 84, 87, 88, 91, 95, 146, 178, 181, 185, 191, 267,
    269, 270, 291, 308, 310, 311, 312, 314, 317, 318, 321, 324, 375, 402, 405, 409, 415,
)
FACE_INDICES: tuple[int, ...] = tuple(range(NUM_VERTICES))  # the face mesh without the 10 iris points


@dataclass(frozen=True)
class SimilarityFit:
    """A similarity transform per frame: ``y = scale * rotation @ x + translation``.

    ``scale: [T]``, ``rotation: [T, D, D]``, ``translation: [T, D]`` (T = 1 for a single frame).
    """

    scale: np.ndarray
    rotation: np.ndarray
    translation: np.ndarray

    def apply(self, points: np.ndarray) -> np.ndarray:
        """Transform ``points: [T, N, D]`` frame by frame -> ``[T, N, D]``."""
        rotated = np.einsum("tij,tnj->tni", self.rotation, points)
        return self.scale[:, None, None] * rotated + self.translation[:, None, :]

    def matrix(self) -> np.ndarray:
        """Homogeneous matrices ``[T, D+1, D+1]`` (comparable to scikit-image's ``params``)."""
        t, d = self.translation.shape
        out = np.zeros((t, d + 1, d + 1))
        out[:, :d, :d] = self.scale[:, None, None] * self.rotation
        out[:, :d, d] = self.translation
        out[:, d, d] = 1.0
        return out


def _frames_of_points(points: Any, name: str) -> np.ndarray:
    array = as_array(points, name, (2, 3))
    if array.ndim == 2:
        array = array[None]
    if array.shape[-1] not in (2, 3):
        raise TalkingHeadError(f"{name} must have 2-D or 3-D points, got {array.shape[-1]} coordinates.")
    return array


def kabsch_umeyama(source: Any, target: Any, with_scale: bool = True) -> SimilarityFit:
    """Least-squares similarity (or rigid, ``with_scale=False``) transform from source to target.

    Umeyama 1991, Eqs. 40-42, solved independently for every frame.
    ``source, target: [T, N, D]`` or ``[N, D]`` with D = 2 or 3 and N >= D -> :class:`SimilarityFit`
    with ``T`` frames mapping ``source`` onto ``target``.
    """
    x = _frames_of_points(source, "The source landmarks")
    y = _frames_of_points(target, "The target landmarks")
    same_shape(x, y, "The source landmarks", "the target landmarks")
    n, d = x.shape[1], x.shape[2]
    if n < d:
        raise TalkingHeadError(f"Aligning {d}-D landmarks needs at least {d} points, got {n}.")
    mu_x = x.mean(axis=1)  # [T, D]
    mu_y = y.mean(axis=1)
    xc = x - mu_x[:, None]
    yc = y - mu_y[:, None]
    var_x = np.mean(np.sum(xc**2, axis=2), axis=1)  # [T], sigma_x^2 (Eq. 36)
    if np.any(var_x <= 1e-24):
        raise TalkingHeadError("The source landmarks of a frame all coincide; they cannot be aligned.")
    cov = np.einsum("tni,tnj->tij", yc, xc) / n  # [T, D, D], Sigma_xy (Eq. 38)
    u, singular, vt = np.linalg.svd(cov)
    s = np.ones((x.shape[0], d))
    s[:, -1] = np.sign(np.linalg.det(u) * np.linalg.det(vt))  # Eq. 39 (reflection guard)
    s[s == 0] = 1.0
    rotation = np.einsum("tij,tj,tjk->tik", u, s, vt)  # Eq. 40: R = U S V^T
    if with_scale:
        scale = np.sum(singular * s, axis=1) / var_x  # Eq. 42: c = tr(D S) / sigma_x^2
    else:
        scale = np.ones(x.shape[0])
    translation = mu_y - scale[:, None] * np.einsum("tij,tj->ti", rotation, mu_x)  # Eq. 41
    return SimilarityFit(scale, rotation, translation)


def align_landmarks(pred: Any, target: Any, align_indices: Sequence[int] | np.ndarray | None = None,
                    with_scale: bool = True) -> np.ndarray:
    """Map the generated landmarks onto the ground truth, frame by frame (Dimitra's normalisation).

    ``pred, target: [T, N, D]`` -> aligned ``pred`` ``[T, N, D]``. The transform is fitted on
    ``align_indices`` (all points if None) and applied to all points.
    """
    x = _frames_of_points(pred, "The generated landmarks")
    y = _frames_of_points(target, "The reference landmarks")
    same_shape(x, y, "The generated landmarks", "the reference landmarks")
    idx = _indices(align_indices, x.shape[1], "align_indices")
    fit = kabsch_umeyama(x[:, idx], y[:, idx], with_scale=with_scale)
    return fit.apply(x)


def _indices(indices: Sequence[int] | np.ndarray | None, n: int, name: str) -> np.ndarray:
    if indices is None:
        return np.arange(n)
    idx = np.asarray(list(indices), dtype=np.int64)
    if idx.size == 0 or idx.min() < 0 or idx.max() >= n:
        raise TalkingHeadError(f"{name} must be indices below the {n} landmarks given.")
    return idx


def landmark_distance(pred: Any, target: Any, indices: Sequence[int] | np.ndarray | None = None,
                      align: bool = True, align_indices: Sequence[int] | np.ndarray | None = None) -> float:
    """Landmark distance LMD: mean Euclidean distance over the chosen landmarks and all frames.

    ``pred, target: [T, N, D]`` (or ``[N, D]``). With ``align`` the generated landmarks are first
    mapped onto the ground truth per frame by Kabsch-Umeyama fitted on ``align_indices`` (Dimitra SM).
    ``LMD = 1/(T |I|) sum_t sum_{i in I} || p_{t,i} - g_{t,i} ||_2``.
    """
    x = _frames_of_points(pred, "The generated landmarks")
    y = _frames_of_points(target, "The reference landmarks")
    same_shape(x, y, "The generated landmarks", "the reference landmarks")
    if align:
        x = align_landmarks(x, y, align_indices)
    idx = _indices(indices, x.shape[1], "indices")
    return float(np.mean(np.linalg.norm(x[:, idx] - y[:, idx], axis=-1)))


def _face_subset(n: int, name: str) -> np.ndarray:
    if n not in (NUM_VERTICES, NUM_LANDMARKS):
        raise TalkingHeadError(f"{name} expects MediaPipe face-mesh landmarks (468 or 478 points), got {n}.")
    return np.asarray(FACE_INDICES)


def f_lmd(pred: Any, target: Any, align: bool = True) -> float:
    """F-LMD: landmark distance over the whole face (DreamTalk Tab. 1, Dimitra Tab. I-II).

    ``pred, target: [T, 468 or 478, 2 or 3]`` MediaPipe face-mesh landmarks. Aligned per frame on
    the 468 mesh vertices, measured on the same vertices.
    """
    x = _frames_of_points(pred, "The generated landmarks")
    face = _face_subset(x.shape[1], "F-LMD")
    return landmark_distance(x, target, face, align, face)


def m_lmd(pred: Any, target: Any, align: bool = True) -> float:
    """M-LMD: landmark distance around the mouth (DreamTalk Tab. 1, Dimitra Tab. I-II).

    ``pred, target: [T, 468 or 478, 2 or 3]``. Aligned per frame on the 468 mesh vertices (head pose
    removed), measured on the 40 ``FACEMESH_LIPS`` vertices.
    """
    x = _frames_of_points(pred, "The generated landmarks")
    face = _face_subset(x.shape[1], "M-LMD")
    return landmark_distance(x, target, MOUTH_INDICES, align, face)

"""A linear, named-blendshape face model on MediaPipe's 468-vertex topology.

Issue 3, item 2; DESIGN.md "Face motion representation". It stands in for the Basel Face Model
coefficients that Deep3DFace (Deng et al. 2019) gives DreamTalk (Sec. 3.1) and Dimitra (Sec. 3),
and for PIRenderer's 3DMM input: ``vertices = neutral + sum_k c_k B_k`` with named channels
``c_k`` (Apple ARKit names, mostly in [0, 1]) and a head pose.

No canonical 3D face ships with MediaPipe, so there is no PCA basis to load. Instead the basis is
*built per identity* from its own neutral shape (:meth:`FaceModel.for_identity`) by geometric rules
on region index sets of the mesh (lips, eyelids, brows, cheeks): jaw open is a rotation of the
lower face about a jaw axis behind the face with a smooth weight falloff (linearised as the
displacement of a 15 degree rotation), blink moves the upper lid onto the lower lid, smile moves
the mouth corners up and out and raises the cheeks, and so on (see ``_build_basis``). The model is
linear in the coefficients; one unit of a channel is its full ARKit extent.

Conventions (the renderer and the motion file rely on them):

- Model space: ``x`` to the image right (the subject's left), ``y`` up, ``z`` toward the camera.
  One model unit is the distance between the outer eye corners (landmarks 33 and 263) of the
  neutral shape; the origin is the centroid of the stable points (:data:`STABLE_VERTICES`).
- Pose ``(pitch, yaw, roll, tx, ty, tz)``: ``R = Rz(roll) @ Ry(yaw) @ Rx(pitch)`` (radians;
  positive pitch tips the top of the head toward the camera, positive yaw turns the nose to the
  image right, positive roll turns the face counter-clockwise in the image), ``tx, ty`` a
  translation in model units (``ty`` up) and ``tz`` the log of the scale relative to the
  identity's reference frame. Weak perspective: a vertex ``v`` lands at image pixel
  ``u = cx + s * (R v + t)_x``, ``w = cy - s * (R v + t)_y`` with ``s = frame_scale * exp(tz)``.
- Identity (a dict of arrays, stored in ``MotionSequence.identity``): ``neutral [468, 3]`` in model
  units (the portrait's face at rest, closed relaxed lips; the photo's own parting and smile are its
  expression, :func:`rest_identity_from_landmarks`),
  ``descriptor [14]`` (normalised geometric measurements, DreamTalk's "speaker info" stand-in),
  ``frame [3] = (frame_scale px/unit, cx, cy)`` and ``image_size [2] = (H, W)`` of the portrait.
  The portrait's own fitted coefficients (its estimated expression and pose) project exactly onto its
  landmarks, so a renderer warps from ``project(fitted)`` to ``project(new)``.
"""

from __future__ import annotations

import collections
import functools
import hashlib
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from talkinghead.errors import TalkingHeadError
from talkinghead.face.topology import (
    CHIN,
    EYE_INNER_L,
    EYE_INNER_R,
    EYE_OUTER_L,
    EYE_OUTER_R,
    FOREHEAD,
    LIP_INNER_LOW,
    LIP_INNER_UP,
    LIP_OUTER_LOW,
    LIP_OUTER_UP,
    MOUTH_CORNER_L,
    MOUTH_CORNER_R,
    NOSE_TIP,
    NUM_VERTICES,
    STABLE_VERTICES,
    mesh_connections,
)
from talkinghead.sequence import ChannelLayout

if TYPE_CHECKING:  # pragma: no cover
    import torch

# More anchor landmarks of MediaPipe's face mesh (the shared ones are in face/topology.py).
CHEEK_R, CHEEK_L = 205, 425
CHEEK_UNDER_EYE_R, CHEEK_UNDER_EYE_L = 50, 280
ALAR_R, ALAR_L = 98, 327

MOUTH_CHANNELS = (
    "jawOpen", "mouthClose", "mouthFunnel", "mouthPucker",
    "mouthStretchLeft", "mouthStretchRight", "mouthUpperUpLeft", "mouthUpperUpRight",
    "mouthLowerDownLeft", "mouthLowerDownRight", "mouthPressLeft", "mouthPressRight", "mouthRollLower",
)
OTHER_FACE_CHANNELS = (
    "mouthSmileLeft", "mouthSmileRight", "mouthFrownLeft", "mouthFrownRight",
    "mouthDimpleLeft", "mouthDimpleRight", "mouthLeft", "mouthRight",
    "jawLeft", "jawRight", "jawForward", "cheekPuff", "cheekSquintLeft", "cheekSquintRight",
    "noseSneerLeft", "noseSneerRight",
)
EYE_CHANNELS = ("eyeBlinkLeft", "eyeBlinkRight", "eyeWideLeft", "eyeWideRight", "eyeSquintLeft", "eyeSquintRight")
BROW_CHANNELS = ("browInnerUp", "browDownLeft", "browDownRight", "browOuterUpLeft", "browOuterUpRight")

#: The expression layout of this model. "mouth" (13 channels) is Dimitra's lip group, "face" the
#: rest (smile and frown count as emotion, not articulation); "eyes" and "brows" are subsets of "face".
ARKIT_LAYOUT = ChannelLayout(
    "arkit",
    MOUTH_CHANNELS + OTHER_FACE_CHANNELS + EYE_CHANNELS + BROW_CHANNELS,
    {"mouth": MOUTH_CHANNELS, "face": OTHER_FACE_CHANNELS + EYE_CHANNELS + BROW_CHANNELS,
     "eyes": EYE_CHANNELS, "brows": BROW_CHANNELS},
)
#: Coefficient bounds used by fitting (ARKit's range).
COEFF_LOWER, COEFF_UPPER = 0.0, 1.0
JAW_OPEN_DEGREES = 15.0
#: How far the mouth corners follow the lower lip when the jaw opens (real open mouths: about a third).
JAW_CORNER_WEIGHT = 0.35

DESCRIPTOR_NAMES = (
    "inner_eye_distance", "eye_width", "eye_height", "nose_length", "nose_width", "mouth_width",
    "upper_lip_height", "lower_lip_height", "mouth_to_chin", "face_width", "face_height",
    "eye_to_brow", "jaw_width", "nose_depth",
)


# ----------------------------------------------------------------------------------------- regions

@functools.lru_cache(maxsize=1)
def mesh_regions() -> dict[str, np.ndarray]:
    """Vertex index sets of the mesh, from MediaPipe's connection lists (sorted int arrays).

    ``lips_outer_upper`` etc. are ordered chains from the right corner to the left corner.
    """
    fmc = mesh_connections()

    def verts(edges: Any) -> np.ndarray:
        return np.array(sorted({i for e in edges for i in e}))

    regions = {
        "lips": verts(fmc.FACEMESH_LIPS), "left_eye": verts(fmc.FACEMESH_LEFT_EYE),
        "right_eye": verts(fmc.FACEMESH_RIGHT_EYE), "left_brow": verts(fmc.FACEMESH_LEFT_EYEBROW),
        "right_brow": verts(fmc.FACEMESH_RIGHT_EYEBROW), "nose": verts(fmc.FACEMESH_NOSE),
        "oval": verts(fmc.FACEMESH_FACE_OVAL),
    }
    adj: dict[int, set[int]] = {}
    for a, b in fmc.FACEMESH_LIPS:
        adj.setdefault(a, set()).add(b)
        adj.setdefault(b, set()).add(a)
    for name, (start, end) in {"outer": (61, 291), "inner": (78, 308)}.items():
        chains = []
        for nxt in sorted(adj[start]):
            chain, prev = [start, nxt], start
            while chain[-1] != end:
                step = [n for n in adj[chain[-1]] if n != prev and n not in chain]
                if not step:
                    break
                prev = chain[-1]
                chain.append(step[0])
            if chain[-1] == end:
                chains.append(chain)
        if len(chains) != 2:
            raise TalkingHeadError("MediaPipe's lip connections have an unexpected shape.")
        # The upper chain passes through the upper-lip midpoint (0 outer, 13 inner).
        up = [c for c in chains if (0 in c or 13 in c)][0]
        low = [c for c in chains if c is not up][0]
        regions[f"lips_{name}_upper"], regions[f"lips_{name}_lower"] = np.array(up), np.array(low)
    return regions


@functools.lru_cache(maxsize=1)
def lip_body_masks() -> tuple[np.ndarray, np.ndarray]:
    """Vertex masks ``[468]`` of the upper and lower lip, from the mesh's connectivity alone: the vertices
    inside the outer lip contour, each given to the lip whose inner contour is fewer mesh edges away (ties
    to the lower lip; the four corners to both). On MediaPipe's mesh this is the same split as the
    point-in-polygon test between the contours of an open mouth, and it does not flip on closed lips,
    where the two inner contours coincide."""
    from collections import deque

    fmc = mesh_connections()
    r = mesh_regions()
    adj: dict[int, set[int]] = {}
    for a, b in fmc.FACEMESH_TESSELATION:
        adj.setdefault(a, set()).add(b)
        adj.setdefault(b, set()).add(a)
    outer = set(r["lips_outer_upper"].tolist()) | set(r["lips_outer_lower"].tolist())
    corners = {int(r["lips_inner_upper"][0]), int(r["lips_inner_upper"][-1])}
    inner = {p: [int(v) for v in r[f"lips_inner_{p}"][1:-1]] for p in ("upper", "lower")}

    def hops(starts: list[int], blocked: set[int]) -> dict[int, int]:
        dist = dict.fromkeys(starts, 0)
        queue = deque(starts)
        while queue:
            v = queue.popleft()
            for u in adj[v]:
                if u not in dist and u not in blocked:
                    dist[u] = dist[v] + 1
                    queue.append(u)
        return dist

    region = hops(inner["upper"] + inner["lower"], outer)
    d_up = hops(inner["upper"], outer | corners | set(inner["lower"]))
    d_low = hops(inner["lower"], outer | corners | set(inner["upper"]))
    far = NUM_VERTICES
    masks = []
    for part in ("upper", "lower"):
        mask = np.zeros(NUM_VERTICES, dtype=bool)
        for v in region:
            du, dl = d_up.get(v, far), d_low.get(v, far)
            mask[v] = du < dl if part == "upper" else dl <= du
        mask[r[f"lips_outer_{part}"]] = True
        mask[r[f"lips_inner_{part}"]] = True
        mask.flags.writeable = False
        masks.append(mask)
    return masks[0], masks[1]


def _lip_bodies(neutral: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vertex masks ``[468]`` of the upper and lower lip (contour chains plus the vertices between; fixed by
    the mesh's topology, so the same for every face, open or closed; see :func:`lip_body_masks`)."""
    up, low = lip_body_masks()
    return up.copy(), low.copy()


@functools.lru_cache(maxsize=1)
def mouth_vertex_indices() -> np.ndarray:
    """Indices of the lip contour vertices (FACEMESH_LIPS), the mouth vertices of the lip expert."""
    return mesh_regions()["lips"].copy()


# ------------------------------------------------------------------------------------- rotations

def euler_to_matrix(angles: np.ndarray) -> np.ndarray:
    """``angles [..., 3] = (pitch, yaw, roll)`` radians -> ``R [..., 3, 3] = Rz(roll) Ry(yaw) Rx(pitch)``."""
    a = np.asarray(angles, dtype=np.float64)
    cx, sx = np.cos(a[..., 0]), np.sin(a[..., 0])
    cy, sy = np.cos(a[..., 1]), np.sin(a[..., 1])
    cz, sz = np.cos(a[..., 2]), np.sin(a[..., 2])
    r = np.empty(a.shape[:-1] + (3, 3))
    r[..., 0, 0] = cz * cy
    r[..., 0, 1] = cz * sy * sx - sz * cx
    r[..., 0, 2] = cz * sy * cx + sz * sx
    r[..., 1, 0] = sz * cy
    r[..., 1, 1] = sz * sy * sx + cz * cx
    r[..., 1, 2] = sz * sy * cx - cz * sx
    r[..., 2, 0] = -sy
    r[..., 2, 1] = cy * sx
    r[..., 2, 2] = cy * cx
    return r


def matrix_to_euler(r: np.ndarray) -> np.ndarray:
    """Inverse of :func:`euler_to_matrix`: ``R [..., 3, 3]`` -> ``(pitch, yaw, roll) [..., 3]``."""
    r = np.asarray(r, dtype=np.float64)
    yaw = np.arcsin(np.clip(-r[..., 2, 0], -1.0, 1.0))
    pitch = np.arctan2(r[..., 2, 1], r[..., 2, 2])
    roll = np.arctan2(r[..., 1, 0], r[..., 0, 0])
    return np.stack([pitch, yaw, roll], axis=-1)


# ------------------------------------------------------------------------------- canonical frame

def image_to_model_axes(points: np.ndarray) -> np.ndarray:
    """Image pixels ``(x right, y down, z MediaPipe)`` -> a right-handed y-up, z-toward-camera frame."""
    out = np.array(points, dtype=np.float64, copy=True)
    out[..., 1:3] *= -1.0
    return out


def canonical_frame(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Head rotation, centre and size of one face's landmarks (pixels, ``[468+, 3]``).

    Returns ``(R [3, 3], center [3], scale)`` in the y-up frame of :func:`image_to_model_axes`:
    the x axis runs from the subject's right to left (mean of eye-corner and mouth-corner pairs),
    y from chin to forehead (orthogonalised), ``scale`` is the outer eye-corner distance.
    """
    p = image_to_model_axes(points[:NUM_VERTICES])
    pairs = [(EYE_OUTER_R, EYE_OUTER_L), (EYE_INNER_R, EYE_INNER_L), (MOUTH_CORNER_R, MOUTH_CORNER_L)]
    ex = sum(p[b] - p[a] for a, b in pairs)
    ex = ex / np.linalg.norm(ex)
    ey = p[FOREHEAD] - p[CHIN]
    ey = ey - ex * (ey @ ex)
    ey = ey / np.linalg.norm(ey)
    ez = np.cross(ex, ey)
    rot = np.stack([ex, ey, ez], axis=1)
    center = p[STABLE_VERTICES].mean(0)
    scale = float(np.linalg.norm(p[EYE_OUTER_L] - p[EYE_OUTER_R]))
    if scale <= 0:
        raise TalkingHeadError("The face landmarks are degenerate (eye corners coincide).")
    return rot, center, scale


def identity_descriptor(neutral: np.ndarray) -> np.ndarray:
    """Geometric measurements of a neutral shape ``[468, 3]`` in model units -> ``[14]`` (see DESCRIPTOR_NAMES)."""
    n = neutral

    def d(a: int, b: int) -> float:
        return float(np.linalg.norm(n[a, :2] - n[b, :2]))

    return np.array([
        d(EYE_INNER_R, EYE_INNER_L),
        0.5 * (d(EYE_OUTER_R, EYE_INNER_R) + d(EYE_OUTER_L, EYE_INNER_L)),
        0.5 * (d(159, 145) + d(386, 374)),
        d(168, 2),
        d(ALAR_R, ALAR_L),
        d(MOUTH_CORNER_R, MOUTH_CORNER_L),
        d(LIP_OUTER_UP, LIP_INNER_UP),
        d(LIP_INNER_LOW, LIP_OUTER_LOW),
        d(LIP_OUTER_LOW, CHIN),
        d(234, 454),
        d(FOREHEAD, CHIN),
        0.5 * (d(159, 105) + d(386, 334)),
        d(172, 397),
        float(n[NOSE_TIP, 2] - 0.5 * (n[EYE_OUTER_R, 2] + n[EYE_OUTER_L, 2])),
    ], dtype=np.float32)


def identity_from_landmarks(points: np.ndarray,
                            image_size: tuple[int, int]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Build an identity from one face's landmarks ``[468+, 3]`` pixels.

    Returns ``(identity, pose [6])``: the neutral is the face's own shape in model units and the
    pose is the one under which it projects back onto ``points`` exactly.
    """
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[0] < NUM_VERTICES or pts.shape[1] != 3:
        raise TalkingHeadError("Face landmarks must be an array [468 or 478, 3].")
    rot, center, scale = canonical_frame(pts)
    neutral = (image_to_model_axes(pts[:NUM_VERTICES]) - center) @ rot / scale
    identity = {
        "neutral": neutral.astype(np.float32),
        "descriptor": identity_descriptor(neutral),
        "frame": np.array([scale, center[0], -center[1]], dtype=np.float32),
        "image_size": np.array(image_size, dtype=np.int32),
    }
    pose = np.zeros(6, dtype=np.float32)
    pose[:3] = matrix_to_euler(rot)
    return identity, pose


# ------------------------------------------------------------------------- the portrait's rest

#: Channels whose value a single portrait's shape reveals against a closed, relaxed rest face:
#: ``name: (prior scale, upper bound)``. The scale is a Gaussian prior's width (how much of the lip gap a
#: channel may take before another one is cheaper); jawOpen may exceed 1 because this model's full jaw
#: (15 degrees) opens the lips less than a scream or a laugh does.
REST_CHANNELS: dict[str, tuple[float, float]] = {
    "jawOpen": (0.7, 3.0),
    "mouthUpperUpLeft": (0.35, 2.0), "mouthUpperUpRight": (0.35, 2.0),
    "mouthLowerDownLeft": (0.35, 2.0), "mouthLowerDownRight": (0.35, 2.0),
    "mouthSmileLeft": (0.7, 2.0), "mouthSmileRight": (0.7, 2.0),
    "mouthFrownLeft": (0.5, 1.0), "mouthFrownRight": (0.5, 1.0),
    "jawLeft": (0.3, 1.0), "jawRight": (0.3, 1.0),
}
#: Stomion height over the chin as a fraction of the subnasale (landmark 2) height over the chin, in
#: closed-mouth photos (MediaPipe on six real portraits: 0.66-0.70).
REST_CHIN_RATIO = 0.675
#: Mouth-corner height above the stomion in mouth half-widths, in relaxed closed mouths (-0.14 to 0.04).
REST_CORNER_ELEVATION = -0.05
#: The layout group whose channels are articulation: generated motion replaces the portrait's values of
#: these (so lips close in pauses); every other channel of the portrait (smile, frown, brows) is kept.
ARTICULATION_GROUP = "mouth"
#: Channels outside that group that generated motion also replaces: a jaw pushed sideways in the photo
#: (a scream, a laugh) would keep the closed lips offset.
REPLACED_CHANNELS = ("jawLeft", "jawRight")


def replaced_channels(layout: ChannelLayout = ARKIT_LAYOUT) -> np.ndarray:
    """Mask ``[E]`` of the channels whose value in a composed frame is the motion's alone (articulation:
    the layout's :data:`ARTICULATION_GROUP` and :data:`REPLACED_CHANNELS`)."""
    mask = np.isin(np.arange(layout.size), [layout.channels.index(c) for c in REPLACED_CHANNELS
                                            if c in layout.channels])
    if ARTICULATION_GROUP in layout.groups:
        mask[layout.indices(ARTICULATION_GROUP)] = True
    return mask


class _Relaxation:
    """Per-vertex damped fixed-point steps ``N <- N + a_v (F(N) - N)``: a vertex whose step changes
    direction has its ``a_v`` halved. The blendshapes' weights follow each vertex's own position (the jaw's
    ramp below the mouth corners, for one), so a large expression can give a vertex a gain above 1, where
    undamped steps would cycle."""

    def __init__(self) -> None:
        self.rate: np.ndarray | None = None
        self.last: np.ndarray | None = None

    def __call__(self, current: np.ndarray, image: np.ndarray) -> np.ndarray:
        step = image - current
        if self.rate is None or self.last is None:
            self.rate = np.ones(len(step))
        else:
            turned = (step * self.last).sum(1) < 0
            self.rate[turned] *= 0.5
        self.last = step
        return current + self.rate[:, None] * step


def bounded_least_squares(a: np.ndarray, b: np.ndarray, upper: np.ndarray, max_rounds: int = 100) -> np.ndarray:
    """``argmin ||a x - b||`` subject to ``0 <= x <= upper`` for ``a [K, n]`` of full column rank (a unique
    minimum): the same solution as ``scipy.optimize.lsq_linear(..., method="bvls")`` (to float64 rounding,
    tested), without importing ``scipy.optimize`` (0.3-0.4 s of every call that fits a portrait).

    Primal-dual active sets: free channels are solved by least squares with the others held at their
    bounds; a free channel past a bound joins that bound, a held one whose gradient points inside is freed,
    until nothing changes; the result is then checked against the optimality conditions. Should that fail
    (the method can cycle on badly conditioned problems), scipy's bounded solver answers instead.
    """
    n = a.shape[1]
    lower = np.zeros(n)
    at_low = np.zeros(n, dtype=bool)
    at_up = np.zeros(n, dtype=bool)
    scale = float(np.abs(a).max() * max(np.abs(b).max(), 1.0))
    for _ in range(max_rounds):
        free = ~(at_low | at_up)
        x = np.where(at_up, upper, lower)
        if free.any():
            x[free] = np.linalg.lstsq(a[:, free], b - a[:, ~free] @ x[~free], rcond=None)[0]
        grad = a.T @ (a @ x - b)                                   # d/dx of ||a x - b||^2 / 2
        new_low = (free & (x < lower)) | (at_low & (grad >= 0))
        new_up = (free & (x > upper)) | (at_up & (grad <= 0))
        if (new_low == at_low).all() and (new_up == at_up).all():
            tol = 1e-9 * scale * n
            inside = bool(((x >= lower) & (x <= upper)).all())
            if inside and (np.abs(grad[free]) <= tol).all():
                return x
            break
        at_low, at_up = new_low & ~new_up, new_up
    from scipy.optimize import lsq_linear  # the fallback only

    return np.asarray(lsq_linear(a, b, bounds=(lower, upper), method="bvls").x)


def estimate_rest(shape: np.ndarray, iterations: int = 12, exact: bool = True,
                  camera: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Split a face shape ``[468, 3]`` (model units) into a rest face with closed, relaxed lips and the
    expression that the shape shows on top of it.

    Returns ``(neutral [468, 3] float32, expression [E] float32)`` with
    ``FaceModel.for_identity(neutral).vertices(expression) == shape`` (to float32 rounding). Only the
    :data:`REST_CHANNELS` are estimated (the rest stay 0), by bounded least squares on the rest face
    ``N = shape - B(N) c``: with the emotion channels (smile, frown) kept, the inner lip contours meet
    (the nine pairs of the upper and lower inner chain, weight 1/0.005 along the camera's vertical and
    1/0.01 across; ``camera [2, 3]``: the image's x and y axes in model axes, default the face's own)
    and the stomion sits at
    :data:`REST_CHIN_RATIO` of the lower face (1/0.012); on the rest face itself each mouth corner sits
    at :data:`REST_CORNER_ELEVATION` (1/(0.05 half-widths)), with a Gaussian prior per channel. Closing
    along the camera's vertical matters on a tilted head: an open jaw also moves the lower lip back, which
    this model's channels cannot undo, so lips closed only in the face's own frame would still show a gap
    in the picture. The blendshapes depend on the rest face, so the basis is rebuilt from the current
    estimate and the solve repeated (``iterations`` rounds); with ``exact``, a last fixed-point loop with ``c`` held
    makes the split exact for the float32 model that :func:`project` uses (the costly part: skip it where
    only an estimate is needed).
    """
    target = np.asarray(shape, dtype=np.float64)
    if target.shape != (NUM_VERTICES, 3):
        raise TalkingHeadError(f"A face shape must be [468, 3], got {list(target.shape)}.")
    channels = ARKIT_LAYOUT.channels
    idx = np.array([channels.index(c) for c in REST_CHANNELS])
    prior = np.array([v[0] for v in REST_CHANNELS.values()])
    upper = np.array([v[1] for v in REST_CHANNELS.values()])
    r = mesh_regions()
    up, low = r["lips_inner_upper"][1:-1], r["lips_inner_lower"][1:-1]
    y = 1  # the y column
    view = np.eye(3)[:2] if camera is None else np.asarray(camera, np.float64)  # image x, y in model axes

    def rows(n: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Linear measurements of a shape: ``(M [K, 468, 3], target [K], weight [K])``, ``M . N = target``."""
        hw = 0.5 * float(n[MOUTH_CORNER_L, 0] - n[MOUTH_CORNER_R, 0])
        m = np.zeros((2 * len(up) + 3, NUM_VERTICES, 3))
        for axis, first in ((view[1], 0), (view[0], len(up))):
            m[first + np.arange(len(up)), up] = axis
            m[first + np.arange(len(up)), low] = -axis
        k = 2 * len(up)
        m[k, [LIP_INNER_UP, LIP_INNER_LOW], y] = 0.5
        m[k, 2, y] -= REST_CHIN_RATIO
        m[k, CHIN, y] -= 1.0 - REST_CHIN_RATIO
        for j, corner in enumerate((MOUTH_CORNER_L, MOUTH_CORNER_R)):
            m[k + 1 + j, corner, y] = 1.0
            m[k + 1 + j, [LIP_INNER_UP, LIP_INNER_LOW], y] = -0.5
        goal = np.zeros(len(m))
        goal[k + 1:] = REST_CORNER_ELEVATION * hw
        weight = np.concatenate([np.full(len(up), 1 / 0.005), np.full(len(up), 1 / 0.01), [1 / 0.012],
                                 np.full(2, 1 / (0.05 * hw))])
        return m, goal, weight

    e = ARKIT_LAYOUT.size
    # The closure rows (lips meet, stomion height) hold for the face with the portrait's emotion kept
    # (smile, frown: what compose_expression keeps when generated motion closes the mouth), so they
    # see only the articulation channels: M (S - B c_art) = goal. The corner rows are on the rest face.
    articulation = replaced_channels()[idx].astype(np.float64)
    coeff = np.zeros(e)
    neutral = target.copy()
    relax = _Relaxation()
    for _ in range(max(1, iterations)):
        basis = _build_basis(neutral)
        m, goal, weight = rows(neutral)
        flat_m = m.reshape(len(m), -1)
        # M (S - B c) = goal  ->  (M B) c = M S - goal
        a = (flat_m @ basis[idx].reshape(len(idx), -1).T) * weight[:, None]
        a[:2 * len(up) + 1] *= articulation
        b = (flat_m @ target.ravel() - goal) * weight
        a = np.concatenate([a, np.diag(1.0 / prior)])
        b = np.concatenate([b, np.zeros(len(idx))])
        sol = bounded_least_squares(a, b, upper)
        coeff = np.zeros(e)
        coeff[idx] = sol
        neutral = relax(neutral, target - np.tensordot(sol, basis[idx], axes=1))
    expression = coeff.astype(np.float32)
    # The exact split for the float32 model of project(): the fixed point N = S - B(N) c.
    for _ in range(200 if exact else 0):
        n32 = neutral.astype(np.float32)
        basis32 = _build_basis(n32.astype(np.float64)).astype(np.float32)
        image = target - (expression @ basis32.reshape(e, -1)).reshape(NUM_VERTICES, 3).astype(np.float64)
        if np.abs(image - n32).max() < 1e-6:  # float32 rounding of coordinates near 1 is 6e-8
            break
        neutral = relax(n32.astype(np.float64), image)
    return neutral.astype(np.float32), expression


def rest_identity_from_landmarks(points: np.ndarray, image_size: tuple[int, int],
                                 ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Like :func:`identity_from_landmarks`, but the neutral is the face at rest (closed, relaxed lips,
    :func:`estimate_rest`) and the face's own expression is returned with it.

    Returns ``(identity, expression [E], pose [6])`` with ``project(identity, expression, pose)`` equal
    to ``points[:468, :2]``. The head frame (rotation, centre, scale) is that of the rest face, so an
    open jaw does not tilt the pose.
    """
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[0] < NUM_VERTICES or pts.shape[1] != 3:
        raise TalkingHeadError("Face landmarks must be an array [468 or 478, 3].")
    # a pure function of its inputs, and the slowest part of fitting a portrait (0.3-0.6 s): a process that
    # animates the same photo again (a server) gets the same fit from the memo (copies of it)
    key = hashlib.sha1(pts.tobytes() + np.asarray(image_size, np.int64).tobytes()).hexdigest() + str(pts.shape)
    with _REST_FITS_LOCK:
        cached = _REST_FITS.get(key)
        if cached is not None:
            _REST_FITS.move_to_end(key)
    if cached is None:
        cached = _rest_identity(pts, image_size)
        with _REST_FITS_LOCK:
            _REST_FITS[key] = cached
            while len(_REST_FITS) > REST_FIT_MEMO:
                _REST_FITS.popitem(last=False)
    identity, expression, pose = cached
    return {k: v.copy() for k, v in identity.items()}, expression.copy(), pose.copy()


#: Rest-face fits kept in memory (by their landmarks; a few kB each).
REST_FIT_MEMO = 16
_REST_FITS: collections.OrderedDict[str, tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]] = \
    collections.OrderedDict()
_REST_FITS_LOCK = threading.Lock()


def _rest_identity(pts: np.ndarray, image_size: tuple[int, int],
                   ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """:func:`rest_identity_from_landmarks` without the memo."""
    p = image_to_model_axes(pts[:NUM_VERTICES])
    rot, center, scale = canonical_frame(pts)
    for last in (False, False, True):
        shape = (p - center) @ rot / scale
        # the head frame needs only an estimate; the lips close as the camera sees them (rows 0 and 1
        # of rot are the image's x and y axes in model axes)
        neutral, expression = estimate_rest(shape, exact=last, camera=rot[:2])
        if not last:  # the head frame of the rest face (image_to_model_axes is its own inverse)
            rest = image_to_model_axes(center + scale * neutral.astype(np.float64) @ rot.T)
            rot, center, scale = canonical_frame(rest)
    identity = {
        "neutral": neutral,
        "descriptor": identity_descriptor(neutral.astype(np.float64)),
        "frame": np.array([scale, center[0], -center[1]], dtype=np.float32),
        "image_size": np.array(image_size, dtype=np.int32),
    }
    pose = np.zeros(6, dtype=np.float32)
    pose[:3] = matrix_to_euler(rot)
    return identity, expression, pose


def compose_expression(portrait: np.ndarray, motion: np.ndarray,
                       layout: ChannelLayout = ARKIT_LAYOUT) -> np.ndarray:
    """The expression to render ``[T, E]`` when ``motion [T, E]`` (absolute: relative to the closed rest
    face, as the models were trained) drives a portrait whose own expression is ``portrait [E]``.

    Articulation (the layout's :data:`ARTICULATION_GROUP` group: jaw, lip parting, close, funnel,
    pucker, press, ...; and the jaw's sideways shift) is the motion's alone, so the lips close where the
    motion closes them; every other channel (smile, frown, dimple, brows, eyes) keeps the portrait's value
    as an offset and adds the motion's, capped at ``max(COEFF_UPPER, portrait's value)``.
    """
    portrait = np.asarray(portrait, dtype=np.float32)
    motion = np.asarray(motion, dtype=np.float32)
    if portrait.shape != (layout.size,) or motion.shape[-1] != layout.size:
        raise TalkingHeadError(f"Expressions must have the {layout.size} channels of layout '{layout.name}'.")
    held = ~replaced_channels(layout)
    kept = np.minimum(motion + portrait, np.maximum(np.maximum(COEFF_UPPER, portrait), motion))
    return np.where(held, kept, motion).astype(np.float32)


def check_identity(identity: dict[str, np.ndarray]) -> None:
    for key, shape in (("neutral", (NUM_VERTICES, 3)), ("frame", (3,))):
        if key not in identity or np.asarray(identity[key]).shape != shape:
            raise TalkingHeadError(f"The identity lacks '{key}' of shape {list(shape)}; refit the portrait.")


# ---------------------------------------------------------------------------------- the model

@dataclass(frozen=True, eq=False)
class FaceModel:
    """``vertices = neutral + expression @ basis``; ``neutral [468, 3]``, ``basis [E, 468, 3]``."""

    neutral: np.ndarray
    basis: np.ndarray
    layout: ChannelLayout = ARKIT_LAYOUT

    @classmethod
    def for_identity(cls, neutral: np.ndarray) -> FaceModel:
        """The model whose blendshapes are built from this neutral shape (cached by content)."""
        neutral = np.ascontiguousarray(neutral, dtype=np.float32)
        if neutral.shape != (NUM_VERTICES, 3):
            raise TalkingHeadError(f"A neutral face shape must be [468, 3], got {list(neutral.shape)}.")
        return _model_cached(hashlib.sha1(neutral.tobytes()).hexdigest(), neutral.tobytes())

    @property
    def num_channels(self) -> int:
        return len(self.basis)

    def vertices(self, expression: np.ndarray) -> np.ndarray:
        """``expression [..., E]`` -> vertices ``[..., 468, 3]`` in model units."""
        expression = np.asarray(expression, dtype=np.float32)
        if expression.shape[-1] != self.num_channels:
            raise TalkingHeadError(f"Expression has {expression.shape[-1]} channels; the face model has "
                                   f"{self.num_channels} ({self.layout.name} layout).")
        flat = self.basis.reshape(self.num_channels, -1)
        return self.neutral + (expression @ flat).reshape(expression.shape[:-1] + (NUM_VERTICES, 3))

    @property
    def mouth_indices(self) -> np.ndarray:
        return mouth_vertex_indices()

    def basis_tensor(self, indices: np.ndarray | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(neutral [M, 3], basis [E, M, 3])`` torch float32 tensors of the vertices ``indices``
        (default: the mouth vertices), so ``neutral + torch.einsum("...e,emc->...mc", c, basis)``
        gives differentiable vertices from coefficients (the lip expert's input)."""
        import torch

        idx = self.mouth_indices if indices is None else np.asarray(indices)
        return torch.from_numpy(self.neutral[idx].copy()), torch.from_numpy(self.basis[:, idx].copy())


@functools.lru_cache(maxsize=16)
def _model_cached(key: str, data: bytes) -> FaceModel:
    neutral = np.frombuffer(data, dtype=np.float32).reshape(NUM_VERTICES, 3).copy()
    basis = _build_basis(neutral.astype(np.float64)).astype(np.float32)
    neutral.flags.writeable = False
    basis.flags.writeable = False
    return FaceModel(neutral, basis)


def _smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _square_distances(n: np.ndarray) -> np.ndarray:
    """Squared (x, y) distances ``[468, 468]`` between the vertices of ``n [468, 3]``."""
    dx = n[:, 0, None] - n[None, :, 0]
    dy = n[:, 1, None] - n[None, :, 1]
    return dx * dx + dy * dy


def _near(d2: np.ndarray, indices: np.ndarray | list[int], radius: float) -> np.ndarray:
    """Gaussian falloff ``[468]`` with the (x, y) distance to the nearest vertex of a region, from the
    squared distances ``d2 [468, 468]`` (:func:`_square_distances`)."""
    return np.exp(-d2[:, np.asarray(indices)].min(1) / radius ** 2)


def _eye_shapes(n: np.ndarray, eye: np.ndarray, brow: np.ndarray) -> dict[str, np.ndarray]:
    """Blink, wide and squint displacements ``[468, 3]`` of one eye from its lid contour."""
    xs, ys = n[eye, 0], n[eye, 1]
    left, right = eye[np.argmin(xs)], eye[np.argmax(xs)]
    x0, x1 = n[left, 0], n[right, 0]
    line = n[left, 1] + (xs - x0) / (x1 - x0) * (n[right, 1] - n[left, 1])
    upper = eye[ys > line + 1e-9]
    lower = eye[ys < line - 1e-9]

    def curve(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pts = np.concatenate([n[idx, :2], n[[left, right], :2]])
        order = np.argsort(pts[:, 0])
        return pts[order, 0], pts[order, 1]

    ux, uy = curve(upper)
    lx, ly = curve(lower)
    x = np.clip(n[:, 0], x0, x1)
    up_y, low_y = np.interp(x, ux, uy), np.interp(x, lx, ly)
    height = up_y - low_y  # lid opening at each vertex's x (0 at the corners)
    brow_y = n[brow, 1].mean()
    outside = np.maximum(x0 - n[:, 0], n[:, 0] - x1)
    lateral = np.exp(-(np.maximum(outside, 0.0) / 0.06) ** 2)
    # above[v]: 1 on the upper lid, falling to 0 at 70% of the way to the brow; below[v] likewise.
    rel_up = n[:, 1] - up_y
    above = (1.0 - _smoothstep(0.0, 0.7 * (brow_y - up_y.mean()), rel_up)) * (rel_up > -0.5 * height - 1e-6)
    rel_low = low_y - n[:, 1]
    below = (1.0 - _smoothstep(0.0, 0.12, rel_low)) * (rel_low > -0.5 * height - 1e-6)
    upper_part = above * (n[:, 1] >= 0.5 * (up_y + low_y)) * lateral
    lower_part = below * (n[:, 1] < 0.5 * (up_y + low_y)) * lateral
    shapes = {}
    for name, up_move, low_move in (("blink", -0.85, 0.15), ("wide", 0.4, -0.1), ("squint", -0.15, 0.35)):
        d = np.zeros_like(n)
        d[:, 1] = height * (up_move * upper_part + low_move * lower_part)
        shapes[name] = d
    return shapes


def _build_basis(n: np.ndarray) -> np.ndarray:
    """Blendshapes ``[E, 468, 3]`` (ARKIT_LAYOUT order) built from a neutral ``n [468, 3]`` (model units)."""
    r = mesh_regions()
    upper_lip, lower_lip = _lip_bodies(n)
    lips = np.flatnonzero(upper_lip | lower_lip)
    d2 = _square_distances(n)
    corner_r, corner_l = n[MOUTH_CORNER_R], n[MOUTH_CORNER_L]
    hw = 0.5 * float(corner_l[0] - corner_r[0])
    mc = 0.5 * (n[LIP_INNER_UP] + n[LIP_INNER_LOW])
    xr = (n[:, 0] - mc[0]) / hw  # -1 at the right corner, +1 at the left
    side_l = _smoothstep(-0.3, 0.3, xr)
    side_r = 1.0 - side_l
    ex = np.array([1.0, 0.0, 0.0])
    ey = np.array([0.0, 1.0, 0.0])
    ez = np.array([0.0, 0.0, 1.0])
    s: dict[str, np.ndarray] = {}

    # jawOpen: rotation of the lower face about a horizontal axis behind the face (at the jaw joints).
    eye_y = 0.5 * (n[EYE_OUTER_R, 1] + n[EYE_OUTER_L, 1])
    pivot = np.array([0.0, eye_y - 0.35 * (eye_y - n[CHIN, 1]), n[NOSE_TIP, 2] - 1.0])
    w = _smoothstep(mc[1] + 0.1 * hw, n[LIP_OUTER_LOW, 1], n[:, 1])
    # The lips part like an ellipse (gap ~ 1 - |x / inner corner|^3, as MediaPipe measures on real open
    # mouths) and the corners follow the lower lip by JAW_CORNER_WEIGHT.
    inner_corner = 0.5 * float(np.abs(xr[[78, 308]]).sum())
    taper = np.clip(np.abs(xr) / max(inner_corner, 1e-3), 0.0, 1.0) ** 3
    w[lower_lip] = 1.0 - (1.0 - JAW_CORNER_WEIGHT) * taper[lower_lip]
    w[upper_lip] = JAW_CORNER_WEIGHT * taper[upper_lip]
    w[upper_lip & lower_lip] = JAW_CORNER_WEIGHT
    ang = np.radians(JAW_OPEN_DEGREES)
    rot = np.array([[1, 0, 0], [0, np.cos(ang), -np.sin(ang)], [0, np.sin(ang), np.cos(ang)]])
    jaw = w[:, None] * ((n - pivot) @ (rot - np.eye(3)).T)
    s["jawOpen"] = jaw
    jaw_w = w

    # mouthClose: lips meet while the jaw is open (the lower lip takes back 55%, the upper lip comes 45% down).
    low_soft = np.maximum(lower_lip.astype(float), _near(d2, np.flatnonzero(lower_lip), 0.08 * hw) * 0.3)
    up_soft = np.maximum(upper_lip.astype(float), _near(d2, np.flatnonzero(upper_lip), 0.08 * hw) * 0.3)
    centre = np.clip(1.0 - xr ** 2, 0.0, 1.0)
    s["mouthClose"] = (-0.55 * jaw * low_soft[:, None] * (~upper_lip)[:, None]
                       + 0.45 * jaw[LIP_INNER_LOW] * (up_soft * centre * ~lower_lip)[:, None])

    mouth = _near(d2, lips, 0.45 * hw)
    only_up, only_low = upper_lip & ~lower_lip, lower_lip & ~upper_lip
    vert = np.tanh((n[:, 1] - mc[1]) / (0.05 * hw))  # +1 above the lip line, -1 below
    vert[only_up], vert[only_low] = 1.0, -1.0  # by lip, not height: closed lips lie on the line
    dx = (n[:, 0] - mc[0])[:, None] * ex
    s["mouthFunnel"] = mouth[:, None] * (-0.15 * dx + (0.12 * hw * vert * centre)[:, None] * ey + 0.25 * hw * ez)
    s["mouthPucker"] = mouth[:, None] * (-0.35 * dx - 0.1 * (n[:, 1] - mc[1])[:, None] * ey + 0.3 * hw * ez)

    def corner(c: np.ndarray, radius: float) -> np.ndarray:
        return np.exp(-np.sum((n[:, :2] - c[:2]) ** 2, axis=1) / (2 * (radius * hw) ** 2))

    g_l, g_r = corner(corner_l, 0.5), corner(corner_r, 0.5)
    for side, g, sgn in (("Left", g_l, 1.0), ("Right", g_r, -1.0)):
        cheek_c = (corner_l if sgn > 0 else corner_r) + np.array([sgn * 0.25 * hw, 0.6 * hw, 0.0])
        g_cheek = corner(cheek_c, 0.5)
        s[f"mouthSmile{side}"] = (g[:, None] * np.array([sgn * 0.22 * hw, 0.22 * hw, -0.05 * hw])
                                  + g_cheek[:, None] * np.array([sgn * 0.03 * hw, 0.12 * hw, 0.0]))
        s[f"mouthFrown{side}"] = g[:, None] * np.array([sgn * 0.05 * hw, -0.2 * hw, 0.0])
        g_wide = corner(corner_l if sgn > 0 else corner_r, 0.6)
        s[f"mouthStretch{side}"] = g_wide[:, None] * np.array([sgn * 0.25 * hw, -0.08 * hw, -0.03 * hw])
        s[f"mouthDimple{side}"] = g[:, None] * np.array([sgn * 0.08 * hw, 0.02 * hw, -0.12 * hw])
    up_near = _near(d2, np.flatnonzero(upper_lip), 0.3 * hw)
    low_near = _near(d2, np.flatnonzero(lower_lip), 0.3 * hw)
    # Above the lip line: by lip for the lips, a smooth step (a tenth of a half-width) for the skin around,
    # so the shapes change continuously with the neutral (closed lips put skin points on the line).
    above_line = _smoothstep(mc[1] - 0.05 * hw, mc[1] + 0.05 * hw, n[:, 1])
    above_line[only_up], above_line[only_low] = 1.0, 0.0
    lip_zone = _near(d2, lips, 0.2 * hw)
    to_line = np.clip(n[:, 1] - mc[1], -0.4 * hw, 0.4 * hw)
    for side, sw in (("Left", side_l), ("Right", side_r)):
        s[f"mouthUpperUp{side}"] = (up_near * sw * above_line)[:, None] * np.array([0, 0.15 * hw, 0.02 * hw])
        below = low_near * sw * (1.0 - above_line)
        s[f"mouthLowerDown{side}"] = below[:, None] * np.array([0, -0.15 * hw, 0.02 * hw])
        s[f"mouthPress{side}"] = (lip_zone * sw)[:, None] * (-0.35 * to_line[:, None] * ey - 0.02 * hw * ez)
    s["mouthRollLower"] = (low_near * (1.0 - above_line))[:, None] * (
        0.5 * np.clip(mc[1] - n[:, 1], 0, 0.4 * hw)[:, None] * ey - 0.08 * hw * ez)
    s["mouthLeft"] = mouth[:, None] * (0.25 * hw * ex)
    s["mouthRight"] = mouth[:, None] * (-0.25 * hw * ex)
    s["jawLeft"] = jaw_w[:, None] * (0.12 * ex)
    s["jawRight"] = jaw_w[:, None] * (-0.12 * ex)
    s["jawForward"] = jaw_w[:, None] * (0.12 * ez)

    def blob(i: int, radius: float) -> np.ndarray:
        return np.exp(-np.sum((n[:, :2] - n[i, :2]) ** 2, axis=1) / (2 * radius ** 2))

    puff = blob(CHEEK_L, 0.18) + blob(CHEEK_R, 0.18)
    s["cheekPuff"] = puff[:, None] * (0.08 * np.sign(n[:, 0])[:, None] * ex + 0.06 * ez)

    eyes = {"Left": _eye_shapes(n, r["left_eye"], r["left_brow"]),
            "Right": _eye_shapes(n, r["right_eye"], r["right_brow"])}
    for side, cheek_i, alar_i in (("Left", CHEEK_UNDER_EYE_L, ALAR_L), ("Right", CHEEK_UNDER_EYE_R, ALAR_R)):
        s[f"cheekSquint{side}"] = (blob(cheek_i, 0.12)[:, None] * np.array([0, 0.05, 0.01])
                                   + 0.3 * eyes[side]["squint"] * (eyes[side]["squint"][:, 1:2] > 0))
        s[f"noseSneer{side}"] = blob(alar_i, 0.1)[:, None] * np.array([0, 0.05, 0.0])
        s[f"eyeBlink{side}"] = eyes[side]["blink"]
        s[f"eyeWide{side}"] = eyes[side]["wide"]
        s[f"eyeSquint{side}"] = eyes[side]["squint"]

    inner_pts, outer_pts = [], []
    for side, brow in (("Left", r["left_brow"]), ("Right", r["right_brow"])):
        bx = n[brow, 0]
        inner = brow[np.argsort(np.abs(bx))[:3]]
        outer = brow[np.argsort(-np.abs(bx))[:3]]
        inner_pts.append(inner)
        outer_pts.append(outer)
        sgn = 1.0 if side == "Left" else -1.0
        zone = _near(d2, brow, 0.08)
        inner_emph = 0.5 + 0.5 * _smoothstep(float(np.abs(bx).max()), float(np.abs(bx).min()), np.abs(n[:, 0]))
        s[f"browDown{side}"] = (zone * inner_emph)[:, None] * np.array([-sgn * 0.02, -0.06, 0.0])
        s[f"browOuterUp{side}"] = _near(d2, outer, 0.08)[:, None] * np.array([0.0, 0.07, 0.0])
    s["browInnerUp"] = _near(d2, np.concatenate(inner_pts), 0.08)[:, None] * np.array([0.0, 0.08, 0.0])
    return np.stack([s[c] for c in ARKIT_LAYOUT.channels])


# ---------------------------------------------------------------------------------- projection

def project_3d(identity: dict[str, np.ndarray], expression: np.ndarray, pose: np.ndarray) -> np.ndarray:
    """Like :func:`project` but ``[T, 468, 3]``: image pixels ``(x, y)`` plus a depth ``z`` in pixels in
    MediaPipe's convention (negative toward the camera), i.e. synthetic landmarks."""
    check_identity(identity)
    expression = np.asarray(expression, dtype=np.float32)
    pose = np.asarray(pose, dtype=np.float64)
    single = expression.ndim == 1
    if single != (pose.ndim == 1):
        raise TalkingHeadError("Expression and pose must both be single frames or both sequences.")
    expression, pose = np.atleast_2d(expression), np.atleast_2d(pose)
    if pose.shape[1] != 6 or len(pose) != len(expression):
        raise TalkingHeadError(f"Pose must be [T, 6] matching expression [T, E]; got {list(pose.shape)}.")
    model = FaceModel.for_identity(identity["neutral"])
    verts = model.vertices(expression).astype(np.float64)  # [T, 468, 3]
    rot = euler_to_matrix(pose[:, :3])  # [T, 3, 3]
    x = np.einsum("tij,tvj->tvi", rot, verts)
    x[..., :2] += pose[:, None, 3:5]
    scale, cx, cy = (float(v) for v in identity["frame"])
    s = scale * np.exp(pose[:, 5])[:, None]
    out = np.stack([cx + s * x[..., 0], cy - s * x[..., 1], -s * x[..., 2]], axis=-1).astype(np.float32)
    return out[0] if single else out


def project(identity: dict[str, np.ndarray], expression: np.ndarray, pose: np.ndarray) -> np.ndarray:
    """Image pixel positions ``[T, 468, 2]`` of the mesh of ``identity`` under ``expression [T, E]``
    and ``pose [T, 6]`` (``[E]`` and ``[6]`` give ``[468, 2]``), in the portrait's image space.

    Deterministic (float64 inside), so the same coefficients always give the same points.
    """
    return project_3d(identity, expression, pose)[..., :2]


class ImageFit(NamedTuple):
    """What :func:`fit_image` returns."""

    identity: dict[str, np.ndarray]
    expression: np.ndarray  # [E]
    pose: np.ndarray  # [6]
    landmarks: np.ndarray  # [478, 2] image pixels


def fit_image(image: np.ndarray, face_index: int | None = None) -> ImageFit:
    """Detect, landmark and fit a portrait ``[H, W, 3] uint8``.

    The identity's neutral is the portrait's face at rest (closed, relaxed lips) and ``expression`` is
    what the photo shows on top of it (lip parting, jaw, smile; :func:`rest_identity_from_landmarks`), so
    ``project(identity, expression, pose)`` equals ``landmarks[:468]`` and generated motion, which is
    relative to a closed mouth, can close the portrait's lips.
    """
    from talkinghead.face.landmarks import detect_landmarks

    lm = detect_landmarks(image, face_index)
    identity, expression, pose = rest_identity_from_landmarks(lm.points, lm.image_size)
    return ImageFit(identity, expression, pose, lm.points[:, :2].copy())

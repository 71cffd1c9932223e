"""Backward piecewise-affine warp of a face crop over the extended warp mesh (issue 3, item 4).

For every target pixel the renderer needs the source pixel it comes from. The target mesh is
rasterised once per frame into a triangle-id image (``cv2.fillConvexPoly`` per triangle, painter's order:
outer band, mouth/eye holes, folded face triangles, front face triangles, so the visible face wins
where triangles overlap on a head turn); each triangle's affine map target -> source is solved in
one batched ``numpy.linalg.solve``; per-pixel source coordinates are gathered from the id image and
the frame is resampled with one ``cv2.remap``. When the target equals the source, every affine map is
the identity and the warp returns the input exactly (up to float rounding).

Vertex extension (``MeshWarper.extend``): the face vertices come from the face model; each ring follows
the head's motion (a 2-D affine map fitted on stable vertices: forehead, nose bridge, eye corners) with
a weight that decays outward (``ring_weights``), plus the non-rigid residual of the face-oval vertex it
was scaled from (``local_weights``, e.g. the chin on jaw open), so hair, ears and neck move with the
head and fade into the fixed crop border.
Ring displacements whose band triangles would flip orientation are halved until none does (no
fold-overs). The duplicated upper-lid vertices of the eye holes sample the source eye *relative to
the lower lid*: a closing lid covers the eye (the iris is hidden, not squeezed), and the skin of the
lid, stretched by the face triangles above it, fills the closed eye.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from talkinghead.face.topology import MOUTH_CORNER_L, MOUTH_CORNER_R, NUM_VERTICES, STABLE_VERTICES
from talkinghead.render.mesh import (
    EYES,
    MOUTH_LOWER,
    MOUTH_UPPER,
    WarpMesh,
    border_points,
    build_mesh,
    face_oval,
    face_triangles,
    mouth_region,
)

_SHIFT = 4  # fillPoly sub-pixel bits


def signed_areas(points: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Twice the signed area of each triangle ``[F]`` for ``points [V, 2]``."""
    a, b, c = points[triangles[:, 0]], points[triangles[:, 1]], points[triangles[:, 2]]
    return (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])


def fit_affine(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Least-squares 2-D affine map ``[2, 3]`` taking ``source [N, 2]`` points onto ``target [N, 2]``."""
    design = np.concatenate([source, np.ones((len(source), 1))], axis=1)
    sol, *_ = np.linalg.lstsq(design, target, rcond=None)
    return np.ascontiguousarray(sol.T)


def triangle_affines(target: np.ndarray, source: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Affine maps ``[F, 2, 3]`` sending each target triangle onto its source triangle.

    ``source = A @ [x, y, 1]`` for target pixel ``(x, y)``: with edges ``E = [t1 - t0, t2 - t0]`` and
    ``G = [s1 - s0, s2 - s0]``, ``A = [G E^-1 | s0 - G E^-1 t0]`` (closed-form 2x2 inverse, batched).
    Degenerate target triangles cover no pixel; they get the translation between the centroids.
    """
    t = target[triangles]  # [F, 3, 2]
    s = source[triangles]
    e1, e2 = t[:, 1] - t[:, 0], t[:, 2] - t[:, 0]
    g1, g2 = s[:, 1] - s[:, 0], s[:, 2] - s[:, 0]
    det = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    good = np.abs(det) > 1e-6
    inv_det = np.where(good, 1.0 / np.where(good, det, 1.0), 0.0)
    # E^-1 = [[e2y, -e2x], [-e1y, e1x]] / det ; M = G @ E^-1 with G columns g1, g2
    m = np.empty((len(triangles), 2, 2))
    m[:, :, 0] = (g1 * e2[:, 1:2] - g2 * e1[:, 1:2]) * inv_det[:, None]
    m[:, :, 1] = (g2 * e1[:, 0:1] - g1 * e2[:, 0:1]) * inv_det[:, None]
    out = np.zeros((len(triangles), 2, 3))
    out[:, :, :2] = m
    out[:, :, 2] = s[:, 0] - np.einsum("fij,fj->fi", m, t[:, 0])
    bad = ~good
    out[bad, :, :2] = np.eye(2)
    out[bad, :, 2] = s[bad].mean(1) - t[bad].mean(1)
    return out


def _mouth_normal(points: np.ndarray) -> np.ndarray:
    """Unit normal of the mouth's corner-to-corner axis, pointing toward the chin."""
    axis = points[MOUTH_UPPER[-1]] - points[MOUTH_UPPER[0]]
    n = np.array([-axis[1], axis[0]]) / max(float(np.linalg.norm(axis)), 1e-9)
    return n if np.dot(points[152] - points[2], n) >= 0 else -n


def _uncross_lips(target: np.ndarray, source: np.ndarray) -> None:
    """Move inner-lip pairs that cross (the lower lip above the upper, further than in the source) apart
    to where they meet, in place: crossed lips fold the mouth hole and the lips' own triangles."""
    up, lo = np.array(MOUTH_UPPER[1:-1]), np.array(MOUTH_LOWER[1:-1])
    n_t, n_s = _mouth_normal(target), _mouth_normal(source)
    gap_t = (target[lo] - target[up]) @ n_t
    allowed = np.minimum((source[lo] - source[up]) @ n_s, 0.0)
    shift = np.maximum(allowed - gap_t, 0.0)
    if shift.any():
        target[up] -= 0.5 * shift[:, None] * n_t
        target[lo] += 0.5 * shift[:, None] * n_t


def mean_value_weights(points: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Floater's mean value weights ``[V, V]`` of a triangle mesh at ``points [V, 2]``.

    ``w_ij = (tan(a/2) + tan(b/2)) / |p_j - p_i|`` over the angles ``a, b`` at ``i`` of the two triangles
    sharing edge ``ij``: positive, and ``sum_j w_ij (p_j - p_i) = 0`` at interior vertices, so a harmonic
    fill with them reproduces affine maps exactly and does not fold a convex neighbourhood.
    """
    nv = len(points)
    weights = np.zeros((nv, nv))
    for c in range(3):
        i, j, k = triangles[:, c], triangles[:, (c + 1) % 3], triangles[:, (c + 2) % 3]
        a, b = points[j] - points[i], points[k] - points[i]
        la, lb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
        cos = np.clip(np.einsum("ij,ij->i", a, b) / np.maximum(la * lb, 1e-12), -1.0, 1.0)
        half_tan = np.sqrt((1.0 - cos) / (1.0 + cos + 1e-12))  # tan(angle / 2)
        np.add.at(weights, (i, j), half_tan / np.maximum(la, 1e-9))
        np.add.at(weights, (i, k), half_tan / np.maximum(lb, 1e-9))
    return weights


#: Factorised fill systems kept per source (each a few hundred kB).
SOLVER_CACHE = 32
#: Lip-body vertices within this many mesh edges of a mouth corner may move in the fold repair (untangle).
CORNER_HOPS = 3
#: Folds smaller than this fraction of the squared mouth width are left alone (see untangle).
TINY_FOLD = 1e-3


@functools.lru_cache(maxsize=1)
def held_vertices() -> np.ndarray:
    """Mask ``[468]`` of the vertices that :func:`untangle` never moves: the inner lip chains, and the
    lips' bodies (:func:`talkinghead.face.model.lip_body_masks`) except within :data:`CORNER_HOPS` mesh edges
    of the mouth corners, where the face model's closing lips fold on themselves (a wide-open photo's
    corner) and must give way like the skin; held there, the folds sampled the photo's dark interior as
    ragged specks at the corner. Measured on the real portraits whose photo shows a wide-open mouth (closed
    lips' inner gap read by MediaPipe on the render, over the eye-corner distance): scream 0.18 -> 0.08,
    surprise 0.008 -> 0.001, laughing mother 0.053 -> 0.049; closed-mouth photos do not fold and are
    unchanged."""
    from talkinghead.face.model import lip_body_masks

    upper, lower = lip_body_masks()
    held = upper | lower
    _, _, (e_from, e_to) = mouth_region()
    near = np.zeros(NUM_VERTICES, dtype=bool)
    near[[MOUTH_UPPER[0], MOUTH_UPPER[-1], MOUTH_CORNER_R, MOUTH_CORNER_L]] = True  # inner and outer corners
    for _ in range(CORNER_HOPS):
        near[e_to[near[e_from]]] = True
    held &= ~near
    held[list(MOUTH_UPPER) + list(MOUTH_LOWER)] = True
    held.flags.writeable = False
    return held


def untangle(face_target: np.ndarray, face_source: np.ndarray, rounds: int = 6,
             weights: np.ndarray | None = None, solvers: dict[bytes, Any] | None = None) -> np.ndarray:
    """``face_target [468, 2]`` with the fold-overs around the mouth repaired (a new array).

    A large expression change can turn mesh triangles over: closing a jaw that is wide open in the
    photo (a scream's jawOpen of 2) lifts the chin skin past the lower lip's sides and the cheek past
    the lip corners (the jaw basis moves the lip's sides less than the skin next to them), and crossed
    inner lips fold the mouth hole. A folded triangle samples the photo mirrored (lip and tongue pulled
    onto the chin, ragged lip outlines, specks at the seam).

    Crossed inner-lip pairs are first moved to where they meet. Then the displacement (target - source)
    of the vertices around every triangle turned over relative to the source is replaced by its harmonic
    fill (mean value weights of the source mesh, :func:`mean_value_weights`; the lips and everything
    outside the filled set held), growing the set by one ring of the mesh while anything is folded. The
    inner lips (the articulation) never move, so the mouth opens and closes as the motion says, and neither
    do the lips' bodies (:func:`held_vertices`): the skin around them gives way, so a closing lip keeps the
    model's thickness instead of being stretched with the skin (a scream's lower lip, filled with the chin,
    came out twice as thick and read as a tongue between open lips). Only the
    lower face around the mouth is repaired (:func:`mouth_region`): folds elsewhere (the nose on a head
    turn) are real occlusion. The target comes back unchanged when nothing is folded, so the portrait's
    own mesh still renders exactly. ``weights``: :func:`mean_value_weights` of the source's face mesh, if
    already computed (they depend on the source only); ``solvers``: a cache of the harmonic fill's
    factorised systems by filled set, for calls with the same source and weights (consecutive frames
    fold in the same places, so each set is factorised once).
    """
    target = np.array(face_target, dtype=np.float64)
    source = np.asarray(face_source, dtype=np.float64)
    _uncross_lips(target, source)
    verts, tris, (e_from, e_to) = mouth_region()
    sign_s = np.sign(signed_areas(source, tris))
    # a fold smaller than TINY_FOLD of the squared mouth width (a few pixels at a lip corner) is left
    # alone: on a head turn such folds are real occlusion (the far lip corner), and repairing them changed
    # how MediaPipe tracks the turned face (tests/face/test_face_roundtrip.py). The cost: next to a
    # wide-open photo's mouth that closes, one can show the photo's dark interior as a speck on the skin.
    tiny = TINY_FOLD * float(np.sum((target[MOUTH_UPPER[-1]] - target[MOUTH_UPPER[0]]) ** 2))
    flipped = signed_areas(target, tris) * sign_s < -tiny
    if not flipped.any():
        return target
    nv = len(source)
    movable = np.zeros(nv, dtype=bool)
    movable[verts] = True
    movable[held_vertices()] = False
    if weights is None:
        weights = mean_value_weights(source, face_triangles())
    from scipy import sparse  # here, not at import: `talkinghead --help` must not load scipy
    from scipy.sparse.linalg import splu

    disp0 = target - source
    best, best_count = disp0, int(flipped.sum())
    active = np.zeros(nv, dtype=bool)
    for _ in range(rounds):
        seed = np.zeros(nv, dtype=bool)
        seed[tris[flipped].ravel()] = True
        seed |= active
        grown = seed.copy()
        grown[e_to[seed[e_from]]] = True  # one ring more
        new_active = grown & movable
        if (new_active == active).all():
            break
        active = new_active
        key = active.tobytes()
        system = None if solvers is None else solvers.get(key)
        if system is None:
            w = weights[active]
            lap = sparse.csc_matrix(np.diag(w.sum(1)) - w[:, active])  # ~7 entries a row
            system = (splu(lap), w[:, ~active])
            if solvers is not None:
                if len(solvers) >= SOLVER_CACHE:
                    solvers.pop(next(iter(solvers)))  # the oldest
                solvers[key] = system
        disp = disp0.copy()
        disp[active] = system[0].solve(system[1] @ disp0[~active])
        flipped = signed_areas(source + disp, tris) * sign_s < -tiny
        if flipped.sum() < best_count:
            best, best_count = disp, int(flipped.sum())
        if not flipped.any():
            break
    return source + best


@dataclass
class MeshWarper:
    """Warp geometry for one portrait crop of ``size`` pixels.

    ``source [V, 2]`` are the extended source vertices in crop pixels (face: the projection of the
    portrait's own fitted coefficients); ``ring_weights`` the follow weights of the anchor rings.
    """

    mesh: WarpMesh
    source: np.ndarray
    size: int
    ring_weights: tuple[float, ...]
    local_weights: tuple[float, ...]

    @classmethod
    def create(cls, face_source: np.ndarray, size: int, ring_scales: tuple[float, ...],
               ring_weights: tuple[float, ...], local_weights: tuple[float, ...],
               border_per_side: int) -> MeshWarper:
        """Extend ``face_source [468, 2]`` (crop pixels) with eye duplicates, rings and the border."""
        face_source = np.asarray(face_source, dtype=np.float64)[:NUM_VERTICES]
        oval = np.array(face_oval())
        centre = face_source[oval].mean(0)
        upper = np.concatenate([np.array(up[1:-1]) for up, _ in EYES])
        lim = (1.0, size - 2.0)
        rings = [np.clip(centre + s * (face_source[oval] - centre), *lim) for s in ring_scales]
        border = border_points(size, border_per_side)
        points = np.concatenate([face_source, face_source[upper], *rings, border])
        mesh = build_mesh(points, len(ring_scales), len(border))
        return cls(mesh, points, size, tuple(ring_weights), tuple(local_weights))

    # -- per frame -------------------------------------------------------------------------------------
    def extend(self, face_target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Extended ``(target, source)`` vertices ``[V, 2]`` for face vertices ``face_target [468, 2]``."""
        m, k = self.mesh, self._constants()
        face_target = np.asarray(face_target, dtype=np.float64)[:NUM_VERTICES]
        target = self.source.copy()
        source = self.source.copy()
        target[:NUM_VERTICES] = face_target
        # eye holes: duplicated upper lid, source taken relative to the lower lid (covering, not squeezing)
        up, lo = m.eye_dup, m.eye_dup_lower
        target[k.dup] = face_target[up]
        t_gap = np.linalg.norm(face_target[up] - face_target[lo], axis=1)
        ratio = np.clip(t_gap / k.eye_gap_norm, 0.0, 1.0)
        source[k.dup] = k.eye_lower + k.eye_gap * ratio[:, None]
        # rings: the head's affine motion (fitted on stable vertices) plus the oval's local residual
        affine = fit_affine(k.stable_source, face_target[k.stable])
        rigid_oval = k.oval_source @ affine[:, :2].T + affine[:, 2]
        residual = face_target[k.oval] - rigid_oval
        residual = 0.5 * residual + 0.25 * (np.roll(residual, 1, 0) + np.roll(residual, -1, 0))
        rigid = [ring @ affine[:, :2].T + affine[:, 2] - ring for ring in k.ring_source]
        scale = np.ones(len(target))
        for _ in range(8):
            for r, ids in enumerate(k.ring_ids):
                disp = self.ring_weights[r] * rigid[r] + self.local_weights[r] * residual
                target[ids] = k.ring_source[r] + scale[ids, None] * disp
            flipped = np.sign(signed_areas(target, k.band)) != k.band_sign
            if not flipped.any():
                break
            verts = np.unique(k.band[flipped])
            verts = verts[(verts >= m.ring_start) & (verts < m.border_start)]
            if len(verts) == 0:
                break
            scale[verts] *= 0.5
        return target, source

    def coordinate_map(self, face_target: np.ndarray) -> np.ndarray:
        """Backward map ``[size, size, 2]`` float32: the source crop pixel of every target pixel."""
        target, source = self.extend(face_target)
        m, k = self.mesh, self._constants()
        affines = triangle_affines(target, source, m.triangles)
        # painter's order: band, holes, folded face triangles, front face triangles
        area_t = signed_areas(target, m.triangles)
        folded = k.face & (np.sign(area_t) != k.area_sign)
        rank = k.rank + (k.face & ~folded)
        order = np.argsort(rank, kind="stable")
        ids = np.zeros((self.size, self.size), dtype=np.uint16)
        order = order[np.abs(area_t[order]) > 1e-3]  # degenerate triangles cover nothing
        fixed = np.round(target * (1 << _SHIFT)).astype(np.int32)
        tri_pts = fixed[m.triangles[order]]  # [F', 3, 2]
        fill = cv2.fillConvexPoly
        for f, pts in zip((order + 1).tolist(), tri_pts, strict=True):
            fill(ids, pts, f, cv2.LINE_8, _SHIFT)
        # id 0 (no triangle) is the identity; columns gathered one at a time (fast 1-D takes)
        table = np.empty((len(affines) + 1, 6))
        table[0] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
        table[1:] = affines.reshape(-1, 6)
        table = np.ascontiguousarray(table.T.astype(np.float32))  # [6, F + 1]
        ys, xs = self._grid()
        out = np.empty((self.size, self.size, 2), dtype=np.float32)
        tmp = np.empty((self.size, self.size), dtype=np.float32)
        col = np.empty((self.size, self.size), dtype=np.float32)
        index = ids.astype(np.intp)  # what every take would convert the ids to (every id is in the table)
        for axis in range(2):
            a, b, c = table[3 * axis], table[3 * axis + 1], table[3 * axis + 2]
            np.take(a, index, out=col, mode="clip")
            np.multiply(col, xs, out=tmp)
            np.take(c, index, out=col, mode="clip")
            np.add(tmp, col, out=tmp)
            np.take(b, index, out=col, mode="clip")
            np.multiply(col, ys, out=col)
            np.add(tmp, col, out=out[..., axis])
        return out

    def _grid(self) -> tuple[np.ndarray, np.ndarray]:
        if not hasattr(self, "_grid_cache"):
            ys, xs = np.mgrid[0 : self.size, 0 : self.size].astype(np.float32)
            self._grid_cache = (ys, xs)
        return self._grid_cache

    def _constants(self) -> _WarpConstants:
        """What every frame's warp needs of the source mesh, computed on the first frame."""
        k: _WarpConstants | None = self.__dict__.get("_constants_cache")
        if k is None:
            k = self.__dict__["_constants_cache"] = _WarpConstants.of(self)
        return k


@dataclass(frozen=True, eq=False)
class _WarpConstants:
    """The parts of :meth:`MeshWarper.extend` and :meth:`MeshWarper.coordinate_map` that depend on the source
    mesh only (the same values those methods computed every frame before)."""

    dup: np.ndarray  # ids of the duplicated upper-lid vertices
    eye_gap: np.ndarray  # source upper lid - lower lid at the duplicates [D, 2]
    eye_gap_norm: np.ndarray  # its length, at least 1e-6 [D]
    eye_lower: np.ndarray  # source lower lid at the duplicates [D, 2]
    stable: np.ndarray  # STABLE_VERTICES
    stable_source: np.ndarray  # their source points
    oval: np.ndarray  # face-oval vertex ids
    oval_source: np.ndarray  # their source points
    ring_ids: list[np.ndarray]
    ring_source: list[np.ndarray]  # source points of each ring
    band: np.ndarray  # the band's triangles (kind 0)
    band_sign: np.ndarray  # their orientation in the source
    face: np.ndarray  # kind == 2
    area_sign: np.ndarray  # every triangle's orientation in the source
    rank: np.ndarray  # 2 * kind (painter's order before the folded face triangles are known)

    @classmethod
    def of(cls, warper: MeshWarper) -> _WarpConstants:
        m, src = warper.mesh, warper.source
        up, lo = m.eye_dup, m.eye_dup_lower
        eye_gap = src[up] - src[lo]
        stable = np.array(STABLE_VERTICES)
        oval = np.array(face_oval())
        ring_ids = [m.ring_start + k * m.ring_count + np.arange(m.ring_count) for k in range(m.num_rings)]
        band = m.triangles[m.kind == 0]
        return cls(np.arange(NUM_VERTICES, NUM_VERTICES + len(up)), eye_gap,
                   np.maximum(np.linalg.norm(eye_gap, axis=1), 1e-6), src[lo], stable,
                   src[stable], oval, src[oval], ring_ids,
                   [src[ids] for ids in ring_ids], band, np.sign(signed_areas(src, band)), m.kind == 2,
                   np.sign(signed_areas(src, m.triangles)), m.kind.astype(np.int32) * 2)

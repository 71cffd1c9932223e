"""The warp mesh: MediaPipe's face triangulation extended to the crop border (issue 3, item 4).

The warp renderer deforms the portrait piecewise-affinely over one triangle mesh whose vertices
are, in this order:

1. the 468 face-mesh vertices (MediaPipe topology; ``FACEMESH_TESSELATION`` gives 852 triangles);
2. duplicates of the upper-eyelid vertices, used only by the triangles that fill the eye holes
   (so that a closing lid *covers* the eye instead of squeezing the iris, see ``warp.py``);
3. ``len(ring_scales)`` rings of anchor points: the face oval scaled about its centre, which follow
   the head with decaying weight (hair, ears, neck);
4. fixed points on the crop border (the background at the crop edge never moves, so the crop pastes
   back seamlessly).

The face mesh has holes at the mouth and the eyes; they are filled here with strips between the
upper and lower inner-lip (eyelid) chains, which are valid triangulations for any open shape. The
bands between the oval, the rings and the border are stitched by angle around the face centre.
Vertex indices are MediaPipe's; there is no paper behind this module (a geometric stand-in for the
papers' PIRenderer, DESIGN.md "renderers").
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from talkinghead.face.topology import NUM_VERTICES, mesh_connections

# Inner lips, corner to corner (MediaPipe indices).
MOUTH_UPPER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
MOUTH_LOWER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
# Outer edges of the lips, corner to corner.
MOUTH_UPPER_OUTER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291)
MOUTH_LOWER_OUTER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291)
# Eyelids, outer corner to inner corner; "right" is the subject's right eye (image left).
RIGHT_EYE_UPPER = (33, 246, 161, 160, 159, 158, 157, 173, 133)
RIGHT_EYE_LOWER = (33, 7, 163, 144, 145, 153, 154, 155, 133)
LEFT_EYE_UPPER = (263, 466, 388, 387, 386, 385, 384, 398, 362)
LEFT_EYE_LOWER = (263, 249, 390, 373, 374, 380, 381, 382, 362)
EYES = ((RIGHT_EYE_UPPER, RIGHT_EYE_LOWER), (LEFT_EYE_UPPER, LEFT_EYE_LOWER))


@lru_cache(maxsize=1)
def face_triangles() -> np.ndarray:
    """MediaPipe's 852 face triangles ``[852, 3]`` (int32).

    ``FACEMESH_TESSELATION`` is a frozenset of edges; the module's source lists them in order,
    three edges a closed triangle, which is how the triangles are recovered.
    """
    fmc = mesh_connections()
    source = inspect.getsource(fmc)
    match = re.search(r"FACEMESH_TESSELATION\s*=\s*frozenset\(\[(.*?)\]\)", source, re.S)
    if match is None:  # pragma: no cover - depends on the pinned mediapipe
        raise RuntimeError("mediapipe's FACEMESH_TESSELATION source was not found")
    edges = np.array(re.findall(r"\((\d+),\s*(\d+)\)", match.group(1)), dtype=np.int32).reshape(-1, 3, 2)
    closed = ((edges[:, 0, 1] == edges[:, 1, 0]) & (edges[:, 1, 1] == edges[:, 2, 0])
              & (edges[:, 2, 1] == edges[:, 0, 0]))
    if not closed.all():  # pragma: no cover
        raise RuntimeError("mediapipe's tessellation is not listed three edges a triangle")
    return np.ascontiguousarray(edges[:, :, 0])


@lru_cache(maxsize=1)
def face_oval() -> tuple[int, ...]:
    """The 36 face-oval vertices as one closed loop (MediaPipe's ``FACEMESH_FACE_OVAL``)."""
    fmc = mesh_connections()
    nxt = dict(fmc.FACEMESH_FACE_OVAL)
    loop = [10]
    while nxt[loop[-1]] != loop[0]:
        loop.append(nxt[loop[-1]])
    return tuple(loop)


def strip_triangles(upper: np.ndarray, lower: np.ndarray) -> np.ndarray:
    """Triangulate the hole between two chains sharing their end points ``[2*(n-1)-2, 3]``."""
    tris = []
    for i in range(len(upper) - 1):
        a, b, c, d = upper[i], upper[i + 1], lower[i + 1], lower[i]
        if a != d:
            tris.append((a, b, d))
        if b != c:
            tris.append((b, c, d))
    return np.array(tris, dtype=np.int32)


def stitch_loops(inner: np.ndarray, outer: np.ndarray, points: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Triangulate the band between two closed loops (vertex ids), both star-shaped about ``centre``.

    Both loops are walked once in increasing angle; each step adds the triangle that advances the loop
    whose next vertex comes first in angle, so triangles never cross.
    """

    def ordered(loop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d = points[loop] - centre
        ang = np.arctan2(d[:, 1], d[:, 0])
        order = np.argsort(ang, kind="stable")
        return loop[order], ang[order]

    a, aa = ordered(np.asarray(inner))
    b, ba = ordered(np.asarray(outer))
    # unwrap both to start near angle -pi and run one full turn each
    aa_ext = np.concatenate([aa, aa[:1] + 2 * np.pi])
    ba_ext = np.concatenate([ba, ba[:1] + 2 * np.pi])
    i = j = 0
    tris = []
    while i < len(a) or j < len(b):
        take_a = j >= len(b) or (i < len(a) and aa_ext[i + 1] <= ba_ext[j + 1])
        if take_a:
            tris.append((a[i % len(a)], b[j % len(b)], a[(i + 1) % len(a)]))
            i += 1
        else:
            tris.append((a[i % len(a)], b[j % len(b)], b[(j + 1) % len(b)]))
            j += 1
    return np.array(tris, dtype=np.int32)


@dataclass(frozen=True)
class WarpMesh:
    """Vertex layout and triangles of the warp mesh (see module docstring).

    ``triangles [F, 3]`` index the extended vertex array; ``kind [F]`` is 0 for the outer band
    (rings and border), 1 for the mouth and eye holes, 2 for face triangles (drawn last, on top).
    ``eye_dup`` maps each duplicated upper-lid vertex to its face vertex and ``eye_dup_lower`` to the
    lower-lid vertex facing it; ``ring_start``/``border_start`` are the first ids of those groups.
    """

    triangles: np.ndarray
    kind: np.ndarray
    eye_dup: np.ndarray
    eye_dup_lower: np.ndarray
    ring_start: int
    ring_count: int
    num_rings: int
    border_start: int
    border_count: int

    @property
    def num_vertices(self) -> int:
        return self.border_start + self.border_count


def border_points(size: int, per_side: int) -> np.ndarray:
    """Points along the border of a ``size`` square crop, corners included ``[4*per_side, 2]``."""
    edge = np.linspace(0.0, size - 1.0, per_side + 1)[:-1]
    hi = np.full_like(edge, size - 1.0)
    lo = np.zeros_like(edge)
    top = np.stack([edge, lo], 1)
    right = np.stack([hi, edge], 1)
    bottom = np.stack([hi[::-1] - edge, hi], 1)
    left = np.stack([lo, hi - edge], 1)
    return np.concatenate([top, right, bottom, left]).astype(np.float64)


def build_mesh(source_points: np.ndarray, num_rings: int, border_count: int) -> WarpMesh:
    """Build the mesh topology for extended ``source_points [V, 2]`` (face, dups, rings, border).

    The band triangulation depends on the source geometry (angles around the face centre), so the
    topology is built once per portrait from its own source points.
    """
    oval = np.array(face_oval(), dtype=np.int32)
    eye_upper = np.concatenate([np.array(up[1:-1]) for up, _ in EYES]).astype(np.int32)
    eye_lower = np.concatenate([np.array(lo[1:-1]) for _, lo in EYES]).astype(np.int32)
    n_dup = len(eye_upper)
    ring_start = NUM_VERTICES + n_dup
    n_oval = len(oval)
    border_start = ring_start + num_rings * n_oval

    holes = [strip_triangles(np.array(MOUTH_UPPER), np.array(MOUTH_LOWER))]
    offset = NUM_VERTICES
    for upper, lower in EYES:
        up = np.array(upper)
        dup = np.arange(offset, offset + len(upper) - 2)
        up = np.concatenate([[up[0]], dup, [up[-1]]])
        holes.append(strip_triangles(up, np.array(lower)))
        offset += len(upper) - 2
    hole_tris = np.concatenate(holes)

    centre = source_points[oval].mean(axis=0)
    loops = [oval] + [ring_start + k * n_oval + np.arange(n_oval) for k in range(num_rings)]
    loops.append(border_start + np.arange(border_count))
    band = np.concatenate([stitch_loops(loops[k], loops[k + 1], source_points, centre) for k in range(len(loops) - 1)])

    face = face_triangles()
    triangles = np.concatenate([band, hole_tris, face]).astype(np.int32)
    kind = np.concatenate([np.zeros(len(band)), np.ones(len(hole_tris)), np.full(len(face), 2)]).astype(np.int8)
    return WarpMesh(triangles, kind, eye_upper,
                    eye_lower, ring_start, n_oval, num_rings, border_start, border_count)


@lru_cache(maxsize=1)
def mouth_region(hops: int = 5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The lower face around the mouth, where expression can fold the mesh (issue 12).

    Returns ``(vertices, triangles, neighbours)``: the face vertices within ``hops`` mesh edges of
    MediaPipe's lip contours (down to the chin, out to the cheeks; the nose excluded, whose folds on a
    head turn are real occlusion), the face triangles with all three corners among them ``[F, 3]``, and
    the mesh's vertex adjacency as an edge list ``[2, K]`` (both directions) over all 468 vertices.
    """
    fmc = mesh_connections()
    tris = face_triangles()
    edges = np.concatenate([tris[:, [0, 1]], tris[:, [1, 2]], tris[:, [2, 0]]])
    edges = np.unique(np.concatenate([edges, edges[:, ::-1]]), axis=0)
    dist = np.full(NUM_VERTICES, -1)
    front = np.array(sorted({i for e in fmc.FACEMESH_LIPS for i in e}))
    dist[front] = 0
    for k in range(1, hops + 1):
        reached = edges[np.isin(edges[:, 0], front), 1]
        front = np.unique(reached[dist[reached] < 0])
        dist[front] = k
    nose = np.array(sorted({i for e in fmc.FACEMESH_NOSE for i in e}))
    inside = dist >= 0
    inside[nose] = False
    vertices = np.flatnonzero(inside).astype(np.int32)
    triangles = tris[inside[tris].all(1)]
    return vertices, np.ascontiguousarray(triangles), np.ascontiguousarray(edges.T.astype(np.int32))

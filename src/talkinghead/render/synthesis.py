"""What a geometric warp cannot produce: the mouth interior and closed eyelids (issues 3 and 12).

A warp only moves pixels that exist. When the lips part further than in the portrait, the inner-lip
polygon of the target has no source content (the warp would stretch the lip line), so it is painted
here, in the mouth's own frame (corner-to-corner axis ``u`` in [0, 1], distance ``v`` across it), so it
follows any head roll and works at any resolution:

- a dark cavity, darkest in the middle and toward the back, lighter where light enters past the lips;
- an upper row of teeth hanging from the upper inner lip along the whole visible arch: its incisal
  edge follows the lip's contour, the teeth are separated by faint interdental lines spaced as on a
  dental arch seen from the front (narrower toward the corners), shadowed under the lip and darker
  toward the corners, where the row turns away into the dark buccal corridor;
- a lower row rising from the lower inner lip, revealed as the jaw drops (the lower lip covers it in
  small openings), and a tongue behind it in wide openings.

Every colour comes from a :class:`MouthPalette` sampled once from the portrait (skin and lip colour
and brightness), so the interior is lit like the face: teeth are an off-white tinted by the skin's hue
(grey on a black-and-white photo) at a brightness tied to the skin's, the cavity and tongue are darker
versions of the lips. A narrow opening lets in less light, so everything dims as the lips close.
Geometry comes only from the mesh (no per-frame randomness), so frames do not flicker, and all edges
are analytic soft ramps (anti-aliased at any size).

Where the portrait shows its own mouth interior (lips parted or teeth in the photo), the photo is
used: the part of the photo's opening next to the upper lip is drawn hanging from the target's upper
lip at its own size, the part next to the lower lip rising from the lower lip, and only the extra
opening between them is painted (a jaw drop reveals cavity, not stretched teeth). A photo whose mouth is wide
open has no lips to shut with; its shut lips are blended toward the photo's lip colour
(:func:`paint_shut_lips`).

The paint's opacity ramps from 0 (lips no further apart than in the portrait, so rendering the
portrait's own coefficients stays an exact identity) to 1 once the gap has grown by ``full_at`` of
the mouth width. On a blink the warp already draws the lid skin over the eye (``warp.py``); here a
soft lash line is drawn along the closed lid. No paper: the papers render with PIRenderer or a
diffusion decoder, which learn these regions; this is the training-free default renderer's stand-in
(DESIGN.md).
"""

from __future__ import annotations

import collections
import threading
from dataclasses import dataclass

import cv2
import numpy as np

from talkinghead.render.mesh import EYES, MOUTH_LOWER, MOUTH_LOWER_OUTER, MOUTH_UPPER, MOUTH_UPPER_OUTER

LASH = np.array([38.0, 28.0, 28.0]) / 255.0
# Mid-lip samples: (outer-lip vertex, inner-lip vertex) pairs across the upper and lower lip.
LIP_PAIRS = ((0, 13), (37, 82), (267, 312), (39, 81), (269, 311), (17, 14), (84, 87), (314, 317),
             (181, 178), (405, 402))
# Skin samples: cheeks, under the eyes, chin (MediaPipe vertices).
SKIN_VERTICES = (50, 280, 101, 330, 205, 425, 117, 346, 199, 175)
LUMA = np.array([0.299, 0.587, 0.114])
TOOTH_ANGLE = 0.34  # radians of dental arch per upper tooth (central incisor ~ 0.16 mouth widths)
LOWER_TOOTH_ANGLE = 0.26
SHUT_INSET = 0.04  # shut lips drawn from this fraction of the mouth width inside the photo's lips
# Shut lips over a photo whose mouth is wide open (see paint_shut_lips): the lips are drawn this far toward the
# photo's lip colour (the upper lip UPPER_LIP_SHADE as bright), with a seam of SHUT_SEAM opacity; fully where the
# photo's lips part by WIDE_OPEN[1] of the mouth width or more, not at all below WIDE_OPEN[0].
SHUT_LIP_PAINT = 0.7
UPPER_LIP_SHADE = 0.8
SHUT_SEAM = 0.6
SEAM_TONE = 0.35  # the seam's colour, as a fraction of the lip's
SEAM_WIDTH = 0.012  # the seam line's thickness, as a fraction of the mouth width
WIDE_OPEN = (0.5, 0.9)


@dataclass(frozen=True)
class MouthPalette:
    """Colours of the mouth interior (RGB in [0, 1]), lit like the portrait they were sampled from."""

    teeth: np.ndarray
    cavity_edge: np.ndarray
    cavity_deep: np.ndarray
    tongue: np.ndarray
    lower_lip: np.ndarray  # the lower lip's own colour, near its outer edge

    @classmethod
    def default(cls) -> MouthPalette:
        return cls.from_colours(np.array([0.78, 0.58, 0.50]), np.array([0.70, 0.42, 0.40]))

    @classmethod
    def from_colours(cls, skin: np.ndarray, lip: np.ndarray, skin_bright: float | None = None,
                     lower_lip: np.ndarray | None = None) -> MouthPalette:
        """From the portrait's typical skin and lip colour (RGB in [0, 1]); ``skin_bright``: the luma of the
        lit skin (a high percentile), default the skin colour's own; ``lower_lip``: the lower lip's colour near
        its outer edge, default ``lip``."""
        skin = np.clip(np.asarray(skin, np.float64), 1e-3, 1.0)
        lip = np.clip(np.asarray(lip, np.float64), 1e-3, 1.0)
        lower = lip if lower_lip is None else np.clip(np.asarray(lower_lip, np.float64), 1e-3, 1.0)
        bright = float(skin @ LUMA) if skin_bright is None else float(skin_bright)
        # off-white tinted by the skin's hue (the light's colour and the photo's white balance); a grey
        # photo gives grey teeth
        tint = (skin / max(float(skin.mean()), 1e-3)) ** 0.5
        tint /= float(tint @ LUMA)
        teeth = np.clip(tint * float(np.clip(1.1 * bright, 0.08, 0.88)), 0.0, 0.96)
        # cavity and tongue: the lips' hue, deeper (saturated as far as the photo's own colours are)
        lip_l = max(float(lip @ LUMA), 1e-3)
        hue = (lip / lip_l) ** 1.6
        hue /= float(hue @ LUMA)
        level = min(lip_l, float(skin @ LUMA))
        parts = (teeth, hue * 0.4 * level, hue * 0.12 * level, (lip / lip_l) ** 1.3 * 0.68 * level, lower)
        return cls(*(np.asarray(c, np.float32) for c in parts))


def _sample(image: np.ndarray, points: np.ndarray, radius: int) -> np.ndarray:
    """Pixels ``[N, 3]`` in [0, 1] within ``radius`` of each point (inside the image)."""
    h, w = image.shape[:2]
    out = []
    for x, y in np.round(points).astype(int):
        x0, x1, y0, y1 = max(x - radius, 0), min(x + radius + 1, w), max(y - radius, 0), min(y + radius + 1, h)
        if x1 > x0 and y1 > y0:
            out.append(image[y0:y1, x0:x1].reshape(-1, 3))
    if not out:
        return np.zeros((0, 3))
    return np.concatenate(out).astype(np.float64) / 255.0


def mouth_palette(image: np.ndarray, points: np.ndarray) -> MouthPalette:
    """Sample the portrait ``image [H, W, 3] uint8`` around its face ``points [468, 2]`` (image pixels)."""
    points = np.asarray(points, np.float64)
    width = float(np.linalg.norm(points[MOUTH_UPPER[-1]] - points[MOUTH_UPPER[0]]))
    skin = _sample(image, points[list(SKIN_VERTICES)], max(1, int(round(0.08 * width))))
    lip_pts = np.array([0.5 * (points[a] + points[b]) for a, b in LIP_PAIRS])
    lip = _sample(image, lip_pts, max(0, int(round(0.02 * width))))
    # the lower lip near its outer edge (a photo's inner lip contour can lie on the tongue or teeth)
    lower_pts = 0.75 * points[list(MOUTH_LOWER_OUTER[1:-1])] + 0.25 * points[list(MOUTH_LOWER[1:-1])]
    lower = _sample(image, lower_pts, max(0, int(round(0.01 * width))))
    if len(skin) < 4 or len(lip) < 2:
        return MouthPalette.default()
    skin_luma = skin @ LUMA
    return MouthPalette.from_colours(np.median(skin, 0), np.median(lip, 0), float(np.percentile(skin_luma, 80)),
                                     np.median(lower, 0) if len(lower) else None)


def _smoothstep(x: np.ndarray | float, lo: float, hi: float) -> np.ndarray:
    t = np.clip((np.asarray(x, dtype=np.float32) - lo) / max(hi - lo, 1e-9), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _box(points: np.ndarray, pad: int, shape: tuple[int, ...]) -> tuple[int, int, int, int] | None:
    """The pixel box ``(x0, y0, x1, y1)`` around ``points [n, 2]`` widened by ``pad`` pixels, clipped to an image of
    ``shape`` (``[H, W, ...]``); None if nothing of it is inside."""
    h, w = shape[:2]
    x0, y0 = np.floor(points.min(0)).astype(int) - pad
    x1, y1 = np.ceil(points.max(0)).astype(int) + pad + 1
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    return None if x1 <= x0 or y1 <= y0 else (x0, y0, x1, y1)


def _soft_line(shape: tuple[int, int], points: np.ndarray, thickness: int, sigma: float) -> np.ndarray:
    """Coverage ``[h, w]`` in [0, 1] of an anti-aliased polyline through ``points [n, 2]`` (box pixels), blurred
    by ``sigma``."""
    mask = np.zeros(shape, np.uint8)
    cv2.polylines(mask, [np.round(points * 16).astype(np.int32)], False, (255,), thickness=thickness,
                  lineType=cv2.LINE_AA, shift=4)
    return cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (0, 0), sigma)


def _frame(upper: np.ndarray, lower: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Origin, axis ``e``, normal ``n`` (pointing from upper to lower chain) and width of a mouth/eye."""
    origin = upper[0]
    axis = upper[-1] - upper[0]
    width = float(np.linalg.norm(axis))
    e = axis / max(width, 1e-9)
    n = np.array([-e[1], e[0]])
    if np.dot(lower[1:-1].mean(0) - upper[1:-1].mean(0), n) < 0:
        n = -n
    return origin, e, n, width


def chain_gaps(points: np.ndarray, upper: tuple[int, ...], lower: tuple[int, ...]) -> np.ndarray:
    """Signed distances ``[n-2]`` from the upper to the lower chain across the opening (pixels)."""
    up, lo = points[list(upper)], points[list(lower)]
    _, _, n, _ = _frame(up, lo)
    return (lo[1:-1] - up[1:-1]) @ n


_MOUTH_UPPER, _MOUTH_LOWER = np.array(MOUTH_UPPER), np.array(MOUTH_LOWER)


@dataclass(frozen=True, eq=False)
class _Chains:
    """An opening between two chains of ``points`` (the mouth or an eye): the chains, :func:`_frame` of
    them and :func:`chain_gaps`, each computed once however often a frame needs them."""

    up: np.ndarray
    lo: np.ndarray
    origin: np.ndarray
    e: np.ndarray
    n: np.ndarray
    width: float
    gaps: np.ndarray

    @classmethod
    def of(cls, points: np.ndarray, upper: np.ndarray | tuple[int, ...] = _MOUTH_UPPER,
           lower: np.ndarray | tuple[int, ...] = _MOUTH_LOWER) -> _Chains:
        up, lo = points[np.asarray(upper)], points[np.asarray(lower)]
        origin, e, n, width = _frame(up, lo)
        return cls(up, lo, origin, e, n, width, (lo[1:-1] - up[1:-1]) @ n)

    def curve_tables(self) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
        """The upper and lower chain as :func:`_curve_table` tables (for :func:`_interp`), made once."""
        tables = self.__dict__.get("_tables")
        if tables is None:
            tables = tuple(_curve_table(c, self.origin, self.e, self.n, self.width) for c in (self.up, self.lo))
            object.__setattr__(self, "_tables", tables)
        return tables  # type: ignore[no-any-return]


class _SourceFaces:
    """:class:`_Chains` of the mouth and the eyes of the last few source faces (a renderer draws every frame
    over one source face, whose geometry is then computed once, not once a frame)."""

    def __init__(self, size: int = 8) -> None:
        self._size = size
        self._items: collections.OrderedDict[bytes, tuple[_Chains, list[float]]] = collections.OrderedDict()
        self._lock = threading.Lock()

    def get(self, source: np.ndarray) -> tuple[_Chains, list[float]]:
        """``(mouth, [mean gap of each eye])`` of ``source``."""
        source = np.asarray(source)
        key = np.ascontiguousarray(source).tobytes() + str(source.shape).encode() + str(source.dtype).encode()
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
                return hit
        made = (_Chains.of(source), [float(chain_gaps(source, upper, lower).mean()) for upper, lower in EYES])
        with self._lock:
            self._items[key] = made
            while len(self._items) > self._size:
                self._items.popitem(last=False)
        return made


_SOURCES = _SourceFaces()


def mouth_opacity(t: _Chains, s: _Chains, full_at: float) -> float:
    """0 while the lips of the target mouth ``t`` are no further apart than in the portrait's ``s``, 1 once
    ``full_at`` widths further."""
    extra = t.gaps - s.gaps
    return float(_smoothstep(extra.max() / max(t.width, 1e-6), 0.0, full_at))


def mouth_closing(t: _Chains, s: _Chains, full_at: float) -> float:
    """0 while the lips of ``t`` are no closer than in the portrait's ``s``, 1 once ``full_at`` widths closer (where
    the photo's own lips are parted: its interior must then not be squeezed into the narrower gap)."""
    if s.gaps.max() < 0.02 * s.width:  # the photo's lips are closed: nothing of its interior to hide
        return 0.0
    less = s.gaps - t.gaps
    return float(_smoothstep(less.max() / max(t.width, 1e-6), 0.0, full_at))


def _curve_table(chain: np.ndarray, origin: np.ndarray, e: np.ndarray, n: np.ndarray,
                 width: float) -> tuple[np.ndarray, np.ndarray]:
    """A chain's samples ``(u, v)`` in the opening's frame (``u`` made non-decreasing)."""
    return np.maximum.accumulate(((chain - origin) @ e) / width), (chain - origin) @ n


def _interp(u: np.ndarray, table: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """The inner-lip curve ``v(u)`` of a chain's table, evaluated at ``u``."""
    return np.interp(u, table[0], table[1]).astype(np.float32)


def _interdental(u: np.ndarray, width: float, angle: float, span: float) -> tuple[np.ndarray, np.ndarray]:
    """Tooth separations on a dental arch seen from the front: ``(line, edge)`` in [0, 1], ``line`` a
    thin anti-aliased line on each separation, ``edge`` a wider bump used to round the incisal edges."""
    x = np.clip((2.0 * u - 1.0) * span, -0.995, 0.995)
    phi = np.arcsin(x)
    k = phi / angle
    frac = np.abs(k - np.round(k)) * angle  # arch radians to the nearest separation
    px = frac * np.sqrt(1.0 - x * x) * (0.5 * width / span)  # ... in pixels
    line = np.exp(-((px / max(0.45, 0.006 * width)) ** 2))
    edge = np.exp(-((px / max(0.9, 0.02 * width)) ** 2))
    return line.astype(np.float32), edge.astype(np.float32)


def paint_mouth(frame: np.ndarray, target: np.ndarray, source: np.ndarray, full_at: float = 0.06,
                palette: MouthPalette | None = None, photo: np.ndarray | None = None,
                margin: float = 1.0) -> None:
    """Paint the mouth interior into ``frame [H, W, 3] uint8`` in place.

    ``target``/``source``: face vertices ``[468, 2]`` in the frame's pixel coordinates (target: this
    frame's face; source: the portrait's own fitted face). ``palette``: the portrait's colours
    (:func:`mouth_palette`; default: sampled from ``photo`` if given, else from ``frame``). ``photo``: the
    portrait in the same pixel coordinates as ``source``; where its own mouth is open, its interior is
    used instead of paint (see the module docstring).

    Where the lips close further than in the photo (its lips parted), the gap is drawn from the photo
    at its own size (each half cut at the gap's middle, a dark seam once nearly closed) over the gap and
    ``margin`` pixels of lip on either side: the warp squeezes the photo's whole interior into the thin
    gap, and its displacement, sampled once per crop pixel, smears that squeeze about one crop pixel
    onto the lips (``margin``: a crop pixel and a half, in ``frame`` pixels).
    """
    mouth, (src, _) = _Chains.of(target), _SOURCES.get(source)
    opacity = mouth_opacity(mouth, src, full_at)
    closing = mouth_closing(mouth, src, full_at) if photo is not None else 0.0
    if opacity <= 0.0 and closing <= 0.0:
        return
    opacity = max(opacity, closing)
    up, lo = mouth.up, mouth.lo
    origin, e, n, width = mouth.origin, mouth.e, mouth.n, mouth.width
    if width < 2.0:
        return
    if palette is None:
        palette = mouth_palette(photo, source) if photo is not None else mouth_palette(frame, target)
    box = _box(np.concatenate([up, lo]), 2, frame.shape)
    if box is None:
        return
    x0, y0, x1, y1 = box
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    rel_x, rel_y = xs - np.float32(origin[0]), ys - np.float32(origin[1])
    u = (rel_x * np.float32(e[0]) + rel_y * np.float32(e[1])) / np.float32(width)
    v = rel_x * np.float32(n[0]) + rel_y * np.float32(n[1])
    up_table, lo_table = mouth.curve_tables()
    v_up, v_lo = _interp(u, up_table), _interp(u, lo_table)
    gap = np.maximum(v_lo - v_up, 1e-3)
    edge = max(0.6, 0.01 * width)  # soft edge (pixels)
    inside = np.clip((v - v_up) / edge + 0.5, 0, 1) * np.clip((v_lo - v) / edge + 0.5, 0, 1)
    inside *= (u > 0) & (u < 1)
    shut = None
    if closing > 0.0:  # the gap and a margin of lip either side (redrawn from the photo below)
        shut = 1.0 - _smoothstep(gap / width, 0.015, 0.05)  # how far the lips are shut (1 at 1.5% of the width)
        pad = np.float32(max(margin, 0.0))
        band = np.clip((v - v_up + pad) / edge + 0.5, 0, 1) * np.clip((v_lo - v + pad) / edge + 0.5, 0, 1)
        band *= (u > 0) & (u < 1)
    else:
        band = inside
    if not band.any():
        return
    open_frac = float(mouth.gaps.max()) / width
    depth = v - v_up  # below the upper lip (pixels)
    rise = v_lo - v  # above the lower lip
    t = np.clip(depth / gap, 0.0, 1.0)  # 0 at the upper lip, 1 at the lower lip
    side = np.abs(2.0 * u - 1.0)  # 0 mid-mouth, 1 at the corners
    centre = 1.0 - side**2

    # cavity: light enters past the lips, the back and the middle are darkest
    deep = np.maximum(np.sin(np.pi * t), 0.0) ** 0.6 * (0.45 + 0.55 * centre)
    deep = np.clip(deep + 0.25 * side**2 * (1.0 - t), 0.0, 1.0)
    colour = palette.cavity_edge * (1.0 - deep[..., None]) + palette.cavity_deep * deep[..., None]

    # tongue: a dome behind the lower teeth in wide openings, lit on its crown
    tongue_top = gap * (0.3 + 0.15 * centre)  # height above the lower lip
    tongue_on = _smoothstep(open_frac, 0.12, 0.3) * (1.0 - _smoothstep(side, 0.55, 0.85))
    tongue = np.clip((tongue_top - rise) / edge + 0.5, 0, 1) * tongue_on
    crown = 0.7 + 0.3 * _smoothstep((tongue_top - rise) / np.maximum(tongue_top, 1e-3), 0.0, 0.5)
    crown *= 1.0 - 0.35 * _smoothstep(rise / np.maximum(tongue_top, 1e-3), 0.0, 0.9)
    colour += tongue[..., None] * (palette.tongue * crown[..., None] - colour)

    # photo's own interior where its lips are parted (per column), and how much paint it leaves
    src_cols = _photo_columns(src, u) if photo is not None else None
    photo_col = np.zeros_like(u) if src_cols is None else src_cols[2]
    if closing > 0.0 and src_cols is not None:
        # and wherever the lips are closer than in the photo (its corners too): the photo at its own size
        s_width = src.width
        photo_gap = (src_cols[1] - src_cols[0]) * np.float32(width / max(s_width, 1e-6))
        photo_col = np.maximum(photo_col, _smoothstep((photo_gap - gap) / width, 0.0, 0.01))
    teeth_on = 1.0 - photo_col

    # lower teeth: rise from the lower lip as the jaw drops, narrower arch, in the upper teeth's shadow
    low_line, low_edge = _interdental(u, width, LOWER_TOOTH_ANGLE, 0.75)
    low_h = width * 0.085 * _smoothstep(open_frac, 0.08, 0.35) * (1.0 - 0.4 * side**2)
    low_h = np.minimum(low_h, 0.32 * gap) - 0.01 * width * low_edge
    low = np.clip((low_h - rise) / edge + 0.5, 0, 1) * (1.0 - _smoothstep(side, 0.45, 0.72)) * teeth_on
    low_shade = (0.74 - 0.3 * side**2) * (1.0 - 0.3 * low_line) * (
        0.8 + 0.2 * _smoothstep(rise / np.maximum(low_h, 1e-3), 0.2, 1.0))
    colour += low[..., None] * (palette.teeth * low_shade[..., None] - colour)

    # upper teeth: a row hanging from the upper lip, incisal edge following the lip's contour
    line, tooth_edge = _interdental(u, width, TOOTH_ANGLE, 0.82)
    up_h = width * (0.075 + 0.06 * _smoothstep(open_frac, 0.05, 0.35)) * (1.0 - 0.35 * side**2)
    up_h = np.minimum(up_h, 0.62 * gap) - 0.012 * width * tooth_edge
    teeth = np.clip((up_h - depth) / edge + 0.5, 0, 1) * (1.0 - _smoothstep(side, 0.7, 0.92)) * teeth_on
    rel = depth / np.maximum(up_h, 1e-3)
    shade = (1.0 - 0.45 * side**2) * (0.72 + 0.28 * _smoothstep(rel, 0.0, 0.45))  # the lip's shadow
    shade *= (1.0 - 0.1 * _smoothstep(rel, 0.7, 1.0)) * (1.0 - 0.35 * line * (0.5 + 0.5 * rel))
    colour += teeth[..., None] * (palette.teeth * shade[..., None] - colour)

    # a narrow opening lets in little light
    colour *= 0.6 + 0.4 * _smoothstep(open_frac, 0.02, 0.2)

    if src_cols is not None and photo is not None and photo_col.any():
        colour = _blend_photo(colour, photo, src, src_cols, u, depth, rise, gap, width, photo_col, shut)
        if shut is not None:
            # a narrow gap reads as the soft dark seam of closed lips (a sliver of the photo's teeth between
            # them would read as a white line)
            mid = 0.5 * (v_up + v_lo)
            line = np.exp(-(((v - mid) / np.maximum(0.5 * gap, np.float32(0.008 * width) + 0.5)) ** 2))
            seam = line * shut * photo_col * np.float32(0.75)
            colour += seam[..., None] * (palette.cavity_edge - colour)

    alpha = (opacity * inside)[..., None]
    if closing > 0.0:  # the margin only where the photo's interior is drawn
        alpha = np.maximum(alpha, (closing * band * photo_col)[..., None])
    patch = frame[y0:y1, x0:x1].astype(np.float32) * np.float32(1 / 255)
    frame[y0:y1, x0:x1] = np.clip((patch + alpha * (colour - patch)) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if closing > 0.0 and src_cols is not None:
        # how far the lips are shut in the middle, and how wide the photo's mouth is open
        shut_mid = 1.0 - float(_smoothstep(float(mouth.gaps[3:6].mean()) / width, 0.02, 0.06))
        wide = float(_smoothstep(float(src.gaps.max()) / max(src.width, 1e-6), *WIDE_OPEN))
        paint_shut_lips(frame, target, palette, closing * shut_mid * wide)


def _soft_band(shape: tuple[int, int], first: np.ndarray, second: np.ndarray, sigma: float) -> np.ndarray:
    """Coverage ``[h, w]`` in [0, 1] of the band between two chains (points ``[n, 2]``), edges blurred by ``sigma``."""
    mask = np.zeros(shape, np.uint8)
    poly = np.concatenate([first, second[::-1]])
    cv2.fillPoly(mask, [np.round(poly * 16).astype(np.int32)], (255,), lineType=cv2.LINE_AA, shift=4)
    return cv2.GaussianBlur(mask.astype(np.float32) * np.float32(1 / 255), (0, 0), sigma)


def paint_shut_lips(frame: np.ndarray, target: np.ndarray, palette: MouthPalette, strength: float) -> None:
    """Draw shut lips partly in the photo's lip colour (``strength`` 0-1; ``frame`` in place, ``target`` as in
    :func:`paint_mouth`).

    A photo whose mouth is wide open (a scream) has no lips to shut with: the upper lip is stretched over the
    teeth to a line, the lower lip thin, and the face tracker's inner lower contour lies on the tongue. Shutting
    the lips, the warp draws a line of skin as the upper lip and a strip of tongue over a pale lip as the lower:
    a speckled pink band under the seam that a tracker reads as an open mouth (issue 12: the scream's shut mouth
    read 0.043 of the eye distance open, its pauses 0.05-0.08, with the rendered mesh's lips 0.002 apart). The
    lip bodies (outer edge to the seam) are blended :data:`SHUT_LIP_PAINT` x ``strength`` toward
    :attr:`MouthPalette.lower_lip` (the upper lip :data:`UPPER_LIP_SHADE` as bright, as it faces down) and the seam
    darkened by :data:`SHUT_SEAM`, soft-edged; the photo's texture shows through. Measured on the scream's 23
    pause frames of one voice and its shut neutral face (MediaPipe's inner-lip gap; pauses median / shut face):
    none 0.050 / 0.043; the lower lip alone at 0.6 0.043 / 0.086; both lips at 0.6 with a 0.3 seam 0.004 / 0.043,
    a 0.6 seam 0.007 / 0.015; at 0.7 with a 0.3 seam 0.005 / 0.020, a 0.6 seam 0.001 / 0.003 (kept); 0.8 with a 0.3
    seam 0.006 / 0.038. The reading is not monotonic in either weight: this face sits near the tracker's decision
    boundary, and only the kept setting is closed on both.
    """
    weight = float(np.clip(strength, 0.0, 1.0)) * SHUT_LIP_PAINT
    if weight <= 1e-3:
        return
    upper, lower = target[list(MOUTH_UPPER_OUTER)], target[list(MOUTH_LOWER_OUTER)]
    seam = 0.5 * (target[list(MOUTH_UPPER)] + target[list(MOUTH_LOWER)])
    width = float(np.linalg.norm(upper[-1] - upper[0]))
    if width < 2.0:
        return
    sigma = max(0.6, 0.015 * width)
    box = _box(np.concatenate([upper, lower]), int(np.ceil(3 * sigma)) + 1, frame.shape)
    if box is None:
        return
    x0, y0, x1, y1 = box
    corner = np.array([x0, y0], np.float64)
    shape = (y1 - y0, x1 - x0)
    colour = palette.lower_lip.astype(np.float32) * np.float32(255)
    patch = frame[y0:y1, x0:x1].astype(np.float32)
    for alpha, tone in ((_soft_band(shape, upper - corner, seam - corner, sigma), colour * UPPER_LIP_SHADE),
                        (_soft_band(shape, seam - corner, lower - corner, sigma), colour)):
        a = (np.float32(weight) * alpha)[..., None]
        patch += a * (tone - patch)
    line = _soft_line(shape, seam - corner, max(1, int(SEAM_WIDTH * width)), 0.6)
    a = np.float32(min(max(strength, 0.0), 1.0) * SHUT_SEAM) * line
    patch += a[..., None] * (colour * np.float32(SEAM_TONE) - patch)
    frame[y0:y1, x0:x1] = np.clip(patch + 0.5, 0, 255).astype(np.uint8)


def _photo_columns(src: _Chains, u: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The portrait's (``src``, its mouth) inner-lip curves at ``u`` (source pixels) and per-column photo weight
    (0 where the photo's lips are closed, 1 where they part by 5% of the mouth width or more); None if closed."""
    width = src.width
    if width < 2.0 or src.gaps.max() < 0.02 * width:
        return None
    up_table, lo_table = src.curve_tables()
    v_up, v_lo = _interp(u, up_table), _interp(u, lo_table)
    weight = _smoothstep((v_lo - v_up) / width, 0.02, 0.05)
    return v_up, v_lo, weight


def _blend_photo(colour: np.ndarray, photo: np.ndarray, src: _Chains,
                 cols: tuple[np.ndarray, np.ndarray, np.ndarray], u: np.ndarray, depth: np.ndarray,
                 rise: np.ndarray, gap: np.ndarray, width: float, photo_col: np.ndarray,
                 shut: np.ndarray | None = None) -> np.ndarray:
    """Draw the photo's own interior over ``colour``: its upper half hanging from the upper lip, its
    lower half rising from the lower lip, each at the photo's own size; paint shows in between. Where
    the target's gap ``[h, w]`` is narrower than the photo's, each half is cut at the gap's middle (the
    lips cover the rest, nothing is squeezed).

    ``shut [h, w]`` (lips closing over the photo's open mouth, 1 once shut): the lips either side of the gap
    (the margin) are then drawn from up to :data:`SHUT_INSET` of the photo's mouth width further inside the
    photo's lips, so shut lips meet lip to lip: the photo's inner lip edge carries the blurred edges of its
    teeth (a laughing photo), which between closed lips read as a sliver of teeth, an open mouth to a face
    tracker. (Tried: widening the margin by the inset, with or without tapering the inset to 0 at the margin's
    end: a darker double line under the upper lip, read as open again on the laughing mother, 0.02-0.04.)"""
    origin, e, n, s_width = src.origin, src.e, src.n, src.width
    v_up_s, v_lo_s, _ = cols
    k = np.float32(s_width / width)  # source pixels per target pixel
    half = 0.5 * np.maximum(v_lo_s - v_up_s, 0.0) / k  # half the photo's opening, in target pixels
    cut = np.minimum(half, 0.5 * gap)
    ramp = np.minimum(np.maximum(0.15 * half, 0.6), np.maximum(0.5 * cut, 0.3))
    half = cut
    w_up = np.clip((half - np.maximum(depth, 0.0)) / ramp + 0.5, 0, 1)
    w_lo = np.clip((half - np.maximum(rise, 0.0)) / ramp + 0.5, 0, 1)
    base = (np.float32(origin[0]) + u * np.float32(s_width * e[0]),
            np.float32(origin[1]) + u * np.float32(s_width * e[1]))
    out = colour
    # signed: above the upper lip's inner edge (the margin) the photo's own upper lip, likewise below
    inset = 0.0 if shut is None else shut * np.float32(max(1.0, SHUT_INSET * s_width))  # source pixels
    for weight, v_s in ((w_up, v_up_s + depth * k - inset), (w_lo, v_lo_s - rise * k + inset)):
        weight = weight * photo_col
        if not weight.any():
            continue
        mx = (base[0] + v_s * np.float32(n[0])).astype(np.float32)
        my = (base[1] + v_s * np.float32(n[1])).astype(np.float32)
        pix = cv2.remap(photo, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        out = out + weight[..., None] * (pix.astype(np.float32) * np.float32(1 / 255) - out)
    return out


def eye_closure(target: np.ndarray, source: np.ndarray) -> list[float]:
    """Per eye (right, left): 0 as open as in the portrait, 1 fully closed."""
    out = []
    for (upper, lower), source_gap in zip(EYES, _SOURCES.get(source)[1], strict=True):
        g_s = max(source_gap, 1e-6)
        g_t = float(chain_gaps(target, upper, lower).mean())
        out.append(float(np.clip(1.0 - g_t / g_s, 0.0, 1.0)))
    return out


def paint_eyelids(frame: np.ndarray, target: np.ndarray, source: np.ndarray) -> None:
    """Draw a soft lash line along eyelids that close (``frame`` in place; points as in paint_mouth)."""
    for (upper, lower), closure in zip(EYES, eye_closure(target, source), strict=True):
        strength = float(_smoothstep(closure, 0.4, 0.95)) * 0.6
        if strength <= 0.0:
            continue
        up, lo = target[list(upper)], target[list(lower)]
        width = float(np.linalg.norm(up[-1] - up[0]))
        line = 0.65 * up + 0.35 * lo  # the closed lid's edge, just below the upper chain
        box = _box(line, 4, frame.shape)
        if box is None:
            continue
        x0, y0, x1, y1 = box
        mask_f = _soft_line((y1 - y0, x1 - x0), line - [x0, y0], max(1, int(round(0.035 * width))),
                            max(0.4, 0.02 * width))
        alpha = (strength * mask_f)[..., None]
        patch = frame[y0:y1, x0:x1].astype(np.float64) / 255.0
        frame[y0:y1, x0:x1] = np.clip((patch * (1 - alpha) + LASH * alpha) * 255.0 + 0.5, 0, 255).astype(np.uint8)

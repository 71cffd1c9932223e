"""What a geometric warp cannot produce: the mouth interior and closed eyelids (issue 3, item 4).

A warp only moves pixels that exist. When the lips part further than in the portrait, the inner-lip
polygon of the target has no source content (the warp would stretch the lip line), so it is painted
here: a dark cavity shaded deeper toward the middle, a tongue hint at the bottom of a wide opening,
an upper-teeth band hugging the upper lip (shadowed under the lip, darker toward the corners, with
faint gaps between the incisors) and a weaker lower-teeth band. Everything is parametrised in the
mouth's own frame (corner-to-corner axis ``u`` in [0, 1], distance ``v`` across it), so it follows
any head roll and works at any resolution. Its opacity ramps from 0 (lips no further apart than in the
portrait, so rendering the portrait's own coefficients stays an exact identity) to 1 once the gap has
grown by ``full_at`` of the mouth width.

On a blink the warp already draws the lid skin over the eye (``warp.py``); here a soft lash line is
drawn along the closed lid. No paper: the papers render with PIRenderer or a diffusion decoder, which
learn these regions; this is the training-free default renderer's stand-in (DESIGN.md).
"""

from __future__ import annotations

import cv2
import numpy as np

from talkinghead.render.mesh import EYES, MOUTH_LOWER, MOUTH_UPPER

CAVITY_EDGE = np.array([118.0, 46.0, 48.0]) / 255.0
CAVITY_DEEP = np.array([38.0, 11.0, 13.0]) / 255.0
TONGUE = np.array([150.0, 62.0, 66.0]) / 255.0
TEETH = np.array([236.0, 230.0, 216.0]) / 255.0
LASH = np.array([38.0, 28.0, 28.0]) / 255.0
INCISOR_GAPS = (0.5, 0.41, 0.59, 0.33, 0.67, 0.26, 0.74)


def _smoothstep(x: np.ndarray | float, lo: float, hi: float) -> np.ndarray:
    t = np.clip((np.asarray(x, dtype=np.float64) - lo) / max(hi - lo, 1e-9), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


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


def mouth_opacity(target: np.ndarray, source: np.ndarray, full_at: float) -> float:
    """0 while the lips are no further apart than in the portrait, 1 once ``full_at`` widths further."""
    up = target[list(MOUTH_UPPER)]
    width = float(np.linalg.norm(up[-1] - up[0]))
    extra = chain_gaps(target, MOUTH_UPPER, MOUTH_LOWER) - chain_gaps(source, MOUTH_UPPER, MOUTH_LOWER)
    return float(_smoothstep(extra.max() / max(width, 1e-6), 0.0, full_at))


def paint_mouth(frame: np.ndarray, target: np.ndarray, source: np.ndarray, full_at: float = 0.06) -> None:
    """Paint the mouth interior into ``frame [H, W, 3] uint8`` in place.

    ``target``/``source``: face vertices ``[468, 2]`` in the frame's pixel coordinates (target: this
    frame's face; source: the portrait's own fitted face).
    """
    opacity = mouth_opacity(target, source, full_at)
    if opacity <= 0.0:
        return
    up, lo = target[list(MOUTH_UPPER)], target[list(MOUTH_LOWER)]
    origin, e, n, width = _frame(up, lo)
    if width < 2.0:
        return
    h, w = frame.shape[:2]
    poly = np.concatenate([up, lo[::-1]])
    x0, y0 = np.floor(poly.min(0)).astype(int) - 2
    x1, y1 = np.ceil(poly.max(0)).astype(int) + 3
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 <= x0 or y1 <= y0:
        return
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float64)
    rel_x, rel_y = xs - origin[0], ys - origin[1]
    u = (rel_x * e[0] + rel_y * e[1]) / width
    v = rel_x * n[0] + rel_y * n[1]
    # lip curves in the mouth frame (u monotone along each chain)
    def curve(chain: np.ndarray) -> np.ndarray:
        cu = np.maximum.accumulate(((chain - origin) @ e) / width)
        cv_ = (chain - origin) @ n
        return np.interp(u, cu, cv_)

    v_up, v_lo = curve(up), curve(lo)
    gap = np.maximum(v_lo - v_up, 1e-3)
    edge = max(0.7, 0.012 * width)  # soft edge (pixels)
    inside = np.clip((v - v_up) / edge + 0.5, 0, 1) * np.clip((v_lo - v) / edge + 0.5, 0, 1)
    inside *= (u > 0) & (u < 1)
    if not inside.any():
        return
    t = np.clip((v - v_up) / gap, 0.0, 1.0)  # 0 at the upper lip, 1 at the lower lip
    side = np.abs(2.0 * u - 1.0)  # 0 mid-mouth, 1 at the corners
    centre = 1.0 - side**2
    # cavity, darkest in the middle and toward the back
    deep = (np.sin(np.pi * np.clip(t * 1.15, 0.0, 1.0)) * (0.35 + 0.65 * centre))[..., None]
    colour = CAVITY_EDGE * (1.0 - deep) + CAVITY_DEEP * deep
    # tongue hint at the bottom of a wide opening
    tongue = _smoothstep(t, 0.55, 0.95) * centre * _smoothstep(gap / width, 0.12, 0.35) * 0.6
    colour = colour * (1 - tongue[..., None]) + TONGUE * (0.75 * tongue[..., None])
    # upper teeth: a band under the upper lip, shadowed at its top, fading toward the corners
    depth = v - v_up
    teeth_h = np.minimum(0.13 * width * (1.0 - 0.5 * side**2), 0.6 * gap)
    teeth = np.clip((teeth_h - depth) / edge + 0.5, 0, 1) * (1.0 - _smoothstep(side, 0.55, 0.85))
    shade = (1.0 - 0.45 * side**2) * (0.72 + 0.28 * _smoothstep(depth / np.maximum(teeth_h, 1e-3), 0.0, 0.35))
    shade *= 1.0 - 0.12 * _smoothstep(depth / np.maximum(teeth_h, 1e-3), 0.6, 1.0)
    gaps = np.zeros_like(u)
    for g in INCISOR_GAPS:
        gaps = np.maximum(gaps, np.exp(-(((u - g) * width) / max(0.5, 0.007 * width)) ** 2))
    shade *= 1.0 - 0.22 * gaps
    teeth_colour = TEETH[None, None, :] * shade[..., None]
    colour = colour * (1 - teeth[..., None]) + teeth_colour * teeth[..., None]
    # lower teeth: a thinner, dimmer band above the lower lip
    low_h = np.minimum(0.07 * width, 0.28 * gap)
    low = np.clip((low_h - (v_lo - v)) / edge + 0.5, 0, 1) * (1.0 - _smoothstep(side, 0.3, 0.6)) * 0.55
    colour = colour * (1 - low[..., None]) + (TEETH * 0.7)[None, None, :] * low[..., None]
    alpha = (opacity * inside)[..., None]
    patch = frame[y0:y1, x0:x1].astype(np.float64) / 255.0
    frame[y0:y1, x0:x1] = np.clip((patch * (1 - alpha) + colour * alpha) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def eye_closure(target: np.ndarray, source: np.ndarray) -> list[float]:
    """Per eye (right, left): 0 as open as in the portrait, 1 fully closed."""
    out = []
    for upper, lower in EYES:
        g_s = max(float(chain_gaps(source, upper, lower).mean()), 1e-6)
        g_t = float(chain_gaps(target, upper, lower).mean())
        out.append(float(np.clip(1.0 - g_t / g_s, 0.0, 1.0)))
    return out


def paint_eyelids(frame: np.ndarray, target: np.ndarray, source: np.ndarray) -> None:
    """Draw a soft lash line along eyelids that close (``frame`` in place; points as in paint_mouth)."""
    h, w = frame.shape[:2]
    for (upper, lower), closure in zip(EYES, eye_closure(target, source), strict=True):
        strength = float(_smoothstep(closure, 0.4, 0.95)) * 0.6
        if strength <= 0.0:
            continue
        up, lo = target[list(upper)], target[list(lower)]
        width = float(np.linalg.norm(up[-1] - up[0]))
        line = 0.65 * up + 0.35 * lo  # the closed lid's edge, just below the upper chain
        x0, y0 = np.floor(line.min(0)).astype(int) - 4
        x1, y1 = np.ceil(line.max(0)).astype(int) + 5
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        if x1 <= x0 or y1 <= y0:
            continue
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        pts = np.round((line - [x0, y0]) * 16).astype(np.int32)
        thick = max(1, int(round(0.035 * width)))
        cv2.polylines(mask, [pts], False, (255,), thickness=thick, lineType=cv2.LINE_AA, shift=4)
        sigma = max(0.4, 0.02 * width)
        mask_f = cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (0, 0), sigma)
        alpha = (strength * mask_f)[..., None]
        patch = frame[y0:y1, x0:x1].astype(np.float64) / 255.0
        frame[y0:y1, x0:x1] = np.clip((patch * (1 - alpha) + LASH * alpha) * 255.0 + 0.5, 0, 255).astype(np.uint8)

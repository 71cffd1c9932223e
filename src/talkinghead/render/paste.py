"""Paste-back for renderers that generate a whole face crop (FD2Talk's UNet, EMO, DICE-Talk).

A diffusion renderer regenerates every pixel of its square crop, background and hair included, at its small
working size, so pasting the whole crop back blurs everything around the face (a flag, a collar, the hair). Here
the generated crop replaces the photo only inside a face region, faded over a soft edge; the rest of the photo
stays as it was. The region is given in crop pixels:

- :func:`hull_region`: the convex hull of points (e.g. the face oval of the portrait and of the frame, so a
  dropped chin or a turned head stays inside), widened by ``margin`` of the crop side;
- :func:`box_region`: an axis-aligned box (EMO's face-region box, Fig. 7 of its paper, where the model was told to
  keep the face).

Both are feathered by a Gaussian of ``feather`` times the crop side. :func:`paste` multiplies the region with the
crop's own feathered square edge and blends; without a region it pastes the whole crop (the previous behaviour).
No paper: the papers evaluate on their crops and leave paste-back out.
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np

from talkinghead.errors import TalkingHeadError

#: Which part of a generated crop goes back into the photo: only the face, or the whole crop.
PasteRegion = Literal["face", "crop"]


def _feathered(mask: np.ndarray, feather: float) -> np.ndarray:
    """A hard ``mask [S, S]`` in [0, 1] softened by a Gaussian of ``feather`` times the side (float32)."""
    sigma = max(float(feather) * mask.shape[0] / 2.0, 1e-3)
    return cv2.GaussianBlur(mask.astype(np.float32), (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)


def hull_region(points: np.ndarray, side: int, margin: float = 0.06, feather: float = 0.06) -> np.ndarray:
    """Region ``[side, side]`` float32 in [0, 1]: the convex hull of ``points [N, 2]`` (crop pixels) and everything
    within ``margin`` times the side of it, then feathered."""
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    if len(pts) < 3 or not np.isfinite(pts).all():
        raise TalkingHeadError("A face region needs at least three finite points.")
    hull = cv2.convexHull(np.round(pts * 16).astype(np.int32))
    outside = np.full((side, side), 255, np.uint8)
    cv2.fillConvexPoly(outside, hull, (0,), lineType=cv2.LINE_8, shift=4)
    distance = cv2.distanceTransform(outside, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)   # to the hull, pixels
    return _feathered(np.clip(margin * side - distance + 1.0, 0.0, 1.0), feather)


def widen_box(box: np.ndarray, scale: float) -> np.ndarray:
    """``box (x0, y0, x1, y1)`` scaled by ``scale`` about its centre."""
    box = np.asarray(box, np.float64)
    centre, half = (box[:2] + box[2:]) / 2, (box[2:] - box[:2]) / 2 * scale
    return np.concatenate([centre - half, centre + half])


def box_region(box: np.ndarray, side: int, feather: float = 0.06) -> np.ndarray:
    """Region ``[side, side]`` float32 in [0, 1]: the box ``(x0, y0, x1, y1)`` (crop pixels), feathered outside it
    (the box itself is fully inside: it is widened by ``feather`` times the side, two of the blur's sigmas)."""
    x0, y0, x1, y1 = (float(v) for v in np.asarray(box, np.float64).reshape(4))
    if not np.isfinite([x0, y0, x1, y1]).all() or x1 <= x0 or y1 <= y0:
        raise TalkingHeadError("A face region box must be finite with x1 > x0 and y1 > y0.")
    pad = float(feather) * side
    x0, y0, x1, y1 = x0 - pad, y0 - pad, x1 + pad, y1 + pad
    xs = np.arange(side, dtype=np.float32) + 0.5
    inside_x = np.clip(np.minimum(xs - x0, x1 - xs) + 0.5, 0, 1)
    inside_y = np.clip(np.minimum(xs - y0, y1 - xs) + 0.5, 0, 1)
    return _feathered(np.outer(inside_y, inside_x), feather)


def paste(photo: np.ndarray, crop: np.ndarray, box: np.ndarray, feather: float,
          region: np.ndarray | None = None) -> np.ndarray:
    """``crop [S, S, 3]`` placed on ``photo [H, W, 3]`` at ``box = (x, y, side)`` (image px, pixel-centre origin of the
    crop's first pixel), faded over ``feather`` of the side at its edges; ``region [S, S]`` in [0, 1] (crop pixels):
    only that part of the crop replaces the photo (None: the whole crop)."""
    s = crop.shape[0]
    x, y, side = (float(v) for v in box)
    k = side / s                                                                   # image px per crop px
    m = np.array([[k, 0.0, x], [0.0, k, y]])
    h, w = photo.shape[:2]
    warped = cv2.warpAffine(crop, m, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)
    ramp = np.clip(np.minimum(np.arange(s), s - 1 - np.arange(s)) / max(feather * s, 1e-6), 0, 1).astype(np.float32)
    ramp = ramp * ramp * (3 - 2 * ramp)
    weight = np.outer(ramp, ramp).astype(np.float32)
    if region is not None:
        if region.shape != (s, s):
            raise TalkingHeadError(f"The paste region must be [{s}, {s}], got {list(region.shape)}.")
        weight = weight * np.clip(region, 0.0, 1.0).astype(np.float32)
    mask = cv2.warpAffine(weight, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)[..., None]
    return np.round(warped * mask + photo * (1.0 - mask)).astype(np.uint8)

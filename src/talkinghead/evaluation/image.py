"""Frame-quality metrics: PSNR, SSIM and CPBD over video frames.

- SSIM: Wang, Bovik, Sheikh & Simoncelli 2004, "Image quality assessment: from error visibility to
  structural similarity", Eq. 13, with the paper's settings (11x11 Gaussian window of sigma 1.5,
  K1 = 0.01, K2 = 0.03). Used by DreamTalk (Sec. 4.1, Tab. 1, ref. [88]) and FD2Talk (Sec. 4.2, Tab. 1).
  Colour frames: the mean of the per-channel SSIM maps, as scikit-image's ``channel_axis`` does.
- PSNR: ``10 log10(L^2 / MSE)`` per frame (FD2Talk Tab. 1).
- CPBD: Narvekar & Karam 2011, "A no-reference image blur metric based on the cumulative probability
  of blur detection (CPBD)", IEEE TIP 20(9), Eqs. 1-6; used by DreamTalk (Sec. 4.1, ref. [48]).

Video metrics are the mean of per-frame values (how the papers report them). Frames are ``uint8``
(data range 255) or floats in [0, 1] (data range 1) unless ``data_range`` is given.

Deviations, said plainly:
- SSIM and PSNR are written here and tested for parity with ``skimage.metrics`` (SSIM with
  ``gaussian_weights=True, sigma=1.5, use_sample_covariance=False``).
- CPBD has no reference implementation on this machine (the authors' MATLAB code and the ``cpbd``
  PyPI port are absent), so it is written from the paper and tested on behaviour only (a value in
  [0, 1] that falls monotonically as a sharp image is blurred, and hand-computed edges). The edge map
  is scikit-image's Canny with MATLAB ``edge(...,'canny')``'s defaults imitated (sigma sqrt(2), high
  threshold where 70% of the pixels lie below in a 64-bin histogram of the normalised gradient, low
  threshold 0.4 of it); MATLAB's Canny differs in details (its derivative-of-Gaussian filters), so
  absolute values may differ slightly from published numbers.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import ndimage

from talkinghead.errors import TalkingHeadError
from talkinghead.evaluation._checks import same_shape

SSIM_SIGMA = 1.5
SSIM_TRUNCATE = 3.5  # 2 * int(3.5 * 1.5 + 0.5) + 1 = 11 taps, Wang et al.'s 11x11 window
SSIM_K1 = 0.01
SSIM_K2 = 0.03

CPBD_BLOCK = 64  # Sec. III: 64x64 blocks
CPBD_EDGE_FRACTION = 0.002  # a block is an edge block if more than 0.2% of its pixels are edges
CPBD_BETA = 3.6  # Eq. 2
CPBD_P_JNB = 0.63  # Eq. 6: the probability of blur detection at the just-noticeable blur


def _video(frames: Any, name: str) -> np.ndarray:
    """``[H, W]``, ``[H, W, C]`` or ``[T, H, W, C]`` -> ``[T, H, W, C]`` (original dtype kept)."""
    array = np.asarray(frames)
    if array.dtype == object or not (np.issubdtype(array.dtype, np.integer) or
                                     np.issubdtype(array.dtype, np.floating)):
        raise TalkingHeadError(f"{name} must be an array of image frames.")
    if array.ndim == 2:
        array = array[None, :, :, None]
    elif array.ndim == 3:
        array = array[None]
    elif array.ndim != 4:
        raise TalkingHeadError(f"{name} must be [H, W], [H, W, C] or [T, H, W, C] frames, got shape "
                               f"{list(array.shape)}.")
    if array.size == 0:
        raise TalkingHeadError(f"{name} holds no pixels.")
    if np.issubdtype(array.dtype, np.floating) and not np.all(np.isfinite(array)):
        raise TalkingHeadError(f"{name} contains NaN or infinite values.")
    return array


def _data_range(a: np.ndarray, b: np.ndarray, data_range: float | None) -> float:
    if data_range is not None:
        if data_range <= 0:
            raise TalkingHeadError("data_range must be positive.")
        return float(data_range)
    if a.dtype == np.uint8 and b.dtype == np.uint8:
        return 255.0
    if a.min() >= 0 and b.min() >= 0 and a.max() <= 1 and b.max() <= 1:
        return 1.0
    raise TalkingHeadError("Frames are neither uint8 nor floats in [0, 1]; pass data_range explicitly.")


def _pair(pred: Any, target: Any, data_range: float | None) -> tuple[np.ndarray, np.ndarray, float]:
    a = _video(pred, "The generated frames")
    b = _video(target, "The reference frames")
    same_shape(a, b, "The generated frames", "the reference frames")
    rng = _data_range(a, b, data_range)
    return a.astype(np.float64), b.astype(np.float64), rng


def psnr_per_frame(pred: Any, target: Any, data_range: float | None = None) -> np.ndarray:
    """Peak signal-to-noise ratio of each frame, in dB.

    ``pred, target: [T, H, W, C]`` (or one ``[H, W, C]``/``[H, W]`` image) -> ``[T]``;
    ``PSNR = 10 log10(L^2 / MSE)`` with ``L`` the data range; ``inf`` for identical frames.
    """
    a, b, rng = _pair(pred, target, data_range)
    mse = np.mean((a - b) ** 2, axis=(1, 2, 3))
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(rng**2 / mse)


def psnr(pred: Any, target: Any, data_range: float | None = None) -> float:
    """Mean per-frame PSNR of a video (FD2Talk Tab. 1). ``pred, target: [T, H, W, C]``."""
    return float(np.mean(psnr_per_frame(pred, target, data_range)))


def ssim_per_frame(pred: Any, target: Any, data_range: float | None = None) -> np.ndarray:
    """Mean SSIM of each frame (Wang et al. 2004, Eq. 13; Gaussian window, sigma 1.5).

    ``pred, target: [T, H, W, C]`` -> ``[T]``. Local statistics come from Gaussian filtering
    (population covariances); the map is averaged over pixels whose window lies inside the frame
    (a border of 5 pixels is left out) and over channels. Frames must be at least 11x11.
    """
    a, b, rng = _pair(pred, target, data_range)
    pad = (2 * int(SSIM_TRUNCATE * SSIM_SIGMA + 0.5) + 1) // 2
    if min(a.shape[1], a.shape[2]) < 2 * pad + 1:
        raise TalkingHeadError(f"SSIM needs frames of at least {2 * pad + 1}x{2 * pad + 1} pixels.")
    c1 = (SSIM_K1 * rng) ** 2
    c2 = (SSIM_K2 * rng) ** 2

    def blur(x: np.ndarray) -> np.ndarray:  # filter H and W only: [T, H, W, C]
        return ndimage.gaussian_filter(x, sigma=(0, SSIM_SIGMA, SSIM_SIGMA, 0), truncate=SSIM_TRUNCATE,
                                       mode="reflect")

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    # Eq. 13: SSIM = (2 mu_x mu_y + C1)(2 sigma_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(sigma_x^2 + sigma_y^2 + C2))
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    inner = ssim_map[:, pad:-pad, pad:-pad, :]
    return inner.mean(axis=(1, 2, 3))


def ssim(pred: Any, target: Any, data_range: float | None = None) -> float:
    """Mean per-frame SSIM of a video (DreamTalk Tab. 1, FD2Talk Tab. 1). ``[T, H, W, C]`` each."""
    return float(np.mean(ssim_per_frame(pred, target, data_range)))


# ----------------------------------------------------------------------------------------------- CPBD


def _gray255(frame: np.ndarray, data_range: float) -> np.ndarray:
    """``[H, W, C]`` -> luminance ``[H, W]`` in 0..255 (MATLAB rgb2gray weights)."""
    x = frame.astype(np.float64) * (255.0 / data_range)
    if x.shape[-1] == 1:
        return x[..., 0]
    if x.shape[-1] in (3, 4):
        return x[..., 0] * 0.2989 + x[..., 1] * 0.5870 + x[..., 2] * 0.1140
    raise TalkingHeadError(f"CPBD expects 1, 3 or 4 channels, got {x.shape[-1]}.")


def _canny(gray: np.ndarray) -> np.ndarray:
    """Edge map imitating MATLAB ``edge(I, 'canny')`` (used by the authors' CPBD code).

    sigma = sqrt(2); the gradient magnitude is normalised by its maximum and binned in 64 bins; the
    high threshold is the first bin edge below which more than 70% of the pixels lie, the low
    threshold 0.4 of it (MATLAB's defaults). Smoothing and Sobel gradients are the same as
    scikit-image's Canny (reflect mode), so the thresholds apply to its magnitude exactly.
    """
    from skimage.feature import canny

    sigma = math.sqrt(2.0)
    smooth = ndimage.gaussian_filter(gray, sigma, mode="reflect", truncate=4.0)
    magnitude = np.hypot(ndimage.sobel(smooth, axis=0), ndimage.sobel(smooth, axis=1))
    peak = float(magnitude.max())
    if peak <= 0:
        return np.zeros(gray.shape, dtype=bool)
    counts, _ = np.histogram(magnitude / peak, bins=64, range=(0.0, 1.0))
    high_bin = int(np.argmax(np.cumsum(counts) > 0.7 * magnitude.size)) + 1
    high = high_bin / 64.0 * peak
    return np.asarray(canny(gray, sigma=sigma, low_threshold=0.4 * high, high_threshold=high,
                            mode="reflect"), dtype=bool)


def _extremum_positions(gray: np.ndarray) -> tuple[np.ndarray, ...]:
    """For every pixel, the column of the nearest local extremum along its row on each side.

    Returns ``(right_max, left_min, right_min, left_max)``, each ``[H, W]`` of column indices:
    ``right_max[r, c]`` is the first column ``k >= c`` where the row stops rising, and so on.
    """
    h, w = gray.shape
    right_max = np.empty((h, w), dtype=np.int64)
    right_min = np.empty((h, w), dtype=np.int64)
    left_max = np.empty((h, w), dtype=np.int64)
    left_min = np.empty((h, w), dtype=np.int64)
    right_max[:, -1] = right_min[:, -1] = w - 1
    for c in range(w - 2, -1, -1):
        stops_rising = gray[:, c + 1] <= gray[:, c]
        stops_falling = gray[:, c + 1] >= gray[:, c]
        right_max[:, c] = np.where(stops_rising, c, right_max[:, c + 1])
        right_min[:, c] = np.where(stops_falling, c, right_min[:, c + 1])
    left_max[:, 0] = left_min[:, 0] = 0
    for c in range(1, w):
        stops_falling_left = gray[:, c - 1] >= gray[:, c]
        stops_rising_left = gray[:, c - 1] <= gray[:, c]
        left_min[:, c] = np.where(stops_falling_left, c, left_min[:, c - 1])
        left_max[:, c] = np.where(stops_rising_left, c, left_max[:, c - 1])
    return right_max, left_min, right_min, left_max


def _edge_widths(gray: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Marziliano et al.'s edge width at every vertical edge pixel (0 elsewhere), ``[H, W]``.

    Only edge pixels whose gradient direction rounds to 0 or 180 degrees (a horizontal gradient)
    are measured, as in the authors' code; the width is the distance between the local extrema on
    either side along the row (Sec. III, step 2).
    """
    gy, gx = np.gradient(gray)
    angle = np.degrees(np.arctan2(gy, gx))
    angle_q = 45.0 * np.round(angle / 45.0)
    right_max, left_min, right_min, left_max = _extremum_positions(gray)
    cols = np.arange(gray.shape[1])[None, :]
    rising = (angle_q == 0) & (gx != 0)  # intensity grows to the right: min on the left, max on the right
    falling = np.abs(angle_q) == 180  # intensity falls to the right: max on the left, min on the right
    width = np.zeros(gray.shape)
    width = np.where(rising, (right_max - cols) + (cols - left_min), width)
    width = np.where(falling, (right_min - cols) + (cols - left_max), width)
    interior = np.zeros_like(edges)
    interior[1:-1, 1:-1] = True
    measured = edges & interior & (rising | falling)
    return np.where(measured, width, -1.0)  # -1 marks "not a measured edge pixel"


def cpbd_image(image: Any, data_range: float | None = None, block_size: int = CPBD_BLOCK) -> float:
    """CPBD sharpness of one image (Narvekar & Karam 2011, Sec. III), in [0, 1]; higher is sharper.

    ``image: [H, W]`` or ``[H, W, C]``. Steps: Canny edges; 64x64 blocks with more than 0.2% edge
    pixels are edge blocks; in them each vertical edge pixel's width ``w`` gives
    ``P_BLUR = 1 - exp(-|w / w_JNB|^beta)`` (Eq. 2, beta = 3.6) with ``w_JNB = 5`` when the block
    contrast is at most 50 and 3 otherwise; CPBD is ``P(P_BLUR <= P_JNB = 0.63)`` (Eq. 6), the
    fraction of those edges whose blur is below the just-noticeable level. NaN if no edge is measured.
    """
    frames = _video(image, "The image")
    if frames.shape[0] != 1:
        raise TalkingHeadError("cpbd_image takes one image; use cpbd for a video.")
    if block_size < 8:
        raise TalkingHeadError("The CPBD block size must be at least 8 pixels.")
    rng = _data_range(frames, frames, data_range)
    gray = _gray255(frames[0], rng)
    h, w = gray.shape
    if h < block_size or w < block_size:
        raise TalkingHeadError(f"CPBD needs images of at least {block_size}x{block_size} pixels.")
    edges = _canny(gray)
    widths = _edge_widths(gray, edges)
    probabilities = []
    threshold = CPBD_EDGE_FRACTION * block_size * block_size
    for r in range(0, h - block_size + 1, block_size):
        for c in range(0, w - block_size + 1, block_size):
            block = (slice(r, r + block_size), slice(c, c + block_size))
            if edges[block].sum() <= threshold:
                continue
            contrast = gray[block].max() - gray[block].min()
            w_jnb = 5.0 if contrast <= 50 else 3.0
            block_widths = widths[block][widths[block] >= 0]
            probabilities.append(1.0 - np.exp(-np.abs(block_widths / w_jnb) ** CPBD_BETA))  # Eq. 2
    if not probabilities:
        return float("nan")
    p_blur = np.concatenate(probabilities)
    if p_blur.size == 0:
        return float("nan")
    return float(np.mean(p_blur <= CPBD_P_JNB))  # Eq. 6


def cpbd(frames: Any, data_range: float | None = None, block_size: int = CPBD_BLOCK) -> float:
    """Mean CPBD of a video's frames (DreamTalk Tab. 1). ``frames: [T, H, W, C]`` or one image.

    Frames with no measurable edge (NaN) are left out; NaN if no frame has one.
    """
    video = _video(frames, "The frames")
    rng = _data_range(video, video, data_range)
    values = np.array([cpbd_image(f, rng, block_size) for f in video])
    if np.all(np.isnan(values)):
        return float("nan")
    return float(np.nanmean(values))


__all__ = ["cpbd", "cpbd_image", "psnr", "psnr_per_frame", "ssim", "ssim_per_frame"]

"""PSNR/SSIM parity with scikit-image; CPBD on hand-computed edges and on blurred portraits."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import filters
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from talkinghead.errors import TalkingHeadError
from talkinghead.evaluation.image import cpbd, cpbd_image, psnr, psnr_per_frame, ssim, ssim_per_frame


def _noisy_video(image: np.ndarray, levels: tuple[int, ...], seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    frames = [np.clip(image.astype(int) + rng.integers(-lv, lv + 1, image.shape), 0, 255) for lv in levels]
    return np.stack(frames).astype(np.uint8)


def _sk_ssim(a: np.ndarray, b: np.ndarray, data_range: float, channel_axis: int | None = -1) -> float:
    return float(structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                       data_range=data_range, channel_axis=channel_axis))


def test_ssim_and_psnr_match_scikit_image_per_frame(portrait: np.ndarray) -> None:
    ref = portrait[::4, ::4]  # [128, 128, 3]
    video = _noisy_video(ref, (4, 16, 48))
    target = np.stack([ref] * 3)
    ours_ssim = ssim_per_frame(video, target)
    ours_psnr = psnr_per_frame(video, target)
    for t in range(3):
        assert ours_ssim[t] == pytest.approx(_sk_ssim(video[t], ref, 255), abs=1e-10)
        assert ours_psnr[t] == pytest.approx(peak_signal_noise_ratio(ref, video[t], data_range=255), abs=1e-10)
    assert ssim(video, target) == pytest.approx(ours_ssim.mean())
    assert psnr(video, target) == pytest.approx(ours_psnr.mean())
    # More noise, lower quality.
    assert ours_ssim[0] > ours_ssim[1] > ours_ssim[2]
    assert ours_psnr[0] > ours_psnr[1] > ours_psnr[2]


def test_ssim_parity_grayscale_and_float(portrait: np.ndarray) -> None:
    gray = portrait[::4, ::4].mean(axis=-1) / 255.0  # float in [0, 1], [H, W]
    rng = np.random.default_rng(1)
    noisy = np.clip(gray + rng.normal(0, 0.05, gray.shape), 0, 1)
    assert ssim(noisy, gray) == pytest.approx(_sk_ssim(noisy, gray, 1.0, None), abs=1e-10)
    assert psnr(noisy, gray) == pytest.approx(peak_signal_noise_ratio(gray, noisy, data_range=1.0), abs=1e-10)
    assert ssim(gray, gray) == pytest.approx(1.0)
    assert psnr(gray, gray) == float("inf")


def test_frame_metric_input_errors(portrait: np.ndarray) -> None:
    with pytest.raises(TalkingHeadError, match="same shape"):
        ssim(portrait, portrait[:-1])
    with pytest.raises(TalkingHeadError, match="data_range"):
        psnr(portrait.astype(float), portrait.astype(float))  # floats beyond [0, 1]
    with pytest.raises(TalkingHeadError, match="at least 11x11"):
        ssim(portrait[:8, :8], portrait[:8, :8])
    with pytest.raises(TalkingHeadError):
        ssim(np.zeros((2, 2, 2, 2, 2)), np.zeros((2, 2, 2, 2, 2)))


def _ramp_image(width: int, low: float, high: float, size: int = 64) -> np.ndarray:
    """A vertical edge: ``low`` left of column 30, a linear ramp of ``width`` pixels, then ``high``."""
    row = np.full(size, low, dtype=np.float64)
    row[30 : 30 + width + 1] = np.linspace(low, high, width + 1)
    row[30 + width + 1 :] = high
    return np.tile(row, (size, 1)).astype(np.uint8)


def test_cpbd_hand_computed_edges() -> None:
    # A ramp of width w has Marziliano width w; P_BLUR = 1 - exp(-(w / w_JNB)^3.6) (Eq. 2).
    # Width 1, contrast 100 (w_JNB = 3): P = 0.019 <= 0.63, every edge is sharp -> CPBD 1.
    assert cpbd_image(_ramp_image(1, 50, 150)) == 1.0
    # Width 4, contrast 100 (w_JNB = 3): P = 1 - exp(-(4/3)^3.6) = 0.94 > 0.63 -> CPBD 0.
    assert cpbd_image(_ramp_image(4, 50, 150)) == 0.0
    # Width 4, contrast 40 (w_JNB = 5): P = 1 - exp(-(4/5)^3.6) = 0.36 <= 0.63 -> CPBD 1.
    assert cpbd_image(_ramp_image(4, 100, 140)) == 1.0
    # A flat image has no edge to judge.
    assert np.isnan(cpbd_image(np.full((64, 64), 90, np.uint8)))


def test_cpbd_falls_as_a_portrait_is_blurred(portrait: np.ndarray) -> None:
    image = portrait[::2, ::2]  # 256 x 256
    values = [cpbd_image(image)]
    for sigma in (0.5, 1.0, 2.0, 3.0):
        blurred = (filters.gaussian(image, sigma=sigma, channel_axis=-1) * 255).round().astype(np.uint8)
        values.append(cpbd_image(blurred))
    assert all(0.0 <= v <= 1.0 for v in values)
    assert values[0] > values[1] > values[2]
    assert all(a >= b for a, b in zip(values, values[1:], strict=False))
    assert values[0] > 0.1
    video = np.stack([image, image])
    assert cpbd(video) == pytest.approx(values[0])
    with pytest.raises(TalkingHeadError, match="at least 64x64"):
        cpbd_image(image[:32, :32])

"""Appearance augmentation of frame pairs, for frame generators trained on few identities.

The papers' frame generators learn from thousands of people (FD2Talk: VFHQ; EMO: 250 h of video); the shipped
``cpu`` models learn from the video dataset's ten training identities, and their autoencoders reconstruct those
ten and blur faces they never saw (``scripts/probe_frame_autoencoder.py``: about 34 dB on trained identities, under
20 dB on Grace Hopper). Changing each pair's appearance at random makes every step show a face slightly unlike any
in the set, so the networks must carry the appearance through the latent instead of remembering it.

:func:`augment_pairs` draws one transform per batch item and applies it to every array given (a target frame and
its reference frame stay consistent, as the reference-conditioned decoder needs):

- colour (always): brightness and contrast factors, a saturation factor (grey at 0, with probability ``grayscale``
  fully grey), a hue rotation about the grey axis (YIQ) and a gamma;
- geometry (``geometric=True``; for reconstruction losses only, since it changes the head pose, the face box and
  the mouth region that motion-conditioned models are told): a horizontal flip with probability one half and a zoom
  by ``1 +- zoom`` about a centre shifted by up to ``zoom / 2`` of the frame, edges reflected.

Not in the papers (their data is diverse enough); a deviation of the ``cpu`` models, off by default (``--augment``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: RGB -> YIQ (NTSC); hue rotates the (I, Q) plane about the luma axis
_YIQ = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], np.float64)
_RGB = np.linalg.inv(_YIQ)


@dataclass(frozen=True)
class AppearanceConfig:
    """Ranges of :func:`augment_pairs`: factors are drawn in ``1 +- range``, the hue rotation in ``+- hue`` turns,
    the gamma as ``exp(+- gamma)``; ``grayscale`` is a probability."""

    brightness: float = 0.25
    contrast: float = 0.3
    saturation: float = 0.6
    grayscale: float = 0.15
    hue: float = 0.08
    gamma: float = 0.3
    zoom: float = 0.12


def colour_matrix(saturation: float, hue_turns: float) -> np.ndarray:
    """The ``[3, 3]`` RGB matrix scaling saturation and rotating hue by ``hue_turns`` of a full turn (row vectors:
    ``rgb @ M.T``)."""
    a = 2 * np.pi * hue_turns
    rot = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]]) * np.array([1, saturation,
                                                                                                  saturation])[:, None]
    return _RGB @ rot @ _YIQ


def _zoom(image: np.ndarray, scale: float, cx: float, cy: float, flip: bool) -> np.ndarray:
    import cv2

    size = image.shape[1]
    sx = -scale if flip else scale
    # output pixel p maps from input (p - c_out) / scale + c_in; cv2 wants the forward map input -> output
    c = (size - 1) / 2
    matrix = np.array([[sx, 0, c - sx * (c + cx)], [0, scale, c - scale * (c + cy)]], np.float64)
    return cv2.warpAffine(image, matrix, (size, image.shape[0]), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REFLECT_101)


def augment_pairs(rng: np.random.Generator, arrays: list[np.ndarray], config: AppearanceConfig | None = None,
                  geometric: bool = False) -> list[np.ndarray]:
    """Each of ``arrays`` (``[B, H, W, 3]`` uint8, same ``B``) with item ``b`` of every array changed by the same
    random transform ``b`` (see the module docstring). Returns new uint8 arrays of the same shapes."""
    cfg = config or AppearanceConfig()
    batch = arrays[0].shape[0]
    if any(a.shape[0] != batch or a.ndim != 4 or a.shape[-1] != 3 for a in arrays):
        raise ValueError("augment_pairs takes [B, H, W, 3] arrays of one batch size")
    out = [np.empty_like(a) for a in arrays]
    for b in range(batch):
        bright = rng.uniform(1 - cfg.brightness, 1 + cfg.brightness)
        contrast = rng.uniform(1 - cfg.contrast, 1 + cfg.contrast)
        sat = 0.0 if rng.random() < cfg.grayscale else rng.uniform(1 - cfg.saturation, 1 + cfg.saturation)
        matrix = colour_matrix(sat, rng.uniform(-cfg.hue, cfg.hue)).T
        gamma = float(np.exp(rng.uniform(-cfg.gamma, cfg.gamma)))
        if geometric:
            flip = bool(rng.random() < 0.5)
            scale = rng.uniform(1 - cfg.zoom, 1 + cfg.zoom)
            shift = rng.uniform(-cfg.zoom / 2, cfg.zoom / 2, 2) * arrays[0].shape[2]
        for a, o in zip(arrays, out, strict=True):
            image = a[b]
            if geometric:
                image = _zoom(image, scale, float(shift[0]), float(shift[1]), flip)
            x = image.astype(np.float64) / 255.0
            x = x @ matrix
            mean = x.mean()
            x = (x - mean) * contrast + mean
            x = np.clip(x * bright, 0.0, 1.0) ** gamma
            o[b] = np.round(x * 255.0).astype(np.uint8)
    return out

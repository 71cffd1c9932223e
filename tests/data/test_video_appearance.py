"""Appearance augmentation of frame pairs (talkinghead.data.video.appearance): one transform per batch item shared
by all arrays, colour-only mode keeping the geometry, the geometric mode flipping and zooming, the hue/saturation
matrix against its definition."""

from __future__ import annotations

import numpy as np
import pytest

from talkinghead.data.video.appearance import AppearanceConfig, augment_pairs, colour_matrix


def _frames(rng: np.random.Generator, n: int = 6, size: int = 32) -> np.ndarray:
    """Smooth random colour frames with a bright square in the left half (a geometry marker)."""
    base = rng.uniform(40, 160, (n, 1, 1, 3)) + np.linspace(0, 40, size)[None, None, :, None]
    frames = np.repeat(base, size, axis=1)
    frames[:, 8:16, 4:12] = 250
    return np.clip(frames, 0, 255).astype(np.uint8)


def test_every_array_gets_the_same_transform_per_item_and_items_differ() -> None:
    frames = _frames(np.random.default_rng(0))
    a, b = augment_pairs(np.random.default_rng(1), [frames, frames.copy()], geometric=True)
    np.testing.assert_array_equal(a, b)                           # target and reference changed alike
    assert a.shape == frames.shape and a.dtype == np.uint8
    again, = augment_pairs(np.random.default_rng(1), [frames], geometric=True)
    np.testing.assert_array_equal(again, a)                       # reproducible from the generator
    changes = np.abs(a.astype(int) - frames).mean(axis=(1, 2, 3))
    assert (changes > 1).all() and np.ptp(changes) > 1            # every item changed, and not alike


def test_colour_only_keeps_the_geometry_and_geometric_mode_flips() -> None:
    frames = _frames(np.random.default_rng(0), n=40)
    colour, = augment_pairs(np.random.default_rng(2), [frames])
    bright = colour.astype(int).sum(-1)
    # the square stays the brightest part of the frame, where it was
    assert (bright[:, 8:16, 4:12].mean(axis=(1, 2)) > bright[:, 20:, 20:].mean(axis=(1, 2)) + 60).all()
    moved, = augment_pairs(np.random.default_rng(2), [frames], AppearanceConfig(zoom=0.0), geometric=True)
    left = moved[:, 8:16, 4:12].astype(int).sum(-1).mean(axis=(1, 2))
    right = moved[:, 8:16, 20:28].astype(int).sum(-1).mean(axis=(1, 2))
    flipped = right > left
    assert 0.2 < flipped.mean() < 0.8                             # about half the items mirrored


def test_the_colour_matrix_keeps_greys_rotates_hue_and_greys_out_at_zero_saturation() -> None:
    grey = np.array([0.4, 0.4, 0.4])
    np.testing.assert_allclose(grey @ colour_matrix(1.7, 0.2).T, grey, atol=1e-9)
    np.testing.assert_allclose(colour_matrix(1.0, 0.0), np.eye(3), atol=1e-9)
    np.testing.assert_allclose(colour_matrix(1.0, 1.0), np.eye(3), atol=1e-9)      # a full turn
    red = np.array([0.8, 0.1, 0.1])
    out = red @ colour_matrix(0.0, 0.0).T
    assert np.ptp(out) == pytest.approx(0.0, abs=1e-9)
    assert out[0] == pytest.approx(0.299 * 0.8 + 0.587 * 0.1 + 0.114 * 0.1)         # the luma
    half = colour_matrix(1.0, 0.5)
    np.testing.assert_allclose(half @ half, np.eye(3), atol=1e-9)                  # two half turns


def test_arrays_of_different_batch_sizes_are_refused() -> None:
    frames = _frames(np.random.default_rng(0))
    with pytest.raises(ValueError, match="one batch size"):
        augment_pairs(np.random.default_rng(0), [frames, frames[:2]])

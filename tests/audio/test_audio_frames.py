from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from talkinghead.audio.frames import frame_count, frame_times, frame_windows, to_frames
from talkinghead.errors import TalkingHeadError


def reference_count(n: int, fps: float, sr: int = 16_000) -> int:
    exact = Fraction(n) * Fraction(fps).limit_denominator(1000) / sr
    return max(1, math.floor(exact + Fraction(1, 2))) if n else 0


@pytest.mark.parametrize("fps", [25.0, 30.0, 29.97, 24.0, 50.0, 12.5])
def test_frame_count_matches_exact_rounding_for_arbitrary_lengths(fps: float) -> None:
    rng = np.random.default_rng(int(fps * 100))
    for n in [0, 1, 319, 320, 321, 639, 640, 641, 16_000, 16_001, *rng.integers(1, 10**7, 200).tolist()]:
        assert frame_count(n, fps) == reference_count(n, fps), (n, fps)


def test_frame_count_exact_durations_and_halves() -> None:
    assert frame_count(duration=2.0, fps=25) == 50
    assert frame_count(duration=0.1, fps=25) == 3  # 2.5 frames: halves round up
    assert frame_count(duration=0.02, fps=25) == 1  # 0.5 frame
    assert frame_count(duration=0.019, fps=25) == 1  # non-empty audio has a frame
    assert frame_count(duration=0.0, fps=25) == 0
    assert frame_count(duration=3600.0, fps=25) == 90_000
    assert frame_count(32_000, 25) == frame_count(duration=2.0, fps=25)
    with pytest.raises(TalkingHeadError):
        frame_count(100, fps=0)
    with pytest.raises(TalkingHeadError):
        frame_count(duration=-1.0)
    with pytest.raises(TalkingHeadError):
        frame_count(10, duration=1.0)


def test_frame_windows_repeat_edges_and_centre_is_the_frame() -> None:
    x = np.arange(12, dtype=np.float32).reshape(6, 2)
    w = frame_windows(x, 2)
    assert w.shape == (6, 5, 2)
    np.testing.assert_array_equal(w[:, 2], x)
    np.testing.assert_array_equal(w[0, 0], x[0])
    np.testing.assert_array_equal(w[5, 4], x[5])
    np.testing.assert_array_equal(w[3, 0], x[1])
    assert frame_windows(x, 5).reshape(6, -1).shape == (6, 22)  # DreamTalk's 11-frame window


def test_to_frames_mean_is_the_interval_average() -> None:
    # A 100 Hz ramp averaged over 25 fps frames equals the ramp at each frame centre.
    times = np.arange(0, 400) / 100.0
    ramp = times[:, None] * 2.0
    out = to_frames(ramp, times, 100, 25.0, mode="mean")
    np.testing.assert_allclose(out[1:-1, 0], 2 * frame_times(100)[1:-1], atol=1e-4)
    lin = to_frames(ramp, times, 100, 25.0, mode="linear")
    np.testing.assert_allclose(lin[:, 0], 2 * frame_times(100), atol=1e-5)
    const = to_frames(np.full((49, 3), 7.0), np.arange(49) * 0.02 + 0.0125, 25, 25.0)
    np.testing.assert_allclose(const, 7.0, atol=1e-5)

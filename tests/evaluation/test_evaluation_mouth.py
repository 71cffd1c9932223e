"""Mouth measured on videos (issue 12, item 6): synthetic tracks with a known gap, envelope, correlation,
lag, range and pause gap give exactly those numbers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from talkinghead.errors import TalkingHeadError
from talkinghead.evaluation.mouth import (
    gap_distribution,
    lagged_correlation,
    lip_gap,
    measure_track,
    pause_mask,
    speech_envelope,
)

FPS = 25.0


def _faces(gaps: np.ndarray, eye_distance: float = 80.0) -> np.ndarray:
    """Landmark tracks ``[T, 478, 3]`` whose inner-lip gap over eye-corner distance is ``gaps``, with the
    face moving and turning in the image plane (the measure must not care)."""
    t = len(gaps)
    rng = np.random.default_rng(0)
    pts = np.tile(rng.uniform(0, 200, (1, 478, 3)), (t, 1, 1))
    angle = np.linspace(0.0, 0.5, t)
    dx, dy = np.cos(angle), np.sin(angle)  # the eye line; the mouth opens across it
    centre = np.stack([100 + 10 * np.sin(angle * 7), 120 + np.arange(t)], axis=1)
    half = 0.5 * eye_distance
    pts[:, 33, :2] = centre + half * np.stack([-dx, -dy], 1)
    pts[:, 263, :2] = centre + half * np.stack([dx, dy], 1)
    mouth = centre + 60 * np.stack([-dy, dx], 1)
    opening = (gaps * eye_distance)[:, None]
    pts[:, 13, :2] = mouth - 0.5 * opening * np.stack([-dy, dx], 1)
    pts[:, 14, :2] = mouth + 0.5 * opening * np.stack([-dy, dx], 1)
    return pts


def _smooth_noise(t: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = np.convolve(rng.normal(size=t + 8), np.ones(5) / 5, mode="valid")[:t]
    return x - x.mean()


def test_lip_gap_is_the_inner_lip_distance_over_the_eye_corners() -> None:
    gaps = np.linspace(0.0, 0.2, 30)
    pts = _faces(gaps)
    np.testing.assert_allclose(lip_gap(pts), gaps, atol=1e-9)
    np.testing.assert_allclose(lip_gap(pts[3]), gaps[3], atol=1e-9)  # one face
    pts[5] = np.nan
    assert math.isnan(lip_gap(pts)[5])
    with pytest.raises(TalkingHeadError):
        lip_gap(np.zeros((4, 100, 3)))


def test_envelope_is_the_rms_of_each_40_ms_frame() -> None:
    sr, t = 16_000, 20
    amp = np.repeat(np.linspace(0.1, 0.8, t), sr // 25)
    samples = amp * np.sin(2 * np.pi * 200 * np.arange(len(amp)) / sr)  # 8 periods per frame
    env = speech_envelope(samples, sr, t, FPS, smooth=False)
    np.testing.assert_allclose(env, np.linspace(0.1, 0.8, t) / math.sqrt(2), rtol=1e-6)
    smooth = speech_envelope(samples, sr, t, FPS)
    np.testing.assert_allclose(smooth[1:-1], env[1:-1], rtol=1e-6)  # linear stays linear under [1, 2, 1]/4
    # Frames past the end of the audio are silent.
    assert speech_envelope(samples, sr, t + 3, FPS, smooth=False)[-1] == 0.0


def test_known_correlation_and_lag() -> None:
    t = 400
    env = _smooth_noise(t, 1)
    other = _smooth_noise(t, 2)
    other -= env * (other @ env) / (env @ env)  # orthogonal to the envelope, zero mean
    want = 0.6
    mix = want * env / np.linalg.norm(env) + math.sqrt(1 - want**2) * other / np.linalg.norm(other)
    gap = 0.05 + 0.02 * mix
    corr = lagged_correlation(gap, env)
    assert sorted(corr) == list(range(-3, 4))
    assert corr[0] == pytest.approx(want, abs=1e-9)
    # The mouth following the sound by two frames: best lag +2 with r = 1.
    late = np.r_[np.full(2, 0.05), 0.05 + 0.3 * env[:-2]]
    m = measure_track(late, env + 1.0, FPS)
    assert m.best_lag == 2 and m.r_best == pytest.approx(1.0, abs=1e-9) and m.r_lag0 < 0.9
    early = np.r_[0.05 + 0.3 * env[1:], 0.05]
    assert measure_track(early, env + 1.0, FPS).best_lag == -1
    with pytest.raises(TalkingHeadError):
        lagged_correlation(gap, env[:-1])


def test_range_and_distribution() -> None:
    gap = np.linspace(0.0, 0.1, 101)
    d = gap_distribution(np.r_[gap, np.nan])
    assert d.p5 == pytest.approx(0.005) and d.p95 == pytest.approx(0.095)
    assert d.range_5_95 == pytest.approx(0.09) and d.max == pytest.approx(0.1) and d.median == pytest.approx(0.05)
    assert d.found == pytest.approx(101 / 102) and d.frames == 102
    assert math.isnan(gap_distribution(np.full(4, np.nan)).p5)


def test_pauses_of_at_least_0_3_s_and_their_gap() -> None:
    # 1 s speech, 0.4 s silence (a pause), 1 s speech, 0.2 s silence (too short), 1 s speech.
    loud, quiet = np.full(25, 1.0), np.full(10, 0.02)
    env = np.r_[loud, quiet, loud, quiet[:5], loud]
    mask = pause_mask(env, FPS)
    assert mask.sum() == 10 and mask[25:35].all()
    assert pause_mask(env, FPS, min_seconds=0.2).sum() == 15
    gap = np.where(env > 0.5, 0.12, 0.01)
    gap[25:35] = np.r_[0.05, np.full(9, 0.005)]  # closing within the first frame of the pause
    m = measure_track(gap, env, FPS)
    assert m.pause_frames == 10 and m.pause_gap_median == pytest.approx(0.005)
    assert m.speech_gap_median == pytest.approx(0.12)
    no_pause = measure_track(np.full(50, 0.1), np.ones(50), FPS)
    assert no_pause.pause_frames == 0 and math.isnan(no_pause.pause_gap_median)


def test_end_to_end_from_landmark_tracks() -> None:
    """Landmarks whose lips open with a known envelope: r = 1 at lag 0, range and pause gap as built."""
    t = 200
    env = np.abs(_smooth_noise(t, 3)) + 0.2
    env[80:100] = 0.0  # a 0.8 s pause
    gap = 0.15 * env / env.max()
    m = measure_track(lip_gap(_faces(gap)), env, FPS)
    assert m.r_lag0 == pytest.approx(1.0, abs=1e-9) and m.best_lag == 0 and m.r_best_within_1 == m.r_lag0
    assert m.gap.range_5_95 == pytest.approx(np.percentile(gap, 95) - np.percentile(gap, 5), abs=1e-9)
    assert m.pause_frames == 20 and m.pause_gap_median == pytest.approx(0.0, abs=1e-12)
    d = m.to_dict()
    assert d["correlations"]["0"] == m.r_lag0 and d["gap"]["range_5_95"] == m.gap.range_5_95


def test_video_gaps_read_the_output_video(tmp_path) -> None:  # noqa: ANN001
    import skimage.data

    from talkinghead.evaluation.mouth import image_gap, video_gaps
    from talkinghead.io.video import write_video

    face = skimage.data.astronaut()
    frames = np.stack([face] * 3 + [np.full_like(face, 127)] + [face])
    path = write_video(tmp_path / "v.mp4", frames, 25.0)
    gaps, fps = video_gaps(path)
    assert fps == pytest.approx(25.0) and len(gaps) == 5 and math.isnan(gaps[3])
    np.testing.assert_allclose(gaps[[0, 1, 2, 4]], image_gap(face), atol=0.01)

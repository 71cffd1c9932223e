"""Mouth motion measured on a video, independently of any model (issue 12, item 6).

Everything here looks only at pixels and sound: MediaPipe's face mesh on each decoded frame of a video
and the RMS of the speech that goes with it. No motion channel of a generator is read, so the numbers
say what a viewer sees.

- :func:`lip_gap`: the inner-lip gap, the distance of face-mesh points 13 (upper inner lip) and 14
  (lower inner lip) divided by the outer eye-corner distance (points 33 and 263), per frame, so it
  does not depend on image size or distance to the camera.
- :func:`speech_envelope`: RMS of the audio over each video frame's interval ``[t/fps, (t+1)/fps)``,
  lightly smoothed with a ``[1, 2, 1] / 4`` kernel.
- :func:`lagged_correlation`: Pearson ``r`` of gap and envelope with the gap shifted by ``-3..3``
  frames (a positive lag: the mouth follows the sound by that many frames).
- :func:`pause_mask`: frames in runs of at least 0.3 s where the envelope is below a fraction of the
  speech level (the envelope's 95th percentile).
- :func:`measure_track`: all of it for one gap track and one envelope (:class:`MouthMeasurement`);
  :func:`gap_distribution` for videos without speech (the real-mouth reference).
- :func:`video_gaps`: the gap track of a video file (``nan`` where no face is found).

Bad inputs raise :class:`~talkinghead.errors.TalkingHeadError` with one sentence.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from talkinghead.errors import TalkingHeadError
from talkinghead.face.topology import EYE_OUTER_L, EYE_OUTER_R, LIP_INNER_LOW, LIP_INNER_UP

MAX_LAG = 3
PAUSE_SECONDS = 0.3
PAUSE_LEVEL = 0.1  # a pause: envelope below 10% (-20 dB) of the speech level
SPEECH_PERCENTILE = 95.0


def lip_gap(points: np.ndarray) -> np.ndarray:
    """Inner-lip gap over outer eye-corner distance: ``points [T, >=468, 2 or 3]`` (or ``[N, D]`` for
    one face) -> ``[T]`` (or a 0-d array). Frames whose points are ``nan`` give ``nan``."""
    p = np.asarray(points, dtype=np.float64)
    single = p.ndim == 2
    if single:
        p = p[None]
    if p.ndim != 3 or p.shape[1] <= EYE_OUTER_L or p.shape[2] < 2:
        raise TalkingHeadError(f"lip_gap needs face-mesh points [T, 468+, 2+], got shape {np.shape(points)}.")
    xy = p[..., :2]
    gap = np.linalg.norm(xy[:, LIP_INNER_UP] - xy[:, LIP_INNER_LOW], axis=-1)
    eyes = np.linalg.norm(xy[:, EYE_OUTER_R] - xy[:, EYE_OUTER_L], axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(eyes > 0, gap / eyes, np.nan)
    return out[0] if single else out


def speech_envelope(samples: np.ndarray, sample_rate: int, num_frames: int, fps: float = 25.0,
                    smooth: bool = True) -> np.ndarray:
    """RMS of ``samples [N]`` over each frame interval ``[t/fps, (t+1)/fps)``, ``t < num_frames``
    (missing samples count as silence), smoothed with ``[1, 2, 1] / 4`` (edges held). ``[T]``."""
    x = np.asarray(samples, dtype=np.float64)
    if x.ndim != 1:
        raise TalkingHeadError(f"speech_envelope needs mono samples [N], got shape {x.shape}.")
    if sample_rate <= 0 or not (math.isfinite(fps) and fps > 0):
        raise TalkingHeadError("speech_envelope needs a positive sample rate and frame rate.")
    if num_frames <= 0:
        return np.zeros(0)
    edges = np.round(np.arange(num_frames + 1) * sample_rate / fps).astype(np.int64)
    squared = np.concatenate([[0.0], np.cumsum(x * x)])
    lo, hi = np.minimum(edges[:-1], len(x)), np.minimum(edges[1:], len(x))
    width = np.maximum(edges[1:] - edges[:-1], 1)
    env = np.sqrt((squared[hi] - squared[lo]) / width)
    if smooth and num_frames > 1:
        padded = np.r_[env[0], env, env[-1]]
        env = 0.25 * padded[:-2] + 0.5 * padded[1:-1] + 0.25 * padded[2:]
    return env


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson ``r`` over the entries where both are finite; ``nan`` with fewer than 3 or no spread."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3:
        return math.nan
    a, b = a[ok] - a[ok].mean(), b[ok] - b[ok].mean()
    denom = math.sqrt(float((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / denom) if denom > 0 else math.nan


def lagged_correlation(gap: np.ndarray, envelope: np.ndarray, max_lag: int = MAX_LAG) -> dict[int, float]:
    """``{lag: r}`` for ``lag`` in ``-max_lag..max_lag``: ``r`` of ``gap[t + lag]`` with ``envelope[t]``,
    so a positive lag means the mouth moves ``lag`` frames after the sound."""
    gap, envelope = np.asarray(gap, dtype=np.float64), np.asarray(envelope, dtype=np.float64)
    if gap.shape != envelope.shape or gap.ndim != 1:
        raise TalkingHeadError(f"Gap and envelope must be tracks of one length, got {gap.shape} and {envelope.shape}.")
    t = len(gap)
    out = {}
    for lag in range(-max_lag, max_lag + 1):
        lo, hi = max(0, -lag), min(t, t - lag)
        out[lag] = pearson(gap[lo + lag:hi + lag], envelope[lo:hi]) if hi > lo else math.nan
    return out


def pause_mask(envelope: np.ndarray, fps: float = 25.0, level: float = PAUSE_LEVEL,
               min_seconds: float = PAUSE_SECONDS) -> np.ndarray:
    """Frames in pauses: runs of at least ``min_seconds`` where the envelope is below ``level`` times
    the speech level (the envelope's 95th percentile). ``[T]`` bool."""
    env = np.asarray(envelope, dtype=np.float64)
    if env.ndim != 1:
        raise TalkingHeadError(f"pause_mask needs an envelope [T], got shape {env.shape}.")
    if len(env) == 0:
        return np.zeros(0, dtype=bool)
    quiet = env < level * np.percentile(env, SPEECH_PERCENTILE)
    min_len = max(1, int(math.ceil(min_seconds * fps - 1e-9)))
    mask = np.zeros_like(quiet)
    start = None
    for i, q in enumerate(np.r_[quiet, False]):
        if q and start is None:
            start = i
        elif not q and start is not None:
            if i - start >= min_len:
                mask[start:i] = True
            start = None
    return mask


@dataclass(frozen=True)
class GapDistribution:
    """Percentiles of a gap track (finite frames only) and the share of frames with a face."""

    frames: int
    found: float
    p5: float
    median: float
    p95: float
    max: float

    @property
    def range_5_95(self) -> float:
        return self.p95 - self.p5

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "range_5_95": self.range_5_95}


def gap_distribution(gap: np.ndarray) -> GapDistribution:
    g = np.asarray(gap, dtype=np.float64)
    ok = g[np.isfinite(g)]
    if len(ok) == 0:
        return GapDistribution(len(g), 0.0, math.nan, math.nan, math.nan, math.nan)
    p5, med, p95 = np.percentile(ok, [5, 50, 95])
    return GapDistribution(len(g), len(ok) / max(len(g), 1), float(p5), float(med), float(p95), float(ok.max()))


@dataclass(frozen=True)
class MouthMeasurement:
    """One video with its speech: correlation and lag, gap distribution, pauses."""

    r_lag0: float
    best_lag: int
    r_best: float
    r_best_within_1: float  # the best r over lags -1..1
    correlations: dict[int, float]
    gap: GapDistribution
    speech_gap_median: float  # median gap where the envelope is above the pause level
    pause_frames: int
    pause_gap_median: float  # nan without pauses

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["gap"] = self.gap.to_dict()
        out["correlations"] = {str(k): v for k, v in self.correlations.items()}
        return out


def _nanmedian(x: np.ndarray) -> float:
    x = x[np.isfinite(x)]
    return float(np.median(x)) if len(x) else math.nan


def measure_track(gap: np.ndarray, envelope: np.ndarray, fps: float = 25.0, max_lag: int = MAX_LAG,
                  level: float = PAUSE_LEVEL, min_pause: float = PAUSE_SECONDS) -> MouthMeasurement:
    """Measure a gap track ``[T]`` against its speech envelope ``[T]`` (see the module docstring)."""
    gap, envelope = np.asarray(gap, dtype=np.float64), np.asarray(envelope, dtype=np.float64)
    corr = lagged_correlation(gap, envelope, max_lag)
    finite = {k: v for k, v in corr.items() if math.isfinite(v)}
    best = max(finite, key=lambda k: (finite[k], -abs(k))) if finite else 0
    near = [v for k, v in finite.items() if abs(k) <= 1]
    pauses = pause_mask(envelope, fps, level, min_pause)
    speaking = envelope >= level * np.percentile(envelope, SPEECH_PERCENTILE) if len(envelope) else pauses
    return MouthMeasurement(
        r_lag0=corr.get(0, math.nan), best_lag=int(best), r_best=finite.get(best, math.nan),
        r_best_within_1=max(near) if near else math.nan, correlations=corr, gap=gap_distribution(gap),
        speech_gap_median=_nanmedian(gap[speaking]), pause_frames=int(pauses.sum()),
        pause_gap_median=_nanmedian(gap[pauses]))


def video_gaps(path: str | Path, face_index: int | None = None) -> tuple[np.ndarray, float]:
    """The inner-lip gap of every decoded frame of a video (``nan`` where no face is found) and its
    frame rate; landmarks are MediaPipe's, raw (no smoothing)."""
    from talkinghead.face.landmarks import follow_face
    from talkinghead.io.video import iter_frames, probe_video

    info = probe_video(path)
    gaps = [lip_gap(p) if p is not None else math.nan for p in follow_face(iter_frames(path), face_index)]
    return np.array(gaps, dtype=np.float64), info.fps


def image_gap(image: np.ndarray, face_index: int | None = None) -> float:
    """The inner-lip gap of a portrait (RGB uint8)."""
    from talkinghead.face.landmarks import detect_landmarks

    return float(lip_gap(detect_landmarks(image, face_index).points))

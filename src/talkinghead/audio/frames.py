"""Video-frame alignment of audio: the one definition of the frame count, windows around frames.

Every audio feature in talkinghead is aligned to video frames. Frame ``i`` of a clip at ``fps``
covers the time interval ``[i / fps, (i + 1) / fps)`` and is represented by its centre
``(i + 0.5) / fps``. The number of frames of ``N`` samples at ``sample_rate`` is

    T = round(N * fps / sample_rate)      (halves round up; at least 1 frame for non-empty audio)

(:func:`frame_count`), so a video of ``T`` frames muxed with the audio ends within half a frame
of the audio's end. Nothing else in the project computes a frame count from a duration.

Windows: DreamTalk (App. C, denoising network) reads an audio window ``A_w = [a_i]_{i=l-w}^{l+w}``
of 11 frames (w = 5) around each motion frame; EMO (Sec. 3.2, "Audio Layers") concatenates the
features of the ``m`` neighbours on each side, ``A^(f) = (+){A^(f-m), ..., A^(f+m)}``.
:func:`frame_windows` builds both, repeating the edge frames beyond the clip's ends.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from talkinghead.errors import TalkingHeadError

DEFAULT_FPS = 25.0
SAMPLE_RATE = 16_000


def _check_fps(fps: float) -> None:
    if not (isinstance(fps, int | float) and math.isfinite(fps) and fps > 0):
        raise TalkingHeadError(f"The frame rate must be a positive number, got {fps!r}.")


def frame_count(
    num_samples: int | None = None,
    fps: float = DEFAULT_FPS,
    sample_rate: int = SAMPLE_RATE,
    *,
    duration: float | None = None,
) -> int:
    """Number of video frames ``T`` for ``num_samples`` samples (or ``duration`` seconds).

    ``T = round(N * fps / sample_rate)`` with halves rounding up, computed in exact rational
    arithmetic so that e.g. 2.0 s at 25 fps is 50 frames, never 49 by a float error; any
    non-empty audio has at least one frame.
    """
    _check_fps(fps)
    if (num_samples is None) == (duration is None):
        raise TalkingHeadError("frame_count needs exactly one of num_samples or duration.")
    if duration is not None:
        if not math.isfinite(duration) or duration < 0:
            raise TalkingHeadError(f"A duration must be a non-negative number of seconds, got {duration!r}.")
        frames = Fraction(duration) * Fraction(fps)
        positive = duration > 0
    else:
        assert num_samples is not None
        if num_samples < 0:
            raise TalkingHeadError(f"A sample count cannot be negative, got {num_samples}.")
        frames = Fraction(int(num_samples)) * Fraction(fps) / Fraction(int(sample_rate))
        positive = num_samples > 0
    # Fraction(float) is exact, so 0.1 s is 0.1000000000000000055...: snap to the nearest
    # millionth of a frame before rounding so decimal durations behave as written.
    frames = frames.limit_denominator(1_000_000)
    t = math.floor(frames + Fraction(1, 2))
    return max(t, 1) if positive else 0


def frame_times(num_frames: int, fps: float = DEFAULT_FPS) -> np.ndarray:
    """Centre time (seconds) of each frame: ``(i + 0.5) / fps``. Returns ``[T]`` float64."""
    _check_fps(fps)
    return (np.arange(num_frames, dtype=np.float64) + 0.5) / fps


def frame_windows(features: np.ndarray, w: int) -> np.ndarray:
    """Windows of ``2w + 1`` frames around each frame, edges repeated.

    ``features: [T, D]`` -> ``[T, 2w + 1, D]`` where ``out[t, k] = features[clip(t - w + k)]``.
    Flatten the last two axes for EMO's concatenation (``[T, (2w + 1) * D]``).
    """
    if w < 0:
        raise TalkingHeadError(f"A window half-width must be >= 0, got {w}.")
    x = np.asarray(features)
    if x.ndim != 2 or x.shape[0] == 0:
        raise TalkingHeadError(f"frame_windows expects a non-empty [T, D] array, got shape {x.shape}.")
    idx = np.arange(x.shape[0])[:, None] + np.arange(-w, w + 1)[None, :]
    return x[np.clip(idx, 0, x.shape[0] - 1)]


def to_frames(
    values: np.ndarray,
    src_times: np.ndarray,
    num_frames: int,
    fps: float = DEFAULT_FPS,
    mode: str = "mean",
) -> np.ndarray:
    """Resample a feature track sampled at ``src_times`` to exactly ``num_frames`` video frames.

    ``values: [S, D]`` with ``src_times: [S]`` (increasing centre times, seconds) -> ``[T, D]``.

    ``mode="linear"``: linear interpolation at the frame centres (edges held).
    ``mode="mean"``: the average of the track over each frame interval ``[i/fps, (i+1)/fps)``,
    treating the track as piecewise constant around its samples (box filter, no aliasing when
    100 Hz analysis frames are brought to 25 fps); a frame shorter than one source step gets the
    local value.
    """
    _check_fps(fps)
    v = np.asarray(values, dtype=np.float64)
    if v.ndim == 1:
        v = v[:, None]
    t = np.asarray(src_times, dtype=np.float64)
    if v.shape[0] == 0 or v.shape[0] != t.shape[0]:
        raise TalkingHeadError(f"to_frames needs one time per source frame, got {v.shape[0]} and {t.shape[0]}.")
    if num_frames <= 0:
        return np.zeros((0, v.shape[1]), dtype=np.float32)
    if mode == "linear":
        centres = frame_times(num_frames, fps)
        out = np.stack([np.interp(centres, t, v[:, d]) for d in range(v.shape[1])], axis=1)
        return out.astype(np.float32)
    if mode != "mean":
        raise TalkingHeadError(f"Unknown resampling mode '{mode}'; use 'mean' or 'linear'.")
    # Cells: source sample s owns [b_s, b_{s+1}) with b at the midpoints between sample times.
    mids = (t[1:] + t[:-1]) / 2 if len(t) > 1 else np.zeros(0)
    lo = t[0] - (t[1] - t[0]) / 2 if len(t) > 1 else t[0] - 0.5 / fps
    hi = t[-1] + (t[-1] - t[-2]) / 2 if len(t) > 1 else t[0] + 0.5 / fps
    bounds = np.concatenate([[min(lo, 0.0)], mids, [max(hi, num_frames / fps)]])
    widths = np.diff(bounds)
    cum = np.concatenate([np.zeros((1, v.shape[1])), np.cumsum(v * widths[:, None], axis=0)])
    edges = np.arange(num_frames + 1, dtype=np.float64) / fps
    integral = np.stack([np.interp(edges, bounds, cum[:, d]) for d in range(v.shape[1])], axis=1)
    out = np.diff(integral, axis=0) * fps
    return out.astype(np.float32)

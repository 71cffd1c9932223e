"""Where Dimitra's recursive windows join, and how large the jump at a join is (Dimitra III-B.4, issue 13 item 3).

Long audio is generated window by window, each window conditioned on the frame just before it (III-B.4
"generating recursively"; :mod:`.generator`). :func:`recursive_windows` is the plan: windows of ``N`` frames at
``0, S, 2S, ...`` with the stride ``S = N - overlap``; when the stride does not land the last window on the last
frame, the last window is moved back to end there, so every window is a full ``N`` frames of real audio, the
length the models were trained on.

- ``overlap = 0`` is the paper's recursion: windows at ``0, N, 2N, ...``; the moved-back last window replaces the
  frames it overlaps. A join is a window's first frame.
- ``overlap = K > 0`` (the default of :class:`.generator.DimitraSampling`; an extension): each window after the
  first starts ``K`` (or more) frames before its predecessor ends; it is sampled as usual (conditioned on the frame
  before its start) and the shared frames are cross-faded from the predecessor's to its own
  (:func:`crossfade_weights`), so the difference between the two is spread over ``K`` frames instead of one.
  The joins (:func:`window_joins`) are then every frame of the transition, so that a seam spread thin is still
  measured where it is. Tried first and dropped: holding the shared frames fixed in every x0 prediction
  (replacement in-painting). With the ``cpu`` models it left the jump at the first in-painted frame as large as
  before (pose 3.95x the ordinary jump against 2.96x without overlap; 30 s real prompt, grace_hopper), because the
  models take little frame-to-frame context from the noisy input: efficient attention mixes only global summaries.

:func:`seam_jumps` measures the issue's "no visible seam in lips, expression or pose": the jump into each join
frame against the jumps between ordinary consecutive frames, per channel group. A seamless sequence has a ratio
near 1; a visible seam shows as a ratio well above 1 and a largest join jump above the ordinary frames' 95th
percentile.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from talkinghead.errors import TalkingHeadError
from talkinghead.evaluation.motion import JOIN_GROUPS
from talkinghead.sequence import MotionSequence

#: the channel groups :func:`seam_jumps` reports: the lip channels, the rest of the expression, the head pose
SEAM_GROUPS = JOIN_GROUPS


def recursive_windows(num_frames: int, window: int, overlap: int = 0) -> list[int]:
    """Start frames of the windows of ``window`` frames that cover ``num_frames`` frames: ``0, S, 2S, ...`` with
    ``S = window - overlap`` while a window would end before the last frame, then one ending on the last frame;
    a single window at 0 when ``num_frames <= window``."""
    if window < 1 or num_frames < 1:
        raise TalkingHeadError(f"Windows need at least one frame each, got {window} for {num_frames} frames.")
    if not 0 <= overlap < window:
        raise TalkingHeadError(f"The window overlap must be at least 0 and below the window ({window}), got {overlap}.")
    stride = window - overlap
    starts = [0]
    while starts[-1] + window < num_frames:
        starts.append(min(starts[-1] + stride, num_frames - window))
    return starts


def window_joins(num_frames: int, window: int, overlap: int = 0) -> list[int]:
    """The join frames of :func:`recursive_windows`, whose incoming jump crosses from one window to the next:
    each later window's start without overlap; with overlap, every frame from a later window's start to its
    predecessor's end (the cross-faded frames and the first frame of the window alone), each once."""
    starts = recursive_windows(num_frames, window, overlap)
    if overlap == 0:
        return starts[1:]
    joins: set[int] = set()
    for previous, start in zip(starts[:-1], starts[1:], strict=True):
        joins.update(range(start, min(previous + window, num_frames - 1) + 1))
    return sorted(joins)


def crossfade_weights(frames: int) -> np.ndarray:
    """``[frames]`` weights of the new window over the frames two windows share: ``i / (frames + 1)`` for
    ``i = 1..frames``, rising linearly from the predecessor (weight 0 before) to the new window (1 after)."""
    return (np.arange(1, frames + 1, dtype=np.float32) / np.float32(frames + 1))


def seam_jumps(motion: MotionSequence, window: int = 0, overlap: int = 0,
               joins: Sequence[int] | None = None) -> dict[str, dict[str, float]]:
    """The jumps at window joins against ordinary frame-to-frame jumps, per group of :data:`SEAM_GROUPS`.

    ``motion``: ``[T]`` frames (expression ``[T, E]`` in a layout with a ``mouth`` group, pose ``[T, 6]``); the
    joins are given (``joins``, frame indices) or those :func:`window_joins` plans for ``window`` and ``overlap``.
    A jump into frame ``i`` is ``||x_i - x_{i-1}||_2`` over the group's channels (raw units).

    Returns, per group: ``joins`` (how many), ``join_mean`` and ``join_max`` (the jumps into join frames),
    ``ordinary_mean`` and ``ordinary_p95`` (every other jump), and ``ratio = join_mean / ordinary_mean``
    (``nan`` without joins, or when the ordinary frames do not move).
    """
    from talkinghead.evaluation.motion import join_jumps

    if joins is None:
        joins = window_joins(len(motion), window, overlap)
    out = {}
    for name, (at, ordinary) in join_jumps(motion, joins).items():
        join_mean = float(at.mean()) if at.size else math.nan
        ordinary_mean = float(ordinary.mean()) if ordinary.size else math.nan
        out[name] = {"joins": float(at.size), "join_mean": join_mean,
                     "join_max": float(at.max()) if at.size else math.nan,
                     "ordinary_mean": ordinary_mean,
                     "ordinary_p95": float(np.percentile(ordinary, 95)) if ordinary.size else math.nan,
                     "ratio": join_mean / ordinary_mean if at.size and ordinary_mean > 0 else math.nan}
    return out

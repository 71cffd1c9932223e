"""Where Dimitra's recursive windows join, and how large the jump at a join is (Dimitra III-B.4, issue 13 item 3).

Long audio is generated window by window, each window conditioned on the frame just before it (III-B.4
"generating recursively"; :mod:`.generator`). :func:`recursive_windows` is the plan: windows of ``N`` frames at
``0, N, 2N, ...``; when ``N`` does not divide the length, the last window is moved back to end on the last frame
(it overlaps its predecessor and replaces the overlapped frames), so every window is a full ``N`` frames of real
audio, the length the models were trained on.

:func:`seam_jumps` measures the issue's "no visible seam in lips, expression or pose": the jump into each join
frame against the jumps between ordinary consecutive frames, per channel group. A seamless sequence has a ratio
near 1; a visible seam shows as a ratio well above 1 and a largest join jump above the ordinary frames' 95th
percentile.
"""

from __future__ import annotations

import math

import numpy as np

from talkinghead.errors import TalkingHeadError
from talkinghead.motion.dimitra.data import part_columns
from talkinghead.sequence import MotionSequence

#: the channel groups :func:`seam_jumps` reports: the lip channels, the rest of the expression, the head pose
SEAM_GROUPS = ("lips", "expression", "pose")


def recursive_windows(num_frames: int, window: int) -> list[int]:
    """Start frames of the windows that cover ``num_frames`` frames: ``0, N, 2N, ...`` and, when ``N`` does not
    divide ``num_frames``, a last one at ``num_frames - N``; a single window at 0 when ``num_frames <= N``."""
    if window < 1 or num_frames < 1:
        raise TalkingHeadError(f"Windows need at least one frame each, got {window} for {num_frames} frames.")
    count = math.ceil(num_frames / window)
    return [min(k * window, max(num_frames - window, 0)) for k in range(count)]


def seam_jumps(motion: MotionSequence, window: int) -> dict[str, dict[str, float]]:
    """The jumps at window joins against ordinary frame-to-frame jumps, per group of :data:`SEAM_GROUPS`.

    ``motion``: ``[T]`` frames (expression ``[T, E]`` in a layout with a ``mouth`` group, pose ``[T, 6]``), made in
    windows of ``window`` frames as :func:`recursive_windows` plans them; the joins are the windows' first frames
    after the first. A jump into frame ``i`` is ``||x_i - x_{i-1}||_2`` over the group's channels (raw units).

    Returns, per group: ``joins`` (how many), ``join_mean`` and ``join_max`` (the jumps into join frames),
    ``ordinary_mean`` and ``ordinary_p95`` (every other jump), and ``ratio = join_mean / ordinary_mean``
    (``nan`` without joins, or when the ordinary frames do not move).
    """
    length = len(motion)
    starts = recursive_windows(length, window)
    at_join = np.zeros(max(length - 1, 0), dtype=bool)           # at_join[i - 1]: the jump into frame i
    at_join[np.asarray(starts[1:], dtype=np.int64) - 1] = True
    groups = {"lips": motion.expression[:, list(part_columns(motion.layout, "lips"))],
              "expression": motion.expression[:, list(part_columns(motion.layout, "face"))],
              "pose": motion.pose}
    out = {}
    for name in SEAM_GROUPS:
        jumps = np.linalg.norm(np.diff(np.asarray(groups[name], np.float64), axis=0), axis=1)   # [T - 1]
        joins, ordinary = jumps[at_join], jumps[~at_join]
        join_mean = float(joins.mean()) if joins.size else math.nan
        ordinary_mean = float(ordinary.mean()) if ordinary.size else math.nan
        out[name] = {"joins": float(joins.size), "join_mean": join_mean,
                     "join_max": float(joins.max()) if joins.size else math.nan,
                     "ordinary_mean": ordinary_mean,
                     "ordinary_p95": float(np.percentile(ordinary, 95)) if ordinary.size else math.nan,
                     "ratio": join_mean / ordinary_mean if joins.size and ordinary_mean > 0 else math.nan}
    return out

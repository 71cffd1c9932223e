"""Bring a motion file onto the face model's channels and the portrait's pose (used by render and its CLI)."""

from __future__ import annotations

import numpy as np

from talkinghead.errors import TalkingHeadError
from talkinghead.motion.sequence import ChannelLayout, MotionSequence


def expression_for_layout(motion: MotionSequence, layout: ChannelLayout) -> np.ndarray:
    """``motion.expression`` re-ordered into ``layout``'s channels ``[T, E]`` (by name; missing ones are 0).

    Refuses a motion sharing no channel with ``layout`` (e.g. Deep3DFace coefficients, which the warp
    renderer cannot interpret).
    """
    if tuple(motion.layout.channels) == tuple(layout.channels):
        return motion.expression
    shared = [c for c in motion.layout.channels if c in layout.channels]
    if not shared:
        raise TalkingHeadError(
            f"The motion's channel layout '{motion.layout.name}' shares no channel with the face model's "
            f"'{layout.name}' layout, so it cannot be rendered.")
    out = np.zeros((len(motion), layout.size), dtype=np.float32)
    for name in shared:
        out[:, layout.channels.index(name)] = motion.channel(name)
    return out


def pose_for_portrait(motion_pose: np.ndarray, fitted_pose: np.ndarray, mode: str) -> np.ndarray:
    """Poses ``[T, 6]`` to render: ``absolute`` as stored, ``relative`` = portrait pose + change from frame 0."""
    if mode == "absolute":
        return motion_pose
    if mode == "relative":
        return fitted_pose[None, :] + (motion_pose - motion_pose[:1])
    raise TalkingHeadError(f"The pose mode must be 'absolute' or 'relative', got '{mode}'.")

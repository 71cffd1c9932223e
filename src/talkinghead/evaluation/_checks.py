"""Input checks shared by the metric modules: arrays of the right rank, finite, non-empty."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from talkinghead.errors import TalkingHeadError
from talkinghead.sequence import MotionSequence


def as_array(value: Any, name: str, ndims: tuple[int, ...], dtype: Any = np.float64) -> np.ndarray:
    """``value`` as a finite array whose rank is one of ``ndims``; else a TalkingHeadError."""
    try:
        array = np.asarray(value, dtype=dtype)
    except (TypeError, ValueError) as err:
        raise TalkingHeadError(f"{name} must be a numeric array.") from err
    if array.ndim not in ndims:
        wanted = " or ".join(f"{d}-D" for d in ndims)
        raise TalkingHeadError(f"{name} must be a {wanted} array, got shape {list(array.shape)}.")
    if array.size == 0:
        raise TalkingHeadError(f"{name} is empty.")
    if np.issubdtype(array.dtype, np.floating) and not np.all(np.isfinite(array)):
        raise TalkingHeadError(f"{name} contains NaN or infinite values.")
    return array


def same_shape(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    if a.shape != b.shape:
        raise TalkingHeadError(f"{name_a} and {name_b} must have the same shape, got {list(a.shape)} "
                               f"and {list(b.shape)}.")


def expression_of(motion: Any, name: str) -> np.ndarray:
    """The ``[T, E]`` expression of a MotionSequence, or a ``[T, C]`` array as given."""
    if isinstance(motion, MotionSequence):
        return np.asarray(motion.expression, dtype=np.float64)
    return as_array(motion, name, (2,))


def pose_of(motion: Any, name: str) -> np.ndarray:
    """The ``[T, 6]`` pose of a MotionSequence, or a ``[T, 6]`` array as given."""
    pose = np.asarray(motion.pose, dtype=np.float64) if isinstance(motion, MotionSequence) else \
        as_array(motion, name, (2,))
    if pose.shape[1] != 6:
        raise TalkingHeadError(f"{name} must be a [T, 6] pose (pitch, yaw, roll, tx, ty, tz), "
                               f"got shape {list(pose.shape)}.")
    return pose


def clip_list(clips: Any, name: str) -> list[Any]:
    """A non-empty list of clips (a single MotionSequence or 2-D array counts as one clip)."""
    if isinstance(clips, MotionSequence):
        return [clips]
    if isinstance(clips, np.ndarray) and clips.ndim == 2:
        return [clips]
    if isinstance(clips, np.ndarray | Sequence) and not isinstance(clips, str):
        items = list(clips)
        if not items:
            raise TalkingHeadError(f"{name} holds no clips.")
        return items
    raise TalkingHeadError(f"{name} must be a list of motion clips.")

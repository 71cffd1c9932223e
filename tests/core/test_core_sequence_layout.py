"""Layout conversion and reference clips next to the motion format (talkinghead.sequence)."""

from __future__ import annotations

import numpy as np
import pytest

from talkinghead.errors import TalkingHeadError
from talkinghead.sequence import (
    ChannelLayout,
    MotionSequence,
    expression_for_layout,
    middle_frames,
    pose_for_portrait,
)

TARGET = ChannelLayout("target", ("jawOpen", "mouthClose", "eyeBlinkLeft"))


def _motion(channels: tuple[str, ...], t: int = 4) -> MotionSequence:
    expr = np.arange(t * len(channels), dtype=np.float32).reshape(t, len(channels))
    return MotionSequence(expr, np.zeros((t, 6)), ChannelLayout("src", channels))


def test_expression_by_name_missing_channels_zero() -> None:
    motion = _motion(("eyeBlinkLeft", "jawOpen", "extra"))
    out = expression_for_layout(motion, TARGET)
    assert out.shape == (4, 3)
    np.testing.assert_array_equal(out[:, 0], motion.channel("jawOpen"))
    np.testing.assert_array_equal(out[:, 1], 0.0)
    np.testing.assert_array_equal(out[:, 2], motion.channel("eyeBlinkLeft"))
    same = _motion(TARGET.channels)
    assert expression_for_layout(same, TARGET) is same.expression


def test_expression_refuses_a_foreign_layout() -> None:
    with pytest.raises(TalkingHeadError, match="shares no channel"):
        expression_for_layout(_motion(("exp_0", "exp_1")), TARGET)


def test_pose_modes() -> None:
    motion_pose = np.cumsum(np.ones((3, 6), np.float32), axis=0)
    fitted = np.full(6, 10.0, np.float32)
    np.testing.assert_array_equal(pose_for_portrait(motion_pose, fitted, "absolute"), motion_pose)
    relative = pose_for_portrait(motion_pose, fitted, "relative")
    np.testing.assert_array_equal(relative[0], fitted)
    np.testing.assert_array_equal(relative[2] - relative[0], motion_pose[2] - motion_pose[0])
    with pytest.raises(TalkingHeadError, match="absolute"):
        pose_for_portrait(motion_pose, fitted, "sideways")


def test_middle_frames() -> None:
    x = np.arange(10)
    np.testing.assert_array_equal(middle_frames(x, 4), [3, 4, 5, 6])
    assert middle_frames(x, 20) is x
    assert len(middle_frames(np.zeros((300, 2)))) == 256  # DreamTalk's longest reference

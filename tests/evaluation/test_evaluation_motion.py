"""Head velocity statistics (EMO Tab. 2), diversity and Beat Align Score (FD2Talk): hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from talkinghead.errors import TalkingHeadError
from talkinghead.evaluation.motion import (
    audio_beats,
    beat_align_score,
    head_motion_diversity,
    head_rotation_velocity,
    join_jump_ratios,
    join_jumps,
    motion_beats,
    rotation_matrices,
    velocity_statistics,
)
from talkinghead.io.audio import Audio
from talkinghead.sequence import ChannelLayout, MotionSequence


def _pose_from_yaw_steps(steps_deg: list[float]) -> np.ndarray:
    yaw = np.radians(np.concatenate([[0.0], np.cumsum(steps_deg)]))
    pose = np.zeros((len(yaw), 6))
    pose[:, 1] = yaw
    return pose


def test_velocity_is_the_rotation_angle_between_frames() -> None:
    pose = _pose_from_yaw_steps([1.0] * 10)
    np.testing.assert_allclose(head_rotation_velocity(pose), 1.0, atol=1e-9)
    rng = np.random.default_rng(0)
    pose = np.zeros((20, 6))
    pose[:, :3] = np.cumsum(rng.normal(size=(20, 3)) * 0.05, axis=0)
    rots = Rotation.from_euler("xyz", pose[:, :3])
    expected = np.degrees((rots[1:] * rots[:-1].inv()).magnitude())
    np.testing.assert_allclose(head_rotation_velocity(pose), expected, atol=1e-9)
    np.testing.assert_allclose(head_rotation_velocity(rotation_matrices(pose)), expected, atol=1e-9)
    layout = ChannelLayout("t", ("a",))
    motion = MotionSequence(np.zeros((20, 1)), pose, layout)
    np.testing.assert_allclose(head_rotation_velocity(motion), expected, atol=1e-6)
    with pytest.raises(TalkingHeadError, match="two frames"):
        head_rotation_velocity(pose[:1])


def test_rotation_convention_is_the_face_models() -> None:
    from talkinghead.face.model import euler_to_matrix

    pose = np.zeros((8, 6))
    pose[:, :3] = np.random.default_rng(5).normal(size=(8, 3)) * 0.5
    np.testing.assert_allclose(rotation_matrices(pose), euler_to_matrix(pose[:, :3]), atol=1e-12)


def test_velocity_statistics_hand_computed() -> None:
    steady = _pose_from_yaw_steps([1.0] * 8)  # speeds 1: mean 1, variance 0
    alternating = _pose_from_yaw_steps([1.0, 3.0] * 4)  # speeds 1, 3: mean 2, variance 1
    stats = velocity_statistics([steady, alternating])
    assert stats.mean_velocity == pytest.approx(1.5)
    assert stats.velocity_variance == pytest.approx(0.5)
    assert stats.vmv == pytest.approx(0.25)  # variance of the clip means 1 and 2
    assert stats.num_clips == 2


def test_diversity_hand_computed() -> None:
    pose = np.zeros((10, 6))
    pose[:, 1] = np.tile([0.3, -0.3], 5)  # yaw std 0.3, pitch and roll 0
    pose[:, 3] = np.arange(10.0)  # translation is not head rotation: ignored
    assert head_motion_diversity([pose]) == pytest.approx(0.1)
    assert head_motion_diversity([pose, np.zeros((10, 6))]) == pytest.approx(0.05)
    with pytest.raises(TalkingHeadError, match=r"\[T, 6\]"):
        head_motion_diversity([np.zeros((10, 3))])


def test_beat_align_score_hand_computed() -> None:
    assert beat_align_score([5, 20, 40], [5, 20, 40]) == pytest.approx(1.0)
    expected = (np.exp(-9 / 18) + np.exp(-49 / 18)) / 2  # nearest motion beat 3 and 7 frames away, sigma 3
    assert beat_align_score([10, 20], [13]) == pytest.approx(expected)
    assert beat_align_score([10, 20], []) == 0.0
    with pytest.raises(TalkingHeadError, match="audio beat"):
        beat_align_score([], [1])


def test_motion_beats_are_speed_minima() -> None:
    t = np.arange(200)
    pose = np.zeros((200, 6))
    # Turning points at t = 9.75 + 20k; frame t's speed |yaw(t) - yaw(t-1)| is least at t = 10 + 20k.
    pose[:, 1] = 0.2 * np.sin(2 * np.pi * (t + 0.25) / 40)
    beats = motion_beats(pose, smoothing=0)
    turning = np.arange(10, 200, 20)
    assert len(beats) == len(turning)
    assert np.max(np.abs(beats - turning)) <= 1
    assert beat_align_score(turning, motion_beats(pose)) > 0.9


def test_audio_onsets_land_on_the_right_frames() -> None:
    sr, fps = 16_000, 25.0
    samples = np.zeros(3 * sr, dtype=np.float32)
    rng = np.random.default_rng(0)
    onset_frames = [15, 40, 62]
    for frame in onset_frames:
        start = int(frame / fps * sr)
        burst = rng.normal(size=1600) * np.exp(-np.arange(1600) / 400)
        samples[start : start + 1600] += 0.5 * burst.astype(np.float32)
    beats = audio_beats(Audio(samples, sr), fps=fps)
    assert len(beats) == len(onset_frames)
    assert np.max(np.abs(beats - np.array(onset_frames))) <= 1
    assert beat_align_score(beats, onset_frames) > 0.9
    assert len(audio_beats(samples, fps=fps, num_frames=50)) == 2
    at_30 = audio_beats(samples, fps=30.0)  # any frame rate: times are rounded to frames
    assert np.max(np.abs(at_30 - np.array(onset_frames) * 30 / 25)) <= 1
    with pytest.raises(TalkingHeadError, match="method"):
        audio_beats(samples, method="tempo")


def test_join_jumps_pool_the_jumps_into_join_frames_against_the_rest() -> None:
    from talkinghead.face.model import ARKIT_LAYOUT

    frames = 20
    expression = np.zeros((frames, ARKIT_LAYOUT.size), np.float32)
    mouth = list(ARKIT_LAYOUT.indices("mouth"))
    expression[:, mouth[0]] = np.arange(frames) * 0.01            # the lips move 0.01 per frame...
    expression[10:, mouth[0]] += 0.04                               # ...and jump 0.05 into frame 10
    pose = np.zeros((frames, 6), np.float32)
    pose[:, 0] = np.arange(frames) * 0.02
    motion = MotionSequence(expression, pose, ARKIT_LAYOUT)
    jumps = join_jumps(motion, [10, 0, 99])                        # indices outside 1..T-1 are ignored
    np.testing.assert_allclose(jumps["lips"][0], [0.05], rtol=1e-5)
    np.testing.assert_allclose(jumps["lips"][1], np.full(18, 0.01), rtol=1e-4)
    assert jumps["expression"][0].tolist() == [0.0] and len(jumps["pose"][1]) == 18
    ratios = join_jump_ratios([motion, motion], [[10], []])        # the second clip has no join
    assert ratios["lips"] == pytest.approx(0.05 / ((36 * 0.01 + 0.05) / 37), rel=1e-3)   # clip 2: no join at 10
    assert ratios["pose"] == pytest.approx(1.0, rel=1e-4) and np.isnan(ratios["expression"])

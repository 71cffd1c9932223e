"""Head-motion metrics: diversity and Beat Align Score (FD2Talk), rotation velocity statistics (EMO).

- Diversity (FD2Talk Sec. 4.2, Tab. 1): "extracting head motion feature embeddings using Hopenet and
  calculating their standard deviations". Hopenet regresses yaw, pitch and roll per frame; here the
  head rotation comes from the tracked or generated pose (MotionSequence.pose columns pitch, yaw,
  roll, in radians), so no pose network is needed. Diversity = the standard deviation over the frames
  of a clip, averaged over the three angles and then over clips.
- Beat Align Score (FD2Talk Sec. 4.2, ref. [38] Bailando, Li et al. 2022, Eq. 12)::

      BAS = 1/|B^a| sum_{t^a in B^a} exp(-min_{t^m in B^m} ||t^m - t^a||^2 / (2 sigma^2))

  with B^a the audio beats and B^m the motion beats (frame indices), sigma = 3 frames, as in Bailando's
  released evaluation. Motion beats are the local minima of the Gaussian-smoothed (sigma 5 frames)
  head speed (Bailando uses the kinetic speed of body joints; a talking head has only the head, so the
  speed is the head's angular speed). Audio beats are speech onsets from librosa (``method="onset"``,
  the default, because speech has no musical beat) or librosa's beat tracker (``method="beat"``, as
  Bailando does for music).
- Head rotation velocity (EMO Sec. 4.1 and Tab. 2): "the rotational degrees between frames": the
  geodesic angle of R_{t+1} R_t^T in degrees per frame. "Mean Velocity" is the mean over clips of each
  clip's mean velocity, "Velocity Variance" "the average variance of the velocities across individual
  video sequences" and "VMV" (Variance of Mean Velocities) "the variance of the mean velocities across
  different clips" (population variances).
- Window joins (Dimitra III-B.4, issue 13): a generator that makes long motion window by window reports where
  its windows join (:attr:`talkinghead.generators.MotionOutput.joins`); :func:`join_jumps` splits each clip's
  frame-to-frame jumps into those into a join frame and the ordinary ones, per channel group (the lips, the rest
  of the expression, the head pose), and :func:`join_jump_ratios` pools them over clips: ``mean join jump /
  mean ordinary jump``, 1 for a seamless sequence.

Rotation convention: the face model's (talkinghead.face.model), ``R = Rz(roll) Ry(yaw) Rx(pitch)``
(extrinsic x-y-z Euler angles, scipy's ``Rotation.from_euler("xyz", [pitch, yaw, roll])``). For motion
about one axis the angle between frames is the same under any convention; in general it is not, so
for poses from elsewhere pass their rotation matrices to :func:`head_rotation_velocity` directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import ndimage, signal
from scipy.spatial.transform import Rotation

from talkinghead.errors import TalkingHeadError
from talkinghead.evaluation._checks import as_array, clip_list, pose_of
from talkinghead.io.audio import Audio

BAS_SIGMA = 3.0  # frames (Bailando's evaluation code)
MOTION_BEAT_SMOOTHING = 5.0  # frames, Gaussian sigma on the speed envelope (Bailando)


def rotation_matrices(pose: Any) -> np.ndarray:
    """Head rotation matrices from a pose. ``pose: [T, 6]`` (pitch, yaw, roll, ...) or a
    MotionSequence -> ``[T, 3, 3]`` with ``R = Rz(roll) Ry(yaw) Rx(pitch)``."""
    p = pose_of(pose, "The pose")
    return Rotation.from_euler("xyz", p[:, :3]).as_matrix()


def head_rotation_velocity(motion: Any) -> np.ndarray:
    """Head rotation speed between consecutive frames, in degrees per frame (EMO Sec. 4.1).

    ``motion``: a MotionSequence, a pose ``[T, 6]`` or rotation matrices ``[T, 3, 3]`` (T >= 2)
    -> ``[T - 1]``: ``angle(R_{t+1} R_t^T)``, the geodesic distance on SO(3).
    """
    array = motion if not hasattr(motion, "pose") else None
    if array is not None and np.asarray(array).ndim == 3:
        rot = as_array(array, "The rotation matrices", (3,))
        if rot.shape[1:] != (3, 3):
            raise TalkingHeadError(f"Rotation matrices must be [T, 3, 3], got {list(rot.shape)}.")
    else:
        rot = rotation_matrices(motion)
    if rot.shape[0] < 2:
        raise TalkingHeadError("Head velocity needs at least two frames.")
    relative = np.einsum("tij,tkj->tik", rot[1:], rot[:-1])  # R_{t+1} R_t^T
    cos = (np.trace(relative, axis1=1, axis2=2) - 1.0) / 2.0
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


@dataclass(frozen=True)
class VelocityStatistics:
    """EMO Tab. 2: mean velocity, mean within-clip variance and variance of clip means (deg/frame)."""

    mean_velocity: float
    velocity_variance: float
    vmv: float
    num_clips: int


def velocity_statistics(clips: Any) -> VelocityStatistics:
    """EMO Tab. 2 statistics over a set of clips.

    ``clips``: a list of MotionSequences, poses ``[T, 6]`` or rotation matrices ``[T, 3, 3]``.
    For clip velocities v_c (``[T_c - 1]``): Mean Velocity = mean_c mean(v_c); Velocity Variance =
    mean_c var(v_c); VMV = var_c mean(v_c).
    """
    if isinstance(clips, np.ndarray) and clips.ndim == 3 and clips.shape[1:] == (3, 3):
        items: list[Any] = [clips]  # one clip of rotation matrices
    else:
        items = clip_list(clips, "The clips")
    velocities = [head_rotation_velocity(c) for c in items]
    means = np.array([v.mean() for v in velocities])
    variances = np.array([v.var() for v in velocities])
    return VelocityStatistics(float(means.mean()), float(variances.mean()), float(means.var()), len(items))


def head_motion_diversity(clips: Any) -> float:
    """Head-motion diversity (FD2Talk Sec. 4.2, Tab. 1), in radians.

    ``clips``: a list of MotionSequences or poses ``[T, 6]``. For each clip the standard deviation over
    frames of pitch, yaw and roll, averaged over the three angles; then the mean over clips.
    """
    values = []
    for i, clip in enumerate(clip_list(clips, "The clips")):
        pose = pose_of(clip, f"Clip {i}")
        if pose.shape[0] < 2:
            raise TalkingHeadError("Diversity needs clips of at least two frames.")
        values.append(pose[:, :3].std(axis=0).mean())
    return float(np.mean(values))


def motion_beats(motion: Any, smoothing: float = MOTION_BEAT_SMOOTHING) -> np.ndarray:
    """Kinematic beats of head motion: frames where the smoothed head speed has a local minimum.

    ``motion``: MotionSequence, pose ``[T, 6]`` or rotations ``[T, 3, 3]`` -> frame indices ``[K]``.
    Speed is the angular velocity (degrees per frame, assigned to the later frame; frame 0 has speed 0
    as in Bailando), smoothed by a Gaussian of ``smoothing`` frames (0 for none).
    """
    speed = np.concatenate([[0.0], head_rotation_velocity(motion)])
    if smoothing > 0:
        speed = ndimage.gaussian_filter1d(speed, smoothing)
    return signal.argrelextrema(speed, np.less)[0]


def audio_beats(audio: Any, fps: float = 25.0, sample_rate: int = 16_000, method: str = "onset",
                num_frames: int | None = None) -> np.ndarray:
    """Audio beats as video frame indices ``[K]``.

    ``audio``: an :class:`~talkinghead.io.audio.Audio` or samples ``[N]`` at ``sample_rate``. librosa
    analyses it with a 10 ms hop; beat times are rounded to the nearest video frame at ``fps``.
    ``method``: "onset" (speech onsets, the default) or "beat" (librosa's beat tracker, as Bailando).
    """
    import librosa

    if isinstance(audio, Audio):
        samples, sample_rate = np.asarray(audio.samples, dtype=np.float32), audio.sample_rate
    else:
        samples = as_array(audio, "The audio", (1,), dtype=np.float32)
    if fps <= 0 or sample_rate <= 0:
        raise TalkingHeadError("fps and sample_rate must be positive.")
    if method not in ("onset", "beat"):
        raise TalkingHeadError(f"Unknown audio beat method '{method}'; use 'onset' or 'beat'.")
    hop = max(1, sample_rate // 100)  # 10 ms analysis hop; beat times are then rounded to video frames
    envelope = librosa.onset.onset_strength(y=samples, sr=sample_rate, hop_length=hop)
    if method == "onset":
        found = librosa.onset.onset_detect(onset_envelope=envelope, sr=sample_rate, hop_length=hop)
    else:
        _, found = librosa.beat.beat_track(onset_envelope=envelope, sr=sample_rate, hop_length=hop)
    seconds = librosa.frames_to_time(np.asarray(found), sr=sample_rate, hop_length=hop)
    beats = np.unique(np.round(np.asarray(seconds) * fps)).astype(np.int64)
    if num_frames is not None:
        beats = beats[beats < num_frames]
    return beats


def beat_align_score(audio_beat_frames: Any, motion_beat_frames: Any, sigma: float = BAS_SIGMA) -> float:
    """Beat Align Score (Bailando Eq. 12, FD2Talk Tab. 1), in [0, 1]; higher is better aligned.

    ``audio_beat_frames: [Ka]``, ``motion_beat_frames: [Km]`` (frame indices, Ka >= 1). Every audio
    beat scores ``exp(-d^2 / (2 sigma^2))`` with d its distance to the nearest motion beat; the score
    is the mean over audio beats. No motion beat at all scores 0.
    """
    a = np.asarray(audio_beat_frames, dtype=np.float64).reshape(-1)
    m = np.asarray(motion_beat_frames, dtype=np.float64).reshape(-1)
    if a.size == 0:
        raise TalkingHeadError("The Beat Align Score needs at least one audio beat.")
    if sigma <= 0:
        raise TalkingHeadError("The Beat Align Score sigma must be positive.")
    if m.size == 0:
        return 0.0
    nearest = np.min((a[:, None] - m[None, :]) ** 2, axis=1)
    return float(np.mean(np.exp(-nearest / (2.0 * sigma**2))))


#: the channel groups of :func:`join_jumps`: the layout's ``mouth`` group, the other expression channels, the pose
JOIN_GROUPS = ("lips", "expression", "pose")


def join_jumps(motion: Any, joins: Any) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per group of :data:`JOIN_GROUPS`: ``(jumps into join frames [J], every other jump [T - 1 - J])``.

    ``motion``: a :class:`~talkinghead.sequence.MotionSequence` whose layout has a ``mouth`` group; ``joins``:
    frame indices (those outside ``1..T-1`` are ignored). A jump into frame ``i`` is ``||x_i - x_{i-1}||_2`` over
    the group's channels (raw units)."""
    layout = motion.layout
    if "mouth" not in layout.groups:
        raise TalkingHeadError(f"The channel layout '{layout.name}' has no 'mouth' group, so its lip channels are "
                               "unknown.")
    length = len(motion)
    at_join = np.zeros(max(length - 1, 0), dtype=bool)           # at_join[i - 1]: the jump into frame i
    index = np.asarray([j for j in np.asarray(joins, np.int64).reshape(-1) if 1 <= j < length], np.int64)
    at_join[index - 1] = True
    mouth = np.zeros(layout.size, dtype=bool)
    mouth[list(layout.indices("mouth"))] = True
    groups = {"lips": motion.expression[:, mouth], "expression": motion.expression[:, ~mouth], "pose": motion.pose}
    out = {}
    for name in JOIN_GROUPS:
        jumps = np.linalg.norm(np.diff(np.asarray(groups[name], np.float64), axis=0), axis=1)   # [T - 1]
        out[name] = (jumps[at_join], jumps[~at_join])
    return out


def join_jump_ratios(motions: Any, joins: Any) -> dict[str, float]:
    """Per group: the mean jump into join frames over the mean ordinary jump, pooled over the clips
    (``motions`` and their ``joins``); ``nan`` where no clip has a join or nothing moves."""
    pooled: dict[str, tuple[list[np.ndarray], list[np.ndarray]]] = {g: ([], []) for g in JOIN_GROUPS}
    for motion, clip_joins in zip(motions, joins, strict=True):
        for name, (at, ordinary) in join_jumps(motion, clip_joins).items():
            pooled[name][0].append(at)
            pooled[name][1].append(ordinary)
    out = {}
    for name, (at_parts, ordinary_parts) in pooled.items():
        at, ordinary = np.concatenate(at_parts or [np.zeros(0)]), np.concatenate(ordinary_parts or [np.zeros(0)])
        mean = float(ordinary.mean()) if ordinary.size else 0.0
        out[name] = float(at.mean()) / mean if at.size and mean > 0 else float("nan")
    return out

"""Non-articulatory face motion of the synthetic corpus: emotion expression, blinks, head pose.

- Emotion: each MEAD emotion has a prototype over ARKit channels at full intensity, after the facial
  action units associated with the basic emotions (Ekman & Friesen's FACS; e.g. happiness AU6+AU12 =
  cheekSquint + mouthSmile, sadness AU1+AU4+AU15 = browInnerUp + browDown + mouthFrown, surprise
  AU1+AU2+AU5+AU26, fear AU1+AU2+AU4+AU5+AU20, anger AU4+AU5+AU7+AU23, disgust AU9+AU10, contempt a
  one-sided AU12+AU14). MEAD's three intensity levels scale it by 0.4, 0.7 and 1.0; the speaker's
  :class:`EmotionHabit` scales it again and shifts it to one side; it rises over the first 0.4 s and
  breathes slowly (a smooth random factor of +-15%).
- Blinks: a Poisson process at the speaker's rate (emotion changes it), more likely in pauses, each an
  asymmetric close-open curve of about 250 ms.
- Head pose: a slow drift (smoothed noise) of the three rotations and the translation, scaled by the
  speaker's head energy, plus nods (pitch pulses) at the onsets of stressed vowels weighted by the
  loudness of the speech there, and an emotion posture (sad: head down, surprised: head back).
The shapes and numbers are this project's choices; no paper specifies them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.ndimage import gaussian_filter1d

from talkinghead.data.articulation import VOWELS, TimedPhone
from talkinghead.data.speakers import Speaker
from talkinghead.face.model import ARKIT_LAYOUT

INTENSITY_SCALE = {1: 0.4, 2: 0.7, 3: 1.0}

EMOTION_PROTOTYPES: dict[str, dict[str, float]] = {
    "neutral": {},
    "happy": {"mouthSmileLeft": 0.65, "mouthSmileRight": 0.65, "cheekSquintLeft": 0.45, "cheekSquintRight": 0.45,
              "eyeSquintLeft": 0.25, "eyeSquintRight": 0.25, "mouthDimpleLeft": 0.2, "mouthDimpleRight": 0.2},
    "sad": {"browInnerUp": 0.65, "browDownLeft": 0.2, "browDownRight": 0.2, "mouthFrownLeft": 0.55,
            "mouthFrownRight": 0.55, "eyeBlinkLeft": 0.15, "eyeBlinkRight": 0.15, "mouthPressLeft": 0.15,
            "mouthPressRight": 0.15},
    "angry": {"browDownLeft": 0.75, "browDownRight": 0.75, "eyeSquintLeft": 0.35, "eyeSquintRight": 0.35,
              "eyeWideLeft": 0.15, "eyeWideRight": 0.15, "noseSneerLeft": 0.25, "noseSneerRight": 0.25,
              "mouthPressLeft": 0.3, "mouthPressRight": 0.3},
    "fear": {"browInnerUp": 0.7, "browOuterUpLeft": 0.4, "browOuterUpRight": 0.4, "browDownLeft": 0.15,
             "browDownRight": 0.15, "eyeWideLeft": 0.65, "eyeWideRight": 0.65, "mouthStretchLeft": 0.4,
             "mouthStretchRight": 0.4},
    "surprised": {"browInnerUp": 0.75, "browOuterUpLeft": 0.7, "browOuterUpRight": 0.7, "eyeWideLeft": 0.75,
                  "eyeWideRight": 0.75},
    "disgusted": {"noseSneerLeft": 0.65, "noseSneerRight": 0.65, "mouthUpperUpLeft": 0.4, "mouthUpperUpRight": 0.4,
                  "browDownLeft": 0.4, "browDownRight": 0.4, "cheekSquintLeft": 0.3, "cheekSquintRight": 0.3,
                  "mouthFrownLeft": 0.2, "mouthFrownRight": 0.2},
    "contempt": {"mouthSmileLeft": 0.4, "mouthDimpleLeft": 0.35, "eyeSquintLeft": 0.12, "eyeSquintRight": 0.08,
                 "browDownLeft": 0.1, "browDownRight": 0.1, "mouthPressLeft": 0.15},
}
# How an emotion changes articulation amplitude, blink rate and head motion; and its head posture
# (pitch radians: positive tips the head forward/down).
EMOTION_DYNAMICS: dict[str, tuple[float, float, float, float]] = {
    # articulation, blink factor, head energy, posture pitch
    "neutral": (1.0, 1.0, 1.0, 0.0),
    "happy": (1.1, 1.0, 1.3, -0.02),
    "sad": (0.75, 0.8, 0.6, 0.12),
    "angry": (1.2, 0.7, 1.4, 0.05),
    "fear": (0.95, 1.6, 1.2, 0.04),
    "surprised": (1.25, 0.6, 1.1, -0.08),
    "disgusted": (0.9, 1.1, 0.9, 0.03),
    "contempt": (0.9, 0.9, 0.8, -0.04),
}
_CH = {name: i for i, name in enumerate(ARKIT_LAYOUT.channels)}


def _smooth_noise(rng: np.random.Generator, n: int, sigma_frames: float, dims: int = 1) -> np.ndarray:
    """Stationary zero-mean unit-variance noise ``[n, dims]`` smoothed by a Gaussian of ``sigma_frames``.

    Normalised by the process's own standard deviation (white noise through a Gaussian of width s has
    variance 1 / (2 sqrt(pi) s)), not the sample's, so a short clip keeps a small, slow drift."""
    pad = int(4 * sigma_frames) + 1
    x = gaussian_filter1d(rng.standard_normal((n + 2 * pad, dims)), sigma_frames, axis=0, mode="constant")[pad:pad + n]
    return x * np.sqrt(2.0 * np.sqrt(np.pi) * sigma_frames)


def emotion_expression(speaker: Speaker, emotion: str, intensity: int, num_frames: int, fps: float,
                       rng: np.random.Generator) -> np.ndarray:
    """The emotion (plus the speaker's smile bias) over time: ``[num_frames, E]``."""
    out = np.zeros((num_frames, ARKIT_LAYOUT.size), dtype=np.float64)
    habit = speaker.emotion_habits.get(emotion)
    gain = INTENSITY_SCALE[intensity] * (habit.gain if habit else 1.0)
    asym = habit.asymmetry if habit else 0.0
    for name, value in EMOTION_PROTOTYPES[emotion].items():
        weight = 1.0 + asym if name.endswith("Left") else 1.0 - asym if name.endswith("Right") else 1.0
        out[:, _CH[name]] = value * gain * weight
    for side_name in ("Left", "Right"):
        out[:, _CH[f"mouthSmile{side_name}"]] += speaker.smile_bias
    t = np.arange(num_frames) / fps
    onset = 1.0 - np.exp(-t / 0.15)  # rises over the first ~0.4 s
    breathing = 1.0 + 0.15 * _smooth_noise(rng, num_frames, 0.8 * fps)[:, 0]
    return out * (onset * breathing)[:, None]


def blinks(speaker: Speaker, emotion: str, num_frames: int, fps: float, phones: Sequence[TimedPhone],
           rng: np.random.Generator) -> np.ndarray:
    """Blink closure ``[num_frames, 2]`` (left, right) in [0, 1]."""
    rate = speaker.blink_rate * EMOTION_DYNAMICS[emotion][1] / 60.0  # per second
    duration = num_frames / fps
    hazard = np.full(num_frames, rate / fps)
    for p in phones:  # blinks cluster in pauses
        if p.label == "SIL":
            hazard[int(p.start * fps):int(np.ceil(p.end * fps))] *= 2.5
    events = np.flatnonzero(rng.random(num_frames) < hazard)
    t = np.arange(num_frames) / fps
    out = np.zeros((num_frames, 2))
    last = -1.0
    for frame in events:
        start = frame / fps + rng.uniform(0, 1.0 / fps)
        if start - last < 0.6 or start > duration:
            continue
        last = start
        close, reopen = rng.uniform(0.06, 0.1), rng.uniform(0.12, 0.2)
        depth = rng.uniform(0.85, 1.0)
        rel = t - start
        shape = np.where(rel < 0, 0.0, np.where(rel < close, rel / close, np.clip(1 - (rel - close) / reopen, 0, 1)))
        shape = shape ** 0.7
        out[:, 0] = np.maximum(out[:, 0], depth * shape)
        out[:, 1] = np.maximum(out[:, 1], depth * rng.uniform(0.9, 1.0) * shape)
    return out


def head_pose(speaker: Speaker, emotion: str, intensity: int, num_frames: int, fps: float,
              phones: Sequence[TimedPhone], loudness: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Head pose ``[num_frames, 6]`` (pitch, yaw, roll radians; tx, ty model units; tz log scale).

    ``loudness``: ``[num_frames]`` speech level in [0, 1] (frame RMS relative to the clip's peak).
    """
    _, _, energy_factor, posture = EMOTION_DYNAMICS[emotion]
    level = INTENSITY_SCALE[intensity]
    energy = speaker.head_energy * (1.0 + (energy_factor - 1.0) * level)
    pose = np.zeros((num_frames, 6))
    drift = _smooth_noise(rng, num_frames, 0.7 * fps, 6)
    pose[:, :3] = drift[:, :3] * np.array([0.03, 0.045, 0.012]) * energy
    pose[:, 3:5] = drift[:, 3:5] * 0.02 * energy
    pose[:, 5] = drift[:, 5] * 0.01 * energy
    # nods: a smooth pitch pulse (gamma-like, peak ~150 ms after the onset) at stressed vowels
    t = np.arange(num_frames) / fps
    loud = np.asarray(loudness, dtype=np.float64)
    for p in phones:
        if p.label in VOWELS and p.stress == 1:
            k = min(int(p.start * fps), num_frames - 1)
            amp = 0.03 * speaker.nod_strength * energy * (0.4 + 0.6 * loud[k]) * rng.uniform(0.6, 1.2)
            rel = np.clip(t - p.start + 0.05, 0.0, None)
            pulse = (rel / 0.15) ** 2 * np.exp(2.0 * (1.0 - rel / 0.15))
            pose[:, 0] += amp * pulse / 1.0
    onset = 1.0 - np.exp(-t / 0.3)
    pose[:, 0] += posture * level * onset
    return pose

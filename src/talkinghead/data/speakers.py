"""Synthetic speakers: a voice, a face shape and personal habits, drawn deterministically from a seed.

A :class:`Speaker` holds

- a voice: espeak-ng language voice and variant, base pitch, pitch range and rate (wide ranges, so
  that models trained on the corpus meet many voices);
- a face identity (the face model's identity dict, :mod:`talkinghead.face.model`): a base neutral
  shape perturbed along smooth deformation modes (:data:`SHAPE_MODES`: face width and length, jaw
  width, eye spacing, nose length and width, mouth width, lip thickness, chin length, a slight
  asymmetry), each a Gaussian-weighted displacement field over the mesh, so every speaker's face
  stays smooth and plausible;
- habits: lip amplitude and jaw, rounding and spreading gains, a smile bias, blink rate,
  head-motion energy and nod strength, and per emotion a gain and an asymmetry (how each emotion
  shows on this face).

The base neutral is the face model fitted to scikit-image's astronaut portrait (the one portrait that
ships offline), fitted once per process.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field

import numpy as np

from talkinghead.audio.tts import EMOTIONS, ENGLISH_VOICES, FEMALE_VARIANTS, MALE_VARIANTS, VoiceConfig
from talkinghead.data.articulation import ArticulationStyle
from talkinghead.face.model import identity_descriptor
from talkinghead.face.topology import CHIN, EYE_OUTER_L, EYE_OUTER_R, LIP_INNER_LOW, LIP_INNER_UP, NOSE_TIP

SHAPE_MODES = ("face_width", "face_length", "jaw_width", "eye_spacing", "nose_length", "nose_width",
               "mouth_width", "lip_thickness", "chin_length", "asymmetry")


def seed_for(*parts: object) -> int:
    """A stable 63-bit seed from any values (independent of Python's hash randomisation)."""
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


@functools.lru_cache(maxsize=1)
def base_identity() -> dict[str, np.ndarray]:
    """The identity fitted to scikit-image's astronaut portrait (read-only arrays)."""
    from skimage import data

    from talkinghead.face.model import fit_image

    fit = fit_image(data.astronaut())
    for value in fit.identity.values():
        value.flags.writeable = False
    return fit.identity


def _field(n: np.ndarray, centre: np.ndarray, radius: float) -> np.ndarray:
    return np.exp(-np.sum((n[:, :2] - centre[None, :2]) ** 2, axis=1) / (2.0 * radius ** 2))


def shape_modes(neutral: np.ndarray) -> np.ndarray:
    """Smooth deformation fields ``[len(SHAPE_MODES), 468, 3]`` of a neutral shape (one unit each ~5%)."""
    n = np.asarray(neutral, dtype=np.float64)
    x, y = n[:, 0], n[:, 1]
    eye_y = 0.5 * (n[EYE_OUTER_R, 1] + n[EYE_OUTER_L, 1])
    chin_y = n[CHIN, 1]
    mouth = 0.5 * (n[LIP_INNER_UP] + n[LIP_INNER_LOW])
    nose = n[NOSE_TIP]
    below_eyes = np.clip((eye_y - y) / (eye_y - chin_y), 0.0, 1.0)
    modes = np.zeros((len(SHAPE_MODES), len(n), 3))
    modes[0, :, 0] = 0.05 * x                                               # face width
    modes[1, :, 1] = 0.05 * (y - eye_y)                                     # face length
    modes[2, :, 0] = 0.08 * x * below_eyes ** 2                             # jaw width
    for eye, sgn in ((n[EYE_OUTER_L], 1.0), (n[EYE_OUTER_R], -1.0)):
        modes[3, :, 0] += 0.03 * sgn * _field(n, eye * np.array([0.8, 1, 1]), 0.18)  # eye spacing
    modes[4, :, 1] = -0.06 * _field(n, nose, 0.15)                         # nose length (tip down)
    modes[5, :, 0] = 0.2 * (x - nose[0]) * _field(n, nose, 0.12)            # nose width
    modes[6, :, 0] = 0.12 * (x - mouth[0]) * _field(n, mouth, 0.25)         # mouth width
    modes[7, :, 1] = 0.15 * (y - mouth[1]) * _field(n, mouth, 0.12)         # lip thickness
    modes[8, :, 1] = -0.06 * np.clip((mouth[1] - y) / (mouth[1] - chin_y), 0.0, 1.0)  # chin length
    modes[9, :, 1] = 0.015 * x * below_eyes                                 # asymmetry (tilted lower face)
    return modes


def perturbed_identity(coeffs: np.ndarray, base: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
    """An identity dict whose neutral is ``base``'s moved by ``coeffs [len(SHAPE_MODES)]`` of the modes."""
    base = base_identity() if base is None else base
    neutral = np.asarray(base["neutral"], dtype=np.float64)
    shape = neutral + np.einsum("m,mvc->vc", np.asarray(coeffs, dtype=np.float64), shape_modes(neutral))
    out = {k: np.array(v, copy=True) for k, v in base.items()}
    out["neutral"] = shape.astype(np.float32)
    out["descriptor"] = identity_descriptor(shape)
    return out


@dataclass(frozen=True)
class EmotionHabit:
    """How one emotion shows on this speaker: ``gain`` on its expression, ``asymmetry`` (-1..1, the
    left side stronger when positive) and ``articulation`` (lip amplitude factor while feeling it)."""

    gain: float = 1.0
    asymmetry: float = 0.0
    articulation: float = 1.0


@dataclass(frozen=True)
class Speaker:
    """A synthetic speaker (see the module docstring)."""

    id: str
    voice: str
    variant: str
    pitch: int
    pitch_range: int
    rate: int
    shape: tuple[float, ...]
    articulation: ArticulationStyle
    smile_bias: float
    blink_rate: float  # blinks a minute
    head_energy: float
    nod_strength: float
    emotion_habits: dict[str, EmotionHabit] = field(default_factory=dict)

    def voice_config(self, emotion: str, intensity: int) -> VoiceConfig:
        return VoiceConfig(voice=self.voice, variant=self.variant, rate=self.rate, pitch=self.pitch,
                           range=self.pitch_range, emotion=emotion, intensity=intensity)

    def identity(self) -> dict[str, np.ndarray]:
        return perturbed_identity(np.array(self.shape))


def make_speaker(index: int, seed: int) -> Speaker:
    """Speaker ``index`` of the corpus with ``seed`` (independent of how many speakers there are)."""
    rng = np.random.default_rng(seed_for("speaker", seed, index))
    female = bool(index % 2)  # alternate, so any count is balanced
    variants = FEMALE_VARIANTS if female else MALE_VARIANTS
    pitch = int(np.clip(rng.normal(55 if female else 42, 14), 5, 95))
    habits = {
        e: EmotionHabit(gain=float(np.clip(np.exp(rng.normal(0.0, 0.25)), 0.6, 1.4)),
                        asymmetry=float(rng.normal(0.0, 0.2)),
                        articulation=float(np.exp(rng.normal(0.0, 0.1))))
        for e in EMOTIONS
    }
    return Speaker(
        id=f"s{index:03d}",
        voice=str(ENGLISH_VOICES[int(rng.integers(len(ENGLISH_VOICES)))]),
        variant=str(variants[int(rng.integers(len(variants)))]),
        pitch=pitch,
        pitch_range=int(np.clip(rng.normal(50, 15), 10, 90)),
        rate=int(np.clip(rng.normal(165, 30), 110, 260)),
        shape=tuple(float(v) for v in np.clip(rng.normal(0.0, 1.0, len(SHAPE_MODES)), -2.5, 2.5)),
        articulation=ArticulationStyle(
            amplitude=float(np.exp(rng.normal(0.0, 0.2))), jaw=float(np.exp(rng.normal(0.0, 0.15))),
            rounding=float(np.exp(rng.normal(0.0, 0.2))), spread=float(np.exp(rng.normal(0.0, 0.2))),
            stress_gain=float(rng.uniform(0.05, 0.25))),
        smile_bias=float(np.clip(rng.normal(0.05, 0.08), -0.05, 0.3)),
        blink_rate=float(rng.uniform(8.0, 26.0)),
        head_energy=float(np.clip(np.exp(rng.normal(0.0, 0.4)), 0.4, 2.2)),
        nod_strength=float(np.exp(rng.normal(0.0, 0.35))),
        emotion_habits=habits,
    )

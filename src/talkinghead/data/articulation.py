"""Mouth motion from timed phonemes with coarticulation (the synthetic corpus's lip ground truth).

Model: Cohen & Massaro (1993), "Modeling coarticulation in synthetic visual speech". Every phone
segment ``s`` has articulatory targets ``T_sk`` for a few articulators ``k`` (jaw opening, lip closure,
funnel, pucker, stretch, upper-lip raise, lower-lip drop, press, lower-lip roll) and a dominance
function over time,

    D_sk(t) = alpha_sk * exp(-theta_s^{+/-} * tau^c),   tau = max(0, |t - centre_s| - plateau_s),

with separate anticipatory (before the centre) and carry-over (after) rates and ``c = 1``. Each
articulator's trajectory is the dominance-weighted average of the targets of all segments,

    F_k(t) = sum_s D_sk(t) T_sk / sum_s D_sk(t),

so a segment's articulation begins before it (anticipation: rounding before /uw/, closure before /b/)
and lingers after it (carry-over), with no step anywhere. Bilabials (P B M) dominate lip closure
strongly, so the lips close during them whatever the neighbours; rounded vowels and /w/ dominate
pucker and funnel with a long anticipation; open vowels dominate the jaw. Deviations from the paper:
a plateau of 30% of the segment's duration (long vowels reach their targets), a rest target for
pauses held over their whole span, and the closure mapped to ARKit's
``mouthClose = closure * jawOpen`` (ARKit closes the lips when mouthClose equals jawOpen).
Trajectories are evaluated at 200 Hz and averaged over each video frame. The targets and dominances
are this project's choices (from phonetics, not fitted to data).

Output: ``[T, E]`` mouth coefficients in :data:`talkinghead.face.model.ARKIT_LAYOUT` order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from talkinghead.errors import TalkingHeadError
from talkinghead.face.model import ARKIT_LAYOUT

ARTICULATORS = ("jaw", "close", "funnel", "pucker", "stretch", "upper", "lower", "press", "roll")
_LIPS = slice(1, 9)
SAMPLE_HZ = 200.0


@dataclass(frozen=True)
class PhoneClass:
    """Dominance of a class of phones: ``lips`` and ``jaw`` magnitudes, anticipation and carry-over
    time constants (seconds, 1/theta)."""

    lips: float
    jaw: float
    ant: float
    car: float


_CLASSES = {
    "sil": PhoneClass(1.0, 1.0, 0.10, 0.10),
    "bilabial": PhoneClass(12.0, 3.0, 0.045, 0.04),
    "labiodental": PhoneClass(6.0, 2.0, 0.05, 0.045),
    "rounded": PhoneClass(3.0, 2.0, 0.12, 0.07),
    "vowel": PhoneClass(1.5, 3.0, 0.07, 0.06),
    "postalveolar": PhoneClass(3.0, 1.0, 0.08, 0.06),
    "weak": PhoneClass(0.4, 0.7, 0.05, 0.05),
}

# ARPAbet -> (class, targets: jaw, close, funnel, pucker, stretch, upper, lower, press, roll)
_TARGETS: dict[str, tuple[str, tuple[float, ...]]] = {
    "SIL": ("sil", (0.03, 0, 0, 0, 0, 0, 0, 0, 0)),
    "AA": ("vowel", (0.65, 0, 0, 0, 0, 0.05, 0.2, 0, 0)),
    "AE": ("vowel", (0.5, 0, 0, 0, 0.25, 0.1, 0.2, 0, 0)),
    "AH": ("vowel", (0.42, 0, 0, 0, 0.05, 0, 0.12, 0, 0)),
    "AO": ("rounded", (0.5, 0, 0.35, 0.2, 0, 0, 0.1, 0, 0)),
    "AW": ("vowel", (0.5, 0, 0.3, 0.3, 0, 0, 0.15, 0, 0)),
    "AY": ("vowel", (0.5, 0, 0, 0, 0.2, 0.05, 0.15, 0, 0)),
    "EH": ("vowel", (0.35, 0, 0, 0, 0.3, 0.05, 0.1, 0, 0)),
    "ER": ("rounded", (0.2, 0, 0.35, 0.3, 0, 0, 0, 0, 0)),
    "EY": ("vowel", (0.3, 0, 0, 0, 0.35, 0.05, 0.05, 0, 0)),
    "IH": ("vowel", (0.22, 0, 0, 0, 0.35, 0, 0.05, 0, 0)),
    "IY": ("vowel", (0.15, 0, 0, 0, 0.5, 0.05, 0, 0, 0)),
    "OW": ("rounded", (0.35, 0, 0.4, 0.5, 0, 0, 0, 0, 0)),
    "OY": ("rounded", (0.35, 0, 0.35, 0.35, 0.05, 0, 0, 0, 0)),
    "UH": ("rounded", (0.2, 0, 0.3, 0.5, 0, 0, 0, 0, 0)),
    "UW": ("rounded", (0.12, 0, 0.3, 0.8, 0, 0, 0, 0, 0)),
    "B": ("bilabial", (0.05, 1.0, 0, 0, 0, 0, 0, 0.3, 0)),
    "P": ("bilabial", (0.05, 1.0, 0, 0, 0, 0, 0, 0.4, 0)),
    "M": ("bilabial", (0.05, 1.0, 0, 0, 0, 0, 0, 0.2, 0)),
    "F": ("labiodental", (0.1, 0.3, 0, 0, 0, 0.15, 0, 0, 0.6)),
    "V": ("labiodental", (0.1, 0.3, 0, 0, 0, 0.15, 0, 0, 0.55)),
    "TH": ("weak", (0.15, 0, 0, 0, 0.05, 0, 0.1, 0, 0)),
    "DH": ("weak", (0.15, 0, 0, 0, 0.05, 0, 0.1, 0, 0)),
    "T": ("weak", (0.15, 0, 0, 0, 0.1, 0, 0, 0, 0)),
    "D": ("weak", (0.15, 0, 0, 0, 0.1, 0, 0, 0, 0)),
    "N": ("weak", (0.15, 0, 0, 0, 0.1, 0, 0, 0, 0)),
    "L": ("weak", (0.18, 0, 0, 0, 0.05, 0, 0, 0, 0)),
    "S": ("weak", (0.08, 0, 0, 0, 0.25, 0, 0, 0, 0)),
    "Z": ("weak", (0.08, 0, 0, 0, 0.25, 0, 0, 0, 0)),
    "SH": ("postalveolar", (0.12, 0, 0.55, 0.35, 0, 0.05, 0, 0, 0)),
    "ZH": ("postalveolar", (0.12, 0, 0.55, 0.35, 0, 0.05, 0, 0, 0)),
    "CH": ("postalveolar", (0.12, 0, 0.5, 0.35, 0, 0.05, 0, 0, 0)),
    "JH": ("postalveolar", (0.12, 0, 0.5, 0.35, 0, 0.05, 0, 0, 0)),
    "K": ("weak", (0.2, 0, 0, 0, 0, 0, 0, 0, 0)),
    "G": ("weak", (0.2, 0, 0, 0, 0, 0, 0, 0, 0)),
    "NG": ("weak", (0.18, 0, 0, 0, 0, 0, 0, 0, 0)),
    "HH": ("weak", (0.25, 0, 0, 0, 0, 0, 0.05, 0, 0)),
    "R": ("rounded", (0.12, 0, 0.3, 0.35, 0, 0, 0, 0, 0)),
    "W": ("rounded", (0.08, 0, 0.2, 0.8, 0, 0, 0, 0, 0)),
    "Y": ("weak", (0.1, 0, 0, 0, 0.3, 0, 0, 0, 0)),
}
VOWELS = frozenset({"AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW"})
PLATEAU = 0.3
# Vowel jaw targets above are scaled by this gain: with it the inner-lip opening of open vowels is 10-20% of
# the outer eye-corner distance on the face model, as in conversational speech (issue 12); without it the
# corpus's mouths, and the models trained on them, barely opened at full-face scale.
VOWEL_JAW_GAIN = 1.35
# Vocal effort: a vowel spoken ``effort`` dB louder than the speaker's normal level opens the jaw (and drops the
# lower lip) by the factor ``10 ** (EFFORT_JAW * effort / 20)``, i.e. with the square root of the amplitude ratio
# at 0.5: +6 dB about 1.4x, -6 dB about 0.7x. Loud speech lowers the jaw further (Schulman 1989, "Articulatory
# dynamics of loud and normal speech", JASA 85); the corpus (:func:`talkinghead.data.corpus.vocal_effort`) scales
# each vowel's audio by the same effort, so models learn to open the mouth with the loudness of real voices,
# not only with the vowel's identity.
EFFORT_JAW = 0.5


@dataclass(frozen=True)
class TimedPhone:
    """An ARPAbet phone (``SIL`` for pauses) with times in seconds, espeak's stress (0, 1, 2) and, for vowels,
    the vocal effort in dB relative to the speaker's normal level (:data:`EFFORT_JAW`)."""

    label: str
    start: float
    end: float
    stress: int = 0
    effort: float = 0.0


@dataclass(frozen=True)
class ArticulationStyle:
    """A speaker's (and emotion's) way of articulating: overall lip amplitude, extra jaw, rounding
    and spreading gains, and how much stress exaggerates vowels."""

    amplitude: float = 1.0
    jaw: float = 1.0
    rounding: float = 1.0
    spread: float = 1.0
    stress_gain: float = 0.15


def articulator_tracks(phones: Sequence[TimedPhone], times: np.ndarray,
                       style: ArticulationStyle = ArticulationStyle()) -> np.ndarray:
    """Coarticulated articulator values ``[len(times), 9]`` (:data:`ARTICULATORS`) at ``times`` seconds."""
    if not phones:
        raise TalkingHeadError("Mouth motion needs at least one phone segment.")
    n = len(phones)
    targets = np.zeros((n, len(ARTICULATORS)))
    dominance = np.zeros((n, len(ARTICULATORS)))
    centres, plateaus, ant, car = (np.zeros(n) for _ in range(4))
    for i, p in enumerate(phones):
        if p.label not in _TARGETS:
            raise TalkingHeadError(f"No articulation is defined for the phone '{p.label}'.")
        cls_name, tgt = _TARGETS[p.label]
        cls = _CLASSES[cls_name]
        t = np.array(tgt, dtype=np.float64)
        if p.label in VOWELS:
            t *= 1.0 + style.stress_gain * (1.0 if p.stress == 1 else 0.0 if p.stress == 2 else -1.0)
            t[0] *= VOWEL_JAW_GAIN
            t[[0, 6]] *= 10.0 ** (EFFORT_JAW * p.effort / 20.0)
        t[0] *= style.jaw
        t[2:4] *= style.rounding
        t[4] *= style.spread
        t[[0, 2, 3, 4, 5, 6, 7, 8]] *= style.amplitude
        targets[i] = t
        dominance[i, 0] = cls.jaw
        dominance[i, _LIPS] = cls.lips
        duration = max(p.end - p.start, 1e-3)
        centres[i] = 0.5 * (p.start + p.end)
        # a pause holds the rest posture over its whole span (less 20 ms at each edge)
        plateaus[i] = max(0.5 * duration - 0.02, 0.0) if p.label == "SIL" else 0.5 * PLATEAU * duration
        ant[i], car[i] = cls.ant, cls.car
    # Long pauses relax fully: their rest target dominates more the longer they last.
    for i, p in enumerate(phones):
        if p.label == "SIL":
            dominance[i] *= 1.0 + 4.0 * min(p.end - p.start, 1.0)
    tau = times[:, None] - centres[None, :]  # [N, S]
    rate = np.where(tau < 0, 1.0 / ant[None, :], 1.0 / car[None, :])
    d_time = np.exp(-rate * np.maximum(np.abs(tau) - plateaus[None, :], 0.0))  # c = 1
    weights = d_time[:, :, None] * dominance[None, :, :]  # [N, S, K]
    num = np.einsum("nsk,sk->nk", weights, targets)
    den = weights.sum(1) + 1e-9
    return np.clip(num / den, 0.0, 1.0)


def mouth_motion(phones: Sequence[TimedPhone], num_frames: int, fps: float = 25.0,
                 style: ArticulationStyle = ArticulationStyle()) -> np.ndarray:
    """ARKit expression ``[num_frames, E]`` with the mouth channels filled from ``phones`` (others 0).

    Each frame is the mean of the trajectories over its interval ``[i / fps, (i + 1) / fps)``.
    """
    sub = max(1, int(round(SAMPLE_HZ / fps)))
    times = (np.arange(num_frames * sub) + 0.5) / (fps * sub)
    tracks = articulator_tracks(phones, times, style).reshape(num_frames, sub, -1).mean(1)
    jaw, close, funnel, pucker, stretch, upper, lower, press, roll = tracks.T
    out = np.zeros((num_frames, ARKIT_LAYOUT.size), dtype=np.float32)
    idx = {name: i for i, name in enumerate(ARKIT_LAYOUT.channels)}
    out[:, idx["jawOpen"]] = jaw
    out[:, idx["mouthClose"]] = close * jaw
    out[:, idx["mouthFunnel"]] = funnel
    out[:, idx["mouthPucker"]] = pucker
    for side in ("Left", "Right"):
        out[:, idx[f"mouthStretch{side}"]] = stretch
        out[:, idx[f"mouthUpperUp{side}"]] = upper
        out[:, idx[f"mouthLowerDown{side}"]] = lower
        out[:, idx[f"mouthPress{side}"]] = press
    out[:, idx["mouthRollLower"]] = roll
    return out

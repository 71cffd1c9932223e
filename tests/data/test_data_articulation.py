"""Coarticulated mouth motion: anticipation, carry-over, closure, rounding, continuity."""

from __future__ import annotations

import numpy as np

from talkinghead.data.articulation import ARTICULATORS, TimedPhone, articulator_tracks, mouth_motion
from talkinghead.face.model import ARKIT_LAYOUT


def seq(*items: tuple[str, float]) -> list[TimedPhone]:
    out, t = [], 0.0
    for label, dur in items:
        out.append(TimedPhone(label, t, t + dur, 1))
        t += dur
    return out


def test_closure_on_bilabials_between_open_vowels() -> None:
    phones = seq(("SIL", 0.2), ("AA", 0.15), ("B", 0.07), ("AA", 0.15), ("SIL", 0.2))
    motion = mouth_motion(phones, 20)
    jaw = motion[:, ARKIT_LAYOUT.channels.index("jawOpen")]
    close = motion[:, ARKIT_LAYOUT.channels.index("mouthClose")]
    t = (np.arange(20) + 0.5) / 25
    b_frame = int(np.argmin(np.abs(t - 0.385)))
    a_frame = int(np.argmin(np.abs(t - 0.275)))
    assert jaw[a_frame] - close[a_frame] > 0.3  # open on the vowel
    assert jaw[b_frame] - close[b_frame] < 0.25 * (jaw[a_frame] - close[a_frame])  # lips meet on /b/


def test_anticipatory_rounding_and_carry_over() -> None:
    """Rounding of /uw/ starts before it (during /s/) and lingers after it; no step."""
    phones = seq(("SIL", 0.3), ("S", 0.1), ("UW", 0.2), ("S", 0.1), ("SIL", 0.3))
    times = np.arange(0, 1.0, 0.005)
    pucker = articulator_tracks(phones, times)[:, ARTICULATORS.index("pucker")]
    at = {name: pucker[np.argmin(np.abs(times - t))] for name, t in
          (("before_s", 0.02), ("s1", 0.35), ("uw", 0.5), ("s2", 0.65), ("after", 0.9))}
    assert at["uw"] > 0.5
    assert at["s1"] > 0.15 and at["s2"] > 0.1  # anticipation and carry-over
    assert at["before_s"] < 0.05 and at["after"] < 0.05
    assert np.abs(np.diff(pucker)).max() < 0.05  # 5 ms steps: continuous, not a step function


def test_open_vowels_open_the_jaw_more_than_close_ones() -> None:
    for wide, narrow in (("AA", "IY"), ("AE", "UW")):
        a = mouth_motion(seq(("SIL", 0.2), (wide, 0.3), ("SIL", 0.2)), 18)
        b = mouth_motion(seq(("SIL", 0.2), (narrow, 0.3), ("SIL", 0.2)), 18)
        j = ARKIT_LAYOUT.channels.index("jawOpen")
        assert a[:, j].max() > b[:, j].max() + 0.2


def test_pauses_relax_the_mouth() -> None:
    motion = mouth_motion(seq(("AA", 0.2), ("SIL", 1.0)), 30)
    assert np.abs(motion[-5:]).max() < 0.05


def test_a_louder_vowel_opens_the_jaw_wider() -> None:
    """Vocal effort: +6 dB opens a vowel's jaw by 10 ** (EFFORT_JAW * 6 / 20) (a lone vowel: the track is its
    target); in context the vowel opens wider, its neighbours' consonant targets stay as they were."""
    from dataclasses import replace

    from talkinghead.data.articulation import EFFORT_JAW

    jaw = ARTICULATORS.index("jaw")
    times = np.array([0.15])
    alone = seq(("AH", 0.3))  # stressed AA is at the clip (jawOpen 1) already
    loud_alone = articulator_tracks([replace(alone[0], effort=6.0)], times)[0, jaw]
    ratio = loud_alone / articulator_tracks(alone, times)[0, jaw]
    assert abs(ratio - 10.0 ** (EFFORT_JAW * 6.0 / 20.0)) < 1e-6 and ratio > 1.3
    phones = seq(("SIL", 0.2), ("T", 0.1), ("AH", 0.3), ("SIL", 0.2))
    louder = [replace(p, effort=6.0) if p.label == "AH" else p for p in phones]
    normal, loud = articulator_tracks(phones, np.array([0.45])), articulator_tracks(louder, np.array([0.45]))
    assert loud[0, jaw] > 1.2 * normal[0, jaw]

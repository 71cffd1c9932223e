"""espeak-ng speech synthesis: durations, phoneme timings and counts match the text; prosody presets."""

from __future__ import annotations

import numpy as np
import pytest

from talkinghead.audio import tts
from talkinghead.errors import TalkingHeadError

TEXT = "Hello world, the quick brown fox jumps over the lazy dog."


def test_phones_match_text_and_tile_audio() -> None:
    speech = tts.synthesize(TEXT)
    assert speech.audio.sample_rate == 16_000
    expected = tts.text_to_phonemes(TEXT)
    spoken = [p.label for p in speech.spoken_phones()]
    # every phoneme espeak reads in the text is spoken, in order, once
    assert spoken == [p for word in expected for p in word]
    assert [w.text for w in speech.words] == ["Hello", "world", "the", "quick", "brown", "fox", "jumps", "over",
                                              "the", "lazy", "dog"]
    # segments are contiguous from 0 to the end of the audio
    assert speech.phones[0].start == 0.0
    for a, b in zip(speech.phones, speech.phones[1:], strict=False):
        assert a.end == pytest.approx(b.start)
        assert b.end > b.start
    assert speech.phones[-1].end == pytest.approx(speech.duration, abs=1e-3)
    # the comma gives a pause between "world" and "the"
    world, the = speech.words[1], speech.words[2]
    assert the.start - world.end > 0.05


def test_timings_locate_the_sound() -> None:
    """Voiced phones carry energy, the pauses around them are quiet."""
    speech = tts.synthesize("Mama, ma.")
    x = speech.audio.samples
    sr = speech.audio.sample_rate

    def rms(seg: object) -> float:
        s, e = int(seg.start * sr), int(seg.end * sr)  # type: ignore[attr-defined]
        return float(np.sqrt(np.mean(x[s:e] ** 2)))

    vowels = [p for p in speech.phones if "ɑ" in p.label or "ə" in p.label or "a" in p.label]
    pauses = [p for p in speech.phones if p.label == tts.SILENCE and p.end - p.start > 0.05]
    assert vowels and pauses
    assert min(rms(v) for v in vowels) > 5 * max(rms(p) for p in pauses)


def test_rate_and_emotion_change_duration() -> None:
    slow = tts.synthesize(TEXT, tts.VoiceConfig(rate=120))
    fast = tts.synthesize(TEXT, tts.VoiceConfig(rate=300))
    assert slow.duration > 1.8 * fast.duration
    assert len(slow.spoken_phones()) == len(fast.spoken_phones())
    sad = tts.synthesize(TEXT, tts.VoiceConfig(emotion="sad", intensity=3))
    angry = tts.synthesize(TEXT, tts.VoiceConfig(emotion="angry", intensity=3))
    assert sad.duration > angry.duration
    assert np.sqrt(np.mean(angry.audio.samples ** 2)) > np.sqrt(np.mean(sad.audio.samples ** 2))


def test_longer_text_longer_speech() -> None:
    one = tts.synthesize("One sentence here.")
    two = tts.synthesize("One sentence here. And a second sentence after it.")
    assert two.duration > 1.5 * one.duration
    assert len(two.spoken_phones()) > len(one.spoken_phones())


def test_voice_variant_changes_pitch() -> None:
    import librosa

    def median_f0(speech: tts.Speech) -> float:
        f0, voiced, _ = librosa.pyin(speech.audio.samples, fmin=60, fmax=500, sr=16_000, frame_length=1024)
        return float(np.nanmedian(f0[voiced]))

    low = tts.synthesize("Mama made more lemonade.", tts.VoiceConfig(variant="m3", pitch=20))
    high = tts.synthesize("Mama made more lemonade.", tts.VoiceConfig(variant="f3", pitch=80))
    assert median_f0(high) > 1.4 * median_f0(low)


def test_intensity_scales_prosody() -> None:
    assert tts.emotion_prosody("neutral", 3) == tts.Prosody()
    levels = [tts.emotion_prosody("happy", i).pitch for i in (1, 2, 3)]
    assert 0 < levels[0] < levels[1] < levels[2] == tts.EMOTION_PROSODY["happy"].pitch
    assert set(tts.EMOTION_PROSODY) == set(tts.EMOTIONS)


@pytest.mark.parametrize("variant", ["f2", "m3", "adam"])  # adam uses espeak's Klatt synthesiser
def test_deterministic_whatever_was_spoken_before(variant: str) -> None:
    a = tts.synthesize(TEXT, tts.VoiceConfig(variant=variant))
    tts.synthesize("Something else entirely, spoken in between.", tts.VoiceConfig(variant="klatt", rate=300))
    b = tts.synthesize(TEXT, tts.VoiceConfig(variant=variant))
    assert np.array_equal(a.audio.samples, b.audio.samples) and a.phones == b.phones


@pytest.mark.parametrize("kwargs, text", [({}, "   "), ({"voice": "xx-nope"}, "hi"), ({"rate": 20}, "hi"),
                                          ({"emotion": "bored"}, "hi"), ({}, "...")])
def test_bad_input_is_one_clear_error(kwargs: dict, text: str) -> None:
    with pytest.raises(TalkingHeadError):
        tts.synthesize(text, tts.VoiceConfig(**kwargs))

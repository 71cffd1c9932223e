from __future__ import annotations

import difflib
import json
from pathlib import Path

import numpy as np
import pytest

from talkinghead.audio.align import Alignment, align, transcript_words
from talkinghead.audio.phonemes import (
    ARPABET,
    PHONEME_IDS,
    PHONEME_VOCAB,
    SILENCE,
    SILENCE_ID,
    VISEMES,
    PhoneSegment,
    frame_tokens,
    frame_visemes,
    ipa_to_arpabet,
    normalize_phone,
    phoneme_to_viseme,
)
from talkinghead.cli import main
from talkinghead.errors import TalkingHeadError
from talkinghead.io.audio import save_wav


def test_vocabulary_and_visemes_cover_every_phoneme() -> None:
    assert PHONEME_VOCAB[:2] == ("<pad>", "SIL") and len(PHONEME_VOCAB) == 41 and len(set(PHONEME_VOCAB)) == 41
    assert {phoneme_to_viseme(p) for p in ARPABET} | {"sil"} == set(VISEMES)
    assert phoneme_to_viseme("M") == phoneme_to_viseme("B") == "PP"
    assert phoneme_to_viseme("UW1") == "U" and phoneme_to_viseme("+NSN+") == "sil"
    assert normalize_phone("ah0") == "AH" and normalize_phone("sil") == SILENCE
    with pytest.raises(TalkingHeadError):
        normalize_phone("QQ")


@pytest.mark.parametrize("ipa,arpabet", [
    ("ˈaɪ", ["AY"]), ("həlˈoʊ", ["HH", "AH", "L", "OW"]), ("əl", ["AH", "L"]), ("ɾ", ["T"]),
    ("θˈɜːɾi", ["TH", "ER", "T", "IY"]), ("dʒˈʌmps", ["JH", "AH", "M", "P", "S"]), ("ˈɑːɹ", ["AA", "R"]),
    ("ʃˈʊɹ", ["SH", "UH", "R"]), ("bˈʌʔn̩", ["B", "AH", "T", "AH", "N"]), ("ɡˈɛt", ["G", "EH", "T"]),
    ("sil", ["SIL"]), ("", ["SIL"]), ("ᵻ", ["IH"]), ("ɐ", ["AH"]),
    ("a:", ["AA"]), ("ˈa:ɹ", ["AA", "R"]), ("eʲ", ["EH"]), ("t̪", ["T"]), ("t̪ʰeʲ", ["T", "EH"]),  # en-029, scots
])
def test_ipa_to_arpabet(ipa: str, arpabet: list[str]) -> None:
    assert ipa_to_arpabet(ipa) == arpabet


def test_every_espeak_phoneme_of_a_pangram_maps() -> None:
    from talkinghead.audio.tts import text_to_phonemes

    text = ("The quick brown fox jumps over the lazy dog; pleasure, vision, church, judge, thing, this, "
            "hour, fire, poor, cure, near, square, start, north, button, little, water, measure.")
    for word in text_to_phonemes(text):
        for p in word:
            assert all(q in PHONEME_IDS for q in ipa_to_arpabet(p)), p
    with pytest.raises(TalkingHeadError, match="no ARPAbet"):
        ipa_to_arpabet("ǃ")


def test_frame_tokens_take_the_phone_at_each_frame_centre() -> None:
    segs = [PhoneSegment("SIL", 0.0, 0.1), PhoneSegment("HH", 0.1, 0.18), PhoneSegment("AY1", 0.18, 0.35)]
    tok = frame_tokens(segs, 10, fps=25.0)
    names = [PHONEME_VOCAB[i] for i in tok]
    # centres 0.02 0.06 0.10 0.14 0.18 0.22 0.26 0.30 0.34 0.38
    assert names == ["SIL", "SIL", "HH", "HH", "AY", "AY", "AY", "AY", "AY", "SIL"]
    ipa = frame_tokens([PhoneSegment("əl", 0.0, 0.4)], 10, labels="ipa")  # split evenly into AH, L
    assert [PHONEME_VOCAB[i] for i in ipa] == ["AH"] * 5 + ["L"] * 5
    assert (frame_tokens([], 4) == SILENCE_ID).all()
    assert frame_visemes(tok).tolist()[4] == VISEMES.index("aa")


def test_transcript_words() -> None:
    assert transcript_words("Hello, world! It's twenty-one.") == ["hello", "world", "it's", "twenty", "one"]


def _expanded(phones: list[PhoneSegment], ipa: bool) -> list[tuple[str, float, float]]:
    out = []
    for p in phones:
        labels = ipa_to_arpabet(p.label) if ipa else [p.label]
        width = (p.end - p.start) / len(labels)
        out += [(q, p.start + j * width, p.start + (j + 1) * width) for j, q in enumerate(labels)]
    return [o for o in out if o[0] != SILENCE]


def boundary_errors(reference: list[PhoneSegment], aligned: list[PhoneSegment]) -> tuple[np.ndarray, int]:
    """|boundary differences| of phones matched by label sequence alignment, and the match count."""
    ref, hyp = _expanded(reference, ipa=True), _expanded(aligned, ipa=False)
    matcher = difflib.SequenceMatcher(a=[r[0] for r in ref], b=[h[0] for h in hyp], autojunk=False)
    errors = []
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            r, h = ref[block.a + k], hyp[block.b + k]
            errors += [abs(r[1] - h[1]), abs(r[2] - h[2])]
    return np.array(errors), len(errors) // 2


@pytest.mark.parametrize("voice", [dict(), dict(variant="f3", pitch=60, rate=190)])
def test_alignment_recovers_espeak_phone_boundaries(voice: dict) -> None:
    from talkinghead.audio.tts import VoiceConfig, synthesize

    text = "The quick brown fox jumps over the lazy dog. She sells sea shells by the sea shore."
    speech = synthesize(text, VoiceConfig(**voice))
    result = align(speech.audio, text)
    errors, matched = boundary_errors(speech.phones, result.phones)
    assert matched >= 0.9 * len(_expanded(speech.phones, ipa=True))
    assert np.median(errors) < 0.030, np.median(errors)
    # phones tile the clip
    assert result.phones[0].start == 0.0 and abs(result.phones[-1].end - speech.duration) < 1e-6
    assert all(a.end == pytest.approx(b.start) for a, b in zip(result.phones, result.phones[1:], strict=False))
    assert [w.word for w in result.words][:3] == ["the", "quick", "brown"]


def test_unknown_words_get_an_espeak_pronunciation_and_cli_writes_json(tmp_path: Path) -> None:
    from talkinghead.audio.tts import synthesize

    text = "Zorbly said 42."
    speech = synthesize(text)
    wav = save_wav(tmp_path / "s.wav", speech.audio)
    out = tmp_path / "phones.json"
    assert main(["align", str(wav), "--text", text, "-o", str(out)]) == 0
    data = json.loads(out.read_text())
    assert [w["word"] for w in data["words"]] == ["zorbly", "said", "42"]
    assert len(data["tokens"]) == round(speech.duration * 25 + 1e-9)
    loaded = Alignment.load(out)
    assert loaded.phones[0].start == 0.0 and loaded.tokens().shape == (len(data["tokens"]),)
    assert main(["align", str(wav), "--text", "  ,, ", "-o", str(tmp_path / "x.json")]) == 2
    assert not (tmp_path / "x.json").exists()


def test_features_cli(tmp_path: Path) -> None:
    from audio_helpers import chirp_tone

    from talkinghead.io.audio import Audio

    x, _ = chirp_tone(1.3)
    wav = save_wav(tmp_path / "t.wav", Audio(x))
    out = tmp_path / "f.npz"
    assert main(["features", str(wav), "-o", str(out), "--spec", "cpu", "--fps", "30"]) == 0
    with np.load(out) as z:
        spec = json.loads(str(z["spec"]))
        assert z["features"].shape == (39, spec["dims"]) and spec["window"] == 5 and spec["fps"] == 30.0
    assert main(["features", str(wav), "-o", str(out), "--spec", "dimitra"]) == 2  # needs --encoder
    assert main(["features", str(wav), "-o", str(out), "--spec", "nope"]) == 2

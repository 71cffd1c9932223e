"""Forced alignment of speech and its transcript with pocketsphinx: ARPAbet phones with times.

Dimitra (III-B.2) obtains "phonemes with timestamps from an audio-input and the corresponding text
transcript" with a phoneme aligner (their [38]); here the aligner is CMU pocketsphinx 5.1.1, whose
wheel ships the US-English acoustic model and the CMU pronouncing dictionary, so it runs offline.

Recipe (two passes, as pocketsphinx's own alignment example): build a word grammar from the
transcript (``set_align_text``), decode once to find the word sequence with optional silences, then
``set_alignment`` and decode again to get phone and state segments; times are 10 ms frames. The beams
are widened from pocketsphinx's defaults because the default beams lose the path on a grammar
this strict for some utterances (observed on espeak speech), and the alignment is retried once with
still wider beams before giving up.

Words missing from the CMU dictionary (names, rare words, numbers written as digits) get a
pronunciation from espeak-ng's letter-to-sound rules (IPA, via :mod:`talkinghead.audio.tts`) mapped to
ARPAbet with :func:`talkinghead.audio.phonemes.ipa_to_arpabet`; if that fails too, a
:class:`TalkingHeadError` names the word.

The result tiles ``[0, duration]`` with :class:`PhoneSegment` s (gaps become ``SIL``) and also lists the
words. Phoneme conditions are optional downstream: without a transcript nothing here is needed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from talkinghead.audio.frames import DEFAULT_FPS, frame_count
from talkinghead.audio.phonemes import SILENCE, PhoneSegment, frame_tokens, ipa_to_arpabet, normalize_phone
from talkinghead.errors import TalkingHeadError
from talkinghead.io.audio import Audio
from talkinghead.io.files import atomic_path

FRAME_SECONDS = 0.01  # pocketsphinx's 100 frames a second
_BEAMS = ({"beam": 1e-80, "wbeam": 1e-60, "pbeam": 1e-80}, {"beam": 1e-120, "wbeam": 1e-100, "pbeam": 1e-120})


@dataclass(frozen=True)
class WordTiming:
    word: str
    start: float
    end: float


@dataclass
class Alignment:
    """Phones (ARPAbet, ``SIL`` for pauses) tiling ``[0, duration]`` and the words with their times."""

    phones: list[PhoneSegment]
    words: list[WordTiming] = field(default_factory=list)
    transcript: str = ""
    duration: float = 0.0

    def tokens(self, fps: float = DEFAULT_FPS, num_frames: int | None = None) -> np.ndarray:
        """Per-frame phoneme token ids (Dimitra III-B.2), ``[T]`` with ``T = frame_count(duration)``."""
        if num_frames is None:
            num_frames = frame_count(duration=self.duration, fps=fps)
        return frame_tokens(self.phones, num_frames, fps)

    def to_dict(self) -> dict[str, Any]:
        return {
            "transcript": self.transcript,
            "duration": self.duration,
            "phones": [{"label": p.label, "start": round(p.start, 4), "end": round(p.end, 4)} for p in self.phones],
            "words": [{"word": w.word, "start": round(w.start, 4), "end": round(w.end, 4)} for w in self.words],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Alignment:
        try:
            return cls(
                phones=[PhoneSegment(str(p["label"]), float(p["start"]), float(p["end"])) for p in data["phones"]],
                words=[WordTiming(str(w["word"]), float(w["start"]), float(w["end"])) for w in data.get("words", [])],
                transcript=str(data.get("transcript", "")),
                duration=float(data.get("duration", 0.0)),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise TalkingHeadError(f"The phone alignment data is malformed ({err}).") from err

    def save(self, path: str | Path) -> Path:
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(self.to_dict(), indent=1) + "\n")
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> Alignment:
        try:
            return cls.from_dict(json.loads(Path(path).read_text()))
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as err:
            raise TalkingHeadError(f"{path} is not a readable phone alignment file.") from err


def transcript_words(text: str) -> list[str]:
    """Lower-case words of a transcript: punctuation dropped, hyphens split, apostrophes kept."""
    cleaned = re.sub(r"[^\w']+", " ", text.lower().replace("-", " ").replace("’", "'"))
    words = [w.strip("'") for w in cleaned.split()]
    return [w for w in words if w and not w.startswith("_")]


def _decoder(beams: dict[str, float]) -> Any:
    from pocketsphinx import Decoder

    return Decoder(samprate=16000, bestpath=False, loglevel="FATAL", **beams)


def _espeak_pronunciation(word: str) -> list[str]:
    try:
        from talkinghead.audio.tts import text_to_phonemes
    except ImportError as err:  # pragma: no cover - tts is part of the package
        raise TalkingHeadError(f"'{word}' is not in the pronouncing dictionary and no TTS is available.") from err
    phones: list[str] = []
    for word_phones in text_to_phonemes(word):
        for p in word_phones:
            phones.extend(ipa_to_arpabet(p))
    phones = [p for p in phones if p != SILENCE]
    if not phones:
        raise TalkingHeadError(f"The word '{word}' has no known pronunciation.")
    return phones


def _prepare(decoder: Any, words: list[str]) -> None:
    for w in words:
        if decoder.lookup_word(w) is None:
            decoder.add_word(w, " ".join(_espeak_pronunciation(w)), True)


def align(audio: Audio, transcript: str) -> Alignment:
    """Force-align ``audio`` (16 kHz) with ``transcript``; ARPAbet phones with start/end seconds."""
    if audio.sample_rate != 16_000:
        raise TalkingHeadError(f"Alignment needs 16 kHz audio, got {audio.sample_rate} Hz.")
    words = transcript_words(transcript)
    if not words:
        raise TalkingHeadError("The transcript has no words to align.")
    if audio.duration < 0.05 * len(words):
        raise TalkingHeadError(
            f"The audio ({audio.duration:.2f} s) is too short for a transcript of {len(words)} words."
        )
    pcm = (np.clip(audio.samples, -1.0, 1.0) * 32767).astype(np.int16).tobytes()
    last_error = ""
    for beams in _BEAMS:
        decoder = _decoder(beams)
        _prepare(decoder, words)
        try:
            decoder.set_align_text(" ".join(words))
            decoder.start_utt()
            decoder.process_raw(pcm, full_utt=True)
            decoder.end_utt()
            decoder.set_alignment()
            decoder.start_utt()
            decoder.process_raw(pcm, full_utt=True)
            decoder.end_utt()
            result = decoder.get_alignment()
        except RuntimeError as err:
            last_error = str(err)
            continue
        if result is not None:
            return _collect(result, audio.duration, transcript)
    raise TalkingHeadError(
        f"The audio could not be aligned with the transcript ({last_error or 'no path'}); check that the "
        "transcript matches the speech."
    )


def _collect(result: Any, duration: float, transcript: str) -> Alignment:
    phones: list[PhoneSegment] = []
    words: list[WordTiming] = []
    cursor = 0.0

    def add(label: str, start: float, end: float) -> None:
        end = min(end, duration)
        if end <= start:
            return
        if phones and label == SILENCE and phones[-1].label == SILENCE:
            phones[-1] = PhoneSegment(SILENCE, phones[-1].start, end)
        else:
            phones.append(PhoneSegment(label, start, end))

    for word in result:
        w_start = word.start * FRAME_SECONDS
        w_end = (word.start + word.duration) * FRAME_SECONDS
        name = str(word.name)
        if not name.startswith("<") and not name.startswith("+") and name.lower() not in ("sil",):
            words.append(WordTiming(re.sub(r"\(\d+\)$", "", name), w_start, min(w_end, duration)))
        for ph in word:
            start = ph.start * FRAME_SECONDS
            end = (ph.start + ph.duration) * FRAME_SECONDS
            if start > cursor:
                add(SILENCE, cursor, start)
            add(normalize_phone(str(ph.name)), max(start, cursor), end)
            cursor = max(cursor, min(end, duration))
    if cursor < duration:
        add(SILENCE, cursor, duration)
    return Alignment(phones, words, transcript, duration)


def align_file(audio_path: str | Path, transcript: str) -> Alignment:
    """Load any audio file (16 kHz mono) and align it with ``transcript``."""
    from talkinghead.io.audio import load_audio

    return align(load_audio(audio_path), transcript)

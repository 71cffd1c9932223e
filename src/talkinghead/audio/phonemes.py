"""One phoneme vocabulary for the whole project: ARPAbet, IPA -> ARPAbet, visemes, per-frame tokens.

Dimitra (III-B.2): "We employ a phoneme aligner, providing phonemes with timestamps from an audio-input
and the corresponding text transcript. Based on the timestamps we create a sequence of phonemes,
corresponding to the frame rate of the video and tokenize it." :func:`frame_tokens` does the last step
for phone segments from any source: pocketsphinx's forced alignment (:mod:`talkinghead.audio.align`,
ARPAbet) or espeak-ng's own timings (:mod:`talkinghead.audio.tts`, IPA, mapped with
:func:`ipa_to_arpabet`), so both land in the same :data:`PHONEME_VOCAB`.

* :class:`PhoneSegment`: a phone label with start and end in seconds (what datasets store).
* :data:`PHONEME_VOCAB`: ``<pad>`` (id 0, for batching), ``SIL`` (id 1: silence, pauses, noise), then the
  39 ARPAbet phonemes of the CMU dictionary without stress digits (ids 2-40).
* :func:`ipa_to_arpabet`: espeak-ng IPA (stress marks, length marks, r-coloured vowels, syllabic
  consonants, flaps, glottal stops) -> ARPAbet phones. Greedy longest match over a fixed table; a
  symbol outside it raises :class:`TalkingHeadError`.
* :data:`VISEMES` / :func:`phoneme_to_viseme`: the 15 visemes of the MPEG-4 / Oculus lip-sync
  convention (``sil PP FF TH DD kk CH SS nn RR aa E I O U``), a many-to-one map of ARPAbet.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from talkinghead.audio.frames import DEFAULT_FPS, frame_times
from talkinghead.errors import TalkingHeadError

PAD = "<pad>"
SILENCE = "SIL"
ARPABET = (
    "AA", "AE", "AH", "AO", "AW", "AY", "B", "CH", "D", "DH", "EH", "ER", "EY", "F", "G", "HH", "IH", "IY",
    "JH", "K", "L", "M", "N", "NG", "OW", "OY", "P", "R", "S", "SH", "T", "TH", "UH", "UW", "V", "W", "Y",
    "Z", "ZH",
)
PHONEME_VOCAB: tuple[str, ...] = (PAD, SILENCE, *ARPABET)
PHONEME_IDS: dict[str, int] = {p: i for i, p in enumerate(PHONEME_VOCAB)}
PAD_ID = PHONEME_IDS[PAD]
SILENCE_ID = PHONEME_IDS[SILENCE]

# Labels of silence and non-speech from the aligners and the TTS.
_SILENT_LABELS = {"SIL", "SP", "SPN", "NSN", "+NSN+", "+SPN+", "+BREATH+", "+NOISE+", "+COUGH+", "+UM+",
                  "+UH+", "<SIL>", "<S>", "</S>", "", "_", "PAU", "SILENCE"}

# IPA (espeak-ng en / en-us output, stress and length removed as keys show) -> ARPAbet.
_IPA: dict[str, tuple[str, ...]] = {
    # vowels and diphthongs
    "ɑː": ("AA",), "ɑ": ("AA",), "ɒ": ("AA",), "a": ("AA",), "aː": ("AA",), "æ": ("AE",), "ʌ": ("AH",),
    "ə": ("AH",), "ɐ": ("AH",), "ɜ": ("ER",), "ɔː": ("AO",), "ɔ": ("AO",), "oː": ("AO",), "aʊ": ("AW",),
    "aɪ": ("AY",), "ɑɪ": ("AY",), "ɛ": ("EH",), "e": ("EH",), "ɚ": ("ER",), "ɜː": ("ER",), "ɝ": ("ER",),
    "eɪ": ("EY",), "ɪ": ("IH",), "ᵻ": ("IH",), "ɨ": ("IH",), "i": ("IY",), "iː": ("IY",), "oʊ": ("OW",),
    "əʊ": ("OW",), "o": ("OW",), "ɔɪ": ("OY",), "ʊ": ("UH",), "u": ("UW",), "uː": ("UW",), "ʉ": ("UW",),
    "ʉː": ("UW",), "eː": ("EH",), "ɛː": ("EH",),
    # r-coloured and centring vowels (espeak writes some as one phoneme)
    "ɑːɹ": ("AA", "R"), "ɑɹ": ("AA", "R"), "ɔːɹ": ("AO", "R"), "ɔɹ": ("AO", "R"), "oːɹ": ("AO", "R"),
    "oɹ": ("AO", "R"), "ɛɹ": ("EH", "R"), "eɹ": ("EH", "R"), "ɪɹ": ("IH", "R"), "iɹ": ("IY", "R"),
    "ʊɹ": ("UH", "R"), "uɹ": ("UH", "R"), "aɪɚ": ("AY", "ER"), "aɪə": ("AY", "ER"), "aʊɚ": ("AW", "ER"),
    "aʊə": ("AW", "ER"), "ɪə": ("IH", "R"), "eə": ("EH", "R"), "ʊə": ("UH", "R"), "ɛə": ("EH", "R"),
    # syllabic consonants
    "əl": ("AH", "L"), "l̩": ("AH", "L"), "n̩": ("AH", "N"), "m̩": ("AH", "M"), "əm": ("AH", "M"),
    "ən": ("AH", "N"),
    # consonants
    "p": ("P",), "b": ("B",), "t": ("T",), "d": ("D",), "k": ("K",), "ɡ": ("G",), "g": ("G",),
    "tʃ": ("CH",), "t͡ʃ": ("CH",), "dʒ": ("JH",), "d͡ʒ": ("JH",), "f": ("F",), "v": ("V",), "θ": ("TH",),
    "ð": ("DH",), "s": ("S",), "z": ("Z",), "ʃ": ("SH",), "ʒ": ("ZH",), "h": ("HH",), "ɦ": ("HH",),
    "x": ("HH",), "ç": ("HH",), "m": ("M",), "n": ("N",), "ŋ": ("NG",), "l": ("L",), "ɫ": ("L",),
    "ɹ": ("R",), "r": ("R",), "ɾ": ("T",), "ɾ̃": ("N",), "ʔ": ("T",), "w": ("W",), "ʍ": ("W",), "j": ("Y",),
}
# stress, length, ties, syllabic/unreleased marks; palatalised/aspirated/labialised (ʲ ʰ ʷ, en-gb-scotland
# "eʲ"), dental and voiceless diacritics (t̪ in en-029): secondary articulations ARPAbet does not write
_IGNORED = set("ˈˌːˑ‿-_ .'\u0361\u0329\u031a\u02de" "ʲʰʷ\u032a\u0325")
_MAX_KEY = max(len(k) for k in _IPA)

VISEMES = ("sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR", "aa", "E", "I", "O", "U")
_VISEME_OF: dict[str, str] = {
    PAD: "sil", SILENCE: "sil",
    "P": "PP", "B": "PP", "M": "PP",
    "F": "FF", "V": "FF",
    "TH": "TH", "DH": "TH",
    "T": "DD", "D": "DD",
    "K": "kk", "G": "kk", "NG": "kk", "HH": "kk",
    "CH": "CH", "JH": "CH", "SH": "CH", "ZH": "CH",
    "S": "SS", "Z": "SS",
    "N": "nn", "L": "nn", "Y": "nn",
    "R": "RR", "ER": "RR",
    "AA": "aa", "AE": "aa", "AH": "aa", "AY": "aa", "AW": "aa",
    "EH": "E", "EY": "E",
    "IH": "I", "IY": "I",
    "AO": "O", "OW": "O", "OY": "O",
    "UH": "U", "UW": "U", "W": "U",
}
VISEME_IDS: dict[str, int] = {v: i for i, v in enumerate(VISEMES)}


def normalize_phone(label: str) -> str:
    """An aligner's or dictionary's phone label -> a :data:`PHONEME_VOCAB` entry (stress stripped).

    ``"AH0"`` -> ``"AH"``, ``"sil"``/``"+NSN+"``/``"<sil>"`` -> ``"SIL"``; an unknown label raises.
    """
    up = label.strip().upper().rstrip("012")
    if up in _SILENT_LABELS:
        return SILENCE
    if up in PHONEME_IDS and up != PAD.upper():
        return up
    raise TalkingHeadError(f"'{label}' is not an ARPAbet phoneme of the CMU dictionary.")


def ipa_to_arpabet(ipa: str) -> list[str]:
    """espeak-ng IPA -> ARPAbet phones (stress and length dropped).

    Accepts one phoneme (``"ˈaɪ"`` -> ``["AY"]``, ``"əl"`` -> ``["AH", "L"]``) or a whole word or
    transcription (``"həlˈoʊ"`` -> ``["HH", "AH", "L", "OW"]``), read greedily longest symbol first.
    ``"sil"`` or an empty label (espeak's pauses) give ``["SIL"]``.
    """
    # some voices (en-029) write the length mark as an ASCII colon ("a:")
    text = ipa.strip().replace("ˈ", "").replace("ˌ", "").replace(":", "ː")
    if text.lower() in ("sil", "", "_", "pau"):
        return [SILENCE]
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] in _IGNORED:
            i += 1
            continue
        for size in range(min(_MAX_KEY, len(text) - i), 0, -1):
            piece = text[i : i + size]
            if piece in _IPA:
                out.extend(_IPA[piece])
                i += size
                break
        else:
            raise TalkingHeadError(f"The IPA symbol '{text[i]}' in '{ipa}' has no ARPAbet equivalent here.")
    return out


def phoneme_to_viseme(phone: str) -> str:
    """ARPAbet phone (stress allowed) -> one of :data:`VISEMES`."""
    return _VISEME_OF[normalize_phone(phone)]


def phoneme_ids(phones: Sequence[str]) -> np.ndarray:
    """ARPAbet labels -> token ids in :data:`PHONEME_VOCAB` (``[P]`` int64)."""
    return np.array([PHONEME_IDS[normalize_phone(p)] for p in phones], dtype=np.int64)


@dataclass(frozen=True)
class PhoneSegment:
    """One phone with its time span in seconds (aligner, TTS or dataset; ARPAbet or espeak IPA label)."""

    label: str
    start: float
    end: float


class _Segment(Protocol):
    @property
    def label(self) -> str: ...
    @property
    def start(self) -> float: ...
    @property
    def end(self) -> float: ...


def frame_tokens(segments: Sequence[_Segment], num_frames: int, fps: float = DEFAULT_FPS,
                 labels: str = "arpabet") -> np.ndarray:
    """Per-frame phoneme tokens: frame ``i`` takes the phone covering its centre ``(i + 0.5) / fps``.

    ``segments``: phone segments (``label``, ``start``, ``end`` in seconds; ARPAbet, or espeak IPA with
    ``labels="ipa"``, whose multi-phone symbols are split evenly over their time). Frames no segment
    covers are ``SIL``. Returns ``[num_frames]`` int64 ids in :data:`PHONEME_VOCAB`.
    """
    if labels not in ("arpabet", "ipa"):
        raise TalkingHeadError(f"Phone labels must be 'arpabet' or 'ipa', got '{labels}'.")
    starts, ends, ids = [], [], []
    for seg in segments:
        if seg.end <= seg.start:
            continue
        phones = ipa_to_arpabet(seg.label) if labels == "ipa" else [normalize_phone(seg.label)]
        width = (seg.end - seg.start) / len(phones)
        for j, p in enumerate(phones):
            starts.append(seg.start + j * width)
            ends.append(seg.start + (j + 1) * width)
            ids.append(PHONEME_IDS[p])
    out = np.full(num_frames, SILENCE_ID, dtype=np.int64)
    if not ids:
        return out
    order = np.argsort(starts, kind="stable")
    s, e, v = np.asarray(starts)[order], np.asarray(ends)[order], np.asarray(ids)[order]
    centres = frame_times(num_frames, fps)
    k = np.searchsorted(s, centres, side="right") - 1
    inside = (k >= 0) & (centres < e[np.clip(k, 0, None)])
    out[inside] = v[k[inside]]
    return out


def frame_visemes(tokens: np.ndarray) -> np.ndarray:
    """Per-frame phoneme ids -> viseme ids in :data:`VISEMES` (same shape)."""
    table = np.array([VISEME_IDS[_VISEME_OF[p]] for p in PHONEME_VOCAB], dtype=np.int64)
    return table[np.asarray(tokens)]

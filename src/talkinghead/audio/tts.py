"""Speech synthesis with espeak-ng: text to 16 kHz speech with exact phoneme timings.

DESIGN.md, audio frontend ("TTS"; text instead of audio for ``generate --text``) and the synthetic
corpus ("speech from espeak-ng with emotion-dependent prosody; phoneme timings"). None of the five
papers synthesises speech; this module stands in for recorded speech (MEAD, HDTF) so that models can be
trained and tested offline.

The engine is libespeak-ng 1.52 as bundled by the ``espeakng-loader`` wheel (no system package), driven
through ``ctypes`` with the C API of ``speak_lib.h``:

- ``espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, ..., espeakINITIALIZE_PHONEME_EVENTS | _IPA)``;
- ``espeak_SetSynthCallback``: receives the 22 050 Hz int16 wave in chunks together with events;
  ``espeakEVENT_PHONEME`` events carry the IPA name of each phoneme and ``espeakEVENT_WORD`` events the
  word's character span, both with the exact sample index (``sample``) where it starts in the wave.
  A phoneme lasts until the next phoneme (or pause) event, so the segments tile the audio with no gap;
  empty phoneme names are pauses and become ``"sil"`` segments;
- ``espeak_SetParameter`` for rate (words per minute), base pitch and pitch range (0-100), volume and
  word gap; voices are ``language+variant`` names (``en-us+f3``).

The wave is resampled to 16 kHz (polyphase, 320/441); timings are kept in seconds, so they stay exact.

Emotion prosody: :data:`EMOTION_PROSODY` gives, for each of MEAD's eight emotions at full intensity
(level 3), a change of rate, pitch, pitch range, loudness and word gap relative to the speaker's own
voice, loosely following the acoustic correlates reported for acted emotional speech (anger and joy:
faster, higher, wider; sadness: slower, lower, narrower, softer; fear: fast and high with a narrow
range; surprise: high with the widest range; disgust and contempt: slow and low). Levels 1 and 2 scale
the change by 1/3 and 2/3. These presets are this project's choice, not values from a paper.

espeak-ng keeps global state, so synthesis is serialised by a lock within a process; the library is
initialised lazily once, and a forked process inherits it together with the clean-state snapshot.
"""

from __future__ import annotations

import ctypes
import struct
import threading
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from talkinghead.audio.phonemes import PhoneSegment
from talkinghead.config import Config
from talkinghead.errors import TalkingHeadError
from talkinghead.io.audio import SAMPLE_RATE, Audio

ESPEAK_RATE = 22_050
SILENCE = "sil"
EMOTIONS = ("neutral", "angry", "contempt", "disgusted", "fear", "happy", "sad", "surprised")
INTENSITIES = (1, 2, 3)

# espeak-ng's English voices (language part of a voice name) and its voice variants that sound like
# people (the robotic, whispering and novelty variants are left out of the corpus but still usable).
ENGLISH_VOICES = ("en-us", "en", "en-gb-x-rp", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-gbcwmd",
                  "en-029", "en-us-nyc")
MALE_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "adam", "alex", "andy", "benjamin", "david",
                 "ed", "edward", "ian", "john", "max", "michel", "paul", "rob", "robert", "travis", "victor",
                 "zac", "grandpa")
FEMALE_VARIANTS = ("f1", "f2", "f3", "f4", "f5", "annie", "linda", "steph", "belinda", "aunty", "grandma",
                   "anika", "Andrea", "Alicia", "shelby")

# espeak_EVENT_TYPE and option values from speak_lib.h
_EVENT_LIST_TERMINATED = 0
_EVENT_WORD = 1
_EVENT_PHONEME = 7
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INIT_PHONEME_EVENTS = 0x0001
_INIT_PHONEME_IPA = 0x0002
_CHARS_UTF8 = 1
_ENDPAUSE = 0x1000
_PARAM_RATE, _PARAM_VOLUME, _PARAM_PITCH, _PARAM_RANGE, _PARAM_WORDGAP = 1, 2, 3, 4, 7
_PHONEMES_IPA = 0x02


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    """``espeak_EVENT`` of speak_lib.h (40 bytes on 64-bit platforms)."""

    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint), ("text_position", ctypes.c_int),
                ("length", ctypes.c_int), ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", _EventId)]


# Static variables of libespeak-ng's wave generators that carry over from one utterance to the next
# (the pitch flutter phase, the Klatt time counter, the wave phase, the echo buffer, agc/amplitude
# followers). Restoring them to their values right after initialisation makes every synthesis start from
# the same state, so the same text and voice give the same samples whatever was spoken before.
_CARRYOVER_STATE = ("Flutter_ix", "time_count", "wavephase", "echo_buf", "agc", "amplitude2", "cycle_count",
                    "h_switch_sign", "maxh", "maxh2", "glotlast", "noise", "nlast", "vlast")


def _elf_objects(path: str, wanted: tuple[str, ...], anchor: str) -> tuple[int, dict[str, tuple[int, int]]]:
    """Offsets and sizes of local data objects named ``wanted`` (GCC suffixes ``.1234`` allowed) in the
    ELF64 symbol table of ``path``, and the offset of the function ``anchor`` (to find the load base)."""
    with open(path, "rb") as fh:
        data = fh.read()
    if data[:5] != b"\x7fELF\x02" or data[5] != 1:
        return -1, {}
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    found: dict[str, tuple[int, int]] = {}
    anchor_offset = -1
    for sec in sections:
        if sec[1] != 2:  # SHT_SYMTAB
            continue
        strtab = sections[sec[6]]
        for off in range(sec[4], sec[4] + sec[5], 24):
            name_off, info, _other, _shndx, value, size = struct.unpack_from("<IBBHQQ", data, off)
            end = data.index(b"\0", strtab[4] + name_off)
            name = data[strtab[4] + name_off:end].decode("ascii", "replace")
            base = name.split(".", 1)[0]
            if name == anchor:
                anchor_offset = value
            elif info & 0xF == 1 and base in wanted and (name == base or name[len(base) + 1:].isdigit()):
                if 0 < size <= 65536:
                    found[name] = (value, size)
    return anchor_offset, found


class _StateReset:
    """Snapshot of the carry-over state right after ``espeak_Initialize``; ``restore()`` before a synthesis."""

    def __init__(self, lib: Any, path: str) -> None:
        self.saved: list[tuple[int, bytes]] = []
        try:
            anchor, objects = _elf_objects(path, _CARRYOVER_STATE, "espeak_Synth")
        except (OSError, ValueError, IndexError, struct.error):
            anchor, objects = -1, {}
        if anchor < 0 or not any(n.startswith("Flutter_ix") for n in objects):
            from talkinghead.log import logger

            logger.warning("This libespeak-ng build has no symbol table: repeated synthesis may differ slightly.")
            return
        base = ctypes.cast(lib.espeak_Synth, ctypes.c_void_p).value
        assert base is not None
        base -= anchor
        self.saved = [(base + off, ctypes.string_at(base + off, size)) for off, size in objects.values()]

    def restore(self) -> None:
        for address, raw in self.saved:
            ctypes.memmove(address, raw, len(raw))


_EventRow = tuple[int, int, int, int, str]  # (type, sample, text position, length, phoneme)
_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


@dataclass(frozen=True)
class Prosody:
    """A change of voice relative to the speaker's own: rate and volume are factors, pitch and range
    offsets on espeak's 0-100 scales, word gap extra pause in 10 ms units."""

    rate: float = 1.0
    pitch: float = 0.0
    range: float = 0.0
    volume: float = 1.0
    word_gap: float = 0.0

    def scaled(self, amount: float) -> Prosody:
        """The change scaled by ``amount`` (0: none, 1: all of it)."""
        return Prosody(1.0 + (self.rate - 1.0) * amount, self.pitch * amount, self.range * amount,
                       1.0 + (self.volume - 1.0) * amount, self.word_gap * amount)


EMOTION_PROSODY: dict[str, Prosody] = {
    "neutral": Prosody(),
    "angry": Prosody(rate=1.15, pitch=8, range=25, volume=1.3, word_gap=0),
    "contempt": Prosody(rate=0.88, pitch=-6, range=-10, volume=0.9, word_gap=2),
    "disgusted": Prosody(rate=0.82, pitch=-8, range=-5, volume=0.95, word_gap=3),
    "fear": Prosody(rate=1.22, pitch=18, range=-15, volume=0.85, word_gap=1),
    "happy": Prosody(rate=1.1, pitch=14, range=30, volume=1.15, word_gap=0),
    "sad": Prosody(rate=0.75, pitch=-12, range=-30, volume=0.7, word_gap=4),
    "surprised": Prosody(rate=1.05, pitch=20, range=40, volume=1.15, word_gap=1),
}


def emotion_prosody(emotion: str, intensity: int = 2) -> Prosody:
    """The prosody of ``emotion`` at MEAD intensity level 1, 2 or 3."""
    if emotion not in EMOTION_PROSODY:
        raise TalkingHeadError(f"Unknown emotion '{emotion}'; use one of {', '.join(EMOTIONS)}.")
    if intensity not in INTENSITIES:
        raise TalkingHeadError(f"Emotion intensity must be 1, 2 or 3, got {intensity}.")
    return EMOTION_PROSODY[emotion].scaled(intensity / 3.0)


@dataclass(frozen=True)
class VoiceConfig(Config):
    """A voice: espeak-ng language voice, variant, base rate (words a minute), pitch and range (0-100),
    volume (0-200), word gap (10 ms units), and an emotion with its MEAD intensity (1-3)."""

    voice: str = "en-us"
    variant: str = ""
    rate: int = 165
    pitch: int = 50
    range: int = 50
    volume: int = 100
    word_gap: int = 0
    emotion: str = "neutral"
    intensity: int = 2

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {"rate": 220},
        "cpu": {},
        "paper": {},
        "female": {"variant": "f3", "pitch": 55},
        "male": {"variant": "m3", "pitch": 45},
    }

    @property
    def name(self) -> str:
        return f"{self.voice}+{self.variant}" if self.variant else self.voice

    def effective(self) -> dict[str, int]:
        """espeak parameter values after applying the emotion's prosody (clipped to espeak's ranges)."""
        p = emotion_prosody(self.emotion, self.intensity)
        return {
            "rate": int(np.clip(round(self.rate * p.rate), 80, 450)),
            "pitch": int(np.clip(round(self.pitch + p.pitch), 0, 99)),
            "range": int(np.clip(round(self.range + p.range), 0, 99)),
            "volume": int(np.clip(round(self.volume * p.volume), 0, 200)),
            "word_gap": int(max(0, round(self.word_gap + p.word_gap))),
        }


@dataclass(frozen=True)
class WordSegment:
    text: str
    start: float
    end: float


@dataclass
class Speech:
    """Synthesised speech: ``audio`` (16 kHz), ``phones`` (IPA labels with espeak's stress marks,
    pauses as ``"sil"``; contiguous from 0 to the end of the audio) and ``words``."""

    text: str
    audio: Audio
    phones: list[PhoneSegment]
    words: list[WordSegment] = field(default_factory=list)
    voice: str = ""

    @property
    def duration(self) -> float:
        return self.audio.duration

    def spoken_phones(self) -> list[PhoneSegment]:
        """The phones without pauses."""
        return [p for p in self.phones if p.label != SILENCE]


def stress_of(label: str) -> int:
    """espeak IPA stress of a phone label: 1 primary (ˈ), 2 secondary (ˌ), 0 none."""
    return 1 if "ˈ" in label else 2 if "ˌ" in label else 0


def strip_stress(label: str) -> str:
    return label.replace("ˈ", "").replace("ˌ", "")


class _Engine:
    """The process-wide espeak-ng library handle (initialised lazily per process)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.lib: Any = None
        self.state: _StateReset | None = None
        self._chunks: list[np.ndarray] = []
        self._events: list[_EventRow] = []
        self._callback = _CALLBACK(self._on_audio)

    def _on_audio(self, wav: Any, count: int, events: Any) -> int:
        if wav and count > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            ev = events[i]
            if ev.type == _EVENT_PHONEME:
                name = bytes(ev.id.string).split(b"\0", 1)[0].decode("utf-8", "replace")
                self._events.append((ev.type, ev.sample, ev.text_position, 0, name))
            elif ev.type == _EVENT_WORD:
                self._events.append((ev.type, ev.sample, ev.text_position, ev.length, ""))
            i += 1
        return 0

    def ensure(self) -> Any:
        # Initialised once per library load: a forked child inherits the initialised library and the
        # clean-state snapshot (taken before any synthesis), which it must keep, not retake.
        if self.lib is not None:
            return self.lib
        try:
            import espeakng_loader
        except ImportError as err:  # pragma: no cover - a declared dependency
            raise TalkingHeadError("Speech synthesis needs the espeakng-loader package; install it.") from err
        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                     ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_int, ctypes.c_int]
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 500, espeakng_loader.get_data_path().encode(),
                                     _INIT_PHONEME_EVENTS | _INIT_PHONEME_IPA)
        if rate != ESPEAK_RATE:
            raise TalkingHeadError(f"espeak-ng failed to start (it reported sample rate {rate}).")
        lib.espeak_SetSynthCallback(self._callback)
        self.state = _StateReset(lib, espeakng_loader.get_library_path())
        self.lib = lib
        return lib

    def set_voice(self, lib: Any, name: str) -> None:
        if lib.espeak_SetVoiceByName(name.encode()) != 0:
            raise TalkingHeadError(
                f"espeak-ng has no voice '{name}'; use a language such as {', '.join(ENGLISH_VOICES[:4])} "
                f"optionally with a variant (e.g. en-us+f3); see `talkinghead tts --list-voices`."
            )

    def synth(self, text: str, config: VoiceConfig, seed: int = 0) -> tuple[np.ndarray, list[_EventRow]]:
        with self.lock:
            lib = self.ensure()
            self.set_voice(lib, config.name)
            values = config.effective()
            for param, key in ((_PARAM_RATE, "rate"), (_PARAM_PITCH, "pitch"), (_PARAM_RANGE, "range"),
                               (_PARAM_VOLUME, "volume"), (_PARAM_WORDGAP, "word_gap")):
                lib.espeak_SetParameter(param, values[key], 0)
            self._chunks, self._events = [], []
            # espeak-ng draws noise (breath, roughness, flutter) from its own generator and libc's
            # rand(); seeding both makes the same text and voice give the same samples every time.
            assert self.state is not None
            self.state.restore()
            lib.espeak_ng_SetRandSeed(seed)
            _LIBC.srand(seed)
            data = text.encode("utf-8")
            status = lib.espeak_Synth(data, len(data) + 1, 0, 1, 0, _CHARS_UTF8 | _ENDPAUSE, None, None)
            lib.espeak_Synchronize()
            if status != 0:
                raise TalkingHeadError(f"espeak-ng could not synthesise the text (error {status}).")
            chunks, events = self._chunks, self._events
            self._chunks, self._events = [], []
        wave = np.concatenate(chunks) if chunks else np.zeros(0, np.int16)
        return wave, events

    def phonemes(self, text: str, voice: str) -> list[list[str]]:
        with self.lock:
            lib = self.ensure()
            self.set_voice(lib, voice)
            buf = ctypes.create_string_buffer(text.encode("utf-8"))
            ptr = ctypes.c_void_p(ctypes.addressof(buf))
            words: list[list[str]] = []
            while ptr.value:
                out = lib.espeak_TextToPhonemes(ctypes.byref(ptr), _CHARS_UTF8, _PHONEMES_IPA | (ord("_") << 8))
                if out:
                    words.extend([w.split("_") for w in out.decode("utf-8").split()])
        return [[p for p in w if p] for w in words if any(w)]


_ENGINE = _Engine()
_LIBC = ctypes.CDLL(None)


def _check_text(text: str) -> str:
    text = " ".join(str(text).split())
    if not text:
        raise TalkingHeadError("The text to speak is empty.")
    if len(text) > 20_000:
        raise TalkingHeadError("The text to speak is too long (over 20000 characters); split it.")
    return text


def text_to_phonemes(text: str, voice: str = "en-us") -> list[list[str]]:
    """The IPA phonemes espeak-ng would speak, per word (``[["h", "ə", "l", "ˈoʊ"], ...]``)."""
    return _ENGINE.phonemes(_check_text(text), voice)


def _resample(wave: np.ndarray) -> np.ndarray:
    from scipy.signal import resample_poly

    x = wave.astype(np.float32) / 32768.0
    if len(x) == 0:
        return x
    y = resample_poly(x, SAMPLE_RATE // 50, ESPEAK_RATE // 50).astype(np.float32)  # 320 / 441
    return np.clip(y, -1.0, 1.0)


def _segments(events: list[tuple[int, int, int, int, str]], total: int, text: str
              ) -> tuple[list[PhoneSegment], list[WordSegment]]:
    """Phone and word segments (seconds) from the event list; phones tile [0, total / 22050]."""
    marks: list[tuple[int, str, int]] = []  # (sample, label, word index or -1)
    word_spans: list[tuple[int, int]] = []
    for kind, sample, pos, length, name in events:
        if kind == _EVENT_WORD:
            word_spans.append((pos, length))
        else:
            marks.append((sample, name or SILENCE, len(word_spans) - 1 if name else -1))
    if not marks or marks[0][0] > 0:
        marks.insert(0, (0, SILENCE, -1))
    phones: list[PhoneSegment] = []
    word_times: dict[int, list[float]] = {}
    for i, (sample, label, word) in enumerate(marks):
        end = marks[i + 1][0] if i + 1 < len(marks) else total
        end = min(max(end, sample), total)
        if end <= sample:
            continue
        start_s, end_s = sample / ESPEAK_RATE, end / ESPEAK_RATE
        if label == SILENCE and phones and phones[-1].label == SILENCE:
            phones[-1] = PhoneSegment(SILENCE, phones[-1].start, end_s)
        else:
            phones.append(PhoneSegment(label, start_s, end_s))
        if word >= 0:
            span = word_times.setdefault(word, [start_s, end_s])
            span[1] = end_s
    words = []
    for index, (start_s, end_s) in sorted(word_times.items()):
        pos, length = word_spans[index]
        words.append(WordSegment(text[max(pos - 1, 0):max(pos - 1, 0) + length], start_s, end_s))
    return phones, words


def synthesize(text: str, config: VoiceConfig | None = None, seed: int = 0) -> Speech:
    """Speak ``text`` with ``config`` (default: US English, neutral). Returns 16 kHz audio, IPA phone
    segments that tile the audio, and word segments. ``seed`` seeds espeak's noise generators: the same
    text, config and seed give identical samples."""
    config = config or VoiceConfig()
    text = _check_text(text)
    if not 80 <= config.rate <= 450:
        raise TalkingHeadError(f"Speaking rate must be 80-450 words a minute, got {config.rate}.")
    if not 0 <= config.pitch <= 99 or not 0 <= config.range <= 99:
        raise TalkingHeadError("Pitch and pitch range must be between 0 and 99.")
    wave, events = _ENGINE.synth(text, config, seed)
    phones, words = _segments(events, len(wave), text)
    if not any(p.label != SILENCE for p in phones):
        raise TalkingHeadError("The text has nothing speakable (no words espeak-ng can pronounce).")
    return Speech(text, Audio(_resample(wave)), phones, words, config.name)


def list_voices() -> dict[str, tuple[str, ...]]:
    """English voices and the human-sounding variants usable as ``voice+variant``."""
    return {"voices": ENGLISH_VOICES, "male_variants": MALE_VARIANTS, "female_variants": FEMALE_VARIANTS}

"""The synthetic talking-face corpus (issue 5; DESIGN.md "The synthetic corpus"): the stand-in for MEAD.

``generate_corpus(out, CorpusConfig(...))`` writes a dataset (:mod:`talkinghead.data.dataset`) of
``speakers x emotions x intensities x sentences`` clips. Each clip is made in numbered stages:

1. the speaker (:func:`talkinghead.data.speakers.make_speaker`): voice, face shape, habits;
2. speech: espeak-ng with the speaker's voice and the emotion's prosody at the MEAD intensity, with
   exact phoneme timings (:func:`talkinghead.audio.tts.synthesize`); IPA phones are mapped to the shared
   ARPAbet vocabulary (:func:`talkinghead.audio.phonemes.ipa_to_arpabet`); silence of a random length
   in ``silence`` seconds before and after it (a closed, resting mouth), as real recordings have;
3. mouth motion from the timed phones with coarticulation (:mod:`talkinghead.data.articulation`) in the
   speaker's (and emotion's) articulation style, each vowel's jaw opened with its vocal effort, by which the
   speech is scaled too (:func:`vocal_effort`);
4. emotion expression, blinks and head pose (:mod:`talkinghead.data.behaviour`); the emotion's
   lip-closing channels (press, close, roll, pucker, funnel) give way while the jaw opens, so an
   emotion shapes the mouth without cancelling the articulation;
5. audio augmentation (:mod:`talkinghead.data.augment`) and frame-aligned audio features
   (:func:`talkinghead.audio.features.extract_features`, one dataset feature per kind: ``logmel``,
   ``mfcc``, ``fbank``, ``f0``, ``voicing``, ``energy``);
6. the clip file, written atomically; the manifest is rebuilt at the end.

Every random draw comes from a generator seeded by ``(seed, speaker, emotion, intensity, sentence)``,
so a clip is the same whichever process makes it and in whatever order: the same seed gives
byte-identical clips, and an interrupted run resumes by skipping the clips already on disk. Splits are
by speaker (test and validation speakers are never seen in training).

Per-frame phoneme tokens are not stored: they follow from the clip's phone segments with
:func:`talkinghead.audio.phonemes.frame_tokens`.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from talkinghead.audio.phonemes import PhoneSegment
from talkinghead.audio.tts import EMOTIONS, INTENSITIES, Speech, stress_of, synthesize
from talkinghead.config import Config
from talkinghead.data.articulation import VOWELS, ArticulationStyle, TimedPhone, mouth_motion
from talkinghead.data.augment import augment_audio
from talkinghead.data.behaviour import EMOTION_DYNAMICS, blinks, emotion_expression, head_pose
from talkinghead.data.dataset import Clip, ClipMeta, DatasetInfo, DatasetWriter
from talkinghead.data.sentences import EMOTIONAL_SENTENCES, SENTENCES, corpus_sentences, emotion_sentence_numbers
from talkinghead.data.speakers import Speaker, make_speaker, perturbed_identity, seed_for
from talkinghead.errors import TalkingHeadError
from talkinghead.face.model import ARKIT_LAYOUT
from talkinghead.io.audio import Audio
from talkinghead.log import log_event, progress
from talkinghead.sequence import MotionSequence


@dataclass(frozen=True)
class CorpusConfig(Config):
    """What to generate. ``features``: an :class:`AudioFeatureSpec` preset name, or ``"none"``. ``text``: ``shared``
    (every sentence of :data:`SENTENCES`, a speaker's first one read in every emotion) or ``emotional`` (a clip
    reads a sentence that says its emotion, :data:`EMOTIONAL_SENTENCES`; neutral clips read :data:`SENTENCES`), so
    that the transcript carries the emotion (Dimitra's transcript condition). ``effort``: the spread in dB of the
    vowels' vocal effort (:func:`vocal_effort`; 0: every vowel at the speaker's normal level)."""

    speakers: int = 30
    sentences: int = 3
    seed: int = 0
    emotions: tuple[str, ...] = EMOTIONS
    intensities: tuple[int, ...] = INTENSITIES
    fps: float = 25.0
    features: str = "lowlevel"
    augment: bool = True
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    workers: int = 2
    silence: tuple[float, float] = (0.25, 0.7)
    text: str = "shared"
    effort: float = 4.0

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {"speakers": 2, "sentences": 1, "emotions": ("neutral", "happy"), "intensities": (3,),
                 "features": "tiny", "workers": 1},
        "cpu": {},
        "paper": {"speakers": 60, "sentences": 10},
    }

    def check(self) -> None:
        if self.speakers < 1 or self.sentences < 1:
            raise TalkingHeadError("A corpus needs at least one speaker and one sentence.")
        if self.text not in ("shared", "emotional"):
            raise TalkingHeadError(f"The corpus text is 'shared' or 'emotional', not '{self.text}'.")
        most = len(SENTENCES) if self.text == "shared" else min(len(g) for g in EMOTIONAL_SENTENCES.values())
        if self.sentences > most:
            raise TalkingHeadError(f"The built-in {self.text} lists have {most} sentences each; ask for at most that "
                                   "many.")
        bad = [e for e in self.emotions if e not in EMOTIONS]
        if bad or not self.emotions:
            raise TalkingHeadError(f"Unknown emotion(s) {', '.join(bad) or '(none)'}; use {', '.join(EMOTIONS)}.")
        if not self.intensities or any(i not in INTENSITIES for i in self.intensities):
            raise TalkingHeadError("Intensities must be among 1, 2 and 3.")
        if not 0 <= self.val_fraction < 1 or not 0 <= self.test_fraction < 1:
            raise TalkingHeadError("Split fractions must be in [0, 1).")
        if self.workers < 1:
            raise TalkingHeadError("Use at least one worker.")
        if not 0 <= self.silence[0] <= self.silence[1] <= 5:
            raise TalkingHeadError("The silence before and after the speech must be a range within 0-5 s.")
        if not 0 <= self.effort <= 12:
            raise TalkingHeadError(f"The vocal effort spread is 0-12 dB, not {self.effort}.")


@dataclass(frozen=True)
class ClipPlan:
    """One clip to make."""

    id: str
    speaker_index: int
    emotion: str
    intensity: int
    sentence: int
    split: str


def assign_splits(num_speakers: int, seed: int, val_fraction: float = 0.1, test_fraction: float = 0.1
                  ) -> list[str]:
    """Split of each speaker: at least one test speaker from 2 speakers on, one validation from 3 on."""
    n_test = max(1, round(test_fraction * num_speakers)) if num_speakers >= 2 and test_fraction > 0 else 0
    n_val = max(1, round(val_fraction * num_speakers)) if num_speakers >= 3 and val_fraction > 0 else 0
    order = np.random.default_rng(seed_for("splits", seed, num_speakers)).permutation(num_speakers)
    splits = ["train"] * num_speakers
    for k, s in enumerate(order):
        if k < n_test:
            splits[s] = "test"
        elif k < n_test + n_val:
            splits[s] = "val"
    return splits


def plan_corpus(config: CorpusConfig) -> list[ClipPlan]:
    """All clips of the corpus, in a fixed order. Shared text: a speaker's first sentence is read in every emotion
    and intensity (parallel data for style references); the others differ per emotion and intensity. Emotional
    text: each clip reads sentences of its emotion's list, different per intensity where the list allows."""
    config.check()
    splits = assign_splits(config.speakers, config.seed, config.val_fraction, config.test_fraction)
    plans = []
    for s in range(config.speakers):
        order = np.random.default_rng(seed_for("sentences", config.seed, s)).permutation(len(SENTENCES))
        combo = 0
        for emotion in config.emotions:
            if config.text == "emotional":
                own = emotion_sentence_numbers(emotion)
                mine = np.random.default_rng(seed_for("sentences", config.seed, s, emotion)).permutation(len(own))
            for i, intensity in enumerate(config.intensities):
                for k in range(config.sentences):
                    if config.text == "emotional":
                        number = own[int(mine[(i * config.sentences + k) % len(own)])]
                    else:
                        pick = 0 if k == 0 else 1 + (combo * (config.sentences - 1) + k - 1) % (len(SENTENCES) - 1)
                        number = int(order[pick])
                    plans.append(ClipPlan(f"s{s:03d}_{emotion}_{intensity}_{k:02d}", s, emotion, intensity,
                                          number, splits[s]))
                combo += 1
    return plans


def timed_phones(speech: Speech) -> list[TimedPhone]:
    """espeak IPA phone segments -> ARPAbet :class:`TimedPhone` s (multi-phone symbols split evenly)."""
    from talkinghead.audio.phonemes import ipa_to_arpabet

    out: list[TimedPhone] = []
    for seg in speech.phones:
        phones = ipa_to_arpabet(seg.label)
        if not phones:  # a lone secondary articulation (en-gb-scotland's "ʲ") belongs to the phone before it
            if out:
                out[-1] = TimedPhone(out[-1].label, out[-1].start, seg.end, out[-1].stress)
            continue
        width = (seg.end - seg.start) / len(phones)
        stress = stress_of(seg.label)
        for j, p in enumerate(phones):
            out.append(TimedPhone(p, seg.start + j * width, seg.start + (j + 1) * width, stress))
    return out


def with_silence(samples: np.ndarray, phones: list[TimedPhone], lead: float, trail: float,
                 sample_rate: int) -> tuple[np.ndarray, list[TimedPhone]]:
    """Speech with ``lead`` and ``trail`` seconds of silence around it; the phones shifted, and the silence
    before the first and after the last phone one ``SIL`` segment each."""
    pad = (int(round(lead * sample_rate)), int(round(trail * sample_rate)))
    padded = np.concatenate([np.zeros(pad[0], samples.dtype), samples, np.zeros(pad[1], samples.dtype)])
    shift, total = pad[0] / sample_rate, len(padded) / sample_rate
    moved = [replace(p, start=p.start + shift, end=p.end + shift) for p in phones]
    if moved and moved[0].label == "SIL":
        moved[0] = TimedPhone("SIL", 0.0, moved[0].end)
    elif not moved or moved[0].start > 0:
        moved.insert(0, TimedPhone("SIL", 0.0, moved[0].start if moved else total))
    if moved[-1].label == "SIL":
        moved[-1] = TimedPhone("SIL", moved[-1].start, total)
    elif moved[-1].end < total:
        moved.append(TimedPhone("SIL", moved[-1].end, total))
    return padded, moved


def vocal_effort(samples: np.ndarray, phones: list[TimedPhone], spread_db: float, sample_rate: int,
                 rng: np.random.Generator) -> tuple[np.ndarray, list[TimedPhone]]:
    """Speech whose vowels are spoken with varying vocal effort, as real speakers emphasise some syllables and
    tail off at the end of a phrase; returns the scaled samples ``[N]`` and the phones with each vowel's
    ``effort`` (dB) set, so :func:`talkinghead.data.articulation.mouth_motion` opens the jaw with it.

    A vowel's effort is a random emphasis ``N(0, spread_db)`` (clipped to two spreads) plus the phrase's
    declination (a fall of up to ``spread_db`` from the first vowel to the last), centred on the clip's mean.
    The gain holds each vowel's effort over its span and moves linearly across the consonants between vowels;
    the result is scaled down as a whole if a peak would pass 0.99. ``spread_db`` 0 or no vowel: unchanged.
    """
    vowels = [i for i, p in enumerate(phones) if p.label in VOWELS]
    if spread_db <= 0 or not vowels:
        return samples, phones
    n = len(vowels)
    effort = np.clip(rng.normal(0.0, spread_db, n), -2 * spread_db, 2 * spread_db)
    effort += rng.uniform(0.0, spread_db) * (0.5 - np.linspace(0.0, 1.0, n))
    effort -= effort.mean()
    knots = np.array([t for i in vowels for t in (phones[i].start, phones[i].end)])
    levels = np.repeat(effort, 2)
    gain_db = np.interp(np.arange(len(samples)) / sample_rate, knots, levels)
    out = samples * (10.0 ** (gain_db / 20.0)).astype(samples.dtype)
    peak = float(np.abs(out).max()) if len(out) else 0.0
    if peak > 0.99:
        out *= 0.99 / peak
    marked = list(phones)
    for i, e in zip(vowels, effort, strict=True):
        marked[i] = replace(phones[i], effort=float(e))
    return out, marked


#: channels that close or narrow the lips: as a held emotion they would fight the jaw while speaking
LIP_CLOSING = ("mouthPressLeft", "mouthPressRight", "mouthClose", "mouthRollLower", "mouthPucker", "mouthFunnel")
OPEN_JAW = 0.25  # jawOpen at which an emotion's lip-closing channels have fully given way


def yielding_to_speech(emotion: np.ndarray, articulation: np.ndarray) -> np.ndarray:
    """The emotion's expression ``[T, E]`` with its lip-closing channels scaled by ``1 - openness`` of the
    articulation ``[T, E]`` (openness = jawOpen / OPEN_JAW, clipped to [0, 1]): they shape the resting
    mouth and give way in speech."""
    openness = np.clip(articulation[:, ARKIT_LAYOUT.channels.index("jawOpen")] / OPEN_JAW, 0.0, 1.0)
    out = emotion.copy()
    cols = [ARKIT_LAYOUT.channels.index(c) for c in LIP_CLOSING]
    out[:, cols] *= (1.0 - openness)[:, None]
    return out


def _frame_loudness(samples: np.ndarray, num_frames: int, sample_rate: int, fps: float) -> np.ndarray:
    hop = sample_rate / fps
    rms = np.array([np.sqrt(np.mean(samples[int(i * hop):int((i + 1) * hop)] ** 2) + 1e-12)
                    for i in range(num_frames)])
    return np.clip(rms / (rms.max() + 1e-9), 0.0, 1.0)


def synthesize_clip(plan: ClipPlan, speaker: Speaker, config: CorpusConfig, identity: dict[str, np.ndarray],
                    feature_spec: Any = None) -> Clip:
    """Make one clip (stages 2-5 of the module docstring)."""
    from talkinghead.audio.frames import frame_count

    rng = np.random.default_rng(seed_for("clip", config.seed, plan.id))
    text = corpus_sentences()[plan.sentence]
    # 2. speech with exact phoneme timings
    speech = synthesize(text, speaker.voice_config(plan.emotion, plan.intensity), seed=int(rng.integers(2 ** 31)))
    lead, trail = rng.uniform(*config.silence, size=2)
    clean, phones = with_silence(speech.audio.samples, timed_phones(speech), lead, trail, speech.audio.sample_rate)
    clean, phones = vocal_effort(clean, phones, config.effort, speech.audio.sample_rate,
                                 np.random.default_rng(seed_for("effort", config.seed, plan.id)))
    num_frames = frame_count(len(clean), config.fps)
    # 3. coarticulated mouth motion in the speaker's style, scaled by the emotion
    habit = speaker.emotion_habits[plan.emotion]
    emo_gain = 1.0 + (EMOTION_DYNAMICS[plan.emotion][0] - 1.0) * plan.intensity / 3.0
    base = speaker.articulation
    style = ArticulationStyle(base.amplitude * emo_gain * habit.articulation, base.jaw, base.rounding,
                              base.spread, base.stress_gain)
    expression = mouth_motion(phones, num_frames, config.fps, style).astype(np.float64)
    # 4. emotion, blinks, head pose
    expression += yielding_to_speech(emotion_expression(speaker, plan.emotion, plan.intensity, num_frames,
                                                        config.fps, rng), expression)
    blink = blinks(speaker, plan.emotion, num_frames, config.fps, phones, rng)
    ch = ARKIT_LAYOUT.channels
    for j, side in enumerate(("Left", "Right")):
        col = ch.index(f"eyeBlink{side}")
        expression[:, col] = np.maximum(expression[:, col], blink[:, j])
    expression = np.clip(expression, 0.0, 1.0)
    loudness = _frame_loudness(clean, num_frames, speech.audio.sample_rate, config.fps)
    pose = head_pose(speaker, plan.emotion, plan.intensity, num_frames, config.fps, phones, loudness, rng)
    # 5. audio variety and frame-aligned features
    audio = augment_audio(clean, rng)[0] if config.augment else clean
    features: dict[str, np.ndarray] = {}
    if feature_spec is not None:
        from talkinghead.audio.features import extract_features

        stacked = extract_features(Audio(audio), feature_spec)
        for kind, cols in feature_spec.slices().items():
            features[kind] = stacked[:num_frames, cols]
    motion = MotionSequence(expression, pose, ARKIT_LAYOUT, config.fps, identity, f"synthetic:{plan.id}")
    meta = ClipMeta(plan.id, speaker.id, plan.emotion, plan.intensity, plan.split,
                    source=f"synthetic:espeak-ng:{speech.voice}")
    segments = [PhoneSegment(p.label, p.start, p.end) for p in phones]
    return Clip(meta, audio, motion, features, segments, text)


# ------------------------------------------------------------------------------ parallel generation

_WORKER: dict[str, Any] = {}


def _worker_init(out: str, info: dict[str, Any], config: dict[str, Any], base: dict[str, np.ndarray]) -> None:
    from talkinghead.log import set_quiet

    set_quiet(True)
    _WORKER.update(out=out, info=info, config=CorpusConfig.from_dict(config), base=base, speakers={})


def _make_one(plan: ClipPlan) -> str:
    config: CorpusConfig = _WORKER["config"]
    speakers: dict[int, tuple[Speaker, dict[str, np.ndarray]]] = _WORKER["speakers"]
    if plan.speaker_index not in speakers:
        speaker = make_speaker(plan.speaker_index, config.seed)
        speakers[plan.speaker_index] = (speaker, perturbed_identity(np.array(speaker.shape), _WORKER["base"]))
    speaker, identity = speakers[plan.speaker_index]
    writer: DatasetWriter | None = _WORKER.get("writer")
    if writer is None:
        writer = _WORKER["writer"] = _open_writer(Path(_WORKER["out"]), _WORKER["info"])
    if not writer.has_clip(plan.id):
        writer.write_clip(synthesize_clip(plan, speaker, config, identity, _feature_spec(config)))
    return plan.id


def _feature_spec(config: CorpusConfig) -> Any:
    if config.features == "none":
        return None
    from talkinghead.audio.spec import AudioFeatureSpec

    return AudioFeatureSpec.preset(config.features)


def _open_writer(out: Path, info: dict[str, Any]) -> DatasetWriter:
    from talkinghead.sequence import ChannelLayout

    return DatasetWriter(out, DatasetInfo(info["fps"], ChannelLayout.from_dict(info["layout"]), info["sample_rate"],
                                          info["audio_features"], info["extra"]))


@dataclass(frozen=True)
class CorpusReport:
    root: Path
    clips: int
    made: int
    seconds: float


def generate_corpus(out: str | Path, config: CorpusConfig | None = None) -> CorpusReport:
    """Generate (or finish generating) the corpus into ``out``; returns counts and the time taken."""
    from talkinghead.data.speakers import base_identity

    config = config or CorpusConfig()
    plans = plan_corpus(config)
    spec = _feature_spec(config)
    out = Path(out)
    speakers = {s: make_speaker(s, config.seed) for s in range(config.speakers)}
    splits = assign_splits(config.speakers, config.seed, config.val_fraction, config.test_fraction)
    extra = {
        "generator": "talkinghead corpus (synthetic: espeak-ng speech, rule-based face motion)",
        "config": config.to_dict(),
        "phones": "ARPAbet (talkinghead.audio.phonemes.PHONEME_VOCAB); SIL for pauses",
        "speakers": {sp.id: {"voice": sp.voice, "variant": sp.variant, "pitch": sp.pitch, "rate": sp.rate,
                             "split": splits[s]} for s, sp in speakers.items()},
    }
    features = {} if spec is None else {"spec": spec.to_dict(),
                                        "kinds": {k: spec.kind_dims(k) for k in spec.kinds}}
    info = DatasetInfo(config.fps, ARKIT_LAYOUT, 16_000, features, extra)
    if (out / "dataset.json").is_file():
        made = json.loads((out / "dataset.json").read_text()).get("extra", {}).get("config", {})
        if made.get("text", "shared") != config.text:
            raise TalkingHeadError(f"{out} holds a corpus with {made.get('text', 'shared')} text; finish it with the "
                                   "same --text or choose an empty output folder.")
        if made.get("effort", 0.0) != config.effort:  # corpora from before vocal effort had none
            raise TalkingHeadError(f"{out} holds a corpus with --effort {made.get('effort', 0.0)}; finish it with the "
                                   "same --effort or choose an empty output folder.")
    writer = DatasetWriter(out, info)
    todo = [p for p in plans if not writer.has_clip(p.id)]
    start = time.perf_counter()
    base = {k: np.array(v) for k, v in base_identity().items()}
    args = (str(out), {"fps": info.fps, "layout": info.layout.to_dict(), "sample_rate": info.sample_rate,
                       "audio_features": info.audio_features, "extra": info.extra}, config.to_dict(), base)
    if todo:
        workers = min(config.workers, len(todo))
        if workers == 1:
            _worker_init(*args)
            _WORKER["writer"] = writer
            for plan in progress(todo, "corpus clips"):
                _make_one(plan)
            _WORKER.clear()
        else:
            # fork: workers start at once and never use MediaPipe (the parent may have, for the base face)
            ctx = mp.get_context("fork")
            with ctx.Pool(workers, initializer=_worker_init, initargs=args) as pool:
                for _ in progress(pool.imap_unordered(_make_one, todo, chunksize=4), "corpus clips",
                                  total=len(todo)):
                    pass
    writer.finalize()
    seconds = time.perf_counter() - start
    log_event("corpus written", root=str(out), clips=len(plans), made=len(todo), seconds=round(seconds, 1))
    return CorpusReport(out, len(plans), len(todo), seconds)

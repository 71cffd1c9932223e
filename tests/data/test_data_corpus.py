"""The synthetic corpus: deterministic, split by speaker, phones and motion consistent with the speech."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from talkinghead.audio.phonemes import PHONEME_IDS, frame_tokens
from talkinghead.data.corpus import CorpusConfig, assign_splits, generate_corpus, plan_corpus
from talkinghead.data.dataset import Dataset
from talkinghead.data.info import dataset_summary
from talkinghead.errors import TalkingHeadError


def corpus_hash(root: Path) -> str:
    """SHA-256 over every array of every clip file (sorted), i.e. the data, not the zip container."""
    digest = hashlib.sha256()
    for path in sorted((root / "clips").glob("*.npz")):
        with np.load(path, allow_pickle=False) as data:
            for key in sorted(data.files):
                digest.update(key.encode())
                digest.update(np.ascontiguousarray(data[key]).tobytes())
    digest.update((root / "manifest.csv").read_bytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("corpus") / "tiny"
    generate_corpus(root, CorpusConfig.preset("tiny"))
    return root


def test_same_seed_same_data_in_any_order(tiny: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    generate_corpus(again, CorpusConfig.preset("tiny", workers=2))  # two processes, another order
    assert corpus_hash(again) == corpus_hash(tiny)
    other = tmp_path / "other"
    generate_corpus(other, CorpusConfig.preset("tiny", seed=1))
    assert corpus_hash(other) != corpus_hash(tiny)


def test_layout_counts_and_splits(tiny: Path) -> None:
    ds = Dataset(tiny)
    assert len(ds) == 4
    assert {r.emotion for r in ds.rows} == {"neutral", "happy"}
    train, test = {r.speaker for r in ds.rows if r.split == "train"}, {r.speaker for r in ds.rows if r.split == "test"}
    assert train and test and not train & test  # test speakers are unseen
    summary = dataset_summary(tiny)
    assert summary["clips"] == 4 and summary["by_emotion"]["happy"]["clips"] == 2
    assert summary["duration_seconds"]["total"] == pytest.approx(sum(r.duration for r in ds.rows), abs=0.05)
    splits = assign_splits(30, 0)
    assert splits.count("test") == 3 and splits.count("val") == 3


def test_clip_contents_agree(tiny: Path) -> None:
    ds = Dataset(tiny)
    for clip_id in ds.ids():
        clip = ds.clip(clip_id)
        frames = len(clip.motion)
        assert frames == round(len(clip.audio) / 16_000 * 25)
        assert clip.transcript and clip.phones
        assert all(p.label in PHONEME_IDS for p in clip.phones)
        assert clip.phones[0].start == 0.0 and clip.phones[-1].end == pytest.approx(len(clip.audio) / 16_000, abs=1e-3)
        for name, feat in clip.features.items():
            assert feat.shape[0] == frames, name
        assert set(clip.features) == {"logmel", "f0", "voicing", "energy"}
        assert "neutral" in clip.motion.identity and clip.motion.identity["neutral"].shape == (468, 3)
        assert np.all(clip.motion.expression >= 0) and np.all(clip.motion.expression <= 1)
        # continuous motion: no frame-to-frame jump of the jaw bigger than a third of its range
        assert np.abs(np.diff(clip.motion.channel("jawOpen"))).max() < 0.35
        assert np.abs(clip.motion.pose[:, :3]).max() < 0.5
    # speakers differ in face shape; one speaker's clips share it
    ids = ds.ids()
    a, b = ds.clip(ids[0]), ds.clip(ids[-1])
    assert a.meta.speaker != b.meta.speaker
    assert not np.allclose(a.motion.identity["neutral"], b.motion.identity["neutral"])


def test_mouth_follows_phonemes(tiny: Path) -> None:
    """Lips close on bilabials and the jaw opens on open vowels."""
    ds = Dataset(tiny)
    closed, open_ = [], []
    for clip in ds:
        tokens = frame_tokens(clip.phones, len(clip.motion))
        aperture = clip.motion.channel("jawOpen") - clip.motion.channel("mouthClose")
        for label, store in ((("P", "B", "M"), closed), (("AA", "AE", "AY", "AW"), open_)):
            mask = np.isin(tokens, [PHONEME_IDS[x] for x in label])
            store.extend(aperture[mask])
    assert closed and open_
    assert np.mean(open_) > 0.3 and np.mean(closed) < 0.1


def test_emotion_shows_on_the_face(tiny: Path) -> None:
    ds = Dataset(tiny)
    for speaker in {r.speaker for r in ds.rows}:
        happy = ds.clip(f"{speaker}_happy_3_00").motion.channel("mouthSmileLeft").mean()
        neutral = ds.clip(f"{speaker}_neutral_3_00").motion.channel("mouthSmileLeft").mean()
        assert happy > neutral + 0.2


def test_resume_skips_finished_clips(tiny: Path, tmp_path: Path) -> None:
    root = tmp_path / "resume"
    generate_corpus(root, CorpusConfig.preset("tiny"))
    victim = sorted((root / "clips").glob("*.npz"))[0]
    victim.unlink()
    report = generate_corpus(root, CorpusConfig.preset("tiny"))
    assert report.made == 1 and corpus_hash(root) == corpus_hash(tiny)


def test_plan_is_balanced() -> None:
    plans = plan_corpus(CorpusConfig(speakers=3, sentences=2))
    assert len(plans) == 3 * 8 * 3 * 2 and len({p.id for p in plans}) == len(plans)
    first = {p.sentence for p in plans if p.speaker_index == 0 and p.id.endswith("_00")}
    assert len(first) == 1  # the shared sentence of a speaker, read in every emotion


def test_emotional_text_reads_sentences_that_say_the_emotion(tmp_path: Path) -> None:
    from talkinghead.data.sentences import EMOTIONAL_SENTENCES, SENTENCES, corpus_sentences

    text = corpus_sentences()
    assert text[:len(SENTENCES)] == SENTENCES                    # the default corpus's numbers keep their meaning
    shared = plan_corpus(CorpusConfig(speakers=3, sentences=2))
    emotional = plan_corpus(CorpusConfig(speakers=3, sentences=2, text="emotional"))
    assert [p.id for p in shared] == [p.id for p in emotional]
    for plan in emotional:
        pool = EMOTIONAL_SENTENCES.get(plan.emotion, SENTENCES)
        assert text[plan.sentence] in pool
    # a speaker's clips of one emotion read different sentences (12 per emotion, 3 intensities x 2 sentences)
    happy = [p.sentence for p in emotional if p.speaker_index == 0 and p.emotion == "happy"]
    assert len(set(happy)) == len(happy) == 6
    root = tmp_path / "emotional"
    generate_corpus(root, CorpusConfig.preset("tiny", text="emotional"))
    ds = Dataset(root)
    assert {ds.clip(i).transcript for i in ds.ids() if ds.meta(i).emotion == "happy"} <= \
        set(EMOTIONAL_SENTENCES["happy"])
    with pytest.raises(TalkingHeadError, match="emotional text"):                 # no mixing in one folder
        generate_corpus(root, CorpusConfig.preset("tiny"))


@pytest.mark.parametrize("changes", [{"speakers": 0}, {"emotions": ("bored",)}, {"intensities": (4,)},
                                     {"sentences": 10_000}, {"text": "emotional", "sentences": 13},
                                     {"text": "poetry"}, {"effort": 13.0}, {"effort": -1.0}])
def test_bad_config(changes: dict, tmp_path: Path) -> None:
    with pytest.raises(TalkingHeadError):
        generate_corpus(tmp_path / "x", CorpusConfig.preset("tiny", **changes))


def test_a_lone_diacritic_extends_the_phone_before_it() -> None:
    """espeak's en-gb-scotland voices emit a bare "ʲ" segment; it maps to no ARPAbet phone and must not
    crash the corpus: its time goes to the phone before it, so the phones still tile the speech."""
    from types import SimpleNamespace

    from talkinghead.audio.phonemes import PhoneSegment
    from talkinghead.data.corpus import timed_phones

    speech = SimpleNamespace(phones=[PhoneSegment("k", 0.0, 0.1), PhoneSegment("ʲ", 0.1, 0.15),
                                     PhoneSegment("uː", 0.15, 0.3), PhoneSegment("ʲ", 0.3, 0.32)])
    phones = timed_phones(speech)  # type: ignore[arg-type]
    assert [(p.label, p.start, p.end) for p in phones] == [("K", 0.0, 0.15), ("UW", 0.15, 0.32)]
    lone = SimpleNamespace(phones=[PhoneSegment("ʲ", 0.0, 0.05), PhoneSegment("k", 0.05, 0.1)])
    assert [p.label for p in timed_phones(lone)] == ["K"]  # type: ignore[arg-type]


def test_clips_rest_in_silence_before_and_after_the_speech() -> None:
    """Real recordings start and end in silence with a closed mouth; so do the corpus's clips (issue 12)."""
    from talkinghead.data.corpus import CorpusConfig, plan_corpus, synthesize_clip
    from talkinghead.data.speakers import base_identity, make_speaker, perturbed_identity
    from talkinghead.face.model import ARKIT_LAYOUT, project

    config = CorpusConfig.preset("tiny", features="none", silence=(0.4, 0.4))
    plan = plan_corpus(config)[0]
    speaker = make_speaker(plan.speaker_index, config.seed)
    identity = perturbed_identity(np.array(speaker.shape), base_identity())
    clip = synthesize_clip(plan, speaker, config, identity)
    assert clip.phones[0].label == "SIL" and clip.phones[0].end >= 0.4
    assert clip.phones[-1].label == "SIL" and clip.phones[-1].end == pytest.approx(len(clip.audio) / 16_000)
    assert np.abs(clip.audio[:int(0.38 * 16_000)]).max() < 0.05          # quiet (augmentation noise only)
    m = clip.motion
    points = project(m.identity, m.expression, m.pose)
    gap = np.linalg.norm(points[:, 13] - points[:, 14], axis=1) / np.linalg.norm(points[:, 33] - points[:, 263], axis=1)
    assert gap[:5].max() < 0.02 and gap[-3:].max() < 0.02                # lips closed at rest
    assert np.percentile(gap, 95) > 0.08                                 # and open wide in speech
    assert m.expression[:5, ARKIT_LAYOUT.channels.index("jawOpen")].max() < 0.1


def test_an_emotion_shapes_the_mouth_but_gives_way_to_the_jaw() -> None:
    from talkinghead.data.corpus import LIP_CLOSING, yielding_to_speech
    from talkinghead.face.model import ARKIT_LAYOUT

    ch = ARKIT_LAYOUT.channels
    emotion = np.zeros((3, ARKIT_LAYOUT.size))
    emotion[:, ch.index("mouthPressLeft")] = 0.3
    emotion[:, ch.index("mouthSmileLeft")] = 0.5
    speech = np.zeros((3, ARKIT_LAYOUT.size))
    speech[:, ch.index("jawOpen")] = [0.0, 0.125, 0.5]
    out = yielding_to_speech(emotion, speech)
    np.testing.assert_allclose(out[:, ch.index("mouthPressLeft")], [0.3, 0.15, 0.0])   # press gives way
    np.testing.assert_allclose(out[:, ch.index("mouthSmileLeft")], [0.5, 0.5, 0.5])   # the smile stays
    assert "mouthPressLeft" in LIP_CLOSING and "mouthSmileLeft" not in LIP_CLOSING


def test_vocal_effort_scales_each_vowel_and_its_audio_alike() -> None:
    """Each vowel gets an effort (mean 0 over the clip); the audio over the vowel is scaled by exactly that
    many dB; spread 0 leaves speech and phones as they were."""
    from talkinghead.data.articulation import TimedPhone
    from talkinghead.data.corpus import vocal_effort

    sr = 16_000
    phones = [TimedPhone("SIL", 0.0, 0.1), TimedPhone("AA", 0.1, 0.3), TimedPhone("T", 0.3, 0.35),
              TimedPhone("IY", 0.35, 0.5), TimedPhone("S", 0.5, 0.55), TimedPhone("UW", 0.55, 0.7),
              TimedPhone("SIL", 0.7, 0.8)]
    samples = np.full(int(0.8 * sr), 0.1, dtype=np.float32)
    out, marked = vocal_effort(samples, phones, 4.0, sr, np.random.default_rng(3))
    efforts = [p.effort for p in marked if p.label in ("AA", "IY", "UW")]
    assert abs(float(np.mean(efforts))) < 1e-9 and np.ptp(efforts) > 1.0
    assert [p.effort for p in marked if p.label not in ("AA", "IY", "UW")] == [0.0] * 4
    for p in marked:
        if p.effort:
            middle = int((p.start + p.end) / 2 * sr)
            assert out[middle] / samples[middle] == pytest.approx(10 ** (p.effort / 20), rel=1e-4)
    same, unmarked = vocal_effort(samples, phones, 0.0, sr, np.random.default_rng(3))
    assert same is samples and unmarked == phones
    loud = np.full_like(samples, 0.9)
    limited, _ = vocal_effort(loud, phones, 4.0, sr, np.random.default_rng(3))
    assert np.abs(limited).max() == pytest.approx(0.99, abs=1e-6)


def test_a_corpus_is_finished_with_the_effort_it_was_begun_with(tmp_path: Path) -> None:
    root = tmp_path / "flat"
    generate_corpus(root, CorpusConfig.preset("tiny", features="none", effort=0.0, speakers=1, emotions=("neutral",)))
    with pytest.raises(TalkingHeadError, match="--effort 0.0"):
        generate_corpus(root, CorpusConfig.preset("tiny", features="none", speakers=1, emotions=("neutral",)))

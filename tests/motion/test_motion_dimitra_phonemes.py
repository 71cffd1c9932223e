"""The phoneme recogniser that gives Dimitra (III-B.2) a phoneme stream without a transcript (the project's
addition): frame labels from timed phones, a tiny model that learns through the shared loop and resumes
exactly, save/load, padding and windowed decoding, the accuracy function, evaluation on a corpus split and on
recordings with alignment files, the real recordings' alignment labels, and the speaker and rate perturbations
of training (band warping, time stretching)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import torch

from talkinghead.audio.phonemes import PAD_ID, PHONEME_IDS, PHONEME_VOCAB, SILENCE_ID, PhoneSegment, frame_tokens
from talkinghead.checkpoint import WEIGHTS_NAME, read_checkpoint_info, read_safetensors
from talkinghead.data.dataset import Dataset
from talkinghead.errors import TalkingHeadError
from talkinghead.motion.dimitra.phonemes import (
    PhonemeRecognizer,
    PhonemeRecognizerConfig,
    frame_accuracy,
    majority_filter,
)
from talkinghead.motion.dimitra.training.phonemes import (
    PhonemeCorpus,
    build,
    evaluate_recogniser,
    phoneme_batch,
    read_phone_alignment,
    stretch_window,
    warp_bands,
)
from talkinghead.training.loop import fit

REALDATA = Path.home() / ".cache" / "talkinghead-realdata"
STEPS = 80

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py: tiny models run single-threaded


@pytest.fixture(scope="module")
def corpus(make_corpus: Callable[..., Path]) -> Path:
    """The synthetic corpus's tiny preset: espeak speech with phone timings, 2 train and 2 test clips."""
    return make_corpus("tiny", "corpus")


@pytest.fixture(scope="module")
def trained(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    built = build(corpus, "tiny", train_overrides={"steps": STEPS, "save_every": STEPS // 2})
    out = tmp_path_factory.mktemp("ckpt") / "phonemes"
    summary = fit(built.solver, built.config, out, preset="tiny", tensorboard=False, extra=built.extra)
    return {"summary": summary, "out": out, "built": built}


def _random_model(**overrides: Any) -> PhonemeRecognizer:
    torch.manual_seed(0)
    model = PhonemeRecognizer(PhonemeRecognizerConfig.preset("tiny", input_dim=7, **overrides))
    model.norm.set_stats(torch.linspace(-1, 1, 7), torch.linspace(0.5, 2, 7))
    return model.eval()


def _pocketsphinx_json(path: Path, words: list[tuple[str, list[tuple[str, float, float]]]]) -> Path:
    """Write an alignment in pocketsphinx's JSON layout (begin ``b`` and duration ``d`` in seconds)."""
    entries = [{"b": ph[0][1], "d": ph[-1][2] - ph[0][1], "p": 1.0, "t": word,
                "w": [{"b": s, "d": e - s, "p": 1.0, "t": lab} for lab, s, e in ph]} for word, ph in words]
    end = words[-1][1][-1][2]
    path.write_text(json.dumps({"b": 0.0, "d": end, "p": 1.0, "t": "", "w": entries}))
    return path


def test_frame_ids_follow_frame_centres(tmp_path: Path) -> None:
    # frame i (25 fps) is the phone covering its centre (i + 0.5) / 25: 0.10-0.30 s covers frames 2..6
    phones = [PhoneSegment("SIL", 0.0, 0.10), PhoneSegment("AA", 0.10, 0.30), PhoneSegment("B", 0.30, 0.36)]
    ids = frame_tokens(phones, 10)
    expected = ["SIL", "SIL", "AA", "AA", "AA", "AA", "AA", "B", "B", "SIL"]  # frame 9 (0.38 s) is uncovered
    assert [PHONEME_VOCAB[i] for i in ids] == expected
    # the same phones written the way pocketsphinx writes them (stress digits, <sil> word) read back alike
    path = _pocketsphinx_json(tmp_path / "a.phone.json", [("<sil>", [("SIL", 0.0, 0.10)]),
                                                           ("ab", [("AA1", 0.10, 0.30), ("B", 0.30, 0.36)])])
    read = read_phone_alignment(path)
    assert [p.label for p in read] == ["SIL", "AA", "B"]
    assert np.array_equal(frame_tokens(read, 10), ids)


def test_tiny_recogniser_learns_and_resumes_exactly(trained: dict[str, Any], corpus: Path,
                                                    tmp_path: Path) -> None:
    losses = trained["summary"]["losses"]
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:10])
    model = PhonemeRecognizer.from_pretrained(trained["out"])
    train = PhonemeCorpus(corpus, tuple((model.audio_features or {})["names"]), "train")
    predicted = [model.recognise(c.features) for c in train.clips]
    accuracy = frame_accuracy(predicted, [c.labels for c in train.clips])
    majority = float(train.label_counts().max() / train.label_counts().sum())
    assert accuracy > majority + 0.3, (accuracy, majority)
    assert all(PAD_ID not in p for p in predicted)
    info = read_checkpoint_info(trained["out"], "dimitra.phonemes")
    assert info.extra["features"] == ["logmel", "f0", "voicing", "energy"]
    assert info.extra["report"]["train_batch_accuracy"] > majority
    # interrupted half way and resumed: the same weights as the uninterrupted run
    built = trained["built"]
    again = tmp_path / "again"
    fit(built.solver, built.config, again, preset="tiny", tensorboard=False, stop_after=STEPS // 2)
    fit(built.solver, built.config, again, preset="tiny", tensorboard=False, resume=True)
    a, b = read_safetensors(trained["out"] / WEIGHTS_NAME), read_safetensors(again / WEIGHTS_NAME)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_save_load_round_trip(tmp_path: Path) -> None:
    model = _random_model()
    model.audio_features = {"names": ["x"], "dims": [7], "dataset": {}, "fps": 25.0}
    x = torch.randn(2, 30, 7)
    model.save_pretrained(tmp_path / "rec")
    loaded = PhonemeRecognizer.from_pretrained(tmp_path / "rec")
    assert loaded.config == model.config and loaded.audio_features == model.audio_features
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    assert torch.equal(loaded.norm.std, model.norm.std)


def test_padding_and_windows_do_not_change_frames() -> None:
    model = _random_model()
    g = torch.Generator().manual_seed(3)
    long, short = torch.randn(40, 7, generator=g), torch.randn(25, 7, generator=g)
    batch = torch.zeros(2, 40, 7)
    batch[0], batch[1, :25] = long, short
    valid = torch.zeros(2, 40, dtype=torch.bool)
    valid[0], valid[1, :25] = True, True
    with torch.no_grad():
        padded = model(batch, valid)
        alone = model(short[None])[0]
    assert torch.allclose(padded[1, :25], alone, atol=1e-5)
    # a conv-only model sees 2 frames each side per block: with 8 frames of context the windows are exact
    conv_only = _random_model(layers=0, window_frames=16, context_frames=8)
    x = torch.randn(100, 7, generator=g)
    with torch.no_grad():
        assert torch.allclose(conv_only.frame_logits(x), conv_only(x[None])[0], atol=1e-5)
    assert conv_only.recognise(x.numpy()).shape == (100,)


def test_frame_accuracy_and_majority_filter_by_hand() -> None:
    # pad targets are not counted: frames 0, 1, 3, 4 count and 0, 1 are right
    assert frame_accuracy(np.array([1, 2, 3, 4, 0]), np.array([1, 2, PAD_ID, 5, 6])) == 0.5
    # clips pool their frames: 1 of 2 and 1 of 1 right
    assert frame_accuracy([np.array([1, 1]), np.array([2])], [np.array([1, 2]), np.array([2])]) == pytest.approx(2 / 3)
    assert np.isnan(frame_accuracy(np.array([1]), np.array([PAD_ID])))
    with pytest.raises(TalkingHeadError):
        frame_accuracy(np.array([1, 2]), np.array([1]))
    a, b, c = 5, 6, 7
    ids = np.array([a, b, a, a, c, c, b, a])
    assert majority_filter(ids, 1).tolist() == ids.tolist()
    assert majority_filter(ids, 3).tolist() == [a, a, a, a, c, c, b, a]  # only the lone b inside a's run goes
    with pytest.raises(TalkingHeadError):
        majority_filter(ids, 2)


def test_evaluation_on_a_split_and_on_recordings(trained: dict[str, Any], corpus: Path, tmp_path: Path) -> None:
    """A recording made from a corpus clip, with its phones as a pocketsphinx alignment file, scores exactly
    what the clip scores in the corpus (the features come from the audio the same way)."""
    ds = Dataset(corpus)
    clip = ds.clip(ds.ids("test")[0])
    root = tmp_path / "realdata"
    (root / "voices" / "align").mkdir(parents=True)
    sf.write(root / "voices" / "one.wav", clip.audio, 16_000, subtype="FLOAT")
    words = [(f"w{i}", [(p.label, p.start, p.end)]) for i, p in enumerate(clip.phones)]
    _pocketsphinx_json(root / "voices" / "align" / "one.phone.json", words)
    sf.write(root / "voices" / "two.wav", clip.audio, 16_000, subtype="FLOAT")
    voices = [{"id": "one", "file": "voices/one.wav", "align": "voices/align/one.phone.json", "transcript": "x"},
              {"id": "two", "file": "voices/two.wav", "transcript": ""}]
    (root / "manifest.json").write_text(json.dumps({"voices": voices}))

    report = evaluate_recogniser(trained["out"], corpus, root, split="test")
    model = PhonemeRecognizer.from_pretrained(trained["out"])
    test = PhonemeCorpus(corpus, tuple((model.audio_features or {})["names"]), "test")
    hand = frame_accuracy([model.recognise(c.features) for c in test.clips], [c.labels for c in test.clips])
    assert report["corpus"]["accuracy"] == pytest.approx(hand)
    assert report["corpus"]["frames"] == sum(len(c) for c in test.clips)
    one = next(c for c in test.clips if c.id == clip.meta.id)
    real = report["realdata"]
    assert real["clips"] == 1 and real["skipped"] == [{"id": "two", "reason": "no alignment"}]
    assert real["per_clip"][0]["frames"] == len(one)
    assert real["accuracy"] == pytest.approx(frame_accuracy(model.recognise(one.features), one.labels))
    assert set(real["accuracy_by_smoothing"]) == {"1", "3", "5"}


@pytest.mark.skipif(not (REALDATA / "voices" / "align").is_dir(), reason="the realdata folder is absent")
def test_realdata_alignment_labels_map_into_the_vocabulary() -> None:
    files = sorted((REALDATA / "voices" / "align").glob("*.phone.json"))
    assert files
    for path in files:
        phones = read_phone_alignment(path)
        assert phones and all(p.label in PHONEME_IDS and p.label != PHONEME_VOCAB[PAD_ID] for p in phones)
        assert all(a.end <= b.start + 1e-6 for a, b in zip(phones, phones[1:], strict=False))
        tokens = frame_tokens(phones, int(phones[-1].end * 25))
        assert (tokens != SILENCE_ID).mean() > 0.5  # read speech: mostly phonemes


def test_band_warp_moves_a_formant_the_right_way_and_keeps_identity() -> None:
    """alpha = 1 returns the bands; a one-band peak moves up in frequency for alpha > 1 (a shorter vocal tract)
    and down for alpha < 1, by about the mel distance of the scaled centre frequency."""
    from talkinghead.audio.features import hz_to_mel, mel_to_hz

    bands = np.random.default_rng(0).normal(size=(6, 80)).astype(np.float32)
    assert np.array_equal(warp_bands(bands, 1.0, 16000), bands)
    peak = np.zeros((1, 80), np.float32)
    peak[0, 30] = 1.0
    edges = np.linspace(hz_to_mel(20.0, False), hz_to_mel(8000.0, False), 82)
    step = edges[1] - edges[0]
    for alpha in (1.15, 0.87):
        moved = int(np.argmax(warp_bands(peak, alpha, 16000)[0]))
        expected = (hz_to_mel(mel_to_hz(edges[31], False) * alpha, False) - edges[1]) / step
        assert abs(moved - expected) <= 1.0
        assert (moved > 30) == (alpha > 1)


def test_time_stretch_resamples_features_and_labels() -> None:
    """Rate 2 keeps every other frame (features and labels exactly); rate 0.8 makes 1.25x the frames, each
    feature a blend of its two neighbours and each label the nearest frame's."""
    x = np.random.default_rng(1).normal(size=(40, 5)).astype(np.float32)
    labels = np.arange(40)
    fast, fast_labels = stretch_window(x, labels, 2.0)
    assert fast.shape == (20, 5) and np.array_equal(fast_labels, labels[::2]) and np.allclose(fast, x[::2])
    slow, slow_labels = stretch_window(x, labels, 0.8)
    assert slow.shape == (50, 5)
    assert np.allclose(slow[1], 0.2 * x[0] + 0.8 * x[1]) and list(slow_labels[:5]) == [0, 1, 2, 2, 3]


def test_perturbed_batches_keep_labels_in_step_with_frames(corpus: Path) -> None:
    """With both perturbations a batch still has one label per valid frame, windows within the stretched
    bounds, and only the log-mel columns changed by the warp (the rest of the features as stored)."""
    built = build(corpus, "tiny", warp_percent=20, tempo_percent=30)
    assert built.config.warp_percent == 20 and built.config.tempo_percent == 30
    solver = built.solver
    batch = phoneme_batch(solver.corpus, np.random.default_rng(0), 8, built.config, solver.mean)
    assert batch["features"].shape[:2] == batch["labels"].shape
    assert torch.equal(batch["valid"], batch["labels"] != PAD_ID)
    assert int(batch["valid"].sum(1).max()) <= round(built.config.max_frames * 1.3) + 1
    # the warp alone: the first window is cut as without it (the warp's draw comes after the cut)
    warped = phoneme_batch(solver.corpus, np.random.default_rng(0), 1, built.config.replace(tempo_percent=0),
                           solver.mean)
    plain = phoneme_batch(solver.corpus, np.random.default_rng(0), 1, built.config.replace(warp_percent=0,
                          tempo_percent=0), solver.mean)
    columns = solver.corpus.logmel_columns()
    assert columns is not None
    others = np.ones(warped["features"].shape[-1], bool)
    others[columns] = False
    assert torch.equal(warped["labels"], plain["labels"])
    assert torch.equal(warped["features"][..., others], plain["features"][..., others])
    assert not torch.equal(warped["features"][..., columns], plain["features"][..., columns])

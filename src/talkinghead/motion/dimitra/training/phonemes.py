"""Solver and evaluation of the frame-level phoneme recogniser (``dimitra.phonemes``), the project's addition
that gives Dimitra's phoneme condition (III-B.2) to audio without a transcript (see
:mod:`talkinghead.motion.dimitra.phonemes`).

Training: random windows of ``min_frames..max_frames`` frames from the clips of the ``train`` split that have
phone timings; targets are the per-frame tokens of :func:`talkinghead.audio.phonemes.frame_tokens` (the phone
covering each frame's centre); loss: frame-level cross-entropy over :data:`PHONEME_VOCAB` with ``<pad>``
(the batch padding) ignored, optionally label-smoothed. SpecAugment-style masks (Park et al., Interspeech
2019: a few spans of frames and of feature channels set to the training mean) regularise the small corpus.
Two optional speaker and rate perturbations (off unless asked for; the project's addition, for real voices,
on which a recogniser trained on espeak speech alone reads about a third of the frames right):

- ``warp_percent`` W: vocal-tract length perturbation (Jaitly and Hinton, ICML 2013 workshop) on the log-mel
  bands: each window's spectrum is read at frequencies scaled by a factor drawn from ``[1 - W%, 1 + W%]``
  (band ``i`` takes the value at ``f_i / alpha``, linearly interpolated between bands on the mel scale, ends
  held), as a shorter or longer vocal tract would put the formants;
- ``tempo_percent`` T: speaking-rate perturbation: each window is resampled in time by a factor drawn from
  ``[1 - T%, 1 + T%]`` (features linearly interpolated, labels nearest), as faster or slower speech.

Both act on the stored, utterance-normalised features, so they approximate what the same change to the
waveform would give (the normalisation is not recomputed).
The learning rate warms up linearly, then follows a cosine to a tenth of its peak. The shared loop
(:mod:`talkinghead.training.loop`) supplies resume, EMA and progress; when the run ends the EMA model's frame
accuracy on the ``val`` split is stored in the checkpoint's ``extra["report"]``.

Evaluation (:func:`evaluate_recogniser`): frame accuracy over non-pad frames on a corpus split (test by
default) and on the real recordings of ``../shared/realdata`` (``~/.cache/talkinghead-realdata``), whose
reference phones are pocketsphinx forced alignments: the shipped ``voices/align/*.phone.json`` for the LibriVox
clips, and :func:`talkinghead.audio.align.align` on the manifest's transcript for the others. Those references
are an aligner's output, not hand labels, and the set is a development set (its README), so the numbers on it
are indicative.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from talkinghead.audio.frames import frame_count
from talkinghead.audio.phonemes import (
    PAD_ID,
    PHONEME_VOCAB,
    SILENCE_ID,
    PhoneSegment,
    frame_tokens,
    frame_visemes,
    normalize_phone,
)
from talkinghead.audio.spec import AudioFeatureSpec, check_compatible, checkpoint_spec, select_kinds
from talkinghead.data.dataset import Dataset
from talkinghead.errors import TalkingHeadError
from talkinghead.log import log_event, progress
from talkinghead.motion.dimitra.phonemes import (
    DEFAULT_FEATURES,
    PhonemeRecognizer,
    PhonemeRecognizerConfig,
    frame_accuracy,
    majority_filter,
)
from talkinghead.training.loop import Solver, TrainConfig
from talkinghead.training.registry import SolverBuild

#: the majority-filter widths every evaluation reports (1 = the plain argmax)
SMOOTHING_WIDTHS = (1, 3, 5)


@dataclass(frozen=True)
class PhonemeTrainConfig(TrainConfig):
    """Training of the recogniser: window lengths, warm-up, label smoothing and SpecAugment masks (counts
    per sample; widths drawn uniformly up to the given maximum)."""

    batch_size: int = 32
    lr: float = 5e-4
    min_frames: int = 50
    max_frames: int = 250
    warmup_steps: int = 1000
    label_smoothing: float = 0.1
    time_masks: int = 2
    time_mask_frames: int = 5
    channel_masks: int = 2
    channel_mask_width: int = 8
    warp_percent: int = 0
    tempo_percent: int = 0

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {**TrainConfig.presets["tiny"], "min_frames": 16, "max_frames": 48, "warmup_steps": 0,
                 "label_smoothing": 0.0, "time_masks": 0, "channel_masks": 0},
        "cpu": {**TrainConfig.presets["cpu"], "steps": 3000, "batch_size": 16, "lr": 1e-3, "max_frames": 200,
                "warmup_steps": 200, "save_every": 250, "log_every": 50},
        "paper": {"steps": 50_000},
    }


# ------------------------------------------------------------------------------------------------- data

@dataclass
class PhonemeClip:
    """One clip: features ``[T, F]`` and per-frame phoneme ids ``[T]``."""

    id: str
    features: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


def choose_features(available: list[str], requested: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The feature names the recogniser reads: ``requested`` (all must exist), else those of
    :data:`DEFAULT_FEATURES` the dataset has when it has ``logmel``, else all its features (sorted)."""
    if requested:
        missing = [n for n in requested if n not in available]
        if missing:
            raise TalkingHeadError(f"The dataset has no audio feature(s) {', '.join(missing)}; it has "
                                   f"{', '.join(available) or 'none'}.")
        return tuple(requested)
    if not available:
        raise TalkingHeadError("The dataset's clips have no audio features; build it with features.")
    if "logmel" in available:
        return tuple(n for n in DEFAULT_FEATURES if n in available)
    return tuple(sorted(available))


def _as_2d(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x[:, None] if x.ndim == 1 else x


class PhonemeCorpus:
    """The clips of one split that have phone timings, with their features and frame labels in memory.

    ``fallback``: use every clip when the split is empty (training on a dataset without splits)."""

    def __init__(self, root: str | Path, features: tuple[str, ...] = (), split: str = "train",
                 fallback: bool = False) -> None:
        self.dataset = Dataset(root)
        self.split = split
        ids = self.dataset.ids(split) or (self.dataset.ids() if fallback else [])
        if not ids:
            raise TalkingHeadError(f"The dataset {root} has no clips in the '{split}' split.")
        self.feature_names = choose_features(sorted(self.dataset.clip(ids[0]).features), features)
        self.feature_dims: tuple[int, ...] = ()
        self.clips: list[PhonemeClip] = []
        fps = self.dataset.info.fps
        for clip_id in progress(ids, f"loading {split} clips"):
            clip = self.dataset.clip(clip_id)
            if not clip.phones:
                continue
            missing = [n for n in self.feature_names if n not in clip.features]
            if missing:
                raise TalkingHeadError(f"Clip {clip_id} lacks the audio feature(s) {', '.join(missing)}.")
            feats = [_as_2d(clip.features[n]) for n in self.feature_names]
            self.feature_dims = tuple(f.shape[1] for f in feats)
            length = min(len(f) for f in feats)
            if length == 0:
                continue
            x = np.concatenate([f[:length] for f in feats], axis=1)
            self.clips.append(PhonemeClip(clip_id, x, frame_tokens(clip.phones, length, fps)))
        if not self.clips:
            raise TalkingHeadError(f"No clip of the '{split}' split of {root} has phone timings to learn from.")
        if len(self.clips) < len(ids):
            log_event("clips without phone timings skipped", skipped=len(ids) - len(self.clips), split=split)
        lengths = np.array([len(c) for c in self.clips], dtype=np.float64)
        self.weights = lengths / lengths.sum()

    @property
    def input_dim(self) -> int:
        return int(sum(self.feature_dims))

    @cached_property
    def sample_rate(self) -> int:
        """The sample rate the features were computed at (the dataset's feature spec, :func:`checkpoint_spec`)."""
        return checkpoint_spec(self.audio_spec(), "phoneme recogniser", self.dataset.info.fps).sample_rate

    def logmel_columns(self) -> slice | None:
        """Where the ``logmel`` bands lie in a clip's feature columns (None without them)."""
        if "logmel" not in self.feature_names:
            return None
        index = self.feature_names.index("logmel")
        start = int(sum(self.feature_dims[:index]))
        return slice(start, start + self.feature_dims[index])

    def audio_spec(self) -> dict[str, Any]:
        """The checkpoint's ``audio_features``: the names and widths read, the dataset's feature spec, fps."""
        return {"names": list(self.feature_names), "dims": list(self.feature_dims),
                "dataset": self.dataset.info.audio_features, "fps": self.dataset.info.fps}

    def stats(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-channel mean and std ``[F]`` over every frame."""
        data = np.concatenate([c.features for c in self.clips])
        return data.mean(0).astype(np.float32), (data.std(0) + 1e-3).astype(np.float32)

    def label_counts(self) -> np.ndarray:
        """Frames per token ``[vocab]``."""
        return np.bincount(np.concatenate([c.labels for c in self.clips]), minlength=len(PHONEME_VOCAB))


def phoneme_batch(corpus: PhonemeCorpus, rng: np.random.Generator, batch_size: int, config: PhonemeTrainConfig,
                  fill: np.ndarray) -> dict[str, torch.Tensor]:
    """Random windows, zero-padded to the longest: ``features [B, N, F]``, ``labels [B, N]`` (``<pad>`` on
    padding), ``valid [B, N]``. With ``tempo_percent`` a window is cut at its stretched length and resampled
    (:func:`stretch_window`); with ``warp_percent`` its log-mel bands are warped (:func:`warp_bands`);
    SpecAugment spans are set to ``fill`` (the training mean, i.e. 0 after normalisation)."""
    feats, labels = [], []
    bands = corpus.logmel_columns()
    for _ in range(batch_size):
        clip = corpus.clips[int(rng.choice(len(corpus.clips), p=corpus.weights))]
        rate = 1.0 + rng.uniform(-1.0, 1.0) * config.tempo_percent / 100 if config.tempo_percent else 1.0
        n = int(min(round(rng.integers(config.min_frames, config.max_frames + 1) * rate), len(clip)))
        s = int(rng.integers(0, len(clip) - n + 1))
        x, y = clip.features[s : s + n].copy(), clip.labels[s : s + n]
        if rate != 1.0:
            x, y = stretch_window(x, y, rate)
        if config.warp_percent and bands is not None:
            alpha = 1.0 + rng.uniform(-1.0, 1.0) * config.warp_percent / 100
            x[:, bands] = warp_bands(x[:, bands], alpha, corpus.sample_rate)
        _spec_augment(x, rng, config, fill)
        feats.append(x)
        labels.append(y)
    width = max(len(y) for y in labels)
    out = np.zeros((batch_size, width, feats[0].shape[1]), dtype=np.float32)
    target = np.full((batch_size, width), PAD_ID, dtype=np.int64)
    for i, (x, y) in enumerate(zip(feats, labels, strict=True)):
        out[i, : len(y)] = x
        target[i, : len(y)] = y
    return {"features": torch.from_numpy(out), "labels": torch.from_numpy(target),
            "valid": torch.from_numpy(target != PAD_ID)}


def stretch_window(x: np.ndarray, labels: np.ndarray, rate: float) -> tuple[np.ndarray, np.ndarray]:
    """``x [n, F]`` and ``labels [n]`` as speech ``rate`` times as fast: ``round(n / rate)`` frames (at least
    1), output frame ``j`` read at input time ``j * rate`` (features linearly interpolated, labels nearest)."""
    n = len(labels)
    at = np.minimum(np.arange(max(1, round(n / rate))) * rate, n - 1)
    low = np.floor(at).astype(np.int64)
    high = np.minimum(low + 1, n - 1)
    frac = (at - low)[:, None].astype(np.float32)
    nearest = np.minimum(np.floor(at + 0.5).astype(np.int64), n - 1)
    return (1 - frac) * x[low] + frac * x[high], labels[nearest]


def warp_bands(bands: np.ndarray, alpha: float, sample_rate: int) -> np.ndarray:
    """Vocal-tract length perturbation of log-mel ``bands [n, M]`` (the filterbank of
    :mod:`talkinghead.audio.features`: Slaney mel, 20 Hz to Nyquist): band ``i``, centred at ``f_i``, takes the
    spectrum at ``f_i / alpha`` (alpha > 1: formants move up, as a shorter vocal tract puts them), read on the
    mel scale between the neighbouring bands, the end bands held -> ``[n, M]``."""
    from talkinghead.audio.features import hz_to_mel, mel_to_hz

    m = bands.shape[1]
    edges = np.linspace(hz_to_mel(20.0, False), hz_to_mel(sample_rate / 2, False), m + 2)
    centres = edges[1:-1]                                                      # [M] mel
    source = hz_to_mel(mel_to_hz(centres, False) / alpha, False)               # [M] mel, where each band reads
    position = np.clip(np.interp(source, centres, np.arange(m)), 0, m - 1)     # [M] fractional band index
    low = np.floor(position).astype(np.int64)
    high = np.minimum(low + 1, m - 1)
    frac = (position - low).astype(np.float32)
    return (1 - frac) * bands[:, low] + frac * bands[:, high]


def _spec_augment(x: np.ndarray, rng: np.random.Generator, config: PhonemeTrainConfig, fill: np.ndarray) -> None:
    """Mask ``time_masks`` frame spans and ``channel_masks`` channel spans of ``x [n, F]`` in place."""
    n, dims = x.shape
    for _ in range(config.time_masks):
        width = int(rng.integers(0, config.time_mask_frames + 1))
        start = int(rng.integers(0, max(1, n - width + 1)))
        x[start : start + width] = fill
    for _ in range(config.channel_masks):
        width = int(rng.integers(0, config.channel_mask_width + 1))
        start = int(rng.integers(0, max(1, dims - width + 1)))
        x[:, start : start + width] = fill[start : start + width]


# ----------------------------------------------------------------------------------------------- solver

class _PhonemeStep(nn.Module):
    """Frame-level cross-entropy, ``<pad>`` ignored; metrics: loss and frame accuracy on the batch."""

    def __init__(self, model: PhonemeRecognizer, label_smoothing: float) -> None:
        super().__init__()
        self.model = model
        self.label_smoothing = label_smoothing

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        logits = self.model(batch["features"], batch["valid"])              # [B, N, V]
        labels = batch["labels"]                                             # [B, N]
        loss = F.cross_entropy(rearrange(logits, "b n v -> (b n) v"), labels.reshape(-1), ignore_index=PAD_ID,
                               label_smoothing=self.label_smoothing)
        counted = labels != PAD_ID
        accuracy = ((logits.argmax(-1) == labels) & counted).sum() / counted.sum().clamp_min(1)
        return loss, {"loss": loss.detach(), "accuracy": accuracy.detach()}


class PhonemeSolver(Solver):
    component: ClassVar[str] = PhonemeRecognizer.component
    train_config_class: ClassVar[type[TrainConfig]] = PhonemeTrainConfig

    def __init__(self, corpus: PhonemeCorpus, model_config: PhonemeRecognizerConfig,
                 train_config: PhonemeTrainConfig) -> None:
        self.corpus = corpus
        self.train_config = train_config
        self.model_config = model_config.replace(input_dim=corpus.input_dim)
        self.mean, self.std = corpus.stats()

    def build_model(self) -> PhonemeRecognizer:
        model = PhonemeRecognizer(self.model_config, audio_features=self.corpus.audio_spec())
        model.norm.set_stats(torch.from_numpy(self.mean), torch.from_numpy(self.std))
        return model

    def wrap(self, model: nn.Module) -> nn.Module:
        assert isinstance(model, PhonemeRecognizer)
        return _PhonemeStep(model, self.train_config.label_smoothing)

    def make_batch(self, rng: np.random.Generator, batch_size: int) -> dict[str, torch.Tensor]:
        return phoneme_batch(self.corpus, rng, batch_size, self.train_config, self.mean)

    def learning_rate(self, step: int, config: TrainConfig) -> float:
        """Linear warm-up over ``warmup_steps``, then a cosine from ``lr`` down to ``lr / 10`` at the last step."""
        warmup = self.train_config.warmup_steps
        if step < warmup:
            return config.lr * (step + 1) / warmup
        done = (step - warmup) / max(1, config.steps - warmup)
        return config.lr * (0.1 + 0.45 * (1 + math.cos(math.pi * min(1.0, done))))

    def report(self, model: nn.Module, history: dict[str, list[float]]) -> dict[str, Any] | None:
        """The EMA model's frame accuracy on the ``val`` split (when the dataset has one with phones) and the
        training batches' accuracy over the run's last tenth."""
        assert isinstance(model, PhonemeRecognizer)
        acc = history.get("accuracy", [])
        out: dict[str, Any] = {"train_batch_accuracy": float(np.mean(acc[-max(1, len(acc) // 10):])) if acc else None}
        if self.corpus.dataset.ids("val"):
            try:
                val = PhonemeCorpus(self.corpus.dataset.root, self.corpus.feature_names, "val")
            except TalkingHeadError:
                return out
            out["val"] = split_scores(model, val.clips)
        return out


def build(data: str | Path, preset: str, *, features: tuple[str, ...] = (),
          train_overrides: dict[str, Any] | None = None, warp_percent: int | None = None,
          tempo_percent: int | None = None, **options: Any) -> SolverBuild:
    """The registry's builder of ``dimitra.phonemes``: the recogniser of ``preset`` on ``data``'s train split
    (every clip when the dataset has no splits); ``warp_percent`` / ``tempo_percent``: the speaker and rate
    perturbations of the module docstring (the preset's, 0, when not given)."""
    if options:
        raise TalkingHeadError(f"dimitra.phonemes has no option(s) {', '.join(sorted(options))}.")
    given = {k: v for k, v in (("warp_percent", warp_percent), ("tempo_percent", tempo_percent)) if v is not None}
    config = PhonemeTrainConfig.preset(preset, **{**(train_overrides or {}), **given})
    corpus = PhonemeCorpus(data, tuple(features), "train", fallback=True)
    solver = PhonemeSolver(corpus, PhonemeRecognizerConfig.preset(preset), config)
    counts = corpus.label_counts()
    extra = {"features": list(corpus.feature_names), "train_clips": len(corpus.clips),
             "train_frames": int(counts.sum()), "majority_rate": float(counts.max() / max(1, counts.sum()))}
    return SolverBuild(solver, config, extra)


# ------------------------------------------------------------------------------------------- evaluation

def scores(predicted: list[np.ndarray], target: list[np.ndarray]) -> dict[str, float]:
    """Frame scores of per-clip ids (all over non-pad target frames, pooled over clips): ``accuracy``,
    ``viseme_accuracy`` (both mapped to the 15 visemes, the confusions the lips cannot show are forgiven),
    ``speech_accuracy`` (frames whose target is a phoneme, not silence), ``silence_rate`` and
    ``majority_rate`` (the accuracy of always answering the split's most frequent token), ``frames``."""
    true = np.concatenate(target) if target else np.zeros(0, np.int64)
    pred = np.concatenate(predicted) if predicted else np.zeros(0, np.int64)
    counted = true != PAD_ID
    speech = counted & (true != SILENCE_ID)
    counts = np.bincount(true[counted], minlength=len(PHONEME_VOCAB))
    total = int(counted.sum())
    return {"frames": float(total), "accuracy": frame_accuracy(pred, true),
            "viseme_accuracy": frame_accuracy(frame_visemes(pred)[counted], frame_visemes(true)[counted], ignore=-1),
            "speech_accuracy": float((pred[speech] == true[speech]).mean()) if speech.any() else float("nan"),
            "silence_rate": float(counts[SILENCE_ID] / total) if total else float("nan"),
            "majority_rate": float(counts.max() / total) if total else float("nan")}


def split_scores(model: PhonemeRecognizer, clips: list[PhonemeClip],
                 predicted: list[np.ndarray] | None = None) -> dict[str, Any]:
    """:func:`scores` of the argmax ids (``predicted``, computed when ``None``), plus the accuracy after
    majority filters of each width in :data:`SMOOTHING_WIDTHS` (``accuracy_by_smoothing``) and the clip count."""
    raw = predicted if predicted is not None else [model.recognise(c.features, smooth=1) for c in clips]
    targets = [c.labels for c in clips]
    out: dict[str, Any] = {"clips": len(clips), **scores(raw, targets)}
    out["accuracy_by_smoothing"] = _by_smoothing(raw, targets)
    return out


def _by_smoothing(predicted: list[np.ndarray], target: list[np.ndarray]) -> dict[str, float]:
    return {str(w): frame_accuracy([majority_filter(p, w) for p in predicted], target) for w in SMOOTHING_WIDTHS}


def read_phone_alignment(path: str | Path) -> list[PhoneSegment]:
    """A pocketsphinx JSON alignment (``{"b", "d", "t", "w": [word {"b", "d", "t", "w": [phone {"b", "d",
    "t"}]}]}``, times in seconds: begin and duration) -> its phones with labels in :data:`PHONEME_VOCAB`
    (stress digits dropped, ``SIL``/``<sil>``/noise markers -> ``SIL``; an unknown label raises)."""
    try:
        data = json.loads(Path(path).read_text())
        segments = []
        for word in data["w"]:
            phones = word.get("w") or [word]  # a silence word may come without a phone list
            for ph in phones:
                start, dur = float(ph["b"]), float(ph["d"])
                if dur > 0:
                    segments.append(PhoneSegment(normalize_phone(str(ph["t"])), start, start + dur))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as err:
        raise TalkingHeadError(f"{path} is not a readable pocketsphinx phone alignment ({err}).") from err
    return segments


def _realdata_voices(root: Path) -> list[dict[str, Any]]:
    manifest = root / "manifest.json"
    if not manifest.exists():
        raise TalkingHeadError(f"{root} has no manifest.json; give the folder that ../shared/realdata/fetch.sh "
                               "wrote (~/.cache/talkinghead-realdata).")
    try:
        voices = json.loads(manifest.read_text())["voices"]
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise TalkingHeadError(f"{manifest} is not a realdata manifest ({err}).") from err
    return list(voices)


def evaluate_realdata(model: PhonemeRecognizer, root: str | Path, align_missing: bool = True) -> dict[str, Any]:
    """Frame accuracy on the real recordings: references from their alignment files, or (``align_missing``)
    from :func:`talkinghead.audio.align.align` on the manifest's transcript. Returns :func:`scores` over all
    clips, ``by_source`` (``alignment file`` / ``aligned here``), one row per clip, and what was skipped."""
    from talkinghead.audio.align import align
    from talkinghead.audio.features import extract_features
    from talkinghead.io.audio import load_audio

    root = Path(root)
    af = model.audio_features or {}
    names, dims = list(af.get("names", [])), list(af.get("dims", []))
    spec = checkpoint_spec(af, "phoneme recogniser", float(af.get("fps", 25.0)))
    rows, skipped = [], []
    preds: dict[str, list[np.ndarray]] = {}
    targets: dict[str, list[np.ndarray]] = {}
    for voice in progress(_realdata_voices(root), "realdata voices"):
        audio = load_audio(root / voice["file"], spec.sample_rate)
        try:
            if voice.get("align"):
                phones, source = read_phone_alignment(root / voice["align"]), "alignment file"
            elif align_missing and voice.get("transcript"):
                phones, source = align(audio, voice["transcript"]).phones, "aligned here"
            else:
                skipped.append({"id": voice["id"], "reason": "no alignment"})
                continue
        except TalkingHeadError as err:
            skipped.append({"id": voice["id"], "reason": str(err)})
            continue
        feats = select_kinds(extract_features(audio, spec), spec, names, dims, "phoneme recogniser")
        num = frame_count(len(audio.samples), spec.fps, spec.sample_rate)
        target = frame_tokens(phones, num, spec.fps)
        pred = model.recognise(feats[:num], smooth=1)
        preds.setdefault(source, []).append(pred)
        targets.setdefault(source, []).append(target)
        rows.append({"id": voice["id"], "source": source, "frames": num, "accuracy": frame_accuracy(pred, target),
                     "viseme_accuracy": frame_accuracy(frame_visemes(pred), frame_visemes(target), ignore=-1)})
    every_pred = [p for group in preds.values() for p in group]
    every_target = [t for group in targets.values() for t in group]
    out: dict[str, Any] = {"clips": len(rows), **scores(every_pred, every_target)}
    out["accuracy_by_smoothing"] = _by_smoothing(every_pred, every_target)
    out["by_source"] = {k: {"clips": len(preds[k]), **scores(preds[k], targets[k])} for k in sorted(preds)}
    out["per_clip"] = rows
    out["skipped"] = skipped
    out["references"] = ("pocketsphinx forced alignments (not hand labels); a development set, so these numbers "
                         "are indicative")
    return out


def evaluate_recogniser(checkpoint: str | Path, corpus: str | Path | None, realdata_dir: str | Path | None = None,
                        *, split: str = "test", align_missing: bool = True) -> dict[str, Any]:
    """Frame accuracy of a trained recogniser: on ``split`` of ``corpus`` (its stored features) and on the
    real recordings in ``realdata_dir`` (``None``: skipped). Each part holds :func:`scores` and the accuracy
    after majority filters of 1, 3 and 5 frames; ``train_majority_rate`` and ``top_confusions`` (target ->
    predicted token, most frequent first) on the corpus help to read them."""
    model = PhonemeRecognizer.from_pretrained(checkpoint)
    out: dict[str, Any] = {"checkpoint": str(checkpoint), "component": model.component,
                           "features": list((model.audio_features or {}).get("names", []))}
    if corpus is not None:
        af = model.audio_features or {}
        data = PhonemeCorpus(corpus, tuple(out["features"]), split)
        if list(data.feature_dims) != list(af.get("dims", [])):
            raise TalkingHeadError(f"The features of {corpus} do not have the widths the recogniser was trained on.")
        stored, current = (af.get("dataset") or {}).get("spec"), (data.dataset.info.audio_features or {}).get("spec")
        if stored and current:
            check_compatible(stored, AudioFeatureSpec.from_dict(current, partial=True), "the phoneme recogniser")
        predicted = [model.recognise(c.features, smooth=1) for c in data.clips]
        out["corpus"] = {"split": split, **split_scores(model, data.clips, predicted),
                         "top_confusions": _confusions(predicted, [c.labels for c in data.clips])}
    if realdata_dir is not None:
        out["realdata"] = evaluate_realdata(model, realdata_dir, align_missing)
    return out


def _confusions(predicted: list[np.ndarray], target: list[np.ndarray], top: int = 10) -> list[list[Any]]:
    """The ``top`` most frequent errors as ``[target token, predicted token, frames]``."""
    pairs: Counter[tuple[int, int]] = Counter()
    for pred, true in zip(predicted, target, strict=True):
        wrong = (pred != true) & (true != PAD_ID)
        pairs.update(zip(true[wrong].tolist(), pred[wrong].tolist(), strict=True))
    return [[PHONEME_VOCAB[t], PHONEME_VOCAB[p], n] for (t, p), n in pairs.most_common(top)]

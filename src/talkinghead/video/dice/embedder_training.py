"""Solver and measurements of the DICE-Talk emotion embedder (3.1 "Embedder Training", 4.1) on the motion corpus.

A batch holds random windows of ``N`` frames (expression and the same frames' audio features; shorter clips are
padded and masked) drawn two per group, a group being an (identity, emotion) pair, so that every sample has at
least one positive in the batch (a group with one clip gives two windows of it, as the paper's HDTF positives
are segments of one video). The groups of a batch are drawn from a few speakers at a time, so a batch also holds
the hard negatives: same speaker with another emotion, same emotion with another speaker. Loss: InfoNCE (Eq. 8)
on the sampled priors (Eq. 6), with modality dropout inside the embedder.

Export (:meth:`EmbedderSolver.export`): the embedder's checkpoint with the **emotion prompts** installed, the mean
``mu_s`` of every training clip of each emotion (4.1 "Ours-P"), and the emotion names in its config.

:func:`evaluate_embedder` measures an embedder on a split: emotion accuracy of the nearest emotion prompt (the
train means) for each clip's ``mu_s``, identity accuracy of the nearest speaker mean (leave-one-out within the
split, since test speakers are not in the training split), both by cosine similarity, and the InfoNCE of the
split. A disentangled prior scores high on emotion and low on identity.

Variant (``positives = "emotion"``, option ``--positives emotion``, not in the paper): positives share only the
emotion, negatives differ in emotion, which asks the prior to forget the identity outright; the paper's
definition (``identity_emotion``) is the default.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from talkinghead.data.dataset import Dataset
from talkinghead.errors import TalkingHeadError
from talkinghead.training.data import ClipArrays, MotionCorpus, training_split
from talkinghead.training.loop import Solver, TrainConfig
from talkinghead.training.registry import SolverBuild
from talkinghead.video.dice.embedder import EmbedderConfig, EmotionEmbedder, info_nce

POSITIVES = ("identity_emotion", "emotion")
EVAL_MAX_FRAMES = 512


@dataclass(frozen=True)
class EmbedderTrainConfig(TrainConfig):
    """``window_frames``: ``N``; ``emotions_per_speaker``: how many groups of one speaker a batch draws together
    (the hard negatives); ``positives``: ``identity_emotion`` (the paper) or ``emotion``."""

    window_frames: int = 128
    emotions_per_speaker: int = 4
    positives: str = "identity_emotion"

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {**TrainConfig.presets["tiny"], "window_frames": 16, "emotions_per_speaker": 2},
        # saves are sparser than the loop's default: each export embeds every training clip for the prompts
        "cpu": {**TrainConfig.presets["cpu"], "steps": 1500, "batch_size": 32, "window_frames": 64,
                "save_every": 500},
        "paper": {"batch_size": 64},
    }

    def __post_init__(self) -> None:
        if self.positives not in POSITIVES:
            raise TalkingHeadError(f"Positives are '{POSITIVES[0]}' or '{POSITIVES[1]}', not '{self.positives}'.")
        if self.window_frames < 1 or self.emotions_per_speaker < 1 or self.batch_size < 2:
            raise TalkingHeadError("The embedder needs windows of at least one frame and batches of at least two.")


def choose_embedder_features(root: str | Path, requested: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The audio features the embedder reads: ``requested``, else the dataset's Whisper encoder features (the
    paper's Whisper-Tiny, 3.1) when it has them, else all its low-level features."""
    if requested:
        return requested
    dataset, ids = training_split(root, "train")
    available = sorted(dataset.clip(ids[0]).features)
    spec = (dataset.info.audio_features or {}).get("spec") or {}
    if "encoder" in available and spec.get("encoder") == "whisper":
        return ("encoder",)
    low = [n for n in available if n != "encoder"]
    return tuple(low or available)


class EmotionClips:
    """The clips of a :class:`MotionCorpus` with their speaker and emotion labels, grouped into positives."""

    def __init__(self, corpus: MotionCorpus, positives: str = "identity_emotion") -> None:
        if positives not in POSITIVES:
            raise TalkingHeadError(f"Positives are '{POSITIVES[0]}' or '{POSITIVES[1]}', not '{positives}'.")
        self.corpus = corpus
        self.clips = corpus.clips
        self.speaker = [c.speaker for c in self.clips]
        self.emotion = [corpus.dataset.meta(c.id).emotion for c in self.clips]
        keys = [(s, e) if positives == "identity_emotion" else ("", e) for s, e in zip(self.speaker, self.emotion,
                                                                                       strict=True)]
        self.group_keys = sorted(set(keys))
        index = {k: g for g, k in enumerate(self.group_keys)}
        self.group = [index[k] for k in keys]
        self.members: list[list[int]] = [[] for _ in self.group_keys]
        for i, g in enumerate(self.group):
            self.members[g].append(i)
        self.speakers = sorted(set(self.speaker))
        self.emotions = tuple(sorted(set(self.emotion)))
        self.groups_of_speaker: dict[str, list[int]] = {}
        for g, (s, _) in enumerate(self.group_keys):
            self.groups_of_speaker.setdefault(s, []).append(g)

    def _groups(self, rng: np.random.Generator, count: int, per_speaker: int) -> list[int]:
        """``count`` groups, drawn from ``ceil(count / per_speaker)`` random speakers first (hard negatives)."""
        total = len(self.group_keys)
        speakers = list(self.groups_of_speaker)
        chosen_speakers = rng.choice(len(speakers), min(len(speakers), math.ceil(count / per_speaker)), replace=False)
        pool = [g for i in chosen_speakers for g in self.groups_of_speaker[speakers[int(i)]]]
        if len(pool) >= count:
            return [pool[int(i)] for i in rng.choice(len(pool), count, replace=False)]
        rest = [g for g in range(total) if g not in set(pool)]
        extra = min(len(rest), count - len(pool))
        pool += [rest[int(i)] for i in rng.choice(len(rest), extra, replace=False)] if extra else []
        if len(pool) < count:  # fewer groups than asked for: repeat some
            pool += [int(g) for g in rng.choice(total, count - len(pool))]
        return pool

    def batch(self, rng: np.random.Generator, batch_size: int, window: int,
              per_speaker: int = 4) -> dict[str, torch.Tensor]:
        """``expression [B, n, E]``, ``audio [B, n, A]``, ``valid [B, n]`` (``n <= window``), ``label [B]`` (the
        group: equal = positive), ``speaker [B]`` and ``emotion [B]`` (indices into :attr:`speakers` /
        :attr:`emotions`); every sample has a positive."""
        groups = self._groups(rng, max(1, batch_size // 2), per_speaker)
        picks: list[int] = []
        for g in groups:
            members = self.members[g]
            picks += [members[int(i)] for i in rng.choice(len(members), 2, replace=len(members) < 2)]
        for _ in range(batch_size - len(picks)):  # an odd batch: one more window of a drawn group
            members = self.members[groups[int(rng.integers(len(groups)))]]
            picks.append(members[int(rng.integers(len(members)))])
        expression, audio, valid = windows([self.clips[i] for i in picks], rng, window)
        return {"expression": expression, "audio": audio, "valid": valid,
                "label": torch.tensor([self.group[i] for i in picks]),
                "speaker": torch.tensor([self.speakers.index(self.speaker[i]) for i in picks]),
                "emotion": torch.tensor([self.emotions.index(self.emotion[i]) for i in picks])}


def windows(clips: list[ClipArrays], rng: np.random.Generator | None, window: int
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One window of ``min(window, len)`` frames per clip (random start with ``rng``, else the clip's centre),
    expression and audio of the same frames, zero-padded: ``[B, n, E]``, ``[B, n, A]``, ``valid [B, n]``."""
    spans = []
    for c in clips:
        n = min(window, len(c))
        start = int(rng.integers(0, len(c) - n + 1)) if rng is not None else (len(c) - n) // 2
        spans.append((start, n))
    width = max(n for _, n in spans)
    expression = np.zeros((len(clips), width, clips[0].expression.shape[1]), np.float32)
    audio = np.zeros((len(clips), width, clips[0].audio.shape[1]), np.float32)
    valid = np.zeros((len(clips), width), bool)
    for i, (c, (start, n)) in enumerate(zip(clips, spans, strict=True)):
        expression[i, :n] = c.expression[start:start + n]
        audio[i, :n] = c.audio[start:start + n]
        valid[i, :n] = True
    return torch.from_numpy(expression), torch.from_numpy(audio), torch.from_numpy(valid)


# Table 5's inputs: which modalities the prior sees (expression, audio)
MODALITIES: dict[str, tuple[bool, bool]] = {"audio": (False, True), "video": (True, False),
                                            "video + audio": (True, True)}


@torch.no_grad()
def clip_means(embedder: EmotionEmbedder, clips: list[ClipArrays], batch_size: int = 64,
               max_frames: int = EVAL_MAX_FRAMES, modality: str = "video + audio") -> torch.Tensor:
    """``mu_s`` of every clip (whole clips, the central ``max_frames`` of longer ones), in eval mode -> ``[n, d_s]``;
    ``modality`` (a key of :data:`MODALITIES`) leaves the other input out, as Table 5 does."""
    use_expression, use_audio = MODALITIES[modality]
    device = embedder.pool_score.weight.device
    order = sorted(range(len(clips)), key=lambda i: len(clips[i]))  # similar lengths together: little padding
    out = torch.zeros(len(clips), embedder.config.d_s)
    for lo in range(0, len(order), batch_size):
        idx = order[lo:lo + batch_size]
        expression, audio, valid = windows([clips[i] for i in idx], None, max_frames)
        prior = embedder.prior(expression.to(device) if use_expression else None,
                               audio.to(device) if use_audio else None, valid.to(device))
        out[idx] = prior.mean.float().cpu()
    return out


def emotion_means(mu: torch.Tensor, emotion: list[str], names: tuple[str, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """The mean prior of each emotion in ``names`` over the clips ``mu [n, d]`` labelled ``emotion`` ->
    ``(means [K_e, d], counts [K_e])`` (a row without clips stays zero with count 0)."""
    means = torch.zeros(len(names), mu.shape[1])
    counts = torch.zeros(len(names))
    for k, name in enumerate(names):
        rows = [i for i, e in enumerate(emotion) if e == name]
        if rows:
            means[k] = mu[rows].mean(0)
            counts[k] = len(rows)
    return means, counts


def install_emotion_prompts(embedder: EmotionEmbedder, clips: EmotionClips) -> None:
    """Fill the embedder's emotion prompts with the mean ``mu_s`` per emotion over ``clips`` (4.1 "Ours-P")."""
    mu = clip_means(embedder, clips.clips)
    means, counts = emotion_means(mu, clips.emotion, embedder.emotions)
    embedder.set_emotion_prompts(means.to(embedder.emotion_prompts), counts.to(embedder.prompt_clips))


class _EmbedderStep(nn.Module):
    def __init__(self, embedder: EmotionEmbedder) -> None:
        super().__init__()
        self.embedder = embedder

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        prior = self.embedder(batch["expression"], batch["audio"], batch["valid"])
        loss = self.embedder.contrastive_loss(prior, batch["label"])            # Eq. 6-8
        return loss, {"loss": loss.detach(), "sigma": prior.std.mean().detach()}


class EmbedderSolver(Solver):
    component: ClassVar[str] = EmotionEmbedder.component
    train_config_class: ClassVar[type[TrainConfig]] = EmbedderTrainConfig

    def __init__(self, corpus: MotionCorpus, model_config: EmbedderConfig, train_config: EmbedderTrainConfig) -> None:
        self.corpus = corpus
        self.train_config = train_config
        self.clips = EmotionClips(corpus, train_config.positives)
        self.model_config = model_config.replace(expression_dim=corpus.expression_dim, audio_dim=corpus.audio_dim,
                                                 emotions=self.clips.emotions)

    def build_model(self) -> EmotionEmbedder:
        model = EmotionEmbedder(self.model_config, layout=self.corpus.layout.to_dict(),
                                audio_features=self.corpus.audio_spec())
        model.expression_norm.set_stats(*map(torch.from_numpy, self.corpus.stats("expression")))
        model.audio_norm.set_stats(*map(torch.from_numpy, self.corpus.stats("audio")))
        return model

    def wrap(self, model: nn.Module) -> nn.Module:
        assert isinstance(model, EmotionEmbedder)
        return _EmbedderStep(model)

    def make_batch(self, rng: np.random.Generator, batch_size: int) -> dict[str, torch.Tensor]:
        cfg = self.train_config
        return self.clips.batch(rng, batch_size, cfg.window_frames, cfg.emotions_per_speaker)

    def _ensure_prompts(self, model: EmotionEmbedder) -> None:
        if float(model.prompt_clips.sum()) <= 0:
            install_emotion_prompts(model, self.clips)

    def report(self, model: nn.Module, history: dict[str, list[float]]) -> dict[str, Any] | None:
        """The measurements of :func:`evaluate_embedder` on the dataset's ``val`` split (none without one)."""
        assert isinstance(model, EmotionEmbedder)
        self._ensure_prompts(model)
        if not self.corpus.dataset.ids("val"):
            return None
        return evaluate_embedder(model, self.corpus.dataset.root, "val",
                                 window=self.train_config.window_frames, batches=8)

    def export(self, model: nn.Module, out: Path, extra: dict[str, Any]) -> None:
        assert isinstance(model, EmotionEmbedder)
        self._ensure_prompts(model)
        model.save_pretrained(out, extra=extra)


def build_embedder(data: str | Path, preset: str, *, features: tuple[str, ...] = (),
                   train_overrides: dict[str, Any] | None = None,
                   positives: str = "identity_emotion") -> SolverBuild:
    """The registry's builder of ``dice.embedder``."""
    config = EmbedderTrainConfig.preset(preset, **(train_overrides or {}), positives=positives)
    model_config = EmbedderConfig.preset(preset)
    corpus = MotionCorpus(data, "motion", choose_embedder_features(data, features))
    solver = EmbedderSolver(corpus, model_config, config)
    return SolverBuild(solver, config, {"positives": positives, "emotions": list(solver.clips.emotions),
                                        "window_frames": config.window_frames})


# ------------------------------------------------------------------------------------------------ measuring

def _nearest_means(z: torch.Tensor, means: dict[str, torch.Tensor]) -> list[str]:
    """The class of the nearest mean by cosine similarity for each row of ``z [n, d]`` (``means``: class -> ``[d]``)."""
    names = list(means)
    table = torch.nn.functional.normalize(torch.stack([means[n] for n in names]), dim=-1)
    guess = (torch.nn.functional.normalize(z, dim=-1) @ table.T).argmax(1)
    return [names[int(g)] for g in guess]


def _nearest_mean_accuracy(z: torch.Tensor, labels: list[str], means: dict[str, torch.Tensor]) -> float | None:
    """Accuracy of the nearest class mean (cosine similarity) on ``z [n, d]`` labelled ``labels``, or None."""
    if not means or not labels:
        return None
    return float(np.mean([g == y for g, y in zip(_nearest_means(z, means), labels, strict=True)]))


def leave_one_out_accuracy(z: torch.Tensor, labels: list[str]) -> float | None:
    """Nearest-class-mean accuracy where each sample's own class mean leaves the sample out (classes with one
    sample cannot be predicted and are skipped); cosine similarity. None when no class has two samples."""
    classes = sorted(set(labels))
    counts = {c: labels.count(c) for c in classes}
    sums = {c: z[[i for i, y in enumerate(labels) if y == c]].sum(0) for c in classes if counts[c] >= 2}
    hits = []
    for i, y in enumerate(labels):
        if counts[y] < 2:
            continue
        means = {c: (total - z[i]) / (counts[c] - 1) if c == y else total / counts[c] for c, total in sums.items()}
        hits.append(_nearest_means(z[i:i + 1], means)[0] == y)
    return float(np.mean(hits)) if hits else None


def _input_statistics(clips: list[ClipArrays], embedder: EmotionEmbedder) -> torch.Tensor:
    """Per clip: mean and std over frames of the normalised expression and audio features -> ``[n, 2(E+A)]``
    (what a classifier sees without the embedder: the reference for the accuracies)."""
    rows = []
    for c in clips:
        x = torch.cat([embedder.expression_norm(torch.from_numpy(c.expression)),
                       embedder.audio_norm(torch.from_numpy(c.audio))], dim=1)
        rows.append(torch.cat([x.mean(0), x.std(0, unbiased=False)]))
    return torch.stack(rows)


@torch.no_grad()
def evaluate_embedder(embedder: EmotionEmbedder, data: str | Path, split: str = "test", *,
                      window: int = 64, batches: int = 20, batch_size: int = 32, seed: int = 0) -> dict[str, Any]:
    """Measure ``embedder`` on the ``split`` of the dataset at ``data``.

    - ``emotion_accuracy``: each clip's ``mu_s`` labelled with the nearest emotion prompt (the train-split
      mean priors stored in the embedder), cosine similarity; ``emotion_chance`` = 1 / emotions;
    - ``identity_accuracy``: nearest speaker mean within the split, leaving the clip out (the split's speakers
      are not in the training split); ``identity_chance`` = 1 / speakers;
    - ``emotion_accuracy_loo``: the emotion counterpart of ``identity_accuracy`` (leave-one-out within the split);
    - ``input_emotion_accuracy`` / ``input_identity_accuracy``: the same leave-one-out classifiers on the clips'
      input statistics (mean and std of the normalised inputs): how much each label the raw input carries;
    - ``info_nce``: Eq. 8 on sampled priors of ``batches`` training-style batches of the split (windows of
      ``window`` frames, eval mode), and ``info_nce_uniform``, its value if all similarities were equal;
    - ``clustering``: Table 5 (:func:`clustering_by_modality`).
    """
    if float(embedder.prompt_clips.sum()) <= 0:
        raise TalkingHeadError("The emotion embedder has no emotion prompts; export it with its training command.")
    dataset = Dataset(data)
    if not dataset.ids(split):
        raise TalkingHeadError(f"The dataset {data} has no '{split}' clips to measure the embedder on.")
    names = tuple((embedder.audio_features or {}).get("names", ()))
    corpus = MotionCorpus(data, "motion", names, split=split)
    if corpus.expression_dim != embedder.config.expression_dim or corpus.audio_dim != embedder.config.audio_dim:
        raise TalkingHeadError(f"The dataset {data} has other expression or audio widths than the embedder.")
    clips = EmotionClips(corpus)
    mu = clip_means(embedder, clips.clips)
    known = [i for i, e in enumerate(clips.emotion) if e in embedder.emotions]
    prompts = {e: embedder.emotion_prompts[k].float().cpu() for k, e in enumerate(embedder.emotions)
               if float(embedder.prompt_clips[k]) > 0}
    inputs = _input_statistics(clips.clips, embedder)
    was_training = embedder.training
    embedder.eval()
    rng = np.random.default_rng(seed)
    generator = torch.Generator().manual_seed(seed)
    device = embedder.pool_score.weight.device
    losses, uniform = [], []
    for _ in range(batches):
        batch = clips.batch(rng, batch_size, window)
        prior = embedder(batch["expression"].to(device), batch["audio"].to(device), batch["valid"].to(device))
        s = prior.mean.cpu() + prior.std.cpu() * torch.randn(prior.mean.shape, generator=generator)
        losses.append(float(info_nce(s, batch["label"], embedder.config.temperature)))
        uniform.append(float(info_nce(torch.ones_like(s), batch["label"], 1.0)))
    embedder.train(was_training)
    return {
        "split": split, "clips": len(clips.clips), "speakers": len(clips.speakers),
        "emotion_accuracy": _nearest_mean_accuracy(mu[known], [clips.emotion[i] for i in known], prompts),
        "emotion_chance": 1.0 / max(1, len(prompts)),
        "identity_accuracy": leave_one_out_accuracy(mu, clips.speaker),
        "identity_chance": 1.0 / len(clips.speakers),
        "emotion_accuracy_loo": leave_one_out_accuracy(mu, clips.emotion),
        "input_emotion_accuracy": leave_one_out_accuracy(inputs, clips.emotion),
        "input_identity_accuracy": leave_one_out_accuracy(inputs, clips.speaker),
        "info_nce": float(np.mean(losses)), "info_nce_uniform": float(np.mean(uniform)),
        "clustering": clustering_by_modality(embedder, clips),
    }


def clustering_by_modality(embedder: EmotionEmbedder, clips: EmotionClips) -> dict[str, dict[str, Any]] | None:
    """Table 5: the clustering strength ``d_cls = d_inter / d_intra`` of the clips' prior means by emotion, within
    each speaker ("different emotions of the same identity as categories", :func:`clustering_strength`), for the
    prior from the audio only, the expression (video) only, and both -> ``{modality: {"per_emotion": {emotion:
    d_cls}, "mean": mean d_cls}}``. A (speaker, emotion) class needs two clips (``d_intra`` of one clip is 0);
    None when no speaker has two such classes."""
    from talkinghead.evaluation.clustering import clustering_strength

    keys = list(zip(clips.speaker, clips.emotion, strict=True))
    counts = Counter(keys)
    rows = [i for i, key in enumerate(keys) if counts[key] >= 2]
    classes_of = Counter(speaker for (speaker, _), n in counts.items() if n >= 2)
    if max(classes_of.values(), default=0) < 2:
        return None
    out = {}
    for modality in MODALITIES:
        mu = clip_means(embedder, [clips.clips[i] for i in rows], modality=modality)
        strength = clustering_strength(mu.numpy(), [clips.emotion[i] for i in rows],
                                       groups=[clips.speaker[i] for i in rows])
        out[modality] = {"per_emotion": strength.per_class, "mean": strength.mean}
    return out

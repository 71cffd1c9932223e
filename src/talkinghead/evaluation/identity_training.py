"""Solver for the identity embedding behind F-SIM (:mod:`talkinghead.evaluation.identity`): ArcFace's additive angular
margin loss (Deng et al. 2019, Eq. 3) over the identities of a talking-face video dataset, in the shared training loop
(:func:`talkinghead.training.loop.fit`: exact resume, EMA, progress, TensorBoard).

Data: ``frames_per_clip`` frames spread over each clip of the train split (and of ``real``, a second video dataset such
as the real videos; an identity of the same name is the same person), decoded once. The identities that ``data``
shows in more than one portrait (e.g. one person in five photos, or in two videos) are left out of training (unless
``train_on_all``): they are the only ones that can test whether the embedding matches a person across photos. Each
step draws a batch of frames with their identity labels and augments them (so that what is learnt is the face, not
the photo): a random similarity transform (scale, shift, rotation; reflected border), a horizontal flip, brightness,
contrast and saturation jitter, grey scale and a random blur by down- and up-sampling. AdamW at a one-cycle learning
rate, no gradient clipping.

When the run completes, the exported network's verification ROC AUC (pairs of frames from different clips: same
person against different people) on the train split, on the held-out identities of the val and test splits and across
photos (the left-out identities with the held-out ones, pairs from different portraits only) goes into the checkpoint's
``extra["report"]``, beside the AUCs of the untrained network and of a colour histogram of the same pixels (a baseline
with no learning: the frames of one identity are renders of one photo, so colour alone tells many of them apart), and
each again with the second frame of every pair in grey scale (colour cannot match such a pair).

Registered as ``judge.identity`` (:mod:`talkinghead.evaluation.judges`): ``talkinghead train judge.identity --data DIR
--out DIR [--real DIR]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from talkinghead.errors import TalkingHeadError
from talkinghead.evaluation.identity import (
    IdentityNet,
    IdentityNetConfig,
    arcface_logits,
    colour_histogram,
    grey_copy,
    pair_auc,
)
from talkinghead.evaluation.sync_training import one_cycle
from talkinghead.log import log_event, progress
from talkinghead.training.loop import Solver, TrainConfig
from talkinghead.training.registry import SolverBuild


@dataclass(frozen=True)
class IdentityTrainConfig(TrainConfig):
    """ArcFace training of the identity embedding (module docstring): ``scale`` s and ``margin`` m of the loss,
    ``frames_per_clip`` decoded from each clip, ``weight_decay`` of AdamW."""

    steps: int = 3000
    batch_size: int = 64
    lr: float = 2e-3
    grad_clip: float = 0.0
    ema_decay: float = 0.995
    save_every: int = 500
    log_every: int = 50
    weight_decay: float = 5e-4
    scale: float = 16.0
    margin: float = 0.3
    frames_per_clip: int = 6

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {"steps": 40, "batch_size": 16, "ema_decay": 0.9, "save_every": 20, "log_every": 5,
                 "frames_per_clip": 3},
        "cpu": {},
        "paper": {"steps": 20000, "batch_size": 256, "save_every": 2000, "log_every": 200, "scale": 64.0,
                  "margin": 0.5, "frames_per_clip": 16},
    }


@dataclass(frozen=True)
class IdentityFrames:
    """Frames ``[N, S, S, 3]`` uint8 with their identity ``labels [N]`` (indices into ``identities``), the ``clips [N]``
    and the ``photos [N]`` (the clip's portrait: a photo or a video) they come from (indices)."""

    frames: np.ndarray
    labels: np.ndarray
    clips: np.ndarray
    photos: np.ndarray
    identities: tuple[str, ...]


def identity_frames(datasets: list[Any], splits: tuple[str, ...], frames_per_clip: int,
                    only: frozenset[str] | None = None, max_clips: int | None = None,
                    exclude: frozenset[str] = frozenset()) -> IdentityFrames:
    """``frames_per_clip`` evenly spread frames of every clip of ``splits`` in each video dataset, labelled by the
    identities found (sorted); with ``only``, clips of other identities are left out, and those of ``exclude`` always;
    ``max_clips`` keeps that many clips, evenly spread over the list."""
    jobs = [(d, i) for d in datasets for s in splits for i in d.ids(s)
            if d.meta(i).identity not in exclude and (only is None or d.meta(i).identity in only)]
    if max_clips is not None and len(jobs) > max_clips:   # spread over the datasets and identities
        jobs = [jobs[k] for k in np.linspace(0, len(jobs) - 1, max_clips).round().astype(int)]
    found = tuple(sorted({d.meta(i).identity for d, i in jobs}))
    index = {name: k for k, name in enumerate(found)}
    frames, labels, clips, photos = [], [], [], []
    photo_index: dict[str, int] = {}
    for c, (data, clip_id) in enumerate(progress(jobs, "decoding identity frames", total=len(jobs))):
        meta = data.meta(clip_id)
        if meta.num_frames < 1:
            continue
        picks = np.unique(np.linspace(0, meta.num_frames - 1, frames_per_clip).round().astype(int))
        frames.append(data.frames(clip_id, picks))
        labels += [index[meta.identity]] * len(picks)
        clips += [c] * len(picks)
        photos += [photo_index.setdefault(meta.portrait, len(photo_index))] * len(picks)
    if not frames:
        raise TalkingHeadError(f"No clips of split(s) {', '.join(splits)} to take identity frames from.")
    return IdentityFrames(np.concatenate(frames), np.asarray(labels, np.int64), np.asarray(clips, np.int64),
                          np.asarray(photos, np.int64), found)


def multi_photo_identities(data: Any) -> frozenset[str]:
    """The identities of a video dataset shown in more than one portrait (photo or video), over all splits."""
    seen: dict[str, set[str]] = {}
    for split in ("train", "val", "test"):
        for clip_id in data.ids(split):
            meta = data.meta(clip_id)
            seen.setdefault(meta.identity, set()).add(meta.portrait)
    return frozenset(name for name, photos in seen.items() if len(photos) > 1)


def augment(frames: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
    """Random appearance and placement changes of ``frames [B, S, S, 3]`` uint8 -> float ``[B, S, S, 3]`` in 0..255
    (the module docstring's list; all random numbers from ``rng``)."""
    b = len(frames)
    x = torch.from_numpy(np.ascontiguousarray(frames)).float().permute(0, 3, 1, 2) / 255.0
    scale = rng.uniform(0.9, 1.1, b)
    angle = np.deg2rad(rng.uniform(-10, 10, b))
    shift = rng.uniform(-0.06, 0.06, (b, 2))
    flip = np.where(rng.random(b) < 0.5, -1.0, 1.0)
    theta = np.zeros((b, 2, 3))
    theta[:, 0, 0], theta[:, 0, 1] = np.cos(angle) / scale * flip, -np.sin(angle) / scale
    theta[:, 1, 0], theta[:, 1, 1] = np.sin(angle) / scale * flip, np.cos(angle) / scale
    theta[:, :, 2] = shift
    grid = F.affine_grid(torch.from_numpy(theta).float(), list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    grey = x.mul(torch.tensor([0.299, 0.587, 0.114])[None, :, None, None]).sum(1, keepdim=True)
    saturation = torch.from_numpy(np.where(rng.random(b) < 0.2, 0.0, rng.uniform(0.6, 1.4, b))).float()
    x = grey + (x - grey) * saturation[:, None, None, None]
    contrast = torch.from_numpy(rng.uniform(0.7, 1.3, b)).float()[:, None, None, None]
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * contrast + mean * torch.from_numpy(rng.uniform(0.7, 1.3, b)).float()[:, None, None, None]
    side = x.shape[-1]
    for k in np.flatnonzero(rng.random(b) < 0.3):
        small = max(8, int(round(side / rng.uniform(1.5, 3.0))))
        low = F.interpolate(x[k:k + 1], size=(small, small), mode="bilinear", align_corners=False, antialias=True)
        x[k:k + 1] = F.interpolate(low, size=(side, side), mode="bilinear", align_corners=False)
    return x.clamp(0, 1).mul(255.0).permute(0, 2, 3, 1)


class _ArcFaceStep(nn.Module):
    def __init__(self, net: IdentityNet, scale: float, margin: float) -> None:
        super().__init__()
        self.net, self.scale, self.margin = net, scale, margin

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        assert self.net.head is not None
        embedding = self.net(self.net.preprocess(batch["frames"]))                       # [B, D]
        logits = arcface_logits(embedding, self.net.head, batch["labels"], self.scale, self.margin)
        loss = F.cross_entropy(logits, batch["labels"])
        accuracy = (logits.argmax(1) == batch["labels"]).float().mean()
        return loss, {"loss": loss.detach(), "accuracy": accuracy.detach()}


class IdentitySolver(Solver):
    """The identity embedding's solver: the train split's frames decoded once; held-out verification at the end."""

    component: ClassVar[str] = "judge.identity"
    train_config_class: ClassVar[type[TrainConfig]] = IdentityTrainConfig

    def __init__(self, data: Any, preset: str, train_config: IdentityTrainConfig, real: Any = None,
                 max_clips: int | None = None, train_on_all: bool = False, **overrides: Any) -> None:
        from talkinghead.data.video.format import VideoDataset

        self.datasets = [d if isinstance(d, VideoDataset) else VideoDataset(d) for d in (data, real) if d is not None]
        self.preset, self.train_config, self.max_clips = preset, train_config, max_clips
        self.multi_photo = multi_photo_identities(self.datasets[0])
        self.held_out = frozenset() if train_on_all else self.multi_photo
        self.train = identity_frames(self.datasets, ("train",), train_config.frames_per_clip, max_clips=max_clips,
                                     exclude=self.held_out)
        if len(self.train.identities) < 2:
            raise TalkingHeadError("The identity embedding needs at least two identities in the train split.")
        self.config = IdentityNetConfig.preset(preset, num_classes=len(self.train.identities), **overrides)

    def build_model(self) -> IdentityNet:
        return IdentityNet(self.config).train()

    def wrap(self, model: nn.Module) -> nn.Module:
        assert isinstance(model, IdentityNet)
        return _ArcFaceStep(model, self.train_config.scale, self.train_config.margin)

    def make_batch(self, rng: np.random.Generator, batch_size: int) -> dict[str, torch.Tensor]:
        pick = rng.integers(0, len(self.train.frames), batch_size)
        return {"frames": augment(self.train.frames[pick], rng), "labels": torch.from_numpy(self.train.labels[pick])}

    def optimizer(self, model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
        decay = config.weight_decay if isinstance(config, IdentityTrainConfig) else 0.0
        return torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.lr,
                                 weight_decay=decay)

    def learning_rate(self, step: int, config: TrainConfig) -> float:
        return one_cycle(step, config.steps, config.lr)

    def report(self, model: nn.Module, history: dict[str, list[float]]) -> dict[str, Any]:
        """Training summary and verification AUCs (module docstring) on the train split and the held-out splits."""
        assert isinstance(model, IdentityNet)
        model.eval()
        losses, accs = history.get("loss", []), history.get("accuracy", [])
        window = max(1, len(losses) // 10)
        report: dict[str, Any] = {
            "preset": self.preset, "identities": list(self.train.identities), "train_frames": len(self.train.frames),
            "steps": self.train_config.steps,
            "first_loss": float(np.mean(losses[:window])) if losses else None,
            "last_loss": float(np.mean(losses[-window:])) if losses else None,
            "last_train_accuracy": float(np.mean(accs[-window:])) if accs else None}
        report["not_trained_on"] = sorted(self.held_out)
        report.update(verification_report(model, self.datasets, self.train_config.frames_per_clip, self.max_clips,
                                          self.multi_photo))
        log_event("identity embedding trained",
                  **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in report.items() if k != "identities"})
        return report


def verification_report(net: IdentityNet, datasets: list[Any], frames_per_clip: int,
                        max_clips: int | None = None, multi_photo: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Verification AUC (pairs from different clips) of ``net``, of the same architecture untrained (``*_untrained``)
    and of the colour-histogram baseline on the train split (``train_*``) and on the held-out identities of the val and
    test splits together (``held_out_*``; a test is absent when it has fewer than two identities or no same-person
    pair); ``*_grey*``: each pair's second frame in grey scale with a gamma change (:func:`grey_copy`), so that colour
    alone cannot match it. ``cross_photo_*``: the identities of ``multi_photo`` (all splits) with those of val and
    test, only pairs of frames from *different* portraits: the same person in another photo or video against other
    people."""
    out: dict[str, Any] = {}
    torch.manual_seed(0)
    untrained = IdentityNet(net.config).eval()   # the same architecture at its random initialisation
    held_out = {data.meta(i).identity for data in datasets for s in ("val", "test") for i in data.ids(s)}
    # (name, splits, identities kept (None: all), identities left out, pairs from different clips or photos)
    tests: list[tuple[str, tuple[str, ...], frozenset[str] | None, frozenset[str], str]] = [
        ("train", ("train",), None, frozenset(multi_photo), "clips"),
        ("held_out", ("val", "test"), None, frozenset(), "clips")]
    if multi_photo:
        tests.append(("cross_photo", ("train", "val", "test"), frozenset(multi_photo | held_out), frozenset(),
                      "photos"))
    for name, splits, only, exclude, pairs in tests:
        try:
            sample = identity_frames(datasets, splits, frames_per_clip, only, max_clips, exclude)
        except TalkingHeadError:
            continue
        if len(sample.identities) < 2:
            continue
        groups = sample.photos if pairs == "photos" else sample.clips
        grey = grey_copy(sample.frames)
        measured: dict[str, Any] = {f"{name}_identities": list(sample.identities)}
        try:
            for key, embed in (("", net.embed), ("_untrained", untrained.embed),
                               ("_colour_histogram", lambda f: colour_histogram(f, net.config.face_fraction))):
                plain = embed(sample.frames)
                measured[f"{name}_auc{key}"] = pair_auc(plain, sample.labels, groups)
                measured[f"{name}_auc_grey{key}"] = pair_auc(plain, sample.labels, groups, other=embed(grey))
        except TalkingHeadError:   # no same-person pair across clips (or photos): nothing to verify
            continue
        out.update(measured)
    return out


def build(data: str | Path, preset: str, *, features: tuple[str, ...] = (),
          train_overrides: dict[str, Any] | None = None, real: str | Path | None = None,
          max_clips: int | None = None, train_on_all: bool = False) -> SolverBuild:
    """The registry's builder of ``judge.identity`` (trained on the train split, verified on val and test)."""
    if features:
        raise TalkingHeadError("The identity embedding reads frames; --features does not apply to it.")
    config = IdentityTrainConfig.preset(preset, **(train_overrides or {}))
    solver = IdentitySolver(data, preset, config, real=real, max_clips=max_clips, train_on_all=train_on_all)
    return SolverBuild(solver, config, {"real": None if real is None else str(real),
                                        "not_trained_on": sorted(solver.held_out)})

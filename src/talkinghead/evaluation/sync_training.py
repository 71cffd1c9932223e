"""Solver for the lip-sync judge (:mod:`talkinghead.evaluation.syncnet`): offset discrimination in the
shared training loop (:func:`talkinghead.training.loop.fit`: exact resume, EMA, progress, TensorBoard).

A sample is a mouth window at frame ``t`` and the audio windows at ``t + k`` for every ``k`` in
``-reach..reach``; the logits are ``-||v_t - a_(t+k)||`` and the loss is the cross-entropy of choosing
``k = 0`` ("Perfect match", Chung, Chung & Zisserman 2019, Sec. 3). AdamW with a one-cycle learning rate
(warm-up over the first 10% of the steps, then cosine annealing; Smith & Topin 2019), no gradient
clipping. When the run completes, the exported judge's offset accuracy on a held-out split goes into
the checkpoint's ``extra["report"]``.

Registered as ``judge.sync`` (:mod:`talkinghead.evaluation.judges`): ``talkinghead train judge.sync
--data DIR --out DIR [--domain video] [--max-clips N]``; :func:`~talkinghead.evaluation.syncnet.train_syncnet`
and ``talkinghead train-sync-judge`` run the same solver.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from talkinghead.errors import TalkingHeadError
from talkinghead.evaluation.syncnet import (
    SyncNet,
    SyncNetConfig,
    SyncTrainConfig,
    evaluate_offsets,
    offset_batch,
    offset_logits,
    prepare_clips,
)
from talkinghead.log import log_event
from talkinghead.training.loop import Solver, TrainConfig
from talkinghead.training.registry import SolverBuild


def one_cycle(step: int, steps: int, peak: float, warmup: float = 0.1, div: float = 25.0,
              final_div: float = 1e4) -> float:
    """The learning rate of ``step`` (0-based) of ``steps``: cosine from ``peak / div`` up to ``peak`` over
    the first ``warmup`` of the run, then cosine down to ``peak / div / final_div`` (as torch's
    ``OneCycleLR`` with ``pct_start=warmup``)."""
    start, low = peak / div, peak / div / final_div
    turn = warmup * steps - 1
    if step <= turn:
        a, b, frac = start, peak, step / turn if turn > 0 else 1.0
    else:
        a, b, frac = peak, low, (step - turn) / max(steps - 1 - turn, 1e-9)
    return b + (a - b) / 2 * (math.cos(math.pi * min(frac, 1.0)) + 1)


class _SyncStep(nn.Module):
    def __init__(self, judge: SyncNet) -> None:
        super().__init__()
        self.judge = judge

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        logits = offset_logits(self.judge, batch["visual"], batch["audio"])      # [B, 2*reach+1]
        target = torch.full((logits.shape[0],), logits.shape[1] // 2, dtype=torch.long, device=logits.device)
        loss = nn.functional.cross_entropy(logits, target)                       # offset 0 is the answer
        accuracy = (logits.argmax(1) == target).float().mean()
        return loss, {"loss": loss.detach(), "accuracy": accuracy.detach()}


class SyncSolver(Solver):
    """The judge's solver: clips of ``split`` prepared once (rendered for the video domain); the model's
    input statistics (motion domain) from the same clips."""

    component: ClassVar[str] = "judge.sync"
    train_config_class: ClassVar[type[TrainConfig]] = SyncTrainConfig

    def __init__(self, dataset: Any, domain: str, preset: str, train_config: SyncTrainConfig,
                 split: str = "train", eval_split: str | None = "test", limit: int | None = None,
                 **overrides: Any) -> None:
        from talkinghead.data.dataset import Dataset

        self.data = dataset if isinstance(dataset, Dataset) else Dataset(dataset)
        self.preset, self.train_config, self.eval_split, self.limit = preset, train_config, eval_split, limit
        config = SyncNetConfig.preset(preset, domain=domain, fps=float(self.data.info.fps), **overrides)
        self.clips, source = prepare_clips(self.data, split, config, train_config.render_size, limit)
        if config.domain == "motion":
            config = config.replace(visual_dim=int(self.clips[0].visual.shape[1]), visual_source=source)
        else:
            config = config.replace(visual_source=source)
        self.config = config
        longest = max(len(c) for c in self.clips)
        self.reach = min(train_config.train_offset, max(1, (longest - config.window) // 2))

    def build_model(self) -> SyncNet:
        model = SyncNet(self.config, layout=self.data.info.layout.to_dict())
        if self.config.domain == "motion":
            stacked = np.concatenate([c.visual for c in self.clips])
            model.visual_mean.copy_(torch.from_numpy(stacked.mean(0)))
            # one scale for all values: keeps the relative size of the lip vertices' motions
            model.visual_std.fill_(float(stacked.std()) + 1e-6)
        return model

    def wrap(self, model: nn.Module) -> nn.Module:
        assert isinstance(model, SyncNet)
        return _SyncStep(model)

    def make_batch(self, rng: np.random.Generator, batch_size: int) -> dict[str, torch.Tensor]:
        visual, audio = offset_batch(self.clips, self.config, rng, batch_size, self.reach)
        return {"visual": visual, "audio": audio}

    def optimizer(self, model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
        decay = config.weight_decay if isinstance(config, SyncTrainConfig) else 0.0
        return torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=decay)

    def learning_rate(self, step: int, config: TrainConfig) -> float:
        return one_cycle(step, config.steps, config.lr)

    def report(self, model: nn.Module, history: dict[str, list[float]]) -> dict[str, Any]:
        """Training summary (this run's steps) and the offset accuracy on the held-out split."""
        assert isinstance(model, SyncNet)
        model.eval()
        losses, accs = history.get("loss", []), history.get("accuracy", [])
        window = max(1, len(losses) // 10)
        report: dict[str, Any] = {
            "domain": self.config.domain, "preset": self.preset, "train_clips": len(self.clips),
            "steps": self.train_config.steps, "train_offset": self.reach,
            "first_loss": float(np.mean(losses[:window])) if losses else None,
            "last_loss": float(np.mean(losses[-window:])) if losses else None,
            "last_train_accuracy": float(np.mean(accs[-window:])) if accs else None,
            "chance_train_accuracy": 1.0 / (2 * self.reach + 1)}
        if self.eval_split is not None:
            data = self.data
            split = self.eval_split if data.ids(self.eval_split) else ("val" if data.ids("val") else None)
            if split is not None:
                held, _ = prepare_clips(data, split, self.config, self.train_config.render_size, self.limit)
                report["eval_split"] = split
                report.update({f"eval_{k}": v for k, v in evaluate_offsets(model, held).items()})
        log_event("sync judge trained",
                  **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in report.items()})
        return report


def build(data: str | Path, preset: str, *, features: tuple[str, ...] = (),
          train_overrides: dict[str, Any] | None = None, domain: str = "motion",
          max_clips: int | None = None) -> SolverBuild:
    """The registry's builder of ``judge.sync`` (trained on the train split, reported on the test split)."""
    if features:
        raise TalkingHeadError("The sync judge reads its own MFCCs; --features does not apply to it.")
    config = SyncTrainConfig.preset(preset, **(train_overrides or {}))
    return SolverBuild(SyncSolver(data, domain, preset, config, limit=max_clips), config, {})

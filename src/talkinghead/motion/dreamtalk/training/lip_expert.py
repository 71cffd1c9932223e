"""Solver for the DreamTalk style-aware lip expert (3.3 "Training", App. C.3.2, Eq. 10).

A sample is ``n`` frames of mouth motion, ``n`` frames of audio and a style reference from the same
clip; half the samples use the audio of the same frames (label 1), half audio shifted by at least ``n``
frames within the clip (label 0), as in Wav2Lip's expert [49]. Loss: BCE of the cosine similarity.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from talkinghead.motion.dreamtalk.lip_expert import LipExpertConfig, StyleAwareLipExpert, expert_loss
from talkinghead.motion.dreamtalk.mouth import mouth_model
from talkinghead.motion.dreamtalk.training import checkpoint_extra
from talkinghead.training.data import MotionCorpus, random_segments
from talkinghead.training.loop import Solver, TrainConfig
from talkinghead.training.registry import SolverBuild


@dataclass(frozen=True)
class LipExpertTrainConfig(TrainConfig):
    style_min_frames: int = 64
    style_max_frames: int = 256
    batch_size: int = 32

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {**TrainConfig.presets["tiny"], "style_min_frames": 8, "style_max_frames": 16},
        "cpu": {**TrainConfig.presets["cpu"], "steps": 3000, "style_min_frames": 32, "style_max_frames": 64},
        "paper": {"batch_size": 32},
    }


class _LipExpertStep(nn.Module):
    def __init__(self, expert: StyleAwareLipExpert) -> None:
        super().__init__()
        self.expert = expert

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        p = self.expert.sync_probability(batch["audio"], batch["expression"], batch["style"], batch["style_valid"])
        loss = expert_loss(p, batch["label"])
        accuracy = ((p > 0.5).float() == batch["label"]).float().mean()
        return loss, {"loss": loss.detach(), "accuracy": accuracy.detach()}


class LipExpertSolver(Solver):
    component: ClassVar[str] = StyleAwareLipExpert.component
    train_config_class: ClassVar[type[TrainConfig]] = LipExpertTrainConfig

    def __init__(self, corpus: MotionCorpus, model_config: LipExpertConfig, train_config: LipExpertTrainConfig,
                 mouth: tuple[np.ndarray, np.ndarray, str] | None = None) -> None:
        self.corpus = corpus
        self.train_config = train_config
        self.n = model_config.clip_frames
        self.basis, self.neutral, self.mouth_source = mouth or mouth_model(corpus.layout, corpus.mean_neutral)
        self.model_config = model_config.replace(audio_dim=corpus.audio_dim, expression_dim=corpus.expression_dim,
                                                 mouth_vertices=self.basis.shape[1])
        # offsets' scale: std of (expression @ basis) over the training frames
        frames = np.concatenate([c.expression for c in corpus.clips])[:: max(1, len(corpus.clips) // 4)]
        self.vertex_scale = float(np.einsum("te,emk->tmk", frames, self.basis).std()) or 1.0

    def build_model(self) -> StyleAwareLipExpert:
        model = StyleAwareLipExpert(self.model_config, layout=self.corpus.layout.to_dict(),
                                    audio_features=dict(self.corpus.audio_spec(), mouth_source=self.mouth_source))
        model.set_mouth_model(torch.from_numpy(self.basis), torch.from_numpy(self.neutral), self.vertex_scale)
        model.audio_norm.set_stats(*map(torch.from_numpy, self.corpus.stats("audio")))
        model.expression_norm.set_stats(*map(torch.from_numpy, self.corpus.stats("expression")))
        return model

    def wrap(self, model: nn.Module) -> nn.Module:
        assert isinstance(model, StyleAwareLipExpert)
        return _LipExpertStep(model)

    def make_batch(self, rng: np.random.Generator, batch_size: int) -> dict[str, torch.Tensor]:
        cfg = self.train_config
        return sync_batch(self.corpus, rng, batch_size, self.n, cfg.style_min_frames, cfg.style_max_frames)


def build(data: str | Path, preset: str, *, features: tuple[str, ...] = (),
          train_overrides: dict[str, Any] | None = None, unconditional: bool = False) -> SolverBuild:
    """The registry's builder of ``dreamtalk.lip_expert`` (``unconditional``: Tab. 2 "uncond lip expert")."""
    config = LipExpertTrainConfig.preset(preset, **(train_overrides or {}))
    model_config = LipExpertConfig.preset(preset, style_aware=not unconditional)
    corpus = MotionCorpus(data, "motion", features, min_frames=model_config.clip_frames)
    return SolverBuild(LipExpertSolver(corpus, model_config, config), config,
                       checkpoint_extra(unconditional=unconditional))


def sync_batch(corpus: MotionCorpus, rng: np.random.Generator, batch_size: int, n: int, style_min: int,
               style_max: int) -> dict[str, torch.Tensor]:
    """Half in-sync, half off-sync samples: ``audio [B, n, Da]``, ``expression [B, n, E]``, ``label [B]``,
    a style reference ``style [B, N, E]`` with ``style_valid [B, N]`` from the same clips."""
    clips = [corpus.pick(rng, 3 * n) for _ in range(batch_size)]
    audio, expr, labels = [], [], []
    for i, c in enumerate(clips):
        s = int(rng.integers(0, max(1, len(c) - n + 1)))
        positive = i % 2 == 0
        a = s
        if not positive:
            far = [o for o in range(0, max(1, len(c) - n + 1)) if abs(o - s) >= n]
            a = int(rng.choice(far)) if far else s
            positive = a == s
        expr.append(_take(c.expression, s, n))
        audio.append(_take(c.audio, a, n))
        labels.append(1.0 if positive else 0.0)
    style, valid = random_segments(rng, clips, style_min, style_max, "expression")
    return {"audio": torch.from_numpy(np.stack(audio)), "expression": torch.from_numpy(np.stack(expr)),
            "label": torch.tensor(labels), "style": torch.from_numpy(style),
            "style_valid": torch.from_numpy(valid)}


def _take(x: np.ndarray, start: int, n: int) -> np.ndarray:
    idx = np.clip(np.arange(start, start + n), 0, len(x) - 1)
    return x[idx]


def evaluate_lip_expert(expert: StyleAwareLipExpert, data: str, split: str = "test", batches: int = 20,
                        batch_size: int = 64, seed: int = 0) -> dict[str, float]:
    """Sync accuracy of a trained lip expert on a held-out split (App. C.3.2).

    Samples are drawn as in training (half in sync, half with the audio moved by at least ``n`` frames
    within the clip), from the split's clips only; the expert says "in sync" when ``P_sync > 0.5``.
    Returns accuracy, accuracy on in-sync and on off-sync samples, mean BCE and the sample count.
    """
    names = tuple(expert.audio_features.get("names", ())) if expert.audio_features else ()
    corpus = MotionCorpus(data, "motion", names, split=split, min_frames=expert.config.clip_frames)
    style = LipExpertTrainConfig.preset("cpu")
    rng = np.random.default_rng(seed)
    probs, labels = [], []
    expert.eval()
    with torch.no_grad():
        for _ in range(batches):
            batch = sync_batch(corpus, rng, batch_size, expert.config.clip_frames, style.style_min_frames,
                               style.style_max_frames)
            p = expert.sync_probability(batch["audio"], batch["expression"], batch["style"], batch["style_valid"])
            probs.append(p)
            labels.append(batch["label"])
    p, y = torch.cat(probs), torch.cat(labels)
    hit = ((p > 0.5).float() == y).float()
    return {"accuracy": float(hit.mean()), "accuracy_in_sync": float(hit[y == 1].mean()),
            "accuracy_off_sync": float(hit[y == 0].mean()), "bce": float(expert_loss(p, y)),
            "samples": float(len(y))}

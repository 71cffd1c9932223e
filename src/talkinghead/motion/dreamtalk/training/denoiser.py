"""Solver for the DreamTalk denoising network (3.3 "Training", Eq. 5-7, classifier-free guidance).

A sample is a chunk of ``L`` consecutive frames of motion ``m_(0)`` with its audio (plus ``w`` frames of
audio context each side), a style reference ``R`` drawn from the same clip (3.3), a step
``t ~ U{1, T}`` and Gaussian noise. ``R`` is replaced by the null (all-zero) motion with probability
``null_style_prob`` (10%, 3.3). Loss (Eq. 5): ``lambda_denoise * ||m0 - E(m_t, t, A_w, R)||^2`` (Eq. 6,
mean over frames and channels) ``+ lambda_sync * -log P_sync`` (Eq. 7) from the frozen style-aware lip
expert on ``n`` generated frames of the chunk (style-conditioned samples only, since the expert judges
sync under the reference's style). Without a lip expert the sync term is off (the paper's
"w/o lip expert" ablation, Table 2); with an unconditional lip expert (``style_aware = False``) it is
the "uncond lip expert" ablation. With ``DenoiserConfig.regression`` the network sees the fixed input
(zero motion, step 0) instead of ``m_t`` and ``t``, with the same losses: the "same network, no diffusion"
regression baseline (:mod:`talkinghead.motion.dreamtalk.variants`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from talkinghead.diffusion import ScheduleConfig, add_noise, make_scheduler
from talkinghead.errors import TalkingHeadError
from talkinghead.motion.dreamtalk.denoiser import DenoiserConfig, DreamTalkDenoiser
from talkinghead.motion.dreamtalk.lip_expert import StyleAwareLipExpert, sync_loss
from talkinghead.motion.dreamtalk.training import checkpoint_extra
from talkinghead.motion.dreamtalk.variants import variant_names
from talkinghead.training.data import MotionCorpus, padded_segment, random_segments
from talkinghead.training.loop import Solver, TrainConfig
from talkinghead.training.registry import SolverBuild


@dataclass(frozen=True)
class DenoiserTrainConfig(TrainConfig):
    chunk_frames: int = 8
    style_min_frames: int = 64
    style_max_frames: int = 256
    lambda_denoise: float = 1.0
    lambda_sync: float = 1.0

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {**TrainConfig.presets["tiny"], "chunk_frames": 6, "style_min_frames": 8, "style_max_frames": 16},
        "cpu": {**TrainConfig.presets["cpu"], "steps": 1500, "batch_size": 24, "chunk_frames": 8,
                "style_min_frames": 32, "style_max_frames": 64, "lambda_sync": 0.1},
        "paper": {"batch_size": 64},
    }


class _DenoiserStep(nn.Module):
    def __init__(self, net: DreamTalkDenoiser, schedule: ScheduleConfig, expert: StyleAwareLipExpert | None,
                 config: DenoiserTrainConfig) -> None:
        super().__init__()
        self.net = net
        self.scheduler = make_scheduler(schedule, "ddpm")
        self._expert = [expert]  # a frozen helper, not a submodule: not trained, not saved, not DDP-synced
        self.config = config

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        net, cfg = self.net, self.config
        x0 = net.motion_norm(batch["motion"])                                     # [B, L, C]
        if net.config.regression:  # no diffusion: a fixed input, the network maps audio + style to motion
            xt, t = net.regression_input(x0.shape[0], x0.shape[1], x0.device)
        else:
            xt, t = add_noise(self.scheduler, x0, batch["noise"], batch["t"]), batch["t"]
        null = batch["null"]                                                      # [B] bool
        style = net.encode_style(batch["style"], batch["style_valid"])
        null_code = net.encode_style(net.null_style_motion(1, x0.device)).expand_as(style)
        style = torch.where(null[:, None], null_code, style)
        pred = net(xt, t, batch["audio"], style)
        denoise = F.mse_loss(pred, x0)                                            # Eq. 6
        loss = cfg.lambda_denoise * denoise
        metrics = {"denoise": denoise.detach()}
        expert = self._expert[0]
        if expert is not None and cfg.lambda_sync > 0 and bool((~null).any()):
            n = expert.config.clip_frames
            start = batch["lip_start"]                                            # [B]
            idx = start[:, None] + torch.arange(n, device=x0.device)              # [B, n]
            motion = net.motion_norm.inverse(pred)
            expr = torch.gather(motion, 1, idx[..., None].expand(-1, -1, motion.shape[-1]))
            expr = expr[..., : net.config.expression_dim]
            keep = ~null
            p = expert.sync_probability(batch["lip_audio"][keep], expr[keep],
                                        batch["style"][keep][..., : net.config.expression_dim],
                                        batch["style_valid"][keep])
            sync = sync_loss(p)                                                   # Eq. 7
            loss = loss + cfg.lambda_sync * sync
            metrics.update(sync=sync.detach(), p_sync=p.mean().detach())
        metrics["loss"] = loss.detach()
        return loss, metrics


class DenoiserSolver(Solver):
    component: ClassVar[str] = DreamTalkDenoiser.component
    train_config_class: ClassVar[type[TrainConfig]] = DenoiserTrainConfig

    def __init__(self, corpus: MotionCorpus, model_config: DenoiserConfig, train_config: DenoiserTrainConfig,
                 lip_expert: StyleAwareLipExpert | None = None, schedule: ScheduleConfig | None = None) -> None:
        self.corpus = corpus
        self.train_config = train_config
        self.schedule = schedule or ScheduleConfig()
        self.model_config = model_config.replace(audio_dim=corpus.audio_dim, expression_dim=corpus.expression_dim)
        if lip_expert is not None:
            if lip_expert.config.audio_dim != corpus.audio_dim or \
                    lip_expert.config.expression_dim != corpus.expression_dim:
                raise TalkingHeadError("The lip expert was trained on other audio features or another channel "
                                       "layout than this dataset.")
            if train_config.chunk_frames < lip_expert.config.clip_frames:
                raise TalkingHeadError("chunk_frames must be at least the lip expert's clip length.")
            lip_expert.eval().requires_grad_(False)
        self.lip_expert = lip_expert

    def build_model(self) -> DreamTalkDenoiser:
        model = DreamTalkDenoiser(self.model_config, layout=self.corpus.layout.to_dict(),
                                  audio_features=self.corpus.audio_spec())
        model.audio_norm.set_stats(*map(torch.from_numpy, self.corpus.stats("audio")))
        motion_stats = self.corpus.stats("motion" if self.model_config.generate_pose else "expression")
        model.motion_norm.set_stats(*map(torch.from_numpy, motion_stats))
        return model

    def wrap(self, model: nn.Module) -> nn.Module:
        assert isinstance(model, DreamTalkDenoiser)
        return _DenoiserStep(model, self.schedule, self.lip_expert, self.train_config)

    def to_device(self, device: torch.device) -> None:
        if self.lip_expert is not None:
            self.lip_expert.to(device)

    def make_batch(self, rng: np.random.Generator, batch_size: int) -> dict[str, torch.Tensor]:
        cfg, w = self.train_config, self.model_config.window
        length = cfg.chunk_frames
        n = self.lip_expert.config.clip_frames if self.lip_expert is not None else 1
        clips = [self.corpus.pick(rng, length) for _ in range(batch_size)]
        motion, audio, lip_audio, lip_start = [], [], [], []
        for c in clips:
            s = int(rng.integers(0, max(1, len(c) - length + 1)))
            m = np.concatenate([c.expression, c.pose], 1) if self.model_config.generate_pose else c.expression
            motion.append(padded_segment(m, s, length))
            audio.append(padded_segment(c.audio, s - w, length + 2 * w))
            o = int(rng.integers(0, length - n + 1))
            lip_start.append(o)
            lip_audio.append(padded_segment(c.audio, s + o, n))
        style, valid = random_segments(rng, clips, cfg.style_min_frames, cfg.style_max_frames,
                                       "motion" if self.model_config.generate_pose else "expression")
        t = torch.randint(0, self.schedule.num_train_timesteps, (batch_size,))
        batch = {"motion": torch.from_numpy(np.stack(motion)), "audio": torch.from_numpy(np.stack(audio)),
                 "style": torch.from_numpy(style), "style_valid": torch.from_numpy(valid), "t": t,
                 "noise": torch.randn(batch_size, length, self.model_config.motion_dim),
                 "null": torch.from_numpy(rng.random(batch_size) < self.model_config.null_style_prob),
                 "lip_audio": torch.from_numpy(np.stack(lip_audio)), "lip_start": torch.tensor(lip_start)}
        return batch


def build(data: str | Path, preset: str, *, features: tuple[str, ...] = (),
          train_overrides: dict[str, Any] | None = None, lip_expert: str | Path | None = None,
          regression: bool = False) -> SolverBuild:
    """The registry's builder of ``dreamtalk.denoiser``: the audio features default to the lip expert's."""
    config = DenoiserTrainConfig.preset(preset, **(train_overrides or {}))
    expert = StyleAwareLipExpert.from_pretrained(lip_expert) if lip_expert else None
    if expert is not None and not features and expert.audio_features:
        features = tuple(expert.audio_features.get("names", ()))
    corpus = MotionCorpus(data, "motion", features)
    solver = DenoiserSolver(corpus, DenoiserConfig.preset(preset, regression=regression), config, expert)
    extra = checkpoint_extra(lip_expert, None, regression=regression)
    if expert is not None:
        extra["lip_expert_variant"] = variant_names(expert.config) or ["style-aware"]
    return SolverBuild(solver, config, extra)

"""Noise schedules through diffusers schedulers (DreamTalk 3.2 Eq. 1, App. C.3: 1000 diffusion steps).

DreamTalk predicts the signal itself (Eq. 2), so every scheduler is built with
``prediction_type="sample"``. Motion coefficients are not bounded to [-1, 1], so ``clip_sample`` is
off (diffusers turns it on by default for DDPM and DDIM, which would silently clip x0).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypeAlias

import torch
from diffusers import DDIMScheduler, DDPMScheduler

from talkinghead.config import Config
from talkinghead.errors import TalkingHeadError

#: a diffusers DDPMScheduler or DDIMScheduler (diffusers ships no precise type stubs for them)
Scheduler: TypeAlias = Any


@dataclass(frozen=True)
class ScheduleConfig(Config):
    """The forward process (training) and the default sampler (inference)."""

    num_train_timesteps: int = 1000
    beta_schedule: str = "linear"
    beta_start: float = 1e-4
    beta_end: float = 0.02
    sampler: Literal["ddim", "ddpm"] = "ddim"
    num_inference_steps: int = 10
    eta: float = 0.0

    presets: ClassVar[dict[str, dict[str, Any]]] = {"tiny": {}, "cpu": {}, "paper": {}}


def make_scheduler(config: ScheduleConfig, sampler: str | None = None) -> Scheduler:
    """A diffusers scheduler (``"ddim"`` or ``"ddpm"``) predicting x0, with no clipping."""
    kind = sampler or config.sampler
    kwargs = dict(num_train_timesteps=config.num_train_timesteps, beta_schedule=config.beta_schedule,
                  beta_start=config.beta_start, beta_end=config.beta_end, prediction_type="sample",
                  clip_sample=False)
    if kind == "ddim":
        return DDIMScheduler(**kwargs, set_alpha_to_one=True, steps_offset=0, timestep_spacing="leading")
    if kind == "ddpm":
        return DDPMScheduler(**kwargs, variance_type="fixed_small")
    raise TalkingHeadError(f"Unknown sampler '{kind}'; use ddim or ddpm.")


def sample_timesteps(batch: int, num_train_timesteps: int, generator: torch.Generator | None = None,
                     device: torch.device | str = "cpu") -> torch.Tensor:
    """``t ~ U{0, T-1}`` (the paper's ``U{1, T}`` in diffusers' zero-based indexing). ``[B]`` long."""
    return torch.randint(0, num_train_timesteps, (batch,), generator=generator).to(device)


def add_noise(scheduler: Scheduler, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Eq. 1 in closed form: ``x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise``. ``x0: [B, ...]``, ``t: [B]``."""
    return scheduler.add_noise(x0, noise, t.to(x0.device))

"""Noise schedules through diffusers schedulers (DreamTalk 3.2 Eq. 1, App. C.3: 1000 diffusion steps).

Every scheduler here is a diffusers scheduler, our :class:`~.ddim.DDIMSampler` (diffusers' DDIM to the last bit,
without the 2 s of importing diffusers on every motion generator's default path) or the one-step
:class:`RegressionScheduler`, driven by the one loop of :mod:`.samplers`. diffusers is imported only when one of
its schedulers is asked for. What the network predicts is the scheduler's ``prediction_type``:

- ``sample`` (x0; DreamTalk Eq. 2, Dimitra, FD2Talk Eq. 3): DDIM, DDPM and Euler;
- ``epsilon`` (EMO Eq. 1, Stable Diffusion) and ``v_prediction``: DDIM, DDPM, Euler and EDM (DICE-Talk
  samples in the EDM framework; diffusers' ``EDMEulerScheduler`` has no x0 prediction).

Motion coefficients are not bounded to [-1, 1], so ``clip_sample`` is off (diffusers turns it on by
default for DDPM and DDIM, which would silently clip x0).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypeAlias

import torch

from talkinghead.config import Config
from talkinghead.diffusion.ddim import DDIMSampler
from talkinghead.errors import TalkingHeadError

#: a diffusers scheduler or a :class:`RegressionScheduler` (diffusers ships no precise type stubs)
Scheduler: TypeAlias = Any
SAMPLERS = ("ddim", "ddpm", "euler", "euler-karras", "edm", "regression")
PREDICTIONS = ("sample", "epsilon", "v_prediction")


@dataclass(frozen=True)
class ScheduleConfig(Config):
    """The forward process (training) and the default sampler (inference)."""

    num_train_timesteps: int = 1000
    beta_schedule: str = "linear"
    beta_start: float = 1e-4
    beta_end: float = 0.02
    sampler: Literal["ddim", "ddpm", "euler", "euler-karras", "edm", "regression"] = "ddim"
    num_inference_steps: int = 10
    eta: float = 0.0
    prediction_type: Literal["sample", "epsilon", "v_prediction"] = "sample"

    presets: ClassVar[dict[str, dict[str, Any]]] = {"tiny": {}, "cpu": {}, "paper": {}}


class RegressionScheduler:
    """The "sampler" of a regression model (DreamTalk Tab. 2/4 "same network, no diffusion"): one call
    of the network from its fixed input, zero (normalised) signal at step 0, whose output is the result.

    It has the diffusers scheduler interface the loop uses: ``init_noise_sigma = 0`` turns the drawn
    noise into the zero input, the only timestep is 0, and :meth:`step` returns the prediction.
    """

    init_noise_sigma = 0.0
    order = 1

    def __init__(self) -> None:
        self.timesteps = torch.zeros(1, dtype=torch.long)

    def set_timesteps(self, num_inference_steps: int, device: torch.device | str | None = None) -> None:
        self.timesteps = torch.zeros(1, dtype=torch.long, device=device)

    def scale_model_input(self, sample: torch.Tensor, timestep: Any) -> torch.Tensor:
        return sample

    def step(self, model_output: torch.Tensor, timestep: Any, sample: torch.Tensor, **_: Any) -> Any:
        from types import SimpleNamespace

        return SimpleNamespace(prev_sample=model_output)


def make_scheduler(config: ScheduleConfig, sampler: str | None = None) -> Scheduler:
    """A scheduler for ``sampler`` (default ``config.sampler``) with no clipping, predicting
    ``config.prediction_type``."""
    kind = sampler or config.sampler
    prediction = config.prediction_type
    if prediction not in PREDICTIONS:
        raise TalkingHeadError(f"Unknown prediction type '{prediction}'; use one of {', '.join(PREDICTIONS)}.")
    betas: dict[str, Any] = dict(num_train_timesteps=config.num_train_timesteps, beta_schedule=config.beta_schedule,
                 beta_start=config.beta_start, beta_end=config.beta_end, prediction_type=prediction)
    if kind == "ddim":  # diffusers' DDIMScheduler with clip_sample=False, set_alpha_to_one=True, leading spacing
        return DDIMSampler(**betas)
    if kind == "regression":
        return RegressionScheduler()
    if kind not in SAMPLERS:
        raise TalkingHeadError(f"Unknown sampler '{kind}'; use one of {', '.join(SAMPLERS)}.")
    if kind == "edm" and prediction == "sample":
        raise TalkingHeadError("The EDM sampler needs epsilon or v prediction, not x0 ('sample').")
    import diffusers

    if kind == "ddpm":
        return diffusers.DDPMScheduler(**betas, clip_sample=False, variance_type="fixed_small")
    if kind in ("euler", "euler-karras"):
        return diffusers.EulerDiscreteScheduler(**betas, use_karras_sigmas=kind == "euler-karras")
    return diffusers.EDMEulerScheduler(prediction_type=prediction)


def sample_timesteps(batch: int, num_train_timesteps: int, generator: torch.Generator | None = None,
                     device: torch.device | str = "cpu") -> torch.Tensor:
    """``t ~ U{0, T-1}`` (the paper's ``U{1, T}`` in diffusers' zero-based indexing). ``[B]`` long."""
    return torch.randint(0, num_train_timesteps, (batch,), generator=generator).to(device)


def add_noise(scheduler: Scheduler, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Eq. 1 in closed form: ``x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise``. ``x0: [B, ...]``, ``t: [B]``."""
    return scheduler.add_noise(x0, noise, t.to(x0.device))

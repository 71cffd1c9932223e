"""DDIM (Song, Meng and Ermon, ICLR 2021, Eq. 12), the sampler of DreamTalk, Dimitra and FD2Talk.

The same numbers as diffusers' ``DDIMScheduler`` with the settings :func:`~.schedules.make_scheduler` gives it
(``leading`` timestep spacing, ``set_alpha_to_one``, no clipping, no offset; tested step by step against it),
and the same interface as the one loop of :mod:`.samplers` uses. It is written here because importing diffusers
costs every ``generate`` call about 2 s (diffusers imports ``torch._dynamo``), and DDIM is the default path of
every motion generator; the other schedulers are diffusers' own.

With ``abar`` the cumulative product of ``1 - beta`` (``beta`` linear or scaled-linear over the training steps) and
a prediction of the clean sample ``x0`` and the noise ``eps`` (from whichever the network predicts), one step from
``t`` to ``s = t - T / n`` is

    x_s = sqrt(abar_s) x0 + sqrt(1 - abar_s - sigma^2) eps + sigma z,
    sigma = eta sqrt((1 - abar_s) / (1 - abar_t) (1 - abar_t / abar_s)),    abar_s = 1 below step 0.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from talkinghead.errors import TalkingHeadError


def alpha_bars(num_train_timesteps: int, beta_schedule: str, beta_start: float, beta_end: float) -> torch.Tensor:
    """``abar [T]`` float32 for a ``linear`` or ``scaled_linear`` (linear in sqrt(beta)) schedule."""
    if beta_schedule == "linear":
        betas = torch.linspace(beta_start, beta_end, num_train_timesteps, dtype=torch.float32)
    elif beta_schedule == "scaled_linear":
        betas = torch.linspace(beta_start**0.5, beta_end**0.5, num_train_timesteps, dtype=torch.float32) ** 2
    else:
        raise TalkingHeadError(f"The DDIM sampler knows the linear and scaled_linear beta schedules, not "
                               f"'{beta_schedule}'.")
    return torch.cumprod(1.0 - betas, dim=0)


class DDIMSampler:
    """DDIM over ``num_train_timesteps`` training steps for a network predicting ``prediction_type``
    (``sample`` = x0, ``epsilon`` or ``v_prediction``); see the module docstring."""

    init_noise_sigma = 1.0
    order = 1
    takes_eta = True  # the loop passes its eta to step()

    def __init__(self, num_train_timesteps: int = 1000, beta_schedule: str = "linear", beta_start: float = 1e-4,
                 beta_end: float = 0.02, prediction_type: str = "sample") -> None:
        if prediction_type not in ("sample", "epsilon", "v_prediction"):
            raise TalkingHeadError(f"Unknown prediction type '{prediction_type}'.")
        self.config = SimpleNamespace(num_train_timesteps=num_train_timesteps, beta_schedule=beta_schedule,
                                      beta_start=beta_start, beta_end=beta_end, prediction_type=prediction_type,
                                      clip_sample=False)  # x0 is never clipped (motion is not in [-1, 1])
        self.alphas_cumprod = alpha_bars(num_train_timesteps, beta_schedule, beta_start, beta_end)
        self.final_alpha_cumprod = torch.tensor(1.0)
        self.num_inference_steps: int | None = None
        self.timesteps = torch.from_numpy(np.arange(num_train_timesteps)[::-1].copy())

    def set_timesteps(self, num_inference_steps: int, device: torch.device | str | None = None) -> None:
        """``n`` steps ``t = k * (T // n)``, ``k = n - 1 .. 0`` (long tensor on ``device``)."""
        total = self.config.num_train_timesteps
        if not 1 <= num_inference_steps <= total:
            raise TalkingHeadError(f"The number of sampling steps must be between 1 and {total}, "
                                   f"got {num_inference_steps}.")
        self.num_inference_steps = num_inference_steps
        ratio = total // num_inference_steps
        self.timesteps = torch.from_numpy((np.arange(num_inference_steps) * ratio)[::-1].copy()).to(device)

    def scale_model_input(self, sample: torch.Tensor, timestep: Any = None) -> torch.Tensor:
        return sample

    def step(self, model_output: torch.Tensor, timestep: Any, sample: torch.Tensor, eta: float = 0.0,
             generator: torch.Generator | None = None, variance_noise: torch.Tensor | None = None,
             **_: Any) -> SimpleNamespace:
        """One step from ``timestep`` to the next; ``.prev_sample`` and ``.pred_original_sample`` (x0). With
        ``eta`` > 0 the noise ``z`` is ``variance_noise`` if given, else drawn from ``generator``."""
        if self.num_inference_steps is None:
            raise TalkingHeadError("Call set_timesteps before stepping the DDIM sampler.")
        prev = timestep - self.config.num_train_timesteps // self.num_inference_steps
        abar_t = self.alphas_cumprod[timestep]
        abar_s = self.alphas_cumprod[prev] if prev >= 0 else self.final_alpha_cumprod
        one_minus_t = 1 - abar_t
        kind = self.config.prediction_type
        if kind == "sample":
            x0 = model_output
            eps = (sample - abar_t ** (0.5) * x0) / one_minus_t ** (0.5)
        elif kind == "epsilon":
            x0 = (sample - one_minus_t ** (0.5) * model_output) / abar_t ** (0.5)
            eps = model_output
        else:  # v_prediction
            x0 = (abar_t**0.5) * sample - (one_minus_t**0.5) * model_output
            eps = (abar_t**0.5) * model_output + (one_minus_t**0.5) * sample
        variance = ((1 - abar_s) / one_minus_t) * (1 - abar_t / abar_s)
        sigma = eta * variance ** (0.5)
        out = abar_s ** (0.5) * x0 + (1 - abar_s - sigma**2) ** (0.5) * eps
        if eta > 0:
            if variance_noise is None:
                variance_noise = torch.randn(model_output.shape, generator=generator, device=model_output.device,
                                             dtype=model_output.dtype)
            out = out + sigma * variance_noise
        return SimpleNamespace(prev_sample=out, pred_original_sample=x0)

    def add_noise(self, original_samples: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        """``x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise``, ``timesteps [B]``, ``original_samples [B, ...]``."""
        abar = self.alphas_cumprod.to(device=original_samples.device, dtype=original_samples.dtype)
        abar_t = abar[timesteps.to(original_samples.device)].flatten()
        shape = (-1,) + (1,) * (original_samples.ndim - 1)
        return (abar_t**0.5).reshape(shape) * original_samples + ((1 - abar_t) ** 0.5).reshape(shape) * noise

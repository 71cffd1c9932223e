"""Reverse diffusion loops (DreamTalk 3.3 "Inference"; DDIM 10 steps by default, App. C.4; DDPM for
the style predictor).

A sampler is a small function over a network call ``denoise(x_t, t) -> x0`` (Eq. 2 / Eq. 4); the
scheduler does the posterior step. Conditioning and guidance live in the ``denoise`` closure.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from talkinghead.diffusion.schedules import Scheduler
from talkinghead.log import progress

Denoise = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@torch.no_grad()
def sample(denoise: Denoise, shape: tuple[int, ...], scheduler: Scheduler, num_inference_steps: int,
           generator: torch.Generator | None = None, eta: float = 0.0, device: torch.device | str = "cpu",
           description: str | None = None, initial_noise: torch.Tensor | None = None) -> torch.Tensor:
    """Run the reverse process from ``x_T ~ N(0, I)`` of ``shape`` and return ``x_0``.

    ``denoise(x_t [*shape], t [B] long) -> x0 [*shape]``. ``eta`` applies to DDIM only.
    """
    scheduler.set_timesteps(num_inference_steps, device=device)
    if initial_noise is None:
        x = torch.randn(shape, generator=generator).to(device)
    else:
        x = initial_noise.to(device)
    x = x * scheduler.init_noise_sigma
    steps = scheduler.timesteps
    iterator = progress(steps, description) if description else steps
    is_ddim = type(scheduler).__name__ == "DDIMScheduler"
    for t in iterator:
        t_batch = torch.full((shape[0],), int(t), dtype=torch.long, device=device)
        x0 = denoise(x, t_batch)
        if is_ddim:
            x = scheduler.step(x0, t, x, eta=eta, generator=generator).prev_sample
        else:
            x = scheduler.step(x0, t, x, generator=generator).prev_sample
    return x

"""The reverse-diffusion loop: the only one in the package (issue 11, item 3).

A sampler is the loop below over a network call ``denoise(x_t, t) -> prediction`` and a scheduler
(:func:`talkinghead.diffusion.make_scheduler`): DDIM, DDPM, Euler (optionally with Karras sigmas), EDM,
or the one-step regression "sampler". What the prediction is (x0, epsilon or v) is the scheduler's
``prediction_type``; the scheduler scales the input where its formulation needs it (Euler/EDM) and
does the posterior step. Conditioning, guidance (:mod:`.guidance`) and any batching of the call
(e.g. DreamTalk's windowed lock-step sampling, :mod:`talkinghead.motion.dreamtalk.windowed`) live in
the ``denoise`` closure, never here. DreamTalk 3.3 "Inference": DDIM, 10 steps by default (App. C.4).
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
           description: str | None = None, initial_noise: torch.Tensor | None = None,
           start: torch.Tensor | None = None, strength: float = 1.0) -> torch.Tensor:
    """Run the reverse process from ``x_T ~ N(0, sigma_max^2 I)`` of ``shape`` and return ``x_0``.

    ``denoise(x_t [*shape], t [shape[0]]) -> [*shape]``: what the scheduler's ``prediction_type``
    says (x0, epsilon or v), given the scheduler-scaled input. ``t`` holds the scheduler's timestep
    (long for DDIM/DDPM/regression, float for Euler/EDM) for every row of the batch. ``eta`` applies
    to DDIM only; ``initial_noise`` replaces the draw of ``x_T`` (unit variance, scaled here).
    With ``strength < 1`` and a ``start`` (``[*shape]``, DDIM/DDPM only) the loop begins part-way (SDEdit, Meng et
    al. 2022): only the steps below ``strength`` of the training schedule run, from ``start`` noised to the first
    of them.
    """
    scheduler.set_timesteps(num_inference_steps, device=device)
    x = torch.randn(shape, generator=generator).to(device) if initial_noise is None else initial_noise.to(device)
    x = x * scheduler.init_noise_sigma
    steps = scheduler.timesteps
    if start is not None and strength < 1.0:
        steps = steps[steps < strength * scheduler.config.num_train_timesteps]
        if len(steps) == 0:
            return start.to(device)
        x = scheduler.add_noise(start.to(device), x, steps[:1].expand(shape[0]))
    options = {"eta": eta} if getattr(scheduler, "takes_eta", False) else {}
    for t in progress(steps, description) if description else steps:
        t_batch = t.reshape(1).expand(shape[0]).to(device)
        prediction = denoise(scheduler.scale_model_input(x, t), t_batch)
        x = scheduler.step(prediction, t, x, generator=generator, **options).prev_sample
    return x

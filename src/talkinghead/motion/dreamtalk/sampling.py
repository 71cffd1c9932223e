"""Inference for DreamTalk (3.3 "Inference", App. C.4): motion from audio + a style code with DDIM
(10 steps by default) or DDPM and classifier-free guidance on style (Eq. 8); style codes predicted from
audio + identity with DDPM (the style predictor's sampler, App. C.4).

Both run the one loop of :func:`talkinghead.diffusion.sample`; regression variants (:mod:`.variants`)
take its one-step regression sampler, a single call from their fixed input (zero normalised signal at
step 0; guidance still mixes the conditional and null-style passes for the denoiser, Eq. 8). Long
sequences at generation time go through :mod:`.windowed` instead.
"""

from __future__ import annotations

import torch

from talkinghead.diffusion import ScheduleConfig, guided, make_scheduler, sample
from talkinghead.motion.dreamtalk.denoiser import DreamTalkDenoiser
from talkinghead.motion.dreamtalk.style_predictor import StylePredictor


@torch.no_grad()
def generate_motion(denoiser: DreamTalkDenoiser, audio: torch.Tensor, style: torch.Tensor,
                    schedule: ScheduleConfig | None = None, steps: int | None = None, sampler: str | None = None,
                    guidance_scale: float = 1.0, generator: torch.Generator | None = None,
                    progress_label: str | None = None) -> torch.Tensor:
    """Motion ``[B, L, C]`` (raw units) for audio features ``[B, L, D_a]`` and style codes ``[B, d]``.

    ``guidance_scale`` is omega of Eq. 8 (1 = conditional only, 0 = neutral/unconditional).
    """
    schedule = schedule or ScheduleConfig()
    scheduler = make_scheduler(schedule, "regression" if denoiser.config.regression else sampler)
    b, length = audio.shape[0], audio.shape[1]
    null = denoiser.null_style(b)

    def cond(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return denoiser(x, t, audio, style)

    def uncond(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return denoiser(x, t, audio, null)

    n_steps = steps or (schedule.num_inference_steps if (sampler or schedule.sampler) == "ddim"
                        else schedule.num_train_timesteps)
    x0 = sample(guided(cond, uncond, guidance_scale), (b, length, denoiser.config.motion_dim), scheduler,
                n_steps, generator=generator, eta=schedule.eta, device=audio.device, description=progress_label)
    return denoiser.motion_norm.inverse(x0)


@torch.no_grad()
def predict_style(predictor: StylePredictor, audio: torch.Tensor, identity: torch.Tensor | None,
                  audio_valid: torch.Tensor | None = None, schedule: ScheduleConfig | None = None,
                  steps: int | None = None, sampler: str = "ddpm",
                  generator: torch.Generator | None = None) -> torch.Tensor:
    """Style codes ``[B, d_s]`` (raw units, ready for the denoiser) from audio ``[B, N, D_a]`` and identity."""
    schedule = schedule or ScheduleConfig()
    scheduler = make_scheduler(schedule, "regression" if predictor.config.regression else sampler)

    def denoise(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return predictor(x, t, audio, identity, audio_valid)

    n_steps = steps or (schedule.num_train_timesteps if sampler == "ddpm" else schedule.num_inference_steps)
    s0 = sample(denoise, (audio.shape[0], predictor.config.style_dim), scheduler, n_steps, generator=generator,
                device=audio.device)
    return predictor.style_norm.inverse(s0)

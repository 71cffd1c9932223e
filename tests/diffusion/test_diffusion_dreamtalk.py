"""Diffusion machinery: samplers reproduce a known x0, CFG is Eq. 8, the schedule adds noise as Eq. 1."""

from __future__ import annotations

import pytest
import torch

from talkinghead.diffusion import (
    ScheduleConfig,
    add_noise,
    classifier_free_guidance,
    guided,
    interpolate_styles,
    make_scheduler,
    sample,
)
from talkinghead.errors import TalkingHeadError


@pytest.mark.parametrize("sampler,steps", [("ddim", 10), ("ddim", 3), ("ddpm", 50)])
def test_sampler_with_fixed_x0_model_reproduces_it(sampler: str, steps: int) -> None:
    target = torch.randn(2, 7, 5) * 3.0  # outside [-1, 1]: clip_sample must be off
    calls = []

    def denoise(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        calls.append(int(t[0]))
        return target

    out = sample(denoise, tuple(target.shape), make_scheduler(ScheduleConfig(), sampler), steps,
                 generator=torch.Generator().manual_seed(0))
    assert len(calls) == steps and calls == sorted(calls, reverse=True)
    torch.testing.assert_close(out, target, atol=1e-4, rtol=1e-4)


def test_ddim_default_is_ten_steps_without_clipping() -> None:
    cfg = ScheduleConfig()
    sched = make_scheduler(cfg)
    assert cfg.num_inference_steps == 10 and cfg.num_train_timesteps == 1000
    assert sched.config.clip_sample is False and sched.config.prediction_type == "sample"
    with pytest.raises(TalkingHeadError):
        make_scheduler(cfg, "euler-typo")


def test_add_noise_is_eq1_closed_form() -> None:
    sched = make_scheduler(ScheduleConfig(), "ddpm")
    x0, noise = torch.randn(3, 4), torch.randn(3, 4)
    t = torch.tensor([0, 500, 999])
    abar = sched.alphas_cumprod[t][:, None]
    torch.testing.assert_close(add_noise(sched, x0, noise, t), abar.sqrt() * x0 + (1 - abar).sqrt() * noise)


def test_cfg_equals_eq8_on_known_values() -> None:
    cond, uncond = torch.tensor([2.0, -1.0]), torch.tensor([1.0, 1.0])
    torch.testing.assert_close(classifier_free_guidance(cond, uncond, 3.0), torch.tensor([4.0, -5.0]))
    torch.testing.assert_close(classifier_free_guidance(cond, uncond, 0.0), uncond)
    torch.testing.assert_close(classifier_free_guidance(cond, uncond, 1.0), cond)
    used = []

    def f_cond(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        used.append("c")
        return x + 1

    def f_uncond(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        used.append("u")
        return x * 0

    x = torch.ones(2)
    torch.testing.assert_close(guided(f_cond, f_uncond, 2.5)(x, torch.zeros(1)), 2.5 * (x + 1))
    assert used == ["c", "u"]
    used.clear()
    guided(f_cond, f_uncond, 1.0)(x, torch.zeros(1))
    assert used == ["c"]


def test_style_interpolation_endpoints_and_midpoint() -> None:
    a, b = torch.zeros(4), torch.arange(4.0)
    torch.testing.assert_close(interpolate_styles(a, b, 0.0), a)
    torch.testing.assert_close(interpolate_styles(a, b, 1.0), b)
    torch.testing.assert_close(interpolate_styles(a, b, 0.5), b / 2)

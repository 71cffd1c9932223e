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


def _oracle(scheduler: object, target: torch.Tensor, kind: str):  # type: ignore[no-untyped-def]
    """A network that knows x0 and answers in the scheduler's parameterisation (x0, epsilon or v)."""
    prediction = scheduler.config.prediction_type  # type: ignore[attr-defined]

    def denoise(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if prediction == "sample":
            return target
        if kind == "edm":  # EDM preconditioning: denoised = c_skip * x + c_out * output, x = input / c_in
            sd = scheduler.config.sigma_data  # type: ignore[attr-defined]
            sigma = torch.exp(4.0 * t[0].float())          # t = c_noise = log(sigma) / 4
            raw = x * (sigma**2 + sd**2).sqrt()
            c_skip = sd**2 / (sigma**2 + sd**2)
            c_out = sigma * sd / (sigma**2 + sd**2).sqrt() * (1 if prediction == "epsilon" else -1)
            return (target - c_skip * raw) / c_out
        abar = scheduler.alphas_cumprod[int(t[0])]  # type: ignore[attr-defined]
        eps = (x - abar.sqrt() * target) / (1 - abar).sqrt()
        return eps if prediction == "epsilon" else abar.sqrt() * eps - (1 - abar).sqrt() * target

    return denoise


@pytest.mark.parametrize("sampler,prediction,steps", [
    ("ddim", "epsilon", 10), ("ddim", "v_prediction", 10), ("ddpm", "epsilon", 50), ("euler", "sample", 20),
    ("euler-karras", "sample", 20), ("edm", "epsilon", 25), ("edm", "v_prediction", 25)])
def test_the_one_loop_serves_every_sampler_and_prediction(sampler: str, prediction: str, steps: int) -> None:
    """One loop, many schedulers: with a network that knows x0, every sampler ends at x0 (issue 11)."""
    target = torch.randn(2, 7, 5) * 3.0
    scheduler = make_scheduler(ScheduleConfig(prediction_type=prediction), sampler)  # type: ignore[arg-type]
    out = sample(_oracle(scheduler, target, sampler), tuple(target.shape), scheduler, steps,
                 generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, target, atol=2e-3, rtol=2e-3)


def test_regression_sampler_is_one_call_from_zero_at_step_zero() -> None:
    seen = []

    def denoise(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        seen.append((x.abs().max().item(), t.tolist()))
        return torch.full_like(x, 2.5)

    out = sample(denoise, (3, 4), make_scheduler(ScheduleConfig(), "regression"), 10,
                 generator=torch.Generator().manual_seed(1))
    assert seen == [(0.0, [0, 0, 0])] and torch.equal(out, torch.full((3, 4), 2.5))
    with pytest.raises(TalkingHeadError, match="EDM sampler needs epsilon or v"):
        make_scheduler(ScheduleConfig(), "edm")


@pytest.mark.parametrize("prediction", ["sample", "epsilon", "v_prediction"])
@pytest.mark.parametrize("eta", [0.0, 0.5])
@pytest.mark.parametrize("schedule", ["linear", "scaled_linear"])
def test_our_ddim_is_diffusers_ddim_to_the_last_bit(prediction: str, eta: float, schedule: str) -> None:
    """The DDIM sampler written here (diffusers' import is 2 s of every generate call) steps exactly as diffusers'
    DDIMScheduler with the settings make_scheduler gave it before: same timesteps, same trajectory (with the
    same random draws for eta > 0), same noising."""
    from diffusers import DDIMScheduler

    from talkinghead.diffusion.ddim import DDIMSampler

    betas = dict(num_train_timesteps=1000, beta_schedule=schedule, beta_start=1e-4, beta_end=0.02,
                 prediction_type=prediction)
    ours = DDIMSampler(**betas)
    ref = DDIMScheduler(**betas, clip_sample=False, set_alpha_to_one=True, steps_offset=0, timestep_spacing="leading")
    assert torch.equal(ours.alphas_cumprod, ref.alphas_cumprod)
    for steps in (1, 3, 7, 10, 1000):
        ours.set_timesteps(steps)
        ref.set_timesteps(steps)
        assert torch.equal(ours.timesteps, ref.timesteps)
    torch.manual_seed(0)
    net = torch.nn.Linear(6, 6)  # any deterministic "network"
    x_ours = x_ref = torch.randn(4, 5, 6)
    g_ours, g_ref = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    ours.set_timesteps(10)
    ref.set_timesteps(10)
    with torch.no_grad():
        for t in ours.timesteps:
            a = ours.step(net(x_ours), t, x_ours, eta=eta, generator=g_ours)
            b = ref.step(net(x_ref), t, x_ref, eta=eta, generator=g_ref)
            assert torch.equal(a.prev_sample, b.prev_sample) and torch.equal(a.pred_original_sample,
                                                                             b.pred_original_sample)
            x_ours, x_ref = a.prev_sample, b.prev_sample
    x0, noise, t = torch.randn(3, 2, 6), torch.randn(3, 2, 6), torch.tensor([0, 500, 999])
    assert torch.equal(ours.add_noise(x0, noise, t), ref.add_noise(x0, noise, t))


def test_make_scheduler_imports_diffusers_only_for_its_schedulers() -> None:
    """The default path (DDIM, regression) does not import diffusers; a fresh interpreter tells."""
    import subprocess
    import sys

    code = ("import sys; from talkinghead.diffusion import make_scheduler, ScheduleConfig; "
            "from talkinghead.nn import StepEmbedding; make_scheduler(ScheduleConfig(), 'ddim'); "
            "make_scheduler(ScheduleConfig(), 'regression'); print('diffusers' in sys.modules); "
            "make_scheduler(ScheduleConfig(), 'ddpm'); print('diffusers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "True"]

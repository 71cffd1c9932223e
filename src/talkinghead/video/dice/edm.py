"""The EDM framework of DICE-Talk's video diffusion (Sec. 3 "Preliminaries": "a Stable Video Diffusion (SVD) with EDM
(Karras et al., 2022) framework"; Sec. 4.1: "we utilize (Karras et al., 2022) as diffusion sampler with the denoising
steps set as 25"; the per-condition dropout of Sec. 4.1), written as SVD parameterises it.

**Preconditioning** (EDM Table 1, with SVD's sign): the denoiser is ``D(x; sigma) = c_skip x + c_out F(c_in x,
c_noise)`` with::

    c_skip = sd^2 / (sigma^2 + sd^2)     c_out = -sigma sd / sqrt(sigma^2 + sd^2)
    c_in   = 1 / sqrt(sigma^2 + sd^2)    c_noise = ln(sigma) / 4

``sd`` is ``sigma_data`` (SVD: 1, latents of unit variance). SVD's ``c_out`` carries a minus sign (its network
predicts ``v``; sgm's ``VScalingWithEDMcNoise``); EDM's has none. The sign only matters for loading SVD weights and
is kept for that. ``F`` is :class:`.unet.DICEUNet`; it never sees ``sigma`` itself.

**Training** (EDM Sec. 5): ``ln(sigma) ~ N(P_mean, P_std^2)``, ``x = x0 + sigma n``; the loss is
``lambda(sigma) ||D(x; sigma) - x0||^2`` with ``lambda = (sigma^2 + sd^2) / (sigma sd)^2`` (averaged over the
elements of a sample, then over the batch). This is the paper's ``L_denoising`` (Eq. 1, written there as epsilon
prediction): EDM's weighting makes it the unit-weight regression of ``F`` onto its target. ``paper``: SVD's values
(``sd = 1``, ``P_mean = 0.7``, ``P_std = 1.6`` as public SVD fine-tuning uses them; ``sigma`` from 0.002 to 700 for
sampling, ``rho = 7``). ``cpu``/``tiny``: ``sigma_max = 80`` (EDM's), since a 25-step schedule from 700 spends
several steps where a small model only copies its reference.

**Sampling** (EDM Algorithm 1, deterministic, ``S_churn = 0`` as SVD's pipeline): Karras sigmas
``sigma_i = (smax^(1/rho) + i/(N-1) (smin^(1/rho) - smax^(1/rho)))^rho``, then 0; Euler steps (SVD's pipeline) or
Heun's second-order correction (EDM), ``solver`` in the config; 25 steps by default.

**Per-condition dropout** (Sec. 4.1: "5% of it drops audio, 5% drops image, 5% drops emotion prior, and 5% drops
all conditions"): :func:`draw_condition_drop` assigns each training sample to exactly one of five cases (drop
audio; drop image; drop emotion; drop all three; keep all) with those probabilities, so the four dropping cases are
disjoint and 80% of samples keep everything.

**Guidance** (multi-condition classifier-free guidance, nested in the order image -> audio -> emotion, as
InstructPix2Pix does for two conditions; the paper gives no formula)::

    D = D(0) + w_image [D(I) - D(0)] + w_audio [D(I, A) - D(I)] + w_emotion [D(I, A, E) - D(I, A)]

``D(0)``: every condition dropped; ``D(I)``: image only; ``D(I, A)``: image and audio; ``D(I, A, E)``: all. All
scales 1 gives the conditional ``D(I, A, E)``; leading scales equal to 1 cancel their terms, so those calls are
skipped (all ones: one call). Guidance combines the ``x0`` predictions ``D``; at a shared ``x`` and ``sigma`` this is
the same as combining epsilon or ``v`` predictions. ``GuidanceScales`` defaults are starting points (the paper gives
none), to be tuned on validation clips.

Deviations and choices, and why:

- Eq. 1 is written as an epsilon regression; the paper trains SVD "with EDM framework", so the loss is EDM's
  weighted denoising loss (the same objective up to a per-sigma weight, and what SVD's weights were trained with);
- ``cpu``/``tiny`` sample from ``sigma_max = 80`` instead of SVD's 700 (see above);
- the dropout sentence of Sec. 4.1 is read as four disjoint 5% cases; the guidance formula is this project's (the
  paper states neither the formula nor the scales);
- deterministic sampling only (no EDM churn), as SVD's pipeline and the paper's "25 steps" setting.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch

from talkinghead.config import Config
from talkinghead.errors import TalkingHeadError
from talkinghead.log import progress

#: the conditions of DICE-Talk's denoiser, in guidance order (image -> audio -> emotion)
CONDITIONS = ("image", "audio", "emotion")

#: ``F(c_in x [B, ...], c_noise [B]) -> output [B, ...]`` or ``(output, extra)`` (e.g. the UNet's pooled features)
Network = Callable[[torch.Tensor, torch.Tensor], Any]
#: ``D(x [B, ...], sigma [B]) -> x0 estimate [B, ...]``
Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
#: ``predict(x [B, ...], sigma [B], dropped condition names) -> x0 estimate [B, ...]``
ConditionalDenoiser = Callable[[torch.Tensor, torch.Tensor, frozenset[str]], torch.Tensor]


@dataclass(frozen=True)
class EDMConfig(Config):
    """``sigma_data``; training noise ``ln sigma ~ N(p_mean, p_std^2)``; the sampler's ``sigma_min``, ``sigma_max``,
    ``rho``, ``steps`` and ``solver``; the per-condition dropout rates ``drop_audio``, ``drop_image``,
    ``drop_emotion``, ``drop_all`` (disjoint cases)."""

    sigma_data: float = 1.0
    p_mean: float = 0.7
    p_std: float = 1.6
    sigma_min: float = 0.002
    sigma_max: float = 700.0
    rho: float = 7.0
    steps: int = 25
    solver: Literal["euler", "heun"] = "euler"
    drop_audio: float = 0.05
    drop_image: float = 0.05
    drop_emotion: float = 0.05
    drop_all: float = 0.05

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {"sigma_max": 80.0, "steps": 10},
        "cpu": {"sigma_max": 80.0},
        "paper": {},
    }

    def __post_init__(self) -> None:
        if self.sigma_data <= 0 or self.p_std <= 0 or not 0 < self.sigma_min < self.sigma_max or self.rho <= 0:
            raise TalkingHeadError("EDM needs positive sigma_data, p_std and rho and 0 < sigma_min < sigma_max.")
        if self.steps < 1:
            raise TalkingHeadError("The EDM sampler needs one step at least.")
        rates = (self.drop_audio, self.drop_image, self.drop_emotion, self.drop_all)
        if min(rates) < 0 or sum(rates) > 1:
            raise TalkingHeadError("The condition dropout rates must be non-negative and sum to at most 1.")


@dataclass(frozen=True)
class GuidanceScales(Config):
    """The three guidance scales of the nested formula in the module docstring (1, 1, 1: no guidance)."""

    image: float = 2.0
    audio: float = 3.0
    emotion: float = 3.0

    def as_tuple(self) -> tuple[float, float, float]:
        return (self.image, self.audio, self.emotion)


# ------------------------------------------------------------------------------------------ preconditioning

@dataclass(frozen=True)
class Preconditioning:
    """EDM's ``c_skip``, ``c_out``, ``c_in``, ``c_noise`` (each shaped like ``sigma``)."""

    c_skip: torch.Tensor
    c_out: torch.Tensor
    c_in: torch.Tensor
    c_noise: torch.Tensor


def precondition(sigma: torch.Tensor, sigma_data: float) -> Preconditioning:
    """The preconditioning of the module docstring at noise levels ``sigma`` (any shape, > 0)."""
    sd2 = sigma_data ** 2
    total = sigma ** 2 + sd2
    return Preconditioning(c_skip=sd2 / total, c_out=-sigma * sigma_data / total.sqrt(), c_in=1.0 / total.sqrt(),
                           c_noise=0.25 * sigma.log())


def loss_weight(sigma: torch.Tensor, sigma_data: float) -> torch.Tensor:
    """``lambda(sigma) = (sigma^2 + sd^2) / (sigma sd)^2`` (so ``lambda c_out^2 = 1``)."""
    return (sigma ** 2 + sigma_data ** 2) / (sigma * sigma_data) ** 2


def _per_sample(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``v [B]`` -> ``[B, 1, ..., 1]`` broadcasting against ``x [B, ...]``."""
    return v.reshape(-1, *([1] * (x.ndim - 1))).to(x.dtype)


def denoise(network: Network, x: torch.Tensor, sigma: torch.Tensor, sigma_data: float) -> tuple[torch.Tensor, Any]:
    """``D(x; sigma) = c_skip x + c_out F(c_in x, c_noise)``: ``x [B, ...]``, ``sigma [B]`` -> (``[B, ...]``, what
    the network returned besides its output, or None)."""
    p = precondition(sigma.to(torch.float32), sigma_data)
    result = network(x * _per_sample(p.c_in, x), p.c_noise.to(x.dtype))
    output, extra = result if isinstance(result, tuple) else (result, None)
    return x * _per_sample(p.c_skip, x) + output * _per_sample(p.c_out, x), extra


def edm_denoiser(network: Network, sigma_data: float) -> Denoiser:
    """The network wrapped into ``D(x, sigma) -> x0``."""

    def denoiser(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        return denoise(network, x, sigma, sigma_data)[0]

    return denoiser


# ------------------------------------------------------------------------------------------------- training

def training_sigmas(batch: int, config: EDMConfig, generator: torch.Generator | None = None,
                    device: torch.device | str = "cpu") -> torch.Tensor:
    """``[B]`` noise levels with ``ln sigma ~ N(P_mean, P_std^2)``."""
    n = torch.randn(batch, generator=generator, device="cpu" if generator is None else generator.device)
    return (config.p_mean + config.p_std * n).exp().to(device)


@dataclass
class EDMLoss:
    """``loss`` (scalar, the batch mean), ``per_sample [B]``, the ``sigma [B]`` drawn, ``denoised`` ``D(x; sigma)``
    and ``extra`` (what the network returned besides its output, e.g. pooled features)."""

    loss: torch.Tensor
    per_sample: torch.Tensor
    sigma: torch.Tensor
    denoised: torch.Tensor
    extra: Any = None


def edm_loss(network: Network, x0: torch.Tensor, config: EDMConfig, generator: torch.Generator | None = None,
             sigma: torch.Tensor | None = None, noise: torch.Tensor | None = None) -> EDMLoss:
    """EDM's training loss on clean latents ``x0 [B, ...]`` (``sigma [B]`` and ``noise`` drawn unless given)."""
    b = x0.shape[0]
    if sigma is None:
        sigma = training_sigmas(b, config, generator, x0.device)
    if noise is None:
        noise = torch.randn(x0.shape, generator=generator, device="cpu" if generator is None else generator.device)
    sigma, noise = sigma.to(x0.device), noise.to(x0.device, x0.dtype)
    if sigma.shape != (b,) or noise.shape != x0.shape:
        raise TalkingHeadError(f"EDM's loss needs one sigma per sample ([{b}]) and noise shaped like the latents.")
    denoised, extra = denoise(network, x0 + noise * _per_sample(sigma, x0), sigma, config.sigma_data)
    error = (denoised.float() - x0.float()).pow(2).flatten(1).mean(dim=1)           # [B]
    per_sample = loss_weight(sigma.float(), config.sigma_data) * error
    return EDMLoss(per_sample.mean(), per_sample, sigma, denoised, extra)


def draw_condition_drop(batch: int, config: EDMConfig, generator: torch.Generator | None = None,
                        device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    """Which conditions each of ``batch`` training samples drops: ``{"image"|"audio"|"emotion": bool [B]}`` (True =
    dropped), one of the disjoint cases of the module docstring per sample."""
    u = torch.rand(batch, generator=generator, device="cpu" if generator is None else generator.device)
    edges = torch.tensor([config.drop_audio, config.drop_image, config.drop_emotion, config.drop_all]).cumsum(0)
    case = torch.bucketize(u, edges.to(u.device), right=True)          # 0 audio, 1 image, 2 emotion, 3 all, 4 none
    every = case == 3
    return {"audio": ((case == 0) | every).to(device), "image": ((case == 1) | every).to(device),
            "emotion": ((case == 2) | every).to(device)}


# ------------------------------------------------------------------------------------------------- sampling

def karras_sigmas(steps: int, sigma_min: float, sigma_max: float, rho: float,
                  device: torch.device | str = "cpu") -> torch.Tensor:
    """``[steps + 1]`` noise levels from ``sigma_max`` down to ``sigma_min``, then 0 (EDM Eq. 5)."""
    if steps == 1:
        return torch.tensor([sigma_max, 0.0], device=device)
    ramp = torch.linspace(0, 1, steps, dtype=torch.float64)
    inv = sigma_max ** (1 / rho) + ramp * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))
    return torch.cat([inv ** rho, torch.zeros(1, dtype=torch.float64)]).float().to(device)


@torch.no_grad()
def sample_edm(denoiser: Denoiser, noise: torch.Tensor, config: EDMConfig, steps: int | None = None,
               solver: Literal["euler", "heun"] | None = None, description: str | None = None) -> torch.Tensor:
    """Integrate the probability-flow ODE from ``x = sigma_max * noise`` (``noise [B, ...]``, unit variance) to
    sigma 0 and return ``x0 [B, ...]`` (EDM Algorithm 1 without churn; Euler, or Heun with an Euler last step)."""
    steps = steps or config.steps
    solver = solver or config.solver
    if solver not in ("euler", "heun"):
        raise TalkingHeadError(f"Unknown EDM solver '{solver}'; choose euler or heun.")
    sigmas = karras_sigmas(steps, config.sigma_min, config.sigma_max, config.rho, noise.device)
    x = noise * sigmas[0]
    b = noise.shape[0]
    indices = range(steps)
    for i in progress(indices, description) if description else indices:
        s, s_next = sigmas[i], sigmas[i + 1]
        slope = (x - denoiser(x, s.expand(b))) / s                                    # dx/dsigma, EDM Eq. 3
        x_next = x + (s_next - s) * slope
        if solver == "heun" and s_next > 0:
            slope_next = (x_next - denoiser(x_next, s_next.expand(b))) / s_next
            x_next = x + (s_next - s) * 0.5 * (slope + slope_next)
        x = x_next
    return x


def dropped_masks(dropped: frozenset[str] | set[str], batch: int,
                  device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    """``{name: all-True bool [batch]}`` for the conditions in ``dropped`` (the network's ``drop`` argument)."""
    unknown = sorted(set(dropped) - set(CONDITIONS))
    if unknown:
        raise TalkingHeadError(f"Cannot drop {', '.join(unknown)}; the conditions are {', '.join(CONDITIONS)}.")
    return {name: torch.ones(batch, dtype=torch.bool, device=device) for name in dropped}


def guided_denoiser(predict: ConditionalDenoiser, scales: GuidanceScales) -> Denoiser:
    """The nested multi-condition guidance of the module docstring over ``predict(x, sigma, dropped)``; calls with
    cancelled terms are skipped."""
    w = scales.as_tuple()
    #: condition set k keeps the first k conditions of CONDITIONS (image, audio, emotion)
    drops = [frozenset(CONDITIONS[k:]) for k in range(len(CONDITIONS) + 1)]
    first = 0
    while first < len(w) and w[first] == 1.0:
        first += 1

    def denoiser(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        previous = predict(x, sigma, drops[first])
        out = previous
        for k in range(first + 1, len(drops)):
            current = predict(x, sigma, drops[k])
            out = out + w[k - 1] * (current - previous)
            previous = current
        return out

    return denoiser

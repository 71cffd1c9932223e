"""FD2Talk's Diffusion UNet ``theta_unet`` (Sec. 3.3, Fig. 3, Eq. 6-7 and 16): one frame's latent from noise,
conditioned on the frame's expression and pose coefficients and on the reference latent.

A latent UNet of diffusers blocks (``ResnetBlock2D``, ``Downsample2D``, ``Upsample2D``, ``Attention``, the
``Timesteps``/``TimestepEmbedding`` step embedding). At the resolutions listed in ``attention_levels``, in the
encoder, the middle and the decoder, a :class:`DualCrossAttention` block holds the paper's two cross-attention
layers:

- ``phi_1`` (Eq. 6): queries from the noisy latent's features ``J_t``, keys and values from the concatenated
  coefficients ``{beta_0, p_0}`` after a linear projection: ``m_1 = phi_1({beta_0, p_0}, J_t)``;
- ``phi_2`` (Eq. 7): queries from ``m_1``, keys and values from the reference latent ``x`` as a sequence (one token
  per latent pixel, linearly projected, plus a fixed 2-D sinusoidal positional encoding): ``m_2 = phi_2(x, m_1)``.

It predicts the clean latent ``J~_0`` (Eq. 16, x0 prediction); the sampler steps with the schedule (Eq. 5).

``reference_input = True`` (``--reference-input``; not in the paper) also concatenates the reference latent to the
noisy latent at the UNet's input (``2 d`` channels), as image-conditioned latent diffusion models often do: the
reference then reaches every position of the first layer aligned with it, instead of only through ``phi_2``'s
attention, which a CPU-sized model trained for a thousand steps learns slowly (its frames stay an average face).
The paper's two cross-attentions stay.

``conditioning = "concatenated"`` is Table 2's "Concat" row: the coefficient tokens and the reference tokens are
joined into one sequence read by one cross-attention layer, the "intuitive approach" of Sec. 3.3.

Deviations, and why: the paper does not give the UNet's widths, depths or where the attention sits; ``cpu`` is
sized for 32 x 32 latents on a CPU. The linear projection of ``{beta_0, p_0}`` yields ``motion_tokens`` tokens
(1 is the paper's single projected vector; with one key, attention would be a fixed linear map of it, so the
``cpu`` and ``paper`` presets use 8). Coefficients are standardised with the training set's statistics (buffers).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from talkinghead.checkpoint import PretrainedMixin
from talkinghead.config import Config
from talkinghead.errors import TalkingHeadError
from talkinghead.nn.normalize import Normalizer

CONDITIONINGS = ("two_cross_attention", "concatenated")


@dataclass(frozen=True)
class UNetConfig(Config):
    """``latent_channels`` ``d``; ``channels`` per resolution level (each but the last halves the resolution);
    ``attention_levels`` (one flag per level) where the cross-attention blocks sit (the middle always has one);
    ``layers_per_level`` resnet blocks; ``heads`` x ``head_dim`` attention; ``context_dim`` of the condition
    tokens; ``motion_dim`` (expression + 6 pose); ``motion_tokens``; ``conditioning`` (see the module docstring);
    ``latent_size`` the side of the latents (for the reference's positional encoding); ``reference_input``: the
    reference latent also concatenated to the noisy latent at the input (not in the paper; see the docstring)."""

    latent_channels: int = 4
    channels: tuple[int, ...] = (128, 256, 512)
    attention_levels: tuple[bool, ...] = (True, True, True)
    layers_per_level: int = 2
    heads: int = 8
    head_dim: int = 32
    context_dim: int = 256
    norm_groups: int = 32
    motion_dim: int = 46
    motion_tokens: int = 8
    conditioning: str = "two_cross_attention"
    latent_size: int = 64
    reference_input: bool = False

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {"channels": (16, 32), "attention_levels": (False, True), "layers_per_level": 1, "heads": 2,
                 "head_dim": 8, "context_dim": 16, "norm_groups": 8, "motion_tokens": 2, "latent_size": 8},
        "cpu": {"channels": (64, 96, 128), "attention_levels": (False, True, True), "layers_per_level": 1,
                "heads": 4, "head_dim": 32, "context_dim": 128, "norm_groups": 16, "latent_size": 32},
        "paper": {},
    }

    def __post_init__(self) -> None:
        if len(self.attention_levels) != len(self.channels):
            raise TalkingHeadError("attention_levels needs one flag per entry of channels.")
        if self.conditioning not in CONDITIONINGS:
            raise TalkingHeadError(f"conditioning must be one of {', '.join(CONDITIONINGS)}, not "
                                   f"'{self.conditioning}'.")


def positions_2d(size: int, dim: int) -> torch.Tensor:
    """Fixed 2-D sinusoidal positions ``[size * size, dim]`` (half the channels for rows, half for columns)."""
    quarter = dim // 4
    freq = torch.exp(-math.log(10000.0) * torch.arange(quarter) / max(quarter, 1))
    coords = torch.arange(size, dtype=torch.float32)
    rows = coords[:, None] * freq[None]                                         # [S, dim/4]
    row_code = torch.cat([rows.sin(), rows.cos()], dim=-1)                       # [S, dim/2]
    ys, xs = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    code = torch.cat([row_code[ys.reshape(-1)], row_code[xs.reshape(-1)]], dim=-1)   # [S*S, 4*quarter]
    return nn.functional.pad(code, (0, dim - code.shape[-1]))


class DualCrossAttention(nn.Module):
    """``phi_1`` then ``phi_2`` (Eq. 6-7) over a feature map, then a feed-forward layer; residual, with the
    output projection starting at zero. ``x [B, C, H, W]``, ``motion [B, Km, D]``, ``reference [B, Kr, D]``."""

    def __init__(self, channels: int, config: UNetConfig) -> None:
        from diffusers.models.attention_processor import Attention

        super().__init__()
        self.concatenated = config.conditioning == "concatenated"
        self.norm = nn.GroupNorm(min(config.norm_groups, channels), channels, eps=1e-6)
        self.proj_in = nn.Linear(channels, channels)
        def attention() -> Attention:
            return Attention(channels, cross_attention_dim=config.context_dim, heads=config.heads,
                             dim_head=config.head_dim)

        self.norm1 = nn.LayerNorm(channels)
        self.phi1 = attention()
        self.norm2 = nn.LayerNorm(channels)
        self.phi2 = None if self.concatenated else attention()
        self.norm3 = nn.LayerNorm(channels)
        self.ff = nn.Sequential(nn.Linear(channels, 4 * channels), nn.GELU(), nn.Linear(4 * channels, channels))
        self.proj_out = nn.Linear(channels, channels)
        nn.init.zeros_(self.proj_out.weight)
        nn.init.zeros_(self.proj_out.bias)

    def forward(self, x: torch.Tensor, motion: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        tokens = self.proj_in(self.norm(x).flatten(2).transpose(1, 2))           # [B, HW, C]
        if self.phi2 is None:                                                    # Table 2 "Concat"
            context = torch.cat([motion, reference], dim=1)
            tokens = tokens + self.phi1(self.norm1(tokens), encoder_hidden_states=context)
        else:
            tokens = tokens + self.phi1(self.norm1(tokens), encoder_hidden_states=motion)      # Eq. 6: m_1
            tokens = tokens + self.phi2(self.norm2(tokens), encoder_hidden_states=reference)   # Eq. 7: m_2
        tokens = tokens + self.ff(self.norm3(tokens))
        return x + self.proj_out(tokens).transpose(1, 2).reshape(b, c, h, w)


class Level(nn.Module):
    """One resolution level: ``res[j]`` (resnet blocks with the step embedding), each followed by ``attn[j]`` (a
    :class:`DualCrossAttention` or nothing), then ``resample`` (down, up or nothing; applied by the caller)."""

    def __init__(self, res: list[nn.Module], attn: list[nn.Module], resample: nn.Module) -> None:
        super().__init__()
        self.res = nn.ModuleList(res)
        self.attn = nn.ModuleList(attn)
        self.resample = resample

    def forward(self, h: torch.Tensor, emb: torch.Tensor, motion: torch.Tensor, reference: torch.Tensor
                ) -> torch.Tensor:
        for res, attn in zip(self.res, self.attn, strict=True):
            h = res(h, emb)
            h = attn(h, motion, reference) if isinstance(attn, DualCrossAttention) else h
        return h


class FrameUNet(PretrainedMixin, nn.Module):
    """``theta_unet(J_t, t, beta, p, x) -> J~_0`` (Eq. 16). ``forward(latent [B, d, h, w], t [B],
    motion [B, motion_dim] raw, reference [B, d, h, w]) -> [B, d, h, w]``."""

    component: ClassVar[str] = "fd2talk.unet"
    config_class: ClassVar[type[Config]] = UNetConfig
    checkpoint_inputs: ClassVar[tuple[str, ...]] = ("layout",)
    ref_positions: torch.Tensor

    def __init__(self, config: UNetConfig | None = None, layout: dict[str, Any] | None = None) -> None:
        from diffusers.models.embeddings import TimestepEmbedding, Timesteps
        from diffusers.models.resnet import Downsample2D, ResnetBlock2D, Upsample2D

        super().__init__()
        self.config = config = config or UNetConfig()
        self.layout = layout
        chans, d, groups = config.channels, config.latent_channels, config.norm_groups
        temb = 4 * chans[0]
        self.time_proj = Timesteps(chans[0], flip_sin_to_cos=True, downscale_freq_shift=0)
        self.time_embedding = TimestepEmbedding(chans[0], temb)
        self.motion_norm = Normalizer(config.motion_dim)
        self.motion_proj = nn.Linear(config.motion_dim, config.motion_tokens * config.context_dim)
        self.reference_proj = nn.Linear(d, config.context_dim)
        self.register_buffer("ref_positions", positions_2d(config.latent_size, config.context_dim), persistent=False)
        self.conv_in = nn.Conv2d(2 * d if config.reference_input else d, chans[0], 3, padding=1)

        def res(cin: int, cout: int) -> nn.Module:
            return ResnetBlock2D(in_channels=cin, out_channels=cout, temb_channels=temb, groups=min(groups, cin),
                                 groups_out=min(groups, cout))

        def attn(c: int, on: bool) -> nn.Module:  # nothing where the level has no attention
            return DualCrossAttention(c, config) if on else nn.Identity()

        self.down = nn.ModuleList()
        cin = chans[0]
        for i, (c, on) in enumerate(zip(chans, config.attention_levels, strict=True)):
            last = i == len(chans) - 1
            self.down.append(Level([res(cin if j == 0 else c, c) for j in range(config.layers_per_level)],
                                   [attn(c, on) for _ in range(config.layers_per_level)],
                                   nn.Identity() if last else Downsample2D(c, use_conv=True, padding=1, name="op")))
            cin = c
        self.mid_res1, self.mid_attn, self.mid_res2 = res(cin, cin), DualCrossAttention(cin, config), res(cin, cin)
        self.up = nn.ModuleList()
        for i in reversed(range(len(chans))):
            c, on = chans[i], config.attention_levels[i]
            self.up.append(Level([res((cin + c) if j == 0 else c, c) for j in range(config.layers_per_level)],
                                 [attn(c, on) for _ in range(config.layers_per_level)],
                                 Upsample2D(c, use_conv=True) if i > 0 else nn.Identity()))
            cin = c
        self.norm_out = nn.GroupNorm(min(groups, cin), cin, eps=1e-6)
        self.conv_out = nn.Conv2d(cin, d, 3, padding=1)

    def conditions(self, motion: torch.Tensor, reference: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw coefficients ``[B, motion_dim]`` and the reference latent ``[B, d, h, w]`` -> the tokens of ``phi_1``
        ``[B, motion_tokens, D]`` and of ``phi_2`` ``[B, h*w, D]`` (computed once per frame for every step)."""
        cfg = self.config
        b, _, h, w = reference.shape
        motion_tokens = self.motion_proj(self.motion_norm(motion)).view(b, cfg.motion_tokens, cfg.context_dim)  # type: ignore[attr-defined]
        ref = self.reference_proj(reference.flatten(2).transpose(1, 2))           # [B, h*w, D]
        positions = self.ref_positions if h * w == self.ref_positions.shape[0] else \
            positions_2d(h, ref.shape[-1]).to(ref) if h == w else None
        if positions is None:
            raise TalkingHeadError(f"The UNet needs square latents, not {h} x {w}.")
        return motion_tokens, ref + positions

    def forward(self, latent: torch.Tensor, t: torch.Tensor, motion: torch.Tensor, reference: torch.Tensor,
                tokens: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        motion_tokens, ref_tokens = tokens if tokens is not None else self.conditions(motion, reference)
        emb = self.time_embedding(self.time_proj(t.reshape(-1).expand(latent.shape[0])).to(latent.dtype))
        h = self.conv_in(torch.cat([latent, reference], dim=1) if self.config.reference_input else latent)  # type: ignore[attr-defined]
        skips = []
        for level in self.down:
            h = level(h, emb, motion_tokens, ref_tokens)                      # type: ignore[operator]
            skips.append(h)
            h = level.resample(h)                                              # type: ignore[operator]
        h = self.mid_res2(self.mid_attn(self.mid_res1(h, emb), motion_tokens, ref_tokens), emb)
        for level in self.up:
            h = level(torch.cat([h, skips.pop()], dim=1), emb, motion_tokens, ref_tokens)   # type: ignore[operator]
            h = level.resample(h)                                              # type: ignore[operator]
        return self.conv_out(nn.functional.silu(self.norm_out(h)))  # type: ignore[no-any-return]

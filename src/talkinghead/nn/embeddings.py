"""Position and diffusion-step embeddings (from DreamTalk's networks, ``motion/dreamtalk``).

- :func:`sinusoidal_positions`: the sine/cosine encodings of Vaswani et al. (2017, 3.5) for
  variable-length sequences;
- :class:`StepEmbedding`: the diffusion-step embedding (the sinusoidal projection of the step, cosines first,
  then a two-layer SiLU MLP): the same numbers and state-dict keys as diffusers' ``Timesteps`` +
  ``TimestepEmbedding`` (tested against them), written here because importing diffusers costs every
  ``generate`` call about 2 s (it imports ``torch._dynamo``).
"""

from __future__ import annotations

import math

import torch
from torch import nn


def sinusoidal_positions(length: int, dim: int, device: torch.device | None = None) -> torch.Tensor:
    """``[length, dim]`` sine/cosine positional encodings."""
    position = torch.arange(length, dtype=torch.float32, device=device)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32, device=device) * (-math.log(10000.0) / dim))
    pe = torch.zeros(length, dim, device=device)
    pe[:, 0::2] = torch.sin(position * freq)
    pe[:, 1::2] = torch.cos(position * freq)[:, : dim // 2]
    return pe


class StepProjection(nn.Module):
    """Step ``t [B]`` -> ``[B, dim]``: ``cos(t w_k)`` then ``sin(t w_k)``, ``w_k = 10000^(-k / (dim / 2))``."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        half = self.dim // 2
        exponent = -math.log(10000.0) * torch.arange(0, half, dtype=torch.float32, device=t.device) / half
        angle = t[:, None].float() * torch.exp(exponent)[None, :]
        out = torch.cat([torch.cos(angle), torch.sin(angle)], dim=-1)
        return nn.functional.pad(out, (0, 1, 0, 0)) if self.dim % 2 else out


class StepMLP(nn.Module):
    """``[B, dim]`` -> ``[B, dim]``: linear, SiLU, linear."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.linear_1 = nn.Linear(dim, dim)
        self.act = nn.SiLU()
        self.linear_2 = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear_2(self.act(self.linear_1(x)))


class StepEmbedding(nn.Module):
    """Diffusion step ``t [B]`` -> ``[B, d]`` (sinusoidal projection + MLP)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.project = StepProjection(dim)
        self.embed = StepMLP(dim)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.embed(self.project(t).to(self.embed.linear_1.weight.dtype))

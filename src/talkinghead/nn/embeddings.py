"""Position and diffusion-step embeddings (from DreamTalk's networks, ``motion/dreamtalk``).

- :func:`sinusoidal_positions`: the sine/cosine encodings of Vaswani et al. (2017, 3.5) for
  variable-length sequences;
- :class:`StepEmbedding`: the diffusion-step embedding, diffusers' ``Timesteps`` + ``TimestepEmbedding``.
"""

from __future__ import annotations

import math

import torch
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from torch import nn


def sinusoidal_positions(length: int, dim: int, device: torch.device | None = None) -> torch.Tensor:
    """``[length, dim]`` sine/cosine positional encodings."""
    position = torch.arange(length, dtype=torch.float32, device=device)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32, device=device) * (-math.log(10000.0) / dim))
    pe = torch.zeros(length, dim, device=device)
    pe[:, 0::2] = torch.sin(position * freq)
    pe[:, 1::2] = torch.cos(position * freq)[:, : dim // 2]
    return pe


class StepEmbedding(nn.Module):
    """Diffusion step ``t [B]`` -> ``[B, d]`` (sinusoidal projection + MLP, from diffusers)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.project = Timesteps(dim, flip_sin_to_cos=True, downscale_freq_shift=0)
        self.embed = TimestepEmbedding(dim, dim)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return self.embed(self.project(t).to(self.embed.linear_1.weight.dtype))

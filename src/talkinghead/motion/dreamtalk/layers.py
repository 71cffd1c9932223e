"""Small building blocks shared by the DreamTalk networks (DreamTalk 3.2, App. C.1).

- sinusoidal positional encodings (Vaswani et al.) for variable-length sequences;
- the diffusion-step embedding (diffusers' ``Timesteps`` + ``TimestepEmbedding``);
- self-attention pooling (Safari et al. 2020, cited as [56]) used to turn style tokens into a code;
- per-feature normalisation buffers stored in the checkpoint.
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


class SelfAttentionPooling(nn.Module):
    """Self-attention pooling [56]: ``w = softmax(v^T tanh(W h_i))``, ``s = sum_i w_i h_i``."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(dim, dim)
        self.score = nn.Linear(dim, 1, bias=False)

    def forward(self, tokens: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        """``tokens: [B, N, d]``, ``valid: [B, N]`` bool (True = real frame) -> ``[B, d]``."""
        logits = self.score(torch.tanh(self.proj(tokens))).squeeze(-1)  # [B, N]
        if valid is not None:
            logits = logits.masked_fill(~valid, float("-inf"))
        weights = torch.softmax(logits, dim=-1)
        return torch.einsum("bn,bnd->bd", weights, tokens)


def transformer_encoder(dim: int, heads: int, layers: int, ff_dim: int, dropout: float) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(dim, heads, ff_dim, dropout, batch_first=True)
    return nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)


class Normalizer(nn.Module):
    """Per-channel ``(x - mean) / std`` with the statistics kept as checkpoint buffers."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    def set_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.std.copy_(torch.as_tensor(std, dtype=torch.float32).clamp_min(1e-4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def inverse(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.std + self.mean

"""DreamTalk 3.2 / App. C.1, the style encoder (used by the denoising network and, with its own
parameters, by the style-aware lip expert).

The expression sequence of a style reference clip ``[N, E]`` (paper: N = 64..256 frames, E = 64 3DMM
coefficients) is lifted to ``d_model`` by a linear layer, encoded by a transformer encoder (three
8-head layers, hidden 256) and pooled by self-attention pooling [56] into the style code ``s [d]``.
Padding frames are masked out of both attention and pooling.
"""

from __future__ import annotations

import torch
from torch import nn

from talkinghead.nn.attention import transformer_encoder
from talkinghead.nn.embeddings import sinusoidal_positions
from talkinghead.nn.pooling import SelfAttentionPooling


class StyleEncoder(nn.Module):
    def __init__(self, in_dim: int, d_model: int, heads: int, layers: int, ff_dim: int, dropout: float) -> None:
        super().__init__()
        self.d_model = d_model
        self.lift = nn.Linear(in_dim, d_model)
        self.encoder = transformer_encoder(d_model, heads, layers, ff_dim, dropout)
        self.pool = SelfAttentionPooling(d_model)

    def forward(self, motion: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        """``motion: [B, N, in_dim]`` (normalised), ``valid: [B, N]`` bool -> style code ``[B, d]``."""
        tokens = self.lift(motion) + sinusoidal_positions(motion.shape[1], self.d_model, motion.device)
        pad = None if valid is None else ~valid
        tokens = self.encoder(tokens, src_key_padding_mask=pad)
        return self.pool(tokens, valid)

"""DreamTalk 3.2 / App. C.1, the denoising network's audio encoder.

An 11-frame window of audio features (``2w + 1`` with ``w = 5``) is projected to ``d_model`` by a linear
layer, passed through a transformer encoder (paper: three 8-head layers, hidden 256) and a final linear
layer, giving ``11 x d`` audio tokens. Learned positional embeddings mark each token's place in the window.
"""

from __future__ import annotations

import torch
from torch import nn

from talkinghead.nn.attention import transformer_encoder


class AudioWindowEncoder(nn.Module):
    def __init__(self, audio_dim: int, d_model: int, heads: int, layers: int, ff_dim: int, window: int,
                 dropout: float) -> None:
        super().__init__()
        self.reduce = nn.Linear(audio_dim, d_model)
        self.position = nn.Parameter(torch.zeros(2 * window + 1, d_model))
        self.encoder = transformer_encoder(d_model, heads, layers, ff_dim, dropout)
        self.out = nn.Linear(d_model, d_model)
        nn.init.normal_(self.position, std=0.02)

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        """``windows: [N, 2w+1, D_audio]`` -> audio tokens ``[N, 2w+1, d]``."""
        tokens = self.reduce(windows) + self.position
        return self.out(self.encoder(tokens))

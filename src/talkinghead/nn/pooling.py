"""Self-attention pooling (Safari et al. 2020; DreamTalk's style encoder cites it as [56], 3.2 / App. C.1).

Moved here from ``motion/dreamtalk``: it turns any token sequence into one vector.
"""

from __future__ import annotations

import torch
from torch import nn


class SelfAttentionPooling(nn.Module):
    """Self-attention pooling: ``w = softmax(v^T tanh(W h_i))``, ``s = sum_i w_i h_i``."""

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

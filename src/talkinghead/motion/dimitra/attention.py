"""Efficient attention (Shen et al., WACV 2021, "Efficient Attention: Attention with Linear Complexities") and
the pre-norm transformer layers built on it: Dimitra III-B.3, "all attention layers employ efficient attention [24]".

Dot-product attention normalises the ``[N, M]`` similarity matrix ``softmax(Q K^T)`` row by row. Efficient
attention normalises queries and keys separately and multiplies in the other order::

    E(Q, K, V) = rho_q(Q) (rho_k(K)^T V)

with ``rho_q`` a softmax of each query over its ``d_k`` features and ``rho_k`` a softmax of each key feature
over the ``M`` positions. ``rho_k(K)^T V`` is a ``[d_k, d_v]`` global context per head: each of its ``d_k``
rows is one attention map over the positions applied to the values, and each query mixes those rows with its
own weights. Time and memory are ``O((N + M) d_k d_v)`` per head instead of ``O(N M d)``; no ``[N, M]`` tensor
is ever built. As in Shen et al. there is no ``1/sqrt(d_k)`` scale: each softmax normalises on its own.

Masked keys (padding) are left out of the key softmax, so they have no weight in the context; a sample whose
keys are all masked gets a zero context.

A limit worth knowing: each output is a mix of ``d_k`` global summaries per head, so a query cannot pick one
position out of many (e.g. frame ``i``'s audio for motion frame ``i``). :mod:`.model` gives frame-aligned
conditions an additive path for that reason.
"""

from __future__ import annotations

import torch
from torch import nn

from talkinghead.errors import TalkingHeadError


def efficient_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                        key_mask: torch.Tensor | None = None) -> torch.Tensor:
    """``rho_q(Q) (rho_k(K)^T V)`` per head.

    ``q: [B, H, N, d_k]``, ``k: [B, H, M, d_k]``, ``v: [B, H, M, d_v]``, ``key_mask: [B, M]`` bool
    (True = a real key, False = padding left out) -> ``[B, H, N, d_v]``.
    """
    q = q.softmax(dim=-1)                                       # each query over its d_k features
    if key_mask is None:
        k = k.softmax(dim=-2)                                   # each key feature over the M positions
    else:
        valid = key_mask[:, None, :, None]                      # [B, 1, M, 1]
        k = k.masked_fill(~valid, float("-inf")).softmax(dim=-2)
        k = k.masked_fill(~valid, 0.0)                          # all-masked columns: NaN -> 0, a zero context
    context = k.transpose(-1, -2) @ v                           # [B, H, d_k, d_v]
    return q @ context                                          # [B, H, N, d_v]


class EfficientAttention(nn.Module):
    """Multi-head efficient attention with input and output projections, for self- and cross-attention."""

    def __init__(self, dim: int, heads: int, context_dim: int | None = None) -> None:
        super().__init__()
        if dim % heads:
            raise TalkingHeadError(f"The attention width {dim} is not divisible by its {heads} heads.")
        self.heads = heads
        self.to_q = nn.Linear(dim, dim)
        self.to_k = nn.Linear(context_dim or dim, dim)
        self.to_v = nn.Linear(context_dim or dim, dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None,
                key_mask: torch.Tensor | None = None,
                projected: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """``x: [B, N, dim]`` queries; ``context: [B, M, context_dim]`` keys and values (``None``: self-attention
        over ``x``); ``key_mask: [B, M]`` bool (True = real key) -> ``[B, N, dim]``. ``projected``: the key and
        value projections ``[B, P, dim]`` of the first ``P`` context tokens, already made (:meth:`project`), so
        only the tokens after them are projected here (a sampler's conditions are the same at every step)."""
        context = x if context is None else context
        if projected is None:
            k, v = self.project(context)
        else:
            k, v = self.project(context[:, projected[0].shape[1]:])
            k, v = torch.cat([projected[0], k], 1), torch.cat([projected[1], v], 1)
        out = efficient_attention(self._split(self.to_q(x)), self._split(k), self._split(v), key_mask)
        b, h, n, d = out.shape                                  # [B, H, N, dim / H]
        return self.out(out.transpose(1, 2).reshape(b, n, h * d))

    def project(self, context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The key and value projections ``([B, M, dim], [B, M, dim])`` of ``context: [B, M, context_dim]``."""
        return self.to_k(context), self.to_v(context)

    def _split(self, t: torch.Tensor) -> torch.Tensor:
        """``[B, N, H * d] -> [B, H, N, d]``."""
        b, n, _ = t.shape
        return t.view(b, n, self.heads, -1).transpose(1, 2)


class FeedForward(nn.Sequential):
    """``[..., dim] -> [..., dim]``: linear, GELU, dropout, linear."""

    def __init__(self, dim: int, ff_dim: int, dropout: float) -> None:
        super().__init__(nn.Linear(dim, ff_dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(ff_dim, dim))


class EfficientEncoderLayer(nn.Module):
    """Pre-norm transformer encoder layer: efficient self-attention, then feed-forward, each a residual."""

    def __init__(self, dim: int, heads: int, ff_dim: int, dropout: float) -> None:
        super().__init__()
        self.norm_attn = nn.LayerNorm(dim)
        self.attn = EfficientAttention(dim, heads)
        self.norm_ff = nn.LayerNorm(dim)
        self.ff = FeedForward(dim, ff_dim, dropout)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``x: [B, N, dim]``, ``key_mask: [B, N]`` bool (True = real token) -> ``[B, N, dim]``."""
        x = x + self.drop(self.attn(self.norm_attn(x), key_mask=key_mask))
        return x + self.drop(self.ff(self.norm_ff(x)))


class EfficientEncoder(nn.Module):
    """A stack of :class:`EfficientEncoderLayer` and a final LayerNorm: ``[B, N, dim] -> [B, N, dim]``."""

    def __init__(self, dim: int, heads: int, layers: int, ff_dim: int, dropout: float) -> None:
        super().__init__()
        self.layers = nn.ModuleList(EfficientEncoderLayer(dim, heads, ff_dim, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``x: [B, N, dim]``, ``key_mask: [B, N]`` bool (True = real token) -> ``[B, N, dim]``."""
        for layer in self.layers:
            x = layer(x, key_mask)
        return self.norm(x)


class EfficientDecoderLayer(nn.Module):
    """Pre-norm transformer decoder layer: efficient self-attention over the sequence, efficient
    cross-attention to the condition tokens, feed-forward; each a residual."""

    def __init__(self, dim: int, heads: int, ff_dim: int, dropout: float) -> None:
        super().__init__()
        self.norm_self = nn.LayerNorm(dim)
        self.self_attn = EfficientAttention(dim, heads)
        self.norm_cross = nn.LayerNorm(dim)
        self.cross_attn = EfficientAttention(dim, heads)
        self.norm_ff = nn.LayerNorm(dim)
        self.ff = FeedForward(dim, ff_dim, dropout)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, memory: torch.Tensor, memory_mask: torch.Tensor | None = None,
                projected: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """``x: [B, N, dim]`` sequence, ``memory: [B, M, dim]`` condition tokens, ``memory_mask: [B, M]`` bool
        (True = real token), ``projected``: the cross-attention's key and value projections of the first memory
        tokens (:meth:`EfficientAttention.project`) -> ``[B, N, dim]``."""
        x = x + self.drop(self.self_attn(self.norm_self(x)))
        x = x + self.drop(self.cross_attn(self.norm_cross(x), memory, memory_mask, projected))
        return x + self.drop(self.ff(self.norm_ff(x)))

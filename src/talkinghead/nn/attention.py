"""Attention stacks (from DreamTalk's audio, style and style-predictor encoders, 3.2 / App. C.1).

Today one builder around torch's ``nn.TransformerEncoder``; the efficient and windowed attention
variants of the later papers belong here too.
"""

from __future__ import annotations

from torch import nn


def transformer_encoder(dim: int, heads: int, layers: int, ff_dim: int, dropout: float) -> nn.TransformerEncoder:
    """A batch-first post-norm transformer encoder: ``[B, N, dim] -> [B, N, dim]``.

    The nested-tensor fast path is off, so padded and unpadded batches take the same code path.
    """
    layer = nn.TransformerEncoderLayer(dim, heads, ff_dim, dropout, batch_first=True)
    return nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)

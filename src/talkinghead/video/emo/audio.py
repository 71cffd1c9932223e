"""EMO's audio layers (Sec. 3.2, "Audio Layers"): the voice features of each generated frame and the audio-attention
that injects them into the Backbone.

- Features: "the features extracted from the input audio sequence by the various blocks of the pretrained wav2vec
  are concatenated" to ``A^(f)`` per frame (:class:`talkinghead.audio.spec.AudioFeatureSpec` preset ``emo``: all 12
  blocks of wav2vec 2.0 base from a local folder); without wav2vec weights the project's own frame features (log-mel,
  f0, voicing, energy) stand in. Each frame reads its neighbours,
  ``A^(f) = (+) {A^(f-m), ..., A^(f), ..., A^(f+m)}`` with ``m = 2`` (:func:`feature_windows`).
- :class:`AudioProjection`: each of the ``2m + 1`` neighbours' features, standardised with the training set's
  statistics, through an MLP to one token of width ``D``, plus a learned embedding of its offset ``-m..m``.
- :class:`AudioAttention`: "audio-attention layers performing a cross attention mechanism between the latent code
  and A after each ref-attention layer": queries from each frame's feature map, keys and values from that frame's
  ``2m + 1`` tokens; pre-norm, residual, its output projection starting at zero (identity until trained).

Deviation: the neighbours are ``2m + 1`` tokens rather than one concatenated vector, since one key makes attention a
fixed linear map of its value; the offset embedding keeps which neighbour is which. The layers sit right after each
spatial transformer of the Backbone (whose self-attention is the reference-attention, :mod:`.unet`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from talkinghead.config import Config
from talkinghead.nn.normalize import Normalizer


@dataclass(frozen=True)
class AudioConfig(Config):
    """``input_dim``: one frame's feature width ``A`` (set from the dataset's features); ``dim``: token width ``D``;
    ``heads`` of the audio-attention."""

    input_dim: int = 768 * 12
    dim: int = 768
    heads: int = 8

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {"input_dim": 19, "dim": 16, "heads": 2},
        "cpu": {"input_dim": 19, "dim": 128, "heads": 4},
        "paper": {},
    }


def feature_windows(features: np.ndarray, context: int) -> np.ndarray:
    """Frame features ``[T, A]`` -> each frame's ``2m + 1`` neighbours ``[T, 2m + 1, A]`` (``m = context``; edge
    frames repeated, as the video sampler does)."""
    t = len(features)
    around = np.clip(np.arange(t)[:, None] + np.arange(-context, context + 1)[None, :], 0, t - 1)
    return np.asarray(features, np.float32)[around]


class AudioProjection(nn.Module):
    """Raw windows ``[B, F, 2m + 1, A]`` -> tokens ``[B, F, 2m + 1, D]``."""

    def __init__(self, config: AudioConfig, context: int) -> None:
        super().__init__()
        self.norm = Normalizer(config.input_dim)
        self.mlp = nn.Sequential(nn.Linear(config.input_dim, config.dim), nn.SiLU(), nn.Linear(config.dim, config.dim))
        self.offset = nn.Parameter(torch.randn(2 * context + 1, config.dim) * 0.02)

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.norm(windows)) + self.offset  # type: ignore[no-any-return]


class AudioAttention(nn.Module):
    """``h [B*F, C, H, W]``, ``tokens [B*F, K, D]`` -> ``h + attention(norm(h), tokens)`` (same shape)."""

    def __init__(self, channels: int, config: AudioConfig) -> None:
        from diffusers.models.attention_processor import Attention

        super().__init__()
        self.norm = nn.LayerNorm(channels)
        self.attention = Attention(channels, cross_attention_dim=config.dim, heads=config.heads,
                                   dim_head=channels // config.heads)
        out: Any = self.attention.to_out[0]
        nn.init.zeros_(out.weight)
        nn.init.zeros_(out.bias)

    def forward(self, h: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        n, c, height, width = h.shape
        x = h.flatten(2).transpose(1, 2)                                              # [B*F, HW, C]
        x = self.attention(self.norm(x), encoder_hidden_states=tokens)                # [B*F, HW, C]
        return h + x.transpose(1, 2).reshape(n, c, height, width)

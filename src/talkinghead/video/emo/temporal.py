"""EMO's temporal modules with motion frames and the speed cross-attention (Sec. 3.2, "Temporal Modules", "Face
Locator and Speed Layers"), in AnimateDiff's motion-module layout [8].

"We reconfigure the input feature map ``x in R^{b x c x f x h x w}`` to the shape ``(b x h x w) x f x c``" and
self-attend across the frames; "the temporal layers are inserted at each resolution stratum of the Backbone"
(after each resnet/transformer pair of the down and up blocks and after the middle attention, AnimateDiff's places).

- **Motion frames**: the last ``n`` frames of the previous clip pass through ReferenceNet once; at each temporal layer
  "we merge the temporal layer inputs with the pre-extracted motion features of matching resolution along the frames
  dimension", so the sequence is ``n + f`` long and only the ``f`` targets are kept. The first clip gets zero maps.
- **Speed**: the speed features ``F [b, f, l]`` (:mod:`.speed`) are repeated to ``(b x h x w) x f x l`` and read by a
  cross-attention "between the speed features and the reshaped feature map across the temporal dimension".

:class:`TemporalModule`: GroupNorm, a linear projection in, ``layers`` blocks (each: ``self_attentions`` temporal
self-attentions with a sinusoidal position encoding of the frame index added to their input, as AnimateDiff's two
"Temporal_Self" attentions; the speed cross-attention; a GEGLU feed-forward; all pre-norm and residual), a linear
projection out that starts at zero, added to the input: an untrained module is the identity, so a network initialised
from Stable Diffusion (and image pretraining) is unchanged until the video stage trains it (EMO 3.3 initialises the
temporal modules from AnimateDiff: ``train emo.video --motion-module PATH`` loads its weights from a local folder or
file, :mod:`.animatediff`). The speed attention's output
projection also starts at zero, and the speed tokens carry the same position encoding as the target frames.

Deviation (``cpu`` preset, for speed): one self-attention per block and a feed-forward twice (not four times) as
wide; ``paper`` keeps AnimateDiff's two self-attentions and 4x feed-forward.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from talkinghead.config import Config


@dataclass(frozen=True)
class TemporalConfig(Config):
    """``heads`` of every temporal attention, ``layers`` blocks, ``self_attentions`` per block, ``ff_mult`` (the
    feed-forward's width over the channels), ``norm_num_groups`` of the input GroupNorm, ``positions``: the frame
    encoding's layout, ``concatenated`` (sines then cosines) or ``interleaved`` (AnimateDiff's: sine and cosine of each
    frequency side by side; set when its motion-module weights are loaded, :mod:`.animatediff`)."""

    heads: int = 8
    layers: int = 1
    self_attentions: int = 2
    ff_mult: int = 4
    norm_num_groups: int = 32
    positions: Literal["concatenated", "interleaved"] = "concatenated"

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {"heads": 2, "self_attentions": 1, "ff_mult": 2, "norm_num_groups": 8},
        "cpu": {"heads": 4, "self_attentions": 1, "ff_mult": 2, "norm_num_groups": 16},
        "paper": {},
    }


def frame_positions(length: int, dim: int, device: torch.device | None = None,
                    interleaved: bool = False) -> torch.Tensor:
    """Sinusoidal encodings of frame indices ``0..length-1``: ``[length, dim]``, sines then cosines, or
    (``interleaved``) sine and cosine of each frequency side by side (AnimateDiff's ``pe[:, 0::2] = sin``,
    ``pe[:, 1::2] = cos``)."""
    half = dim // 2
    freq = torch.exp(-math.log(10000.0) * torch.arange(half, device=device) / max(half, 1))
    angles = torch.arange(length, device=device, dtype=torch.float32)[:, None] * freq[None]
    pairs = torch.stack([angles.sin(), angles.cos()], dim=-1).flatten(1) if interleaved else \
        torch.cat([angles.sin(), angles.cos()], dim=-1)
    return nn.functional.pad(pairs, (0, dim - 2 * half))


def _zero_out(attention: Any) -> None:
    nn.init.zeros_(attention.to_out[0].weight)
    nn.init.zeros_(attention.to_out[0].bias)


class TemporalBlock(nn.Module):
    """``x [(b h w), N, C]`` -> same: temporal self-attentions, the speed cross-attention (when speed tokens
    ``[(b h w), f, l]`` are given), a feed-forward."""

    def __init__(self, channels: int, config: TemporalConfig, speed_dim: int) -> None:
        from diffusers.models.attention import FeedForward
        from diffusers.models.attention_processor import Attention

        super().__init__()
        head_dim = channels // config.heads
        self.norms = nn.ModuleList(nn.LayerNorm(channels) for _ in range(config.self_attentions))
        self.attentions = nn.ModuleList(Attention(channels, heads=config.heads, dim_head=head_dim)
                                        for _ in range(config.self_attentions))
        self.speed_norm = nn.LayerNorm(channels)
        self.speed_attention = Attention(channels, cross_attention_dim=speed_dim, heads=config.heads, dim_head=head_dim)
        _zero_out(self.speed_attention)
        self.ff_norm = nn.LayerNorm(channels)
        self.ff = FeedForward(channels, mult=config.ff_mult, activation_fn="geglu")

    def forward(self, x: torch.Tensor, positions: torch.Tensor, speed: torch.Tensor | None) -> torch.Tensor:
        for norm, attention in zip(self.norms, self.attentions, strict=True):
            x = x + attention(norm(x) + positions)                                   # across frames
        if speed is not None:
            x = x + self.speed_attention(self.speed_norm(x), encoder_hidden_states=speed)
        return x + self.ff(self.ff_norm(x))  # type: ignore[no-any-return]


class TemporalModule(nn.Module):
    """One temporal layer (see the module docstring).

    ``h [B*F, C, H, W]`` (frames of a sample adjacent), ``motion [B, n, C, H, W]`` or None (zero maps, ``n``
    given), ``speed [B, F, l]`` or None -> ``[B*F, C, H, W]``."""

    def __init__(self, channels: int, config: TemporalConfig, speed_dim: int) -> None:
        super().__init__()
        self.norm = nn.GroupNorm(min(config.norm_num_groups, channels), channels, eps=1e-6)
        self.proj_in = nn.Linear(channels, channels)
        self.blocks = nn.ModuleList(TemporalBlock(channels, config, speed_dim) for _ in range(config.layers))
        self.proj_out = nn.Linear(channels, channels)
        nn.init.zeros_(self.proj_out.weight)
        nn.init.zeros_(self.proj_out.bias)
        self.interleaved = config.positions == "interleaved"

    def forward(self, h: torch.Tensor, frames: int, motion: torch.Tensor | None, motion_frames: int,
                speed: torch.Tensor | None = None) -> torch.Tensor:
        bf, c, height, width = h.shape
        b = bf // frames
        x = h.view(b, frames, c, height, width)
        if motion is None:                                                            # the first clip: zero maps
            motion = h.new_zeros(b, motion_frames, c, height, width)
        seq = torch.cat([motion.to(h.dtype), x], dim=1)                               # [B, n + F, C, H, W]
        n_all = seq.shape[1]
        z = self.norm(seq.flatten(0, 1)).view(b, n_all, c, height, width)
        z = self.proj_in(z.permute(0, 3, 4, 1, 2).reshape(b * height * width, n_all, c))   # [(B H W), n + F, C]
        positions = frame_positions(n_all, c, h.device, self.interleaved).to(h.dtype)
        tokens = None
        if speed is not None:                                                         # [B, F, l] -> [(B H W), F, l]
            at = frame_positions(n_all, speed.shape[-1], h.device, self.interleaved)[n_all - frames:].to(h.dtype)
            tokens = (speed + at).repeat_interleave(height * width, dim=0)
        for block in self.blocks:
            z = block(z, positions, tokens)
        z = self.proj_out(z[:, n_all - frames:])                                      # the targets [(B H W), F, C]
        out = z.reshape(b, height, width, frames, c).permute(0, 3, 4, 1, 2).reshape(bf, c, height, width)
        return h + out

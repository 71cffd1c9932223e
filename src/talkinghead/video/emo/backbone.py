"""EMO's Backbone Network (Sec. 3.2, Fig. 2): the denoising UNet ``epsilon_theta`` of Eq. 1 over a clip's noisy
latents, with reference-attention, audio-attention and temporal modules.

The spatial part is the Stable Diffusion 1.5-structured UNet of :mod:`.unet` (SD's parameter names, loaded unchanged;
its self-attention reads ReferenceNet's features); frames of a clip pass through it as a batch (AnimateDiff's
"inflated" 2-D layers). At every slot of the UNet (:func:`.unet.unet_slots`) the Backbone adds, in this order:

1. :class:`.audio.AudioAttention` where the slot has a transformer: "audio-attention layers ... after each ref-attention
   layer", reading each frame's audio tokens;
2. :class:`.temporal.TemporalModule`: attention across the clip's frames, with the motion frames' maps of that slot
   merged in front and the speed features read by cross-attention.

Every added layer's output projection starts at zero, so at initialisation the Backbone computes exactly what its
UNet does (the paper initialises from SD, then image pretraining runs without the temporal and audio layers:
``temporal=False`` and no audio). Epsilon prediction (Eq. 1); the network never sees the noise schedule.
"""

from __future__ import annotations

import torch
from torch import nn

from talkinghead.video.emo.audio import AudioAttention, AudioConfig
from talkinghead.video.emo.reference_net import ReferenceFeatures
from talkinghead.video.emo.temporal import TemporalConfig, TemporalModule
from talkinghead.video.emo.unet import UNetConfig, build_unet, run_unet, unet_slots


class Backbone(nn.Module):
    """``forward(latents [B, F, c, h, w], timestep [B], reference, audio [B, F, K, D] or None, speed [B, F, l] or
    None, motion_frames n, temporal) -> epsilon [B, F, c, h, w]``."""

    def __init__(self, unet: UNetConfig, temporal: TemporalConfig, audio: AudioConfig, speed_dim: int) -> None:
        super().__init__()
        self.unet = build_unet(unet)
        self.slots = unet_slots(self.unet)
        self.audio_attention = nn.ModuleDict({s.name: AudioAttention(s.channels, audio)
                                              for s in self.slots if s.attention})
        self.temporal = nn.ModuleDict({s.name: TemporalModule(s.channels, temporal, speed_dim) for s in self.slots})

    def forward(self, latents: torch.Tensor, timestep: torch.Tensor, reference: ReferenceFeatures | None,
                audio: torch.Tensor | None = None, speed: torch.Tensor | None = None, motion_frames: int = 0,
                temporal: bool = True) -> torch.Tensor:
        b, f = latents.shape[:2]
        tokens = None if audio is None else audio.flatten(0, 1)                       # [B*F, K, D]
        motion = None if reference is None else reference.motion

        def reference_attention(slot: str) -> dict[str, torch.Tensor] | None:
            return None if reference is None else {"reference": reference.attention[slot]}

        def after(slot: str, h: torch.Tensor) -> torch.Tensor:                        # h [B*F, C, H, W]
            if tokens is not None and slot in self.audio_attention:
                h = self.audio_attention[slot](h, tokens)
            if temporal:
                h = self.temporal[slot](h, f, None if motion is None else motion[slot], motion_frames, speed)
            return h

        t = timestep.reshape(-1).expand(b).repeat_interleave(f)                      # [B*F]
        out = run_unet(self.unet, latents.flatten(0, 1), t, reference_attention, after)
        return out.view(b, f, *out.shape[1:])

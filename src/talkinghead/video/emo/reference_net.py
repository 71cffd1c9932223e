"""EMO's ReferenceNet (Sec. 3.2, "ReferenceNet"; "Temporal Modules", motion frames).

"A UNet structure called ReferenceNet parallel to the Backbone" with "a structure identical to that of the Backbone
Network", initialised from Stable Diffusion too (:mod:`.unet`). "The reference image is inputted into the ReferenceNet
to extract the reference feature maps outputs from the self-attention layers"; the motion frames (the last ``n``
frames of the previous clip) go through it as well, "to pre-extract multi-resolution motion feature maps". "The
target image and motion frames are concatenated and input into the ReferenceNet only once": one call per clip
returns :class:`ReferenceFeatures`, which every denoising step of that clip reuses.

What is kept (each at every slot of :func:`.unet.unet_slots`): the reference image's self-attention inputs (read by
the Backbone's reference-attention at the same layer) and the motion frames' feature maps where the Backbone's
temporal layers sit (merged with their inputs along the frames). Both are taken at diffusion step ``t = 0`` (the
reference is a clean image; Animate Anyone's choice, the paper does not say). Deviation: the motion frames enter as
their latents (the sampler's output or, in training, the VAE's encoding of the real frames), not re-encoded images.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from talkinghead.video.emo.unet import UNetConfig, build_unet, run_unet, unet_slots


@dataclass
class ReferenceFeatures:
    """``attention``: per slot with a transformer, the reference image's self-attention input ``[B, L, C]``;
    ``motion``: per slot, the motion frames' feature maps ``[B, n, C, H, W]`` (None: zero maps, the first clip)."""

    attention: dict[str, torch.Tensor]
    motion: dict[str, torch.Tensor] | None = None

    def keep_motion(self, keep: torch.Tensor) -> ReferenceFeatures:
        """The motion maps of samples where ``keep [B]`` is false set to zero maps (training's first clips)."""
        if self.motion is None:
            return self
        k = keep.to(next(iter(self.motion.values())).dtype).view(-1, 1, 1, 1, 1)
        return ReferenceFeatures(self.attention, {s: m * k for s, m in self.motion.items()})


class ReferenceNet(nn.Module):
    """``forward(reference [B, c, h, w], motion [B, n, c, h, w] or None) -> ReferenceFeatures``."""

    def __init__(self, config: UNetConfig, timestep: int = 0) -> None:
        super().__init__()
        self.unet = build_unet(config)
        self.timestep = timestep
        self.slots = unet_slots(self.unet)

    def forward(self, reference: torch.Tensor, motion: torch.Tensor | None = None) -> ReferenceFeatures:
        b = reference.shape[0]
        n = 0 if motion is None else motion.shape[1]
        x = reference if motion is None else torch.cat([reference, motion.flatten(0, 1)])   # [B (1 + n), c, h, w]
        records: dict[str, list[torch.Tensor]] = {}
        maps: dict[str, torch.Tensor] = {}

        def record(slot: str) -> dict[str, list[torch.Tensor]]:
            return {"record": records.setdefault(slot, [])}

        def keep_map(slot: str, h: torch.Tensor) -> torch.Tensor:
            if n:
                maps[slot] = h[b:].reshape(b, n, *h.shape[1:])                         # [B, n, C, H, W]
            return h

        t = torch.full((x.shape[0],), self.timestep, dtype=torch.long, device=x.device)
        run_unet(self.unet, x, t, record, keep_map)
        attention = {slot: found[0][:b] for slot, found in records.items()}            # [B, L, C] each
        return ReferenceFeatures(attention, maps if n else None)

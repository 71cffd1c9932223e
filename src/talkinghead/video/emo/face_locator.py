"""EMO's Face Locator (Sec. 3.2, "Face Locator and Speed Layers"): a weak condition on where the face is.

The mask ``M = U_i M^i`` is the union of the face boxes of the clip's frames (one box in image pretraining); "the Face
Locator, which consists of lightweight convolutional layers designed to encode the bounding box mask" maps it to the
latent grid, and "the resulting encoded mask is then added to the noisy latent representation before being fed into
the Backbone". At inference the region is the reference face's box (widened) or one the user gives (Fig. 7).

:class:`FaceLocator`: a 3x3 convolution, then per factor of two a 3x3 convolution and a stride-2 one (SiLU between),
then a 3x3 convolution to the latent channels that starts at zero, so an untrained locator adds nothing (the paper
gives no layer sizes; the layout is ControlNet's condition embedding, which the "lightweight convolutional layers"
resemble).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from talkinghead.config import Config
from talkinghead.data.video.frames import box_mask


@dataclass(frozen=True)
class FaceLocatorConfig(Config):
    """``channels``: the width after the first convolution and after each stride-2 step (the steps are ``log2`` of
    the VAE factor; missing entries repeat the last, extra ones are unused)."""

    channels: tuple[int, ...] = (16, 32, 96, 256)

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {"channels": (4, 8, 8)},
        "cpu": {"channels": (8, 16, 32)},
        "paper": {},
    }


def region_masks(boxes: np.ndarray, size: int) -> torch.Tensor:
    """Face regions ``[B, 4] = (x0, y0, x1, y1)`` (crop pixels) -> masks ``[B, 1, size, size]`` (1 inside)."""
    return torch.from_numpy(np.stack([box_mask(b, size) for b in np.asarray(boxes, np.float32)]))[:, None]


class FaceLocator(nn.Module):
    """``mask [B, 1, H, W] -> [B, c, H / factor, W / factor]`` (added to the noisy latents)."""

    def __init__(self, config: FaceLocatorConfig, latent_channels: int, factor: int) -> None:
        super().__init__()
        steps = int(round(np.log2(factor)))
        given = config.channels
        chans = tuple(given[min(i, len(given) - 1)] for i in range(steps + 1))   # one width per step (+ the first)
        layers: list[nn.Module] = [nn.Conv2d(1, chans[0], 3, padding=1), nn.SiLU()]
        for a, b in zip(chans[:-1], chans[1:], strict=True):
            layers += [nn.Conv2d(a, a, 3, padding=1), nn.SiLU(), nn.Conv2d(a, b, 3, padding=1, stride=2), nn.SiLU()]
        self.encoder = nn.Sequential(*layers)
        self.conv_out = nn.Conv2d(chans[-1], latent_channels, 3, padding=1)
        out: Any = self.conv_out
        nn.init.zeros_(out.weight)
        nn.init.zeros_(out.bias)

    def forward(self, mask: torch.Tensor) -> torch.Tensor:
        return self.conv_out(self.encoder(mask))  # type: ignore[no-any-return]

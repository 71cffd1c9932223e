"""EMO's speed layers, the encoding half (Sec. 3.2, "Face Locator and Speed Layers").

The head rotation speed ``w^f`` of frame ``f`` is retargeted to a vector ``s in R^d`` over ``d`` speed buckets with
centres ``c_i`` and radii ``r_i``: ``s_i = tanh((w^f - c_i) / r_i * 3)`` (:func:`speed_encoding`), a soft thermometer
code (about +1 for buckets below the speed, -1 above, a smooth step across the bucket the speed falls in). Each frame's
embedding concatenates its neighbours' ``S^f = (+) {s^(f-m), ..., s^(f+m)}`` (:func:`speed_windows`), so a clip's
``S [b, f, (2m + 1) d]`` goes through an MLP to the speed features ``F [b, f, l]`` (:class:`SpeedEncoder`), which the
temporal layers read by cross-attention (:mod:`.temporal`).

Units and buckets (the paper gives neither): speeds are the dataset's head rotation speed in degrees per frame
(:func:`talkinghead.data.video.frames.head_speed`); the default buckets tile 0-2.5 degrees a frame, where the video
corpus' speeds lie (median about 0.2), in ``d = 10`` buckets of radius 0.125 (``tiny``: 4 buckets).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from talkinghead.config import Config
from talkinghead.errors import TalkingHeadError


@dataclass(frozen=True)
class SpeedConfig(Config):
    """Bucket ``centres`` ``c_i`` and ``radii`` ``r_i`` (degrees per frame) and the feature width ``dim`` ``l``."""

    centres: tuple[float, ...] = tuple(0.125 + 0.25 * i for i in range(10))
    radii: tuple[float, ...] = (0.125,) * 10
    dim: int = 768

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {"centres": (0.25, 0.75, 1.25, 1.75), "radii": (0.25,) * 4, "dim": 16},
        "cpu": {"dim": 128},
        "paper": {},
    }

    def __post_init__(self) -> None:
        if not self.centres or len(self.centres) != len(self.radii) or min(self.radii) <= 0:
            raise TalkingHeadError("Speed buckets need as many positive radii as centres, and at least one bucket.")


def speed_encoding(speed: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor) -> torch.Tensor:
    """``s_i = tanh((w - c_i) / r_i * 3)``: speeds ``[...]`` -> ``[..., d]``."""
    return torch.tanh((speed[..., None] - centres) / radii * 3.0)


def speed_windows(speed: np.ndarray, context: int) -> np.ndarray:
    """Per-frame speeds ``[T]`` -> each frame with its ``m = context`` neighbours either side ``[T, 2m + 1]`` (edge
    frames repeated, as the video sampler does)."""
    t = len(speed)
    around = np.clip(np.arange(t)[:, None] + np.arange(-context, context + 1)[None, :], 0, t - 1)
    return np.asarray(speed, np.float32)[around]


class SpeedEncoder(nn.Module):
    """``S -> F``: speed windows ``[B, F, 2m + 1]`` (degrees per frame) -> speed features ``[B, F, l]``."""

    centres: torch.Tensor
    radii: torch.Tensor

    def __init__(self, config: SpeedConfig, context: int) -> None:
        super().__init__()
        self.register_buffer("centres", torch.tensor(config.centres, dtype=torch.float32))
        self.register_buffer("radii", torch.tensor(config.radii, dtype=torch.float32))
        width = (2 * context + 1) * len(config.centres)
        self.mlp = nn.Sequential(nn.Linear(width, config.dim), nn.SiLU(), nn.Linear(config.dim, config.dim))

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        s = speed_encoding(windows, self.centres, self.radii)          # [B, F, 2m + 1, d]
        return self.mlp(s.flatten(2))                                  # S [B, F, (2m + 1) d] -> F [B, F, l]

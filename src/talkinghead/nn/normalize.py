"""Per-channel normalisation whose statistics travel with the weights (from DreamTalk's networks).

Every model that reads raw features (audio, motion, identity, style codes) normalises them with the
training set's mean and standard deviation; keeping those as buffers puts them into ``model.safetensors``,
so a checkpoint needs no side file.
"""

from __future__ import annotations

import torch
from torch import nn


class Normalizer(nn.Module):
    """Per-channel ``(x - mean) / std`` with the statistics kept as checkpoint buffers (``mean``, ``std``: ``[D]``)."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    def set_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.std.copy_(torch.as_tensor(std, dtype=torch.float32).clamp_min(1e-4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: [..., D]`` raw -> normalised, same shape."""
        return (x - self.mean) / self.std

    def inverse(self, x: torch.Tensor) -> torch.Tensor:
        """``x: [..., D]`` normalised -> raw units."""
        return x * self.std + self.mean

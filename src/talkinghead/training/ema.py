"""Exponential moving average of a model's weights (used for every exported checkpoint).

``shadow = decay * shadow + (1 - decay) * param`` after each optimizer step, with the usual warm-up
``decay_t = min(decay, (1 + t) / (10 + t))`` so early averages are not dominated by the random init.
Buffers (normalisation statistics, BatchNorm running stats) are copied, not averaged.
"""

from __future__ import annotations

import torch
from torch import nn


class EMA:
    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.updates = 0
        self.shadow = {k: v.detach().clone().float() if v.is_floating_point() else v.detach().clone()
                       for k, v in model.state_dict().items()}
        self._param_names = {name for name, _ in model.named_parameters()}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for name, value in model.state_dict().items():
            if name in self._param_names and value.is_floating_point():
                self.shadow[name].lerp_(value.detach().float(), 1.0 - decay)
            else:
                self.shadow[name].copy_(value.detach())

    def to(self, device: torch.device | str) -> None:
        self.shadow = {k: v.to(device) for k, v in self.shadow.items()}

    def copy_to(self, model: nn.Module) -> None:
        model.load_state_dict({k: v.clone() for k, v in self.shadow.items()}, strict=True)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return dict(self.shadow)

    def load_state_dict(self, state: dict[str, torch.Tensor], updates: int) -> None:
        for k, v in state.items():
            self.shadow[k].copy_(v)
        self.updates = updates

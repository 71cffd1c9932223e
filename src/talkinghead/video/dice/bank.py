"""DICE-Talk 3.2 (Eq. 9-13) and 3.3 (Eq. 17), the emotion bank: ``K`` learnable prototypes ``C [K, d_s]`` that
turn an emotion prior ``s`` into the emotion feature ``E_s`` the UNet's emotion attention reads (Eq. 14).

- **Training** (Eq. 9-11, :meth:`EmotionBank.retrieve`): the nearest prototype ``s* = C_k``,
  ``k = argmin_i ||s - C_i||^2``, is retrieved and ``E_s = CA(W_Q s, W_K s*, W_V s*)``.
- **Inference** (Eq. 12-13, :meth:`EmotionBank.attend_all`): the retrieval is skipped, ``s*`` is replaced by the
  whole bank: ``E_s = CA(W_Q s, W_K C, W_V C)``, so ``s`` attends to every prototype ("anger" and "disgust"
  together for an aggressive expression).
- :meth:`EmotionBank.forward` takes the training path in training mode and the inference path in eval mode.
- **Bank learning** (Eq. 17, :meth:`EmotionBank.vq_loss`):
  ``L_vq = ||sg[s] - C_k||^2 + beta * ||s - sg[C_k]||^2``: the first term moves only the selected prototype
  toward the (stopped) prior, the second (weight ``beta = commitment``) pulls the prior toward its prototype.

``CA(Q, K, V)`` is multi-head scaled dot-product attention, ``softmax(Q K^T / sqrt(d_head)) V`` per head, heads
concatenated. A note on Eq. 11 as written: with the single key ``s*`` the softmax is identically 1, so in
training ``E_s = W_V C_k`` exactly and ``W_Q``, ``W_K`` receive no gradient from it; they act at inference
(Eq. 13), where there are ``K`` keys. This module implements the equations as written.

Deviations from the paper, and why: ``K``, the head count, ``beta`` and the prototypes' initialisation are not
given (config fields; ``paper`` preset: K = 64, 8 heads, beta = 0.25 as in VQ-VAE, N(0, 1) prototypes, the scale
of the embedder's LayerNorm-scaled features). ``W_Q, W_K, W_V`` are bias-free linear maps and there is no output
projection: the UNet's emotion attention (Eq. 14) applies its own key and value projections to ``E_s``.
The squared norms of Eq. 17 are summed over the feature dimension and averaged over the batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from talkinghead.config import Config
from talkinghead.errors import TalkingHeadError


@dataclass(frozen=True)
class BankConfig(Config):
    """``dim``: ``d_s`` (the embedder's width); ``prototypes``: ``K``; ``commitment``: ``beta`` of Eq. 17."""

    dim: int = 256
    prototypes: int = 64
    heads: int = 8
    commitment: float = 0.25
    init_std: float = 1.0

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {"dim": 32, "prototypes": 8, "heads": 2},
        "cpu": {"dim": 128, "prototypes": 32, "heads": 4},
        "paper": {},
    }

    def __post_init__(self) -> None:
        if self.prototypes < 1 or self.dim % self.heads:
            raise TalkingHeadError(f"An emotion bank needs at least one prototype and dim={self.dim} divisible by "
                                   f"heads={self.heads}.")


class EmotionBank(nn.Module):
    """Prototypes ``C [K, d]`` with the retrieval attention ``W_Q, W_K, W_V`` (Eq. 10-13) and ``L_vq`` (Eq. 17)."""

    def __init__(self, config: BankConfig) -> None:
        super().__init__()
        self.config = config
        d = config.dim
        self.prototypes = nn.Parameter(torch.randn(config.prototypes, d) * config.init_std)   # C
        self.to_q = nn.Linear(d, d, bias=False)                                               # W_Q
        self.to_k = nn.Linear(d, d, bias=False)                                               # W_K
        self.to_v = nn.Linear(d, d, bias=False)                                               # W_V

    def _flat(self, s: torch.Tensor) -> torch.Tensor:
        if s.shape[-1] != self.config.dim:
            raise TalkingHeadError(f"The emotion bank takes priors of width {self.config.dim}, got {s.shape[-1]}.")
        return s.reshape(-1, self.config.dim)

    def nearest(self, s: torch.Tensor) -> torch.Tensor:
        """Eq. 9: ``k = argmin_i ||s - C_i||^2`` for priors ``s [..., d]`` -> ``k [...]`` (long)."""
        flat = self._flat(s)
        distance = torch.cdist(flat.detach().float(), self.prototypes.detach().float())       # [M, K]
        return distance.argmin(dim=1).reshape(s.shape[:-1])

    def _attend(self, s: torch.Tensor, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``CA(W_Q s, W_K m, W_V m)``: ``s [M, d]``, ``memory [M, J, d]`` -> ``(E [M, d], weights [M, h, J])``."""
        h = self.config.heads
        q = self.to_q(s).unflatten(-1, (h, -1))                                  # [M, h, dh]
        k = self.to_k(memory).unflatten(-1, (h, -1))                             # [M, J, h, dh]
        v = self.to_v(memory).unflatten(-1, (h, -1))
        scores = torch.einsum("mhc,mjhc->mhj", q, k) / math.sqrt(q.shape[-1])
        weights = torch.softmax(scores, dim=-1)
        return torch.einsum("mhj,mjhc->mhc", weights, v).flatten(-2), weights

    def retrieve(self, s: torch.Tensor) -> torch.Tensor:
        """Training path, Eq. 9-11: ``s [..., d]`` attends to its nearest prototype ``s* = C_k`` -> ``E_s [..., d]``."""
        flat = self._flat(s)
        memory = self.prototypes[self.nearest(flat)][:, None]                    # s*, [M, 1, d]
        return self._attend(flat, memory)[0].reshape(s.shape)

    def attend_all(self, s: torch.Tensor) -> torch.Tensor:
        """Inference path, Eq. 12-13: ``s [..., d]`` attends to the whole bank ``C`` -> ``E_s [..., d]``."""
        flat = self._flat(s)
        memory = self.prototypes[None].expand(len(flat), -1, -1)                 # [M, K, d]
        return self._attend(flat, memory)[0].reshape(s.shape)

    def attention_weights(self, s: torch.Tensor) -> torch.Tensor:
        """How much ``s [..., d]`` attends to each prototype at inference (Eq. 13), per head -> ``[..., h, K]``."""
        flat = self._flat(s)
        memory = self.prototypes[None].expand(len(flat), -1, -1)
        weights = self._attend(flat, memory)[1]
        return weights.reshape(*s.shape[:-1], *weights.shape[1:])

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        """``E_s [..., d]`` for priors ``s [..., d]``: :meth:`retrieve` in training mode, :meth:`attend_all` in eval."""
        return self.retrieve(s) if self.training else self.attend_all(s)

    def vq_loss(self, s: torch.Tensor) -> torch.Tensor:
        """Eq. 17: ``||sg[s] - C_k||^2 + beta * ||s - sg[C_k]||^2``, ``k`` the nearest prototype (Eq. 9), summed over
        the features and averaged over the priors ``s [..., d]`` -> a scalar."""
        flat = self._flat(s)
        chosen = self.prototypes[self.nearest(flat)]                             # C_k, [M, d]
        codebook = (flat.detach() - chosen).pow(2).sum(-1)
        commitment = (flat - chosen.detach()).pow(2).sum(-1)
        return (codebook + self.config.commitment * commitment).mean()

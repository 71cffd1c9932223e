"""DICE-Talk's emotion discrimination objective and the compositional loss (Sec. 3.3, Eq. 15-16).

"Denoting ``f_t`` as the intermediate features extracted from the U-Net at timestep ``t`` ... compressed by an
adaptive pooling layer ``phi`` into a fixed-dimensional vector ``v_t = phi(f_t)``, which is then projected through an
MLP classifier ``psi`` to obtain the emotion probability distribution ``p_t = softmax(psi(v_t))``"; Eq. 16::

    L_cls = -1/T sum_t sum_c y_c log p_{t,c}

Here ``f_t`` is the UNet's mid-block output and ``phi`` the average over frames and positions, done by
:class:`.unet.DICEUNet` (``DICEUNetOutput.features [B, C_mid]``); :class:`EmotionDiscriminator` is ``psi``. Each
training sample carries its own noise level, so the ``T`` sampled timesteps of Eq. 16 are the batch's samples and
:func:`emotion_cls_loss` is the mean cross-entropy over them. Its gradient reaches the UNet: the objective makes the
denoiser's features carry the emotion ("helping the model better capture emotion-related information in the noisy
latent space").

Eq. 15: ``L = L_denoising + lambda L_cls + L_vq`` (:func:`total_loss`; ``L_vq`` comes from the emotion bank,
Eq. 17, :mod:`.bank`).

**The content variant** (``discriminate = "prediction"``, ``--discriminate prediction``; not in the paper). The
pooled mid-block features of Eq. 16 contain the emotion attention's own output: with one emotion token its softmax
is 1 and it adds ``W_o W_v E_s`` at every position, a per-channel offset that names the prompt. Measured on the
``cpu`` model (docs/dice.md, "What the denoiser listens to"), the classifier names the prompt it was given, not the
clip's emotion, so ``L_cls`` falls to 0.02 without the frames changing. :class:`LatentEmotionJudge` classifies a
clip's *latents* instead, and :func:`content_cls_loss` uses it twice: on the clean target latents (its only
training signal, so it learns the emotion from real content) and, with its weights held fixed, on the denoiser's
prediction ``D(x; sigma)`` (whose gradient reaches the UNet only through what it draws).

Deviations and why:

- clips without an emotion label (the paper mixes MEAD with unlabelled HDTF/VoxCeleb2 clips 1:1) carry label ``-1``
  and are left out of ``L_cls``; a trainer may also mark clips whose emotion condition was dropped that way;
- ``lambda`` is not given in the paper; ``cls_weight = 0.1`` is this project's choice (the classifier's
  cross-entropy starts near ``ln 8 = 2.1``, ten times the typical EDM loss, so 0.1 keeps it from dominating).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from talkinghead.config import Config
from talkinghead.errors import TalkingHeadError

#: labels of clips without an emotion label (left out of L_cls)
NO_LABEL = -1


@dataclass(frozen=True)
class DiscriminatorConfig(Config):
    """``feature_dim`` (the UNet's mid-block width ``C_mid``), ``hidden`` widths of the MLP ``psi``, ``emotions``
    ``N`` (MEAD's eight), ``dropout`` between the MLP's layers."""

    feature_dim: int = 1280
    hidden: tuple[int, ...] = (512,)
    emotions: int = 8
    dropout: float = 0.0

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {"feature_dim": 64, "hidden": (32,)},
        "cpu": {"feature_dim": 128, "hidden": (128,)},
        "paper": {},
    }

    def __post_init__(self) -> None:
        if self.feature_dim < 1 or self.emotions < 2 or any(h < 1 for h in self.hidden):
            raise TalkingHeadError("The emotion discriminator needs positive widths and two emotions at least.")


@dataclass(frozen=True)
class ObjectiveConfig(Config):
    """The weights of Eq. 15: ``cls_weight`` (``lambda``) and ``vq_weight`` (1 in the paper)."""

    cls_weight: float = 0.1
    vq_weight: float = 1.0


class EmotionDiscriminator(nn.Module):
    """``psi``: pooled UNet features ``[..., C_mid]`` -> emotion logits ``[..., N]`` (an MLP with SiLU)."""

    def __init__(self, config: DiscriminatorConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or DiscriminatorConfig()
        layers: list[nn.Module] = [nn.LayerNorm(config.feature_dim)]
        width = config.feature_dim
        for hidden in config.hidden:
            layers += [nn.Linear(width, hidden), nn.SiLU(), nn.Dropout(config.dropout)]
            width = hidden
        layers.append(nn.Linear(width, config.emotions))
        self.mlp = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if features.shape[-1] != self.config.feature_dim:
            raise TalkingHeadError(f"The emotion discriminator takes features of width {self.config.feature_dim}, "
                                   f"got {features.shape[-1]}.")
        return self.mlp(features)  # type: ignore[no-any-return]


class LatentEmotionJudge(nn.Module):
    """The content variant's classifier: clip latents ``[B, F, c, h, w]`` -> emotion logits ``[B, N]``: two stride-2
    3x3 convolutions with SiLU per frame (to ``feature_dim`` channels), the average over frames and positions, then
    the MLP ``psi`` of :class:`EmotionDiscriminator`."""

    def __init__(self, latent_channels: int, config: DiscriminatorConfig | None = None) -> None:
        super().__init__()
        config = config or DiscriminatorConfig()
        self.config = config
        width = config.feature_dim
        self.conv = nn.Sequential(nn.Conv2d(latent_channels, width // 2, 3, stride=2, padding=1), nn.SiLU(),
                                  nn.Conv2d(width // 2, width, 3, stride=2, padding=1), nn.SiLU())
        self.head = EmotionDiscriminator(config)

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        if latents.ndim != 5:
            raise TalkingHeadError(f"The latent emotion judge takes clips [B, F, c, h, w], got {list(latents.shape)}.")
        b, f = latents.shape[:2]
        features = self.conv(latents.flatten(0, 1)).mean(dim=(2, 3)).unflatten(0, (b, f)).mean(dim=1)   # [B, C]
        return self.head(features)  # type: ignore[no-any-return]


def content_cls_loss(judge: LatentEmotionJudge, clean: torch.Tensor, predicted: torch.Tensor,
                     clean_labels: torch.Tensor, predicted_labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The content variant's ``L_cls``: ``CE(judge(clean), y)``, which trains the judge only (the clean latents
    carry no gradient), plus ``CE(judge'(predicted), y)`` with ``judge'`` the judge's weights detached, which trains
    only what made ``predicted`` (``[B, F, c, h, w]`` each; labels ``[B]``, :data:`NO_LABEL` left out). Returns the
    loss and the logits on the prediction."""
    real = emotion_cls_loss(judge(clean.detach()), clean_labels)
    fixed = {name: value.detach() for name, value in judge.named_parameters()}
    logits = torch.func.functional_call(judge, fixed, (predicted,))
    return real + emotion_cls_loss(logits, predicted_labels), logits


def emotion_cls_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Eq. 16: the mean over samples (each at its own noise level) of ``-log p_{t, y}``; ``logits [B, N]``,
    ``labels [B]`` (class indices, :data:`NO_LABEL` left out). Zero (with a graph) when no sample is labelled."""
    if logits.ndim != 2 or labels.shape != logits.shape[:1]:
        raise TalkingHeadError(f"L_cls needs logits [B, N] and labels [B], got {list(logits.shape)} and "
                               f"{list(labels.shape)}.")
    labels = labels.to(logits.device, torch.long)
    if bool(((labels < NO_LABEL) | (labels >= logits.shape[1])).any()):
        raise TalkingHeadError(f"Emotion labels must lie in 0..{logits.shape[1] - 1} or be {NO_LABEL}.")
    if not bool((labels != NO_LABEL).any()):
        return logits.sum() * 0.0
    return F.cross_entropy(logits.float(), labels, ignore_index=NO_LABEL)


@dataclass
class DICELosses:
    """The parts of Eq. 15 and their weighted sum ``total`` (scalars)."""

    total: torch.Tensor
    denoising: torch.Tensor
    cls: torch.Tensor
    vq: torch.Tensor


def total_loss(denoising: torch.Tensor, cls: torch.Tensor | None, vq: torch.Tensor | None,
               config: ObjectiveConfig | None = None) -> DICELosses:
    """Eq. 15: ``L = L_denoising + lambda L_cls + w_vq L_vq`` (a missing part counts as 0, e.g. the ablations
    without emotion discrimination or without the bank, Table 4)."""
    config = config or ObjectiveConfig()
    zero = denoising.new_zeros(())
    cls = zero if cls is None else cls
    vq = zero if vq is None else vq
    return DICELosses(denoising + config.cls_weight * cls + config.vq_weight * vq, denoising, cls, vq)

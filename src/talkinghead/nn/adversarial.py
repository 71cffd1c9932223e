"""A patch discriminator and its losses, for sharpening the decoders of the autoencoders trained here.

Why: the papers' latent autoencoders are Stable Diffusion's, which LDM (Rombach et al. 2022, App. G; Esser et al.
2021) trains with a reconstruction loss, a perceptual loss *and* a patch-based adversarial loss: without the last
one an autoencoder trained with L2 and a perceptual loss decodes blurred faces (FD2Talk's Eq. 13-15 fine-tune an
already sharp SD VAE, so they need none). The stand-in autoencoders trained here from scratch lack that term; this
module supplies it, as LDM has it:

- :class:`PatchDiscriminator`: strided 4 x 4 convolutions with LeakyReLU (PatchGAN, Isola et al. 2017), one logit
  per overlapping patch. ``images [B, 3, H, W]`` in ``[-1, 1]`` -> ``[B, 1, H / 2^n, W / 2^n]``.
- :func:`hinge_losses`: the discriminator's hinge loss on real and (detached) decoded images, and the generator's
  ``-D(decoded)`` computed through a copy of the discriminator's parameters that is cut from autograd, so one
  backward pass trains both sides with one optimiser and the generator term never moves the discriminator.
- :func:`adaptive_weight`: LDM's balance of the two terms, ``||grad L_rec|| / ||grad L_adv||`` at the decoder's last
  layer (clamped), so the adversarial term is a fixed fraction of the reconstruction's pull whatever its scale.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from talkinghead.config import Config


@dataclass(frozen=True)
class DiscriminatorConfig(Config):
    """``channels``: the width of each strided layer (each halves the size); the last 1-channel layer is stride 1."""

    channels: tuple[int, ...] = (32, 64, 128)

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {"channels": (8, 16)},
        "cpu": {},
        "paper": {"channels": (64, 128, 256)},
    }


class PatchDiscriminator(nn.Module):
    """PatchGAN: ``images [B, 3, H, W]`` -> patch logits ``[B, 1, H / 2^n, W / 2^n]`` (``n = len(channels)``)."""

    def __init__(self, config: DiscriminatorConfig | None = None) -> None:
        super().__init__()
        self.config = config or DiscriminatorConfig()
        layers: list[nn.Module] = []
        width = 3
        for i, out in enumerate(self.config.channels):
            layers += [nn.Conv2d(width, out, 4, stride=2, padding=1)]
            if i:
                layers += [nn.GroupNorm(min(8, out), out)]
            layers += [nn.LeakyReLU(0.2)]
            width = out
        layers += [nn.Conv2d(width, 1, 3, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)  # type: ignore[no-any-return]


def hinge_losses(discriminator: nn.Module, real: torch.Tensor,
                 fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(L_D, L_G)`` for images ``real, fake [B, 3, H, W]``: ``L_D = mean relu(1 - D(real)) + mean relu(1 +
    D(fake))`` with ``fake`` detached (trains only the discriminator); ``L_G = -mean D(fake)`` through detached
    discriminator parameters (trains only what made ``fake``)."""
    d_loss = F.relu(1.0 - discriminator(real)).mean() + F.relu(1.0 + discriminator(fake.detach())).mean()
    frozen = {name: p.detach() for name, p in discriminator.named_parameters()}
    g_loss = -functional_call(discriminator, frozen, (fake,)).mean()
    return d_loss, g_loss


def adaptive_weight(rec_loss: torch.Tensor, adv_loss: torch.Tensor, last_layer: torch.Tensor,
                    limit: float = 1e4) -> torch.Tensor:
    """LDM's ``||d rec / d W|| / (||d adv / d W|| + 1e-4)`` at the decoder's last weight ``W``, clamped to
    ``[0, limit]`` and detached; 0 where either loss does not reach ``W`` (no gradient)."""
    if not (rec_loss.requires_grad and adv_loss.requires_grad):
        return torch.zeros(())
    rec_grad, = torch.autograd.grad(rec_loss, last_layer, retain_graph=True)
    adv_grad, = torch.autograd.grad(adv_loss, last_layer, retain_graph=True)
    return (rec_grad.norm() / (adv_grad.norm() + 1e-4)).clamp(0.0, limit).detach()

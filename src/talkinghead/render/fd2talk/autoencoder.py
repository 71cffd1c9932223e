"""FD2Talk's latent encoder ``E`` and reference-conditioned decoder ``D`` (Sec. 3.3 and 3.4.2, Eq. 13-15).

The paper starts from Stable Diffusion's KL autoencoder [14] and changes one thing: the decoder reads the
reference latent and the latent to decode, concatenated (``2 d`` channels), so its first convolution is replaced.
Frames are decoded as ``V_i = D([x, J_0])`` (Sec. 3.3) and the pair is fine-tuned on two frames ``F_1, F_2`` of one
video with ``L_rec = ||F_2 - D([E(F_1), E(F_2)])||^2`` (Eq. 13) and ``L_per`` (Eq. 14, :mod:`.perceptual`).

:class:`FrameAutoencoder` holds a diffusers ``AutoencoderKL`` (``vae``) whose ``decoder.conv_in`` takes ``2 d``
channels; each latent passes the VAE's ``post_quant_conv`` before the concatenation. Latents handed to the UNet
are the posterior means times ``latent_scale`` (a buffer; Stable Diffusion's 0.18215, or one over the standard
deviation of the training latents for an autoencoder trained here).

- :meth:`FrameAutoencoder.from_diffusers` loads a Stable Diffusion VAE from a local folder (``AutoencoderKL``,
  ``local_files_only``); the new first convolution keeps the pretrained weights on the decoded latent's channels
  and starts at zero on the reference's, so before fine-tuning it decodes exactly as the pretrained VAE.
- The shipped ``cpu`` autoencoder is **trained here from scratch** (no SD weights can be downloaded), at 128 px with
  a downsampling factor of 4 (32 x 32 x 4 latents); ``paper`` is SD's shape (factor 8, 256 px -> 64 x 64 x 4, the
  paper's latent size).

Deviation: trained from scratch, the encoder needs the KL term of the VAE objective to keep its latents smooth
(SD's weight, ``kl_weight = 1e-6``); the paper fine-tunes an already regularised VAE with Eq. 15 alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from talkinghead.checkpoint import PretrainedMixin
from talkinghead.config import Config
from talkinghead.nn.latent import LatentVAEConfig, read_stable_diffusion_vae


@dataclass(frozen=True)
class AutoencoderConfig(LatentVAEConfig):
    """The latent VAE's shape (:class:`talkinghead.nn.latent.LatentVAEConfig`) with FD2Talk's presets: ``paper`` is
    SD's VAE at the paper's 256 px (64 x 64 latents); ``cpu`` a smaller one for the corpus's 128 px crops."""

    image_size: int = 256

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {"block_out_channels": (8, 8, 16), "layers_per_block": 1, "norm_num_groups": 4,
                 "mid_attention": False, "image_size": 128},
        "cpu": {"block_out_channels": (32, 48, 64), "layers_per_block": 1, "norm_num_groups": 8,
                "mid_attention": False, "image_size": 128},
        "paper": {},
    }


class FrameAutoencoder(PretrainedMixin, nn.Module):
    """``E`` and the reference-conditioned ``D`` (see the module docstring)."""

    component: ClassVar[str] = "fd2talk.autoencoder"
    config_class: ClassVar[type[Config]] = AutoencoderConfig
    latent_scale: torch.Tensor

    def __init__(self, config: AutoencoderConfig | None = None) -> None:
        from diffusers import AutoencoderKL

        super().__init__()
        self.config = config = config or AutoencoderConfig()
        self.vae: Any = AutoencoderKL(**config.diffusers_config())
        decoder: Any = getattr(self.vae, "decoder")  # noqa: B009 (diffusers types it loosely)
        decoder.conv_in = nn.Conv2d(2 * config.latent_channels, decoder.conv_in.out_channels, 3, padding=1)
        self.register_buffer("latent_scale", torch.tensor(1.0))

    @property
    def factor(self) -> int:
        return self.config.factor  # type: ignore[attr-defined, no-any-return]

    def posterior(self, images: torch.Tensor) -> Any:
        """``images [B, 3, H, W]`` in ``[-1, 1]`` -> the diagonal Gaussian over unscaled latents."""
        return self.vae.encode(images).latent_dist

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """``images [B, 3, H, W]`` -> scaled latents ``[B, d, H/f, W/f]`` (posterior means, ``E(I)``)."""
        return self.posterior(images).mode() * self.latent_scale

    def decode_raw(self, reference: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
        """``D([x, J])`` on unscaled latents ``[B, d, h, w]`` each -> images ``[B, 3, H, W]``."""
        vae = self.vae
        z = torch.cat([vae.post_quant_conv(reference), vae.post_quant_conv(latent)], dim=1)   # [B, 2d, h, w]
        return vae.decoder(z)  # type: ignore[no-any-return]

    def decode(self, reference: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
        """``V = D([x, J_0])`` (Sec. 3.3) on scaled latents ``[B, d, h, w]`` -> ``[B, 3, H, W]`` (about ``[-1, 1]``)."""
        return self.decode_raw(reference / self.latent_scale, latent / self.latent_scale)

    @classmethod
    def from_diffusers(cls, directory: str | Path) -> FrameAutoencoder:
        """A Stable Diffusion VAE from a local folder (:func:`talkinghead.nn.latent.read_stable_diffusion_vae`)
        with the decoder's first convolution widened for the reference latent (zero on the reference's channels)."""
        config, state, scale = read_stable_diffusion_vae(directory, AutoencoderConfig)
        model = cls(config)
        old = state.pop("decoder.conv_in.weight")                                  # [C, d, 3, 3]
        d = config.latent_channels
        widened = torch.zeros(old.shape[0], 2 * d, *old.shape[2:])
        widened[:, d:] = old                                                       # the decoded latent's channels
        model.vae.load_state_dict({**state, "decoder.conv_in.weight": widened}, strict=True)
        model.latent_scale.fill_(scale)
        model.preset_name = "stable-diffusion"
        return model

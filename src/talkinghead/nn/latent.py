"""The latent space of the video generators: a plain KL autoencoder (LDM [Rombach et al. 2022], EMO 3.1
"Preliminaries": ``z_0 = E(x_0)``, ``x_0 = D(z_0)``), shared by EMO and DICE-Talk.

:class:`LatentVAE` holds a diffusers ``AutoencoderKL`` and a ``latent_scale`` buffer: latents handed to a diffusion
network are the posterior means times ``latent_scale`` (Stable Diffusion's 0.18215, or one over the standard
deviation of the training latents for a VAE trained here), so they have about unit variance.

- :meth:`LatentVAE.load` reads a talkinghead checkpoint of this class or a Stable Diffusion VAE from a local folder
  (``AutoencoderKL.from_pretrained(local_files_only=True)``; the folder itself or its ``vae/`` subfolder).
- Presets: ``tiny`` (tests, 32 px, factor 4), ``cpu`` (the 128 px face crops of the video corpus, factor 4:
  32 x 32 x 4 latents, **trained here** by ``emo.vae`` since no SD weights can be downloaded), ``paper``
  (Stable Diffusion's VAE shape, 512 px, factor 8: 64 x 64 x 4, EMO 4.1).

Deviation (``cpu``): a factor of 4 instead of SD's 8, so that 128 px faces keep their mouths in 32 x 32 latents.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np
import torch
from torch import nn

from talkinghead.checkpoint import PretrainedMixin
from talkinghead.config import Config
from talkinghead.errors import TalkingHeadError

C = TypeVar("C", bound="LatentVAEConfig")
M = TypeVar("M", bound=nn.Module)


@dataclass(frozen=True)
class LatentVAEConfig(Config):
    """``AutoencoderKL``'s shape: ``block_out_channels`` (one block each; the factor is ``2 ** (n - 1)``),
    ``layers_per_block``, ``latent_channels``, ``norm_num_groups``, ``mid_attention`` and ``image_size`` (the side
    of the frames it is trained on and the generators crop faces to)."""

    block_out_channels: tuple[int, ...] = (128, 256, 512, 512)
    layers_per_block: int = 2
    latent_channels: int = 4
    norm_num_groups: int = 32
    mid_attention: bool = True
    image_size: int = 512

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {"block_out_channels": (8, 8, 16), "layers_per_block": 1, "norm_num_groups": 4,
                 "mid_attention": False, "image_size": 32},
        "cpu": {"block_out_channels": (32, 64, 96), "layers_per_block": 1, "norm_num_groups": 16,
                "mid_attention": False, "image_size": 128},
        "paper": {},
    }

    @property
    def factor(self) -> int:
        return int(2 ** (len(self.block_out_channels) - 1))

    @property
    def latent_size(self) -> int:
        return self.image_size // self.factor

    def diffusers_config(self) -> dict[str, Any]:
        n = len(self.block_out_channels)
        return {"in_channels": 3, "out_channels": 3, "down_block_types": ("DownEncoderBlock2D",) * n,
                "up_block_types": ("UpDecoderBlock2D",) * n, "block_out_channels": tuple(self.block_out_channels),
                "layers_per_block": self.layers_per_block, "latent_channels": self.latent_channels,
                "norm_num_groups": self.norm_num_groups, "sample_size": self.image_size,
                "mid_block_add_attention": self.mid_attention}


class LatentVAE(PretrainedMixin, nn.Module):
    """``E`` and ``D`` of the latent space (see the module docstring)."""

    component: ClassVar[str] = "video.vae"
    config_class: ClassVar[type[Config]] = LatentVAEConfig
    latent_scale: torch.Tensor

    def __init__(self, config: LatentVAEConfig | None = None) -> None:
        from diffusers import AutoencoderKL

        super().__init__()
        self.config = config = config or LatentVAEConfig()
        self.vae: Any = AutoencoderKL(**config.diffusers_config())
        self.register_buffer("latent_scale", torch.tensor(1.0))

    @property
    def factor(self) -> int:
        return self.config.factor  # type: ignore[attr-defined, no-any-return]

    @property
    def image_size(self) -> int:
        return int(self.config.image_size)  # type: ignore[attr-defined]

    def posterior(self, images: torch.Tensor) -> Any:
        """``images [B, 3, H, W]`` in ``[-1, 1]`` -> the diagonal Gaussian over unscaled latents."""
        return self.vae.encode(images).latent_dist

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """``images [B, 3, H, W]`` in ``[-1, 1]`` -> scaled latents ``[B, c, H/f, W/f]`` (posterior means)."""
        return self.posterior(images).mode() * self.latent_scale

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Scaled latents ``[B, c, h, w]`` -> images ``[B, 3, h*f, w*f]`` (about ``[-1, 1]``)."""
        return self.vae.decode(latents / self.latent_scale).sample  # type: ignore[no-any-return]

    @classmethod
    def from_diffusers(cls, directory: str | Path) -> LatentVAE:
        """A Stable Diffusion VAE from a local folder (``directory`` or ``directory/vae``)."""
        config, state, scale = read_stable_diffusion_vae(directory, LatentVAEConfig)
        model = cls(config)
        model.vae.load_state_dict(state, strict=True)
        model.latent_scale.fill_(scale)
        model.preset_name = "stable-diffusion"
        return model.eval()

    @classmethod
    def load(cls, directory: str | Path) -> LatentVAE:
        """A talkinghead ``video.vae`` checkpoint, else a Stable Diffusion VAE folder."""
        path = Path(directory)
        config = path / "config.json"
        if config.is_file():
            try:
                is_ours = json.loads(config.read_text()).get("format") == "talkinghead-checkpoint"
            except (ValueError, UnicodeDecodeError) as err:
                raise TalkingHeadError(f"{config} is not valid JSON.") from err
            if is_ours:
                return cls.from_pretrained(path)
        return cls.from_diffusers(path)


def read_stable_diffusion_vae(directory: str | Path, config_class: type[C]) -> tuple[C, dict[str, torch.Tensor], float]:
    """A diffusers ``AutoencoderKL`` in a local folder (``directory`` or ``directory/vae``;
    ``from_pretrained(local_files_only=True)``): its shape as ``config_class``, its weights and its scaling factor.
    Only Stable Diffusion's block types are accepted."""
    from diffusers import AutoencoderKL

    path = Path(directory)
    if (path / "vae" / "config.json").is_file():
        path = path / "vae"
    if not path.is_dir():
        raise TalkingHeadError(f"The VAE folder {path} does not exist.")
    try:
        pretrained = AutoencoderKL.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise TalkingHeadError(f"{path} is not a diffusers AutoencoderKL folder ({first}).") from err
    c = pretrained.config
    if set(c.down_block_types) != {"DownEncoderBlock2D"} or set(c.up_block_types) != {"UpDecoderBlock2D"}:
        raise TalkingHeadError(f"{path}: only Stable Diffusion's AutoencoderKL (DownEncoderBlock2D blocks) is "
                               "supported.")
    config = config_class(tuple(c.block_out_channels), c.layers_per_block, c.latent_channels,  # type: ignore[call-arg]
                          c.norm_num_groups, bool(c.get("mid_block_add_attention", True)), int(c.sample_size))
    return config, pretrained.state_dict(), float(c.scaling_factor)


def frames_to_tensor(frames: np.ndarray, size: int) -> torch.Tensor:
    """Frames ``[..., S, S, 3]`` uint8 -> the VAE's input ``[..., 3, size, size]`` in ``[-1, 1]`` (resized with an
    antialiased bilinear filter when ``S != size``)."""
    import torch.nn.functional as F

    lead = frames.shape[:-3]
    flat = np.ascontiguousarray(np.asarray(frames).reshape(-1, *frames.shape[-3:]))
    x = torch.from_numpy(flat).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)
    if x.shape[-1] != size:
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x.reshape(*lead, 3, size, size)


def freeze_encoder(vae: nn.Module) -> None:
    """Decoder-only fine-tuning of a diffusers ``AutoencoderKL``: the encoder side (``encoder`` and ``quant_conv``)
    gets no gradients, so the latent space, and every diffusion network trained in it, stays as it was."""
    for part in (vae.encoder, vae.quant_conv):
        part.requires_grad_(False)


def check_one_start(vae: object, decoder_only: object, init: object, model: str) -> None:
    """One sentence when more than one of an autoencoder's starting points is given: ``--vae`` (a Stable Diffusion
    VAE), ``--decoder-only`` and ``--init`` (a ``model`` trained here, its decoder or all of it fine-tuned)."""
    if sum(x is not None for x in (vae, decoder_only, init)) > 1:
        raise TalkingHeadError(f"Give one of --vae (start from a Stable Diffusion VAE), --decoder-only (fine-tune the "
                               f"decoder of {model} trained here) and --init (fine-tune all of it).")


def fine_tuning_copy(started: M, *, decoder_only: bool) -> M:
    """A fresh trainable copy of a fine-tuning's starting model (one holding a diffusers ``AutoencoderKL`` as
    ``.vae``), its encoder side frozen when ``decoder_only``. A copy per call: the training loop builds its export
    model with ``build_model`` and loads the EMA weights into it, which must not be the model being trained."""
    model = copy.deepcopy(started).train()
    if decoder_only:                                       # the latent space, and what was trained in it, is kept
        freeze_encoder(model.get_submodule("vae"))
    return model


def trainable_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The parameters an optimiser should update: those that still require gradients."""
    return [p for p in model.parameters() if p.requires_grad]

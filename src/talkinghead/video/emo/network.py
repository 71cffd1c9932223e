"""EMO's networks as one checkpoint (Sec. 3.2, Fig. 2): ReferenceNet, the Backbone Network with its audio and temporal
layers, the Face Locator, the audio projection and the speed encoder.

:class:`EMONetwork` is what each training stage (Sec. 3.3) trains a part of and saves whole (``emo.network``), so
stage 2 starts from stage 1's checkpoint and stage 3 from stage 2's. Its forward pass is one denoising call:

    z = z_t + FaceLocator(M)                       (the encoded face-region mask added to the noisy latents)
    epsilon = Backbone(z, t, ReferenceNet(reference, motion frames), audio tokens, speed features)   (Eq. 1)

:meth:`EMONetwork.references` runs ReferenceNet (once per clip); :meth:`EMONetwork.parameter_groups` names the parts a
stage trains. Presets: ``tiny`` (tests), ``cpu`` (128 px crops through a factor-4 VAE: 32 x 32 latents, a 3-level
UNet of widths 32/64/128 with reference- and audio-attention at the 16 x 16 and 8 x 8 levels only (temporal modules
at every level); f = 12, n = 4, m = 2), ``paper`` (SD 1.5 sizes: 64 x 64 latents of 512 px frames, widths
320/640/1280/1280; f = 12, n = 4, m = 2; 12 wav2vec blocks of 768).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from talkinghead.checkpoint import PretrainedMixin, load_checkpoint
from talkinghead.config import Config
from talkinghead.errors import TalkingHeadError
from talkinghead.video.emo.audio import AudioConfig, AudioProjection
from talkinghead.video.emo.backbone import Backbone
from talkinghead.video.emo.face_locator import FaceLocator, FaceLocatorConfig
from talkinghead.video.emo.reference_net import ReferenceFeatures, ReferenceNet
from talkinghead.video.emo.speed import SpeedConfig, SpeedEncoder
from talkinghead.video.emo.temporal import TemporalConfig
from talkinghead.video.emo.unet import UNetConfig, load_sd_weights

#: the parts of the network, in the order the paper introduces them (Sec. 3.3 trains them in three stages)
GROUPS = ("backbone", "reference_net", "face_locator", "temporal", "audio", "speed")


def _preset(name: str) -> dict[str, Any]:
    parts: dict[str, type[Config]] = {"unet": UNetConfig, "temporal": TemporalConfig, "audio": AudioConfig,
                                      "speed": SpeedConfig, "face_locator": FaceLocatorConfig}
    return {key: dict(cls.presets[name]) for key, cls in parts.items()}


@dataclass(frozen=True)
class EMOConfig(Config):
    """The parts' configs and the clip geometry: ``frames`` ``f`` generated per clip, ``motion_frames`` ``n``,
    ``context`` ``m`` (audio and speed neighbours either side), ``image_size`` (the face crop side) and the VAE's
    ``vae_factor``, ``reference_timestep`` (ReferenceNet's diffusion step)."""

    unet: UNetConfig = field(default_factory=UNetConfig)
    temporal: TemporalConfig = field(default_factory=TemporalConfig)
    audio: AudioConfig = field(default_factory=AudioConfig)
    speed: SpeedConfig = field(default_factory=SpeedConfig)
    face_locator: FaceLocatorConfig = field(default_factory=FaceLocatorConfig)
    frames: int = 12
    motion_frames: int = 4
    context: int = 2
    image_size: int = 512
    vae_factor: int = 8
    reference_timestep: int = 0

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {**_preset("tiny"), "frames": 4, "motion_frames": 2, "image_size": 32, "vae_factor": 4},
        "cpu": {**_preset("cpu"), "image_size": 128, "vae_factor": 4},
        "paper": {},
    }

    def __post_init__(self) -> None:
        if self.frames < 1 or not 0 <= self.motion_frames <= self.frames or self.context < 0:
            raise TalkingHeadError("An EMO clip needs at least one frame, at most as many motion frames and a "
                                   "non-negative context.")
        if self.image_size % self.vae_factor:
            raise TalkingHeadError("The EMO image size must be a multiple of the VAE factor.")

    @property
    def latent_size(self) -> int:
        return self.image_size // self.vae_factor


def group_of(name: str) -> str:
    """Which part of :data:`GROUPS` a parameter of :class:`EMONetwork` belongs to."""
    if name.startswith("backbone.temporal."):
        return "speed" if ".speed_" in name else "temporal"
    if name.startswith(("backbone.audio_attention.", "audio.")):
        return "audio"
    for group, prefix in (("backbone", "backbone.unet."), ("reference_net", "reference_net."),
                          ("face_locator", "face_locator."), ("speed", "speed.")):
        if name.startswith(prefix):
            return group
    raise KeyError(name)


class EMONetwork(PretrainedMixin, nn.Module):
    """``forward(noisy [B, F, c, h, w], timestep [B], reference: ReferenceFeatures, region [B, 1, H, W] or None,
    audio [B, F, 2m + 1, A] or None, speed [B, F, 2m + 1] or None, temporal) -> epsilon [B, F, c, h, w]``."""

    component: ClassVar[str] = "emo.network"
    config_class: ClassVar[type[Config]] = EMOConfig
    checkpoint_inputs: ClassVar[tuple[str, ...]] = ("audio_features",)

    def __init__(self, config: EMOConfig | None = None, audio_features: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.config = config = config or EMOConfig()
        self.audio_features = audio_features
        self.reference_net = ReferenceNet(config.unet, config.reference_timestep)
        self.backbone = Backbone(config.unet, config.temporal, config.audio, config.speed.dim)
        self.face_locator = FaceLocator(config.face_locator, config.unet.latent_channels, config.vae_factor)
        self.audio = AudioProjection(config.audio, config.context)
        self.speed = SpeedEncoder(config.speed, config.context)

    @property
    def emo_config(self) -> EMOConfig:
        assert isinstance(self.config, EMOConfig)
        return self.config

    def references(self, reference: torch.Tensor, motion: torch.Tensor | None = None) -> ReferenceFeatures:
        """ReferenceNet on the reference latent ``[B, c, h, w]`` and the motion frames' ``[B, n, c, h, w]``."""
        return self.reference_net(reference, motion)  # type: ignore[no-any-return]

    def forward(self, noisy: torch.Tensor, timestep: torch.Tensor, reference: ReferenceFeatures,
                region: torch.Tensor | None = None, audio: torch.Tensor | None = None,
                speed: torch.Tensor | None = None, temporal: bool = True) -> torch.Tensor:
        z = noisy if region is None else noisy + self.face_locator(region)[:, None]   # [B, F, c, h, w]
        tokens = None if audio is None else self.audio(audio)                         # [B, F, 2m + 1, D]
        features = None if speed is None else self.speed(speed)                       # [B, F, l]
        return self.backbone(z, timestep, reference, tokens, features,  # type: ignore[no-any-return]
                             self.emo_config.motion_frames, temporal)

    # -------------------------------------------------------------------------------------- parts
    def parameter_groups(self) -> dict[str, list[str]]:
        """Parameter names per part of :data:`GROUPS`."""
        groups: dict[str, list[str]] = {g: [] for g in GROUPS}
        for name, _ in self.named_parameters():
            groups[group_of(name)].append(name)
        return groups

    def train_only(self, groups: tuple[str, ...], exclude: set[str] | frozenset[str] = frozenset()) -> list[str]:
        """Freeze everything but the parameters of ``groups`` (less ``exclude``); the trained names."""
        trained = []
        for name, p in self.named_parameters():
            p.requires_grad_(group_of(name) in groups and name not in exclude)
            if p.requires_grad:
                trained.append(name)
        return trained

    def load_stable_diffusion(self, state: dict[str, torch.Tensor], where: str = "the UNet weights") -> None:
        """SD 1.5's UNet weights into both the Backbone's and ReferenceNet's UNet (EMO 3.2: both "inherit weights
        from the original SD UNet")."""
        load_sd_weights(self.backbone.unet, state, where)
        load_sd_weights(self.reference_net.unet, state, where)

    @classmethod
    def from_stage(cls, directory: str | Path, audio_features: dict[str, Any] | None = None,
                   audio_dim: int | None = None, motion_module: str | Path | None = None) -> EMONetwork:
        """A previous stage's checkpoint to train on; with ``audio_dim`` different from its own the audio projection
        is rebuilt for the new width (stage 1 never trains it); with ``motion_module`` (a local AnimateDiff motion
        module, :mod:`.animatediff`) the temporal modules start from its weights, as EMO 3.3 initialises them."""
        from talkinghead.video.emo.animatediff import (
            animatediff_temporal_config,
            load_motion_module,
            read_motion_module,
        )

        info, state = load_checkpoint(directory, cls.component)
        config = EMOConfig.from_dict(info.config)
        motion_state: dict[str, torch.Tensor] | None = None
        if motion_module is not None:
            motion_state, adapter = read_motion_module(motion_module)
            config = config.replace(temporal=animatediff_temporal_config(config.temporal, adapter))
        rebuilt = audio_dim is not None and audio_dim != config.audio.input_dim
        if rebuilt:
            config = config.replace(audio=config.audio.replace(input_dim=audio_dim))
            state = {k: v for k, v in state.items() if not k.startswith("audio.")}
        model = cls(config, audio_features if audio_features is not None else info.audio_features)
        missing, unexpected = model.load_state_dict(state, strict=False)
        if unexpected or any(not (rebuilt and k.startswith("audio.")) for k in missing):
            first = (unexpected or missing)[0]
            raise TalkingHeadError(f"{directory} does not match its config ({first}).")
        if motion_state is not None:
            load_motion_module(model.backbone.temporal, motion_state, str(motion_module))
        model.preset_name = info.preset
        return model

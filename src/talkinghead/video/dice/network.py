"""DICE-Talk's trained networks as one checkpoint (Sec. 3, Fig. 2): the SVD-structured UNet with reference-image,
audio and emotion attention (:mod:`.unet`, Eq. 14), the emotion bank (:mod:`.bank`, Sec. 3.2, Eq. 9-13, 17) and the
emotion discriminator (:mod:`.discriminator`, Sec. 3.3, Eq. 16). The disentangled emotion embedder (Sec. 3.1) is its
own checkpoint (``dice.embedder``), trained first and frozen here.

:class:`DICENetwork` (``dice.network``):

- :meth:`DICENetwork.emotion_tokens`: the emotion prior ``s [B, d_s]`` -> ``E_s [B, 1, d_e]`` through the bank
  (training: Eq. 9-11 retrieval of the nearest prototype; inference: Eq. 12-13, attention over all prototypes);
- :meth:`DICENetwork.training_loss`: Eq. 15 for a batch, ``L = L_denoising + lambda L_cls + L_vq``:

  1. ``s`` is Eq. 6's sample ``mu_s + sigma_s * eps`` of the frozen embedder's prior of the emotion reference clip
     (Sec. 4.5: training on the deterministic mean overfits and transfers the reference's identity);
  2. the bank turns ``s`` into ``E_s``;
  3. per-condition dropout (Sec. 4.1: 5% audio, 5% image, 5% emotion, 5% all, :func:`.edm.draw_condition_drop`),
     plus the conditions a sample does not have (a clip without audio drops its audio, an unlabelled clip its
     emotion);
  4. EDM's denoising loss (:func:`.edm.edm_loss`) on the clip's latents with the reference latent, the audio windows
     and ``E_s``;
  5. ``L_cls`` (Eq. 16): the discriminator's cross-entropy on the UNet's pooled mid-block ``features`` against the
     clip's emotion label (unlabelled clips and clips whose emotion condition was dropped are left out: the UNet
     was not told the emotion, and classifying it from the noisy target alone is not what the objective is for);
  6. ``L_vq`` (Eq. 17) on the priors of the labelled clips.
- :meth:`DICENetwork.denoiser`: the guided EDM denoiser of one clip for sampling (:func:`.edm.guided_denoiser`).

**The bank's W_Q / W_K in training** (a fix, documented in :mod:`.bank`): with the one retrieved key of Eq. 11 the
softmax is identically 1, so ``E_s = W_V C_k`` in training and ``W_Q``, ``W_K`` get no gradient, yet they decide
Eq. 13's weights at inference. Here each training sample takes the inference path (Eq. 12-13, attention over all
``K`` prototypes) with probability ``bank_inference_fraction`` (0.25) and Eq. 9-11 otherwise, so ``W_Q`` and ``W_K``
learn what the sampler will use while most samples keep the paper's nearest-prototype training. ``0`` is the paper
as written.

**Ablations** (Table 4, config flags recorded in the checkpoint): ``emotion_bank = False`` ("w/o emotion bank": ``s``
is fed to the emotion attention directly, ``E_s = s``, no bank and no ``L_vq``); ``discrimination = False`` ("w/o
L_cls": no discriminator, ``L_cls = 0``); ``deterministic_prior = True`` (Sec. 4.5, the mean ``mu_s`` instead of
Eq. 6's sample in training; Table 4's "w/o emotion prior" row); ``learnable_ca = True`` (Table 4's "learnable CA":
"cross attention between learnable embeddings and the emotion prior": the bank's ``K`` vectors are plain learnable
embeddings that the prior attends to in training as at inference, Eq. 12-13 for every sample, learned by the
denoising loss alone: no nearest-prototype retrieval, no ``L_vq``, and the trainer leaves their random
initialisation).

Presets: ``tiny`` (tests: 32 px crops, factor 4, F = 4, m = 1), ``cpu`` (128 px crops through the factor-4 VAE
trained here or EMO's: 32 x 32 latents, F = 12, m = 2, the UNet's ``cpu`` widths 32/64/128), ``paper`` (SVD-xt:
512 px, factor 8, F = 25, m = 2, SVD's UNet). The paper gives neither F nor m; SVD-xt's clip is 25 frames, EMO's and
Sonic's audio windows are m = 2.

Deviations and why: the bank fix above; the commitment term of Eq. 17 pulls ``s`` toward its prototype, but ``s``
comes from the frozen embedder here, so only the codebook term trains (the paper trains the embedder first as well,
Sec. 3.1, so it cannot move either); the emotion feature is one token (``L_e = 1``: one prior per clip, Sec. 3.2);
the trainer starts the prototypes at priors of training clips instead of the bank's ``N(0, 1)`` (:mod:`.training`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import nn

from talkinghead.checkpoint import PretrainedMixin
from talkinghead.config import Config
from talkinghead.errors import TalkingHeadError
from talkinghead.video.dice.bank import BankConfig, EmotionBank
from talkinghead.video.dice.discriminator import (
    NO_LABEL,
    DICELosses,
    DiscriminatorConfig,
    EmotionDiscriminator,
    LatentEmotionJudge,
    ObjectiveConfig,
    content_cls_loss,
    emotion_cls_loss,
    total_loss,
)
from talkinghead.video.dice.edm import (
    CONDITIONS,
    Denoiser,
    EDMConfig,
    GuidanceScales,
    draw_condition_drop,
    dropped_masks,
    edm_denoiser,
    edm_loss,
    guided_denoiser,
)
from talkinghead.video.dice.embedder import EmotionPrior
from talkinghead.video.dice.unet import DICEUNet, DICEUNetConfig, DICEUNetOutput

#: the clip geometry of each preset: frames F, audio context m, image size, VAE factor
_GEOMETRY: dict[str, dict[str, Any]] = {
    "tiny": {"frames": 4, "context": 1, "image_size": 32, "vae_factor": 4},
    "cpu": {"frames": 12, "context": 2, "image_size": 128, "vae_factor": 4},
    "paper": {"frames": 25, "context": 2, "image_size": 512, "vae_factor": 8},
}


def _preset(name: str) -> dict[str, Any]:
    geometry = _GEOMETRY[name]
    unet = {**DICEUNetConfig.presets[name], "audio_context": geometry["context"], "num_frames": geometry["frames"]}
    return {"unet": unet, "bank": dict(BankConfig.presets[name]),
            "discriminator": dict(DiscriminatorConfig.presets[name]), "edm": dict(EDMConfig.presets[name]),
            **geometry}


@dataclass(frozen=True)
class DICEConfig(Config):
    """The parts' configs, the clip geometry (``frames`` ``F`` per clip, audio ``context`` ``m``, ``image_size`` of
    the face crops and the VAE's ``vae_factor``), the emotion names of the discriminator's classes (the embedder's),
    the bank fix's ``bank_inference_fraction`` and the ablation flags (see the module docstring)."""

    unet: DICEUNetConfig = field(default_factory=DICEUNetConfig)
    bank: BankConfig = field(default_factory=BankConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    edm: EDMConfig = field(default_factory=EDMConfig)
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    frames: int = 25
    context: int = 2
    image_size: int = 512
    vae_factor: int = 8
    emotions: tuple[str, ...] = ()
    bank_inference_fraction: float = 0.25
    emotion_bank: bool = True
    discrimination: bool = True
    deterministic_prior: bool = False
    learnable_ca: bool = False
    discriminate: str = "features"

    presets: ClassVar[dict[str, dict[str, Any]]] = {name: _preset(name) for name in ("tiny", "cpu", "paper")}

    def __post_init__(self) -> None:
        if self.frames < 1 or self.context < 0:
            raise TalkingHeadError("A DICE clip needs at least one frame and a non-negative audio context.")
        if self.image_size % self.vae_factor:
            raise TalkingHeadError("The DICE image size must be a multiple of the VAE factor.")
        if self.unet.audio_context != self.context:
            raise TalkingHeadError(f"The UNet reads audio windows of m = {self.unet.audio_context}, the clip "
                                   f"config says m = {self.context}.")
        if self.emotion_bank and self.bank.dim != self.unet.emotion_dim:
            raise TalkingHeadError(f"The emotion bank is {self.bank.dim} wide and the UNet's emotion attention reads "
                                   f"{self.unet.emotion_dim}.")
        if self.discrimination and self.discriminator.feature_dim != self.unet.block_out_channels[-1]:
            raise TalkingHeadError(f"The discriminator reads {self.discriminator.feature_dim} features and the UNet's "
                                   f"mid block is {self.unet.block_out_channels[-1]} wide.")
        if self.discrimination and self.emotions and len(self.emotions) != self.discriminator.emotions:
            raise TalkingHeadError(f"The discriminator has {self.discriminator.emotions} classes for "
                                   f"{len(self.emotions)} emotion names.")
        if not 0.0 <= self.bank_inference_fraction <= 1.0:
            raise TalkingHeadError("The bank's inference-path fraction must lie in [0, 1].")
        if self.discriminate not in ("features", "prediction"):
            raise TalkingHeadError(f"The emotion discriminator reads 'features' (the paper) or 'prediction', not "
                                   f"'{self.discriminate}'.")
        if self.learnable_ca and not self.emotion_bank:
            raise TalkingHeadError("The learnable-CA ablation attends to the bank's embeddings; it needs the bank.")

    @property
    def latent_size(self) -> int:
        return self.image_size // self.vae_factor

    @property
    def emotion_dim(self) -> int:
        """``d_s``: the width of the priors the network takes."""
        return self.bank.dim if self.emotion_bank else self.unet.emotion_dim

    def for_data(self, *, audio_dim: int, emotion_dim: int, emotions: tuple[str, ...], latent_channels: int,
                 image_size: int, vae_factor: int) -> DICEConfig:
        """This config with the sizes the data, the embedder and the VAE decide: the UNet's audio width and latent
        channels, ``d_s`` (bank and emotion attention), the discriminator's classes and the crop geometry."""
        if self.discrimination and len(emotions) < 2:
            raise TalkingHeadError(f"The emotion discrimination objective needs two emotions at least; the embedder "
                                   f"knows {len(emotions)}.")
        return self.replace(
            unet=self.unet.replace(audio_dim=audio_dim, emotion_dim=emotion_dim, latent_channels=latent_channels,
                                   sample_size=image_size // vae_factor, num_frames=self.frames),
            bank=self.bank.replace(dim=emotion_dim),
            discriminator=self.discriminator.replace(emotions=max(2, len(emotions)),
                                                     feature_dim=self.unet.block_out_channels[-1]),
            emotions=emotions, image_size=image_size, vae_factor=vae_factor)


@dataclass
class DICETrainingLoss:
    """What :meth:`DICENetwork.training_loss` computed: the parts of Eq. 15 (``losses``), the priors used
    ``s [B, d_s]``, the emotion feature ``emotion [B, 1, d_e]``, the drop masks applied (``{name: bool [B]}``), the
    labels ``L_cls`` read (``-1`` left out), the discriminator's ``logits`` (None without it) and EDM's
    ``sigma [B]``."""

    losses: DICELosses
    s: torch.Tensor
    emotion: torch.Tensor
    drop: dict[str, torch.Tensor]
    labels: torch.Tensor
    logits: torch.Tensor | None
    sigma: torch.Tensor

    def metrics(self) -> dict[str, torch.Tensor]:
        parts = self.losses
        return {"loss": parts.total.detach(), "denoising": parts.denoising.detach(), "cls": parts.cls.detach(),
                "vq": parts.vq.detach()}


class DICENetwork(PretrainedMixin, nn.Module):
    """The UNet, the emotion bank (None without it) and the discriminator (None without it); see the module
    docstring. ``audio_features`` records the UNet's audio feature spec (as the motion models' checkpoints do)."""

    component: ClassVar[str] = "dice.network"
    config_class: ClassVar[type[Config]] = DICEConfig
    checkpoint_inputs: ClassVar[tuple[str, ...]] = ("audio_features",)

    def __init__(self, config: DICEConfig | None = None, audio_features: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.config = config = config or DICEConfig()
        self.audio_features = audio_features
        self.unet = DICEUNet(config.unet)
        self.bank = EmotionBank(config.bank) if config.emotion_bank else None
        self.discriminator: EmotionDiscriminator | LatentEmotionJudge | None = None
        if config.discrimination:
            self.discriminator = EmotionDiscriminator(config.discriminator) if config.discriminate == "features" \
                else LatentEmotionJudge(config.unet.latent_channels, config.discriminator)

    @property
    def dice_config(self) -> DICEConfig:
        assert isinstance(self.config, DICEConfig)
        return self.config

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor, reference: torch.Tensor,
                audio: torch.Tensor | None = None, emotion: torch.Tensor | None = None,
                drop: dict[str, torch.Tensor] | None = None) -> DICEUNetOutput:
        """One UNet call (:class:`.unet.DICEUNet`); ``emotion`` is ``E_s [B, L_e, d_e]`` (:meth:`emotion_tokens`)."""
        return self.unet(sample, timestep, reference, audio, emotion, drop)  # type: ignore[no-any-return]

    # ------------------------------------------------------------------------------------------ emotion
    def draw_bank_path(self, batch: int, generator: torch.Generator | None = None,
                       device: torch.device | str = "cpu") -> torch.Tensor:
        """Which training samples take the bank's inference path (bool ``[B]``, ``bank_inference_fraction`` each)."""
        u = torch.rand(batch, generator=generator, device="cpu" if generator is None else generator.device)
        return (u < self.dice_config.bank_inference_fraction).to(device)

    def emotion_tokens(self, s: torch.Tensor, attend_all: torch.Tensor | None = None) -> torch.Tensor:
        """Priors ``s [B, d_s]`` -> ``E_s [B, 1, d_e]``. Without a bank ``E_s = s``; in eval mode Eq. 12-13 for every
        sample; in training mode Eq. 9-11, except the samples marked in ``attend_all [B]`` (Eq. 12-13)."""
        if s.ndim != 2 or s.shape[1] != self.dice_config.emotion_dim:
            raise TalkingHeadError(f"The emotion prior should be [B, {self.dice_config.emotion_dim}], got "
                                   f"{list(s.shape)}.")
        if self.bank is None:
            return s[:, None]
        if not self.training or self.dice_config.learnable_ca:
            return self.bank.attend_all(s)[:, None]
        tokens = self.bank.retrieve(s)
        if attend_all is not None and bool(attend_all.any()):
            tokens = torch.where(attend_all.to(s.device)[:, None], self.bank.attend_all(s), tokens)
        return tokens[:, None]

    # ------------------------------------------------------------------------------------------ training
    def training_loss(self, latents: torch.Tensor, reference: torch.Tensor, audio: torch.Tensor,
                      prior: EmotionPrior, labels: torch.Tensor, *, has_audio: torch.Tensor | None = None,
                      has_emotion: torch.Tensor | None = None, drop: dict[str, torch.Tensor] | None = None,
                      generator: torch.Generator | None = None) -> DICETrainingLoss:
        """Eq. 15 on a batch (see the module docstring).

        ``latents [B, F, c, h, w]`` (the clip, VAE latents), ``reference [B, c, h, w]`` (the reference frame's latent),
        ``audio [B, F, 2m + 1, A]`` (raw feature windows), ``prior`` (the frozen embedder's prior of each sample's
        emotion reference, ``[B, d_s]``), ``labels [B]`` (emotion class, ``-1`` unlabelled); ``has_audio`` /
        ``has_emotion`` (bool ``[B]``, default all True): samples without them drop that condition; ``drop``: the
        per-condition dropout (drawn per Sec. 4.1 when None); ``generator`` for the draws (noise, sigma, dropout,
        Eq. 6's sample, the bank path)."""
        b = latents.shape[0]
        device = latents.device
        cfg = self.dice_config
        if prior.mean.shape != (b, cfg.emotion_dim) or labels.shape != (b,):
            raise TalkingHeadError(f"A batch of {b} clips needs priors [{b}, {cfg.emotion_dim}] and labels [{b}].")
        s = prior.mean if cfg.deterministic_prior else prior.sample(generator)       # Eq. 6 (Sec. 4.5)
        s = s.to(device, latents.dtype)
        masks = drop if drop is not None else draw_condition_drop(b, cfg.edm, generator, device)
        masks = {name: masks.get(name, torch.zeros(b, dtype=torch.bool, device=device)).to(device)
                 for name in CONDITIONS}
        if has_audio is not None:
            masks["audio"] = masks["audio"] | ~has_audio.to(device, torch.bool)
        labelled = torch.ones(b, dtype=torch.bool, device=device) if has_emotion is None else \
            has_emotion.to(device, torch.bool)
        masks["emotion"] = masks["emotion"] | ~labelled
        path = self.draw_bank_path(b, generator, device) if self.bank is not None else None
        tokens = self.emotion_tokens(s, path)                                         # E_s, [B, 1, d_e]

        def network(z_in: torch.Tensor, c_noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            out = self.unet(z_in, c_noise, reference, audio, tokens, masks)
            return out.sample, out.features

        den = edm_loss(network, latents, cfg.edm, generator)
        cls_labels = labels.to(device, torch.long).masked_fill(masks["emotion"], NO_LABEL)
        logits = cls = None
        if isinstance(self.discriminator, LatentEmotionJudge):                          # the content variant
            cls, logits = content_cls_loss(self.discriminator, latents, den.denoised.to(latents.dtype),
                                           labels.to(device, torch.long).masked_fill(~labelled, NO_LABEL),
                                           cls_labels)
        elif self.discriminator is not None:
            logits = self.discriminator(den.extra)
            cls = emotion_cls_loss(logits, cls_labels)                                  # Eq. 16
        vq = None
        if self.bank is not None and not cfg.learnable_ca:
            vq = self.bank.vq_loss(s[labelled]) if bool(labelled.any()) else self.bank.prototypes.sum() * 0.0
        losses = total_loss(den.loss, cls, vq, cfg.objective)                          # Eq. 15
        return DICETrainingLoss(losses, s, tokens, masks, cls_labels, logits, den.sigma)

    # ------------------------------------------------------------------------------------------ sampling
    def denoiser(self, reference: torch.Tensor, audio: torch.Tensor, emotion: torch.Tensor | None,
                 scales: GuidanceScales) -> Denoiser:
        """The guided EDM denoiser ``D(x [B, F, c, h, w], sigma [B])`` of one clip: ``reference [B, c, h, w]``,
        ``audio [B, F, 2m + 1, A]``, ``emotion`` ``E_s [B, L_e, d_e]`` (None: no emotion condition); the nested
        guidance of :mod:`.edm` with ``scales``."""

        def predict(x: torch.Tensor, sigma: torch.Tensor, dropped: frozenset[str]) -> torch.Tensor:
            masks = dropped_masks(dropped, x.shape[0], x.device)

            def network(z_in: torch.Tensor, c_noise: torch.Tensor) -> torch.Tensor:
                return self.unet(z_in, c_noise, reference, audio, emotion, masks).sample  # type: ignore[no-any-return]

            return edm_denoiser(network, self.dice_config.edm.sigma_data)(x, sigma)

        return guided_denoiser(predict, scales)

"""EMO's training (Sec. 3.3, 4.1) on the talking-face video dataset: the three stages, and the VAE trained here.

- ``emo.vae`` (:class:`VAESolver`): the latent autoencoder of :mod:`talkinghead.nn.latent` (``cpu``: 128 px,
  factor 4), trained on the dataset's frames with the VAE objective (squared reconstruction error, KL weight
  ``kl_weight``) and, given ``--perceptual DIR``, the perceptual distance of FD2Talk's network trained here (or VGG16
  weights). The paper uses SD's VAE; ``--vae DIR`` starts from one in a local folder. ``--decoder-only DIR``
  fine-tunes the decoder of a VAE trained here and nothing else (reconstruction and perceptual losses on decoded
  posterior samples; no KL term, the encoder is frozen): its latent space and ``latent_scale`` stay as they were, so
  the diffusion networks trained on that VAE (EMO's, DICE-Talk's) stay valid. Not in the paper (its VAE is SD's,
  frozen); the decoder fine-tuning of Stable Diffusion's released VAEs and FD2Talk's Eq. 13-15 are the precedent.
  ``--augment`` (not in the paper, off by default) changes each frame's colours, flips and zooms it at random
  (:mod:`talkinghead.data.video.appearance`): the shipped set has ten training identities, SD's VAE saw millions of
  images, and a VAE trained on ten faces blurs the ones it never saw. ``--init DIR`` fine-tunes all of a VAE trained
  here (both halves, with the KL term; not in the paper, whose SD VAE is frozen): a new latent space whose
  ``latent_scale`` is measured again, so the diffusion networks must be trained on it anew.
- ``emo.image`` (:class:`ImageSolver`, stage 1 "image pretraining"): "the Backbone Network, the ReferenceNet, and the
  Face Locator are taken into training; ... the Backbone takes a single frame as input, while ReferenceNet handles a
  distinct, randomly chosen frame from the same video clip" (frame pairs, :meth:`VideoSampler.pairs`; the mask is the
  target's face box). "Both the Backbone and the ReferenceNet initialize weights from the original SD" (``--unet DIR``,
  a local SD 1.5 folder; else they start from scratch). No temporal or audio layers.
- ``emo.video`` (:class:`VideoSolver`, stage 2): "the temporal modules and the audio layers are incorporated, n + f
  contiguous frames are sampled from the video clip, with the started n frames are motion frames"
  (:meth:`VideoSampler.windows`; the mask is the union of the targets' boxes). Only those layers train.
- ``emo.speed`` (:class:`SpeedSolver`, stage 3): "we only train the temporal modules and the speed layers"; the audio
  layers stay frozen (the paper: training both undermines the audio's drive).

Each stage's loss is Eq. 1, ``||epsilon - epsilon_theta(z_t, t, c)||^2``, on VAE latents with Stable Diffusion 1.5's
noise schedule (:data:`talkinghead.video.emo.pipeline.SCHEDULE`). Stage 2 starts from stage 1's ``emo.network``
checkpoint (``--init``), stage 3 from stage 2's; every stage saves the whole network, with the frozen parts unchanged.
What a stage does not train is frozen (``requires_grad`` off and not given to the optimizer); in stage 1 that includes
ReferenceNet's layers whose output nothing reads (its output convolution and the last layer after its final recorded
self-attention input, found by one probe pass).

Choices the paper leaves open: the motion frames of a sample are replaced by zero maps with probability
``motion_drop`` (the first clip of a video is generated from zero maps, so training must show them); frames are
resized to the VAE's image size when the dataset's crops differ; the ``cpu`` learning rate is 1e-4 (``paper``: 1e-5,
batch 48 in stage 1 and 4 in stages 2-3, EMO 4.1).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from talkinghead.data.video.appearance import augment_pairs
from talkinghead.data.video.loader import VideoSampler
from talkinghead.diffusion import ScheduleConfig, add_noise, make_scheduler, sample_timesteps
from talkinghead.errors import TalkingHeadError
from talkinghead.nn.latent import (
    LatentVAE,
    LatentVAEConfig,
    check_one_start,
    fine_tuning_copy,
    frames_to_tensor,
    trainable_parameters,
)
from talkinghead.render.fd2talk.perceptual import load_perceptual, perceptual_distance
from talkinghead.training.loop import Solver, TrainConfig
from talkinghead.training.registry import SolverBuild
from talkinghead.video.emo.face_locator import region_masks
from talkinghead.video.emo.network import EMOConfig, EMONetwork
from talkinghead.video.emo.pipeline import SCHEDULE
from talkinghead.video.emo.unet import unet_from_diffusers

STAGES = ("image", "video", "speed")
#: what each stage trains (Sec. 3.3)
TRAINS: dict[str, tuple[str, ...]] = {"image": ("backbone", "reference_net", "face_locator"),
                                      "video": ("temporal", "audio"), "speed": ("temporal", "speed")}


@dataclass(frozen=True)
class EMOTrainConfig(TrainConfig):
    """The shared loop's settings plus ``motion_drop`` (stages 2-3) and the VAE's ``kl_weight`` and
    ``perceptual_weight``."""

    motion_drop: float = 0.2
    kl_weight: float = 1e-6
    perceptual_weight: float = 1.0

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {**TrainConfig.presets["tiny"], "batch_size": 2},
        "cpu": {**TrainConfig.presets["cpu"], "steps": 2000, "batch_size": 4, "lr": 1e-4},
        "paper": {"lr": 1e-5, "batch_size": 4},
    }


# ------------------------------------------------------------------------------------------------ data

def training_sampler(data: str | Path, real: str | Path | None, features: tuple[str, ...] = ()) -> VideoSampler:
    """The train split of ``data`` (and of ``real`` less its held-out clips, as FD2Talk's frame solvers)."""
    from talkinghead.render.fd2talk.training import held_out_clips

    given: list[Any] = [data] + ([real] if real is not None else [])
    exclude = held_out_clips(real) if real is not None else []
    return VideoSampler(given, "train", features=features, exclude=exclude)


def audio_spec(sampler: VideoSampler) -> dict[str, Any]:
    """The checkpoint's ``audio_features`` (the same keys as the motion models')."""
    info = sampler.dataset.info
    kinds = dict(info.audio_features.get("kinds") or {})
    return {"names": list(sampler.features), "dims": [int(kinds[n]) for n in sampler.features],
            "dataset": info.audio_features, "fps": info.fps}


def audio_stats(sampler: VideoSampler) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and standard deviation ``[A]`` of the train clips' audio features (clips with audio)."""
    values = np.concatenate([lab.features for lab in sampler.labels if lab.meta.has_audio])
    return torch.from_numpy(values.mean(0)), torch.from_numpy(values.std(0))


def dataset_extra(sampler: VideoSampler) -> dict[str, Any]:
    """What the generator reads from a checkpoint's ``extra``: the crop geometry and the median head speed."""
    speeds = np.concatenate([lab.speed for lab in sampler.labels])
    return {"crop_scale": float(sampler.dataset.info.crop_scale), "crop_size": int(sampler.size),
            "speed_median": float(np.median(speeds)), "data": [str(d.root) for d in sampler.datasets]}


# ----------------------------------------------------------------------------------------------------- VAE

class _VAEStep(nn.Module):
    def __init__(self, vae: LatentVAE, perceptual: nn.Module | None, config: EMOTrainConfig,
                 decoder_only: bool = False) -> None:
        super().__init__()
        self.vae = vae
        self._perceptual = [perceptual]  # frozen helper: not trained, not saved
        self.config = config
        self.decoder_only = decoder_only

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        images = batch["images"]
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.decoder_only):
            posterior = self.vae.posterior(images)
            latents = posterior.sample()
        decoded = self.vae.vae.decode(latents).sample
        rec = F.mse_loss(decoded, images)
        metrics = {"rec": rec.detach()}
        loss = rec
        if not self.decoder_only:
            kl = posterior.kl().mean() / images[0].numel()
            loss = rec + self.config.kl_weight * kl
            metrics["kl"] = kl.detach()
        if self._perceptual[0] is not None:
            per = perceptual_distance(self._perceptual[0], decoded, images).mean()
            loss = loss + self.config.perceptual_weight * per
            metrics["per"] = per.detach()
        return loss, {"loss": loss.detach(), **metrics}


class VAESolver(Solver):
    """``emo.vae``: the latent VAE on the dataset's frames (see the module docstring)."""

    component: ClassVar[str] = "emo.vae"
    train_config_class: ClassVar[type[TrainConfig]] = EMOTrainConfig

    def __init__(self, sampler: VideoSampler, config: LatentVAEConfig, train_config: EMOTrainConfig,
                 perceptual: nn.Module | None = None, vae: str | Path | None = None,
                 decoder_only: str | Path | None = None, augment: bool = False,
                 init: str | Path | None = None) -> None:
        check_one_start(vae, decoder_only, init, "a VAE")
        self.sampler = sampler
        self.vae = vae
        self.decoder_only = decoder_only
        self.augment = augment
        trained = decoder_only if decoder_only is not None else init
        # a fine-tuning's starting VAE, loaded once (build_model copies it)
        self.started = None if trained is None else LatentVAE.from_pretrained(trained)
        if self.started is not None:
            self.model_config = self.started.config
        else:
            self.model_config = LatentVAE.from_diffusers(vae).config if vae is not None else config
        self.train_config = train_config
        self.perceptual = None if perceptual is None else perceptual.eval().requires_grad_(False)
        held = sampler.pairs(np.random.default_rng(12345), 32)
        self._scale_frames = frames_to_tensor(np.concatenate([held.target, held.reference]), self.size)

    @property
    def size(self) -> int:
        return int(self.model_config.image_size)  # type: ignore[attr-defined]

    def build_model(self) -> LatentVAE:
        if self.started is not None:                        # --init: both halves learn (a new latent space)
            return fine_tuning_copy(self.started, decoder_only=self.decoder_only is not None)
        return LatentVAE.from_diffusers(self.vae).train() if self.vae is not None else \
            LatentVAE(self.model_config)  # type: ignore[arg-type]

    def optimizer(self, model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
        return torch.optim.Adam(trainable_parameters(model), lr=config.lr)

    def wrap(self, model: nn.Module) -> nn.Module:
        assert isinstance(model, LatentVAE)
        return _VAEStep(model, self.perceptual, self.train_config, self.decoder_only is not None)

    def to_device(self, device: torch.device) -> None:
        if self.perceptual is not None:
            self.perceptual.to(device)

    def make_batch(self, rng: np.random.Generator, batch_size: int) -> dict[str, torch.Tensor]:
        pairs = self.sampler.pairs(rng, (batch_size + 1) // 2)
        target, reference = pairs.target, pairs.reference
        if self.augment:                                   # appearance and geometry (a reconstruction loss)
            target, reference = augment_pairs(rng, [target, reference], geometric=True)
        return {"images": frames_to_tensor(np.concatenate([target, reference])[:batch_size], self.size)}

    def export(self, model: nn.Module, out: Path, extra: dict[str, Any]) -> None:
        assert isinstance(model, LatentVAE)
        if self.vae is None and self.decoder_only is None:  # trained here: unit-variance latents for the diffusion net
            with torch.no_grad():
                model.latent_scale.fill_(1.0)
                std = float(model.encode(self._scale_frames).std())
            model.latent_scale.fill_(1.0 / max(std, 1e-6))
        model.save_pretrained(out, extra=dict(extra, latent_scale=float(model.latent_scale)))


# -------------------------------------------------------------------------------------------- diffusion stages

class _EMOStep(nn.Module):
    """One stage's Eq. 1 on a batch (``stage`` decides the inputs, see the module docstring)."""

    def __init__(self, net: EMONetwork, vae: LatentVAE, stage: str, schedule: ScheduleConfig) -> None:
        super().__init__()
        self.net = net
        self._vae = [vae]  # frozen helper: not trained, not saved
        self.stage = stage
        self.scheduler = make_scheduler(schedule, "ddpm")

    def latents(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Targets ``z_0 [B, F, c, h, w]``, the reference ``[B, c, h, w]`` and the motion frames ``[B, n, c, h, w]``."""
        encode = self._vae[0].encode
        with torch.no_grad():
            reference = encode(batch["reference"])
            if self.stage == "image":
                return encode(batch["target"])[:, None], reference, None
            frames = batch["frames"]
            b, total = frames.shape[:2]
            lat = encode(frames.flatten(0, 1)).unflatten(0, (b, total))                  # [B, n + f, c, h, w]
            n = total - batch["audio"].shape[1]
            return lat[:, n:], reference, (lat[:, :n] if n else None)

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        z0, reference, motion = self.latents(batch)
        if self.stage == "image":                                  # ReferenceNet trains with the Backbone
            refs = self.net.references(reference)
        else:                                                      # frozen: computed once, no graph
            with torch.no_grad():
                refs = self.net.references(reference, motion).keep_motion(batch["keep"])
        noise = torch.randn_like(z0)
        zt = add_noise(self.scheduler, z0, noise, batch["t"])
        eps = self.net(zt, batch["t"], refs, batch["region"],
                       audio=None if self.stage == "image" else batch["audio"],
                       speed=batch["speed"] if self.stage == "speed" else None, temporal=self.stage != "image")
        loss = F.mse_loss(eps, noise)                              # Eq. 1
        return loss, {"loss": loss.detach()}


def unread_reference_parameters(net: EMONetwork) -> set[str]:
    """ReferenceNet parameters that no recorded self-attention input depends on (one probe pass on a tiny latent)."""
    cfg = net.emo_config.unet
    side = 2 ** (len(cfg.block_out_channels) - 1)
    named = [(n, p) for n, p in net.named_parameters() if n.startswith("reference_net.")]
    with torch.enable_grad():
        refs = net.references(torch.zeros(1, cfg.latent_channels, side, side))
        total = torch.stack([v.sum() for v in refs.attention.values()]).sum()
        grads = torch.autograd.grad(total, [p for _, p in named], allow_unused=True)
    return {n for (n, _), g in zip(named, grads, strict=True) if g is None}


class _StageSolver(Solver):
    """What the three stages share: the frozen VAE, the schedule, the batches and the freezing."""

    stage: ClassVar[str]
    train_config_class: ClassVar[type[TrainConfig]] = EMOTrainConfig

    def __init__(self, sampler: VideoSampler, vae: LatentVAE, train_config: EMOTrainConfig,
                 schedule: ScheduleConfig = SCHEDULE) -> None:
        self.sampler = sampler
        self.vae = vae.eval().requires_grad_(False)
        self.train_config = train_config
        self.schedule = schedule
        self.size = vae.image_size

    def freeze(self, net: EMONetwork, exclude: set[str] | frozenset[str] = frozenset()) -> EMONetwork:
        net.train_only(TRAINS[self.stage], exclude)
        return net.train()

    def optimizer(self, model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
        return torch.optim.Adam(trainable_parameters(model), lr=config.lr)

    def wrap(self, model: nn.Module) -> nn.Module:
        assert isinstance(model, EMONetwork)
        return _EMOStep(model, self.vae, self.stage, self.schedule)

    def to_device(self, device: torch.device) -> None:
        self.vae.to(device)

    def regions(self, boxes: np.ndarray) -> torch.Tensor:
        """Face regions ``[B, 4]`` in dataset crop pixels -> masks ``[B, 1, S, S]`` at the VAE's image size."""
        return region_masks(np.asarray(boxes, np.float32) * (self.size / self.sampler.size), self.size)

    def timesteps(self, batch_size: int) -> torch.Tensor:
        return sample_timesteps(batch_size, self.schedule.num_train_timesteps)


class ImageSolver(_StageSolver):
    """``emo.image``: stage 1 (see the module docstring)."""

    component: ClassVar[str] = "emo.image"
    stage: ClassVar[str] = "image"

    def __init__(self, sampler: VideoSampler, vae: LatentVAE, config: EMOConfig, train_config: EMOTrainConfig,
                 unet: str | Path | None = None) -> None:
        super().__init__(sampler, vae, train_config)
        self.sd_state = None
        unet_config = config.unet
        if unet is not None:
            unet_config, self.sd_state = unet_from_diffusers(unet)
        vae_config: LatentVAEConfig = vae.config  # type: ignore[assignment]
        if unet_config.latent_channels != vae_config.latent_channels:
            raise TalkingHeadError(f"The UNet reads {unet_config.latent_channels} latent channels and the VAE makes "
                                   f"{vae_config.latent_channels}.")
        self.model_config = config.replace(
            unet=unet_config.replace(sample_size=vae_config.latent_size), image_size=vae.image_size,
            vae_factor=vae.factor, audio=config.audio.replace(input_dim=max(1, sampler.feature_dim)))
        self.audio_features = audio_spec(sampler)

    def build_model(self) -> EMONetwork:
        net = EMONetwork(self.model_config, self.audio_features)
        if self.sd_state is not None:
            net.load_stable_diffusion(self.sd_state)
        return self.freeze(net, unread_reference_parameters(net))

    def make_batch(self, rng: np.random.Generator, batch_size: int) -> dict[str, torch.Tensor]:
        pairs = self.sampler.pairs(rng, batch_size)
        return {"target": frames_to_tensor(pairs.target, self.size),
                "reference": frames_to_tensor(pairs.reference, self.size),
                "region": self.regions(pairs.box), "t": self.timesteps(batch_size)}


class VideoSolver(_StageSolver):
    """``emo.video``: stage 2 (see the module docstring)."""

    component: ClassVar[str] = "emo.video"
    stage: ClassVar[str] = "video"

    def __init__(self, sampler: VideoSampler, vae: LatentVAE, init: str | Path, train_config: EMOTrainConfig,
                 motion_module: str | Path | None = None) -> None:
        super().__init__(sampler, vae, train_config)
        self.motion_module = motion_module
        if sampler.feature_dim == 0:
            raise TalkingHeadError("EMO's video stages need audio features in the video dataset.")
        self.init = Path(init)
        self.audio_features = audio_spec(sampler)
        probe = self.load()
        self.model_config = probe.emo_config
        if self.model_config.image_size != vae.image_size:
            raise TalkingHeadError(f"{init} was trained on {self.model_config.image_size} px frames and the VAE makes "
                                   f"{vae.image_size} px ones; use the VAE it was trained with.")

    def load(self) -> EMONetwork:
        return EMONetwork.from_stage(self.init, self.audio_features, self.sampler.feature_dim, self.motion_module)

    def build_model(self) -> EMONetwork:
        net = self.load()
        net.audio.norm.set_stats(*audio_stats(self.sampler))
        return self.freeze(net)

    def make_batch(self, rng: np.random.Generator, batch_size: int) -> dict[str, torch.Tensor]:
        cfg = self.model_config
        w = self.sampler.windows(rng, batch_size, cfg.motion_frames, cfg.frames, cfg.context, audio=True)
        return {"frames": frames_to_tensor(w.frames, self.size), "reference": frames_to_tensor(w.reference, self.size),
                "audio": torch.from_numpy(w.audio_features.astype(np.float32)),
                "speed": torch.from_numpy(w.speed_window.astype(np.float32)), "region": self.regions(w.region),
                "keep": torch.from_numpy(rng.random(batch_size) >= self.train_config.motion_drop),
                "t": self.timesteps(batch_size)}


class SpeedSolver(VideoSolver):
    """``emo.speed``: stage 3 (see the module docstring); the audio statistics stay stage 2's."""

    component: ClassVar[str] = "emo.speed"
    stage: ClassVar[str] = "speed"

    def build_model(self) -> EMONetwork:
        return self.freeze(self.load())


# ------------------------------------------------------------------------------------------------- builders

def _train_config(preset: str, stage: str, overrides: dict[str, Any] | None) -> EMOTrainConfig:
    paper_batch = {"batch_size": 48} if preset == "paper" and stage in ("vae", "image") else {}
    return EMOTrainConfig.preset(preset, **{**paper_batch, **(overrides or {})})


def _vae(vae: str | Path | None, what: str) -> LatentVAE:
    if vae is None:
        raise TalkingHeadError(f"EMO's {what} learns in a VAE's latents: pass --vae DIR (talkinghead train emo.vae, "
                               "or a Stable Diffusion VAE folder).")
    return LatentVAE.load(vae)


def _init(init: str | Path | None, previous: str) -> Path:
    if init is None:
        raise TalkingHeadError(f"This stage starts from the previous one: pass --init DIR (talkinghead train "
                               f"{previous}).")
    return Path(init)


def build_vae(data: str | Path, preset: str, *, features: tuple[str, ...] = (),
              train_overrides: dict[str, Any] | None = None, real: str | Path | None = None,
              perceptual: str | Path | None = None, vae: str | Path | None = None,
              decoder_only: str | Path | None = None, augment: bool = False,
              init: str | Path | None = None) -> SolverBuild:
    """The registry's builder of ``emo.vae``."""
    config = _train_config(preset, "vae", train_overrides)
    sampler = training_sampler(data, real, features)
    net = None if perceptual is None else load_perceptual(perceptual)
    solver = VAESolver(sampler, LatentVAEConfig.preset(preset), config, net, vae, decoder_only, augment, init)
    kl_weight = 0.0 if decoder_only else config.kl_weight
    extra = {**dataset_extra(sampler), "perceptual": str(perceptual) if perceptual else None,
             "vae": str(vae) if vae else None, "decoder_only": str(decoder_only) if decoder_only else None,
             "augment": augment, "init": str(init) if init else None,
             "losses": {"kl_weight": kl_weight, "perceptual_weight": config.perceptual_weight}}
    return SolverBuild(solver, config, extra)


def build_image(data: str | Path, preset: str, *, features: tuple[str, ...] = (),
                train_overrides: dict[str, Any] | None = None, real: str | Path | None = None,
                vae: str | Path | None = None, unet: str | Path | None = None) -> SolverBuild:
    """The registry's builder of ``emo.image`` (stage 1)."""
    config = _train_config(preset, "image", train_overrides)
    sampler = training_sampler(data, real, features)
    solver = ImageSolver(sampler, _vae(vae, "image stage"), EMOConfig.preset(preset), config, unet)
    extra = {**dataset_extra(sampler), "stage": "image", "vae": str(vae), "unet": str(unet) if unet else None}
    return SolverBuild(solver, config, extra)


def _build_video(cls: type[VideoSolver], previous: str, data: str | Path, preset: str, features: tuple[str, ...],
                 train_overrides: dict[str, Any] | None, real: str | Path | None, vae: str | Path | None,
                 init: str | Path | None, motion_module: str | Path | None = None) -> SolverBuild:
    config = _train_config(preset, cls.stage, train_overrides)
    sampler = training_sampler(data, real, features)
    solver = cls(sampler, _vae(vae, f"{cls.stage} stage"), _init(init, previous), config, motion_module)
    extra = {**dataset_extra(sampler), "stage": cls.stage, "vae": str(vae), "init": str(init),
             "motion_drop": config.motion_drop, "motion_module": str(motion_module) if motion_module else None}
    return SolverBuild(solver, config, extra)


def build_video(data: str | Path, preset: str, *, features: tuple[str, ...] = (),
                train_overrides: dict[str, Any] | None = None, real: str | Path | None = None,
                vae: str | Path | None = None, init: str | Path | None = None,
                motion_module: str | Path | None = None) -> SolverBuild:
    """The registry's builder of ``emo.video`` (stage 2; ``motion_module``: AnimateDiff's weights to start the
    temporal modules from)."""
    return _build_video(VideoSolver, "emo.image", data, preset, features, train_overrides, real, vae, init,
                        motion_module)


def build_speed(data: str | Path, preset: str, *, features: tuple[str, ...] = (),
                train_overrides: dict[str, Any] | None = None, real: str | Path | None = None,
                vae: str | Path | None = None, init: str | Path | None = None) -> SolverBuild:
    """The registry's builder of ``emo.speed`` (stage 3)."""
    return _build_video(SpeedSolver, "emo.video", data, preset, features, train_overrides, real, vae, init)

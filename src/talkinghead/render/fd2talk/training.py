"""Solvers of FD2Talk's second stage (3.4.2 "Frame Generation Stage") on the talking-face video dataset.

Three components, trained in this order, each reading the one before:

- ``fd2talk.perceptual``: the perceptual network trained here (:class:`.perceptual.FacePerceptualNet`; with VGG16
  weights in a local folder it is not needed). Each step draws frame pairs and learns, on both frames, the frame's
  standardised expression and pose (MSE) and its identity (cross-entropy).
- ``fd2talk.autoencoder``: ``E`` and ``D`` (:class:`.autoencoder.FrameAutoencoder`) on two frames ``F_1, F_2`` of one
  video (Eq. 13-15): ``lambda_rec ||F_2 - D([E(F_1), E(F_2)])||^2 + lambda_per L_per`` plus, trained from scratch, the
  KL term (see :mod:`.autoencoder`). ``E(F_2)`` is a posterior sample, ``E(F_1)`` the posterior mean (as at
  inference). ``--vae DIR`` starts from a Stable Diffusion VAE in a local folder, as the paper does. The exported
  model's ``latent_scale`` is one over the standard deviation of its latents on a fixed set of training frames.
  ``--decoder-only DIR`` fine-tunes only the decoder side (``post_quant_conv`` and ``D``) of an autoencoder trained
  here with Eq. 13-15 (no KL term): encoder, latent space and ``latent_scale`` are kept, so a UNet trained on DIR's
  latents stays valid (the paper fine-tunes both halves of SD's VAE before training its UNet).
  ``--adversarial-percent P`` adds LDM's patch-adversarial term (:mod:`talkinghead.nn.adversarial`; hinge loss,
  adaptive weight times ``P / 100``, the generator term after ``adversarial_warmup`` steps of the discriminator
  alone). Not in the paper's Eq. 15: its SD VAE was already trained with that term, which the autoencoder trained
  here from scratch lacks (it decodes blurred faces without it). The discriminator is trained with the decoder by the
  same optimiser and is not saved: a resumed run starts it afresh.
- ``fd2talk.unet``: the Diffusion UNet (:class:`.unet.FrameUNet`) with the frozen autoencoder: a target frame's
  latent ``J_0 = E(V_i)``, the reference latent ``x = E(I)`` of the clip's first frame (the paper: "the first frame
  from this video clip serves as the reference image"), the target's coefficients, ``t ~ U{0, T-1}`` and
  ``L_second = ||J_0 - theta_unet(J_t, t, beta, p, x)||^2`` (Eq. 16). ``--concat-conditions`` trains Table 2's
  "Concat" variant. ``--init DIR`` starts from the UNet in DIR (a fine-tuning; the optimiser starts afresh).

Deviation (optional, ``--mouth-weight W``; 0, the paper's Eq. 16, by default): the squared error is weighted by
``1 + W`` in the mouth region of the target frame (:func:`mouth_region`: a box in the lower middle of the target's
face box, in latent cells) and ``1`` elsewhere, normalised by the mean weight. The mouth is a few percent of a
frame, so under the plain loss the UNet gains little by drawing the mouth the coefficients ask for and, given the
reference latent, keeps the reference's mouth (measured: ``scripts/probe_frame_mouth.py``). Region-weighted
reconstruction losses on the mouth are common in talking-head renderers; the paper has none.

Deviation (optional, ``--augment``; off by default): each pair's appearance is changed at random
(:mod:`talkinghead.data.video.appearance`; one transform for the target and its reference): colours for the UNet
(its motion fixes the geometry), colours, flips and zooms for the autoencoder (a reconstruction loss). The paper
trains on VFHQ's thousands of people; the shipped set has ten training identities, and without it the autoencoder
blurs faces it never saw.

Deviation (optional, ``--any-reference``; off by default): the reference is a random other frame of the clip
instead of its first. A clip's first frame mostly shows the mouth at rest, so a UNet trained on first frames only
meets a reference with an open mouth (a portrait photographed mid-word) at inference only, and keeps that mouth.

Deviation (coefficients): the paper conditions the UNet on the stage-1 DiTs' *predicted* coefficients of the clip's
audio. A DiT's head pose (and, less so, its expression) is a sample given the audio, not the pose the target frame
shows, so a UNet trained on it learns to ignore the pose it is given. Here it is trained on the dataset's motion
(the motion the corpus frames were rendered from; tracked on real videos), the motion of the frame it must draw;
at inference it renders whatever a motion generator predicts (FD2Talk's DiTs, or any other with
``--renderer fd2talk``).

Data: one or more video datasets (``--data`` and ``--real``, e.g. the rendered corpus and prepared real videos,
which have no audio: the paper trains this stage on VFHQ without audio too), the train split; the last clip of
each real video is held out (:func:`held_out_clips`) for the self-reenactment test.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from talkinghead.data.video.appearance import augment_pairs
from talkinghead.data.video.format import VideoDataset
from talkinghead.data.video.frames import box_mask
from talkinghead.data.video.loader import VideoSampler
from talkinghead.diffusion import ScheduleConfig, add_noise, make_scheduler, sample_timesteps
from talkinghead.errors import TalkingHeadError
from talkinghead.nn.adversarial import DiscriminatorConfig, PatchDiscriminator, adaptive_weight, hinge_losses
from talkinghead.nn.latent import check_one_start, fine_tuning_copy, trainable_parameters
from talkinghead.render.fd2talk.autoencoder import AutoencoderConfig, FrameAutoencoder
from talkinghead.render.fd2talk.perceptual import (
    FacePerceptualNet,
    PerceptualConfig,
    images_to_tensor,
    load_perceptual,
    perceptual_distance,
)
from talkinghead.render.fd2talk.unet import FrameUNet, UNetConfig
from talkinghead.training.loop import Solver, TrainConfig
from talkinghead.training.registry import SolverBuild


@dataclass(frozen=True)
class FrameTrainConfig(TrainConfig):
    """The shared loop's settings plus Eq. 15's weights, the KL weight (autoencoder from scratch), the
    adversarial term's weight and warm-up (steps in which only the discriminator learns; 0: off, the paper's Eq. 15)
    and the UNet's extra weight on the mouth region (0: off, the paper's Eq. 16)."""

    lambda_rec: float = 1.0
    lambda_per: float = 1.0
    kl_weight: float = 1e-6
    adversarial_weight: float = 0.0
    adversarial_warmup: int = 500
    mouth_weight: float = 0.0

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {**TrainConfig.presets["tiny"], "batch_size": 4},
        "cpu": {**TrainConfig.presets["cpu"], "steps": 1000, "batch_size": 8, "lr": 3e-4},
        "paper": {"batch_size": 32},
    }


def _datasets(data: str | Path, real: str | Path | None) -> list[str | Path | VideoDataset]:
    given: list[str | Path | VideoDataset] = [data]
    return given + ([real] if real is not None else [])


def held_out_clips(dataset: str | Path | VideoDataset) -> list[str]:
    """The last clip of each source video of a prepared real-video dataset (its ``portrait`` field names the video):
    never trained on, kept for self-reenactment (issue 15, item 6). A video cut into one clip keeps it."""
    ds = dataset if isinstance(dataset, VideoDataset) else VideoDataset(dataset)
    last: dict[str, str] = {}
    count: dict[str, int] = {}
    for clip_id in sorted(ds.ids(None)):
        video = ds.meta(clip_id).portrait
        last[video] = clip_id
        count[video] = count.get(video, 0) + 1
    return sorted(c for v, c in last.items() if count[v] > 1)


def training_sampler(data: str | Path, real: str | Path | None) -> VideoSampler:
    """The train split of ``data`` and of ``real`` less its held-out clips (:func:`held_out_clips`)."""
    exclude = held_out_clips(real) if real is not None else []
    return VideoSampler(_datasets(data, real), "train", features=(), exclude=exclude)


def frame_motion(sampler: VideoSampler) -> np.ndarray:
    """Every train frame's ``[expression, pose]`` ``[N, E + 6]`` (for statistics)."""
    return np.concatenate([np.concatenate([lab.expression, lab.pose], axis=1) for lab in sampler.labels])


def motion_stats(sampler: VideoSampler) -> tuple[torch.Tensor, torch.Tensor]:
    values = frame_motion(sampler)
    return torch.from_numpy(values.mean(0)), torch.from_numpy(values.std(0))


def _check_image_size(sampler: VideoSampler, size: int, what: str) -> None:
    if sampler.size != size:
        raise TalkingHeadError(f"The {what} was trained on {size} px frames and the video dataset has {sampler.size} "
                               "px crops; train the UNet on crops of its autoencoder's size.")


# ----------------------------------------------------------------------------------------------- perceptual

class _PerceptualStep(nn.Module):
    def __init__(self, net: FacePerceptualNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        targets, logits = self.net(batch["images"])
        regress = F.mse_loss(targets, self.net.target_norm(batch["targets"]))
        identity = F.cross_entropy(logits, batch["identity"])
        accuracy = (logits.argmax(-1) == batch["identity"]).float().mean()
        loss = regress + identity
        return loss, {"loss": loss.detach(), "regress": regress.detach(), "identity": identity.detach(),
                      "identity_acc": accuracy}


class PerceptualSolver(Solver):
    component: ClassVar[str] = "fd2talk.perceptual"
    train_config_class: ClassVar[type[TrainConfig]] = FrameTrainConfig

    def __init__(self, sampler: VideoSampler, config: PerceptualConfig) -> None:
        self.sampler = sampler
        self.identities = sorted({lab.meta.identity for lab in sampler.labels})
        dim = frame_motion(sampler).shape[1]
        self.model_config = config.replace(targets=dim, identities=len(self.identities))

    def build_model(self) -> FacePerceptualNet:
        net = FacePerceptualNet(self.model_config)
        net.target_norm.set_stats(*motion_stats(self.sampler))
        return net

    def wrap(self, model: nn.Module) -> nn.Module:
        assert isinstance(model, FacePerceptualNet)
        return _PerceptualStep(model)

    def make_batch(self, rng: np.random.Generator, batch_size: int) -> dict[str, torch.Tensor]:
        pairs = self.sampler.pairs(rng, (batch_size + 1) // 2)
        images = np.concatenate([pairs.target, pairs.reference])[:batch_size]
        targets = np.concatenate([np.concatenate([pairs.expression, pairs.pose], 1),
                                  np.concatenate([pairs.ref_expression, pairs.ref_pose], 1)])[:batch_size]
        index = {name: i for i, name in enumerate(self.identities)}
        identity = [index[n] for n in pairs.identities * 2][:batch_size]
        return {"images": images_to_tensor(images), "targets": torch.from_numpy(targets.astype(np.float32)),
                "identity": torch.tensor(identity)}


# ---------------------------------------------------------------------------------------------- autoencoder

class _AutoencoderStep(nn.Module):
    def __init__(self, model: FrameAutoencoder, perceptual: nn.Module, config: FrameTrainConfig,
                 decoder_only: bool = False, discriminator: PatchDiscriminator | None = None) -> None:
        super().__init__()
        self.model = model
        self._perceptual = [perceptual]  # frozen helper: not trained, not saved
        self.config = config
        self.decoder_only = decoder_only
        self.discriminator = discriminator  # trained with the decoder, not saved with it
        self.steps_seen = 0                  # training steps taken through this module (for the warm-up)

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        cfg = self.config
        f1, f2 = batch["reference"], batch["target"]
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.decoder_only):
            reference = self.model.posterior(f1).mode()                    # E(F_1), [B, d, h, w]
            posterior = self.model.posterior(f2)
            latent = posterior.sample()                                     # E(F_2)
        decoded = self.model.decode_raw(reference, latent)                  # D([E(F_1), E(F_2)])
        rec = F.mse_loss(decoded, f2)                                       # Eq. 13
        per = perceptual_distance(self._perceptual[0], decoded, f2).mean()  # Eq. 14
        nll = cfg.lambda_rec * rec + cfg.lambda_per * per                   # Eq. 15
        loss = nll
        psnr = 10 * torch.log10(4.0 / rec.detach().clamp_min(1e-10))
        metrics = {"rec": rec.detach(), "per": per.detach(), "psnr": psnr}
        if not self.decoder_only:                                           # from scratch: + KL
            kl = posterior.kl().mean() / decoded[0].numel()
            loss = loss + cfg.kl_weight * kl
            metrics["kl"] = kl.detach()
        if self.discriminator is not None:                                  # LDM's patch-adversarial term
            d_loss, g_loss = hinge_losses(self.discriminator, f2, decoded)
            on = torch.is_grad_enabled() and self.steps_seen >= cfg.adversarial_warmup
            weight = adaptive_weight(nll, g_loss, self.model.vae.decoder.conv_out.weight) if on else torch.zeros(())
            loss = loss + d_loss + cfg.adversarial_weight * weight * g_loss
            metrics.update(d_loss=d_loss.detach(), g_loss=g_loss.detach(), adv_weight=weight)
            if torch.is_grad_enabled():
                self.steps_seen += 1
        return loss, {"loss": loss.detach(), **metrics}


class AutoencoderSolver(Solver):
    component: ClassVar[str] = "fd2talk.autoencoder"
    train_config_class: ClassVar[type[TrainConfig]] = FrameTrainConfig

    def __init__(self, sampler: VideoSampler, config: AutoencoderConfig, train_config: FrameTrainConfig,
                 perceptual: nn.Module, vae: str | Path | None = None,
                 decoder_only: str | Path | None = None, discriminator: DiscriminatorConfig | None = None,
                 augment: bool = False, init: str | Path | None = None) -> None:
        check_one_start(vae, decoder_only, init, "an autoencoder")
        self.sampler = sampler
        self.vae = vae
        self.decoder_only = decoder_only
        self.augment = augment
        trained = decoder_only if decoder_only is not None else init
        # a fine-tuning's starting autoencoder, loaded once: its shape and the model
        self.started = None if trained is None else FrameAutoencoder.from_pretrained(trained)
        if self.started is not None:
            self.model_config = self.started.config
        else:
            self.model_config = config.replace(image_size=sampler.size) if vae is None else \
                FrameAutoencoder.from_diffusers(vae).config
        self.train_config = train_config
        self.perceptual = perceptual.eval().requires_grad_(False)
        self.discriminator = None if discriminator is None or train_config.adversarial_weight <= 0 else \
            PatchDiscriminator(discriminator)
        held = sampler.pairs(np.random.default_rng(12345), 64)
        self._scale_frames = images_to_tensor(np.concatenate([held.target, held.reference]))

    def build_model(self) -> FrameAutoencoder:
        if self.started is not None:                       # --init: both halves learn (a new latent space)
            return fine_tuning_copy(self.started, decoder_only=self.decoder_only is not None)
        return FrameAutoencoder.from_diffusers(self.vae) if self.vae is not None else \
            FrameAutoencoder(self.model_config)  # type: ignore[arg-type]

    def optimizer(self, model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
        groups: list[dict[str, Any]] = [{"params": trainable_parameters(model)}]
        if self.discriminator is not None:  # LDM's discriminator betas
            groups.append({"params": list(self.discriminator.parameters()), "betas": (0.5, 0.9)})
        return torch.optim.Adam(groups, lr=config.lr)

    def wrap(self, model: nn.Module) -> nn.Module:
        assert isinstance(model, FrameAutoencoder)
        return _AutoencoderStep(model, self.perceptual, self.train_config, self.decoder_only is not None,
                                self.discriminator)

    def to_device(self, device: torch.device) -> None:
        self.perceptual.to(device)
        if self.discriminator is not None:
            self.discriminator.to(device)

    def make_batch(self, rng: np.random.Generator, batch_size: int) -> dict[str, torch.Tensor]:
        pairs = self.sampler.pairs(rng, batch_size)
        target, reference = pairs.target, pairs.reference
        if self.augment:                                   # appearance and geometry (a reconstruction loss)
            target, reference = augment_pairs(rng, [target, reference], geometric=True)
        return {"target": images_to_tensor(target), "reference": images_to_tensor(reference)}

    def export(self, model: nn.Module, out: Path, extra: dict[str, Any]) -> None:
        assert isinstance(model, FrameAutoencoder)
        if self.vae is None and self.decoder_only is None:  # trained here: unit-variance latents for the UNet
            with torch.no_grad():
                model.latent_scale.fill_(1.0)
                std = float(model.posterior(self._scale_frames).mode().std())
            model.latent_scale.fill_(1.0 / max(std, 1e-6))
        model.save_pretrained(out, extra=dict(extra, latent_scale=float(model.latent_scale)))


# ---------------------------------------------------------------------------------------------------- UNet

#: the mouth region as fractions of the face box (x0, y0, x1, y1): the face mesh's box runs from the forehead to the
#: chin, and the lips lie in its lower middle (checked on corpus and real-video frames)
MOUTH_IN_FACE_BOX = (0.25, 0.62, 0.75, 0.97)


def mouth_region(boxes: np.ndarray, image_size: int, latent_size: int) -> np.ndarray:
    """Masks ``[B, 1, h, h]`` float32 (1 in the mouth region, else 0) for face boxes ``[B, 4]`` (x0, y0, x1, y1 in
    crop pixels of an ``image_size`` crop), on the ``latent_size`` grid: a cell is in when its centre is."""
    b = np.asarray(boxes, np.float64)
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    fx0, fy0, fx1, fy1 = MOUTH_IN_FACE_BOX
    region = np.stack([b[:, 0] + fx0 * w, b[:, 1] + fy0 * h, b[:, 0] + fx1 * w, b[:, 1] + fy1 * h], 1)
    cells = region * latent_size / image_size - 0.5      # cell i's centre (i + 0.5) * f in box_mask's index units
    return np.stack([box_mask(r, latent_size) for r in cells])[:, None]


class _UNetStep(nn.Module):
    def __init__(self, net: FrameUNet, autoencoder: FrameAutoencoder, schedule: ScheduleConfig,
                 mouth_weight: float = 0.0) -> None:
        super().__init__()
        self.net = net
        self._autoencoder = [autoencoder]
        self.scheduler = make_scheduler(schedule, "ddpm")
        self.mouth_weight = mouth_weight

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        with torch.no_grad():
            ae = self._autoencoder[0]
            j0 = ae.encode(batch["target"])                                 # J_0 [B, d, h, w]
            x = ae.encode(batch["reference"])                               # x
        jt = add_noise(self.scheduler, j0, torch.randn_like(j0), batch["t"])
        pred = self.net(jt, batch["t"], batch["motion"], x)                  # J~_0
        error = (pred - j0).pow(2)
        plain = error.mean()                                                # Eq. 16
        mouth = batch["mouth"]                                              # [B, 1, h, w]
        in_mouth = (error * mouth).sum() / (mouth.sum() * error.shape[1]).clamp_min(1.0)
        metrics = {"plain": plain.detach(), "mouth": in_mouth.detach()}
        if self.mouth_weight > 0:                                           # the mouth-weighted deviation
            weight = 1.0 + self.mouth_weight * mouth
            loss = (error * weight).mean() / weight.mean()
        else:
            loss = plain
        return loss, {"loss": loss.detach(), **metrics}


class UNetSolver(Solver):
    component: ClassVar[str] = "fd2talk.unet"
    train_config_class: ClassVar[type[TrainConfig]] = FrameTrainConfig

    def __init__(self, sampler: VideoSampler, config: UNetConfig, train_config: FrameTrainConfig,
                 autoencoder: FrameAutoencoder, schedule: ScheduleConfig | None = None,
                 init: str | Path | None = None, augment: bool = False, any_reference: bool = False) -> None:
        self.sampler = sampler
        self.train_config = train_config
        self.augment = augment
        self.any_reference = any_reference
        self.autoencoder = autoencoder.eval().requires_grad_(False)
        ae_config: AutoencoderConfig = autoencoder.config  # type: ignore[assignment]
        _check_image_size(sampler, ae_config.image_size, "autoencoder")
        self.schedule = schedule or ScheduleConfig()
        if self.schedule.prediction_type != "sample":
            raise TalkingHeadError("FD2Talk's UNet predicts the clean latent (Eq. 16); the schedule needs "
                                   "prediction_type 'sample'.")
        self.model_config = config.replace(latent_channels=ae_config.latent_channels,
                                           latent_size=ae_config.image_size // autoencoder.factor,
                                           motion_dim=frame_motion(sampler).shape[1])
        self.layout = sampler.dataset.info.layout.to_dict()
        self.started = None if init is None else FrameUNet.from_pretrained(init)  # a fine-tuning's starting UNet
        if self.started is not None and self.started.config != self.model_config:
            raise TalkingHeadError(f"The UNet in {init} has another shape than this preset and dataset give; "
                                   "fine-tune it with the preset and options it was trained with.")

    def build_model(self) -> FrameUNet:
        if self.started is not None:                        # a fine-tuning: its weights and motion statistics,
            return copy.deepcopy(self.started).train()      # a fresh copy per call (see fine_tuning_copy)
        net = FrameUNet(self.model_config, layout=self.layout)
        net.motion_norm.set_stats(*motion_stats(self.sampler))
        return net

    def wrap(self, model: nn.Module) -> nn.Module:
        assert isinstance(model, FrameUNet)
        return _UNetStep(model, self.autoencoder, self.schedule, self.train_config.mouth_weight)

    def to_device(self, device: torch.device) -> None:
        self.autoencoder.to(device)

    def make_batch(self, rng: np.random.Generator, batch_size: int) -> dict[str, torch.Tensor]:
        pairs = self.sampler.pairs(rng, batch_size, first_reference=not self.any_reference)
        motion = np.concatenate([pairs.expression, pairs.pose], axis=1).astype(np.float32)
        cfg = self.model_config
        mouth = mouth_region(pairs.box, self.sampler.size, cfg.latent_size)  # type: ignore[attr-defined]
        target, reference = pairs.target, pairs.reference
        if self.augment:                                   # colour only: the motion fixes the geometry
            target, reference = augment_pairs(rng, [target, reference])
        return {"target": images_to_tensor(target), "reference": images_to_tensor(reference),
                "motion": torch.from_numpy(motion), "mouth": torch.from_numpy(mouth),
                "t": sample_timesteps(batch_size, self.schedule.num_train_timesteps)}


# ------------------------------------------------------------------------------------------------- builders

def build_perceptual(data: str | Path, preset: str, *, features: tuple[str, ...] = (),
                     train_overrides: dict[str, Any] | None = None, real: str | Path | None = None) -> SolverBuild:
    """The registry's builder of ``fd2talk.perceptual``."""
    config = FrameTrainConfig.preset(preset, **(train_overrides or {}))
    sampler = training_sampler(data, real)
    solver = PerceptualSolver(sampler, PerceptualConfig.preset(preset))
    extra = {"identities": solver.identities, "data": [str(d) for d in _datasets(data, real)],
             "name": "perceptual network trained here (not VGG/LPIPS)"}
    return SolverBuild(solver, config, extra)


def build_autoencoder(data: str | Path, preset: str, *, features: tuple[str, ...] = (),
                      train_overrides: dict[str, Any] | None = None, real: str | Path | None = None,
                      perceptual: str | Path | None = None, vae: str | Path | None = None,
                      decoder_only: str | Path | None = None, adversarial_percent: int | None = None,
                      augment: bool = False, init: str | Path | None = None) -> SolverBuild:
    """The registry's builder of ``fd2talk.autoencoder``; ``adversarial_percent``: the adversarial term's weight in
    percent (see the module docstring)."""
    if perceptual is None:
        raise TalkingHeadError("The autoencoder's perceptual loss needs --perceptual DIR (talkinghead train "
                               "fd2talk.perceptual, or VGG16 weights in a local folder).")
    config = FrameTrainConfig.preset(preset, **(train_overrides or {}))
    if adversarial_percent:
        config = config.replace(adversarial_weight=adversarial_percent / 100)
    sampler = training_sampler(data, real)
    solver = AutoencoderSolver(sampler, AutoencoderConfig.preset(preset), config, load_perceptual(perceptual), vae,
                               decoder_only, DiscriminatorConfig.preset(preset), augment=augment, init=init)
    extra = {"perceptual": str(perceptual), "vae": str(vae) if vae else None,
             "decoder_only": str(decoder_only) if decoder_only else None, "augment": augment,
             "init": str(init) if init else None,
             "data": [str(d) for d in _datasets(data, real)],
             "losses": {"lambda_rec": config.lambda_rec, "lambda_per": config.lambda_per,
                        "kl_weight": 0.0 if decoder_only else config.kl_weight,
                        "adversarial_weight": config.adversarial_weight,
                        "adversarial_warmup": config.adversarial_warmup}}
    return SolverBuild(solver, config, extra)


def build_unet(data: str | Path, preset: str, *, features: tuple[str, ...] = (),
               train_overrides: dict[str, Any] | None = None, real: str | Path | None = None,
               autoencoder: str | Path | None = None, concat_conditions: bool = False,
               reference_input: bool = False, mouth_weight: int | None = None,
               init: str | Path | None = None, augment: bool = False, any_reference: bool = False) -> SolverBuild:
    """The registry's builder of ``fd2talk.unet``; ``mouth_weight``: the loss's extra weight on the mouth region
    (see the module docstring), ``init``: a trained UNet to start from."""
    if autoencoder is None:
        raise TalkingHeadError("The UNet learns in the latent space of a trained autoencoder: pass --autoencoder DIR "
                               "(talkinghead train fd2talk.autoencoder).")
    config = FrameTrainConfig.preset(preset, **(train_overrides or {}))
    if mouth_weight:
        config = config.replace(mouth_weight=float(mouth_weight))
    sampler = training_sampler(data, real)
    ae = FrameAutoencoder.from_pretrained(autoencoder)
    conditioning = "concatenated" if concat_conditions else "two_cross_attention"
    solver = UNetSolver(sampler, UNetConfig.preset(preset, conditioning=conditioning,
                                                   reference_input=reference_input), config, ae,
                        init=init, augment=augment, any_reference=any_reference)
    extra = {"autoencoder": str(autoencoder), "data": [str(d) for d in _datasets(data, real)],
             "mouth_weight": config.mouth_weight, "init": str(init) if init else None, "augment": augment,
             "reference": "any frame of the clip" if any_reference else "the clip's first frame",
             "crop_scale": float(sampler.dataset.info.crop_scale), "image_size": int(sampler.size),
             "coefficients": "dataset motion (see the solver's docstring)",
             "variant": [n for n, on in (("concat_conditions", concat_conditions),
                                         ("reference_input", reference_input)) if on]}
    return SolverBuild(solver, config, extra)

"""DICE-Talk's diffusion model trained on the talking-face video dataset (Sec. 3.2-3.3, 4.1): ``dice.video``.

"The training of the diffusion model consists of only one stage" (4.1): every part of :class:`.network.DICENetwork`
(the UNet with its reference, audio and emotion attention, the emotion bank, the discriminator) trains together on
Eq. 15; the VAE (``--vae``: EMO's, ``talkinghead train emo.vae``, or a Stable Diffusion VAE folder) and the emotion
embedder (``--embedder``: ``talkinghead train dice.embedder``, trained first on the motion corpus, Sec. 3.1) are
frozen helpers, neither trained nor saved. ``--unet DIR`` starts the UNet from Stable Video Diffusion's weights in a
local folder (the paper: stable-video-diffusion-img2vid-xt-1-1); without it the UNet starts from scratch.

A sample (:meth:`DICESolver.make_batch`, windows of :class:`talkinghead.data.video.loader.VideoSampler`):

- ``F`` contiguous frames of a clip (their VAE latents are the target) and a reference frame of the same clip outside
  the window (SVD's conditioning image); each frame's ``2m + 1`` audio feature frames;
- the **emotion reference**: a window of up to ``prior_frames`` frames (expression and the embedder's audio features)
  of **the same clip**, drawn independently of the target window. This is the paper's choice, Sec. 4.5: "the emotion
  prior obtained by the model from the same training video varies each time", which is what Eq. 6's sampling is for;
  the prior (its sample, not its mean) carries the clip's emotion without pinning the exact content. The variant
  ``--prior-from partner`` (not in the paper) takes the window from a clip with the same emotion and another identity
  (:meth:`VideoSampler.emotion_partners`, the clip itself when there is none), as at inference, where the reference
  is another person's video or a prompt;
- the emotion label (the index of the clip's emotion among the embedder's emotions, the discriminator's classes).

**The reference image's emotion** (``--reference-from``, not in the paper): a frame of the same clip (``clip``, the
paper's SVD-style conditioning) shows the clip's emotion already, so the UNet can copy the expression from the image
and leave the emotion condition unused. That is what the shipped model did after 500 steps: a happy and an angry
prompt on the same portrait differed by 2.2 grey levels (docs/dice.md). ``identity`` takes the reference image of a
labelled clip from a random other clip of the same identity (any emotion; the video corpus has 7-16 clips of each
emotion per identity), so the expression of the target can only come from the emotion condition, as at inference,
where the reference is the user's photo with whatever expression it has. Real clips keep their own frame.

Data mix (4.1: the emotion dataset and regular videos "incorporated into the training process at a 1:1 ratio"):
with ``--real DIR`` each sample comes from the real videos with probability ``real_fraction`` (``paper``: 0.5), less
the last clip of each real video (held out as EMO and FD2Talk hold it out). Real clips have no emotion label: label
``-1`` (left out of ``L_cls``) and their emotion condition dropped; real clips without audio (video-prepare keeps no
audio) drop their audio condition too, so they teach real faces through the reference image only. ``cpu`` uses
``real_fraction = 0.25`` for that reason: a real sample trains no audio or emotion.

The UNet's audio features are ``--features`` (default: every feature of the dataset, EMO's default); its audio
normalisation statistics are set from the train clips with audio. The embedder reads its own features (the names
its checkpoint records), looked up in the same dataset.

The emotion bank's prototypes start at the priors (Eq. 6 samples) of ``K`` random windows of the labelled training
clips (the data-dependent initialisation usual for vector-quantisation codebooks; the paper gives none). Drawn from
``N(0, 1)`` they sit far from the embedder's priors (norms about 19 against 11 for the ``cpu`` embedder), so the
nearest-prototype retrieval of Eq. 9 starts meaningless and ``L_vq`` moves them at the learning rate's pace only.

Choices the paper leaves open, and why: batch 4 and learning rate 1e-4 (``cpu``; ``paper``: 1e-5, Sonic's fine-tuning
rate, batch 4); the reference image is clean (no SVD noise augmentation; the UNet's fixed time ids record SVD's 0.02
level, and the generator feeds a clean reference too, so training and inference agree).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from talkinghead.data.video.loader import VideoSampler
from talkinghead.errors import TalkingHeadError
from talkinghead.nn.latent import LatentVAE, frames_to_tensor
from talkinghead.training.loop import Solver, TrainConfig
from talkinghead.training.registry import SolverBuild
from talkinghead.video.dice.discriminator import NO_LABEL
from talkinghead.video.dice.embedder import EmotionEmbedder
from talkinghead.video.dice.network import DICEConfig, DICENetwork
from talkinghead.video.dice.unet import load_svd_unet

PRIOR_SOURCES = ("clip", "partner")
REFERENCE_SOURCES = ("clip", "identity")


@dataclass(frozen=True)
class DICETrainConfig(TrainConfig):
    """The shared loop's settings plus ``real_fraction`` (share of samples from ``--real``), ``prior_frames`` (the
    emotion reference window), ``prior_from`` (``clip``: the paper; ``partner``: a variant) and ``reference_from``
    (the reference image of a labelled clip: ``clip``, a frame of the clip itself, the paper; ``identity``, a frame of
    another clip of the same identity, a variant)."""

    real_fraction: float = 0.5
    prior_frames: int = 128
    prior_from: str = "clip"
    reference_from: str = "clip"

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {**TrainConfig.presets["tiny"], "batch_size": 2, "prior_frames": 16},
        "cpu": {**TrainConfig.presets["cpu"], "steps": 1500, "batch_size": 4, "lr": 1e-4, "real_fraction": 0.25,
                "prior_frames": 64},
        "paper": {"lr": 1e-5, "batch_size": 4},
    }

    def __post_init__(self) -> None:
        if not 0.0 <= self.real_fraction <= 1.0:
            raise TalkingHeadError(f"The share of real-video samples must lie in [0, 1], got {self.real_fraction}.")
        if self.prior_frames < 1:
            raise TalkingHeadError("The emotion reference needs one frame at least.")
        if self.prior_from not in PRIOR_SOURCES:
            raise TalkingHeadError(f"The emotion reference comes from 'clip' or 'partner', not '{self.prior_from}'.")
        if self.reference_from not in REFERENCE_SOURCES:
            raise TalkingHeadError(f"The reference image comes from 'clip' or 'identity', not '{self.reference_from}'.")


# ------------------------------------------------------------------------------------------------ data

def _columns(sampler: VideoSampler, names: tuple[str, ...]) -> np.ndarray:
    """The columns of ``names`` in the sampler's stacked audio features (in ``names`` order)."""
    kinds: dict[str, int] = dict(sampler.dataset.info.audio_features.get("kinds") or {})
    offsets, at = {}, 0
    for name in sampler.features:
        offsets[name] = at
        at += int(kinds[name])
    return np.concatenate([np.arange(offsets[n], offsets[n] + int(kinds[n])) for n in names]).astype(np.int64)


def audio_spec(sampler: VideoSampler, names: tuple[str, ...]) -> dict[str, Any]:
    """The network checkpoint's ``audio_features`` (the keys the motion models' checkpoints use)."""
    info = sampler.dataset.info
    kinds = dict(info.audio_features.get("kinds") or {})
    return {"names": list(names), "dims": [int(kinds[n]) for n in names], "dataset": info.audio_features,
            "fps": info.fps}


class DICEData:
    """The training clips and how a batch is drawn from them (see the module docstring).

    ``sampler`` holds the clips of ``data`` (source 0: emotion labels) and of ``--real`` (source 1); ``unet_names``:
    the UNet's audio features, ``embedder``: the frozen embedder whose emotions are the classes and whose features
    and layout the emotion reference must have."""

    def __init__(self, sampler: VideoSampler, unet_names: tuple[str, ...], embedder: EmotionEmbedder,
                 config: DICETrainConfig) -> None:
        self.sampler = sampler
        self.config = config
        self.unet_names = unet_names
        emb_names = tuple((embedder.audio_features or {}).get("names") or ())
        self.unet_columns = _columns(sampler, unet_names)
        self.embedder_columns = _columns(sampler, emb_names)
        if len(self.embedder_columns) != embedder.config.audio_dim:
            raise TalkingHeadError(f"The emotion embedder reads {embedder.config.audio_dim} audio features, the "
                                   f"dataset's {', '.join(emb_names)} are {len(self.embedder_columns)} wide.")
        self.emotions = embedder.emotions
        labels = sampler.labels
        self.labelled = np.array([lab.source == 0 for lab in labels])
        self.label = np.array([self.emotions.index(lab.meta.emotion)
                               if lab.source == 0 and lab.meta.emotion in self.emotions else NO_LABEL
                               for lab in labels], np.int64)
        self._same_identity: dict[str, list[int]] = {}
        for k, lab in enumerate(labels):
            if self.labelled[k]:
                self._same_identity.setdefault(lab.meta.identity, []).append(k)

    def audio_stats(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and standard deviation ``[A]`` of the UNet's audio features over the train clips with audio."""
        rows = [lab.features[:, self.unet_columns] for lab in self.sampler.labels if lab.meta.has_audio]
        if not rows:
            raise TalkingHeadError("No training clip has audio, so the audio layers cannot learn.")
        values = np.concatenate(rows)
        return torch.from_numpy(values.mean(0)), torch.from_numpy(values.std(0))

    def pick(self, rng: np.random.Generator, batch: int, frames: int) -> list[int]:
        """``batch`` clip indices: labelled clips with audio weighted by their windows of ``frames``, real ones with
        probability ``real_fraction`` (any real clip long enough)."""
        with_audio = self.sampler.window_weights(frames, audio=True)
        any_clip = self.sampler.window_weights(frames, audio=False)
        labelled = with_audio * self.labelled
        real = any_clip * ~self.labelled
        if labelled.sum() <= 0 and real.sum() <= 0:
            raise TalkingHeadError(f"No training clip has {frames} frames (and audio) for a DICE clip.")
        picks = []
        for _ in range(batch):
            from_real = real.sum() > 0 and (labelled.sum() <= 0 or rng.random() < self.config.real_fraction)
            weights = real if from_real else labelled
            picks.append(int(rng.choice(len(weights), p=weights / weights.sum())))
        return picks

    def reference_clip(self, rng: np.random.Generator, k: int) -> int:
        """The clip whose window is sample ``k``'s emotion reference (``prior_from``)."""
        if self.config.prior_from == "clip" or not self.labelled[k]:
            return k
        partners = [j for j in self.sampler.emotion_partners(k, 1, audio=True) if self.labelled[j]]
        return int(rng.choice(partners)) if partners else k

    def reference_frame_clip(self, rng: np.random.Generator, k: int) -> int:
        """The clip whose frame is sample ``k``'s reference image (``reference_from``): ``k`` itself, or for a
        labelled clip under ``identity`` another labelled clip of the same identity (``k`` when there is none)."""
        if self.config.reference_from == "clip" or not self.labelled[k]:
            return k
        others = self._same_identity.get(self.sampler.labels[k].meta.identity, [])
        others = [j for j in others if j != k]
        return int(rng.choice(others)) if others else k

    def reference_image(self, rng: np.random.Generator, j: int) -> np.ndarray:
        """A random frame ``[S, S, 3]`` uint8 of clip ``j``."""
        return self.sampler.clip_frames(j).read([int(rng.integers(len(self.sampler.labels[j].box)))])[0]

    def prior_inputs(self, rng: np.random.Generator, clips: list[int]) -> dict[str, torch.Tensor]:
        """The emotion references' windows: ``prior_expression [B, N, E]``, ``prior_audio [B, N, A_e]`` (raw),
        ``prior_valid [B, N]`` (shorter clips padded)."""
        spans = []
        for k in clips:
            j = self.reference_clip(rng, k)
            t = len(self.sampler.labels[j].expression)
            n = min(self.config.prior_frames, t)
            spans.append((j, int(rng.integers(0, t - n + 1)), n))
        width = max(n for *_, n in spans)
        first = self.sampler.labels[spans[0][0]]
        expression = np.zeros((len(clips), width, first.expression.shape[1]), np.float32)
        audio = np.zeros((len(clips), width, len(self.embedder_columns)), np.float32)
        valid = np.zeros((len(clips), width), bool)
        for i, (j, start, n) in enumerate(spans):
            lab = self.sampler.labels[j]
            expression[i, :n] = lab.expression[start:start + n]
            audio[i, :n] = lab.features[start:start + n][:, self.embedder_columns]
            valid[i, :n] = True
        return {"prior_expression": torch.from_numpy(expression), "prior_audio": torch.from_numpy(audio),
                "prior_valid": torch.from_numpy(valid)}

    @torch.no_grad()
    def initial_prototypes(self, embedder: EmotionEmbedder, count: int, seed: int) -> torch.Tensor:
        """``count`` emotion priors (Eq. 6 samples) of random windows of random labelled clips ``[K, d_s]``: the
        emotion bank's initial prototypes (see the module docstring)."""
        rng = np.random.default_rng([seed, 17])
        pool = np.flatnonzero(self.labelled) if self.labelled.any() else np.arange(len(self.labelled))
        clips = [int(k) for k in rng.choice(pool, count, replace=len(pool) < count)]
        inputs = self.prior_inputs(rng, clips)
        device = embedder.pool_score.weight.device
        prior = embedder.prior(*(inputs[k].to(device) for k in ("prior_expression", "prior_audio", "prior_valid")))
        return prior.sample(torch.Generator(device).manual_seed(seed)).cpu()

    def batch(self, rng: np.random.Generator, batch: int, frames: int, context: int,
              size: int) -> dict[str, torch.Tensor]:
        """One training batch: ``frames [B, F, 3, S, S]``, ``reference [B, 3, S, S]`` (in [-1, 1], resized to the
        VAE's ``size``), ``audio [B, F, 2m + 1, A]``, ``has_audio``, ``has_emotion`` (bool ``[B]``), ``label [B]`` and
        the emotion references (:meth:`prior_inputs`)."""
        clips = self.pick(rng, batch, frames)
        w = self.sampler.windows(rng, batch, 0, frames, context, audio=False, clips=clips)
        reference = np.array(w.reference)
        for i, k in enumerate(clips):
            j = self.reference_frame_clip(rng, k)
            if j != k:
                reference[i] = self.reference_image(rng, j)
        return {"frames": frames_to_tensor(w.frames, size), "reference": frames_to_tensor(reference, size),
                "audio": torch.from_numpy(np.ascontiguousarray(w.audio_features[..., self.unet_columns])),
                "has_audio": torch.from_numpy(np.asarray(w.has_audio, bool)),
                "has_emotion": torch.from_numpy(self.labelled[clips]),
                "label": torch.from_numpy(self.label[clips]), **self.prior_inputs(rng, clips)}


# ------------------------------------------------------------------------------------------------ solver

class _DICEStep(nn.Module):
    """Eq. 15 on a batch: the frozen VAE's latents, the frozen embedder's priors, then
    :meth:`DICENetwork.training_loss`."""

    def __init__(self, net: DICENetwork, vae: LatentVAE, embedder: EmotionEmbedder) -> None:
        super().__init__()
        self.net = net
        self._frozen = [vae, embedder]  # frozen helpers: not trained, not saved

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        vae, embedder = self._frozen
        assert isinstance(vae, LatentVAE) and isinstance(embedder, EmotionEmbedder)
        with torch.no_grad():
            frames = batch["frames"]
            b, f = frames.shape[:2]
            latents = vae.encode(frames.flatten(0, 1)).unflatten(0, (b, f))           # [B, F, c, h, w]
            reference = vae.encode(batch["reference"])                                # [B, c, h, w]
            prior = embedder.prior(batch["prior_expression"], batch["prior_audio"], batch["prior_valid"])
        out = self.net.training_loss(latents, reference, batch["audio"], prior, batch["label"],
                                     has_audio=batch["has_audio"], has_emotion=batch["has_emotion"])
        return out.losses.total, out.metrics()


class DICESolver(Solver):
    """``dice.video`` (see the module docstring)."""

    component: ClassVar[str] = "dice.video"
    train_config_class: ClassVar[type[TrainConfig]] = DICETrainConfig

    def __init__(self, sampler: VideoSampler, vae: LatentVAE, embedder: EmotionEmbedder, config: DICEConfig,
                 train_config: DICETrainConfig, unet_names: tuple[str, ...], svd_unet: str | Path | None = None,
                 init: str | Path | None = None) -> None:
        self.vae = vae.eval().requires_grad_(False)
        self.embedder = embedder.eval().requires_grad_(False)
        self.train_config = train_config
        self.data = DICEData(sampler, unet_names, embedder, train_config)
        self.svd_state: dict[str, torch.Tensor] | None = None
        self.init_state: dict[str, torch.Tensor] | None = None
        if init is not None:
            from talkinghead.checkpoint import read_safetensors, safetensors_file

            self.init_state = read_safetensors(safetensors_file(init, "dice.video checkpoint"))
        vae_config: Any = vae.config
        if svd_unet is not None:
            structure, self.svd_state = load_svd_unet(svd_unet)
            if structure["latent_channels"] != vae_config.latent_channels:
                raise TalkingHeadError(f"The SVD UNet reads {structure['latent_channels']} latent channels and the VAE "
                                       f"makes {vae_config.latent_channels}.")
            config = config.replace(unet=config.unet.replace(**structure))
        self.model_config = config.for_data(
            audio_dim=len(self.data.unet_columns), emotion_dim=embedder.config.d_s, emotions=embedder.emotions,
            latent_channels=int(vae_config.latent_channels), image_size=vae.image_size, vae_factor=vae.factor)
        self.audio_features = audio_spec(sampler, unet_names)
        self.stats = self.data.audio_stats()

    @property
    def sampler(self) -> VideoSampler:
        return self.data.sampler

    def build_model(self) -> DICENetwork:
        net = DICENetwork(self.model_config, self.audio_features)
        if self.svd_state is not None:
            net.unet.load_svd(self.svd_state)
        net.unet.audio_projection.norm.set_stats(*self.stats)
        if net.bank is not None and not self.model_config.learnable_ca:  # learnable CA keeps its random embeddings
            with torch.no_grad():
                net.bank.prototypes.copy_(self.data.initial_prototypes(self.embedder, len(net.bank.prototypes),
                                                                       self.train_config.seed))
        if self.init_state is not None:
            init_weights(net, self.init_state)
        return net.train()

    def wrap(self, model: nn.Module) -> nn.Module:
        assert isinstance(model, DICENetwork)
        return _DICEStep(model, self.vae, self.embedder)

    def to_device(self, device: torch.device) -> None:
        self.vae.to(device)
        self.embedder.to(device)

    def make_batch(self, rng: np.random.Generator, batch_size: int) -> dict[str, torch.Tensor]:
        cfg = self.model_config
        return self.data.batch(rng, batch_size, cfg.frames, cfg.context, cfg.image_size)


def init_weights(net: nn.Module, state: dict[str, torch.Tensor]) -> list[str]:
    """Copy the tensors of ``state`` (a ``dice.video`` checkpoint) whose names and shapes ``net`` has (``--init``:
    a warm start, e.g. a variant from the shipped network; the parts the variant changes keep their new
    initialisation). Returns the names copied; none is an error."""
    own = net.state_dict()
    shared = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not shared:
        raise TalkingHeadError("The --init checkpoint shares no weights with this DICE network.")
    net.load_state_dict(shared, strict=False)
    return sorted(shared)


# ------------------------------------------------------------------------------------------------- builder

def _sampler(data: str | Path, real: str | Path | None, names: tuple[str, ...]) -> VideoSampler:
    """The train split of ``data`` and of ``real`` less its held-out clips."""
    from talkinghead.render.fd2talk.training import held_out_clips

    given: list[Any] = [data] + ([real] if real is not None else [])
    exclude = held_out_clips(real) if real is not None else []
    return VideoSampler(given, "train", features=names, exclude=exclude)


def _feature_names(data: str | Path, features: tuple[str, ...],
                   embedder: EmotionEmbedder) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The UNet's feature names (``features``, else all of the dataset's) and the sampler's (those, then the
    embedder's that are not among them)."""
    from talkinghead.data.video.format import VideoDataset

    kinds = tuple(VideoDataset(data).info.audio_features.get("kinds") or {})
    unet = tuple(features) or kinds
    if not unet:
        raise TalkingHeadError(f"The video dataset {data} has no audio features; DICE-Talk's audio layers need them.")
    wanted = tuple((embedder.audio_features or {}).get("names") or ())
    missing = [n for n in wanted if n not in kinds]
    if not wanted or missing:
        raise TalkingHeadError(f"The emotion embedder reads the audio feature(s) {', '.join(missing or ['(none)'])}, "
                               f"which the video dataset {data} does not have.")
    return unet, unet + tuple(n for n in wanted if n not in unet)


def load_embedder(embedder: str | Path | None) -> EmotionEmbedder:
    """The frozen emotion embedder (``--embedder``, required)."""
    if embedder is None:
        raise TalkingHeadError("DICE-Talk's diffusion model reads emotion priors: pass --embedder DIR (talkinghead "
                               "train dice.embedder).")
    model = EmotionEmbedder.from_pretrained(embedder)
    if float(model.prompt_clips.sum()) <= 0:
        raise TalkingHeadError(f"The emotion embedder in {embedder} has no emotion prompts; export it with its "
                               "training command.")
    return model


def build_video(data: str | Path, preset: str, *, features: tuple[str, ...] = (),
                train_overrides: dict[str, Any] | None = None, real: str | Path | None = None,
                vae: str | Path | None = None, embedder: str | Path | None = None, unet: str | Path | None = None,
                no_bank: bool = False, no_discriminator: bool = False, deterministic_prior: bool = False,
                learnable_ca: bool = False, prior_from: str = "clip", reference_from: str = "clip",
                discriminate: str = "features", init: str | Path | None = None) -> SolverBuild:
    """The registry's builder of ``dice.video``."""
    config = DICETrainConfig.preset(preset, **{**(train_overrides or {}), "prior_from": prior_from,
                                               "reference_from": reference_from})
    if vae is None:
        raise TalkingHeadError("DICE-Talk learns in a VAE's latents: pass --vae DIR (talkinghead train emo.vae, or a "
                               "Stable Diffusion VAE folder).")
    emb = load_embedder(embedder)
    layout = tuple((emb.layout or {}).get("channels") or ())
    unet_names, names = _feature_names(data, features, emb)
    sampler = _sampler(data, real, names)
    if layout and tuple(sampler.dataset.info.layout.channels) != layout:
        raise TalkingHeadError(f"The emotion embedder was trained on the layout '{(emb.layout or {}).get('name')}', "
                               f"the video dataset {data} uses '{sampler.dataset.info.layout.name}'.")
    if no_bank and learnable_ca:
        raise TalkingHeadError("--learnable-ca replaces the bank's learning; it cannot go with --no-bank.")
    model_config = DICEConfig.preset(preset, emotion_bank=not no_bank, discrimination=not no_discriminator,
                                     deterministic_prior=deterministic_prior, learnable_ca=learnable_ca,
                                     discriminate=discriminate)
    solver = DICESolver(sampler, LatentVAE.load(vae), emb, model_config, config, unet_names, unet, init)
    extra = {"crop_scale": float(sampler.dataset.info.crop_scale), "crop_size": int(sampler.size),
             "data": [str(d.root) for d in sampler.datasets], "vae": str(vae), "embedder": str(embedder),
             "unet": str(unet) if unet else None, "prior_from": prior_from, "reference_from": reference_from,
             "real_fraction": config.real_fraction,
             "prior_frames": config.prior_frames, "emotions": list(emb.emotions),
             "ablations": {"no_bank": no_bank, "no_discriminator": no_discriminator,
                           "deterministic_prior": deterministic_prior, "learnable_ca": learnable_ca},
             "discriminate": discriminate, "init": str(init) if init else None}
    return SolverBuild(solver, config, extra)

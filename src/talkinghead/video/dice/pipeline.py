"""DICE-Talk as a video generator (:class:`talkinghead.generators.VideoGenerator`; Sec. 3, Fig. 2, 4.1).

Frames straight from speech, one portrait and an emotion, in numbered stages (each a method), like EMO's pipeline:

1. **crop**: the portrait's face crop, cut as the video corpus cut its training crops
   (:class:`talkinghead.data.video.build.PortraitRenderer`, side ``crop_scale`` times the face) and resized to the
   VAE's image size; its latent is the reference image of every clip (SVD's conditioning image);
2. **audio**: the network's audio features per frame (Whisper through a local encoder named by the manifest, else the
   project's frame features) and each frame's ``2m + 1`` neighbours;
3. **emotion**: one prior ``s [d_s]`` from (at most one of)

   - ``conditions.style.video`` / ``.reference``: a reference video of any face, tracked (no audio used): the
     embedder's video-only prior (Sec. 3.1, modality dropout makes one modality enough; "Ours-V", 4.1);
   - ``conditions.style.emotion``: the emotion prompt, the mean prior of that emotion over the embedder's training
     clips ("Ours-P", 4.1). With an ``intensity`` ``i`` (1-3) the prompt's offset from the neutral prompt is scaled by
     ``i / 2``: ``s = p_neutral + (i / 2) (p_emotion - p_neutral)``. The prompts average all intensities of the
     training clips (MEAD's and the corpus's are 1-3, mean 2), so intensity 2 is the prompt itself, 1 half of its
     offset and 3 one and a half times it (the paper has no intensity control; Fig. 4(c) shows the priors of one
     emotion ordered by intensity along such a direction);
   - ``conditions.style.code``: a ready prior of ``d_s`` values;
   - none of them: the embedder's **audio-only** prior of the speech itself (the central 512 frames at most), the
     emotion the voice carries (Sec. 3.1's audio branch);

   and ``conditions.style.mix`` (an ``emotion[:intensity]`` or a video file) with ``mix_alpha``: the linear
   interpolation ``(1 - alpha) s + alpha s_mix`` of the two priors (Fig. 4(d)). At inference the prior's **mean** is
   used (the prompts are means too, 4.1) and the bank's inference path (Eq. 12-13): ``E_s`` attends to every
   prototype;
4. **cascade**: clips of ``F`` frames sampled with EDM (Euler, ``steps``; 25 in the paper, 4.1) and the nested
   multi-condition guidance of :mod:`.edm` (``guidance``). Long audio is covered by clips that **overlap** by
   ``overlap`` frames, generated one after another: while a clip is sampled, its first ``overlap`` frames are held to
   the previous clip's final latents, re-noised to each step's noise level with the clip's own noise (``x = z_prev +
   sigma n``, diffusion inpainting along time), so the temporal layers continue the motion; the overlap is then
   cross-faded (weights ramping over the overlap) between the previous clip's and the new clip's latents. Every clip
   reads the portrait's latent as its reference image, as SVD-based talking heads do (Sonic, DICE-Talk): the
   previous clip's last frame is *not* the next clip's reference, which would drift. Memory stays one clip's whatever
   the length, and frames come out clip by clip. (Sonic fuses windows over the whole sequence at every step, which
   holds every frame's latent until the last step; the sequential overlap keeps memory bounded.) The last clip is
   padded with the final frame's audio and cut;
5. **decode** each clip's latents with the VAE and **paste** the crops back into the photo: only the portrait's
   face box widened by ``paste_scale`` (room for the generated head's motion; feathered outside it), so the
   background and hair stay as sharp as the photo; or the whole crop (``paste_region = "crop"``); or return the
   crops resized to ``size``.

A checkpoint folder (``weights/dice`` when shipped) holds ``vae/`` (:class:`talkinghead.nn.latent.LatentVAE`),
``embedder/`` (``dice.embedder``) and ``network/`` (``dice.network``), named in its ``talkinghead.json``
(:func:`write_dice_manifest`) with the sampling defaults under ``sampling`` and, for Whisper features, the encoder
folder under ``audio_encoder``.

Sampling defaults and why: ``cpu`` 8 Euler steps and no guidance (all scales 1: one UNet call per step), so that a
second of video costs about 10-15 s on two cores (measured in docs/dice.md); guidance triples the cost and the
paper gives no scales. ``paper``: 25 steps (4.1) and the scales of :class:`.edm.GuidanceScales` (2 / 3 / 3, this
project's starting point). ``Conditions.guidance`` (``--cfg-scale g``) sets all three scales to ``g``: plain
classifier-free guidance on all conditions together (two calls per step).

Precision (``precision``, not in the paper): ``float32`` by default; ``bfloat16`` or ``auto`` (bfloat16 where the
processor computes it natively, :mod:`talkinghead.nn.precision`) run the network and the VAE decoder under bfloat16
autocast, the EDM sampler's arithmetic in float32. The shipped manifest sets ``auto``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import numpy as np
import torch

from talkinghead.config import Config, Range
from talkinghead.errors import TalkingHeadError
from talkinghead.nn.latent import LatentVAE, frames_to_tensor
from talkinghead.nn.precision import Precision, inference_precision, resolve_precision
from talkinghead.render.paste import PasteRegion, box_region, paste, widen_box
from talkinghead.video.dice.edm import GuidanceScales, sample_edm
from talkinghead.video.dice.embedder import EmotionEmbedder
from talkinghead.video.dice.network import DICENetwork
from talkinghead.video.emo.audio import feature_windows
from talkinghead.video.emo.pipeline import PortraitCrop, decode_crops

#: the component folders of a DICE-Talk checkpoint
COMPONENTS = ("vae", "embedder", "network")
#: the audio-only prior reads at most this many (central) frames of the speech
AUDIO_PRIOR_FRAMES = 512
_NO_GUIDANCE = {"image": 1.0, "audio": 1.0, "emotion": 1.0}


@dataclass(frozen=True)
class DICESampling(Config):
    """``steps`` and ``solver`` of the EDM sampler, the ``guidance`` scales, the ``overlap`` of consecutive clips
    (frames), ``paste_back`` and its ``feather`` (fraction of the crop side), ``paste_region`` (``face``: only the
    portrait's face box times ``paste_scale`` goes back into the photo, room for the generated head's motion,
    :mod:`talkinghead.render.paste`; ``crop``: the whole crop)."""

    steps: int = 25
    solver: Literal["euler", "heun"] = "euler"
    guidance: GuidanceScales = field(default_factory=GuidanceScales)
    overlap: int = 5
    paste_back: bool = True
    feather: float = 0.12
    paste_region: PasteRegion = "face"
    paste_scale: Annotated[float, Range(1.0, 3.0)] = 1.3
    precision: Precision = "float32"

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {"steps": 2, "overlap": 1, "guidance": _NO_GUIDANCE},
        "cpu": {"steps": 8, "overlap": 4, "guidance": _NO_GUIDANCE},
        "paper": {},
    }

    def __post_init__(self) -> None:
        if not 1 <= self.steps <= 1000:
            raise TalkingHeadError(f"DICE-Talk's sampling steps must be between 1 and 1000, got {self.steps}.")
        if self.overlap < 0:
            raise TalkingHeadError("The overlap of consecutive clips cannot be negative.")
        if not all(math.isfinite(v) and 0.0 <= v <= 20.0 for v in self.guidance.as_tuple()):
            raise TalkingHeadError("DICE-Talk's guidance scales must be between 0 and 20.")
        resolve_precision(self.precision)


def write_dice_manifest(folder: str | Path, sampling: dict[str, Any] | None = None,
                        audio_encoder: str | None = None, **record: Any) -> Path:
    """``talkinghead.json`` for a DICE-Talk folder holding ``vae/``, ``embedder/`` and ``network/`` (``record``: what
    made it, e.g. the commands and seed)."""
    from talkinghead.generators import write_manifest

    extra: dict[str, Any] = {"sampling": dict(sampling or {}), **record}
    if audio_encoder is not None:
        extra["audio_encoder"] = audio_encoder
    return write_manifest(folder, "dice", {c: c for c in COMPONENTS}, **extra)


def clip_starts(total: int, frames: int, overlap: int) -> list[int]:
    """The first frame of each clip covering ``total`` frames with clips of ``frames`` overlapping by ``overlap``."""
    if total < 1:
        raise TalkingHeadError("The audio is too short for a single video frame.")
    if not 0 <= overlap < frames:
        raise TalkingHeadError(f"Clips of {frames} frames cannot overlap by {overlap}.")
    starts = [0]
    while starts[-1] + frames < total:
        starts.append(starts[-1] + frames - overlap)
    return starts


class DICEGenerator:
    """Conditions -> frames with DICE-Talk (see the module docstring)."""

    kind: ClassVar[str] = "video"
    name: ClassVar[str] = "dice"
    capabilities: ClassVar[tuple[str, ...]] = (
        "paste-back", "diffusion", "any-length", "emotion", "style-video", "style-mix", "style-code",
        "emotion-from-audio", "guidance")
    needs_weights: ClassVar[bool] = True

    def __init__(self, vae: LatentVAE, embedder: EmotionEmbedder, network: DICENetwork,
                 sampling: DICESampling | None = None, crop_scale: float = 2.0, crop_size: int | None = None,
                 encoder: Any | None = None) -> None:
        self.vae = vae.eval()
        self.embedder = embedder.eval()
        self.network = network.eval()
        self.sampling = sampling or DICESampling.preset("cpu")
        self.crop_scale = crop_scale
        self.crop_size = crop_size or vae.image_size
        self.encoder = encoder
        cfg = network.dice_config
        if cfg.image_size != vae.image_size:
            raise TalkingHeadError(f"The DICE network works on {cfg.image_size} px crops and its VAE on "
                                   f"{vae.image_size} px ones.")
        if embedder.config.d_s != cfg.emotion_dim:
            raise TalkingHeadError(f"The emotion embedder makes priors of {embedder.config.d_s} values and the DICE "
                                   f"network reads {cfg.emotion_dim}.")
        if self.sampling.overlap >= cfg.frames:
            raise TalkingHeadError(f"Clips of {cfg.frames} frames cannot overlap by {self.sampling.overlap}.")

    @classmethod
    def from_pretrained(cls, directory: str | Path | None = None) -> DICEGenerator:
        """The DICE-Talk model in ``directory`` (default: the shipped ``weights/dice``)."""
        from talkinghead.audio.encoders import load_encoder
        from talkinghead.checkpoint import read_checkpoint_info
        from talkinghead.generators import model_folders

        folder, manifest, paths = model_folders(
            directory, "dice", COMPONENTS, "DICE-Talk model",
            "train one with talkinghead train emo.vae, dice.embedder and dice.video")
        extra = read_checkpoint_info(paths["network"]).extra
        encoder = manifest.get("audio_encoder")
        return cls(LatentVAE.load(paths["vae"]), EmotionEmbedder.from_pretrained(paths["embedder"]),
                   DICENetwork.from_pretrained(paths["network"]),
                   DICESampling.preset("cpu", **dict(manifest.get("sampling") or {})),
                   float(extra.get("crop_scale", 2.0)), extra.get("crop_size"),
                   load_encoder(folder / encoder) if encoder else None)

    def settings(self, conditions: Any) -> DICESampling:
        """The sampling settings with the request's steps and guidance where given (``guidance`` ``g``: all three
        scales ``g``)."""
        changes: dict[str, Any] = {}
        if conditions.steps is not None:
            changes["steps"] = conditions.steps
        if conditions.guidance is not None:
            g = float(conditions.guidance)
            changes["guidance"] = {"image": g, "audio": g, "emotion": g}
        return DICESampling.from_dict({**self.sampling.to_dict(), **changes}) if changes else self.sampling

    # ------------------------------------------------------------------------------------------- stages
    @property
    def image_size(self) -> int:
        return self.vae.image_size

    def crop(self, portrait: Any) -> PortraitCrop:
        """Stage 1: the face crop, its box in the photo and the face box in it, cut as the training crops were."""
        from talkinghead.data.video.build import PortraitRenderer
        from talkinghead.data.video.frames import boxes_in_crop, face_boxes
        from talkinghead.face.model import project

        r = PortraitRenderer.for_portrait(portrait, self.crop_size, self.crop_scale)
        corner = np.asarray(r.warp.box.origin, np.float64) + r.pad * r.pixel
        box = np.array([corner[0], corner[1], r.size * r.pixel])
        vertices = np.asarray(project(portrait.identity, np.asarray(portrait.expression, np.float32),
                                      np.asarray(portrait.pose, np.float32)), np.float64)[None]
        face = boxes_in_crop(face_boxes(vertices), box[None], self.image_size)[0]
        return PortraitCrop(frames_to_tensor(r.still()[None], self.image_size), box, face)

    def _features(self, conditions: Any, spec_dict: dict[str, Any] | None, what: str) -> np.ndarray:
        """Frame features ``[T, A]`` a checkpoint reads: through the local encoder for encoder features, else the
        project's own (or a dataset clip's stored ones)."""
        from talkinghead.audio.features import extract_features
        from talkinghead.audio.spec import ENCODER_KIND, checkpoint_spec, select_kinds

        spec = None if conditions.precomputed else checkpoint_spec(spec_dict, what, conditions.fps)
        if spec is not None and ENCODER_KIND in spec.kinds:
            if self.encoder is None:
                raise TalkingHeadError(f"This DICE-Talk {what} reads {spec.encoder} features; its folder names no "
                                       "audio_encoder in talkinghead.json.")
            stacked = extract_features(conditions.audio, spec, self.encoder)
            return select_kinds(stacked, spec, list((spec_dict or {}).get("names", [])),  # type: ignore[no-any-return]
                                list((spec_dict or {}).get("dims", [])), what)
        return conditions.features(spec_dict, what)  # type: ignore[no-any-return]

    def audio_windows(self, conditions: Any) -> np.ndarray:
        """Stage 2: per-frame audio features with their neighbours ``[T, 2m + 1, A]``."""
        features = self._features(conditions, self.network.audio_features, "network")
        cfg = self.network.dice_config
        if features.shape[1] != cfg.unet.audio_dim:
            raise TalkingHeadError("The DICE network's audio feature widths do not match its spec.")
        if len(features) < 1:
            raise TalkingHeadError("The audio is too short for a single video frame.")
        return feature_windows(features, cfg.context)

    def prompt(self, emotion: str, intensity: int | None = None) -> torch.Tensor:
        """The emotion prompt ``[d_s]`` of ``emotion`` (4.1), its offset from neutral scaled by ``intensity / 2``."""
        prompt = self.embedder.emotion_prompt(emotion)
        if intensity is None:
            return prompt
        if intensity not in (1, 2, 3):
            raise TalkingHeadError(f"The intensity must be 1, 2 or 3, got {intensity}.")
        if "neutral" not in self.embedder.emotions:
            raise TalkingHeadError("An intensity scales the emotion away from neutral, and this embedder has no "
                                   "neutral prompt.")
        neutral = self.embedder.emotion_prompt("neutral")
        return neutral + (intensity / 2.0) * (prompt - neutral)

    def _video_prior(self, motion: Any) -> torch.Tensor:
        return self.embedder.clip_prior(motion, None).mean[0]

    def audio_prior(self, conditions: Any) -> torch.Tensor:
        """The embedder's audio-only prior ``[d_s]`` of the speech (its central frames)."""
        features = self._features(conditions, self.embedder.audio_features, "emotion embedder")
        if features.shape[1] != self.embedder.config.audio_dim:
            raise TalkingHeadError("The emotion embedder's audio feature widths do not match its spec.")
        start = max(0, (len(features) - AUDIO_PRIOR_FRAMES) // 2)
        return self.embedder.clip_prior(None, features[start:start + AUDIO_PRIOR_FRAMES]).mean[0]

    def _mix_target(self, spec: str, conditions: Any) -> tuple[torch.Tensor, str]:
        """The second prior of a mix: a video file, or ``emotion[:intensity]``."""
        from talkinghead.generators import Conditions, StyleRequest

        if Path(spec).is_file():
            other = Conditions(conditions.audio, conditions.portrait, StyleRequest(video=Path(spec)),
                               fps=conditions.fps)
            return self._video_prior(other.style_motion()), f"video:{spec}"
        name, _, level = spec.partition(":")
        if level and level not in ("1", "2", "3"):
            raise TalkingHeadError(f"The emotion to mix in, '{spec}', is neither a file nor emotion[:1-3].")
        intensity = int(level) if level else None
        return self.prompt(name, intensity), f"emotion:{name}" + (f":{intensity}" if intensity else "")

    def emotion(self, conditions: Any) -> tuple[torch.Tensor, str]:
        """Stage 3: the emotion prior ``s [d_s]`` for the request and where it came from (module docstring)."""
        request = conditions.style
        if sum(x is not None for x in (request.video, request.reference, request.emotion, request.code)) > 1:
            raise TalkingHeadError("Give at most one emotion source: a reference video, an emotion or a prior.")
        d = self.embedder.config.d_s
        if request.code is not None:
            code = np.asarray(request.code, np.float32)
            if code.shape != (d,):
                raise TalkingHeadError(f"An emotion prior for this model has {d} values.")
            s, source = torch.from_numpy(code), "given"
        elif request.video is not None or request.reference is not None:
            s = self._video_prior(conditions.style_motion())
            source = f"video:{request.video}" if request.video is not None else "reference"
        elif request.emotion is not None:
            s = self.prompt(request.emotion, request.intensity)
            source = f"emotion:{request.emotion}" + (f":{request.intensity}" if request.intensity else "")
        else:
            if request.intensity is not None:
                raise TalkingHeadError("An intensity needs an emotion.")
            s, source = self.audio_prior(conditions), "audio"
        if request.mix is not None:
            other, other_source = self._mix_target(request.mix, conditions)
            alpha = float(request.mix_alpha)
            if not (math.isfinite(alpha) and 0.0 <= alpha <= 1.0):
                raise TalkingHeadError(f"The mix weight must be between 0 and 1, got {alpha}.")
            s = torch.lerp(s, other.to(s), alpha)
            source = f"{source} x{1 - alpha:g} + {other_source} x{alpha:g}"
        return s.float(), source

    @torch.no_grad()
    def emotion_tokens(self, s: torch.Tensor) -> torch.Tensor:
        """``E_s [1, 1, d_e]`` of a prior ``s [d_s]`` (the bank's inference path, Eq. 12-13)."""
        return self.network.emotion_tokens(s[None])

    @torch.no_grad()
    def sample_clips(self, reference: torch.Tensor, audio: torch.Tensor, emotion: torch.Tensor,
                     settings: DICESampling, seed: int) -> Iterator[torch.Tensor]:
        """Stage 4: the latents ``[n_k, c, h, w]`` of each clip's new frames for ``audio [T, 2m + 1, A]``, lazily
        (overlapping clips, see the module docstring); ``reference [1, c, h, w]``, ``emotion [1, 1, d_e]``."""
        cfg = self.network.dice_config
        f, o, total = cfg.frames, settings.overlap, len(audio)
        starts = clip_starts(total, f, o)
        shape = (1, f, cfg.unet.latent_channels, *reference.shape[-2:])
        generator = torch.Generator().manual_seed(seed)
        ramp = (torch.arange(1, o + 1, dtype=torch.float32) / (o + 1)).view(1, o, 1, 1, 1)
        tail: torch.Tensor | None = None                                              # previous clip's last o
        for k, start in enumerate(starts):
            frames = torch.arange(start, start + f).clamp(max=total - 1)                # the last clip padded
            noise = torch.randn(shape, generator=generator)
            with inference_precision(settings.precision):
                guided = self.network.denoiser(reference, audio[frames][None], emotion, settings.guidance)

                def denoise(x: torch.Tensor, sigma: torch.Tensor, known: torch.Tensor | None = tail,
                            noise: torch.Tensor = noise, guided: Any = guided) -> torch.Tensor:
                    if known is not None and o:                                       # inpainting along time
                        x = torch.cat([known + sigma.view(-1, 1, 1, 1, 1) * noise[:, :o], x[:, o:]], dim=1)
                    return guided(x, sigma).float()  # type: ignore[no-any-return]

                z = sample_edm(denoise, noise, cfg.edm, settings.steps, settings.solver)
            if tail is not None and o:
                z[:, :o] = (1 - ramp) * tail + ramp * z[:, :o]                        # cross-fade the overlap
            last = k == len(starts) - 1
            tail = None if last else z[:, f - o:].clone()
            yield z[0, :total - start] if last else z[0, :f - o]

    def decode(self, latents: torch.Tensor, precision: Precision = "float32") -> np.ndarray:
        """Stage 5: :func:`talkinghead.video.emo.pipeline.decode_crops` with this generator's VAE."""
        return decode_crops(self.vae, latents, precision)

    # --------------------------------------------------------------------------------------- generate
    def generate(self, conditions: Any, size: int) -> Any:
        """Frames for ``conditions`` (see the module docstring): a :class:`talkinghead.generators.VideoOutput`
        whose frames are computed as they are read."""
        from talkinghead.generators import VideoOutput

        frames, total, source, timings = self._run(conditions, size, self.settings(conditions))
        return VideoOutput(frames, total, conditions.fps, source=f"dice (emotion {source})", timings=timings)

    def crops(self, conditions: Any, size: int) -> Iterator[np.ndarray]:
        """The generated face crops ``[size, size, 3]`` uint8, not pasted back: the crop the training frames were cut
        as (what ``evaluate-frames`` compares with a video dataset's crops)."""
        return self._run(conditions, size, self.settings(conditions).replace(paste_back=False))[0]

    def _run(self, conditions: Any, size: int,
             settings: DICESampling) -> tuple[Iterator[np.ndarray], int, str, dict[str, float]]:
        """Stages 1-5: the lazy frames, their count, the emotion's source and the timings (filled as frames are
        read)."""
        self.check(conditions)
        began = time.perf_counter()
        s, source = self.emotion(conditions)
        crop = self.crop(conditions.portrait)
        audio = torch.from_numpy(self.audio_windows(conditions))
        with torch.no_grad():
            reference = self.vae.encode(crop.image)                                   # [1, c, h, w]
        tokens = self.emotion_tokens(s)
        timings = {"dice_prepare": time.perf_counter() - began, "dice_sampling": 0.0, "dice_decode": 0.0}
        clips = self.sample_clips(reference, audio, tokens, settings, conditions.seed)
        region = box_region(widen_box(crop.face, settings.paste_scale), self.image_size) \
            if settings.paste_region == "face" else None
        frames = self._frames(clips, conditions.portrait.image, crop, settings, size, timings, region)
        return frames, len(audio), source, timings

    def check(self, conditions: Any) -> None:
        """One sentence for a request DICE-Talk cannot serve."""
        if conditions.portrait.image is None:
            raise TalkingHeadError("DICE-Talk needs the portrait's photo.")
        if getattr(conditions, "speed", None) is not None or getattr(conditions, "face_region", None) is not None:
            raise TalkingHeadError("DICE-Talk has no head-speed or face-region control; its motion follows the "
                                   "audio and the emotion.")

    def _frames(self, clips: Iterator[torch.Tensor], photo: np.ndarray, crop: PortraitCrop, settings: DICESampling,
                size: int, timings: dict[str, float], region: np.ndarray | None) -> Iterator[np.ndarray]:
        import cv2

        clock = time.perf_counter()
        for latents in clips:
            now = time.perf_counter()
            timings["dice_sampling"] += now - clock
            crops = self.decode(latents, settings.precision)
            clock = time.perf_counter()
            timings["dice_decode"] += clock - now
            for c in crops:
                yield paste(photo, c, crop.box, settings.feather, region) if settings.paste_back else \
                    cv2.resize(c, (size, size), interpolation=cv2.INTER_CUBIC)
            clock = time.perf_counter()

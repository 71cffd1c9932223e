"""EMO as a video generator (:class:`talkinghead.generators.VideoGenerator`; EMO Sec. 3.2, Fig. 2, 4.1 "Inference").

Frames straight from speech and one portrait, composed like diffusers' Stable Video Diffusion pipeline: typed parts
(the VAE, the EMO network) and numbered stages, each a method:

1. **crop**: the portrait's face crop, cut as the video corpus cut its training crops (side ``crop_scale`` times the
   face's extent, centred on it, at the dataset's crop size; :class:`talkinghead.data.video.build.PortraitRenderer`)
   and resized to the VAE's image size as the training frames were, and the face box inside it; the crop's latent
   is the reference;
2. **audio**: the checkpoint's audio features per frame (wav2vec 2.0 through a local encoder named by the manifest,
   else the project's frame features) and each frame's ``2m + 1`` neighbours;
3. **weak conditions**: the face-region mask ``M`` (the reference face's box widened by ``region_scale``, or the
   region given in photo pixels, Fig. 7) and a constant head speed per frame ("we assign a constant speed value for
   each frame generation"; default: the training set's median, degrees per frame);
4. **cascade**: clips of ``f`` frames, each with ReferenceNet run once on the reference and the last ``n`` generated
   frames of the previous clip (zero maps for the first), then DDIM over epsilon predictions (40 steps by default,
   4.1); the last clip is padded with the final frame's conditions and cut. Memory stays one clip's whatever the length;
5. **decode** each clip's latents with the VAE and **paste** the crops back into the photo: only the face region
   (the box of stage 3, feathered outside it), so the background and hair stay as sharp as the photo; or the whole
   crop (``paste_region = "crop"``); or return the crops resized to ``size`` without paste-back.

Frames are produced lazily, clip by clip. A checkpoint folder (``weights/emo`` when shipped) holds ``vae/`` (a
:class:`talkinghead.nn.latent.LatentVAE`) and ``network/`` (an ``emo.network``), named in its ``talkinghead.json``
(:func:`write_emo_manifest`), with the sampling defaults under ``sampling`` and, for wav2vec features, the encoder
folder under ``audio_encoder``. The paper gives no classifier-free guidance; none is used.

Deviation (an option, off by default): ``strength < 1`` starts every clip's sampling from the reference latent noised
to that fraction of the schedule (SDEdit) instead of pure noise. The shipped CPU model, trained for minutes rather
than the paper's days, predicts the noise well from partly noised latents but draws no face from pure noise; its
manifest sets the strength it is shipped with (docs/emo.md).

Precision (``precision``, not in the paper): ``float32`` by default; ``bfloat16`` or ``auto`` (bfloat16 where the
processor computes it natively, :mod:`talkinghead.nn.precision`) run the networks and the VAE decoder under bfloat16
autocast, the sampler's arithmetic in float32. The shipped manifest sets ``auto``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from talkinghead.config import Config
from talkinghead.diffusion import ScheduleConfig, make_scheduler, sample
from talkinghead.errors import TalkingHeadError
from talkinghead.nn.latent import LatentVAE, frames_to_tensor
from talkinghead.nn.precision import Precision, inference_precision, resolve_precision
from talkinghead.render.paste import PasteRegion, box_region, paste, widen_box
from talkinghead.video.emo.audio import feature_windows
from talkinghead.video.emo.face_locator import region_masks
from talkinghead.video.emo.network import EMONetwork
from talkinghead.video.emo.speed import speed_windows

#: Stable Diffusion 1.5's noise schedule, epsilon prediction (Eq. 1), DDIM (4.1: 40 steps)
SCHEDULE = ScheduleConfig(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, sampler="ddim",
                          num_inference_steps=40, prediction_type="epsilon")
#: the component folders of an EMO checkpoint
COMPONENTS = ("vae", "network")


@dataclass(frozen=True)
class EMOSampling(Config):
    """``steps`` of DDIM (``eta``), the head ``speed`` (degrees per frame; None: the training median), the
    ``face_region`` ``(x0, y0, x1, y1)`` in photo pixels (None: the portrait's face box times ``region_scale``),
    ``paste_back`` and its ``feather`` (fraction of the crop side), ``paste_region`` (``face``: only the face
    region goes back into the photo, :mod:`talkinghead.render.paste`; ``crop``: the whole crop). ``strength``:
    where sampling starts, as a fraction of the noise schedule; 1 is the paper's pure noise, below 1 each frame starts
    from the reference latent noised to that level (SDEdit; not in the paper, see the module docstring)."""

    steps: int = 40
    eta: float = 0.0
    strength: float = 1.0
    speed: float | None = None
    face_region: tuple[float, float, float, float] | None = None
    region_scale: float = 1.15
    paste_back: bool = True
    feather: float = 0.12
    paste_region: PasteRegion = "face"
    precision: Precision = "float32"

    presets: ClassVar[dict[str, dict[str, Any]]] = {"tiny": {"steps": 2}, "cpu": {"steps": 20}, "paper": {}}

    def __post_init__(self) -> None:
        if not 1 <= self.steps <= 1000:
            raise TalkingHeadError(f"EMO's sampling steps must be between 1 and 1000, got {self.steps}.")
        if self.speed is not None and not (math.isfinite(self.speed) and 0.0 <= self.speed <= 30.0):
            raise TalkingHeadError(f"The head speed must be between 0 and 30 degrees a frame, got {self.speed}.")
        if self.face_region is not None:
            x0, y0, x1, y1 = self.face_region
            if not all(math.isfinite(v) for v in self.face_region) or x1 <= x0 or y1 <= y0:
                raise TalkingHeadError("The face region must be x0,y0,x1,y1 with x1 > x0 and y1 > y0.")
        if not (math.isfinite(self.strength) and 0.0 < self.strength <= 1.0):
            raise TalkingHeadError(f"EMO's sampling strength must be above 0 and at most 1, got {self.strength}.")
        if not (math.isfinite(self.region_scale) and self.region_scale > 0):
            raise TalkingHeadError("The face region scale must be positive.")
        resolve_precision(self.precision)


@torch.no_grad()
def decode_crops(vae: LatentVAE, latents: torch.Tensor, precision: Precision = "float32") -> np.ndarray:
    """Latents ``[F, c, h, w]`` -> crops ``[F, S, S, 3]`` uint8, the decoder under ``precision`` (EMO's and
    DICE-Talk's last stage)."""
    from talkinghead.render.fd2talk.perceptual import tensor_to_images

    with inference_precision(precision):
        images = vae.decode(latents).float()
    return tensor_to_images(images).numpy()  # type: ignore[no-any-return]


@dataclass
class PortraitCrop:
    """Stage 1's result: the face crop as the VAE's input ``image [1, 3, S, S]``, its ``box = (x, y, side)`` in photo
    pixels and the face box ``face [4]`` in crop pixels."""

    image: torch.Tensor
    box: np.ndarray
    face: np.ndarray


def write_emo_manifest(folder: str | Path, sampling: dict[str, Any] | None = None,
                       audio_encoder: str | None = None, **record: Any) -> Path:
    """``talkinghead.json`` for an EMO folder holding ``vae/`` and ``network/`` (``record``: what made it, e.g. the
    commands and seed)."""
    from talkinghead.generators import write_manifest

    extra: dict[str, Any] = {"sampling": dict(sampling or {}), **record}
    if audio_encoder is not None:
        extra["audio_encoder"] = audio_encoder
    return write_manifest(folder, "emo", {c: c for c in COMPONENTS}, **extra)


class EMOGenerator:
    """Conditions -> frames with EMO (see the module docstring)."""

    kind: ClassVar[str] = "video"
    name: ClassVar[str] = "emo"
    capabilities: ClassVar[tuple[str, ...]] = ("paste-back", "diffusion", "any-length", "speed", "face-region")
    needs_weights: ClassVar[bool] = True

    def __init__(self, vae: LatentVAE, network: EMONetwork, sampling: EMOSampling | None = None,
                 crop_scale: float = 2.0, speed_median: float = 0.25, encoder: Any | None = None,
                 crop_size: int | None = None, schedule: ScheduleConfig = SCHEDULE) -> None:
        self.vae = vae.eval()
        self.network = network.eval()
        self.sampling = sampling or EMOSampling.preset("cpu")
        self.crop_scale = crop_scale
        self.speed_median = speed_median
        self.encoder = encoder
        self.crop_size = crop_size or vae.image_size
        self.schedule = schedule
        if network.emo_config.image_size != vae.image_size:
            raise TalkingHeadError(f"The EMO network works on {network.emo_config.image_size} px crops and its VAE on "
                                   f"{vae.image_size} px ones.")

    @classmethod
    def from_pretrained(cls, directory: str | Path | None = None) -> EMOGenerator:
        """The EMO model in ``directory`` (default: the shipped ``weights/emo``)."""
        from talkinghead.audio.encoders import load_encoder
        from talkinghead.checkpoint import read_checkpoint_info
        from talkinghead.generators import model_folders

        folder, manifest, paths = model_folders(
            directory, "emo", COMPONENTS, "EMO model",
            "train one with talkinghead train emo.vae, emo.image, emo.video and emo.speed")
        extra = read_checkpoint_info(paths["network"]).extra
        encoder = manifest.get("audio_encoder")
        return cls(LatentVAE.load(paths["vae"]), EMONetwork.from_pretrained(paths["network"]),
                   EMOSampling.preset("cpu", **dict(manifest.get("sampling") or {})),
                   float(extra.get("crop_scale", 2.0)), float(extra.get("speed_median", 0.25)),
                   load_encoder(folder / encoder) if encoder else None, extra.get("crop_size"))

    def settings(self, conditions: Any, speed: float | None = None,
                 face_region: tuple[float, float, float, float] | None = None) -> EMOSampling:
        """The sampling settings with the request's steps, speed and face region where given (keywords first, then
        ``conditions.speed`` / ``conditions.face_region`` when the conditions carry them)."""
        changes: dict[str, Any] = {}
        if conditions.steps is not None:
            changes["steps"] = conditions.steps
        speed = speed if speed is not None else getattr(conditions, "speed", None)
        region = face_region if face_region is not None else getattr(conditions, "face_region", None)
        if speed is not None:
            changes["speed"] = float(speed)
        if region is not None:
            changes["face_region"] = tuple(float(v) for v in region)
        return EMOSampling.from_dict({**self.sampling.to_dict(), **changes}) if changes else self.sampling

    # ------------------------------------------------------------------------------------------- stages
    @property
    def image_size(self) -> int:
        return self.vae.image_size

    def crop(self, portrait: Any) -> PortraitCrop:
        """Stage 1: the face crop, its box in the photo and the face box in it; rendered at the training data's crop
        size and resized to the VAE's as the training frames were."""
        from talkinghead.data.video.build import PortraitRenderer
        from talkinghead.data.video.frames import boxes_in_crop, face_boxes
        from talkinghead.face.model import project

        expression = np.asarray(portrait.expression, np.float32)
        pose = np.asarray(portrait.pose, np.float32)
        r = PortraitRenderer.for_portrait(portrait, self.crop_size, self.crop_scale)
        corner = np.asarray(r.warp.box.origin, np.float64) + r.pad * r.pixel
        box = np.array([corner[0], corner[1], r.size * r.pixel])
        vertices = np.asarray(project(portrait.identity, expression, pose), np.float64)[None]
        face = boxes_in_crop(face_boxes(vertices), box[None], self.image_size)[0]
        return PortraitCrop(frames_to_tensor(r.still()[None], self.image_size), box, face)

    def audio_windows(self, conditions: Any) -> np.ndarray:
        """Stage 2: per-frame audio features with their neighbours ``[T, 2m + 1, A]``."""
        from talkinghead.audio.features import extract_features
        from talkinghead.audio.spec import ENCODER_KIND, checkpoint_spec, select_kinds

        spec_dict = self.network.audio_features or {}
        what = "EMO network"
        spec = None if conditions.precomputed else checkpoint_spec(spec_dict, what, conditions.fps)
        if spec is not None and ENCODER_KIND in spec.kinds:                   # wav2vec 2.0 from a local folder
            if self.encoder is None:
                raise TalkingHeadError(f"This EMO model reads {spec.encoder} features; its folder names no "
                                       "audio_encoder in talkinghead.json.")
            stacked = extract_features(conditions.audio, spec, self.encoder)
            features = select_kinds(stacked, spec, list(spec_dict.get("names", [])), list(spec_dict.get("dims", [])),
                                    what)
        else:                                                                 # the project's own frame features
            features = conditions.features(spec_dict, what)
        if features.shape[1] != self.network.emo_config.audio.input_dim:
            raise TalkingHeadError("The EMO network's audio feature widths do not match its spec.")
        if len(features) < 1:
            raise TalkingHeadError("The audio is too short for a single video frame.")
        return feature_windows(features, self.network.emo_config.context)

    def region_box(self, crop: PortraitCrop, settings: EMOSampling) -> np.ndarray:
        """The face region ``(x0, y0, x1, y1)`` in crop pixels: the request's, else the face box times
        ``region_scale``."""
        from talkinghead.data.video.frames import boxes_in_crop

        s = self.image_size
        if settings.face_region is not None:
            box = boxes_in_crop(np.asarray([settings.face_region], np.float64), crop.box[None], s)[0]
            if box[2] <= 0 or box[3] <= 0 or box[0] >= s or box[1] >= s:
                raise TalkingHeadError("The face region lies outside the face crop; give it in the photo's pixels "
                                       "around the face.")
        else:
            box = widen_box(crop.face, settings.region_scale)
        return np.clip(box, 0, s)

    def region(self, crop: PortraitCrop, settings: EMOSampling) -> torch.Tensor:
        """Stage 3: the face-region mask ``[1, 1, S, S]``."""
        return region_masks(self.region_box(crop, settings)[None], self.image_size)

    @torch.no_grad()
    def sample_clips(self, reference: torch.Tensor, audio: torch.Tensor, speed: torch.Tensor, region: torch.Tensor,
                     settings: EMOSampling, seed: int) -> Iterator[torch.Tensor]:
        """Stage 4: latents of each clip ``[f_k, c, h, w]`` for ``audio [T, 2m + 1, A]`` and ``speed [T, 2m + 1]``,
        lazily; ReferenceNet runs once per clip."""
        cfg = self.network.emo_config
        f, n, total = cfg.frames, cfg.motion_frames, len(audio)
        shape = (1, f, cfg.unet.latent_channels, *reference.shape[-2:])
        scheduler = make_scheduler(self.schedule.replace(eta=settings.eta), "ddim")
        generator = torch.Generator().manual_seed(seed)
        motion = None
        for start in range(0, total, f):
            frames = torch.arange(start, start + f).clamp(max=total - 1)               # the last clip padded
            a, s = audio[frames][None], speed[frames][None]
            with inference_precision(settings.precision):
                refs = self.network.references(reference, motion)

                def denoise(x: torch.Tensor, t: torch.Tensor, refs: Any = refs, a: torch.Tensor = a,
                            s: torch.Tensor = s) -> torch.Tensor:
                    return self.network(x, t, refs, region, a, s).float()  # type: ignore[no-any-return]

                z = sample(denoise, shape, scheduler, settings.steps, generator=generator, eta=settings.eta,
                           start=reference[:, None].expand(shape), strength=settings.strength)
            motion = z[:, f - n:] if n else None                                      # the next clip's motion frames
            yield z[0, :min(f, total - start)]

    def decode(self, latents: torch.Tensor, precision: Precision = "float32") -> np.ndarray:
        """Stage 5: :func:`decode_crops` with this generator's VAE."""
        return decode_crops(self.vae, latents, precision)

    # --------------------------------------------------------------------------------------- generate
    def generate(self, conditions: Any, size: int, *, speed: float | None = None,
                 face_region: tuple[float, float, float, float] | None = None) -> Any:
        """Frames for ``conditions`` (see the module docstring): a :class:`talkinghead.generators.VideoOutput`
        whose frames are computed as they are read."""
        from talkinghead.generators import VideoOutput

        settings = self.settings(conditions, speed, face_region)
        frames, total, value, timings = self._run(conditions, size, settings)
        return VideoOutput(frames, total, conditions.fps, source=f"emo (speed {value:.2f} deg/frame)", timings=timings)

    def crops(self, conditions: Any, size: int) -> Iterator[np.ndarray]:
        """The generated face crops ``[size, size, 3]`` uint8, not pasted back: the crop the training frames were cut
        as (what ``evaluate-frames`` compares with a video dataset's crops)."""
        settings = self.settings(conditions).replace(paste_back=False)
        return self._run(conditions, size, settings)[0]

    def _run(self, conditions: Any, size: int,
             settings: EMOSampling) -> tuple[Iterator[np.ndarray], int, float, dict[str, float]]:
        """Stages 1-5: the lazy frames, their count, the head speed used and the timings (filled as frames are
        read)."""
        self.check(conditions)
        began = time.perf_counter()
        crop = self.crop(conditions.portrait)
        audio = torch.from_numpy(self.audio_windows(conditions))
        total = len(audio)
        box = self.region_box(crop, settings)
        region = region_masks(box[None], self.image_size)
        value = self.speed_median if settings.speed is None else settings.speed
        speeds = torch.from_numpy(speed_windows(np.full(total, value, np.float32), self.network.emo_config.context))
        with torch.no_grad():
            reference = self.vae.encode(crop.image)                                   # [1, c, h, w]
        timings = {"emo_prepare": time.perf_counter() - began, "emo_sampling": 0.0, "emo_decode": 0.0}
        clips = self.sample_clips(reference, audio, speeds, region, settings, conditions.seed)
        paste_region = box_region(box, self.image_size) if settings.paste_region == "face" else None
        return (self._frames(clips, conditions.portrait.image, crop, settings, size, timings, paste_region), total,
                value, timings)

    def check(self, conditions: Any) -> None:
        """One sentence for a request EMO cannot serve."""
        if conditions.portrait.image is None:
            raise TalkingHeadError("EMO needs the portrait's photo.")
        if conditions.style.given or conditions.style.mix is not None:
            raise TalkingHeadError("EMO takes no speaking style (style video, emotion or style code); its motion "
                                   "follows the audio.")
        if conditions.guidance is not None and conditions.guidance != 1.0:
            raise TalkingHeadError("EMO has no classifier-free guidance; leave the guidance scale unset.")

    def _frames(self, clips: Iterator[torch.Tensor], photo: np.ndarray, crop: PortraitCrop, settings: EMOSampling,
                size: int, timings: dict[str, float], region: np.ndarray | None) -> Iterator[np.ndarray]:
        import cv2

        clock = time.perf_counter()
        for latents in clips:
            now = time.perf_counter()
            timings["emo_sampling"] += now - clock
            crops = self.decode(latents, settings.precision)
            clock = time.perf_counter()
            timings["emo_decode"] += clock - now
            for c in crops:
                yield paste(photo, c, crop.box, settings.feather, region) if settings.paste_back else \
                    cv2.resize(c, (size, size), interpolation=cv2.INTER_CUBIC)
            clock = time.perf_counter()

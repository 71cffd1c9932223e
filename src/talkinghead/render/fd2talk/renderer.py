"""FD2Talk's frame generator as a renderer (:class:`talkinghead.generators.Renderer`; FD2Talk 3.3).

The motion of any motion generator and one portrait -> frames, each generated from noise by the Diffusion UNet in
the latent space of the autoencoder, and decoded with the portrait's latent (``V_i = D([x, J_0])``).

A folder (``weights/fd2talk`` when shipped, next to the stage-1 DiTs) holds ``autoencoder/`` and ``unet/`` (named in
its ``talkinghead.json`` manifest's ``frames`` entry; ``frame_sampling`` there sets :class:`FrameSampling` fields).
Rendering, in stages:

1. the portrait's face crop at the UNet's training size, cut as the video corpus cut its crops (the crop side is
   ``crop_scale`` times the face's extent, centred on it; :class:`talkinghead.data.video.build.PortraitRenderer`),
   and its reference latent ``x = E(I)``;
2. the motion on the portrait as every renderer takes it: the expression composed with the portrait's own
   (:func:`talkinghead.face.model.compose_expression`), the pose placed by ``pose_mode``; the per-frame crop
   follows the projected face as in the corpus (:func:`talkinghead.data.video.frames.follow_crop`);
3. per chunk of ``batch_frames`` frames: DDIM from ``J_T ~ N(0, I)`` with x0 prediction (Eq. 5, 16), ``steps``
   steps, the conditions' tokens computed once per frame; ``D([x, J_0])``;
4. paste-back: each generated crop resized onto its box in the photo, only over the face (the hull of the photo's
   and the frame's face oval, feathered; :mod:`talkinghead.render.paste`) so the background and hair stay sharp,
   or over the whole crop (``paste_region = "crop"``), or the crop alone, resized to ``size``, without paste-back.

Choices the paper does not make (it gives 50 steps and nothing else about inference): the ``cpu`` preset uses 20
DDIM steps (speed; ``paper``: 50); every frame starts from the *same* noise draw (``shared_noise``), since frames
are generated one by one and independent draws make the appearance flicker from frame to frame. ``precision``:
``float32`` by default; ``bfloat16`` or ``auto`` (bfloat16 where the processor computes it natively,
:mod:`talkinghead.nn.precision`) run the UNet and the decoder under bfloat16 autocast, the sampler's arithmetic in
float32; the shipped manifest sets ``auto``.

Mouth guidance (the project's addition, not in the paper; ``mouth_guidance``, 1 = off): the UNet follows the mouth
channels of its condition weakly on faces it never saw (docs/fd2talk.md). With ``w != 1`` every step also predicts
the frame for the same condition with the mouth channels set to the reference's own (the mouth the reference crop
shows), and steps with ``x0 = x0_rest + w (x0_motion - x0_rest)``: classifier-free guidance's extrapolation (Ho and
Salimans 2022) against a *negative* condition instead of an empty one, so it needs no condition dropout in training
and amplifies only what the mouth's motion changes in the frame. It costs a second UNet pass per step.
``mouth_guidance_max_gap``: guidance only where the reference crop's lips are shut (its inner-lip gap over the
eye-corner distance as MediaPipe reads it, :func:`talkinghead.evaluation.mouth.image_gap`, the measure of
docs/mouth/measurements.md, at most this; a crop whose face is not found is not guided; None: every reference).
On real portraits (docs/fd2talk.md, "Mouth guidance") guidance made closed-lip photos follow the speech better and
open-mouthed ones worse. A likely reason: against a reference mouth open wider than speech opens it, the rest
condition is the widest mouth of the clip, so the guided difference points towards closing on every syllable.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np
import torch

from talkinghead.config import Config
from talkinghead.diffusion import ScheduleConfig, make_scheduler, sample
from talkinghead.errors import TalkingHeadError
from talkinghead.nn.precision import Precision, inference_precision, resolve_precision
from talkinghead.render.fd2talk.autoencoder import FrameAutoencoder
from talkinghead.render.fd2talk.perceptual import images_to_tensor, tensor_to_images
from talkinghead.render.fd2talk.unet import FrameUNet
from talkinghead.render.paste import PasteRegion, hull_region, paste
from talkinghead.sequence import MotionSequence, expression_for_layout, pose_for_portrait

#: the component folders of the frame generator
FRAME_COMPONENTS = ("autoencoder", "unet")


def frame_paths(folder: Path, manifest: dict[str, Any] | None = None) -> dict[str, Path]:
    """The frame generator's component folders in ``folder``: the manifest's ``frames`` entry names them (default:
    the component names)."""
    from talkinghead.generators import component_folders

    return component_folders(folder, (manifest or {}).get("frames"), FRAME_COMPONENTS)


def holds_frame_generator(folder: str | Path, manifest: dict[str, Any] | None = None) -> bool:
    """Whether ``folder`` has FD2Talk's frame generator (``manifest``: the one to read the names from; default the
    folder's own)."""
    from talkinghead.generators import read_manifest

    path = Path(folder)
    paths = frame_paths(path, manifest if manifest is not None else read_manifest(path))
    return all((p / "config.json").is_file() for p in paths.values())


@dataclass(frozen=True)
class FrameSampling(Config):
    """``steps`` of DDIM (``eta``), ``batch_frames`` frames per network call, ``shared_noise`` (one noise draw for
    every frame), ``seed``, ``paste_back`` and its ``feather`` (fraction of the crop side), ``follow`` (how closely
    the crop follows the face, as in the corpus), ``paste_region``: ``face`` (only the face: the hull of the
    photo's and the frame's face oval, :mod:`talkinghead.render.paste`) or ``crop`` (the whole crop); ``precision``
    of the UNet and the decoder; ``mouth_guidance`` (1: off) and ``mouth_guidance_max_gap`` (the largest lip gap of
    the portrait that is guided; None: any; see the module docstring)."""

    steps: int = 50
    eta: float = 0.0
    batch_frames: int = 25
    shared_noise: bool = True
    seed: int = 0
    paste_back: bool = True
    feather: float = 0.12
    follow: float = 0.5
    paste_region: PasteRegion = "face"
    precision: Precision = "float32"
    mouth_guidance: float = 1.0
    mouth_guidance_max_gap: float | None = None

    presets: ClassVar[dict[str, dict[str, Any]]] = {"tiny": {"steps": 2, "batch_frames": 4},
                                                    "cpu": {"steps": 20}, "paper": {}}

    def __post_init__(self) -> None:
        resolve_precision(self.precision)
        if not (math.isfinite(self.mouth_guidance) and self.mouth_guidance >= 0):
            raise TalkingHeadError(f"The mouth guidance must be a number of 0 or more, not {self.mouth_guidance}.")
        gap = self.mouth_guidance_max_gap
        if gap is not None and not (math.isfinite(gap) and gap >= 0):
            raise TalkingHeadError(f"The mouth guidance's largest lip gap must be a number of 0 or more, not {gap}.")


class FD2TalkFrameRenderer:
    """Portrait + motion -> frames with FD2Talk's UNet (see the module docstring)."""

    kind: ClassVar[str] = "renderer"
    name: ClassVar[str] = "fd2talk"
    capabilities: ClassVar[tuple[str, ...]] = ("paste-back", "diffusion")
    needs_weights: ClassVar[bool] = True

    def __init__(self, autoencoder: FrameAutoencoder, unet: FrameUNet, crop_scale: float,
                 sampling: FrameSampling | None = None, schedule: ScheduleConfig | None = None) -> None:
        self.autoencoder = autoencoder.eval()
        self.unet = unet.eval()
        self.crop_scale = crop_scale
        self.sampling = sampling or FrameSampling.preset("cpu")
        self.schedule = schedule or ScheduleConfig()
        self.image_size = int(autoencoder.config.image_size)  # type: ignore[attr-defined]

    @classmethod
    def from_pretrained(cls, directory: str | Path | None = None,
                        sampling: FrameSampling | None = None) -> FD2TalkFrameRenderer:
        """The frame generator in ``directory`` (default: the shipped ``weights/fd2talk``)."""
        from talkinghead.checkpoint import read_checkpoint_info
        from talkinghead.generators import model_folders

        _, manifest, paths = model_folders(
            directory, "fd2talk", FRAME_COMPONENTS, "FD2Talk frame generator",
            "train it with scripts/train_fd2talk_frames.sh, or render with the warp renderer", entry="frames")
        unet_info = read_checkpoint_info(paths["unet"])
        preset = manifest.get("frame_sampling") or {}
        return cls(FrameAutoencoder.from_pretrained(paths["autoencoder"]), FrameUNet.from_pretrained(paths["unet"]),
                   float(unet_info.extra.get("crop_scale", 2.0)),
                   sampling or FrameSampling.preset("cpu", **preset))

    # ------------------------------------------------------------------------------------------ stages
    def reference(self, portrait: Any) -> Any:
        """Stage 1: the portrait's crop renderer (:class:`PortraitRenderer` at the UNet's size)."""
        from talkinghead.data.video.build import PortraitRenderer

        if portrait.image is None:
            raise TalkingHeadError("FD2Talk's frame generator needs the portrait's photo.")
        return PortraitRenderer.for_portrait(portrait, self.image_size, self.crop_scale)

    @property
    def layout(self) -> Any:
        """The UNet's expression layout (:class:`talkinghead.sequence.ChannelLayout`; ARKit when it names none)."""
        from talkinghead.face.model import ARKIT_LAYOUT
        from talkinghead.sequence import ChannelLayout

        return ChannelLayout.from_dict(self.unet.layout) if self.unet.layout else ARKIT_LAYOUT

    def coefficients(self, motion: MotionSequence) -> np.ndarray:
        """The UNet's condition ``[T, E + 6]`` for a motion that is already the frames' own (expression composed with
        the portrait's, pose as rendered): its expression in the UNet's layout, then its pose."""
        return np.concatenate([expression_for_layout(motion, self.layout), motion.pose], axis=1).astype(np.float32)

    def portrait_coefficients(self, portrait: Any) -> np.ndarray:
        """The coefficients ``[E + 6]`` the portrait's photo shows (its own expression and pose), in the UNet's
        layout: the reference crop's motion, read by mouth guidance."""
        from talkinghead.face.model import ARKIT_LAYOUT

        still = MotionSequence(np.asarray(portrait.expression, np.float32)[None],
                               np.asarray(portrait.pose, np.float32)[None], ARKIT_LAYOUT)
        return self.coefficients(still)[0]

    def frame_motion(self, portrait: Any, motion: MotionSequence, pose_mode: str) -> tuple[np.ndarray, np.ndarray]:
        """Stage 2: the per-frame coefficients ``[T, E + 6]`` in the UNet's layout (:meth:`coefficients`) and the
        face meshes ``[T, 468, 2]`` (image px)."""
        from talkinghead.face.model import ARKIT_LAYOUT, compose_expression, project

        if len(motion) == 0:
            raise TalkingHeadError("The motion has no frames.")
        expression = compose_expression(portrait.expression, expression_for_layout(motion, ARKIT_LAYOUT))
        pose = pose_for_portrait(motion.pose, np.asarray(portrait.pose, np.float32), pose_mode).astype(np.float32)
        composed = MotionSequence(expression, pose, ARKIT_LAYOUT, motion.fps, motion.identity, motion.source)
        vertices = np.asarray(project(portrait.identity, expression, pose), np.float64)
        return self.coefficients(composed), vertices

    def rest_coefficients(self, coefficients: np.ndarray, reference_coefficients: np.ndarray) -> np.ndarray:
        """Mouth guidance's negative condition: ``coefficients [T, E + 6]`` with the mouth channels of the UNet's
        layout set to those of ``reference_coefficients [E + 6]`` (the reference crop's own)."""
        mouth = self.layout.indices("mouth")
        rest = np.array(coefficients, np.float32, copy=True)
        rest[:, mouth] = np.asarray(reference_coefficients, np.float32)[mouth]
        return rest

    def mouth_guidance_for(self, reference_crop: np.ndarray) -> float:
        """The mouth guidance for a reference crop ``[S, S, 3]`` uint8: the sampling's, or 1 (off) where the crop's
        inner-lip gap is above ``mouth_guidance_max_gap`` or no face is found in it (the crop upscaled to 256 px for
        the detector, as the mouth probe reads crops)."""
        from talkinghead.evaluation.mouth import image_gap

        cfg = self.sampling
        if cfg.mouth_guidance_max_gap is None or cfg.mouth_guidance == 1.0:
            return cfg.mouth_guidance
        big = cv2.resize(np.ascontiguousarray(reference_crop), (256, 256), interpolation=cv2.INTER_CUBIC)
        try:
            gap = image_gap(big)
        except TalkingHeadError:
            return 1.0
        return cfg.mouth_guidance if gap <= cfg.mouth_guidance_max_gap else 1.0

    @torch.no_grad()
    def generate_crops(self, reference_crop: np.ndarray, coefficients: np.ndarray,
                       reference_coefficients: np.ndarray | None = None,
                       mouth_guidance: float | None = None) -> Iterator[np.ndarray]:
        """Stage 3: crops ``[S, S, 3]`` uint8 for ``coefficients [T, E + 6]`` given the reference crop, lazily.
        ``reference_coefficients [E + 6]``: the coefficients the reference crop shows, read by mouth guidance only
        (default: the first frame's, as when the reference is the clip's first frame); ``mouth_guidance``: this
        call's (default: :meth:`mouth_guidance_for` the reference crop)."""
        cfg = self.sampling
        w = self.mouth_guidance_for(reference_crop) if mouth_guidance is None else float(mouth_guidance)
        guided = w != 1.0
        rest_all = self.rest_coefficients(
            coefficients, coefficients[0] if reference_coefficients is None else reference_coefficients) \
            if guided and len(coefficients) else None
        x = self.autoencoder.encode(images_to_tensor(reference_crop[None]))           # [1, d, h, w]
        shape = tuple(x.shape[1:])
        g = torch.Generator().manual_seed(cfg.seed)
        shared = torch.randn((1, *shape), generator=g)
        scheduler = make_scheduler(self.schedule.replace(eta=cfg.eta), "ddim")
        for start in range(0, len(coefficients), cfg.batch_frames):
            motion = torch.from_numpy(coefficients[start:start + cfg.batch_frames])
            n = len(motion)
            ref = x.expand(n, -1, -1, -1)
            noise = shared.expand(n, -1, -1, -1).clone() if cfg.shared_noise else torch.randn((n, *shape), generator=g)
            if rest_all is not None:                                           # [2n]: the motion, then the rest
                motion = torch.cat([motion, torch.from_numpy(rest_all[start:start + n])])
            twice = x.expand(len(motion), -1, -1, -1)
            with inference_precision(cfg.precision):
                tokens = self.unet.conditions(motion, twice)

                def denoise(latent: torch.Tensor, t: torch.Tensor, ref: torch.Tensor = twice,
                            motion: torch.Tensor = motion,
                            tokens: tuple[torch.Tensor, torch.Tensor] = tokens) -> torch.Tensor:
                    if len(motion) == len(latent):
                        return self.unet(latent, t, motion, ref, tokens=tokens).float()  # type: ignore[no-any-return]
                    both = self.unet(torch.cat([latent, latent]), torch.cat([t, t]), motion, ref, tokens=tokens).float()
                    moving, rest = both.chunk(2)
                    return rest + w * (moving - rest)

                j0 = sample(denoise, (n, *shape), scheduler, cfg.steps, eta=cfg.eta, initial_noise=noise)
                images = self.autoencoder.decode(ref, j0).float()
            yield from tensor_to_images(images).numpy()

    def render(self, portrait: Any, motion: MotionSequence, size: int,
               pose_mode: str = "absolute") -> Iterator[np.ndarray]:
        """Frames of ``motion`` on ``portrait``, lazily: the whole photo with the face pasted back (``paste_back``),
        else the face crop resized to ``size``."""
        from talkinghead.data.video.frames import face_boxes, follow_crop

        crops_renderer = self.reference(portrait)
        coefficients, vertices = self.frame_motion(portrait, motion, pose_mode)
        _, boxes = crops_renderer.place(follow_crop(face_boxes(vertices), crops_renderer.side, motion.fps,
                                                    self.sampling.follow))
        crops = self.generate_crops(crops_renderer.still(), coefficients, self.portrait_coefficients(portrait))
        if not self.sampling.paste_back:
            return (cv2.resize(c, (size, size), interpolation=cv2.INTER_CUBIC) for c in crops)
        if self.sampling.paste_region == "crop":
            return (paste(portrait.image, c, box, self.sampling.feather) for c, box in zip(crops, boxes, strict=False))
        return self._paste_faces(portrait, crops, boxes, vertices, crops_renderer.source)

    def _paste_faces(self, portrait: Any, crops: Iterator[np.ndarray], boxes: np.ndarray, vertices: np.ndarray,
                     source: np.ndarray) -> Iterator[np.ndarray]:
        """Each crop pasted back over the hull of the photo's face oval (``source [468, 2]``) and the frame's
        (``vertices [T, 468, 2]``)."""
        from talkinghead.render.mesh import face_oval

        oval = list(face_oval())
        own = source[oval, :2]
        s = self.image_size
        for crop, box, frame in zip(crops, boxes, vertices, strict=False):
            k = float(box[2]) / s
            points = (np.concatenate([own, frame[oval, :2]]) - np.asarray(box[:2], np.float64)) / k
            yield paste(portrait.image, crop, box, self.sampling.feather, hull_region(points, s))

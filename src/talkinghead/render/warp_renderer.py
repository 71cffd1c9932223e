"""The default renderer: portrait + face motion -> frames by a geometric mesh warp (issue 3, item 4).

DESIGN.md lists it as the training-free default beside the papers' learned renderers (DreamTalk and
Dimitra render with PIRenderer, FD2Talk with a latent diffusion UNet). It keeps the portrait's own
pixels, so identity is preserved exactly: rendering the portrait's own fitted coefficients returns
the portrait.

Stages per frame:

1. the face model projects the frame's expression and pose to 468 vertices in portrait pixels;
2. a square face crop (``size`` 256 or 512 pixels, ``crop_scale`` times the face-oval extent) is
   warped backwards from that target mesh to the source mesh (the projection of the portrait's *own*
   fitted coefficients, not the raw landmarks), over the face triangulation extended with anchor rings
   and the fixed crop border (``mesh.py``, ``warp.py``);
3. the mouth interior and closed lids are painted where the warp has nothing to show (``synthesis.py``);
4. with ``paste_back`` the crop's displacement field is upsampled to the photo's own resolution, the
   original photo is resampled with it (no loss of detail from the crop size), the painted regions are
   drawn at full resolution, and the result is blended into the photo with a feathered mask, so the user
   gets the whole picture back at its own size.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np

from talkinghead.config import Config
from talkinghead.errors import TalkingHeadError
from talkinghead.face.topology import NUM_VERTICES
from talkinghead.render.mesh import face_oval, face_triangles
from talkinghead.render.synthesis import MouthPalette, mouth_palette, paint_eyelids, paint_mouth
from talkinghead.render.warp import MeshWarper, mean_value_weights, untangle
from talkinghead.sequence import MotionSequence, expression_for_layout, pose_for_portrait

Projector = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (expression [T,E], pose [T,6]) -> [T,468,2]


@dataclass(frozen=True)
class WarpRendererConfig(Config):
    """Settings of :class:`WarpRenderer`.

    ``size``: crop side in pixels (the warp's working resolution); ``crop_scale``: crop side over the
    face-oval extent; ``ring_scales``: anchor rings (the face oval scaled about its centre);
    ``ring_weights``: how much of the head's rigid (affine) motion each ring follows;
    ``ring_local_weights``: how much of the oval's own non-rigid motion (e.g. the chin on jaw open);
    ``border_points``: fixed points per crop side;
    ``feather``: fraction of the crop side over which the paste-back fades to the photo;
    ``paste_back``: frames are the whole photo (else the crop); ``mouth``/``eyelids``: paint the mouth
    interior / lash lines; ``mouth_full_at``: extra lip gap (in mouth widths) at which the painted
    interior is fully opaque.
    """

    size: int = 256
    crop_scale: float = 2.0
    ring_scales: tuple[float, ...] = (1.3, 1.65)
    ring_weights: tuple[float, ...] = (0.95, 0.6)
    ring_local_weights: tuple[float, ...] = (0.85, 0.35)
    border_points: int = 8
    feather: float = 0.1
    paste_back: bool = True
    mouth: bool = True
    eyelids: bool = True
    mouth_full_at: float = 0.06

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {"size": 128},
        "cpu": {"size": 256},
        "paper": {"size": 512},
    }

    def __post_init__(self) -> None:
        if not 64 <= self.size <= 2048:
            raise TalkingHeadError(f"The render size must be between 64 and 2048 pixels, got {self.size}.")
        if self.crop_scale < 1.2:
            raise TalkingHeadError(f"crop_scale must be at least 1.2, got {self.crop_scale}.")
        if not self.ring_scales or not len(self.ring_scales) == len(self.ring_weights) == len(self.ring_local_weights):
            raise TalkingHeadError("ring_scales, ring_weights and ring_local_weights must be non-empty and "
                                   "of equal length.")
        if any(b <= a for a, b in zip((1.0, *self.ring_scales), self.ring_scales, strict=False)):
            raise TalkingHeadError("ring_scales must be above 1 and increasing.")
        if max(self.ring_scales) >= self.crop_scale:
            raise TalkingHeadError("The outermost ring must lie inside the crop (ring_scales < crop_scale).")
        if not all(0.0 <= w <= 1.0 for w in self.ring_weights + self.ring_local_weights):
            raise TalkingHeadError("ring_weights and ring_local_weights must lie between 0 and 1.")
        if self.border_points < 1 or not 0.0 <= self.feather < 0.5:
            raise TalkingHeadError("border_points must be positive and feather between 0 and 0.5.")


@dataclass(frozen=True)
class CropBox:
    """A square face crop: ``crop = (image - origin) * scale`` in pixel-centre coordinates."""

    origin: tuple[float, float]
    side: float
    size: int

    @property
    def scale(self) -> float:
        return self.size / self.side

    @classmethod
    def around(cls, face: np.ndarray, size: int, crop_scale: float) -> CropBox:
        oval = face[list(face_oval())]
        lo, hi = oval.min(0), oval.max(0)
        side = crop_scale * float(max(hi - lo))
        centre = 0.5 * (lo + hi)
        return cls((float(centre[0] - side / 2), float(centre[1] - side / 2)), side, size)

    def to_crop(self, points: np.ndarray) -> np.ndarray:
        return (np.asarray(points, dtype=np.float64) - self.origin) * self.scale

    def to_image(self, points: np.ndarray) -> np.ndarray:
        return np.asarray(points, dtype=np.float64) / self.scale + self.origin

    def cut(self, image: np.ndarray) -> np.ndarray:
        """The crop ``[size, size, 3]`` (anti-aliased when shrinking, edge-replicated outside the photo)."""
        if self.scale < 0.8:
            image = cv2.GaussianBlur(image, (0, 0), 0.45 / self.scale)
        m = np.array([[1 / self.scale, 0.0, self.origin[0]], [0.0, 1 / self.scale, self.origin[1]]])
        return cv2.warpAffine(image, m, (self.size, self.size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_REPLICATE)


def _check_image(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise TalkingHeadError("The portrait must be an RGB uint8 image of shape [H, W, 3].")
    if min(image.shape[:2]) < 16:
        raise TalkingHeadError("The portrait is too small to render (under 16 pixels).")
    return np.ascontiguousarray(image)


def _check_vertices(vertices: np.ndarray) -> np.ndarray:
    vertices = np.asarray(vertices, dtype=np.float64)
    if vertices.ndim != 2 or vertices.shape[0] < NUM_VERTICES or vertices.shape[1] < 2:
        raise TalkingHeadError(f"Face vertices must be [{NUM_VERTICES}, 2] pixels, got {list(vertices.shape)}.")
    vertices = vertices[:NUM_VERTICES, :2]
    if not np.isfinite(vertices).all():
        raise TalkingHeadError("Face vertices contain NaN or infinite values.")
    return vertices


class WarpRenderer:
    """Renders frames of one portrait from face vertices or face-model motion.

    ``image``: the portrait ``[H, W, 3] uint8``; ``source``: its face as the face model reproduces it
    (the projection of its own fitted coefficients) ``[468, 2]`` in image pixels; ``projector`` (optional)
    maps ``(expression [T, E], pose [T, 6])`` to vertices ``[T, 468, 2]`` for :meth:`render`.
    """

    def __init__(self, image: np.ndarray, source: np.ndarray, config: WarpRendererConfig | None = None,
                 projector: Projector | None = None) -> None:
        self.config = config or WarpRendererConfig()
        self.image = _check_image(image)
        self.source = _check_vertices(source)
        self.projector = projector
        cfg = self.config
        self.box = CropBox.around(self.source, cfg.size, cfg.crop_scale)
        self.crop = self.box.cut(self.image)
        self.crop_source = self.box.to_crop(self.source)
        self.warper = MeshWarper.create(self.crop_source, cfg.size, cfg.ring_scales, cfg.ring_weights,
                                        cfg.ring_local_weights, cfg.border_points)
        self._prepare_paste()

    # -- construction from the face model --------------------------------------------------------------
    @classmethod
    def from_fit(cls, image: np.ndarray, identity: dict[str, np.ndarray], expression: np.ndarray,
                 pose: np.ndarray, config: WarpRendererConfig | None = None) -> WarpRenderer:
        """A renderer whose source mesh is the projection of the portrait's own fitted coefficients.

        ``expression [E]`` and ``pose [6]`` are the portrait's fit (``talkinghead.face.model``).
        """
        from talkinghead.face import model as face_model

        def projector(expr: np.ndarray, pose_: np.ndarray) -> np.ndarray:
            return np.asarray(face_model.project(identity, expr, pose_))[..., :2]

        source = projector(np.asarray(expression, np.float32)[None], np.asarray(pose, np.float32)[None])[0]
        return cls(image, source, config, projector)

    # -- per frame --------------------------------------------------------------------------------------
    def crop_map(self, vertices: np.ndarray) -> np.ndarray:
        """Backward map ``[size, size, 2]`` (crop pixels) for face ``vertices [468, 2]`` in image pixels."""
        return self.warper.coordinate_map(self.box.to_crop(self._target(vertices)))

    def _target(self, vertices: np.ndarray) -> np.ndarray:
        """Checked face ``vertices [468, 2]`` (image pixels) with fold-overs around the mouth repaired
        (:func:`talkinghead.render.warp.untangle`); the warp and the painted mouth both use these."""
        weights: np.ndarray | None = self.__dict__.get("_mean_value_weights")
        if weights is None:
            weights = self.__dict__["_mean_value_weights"] = mean_value_weights(self.source, face_triangles())
            self.__dict__["_fill_solvers"] = {}
        return untangle(_check_vertices(vertices), self.source, weights=weights,
                        solvers=self.__dict__["_fill_solvers"])

    def render_crop(self, vertices: np.ndarray) -> np.ndarray:
        """The face crop ``[size, size, 3] uint8`` showing face ``vertices [468, 2]`` (image pixels)."""
        target = self.box.to_crop(self._target(vertices))
        cmap = self.warper.coordinate_map(target)
        frame = cv2.remap(self.crop, cmap[..., 0], cmap[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        self._paint(frame, target, self.crop_source, self.crop, 1.0)
        return frame

    def render_image(self, vertices: np.ndarray) -> np.ndarray:
        """The whole photo ``[H, W, 3] uint8`` at its own size, with the warped face pasted back."""
        vertices = self._target(vertices)
        cmap = self.warper.coordinate_map(self.box.to_crop(vertices))
        x0, y0, x1, y1 = self._region
        disp = cmap - self._crop_grid
        d = cv2.remap(disp, self._qx, self._qy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                      borderValue=(0.0, 0.0, 0.0, 0.0))
        d /= self.box.scale
        warped = cv2.remap(self.image, self._px + d[..., 0], self._py + d[..., 1], cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REPLICATE)
        offset = np.array([x0, y0], dtype=np.float64)
        self._paint(warped, vertices - offset, self.source - offset, self.image[y0:y1, x0:x1], 1.0 / self.box.scale)
        out = self.image.copy()
        # feathered paste-back: warped * mask + photo * (1 - mask), rounded (OpenCV's vectorised blend)
        out[y0:y1, x0:x1] = cv2.blendLinear(warped, self._photo_region, self._mask, self._unmask)
        return out

    def render_vertices(self, vertices: np.ndarray) -> np.ndarray:
        """One frame: the whole photo with ``paste_back`` (default), else the crop."""
        return self.render_image(vertices) if self.config.paste_back else self.render_crop(vertices)

    def render(self, expression: np.ndarray, pose: np.ndarray, chunk: int = 64,
               workers: Any | None = None) -> Iterator[np.ndarray]:
        """Frames ``[H, W, 3]`` (or crops) for ``expression [T, E]`` and ``pose [T, 6]``, lazily.

        Vertices are projected ``chunk`` frames at a time, so memory stays bounded for long clips.
        ``workers``: a :class:`talkinghead.render.parallel.RenderWorkers` over this renderer, which then
        draws the frames in its processes (the same frames).
        """
        if self.projector is None:
            raise TalkingHeadError("This renderer was built from vertices; build it with from_fit to render motion.")
        expression = np.asarray(expression, np.float32)
        pose = np.asarray(pose, np.float32)
        if expression.ndim != 2 or pose.shape != (len(expression), 6):
            raise TalkingHeadError(f"Motion must be expression [T, E] and pose [T, 6], got "
                                   f"{list(expression.shape)} and {list(pose.shape)}.")
        vertices = self._vertices(expression, pose, chunk)
        if workers is not None:
            if workers.renderer is not self:
                raise TalkingHeadError("The render workers were started for another renderer.")
            yield from workers.frames(vertices)
            return
        for v in vertices:
            yield self.render_vertices(v)

    def _vertices(self, expression: np.ndarray, pose: np.ndarray, chunk: int) -> Iterator[np.ndarray]:
        assert self.projector is not None
        for start in range(0, len(expression), chunk):
            yield from self.projector(expression[start:start + chunk], pose[start:start + chunk])

    # -- helpers ----------------------------------------------------------------------------------------
    @property
    def mouth_palette(self) -> MouthPalette:
        """The mouth interior's colours, sampled once from the portrait (lit like its face)."""
        palette: MouthPalette | None = self.__dict__.get("_mouth_palette")
        if palette is None:
            palette = self.__dict__["_mouth_palette"] = mouth_palette(self.image, self.source)
        return palette

    def _paint(self, frame: np.ndarray, target: np.ndarray, source: np.ndarray, photo: np.ndarray,
               crop_pixel: float) -> None:
        """Stage 3 on ``frame`` (crop or photo region); ``photo``: the portrait in the same pixel
        coordinates as ``source`` (its own mouth interior is reused where its lips are parted);
        ``crop_pixel``: the size of one warp (crop) pixel in ``frame`` pixels."""
        if self.config.mouth:
            paint_mouth(frame, target, source, self.config.mouth_full_at, self.mouth_palette, photo,
                        margin=1.5 * crop_pixel)
        if self.config.eyelids:
            paint_eyelids(frame, target, source)

    def _prepare_paste(self) -> None:
        """Full-resolution sampling grids of the crop region and its feathered paste-back mask."""
        h, w = self.image.shape[:2]
        ox, oy = self.box.origin
        x0, y0 = max(int(np.floor(ox)), 0), max(int(np.floor(oy)), 0)
        x1, y1 = min(int(np.ceil(ox + self.box.side)) + 1, w), min(int(np.ceil(oy + self.box.side)) + 1, h)
        if x1 <= x0 or y1 <= y0:
            raise TalkingHeadError("The face lies outside the portrait.")
        self._region = (x0, y0, x1, y1)
        self._photo_region = np.ascontiguousarray(self.image[y0:y1, x0:x1])
        py, px = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        self._px, self._py = px, py
        k = self.box.scale
        self._qx = ((px - ox) * k).astype(np.float32)
        self._qy = ((py - oy) * k).astype(np.float32)
        s = self.config.size
        ys, xs = np.mgrid[0:s, 0:s].astype(np.float32)
        self._crop_grid = np.stack([xs, ys], axis=-1)
        dist = np.minimum.reduce([self._qx, self._qy, s - 1 - self._qx, s - 1 - self._qy]) / s
        feather = max(self.config.feather, 1e-6)
        t = np.clip(dist / feather, 0.0, 1.0)
        self._mask = (t * t * (3 - 2 * t)).astype(np.float32)  # [h, w]
        self._unmask = 1.0 - self._mask


class WarpFrameRenderer:
    """The warp renderer behind the :class:`talkinghead.generators.Renderer` protocol: portrait + its fit +
    motion -> frames (the whole photo with ``paste_back``, else the face crop). No weights."""

    kind: ClassVar[str] = "renderer"
    name: ClassVar[str] = "warp"
    capabilities: ClassVar[tuple[str, ...]] = ("paste-back", "identity-exact")
    needs_weights: ClassVar[bool] = False

    def __init__(self, config: WarpRendererConfig | None = None) -> None:
        self.config = config or WarpRendererConfig()

    @classmethod
    def from_pretrained(cls, directory: str | Path | None = None) -> WarpFrameRenderer:
        """The warp renderer has no weights; a folder, if given, is not read."""
        return cls()

    def renderer_for(self, portrait: Any, size: int) -> WarpRenderer:
        """A :class:`WarpRenderer` over ``portrait`` (a :class:`talkinghead.generators.Portrait`: photo,
        identity, its own expression and pose) at face-crop ``size``."""
        if portrait.image is None:
            raise TalkingHeadError("The warp renderer needs the portrait's photo.")
        return WarpRenderer.from_fit(portrait.image, portrait.identity, portrait.expression, portrait.pose,
                                     self.config.replace(size=size))

    def render(self, portrait: Any, motion: MotionSequence, size: int,
               pose_mode: str = "absolute", workers: Any | None = None) -> Iterator[np.ndarray]:
        """Frames ``[H, W, 3]`` uint8 of ``motion`` on ``portrait``, lazily (see :func:`render_motion`).
        ``workers``: render processes started for this portrait and size
        (:func:`talkinghead.render.parallel.start_workers`), else the frames are drawn in this process.

        The motion's expression is absolute (relative to the closed rest face): it replaces the
        portrait's own articulation (jaw, lip parting: the lips close where the motion closes them) and
        adds to the rest of the portrait's expression (its smile, brows), see
        :func:`talkinghead.face.model.compose_expression`.
        """
        from talkinghead.face.model import ARKIT_LAYOUT, compose_expression

        if len(motion) and np.asarray(portrait.expression).shape == (ARKIT_LAYOUT.size,):
            expression = compose_expression(portrait.expression, expression_for_layout(motion, ARKIT_LAYOUT))
            motion = MotionSequence(expression, motion.pose, ARKIT_LAYOUT, motion.fps, motion.identity,
                                    motion.source)
        renderer = workers.renderer if workers is not None else self.renderer_for(portrait, size)
        return render_motion(renderer, motion, portrait.pose, pose_mode, workers)


def render_motion(renderer: WarpRenderer, motion: MotionSequence, fitted_pose: np.ndarray,
                  pose_mode: str = "absolute", workers: Any | None = None) -> Iterator[np.ndarray]:
    """Frames of ``motion`` (any layout sharing channels with the face model's ARKit layout), lazily;
    ``workers`` as in :meth:`WarpRenderer.render`."""
    from talkinghead.face.model import ARKIT_LAYOUT

    if len(motion) == 0:
        raise TalkingHeadError("The motion has no frames.")
    expression = expression_for_layout(motion, ARKIT_LAYOUT)
    pose = pose_for_portrait(motion.pose, np.asarray(fitted_pose, np.float32), pose_mode)
    return renderer.render(expression, pose, workers=workers)


def render_video(image_path: Path, motion_path: Path, output: Path, audio_path: str | Path | None = None,
                 size: int = 256, paste_back: bool = True, pose_mode: str = "absolute",
                 face_index: int | None = None) -> Path:
    """Fit the portrait, render the motion file over it and write an mp4 (the ``render`` command)."""
    from talkinghead.allocator import keep_freed_blocks
    from talkinghead.generators import Portrait
    from talkinghead.io.audio import load_audio
    from talkinghead.io.image import load_image
    from talkinghead.io.video import RENDER_AHEAD, write_video
    from talkinghead.log import log_event, progress
    from talkinghead.render.parallel import one_blas_thread, start_workers

    if Path(output).suffix.lower() != ".mp4":
        raise TalkingHeadError(f"The output {output} should end in .mp4.")
    motion = MotionSequence.load(motion_path)
    audio = load_audio(audio_path) if audio_path is not None else None
    image = load_image(image_path)
    portrait = Portrait.fit(image, face_index)
    renderer = WarpFrameRenderer(WarpRendererConfig(paste_back=paste_back))
    keep_freed_blocks()
    with contextlib.ExitStack() as stack:
        workers = start_workers(renderer, portrait, size, len(motion), 1)
        if workers is not None:
            stack.enter_context(workers)
        frames = progress(renderer.render(portrait, motion, size, pose_mode, workers=workers), "rendering",
                          total=len(motion))
        with one_blas_thread():
            write_video(output, frames, motion.fps, audio=audio, prefetch=RENDER_AHEAD)  # rendered while encoding
    log_event("rendered", frames=len(motion), size=size, output=str(output))
    return Path(output)

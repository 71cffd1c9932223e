"""``video-corpus``: a motion corpus rendered on many real portraits as face-crop videos (issue 14, item 1).

``build_video_corpus(motion_data, portraits, out, VideoCorpusConfig(...))`` writes a video dataset
(:mod:`talkinghead.data.video.format`). In numbered stages:

1. read the motion corpus and find the portraits (:mod:`.portraits`); split the portraits by identity;
2. plan: a seeded selection of ``clips`` motion clips (all when 0) keeping the splits' shares; each is
   rendered on ``portraits_per_clip`` identities *of its own split* (a test clip: a test speaker's speech
   and motion on a test identity's face, neither seen in training), identities taken in turn so that
   every identity gets about as many clips and a speaker's clips spread over many faces;
3. fit every portrait once (MediaPipe + the face model; cached in ``<out>/portraits/``, with the still
   portrait's own crop as ``<id>.png``);
4. per clip: the motion on the portrait as the default pipeline renders it (expression composed with the
   portrait's own, :func:`~talkinghead.face.model.compose_expression`; the clip's head pose added to the
   portrait's), projected to the face mesh; the face boxes, a crop of constant side that follows the
   smoothed face centre (:func:`~.frames.follow_crop`), the head speed (:func:`~.frames.head_speed`);
5. frames: the warp renderer (:mod:`talkinghead.render.warp_renderer`) renders a working crop with a margin
   around the portrait's face; the following crop is cut from it at whole pixels (same pixel size: no
   resampling); H.264 (:func:`~.frames.encode_frames`), then the labels, each atomically.

Workers are spawned processes (they never run MediaPipe: portraits are fitted in the parent and sent to each worker
once; forked workers could inherit a lock held by one of the parent's threads and wait on it for ever). A run
resumes (clips on disk are skipped, a killed worker's temporary files are removed) and ``shard=(i, n)``
makes only the clips whose stable hash is ``i`` modulo ``n``.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from talkinghead.config import Config
from talkinghead.data.dataset import SPLITS, ClipMeta, Dataset
from talkinghead.data.speakers import seed_for
from talkinghead.data.video.format import SIZES, VideoClip, VideoClipMeta, VideoDatasetInfo, VideoDatasetWriter
from talkinghead.data.video.frames import (
    CodecConfig,
    box_extent,
    boxes_in_crop,
    face_boxes,
    follow_crop,
    head_speed,
)
from talkinghead.data.video.portraits import (
    FittedPortrait,
    PortraitSource,
    find_portraits,
    fit_portraits,
    identity_splits,
)
from talkinghead.errors import TalkingHeadError
from talkinghead.io.files import atomic_path
from talkinghead.log import log_event, logger, progress

#: the working crop's margin on each side, as a fraction of the output crop: room for the crop to follow
MARGIN = 0.125


@dataclass(frozen=True)
class VideoCorpusConfig(Config):
    """What to render. ``size``: crop side in pixels (128, 256 or 512); ``crop_scale``: crop side over the
    face's size (its mesh bounding box's larger side); ``clips``: motion clips to use (0 = all);
    ``portraits_per_clip``: identities each is rendered on; identity splits drawn with ``val_fraction`` /
    ``test_fraction`` unless ``test_identities`` / ``val_identities`` name them; ``astronaut``: add
    scikit-image's astronaut; ``follow``: seconds over which the crop's centre is smoothed; ``crf``,
    ``gop``, ``pix_fmt``: H.264 storage (:class:`~.frames.CodecConfig`)."""

    size: int = 128
    crop_scale: float = 2.0
    clips: int = 0
    portraits_per_clip: int = 1
    seed: int = 0
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    test_identities: tuple[str, ...] = ()
    val_identities: tuple[str, ...] = ()
    astronaut: bool = True
    follow: float = 0.5
    crf: int = 14
    gop: int = 16
    pix_fmt: str = "yuv444p"
    workers: int = 2

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {"workers": 1},
        "cpu": {"clips": 1000},
        "paper": {"size": 512},
    }

    def __post_init__(self) -> None:
        if self.size not in SIZES:
            raise TalkingHeadError(f"The crop size must be 128, 256 or 512, got {self.size}.")
        if not 1.4 <= self.crop_scale <= 3.0:
            raise TalkingHeadError(f"The crop scale must be between 1.4 and 3 face sizes, got {self.crop_scale}.")
        if self.clips < 0 or self.portraits_per_clip < 1:
            raise TalkingHeadError("Use a non-negative number of clips and at least one portrait per clip.")
        if not 0 <= self.val_fraction < 1 or not 0 <= self.test_fraction < 1:
            raise TalkingHeadError("Split fractions must be in [0, 1).")
        if not 0 <= self.follow <= 10:
            raise TalkingHeadError(f"The crop's smoothing must be between 0 and 10 seconds, got {self.follow}.")
        if self.workers < 1:
            raise TalkingHeadError("Use at least one worker.")
        self.codec()

    def codec(self) -> CodecConfig:
        return CodecConfig(crf=self.crf, gop=self.gop, pix_fmt=self.pix_fmt)


@dataclass(frozen=True)
class VideoClipPlan:
    """One clip to render: motion clip ``motion_id`` on portrait ``portrait``."""

    id: str
    motion_id: str
    portrait: str
    identity: str
    split: str


def select_motion_clips(rows: list[ClipMeta], count: int, seed: int) -> list[ClipMeta]:
    """``count`` motion clips (all when 0 or more than there are), drawn per split in proportion to it."""
    if count == 0 or count >= len(rows):
        return sorted(rows, key=lambda r: r.id)
    chosen: list[ClipMeta] = []
    for split in SPLITS:
        pool = sorted((r for r in rows if r.split == split), key=lambda r: r.id)
        if not pool:
            continue
        take = max(1, round(count * len(pool) / len(rows)))
        order = np.random.default_rng(seed_for("video-clips", seed, split)).permutation(len(pool))[:take]
        chosen.extend(pool[i] for i in order)
    return sorted(chosen, key=lambda r: r.id)


def plan_video_corpus(rows: list[ClipMeta], portraits: list[PortraitSource], splits: dict[str, str],
                      config: VideoCorpusConfig) -> tuple[list[VideoClipPlan], int]:
    """The clips to render (sorted by id) and how many motion clips had no identity of their split."""
    by_identity: dict[str, list[PortraitSource]] = {}
    for p in portraits:
        by_identity.setdefault(p.identity, []).append(p)
    plans: list[VideoClipPlan] = []
    dropped = 0
    chosen = select_motion_clips(rows, config.clips, config.seed)
    for split in SPLITS:
        names = sorted(n for n in by_identity if splits.get(n) == split)
        names = [names[i] for i in np.random.default_rng(seed_for("identity-order", config.seed, split))
                 .permutation(len(names))]
        selected = [r for r in chosen if r.split == split]
        if not names:
            dropped += len(selected)
            continue
        per_clip = min(config.portraits_per_clip, len(names))
        for j, row in enumerate(selected):
            for k in range(per_clip):
                identity = names[(j * per_clip + k) % len(names)]
                photos = by_identity[identity]
                photo = photos[seed_for("photo", config.seed, row.id, identity) % len(photos)]
                plans.append(VideoClipPlan(f"{row.id}__{photo.id}", row.id, photo.id, identity, split))
    return sorted(plans, key=lambda p: p.id), dropped


def in_shard(clip_id: str, shard: tuple[int, int]) -> bool:
    return seed_for("shard", clip_id) % shard[1] == shard[0]


# ------------------------------------------------------------------------------------------ rendering

class PortraitRenderer:
    """The warp renderer over one portrait, set up for crops of ``size`` that can follow the head.

    It renders a working crop of ``size + 2 * pad`` pixels centred on the portrait's own face, at the output
    crop's pixel size; :meth:`frames` cuts each output crop from it at whole pixels.
    """

    def __init__(self, portrait: FittedPortrait, size: int, crop_scale: float) -> None:
        from talkinghead.face.model import project
        from talkinghead.render.mesh import face_oval
        from talkinghead.render.warp_renderer import WarpRenderer, WarpRendererConfig

        self.portrait = portrait
        self.size = size
        self.pad = int(round(MARGIN * size))
        source = np.asarray(project(portrait.identity, portrait.expression, portrait.pose), np.float64)
        self.source = source  # the portrait's own face [468, 2], image px
        self.side = float(crop_scale * box_extent(face_boxes(source[None]))[0])  # output crop side, image px
        work = size + 2 * self.pad
        oval = source[list(face_oval())]
        oval_extent = float((oval.max(0) - oval.min(0)).max())
        config = WarpRendererConfig(size=work, crop_scale=self.side * work / size / oval_extent, paste_back=False)
        self.warp = WarpRenderer.from_fit(portrait.image, portrait.identity, portrait.expression, portrait.pose,
                                          config)
        self.pixel = self.warp.box.side / work  # image pixels per crop pixel (equal for both crops)

    @classmethod
    def for_portrait(cls, portrait: Any, size: int, crop_scale: float) -> PortraitRenderer:
        """Over a generator's :class:`talkinghead.generators.Portrait` (photo, identity, its own expression and pose),
        as a frame generator trained on this corpus's crops cuts its reference."""
        fitted = FittedPortrait(PortraitSource("portrait", "portrait", None), portrait.image, portrait.identity,
                                np.asarray(portrait.expression, np.float32), np.asarray(portrait.pose, np.float32))
        return cls(fitted, size, crop_scale)

    def still(self) -> np.ndarray:
        """The portrait's own crop ``[size, size, 3]`` (centred on its face, no motion)."""
        p = self.pad
        return np.ascontiguousarray(self.warp.crop[p:p + self.size, p:p + self.size])

    def place(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Wanted crops ``[T, 3]`` (image px) -> whole-pixel offsets in the working crop ``[T, 2]`` and the
        crops actually cut ``[T, 3]`` (clamped to the working crop)."""
        origin = np.asarray(self.warp.box.origin, np.float64)
        offset = np.clip(np.round((crops[:, :2] - origin) / self.pixel), 0, 2 * self.pad).astype(np.int64)
        placed = np.empty((len(crops), 3))
        placed[:, :2] = origin + offset * self.pixel
        placed[:, 2] = self.size * self.pixel
        return offset, placed

    def frames(self, vertices: np.ndarray, offsets: np.ndarray) -> Iterator[np.ndarray]:
        """Output crops ``[size, size, 3]`` for face meshes ``vertices [T, 468, 2]`` (image px), lazily."""
        s = self.size
        for v, (ox, oy) in zip(vertices, offsets, strict=True):
            work = self.warp.render_crop(v)
            yield np.ascontiguousarray(work[oy:oy + s, ox:ox + s])


def render_clip(plan: VideoClipPlan, clip: Any, renderer: PortraitRenderer, config: VideoCorpusConfig
                ) -> tuple[VideoClip, Iterator[np.ndarray]]:
    """Stage 4 for one motion clip (a :class:`talkinghead.data.dataset.Clip`) on one portrait: the labels
    and the lazy frames (stage 5)."""
    from talkinghead.face.model import ARKIT_LAYOUT, compose_expression, project
    from talkinghead.sequence import MotionSequence, expression_for_layout

    portrait = renderer.portrait
    drive = expression_for_layout(clip.motion, ARKIT_LAYOUT)
    expression = compose_expression(portrait.expression, drive)
    pose = (portrait.pose[None, :] + clip.motion.pose).astype(np.float32)
    vertices = np.asarray(project(portrait.identity, expression, pose), np.float64)  # [T, 468, 2]
    boxes = face_boxes(vertices)
    offsets, crops = renderer.place(follow_crop(boxes, renderer.side, clip.motion.fps, config.follow))
    m: ClipMeta = clip.meta
    meta = VideoClipMeta(plan.id, m.speaker, plan.identity, plan.portrait, m.emotion, m.intensity, plan.split,
                         source=f"render:warp:{m.source}")
    motion = MotionSequence(expression, pose, ARKIT_LAYOUT, clip.motion.fps, portrait.identity,
                            f"warp:{m.id}:{plan.portrait}")
    arrays = {"drive_expression": drive, "drive_pose": clip.motion.pose,
              "portrait_expression": portrait.expression, "portrait_pose": portrait.pose}
    video = VideoClip(meta, motion, boxes_in_crop(boxes, crops, renderer.size), head_speed(pose),
                      crops.astype(np.float32), np.asarray(clip.audio, np.float32), dict(clip.features),
                      list(clip.phones), clip.transcript, arrays, {"motion_clip": m.id, "renderer": "warp"})
    return video, renderer.frames(vertices, offsets)


# ------------------------------------------------------------------------------------ parallel rendering

_WORKER: dict[str, Any] = {}
SYNTHETIC_COMMENT = "synthetic content: generated by talkinghead (warp renderer)"


def _worker_init(motion_root: str, out: str, info: dict[str, Any], portraits: dict[str, FittedPortrait],
                 config: dict[str, Any], pool: bool) -> None:
    from talkinghead.log import set_quiet

    if pool:
        import cv2

        set_quiet(True)
        cv2.setNumThreads(1)
    _WORKER.update(motion=Dataset(motion_root), out=out, info=info, portraits=portraits,
                   config=VideoCorpusConfig.from_dict(config), renderers={}, writer=None)


def _render_one(plan: VideoClipPlan) -> str:
    config: VideoCorpusConfig = _WORKER["config"]
    writer: VideoDatasetWriter | None = _WORKER["writer"]
    if writer is None:
        writer = _WORKER["writer"] = VideoDatasetWriter(_WORKER["out"], VideoDatasetInfo.from_dict(_WORKER["info"]))
    if writer.has_clip(plan.id):
        return plan.id
    renderers: dict[str, PortraitRenderer] = _WORKER["renderers"]
    if plan.portrait not in renderers:
        renderers[plan.portrait] = PortraitRenderer(_WORKER["portraits"][plan.portrait], config.size,
                                                    config.crop_scale)
    clip = _WORKER["motion"].clip(plan.motion_id)
    video, frames = render_clip(plan, clip, renderers[plan.portrait], config)
    writer.write_clip(video, frames, SYNTHETIC_COMMENT)
    return plan.id


@dataclass(frozen=True)
class VideoCorpusReport:
    """``clips``: planned in this shard; ``made`` now; ``dropped``: motion clips whose split had no
    identity; ``failed_portraits``: left out (no face found), with the reason; ``bytes`` on disk."""

    root: Path
    clips: int
    made: int
    dropped: int
    failed_portraits: dict[str, str]
    seconds: float
    bytes: int


def disk_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file())


def build_video_corpus(motion_data: str | Path, portraits: str | Path | None, out: str | Path,
                       config: VideoCorpusConfig | None = None, shard: tuple[int, int] = (0, 1)) -> VideoCorpusReport:
    """Render (or finish rendering) the video corpus into ``out``; see the module docstring."""
    from talkinghead.face.model import ARKIT_LAYOUT

    config = config or VideoCorpusConfig()
    if shard[1] < 1 or not 0 <= shard[0] < shard[1]:
        raise TalkingHeadError(f"A shard is i/n with 0 <= i < n, got {shard[0]}/{shard[1]}.")
    out = Path(out)
    # 1. inputs, all checked before anything is written
    motion = Dataset(motion_data)
    if not set(motion.info.layout.channels) & set(ARKIT_LAYOUT.channels):
        raise TalkingHeadError(f"The motion data's layout '{motion.info.layout.name}' shares no channel with the "
                               "face model's, so it cannot be rendered.")
    if not motion.rows:
        raise TalkingHeadError(f"The motion data {motion_data} has no clips.")
    sources = find_portraits(portraits, config.astronaut)
    splits = identity_splits([p.identity for p in sources], config.seed, config.val_fraction, config.test_fraction,
                             config.test_identities, config.val_identities)
    # 2. plan (this shard's part)
    all_plans, dropped = plan_video_corpus(motion.rows, sources, splits, config)
    if not all_plans:
        raise TalkingHeadError("No clip can be rendered: no portrait identity shares a split with the motion clips.")
    plans = [p for p in all_plans if in_shard(p.id, shard)]
    # 3. portraits (only those this shard renders on)
    used = {p.portrait for p in plans}
    cache = out / "portraits"
    fitted, failed = fit_portraits([s for s in sources if s.id in used], cache if cache.is_dir() else None)
    if used and not fitted:
        raise TalkingHeadError(f"No face was found in any of the portraits in {portraits}.")
    plans = [p for p in plans if p.portrait not in failed]
    info = VideoDatasetInfo(motion.info.fps, config.size, ARKIT_LAYOUT, config.crop_scale, motion.info.sample_rate,
                            motion.info.audio_features, config.codec(), {
                                "generator": "talkinghead video-corpus (warp renderer on real portraits)",
                                "config": config.to_dict(),
                                "motion_data": str(Path(motion_data).resolve()),
                                "portraits": {s.id: {"identity": s.identity, "split": splits[s.identity],
                                                     "file": str(s.path) if s.path else "skimage:astronaut"}
                                              for s in sources},
                                "phones": motion.info.extra.get("phones", ""),
                            })
    writer = VideoDatasetWriter(out, info)
    writer.remove_leftovers(p.id for p in plans)
    by_id = {f.source.id: f for f in fitted}
    _save_portraits(cache, fitted, config)
    if dropped:
        logger.warning(f"{dropped} motion clips left out: no portrait identity in their split")
    # 4-5. render
    todo = [p for p in plans if not writer.has_clip(p.id)]
    start = time.perf_counter()
    args = (str(motion.root), str(out), info.to_dict(), by_id, config.to_dict())
    if todo:
        workers = min(config.workers, len(todo))
        if workers == 1:
            _worker_init(*args, pool=False)
            _WORKER["writer"] = writer
            try:
                for plan in progress(todo, "video clips"):
                    _render_one(plan)
            finally:
                _WORKER.clear()
        else:
            # spawn, not fork: the parent has run MediaPipe and torch, whose threads may hold a lock at the fork,
            # and a forked worker then waits on it for ever (seen: two workers asleep on a futex, no clip made);
            # the fitted portraits travel to each worker once, pickled
            with mp.get_context("spawn").Pool(workers, initializer=_worker_init, initargs=(*args, True)) as pool:
                for _ in progress(pool.imap_unordered(_render_one, todo, chunksize=2), "video clips", total=len(todo)):
                    pass
    writer.finalize()
    seconds = time.perf_counter() - start
    size = disk_bytes(out)
    log_event("video corpus written", root=str(out), clips=len(plans), made=len(todo), seconds=round(seconds, 1),
              bytes=size)
    return VideoCorpusReport(out, len(plans), len(todo), dropped, failed, seconds, size)


def _save_portraits(cache: Path, fitted: list[FittedPortrait], config: VideoCorpusConfig) -> None:
    """``<out>/portraits/<id>.npz`` (the fit, keyed by the image's hash) and ``<id>.png`` (its still crop)."""
    import hashlib

    from PIL import Image

    for f in fitted:
        npz, png = cache / f"{f.source.id}.npz", cache / f"{f.source.id}.png"
        if not npz.exists():
            arrays = {"expression": f.expression, "pose": f.pose,
                      **{f"identity/{k}": np.asarray(v) for k, v in f.identity.items()}}
            with atomic_path(npz) as tmp:
                with open(tmp, "wb") as fh:
                    np.savez(fh, sha256=np.array(hashlib.sha256(f.image.tobytes()).hexdigest()), **arrays)
        if not png.exists():
            still = PortraitRenderer(f, config.size, config.crop_scale).still()
            with atomic_path(png) as tmp:
                Image.fromarray(still).save(tmp, format="PNG")

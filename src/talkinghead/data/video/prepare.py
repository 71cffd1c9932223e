"""``video-prepare``: real talking-face videos into the video dataset format (issue 14, item 2).

For every video under the input (paths parsed as ``prepare`` does, :func:`talkinghead.data.prepare.parse_video_path`:
MEAD and HDTF layouts, else the folder is the speaker):

1. the face followed through every frame at the dataset's fps (MediaPipe, raw landmarks; frames where it is
   lost are marked), in one streaming pass;
2. runs of frames with a face (gaps of up to ``max_gap`` frames interpolated), cut into segments of at most
   ``segment`` seconds (equal parts; runs shorter than ``min_segment`` are left out). Each segment is one
   clip ``<video id>_<k>``;
3. per segment: the landmarks smoothed and fitted (:func:`talkinghead.face.track.motion_from_landmarks`: the
   identity is the segment's first face at rest), the face boxes, a crop of constant side (``crop_scale``
   times the median face size) following the smoothed face centre, the head speed;
4. a second streaming pass cuts the crops (anti-aliased when shrinking, edges replicated) and writes each
   segment's H.264 file and labels; the audio track with its features when the video has one, else the clip
   is marked without audio (the videos of ``../shared/realdata`` have none): renderers and EMO's image stage
   still learn real faces, teeth and mouth interiors from them.

Videos run in a pool of processes (spawned: they run MediaPipe). A video is done when all its segments are
on disk (each segment's labels record how many there are), so a run resumes; ``shard=(i, n)`` takes the
videos whose stable hash is ``i`` modulo ``n``. Splits are by speaker (the stable hash of ``prepare``).
"""

from __future__ import annotations

import json
import multiprocessing as mp
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np

from talkinghead.config import Config
from talkinghead.data.prepare import VideoItem, find_videos, parse_video_path, speaker_split
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
from talkinghead.errors import TalkingHeadError
from talkinghead.log import log_event, logger, progress


@dataclass(frozen=True)
class VideoPrepareConfig(Config):
    """``size``/``crop_scale``/``follow``: the crops (as in ``video-corpus``); ``fps``: frames are resampled
    to it; ``segment``/``min_segment``: clip length bounds (seconds); ``max_gap``: frames without a face that
    are interpolated (longer gaps end a run); ``features``: audio feature preset for videos with audio."""

    size: int = 128
    crop_scale: float = 2.0
    fps: float = 25.0
    segment: float = 10.0
    min_segment: float = 2.0
    max_gap: int = 5
    follow: float = 0.5
    features: str = "lowlevel"
    crf: int = 14
    gop: int = 16
    pix_fmt: str = "yuv444p"
    workers: int = 2

    presets: ClassVar[dict[str, dict[str, Any]]] = {"tiny": {"workers": 1, "features": "tiny"}, "cpu": {},
                                                    "paper": {"size": 512}}

    def __post_init__(self) -> None:
        if self.size not in SIZES:
            raise TalkingHeadError(f"The crop size must be 128, 256 or 512, got {self.size}.")
        if not 1.4 <= self.crop_scale <= 3.0:
            raise TalkingHeadError(f"The crop scale must be between 1.4 and 3 face sizes, got {self.crop_scale}.")
        if not 1 <= self.fps <= 120:
            raise TalkingHeadError(f"The frame rate must be between 1 and 120, got {self.fps}.")
        if not 0 < self.min_segment <= self.segment:
            raise TalkingHeadError("Segments need 0 < min_segment <= segment seconds.")
        if self.max_gap < 0 or self.workers < 1:
            raise TalkingHeadError("Use a non-negative max_gap and at least one worker.")
        CodecConfig(crf=self.crf, gop=self.gop, pix_fmt=self.pix_fmt)


@dataclass(frozen=True)
class Segment:
    """Frames ``[start, end)`` of a video, landmarks ``points [end - start, 478, 3]`` (pixels)."""

    start: int
    end: int
    points: np.ndarray


def face_runs(found: list[np.ndarray | None], max_gap: int) -> list[tuple[int, int]]:
    """``[start, end)`` runs of frames with a face, bridging gaps of at most ``max_gap`` frames."""
    runs: list[tuple[int, int]] = []
    start = last = None
    for t, pts in enumerate(found):
        if pts is None:
            continue
        if start is None:
            start = t
        elif t - last - 1 > max_gap:  # type: ignore[operator]
            runs.append((start, last + 1))  # type: ignore[operator]
            start = t
        last = t
    if start is not None:
        runs.append((start, last + 1))  # type: ignore[operator]
    return runs


def split_runs(runs: list[tuple[int, int]], fps: float, segment: float, min_segment: float) -> list[tuple[int, int]]:
    """Runs cut into equal segments of at most ``segment`` seconds; runs under ``min_segment`` dropped."""
    longest, shortest = int(round(segment * fps)), int(round(min_segment * fps))
    out: list[tuple[int, int]] = []
    for a, b in runs:
        if b - a < shortest:
            continue
        parts = -(-(b - a) // longest)
        edges = np.linspace(a, b, parts + 1).round().astype(int)
        out.extend((int(s), int(e)) for s, e in zip(edges[:-1], edges[1:], strict=True))
    return out


def _filled(found: list[np.ndarray | None], a: int, b: int) -> np.ndarray:
    """Landmarks ``[b - a, 478, 3]`` of frames ``[a, b)`` with the gaps linearly interpolated."""
    known = [t for t in range(a, b) if found[t] is not None]
    pts = np.stack([found[t] for t in known]).astype(np.float64)  # type: ignore[misc]
    out = np.empty((b - a,) + pts.shape[1:])
    flat = pts.reshape(len(known), -1)
    for col in range(flat.shape[1]):
        out.reshape(b - a, -1)[:, col] = np.interp(np.arange(a, b), known, flat[:, col])
    return out.astype(np.float32)


def cut_crop(frame: np.ndarray, crop: np.ndarray, size: int) -> np.ndarray:
    """The square crop ``(x0, y0, side)`` of ``frame`` at ``size`` pixels (blurred first when shrinking)."""
    x0, y0, side = (float(v) for v in crop)
    k = size / side
    if k < 0.8:
        frame = cv2.GaussianBlur(frame, (0, 0), 0.45 / k)
    m = np.array([[k, 0.0, -x0 * k], [0.0, k, -y0 * k]])
    return cv2.warpAffine(frame, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def segment_labels(item: VideoItem, seg: Segment, k: int, count: int, split: str, image_size: tuple[int, int],
                   config: VideoPrepareConfig, audio: np.ndarray | None, feature_spec: Any) -> VideoClip:
    """Stage 3 for one segment: motion, boxes, crops, speed, audio (the clip without its frames)."""
    from talkinghead.face.landmarks import smooth_landmarks
    from talkinghead.face.track import motion_from_landmarks

    points = smooth_landmarks(seg.points, config.fps) if len(seg.points) > 1 else seg.points
    motion = motion_from_landmarks(points, image_size, config.fps, f"{item.path}@{seg.start}-{seg.end}")
    boxes = face_boxes(points)
    side = config.crop_scale * float(np.median(box_extent(boxes)))
    crops = follow_crop(boxes, side, config.fps, config.follow)
    samples = np.zeros(0, np.float32)
    features: dict[str, np.ndarray] = {}
    hop = 16_000 / config.fps
    if audio is not None and len(audio):
        samples = audio[int(round(seg.start * hop)):int(round(seg.end * hop))]
        samples = np.pad(samples, (0, int(round((seg.end - seg.start) * hop)) - len(samples))).astype(np.float32)
        if feature_spec is not None and np.any(samples):
            from talkinghead.audio.features import extract_features
            from talkinghead.io.audio import Audio

            stacked = extract_features(Audio(samples), feature_spec)
            stacked = np.pad(stacked[:len(motion)], ((0, max(0, len(motion) - len(stacked))), (0, 0)), mode="edge")
            features = {kind: stacked[:, cols] for kind, cols in feature_spec.slices().items()}
    clip_id = f"{item.clip_id}_{k:03d}"
    meta = VideoClipMeta(clip_id, item.speaker, item.speaker, item.clip_id, item.emotion, item.intensity, split,
                         source=f"{item.path}@{seg.start / config.fps:.2f}s")
    return VideoClip(meta, motion, boxes_in_crop(boxes, crops, config.size), head_speed(motion.pose),
                     crops.astype(np.float32), samples, features, [], "", {},
                     {"segment": k, "segments": count, "start_frame": seg.start, "video": str(item.path)})


def video_done(writer: VideoDatasetWriter, item: VideoItem) -> bool:
    """All segments of the video are on disk (segment 0 records how many there are)."""
    first = f"{item.clip_id}_000"
    if not writer.has_clip(first):
        return False
    try:
        with np.load(writer.npz_path(first), allow_pickle=False) as data:
            count = int(json.loads(str(data["meta"])).get("segments", 1))
    except (OSError, ValueError, KeyError):
        return False
    return all(writer.has_clip(f"{item.clip_id}_{k:03d}") for k in range(count))


def prepare_video(item: VideoItem, writer: VideoDatasetWriter, config: VideoPrepareConfig, feature_spec: Any) -> int:
    """Stages 1-4 for one video; returns the number of clips written."""
    from talkinghead.face.landmarks import follow_face
    from talkinghead.io.audio import load_audio
    from talkinghead.io.video import iter_frames, probe_video

    info = probe_video(item.path)
    found: list[np.ndarray | None] = []
    sizes: list[tuple[int, int]] = []
    total = int(round(info.duration * config.fps)) if info.duration > 0 else None
    for pts in progress(follow_face(_sized(iter_frames(item.path, config.fps), sizes)),
                        f"tracking {item.clip_id}", total=total):
        found.append(None if pts is None else np.asarray(pts, np.float32))
    size = sizes[0] if sizes else None
    spans = split_runs(face_runs(found, config.max_gap), config.fps, config.segment, config.min_segment)
    if size is None or not spans:
        raise TalkingHeadError(f"{item.path}: no face was followed for {config.min_segment:g} s or more.")
    audio = None
    if info.has_audio:
        try:
            audio = load_audio(item.path).samples
        except TalkingHeadError:
            audio = None
    split = speaker_split(item.speaker)
    clips = [segment_labels(item, Segment(a, b, _filled(found, a, b)), k, len(spans), split, size, config, audio,
                            feature_spec) for k, (a, b) in enumerate(spans)]
    # 4. crops, one segment at a time (frames stream from the second decoding pass)
    frames = iter_frames(item.path, config.fps)
    position = 0
    for clip, (a, b) in zip(clips, spans, strict=True):
        for _ in range(a - position):
            next(frames)
        crops = [cut_crop(next(frames), clip.crop[t], config.size) for t in range(b - a)]
        position = b
        writer.write_clip(clip, crops)
    return len(clips)


def _sized(frames: Iterator[np.ndarray], size: list[tuple[int, int]]) -> Iterator[np.ndarray]:
    """``frames``, recording the first frame's (H, W) in ``size``."""
    for frame in frames:
        if not size:
            size.append((frame.shape[0], frame.shape[1]))
        yield frame


_STATE: dict[str, Any] = {}


def _init(out: str, info: dict[str, Any], config: dict[str, Any], quiet: bool) -> None:
    from talkinghead.log import set_quiet

    if quiet:
        set_quiet(True)
        cv2.setNumThreads(1)
    cfg = VideoPrepareConfig.from_dict(config)
    _STATE.update(writer=VideoDatasetWriter(out, VideoDatasetInfo.from_dict(info)), config=cfg,
                  spec=_feature_spec(cfg.features))


def _feature_spec(name: str) -> Any:
    if name == "none":
        return None
    from talkinghead.audio.spec import AudioFeatureSpec

    return AudioFeatureSpec.preset(name)


def _run_one(item: VideoItem) -> tuple[str, str]:
    writer: VideoDatasetWriter = _STATE["writer"]
    if video_done(writer, item):
        return item.clip_id, "skipped"
    try:
        prepare_video(item, writer, _STATE["config"], _STATE["spec"])
    except TalkingHeadError as err:
        return item.clip_id, f"failed: {err}"
    return item.clip_id, "done"


@dataclass(frozen=True)
class VideoPrepareReport:
    root: Path
    videos: int
    done: int
    skipped: int
    clips: int
    failed: dict[str, str]


def prepare_video_corpus(source: str | Path, out: str | Path, config: VideoPrepareConfig | None = None,
                         shard: tuple[int, int] = (0, 1)) -> VideoPrepareReport:
    """Prepare the videos under ``source`` into the video dataset ``out`` (resumable, shardable)."""
    from talkinghead.face.model import ARKIT_LAYOUT

    config = config or VideoPrepareConfig()
    index, count = shard
    if count < 1 or not 0 <= index < count:
        raise TalkingHeadError(f"A shard is i/n with 0 <= i < n, got {index}/{count}.")
    root, videos = find_videos(source)
    items = [parse_video_path(v, root) for v in videos]
    ids = [it.clip_id for it in items]
    if len(set(ids)) != len(ids):
        raise TalkingHeadError("Two videos map to the same clip id; rename one of them.")
    items = [it for it in items if seed_for("shard", str(it.path.relative_to(root))) % count == index]
    spec = _feature_spec(config.features)
    features = {} if spec is None else {"spec": spec.to_dict(), "kinds": {k: spec.kind_dims(k) for k in spec.kinds}}
    info = VideoDatasetInfo(config.fps, config.size, ARKIT_LAYOUT, config.crop_scale, 16_000, features,
                            CodecConfig(crf=config.crf, gop=config.gop, pix_fmt=config.pix_fmt),
                            {"generator": "talkinghead video-prepare (real videos, tracked and cropped)",
                             "config": config.to_dict(), "source": str(Path(source).resolve())})
    writer = VideoDatasetWriter(out, info)
    writer.remove_leftovers(prefixes=tuple(f"{it.clip_id}_" for it in items))
    todo = [it for it in items if not video_done(writer, it)]
    args = (str(out), info.to_dict(), config.to_dict())
    results: list[tuple[str, str]] = []
    if todo and min(config.workers, len(todo)) == 1:
        _init(*args, quiet=False)
        try:
            results = [_run_one(it) for it in progress(todo, "prepare videos")]
        finally:
            _STATE.clear()
    elif todo:
        # spawn, not fork: workers run MediaPipe, whose threads (if the parent used it) would deadlock a fork
        with mp.get_context("spawn").Pool(min(config.workers, len(todo)), initializer=_init,
                                          initargs=(*args, True)) as pool:
            results = list(progress(pool.imap_unordered(_run_one, todo), "prepare videos", total=len(todo)))
    failed = {cid: status[len("failed: "):] for cid, status in results if status.startswith("failed")}
    for cid, why in failed.items():
        logger.warning(f"skipped {cid}: {why}")
    writer.finalize()
    from talkinghead.data.video.format import VideoDataset

    made = sum(1 for r in VideoDataset(out).rows if any(r.portrait == it.clip_id for it in items))
    done = sum(1 for _, s in results if s == "done")
    log_event("video prepared", videos=len(items), done=done, failed=len(failed), clips=made)
    return VideoPrepareReport(Path(out), len(items), done, len(items) - len(todo), made, failed)

"""``prepare``: real talking-face videos into the dataset format (issue 5, item 3).

For every video under the input (a file, a folder, or MEAD / HDTF style layouts):

1. metadata from the path (:func:`parse_video_path`): MEAD ``<speaker>/video/<view>/<emotion>/level_<i>/<n>.mp4``
   gives speaker, emotion and intensity; HDTF ``<Prefix>_<Name>_<n>.mp4`` gives the speaker; otherwise
   the speaker is the video's folder (or its name when it lies at the top); a transcript is read from a
   sidecar ``<video>.txt`` when there is one;
2. face tracking and fitting (:func:`talkinghead.face.track.track_path`) at the dataset's fps;
3. the audio track (16 kHz), trimmed or padded to the motion's length, and its frame-aligned features;
4. phoneme alignment with pocketsphinx (:func:`talkinghead.audio.align.align`) when a transcript exists;
5. the clip, written atomically.

Clips run in a pool of processes. A run resumes: clips already on disk are skipped, and the temporary
file a killed worker left behind is removed before its clip is redone. ``shard=(i, n)`` takes the
videos whose stable hash (SHA-256 of the path relative to the input) is ``i`` modulo ``n``, so several
machines or processes can share one output folder. Splits are by speaker (stable hash: about 10% test,
10% validation).
"""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from talkinghead.audio.phonemes import PhoneSegment
from talkinghead.audio.tts import EMOTIONS
from talkinghead.config import POSITIVE
from talkinghead.data.dataset import CLIPS_DIR, Clip, ClipMeta, DatasetInfo, DatasetWriter
from talkinghead.errors import TalkingHeadError
from talkinghead.log import log_event, logger, progress

VIDEO_SUFFIXES = {".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"}
_EMOTION_ALIASES = {"surprise": "surprised", "disgust": "disgusted", "anger": "angry", "happiness": "happy",
                    "sadness": "sad", "fearful": "fear", "calm": "neutral"}


@dataclass(frozen=True)
class VideoItem:
    path: Path
    clip_id: str
    speaker: str
    emotion: str
    intensity: int
    transcript: str


def _stable_hash(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


def parse_video_path(path: Path, root: Path) -> VideoItem:
    """Speaker, emotion, intensity, clip id and transcript of one video under ``root``."""
    rel = path.relative_to(root) if path != root else Path(path.name)
    parts = [p.lower() for p in rel.parts[:-1]]
    emotion, intensity, speaker = "neutral", 1, ""
    for i, part in enumerate(parts):
        name = _EMOTION_ALIASES.get(part, part)
        if name in EMOTIONS:
            emotion = name
            if i >= 2 and parts[i - 1] in ("front", "left_30", "left_60", "right_30", "right_60", "top", "down"):
                speaker = rel.parts[i - 3] if i >= 3 else ""
        match = re.fullmatch(r"level_?(\d)", part)
        if match:
            intensity = int(match.group(1))
    if not speaker:
        hdtf = re.fullmatch(r"([A-Z]{2,4}_[A-Za-z0-9]+?)_\d+", path.stem)
        if hdtf:
            speaker = hdtf.group(1)
        elif len(rel.parts) > 1:
            speaker = rel.parts[0] if parts and "video" in parts else rel.parts[-2]
        else:
            speaker = path.stem
    clip_id = re.sub(r"[^A-Za-z0-9_-]+", "_", "__".join(rel.with_suffix("").parts)).strip("_") or "clip"
    transcript = ""
    for sidecar in (path.with_suffix(".txt"), path.with_name(path.name + ".txt")):
        if sidecar.is_file():
            transcript = " ".join(sidecar.read_text(errors="replace").split())
            break
    return VideoItem(path, clip_id, re.sub(r"[^A-Za-z0-9_-]+", "_", speaker), emotion, min(max(intensity, 1), 3),
                     transcript)


def find_videos(source: str | Path) -> tuple[Path, list[Path]]:
    """The input root and its videos (sorted)."""
    source = Path(source)
    if not source.exists():
        raise TalkingHeadError(f"The input {source} does not exist.")
    if source.is_file():
        if source.suffix.lower() not in VIDEO_SUFFIXES:
            raise TalkingHeadError(f"{source} is not a video file ({', '.join(sorted(VIDEO_SUFFIXES))}).")
        return source.parent, [source]
    videos = sorted(p for p in source.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES
                    and not p.name.startswith("."))
    if not videos:
        raise TalkingHeadError(f"No videos were found under {source}.")
    return source, videos


def speaker_split(speaker: str) -> str:
    bucket = _stable_hash(f"split:{speaker}") % 10
    return "test" if bucket == 0 else "val" if bucket == 1 else "train"


def prepare_clip(item: VideoItem, fps: float, feature_spec: Any, split: str) -> Clip:
    """Stages 2-4 for one video."""
    from talkinghead.audio.frames import frame_count
    from talkinghead.face.track import track_path
    from talkinghead.io.audio import Audio, load_audio

    motion = track_path(item.path, fps=fps)
    try:
        audio = load_audio(item.path).samples
    except TalkingHeadError:
        audio = np.zeros(0, np.float32)
    samples = int(round(len(motion) / fps * 16_000))
    audio = np.pad(audio[:samples], (0, max(0, samples - len(audio)))).astype(np.float32)
    features: dict[str, np.ndarray] = {}
    if feature_spec is not None and np.any(audio):
        from talkinghead.audio.features import extract_features

        stacked = extract_features(Audio(audio), feature_spec)
        t = frame_count(len(audio), fps)
        if t != len(motion):
            raise TalkingHeadError(f"{item.path}: {len(motion)} video frames but {t} audio frames.")
        for kind, cols in feature_spec.slices().items():
            features[kind] = stacked[:, cols]
    phones: list[PhoneSegment] = []
    if item.transcript and np.any(audio):
        from talkinghead.audio.align import align

        phones = list(align(Audio(audio), item.transcript).phones)
    meta = ClipMeta(item.clip_id, item.speaker, item.emotion, item.intensity, split, source=str(item.path))
    return Clip(meta, audio, motion, features, phones, item.transcript)


_STATE: dict[str, Any] = {}


def _init(out: str, info: dict[str, Any], fps: float, features: str) -> None:
    from talkinghead.log import set_quiet
    from talkinghead.sequence import ChannelLayout

    set_quiet(True)
    spec = None
    if features != "none":
        from talkinghead.audio.spec import AudioFeatureSpec

        spec = AudioFeatureSpec.preset(features)
    _STATE.update(writer=DatasetWriter(out, DatasetInfo(fps, ChannelLayout.from_dict(info["layout"]), 16_000,
                                                        info["audio_features"], info["extra"])),
                  fps=fps, spec=spec)


def _run_one(item: VideoItem) -> tuple[str, str]:
    writer: DatasetWriter = _STATE["writer"]
    if writer.has_clip(item.clip_id):
        return item.clip_id, "skipped"
    try:
        clip = prepare_clip(item, _STATE["fps"], _STATE["spec"], speaker_split(item.speaker))
        writer.write_clip(clip)
    except TalkingHeadError as err:
        return item.clip_id, f"failed: {err}"
    return item.clip_id, "done"


@dataclass(frozen=True)
class PrepareReport:
    root: Path
    videos: int
    done: int
    skipped: int
    failed: dict[str, str]


def prepare_videos(source: str | Path, out: str | Path, fps: float = 25.0, features: str = "lowlevel",
                   workers: int = 2, shard: tuple[int, int] = (0, 1)) -> PrepareReport:
    """Prepare the videos under ``source`` into the dataset ``out`` (resumable, shardable)."""
    from talkinghead.face.model import ARKIT_LAYOUT

    index, count = shard
    if count < 1 or not 0 <= index < count:
        raise TalkingHeadError(f"A shard is i/n with 0 <= i < n, got {index}/{count}.")
    if workers < 1:
        raise TalkingHeadError("Use at least one worker.")
    POSITIVE.check(fps, "The frame rate")
    root, videos = find_videos(source)
    items = [parse_video_path(v, root) for v in videos]
    ids = [it.clip_id for it in items]
    if len(set(ids)) != len(ids):
        raise TalkingHeadError("Two videos map to the same clip id; rename one of them.")
    items = [it for it in items if _stable_hash(str(it.path.relative_to(root))) % count == index]
    spec_dict: dict[str, Any] = {}
    if features != "none":
        from talkinghead.audio.spec import AudioFeatureSpec

        spec = AudioFeatureSpec.preset(features)
        spec_dict = {"spec": spec.to_dict(), "kinds": {k: spec.kind_dims(k) for k in spec.kinds}}
    info = DatasetInfo(fps, ARKIT_LAYOUT, 16_000, spec_dict,
                       {"generator": "talkinghead prepare", "source": str(Path(source).resolve())})
    writer = DatasetWriter(out, info)
    # a killed worker leaves ".<id>.<random>.part.npz"; remove this shard's leftovers (never another's)
    mine = {it.clip_id for it in items}
    for stale in (Path(out) / CLIPS_DIR).glob(".*.part.npz"):
        if stale.name[1:].rsplit(".", 3)[0] in mine:
            stale.unlink(missing_ok=True)
    args = (str(out), {"layout": ARKIT_LAYOUT.to_dict(), "audio_features": spec_dict, "extra": info.extra},
            fps, features)
    results: list[tuple[str, str]] = []
    todo = [it for it in items if not writer.has_clip(it.clip_id)]
    if todo and workers == 1:
        _init(*args)
        results = [_run_one(it) for it in progress(todo, "prepare videos")]
    elif todo:
        # spawn, not fork: workers run MediaPipe, whose threads (if the parent ever used it) would
        # deadlock a forked child
        with mp.get_context("spawn").Pool(min(workers, len(todo)), initializer=_init, initargs=args) as pool:
            results = list(progress(pool.imap_unordered(_run_one, todo), "prepare videos", total=len(todo)))
    failed = {cid: status[len("failed: "):] for cid, status in results if status.startswith("failed")}
    for cid, why in failed.items():
        logger.warning(f"skipped {cid}: {why}")
    writer.finalize()
    done = sum(1 for _, s in results if s == "done")
    log_event("prepared", videos=len(items), done=done, failed=len(failed))
    return PrepareReport(Path(out), len(items), done, len(items) - len(todo), failed)

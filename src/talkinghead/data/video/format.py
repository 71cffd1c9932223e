"""The video dataset format (issue 14): the motion dataset's contract plus the frames.

A video dataset is a directory::

    dataset.json      {"format": "talkinghead-video-dataset", "schema_version": 1, "fps": 25, "size": 128,
                       "crop_scale": 2.0, "sample_rate": 16000, "layout": {...}, "audio_features": {...},
                       "codec": {"crf": 14, "gop": 16, "pix_fmt": "yuv444p", "encoder_preset": "fast"}, "extra": {...}}
    manifest.csv      one row per clip: id, speaker, identity, portrait, emotion, intensity, split, duration,
                      num_frames, has_audio, source
    clips/<id>.mp4    the face crops [T, S, S, 3] (H.264, no audio track; talkinghead.data.video.frames)
    clips/<id>.npz    everything else, per frame and per clip (no pickle):
                        expression [T, E], pose [T, 6]   the motion the frames show (absolute, in the frame of
                                                         identity/frame: the portrait's or first video frame's)
                        box [T, 4]     face box (x0, y0, x1, y1) in crop pixels (EMO's face locator)
                        speed [T]      head rotation speed, degrees per frame (EMO's speed layers)
                        crop [T, 3]    the crop (x0, y0, side) in source-image pixels: crop pixel =
                                       (image pixel - (x0, y0)) * S / side
                        audio [N] float32 16 kHz ([0] when has_audio is 0), feature/<name> [T, D],
                        phones_label/start/end, identity/<key>, meta (JSON: the row, transcript, extras)
                        optional: drive_expression [T, E], drive_pose [T, 6] (the motion corpus's clip, as
                        a motion generator makes it), portrait_expression [E], portrait_pose [6] (the
                        portrait's own fit)

The mp4 is written before the npz, each atomically, so a clip exists exactly when its npz does; the
manifest is rebuilt from the npz files (:meth:`VideoDatasetWriter.finalize`), so an interrupted build
resumes by skipping existing clips. Readers refuse another format or schema version, a missing manifest,
unexpected columns and corrupt clips with one sentence.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any

import numpy as np

from talkinghead.audio.phonemes import PhoneSegment
from talkinghead.config import AT_LEAST_ONE, NON_NEGATIVE, POSITIVE, build_record
from talkinghead.data.dataset import (
    INTENSITY,
    SPLITS,
    ClipIndex,
    clip_meta,
    description_fields,
    manifest_records,
    motion_arrays,
    read_description,
    read_motion_arrays,
    save_arrays,
    stored_meta,
    write_manifest_rows,
)
from talkinghead.data.video.frames import ClipFrames, CodecConfig, encode_frames
from talkinghead.errors import TalkingHeadError
from talkinghead.io.files import READ_ERRORS, atomic_path
from talkinghead.sequence import ChannelLayout, MotionSequence, finite_array

FORMAT = "talkinghead-video-dataset"
SCHEMA_VERSION = 1
DATASET_FILE = "dataset.json"
MANIFEST_FILE = "manifest.csv"
CLIPS_DIR = "clips"
SIZES = (128, 256, 512)
MANIFEST_FIELDS = ("id", "speaker", "identity", "portrait", "emotion", "intensity", "split", "duration",
                   "num_frames", "has_audio", "source")
#: optional per-clip arrays stored beside the required ones
OPTIONAL_ARRAYS = ("drive_expression", "drive_pose", "portrait_expression", "portrait_pose")


@dataclass(frozen=True)
class VideoClipMeta:
    """One manifest row. ``speaker``: whose speech and motion (the motion corpus's speaker, or the filmed
    person); ``identity``: whose face (splits are by identity); ``portrait``: the photo (or video) shown."""

    id: str
    speaker: str
    identity: str
    portrait: str
    emotion: str = "neutral"
    intensity: Annotated[int, INTENSITY] = 1
    split: str = "train"
    duration: Annotated[float, NON_NEGATIVE] = 0.0
    num_frames: Annotated[int, NON_NEGATIVE] = 0
    has_audio: bool = True
    source: str = ""


@dataclass
class VideoClip:
    """A clip's labels (the frames stay in the mp4: :meth:`VideoDataset.frames`).

    ``motion``: expression ``[T, E]`` and pose ``[T, 6]`` as shown, with the identity; ``box [T, 4]``,
    ``speed [T]``, ``crop [T, 3]``; ``audio [N]`` (empty without audio), ``features`` ``{name: [T, D]}``,
    ``phones``, ``transcript``; ``arrays``: the optional arrays present (:data:`OPTIONAL_ARRAYS`);
    ``extra``: what the meta JSON holds beyond the row (e.g. ``motion_clip``).
    """

    meta: VideoClipMeta
    motion: MotionSequence
    box: np.ndarray
    speed: np.ndarray
    crop: np.ndarray
    audio: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    features: dict[str, np.ndarray] = field(default_factory=dict)
    phones: list[PhoneSegment] = field(default_factory=list)
    transcript: str = ""
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.motion)


@dataclass
class VideoDatasetInfo:
    """``dataset.json``: frame rate, crop size ``size`` (pixels), ``crop_scale`` (crop side over the face
    size), the channel layout, audio, the codec and free-form ``extra`` (generator, config, portraits)."""

    fps: Annotated[float, POSITIVE]
    size: int
    layout: ChannelLayout
    crop_scale: Annotated[float, POSITIVE] = 2.0
    sample_rate: Annotated[int, AT_LEAST_ONE] = 16_000
    audio_features: dict[str, Any] = field(default_factory=dict)
    codec: CodecConfig = field(default_factory=CodecConfig)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "schema_version": SCHEMA_VERSION, "fps": self.fps, "size": self.size,
                "crop_scale": self.crop_scale, "sample_rate": self.sample_rate, "layout": self.layout.to_dict(),
                "audio_features": self.audio_features, "codec": self.codec.to_dict(), "extra": self.extra}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VideoDatasetInfo:
        """From :meth:`to_dict`'s mapping (a ``dataset.json``), every field checked."""
        return build_record(cls, description_fields(data), "")


def is_video_dataset(root: str | Path) -> bool:
    """Whether ``root`` holds a video dataset (its ``dataset.json`` names the video format)."""
    path = Path(root) / DATASET_FILE
    try:
        return bool(json.loads(path.read_text()).get("format") == FORMAT)
    except (OSError, ValueError, AttributeError):
        return False


def read_info(root: Path) -> VideoDatasetInfo:
    data = read_description(root, FORMAT, "video dataset", SCHEMA_VERSION,
                            f"{root} is not a talkinghead video dataset (its {DATASET_FILE} names another format); "
                            "build one with talkinghead video-corpus or video-prepare.")
    try:
        return VideoDatasetInfo.from_dict(data)
    except TalkingHeadError as err:
        raise TalkingHeadError(f"{root / DATASET_FILE} is not valid: {err}") from err


def check_clip_id(clip_id: str) -> None:
    if not clip_id or any(c in clip_id for c in "/\\\0") or clip_id.startswith("."):
        raise TalkingHeadError(f"'{clip_id}' is not a valid clip id (no slashes, not empty, no leading dot).")


class VideoDatasetWriter:
    """Writes clips (labels + frames) into a video dataset directory; resumable (existing clips are kept)."""

    def __init__(self, root: str | Path, info: VideoDatasetInfo) -> None:
        self.root = Path(root)
        self.info = info
        if info.size not in SIZES:
            raise TalkingHeadError(f"The crop size must be one of {', '.join(map(str, SIZES))}, got {info.size}.")
        if (self.root / DATASET_FILE).exists():
            old = read_info(self.root)
            if (old.size, old.fps, old.layout.channels, old.crop_scale) != (info.size, info.fps, info.layout.channels,
                                                                          info.crop_scale):
                raise TalkingHeadError(f"{self.root} already holds a video dataset with another size, fps, crop "
                                       "scale or channel layout; choose an empty output folder.")
            info.extra = {**old.extra, **info.extra}
        (self.root / CLIPS_DIR).mkdir(parents=True, exist_ok=True)
        with atomic_path(self.root / DATASET_FILE) as tmp:
            tmp.write_text(json.dumps(info.to_dict(), indent=2) + "\n")

    def npz_path(self, clip_id: str) -> Path:
        check_clip_id(clip_id)
        return self.root / CLIPS_DIR / f"{clip_id}.npz"

    def mp4_path(self, clip_id: str) -> Path:
        check_clip_id(clip_id)
        return self.root / CLIPS_DIR / f"{clip_id}.mp4"

    def has_clip(self, clip_id: str) -> bool:
        return self.npz_path(clip_id).exists() and self.mp4_path(clip_id).exists()

    def remove_leftovers(self, clip_ids: Iterable[str] = (), prefixes: tuple[str, ...] = ()) -> int:
        """Delete the temporary files a killed writer left for ``clip_ids`` or ids starting with one of
        ``prefixes`` (never another shard's)."""
        mine = set(clip_ids)
        removed = 0
        for stale in (self.root / CLIPS_DIR).glob(".*.part.*"):
            owner = stale.name[1:].rsplit(".", 3)[0]
            if owner in mine or (prefixes and owner.startswith(prefixes)):
                stale.unlink(missing_ok=True)
                removed += 1
        return removed

    def write_clip(self, clip: VideoClip, frames: Iterable[np.ndarray], comment: str = "") -> Path:
        """Encode ``frames`` (``[S, S, 3]`` uint8 each, one per motion frame) and write the labels."""
        m = clip.meta
        t = len(clip.motion)
        if m.split not in SPLITS:
            raise TalkingHeadError(f"Clip {m.id} has split '{m.split}'; use one of {', '.join(SPLITS)}.")
        if clip.motion.layout.channels != self.info.layout.channels:
            raise TalkingHeadError(f"Clip {m.id} uses another channel layout than the dataset.")
        for name, arr, width in (("box", clip.box, 4), ("crop", clip.crop, 3)):
            if np.shape(arr) != (t, width):
                raise TalkingHeadError(f"Clip {m.id}: {name} must be [{t}, {width}], got {list(np.shape(arr))}.")
        if np.shape(clip.speed) != (t,):
            raise TalkingHeadError(f"Clip {m.id}: speed must be [{t}], got {list(np.shape(clip.speed))}.")
        count = encode_frames(self.mp4_path(m.id), frames, self.info.fps, self.info.codec, comment)
        if count != t:
            self.mp4_path(m.id).unlink(missing_ok=True)
            raise TalkingHeadError(f"Clip {m.id} has {t} motion frames but {count} video frames.")
        has_audio = len(clip.audio) > 0
        duration = len(clip.audio) / self.info.sample_rate if has_audio else t / self.info.fps
        meta = asdict(m)
        meta.update(num_frames=t, duration=duration, has_audio=has_audio, transcript=clip.transcript, **clip.extra)
        arrays: dict[str, np.ndarray] = {
            "audio": np.asarray(clip.audio, dtype=np.float32),
            "box": np.asarray(clip.box, np.float32),
            "speed": np.asarray(clip.speed, np.float32),
            "crop": np.asarray(clip.crop, np.float32),
            "meta": np.array(json.dumps(meta)),
            **motion_arrays(clip.motion, clip.features, clip.phones),
        }
        for name, value in clip.arrays.items():
            if name not in OPTIONAL_ARRAYS:
                raise TalkingHeadError(f"Clip {m.id}: unknown array '{name}'.")
            arrays[name] = np.asarray(value, np.float32)
        return save_arrays(self.npz_path(m.id), arrays)

    def finalize(self) -> Path:
        """Rebuild manifest.csv from the clip files on disk (sorted by id); clips without their mp4 are left
        out (and redone by the next run)."""
        rows = []
        for path in sorted((self.root / CLIPS_DIR).glob("*.npz")):
            if path.name.startswith(".") or not path.with_suffix(".mp4").exists():
                continue
            meta = stored_meta(path)
            row = {k: meta.get(k, "") for k in MANIFEST_FIELDS}
            row["has_audio"] = int(bool(meta.get("has_audio")))
            rows.append(row)
        return write_manifest_rows(self.root, MANIFEST_FIELDS, rows)


class VideoDataset(ClipIndex[VideoClipMeta]):
    """Reads a video dataset: ``len``, ``ids(split=...)``, ``meta(id)``, ``clip(id)`` (labels, audio,
    features) and ``frames(id, indices)`` (decoded crops ``[K, S, S, 3]`` uint8)."""

    what = "video dataset"

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise TalkingHeadError(f"The dataset folder {self.root} does not exist.")
        self.info = read_info(self.root)
        self.index(manifest_records(self.root, VideoClipMeta, MANIFEST_FIELDS))

    def video_path(self, clip_id: str) -> Path:
        self.meta(clip_id)
        return self.root / CLIPS_DIR / f"{clip_id}.mp4"

    def clip(self, clip_id: str, audio: bool = True) -> VideoClip:
        """The clip's labels; ``audio=False`` skips reading the samples (faster)."""
        meta = self.meta(clip_id)
        path = self.root / CLIPS_DIR / f"{clip_id}.npz"
        try:
            with np.load(path, allow_pickle=False) as data:
                extra = clip_meta(data, path)
                motion, features, phones = read_motion_arrays(data, self.info.layout, self.info.fps,
                                                              f"{self.root.name}/{clip_id}")
                arrays = {k: data[k] for k in OPTIONAL_ARRAYS if k in data.files}
                samples = data["audio"] if audio else np.zeros(0, np.float32)
                box, speed, crop = (finite_array(data[k], f"The {k} of {path}") for k in ("box", "speed", "crop"))
                clip = VideoClip(meta, motion, box, speed, crop, samples, features, phones,
                                 str(extra.get("transcript", "")), arrays,
                                 {k: v for k, v in extra.items() if k not in MANIFEST_FIELDS and k != "transcript"})
        except TalkingHeadError:
            raise
        except READ_ERRORS as err:
            raise TalkingHeadError(f"The clip file {path} is missing or corrupt ({type(err).__name__}).") from err
        if len(clip.box) != len(clip.motion) or len(clip.speed) != len(clip.motion):
            raise TalkingHeadError(f"The clip file {path} has labels of different lengths; it is corrupt.")
        return clip

    def clip_frames(self, clip_id: str) -> ClipFrames:
        """Random access to the clip's frames (the mp4's bytes are read now)."""
        meta = self.meta(clip_id)
        return ClipFrames.from_file(self.video_path(clip_id), self.info.fps, meta.num_frames, self.info.codec.gop)

    def frames(self, clip_id: str, indices: Iterable[int] | None = None) -> np.ndarray:
        """Decoded crops ``[K, S, S, 3]`` uint8 (all frames when ``indices`` is None)."""
        frames = self.clip_frames(clip_id)
        return frames.all() if indices is None else frames.read(list(indices))

    def __iter__(self) -> Iterator[VideoClip]:
        for row in self.rows:
            yield self.clip(row.id)

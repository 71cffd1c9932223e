"""The dataset format (DESIGN.md, "Contracts").

A dataset is a directory::

    dataset.json        {"format": "talkinghead-dataset", "schema_version": 1, "fps": 25,
                         "sample_rate": 16000, "layout": {...}, "audio_features": {...}, "extra": {...}}
    manifest.csv        one row per clip: id, speaker, emotion, intensity, split, duration, num_frames,
                        source
    clips/<id>.npz      one file per clip (no pickle):
                          audio [N] float32 16 kHz, expression [T, E], pose [T, 6],
                          feature/<name> [T, D] frame-aligned audio features (optional),
                          phones_label [P] str, phones_start [P], phones_end [P] seconds (optional),
                          identity/<key> arrays, meta (JSON: the manifest row + transcript)

Clip files are written atomically, so an interrupted writer never leaves a half clip; the manifest
is rebuilt from the clip files by :meth:`DatasetWriter.finalize`, which makes resuming trivial:
clips already on disk are skipped by ``DatasetWriter.has_clip``.
"""

from __future__ import annotations

import csv
import json
import typing
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any, Generic, Protocol, TypeVar, get_args, get_origin

import numpy as np

from talkinghead.audio.phonemes import PhoneSegment
from talkinghead.config import AT_LEAST_ONE, NON_NEGATIVE, POSITIVE, Range, build_record, read_record
from talkinghead.errors import TalkingHeadError
from talkinghead.io.files import READ_ERRORS, atomic_path, read_json
from talkinghead.sequence import ChannelLayout, MotionSequence, finite_array

SCHEMA_VERSION = 1
DATASET_FILE = "dataset.json"
MANIFEST_FILE = "manifest.csv"
CLIPS_DIR = "clips"
SPLITS = ("train", "val", "test")
MANIFEST_FIELDS = ("id", "speaker", "emotion", "intensity", "split", "duration", "num_frames", "source")
INTENSITY = Range(1, 3)


@dataclass(frozen=True)
class ClipMeta:
    """One manifest row."""

    id: str
    speaker: str
    emotion: str = "neutral"
    intensity: Annotated[int, INTENSITY] = 1
    split: str = "train"
    duration: Annotated[float, NON_NEGATIVE] = 0.0
    num_frames: Annotated[int, NON_NEGATIVE] = 0
    source: str = ""


@dataclass
class Clip:
    """A clip read from (or to be written to) a dataset."""

    meta: ClipMeta
    audio: np.ndarray
    motion: MotionSequence
    features: dict[str, np.ndarray] = field(default_factory=dict)
    phones: list[PhoneSegment] = field(default_factory=list)
    transcript: str = ""


@dataclass
class DatasetInfo:
    fps: Annotated[float, POSITIVE]
    layout: ChannelLayout
    sample_rate: Annotated[int, AT_LEAST_ONE] = 16_000
    audio_features: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"format": "talkinghead-dataset", "schema_version": SCHEMA_VERSION, "fps": self.fps,
                "sample_rate": self.sample_rate, "layout": self.layout.to_dict(),
                "audio_features": self.audio_features, "extra": self.extra}


def has_clips(root: Path) -> bool:
    """Whether the dataset folder ``root`` holds a finished clip (a build worth resuming)."""
    return any(not p.name.startswith(".") for p in (root / CLIPS_DIR).glob("*.npz"))


def _check_id(clip_id: str) -> None:
    if not clip_id or any(c in clip_id for c in "/\\\0") or clip_id.startswith("."):
        raise TalkingHeadError(f"'{clip_id}' is not a valid clip id (no slashes, not empty, no leading dot).")


class ManifestRow(Protocol):
    """What :class:`ClipIndex` reads of a manifest row (ClipMeta, video.format.VideoClipMeta)."""

    @property
    def id(self) -> str: ...

    @property
    def split(self) -> str: ...


Row = TypeVar("Row", bound=ManifestRow)
Record = TypeVar("Record")


# ------------------------------------------------------------------ pieces every dataset kind shares
# (the motion datasets here and the video datasets of talkinghead.data.video.format)

def motion_arrays(motion: MotionSequence, features: dict[str, np.ndarray],
                  phones: list[PhoneSegment]) -> dict[str, np.ndarray]:
    """The arrays of a clip file for its motion (``expression``, ``pose``, ``identity/*``), stored audio
    features (``feature/*``) and phone segments (``phones_*``)."""
    arrays: dict[str, np.ndarray] = {"expression": motion.expression, "pose": motion.pose}
    for name, value in features.items():
        arrays[f"feature/{name}"] = np.asarray(value, dtype=np.float32)
    for key, value in motion.identity.items():
        arrays[f"identity/{key}"] = np.asarray(value)
    if phones:
        arrays["phones_label"] = np.array([p.label for p in phones])
        arrays["phones_start"] = np.array([p.start for p in phones], dtype=np.float64)
        arrays["phones_end"] = np.array([p.end for p in phones], dtype=np.float64)
    return arrays


def read_motion_arrays(data: Any, layout: ChannelLayout, fps: float, source: str
                       ) -> tuple[MotionSequence, dict[str, np.ndarray], list[PhoneSegment]]:
    """The inverse of :func:`motion_arrays` on an open clip file ``data`` (``np.load``): the motion, the
    stored audio features and the phone segments."""
    identity = {k[len("identity/"):]: data[k] for k in data.files if k.startswith("identity/")}
    features = {k[len("feature/"):]: finite_array(data[k], f"The feature '{k}' of {source}")
                for k in data.files if k.startswith("feature/")}
    motion = MotionSequence(finite_array(data["expression"], f"The expression of {source}"),
                            finite_array(data["pose"], f"The pose of {source}"), layout, fps, identity, source)
    phones = []
    if "phones_label" in data.files:
        phones = [PhoneSegment(str(lab), float(s), float(e)) for lab, s, e in
                  zip(data["phones_label"], data["phones_start"], data["phones_end"], strict=True)]
    return motion, features, phones


def clip_meta(data: Any, path: Path) -> dict[str, Any]:
    """The ``meta`` JSON object of an open clip file ``data`` (``np.load``)."""
    meta = json.loads(str(data["meta"]))
    if not isinstance(meta, dict):
        raise TalkingHeadError(f"The clip file {path} has a meta that is not a JSON object; it is corrupt.")
    return meta


def stored_meta(path: Path) -> dict[str, Any]:
    """The ``meta`` of the clip file ``path`` (what a writer's ``finalize`` reads back of the clips on disk)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return clip_meta(data, path)
    except TalkingHeadError:
        raise
    except READ_ERRORS as err:
        raise TalkingHeadError(f"The clip file {path} is corrupt ({type(err).__name__}); delete it and run the "
                               "command again to make it anew.") from err


def save_arrays(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    """Write a clip file (``.npz``) atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
    return path


def write_manifest_rows(root: Path, fields: tuple[str, ...], rows: list[dict[str, Any]]) -> Path:
    """Write ``manifest.csv`` with the columns ``fields`` atomically."""
    with atomic_path(root / MANIFEST_FILE) as tmp:
        with open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
    return root / MANIFEST_FILE


def read_manifest_rows(root: Path, fields: tuple[str, ...]) -> list[dict[str, str]]:
    """The rows of a finalized dataset's ``manifest.csv``, whose columns must be ``fields``, each row complete."""
    manifest = root / MANIFEST_FILE
    if not manifest.exists():
        raise TalkingHeadError(f"{root} has no {MANIFEST_FILE}; the dataset was not finalized.")
    try:
        with open(manifest, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            if tuple(reader.fieldnames or ()) != fields:
                raise TalkingHeadError(f"{manifest} has unexpected columns; it was written by another version.")
            rows = list(reader)
    except (UnicodeDecodeError, csv.Error) as err:
        raise TalkingHeadError(f"{manifest} is not a readable CSV file; it is corrupt.") from err
    for number, row in enumerate(rows, start=2):
        if None in row or None in row.values():
            raise TalkingHeadError(f"Row {number} of {manifest} does not have the {len(fields)} columns of the "
                                   "header; the manifest is corrupt.")
    return rows


def manifest_records(root: Path, cls: type[Record], fields: tuple[str, ...]) -> list[Record]:
    """The rows of ``manifest.csv`` as ``cls`` records (``ClipMeta``, ``VideoClipMeta``): every value parsed as its
    field's annotation says and in its range, ids valid and unique, splits known."""
    manifest = root / MANIFEST_FILE
    hints = typing.get_type_hints(cls, include_extras=True)
    records: list[Record] = []
    seen: set[str] = set()
    for number, row in enumerate(read_manifest_rows(root, fields), start=2):
        where = f"Row {number} of {manifest}"
        try:
            record = build_record(cls, {k: _from_text(hints[k], v, k) for k, v in row.items()}, "")
            _check_id(row["id"])
        except TalkingHeadError as err:
            raise TalkingHeadError(f"{where} is not valid: {err}") from err
        if row["split"] not in SPLITS:
            raise TalkingHeadError(f"{where} has split '{row['split']}'; use one of {', '.join(SPLITS)}.")
        if row["id"] in seen:
            raise TalkingHeadError(f"{where} repeats the clip id '{row['id']}'.")
        seen.add(row["id"])
        records.append(record)
    return records


def _from_text(tp: Any, text: str, name: str) -> Any:
    """A CSV cell as the annotation ``tp`` (its type; ranges are checked by the record)."""
    base = get_args(tp)[0] if get_origin(tp) is Annotated else tp
    try:
        if base is int:
            return int(text)
        if base is float:
            return float(text)
    except ValueError:
        raise TalkingHeadError(f"{name} should be {'an integer' if base is int else 'a number'}, "
                               f"got {text!r}.") from None
    if base is bool:
        if text.lower() not in ("0", "1", "true", "false"):
            raise TalkingHeadError(f"{name} should be 0 or 1, got {text!r}.")
        return text.lower() in ("1", "true")
    return text


class ClipIndex(Generic[Row]):
    """The manifest's rows of a dataset (anything with ``id`` and ``split``): ``len``, ``ids(split)``,
    ``meta(id)``. ``what`` names the dataset kind in errors."""

    what = "dataset"
    root: Path

    def index(self, rows: list[Row]) -> None:
        self.rows = rows
        self._by_id = {r.id: r for r in rows}

    def __len__(self) -> int:
        return len(self.rows)

    def ids(self, split: str | None = None) -> list[str]:
        if split is not None and split not in SPLITS:
            raise TalkingHeadError(f"Unknown split '{split}'; use one of {', '.join(SPLITS)}.")
        return [r.id for r in self.rows if split is None or r.split == split]

    def meta(self, clip_id: str) -> Row:
        if clip_id not in self._by_id:
            raise TalkingHeadError(f"The {self.what} {self.root} has no clip '{clip_id}'.")
        return self._by_id[clip_id]


class DatasetWriter:
    """Writes clips into a dataset directory; resumable (existing clips are kept)."""

    def __init__(self, root: str | Path, info: DatasetInfo) -> None:
        self.root = Path(root)
        self.info = info
        (self.root / CLIPS_DIR).mkdir(parents=True, exist_ok=True)
        info_path = self.root / DATASET_FILE
        if info_path.exists():
            existing = _read_info(self.root)
            if existing.layout.channels != info.layout.channels or existing.fps != info.fps:
                raise TalkingHeadError(
                    f"{self.root} already holds a dataset with another channel layout or fps; "
                    "choose an empty output folder."
                )
        with atomic_path(info_path) as tmp:
            tmp.write_text(json.dumps(info.to_dict(), indent=2) + "\n")

    def clip_path(self, clip_id: str) -> Path:
        _check_id(clip_id)
        return self.root / CLIPS_DIR / f"{clip_id}.npz"

    def has_clip(self, clip_id: str) -> bool:
        return self.clip_path(clip_id).exists()

    def write_clip(self, clip: Clip) -> Path:
        m = clip.meta
        if m.split not in SPLITS:
            raise TalkingHeadError(f"Clip {m.id} has split '{m.split}'; use one of {', '.join(SPLITS)}.")
        if clip.motion.layout.channels != self.info.layout.channels:
            raise TalkingHeadError(f"Clip {m.id} uses another channel layout than the dataset.")
        meta = asdict(m)
        meta.update(num_frames=len(clip.motion), duration=len(clip.audio) / self.info.sample_rate,
                    transcript=clip.transcript)
        arrays = {"audio": np.asarray(clip.audio, dtype=np.float32), "meta": np.array(json.dumps(meta)),
                  **motion_arrays(clip.motion, clip.features, clip.phones)}
        return save_arrays(self.clip_path(m.id), arrays)

    def finalize(self) -> Path:
        """Rebuild manifest.csv from the clip files on disk (sorted by id)."""
        rows = []
        for path in sorted((self.root / CLIPS_DIR).glob("*.npz")):
            if path.name.startswith("."):
                continue
            meta = stored_meta(path)
            rows.append({k: meta.get(k, "") for k in MANIFEST_FIELDS})
        return write_manifest_rows(self.root, MANIFEST_FIELDS, rows)


def read_description(root: Path, fmt: str, what: str, schema_version: int, wrong_format: str) -> dict[str, Any]:
    """``root/dataset.json`` of a dataset of format ``fmt`` (``what`` names the kind in messages), checked: present,
    JSON, an object of that format (``wrong_format``: the sentence otherwise) and of ``schema_version``; the
    caller checks the fields (:func:`description_fields` into its record, e.g. :class:`DatasetInfo`)."""
    path = root / DATASET_FILE
    if not path.exists():
        raise TalkingHeadError(f"{root} is not a talkinghead {what} (no {DATASET_FILE}).")
    data = read_json(path, f"{what} description")
    if not isinstance(data, dict) or data.get("format") != fmt:
        raise TalkingHeadError(wrong_format)
    if data.get("schema_version") != schema_version:
        raise TalkingHeadError(
            f"{root} uses {what} schema version {data.get('schema_version')!r}, but this talkinghead reads "
            f"version {schema_version}; re-create it with this version."
        )
    return data


def description_fields(data: Any) -> Any:
    """A description's fields without its header (format, schema_version); a null ``audio_features`` or ``extra``
    (written by older versions) is an empty one. Anything but a mapping is left for the record to refuse."""
    if not isinstance(data, dict):
        return data
    return {k: v for k, v in data.items()
            if k not in ("format", "schema_version") and not (k in ("audio_features", "extra") and v is None)}


def _read_info(root: Path) -> DatasetInfo:
    data = read_description(root, "talkinghead-dataset", "dataset", SCHEMA_VERSION,
                            f"{root / DATASET_FILE} is not a talkinghead dataset description.")
    return read_record(DatasetInfo, description_fields(data), str(root / DATASET_FILE))


class Dataset(ClipIndex[ClipMeta]):
    """Reads a dataset directory. ``len``, iteration and ``clip(id)``; ``ids(split=...)``."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise TalkingHeadError(f"The dataset folder {self.root} does not exist.")
        self.info = _read_info(self.root)
        self.index(manifest_records(self.root, ClipMeta, MANIFEST_FIELDS))

    def clip(self, clip_id: str) -> Clip:
        meta = self.meta(clip_id)
        path = self.root / CLIPS_DIR / f"{clip_id}.npz"
        try:
            with np.load(path, allow_pickle=False) as data:
                extra = clip_meta(data, path)
                motion, features, phones = read_motion_arrays(data, self.info.layout, self.info.fps,
                                                              f"{self.root.name}/{clip_id}")
                return Clip(meta, finite_array(data["audio"], f"The audio of {path}"), motion, features, phones,
                            str(extra.get("transcript", "")))
        except TalkingHeadError:
            raise
        except READ_ERRORS as err:
            raise TalkingHeadError(f"The clip file {path} is missing or corrupt ({type(err).__name__}).") from err

    def __iter__(self) -> Iterator[Clip]:
        for row in self.rows:
            yield self.clip(row.id)

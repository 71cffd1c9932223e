"""The motion file and channel layouts (DESIGN.md, "Face motion representation").

A :class:`MotionSequence` is what every motion generator produces and every renderer consumes:

- ``fps``: frames per second (25 by default);
- ``layout``: a :class:`ChannelLayout`, the ordered expression channel names and named groups
  (e.g. ``mouth`` = Dimitra's lip parameters, ``face`` = the rest);
- ``expression``: ``[T, E]`` float32 coefficients, one column per channel name;
- ``pose``: ``[T, 6]`` float32 head pose ``(pitch, yaw, roll, tx, ty, tz)``: rotation in radians,
  ``R = Rz(roll) Ry(yaw) Rx(pitch)`` in the face model's axes (y up, z toward the camera; positive
  yaw turns the nose to image right), ``tx, ty`` translation in face-model units (``ty`` up) and
  ``tz`` the log of the scale relative to the identity's reference frame (weak-perspective camera;
  see talkinghead.face.model);
- ``identity``: named arrays describing the face (e.g. ``neutral [468, 3]``, ``descriptor [K]``);
- ``source``: provenance (what file or model it came from).

Layout conversion lives here too: :func:`expression_for_layout` (a motion onto another layout's
channels, by name), :func:`pose_for_portrait` (absolute or portrait-relative head pose) and
:func:`middle_frames` (the middle of a style reference clip).

On disk it is a ``.npz`` written without pickle (``allow_pickle=False``); strings are stored as
unicode arrays and the metadata as a JSON string, so it can be read safely from untrusted files.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import numpy as np

from talkinghead.config import POSITIVE, build_record, read_record
from talkinghead.errors import TalkingHeadError
from talkinghead.io.files import READ_ERRORS, atomic_path

MOTION_FORMAT_VERSION = 1
POSE_NAMES = ("pitch", "yaw", "roll", "tx", "ty", "tz")


@dataclass(frozen=True)
class ChannelLayout:
    """Ordered expression channel names and named groups of them."""

    name: str
    channels: tuple[str, ...]
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(set(self.channels)) != len(self.channels):
            raise TalkingHeadError(f"Channel layout '{self.name}' repeats a channel name.")
        for group, names in self.groups.items():
            missing = [n for n in names if n not in self.channels]
            if missing:
                raise TalkingHeadError(f"Group '{group}' of layout '{self.name}' names unknown channels {missing}.")

    @property
    def size(self) -> int:
        return len(self.channels)

    def indices(self, group: str) -> list[int]:
        """Column indices of a named group, in layout order."""
        if group not in self.groups:
            raise TalkingHeadError(f"Layout '{self.name}' has no channel group '{group}'.")
        wanted = set(self.groups[group])
        return [i for i, n in enumerate(self.channels) if n in wanted]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "channels": list(self.channels),
                "groups": {k: list(v) for k, v in self.groups.items()}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChannelLayout:
        """From :meth:`to_dict`'s mapping, each field checked (a name, a list of channel names, groups)."""
        return build_record(cls, data, "layout")


@dataclass
class MotionSequence:
    """Face motion over time. ``expression: [T, E]``, ``pose: [T, 6]``."""

    expression: np.ndarray
    pose: np.ndarray
    layout: ChannelLayout
    fps: float = 25.0
    identity: dict[str, np.ndarray] = field(default_factory=dict)
    source: str = ""

    def __post_init__(self) -> None:
        self.expression = np.asarray(self.expression, dtype=np.float32)
        self.pose = np.asarray(self.pose, dtype=np.float32)
        if self.expression.ndim != 2 or self.expression.shape[1] != self.layout.size:
            raise TalkingHeadError(
                f"Expression must be [T, {self.layout.size}] for layout '{self.layout.name}', "
                f"got {list(self.expression.shape)}."
            )
        if self.pose.shape != (len(self.expression), 6):
            raise TalkingHeadError(f"Pose must be [T, 6] with T={len(self.expression)}, got {list(self.pose.shape)}.")
        if not math.isfinite(self.fps) or self.fps <= 0:
            raise TalkingHeadError(f"Motion fps must be a finite number above 0, got {self.fps!r}.")

    def __len__(self) -> int:
        return len(self.expression)

    @property
    def duration(self) -> float:
        return len(self) / self.fps

    def channel(self, name: str) -> np.ndarray:
        """One expression channel's curve ``[T]``."""
        if name not in self.layout.channels:
            raise TalkingHeadError(f"Motion has no channel '{name}'.")
        return self.expression[:, self.layout.channels.index(name)]

    def slice(self, start: int, stop: int) -> MotionSequence:
        return MotionSequence(self.expression[start:stop], self.pose[start:stop], self.layout, self.fps,
                              self.identity, self.source)

    def save(self, path: str | Path) -> Path:
        """Write a ``.npz`` motion file atomically."""
        path = Path(path)
        if path.suffix != ".npz":
            raise TalkingHeadError(f"A motion file should end in .npz, got {path.name}.")
        meta = {"format": "talkinghead-motion", "version": MOTION_FORMAT_VERSION, "fps": self.fps,
                "layout": self.layout.to_dict(), "source": self.source, "pose_names": list(POSE_NAMES),
                "identity_keys": sorted(self.identity)}
        arrays = {"expression": self.expression, "pose": self.pose, "meta": np.array(json.dumps(meta)),
                  "channels": np.array(self.layout.channels)}
        for key, value in self.identity.items():
            arrays[f"identity/{key}"] = np.asarray(value)
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez_compressed(fh, **arrays)
        return path

    @classmethod
    def load(cls, path: str | Path) -> MotionSequence:
        """Read a motion file, checked: its ``meta`` (format, version, fps, layout, ...; :class:`MotionMeta`) and
        its arrays (numbers, the layout's shapes, finite)."""
        path = Path(path)
        if not path.is_file():
            raise TalkingHeadError(f"The motion file {path} does not exist.")
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = motion_meta(json.loads(str(data["meta"])), path)
                expression, pose = data["expression"], data["pose"]
                identity = {k: data[f"identity/{k}"] for k in meta.identity_keys}
        except TalkingHeadError:
            raise
        except READ_ERRORS as err:
            raise TalkingHeadError(f"{path} is not a readable motion file ({type(err).__name__}).") from err
        return cls(finite_array(expression, f"The expression of {path}"), finite_array(pose, f"The pose of {path}"),
                   meta.layout, meta.fps, identity, meta.source)


@dataclass(frozen=True)
class MotionMeta:
    """The ``meta`` JSON of a motion file (what :meth:`MotionSequence.save` writes)."""

    format: str
    version: int
    fps: Annotated[float, POSITIVE]
    layout: ChannelLayout
    source: str = ""
    pose_names: tuple[str, ...] = POSE_NAMES
    identity_keys: tuple[str, ...] = ()


def motion_meta(meta: Any, path: Path) -> MotionMeta:
    """The checked ``meta`` of the motion file ``path``: its format and version first, then every field."""
    if not isinstance(meta, dict) or meta.get("format") != "talkinghead-motion":
        raise TalkingHeadError(f"{path} is not a talkinghead motion file.")
    if meta.get("version") != MOTION_FORMAT_VERSION:
        raise TalkingHeadError(f"{path} is motion format version {meta.get('version')!r}; this talkinghead reads "
                               f"version {MOTION_FORMAT_VERSION}.")
    return read_record(MotionMeta, meta, f"The meta of {path}")


def finite_array(array: np.ndarray, what: str) -> np.ndarray:
    """``array`` as float32 when it holds finite real numbers (``what`` names it in the sentence otherwise)."""
    array = np.asarray(array)
    if array.dtype.kind not in "biuf":
        raise TalkingHeadError(f"{what} holds {array.dtype} values, not numbers.")
    with np.errstate(over="ignore"):
        values = array.astype(np.float32, copy=False)
    if not np.all(np.isfinite(values)):
        raise TalkingHeadError(f"{what} contains NaN or infinite values.")
    return values


# -- layout conversion and reference clips (moved from render/motion_input.py and dreamtalk/style_bank.py) --

MAX_REFERENCE_FRAMES = 256  # DreamTalk's longest style reference (App. C.1: 64..256 frames)


def expression_for_layout(motion: MotionSequence, layout: ChannelLayout) -> np.ndarray:
    """``motion.expression`` re-ordered into ``layout``'s channels ``[T, E]`` (by name; missing ones are 0).

    Refuses a motion sharing no channel with ``layout`` (e.g. Deep3DFace coefficients, which the warp
    renderer cannot interpret).
    """
    if tuple(motion.layout.channels) == tuple(layout.channels):
        return motion.expression
    shared = [c for c in motion.layout.channels if c in layout.channels]
    if not shared:
        raise TalkingHeadError(
            f"The motion's channel layout '{motion.layout.name}' shares no channel with the face model's "
            f"'{layout.name}' layout, so it cannot be rendered.")
    out = np.zeros((len(motion), layout.size), dtype=np.float32)
    for name in shared:
        out[:, layout.channels.index(name)] = motion.channel(name)
    return out


def pose_for_portrait(motion_pose: np.ndarray, fitted_pose: np.ndarray, mode: str) -> np.ndarray:
    """Poses ``[T, 6]`` to render: ``absolute`` as stored, ``relative`` = portrait pose + change from frame 0."""
    if mode == "absolute":
        return motion_pose
    if mode == "relative":
        return fitted_pose[None, :] + (motion_pose - motion_pose[:1])
    raise TalkingHeadError(f"The pose mode must be 'absolute' or 'relative', got '{mode}'.")


def middle_frames(x: np.ndarray, limit: int = MAX_REFERENCE_FRAMES) -> np.ndarray:
    """At most ``limit`` frames from the middle of ``x [N, ...]`` (a style reference clip)."""
    if len(x) <= limit:
        return x
    start = (len(x) - limit) // 2
    return x[start:start + limit]

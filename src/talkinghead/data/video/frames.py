"""Frames and per-frame labels of the video dataset: H.264 clip files, face crops that follow the head,
face boxes (EMO's face locator) and head rotation speed (EMO's speed layers).

EMO (Tian et al. 2024), Sec. 3.2 and Sec. 4.1: the face locator is conditioned on the union of the
clip's face bounding boxes; the speed layers on the head rotation velocity ``w^f``, "the rotational
degrees between frames" of the 6-DoF head pose estimated from facial landmarks. Both are labelled here
from the face model's pose and mesh, for rendered and for tracked real clips alike.

- :func:`encode_frames` writes RGB frames as one H.264 mp4 (no audio; default 4:4:4 chroma, CRF 14, a
  keyframe every 16 frames so that a random frame costs at most 15 extra decodes);
  :class:`ClipFrames` decodes chosen frames of such a file from its bytes (seek to the keyframe before,
  decode forward).
- :func:`face_boxes`, :func:`follow_crop`, :func:`boxes_in_crop`: a square crop of constant side per
  clip whose centre follows the face's box centre smoothed over time (a Gaussian of ``follow``
  seconds), and the face box in that crop's pixels.
- :func:`head_speed`: degrees of rotation between consecutive frames.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, ClassVar

import av
import numpy as np

from talkinghead.config import Config
from talkinghead.errors import TalkingHeadError
from talkinghead.face.topology import NUM_VERTICES
from talkinghead.io.files import atomic_path

PIXEL_FORMATS = ("yuv444p", "yuv420p")
_LOCAL = threading.local()


def _to_rgb(frame: Any) -> np.ndarray:
    """A decoded frame as RGB ``[H, W, 3]`` uint8, through one reformatter per thread and process (making a
    scaler context for every frame costs several times the decoding). The scaler runs single-threaded and is
    never shared with a forked child: a child (e.g. a DataLoader worker) would wait forever on the parent's
    scaler threads, which it does not have."""
    import os

    reformatter = getattr(_LOCAL, "reformatter", None)
    if reformatter is None or getattr(_LOCAL, "pid", None) != os.getpid():
        from av.video.reformatter import VideoReformatter

        reformatter = _LOCAL.reformatter = VideoReformatter()
        _LOCAL.pid = os.getpid()
    return np.asarray(reformatter.reformat(frame, format="rgb24", threads=1).to_ndarray())


@dataclass(frozen=True)
class CodecConfig(Config):
    """How a clip's frames are stored: H.264 ``crf`` (lower is better; 14 is visually lossless at these
    sizes), a keyframe every ``gop`` frames (random access cost), chroma ``pix_fmt`` (4:4:4 keeps the
    colour of lips and mouth interiors at 128 px; 4:2:0 is smaller) and x264's speed preset ``encoder_preset``."""

    crf: int = 14
    gop: int = 16
    pix_fmt: str = "yuv444p"
    encoder_preset: str = "fast"

    presets: ClassVar[dict[str, dict[str, Any]]] = {"tiny": {}, "cpu": {}, "paper": {}}

    def __post_init__(self) -> None:
        if not 0 <= self.crf <= 51:
            raise TalkingHeadError(f"The H.264 quality (crf) must be between 0 and 51, got {self.crf}.")
        if not 1 <= self.gop <= 250:
            raise TalkingHeadError(f"The keyframe interval must be between 1 and 250 frames, got {self.gop}.")
        if self.pix_fmt not in PIXEL_FORMATS:
            raise TalkingHeadError(f"The pixel format must be one of {', '.join(PIXEL_FORMATS)}, got '{self.pix_fmt}'.")


def encode_frames(path: str | Path, frames: Iterable[np.ndarray], fps: float, codec: CodecConfig | None = None,
                  comment: str = "") -> int:
    """Encode RGB uint8 frames ``[S, S, 3]`` (even sides) as an H.264 mp4 at ``path``, atomically.

    Returns the number of frames written. ``comment``: the container's comment tag.
    """
    codec = codec or CodecConfig()
    count = 0
    with atomic_path(path) as tmp:
        with av.open(str(tmp), mode="w", format="mp4") as out:
            if comment:
                out.metadata["comment"] = comment
            stream: Any = None
            for image in frames:
                image = np.asarray(image)
                if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or image.shape[0] % 2 \
                        or image.shape[1] % 2:
                    raise TalkingHeadError("Clip frames must be RGB uint8 [S, S, 3] with even sides.")
                if stream is None:
                    stream = out.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
                    stream.height, stream.width = image.shape[:2]
                    stream.pix_fmt = codec.pix_fmt
                    stream.options = {"crf": str(codec.crf), "preset": codec.encoder_preset, "g": str(codec.gop),
                                      "keyint_min": str(codec.gop), "threads": "1"}
                elif image.shape[:2] != (stream.height, stream.width):
                    raise TalkingHeadError("All frames of a clip must have the same size.")
                for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")):
                    out.mux(packet)
                count += 1
            if stream is None:
                raise TalkingHeadError("There are no frames to write.")
            for packet in stream.encode():
                out.mux(packet)
    return count


class ClipFrames:
    """Random access to the frames of one stored clip, from the mp4's bytes.

    ``read(indices)`` returns ``[K, S, S, 3]`` uint8 in the order asked; frames are decoded forward from
    the keyframe before each requested frame (a new seek only when the next wanted frame lies more than
    ``gop`` frames ahead or behind).
    """

    def __init__(self, data: bytes, fps: float, num_frames: int, gop: int = 16, name: str = "clip") -> None:
        self.data = data
        self.fps = float(fps)
        self.num_frames = int(num_frames)
        self.gop = max(1, int(gop))
        self.name = name

    @classmethod
    def from_file(cls, path: str | Path, fps: float, num_frames: int, gop: int = 16) -> ClipFrames:
        path = Path(path)
        try:
            return cls(path.read_bytes(), fps, num_frames, gop, str(path))
        except OSError as err:
            raise TalkingHeadError(f"The clip video {path} is missing or unreadable ({err.strerror}).") from err

    def all(self) -> np.ndarray:
        """Every frame ``[T, S, S, 3]``."""
        return self.read(range(self.num_frames))

    def read(self, indices: Sequence[int] | Iterable[int]) -> np.ndarray:
        wanted = [int(i) for i in indices]
        if not wanted:
            raise TalkingHeadError("No frame indices were asked for.")
        if min(wanted) < 0 or max(wanted) >= self.num_frames:
            raise TalkingHeadError(f"Frame indices must lie in [0, {self.num_frames}) for {self.name}.")
        order = sorted(set(wanted))
        got: dict[int, np.ndarray] = {}
        try:
            with av.open(io.BytesIO(self.data), mode="r") as container:
                stream = container.streams.video[0]
                stream.thread_type = "NONE"
                base = float(stream.time_base) if stream.time_base else 1.0 / 12800
                decoder: Any = None
                position = -1  # index of the last frame decoded
                for target in order:
                    if decoder is None or target <= position or target - position > self.gop:
                        container.seek(int(round(target / self.fps / base)), stream=stream, backward=True,
                                       any_frame=False)
                        decoder = container.decode(stream)
                        position = -1
                    for frame in decoder:
                        position = int(round(float(frame.pts * base) * self.fps)) if frame.pts is not None \
                            else position + 1
                        if position == target:
                            got[target] = _to_rgb(frame)
                            break
                        if position > target:
                            break
                    if target not in got:
                        raise TalkingHeadError(f"Frame {target} of {self.name} could not be decoded.")
        except av.error.FFmpegError as err:
            raise TalkingHeadError(f"The clip video {self.name} is corrupt ({type(err).__name__}).") from err
        return np.stack([got[i] for i in wanted])


# ------------------------------------------------------------------------------------- per-frame labels

def face_boxes(vertices: np.ndarray) -> np.ndarray:
    """Face bounding boxes ``[T, 4] = (x0, y0, x1, y1)`` of face meshes ``vertices [T, 468+, 2+]`` (pixels)."""
    v = np.asarray(vertices, dtype=np.float64)
    if v.ndim != 3 or v.shape[1] < NUM_VERTICES or v.shape[2] < 2:
        raise TalkingHeadError(f"Face meshes must be [T, {NUM_VERTICES}, 2], got {list(v.shape)}.")
    xy = v[:, :NUM_VERTICES, :2]
    return np.concatenate([xy.min(1), xy.max(1)], axis=1).astype(np.float32)


def box_extent(boxes: np.ndarray) -> np.ndarray:
    """The larger side of each box ``[T, 4]`` -> ``[T]`` (the face size a crop is scaled to)."""
    b = np.asarray(boxes, dtype=np.float64)
    return np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1])


def follow_crop(boxes: np.ndarray, side: float, fps: float, follow: float = 0.5) -> np.ndarray:
    """Square crops ``[T, 3] = (x0, y0, side)`` (image pixels) of constant ``side`` whose centre is the
    face box centre (``boxes [T, 4]``) smoothed by a Gaussian of ``follow`` seconds (0: no smoothing), so
    the crop follows the head without shaking with it."""
    from scipy.ndimage import gaussian_filter1d

    b = np.asarray(boxes, dtype=np.float64)
    centre = 0.5 * (b[:, :2] + b[:, 2:])
    if follow > 0 and len(b) > 1:
        centre = gaussian_filter1d(centre, sigma=follow * fps, axis=0, mode="nearest")
    out = np.empty((len(b), 3), dtype=np.float64)
    out[:, :2] = centre - side / 2.0
    out[:, 2] = side
    return out


def boxes_in_crop(boxes: np.ndarray, crops: np.ndarray, size: int) -> np.ndarray:
    """Image-pixel boxes ``[T, 4]`` in the pixels of crops ``[T, 3]`` rendered at ``size`` -> ``[T, 4]``."""
    b = np.asarray(boxes, dtype=np.float64)
    c = np.asarray(crops, dtype=np.float64)
    scale = size / c[:, 2:3]
    origin = np.concatenate([c[:, :2], c[:, :2]], axis=1)
    return ((b - origin) * scale).astype(np.float32)


def points_in_crop(points: np.ndarray, crops: np.ndarray, size: int) -> np.ndarray:
    """Image-pixel points ``[T, N, 2]`` in the pixels of crops ``[T, 3]`` rendered at ``size``."""
    c = np.asarray(crops, dtype=np.float64)
    return ((np.asarray(points, dtype=np.float64)[..., :2] - c[:, None, :2]) * (size / c[:, None, 2:3])
            ).astype(np.float32)


def head_speed(pose: np.ndarray) -> np.ndarray:
    """Head rotation speed ``[T]`` in degrees per frame from poses ``[T, 6]`` (pitch, yaw, roll first):
    the angle of ``R_t R_{t-1}^T`` (EMO Sec. 3.2, ``w^f``); frame 0 takes frame 1's value."""
    from talkinghead.face.model import euler_to_matrix

    pose = np.asarray(pose, dtype=np.float64)
    if pose.ndim != 2 or pose.shape[1] < 3:
        raise TalkingHeadError(f"Poses must be [T, 6], got {list(pose.shape)}.")
    if len(pose) < 2:
        return np.zeros(len(pose), dtype=np.float32)
    rot = euler_to_matrix(pose[:, :3])
    rel = np.einsum("tij,tkj->tik", rot[1:], rot[:-1])  # R_t R_{t-1}^T
    cos = np.clip((np.einsum("tii->t", rel) - 1.0) / 2.0, -1.0, 1.0)
    speed = np.degrees(np.arccos(cos))
    return np.concatenate([speed[:1], speed]).astype(np.float32)


def union_box(boxes: np.ndarray) -> np.ndarray:
    """The union ``[4]`` of boxes ``[T, 4]`` (EMO's face-locator region ``M``: all frames' boxes)."""
    b = np.asarray(boxes, dtype=np.float32)
    return np.concatenate([b[:, :2].min(0), b[:, 2:].max(0)])


def box_mask(box: np.ndarray, size: int) -> np.ndarray:
    """A ``[size, size]`` float32 mask, 1 inside ``box = (x0, y0, x1, y1)`` (pixel centres), else 0."""
    x0, y0, x1, y1 = (float(v) for v in box)
    grid = np.arange(size, dtype=np.float32)
    inside_x = (grid >= x0) & (grid <= x1)
    inside_y = (grid >= y0) & (grid <= y1)
    return (inside_y[:, None] & inside_x[None, :]).astype(np.float32)

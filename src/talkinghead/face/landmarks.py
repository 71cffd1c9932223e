"""Face detection and 478-point landmarks with MediaPipe (the Deep3DFace stand-in's front end).

Issue 3, item 1. MediaPipe 0.10.21 ships its face detection and face-mesh models inside the wheel,
so nothing is downloaded (STACK.md). This module:

- detects every face with ``FaceDetection`` (full-range model, so small faces are found too) and
  orders them left to right; without ``face_index`` the largest face is chosen. The full-range model
  misses faces that fill the picture (tight close-ups), so when it finds none the search falls back,
  in order, to the short-range model, the full-range model on the image framed by a 50% border (the
  close-up becomes a mid-size face), and the face mesh's own detection on the whole image; the first
  that finds a face decides (issue 12, item 5);
- runs ``FaceMesh(refine_landmarks=True)`` on a square crop around the chosen face (twice the box),
  so the mesh belongs to that face even when there are several, and maps the points back:
  :class:`FaceLandmarks.points` is ``[478, 3]`` in image pixels ``(x right, y down, z)`` where ``z``
  is MediaPipe's relative depth scaled like ``x`` (negative toward the camera). Points 468..477 are
  the irises;
- tracks videos frame by frame from a crop around the previous frame's landmarks, re-detecting
  when the face is lost; short dropouts (``max_missing`` frames) are interpolated, longer ones end
  with a :class:`TalkingHeadError` naming the frame and time (:func:`follow_face` tracks the same way
  but yields None for frames without the face and never raises, for measuring videos);
- smooths tracks with a One Euro filter (Casiez et al., CHI 2012): a low-pass filter whose cutoff
  rises with the landmark's speed, so a still face loses its jitter while a fast mouth opening is
  followed within a frame or two. Speeds are measured in face widths per second, so the same
  parameters work for any image size.

No face, a face smaller than ``min_face_size`` pixels, an out-of-range ``face_index`` and a face
the tracker loses each end with one clear sentence.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from talkinghead.errors import TalkingHeadError
from talkinghead.face.topology import NUM_LANDMARKS, NUM_VERTICES, STABLE_VERTICES
from talkinghead.lazy import defer_module

MIN_FACE_SIZE = 40

_lock = threading.Lock()
_solutions: dict[str, Any] = {}


@dataclass(frozen=True)
class FaceBox:
    """A detected face: pixel box ``(x0, y0, x1, y1)`` and detector confidence."""

    x0: float
    y0: float
    x1: float
    y1: float
    score: float

    @property
    def size(self) -> float:
        return max(self.x1 - self.x0, self.y1 - self.y0)

    @property
    def center(self) -> tuple[float, float]:
        return (0.5 * (self.x0 + self.x1), 0.5 * (self.y0 + self.y1))


@dataclass
class FaceLandmarks:
    """478 landmarks of one face. ``points: [478, 3]`` pixels (x, y, MediaPipe z scaled like x)."""

    points: np.ndarray
    box: FaceBox
    image_size: tuple[int, int]  # (height, width)

    @property
    def mesh(self) -> np.ndarray:
        """The 468 face-mesh vertices ``[468, 3]`` (no irises)."""
        return self.points[:NUM_VERTICES]


def _check_image(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise TalkingHeadError("Face detection needs an RGB uint8 image of shape [H, W, 3].")
    return np.ascontiguousarray(image)


@contextlib.contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    """Silence MediaPipe's native start-up warnings (written straight to file descriptor 2)."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _run(name: str, solution: Any, image: np.ndarray) -> Any:
    """``solution.process(image)`` under the lock; the first call per solution runs silenced."""
    with _lock:
        if _solutions.get(f"{name}_warm"):
            return solution.process(image)
        with _quiet_native_stderr():
            result = solution.process(image)
        _solutions[f"{name}_warm"] = True
        return result


def _mediapipe() -> Any:
    """``import mediapipe``, with ``matplotlib.pyplot`` (which its drawing utilities import at the package's import,
    0.3-0.6 s, and the toolkit never draws with) deferred until something reads from it."""
    if "mediapipe" not in sys.modules:
        defer_module("matplotlib.pyplot")
    import mediapipe

    return mediapipe


def _detector(model_selection: int = 1) -> Any:
    """MediaPipe's face detector: ``1`` the full-range model (faces up to ~5 m), ``0`` the short-range one
    (faces within ~2 m, i.e. large in the picture)."""
    name = "detector" if model_selection == 1 else "detector_short"
    with _lock:
        if name not in _solutions:
            mp = _mediapipe()

            with _quiet_native_stderr():
                _solutions[name] = mp.solutions.face_detection.FaceDetection(
                    model_selection=model_selection, min_detection_confidence=0.5)
        return _solutions[name]


def _mesh() -> Any:
    with _lock:
        if "mesh" not in _solutions:
            mp = _mediapipe()

            with _quiet_native_stderr():
                _solutions["mesh"] = mp.solutions.face_mesh.FaceMesh(
                    static_image_mode=True, max_num_faces=1, refine_landmarks=True, min_detection_confidence=0.5)
        return _solutions["mesh"]


MAX_MESH_FACES = 8


def _mesh_finder() -> Any:
    """A face mesh that finds up to :data:`MAX_MESH_FACES` faces in a whole image (the last fallback)."""
    with _lock:
        if "mesh_finder" not in _solutions:
            mp = _mediapipe()

            with _quiet_native_stderr():
                _solutions["mesh_finder"] = mp.solutions.face_mesh.FaceMesh(
                    static_image_mode=True, max_num_faces=MAX_MESH_FACES, refine_landmarks=False,
                    min_detection_confidence=0.5)
        return _solutions["mesh_finder"]


def _detector_boxes(image: np.ndarray, model_selection: int) -> list[FaceBox]:
    """Boxes of one face-detector model in pixels of ``image``."""
    h, w = image.shape[:2]
    name = "detector" if model_selection == 1 else "detector_short"
    result = _run(name, _detector(model_selection), image)
    boxes = []
    for d in result.detections or []:
        b = d.location_data.relative_bounding_box
        boxes.append(FaceBox(b.xmin * w, b.ymin * h, (b.xmin + b.width) * w, (b.ymin + b.height) * h,
                             float(d.score[0])))
    return boxes


def _framed_boxes(image: np.ndarray, border: float = 0.5) -> list[FaceBox]:
    """Full-range boxes on ``image`` framed by a grey border of ``border`` times its longer side on
    every edge, so a face that fills the picture becomes a mid-size one; boxes in ``image`` pixels."""
    pad = int(round(border * max(image.shape[:2])))
    framed = np.pad(image, ((pad, pad), (pad, pad), (0, 0)), constant_values=127)
    return [FaceBox(b.x0 - pad, b.y0 - pad, b.x1 - pad, b.y1 - pad, b.score)
            for b in _detector_boxes(framed, 1)]


def _mesh_boxes(image: np.ndarray) -> list[FaceBox]:
    """Boxes of the faces the face mesh finds in the whole image (the extent of each face's points,
    which matches the detector's square box in height to within a few percent)."""
    h, w = image.shape[:2]
    result = _run("mesh_finder", _mesh_finder(), image)
    boxes = []
    for face in result.multi_face_landmarks or []:
        pts = np.array([[p.x * w, p.y * h] for p in face.landmark], dtype=np.float64)
        boxes.append(_box_of(pts, score=0.5))
    return boxes


def detect_faces(image: np.ndarray) -> list[FaceBox]:
    """All faces in ``image: [H, W, 3] uint8``, ordered left to right.

    The full-range detector decides whenever it finds a face; only when it finds none (it misses
    faces that fill the picture) do the short-range detector, the full-range detector on the image
    framed by a border, and the face mesh's own detection run, in that order, until one finds a face.
    """
    image = _check_image(image)
    finders = (lambda im: _detector_boxes(im, 1), lambda im: _detector_boxes(im, 0), _framed_boxes, _mesh_boxes)
    for find in finders:
        boxes = find(image)
        if boxes:
            return sorted(boxes, key=lambda b: b.center[0])
    return []


def choose_face(boxes: list[FaceBox], face_index: int | None = None) -> FaceBox:
    """The largest face, or the ``face_index``-th from the left."""
    if not boxes:
        raise TalkingHeadError("No face was found in the image; use a portrait where the face is clearly visible.")
    if face_index is None:
        return max(boxes, key=lambda b: b.size)
    if not 0 <= face_index < len(boxes):
        raise TalkingHeadError(
            f"--face-index {face_index} is out of range: {len(boxes)} face(s) were found "
            f"(numbered 0 to {len(boxes) - 1} from left to right).")
    return boxes[face_index]


def _square_crop(image: np.ndarray, cx: float, cy: float, side: float) -> tuple[np.ndarray, float, float]:
    """A square crop (edge-padded where it leaves the image) and its top-left corner in pixels."""
    side = max(int(round(side)), 16)
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    h, w = image.shape[:2]
    pad = max(0, -x0, -y0, x0 + side - w, y0 + side - h)
    if pad:
        image = np.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    crop = image[y0 + pad:y0 + pad + side, x0 + pad:x0 + pad + side]
    return np.ascontiguousarray(crop), float(x0), float(y0)


def _mesh_in_crop(image: np.ndarray, cx: float, cy: float, side: float) -> np.ndarray | None:
    """Landmarks ``[478, 3]`` in image pixels of the face centred in a square crop, or None."""
    crop, x0, y0 = _square_crop(image, cx, cy, side)
    result = _run("mesh", _mesh(), crop)
    if not result.multi_face_landmarks:
        return None
    s = crop.shape[1]
    pts = np.array([[p.x, p.y, p.z] for p in result.multi_face_landmarks[0].landmark], dtype=np.float64)
    if len(pts) != NUM_LANDMARKS:
        return None
    pts *= s
    pts[:, 0] += x0
    pts[:, 1] += y0
    return pts.astype(np.float32)


def _box_of(points: np.ndarray, score: float = 1.0) -> FaceBox:
    lo, hi = points[:, :2].min(0), points[:, :2].max(0)
    return FaceBox(float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1]), score)


def detect_landmarks(image: np.ndarray, face_index: int | None = None,
                     min_face_size: int = MIN_FACE_SIZE) -> FaceLandmarks:
    """Detect the chosen face of ``image: [H, W, 3] uint8`` and its 478 landmarks."""
    image = _check_image(image)
    box = choose_face(detect_faces(image), face_index)
    if box.size < min_face_size:
        raise TalkingHeadError(
            f"The face is only {box.size:.0f} pixels wide; talkinghead needs at least {min_face_size} "
            "pixels, so use a larger or closer portrait.")
    cx, cy = box.center
    points = _mesh_in_crop(image, cx, cy, 2.0 * box.size)
    if points is None:
        raise TalkingHeadError("A face was detected but its landmarks could not be found; "
                               "use a clearer, more frontal portrait.")
    return FaceLandmarks(points, box, (image.shape[0], image.shape[1]))


class OneEuroFilter:
    """One Euro filter (Casiez, Roussel, Vogel, CHI 2012) over landmark sets ``[N, D]``.

    Each point gets its own adaptive cutoff ``f_c = min_cutoff + beta * |dx/dt|`` from the speed of
    that point (Euclidean over its coordinates), measured in ``scale`` units per second (face widths
    for landmarks). ``alpha = 1 / (1 + tau / T_e)``, ``tau = 1 / (2 pi f_c)``.
    """

    def __init__(self, fps: float, min_cutoff: float = 1.5, beta: float = 8.0, d_cutoff: float = 10.0) -> None:
        if fps <= 0:
            raise TalkingHeadError("The filter needs a positive frame rate.")
        self.dt = 1.0 / fps
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff
        self.x: np.ndarray | None = None
        self.dx: np.ndarray | None = None

    def _alpha(self, cutoff: np.ndarray | float) -> np.ndarray:
        tau = 1.0 / (2.0 * math.pi * np.asarray(cutoff, dtype=np.float64))
        return 1.0 / (1.0 + tau / self.dt)

    def reset(self) -> None:
        self.x = self.dx = None

    def __call__(self, x: np.ndarray, scale: float = 1.0) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if self.x is None or self.dx is None:
            self.x, self.dx = x.copy(), np.zeros(x.shape[0])
            return x.copy()
        speed = np.linalg.norm(x - self.x, axis=-1) / (self.dt * max(scale, 1e-9))
        a_d = self._alpha(self.d_cutoff)
        self.dx = a_d * speed + (1.0 - a_d) * self.dx
        a = self._alpha(self.min_cutoff + self.beta * self.dx)[:, None]
        self.x = a * x + (1.0 - a) * self.x
        return self.x.copy()


def smooth_landmarks(tracks: np.ndarray, fps: float, min_cutoff: float = 1.5, beta: float = 8.0,
                     d_cutoff: float = 10.0) -> np.ndarray:
    """Remove jitter from a landmark track ``[T, 468 or 478, 3]`` (pixels); returns the same shape.

    Head motion and face deformation are separated first: each frame's similarity to frame 0 is
    fitted on the stable points (Umeyama), the One Euro filter runs on the head-aligned landmarks
    (so only the non-rigid part, where per-point jitter lives, is filtered), and the frame's own
    similarity is put back. The pose, averaged over ~40 points, is far less noisy than any single
    point and is kept unfiltered, so fast head turns do not lag either.
    """
    from talkinghead.face.fit import umeyama

    tracks = np.asarray(tracks, dtype=np.float64)
    if tracks.ndim != 3 or tracks.shape[1] < NUM_VERTICES or tracks.shape[2] != 3:
        raise TalkingHeadError("Landmark tracks to smooth must be [T, 468 or 478, 3].")
    t = len(tracks)
    ref = np.broadcast_to(tracks[0, STABLE_VERTICES], (t, len(STABLE_VERTICES), 3))
    s, rot, trans = umeyama(ref, tracks[:, STABLE_VERTICES])
    aligned = np.einsum("tji,tnj->tni", rot, tracks - trans[:, None]) / s[:, None, None]  # R^T (P - t) / s
    width = float(np.ptp(tracks[0, :NUM_VERTICES, 0])) or 1.0
    filt = OneEuroFilter(fps, min_cutoff, beta, d_cutoff)
    smoothed = np.stack([filt(frame, width) for frame in aligned])
    out = s[:, None, None] * np.einsum("tij,tnj->tni", rot, smoothed) + trans[:, None]
    return out.astype(np.float32)


@dataclass
class LandmarkTrack:
    """Landmarks of one face over a video: ``points [T, 478, 3]`` pixels, ``found [T]`` bool."""

    points: np.ndarray
    found: np.ndarray
    fps: float
    image_size: tuple[int, int]


def track_landmarks(frames: Iterable[np.ndarray], fps: float, face_index: int | None = None,
                    min_face_size: int = MIN_FACE_SIZE, smooth: bool = True, max_missing: int = 5,
                    total: int | None = None) -> LandmarkTrack:
    """Track one face through ``frames`` (each ``[H, W, 3]`` uint8).

    The face is chosen on the first frame (largest, or ``face_index`` from the left); later frames
    are searched in a crop around the previous landmarks, falling back to a full-frame detection
    of the face nearest the last position. Gaps up to ``max_missing`` frames are interpolated.
    """
    from talkinghead.log import progress

    pts_list: list[np.ndarray | None] = []
    size: tuple[int, int] | None = None
    prev: np.ndarray | None = None
    missing = 0
    for t, frame in enumerate(progress(frames, "tracking face", total=total)):
        frame = _check_image(frame)
        if size is None:
            size = (frame.shape[0], frame.shape[1])
            first = detect_landmarks(frame, face_index, min_face_size)
            pts: np.ndarray | None = first.points
        elif (frame.shape[0], frame.shape[1]) != size:
            raise TalkingHeadError(f"Frame {t} has a different size from the first frame.")
        else:
            pts = _track_step(frame, prev) if prev is not None else None
        if pts is None:
            missing += 1
            if missing > max_missing:
                raise TalkingHeadError(
                    f"The face was lost at frame {t - missing + 1} ({(t - missing + 1) / fps:.2f} s) "
                    f"and not found again within {max_missing} frames.")
        else:
            missing = 0
            prev = pts
        pts_list.append(pts)
    if size is None:
        raise TalkingHeadError("The video has no frames to track.")
    if missing:
        raise TalkingHeadError(
            f"The face was lost at frame {len(pts_list) - missing} ({(len(pts_list) - missing) / fps:.2f} s) "
            "and not found again before the end of the video.")
    found = np.array([p is not None for p in pts_list])
    points = _interpolate_gaps(pts_list)
    if smooth and len(points) > 1:
        points = smooth_landmarks(points, fps)
    return LandmarkTrack(points, found, fps, size)


def follow_face(frames: Iterable[np.ndarray], face_index: int | None = None,
                min_face_size: int = MIN_FACE_SIZE) -> Iterator[np.ndarray | None]:
    """Landmarks ``[478, 3]`` of one face in each frame, or None where it is not found: raw (not
    smoothed) and never raising for a lost face, for measuring videos. Each frame is searched around
    the last landmarks found, else detected afresh (the chosen face: largest or ``face_index``)."""
    prev: np.ndarray | None = None
    for frame in frames:
        frame = _check_image(frame)
        pts = _track_step(frame, prev) if prev is not None else None
        if pts is None:
            try:
                pts = detect_landmarks(frame, face_index, min_face_size).points
            except TalkingHeadError:
                pts = None
        if pts is not None:
            prev = pts
        yield pts


def _track_step(frame: np.ndarray, prev: np.ndarray) -> np.ndarray | None:
    box = _box_of(prev)
    cx, cy = box.center
    pts = _mesh_in_crop(frame, cx, cy, 1.7 * box.size)
    if pts is not None:
        return pts
    boxes = detect_faces(frame)
    if not boxes:
        return None
    near = min(boxes, key=lambda b: math.hypot(b.center[0] - cx, b.center[1] - cy))
    if math.hypot(near.center[0] - cx, near.center[1] - cy) > box.size:
        return None
    return _mesh_in_crop(frame, near.center[0], near.center[1], 2.0 * near.size)


def _interpolate_gaps(pts_list: list[np.ndarray | None]) -> np.ndarray:
    known = [i for i, p in enumerate(pts_list) if p is not None]
    out = np.empty((len(pts_list), NUM_LANDMARKS, 3), dtype=np.float32)
    for i, p in enumerate(pts_list):
        if p is not None:
            out[i] = p
            continue
        before = max(k for k in known if k < i)
        after = min(k for k in known if k > i)
        w = (i - before) / (after - before)
        out[i] = (1 - w) * out[before] + w * pts_list[after]  # type: ignore[operator]
    return out

"""``track``: an image or a video to a :class:`MotionSequence` of the face model (issue 3, item 3).

Stages: (1) landmarks of the chosen face (:mod:`talkinghead.face.landmarks`; videos are tracked and
smoothed with the One Euro filter), (2) the identity from the first frame (its own shape becomes
the neutral, so a still portrait fits to expression 0), (3) pose and expression of every frame
(:class:`talkinghead.face.fit.ExpressionFitter`). The result uses :data:`ARKIT_LAYOUT`, carries the
identity (neutral, descriptor, reference frame, image size) and names its source.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from talkinghead.errors import TalkingHeadError
from talkinghead.face.fit import ExpressionFitter, FitConfig
from talkinghead.face.landmarks import MIN_FACE_SIZE, detect_landmarks, track_landmarks
from talkinghead.face.model import ARKIT_LAYOUT, rest_identity_from_landmarks
from talkinghead.sequence import MotionSequence

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif"}


def motion_from_landmarks(points: np.ndarray, image_size: tuple[int, int], fps: float = 25.0, source: str = "",
                          config: FitConfig | None = None) -> MotionSequence:
    """Fit landmark frames ``[T, 478 or 468, 3]`` (pixels). The identity is frame 0's face at rest (closed,
    relaxed lips: :func:`~talkinghead.face.model.rest_identity_from_landmarks`), so the coefficients are
    absolute, like the portrait fit's and the models': frame 0 gets what its own face shows."""
    points = np.asarray(points, dtype=np.float32)
    if points.ndim != 3 or len(points) == 0:
        raise TalkingHeadError("There are no landmark frames to fit.")
    identity, _, _ = rest_identity_from_landmarks(points[0], image_size)
    fitter = ExpressionFitter(identity, config)
    expression, pose = fitter.fit(points)
    return MotionSequence(expression, pose, ARKIT_LAYOUT, fps, identity, source)


def track_image(image: np.ndarray, face_index: int | None = None, source: str = "image",
                min_face_size: int = MIN_FACE_SIZE) -> MotionSequence:
    """A one-frame motion of a portrait ``[H, W, 3] uint8``."""
    lm = detect_landmarks(image, face_index, min_face_size)
    return motion_from_landmarks(lm.points[None], lm.image_size, 25.0, source)


def track_frames(frames: np.ndarray, fps: float, face_index: int | None = None, smooth: bool = True,
                 source: str = "frames", min_face_size: int = MIN_FACE_SIZE,
                 config: FitConfig | None = None) -> MotionSequence:
    """Motion of the chosen face in ``frames [T, H, W, 3] uint8`` (or any iterable of frames)."""
    total = len(frames) if hasattr(frames, "__len__") else None
    track = track_landmarks(frames, fps, face_index, min_face_size, smooth, total=total)
    return motion_from_landmarks(track.points, track.image_size, fps, source, config)


def track_path(path: str | Path, fps: float | None = 25.0, face_index: int | None = None, smooth: bool = True,
               min_face_size: int = MIN_FACE_SIZE) -> MotionSequence:
    """Track an image or video file; videos are resampled to ``fps`` (None keeps their rate)."""
    path = Path(path)
    if not path.exists():
        raise TalkingHeadError(f"The input {path} does not exist.")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        from talkinghead.io.image import load_image

        return track_image(load_image(path), face_index, str(path), min_face_size)
    from talkinghead.io.video import iter_frames, probe_video

    info = probe_video(path)
    rate = float(fps or info.fps)
    total = int(round(info.duration * rate)) if info.duration > 0 else None
    track = track_landmarks(iter_frames(path, fps), rate, face_index, min_face_size, smooth, total=total)
    return motion_from_landmarks(track.points, track.image_size, rate, str(path))

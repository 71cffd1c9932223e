"""MediaPipe landmarks: detection, face choice, clear errors; the One Euro jitter filter."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from talkinghead.errors import TalkingHeadError
from talkinghead.face import landmarks
from talkinghead.face.landmarks import (
    OneEuroFilter,
    detect_faces,
    detect_landmarks,
    smooth_landmarks,
    track_landmarks,
)


def _two_faces(img: np.ndarray) -> np.ndarray:
    small = np.pad(cv2.resize(img, (256, 256)), ((128, 128), (0, 0), (0, 0)), constant_values=200)
    return np.concatenate([img, small], axis=1)


def test_astronaut_landmarks(astronaut: np.ndarray, astronaut_fit) -> None:  # noqa: ANN001
    lm = detect_landmarks(astronaut)
    assert lm.points.shape == (478, 3) and lm.image_size == (512, 512)
    box = lm.box
    inside = ((lm.points[:, 0] > box.x0 - 20) & (lm.points[:, 0] < box.x1 + 20)
              & (lm.points[:, 1] > box.y0 - 40) & (lm.points[:, 1] < box.y1 + 20))
    assert inside.all()
    # Anatomy: the subject's left eye (263) is on the image right, the chin below the nose,
    # the left iris centre (473) between that eye's corners.
    p = lm.points
    assert p[263, 0] > p[33, 0] and p[152, 1] > p[1, 1] > p[10, 1]
    assert p[362, 0] < p[473, 0] < p[263, 0]
    np.testing.assert_allclose(astronaut_fit.landmarks, p[:, :2], atol=1e-3)  # deterministic


def test_several_faces_largest_by_default_or_by_index(astronaut: np.ndarray) -> None:
    image = _two_faces(astronaut)
    boxes = detect_faces(image)
    assert len(boxes) == 2 and boxes[0].center[0] < boxes[1].center[0]
    assert detect_landmarks(image).points[:, 0].mean() < 512
    right = detect_landmarks(image, face_index=1)
    assert right.points[:, 0].mean() > 512 and right.box.size < 60
    with pytest.raises(TalkingHeadError, match="out of range"):
        detect_landmarks(image, face_index=2)


def test_no_face_and_tiny_face_are_clear_errors(astronaut: np.ndarray) -> None:
    with pytest.raises(TalkingHeadError, match="No face"):
        detect_landmarks(np.full((256, 256, 3), 127, np.uint8))
    canvas = np.full((512, 512, 3), 200, np.uint8)
    canvas[100:260, 100:260] = cv2.resize(astronaut, (160, 160), interpolation=cv2.INTER_AREA)
    with pytest.raises(TalkingHeadError, match="pixels wide"):
        detect_landmarks(canvas)
    with pytest.raises(TalkingHeadError, match="RGB uint8"):
        detect_landmarks(np.zeros((64, 64), np.uint8))


def _close_up(img: np.ndarray) -> np.ndarray:
    """The astronaut's face (about 100 px in the photo) cropped tight and upscaled to 512 x 512, so it
    fills the frame from eyebrows to chin: the full-range detector misses it, the face mesh does not."""
    return np.ascontiguousarray(cv2.resize(img[75:175, 176:276], (512, 512), interpolation=cv2.INTER_CUBIC))


def _one_sentence(message: str) -> bool:
    return message.endswith(".") and ". " not in message and "\n" not in message


def test_close_up_missed_by_the_full_range_detector_is_found(astronaut: np.ndarray) -> None:
    close = _close_up(astronaut)
    assert landmarks._detector_boxes(close, 1) == []  # the case of issue 12: full range sees no face
    lm = detect_landmarks(close)
    assert lm.box.size > 400 and lm.image_size == (512, 512)
    p = lm.points
    assert p[263, 0] > p[33, 0] and p[152, 1] > p[14, 1] > p[13, 1] > p[1, 1]
    # The same landmarks as in the whole photo, moved into the crop (within 2% of the crop).
    whole = detect_landmarks(astronaut).points[:, :2]
    expected = (whole - np.array([176.0, 75.0])) * 5.12
    err = np.linalg.norm(p[:, :2] - expected, axis=1)
    assert np.median(err) < 10.0, np.median(err)


def test_fallbacks_keep_several_faces_and_face_index(astronaut: np.ndarray,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    close = _close_up(astronaut)
    smaller = np.pad(cv2.resize(close, (384, 384)), ((64, 64), (0, 0), (0, 0)), constant_values=200)
    pair = np.ascontiguousarray(np.concatenate([close, smaller], axis=1))
    real = landmarks._detector_boxes

    def check() -> None:
        boxes = detect_faces(pair)
        assert len(boxes) == 2 and boxes[0].center[0] < 512 < boxes[1].center[0]
        assert detect_landmarks(pair).points[:, 0].mean() < 512  # the largest
        assert detect_landmarks(pair, face_index=1).points[:, 0].mean() > 512
        with pytest.raises(TalkingHeadError, match="out of range"):
            detect_landmarks(pair, face_index=2)

    # Only the short-range detector (the full-range one finds nothing).
    monkeypatch.setattr(landmarks, "_detector_boxes", lambda im, m: [] if m == 1 else real(im, m))
    check()
    # No detector at all: the face mesh's own detection.
    monkeypatch.setattr(landmarks, "_detector_boxes", lambda im, m: [])
    assert all(b.score == 0.5 for b in detect_faces(pair))
    check()


def test_no_face_after_every_fallback_is_one_sentence() -> None:
    for blank in (np.full((256, 256, 3), 127, np.uint8), np.zeros((300, 200, 3), np.uint8)):
        assert detect_faces(blank) == []
        with pytest.raises(TalkingHeadError, match="No face") as err:
            detect_landmarks(blank)
        assert _one_sentence(str(err.value)), str(err.value)


def test_one_euro_removes_jitter_but_follows_a_fast_step() -> None:
    rng = np.random.default_rng(0)
    base = rng.uniform(0, 100, (478, 3))  # a face 100 px wide
    t = 120
    track = np.repeat(base[None], t, axis=0) + rng.normal(0.0, 0.5, (t, 478, 3))
    mouth = [14, 17, 84, 314, 87]  # lower-lip points
    track[60:, mouth, 1] += 20.0  # the mouth opens by a fifth of the face in one frame
    out = smooth_landmarks(track, fps=25.0)
    still = slice(10, 60)
    raw_jitter = np.diff(track[still], axis=0).std()
    assert np.diff(out[still], axis=0).std() < 0.5 * raw_jitter
    # Within two frames of the step the mouth points are within 10% of the new opening.
    reached = (out[60:66, mouth, 1] - base[None, mouth, 1]) / 20.0
    assert reached[1].mean() > 0.95, reached.mean(1)
    assert reached[0].mean() > 0.8
    np.testing.assert_allclose(out[0], track[0], atol=1e-4)  # no start-up lag
    with pytest.raises(TalkingHeadError):
        OneEuroFilter(0.0)


def test_smoothing_does_not_lag_head_motion() -> None:
    rng = np.random.default_rng(1)
    base = rng.uniform(0, 100, (478, 3))
    angles = np.radians(np.r_[np.zeros(5), np.arange(1, 11) * 4.0])  # a fast turn, 4 degrees a frame
    c, s = np.cos(angles), np.sin(angles)
    rot = np.zeros((len(angles), 3, 3))
    rot[:, 0, 0], rot[:, 0, 1], rot[:, 1, 0], rot[:, 1, 1], rot[:, 2, 2] = c, -s, s, c, 1.0
    track = np.einsum("tij,nj->tni", rot, base - 50.0) + 50.0
    out = smooth_landmarks(track + rng.normal(0.0, 0.3, track.shape), fps=25.0)
    assert np.abs(out - track).max() < 2.0  # no lag beyond the noise


def test_tracking_follows_a_moving_face_and_reports_loss(astronaut: np.ndarray) -> None:
    frames = [np.roll(astronaut, shift=(0, 3 * k), axis=(0, 1)) for k in range(6)]
    track = track_landmarks(frames, fps=25.0, smooth=False)
    shift = track.points[:, :468, 0].mean(1) - track.points[0, :468, 0].mean()
    np.testing.assert_allclose(shift, 3.0 * np.arange(6), atol=1.0)
    lost = frames[:2] + [np.full_like(astronaut, 127)] * 4
    with pytest.raises(TalkingHeadError, match="lost at frame 2"):
        track_landmarks(lost, fps=25.0, max_missing=2)
    gap = frames[:2] + [np.full_like(astronaut, 127)] + frames[3:]
    filled = track_landmarks(gap, fps=25.0, smooth=False, max_missing=2)
    assert not filled.found[2] and filled.found[3]
    np.testing.assert_allclose(filled.points[2], 0.5 * (filled.points[1] + filled.points[3]), atol=1e-3)

"""Round trip on a real portrait (issue 3 "done when"): render known motion with the warp renderer,
track the rendered frames, and recover the driven curves and head angles."""

from __future__ import annotations

import numpy as np
import pytest

from talkinghead.face.landmarks import track_landmarks
from talkinghead.face.model import ARKIT_LAYOUT
from talkinghead.face.track import track_frames

T = 60


def _bump(a: int, b: int) -> np.ndarray:
    x = np.zeros(T)
    t = np.arange(a, b)
    x[a:b] = np.sin(np.pi * (t - a + 1) / (b - a + 1))
    return x


@pytest.fixture(scope="module")
def rendered(astronaut: np.ndarray, astronaut_fit):  # noqa: ANN001, ANN201
    render = pytest.importorskip("talkinghead.render.warp_renderer")
    identity, expression, pose0, _ = astronaut_fit
    curves = {"jawOpen": _bump(0, 15), "mouthSmileLeft": _bump(15, 30), "mouthSmileRight": _bump(15, 30),
              "eyeBlinkLeft": _bump(30, 40), "eyeBlinkRight": _bump(30, 40)}
    expr = np.tile(expression, (T, 1))  # the photo's own expression with the driven channels replaced
    for name, curve in curves.items():
        expr[:, ARKIT_LAYOUT.channels.index(name)] = curve
    pose = np.tile(pose0, (T, 1))
    pose[40:, 1] += np.radians(20.0) * np.sin(2 * np.pi * np.arange(20) / 20)  # yaw +20 then -20 degrees
    renderer = render.WarpRenderer.from_fit(astronaut, identity, expression, pose0)
    frames = np.stack(list(renderer.render(expr, pose)))
    return frames, curves, pose


def test_tracking_rendered_motion_recovers_the_curves(rendered) -> None:  # noqa: ANN001
    frames, curves, pose = rendered
    motion = track_frames(frames, fps=25.0)
    for name, curve in curves.items():
        r = np.corrcoef(motion.channel(name), curve)[0, 1]
        assert r >= 0.9, (name, r)
    turned = np.degrees((motion.pose[:, :3] - motion.pose[0, :3]) - (pose[:, :3] - pose[0, :3]))
    # 4.5 degrees: the frames now pass through a closed mouth the photo never shows (tracked from frame 0).
    assert np.abs(turned).max() <= 4.5, np.abs(turned).max(0)
    assert np.degrees(np.abs(motion.pose[40:, 1] - motion.pose[0, 1])).max() > 15.0


def test_inner_lip_gap_follows_jaw_open(rendered) -> None:  # noqa: ANN001
    frames, curves, _ = rendered
    points = track_landmarks(frames[:15], fps=25.0, smooth=False).points  # raw MediaPipe landmarks
    gap = points[:, 14, 1] - points[:, 13, 1]
    # 0.947 since the renderer draws a closed-lip seam where the jaw is below the photo's own opening
    # (0.956 before): MediaPipe reads those frames as more closed, which bends the relation a little
    assert np.corrcoef(gap, curves["jawOpen"][:15])[0, 1] > 0.93
    assert gap.max() - gap[0] > 5.0  # pixels, on a face about 100 pixels wide


def test_tracked_amplitude_follows_rendered_amplitude(rendered) -> None:  # noqa: ANN001
    """Regression slope of tracked on rendered coefficients. MediaPipe itself reads the rendered lip,
    chin and lid motion at about 0.7-0.85 of the projected mesh motion (measured), so 1.0 is not reachable;
    measured with the contour-weighted fit: jaw 0.51, smile 0.75, blink 0.41-0.48 (were 0.42, 0.70, 0.39-0.47)."""
    frames, curves, _ = rendered
    motion = track_frames(frames, fps=25.0)
    for name, floor in (("jawOpen", 0.46), ("mouthSmileLeft", 0.68), ("eyeBlinkLeft", 0.38)):
        x, y = curves[name] - curves[name].mean(), motion.channel(name)
        slope = float((x * (y - y.mean())).sum() / (x * x).sum())
        assert slope >= floor, (name, slope)

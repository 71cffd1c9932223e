"""scripts/extra_portraits.py: the pose test that picks near-frontal faces, the crop and the levelling, without
the network or real photos."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from script_helpers import load_script


@pytest.fixture(scope="module")
def script():
    return load_script("extra_portraits")


def _face(script, nose_x: float = 0.0, angle: float = 0.0, centre=(100.0, 100.0)) -> np.ndarray:
    """478 landmarks with the eye corners 40 px apart about ``centre`` (image y down), the nose tip ``nose_x`` eye
    distances along the eye line and 30 px below it, all turned ``angle`` degrees (clockwise on screen)."""
    pts = np.zeros((478, 3))
    local = {script.RIGHT_OUTER: (-30, 0), script.RIGHT_INNER: (-10, 0), script.LEFT_INNER: (10, 0),
             script.LEFT_OUTER: (30, 0), script.NOSE_TIP: (nose_x * 40, 30)}
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    for i, (x, y) in local.items():
        pts[i, :2] = (centre[0] + c * x - s * y, centre[1] + s * x + c * y)
    return pts


def test_face_pose_reads_the_nose_offset_and_the_eye_line(script):
    turn, roll = script.face_pose(_face(script))
    assert turn == pytest.approx(0.0, abs=1e-9) and roll == pytest.approx(0.0, abs=1e-9)
    turn, roll = script.face_pose(_face(script, nose_x=0.3, angle=20.0))
    assert turn == pytest.approx(0.3) and roll == pytest.approx(20.0)
    assert script.face_pose(_face(script, nose_x=-0.5, angle=-35.0)) == pytest.approx((-0.5, -35.0))


def test_level_turns_a_leaning_eye_line_level(script):
    """Two dots drawn where a leaning face's eyes are end up on one row after ``level``."""
    pts = _face(script, angle=30.0)
    image = np.zeros((200, 200, 3), np.uint8)
    eyes = [0.5 * (pts[a, :2] + pts[b, :2]) for a, b in ((script.RIGHT_OUTER, script.RIGHT_INNER),
                                                           (script.LEFT_OUTER, script.LEFT_INNER))]
    for x, y in eyes:
        image[int(round(y)) - 2:int(round(y)) + 3, int(round(x)) - 2:int(round(x)) + 3] = 255
    _, roll = script.face_pose(pts)
    out = np.asarray(script.level(Image.fromarray(image), roll))[..., 0]
    rows = [np.nonzero(out[:, :100].max(1) > 128)[0].mean(), np.nonzero(out[:, 100:].max(1) > 128)[0].mean()]
    assert abs(rows[0] - rows[1]) < 1.5               # 20 px apart before; 35 if turned the wrong way


def test_square_crop_pads_with_the_edge_where_it_leaves_the_photo(script):
    image = np.arange(10 * 10 * 3, dtype=np.uint8).reshape(10, 10, 3)
    inside = script.square_crop(image, 5.0, 5.0, 4.0)
    assert inside.shape == (4, 4, 3) and np.array_equal(inside, image[3:7, 3:7])
    corner = script.square_crop(image, 0.0, 0.0, 6.0)
    assert corner.shape == (6, 6, 3)
    assert np.array_equal(corner[3:, 3:], image[:3, :3])          # the photo's corner where it belongs
    assert np.array_equal(corner[0, 3:], image[0, :3])            # rows above repeat the top row

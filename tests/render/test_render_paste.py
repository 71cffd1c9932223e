"""Paste-back of generated crops (``talkinghead.render.paste``): only the face region replaces the photo."""

from __future__ import annotations

import numpy as np
import pytest

from talkinghead.errors import TalkingHeadError
from talkinghead.render.paste import box_region, hull_region, paste


def test_a_box_region_is_whole_inside_the_box_and_empty_far_from_it() -> None:
    region = box_region(np.array([20.0, 30.0, 40.0, 50.0]), 64, feather=0.05)
    assert region.shape == (64, 64) and region.dtype == np.float32
    assert region[30:50, 20:40].min() > 0.97                       # the box itself is fully inside
    assert region[:15].max() < 1e-3 and region[:, 48:].max() < 1e-3
    row = region[40, 38:50]
    assert (np.diff(row) <= 1e-6).all() and row[0] > row[-1]       # it fades outward


def test_a_hull_region_covers_the_points_with_a_margin() -> None:
    pts = np.array([[20.0, 20.0], [44.0, 20.0], [44.0, 44.0], [20.0, 44.0], [32.0, 32.0]])
    tight = hull_region(pts, 64, margin=0.0, feather=0.02)
    wide = hull_region(pts, 64, margin=0.1, feather=0.02)
    assert tight[24:40, 24:40].min() > 0.99 and tight[2:8].max() < 1e-3
    assert wide.sum() > tight.sum() and wide[16, 32] > 0.9 > tight[16, 32]
    with pytest.raises(TalkingHeadError):
        hull_region(pts[:2], 64)
    with pytest.raises(TalkingHeadError):
        box_region(np.array([5.0, 5.0, 5.0, 9.0]), 64)


def test_paste_with_a_region_keeps_the_photo_outside_it() -> None:
    photo = np.full((100, 120, 3), 50, np.uint8)
    crop = np.full((32, 32, 3), 200, np.uint8)
    box = np.array([40.0, 30.0, 32.0])                               # one photo pixel per crop pixel
    whole = paste(photo, crop, box, 0.1)
    region = box_region(np.array([12.0, 12.0, 20.0, 20.0]), 32, feather=0.05)
    face = paste(photo, crop, box, 0.1, region)
    assert (whole[36:56, 46:66] == 200).all()                        # the whole crop (away from its faded edge)
    assert (face[42:50, 52:60] >= 196).all()                         # the region: the crop (its edge nearly)
    assert (face[32:36, 42:48] == 50).all() and (face[58:62, 64:70] == 50).all()   # crop corners: the photo
    assert (face[:30] == 50).all() and (face[:, :40] == 50).all()    # outside the crop: the photo
    assert np.array_equal(paste(photo, crop, box, 0.1, np.ones((32, 32), np.float32)), whole)
    with pytest.raises(TalkingHeadError):
        paste(photo, crop, box, 0.1, np.ones((16, 16), np.float32))

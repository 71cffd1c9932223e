"""scripts/identity_real.py: the per-video numbers from crops (a fake embedding), without models or real data."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from script_helpers import load_script


@pytest.fixture(scope="module")
def script():
    return load_script("identity_real")


def _unit(v):
    v = np.asarray(v, np.float64)
    return v / np.linalg.norm(v)


def test_measure_identifies_the_person_and_never_counts_one_person_as_a_stranger(script):
    portraits = {"expr_neutral": _unit([1, 0, 0]), "expr_scream": _unit([0.9, 0.1, 0]),
                 "grace_hopper": _unit([0, 1, 0]), "elderly_man": _unit([0, 0, 1])}
    crops = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    # frames 0-2 look like expr_scream (the same woman as expr_neutral), frame 3 like grace_hopper
    looks = np.stack([portraits["expr_scream"]] * 3 + [portraits["grace_hopper"]])
    sharp = {n: script.sharpness(crops[:1]) for n in portraits}
    got = script.measure(crops, "expr_neutral", portraits, lambda c: looks[:len(c)], sharp)
    assert got["identified"] == pytest.approx(0.75)            # another photo of the same person counts
    assert got["f_sim"] == pytest.approx(np.mean(looks @ portraits["expr_neutral"]))
    # strangers are grace_hopper and elderly_man only, never expr_scream
    strangers = np.stack([portraits["grace_hopper"], portraits["elderly_man"]])
    assert got["f_sim_other"] == pytest.approx(float((looks @ strangers.T).mean()))
    assert script.person("elderly_man_bw") == script.person("elderly_man")


def test_measure_without_faces_and_sharpness_falls_with_blur(script):
    empty = script.measure(np.zeros((0, 32, 32, 3), np.uint8), "a", {"a": _unit([1, 0])}, None, {"a": 1.0})
    assert empty["identified"] == 0.0 and np.isnan(empty["f_sim"])
    face = np.random.default_rng(1).integers(0, 256, (1, 64, 64, 3), dtype=np.uint8)
    blurred = cv2.GaussianBlur(face[0], (0, 0), 2.0)[None]
    assert script.sharpness(blurred) < 0.1 * script.sharpness(face)


def test_face_crop_centres_twice_the_face_box(script):
    frame = np.zeros((400, 400, 3), np.uint8)
    frame[150:250, 150:250] = 255                                # the "face": a 100 px white square
    points = np.array([[150, 150], [249, 150], [150, 249], [249, 249]] * 117, np.float64)   # 468 points
    crop = script.face_crop(frame, points)
    assert crop.shape == (script.CROP_SIZE, script.CROP_SIZE, 3)
    inside = crop[:, :, 0] > 127                                  # the square fills the middle half of the crop
    rows, cols = np.nonzero(inside)
    assert abs(rows.mean() - 63.5) < 2 and abs(cols.mean() - 63.5) < 2
    assert 60 <= rows.max() - rows.min() + 1 <= 68

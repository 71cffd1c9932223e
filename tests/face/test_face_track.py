"""Tracking images and videos into motion files, the CLI, BFM import and ARKit export."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest
from scipy.io import savemat

from talkinghead.cli import main
from talkinghead.errors import TalkingHeadError
from talkinghead.face.bfm import BFM64_LAYOUT, load_bfm_mat
from talkinghead.face.export import ARKIT_52, export_arkit_csv
from talkinghead.face.model import ARKIT_LAYOUT
from talkinghead.face.track import track_frames, track_path
from talkinghead.io.image import save_image
from talkinghead.io.video import write_video
from talkinghead.sequence import MotionSequence


def _similarity_frames(image: np.ndarray, angles: np.ndarray, scales: np.ndarray) -> np.ndarray:
    centre = (225.0, 125.0)  # near the astronaut's face
    out = [cv2.warpAffine(image, cv2.getRotationMatrix2D(centre, float(a), float(s)), (512, 512),
                          borderMode=cv2.BORDER_REFLECT) for a, s in zip(angles, scales, strict=True)]
    return np.stack(out)


def test_video_track_recovers_roll_and_scale(astronaut: np.ndarray, tmp_path: Path) -> None:
    angles = np.array([0, 4, 8, 12, 8, 4, 0, -6], dtype=float)  # degrees, counter-clockwise in the image
    scales = np.array([1.0, 1.0, 1.05, 1.1, 1.1, 1.0, 0.95, 1.0])
    path = write_video(tmp_path / "turn.mp4", _similarity_frames(astronaut, angles, scales), fps=25)
    motion = track_path(path, fps=25)
    assert len(motion) == 8 and motion.layout == ARKIT_LAYOUT and motion.source == str(path)
    roll = np.degrees(motion.pose[:, 2] - motion.pose[0, 2])
    np.testing.assert_allclose(roll, angles, atol=1.0)
    np.testing.assert_allclose(motion.pose[:, 5] - motion.pose[0, 5], np.log(scales), atol=0.02)
    # no expression was added: every frame keeps the photo's own (parted lips, measured from the rest face)
    assert np.abs(motion.expression - motion.expression[:1]).max() < 0.35
    assert motion.identity["neutral"].shape == (468, 3)


def test_image_track_is_the_portrait_fit(astronaut: np.ndarray, astronaut_fit) -> None:  # noqa: ANN001
    motion = track_frames(astronaut[None], fps=25.0)
    assert len(motion) == 1
    # Tracking's identity is frame 0's face at rest, as the portrait fit's: the tracked coefficients are
    # the photo's own expression (parted lips), up to the fitter's bounds and smoothing.
    np.testing.assert_allclose(motion.pose[0], astronaut_fit.pose, atol=1e-3)
    np.testing.assert_allclose(motion.identity["frame"], astronaut_fit.identity["frame"], rtol=1e-5)
    jaw = ARKIT_LAYOUT.channels.index("jawOpen")
    assert astronaut_fit.expression[jaw] > 0.1
    assert abs(motion.expression[0, jaw] - astronaut_fit.expression[jaw]) < 0.1


def test_cli_track_and_export(astronaut: np.ndarray, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    image = save_image(tmp_path / "me.png", astronaut)
    assert main(["track", str(image), "-o", str(tmp_path / "m.npz")]) == 0
    motion = MotionSequence.load(tmp_path / "m.npz")
    assert motion.layout.channels == ARKIT_LAYOUT.channels and len(motion) == 1
    assert main(["export-arkit", str(tmp_path / "m.npz"), "-o", str(tmp_path / "c.csv")]) == 0
    rows = list(csv.reader(open(tmp_path / "c.csv")))
    assert rows[0][:3] == ["Timecode", "BlendShapeCount", "EyeBlinkLeft"]
    assert rows[0][-3:] == ["HeadYaw", "HeadPitch", "HeadRoll"]
    assert len(rows) == 2 and len(rows[1]) == 2 + 52 + 3
    # Bad inputs end with one sentence and exit status 2, leaving no output behind.
    blank = save_image(tmp_path / "blank.png", np.full((200, 200, 3), 90, np.uint8))
    assert main(["track", str(blank), "-o", str(tmp_path / "none.npz")]) == 2
    assert "No face" in capsys.readouterr().err and not (tmp_path / "none.npz").exists()
    corrupt = tmp_path / "broken.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    assert main(["track", str(corrupt), "-o", str(tmp_path / "c.npz")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert main(["track", str(image), "-o", str(tmp_path / "x.npz"), "--face-index", "4"]) == 2
    assert "out of range" in capsys.readouterr().err


def test_export_values_and_layout_check(tmp_path: Path) -> None:
    t = 30
    expr = np.zeros((t, ARKIT_LAYOUT.size), np.float32)
    expr[:, ARKIT_LAYOUT.channels.index("jawOpen")] = np.linspace(0, 1, t)
    pose = np.zeros((t, 6), np.float32)
    pose[:, 1] = 0.2
    motion = MotionSequence(expr, pose, ARKIT_LAYOUT, fps=30.0)
    export_arkit_csv(motion, tmp_path / "c.csv")
    rows = list(csv.reader(open(tmp_path / "c.csv")))
    header, body = rows[0], rows[1:]
    jaw = np.array([float(r[header.index("JawOpen")]) for r in body])
    np.testing.assert_allclose(jaw, np.linspace(0, 1, t), atol=1e-5)
    np.testing.assert_allclose([float(r[header.index("HeadYaw")]) for r in body], 0.2, atol=1e-6)
    assert body[29][0] == "00:00:00:29.967" and len(ARKIT_52) == 52
    bfm = MotionSequence(np.zeros((2, 64)), np.zeros((2, 6)), BFM64_LAYOUT)
    with pytest.raises(TalkingHeadError, match="ARKit"):
        export_arkit_csv(bfm, tmp_path / "b.csv")


def test_bfm_mat_import(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    coeff = rng.normal(0, 1, (12, 257)).astype(np.float32)
    coeff[:, 254:257] = [0.1, -0.2, 0.5]
    savemat(tmp_path / "clip.mat", {"coeff": coeff, "transform_params": np.zeros((12, 5))})
    motion = load_bfm_mat(tmp_path / "clip.mat", fps=30)
    assert motion.layout.name == "bfm64" and motion.expression.shape == (12, 64) and motion.fps == 30
    np.testing.assert_allclose(motion.expression, coeff[:, 80:144])
    np.testing.assert_allclose(motion.pose[:, :3], coeff[:, 224:227])
    np.testing.assert_allclose(motion.pose[:, 3:5], coeff[:, 254:256])
    np.testing.assert_allclose(np.exp(motion.pose[:, 5]), 10.0 / (10.0 - 0.5), rtol=1e-5)
    np.testing.assert_allclose(motion.identity["bfm_id"], coeff[:, :80].mean(0), rtol=1e-5, atol=1e-6)
    assert len(motion.layout.indices("mouth")) == 13 and len(motion.layout.indices("face")) == 51
    motion.save(tmp_path / "m.npz")
    assert MotionSequence.load(tmp_path / "m.npz").layout == BFM64_LAYOUT
    assert main(["import-bfm", str(tmp_path / "clip.mat"), "-o", str(tmp_path / "n.npz")]) == 0
    savemat(tmp_path / "bad.mat", {"coeff": np.zeros((3, 100))})
    with pytest.raises(TalkingHeadError, match="257"):
        load_bfm_mat(tmp_path / "bad.mat")
    (tmp_path / "junk.mat").write_bytes(b"not a mat file")
    with pytest.raises(TalkingHeadError, match="readable"):
        load_bfm_mat(tmp_path / "junk.mat")

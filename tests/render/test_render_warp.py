"""Warp renderer: identity, mouth opening, blink, paste-back, mesh validity, CLI errors."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data
from skimage.metrics import peak_signal_noise_ratio
from skimage.transform import AffineTransform

from talkinghead.errors import TalkingHeadError
from talkinghead.face.landmarks import detect_landmarks
from talkinghead.face.model import ARKIT_LAYOUT, fit_image
from talkinghead.render import WarpRenderer, WarpRendererConfig
from talkinghead.render.mesh import EYES, face_triangles
from talkinghead.render.warp import signed_areas, triangle_affines
from talkinghead.sequence import ChannelLayout, MotionSequence

JAW = ARKIT_LAYOUT.channels.index("jawOpen")


@pytest.fixture(scope="module")
def astronaut():
    image = data.astronaut()
    return image, fit_image(image)


@pytest.fixture(scope="module")
def renderer(astronaut):
    image, fit = astronaut
    return WarpRenderer.from_fit(image, fit.identity, fit.expression, fit.pose, WarpRendererConfig(size=256))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    if np.array_equal(a, b):
        return float("inf")
    return float(peak_signal_noise_ratio(a, b, data_range=255))


def frame(renderer: WarpRenderer, fit, **channels: float) -> np.ndarray:
    expr = fit.expression.copy()
    for name, value in channels.items():
        expr[ARKIT_LAYOUT.channels.index(name)] += value
    return next(renderer.render(expr[None], fit.pose[None]))


def test_fitted_coefficients_render_the_portrait(astronaut, renderer):
    image, fit = astronaut
    same = frame(renderer, fit)
    assert same.shape == image.shape
    assert psnr(same, image) >= 35.0
    crop = next(WarpRenderer.from_fit(image, fit.identity, fit.expression, fit.pose,
                                      WarpRendererConfig(size=512, paste_back=False))
                .render(fit.expression[None], fit.pose[None]))
    assert crop.shape == (512, 512, 3)
    # a real change is measured as one: the identity check can fail
    assert psnr(frame(renderer, fit, jawOpen=0.6), image) < 35.0


def test_triangle_affines_match_skimage():
    rng = np.random.default_rng(0)
    tgt, src = rng.uniform(0, 100, (5, 2)), rng.uniform(0, 100, (5, 2))
    tris = np.array([[0, 1, 2], [1, 3, 4], [0, 2, 4]])
    ours = triangle_affines(tgt, src, tris)
    for f, tri in enumerate(tris):
        ref = AffineTransform.from_estimate(tgt[tri], src[tri])
        assert ref
        np.testing.assert_allclose(ours[f], ref.params[:2], atol=1e-8)


def test_mesh_tiles_the_crop_without_folds(renderer, astronaut):
    _, fit = astronaut
    warper = renderer.warper
    mesh = warper.mesh
    assert len(face_triangles()) == 852
    # face, holes and outer band tile the square crop once (MediaPipe's own mesh folds by a few px^2)
    area = np.abs(signed_areas(warper.source, mesh.triangles)).sum() / 2
    size = renderer.config.size - 1
    assert area == pytest.approx(size * size, rel=1e-3)
    # a large head move and jaw drop: the band around the face must not fold over
    pose = fit.pose.copy()
    pose[1] += 0.35
    pose[3] += 0.3
    expr = fit.expression.copy()
    expr[JAW] = 1.0
    target = renderer.box.to_crop(renderer.projector(expr[None], pose[None])[0])
    ext, _ = warper.extend(target)
    band = mesh.triangles[mesh.kind == 0]
    assert (np.sign(signed_areas(ext, band)) == np.sign(signed_areas(warper.source, band))).all()


def inner_lip_gap(image: np.ndarray) -> float:
    pts = detect_landmarks(image).points[:, :2]
    return float(np.linalg.norm(pts[13] - pts[14]) / np.linalg.norm(pts[33] - pts[263]))


def test_mediapipe_lip_gap_follows_jaw_open(astronaut, renderer):
    _, fit = astronaut
    values = (0.0, 0.3, 0.6, 0.9)
    gaps = [inner_lip_gap(frame(renderer, fit, jawOpen=v)) for v in values]
    assert all(b > a for a, b in zip(gaps, gaps[1:], strict=False)), gaps
    # the detected opening follows the face model's own: at least 60% of the projected gap growth
    expr = np.repeat(fit.expression[None], len(values), 0)
    expr[:, JAW] += values
    verts = renderer.projector(expr, np.repeat(fit.pose[None], len(values), 0))
    eye = np.linalg.norm(verts[:, 33] - verts[:, 263], axis=1)
    model = np.linalg.norm(verts[:, 13] - verts[:, 14], axis=1) / eye
    assert gaps[-1] - gaps[0] > 0.6 * (model[-1] - model[0]), (gaps, model)


def eye_aspect(image: np.ndarray) -> float:
    pts = detect_landmarks(image).points[:, :2]
    ratios = []
    for upper, lower in EYES:
        gap = np.linalg.norm(pts[list(upper[1:-1])] - pts[list(lower[1:-1])], axis=1).mean()
        ratios.append(gap / np.linalg.norm(pts[upper[0]] - pts[upper[-1]]))
    return float(np.mean(ratios))


def test_blink_closes_the_eyes(astronaut, renderer):
    _, fit = astronaut
    open_ = eye_aspect(frame(renderer, fit))
    closed = eye_aspect(frame(renderer, fit, eyeBlinkLeft=1.0, eyeBlinkRight=1.0))
    assert closed < 0.6 * open_, (open_, closed)


def test_paste_back_keeps_size_and_far_pixels(astronaut, renderer):
    image, fit = astronaut
    pose = fit.pose.copy()
    pose[1] += 0.25
    out = next(renderer.render(fit.expression[None], pose[None]))
    assert out.shape == image.shape and out.dtype == np.uint8
    x0, y0, x1, y1 = renderer._region
    outside = np.ones(image.shape[:2], bool)
    outside[y0:y1, x0:x1] = False
    assert outside.sum() > 1000
    np.testing.assert_array_equal(out[outside], image[outside])
    assert not np.array_equal(out[y0:y1, x0:x1], image[y0:y1, x0:x1])


def test_config_and_input_errors(renderer):
    assert WarpRendererConfig.preset("paper").size == 512
    with pytest.raises(TalkingHeadError):
        WarpRendererConfig(size=8)
    with pytest.raises(TalkingHeadError):
        WarpRendererConfig(ring_scales=(1.3,), ring_weights=(0.5, 0.2), ring_local_weights=(0.5,))
    with pytest.raises(TalkingHeadError):
        renderer.render_image(np.zeros((10, 2)))
    with pytest.raises(TalkingHeadError):
        next(renderer.render(np.zeros((3, ARKIT_LAYOUT.size)), np.zeros((2, 6))))


def test_cli_renders_and_fails_cleanly(tmp_path, capsys):
    from talkinghead.cli import main
    from talkinghead.io.image import save_image
    from talkinghead.io.video import probe_video

    img = tmp_path / "face.png"
    save_image(img, data.astronaut())
    t = 6
    expr = np.zeros((t, ARKIT_LAYOUT.size), np.float32)
    expr[:, JAW] = np.linspace(0, 0.8, t)
    motion = tmp_path / "m.npz"
    MotionSequence(expr, np.zeros((t, 6)), ARKIT_LAYOUT, fps=25).save(motion)
    out = tmp_path / "out.mp4"
    assert main(["render", "--image", str(img), "--motion", str(motion), "--pose", "relative",
                 "-o", str(out)]) == 0
    info = probe_video(out)
    assert (info.width, info.height) == (512, 512)

    other = tmp_path / "other.npz"
    MotionSequence(np.zeros((t, 2)), np.zeros((t, 6)), ChannelLayout("bfm", ("c0", "c1")), fps=25).save(other)
    capsys.readouterr()
    cases = [
        ["render", "--image", str(tmp_path / "missing.png"), "--motion", str(motion), "-o", str(tmp_path / "a.mp4")],
        ["render", "--image", str(img), "--motion", str(tmp_path / "none.npz"), "-o", str(tmp_path / "b.mp4")],
        ["render", "--image", str(img), "--motion", str(other), "-o", str(tmp_path / "c.mp4")],
        ["render", "--image", str(img), "--motion", str(motion), "-o", str(tmp_path / "d.avi")],
    ]
    for argv in cases:
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and "Traceback" not in err
    assert not any(tmp_path.glob("[abcd].*"))

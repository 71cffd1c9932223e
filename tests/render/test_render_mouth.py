"""The painted mouth interior (issue 12, item 1): a row of teeth under the upper lip, a dark cavity,
nothing on a closed mouth, no flicker, lit like the portrait, the photo's own teeth reused."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data

from talkinghead.face.model import ARKIT_LAYOUT, fit_image
from talkinghead.face.topology import NUM_VERTICES
from talkinghead.render import WarpRenderer, WarpRendererConfig
from talkinghead.render.mesh import MOUTH_LOWER, MOUTH_UPPER
from talkinghead.render.synthesis import MouthPalette, mouth_palette, paint_mouth

LUMA = np.array([0.299, 0.587, 0.114])
SKIN = np.array([0.78, 0.60, 0.52])
LIP = np.array([0.70, 0.42, 0.40])
JAW = ARKIT_LAYOUT.channels.index("jawOpen")


def mouth(gap: float, width: float = 100.0, centre: tuple[float, float] = (100.0, 100.0),
          roll: float = 0.0) -> np.ndarray:
    """Face points ``[468, 2]`` whose inner lips part by ``gap`` mouth widths in the middle (the rest
    of the face is unused by the mouth painter)."""
    pts = np.zeros((NUM_VERTICES, 2))
    u = np.linspace(0.0, 1.0, len(MOUTH_UPPER))
    x = (u - 0.5) * width
    arch = 0.03 * width * np.sin(np.pi * u)  # a slight cupid's bow / smile curve
    y_up = -arch - 0.5 * gap * width * np.sin(np.pi * u)
    y_lo = -arch + 0.5 * gap * width * np.sin(np.pi * u)
    c, s = np.cos(roll), np.sin(roll)
    for chain, y in ((MOUTH_UPPER, y_up), (MOUTH_LOWER, y_lo)):
        pts[list(chain)] = np.stack([c * x - s * y + centre[0], s * x + c * y + centre[1]], 1)
    return pts


def skin_frame(size: int = 200, scale: float = 1.0) -> np.ndarray:
    return np.tile(np.round(SKIN * scale * 255).astype(np.uint8), (size, size, 1))


def column_profiles(frame: np.ndarray, target: np.ndarray, samples: int = 41,
                    steps: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """Luma along each of ``samples`` columns across the opening (upper lip -> lower lip) ``[samples,
    steps]`` and the columns' ``u`` (0..1 corner to corner); nearest-pixel sampling."""
    up, lo = target[list(MOUTH_UPPER)], target[list(MOUTH_LOWER)]
    luma = frame.astype(np.float64) @ LUMA / 255.0
    us = np.linspace(0.05, 0.95, samples)
    chain_u = np.linspace(0.0, 1.0, len(up))
    prof = np.zeros((samples, steps))
    for i, u in enumerate(us):
        a = np.array([np.interp(u, chain_u, up[:, k]) for k in range(2)])
        b = np.array([np.interp(u, chain_u, lo[:, k]) for k in range(2)])
        for j, t in enumerate(np.linspace(0.0, 1.0, steps)):
            x, y = np.round(a + t * (b - a)).astype(int)
            prof[i, j] = luma[y, x]
    return prof, us


def longest_run(flags: np.ndarray) -> int:
    best = run = 0
    for f in flags:
        run = run + 1 if f else 0
        best = max(best, run)
    return best


@pytest.fixture(scope="module")
def palette() -> MouthPalette:
    return MouthPalette.from_colours(SKIN, LIP)


@pytest.mark.parametrize("roll", [0.0, 0.3])
def test_wide_opening_shows_a_row_of_teeth_over_a_dark_cavity(palette, roll):
    target, source = mouth(0.4, roll=roll), mouth(0.0, roll=roll)
    frame = skin_frame()
    paint_mouth(frame, target, source, palette=palette)
    prof, us = column_profiles(frame, target)
    teeth_l = float(palette.teeth @ LUMA)
    band = prof[:, 3:12].max(1)  # just under the upper lip
    middle = prof[:, 27:40].mean(1)  # the middle of the opening
    bright = band > 0.6 * teeth_l
    # a continuous row along most of the mouth's width, not isolated spots
    assert bright.mean() >= 0.6, band.round(2)
    assert longest_run(bright) >= 0.6 * len(us), band.round(2)
    # a dark cavity below the teeth, darkest toward the middle of the mouth
    centre = np.abs(us - 0.5) < 0.25
    assert (middle[centre] < 0.45 * band[centre]).all(), (middle.round(2), band.round(2))
    assert middle[centre].mean() < 0.3


def test_lower_teeth_appear_as_the_jaw_drops(palette):
    def lower_band(gap: float) -> float:
        target = mouth(gap)
        frame = skin_frame()
        paint_mouth(frame, target, mouth(0.0), palette=palette)
        prof, us = column_profiles(frame, target)
        return float(prof[np.abs(us - 0.5) < 0.15, -10:-2].max(1).mean())

    assert lower_band(0.5) > lower_band(0.12) + 0.1


def test_closed_or_unchanged_mouth_paints_nothing(palette):
    for target, source in ((mouth(0.0), mouth(0.0)), (mouth(0.05), mouth(0.05)), (mouth(0.02), mouth(0.1))):
        frame = skin_frame()
        paint_mouth(frame, target, source, palette=palette)
        np.testing.assert_array_equal(frame, skin_frame())


def test_painting_is_deterministic_and_anti_aliased(palette):
    frames = []
    for _ in range(2):
        frame = skin_frame()
        paint_mouth(frame, mouth(0.3, roll=0.1), mouth(0.0, roll=0.1), palette=palette)
        frames.append(frame)
    np.testing.assert_array_equal(frames[0], frames[1])
    # soft edges: between skin and the darkest interior there are many intermediate values
    luma = frames[0].astype(np.float64) @ LUMA
    skin_l = float(skin_frame()[0, 0] @ LUMA)
    changed = np.abs(luma - skin_l) > 1.0
    assert changed.sum() > 500
    # a small motion moves the paint smoothly: no pixel jumps from teeth to cavity for a 0.2 px shift
    shifted = skin_frame()
    paint_mouth(shifted, mouth(0.3, roll=0.1, centre=(100.2, 100.0)), mouth(0.0, roll=0.1, centre=(100.2, 100.0)),
                palette=palette)
    diff = np.abs(shifted.astype(int) - frames[0].astype(int)).max()
    assert diff < 110, diff


def test_palette_follows_the_portraits_light():
    bright = MouthPalette.from_colours(SKIN, LIP)
    dim = MouthPalette.from_colours(SKIN * 0.5, LIP * 0.5)
    for name in ("teeth", "cavity_edge", "cavity_deep", "tongue"):
        ratio = float(getattr(dim, name) @ LUMA) / float(getattr(bright, name) @ LUMA)
        assert 0.4 < ratio < 0.6, (name, ratio)
    teeth = bright.teeth
    assert teeth.min() > 0.5 and teeth.max() < 0.97  # off-white, not pure white
    assert teeth[0] > teeth[2]  # warm like the skin
    grey = MouthPalette.from_colours(np.full(3, 0.6), np.full(3, 0.5))
    for name in ("teeth", "cavity_edge", "cavity_deep", "tongue"):
        assert np.ptp(getattr(grey, name)) < 1e-6, name  # a black-and-white photo stays grey


def test_photos_own_open_mouth_is_reused(palette):
    """Where the portrait's lips are parted, its interior hangs from the lips at its own size and only
    the extra opening is painted."""
    source, target = mouth(0.2), mouth(0.45)
    photo = skin_frame()
    # the photo's interior: green just under the upper lip, blue just over the lower lip
    prof_mask_up = np.zeros(photo.shape[:2], bool)
    up, lo = source[list(MOUTH_UPPER)], source[list(MOUTH_LOWER)]
    for x in range(60, 141):
        yu = np.interp(x, up[:, 0], up[:, 1])
        yl = np.interp(x, lo[:, 0], lo[:, 1])
        if yl - yu > 4:
            mid = int(round(0.5 * (yu + yl)))
            photo[int(np.ceil(yu)):mid, x] = (40, 200, 60)
            photo[mid:int(np.floor(yl)) + 1, x] = (40, 60, 200)
            prof_mask_up[int(np.ceil(yu)):mid, x] = True
    frame = skin_frame()
    paint_mouth(frame, target, source, palette=palette, photo=photo)
    prof_g = frame[..., 1].astype(float) - frame[..., [0, 2]].mean(-1)
    prof_b = frame[..., 2].astype(float) - frame[..., [0, 1]].mean(-1)
    t_up, t_lo = target[list(MOUTH_UPPER)], target[list(MOUTH_LOWER)]
    yu = int(round(np.interp(100, t_up[:, 0], t_up[:, 1])))
    yl = int(round(np.interp(100, t_lo[:, 0], t_lo[:, 1])))
    assert prof_g[yu + 3, 100] > 80  # photo's upper interior under the upper lip
    assert prof_b[yl - 3, 100] > 80  # photo's lower interior over the lower lip
    mid = (yu + yl) // 2
    assert prof_g[mid, 100] < 20 and prof_b[mid, 100] < 20  # painted cavity between them
    assert float(frame[mid, 100] @ LUMA) < 0.4 * 255
    # the photo's colours are not painted over by teeth in the middle of the mouth
    assert float(frame[yu + 3, 100] @ LUMA) < 0.8 * 255


@pytest.fixture(scope="module")
def astronaut():
    image = data.astronaut()
    return image, fit_image(image)


def jaw_vertices(renderer: WarpRenderer, fit, jaw: float) -> np.ndarray:
    expr = fit.expression.copy()
    expr[JAW] += jaw
    assert renderer.projector is not None
    return renderer.projector(expr[None], fit.pose[None])[0]


@pytest.mark.parametrize(("size", "paste"), [(256, False), (512, False), (256, True)])
def test_renderer_paints_the_interior_at_every_size(astronaut, size, paste):
    image, fit = astronaut
    renderer = WarpRenderer.from_fit(image, fit.identity, fit.expression, fit.pose,
                                     WarpRendererConfig(size=size, paste_back=paste))
    verts = jaw_vertices(renderer, fit, 0.9)
    out = renderer.render_vertices(verts)
    np.testing.assert_array_equal(out, renderer.render_vertices(verts))  # same frame twice: identical
    target = verts if paste else renderer.box.to_crop(verts)
    prof, us = column_profiles(out, target)
    centre = np.abs(us - 0.5) < 0.3
    band = prof[centre, 2:14].max(1)
    middle = prof[centre, 28:42].mean(1)
    assert (band > 0.45).mean() >= 0.8, band.round(2)  # teeth (the photo's or painted) under the lip
    assert middle.mean() < 0.6 * band.mean(), (middle.round(2), band.round(2))


def test_renderer_colours_scale_with_the_portraits_brightness(astronaut):
    image, fit = astronaut
    dim_image = np.round(image * 0.5).astype(np.uint8)
    results = []
    for picture in (image, dim_image):
        renderer = WarpRenderer.from_fit(picture, fit.identity, fit.expression, fit.pose,
                                         WarpRendererConfig(size=256, paste_back=False))
        verts = jaw_vertices(renderer, fit, 0.9)
        frame = renderer.render_vertices(verts)
        prof, us = column_profiles(frame, renderer.box.to_crop(verts))
        results.append((prof[np.abs(us - 0.5) < 0.3].mean(), renderer.mouth_palette))
    ratio = results[1][0] / results[0][0]
    assert 0.4 < ratio < 0.6, ratio
    teeth_ratio = float(results[1][1].teeth @ LUMA) / float(results[0][1].teeth @ LUMA)
    assert 0.4 < teeth_ratio < 0.6, teeth_ratio
    # sampled from the photo: the palette matches mouth_palette on the same points
    np.testing.assert_allclose(results[0][1].teeth, mouth_palette(image, renderer.source).teeth)

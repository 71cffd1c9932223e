"""Lips closing over a photo whose mouth is open (issue 12): no squeezed teeth or cavity in the seam,
no folded mesh triangles, the chin stays skin."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data

from talkinghead.face.model import ARKIT_LAYOUT, compose_expression, fit_image
from talkinghead.render import WarpRenderer, WarpRendererConfig
from talkinghead.render.mesh import MOUTH_LOWER, MOUTH_UPPER, mouth_region
from talkinghead.render.synthesis import chain_gaps
from talkinghead.render.warp import held_vertices, signed_areas, untangle

TEETH = np.array([250, 250, 245], np.uint8)
CAVITY = np.array([12, 8, 8], np.uint8)


@pytest.fixture(scope="module")
def open_portrait():
    """skimage's astronaut (lips parted in the photo) with her mouth interior repainted as a bright row of
    teeth under the upper lip over a black cavity, so anything squeezed into a seam is easy to see."""
    image = data.astronaut().copy()
    fit = fit_image(image)
    renderer = WarpRenderer.from_fit(image, fit.identity, fit.expression, fit.pose)
    src = renderer.source
    up, lo = src[list(MOUTH_UPPER)], src[list(MOUTH_LOWER)]
    x0, x1 = int(np.ceil(up[:, 0].min())), int(np.floor(up[:, 0].max()))
    order_u, order_l = np.argsort(up[:, 0]), np.argsort(lo[:, 0])
    for x in range(x0, x1 + 1):
        yu = np.interp(x, up[order_u, 0], up[order_u, 1])
        yl = np.interp(x, lo[order_l, 0], lo[order_l, 1])
        if yl - yu < 2:
            continue
        a, b = int(np.ceil(yu)), int(np.floor(yl))
        m = int(round(yu + 0.45 * (yl - yu)))
        image[a:m, x] = TEETH
        image[m:b + 1, x] = CAVITY
    return image, fit


def closed(fit) -> np.ndarray:
    return compose_expression(fit.expression, np.zeros((1, ARKIT_LAYOUT.size), np.float32))


def seam_pixels(frame: np.ndarray, target: np.ndarray, half: float) -> np.ndarray:
    """Pixels within ``half`` pixels of the midline between the inner lips, central 80% of the mouth."""
    up, lo = target[list(MOUTH_UPPER)], target[list(MOUTH_LOWER)]
    mid = 0.5 * (up + lo)
    order = np.argsort(mid[:, 0])
    xa, xb = mid[:, 0].min(), mid[:, 0].max()
    out = []
    for x in np.arange(xa + 0.1 * (xb - xa), xb - 0.1 * (xb - xa)):
        y = np.interp(x, mid[order, 0], mid[order, 1])
        for yy in range(int(np.floor(y - half)), int(np.ceil(y + half)) + 1):
            out.append(frame[yy, int(round(x))])
    return np.array(out)


def test_photo_mouth_is_open(open_portrait):
    image, fit = open_portrait
    r = WarpRenderer.from_fit(image, fit.identity, fit.expression, fit.pose)
    width = np.linalg.norm(r.source[MOUTH_UPPER[-1]] - r.source[MOUTH_UPPER[0]])
    assert chain_gaps(r.source, MOUTH_UPPER, MOUTH_LOWER).max() > 0.05 * width


@pytest.mark.parametrize(("size", "paste"), [(256, True), (256, False), (512, False)])
def test_closed_lips_show_no_teeth_or_cavity_in_the_seam(open_portrait, size, paste):
    image, fit = open_portrait
    r = WarpRenderer.from_fit(image, fit.identity, fit.expression, fit.pose,
                              WarpRendererConfig(size=size, paste_back=paste))
    verts = r.projector(closed(fit), fit.pose[None])[0]
    out = r.render_vertices(verts)
    target = r._target(verts) if paste else r.box.to_crop(r._target(verts))
    width = np.linalg.norm(target[MOUTH_UPPER[-1]] - target[MOUTH_UPPER[0]])
    assert chain_gaps(target, MOUTH_UPPER, MOUTH_LOWER).max() < 0.03 * width  # the lips did close
    px = seam_pixels(out, target, max(2.0, 0.05 * width)).astype(int)
    white = ((px.min(1) > 225) & (np.ptp(px, 1) < 12)).mean()  # teeth-white (not a pink lip highlight)
    black = (px.max(1) < 35).mean()
    assert white == 0.0, white
    assert black < 0.02, black
    # the lips are still lips: reddish, neither grey-white nor black
    assert (px[:, 0] - px[:, 2]).mean() > 15


def test_partly_closed_lips_show_the_photos_teeth_at_their_own_size(open_portrait):
    """Half-way closed: the photo's teeth hang from the upper lip (cut, not squeezed into a sliver)."""
    image, fit = open_portrait
    r = WarpRenderer.from_fit(image, fit.identity, fit.expression, fit.pose,
                              WarpRendererConfig(size=512, paste_back=False))
    gap0 = chain_gaps(r.source, MOUTH_UPPER, MOUTH_LOWER).max()
    expr = fit.expression.copy()
    for s in np.linspace(0.0, 1.0, 21):  # the articulation scaled until the gap is about half the photo's
        e = compose_expression(fit.expression, (s * fit.expression * np.isin(
            np.arange(ARKIT_LAYOUT.size), ARKIT_LAYOUT.indices("mouth")))[None].astype(np.float32))
        v = r.projector(e, fit.pose[None])[0]
        if chain_gaps(v, MOUTH_UPPER, MOUTH_LOWER).max() >= 0.55 * gap0:
            expr = e[0]
            break
    verts = r.projector(expr[None], fit.pose[None])[0]
    out = r.render_vertices(verts)
    target = r.box.to_crop(r._target(verts))
    up, lo = target[list(MOUTH_UPPER)], target[list(MOUTH_LOWER)]
    x = int(round(up[5, 0]))
    yu, yl = up[5, 1], lo[5, 1]
    column = out[int(np.ceil(yu)) + 1:int(np.floor(yl)), x].astype(int)
    assert len(column) >= 3
    top = column[: max(1, len(column) // 3)]
    assert top.min(1).mean() > 180  # the photo's teeth under the upper lip


def test_untangle_repairs_folds_and_keeps_the_lips():
    rng = np.random.default_rng(0)
    fit = fit_image(data.astronaut())
    r = WarpRenderer.from_fit(data.astronaut(), fit.identity, fit.expression, fit.pose)
    source = r.source
    np.testing.assert_array_equal(untangle(source, source), source)  # nothing folded: unchanged
    # fold the chin skin up past the lower lip (what closing a scream did) plus noise
    target = source.copy()
    width = np.linalg.norm(source[308] - source[78])
    for v in (18, 83, 313, 200, 201, 421):
        target[v, 1] -= 0.45 * width
    target[:, :] += rng.normal(0.0, 0.002 * width, target.shape)
    _, tris, _ = mouth_region()
    sign = np.sign(signed_areas(source, tris))
    assert (np.sign(signed_areas(target, tris)) != sign).sum() >= 3
    fixed = untangle(target, source)
    tiny = 1e-3 * width**2  # folds smaller than this (a few pixels at a lip corner) are left alone
    assert (signed_areas(target, tris) * sign < -tiny).sum() >= 3
    assert (signed_areas(fixed, tris) * sign < -tiny).sum() == 0
    lips = list(MOUTH_UPPER) + list(MOUTH_LOWER)
    np.testing.assert_allclose(fixed[lips], target[lips], atol=1e-9)  # the articulation is kept
    held = held_vertices()
    assert held.sum() >= len(set(lips)) + 15  # the lips' bodies too, not only the inner chains
    np.testing.assert_allclose(fixed[held], target[held], atol=1e-9)  # the lips keep their shape
    assert not held[[61, 291]].any()  # the corners give way where the closing lips fold
    assert np.abs(fixed[~held] - target[~held]).max() > 0.1 * width  # the skin took the repair
    far = [10, 151, 33, 263, 1]
    np.testing.assert_array_equal(fixed[far], target[far])  # nothing outside the lower face moves
    # with a cache of factorised systems (as the renderer keeps one per portrait): the same repair, and a
    # second call reuses the systems the first one made
    solvers: dict[bytes, object] = {}
    np.testing.assert_allclose(untangle(target, source, solvers=solvers), fixed, atol=1e-9)
    made = dict(solvers)
    assert made
    np.testing.assert_allclose(untangle(target, source, solvers=solvers), fixed, atol=1e-9)
    assert solvers.keys() == made.keys() and all(solvers[k] is made[k] for k in made)


def test_folded_chin_stays_skin(open_portrait):
    image, fit = open_portrait
    r = WarpRenderer.from_fit(image, fit.identity, fit.expression, fit.pose,
                              WarpRendererConfig(size=256, paste_back=False))
    target = r.source.copy()
    width = np.linalg.norm(r.source[308] - r.source[78])
    for v in (18, 83, 313, 200, 201, 421):
        target[v, 1] -= 0.45 * width
    out = r.render_vertices(target).astype(float)
    crop = r.box.to_crop(r._target(target))
    def at(img: np.ndarray, pts: np.ndarray) -> np.ndarray:
        return img[tuple(np.round(pts[:, ::-1]).astype(int).T)].astype(float)

    def chroma(rgb: np.ndarray) -> np.ndarray:
        return rgb / np.maximum(rgb.sum(-1, keepdims=True), 1.0)

    skin = chroma(at(r.crop, r.crop_source[[199, 175, 152, 200]]).mean(0))
    lip = chroma(at(r.crop, 0.5 * (r.crop_source[[17, 84, 314]] + r.crop_source[[14, 87, 317]])).mean(0))
    chin = chroma(at(out, crop[[199, 175, 200]]))
    # the chin under the lower lip keeps the skin's hue, not the lip's
    assert (np.abs(chin - skin).sum(1) < 0.5 * np.abs(lip - skin).sum()).all(), (chin, skin, lip)


def test_shut_lips_are_redrawn_from_inside_the_photos_lips(open_portrait):
    """The margin of lip drawn either side of shut lips comes from inside the photo's lips, not from its inner
    edge, which in a laughing photo carries the blurred edges of its teeth (read as a sliver of teeth, an open
    mouth). Painter only: a lip-coloured photo whose lip edges are white for half the inset."""
    from talkinghead.render.synthesis import SHUT_INSET, paint_mouth

    image, fit = open_portrait
    r = WarpRenderer.from_fit(image, fit.identity, fit.expression, fit.pose,
                              WarpRendererConfig(size=256, paste_back=False))
    source, lip = r.crop_source, np.array([170, 80, 85], np.uint8)
    width = float(np.linalg.norm(source[MOUTH_UPPER[-1]] - source[MOUTH_UPPER[0]]))
    assert chain_gaps(source, MOUTH_UPPER, MOUTH_LOWER).max() > 0.05 * width  # lips parted in the photo
    photo = np.empty_like(r.crop)
    photo[:] = lip
    edge = 0.5 * SHUT_INSET * width
    up, lo = source[list(MOUTH_UPPER)], source[list(MOUTH_LOWER)]
    for x in range(int(np.ceil(up[:, 0].min())), int(np.floor(up[:, 0].max())) + 1):
        yu = np.interp(x, *up[np.argsort(up[:, 0])].T)
        yl = np.interp(x, *lo[np.argsort(lo[:, 0])].T)
        photo[int(np.floor(yu - edge)):int(np.ceil(yu)) + 1, x] = TEETH  # the lip edges carry teeth
        photo[int(np.floor(yl)):int(np.ceil(yl + edge)) + 1, x] = TEETH
    target = r.box.to_crop(r._target(r.projector(closed(fit), fit.pose[None])[0]))
    assert chain_gaps(target, MOUTH_UPPER, MOUTH_LOWER).max() < 0.015 * width  # shut
    frame = np.empty_like(photo)
    frame[:] = lip
    paint_mouth(frame, target, source, photo=photo, margin=1.5)
    px = seam_pixels(frame, target, 1.5).astype(int)
    assert (px.min(1) > lip.min() + 30).mean() == 0.0  # no teeth (nor lip paled by them) between the shut lips
    assert (px[:, 0] - px[:, 2]).mean() > 15  # lip, darkened by the seam


def _wide_open(source: np.ndarray, width: float, drop: float) -> np.ndarray:
    """``source`` with its lower lip (inner and outer edges) dropped by ``drop`` mouth widths: a scream."""
    from talkinghead.render.mesh import MOUTH_LOWER_OUTER

    out = source.copy()
    lower = sorted(set(MOUTH_LOWER[1:-1]) | set(MOUTH_LOWER_OUTER[1:-1]))
    out[lower, 1] += drop * width
    return out


def test_shut_lips_over_a_wide_open_photo_are_painted_in_its_lip_colour(open_portrait, monkeypatch):
    """A wide-open photo (a scream) has no lips to shut with (the warp draws a line of skin and a strip of
    tongue): its shut lips are blended toward the photo's lower-lip colour, the upper lip darker, with a darker
    seam; a photo whose lips are only parted (the astronaut) is left to the warp."""
    from talkinghead.render import synthesis
    from talkinghead.render.mesh import MOUTH_LOWER_OUTER, MOUTH_UPPER_OUTER
    from talkinghead.render.synthesis import MouthPalette, paint_mouth

    image, fit = open_portrait
    r = WarpRenderer.from_fit(image, fit.identity, fit.expression, fit.pose,
                              WarpRendererConfig(size=256, paste_back=False))
    source = r.crop_source
    width = float(np.linalg.norm(source[MOUTH_UPPER[-1]] - source[MOUTH_UPPER[0]]))
    target = r.box.to_crop(r._target(r.projector(closed(fit), fit.pose[None])[0]))
    shipped = synthesis.SHUT_LIP_PAINT
    rng = np.random.default_rng(0)
    speckled = rng.integers(60, 250, r.crop.shape, dtype=np.uint8)  # tongue-like noise everywhere
    palette = MouthPalette.from_colours(np.array([0.8, 0.6, 0.5]), np.array([0.7, 0.4, 0.4]),
                                        lower_lip=np.array([0.65, 0.45, 0.45]))

    def painted(src: np.ndarray, paint: float) -> np.ndarray:
        monkeypatch.setattr(synthesis, "SHUT_LIP_PAINT", paint)
        frame = speckled.copy()
        paint_mouth(frame, target, src, palette=palette, photo=speckled, margin=1.5)
        return frame

    def band(frame: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Pixels a quarter to three quarters of the way from chain ``a`` to chain ``b`` (middle columns)."""
        pts = np.concatenate([a[3:8] + t * (b[3:8] - a[3:8]) for t in np.linspace(0.25, 0.75, 5)])
        return frame[tuple(np.round(pts[:, ::-1]).astype(int).T)].astype(float)

    wide = _wide_open(source, width, 0.95)
    seam = 0.5 * (target[list(MOUTH_UPPER)] + target[list(MOUTH_LOWER)])
    upper, lower = target[list(MOUTH_UPPER_OUTER)], target[list(MOUTH_LOWER_OUTER)]
    before, after = painted(wide, 0.0), painted(wide, shipped)
    lip = palette.lower_lip * 255
    for a, b, tone in ((upper, seam, synthesis.UPPER_LIP_SHADE * lip), (seam, lower, lip)):
        old, new = band(before, a, b), band(after, a, b)
        assert new.std(0).max() < 0.5 * old.std(0).min()  # the speckle fades
        assert np.abs(new.mean(0) - tone).max() < 0.5 * np.abs(old.mean(0) - tone).max() + 5
    assert band(after, upper, seam).mean() < band(after, seam, lower).mean()  # the upper lip faces down
    mid = after[tuple(np.round(seam[3:8, ::-1]).astype(int).T)].astype(float)
    assert mid.mean() < band(after, seam, lower).mean() - 20  # the seam is dark
    # skin well away from the lips is untouched
    far = np.round(upper[5] - [0, 0.3 * width]).astype(int)
    np.testing.assert_array_equal(after[far[1], far[0]], before[far[1], far[0]])
    # lips only parted in the photo: nothing painted over them
    np.testing.assert_array_equal(painted(source, shipped), painted(source, 0.0))

"""The portrait's rest face (issue 12, item 2): a closed, relaxed neutral and the photo's own expression
on top of it, so generated motion (relative to a closed mouth) can close the portrait's lips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from talkinghead.face.model import (
    ARKIT_LAYOUT,
    ARTICULATION_GROUP,
    FaceModel,
    compose_expression,
    estimate_rest,
    mesh_regions,
    project,
    project_3d,
    replaced_channels,
    rest_identity_from_landmarks,
)

CH = ARKIT_LAYOUT.channels
REAL_FACES = Path.home() / ".cache" / "talkinghead-realdata" / "faces"


def _gap(neutral: np.ndarray) -> np.ndarray:
    """Inner-lip gap (upper minus lower inner contour height) at the nine inner pairs, model units."""
    r = mesh_regions()
    return neutral[r["lips_inner_upper"][1:-1], 1] - neutral[r["lips_inner_lower"][1:-1], 1]


def _closed_gap(identity: dict[str, np.ndarray], expression: np.ndarray, pose: np.ndarray) -> np.ndarray:
    """The nine inner pairs' vertical gap in the picture (over the eye-corner distance) when generated
    motion closes the portrait's mouth: articulation 0, the portrait's smile kept."""
    closed = compose_expression(expression, np.zeros((1, ARKIT_LAYOUT.size), np.float32))
    p = project(identity, closed, pose[None])[0]
    r = mesh_regions()
    eye = np.linalg.norm(p[33] - p[263])
    return (p[r["lips_inner_lower"][1:-1], 1] - p[r["lips_inner_upper"][1:-1], 1]) / eye


def _articulation(expression: np.ndarray) -> np.ndarray:
    return expression[ARKIT_LAYOUT.indices(ARTICULATION_GROUP)]


def test_portrait_rest_is_closed_and_reproduces_the_photo(astronaut_fit) -> None:  # noqa: ANN001
    identity, expression, pose, landmarks = astronaut_fit
    # The astronaut's lips are parted and she smiles: both are her expression, not her rest face.
    assert expression[CH.index("jawOpen")] > 0.3
    assert min(expression[CH.index("mouthSmileLeft")], expression[CH.index("mouthSmileRight")]) > 0.5
    assert np.abs(_closed_gap(identity, expression, pose)).max() < 0.01
    np.testing.assert_allclose(project(identity, expression, pose), landmarks[:468], atol=1e-3)
    # The rest face's lips open again with jawOpen (from the closed line, by more than 0.1 units).
    open_ = FaceModel.for_identity(identity["neutral"]).vertices(np.eye(ARKIT_LAYOUT.size)[CH.index("jawOpen")])
    assert _gap(open_)[4] > 0.1


def test_known_expression_on_a_closed_neutral_is_recovered(astronaut_fit) -> None:  # noqa: ANN001
    # A closed rest face that meets the estimator's priors (corner height, stomion height) exactly.
    neutral = estimate_rest(estimate_rest(astronaut_fit.identity["neutral"])[0])[0]
    known = np.zeros(ARKIT_LAYOUT.size, np.float32)
    for name, value in {"jawOpen": 0.6, "mouthSmileLeft": 0.4, "mouthSmileRight": 0.4}.items():
        known[CH.index(name)] = value
    shape = FaceModel.for_identity(neutral).vertices(known)
    assert _gap(shape)[4] > 0.08  # the lips are visibly parted
    rest, expression = estimate_rest(shape)
    assert np.abs(_gap(rest)).max() < 0.01
    assert expression[CH.index("jawOpen")] == pytest.approx(0.6, abs=0.12)
    for side in ("Left", "Right"):
        assert expression[CH.index(f"mouthSmile{side}")] == pytest.approx(0.4, abs=0.2)
    assert np.abs(rest - neutral).max() < 0.03
    # The split is exact for the model project() uses.
    np.testing.assert_allclose(FaceModel.for_identity(rest).vertices(expression), shape, atol=1e-5)


def test_closed_mouth_landmarks_get_no_articulation(astronaut_fit) -> None:  # noqa: ANN001
    identity, expression, pose, _ = astronaut_fit
    closed = expression.copy()
    closed[replaced_channels()] = 0.0  # her smile, lips closed
    points = project_3d(identity, closed, pose)
    rest, estimate, rest_pose = rest_identity_from_landmarks(points, (512, 512))
    assert np.abs(_articulation(estimate)).max() < 0.1
    np.testing.assert_allclose(project(rest, estimate, rest_pose), points[:, :2], atol=1e-3)


@pytest.mark.skipif(not (REAL_FACES / "expr_neutral.png").exists(), reason="real portraits not fetched")
def test_closed_mouth_photo_gets_no_articulation() -> None:
    from talkinghead.face.model import fit_image
    from talkinghead.io.image import load_image

    for name in ("expr_neutral", "elderly_man", "grace_hopper"):
        fit = fit_image(load_image(REAL_FACES / f"{name}.png"))
        assert np.abs(_articulation(fit.expression)).max() < 0.1, name
        assert np.abs(_closed_gap(fit.identity, fit.expression, fit.pose)).max() < 0.01, name


def test_compose_keeps_the_smile_and_replaces_articulation() -> None:
    portrait = np.zeros(ARKIT_LAYOUT.size, np.float32)
    portrait[CH.index("jawOpen")] = 0.8
    portrait[CH.index("mouthSmileLeft")] = 0.7
    motion = np.zeros((3, ARKIT_LAYOUT.size), np.float32)
    motion[1, CH.index("jawOpen")] = 0.4
    motion[2, CH.index("mouthSmileLeft")] = 0.6
    out = compose_expression(portrait, motion)
    np.testing.assert_allclose(out[:, CH.index("jawOpen")], [0.0, 0.4, 0.0])  # closes in the pause
    np.testing.assert_allclose(out[:, CH.index("mouthSmileLeft")], [0.7, 0.7, 1.0])  # kept, capped at 1


def test_renderer_closes_the_portrait_mouth_and_gives_the_photo_back(astronaut, astronaut_fit) -> None:  # noqa: ANN001
    from talkinghead.generators import Portrait
    from talkinghead.render.warp_renderer import WarpFrameRenderer
    from talkinghead.sequence import MotionSequence

    fit = astronaut_fit
    portrait = Portrait(astronaut, fit.identity, fit.expression, fit.pose)
    expr = np.zeros((2, ARKIT_LAYOUT.size), np.float32)
    mouth = replaced_channels()
    expr[1, mouth] = fit.expression[mouth]  # the photo's own articulation: the photo itself
    motion = MotionSequence(expr, np.tile(fit.pose, (2, 1)), ARKIT_LAYOUT)
    closed, own = WarpFrameRenderer().render(portrait, motion, 256)
    np.testing.assert_array_equal(own, astronaut)
    assert not np.array_equal(closed, astronaut)


@pytest.mark.skipif(not (REAL_FACES / "expr_surprise.png").exists(), reason="real portraits not fetched")
def test_open_mouth_photos_close_in_the_picture() -> None:
    """Photos with a wide-open or sideways jaw under a tilted head (a surprise, a laugh, a child's
    shout): with articulation 0 the lips meet as the camera sees them, the midline too."""
    from talkinghead.face.model import fit_image
    from talkinghead.io.image import load_image

    for name in ("expr_surprise", "family_father", "child_boy", "afro_woman_laughing"):
        fit = fit_image(load_image(REAL_FACES / f"{name}.png"))
        assert fit.expression[CH.index("jawOpen")] > 0.5, name
        assert np.abs(_closed_gap(fit.identity, fit.expression, fit.pose)).max() < 0.03, name
        closed = compose_expression(fit.expression, np.zeros((1, ARKIT_LAYOUT.size), np.float32))
        p = project(fit.identity, closed, fit.pose[None])[0]
        assert np.linalg.norm(p[13] - p[14]) / np.linalg.norm(p[33] - p[263]) < 0.01, name


def test_bounded_least_squares_is_scipys_bvls_without_its_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    """The rest fit's solver (written here so a portrait fit does not import scipy.optimize) gives the
    unique bounded minimum scipy's BVLS gives, on problems of the fit's shape, with no call to scipy."""
    import scipy.optimize

    from talkinghead.face.model import bounded_least_squares

    reference = scipy.optimize.lsq_linear
    monkeypatch.setattr(scipy.optimize, "lsq_linear", lambda *a, **k: pytest.fail("fell back to scipy"))
    rng = np.random.default_rng(0)
    at_bounds = 0
    for _ in range(300):
        n = int(rng.integers(1, 14))
        a = np.concatenate([rng.standard_normal((n + int(rng.integers(0, 25)), n)) * rng.uniform(0.1, 100),
                            np.diag(rng.uniform(0.3, 3.0, n))])          # the prior rows: full column rank
        b = rng.standard_normal(len(a)) * rng.uniform(0.1, 100)
        upper = rng.uniform(0.1, 3.0, n)
        x = bounded_least_squares(a, b, upper)
        expected = reference(a, b, bounds=(np.zeros(n), upper), method="bvls").x
        np.testing.assert_allclose(x, expected, rtol=0, atol=1e-12)
        at_bounds += int(np.any((x == 0) | (x == upper)))
    assert at_bounds > 100  # the bounds were active in many of them
    monkeypatch.undo()  # the fallback itself: no rounds of our own -> scipy's answer
    np.testing.assert_array_equal(bounded_least_squares(a, b, upper, max_rounds=0), expected)

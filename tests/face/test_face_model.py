"""The named-blendshape face model: layout, projection consistency, geometry of the channels."""

from __future__ import annotations

import numpy as np
import pytest

from talkinghead.errors import TalkingHeadError
from talkinghead.face.model import (
    ARKIT_LAYOUT,
    FaceModel,
    euler_to_matrix,
    identity_from_landmarks,
    matrix_to_euler,
    mesh_regions,
    project,
    project_3d,
)

REQUIRED = ["jawOpen", "mouthClose", "mouthFunnel", "mouthPucker", "mouthSmileLeft", "mouthSmileRight",
            "mouthFrownLeft", "mouthFrownRight", "mouthStretchLeft", "mouthStretchRight", "mouthUpperUpLeft",
            "mouthLowerDownLeft", "mouthPressLeft", "cheekPuff", "cheekSquintLeft", "browInnerUp",
            "browDownLeft", "browOuterUpRight", "eyeBlinkLeft", "eyeBlinkRight", "eyeWideLeft",
            "eyeSquintRight", "noseSneerLeft"]


def _expr(**channels: float) -> np.ndarray:
    e = np.zeros(ARKIT_LAYOUT.size, dtype=np.float32)
    for name, value in channels.items():
        e[ARKIT_LAYOUT.channels.index(name)] = value
    return e


def test_layout_names_and_groups() -> None:
    assert set(REQUIRED) <= set(ARKIT_LAYOUT.channels)
    mouth, face = ARKIT_LAYOUT.indices("mouth"), ARKIT_LAYOUT.indices("face")
    assert len(mouth) == 13 and sorted(mouth + face) == list(range(ARKIT_LAYOUT.size))
    assert set(ARKIT_LAYOUT.groups["eyes"]) <= set(ARKIT_LAYOUT.groups["face"])


def test_euler_round_trip() -> None:
    rng = np.random.default_rng(0)
    angles = rng.uniform(-1.2, 1.2, (50, 3))
    r = euler_to_matrix(angles)
    np.testing.assert_allclose(np.einsum("tij,tkj->tik", r, r), np.broadcast_to(np.eye(3), r.shape), atol=1e-12)
    np.testing.assert_allclose(matrix_to_euler(r), angles, atol=1e-9)
    # Positive yaw turns the nose (+z) toward the image right (+x).
    assert euler_to_matrix(np.array([0.0, 0.3, 0.0])) @ np.array([0, 0, 1.0]) @ np.array([1.0, 0, 0]) > 0


def test_portrait_fit_projects_onto_its_landmarks(astronaut_fit) -> None:  # noqa: ANN001
    identity, expression, pose, landmarks = astronaut_fit
    assert landmarks.shape == (478, 2) and expression.shape == (ARKIT_LAYOUT.size,) and pose.shape == (6,)
    np.testing.assert_allclose(project(identity, expression, pose), landmarks[:468], atol=1e-3)
    assert identity["neutral"].shape == (468, 3) and identity["descriptor"].shape == (14,)
    # Model units: the outer eye corners are one unit apart; the sequence form matches the single form.
    assert np.linalg.norm(identity["neutral"][263] - identity["neutral"][33]) == pytest.approx(1.0, abs=1e-4)
    seq = project(identity, np.stack([expression] * 3), np.stack([pose] * 3))
    assert seq.shape == (3, 468, 2)
    # float32 rounding only: a batch of 3 and a single face may take different BLAS kernels on some CPUs
    np.testing.assert_allclose(seq[1], project(identity, expression, pose), rtol=0, atol=1e-4)


def test_identity_is_invariant_to_similarity_of_the_landmarks(astronaut_fit) -> None:  # noqa: ANN001
    identity, _, pose, _ = astronaut_fit
    pts = project_3d(identity, np.zeros(ARKIT_LAYOUT.size), pose)
    moved_pose = pose + np.array([0.1, -0.2, 0.15, 0.3, -0.1, 0.4], dtype=np.float32)
    moved = project_3d(identity, np.zeros(ARKIT_LAYOUT.size), moved_pose)
    a, _ = identity_from_landmarks(pts, (512, 512))
    b, pose_b = identity_from_landmarks(moved, (512, 512))
    np.testing.assert_allclose(a["neutral"], b["neutral"], atol=1e-4)
    np.testing.assert_allclose(a["descriptor"], b["descriptor"], atol=1e-4)
    np.testing.assert_allclose(pose_b[:3], moved_pose[:3], atol=1e-3)  # the rest face's own frame: 0.03 deg


def test_model_is_linear_and_cached(astronaut_fit) -> None:  # noqa: ANN001
    neutral = astronaut_fit.identity["neutral"]
    model = FaceModel.for_identity(neutral)
    assert FaceModel.for_identity(neutral.copy()) is model
    rng = np.random.default_rng(1)
    a, b = rng.uniform(0, 1, (2, ARKIT_LAYOUT.size))
    lhs = model.vertices(a + b) - model.neutral
    rhs = (model.vertices(a) - model.neutral) + (model.vertices(b) - model.neutral)
    np.testing.assert_allclose(lhs, rhs, atol=1e-5)
    with pytest.raises(TalkingHeadError):
        model.vertices(np.zeros(5))
    with pytest.raises(TalkingHeadError):
        FaceModel.for_identity(np.zeros((10, 3)))


def test_channels_move_the_right_parts(astronaut_fit) -> None:  # noqa: ANN001
    identity, _, pose, _ = astronaut_fit
    model = FaceModel.for_identity(identity["neutral"])
    n = model.neutral

    def v(**c: float) -> np.ndarray:
        return model.vertices(_expr(**c))

    gaps = [v(jawOpen=j)[13, 1] - v(jawOpen=j)[14, 1] for j in (0.0, 0.5, 1.0)]
    assert gaps[0] < gaps[1] < gaps[2] and gaps[2] - gaps[0] > 0.15  # inner lips part (model units)
    assert v(jawOpen=1.0)[152, 1] < n[152, 1] - 0.1  # the chin drops
    assert abs(v(jawOpen=1.0)[10] - n[10]).max() < 1e-6  # the forehead stays
    closed = v(jawOpen=1.0, mouthClose=1.0)
    assert closed[13, 1] - closed[14, 1] == pytest.approx(n[13, 1] - n[14, 1], abs=0.02)
    # Smile left raises the subject's left mouth corner (landmark 291, image right) only.
    smile = v(mouthSmileLeft=1.0)
    assert smile[291, 1] > n[291, 1] + 0.03 and smile[291, 0] > n[291, 0]
    assert abs(smile[61] - n[61]).max() < 0.01
    assert v(mouthFrownRight=1.0)[61, 1] < n[61, 1] - 0.03
    # Blink closes the lids: the upper lid lands near the lower lid.
    opening = n[386, 1] - n[374, 1]
    blink = v(eyeBlinkLeft=1.0)
    assert blink[386, 1] - blink[374, 1] < 0.05 * opening + 1e-6 and abs(blink[159] - n[159]).max() < 1e-6
    wide = v(eyeWideRight=1.0)
    assert wide[159, 1] - wide[145, 1] > 1.3 * (n[159, 1] - n[145, 1])
    assert v(browInnerUp=1.0)[336, 1] > n[336, 1] + 0.03
    pucker = v(mouthPucker=1.0)
    assert pucker[291, 0] - pucker[61, 0] < 0.8 * (n[291, 0] - n[61, 0])
    for name in ARKIT_LAYOUT.channels:  # every channel does something
        assert np.abs(model.basis[ARKIT_LAYOUT.channels.index(name)]).max() > 0.02, name


def test_mouth_basis_tensor_matches_numpy(astronaut_fit) -> None:  # noqa: ANN001
    import torch

    model = FaceModel.for_identity(astronaut_fit.identity["neutral"])
    neutral, basis = model.basis_tensor()
    idx = model.mouth_indices
    assert set(idx) == set(mesh_regions()["lips"]) and basis.shape == (ARKIT_LAYOUT.size, len(idx), 3)
    c = torch.rand(4, ARKIT_LAYOUT.size)
    got = neutral + torch.einsum("te,emc->tmc", c, basis)
    np.testing.assert_allclose(got.numpy(), model.vertices(c.numpy())[:, idx], atol=1e-5)

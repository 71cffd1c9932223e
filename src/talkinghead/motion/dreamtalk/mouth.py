"""Mouth vertices for the style-aware lip expert (DreamTalk 3.2, App. C.3.2: "the face mesh is obtained
by adding the mean shape to the product of the expression parameters and expression bases"; the lip
expert keeps the mouth-area vertices).

With the project's face model (:mod:`talkinghead.face.model`, ARKit layout) the mean shape is the mean of
the training identities' neutral shapes and the basis is the face model's blendshapes built on it,
restricted to the lip vertices: ``basis [E, M, 3]``, ``neutral [M, 3]``.

For a channel layout the face model does not know (e.g. imported Deep3DFace coefficients without their
BFM basis) there is no mesh; then the "vertices" are the layout's ``mouth`` channels themselves (a
one-hot basis, one pseudo-vertex per channel, x coordinate only), so the lip expert still sees exactly
the lip-articulation coefficients. This fallback is reported in the checkpoint (``mouth_source``).
"""

from __future__ import annotations

import numpy as np

from talkinghead.sequence import ChannelLayout


def mouth_model(layout: ChannelLayout, mean_neutral: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, str]:
    """``(basis [E, M, 3], neutral [M, 3], source)`` for ``layout``."""
    from talkinghead.face.model import ARKIT_LAYOUT, FaceModel
    from talkinghead.face.topology import NUM_VERTICES

    if (layout.channels == ARKIT_LAYOUT.channels and mean_neutral is not None
            and mean_neutral.shape == (NUM_VERTICES, 3)):
        neutral_t, basis_t = FaceModel.for_identity(mean_neutral).basis_tensor()
        return basis_t.numpy(), neutral_t.numpy(), "face_model:arkit:lips"
    mouth = layout.indices("mouth") if "mouth" in layout.groups else list(range(layout.size))
    basis = np.zeros((layout.size, len(mouth), 3), dtype=np.float32)
    for m, e in enumerate(mouth):
        basis[e, m, 0] = 1.0
    return basis, np.zeros((len(mouth), 3), dtype=np.float32), "channels:mouth"

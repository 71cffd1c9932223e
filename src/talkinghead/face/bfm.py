"""Deep3DFace / Basel Face Model coefficients as another channel layout (issue 3, item 2).

DreamTalk (Sec. 3.1 and its released preprocessing), PIRenderer and SadTalker read the ``.mat``
files that Deep3DFace (Deng et al. 2019) writes: a ``coeff`` array ``[T, 257]`` laid out as
identity 80 | expression 64 | texture 80 | angles 3 | gamma (lighting) 27 | translation 3.
:func:`load_bfm_mat` turns one into a :class:`MotionSequence` with the ``bfm64`` layout
(``exp_00 .. exp_63``) so users with preprocessed data can train on it unchanged.

Pose mapping: the angles (radians, about x, y, z) become ``pitch, yaw, roll``; the translation's
``x, y`` become ``tx, ty``; Deep3DFace places its perspective camera 10 units from the origin, so a
depth translation ``t_z`` scales the face by ``10 / (10 - t_z)`` and ``tz = -log(1 - t_z / 10)`` (our
log-scale, weak perspective). The identity keeps the mean ``id [80]``, ``tex [80]`` and ``gamma [27]``
coefficients (``bfm_id`` doubles as the identity descriptor).

Deviation: which of the 64 PCA components encode the mouth is not published; Dimitra (Sec. 3) says
13 do. The ``mouth`` group here is the first 13 components (the largest-variance ones, dominated by
jaw and lip motion in BFM expression bases); ``face`` is the other 51.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from talkinghead.errors import TalkingHeadError
from talkinghead.sequence import ChannelLayout, MotionSequence

BFM_COEFF_SIZE = 257
BFM_SLICES = {"id": slice(0, 80), "exp": slice(80, 144), "tex": slice(144, 224), "angles": slice(224, 227),
              "gamma": slice(227, 254), "trans": slice(254, 257)}
CAMERA_DISTANCE = 10.0
_EXP = tuple(f"exp_{i:02d}" for i in range(64))
BFM64_LAYOUT = ChannelLayout("bfm64", _EXP, {"mouth": _EXP[:13], "face": _EXP[13:]})


def motion_from_bfm(coeff: np.ndarray, fps: float = 25.0, source: str = "bfm") -> MotionSequence:
    """``coeff [T, 257]`` Deep3DFace coefficients -> a ``bfm64`` MotionSequence."""
    coeff = np.asarray(coeff, dtype=np.float64)
    if coeff.ndim == 1:
        coeff = coeff[None]
    if coeff.ndim != 2 or coeff.shape[1] != BFM_COEFF_SIZE or len(coeff) == 0:
        raise TalkingHeadError(f"Deep3DFace coefficients must be [T, 257], got {list(coeff.shape)}.")
    if not np.all(np.isfinite(coeff)):
        raise TalkingHeadError("The Deep3DFace coefficients contain NaN or infinite values.")
    trans = coeff[:, BFM_SLICES["trans"]]
    if np.any(trans[:, 2] >= CAMERA_DISTANCE):
        raise TalkingHeadError("A Deep3DFace depth translation puts the face behind the camera.")
    pose = np.concatenate([coeff[:, BFM_SLICES["angles"]], trans[:, :2],
                           -np.log1p(-trans[:, 2:3] / CAMERA_DISTANCE)], axis=1)
    identity = {"bfm_id": coeff[:, BFM_SLICES["id"]].mean(0).astype(np.float32),
                "bfm_tex": coeff[:, BFM_SLICES["tex"]].mean(0).astype(np.float32),
                "bfm_gamma": coeff[:, BFM_SLICES["gamma"]].mean(0).astype(np.float32)}
    identity["descriptor"] = identity["bfm_id"]
    return MotionSequence(coeff[:, BFM_SLICES["exp"]], pose, BFM64_LAYOUT, fps, identity, source)


def load_bfm_mat(path: str | Path, fps: float = 25.0) -> MotionSequence:
    """Read a Deep3DFace ``.mat`` (``coeff [T, 257]``, as DreamTalk/PIRenderer/SadTalker use)."""
    from scipy.io import loadmat

    path = Path(path)
    if not path.is_file():
        raise TalkingHeadError(f"The coefficient file {path} does not exist.")
    try:
        data = loadmat(str(path))
    except Exception as err:  # scipy raises several types for non-.mat input
        raise TalkingHeadError(f"{path} is not a readable MATLAB .mat file.") from err
    if "coeff" not in data:
        raise TalkingHeadError(f"{path} has no 'coeff' array of Deep3DFace coefficients.")
    return motion_from_bfm(data["coeff"], fps, str(path))

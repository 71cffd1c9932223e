"""MediaPipe face-mesh topology: the one definition of the vertex counts, the stable vertex set and the
named anchor landmarks.

MediaPipe's refined face mesh has 478 landmarks: the 468 face-mesh vertices (``FACEMESH_TESSELATION``)
followed by 10 iris points (468..477). The face model, fitting, tracking, the warp renderer and the
landmark metrics all work on the 468 mesh vertices.

:data:`STABLE_VERTICES` are the points expressions hardly move (forehead, nose bridge and upper nose,
eye corners, temples): the head's rigid motion is fitted on them (pose fitting, landmark smoothing, the
warp renderer's ring motion) and their centroid is the face model's origin. With the astronaut's fitted
face, no ARKit blendshape at coefficient 1 moves any of them by more than 1.7% of the face width (the
nose tip, moved most by ``mouthPucker``, 1.4%); the median vertex moves 2.9%.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import sys
import types
from pathlib import Path

import numpy as np

NUM_VERTICES = 468  # face-mesh vertices (no irises)
NUM_LANDMARKS = 478  # MediaPipe's refined landmarks: the mesh + 10 iris points

STABLE_VERTICES = np.array([10, 151, 9, 8, 168, 6, 197, 195, 5, 4, 1, 33, 133, 263, 362, 130, 359,
                            127, 356, 234, 454, 21, 251, 54, 284, 103, 332, 67, 297, 109, 338,
                            243, 463, 244, 464, 122, 351, 245, 465], dtype=np.intp)
STABLE_VERTICES.setflags(write=False)

# Named anchor landmarks ("left" = the subject's left = image right).
NOSE_TIP = 1
FOREHEAD = 10
CHIN = 152
EYE_OUTER_R, EYE_INNER_R, EYE_OUTER_L, EYE_INNER_L = 33, 133, 263, 362
MOUTH_CORNER_R, MOUTH_CORNER_L = 61, 291
LIP_INNER_UP, LIP_INNER_LOW, LIP_OUTER_UP, LIP_OUTER_LOW = 13, 14, 0, 17


_CONNECTIONS = "mediapipe.python.solutions.face_mesh_connections"


@functools.lru_cache(maxsize=1)
def mesh_connections() -> types.ModuleType:
    """MediaPipe's face-mesh connection sets (its ``face_mesh_connections`` module: constants only, e.g.
    ``FACEMESH_TESSELATION``, ``FACEMESH_LIPS``), read from the installed package's file without importing
    the ``mediapipe`` package where it is not imported yet: importing it loads its graphs' native code and,
    through its drawing utilities, matplotlib (about 1 s), which a process that only needs the mesh's
    topology (a render worker) does not need. The normal import where the file is not where expected."""
    loaded = sys.modules.get(_CONNECTIONS)
    if loaded is not None:
        return loaded
    spec = importlib.util.find_spec("mediapipe")  # finds the package without running it
    roots = list(spec.submodule_search_locations or []) if spec is not None else []
    for root in roots:
        path = Path(root) / "python" / "solutions" / "face_mesh_connections.py"
        file_spec = importlib.util.spec_from_file_location("talkinghead.face._mediapipe_connections", path)
        if path.is_file() and file_spec is not None and file_spec.loader is not None:
            module = importlib.util.module_from_spec(file_spec)
            file_spec.loader.exec_module(module)
            return module
    return importlib.import_module(_CONNECTIONS)

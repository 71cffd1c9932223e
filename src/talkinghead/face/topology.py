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

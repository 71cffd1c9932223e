"""What the face front end and the warp renderer import (issue 18, the cold start): MediaPipe's package pulls in
matplotlib.pyplot (0.3-0.6 s) through its drawing utilities, and a render worker needs only the mesh's topology."""

from __future__ import annotations

import subprocess
import sys


def _run(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip().splitlines()[-1]


def test_a_portrait_fit_defers_pyplot_until_it_is_used() -> None:
    code = ("import sys; from skimage import data; from talkinghead.generators import Portrait; "
            "Portrait.fit(data.astronaut()); before = 'matplotlib.figure' in sys.modules; "
            "import matplotlib; matplotlib.use('Agg'); import matplotlib.pyplot as plt; "
            "from mediapipe.python.solutions import drawing_utils; fig = drawing_utils.plt.figure(); "
            "print(before, type(fig).__name__, type(sys.modules['matplotlib.pyplot']).__name__, "
            "drawing_utils.plt.figure is plt.figure)")
    assert _run(code) == "False Figure module True"


def test_the_warp_renderer_reads_the_mesh_topology_without_importing_mediapipe(tmp_path) -> None:
    """A render worker's start: the renderer and the mesh's regions from the topology file alone, with the same
    constants as MediaPipe's own module."""
    import numpy as np
    from mediapipe.python.solutions import face_mesh_connections as fmc
    from skimage import data

    from talkinghead.face.model import fit_image
    from talkinghead.render import WarpRenderer

    fit = fit_image(data.astronaut())
    source = WarpRenderer.from_fit(data.astronaut(), fit.identity, fit.expression, fit.pose).source
    np.save(tmp_path / "face.npy", (source - source.min(0)) / np.ptp(source, 0).max() * 50 + 7)  # in 64 pixels
    code = ("import sys, numpy as np; from talkinghead.render.warp_renderer import WarpRenderer; "
            "from talkinghead.face.model import mesh_regions; from talkinghead.face.topology import mesh_connections; "
            f"r = WarpRenderer(np.zeros((64, 64, 3), np.uint8), np.load({str(tmp_path / 'face.npy')!r})); "
            "r.render_vertices(r.source); mesh_regions(); c = mesh_connections(); "
            "print('mediapipe' in sys.modules, hash((c.FACEMESH_TESSELATION, c.FACEMESH_LIPS, c.FACEMESH_FACE_OVAL)))")
    assert _run(code) == f"False {hash((fmc.FACEMESH_TESSELATION, fmc.FACEMESH_LIPS, fmc.FACEMESH_FACE_OVAL))}"

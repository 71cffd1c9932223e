"""Reference snapshots of the warp renderer: ``python -m talkinghead.render.snapshots [OUT_DIR]``.

Renders skimage's astronaut portrait (a public-domain photograph shipped with scikit-image) with its
own fitted coefficients (neutral) and with single channels or a pose change added, as 512-pixel face
crops: ``neutral``, ``jaw_open``, ``smile``, ``blink``, ``head_turn``. docs/snapshots holds the output.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from talkinghead.sequence import POSE_NAMES

SNAPSHOTS: dict[str, tuple[dict[str, float], dict[str, float]]] = {
    "neutral": ({}, {}),
    "jaw_open": ({"jawOpen": 0.7}, {}),
    "smile": ({"mouthSmileLeft": 0.8, "mouthSmileRight": 0.8}, {}),
    "blink": ({"eyeBlinkLeft": 1.0, "eyeBlinkRight": 1.0}, {}),
    "head_turn": ({}, {"yaw": 0.3, "pitch": 0.06}),
}


def render_snapshots(out_dir: str | Path, size: int = 512) -> list[Path]:
    """Write the five snapshot PNGs into ``out_dir``; returns their paths."""
    from skimage import data

    from talkinghead.face.model import ARKIT_LAYOUT, fit_image
    from talkinghead.io.image import save_image
    from talkinghead.render.warp_renderer import WarpRenderer, WarpRendererConfig

    image = data.astronaut()
    fit = fit_image(image)
    renderer = WarpRenderer.from_fit(image, fit.identity, fit.expression, fit.pose,
                                     WarpRendererConfig(size=size, paste_back=False))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, (channels, pose_change) in SNAPSHOTS.items():
        expression = fit.expression.copy()
        for channel, value in channels.items():
            expression[ARKIT_LAYOUT.channels.index(channel)] += value
        pose = fit.pose.copy()
        for key, value in pose_change.items():
            pose[POSE_NAMES.index(key)] += value
        frame = next(renderer.render(expression[None], np.asarray(pose)[None]))
        path = out_dir / f"{name}.png"
        save_image(path, frame)
        paths.append(path)
    return paths


if __name__ == "__main__":
    for p in render_snapshots(sys.argv[1] if len(sys.argv) > 1 else "docs/snapshots"):
        print(p)

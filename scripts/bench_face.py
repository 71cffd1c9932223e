"""Face frontend speed: landmarks, fitting (frames/s) and tracking on the astronaut portrait.

Prints the numbers and writes them to bench/face.json. Run: ``.venv/bin/python scripts/bench_face.py``.
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import numpy as np
import skimage.data

from talkinghead.face.fit import ExpressionFitter, FitConfig
from talkinghead.face.landmarks import detect_landmarks, smooth_landmarks
from talkinghead.face.model import ARKIT_LAYOUT, fit_image, project, project_3d
from talkinghead.face.track import track_frames


def timed(fn, repeat: int = 3) -> float:  # noqa: ANN001
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    image = skimage.data.astronaut()
    fit = fit_image(image)
    rng = np.random.default_rng(0)
    t = 500
    expr = (rng.uniform(0, 1, (t, ARKIT_LAYOUT.size)) * (rng.uniform(size=(t, ARKIT_LAYOUT.size)) < 0.2))
    pose = np.tile(fit.pose, (t, 1))
    pose[:, 1] += rng.uniform(-0.3, 0.3, t)
    points = project_3d(fit.identity, expr, pose) + rng.normal(0, 0.3, (t, 468, 3)).astype(np.float32)
    results: dict[str, float] = {}
    results["landmarks_ms_per_image"] = 1000 * timed(lambda: detect_landmarks(image), 5)
    results["basis_build_ms"] = 1000 * timed(lambda: _build(fit.identity["neutral"]), 3)
    for preset in ("tiny", "cpu"):
        fitter = ExpressionFitter(fit.identity, FitConfig.preset(preset))
        results[f"fit_frames_per_s_{preset}_batch{t}"] = t / timed(lambda f=fitter: f.fit(points))
        results[f"fit_frames_per_s_{preset}_single"] = 50 / timed(
            lambda f=fitter: [f.fit(points[i]) for i in range(50)])
    results["project_frames_per_s"] = t / timed(lambda: project(fit.identity, expr, pose))
    results["smooth_frames_per_s"] = t / timed(lambda: smooth_landmarks(points, 25.0))
    frames = np.stack([np.roll(image, k, axis=1) for k in range(25)])
    results["track_video_frames_per_s_512px"] = 25 / timed(lambda: track_frames(frames, 25.0), 1)
    results = {k: round(v, 2) for k, v in results.items()}
    info = {"machine": f"{platform.machine()} {platform.processor() or ''}".strip(), "results": results}
    for k, v in results.items():
        print(f"{k:40s} {v}")
    out = Path("bench/face.json")
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(info, indent=2))
    print(f"wrote {out}")


def _build(neutral: np.ndarray) -> None:
    from talkinghead.face.model import _build_basis

    _build_basis(neutral.astype(np.float64))


if __name__ == "__main__":
    main()

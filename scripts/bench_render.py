"""Warp renderer speed: frames/s at 256 and 512 crops (crop only, and pasted back into the photo).

One process on one core (OpenCV limited to ``--threads``, 1 by default); the astronaut portrait with a 100-frame motion
that opens the jaw, smiles, blinks and turns the head. Prints the numbers and writes bench/render.json.
Usage: ``.venv/bin/python scripts/bench_render.py [--frames 100]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import cv2
import numpy as np
from skimage import data
from skimage.metrics import peak_signal_noise_ratio

from talkinghead.face.model import ARKIT_LAYOUT, fit_image
from talkinghead.render import WarpRenderer, WarpRendererConfig


def motion(fit, frames: int) -> tuple[np.ndarray, np.ndarray]:
    t = np.linspace(0, 4 * np.pi, frames)
    expr = np.repeat(fit.expression[None], frames, 0)
    ch = ARKIT_LAYOUT.channels
    expr[:, ch.index("jawOpen")] += 0.4 * (1 + np.sin(3 * t))
    expr[:, ch.index("mouthSmileLeft")] += 0.3 * (1 + np.sin(t))
    expr[:, ch.index("mouthSmileRight")] += 0.3 * (1 + np.sin(t))
    blink = (np.sin(2 * t) > 0.9).astype(np.float32)
    expr[:, ch.index("eyeBlinkLeft")] += blink
    expr[:, ch.index("eyeBlinkRight")] += blink
    pose = np.repeat(fit.pose[None], frames, 0)
    pose[:, 1] += 0.2 * np.sin(t)
    pose[:, 0] += 0.05 * np.sin(1.7 * t)
    return expr, pose


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--out", default="bench/render.json")
    parser.add_argument("--threads", type=int, default=1, help="OpenCV threads (1: one core)")
    args = parser.parse_args()
    cv2.setNumThreads(args.threads)
    image = data.astronaut()
    fit = fit_image(image)
    expr, pose = motion(fit, args.frames)
    results: dict[str, object] = {"machine": platform.processor() or platform.machine(), "frames": args.frames,
                                  "opencv_threads": args.threads,
                                  "portrait": "skimage astronaut 512x512"}
    for size in (256, 512):
        for paste in (False, True):
            renderer = WarpRenderer.from_fit(image, fit.identity, fit.expression, fit.pose,
                                             WarpRendererConfig(size=size, paste_back=paste))
            verts = renderer.projector(expr, pose)
            renderer.render_vertices(verts[0])  # warm-up
            start = time.perf_counter()
            for v in verts:
                renderer.render_vertices(v)
            fps = args.frames / (time.perf_counter() - start)
            key = f"fps_{size}_{'pasted' if paste else 'crop'}"
            results[key] = round(fps, 1)
            print(f"{key}: {fps:.1f} frames/s")
        start = time.perf_counter()
        n = sum(1 for _ in renderer.render(expr, pose))
        results[f"fps_{size}_pasted_with_projection"] = round(n / (time.perf_counter() - start), 1)
        print(f"fps_{size}_pasted_with_projection: {results[f'fps_{size}_pasted_with_projection']}")
    renderer = WarpRenderer.from_fit(image, fit.identity, fit.expression, fit.pose, WarpRendererConfig(size=256))
    same = next(renderer.render(fit.expression[None], fit.pose[None]))
    mse = float(np.mean((same.astype(np.float64) - image) ** 2))
    results["identity_psnr_db"] = "inf" if mse == 0 else round(float(peak_signal_noise_ratio(image, same)), 2)
    print(f"identity PSNR: {results['identity_psnr_db']} dB")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()

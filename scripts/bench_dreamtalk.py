"""Benchmark DreamTalk training and sampling speed on this machine (writes bench/dreamtalk.json).

Trains each component (lip expert, denoiser with the sync loss, style predictor) for a few steps with a
preset (default ``cpu``) and reports steps/s, plus the time to sample 10 s of motion with 10 DDIM steps.
Data: ``--data DIR`` (e.g. the synthetic corpus); without it a toy dataset of corpus-like size (40 ARKit-
sized channels, 122-d audio features) is written to a temp folder.

    .venv/bin/python scripts/bench_dreamtalk.py [--data DIR] [--preset cpu] [--steps 30]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

from talkinghead.motion.dreamtalk import DreamTalkDenoiser, generate_motion
from talkinghead.training.run import train
from talkinghead.training.toydata import make_toy_dataset


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data")
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--out", default="bench/dreamtalk.json")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_dreamtalk."))
    data = Path(args.data) if args.data else tmp / "toy"
    if not args.data:
        make_toy_dataset(data, speakers=6, clips_per_speaker=6, frames=(75, 200), audio_dim=122,
                         descriptor_dim=14, mouth=13, face=27)
    results: dict[str, object] = {"load_average_at_start": os.getloadavg()[0],
                                  "preset": args.preset, "threads": torch.get_num_threads(),
                                  "machine": platform.processor() or platform.machine(),
                                  "data": str(args.data or "toy (40 channels, 122-d audio)")}
    plan = [("lip-expert", {}), ("denoiser", {"lip_expert": tmp / "lip-expert"}),
            ("style-predictor", {"denoiser": tmp / "denoiser"})]
    for component, deps in plan:
        # warm-up run (imports, first allocations), then the timed run
        train(component, data, tmp / component, args.preset, steps=3, tensorboard=False, **deps)
        cpu0 = time.process_time()
        summary = train(component, data, tmp / f"{component}-timed", args.preset, steps=args.steps,
                        tensorboard=False, **deps)
        cpu_per_step = (time.process_time() - cpu0) / args.steps  # includes setup: an upper bound
        sps = summary["steps_per_second"]
        results[component] = {"steps_per_second": round(sps, 3), "steps_in_10_min": int(sps * 600),
                              "cpu_seconds_per_step": round(cpu_per_step, 4),
                              "first_loss": summary["first_loss"], "last_loss": summary["last_loss"]}
        print(f"{component}: {sps:.2f} steps/s ({int(sps * 600)} steps in 10 min)")
    net = DreamTalkDenoiser.from_pretrained(tmp / "denoiser")
    audio = torch.randn(1, 250, net.config.audio_dim)
    style = net.null_style(1)
    generate_motion(net, audio[:, :25], style)
    start = time.perf_counter()
    generate_motion(net, audio, style, steps=10, guidance_scale=1.0)
    results["sample_10s_motion_ddim10_seconds"] = round(time.perf_counter() - start, 3)
    start = time.perf_counter()
    generate_motion(net, audio, style, steps=10, guidance_scale=2.0)
    results["sample_10s_motion_ddim10_cfg_seconds"] = round(time.perf_counter() - start, 3)
    print(json.dumps(results, indent=2))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()

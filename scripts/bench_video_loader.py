"""Video dataset loader speed (issue 14, item 3): samples/s of each kind against a training step.

On the train split of a video dataset (default: the one ``scripts/video_corpus.sh`` builds):

- label loading (``VideoSampler``) time;
- samples/s in the main process, one thread: frame pairs (batch 16), EMO windows (n = 4 motion + f = 12
  target frames, m = 2, batch 4) and DICE-Talk same-emotion pairs (f = 12, batch 4);
- a stand-in training step (diffusers ``UNet2DModel`` on 128 px frames, batch 8, forward + backward +
  AdamW, one torch thread: a small pixel-space renderer of the size a CPU run can train) alone, then fed by
  ``DataLoader(StepBatches(...), num_workers=1)`` (the loader in a second process, on the second core):
  if the fed step is as fast as the step alone, the loader does not starve training.

Prints the numbers and writes them to ``--out`` (bench/video_loader.json).
Usage: ``.venv/bin/python scripts/bench_video_loader.py [--data DIR] [--seconds 15]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from talkinghead.data.video.loader import StepBatches, VideoSampler, to_torch


def rate(draw: Callable[[np.random.Generator], Any], per_call: int, seconds: float) -> float:
    rng = np.random.default_rng(0)
    draw(rng)
    start, calls = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        draw(rng)
        calls += 1
    return calls * per_call / (time.perf_counter() - start)


def pairs8(sampler: VideoSampler, rng: np.random.Generator) -> Any:
    return sampler.pairs(rng, 8)


def stand_in_step(batch: int) -> Callable[[dict[str, Any] | None], float]:
    """One training step of a small pixel-space UNet on ``batch`` 128 px frames (returns the loss)."""
    from diffusers import UNet2DModel

    model = UNet2DModel(sample_size=128, in_channels=6, out_channels=3, block_out_channels=(32, 64, 128, 128),
                        layers_per_block=1, down_block_types=("DownBlock2D",) * 4, up_block_types=("UpBlock2D",) * 4)
    optim = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step(data: dict[str, Any] | None) -> float:
        if data is None:
            target, reference = torch.randn(batch, 3, 128, 128), torch.randn(batch, 3, 128, 128)
        else:
            target, reference = data["target"], data["reference"]
        noise = torch.randn_like(target)
        t = torch.randint(0, 1000, (batch,))
        pred = model(torch.cat([target + noise, reference], 1), t).sample
        loss = torch.nn.functional.mse_loss(pred, noise)
        optim.zero_grad()
        loss.backward()
        optim.step()
        return float(loss.detach())

    return step


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="/tmp/talkinghead-video/corpus")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--steps", type=int, default=5, help="training steps timed (alone and fed)")
    parser.add_argument("--out", default="bench/video_loader.json")
    args = parser.parse_args()
    torch.set_num_threads(1)

    start = time.perf_counter()
    sampler = VideoSampler(args.data, "train")
    load_s = time.perf_counter() - start
    result: dict[str, Any] = {
        "machine": platform.machine(), "data": args.data, "train_clips": len(sampler), "size": sampler.size,
        "label_load_seconds": round(load_s, 2),
        "pairs_per_s": round(rate(lambda r: sampler.pairs(r, 16), 16, args.seconds), 1),
        "windows_per_s_n4_f12": round(rate(lambda r: sampler.windows(r, 4, 4, 12, 2), 4, args.seconds), 1),
        "emotion_pairs_per_s_f12": round(rate(lambda r: sampler.emotion_pairs(r, 4, 12, 2), 4, args.seconds), 1),
        "pairs_per_s_as_tensors": round(rate(lambda r: to_torch(sampler.pairs(r, 16)), 16, args.seconds), 1),
    }
    result["frames_per_s_in_windows"] = round(result["windows_per_s_n4_f12"] * 17, 1)
    print(json.dumps(result, indent=2), flush=True)

    batch = 8
    step = stand_in_step(batch)
    step(None)
    start = time.perf_counter()
    for _ in range(args.steps):
        step(None)
    alone = (time.perf_counter() - start) / args.steps
    print(f"step alone: {alone:.2f} s", flush=True)
    loader = torch.utils.data.DataLoader(StepBatches(sampler, pairs8, steps=args.steps + 2, seed=0),
                                         batch_size=None, num_workers=1, prefetch_factor=2)
    it = iter(loader)
    step(next(it))
    start = time.perf_counter()
    for _ in range(args.steps):
        step(next(it))
    fed = (time.perf_counter() - start) / args.steps
    result.update({
        "stand_in_step": "diffusers UNet2DModel (32, 64, 128, 128), 6 -> 3 channels, 128 px, batch 8, AdamW, "
                         "1 torch thread",
        "step_seconds_alone": round(alone, 3), "step_seconds_fed_by_loader_worker": round(fed, 3),
        "samples_per_s_step_consumes": round(batch / alone, 1),
    })
    print(json.dumps(result, indent=2))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()

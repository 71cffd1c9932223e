"""Benchmark EMO on this machine (writes bench/emo.json): the numbers issue 16 asks for.

- generation: ``--seconds`` of video from speech on the astronaut with the shipped sampling (20 DDIM steps, the
  shipped strength and precision), the same in float32, and the paper's 40 steps from pure noise, in the same run;
  frames pasted back and consumed as an encoder would; seconds of compute per second of video, split into sampling
  and decoding;
- memory: peak resident memory of fresh processes generating 2 and 8 s of video (clips are made one after another
  with motion frames, so the peak must not grow with length).

Speech: a real recording of ``../shared/realdata`` (``--audio``) repeated to length, else espeak speech.

    .venv/bin/python scripts/bench_emo.py [--checkpoint weights/emo] [--audio WAV] [--seconds 4]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_dimitra import DEFAULT_AUDIO, run_header, speech, video_child, video_memory  # noqa: E402
from bench_fd2talk import portrait  # noqa: E402


def generate_once(checkpoint: str, audio: Any, steps: int = 0, strength: float | None = None,
                  precision: str | None = None) -> dict[str, float]:
    from talkinghead.generators import Conditions
    from talkinghead.video.emo.pipeline import EMOGenerator

    generator = EMOGenerator.from_pretrained(checkpoint)
    changes: dict[str, Any] = {"steps": steps} if steps else {}
    if strength is not None:
        changes["strength"] = strength
    if precision is not None:
        changes["precision"] = precision
    generator.sampling = generator.sampling.replace(**changes)
    face = portrait()
    start = time.perf_counter()
    out = generator.generate(Conditions(audio, face, seed=0), 256)
    count = sum(1 for _ in out.frames)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "frames": float(count), "steps": float(generator.sampling.steps),
            "strength": generator.sampling.strength, "seconds_per_video_second": seconds / (count / 25.0),
            "sampling": out.timings["emo_sampling"], "decode": out.timings["emo_decode"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="weights/emo")
    parser.add_argument("--audio", default=str(DEFAULT_AUDIO))
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--out", default="bench/emo.json")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        video_child(generate_once, args)
        return
    results = run_header(args.audio)
    generate_once(args.checkpoint, speech(args.audio, 0.5))                                  # warm-up
    audio = speech(args.audio, args.seconds)
    for name, steps, strength, precision in (("shipped", 0, None, None), ("shipped_float32", 0, None, "float32"),
                                             ("paper_40_steps_from_noise", 40, 1.0, None)):
        row = generate_once(args.checkpoint, audio, steps, strength, precision)
        results[name] = {k: round(v, 3) for k, v in row.items()}
        print(f"{name}: {row['seconds']:.1f} s for {row['frames']:.0f} frames ({row['seconds_per_video_second']:.2f} "
              f"s per second of video; sampling {row['sampling']:.1f} s, decode {row['decode']:.1f} s)", flush=True)
    results["memory"] = [video_memory(__file__, args, s) for s in (2.0, 8.0)]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()

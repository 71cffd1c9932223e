"""Benchmark DICE-Talk on this machine (writes bench/dice.json): the numbers issue 17 asks for.

- generation: ``--seconds`` of video from speech on the astronaut with the shipped sampling (EDM, 8 Euler steps, no
  guidance; the emotion from a prompt; the shipped precision), the same in float32, and the paper's 25 steps, in the
  same run; frames pasted back and consumed as an encoder would; seconds of compute per second of video, split into
  sampling and decoding;
- the emotion's cost: the prior from a prompt, from the speech (the embedder's audio-only prior) and from a reference
  video are timed on their own (``DICEGenerator.emotion``), as each request pays one of them;
- memory: peak resident memory of fresh processes generating 2 and 8 s of video (clips are made one after another,
  so the peak must not grow with length).

Speech: a real recording of ``../shared/realdata`` (``--audio``) repeated to length, else espeak speech.

    .venv/bin/python scripts/bench_dice.py [--checkpoint weights/dice] [--audio WAV] [--seconds 4]
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


def generate_once(checkpoint: str, audio: Any, steps: int = 0, emotion: str | None = "happy",
                  precision: str | None = None) -> dict[str, float]:
    from talkinghead.generators import Conditions, StyleRequest
    from talkinghead.video.dice.pipeline import DICEGenerator

    generator = DICEGenerator.from_pretrained(checkpoint)
    if steps:
        generator.sampling = generator.sampling.replace(steps=steps)
    if precision is not None:
        generator.sampling = generator.sampling.replace(precision=precision)
    face = portrait()
    start = time.perf_counter()
    out = generator.generate(Conditions(audio, face, StyleRequest(emotion=emotion), seed=0), 256)
    count = sum(1 for _ in out.frames)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "frames": float(count), "steps": float(generator.sampling.steps),
            "seconds_per_video_second": seconds / (count / 25.0),
            "sampling": out.timings["dice_sampling"], "decode": out.timings["dice_decode"]}


def emotion_sources(checkpoint: str, audio: Any, video: Path) -> dict[str, float]:
    """Seconds to make the emotion prior from a prompt, from the speech and from a reference video."""
    from talkinghead.generators import Conditions, StyleRequest
    from talkinghead.video.dice.pipeline import DICEGenerator

    generator = DICEGenerator.from_pretrained(checkpoint)
    face = portrait()
    out = {}
    for name, request in (("prompt", StyleRequest(emotion="happy")), ("speech", StyleRequest()),
                          ("reference_video", StyleRequest(video=video))):
        start = time.perf_counter()
        generator.emotion(Conditions(audio, face, request, seed=0))
        out[name] = time.perf_counter() - start
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="weights/dice")
    parser.add_argument("--audio", default=str(DEFAULT_AUDIO))
    parser.add_argument("--video", default=str(DEFAULT_AUDIO.parent.parent / "video" / "clm_cap12_webcam.mp4"),
                        help="a face video for the emotion-by-video timing (default: a real video of the set)")
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--out", default="bench/dice.json")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        video_child(generate_once, args)
        return
    results = run_header(args.audio)
    generate_once(args.checkpoint, speech(args.audio, 0.5))                                  # warm-up
    audio = speech(args.audio, args.seconds)
    for name, steps, precision in (("shipped", 0, None), ("shipped_float32", 0, "float32"),
                                   ("paper_25_steps", 25, None)):
        row = generate_once(args.checkpoint, audio, steps, precision=precision)
        results[name] = {k: round(v, 3) for k, v in row.items()}
        print(f"{name}: {row['seconds']:.1f} s for {row['frames']:.0f} frames ({row['seconds_per_video_second']:.2f} "
              f"s per second of video; sampling {row['sampling']:.1f} s, decode {row['decode']:.1f} s)", flush=True)
    if Path(args.video).is_file():
        results["emotion_seconds"] = {k: round(v, 3) for k, v in
                                      emotion_sources(args.checkpoint, audio, Path(args.video)).items()}
        print(f"emotion prior: {results['emotion_seconds']}", flush=True)
    results["memory"] = [video_memory(__file__, args, s) for s in (2.0, 8.0)]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()

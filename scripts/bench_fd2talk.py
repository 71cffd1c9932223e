"""Benchmark FD2Talk on this machine (writes bench/fd2talk.json): its two stages, the numbers issue 15 asks for.

- DiTs (stage 1): motion for 30 s of speech (the expression and pose DiTs, DDIM 10), best of ``--repeats``;
  seconds of compute per second of video;
- frame generator (stage 2): ``--frames-seconds`` of video rendered by the UNet renderer on the astronaut (the
  shipped sampling, 20 DDIM steps and the shipped precision and mouth guidance, the same in float32, the paper's 50
  steps, the shipped sampling without mouth guidance and with it whatever the photo's lip gap, in the same run),
  pasted back into the photo, frames consumed as an encoder would; seconds of compute per second of video. The
  astronaut smiles with parted lips, so where the shipped guidance is limited to shut lips
  (``mouth_guidance_max_gap``) her shipped row runs unguided: ``mouth_guidance_applied`` says which ran, and the
  "always guided" row gives the cost on a photo with shut lips;
- memory: peak resident memory of fresh processes: the DiTs for 1, 5 and 10 minutes of speech, and the frame
  generator streaming 2 and 8 s of video (frames are made chunk by chunk, so the peak must not grow with length).

Speech: a real recording of ``../shared/realdata`` (``--audio``) repeated to length, else espeak speech.

    .venv/bin/python scripts/bench_fd2talk.py [--checkpoint weights/fd2talk] [--audio WAV] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_dimitra import DEFAULT_AUDIO, peak_in_child, run_header, speech  # noqa: E402


def portrait() -> Any:
    from skimage import data

    from talkinghead.generators import Portrait

    return Portrait.fit(data.astronaut())


def motion_once(checkpoint: str, audio: Any) -> tuple[dict[str, float], Any]:
    from talkinghead.generators import Conditions
    from talkinghead.motion.fd2talk.generator import FD2TalkGenerator
    from talkinghead.pipeline import placed_motion

    generator = FD2TalkGenerator.from_pretrained(checkpoint)
    face = portrait()
    start = time.perf_counter()
    made = generator.generate(Conditions(audio, face, seed=0))
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "frames": float(len(made.motion))}, placed_motion(made, face, 1.0)


def frames_once(checkpoint: str, motion: Any, steps: int, precision: str | None = None,
                guidance: float | None = None, always: bool = False) -> dict[str, float]:
    from talkinghead.render.fd2talk.renderer import FD2TalkFrameRenderer, FrameSampling

    renderer = FD2TalkFrameRenderer.from_pretrained(checkpoint)
    renderer.sampling = renderer.sampling.replace(steps=steps) if steps else renderer.sampling
    if precision is not None:
        renderer.sampling = renderer.sampling.replace(precision=precision)
    if guidance is not None:
        renderer.sampling = renderer.sampling.replace(mouth_guidance=guidance)
    if always:
        renderer.sampling = renderer.sampling.replace(mouth_guidance_max_gap=None)
    assert isinstance(renderer.sampling, FrameSampling)
    face = portrait()
    applied = renderer.mouth_guidance_for(renderer.reference(face).still())
    start = time.perf_counter()
    count = sum(1 for _ in renderer.render(face, motion, 256))
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "frames": float(count), "steps": float(renderer.sampling.steps),
            "mouth_guidance": float(renderer.sampling.mouth_guidance), "mouth_guidance_applied": float(applied),
            "seconds_per_video_second": seconds / (count / motion.fps)}


def child(args: argparse.Namespace) -> None:
    """One memory run in this process: ``--child KIND:SECONDS``; prints the peak resident memory."""
    kind, seconds = args.child.split(":")
    audio = speech(args.audio, float(seconds))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result, motion = motion_once(args.checkpoint, audio)
    if kind == "frames":
        result = frames_once(args.checkpoint, motion, 0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"kind": kind, "seconds_of_speech": float(seconds), "peak_rss_mib": peak / 1024,
                      "peak_before_mib": before / 1024, **result}))


def run_child(args: argparse.Namespace, spec: str) -> dict[str, Any]:
    return peak_in_child(__file__, ["--checkpoint", args.checkpoint, "--audio", args.audio, "--child", spec], spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="weights/fd2talk")
    parser.add_argument("--audio", default=str(DEFAULT_AUDIO))
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--frames-seconds", type=float, default=4.0)
    parser.add_argument("--out", default="bench/fd2talk.json")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    results = run_header(args.audio)
    motion_once(args.checkpoint, speech(args.audio, 3.0))                                   # warm-up
    runs = [motion_once(args.checkpoint, speech(args.audio, 30.0))[0] for _ in range(args.repeats)]
    best = min(runs, key=lambda r: r["seconds"])
    results["dits_30s"] = {**{k: round(v, 3) for k, v in best.items()},
                           "seconds_per_video_second": round(best["seconds"] / 30.0, 4)}
    print(f"DiTs, 30 s of speech: {best['seconds']:.2f} s ({best['seconds'] / 30:.3f} s per second of video)",
          flush=True)
    _, motion = motion_once(args.checkpoint, speech(args.audio, args.frames_seconds))
    frames_once(args.checkpoint, motion.slice(0, 10), 0, guidance=3.0, always=True)                  # warm-up
    for steps, precision, guidance, always in ((0, None, None, False), (0, "float32", None, False),
                                              (50, None, None, False), (0, None, 1.0, False), (0, None, None, True)):
        row = frames_once(args.checkpoint, motion, steps, precision, guidance, always)
        name = (f"frames_steps{int(row['steps'])}" + (f"_{precision}" if precision else "")
                + ("_no_mouth_guidance" if guidance == 1.0 else "") + ("_always_guided" if always else ""))
        results[name] = {k: round(v, 3) for k, v in row.items()}
        print(f"frame generator, {name}: {row['seconds']:.1f} s for {row['frames']:.0f} frames "
              f"({row['seconds_per_video_second']:.2f} s per second of video; mouth guidance "
              f"{row['mouth_guidance_applied']:g})", flush=True)
    results["memory"] = [run_child(args, spec) for spec in ("dits:60", "dits:300", "dits:600", "frames:2",
                                                            "frames:8")]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()

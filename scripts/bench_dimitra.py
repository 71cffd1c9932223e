"""Benchmark Dimitra's motion generation on this machine (writes bench/dimitra.json).

- speed: motion for 30 s of speech (conditions + the three parts' sampling with the checkpoint's own settings: the
  manifest's ``sampling``, e.g. speech guidance, else the defaults; DDIM 10), best of ``--repeats``, with the
  cross-faded joins (overlap 8, the default) and the paper's plain recursion (overlap 0) in the same run;
- memory: peak resident memory of a fresh process that loads the models and makes motion for 1, 5 and 10 minutes
  of speech (each length in its own process, so the peaks do not mix); flat in length means bounded memory.

Speech: a real recording of ``../shared/realdata`` (``--audio``) repeated to length, else espeak speech of the
demo text repeated. Portrait: scikit-image's astronaut. Phonemes come from the recogniser (no transcript).

    .venv/bin/python scripts/bench_dimitra.py [--checkpoint weights/dimitra] [--audio WAV] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_AUDIO = Path.home() / ".cache/talkinghead-realdata/voices/en_f_asterisk_demo_instruct.wav"


def speech(path: str | None, seconds: float) -> Any:
    """``seconds`` of speech: the recording (or espeak's demo text) repeated and cut."""
    from talkinghead.io.audio import Audio, load_audio

    if path and Path(path).is_file():
        audio = load_audio(path)
    else:
        from talkinghead.api import DEMO_TEXT
        from talkinghead.audio.tts import synthesize

        audio = synthesize(DEMO_TEXT).audio
    samples = np.asarray(audio.samples, np.float32)
    total = int(seconds * audio.sample_rate)
    return Audio(np.resize(samples, total), audio.sample_rate)


def run_header(audio: str) -> dict[str, Any]:
    """What a benchmark's JSON starts with: when, how busy the machine was, torch's threads, the machine, the speech."""
    import torch

    return {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "load_average_at_start": os.getloadavg()[0],
            "threads": torch.get_num_threads(), "machine": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(), "audio": audio if Path(audio).is_file() else "espeak demo text"}


def peak_in_child(script: str, argv: list[str], label: str) -> dict[str, Any]:
    """Run ``script argv`` (a benchmark's ``--child`` mode) in a fresh process; its last line is a JSON row with
    ``peak_rss_mib`` and ``peak_before_mib``, printed under ``label`` and returned rounded."""
    done = subprocess.run([sys.executable, script, *argv], capture_output=True, text=True, check=True)
    row = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"{label}: peak {row['peak_rss_mib']:.0f} MiB ({row['peak_before_mib']:.0f} MiB at start)", flush=True)
    return {k: round(v, 2) if isinstance(v, float) else v for k, v in row.items()}


def print_peak(make: Any, seconds: float) -> None:
    """A benchmark's ``--child`` mode: run ``make()`` (a dict of floats) for ``seconds`` of speech in this process and
    print its row with the peak resident memory after it and before it, as :func:`peak_in_child` reads it."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = make()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds_of_speech": seconds, "peak_rss_mib": peak / 1024, "peak_before_mib": before / 1024,
                      **result}))


def video_child(generate: Any, args: argparse.Namespace) -> None:
    """A video benchmark's ``--child SECONDS`` mode: ``generate(args.checkpoint, speech)`` under :func:`print_peak`."""
    seconds = float(args.child)
    print_peak(lambda: generate(args.checkpoint, speech(args.audio, seconds)), seconds)


def video_memory(script: str, args: argparse.Namespace, seconds: float) -> dict[str, Any]:
    """Run ``script``'s ``--child`` mode for ``seconds`` of video in a fresh process (:func:`peak_in_child`)."""
    return peak_in_child(script, ["--checkpoint", args.checkpoint, "--audio", args.audio, "--child", str(seconds)],
                         f"{seconds:g} s of video")


def motion_once(checkpoint: str, audio: Any, overlap: int) -> dict[str, float]:
    from skimage import data

    from talkinghead.generators import Conditions, Portrait
    from talkinghead.motion.dimitra.generator import DimitraGenerator

    generator = DimitraGenerator.from_pretrained(checkpoint)            # the manifest's sampling (speech guidance)
    generator.sampling = generator.sampling.replace(overlap=overlap)
    portrait = Portrait.fit(data.astronaut())
    start = time.perf_counter()
    made = generator.generate(Conditions(audio, portrait, seed=0))
    return {"seconds": time.perf_counter() - start, **made.timings, "frames": float(len(made.motion))}


def child(args: argparse.Namespace) -> None:
    """One length in this process: print the peak resident memory after making motion for it."""
    audio = speech(args.audio, args.child)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = motion_once(args.checkpoint, audio, 8)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds_of_speech": args.child, "peak_rss_mib": peak / 1024,
                      "peak_before_generation_mib": before / 1024, **result}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default="weights/dimitra")
    parser.add_argument("--audio", default=str(DEFAULT_AUDIO))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--lengths", default="60,300,600", help="seconds of speech for the memory runs")
    parser.add_argument("--out", default="bench/dimitra.json")
    parser.add_argument("--child", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    from talkinghead.motion.dimitra.generator import DimitraGenerator

    results = run_header(args.audio)
    results["sampling"] = DimitraGenerator.from_pretrained(args.checkpoint).sampling.to_dict()
    audio = speech(args.audio, 30.0)
    motion_once(args.checkpoint, speech(args.audio, 3.0), 8)                          # warm-up
    for overlap in (8, 0):
        runs = [motion_once(args.checkpoint, audio, overlap) for _ in range(args.repeats)]
        best = min(runs, key=lambda r: r["seconds"])
        results[f"motion_30s_overlap{overlap}"] = {k: round(v, 3) for k, v in best.items()}
        print(f"30 s of speech, overlap {overlap}: {best['seconds']:.2f} s (conditions {best['conditions']:.2f} s, "
              f"motion {best['motion']:.2f} s)", flush=True)
    memory = []
    for seconds in (float(s) for s in args.lengths.split(",")):
        done = subprocess.run([sys.executable, __file__, "--checkpoint", args.checkpoint, "--audio", args.audio,
                               "--child", str(seconds)], capture_output=True, text=True, check=True)
        row = json.loads(done.stdout.strip().splitlines()[-1])
        memory.append({k: round(v, 2) for k, v in row.items()})
        print(f"{seconds / 60:.0f} min of speech: peak {row['peak_rss_mib']:.0f} MiB "
              f"({row['peak_before_generation_mib']:.0f} MiB before generating), {row['seconds']:.1f} s", flush=True)
    results["memory"] = memory
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()

"""Benchmark of ``talkinghead generate`` on 30 s of speech (BENCHMARKS.md, "generate pipeline").

Each render size (256, 512) runs in its own process (peak memory per run), with torch's default
thread count and with 1 thread: motion generation time (stage 5, DDIM 10 steps), the other stages,
and end-to-end wall time from files (portrait png + speech wav) to the mp4 after a warm-up call, plus
peak resident memory; then one cold run of the CLI in a fresh process. Uses weights/dreamtalk when
present, else randomly initialised checkpoints of the shipped ``cpu`` presets (same cost).

    .venv/bin/python scripts/bench_generate.py            # writes bench/generate.json
    .venv/bin/python scripts/bench_generate.py --compare-src OLD/src --repeats 5
        # old vs new in one run: 256 px, 1 thread, runs interleaved; writes bench/generate_compare.json
    .venv/bin/python scripts/bench_generate.py --warm [--compare-src OLD/src] [--repeats 3]
        # warm, as a server runs it: models and renderer loaded once in the process (api.load_models()
        # passed as models=), the same request made twice, the second timed; writes bench/generate_warm.json
        # (bench/generate_warm_compare.json with --compare-src, old and new processes interleaved)
    .venv/bin/python scripts/bench_generate.py --cold [--compare-src OLD/src] [--repeats 3]
        # cold: `python -m talkinghead -q generate ...` as a subprocess (start-up, imports, model loading,
        # MediaPipe included); writes bench/generate_cold.json (bench/generate_cold_compare.json)

With --compare-src the other side's package is put first on PYTHONPATH; it must find the same weights (pass a
tree whose src/ sits next to weights/, e.g. ``git worktree add /tmp/old HEAD``, or symlink weights/ there).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SECONDS = 30.0
PARAGRAPH = ("The quick brown fox jumps over the lazy dog. A talking head needs speech with many sounds, "
             "so this paragraph keeps going with ordinary sentences about the weather, the city, and the "
             "small things people say every day. Rain is expected tomorrow morning, but the afternoon "
             "should be bright and warm. Please remember to water the plants and to call your sister. ")


def make_inputs(folder: Path) -> tuple[Path, Path, Path, str]:
    import numpy as np
    from skimage import data

    from talkinghead.audio.tts import synthesize
    from talkinghead.generators import weights_root
    from talkinghead.io.audio import Audio, save_wav
    from talkinghead.io.image import save_image

    speech = synthesize(PARAGRAPH * 2).audio
    n = int(SECONDS * speech.sample_rate)
    samples = np.resize(speech.samples, n)  # repeat to exactly 30 s
    wav = save_wav(folder / "speech.wav", Audio(samples.astype(np.float32)))
    image = save_image(folder / "portrait.png", data.astronaut())
    ckpt = weights_root() / "dreamtalk"
    kind = "weights/dreamtalk"
    if not (ckpt / "denoiser").is_dir():
        sys.path.insert(0, str(ROOT / "tests" / "pipeline"))
        from pipeline_helpers import make_random_checkpoints

        ckpt = make_random_checkpoints(folder / "ckpt", preset="cpu", feature_preset="lowlevel")
        kind = "random-init cpu presets (weights/dreamtalk not present)"
    return image, wav, ckpt, kind


def run_one(image: str, wav: str, ckpt: str, size: int, out: str, threads: int) -> dict:
    import torch

    from talkinghead.io.audio import Audio
    from talkinghead.log import set_quiet
    from talkinghead.pipeline import GenerateConfig, GenerateInputs, generate

    set_quiet(True)
    # warm-up on 1 s (imports, MediaPipe graph, torch kernels), not timed
    import numpy as np

    generate(GenerateInputs(image, Audio(np.zeros(16_000, np.float32))), None, GenerateConfig(), checkpoint=ckpt)
    start = time.perf_counter()
    result = generate(GenerateInputs(image, wav), out, GenerateConfig(size=size, threads=threads),
                      checkpoint=ckpt)
    total = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"size": size, "torch_threads": threads or torch.get_num_threads(), "frames": result.num_frames,
            "end_to_end_s": round(total, 2), "realtime_factor": round(SECONDS / total, 2),
            "stages_s": {k: round(v, 2) for k, v in result.timings.items()},
            "motion_s": round(result.timings["motion"], 2), "peak_rss_mb": round(peak_mb)}


def compare(old_src: Path, repeats: int, out: Path) -> None:
    """End-to-end time at 256 px, 1 thread, of this checkout and ``old_src``, interleaved run by run."""
    import os
    import statistics

    sides = {"old": str(old_src), "new": str(ROOT / "src")}
    times: dict[str, list[float]] = {k: [] for k in sides}
    motion: dict[str, list[float]] = {k: [] for k in sides}
    with tempfile.TemporaryDirectory() as tmp:
        image, wav, ckpt, kind = make_inputs(Path(tmp))
        for r in range(repeats):
            for side, src in (sides.items() if r % 2 == 0 else reversed(sides.items())):
                cmd = [sys.executable, __file__, "--one", str(image), str(wav), str(ckpt), "256",
                       str(Path(tmp) / f"{side}.mp4"), "1"]
                env = dict(os.environ, PYTHONPATH=src)
                proc = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
                run = json.loads(proc.stdout.strip().splitlines()[-1])
                times[side].append(run["end_to_end_s"])
                motion[side].append(run["motion_s"])
                print(side, run["end_to_end_s"], run["stages_s"], flush=True)
    report = {"speech_seconds": SECONDS, "size": 256, "torch_threads": 1, "checkpoints": kind, "repeats": repeats,
              "old_src": str(old_src), "load_average": [round(x, 1) for x in os.getloadavg()],
              **{f"{side}_end_to_end_s": t for side, t in times.items()},
              **{f"{side}_median_s": round(statistics.median(t), 2) for side, t in times.items()},
              **{f"{side}_motion_median_s": round(statistics.median(m), 2) for side, m in motion.items()}}
    report["new_vs_old"] = round(report["new_median_s"] / report["old_median_s"], 3)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


def run_warm(image: str, wav: str, ckpt: str, size: int, out: str) -> dict:
    """Models and renderer loaded once; the same request twice in this process, the second timed."""
    from talkinghead import api
    from talkinghead.generators import load_renderer
    from talkinghead.log import set_quiet
    from talkinghead.pipeline import GenerateConfig, GenerateInputs, generate

    set_quiet(True)
    start = time.perf_counter()
    models = api.load_models(ckpt)
    renderer = load_renderer(None)
    load_s = time.perf_counter() - start
    calls = []
    for _ in range(2):
        start, cpu = time.perf_counter(), _cpu_seconds()
        result = generate(GenerateInputs(image, wav), out, GenerateConfig(size=size), models=models, renderer=renderer)
        calls.append((time.perf_counter() - start, _cpu_seconds() - cpu, result))
    (first, _, _), (second, cpu, result) = calls
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"size": size, "frames": result.num_frames, "load_s": round(load_s, 2), "first_call_s": round(first, 2),
            "end_to_end_s": round(second, 2), "cpu_s": round(cpu, 2), "realtime_factor": round(SECONDS / second, 2),
            "stages_s": {k: round(v, 2) for k, v in result.timings.items()}, "peak_rss_mb": round(peak_mb)}


def _cpu_seconds() -> float:
    """CPU time of this process, all threads (user + system)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_cold(image: Path, wav: Path, ckpt: Path, out: Path, env: dict[str, str] | None = None) -> float:
    """Seconds of ``python -m talkinghead -q generate`` in a fresh process, 256 px."""
    cli = [sys.executable, "-m", "talkinghead", "-q", "generate", "--image", str(image), "--audio", str(wav),
           "--checkpoint", str(ckpt), "-o", str(out)]
    start = time.perf_counter()
    subprocess.run(cli, capture_output=True, text=True, check=True, env=env)
    return time.perf_counter() - start


def compare_modes(mode: str, old_src: Path | None, repeats: int, out: Path) -> None:
    """``warm`` or ``cold`` runs at 256 px of this checkout (and of ``old_src``, interleaved run by run)."""
    import os
    import statistics

    sides = {"new": str(ROOT / "src")}
    if old_src is not None:
        sides = {"old": str(old_src), **sides}
    times: dict[str, list[float]] = {k: [] for k in sides}
    stages: dict[str, list[dict]] = {k: [] for k in sides}
    load_before = [round(x, 2) for x in os.getloadavg()]
    with tempfile.TemporaryDirectory() as tmp:
        image, wav, ckpt, kind = make_inputs(Path(tmp))
        for r in range(repeats):
            for side, src in (sides.items() if r % 2 == 0 else reversed(sides.items())):
                env = dict(os.environ, PYTHONPATH=src)
                target = Path(tmp) / f"{side}.mp4"
                if mode == "warm":
                    cmd = [sys.executable, __file__, "--one-warm", str(image), str(wav), str(ckpt), "256", str(target)]
                    proc = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
                    run = json.loads(proc.stdout.strip().splitlines()[-1])
                    times[side].append(run["end_to_end_s"])
                    stages[side].append(run)
                else:
                    times[side].append(round(run_cold(image, wav, ckpt, target, env), 2))
                    stages[side].append({})
                print(mode, side, times[side][-1], stages[side][-1].get("stages_s", ""),
                      f"load {os.getloadavg()[0]:.2f}", flush=True)
    report: dict = {"mode": mode, "speech_seconds": SECONDS, "size": 256, "checkpoints": kind, "repeats": repeats,
                    "cpu_count": os.cpu_count(), "load_average_before": load_before,
                    "load_average_after": [round(x, 2) for x in os.getloadavg()]}
    if old_src is not None:
        report["old_src"] = str(old_src)
    for side in sides:
        report[f"{side}_end_to_end_s"] = times[side]
        report[f"{side}_median_s"] = round(statistics.median(times[side]), 2)
        if mode == "warm":
            report[f"{side}_runs"] = stages[side]
    if old_src is not None:
        report["new_vs_old"] = round(report["new_median_s"] / report["old_median_s"], 3)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(table(report, sides))
    print(f"wrote {out}")


def table(report: dict, sides: dict[str, str]) -> str:
    """The report as a markdown table (what BENCHMARKS.md shows)."""
    import statistics

    mode = report["mode"]
    head = f"| code | {mode}, {report['repeats']} runs (s) | median |"
    rows = [head, "|---|---|---|"]
    if mode == "warm":
        rows[0] += " CPU s (median) | stages of the median run (s) |"
        rows[1] += "---|---|"
    for side in sides:
        cells = f"| {side} | {', '.join(f'{t:.2f}' for t in report[f'{side}_end_to_end_s'])} | " \
                f"{report[f'{side}_median_s']:.2f} |"
        if mode == "warm":
            runs = sorted(report[f"{side}_runs"], key=lambda r: r["end_to_end_s"])
            mid = runs[len(runs) // 2]["stages_s"]
            cpu = statistics.median(r.get("cpu_s", float("nan")) for r in runs)
            cells += f" {cpu:.2f} | " + ", ".join(f"{k} {v:.2f}" for k, v in mid.items()) + " |"
        rows.append(cells)
    load = report["load_average_before"], report["load_average_after"]
    rows.append(f"\nload average (1, 5, 15 min) before {load[0]}, after {load[1]}; {report['cpu_count']} CPUs")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--one", nargs=6, help=argparse.SUPPRESS)
    parser.add_argument("--one-warm", nargs=5, help=argparse.SUPPRESS)
    parser.add_argument("--warm", action="store_true", help="warm runs (models loaded once, second call timed)")
    parser.add_argument("--cold", action="store_true", help="cold runs of the CLI in a fresh process")
    parser.add_argument("--out", help="the report (default bench/generate.json, bench/generate_warm.json, "
                                      "bench/generate_cold_compare.json, ... by mode)")
    parser.add_argument("--compare-src", help="another checkout's src/ folder: time it against this one")
    parser.add_argument("--repeats", type=int, default=5, help="runs of each side (--compare-src, --warm, --cold)")
    args = parser.parse_args()

    def report_path(default: str) -> Path:
        """``--out``, else the mode's own report under bench/."""
        return Path(args.out) if args.out else ROOT / "bench" / default

    if args.one_warm:
        image, wav, ckpt, size, out = args.one_warm
        print(json.dumps(run_warm(image, wav, ckpt, int(size), out)))
        return
    if args.warm or args.cold:
        mode = "warm" if args.warm else "cold"
        old = Path(args.compare_src).resolve() if args.compare_src else None
        name = f"generate_{mode}{'_compare' if old else ''}.json"
        compare_modes(mode, old, args.repeats, report_path(name))
        return
    if args.one:
        image, wav, ckpt, size, out, threads = args.one
        print(json.dumps(run_one(image, wav, ckpt, int(size), out, int(threads))))
        return
    if args.compare_src:
        compare(Path(args.compare_src).resolve(), args.repeats, report_path("generate_compare.json"))
        return
    import os

    with tempfile.TemporaryDirectory() as tmp:
        image, wav, ckpt, kind = make_inputs(Path(tmp))
        runs = []
        for size, threads in ((256, 0), (256, 1), (512, 0), (512, 1)):
            cmd = [sys.executable, __file__, "--one", str(image), str(wav), str(ckpt), str(size),
                   str(Path(tmp) / f"out{size}.mp4"), str(threads)]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
            runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
            print(json.dumps(runs[-1]))
        # cold: the command a user types, in a fresh process (imports, MediaPipe, model loading included)
        cold = run_cold(image, wav, ckpt, Path(tmp) / "cli.mp4")
        print(f"cold CLI run at 256: {cold:.2f} s")
    report = {"speech_seconds": SECONDS, "cold_cli_256_s": round(cold, 2), "checkpoints": kind,
              "cpu_count": os.cpu_count(),
              "load_average": [round(x, 1) for x in os.getloadavg()], "runs": runs}
    path = report_path("generate.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

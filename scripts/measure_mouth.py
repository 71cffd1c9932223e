"""Measure the mouth in generated videos, independently of the models (issue 12, item 6).

For every portrait x every voice of the real development set (``../shared/realdata/fetch.sh``; default
``~/.cache/talkinghead-realdata``) this runs ``generate`` with default settings (the Python API, models
loaded once per worker) and measures the OUTPUT VIDEO only with MediaPipe's face mesh: the inner-lip
gap against the speech envelope (correlation at lags -3..3), the gap's 5th-95th percentile range, the
gap in pauses of 0.3 s or more, and the portrait's own gap (:mod:`talkinghead.evaluation.mouth`). The
real talking-face videos of the set (no audio) give the reference distribution of real mouth motion.

Writes ``docs/mouth/measurements.md`` and ``.json`` (numbers only; the set's files are never copied)
and keeps the generated videos under ``--out``.

    .venv/bin/python scripts/measure_mouth.py --jobs 2
    .venv/bin/python scripts/measure_mouth.py --portraits 5 --voices 3 --emotion happy --intensity 3 \\
        --table out/mouth/happy3
    .venv/bin/python scripts/measure_mouth.py --portrait grace_hopper --voice en_m_arctic_a0007
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import shlex
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from talkinghead.evaluation.mouth import MAX_LAG, PAUSE_LEVEL, PAUSE_SECONDS

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = Path(os.environ.get("TALKINGHEAD_REALDATA", Path.home() / ".cache" / "talkinghead-realdata"))
TARGETS = {"r_lag0": 0.7, "range_5_95": 0.08, "pause_gap": 0.02}

_models: Any = None


def _init_worker(model: str | None = None, checkpoint: str | None = None) -> None:
    global _models
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from talkinghead import api

    _models = api.load_models(checkpoint=checkpoint, model=model)


def _portrait_gap(path: str) -> float:
    from talkinghead.evaluation.mouth import image_gap
    from talkinghead.io.image import load_image

    return image_gap(load_image(path))


def _generated(portrait: str, voice: str, out_dir: str, emotion: str | None, intensity: int | None,
               transcript: str | None = None, seed: int = 0, reuse: bool = False) -> dict[str, Any]:
    """Generate one video and measure it (in a worker); ``transcript``: what the voice says, for generators that
    read it (Dimitra); ``seed``: the generation's noise seed; ``reuse``: measure the video already there, if any
    (``generate`` writes a video whole or not at all), instead of generating it again."""
    from talkinghead import api
    from talkinghead.evaluation.mouth import measure_track, speech_envelope, video_gaps
    from talkinghead.io.audio import load_audio

    name = f"{Path(portrait).stem}__{Path(voice).stem}.mp4"
    output = Path(out_dir) / name
    start = time.perf_counter()
    style_source, reused = None, reuse and output.is_file()
    if not reused:
        style_source = api.generate(portrait, voice, output=output, emotion=emotion, intensity=intensity,
                                    transcript=transcript, seed=seed, models=_models).style_source
    generated = time.perf_counter() - start
    gaps, fps = video_gaps(output)
    audio = load_audio(voice)
    envelope = speech_envelope(audio.samples, audio.sample_rate, len(gaps), fps)
    m = measure_track(gaps, envelope, fps)
    return {"portrait": Path(portrait).stem, "voice": Path(voice).stem, "seconds": round(audio.duration, 2),
            "frames": len(gaps), "fps": fps, "style_source": style_source, "reused": reused,
            "portrait_gap": _portrait_gap(portrait), **m.to_dict(),
            "time_generate_s": None if reused else round(generated, 2),
            "time_measure_s": round(time.perf_counter() - start - generated, 2)}


def _reference(video: str) -> dict[str, Any]:
    from talkinghead.evaluation.mouth import gap_distribution, video_gaps

    gaps, fps = video_gaps(video)
    return {"video": Path(video).stem, "fps": fps, **gap_distribution(gaps).to_dict()}


def _median(rows: list[dict[str, Any]], key: str, sub: str | None = None) -> float:
    vals = [r[key][sub] if sub else r[key] for r in rows]
    vals = [v for v in vals if v is not None and math.isfinite(v)]
    return float(np.median(vals)) if vals else math.nan


def summarise(rows: list[dict[str, Any]]) -> tuple[dict[str, float], list[dict[str, Any]]]:
    medians = {"r_lag0": _median(rows, "r_lag0"), "r_best_within_1": _median(rows, "r_best_within_1"),
               "r_best": _median(rows, "r_best"), "best_lag": _median(rows, "best_lag"),
               "range_5_95": _median(rows, "gap", "range_5_95"), "p95": _median(rows, "gap", "p95"),
               "max": _median(rows, "gap", "max"), "speech_gap": _median(rows, "speech_gap_median"),
               "pause_gap": _median(rows, "pause_gap_median"), "found": _median(rows, "gap", "found")}
    portraits = []
    for name in sorted({r["portrait"] for r in rows}):
        mine = [r for r in rows if r["portrait"] == name]
        portraits.append({"portrait": name, "portrait_gap": mine[0]["portrait_gap"], "voices": len(mine),
                          "r_lag0": _median(mine, "r_lag0"), "range_5_95": _median(mine, "gap", "range_5_95"),
                          "speech_gap": _median(mine, "speech_gap_median"),
                          "pause_gap": _median(mine, "pause_gap_median")})
    return medians, portraits


def _f(x: float | None, digits: int = 3) -> str:
    return "-" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def write_table(stem: Path, report: dict[str, Any]) -> None:
    stem.parent.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(report, indent=1, default=float) + "\n")
    med, rows, refs, per = report["medians"], report["rows"], report["reference"], report["per_portrait"]
    s = report["settings"]
    style = f"--emotion {s['emotion']}" + (f" --intensity {s['intensity']}" if s["intensity"] else "") \
        if s["emotion"] else "default (style predicted from the speech and the portrait)"
    model = f" with `--model {s['model']}`" if s.get("model") else ""
    model += f" and `--checkpoint {s['checkpoint']}`" if s.get("checkpoint") else ""
    model += " and each voice's transcript (`--transcripts`)" if s.get("transcripts") else ""
    model += f", seed {s['seed']}" if s.get("seed") else ""
    closed = [p for p in per if math.isfinite(p["pause_gap"]) and p["pause_gap"] <= TARGETS["pause_gap"]]
    with_pauses = [p for p in per if math.isfinite(p["pause_gap"])]
    lines = [
        "# Mouth measured on the output video (issue 12, item 6)",
        "",
        f"Made by `{report['command']}` on {report['date']} ({report['wall_s']:.0f} s wall, "
        f"{s['jobs']} worker(s), {report['machine']}).",
        "",
        f"Settings: `generate` defaults{model}, style {style}; {len(per)} portraits x {len(s['voices'])} voices of "
        "the real "
        "development set (`../shared/realdata/fetch.sh`; its files are not in the repository, only these numbers).",
        f"Portraits: {', '.join(s['portraits'])}.",
        f"Voices: {', '.join(s['voices'])}.",
        "",
        "What is measured (`talkinghead.evaluation.mouth`, MediaPipe face mesh on every decoded frame of the "
        "output video, raw landmarks, nothing read from the model): gap = |p13 - p14| / |p33 - p263| (inner "
        "lips over outer eye corners); envelope = RMS of the input audio per 40 ms frame, smoothed [1, 2, 1]/4; "
        "r = Pearson of gap[t + lag] and envelope[t] (lag > 0: the mouth follows the sound); pauses = runs of "
        f">= {PAUSE_SECONDS} s with the envelope below {PAUSE_LEVEL:.0%} of its 95th percentile.",
        "",
        "## Medians over all portrait x voice pairs, against issue 12's targets",
        "",
        "| measure | median | target | met |",
        "|---|---|---|---|",
        f"| r at lag 0 | {_f(med['r_lag0'])} | >= {TARGETS['r_lag0']} | "
        f"{'yes' if med['r_lag0'] >= TARGETS['r_lag0'] else 'no'} |",
        f"| best r within lag -1..1 | {_f(med['r_best_within_1'])} | >= {TARGETS['r_lag0']} | "
        f"{'yes' if med['r_best_within_1'] >= TARGETS['r_lag0'] else 'no'} |",
        f"| best r over -3..3 (median best lag {_f(med['best_lag'], 0)}) | {_f(med['r_best'])} | | |",
        f"| gap 5th-95th percentile range | {_f(med['range_5_95'])} | >= {TARGETS['range_5_95']} | "
        f"{'yes' if med['range_5_95'] >= TARGETS['range_5_95'] else 'no'} |",
        f"| gap 95th percentile / max | {_f(med['p95'])} / {_f(med['max'])} | | |",
        f"| gap while speaking (median) | {_f(med['speech_gap'])} | | |",
        f"| gap in pauses (median) | {_f(med['pause_gap'])} | <= {TARGETS['pause_gap']} on every portrait | "
        f"{len(closed)} of {len(with_pauses)} portraits |",
        f"| frames with a face found | {_f(med['found'])} | 1 | |",
        "",
        "## Real mouth motion: the set's talking-face videos (no audio)",
        "",
        "| video | frames | fps | face found | p5 | median | p95 | 5-95 range | max |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [f"| {r['video']} | {r['frames']} | {r['fps']:.0f} | {_f(r['found'], 2)} | {_f(r['p5'])} | "
              f"{_f(r['median'])} | {_f(r['p95'])} | {_f(r['range_5_95'])} | {_f(r['max'])} |" for r in refs]
    if not refs:
        lines.append("| (not measured in this run) | | | | | | | | |")
    lines += ["", "## Per portrait (medians over the voices)", "",
              "| portrait | own gap (photo) | r lag 0 | 5-95 range | gap speaking | gap in pauses |",
              "|---|---|---|---|---|---|"]
    lines += [f"| {p['portrait']} | {_f(p['portrait_gap'])} | {_f(p['r_lag0'], 2)} | {_f(p['range_5_95'])} | "
              f"{_f(p['speech_gap'])} | {_f(p['pause_gap'])} |" for p in per]
    lines += ["", "## Every portrait x voice", "",
              "| portrait | voice | s | found | own gap | r lag 0 | best lag | r best | p5 | p95 | range | max | "
              "gap speaking | pause frames | gap in pauses |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        g = r["gap"]
        lines.append(f"| {r['portrait']} | {r['voice']} | {r['seconds']:.1f} | {_f(g['found'], 2)} | "
                     f"{_f(r['portrait_gap'])} | {_f(r['r_lag0'], 2)} | {r['best_lag']:+d} | {_f(r['r_best'], 2)} | "
                     f"{_f(g['p5'])} | {_f(g['p95'])} | {_f(g['range_5_95'])} | {_f(g['max'])} | "
                     f"{_f(r['speech_gap_median'])} | {r['pause_frames']} | {_f(r['pause_gap_median'])} |")
    if report.get("failures"):
        lines += ["", "## Failures", ""] + [f"- {f}" for f in report["failures"]]
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")


def choose(files: list[Path], first: int | None, names: list[str] | None, kind: str) -> list[Path]:
    """The first ``first`` of ``files`` (sorted), then only those named ``names`` (stems); LookupError names any
    of ``names`` not among them."""
    files = files[:first]
    missing = sorted(set(names or ()) - {f.stem for f in files})
    if missing:
        raise LookupError(f"No {kind} named {', '.join(missing)}")
    return [f for f in files if f.stem in names] if names else files


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the real development set (faces/, voices/, video/)")
    p.add_argument("--portraits", type=int, default=None, help="only the first N portraits (by name)")
    p.add_argument("--voices", type=int, default=None, help="only the first M voices (by name)")
    p.add_argument("--portrait", action="append", default=None, metavar="NAME",
                   help="only this portrait (file name without .png; repeat for more; after --portraits)")
    p.add_argument("--voice", action="append", default=None, metavar="NAME",
                   help="only this voice (file name without .wav; repeat for more; after --voices)")
    p.add_argument("--max-seconds", type=float, default=None, help="only voices at most this long")
    p.add_argument("--emotion", default=None, help="generate with this emotion style (default: predicted style)")
    p.add_argument("--intensity", type=int, default=None, help="emotion intensity 1-3")
    p.add_argument("--model", default=None, help="the motion generator (default: generate's default)")
    p.add_argument("--checkpoint", default=None,
                   help="a checkpoint folder of that generator (default: its shipped weights)")
    p.add_argument("--out", type=Path, default=ROOT / "out" / "mouth", help="folder for the generated videos")
    p.add_argument("--table", type=Path, default=ROOT / "docs" / "mouth" / "measurements",
                   help="where the .md and .json go (path without suffix)")
    p.add_argument("--jobs", type=int, default=1, help="worker processes (each loads the models once)")
    p.add_argument("--no-reference", action="store_true", help="skip the real talking-face videos")
    p.add_argument("--transcripts", action="store_true",
                   help="give each voice's transcript (manifest.json) to the generator (Dimitra reads it)")
    p.add_argument("--seed", type=int, default=0, help="the generation's noise seed (default 0, generate's)")
    p.add_argument("--reuse", action="store_true",
                   help="measure the videos already in --out instead of generating them again (resumes a run)")
    args = p.parse_args(argv)

    try:
        faces = choose(sorted((args.data / "faces").glob("*.png")), args.portraits, args.portrait, "portrait")
        voices = choose(sorted((args.data / "voices").glob("*.wav")), args.voices, args.voice, "voice")
    except LookupError as err:
        print(f"{err} under {args.data}.", file=sys.stderr)
        return 2
    if args.max_seconds is not None:
        from talkinghead.io.audio import load_audio

        voices = [v for v in voices if load_audio(v).duration <= args.max_seconds]
    videos = [] if args.no_reference else sorted((args.data / "video").glob("*.mp4"))
    if not faces or not voices:
        print(f"No portraits or voices under {args.data}; run ../shared/realdata/fetch.sh first.", file=sys.stderr)
        return 2
    if args.intensity is not None and args.emotion is None:
        print("--intensity needs --emotion.", file=sys.stderr)
        return 2
    said: dict[str, str] = {}
    if args.transcripts:
        manifest = json.loads((args.data / "manifest.json").read_text())
        said = {Path(v["file"]).stem: v["transcript"] for v in manifest["voices"] if v.get("transcript")}
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    pairs = sorted(((f, v) for f in faces for v in voices), key=lambda fv: -fv[1].stat().st_size)
    rows: list[dict[str, Any]] = []
    refs: list[dict[str, Any]] = []
    failures: list[str] = []
    with ProcessPoolExecutor(max_workers=max(1, args.jobs), mp_context=get_context("spawn"),
                             initializer=_init_worker, initargs=(args.model, args.checkpoint)) as pool:
        futures = {pool.submit(_reference, str(v)): ("reference", v.stem) for v in videos}
        futures.update({pool.submit(_generated, str(f), str(v), str(args.out), args.emotion, args.intensity,
                                    said.get(v.stem), args.seed, args.reuse):
                        ("pair", f"{f.stem} x {v.stem}") for f, v in pairs})
        for n, fut in enumerate(as_completed(futures), 1):
            kind, label = futures[fut]
            try:
                res = fut.result()
            except Exception as err:  # noqa: BLE001 - one failing pair is reported, not fatal
                failures.append(f"{label}: {type(err).__name__}: {err}")
                print(f"[{n}/{len(futures)}] {label}: FAILED {err}", flush=True)
                continue
            (refs if kind == "reference" else rows).append(res)
            note = (f"r0 {res['r_lag0']:.2f} range {res['gap']['range_5_95']:.3f} pause {res['pause_gap_median']:.3f}"
                    if kind == "pair" else f"p5-p95 {res['p5']:.3f}-{res['p95']:.3f} max {res['max']:.3f}")
            print(f"[{n}/{len(futures)}] {label}: {note} ({time.perf_counter() - start:.0f} s)", flush=True)
    rows.sort(key=lambda r: (r["portrait"], r["voice"]))
    refs.sort(key=lambda r: r["video"])
    medians, per_portrait = summarise(rows)
    command = " ".join([".venv/bin/python scripts/measure_mouth.py", *map(shlex.quote, argv or sys.argv[1:])])
    report = {
        "command": command, "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "wall_s": time.perf_counter() - start, "machine": f"{os.cpu_count()} CPU cores, {platform.machine()}",
        "settings": {"model": args.model, "checkpoint": args.checkpoint,
                     "emotion": args.emotion, "intensity": args.intensity, "jobs": args.jobs,
                     "transcripts": args.transcripts, "seed": args.seed,
                     "portraits": [f.stem for f in faces], "voices": [v.stem for v in voices],
                     "pause_level": PAUSE_LEVEL, "pause_seconds": PAUSE_SECONDS, "max_lag": MAX_LAG},
        "targets": TARGETS, "medians": medians, "per_portrait": per_portrait, "reference": refs,
        "rows": rows, "failures": failures,
    }
    write_table(args.table, report)
    print(json.dumps(medians, indent=1))
    print(f"wrote {args.table.with_suffix('.md')} and .json")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

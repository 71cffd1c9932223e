"""The mouth of streamed generation against offline generation, on the real development set (issue 18).

For the first N portraits x M voices of ``../shared/realdata`` (default ``~/.cache/talkinghead-realdata``) this makes
three videos with the shipped models, loaded once: offline ``generate`` with the default (predicted) style, offline
with the neutral style (the style streaming uses when none is given), and ``api.stream`` fed the voice in 40 ms
chunks. Each OUTPUT VIDEO is measured with MediaPipe's face mesh like scripts/measure_mouth.py (inner-lip gap against
the speech envelope: r at lag 0, the best lag, the gap's 5-95 % range, the gap in pauses). Prints a table and writes
``--table``.md/.json (numbers only; the set's files are never copied); the videos stay under ``--out``.

    .venv/bin/python scripts/measure_stream_mouth.py --portraits 5 --voices 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = Path(os.environ.get("TALKINGHEAD_REALDATA", Path.home() / ".cache" / "talkinghead-realdata"))
CHUNK_SECONDS = 0.04
KINDS = ("offline, predicted style", "offline, neutral style", "streamed, neutral style")


def measure(video: Path, voice: Path) -> dict[str, Any]:
    """The mouth of ``video`` against the speech of ``voice`` (talkinghead.evaluation.mouth)."""
    from talkinghead.evaluation.mouth import measure_track, speech_envelope, video_gaps
    from talkinghead.io.audio import load_audio

    gaps, fps = video_gaps(video)
    audio = load_audio(voice)
    track = measure_track(gaps, speech_envelope(audio.samples, audio.sample_rate, len(gaps), fps), fps).to_dict()
    return {"r_lag0": track["r_lag0"], "best_lag": track["best_lag"], "range_5_95": track["gap"]["range_5_95"],
            "pause_gap": track["pause_gap_median"], "found": track["gap"]["found"]}


def make_videos(portrait: Path, voice: Path, out: Path, models: Any, renderer: Any) -> dict[str, Path]:
    """The three videos of one portrait and voice."""
    from talkinghead import api
    from talkinghead.io.audio import load_audio
    from talkinghead.io.image import load_image
    from talkinghead.io.video import write_video

    stem = f"{portrait.stem}__{voice.stem}"
    paths = {kind: out / f"{stem}__{i}.mp4" for i, kind in enumerate(KINDS)}
    api.generate(portrait, voice, output=paths[KINDS[0]], models=models, renderer=renderer)
    api.generate(portrait, voice, output=paths[KINDS[1]], emotion="neutral", models=models, renderer=renderer)
    audio = load_audio(voice)
    step = int(CHUNK_SECONDS * audio.sample_rate)
    chunks = (audio.samples[i:i + step] for i in range(0, len(audio.samples), step))
    frames = api.stream(load_image(portrait), chunks, models=models, renderer=renderer)
    write_video(paths[KINDS[2]], frames, 25.0, audio=audio)
    return paths


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the real development set (faces/, voices/)")
    p.add_argument("--portraits", type=int, default=5, help="the first N portraits (by name)")
    p.add_argument("--voices", type=int, default=3, help="the first M voices (by name) of at most --max-seconds")
    p.add_argument("--max-seconds", type=float, default=12.0, help="only voices at most this long")
    p.add_argument("--out", type=Path, default=ROOT / "out" / "stream_mouth", help="folder for the videos")
    p.add_argument("--table", type=Path, default=ROOT / "docs" / "streaming_mouth", help="stem of the .md/.json")
    args = p.parse_args(argv)

    import soundfile as sf
    import torch

    from talkinghead import api
    from talkinghead.generators import load_renderer

    torch.set_num_threads(1)
    faces = sorted((args.data / "faces").glob("*.png"))[:args.portraits]
    voices = [v for v in sorted((args.data / "voices").glob("*.wav")) if sf.info(str(v)).duration <= args.max_seconds]
    voices = voices[:args.voices]
    if not faces or not voices:
        raise SystemExit(f"No portraits or voices under {args.data} (run bash ../shared/realdata/fetch.sh).")
    args.out.mkdir(parents=True, exist_ok=True)
    models, renderer = api.load_models(), load_renderer(None)
    rows = []
    for face in faces:
        for voice in voices:
            start = time.perf_counter()
            paths = make_videos(face, voice, args.out, models, renderer)
            row = {"portrait": face.stem, "voice": voice.stem, **{k: measure(v, voice) for k, v in paths.items()}}
            rows.append(row)
            print(f"{face.stem:24s} {voice.stem:32s} " + "  ".join(
                f"r {row[k]['r_lag0']:.2f}" for k in KINDS) + f"  ({time.perf_counter() - start:.0f} s)", flush=True)
    summary = {k: {m: float(np.nanmedian([r[k][m] for r in rows if r[k][m] is not None]))
                   for m in ("r_lag0", "best_lag", "range_5_95", "pause_gap", "found")} for k in KINDS}
    lines = ["# The mouth of streamed vs offline generation on the real set (scripts/measure_stream_mouth.py)", "",
             f"{len(faces)} portraits x {len(voices)} voices of ../shared/realdata, shipped weights, "
             f"{time.strftime('%Y-%m-%d')}, {platform.machine()}, {os.cpu_count()} CPUs. Medians over the pairs; "
             "inner-lip gap (MediaPipe on the output video) against the speech envelope.", "",
             "| video | r at lag 0 | best lag (frames) | gap range 5-95 % | gap in pauses | face found |",
             "|---|---|---|---|---|---|"]
    for k in KINDS:
        s = summary[k]
        lines.append(f"| {k} | {s['r_lag0']:.3f} | {s['best_lag']:+.0f} | {s['range_5_95']:.3f} | "
                     f"{s['pause_gap']:.3f} | {s['found']:.2f} |")
    args.table.parent.mkdir(parents=True, exist_ok=True)
    args.table.with_suffix(".md").write_text("\n".join(lines) + "\n")
    args.table.with_suffix(".json").write_text(json.dumps({"summary": summary, "rows": rows}, indent=1) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

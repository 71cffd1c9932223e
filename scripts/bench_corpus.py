"""Benchmark: generate the synthetic corpus (issue 5 target: >= 30 speakers x 8 emotions x 3 intensities
in under 10 minutes on a 2-core CPU). Prints the numbers and writes bench/corpus.json.

    .venv/bin/python scripts/bench_corpus.py [--speakers 30] [--sentences 3] [--workers 2] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import tempfile
import time
from pathlib import Path

from talkinghead.audio.tts import VoiceConfig, synthesize
from talkinghead.data.corpus import CorpusConfig, generate_corpus
from talkinghead.data.info import dataset_summary


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--speakers", type=int, default=30)
    parser.add_argument("--sentences", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default="", help="keep the corpus here (default: a temp folder, removed)")
    args = parser.parse_args()
    # TTS alone
    text = "The quick brown fox jumps over the lazy dog."
    synthesize(text)
    start = time.perf_counter()
    total_audio = 0.0
    for _ in range(20):
        total_audio += synthesize(text, VoiceConfig(variant="f3")).duration
    tts_seconds = (time.perf_counter() - start) / 20
    root = Path(args.out) if args.out else Path(tempfile.mkdtemp()) / "corpus"
    config = CorpusConfig(speakers=args.speakers, sentences=args.sentences, workers=args.workers)
    start = time.perf_counter()
    report = generate_corpus(root, config)
    seconds = time.perf_counter() - start
    summary = dataset_summary(root)
    size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    result = {
        "date": "2026-11-21", "machine": f"{platform.machine()} {platform.processor() or ''} 2-core CPU".strip(),
        "speakers": args.speakers, "emotions": 8, "intensities": 3, "sentences": args.sentences,
        "workers": args.workers, "clips": report.clips, "seconds": round(seconds, 1),
        "clips_per_second": round(report.clips / seconds, 2), "audio_hours": summary["hours"],
        "realtime_factor": round(summary["duration_seconds"]["total"] / seconds, 1),
        "size_mb": round(size / 1e6, 1), "mean_clip_seconds": summary["duration_seconds"]["mean"],
        "tts_seconds_per_sentence": round(tts_seconds, 4),
        "tts_realtime_factor": round(total_audio / 20 / tts_seconds, 1),
    }
    print(json.dumps(result, indent=2))
    Path("bench").mkdir(exist_ok=True)
    Path("bench/corpus.json").write_text(json.dumps(result, indent=2) + "\n")
    if not args.out:
        shutil.rmtree(root.parent, ignore_errors=True)


if __name__ == "__main__":
    main()

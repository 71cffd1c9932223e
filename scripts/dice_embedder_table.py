"""DICE-Talk's Table 5 (clustering strength of the emotion prior from audio, video, both) and the embedder's
disentanglement measurements, for one or more trained embedders, on a split of the motion corpus.

    .venv/bin/python scripts/dice_embedder_table.py --data CORPUS --embedder "NAME=DIR" [...] \
        [--split test] [-o docs/evaluation/dice/embedder]

Writes report.json (every number of :func:`evaluate_embedder`) and report.md (Table 5 in the paper's layout, one
block of rows per embedder, then the accuracies). Single-threaded torch (the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

PAPER_EMOTIONS = ("angry", "contempt", "disgusted", "happy")  # the columns of the paper's Table 5


def _markdown(results: dict[str, dict], split: str, data: str) -> str:
    emotions = sorted({e for r in results.values() for m in (r["clustering"] or {}).values() for e in m["per_emotion"]})
    emotions = [e for e in PAPER_EMOTIONS if e in emotions] + [e for e in emotions if e not in PAPER_EMOTIONS]
    lines = [f"# DICE-Talk Table 5: clustering strength of the emotion prior ({data}, split {split})", "",
             "d_cls = d_inter / d_intra of the clips' prior means, emotions of the same speaker as classes, averaged "
             "over speakers (higher: better clustered). The paper's columns first.", "",
             "| embedder | input | " + " | ".join(emotions) + " | mean |",
             "|---|---|" + "---|" * (len(emotions) + 1)]
    for name, r in results.items():
        for modality, row in (r["clustering"] or {}).items():
            cells = [f"{row['per_emotion'].get(e, float('nan')):.2f}" for e in emotions]
            lines.append(f"| {name} | {modality} | " + " | ".join(cells) + f" | {row['mean']:.2f} |")
    lines += ["", "## Disentanglement (nearest-mean accuracies of the video + audio prior)", "",
              "| embedder | clips | emotion acc. (prompts) | identity acc. (leave-one-out) | identity chance | "
              "InfoNCE | InfoNCE (uniform) |", "|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        lines.append(f"| {name} | {r['clips']} | {r['emotion_accuracy']:.3f} | {r['identity_accuracy']:.3f} | "
                     f"{r['identity_chance']:.3f} | {r['info_nce']:.3f} | {r['info_nce_uniform']:.3f} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    from talkinghead.video.dice.embedder import EmotionEmbedder
    from talkinghead.video.dice.embedder_training import evaluate_embedder

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="the motion corpus (talkinghead corpus)")
    p.add_argument("--embedder", action="append", required=True, metavar="NAME=DIR")
    p.add_argument("--split", default="test", choices=("train", "val", "test"))
    p.add_argument("--output", "-o", default="docs/evaluation/dice/embedder")
    args = p.parse_args()
    torch.set_num_threads(1)
    results = {}
    for spec in args.embedder:
        name, _, folder = spec.partition("=")
        start = time.perf_counter()
        results[name] = evaluate_embedder(EmotionEmbedder.from_pretrained(folder), args.data, args.split)
        results[name]["seconds"] = round(time.perf_counter() - start, 1)
        print(f"{name}: {results[name]['clustering']}")
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(results, indent=1))
    (out / "report.md").write_text(_markdown(results, args.split, args.data))
    print(out / "report.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

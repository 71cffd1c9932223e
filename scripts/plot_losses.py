"""Loss curves of training runs as a PNG: one panel per loss or metric, each run a line.

A run is a training state folder (``OUT.train``, whose ``history.jsonl`` holds every step since 2026-12-02) or a
training log (``talkinghead train ... > LOG``; the ``INFO <component> step step=N name=value ...`` lines, every
``log_every`` steps). Several logs of one run resumed in parts are joined with ``+`` (``part1.log+part2.log``; a step
logged twice keeps the later value). ``--smooth N`` draws a moving mean over N points on top of the raw values.

    .venv/bin/python scripts/plot_losses.py [NAME=]RUN [[NAME=]RUN ...] -o curves.png [--smooth 25]
        [--metrics loss,denoising] [--log-y vq] [--title TEXT]
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from talkinghead.training.state import history_columns, read_history  # noqa: E402

_STEP = re.compile(r"^INFO \S+ step step=(\d+)((?: \w+=\S+)*)\s*$")


def read_log(path: Path) -> dict[int, dict[str, float]]:
    """``{step: {name: value}}`` of a training log's step lines."""
    rows: dict[int, dict[str, float]] = {}
    for line in path.read_text(errors="replace").replace("\r", "\n").splitlines():
        match = _STEP.match(line.strip())
        if match:
            values = dict(pair.split("=", 1) for pair in match.group(2).split())
            rows[int(match.group(1))] = {k: float(v) for k, v in values.items()}
    return rows


def read_run(spec: str) -> dict[str, np.ndarray]:
    """A run's curves ``{"step": [N], name: [N]}`` from a state folder or ``+``-joined logs."""
    if Path(spec).is_dir():
        return {k: np.asarray(v, np.float64) for k, v in read_history(spec).items()}
    rows: dict[int, dict[str, float]] = {}
    for part in spec.split("+"):
        if not Path(part).is_file():
            raise SystemExit(f"{part} is neither a training state folder nor a training log.")
        rows.update(read_log(Path(part)))
    if not rows:
        raise SystemExit(f"{spec} has no training step lines.")
    return {k: np.asarray(v, np.float64) for k, v in history_columns(rows).items()}


def moving_mean(values: np.ndarray, n: int) -> np.ndarray:
    """Mean over the last ``n`` points (fewer at the start)."""
    out = np.empty_like(values)
    for i in range(len(values)):
        out[i] = np.nanmean(values[max(0, i - n + 1):i + 1])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="[NAME=]STATE_DIR or [NAME=]LOG[+LOG...]")
    parser.add_argument("-o", "--out", required=True)
    parser.add_argument("--smooth", type=int, default=1)
    parser.add_argument("--metrics", default="", help="comma-separated names to draw (default: all)")
    parser.add_argument("--log-y", default="", help="comma-separated names drawn on a log scale")
    parser.add_argument("--title", default="")
    args = parser.parse_args()
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = []
    for spec in args.runs:
        name, _, path = spec.rpartition("=") if "=" in spec and not Path(spec).exists() else ("", "", spec)
        runs.append((name or Path(path.split("+")[0]).name, read_run(path)))
    wanted = [m for m in args.metrics.split(",") if m]
    names = wanted or sorted({k for _, run in runs for k in run if k != "step"})
    log_y = {m for m in args.log_y.split(",") if m}
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 3.4), squeeze=False)
    for ax, metric in zip(axes[0], names, strict=True):
        for i, (label, run) in enumerate(runs):
            if metric not in run:
                continue
            colour = f"C{i}"
            steps, values = run["step"], run[metric]
            if args.smooth > 1:
                ax.plot(steps, values, color=colour, alpha=0.25, linewidth=0.8)
                ax.plot(steps, moving_mean(values, args.smooth), color=colour, linewidth=1.6, label=label)
            else:
                ax.plot(steps, values, color=colour, linewidth=1.4, marker="." if len(steps) < 80 else None,
                        label=label)
        ax.set_title(metric)
        ax.set_xlabel("step")
        if metric in log_y:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    if args.title:
        fig.suptitle(args.title)
    fig.tight_layout()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out} ({len(runs)} run(s), {len(names)} panel(s))")


if __name__ == "__main__":
    main()

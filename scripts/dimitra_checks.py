"""Dimitra's behaviour checks of issue 13 on the corpus test split (writes OUT.json and OUT.md).

1. Head pose is generated, not copied: the pose of two seeds differs (mean absolute difference per frame and
   angle, in degrees, against the ground truth's own spread over its frames).
2. The transcript drives the expression: with the same audio, phonemes and seed, the clip's own transcript against
   another clip's transcript changes the expression (the non-lip channels) more than two seeds with the same
   transcript do.
3. Window joins on long speech (about 70 s: test clips put end to end): the jump into join frames against the
   ordinary frame-to-frame jump, for the shipped models with cross-faded joins (overlap 8) and the paper's plain
   recursion (overlap 0), and, with ``--variants``, the pose model trained without the first-pose loss.

    .venv/bin/python scripts/dimitra_checks.py --data CORPUS [--variants DIR] [--clips 24] --out PATH
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from talkinghead.data.dataset import Clip, Dataset
from talkinghead.generators import Conditions, Portrait
from talkinghead.io.audio import Audio
from talkinghead.motion.dimitra.data import part_columns
from talkinghead.motion.dimitra.generator import DimitraGenerator, DimitraSampling
from talkinghead.motion.dimitra.seams import seam_jumps


def first_frame(clip: Clip) -> Portrait:
    m = clip.motion
    return Portrait(None, m.identity, np.asarray(m.expression[0], np.float32), m.pose[0])


def run(generator: DimitraGenerator, clip: Clip, seed: int, transcript: str | None) -> Any:
    conditions = Conditions.from_clip(clip, portrait=first_frame(clip), seed=seed)
    conditions.transcript = transcript
    return generator.generate(conditions).motion


def per_frame(x: Any, y: Any, columns: list[int]) -> float:
    """The mean over frames of the L2 norm of two motions' expression difference over ``columns``."""
    return float(np.linalg.norm(x.expression[:, columns] - y.expression[:, columns], axis=1).mean())


def seeds_and_transcripts(generator: DimitraGenerator, clips: list[Clip]) -> dict[str, float]:
    face = list(part_columns(generator.layout, "face"))
    lips = list(part_columns(generator.layout, "lips"))
    pose_diff, pose_spread, seed_face, text_face, none_face, seed_lips, text_lips = [], [], [], [], [], [], []
    for index, clip in enumerate(clips):
        other = next(c.transcript for c in clips[index + 1:] + clips[:index] if c.transcript != clip.transcript)
        a, b = run(generator, clip, 0, clip.transcript), run(generator, clip, 1, clip.transcript)
        c, d = run(generator, clip, 0, other), run(generator, clip, 0, None)
        pose_diff.append(np.degrees(np.abs(a.pose[:, :3] - b.pose[:, :3])).mean())
        pose_spread.append(np.degrees(clip.motion.pose[:, :3].std(0)).mean())
        seed_face.append(per_frame(a, b, face))
        text_face.append(per_frame(a, c, face))
        none_face.append(per_frame(a, d, face))
        seed_lips.append(per_frame(a, b, lips))
        text_lips.append(per_frame(a, c, lips))
    return {"clips": len(clips),
            "pose_seed_difference_deg": float(np.mean(pose_diff)),
            "pose_ground_truth_spread_deg": float(np.mean(pose_spread)),
            "face_two_seeds": float(np.mean(seed_face)), "face_other_transcript": float(np.mean(text_face)),
            "face_no_transcript": float(np.mean(none_face)),
            "lips_two_seeds": float(np.mean(seed_lips)), "lips_other_transcript": float(np.mean(text_lips))}


def long_speech(clips: list[Clip]) -> tuple[Conditions, float]:
    audio = np.concatenate([c.audio for c in clips]).astype(np.float32)
    return Conditions(Audio(audio), first_frame(clips[0]), seed=0), len(audio) / 16_000


def seams(folder: Path, overlap: int, conditions: Conditions) -> dict[str, Any]:
    generator = DimitraGenerator.from_pretrained(folder, DimitraSampling(overlap=overlap))
    made = generator.generate(conditions)
    jumps = seam_jumps(made.motion, joins=made.joins)
    return {group: {k: round(v, 5) for k, v in values.items()} for group, values in jumps.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="the corpus (its test split)")
    parser.add_argument("--checkpoint", default="weights/dimitra")
    parser.add_argument("--variants", help="scripts/evaluation_dimitra.sh's folder (v_nofirst_plain inside)")
    parser.add_argument("--clips", type=int, default=24)
    parser.add_argument("--guidance", type=float, default=1.0, help="classifier-free guidance on the transcript")
    parser.add_argument("--out", required=True, help="path without suffix")
    args = parser.parse_args()
    start = time.perf_counter()
    dataset = Dataset(args.data)
    clips = [dataset.clip(i) for i in dataset.ids("test")[:args.clips]]
    generator = DimitraGenerator.from_pretrained(args.checkpoint)
    generator.sampling = generator.sampling.replace(guidance=args.guidance)
    report: dict[str, Any] = {"checkpoint": args.checkpoint, "data": args.data, "guidance": args.guidance,
                              "behaviour": seeds_and_transcripts(generator, clips)}
    if args.guidance == 1.0:
        report["seams"] = long_speech_seams(args, clips)
    report["seconds"] = round(time.perf_counter() - start, 1)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(report, seams_table="seams" in report))
    print(markdown(report, seams_table="seams" in report))


def long_speech_seams(args: argparse.Namespace, clips: list[Clip]) -> dict[str, Any]:
    """The seam table's rows (guidance 1 only: the joins do not depend on the transcript guidance)."""
    conditions, seconds = long_speech(clips)
    rows = {"shipped, cross-faded joins (overlap 8)": (Path(args.checkpoint), 8),
            "shipped, plain recursion (overlap 0)": (Path(args.checkpoint), 0)}
    if args.variants:
        rows["w/o L_first, plain recursion (overlap 0)"] = (Path(args.variants) / "v_nofirst_plain", 0)
        rows["w/o L_first, cross-faded joins (overlap 8)"] = (Path(args.variants) / "v_nofirst_plain", 8)
    return {"long_speech_seconds": round(seconds, 1),
            "rows": {name: seams(folder, overlap, conditions) for name, (folder, overlap) in rows.items()}}


def markdown(report: dict[str, Any], seams_table: bool = True) -> str:
    b = report["behaviour"]
    lines = ["# Dimitra: seeds, transcripts and window joins", "",
             f"Made by `scripts/dimitra_checks.py` on {b['clips']} clips of the corpus test split "
             f"({report['data']}), checkpoint `{report['checkpoint']}`, transcript guidance {report['guidance']:g}, "
             f"in {report['seconds']:.0f} s. Every clip "
             "starts from its own first frame and reads its own phone alignment, so only the seed or the "
             "transcript changes.", "",
             "| check | value |", "|---|---|",
             "| head pose, two seeds: mean absolute difference (pitch, yaw, roll) | "
             f"{b['pose_seed_difference_deg']:.2f}° |",
             "| ground-truth head pose: spread over a clip (std, same angles) | "
             f"{b['pose_ground_truth_spread_deg']:.2f}° |",
             f"| face channels (non-lip), two seeds, same transcript | {b['face_two_seeds']:.4f} |",
             f"| face channels, own transcript vs another clip's, same seed | {b['face_other_transcript']:.4f} |",
             f"| face channels, own transcript vs none, same seed | {b['face_no_transcript']:.4f} |",
             f"| lip channels, two seeds | {b['lips_two_seeds']:.4f} |",
             f"| lip channels, own transcript vs another clip's | {b['lips_other_transcript']:.4f} |", "",
             "Expression distances: the mean over frames of the L2 norm of the difference (raw coefficient units).", ""]
    if not seams_table:
        return "\n".join(lines) + "\n"
    lines += [f"## Window joins on {report['seams']['long_speech_seconds']} s of speech (test clips end to end)", "",
             "Join jump / ordinary frame-to-frame jump (1 = no seam); with cross-faded joins every frame of a "
             "transition counts as a join frame.", "",
             "| variant | lips | expression | pose | pose: largest join jump / ordinary p95 |", "|---|---|---|---|---|"]
    for name, groups in report["seams"]["rows"].items():
        ratio = [groups[g]["ratio"] for g in ("lips", "expression", "pose")]
        p = groups["pose"]
        big = p["join_max"] / p["ordinary_p95"] if p["ordinary_p95"] else math.nan
        lines.append(f"| {name} | " + " | ".join(f"{r:.2f}" for r in ratio) + f" | {big:.2f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()

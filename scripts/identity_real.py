"""F-SIM on the real development set: does a generator keep the identity of a real portrait speaking a real voice?

For every portrait of ``../shared/realdata`` (``fetch.sh``; default ``~/.cache/talkinghead-realdata``) and the
``--voices`` shortest real recordings, each ``--models`` generator makes a video with default settings (the Python
API, models loaded once). The output video's face is tracked (MediaPipe), cut per frame as the video dataset cuts
its crops (a square of twice the face box, 128 px) and embedded with the F-SIM network of ``evaluate-frames``
(:func:`talkinghead.evaluation.identity.load_identity_network`: ``--face-recognition DIR`` or the identity embedding
trained here). The portraits are cut the same way from the photos. Per video:

- ``F-SIM``: mean over frames of the cosine similarity to the portrait's own crop (the issues' "identity kept");
- ``F-SIM other``: the same against the other people's portraits (the floor: any face against a stranger);
- ``identified``: the fraction of frames whose most similar portrait is one of the same person (frames where no
  face is found count as not identified; ``face found`` gives their share);
- ``sharpness``: the variance of the Laplacian of the face (the crop's centre) over the portrait crop's: the
  F-SIM network trained here is nearly blind to blur (the blurred-portrait row shows how much), so blur is
  measured on its own.

The five ``expr_*`` photos show one woman; ``elderly_man`` and ``elderly_man_bw`` may show one man, so they are
never counted as each other's strangers. The static portrait (its own crop, no generation) reads 1.0 by definition;
its ``F-SIM other`` is the floor every row is compared with; the same crop blurred shows what blur alone does.
Writes ``--table`` .md and .json (numbers only).

    .venv/bin/python scripts/identity_real.py --models dreamtalk,emo --voices 1
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = Path(os.environ.get("TALKINGHEAD_REALDATA", Path.home() / ".cache" / "talkinghead-realdata"))
CROP_SIZE, CROP_SCALE = 128, 2.0
BLUR_SIGMA = 2.0


def person(name: str) -> str:
    """The person a real portrait shows (several photos of one person share it)."""
    if name.startswith("expr_"):
        return "expr_woman"
    return "elderly_man" if name.startswith("elderly_man") else name


def face_crop(frame: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The video dataset's crop of ``frame [H, W, 3]``: a square of ``CROP_SCALE`` times the box of ``points
    [>=468, 2+]`` around its centre, at ``CROP_SIZE`` px."""
    from talkinghead.data.video.prepare import cut_crop

    xy = np.asarray(points, np.float64)[:468, :2]
    lo, hi = xy.min(0), xy.max(0)
    side = CROP_SCALE * float(max(hi - lo))
    cx, cy = (lo + hi) / 2
    return cut_crop(frame, np.array([cx - side / 2, cy - side / 2, side]), CROP_SIZE)


def video_crops(path: Path, every: int = 2) -> tuple[np.ndarray, float]:
    """Face crops ``[N, 128, 128, 3]`` of every ``every``-th frame of a video where a face is found (each frame
    detected on its own, so a frame the detector misses costs only itself), and the fraction of those frames found."""
    from talkinghead.errors import TalkingHeadError
    from talkinghead.face.landmarks import detect_landmarks
    from talkinghead.io.video import iter_frames

    crops, tried = [], 0
    for t, frame in enumerate(iter_frames(path)):
        if t % every:
            continue
        tried += 1
        try:
            crops.append(face_crop(frame, detect_landmarks(frame).points))
        except TalkingHeadError:
            continue
    return (np.stack(crops) if crops else np.zeros((0, CROP_SIZE, CROP_SIZE, 3), np.uint8)), len(crops) / max(tried, 1)


def sharpness(crops: np.ndarray) -> float:
    """Mean variance of the Laplacian of the grey centre 0.6 of face crops ``[N, S, S, 3]`` (the face, not the
    background): falls as a face blurs."""
    import cv2

    lo, hi = int(0.2 * crops.shape[1]), int(0.8 * crops.shape[1])
    return float(np.mean([cv2.Laplacian(cv2.cvtColor(c[lo:hi, lo:hi], cv2.COLOR_RGB2GRAY), cv2.CV_64F).var()
                          for c in crops]))


def measure(crops: np.ndarray, portrait: str, portraits: dict[str, np.ndarray], embed: Any,
            sharp: dict[str, float]) -> dict[str, Any]:
    """The numbers of one video from its face crops ``[N, S, S, 3]``, the portraits' unit embeddings
    ``{name: [D]}`` and sharpness ``{name: float}``."""
    if not len(crops):
        return {"frames": 0, "f_sim": float("nan"), "f_sim_other": float("nan"), "identified": 0.0,
                "sharpness": float("nan")}
    names = list(portraits)
    table = np.stack([portraits[n] for n in names])                              # [P, D]
    sims = embed(crops) @ table.T                                                # [N, P]
    own = sims[:, names.index(portrait)]
    strangers = [i for i, n in enumerate(names) if person(n) != person(portrait)]
    best = np.asarray(names)[sims.argmax(1)]
    return {"frames": len(crops), "f_sim": float(own.mean()), "f_sim_other": float(sims[:, strangers].mean()),
            "identified": float(np.mean([person(b) == person(portrait) for b in best])),
            "sharpness": sharpness(crops) / sharp[portrait]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the real development set (faces/, voices/)")
    p.add_argument("--models", default="dreamtalk,emo", help="comma-separated generators (generate --model names)")
    p.add_argument("--checkpoints", default="", help="comma-separated checkpoint folders, one per model ('' = shipped)")
    p.add_argument("--labels", default="", help="comma-separated row labels, one per model (default: the names)")
    p.add_argument("--voices", type=int, default=1, help="the N shortest real recordings")
    p.add_argument("--portraits", type=int, default=None, help="only the first N portraits (by name)")
    p.add_argument("--face-recognition", default=None, help="published ArcFace IResNet weights (F-SIM column)")
    p.add_argument("--out", type=Path, default=ROOT / "out" / "identity_real", help="folder for the videos")
    p.add_argument("--reuse", action="store_true",
                   help="measure the videos already under --out instead of generating them again")
    p.add_argument("--table", type=Path, default=ROOT / "docs" / "evaluation" / "identity" / "real",
                   help="where the .md and .json go (path without suffix)")
    args = p.parse_args(argv)

    import cv2

    from talkinghead import api
    from talkinghead.errors import TalkingHeadError
    from talkinghead.evaluation.identity import load_identity_network
    from talkinghead.face.landmarks import detect_landmarks
    from talkinghead.io.audio import load_audio
    from talkinghead.io.image import load_image

    models = args.models.split(",")
    checkpoints = args.checkpoints.split(",") if args.checkpoints else [""] * len(models)
    labels = args.labels.split(",") if args.labels else models
    if not (len(checkpoints) == len(labels) == len(models)):
        print("--checkpoints and --labels need one entry per model.", file=sys.stderr)
        return 2
    faces = sorted((args.data / "faces").glob("*.png"))[:args.portraits]
    voices = sorted((args.data / "voices").glob("*.wav"), key=lambda v: load_audio(v).duration)[:args.voices]
    if not faces or not voices:
        print(f"No portraits or voices under {args.data}; run ../shared/realdata/fetch.sh first.", file=sys.stderr)
        return 2
    try:
        network = load_identity_network(args.face_recognition)
    except TalkingHeadError as err:
        print(err, file=sys.stderr)
        return 2
    if network is None:
        print("No F-SIM network: weights/judges/identity is missing and --face-recognition was not given.",
              file=sys.stderr)
        return 2
    photos = {f.stem: load_image(f) for f in faces}
    crops = {n: face_crop(img, detect_landmarks(img).points) for n, img in photos.items()}
    portraits = dict(zip(crops, network.embed(np.stack(list(crops.values()))), strict=True))
    sharp = {n: sharpness(c[None]) for n, c in crops.items()}
    rows: list[dict[str, Any]] = []
    for label, change in (("static portrait", lambda c: c),
                          (f"static portrait blurred (Gaussian, sigma {BLUR_SIGMA:g} px of {CROP_SIZE})",
                           lambda c: cv2.GaussianBlur(c, (0, 0), BLUR_SIGMA))):
        still = [{"portrait": n, "face_found": 1.0, **measure(change(c)[None], n, portraits, network.embed, sharp)}
                 for n, c in crops.items()]
        rows.append({"row": label, "model": "", **_mean(still), "videos": still})
    start = time.perf_counter()
    for model, checkpoint, label in zip(models, checkpoints, labels, strict=True):
        loaded = None
        videos = []
        for face in faces:
            for voice in voices:
                out = args.out / label / f"{face.stem}__{voice.stem}.mp4"
                if not (args.reuse and out.is_file()):
                    loaded = loaded or api.load_models(model=model, checkpoint=checkpoint or None)
                    out.parent.mkdir(parents=True, exist_ok=True)
                    api.generate(str(face), str(voice), output=out, model=model, models=loaded)
                got, found = video_crops(out)
                res = {"portrait": face.stem, "voice": voice.stem, "face_found": found,
                       **measure(got, face.stem, portraits, network.embed, sharp)}
                res["identified"] *= found                   # frames without a face are not identified
                videos.append(res)
                print(f"{label} {face.stem} x {voice.stem}: F-SIM {res['f_sim']:.3f} other "
                      f"{res['f_sim_other']:.3f} identified {res['identified']:.2f} sharpness "
                      f"{res['sharpness']:.2f} ({time.perf_counter() - start:.0f} s)", flush=True)
        rows.append({"row": label, "model": model, "checkpoint": checkpoint, **_mean(videos), "videos": videos})
    command = " ".join([".venv/bin/python scripts/identity_real.py", *map(shlex.quote, argv or sys.argv[1:])])
    report = {"command": command, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
              "network": network.name, "note": network.note, "voices": [v.stem for v in voices], "rows": rows}
    args.table.parent.mkdir(parents=True, exist_ok=True)
    args.table.with_suffix(".json").write_text(json.dumps(report, indent=1))
    args.table.with_suffix(".md").write_text(_markdown(report))
    print(_markdown(report))
    return 0


def _mean(videos: list[dict[str, Any]]) -> dict[str, float]:
    """Means over videos (F-SIM over the videos where a face was found; identified counts the others as 0)."""
    return {k: float(np.nanmean([v[k] for v in videos])) for k in ("f_sim", "f_sim_other", "identified", "face_found",
                                                                 "sharpness")}


def _markdown(report: dict[str, Any]) -> str:
    name = report["network"]
    lines = [f"# {name} on the real portraits with real voices", "",
             f"`{report['command']}` ({report['date']}); voices: {', '.join(report['voices'])}.", "",
             f"| row | {name} to the portrait | {name} to strangers' portraits | frames identified as the person "
             "| frames with a face found | face sharpness / the portrait's |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['row']} | {r['f_sim']:.3f} | {r['f_sim_other']:.3f} | {r['identified']:.2f} "
              f"| {r['face_found']:.2f} | {r['sharpness']:.2f} |"
              for r in report["rows"]]
    lines += ["", report["note"], "", "Per portrait (F-SIM to the portrait / identified):", "",
              "| portrait | " + " | ".join(r["row"] for r in report["rows"][2:]) + " |",
              "|---|" + "---|" * (len(report["rows"]) - 2)]
    for portrait in [v["portrait"] for v in report["rows"][0]["videos"]]:
        cells = []
        for r in report["rows"][2:]:
            mine = [x for x in r["videos"] if x["portrait"] == portrait]
            cells.append(" / ".join(f"{np.mean([x[k] for x in mine]):.2f}" for k in ("f_sim", "identified")))
        lines.append(f"| {portrait} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())

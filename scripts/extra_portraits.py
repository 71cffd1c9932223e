"""More real identities for the video corpus: the faces in the photographer's own demo photos of an npm package.

The video corpus (docs/video_corpus.md) has 14 identities, 10 of them in training; FD2Talk's frame generator, EMO
and DICE-Talk learn little that carries over to a face they never saw (docs/fd2talk.md, docs/dice.md). This
script adds faces from ``@vladmandic/face-api`` 1.7.15 on the npm registry (package MIT, Copyright Vladimir
Mandic; its README says of the demo photos "Photos shown below are taken by me"): six group photos, 1920 px
wide, of about twenty adults. It runs ``npm pack`` (the registry is reachable where the project is developed;
nothing is fetched at run time by the toolkit), takes ``package/demo/sample1.jpg`` .. ``sample6.jpg``, finds every
face with the project's detector and landmarks (``talkinghead.face.landmarks``) and keeps each face that is

- at least ``--min-face`` pixels wide (the video corpus crops at twice the face box and renders at 128 px), and
- near frontal: the nose tip within ``--max-turn`` of the half-way point between the eye corners, in eye
  distances (a yaw of roughly 35 degrees at 0.35);

as a square photo of ``--context`` times the face box around it (edge-replicated where it leaves the photo) at
most 512 px, named ``faceapi_s<photo>_<k>.png`` (k counts the photo's faces from the left), so each is its own
identity in ``video-corpus --portraits``; a face whose eye line leans more than ``--max-roll`` degrees is levelled
first (the photo rotated about the face). Also writes ``README.md`` (source, licence, each face kept or left out
and why) and ``sheet.png`` (all faces, for looking at). Development material, like ../shared/realdata: never
commit these files.

    .venv/bin/python scripts/extra_portraits.py --out ~/.cache/talkinghead-extra-portraits
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

PACKAGE = "@vladmandic/face-api@1.7.15"
PHOTOS = [f"package/demo/sample{i}.jpg" for i in range(1, 7)]
# MediaPipe 478-point indices: eye outer corners, inner corners, nose tip
RIGHT_OUTER, RIGHT_INNER, LEFT_INNER, LEFT_OUTER, NOSE_TIP = 33, 133, 362, 263, 1


def fetch_package(cache: Path) -> Path:
    """The package tarball in ``cache`` (``npm pack`` when it is not there yet)."""
    found = sorted(cache.glob("vladmandic-face-api-*.tgz"))
    if found:
        return found[-1]
    cache.mkdir(parents=True, exist_ok=True)
    subprocess.run(["npm", "pack", PACKAGE, "--silent"], cwd=cache, check=True, stdout=subprocess.DEVNULL)
    found = sorted(cache.glob("vladmandic-face-api-*.tgz"))
    if not found:
        raise SystemExit(f"npm pack {PACKAGE} left no tarball in {cache}.")
    return found[-1]


def face_pose(points: np.ndarray) -> tuple[float, float]:
    """``(turn, roll)`` of 478 landmarks ``[478, 3]``: the nose tip's offset from the eyes' midpoint along the
    eye line in eye distances, and the eye line's angle in degrees."""
    right = 0.5 * (points[RIGHT_OUTER, :2] + points[RIGHT_INNER, :2])
    left = 0.5 * (points[LEFT_OUTER, :2] + points[LEFT_INNER, :2])
    axis = left - right
    dist = float(np.linalg.norm(axis))
    turn = float(np.dot(points[NOSE_TIP, :2] - 0.5 * (left + right), axis / dist) / dist)
    roll = math.degrees(math.atan2(float(axis[1]), float(axis[0])))
    return turn, roll


def square_crop(image: np.ndarray, cx: float, cy: float, side: float) -> np.ndarray:
    """``[side, side, 3]`` around ``(cx, cy)``, edge-replicated where it leaves ``image``."""
    side_i = int(round(side))
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    h, w = image.shape[:2]
    pad = max(0, -x0, -y0, x0 + side_i - w, y0 + side_i - h)
    if pad:
        image = np.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    return image[y0 + pad:y0 + pad + side_i, x0 + pad:x0 + pad + side_i]


def level(crop: Image.Image, roll: float) -> Image.Image:
    """``crop`` rotated about its centre so that an eye line leaning ``roll`` degrees (``face_pose``) is level."""
    return crop.rotate(roll, resample=Image.Resampling.BICUBIC)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path.home() / ".cache" / "talkinghead-extra-portraits")
    parser.add_argument("--min-face", type=float, default=120.0)
    parser.add_argument("--max-turn", type=float, default=0.35)
    parser.add_argument("--max-roll", type=float, default=25.0)
    parser.add_argument("--context", type=float, default=2.6)
    args = parser.parse_args(argv)

    from talkinghead.errors import TalkingHeadError
    from talkinghead.face.landmarks import detect_faces, detect_landmarks

    tarball = fetch_package(args.out / "downloads")
    faces_dir = args.out / "faces"
    faces_dir.mkdir(parents=True, exist_ok=True)
    rows, crops = [], []
    with tarfile.open(tarball) as tar, tempfile.TemporaryDirectory() as tmp:
        for n, member in enumerate(PHOTOS, start=1):
            tar.extract(member, tmp, filter="data")
            image = np.asarray(Image.open(Path(tmp) / member).convert("RGB"))
            try:
                boxes = detect_faces(image)
            except TalkingHeadError as error:
                raise SystemExit(f"sample{n}.jpg: {error}") from None
            for k, box in enumerate(boxes):
                name = f"faceapi_s{n}_{k}"
                if box.size < args.min_face:
                    rows.append((name, f"{box.size:.0f}", "", "", f"left out: face under {args.min_face:.0f} px"))
                    continue
                try:
                    points = detect_landmarks(image, face_index=k).points
                except TalkingHeadError:
                    rows.append((name, f"{box.size:.0f}", "", "", "left out: no landmarks"))
                    continue
                turn, roll = face_pose(points)
                upright = abs(roll) > args.max_roll
                why = ("left out: turned" if abs(turn) > args.max_turn else "kept, turned upright" if upright
                       else "kept")
                rows.append((name, f"{box.size:.0f}", f"{turn:+.2f}", f"{roll:+.0f}", why))
                if why.startswith("left out"):
                    continue
                lo, hi = points[:, :2].min(0), points[:, :2].max(0)
                cx, cy = 0.5 * (lo + hi)
                side = args.context * float((hi - lo).max())
                crop = Image.fromarray(np.ascontiguousarray(square_crop(image, float(cx), float(cy), 1.5 * side)))
                if upright:
                    crop = level(crop, roll)
                margin = round(0.25 * side)
                crop = crop.crop((margin, margin, margin + round(side), margin + round(side)))
                if crop.width > 512:
                    crop = crop.resize((512, 512), Image.Resampling.LANCZOS)
                crop.save(faces_dir / f"{name}.png")
                crops.append(crop.resize((160, 160)))
            print(f"sample{n}.jpg: {len(boxes)} faces", file=sys.stderr)

    if crops:
        cols = 6
        sheet = Image.new("RGB", (160 * cols, 160 * math.ceil(len(crops) / cols)), "white")
        for i, crop in enumerate(crops):
            sheet.paste(crop, (160 * (i % cols), 160 * (i // cols)))
        sheet.save(args.out / "sheet.png")
    kept = sum(row[-1].startswith("kept") for row in rows)
    lines = [
        "# Extra portraits for the video corpus (development material: never commit)", "",
        f"Made by scripts/extra_portraits.py from {tarball.name} (npm {PACKAGE}, package/demo/sample1-6.jpg).",
        "Package licence: MIT, Copyright (c) Vladimir Mandic; its README says of the demo photos: "
        "\"Photos shown below are taken by me\".", "",
        f"{kept} faces kept of {len(rows)} found (faces/*.png, one identity each).", "",
        "| face | box px | turn (eye distances) | roll (deg) | |", "|---|---|---|---|---|",
        *[f"| {' | '.join(row)} |" for row in rows], ""]
    (args.out / "README.md").write_text("\n".join(lines))
    print(f"{kept} of {len(rows)} faces kept in {faces_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Face commands: ``track`` (image/video -> motion.npz), ``export-arkit`` (motion -> CSV curves) and
``import-bfm`` (Deep3DFace ``.mat`` -> motion.npz)."""

from __future__ import annotations

import argparse

from talkinghead import options


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("track", help="track the face of an image or video into a motion file (.npz)")
    p.add_argument("input", help="portrait image or video")
    p.add_argument("-o", "--output", required=True, type=options.output_file(".npz"),
                   help="motion file to write (.npz)")
    p.add_argument("--face-index", type=options.INDEX, default=None,
                   help="which face to track, counted from the left from 0 (default: the largest)")
    p.add_argument("--fps", type=options.FPS, default=25.0, help="frame rate to resample videos to (default 25)")
    p.add_argument("--no-smooth", action="store_true", help="do not filter landmark jitter")
    p.set_defaults(func=run_track)

    e = sub.add_parser("export-arkit", help="export a motion file as ARKit blendshape curves (Live Link CSV)")
    e.add_argument("motion", help="motion file (.npz)")
    e.add_argument("-o", "--output", required=True, type=options.output_file(), help="CSV file to write")
    e.set_defaults(func=run_export)

    b = sub.add_parser("import-bfm", help="import Deep3DFace/BFM 257-d coefficients (.mat) as a motion file")
    b.add_argument("mat", help=".mat file with a 'coeff' [T, 257] array")
    b.add_argument("-o", "--output", required=True, type=options.output_file(".npz"),
                   help="motion file to write (.npz)")
    b.add_argument("--fps", type=options.FPS, default=25.0, help="frame rate of the coefficients (default 25)")
    b.set_defaults(func=run_import_bfm)


def run_track(args: argparse.Namespace) -> int:
    from talkinghead.face.track import track_path

    motion = track_path(args.input, fps=args.fps, face_index=args.face_index, smooth=not args.no_smooth)
    motion.save(args.output)
    print(f"wrote {args.output}: {len(motion)} frame(s) at {motion.fps:g} fps, {motion.layout.size} channels")
    return 0


def run_export(args: argparse.Namespace) -> int:
    from talkinghead.face.export import export_arkit_csv
    from talkinghead.sequence import MotionSequence

    motion = MotionSequence.load(args.motion)
    export_arkit_csv(motion, args.output)
    print(f"wrote {args.output}: {len(motion)} frame(s)")
    return 0


def run_import_bfm(args: argparse.Namespace) -> int:
    from talkinghead.face.bfm import load_bfm_mat

    motion = load_bfm_mat(args.mat, fps=args.fps)
    motion.save(args.output)
    print(f"wrote {args.output}: {len(motion)} frame(s), layout {motion.layout.name}")
    return 0

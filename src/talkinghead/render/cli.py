"""``talkinghead render --image IMG --motion motion.npz [--audio WAV] [--size 256|512] -o out.mp4``."""

from __future__ import annotations

import argparse
from pathlib import Path

from talkinghead import options


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("render", help="render a portrait with a motion file into a video (mesh warp)")
    p.add_argument("--image", required=True, help="the portrait (any image format)")
    p.add_argument("--motion", required=True, help="a talkinghead motion file (.npz)")
    p.add_argument("--audio", help="audio to put in the video (any audio or video file)")
    p.add_argument("--size", type=options.one_of(256, 512), default=256, help="face crop size the warp works at")
    p.add_argument("--crop", action="store_true", help="write the face crop instead of the whole photo")
    p.add_argument("--pose", choices=("absolute", "relative"), default="absolute",
                   help="use the motion's head pose as is, or as a change from its first frame "
                        "applied to the portrait's own pose")
    p.add_argument("--face-index", type=options.INDEX,
                   help="which face to animate, counted from the left (default: largest)")
    p.add_argument("-o", "--output", required=True, type=options.output_file(".mp4"), help="output video (.mp4)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from talkinghead.render.warp_renderer import render_video

    render_video(Path(args.image), Path(args.motion), Path(args.output), audio_path=args.audio,
                 size=args.size, paste_back=not args.crop, pose_mode=args.pose, face_index=args.face_index)
    print(args.output)
    return 0

"""``talkinghead inspect FILE``: what a media, motion, checkpoint or dataset path holds."""

from __future__ import annotations

import argparse
import json

from talkinghead.io.inspect import inspect_path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("inspect", help="describe an audio, image, video, motion file, checkpoint or dataset")
    p.add_argument("path", help="file or directory to describe")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    report = inspect_path(args.path)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for key, value in report.items():
            print(f"{key}: {value}")
    return 0

"""Commands ``video-corpus``, ``video-prepare`` and ``video-sheet`` (parse and call only).

``dataset-info`` and ``preview`` (:mod:`talkinghead.data.cli`) read video datasets too.
"""

from __future__ import annotations

import argparse
from typing import Any

from talkinghead import options
from talkinghead.errors import TalkingHeadError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("video-corpus", help="render a motion corpus on many portraits as face-crop videos")
    p.add_argument("--motion-data", required=True, help="a motion dataset (e.g. made by talkinghead corpus)")
    p.add_argument("--portraits", help="a folder of portraits (sub-folders: several photos of one identity)")
    p.add_argument("--out", required=True, type=options.OUTPUT_FOLDER, help="output video dataset folder")
    p.add_argument("--size", type=options.one_of(128, 256, 512),
                   help="crop side in pixels: 128, 256 or 512 (default 128)")
    p.add_argument("--preset", default="default", help="tiny, cpu (1000 clips) or paper (512 px); flags override")
    p.add_argument("--clips", type=options.INDEX, help="motion clips to use, drawn per split (0 = all)")
    p.add_argument("--portraits-per-clip", type=options.COUNT, help="identities each motion clip is rendered on")
    p.add_argument("--crop-scale", type=options.POSITIVE_NUMBER, help="crop side over the face size (default 2)")
    p.add_argument("--test-identities", help="comma-separated identities for the test split (default: drawn)")
    p.add_argument("--val-identities", help="comma-separated identities for the validation split")
    p.add_argument("--no-astronaut", action="store_true", help="leave out scikit-image's astronaut portrait")
    p.add_argument("--crf", type=options.integer(0, 51), help="H.264 quality, lower is better (default 14)")
    p.add_argument("--seed", type=options.SEED)
    p.add_argument("--workers", type=options.COUNT)
    p.add_argument("--shard", type=options.SHARD, default="0/1", help="i/n: make the i-th of n shards of the clips")
    p.set_defaults(func=run_video_corpus)

    p = sub.add_parser("video-prepare", help="real talking-face videos (audio optional) into a video dataset")
    p.add_argument("videos", help="a video, or a folder of videos")
    p.add_argument("--out", required=True, type=options.OUTPUT_FOLDER, help="output video dataset folder")
    p.add_argument("--size", type=options.one_of(128, 256, 512), default=128,
                   help="crop side in pixels: 128, 256 or 512")
    p.add_argument("--crop-scale", type=options.POSITIVE_NUMBER, default=2.0, help="crop side over the face size")
    p.add_argument("--fps", type=options.FPS, default=25.0)
    p.add_argument("--segment", type=options.POSITIVE_NUMBER, default=10.0,
                   help="longest clip in seconds (longer runs are cut)")
    p.add_argument("--min-segment", type=options.POSITIVE_NUMBER, default=2.0, help="shortest clip in seconds")
    p.add_argument("--features", default="lowlevel", help="audio feature preset for videos with audio, or 'none'")
    p.add_argument("--workers", type=options.COUNT, default=2)
    p.add_argument("--shard", type=options.SHARD, default="0/1", help="i/n: take the i-th of n shards of the videos")
    p.set_defaults(func=run_video_prepare)

    p = sub.add_parser("video-sheet", help="a contact sheet (PNG) of a video dataset's clips, boxes drawn")
    p.add_argument("dataset", help="video dataset folder")
    p.add_argument("-o", "--output", required=True, type=options.output_file(".png"), help="output .png")
    p.add_argument("--clip", action="append", default=[], help="a clip id (repeat); default: drawn from --split")
    p.add_argument("--split", default="train")
    p.add_argument("--clips", type=options.COUNT, default=4,
                   help="clips to draw, spread over identities, when none is named")
    p.add_argument("--columns", type=options.COUNT, default=6, help="frames per clip")
    p.add_argument("--seed", type=options.SEED, default=0)
    p.set_defaults(func=run_video_sheet)


def _names(text: str | None) -> tuple[str, ...] | None:
    return None if text is None else tuple(n.strip() for n in text.split(",") if n.strip())


def run_video_corpus(args: argparse.Namespace) -> int:
    from talkinghead.data.dataset import has_clips
    from talkinghead.data.video.build import VideoCorpusConfig, build_video_corpus
    from talkinghead.io.files import output_folder

    overrides: dict[str, Any] = {key: value for key, value in {
        "size": args.size, "clips": args.clips, "portraits_per_clip": args.portraits_per_clip,
        "crop_scale": args.crop_scale, "test_identities": _names(args.test_identities),
        "val_identities": _names(args.val_identities), "crf": args.crf, "seed": args.seed, "workers": args.workers,
    }.items() if value is not None}
    if args.no_astronaut:
        overrides["astronaut"] = False
    config = VideoCorpusConfig.preset(args.preset, **overrides)
    if args.portraits is None and not config.astronaut:
        raise TalkingHeadError("Give a folder of portraits (--portraits DIR) or keep the astronaut.")
    with output_folder(args.out, keep=has_clips):
        report = build_video_corpus(args.motion_data, args.portraits, args.out, config, args.shard)
    print(f"{report.root}: {report.clips} clips ({report.made} made now) in {report.seconds:.1f} s, "
          f"{report.bytes / 2 ** 20:.1f} MB on disk"
          + (f"; portraits left out: {', '.join(report.failed_portraits)}" if report.failed_portraits else ""))
    return 0


def run_video_prepare(args: argparse.Namespace) -> int:
    from talkinghead.data.dataset import has_clips
    from talkinghead.data.video.prepare import VideoPrepareConfig, prepare_video_corpus
    from talkinghead.io.files import output_folder

    config = VideoPrepareConfig(size=args.size, crop_scale=args.crop_scale, fps=args.fps, segment=args.segment,
                                min_segment=args.min_segment, features=args.features, workers=args.workers)
    with output_folder(args.out, keep=has_clips):
        report = prepare_video_corpus(args.videos, args.out, config, args.shard)
    print(f"{report.root}: {report.videos} videos, {report.done} prepared, {report.skipped} already there, "
          f"{len(report.failed)} failed; {report.clips} clips")
    return 1 if report.failed else 0


def run_video_sheet(args: argparse.Namespace) -> int:
    from talkinghead.data.video.info import contact_sheet, pick_clips

    ids = list(args.clip) or pick_clips(args.dataset, args.split, max(1, args.clips), args.seed)
    title = f"{args.dataset} ({args.split})" if not args.clip else str(args.dataset)
    print(contact_sheet(args.dataset, ids, args.output, args.columns, title))
    return 0

"""``talkinghead train-sync-judge`` and ``talkinghead evaluate`` (parse and call; see evaluation.syncnet/evaluate)."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("train-sync-judge", help="train the SyncNet-style lip-sync judge (LSE-C/LSE-D) on a dataset")
    p.add_argument("--data", required=True, help="dataset directory (talkinghead format)")
    p.add_argument("--out", "-o", required=True, help="checkpoint directory to write")
    p.add_argument("--domain", choices=("motion", "video"), default="motion",
                   help="motion: mouth vertices of the face model; video: rendered mouth crops")
    p.add_argument("--preset", choices=("tiny", "cpu", "paper"), default="cpu")
    p.add_argument("--steps", type=int, help="training steps (default: the preset's)")
    p.add_argument("--max-clips", type=int, help="use at most this many training clips (video: rendering is slow)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=run_train)

    e = sub.add_parser("evaluate", help="the papers' metrics for a checkpoint and baselines, as markdown/JSON tables")
    e.add_argument("--data", required=True, help="dataset directory (talkinghead format)")
    e.add_argument("--split", default="test", choices=("train", "val", "test"))
    e.add_argument("--checkpoint", help="DreamTalk checkpoint folder (with denoiser/) to evaluate")
    e.add_argument("--name", default="DreamTalk (ours)", help="row name of --checkpoint")
    e.add_argument("--baselines", nargs="*", default=["ground-truth", "static"],
                   help="ground-truth, static, regression=DIR or NAME=DIR (an ablated DreamTalk checkpoint)")
    e.add_argument("--output", "-o", required=True, help="report folder (report.md, report.json, judges/)")
    e.add_argument("--preset", choices=("tiny", "cpu", "paper"), default="cpu")
    e.add_argument("--sync-judge", help="motion-domain sync judge (default: train one, saved in the report folder)")
    e.add_argument("--video-judge", help="video-domain sync judge (default: train one, saved in the report folder)")
    e.add_argument("--max-clips", type=int, help="evaluate at most this many clips of the split")
    e.add_argument("--video-clips", type=int, help="render this many clips for the video metrics (0: none)")
    e.add_argument("--steps", type=int, help="DDIM steps (default 10)")
    e.add_argument("--judge-steps", type=int, help="training steps of judges trained here (default: the preset's)")
    e.add_argument("--inception", metavar="DIR",
                   help="folder with the FID Inception-v3 model.safetensors: adds FID to the rendered-video table")
    e.add_argument("--i3d", metavar="DIR", help="folder with the I3D model.safetensors: adds FVD (16-frame clips)")
    e.add_argument("--seed", type=int, default=0)
    e.set_defaults(func=run_evaluate)


def run_train(args: argparse.Namespace) -> int:
    from talkinghead.evaluation.syncnet import SyncTrainConfig, train_syncnet

    overrides: dict[str, Any] = {"seed": args.seed}
    if args.steps is not None:
        overrides["steps"] = args.steps
    tc = SyncTrainConfig.preset(args.preset, **overrides)
    model, report = train_syncnet(args.data, args.domain, args.preset, tc, limit=args.max_clips)
    model.save_pretrained(args.out, extra={"report": report, "command": "talkinghead train-sync-judge",
                                           "data": str(args.data)})
    acc = report.get("eval_in_sync_accuracy")
    extra = "" if acc is None else (f"; offset accuracy on {report['eval_split']}: {acc:.3f} in sync, "
                                    f"{report.get('eval_shifted_accuracy', float('nan')):.3f} shifted "
                                    f"(chance {report['eval_chance']:.3f})")
    print(f"trained the {args.domain} sync judge: loss {report['first_loss']:.3f} -> {report['last_loss']:.3f}"
          f"{extra}; checkpoint {args.out}")
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from talkinghead.evaluation.evaluate import DreamTalkMethod, EvaluateConfig, evaluate, parse_baselines

    overrides: dict[str, Any] = {"split": args.split, "seed": args.seed}
    for key, value in (("max_clips", args.max_clips), ("video_clips", args.video_clips), ("steps", args.steps),
                       ("judge_steps", args.judge_steps)):
        if value is not None:
            overrides[key] = value
    config = EvaluateConfig.preset(args.preset, **overrides)
    methods = parse_baselines(args.baselines, config.steps, config.seed)
    if args.checkpoint:
        methods.append(DreamTalkMethod(args.name, args.checkpoint, config.steps, config.seed))
    report = evaluate(args.data, methods, args.output, config, args.sync_judge, args.video_judge,
                      inception=args.inception, i3d=args.i3d)
    print(f"evaluated {len(methods)} method(s) on {report.num_clips} clips in {report.seconds:.0f} s; "
          f"tables in {args.output}/report.md")
    return 0

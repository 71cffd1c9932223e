"""``talkinghead train-sync-judge``, ``talkinghead evaluate`` and ``talkinghead evaluate-frames`` (parse and call; see
evaluation.syncnet/evaluate/frames)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from talkinghead import options
from talkinghead.errors import TalkingHeadError


def register(sub: Any) -> None:
    p = sub.add_parser("train-sync-judge", help="train the SyncNet-style lip-sync judge (LSE-C/LSE-D) on a dataset")
    p.add_argument("--data", required=True, help="dataset directory (talkinghead format)")
    p.add_argument("--out", "-o", required=True, type=options.OUTPUT_FOLDER, help="checkpoint directory to write")
    p.add_argument("--domain", choices=("motion", "video"), default="motion",
                   help="motion: mouth vertices of the face model; video: rendered mouth crops")
    p.add_argument("--preset", choices=("tiny", "cpu", "paper"), default="cpu")
    p.add_argument("--steps", type=options.COUNT, help="training steps (default: the preset's)")
    p.add_argument("--max-clips", type=options.COUNT,
                   help="use at most this many training clips (video: rendering is slow)")
    p.add_argument("--seed", type=options.SEED, default=0)
    p.add_argument("--resume", action="store_true", help="continue from OUT.train/ after an interruption")
    p.set_defaults(func=run_train)

    e = sub.add_parser("evaluate", help="the papers' metrics for a checkpoint and baselines, as markdown/JSON tables")
    e.add_argument("--data", required=True, help="dataset directory (talkinghead format)")
    e.add_argument("--split", default="test", choices=("train", "val", "test"))
    e.add_argument("--checkpoint", help="a checkpoint folder to evaluate (its talkinghead.json names the generator)")
    e.add_argument("--model", help="a registered generator with its shipped weights to evaluate (talkinghead models)")
    e.add_argument("--name", help="row name of --checkpoint/--model (default: the generator's name)")
    e.add_argument("--style", choices=("reference", "predicted", "none"),
                   help="style request of --checkpoint/--model: the clip's own motion (reference), predicted from "
                        "audio and a portrait of the same speaker (predicted), none (default: the generator's)")
    e.add_argument("--baselines", nargs="*", default=["ground-truth", "static"],
                   help="ground-truth, static, regression=DIR or NAME=DIR (an ablated DreamTalk checkpoint)")
    e.add_argument("--output", "-o", required=True, type=options.OUTPUT_FOLDER,
                   help="report folder (report.md, report.json, judges/)")
    e.add_argument("--preset", choices=("tiny", "cpu", "paper"), default="cpu")
    e.add_argument("--sync-judge", help="motion-domain sync judge (default: train one, saved in the report folder)")
    e.add_argument("--video-judge", help="video-domain sync judge (default: train one, saved in the report folder)")
    e.add_argument("--max-clips", type=options.INDEX, help="evaluate at most this many clips of the split (0: all)")
    e.add_argument("--video-clips", type=options.INDEX, help="render this many clips for the video metrics (0: none)")
    e.add_argument("--steps", type=options.STEPS,
                   help="sampling steps (default: each generator's own, DreamTalk 10 DDIM)")
    e.add_argument("--judge-steps", type=options.INDEX,
                   help="training steps of judges trained here (default or 0: the preset's)")
    e.add_argument("--inception", metavar="DIR",
                   help="folder with the FID Inception-v3 model.safetensors: adds FID to the rendered-video table")
    e.add_argument("--i3d", metavar="DIR", help="folder with the I3D model.safetensors: adds FVD (16-frame clips)")
    e.add_argument("--seed", type=options.SEED, default=0)
    e.set_defaults(func=run_evaluate)

    f = sub.add_parser("evaluate-frames", help="frame generators on a video dataset in FD2Talk's Table 1 layout: lip "
                                               "sync, head motion and image quality, as markdown/JSON tables")
    f.add_argument("--data", required=True, help="video dataset directory (talkinghead video-corpus)")
    f.add_argument("--output", "-o", required=True, type=options.OUTPUT_FOLDER,
                   help="report folder (report.md, report.json)")
    f.add_argument("--row", action="append", metavar="NAME=MOTION+RENDERER",
                   help="a row (repeat): MOTION is ground-truth, a motion generator's name or checkpoint folder; "
                        "RENDERER is warp, fd2talk, a frame-generator folder, dataset or static (NAME=dataset and "
                        "NAME=static alone also do); default: the dataset's frames, the still portrait, DreamTalk + "
                        "warp and FD2Talk's DiTs + UNet (evaluation.frames.DEFAULT_ROWS)")
    f.add_argument("--split", default="test", choices=("train", "val", "test"))
    f.add_argument("--max-clips", type=options.COUNT,
                   help="evaluate at most this many clips (those with audio) of the split")
    f.add_argument("--max-frames", type=options.COUNT, help="cut every clip to its first N frames")
    f.add_argument("--perceptual", metavar="DIR",
                   help="perceptual network for the 'FD (face net)' column (default: weights/fd2talk/perceptual)")
    f.add_argument("--inception", metavar="DIR",
                   help="folder with the FID Inception-v3 model.safetensors: a real FID column instead")
    f.add_argument("--face-recognition", metavar="DIR",
                   help="folder with face-recognition weights (an arcface_torch IResNet as model.safetensors) for the "
                        "F-SIM column (default: the identity embedding trained here, weights/judges/identity)")
    f.add_argument("--sync-judge", metavar="DIR", help="motion-domain sync judge (default: weights/judges)")
    f.add_argument("--video-judge", metavar="DIR", help="video-domain sync judge (default: weights/judges)")
    f.add_argument("--self-reenactment", metavar="REAL_DIR",
                   help="a prepared real-video dataset: adds self-reenactment on its held-out clips")
    f.add_argument("--emotion-judge", metavar="DIR",
                   help="a video emotion judge saved by --train-emotion-judge: adds the Emo-Score columns")
    f.add_argument("--train-emotion-judge", type=options.COUNT, metavar="N",
                   help="train the video emotion judge on the tracked frames of N train clips per emotion, save it "
                        "in OUTPUT/emotion_judge and add the Emo-Score columns")
    f.add_argument("--emotions", nargs="+", metavar="EMOTION",
                   help="evaluate only clips of these emotions, taken in turn (DICE-Talk: neutral happy surprised "
                        "angry)")
    f.add_argument("--seed", type=options.SEED, default=0)
    f.set_defaults(func=run_evaluate_frames)


def run_train(args: argparse.Namespace) -> int:
    """``train-sync-judge`` is ``train judge.sync`` (the shared loop) with a summary of the judge's report."""
    from talkinghead.training.run import train

    summary = train("judge.sync", args.data, args.out, args.preset, steps=args.steps, seed=args.seed,
                    resume=args.resume, domain=args.domain, max_clips=args.max_clips)
    report = summary["report"] or {}
    first, last = report.get("first_loss", summary["first_loss"]), report.get("last_loss", summary["last_loss"])
    acc = report.get("eval_in_sync_accuracy")
    extra = "" if acc is None else (f"; offset accuracy on {report['eval_split']}: {acc:.3f} in sync, "
                                    f"{report.get('eval_shifted_accuracy', float('nan')):.3f} shifted "
                                    f"(chance {report['eval_chance']:.3f})")
    print(f"trained the {args.domain} sync judge: loss {first:.3f} -> {last:.3f}"
          f"{extra}; checkpoint {args.out}")
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from talkinghead.errors import TalkingHeadError
    from talkinghead.evaluation.evaluate import EvaluateConfig, evaluate, method_for, parse_baselines
    from talkinghead.generators import load_generator
    from talkinghead.io.files import output_folder

    overrides: dict[str, Any] = {"split": args.split, "seed": args.seed}
    for key, value in (("max_clips", args.max_clips), ("video_clips", args.video_clips), ("steps", args.steps),
                       ("judge_steps", args.judge_steps)):
        if value is not None:
            overrides[key] = value
    config = EvaluateConfig.preset(args.preset, **overrides)
    methods = parse_baselines(args.baselines, config.steps, config.seed)
    if args.checkpoint and args.model:
        raise TalkingHeadError("Give --checkpoint or --model, not both.")
    if args.checkpoint or args.model:
        methods.append(method_for(load_generator(args.checkpoint, args.model), args.name, config.steps, config.seed,
                                  args.style))
    with output_folder(args.output):  # a failed evaluation leaves no report folder it made
        report = evaluate(args.data, methods, args.output, config, args.sync_judge, args.video_judge,
                          inception=args.inception, i3d=args.i3d)
    print(f"evaluated {len(methods)} method(s) on {report.num_clips} clips in {report.seconds:.0f} s; "
          f"tables in {args.output}/report.md")
    return 0


def run_evaluate_frames(args: argparse.Namespace) -> int:
    from talkinghead.evaluation.frames import evaluate_frames
    from talkinghead.io.files import output_folder

    judges = {"motion": args.sync_judge, "video": args.video_judge}
    if args.emotion_judge and args.train_emotion_judge:
        raise TalkingHeadError("Give --emotion-judge or --train-emotion-judge, not both.")
    with output_folder(args.output):
        emotion_judge: Any = args.emotion_judge
        if args.train_emotion_judge:
            from talkinghead.data.video.format import VideoDataset
            from talkinghead.evaluation.video_emotion import train_video_emotion_judge

            emotion_judge = train_video_emotion_judge(VideoDataset(args.data), per_emotion=args.train_emotion_judge,
                                                      max_frames=args.max_frames)
            emotion_judge.save_pretrained(Path(args.output) / "emotion_judge")
        report = evaluate_frames(args.data, args.row, args.output, split=args.split,
                                 max_clips=args.max_clips, max_frames=args.max_frames, perceptual=args.perceptual,
                                 inception=args.inception, sync_judges=judges, seed=args.seed,
                                 reenactment=args.self_reenactment, emotion_judge=emotion_judge,
                                 emotions=args.emotions, face_recognition=args.face_recognition)
    first = report.tables[0]
    print(f"evaluated {len(first.results)} row(s) on {first.clips} clips ({first.frames} frames each) in "
          f"{report.seconds:.0f} s; tables in {args.output}/report.md")
    return 0

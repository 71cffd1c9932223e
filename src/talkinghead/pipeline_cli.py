"""``talkinghead generate``, ``talkinghead demo`` and ``talkinghead build-style-bank`` (parse and call)."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser("generate", help="animate a portrait with speech (audio or text) into an mp4")
    p.add_argument("--image", required=True, help="the portrait (any image format)")
    speech = p.add_argument_group("speech (exactly one)")
    speech.add_argument("--audio", help="speech audio (any audio or video file)")
    speech.add_argument("--text", help="text to speak with the built-in TTS (espeak-ng)")
    style = p.add_argument_group("style (at most one; default: predicted from the audio and portrait)")
    style.add_argument("--style-video", help="a video of a face speaking in the wanted style")
    style.add_argument("--emotion", help="an emotion of the checkpoint's style bank (e.g. happy, sad, angry)")
    style.add_argument("--intensity", type=int, help="emotion intensity 1-3 (default: all levels' mean)")
    style.add_argument("--style-mix", help="a second style to mix in: an emotion[:1-3] or a video file")
    style.add_argument("--mix-alpha", type=float, default=0.5, help="weight of --style-mix (0-1, default 0.5)")
    p.add_argument("--cfg-scale", type=float, default=1.0, help="classifier-free guidance on style (default 1)")
    p.add_argument("--steps", type=int, default=10, help="DDIM steps (default 10)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--head-motion", type=float, default=1.0, help="head-motion scale (0 = still head, default 1)")
    p.add_argument("--size", type=int, default=256, help="face resolution the renderer works at: 256 or 512")
    p.add_argument("--face-index", type=int, help="which face to animate, counted from the left (default: largest)")
    p.add_argument("--checkpoint", help="folder with denoiser/ and style_predictor/ (default: weights/dreamtalk)")
    p.add_argument("--threads", type=int, default=1, help="torch threads for sampling (0 = torch default; default 1)")
    p.add_argument("--save-motion", help="also write the generated motion (.npz)")
    p.add_argument("-o", "--output", required=True, help="output video (.mp4)")
    p.set_defaults(func=run_generate)

    d = sub.add_parser("demo", help="the astronaut photo says a built-in sentence: writes out/demo.mp4")
    d.add_argument("-o", "--output", default="out/demo.mp4")
    d.add_argument("--size", type=int, default=256, help="256 or 512")
    d.add_argument("--checkpoint", help="folder with the DreamTalk checkpoints (default: weights/dreamtalk)")
    d.set_defaults(func=run_demo)

    b = sub.add_parser("build-style-bank", help="mean style codes per emotion and intensity of a dataset, "
                                                "stored beside the checkpoints (enables --emotion)")
    b.add_argument("--data", required=True, help="dataset directory (talkinghead format)")
    b.add_argument("--checkpoint", required=True, help="folder holding denoiser/; the bank is written there")
    b.add_argument("--split", default="train")
    b.set_defaults(func=run_build_style_bank)


def run_generate(args: argparse.Namespace) -> int:
    from pathlib import Path

    from talkinghead.errors import TalkingHeadError
    from talkinghead.pipeline import GenerateConfig, GenerateInputs, generate

    if args.save_motion and Path(args.save_motion).suffix != ".npz":
        raise TalkingHeadError(f"The motion file {args.save_motion} should end in .npz.")
    config = GenerateConfig(steps=args.steps, cfg_scale=args.cfg_scale, seed=args.seed, head_motion=args.head_motion,
                            size=args.size, threads=args.threads)
    inputs = GenerateInputs(args.image, args.audio, args.text, args.style_video, args.emotion, args.intensity,
                            None, args.style_mix, args.mix_alpha, args.face_index)
    result = generate(inputs, args.output, config, checkpoint=args.checkpoint)
    if args.save_motion:
        result.motion.save(args.save_motion)
    print(f"{result.output} ({result.num_frames} frames, style: {result.style_source}, "
          f"{sum(result.timings.values()):.1f} s)")
    return 0


def run_demo(args: argparse.Namespace) -> int:
    from talkinghead.api import demo

    result = demo(args.output, checkpoint=args.checkpoint, size=args.size)
    print(f"{result.output} ({result.num_frames} frames, {sum(result.timings.values()):.1f} s)")
    return 0


def run_build_style_bank(args: argparse.Namespace) -> int:
    from pathlib import Path

    from talkinghead.errors import TalkingHeadError
    from talkinghead.motion.dreamtalk import DreamTalkDenoiser
    from talkinghead.motion.dreamtalk.style_bank import build_style_bank
    from talkinghead.pipeline import DENOISER_DIR

    folder = Path(args.checkpoint)
    if not (folder / DENOISER_DIR).is_dir():
        raise TalkingHeadError(f"{folder} holds no denoiser/ checkpoint to compute style codes with.")
    bank = build_style_bank(args.data, DreamTalkDenoiser.from_pretrained(folder / DENOISER_DIR), args.split)
    bank.save(folder)
    entries = ", ".join(f"{e}:{i} ({bank.counts[(e, i)]})" for e, i in sorted(bank.codes))
    print(f"style bank in {folder}: {entries}")
    return 0

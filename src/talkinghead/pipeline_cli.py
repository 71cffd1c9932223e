"""``talkinghead generate``, ``talkinghead demo`` and ``talkinghead models`` (parse and call)."""

from __future__ import annotations

import argparse
from typing import Any

from talkinghead import options


def register(sub: Any) -> None:
    p = sub.add_parser("generate", help="animate a portrait with speech (audio or text) into an mp4")
    p.add_argument("--image", required=True, help="the portrait (any image format)")
    speech = p.add_argument_group("speech (exactly one)")
    speech.add_argument("--audio", help="speech audio (any audio or video file)")
    speech.add_argument("--text", help="text to speak with the built-in TTS (espeak-ng)")
    style = p.add_argument_group("style (at most one; default: predicted from the audio and portrait)")
    style.add_argument("--style-video", "--emotion-video", dest="style_video",
                       help="a video of a face speaking in the wanted style (DICE-Talk: showing the wanted emotion; "
                            "tracked and embedded)")
    style.add_argument("--emotion", help="an emotion of the checkpoint's style bank (e.g. happy, sad, angry)")
    style.add_argument("--intensity", type=options.INTENSITY, help="emotion intensity 1-3 (default: all levels' mean)")
    style.add_argument("--style-mix", help="a second style to mix in: an emotion[:1-3] or a video file")
    style.add_argument("--mix-alpha", type=options.number(0, 1), default=0.5,
                       help="weight of --style-mix (0-1, default 0.5)")
    p.add_argument("--cfg-scale", type=options.number(0, 20),
                   help="classifier-free guidance scale (default: the model's; DreamTalk 1)")
    p.add_argument("--steps", type=options.STEPS, help="sampling steps (default: the model's; DreamTalk 10 DDIM steps)")
    p.add_argument("--seed", type=options.SEED, default=0)
    p.add_argument("--head-motion", type=options.number(0, 5), default=1.0,
                   help="head-motion scale (0 = still head, default 1)")
    p.add_argument("--size", type=options.one_of(256, 512), default=256,
                   help="face resolution the renderer works at: 256 or 512")
    p.add_argument("--face-index", type=options.INDEX,
                   help="which face to animate, counted from the left (default: largest)")
    p.add_argument("--model", help="which generator (talkinghead models lists them; default dreamtalk)")
    p.add_argument("--renderer", help="which renderer for motion generators (default warp)")
    p.add_argument("--checkpoint", help="a checkpoint folder; its talkinghead.json names the generator "
                                        "(default: the model's shipped weights)")
    p.add_argument("--transcript", help="what the audio says, for generators that read a transcript")
    p.add_argument("--speed", type=options.number(0, 30),
                   help="head rotation speed in degrees per frame (EMO's speed layers)")
    p.add_argument("--face-region", help="x0,y0,x1,y1: where the face may move, in photo pixels (EMO's face locator)")
    p.add_argument("--threads", type=options.THREADS, default=1,
                   help="torch threads for sampling (0 = torch default; default 1)")
    p.add_argument("--render-workers", type=options.integer(0, 16), default=1,
                   help="processes that draw the frames of a clip of 16 s or more while this one draws and "
                        "encodes too (0 = this process only; default 1)")
    p.add_argument("--save-motion", type=options.output_file(".npz"), help="also write the generated motion (.npz)")
    p.add_argument("-o", "--output", required=True, type=options.output_file(".mp4"), help="output video (.mp4)")
    p.set_defaults(func=run_generate)

    d = sub.add_parser("demo", help="the astronaut photo says a built-in sentence: writes out/demo.mp4")
    d.add_argument("-o", "--output", type=options.output_file(".mp4"), default="out/demo.mp4")
    d.add_argument("--size", type=options.one_of(256, 512), default=256, help="256 or 512")
    d.add_argument("--checkpoint", help="a checkpoint folder (default: the model's shipped weights)")
    d.add_argument("--model", help="which generator (default dreamtalk)")
    d.set_defaults(func=run_demo)

    m = sub.add_parser("models", help="list the generators and renderers: what each can do, which are ready")
    m.add_argument("--json", action="store_true", help="print JSON instead of a table")
    m.set_defaults(func=run_models)


def run_generate(args: argparse.Namespace) -> int:
    """The video and the motion (``--save-motion``) are written together: both appear, or neither."""
    from talkinghead.errors import TalkingHeadError
    from talkinghead.generators import load_generator
    from talkinghead.io.files import atomic_outputs
    from talkinghead.pipeline import GenerateConfig, GenerateInputs, generate

    config = GenerateConfig(steps=args.steps, cfg_scale=args.cfg_scale, seed=args.seed, head_motion=args.head_motion,
                            size=args.size, threads=args.threads, render_workers=args.render_workers)
    inputs = GenerateInputs(args.image, args.audio, args.text, args.style_video, args.emotion, args.intensity,
                            None, args.style_mix, args.mix_alpha, args.face_index, args.transcript, args.speed,
                            parse_region(args.face_region))
    generator = load_generator(args.checkpoint, args.model)
    if args.save_motion and generator.kind != "motion":
        raise TalkingHeadError(f"The '{generator.name}' generator makes frames, not motion: there is no motion to "
                               "save.")
    if not args.save_motion:  # the video alone is written atomically by write_video
        result = generate(inputs, args.output, config, models=generator, renderer=args.renderer)
    else:
        with atomic_outputs(args.output, args.save_motion) as temps:
            result = generate(inputs, temps[0], config, models=generator, renderer=args.renderer)
            if result.motion is not None:
                result.motion.save(temps[1])
    print(f"{args.output} ({result.num_frames} frames, style: {result.style_source}, "
          f"{sum(result.timings.values()):.1f} s)")
    return 0


def run_demo(args: argparse.Namespace) -> int:
    from talkinghead.api import demo

    result = demo(args.output, checkpoint=args.checkpoint, size=args.size, model=args.model)
    print(f"{result.output} ({result.num_frames} frames, {sum(result.timings.values()):.1f} s)")
    return 0


def run_models(args: argparse.Namespace) -> int:
    import json

    from talkinghead.generators import installed

    rows = installed()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'name':<12} {'kind':<9} {'ready':<6} capabilities / summary")
    for r in rows:
        name = r["name"] + (" *" if r["default"] else "")
        print(f"{name:<12} {r['kind']:<9} {'yes' if r['ready'] else 'no':<6} {', '.join(r['capabilities'])}")
        print(f"{'':<29}{r['summary']}")
    print("* the default; ready: its weights are installed (weights/NAME) or it needs none")
    return 0


def parse_region(text: str | None) -> tuple[float, float, float, float] | None:
    """``"x0,y0,x1,y1"`` -> four floats (one sentence when it is not four numbers)."""
    from talkinghead.errors import TalkingHeadError

    if text is None:
        return None
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        values = ()
    if len(values) != 4:
        raise TalkingHeadError(f"--face-region takes four numbers x0,y0,x1,y1, not '{text}'.")
    return values  # type: ignore[return-value]

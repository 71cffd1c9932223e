"""``talkinghead train <component> --data DIR --out CKPT --preset cpu|tiny|paper`` (parses and calls)."""

from __future__ import annotations

import argparse
from typing import Any

# Kept here, not imported from training.components, so that `talkinghead --help` does not import torch.
COMPONENTS = ("lip-expert", "denoiser", "style-predictor")


def register(sub: Any) -> None:
    p = sub.add_parser("train", help="train a model component on a dataset (DreamTalk: lip-expert, denoiser, "
                                     "style-predictor)")
    p.add_argument("component", choices=COMPONENTS)
    p.add_argument("--data", required=True, help="dataset directory (talkinghead format)")
    p.add_argument("--out", required=True, help="checkpoint directory to write (state goes to OUT.train/)")
    p.add_argument("--preset", default="cpu", choices=("tiny", "cpu", "paper"))
    p.add_argument("--steps", type=int, help="total optimizer steps (default: the preset's)")
    p.add_argument("--batch-size", type=int, help="batch size per process (default: the preset's)")
    p.add_argument("--seed", type=int)
    p.add_argument("--features", nargs="+", default=(), help="audio feature names to use (default: automatic)")
    p.add_argument("--lip-expert", help="trained lip expert checkpoint (denoiser: enables the sync loss)")
    p.add_argument("--denoiser", help="trained denoiser checkpoint (style-predictor: source of style codes)")
    p.add_argument("--devices", type=int, default=1)
    p.add_argument("--num-nodes", type=int, default=1)
    p.add_argument("--strategy", default="auto", help="auto, ddp, ddp_spawn, fsdp, ... (Lightning Fabric)")
    p.add_argument("--accelerator", default="cpu", help="cpu, gpu, cuda, mps or auto")
    p.add_argument("--resume", action="store_true", help="continue from OUT.train/ after an interruption")
    v = p.add_argument_group("ablation variants (DreamTalk Tab. 2 and Tab. 4)")
    v.add_argument("--regression", action="store_true",
                   help="denoiser or style-predictor: the same network trained without diffusion (fixed input)")
    v.add_argument("--unconditional", action="store_true",
                   help="lip-expert: no style conditioning (Tab. 2 'uncond lip expert')")
    v.add_argument("--no-speaker-info", action="store_true",
                   help="style-predictor: no speaker-info token, audio only (Tab. 4 'w/o speaker info')")
    v.add_argument("--same-clip-identity", action="store_true",
                   help="style-predictor: identity from the same clip (Tab. 4 'w/o cross-ID training')")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from talkinghead.training.components import train

    summary = train(args.component, args.data, args.out, args.preset, steps=args.steps, batch_size=args.batch_size,
                    seed=args.seed, features=tuple(args.features), lip_expert=args.lip_expert,
                    denoiser=args.denoiser, devices=args.devices, num_nodes=args.num_nodes, strategy=args.strategy,
                    accelerator=args.accelerator, resume=args.resume, regression=args.regression,
                    unconditional=args.unconditional, no_speaker_info=args.no_speaker_info,
                    same_clip_identity=args.same_clip_identity)
    if summary["rank"] == 0:
        print(f"trained {summary['component']}: steps {summary['start']}->{summary['end']}, "
              f"loss {summary['first_loss']:.4f} -> {summary['last_loss']:.4f}, "
              f"{summary['steps_per_second']:.2f} steps/s; checkpoint {args.out}")
    return 0

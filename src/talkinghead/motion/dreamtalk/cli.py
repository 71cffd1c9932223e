"""``talkinghead build-style-bank``: DreamTalk's emotion style bank beside its checkpoints (parse and call)."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    b = sub.add_parser("build-style-bank", help="mean style codes per emotion and intensity of a dataset, "
                                                "stored beside the checkpoints (enables --emotion)")
    b.add_argument("--data", required=True, help="dataset directory (talkinghead format)")
    b.add_argument("--checkpoint", required=True, help="folder holding denoiser/; the bank is written there")
    b.add_argument("--split", default="train")
    b.set_defaults(func=run_build_style_bank)


def run_build_style_bank(args: argparse.Namespace) -> int:
    from pathlib import Path

    from talkinghead.errors import TalkingHeadError
    from talkinghead.generators import read_manifest, write_manifest
    from talkinghead.motion.dreamtalk import DreamTalkDenoiser
    from talkinghead.motion.dreamtalk.generator import DENOISER_DIR, LIP_EXPERT_DIR, PREDICTOR_DIR
    from talkinghead.motion.dreamtalk.style_bank import build_style_bank

    folder = Path(args.checkpoint)
    if not (folder / DENOISER_DIR).is_dir():
        raise TalkingHeadError(f"{folder} holds no denoiser/ checkpoint to compute style codes with.")
    bank = build_style_bank(args.data, DreamTalkDenoiser.from_pretrained(folder / DENOISER_DIR), args.split)
    bank.save(folder)
    if read_manifest(folder) is None:  # a folder assembled by hand says what it is from now on
        parts = {name: name for name in (DENOISER_DIR, PREDICTOR_DIR, LIP_EXPERT_DIR) if (folder / name).is_dir()}
        write_manifest(folder, "dreamtalk", {**parts, "style_bank": "style_bank.json"})
    entries = ", ".join(f"{e}:{i} ({bank.counts[(e, i)]})" for e, i in sorted(bank.codes))
    print(f"style bank in {folder}: {entries}")
    return 0

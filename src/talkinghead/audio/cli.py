"""``talkinghead align`` and ``talkinghead features``: phone alignment and frame-aligned audio features."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from talkinghead import options
from talkinghead.errors import TalkingHeadError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("align", help="force-align speech with its transcript (ARPAbet phones with times)")
    p.add_argument("audio", help="speech file (any audio or video format)")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--text", help="the transcript")
    group.add_argument("--text-file", help="a UTF-8 file holding the transcript")
    p.add_argument("-o", "--output", required=True, type=options.output_file(), help="phones JSON to write")
    p.add_argument("--fps", type=options.FPS, default=25.0, help="also store per-frame phoneme tokens at this rate")
    p.set_defaults(func=run_align)

    f = sub.add_parser("features", help="frame-aligned audio features (log-mel, MFCC, f0, encoders) to .npz")
    f.add_argument("audio", help="speech file (any audio or video format)")
    f.add_argument("-o", "--output", required=True, type=options.output_file(),
                   help=".npz to write: features [T, D] and the spec")
    f.add_argument("--spec", default="lowlevel",
                   help="feature preset: lowlevel, cpu, tiny, dreamtalk, dreamtalk_style, dimitra, emo, dice")
    f.add_argument("--encoder", help="local directory of a wav2vec 2.0 / HuBERT / Whisper model")
    f.add_argument("--fps", type=options.FPS, help="video frame rate (default: the preset's, 25)")
    f.add_argument("--layers", help="encoder hidden-state indices, comma separated (e.g. -1 or 4,8,12)")
    f.add_argument("--window", type=options.INDEX, help="frames on each side a model reads (stored in the spec)")
    f.set_defaults(func=run_features)


def run_align(args: argparse.Namespace) -> int:
    from talkinghead.audio.align import align_file

    if args.text_file:
        try:
            text = Path(args.text_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise TalkingHeadError(f"The transcript file {args.text_file} could not be read.") from err
    else:
        text = args.text
    alignment = align_file(args.audio, text)
    data = alignment.to_dict()
    data["fps"] = args.fps
    data["tokens"] = alignment.tokens(args.fps).tolist()
    from talkinghead.io.files import atomic_path

    with atomic_path(args.output) as tmp:
        Path(tmp).write_text(json.dumps(data, indent=1) + "\n")
    spoken = sum(1 for p in alignment.phones if p.label != "SIL")
    print(f"{spoken} phones, {len(alignment.words)} words, {alignment.duration:.2f} s -> {args.output}")
    return 0


def run_features(args: argparse.Namespace) -> int:
    import numpy as np

    from talkinghead.audio.features import extract_features, extract_file_features
    from talkinghead.audio.spec import ENCODER_KIND, AudioFeatureSpec
    from talkinghead.io.files import atomic_path

    overrides: dict[str, object] = {}
    if args.fps is not None:
        overrides["fps"] = args.fps
    if args.window is not None:
        overrides["window"] = args.window
    if args.layers:
        try:
            overrides["layers"] = tuple(int(x) for x in args.layers.split(","))
        except ValueError as err:
            raise TalkingHeadError(f"--layers must be comma-separated integers, got '{args.layers}'.") from err
    spec = AudioFeatureSpec.preset(args.spec, **overrides)
    encoder = None
    if ENCODER_KIND in spec.kinds:
        if not args.encoder:
            raise TalkingHeadError(f"The '{args.spec}' features need a speech encoder: pass --encoder DIR.")
        from talkinghead.audio.encoders import SpeechEncoder
        from talkinghead.io.audio import load_audio

        encoder = SpeechEncoder(args.encoder)
        spec = encoder.spec(spec)
        feats = extract_features(load_audio(args.audio, spec.sample_rate), spec, encoder)
    else:
        feats = extract_file_features(args.audio, spec)
    with atomic_path(args.output) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, features=feats, spec=np.array(json.dumps(spec.to_dict())))
    print(f"features {feats.shape[0]} x {feats.shape[1]} at {spec.fps:g} fps -> {args.output}")
    return 0

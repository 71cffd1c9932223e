"""Commands ``tts``, ``corpus``, ``dataset-info``, ``preview`` and ``prepare`` (parse and call only)."""

from __future__ import annotations

import argparse
import json

from talkinghead import options
from talkinghead.errors import TalkingHeadError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tts", help="speak text with espeak-ng (16 kHz wav, exact phoneme timings)")
    p.add_argument("text", nargs="?", help="the text to speak")
    p.add_argument("-o", "--output", type=options.output_file(".wav"), help="output .wav")
    p.add_argument("--voice", default="en-us", help="espeak-ng language voice (en-us, en, en-gb-scotland, ...)")
    p.add_argument("--variant", default="", help="voice variant (m1-m8, f1-f5, ...)")
    p.add_argument("--rate", type=options.integer(80, 450), default=165, help="words a minute (80-450)")
    p.add_argument("--pitch", type=options.integer(0, 99), default=50, help="base pitch 0-99")
    p.add_argument("--range", type=options.integer(0, 99), default=50, help="pitch range 0-99")
    p.add_argument("--emotion", default="neutral", help="prosody preset: one of the eight MEAD emotions")
    p.add_argument("--intensity", type=options.INTENSITY, default=2, help="emotion intensity 1-3")
    p.add_argument("--phones", type=options.output_file(), help="also write the phone and word timings to this .json")
    p.add_argument("--list-voices", action="store_true", help="list voices and variants, then exit")
    p.set_defaults(func=run_tts)

    p = sub.add_parser("corpus", help="generate the synthetic talking-face corpus")
    p.add_argument("--out", required=True, type=options.OUTPUT_FOLDER, help="output dataset folder")
    p.add_argument("--speakers", type=options.COUNT, default=30)
    p.add_argument("--sentences", type=options.COUNT, default=3, help="sentences per speaker, emotion and intensity")
    p.add_argument("--seed", type=options.SEED, default=0)
    p.add_argument("--emotions", default="", help="comma-separated subset of the eight emotions")
    p.add_argument("--intensities", default="1,2,3")
    p.add_argument("--features", default="lowlevel", help="audio feature preset, or 'none'")
    p.add_argument("--no-augment", action="store_true", help="clean audio (no noise, room or gain changes)")
    p.add_argument("--workers", type=options.COUNT, default=2)
    p.add_argument("--text", choices=("shared", "emotional"), default="shared",
                   help="shared: every sentence read in every emotion; emotional: sentences that say the clip's "
                        "emotion (for a transcript condition, Dimitra)")
    p.add_argument("--effort", type=options.number(0, 12), default=4.0,
                   help="spread in dB of the vowels' vocal effort: louder vowels open the jaw wider (0-12; 0: off)")
    p.set_defaults(func=run_corpus)

    p = sub.add_parser("dataset-info", help="counts by split, emotion, intensity and speaker, and durations")
    p.add_argument("dataset", help="dataset folder")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_info)

    p = sub.add_parser("preview", help="render a clip's ground-truth motion on a portrait, with its audio")
    p.add_argument("dataset", help="dataset folder")
    p.add_argument("--clip", required=True, help="clip id")
    p.add_argument("-o", "--output", required=True, type=options.output_file(".mp4"), help="output .mp4")
    p.add_argument("--image", help="portrait (default: scikit-image's astronaut)")
    p.add_argument("--size", type=options.SIZE, default=256, help="render size in pixels (64-2048)")
    p.add_argument("--no-pose", action="store_true", help="keep the head still")
    p.set_defaults(func=run_preview)

    p = sub.add_parser("prepare", help="real talking-face videos into a dataset (MEAD/HDTF layouts too)")
    p.add_argument("videos", help="a video, or a folder of videos")
    p.add_argument("--out", required=True, type=options.OUTPUT_FOLDER, help="output dataset folder")
    p.add_argument("--fps", type=options.FPS, default=25.0)
    p.add_argument("--features", default="lowlevel", help="audio feature preset, or 'none'")
    p.add_argument("--workers", type=options.COUNT, default=2)
    p.add_argument("--shard", type=options.SHARD, default="0/1", help="i/n: take the i-th of n shards of the videos")
    p.set_defaults(func=run_prepare)


def run_tts(args: argparse.Namespace) -> int:
    """The wav and the timings (``--phones``) are written together: both appear, or neither."""
    from talkinghead.audio.tts import VoiceConfig, list_voices, synthesize
    from talkinghead.io.audio import save_wav
    from talkinghead.io.files import atomic_outputs

    if args.list_voices:
        for key, names in list_voices().items():
            print(f"{key}: {' '.join(names)}")
        return 0
    if not args.text or not args.output:
        raise TalkingHeadError("Give the text to speak and an output file: talkinghead tts \"text\" -o speech.wav.")
    config = VoiceConfig(voice=args.voice, variant=args.variant, rate=args.rate, pitch=args.pitch, range=args.range,
                         emotion=args.emotion, intensity=args.intensity)
    speech = synthesize(args.text, config)
    with atomic_outputs(args.output, *([args.phones] if args.phones else [])) as temps:
        save_wav(temps[0], speech.audio)
        if args.phones:
            data = {"text": speech.text, "voice": speech.voice, "duration": speech.duration,
                    "phones": [{"label": p.label, "start": round(p.start, 5), "end": round(p.end, 5)}
                               for p in speech.phones],
                    "words": [{"word": w.text, "start": round(w.start, 5), "end": round(w.end, 5)}
                              for w in speech.words]}
            temps[1].write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    print(f"{args.output}: {speech.duration:.2f} s, {len(speech.spoken_phones())} phones, {len(speech.words)} words")
    return 0


def run_corpus(args: argparse.Namespace) -> int:
    from talkinghead.audio.tts import EMOTIONS
    from talkinghead.data.corpus import CorpusConfig, generate_corpus
    from talkinghead.data.dataset import has_clips
    from talkinghead.io.files import output_folder

    try:
        intensities = tuple(int(x) for x in args.intensities.split(",") if x.strip())
    except ValueError as err:
        raise TalkingHeadError("--intensities is a comma-separated list such as 1,2,3.") from err
    emotions = tuple(e.strip() for e in args.emotions.split(",") if e.strip()) or EMOTIONS
    config = CorpusConfig(speakers=args.speakers, sentences=args.sentences, seed=args.seed, emotions=emotions,
                          intensities=intensities, features=args.features, augment=not args.no_augment,
                          workers=args.workers, text=args.text, effort=args.effort)
    with output_folder(args.out, keep=has_clips):
        report = generate_corpus(args.out, config)
    print(f"{report.root}: {report.clips} clips ({report.made} made now) in {report.seconds:.1f} s")
    return 0


def run_info(args: argparse.Namespace) -> int:
    from talkinghead.data.info import dataset_summary, format_summary
    from talkinghead.data.video.format import is_video_dataset

    if is_video_dataset(args.dataset):
        from talkinghead.data.video.info import format_video_summary, video_summary

        summary = video_summary(args.dataset)
        print(json.dumps(summary, indent=2) if args.json else format_video_summary(summary))
        return 0
    summary = dataset_summary(args.dataset)
    print(json.dumps(summary, indent=2) if args.json else format_summary(summary))
    return 0


def run_preview(args: argparse.Namespace) -> int:
    from talkinghead.data.info import preview_clip
    from talkinghead.data.video.format import is_video_dataset

    if is_video_dataset(args.dataset):  # the stored crops with their boxes and audio (--image, --size unused)
        from talkinghead.data.video.info import preview_video_clip

        print(preview_video_clip(args.dataset, args.clip, args.output))
        return 0
    path = preview_clip(args.dataset, args.clip, args.output, args.image, args.size, with_pose=not args.no_pose)
    print(path)
    return 0


def run_prepare(args: argparse.Namespace) -> int:
    from talkinghead.data.dataset import has_clips
    from talkinghead.data.prepare import prepare_videos
    from talkinghead.io.files import output_folder

    with output_folder(args.out, keep=has_clips):
        report = prepare_videos(args.videos, args.out, args.fps, args.features, args.workers, args.shard)
    print(f"{report.root}: {report.videos} videos, {report.done} prepared, {report.skipped} already there, "
          f"{len(report.failed)} failed")
    return 1 if report.failed else 0

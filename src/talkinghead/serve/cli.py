"""``talkinghead serve``: the web page and the HTTP API in one process, the models kept warm (parse and call)."""

from __future__ import annotations

import argparse
from typing import Any

from talkinghead import options


def register(sub: Any) -> None:
    p = sub.add_parser("serve", help="a web page and an HTTP API (one process, the models loaded once)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 opens it to the network)")
    p.add_argument("--port", type=options.integer(0, 65535), default=7860, help="port (default 7860; 0: any free one)")
    p.add_argument("--workers", type=options.COUNT, default=1, help="jobs run at once (default 1)")
    p.add_argument("--queue", type=options.INDEX, default=8,
                   help="jobs that may wait beyond the running ones; more are refused with 503 (default 8)")
    p.add_argument("--keep-minutes", type=options.POSITIVE_NUMBER, default=30.0,
                   help="minutes a finished job's files are kept (default 30)")
    p.add_argument("--job-timeout", type=options.POSITIVE_NUMBER, default=300.0,
                   help="seconds a job may run before it is stopped (default 300)")
    p.add_argument("--max-audio-seconds", type=options.POSITIVE_NUMBER, default=120.0,
                   help="longest speech (and style video) in seconds (default 120)")
    p.add_argument("--max-image-mb", type=options.POSITIVE_NUMBER, default=20.0, help="largest portrait (default 20)")
    p.add_argument("--max-audio-mb", type=options.POSITIVE_NUMBER, default=50.0,
                   help="largest speech file (default 50)")
    p.add_argument("--max-video-mb", type=options.POSITIVE_NUMBER, default=50.0,
                   help="largest style video (default 50)")
    p.add_argument("--max-text-chars", type=options.COUNT, default=2000,
                   help="longest text to speak or transcript (default 2000)")
    p.add_argument("--live-sessions", type=options.COUNT, default=1,
                   help="live streams (the /live page) at a time; more get a busy answer (default 1)")
    p.add_argument("--model", help="the generator kept warm (default dreamtalk; others load on first use)")
    p.add_argument("--checkpoint", help="a checkpoint folder for the warm generator (its talkinghead.json names it)")
    p.add_argument("--threads", type=options.THREADS, default=1,
                   help="torch threads while a job samples (0 = torch default; default 1)")
    p.set_defaults(func=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    from talkinghead.serve.engine import EngineConfig
    from talkinghead.serve.http import run_server
    from talkinghead.serve.jobs import QueueConfig
    from talkinghead.serve.uploads import UploadLimits

    return run_server(args.host, args.port,
                      EngineConfig(checkpoint=args.checkpoint, model=args.model, threads=args.threads),
                      QueueConfig(workers=args.workers, max_waiting=args.queue, keep_minutes=args.keep_minutes,
                                  job_timeout=args.job_timeout),
                      UploadLimits(image_mb=args.max_image_mb, audio_mb=args.max_audio_mb,
                                   audio_seconds=args.max_audio_seconds, video_mb=args.max_video_mb,
                                   text_chars=args.max_text_chars),
                      verbose=args.verbose, live_sessions=args.live_sessions)

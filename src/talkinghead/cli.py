"""The ``talkinghead`` command: parses arguments and calls the library, nothing else.

Each area registers its sub-commands from its own ``cli`` module (a ``register(subparsers)``
function); :data:`COMMAND_MODULES` lists them. A :class:`TalkingHeadError` is printed as one
sentence with exit status 2 (a traceback only with ``--debug``).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from talkinghead import __version__
from talkinghead.errors import TalkingHeadError

COMMAND_MODULES = (
    "talkinghead.face.cli",
    "talkinghead.io.cli",
    "talkinghead.data.cli",
    "talkinghead.data.video.cli",
    "talkinghead.audio.cli",
    "talkinghead.render.cli",
    "talkinghead.training.cli",
    "talkinghead.pipeline_cli",
    "talkinghead.motion.dreamtalk.cli",
    "talkinghead.evaluation.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="talkinghead",
        description="Portrait + speech to an expressive talking-head video with diffusion models.",
    )
    parser.add_argument("--version", action="version", version=f"talkinghead {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bars, warnings only")
    parser.add_argument("--verbose", "-v", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    from talkinghead.log import configure_logging

    configure_logging(verbose=args.verbose, quiet=args.quiet)
    try:
        result = args.func(args)
    except TalkingHeadError as err:
        if args.debug:
            raise
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("error: interrupted.", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())

"""The ``talkinghead`` command: parses arguments and calls the library, nothing else.

Each area registers its sub-commands from its own ``cli`` module (a ``register(subparsers)``
function); :data:`COMMAND_MODULES` lists them. Options take their ranges from :mod:`talkinghead.options`.
A usage error and a :class:`TalkingHeadError` are printed as ``error: <one sentence>`` with exit status 2
(a traceback only with ``--debug``); the global options (``--quiet``, ``--verbose``, ``--debug``) go before or
after the command. SIGTERM is turned into the clean-up path of Ctrl-C (temporaries removed, half-made outputs
undone) and exits with 143 (Ctrl-C: 130).
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from types import FrameType
from typing import Any, NoReturn

from talkinghead import __version__
from talkinghead.errors import Interrupted, TalkingHeadError

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
    "talkinghead.serve.cli",
)


class UsageError(TalkingHeadError):
    """A command line that does not parse (an unknown option, a value out of its declared range)."""


class Parser(argparse.ArgumentParser):
    """argparse with the project's error policy: a usage error is ``error: <sentence>`` and exit status 2
    (``talkinghead COMMAND --help`` shows the usage). Sub-command parsers are of this class too."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def add_global_options(parser: argparse.ArgumentParser, default: Any = False) -> None:
    """``--debug``, ``--quiet`` and ``--verbose``; on sub-commands with ``default=argparse.SUPPRESS``, so a
    flag given before the command is not reset by the sub-command's parser."""
    parser.add_argument("--debug", action="store_true", default=default, help="show tracebacks on errors")
    parser.add_argument("--quiet", "-q", action="store_true", default=default,
                        help="no progress bars, warnings only")
    parser.add_argument("--verbose", "-v", action="store_true", default=default, help="debug logging")


def _subcommand_parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """Every sub-command parser below ``parser`` (nested ones too: ``train COMPONENT``), each once."""
    seen: set[int] = set()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                if id(child) not in seen:
                    seen.add(id(child))
                    yield child
                    yield from _subcommand_parsers(child)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="talkinghead",
        description="Portrait + speech to an expressive talking-head video with diffusion models.",
    )
    parser.add_argument("--version", action="version", version=f"talkinghead {__version__}")
    add_global_options(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    for child in _subcommand_parsers(parser):
        add_global_options(child, default=argparse.SUPPRESS)
    return parser


def _stop_on_sigterm(pid: int) -> Callable[[int, FrameType | None], None]:
    """The SIGTERM handler of process ``pid``: raise :class:`Interrupted` there. A process forked from it (a
    multiprocessing pool's worker, which the pool stops with SIGTERM) dies of the signal as it would without it."""

    def handler(signum: int, frame: FrameType | None) -> None:
        if os.getpid() != pid:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        raise Interrupted(signum)

    return handler


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _stop_on_sigterm(os.getpid())) if in_main_thread else None
    try:
        return _run(build_parser(), argv)
    except KeyboardInterrupt as err:
        signum = err.signum if isinstance(err, Interrupted) else signal.SIGINT
        print(f"error: {'terminated' if signum == signal.SIGTERM else 'interrupted'}.", file=sys.stderr)
        return 128 + signum
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _run(parser: argparse.ArgumentParser, argv: list[str]) -> int:
    try:
        args = parser.parse_args(argv)
    except UsageError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code
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
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())

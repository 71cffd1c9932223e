"""The declared ranges of the command-line options, checked when the command line is parsed.

Every numeric option of every command takes its ``type=`` from here (``type=options.COUNT``,
``type=options.number(0, 1)``), and so do output files and folders (``type=options.output_file(".mp4")``):
a value out of range, or an output that cannot be written, ends the command before any work with one
sentence (``error: argument --fps: must be above 0, got 'nan'.``) and exit status 2. The checks that the
library repeats (training's devices, strategy and accelerator) are the functions here too.

Nothing here imports torch unless an accelerator other than the CPU is asked for (``talkinghead --help``
stays fast).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from talkinghead.config import AT_LEAST_ONE, POSITIVE, SEED_HIGH, Range
from talkinghead.errors import TalkingHeadError
from talkinghead.io.files import check_output, check_output_folder

#: Lightning Fabric strategies that work with the installed packages
STRATEGIES = ("auto", "ddp", "ddp_spawn", "ddp_fork", "ddp_notebook", "ddp_find_unused_parameters_true", "dp",
              "fsdp", "fsdp_cpu_offload")
ACCELERATORS = ("cpu", "gpu", "cuda", "mps", "auto")


def _option(convert: Callable[[str], object], name: str) -> Callable[[str], object]:
    """An argparse ``type=``: ``convert(text)``, its TalkingHeadError as argparse's usage error."""

    def parse(text: str) -> object:
        try:
            return convert(text)
        except TalkingHeadError as err:
            message = str(err).rstrip(".")
            if message[1:2].islower():  # "argument --out: the output ..."
                message = message[0].lower() + message[1:]
            raise argparse.ArgumentTypeError(message) from err

    parse.__name__ = name
    return parse


def _in_range(cast: Callable[[str], float], allowed: Range, noun: str) -> Callable[[str], float]:
    """``cast(text)`` checked against ``allowed``; one phrase for text that is not ``noun`` or out of range."""

    def convert(text: str) -> float:
        try:
            value = cast(text)
        except ValueError:
            raise TalkingHeadError(f"must be {noun}, got {text!r}") from None
        problem = allowed.problem(value)
        if problem is not None:
            raise TalkingHeadError(f"{problem}, got {text!r}")
        return value

    return convert


def integer(low: int | None = None, high: int | None = None) -> Callable[[str], int]:
    """An integer option in ``[low, high]`` (either end open when None)."""
    return _option(_in_range(int, Range(low, high), "an integer"), "integer")  # type: ignore[return-value]


def one_of(*values: int) -> Callable[[str], int]:
    """An integer option that takes one of ``values`` (sizes: ``one_of(256, 512)``)."""
    allowed = " or ".join(str(v) for v in values) if len(values) == 2 else ", ".join(str(v) for v in values)

    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value not in values:
            raise TalkingHeadError(f"must be {allowed}, got {text!r}")
        return value

    return _option(convert, "integer")  # type: ignore[return-value]


def number(low: float | None = None, high: float | None = None, open_low: bool = False) -> Callable[[str], float]:
    """A finite number option in ``[low, high]`` (``(low, high]`` with ``open_low``)."""
    return ranged(Range(low, high, open_low))


def ranged(allowed: Range) -> Callable[[str], float]:
    """A finite number option in ``allowed``."""
    return _option(_in_range(float, allowed, "a number"), "number")  # type: ignore[return-value]


COUNT = integer(1)  # steps, batch sizes, clips, workers, devices, speakers, columns
INDEX = integer(0)  # face index, video clips (0: none), window
SEED = integer(0, SEED_HIGH)
THREADS = integer(0)  # 0: torch's default
FPS = ranged(POSITIVE)
POSITIVE_NUMBER = ranged(POSITIVE)  # durations, scales
FINITE = number()
STEPS = integer(1, 1000)  # sampling steps (the samplers' own range)
INTENSITY = integer(1, 3)
SIZE = integer(64, 2048)  # render sizes in pixels


def output_file(*suffixes: str) -> Callable[[str], str]:
    """An output file that can be written: not a folder, one of ``suffixes`` (any when none), its folder
    writable (:func:`talkinghead.io.files.check_output`)."""

    def convert(text: str) -> str:
        check_output(text, tuple(s.lower() for s in suffixes))
        return text

    return _option(convert, "output file")  # type: ignore[return-value]


def _output_folder(text: str) -> str:
    check_output_folder(text)
    return text


OUTPUT_FOLDER: Callable[[str], str] = _option(_output_folder, "output folder")  # type: ignore[assignment]


def _shard(text: str) -> tuple[int, int]:
    try:
        index, count = (int(x) for x in text.split("/"))
    except ValueError:
        raise TalkingHeadError(f"is i/n (e.g. 0/4), got {text!r}") from None
    if count < 1 or not 0 <= index < count:
        raise TalkingHeadError(f"is i/n with 0 <= i < n, got {text!r}")
    return index, count


#: ``i/n``: the i-th of n shards
SHARD: Callable[[str], tuple[int, int]] = _option(_shard, "shard")  # type: ignore[assignment]


def check_strategy(name: str) -> str:
    if name not in STRATEGIES:
        raise TalkingHeadError(f"The strategy '{name}' is not one of {', '.join(STRATEGIES)}.")
    return name


def check_accelerator(name: str) -> str:
    """A known accelerator that this machine has (``auto`` and ``cpu`` always)."""
    if name not in ACCELERATORS:
        raise TalkingHeadError(f"The accelerator '{name}' is not one of {', '.join(ACCELERATORS)}.")
    if name in ("cpu", "auto"):
        return name
    import torch

    cuda = torch.cuda.is_available()
    mps = torch.backends.mps.is_available()
    if (name == "cuda" and not cuda) or (name == "mps" and not mps) or (name == "gpu" and not (cuda or mps)):
        raise TalkingHeadError(f"The accelerator '{name}' is not available on this machine; use cpu (or auto).")
    return name


def check_count(value: int, what: str) -> int:
    """A library argument that counts something (devices, nodes): at least 1."""
    AT_LEAST_ONE.check(value, what)
    return value


STRATEGY = _option(check_strategy, "strategy")
ACCELERATOR = _option(check_accelerator, "accelerator")

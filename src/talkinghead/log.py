"""Structured logging and progress display for long work.

Progress bars are drawn on a terminal only (``rich``) and are silent when stderr is not a TTY or
when quiet mode is on (``--quiet`` or ``TALKINGHEAD_QUIET=1``). Log records are emitted through the
standard ``logging`` module under the ``talkinghead`` logger; with ``TALKINGHEAD_LOG_JSON=1`` they are
written as one JSON object a line (for machines), otherwise as short human lines.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

_state = {"quiet": os.environ.get("TALKINGHEAD_QUIET", "") == "1"}

logger = logging.getLogger("talkinghead")


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "time": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            payload.update(extra)
        return json.dumps(payload)


def configure_logging(verbose: bool = False, quiet: bool = False, json_lines: bool | None = None) -> None:
    """Set up the ``talkinghead`` logger once per process (CLI entry)."""
    _state["quiet"] = quiet or _state["quiet"]
    if json_lines is None:
        json_lines = os.environ.get("TALKINGHEAD_LOG_JSON", "") == "1"
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_JsonFormatter() if json_lines else logging.Formatter("%(levelname)s %(message)s"))
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG if verbose else (logging.WARNING if quiet else logging.INFO))


def set_quiet(quiet: bool) -> None:
    _state["quiet"] = quiet


def is_quiet() -> bool:
    return bool(_state["quiet"])


def log_event(message: str, **fields: object) -> None:
    """Log an info record with structured fields (kept as keys in JSON mode)."""
    suffix = " ".join(f"{k}={v}" for k, v in fields.items())
    logger.info(f"{message} {suffix}".strip(), extra={"fields": fields})


def _show_bars() -> bool:
    return not is_quiet() and sys.stderr.isatty()


def progress(items: Iterable[T], description: str, total: int | None = None) -> Iterator[T]:
    """Iterate over ``items`` with a progress bar on a terminal; silent otherwise.

    A final log record gives the item count and elapsed time either way.
    """
    start = time.perf_counter()
    count = 0
    if _show_bars():
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        )
        with Progress(*columns, transient=True) as bar:
            if total is None and hasattr(items, "__len__"):
                total = len(items)  # type: ignore[arg-type]
            task = bar.add_task(description, total=total)
            for item in items:
                yield item
                count += 1
                bar.advance(task)
    else:
        for item in items:
            yield item
            count += 1
    logger.debug(f"{description}: {count} items in {time.perf_counter() - start:.2f}s")


class Laps:
    """Stage timings: ``laps("name")`` records the seconds since the previous lap (or since the start)
    in :attr:`timings`."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self._clock = time.perf_counter()

    def __call__(self, name: str) -> None:
        now = time.perf_counter()
        self.timings[name] = now - self._clock
        self._clock = now

    def add(self, timings: dict[str, float]) -> None:
        """Stages timed elsewhere (e.g. a generator's own); the next lap starts now."""
        self.timings.update(timings)
        self._clock = time.perf_counter()

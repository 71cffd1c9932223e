"""Worker processes started with ``spawn`` (safe in a process that runs threads: the server, the renderer's threads).

A spawned process imports the parent's main script before it runs its target (the target may live there). Ours live in
the package, and the user's script may import torch or start work at the top, so :func:`start_process` starts the
process with the main module's file and spec hidden (restored at once): the child imports only what its target needs.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import sys
from collections.abc import Callable, Iterator
from multiprocessing.context import SpawnProcess
from typing import Any

#: the start method of every worker process
CONTEXT = multiprocessing.get_context("spawn")


@contextlib.contextmanager
def main_not_imported() -> Iterator[None]:
    """Inside the block, processes started do not import the parent's main module (see the module docstring)."""
    main = sys.modules.get("__main__")
    names = ("__file__", "__spec__") if main is not None else ()
    hidden: dict[str, Any] = {k: main.__dict__.pop(k) for k in names if k in main.__dict__}  # type: ignore[union-attr]
    if main is not None and "__spec__" in hidden:
        main.__spec__ = None  # type: ignore[assignment]
    try:
        yield
    finally:
        if main is not None:
            main.__dict__.update(hidden)


def start_process(target: Callable[..., Any], args: tuple[Any, ...], name: str) -> SpawnProcess:
    """A started daemon process running ``target(*args)`` (a function of the package, not of a script)."""
    proc = CONTEXT.Process(target=target, args=args, name=name, daemon=True)
    with main_not_imported():
        proc.start()
    return proc

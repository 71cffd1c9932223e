"""glibc malloc settings for the processes that render and serve (no-ops where there is no glibc).

- :func:`keep_freed_blocks`: large temporary arrays come from the heap and are reused instead of being mapped
  and unmapped for every frame. A frame of the warp renderer allocates and frees a few dozen arrays of 0.1-1 MB;
  with glibc's defaults each is a fresh ``mmap`` whose pages fault in again, and freed memory at the heap's top is
  trimmed back to the system each time: 0.7 s of 4.9 s of system time over 750 frames, and a frame 17% faster
  without it (BENCHMARKS.md).
- :func:`limit_malloc_arenas`: at most two arenas in the server (each thread's arena keeps the pages it held).
- :func:`give_back_memory`: freed memory returned to the system when the server is idle.
"""

from __future__ import annotations

import ctypes
import gc
from typing import Any

#: glibc's ``mallopt`` parameters
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
#: malloc arenas the server allows itself (glibc's default is 8 per core)
SERVER_ARENAS = 2
#: blocks below this size come from the heap (glibc's ceiling for its own dynamic threshold)
MMAP_THRESHOLD = 32 * 2**20
#: free memory at the heap's top kept for reuse, not trimmed
TRIM_THRESHOLD = 64 * 2**20


def _libc() -> Any | None:
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def _mallopt(param: int, value: int) -> bool:
    """glibc's ``mallopt(param, value)``; False where there is no glibc or it refused."""
    mallopt = getattr(_libc(), "mallopt", None)
    return mallopt is not None and bool(mallopt(param, int(value)))


def keep_freed_blocks() -> bool:
    """Serve blocks up to :data:`MMAP_THRESHOLD` from the heap and keep up to :data:`TRIM_THRESHOLD` of freed memory
    for reuse, for the rest of the process (see the module docstring). False where there is no glibc."""
    return _mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) and _mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)


def limit_malloc_arenas(arenas: int = SERVER_ARENAS) -> bool:
    """Let glibc's malloc use at most ``arenas`` arenas from now on (``mallopt(M_ARENA_MAX)``); call it before the
    server starts its threads. With the default (8 per core) each thread that allocates (job workers, the renderer's
    and encoder's threads, the HTTP server's) may get its own arena, and every arena keeps the pages of the frames
    and uploads it once held: the load test's resident memory stayed about 60 MB above its baseline after the jobs
    were cleaned up, 12 MB with two arenas, and its peak fell by about 90 MB, at the same throughput (BENCHMARKS.md).
    False where there is no glibc."""
    return _mallopt(M_ARENA_MAX, arenas)


def give_back_memory() -> None:
    """Hand the memory freed by finished jobs back to the system once the queue is idle: a garbage collection, then
    glibc's ``malloc_trim(0)`` (its arenas otherwise keep the pages of many concurrent jobs' frames and uploads, and
    the server's resident memory stays on a plateau above its baseline). A no-op where there is no glibc."""
    gc.collect()
    trim = getattr(_libc(), "malloc_trim", None)
    if trim is not None:
        trim(0)

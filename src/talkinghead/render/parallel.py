"""The warp renderer's frames made in worker processes (issue 18, item 3: rendering on both cores).

One frame of the warp renderer is about 6.5 ms of CPU at 256 px, most of it many small NumPy and OpenCV
calls that hold Python's GIL, so a second render *thread* only contends for the lock (BENCHMARKS.md: two
threads were slower than one). Worker processes each hold their own :class:`WarpRenderer` over the same
portrait and render the frames they are handed; the frames come back through a ring of shared-memory
slots (piping them back pickled cost more than rendering them), and the caller gets them in order, each
a copy, so the slots can be reused at once.

The frames are the ones the renderer in this process would make, byte for byte: the workers run the
same code on the same inputs (tested).

    with RenderWorkers(renderer, workers=2) as pool:   # processes start here
        for frame in pool.frames(vertices):             # vertices: iterable of [468, 2] image pixels
            ...

Memory: the ring holds at most :data:`RING_BYTES` of frames (at least two slots a worker), plus each worker's
renderer (about 100 MB of RSS: NumPy, OpenCV, SciPy). The workers end with the block, also on an error or
Ctrl-C, and the shared memory is released.
"""

from __future__ import annotations

import contextlib
import os
import queue
from collections.abc import Iterable, Iterator
from multiprocessing import shared_memory
from typing import Any

import numpy as np

from talkinghead.errors import TalkingHeadError
from talkinghead.processes import CONTEXT, start_process
from talkinghead.render.warp_renderer import WarpRenderer, WarpRendererConfig

#: Frames waiting in shared memory take at most this many bytes (at least two slots a worker).
RING_BYTES = 32 * 2**20
#: Vertices handed to a worker at once, at most (fewer messages; small enough to keep the workers even).
BATCH = 4
_POLL_S = 0.5  # how often a waiting reader checks that the workers are alive


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """NumPy's BLAS on one thread inside the block (process-wide). The renderer's small matrix products (the face
    model's projection, each frame's affine fits) gain nothing from a second BLAS thread, whose spinning between
    calls took 1.3 s of CPU over 750 frames from the encoder and the render worker (BENCHMARKS.md)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, user_api="blas"):
        yield


#: Clips of fewer frames are rendered in the calling process: a worker costs about 1.2 CPU-s to start, which a short
#: clip's motion does not hide (warm, 30 s of speech: 6.2 s 1.5 vs 1.8 s with a worker, 13-16 s equal, 20 s 4.3 vs
#: 4.1 s, 24 s 5.4 vs 5.1 s, 30 s 6.9 vs 6.0 s; BENCHMARKS.md).
PARALLEL_FROM = 400


def start_workers(frame_renderer: Any, portrait: Any, size: int, num_frames: int,
                  workers: int) -> RenderWorkers | None:
    """Render processes for ``portrait`` at ``size`` where they pay, else None (render in this process).

    They pay for the warp renderer (``frame_renderer.name == "warp"``) on a clip of at least
    :data:`PARALLEL_FROM` frames, with ``workers`` >= 1 on a machine of two cores or more and enough shared
    memory. Start them before the motion is sampled: they load while it runs. Close them (or use the
    result as a context manager) when the frames are written or the job fails.
    """
    n = min(workers, os.cpu_count() or 1)
    if getattr(frame_renderer, "name", None) != "warp" or num_frames < PARALLEL_FROM or n < 1 \
            or (os.cpu_count() or 1) < 2 or portrait.image is None:
        return None
    renderer = frame_renderer.renderer_for(portrait, size)
    slots, _ = ring_layout(frame_shape(renderer), n)
    if not shared_memory_fits(slots * int(np.prod(frame_shape(renderer)))):
        return None
    return RenderWorkers(renderer, n)


def frame_shape(renderer: WarpRenderer) -> tuple[int, int, int]:
    """``(H, W, 3)`` of ``renderer``'s frames: the photo with paste-back, else the crop."""
    if renderer.config.paste_back:
        h, w = renderer.image.shape[:2]
        return h, w, 3
    return renderer.config.size, renderer.config.size, 3


def ring_layout(shape: tuple[int, int, int], workers: int) -> tuple[int, int]:
    """``(slots, batch)`` of the ring for frames of ``shape``: at most :data:`RING_BYTES` but at least two slots a
    worker (at most 16), and batches of at most :data:`BATCH` frames, two a worker fitting in the ring."""
    slots = max(2 * workers, min(16 * workers, RING_BYTES // max(int(np.prod(shape)), 1)))
    return slots, max(1, min(BATCH, slots // (2 * workers)))


def shared_memory_fits(nbytes: int) -> bool:
    """Whether ``nbytes`` fit in the free shared memory, with room to spare (a container's /dev/shm can be
    64 MB, and writing past a full tmpfs kills the process instead of raising)."""
    try:
        st = os.statvfs("/dev/shm")
    except OSError:
        return False
    return st.f_bavail * st.f_frsize >= 2 * nbytes


class RenderWorkers:
    """``workers`` processes rendering frames of ``renderer``'s portrait (see the module docstring)."""

    def __init__(self, renderer: WarpRenderer, workers: int = 1, local: bool = True) -> None:
        if workers < 1:
            raise TalkingHeadError(f"The number of render workers must be at least 1, got {workers}.")
        self.renderer = renderer
        self.local = local
        self.shape = frame_shape(renderer)
        frame_bytes = int(np.prod(self.shape))
        self.slots, self.batch = ring_layout(self.shape, workers)
        if not shared_memory_fits(self.slots * frame_bytes):
            raise TalkingHeadError("There is not enough shared memory (/dev/shm) for the render workers.")
        shm = shared_memory.SharedMemory(create=True, size=self.slots * frame_bytes)
        self._shm: shared_memory.SharedMemory | None = shm
        self._ring: np.ndarray | None = np.ndarray((self.slots, *self.shape), np.uint8, buffer=shm.buf)
        self._tasks: Any = CONTEXT.Queue()
        self._done: Any = CONTEXT.Queue()
        spec = (renderer.image, renderer.source, renderer.config)
        self._procs = []
        try:
            for i in range(workers):
                self._procs.append(start_process(_work, (spec, shm.name, self.slots, self.shape, self._tasks,
                                                         self._done), f"talkinghead-render-{i}"))
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> RenderWorkers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def frames(self, vertices: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """Frames ``[H, W, 3] uint8`` for face ``vertices`` (each ``[468, 2]`` image pixels), in order.

        With ``local`` the calling thread draws every ``(workers + 1)``-th batch itself when the reader
        reaches it, while the workers draw theirs ahead into the ring."""
        source = iter(vertices)
        n, batch = len(self._procs), self.batch
        free = list(range(self.slots))
        ready: dict[int, int] = {}  # frame index -> slot, drawn by a worker
        local: dict[int, np.ndarray] = {}  # frame index -> vertices, to draw here
        sent = taken = block = 0
        exhausted = False
        while True:
            while not exhausted:  # hand out blocks of frames in order while there is room
                here = self.local and block % (n + 1) == 0
                if (here and len(local) >= 2 * batch) or (not here and len(free) < batch):
                    break
                items = []
                for _ in range(batch):
                    v = next(source, None)
                    if v is None:
                        exhausted = True
                        break
                    items.append((sent, np.asarray(v, np.float64)))
                    sent += 1
                if here:
                    local.update(items)
                elif items:
                    self._tasks.put([(i, free.pop(), v) for i, v in items])
                block += 1
            if taken == sent and exhausted:
                return
            if taken in local:
                frame = self.renderer.render_vertices(local.pop(taken))
            else:
                while taken not in ready:
                    index, slot = self._result()
                    ready[index] = slot
                slot = ready.pop(taken)
                assert self._ring is not None
                frame = self._ring[slot].copy()
                free.append(slot)
            taken += 1
            yield frame

    def _result(self) -> tuple[int, int]:
        while True:
            try:
                item = self._done.get(timeout=_POLL_S)
            except queue.Empty:
                dead = [p for p in self._procs if not p.is_alive()]
                if dead:
                    raise TalkingHeadError(
                        f"A render worker stopped unexpectedly (exit code {dead[0].exitcode}).") from None
                continue
            if isinstance(item, str):
                raise TalkingHeadError(f"Rendering failed in a worker process: {item}")
            return item  # type: ignore[no-any-return]

    def close(self) -> None:
        """Stop the workers and release the shared memory (idempotent)."""
        procs = getattr(self, "_procs", [])
        for _ in procs:
            try:
                self._tasks.put(None)
            except (OSError, ValueError):
                pass
        for proc in procs:
            proc.join(timeout=2.0)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=2.0)
        self._procs = []
        for q in (getattr(self, "_tasks", None), getattr(self, "_done", None)):
            if q is not None:
                q.cancel_join_thread()
                q.close()
        shm = getattr(self, "_shm", None)
        if shm is not None:
            self._ring = None  # drop the view before closing its buffer
            shm.close()
            shm.unlink()
            self._shm = None


def _work(spec: tuple[np.ndarray, np.ndarray, WarpRendererConfig], shm_name: str, slots: int,
          shape: tuple[int, int, int], tasks: Any, done: Any) -> None:
    """A worker: render each ``(index, slot, vertices)`` of the batches it takes into its shared-memory slot."""
    import cv2
    from threadpoolctl import threadpool_limits

    from talkinghead.allocator import keep_freed_blocks

    keep_freed_blocks()
    cv2.setNumThreads(1)  # one thread each for OpenCV and BLAS: the workers are the parallelism
    threadpool_limits(1, user_api="blas")
    shm = shared_memory.SharedMemory(name=shm_name)  # (registered with the parent's resource tracker: a no-op)
    try:
        ring: np.ndarray = np.ndarray((slots, *shape), np.uint8, buffer=shm.buf)
        image, source, config = spec
        renderer = WarpRenderer(image, source, config)
        while True:
            batch = tasks.get()
            if batch is None:
                break
            for index, slot, vertices in batch:
                ring[slot] = renderer.render_vertices(vertices)
                done.put((index, slot))
        del ring
    except KeyboardInterrupt:
        pass
    except BaseException as err:  # the reader raises it with one sentence
        done.put(f"{type(err).__name__}: {err}")
    finally:
        shm.close()

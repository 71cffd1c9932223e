"""Frames drawn in worker processes (talkinghead.render.parallel) are the renderer's own frames, in order; errors in
a worker reach the reader as one sentence; the workers and their shared memory are gone after the block."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from talkinghead.errors import TalkingHeadError
from talkinghead.face.model import ARKIT_LAYOUT
from talkinghead.render import parallel
from talkinghead.render.parallel import PARALLEL_FROM, RenderWorkers, one_blas_thread, start_workers
from talkinghead.render.warp_renderer import WarpFrameRenderer, WarpRendererConfig
from talkinghead.sequence import MotionSequence


@pytest.fixture(scope="module")
def astronaut_portrait() -> object:
    from skimage import data

    from talkinghead.generators import Portrait

    return Portrait.fit(data.astronaut())


def _motion(t: int, seed: int = 0) -> MotionSequence:
    rng = np.random.default_rng(seed)
    channels = ARKIT_LAYOUT.channels
    expression = np.zeros((t, ARKIT_LAYOUT.size), np.float32)
    expression[:, channels.index("jawOpen")] = rng.uniform(0.0, 0.9, t)  # painted interior, closing lips
    expression[:, channels.index("eyeBlinkLeft")] = rng.uniform(0.0, 1.0, t)
    pose = np.zeros((t, 6), np.float32)
    pose[:, 1] = np.linspace(-0.1, 0.1, t)
    return MotionSequence(expression, pose, ARKIT_LAYOUT, 25.0)


def _ring_exists(name: str) -> bool:
    """Whether the shared-memory segment ``name`` is still there (Linux keeps them under /dev/shm)."""
    return (Path("/dev/shm") / name.lstrip("/")).exists()


@pytest.mark.parametrize(("workers", "local"), [(1, True), (2, False)])
def test_worker_frames_are_the_renderers_frames_in_order(astronaut_portrait: object, workers: int,
                                                         local: bool) -> None:
    renderer = WarpFrameRenderer(WarpRendererConfig())
    motion = _motion(23)  # not a multiple of the batch: a short last batch
    expected = list(renderer.render(astronaut_portrait, motion, 128))
    with RenderWorkers(renderer.renderer_for(astronaut_portrait, 128), workers, local) as pool:
        got = list(renderer.render(astronaut_portrait, motion, 128, workers=pool))
        again = list(renderer.render(astronaut_portrait, _motion(5, seed=1), 128, workers=pool))  # reused
        procs = list(pool._procs)
        ring = pool._shm.name  # type: ignore[union-attr]
        assert _ring_exists(ring)
    assert len(got) == len(expected)
    for i, (a, b) in enumerate(zip(got, expected, strict=True)):
        np.testing.assert_array_equal(a, b, err_msg=f"frame {i}")
    np.testing.assert_array_equal(again[0], next(renderer.render(astronaut_portrait, _motion(5, seed=1), 128)))
    assert not any(p.is_alive() for p in procs)
    assert not _ring_exists(ring)  # the ring is unlinked


def test_a_reader_that_stops_early_leaves_nothing_behind(astronaut_portrait: object) -> None:
    renderer = WarpFrameRenderer(WarpRendererConfig())
    with RenderWorkers(renderer.renderer_for(astronaut_portrait, 128), 1) as pool:
        frames = renderer.render(astronaut_portrait, _motion(40), 128, workers=pool)
        first = next(frames)
        frames.close()  # type: ignore[attr-defined]
        procs = list(pool._procs)
        ring = pool._shm.name  # type: ignore[union-attr]
    assert first.shape == astronaut_portrait.image.shape  # type: ignore[attr-defined]
    assert not any(p.is_alive() for p in procs)
    assert not _ring_exists(ring)


def test_an_error_in_a_worker_is_one_sentence(astronaut_portrait: object) -> None:
    renderer = WarpFrameRenderer(WarpRendererConfig()).renderer_for(astronaut_portrait, 128)
    good = renderer.source
    bad = np.full_like(good, np.nan)
    with RenderWorkers(renderer, 1, local=False) as pool:
        with pytest.raises(TalkingHeadError, match="Rendering failed in a worker process: .*NaN"):
            list(pool.frames([good, bad, good]))


def test_workers_belong_to_their_renderer(astronaut_portrait: object) -> None:
    frame_renderer = WarpFrameRenderer(WarpRendererConfig())
    with RenderWorkers(frame_renderer.renderer_for(astronaut_portrait, 128), 1) as pool:
        other = frame_renderer.renderer_for(astronaut_portrait, 128)
        with pytest.raises(TalkingHeadError, match="another renderer"):
            next(other.render(_motion(2).expression, np.zeros((2, 6), np.float32), workers=pool))


def test_workers_start_only_where_they_pay(astronaut_portrait: object, monkeypatch: pytest.MonkeyPatch) -> None:
    warp = WarpFrameRenderer(WarpRendererConfig())
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert start_workers(warp, astronaut_portrait, 128, PARALLEL_FROM - 1, 1) is None  # a short clip
    assert start_workers(warp, astronaut_portrait, 128, PARALLEL_FROM, 0) is None  # none asked for
    assert start_workers(object(), astronaut_portrait, 128, PARALLEL_FROM, 1) is None  # not the warp renderer
    monkeypatch.setattr(parallel, "shared_memory_fits", lambda nbytes: False)
    assert start_workers(warp, astronaut_portrait, 128, PARALLEL_FROM, 1) is None  # a small /dev/shm
    monkeypatch.undo()
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    assert start_workers(warp, astronaut_portrait, 128, PARALLEL_FROM, 1) is None  # one core


def test_one_blas_thread_inside_the_block_only() -> None:
    from threadpoolctl import threadpool_info

    def blas_threads() -> list[int]:
        return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]

    before = blas_threads()
    with one_blas_thread():
        assert all(n == 1 for n in blas_threads())
    assert blas_threads() == before

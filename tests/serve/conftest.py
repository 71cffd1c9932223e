"""Fixtures of the server's tests: the warm engine (the shipped DreamTalk and warp, loaded once a session), short
speech, the astronaut portrait, and a server (queue + app) in a fresh folder, talked to through FastAPI's TestClient."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from talkinghead.serve.engine import Engine
from talkinghead.serve.jobs import JobQueue, QueueConfig
from talkinghead.serve.uploads import UploadLimits


@pytest.fixture(scope="session")
def engine() -> Engine:
    """The shipped default models, loaded once (the warm part of the server)."""
    return Engine()


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``portrait`` (the astronaut, PNG), ``speech`` (1.5 s of espeak speech, wav), ``style`` (a short mp4 with a
    moving square, no face), each made once."""
    from skimage import data

    from talkinghead.audio.tts import VoiceConfig, synthesize
    from talkinghead.io.audio import save_wav
    from talkinghead.io.image import save_image

    from media_helpers import make_video_file

    folder = tmp_path_factory.mktemp("serve_media")
    return {"portrait": save_image(folder / "astronaut.png", data.astronaut()),
            "speech": save_wav(folder / "speech.wav", synthesize("Hello from the server.", VoiceConfig()).audio),
            "style": make_video_file(folder / "style.mp4", num_frames=20)}


class Blocking:
    """An engine whose jobs wait for :attr:`release` (set it to let them run through the real engine)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.release = threading.Event()
        self.started = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)

    def run(self, *args: Any) -> Any:
        self.started.set()
        assert self.release.wait(60), "the test never released the job"
        return self.engine.run(*args)


@pytest.fixture
def blocking(engine: Engine) -> Iterator[Blocking]:
    runner = Blocking(engine)
    yield runner
    runner.release.set()


@pytest.fixture
def make_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Any]]:
    """``make_server(engine, queue=QueueConfig(...), limits=UploadLimits(...), page=False)`` -> (TestClient, JobQueue),
    the queue's folder under ``tmp_path/server``; every queue made is stopped at the end (and GRADIO_TEMP_DIR, which
    the page points into the server's folder, restored)."""
    from fastapi.testclient import TestClient

    from talkinghead.serve.http import create_app

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))  # remembered, and restored at the end
    made: list[JobQueue] = []

    def make(engine: Any, queue: QueueConfig | None = None, limits: UploadLimits | None = None,
             page: bool = False) -> tuple[Any, JobQueue]:
        root = tmp_path / f"server{len(made)}"
        root.mkdir()
        jobs = JobQueue(engine, queue or QueueConfig(), root).start()
        made.append(jobs)
        return TestClient(create_app(engine, jobs, limits or UploadLimits(), page=page)), jobs

    yield make
    for jobs in made:
        jobs.stop()

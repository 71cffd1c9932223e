"""The page's handler (no browser; tests/serve/test_serve_browser.py drives a real one): it submits through the
server's queue, follows the job's progress, returns the video and the motion files, and shows a refusal or the busy
answer as one sentence (status line, then Gradio's error)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from talkinghead.api import DEMO_TEXT
from talkinghead.serve.engine import Engine
from talkinghead.serve.jobs import JobQueue, QueueConfig
from talkinghead.serve.page import PageJobs, example_image
from talkinghead.serve.uploads import UploadLimits


def run(page: PageJobs, portrait: str | None, audio: str | None = None, text: str | None = None,
        **options: Any) -> tuple[list[tuple[Any, Any, str]], list[tuple[float, str]]]:
    """Every yield of the handler, and every progress report."""
    reports: list[tuple[float, str]] = []
    values = {"model": "dreamtalk", "renderer": "", "emotion": "", "intensity": 2, "style_video": None,
              "head_motion": 1.0, "steps": 0, "seed": 0, "size": 256, "cfg_scale": None, "transcript": "", **options}
    outputs = list(page.run(portrait, audio, text, values["model"], values["renderer"], values["emotion"],
                            values["intensity"], values["style_video"], values["head_motion"], values["steps"],
                            values["seed"], values["size"], values["cfg_scale"], values["transcript"],
                            lambda fraction, desc: reports.append((fraction, desc))))
    return outputs, reports


def test_the_example_runs_through_the_queue(engine: Engine, tmp_path: Path) -> None:
    jobs = JobQueue(engine, root=tmp_path / "root").start()
    try:
        page = PageJobs(engine, jobs, UploadLimits())
        outputs, reports = run(page, str(example_image(jobs.root)), text=DEMO_TEXT[:40], emotion="sad", intensity=3)
        video, motion, status = outputs[-1]
        assert Path(video).name == "video.mp4" and Path(video).is_file()
        assert [Path(m).name for m in motion] == ["motion.npz", "motion.csv"]
        assert status.startswith("Done: ") and "style: emotion:sad:3" in status
        assert [r[0] for r in reports] == sorted(r[0] for r in reports)
        assert all(o[2] for o in outputs)
    finally:
        jobs.stop()


class Recording:
    """An engine that remembers the requests it runs (and runs them)."""

    def __init__(self, engine: Engine) -> None:
        self.engine, self.requests = engine, []  # type: ignore[var-annotated]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)

    def run(self, request: Any, *args: Any) -> Any:
        self.requests.append(request)
        return self.engine.run(request, *args)


def test_the_transcript_field_reaches_the_generator(engine: Engine, media: dict[str, Path], tmp_path: Path) -> None:
    import gradio as gr

    recording = Recording(engine)
    jobs = JobQueue(recording, root=tmp_path / "root").start()  # type: ignore[arg-type]
    try:
        page = PageJobs(recording, jobs, UploadLimits())
        outputs, _ = run(page, str(media["portrait"]), audio=str(media["speech"]), transcript="Hold the line.")
        assert outputs[-1][2].startswith("Done: ")
        outputs, _ = run(page, str(media["portrait"]), audio=str(media["speech"]))
        assert [r.transcript for r in recording.requests] == ["Hold the line.", None]
        with pytest.raises(gr.Error) as info:
            run(page, str(media["portrait"]), audio=str(media["speech"]), transcript="x" * 2001)
        assert info.value.message.startswith("The transcript is 2001 characters long")
    finally:
        jobs.stop()


def test_busy_and_refusals_are_one_sentence(engine: Engine, media: dict[str, Path], blocking: Any,
                                            tmp_path: Path) -> None:
    import gradio as gr

    jobs = JobQueue(blocking, QueueConfig(max_waiting=1), root=tmp_path / "root").start()
    try:
        page = PageJobs(engine, jobs, UploadLimits())
        for portrait, text, sentence in ((str(media["speech"]), "Hi.", "The portrait is not an image"),
                                         (str(media["portrait"]), "x" * 2001, "The text is 2001 characters long"),
                                         (None, "Hi.", "Add a portrait first")):
            with pytest.raises(gr.Error) as info:
                outputs, _ = run(page, portrait, text=text)
            assert info.value.message.startswith(sentence)
        for _ in range(2):
            page.submit({"image": str(media["portrait"])}, {"text": "Hold the line."})
        assert blocking.started.wait(30)
        statuses: list[str] = []
        with pytest.raises(gr.Error) as info:
            for output in page.run(str(media["portrait"]), None, "Me too.", *[None] * 10):
                statuses.append(output[2])
        assert info.value.message == "The server is busy (1 job waiting); retry in a few seconds."
        assert statuses == [f"Refused: {info.value.message}"]
    finally:
        blocking.release.set()
        jobs.stop()

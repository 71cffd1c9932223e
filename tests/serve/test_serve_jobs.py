"""The job queue: a full line answers 503 with Retry-After, places in line, the per-job time limit (failed, one
sentence, nothing left), deleting waiting and running jobs, the clean-up of finished jobs, unexpected errors as one
sentence, shutdown removing the server's folder; the command's refusals and its clean stop on SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from test_serve_api import API, one_sentence, post, wait_done

from talkinghead.allocator import limit_malloc_arenas
from talkinghead.cli import main
from talkinghead.errors import TalkingHeadError
from talkinghead.serve.engine import Engine, Request
from talkinghead.serve.jobs import JOB_ID, Busy, JobQueue, QueueConfig, UnknownJob


def test_full_queue_answers_busy_with_retry_after(engine: Engine, make_server: Any, media: dict[str, Path],
                                                 blocking: Any) -> None:
    client, jobs = make_server(blocking, QueueConfig(max_waiting=2))
    image = {"image": ("p.png", media["portrait"].read_bytes())}
    ids = [post(client, image, text=f"Number {i}.").json()["id"] for i in range(3)]
    assert blocking.started.wait(30)
    response = post(client, image, text="One too many.")
    message = one_sentence(response, 503)
    assert message == "The server is busy (2 jobs waiting); retry in a few seconds."
    assert int(response.headers["retry-after"]) > 0
    states = [client.get(f"{API}/jobs/{i}").json() for i in ids]
    assert [(s["status"], s["position"]) for s in states] == [("running", 0), ("queued", 1), ("queued", 2)]
    assert client.get(f"{API}/health").json()["jobs"]["waiting"] == 2
    blocking.release.set()
    assert all(wait_done(client, i)["status"] == "done" for i in ids)
    assert post(client, image, text="Room again.").status_code == 202


def test_time_limit_fails_the_job_and_leaves_nothing(engine: Engine, make_server: Any,
                                                     media: dict[str, Path]) -> None:
    client, jobs = make_server(engine, QueueConfig(job_timeout=0.01))
    job_id = post(client, {"image": ("p", media["portrait"].read_bytes()),
                           "audio": ("s", media["speech"].read_bytes())}).json()["id"]
    status = wait_done(client, job_id)
    assert status["status"] == "failed" and status["error"] == "The job ran past its time limit of 0.01 s."
    assert list((jobs.root / "jobs" / job_id).iterdir()) == []  # no upload, no output, no temporary
    one_sentence(client.get(f"{API}/jobs/{job_id}/video.mp4"), 404)


def test_time_limit_in_the_middle_of_rendering(engine: Engine, media: dict[str, Path], tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The clock jumps past the deadline half-way through the frames: the next frame stops the job, the pipeline
    unwinds, and the job's folder holds nothing (no video, no temporary)."""
    import types

    from talkinghead.serve import engine as engine_module

    now = [1000.0]
    monkeypatch.setattr(engine_module, "time", types.SimpleNamespace(monotonic=lambda: now[0]))
    seen: list[tuple[str, float]] = []

    def on_progress(stage: str, fraction: float) -> None:
        seen.append((stage, fraction))
        if stage == "rendering" and fraction > 0.6:
            now[0] += 301.0

    request = Request(media["portrait"], media["speech"])
    with pytest.raises(TalkingHeadError) as info:
        engine.run(request, tmp_path, on_progress, deadline=1300.0)
    assert str(info.value) == "The job ran past its time limit of 300 s."
    assert seen[-1][0] == "rendering" and list(tmp_path.iterdir()) == []


def test_deleting_waiting_and_running_jobs(engine: Engine, make_server: Any, media: dict[str, Path],
                                           blocking: Any) -> None:
    client, jobs = make_server(blocking)
    image = {"image": ("p", media["portrait"].read_bytes())}
    running, waiting = (post(client, image, text="Hello.").json()["id"] for _ in range(2))
    assert blocking.started.wait(30)
    assert client.delete(f"{API}/jobs/{waiting}").status_code == 200
    assert not (jobs.root / "jobs" / waiting).exists()
    assert client.delete(f"{API}/jobs/{running}").status_code == 200
    one_sentence(client.get(f"{API}/jobs/{running}"), 404)
    blocking.release.set()  # the running job stops at its first stage and its folder goes
    end = time.monotonic() + 30
    while (jobs.root / "jobs" / running).exists() and time.monotonic() < end:
        time.sleep(0.05)
    assert not (jobs.root / "jobs" / running).exists()
    assert jobs.counts() == {"waiting": 0, "running": 0, "finished": 0, "max_waiting": 8, "workers": 1}


class Scripted:
    """A runner that does what a test says: ``behave(folder)`` inside the job."""

    def __init__(self, behave: Any) -> None:
        self.behave = behave

    def run(self, request: Any, folder: Path, on_progress: Any, deadline: float) -> Any:
        on_progress("loading", 0.0)
        return self.behave(folder)


class Made:
    files = ("video.mp4",)


def test_unexpected_errors_are_one_sentence(tmp_path: Path) -> None:
    def crash(folder: Path) -> Any:
        raise RuntimeError("tensor sizes do not match\nat line 3")

    jobs = JobQueue(Scripted(crash), root=tmp_path / "root").start()
    try:
        job_id = jobs.submit(lambda folder: "request")
        while jobs.status(job_id).state not in ("done", "failed"):
            time.sleep(0.01)
        assert jobs.status(job_id).error == ("The job failed unexpectedly (RuntimeError); the server's log has the "
                                             "details.")
    finally:
        jobs.stop()


def test_ids_prune_and_shutdown(tmp_path: Path) -> None:
    gate = threading.Event()

    def finish(folder: Path) -> Any:
        gate.wait(30)
        (folder / "video.mp4").write_bytes(b"x")
        return Made()

    root = tmp_path / "root"
    jobs = JobQueue(Scripted(finish), QueueConfig(keep_minutes=1), root=root).start()
    first = jobs.submit(lambda folder: (folder / "portrait.png").write_bytes(b"p"))
    assert JOB_ID.fullmatch(first)
    for bad in ("", "..", first.upper(), first + "0", "../" + first, first[:-1] + "g"):
        with pytest.raises(UnknownJob):
            jobs.status(bad)
    gate.set()
    while jobs.status(first).state != "done":
        time.sleep(0.01)
    assert jobs.output(first, "video.mp4") == root / "jobs" / first / "video.mp4"
    assert jobs.prune() == 0
    assert jobs.prune(now=time.monotonic() + 61) == 1
    assert not (root / "jobs" / first).exists()
    with pytest.raises(UnknownJob):
        jobs.status(first)
    gate.clear()
    running, waiting = jobs.submit(lambda f: None), jobs.submit(lambda f: None)
    gate.set()
    jobs.stop()
    assert not root.exists()
    assert jobs.status(waiting).error in (None, "The server shut down before the job ran.")
    with pytest.raises(Busy):
        jobs.submit(lambda f: None)
    assert running


def test_a_refused_build_removes_its_folder(tmp_path: Path) -> None:
    jobs = JobQueue(Scripted(lambda f: Made()), root=tmp_path / "root")

    def refuse(folder: Path) -> Request:
        (folder / "portrait.png").write_bytes(b"half")
        raise TalkingHeadError("The portrait is not an image.")

    with pytest.raises(TalkingHeadError):
        jobs.submit(refuse)
    assert list((tmp_path / "root" / "jobs").iterdir()) == []
    jobs.stop()


# ---------------------------------------------------------------------------------------------- the command

def test_command_refusals_are_one_sentence(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["serve", "--port", "70000"], ["serve", "--queue", "-1"], ["serve", "--job-timeout", "0"],
                 ["serve", "--workers", "0"], ["serve", "--max-audio-seconds", "nan"]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and "\n" not in err
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    try:
        assert main(["serve", "--port", str(taken.getsockname()[1])]) == 2
        assert "choose another --port" in capsys.readouterr().err
    finally:
        taken.close()


@pytest.mark.slow
def test_serve_starts_answers_and_stops_cleanly_on_sigterm(tmp_path: Path, media: dict[str, Path]) -> None:
    import httpx

    env = {**os.environ, "TMPDIR": str(tmp_path), "TALKINGHEAD_QUIET": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "talkinghead", "serve", "--port", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        url = re.search(r"(http://\S+?/) ", line)
        assert url is not None, line + (proc.stderr.read() if proc.stderr else "")
        base = url.group(1)
        assert httpx.get(base + "api/v1/health").json()["status"] == "ok"
        folders = list(tmp_path.glob("talkinghead-serve-*"))
        assert len(folders) == 1 and (folders[0] / "examples" / "astronaut.png").is_file()
        with open(media["portrait"], "rb") as image:
            job = httpx.post(base + "api/v1/jobs", files={"image": image}, data={"text": "Hi."}).json()
        assert httpx.get(base + job["status_url"].lstrip("/")).status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 143
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert list(tmp_path.glob("talkinghead-serve-*")) == []


def test_the_server_can_limit_its_malloc_arenas() -> None:
    """glibc takes the arena limit (the server sets 2 at start-up); elsewhere it is a no-op that says so."""
    import platform

    glibc = platform.libc_ver()[0] == "glibc"
    assert limit_malloc_arenas(16) is glibc            # 16: glibc's own default on two cores, for this process

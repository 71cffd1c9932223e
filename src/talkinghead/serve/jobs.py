"""The server's job queue: a bounded line of waiting jobs, worker threads that run them, and each job's folder.

- The server owns one folder (``tempfile.mkdtemp``, made when the queue is made, removed by :meth:`JobQueue.stop`);
  every job gets ``jobs/<id>/`` inside it, its uploads in ``jobs/<id>/inputs/`` (removed once the job has run, so
  a finished job's folder holds its outputs only, and a failed one's nothing).
- Job ids are 32 random hex digits (``secrets.token_hex(16)``); an id from a request is matched against
  :data:`JOB_ID` before any lookup, and an output is looked up by a fixed name, so nothing a client sends becomes
  part of a path.
- At most ``max_waiting`` jobs wait beyond those running; one more is refused with :class:`Busy` (HTTP 503 with
  Retry-After). ``workers`` threads run jobs one each (default 1: the models use the CPU fully).
- A job is ``queued`` (with its place in line, 1 = next), ``running`` (its stage and progress 0..1), then ``done``
  or ``failed`` (one sentence). Finished jobs are removed after ``keep_minutes``; :meth:`JobQueue.delete` removes
  one at once (a running job is stopped at its next frame).

The queue knows nothing of models: it calls ``runner.run(request, folder, on_progress, deadline)``
(:meth:`talkinghead.serve.engine.Engine.run`), with ``deadline`` ``job_timeout`` seconds after the job starts.
"""

from __future__ import annotations

import logging
import re
import secrets
import shutil
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Protocol

from talkinghead.allocator import give_back_memory
from talkinghead.config import AT_LEAST_ONE, NON_NEGATIVE, POSITIVE, Config
from talkinghead.errors import TalkingHeadError
from talkinghead.log import log_event

JOB_ID = re.compile(r"[0-9a-f]{32}")
STATES = ("queued", "running", "done", "failed")
RETRY_AFTER_S = 5

logger = logging.getLogger("talkinghead.serve")


@dataclass(frozen=True)
class QueueConfig(Config):
    """``workers``: jobs run at once; ``max_waiting``: jobs that may wait beyond them; ``keep_minutes``: how long a
    finished job's outputs stay; ``job_timeout``: seconds a job may run (checked at each frame)."""

    workers: Annotated[int, AT_LEAST_ONE] = 1
    max_waiting: Annotated[int, NON_NEGATIVE] = 8
    keep_minutes: Annotated[float, POSITIVE] = 30.0
    job_timeout: Annotated[float, POSITIVE] = 300.0


class Busy(TalkingHeadError):
    """The queue is full: HTTP 503 with ``Retry-After`` (:attr:`retry_after` seconds)."""

    status = 503
    retry_after = RETRY_AFTER_S

    def __init__(self, waiting: int) -> None:
        jobs = "job" if waiting == 1 else "jobs"
        super().__init__(f"The server is busy ({waiting} {jobs} waiting); retry in a few seconds.")


class UnknownJob(TalkingHeadError):
    """No job of that id (never made, removed, or not an id at all): HTTP 404."""

    status = 404


class NotReady(TalkingHeadError):
    """The job has no such output (yet): HTTP 409 while it waits or runs, 404 when it failed or never makes it."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class Runner(Protocol):
    """What runs a job (:class:`talkinghead.serve.engine.Engine`)."""

    def run(self, request: Any, folder: Path, on_progress: Callable[[str, float], None], deadline: float) -> Any: ...


@dataclass(frozen=True)
class JobStatus:
    """A job as a client sees it: ``state`` one of :data:`STATES`; ``stage`` (``queued``, ``loading``, ``motion``,
    ``rendering``, ``encoding``, ``done``, ``failed``); ``progress`` 0..1; ``position`` in line (1 = next; 0 when not
    waiting); ``error`` one sentence when failed; ``outcome`` the runner's result when done (an
    :class:`~talkinghead.serve.engine.Outcome`); ``seconds`` since it started running (or waiting, while queued)."""

    id: str
    state: str
    stage: str
    progress: float
    position: int
    error: str | None
    outcome: Any
    seconds: float


class Job:
    """One job's record (changed under the queue's lock only)."""

    def __init__(self, job_id: str, folder: Path) -> None:
        self.id = job_id
        self.folder = folder
        self.request: Any = None
        self.state = "reserved"  # until its request is accepted; not visible to clients
        self.stage = "queued"
        self.progress = 0.0
        self.error: str | None = None
        self.outcome: Any = None
        self.created = time.monotonic()
        self.started: float | None = None
        self.finished: float | None = None
        self.stop_reason: str | None = None  # set to stop a running job at its next frame
        self.deleted = False

    @property
    def inputs(self) -> Path:
        return self.folder / "inputs"


class JobQueue:
    """The line of jobs and its workers; ``root`` is the server's own folder (made here unless given)."""

    def __init__(self, runner: Runner, config: QueueConfig | None = None, root: Path | None = None) -> None:
        self.runner = runner
        self.config = config or QueueConfig()
        self.root = Path(tempfile.mkdtemp(prefix="talkinghead-serve-")) if root is None else Path(root)
        self._jobs: dict[str, Job] = {}
        self._waiting: deque[Job] = deque()
        self._reserved = 0
        self._running = 0
        self._cond = threading.Condition()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------------------------------------ life

    def start(self) -> JobQueue:
        """Start the workers and the clean-up of finished jobs."""
        for i in range(self.config.workers):
            self._threads.append(threading.Thread(target=self._work, name=f"talkinghead-job-{i}", daemon=True))
        self._threads.append(threading.Thread(target=self._sweep, name="talkinghead-jobs-sweep", daemon=True))
        for thread in self._threads:
            thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """:meth:`halt`, wait up to ``timeout`` seconds for the workers, and remove the server's folder."""
        self.halt()
        end = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(end - time.monotonic(), 0.0))
        shutil.rmtree(self.root, ignore_errors=True)

    def halt(self) -> None:
        """Refuse new jobs, fail the waiting ones and stop the running ones at their next frame."""
        with self._cond:
            self._stopping.set()
            for job in self._waiting:
                job.state, job.stage, job.error = "failed", "failed", "The server shut down before the job ran."
            self._waiting.clear()
            for job in self._jobs.values():
                if job.state == "running":
                    job.stop_reason = "The server shut down while the job ran."
            self._cond.notify_all()

    # ------------------------------------------------------------------------------------------ jobs

    def check_room(self) -> None:
        """:class:`Busy` when a new job would be refused (asked before a request's body is read)."""
        with self._cond:
            self._room()

    def _room(self) -> None:
        waiting = len(self._waiting) + self._reserved
        if self._stopping.is_set() or waiting >= self.config.max_waiting + max(self.config.workers - self._running, 0):
            raise Busy(waiting)

    def submit(self, build: Callable[[Path], Any]) -> str:
        """A new job: refused with :class:`Busy` when the line is full; else ``build(inputs_folder)`` stores and
        checks the uploads there and returns the request (its error removes the job and passes on). Its id."""
        with self._cond:
            self._room()
            job_id = secrets.token_hex(16)
            job = Job(job_id, self.root / "jobs" / job_id)
            self._reserved += 1
        try:
            job.inputs.mkdir(parents=True)
            request = build(job.inputs)
        except BaseException:
            with self._cond:
                self._reserved -= 1
            shutil.rmtree(job.folder, ignore_errors=True)
            raise
        with self._cond:
            self._reserved -= 1
            if self._stopping.is_set():
                shutil.rmtree(job.folder, ignore_errors=True)
                raise Busy(len(self._waiting))
            job.request, job.state = request, "queued"
            self._jobs[job_id] = job
            self._waiting.append(job)
            self._cond.notify_all()
        log_event("job queued", id=job_id, waiting=len(self._waiting))
        return job_id

    def _find(self, job_id: str) -> Job:
        """The job of a client's id (looked up only when it is an id); one sentence when there is none."""
        job = self._jobs.get(job_id) if JOB_ID.fullmatch(job_id) else None
        if job is None:
            raise UnknownJob(f"There is no job with this id (finished jobs are kept for "
                             f"{self.config.keep_minutes:g} minutes).")
        return job

    def status(self, job_id: str) -> JobStatus:
        with self._cond:
            job = self._find(job_id)
            position = next((i for i, j in enumerate(self._waiting, 1) if j is job), 0)
            began = job.started if job.started is not None else job.created
            seconds = (job.finished if job.finished is not None else time.monotonic()) - began
            return JobStatus(job.id, job.state, job.stage, round(job.progress, 4), position, job.error, job.outcome,
                             round(seconds, 2))

    def output(self, job_id: str, name: str) -> Path:
        """The path of a finished job's output ``name`` (one of the names its outcome lists; the path is made from
        that list, never from ``name``)."""
        with self._cond:
            job = self._find(job_id)
            if job.state in ("queued", "running"):
                raise NotReady(f"The job is not finished yet ({job.state}, {job.progress:.0%}); ask again when its "
                               "status is done.", 409)
            files = job.outcome.files if job.state == "done" else ()
            known = next((f for f in files if f == name), None)
            if known is None:
                why = "it failed" if job.state == "failed" else "it made no such file"
                raise NotReady(f"The job has no output called '{name[:40]}' ({why}).", 404)
            return job.folder / known

    def delete(self, job_id: str) -> None:
        """Remove a job: a waiting one leaves the line, a running one stops at its next frame; its folder goes."""
        with self._cond:
            job = self._find(job_id)
            del self._jobs[job_id]
            job.deleted = True
            if job in self._waiting:
                self._waiting.remove(job)
            if job.state == "running":
                job.stop_reason = "The job was deleted."
                return  # the worker removes the folder when the job has stopped
        shutil.rmtree(job.folder, ignore_errors=True)

    def counts(self) -> dict[str, int]:
        """Jobs waiting, running and kept (finished), and the limits."""
        with self._cond:
            finished = sum(j.state in ("done", "failed") for j in self._jobs.values())
            return {"waiting": len(self._waiting), "running": self._running, "finished": finished,
                    "max_waiting": self.config.max_waiting, "workers": self.config.workers}

    # ---------------------------------------------------------------------------------------- workers

    def _work(self) -> None:
        while True:
            with self._cond:
                while not self._waiting and not self._stopping.is_set():
                    self._cond.wait()
                if self._stopping.is_set():
                    return
                job = self._waiting.popleft()
                job.state, job.stage, job.started = "running", "loading", time.monotonic()
                self._running += 1
            try:
                self._run(job)
            finally:
                with self._cond:
                    self._running -= 1
                    self._cond.notify_all()
                    idle = self._running == 0 and not self._waiting
                if idle:
                    give_back_memory()

    def _run(self, job: Job) -> None:
        def on_progress(stage: str, fraction: float) -> None:
            if job.stop_reason is not None:
                raise TalkingHeadError(job.stop_reason)
            with self._cond:
                job.stage, job.progress = stage, max(job.progress, min(max(fraction, 0.0), 1.0))

        deadline = time.monotonic() + self.config.job_timeout
        outcome: Any = None
        error: str | None = None
        try:
            outcome = self.runner.run(job.request, job.folder, on_progress, deadline)
        except TalkingHeadError as err:
            error = str(err)
        except Exception as err:  # a bug, not a bad request: the sentence says so, the log has the traceback
            logger.exception("job %s failed", job.id)
            error = f"The job failed unexpectedly ({type(err).__name__}); the server's log has the details."
        shutil.rmtree(job.inputs, ignore_errors=True)
        with self._cond:
            job.finished = time.monotonic()
            if error is None:
                job.state, job.stage, job.progress, job.outcome = "done", "done", 1.0, outcome
            else:
                job.state, job.stage, job.error = "failed", "failed", error
            deleted = job.deleted
        if deleted:
            shutil.rmtree(job.folder, ignore_errors=True)
        log_event(f"job {job.state}", id=job.id, seconds=round(job.finished - (job.started or job.finished), 2),
                  error=error)

    def prune(self, now: float | None = None) -> int:
        """Remove the jobs that finished more than ``keep_minutes`` ago (their records and folders); how many."""
        limit = (time.monotonic() if now is None else now) - 60.0 * self.config.keep_minutes
        with self._cond:
            old = [j for j in self._jobs.values() if j.finished is not None and j.finished < limit]
            for job in old:
                del self._jobs[job.id]
        for job in old:
            shutil.rmtree(job.folder, ignore_errors=True)
        return len(old)

    def _sweep(self) -> None:
        interval = min(60.0, 60.0 * self.config.keep_minutes / 4)
        while not self._stopping.wait(interval):
            self.prune()

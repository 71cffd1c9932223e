"""The HTTP API (FastAPI) under ``/api/v1``, with the Gradio page mounted at ``/``: one process serves both.

| route | answer |
|---|---|
| ``GET /api/v1/health`` | ``{"status": "ok", "version", "model", "renderer", "jobs": {waiting, running, ...}}`` |
| ``GET /api/v1/models`` | the registered generators and renderers (``api.models()``), the defaults |
| ``POST /api/v1/jobs`` | a multipart form (:data:`~talkinghead.serve.uploads.FIELDS`) -> 202 ``{"id", "status_url"}`` |
| ``GET /api/v1/jobs/{id}`` | the job's status; when done, ``result`` with the URLs of its files |
| ``GET /api/v1/jobs/{id}/video.mp4`` (``motion.npz``, ``motion.csv``) | a finished job's file |
| ``DELETE /api/v1/jobs/{id}`` | removes the job (a running one stops at its next frame) |

Every refusal is JSON ``{"error": "<one sentence>"}`` with its status: 400 (a form that cannot be read), 404 (no such
job or route), 409 (not finished yet), 413 (above a limit), 415 (not an image / audio / video), 422 (a bad option),
503 with ``Retry-After`` (the queue is full); never a traceback (500 says only that the log has the details). The
request body is counted as it arrives, so an oversized upload is refused without being held whole.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import uvicorn
from fastapi import APIRouter, FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request

from talkinghead import __version__
from talkinghead.allocator import limit_malloc_arenas
from talkinghead.errors import TalkingHeadError, first_line
from talkinghead.serve.jobs import Busy, JobQueue, JobStatus
from talkinghead.serve.uploads import FIELDS, FILE_FIELDS, MB, Refusal, Submission, UploadLimits, accept

API = "/api/v1"
RESULT_KEYS = {"video.mp4": "video", "motion.npz": "motion_npz", "motion.csv": "motion_csv"}
MEDIA_TYPES = {"video.mp4": "video/mp4", "motion.npz": "application/octet-stream", "motion.csv": "text/csv"}
ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]

logger = logging.getLogger("talkinghead.serve")


def error(message: str, status: int, headers: dict[str, str] | None = None) -> JSONResponse:
    """``{"error": message}`` with ``status``."""
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _sentence(text: str) -> str:
    text = " ".join(str(text).split()) or "The request was refused"
    return text if text[-1] in ".!?" else text + "."


def status_json(status: JobStatus) -> dict[str, Any]:
    """A job's status as the API answers it (``result`` when done: the files' URLs, frames, seconds, style)."""
    answer: dict[str, Any] = {"id": status.id, "status": status.state, "stage": status.stage,
                              "progress": status.progress, "position": status.position, "error": status.error,
                              "seconds": status.seconds}
    if status.state == "done":
        out = status.outcome
        answer["result"] = {**{RESULT_KEYS[name]: f"{API}/jobs/{status.id}/{name}" for name in out.files},
                            "frames": out.num_frames, "audio_seconds": out.seconds, "style": out.style_source,
                            "timings": out.timings}
    return answer


def _limited(receive: Callable[[], Awaitable[Any]], limit: int) -> Callable[[], Awaitable[Any]]:
    """``receive`` that refuses (413) once the body has passed ``limit`` bytes."""
    seen = 0

    async def wrapped() -> Any:
        nonlocal seen
        message = await receive()
        if message.get("type") == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise Refusal(f"The request is larger than the limit of {limit / MB:.0f} MB.", 413)
        return message

    return wrapped


async def read_form(request: Request, limits: UploadLimits) -> tuple[Submission, Any]:
    """The multipart form of a job request as a :class:`Submission` (and the form, to close), its size limited."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limits.request_bytes:
        raise Refusal(f"The request is larger than the limit of {limits.request_bytes / MB:.0f} MB.", 413)
    if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        raise Refusal("Send the job as a multipart form (multipart/form-data) with the portrait in the field "
                      "'image'.", 415)
    limited = Request(request.scope, _limited(request.receive, limits.request_bytes))
    try:
        form = await limited.form(max_files=len(FILE_FIELDS), max_fields=len(FIELDS),
                                  max_part_size=max(64 * 1024, 4 * limits.text_chars + 1024))  # UTF-8: 4 bytes a char
    except StarletteHTTPException as err:
        raise Refusal(f"The form could not be read: {_sentence(str(err.detail)).rstrip('.')}.", 400) from err
    submission = Submission()
    for name in {key for key, _ in form.multi_items()}:
        values = form.getlist(name)
        if len(values) > 1:
            await form.close()
            raise Refusal(f"The field '{name[:40]}' is given {len(values)} times; give it once.")
        value = values[0]
        if isinstance(value, UploadFile):
            submission.files[name] = value.file
        else:
            submission.fields[name] = value
    return submission, form


def build_api(engine: Any, jobs: JobQueue, limits: UploadLimits) -> APIRouter:
    """The ``/api/v1`` routes."""
    api = APIRouter(prefix=API)

    @api.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok", "version": __version__, "model": engine.generator.name,
                "renderer": engine.renderer.name, "jobs": jobs.counts()}

    @api.get("/models")
    def models() -> dict[str, Any]:
        return {"models": engine.models, "default_model": engine.generator.name,
                "default_renderer": engine.renderer.name}

    @api.post("/jobs", status_code=202)
    async def create_job(request: Request) -> JSONResponse:
        jobs.check_room()
        submission, form = await read_form(request, limits)
        try:
            job_id = await run_in_threadpool(jobs.submit, lambda folder: accept(submission, folder, limits, engine))
        finally:
            await form.close()
        url = f"{API}/jobs/{job_id}"
        return JSONResponse({"id": job_id, "status_url": url}, status_code=202, headers={"Location": url})

    @api.get("/jobs/{job_id}")
    def job_status(job_id: str) -> dict[str, Any]:
        return status_json(jobs.status(job_id))

    @api.get("/jobs/{job_id}/{name}")
    def job_file(job_id: str, name: str) -> FileResponse:
        path = jobs.output(job_id, name)
        return FileResponse(path, media_type=MEDIA_TYPES.get(path.name), filename=path.name)

    @api.delete("/jobs/{job_id}")
    def delete_job(job_id: str) -> dict[str, Any]:
        jobs.delete(job_id)
        return {"id": job_id, "deleted": True}

    return api


async def unknown_route(request: Request) -> JSONResponse:
    """Any other path under ``/api``: 404 in the API's form (the page would answer it otherwise)."""
    return error(f"There is no API route {request.method} {request.url.path[:80]}; see {API}/docs.", 404)


def add_error_handlers(app: FastAPI) -> None:
    """Every error as ``{"error": "<one sentence>"}`` with its status."""

    @app.exception_handler(Busy)
    async def busy(request: Request, err: Busy) -> JSONResponse:
        return error(str(err), 503, {"Retry-After": str(err.retry_after)})

    @app.exception_handler(TalkingHeadError)
    async def refused(request: Request, err: TalkingHeadError) -> JSONResponse:
        return error(str(err), int(getattr(err, "status", 422)))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, err: StarletteHTTPException) -> JSONResponse:
        return error(_sentence(str(err.detail)), err.status_code, dict(err.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, err: RequestValidationError) -> JSONResponse:
        problems = err.errors()
        where = ".".join(str(p) for p in problems[0].get("loc", ())) if problems else "request"
        detail = problems[0].get("msg", "invalid") if problems else "invalid"
        return error(_sentence(f"The {where} is not valid: {detail}"), 422)

    @app.exception_handler(Exception)
    async def failed(request: Request, err: Exception) -> JSONResponse:
        logger.error("%s %s failed: %s", request.method, request.url.path, first_line(err), exc_info=err)
        return error(f"The server failed unexpectedly ({type(err).__name__}); its log has the details.", 500)


def create_app(engine: Any, jobs: JobQueue, limits: UploadLimits | None = None, *, page: bool = True,
               routers: Sequence[APIRouter] = ()) -> FastAPI:
    """The server's app: the API, then ``routers`` (e.g. the live page's), then the Gradio page at ``/`` (unless
    ``page`` is False). ``app.state`` holds ``engine``, ``jobs`` and ``limits``."""
    limits = limits or UploadLimits()
    app = FastAPI(title="talkinghead", version=__version__, docs_url=f"{API}/docs", redoc_url=None,
                  openapi_url=f"{API}/openapi.json")
    app.state.engine, app.state.jobs, app.state.limits = engine, jobs, limits
    add_error_handlers(app)
    app.include_router(build_api(engine, jobs, limits))
    for router in routers:
        app.include_router(router)
    app.add_api_route("/api/{rest:path}", unknown_route, methods=ALL_METHODS, include_in_schema=False)
    if page:
        from talkinghead.serve.page import mount_page

        app = mount_page(app, engine, jobs, limits)
    return app


# ------------------------------------------------------------------------------------------------ running

LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


def is_local(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only."""
    import ipaddress

    if host in LOCAL_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def listen(host: str, port: int) -> Any:
    """A listening socket on ``host:port`` (one sentence when the address is taken or unknown)."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as err:
        raise TalkingHeadError(f"Cannot listen on {host}: {err.strerror}.") from err
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError as err:
        sock.close()
        raise TalkingHeadError(f"Cannot listen on {host}:{port} ({err.strerror}); choose another --port.") from err
    sock.set_inheritable(True)
    return sock


def run_server(host: str, port: int, engine_config: Any, queue_config: Any, limits: UploadLimits,
               verbose: bool = False, live_sessions: int = 1) -> int:
    """``talkinghead serve``: listen, load the models, serve until Ctrl-C or SIGTERM, then stop the jobs and remove
    the server's folder. Prints the URL once it answers; a host other than this machine's gets one warning line.
    ``live_sessions``: live streams at a time on the ``/live`` page's WebSocket (:mod:`talkinghead.serve.live`)."""
    import sys

    from talkinghead.serve.engine import Engine
    from talkinghead.serve.live import live_router

    limit_malloc_arenas()
    sock = listen(host, port)
    if not is_local(host):
        print(f"warning: listening on {host}: anyone who can reach this machine can use the page and the API "
              "(there is no login).", file=sys.stderr, flush=True)
    bound = sock.getsockname()
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{bound[1]}/"
    jobs: JobQueue | None = None
    try:
        engine = Engine(engine_config)
        jobs = JobQueue(engine, queue_config).start()
        app = create_app(engine, jobs, limits, routers=[live_router(engine, live_sessions)])
        config = uvicorn.Config(app, log_level="info" if verbose else "warning", access_log=verbose,
                                timeout_graceful_shutdown=5)
        Server(config, url, jobs).run(sockets=[sock])
    finally:
        if jobs is not None:
            jobs.stop()
        sock.close()
    return 0


class Server(uvicorn.Server):
    """uvicorn's server that prints the URL once it listens, and halts the jobs as soon as it is asked to stop (so
    the page's requests waiting on a job end instead of holding the shutdown)."""

    def __init__(self, config: uvicorn.Config, url: str, jobs: JobQueue) -> None:
        super().__init__(config)
        self.url, self.jobs = url, jobs

    async def startup(self, sockets: Any = None) -> None:
        await super().startup(sockets)
        if self.started:
            print(f"talkinghead serve: {self.url} (API: {self.url}api/v1, docs: {self.url}api/v1/docs); "
                  "Ctrl-C stops.", flush=True)

    async def shutdown(self, sockets: Any = None) -> None:
        await run_in_threadpool(self.jobs.halt)
        await super().shutdown(sockets)

"""Live streaming: speech over a WebSocket in, talking-head frames out as they are made (docs/streaming.md).

- ``POST /api/v1/live``: a multipart form with ``image`` (the portrait) and options (``emotion``, ``intensity``,
  ``seed``, ``head_motion``, ``size``, ``steps``, ``cfg_scale``, ``hop``, ``lookahead``) -> 201 ``{"id", "websocket",
  "sample_rate", "fps", "latency_seconds", "style"}`` once the portrait is fitted and the style chosen;
- ``WebSocket /api/v1/live/{id}``: the client sends binary messages of little-endian int16 PCM, 16 kHz mono, of any
  size, then the text ``end``; the server sends each frame as a binary message (4-byte big-endian frame index +
  JPEG bytes) as soon as it is made, then the text ``{"event": "end", "frames": N}``;
- ``GET /live``: the page: choose a portrait, speak into the microphone or play an audio file, watch the face.

Refusals are one sentence, ``{"error": "..."}``: as the POST's JSON answer with its status (413 too large, 415 not an
image, 422 a bad option or no face, 503 busy with ``Retry-After``), and on the WebSocket as a text message followed
by the socket closing (an unknown or used session id, a text message other than ``end``, an odd number of audio
bytes, no message for ``idle_seconds``, more audio than ``max_seconds``, the server falling ``max_backlog_seconds``
behind). Only ``max_sessions`` sessions exist at a time (default 1, the models are shared and the CPU is small);
a session not connected within ``connect_seconds`` expires, and a session streams once.

Inside a session, the motion (:meth:`talkinghead.stream.Streamer.advance`) and the frames (rendering and JPEG) run
in two threads of their own, so one chunk's frames are drawn while the next chunk's motion is sampled.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import math
import struct
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from fastapi import APIRouter, Request, WebSocket
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.websockets import WebSocketDisconnect

from talkinghead.config import Config
from talkinghead.errors import TalkingHeadError, first_line
from talkinghead.stream import SAMPLE_RATE, StreamConfig, Streamer

LIVE = "/api/v1/live"
PAGE = Path(__file__).with_name("live.html")
OPTIONS = {"emotion": str, "intensity": int, "seed": int, "head_motion": float, "size": int, "steps": int,
           "cfg_scale": float, "hop": int, "lookahead": int}
MB = 1024 * 1024

logger = logging.getLogger("talkinghead.serve")


@dataclass(frozen=True)
class LiveConfig(Config):
    """Limits of the live sessions: how many at a time (``max_sessions``), how long a session waits for its
    WebSocket (``connect_seconds``) and for the next message (``idle_seconds``), the longest stream
    (``max_seconds`` of audio), how far the server may fall behind the audio before it gives up
    (``max_backlog_seconds``), the largest portrait (``image_mb``) and the frames' JPEG quality."""

    max_sessions: int = 1
    connect_seconds: float = 60.0
    idle_seconds: float = 30.0
    max_seconds: float = 1800.0
    max_backlog_seconds: float = 10.0
    image_mb: float = 20.0
    jpeg_quality: int = 85

    presets: ClassVar[dict[str, dict[str, Any]]] = {"tiny": {}, "cpu": {}, "paper": {}}

    def __post_init__(self) -> None:
        if self.max_sessions < 1:
            raise TalkingHeadError(f"max_sessions must be at least 1, got {self.max_sessions}.")
        times = (self.connect_seconds, self.idle_seconds, self.max_seconds, self.max_backlog_seconds, self.image_mb)
        if not all(math.isfinite(t) and t > 0 for t in times):
            raise TalkingHeadError("The live sessions' time and size limits must be positive numbers.")
        if not 1 <= self.jpeg_quality <= 100:
            raise TalkingHeadError(f"The JPEG quality must be between 1 and 100, got {self.jpeg_quality}.")


class LiveError(TalkingHeadError):
    """A refusal of the live API: one sentence and its HTTP ``status`` (or the WebSocket's close code)."""

    def __init__(self, message: str, status: int = 422, close_code: int = 1008) -> None:
        super().__init__(message)
        self.status = status
        self.close_code = close_code


@dataclass
class Session:
    """A live session: its streamer once the portrait is fitted (None while it is being prepared), when it was
    made ready (``time.monotonic()``), and whether its WebSocket has connected."""

    id: str
    streamer: Streamer | None
    since: float
    connected: bool = False


class Sessions:
    """The live sessions (thread-safe): at most ``max_sessions``, expiring when not connected in time."""

    def __init__(self, config: LiveConfig) -> None:
        self.config = config
        self.items: dict[str, Session] = {}
        self.lock = threading.Lock()

    def _purge(self) -> None:
        limit = time.monotonic() - self.config.connect_seconds
        for key in [k for k, s in self.items.items() if not s.connected and s.streamer is not None and s.since < limit]:
            del self.items[key]

    def reserve(self) -> str:
        """A new session's id, or a busy refusal (503) when ``max_sessions`` exist."""
        with self.lock:
            self._purge()
            if len(self.items) >= self.config.max_sessions:
                n = self.config.max_sessions
                raise LiveError(f"The live stream is busy: it serves {n} session{'s' if n > 1 else ''} at a time; "
                                "try again when the current one ends.", 503)
            key = uuid.uuid4().hex
            self.items[key] = Session(key, None, time.monotonic())
            return key

    def ready(self, key: str, streamer: Streamer) -> None:
        with self.lock:
            self.items[key] = Session(key, streamer, time.monotonic())

    def drop(self, key: str) -> None:
        with self.lock:
            self.items.pop(key, None)

    def claim(self, key: str) -> Session:
        """The ready session ``key`` for its one WebSocket, or a refusal."""
        with self.lock:
            self._purge()
            session = self.items.get(key)
            if session is None or session.streamer is None:
                raise LiveError(f"There is no live session '{key[:40]}' (never made, ended or expired); start one "
                                f"with POST {LIVE}.", 404)
            if session.connected:
                raise LiveError("This live session is already connected; a session streams once.", 409)
            session.connected = True
            return session

    @property
    def count(self) -> int:
        with self.lock:
            return len(self.items)


# ------------------------------------------------------------------------------------------------ the form

def _option(name: str, text: str) -> Any:
    """A form field's text as its option's type (one sentence when it is not)."""
    kind = OPTIONS[name]
    try:
        value = kind(text)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise LiveError(f"The field '{name}' must be {what}, got '{text[:40]}'.") from None
    if kind is float and not math.isfinite(value):
        raise LiveError(f"The field '{name}' must be a finite number, got '{text[:40]}'.")
    return value


def _portrait(data: bytes) -> np.ndarray:
    """The uploaded portrait, decoded from its content (its name and declared type are ignored): RGB uint8."""
    import warnings

    from PIL import Image, ImageOps

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                image.load()
                picture = np.asarray(ImageOps.exif_transpose(image).convert("RGB"), np.uint8)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise LiveError("The portrait has too many pixels.", 413) from err
    except Exception as err:
        raise LiveError("The portrait is not an image this server can read (PNG, JPEG, WebP, BMP or TIFF).",
                        415) from err
    return picture


async def read_request(request: Request, config: LiveConfig) -> tuple[np.ndarray, StreamConfig]:
    """The portrait and the stream's settings from a multipart form (one sentence for each problem)."""
    declared = request.headers.get("content-length", "")
    limit = int((config.image_mb + 1) * MB)
    if declared.isdigit() and int(declared) > limit:
        raise LiveError(f"The request is larger than the limit of {config.image_mb:g} MB.", 413)
    if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        raise LiveError("Send the portrait as a multipart form (multipart/form-data) in the field 'image'.", 415)
    try:
        form = await request.form(max_files=1, max_fields=len(OPTIONS) + 1, max_part_size=64 * 1024)
    except Exception as err:
        raise LiveError(f"The form could not be read ({first_line(err)}).", 400) from err
    try:
        unknown = sorted({k for k, _ in form.multi_items()} - {"image", *OPTIONS})
        if unknown:
            raise LiveError(f"The live form has no field '{unknown[0][:40]}'; it takes image and "
                            f"{', '.join(OPTIONS)}.")
        image = form.get("image")
        if not isinstance(image, UploadFile):
            raise LiveError("The portrait is missing: send it as the file field 'image'.")
        data = await image.read(int(config.image_mb * MB) + 1)
        if len(data) > config.image_mb * MB:
            raise LiveError(f"The portrait is larger than the limit of {config.image_mb:g} MB.", 413)
        if not data:
            raise LiveError("The portrait is an empty file.")
        values: dict[str, Any] = {}
        for name in OPTIONS:
            text = form.get(name)
            if isinstance(text, str) and text.strip():
                values[name] = _option(name, text.strip())
    finally:
        await form.close()
    picture = await run_in_threadpool(_portrait, data)
    try:
        return picture, StreamConfig(**values)
    except TalkingHeadError as err:
        raise LiveError(str(err)) from err


# ------------------------------------------------------------------------------------------------ a stream

def encode_jpeg(frame: np.ndarray, quality: int) -> bytes:
    """An RGB uint8 frame as JPEG bytes."""
    import cv2

    ok, data = cv2.imencode(".jpg", np.ascontiguousarray(frame[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise TalkingHeadError("A frame could not be encoded as JPEG.")
    return data.tobytes()


class LiveStream:
    """One session's WebSocket: receives audio, samples motion, renders and sends frames, all at once.

    Three tasks: the receiver (audio messages -> pending samples; ``end``), the generator (pending samples ->
    :meth:`Streamer.advance` in the motion thread -> motion chunks, at most ``QUEUE`` waiting) and the sender (each
    chunk's frames, rendered and encoded one by one in the frame thread, sent as they come; then the end event).
    """

    QUEUE = 4

    def __init__(self, ws: WebSocket, streamer: Streamer, config: LiveConfig) -> None:
        self.ws, self.streamer, self.config = ws, streamer, config
        self.pending: list[np.ndarray] = []
        self.backlog = 0                     # samples received and not yet turned into motion
        self.received = 0
        self.ended = False
        self.sent = 0
        self.wake = asyncio.Event()
        self.chunks: asyncio.Queue[Any] = asyncio.Queue(self.QUEUE)
        self.motion_thread = ThreadPoolExecutor(1, thread_name_prefix="live-motion")
        self.frame_thread = ThreadPoolExecutor(1, thread_name_prefix="live-frames")

    async def run(self) -> None:
        tasks = [asyncio.create_task(self._receive()), asyncio.create_task(self._generate()),
                 asyncio.create_task(self._send())]
        sender = tasks[2]
        try:
            waiting = set(tasks)
            while not sender.done():
                done, waiting = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()                 # raises the task's error
        except WebSocketDisconnect:
            pass                                  # the client left: nothing to tell it
        except LiveError as err:
            await self._fail(str(err), err.close_code)
        except TalkingHeadError as err:
            await self._fail(str(err), 1008)
        except Exception as err:                  # a bug: the client gets a sentence, the log the details
            logger.error("live session failed: %s", first_line(err), exc_info=err)
            await self._fail(f"The server failed unexpectedly ({type(err).__name__}); its log has the details.", 1011)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.motion_thread.shutdown(wait=False, cancel_futures=True)
            self.frame_thread.shutdown(wait=False, cancel_futures=True)

    async def _fail(self, message: str, code: int) -> None:
        try:
            await self.ws.send_text(json.dumps({"error": message}))
            await self.ws.close(code)
        except Exception:                         # the socket is already gone
            pass

    async def _receive(self) -> None:
        cfg = self.config
        while True:
            try:
                message = await asyncio.wait_for(self.ws.receive(), cfg.idle_seconds)
            except TimeoutError:
                raise LiveError(f"Nothing arrived for {cfg.idle_seconds:g} s, so the live session was "
                                "closed.") from None
            if message["type"] == "websocket.disconnect":
                raise WebSocketDisconnect(message.get("code", 1000))
            data, text = message.get("bytes"), message.get("text")
            if data is not None:
                if len(data) % 2:
                    raise LiveError("Audio messages must hold 16-bit samples (an even number of bytes), got "
                                    f"{len(data)} bytes.")
                samples = np.frombuffer(data, "<i2").astype(np.float32) / np.float32(32768.0)
                self.received += samples.size
                if self.received > cfg.max_seconds * SAMPLE_RATE:
                    raise LiveError(f"A live session takes at most {cfg.max_seconds:g} s of audio.")
                self.pending.append(samples)
                self.backlog += samples.size
                if self.backlog > cfg.max_backlog_seconds * SAMPLE_RATE:
                    raise LiveError(f"The server fell more than {cfg.max_backlog_seconds:g} s behind the audio, so the "
                                    "live session was closed.", close_code=1011)
                self.wake.set()
            elif text is not None:
                if text.strip().lower() == "end":
                    self.ended = True
                    self.wake.set()
                    return
                raise LiveError('The only text message is "end"; send the audio as binary messages of 16-bit '
                                "little-endian PCM at 16 kHz.")

    async def _generate(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self.wake.wait()
            self.wake.clear()
            while self.pending:
                samples = np.concatenate(self.pending)
                self.pending = []
                chunk = await loop.run_in_executor(self.motion_thread, self.streamer.advance, samples)
                self.backlog -= samples.size
                if len(chunk):
                    await self.chunks.put(chunk)
            if self.ended:
                if self.streamer.samples_pushed == 0:
                    raise LiveError("The session ended before any audio arrived.")
                await self.chunks.put(await loop.run_in_executor(self.motion_thread, self.streamer.flush))
                await self.chunks.put(None)
                return

    def _next_jpeg(self, frames: Any) -> bytes | None:
        frame = next(frames, None)
        return None if frame is None else encode_jpeg(frame, self.config.jpeg_quality)

    async def _send(self) -> None:
        loop = asyncio.get_running_loop()
        while (chunk := await self.chunks.get()) is not None:
            frames = self.streamer.render(chunk)
            while (jpeg := await loop.run_in_executor(self.frame_thread, self._next_jpeg, frames)) is not None:
                await self.ws.send_bytes(struct.pack(">I", self.sent) + jpeg)
                self.sent += 1
        await self.ws.send_text(json.dumps({"event": "end", "frames": self.sent}))
        await self.ws.close(1000)


# ------------------------------------------------------------------------------------------------ routes

def _refused(err: LiveError) -> JSONResponse:
    headers = {"Retry-After": "10"} if err.status == 503 else None
    return JSONResponse({"error": str(err)}, status_code=err.status, headers=headers)


def live_router(engine: Any, max_sessions: int = 1, config: LiveConfig | None = None) -> APIRouter:
    """The live routes over ``engine``'s warm ``generator`` (DreamTalk) and ``renderer``; ``max_sessions``
    sessions at a time (it overrides ``config.max_sessions``)."""
    cfg = (config or LiveConfig()).replace(max_sessions=max_sessions)
    sessions = Sessions(cfg)
    page = PAGE.read_text(encoding="utf-8")
    router = APIRouter()

    @router.get("/live", response_class=HTMLResponse, include_in_schema=False)
    def live_page() -> HTMLResponse:
        return HTMLResponse(page)

    @router.post(LIVE, status_code=201)
    async def create_session(request: Request) -> JSONResponse:
        try:
            key = sessions.reserve()
        except LiveError as err:
            return _refused(err)
        try:
            picture, settings = await read_request(request, cfg)
            streamer = await run_in_threadpool(Streamer, picture, engine.generator, engine.renderer, settings)
        except LiveError as err:
            sessions.drop(key)
            return _refused(err)
        except TalkingHeadError as err:
            sessions.drop(key)
            return _refused(LiveError(str(err)))
        except BaseException:
            sessions.drop(key)
            raise
        sessions.ready(key, streamer)
        return JSONResponse({"id": key, "websocket": f"{LIVE}/{key}", "sample_rate": SAMPLE_RATE, "fps": 25,
                             "latency_seconds": round(settings.latency_seconds, 3), "style": streamer.style_source},
                            status_code=201)

    @router.websocket(LIVE + "/{key}")
    async def live_socket(ws: WebSocket, key: str) -> None:
        await ws.accept()
        try:
            session = sessions.claim(key)
        except LiveError as err:
            try:
                await ws.send_text(json.dumps({"error": str(err)}))
                await ws.close(err.close_code)
            except Exception:
                pass
            return
        try:
            assert session.streamer is not None
            await LiveStream(ws, session.streamer, cfg).run()
        finally:
            sessions.drop(key)

    return router

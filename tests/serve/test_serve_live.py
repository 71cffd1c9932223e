"""The live streaming API (talkinghead.serve.live): a session is made from a portrait, audio goes in over a
WebSocket, frames come out before the audio has ended, then the end event; one session at a time, sessions expire,
and every bad request or message is one sentence. Through FastAPI's TestClient, and once through a real uvicorn
server with the ``websockets`` client."""

from __future__ import annotations

import io
import json
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from talkinghead.audio.frames import frame_count
from talkinghead.serve.live import LiveConfig, live_router

sys.path.insert(0, str(Path(__file__).parents[1] / "pipeline"))
from pipeline_helpers import make_random_checkpoints  # noqa: E402
from test_pipeline_generate import speechlike  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")
LIVE = "/api/v1/live"


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """What the live routes read of the server's engine: a (tiny, random) DreamTalk generator and the warp renderer."""
    from talkinghead.api import load_models
    from talkinghead.generators import load_renderer

    return SimpleNamespace(generator=load_models(make_random_checkpoints(tmp_path_factory.mktemp("live_ckpt"))),
                           renderer=load_renderer())


@pytest.fixture(scope="module")
def png() -> bytes:
    from PIL import Image
    from skimage import data

    out = io.BytesIO()
    Image.fromarray(data.astronaut()).save(out, "PNG")
    return out.getvalue()


def client_for(engine: SimpleNamespace, **limits: Any) -> TestClient:
    app = FastAPI()
    app.include_router(live_router(engine, limits.pop("max_sessions", 1), LiveConfig(**limits)))
    return TestClient(app)


def pcm(seconds: float, seed: int = 0) -> bytes:
    return (speechlike(seconds, seed).samples * 32767).astype("<i2").tobytes()


def start(client: TestClient, png: bytes, **fields: str) -> Any:
    return client.post(LIVE, files={"image": ("portrait.png", png, "image/png")}, data=fields)


def receive_all(ws: Any, first: int = 0) -> tuple[list[bytes], dict[str, Any]]:
    """Frames (JPEG bytes, numbered from ``first`` in order) until the text message that ends the stream."""
    frames: list[bytes] = []
    while True:
        message = ws.receive()
        if message.get("bytes") is not None:
            assert int.from_bytes(message["bytes"][:4], "big") == first + len(frames)
            frames.append(message["bytes"][4:])
        else:
            return frames, json.loads(message["text"])


def test_frames_arrive_while_the_audio_does_then_the_end(engine: SimpleNamespace, png: bytes) -> None:
    import cv2

    client = client_for(engine)
    answer = start(client, png, emotion="happy", seed="2", head_motion="0.5")
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["websocket"] == f"{LIVE}/{body['id']}" and body["sample_rate"] == 16000 and body["fps"] == 25
    assert body["style"] == "emotion:happy" and 0.3 < body["latency_seconds"] < 0.5
    audio = pcm(1.6)
    with client.websocket_connect(body["websocket"]) as ws:
        sent = 0
        for i in range(0, len(audio) // 2, 1234):                       # 1 s, in odd-sized pieces
            ws.send_bytes(audio[i:i + 1234])
            sent = i + 1234
        first = ws.receive()                                             # a frame before the audio has ended
        assert first["bytes"][:4] == b"\0\0\0\0"
        image = cv2.imdecode(np.frombuffer(first["bytes"][4:], np.uint8), cv2.IMREAD_COLOR)
        assert image.shape == (512, 512, 3)                               # the whole photo
        ws.send_bytes(audio[sent:])
        ws.send_text("end")
        frames, end = receive_all(ws, 1)
    assert end == {"event": "end", "frames": 1 + len(frames)} and end["frames"] == frame_count(len(audio) // 2) == 40
    again = client.websocket_connect(body["websocket"])                  # a session streams once
    with again as ws:
        assert "no live session" in json.loads(ws.receive_text())["error"]


def test_one_session_at_a_time_and_sessions_expire(engine: SimpleNamespace, png: bytes) -> None:
    client = client_for(engine, connect_seconds=0.5)
    first = start(client, png)
    assert first.status_code == 201
    busy = start(client, png)
    assert busy.status_code == 503 and busy.headers["retry-after"]
    assert busy.json()["error"].startswith("The live stream is busy")
    time.sleep(0.7)                                                      # the first was never connected: expired
    second = start(client, png)
    assert second.status_code == 201
    with client.websocket_connect(first.json()["websocket"]) as ws:
        assert "expired" in json.loads(ws.receive_text())["error"]
    with client.websocket_connect(second.json()["websocket"]) as ws:
        ws.send_bytes(pcm(0.2))
        ws.send_text("end")
        frames, end = receive_all(ws)
    assert end["frames"] == len(frames) == 5
    assert start(client, png).status_code == 201                         # free again once it ended
    two = client_for(engine, max_sessions=2)
    assert [start(two, png).status_code for _ in range(3)] == [201, 201, 503]


@pytest.mark.parametrize(("send", "words"), [
    (lambda ws: ws.send_bytes(b"\x01\x02\x03"), "even number of bytes"),
    (lambda ws: ws.send_text("hello"), 'only text message is "end"'),
    (lambda ws: ws.send_text("end"), "before any audio"),
])
def test_bad_messages_end_the_session_with_one_sentence(engine: SimpleNamespace, png: bytes, send: Any,
                                                        words: str) -> None:
    client = client_for(engine)
    body = start(client, png).json()
    with client.websocket_connect(body["websocket"]) as ws:
        send(ws)
        error = json.loads(ws.receive_text())["error"]
        assert words in error and error.endswith(".") and "\n" not in error
        assert ws.receive()["type"] == "websocket.close"
    assert start(client, png).status_code == 201                         # the failed session is gone


def test_silence_and_too_much_audio_close_the_session(engine: SimpleNamespace, png: bytes) -> None:
    client = client_for(engine, idle_seconds=0.3, max_seconds=0.5)
    with client.websocket_connect(start(client, png).json()["websocket"]) as ws:
        assert "Nothing arrived for 0.3 s" in json.loads(ws.receive_text())["error"]
    with client.websocket_connect(start(client, png).json()["websocket"]) as ws:
        ws.send_bytes(pcm(0.6))
        message = ws.receive()
        while message.get("bytes") is not None:                          # frames made before the refusal
            message = ws.receive()
        assert "at most 0.5 s of audio" in json.loads(message["text"])["error"]


def test_an_unknown_session_is_one_sentence(engine: SimpleNamespace) -> None:
    with client_for(engine).websocket_connect(f"{LIVE}/0123456789abcdef") as ws:
        error = json.loads(ws.receive_text())["error"]
        assert error.startswith("There is no live session '0123456789abcdef'") and f"POST {LIVE}" in error


PNG = ("portrait.png", b"PNG", "image/png")                               # stands for the astronaut below


@pytest.mark.parametrize(("parts", "status", "words"), [
    ({"seed": (None, "1")}, 422, "portrait is missing"),
    ({"image": ("p.png", b"not an image", "image/png")}, 415, "not an image"),
    ({"image": ("p.png", b"", "image/png")}, 422, "empty file"),
    ({"image": PNG, "seed": (None, "abc")}, 422, "'seed' must be a whole number"),
    ({"image": PNG, "head_motion": (None, "nan")}, 422, "finite"),
    ({"image": PNG, "size": (None, "300")}, 422, "256 or 512"),
    ({"image": PNG, "emotion": (None, "bored")}, 422, "no emotion 'bored'"),
    ({"image": PNG, "intensity": (None, "2")}, 422, "needs an emotion"),
    ({"image": PNG, "colour": (None, "red")}, 422, "no field 'colour'"),
])
def test_bad_requests_are_one_sentence(engine: SimpleNamespace, png: bytes, parts: dict[str, Any], status: int,
                                       words: str) -> None:
    client = client_for(engine)
    files = {k: (("portrait.png", png, "image/png") if v is PNG else v) for k, v in parts.items()}
    answer = client.post(LIVE, files=files)
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert words in error and error.endswith(".") and "\n" not in error
    assert start(client, png).status_code == 201                         # a refused request holds no session


def test_a_form_is_needed(engine: SimpleNamespace) -> None:
    answer = client_for(engine).post(LIVE, data={"seed": "1"})
    assert answer.status_code == 415 and "multipart" in answer.json()["error"]


def test_a_face_is_needed(engine: SimpleNamespace) -> None:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (200, 200), (120, 160, 200)).save(out, "PNG")
    answer = start(client_for(engine), out.getvalue())
    assert answer.status_code == 422 and answer.json()["error"].endswith(".")


def test_the_page_is_self_contained(engine: SimpleNamespace) -> None:
    page = client_for(engine).get("/live")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    for element in ('id="live-frame"', 'id="live-count"', 'id="live-portrait"', 'id="live-mic"', "getUserMedia",
                    "decodeAudioData", "/api/v1/live", "setInt16"):
        assert element in html
    assert "<script src" not in html and "<link" not in html and "cdn" not in html.lower()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def real_server(engine: SimpleNamespace) -> Iterator[str]:
    """uvicorn serving the live routes on a free local port, in a thread."""
    import uvicorn

    app = FastAPI()
    app.include_router(live_router(engine))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=_free_port(), log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.02)
    yield f"127.0.0.1:{server.config.port}"
    server.should_exit = True
    thread.join(10)


def test_a_real_server_streams_in_real_time(real_server: str, png: bytes) -> None:
    """Audio sent at the pace of speech over a real socket: the first frame comes back within 0.5 s of the first
    0.5 s of audio (tiny model; the shipped one is measured by scripts/bench_stream.py)."""
    import httpx
    from websockets.sync.client import connect

    body = httpx.post(f"http://{real_server}{LIVE}", files={"image": ("p.png", png, "image/png")}, timeout=60).json()
    audio = pcm(1.2)
    piece = 640 * 2                                                      # 40 ms of int16
    received: list[float] = []
    with connect(f"ws://{real_server}{body['websocket']}", max_size=None) as ws:
        began = time.perf_counter()

        def send() -> None:
            for i in range(0, len(audio), piece):
                time.sleep(max(0.0, began + (i + piece) / 32000 - time.perf_counter()))
                ws.send(audio[i:i + piece])
            ws.send("end")

        sender = threading.Thread(target=send)
        sender.start()
        while isinstance(message := ws.recv(), bytes):
            received.append(time.perf_counter() - began)
        sender.join()
    assert json.loads(message) == {"event": "end", "frames": 30} and len(received) == 30
    assert received[0] < 0.5 + 0.5 and received[0] < 1.2                 # before the audio ended

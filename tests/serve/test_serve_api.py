"""The HTTP API end to end on the shipped models: submit, poll, download (a video whose frames match the speech, a
motion file, ARKit curves); every refusal one sentence with its status and nothing left behind; ids and names that
look like paths; the page mounted beside the API."""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path
from typing import Any

import pytest

from talkinghead.audio.frames import frame_count
from talkinghead.io.audio import load_audio
from talkinghead.io.video import probe_video
from talkinghead.sequence import MotionSequence
from talkinghead.serve.engine import Engine
from talkinghead.serve.uploads import UploadLimits

API = "/api/v1"


def one_sentence(response: Any, status: int) -> str:
    """The refusal's sentence, checked: the status, JSON ``{"error": ...}`` and nothing else, one line, no trace."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    message = body["error"]
    assert message[0].isupper() and message.endswith(".") and "\n" not in message and "Traceback" not in message
    assert "/tmp/" not in message
    return str(message)


def wait_done(client: Any, job_id: str, timeout: float = 120.0) -> dict[str, Any]:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        status = client.get(f"{API}/jobs/{job_id}").json()
        if status["status"] in ("done", "failed"):
            return dict(status)
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not finish")


def post(client: Any, files: dict[str, tuple[str, bytes]], **fields: Any) -> Any:
    return client.post(f"{API}/jobs", files={k: (name, data) for k, (name, data) in files.items()},
                       data={k: str(v) for k, v in fields.items()})


def test_submit_poll_download(engine: Engine, make_server: Any, media: dict[str, Path], tmp_path: Path) -> None:
    client, jobs = make_server(engine)
    response = post(client, {"image": ("me.png", media["portrait"].read_bytes()),
                             "audio": ("speech.wav", media["speech"].read_bytes())}, seed=3)
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    assert response.json()["status_url"] == f"{API}/jobs/{job_id}" == response.headers["location"]
    status = wait_done(client, job_id)
    assert status["status"] == "done" and status["progress"] == 1.0 and status["error"] is None, status
    result = status["result"]
    expected = frame_count(len(load_audio(media["speech"]).samples))
    assert result["frames"] == expected

    video = client.get(result["video"])
    assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
    (tmp_path / "got.mp4").write_bytes(video.content)
    info = probe_video(tmp_path / "got.mp4")
    assert info.num_frames == expected and info.has_audio

    npz = client.get(result["motion_npz"])
    (tmp_path / "got.npz").write_bytes(npz.content)
    assert len(MotionSequence.load(tmp_path / "got.npz")) == expected
    rows = list(csv.reader(io.StringIO(client.get(result["motion_csv"]).text)))
    assert rows[0][:2] == ["Timecode", "BlendShapeCount"] and len(rows) == expected + 1
    # a finished job's folder holds its outputs only (the uploads are gone)
    assert sorted(p.name for p in (jobs.root / "jobs" / job_id).iterdir()) == ["motion.csv", "motion.npz",
                                                                               "video.mp4"]


def test_text_job_reports_stages_then_delete(engine: Engine, make_server: Any, media: dict[str, Path]) -> None:
    client, jobs = make_server(engine)
    seen: list[tuple[str, float]] = []
    run = engine.run

    class Recording:
        def __getattr__(self, name: str) -> Any:
            return getattr(engine, name)

        def run(self, request: Any, folder: Path, on_progress: Any, deadline: float) -> Any:
            def record(stage: str, fraction: float) -> None:
                seen.append((stage, fraction))
                on_progress(stage, fraction)
            return run(request, folder, record, deadline)

    jobs.runner = Recording()
    response = post(client, {"image": ("x", media["portrait"].read_bytes())}, text="Good morning.", emotion="happy",
                    intensity=2, head_motion=0.5, steps=5)
    job_id = response.json()["id"]
    status = wait_done(client, job_id)
    assert status["status"] == "done", status
    assert status["result"]["style"].startswith("emotion:happy")
    stages = [s for i, (s, _) in enumerate(seen) if i == 0 or seen[i - 1][0] != s]
    assert stages == ["loading", "motion", "rendering", "encoding", "done"]
    fractions = [f for _, f in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0

    assert client.delete(f"{API}/jobs/{job_id}").json() == {"id": job_id, "deleted": True}
    one_sentence(client.get(f"{API}/jobs/{job_id}"), 404)
    assert not (jobs.root / "jobs" / job_id).exists()


def _png_text() -> bytes:
    return b"this is a text file, not a picture\n" * 10


@pytest.mark.parametrize("case, status", [
    ("text renamed .png", 415), ("image renamed .wav", 415), ("audio and text", 422), ("neither speech", 422),
    ("no portrait", 422), ("bad intensity", 422), ("intensity word", 422), ("bad size", 422), ("unknown model", 422),
    ("unknown emotion", 422), ("unknown field", 422), ("file as text", 422), ("oversized image", 413),
    ("too long audio", 413), ("too long text", 413), ("renderer for a video model", 422)])
def test_refusals_are_one_sentence_and_leave_nothing(case: str, status: int, engine: Engine, make_server: Any,
                                                     media: dict[str, Path], tmp_path: Path) -> None:
    client, jobs = make_server(engine, limits=UploadLimits(image_mb=0.3, audio_seconds=1.0, text_chars=50))
    image = ("../../../escape.png", media["portrait"].read_bytes())
    small = io.BytesIO()
    from PIL import Image

    Image.open(media["portrait"]).resize((200, 200)).save(small, format="JPEG")
    jpeg = ("../me.jpg", small.getvalue())
    speech = ("../../speech.wav", media["speech"].read_bytes())
    requests: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
        "text renamed .png": ({"image": ("face.png", _png_text())}, {"text": "Hi."}),
        "image renamed .wav": ({"image": jpeg, "audio": ("speech.wav", small.getvalue())}, {}),
        "audio and text": ({"image": jpeg, "audio": speech}, {"text": "Hi."}),
        "neither speech": ({"image": jpeg}, {}),
        "no portrait": ({"audio": speech}, {}),
        "bad intensity": ({"image": jpeg}, {"text": "Hi.", "emotion": "sad", "intensity": 7}),
        "intensity word": ({"image": jpeg}, {"text": "Hi.", "emotion": "sad", "intensity": "high"}),
        "bad size": ({"image": jpeg}, {"text": "Hi.", "size": 300}),
        "unknown model": ({"image": jpeg}, {"text": "Hi.", "model": "../../weights"}),
        "unknown emotion": ({"image": jpeg}, {"text": "Hi.", "emotion": "bored"}),
        "unknown field": ({"image": jpeg}, {"text": "Hi.", "output": "/etc/passwd"}),
        "file as text": ({"image": jpeg, "text": ("t.txt", b"Hi.")}, {}),
        "oversized image": ({"image": image}, {"text": "Hi."}),
        "too long audio": ({"image": jpeg, "audio": speech}, {}),
        "too long text": ({"image": jpeg}, {"text": "word " * 20}),
        "renderer for a video model": ({"image": jpeg}, {"text": "Hi.", "model": "emo", "renderer": "warp"}),
    }
    files, fields = requests[case]
    one_sentence(post(client, files, **fields), status)
    assert list((jobs.root / "jobs").iterdir()) == []  # the job's folder went with the refusal
    assert not any(p.name in ("escape.png", "me.jpg", "speech.wav") for p in tmp_path.rglob("*") if "server" not in
                   str(p.relative_to(tmp_path)))
    assert jobs.counts()["waiting"] == 0


def test_bodies_above_the_limit_and_not_forms(engine: Engine, make_server: Any) -> None:
    client, jobs = make_server(engine, limits=UploadLimits(image_mb=0.1, audio_mb=0.1, video_mb=0.1))
    big = b"\0" * (2 * 1024 * 1024)
    assert "larger than the limit" in one_sentence(post(client, {"image": ("a.png", big)}, text="Hi."), 413)
    one_sentence(client.post(f"{API}/jobs", json={"image": "me.png", "text": "Hi."}), 415)
    one_sentence(client.post(f"{API}/jobs", content=b"--x\r\nnonsense", headers={
        "content-type": "multipart/form-data; boundary=x"}), 422)


@pytest.mark.parametrize("path", [
    "/jobs/..", "/jobs/..%2F..%2Fetc%2Fpasswd", "/jobs/%2e%2e/video.mp4", "/jobs/0123/video.mp4",
    "/jobs/ABCDEF0123456789ABCDEF0123456789", "/jobs/0123456789abcdef0123456789abcdef",
    "/jobs/0123456789abcdef0123456789abcdef/video.mp4", "/jobs/0123456789abcdef0123456789abcdef/../../x",
    "/nothing-here"])
def test_unknown_and_path_like_ids(path: str, engine: Engine, make_server: Any) -> None:
    client, _ = make_server(engine)
    one_sentence(client.get(API + path), 404)


def test_output_names_and_unfinished_jobs(engine: Engine, make_server: Any, media: dict[str, Path],
                                          blocking: Any) -> None:
    client, jobs = make_server(blocking)
    job_id = post(client, {"image": ("p", media["portrait"].read_bytes())}, text="Hi.").json()["id"]
    assert blocking.started.wait(30)
    assert "not finished" in one_sentence(client.get(f"{API}/jobs/{job_id}/video.mp4"), 409)
    blocking.release.set()
    assert wait_done(client, job_id)["status"] == "done"
    for name in ("..", "video.mp4.part", "model.safetensors", "%2e%2e%2fvideo.mp4", "inputs"):
        one_sentence(client.get(f"{API}/jobs/{job_id}/{name}"), 404)
    one_sentence(client.delete(f"{API}/jobs/{job_id}/video.mp4"), 404)


def test_health_and_models(engine: Engine, make_server: Any) -> None:
    client, _ = make_server(engine)
    health = client.get(f"{API}/health").json()
    assert health["status"] == "ok" and health["model"] == "dreamtalk" and health["renderer"] == "warp"
    assert health["jobs"] == {"waiting": 0, "running": 0, "finished": 0, "max_waiting": 8, "workers": 1}
    models = client.get(f"{API}/models").json()
    names = {(m["name"], m["kind"]) for m in models["models"]}
    assert {("dreamtalk", "motion"), ("warp", "renderer")} <= names
    assert models["default_model"] == "dreamtalk" and "weights" not in models["models"][0]


def test_page_is_served_beside_the_api(engine: Engine, make_server: Any) -> None:
    client, jobs = make_server(engine, page=True)
    assert client.get("/").status_code == 200
    config = client.get("/config").json()
    assert config["title"] == "talkinghead"
    ids = {c["props"].get("elem_id") for c in config["components"]}
    assert {"portrait", "speech-audio", "speech-text", "model", "renderer", "style-video", "generate", "video",
            "motion-files", "status"} <= ids
    assert any("(/live)" in str(c["props"].get("value")) for c in config["components"])
    assert client.get(f"{API}/health").json()["status"] == "ok"
    one_sentence(client.get("/api/v2/jobs"), 404)
    assert (jobs.root / "examples" / "astronaut.png").is_file()


def test_an_unexpected_error_is_one_sentence_and_no_trace(engine: Engine, make_server: Any,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from fastapi.testclient import TestClient

    client, jobs = make_server(engine)

    def broken() -> dict[str, int]:
        raise RuntimeError("a bug\nwith a second line")

    monkeypatch.setattr(jobs, "counts", broken)
    quiet = TestClient(client.app, raise_server_exceptions=False)
    assert one_sentence(quiet.get(f"{API}/health"), 500) == ("The server failed unexpectedly (RuntimeError); its log "
                                                             "has the details.")

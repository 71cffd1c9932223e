"""Load test of ``talkinghead serve`` (docs/serve.md): many clients at once, a server that stays up and lean.

1. starts ``talkinghead serve`` as a subprocess on a free port (its own TMPDIR, so its folder can be watched) and
   waits for ``/api/v1/health``;
2. one warm-up job (3 s of speech), then the server's resident memory (RSS: psutil, else /proc/PID/status);
3. ``--clients`` (20) POST /api/v1/jobs at once, each 3 s of speech with the astronaut; every answer must be 202 (a
   job) or 503 with Retry-After and the one-sentence busy answer; every accepted job is polled to its end and must
   end with a video (downloaded and checked for its frame count); RSS is sampled all along (peak);
4. ``/api/v1/health`` still answers; an oversized upload, a text file as the portrait and a picture as the speech
   are refused with one sentence (413, 415, 415);
5. waits for the finished jobs to be cleaned up (the server runs with ``--keep-minutes 0.25``), measures RSS again,
   stops the server with SIGTERM (exit 143) and checks that its folder is gone;
6. prints a table and writes bench/serve_load.json. ``--rounds N`` repeats steps 3-5 (RSS after each clean-up, to
   tell a leak from the allocator's first growth).

    .venv/bin/python scripts/load_serve.py [--clients 20] [--queue 8] [--workers 1] [--rounds 1]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
SENTENCE = "Three seconds of speech for every client, said at an ordinary pace."
SPEECH_SECONDS = 3.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mb(pid: int) -> float:
    """Resident memory of process ``pid`` in MB."""
    try:
        import psutil

        return float(psutil.Process(pid).memory_info().rss) / 2**20
    except ImportError:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no RSS for process {pid}")


def make_inputs(folder: Path) -> tuple[bytes, bytes, int]:
    """The astronaut (PNG) and exactly 3 s of espeak speech (wav); the frames that speech makes."""
    import numpy as np
    from skimage import data

    from talkinghead.audio.frames import frame_count
    from talkinghead.audio.tts import synthesize
    from talkinghead.io.audio import Audio, save_wav
    from talkinghead.io.image import save_image

    speech = synthesize(SENTENCE).audio
    samples = np.resize(speech.samples, int(SPEECH_SECONDS * speech.sample_rate)).astype(np.float32)
    wav = save_wav(folder / "speech.wav", Audio(samples))
    png = save_image(folder / "astronaut.png", data.astronaut())
    return png.read_bytes(), wav.read_bytes(), frame_count(len(samples))


def one_sentence(response: httpx.Response) -> str:
    body = response.json()
    message = body.get("error", "") if isinstance(body, dict) and set(body) == {"error"} else ""
    if not (message.endswith(".") and "\n" not in message and "Traceback" not in message):
        raise AssertionError(f"not one sentence: {response.status_code} {response.text[:200]}")
    return str(message)


async def submit(client: httpx.AsyncClient, portrait: bytes, speech: bytes) -> dict[str, Any]:
    began = time.monotonic()
    response = await client.post("/api/v1/jobs", files={"image": ("a.png", portrait), "audio": ("s.wav", speech)})
    answer: dict[str, Any] = {"status": response.status_code, "began": began}
    if response.status_code == 202:
        answer["id"] = response.json()["id"]
    elif response.status_code == 503:
        answer["error"] = one_sentence(response)
        answer["retry_after"] = response.headers.get("retry-after")
        if not answer["retry_after"] or "busy" not in answer["error"]:
            raise AssertionError(f"a 503 without Retry-After or the busy sentence: {response.text}")
    else:
        raise AssertionError(f"unexpected answer {response.status_code}: {response.text[:200]}")
    return answer


async def get(client: httpx.AsyncClient, url: str, job: dict[str, Any]) -> httpx.Response:
    """GET with one retry when a pooled keep-alive connection was closed under the request (an HTTP/1.1 race on the
    client's side, not a server failure; counted in ``job["retries"]``, reported)."""
    try:
        return await client.get(url)
    except (httpx.ReadError, httpx.RemoteProtocolError):
        job["retries"] = job.get("retries", 0) + 1
        return await client.get(url)


async def follow(client: httpx.AsyncClient, job: dict[str, Any], frames: int, timeout: float) -> None:
    """Poll one job to its end; download and check its video."""
    from talkinghead.io.video import probe_video

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        status = (await get(client, f"/api/v1/jobs/{job['id']}", job)).json()
        if status["status"] in ("done", "failed"):
            break
        await asyncio.sleep(0.25)
    job["ended"] = time.monotonic()
    job["state"] = status["status"]
    job["error"] = status.get("error")
    if status["status"] == "done":
        video = await get(client, status["result"]["video"], job)
        with tempfile.NamedTemporaryFile(suffix=".mp4") as tmp:
            tmp.write(video.content)
            tmp.flush()
            job["frames"] = probe_video(tmp.name).num_frames
        job["video_ok"] = video.status_code == 200 and job["frames"] == frames


async def storm(base: str, portrait: bytes, speech: bytes, frames: int, clients: int, pid: int,
                timeout: float) -> dict[str, Any]:
    peak = rss_mb(pid)
    done = asyncio.Event()

    async def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss_mb(pid))
            await asyncio.sleep(0.2)

    sampler = asyncio.create_task(sample())
    limits = httpx.Limits(max_connections=clients + 4)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client:
        began = time.monotonic()
        answers = await asyncio.gather(*(submit(client, portrait, speech) for _ in range(clients)))
        accepted = [a for a in answers if a["status"] == 202]
        await asyncio.gather(*(follow(client, a, frames, timeout) for a in accepted))
        wall = time.monotonic() - began
    done.set()
    await sampler
    latencies = sorted(a["ended"] - a["began"] for a in accepted)
    return {"answers": answers, "accepted": len(accepted), "busy": sum(a["status"] == 503 for a in answers),
            "videos_ok": sum(bool(a.get("video_ok")) for a in accepted),
            "client_retries": sum(a.get("retries", 0) for a in accepted),
            "failed": [a.get("error") for a in accepted if a.get("state") != "done"],
            "wall_s": round(wall, 2), "latency_s": {"min": round(latencies[0], 2) if latencies else None,
                                                    "median": round(latencies[len(latencies) // 2], 2)
                                                    if latencies else None,
                                                    "max": round(latencies[-1], 2) if latencies else None},
            "peak_rss_mb": round(peak, 1)}


def refusals(base: str, portrait: bytes) -> dict[str, dict[str, Any]]:
    """Three bad uploads, each refused with one sentence and its status."""
    cases = {"oversized portrait (21 MB)": ({"image": ("big.png", os.urandom(21 * 2**20))}, {"text": "Hi."}, 413),
             "text file as the portrait": ({"image": ("face.png", b"not a picture\n" * 100)}, {"text": "Hi."}, 415),
             "picture as the speech": ({"image": ("a.png", portrait), "audio": ("s.wav", portrait)}, {}, 415)}
    out = {}
    for name, (files, data, status) in cases.items():
        response = httpx.post(f"{base}api/v1/jobs", files=files, data=data, timeout=60)
        out[name] = {"status": response.status_code, "error": one_sentence(response), "expected": status}
        if response.status_code != status:
            raise AssertionError(f"{name}: {response.status_code}, expected {status}: {response.text}")
    return out


def wait_health(base: str, proc: subprocess.Popen[bytes], timeout: float) -> dict[str, Any]:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        try:
            return dict(httpx.get(f"{base}api/v1/health", timeout=5).json())
        except httpx.HTTPError:
            time.sleep(0.5)
    raise RuntimeError(f"the server did not answer within {timeout:g} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--queue", type=int, default=8)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=1, help="storms in a row (RSS after each one's clean-up)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for all jobs")
    parser.add_argument("--out", default=str(ROOT / "bench" / "serve_load.json"))
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="load_serve_"))
    portrait, speech, frames = make_inputs(work)
    port = free_port()
    base = f"http://127.0.0.1:{port}/"
    log = open(work / "server.log", "wb")
    command = [sys.executable, "-m", "talkinghead", "serve", "--port", str(port), "--queue", str(args.queue),
               "--workers", str(args.workers), "--keep-minutes", "0.25"]
    env = {**os.environ, "TMPDIR": str(work)}
    started = time.monotonic()
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        wait_health(base, proc, 300)
        startup = time.monotonic() - started
        warm = asyncio.run(storm(base, portrait, speech, frames, 1, proc.pid, args.timeout))
        if warm["videos_ok"] != 1:
            raise AssertionError(f"the warm-up job failed: {warm}")
        baseline = rss_mb(proc.pid)
        rounds: list[float] = []
        for _ in range(args.rounds):
            load = asyncio.run(storm(base, portrait, speech, frames, args.clients, proc.pid, args.timeout))
            if load["accepted"] + load["busy"] != args.clients or load["videos_ok"] != load["accepted"]:
                raise AssertionError(f"not every client got a video or a busy answer: {load}")
            health = wait_health(base, proc, 30)
            refused = refusals(base, portrait)
            end = time.monotonic() + 120
            while health["jobs"]["finished"] and time.monotonic() < end:
                time.sleep(1.0)
                health = wait_health(base, proc, 30)
            if health["jobs"]["finished"]:
                raise AssertionError(f"the finished jobs were not cleaned up: {health}")
            rounds.append(round(rss_mb(proc.pid), 1))
        jobs_left = list(work.glob("talkinghead-serve-*/jobs/*"))
        after = rounds[-1]
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
    folders_left = list(work.glob("talkinghead-serve-*"))
    report = {
        "date": datetime.date.today().isoformat(), "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                                                              f"{platform.system()} {platform.release()}",
        "command": " ".join(["talkinghead", *command[3:]]), "clients": args.clients, "queue": args.queue,
        "workers": args.workers, "speech_seconds": SPEECH_SECONDS, "frames_per_video": frames,
        "startup_s": round(startup, 1), "warmup_job_s": warm["latency_s"]["max"],
        "accepted": load["accepted"], "busy_503": load["busy"], "videos_ok": load["videos_ok"],
        "client_retries": load["client_retries"],
        "failed": load["failed"], "all_jobs_s": load["wall_s"], "job_latency_s": load["latency_s"],
        "jobs_per_minute": round(60 * load["accepted"] / load["wall_s"], 1),
        "rss_mb": {"baseline_after_warmup": round(baseline, 1), "peak_under_load": load["peak_rss_mb"],
                   "after_cleanup": round(after, 1), "after_each_round": rounds},
        "busy_answer": next((a["error"] for a in load["answers"] if a["status"] == 503), None),
        "refusals": refused, "health_after_load": health["status"], "job_folders_left_after_cleanup": len(jobs_left),
        "exit_code_on_sigterm": code, "server_folder_removed": not folders_left,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    rows = [("server start-up (models loaded)", f"{report['startup_s']} s"),
            ("warm-up job (3 s of speech)", f"{report['warmup_job_s']} s"),
            (f"{args.clients} clients at once", f"{load['accepted']} accepted, {load['busy']} answered 503 busy"),
            ("videos complete (frames checked)", f"{load['videos_ok']} of {load['accepted']}"),
            ("GETs retried (keep-alive connection closed under them)", str(load["client_retries"])),
            ("all accepted jobs done in", f"{load['wall_s']} s ({report['jobs_per_minute']} jobs/min)"),
            ("job latency min / median / max", " / ".join(f"{v} s" for v in load["latency_s"].values())),
            ("RSS after warm-up", f"{report['rss_mb']['baseline_after_warmup']} MB"),
            ("RSS peak under load", f"{report['rss_mb']['peak_under_load']} MB"),
            ("RSS after clean-up", " / ".join(f"{v} MB" for v in rounds)),
            ("health after load", health["status"]),
            *((f"refused: {k}", f"{v['status']} {v['error']}") for k, v in refused.items()),
            ("job folders left after clean-up", str(len(jobs_left))),
            ("SIGTERM exit code, server folder removed", f"{code}, {'yes' if not folders_left else 'no'}")]
    width = max(len(r[0]) for r in rows)
    print(f"talkinghead serve load test ({report['date']}, {report['machine']})")
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
    print(f"wrote {args.out}")
    ok = code == 143 and not folders_left and not jobs_left and not load["failed"]
    if ok:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"the server's log: {work / 'server.log'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

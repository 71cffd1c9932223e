"""Benchmark of streaming generation with the speech fed in real time (docs/streaming.md, BENCHMARKS.md).

30 s of speech (espeak-ng, or ``--audio WAV``) is sent at the pace it would be spoken, in chunks of ``--chunk-ms``
(20-100 ms, paced with sleeps against one clock), through

(a) the Python :class:`talkinghead.stream.Streamer` (a feeder thread; the main thread pushes whatever has
    arrived, frame by frame rendered), and
(b) the WebSocket of a live server (:func:`talkinghead.serve.live.live_router` under uvicorn, in this process, on a
    free local port; the ``websockets`` client sends int16 PCM and receives the JPEG frames),

with the shipped weights, the astronaut portrait, face crop ``--size`` (256), DDIM 10 steps, 1 torch thread. For
each: the time from the moment 0.5 s of audio has been sent to the first frame received, the frames per second
produced (over the run, and over the compute time alone), the lag of each frame behind its audio (the moment its
last audio sample was sent; max over the run) and of the last frame after the audio ends, and the process's peak
resident memory. Writes bench/stream.json.

    .venv/bin/python scripts/bench_stream.py [--audio speech.wav] [--seconds 30] [--chunk-ms 40] [--only python|ws]
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import resource
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
FPS = 25.0
RATE = 16_000
PARAGRAPH = ("The quick brown fox jumps over the lazy dog. A talking head needs speech with many sounds, "
             "so this paragraph keeps going with ordinary sentences about the weather, the city, and the "
             "small things people say every day. Rain is expected tomorrow morning, but the afternoon "
             "should be bright and warm. Please remember to water the plants and to call your sister. ")


def speech(path: str | None, seconds: float) -> np.ndarray:
    """``seconds`` of speech, float32 16 kHz: the file (cut or repeated), else espeak-ng."""
    if path:
        from talkinghead.io.audio import load_audio

        samples = load_audio(path).samples
    else:
        from talkinghead.audio.tts import synthesize

        samples = synthesize(PARAGRAPH * 2).audio.samples
    return np.resize(samples, int(seconds * RATE)).astype(np.float32)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def paced(samples: np.ndarray, chunk: int, start: float, put: Any) -> None:
    """Hand ``samples`` to ``put`` in chunks at the pace of speech from ``start`` (``time.perf_counter``)."""
    for i in range(0, len(samples), chunk):
        piece = samples[i:i + chunk]
        delay = start + (i + len(piece)) / RATE - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        put(piece)


def summary(times: list[float], start: float, total: int, compute: float | None = None) -> dict[str, Any]:
    """Latency and pace of frames received at ``times`` (``perf_counter``) for audio sent from ``start``."""
    n = len(times)
    audio_end = start + total / RATE
    # frame i's audio is all sent at start + (i + 1) / fps (the last frame: at the end of the audio)
    heard = np.minimum(start + (np.arange(n) + 1) / FPS, audio_end)
    lag = np.asarray(times) - heard
    span = times[-1] - times[0] if n > 1 else float("nan")
    out = {"frames": n, "expected_frames": int(round(total / RATE * FPS)),
           "first_frame_after_half_second_s": round(times[0] - (start + 0.5), 3),
           "frames_per_second": round((n - 1) / span, 2), "real_time_fps": FPS,
           "max_lag_s": round(float(lag.max()), 3), "median_lag_s": round(float(np.median(lag)), 3),
           "last_frame_after_audio_end_s": round(times[-1] - audio_end, 3)}
    if compute is not None:
        out["compute_s"] = round(compute, 2)
        out["compute_frames_per_second"] = round(n / compute, 1)
    return out


def cpu_seconds() -> float:
    """CPU time of this process so far (all threads, user + system)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def bench_python(samples: np.ndarray, chunk: int, settings: Any, generator: Any, renderer: Any,
                 portrait: Any) -> dict[str, Any]:
    """(a) the Python Streamer: a feeder thread in real time, the main thread pushing what has arrived."""
    from talkinghead.stream import Streamer

    streamer = Streamer(portrait, generator, renderer, settings)
    cpu = cpu_seconds()
    inbox: queue.Queue[np.ndarray | None] = queue.Queue()
    start = time.perf_counter() + 0.2
    feeder = threading.Thread(target=lambda: (paced(samples, chunk, start, inbox.put), inbox.put(None)))
    feeder.start()
    times: list[float] = []
    compute = 0.0
    ended = False
    while not ended:
        pieces = [inbox.get()]
        while not inbox.empty():
            pieces.append(inbox.get())
        ended = pieces[-1] is None
        audio = [p for p in pieces if p is not None]
        t = time.perf_counter()
        made = [streamer.advance(np.concatenate(audio))] if audio else []
        if ended:
            made.append(streamer.flush())
        for motion in made:
            for _ in streamer.render(motion):
                times.append(time.perf_counter())
        compute += time.perf_counter() - t
    feeder.join()
    result = summary(times, start, len(samples), compute)
    result["cpu_seconds_per_audio_second"] = round((cpu_seconds() - cpu) / (len(samples) / RATE), 3)
    result["kept_values"] = streamer.kept_values
    return result


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bench_websocket(samples: np.ndarray, chunk: int, settings: Any, generator: Any, renderer: Any) -> dict[str, Any]:
    """(b) the live server's WebSocket: uvicorn in a thread, the websockets client sending in real time."""
    import io
    from types import SimpleNamespace

    import httpx
    import uvicorn
    from fastapi import FastAPI
    from PIL import Image
    from skimage import data
    from websockets.sync.client import connect

    from talkinghead.serve.live import live_router

    app = FastAPI()
    app.include_router(live_router(SimpleNamespace(generator=generator, renderer=renderer)))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        png = io.BytesIO()
        Image.fromarray(data.astronaut()).save(png, "PNG")
        t = time.perf_counter()
        answer = httpx.post(f"http://127.0.0.1:{port}/api/v1/live", files={"image": ("p.png", png.getvalue())},
                            data={"size": str(settings.size), "hop": str(settings.hop),
                                  "lookahead": str(settings.lookahead)}, timeout=120).json()
        fit = time.perf_counter() - t
        cpu = cpu_seconds()
        pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
        times: list[float] = []
        with connect(f"ws://127.0.0.1:{port}{answer['websocket']}", max_size=None) as ws:
            start = time.perf_counter() + 0.2

            def send() -> None:
                paced(pcm, chunk, start, lambda piece: ws.send(piece.tobytes()))
                ws.send("end")

            sender = threading.Thread(target=send)
            sender.start()
            while True:
                message = ws.recv()
                if isinstance(message, str):
                    end = json.loads(message)
                    break
                assert int.from_bytes(message[:4], "big") == len(times), "frames out of order"
                times.append(time.perf_counter())
            sender.join()
        if "error" in end:
            raise SystemExit(f"the live server refused: {end['error']}")
        result = summary(times, start, len(samples))
        result["cpu_seconds_per_audio_second"] = round((cpu_seconds() - cpu) / (len(samples) / RATE), 3)
        result["fit_s"] = round(fit, 2)
        result["end_event_frames"] = end["frames"]
        return result
    finally:
        server.should_exit = True
        thread.join(10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--audio", help="a speech file (default: 30 s of espeak-ng speech)")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--chunk-ms", type=float, default=40.0, help="audio per message, 20-100 ms")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--hop", type=int, default=5, help="frames per chunk")
    parser.add_argument("--lookahead", type=int, default=5, help="frames of look-ahead")
    parser.add_argument("--only", choices=("python", "ws"))
    parser.add_argument("--cv-threads", type=int, help="OpenCV threads (default: OpenCV's own, one per CPU)")
    parser.add_argument("--out", default=str(ROOT / "bench" / "stream.json"))
    args = parser.parse_args()
    if not 20 <= args.chunk_ms <= 100:
        parser.error("--chunk-ms must be between 20 and 100")

    import torch
    from skimage import data

    from talkinghead.generators import Portrait, load_generator, load_renderer

    torch.set_num_threads(1)
    if args.cv_threads is not None:
        import cv2

        cv2.setNumThreads(args.cv_threads)
    samples = speech(args.audio, args.seconds)
    chunk = int(args.chunk_ms * RATE / 1000)
    generator, renderer = load_generator(), load_renderer()
    portrait = Portrait.fit(data.astronaut())
    warm = speech(None, 1.0) if args.audio is None else samples[:RATE]
    from talkinghead.stream import StreamConfig, Streamer

    settings = StreamConfig(size=args.size, hop=args.hop, lookahead=args.lookahead)
    warmup = Streamer(portrait, generator, renderer, settings)
    warmup.push(warm)
    warmup.finish()
    report: dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": f"{os.cpu_count()} CPUs",
                              "audio_seconds": args.seconds, "audio": args.audio or "espeak-ng", "size": args.size,
                              "chunk_ms": args.chunk_ms, "hop": args.hop, "lookahead": args.lookahead,
                              "steps": generator.sampling.steps, "opencv_threads": args.cv_threads or "default",
                              "load_average_before": [round(x, 2) for x in os.getloadavg()]}
    if args.only in (None, "python"):
        report["python"] = bench_python(samples, chunk, settings, generator, renderer, portrait)
        report["python"]["peak_rss_mb"] = round(peak_rss_mb())
    if args.only in (None, "ws"):
        report["websocket"] = bench_websocket(samples, chunk, settings, generator, renderer)
        report["websocket"]["peak_rss_mb"] = round(peak_rss_mb())
    report["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    print(f"streaming benchmark: {args.seconds:g} s of speech in {args.chunk_ms:g} ms chunks, real time, "
          f"{args.size} px, hop {args.hop}, look-ahead {args.lookahead}, {report['machine']}, "
          f"load average before {report['load_average_before']} "
          f"after {report['load_average_after']}")
    for name in ("python", "websocket"):
        if name in report:
            r = report[name]
            print(f"  {name:9s}: first frame {r['first_frame_after_half_second_s']:.3f} s after 0.5 s of audio; "
                  f"{r['frames']}/{r['expected_frames']} frames at {r['frames_per_second']:.2f} fps (real time 25); "
                  f"max lag {r['max_lag_s']:.3f} s, median {r['median_lag_s']:.3f} s; last frame "
                  f"{r['last_frame_after_audio_end_s']:.3f} s after the audio ended; "
                  f"CPU {r['cpu_seconds_per_audio_second']:.2f} s per s of audio; peak RSS {r['peak_rss_mb']} MB"
                  + (f"; compute {r['compute_frames_per_second']} frames/s" if "compute_frames_per_second" in r
                     else ""))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

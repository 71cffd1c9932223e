"""Benchmark the audio frontend: feature extraction speed (x real time) and peak memory.

Each case runs in a fresh subprocess. Memory: ``baseline`` is the resident memory just before the
measured call (libraries imported, input audio in memory where the case has it), ``peak`` the highest
resident memory during the call (VmHWM, reset with /proc/self/clear_refs before the call). Speech is espeak-ng TTS
(a ~10 s paragraph) tiled to the length, with a little noise so no two chunks are identical.

    .venv/bin/python scripts/bench_audio.py            # everything (about 2-3 minutes on 2 cores)
    .venv/bin/python scripts/bench_audio.py --quick    # 60 s cases only

Writes bench/audio.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PARAGRAPH = ("Speech features are aligned to the video frames. The quick brown fox jumps over the lazy dog, "
             "and she sells sea shells by the sea shore while the weather stays calm.")


def _speech(seconds: float):  # type: ignore[no-untyped-def]
    import numpy as np

    from talkinghead.audio.tts import synthesize

    base = synthesize(PARAGRAPH).audio.samples
    reps = int(np.ceil(seconds * 16_000 / base.size))
    x = np.tile(base, reps)[: int(seconds * 16_000)]
    rng = np.random.default_rng(0)
    return (x + 0.003 * rng.standard_normal(x.size)).astype(np.float32)


def _peak_mb() -> float:
    """Peak resident memory of this process (VmHWM; unlike ru_maxrss it is not inherited through exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _reset_peak() -> None:
    """Start peak tracking afresh (Linux: writing 5 to clear_refs resets VmHWM to the current RSS)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def _start(result: dict) -> float:
    """Record the memory in use before the measured call and start timing it."""
    result["baseline_rss_mb"] = round(_rss_mb(), 1)
    _reset_peak()
    return time.perf_counter()


def case(name: str, seconds: float, workdir: str) -> dict:
    """Run inside the child process; returns timings and memory."""
    import numpy as np

    from talkinghead.audio.features import extract_features, extract_file_features
    from talkinghead.audio.spec import AudioFeatureSpec
    from talkinghead.audio.tts import synthesize
    from talkinghead.io.audio import Audio

    spec = AudioFeatureSpec.preset("lowlevel")
    synthesize("warm up")
    extract_features(Audio(np.zeros(16_000, np.float32)), spec)  # warm caches (mel matrices, FFT plans)
    result: dict = {"case": name, "audio_seconds": seconds}
    if name == "lowlevel_memory":
        audio = Audio(_speech(seconds))
        t0 = _start(result)
        feats = extract_features(audio, spec)
        result["seconds"] = time.perf_counter() - t0
    elif name == "make_wav":
        from talkinghead.io.audio import save_wav

        save_wav(Path(workdir) / f"speech_{int(seconds)}.wav", Audio(_speech(seconds)))
        return {"case": name}
    elif name == "lowlevel_file":
        path = Path(workdir) / f"speech_{int(seconds)}.wav"
        t0 = _start(result)
        feats = extract_file_features(path, spec)
        result["seconds"] = time.perf_counter() - t0
    elif name == "pyin":
        import librosa

        x = _speech(seconds)
        t0 = _start(result)
        librosa.pyin(x, fmin=60, fmax=500, sr=16_000, frame_length=800, hop_length=160)
        result["seconds"] = time.perf_counter() - t0
        feats = np.zeros((0, 0))
    elif name == "yin_only":
        x = _speech(seconds)
        f0spec = AudioFeatureSpec(name="f0", kinds=("f0", "voicing"))
        t0 = _start(result)
        feats = extract_features(Audio(x), f0spec)
        result["seconds"] = time.perf_counter() - t0
    elif name.startswith("encoder_"):
        import torch
        import transformers

        kind = name.split("_", 1)[1]
        torch.manual_seed(0)
        folder = Path(workdir) / kind
        if kind == "wav2vec2_base":
            transformers.Wav2Vec2Model(transformers.Wav2Vec2Config()).save_pretrained(str(folder))
        elif kind == "hubert_large":
            transformers.HubertModel(transformers.HubertConfig(
                hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096,
                do_stable_layer_norm=True, feat_extract_norm="layer")).save_pretrained(str(folder))
        else:  # whisper_tiny
            transformers.WhisperModel(transformers.WhisperConfig(
                d_model=384, encoder_layers=4, encoder_attention_heads=6, decoder_layers=4,
                decoder_attention_heads=6, encoder_ffn_dim=1536, decoder_ffn_dim=1536)).save_pretrained(str(folder))
        from talkinghead.audio.encoders import SpeechEncoder

        enc = SpeechEncoder(folder)
        audio = Audio(_speech(seconds))
        t0 = _start(result)
        feats = enc.encode(audio)
        result["seconds"] = time.perf_counter() - t0
        result["note"] = "random weights with the real architecture's sizes (compute is the same)"
    elif name == "align":
        from talkinghead.audio.align import align
        from talkinghead.audio.tts import synthesize

        speech = synthesize(PARAGRAPH)
        t0 = _start(result)
        al = align(speech.audio, PARAGRAPH)
        result["seconds"] = time.perf_counter() - t0
        result["audio_seconds"] = round(speech.duration, 2)
        feats = np.zeros((len(al.phones), 1))
    else:
        raise SystemExit(f"unknown case {name}")
    result["seconds"] = round(result["seconds"], 3)
    result["x_realtime"] = round(result["audio_seconds"] / result["seconds"], 1)
    result["peak_rss_mb"] = round(_peak_mb(), 1)
    result["output_shape"] = list(feats.shape)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child", nargs=3, metavar=("CASE", "SECONDS", "WORKDIR"))
    parser.add_argument("--out", default=str(ROOT / "bench" / "audio.json"))
    args = parser.parse_args()
    if args.child:
        print(json.dumps(case(args.child[0], float(args.child[1]), args.child[2])))
        return
    cases = [("lowlevel_memory", 60), ("lowlevel_file", 60), ("yin_only", 60), ("pyin", 10), ("align", 0),
             ("encoder_wav2vec2_base", 60), ("encoder_whisper_tiny", 60)]
    if not args.quick:
        cases += [("lowlevel_memory", 3600), ("lowlevel_file", 3600), ("encoder_hubert_large", 60)]
    results = []
    with tempfile.TemporaryDirectory() as workdir:
        wavs = [("make_wav", s) for c, s in cases if c == "lowlevel_file"]
        for name, seconds in wavs + cases:
            proc = subprocess.run([sys.executable, __file__, "--child", name, str(seconds), workdir],
                                  capture_output=True, text=True, env={"TALKINGHEAD_QUIET": "1", "PATH": ""})
            if proc.returncode != 0:
                print(proc.stderr[-2000:], file=sys.stderr)
                raise SystemExit(f"case {name} failed")
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            if name == "make_wav":
                continue
            results.append(r)
            print(f"| {r['case']} | {r['audio_seconds']:g} s | {r['seconds']:.2f} s | {r['x_realtime']:g}x | "
                  f"{r['peak_rss_mb']:.0f} MB (baseline {r['baseline_rss_mb']:.0f}) |", flush=True)
    report = {"machine": f"{platform.processor() or platform.machine()}, {_cores()} cores, no GPU",
              "python": platform.python_version(), "date": time.strftime("%Y-%m-%d"), "results": results}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


if __name__ == "__main__":
    main()

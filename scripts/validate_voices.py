"""Lip sync of the shipped default on voices the corpus never used (DreamTalk issue, item 8).

For each voice (espeak-ng as in the corpus, and Debian's flite and festival synthesisers when they
are installed: ``apt-get install flite festival``), the same sentences are spoken, motion is generated
with the shipped checkpoints (neutral style from the style bank) and two measures are taken:

- ``jaw~energy``: Pearson correlation of the generated ``jawOpen`` with the speech's log energy per
  frame (lag 0; the mouth opens on loud vowels and closes in pauses);
- ``P_sync in / off``: the trained style-aware lip expert's mean sync probability for the generated
  mouth with its own audio, and with the audio moved by 10 frames (a lip-synced result scores high
  in sync and low off sync).

Writes bench/voices.json and prints a markdown table (copied into docs/generate.md).
Usage: .venv/bin/python scripts/validate_voices.py [--checkpoint weights/dreamtalk]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import torch

from talkinghead.api import generate_motion, load_models
from talkinghead.audio.features import extract_features
from talkinghead.audio.spec import checkpoint_spec, select_kinds
from talkinghead.audio.tts import VoiceConfig, synthesize
from talkinghead.io.audio import Audio, load_audio
from talkinghead.motion.dreamtalk import StyleAwareLipExpert

SENTENCES = (
    "Please call Stella and ask her to bring these things with her from the store.",
    "The quick brown fox jumps over the lazy dog, then sleeps in the warm sun.",
    "My mother bought a big blue umbrella before the long summer trip.",
)
SHIFT = 10


def voices(tmp: Path) -> dict[str, list[Audio]]:
    out: dict[str, list[Audio]] = {
        "espeak-ng en-us (corpus synthesiser)": [synthesize(s, VoiceConfig(voice="en-us")).audio for s in SENTENCES],
    }
    if shutil.which("flite"):
        for v in ("slt", "rms", "awb", "kal"):
            files = []
            for i, s in enumerate(SENTENCES):
                path = tmp / f"flite_{v}_{i}.wav"
                subprocess.run(["flite", "-voice", v, "-t", s, "-o", str(path)], check=True)
                files.append(load_audio(path))
            out[f"flite {v} (never heard)"] = files
    if shutil.which("text2wave"):
        files = []
        for i, s in enumerate(SENTENCES):
            path = tmp / f"festival_{i}.wav"
            subprocess.run(["text2wave", "-o", str(path)], input=s.encode(), check=True)
            files.append(load_audio(path))
        out["festival kal_diphone (never heard)"] = files
    return out


def measures(audio: Audio, expert: StyleAwareLipExpert, models: object, image: np.ndarray) -> dict[str, float]:
    result = generate_motion(image, audio, emotion="neutral", models=models)  # type: ignore[arg-type]
    motion = result.motion
    hop = audio.sample_rate / motion.fps
    t = len(motion)
    rms = np.array([np.sqrt(np.mean(audio.samples[int(i * hop):int((i + 1) * hop)] ** 2) + 1e-12) for i in range(t)])
    jaw = motion.channel("jawOpen")
    corr = float(np.corrcoef(jaw, np.log(rms + 1e-4))[0, 1])
    spec = checkpoint_spec(expert.audio_features, "lip expert", 25.0)
    names, dims = expert.audio_features["names"], expert.audio_features["dims"]
    feats = select_kinds(extract_features(audio, spec), spec, names, dims, "lip expert")[:t]
    n = expert.config.clip_frames
    expr = torch.from_numpy(motion.expression[: len(feats)])
    a = torch.from_numpy(feats.astype(np.float32))
    starts = range(SHIFT, len(feats) - n - SHIFT, 2)
    style = expr[None]
    with torch.no_grad():
        p_in = [float(expert.sync_probability(a[s:s + n][None], expr[s:s + n][None], style)) for s in starts]
        p_off = [float(expert.sync_probability(a[s + SHIFT:s + SHIFT + n][None], expr[s:s + n][None], style))
                 for s in starts]
    return {"jaw_energy_corr": corr, "p_sync_in": float(np.mean(p_in)), "p_sync_off": float(np.mean(p_off))}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--checkpoint", default="weights/dreamtalk")
    args = parser.parse_args()
    torch.set_num_threads(1)
    from skimage import data

    models = load_models(args.checkpoint)
    expert = StyleAwareLipExpert.from_pretrained(Path(args.checkpoint) / "lip_expert")
    image = data.astronaut()
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, audios in voices(Path(tmp)).items():
            per = [measures(a, expert, models, image) for a in audios]
            rows[name] = {k: float(np.mean([p[k] for p in per])) for k in per[0]}
    Path("bench").mkdir(exist_ok=True)
    Path("bench/voices.json").write_text(json.dumps(rows, indent=2) + "\n")
    print("| voice | jaw~energy | P_sync in sync | P_sync off by 10 frames |")
    print("|---|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {r['jaw_energy_corr']:.2f} | {r['p_sync_in']:.2f} | {r['p_sync_off']:.2f} |")


if __name__ == "__main__":
    main()

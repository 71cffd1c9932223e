"""What DICE-Talk's denoiser listens to, and what its emotion discriminator reads (issue 17; docs/dice.md).

On labelled training windows of the video corpus (``--windows`` batches of 4, the ``dice.video`` sampler's draws,
fixed seeds), at noise levels ``--sigmas``:

- **condition sensitivity**: the RMS change of the denoised clip ``D(x; sigma)`` (latent units) when one condition
  changes, the others kept: the emotion prompt (happy -> angry, sad, surprised), the emotion dropped, the audio of
  another window, the reference image of another window; beside the RMS error of ``D`` against the clean latents.
  A condition the network ignores changes ``D`` by about nothing;
- **the discriminator's evidence** (Eq. 16): the emotion classifier on the UNet's pooled mid-block features (the
  content variant's: on the denoised prediction), for the
  true emotion prompt, a wrong one (the true emotion's index + 3) and no emotion. If it reads the clip's content,
  it names the true emotion whatever prompt is given; if it reads the injected condition, it names the prompt.

    .venv/bin/python scripts/dice_conditions.py NAME=NETWORK_DIR [...] --embedder weights/dice/embedder
        --vae weights/emo/vae --data VIDEO/corpus -o docs/evaluation/dice/conditions
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch


def windows(data: str, vae: str, embedder: str, count: int) -> tuple[Any, list[dict[str, torch.Tensor]]]:
    """The embedder and ``count`` labelled batches of 4 (latents, reference latents, audio, labels)."""
    from talkinghead.video.dice.training import build_video

    solver = build_video(data, "cpu", vae=vae, embedder=embedder, train_overrides={"real_fraction": 0.0}).solver
    out = []
    for k in range(count):
        batch = solver.make_batch(np.random.default_rng([100, k]), 4)
        with torch.no_grad():
            frames = batch["frames"]
            b, f = frames.shape[:2]
            out.append({"latents": solver.vae.encode(frames.flatten(0, 1)).unflatten(0, (b, f)),
                        "reference": solver.vae.encode(batch["reference"]), "audio": batch["audio"],
                        "label": batch["label"]})
    return solver.embedder, out


@torch.no_grad()
def one_batch(net: Any, tokens: torch.Tensor, emotions: list[str], batch: dict[str, torch.Tensor], sigma: float,
              seed: int) -> tuple[dict[str, float], dict[str, int]]:
    """One batch at one noise level: the RMS changes of ``D`` and the discriminator's votes (module docstring)."""
    from talkinghead.video.dice.discriminator import LatentEmotionJudge
    from talkinghead.video.dice.edm import GuidanceScales, precondition

    lat, ref, audio, label = batch["latents"], batch["reference"], batch["audio"], batch["label"]
    b = len(label)
    x = lat + sigma * torch.randn(lat.shape, generator=torch.Generator().manual_seed(seed))
    s = torch.full((b,), sigma)
    plain = GuidanceScales(1.0, 1.0, 1.0)

    def prompt(name: str) -> torch.Tensor:
        return tokens[emotions.index(name)].expand(b, -1, -1)

    base = net.denoiser(ref, audio, prompt("happy"), plain)(x, s)
    changed = {"error against the clean latents": lat,
               "emotion happy -> angry": net.denoiser(ref, audio, prompt("angry"), plain)(x, s),
               "emotion happy -> sad": net.denoiser(ref, audio, prompt("sad"), plain)(x, s),
               "emotion happy -> surprised": net.denoiser(ref, audio, prompt("surprised"), plain)(x, s),
               "emotion dropped": net.denoiser(ref, audio, None, plain)(x, s),
               "audio of another window": net.denoiser(ref, audio.roll(1, 0), prompt("happy"), plain)(x, s),
               "reference of another window": net.denoiser(ref.roll(1, 0), audio, prompt("happy"), plain)(x, s)}
    rms = {name: float((other - base).pow(2).mean().sqrt()) for name, other in changed.items()}
    wrong = (label + 3) % len(emotions)
    no_emotion = {"emotion": torch.ones(b, dtype=torch.bool)}
    cases = ((tokens[label], None), (tokens[wrong], None), (tokens[label], no_emotion))
    if isinstance(net.discriminator, LatentEmotionJudge):          # the content variant judges the prediction D(x)
        named = [net.discriminator(net.denoiser(ref, audio, None if drop else emotion, plain)(x, s)).argmax(-1)
                 for emotion, drop in cases]
    else:                                                          # the paper's: the UNet's pooled features
        p = precondition(s, net.dice_config.edm.sigma_data)
        z = x * p.c_in.view(-1, 1, 1, 1, 1)
        named = [net.discriminator(net.unet(z, p.c_noise, ref, audio, emotion, drop).features).argmax(-1)
                 for emotion, drop in cases]
    votes = {"true prompt -> true": int((named[0] == label).sum()),
             "wrong prompt -> the prompt": int((named[1] == wrong).sum()),
             "wrong prompt -> true": int((named[1] == label).sum()),
             "no emotion -> true": int((named[2] == label).sum())}
    return rms, votes


def measure(network_dir: str, embedder: Any, batches: list[dict[str, torch.Tensor]], sigmas: list[float]
            ) -> dict[str, Any]:
    from talkinghead.video.dice.network import DICENetwork

    net = DICENetwork.from_pretrained(network_dir).eval()
    emotions = list(embedder.emotions)
    with torch.no_grad():
        tokens = net.emotion_tokens(torch.stack([embedder.emotion_prompt(e) for e in emotions]))   # [K, 1, d]
    result: dict[str, Any] = {}
    for sigma in sigmas:
        change: dict[str, list[float]] = {}
        votes: dict[str, int] = {}
        for i, batch in enumerate(batches):
            rms, counted = one_batch(net, tokens, emotions, batch, sigma, i)
            for name, value in rms.items():
                change.setdefault(name, []).append(value)
            for name, n in counted.items():
                votes[name] = votes.get(name, 0) + n
        total = sum(len(batch["label"]) for batch in batches)
        result[f"sigma={sigma:g}"] = {"rms_change": {k: float(np.mean(v)) for k, v in change.items()},
                                      "discriminator": {k: v / total for k, v in votes.items()}, "samples": total}
    return result


def table(results: dict[str, dict[str, Any]]) -> str:
    lines = ["| network | sigma | " + " | ".join(next(iter(next(iter(results.values())).values()))["rms_change"])
             + " |", ""]
    lines[1] = "|" + "---|" * (lines[0].count("|") - 1)
    for name, by_sigma in results.items():
        for sigma, row in by_sigma.items():
            lines.append(f"| {name} | {sigma.split('=')[1]} | "
                         + " | ".join(f"{v:.4f}" for v in row["rms_change"].values()) + " |")
    votes = next(iter(next(iter(results.values())).values()))["discriminator"]
    lines += ["", "| network | sigma | " + " | ".join(votes) + " |", "|" + "---|" * (len(votes) + 2)]
    for name, by_sigma in results.items():
        for sigma, row in by_sigma.items():
            lines.append(f"| {name} | {sigma.split('=')[1]} | "
                         + " | ".join(f"{v:.2f}" for v in row["discriminator"].values()) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("networks", nargs="+", help="NAME=DIR of dice.video checkpoints")
    parser.add_argument("--embedder", default="weights/dice/embedder")
    parser.add_argument("--vae", default="weights/emo/vae")
    parser.add_argument("--data", default="/tmp/talkinghead-video/corpus")
    parser.add_argument("--windows", type=int, default=3)
    parser.add_argument("--sigmas", default="0.5,2")
    parser.add_argument("-o", "--out", required=True)
    args = parser.parse_args()
    torch.set_num_threads(1)
    embedder, batches = windows(args.data, args.vae, args.embedder, args.windows)
    sigmas = [float(v) for v in args.sigmas.split(",")]
    results = {}
    for spec in args.networks:
        name, _, path = spec.partition("=")
        if not Path(path).is_dir():
            sys.exit(f"{path} is not a dice.video checkpoint folder.")
        results[name] = measure(path, embedder, batches, sigmas)
        print(name, json.dumps(results[name]), flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(results, indent=2) + "\n")
    command = "scripts/dice_conditions.py " + " ".join(sys.argv[1:])
    (out / "report.md").write_text(f"# DICE-Talk: what the denoiser listens to\n\nMade by `{command}` "
                                   f"({args.windows} batches of 4 labelled training windows).\n\n" + table(results))
    print(f"wrote {out / 'report.md'}")


if __name__ == "__main__":
    main()

"""Can a clip's emotion be read from the DICE VAE's clean latents, on identities never seen? (issue 17)

The content-discriminator variant (``dice.video --discriminate prediction``) needs a judge that names the emotion of
clean clip latents; in its first run that judge stayed at chance. This probe encodes a fixed set of windows of the
video corpus's train split once (``--windows`` per side, ``--frames`` frames each, with the shipped VAE), holds out
every fourth identity, and trains small judges on the cached latents:

- ``pooled``: :class:`LatentEmotionJudge` as the variant uses it (two stride-2 convolutions, the average over frames
  and positions, the MLP);
- ``spatial``: the same convolutions, averaged over frames only, the feature map flattened into the MLP (where on the
  face a pattern lies is kept);
- ``linear``: logistic regression on the frame-averaged latent minus its identity's mean (identity removed by hand);
- ``via expression``: a per-frame regressor from the latent to the face model's expression coefficients (the corpus
  stores them for every frame: dense supervision), then logistic regression from the frame-averaged expression to
  the emotion, fitted on the true expressions of the train windows. Also reported: that classifier on the *true*
  expressions of the held-out windows (can the emotion be read from the coefficients at all, across identities?)
  and the regressor's held-out R^2.

Prints train and held-out accuracy per judge (chance 1/8) and writes them to ``--out`` as JSON.

    .venv/bin/python scripts/dice_latent_probe.py [--data /tmp/talkinghead-video/corpus] [--vae weights/dice/vae]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from talkinghead.data.video.loader import VideoSampler
from talkinghead.nn.latent import LatentVAE, frames_to_tensor
from talkinghead.video.dice.discriminator import DiscriminatorConfig, EmotionDiscriminator, LatentEmotionJudge

ROOT = Path(__file__).resolve().parents[1]


class SpatialJudge(nn.Module):
    """``[B, F, c, h, w]`` -> logits: LatentEmotionJudge's convolutions, frames averaged, the map flattened."""

    def __init__(self, channels: int, side: int, config: DiscriminatorConfig) -> None:
        super().__init__()
        width = config.feature_dim
        self.conv = nn.Sequential(nn.Conv2d(channels, width // 2, 3, stride=2, padding=1), nn.SiLU(),
                                  nn.Conv2d(width // 2, width // 8, 3, stride=2, padding=1), nn.SiLU())
        self.head = EmotionDiscriminator(config.replace(feature_dim=(width // 8) * (side // 4) ** 2))

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        b, f = latents.shape[:2]
        maps = self.conv(latents.flatten(0, 1)).unflatten(0, (b, f)).mean(dim=1)
        return self.head(maps.flatten(1))  # type: ignore[no-any-return]


class ExpressionRegressor(nn.Module):
    """One frame's latent ``[B, c, h, w]`` -> expression ``[B, E]``."""

    def __init__(self, channels: int, side: int, expression: int, width: int = 64) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(channels, width, 3, stride=2, padding=1), nn.SiLU(),
                                 nn.Conv2d(width, width, 3, stride=2, padding=1), nn.SiLU(), nn.Flatten(),
                                 nn.Linear(width * (side // 4) ** 2, 256), nn.SiLU(), nn.Linear(256, expression))

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        return self.net(latent)  # type: ignore[no-any-return]


def encode(sampler: VideoSampler, vae: LatentVAE, clips: list[int], frames: int, rng: np.random.Generator,
           batch: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """Latents ``[N, F, c, h, w]`` and expressions ``[N, F, E]`` of one window of each clip."""
    out, expr = [], []
    for i in range(0, len(clips), batch):
        part = clips[i:i + batch]
        w = sampler.windows(rng, len(part), 0, frames, 0, audio=False, clips=part)
        with torch.no_grad():
            out.append(vae.encode(frames_to_tensor(w.frames, vae.image_size).flatten(0, 1)).unflatten(0, (len(part),
                                                                                                      frames)))
        expr.append(torch.from_numpy(np.asarray(w.expression, np.float32)))
    return torch.cat(out), torch.cat(expr)


def fit(judge: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int, lr: float, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(judge.parameters(), lr=lr, weight_decay=1e-4)
    for _ in range(steps):
        idx = torch.randint(len(x), (32,), generator=gen)
        loss = nn.functional.cross_entropy(judge(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()


def accuracy(judge: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        return float((judge(x).argmax(1) == y).float().mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="/tmp/talkinghead-video/corpus")
    ap.add_argument("--vae", default=str(ROOT / "weights" / "dice" / "vae"))
    ap.add_argument("--windows", type=int, default=480, help="train windows (test: a third as many)")
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "docs" / "evaluation" / "dice" / "latent_probe.json"))
    args = ap.parse_args()
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    start = time.time()
    sampler = VideoSampler([args.data], "train", features=())
    vae = LatentVAE.load(args.vae)
    labels = sampler.labels
    emotions = sorted({lab.meta.emotion for lab in labels})
    identities = sorted({lab.meta.identity for lab in labels})
    held = set(identities[::4])
    pools = {side: [k for k, lab in enumerate(labels) if (lab.meta.identity in held) == (side == "test")
                    and len(lab.box) >= args.frames] for side in ("train", "test")}
    sizes = {"train": args.windows, "test": args.windows // 3}
    data = {}
    for side, pool in pools.items():
        clips = [int(c) for c in rng.choice(pool, sizes[side])]
        x, e = encode(sampler, vae, clips, args.frames, rng)
        y = torch.tensor([emotions.index(labels[k].meta.emotion) for k in clips])
        ids = [labels[k].meta.identity for k in clips]
        data[side] = (x, y, ids, e)
        print(f"{side}: {len(clips)} windows {list(x.shape)} ({time.time() - start:.0f} s)", flush=True)
    channels, side = data["train"][0].shape[2], data["train"][0].shape[-1]
    config = DiscriminatorConfig.preset("cpu").replace(emotions=len(emotions))
    results: dict[str, dict[str, float]] = {}
    judges = (("pooled", LatentEmotionJudge(channels, config)), ("spatial", SpatialJudge(channels, side, config)))
    for name, judge in judges:
        fit(judge, data["train"][0], data["train"][1], args.steps, 1e-3, args.seed)
        results[name] = {"train": accuracy(judge, *data["train"][:2]), "held_out": accuracy(judge, *data["test"][:2])}
        print(name, results[name], f"({time.time() - start:.0f} s)", flush=True)

    def centred(x: torch.Tensor, ids: list[str]) -> torch.Tensor:
        flat = x.mean(1).flatten(1)
        out = flat.clone()
        for ident in set(ids):
            rows = [i for i, v in enumerate(ids) if v == ident]
            out[rows] = flat[rows] - flat[rows].mean(0)
        return out / (out.std() + 1e-6)

    xtr, xte = centred(data["train"][0], data["train"][2]), centred(data["test"][0], data["test"][2])
    linear = nn.Linear(xtr.shape[1], len(emotions))
    fit(linear, xtr, data["train"][1], args.steps, 1e-3, args.seed)
    results["linear (identity mean removed)"] = {"train": accuracy(linear, xtr, data["train"][1]),
                                                 "held_out": accuracy(linear, xte, data["test"][1])}
    print("linear", results["linear (identity mean removed)"], flush=True)

    # via the expression coefficients
    xtr_f, etr_f = data["train"][0].flatten(0, 1), data["train"][3].flatten(0, 1)
    xte_f, ete_f = data["test"][0].flatten(0, 1), data["test"][3].flatten(0, 1)
    mean, std = etr_f.mean(0), etr_f.std(0) + 1e-3
    regressor = ExpressionRegressor(channels, side, etr_f.shape[1])
    gen = torch.Generator().manual_seed(args.seed)
    opt = torch.optim.Adam(regressor.parameters(), lr=1e-3, weight_decay=1e-4)
    for _ in range(args.steps * 2):
        idx = torch.randint(len(xtr_f), (64,), generator=gen)
        loss = nn.functional.mse_loss(regressor(xtr_f[idx]), (etr_f[idx] - mean) / std)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        pred_te = regressor(xte_f) * std + mean
        pred_tr = regressor(xtr_f) * std + mean
    varying = etr_f.std(0) > 0.02
    r2 = 1 - ((pred_te - ete_f) ** 2).mean(0)[varying] / ete_f.var(0)[varying].clamp_min(1e-6)
    classifier = nn.Linear(etr_f.shape[1], len(emotions))
    e_mean = data["train"][3].mean(1)
    fit(classifier, (e_mean - mean) / std, data["train"][1], args.steps, 1e-2, args.seed)
    f = args.frames
    results["via expression"] = {
        "train": accuracy(classifier, (pred_tr.unflatten(0, (-1, f)).mean(1) - mean) / std, data["train"][1]),
        "held_out": accuracy(classifier, (pred_te.unflatten(0, (-1, f)).mean(1) - mean) / std, data["test"][1]),
        "held_out_true_expression": accuracy(classifier, (data["test"][3].mean(1) - mean) / std, data["test"][1]),
        "train_true_expression": accuracy(classifier, (e_mean - mean) / std, data["train"][1]),
        "regressor_held_out_r2_median": float(r2.median()), "regressor_held_out_r2_mean": float(r2.mean())}
    print("via expression", results["via expression"], flush=True)
    report = {"data": args.data, "vae": args.vae, "frames": args.frames, "windows": sizes, "steps": args.steps,
              "held_out_identities": sorted(held), "emotions": emotions, "chance": 1 / len(emotions),
              "accuracy": results, "seconds": round(time.time() - start)}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["accuracy"], indent=2))


if __name__ == "__main__":
    main()

"""Reference scales for SCD (DreamTalk App. A, Tab. 4) on the corpus test split: how far the denoiser's
style codes of the clips' own motion lie from simple guesses (the mean training code, a clip of the same
speaker with another emotion, of another speaker with the same emotion and intensity, any test clip).

    .venv/bin/python scripts/style_code_reference.py --data CORPUS --checkpoint weights/dreamtalk

Prints the mean L2 distances and writes them to bench/style_code_reference.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from talkinghead.data.dataset import Dataset
from talkinghead.motion.dreamtalk.generator import DreamTalkGenerator


def style_codes(data: Dataset, generator: DreamTalkGenerator, ids: list[str]) -> np.ndarray:
    return np.stack([generator.encode_reference(data.clip(i).motion) for i in ids])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--checkpoint", default="weights/dreamtalk")
    parser.add_argument("--train-clips", type=int, default=600)
    parser.add_argument("--out", default="bench/style_code_reference.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    data, den = Dataset(args.data), DreamTalkGenerator.from_pretrained(args.checkpoint)
    test_ids = data.ids("test")
    test = style_codes(data, den, test_ids)
    mean = style_codes(data, den, data.ids("train")[:args.train_clips]).mean(0)
    meta = [data.meta(i) for i in test_ids]
    rng = np.random.default_rng(0)

    def partner_distance(match: object) -> float:
        dists = []
        for k, m in enumerate(meta):
            pool = [j for j, o in enumerate(meta) if j != k and match(m, o)]  # type: ignore[operator]
            dists.append(float(np.linalg.norm(test[k] - test[rng.choice(pool)])))
        return float(np.mean(dists))

    result = {
        "train-mean code": float(np.linalg.norm(test - mean, axis=1).mean()),
        "same speaker, other emotion": partner_distance(lambda m, o: o.speaker == m.speaker and o.emotion != m.emotion),
        "other speaker, same emotion and intensity": partner_distance(
            lambda m, o: o.speaker != m.speaker and o.emotion == m.emotion and o.intensity == m.intensity),
        "any test clip": partner_distance(lambda m, o: True),
        "mean code norm": float(np.linalg.norm(test, axis=1).mean()),
    }
    for name, value in result.items():
        print(f"{name:45s} {value:.3f}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"data": args.data, "clips": len(test_ids), **result}, indent=2) + "\n")


if __name__ == "__main__":
    main()

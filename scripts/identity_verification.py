"""How well F-SIM's identity embedding tells a person from other people across photos (docs/evaluation/identity/).

Frames of every portrait of the video corpus (and of the real videos), all splits; only pairs of frames from two
*different* portraits count. Three kinds of pair:

- same person, another photo or video (expr_woman's five photos, clm_author's two webcam videos, franck's video
  against his rendered portrait): should be similar;
- another person from the *same* photo (the four family members of one stock photo, the two children of one picture):
  the hard negatives, where the colours, the light and the camera are shared and only the face differs;
- another person from another photo.

For the shipped embedding (weights/judges/identity, or --net), the same architecture untrained, and a colour
histogram of the same pixels: the mean cosine of each kind, the verification ROC AUC (same person against everyone
else) and the AUC of same person against the hard negatives only, each also with the second frame of every pair in
grey scale (colour cannot match it). Writes OUT.json and OUT.md.

    .venv/bin/python scripts/identity_verification.py --data VIDEO/corpus --real VIDEO/real \
        --out docs/evaluation/identity/verification
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from talkinghead.data.video.format import VideoDataset
from talkinghead.evaluation.identity import IdentityNet, colour_histogram, grey_copy, pair_auc, shipped_identity_folder
from talkinghead.evaluation.identity_training import identity_frames

#: portraits cut from one source picture (../shared/realdata README): other people under the same light and camera
SAME_PICTURE = ({"family_father", "family_mother", "family_boy", "family_girl"}, {"child_girl", "child_boy"})


def _pair_kinds(labels: np.ndarray, photos: np.ndarray, identities: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Masks ``[N, N]`` (i != j, different portraits) of the three pair kinds of the module docstring."""
    same = labels[:, None] == labels[None, :]
    cross = photos[:, None] != photos[None, :]
    picture = np.array([next((k for k, g in enumerate(SAME_PICTURE) if identities[i] in g), -1 - i)
                        for i in labels])
    one_picture = picture[:, None] == picture[None, :]
    return {"same person, other photo": cross & same, "other person, same photo": cross & ~same & one_picture,
            "other person, other photo": cross & ~same & ~one_picture}


def _auc(sims: np.ndarray, positive: np.ndarray, negative: np.ndarray) -> float:
    from scipy.stats import rankdata

    values = np.concatenate([sims[positive], sims[negative]])
    ranks = rankdata(values)
    n_pos, n_neg = int(positive.sum()), int(negative.sum())
    return float((ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="the video corpus")
    parser.add_argument("--real", help="the real videos' dataset")
    parser.add_argument("--net", help="an identity network folder (default: the shipped one)")
    parser.add_argument("--frames-per-clip", type=int, default=2)
    parser.add_argument("--out", required=True, help="OUT.json and OUT.md are written")
    args = parser.parse_args()
    start = time.perf_counter()
    datasets = [VideoDataset(args.data)] + ([VideoDataset(args.real)] if args.real else [])
    sample = identity_frames(datasets, ("train", "val", "test"), args.frames_per_clip)
    folder = Path(args.net) if args.net else shipped_identity_folder()
    net = IdentityNet.from_pretrained(folder)
    torch.manual_seed(0)
    untrained = IdentityNet(net.config).eval()
    kinds = _pair_kinds(sample.labels, sample.photos, sample.identities)
    embedders = {"identity embedding (trained here)": net.embed, "the same network, untrained": untrained.embed,
                 "colour histogram": lambda f: colour_histogram(f, net.config.face_fraction)}
    grey = grey_copy(sample.frames)
    results: dict[str, dict[str, float]] = {}
    for name, embed in embedders.items():
        plain = embed(sample.frames)
        plain = plain / np.linalg.norm(plain, axis=1, keepdims=True)
        for variant, other in (("", plain), (", second frame grey", embed(grey))):
            other = other / np.linalg.norm(other, axis=1, keepdims=True)
            sims = plain @ other.T
            row = {f"mean cosine: {k}": float(sims[m].mean()) for k, m in kinds.items()}
            positive = kinds["same person, other photo"]
            row["AUC: same person vs everyone else"] = _auc(sims, positive, ~positive & (
                kinds["other person, same photo"] | kinds["other person, other photo"]))
            hard = kinds["other person, same photo"]
            row["AUC: same person vs other person, same photo"] = _auc(sims, positive, hard)
            results[name + variant] = row
    check = pair_auc(net.embed(sample.frames), sample.labels, sample.photos)
    assert abs(check - results["identity embedding (trained here)"]["AUC: same person vs everyone else"]) < 1e-9
    counts = {k: int(m.sum()) for k, m in kinds.items()}
    report = {"data": [str(d.root) for d in datasets], "net": str(folder), "frames": len(sample.frames),
              "portraits": int(sample.photos.max()) + 1, "identities": list(sample.identities),
              "not_trained_on": json.loads((folder / "config.json").read_text())["extra"].get("not_trained_on"),
              "pairs": counts, "results": results, "seconds": round(time.perf_counter() - start, 1)}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    columns = list(next(iter(results.values())))
    lines = [f"# Identity verification across photos ({report['frames']} frames of {report['portraits']} portraits, "
             f"{len(sample.identities)} people)", "",
             "Pairs of frames from two different portraits only; counts: " +
             ", ".join(f"{k} {v}" for k, v in counts.items()) + f". Network: {folder}; not trained on: "
             f"{', '.join(report['not_trained_on'] or []) or 'none'}. Made by `scripts/identity_verification.py` "
             f"in {report['seconds']:.0f} s.", "",
             "| embedding | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
    lines += [f"| {name} | " + " | ".join(f"{v:.3f}" for v in row.values()) + " |" for name, row in results.items()]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

"""A bank of mean style codes per (emotion, intensity): style from an emotion name (DreamTalk 4.5).

DreamTalk takes the speaking style from a reference clip (3.2, style encoder) or predicts it from
audio and portrait (3.2, style predictor, Eq. 4). Users also want to ask for "happy, intensity 3"
without a clip; the paper has no such control, so this module adds one in the spirit of its style
space (4.5 "style space", Fig. 10-11, where codes of one emotion cluster and interpolate smoothly):
the bank holds, for every (emotion, intensity) of a dataset's training split, the mean of the trained
denoiser's style codes over those clips (the whole clip is the reference, its middle 256 frames at
most, the paper's longest reference; App. C.1).

Stored next to the checkpoints as ``style_bank.safetensors`` (the codes ``[K, d]`` as one tensor) and
``style_bank.json`` (keys, clip counts, dataset and a fingerprint of the denoiser's style encoder:
a bank made with another denoiser is refused, since its codes would mean nothing to this one).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.numpy import load_file, save_file

from talkinghead.errors import TalkingHeadError
from talkinghead.io.files import atomic_path
from talkinghead.log import progress
from talkinghead.motion.dreamtalk.denoiser import DreamTalkDenoiser
from talkinghead.sequence import middle_frames

BANK_WEIGHTS = "style_bank.safetensors"
BANK_META = "style_bank.json"
BANK_FORMAT = "talkinghead-style-bank"


def style_encoder_fingerprint(denoiser: DreamTalkDenoiser) -> str:
    """A hash of everything that determines the denoiser's style codes (style encoder + motion statistics)."""
    digest = hashlib.sha256()
    state = denoiser.state_dict()
    for name in sorted(state):
        if name.startswith(("style_encoder.", "motion_norm.")):
            digest.update(name.encode())
            digest.update(state[name].detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


@dataclass
class StyleBank:
    """Mean style codes ``codes[(emotion, intensity)] -> [d]`` with the clip count behind each."""

    codes: dict[tuple[str, int], np.ndarray]
    counts: dict[tuple[str, int], int]
    fingerprint: str
    source: dict[str, Any] = field(default_factory=dict)

    @property
    def emotions(self) -> list[str]:
        return sorted({e for e, _ in self.codes})

    def lookup(self, emotion: str, intensity: int | None = None) -> np.ndarray:
        """The style code of ``emotion`` at ``intensity`` (1-3); no intensity: the count-weighted mean
        over the emotion's intensities."""
        if emotion not in self.emotions:
            raise TalkingHeadError(f"The style bank has no emotion '{emotion}'; it has {', '.join(self.emotions)}.")
        if intensity is None:
            keys = [k for k in self.codes if k[0] == emotion]
            weights = np.array([self.counts[k] for k in keys], np.float64)
            stacked = np.stack([self.codes[k] for k in keys]).astype(np.float64)
            return (weights[:, None] * stacked).sum(0).astype(np.float32) / np.float32(weights.sum())
        if (emotion, intensity) not in self.codes:
            have = sorted(i for e, i in self.codes if e == emotion)
            raise TalkingHeadError(f"The style bank has '{emotion}' only at intensity "
                                   f"{', '.join(map(str, have))}, not {intensity}.")
        return self.codes[(emotion, intensity)]

    def check_denoiser(self, denoiser: DreamTalkDenoiser) -> None:
        if style_encoder_fingerprint(denoiser) != self.fingerprint:
            raise TalkingHeadError("The style bank was built with another denoiser; rebuild it with "
                                   "talkinghead build-style-bank.")

    def save(self, directory: str | Path) -> Path:
        """Write ``style_bank.safetensors`` and ``style_bank.json`` into ``directory`` (atomically each)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        keys = sorted(self.codes)
        with atomic_path(directory / BANK_WEIGHTS) as tmp:
            save_file({"codes": np.stack([self.codes[k] for k in keys]).astype(np.float32)}, str(tmp))
        meta = {"format": BANK_FORMAT, "version": 1, "fingerprint": self.fingerprint, "source": self.source,
                "entries": [{"emotion": e, "intensity": i, "clips": self.counts[(e, i)]} for e, i in keys]}
        with atomic_path(directory / BANK_META) as tmp:
            Path(tmp).write_text(json.dumps(meta, indent=2))
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> StyleBank:
        directory = Path(directory)
        meta_path, weights_path = directory / BANK_META, directory / BANK_WEIGHTS
        if not meta_path.exists() or not weights_path.exists():
            raise TalkingHeadError(f"{directory} has no style bank; build one with talkinghead build-style-bank.")
        try:
            meta = json.loads(meta_path.read_text())
            codes = load_file(str(weights_path))["codes"]
        except (OSError, ValueError, KeyError) as err:
            raise TalkingHeadError(f"The style bank in {directory} is unreadable or corrupt.") from err
        if meta.get("format") != BANK_FORMAT or len(meta.get("entries", ())) != len(codes):
            raise TalkingHeadError(f"The style bank in {directory} is not a talkinghead style bank.")
        keys = [(str(m["emotion"]), int(m["intensity"])) for m in meta["entries"]]
        return cls({k: codes[i] for i, k in enumerate(keys)},
                   {k: int(m["clips"]) for k, m in zip(keys, meta["entries"], strict=True)},
                   str(meta["fingerprint"]), dict(meta.get("source", {})))


@torch.no_grad()
def build_style_bank(data: str | Path, denoiser: DreamTalkDenoiser, split: str = "train") -> StyleBank:
    """Mean style codes per (emotion, intensity) over the clips of ``split`` in the dataset ``data``."""
    from talkinghead.data.dataset import Dataset

    dataset = Dataset(data)
    ids = dataset.ids(split)
    if not ids:
        raise TalkingHeadError(f"The dataset {data} has no clips in the '{split}' split.")
    channels = tuple((denoiser.layout or {}).get("channels", ()))
    if channels and channels != tuple(dataset.info.layout.channels):
        raise TalkingHeadError("The denoiser was trained on another channel layout than this dataset.")
    sums: dict[tuple[str, int], np.ndarray] = {}
    counts: dict[tuple[str, int], int] = {}
    denoiser.eval()
    for clip_id in progress(ids, "style codes"):
        clip = dataset.clip(clip_id)
        motion = clip.motion.expression
        if denoiser.config.generate_pose:
            motion = np.concatenate([motion, clip.motion.pose], axis=1)
        reference = torch.from_numpy(middle_frames(motion).astype(np.float32))[None]
        code = denoiser.encode_style(reference)[0].numpy().astype(np.float64)
        key = (clip.meta.emotion, int(clip.meta.intensity))
        sums[key] = sums.get(key, 0.0) + code
        counts[key] = counts.get(key, 0) + 1
    codes = {k: (sums[k] / counts[k]).astype(np.float32) for k in sums}
    return StyleBank(codes, counts, style_encoder_fingerprint(denoiser),
                     {"dataset": str(data), "split": split, "clips": len(ids)})

"""In-memory training corpus for the motion models, read from a dataset directory.

Every clip's expression ``[T, E]``, pose ``[T, 6]``, chosen audio features ``[T, D]`` (concatenated in a
fixed order) and identity descriptor are loaded once; solvers draw random windows from them with a
numpy ``Generator`` (seeded per step and rank, so a resumed run draws exactly what the uninterrupted run
would have). Feature choice, names and dims go into each checkpoint's ``audio_features``.

Feature choice when none is given (DreamTalk App. C.2.2):
- ``motion`` role (denoiser, lip expert): a pretrained encoder's features (wav2vec 2.0 preferred) if the
  dataset has them, else all the dataset's frame features (the project's own low-level features);
- ``style`` role (style predictor): an encoder (HuBERT preferred) plus MFCC, FBANK, f0 and voicing
  where present; with none of those, all frame features.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from talkinghead.data.dataset import Dataset
from talkinghead.errors import TalkingHeadError
from talkinghead.log import progress

ENCODER_PREFERENCE = {"motion": ("wav2vec2", "hubert", "whisper", "encoder"),
                      "style": ("hubert", "wav2vec2", "whisper", "encoder")}
STYLE_LOWLEVEL = ("mfcc", "fbank", "f0", "voicing")


def choose_features(available: list[str], role: str, requested: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The feature names a model of ``role`` reads, in order."""
    if requested:
        missing = [n for n in requested if n not in available]
        if missing:
            raise TalkingHeadError(
                f"The dataset has no audio feature(s) {', '.join(missing)}; it has {', '.join(available) or 'none'}."
            )
        return tuple(requested)
    if not available:
        raise TalkingHeadError("The dataset's clips have no audio features; build it with features.")
    encoders = [n for n in ENCODER_PREFERENCE[role] if n in available]
    if role == "motion":
        return (encoders[0],) if encoders else tuple(sorted(available))
    low = [n for n in STYLE_LOWLEVEL if n in available]
    chosen = tuple(encoders[:1]) + tuple(low)
    return chosen if chosen else tuple(sorted(available))


@dataclass
class ClipArrays:
    id: str
    speaker: str
    expression: np.ndarray
    pose: np.ndarray
    audio: np.ndarray
    descriptor: np.ndarray | None

    def __len__(self) -> int:
        return len(self.expression)


def training_split(root: str | Path, split: str) -> tuple[Dataset, list[str]]:
    """The dataset at ``root`` and the ids of its ``split`` (all ids when that split is empty), or one sentence
    when it has no clips: how every training corpus opens its data."""
    dataset = Dataset(root)
    ids = dataset.ids(split) or dataset.ids()
    if not ids:
        raise TalkingHeadError(f"The dataset {root} has no clips.")
    return dataset, ids


def _as_2d(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x[:, None] if x.ndim == 1 else x


def feature_widths(dataset: Dataset, clip_id: str, names: tuple[str, ...]) -> tuple[int, ...]:
    """The width of each named frame feature, read from one clip."""
    clip = dataset.clip(clip_id)
    return tuple(_as_2d(clip.features[n]).shape[1] for n in names)


def clips_with_audio(dataset: Dataset, ids: list[str], names: tuple[str, ...]) -> Iterator[tuple[Any, np.ndarray]]:
    """Each clip of ``ids`` (with progress) and its features ``names`` side by side, ``[T, A]`` float32, cut
    to ``T`` = the shortest of its motion and those features; a clip lacking one of them is an error."""
    for clip_id in progress(ids, "loading clips"):
        clip = dataset.clip(clip_id)
        missing = [n for n in names if n not in clip.features]
        if missing:
            raise TalkingHeadError(f"Clip {clip_id} lacks the audio feature(s) {', '.join(missing)}.")
        feats = [_as_2d(clip.features[n]) for n in names]
        length = min(len(clip.motion), *(len(f) for f in feats))
        yield clip, np.concatenate([f[:length] for f in feats], axis=1)


class MotionCorpus:
    """All clips of a split in memory, with the selected audio features concatenated."""

    def __init__(self, root: str | Path, role: str = "motion", features: tuple[str, ...] = (),
                 split: str = "train", min_frames: int = 1) -> None:
        self.dataset, ids = training_split(root, split)
        self.layout = self.dataset.info.layout
        first = self.dataset.clip(ids[0])
        self.feature_names = choose_features(sorted(first.features), role, features)
        self.feature_dims = feature_widths(self.dataset, ids[0], self.feature_names)
        self.clips: list[ClipArrays] = []
        neutral_sum, neutral_count = None, 0
        for clip, audio in clips_with_audio(self.dataset, ids, self.feature_names):
            length = len(audio)
            if length < min_frames:
                continue
            desc = clip.motion.identity.get("descriptor")
            neutral = clip.motion.identity.get("neutral")
            if neutral is not None and np.ndim(neutral) == 2:
                neutral_sum = np.asarray(neutral, np.float64) + (0 if neutral_sum is None else neutral_sum)
                neutral_count += 1
            self.clips.append(ClipArrays(
                clip.meta.id, clip.meta.speaker, clip.motion.expression[:length], clip.motion.pose[:length], audio,
                None if desc is None else np.asarray(desc, dtype=np.float32).reshape(-1)))
        if not self.clips:
            raise TalkingHeadError(f"No clip of {root} has at least {min_frames} frames.")
        #: mean of the identities' neutral shapes (the "mean shape" of the face mesh), if clips have one
        self.mean_neutral = None if neutral_sum is None else (neutral_sum / neutral_count).astype(np.float32)
        lengths = np.array([len(c) for c in self.clips], dtype=np.float64)
        self.weights = lengths / lengths.sum()
        self.by_speaker: dict[str, list[int]] = {}
        for i, c in enumerate(self.clips):
            self.by_speaker.setdefault(c.speaker, []).append(i)

    @property
    def audio_dim(self) -> int:
        return int(sum(self.feature_dims))

    @property
    def expression_dim(self) -> int:
        return self.layout.size

    def audio_spec(self) -> dict[str, Any]:
        """What goes into a checkpoint's ``audio_features``."""
        return {"names": list(self.feature_names), "dims": list(self.feature_dims),
                "dataset": self.dataset.info.audio_features, "fps": self.dataset.info.fps}

    def stats(self, what: str) -> tuple[np.ndarray, np.ndarray]:
        """Per-channel mean/std over all frames of ``expression``, ``motion`` (expression + pose) or ``audio``."""
        if what == "expression":
            data = np.concatenate([c.expression for c in self.clips])
        elif what == "motion":
            data = np.concatenate([np.concatenate([c.expression, c.pose], 1) for c in self.clips])
        elif what == "audio":
            data = np.concatenate([c.audio for c in self.clips])
        else:
            raise ValueError(what)
        return data.mean(0), data.std(0) + 1e-3

    def descriptor_dim(self) -> int:
        desc = self.clips[0].descriptor
        if desc is None:
            raise TalkingHeadError("The dataset's clips have no identity descriptor (identity['descriptor']).")
        return len(desc)

    def pick(self, rng: np.random.Generator, min_len: int = 1) -> ClipArrays:
        """A random clip (weighted by length) with at least ``min_len`` frames when one exists."""
        for _ in range(20):
            clip = self.clips[int(rng.choice(len(self.clips), p=self.weights))]
            if len(clip) >= min_len:
                return clip
        return max(self.clips, key=len)

    def other_clip_of_speaker(self, rng: np.random.Generator, clip: ClipArrays) -> ClipArrays:
        """Another clip of the same speaker (cross-identity training); the clip itself if it is the only one."""
        same = [i for i in self.by_speaker[clip.speaker] if self.clips[i].id != clip.id]
        return self.clips[int(rng.choice(same))] if same else clip


def padded_segment(x: np.ndarray, start: int, length: int) -> np.ndarray:
    """``x[start:start+length]`` with out-of-range frames replaced by the nearest edge frame."""
    idx = np.clip(np.arange(start, start + length), 0, len(x) - 1)
    return x[idx]


def random_segments(rng: np.random.Generator, clips: list[ClipArrays], lo: int, hi: int,
                    channels: str) -> tuple[np.ndarray, np.ndarray]:
    """One random segment per clip (length ~ U[lo, hi], capped by the clip), zero-padded to a batch.

    ``channels``: ``expression``, ``motion`` or ``audio``. Returns ``[B, N, D]`` and valid mask ``[B, N]``.
    """
    segs: list[np.ndarray] = []
    for c in clips:
        n = int(min(rng.integers(lo, hi + 1), len(c)))
        s = int(rng.integers(0, len(c) - n + 1))
        if channels == "expression":
            segs.append(c.expression[s:s + n])
        elif channels == "motion":
            segs.append(np.concatenate([c.expression[s:s + n], c.pose[s:s + n]], 1))
        else:
            segs.append(c.audio[s:s + n])
    width = max(len(s) for s in segs)
    out = np.zeros((len(segs), width, segs[0].shape[1]), dtype=np.float32)
    valid = np.zeros((len(segs), width), dtype=bool)
    for i, seg in enumerate(segs):
        out[i, :len(seg)] = seg
        valid[i, :len(seg)] = True
    return out, valid

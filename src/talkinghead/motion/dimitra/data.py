"""Dimitra's training samples (III-B.2, III-B.4): windows of ``N`` frames of one part's motion with the cMDT's
conditions, read from a dataset directory (:mod:`talkinghead.data.dataset`).

Dimitra trains three models with the same architecture on different channels (III-B.4), the *parts*:

- ``lips``: the layout's ``mouth`` group (the 13 ARKit mouth channels of
  :data:`talkinghead.face.model.ARKIT_LAYOUT`; the paper's 13 mouth parameters of the 3DMM);
- ``face``: every other expression channel (27 in the ARKit layout; the paper's 51 = 64 - 13 of the 3DMM).
  Defined as the complement of ``mouth`` rather than by the layout's ``face`` group, so any layout with a
  ``mouth`` group (e.g. an imported Deep3DFace layout) splits the same way;
- ``pose``: the 6 head-pose channels (:data:`talkinghead.sequence.POSE_NAMES`).

A window starting at frame ``s`` of a clip holds (:class:`DimitraWindow`):

- ``motion: [N, C]`` the target ``x_0^{1:N}``, frames ``s .. s+N-1`` of the part's channels;
- ``first_frame: [C]`` the first-frame condition ``x^1``: the frame just *before* the window, ``s - 1``.
  Long audio is generated recursively, each window conditioned on the last frame of the previous one
  (III-B.4), so at training time the condition is the frame that precedes the window in the clip. A window
  starting at frame 0 has no previous frame; it takes the clip's own frame 0, which is what generation does for
  the first window (the portrait's own coefficients). Deviation: the paper writes ``x_0^1``, "the first frame of
  the 3DMM sequence", i.e. the window's own first frame, so that the output "starts from the original
  position"; taking the previous frame instead makes the condition exactly what recursive generation has (the
  last generated frame) and asks the model to *continue* it rather than to copy it into frame 1;
- ``audio: [N, A]`` the frame-aligned audio features (see "Audio features" below);
- ``phonemes: [N]`` a phoneme id per frame in :data:`talkinghead.audio.phonemes.PHONEME_VOCAB`, from the clip's
  timed phone alignment by :func:`talkinghead.audio.phonemes.frame_tokens` (frame ``i`` takes the phone covering
  its centre ``(i + 0.5) / fps``; uncovered frames are ``SIL``), III-B.2;
- ``transcript``: the clip's whole transcript ``S`` (from its ``meta``), tokenised in a batch by
  :func:`talkinghead.motion.dimitra.model.transcript_tokens`. The paper does not say how ``S`` relates to a
  window of a longer utterance; every window of a clip sees the clip's full transcript here (the dataset has no
  word timings to cut it), and generation gives every window the full transcript too.

A window lies inside its clip; a clip shorter than ``N`` frames (picked only when no clip is long enough) is
padded by repeating its edge frames (:func:`talkinghead.training.data.padded_segment`).

Audio features: chosen like the DreamTalk denoiser's (:func:`talkinghead.training.data.choose_features`, role
``motion``): a pretrained encoder's features when the dataset has them (wav2vec 2.0 first, the paper's choice
and the ``dimitra`` audio spec, 768-d, the ``paper`` preset's ``audio_dim``), otherwise all the dataset's frame
features in name order (the ``lowlevel`` spec: logmel, mfcc, fbank, f0, voicing, energy, 122-d, the ``cpu``
preset's ``audio_dim``). ``--features`` names them explicitly. The model's ``audio_dim`` is the chosen width.

Normalisation statistics (:meth:`DimitraCorpus.stats`) are per-channel means and standard deviations over every
frame of the corpus's clips, which is the training split (all clips only when the dataset has no ``train``
split, as :class:`talkinghead.training.data.MotionCorpus` does).

The lips model's optional sync loss (an extension beyond the paper, :mod:`.training.motion`) reads more than a
window of the lip channels: :class:`LipSyncCorpus` gives each window the same frames' full expression ``[N, E]``
(the lip expert reads every channel), the lip expert's audio features, the clip identity's mouth basis and a
style reference, taken from FD2Talk's corpus of the same dataset and split
(:class:`talkinghead.motion.fd2talk.data.FD2TalkCorpus`, which its Expression Transformer's sync loss reads).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from talkinghead.audio.phonemes import SILENCE_ID, frame_tokens
from talkinghead.errors import TalkingHeadError
from talkinghead.log import log_event
from talkinghead.motion.dimitra.model import transcript_tokens
from talkinghead.motion.fd2talk.data import FD2TalkCorpus, FD2TalkWindow
from talkinghead.sequence import POSE_NAMES, ChannelLayout
from talkinghead.training.data import (
    choose_features,
    clips_with_audio,
    feature_widths,
    padded_segment,
    training_split,
)

PARTS = ("lips", "face", "pose")
#: the layout group that holds the lip channels
MOUTH_GROUP = "mouth"


def part_columns(layout: ChannelLayout, part: str) -> tuple[int, ...]:
    """Columns of ``part`` in the clip's expression ``[T, E]`` (``lips``, ``face``) or pose ``[T, 6]``."""
    if part == "pose":
        return tuple(range(len(POSE_NAMES)))
    if part not in PARTS:
        raise TalkingHeadError(f"Unknown Dimitra part '{part}'; choose one of {', '.join(PARTS)}.")
    if MOUTH_GROUP not in layout.groups:
        raise TalkingHeadError(f"The channel layout '{layout.name}' has no '{MOUTH_GROUP}' group, so its lip "
                               "channels are unknown.")
    mouth = set(layout.indices(MOUTH_GROUP))
    columns = tuple(i for i in range(layout.size) if (i in mouth) == (part == "lips"))
    if not columns:
        raise TalkingHeadError(f"The channel layout '{layout.name}' leaves no channels for the {part} model.")
    return columns


def part_layout(layout: ChannelLayout, part: str) -> ChannelLayout:
    """The channels a ``part`` model produces, as a layout named ``<layout>:<part>``; the dataset's groups are
    kept where they overlap the part (e.g. ``eyes`` and ``brows`` in ``face``)."""
    if part == "pose":
        return ChannelLayout(f"{layout.name}:pose", POSE_NAMES, {})
    names = tuple(layout.channels[i] for i in part_columns(layout, part))
    kept = set(names)
    groups = {g: tuple(n for n in members if n in kept) for g, members in layout.groups.items()}
    return ChannelLayout(f"{layout.name}:{part}", names, {g: m for g, m in groups.items() if m})


@dataclass(frozen=True)
class DimitraClip:
    """One clip of a part in memory: ``motion: [T, C]``, ``audio: [T, A]``, ``phonemes: [T]`` int64."""

    id: str
    speaker: str
    motion: np.ndarray
    audio: np.ndarray
    phonemes: np.ndarray
    transcript: str

    def __len__(self) -> int:
        return len(self.motion)


@dataclass(frozen=True)
class DimitraWindow:
    """One training window (see the module docstring): ``motion: [N, C]``, ``first_frame: [C]`` (the frame
    before the window; frame 0 itself for a window at 0), ``audio: [N, A]``, ``phonemes: [N]`` int64,
    ``transcript`` the clip's; ``clip`` and ``start`` say where it came from."""

    clip: str
    start: int
    motion: np.ndarray
    first_frame: np.ndarray
    audio: np.ndarray
    phonemes: np.ndarray
    transcript: str


class DimitraCorpus:
    """All clips of a split for one ``part``, in memory, with their phoneme ids and transcripts.

    ``phonemes``: whether the model reads phonemes; then a clip without a phone alignment is left out (and none
    having one is an error); otherwise such clips get ``SIL`` everywhere.
    """

    def __init__(self, root: str | Path, part: str, features: tuple[str, ...] = (), split: str = "train",
                 phonemes: bool = True) -> None:
        self.dataset, ids = training_split(root, split)
        self.root, self.split = Path(root), split
        self.layout = self.dataset.info.layout
        self.fps = self.dataset.info.fps
        self.part = part
        self.columns = part_columns(self.layout, part)
        self.channels = part_layout(self.layout, part).channels
        first = self.dataset.clip(ids[0])
        self.feature_names = choose_features(sorted(first.features), "motion", features)
        self.feature_dims = feature_widths(self.dataset, ids[0], self.feature_names)
        self.clips: list[DimitraClip] = []
        unaligned = 0
        for clip, audio in clips_with_audio(self.dataset, ids, self.feature_names):
            length = len(audio)
            if length < 1:
                continue
            if not clip.phones and phonemes:
                unaligned += 1
                continue
            source = clip.motion.pose if part == "pose" else clip.motion.expression
            tokens = (frame_tokens(clip.phones, length, self.fps) if clip.phones
                      else np.full(length, SILENCE_ID, dtype=np.int64))
            self.clips.append(DimitraClip(
                clip.meta.id, clip.meta.speaker, np.ascontiguousarray(source[:length][:, self.columns], np.float32),
                audio, tokens, clip.transcript))
        if unaligned:
            log_event("clips without a phone alignment left out", clips=unaligned)
        if not self.clips:
            why = " with a phone alignment (train with --no-phonemes, or prepare it with transcripts)" \
                if unaligned else ""
            raise TalkingHeadError(f"The dataset {root} has no usable clip{why}.")
        self._lengths = np.array([len(c) for c in self.clips], dtype=np.float64)

    @property
    def motion_dim(self) -> int:
        return len(self.columns)

    @property
    def audio_dim(self) -> int:
        return int(sum(self.feature_dims))

    def part_layout(self) -> ChannelLayout:
        return part_layout(self.layout, self.part)

    def audio_spec(self) -> dict[str, Any]:
        """What goes into the checkpoint's ``audio_features`` (the same keys as DreamTalk's)."""
        return {"names": list(self.feature_names), "dims": list(self.feature_dims),
                "dataset": self.dataset.info.audio_features, "fps": self.fps}

    def stats(self, what: str) -> tuple[np.ndarray, np.ndarray]:
        """Per-channel mean ``[D]`` and std ``[D]`` (+ 1e-3) over every frame of ``motion`` or ``audio``."""
        if what not in ("motion", "audio"):
            raise ValueError(what)
        data = np.concatenate([getattr(c, what) for c in self.clips]).astype(np.float64)
        return data.mean(0).astype(np.float32), (data.std(0) + 1e-3).astype(np.float32)

    def window(self, index: int, start: int, frames: int) -> DimitraWindow:
        """The window of ``frames`` frames of clip ``index`` starting at frame ``start``."""
        c = self.clips[index]
        return DimitraWindow(c.id, start, padded_segment(c.motion, start, frames),
                             c.motion[min(max(start - 1, 0), len(c) - 1)].copy(),
                             padded_segment(c.audio, start, frames), padded_segment(c.phonemes, start, frames),
                             c.transcript)

    def sample(self, rng: np.random.Generator, count: int, frames: int) -> list[DimitraWindow]:
        """``count`` random windows: a clip drawn with probability proportional to its length among those with
        at least ``frames`` frames (all clips when none has), then a uniform start."""
        weights = np.where(self._lengths >= frames, self._lengths, 0.0)
        if weights.sum() == 0:
            weights = self._lengths
        p = weights / weights.sum()
        out = []
        for _ in range(count):
            index = int(rng.choice(len(self.clips), p=p))
            start = int(rng.integers(0, max(1, len(self.clips[index]) - frames + 1)))
            out.append(self.window(index, start, frames))
        return out


class LipSyncCorpus:
    """What the lips model's sync loss reads beside its windows (see the module docstring): FD2Talk's expression
    corpus of the same dataset and split (:class:`FD2TalkCorpus`, ``lip_features`` the lip expert's audio
    features, ``identity_mouth`` whether each identity gets its own mouth basis), matched to the lips corpus's
    clips by id."""

    def __init__(self, lips: DimitraCorpus, lip_features: tuple[str, ...], identity_mouth: bool) -> None:
        if lips.part != "lips":
            raise TalkingHeadError(f"The sync loss trains the lips model only, not the {lips.part} model.")
        self.corpus = FD2TalkCorpus(lips.root, "expression", lips.feature_names, lip_features, identity_mouth,
                                    lips.split)
        self._index = {c.id: i for i, c in enumerate(self.corpus.clips)}
        missing = [c.id for c in lips.clips if c.id not in self._index]
        if missing:
            raise TalkingHeadError(f"The lip expert's inputs lack the clip(s) {', '.join(missing)} of the lips "
                                   "corpus.")

    def windows(self, windows: Sequence[DimitraWindow]) -> list[FD2TalkWindow]:
        """The same frames of the same clips as ``windows``, with their full ``expression [N, E]``, the expert's
        ``lip_audio [N, A_e]`` and ``mouth`` (the basis index in ``corpus.mouth_bases``, -1: the expert's own)."""
        return [self.corpus.window(self._index[w.clip], w.start, len(w.motion)) for w in windows]


def collate(windows: Sequence[DimitraWindow], max_text_length: int) -> dict[str, torch.Tensor]:
    """A batch of windows as tensors: ``motion: [B, N, C]``, ``first_frame: [B, C]``, ``audio: [B, N, A]``,
    ``phonemes: [B, N]`` long, ``text_tokens: [B, L]`` long and ``text_mask: [B, L]`` bool
    (:func:`transcript_tokens`, cut to ``max_text_length`` characters)."""
    tokens, mask = transcript_tokens([w.transcript for w in windows], max_text_length)
    return {"motion": torch.from_numpy(np.stack([w.motion for w in windows])),
            "first_frame": torch.from_numpy(np.stack([w.first_frame for w in windows])),
            "audio": torch.from_numpy(np.stack([w.audio for w in windows])),
            "phonemes": torch.from_numpy(np.stack([w.phonemes for w in windows])),
            "text_tokens": tokens, "text_mask": mask}

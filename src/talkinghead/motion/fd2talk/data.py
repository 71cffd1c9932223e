"""FD2Talk's training samples (3.4.1): windows of ``N`` frames of motion with their audio, and what the lip
expert's sync loss (Eq. 10-11) reads, from a dataset directory (:mod:`talkinghead.data.dataset`).

"We randomly extract a video clip along with the corresponding audio clip A from the training set"; the motion
the clip's coefficients ``beta_0`` (expression) and ``p_0`` (pose). The *part* says what a DiT generates:

- ``expression``: every expression channel of the layout (the ARKit layout's 40; the paper's 64 3DMM
  coefficients), the Expression Transformer ``theta_exp``;
- ``pose``: the 6 head-pose channels (:data:`talkinghead.sequence.POSE_NAMES`), the Pose Transformer
  ``theta_pose``;
- ``joint``: expression and pose together, ``[E + 6]`` (expression first): Table 2's "Single Diffusion
  Transformer" ablation.

A window starting at frame ``s`` of a clip (:class:`FD2TalkWindow`) holds ``motion [N, C]`` (frames
``s .. s+N-1`` of the part's channels), ``audio [N, A]`` (the DiT's features), and for the sync loss
``expression [N, E]`` (the same frames' expression, whatever the part), ``lip_audio [N, A_e]`` (the lip expert's
features, which may differ from the DiT's) and ``mouth`` (which identity's mouth basis the clip uses). A window
lies inside its clip; a clip shorter than ``N`` frames (picked only when no clip is long enough) is padded by
repeating its edge frames (:func:`talkinghead.training.data.padded_segment`).

Audio features, chosen like every motion model's (:func:`talkinghead.training.data.choose_features`, role
``motion``): a pretrained encoder's features when the dataset has them (wav2vec 2.0 first, the paper's choice,
768-d base: the ``paper`` preset's ``audio_dim``), otherwise all the dataset's frame features in name order (the
``lowlevel`` spec: 122-d, the ``cpu`` preset's). ``--features`` names them explicitly.

Mouth bases (3.4.1: "we first obtain the identity coefficients from the reference image, and then calculate the
3D meshes using these identity coefficients along with the predicted expression coefficients"): with
``identity_mouth`` each clip's identity (its neutral shape ``[468, 3]``) gives the face model's blendshapes built
on that face (:meth:`talkinghead.face.model.FaceModel.for_identity`), restricted to the lip expert's mouth vertices:
``mouth_bases[k]: [E, M, 3]``, one per distinct identity. Clips without a neutral shape fall back to the lip
expert's own (mean-face) basis (``mouth = -1``).

Normalisation statistics (:meth:`FD2TalkCorpus.stats`) are per-channel means and standard deviations over every
frame of the corpus's clips, the training split (all clips only when the dataset has no ``train`` split).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from talkinghead.errors import TalkingHeadError
from talkinghead.sequence import POSE_NAMES, ChannelLayout
from talkinghead.training.data import (
    choose_features,
    clips_with_audio,
    feature_widths,
    padded_segment,
    training_split,
)

PARTS = ("expression", "pose", "joint")


def part_channels(layout: ChannelLayout, part: str) -> tuple[str, ...]:
    """The channel names a ``part`` DiT generates, in order (see the module docstring)."""
    if part == "expression":
        return layout.channels
    if part == "pose":
        return POSE_NAMES
    if part == "joint":
        return (*layout.channels, *POSE_NAMES)
    raise TalkingHeadError(f"Unknown FD2Talk part '{part}'; choose one of {', '.join(PARTS)}.")


def part_layout(layout: ChannelLayout, part: str) -> ChannelLayout:
    """The channels a ``part`` DiT generates as a layout: the dataset's own for ``expression``,
    ``<layout>:pose`` for ``pose``, ``<layout>:joint`` (the dataset's groups kept) for ``joint``."""
    channels = part_channels(layout, part)
    if part == "expression":
        return layout
    return ChannelLayout(f"{layout.name}:{part}", channels, dict(layout.groups) if part == "joint" else {})


def part_groups(layout: ChannelLayout, part: str) -> dict[str, slice]:
    """Where the expression (``exp``) and pose channels lie in a ``part`` DiT's motion ``[.., C]`` (Eq. 12's
    ``L_exp`` and ``L_pose`` are taken on them)."""
    e = layout.size
    return {"expression": {"exp": slice(0, e)}, "pose": {"pose": slice(0, len(POSE_NAMES))},
            "joint": {"exp": slice(0, e), "pose": slice(e, e + len(POSE_NAMES))}}[part]


@dataclass(frozen=True)
class FD2TalkClip:
    """One clip in memory: ``expression [T, E]``, ``pose [T, 6]``, ``audio [T, A]`` (the DiT's features),
    ``lip_audio [T, A_e]`` (the lip expert's; None without a sync loss) and ``mouth``, the index of its identity's
    mouth basis in :attr:`FD2TalkCorpus.mouth_bases` (-1: the lip expert's own)."""

    id: str
    speaker: str
    expression: np.ndarray
    pose: np.ndarray
    audio: np.ndarray
    lip_audio: np.ndarray | None
    mouth: int

    def __len__(self) -> int:
        return len(self.expression)

    def motion(self, part: str) -> np.ndarray:
        """The part's channels ``[T, C]``."""
        if part == "expression":
            return self.expression
        if part == "pose":
            return self.pose
        return np.concatenate([self.expression, self.pose], 1)


@dataclass(frozen=True)
class FD2TalkWindow:
    """One training window (see the module docstring): ``motion [N, C]``, ``audio [N, A]``,
    ``expression [N, E]``, ``lip_audio [N, A_e]`` or None, ``mouth`` (basis index, -1: the expert's own);
    ``clip`` and ``start`` say where it came from."""

    clip: str
    start: int
    motion: np.ndarray
    audio: np.ndarray
    expression: np.ndarray
    lip_audio: np.ndarray | None
    mouth: int


class FD2TalkCorpus:
    """All clips of a split for one ``part``, in memory.

    ``features``: the DiT's audio features (default: :func:`choose_features`); ``lip_features``: the lip
    expert's (empty: no sync loss); ``identity_mouth``: build each identity's mouth basis over the face model's
    mouth vertices (ARKit layout and clips with a neutral shape only).
    """

    def __init__(self, root: str | Path, part: str, features: tuple[str, ...] = (),
                 lip_features: tuple[str, ...] = (), identity_mouth: bool = False, split: str = "train") -> None:
        self.dataset, ids = training_split(root, split)
        self.layout = self.dataset.info.layout
        self.fps = self.dataset.info.fps
        self.part = part
        self.channels = part_channels(self.layout, part)
        available = sorted(self.dataset.clip(ids[0]).features)
        self.feature_names = choose_features(available, "motion", features)
        missing = [n for n in lip_features if n not in available]
        if missing:
            raise TalkingHeadError(f"The lip expert reads the audio feature(s) {', '.join(missing)}, which the dataset "
                                   f"{root} lacks; give a lip expert trained on its features or train without the "
                                   "sync loss.")
        self.lip_feature_names = tuple(lip_features)
        names = tuple(dict.fromkeys(self.feature_names + self.lip_feature_names))       # each kind loaded once
        widths = dict(zip(names, feature_widths(self.dataset, ids[0], names), strict=True))
        self.feature_dims = tuple(widths[n] for n in self.feature_names)
        self.lip_feature_dims = tuple(widths[n] for n in self.lip_feature_names)
        columns = _columns(names, widths)
        self.mouth_bases: list[np.ndarray] = []
        bases: dict[bytes, int] = {}
        self.clips: list[FD2TalkClip] = []
        for clip, audio in clips_with_audio(self.dataset, ids, names):
            length = len(audio)
            if length < 1:
                continue
            mouth = self._mouth_index(clip.motion.identity, bases) if identity_mouth else -1
            lip = audio[:, [i for n in self.lip_feature_names for i in columns[n]]] if self.lip_feature_names \
                else None
            self.clips.append(FD2TalkClip(
                clip.meta.id, clip.meta.speaker, np.ascontiguousarray(clip.motion.expression[:length], np.float32),
                np.ascontiguousarray(clip.motion.pose[:length], np.float32),
                np.ascontiguousarray(audio[:, [i for n in self.feature_names for i in columns[n]]]), lip, mouth))
        if not self.clips:
            raise TalkingHeadError(f"The dataset {root} has no clip with audio features.")
        self._lengths = np.array([len(c) for c in self.clips], dtype=np.float64)
        self._by_id = {c.id: c for c in self.clips}

    def _mouth_index(self, identity: dict[str, Any], bases: dict[bytes, int]) -> int:
        """The index of this identity's mouth basis ``[E, M, 3]`` (built once per distinct neutral shape), or -1
        when the identity has no neutral shape or the layout is not the face model's."""
        from talkinghead.face.model import ARKIT_LAYOUT, FaceModel
        from talkinghead.face.topology import NUM_VERTICES

        neutral = identity.get("neutral")
        if neutral is None or np.shape(neutral) != (NUM_VERTICES, 3) or self.layout.channels != ARKIT_LAYOUT.channels:
            return -1
        key = np.ascontiguousarray(neutral, np.float32).tobytes()
        if key not in bases:
            _, basis = FaceModel.for_identity(np.asarray(neutral, np.float32)).basis_tensor()   # [E, M, 3]
            bases[key] = len(self.mouth_bases)
            self.mouth_bases.append(basis.numpy())
        return bases[key]

    @property
    def motion_dim(self) -> int:
        return len(self.channels)

    @property
    def audio_dim(self) -> int:
        return int(sum(self.feature_dims))

    @property
    def lip_audio_dim(self) -> int:
        return int(sum(self.lip_feature_dims))

    def audio_spec(self) -> dict[str, Any]:
        """What goes into the checkpoint's ``audio_features`` (the same keys as the other motion models')."""
        return {"names": list(self.feature_names), "dims": list(self.feature_dims),
                "dataset": self.dataset.info.audio_features, "fps": self.fps}

    def stats(self, what: str) -> tuple[np.ndarray, np.ndarray]:
        """Per-channel mean ``[D]`` and std ``[D]`` (+ 1e-3) over every frame of the part's ``motion`` or the
        DiT's ``audio``."""
        if what == "motion":
            data = np.concatenate([c.motion(self.part) for c in self.clips]).astype(np.float64)
        elif what == "audio":
            data = np.concatenate([c.audio for c in self.clips]).astype(np.float64)
        else:
            raise ValueError(what)
        return data.mean(0).astype(np.float32), (data.std(0) + 1e-3).astype(np.float32)

    def window(self, index: int, start: int, frames: int) -> FD2TalkWindow:
        """The window of ``frames`` frames of clip ``index`` starting at frame ``start``."""
        c = self.clips[index]
        lip = None if c.lip_audio is None else padded_segment(c.lip_audio, start, frames)
        return FD2TalkWindow(c.id, start, padded_segment(c.motion(self.part), start, frames),
                             padded_segment(c.audio, start, frames), padded_segment(c.expression, start, frames),
                             lip, c.mouth)

    def pick(self, rng: np.random.Generator, frames: int) -> int:
        """A clip index drawn with probability proportional to its length among those with at least ``frames``
        frames (all clips when none has)."""
        weights = np.where(self._lengths >= frames, self._lengths, 0.0)
        if weights.sum() == 0:
            weights = self._lengths
        return int(rng.choice(len(self.clips), p=weights / weights.sum()))

    def sample(self, rng: np.random.Generator, count: int, frames: int) -> list[FD2TalkWindow]:
        """``count`` random windows: a clip from :meth:`pick`, then a uniform start."""
        out = []
        for _ in range(count):
            index = self.pick(rng, frames)
            start = int(rng.integers(0, max(1, len(self.clips[index]) - frames + 1)))
            out.append(self.window(index, start, frames))
        return out

    def style_segments(self, rng: np.random.Generator, windows: list[FD2TalkWindow], lo: int,
                       hi: int) -> tuple[np.ndarray, np.ndarray]:
        """A style reference per window for the style-aware lip expert: a random segment of ``U[lo, hi]`` frames
        (capped by the clip) of the same clip's expression, zero-padded to a batch: ``[B, S, E]`` and the valid
        mask ``[B, S]``."""
        segments = []
        for w in windows:
            expression = self._by_id[w.clip].expression
            n = int(min(rng.integers(lo, hi + 1), len(expression)))
            s = int(rng.integers(0, len(expression) - n + 1))
            segments.append(expression[s:s + n])
        width = max(len(s) for s in segments)
        out = np.zeros((len(segments), width, self.layout.size), np.float32)
        valid = np.zeros((len(segments), width), bool)
        for i, seg in enumerate(segments):
            out[i, :len(seg)], valid[i, :len(seg)] = seg, True
        return out, valid


def _columns(names: tuple[str, ...], widths: dict[str, int]) -> dict[str, list[int]]:
    """The columns of each feature kind in features concatenated in ``names`` order."""
    out, at = {}, 0
    for n in names:
        out[n] = list(range(at, at + widths[n]))
        at += widths[n]
    return out

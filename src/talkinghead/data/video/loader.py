"""Samples of a video dataset for each model that learns from frames (issue 14, item 3).

:class:`VideoSampler` holds one split's labels in memory (motion, boxes, speeds, audio features; the
mp4 bytes and audio samples once read) and draws, from a numpy ``Generator``:

- :meth:`~VideoSampler.pairs`: a target frame and a reference frame (any other, or the first) of the same clip,
  with the target's motion, face box and head speed (FD2Talk's frame generator, Sec. 3.3; EMO stage 1, Sec. 3.3 "the
  Backbone takes a single frame as input, while ReferenceNet handles a distinct, randomly chosen frame
  from the same video clip"). Real clips without audio are included: they teach real faces;
- :meth:`~VideoSampler.windows`: ``n`` motion frames then ``f`` target frames, contiguous, with a
  reference frame, each target frame's audio-feature window of ``2m + 1`` frames and the raw audio
  under the targets (``m`` frames more either side), boxes, the union face region (EMO's face locator
  mask ``M``), speeds and the speed window of each target (EMO stages 2-3, Sec. 3.2: ``S^f`` stacks the
  speeds ``f - m .. f + m``). Clips need ``n + f`` frames and (by default) audio;
- :meth:`~VideoSampler.emotion_pairs`: a window of one clip and a window of a reference clip with the same
  emotion and another identity (and, where there is one, another speaker) (DICE-Talk, Sec. 3.2: the
  emotion embedder learns emotion from a reference that shares only the emotion).

Every draw depends only on the generator, so seeding it per step (:class:`StepBatches`, a torch
``Dataset`` over step numbers for ``DataLoader(batch_size=None, num_workers=k)``) makes a resumed run
read exactly what the uninterrupted run would have. Clips are drawn in proportion to how many samples
they hold (frames for pairs, window positions for windows).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from talkinghead.data.video.format import VideoClipMeta, VideoDataset
from talkinghead.data.video.frames import ClipFrames, union_box
from talkinghead.errors import TalkingHeadError


@dataclass
class PairBatch:
    """``target``, ``reference`` ``[B, S, S, 3]`` uint8; the target's ``box [B, 4]`` (crop px), ``speed [B]``
    (deg/frame), ``expression [B, E]``, ``pose [B, 6]``; the reference's ``ref_expression``, ``ref_pose``;
    ``index``/``ref_index [B]`` frame numbers; ``clip_ids``, ``identities``."""

    target: np.ndarray
    reference: np.ndarray
    box: np.ndarray
    speed: np.ndarray
    expression: np.ndarray
    pose: np.ndarray
    ref_expression: np.ndarray
    ref_pose: np.ndarray
    index: np.ndarray
    ref_index: np.ndarray
    clip_ids: list[str]
    identities: list[str]


@dataclass
class WindowBatch:
    """``frames [B, n + f, S, S, 3]`` uint8 (the first ``n`` are motion frames), ``reference [B, S, S, 3]``;
    per frame ``boxes [B, n + f, 4]``, ``speed [B, n + f]``, ``expression [B, n + f, E]``, ``pose [B, n + f, 6]``;
    per target ``speed_window [B, f, 2m + 1]``, ``audio_features [B, f, 2m + 1, D]`` (zeros without audio);
    ``audio [B, (f + 2m) * hop]`` samples under the targets and ``m`` frames either side (zero-padded);
    ``region [B, 4]`` the union of the targets' boxes; ``start [B]`` first frame; ``has_audio [B]``."""

    frames: np.ndarray
    reference: np.ndarray
    boxes: np.ndarray
    speed: np.ndarray
    expression: np.ndarray
    pose: np.ndarray
    speed_window: np.ndarray
    audio_features: np.ndarray
    audio: np.ndarray
    region: np.ndarray
    start: np.ndarray
    has_audio: np.ndarray
    clip_ids: list[str]
    identities: list[str]
    emotions: list[str]


@dataclass
class EmotionPairBatch:
    """``clip`` and ``reference`` windows; ``reference`` comes from clips with the same emotion (and any
    intensity) of another identity."""

    clip: WindowBatch
    reference: WindowBatch


@dataclass
class _Labels:
    source: int  # which dataset
    meta: VideoClipMeta
    box: np.ndarray
    speed: np.ndarray
    expression: np.ndarray
    pose: np.ndarray
    features: np.ndarray  # [T, D] (D = 0 without audio features)


Source = str | Path | VideoDataset


class VideoSampler:
    """Draws samples of one split of one or more video datasets (see the module docstring).

    ``datasets``: one, or several of the same crop size and fps (e.g. the rendered corpus and prepared real
    videos, so that a renderer learns real faces too). ``features``: the audio features stacked into
    ``audio_features`` (their names, in order; default: every feature of the first dataset, in its order);
    clips without audio get zeros. ``clip_ids`` restricts the sampler to those clips (one dataset only).
    """

    def __init__(self, datasets: Source | list[Source], split: str | None = "train",
                 features: tuple[str, ...] = (), clip_ids: list[str] | None = None,
                 exclude: Collection[str] = ()) -> None:
        from talkinghead.log import progress

        given = datasets if isinstance(datasets, list) else [datasets]
        if not given:
            raise TalkingHeadError("Give at least one video dataset.")
        self.datasets = [d if isinstance(d, VideoDataset) else VideoDataset(d) for d in given]
        info = self.datasets[0].info
        for other in self.datasets[1:]:
            if (other.info.size, other.info.fps) != (info.size, info.fps):
                raise TalkingHeadError(f"The video datasets {self.datasets[0].root} and {other.root} have different "
                                       "crop sizes or frame rates; they cannot be sampled together.")
        self.size = info.size
        self.hop = int(round(info.sample_rate / info.fps))
        kinds: dict[str, int] = dict(info.audio_features.get("kinds") or {})
        missing = [n for n in features if n not in kinds]
        if missing:
            raise TalkingHeadError(f"The dataset has no audio feature(s) {', '.join(missing)}; it has "
                                   f"{', '.join(kinds) or 'none'}.")
        self.features = tuple(features) or tuple(kinds)
        self.feature_dim = int(sum(int(kinds[n]) for n in self.features))
        if clip_ids is not None and len(self.datasets) > 1:
            raise TalkingHeadError("Choose clips by id from one dataset only.")
        todo = [(k, i) for k, ds in enumerate(self.datasets)
                for i in (ds.ids(split) if clip_ids is None else list(clip_ids)) if i not in exclude]
        if not todo:
            raise TalkingHeadError(f"The video dataset(s) {', '.join(str(d.root) for d in self.datasets)} have no "
                                   f"clips in split '{split}'.")
        self.labels: list[_Labels] = [self._load(k, i) for k, i in progress(todo, "loading video labels")]
        self._frames: dict[tuple[int, str], ClipFrames] = {}
        self._audio: dict[tuple[int, str], np.ndarray] = {}
        self._partner_cache: dict[tuple[int, bool], dict[int, list[int]]] = {}

    @property
    def dataset(self) -> VideoDataset:
        """The first dataset."""
        return self.datasets[0]

    def _load(self, source: int, clip_id: str) -> _Labels:
        clip = self.datasets[source].clip(clip_id, audio=False)
        t = len(clip)
        if clip.meta.has_audio and self.features:
            missing = [n for n in self.features if n not in clip.features]
            if missing:
                raise TalkingHeadError(f"Clip {clip_id} lacks the audio feature {missing[0]}.")
            feats = np.concatenate([np.asarray(clip.features[n], np.float32).reshape(len(clip.features[n]), -1)
                                    for n in self.features], axis=1)
            feats = np.pad(feats[:t], ((0, max(0, t - len(feats))), (0, 0)), mode="edge")
        else:
            feats = np.zeros((t, self.feature_dim), np.float32)
        return _Labels(source, clip.meta, np.asarray(clip.box, np.float32), np.asarray(clip.speed, np.float32),
                       np.asarray(clip.motion.expression, np.float32), np.asarray(clip.motion.pose, np.float32), feats)

    def __len__(self) -> int:
        return len(self.labels)

    # ---------------------------------------------------------------------------------------- access
    def clip_frames(self, k: int) -> ClipFrames:
        """Random access to clip ``k``'s frames (its mp4's bytes stay in memory once read)."""
        lab = self.labels[k]
        frames = self._frames.get((lab.source, lab.meta.id))
        if frames is None:
            frames = self._frames[(lab.source, lab.meta.id)] = self.datasets[lab.source].clip_frames(lab.meta.id)
        return frames

    def audio(self, k: int) -> np.ndarray:
        """Clip ``k``'s audio samples ``[N]`` (kept in memory once read)."""
        lab = self.labels[k]
        samples = self._audio.get((lab.source, lab.meta.id))
        if samples is None:
            samples = self._audio[(lab.source, lab.meta.id)] = np.asarray(
                self.datasets[lab.source].clip(lab.meta.id).audio, np.float32)
        return samples

    def _pick(self, rng: np.random.Generator, weights: np.ndarray, what: str) -> int:
        total = float(weights.sum())
        if total <= 0:
            raise TalkingHeadError(f"No clip of this sampler is long enough (or has audio) for {what}.")
        return int(rng.choice(len(weights), p=weights / total))

    # ------------------------------------------------------------------------------------------ pairs
    def pairs(self, rng: np.random.Generator, batch: int, first_reference: bool = False) -> PairBatch:
        """``batch`` (target, reference) frame pairs, each from one clip (``reference != target`` when the
        clip has two frames or more); with ``first_reference`` the reference is the clip's first frame (FD2Talk
        3.4.2: "the first frame from this video clip serves as the reference image")."""
        weights = np.array([len(lab.box) for lab in self.labels], np.float64)
        items = []
        for _ in range(batch):
            k = self._pick(rng, weights, "frame pairs")
            lab = self.labels[k]
            t = len(lab.box)
            i = int(rng.integers(t))
            if first_reference:
                j = 0
            else:
                j = int(rng.integers(t - 1)) if t > 1 else 0
                j = j + 1 if t > 1 and j >= i else j
            frames = self.clip_frames(k).read([i, j])
            items.append((k, i, j, frames))
        return PairBatch(
            target=np.stack([f[0] for *_, f in items]), reference=np.stack([f[1] for *_, f in items]),
            box=np.stack([self.labels[k].box[i] for k, i, _, _ in items]),
            speed=np.array([self.labels[k].speed[i] for k, i, _, _ in items], np.float32),
            expression=np.stack([self.labels[k].expression[i] for k, i, _, _ in items]),
            pose=np.stack([self.labels[k].pose[i] for k, i, _, _ in items]),
            ref_expression=np.stack([self.labels[k].expression[j] for k, _, j, _ in items]),
            ref_pose=np.stack([self.labels[k].pose[j] for k, _, j, _ in items]),
            index=np.array([i for _, i, _, _ in items]), ref_index=np.array([j for _, _, j, _ in items]),
            clip_ids=[self.labels[k].meta.id for k, *_ in items],
            identities=[self.labels[k].meta.identity for k, *_ in items])

    # ---------------------------------------------------------------------------------------- windows
    def window_weights(self, length: int, audio: bool) -> np.ndarray:
        """How many windows of ``length`` frames each clip holds (0 without audio when ``audio``)."""
        return np.array([max(0, len(lab.box) - length + 1) * (lab.meta.has_audio or not audio)
                         for lab in self.labels], np.float64)

    def windows(self, rng: np.random.Generator, batch: int, motion_frames: int = 4, frames: int = 12,
                context: int = 2, audio: bool = True, clips: list[int] | None = None) -> WindowBatch:
        """``batch`` windows of ``motion_frames + frames`` contiguous frames (EMO: n = 4, f = 12, m = 2).

        ``audio``: only clips with audio; ``clips``: draw window ``b`` from clip index ``clips[b]``."""
        n, f, m = motion_frames, frames, context
        if n < 0 or f < 1 or m < 0:
            raise TalkingHeadError("A window needs at least one target frame and non-negative n and m.")
        weights = self.window_weights(n + f, audio)
        parts = []
        for b in range(batch):
            k = clips[b] if clips is not None else self._pick(rng, weights, f"windows of {n + f} frames")
            parts.append(self._window(rng, k, n, f, m))
        stacked: dict[str, Any] = {fd.name: ([p[fd.name] for p in parts] if isinstance(parts[0][fd.name], str)
                                             else np.stack([np.asarray(p[fd.name]) for p in parts]))
                                   for fd in fields(WindowBatch)}
        return WindowBatch(**stacked)

    def _window(self, rng: np.random.Generator, k: int, n: int, f: int, m: int) -> dict[str, Any]:
        lab = self.labels[k]
        t = len(lab.box)
        if t < n + f:
            raise TalkingHeadError(f"Clip {lab.meta.id} has {t} frames, fewer than a window of {n + f}.")
        start = int(rng.integers(t - (n + f) + 1))
        span = np.arange(start, start + n + f)
        outside = np.setdiff1d(np.arange(t), span)
        ref = int(rng.choice(outside)) if len(outside) else int(rng.integers(t))
        decoded = self.clip_frames(k).read([*span.tolist(), ref])
        targets = span[n:]
        around = np.clip(targets[:, None] + np.arange(-m, m + 1)[None, :], 0, t - 1)  # [f, 2m + 1]
        samples = np.zeros((f + 2 * m) * self.hop, np.float32)
        if lab.meta.has_audio:
            audio = self.audio(k)
            a = (start + n - m) * self.hop
            lo, hi = max(a, 0), min(a + len(samples), len(audio))
            if hi > lo:
                samples[lo - a:hi - a] = audio[lo:hi]
        return {"frames": decoded[:-1], "reference": decoded[-1], "boxes": lab.box[span], "speed": lab.speed[span],
                "expression": lab.expression[span], "pose": lab.pose[span], "speed_window": lab.speed[around],
                "audio_features": lab.features[around], "audio": samples, "region": union_box(lab.box[targets]),
                "start": np.int64(start), "has_audio": np.bool_(lab.meta.has_audio), "clip_ids": lab.meta.id,
                "identities": lab.meta.identity, "emotions": lab.meta.emotion}

    # -------------------------------------------------------------------------------- emotion pairs
    def emotion_partners(self, k: int, length: int, audio: bool = True) -> list[int]:
        """Clips that can serve as clip ``k``'s emotion reference: same emotion, another identity, long
        enough; those of another speaker too when there are any."""
        me = self.labels[k].meta
        ok = self.window_weights(length, audio) > 0
        same = [j for j, lab in enumerate(self.labels)
                if ok[j] and lab.meta.emotion == me.emotion and lab.meta.identity != me.identity]
        other_speaker = [j for j in same if self.labels[j].meta.speaker != me.speaker]
        return other_speaker or same

    def emotion_pairs(self, rng: np.random.Generator, batch: int, frames: int = 12, context: int = 2,
                      audio: bool = True) -> EmotionPairBatch:
        """``batch`` pairs of windows of ``frames`` frames: a clip and a same-emotion reference of another
        identity (DICE-Talk)."""
        weights = self.window_weights(frames, audio)
        partners = self._partners(frames, audio)
        weights = weights * np.array([bool(partners[k]) for k in range(len(self.labels))])
        chosen, refs = [], []
        for _ in range(batch):
            k = self._pick(rng, weights, "same-emotion pairs of two identities")
            chosen.append(k)
            refs.append(int(rng.choice(partners[k])))
        return EmotionPairBatch(self.windows(rng, batch, 0, frames, context, audio, chosen),
                                self.windows(rng, batch, 0, frames, context, audio, refs))

    def _partners(self, length: int, audio: bool) -> dict[int, list[int]]:
        cached = self._partner_cache.get((length, audio))
        if cached is None:
            cached = self._partner_cache[(length, audio)] = {k: self.emotion_partners(k, length, audio)
                                                             for k in range(len(self.labels))}
        return cached


# ----------------------------------------------------------------------------------------- torch

def to_torch(batch: Any) -> dict[str, Any]:
    """A batch as a dict of tensors: frames (uint8 ``[..., S, S, 3]``) become float32 ``[..., 3, S, S]`` in
    [-1, 1]; other arrays keep their dtype; lists stay lists."""
    import torch

    out: dict[str, Any] = {}
    for fd in fields(batch):
        value = getattr(batch, fd.name)
        if isinstance(value, np.ndarray) and value.dtype == np.uint8 and value.shape[-1] == 3 and value.ndim >= 4:
            channels_first = np.ascontiguousarray(np.moveaxis(value, -1, -3))
            out[fd.name] = torch.from_numpy(channels_first).float().div_(127.5).sub_(1.0)
        elif isinstance(value, np.ndarray):
            out[fd.name] = torch.from_numpy(np.ascontiguousarray(value))
        elif hasattr(value, "__dataclass_fields__"):
            out[fd.name] = to_torch(value)
        else:
            out[fd.name] = value
    return out


def step_generator(seed: int, step: int, rank: int = 0) -> np.random.Generator:
    """The generator for one training step (the same on a resumed run)."""
    return np.random.default_rng([seed, step, rank])


def _torch_dataset_base() -> type:
    import torch

    return torch.utils.data.Dataset


class StepBatches(_torch_dataset_base()):  # type: ignore[misc]
    """A torch ``Dataset`` whose item ``step`` is the batch of that training step: ``draw(sampler, rng)``
    with the step's generator, as tensors (:func:`to_torch`). Use ``DataLoader(StepBatches(...),
    batch_size=None, num_workers=k, sampler=range(first_step, steps))`` to prepare batches in ``k``
    processes ahead of the training loop; a resumed run starts the range at its step."""

    def __init__(self, sampler: VideoSampler, draw: Callable[[VideoSampler, np.random.Generator], Any], steps: int,
                 seed: int = 0, rank: int = 0) -> None:
        self.sampler = sampler
        self.draw = draw
        self.steps = steps
        self.seed = seed
        self.rank = rank

    def __len__(self) -> int:
        return self.steps

    def __getitem__(self, step: int) -> dict[str, Any]:
        return to_torch(self.draw(self.sampler, step_generator(self.seed, int(step), self.rank)))

"""The ``evaluate`` runner: methods x metrics tables on a dataset split (issue 7, item 3; issue 11, item 5).

Rows are methods, columns are metrics, as in DreamTalk Tab. 1-4, Dimitra Tab. I-II, FD2Talk Tab. 1,
EMO Tab. 1-2 and DICE-Talk Tab. 1. Every row is a :class:`Method`; any generator of the registry
(:mod:`talkinghead.generators`) becomes one through the single adapter :class:`GeneratorMethod`:

- ``ground-truth``: the clip's own motion (the papers' "GT" row);
- ``static``: the neutral face with the first frame's head pose held (no motion at all);
- :class:`GeneratorMethod`: a motion generator (its motion, fitted to the clip's length, layout and
  identity) or a video generator (its frames at ``render_size``). Its style request per clip is
  ``reference`` (the clip's own ground-truth motion, as in DreamTalk's evaluation: the reference clip
  is the test video), ``predicted`` (no style given; the portrait identity comes from a clip of the
  *same speaker with a different emotion*, DreamTalk App. A.1, and the predicted style codes are kept
  for SCD), or ``none``. ``NAME=DIR`` loads any checkpoint folder (its manifest names the generator;
  DreamTalk's ablated denoisers and style predictors of Tab. 2 and Tab. 4 are such folders);
  ``regression=DIR`` must hold a regression variant ("same network, no diffusion"); ``fixed-pose:NAME=DIR``
  keeps the generator's expression and holds the clip's first head pose (Dimitra Tab. I-II, "w/o head pose").
  A generator whose ``evaluation_first_frame`` is true (Dimitra, whose x^1 is the video's first frame) gets the
  clip's first frame as the portrait's expression and pose, and its expression is composed with it as the
  renderer would (:func:`talkinghead.face.model.compose_expression`).

Metrics (per table):

1. lip sync and landmarks (all clips, methods with motion): LSE-D / LSE-C from the motion-domain sync
   judge (:mod:`.syncnet`), the fraction of clips it finds in sync (|offset| <= 1), M-LMD and F-LMD on
   the projected face-model landmarks (:mod:`.landmarks`), E-FID (:mod:`.frechet`), and emotion
   accuracy from the motion classifier trained on the train split (:mod:`.emotion`) when it has two
   emotions;
2. head motion (all clips, methods with motion): diversity and Beat Align Score (FD2Talk), mean rotation
   velocity and its variance (EMO Tab. 2); for generators that work window by window and report their joins
   (``MotionOutput.joins``), the jump into a join frame over the ordinary frame-to-frame jump for the lips, the
   rest of the expression and the pose (Dimitra III-B.4, :func:`.motion.join_jump_ratios`; 1 = no seam);
3. style prediction (when a ``predicted`` row is present; DreamTalk Tab. 4, :mod:`.style`): SCD for the
   rows that predicted style codes, MD and SA for every row with motion; SA's style classifier
   (speaker/emotion/intensity classes) is trained on the evaluated split's ground-truth expression, as
   the paper trains it on the test videos, so the ground-truth row's SA is its accuracy on its own
   training clips;
4. video (the first ``video_clips`` clips; every method): motion is rendered with the warp renderer at
   ``render_size``, a video generator's frames are taken as they are; PSNR, SSIM, CPBD against the
   rendered ground truth, LSE-D / LSE-C from the video-domain judge on mouth crops (placed by the
   motion's projected landmarks, or by tracking a video generator's frames), and a Frechet distance over
   that judge's visual embeddings of 5-frame mouth clips, named "FVD-mouth (SyncNet-video, trained
   here)"; with local Inception/I3D weights (``inception``/``i3d``, :mod:`.inception`, :mod:`.i3d`) also
   FID over the frames and FVD over their 16-frame clips, both against the rendered ground truth.
   Without them no number here is called FID or FVD.

Judges not given are trained on the split ``train`` of the same dataset (preset ``judge_preset``) and
saved next to the report, so a second run reuses them.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np

from talkinghead.config import Config
from talkinghead.data.dataset import Clip, Dataset
from talkinghead.errors import TalkingHeadError
from talkinghead.io.files import atomic_path
from talkinghead.log import log_event, progress
from talkinghead.sequence import MotionSequence

FVD_NAME = "FVD-mouth (SyncNet-video, trained here)"


@dataclass(frozen=True)
class EvaluateConfig(Config):
    """What ``evaluate`` measures. ``video_clips``: how many clips are rendered (0: no video table)."""

    split: str = "test"
    max_clips: int = 0
    video_clips: int = 16
    render_size: int = 128
    judge_preset: str = "cpu"
    judge_video_clips: int = 96
    judge_steps: int = 0
    steps: int | None = None
    seed: int = 0

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {"video_clips": 2, "judge_preset": "tiny", "judge_video_clips": 8, "render_size": 64},
        "cpu": {},
        "paper": {"video_clips": 0, "render_size": 256, "judge_preset": "paper", "judge_video_clips": 1000},
    }


# --------------------------------------------------------------------------------------------- methods

class Method(Protocol):
    """A row of the tables: motion for a clip (None for a method that makes frames only)."""

    name: str

    def generate(self, clip: Clip) -> MotionSequence | None:
        """Motion of the clip's length in the dataset's layout, with the clip's identity."""
        ...


@dataclass
class GroundTruth:
    name: str = "Ground truth"

    def generate(self, clip: Clip) -> MotionSequence:
        return clip.motion


@dataclass
class StaticFace:
    """The portrait held still: neutral expression, the first frame's pose throughout."""

    name: str = "Static face"

    def generate(self, clip: Clip) -> MotionSequence:
        m = clip.motion
        pose = np.repeat(m.pose[:1], len(m), 0)
        return MotionSequence(np.zeros_like(m.expression), pose, m.layout, m.fps, m.identity, "static")


STYLE_MODES = ("reference", "predicted", "none")


def fitted_to_clip(output: Any, clip: Clip, source: str, portrait: np.ndarray | None = None,
                   hold_pose: bool = False) -> MotionSequence:
    """A motion generator's output (:class:`~talkinghead.generators.MotionOutput`) on the clip's frames:
    the dataset's channel order, the clip's length (the last frame held) and identity; the pose generated
    (unless ``hold_pose``), or the clip's first pose held. ``portrait [E]``: the portrait expression the
    generator was given, composed with its output as the renderer composes them."""
    from talkinghead.face.model import compose_expression
    from talkinghead.sequence import expression_for_layout

    m, made = clip.motion, output.motion
    if set(made.layout.channels) != set(m.layout.channels):
        raise TalkingHeadError(f"{source} was trained on another channel layout than the dataset's.")
    made_expr = expression_for_layout(made, m.layout)[:len(m)]
    if portrait is not None:
        made_expr = compose_expression(portrait, made_expr, m.layout)
    length = len(made_expr)
    expression = np.zeros((len(m), m.layout.size), np.float32)
    expression[:length] = made_expr
    expression[length:] = made_expr[-1:]
    pose = np.repeat(m.pose[:1], len(m), 0)
    if output.pose_generated and not hold_pose:
        pose[:length] = made.pose[:length]
        pose[length:] = made.pose[length - 1:length]
    return MotionSequence(expression, pose, m.layout, m.fps, m.identity, source)


@dataclass
class GeneratorMethod:
    """Any generator as a row (see the module docstring for ``style``); ``steps`` overrides its default
    sampling steps. :attr:`style_codes` keeps ``(predicted, reference)`` per clip for SCD when the style
    is predicted and the generator encodes reference motion (``encode_reference``)."""

    name: str
    generator: Any
    style: str = "reference"
    steps: int | None = None
    seed: int = 0
    hold_pose: bool = False
    style_codes: dict[str, tuple[np.ndarray, np.ndarray]] | None = field(default=None, repr=False)
    joins: dict[str, tuple[int, ...]] = field(default_factory=dict, repr=False)
    notes: list[str] = field(default_factory=list, repr=False)
    _partners: dict[str, str] = field(default_factory=dict, repr=False)
    _identities: dict[str, np.ndarray | None] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.style not in STYLE_MODES:
            raise TalkingHeadError(f"The style of an evaluated generator is one of {', '.join(STYLE_MODES)}.")
        offered = tuple(getattr(self.generator, "evaluation_styles", STYLE_MODES))
        if self.style not in offered:
            raise TalkingHeadError(f"The generator of '{self.name}' cannot be evaluated with a {self.style} style; "
                                   f"it offers: {', '.join(offered)}.")
        if self.style == "predicted":
            self.style_codes = {}

    @property
    def makes_motion(self) -> bool:
        return bool(self.generator.kind == "motion")

    def prepare(self, dataset: Dataset, clips: Sequence[Clip]) -> None:
        """``predicted``: choose each clip's portrait, same speaker, different emotion (DreamTalk App. A.1)."""
        if self.style != "predicted":
            return
        metas = [dataset.meta(i) for i in dataset.ids()]
        fallback = 0
        for index, clip in enumerate(clips):
            same = [m for m in metas if m.speaker == clip.meta.speaker and m.id != clip.meta.id]
            other = [m for m in same if m.emotion != clip.meta.emotion]
            pool = other or same
            if not other:
                fallback += 1
            if pool:
                preferred = [m for m in pool if m.split == clip.meta.split] or pool
                rng = np.random.default_rng([self.seed, index])
                partner = sorted(m.id for m in preferred)[int(rng.integers(len(preferred)))]
            else:
                partner = clip.meta.id
            self._partners[clip.meta.id] = partner
            if partner not in self._identities:
                source = clip if partner == clip.meta.id else dataset.clip(partner)
                desc = source.motion.identity.get("descriptor")
                self._identities[partner] = None if desc is None else np.asarray(desc, np.float32).reshape(-1)
        if fallback:
            self.notes.append(f"{self.name}: {fallback} of {len(clips)} clips have no clip of the same speaker with "
                              "another emotion; their portrait came from another clip of the speaker (or themselves).")

    def conditions(self, clip: Clip) -> Any:
        """The generator's conditions for a clip: its audio and stored features, the style request."""
        from talkinghead.generators import Conditions, Portrait, StyleRequest

        m = clip.motion
        request = StyleRequest()
        portrait = None
        if self.style == "reference":
            request = StyleRequest(reference=m.slice(0, _feature_frames(clip)))
        elif self.style == "predicted":
            if clip.meta.id not in self._partners:
                raise TalkingHeadError("GeneratorMethod.prepare must run before generate.")
            identity = dict(m.identity)
            identity.pop("descriptor", None)
            partner = self._identities[self._partners[clip.meta.id]]
            if partner is not None:
                identity["descriptor"] = partner
            portrait = Portrait(None, identity, np.zeros(m.layout.size, np.float32), m.pose[0])
        elif self.first_frame:
            portrait = Portrait(None, m.identity, np.asarray(m.expression[0], np.float32), m.pose[0])
        return Conditions.from_clip(clip, request, portrait, self.seed, self.steps)

    @property
    def first_frame(self) -> bool:
        """Whether the generator starts from the clip's first frame (``evaluation_first_frame``, style none)."""
        return self.style == "none" and bool(getattr(self.generator, "evaluation_first_frame", False))

    def generate(self, clip: Clip) -> MotionSequence | None:
        if not self.makes_motion:
            return None
        output = self.generator.generate(self.conditions(clip))
        if self.style_codes is not None and output.style is not None and hasattr(self.generator, "encode_reference"):
            reference = self.generator.encode_reference(clip.motion.slice(0, _feature_frames(clip)))
            self.style_codes[clip.meta.id] = (np.asarray(output.style), reference)
        if output.joins:
            self.joins[clip.meta.id] = tuple(j for j in output.joins if j < len(clip.motion))
        portrait = np.asarray(clip.motion.expression[0], np.float32) if self.first_frame else None
        return fitted_to_clip(output, clip, self.name, portrait, self.hold_pose)

    def frames(self, clip: Clip, size: int) -> np.ndarray:
        """A video generator's frames for the clip ``[T, size, size, 3]`` uint8 (the last one held)."""
        output = self.generator.generate(self.conditions(clip), size)
        frames = np.stack([np.asarray(f, np.uint8) for f in output.frames])[:len(clip.motion)]
        if frames.shape[1:] != (size, size, 3):
            raise TalkingHeadError(f"{self.name} made frames of {list(frames.shape[1:])}; evaluation asks for "
                                   f"[{size}, {size}, 3].")
        if len(frames) < len(clip.motion):
            frames = np.concatenate([frames, np.repeat(frames[-1:], len(clip.motion) - len(frames), 0)])
        return frames


def _feature_frames(clip: Clip) -> int:
    """Frames with both motion and every stored audio feature (a style reference is cut to them)."""
    return min(len(clip.motion), *(len(v) for v in clip.features.values())) if clip.features else len(clip.motion)


def generator_method(name: str, path: str | Path, steps: int | None = None, seed: int = 0,
                     style: str | None = None) -> GeneratorMethod:
    """A checkpoint folder as a row: the generator its manifest names (or that recognises it), with the
    style mode given, else the one the generator asks for (``evaluation_style``, default ``reference``)."""
    from talkinghead.generators import load

    if not Path(path).is_dir():
        raise TalkingHeadError(f"The checkpoint folder {path} of '{name}' does not exist.")
    return method_for(load(path), name, steps, seed, style)


def method_for(generator: Any, name: str | None = None, steps: int | None = None, seed: int = 0,
               style: str | None = None) -> GeneratorMethod:
    """A loaded generator as a row named ``name`` (default "TITLE (ours)"), with the style mode given, else
    the one the generator asks for (``evaluation_style``, default ``reference``)."""
    mode = style or str(getattr(generator, "evaluation_style", "reference"))
    title = name or f"{getattr(generator, 'title', generator.name)} (ours)"
    return GeneratorMethod(title, generator, mode, steps, seed)


def parse_baselines(specs: Sequence[str], steps: int | None = None, seed: int = 0) -> list[Method]:
    """``ground-truth``/``gt``, ``static``, ``NAME=DIR``, ``style:NAME=DIR``, ``fixed-pose:NAME=DIR`` or
    ``regression=DIR``.

    ``NAME=DIR``: any checkpoint folder (a Tab. 2 row for a DreamTalk denoiser: style from the clip's own
    motion; a Tab. 4 row for a style predictor); ``style:NAME=DIR``: style predicted from audio and a
    portrait of the same speaker with another emotion; ``fixed-pose:NAME=DIR``: the generator's expression
    with the clip's first head pose held (Dimitra's "w/o head pose" rows); ``regression=DIR``: a regression
    variant.
    """
    methods: list[Method] = []
    for spec in specs:
        key = spec.strip()
        if key.lower() in ("ground-truth", "gt", "ground_truth"):
            methods.append(GroundTruth())
        elif key.lower() == "static":
            methods.append(StaticFace())
        elif "=" in key:
            name, _, path = key.partition("=")
            name = name.strip()
            predicted = name.lower().startswith("style:")
            if predicted:
                name = name[len("style:"):].strip()
            fixed_pose = name.lower().startswith("fixed-pose:")
            if fixed_pose:
                name = name[len("fixed-pose:"):].strip()
            if not name or not path.strip():
                raise TalkingHeadError(f"The baseline '{spec}' should be NAME=CHECKPOINT_DIR.")
            if not Path(path).is_dir():
                raise TalkingHeadError(f"The checkpoint folder {path} of baseline '{name}' does not exist.")
            method = generator_method(name, path, steps, seed, "predicted" if predicted else None)
            if name.lower() == "regression" and not predicted and method.style == "reference":
                if not getattr(method.generator, "regression", False):
                    raise TalkingHeadError(f"The regression baseline needs a model trained with --regression; "
                                           f"{path} is not one.")
                method.name = "Regression (same network, no diffusion)"
            method.hold_pose = fixed_pose
            methods.append(method)
        else:
            raise TalkingHeadError(f"Unknown baseline '{spec}'; use ground-truth, static, regression=DIR, NAME=DIR "
                                   "or style:NAME=DIR.")
    names = [m.name for m in methods]
    if len(set(names)) != len(names):
        raise TalkingHeadError("Two baselines have the same name.")
    return methods


# --------------------------------------------------------------------------------------------- metrics

@dataclass
class Judges:
    """The trained judges the metrics need (any may be None: its columns are then left out)."""

    sync_motion: Any = None
    sync_video: Any = None
    emotion: Any = None
    style: Any = None
    reports: dict[str, Any] = field(default_factory=dict)
    inception: Any = None   # FIDInceptionV3 (FID column) when weights were given
    i3d: Any = None         # InceptionI3D (FVD column) when weights were given


def _landmarks(motion: MotionSequence) -> np.ndarray | None:
    from talkinghead.face.model import ARKIT_LAYOUT, project
    from talkinghead.sequence import expression_for_layout

    if "neutral" not in motion.identity or "frame" not in motion.identity:
        return None
    if not set(motion.layout.channels) & set(ARKIT_LAYOUT.channels):
        return None
    return project(motion.identity, expression_for_layout(motion, ARKIT_LAYOUT), motion.pose)


def _nan_mean(values: Sequence[float]) -> float:
    vals = [v for v in values if v is not None and not math.isnan(v)]  # inf (identical frames' PSNR) stays
    return float(np.mean(vals)) if vals else float("nan")


def motion_metrics(clips: Sequence[Clip], generated: Sequence[MotionSequence], judges: Judges) -> dict[str, float]:
    """Tables 1 and 2 for one method over all clips."""
    from talkinghead.evaluation.emotion import emotion_accuracy
    from talkinghead.evaluation.frechet import expression_fid
    from talkinghead.evaluation.landmarks import f_lmd, m_lmd
    from talkinghead.evaluation.motion import (
        audio_beats,
        beat_align_score,
        head_motion_diversity,
        motion_beats,
        velocity_statistics,
    )
    from talkinghead.evaluation.syncnet import summarize

    out: dict[str, float] = {}
    if judges.sync_motion is not None:
        scores = [judges.sync_motion.score_motion(c.audio, g) for c, g in zip(clips, generated, strict=True)]
        s = summarize(scores)
        out.update({"LSE-D": s.lse_d, "LSE-C": s.lse_c, "In sync": s.offset_accuracy})
    lm = [(_landmarks(g), _landmarks(c.motion)) for c, g in zip(clips, generated, strict=True)]
    if all(p is not None and t is not None for p, t in lm):
        out["M-LMD"] = _nan_mean([m_lmd(p, t) for p, t in lm])
        out["F-LMD"] = _nan_mean([f_lmd(p, t) for p, t in lm])
    out["E-FID"] = expression_fid(list(generated), [c.motion for c in clips])
    if judges.emotion is not None:
        known = set(judges.emotion.config.classes)
        pairs = [(g, c.meta.emotion) for c, g in zip(clips, generated, strict=True) if c.meta.emotion in known]
        if pairs:
            acc = emotion_accuracy(judges.emotion, [p[0] for p in pairs], [p[1] for p in pairs])
            out["Emotion acc."] = acc.accuracy
            out["Emo-Score"] = acc.emo_score
    long_enough = [g for g in generated if len(g) >= 3]
    if long_enough:
        out["Diversity"] = head_motion_diversity(long_enough)
        vel = velocity_statistics(long_enough)
        out["Velocity"] = vel.mean_velocity
        out["Velocity var."] = vel.velocity_variance
        bas = []
        for c, g in zip(clips, generated, strict=True):
            beats = audio_beats(c.audio, fps=g.fps, num_frames=len(g))
            if len(beats):
                bas.append(beat_align_score(beats, motion_beats(g)))
        out["BAS"] = _nan_mean(bas)
    return out


JOIN_COLUMNS = {"lips": "Join jump: lips", "expression": "Join jump: expr.", "pose": "Join jump: pose"}


def join_metrics(clips: Sequence[Clip], generated: Sequence[MotionSequence],
                 joins: dict[str, tuple[int, ...]] | None) -> dict[str, float]:
    """The window-join columns for a method that reported joins (nothing for one that did not)."""
    from talkinghead.evaluation.motion import join_jump_ratios

    if not joins or "mouth" not in generated[0].layout.groups:
        return {}
    ratios = join_jump_ratios(generated, [joins.get(c.meta.id, ()) for c in clips])
    return {JOIN_COLUMNS[group]: value for group, value in ratios.items()}


def rendered_clips(method: Method, clips: Sequence[Clip], generated: Sequence[MotionSequence | None],
                   judges: Judges, render_size: int) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """Each clip's frames ``[T, S, S, 3]`` and mouth crops ``[T, h, w]`` (None where no face was found):
    motion rendered with the warp renderer, or a video generator's own frames with crops placed by
    tracking them."""
    from talkinghead.evaluation.syncnet import SyncNetConfig, render_clip

    crop_config = judges.sync_video.config if judges.sync_video is not None else SyncNetConfig(domain="video")
    out: list[tuple[np.ndarray, np.ndarray | None]] = []
    for clip, motion in zip(clips, generated, strict=True):
        if motion is not None:
            frames, crops = render_clip(motion, crop_config, render_size=render_size)
            assert frames is not None
            out.append((frames, crops))
        else:
            frames = method.frames(clip, render_size)  # type: ignore[attr-defined]
            out.append((frames, tracked_mouth_crops(frames, crop_config, clip.motion.fps)))
    return out


def tracked_mouth_crops(frames: np.ndarray, config: Any, fps: float, tracked: Any = None) -> np.ndarray | None:
    """Mouth crops ``[T, h, w]`` of frames with no known motion: the face is tracked (face mesh + face-model
    fit; or ``tracked``, that fit when already made), its projected landmarks place each crop as for rendered
    motion. None when no face is found."""
    from talkinghead.evaluation.syncnet import mouth_crop
    from talkinghead.face.model import ARKIT_LAYOUT, project
    from talkinghead.face.track import track_frames
    from talkinghead.sequence import expression_for_layout

    if tracked is None:
        try:
            tracked = track_frames(frames, fps, min_face_size=8)
        except TalkingHeadError:
            return None
    expression = expression_for_layout(tracked, ARKIT_LAYOUT)
    points = project(tracked.identity, expression, tracked.pose)
    rest = project(tracked.identity, np.zeros_like(expression), tracked.pose)
    return np.stack([mouth_crop(f, p, r, config.crop_height, config.crop_width)
                     for f, p, r in zip(frames, points, rest, strict=True)])


def video_metrics(clips: Sequence[Clip], rendered: Sequence[tuple[np.ndarray, np.ndarray | None]],
                  reference: Sequence[tuple[Any, Any]], judges: Judges, gt_features: np.ndarray | None,
                  pretrained_reference: dict[str, np.ndarray] | None = None,
                  ) -> tuple[dict[str, float], np.ndarray | None]:
    """Table 3 for one method: its frames against the rendered ground truth, its mouth crops judged;
    FID/FVD against ``pretrained_reference`` (:func:`pretrained_features` of the rendered ground truth).
    The judge's columns need mouth crops of every clip."""
    from talkinghead.evaluation.frechet import frechet_distance_from_features
    from talkinghead.evaluation.image import cpbd, psnr, ssim
    from talkinghead.evaluation.syncnet import summarize

    judge = judges.sync_video
    if any(crops is None for _, crops in rendered):
        judge = None
    psnrs, ssims, cpbds, scores, feats = [], [], [], [], []
    pretrained: dict[str, list[np.ndarray]] = {}
    for clip, (frames, crops), (ref_frames, _) in zip(clips, rendered, reference, strict=True):
        for name, value in pretrained_features(judges, frames).items():
            pretrained.setdefault(name, []).append(value)
        psnrs.append(psnr(frames, ref_frames))
        ssims.append(ssim(frames, ref_frames))
        cpbds.append(cpbd(frames))
        if judge is not None and crops is not None:
            scores.append(judge.score(clip.audio, crops))
            feats.append(_window_features(judge, crops))
    out = {"PSNR": _nan_mean(psnrs), "SSIM": _nan_mean(ssims), "CPBD": _nan_mean(cpbds)}
    features = None
    if judge is not None:
        s = summarize(scores)
        out.update({"LSE-D (video)": s.lse_d, "LSE-C (video)": s.lse_c})
        features = np.concatenate(feats)
        if gt_features is not None and len(features) > 2 and len(gt_features) > 2:
            out[FVD_NAME] = frechet_distance_from_features(features, gt_features)
    for name, parts in pretrained.items():
        ref = (pretrained_reference or {}).get(name)
        mine = np.concatenate(parts)
        if ref is not None and len(mine) >= 2 and len(ref) >= 2:
            out[name] = frechet_distance_from_features(mine, ref)
    return out, features


def pretrained_features(judges: Judges, frames: np.ndarray) -> dict[str, np.ndarray]:
    """One rendered video ``[T, H, W, 3]`` uint8 -> {"FID": Inception features ``[T, 2048]``, "FVD": I3D
    features of its non-overlapping 16-frame clips ``[T // 16, 400]``} for the networks that are loaded."""
    from talkinghead.evaluation.i3d import FVD_CLIP_LENGTH, split_clips

    out = {}
    if judges.inception is not None:
        out["FID"] = judges.inception.features(frames)
    if judges.i3d is not None and len(frames) >= FVD_CLIP_LENGTH:
        out["FVD"] = judges.i3d.features(split_clips(frames, FVD_CLIP_LENGTH))
    return out


def _window_features(judge: Any, crops: np.ndarray) -> np.ndarray:
    import torch

    c = judge.config
    windows = torch.from_numpy(np.asarray(crops, np.float32)).unfold(0, c.window, c.window).movedim(-1, 1)
    with torch.no_grad():
        return judge.embed_visual(windows).numpy()


def style_metrics(clips: Sequence[Clip], generated: Sequence[MotionSequence], classifier: Any,
                  style_codes: dict[str, tuple[np.ndarray, np.ndarray]] | None) -> dict[str, float]:
    """DreamTalk Tab. 4 for one method: MD and SA, and SCD when the method predicted style codes."""
    from talkinghead.evaluation.style import motion_distance, style_accuracy, style_code_distance, style_label

    out = {"MD": motion_distance(list(generated), [c.motion for c in clips])}
    if classifier is not None:
        labels = [style_label(c.meta.speaker, c.meta.emotion, c.meta.intensity) for c in clips]
        known = set(classifier.config.classes)
        pairs = [(g, label) for g, label in zip(generated, labels, strict=True) if label in known]
        if pairs:
            out["SA"] = style_accuracy(classifier, [p[0] for p in pairs], [p[1] for p in pairs])
    if style_codes is not None:
        codes = [style_codes[c.meta.id] for c in clips if c.meta.id in style_codes]
        if codes:
            out["SCD"] = style_code_distance(np.stack([p for p, _ in codes]), np.stack([r for _, r in codes]))
    return out


def train_style_classifier(clips: Sequence[Clip], preset: str) -> Any:
    """SA's style classifier on the clips' ground-truth expression (classes: speaker/emotion/intensity);
    None when the clips hold fewer than two styles."""
    from talkinghead.evaluation.classifier import MotionClassifier, MotionClassifierConfig
    from talkinghead.evaluation.style import style_label

    labels = [style_label(c.meta.speaker, c.meta.emotion, c.meta.intensity) for c in clips]
    if len(set(labels)) < 2:
        return None
    return MotionClassifier.fit([c.motion for c in clips], labels,
                                MotionClassifierConfig.preset(preset, use_pose=False))


# --------------------------------------------------------------------------------------------- judges

def load_or_train_judges(data: Dataset, out: Path, config: EvaluateConfig, sync_motion: str | Path | None,
                         sync_video: str | Path | None, emotion: bool = True) -> Judges:
    """Load the given judges; train the missing ones on the train split (saved under ``out/judges``)."""
    from talkinghead.checkpoint import read_checkpoint_info
    from talkinghead.evaluation.emotion import train_emotion_classifier_from_dataset
    from talkinghead.evaluation.syncnet import SyncNet, SyncTrainConfig, train_syncnet

    judges = Judges()
    folder = out / "judges"
    for domain, given in (("motion", sync_motion), ("video", sync_video)):
        if domain == "video" and config.video_clips == 0:
            continue
        path = Path(given) if given is not None else folder / f"syncnet_{domain}"
        if path.is_dir():
            model = SyncNet.from_pretrained(path)
            if model.config.domain != domain:
                raise TalkingHeadError(f"{path} is a {model.config.domain}-domain sync judge, not a {domain} one.")
            saved = read_checkpoint_info(path).extra.get("report", {})
            judges.reports[f"syncnet_{domain}"] = {"checkpoint": str(path), **saved}
        elif given is not None:
            raise TalkingHeadError(f"The sync judge folder {given} does not exist.")
        else:
            if not data.ids("train"):
                raise TalkingHeadError("The dataset has no train split to train the sync judge on; give --sync-judge.")
            limit = config.judge_video_clips if domain == "video" else None
            tc = SyncTrainConfig.preset(config.judge_preset, render_size=config.render_size)
            if config.judge_steps > 0:
                tc = tc.replace(steps=config.judge_steps)
            model, report = train_syncnet(data, domain, config.judge_preset, tc, eval_split="val", limit=limit)
            model.save_pretrained(path, extra={"report": report, "made_by": "talkinghead evaluate"})
            judges.reports[f"syncnet_{domain}"] = {"checkpoint": str(path), **report}
        if domain == "motion":
            judges.sync_motion = model
        else:
            judges.sync_video = model
    if emotion:
        train_ids = data.ids("train")
        if len({data.meta(i).emotion for i in train_ids}) >= 2:
            judges.emotion = train_emotion_classifier_from_dataset(data, "train")
    return judges


# --------------------------------------------------------------------------------------------- runner

@dataclass
class EvaluationReport:
    """``results[method][metric]``; ``tables``: (title, metric names) in display order."""

    dataset: str
    split: str
    num_clips: int
    video_clips: int
    results: dict[str, dict[str, float]]
    tables: list[tuple[str, list[str]]]
    judges: dict[str, Any]
    seconds: float
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "split": self.split, "clips": self.num_clips, "video_clips": self.video_clips,
                "results": {m: {k: _json_number(v) for k, v in r.items()} for m, r in self.results.items()},
                "tables": [{"title": t, "metrics": cols} for t, cols in self.tables], "judges": self.judges,
                "seconds": round(self.seconds, 1), "notes": self.notes}


def _json_number(v: float) -> float | None:
    return None if v is None or not math.isfinite(v) else float(v)


LOWER_BETTER = {"LSE-D", "M-LMD", "F-LMD", "E-FID", "LSE-D (video)", FVD_NAME, "SCD", "MD", "FID", "FVD"}
HIGHER_BETTER = {"LSE-C", "In sync", "Emotion acc.", "Emo-Score", "Diversity", "BAS", "PSNR", "SSIM", "CPBD",
                 "LSE-C (video)", "SA"}
TABLES = (
    ("Lip sync, landmarks and expression", ("LSE-D", "LSE-C", "In sync", "M-LMD", "F-LMD", "E-FID", "Emotion acc.",
                                             "Emo-Score")),
    ("Head motion", ("Diversity", "BAS", "Velocity", "Velocity var.")),
    ("Window joins (jump into a join frame / ordinary jump; 1 = no seam)", tuple(JOIN_COLUMNS.values())),
    ("Style prediction (DreamTalk Tab. 4)", ("SCD", "MD", "SA")),
    ("Rendered video", ("PSNR", "SSIM", "CPBD", "LSE-D (video)", "LSE-C (video)", "FID", "FVD", FVD_NAME)),
)


def _header(metric: str) -> str:
    return f"{metric} ↓" if metric in LOWER_BETTER else f"{metric} ↑" if metric in HIGHER_BETTER else metric


def _cell(v: float | None) -> str:
    if v is None or math.isnan(v):
        return "–"
    if math.isinf(v):
        return "∞" if v > 0 else "-∞"
    return f"{v:.3f}" if abs(v) < 100 else f"{v:.1f}"


def markdown_tables(report: EvaluationReport) -> str:
    """The report as markdown: one table per metric family, rows = methods."""
    lines = [f"# Evaluation: {report.dataset}, split {report.split}", "",
             f"{report.num_clips} clips; rendered-video metrics on {report.video_clips} of them. "
             f"Made in {report.seconds:.0f} s.", ""]
    for title, cols in report.tables:
        lines += [f"## {title}", "", "| Method | " + " | ".join(_header(c) for c in cols) + " |",
                  "|---|" + "---|" * len(cols)]
        for method, values in report.results.items():
            lines.append(f"| {method} | " + " | ".join(_cell(values.get(c)) for c in cols) + " |")
        lines.append("")
    if report.notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in report.notes] + [""]
    return "\n".join(lines)


def evaluate(data: str | Path | Dataset, methods: Sequence[Method], out: str | Path | None = None,
             config: EvaluateConfig | None = None, sync_judge: str | Path | None = None,
             video_judge: str | Path | None = None, judges: Judges | None = None,
             inception: str | Path | None = None, i3d: str | Path | None = None) -> EvaluationReport:
    """Run every method on the split's clips and measure them; write ``report.json``/``report.md`` to ``out``.

    ``inception``/``i3d``: local weight folders of the FID Inception-v3 / FVD's I3D (FID and FVD columns)."""
    config = config or EvaluateConfig()
    start = time.perf_counter()
    dataset = data if isinstance(data, Dataset) else Dataset(data)
    if not methods:
        raise TalkingHeadError("Nothing to evaluate: give a checkpoint or at least one baseline.")
    ids = dataset.ids(config.split)
    if not ids:
        raise TalkingHeadError(f"The dataset {dataset.root} has no clips in split '{config.split}'.")
    if config.max_clips > 0:
        ids = ids[:config.max_clips]
    out_dir = Path(out) if out is not None else None
    nets = _load_pretrained(inception, i3d, config)  # before training judges: a bad folder fails at once
    if judges is None:
        if out_dir is None:
            raise TalkingHeadError("Give an output folder (judges are trained and saved there) or ready judges.")
        judges = load_or_train_judges(dataset, out_dir, config, sync_judge, video_judge)
    for key, net in nets.items():
        setattr(judges, key, net)
    clips = [dataset.clip(i) for i in progress(ids, f"reading {config.split} clips", total=len(ids))]
    n_video = min(config.video_clips, len(clips))
    video_clips = clips[:n_video]
    reference: list[tuple[Any, Any]] = []
    gt_features = None
    gt_pretrained: dict[str, np.ndarray] = {}
    if n_video:
        from talkinghead.evaluation.syncnet import SyncNetConfig, render_clip

        crop_config = judges.sync_video.config if judges.sync_video is not None else SyncNetConfig(domain="video")
        reference = [render_clip(c.motion, crop_config, render_size=config.render_size) for c in video_clips]
        if judges.sync_video is not None:
            gt_features = np.concatenate([_window_features(judges.sync_video, r[1]) for r in reference])
        per_video = [pretrained_features(judges, r[0]) for r in reference]
        gt_pretrained = {k: np.concatenate([v[k] for v in per_video if k in v])
                         for k in ("FID", "FVD") if any(k in v for v in per_video)}
    results: dict[str, dict[str, float]] = {}
    style_table = any(getattr(m, "style_codes", None) is not None for m in methods)
    if style_table and judges.style is None:
        judges.style = train_style_classifier(clips, config.judge_preset)
    for method in methods:
        t0 = time.perf_counter()
        prepare = getattr(method, "prepare", None)
        if prepare is not None:
            prepare(dataset, clips)
        generated = [method.generate(c) for c in progress(clips, f"generating: {method.name}", total=len(clips))]
        motions = [g for g in generated if g is not None]
        for c, g in zip(clips, generated, strict=True):
            if g is not None and len(g) != len(c.motion):
                raise TalkingHeadError(f"{method.name} made {len(g)} frames for clip {c.meta.id} of {len(c.motion)}.")
        seconds = time.perf_counter() - t0
        values: dict[str, float] = {}
        if len(motions) == len(clips):  # motion metrics for methods that make motion
            values.update(motion_metrics(clips, motions, judges))
            values.update(join_metrics(clips, motions, getattr(method, "joins", None)))
            if style_table:
                values.update(style_metrics(clips, motions, judges.style, getattr(method, "style_codes", None)))
        if n_video:
            rendered = rendered_clips(method, video_clips, generated[:n_video], judges, config.render_size)
            vids, _ = video_metrics(video_clips, rendered, reference, judges, gt_features, gt_pretrained)
            values.update(vids)
        results[method.name] = values
        log_event("evaluated", method=method.name, seconds=round(time.perf_counter() - t0, 1),
                  generation_seconds=round(seconds, 1))
    tables = [(title, [c for c in cols if any(c in r for r in results.values())]) for title, cols in TABLES]
    tables = [(t, cols) for t, cols in tables if cols]
    notes = [
        "LSE-D/LSE-C (SyncNet's distance and confidence, offsets -15..15 frames) come from a sync judge "
        "trained on this dataset's train split (talkinghead.evaluation.syncnet), not the pretrained SyncNet: "
        "compare them within this project only.",
        "'In sync': fraction of clips whose detected audio-visual offset is within one frame of 0.",
        "M-LMD/F-LMD: face-model landmarks projected in the identity's image frame (pixels), per-frame "
        "Kabsch-Umeyama aligned on the 468 mesh vertices.",
        "Emotion accuracy: a motion classifier trained on the train split (talkinghead.evaluation.emotion).",
    ]
    if any(FVD_NAME in r for r in results.values()):
        notes.append(("" if nets else "No Inception/I3D weights are used: ")
                     + f"'{FVD_NAME}' is the Frechet distance over the video sync judge's "
                     "embeddings of 5-frame mouth-crop clips (rendered ground truth as the reference set).")
    if style_table:
        notes.append("Style prediction (DreamTalk App. A.1): each clip's portrait identity comes from a clip of the "
                     "same speaker with another emotion; SCD is the L2 distance of the predicted style code to the "
                     "denoiser's code of the clip's own motion, MD the mean per-frame L2 distance of generated to "
                     "ground-truth expression, SA the accuracy of a speaker/emotion/intensity classifier trained on "
                     "this split's ground-truth expression.")
    notes.extend(_pretrained_notes(nets, gt_pretrained, n_video))
    for method in methods:
        notes.extend(getattr(method, "notes", []))
    for name, info in judges.reports.items():
        acc = info.get("eval_in_sync_accuracy")
        if acc is not None:
            notes.append(f"Judge {name}: offset-detection accuracy on split '{info.get('eval_split')}' "
                         f"{acc:.3f} in sync, {info.get('eval_shifted_accuracy', float('nan')):.3f} with audio shifted "
                         f"(chance {info.get('eval_chance', float('nan')):.3f}).")
    report = EvaluationReport(str(dataset.root), config.split, len(clips), n_video, results, tables,
                              judges.reports, time.perf_counter() - start, notes)
    if out_dir is not None:
        write_report(report, out_dir)
    return report


def _load_pretrained(inception: str | Path | None, i3d: str | Path | None, config: EvaluateConfig) -> dict[str, Any]:
    """The FID/FVD networks from their local folders (``{"inception": net, "i3d": net}``, given ones only)."""
    if inception is None and i3d is None:
        return {}
    if config.video_clips == 0:
        raise TalkingHeadError("FID and FVD are measured on rendered clips; give --video-clips N (N > 0) with "
                               "--inception/--i3d.")
    from talkinghead.evaluation.i3d import load_i3d
    from talkinghead.evaluation.inception import load_inception

    nets: dict[str, Any] = {}
    if inception is not None:
        nets["inception"] = load_inception(inception)
    if i3d is not None:
        nets["i3d"] = load_i3d(i3d)
    return nets


def _pretrained_notes(nets: dict[str, Any], gt: dict[str, np.ndarray], n_video: int) -> list[str]:
    notes = []
    if "inception" in nets:
        net = nets["inception"]
        width = "" if net.config.width == 1 else f" (width {net.config.width:g})"
        notes.append(f"FID: Frechet distance of FID Inception-v3{width} pool_3 features of all frames of the "
                     f"{n_video} rendered clips ({len(gt.get('FID', ()))} ground-truth frames, resized to "
                     f"{net.config.image_size} px); with fewer frames than feature dimensions ({net.feature_dim}) "
                     "the estimate is biased upwards: compare rows, not papers.")
    if "i3d" in nets:
        if "FVD" in gt:
            width = "" if nets["i3d"].config.width == 1 else f" (width {nets['i3d'].config.width:g})"
            notes.append(f"FVD: Frechet distance of I3D{width} Kinetics logits of non-overlapping 16-frame clips "
                         f"of the rendered clips ({len(gt['FVD'])} ground-truth clips).")
        else:
            notes.append("FVD: no rendered clip is 16 frames long, so there is no FVD.")
    return notes


def write_report(report: EvaluationReport, out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / "report.json") as tmp:
        tmp.write_text(json.dumps(_clean(report.to_dict()), indent=2, allow_nan=False) + "\n")
    with atomic_path(out / "report.md") as tmp:
        tmp.write_text(markdown_tables(report))
    return out / "report.json", out / "report.md"


def _clean(value: Any) -> Any:
    """JSON-ready: numpy scalars and arrays to Python, NaN/inf to null."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return _clean(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value

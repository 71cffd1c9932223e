"""The ``evaluate`` runner: methods x metrics tables on a dataset split (issue 7, item 3).

Rows are methods, columns are metrics, as in DreamTalk Tab. 1-4, Dimitra Tab. I-II, FD2Talk Tab. 1,
EMO Tab. 1-2 and DICE-Talk Tab. 1. Every method is a small adapter (:class:`Method`: a name and
``generate(clip) -> MotionSequence``), so a new generator plugs in with a few lines. Built in:

- ``ground-truth``: the clip's own motion (the papers' "GT" row);
- ``static``: the neutral face with the first frame's head pose held (no motion at all);
- :class:`DreamTalkMethod`: a DreamTalk checkpoint folder (``denoiser/``) or a denoiser checkpoint,
  style taken from the clip's own ground-truth motion as in DreamTalk's evaluation (the reference clip
  is the test video), DDIM sampling through :func:`talkinghead.pipeline.sample_motion`; the ablated
  variants (DreamTalk Tab. 2: without lip expert, unconditional lip expert) are such checkpoints, given
  as ``NAME=DIR``;
- ``regression=DIR``: a denoiser trained with ``train denoiser --regression`` (the same network, no
  diffusion), run in one forward pass from its fixed input;
- :class:`StylePredictionMethod` (``style:NAME=DIR``): a style predictor and its denoiser with the
  protocol of DreamTalk App. A.1 (portrait from a different-emotion clip of the same speaker); the
  Tab. 4 ablations (w/o speaker info, w/o cross-ID training, regression) are such checkpoints.

Metrics (per table):

1. lip sync and landmarks (all clips): LSE-D / LSE-C from the motion-domain sync judge
   (:mod:`.syncnet`), the fraction of clips it finds in sync (|offset| <= 1), M-LMD and F-LMD on the
   projected face-model landmarks (:mod:`.landmarks`), E-FID (:mod:`.frechet`), and emotion accuracy
   from the motion classifier trained on the train split (:mod:`.emotion`) when it has two emotions;
2. head motion (all clips): diversity and Beat Align Score (FD2Talk), mean rotation velocity and its
   variance (EMO Tab. 2);
3. style prediction (when a style-predictor row is present; DreamTalk Tab. 4, :mod:`.style`): SCD for
   the style-predictor rows, MD and SA for every row; SA's style classifier (speaker/emotion/intensity
   classes) is trained on the evaluated split's ground-truth expression, as the paper trains it on the
   test videos, so the ground-truth row's SA is its accuracy on its own training clips;
4. video (the first ``video_clips`` clips rendered with the warp renderer at ``render_size``): PSNR,
   SSIM, CPBD against the rendered ground truth, LSE-D / LSE-C from the video-domain judge on mouth
   crops, and a Frechet distance over that judge's visual embeddings of 5-frame mouth clips, named
   "FVD-mouth (SyncNet-video, trained here)"; with local Inception/I3D weights (``inception``/``i3d``,
   :mod:`.inception`, :mod:`.i3d`) also FID over the rendered frames and FVD over their 16-frame
   clips, both against the rendered ground truth. Without them no number here is called FID or FVD.

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
from talkinghead.motion.sequence import MotionSequence

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
    steps: int = 10
    seed: int = 0

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {"video_clips": 2, "judge_preset": "tiny", "judge_video_clips": 8, "render_size": 64},
        "cpu": {},
        "paper": {"video_clips": 0, "render_size": 256, "judge_preset": "paper", "judge_video_clips": 1000},
    }


# --------------------------------------------------------------------------------------------- methods

class Method(Protocol):
    """A way to make motion for a clip (the adapter every row of the tables goes through)."""

    name: str

    def generate(self, clip: Clip) -> MotionSequence:
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


def load_denoiser(checkpoint: str | Path) -> Any:
    """The denoiser of a DreamTalk folder (``denoiser/``) or of a denoiser checkpoint folder itself."""
    from talkinghead.motion.dreamtalk import DreamTalkDenoiser

    path = Path(checkpoint)
    return DreamTalkDenoiser.from_pretrained(path / "denoiser" if (path / "denoiser").is_dir() else path)


def _checkpoint_component(path: Path) -> str | None:
    """The component named in ``path/config.json`` (None when it is not a checkpoint folder)."""
    try:
        return str(json.loads((path / "config.json").read_text()).get("component"))
    except (OSError, ValueError, AttributeError):
        return None


def _clip_audio(model: Any, clip: Clip, what: str, limit: int | None = None) -> np.ndarray:
    """The clip's audio features ``[T, D]`` that ``model`` reads (its ``audio_features`` names, in order)."""
    names = list((model.audio_features or {}).get("names", []))
    missing = [n for n in names if n not in clip.features]
    if not names or missing:
        raise TalkingHeadError(f"The clip {clip.meta.id} lacks the audio feature(s) "
                               f"{', '.join(missing or ['(none named)'])} that the {what} reads.")
    parts = [np.asarray(clip.features[n], np.float32).reshape(len(clip.features[n]), -1) for n in names]
    length = min(len(p) for p in parts) if limit is None else min(limit, *(len(p) for p in parts))
    return np.concatenate([p[:length] for p in parts], axis=1)


def _motion_reference(den: Any, m: MotionSequence, length: int) -> np.ndarray:
    """The style reference of a clip: its expression (+ pose) ``[N, C]``, middle 256 frames at most."""
    from talkinghead.motion.dreamtalk.style_bank import middle_frames

    reference = m.expression[:length]
    if den.config.generate_pose:
        reference = np.concatenate([reference, m.pose[:length]], axis=1)
    return middle_frames(reference.astype(np.float32))


def motion_with_style(den: Any, clip: Clip, style: np.ndarray, steps: int, seed: int, source: str) -> MotionSequence:
    """Motion of ``clip``'s length from its audio and a style code ``[d]``: DDIM sampling for a diffusion
    denoiser, one forward pass from the fixed input for a regression one (``config.regression``)."""
    import torch

    from talkinghead.pipeline import GenerateConfig, sample_motion

    m = clip.motion
    if den.layout and tuple(den.layout.get("channels", ())) != tuple(m.layout.channels):
        raise TalkingHeadError(f"The denoiser of {source} was trained on another channel layout than the dataset's.")
    audio = _clip_audio(den, clip, "denoiser", len(m))
    length = len(audio)
    if den.config.regression:
        with torch.no_grad():
            x0 = den.regress(torch.from_numpy(audio)[None], torch.from_numpy(np.asarray(style, np.float32))[None])
            motion = den.motion_norm.inverse(x0)[0].numpy()
    else:
        motion = sample_motion(den, audio, style, GenerateConfig.preset("cpu", steps=steps, seed=seed))
    e = den.config.expression_dim
    expression = np.zeros((len(m), m.layout.size), np.float32)
    expression[:length] = motion[:, :e]
    expression[length:] = motion[-1:, :e]
    pose = np.repeat(m.pose[:1], len(m), 0)
    if den.config.generate_pose:
        pose[:length] = motion[:, e:e + 6]
        pose[length:] = motion[-1:, e:e + 6]
    return MotionSequence(expression, pose, m.layout, m.fps, m.identity, source)


@dataclass
class DreamTalkMethod:
    """A DreamTalk denoiser (a folder with ``denoiser/``, or a denoiser checkpoint folder); the style is
    encoded from the clip's own ground-truth motion, as in DreamTalk's evaluation. The ablated variants
    of Tab. 2 (w/o lip expert, uncond lip expert) are such checkpoints; a checkpoint trained with
    ``--regression`` runs in one forward pass (the regression baseline), any other with ``steps`` of DDIM."""

    name: str
    checkpoint: str | Path
    steps: int = 10
    seed: int = 0
    _denoiser: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        path = Path(self.checkpoint)
        if not (path / "denoiser").is_dir() and _checkpoint_component(path) != "dreamtalk.denoiser":
            raise TalkingHeadError(f"{self.checkpoint} holds no DreamTalk denoiser (no denoiser/ folder and no "
                                   "denoiser checkpoint).")

    @property
    def denoiser(self) -> Any:
        if self._denoiser is None:
            self._denoiser = load_denoiser(self.checkpoint)
        return self._denoiser

    def generate(self, clip: Clip) -> MotionSequence:
        import torch

        den = self.denoiser
        length = min(len(clip.motion), len(_clip_audio(den, clip, "denoiser")))
        with torch.no_grad():
            style = den.encode_style(torch.from_numpy(_motion_reference(den, clip.motion, length))[None])[0].numpy()
        return motion_with_style(den, clip, style, self.steps, self.seed, f"{self.name}:{self.checkpoint}")


@dataclass
class StylePredictionMethod:
    """A style predictor and its denoiser, evaluated with DreamTalk's protocol for Tab. 4 (App. A.1).

    For each clip the portrait (the identity descriptor) comes from a clip of the *same speaker with a
    different emotion* (any split; another clip of the speaker, then the clip itself, only when there is
    none, counted in :attr:`notes`); the style code is predicted from the clip's audio and that identity
    (the style predictor's sampler as in ``generate``: DDIM ``style_steps``, or one pass for a regression
    predictor) and the motion generated from the clip's audio with it. :attr:`style_codes` keeps
    ``(predicted, reference)`` per clip, the reference being the denoiser's style code of the clip's own
    ground-truth motion (SCD). The generated motion keeps the clip's identity, so landmark metrics
    measure motion only.

    ``checkpoint``: a folder with ``style_predictor/`` and ``denoiser/``, or a style-predictor
    checkpoint folder whose denoiser is ``denoiser`` (default: the path recorded when it was trained).
    """

    name: str
    checkpoint: str | Path
    steps: int = 10
    seed: int = 0
    style_steps: int = 50
    denoiser_dir: str | Path | None = None
    style_codes: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False)
    notes: list[str] = field(default_factory=list, repr=False)
    _models: Any = field(default=None, repr=False)
    _partners: dict[str, str] = field(default_factory=dict, repr=False)
    _identities: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        path = Path(self.checkpoint)
        if not (path / "style_predictor").is_dir() and _checkpoint_component(path) != "dreamtalk.style_predictor":
            raise TalkingHeadError(f"{self.checkpoint} holds no DreamTalk style predictor.")

    def _load(self) -> tuple[Any, Any]:
        if self._models is None:
            from talkinghead.checkpoint import read_checkpoint_info
            from talkinghead.motion.dreamtalk import StylePredictor
            from talkinghead.motion.dreamtalk.style_bank import style_encoder_fingerprint

            path = Path(self.checkpoint)
            folder = (path / "style_predictor") if (path / "style_predictor").is_dir() else path
            predictor = StylePredictor.from_pretrained(folder)
            extra = read_checkpoint_info(folder).extra
            beside = path / "denoiser"
            den_dir = self.denoiser_dir or (beside if beside.is_dir() else extra.get("denoiser"))
            if not den_dir or not Path(den_dir).is_dir():
                raise TalkingHeadError(f"The denoiser of the style predictor {self.checkpoint} is not at hand; put it "
                                       "next to it as denoiser/.")
            den = load_denoiser(den_dir)
            if predictor.config.style_dim != den.config.d_model:
                raise TalkingHeadError(f"The style predictor {self.checkpoint} was trained for another denoiser.")
            stored = extra.get("denoiser_fingerprint")
            if stored and stored != style_encoder_fingerprint(den):
                raise TalkingHeadError(f"The style predictor {self.checkpoint} learned the style codes of another "
                                       f"denoiser than {den_dir}.")
            self._models = (predictor, den)
        return self._models

    def prepare(self, dataset: Dataset, clips: Sequence[Clip]) -> None:
        """Choose each clip's portrait: same speaker, different emotion (DreamTalk App. A.1)."""
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
                self._identities[partner] = np.zeros(0, np.float32) if desc is None else \
                    np.asarray(desc, np.float32).reshape(-1)
        if fallback:
            self.notes.append(f"{self.name}: {fallback} of {len(clips)} clips have no clip of the same speaker with "
                              "another emotion; their portrait came from another clip of the speaker (or themselves).")

    def generate(self, clip: Clip) -> MotionSequence:
        import torch

        from talkinghead.diffusion import ScheduleConfig
        from talkinghead.motion.dreamtalk import predict_style
        from talkinghead.motion.dreamtalk.style_bank import middle_frames

        predictor, den = self._load()
        if clip.meta.id not in self._partners:
            raise TalkingHeadError("StylePredictionMethod.prepare must run before generate.")
        identity = self._identities[self._partners[clip.meta.id]]
        if predictor.config.speaker_info and len(identity) != predictor.config.identity_dim:
            raise TalkingHeadError(f"The style predictor expects a {predictor.config.identity_dim}-value identity "
                                   f"descriptor; clip {self._partners[clip.meta.id]} has {len(identity)}.")
        audio = middle_frames(_clip_audio(predictor, clip, "style predictor"), predictor.config.max_frames)
        generator = torch.Generator().manual_seed(self.seed + 1)
        ident = torch.from_numpy(identity)[None] if predictor.config.speaker_info else None
        predicted = predict_style(predictor, torch.from_numpy(audio)[None], ident,
                                  schedule=ScheduleConfig(num_inference_steps=self.style_steps),
                                  steps=self.style_steps, sampler="ddim", generator=generator)[0].numpy()
        length = min(len(clip.motion), len(_clip_audio(den, clip, "denoiser")))
        with torch.no_grad():
            reference = den.encode_style(torch.from_numpy(_motion_reference(den, clip.motion, length))[None])[0]
        self.style_codes[clip.meta.id] = (predicted, reference.numpy())
        return motion_with_style(den, clip, predicted, self.steps, self.seed, f"{self.name}:{self.checkpoint}")


def parse_baselines(specs: Sequence[str], steps: int = 10, seed: int = 0) -> list[Method]:
    """``ground-truth``/``gt``, ``static``, ``NAME=DIR`` or ``style:NAME=DIR``.

    ``NAME=DIR``: a denoiser (folder with ``denoiser/`` or a denoiser checkpoint): a Tab. 2 row, style
    from the clip's own motion; ``regression=DIR`` must be a denoiser trained with ``--regression``.
    ``style:NAME=DIR`` (or ``NAME=DIR`` where DIR is a style-predictor checkpoint): a Tab. 4 row, style
    predicted from audio and a portrait of the same speaker with another emotion.
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
            style = name.lower().startswith("style:")
            if style:
                name = name[len("style:"):].strip()
            if not name or not path.strip():
                raise TalkingHeadError(f"The baseline '{spec}' should be NAME=CHECKPOINT_DIR.")
            if not Path(path).is_dir():
                raise TalkingHeadError(f"The checkpoint folder {path} of baseline '{name}' does not exist.")
            if style or _checkpoint_component(Path(path)) == "dreamtalk.style_predictor":
                methods.append(StylePredictionMethod(name, path, steps, seed))
            elif name.lower() == "regression":
                den = load_denoiser(path) if _is_denoiser(Path(path)) else None
                if den is None or not den.config.regression:
                    raise TalkingHeadError(f"The regression baseline needs a denoiser trained with --regression; "
                                           f"{path} is not one.")
                methods.append(DreamTalkMethod("Regression (same network, no diffusion)", path, steps, seed,
                                               _denoiser=den))
            else:
                methods.append(DreamTalkMethod(name, path, steps, seed))
        else:
            raise TalkingHeadError(f"Unknown baseline '{spec}'; use ground-truth, static, regression=DIR, NAME=DIR "
                                   "or style:NAME=DIR.")
    names = [m.name for m in methods]
    if len(set(names)) != len(names):
        raise TalkingHeadError("Two baselines have the same name.")
    return methods


def _is_denoiser(path: Path) -> bool:
    return (path / "denoiser").is_dir() or _checkpoint_component(path) == "dreamtalk.denoiser"


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
    from talkinghead.render.motion_input import expression_for_layout

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


def video_metrics(clips: Sequence[Clip], generated: Sequence[MotionSequence], reference: Sequence[tuple[Any, Any]],
                  judges: Judges, render_size: int, gt_features: np.ndarray | None,
                  pretrained_reference: dict[str, np.ndarray] | None = None,
                  ) -> tuple[dict[str, float], np.ndarray | None]:
    """Table 3 for one method: render, compare with the rendered ground truth, judge mouth crops;
    FID/FVD against ``pretrained_reference`` (:func:`pretrained_features` of the rendered ground truth)."""
    from talkinghead.evaluation.frechet import frechet_distance_from_features
    from talkinghead.evaluation.image import cpbd, psnr, ssim
    from talkinghead.evaluation.syncnet import SyncNetConfig, render_clip, summarize

    judge = judges.sync_video
    crop_config = judge.config if judge is not None else SyncNetConfig(domain="video")
    psnrs, ssims, cpbds, scores, feats = [], [], [], [], []
    pretrained: dict[str, list[np.ndarray]] = {}
    for clip, motion, (ref_frames, _) in zip(clips, generated, reference, strict=True):
        frames, crops = render_clip(motion, crop_config, render_size=render_size)
        assert frames is not None
        for name, value in pretrained_features(judges, frames).items():
            pretrained.setdefault(name, []).append(value)
        psnrs.append(psnr(frames, ref_frames))
        ssims.append(ssim(frames, ref_frames))
        cpbds.append(cpbd(frames))
        if judge is not None:
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
    style_table = any(hasattr(m, "style_codes") for m in methods)
    if style_table and judges.style is None:
        judges.style = train_style_classifier(clips, config.judge_preset)
    for method in methods:
        t0 = time.perf_counter()
        prepare = getattr(method, "prepare", None)
        if prepare is not None:
            prepare(dataset, clips)
        generated = [method.generate(c) for c in progress(clips, f"generating: {method.name}", total=len(clips))]
        for c, g in zip(clips, generated, strict=True):
            if len(g) != len(c.motion):
                raise TalkingHeadError(f"{method.name} made {len(g)} frames for clip {c.meta.id} of {len(c.motion)}.")
        seconds = time.perf_counter() - t0
        values = motion_metrics(clips, generated, judges)
        if style_table:
            values.update(style_metrics(clips, generated, judges.style, getattr(method, "style_codes", None)))
        if n_video:
            vids, _ = video_metrics(video_clips, generated[:n_video], reference, judges, config.render_size,
                                    gt_features, gt_pretrained)
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

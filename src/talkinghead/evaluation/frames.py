"""``evaluate-frames``: frame generators on a talking-face video dataset, in the layout of FD2Talk's Table 1.

FD2Talk (Yao et al., MM '24) Sec. 4.1 "Evaluation Metrics" and Table 1 compare methods on three groups of columns;
here every row is a *motion source* (the clip's own motion, or a motion generator run on the clip's audio for the
clip's portrait) rendered by a *frame generator* (the warp renderer, FD2Talk's latent-diffusion UNet), plus the
dataset's own frames (the ground-truth row) and the portrait's still crop (a floor):

1. lip synchronization: ``LSE-C``/``LSE-D`` from the motion-domain sync judge on the row's motion (the lip vertices
   of the face model; the paper's "LSE-C"), and ``LSE-C (video)``/``LSE-D (video)`` from the video-domain judge on
   mouth crops placed by tracking the row's frames (:func:`talkinghead.evaluation.evaluate.tracked_mouth_crops`; the
   paper's "SyncNet" score). LSE-C is SyncNet's confidence (median minus minimum of the mean audio-visual embedding
   distance over offsets -15..15), LSE-D that minimum (:mod:`.syncnet`);
2. motion diversity: ``Diversity`` (the standard deviation over frames of pitch, yaw and roll, averaged; the paper
   takes Hopenet's embeddings of the frames) and ``Beat Align`` (Bailando's Beat Align Score of speech onsets
   against the minima of head speed), both on the row's motion (:mod:`.motion`);
3. image quality against the ground-truth frames over all evaluated frames: ``FID`` with local Inception weights
   (:mod:`.inception`), else ``FD (face net)``, the Frechet distance over the globally pooled last-stage features of
   the perceptual network trained here (:class:`talkinghead.render.fd2talk.perceptual.FacePerceptualNet`), which is
   *not* FID; ``PSNR`` and ``SSIM`` per frame (:mod:`.image`);
4. identity (EMO's and DICE-Talk's ``F-SIM``): the cosine similarity of each frame's face embedding to the portrait's
   still crop's, averaged (:mod:`.identity`): ``F-SIM`` with local face-recognition weights, else ``F-SIM (id net)``
   with the identity embedding trained here; rows with ``@emotion=video`` add the similarity to the reference video's
   person (``F-SIM ref. person``; DICE-Talk's emotion transfer should keep the portrait's identity, not take theirs).

Rows (:class:`FrameRow`, spelled ``NAME=MOTION+RENDERER``): MOTION is ``ground-truth``, a registered motion
generator (``dreamtalk``, ``fd2talk``, ...) with its shipped weights, or a checkpoint folder; the generator gets the
clip's audio and stored features and the clip's portrait (its cached fit), with the style it asks ``evaluate`` for
(DreamTalk: the clip's own motion as the style reference, as in DreamTalk's evaluation; FD2Talk and Dimitra: none),
and its head pose is placed on the portrait and its expression composed with the portrait's as the pipeline does
(:func:`talkinghead.pipeline.placed_motion`). RENDERER is ``warp`` (the corpus's own renderer: the portrait's
:class:`~talkinghead.data.video.build.PortraitRenderer` and a crop following the face, so ``ground-truth+warp``
reproduces the dataset frames up to H.264 coding), ``fd2talk`` (the shipped frame generator) or a frame-generator
folder (each crop generated from the portrait's still crop and the frame's coefficients), ``dataset`` (the
ground-truth row: the dataset's own frames) or ``static`` (the still crop repeated).

Self-reenactment (:func:`self_reenactment`): held-back clips of a real-video dataset, each driven by its own tracked
motion from its first frame; PSNR, SSIM and the Frechet column against the real frames 1..T-1.

Deviations from the paper: everything is in crop space (the dataset's face crops, ``S`` pixels, same length as the
ground-truth clip); the sync judges are trained here on the synthetic corpus (weights/judges), not the pretrained
SyncNet, so compare their numbers within this project only; without Inception weights the image-distribution column
is the named substitute above; diversity is measured on the motion coefficients, not Hopenet embeddings of frames.
"""

from __future__ import annotations

import functools
import json
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from talkinghead.config import NON_NEGATIVE
from talkinghead.data.video.format import VideoClip, VideoDataset
from talkinghead.errors import TalkingHeadError
from talkinghead.evaluation.identity import F_SIM, F_SIM_TRAINED, IdentityNetwork, f_sim, load_identity_network
from talkinghead.io.files import atomic_path
from talkinghead.log import log_event, progress
from talkinghead.sequence import MotionSequence

GROUND_TRUTH = "ground-truth"
_GT_ALIASES = (GROUND_TRUTH, "gt", "ground_truth")
#: the renderer keywords of a row (besides a frame-generator folder)
RENDERERS = ("warp", "fd2talk", "dataset", "static", "self")
DEFAULT_ROWS = ("Ground truth=dataset", "Static=static", "DreamTalk + warp=dreamtalk+warp",
                "FD2Talk (DiTs + UNet)=fd2talk+fd2talk")
FACE_NET_FD = "FD (face net)"
HELD_ROW = "First frame (held)"
SYNC_WINDOW = 5
ROW_HELP = ("NAME=MOTION+RENDERER (MOTION: ground-truth, a motion generator's name or checkpoint folder; RENDERER: "
            "warp, fd2talk, a frame-generator folder, dataset or static; NAME=dataset and NAME=static alone also do; "
            "NAME=VIDEO+self for a video generator's name or folder, which makes its frames itself; a video row may "
            "end in @speed=DEG_PER_FRAME, @steps=N and/or @emotion=clip|video)")
#: the request fields a video generator's row may set (``@name=value``), with their types
ROW_OPTIONS: dict[str, type] = {"speed": float, "steps": int, "emotion": str}
#: ``@emotion=``: the clip's own emotion and intensity as a prompt, or a same-emotion clip of another identity as the
#: reference (DICE-Talk Table 1's "emotion by prompt" and "emotion by video")
EMOTION_SOURCES = ("clip", "video")


# --------------------------------------------------------------------------------------------------- rows

@dataclass(frozen=True)
class FrameRow:
    """One row: ``motion`` (``ground-truth``, a registered motion generator's name, a checkpoint folder or a loaded
    motion generator; None for ``static``) and ``renderer`` (one of :data:`RENDERERS`, a frame-generator folder or a
    loaded :class:`~talkinghead.render.fd2talk.renderer.FD2TalkFrameRenderer`)."""

    name: str
    motion: Any = GROUND_TRUTH
    renderer: Any = "warp"
    options: tuple[tuple[str, Any], ...] = ()


def parse_row(spec: str) -> FrameRow:
    """``NAME=MOTION+RENDERER`` (or ``NAME=dataset`` / ``NAME=static``) -> a checked :class:`FrameRow`."""
    name, eq, body = (part.strip() for part in spec.partition("="))
    body, *given = (part.strip() for part in body.split("@"))
    options = tuple(_row_option(spec, option) for option in given)
    motion: str | None
    if "+" in body:
        motion, _, renderer = (part.strip() for part in body.rpartition("+"))
    else:
        motion, renderer = (GROUND_TRUTH if body == "dataset" else None), body
    if not eq or not name or motion == "" or (motion is None and renderer != "static"):
        raise TalkingHeadError(f"The row '{spec}' should be {ROW_HELP}.")
    return check_row(FrameRow(name, motion, renderer, options))


def _row_option(spec: str, option: str) -> tuple[str, Any]:
    key, eq, value = (part.strip() for part in option.partition("="))
    kind = ROW_OPTIONS.get(key)
    if key == "emotion":
        if value not in EMOTION_SOURCES:
            raise TalkingHeadError(f"The row '{spec}' has the option '@{option}'; @emotion= takes "
                                   f"{' or '.join(EMOTION_SOURCES)}.")
        return key, value
    try:
        parsed = kind(value) if kind is not None and eq else None
    except ValueError:
        parsed = None
    if parsed is None or NON_NEGATIVE.problem(parsed) is not None:
        numbers = [k for k, t in ROW_OPTIONS.items() if t is not str]
        raise TalkingHeadError(f"The row '{spec}' has the option '@{option}'; a row takes "
                               f"{' or '.join('@' + k + '=N' for k in numbers)} with N a non-negative number, or "
                               f"@emotion={'|'.join(EMOTION_SOURCES)}.")
    return key, parsed


def check_row(row: FrameRow) -> FrameRow:
    """The row with its motion and renderer checked (names known, folders present); nothing is loaded."""
    from talkinghead.generators import entry

    motion, renderer = row.motion, row.renderer
    if isinstance(renderer, str) and renderer not in RENDERERS and not Path(renderer).is_dir():
        raise TalkingHeadError(f"Row '{row.name}': '{renderer}' is no renderer; use warp, fd2talk, a frame-generator "
                               "folder, dataset, static or self.")
    if renderer == "static":
        if motion not in (None, GROUND_TRUTH):
            raise TalkingHeadError(f"Row '{row.name}': a static row shows the still portrait and takes no motion "
                                   "(write NAME=static).")
        return replace(row, motion=None)
    if isinstance(motion, str):
        if motion.lower() in _GT_ALIASES:
            motion = GROUND_TRUTH
        elif "/" in motion or motion.startswith("."):
            if not Path(motion).is_dir():
                raise TalkingHeadError(f"Row '{row.name}': the checkpoint folder {motion} does not exist.")
        else:  # one sentence when no generator of the row's kind has that name
            entry(motion, ("video",) if renderer == "self" else ("motion",))
    elif motion is None:
        raise TalkingHeadError(f"Row '{row.name}' needs a motion source.")
    if row.options and renderer != "self":
        raise TalkingHeadError(f"Row '{row.name}': only a video generator's row (VIDEO+self) takes @ options.")
    if renderer == "self" and motion == GROUND_TRUTH:
        raise TalkingHeadError(f"Row '{row.name}': 'self' is for a video generator, which makes its own frames.")
    if renderer == "dataset" and motion != GROUND_TRUTH:
        raise TalkingHeadError(f"Row '{row.name}': only the ground truth has the dataset's frames.")
    return replace(row, motion=motion)


def parse_rows(specs: Sequence[str | FrameRow]) -> list[FrameRow]:
    """Rows from specs (strings are parsed, rows checked); names must differ."""
    rows = [parse_row(s) if isinstance(s, str) else check_row(s) for s in specs]
    if not rows:
        raise TalkingHeadError("Nothing to evaluate: give at least one row.")
    names = [r.name for r in rows]
    if len(set(names)) != len(names):
        raise TalkingHeadError("Two rows have the same name.")
    return rows


# -------------------------------------------------------------------------------------------- features

@dataclass(frozen=True)
class FeatureNetwork:
    """The image-distribution column: its ``name``, a ``note`` on what it is, and ``encode(frames [N, S, S, 3]
    uint8) -> [N, D]``."""

    name: str
    note: str
    encode: Callable[[np.ndarray], np.ndarray]

    def distance(self, frames: np.ndarray, reference: np.ndarray) -> float:
        """Frechet distance between the features of two frame sets (``[N, S, S, 3]`` uint8 each, N >= 2)."""
        from talkinghead.evaluation.frechet import frechet_distance_from_features

        return frechet_distance_from_features(self.encode(frames), self.encode(reference))


def pooled_features(net: Any, frames: np.ndarray, batch: int = 32) -> np.ndarray:
    """Globally pooled last-stage features ``[N, C]`` of a perceptual network for ``frames [N, S, S, 3]`` uint8:
    the fifth stage of :class:`FacePerceptualNet` (the one its training heads read), VGG16's relu5_3."""
    import torch

    from talkinghead.render.fd2talk.perceptual import FacePerceptualNet, images_to_tensor

    out = []
    with torch.no_grad():
        for start in range(0, len(frames), batch):
            h = images_to_tensor(np.ascontiguousarray(frames[start:start + batch]))
            pooled = net.pooled(h) if isinstance(net, FacePerceptualNet) else net(h)[-1].mean(dim=(2, 3))
            out.append(pooled.float().numpy())
    return np.concatenate(out)


def load_feature_network(perceptual: Any = None, inception: str | Path | None = None) -> FeatureNetwork | None:
    """FID's Inception-v3 from ``inception`` (a folder), else the perceptual network ``perceptual`` (a folder or a
    loaded network; default the trained ``weights/fd2talk/perceptual`` when present); None when there is neither."""
    if inception is not None:
        from talkinghead.evaluation.inception import load_inception

        net = load_inception(inception)
        return FeatureNetwork("FID", f"FID: Frechet distance of the FID Inception-v3 pool_3 features ({inception}) of "
                                     f"the crops resized to {net.config.image_size} px; with fewer frames than "
                                     f"{net.feature_dim} features it is biased upwards: compare rows, not papers.",
                              lambda frames: net.features(frames))
    if perceptual is None:
        from talkinghead.generators import weights_root

        shipped = weights_root() / "fd2talk" / "perceptual"
        if not (shipped / "config.json").is_file():
            return None
        perceptual = shipped
    where = "given in memory"
    if isinstance(perceptual, str | Path):
        from talkinghead.render.fd2talk.perceptual import load_perceptual

        where, perceptual = str(perceptual), load_perceptual(perceptual)
    from talkinghead.render.fd2talk.perceptual import FacePerceptualNet

    net = perceptual.eval()
    face = isinstance(net, FacePerceptualNet)
    name = FACE_NET_FD if face else "FD (VGG16)"
    what = ("the perceptual network trained here (FacePerceptualNet, fifth stage)" if face
            else "VGG16 (relu5_3)")
    return FeatureNetwork(name, f"{name}: Frechet distance over the globally pooled last-stage features of {what}, "
                                f"{where}; not FID: compare rows, not papers.",
                          lambda frames: pooled_features(net, frames))


# ----------------------------------------------------------------------------------------------- judges

def load_sync_judges(given: Mapping[str, Any] | None = None) -> tuple[dict[str, Any], list[str]]:
    """The motion and video sync judges (``{"motion": SyncNet, "video": SyncNet}``, those at hand) and notes on them.
    ``given`` maps a domain to a folder or a loaded judge; a domain not given gets the shipped
    ``weights/judges/syncnet_<domain>`` when present (its columns are left out otherwise)."""
    from talkinghead.checkpoint import read_checkpoint_info
    from talkinghead.evaluation.syncnet import SyncNet
    from talkinghead.generators import weights_root

    judges: dict[str, Any] = {}
    notes: list[str] = []
    for domain in ("motion", "video"):
        judge = (given or {}).get(domain)
        path = Path(judge) if isinstance(judge, str | Path) else weights_root() / "judges" / f"syncnet_{domain}"
        if judge is None and not path.is_dir():
            continue
        if judge is None or isinstance(judge, str | Path):
            if not path.is_dir():
                raise TalkingHeadError(f"The {domain} sync judge folder {path} does not exist.")
            judge = SyncNet.from_pretrained(path)
            report = read_checkpoint_info(path).extra.get("report", {})
            acc = report.get("eval_in_sync_accuracy")
            notes.append(f"{domain.capitalize()} sync judge: {path}" + ("" if acc is None else
                         f" (offset detection on split '{report.get('eval_split')}': {acc:.3f} in sync, "
                         f"{report.get('eval_shifted_accuracy', float('nan')):.3f} with the audio shifted)") + ".")
        if judge.config.domain != domain:
            raise TalkingHeadError(f"The {domain} sync judge given is a {judge.config.domain}-domain judge.")
        judges[domain] = judge
    return judges, notes


# ------------------------------------------------------------------------------------------- the clips

def cut_clip(clip: VideoClip, frames: int | None, sample_rate: int = 16_000) -> VideoClip:
    """The clip's first ``frames`` frames (labels, audio, features, phones and drive motion); None: all."""
    if frames is None or frames >= len(clip):
        return clip
    seconds = frames / clip.motion.fps
    return replace(clip, motion=clip.motion.slice(0, frames), box=clip.box[:frames], speed=clip.speed[:frames],
                   crop=clip.crop[:frames], audio=clip.audio[:int(round(seconds * sample_rate))],
                   features={k: v[:frames] for k, v in clip.features.items()},
                   phones=[p for p in clip.phones if p.start < seconds],
                   arrays={k: v[:frames] if k.startswith("drive_") else v for k, v in clip.arrays.items()})


def dataset_portraits(data: VideoDataset, portrait_ids: Sequence[str]) -> dict[str, Any]:
    """The dataset's portraits ``{id: FittedPortrait}``, from the fits cached in ``<root>/portraits`` (fitted again
    only when the photo changed)."""
    from talkinghead.data.video.portraits import PortraitSource, fit_portraits

    known = data.info.extra.get("portraits") or {}
    sources = []
    for pid in sorted(set(portrait_ids)):
        if pid not in known:
            raise TalkingHeadError(f"The video dataset {data.root} names no photo for portrait '{pid}'; frame "
                                   "generators are evaluated on a rendered corpus (talkinghead video-corpus).")
        file = str(known[pid]["file"])
        path = None if file.startswith("skimage:") else Path(file)
        if path is not None and not path.is_file():
            raise TalkingHeadError(f"The photo {path} of portrait '{pid}' is missing (the dataset moved without it).")
        sources.append(PortraitSource(pid, str(known[pid].get("identity", pid)), path))
    cache = data.root / "portraits"
    fitted, failed = fit_portraits(sources, cache if cache.is_dir() else None)
    if failed:
        pid, why = next(iter(failed.items()))
        raise TalkingHeadError(f"Portrait '{pid}' could not be fitted ({why}).")
    return {f.source.id: f for f in fitted}


def _held(x: np.ndarray, n: int) -> np.ndarray:
    """``x [T', ...]`` cut or extended (the last row held) to ``n`` rows."""
    x = np.asarray(x, np.float32)[:n]
    return np.concatenate([x, np.repeat(x[-1:], n - len(x), 0)]) if len(x) < n else x


def _style_reference(clip: VideoClip) -> MotionSequence:
    """The clip's motion as a style reference: the drive motion it was rendered from (as a generator makes it)
    when stored, else its own; cut to the frames that have every audio feature."""
    from talkinghead.face.model import ARKIT_LAYOUT

    m = clip.motion
    if "drive_expression" in clip.arrays and "drive_pose" in clip.arrays:
        m = MotionSequence(clip.arrays["drive_expression"], clip.arrays["drive_pose"], ARKIT_LAYOUT, m.fps,
                           m.identity, "drive")
    usable = min(len(m), *(len(v) for v in clip.features.values())) if clip.features else len(m)
    return m.slice(0, usable)


def generated_motion(generator: Any, clip: VideoClip, portrait: Any, seed: int = 0) -> MotionSequence:
    """A motion generator's motion for the clip's audio on ``portrait`` (:class:`talkinghead.generators.Portrait`),
    as it is shown: expression ``[T, E]`` composed with the portrait's, pose ``[T, 6]`` placed on the portrait's
    (pipeline stage 4), in the face model's layout, ``T`` = the clip's length (the last frame held)."""
    from talkinghead.face.model import ARKIT_LAYOUT, compose_expression
    from talkinghead.generators import Conditions, StyleRequest
    from talkinghead.pipeline import placed_motion
    from talkinghead.sequence import expression_for_layout

    reference = getattr(generator, "evaluation_style", "reference") == "reference"
    style = StyleRequest(reference=_style_reference(clip)) if reference else StyleRequest()
    made = generator.generate(Conditions.from_clip(clip, style, portrait, seed))
    placed = placed_motion(made, portrait, 1.0)
    expression = compose_expression(portrait.expression, expression_for_layout(placed, ARKIT_LAYOUT))
    n = len(clip)
    return MotionSequence(_held(expression, n), _held(placed.pose, n), ARKIT_LAYOUT, clip.motion.fps,
                          portrait.identity, made.source or str(generator.name))


# ------------------------------------------------------------------------------------------- rendering

def warp_frames(scene: Any, motion: MotionSequence, crops: np.ndarray | None, follow: float) -> np.ndarray:
    """Frames ``[T, S, S, 3]`` as the corpus renders them: ``motion`` (absolute, on the portrait) projected, the
    crop ``crops [T, 3]`` (image px; None: following the face, :func:`~talkinghead.data.video.frames.follow_crop`)
    cut at whole pixels from ``scene`` (the portrait's :class:`~talkinghead.data.video.build.PortraitRenderer`)."""
    from talkinghead.data.video.frames import face_boxes, follow_crop
    from talkinghead.face.model import ARKIT_LAYOUT, project
    from talkinghead.sequence import expression_for_layout

    expression = expression_for_layout(motion, ARKIT_LAYOUT)
    vertices = np.asarray(project(scene.portrait.identity, expression, motion.pose), np.float64)
    if crops is None:
        crops = follow_crop(face_boxes(vertices), scene.side, motion.fps, follow)
    offsets, _ = scene.place(np.asarray(crops, np.float64))
    return np.stack(list(scene.frames(vertices, offsets)))


def _resized(frames: Any, size: int) -> np.ndarray:
    import cv2

    out: list[np.ndarray] = [np.asarray(f, np.uint8) for f in frames]
    if out and out[0].shape[0] != size:
        shrink = out[0].shape[0] > size
        out = [cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC) for f in out]
    return np.stack(out)


def fd2talk_frames(renderer: Any, reference_crop: np.ndarray, motion: MotionSequence, size: int) -> np.ndarray:
    """Crops ``[T, size, size, 3]`` of FD2Talk's frame generator for an absolute ``motion`` given the reference crop
    ``[s, s, 3]`` (resized to the UNet's size and back when they differ)."""
    reference = _resized([reference_crop], renderer.image_size)[0]
    return _resized(renderer.generate_crops(reference, renderer.coefficients(motion)), size)


def video_frames(generator: Any, clip: VideoClip, portrait: Any, size: int, seed: int = 0,
                 options: Mapping[str, Any] | None = None, style: Any = None) -> np.ndarray:
    """A video generator's face crops ``[T, size, size, 3]`` for the clip's audio (and stored features) on
    ``portrait`` (its still photo), ``style`` asked (a :class:`~talkinghead.generators.StyleRequest`; None: none),
    ``options`` set on the request (:data:`ROW_OPTIONS` but ``emotion``), ``T`` the clip's length (the last frame
    held)."""
    from talkinghead.generators import Conditions, StyleRequest

    fields = {k: v for k, v in (options or {}).items() if k != "emotion"}
    conditions = replace(Conditions.from_clip(clip, style or StyleRequest(), portrait, seed), **fields)
    made = _resized(generator.crops(conditions, size), size)
    return _held(made, len(clip)).astype(np.uint8)


def tracked_motion(frames: np.ndarray, fps: float) -> MotionSequence | None:
    """The motion of frames ``[T, S, S, 3]`` with no known motion (face mesh + face-model fit); None when no face is
    found."""
    from talkinghead.face.track import track_frames

    try:
        return track_frames(frames, fps, min_face_size=8)
    except TalkingHeadError:
        return None


def load_frame_renderer(spec: Any, crop_scale: float) -> Any:
    """``fd2talk`` (shipped), a folder or a loaded frame generator, checked against the dataset's crop scale."""
    from talkinghead.render.fd2talk.renderer import FD2TalkFrameRenderer

    renderer = spec
    if isinstance(spec, str | Path):
        renderer = FD2TalkFrameRenderer.from_pretrained(None if spec == "fd2talk" else spec)
    if not math.isclose(float(renderer.crop_scale), crop_scale, rel_tol=1e-3):
        raise TalkingHeadError(f"The frame generator makes crops of {renderer.crop_scale:g} face sizes; the dataset's "
                               f"are {crop_scale:g}, so their frames cannot be compared.")
    return renderer


# --------------------------------------------------------------------------------------------- metrics

@dataclass
class _Tally:
    """One row's per-clip measurements, summed up by :meth:`result`."""

    sync: list[Any] = field(default_factory=list)
    video_sync: list[Any] = field(default_factory=list)
    untracked: int = 0
    untracked_motion: int = 0
    motions: list[MotionSequence] = field(default_factory=list)
    beats: list[float] = field(default_factory=list)
    psnr: list[np.ndarray] = field(default_factory=list)
    ssim: list[np.ndarray] = field(default_factory=list)
    features: list[np.ndarray] = field(default_factory=list)
    emotion_motions: list[MotionSequence] = field(default_factory=list)   # tracked, for the emotion judge
    emotion_targets: list[str] = field(default_factory=list)              # the emotion each clip should show
    identity: list[np.ndarray] = field(default_factory=list)              # per-frame F-SIM to the portrait
    identity_partner: list[np.ndarray] = field(default_factory=list)      # per-frame F-SIM to the reference person
    untracked_emotion: int = 0
    frames: int = 0
    seconds: float = 0.0

    def add_motion(self, clip: VideoClip, motion: MotionSequence, judge: Any) -> None:
        from talkinghead.evaluation.motion import audio_beats, beat_align_score, motion_beats

        if judge is not None and len(motion) >= judge.config.window:
            self.sync.append(judge.score_motion(clip.audio, motion))
        self.motions.append(motion)
        beats = audio_beats(clip.audio, fps=motion.fps, num_frames=len(motion))
        if len(beats):
            self.beats.append(beat_align_score(beats, motion_beats(motion)))

    def add_frames(self, clip: VideoClip, frames: np.ndarray, truth: np.ndarray | None, judge: Any,
                   net: FeatureNetwork | None, tracked: MotionSequence | None) -> None:
        """``frames, truth [T, S, S, 3]``; ``truth`` None for the reference row itself (no image columns);
        ``tracked``: the frames' tracked motion (None: no face found)."""
        from talkinghead.evaluation.evaluate import tracked_mouth_crops
        from talkinghead.evaluation.image import psnr_per_frame, ssim_per_frame

        self.frames += len(frames)
        if judge is not None:
            crops = None if tracked is None else tracked_mouth_crops(frames, judge.config, clip.motion.fps, tracked)
            if crops is None or len(crops) < judge.config.window:
                self.untracked += 1
            else:
                self.video_sync.append(judge.score(clip.audio, crops))
        if truth is not None:
            self.psnr.append(psnr_per_frame(frames, truth))
            self.ssim.append(ssim_per_frame(frames, truth))
            if net is not None:
                self.features.append(net.encode(frames))

    def add_identity(self, frames: np.ndarray, portrait: np.ndarray, partner: np.ndarray | None = None) -> None:
        """F-SIM of the frames' unit embeddings ``[T, D]`` to the portrait's still crop's ``[1, D]`` (and to those of
        the reference video's frames, ``partner [K, D]``, when given)."""
        self.identity.append(f_sim(frames, portrait))
        if partner is not None:
            self.identity_partner.append(f_sim(frames, partner))

    def add_emotion(self, emotion: str, tracked: MotionSequence | None) -> None:
        """The clip's target ``emotion`` and its frames' tracked motion (None: no face found, not judged)."""
        if tracked is None or len(tracked) < 2:
            self.untracked_emotion += 1
            return
        self.emotion_motions.append(tracked)
        self.emotion_targets.append(emotion)

    def result(self, net: FeatureNetwork | None, reference: np.ndarray | None,
               emotion_judge: Any = None, identity: IdentityNetwork | None = None) -> dict[str, float]:
        """The row's columns (only those measured)."""
        from talkinghead.evaluation.frechet import frechet_distance_from_features
        from talkinghead.evaluation.motion import head_motion_diversity, velocity_statistics
        from talkinghead.evaluation.syncnet import summarize

        out: dict[str, float] = {}
        for scores, suffix in ((self.sync, ""), (self.video_sync, " (video)")):
            if scores:
                s = summarize(scores)
                out.update({f"LSE-C{suffix}": s.lse_c, f"LSE-D{suffix}": s.lse_d})
        if self.motions:
            out["Diversity"] = head_motion_diversity(self.motions)
            speed = velocity_statistics(self.motions)
            out.update({"Mean velocity": speed.mean_velocity, "Velocity variance": speed.velocity_variance,
                        "VMV": speed.vmv})
        if self.beats:
            out["Beat Align"] = float(np.mean(self.beats))
        if self.psnr:
            out["PSNR"] = float(np.mean(np.concatenate(self.psnr)))
            out["SSIM"] = float(np.mean(np.concatenate(self.ssim)))
        if net is not None and self.features and reference is not None:
            out[net.name] = frechet_distance_from_features(np.concatenate(self.features), reference)
        if identity is not None and self.identity:
            out[identity.name] = float(np.mean(np.concatenate(self.identity)))
            if self.identity_partner:
                out[partner_column(identity.name)] = float(np.mean(np.concatenate(self.identity_partner)))
        if emotion_judge is not None and self.emotion_motions:
            from talkinghead.evaluation.emotion import emotion_accuracy

            known = [k for k, e in enumerate(self.emotion_targets) if e in emotion_judge.config.classes]
            if known:
                score = emotion_accuracy(emotion_judge, [self.emotion_motions[k] for k in known],
                                         [self.emotion_targets[k] for k in known])
                out.update({"Emo-Score": score.emo_score, "Neutral": score.neutral, "Non-neutral": score.non_neutral,
                            "Emotion acc.": score.accuracy})
        return out


LOWER_BETTER = ("LSE-D", "LSE-D (video)", "FID", FACE_NET_FD, "FD (VGG16)")
HIGHER_BETTER = ("LSE-C", "LSE-C (video)", "Diversity", "Beat Align", "PSNR", "SSIM", "Emo-Score", "Neutral",
                 "Non-neutral", "Emotion acc.")
COLUMNS = ("LSE-C", "LSE-D", "LSE-C (video)", "LSE-D (video)", "Diversity", "Beat Align", "Mean velocity",
           "Velocity variance", "VMV", "FID", FACE_NET_FD, "FD (VGG16)", "PSNR", "SSIM", F_SIM, F_SIM_TRAINED,
           "F-SIM ref. person", "F-SIM ref. person (id net)", "Emo-Score", "Neutral", "Non-neutral", "Emotion acc.")


def partner_column(name: str) -> str:
    """The column of the similarity to an @emotion=video row's reference person, for the F-SIM column ``name``."""
    return name.replace("F-SIM", "F-SIM ref. person")


# ---------------------------------------------------------------------------------------------- report

@dataclass
class FrameTable:
    """One table: ``results[row][column]`` (a column a row was not measured on is absent), its ``columns`` in order,
    the clip and frame counts (per row), ``notes`` and each row's seconds."""

    title: str
    columns: list[str]
    results: dict[str, dict[str, float]]
    clips: int
    frames: int
    notes: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass
class FramesReport:
    """What :func:`evaluate_frames` measured: the tables, the notes, the wall time."""

    dataset: str
    split: str
    tables: list[FrameTable]
    notes: list[str]
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "split": self.split, "seconds": round(self.seconds, 1), "notes": self.notes,
                "tables": [{"title": t.title, "columns": t.columns, "clips": t.clips, "frames_per_row": t.frames,
                            "rows": {r: {c: _finite(v.get(c)) for c in t.columns} for r, v in t.results.items()},
                            "row_seconds": {r: round(s, 2) for r, s in t.seconds.items()}, "notes": t.notes}
                           for t in self.tables]}


def _finite(v: float | None) -> float | None:
    return None if v is None or not math.isfinite(v) else float(v)


def _header(column: str) -> str:
    return f"{column} ↓" if column in LOWER_BETTER else f"{column} ↑" if column in HIGHER_BETTER else column


def cell(v: float | None) -> str:
    """A number to 3 significant digits (no exponent; whole numbers from 1000 on); "–" when not measured."""
    if v is None or math.isnan(v):
        return "–"
    if math.isinf(v):
        return "∞" if v > 0 else "-∞"
    if v == 0:
        return "0"
    digits = max(0, 2 - math.floor(math.log10(abs(v))))
    return f"{v:.{digits}f}"


def markdown(report: FramesReport) -> str:
    """The report as markdown: one table per :class:`FrameTable` (rows = methods), then the notes."""
    lines = [f"# Frame generators: {report.dataset}, split {report.split}", "", f"Made in {report.seconds:.0f} s.", ""]
    for t in report.tables:
        lines += [f"## {t.title}", "", f"{t.clips} clips, {t.frames} frames per row.", "",
                  "| Method | " + " | ".join(_header(c) for c in t.columns) + " |", "|---|" + "---|" * len(t.columns)]
        lines += [f"| {row} | " + " | ".join(cell(v.get(c)) for c in t.columns) + " |" for row, v in t.results.items()]
        lines.append("")
    notes = report.notes + [n for t in report.tables for n in t.notes]
    if notes:
        lines += ["## Notes", ""] + [f"- {n}" for n in notes] + [""]
    return "\n".join(lines)


def write_frames_report(report: FramesReport, out: str | Path) -> tuple[Path, Path]:
    """``out/report.json`` and ``out/report.md``, each written atomically."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / "report.json") as tmp:
        tmp.write_text(json.dumps(report.to_dict(), indent=2, allow_nan=False) + "\n")
    with atomic_path(folder / "report.md") as tmp:
        tmp.write_text(markdown(report))
    return folder / "report.json", folder / "report.md"


def _table(title: str, tallies: Mapping[str, _Tally], net: FeatureNetwork | None, reference: list[np.ndarray],
           clips: int, notes: list[str], emotion_judge: Any = None, identity: IdentityNetwork | None = None
           ) -> FrameTable:
    ref = np.concatenate(reference) if net is not None and reference else None
    results = {name: t.result(net, ref, emotion_judge, identity) for name, t in tallies.items()}
    columns = [c for c in COLUMNS if any(r.get(c) is not None for r in results.values())]
    frames = max((t.frames for t in tallies.values()), default=0)
    untracked = {n: t.untracked for n, t in tallies.items() if t.untracked}
    if untracked:
        notes = notes + ["No face was tracked (video sync left out) in " + ", ".join(
            f"{k} clip(s) of '{n}'" for n, k in untracked.items()) + "."]
    lost = {n: t.untracked_motion for n, t in tallies.items() if t.untracked_motion}
    if lost:
        notes = notes + ["No face was tracked, so no motion columns, in " + ", ".join(
            f"{k} clip(s) of '{n}'" for n, k in lost.items()) + "."]
    unjudged = {n: t.untracked_emotion for n, t in tallies.items() if t.untracked_emotion}
    if unjudged:
        notes = notes + ["No face was tracked, so no emotion judged, in " + ", ".join(
            f"{k} clip(s) of '{n}'" for n, k in unjudged.items()) + "."]
    return FrameTable(title, columns, results, clips, frames, notes, {n: t.seconds for n, t in tallies.items()})


# --------------------------------------------------------------------------------------------- the table

@dataclass
class _LoadedRow:
    row: FrameRow
    generator: Any = None     # None: the clip's own motion (or none: static); a video generator for ``self``
    renderer: Any = None      # FD2Talk's frame generator for a frame-generator row
    tally: _Tally = field(default_factory=_Tally)

    @property
    def kind(self) -> str:
        """``dataset``, ``static``, ``warp``, ``self`` (a video generator) or ``fd2talk`` (a frame generator)."""
        return str(self.row.renderer) if self.row.renderer in ("dataset", "static", "warp", "self") else "fd2talk"


def _load_row(row: FrameRow, crop_scale: float, cache: dict[tuple[str, str], Any]) -> _LoadedRow:
    """The row's motion generator and frame generator, each loaded once per spelling (``cache``)."""
    from talkinghead.generators import load_generator

    def load(kind: str, spec: Any, make: Callable[[Any], Any]) -> Any:
        if not isinstance(spec, str | Path):
            return make(spec)
        if (kind, str(spec)) not in cache:
            cache[kind, str(spec)] = make(spec)
        return cache[kind, str(spec)]

    try:
        generator = None
        if row.motion not in (None, GROUND_TRUTH):
            generator = load("motion", row.motion, lambda spec: spec if not isinstance(spec, str | Path) else
                             load_generator(spec) if Path(spec).is_dir() else load_generator(name=str(spec)))
            kind = getattr(generator, "kind", "motion")
            if row.renderer == "self" and kind != "video":
                raise TalkingHeadError(f"{generator.name} makes motion, not frames; give it a renderer.")
            if kind == "video" and not math.isclose(float(generator.crop_scale), crop_scale, rel_tol=1e-3):
                raise TalkingHeadError(f"{generator.name} makes crops of {generator.crop_scale:g} face sizes; the "
                                       f"dataset's are {crop_scale:g}, so their frames cannot be compared.")
            if row.renderer != "self" and kind != "motion":
                raise TalkingHeadError(f"{generator.name} makes frames itself, so it has no motion to render "
                                       "(write NAME=VIDEO+self).")
        renderer = None
        if row.renderer not in ("warp", "dataset", "static", "self"):
            renderer = load("renderer", row.renderer, lambda spec: load_frame_renderer(spec, crop_scale))
    except TalkingHeadError as err:
        raise TalkingHeadError(f"Row '{row.name}': {err}") from err
    return _LoadedRow(row, generator, renderer)


def _audio_clips(data: VideoDataset, split: str) -> list[str]:
    ids = [i for i in data.ids(split) if data.meta(i).has_audio]
    if not ids:
        raise TalkingHeadError(f"The video dataset {data.root} has no clips with audio in split '{split}'.")
    return ids


def _check_counts(max_clips: int | None, max_frames: int | None) -> None:
    if max_clips is not None and max_clips < 1:
        raise TalkingHeadError("Evaluate at least one clip (--max-clips 1 or more).")
    if max_frames is not None and max_frames < SYNC_WINDOW:
        raise TalkingHeadError(f"Evaluate at least {SYNC_WINDOW} frames a clip (the sync judges' window).")


class _Scenes:
    """The dataset's portraits as the corpus renders them (a :class:`PortraitRenderer` each, at the crop size and
    scale) and the frame generators' still reference crops, each made once."""

    def __init__(self, portraits: dict[str, Any], size: int, crop_scale: float) -> None:
        self.portraits = portraits
        self.size = size
        self.crop_scale = crop_scale
        self._scenes: dict[str, Any] = {}
        self._stills: dict[tuple[int, str], np.ndarray] = {}

    def portrait(self, pid: str) -> Any:
        """The portrait as a generator takes it (:class:`talkinghead.generators.Portrait`)."""
        from talkinghead.generators import Portrait

        f = self.portraits[pid]
        return Portrait(f.image, f.identity, f.expression, f.pose)

    def scene(self, pid: str) -> Any:
        from talkinghead.data.video.build import PortraitRenderer

        if pid not in self._scenes:
            self._scenes[pid] = PortraitRenderer(self.portraits[pid], self.size, self.crop_scale)
        return self._scenes[pid]

    def still(self, renderer: Any, pid: str) -> np.ndarray:
        """The portrait's still crop at the frame generator's size (its reference)."""
        key = (id(renderer), pid)
        if key not in self._stills:
            self._stills[key] = renderer.reference(self.portrait(pid)).still()
        return self._stills[key]


def evaluate_frames(data: str | Path | VideoDataset, rows: Sequence[str | FrameRow] | None, out: str | Path | None, *,
                    split: str = "test", max_clips: int | None = None, max_frames: int | None = None,
                    perceptual: Any = None, inception: str | Path | None = None,
                    sync_judges: Mapping[str, Any] | None = None, seed: int = 0,
                    reenactment: str | Path | VideoDataset | None = None, emotion_judge: Any = None,
                    emotions: Sequence[str] | None = None, face_recognition: str | Path | None = None,
                    identity: bool = True) -> FramesReport:
    """FD2Talk's Table 1 for ``rows`` (None: :data:`DEFAULT_ROWS`) on the clips with audio of ``split`` (the first
    ``max_clips``, each cut to ``max_frames``). Every row's frames are ``[T, S, S, 3]`` uint8 crops at the dataset's
    crop size ``S``, ``T`` the ground-truth clip's length. With ``reenactment`` (a real-video dataset) the table of
    :func:`self_reenactment` on its held-out clips follows (the same ``max_clips`` and ``max_frames``), with warp and
    every FD2Talk frame generator of the rows.
    ``perceptual``/``inception``: see :func:`load_feature_network`; ``sync_judges``: see :func:`load_sync_judges`;
    ``seed``: the motion generators'. ``emotion_judge`` (a saved or loaded
    :func:`~talkinghead.evaluation.video_emotion.train_video_emotion_judge`) adds the Emo-Score columns (each row's
    frames tracked and judged against the clip's emotion); ``emotions`` keeps the clips of those emotions only, taken
    round-robin over them. ``identity`` adds the F-SIM column (:func:`~talkinghead.evaluation.identity.
    load_identity_network`: the weights in the folder ``face_recognition``, else the shipped identity embedding; none
    when neither is at hand). Writes ``out/report.json`` and ``out/report.md`` unless ``out`` is None."""
    from talkinghead.evaluation.video_emotion import emotion_balanced_clips, load_video_emotion_judge

    start = time.perf_counter()
    _check_counts(max_clips, max_frames)
    dataset = data if isinstance(data, VideoDataset) else VideoDataset(data)
    checked = parse_rows(DEFAULT_ROWS if rows is None else rows)
    pool = _audio_clips(dataset, split)
    ids = emotion_balanced_clips(dataset, pool, emotions, max_clips)
    judge = None if emotion_judge is None else load_video_emotion_judge(emotion_judge)
    net = load_feature_network(perceptual, inception)
    judges, judge_notes = load_sync_judges(sync_judges)
    id_net = load_identity_network(face_recognition) if identity or face_recognition is not None else None
    cache: dict[tuple[str, str], Any] = {}
    loaded = [_load_row(r, dataset.info.crop_scale, cache) for r in checked]
    needs_photo = id_net is not None or any(r.kind != "dataset" for r in loaded)
    portraits = dataset_portraits(dataset, [dataset.meta(i).portrait for i in ids]) if needs_photo else {}
    scenes = _Scenes(portraits, dataset.info.size, dataset.info.crop_scale)
    follow = float((dataset.info.extra.get("config") or {}).get("follow", 0.5))
    reference: list[np.ndarray] = []
    from talkinghead.evaluation.video_emotion import emotion_partner

    partner_of = functools.cache(lambda clip_id: emotion_partner(dataset, pool, clip_id))   # @emotion=video's source
    for clip_id in progress(ids, "evaluating frame generators", total=len(ids)):
        clip = cut_clip(dataset.clip(clip_id), max_frames, dataset.info.sample_rate)
        truth = dataset.frames(clip_id, range(len(clip)))
        if net is not None:
            reference.append(net.encode(truth))
        _evaluate_clip(loaded, clip, truth, scenes, judges, net, follow, seed, judge is not None,
                       lambda c, source: _emotion_style(dataset, partner_of, c, source, max_frames), id_net,
                       lambda c: _partner_frames(dataset, partner_of(c.meta.id), max_frames))
    for r in loaded:
        log_event("evaluated frames", row=r.row.name, seconds=round(r.tally.seconds, 1), frames=r.tally.frames)
    notes = _table_notes(net, judges, loaded, judge, id_net) + judge_notes
    tables = [_table("FD2Talk Table 1 layout: lip synchronization, motion diversity, image quality",
                     {r.row.name: r.tally for r in loaded}, net, reference, len(ids), notes, judge, id_net)]
    if reenactment is not None:
        renderers = {"Warp": "warp", **{_renderer_name(r): r.renderer for r in loaded if r.renderer is not None}}
        tables.append(self_reenactment(reenactment, None, renderers, max_clips=max_clips, max_frames=max_frames,
                                       features=net))
    counts = [f"{len(ids)} clips with audio of split '{split}'" + ("" if max_frames is None else
              f", each cut to its first {max_frames} frames") + f"; crops of {dataset.info.size} px."]
    report = FramesReport(str(dataset.root), split, tables, counts, time.perf_counter() - start)
    if out is not None:
        write_frames_report(report, out)
    return report


def _renderer_name(row: _LoadedRow) -> str:
    spec = row.row.renderer
    return "FD2Talk UNet" if spec == "fd2talk" or not isinstance(spec, str | Path) else f"FD2Talk UNet ({spec})"


def _emotion_style(data: VideoDataset, partner_of: Callable[[str], str], clip: VideoClip, source: str,
                   max_frames: int | None) -> Any:
    """The style request of ``@emotion=source``: ``clip``, the clip's emotion and intensity as a prompt; ``video``,
    the motion of a same-emotion clip of another identity (``partner_of(clip id)``, :func:`emotion_partner`) as
    the reference."""
    from talkinghead.generators import StyleRequest

    if source == "clip":
        return StyleRequest(emotion=clip.meta.emotion, intensity=clip.meta.intensity)
    partner = cut_clip(data.clip(partner_of(clip.meta.id), audio=False), max_frames)
    return StyleRequest(reference=partner.motion)


def _partner_frames(data: VideoDataset, partner: str, max_frames: int | None) -> np.ndarray:
    """The frames ``[K, S, S, 3]`` of clip ``partner``, the reference video ``@emotion=video`` takes (its first
    ``max_frames``)."""
    count = data.meta(partner).num_frames if max_frames is None else min(max_frames, data.meta(partner).num_frames)
    return data.frames(partner, range(count))


def _evaluate_clip(rows: Sequence[_LoadedRow], clip: VideoClip, truth: np.ndarray, scenes: _Scenes,
                   judges: dict[str, Any], net: FeatureNetwork | None, follow: float, seed: int,
                   judge_emotion: bool = False, emotion_style: Callable[[VideoClip, str], Any] | None = None,
                   identity: IdentityNetwork | None = None,
                   partner_frames: Callable[[VideoClip], np.ndarray] | None = None) -> None:
    """Every row on one clip: its motion and frames, measured into its tally (and its emotion judged when
    ``judge_emotion``; ``emotion_style`` gives the requests of the rows' ``@emotion=``; ``identity`` measures F-SIM
    to the portrait's still crop, and to ``partner_frames`` (the reference video) for ``@emotion=video`` rows)."""
    made: dict[int, MotionSequence] = {}
    references: dict[str, np.ndarray] = {}   # the clip's portrait and reference-video embeddings, each made once
    for r in rows:
        t0 = time.perf_counter()
        try:
            motion = None if r.row.motion is None or r.kind == "self" else clip.motion
            if r.generator is not None and r.kind != "self":
                if id(r.generator) not in made:
                    portrait = scenes.portrait(clip.meta.portrait)
                    made[id(r.generator)] = generated_motion(r.generator, clip, portrait, seed)
                motion = made[id(r.generator)]
            if r.kind == "self":
                source = dict(r.row.options).get("emotion")
                style = None if source is None or emotion_style is None else emotion_style(clip, source)
                frames = video_frames(r.generator, clip, scenes.portrait(clip.meta.portrait), truth.shape[1], seed,
                                      dict(r.row.options), style)
            else:
                frames = _row_frames(r, clip, motion, truth, scenes, follow)
            # the frames' own face, tracked once: a video generator's motion, the mouth crops of the video judge and
            # the emotion judge's input
            tracked = (tracked_motion(frames, clip.motion.fps)
                       if r.kind == "self" or "video" in judges or judge_emotion else None)
            if r.kind == "self":
                motion = tracked
                r.tally.untracked_motion += motion is None
        except TalkingHeadError as err:
            raise TalkingHeadError(f"Row '{r.row.name}', clip {clip.meta.id}: {err}") from err
        if motion is not None:
            r.tally.add_motion(clip, motion, judges.get("motion"))
        r.tally.add_frames(clip, frames, None if r.kind == "dataset" else truth, judges.get("video"), net, tracked)
        if judge_emotion:
            r.tally.add_emotion(clip.meta.emotion, tracked)
        if identity is not None:
            if "portrait" not in references:
                references["portrait"] = identity.embed(scenes.scene(clip.meta.portrait).still()[None])
            by_video = dict(r.row.options).get("emotion") == "video" and partner_frames is not None
            if by_video and "partner" not in references:
                references["partner"] = identity.embed(partner_frames(clip))  # type: ignore[misc]
            r.tally.add_identity(identity.embed(frames), references["portrait"],
                                 references["partner"] if by_video else None)
        r.tally.seconds += time.perf_counter() - t0


def _row_frames(r: _LoadedRow, clip: VideoClip, motion: MotionSequence | None, truth: np.ndarray, scenes: _Scenes,
                follow: float) -> np.ndarray:
    """The row's frames ``[T, S, S, 3]`` for the clip (the ground truth's motion keeps the dataset's own crops)."""
    pid = clip.meta.portrait
    if r.kind == "dataset":
        return truth
    if r.kind == "static":
        return np.repeat(scenes.scene(pid).still()[None], len(truth), 0)
    assert motion is not None
    if r.kind == "warp":
        return warp_frames(scenes.scene(pid), motion, clip.crop if r.generator is None else None, follow)
    return fd2talk_frames(r.renderer, scenes.still(r.renderer, pid), motion, truth.shape[1])


def _table_notes(net: FeatureNetwork | None, judges: dict[str, Any], rows: Sequence[_LoadedRow],
                 emotion_judge: Any = None, identity: IdentityNetwork | None = None) -> list[str]:
    notes = [
        "Rows: MOTION+RENDERER. A generator's motion is made from the clip's audio and stored features for the "
        "clip's portrait (its style request as in `evaluate`: DreamTalk gets the clip's own drive motion as the "
        "style reference, FD2Talk none), its head pose placed on the portrait and its expression composed with the "
        "portrait's, as the pipeline does; every row has the ground-truth clip's length, in the dataset's crop space.",
        "LSE-C/LSE-D: the motion-domain sync judge on the row's motion (the face model's lip vertices); "
        "LSE-C/LSE-D (video): the video-domain judge on mouth crops placed by tracking the row's frames (the paper's "
        "'SyncNet' column). Both judges are trained here on the synthetic corpus, not the pretrained SyncNet: "
        "compare within this project only. Static rows have no motion, so no motion columns.",
        "Diversity: standard deviation over frames of pitch, yaw and roll (radians), averaged, on the row's motion "
        "(the paper uses Hopenet embeddings of the frames); Beat Align: Beat Align Score of speech onsets against "
        "the minima of head speed (Bailando's sigma of 3 frames). Mean velocity, Velocity variance, VMV: EMO's "
        "Table 2 (head rotation speed in degrees a frame: the mean over clips of each clip's mean, the mean of each "
        "clip's variance, the variance of the clips' means).",
        "PSNR/SSIM: per frame against the dataset's frames (the ground-truth row is their reference, '–' as in "
        "the paper); warp rows reproduce the corpus's renderer, so ground-truth+warp differs from the dataset only "
        "by H.264 coding.",
    ]
    if net is not None:
        notes.append(net.note + " Against the ground-truth frames, over all evaluated frames.")
    else:
        notes.append("No feature network: no FID column (give --inception DIR, or --perceptual DIR for the "
                     "Frechet distance over the perceptual network trained here).")
    if identity is not None:
        notes.append(identity.note + " The reference is the portrait's still crop as the corpus renders it (the "
                     "static row's frames, so that row reads 1). No arrow: EMO reads F-SIM as a population-reference "
                     "index (the closer to the ground truth's, the better; a face that does not move scores high), "
                     "DICE-Talk as higher is better.")
        if any(dict(r.row.options).get("emotion") == "video" for r in rows):
            notes.append(f"{partner_column(identity.name)}: the same similarity to the mean embedding of the "
                         "@emotion=video row's reference video (another person): below the portrait's F-SIM when the "
                         "emotion transfers without that person's identity.")
    if "motion" not in judges or "video" not in judges:
        notes.append("A sync judge is missing (none given, none shipped in weights/judges), so its columns are "
                     "left out.")
    if any(r.kind == "self" for r in rows):
        notes.append("VIDEO+self rows: a video generator's own face crops (not pasted back) from the clip's audio and "
                     "the portrait's photo; their motion columns are measured on the motion tracked from those frames "
                     "(face mesh + face-model fit), so the motion-domain LSE columns judge tracked lips.")
    if emotion_judge is not None:
        notes.append("Emo-Score, Neutral, Non-neutral (DICE-Talk Sec. 4.2): the recall of the clip's emotion over "
                     "DICE-Talk's four (neutral, happy, surprised, angry), their mean, the neutral one and the mean of "
                     "the others; Emotion acc. over every emotion judged. The judge is a video emotion classifier "
                     "trained here on the tracked expression of the video dataset's train clips "
                     f"({', '.join(emotion_judge.config.classes)}), not Ryumina et al.'s network. Rows ending in "
                     "@emotion=clip ask for the clip's emotion and intensity by name (prompt); @emotion=video take it "
                     "from a same-emotion clip of another identity of the split (its motion, as a tracked reference "
                     "video); other rows ask for no emotion.")
    if any(r.renderer is not None for r in rows):
        notes.append("FD2Talk rows: each crop generated by the frame generator from the portrait's still crop "
                     "(reference) and the frame's coefficients (expression + pose).")
    return notes


# ----------------------------------------------------------------------------------------- self-reenactment

def _crop_mesh(clip: VideoClip, size: int) -> np.ndarray:
    """The clip's tracked face ``[T, 468, 2]`` in the pixels of its *first* crop."""
    from talkinghead.face.model import ARKIT_LAYOUT, project
    from talkinghead.sequence import expression_for_layout

    m = clip.motion
    image = np.asarray(project(m.identity, expression_for_layout(m, ARKIT_LAYOUT), m.pose), np.float64)
    x0, y0, side = (float(v) for v in clip.crop[0])
    return (image - np.array([x0, y0])) * size / side


def reenact_warp(frames: np.ndarray, mesh: np.ndarray, crops: np.ndarray) -> Iterator[np.ndarray]:
    """Frames 1..T-1 ``[S, S, 3]`` of a warp of the first frame ``frames[0]`` following ``mesh [T, 468, 2]`` (the
    tracked face in the first crop's pixels), each in its own crop's pixels (``crops [T, 3]``, image px).

    Alignment: the :class:`~talkinghead.render.warp_renderer.WarpRenderer` takes the first crop as its photo, with
    a working crop of ``S`` pixels spanning one face-oval extent times ``S / extent`` (the crop's own pixel size), and
    pastes the warped face back onto that photo, so its output lies on the first crop's pixel grid exactly (where the
    face does not move it is the first frame itself, not resampled). A pixel ``c`` of crop ``t`` is the first crop's
    point ``c k_t + d_t`` (``k_t`` the ratio of the crop sides, ``d_t`` the crops' offset in first-crop pixels); one
    affine resampling places it there (none when the crop did not move)."""
    import cv2

    from talkinghead.render.mesh import face_oval
    from talkinghead.render.warp_renderer import WarpRenderer, WarpRendererConfig

    size = frames.shape[1]
    oval = mesh[0][list(face_oval())]
    extent = float((oval.max(0) - oval.min(0)).max())
    warp = WarpRenderer(frames[0], mesh[0], WarpRendererConfig(size=size, crop_scale=size / extent))
    side0 = float(crops[0, 2])
    for t in range(1, len(frames)):
        frame = warp.render_image(mesh[t])
        k = float(crops[t, 2]) / side0
        d = (np.asarray(crops[t, :2], np.float64) - crops[0, :2]) * size / side0
        if k != 1.0 or np.any(d != 0.0):
            m = np.array([[k, 0.0, d[0]], [0.0, k, d[1]]])
            frame = cv2.warpAffine(frame, m, (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                                   borderMode=cv2.BORDER_REPLICATE)
        yield frame


def self_reenactment(real_data: str | Path | VideoDataset, clip_ids: Sequence[str] | None = None,
                     renderers: Mapping[str, Any] | None = None, *, max_clips: int | None = None,
                     max_frames: int | None = None, perceptual: Any = None, inception: str | Path | None = None,
                     features: FeatureNetwork | None = None) -> FrameTable:
    """Self-reenactment on held-back real clips (default: :func:`talkinghead.render.fd2talk.training.held_out_clips`,
    never trained on): the clip's first frame is the reference, its own tracked motion drives it, frames 1..T-1 are
    compared with the real ones (PSNR, SSIM, the Frechet column of ``features``, else of
    :func:`load_feature_network`). ``renderers``: ``{row name: "warp" | "fd2talk" | folder | loaded frame
    generator}`` (default warp alone); a "First frame (held)" row is the floor. Audio is not needed.

    The first frame is not fitted again (``Portrait.fit``): the clip's own tracked fit at frame 0 is the warp's source
    mesh and the same fit at frame ``t`` its target (:func:`reenact_warp`), so source and target come from one
    identity; a fresh fit of the first crop would give another identity than the one the motion was tracked with.
    FD2Talk's UNet gets the first crop as its reference and the tracked coefficients, as it was trained."""
    _check_counts(max_clips, max_frames)
    real = real_data if isinstance(real_data, VideoDataset) else VideoDataset(real_data)
    if clip_ids is None:
        from talkinghead.render.fd2talk.training import held_out_clips

        clip_ids = held_out_clips(real)
    ids = list(clip_ids)[:max_clips] if max_clips is not None else list(clip_ids)
    if not ids:
        raise TalkingHeadError(f"The real-video dataset {real.root} has no held-out clips (a video cut into at least "
                               "two clips keeps its last one back).")
    net = features if features is not None else load_feature_network(perceptual, inception)
    loaded = {name: spec if spec == "warp" else load_frame_renderer(spec, real.info.crop_scale)
              for name, spec in (renderers or {"Warp": "warp"}).items()}
    tallies = {name: _Tally() for name in (HELD_ROW, *loaded)}
    reference: list[np.ndarray] = []
    for clip_id in progress(ids, "self-reenactment", total=len(ids)):
        clip = cut_clip(real.clip(clip_id, audio=False), max_frames)
        frames = real.frames(clip_id, range(len(clip)))
        if len(frames) < 2:
            raise TalkingHeadError(f"The held-out clip {clip_id} has fewer than two frames.")
        truth = frames[1:]
        if net is not None:
            reference.append(net.encode(truth))
        for name, renderer in (("", None), *loaded.items()):
            t0 = time.perf_counter()
            made = _reenacted(renderer, clip, frames)
            tally = tallies[name or HELD_ROW]
            tally.add_frames(clip, made, truth, None, net, None)
            tally.seconds += time.perf_counter() - t0
    notes = ["Self-reenactment: held-back clips of the real-video dataset "
             f"{real.root} (the last clip of each video, never trained on); the first frame is the reference "
             "(warp: it is warped along the tracked face mesh; FD2Talk: it is the reference crop), the clip's own "
             "tracked motion drives it; PSNR, SSIM and the Frechet column against the real frames 1..T-1. "
             "'First frame (held)' repeats the reference."]
    return _table("Self-reenactment (held-out real clips)", tallies, net, reference, len(ids), notes)


def _reenacted(renderer: Any, clip: VideoClip, frames: np.ndarray) -> np.ndarray:
    """Frames 1..T-1 for one renderer (None: the first frame held)."""
    size = frames.shape[1]
    if renderer is None:
        return np.repeat(frames[:1], len(frames) - 1, 0)
    if renderer == "warp":
        return np.stack(list(reenact_warp(frames, _crop_mesh(clip, size), np.asarray(clip.crop, np.float64))))
    return fd2talk_frames(renderer, frames[0], clip.motion.slice(1, len(clip)), size)

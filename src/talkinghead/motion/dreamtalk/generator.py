"""DreamTalk as a motion generator (:class:`talkinghead.generators.MotionGenerator`; DreamTalk 3.3 "Inference").

The style code comes from a reference clip through the denoiser's style encoder (3.2), or from the
diffusion style predictor given the audio and the portrait's identity (3.2, Eq. 4), or (an extension,
:mod:`.style_bank`) from an emotion name; optionally mixed with a second one (4.5). The denoiser then
samples motion with DDIM, 10 steps (App. C.4), under classifier-free guidance on style (Eq. 8), over
windows of the sequence in lock-step (:mod:`.windowed`). The denoiser also generates head pose (an
extension); the pipeline places it on the portrait.

A checkpoint folder holds ``denoiser/``, optionally ``style_predictor/`` and a style bank (the lip
expert is a training-time judge and not loaded). A bare denoiser checkpoint, or a style-predictor
checkpoint whose denoiser is recorded in it, loads too (the ablated variants of ``evaluate``).

Deviation: the style predictor samples with DDIM (``style_steps`` = 50 by default, preset ``paper``:
DDPM 1000 steps as in App. C.4) to keep CPU generation fast.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from talkinghead.config import Config
from talkinghead.errors import TalkingHeadError
from talkinghead.generators import Conditions, MotionOutput, StyleRequest, weights_root
from talkinghead.log import Laps
from talkinghead.sequence import ChannelLayout, MotionSequence

DENOISER_DIR, LIP_EXPERT_DIR, PREDICTOR_DIR = "denoiser", "lip_expert", "style_predictor"


@dataclass(frozen=True)
class DreamTalkSampling(Config):
    """DreamTalk's sampling settings. ``steps``: DDIM steps (App. C.4); ``cfg_scale``: omega of Eq. 8
    (1 = conditional only, the paper's setting). Long audio is denoised in windows of ``window_frames``,
    ``batch_windows`` at a time, with audio tokens cached up to ``audio_cache_mb``. The style predictor
    samples with ``style_sampler`` for ``style_steps``."""

    steps: int = 10
    cfg_scale: float = 1.0
    window_frames: int = 250
    batch_windows: int = 4
    audio_cache_mb: int = 256
    style_sampler: str = "ddim"
    style_steps: int = 50

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {"window_frames": 40, "batch_windows": 2, "style_steps": 5},
        "cpu": {},
        "paper": {"style_sampler": "ddpm", "style_steps": 1000},
    }

    def __post_init__(self) -> None:
        if not 1 <= self.steps <= 1000:
            raise TalkingHeadError(f"The number of sampling steps must be between 1 and 1000, got {self.steps}.")
        if not (math.isfinite(self.cfg_scale) and 0.0 <= self.cfg_scale <= 20.0):
            raise TalkingHeadError(f"The guidance scale must be between 0 and 20, got {self.cfg_scale}.")
        if self.window_frames < 8:
            raise TalkingHeadError(f"window_frames must be at least 8, got {self.window_frames}.")
        if min(self.batch_windows, self.style_steps) < 1 or self.audio_cache_mb < 0 \
                or self.style_sampler not in ("ddim", "ddpm"):
            raise TalkingHeadError("batch_windows and style_steps must be positive and style_sampler ddim or ddpm.")


def _component(path: Path) -> str | None:
    """The component named in ``path/config.json`` (None when it is not a checkpoint folder)."""
    try:
        return str(json.loads((path / "config.json").read_text()).get("component"))
    except (OSError, ValueError, AttributeError):
        return None


def _check_fingerprint(predictor_dir: Path, denoiser: Any) -> None:
    """Refuse a style predictor that learned the style codes of another denoiser (recorded when trained)."""
    from talkinghead.checkpoint import read_checkpoint_info
    from talkinghead.motion.dreamtalk.style_bank import style_encoder_fingerprint

    if read_checkpoint_info(predictor_dir).extra.get("denoiser_fingerprint") not in (
            None, "", style_encoder_fingerprint(denoiser)):
        raise TalkingHeadError(f"The style predictor {predictor_dir} learned the style codes of another denoiser.")


class DreamTalkGenerator:
    """Audio + a style (reference clip, emotion, code, or predicted) -> face motion (DreamTalk)."""

    kind: ClassVar[str] = "motion"
    name: ClassVar[str] = "dreamtalk"
    title: ClassVar[str] = "DreamTalk"
    capabilities: ClassVar[tuple[str, ...]] = (
        "style-video", "style-code", "emotion", "predicted-style", "style-mix", "guidance", "head-pose")

    def __init__(self, denoiser: Any, style_predictor: Any | None = None, style_bank: Any | None = None,
                 directory: Path | None = None, sampling: DreamTalkSampling | None = None) -> None:
        self.denoiser = denoiser
        self.style_predictor = style_predictor
        self.style_bank = style_bank
        self.directory = directory
        self.sampling = sampling or DreamTalkSampling()
        #: how ``evaluate`` asks this generator for a style: from the clip's own motion, or predicted (a
        #: style-predictor checkpoint, DreamTalk Tab. 4)
        self.evaluation_style = "reference"
        if style_predictor is not None and style_predictor.config.style_dim != denoiser.config.d_model:
            raise TalkingHeadError("The style predictor was trained for another denoiser (style code sizes differ).")

    # ------------------------------------------------------------------------------------ loading
    @classmethod
    def recognises(cls, path: Path) -> bool:
        """A folder made before manifests: ``denoiser/`` inside, or a denoiser / style-predictor checkpoint."""
        return (path / DENOISER_DIR).is_dir() or _component(path) in ("dreamtalk.denoiser",
                                                                       "dreamtalk.style_predictor")

    @classmethod
    def from_pretrained(cls, directory: str | Path | None = None,
                        sampling: DreamTalkSampling | None = None) -> DreamTalkGenerator:
        """From a checkpoint folder (default: the shipped ``weights/dreamtalk``)."""
        from talkinghead.motion.dreamtalk import DreamTalkDenoiser, StylePredictor
        from talkinghead.motion.dreamtalk.style_bank import BANK_META, StyleBank

        path = Path(directory) if directory is not None else weights_root() / "dreamtalk"
        if (path / DENOISER_DIR).is_dir():
            denoiser = DreamTalkDenoiser.from_pretrained(path / DENOISER_DIR)
            predictor = StylePredictor.from_pretrained(path / PREDICTOR_DIR) if (path / PREDICTOR_DIR).is_dir() \
                else None
            if predictor is not None:
                _check_fingerprint(path / PREDICTOR_DIR, denoiser)
            bank = StyleBank.load(path) if (path / BANK_META).exists() else None
            return cls(denoiser, predictor, bank, path, sampling)
        component = _component(path)
        if component == "dreamtalk.denoiser":
            return cls(DreamTalkDenoiser.from_pretrained(path), None, None, path, sampling)
        if component == "dreamtalk.style_predictor":
            return cls._predictor_with_its_denoiser(path, sampling)
        if directory is None:
            raise TalkingHeadError(f"The default weights are missing ({path}); pass --checkpoint DIR or train "
                                   "them with talkinghead train.")
        raise TalkingHeadError(f"{path} holds no DreamTalk checkpoints (no {DENOISER_DIR}/ folder).")

    @classmethod
    def _predictor_with_its_denoiser(cls, path: Path, sampling: DreamTalkSampling | None) -> DreamTalkGenerator:
        """A style-predictor checkpoint and the denoiser whose style codes it learned (recorded in it)."""
        from talkinghead.checkpoint import read_checkpoint_info
        from talkinghead.motion.dreamtalk import DreamTalkDenoiser, StylePredictor

        predictor = StylePredictor.from_pretrained(path)
        extra = read_checkpoint_info(path).extra
        den_dir = extra.get("denoiser")
        if not den_dir or not Path(den_dir).is_dir():
            raise TalkingHeadError(f"The denoiser of the style predictor {path} is not at hand; put both in one "
                                   "folder as denoiser/ and style_predictor/.")
        den = DreamTalkDenoiser.from_pretrained(den_dir)
        _check_fingerprint(path, den)
        generator = cls(den, predictor, None, path, sampling)
        generator.evaluation_style = "predicted"
        return generator

    # ------------------------------------------------------------------------------------ properties
    @property
    def layout(self) -> ChannelLayout:
        from talkinghead.face.model import ARKIT_LAYOUT

        return ChannelLayout.from_dict(self.denoiser.layout) if self.denoiser.layout else ARKIT_LAYOUT

    @property
    def evaluation_styles(self) -> tuple[str, ...]:
        """The style requests ``evaluate`` may make: a reference clip, and a predicted style with a predictor."""
        return ("reference", "predicted") if self.style_predictor is not None else ("reference",)

    @property
    def regression(self) -> bool:
        """A regression variant ("same network, no diffusion", DreamTalk Tab. 2)."""
        return bool(self.denoiser.config.regression)

    @property
    def generates_pose(self) -> bool:
        return bool(self.denoiser.config.generate_pose)

    def settings(self, conditions: Conditions) -> DreamTalkSampling:
        """This generator's sampling settings with the request's steps and guidance where given."""
        changes: dict[str, Any] = {}
        if conditions.steps is not None:
            changes["steps"] = conditions.steps
        if conditions.guidance is not None:
            changes["cfg_scale"] = conditions.guidance
        return self.sampling.replace(**changes) if changes else self.sampling

    # ------------------------------------------------------------------------------------ styles
    @torch.no_grad()
    def encode_reference(self, motion: MotionSequence) -> np.ndarray:
        """The style code ``[d]`` of a reference motion: its expression in the denoiser's channels (+ pose
        when the denoiser generates pose), middle 256 frames at most, through the style encoder (3.2)."""
        from talkinghead.sequence import expression_for_layout, middle_frames

        reference = expression_for_layout(motion, self.layout)
        if self.generates_pose:
            reference = np.concatenate([reference, motion.pose], axis=1)
        ref = middle_frames(reference.astype(np.float32))
        return self.denoiser.encode_style(torch.from_numpy(ref)[None])[0].numpy()

    def emotion_style(self, emotion: str, intensity: int | None = None) -> np.ndarray:
        """The style bank's code ``[d]`` of an emotion (and intensity 1-3)."""
        if self.style_bank is None:
            raise TalkingHeadError("These checkpoints have no style bank, so styles cannot be chosen by emotion; "
                                   "build one with talkinghead build-style-bank.")
        self.style_bank.check_denoiser(self.denoiser)
        return np.asarray(self.style_bank.lookup(emotion, intensity), np.float32)

    @torch.no_grad()
    def predict_style(self, conditions: Conditions, sampling: DreamTalkSampling | None = None) -> np.ndarray:
        """The style code ``[d]`` the style predictor samples for the audio and the portrait (Eq. 4)."""
        from talkinghead.diffusion import ScheduleConfig
        from talkinghead.motion.dreamtalk.sampling import predict_style
        from talkinghead.sequence import middle_frames

        predictor = self.style_predictor
        sampling = sampling or self.settings(conditions)
        if predictor is None:
            raise TalkingHeadError("These checkpoints have no style predictor; give a style video or an emotion.")
        audio = conditions.features(predictor.audio_features, "style predictor")
        if audio.shape[1] != predictor.config.audio_dim:
            raise TalkingHeadError("The style predictor's audio feature widths do not match its feature spec.")
        identity = None
        if predictor.config.speaker_info:
            descriptor = conditions.portrait.identity.get("descriptor")
            if descriptor is None:
                raise TalkingHeadError("Predicting a style needs the portrait's identity descriptor.")
            descriptor = np.asarray(descriptor, np.float32).reshape(-1)
            if len(descriptor) != predictor.config.identity_dim:
                raise TalkingHeadError(f"The style predictor expects a {predictor.config.identity_dim}-value "
                                       f"identity descriptor; the portrait has {len(descriptor)}.")
            identity = torch.from_numpy(descriptor)[None]
        clip = torch.from_numpy(middle_frames(audio, predictor.config.max_frames))[None]
        generator = torch.Generator().manual_seed(conditions.seed + 1)
        schedule = ScheduleConfig(num_inference_steps=sampling.style_steps)
        code = predict_style(predictor, clip, identity, schedule=schedule, steps=sampling.style_steps,
                             sampler=sampling.style_sampler, generator=generator)
        return code[0].numpy()

    def style_code(self, conditions: Conditions, sampling: DreamTalkSampling | None = None) -> tuple[np.ndarray, str]:
        """Stage 4: one style code ``[d]`` for the request, and where it came from."""
        from talkinghead.diffusion.guidance import interpolate_styles

        request = conditions.style
        if sum(x is not None for x in (request.video, request.reference, request.emotion, request.code)) > 1:
            raise TalkingHeadError("Give at most one style: a style video, an emotion or a style code.")
        d = self.denoiser.config.d_model
        if request.code is not None:
            if np.asarray(request.code).shape != (d,):
                raise TalkingHeadError(f"The style code must have {d} values for this denoiser.")
            style, source = np.asarray(request.code, np.float32), "given"
        elif request.video is not None or request.reference is not None:
            reference = conditions.style_motion()
            assert reference is not None
            style = self.encode_reference(reference)
            source = f"video:{request.video}" if request.video is not None else "reference"
        elif request.emotion is not None:
            style = self.emotion_style(request.emotion, request.intensity)
            source = f"emotion:{request.emotion}" + (f":{request.intensity}" if request.intensity else "")
        else:
            style, source = self.predict_style(conditions, sampling), "predicted"
        if request.mix is not None:
            other, other_source = self._mix_target(request.mix, conditions)
            alpha = request.mix_alpha
            style = interpolate_styles(torch.from_numpy(style), torch.from_numpy(other), alpha).numpy()
            source = f"{source} x{1 - alpha:g} + {other_source} x{alpha:g}"
        return style, source

    def _mix_target(self, spec: str, conditions: Conditions) -> tuple[np.ndarray, str]:
        """The second style of a mix: a video path or ``emotion[:intensity]``."""
        if Path(spec).is_file():
            second = Conditions(conditions.audio, conditions.portrait, StyleRequest(video=Path(spec)),
                                fps=conditions.fps)
            return self.encode_reference(second.style_motion()), f"video:{spec}"  # type: ignore[arg-type]
        name, _, level = spec.partition(":")
        if level and level not in ("1", "2", "3"):
            raise TalkingHeadError(f"The style to mix in, '{spec}', is neither a file nor emotion[:1-3].")
        intensity = int(level) if level else None
        return self.emotion_style(name, intensity), f"emotion:{name}" + (f":{intensity}" if intensity else "")

    # ------------------------------------------------------------------------------------ motion
    def generate(self, conditions: Conditions) -> MotionOutput:
        """Stages: style code, then motion with windowed DDIM (or one regression pass)."""
        from talkinghead.motion.dreamtalk.windowed import sample_motion

        lap = Laps()
        den = self.denoiser
        sampling = self.settings(conditions)
        audio = conditions.features(den.audio_features, "denoiser")
        if audio.shape[1] != den.config.audio_dim:
            raise TalkingHeadError("The denoiser's audio feature widths do not match its feature spec.")
        lap("features")
        style, source = self.style_code(conditions, sampling)
        lap("style")
        motion = sample_motion(den, audio, style, steps=sampling.steps, cfg_scale=sampling.cfg_scale,
                               seed=conditions.seed, window_frames=sampling.window_frames,
                               batch_windows=sampling.batch_windows, audio_cache_mb=sampling.audio_cache_mb)
        lap("motion")
        e = den.config.expression_dim
        portrait = conditions.portrait
        pose = motion[:, e:e + 6] if self.generates_pose else np.repeat(np.asarray(portrait.pose, np.float32)[None],
                                                                         len(motion), 0)
        sequence = MotionSequence(motion[:, :e], pose, self.layout, conditions.fps, portrait.identity,
                                  f"generate:{source}")
        return MotionOutput(sequence, self.generates_pose, style, source, lap.timings)

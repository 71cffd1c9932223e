"""The ``generate`` pipeline: portrait + speech (+ a style) -> talking-head mp4 (issue 6, item 7).

DreamTalk 3.3 "Inference": the style code comes from a reference clip through the denoiser's style
encoder (3.2), or from the diffusion style predictor given audio and the portrait's identity (3.2, Eq. 4),
or (an extension, :mod:`talkinghead.motion.dreamtalk.style_bank`) from an emotion name; the denoiser
samples motion with DDIM, 10 steps (App. C.4), under classifier-free guidance on style (Eq. 8); the
warp renderer animates the portrait (DreamTalk renders with PIRenderer; see DESIGN.md).

Stages (each timed in :attr:`GenerateResult.timings`):

1. read and check the inputs (one clear sentence per problem, before any heavy work);
2. fit the face model to the portrait (identity, its own expression and head pose);
3. frame-aligned audio features, exactly the ones the checkpoints were trained on (their stored
   :class:`~talkinghead.audio.spec.AudioFeatureSpec` is rebuilt and checked against this code's);
4. the style code (style video / emotion / predicted), optionally mixed with a second one (4.5);
5. motion: DDIM over windows of the sequence in lock-step, exact at the joins (below);
6. head motion: the generated pose (an extension: the denoiser also generates pose) taken relative
   to its own mean, scaled by ``head_motion`` and applied to the portrait's pose (0 = still head);
7. render and write the mp4 with the input audio (atomic: no half-written file on failure).

Long audio: the denoiser maps each frame from an 11-frame window (w = 5) of audio and noisy motion
(3.2), so the sequence can be cut anywhere. Windows of ``window_frames`` frames are denoised in
batches of ``batch_windows`` (bounded memory) in lock-step: at each DDIM step every window also reads
the ``w`` neighbouring frames of the *current* noisy sequence on both sides (overlapping context), so
each frame's prediction is exactly what one pass over the whole clip would give and the joins are
seamless by construction, not by blending. Rendering and encoding stream frame by frame.

Deviation: the style predictor samples with DDIM (``style_steps`` = 50 by default, preset ``paper``:
DDPM 1000 steps as in App. C.4) to keep CPU generation fast.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from talkinghead.config import Config
from talkinghead.errors import TalkingHeadError
from talkinghead.io.audio import Audio
from talkinghead.log import log_event, progress
from talkinghead.motion.sequence import ChannelLayout, MotionSequence

FPS = 25.0
SIZES = (256, 512)
DENOISER_DIR, LIP_EXPERT_DIR, PREDICTOR_DIR = "denoiser", "lip_expert", "style_predictor"


@dataclass(frozen=True)
class GenerateConfig(Config):
    """Sampling, windowing and output settings of :func:`generate`.

    ``cfg_scale`` is omega of Eq. 8 (1 = conditional only, the paper's setting); ``head_motion`` scales
    the generated head motion (0 = the portrait's pose throughout); ``size`` is the renderer's face-crop
    resolution (256 or 512; frames are the whole photo pasted back). ``threads``: torch threads while
    sampling (0 = torch's default); the motion networks are small, and on the 2-core machine one thread
    was faster than two, by far when other work competed for the cores (BENCHMARKS.md), so the default is 1.
    """

    steps: int = 10
    cfg_scale: float = 1.0
    seed: int = 0
    head_motion: float = 1.0
    size: int = 256
    window_frames: int = 250
    batch_windows: int = 4
    audio_cache_mb: int = 256
    threads: int = 1
    style_sampler: str = "ddim"
    style_steps: int = 50
    crf: int = 20

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {"window_frames": 40, "batch_windows": 2, "style_steps": 5},
        "cpu": {},
        "paper": {"size": 512, "style_sampler": "ddpm", "style_steps": 1000},
    }

    def __post_init__(self) -> None:
        if not 1 <= self.steps <= 1000:
            raise TalkingHeadError(f"The number of sampling steps must be between 1 and 1000, got {self.steps}.")
        if not (math.isfinite(self.cfg_scale) and 0.0 <= self.cfg_scale <= 20.0):
            raise TalkingHeadError(f"The guidance scale must be between 0 and 20, got {self.cfg_scale}.")
        if not (math.isfinite(self.head_motion) and 0.0 <= self.head_motion <= 5.0):
            raise TalkingHeadError(f"The head-motion scale must be between 0 and 5, got {self.head_motion}.")
        if self.size not in SIZES:
            raise TalkingHeadError(f"The size must be 256 or 512, got {self.size}.")
        if self.seed < 0:
            raise TalkingHeadError(f"The seed must be a non-negative integer, got {self.seed}.")
        if self.window_frames < 8:
            raise TalkingHeadError(f"window_frames must be at least 8, got {self.window_frames}.")
        if min(self.batch_windows, self.style_steps) < 1 or min(self.audio_cache_mb, self.threads) < 0 \
                or self.style_sampler not in ("ddim", "ddpm"):
            raise TalkingHeadError("batch_windows and style_steps must be positive and style_sampler ddim or ddpm.")


@dataclass
class GenerateInputs:
    """What to animate. Exactly one of ``audio`` / ``text``; at most one of ``style_video`` / ``emotion``
    / ``style`` (a ready style code ``[d]``); none of them = style predicted from audio and portrait.
    ``style_mix``: a second style (emotion name, ``name:intensity`` or a video path) mixed in with
    weight ``mix_alpha`` (DreamTalk 4.5, linear interpolation of style codes)."""

    image: str | Path | np.ndarray
    audio: str | Path | Audio | None = None
    text: str | None = None
    style_video: str | Path | None = None
    emotion: str | None = None
    intensity: int | None = None
    style: np.ndarray | None = None
    style_mix: str | None = None
    mix_alpha: float = 0.5
    face_index: int | None = None


@dataclass
class GenerateResult:
    """What :func:`generate` made. ``motion`` is in the checkpoint's channel layout with the pose as
    rendered (the portrait's pose plus the scaled generated head motion); ``style`` the code used."""

    output: Path | None
    motion: MotionSequence
    style: np.ndarray
    style_source: str
    audio: Audio
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return len(self.motion)


# ------------------------------------------------------------------------------------------- models

def default_checkpoint_dir() -> Path:
    """``weights/dreamtalk`` of the repository this package sits in (src layout)."""
    return Path(__file__).resolve().parents[2] / "weights" / "dreamtalk"


@dataclass
class DreamTalkModels:
    """The inference-time models of a checkpoint folder (``denoiser/``, ``style_predictor/``, an
    optional style bank; the lip expert is a training-time judge and not loaded)."""

    denoiser: Any
    style_predictor: Any | None = None
    style_bank: Any | None = None
    directory: Path | None = None

    @classmethod
    def load(cls, directory: str | Path | None = None) -> DreamTalkModels:
        from talkinghead.motion.dreamtalk import DreamTalkDenoiser, StylePredictor
        from talkinghead.motion.dreamtalk.style_bank import BANK_META, StyleBank

        given = directory is not None
        path = Path(directory) if directory is not None else default_checkpoint_dir()
        if not (path / DENOISER_DIR).is_dir():
            if given:
                raise TalkingHeadError(f"{path} holds no DreamTalk checkpoints (no {DENOISER_DIR}/ folder).")
            raise TalkingHeadError(f"The default weights are missing ({path}); pass --checkpoint DIR or train "
                                   "them with talkinghead train.")
        denoiser = DreamTalkDenoiser.from_pretrained(path / DENOISER_DIR)
        predictor = StylePredictor.from_pretrained(path / PREDICTOR_DIR) if (path / PREDICTOR_DIR).is_dir() else None
        bank = StyleBank.load(path) if (path / BANK_META).exists() else None
        return cls(denoiser, predictor, bank, path)


def feature_spec_of(model: Any, what: str) -> Any:
    """The :class:`AudioFeatureSpec` a model was trained on, checked against this version's extractor."""
    from talkinghead.audio.spec import FEATURE_VERSION, AudioFeatureSpec, check_compatible

    stored = (model.audio_features or {}).get("dataset", {}).get("spec")
    if not stored:
        raise TalkingHeadError(f"The {what} checkpoint stores no audio feature spec, so its audio input "
                               "cannot be computed.")
    spec = AudioFeatureSpec.from_dict(stored, partial=True)
    check_compatible(stored, spec.replace(version=FEATURE_VERSION), f"the {what}")
    if spec.fps != FPS:
        raise TalkingHeadError(f"The {what} was trained on audio features at {spec.fps} fps; generate needs {FPS}.")
    return spec


def select_features(stacked: np.ndarray, spec: Any, model: Any, what: str) -> np.ndarray:
    """The model's feature names (in its order) cut from the spec's stacked features ``[T, spec.dims]``."""
    names = list(model.audio_features.get("names", []))
    dims = list(model.audio_features.get("dims", []))
    slices = spec.slices()
    missing = [n for n in names if n not in slices]
    if not names or missing:
        raise TalkingHeadError(f"The {what} reads audio features ({', '.join(names) or 'none'}) its spec does "
                               "not produce.")
    parts = [stacked[:, slices[n]] for n in names]
    if [p.shape[1] for p in parts] != dims or sum(dims) != model.config.audio_dim:
        raise TalkingHeadError(f"The {what}'s audio feature widths do not match its feature spec.")
    return np.concatenate(parts, axis=1)


# ------------------------------------------------------------------------------------- stage helpers

def read_inputs(inputs: GenerateInputs, output: Path | None) -> tuple[np.ndarray, Audio]:
    """Stage 1: check the request and load image and speech."""
    from talkinghead.io.audio import load_audio
    from talkinghead.io.image import load_image

    if output is not None and output.suffix.lower() != ".mp4":
        raise TalkingHeadError(f"The output {output} should end in .mp4.")
    if (inputs.audio is None) == (inputs.text is None):
        raise TalkingHeadError("Give the speech either as audio (--audio) or as text (--text), exactly one of them.")
    sources = [s for s in (inputs.style_video, inputs.emotion, inputs.style) if s is not None]
    if len(sources) > 1:
        raise TalkingHeadError("Give at most one style: a style video, an emotion or a style code.")
    if inputs.intensity is not None:
        if inputs.emotion is None:
            raise TalkingHeadError("An intensity needs an emotion (--emotion NAME).")
        if inputs.intensity not in (1, 2, 3):
            raise TalkingHeadError(f"The intensity must be 1, 2 or 3, got {inputs.intensity}.")
    if not (math.isfinite(inputs.mix_alpha) and 0.0 <= inputs.mix_alpha <= 1.0):
        raise TalkingHeadError(f"The style mix weight must be between 0 and 1, got {inputs.mix_alpha}.")
    if inputs.style_video is not None and not Path(inputs.style_video).is_file():
        raise TalkingHeadError(f"The style video {inputs.style_video} does not exist.")
    image = inputs.image if isinstance(inputs.image, np.ndarray) else load_image(inputs.image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise TalkingHeadError("The portrait must be an RGB uint8 image [H, W, 3].")
    if inputs.text is not None:
        audio = _speak(inputs.text, inputs.emotion, inputs.intensity)
    elif isinstance(inputs.audio, Audio):
        audio = inputs.audio
    else:
        assert inputs.audio is not None
        audio = load_audio(inputs.audio)
    if audio.sample_rate != 16_000:
        raise TalkingHeadError(f"The audio must be at 16000 Hz, got {audio.sample_rate} Hz.")
    if len(audio.samples) < audio.sample_rate / FPS:
        raise TalkingHeadError("The audio is empty or shorter than one video frame (40 ms).")
    return image, audio


def _speak(text: str, emotion: str | None, intensity: int | None) -> Audio:
    """Built-in TTS (espeak-ng); an emotion also colours the voice's prosody."""
    from talkinghead.audio.tts import EMOTIONS, VoiceConfig, synthesize

    voice = VoiceConfig(emotion=emotion if emotion in EMOTIONS else "neutral", intensity=intensity or 2)
    return synthesize(text, voice).audio


def _style_reference(path: str | Path, layout: ChannelLayout, with_pose: bool) -> np.ndarray:
    """A style video's tracked motion in the denoiser's channels ``[N, C]`` (middle 256 frames at most)."""
    from talkinghead.face.track import track_path
    from talkinghead.motion.dreamtalk.style_bank import middle_frames
    from talkinghead.render.motion_input import expression_for_layout

    tracked = track_path(path, fps=FPS)
    motion = expression_for_layout(tracked, layout)
    if with_pose:
        motion = np.concatenate([motion, tracked.pose], axis=1)
    return middle_frames(motion.astype(np.float32))


@torch.no_grad()
def resolve_style(models: DreamTalkModels, *, style_video: str | Path | None = None, emotion: str | None = None,
                  intensity: int | None = None, audio_features: np.ndarray | None = None,
                  descriptor: np.ndarray | None = None, config: GenerateConfig | None = None) -> tuple[np.ndarray, str]:
    """Stage 4: one style code ``[d]`` and a description of where it came from."""
    from talkinghead.diffusion import ScheduleConfig
    from talkinghead.motion.dreamtalk import predict_style
    from talkinghead.motion.dreamtalk.style_bank import middle_frames

    config = config or GenerateConfig()
    den = models.denoiser
    if style_video is not None:
        layout = ChannelLayout.from_dict(den.layout) if den.layout else _arkit_layout()
        ref = _style_reference(style_video, layout, den.config.generate_pose)
        return den.encode_style(torch.from_numpy(ref)[None])[0].numpy(), f"video:{style_video}"
    if emotion is not None:
        if models.style_bank is None:
            raise TalkingHeadError("These checkpoints have no style bank, so styles cannot be chosen by emotion; "
                                   "build one with talkinghead build-style-bank.")
        models.style_bank.check_denoiser(den)
        code = models.style_bank.lookup(emotion, intensity)
        label = f"emotion:{emotion}" + (f":{intensity}" if intensity else "")
        return np.asarray(code, np.float32), label
    predictor = models.style_predictor
    if predictor is None:
        raise TalkingHeadError("These checkpoints have no style predictor; give a style video or an emotion.")
    if audio_features is None or descriptor is None:
        raise TalkingHeadError("Predicting a style needs the audio features and the portrait's identity.")
    if predictor.config.style_dim != den.config.d_model:
        raise TalkingHeadError("The style predictor was trained for another denoiser (style code sizes differ).")
    if predictor.config.speaker_info and len(descriptor) != predictor.config.identity_dim:
        raise TalkingHeadError(f"The style predictor expects a {predictor.config.identity_dim}-value identity "
                               f"descriptor; the face model gives {len(descriptor)}.")
    audio = torch.from_numpy(middle_frames(audio_features, predictor.config.max_frames))[None]
    generator = torch.Generator().manual_seed(config.seed + 1)
    code = predict_style(predictor, audio, torch.from_numpy(descriptor.astype(np.float32))[None],
                         schedule=ScheduleConfig(num_inference_steps=config.style_steps),
                         steps=config.style_steps, sampler=config.style_sampler, generator=generator)
    return code[0].numpy(), "predicted"


def _arkit_layout() -> ChannelLayout:
    from talkinghead.face.model import ARKIT_LAYOUT

    return ARKIT_LAYOUT


def window_starts(num_frames: int, window: int) -> list[int]:
    """Start frames of windows of ``window`` frames tiling ``num_frames`` (the last one ends at the last
    frame, overlapping its neighbour when ``window`` does not divide ``num_frames``)."""
    if num_frames <= window:
        return [0]
    starts = list(range(0, num_frames - window, window))
    starts.append(num_frames - window)
    return starts


def _edge_padded(x: np.ndarray | torch.Tensor, pad: int) -> Any:
    """``x [T, D]`` with ``pad`` copies of the first and last frame added (the denoiser's edge rule)."""
    if isinstance(x, torch.Tensor):
        return torch.cat([x[:1].expand(pad, -1), x, x[-1:].expand(pad, -1)])
    return np.concatenate([np.repeat(x[:1], pad, 0), x, np.repeat(x[-1:], pad, 0)])


class CachedAudioDenoiser:
    """Sampling adapter over :class:`DreamTalkDenoiser` that keeps each window batch's audio tokens
    (:meth:`DreamTalkDenoiser.encode_audio`, 3.2): they depend on neither the noisy motion nor the step,
    so they are computed once instead of at every DDIM step and guidance branch (~40% of a step on the
    CPU). Tokens are kept up to ``budget_mb`` in total, beyond that recomputed, so memory stays bounded.
    """

    def __init__(self, denoiser: Any, budget_mb: int) -> None:
        self.net = denoiser
        self.budget = budget_mb * 2**20
        self.used = 0
        self.cache: dict[int, torch.Tensor] = {}

    def audio_tokens(self, key: int, audio: torch.Tensor, length: int) -> torch.Tensor:
        """``audio [B, length + 2w, D_a]`` raw -> tokens ``[B * length, 2w + 1, d]``."""
        if key in self.cache:
            return self.cache[key]
        tokens = self.net.encode_audio(audio, length)
        size = tokens.numel() * tokens.element_size()
        if self.used + size <= self.budget:
            self.cache[key] = tokens
            self.used += size
        return tokens

    def __call__(self, key: int, noisy: torch.Tensor, t: torch.Tensor, audio: torch.Tensor,
                 style: torch.Tensor) -> torch.Tensor:
        """As ``denoiser(noisy, t, audio, style)``: ``noisy [B, L, C]``, ``audio [B, L + 2w, D_a]`` -> ``[B, L, C]``."""
        tokens = self.audio_tokens(key, audio, noisy.shape[1])
        return self.net(noisy, t, None, style, audio_tokens=tokens)


@torch.no_grad()
def sample_motion(denoiser: Any, audio: np.ndarray, style: np.ndarray, config: GenerateConfig) -> np.ndarray:
    """Stage 5: motion ``[T, C]`` (raw units) for audio features ``[T, D_a]`` and a style code ``[d]``.

    DDIM (``config.steps``, App. C.4) with classifier-free guidance on style (Eq. 8). The sequence is
    cut into windows of ``window_frames``; at every step each window is denoised together with ``w``
    frames of the current noisy motion on either side (2w of audio), of which only its own frames are
    kept, so every frame sees exactly the neighbours it would see in one pass over the whole clip: the
    joins are exact and memory is bounded by ``batch_windows`` windows.
    """
    from talkinghead.diffusion import ScheduleConfig, guided, make_scheduler

    num_frames, w = len(audio), denoiser.config.window
    window = min(config.window_frames, num_frames)
    starts = window_starts(num_frames, window)
    batches = [starts[i:i + config.batch_windows] for i in range(0, len(starts), config.batch_windows)]
    generator = torch.Generator().manual_seed(config.seed)
    x = torch.randn((num_frames, denoiser.config.motion_dim), generator=generator)   # x_T [T, C]
    audio_ctx = torch.from_numpy(_edge_padded(audio.astype(np.float32), 2 * w))      # [T + 4w, D]
    style_t = torch.from_numpy(np.asarray(style, np.float32))[None]
    null = denoiser.null_style(1)
    net = CachedAudioDenoiser(denoiser, config.audio_cache_mb)

    def predict_x0(x: torch.Tensor, t: int) -> torch.Tensor:
        """Guided x0 prediction ``[T, C]`` for the whole sequence, window batch by window batch."""
        x_ctx = _edge_padded(x, w)                                                    # [T + 2w, C]
        x0 = torch.empty_like(x)
        for key, group in enumerate(batches):
            n = len(group)
            noisy = torch.stack([x_ctx[s:s + window + 2 * w] for s in group])        # [n, L + 2w, C]
            cond_audio = torch.stack([audio_ctx[s:s + window + 4 * w] for s in group])  # [n, L + 4w, D]
            steps = torch.full((n,), t, dtype=torch.long)

            def cond(xt: torch.Tensor, tt: torch.Tensor, a: torch.Tensor = cond_audio, k: int = n,
                     g: int = key) -> torch.Tensor:
                return net(g, xt, tt, a, style_t.expand(k, -1))

            def uncond(xt: torch.Tensor, tt: torch.Tensor, a: torch.Tensor = cond_audio, k: int = n,
                       g: int = key) -> torch.Tensor:
                return net(g, xt, tt, a, null.expand(k, -1))

            pred = guided(cond, uncond, config.cfg_scale)(noisy, steps)               # [n, L + 2w, C]
            for k, s in enumerate(group):
                x0[s:s + window] = pred[k, w:w + window]
        return x0

    if denoiser.config.regression:
        # The regression variant: one pass from its fixed input (zero normalised motion, step 0).
        x = predict_x0(torch.zeros_like(x), 0)
        return denoiser.motion_norm.inverse(x).numpy()
    scheduler = make_scheduler(ScheduleConfig(num_inference_steps=config.steps), "ddim")
    scheduler.set_timesteps(config.steps)
    x = x * scheduler.init_noise_sigma
    for t in progress(scheduler.timesteps, "motion (DDIM)"):
        x = scheduler.step(predict_x0(x, int(t)), t, x, eta=0.0).prev_sample
    return denoiser.motion_norm.inverse(x).numpy()


def portrait_pose(generated: np.ndarray | None, fitted: np.ndarray, num_frames: int, scale: float) -> np.ndarray:
    """Stage 6: poses ``[T, 6]`` = portrait pose + ``scale`` x (generated pose - its mean)."""
    fitted = np.asarray(fitted, np.float32)
    base = np.repeat(fitted[None], num_frames, 0)
    if generated is None or scale == 0.0:
        return base
    return (base + scale * (generated - generated.mean(0, keepdims=True))).astype(np.float32)


# ------------------------------------------------------------------------------------------ pipeline

def generate(inputs: GenerateInputs, output: str | Path | None, config: GenerateConfig | None = None,
             models: DreamTalkModels | None = None, checkpoint: str | Path | None = None) -> GenerateResult:
    """Run the seven stages; write ``output`` (an .mp4) unless it is None (motion only)."""
    from talkinghead.audio.features import extract_features
    from talkinghead.face.model import fit_image
    from talkinghead.render.motion_input import expression_for_layout

    config = config or GenerateConfig()
    out = Path(output) if output is not None else None
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = now - clock
        clock = now

    # 1. inputs
    image, audio = read_inputs(inputs, out)
    models = models or DreamTalkModels.load(checkpoint)
    den = models.denoiser
    spec = feature_spec_of(den, "denoiser")
    if inputs.style is not None and np.asarray(inputs.style).shape != (den.config.d_model,):
        raise TalkingHeadError(f"The style code must have {den.config.d_model} values for this denoiser.")
    lap("inputs")
    # 2. portrait
    fit = fit_image(image, inputs.face_index)
    lap("fit")
    # 3. audio features (the spec the checkpoints were trained on)
    stacked = extract_features(audio, spec)
    motion_audio = select_features(stacked, spec, den, "denoiser")
    style_audio = None
    needs_prediction = inputs.style is None and inputs.style_video is None and inputs.emotion is None
    if needs_prediction and models.style_predictor is not None:
        from talkinghead.audio.spec import check_compatible

        check_compatible(models.style_predictor.audio_features.get("dataset", {}).get("spec"), spec,
                         "the style predictor")
        style_audio = select_features(stacked, spec, models.style_predictor, "style predictor")
    lap("features")
    # 4-5. style code and motion (torch threads set for the sampling only)
    saved_threads = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(config.threads)
    try:
        style, source, motion = _style_and_motion(inputs, models, fit.identity, style_audio, motion_audio,
                                                  config, lap)
    finally:
        torch.set_num_threads(saved_threads)
    # 6. head motion
    e = den.config.expression_dim
    layout = ChannelLayout.from_dict(den.layout) if den.layout else _arkit_layout()
    generated_pose = motion[:, e:e + 6] if den.config.generate_pose else None
    pose = portrait_pose(generated_pose, fit.pose, len(motion), config.head_motion)
    sequence = MotionSequence(motion[:, :e], pose, layout, FPS, fit.identity, f"generate:{source}")
    lap("pose")
    # 7. render + write
    if out is not None:
        from talkinghead.io.video import write_video
        from talkinghead.render import WarpRenderer, WarpRendererConfig

        renderer = WarpRenderer.from_fit(image, fit.identity, fit.expression, fit.pose,
                                         WarpRendererConfig(size=config.size))
        expression = expression_for_layout(sequence, _arkit_layout())
        frames = progress(renderer.render(expression, pose), "rendering", total=len(sequence))
        write_video(out, frames, FPS, audio=audio, crf=config.crf,
                    metadata={"talkinghead_style": source, "talkinghead_seed": str(config.seed)})
    lap("render")
    log_event("generated", frames=len(sequence), seconds=round(audio.duration, 2), style=source,
              output=str(out) if out else None)
    return GenerateResult(out, sequence, style, source, audio, timings)


def _style_and_motion(inputs: GenerateInputs, models: DreamTalkModels, identity: dict[str, np.ndarray],
                      style_audio: np.ndarray | None, motion_audio: np.ndarray, config: GenerateConfig,
                      lap: Any) -> tuple[np.ndarray, str, np.ndarray]:
    """Stages 4 (the style code, optionally mixed with a second one) and 5 (motion)."""
    from talkinghead.diffusion.guidance import interpolate_styles

    # 4. style code
    if inputs.style is not None:
        style, source = np.asarray(inputs.style, np.float32), "given"
    else:
        style, source = resolve_style(models, style_video=inputs.style_video, emotion=inputs.emotion,
                                      intensity=inputs.intensity, audio_features=style_audio,
                                      descriptor=identity.get("descriptor"), config=config)
    if inputs.style_mix is not None:
        other, other_source = _mix_target(models, inputs.style_mix, config)
        style = interpolate_styles(torch.from_numpy(style), torch.from_numpy(other), inputs.mix_alpha).numpy()
        source = f"{source} x{1 - inputs.mix_alpha:g} + {other_source} x{inputs.mix_alpha:g}"
    lap("style")
    # 5. motion
    motion = sample_motion(models.denoiser, motion_audio, style, config)
    lap("motion")
    return style, source, motion


def _mix_target(models: DreamTalkModels, spec: str, config: GenerateConfig) -> tuple[np.ndarray, str]:
    """The second style of a mix: a video path or ``emotion[:intensity]``."""
    if Path(spec).is_file():
        return resolve_style(models, style_video=spec, config=config)
    name, _, level = spec.partition(":")
    if level and level not in ("1", "2", "3"):
        raise TalkingHeadError(f"The style to mix in, '{spec}', is neither a file nor emotion[:1-3].")
    return resolve_style(models, emotion=name, intensity=int(level) if level else None, config=config)

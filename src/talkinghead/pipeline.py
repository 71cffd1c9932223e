"""The ``generate`` pipeline: portrait + speech (+ a style) -> talking-head mp4, for any generator.

The pipeline knows no paper: it checks the request, builds :class:`~talkinghead.generators.Conditions`,
and hands them to a generator from the registry (:mod:`talkinghead.generators`): a motion generator
whose motion a renderer turns into frames, or a video generator that makes the frames itself. It owns
what every generator shares: the seed, the output size, torch threads, placing generated head motion on
the portrait, and encoding.

Stages (each timed in :attr:`GenerateResult.timings`; a generator adds its own, e.g. style, motion):

1. read and check the inputs (one clear sentence per problem, before any heavy work);
2. fit the face model to the portrait (identity, its own expression and head pose);
3. the generator: motion (audio features, style, sampling) or frames;
4. head motion (motion generators that generate pose): the generated pose taken relative to its own
   mean, scaled by ``head_motion`` and applied to the portrait's pose (0 = still head);
5. render (motion generators) and write the mp4 with the input audio (atomic: no half-written file); the
   renderer runs in a worker thread a few frames ahead of the encoder, so the two overlap.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from talkinghead.config import Config
from talkinghead.errors import TalkingHeadError
from talkinghead.generators import FPS, Conditions, MotionOutput, Portrait, StyleRequest
from talkinghead.io.audio import Audio
from talkinghead.log import Laps, log_event, progress
from talkinghead.sequence import MotionSequence

SIZES = (256, 512)


@dataclass(frozen=True)
class GenerateConfig(Config):
    """What every generator shares. ``steps`` and ``cfg_scale`` override the generator's own sampling
    defaults when given (None: the generator's own);
    ``head_motion`` scales generated head motion (0 = the portrait's pose throughout); ``size`` is the
    face resolution (256 or 512; frames are the whole photo pasted back). ``threads``: torch threads while
    the generator runs (0 = torch's default); the CPU models are small, and on the 2-core machine one
    thread was faster than two, by far when other work competed for the cores (BENCHMARKS.md).
    ``render_workers``: processes drawing a long clip's frames (renderers that can) while this one encodes
    (0: drawn in a thread of this process; :mod:`talkinghead.render.parallel`)."""

    steps: int | None = None
    cfg_scale: float | None = None
    seed: int = 0
    head_motion: float = 1.0
    size: int = 256
    threads: int = 1
    crf: int = 20
    render_workers: int = 1

    presets: ClassVar[dict[str, dict[str, Any]]] = {"tiny": {}, "cpu": {}, "paper": {"size": 512}}

    def __post_init__(self) -> None:
        if self.steps is not None and not 1 <= self.steps <= 1000:
            raise TalkingHeadError(f"The number of sampling steps must be between 1 and 1000, got {self.steps}.")
        if self.cfg_scale is not None and not (math.isfinite(self.cfg_scale) and 0.0 <= self.cfg_scale <= 20.0):
            raise TalkingHeadError(f"The guidance scale must be between 0 and 20, got {self.cfg_scale}.")
        if not (math.isfinite(self.head_motion) and 0.0 <= self.head_motion <= 5.0):
            raise TalkingHeadError(f"The head-motion scale must be between 0 and 5, got {self.head_motion}.")
        if self.size not in SIZES:
            raise TalkingHeadError(f"The size must be 256 or 512, got {self.size}.")
        if self.seed < 0:
            raise TalkingHeadError(f"The seed must be a non-negative integer, got {self.seed}.")
        if self.threads < 0:
            raise TalkingHeadError(f"The number of threads must be 0 (torch's default) or more, got {self.threads}.")
        if not 0 <= self.render_workers <= 16:
            raise TalkingHeadError(f"The number of render workers must be between 0 and 16, got {self.render_workers}.")


@dataclass
class GenerateInputs:
    """What to animate. Exactly one of ``audio`` / ``text``; at most one of ``style_video`` / ``emotion``
    / ``style`` (a ready style code ``[d]``); none of them = the generator chooses (e.g. predicts the
    style from audio and portrait). ``style_mix``: a second style (emotion name, ``name:intensity``
    or a video path) mixed in with weight ``mix_alpha`` where the generator can mix styles. ``speed`` (degrees of head
    rotation per frame) and ``face_region`` (``x0, y0, x1, y1`` photo pixels) go to generators that list them in
    their ``capabilities``."""

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
    transcript: str | None = None
    speed: float | None = None
    face_region: tuple[float, float, float, float] | None = None


@dataclass
class GenerateResult:
    """What :func:`generate` made. ``motion`` (motion generators; None for video generators) is in the
    generator's channel layout with the pose as rendered (the portrait's pose plus the scaled generated
    head motion); ``style`` the style code used where the generator has one, ``style_source`` where the
    style came from."""

    output: Path | None
    motion: MotionSequence | None
    style: np.ndarray | None
    style_source: str
    audio: Audio
    num_frames: int
    timings: dict[str, float] = field(default_factory=dict)


# ------------------------------------------------------------------------------------- stage helpers

def read_inputs(inputs: GenerateInputs, output: Path | None) -> tuple[np.ndarray, Audio]:
    """Stage 1: check the request and load image and speech."""
    from talkinghead.io.audio import load_audio

    if output is not None and output.suffix.lower() != ".mp4":
        raise TalkingHeadError(f"The output {output} should end in .mp4.")
    if (inputs.audio is None) == (inputs.text is None):
        raise TalkingHeadError("Give the speech either as audio (--audio) or as text (--text), exactly one of them.")
    check_style_choice(inputs.style_video, inputs.emotion, inputs.style, inputs.intensity)
    if not (math.isfinite(inputs.mix_alpha) and 0.0 <= inputs.mix_alpha <= 1.0):
        raise TalkingHeadError(f"The style mix weight must be between 0 and 1, got {inputs.mix_alpha}.")
    if inputs.style_video is not None and not Path(inputs.style_video).is_file():
        raise TalkingHeadError(f"The style video {inputs.style_video} does not exist.")
    image = read_portrait(inputs.image)
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


def read_portrait(image: str | Path | np.ndarray) -> np.ndarray:
    """The portrait photo as RGB uint8 ``[H, W, 3]`` (a path is read), or one sentence. Shared by :func:`generate`
    and streaming."""
    from talkinghead.io.image import load_image

    picture = image if isinstance(image, np.ndarray) else load_image(image)
    if picture.dtype != np.uint8 or picture.ndim != 3 or picture.shape[2] != 3:
        raise TalkingHeadError("The portrait must be an RGB uint8 image [H, W, 3].")
    return picture


def check_style_choice(style_video: Any, emotion: str | None, style: Any, intensity: int | None) -> None:
    """At most one style source (a style video, an emotion, a style code); an intensity (1-3) only with an emotion.
    Shared by :func:`generate` and streaming (:mod:`talkinghead.stream`)."""
    if sum(x is not None for x in (style_video, emotion, style)) > 1:
        raise TalkingHeadError("Give at most one style: a style video, an emotion or a style code.")
    if intensity is not None:
        if emotion is None:
            raise TalkingHeadError("An intensity needs an emotion.")
        if intensity not in (1, 2, 3):
            raise TalkingHeadError(f"The intensity must be 1, 2 or 3, got {intensity}.")


def _speak(text: str, emotion: str | None, intensity: int | None) -> Audio:
    """Built-in TTS (espeak-ng); an emotion also colours the voice's prosody."""
    from talkinghead.audio.tts import EMOTIONS, VoiceConfig, synthesize

    voice = VoiceConfig(emotion=emotion if emotion in EMOTIONS else "neutral", intensity=intensity or 2)
    return synthesize(text, voice).audio


def conditions_for(inputs: GenerateInputs, audio: Audio, portrait: Portrait, config: GenerateConfig) -> Conditions:
    """The generator's view of a request (the transcript is the text itself when speech came from text)."""
    style = StyleRequest(video=Path(inputs.style_video) if inputs.style_video is not None else None,
                         emotion=inputs.emotion, intensity=inputs.intensity,
                         code=None if inputs.style is None else np.asarray(inputs.style, np.float32),
                         mix=inputs.style_mix, mix_alpha=inputs.mix_alpha)
    return Conditions(audio, portrait, style, transcript=inputs.transcript or inputs.text, seed=config.seed,
                      steps=config.steps, guidance=config.cfg_scale, speed=inputs.speed,
                      face_region=inputs.face_region)


def portrait_pose(generated: np.ndarray | None, fitted: np.ndarray, num_frames: int, scale: float) -> np.ndarray:
    """Stage 4: poses ``[T, 6]`` = portrait pose + ``scale`` x (generated pose - its mean)."""
    fitted = np.asarray(fitted, np.float32)
    base = np.repeat(fitted[None], num_frames, 0)
    if generated is None or scale == 0.0:
        return base
    return (base + scale * (generated - generated.mean(0, keepdims=True))).astype(np.float32)


def placed_motion(output: MotionOutput, portrait: Portrait, head_motion: float) -> MotionSequence:
    """Stage 4: the generated motion with its head motion placed on the portrait's pose."""
    m = output.motion
    pose = portrait_pose(m.pose if output.pose_generated else None, portrait.pose, len(m), head_motion)
    return MotionSequence(m.expression, pose, m.layout, m.fps, m.identity, m.source)


def with_threads(threads: int, run: Callable[[], Any]) -> Any:
    """``run()`` with torch using ``threads`` threads (0: unchanged), restored afterwards."""
    saved = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        return run()
    finally:
        torch.set_num_threads(saved)


# ------------------------------------------------------------------------------------------ pipeline

def generate(inputs: GenerateInputs, output: str | Path | None, config: GenerateConfig | None = None,
             models: Any | None = None, checkpoint: str | Path | None = None, *, model: str | None = None,
             renderer: Any | None = None) -> GenerateResult:
    """Run the stages; write ``output`` (an .mp4) unless it is None (motion only).

    ``models``: a loaded generator (:func:`talkinghead.generators.load_generator`), else the one in
    ``checkpoint`` (a folder with a manifest) or the registered ``model`` (default: the registry's default).
    ``renderer``: a renderer or its registry name, for motion generators (default: the generator's own renderer when
    its folder holds one (its ``paired_renderer``), else the registry's).
    """
    from talkinghead.allocator import keep_freed_blocks
    from talkinghead.generators import load_generator, load_renderer

    config = config or GenerateConfig()
    out = Path(output) if output is not None else None
    lap = Laps()
    keep_freed_blocks()  # large temporaries reused, not mapped afresh: sampling and rendering both faster

    # 1. inputs
    image, audio = read_inputs(inputs, out)
    generator = models if models is not None else load_generator(checkpoint, model)
    controls = [flag for flag, value in (("--speed", inputs.speed), ("--face-region", inputs.face_region))
                if value is not None and flag.strip("-") not in getattr(generator, "capabilities", ())]
    if controls:
        raise TalkingHeadError(f"The '{generator.name}' generator has no {' or '.join(controls)} control.")
    frame_renderer = None
    if generator.kind == "motion" and out is not None:
        paired = getattr(generator, "paired_renderer", None) if renderer is None else None
        frame_renderer = renderer if renderer is not None and not isinstance(renderer, str) else \
            (paired() if paired is not None else None) or load_renderer(renderer)
    elif renderer is not None and generator.kind != "motion":
        raise TalkingHeadError(f"The '{generator.name}' generator makes frames itself; it takes no renderer.")
    lap("inputs")
    # 2. portrait
    portrait = Portrait.fit(image, inputs.face_index)
    conditions = conditions_for(inputs, audio, portrait, config)
    lap("fit")
    # 3-5. generator, head motion, render + write
    if generator.kind == "video":
        return _video(generator, conditions, out, config, lap)
    workers = None
    if out is not None:  # render processes load while the motion is sampled
        from talkinghead.render.parallel import start_workers

        workers = start_workers(frame_renderer, portrait, config.size, conditions.num_frames, config.render_workers)
    try:
        made: MotionOutput = with_threads(config.threads, lambda: generator.generate(conditions))
        lap.add(made.timings)
        sequence = placed_motion(made, portrait, config.head_motion)
        lap("pose")
        if out is not None:
            assert frame_renderer is not None
            options = {} if workers is None else {"workers": workers}
            frames = progress(frame_renderer.render(portrait, sequence, config.size, **options), "rendering",
                              total=len(sequence))
            from talkinghead.io.video import RENDER_AHEAD
            from talkinghead.render.parallel import one_blas_thread

            with one_blas_thread():
                _write(out, frames, audio, config, made.source, prefetch=RENDER_AHEAD)
    finally:
        if workers is not None:
            workers.close()
    lap("render")
    log_event("generated", frames=len(sequence), seconds=round(audio.duration, 2), style=made.source,
              output=str(out) if out else None)
    return GenerateResult(out, sequence, made.style, made.source, audio, len(sequence), lap.timings)


def _video(generator: Any, conditions: Conditions, out: Path | None, config: GenerateConfig,
           lap: Laps) -> GenerateResult:
    """Stages 3 and 5 for a video generator: its frames, encoded as they come."""
    made = with_threads(config.threads, lambda: generator.generate(conditions, config.size))
    if out is not None:
        frames: Iterator[np.ndarray] = progress(iter(made.frames), "generating frames", total=made.num_frames)
        with_threads(config.threads, lambda: _write(out, frames, conditions.audio, config, made.source, made.fps))
    lap("frames")
    lap.add(made.timings)
    log_event("generated", frames=made.num_frames, seconds=round(conditions.audio.duration, 2), style=made.source,
              output=str(out) if out else None)
    return GenerateResult(out, made.motion, None, made.source, conditions.audio, made.num_frames, lap.timings)


def _write(out: Path, frames: Any, audio: Audio, config: GenerateConfig, source: str, fps: float = FPS,
           prefetch: int = 0) -> None:
    """Encode ``frames`` with the audio; ``prefetch`` > 0: the frames are made in a worker thread while the
    writer encodes (:func:`talkinghead.io.video.write_video`)."""
    from talkinghead.io.video import write_video

    write_video(out, frames, fps, audio=audio, crf=config.crf, prefetch=prefetch,
                metadata={"talkinghead_style": source, "talkinghead_seed": str(config.seed)})

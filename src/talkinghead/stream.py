"""Streaming generation: speech in as it arrives, talking-head frames out, with a fixed small look-ahead.

:class:`Streamer` is the core the Python API (:func:`talkinghead.api.stream`) and the live server
(:mod:`talkinghead.serve.live`) share, independent of any server::

    streamer = Streamer(portrait, load_generator(), load_renderer(), StreamConfig(emotion="happy"))
    for chunk in microphone():                  # float32 [N], 16 kHz mono, any N
        show(streamer.push(chunk))             # the frames made so far (RGB uint8 [H, W, 3]), maybe none
    show(streamer.finish())                    # the rest: round(duration * 25) frames in all

The portrait is fitted and the style chosen when the streamer is built, before any audio. Motion comes from
DreamTalk's chunked sampler (:mod:`talkinghead.motion.dreamtalk.streaming`: ``hop`` frames per chunk,
``lookahead`` frames of look-ahead, audio features with running statistics, causal head-pose centring); the
renderer turns each chunk into frames like :func:`talkinghead.pipeline.generate` does (the face crop at
``size``, pasted back into the whole photo). Head pose = portrait pose + ``head_motion`` x (generated pose -
its running mean). The state kept does not grow with the stream's length.

Style: a style code, an emotion (+ intensity) or a style video as offline; with none, the style bank's
``neutral`` code (the offline default, a style predicted from the whole clip's audio, needs audio that has
not arrived yet); without a style bank, the null style (Eq. 8's unconditional, "neutral" branch).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from talkinghead.config import Config
from talkinghead.errors import TalkingHeadError
from talkinghead.generators import Portrait
from talkinghead.motion.dreamtalk.streaming import MotionChunk, StreamingConfig, StreamingDreamTalk
from talkinghead.pipeline import GenerateConfig, check_style_choice, read_portrait, with_threads

SAMPLE_RATE = 16_000
FPS = 25.0


@dataclass(frozen=True)
class StreamConfig(Config):
    """What a :class:`Streamer` makes. ``hop``: frames per chunk; ``lookahead``: frames of look-ahead (latency
    grows by 40 ms per frame of either); ``size``: face crop (256 or 512; frames are the whole photo);
    ``steps``/``cfg_scale``: the generator's defaults when None; ``seed``: the starting noise; the style: at
    most one of ``emotion`` (+ ``intensity`` 1-3), ``style_video`` (a clip) or ``style`` (a code), none = the
    bank's neutral style; ``head_motion``: scale of the generated head motion (0 = still head); ``threads``:
    torch threads while sampling (1 is fastest on a small CPU, see BENCHMARKS.md)."""

    hop: int = 5
    lookahead: int = 5
    size: int = 256
    steps: int | None = None
    cfg_scale: float | None = None
    seed: int = 0
    emotion: str | None = None
    intensity: int | None = None
    style_video: str | None = None
    style: tuple[float, ...] | None = None
    head_motion: float = 1.0
    threads: int = 1

    presets: ClassVar[dict[str, dict[str, Any]]] = {"tiny": {}, "cpu": {}, "paper": {"size": 512}}

    def __post_init__(self) -> None:
        # what generate shares (size, head motion, threads, steps, guidance, seed) by generate's own checks
        GenerateConfig(steps=self.steps, cfg_scale=self.cfg_scale, seed=self.seed, head_motion=self.head_motion,
                       size=self.size, threads=self.threads)
        check_style_choice(self.style_video, self.emotion, self.style, self.intensity)
        self.sampling(10, 1.0)                   # hop, look-ahead: checked now

    def sampling(self, steps: int, cfg_scale: float) -> StreamingConfig:
        """The chunked sampler's settings, with the generator's ``steps``/``cfg_scale`` where these are None."""
        return StreamingConfig(hop=self.hop, lookahead=self.lookahead,
                               steps=self.steps if self.steps is not None else steps,
                               cfg_scale=self.cfg_scale if self.cfg_scale is not None else cfg_scale, seed=self.seed)

    @property
    def latency_seconds(self) -> float:
        """Audio a chunk waits for beyond its first frame: ``(hop + lookahead - 1)`` frames plus half the pitch
        tracker's window (21 ms); compute time comes on top."""
        from talkinghead.audio.features import YIN_FRAME

        return (self.hop + self.lookahead - 1) / FPS + (YIN_FRAME // 2) / SAMPLE_RATE


def check_chunk(samples: Any) -> np.ndarray:
    """One pushed audio chunk as float32 ``[N]``, or one sentence saying what is wrong with it."""
    if not isinstance(samples, np.ndarray):
        raise TalkingHeadError(f"An audio chunk must be a numpy array of float32 samples, got "
                               f"{type(samples).__name__}.")
    if samples.dtype != np.float32:
        hint = " (divide int16 PCM by 32768)" if samples.dtype.kind in "iu" else ""
        raise TalkingHeadError(f"An audio chunk must hold float32 samples, got {samples.dtype}{hint}.")
    if samples.ndim != 1:
        raise TalkingHeadError(f"An audio chunk must be a 1-D array of mono samples at 16 kHz, got shape "
                               f"{list(samples.shape)}.")
    if samples.size and not np.isfinite(samples).all():
        raise TalkingHeadError("An audio chunk contains NaN or infinite samples.")
    if samples.size and float(np.abs(samples).max()) > 1.0 + 1e-6:
        raise TalkingHeadError("Audio samples must lie between -1 and 1 (divide int16 PCM by 32768).")
    return samples


class Streamer:
    """Portrait + speech pushed in pieces -> frames (RGB uint8, the whole photo), as they are made.

    ``portrait``: a photo (RGB uint8 ``[H, W, 3]`` or a path; fitted here) or a fitted
    :class:`~talkinghead.generators.Portrait`; ``generator``: a loaded DreamTalk generator
    (:func:`talkinghead.generators.load_generator`); ``renderer``: a renderer
    (:func:`talkinghead.generators.load_renderer`, default the registry's). :meth:`push` float32 ``[N]`` 16 kHz
    mono -> the frames now final; :meth:`finish` -> the rest.
    """

    def __init__(self, portrait: Portrait | np.ndarray | str | Path, generator: Any, renderer: Any | None = None,
                 config: StreamConfig | None = None) -> None:
        from talkinghead.generators import load_renderer

        self.config = config or StreamConfig()
        if getattr(generator, "kind", None) != "motion" or not hasattr(generator, "denoiser") \
                or not hasattr(generator, "style_code"):
            name = getattr(generator, "name", type(generator).__name__)
            raise TalkingHeadError(f"The '{name}' generator cannot stream; streaming needs DreamTalk.")
        self.generator = generator
        self.renderer = renderer if renderer is not None and not isinstance(renderer, str) else load_renderer(renderer)
        self.portrait = portrait if isinstance(portrait, Portrait) else Portrait.fit(read_portrait(portrait))
        if self.portrait.image is None:
            raise TalkingHeadError("Streaming needs the portrait's photo.")
        self.style, self.style_source = self._style()
        sampling = generator.sampling
        self.motion = StreamingDreamTalk(generator.denoiser, self.style,
                                         self.config.sampling(sampling.steps, sampling.cfg_scale))
        self.samples_pushed = 0
        self.frames_made = 0
        self.finished = False

    # ------------------------------------------------------------------------------------------ style
    def _style(self) -> tuple[np.ndarray, str]:
        """The style code ``[d]`` and where it came from (see the module docstring)."""
        from talkinghead.generators import Conditions, StyleRequest
        from talkinghead.io.audio import Audio

        cfg, gen = self.config, self.generator
        if cfg.emotion is None and cfg.style_video is None and cfg.style is None:
            if getattr(gen, "style_bank", None) is not None:
                return gen.emotion_style("neutral"), "emotion:neutral"
            return gen.denoiser.null_style(1)[0].detach().numpy(), "null"
        if cfg.style_video is not None and not Path(cfg.style_video).is_file():
            raise TalkingHeadError(f"The style video {cfg.style_video} does not exist.")
        request = StyleRequest(video=Path(cfg.style_video) if cfg.style_video is not None else None,
                               emotion=cfg.emotion, intensity=cfg.intensity,
                               code=None if cfg.style is None else np.asarray(cfg.style, np.float32))
        silence = Audio(np.zeros(SAMPLE_RATE // 25, np.float32))
        style, source = gen.style_code(Conditions(silence, self.portrait, request), gen.sampling)
        return np.asarray(style, np.float32), source

    # ------------------------------------------------------------------------------------------ stream
    def advance(self, samples: np.ndarray) -> MotionChunk:
        """Push audio; the motion of the frames now final (render it with :meth:`render`)."""
        if self.finished:
            raise TalkingHeadError("The stream has ended; start a new one.")
        x = check_chunk(samples)
        self.samples_pushed += x.size
        return with_threads(self.config.threads, lambda: self.motion.push(x))

    def flush(self) -> MotionChunk:
        """End the audio; the motion of the remaining frames."""
        if self.finished:
            raise TalkingHeadError("The stream has already ended.")
        if self.samples_pushed == 0:
            raise TalkingHeadError("No audio was pushed, so there is nothing to animate.")
        self.finished = True
        return with_threads(self.config.threads, self.motion.finish)

    def render(self, chunk: MotionChunk) -> Iterator[np.ndarray]:
        """Frames ``[H, W, 3]`` uint8 of a motion chunk, lazily: head pose = portrait pose + ``head_motion`` x
        (generated pose - its running mean), rendered at ``size`` and pasted back into the photo."""
        from talkinghead.sequence import MotionSequence

        if len(chunk) == 0:
            return
        base = np.asarray(self.portrait.pose, np.float32)[None]
        pose = base + np.float32(self.config.head_motion) * chunk.pose_offset
        sequence = MotionSequence(chunk.expression, pose, self.generator.layout, FPS, self.portrait.identity,
                                  f"stream:{self.style_source}")
        for frame in self.renderer.render(self.portrait, sequence, self.config.size):
            self.frames_made += 1
            yield frame

    def push(self, samples: np.ndarray) -> list[np.ndarray]:
        """``samples`` float32 ``[N]`` (16 kHz mono, any ``N``) -> the frames made now (maybe none)."""
        return list(self.render(self.advance(samples)))

    def finish(self) -> list[np.ndarray]:
        """The audio has ended: the remaining frames (``round(duration * 25)`` frames in all)."""
        return list(self.render(self.flush()))

    # ------------------------------------------------------------------------------------------ state
    @property
    def frames_heard(self) -> int:
        """Video frames whose audio has been analysed (the frames made trail it by the look-ahead)."""
        return self.motion.frames_heard

    @property
    def kept_values(self) -> int:
        """How many numbers the stream's state holds; bounded whatever the stream's length."""
        return self.motion.kept_values


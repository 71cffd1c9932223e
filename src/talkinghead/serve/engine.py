"""The warm part of the server: the models, loaded once, and one job run through the generate pipeline.

:class:`Engine` loads the default generator (DreamTalk, or the one a ``--checkpoint`` folder names) and the default
renderer (warp) when the server starts, so no request waits for them; another registered generator or renderer
(``api.models()``) is loaded the first time a request names it and kept. ``engine.generator`` and
``engine.renderer`` are the warm defaults (the live-streaming page uses them too).

:meth:`Engine.run` hands a checked :class:`Request` to :func:`talkinghead.pipeline.generate` with the loaded models
(nothing reloads) and writes the job's outputs together (``io.files.atomic_outputs``: all appear, or none):

- ``video.mp4``: H.264 + AAC, the portrait speaking;
- ``motion.npz``: the face motion (:meth:`MotionSequence.save`), motion generators only;
- ``motion.csv``: the same motion as ARKit / Live Link blendshape curves (``face.export``), motion generators only.

Progress: the pipeline shows its own only on a terminal, so the engine watches what it can see from outside:
the generator is wrapped so its start and end are the stages ``motion`` (or ``frames``), and the renderer (or a video
generator's frames) is wrapped so each frame counts against the known frame count. Stages in order: ``loading``,
``motion``, ``rendering``, ``encoding``, ``done`` (``frames`` instead of ``motion``/``rendering`` for a video
generator). The same wrappers enforce the job's time limit, cooperatively: past ``deadline`` (``time.monotonic()``
seconds) the next frame or stage raises ``TalkingHeadError("The job ran past its time limit of N s.")``, the
pipeline unwinds, and its atomic outputs leave nothing behind.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from talkinghead.config import Config
from talkinghead.errors import TalkingHeadError
from talkinghead.pipeline import GenerateConfig, GenerateInputs

VIDEO = "video.mp4"
MOTION_NPZ = "motion.npz"
MOTION_CSV = "motion.csv"
OUTPUTS = (VIDEO, MOTION_NPZ, MOTION_CSV)

#: ``on_progress(stage, fraction)``: a job's stage and its progress 0..1; it may raise to stop the job (a cancel)
Progress = Callable[[str, float], None]

# where each stage starts on the job's 0..1 progress (rendering runs from RENDER_START to RENDER_END frame by frame)
RENDER_START, RENDER_END = 0.3, 0.95
STAGE_START = {"loading": 0.0, "motion": 0.1, "frames": 0.1, "rendering": RENDER_START, "encoding": RENDER_END,
               "done": 1.0}


@dataclass(frozen=True)
class EngineConfig(Config):
    """Which models the server keeps warm: the generator in ``checkpoint`` (a folder) or the registered ``model``
    (default: the registry's, DreamTalk), with the default renderer; ``threads``: torch threads while a job samples
    (1: fastest on a 2-core CPU, BENCHMARKS.md)."""

    checkpoint: str | None = None
    model: str | None = None
    threads: int = 1


@dataclass(frozen=True)
class Request:
    """A checked job (:func:`talkinghead.serve.uploads.accept` makes it): the portrait, and the speech as an audio
    file or text (exactly one), stored in the job's folder under server-made names; the optional style video; the
    choices and the pipeline's :class:`GenerateConfig` (already checked)."""

    image: Path
    audio: Path | None = None
    text: str | None = None
    style_video: Path | None = None
    emotion: str | None = None
    intensity: int | None = None
    transcript: str | None = None
    model: str | None = None
    renderer: str | None = None
    config: GenerateConfig = field(default_factory=GenerateConfig)

    def inputs(self) -> GenerateInputs:
        """The pipeline's view of the request."""
        return GenerateInputs(self.image, self.audio, self.text, self.style_video, self.emotion, self.intensity,
                              transcript=self.transcript)


@dataclass(frozen=True)
class Outcome:
    """What a finished job made: ``files`` (names in the job's folder, :data:`OUTPUTS`), ``num_frames`` at 25 fps,
    ``seconds`` of speech, where the style came from and the pipeline's per-stage ``timings`` (seconds)."""

    files: tuple[str, ...]
    num_frames: int
    seconds: float
    style_source: str
    timings: dict[str, float]


def _seconds(limit: float) -> str:
    """A time limit as a person writes it: ``300``, ``2.5``, ``0.01``."""
    return f"{round(limit) if limit >= 1 else round(limit, 2):g}"


class Watch:
    """A job's stage reporter and its time limit: ``stage(name)`` reports the start of a stage, ``frames(items,
    total)`` passes frames through counting them; both raise one sentence once ``time.monotonic()`` is past
    ``deadline``."""

    def __init__(self, on_progress: Progress, deadline: float) -> None:
        self.on_progress = on_progress
        self.deadline = deadline
        self.limit = _seconds(max(deadline - time.monotonic(), 0.0))

    def check(self) -> None:
        if time.monotonic() > self.deadline:
            raise TalkingHeadError(f"The job ran past its time limit of {self.limit} s.")

    def stage(self, name: str, fraction: float | None = None) -> None:
        self.check()
        self.on_progress(name, STAGE_START[name] if fraction is None else fraction)

    def frames(self, items: Iterable[np.ndarray], total: int, stage: str = "rendering") -> Iterator[np.ndarray]:
        """``items`` (frames ``[H, W, 3]``), each reported as ``stage`` at its share of ``total``; ``encoding`` after
        the last one (the writer then finishes the streams)."""
        start = STAGE_START[stage]
        self.stage(stage, start)
        for count, frame in enumerate(items, 1):
            self.check()
            yield frame
            self.on_progress(stage, start + (RENDER_END - start) * min(count / max(total, 1), 1.0))
        self.stage("encoding")


class WatchedRenderer:
    """A renderer whose ``render(...)`` yields the frames of the wrapped one through :meth:`Watch.frames`."""

    def __init__(self, renderer: Any, watch: Watch) -> None:
        self.inner = renderer
        self.watch = watch

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def render(self, portrait: Any, motion: Any, size: int, **options: Any) -> Iterator[np.ndarray]:
        return self.watch.frames(self.inner.render(portrait, motion, size, **options), len(motion))


class WatchedGenerator:
    """A generator whose ``generate(...)`` reports its start (``motion``, or ``frames`` for a video generator) and
    checks the time limit before and after; a video generator's frames go through :meth:`Watch.frames`."""

    def __init__(self, generator: Any, watch: Watch) -> None:
        self.inner = generator
        self.watch = watch

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def generate(self, conditions: Any, *size: int) -> Any:
        if self.inner.kind == "video":
            self.watch.stage("frames")
            made = self.inner.generate(conditions, *size)
            return dataclasses.replace(made, frames=self.watch.frames(made.frames, made.num_frames, "frames"))
        self.watch.stage("motion")
        made = self.inner.generate(conditions)
        self.watch.check()
        return made


class Engine:
    """The loaded models and the job runner. ``generator`` and ``renderer``: the warm defaults; ``models``: the
    registered generators and renderers (``api.models()`` rows, without server paths)."""

    def __init__(self, config: EngineConfig | None = None) -> None:
        from talkinghead.api import models
        from talkinghead.generators import load_generator, load_renderer

        self.config = config or EngineConfig()
        self.generator: Any = load_generator(self.config.checkpoint, self.config.model)
        self.renderer: Any = load_renderer()
        self.models: list[dict[str, Any]] = [{k: v for k, v in row.items() if k != "weights"} for row in models()]
        self._generators: dict[str, Any] = {self.generator.name: self.generator}
        self._renderers: dict[str, Any] = {self.renderer.name: self.renderer}
        self._paired: dict[str, Any] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------------------------------ choices

    def _row(self, name: str, kinds: tuple[str, ...]) -> dict[str, Any] | None:
        return next((r for r in self.models if r["name"] == name and r["kind"] in kinds), None)

    def check_choice(self, model: str | None, renderer: str | None, emotion: bool = False,
                     style_video: bool = False) -> None:
        """One sentence when the request names a model or renderer this server cannot use, or asks a model for a
        control (an emotion, a style video) it does not have."""
        name = model or self.generator.name
        row = self._row(name, ("motion", "video"))
        if model is not None and model not in self._generators:
            if row is None:
                choices = ", ".join(r["name"] for r in self.models if r["kind"] != "renderer" and r["ready"])
                raise TalkingHeadError(f"There is no model called '{model}'; choose one of: {choices}.")
            if not row["ready"]:
                raise TalkingHeadError(f"The model '{model}' has no weights installed on this server.")
        capabilities = row["capabilities"] if row is not None else list(getattr(self.generator, "capabilities", ()))
        kind = row["kind"] if row is not None else self.generator.kind
        for asked, capability, what in ((emotion, "emotion", "emotion"), (style_video, "style-video", "style video")):
            if asked and capability not in capabilities:
                raise TalkingHeadError(f"The '{name}' model takes no {what}.")
        if renderer is None:
            return
        if kind != "motion":
            raise TalkingHeadError(f"The '{name}' model makes frames itself; it takes no renderer.")
        if self._row(renderer, ("renderer",)) is None:
            choices = ", ".join(r["name"] for r in self.models if r["kind"] == "renderer")
            raise TalkingHeadError(f"There is no renderer called '{renderer}'; choose one of: {choices}.")

    def generator_for(self, name: str | None) -> Any:
        """The generator ``name`` (None: the warm default), loaded on first use and kept."""
        from talkinghead.generators import load_named

        if name is None:
            return self.generator
        with self._lock:
            if name not in self._generators:
                self._generators[name] = load_named(name)
            return self._generators[name]

    def renderer_for(self, name: str | None, generator: Any) -> Any | None:
        """The renderer ``name``; without one, the generator's own (its ``paired_renderer``, e.g. FD2Talk's UNet)
        or the warm default. None for a video generator."""
        from talkinghead.generators import load_renderer

        if generator.kind != "motion":
            return None
        with self._lock:
            if name is None:
                paired = getattr(generator, "paired_renderer", None)
                if paired is None:
                    return self.renderer
                if generator.name not in self._paired:
                    self._paired[generator.name] = paired()
                return self._paired[generator.name] or self.renderer
            if name not in self._renderers:
                self._renderers[name] = load_renderer(name)
            return self._renderers[name]

    # ---------------------------------------------------------------------------------------------- run

    def run(self, request: Request, folder: Path, on_progress: Progress, deadline: float) -> Outcome:
        """Generate ``request`` into ``folder`` (:data:`OUTPUTS`), reporting ``on_progress(stage, fraction)``;
        past ``deadline`` (``time.monotonic()``) one sentence stops it and nothing is written."""
        from talkinghead.face.export import export_arkit_csv
        from talkinghead.io.files import atomic_outputs
        from talkinghead.pipeline import generate

        watch = Watch(on_progress, deadline)
        watch.stage("loading")
        generator = self.generator_for(request.model)
        renderer = self.renderer_for(request.renderer, generator)
        watch.check()
        names = OUTPUTS if generator.kind == "motion" else (VIDEO,)
        config = dataclasses.replace(request.config, threads=self.config.threads)
        with atomic_outputs(*(folder / n for n in names)) as temps:
            result = generate(request.inputs(), temps[0], config, models=WatchedGenerator(generator, watch),
                              renderer=None if renderer is None else WatchedRenderer(renderer, watch))
            if len(temps) == 3:
                assert result.motion is not None
                result.motion.save(temps[1])
                export_arkit_csv(result.motion, temps[2])
        on_progress("done", 1.0)
        return Outcome(names, result.num_frames, round(result.audio.duration, 3), result.style_source,
                       {k: round(v, 3) for k, v in result.timings.items()})

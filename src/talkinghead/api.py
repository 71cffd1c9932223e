"""The public Python API: a talking-head video from a portrait and speech in one call.

>>> from talkinghead import api
>>> result = api.generate("me.jpg", "speech.wav", output="out.mp4", emotion="happy", intensity=3)
>>> result.output, result.num_frames, result.timings

Any registered generator (``api.models()`` lists them) is chosen by ``model=NAME`` or by a checkpoint
folder (``checkpoint=DIR``, whose manifest names its generator). Styles (DreamTalk 3.2, 4.5) can be made,
kept and mixed as plain arrays with generators that have style codes:

>>> models = api.load_models()                       # weights/dreamtalk, or load_models("my/ckpts")
>>> calm = api.style_from_emotion("neutral", models=models)
>>> angry = api.style_from_video("angry_clip.mp4", models=models)
>>> api.generate("me.jpg", "speech.wav", output="mix.mp4", style=api.mix_styles(calm, angry, 0.3), models=models)

Every function raises :class:`talkinghead.errors.TalkingHeadError` (one sentence) on bad input.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from talkinghead.errors import TalkingHeadError
from talkinghead.io.audio import Audio
from talkinghead.pipeline import GenerateConfig, GenerateInputs, GenerateResult
from talkinghead.pipeline import generate as _run

DEMO_TEXT = ("Hello! I am a talking head, animated on your computer from a single photograph "
             "and a few seconds of speech.")
DEMO_OUTPUT = Path("out") / "demo.mp4"

__all__ = [
    "DEMO_TEXT", "GenerateResult", "demo", "generate", "generate_motion", "load_models", "mix_styles", "models",
    "predict_style", "stream", "style_from_emotion", "style_from_video",
]


def load_models(checkpoint: str | Path | None = None, model: str | None = None) -> Any:
    """A generator, loaded once for many calls: the one in ``checkpoint`` (a folder), else the registered
    ``model`` with its shipped weights (default: DreamTalk, ``weights/dreamtalk``)."""
    from talkinghead.generators import load_generator

    return load_generator(checkpoint, model)


def models() -> list[dict[str, Any]]:
    """The registered generators and renderers: name, kind, capabilities, whether ready, summary."""
    from talkinghead.generators import installed

    return installed()


def generate(image: str | Path | np.ndarray, audio: str | Path | Audio | None = None, *, text: str | None = None,
             output: str | Path = "out.mp4", style_video: str | Path | None = None, emotion: str | None = None,
             intensity: int | None = None, style: np.ndarray | None = None, style_mix: str | None = None,
             mix_alpha: float = 0.5, cfg_scale: float | None = None, steps: int | None = None, seed: int = 0,
             head_motion: float = 1.0, size: int = 256, face_index: int | None = None,
             transcript: str | None = None, checkpoint: str | Path | None = None, model: str | None = None,
             renderer: str | None = None, models: Any | None = None, speed: float | None = None,
             face_region: tuple[float, float, float, float] | None = None) -> GenerateResult:
    """Animate ``image`` (path or RGB uint8 array) with ``audio`` (path or :class:`Audio`) or ``text``
    (built-in TTS) and write an mp4 to ``output``. The style comes from ``style_video``, ``emotion``
    (+ ``intensity`` 1-3), a ready ``style`` code, or, with none of them, the generator chooses (DreamTalk
    predicts it from the audio and the portrait). ``steps``/``cfg_scale``: the generator's defaults when
    None. ``speed``/``face_region``: EMO's head speed (degrees per frame) and face region (photo pixels). See
    :class:`talkinghead.pipeline.GenerateConfig`."""
    config = GenerateConfig(steps=steps, cfg_scale=cfg_scale, seed=seed, head_motion=head_motion, size=size)
    inputs = GenerateInputs(image, audio, text, style_video, emotion, intensity, style, style_mix, mix_alpha,
                            face_index, transcript, speed, face_region)
    return _run(inputs, output, config, models=models, checkpoint=checkpoint, model=model, renderer=renderer)


def generate_motion(image: str | Path | np.ndarray, audio: str | Path | Audio | None = None, *,
                    text: str | None = None, style_video: str | Path | None = None, emotion: str | None = None,
                    intensity: int | None = None, style: np.ndarray | None = None, cfg_scale: float | None = None,
                    steps: int | None = None, seed: int = 0, head_motion: float = 1.0,
                    face_index: int | None = None, transcript: str | None = None,
                    checkpoint: str | Path | None = None, model: str | None = None,
                    models: Any | None = None) -> GenerateResult:
    """Like :func:`generate` without rendering: ``result.motion`` holds the face motion (save it with
    ``result.motion.save("motion.npz")``; render it later with ``talkinghead render``). Motion generators
    only. ``transcript``: what the audio says, for generators that read it (Dimitra)."""
    config = GenerateConfig(steps=steps, cfg_scale=cfg_scale, seed=seed, head_motion=head_motion)
    inputs = GenerateInputs(image, audio, text, style_video, emotion, intensity, style, face_index=face_index,
                            transcript=transcript)
    return _run(inputs, None, config, models=models, checkpoint=checkpoint, model=model)


def stream(image: str | Path | np.ndarray, chunks: Iterable[np.ndarray], *, emotion: str | None = None,
           intensity: int | None = None, style: np.ndarray | None = None, style_video: str | Path | None = None,
           seed: int = 0, head_motion: float = 1.0, size: int = 256, steps: int | None = None, lookahead: int = 5,
           models: Any | None = None, renderer: Any | None = None) -> Iterator[np.ndarray]:
    """Frames while the speech arrives: ``chunks`` are float32 ``[N]`` pieces of 16 kHz mono audio (any
    ``N``, any number, e.g. from a microphone), and frames (RGB uint8 ``[H, W, 3]``, the whole photo, 25 fps)
    are yielded as soon as they are made, ``lookahead`` frames (40 ms each) plus one chunk of 5 frames behind
    the audio; after the last chunk the rest follow, ``round(duration * 25)`` in all. Memory stays bounded
    for any length. DreamTalk only (``models``: a loaded generator, default the shipped one). The style:
    ``emotion`` (+ ``intensity``), ``style_video``, a ``style`` code, or none (the style bank's neutral
    style). See docs/streaming.md.

    >>> from talkinghead.io.audio import load_audio
    >>> speech = load_audio("speech.wav").samples                           # float32, 16 kHz mono
    >>> pieces = (speech[i:i + 640] for i in range(0, len(speech), 640))    # 40 ms at a time
    >>> for frame in api.stream("me.jpg", pieces, emotion="happy"):
    ...     show(frame)
    """
    from talkinghead.stream import StreamConfig, Streamer

    config = StreamConfig(lookahead=lookahead, size=size, steps=steps, seed=seed, emotion=emotion,
                          intensity=intensity, style_video=None if style_video is None else str(style_video),
                          style=None if style is None else tuple(float(v) for v in np.asarray(style).reshape(-1)),
                          head_motion=head_motion)
    streamer = Streamer(image, models if models is not None else load_models(), renderer, config)
    for chunk in chunks:
        yield from streamer.push(chunk)
    yield from streamer.finish()


def _styled(models: Any | None, checkpoint: str | Path | None, what: str) -> Any:
    """A loaded generator that has style codes (DreamTalk), or one sentence saying it has none."""
    generator = models if models is not None else load_models(checkpoint)
    if not hasattr(generator, "encode_reference"):
        raise TalkingHeadError(f"The '{generator.name}' generator has no style codes, so it cannot {what}.")
    return generator


def style_from_video(path: str | Path, *, checkpoint: str | Path | None = None,
                     models: Any | None = None) -> np.ndarray:
    """The style code ``[d]`` of a reference video (tracked, then the generator's style encoder)."""
    from talkinghead.face.track import track_path

    if not Path(path).is_file():
        raise TalkingHeadError(f"The style video {path} does not exist.")
    generator = _styled(models, checkpoint, "encode a style video")
    return np.asarray(generator.encode_reference(track_path(path, fps=25.0)))


def style_from_emotion(emotion: str, intensity: int | None = None, *, checkpoint: str | Path | None = None,
                       models: Any | None = None) -> np.ndarray:
    """The style code ``[d]`` of an emotion (and intensity 1-3) from the checkpoint's style bank."""
    return np.asarray(_styled(models, checkpoint, "choose a style by emotion").emotion_style(emotion, intensity))


def predict_style(image: str | Path | np.ndarray, audio: str | Path | Audio, *, seed: int = 0,
                  checkpoint: str | Path | None = None, models: Any | None = None) -> np.ndarray:
    """The style code ``[d]`` the style predictor samples for this speech and portrait (DreamTalk Eq. 4)."""
    from talkinghead.generators import Portrait
    from talkinghead.pipeline import conditions_for, read_inputs

    generator = _styled(models, checkpoint, "predict a style")
    if getattr(generator, "style_predictor", None) is None:
        raise TalkingHeadError("These checkpoints have no style predictor.")
    inputs = GenerateInputs(image, audio)
    picture, speech = read_inputs(inputs, None)
    conditions = conditions_for(inputs, speech, Portrait.fit(picture), GenerateConfig(seed=seed))
    return np.asarray(generator.predict_style(conditions))


def mix_styles(a: np.ndarray, b: np.ndarray, alpha: float) -> np.ndarray:
    """``(1 - alpha) a + alpha b`` (DreamTalk 4.5, Fig. 11); alpha outside [0, 1] extrapolates."""
    from talkinghead.diffusion.guidance import interpolate_styles

    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    if a.shape != b.shape or a.ndim != 1:
        raise TalkingHeadError(f"Style codes to mix must be two vectors of one size, got {a.shape} and {b.shape}.")
    return interpolate_styles(torch.from_numpy(a), torch.from_numpy(b), float(alpha)).numpy()


def demo(output: str | Path = DEMO_OUTPUT, *, checkpoint: str | Path | None = None, size: int = 256,
         seed: int = 0, model: str | None = None) -> GenerateResult:
    """The README's first command: scikit-image's astronaut photograph speaking :data:`DEMO_TEXT`
    (built-in TTS), style predicted from the speech and portrait, written to ``out/demo.mp4``."""
    from skimage import data

    return generate(data.astronaut(), text=DEMO_TEXT, output=output, size=size, seed=seed, checkpoint=checkpoint,
                    model=model)

"""The public Python API: a talking-head video from a portrait and speech in one call.

>>> from talkinghead import api
>>> result = api.generate("me.jpg", "speech.wav", output="out.mp4", emotion="happy", intensity=3)
>>> result.output, result.num_frames, result.timings

Styles (DreamTalk 3.2, 4.5) can be made, kept and mixed as plain arrays:

>>> models = api.load_models()                       # weights/dreamtalk, or load_models("my/ckpts")
>>> calm = api.style_from_emotion("neutral", models=models)
>>> angry = api.style_from_video("angry_clip.mp4", models=models)
>>> api.generate("me.jpg", "speech.wav", output="mix.mp4", style=api.mix_styles(calm, angry, 0.3), models=models)

Every function raises :class:`talkinghead.errors.TalkingHeadError` (one sentence) on bad input.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from talkinghead.io.audio import Audio
from talkinghead.pipeline import DreamTalkModels, GenerateConfig, GenerateInputs, GenerateResult, resolve_style
from talkinghead.pipeline import generate as _run

DEMO_TEXT = ("Hello! I am a talking head, animated on your computer from a single photograph "
             "and a few seconds of speech.")
DEMO_OUTPUT = Path("out") / "demo.mp4"

__all__ = [
    "DEMO_TEXT", "GenerateResult", "demo", "generate", "generate_motion", "load_models", "mix_styles",
    "predict_style", "style_from_emotion", "style_from_video",
]


def load_models(checkpoint: str | Path | None = None) -> DreamTalkModels:
    """The DreamTalk models of a checkpoint folder (default: the shipped ``weights/dreamtalk``)."""
    return DreamTalkModels.load(checkpoint)


def generate(image: str | Path | np.ndarray, audio: str | Path | Audio | None = None, *, text: str | None = None,
             output: str | Path = "out.mp4", style_video: str | Path | None = None, emotion: str | None = None,
             intensity: int | None = None, style: np.ndarray | None = None, style_mix: str | None = None,
             mix_alpha: float = 0.5, cfg_scale: float = 1.0, steps: int = 10, seed: int = 0,
             head_motion: float = 1.0, size: int = 256, face_index: int | None = None,
             checkpoint: str | Path | None = None, models: DreamTalkModels | None = None) -> GenerateResult:
    """Animate ``image`` (path or RGB uint8 array) with ``audio`` (path or :class:`Audio`) or ``text``
    (built-in TTS) and write an mp4 to ``output``. The style comes from ``style_video``, ``emotion``
    (+ ``intensity`` 1-3), a ready ``style`` code, or, with none of them, is predicted from the audio and
    the portrait. See :class:`talkinghead.pipeline.GenerateConfig` for the sampling settings."""
    config = GenerateConfig(steps=steps, cfg_scale=cfg_scale, seed=seed, head_motion=head_motion, size=size)
    inputs = GenerateInputs(image, audio, text, style_video, emotion, intensity, style, style_mix, mix_alpha,
                            face_index)
    return _run(inputs, output, config, models=models, checkpoint=checkpoint)


def generate_motion(image: str | Path | np.ndarray, audio: str | Path | Audio | None = None, *,
                    text: str | None = None, style_video: str | Path | None = None, emotion: str | None = None,
                    intensity: int | None = None, style: np.ndarray | None = None, cfg_scale: float = 1.0,
                    steps: int = 10, seed: int = 0, head_motion: float = 1.0,
                    checkpoint: str | Path | None = None, models: DreamTalkModels | None = None) -> GenerateResult:
    """Like :func:`generate` without rendering: ``result.motion`` holds the face motion (save it with
    ``result.motion.save("motion.npz")``; render it later with ``talkinghead render``)."""
    config = GenerateConfig(steps=steps, cfg_scale=cfg_scale, seed=seed, head_motion=head_motion)
    inputs = GenerateInputs(image, audio, text, style_video, emotion, intensity, style)
    return _run(inputs, None, config, models=models, checkpoint=checkpoint)


def style_from_video(path: str | Path, *, checkpoint: str | Path | None = None,
                     models: DreamTalkModels | None = None) -> np.ndarray:
    """The style code ``[d]`` of a reference video (tracked, then the denoiser's style encoder)."""
    if not Path(path).is_file():
        from talkinghead.errors import TalkingHeadError

        raise TalkingHeadError(f"The style video {path} does not exist.")
    return resolve_style(models or load_models(checkpoint), style_video=path)[0]


def style_from_emotion(emotion: str, intensity: int | None = None, *, checkpoint: str | Path | None = None,
                       models: DreamTalkModels | None = None) -> np.ndarray:
    """The style code ``[d]`` of an emotion (and intensity 1-3) from the checkpoint's style bank."""
    return resolve_style(models or load_models(checkpoint), emotion=emotion, intensity=intensity)[0]


def predict_style(image: str | Path | np.ndarray, audio: str | Path | Audio, *, seed: int = 0,
                  checkpoint: str | Path | None = None, models: DreamTalkModels | None = None) -> np.ndarray:
    """The style code ``[d]`` the style predictor samples for this speech and portrait (DreamTalk Eq. 4)."""
    from talkinghead.audio.features import extract_features
    from talkinghead.errors import TalkingHeadError
    from talkinghead.face.model import fit_image
    from talkinghead.pipeline import feature_spec_of, read_inputs, select_features

    models = models or load_models(checkpoint)
    if models.style_predictor is None:
        raise TalkingHeadError("These checkpoints have no style predictor.")
    picture, speech = read_inputs(GenerateInputs(image, audio), None)
    spec = feature_spec_of(models.style_predictor, "style predictor")
    features = select_features(extract_features(speech, spec), spec, models.style_predictor, "style predictor")
    descriptor = fit_image(picture).identity["descriptor"]
    return resolve_style(models, audio_features=features, descriptor=descriptor, config=GenerateConfig(seed=seed))[0]


def mix_styles(a: np.ndarray, b: np.ndarray, alpha: float) -> np.ndarray:
    """``(1 - alpha) a + alpha b`` (DreamTalk 4.5, Fig. 11); alpha outside [0, 1] extrapolates."""
    from talkinghead.diffusion.guidance import interpolate_styles
    from talkinghead.errors import TalkingHeadError

    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    if a.shape != b.shape or a.ndim != 1:
        raise TalkingHeadError(f"Style codes to mix must be two vectors of one size, got {a.shape} and {b.shape}.")
    return interpolate_styles(torch.from_numpy(a), torch.from_numpy(b), float(alpha)).numpy()


def demo(output: str | Path = DEMO_OUTPUT, *, checkpoint: str | Path | None = None, size: int = 256,
         seed: int = 0) -> GenerateResult:
    """The README's first command: scikit-image's astronaut photograph speaking :data:`DEMO_TEXT`
    (built-in TTS), style predicted from the speech and portrait, written to ``out/demo.mp4``."""
    from skimage import data

    return generate(data.astronaut(), text=DEMO_TEXT, output=output, size=size, seed=seed, checkpoint=checkpoint)

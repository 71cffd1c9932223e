"""Randomly initialised DreamTalk checkpoints with a real audio feature spec and the ARKit layout,
saved the way training saves them, so the whole generate pipeline runs on them (tests, benchmarks)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from talkinghead.audio.spec import AudioFeatureSpec
from talkinghead.audio.tts import EMOTIONS
from talkinghead.face.model import ARKIT_LAYOUT, DESCRIPTOR_NAMES
from talkinghead.motion.dreamtalk import DenoiserConfig, DreamTalkDenoiser, StylePredictor, StylePredictorConfig
from talkinghead.motion.dreamtalk.style_bank import StyleBank, style_encoder_fingerprint
from talkinghead.training.data import choose_features


def audio_spec_dict(spec: AudioFeatureSpec, role: str) -> dict:
    """What MotionCorpus.audio_spec() stores for a dataset built with ``spec``."""
    names = choose_features(list(spec.kinds), role)
    return {"names": list(names), "dims": [spec.kind_dims(n) for n in names],
            "dataset": {"spec": spec.to_dict(), "kinds": {k: spec.kind_dims(k) for k in spec.kinds}}, "fps": 25.0}


def make_random_checkpoints(folder: str | Path, preset: str = "tiny", feature_preset: str = "tiny",
                            seed: int = 0, bank: bool = True) -> Path:
    folder = Path(folder)
    spec = AudioFeatureSpec.preset(feature_preset)
    motion_spec, style_spec = audio_spec_dict(spec, "motion"), audio_spec_dict(spec, "style")
    torch.manual_seed(seed)
    den = DreamTalkDenoiser(DenoiserConfig.preset(preset, audio_dim=sum(motion_spec["dims"]),
                                                  expression_dim=ARKIT_LAYOUT.size),
                            ARKIT_LAYOUT.to_dict(), motion_spec)
    # motion statistics in the range of real blendshapes / poses, so outputs are renderable
    mean = torch.cat([torch.full((ARKIT_LAYOUT.size,), 0.1), torch.zeros(6)])
    std = torch.cat([torch.full((ARKIT_LAYOUT.size,), 0.05), torch.tensor([0.03, 0.03, 0.02, 0.01, 0.01, 0.01])])
    den.motion_norm.set_stats(mean, std)
    den.save_pretrained(folder / "denoiser")
    pred = StylePredictor(StylePredictorConfig.preset(preset, audio_dim=sum(style_spec["dims"]),
                                                      identity_dim=len(DESCRIPTOR_NAMES),
                                                      style_dim=den.config.d_model),
                          ARKIT_LAYOUT.to_dict(), dict(style_spec, denoiser_style_dim=den.config.d_model))
    pred.save_pretrained(folder / "style_predictor")
    if bank:
        rng = np.random.default_rng(seed)
        codes = {(e, i): rng.normal(size=den.config.d_model).astype(np.float32) for e in EMOTIONS for i in (1, 2, 3)}
        StyleBank(codes, dict.fromkeys(codes, 1), style_encoder_fingerprint(den.eval())).save(folder)
    return folder

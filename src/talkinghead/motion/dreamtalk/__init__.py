"""DreamTalk (Ma et al.): diffusion over face motion with a style reference, a style-aware lip expert and
a diffusion style predictor. One module per component:

- :mod:`.audio_encoder` (3.2, App. C.1) audio-window transformer encoder;
- :mod:`.style_encoder` (3.2, App. C.1) style encoder with self-attention pooling;
- :mod:`.denoiser` (3.2, Eq. 2) the denoising network ``E_theta``;
- :mod:`.lip_expert` (3.2, Eq. 3/7/10, Fig. 15) the style-aware lip expert;
- :mod:`.style_predictor` (3.2, Eq. 4/9) the diffusion style predictor ``S_phi``;
- :mod:`.mouth` mouth-vertex basis from the face model;
- :mod:`.sampling` (3.3, App. C.4) DDIM/DDPM sampling with classifier-free guidance;
- :mod:`.training` the solvers of the lip expert, denoiser and style predictor (3.3 "Training").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from talkinghead.lazy import lazy_getattr

if TYPE_CHECKING:
    from talkinghead.motion.dreamtalk.denoiser import DenoiserConfig, DreamTalkDenoiser
    from talkinghead.motion.dreamtalk.lip_expert import LipExpertConfig, StyleAwareLipExpert, expert_loss, sync_loss
    from talkinghead.motion.dreamtalk.sampling import generate_motion, predict_style
    from talkinghead.motion.dreamtalk.style_predictor import StylePredictor, StylePredictorConfig

# Imported on first use (PEP 562): `talkinghead train --help` reads .training's declarations without torch.
_WHERE = {
    "DenoiserConfig": "denoiser", "DreamTalkDenoiser": "denoiser",
    "LipExpertConfig": "lip_expert", "StyleAwareLipExpert": "lip_expert", "expert_loss": "lip_expert",
    "sync_loss": "lip_expert", "generate_motion": "sampling", "predict_style": "sampling",
    "StylePredictor": "style_predictor", "StylePredictorConfig": "style_predictor",
}

__all__ = [
    "DenoiserConfig",
    "DreamTalkDenoiser",
    "LipExpertConfig",
    "StyleAwareLipExpert",
    "StylePredictor",
    "StylePredictorConfig",
    "expert_loss",
    "generate_motion",
    "predict_style",
    "sync_loss",
]


__getattr__ = lazy_getattr(__name__, _WHERE)

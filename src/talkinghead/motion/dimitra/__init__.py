"""Dimitra (Chopin et al.): audio-driven talking heads with a conditional Motion Diffusion Transformer.
One module per component:

- :mod:`.attention` (III-B.3, [24]) efficient attention (Shen et al., WACV 2021) and the pre-norm
  transformer layers built on it;
- :mod:`.model` (III-B.2, III-B.3) the cMDT ``CMDT`` with its config ``CMDTConfig``, its condition
  encoders (speech features, phonemes, transcript, first frame) and ``CMDTConditions``;
- :mod:`.data` (III-B.4) the training windows of the three parts (lips, face, pose);
- :mod:`.phonemes` the frame-level phoneme recogniser (the project's addition to III-B.2);
- :mod:`.generator` (III-B.4) ``DimitraGenerator``, the motion generator: the three cMDTs sampled window by
  window, each window conditioned on the frame before it, with its settings ``DimitraSampling``;
- :mod:`.seams` the recursion's windows and ``seam_jumps``, the jump at window joins against ordinary frames.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from talkinghead.lazy import lazy_getattr

if TYPE_CHECKING:
    from talkinghead.motion.dimitra.attention import EfficientAttention, efficient_attention
    from talkinghead.motion.dimitra.generator import DimitraGenerator, DimitraSampling
    from talkinghead.motion.dimitra.model import CMDT, CMDTConditions, CMDTConfig, transcript_tokens
    from talkinghead.motion.dimitra.seams import seam_jumps

# Imported on first use (PEP 562), so importing the package pays for no torch.
_WHERE = {
    "EfficientAttention": "attention", "efficient_attention": "attention",
    "CMDT": "model", "CMDTConditions": "model", "CMDTConfig": "model", "transcript_tokens": "model",
    "DimitraGenerator": "generator", "DimitraSampling": "generator", "seam_jumps": "seams",
}

__all__ = ["CMDT", "CMDTConditions", "CMDTConfig", "DimitraGenerator", "DimitraSampling", "EfficientAttention",
           "efficient_attention", "seam_jumps", "transcript_tokens"]

__getattr__ = lazy_getattr(__name__, _WHERE)

"""Dimitra (Chopin et al.): audio-driven talking heads with a conditional Motion Diffusion Transformer.
One module per component:

- :mod:`.attention` (III-B.3, [24]) efficient attention (Shen et al., WACV 2021) and the pre-norm
  transformer layers built on it;
- :mod:`.model` (III-B.2, III-B.3) the cMDT ``CMDT`` with its config ``CMDTConfig``, its condition
  encoders (speech features, phonemes, transcript, first frame) and ``CMDTConditions``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from talkinghead.lazy import lazy_getattr

if TYPE_CHECKING:
    from talkinghead.motion.dimitra.attention import EfficientAttention, efficient_attention
    from talkinghead.motion.dimitra.model import CMDT, CMDTConditions, CMDTConfig, transcript_tokens

# Imported on first use (PEP 562), so importing the package pays for no torch.
_WHERE = {
    "EfficientAttention": "attention", "efficient_attention": "attention",
    "CMDT": "model", "CMDTConditions": "model", "CMDTConfig": "model", "transcript_tokens": "model",
}

__all__ = ["CMDT", "CMDTConditions", "CMDTConfig", "EfficientAttention", "efficient_attention", "transcript_tokens"]

__getattr__ = lazy_getattr(__name__, _WHERE)

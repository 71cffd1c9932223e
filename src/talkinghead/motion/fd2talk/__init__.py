"""FD2Talk (Yao et al., ACM MM 2024): talking heads with a fully diffusion-based two-stage model; stage 1 here, the
motion generation (3.2, 3.4.1). One module per component:

- :mod:`.model` (3.2) the Diffusion Transformer ``MotionDiT`` with its config ``DiTConfig``: the condition ``tau(c)``
  (step embedding and audio features, a linear layer) fused by cross-attention under the alignment mask of Eq. 4
  (:func:`alignment_mask`), x0 prediction (Eq. 3); the Expression and the Pose Transformer are two of it;
- :mod:`.data` (3.4.1) the training windows of a part (expression, pose, or both for Table 2's single DiT), with
  the lip expert's inputs (its audio features, each identity's mouth basis);
- :mod:`.training` (3.4.1, Eq. 8-12) the solvers ``fd2talk.expression`` (with the frozen lip expert's sync loss)
  and ``fd2talk.pose``, and the ablations of Tables 2-3;
- :mod:`.generator` ``FD2TalkGenerator``, the motion generator: the DiTs sampled with Eq. 5, with its settings
  ``FD2TalkSampling``.

The frame-generation stage (3.3, the latent-diffusion UNet with two cross-attentions, 3.4.2) is not built yet; until
it is, FD2Talk's motion is rendered by the project's default renderer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from talkinghead.lazy import lazy_getattr

if TYPE_CHECKING:
    from talkinghead.motion.fd2talk.generator import FD2TalkGenerator, FD2TalkSampling
    from talkinghead.motion.fd2talk.model import DiTConfig, MotionDiT, alignment_mask

# Imported on first use (PEP 562), so importing the package pays for no torch.
_WHERE = {
    "DiTConfig": "model", "MotionDiT": "model", "alignment_mask": "model",
    "FD2TalkGenerator": "generator", "FD2TalkSampling": "generator",
}

__all__ = ["DiTConfig", "FD2TalkGenerator", "FD2TalkSampling", "MotionDiT", "alignment_mask"]

__getattr__ = lazy_getattr(__name__, _WHERE)

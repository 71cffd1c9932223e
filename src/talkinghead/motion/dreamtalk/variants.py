"""The ablated DreamTalk variants (DreamTalk 4.3 Tab. 2, App. A.1 Tab. 4) and the regression baseline,
and the rule that keeps checkpoints written before these variants existed loadable.

Each variant is a field of its component's config (chosen when building, never a string branch inside
``forward``), so the checkpoint records it:

- denoiser ``regression`` (issue 7 item 3, "the same network, no diffusion"): ``E_theta`` is trained to
  map audio + style to motion from a fixed input (all-zero normalised motion, i.e. the training mean, at
  step 0) with the same losses (Eq. 5-7); at inference one forward pass from that input is the output;
- lip expert ``style_aware = False`` (Tab. 2 "uncond lip expert"): the lip expert without its style
  encoder and without the style features concatenated into the two embedders (a Wav2Lip-like generic
  expert [49]); the denoiser trained with it is the ablated model;
- Tab. 2 "w/o lip expert" needs no field: a denoiser trained without ``--lip-expert``;
- style predictor ``speaker_info = False`` (Tab. 4 "w/o speaker info"): no speaker-info token, the style
  is predicted from audio alone;
- style predictor ``regression`` (Tab. 4 "regression"): the same transformer maps audio (+ speaker) to
  the style code from a fixed input (zero noised style code at step 0), one forward pass at inference;
- Tab. 4 "w/o cross-ID training" is a training choice (``StylePredictorTrainConfig.cross_identity``,
  recorded in the checkpoint's ``extra``), not an architecture.

Backward compatibility: each variant field is named in its config's ``added_fields``, so a checkpoint
saved before the field existed loads with its default (:meth:`talkinghead.config.Config.from_dict`).
"""

from __future__ import annotations

from typing import Any


def variant_names(config: Any) -> list[str]:
    """Short names of the non-default variant fields set in a DreamTalk config (for logs and reports)."""
    names = []
    if getattr(config, "regression", False):
        names.append("regression")
    if getattr(config, "style_aware", True) is False:
        names.append("unconditional")
    if getattr(config, "speaker_info", True) is False:
        names.append("no-speaker-info")
    return names

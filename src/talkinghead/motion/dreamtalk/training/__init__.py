"""DreamTalk's trainable components (3.3 "Training") and their ablation options (Tab. 2, Tab. 4).

Train in this order: the lip expert, the denoiser (its sync loss uses the lip expert), the style predictor
(it learns a trained denoiser's style codes). One solver module per component:

- :mod:`.lip_expert` the style-aware lip expert (App. C.3.2, Eq. 10);
- :mod:`.denoiser` the denoising network (Eq. 5-7, classifier-free guidance);
- :mod:`.style_predictor` the diffusion style predictor (Eq. 9).

This module only declares them (no torch at import): :data:`COMPONENTS` is read by
:mod:`talkinghead.training.registry`, whose ``talkinghead train`` builds one sub-command per component.
"""

from __future__ import annotations

from typing import Any

from talkinghead.training.registry import ComponentSpec, Option

VARIANTS = "ablation variants (DreamTalk Tab. 2 and Tab. 4)"
_REGRESSION = "the same network trained without diffusion (fixed input): the regression baseline"

COMPONENTS = (
    ComponentSpec(
        "dreamtalk.lip_expert", "talkinghead.motion.dreamtalk.training.lip_expert:build",
        "DreamTalk's style-aware lip expert (train first)", aliases=("lip-expert",),
        options=(Option("unconditional", "no style conditioning (Tab. 2 'uncond lip expert')", group=VARIANTS),)),
    ComponentSpec(
        "dreamtalk.denoiser", "talkinghead.motion.dreamtalk.training.denoiser:build",
        "DreamTalk's denoising network (--lip-expert enables the sync loss)", aliases=("denoiser",),
        options=(Option("lip_expert", "trained lip expert checkpoint (enables the sync loss)", "path",
                        metavar="DIR"),
                 Option("regression", _REGRESSION, group=VARIANTS))),
    ComponentSpec(
        "dreamtalk.style_predictor", "talkinghead.motion.dreamtalk.training.style_predictor:build",
        "DreamTalk's style predictor (needs --denoiser: it learns that denoiser's style codes)",
        aliases=("style-predictor",),
        options=(Option("denoiser", "trained denoiser checkpoint (the source of the style codes)", "path",
                        metavar="DIR"),
                 Option("regression", _REGRESSION, group=VARIANTS),
                 Option("no_speaker_info", "no speaker-info token, audio only (Tab. 4 'w/o speaker info')",
                        group=VARIANTS),
                 Option("same_clip_identity", "identity from the same clip (Tab. 4 'w/o cross-ID training')",
                        group=VARIANTS))),
)


def checkpoint_extra(lip_expert: Any = None, denoiser: Any = None, **variant: bool) -> dict[str, Any]:
    """What every DreamTalk checkpoint records about its inputs: the lip expert and denoiser it was
    trained with (or None) and the ablation flags that were set (``extra["variant"]``)."""
    return {"lip_expert": str(lip_expert) if lip_expert else None, "denoiser": str(denoiser) if denoiser else None,
            "variant": sorted(k for k, v in variant.items() if v)}

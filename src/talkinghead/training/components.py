"""``train <component>``: build the solver of a named component from a dataset and run the loop.

Components: ``lip-expert`` (train first), ``denoiser`` (uses ``--lip-expert`` for the sync loss),
``style-predictor`` (needs ``--denoiser``: it learns that denoiser's style codes). DreamTalk 3.3.

Ablation variants (DreamTalk Tab. 2 and Tab. 4, :mod:`talkinghead.motion.dreamtalk.variants`):
``lip-expert --unconditional``, ``denoiser --regression`` (and a denoiser trained without or with an
unconditional lip expert), ``style-predictor --no-speaker-info | --same-clip-identity | --regression``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from talkinghead.errors import TalkingHeadError
from talkinghead.training.cli import COMPONENTS  # one list, kept torch-free for --help
from talkinghead.training.data import MotionCorpus
from talkinghead.training.loop import Solver, TrainConfig, fit

VARIANT_OPTIONS = {"regression": ("denoiser", "style-predictor"), "unconditional": ("lip-expert",),
                   "no_speaker_info": ("style-predictor",), "same_clip_identity": ("style-predictor",)}


def check_variant(component: str, variant: dict[str, bool]) -> dict[str, bool]:
    """The variant options that are set; an option the component does not have is refused."""
    chosen = {k: True for k, v in variant.items() if v}
    for key in chosen:
        if key not in VARIANT_OPTIONS:
            raise TalkingHeadError(f"Unknown training variant '{key}'.")
        if component not in VARIANT_OPTIONS[key]:
            flag = "--" + key.replace("_", "-")
            raise TalkingHeadError(f"{flag} applies to {' and '.join(VARIANT_OPTIONS[key])}, not {component}.")
    return chosen


def build_solver(component: str, data: str | Path, preset: str = "cpu", *, features: tuple[str, ...] = (),
                 lip_expert: str | Path | None = None, denoiser: str | Path | None = None,
                 train_overrides: dict[str, Any] | None = None,
                 variant: dict[str, bool] | None = None) -> tuple[Solver, TrainConfig]:
    """The solver and its training config for ``component`` on the dataset ``data``.

    ``variant``: ablation options (``regression``, ``unconditional``, ``no_speaker_info``,
    ``same_clip_identity``; see :data:`VARIANT_OPTIONS` for which component has which).
    """
    v = check_variant(component, variant or {})
    from talkinghead.motion.dreamtalk import (
        DenoiserConfig,
        DreamTalkDenoiser,
        LipExpertConfig,
        StyleAwareLipExpert,
        StylePredictorConfig,
    )
    from talkinghead.training.denoiser import DenoiserSolver, DenoiserTrainConfig
    from talkinghead.training.lip_expert import LipExpertSolver, LipExpertTrainConfig
    from talkinghead.training.style_predictor import StylePredictorSolver, StylePredictorTrainConfig

    overrides = {k: v for k, v in (train_overrides or {}).items() if v is not None}
    if component == "lip-expert":
        lcfg = LipExpertTrainConfig.preset(preset, **overrides)
        mcfg = LipExpertConfig.preset(preset, style_aware=not v.get("unconditional", False))
        corpus = MotionCorpus(data, "motion", features, min_frames=mcfg.clip_frames)
        return LipExpertSolver(corpus, mcfg, lcfg), lcfg
    if component == "denoiser":
        dcfg = DenoiserTrainConfig.preset(preset, **overrides)
        expert = StyleAwareLipExpert.from_pretrained(lip_expert) if lip_expert else None
        if expert is not None and not features and expert.audio_features:
            features = tuple(expert.audio_features.get("names", ()))
        corpus = MotionCorpus(data, "motion", features)
        return DenoiserSolver(corpus, DenoiserConfig.preset(preset, regression=v.get("regression", False)), dcfg,
                              expert), dcfg
    if component == "style-predictor":
        if denoiser is None:
            raise TalkingHeadError("Training the style predictor needs a trained denoiser (--denoiser DIR).")
        scfg = StylePredictorTrainConfig.preset(preset, **overrides,
                                                cross_identity=not v.get("same_clip_identity", False))
        net = DreamTalkDenoiser.from_pretrained(denoiser)
        corpus = MotionCorpus(data, "style", features)
        pcfg = StylePredictorConfig.preset(preset, speaker_info=not v.get("no_speaker_info", False),
                                           regression=v.get("regression", False))
        return StylePredictorSolver(corpus, pcfg, scfg, net), scfg
    raise TalkingHeadError(f"Unknown component '{component}'; choose one of {', '.join(COMPONENTS)}.")


def train(component: str, data: str | Path, out: str | Path, preset: str = "cpu", *, steps: int | None = None,
          batch_size: int | None = None, seed: int | None = None, features: tuple[str, ...] = (),
          lip_expert: str | Path | None = None, denoiser: str | Path | None = None, devices: int = 1,
          num_nodes: int = 1, strategy: str = "auto", accelerator: str = "cpu", resume: bool = False,
          stop_after: int | None = None, tensorboard: bool = True, regression: bool = False,
          unconditional: bool = False, no_speaker_info: bool = False,
          same_clip_identity: bool = False) -> dict[str, Any]:
    """Train one DreamTalk component; the EMA checkpoint goes to ``out`` (state in ``out.train/``).

    Ablation variants: ``regression`` (denoiser, style-predictor), ``unconditional`` (lip-expert),
    ``no_speaker_info`` and ``same_clip_identity`` (style-predictor); recorded in the checkpoint's
    config (architecture) and ``extra["variant"]``.
    """
    variant = check_variant(component, {"regression": regression, "unconditional": unconditional,
                                        "no_speaker_info": no_speaker_info,
                                        "same_clip_identity": same_clip_identity})
    solver, config = build_solver(component, data, preset, features=features, lip_expert=lip_expert,
                                  denoiser=denoiser,
                                  train_overrides={"steps": steps, "batch_size": batch_size, "seed": seed},
                                  variant=variant)
    flags = "".join(f" --{k.replace('_', '-')}" for k in variant)
    extra: dict[str, Any] = {
        "command": f"talkinghead train {component} --preset {preset}{flags}", "data": str(data),
        "lip_expert": str(lip_expert) if lip_expert else None, "denoiser": str(denoiser) if denoiser else None,
        "variant": sorted(variant)}
    if lip_expert:
        from talkinghead.motion.dreamtalk.variants import variant_names

        expert = getattr(solver, "lip_expert", None)
        if expert is not None:
            extra["lip_expert_variant"] = variant_names(expert.config) or ["style-aware"]
    if component == "style-predictor":
        from talkinghead.motion.dreamtalk.style_bank import style_encoder_fingerprint

        extra["denoiser_fingerprint"] = style_encoder_fingerprint(solver.denoiser)  # type: ignore[attr-defined]
    return fit(solver, config, out, preset=preset, devices=devices, num_nodes=num_nodes, strategy=strategy,
               accelerator=accelerator, resume=resume, stop_after=stop_after, tensorboard=tensorboard,
               extra=extra)

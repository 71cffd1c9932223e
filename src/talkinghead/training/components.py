"""``train <component>``: build the solver of a named component from a dataset and run the loop.

Components: ``lip-expert`` (train first), ``denoiser`` (uses ``--lip-expert`` for the sync loss),
``style-predictor`` (needs ``--denoiser``: it learns that denoiser's style codes). DreamTalk 3.3.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from talkinghead.errors import TalkingHeadError
from talkinghead.training.cli import COMPONENTS  # one list, kept torch-free for --help
from talkinghead.training.data import MotionCorpus
from talkinghead.training.loop import Solver, TrainConfig, fit


def build_solver(component: str, data: str | Path, preset: str = "cpu", *, features: tuple[str, ...] = (),
                 lip_expert: str | Path | None = None, denoiser: str | Path | None = None,
                 train_overrides: dict[str, Any] | None = None) -> tuple[Solver, TrainConfig]:
    """The solver and its training config for ``component`` on the dataset ``data``."""
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
        mcfg = LipExpertConfig.preset(preset)
        corpus = MotionCorpus(data, "motion", features, min_frames=mcfg.clip_frames)
        return LipExpertSolver(corpus, mcfg, lcfg), lcfg
    if component == "denoiser":
        dcfg = DenoiserTrainConfig.preset(preset, **overrides)
        expert = StyleAwareLipExpert.from_pretrained(lip_expert) if lip_expert else None
        if expert is not None and not features and expert.audio_features:
            features = tuple(expert.audio_features.get("names", ()))
        corpus = MotionCorpus(data, "motion", features)
        return DenoiserSolver(corpus, DenoiserConfig.preset(preset), dcfg, expert), dcfg
    if component == "style-predictor":
        if denoiser is None:
            raise TalkingHeadError("Training the style predictor needs a trained denoiser (--denoiser DIR).")
        scfg = StylePredictorTrainConfig.preset(preset, **overrides)
        net = DreamTalkDenoiser.from_pretrained(denoiser)
        corpus = MotionCorpus(data, "style", features)
        return StylePredictorSolver(corpus, StylePredictorConfig.preset(preset), scfg, net), scfg
    raise TalkingHeadError(f"Unknown component '{component}'; choose one of {', '.join(COMPONENTS)}.")


def train(component: str, data: str | Path, out: str | Path, preset: str = "cpu", *, steps: int | None = None,
          batch_size: int | None = None, seed: int | None = None, features: tuple[str, ...] = (),
          lip_expert: str | Path | None = None, denoiser: str | Path | None = None, devices: int = 1,
          num_nodes: int = 1, strategy: str = "auto", accelerator: str = "cpu", resume: bool = False,
          stop_after: int | None = None, tensorboard: bool = True) -> dict[str, Any]:
    """Train one DreamTalk component; the EMA checkpoint goes to ``out`` (state in ``out.train/``)."""
    solver, config = build_solver(component, data, preset, features=features, lip_expert=lip_expert,
                                  denoiser=denoiser,
                                  train_overrides={"steps": steps, "batch_size": batch_size, "seed": seed})
    extra = {"command": f"talkinghead train {component} --preset {preset}", "data": str(data),
             "lip_expert": str(lip_expert) if lip_expert else None, "denoiser": str(denoiser) if denoiser else None}
    return fit(solver, config, out, preset=preset, devices=devices, num_nodes=num_nodes, strategy=strategy,
               accelerator=accelerator, resume=resume, stop_after=stop_after, tensorboard=tensorboard,
               extra=extra)

"""Solver for the DreamTalk style predictor (3.3 "Training", Eq. 9).

A sample draws a random clip, an audio segment of ``min_frames..max_frames`` frames from it and the style
code ``s_(0)`` of the same segment's motion from the trained (frozen) denoiser's style encoder. The
identity descriptor comes from *another* clip of the same speaker (cross-identity training, 3.3 / A.1),
so expression leaking into identity parameters cannot be used. Loss: ``||s0 - S(s_t, t, A, I)||^2``.

Ablations (App. A.1 Tab. 4): ``cross_identity = False`` takes the identity from the same clip ("w/o
cross-ID training"); the model config's ``speaker_info = False`` drops the speaker token ("w/o speaker
info") and ``regression`` feeds the fixed input (zero style, step 0) instead of ``s_t, t`` ("regression").
The checkpoint's ``extra["variant"]`` records all three, and ``extra["denoiser_fingerprint"]`` the style
encoder whose codes were learned.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from talkinghead.diffusion import ScheduleConfig, add_noise, make_scheduler
from talkinghead.errors import TalkingHeadError
from talkinghead.motion.dreamtalk.denoiser import DreamTalkDenoiser
from talkinghead.motion.dreamtalk.style_bank import style_encoder_fingerprint
from talkinghead.motion.dreamtalk.style_predictor import StylePredictor, StylePredictorConfig
from talkinghead.motion.dreamtalk.training import checkpoint_extra
from talkinghead.training.data import ClipArrays, MotionCorpus
from talkinghead.training.loop import Solver, TrainConfig
from talkinghead.training.registry import SolverBuild


@dataclass(frozen=True)
class StylePredictorTrainConfig(TrainConfig):
    cross_identity: bool = True

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": dict(TrainConfig.presets["tiny"]),
        "cpu": {**TrainConfig.presets["cpu"], "steps": 2000, "batch_size": 32},
        "paper": {"batch_size": 64},
    }


class _StylePredictorStep(nn.Module):
    def __init__(self, net: StylePredictor, schedule: ScheduleConfig) -> None:
        super().__init__()
        self.net = net
        self.scheduler = make_scheduler(schedule, "ddpm")

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        s0 = self.net.style_norm(batch["style"])
        if self.net.config.regression:  # no diffusion: a fixed input, the network maps audio to the code
            st, t = self.net.regression_input(s0.shape[0], s0.device)
        else:
            st, t = add_noise(self.scheduler, s0, batch["noise"], batch["t"]), batch["t"]
        identity = batch["identity"] if self.net.config.speaker_info else None
        pred = self.net(st, t, batch["audio"], identity, batch["audio_valid"])
        loss = F.mse_loss(pred, s0)                                               # Eq. 9
        return loss, {"loss": loss.detach()}


class StylePredictorSolver(Solver):
    component: ClassVar[str] = StylePredictor.component
    train_config_class: ClassVar[type[TrainConfig]] = StylePredictorTrainConfig

    def __init__(self, corpus: MotionCorpus, model_config: StylePredictorConfig,
                 train_config: StylePredictorTrainConfig, denoiser: DreamTalkDenoiser,
                 schedule: ScheduleConfig | None = None) -> None:
        if denoiser.layout is not None and tuple(denoiser.layout.get("channels", ())) != corpus.layout.channels:
            raise TalkingHeadError("The denoiser was trained on another channel layout than this dataset.")
        self.corpus = corpus
        self.train_config = train_config
        self.schedule = schedule or ScheduleConfig()
        self.denoiser = denoiser.eval().requires_grad_(False)
        identity_dim = corpus.descriptor_dim() if model_config.speaker_info else 0
        self.model_config = model_config.replace(audio_dim=corpus.audio_dim, identity_dim=identity_dim,
                                                 style_dim=denoiser.config.d_model)
        rng = np.random.default_rng([train_config.seed, 12345])
        codes = [self._style_codes(rng, [corpus.pick(rng) for _ in range(64)])[0] for _ in range(4)]
        all_codes = torch.cat(codes)
        self.style_stats = (all_codes.mean(0), all_codes.std(0) + 1e-3)

    def _segments(self, rng: np.random.Generator, clips: list[ClipArrays]) -> list[tuple[ClipArrays, int, int]]:
        cfg = self.model_config
        out = []
        for c in clips:
            n = int(min(rng.integers(cfg.min_frames, cfg.max_frames + 1), len(c)))
            out.append((c, int(rng.integers(0, len(c) - n + 1)), n))
        return out

    @torch.no_grad()
    def _style_codes(self, rng: np.random.Generator, clips: list[ClipArrays]) -> tuple[torch.Tensor, list]:
        segs = self._segments(rng, clips)
        width = max(n for _, _, n in segs)
        cdim = self.denoiser.config.motion_dim
        motion = np.zeros((len(segs), width, cdim), np.float32)
        valid = np.zeros((len(segs), width), bool)
        for i, (c, s, n) in enumerate(segs):
            m = np.concatenate([c.expression, c.pose], 1) if self.denoiser.config.generate_pose else c.expression
            motion[i, :n] = m[s:s + n]
            valid[i, :n] = True
        device = self.denoiser.head.weight.device
        codes = self.denoiser.encode_style(torch.from_numpy(motion).to(device), torch.from_numpy(valid).to(device))
        return codes.cpu(), segs

    def build_model(self) -> StylePredictor:
        spec = dict(self.corpus.audio_spec(), denoiser_style_dim=self.denoiser.config.d_model)
        model = StylePredictor(self.model_config, layout=self.corpus.layout.to_dict(), audio_features=spec)
        model.audio_norm.set_stats(*map(torch.from_numpy, self.corpus.stats("audio")))
        if self.model_config.speaker_info:
            desc = np.stack([c.descriptor for c in self.corpus.clips if c.descriptor is not None])
            model.identity_norm.set_stats(torch.from_numpy(desc.mean(0)), torch.from_numpy(desc.std(0) + 1e-3))
        model.style_norm.set_stats(*self.style_stats)
        return model

    def wrap(self, model: nn.Module) -> nn.Module:
        assert isinstance(model, StylePredictor)
        return _StylePredictorStep(model, self.schedule)

    def to_device(self, device: torch.device) -> None:
        self.denoiser.to(device)

    def make_batch(self, rng: np.random.Generator, batch_size: int) -> dict[str, torch.Tensor]:
        clips = [self.corpus.pick(rng) for _ in range(batch_size)]
        codes, segs = self._style_codes(rng, clips)
        width = max(n for _, _, n in segs)
        audio = np.zeros((batch_size, width, self.corpus.audio_dim), np.float32)
        valid = np.zeros((batch_size, width), bool)
        identity = []
        for i, (c, s, n) in enumerate(segs):
            audio[i, :n] = c.audio[s:s + n]
            valid[i, :n] = True
            if not self.model_config.speaker_info:
                identity.append(np.zeros(0, np.float32))
                continue
            source = self.corpus.other_clip_of_speaker(rng, c) if self.train_config.cross_identity else c
            assert source.descriptor is not None
            identity.append(source.descriptor)
        return {"style": codes, "audio": torch.from_numpy(audio), "audio_valid": torch.from_numpy(valid),
                "identity": torch.from_numpy(np.stack(identity)),
                "t": torch.randint(0, self.schedule.num_train_timesteps, (batch_size,)),
                "noise": torch.randn(batch_size, self.model_config.style_dim)}


def build(data: str | Path, preset: str, *, features: tuple[str, ...] = (),
          train_overrides: dict[str, Any] | None = None, denoiser: str | Path | None = None,
          regression: bool = False, no_speaker_info: bool = False,
          same_clip_identity: bool = False) -> SolverBuild:
    """The registry's builder of ``dreamtalk.style_predictor``; the ablations of App. A.1 Tab. 4."""
    if denoiser is None:
        raise TalkingHeadError("Training the style predictor needs a trained denoiser (--denoiser DIR).")
    config = StylePredictorTrainConfig.preset(preset, **(train_overrides or {}),
                                              cross_identity=not same_clip_identity)
    net = DreamTalkDenoiser.from_pretrained(denoiser)
    corpus = MotionCorpus(data, "style", features)
    model_config = StylePredictorConfig.preset(preset, speaker_info=not no_speaker_info, regression=regression)
    extra = checkpoint_extra(None, denoiser, regression=regression, no_speaker_info=no_speaker_info,
                             same_clip_identity=same_clip_identity)
    extra["denoiser_fingerprint"] = style_encoder_fingerprint(net)
    return SolverBuild(StylePredictorSolver(corpus, model_config, config, net), config, extra)

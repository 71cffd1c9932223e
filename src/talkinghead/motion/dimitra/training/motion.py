"""Solvers of Dimitra's three motion models (III-B.4 "Learning"): ``dimitra.lips``, ``dimitra.face`` and
``dimitra.pose``, the same cMDT (:class:`talkinghead.motion.dimitra.model.CMDT`) on different channels.

A sample is a window of ``N`` frames of the part's motion ``x_0^{1:N}`` with its conditions
(:mod:`talkinghead.motion.dimitra.data`: audio features, a phoneme per frame, the transcript, the first-frame
condition ``x^1``), a step ``t ~ U{0, T-1}`` of the project's diffusion schedule
(:class:`talkinghead.diffusion.ScheduleConfig`, 1000 linear-beta steps) and Gaussian noise; the noisy motion
``x_t^{1:N}`` is the closed-form forward process (III-B.1). The network predicts the clean motion ``x_0``
(x0 prediction). Motion is standardised per channel with training-split statistics (checkpoint buffers), so
the losses are in normalised units.

Losses (III-B.4):

- ``L_diff = || x_0^{1:N} - G(x_t^{1:N}, t, a, p, S, x^1) ||^2``, the mean over frames and channels;
- lips and face: ``L_G = lambda * L_diff`` with ``lambda = 6``;
- pose: ``L_G = lambda * L_diff + L_first``. The paper defines ``L_first`` in one sentence, "a first pose
  diffusion loss that corresponds to diffusion only on the first frame ``x_t^1``". Our reading: the same
  diffusion loss restricted to the first frame of the window, from the same forward pass,
  ``L_first = || x_0^1 - G(x_t^{1:N}, ...)^1 ||^2`` (the mean over the 6 channels of frame 1). Being a mean over
  one frame rather than ``N``, it weighs the first frame ``N / lambda`` times more than ``L_diff`` does,
  which is its purpose: the first frame is where a recursively generated window joins the previous one
  (the condition ``x^1`` is the frame before the window, see the data module), and the paper adds the loss
  "to limit these discontinuities". We read "diffusion only on the first frame ``x_t^1``" as *the loss* of
  the diffusion model taken only on that frame; the other reading, a second forward process that noises the
  first frame alone while the rest stays clean, would teach a denoising task that sampling never poses (every
  frame is noisy at every step), so we do not use it. ``L_first`` carries weight 1, as written.

The transcript is dropped at random (:meth:`CMDT.text_dropout`, ``text_drop_prob``; issue 13, not the paper) so
that generation without a transcript is a supported mode.

Extension beyond the paper, the lip-sync loss (``--sync-loss``, lips only, off by default): the paper trains
the lips cMDT with ``lambda * L_diff`` alone and has no such loss. Dimitra's lips follow real voices less well
than DreamTalk's, whose denoiser is trained with its frozen lip expert (docs/mouth/dimitra/README.md: r 0.54
against 0.71), so the lips model may be trained the way FD2Talk's Expression Transformer is
(:mod:`talkinghead.motion.fd2talk.training.motion`): ``L_G = lambda * L_diff + lambda_sync * L_sync`` with
``L_sync = -log P_sync`` and ``lambda_sync = 0.1`` (FD2Talk's weight, the project's DreamTalk ``cpu``
denoiser's). The cMDT's predicted ``x_0`` of the mouth channels is denormalised and put into the window's
ground-truth full expression (the other channels from the data), and ``P_sync`` is the frozen
:class:`talkinghead.motion.dreamtalk.lip_expert.StyleAwareLipExpert` (default ``weights/dreamtalk/lip_expert``,
``--lip-expert DIR``) on ``n`` consecutive frames of it (the expert's clip length, 5) at a random offset in the
window, exactly as FD2Talk's: mouth vertices from the clip identity's basis, the style reference a random
segment of the same clip's expression, the expert's own audio features
(:class:`talkinghead.motion.dimitra.data.LipSyncCorpus`). The checkpoint records ``losses.lambda_sync`` (0
without the loss), ``lip_expert`` and ``mouth``, and ``sync_loss`` in ``variant``.

Extension beyond the paper, speech dropout (``--speech-dropout-percent P``, lips only, off by default): each
training sample hears no speech with probability ``P`` % (:meth:`CMDT.speech_dropout`: its audio and phoneme
tokens are zeroed and masked out; the sync loss skips it), so the model also learns the motion's prior without
speech and a sampler can apply classifier-free guidance on the speech (:class:`DimitraSampling`
``speech_guidance``), which scales up what the speech adds to that prior. Dimitra's lips move channels (press,
stretch, funnel) that do not follow real voices (docs/mouth/dimitra/README.md); guidance is meant to weigh the
speech-driven part of the motion against them.

Ablations (issue 13 item 5; recorded in the checkpoint's ``extra["conditions"]`` and ``extra["variant"]``, so a
generator feeds the model what it was trained with): ``--no-phonemes`` gives every frame the ``<pad>`` token
(the phoneme encoder then sees one constant sequence and carries no information; the architecture is
unchanged), ``--no-transcript`` gives no transcript (the null token only), ``--no-first-loss`` (pose) trains
with ``lambda * L_diff`` alone.

Deviations from the paper: the window length ``N``, batch size, learning rate and step counts are not given
in the paper. ``paper`` uses 100-frame windows (4 s at 25 fps) and the shared loop's defaults (Adam, lr 1e-4,
batch 64, 100k steps, DreamTalk's); ``cpu`` 50-frame windows; ``tiny`` 12 for tests. Training goes through the
shared loop (:func:`talkinghead.training.loop.fit`: Fabric, exact resume, EMA, progress) and the exported model
is the EMA of the weights (the paper does not mention an EMA).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from talkinghead.audio.phonemes import PAD_ID
from talkinghead.config import Range
from talkinghead.diffusion import ScheduleConfig, add_noise, make_scheduler, sample_timesteps
from talkinghead.errors import TalkingHeadError
from talkinghead.motion.dimitra.data import DimitraCorpus, DimitraWindow, LipSyncCorpus, collate
from talkinghead.motion.dimitra.model import CMDT, PHONEME_VOCAB_SIZE, CMDTConditions, CMDTConfig
from talkinghead.motion.dreamtalk.lip_expert import StyleAwareLipExpert, sync_loss
from talkinghead.motion.fd2talk.training.motion import (
    check_lip_expert,
    expert_inputs,
    load_lip_expert,
    sync_inputs,
    sync_probability,
)
from talkinghead.training.loop import Solver, TrainConfig
from talkinghead.training.registry import SolverBuild

#: III-B.4: "lambda = 6 in our implementation"
LAMBDA_DIFF = 6.0


@dataclass(frozen=True)
class DimitraTrainConfig(TrainConfig):
    """The shared loop's settings plus Dimitra's: ``window_frames`` ``N``, the loss weights (III-B.4) and the
    trained conditions. ``first_loss`` adds ``L_first`` (the pose model's builder turns it on); ``sync_loss``
    adds the lip expert's ``lambda_sync * L_sync`` (lips only, not in the paper), whose style reference is
    ``style_min_frames .. style_max_frames`` frames long (FD2Talk's lengths)."""

    window_frames: int = 100
    lambda_diff: float = LAMBDA_DIFF
    lambda_first: float = 1.0
    first_loss: bool = False
    phonemes: bool = True
    transcript: bool = True
    sync_loss: bool = False
    lambda_sync: float = 0.1
    phoneme_noise: Annotated[float, Range(0, 1)] = 0.0  # share of training phoneme tokens made random
    style_min_frames: int = 64
    style_max_frames: int = 256

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {**TrainConfig.presets["tiny"], "window_frames": 12, "style_min_frames": 8, "style_max_frames": 16},
        "cpu": {**TrainConfig.presets["cpu"], "steps": 2000, "batch_size": 16, "window_frames": 50,
                "style_min_frames": 32, "style_max_frames": 64},
        "paper": {"window_frames": 100},
    }


class _CMDTStep(nn.Module):
    """One training step's loss: ``forward(batch) -> (L_G, metrics)`` (see the module docstring)."""

    def __init__(self, net: CMDT, schedule: ScheduleConfig, config: DimitraTrainConfig,
                 expert: StyleAwareLipExpert | None = None, columns: tuple[int, ...] = ()) -> None:
        super().__init__()
        self.net = net
        self.scheduler = make_scheduler(schedule, "ddpm")
        self.config = config
        self._expert = [expert]  # a frozen helper, not a submodule: not trained, not saved, not DDP-synced
        self.columns = columns   # where the model's channels lie in the full expression (the sync loss's)

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        net, cfg = self.net, self.config
        x0 = net.motion_norm(batch["motion"])                                     # [B, N, C]
        xt = add_noise(self.scheduler, x0, batch["noise"], batch["t"])            # III-B.1, closed form
        text = "text_tokens" in batch
        conditions = CMDTConditions(
            audio=batch["audio"], phonemes=batch["phonemes"], first_frame=batch["first_frame"],
            text_tokens=batch["text_tokens"] if text else None, text_mask=batch["text_mask"] if text else None,
            drop_text=net.text_dropout(x0.shape[0]) if text else None, drop_speech=net.speech_dropout(x0.shape[0]))
        pred = net(xt, batch["t"], conditions)                                    # [B, N, C] x0
        diff = F.mse_loss(pred, x0)                                               # L_diff
        loss = cfg.lambda_diff * diff
        metrics = {"diff": diff.detach()}
        if cfg.first_loss:
            first = F.mse_loss(pred[:, 0], x0[:, 0])                              # L_first: frame 1 only
            loss = loss + cfg.lambda_first * first
            metrics["first"] = first.detach()
        expert = self._expert[0]
        if expert is not None and cfg.sync_loss:                                 # the extension, lips only
            columns = torch.as_tensor(self.columns, device=pred.device)
            expression = batch["expression"].index_copy(2, columns, net.motion_norm.inverse(pred))   # [B, N, E]
            p = sync_probability(expert, expression, batch)
            if conditions.drop_speech is not None:   # a sample that heard no speech cannot be in sync with it
                p = p[~conditions.drop_speech] if (~conditions.drop_speech).any() else p.detach()
            sync = sync_loss(p)
            loss = loss + cfg.lambda_sync * sync
            metrics.update(sync=sync.detach(), p_sync=p.mean().detach())
        metrics["loss"] = loss.detach()
        return loss, metrics


class CMDTSolver(Solver):
    """Trains one part's cMDT; the subclasses name the part (and the registry component)."""

    part: ClassVar[str]
    train_config_class: ClassVar[type[TrainConfig]] = DimitraTrainConfig

    def __init__(self, corpus: DimitraCorpus, model_config: CMDTConfig, train_config: DimitraTrainConfig,
                 schedule: ScheduleConfig | None = None, lip_expert: StyleAwareLipExpert | None = None) -> None:
        if corpus.part != self.part:
            raise TalkingHeadError(f"The {self.component} solver needs the {self.part} corpus, not {corpus.part}.")
        if train_config.window_frames < 1:
            raise TalkingHeadError("window_frames must be at least 1.")
        self.corpus = corpus
        self.train_config = train_config
        self.schedule = schedule or ScheduleConfig()
        if self.schedule.prediction_type != "sample":
            raise TalkingHeadError("The cMDT predicts the clean motion; its schedule needs prediction_type "
                                   "'sample'.")
        self.model_config = model_config.replace(motion_dim=corpus.motion_dim, audio_dim=corpus.audio_dim)
        self.sync: LipSyncCorpus | None = None
        if train_config.sync_loss:
            if self.part != "lips":
                raise TalkingHeadError(f"The sync loss trains the lips model only, not the {self.part} model.")
            if lip_expert is None:
                raise TalkingHeadError("The sync loss needs a lip expert; give one or train without the sync loss.")
            self.sync = LipSyncCorpus(corpus, *expert_inputs(lip_expert))
            check_lip_expert(lip_expert, self.sync.corpus, train_config.window_frames)
            lip_expert.eval().requires_grad_(False)
        self.lip_expert = lip_expert if train_config.sync_loss else None
        #: the expert's own (mean-face) mouth basis [E, M, 3], for clips without an identity basis
        self._expert_basis = None if self.lip_expert is None else self.lip_expert.mouth_basis.detach().cpu().numpy()

    def build_model(self) -> CMDT:
        model = CMDT(self.model_config, layout=self.corpus.part_layout().to_dict(),
                     audio_features=self.corpus.audio_spec())
        model.audio_norm.set_stats(*map(torch.from_numpy, self.corpus.stats("audio")))
        model.motion_norm.set_stats(*map(torch.from_numpy, self.corpus.stats("motion")))
        return model

    def wrap(self, model: nn.Module) -> nn.Module:
        assert isinstance(model, CMDT)
        return _CMDTStep(model, self.schedule, self.train_config, self.lip_expert, self.corpus.columns)

    def to_device(self, device: torch.device) -> None:
        if self.lip_expert is not None:
            self.lip_expert.to(device)

    def make_batch(self, rng: np.random.Generator, batch_size: int) -> dict[str, torch.Tensor]:
        cfg = self.train_config
        windows = self.corpus.sample(rng, batch_size, cfg.window_frames)
        batch = collate(windows, self.model_config.max_text_length)
        if not cfg.phonemes:
            batch["phonemes"] = torch.full_like(batch["phonemes"], PAD_ID)
        elif cfg.phoneme_noise > 0:  # the extension: tokens replaced at random, as a recogniser's errors
            wrong = torch.from_numpy(rng.random(tuple(batch["phonemes"].shape)) < cfg.phoneme_noise)
            tokens = torch.from_numpy(rng.integers(PAD_ID + 1, PHONEME_VOCAB_SIZE, tuple(batch["phonemes"].shape)))
            batch["phonemes"] = torch.where(wrong, tokens, batch["phonemes"])
        if not cfg.transcript:
            del batch["text_tokens"], batch["text_mask"]
        batch["t"] = sample_timesteps(batch_size, self.schedule.num_train_timesteps)
        batch["noise"] = torch.randn(batch["motion"].shape)
        if self.lip_expert is not None:
            batch.update(self._sync_inputs(rng, windows))
        return batch

    def _sync_inputs(self, rng: np.random.Generator, windows: list[DimitraWindow]) -> dict[str, torch.Tensor]:
        """What :func:`sync_probability` reads (FD2Talk's :func:`sync_inputs` on the same frames of its corpus),
        with the windows' full ``expression [B, N, E]``, into which the step puts the predicted mouth."""
        assert self.lip_expert is not None and self.sync is not None and self._expert_basis is not None
        cfg, full = self.train_config, self.sync.windows(windows)
        inputs = sync_inputs(self.lip_expert, self.sync.corpus, full, rng, cfg.window_frames,
                             (cfg.style_min_frames, cfg.style_max_frames), self._expert_basis)
        return {"expression": torch.from_numpy(np.stack([w.expression for w in full])), **inputs}


class LipsSolver(CMDTSolver):
    component: ClassVar[str] = "dimitra.lips"
    part: ClassVar[str] = "lips"


class FaceSolver(CMDTSolver):
    component: ClassVar[str] = "dimitra.face"
    part: ClassVar[str] = "face"


class PoseSolver(CMDTSolver):
    component: ClassVar[str] = "dimitra.pose"
    part: ClassVar[str] = "pose"


SOLVERS: dict[str, type[CMDTSolver]] = {s.part: s for s in (LipsSolver, FaceSolver, PoseSolver)}


def build_part(part: str, data: str | Path, preset: str, *, features: tuple[str, ...] = (),
               train_overrides: dict[str, Any] | None = None, no_phonemes: bool = False,
               no_transcript: bool = False, no_first_loss: bool = False, sync_loss: bool = False,
               lip_expert: str | Path | None = None, audio_context: int | None = None,
               phoneme_noise: float | None = None, speech_dropout: float | None = None) -> SolverBuild:
    """The solver of ``part`` on ``data``, its training config and the checkpoint's ``extra``: the part and its
    channels, the dataset's full layout (to put the parts back together), the window length, the first-frame
    convention, the trained conditions and losses, the lip expert of the sync loss (lips only)."""
    if part not in SOLVERS:
        raise TalkingHeadError(f"Unknown Dimitra part '{part}'; choose one of {', '.join(SOLVERS)}.")
    noise = {} if phoneme_noise is None else {"phoneme_noise": phoneme_noise}  # range-checked by the config
    config = DimitraTrainConfig.preset(preset, **{**(train_overrides or {}), **noise})
    config = config.replace(phonemes=not no_phonemes, transcript=not no_transcript,
                            first_loss=part == "pose" and not no_first_loss, sync_loss=sync_loss or config.sync_loss)
    if config.sync_loss and part != "lips":
        raise TalkingHeadError(f"The sync loss trains the lips model only, not the {part} model.")
    if lip_expert is not None and not config.sync_loss:
        raise TalkingHeadError("A lip expert is only used by the sync loss; add --sync-loss or leave out "
                               "--lip-expert.")
    expert, expert_path = (load_lip_expert(lip_expert, "The sync loss", "train without --sync-loss")
                           if config.sync_loss else (None, None))
    corpus = DimitraCorpus(data, part, features, phonemes=config.phonemes)
    model_overrides: dict[str, Any] = {} if audio_context is None else {"audio_context": audio_context}
    if speech_dropout is not None:
        model_overrides["speech_drop_prob"] = speech_dropout   # range-checked by the config
    model_config = CMDTConfig.preset(preset, **model_overrides)
    solver = SOLVERS[part](corpus, model_config, config, lip_expert=expert)
    variant = {"no_phonemes": no_phonemes, "no_transcript": no_transcript, "no_first_loss": no_first_loss,
               "sync_loss": config.sync_loss}
    mouth = None
    if solver.sync is not None:
        mouth = "identity" if any(c.mouth >= 0 for c in solver.sync.corpus.clips) else "lip_expert"
    extra = {"part": part, "channels": list(corpus.channels), "dataset_layout": corpus.layout.to_dict(),
             "window_frames": config.window_frames, "first_frame": "previous",
             "conditions": {"phonemes": config.phonemes, "transcript": config.transcript},
             "losses": {"lambda_diff": config.lambda_diff,
                        "lambda_first": config.lambda_first if config.first_loss else 0.0,
                        "lambda_sync": config.lambda_sync if config.sync_loss else 0.0},
             "lip_expert": str(expert_path) if expert_path else None, "mouth": mouth,
             "audio_context": model_config.audio_context, "phoneme_noise": config.phoneme_noise,
             "speech_dropout": model_config.speech_drop_prob,
             "variant": sorted(k for k, v in variant.items() if v)}
    return SolverBuild(solver, config, extra)


def build_lips(data: str | Path, preset: str, *, features: tuple[str, ...] = (),
               train_overrides: dict[str, Any] | None = None, no_phonemes: bool = False,
               no_transcript: bool = False, sync_loss: bool = False,
               lip_expert: str | Path | None = None, audio_context: int | None = None,
               phoneme_noise_percent: int | None = None, speech_dropout_percent: int | None = None) -> SolverBuild:
    """The registry's builder of ``dimitra.lips`` (``sync_loss``: the lip expert's loss, an extension;
    ``audio_context``: the speech encoder's local context, an extension; ``speech_dropout_percent``: speech
    dropout for guidance, an extension)."""
    return build_part("lips", data, preset, features=features, train_overrides=train_overrides,
                      no_phonemes=no_phonemes, no_transcript=no_transcript, sync_loss=sync_loss,
                      lip_expert=lip_expert, audio_context=audio_context,
                      phoneme_noise=None if phoneme_noise_percent is None else phoneme_noise_percent / 100,
                      speech_dropout=None if speech_dropout_percent is None else speech_dropout_percent / 100)


def build_face(data: str | Path, preset: str, *, features: tuple[str, ...] = (),
               train_overrides: dict[str, Any] | None = None, no_phonemes: bool = False,
               no_transcript: bool = False) -> SolverBuild:
    """The registry's builder of ``dimitra.face``."""
    return build_part("face", data, preset, features=features, train_overrides=train_overrides,
                      no_phonemes=no_phonemes, no_transcript=no_transcript)


def build_pose(data: str | Path, preset: str, *, features: tuple[str, ...] = (),
               train_overrides: dict[str, Any] | None = None, no_phonemes: bool = False,
               no_transcript: bool = False, no_first_loss: bool = False) -> SolverBuild:
    """The registry's builder of ``dimitra.pose``."""
    return build_part("pose", data, preset, features=features, train_overrides=train_overrides,
                      no_phonemes=no_phonemes, no_transcript=no_transcript, no_first_loss=no_first_loss)

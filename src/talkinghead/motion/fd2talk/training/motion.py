"""Solvers of FD2Talk's first stage (3.4.1 "Motion Generation Stage"): ``fd2talk.expression`` trains the Expression
Transformer ``theta_exp`` and ``fd2talk.pose`` the Pose Transformer ``theta_pose``, the same DiT
(:class:`talkinghead.motion.fd2talk.model.MotionDiT`) on different channels (:mod:`..data`).

A sample is a window of ``N`` frames of the part's motion ``x_0`` (``beta_0`` or ``p_0``) with its audio ``A``, a
step ``t ~ U{0, T-1}`` of the project's diffusion schedule (:class:`talkinghead.diffusion.ScheduleConfig`, 1000
linear-beta steps) and Gaussian noise; ``x_t`` is the closed-form forward process (Eq. 2). The DiT predicts the
clean motion (Eq. 3). Motion is standardised per channel with training-split statistics (checkpoint buffers), so
the reconstruction losses are in normalised units.

Losses (Eq. 12, ``L_first = lambda_exp L_exp + lambda_pose L_pose + lambda_sync L_sync``), each DiT its own terms:

- Expression Transformer: ``lambda_exp * L_exp + lambda_sync * L_sync`` with
  ``L_exp = ||beta_0 - theta_exp(beta_t, t, A)||^2`` (Eq. 8, the mean over frames and channels) and
  ``L_sync = -log P_sync`` (Eq. 11), ``P_sync`` the cosine similarity of the frozen lip expert's mouth and audio
  embeddings (Eq. 10) on ``n`` consecutive frames (the expert's clip length, 5) of the *predicted* expression
  ``beta~_0``, at a random offset in the window. The mouth vertices are the face mesh of the clip's identity
  with ``beta~_0`` (Eq. 1; :mod:`..data`, ``mouth_bases``), differentiable, so ``L_sync`` trains the DiT through
  the frozen expert;
- Pose Transformer: ``lambda_pose * L_pose``, ``L_pose = ||p_0 - theta_pose(p_t, t, A)||^2`` (Eq. 9);
- single DiT (Table 2, ``--single-dit``): one DiT over ``[beta, p]``; ``L_exp`` and ``L_pose`` are taken on
  its expression and pose channels and ``L_sync`` on its expression, so the loss is Eq. 12 as a whole.

Ablations, recorded in the checkpoint's ``extra`` (``variant``, ``alignment_mask``, ``sync_loss``, ``part``) so
the generator loads each variant as trained: ``--no-alignment-mask`` (Table 3 "w/o alignment": a plain
cross-attention, :class:`..model.DiTConfig` ``alignment_mask = False``), ``--no-sync-loss`` (Table 3
"w/o L_sync": no lip expert, ``lambda_exp * L_exp`` alone), ``--single-dit`` (Table 2).

Deviations from the paper, and why:

- **the lip expert** [29] is Wav2Lip's SyncNet in the paper; here it is the project's trained DreamTalk lip expert
  (:class:`talkinghead.motion.dreamtalk.lip_expert.StyleAwareLipExpert`, default ``weights/dreamtalk/lip_expert``),
  frozen, whose ``P_sync`` is Eq. 10 exactly (a cosine similarity with an ``eps`` floor). It is style-aware, so
  it is given a style reference: a random segment of the same clip's expression (the clip's own speaking
  style), as DreamTalk's denoiser training does; an unconditional expert (``dreamtalk.lip_expert
  --unconditional``), the closer match to Wav2Lip's, ignores it. Its audio features may differ from the DiT's
  (e.g. a wav2vec DiT, a low-level-feature expert); each reads its own.
- **mouth vertices**: built per identity (the face model's blendshapes on the clip's neutral shape, the
  stand-in for ``S(alpha, beta)``) and placed on the expert's mean mouth, ``mean_mouth + beta~_0 @ basis_id``:
  the expert reads offsets from a rest mouth and was trained on the mean face's, so the identity acts through
  its blendshapes, not through its rest shape. Clips without a neutral shape, or an expert whose mouth is the
  layout's mouth channels (``mouth_source = channels:mouth``), use the expert's own basis.
- **loss weights**: the paper gives none ("the same numeric scale"); ``lambda_exp = lambda_pose = 1`` and
  ``lambda_sync = 0.1`` (the project's DreamTalk ``cpu`` denoiser's weight; ``-log P_sync`` starts near 0.7 while
  the normalised ``L_exp`` falls to about 0.1-0.3, so a weight of 1 would let the expert dominate early training).
- **training settings**: window ``N``, batch, learning rate and steps are not given. ``paper`` uses 100-frame
  windows (4 s at 25 fps) and the shared loop's defaults (Adam, lr 1e-4, batch 64, 100k steps); ``cpu`` and
  ``tiny`` are sized for a CPU and for tests. Training goes through the shared loop
  (:func:`talkinghead.training.loop.fit`: Fabric, exact resume, EMA, progress); the exported model is the EMA of
  the weights (the paper does not mention an EMA).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from talkinghead.diffusion import ScheduleConfig, add_noise, make_scheduler, sample_timesteps
from talkinghead.errors import TalkingHeadError
from talkinghead.motion.dreamtalk.lip_expert import EPS, StyleAwareLipExpert, sync_loss
from talkinghead.motion.fd2talk.data import FD2TalkCorpus, FD2TalkWindow, part_groups, part_layout
from talkinghead.motion.fd2talk.model import DiTConfig, MotionDiT
from talkinghead.sequence import ChannelLayout
from talkinghead.training.loop import Solver, TrainConfig
from talkinghead.training.registry import SolverBuild

#: where the shipped lip expert lives, relative to ``weights/``
LIP_EXPERT = ("dreamtalk", "lip_expert")


@dataclass(frozen=True)
class FD2TalkTrainConfig(TrainConfig):
    """The shared loop's settings plus FD2Talk's: the window length ``N``, Eq. 12's weights, whether the sync loss
    is on (the expression builder sets it) and the length of the lip expert's style reference."""

    window_frames: int = 100
    lambda_exp: float = 1.0
    lambda_pose: float = 1.0
    lambda_sync: float = 0.1
    sync_loss: bool = False
    style_min_frames: int = 64
    style_max_frames: int = 256

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {**TrainConfig.presets["tiny"], "window_frames": 12, "style_min_frames": 8, "style_max_frames": 16},
        "cpu": {**TrainConfig.presets["cpu"], "steps": 3000, "batch_size": 16, "window_frames": 50,
                "style_min_frames": 32, "style_max_frames": 64},
        "paper": {"window_frames": 100},
    }


class _DiTStep(nn.Module):
    """One training step's loss: ``forward(batch) -> (loss, metrics)`` (see the module docstring)."""

    def __init__(self, net: MotionDiT, schedule: ScheduleConfig, config: FD2TalkTrainConfig,
                 groups: dict[str, slice], expert: StyleAwareLipExpert | None) -> None:
        super().__init__()
        self.net = net
        self.scheduler = make_scheduler(schedule, "ddpm")
        self.config = config
        self.groups = groups
        self._expert = [expert]  # a frozen helper, not a submodule: not trained, not saved, not DDP-synced

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        net, cfg = self.net, self.config
        x0 = net.motion_norm(batch["motion"])                                   # [B, N, C]
        xt = add_noise(self.scheduler, x0, batch["noise"], batch["t"])          # Eq. 2, closed form
        pred = net(xt, batch["t"], batch["audio"])                              # [B, N, C] x~_0
        weights = {"exp": cfg.lambda_exp, "pose": cfg.lambda_pose}
        metrics: dict[str, torch.Tensor] = {}
        loss = pred.new_zeros(())
        for name, columns in self.groups.items():                               # Eq. 8, 9
            term = F.mse_loss(pred[..., columns], x0[..., columns])
            loss = loss + weights[name] * term
            metrics[name] = term.detach()
        expert = self._expert[0]
        if expert is not None and cfg.sync_loss:
            p = sync_probability(expert, net.motion_norm.inverse(pred)[..., self.groups["exp"]], batch)
            sync = sync_loss(p)                                                 # Eq. 11
            loss = loss + cfg.lambda_sync * sync
            metrics.update(sync=sync.detach(), p_sync=p.mean().detach())
        metrics["loss"] = loss.detach()
        return loss, metrics


def sync_probability(expert: StyleAwareLipExpert, expression: torch.Tensor,
                     batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Eq. 10 on ``n`` frames of the predicted raw expression ``[B, N, E]`` from ``batch["lip_start"]``:
    ``P_sync [B]``. Mouth vertices ``mean_mouth + beta @ basis_id`` (``batch["mouth_basis"]: [B, E, M, 3]``)."""
    n = expert.config.clip_frames
    index = batch["lip_start"][:, None] + torch.arange(n, device=expression.device)     # [B, n]
    clip = torch.gather(expression, 1, index[..., None].expand(-1, -1, expression.shape[-1]))   # [B, n, E]
    vertices = expert.mouth_neutral + torch.einsum("bne,bemk->bnmk", clip, batch["mouth_basis"])   # [B, n, M, 3]
    with torch.no_grad():                                                   # the reference is not trained
        style = expert.encode_style(batch["style"], batch["style_valid"])
    e_a, e_m = expert.embed(batch["lip_audio"], vertices, style)
    return F.cosine_similarity(e_a, e_m, dim=-1, eps=EPS)


class DiTSolver(Solver):
    """Trains one FD2Talk DiT; the subclasses name the registry component and the parts it may train."""

    parts: ClassVar[tuple[str, ...]]
    train_config_class: ClassVar[type[TrainConfig]] = FD2TalkTrainConfig

    def __init__(self, corpus: FD2TalkCorpus, model_config: DiTConfig, train_config: FD2TalkTrainConfig,
                 lip_expert: StyleAwareLipExpert | None = None, schedule: ScheduleConfig | None = None) -> None:
        if corpus.part not in self.parts:
            raise TalkingHeadError(f"The {self.component} solver trains the {' or '.join(self.parts)} DiT, not "
                                   f"the {corpus.part} DiT.")
        if train_config.window_frames < 1:
            raise TalkingHeadError("window_frames must be at least 1.")
        self.corpus = corpus
        self.train_config = train_config
        self.schedule = schedule or ScheduleConfig()
        if self.schedule.prediction_type != "sample":
            raise TalkingHeadError("FD2Talk's DiTs predict the clean motion (Eq. 3); the schedule needs "
                                   "prediction_type 'sample'.")
        self.model_config = model_config.replace(motion_dim=corpus.motion_dim, audio_dim=corpus.audio_dim)
        self.groups = part_groups(corpus.layout, corpus.part)
        if train_config.sync_loss:
            if lip_expert is None:
                raise TalkingHeadError("The sync loss needs a lip expert; give one or train with --no-sync-loss.")
            check_lip_expert(lip_expert, corpus, train_config.window_frames)
            lip_expert.eval().requires_grad_(False)
        self.lip_expert = lip_expert if train_config.sync_loss else None
        #: the expert's own (mean-face) mouth basis [E, M, 3], for clips without an identity basis
        self._expert_basis = None if self.lip_expert is None else self.lip_expert.mouth_basis.detach().cpu().numpy()

    def build_model(self) -> MotionDiT:
        model = MotionDiT(self.model_config, layout=part_layout(self.corpus.layout, self.corpus.part).to_dict(),
                          audio_features=self.corpus.audio_spec())
        model.audio_norm.set_stats(*map(torch.from_numpy, self.corpus.stats("audio")))
        model.motion_norm.set_stats(*map(torch.from_numpy, self.corpus.stats("motion")))
        return model

    def wrap(self, model: nn.Module) -> nn.Module:
        assert isinstance(model, MotionDiT)
        return _DiTStep(model, self.schedule, self.train_config, self.groups, self.lip_expert)

    def to_device(self, device: torch.device) -> None:
        if self.lip_expert is not None:
            self.lip_expert.to(device)

    def make_batch(self, rng: np.random.Generator, batch_size: int) -> dict[str, torch.Tensor]:
        cfg = self.train_config
        windows = self.corpus.sample(rng, batch_size, cfg.window_frames)
        batch = {"motion": torch.from_numpy(np.stack([w.motion for w in windows])),
                 "audio": torch.from_numpy(np.stack([w.audio for w in windows])),
                 "t": sample_timesteps(batch_size, self.schedule.num_train_timesteps)}
        batch["noise"] = torch.randn(batch["motion"].shape)
        if self.lip_expert is not None:
            batch.update(self._sync_inputs(rng, windows))
        return batch

    def _sync_inputs(self, rng: np.random.Generator, windows: list[FD2TalkWindow]) -> dict[str, torch.Tensor]:
        assert self.lip_expert is not None and self._expert_basis is not None
        cfg = self.train_config
        return sync_inputs(self.lip_expert, self.corpus, windows, rng, cfg.window_frames,
                           (cfg.style_min_frames, cfg.style_max_frames), self._expert_basis)


def sync_inputs(expert: StyleAwareLipExpert, corpus: FD2TalkCorpus, windows: Sequence[FD2TalkWindow],
                rng: np.random.Generator, window_frames: int, style_frames: tuple[int, int],
                expert_basis: np.ndarray) -> dict[str, torch.Tensor]:
    """What :func:`sync_probability` reads about ``windows`` of ``corpus``: ``lip_start [B]`` (a random clip of the
    expert's ``n`` frames in each window), ``lip_audio [B, n, A_e]``, ``mouth_basis [B, E, M, 3]`` (the identity's,
    else ``expert_basis``, the expert's own) and the style reference ``style [B, S, E]``, ``style_valid [B, S]``
    (``style_frames``: its shortest and longest length)."""
    n = expert.config.clip_frames
    starts = rng.integers(0, window_frames - n + 1, size=len(windows))
    bases = [corpus.mouth_bases[w.mouth] if w.mouth >= 0 else expert_basis for w in windows]
    style, valid = corpus.style_segments(rng, list(windows), *style_frames)
    lip_audio = [w.lip_audio[s:s + n] for w, s in zip(windows, starts, strict=True) if w.lip_audio is not None]
    return {"lip_start": torch.from_numpy(starts.astype(np.int64)),
            "lip_audio": torch.from_numpy(np.stack(lip_audio)),
            "mouth_basis": torch.from_numpy(np.stack(bases).astype(np.float32)),
            "style": torch.from_numpy(style), "style_valid": torch.from_numpy(valid)}


class ExpressionSolver(DiTSolver):
    component: ClassVar[str] = "fd2talk.expression"
    parts: ClassVar[tuple[str, ...]] = ("expression", "joint")


class PoseSolver(DiTSolver):
    component: ClassVar[str] = "fd2talk.pose"
    parts: ClassVar[tuple[str, ...]] = ("pose",)


def check_lip_expert(expert: StyleAwareLipExpert, corpus: FD2TalkCorpus, window_frames: int) -> None:
    """One clear sentence when the lip expert cannot judge this corpus's expression."""
    layout = ChannelLayout.from_dict(expert.layout) if expert.layout else None
    if expert.config.expression_dim != corpus.layout.size or (layout and layout.channels != corpus.layout.channels):
        raise TalkingHeadError(f"The lip expert reads {expert.config.expression_dim} expression channels of another "
                               f"layout; the dataset has the {corpus.layout.size} of '{corpus.layout.name}'.")
    if expert.config.audio_dim != corpus.lip_audio_dim:
        raise TalkingHeadError(f"The lip expert reads {expert.config.audio_dim}-d audio features; the dataset's "
                               f"{', '.join(corpus.lip_feature_names)} are {corpus.lip_audio_dim}-d.")
    if window_frames < expert.config.clip_frames:
        raise TalkingHeadError(f"window_frames ({window_frames}) must be at least the lip expert's clip length "
                               f"({expert.config.clip_frames}).")
    if any(b.shape[1] != expert.config.mouth_vertices for b in corpus.mouth_bases):
        raise TalkingHeadError(f"The lip expert reads {expert.config.mouth_vertices} mouth vertices; the face "
                               "model's mouth has another number.")


def load_lip_expert(directory: str | Path | None, loss: str = "FD2Talk's sync loss",
                    without: str = "train with --no-sync-loss") -> tuple[StyleAwareLipExpert, Path]:
    """The lip expert in ``directory`` (default: the shipped ``weights/dreamtalk/lip_expert``) and its path;
    ``loss`` and ``without`` word the refusal when the default is missing (the loss that needs it, how to train
    without it)."""
    from talkinghead.generators import weights_root

    path = Path(directory) if directory is not None else weights_root().joinpath(*LIP_EXPERT)
    if directory is None and not path.is_dir():
        raise TalkingHeadError(f"{loss} needs a trained lip expert and {path} is missing; pass "
                               f"--lip-expert DIR (talkinghead train dreamtalk.lip_expert) or {without}.")
    return StyleAwareLipExpert.from_pretrained(path), path


def expert_inputs(expert: StyleAwareLipExpert, path: Path | None = None) -> tuple[tuple[str, ...], bool]:
    """What a corpus must give the lip expert (loaded from ``path``, if known): its audio features' names (its
    checkpoint records them) and whether its mouth is the face model's, so each identity's own mouth basis
    applies."""
    features = tuple((expert.audio_features or {}).get("names", ()))
    if not features:
        where = f" in {path}" if path is not None else ""
        raise TalkingHeadError(f"The lip expert{where} does not record its audio features.")
    return features, str((expert.audio_features or {}).get("mouth_source", "")).startswith("face_model")


def build_dit(part: str, data: str | Path, preset: str, *, features: tuple[str, ...] = (),
              train_overrides: dict[str, Any] | None = None, lip_expert: str | Path | None = None,
              no_sync_loss: bool = False, no_alignment_mask: bool = False) -> SolverBuild:
    """The solver of the ``part`` DiT on ``data``, its training config and the checkpoint's ``extra``: the part, its
    channels, the dataset's layout (to split a joint model's output), the window length, the losses, the lip
    expert and how the mouth was built, and the variant flags."""
    sync = part != "pose" and not no_sync_loss
    config = FD2TalkTrainConfig.preset(preset, **(train_overrides or {})).replace(sync_loss=sync)
    expert, expert_path = load_lip_expert(lip_expert) if sync else (None, None)
    lip_features, identity_mouth = expert_inputs(expert, expert_path) if expert is not None else ((), False)
    corpus = FD2TalkCorpus(data, part, features, lip_features, identity_mouth)
    solver_class = PoseSolver if part == "pose" else ExpressionSolver
    solver = solver_class(corpus, DiTConfig.preset(preset, alignment_mask=not no_alignment_mask), config, expert)
    variant = {"no_alignment_mask": no_alignment_mask, "no_sync_loss": no_sync_loss and part != "pose",
               "single_dit": part == "joint"}
    mouth = None
    if sync:
        mouth = "identity" if any(c.mouth >= 0 for c in corpus.clips) else "lip_expert"
    extra = {"part": part, "channels": list(corpus.channels), "dataset_layout": corpus.layout.to_dict(),
             "window_frames": config.window_frames, "alignment_mask": not no_alignment_mask,
             "align_k": solver.model_config.align_k, "sync_loss": sync,
             "losses": {"lambda_exp": config.lambda_exp if part != "pose" else 0.0,
                        "lambda_pose": config.lambda_pose if part != "expression" else 0.0,
                        "lambda_sync": config.lambda_sync if sync else 0.0},
             "lip_expert": str(expert_path) if expert_path else None, "mouth": mouth,
             "variant": sorted(k for k, v in variant.items() if v)}
    return SolverBuild(solver, config, extra)


def build_expression(data: str | Path, preset: str, *, features: tuple[str, ...] = (),
                     train_overrides: dict[str, Any] | None = None, lip_expert: str | Path | None = None,
                     no_sync_loss: bool = False, no_alignment_mask: bool = False,
                     single_dit: bool = False) -> SolverBuild:
    """The registry's builder of ``fd2talk.expression`` (``single_dit``: the joint DiT of Table 2)."""
    return build_dit("joint" if single_dit else "expression", data, preset, features=features,
                     train_overrides=train_overrides, lip_expert=lip_expert, no_sync_loss=no_sync_loss,
                     no_alignment_mask=no_alignment_mask)


def build_pose(data: str | Path, preset: str, *, features: tuple[str, ...] = (),
               train_overrides: dict[str, Any] | None = None, no_alignment_mask: bool = False) -> SolverBuild:
    """The registry's builder of ``fd2talk.pose``."""
    return build_dit("pose", data, preset, features=features, train_overrides=train_overrides,
                     no_alignment_mask=no_alignment_mask)

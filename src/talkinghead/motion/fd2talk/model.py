"""FD2Talk 3.2, the motion Diffusion Transformer (DiT): noisy motion ``x_t``, step ``t`` and audio -> clean motion.

FD2Talk (Yao et al., ACM MM 2024) trains two transformers of this one architecture (Fig. 2): the Expression
Transformer ``theta_exp`` over the expression coefficients ``beta`` and the Pose Transformer ``theta_pose`` over the
head pose ``p``; :class:`MotionDiT` is either, ``motion_dim`` read from the dataset's channel layout. It is
sequence to sequence: ``F`` noisy motion frames in, ``F`` predicted clean frames out, aligned with ``F`` frames of
audio features.

The network (3.2), for one sequence:

- **condition** ``c``: "we concatenate the embedding from the timestep and audio features", per frame:
  ``c_i = [e(t); a_i]`` ``[F, D_t + D_a]`` (:class:`StepEmbedding`, the project's diffusion-step embedding);
  "project ``c`` to ``tau(c) in R^{F x D_tau}`` using a linear layer" (:meth:`MotionDiT.condition`);
- **motion tokens**: the noisy motion projected to the model width plus sinusoidal positions;
- **layers** (:class:`DiTLayer`, ``L`` of them): self-attention over the motion frames, cross-attention "where the
  query (Q) is derived from ``p_t``, while the key (K) and value (V) are obtained from ``tau(c)``", with the
  **alignment mask** of Eq. 4 (:func:`alignment_mask`): motion frame ``j`` attends to condition frame ``i`` only
  if ``j - k <= i <= j + k`` (``k = 3``), and a feed-forward block; each a pre-norm residual;
- **output**: a final LayerNorm and a linear layer to ``motion_dim``: the predicted clean motion ``x~_0``
  (Eq. 3: "all diffusion-based models are designed to predict signal itself rather than noise").

The network knows no noise schedule: the forward process (Eq. 2), the loss (Eq. 3, 8, 9) and the reverse step
(Eq. 5) live in :mod:`talkinghead.diffusion` and the solvers (DESIGN.md, "Style" 2).

Variants chosen when building (FD2Talk Table 3, "w/o alignment"): ``alignment_mask = False`` gives every motion
frame every condition frame (a plain cross-attention). The single-DiT variant of Table 2 is this network over
expression and pose channels together (``motion_dim = E + 6``; :mod:`.data`).

Deviations from the paper, and why:

- **sizes**: the paper gives no width, depth, heads, feed-forward size, dropout, ``D_tau`` or step-embedding
  width. The ``paper`` preset (the defaults) takes MDM's sizes (Tevet et al., ICLR 2023: width 512, 8 layers,
  4 heads, feed-forward 1024, dropout 0.1), the motion diffusion transformer this one resembles, with
  ``D_tau = D_t = 512``; the project's Dimitra cMDT uses the same. ``cpu`` is far smaller so that each DiT trains
  in about ten minutes on one CPU thread; ``tiny`` is for tests.
- **speech features**: wav2vec 2.0 [2], size not given; ``paper`` takes 768-d base features (the project's
  ``dimitra`` audio spec, a dataset prepared with a local wav2vec 2.0 folder), ``cpu`` the project's 122-d
  encoder-free frame features (no pretrained weights can be downloaded here).
- **layer layout**: the paper names the cross-attention only; a transformer layer here is self-attention,
  masked cross-attention and feed-forward with pre-norm residuals (the layout of MDM's and DiT's decoders), and
  the step reaches the motion only through ``tau(c)``, as written.
- **normalisation**: as in the project's other motion models, audio features and motion are standardised per
  channel with training-set statistics kept as checkpoint buffers (the paper mentions none). The noisy and
  predicted motion are normalised; the audio is given raw.
- **fixed-length windows**: no padding mask; training cuts clips to windows of ``N`` frames, and
  :mod:`.generator` covers long audio with overlapping windows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from talkinghead.checkpoint import PretrainedMixin
from talkinghead.config import Config
from talkinghead.errors import TalkingHeadError
from talkinghead.nn.embeddings import StepEmbedding, sinusoidal_positions
from talkinghead.nn.normalize import Normalizer

#: Eq. 4: "For FD2Talk, we empirically set k = 3"
ALIGN_K = 3


def alignment_mask(query_frames: int, key_frames: int, k: int = ALIGN_K,
                   device: torch.device | None = None) -> torch.Tensor:
    """Eq. 4, the alignment mask ``M``: ``[F_q, F_k]`` bool, True where motion frame ``j`` (row) may attend to
    condition frame ``i`` (column), i.e. ``j - k <= i <= j + k``."""
    j = torch.arange(query_frames, device=device)[:, None]
    i = torch.arange(key_frames, device=device)[None, :]
    return (i >= j - k) & (i <= j + k)


@dataclass(frozen=True)
class DiTConfig(Config):
    """Sizes of the motion DiT (3.2). The defaults are the ``paper`` preset (MDM's sizes, see the module
    docstring; the paper gives none). ``cond_dim`` is ``D_tau``, ``step_dim`` the step embedding's width ``D_t``;
    ``align_k`` the ``k`` of Eq. 4; ``alignment_mask = False`` is Table 3's "w/o alignment"."""

    motion_dim: int = 64
    audio_dim: int = 768
    dim: int = 512
    cond_dim: int = 512
    step_dim: int = 512
    layers: int = 8
    heads: int = 4
    ff_dim: int = 1024
    dropout: float = 0.1
    align_k: int = ALIGN_K
    alignment_mask: bool = True

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {"audio_dim": 8, "dim": 32, "cond_dim": 32, "step_dim": 32, "layers": 2, "heads": 2, "ff_dim": 64,
                 "dropout": 0.0},
        "cpu": {"audio_dim": 122, "dim": 128, "cond_dim": 128, "step_dim": 128, "layers": 4, "heads": 4,
                "ff_dim": 256, "dropout": 0.1},
        "paper": {},
    }

    def __post_init__(self) -> None:
        if min(self.motion_dim, self.audio_dim, self.dim, self.cond_dim, self.step_dim, self.layers,
               self.heads, self.ff_dim) < 1:
            raise TalkingHeadError("Every size of the FD2Talk DiT must be at least 1.")
        if self.dim % self.heads:
            raise TalkingHeadError(f"The DiT width {self.dim} is not divisible by its {self.heads} heads.")
        if self.align_k < 0:
            raise TalkingHeadError(f"The alignment mask's k must be 0 or more, got {self.align_k}.")


class DiTLayer(nn.Module):
    """One DiT layer: self-attention over the motion, cross-attention to ``tau(c)`` under the alignment mask,
    feed-forward; each a pre-norm residual."""

    def __init__(self, dim: int, cond_dim: int, heads: int, ff_dim: int, dropout: float) -> None:
        super().__init__()
        self.norm_self = nn.LayerNorm(dim)
        self.self_attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.norm_cross = nn.LayerNorm(dim)
        self.cross_attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True,
                                                kdim=cond_dim, vdim=cond_dim)
        self.norm_ff = nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, ff_dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(ff_dim, dim))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, cond: torch.Tensor, blocked: torch.Tensor | None) -> torch.Tensor:
        """``x: [B, F, dim]`` motion tokens, ``cond: [B, F_c, cond_dim]`` the projected condition ``tau(c)``,
        ``blocked: [F, F_c]`` bool, True where attention is *not* allowed (``~M`` of Eq. 4; None: none blocked)
        -> ``[B, F, dim]``."""
        h = self.norm_self(x)
        x = x + self.drop(self.self_attn(h, h, h, need_weights=False)[0])
        x = x + self.drop(self.cross_attn(self.norm_cross(x), cond, cond, attn_mask=blocked, need_weights=False)[0])
        return x + self.drop(self.ff(self.norm_ff(x)))


class MotionDiT(PretrainedMixin, nn.Module):
    """FD2Talk's Expression or Pose Transformer (3.2): ``x~_0 = theta(x_t, t, A)``."""

    component: ClassVar[str] = "fd2talk.dit"
    config_class: ClassVar[type[Config]] = DiTConfig
    checkpoint_inputs: ClassVar[tuple[str, ...]] = ("layout", "audio_features")
    config: DiTConfig

    def __init__(self, config: DiTConfig, layout: dict[str, Any] | None = None,
                 audio_features: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.config = config
        self.layout = layout
        self.audio_features = audio_features
        c = config
        self.audio_norm = Normalizer(c.audio_dim)
        self.motion_norm = Normalizer(c.motion_dim)
        self.step_embedding = StepEmbedding(c.step_dim)
        self.condition_projection = nn.Linear(c.step_dim + c.audio_dim, c.cond_dim)    # tau
        self.motion_in = nn.Linear(c.motion_dim, c.dim)
        self.layers = nn.ModuleList(DiTLayer(c.dim, c.cond_dim, c.heads, c.ff_dim, c.dropout) for _ in range(c.layers))
        self.out_norm = nn.LayerNorm(c.dim)
        self.head = nn.Linear(c.dim, c.motion_dim)

    def condition(self, t: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        """3.2: ``tau(c) = Linear([e(t); a_i])`` per frame. ``t: [B]``, ``audio: [B, F, audio_dim]`` raw
        -> ``[B, F, cond_dim]``."""
        step = self.step_embedding(t)                                                   # [B, D_t]
        step = step[:, None].expand(-1, audio.shape[1], -1)                             # [B, F, D_t]
        return self.condition_projection(torch.cat([step, self.audio_norm(audio)], -1))

    def blocked(self, frames: int, cond_frames: int, device: torch.device) -> torch.Tensor | None:
        """What the cross-attention may not see: ``~M`` of Eq. 4 ``[F, F_c]``, or None without the mask."""
        if not self.config.alignment_mask:
            return None
        return ~alignment_mask(frames, cond_frames, self.config.align_k, device)

    def forward(self, noisy: torch.Tensor, t: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        """Predict the clean motion (Eq. 3).

        ``noisy: [B, F, C]`` normalised motion ``x_t`` at step ``t: [B]``; ``audio: [B, F, audio_dim]`` raw
        features, one frame per motion frame. Returns the normalised clean motion ``x~_0`` ``[B, F, C]``.
        """
        self._check(noisy, t, audio)
        b, frames, _ = noisy.shape
        cond = self.condition(t, audio)                                                 # [B, F, D_tau]
        blocked = self.blocked(frames, cond.shape[1], noisy.device)                     # [F, F] or None
        h = self.motion_in(noisy) + sinusoidal_positions(frames, self.config.dim, noisy.device)
        for layer in self.layers:
            h = layer(h, cond, blocked)
        return self.head(self.out_norm(h))

    def _check(self, noisy: torch.Tensor, t: torch.Tensor, audio: torch.Tensor) -> None:
        """One clear sentence for inputs that do not fit this model or each other."""
        c = self.config
        if noisy.ndim != 3 or noisy.shape[2] != c.motion_dim:
            raise TalkingHeadError(f"The noisy motion is {tuple(noisy.shape)}; expected [B, F, {c.motion_dim}].")
        b, frames = noisy.shape[:2]
        if audio.ndim != 3 or audio.shape[2] != c.audio_dim:
            raise TalkingHeadError(f"The audio features are {tuple(audio.shape)}; expected [B, F, {c.audio_dim}].")
        if tuple(audio.shape[:2]) != (b, frames):
            raise TalkingHeadError(f"The audio has {tuple(audio.shape[:2])} batch and frames but the motion has "
                                   f"{(b, frames)}; FD2Talk needs one audio frame per motion frame.")
        if tuple(t.shape) != (b,):
            raise TalkingHeadError(f"The diffusion steps are {tuple(t.shape)}; expected one per sequence, [{b}].")

"""DreamTalk 3.2 / App. C.3.2 / Fig. 15, the style-aware lip expert ``E`` (Eq. 3, Eq. 10, Eq. 7).

``P_sync = E(a[l..l+n], m[l..l+n], R)``: the probability that ``n`` frames of audio and lip motion are
in sync under the speaking style of reference ``R`` (``n = 5``, App. C.3).

- **Mouth embedder**: the motion is turned into the face mesh (``neutral + expression @ basis``, App. C.3.2)
  and only the mouth vertices are kept; per-frame MLPs embed them, the style feature is concatenated to
  the intermediate feature map, and 1-D conv blocks over time reduce it to the embedding ``e^m``.
- **Audio embedder**: 1-D conv blocks (ConvBlock = Conv1d + BatchNorm + ReLU, ConvRBlock = residual
  ConvBlock, Fig. 15) over the ``n`` audio frames, the style feature concatenated in the middle, then
  more conv blocks to the embedding ``e^a``.
- **Style encoder**: same architecture as the denoiser's (3.2), its own parameters; its code is projected
  separately for each embedder.
- ``P_sync = cos(e^m, e^a)`` (Eq. 10); both embeddings end in a ReLU (as in Wav2Lip's expert [49]) so the
  cosine lies in [0, 1] and is a probability for the BCE loss.

Deviations: Fig. 15's exact channel widths are not in the text; the widths here are configurable
(``channels``). The mouth vertices are fed as offsets from the neutral mouth divided by one global scale
(a fixed affine map of the vertices, so the information is the paper's); the vertex basis is stored as
buffers so the expert is self-contained. The lip expert's style reference is the expression sequence
(no pose), as in the paper.

Variant ``style_aware = False`` (Tab. 2 "uncond lip expert", see :mod:`.variants`): no style encoder and
no style features in the embedders; the style reference passed to :meth:`StyleAwareLipExpert.forward`
is then ignored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from talkinghead.checkpoint import PretrainedMixin
from talkinghead.config import Config
from talkinghead.errors import TalkingHeadError
from talkinghead.motion.dreamtalk.style_encoder import StyleEncoder
from talkinghead.nn.normalize import Normalizer

EPS = 1e-6


@dataclass(frozen=True)
class LipExpertConfig(Config):
    audio_dim: int = 1024
    expression_dim: int = 64
    mouth_vertices: int = 40
    clip_frames: int = 5
    channels: int = 256
    embed_dim: int = 512
    style_dim: int = 256
    style_heads: int = 8
    style_layers: int = 3
    style_ff_dim: int = 1024
    dropout: float = 0.1
    style_aware: bool = True

    #: fields added after checkpoints were first written; old checkpoints load with their defaults
    added_fields: ClassVar[tuple[str, ...]] = ("style_aware",)

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {"channels": 32, "embed_dim": 32, "style_dim": 32, "style_heads": 2, "style_layers": 1,
                 "style_ff_dim": 64, "dropout": 0.0},
        "cpu": {"channels": 128, "embed_dim": 128, "style_dim": 128, "style_heads": 4, "style_layers": 2,
                "style_ff_dim": 256},
        "paper": {},
    }


class ConvBlock(nn.Module):
    """Conv1d + BatchNorm (+ ReLU); ``residual`` makes it a ConvRBlock (Fig. 15)."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1, residual: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv1d(cin, cout, kernel, stride, padding=kernel // 2)
        self.norm = nn.BatchNorm1d(cout)
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: [B, C_in, n]`` -> ``[B, C_out, n']``."""
        y = self.norm(self.conv(x))
        if self.residual:
            y = y + x
        return F.relu(y)


class _Embedder(nn.Module):
    """Front (per frame) -> concat style -> temporal conv blocks -> pooled, ReLU'd embedding.
    ``style_dim = 0``: no style input (the unconditional expert)."""

    def __init__(self, front: nn.Module, channels: int, style_dim: int, embed_dim: int) -> None:
        super().__init__()
        self.front = front
        self.style = nn.Linear(style_dim, channels) if style_dim > 0 else None
        self.back = nn.Sequential(
            ConvBlock(2 * channels if style_dim > 0 else channels, channels, 3, 1),
            ConvBlock(channels, channels, 3, 1, residual=True),
            ConvBlock(channels, 2 * channels, 3, 2),
            ConvBlock(2 * channels, 2 * channels, 3, 1, residual=True),
            ConvBlock(2 * channels, embed_dim, 3, 2),
        )
        self.out = nn.Conv1d(embed_dim, embed_dim, 1)

    def forward(self, x: torch.Tensor, style: torch.Tensor | None) -> torch.Tensor:
        """``x: [B, D, n]``, ``style: [B, d_s]`` (``None`` without style input) -> ``[B, embed_dim]``."""
        h = self.front(x)                                                        # [B, ch, n]
        if self.style is not None:
            if style is None:
                raise TalkingHeadError("The style-aware lip expert needs a style reference.")
            s = self.style(style)[:, :, None].expand(-1, -1, h.shape[-1])         # concat style features
            h = torch.cat([h, s], dim=1)
        h = self.back(h)
        return F.relu(self.out(h).mean(dim=-1))


class _FrameMLP(nn.Module):
    """Per-frame MLP over channels of a ``[B, D, n]`` map (the mouth embedder's MLP part)."""

    def __init__(self, din: int, dout: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(din, dout), nn.ReLU(), nn.Linear(dout, dout), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return rearrange(self.net(rearrange(x, "b d n -> b n d")), "b n d -> b d n")


class StyleAwareLipExpert(PretrainedMixin, nn.Module):
    """``P_sync`` of audio and mouth-vertex clips under a style reference (Eq. 3, Eq. 10)."""

    component: ClassVar[str] = "dreamtalk.lip_expert"
    config_class: ClassVar[type[Config]] = LipExpertConfig
    checkpoint_inputs: ClassVar[tuple[str, ...]] = ("layout", "audio_features")
    config: LipExpertConfig
    mouth_basis: torch.Tensor
    mouth_neutral: torch.Tensor
    vertex_scale: torch.Tensor

    def __init__(self, config: LipExpertConfig, layout: dict[str, Any] | None = None,
                 audio_features: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.config = config
        self.layout = layout
        self.audio_features = audio_features
        c = config
        self.register_buffer("mouth_basis", torch.zeros(c.expression_dim, c.mouth_vertices, 3))
        self.register_buffer("mouth_neutral", torch.zeros(c.mouth_vertices, 3))
        self.register_buffer("vertex_scale", torch.ones(()))
        self.audio_norm = Normalizer(c.audio_dim)
        self.expression_norm = Normalizer(c.expression_dim)
        self.style_encoder = StyleEncoder(c.expression_dim, c.style_dim, c.style_heads, c.style_layers,
                                          c.style_ff_dim, c.dropout) if c.style_aware else None
        style_dim = c.style_dim if c.style_aware else 0
        audio_front = nn.Sequential(ConvBlock(c.audio_dim, c.channels, 3, 1),
                                    ConvBlock(c.channels, c.channels, 3, 1, residual=True))
        self.audio_embedder = _Embedder(audio_front, c.channels, style_dim, c.embed_dim)
        self.mouth_embedder = _Embedder(_FrameMLP(c.mouth_vertices * 3, c.channels), c.channels, style_dim,
                                        c.embed_dim)

    def set_mouth_model(self, basis: torch.Tensor, neutral: torch.Tensor, scale: float) -> None:
        """Install the face model's mouth basis ``[E, M, 3]``, neutral ``[M, 3]`` and an offset scale."""
        self.mouth_basis.copy_(torch.as_tensor(basis, dtype=torch.float32))
        self.mouth_neutral.copy_(torch.as_tensor(neutral, dtype=torch.float32))
        self.vertex_scale.fill_(float(max(scale, 1e-8)))

    def mouth_vertices(self, expression: torch.Tensor) -> torch.Tensor:
        """Differentiable mouth mesh ``neutral + expression @ basis`` (App. C.3.2). ``[B, n, E] -> [B, n, M, 3]``."""
        return self.mouth_neutral + torch.einsum("bne,emk->bnmk", expression, self.mouth_basis)

    def encode_style(self, expression: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor | None:
        """Lip-expert style code from a reference expression sequence ``[B, N, E]`` (raw) -> ``[B, d_s]``
        (``None`` for the unconditional expert)."""
        if self.style_encoder is None:
            return None
        return self.style_encoder(self.expression_norm(expression), valid)

    def embed(self, audio: torch.Tensor, vertices: torch.Tensor,
              style: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """``audio: [B, n, D_a]`` raw features, ``vertices: [B, n, M, 3]``, ``style: [B, d_s]`` (``None``:
        unconditional expert) -> ``(e^a, e^m)``."""
        offsets = (vertices - self.mouth_neutral) / self.vertex_scale
        e_m = self.mouth_embedder(rearrange(offsets, "b n m k -> b (m k) n"), style)
        e_a = self.audio_embedder(rearrange(self.audio_norm(audio), "b n d -> b d n"), style)
        return e_a, e_m

    def forward(self, audio: torch.Tensor, vertices: torch.Tensor, style_expression: torch.Tensor,
                style_valid: torch.Tensor | None = None) -> torch.Tensor:
        """``P_sync [B]`` in [0, 1] (Eq. 3): cosine similarity of the two embeddings (Eq. 10).
        ``style_expression: [B, N, E]`` (ignored by the unconditional expert)."""
        style = self.encode_style(style_expression, style_valid)
        e_a, e_m = self.embed(audio, vertices, style)
        return F.cosine_similarity(e_a, e_m, dim=-1, eps=EPS)

    def sync_probability(self, audio: torch.Tensor, expression: torch.Tensor, style_expression: torch.Tensor,
                         style_valid: torch.Tensor | None = None) -> torch.Tensor:
        """``P_sync`` from raw expression ``[B, n, E]`` (mouth vertices computed differentiably)."""
        return self(audio, self.mouth_vertices(expression), style_expression, style_valid)


def expert_loss(p_sync: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    """Eq. 10: BCE of the cosine similarity against the in-sync label (1 = synchronous)."""
    return F.binary_cross_entropy(p_sync.clamp(EPS, 1 - EPS), label.float())


def sync_loss(p_sync: torch.Tensor) -> torch.Tensor:
    """Eq. 7: ``L_sync = -log P_sync`` on generated clips (mean over the batch)."""
    return -torch.log(p_sync.clamp_min(EPS)).mean()

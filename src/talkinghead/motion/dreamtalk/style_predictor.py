"""DreamTalk 3.2 (Eq. 4) / 3.3 (Eq. 9) / App. C.1, C.2.2, the diffusion style predictor ``S_phi``.

``s_(0)* = S(s_(t), t, A, I)``: a transformer encoder (paper: six 8-head layers, hidden 256) over the
token sequence, in order,

    [audio embeddings (one per frame) | diffusion step | speaker info | noised style code | learned query]

whose output at the learned query is the predicted clean style code (the signal, like the denoiser).
All inputs are linearly projected to ``d_model`` (App. C.1). The speaker-info token is an MLP of the
portrait's identity descriptor (the paper uses 3DMM identity parameters; here the face frontend's
identity descriptor, stored per clip as ``identity["descriptor"]``).

Audio features (App. C.2.2): a pretrained speech encoder's features (HuBERT in the paper) when the
dataset has them, concatenated with MFCC, FBANK, f0 and the voicing flag; without an encoder the
project's own frame features stand in. Which features, and their dims, are recorded in the checkpoint.

Deviations: style codes, audio and identity descriptors are standardised with training-set statistics
(checkpoint buffers) so the unit-Gaussian forward process fits the codes' scale; ``audio_pool`` > 1
average-pools audio frames before the transformer to shorten the sequence on CPU (1 = the paper).

Variants (App. A.1 Tab. 4, see :mod:`.variants`): ``speaker_info = False`` drops the speaker-info token
(and its MLP; the identity argument is then ignored); ``regression`` runs the same transformer from a
fixed input (:meth:`StylePredictor.regression_input`: zero noised style at step 0) and predicts the style
code in one pass (:meth:`StylePredictor.regress`).
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
from talkinghead.nn.attention import transformer_encoder
from talkinghead.nn.embeddings import StepEmbedding, sinusoidal_positions
from talkinghead.nn.normalize import Normalizer


@dataclass(frozen=True)
class StylePredictorConfig(Config):
    audio_dim: int = 1024 + 13 + 26 + 2
    identity_dim: int = 80
    style_dim: int = 256
    d_model: int = 256
    heads: int = 8
    layers: int = 6
    ff_dim: int = 1024
    dropout: float = 0.1
    audio_pool: int = 1
    min_frames: int = 64
    max_frames: int = 256
    speaker_info: bool = True
    regression: bool = False

    #: fields added after checkpoints were first written; old checkpoints load with their defaults
    added_fields: ClassVar[tuple[str, ...]] = ("speaker_info", "regression")

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {"d_model": 32, "heads": 2, "layers": 1, "ff_dim": 64, "dropout": 0.0, "min_frames": 8,
                 "max_frames": 16},
        "cpu": {"d_model": 128, "heads": 4, "layers": 3, "ff_dim": 256, "audio_pool": 2, "min_frames": 32,
                "max_frames": 128},
        "paper": {},
    }


class StylePredictor(PretrainedMixin, nn.Module):
    """``S_phi``: noised style code, step, audio and speaker identity -> clean style code (Eq. 4)."""

    component: ClassVar[str] = "dreamtalk.style_predictor"
    config_class: ClassVar[type[Config]] = StylePredictorConfig
    checkpoint_inputs: ClassVar[tuple[str, ...]] = ("layout", "audio_features")
    config: StylePredictorConfig

    def __init__(self, config: StylePredictorConfig, layout: dict[str, Any] | None = None,
                 audio_features: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.config = config
        self.layout = layout
        self.audio_features = audio_features
        c, d = config, config.d_model
        self.audio_norm = Normalizer(c.audio_dim)
        self.identity_norm = Normalizer(c.identity_dim)
        self.style_norm = Normalizer(c.style_dim)
        self.audio_in = nn.Linear(c.audio_dim, d)
        self.step_embedding = StepEmbedding(d)
        self.speaker_in = (nn.Sequential(nn.Linear(c.identity_dim, d), nn.SiLU(), nn.Linear(d, d))
                           if c.speaker_info else None)
        self.style_in = nn.Linear(c.style_dim, d)
        self.query = nn.Parameter(torch.zeros(1, 1, d))
        self.type_embedding = nn.Parameter(torch.zeros(5, d))  # audio, step, speaker, style, query
        nn.init.normal_(self.query, std=0.02)
        nn.init.normal_(self.type_embedding, std=0.02)
        self.encoder = transformer_encoder(d, c.heads, c.layers, c.ff_dim, c.dropout)
        self.head = nn.Linear(d, c.style_dim)

    def pool_audio(self, audio: torch.Tensor, valid: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalise and average-pool audio frames by ``audio_pool``. ``[B, N, D] -> [B, N', D]``, mask ``[B, N']``."""
        b, n, _ = audio.shape
        if valid is None:
            valid = torch.ones(b, n, dtype=torch.bool, device=audio.device)
        x = self.audio_norm(audio) * valid[..., None]
        k = self.config.audio_pool
        if k > 1:
            pad = (-n) % k
            x = F.pad(x, (0, 0, 0, pad))
            v = F.pad(valid.float(), (0, pad))
            counts = rearrange(v, "b (n k) -> b n k", k=k).sum(-1)
            x = rearrange(x, "b (n k) d -> b n k d", k=k).sum(2) / counts.clamp_min(1)[..., None]
            valid = counts > 0
        return x, valid

    def forward(self, noisy_style: torch.Tensor, t: torch.Tensor, audio: torch.Tensor,
                identity: torch.Tensor | None, audio_valid: torch.Tensor | None = None) -> torch.Tensor:
        """Predict the clean style code (Eq. 4).

        ``noisy_style: [B, d_s]`` normalised, ``t: [B]``, ``audio: [B, N, D_a]`` raw features,
        ``identity: [B, D_id]`` raw descriptor (ignored without speaker info), ``audio_valid: [B, N]`` bool.
        Returns normalised ``[B, d_s]``.
        """
        x, valid = self.pool_audio(audio, audio_valid)
        d = self.config.d_model
        audio_tokens = self.audio_in(x) + sinusoidal_positions(x.shape[1], d, x.device) + self.type_embedding[0]
        step = self.step_embedding(t)[:, None] + self.type_embedding[1]
        style = self.style_in(noisy_style)[:, None] + self.type_embedding[3]
        query = self.query.expand(x.shape[0], -1, -1) + self.type_embedding[4]
        if self.speaker_in is not None:
            if identity is None:
                raise TalkingHeadError("This style predictor needs the portrait's identity descriptor.")
            speaker = self.speaker_in(self.identity_norm(identity))[:, None] + self.type_embedding[2]
            tokens = torch.cat([audio_tokens, step, speaker, style, query], dim=1)   # [B, N'+4, d]
        else:
            tokens = torch.cat([audio_tokens, step, style, query], dim=1)            # [B, N'+3, d]
        extra = tokens.shape[1] - x.shape[1]
        pad = torch.cat([~valid, torch.zeros(x.shape[0], extra, dtype=torch.bool, device=x.device)], dim=1)
        out = self.encoder(tokens, src_key_padding_mask=pad)
        return self.head(out[:, -1])

    def regression_input(self, batch: int, device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The fixed input of the regression variant: zero normalised style ``[B, d_s]`` and step 0 ``[B]``."""
        return (torch.zeros(batch, self.config.style_dim, device=device),
                torch.zeros(batch, dtype=torch.long, device=device))

    def regress(self, audio: torch.Tensor, identity: torch.Tensor | None,
                audio_valid: torch.Tensor | None = None) -> torch.Tensor:
        """One forward pass from :meth:`regression_input`: normalised style codes ``[B, d_s]``."""
        s, t = self.regression_input(audio.shape[0], audio.device)
        return self(s, t, audio, identity, audio_valid)

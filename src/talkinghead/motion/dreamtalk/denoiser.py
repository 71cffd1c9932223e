"""DreamTalk 3.2 / App. C.1, the denoising network ``E_theta`` (Eq. 2): ``m0* = E(m_t, t, A_w, R)``.

For every frame ``l`` of a sequence the network looks at an audio window ``A_w = a[l-w .. l+w]``
(``w = 5``, 11 frames) and the noisy motion in the same window:

1. the audio window goes through the transformer audio encoder -> 11 audio tokens;
2. the tokens are concatenated with the noisy motion frames of the window (channel dimension), linearly
   projected to ``d`` and summed with the diffusion-step embedding -> keys and values of the decoder;
3. the style encoder turns the reference clip's motion into a style code ``s``; ``s`` repeated 11 times
   plus positional embeddings are the decoder's queries (style tokens);
4. a transformer decoder (three 8-head layers in the paper) runs; its middle output token goes through a
   linear layer to predict the clean motion frame ``m_(0)`` (the signal, not the noise).

All frames of a sequence are computed in parallel (the window index is folded into the batch), so the
network maps a noisy sequence ``[B, L, C]`` to a clean one; the sequence itself is the diffusion variable.

Extensions beyond the paper (documented deviations):
- **head pose**: with ``generate_pose`` the motion is ``[expression (E), pose (6)]`` so the same network
  also generates head pose (the paper takes pose from a video or another method, App. C.4); the style
  reference then also holds pose, so a reference clip sets the head-motion style too;
- **normalisation**: motion and audio features are standardised per channel with statistics from the
  training set, kept as buffers in the checkpoint (the paper feeds raw 3DMM coefficients), so the unit
  Gaussian of the forward process matches the data's scale for any channel layout;
- the null style of classifier-free guidance (3.3) is, as in the paper, an all-zero motion sequence
  (zeros in raw units, i.e. the neutral face), encoded by the same style encoder.

Variant ``regression`` (the "same network, no diffusion" baseline, see :mod:`.variants`): the network
is trained and run from a fixed input, :meth:`DreamTalkDenoiser.regression_input` (all-zero normalised
motion at step 0), so it maps audio + style to motion in one forward pass (:meth:`DreamTalkDenoiser.regress`).
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
from talkinghead.motion.dreamtalk.audio_encoder import AudioWindowEncoder
from talkinghead.motion.dreamtalk.style_encoder import StyleEncoder
from talkinghead.nn.embeddings import StepEmbedding
from talkinghead.nn.normalize import Normalizer


@dataclass(frozen=True)
class DenoiserConfig(Config):
    """Sizes of ``E_theta``. Defaults are the paper's (App. C.1, C.3)."""

    audio_dim: int = 1024
    expression_dim: int = 64
    generate_pose: bool = True
    d_model: int = 256
    heads: int = 8
    audio_layers: int = 3
    style_layers: int = 3
    decoder_layers: int = 3
    ff_dim: int = 1024
    window: int = 5
    dropout: float = 0.1
    null_style_prob: float = 0.1
    null_style_frames: int = 32
    regression: bool = False

    #: fields added after checkpoints were first written; old checkpoints load with their defaults
    added_fields: ClassVar[tuple[str, ...]] = ("regression",)

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {"d_model": 32, "heads": 2, "audio_layers": 1, "style_layers": 1, "decoder_layers": 1,
                 "ff_dim": 64, "dropout": 0.0, "null_style_frames": 8},
        "cpu": {"d_model": 128, "heads": 4, "audio_layers": 2, "style_layers": 2, "decoder_layers": 2,
                "ff_dim": 256, "dropout": 0.1},
        "paper": {},
    }

    @property
    def motion_dim(self) -> int:
        return self.expression_dim + (6 if self.generate_pose else 0)


def sliding_windows(x: torch.Tensor, length: int, window: int) -> torch.Tensor:
    """Windows ``[B, length, 2w+1, D]`` centred on each of ``length`` frames.

    ``x: [B, length, D]`` (edges padded by repeating the first/last frame) or ``[B, length + 2w, D]``
    (the caller supplies ``w`` frames of context on each side).
    """
    if x.shape[1] == length:
        x = F.pad(rearrange(x, "b l d -> b d l"), (window, window), mode="replicate")
        x = rearrange(x, "b d l -> b l d")
    elif x.shape[1] != length + 2 * window:
        raise TalkingHeadError(f"Expected {length} or {length + 2 * window} frames of audio, got {x.shape[1]}.")
    return x.unfold(1, 2 * window + 1, 1).transpose(2, 3)  # [B, length, 2w+1, D]


class DreamTalkDenoiser(PretrainedMixin, nn.Module):
    """``E_theta``: noisy motion, step, audio windows and a style code -> clean motion (Eq. 2)."""

    component: ClassVar[str] = "dreamtalk.denoiser"
    config_class: ClassVar[type[Config]] = DenoiserConfig
    checkpoint_inputs: ClassVar[tuple[str, ...]] = ("layout", "audio_features")
    config: DenoiserConfig

    def __init__(self, config: DenoiserConfig, layout: dict[str, Any] | None = None,
                 audio_features: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.config = config
        self.layout = layout
        self.audio_features = audio_features
        c, d = config, config.d_model
        self.audio_norm = Normalizer(c.audio_dim)
        self.motion_norm = Normalizer(c.motion_dim)
        self.audio_encoder = AudioWindowEncoder(c.audio_dim, d, c.heads, c.audio_layers, c.ff_dim, c.window,
                                                c.dropout)
        self.style_encoder = StyleEncoder(c.motion_dim, d, c.heads, c.style_layers, c.ff_dim, c.dropout)
        self.step_embedding = StepEmbedding(d)
        self.key_value = nn.Linear(d + c.motion_dim, d)
        self.style_position = nn.Parameter(torch.zeros(2 * c.window + 1, d))
        nn.init.normal_(self.style_position, std=0.02)
        layer = nn.TransformerDecoderLayer(d, c.heads, c.ff_dim, c.dropout, batch_first=True)
        self.decoder = nn.TransformerDecoder(layer, c.decoder_layers)
        self.head = nn.Linear(d, c.motion_dim)

    def encode_style(self, motion: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        """Style code of a reference clip. ``motion: [B, N, C]`` raw units, ``valid: [B, N]`` -> ``[B, d]``."""
        if motion.shape[-1] != self.config.motion_dim:
            raise TalkingHeadError(
                f"The style reference has {motion.shape[-1]} channels; this denoiser expects "
                f"{self.config.motion_dim}."
            )
        return self.style_encoder(self.motion_norm(motion), valid)

    def null_style_motion(self, batch: int, device: torch.device | None = None) -> torch.Tensor:
        """The null style reference of classifier-free guidance: all-zero motion ``[B, N0, C]`` (3.3)."""
        return torch.zeros(batch, self.config.null_style_frames, self.config.motion_dim, device=device)

    def null_style(self, batch: int) -> torch.Tensor:
        """Style code of the null reference ``[B, d]``."""
        device = self.head.weight.device
        return self.encode_style(self.null_style_motion(batch, device))

    def encode_audio(self, audio: torch.Tensor, length: int) -> torch.Tensor:
        """Audio tokens of every frame's window: ``audio [B, L or L + 2w, D_a]`` raw -> ``[B * L, 2w + 1, d]``.

        They depend on neither the noisy motion nor the step, so a sampler may compute them once and
        pass them to :meth:`forward` at every step.
        """
        windows = sliding_windows(self.audio_norm(audio), length, self.config.window)  # [B, L, 11, Da]
        return self.audio_encoder(rearrange(windows, "b l k d -> (b l) k d"))         # [BL, 11, d]

    def forward(self, noisy: torch.Tensor, t: torch.Tensor, audio: torch.Tensor | None, style: torch.Tensor,
                audio_tokens: torch.Tensor | None = None) -> torch.Tensor:
        """Predict the clean motion (Eq. 2).

        ``noisy: [B, L, C]`` normalised motion at step ``t: [B]``; ``audio: [B, L, D_a]`` or
        ``[B, L + 2w, D_a]`` raw audio features (with ``w`` frames of context each side), or ``None`` with
        precomputed ``audio_tokens`` from :meth:`encode_audio`; ``style: [B, d]`` style code.
        Returns normalised ``m_(0)`` ``[B, L, C]``.
        """
        b, length, _ = noisy.shape
        w = self.config.window
        if audio_tokens is None:
            if audio is None:
                raise TalkingHeadError("The denoiser needs audio features or precomputed audio tokens.")
            audio_tokens = self.encode_audio(audio, length)                    # [BL, 11, d]
        motion_win = sliding_windows(noisy, length, w)                          # [B, L, 11, C]
        kv = self.key_value(torch.cat([audio_tokens, rearrange(motion_win, "b l k c -> (b l) k c")], -1))
        kv = kv + self.step_embedding(t).repeat_interleave(length, 0)[:, None, :]
        query = style.repeat_interleave(length, 0)[:, None, :] + self.style_position  # [BL, 11, d] style tokens
        out = self.decoder(query, kv)
        middle = out[:, w]                                                       # middle token
        return rearrange(self.head(middle), "(b l) c -> b l c", b=b)

    def regression_input(self, batch: int, length: int,
                         device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The fixed input of the regression variant: zero normalised motion ``[B, L, C]`` and step 0 ``[B]``."""
        return (torch.zeros(batch, length, self.config.motion_dim, device=device),
                torch.zeros(batch, dtype=torch.long, device=device))

    def regress(self, audio: torch.Tensor | None, style: torch.Tensor, length: int | None = None,
                audio_tokens: torch.Tensor | None = None) -> torch.Tensor:
        """One forward pass from :meth:`regression_input`: normalised motion ``[B, L, C]``.

        ``audio: [B, L, D_a]`` raw, or ``[B, L + 2w, D_a]`` with ``length = L``, or ``None`` with
        ``audio_tokens`` and ``length``; ``style: [B, d]``.
        """
        if length is None:
            if audio is None:
                raise TalkingHeadError("The denoiser needs audio features or a length with audio tokens.")
            length = audio.shape[1]  # audio without context: its windows are edge-padded
        x, t = self.regression_input(style.shape[0], length, style.device)
        return self(x, t, audio, style, audio_tokens)

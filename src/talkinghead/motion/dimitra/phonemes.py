"""A frame-level phoneme recogniser, so that Dimitra's phoneme condition (III-B.2) exists for any audio.

Dimitra III-B.2 conditions the cMDT on "a tokenized phoneme sequence ``p^{1:N}``", one token per video frame,
obtained with "a phoneme aligner [38], providing phonemes with timestamps from an audio-input and the
corresponding text transcript". The paper always has the transcript. This recogniser is **this project's
addition** (issue 13), not part of the paper: when no transcript is given, it predicts the per-frame token
from the audio alone, so generation never lacks a phoneme stream. With a transcript the forced aligner
(:mod:`talkinghead.audio.align`) is used instead, and training labels come from the corpus's phone timings
turned into frame tokens by :func:`talkinghead.audio.phonemes.frame_tokens` (frame ``i`` takes the phone
covering its centre ``(i + 0.5) / fps``, :mod:`talkinghead.audio.frames`).

**Input** ``[B, T, F]``: the project's encoder-free frame features at 25 fps (:mod:`talkinghead.audio.features`),
by default ``logmel`` (80 bands), ``f0``, ``voicing`` and ``energy`` (83 dims with the ``lowlevel`` spec). Log-mel
carries the spectral envelope that separates phonemes; voicing, energy and f0 separate voiced from unvoiced
sounds and speech from silence. MFCC and FBANK are left out by default because both are fixed linear maps of
(nearly) the same mel spectrum after per-utterance CMVN, so they add width, not information. No explicit
deltas: the convolutions below see five frames (200 ms) each and learn their own temporal derivatives. The
feature names, widths and the dataset's :class:`~talkinghead.audio.spec.AudioFeatureSpec` are stored in the
checkpoint's ``audio_features`` (the same shape as the motion models', so
:meth:`talkinghead.generators.Conditions.features` computes them from audio).

**Network** (all sizes ours): per-channel normalisation with the training set's statistics (checkpoint
buffers), a linear projection to ``dim``, ``conv_layers`` pre-norm residual 1-D convolution blocks over time
(kernel ``conv_kernel``; they also give the transformer its sense of order, so there is no absolute position
encoding and a window of any length or offset is treated alike), ``layers`` transformer encoder layers, a
LayerNorm and a linear classifier over the 41 tokens of :data:`~talkinghead.audio.phonemes.PHONEME_VOCAB`
(``<pad>`` is never a training target and is never predicted).

**Decoding** (:meth:`PhonemeRecognizer.recognise`): long inputs are cut into windows of ``window_frames`` with
``context_frames`` of context on each side (only the centre of each window is kept), so memory is bounded for
any length; the frame's argmax, then optionally a majority filter of ``smooth_frames`` frames
(:func:`majority_filter`) that removes isolated one-frame flips; ``smooth_frames = 1`` (the presets' default)
keeps the argmax, because at 25 fps a real phone is often a single frame long.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from einops import rearrange
from torch import nn

from talkinghead.audio.phonemes import PAD_ID, PHONEME_VOCAB
from talkinghead.checkpoint import PretrainedMixin
from talkinghead.config import Config
from talkinghead.errors import TalkingHeadError
from talkinghead.nn.attention import transformer_encoder
from talkinghead.nn.normalize import Normalizer

VOCAB_SIZE = len(PHONEME_VOCAB)
#: the frame features read when a dataset has them and none are asked for (see the module docstring)
DEFAULT_FEATURES = ("logmel", "f0", "voicing", "energy")


@dataclass(frozen=True)
class PhonemeRecognizerConfig(Config):
    """Sizes of the recogniser (all our choice: the paper has no recogniser). ``input_dim`` is filled in from
    the training data; ``window_frames``, ``context_frames`` and ``smooth_frames`` steer
    :meth:`PhonemeRecognizer.recognise`."""

    input_dim: int = 83
    dim: int = 256
    conv_layers: int = 3
    conv_kernel: int = 5
    layers: int = 4
    heads: int = 4
    ff_dim: int = 1024
    dropout: float = 0.1
    vocab: int = VOCAB_SIZE
    window_frames: int = 250
    context_frames: int = 25
    smooth_frames: int = 1

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {"dim": 32, "conv_layers": 2, "layers": 1, "heads": 2, "ff_dim": 64, "dropout": 0.0,
                 "window_frames": 64, "context_frames": 8},
        "cpu": {"dim": 128, "conv_layers": 3, "layers": 3, "heads": 4, "ff_dim": 256, "dropout": 0.1},
        "paper": {},
    }

    def __post_init__(self) -> None:
        if self.vocab != VOCAB_SIZE:
            raise TalkingHeadError(f"The phoneme recogniser predicts the {VOCAB_SIZE} tokens of PHONEME_VOCAB, "
                                   f"not {self.vocab}.")
        if self.conv_kernel % 2 == 0 or self.smooth_frames % 2 == 0:
            raise TalkingHeadError("The recogniser's conv_kernel and smooth_frames must be odd.")
        if self.dim % self.heads or min(self.input_dim, self.dim, self.window_frames) < 1 or self.context_frames < 0:
            raise TalkingHeadError("The recogniser needs input_dim, dim and window_frames >= 1, context_frames >= 0 "
                                   "and dim divisible by heads.")


class ConvBlock(nn.Module):
    """Pre-norm residual temporal convolution: ``x + Dropout(GELU(Conv1d(LayerNorm(x))))``."""

    def __init__(self, dim: int, kernel: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.conv = nn.Conv1d(dim, dim, kernel, padding=kernel // 2)
        self.act = nn.GELU()
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """``x: [B, T, dim]``, ``valid: [B, T, 1]`` float (0 on padding) -> ``[B, T, dim]``.

        Padded frames are zeroed before the convolution, so a padded batch gives the same values on its
        real frames as each sequence alone (the convolution's own zero padding at the ends)."""
        h = rearrange(self.norm(x) * valid, "b t d -> b d t")
        h = rearrange(self.conv(h), "b d t -> b t d")
        return x + self.drop(self.act(h))


class PhonemeRecognizer(PretrainedMixin, nn.Module):
    """Frame features ``[B, T, F]`` -> logits ``[B, T, 41]`` over :data:`PHONEME_VOCAB` (the project's addition
    to Dimitra III-B.2; see the module docstring)."""

    component: ClassVar[str] = "dimitra.phonemes"
    config_class: ClassVar[type[Config]] = PhonemeRecognizerConfig
    checkpoint_inputs: ClassVar[tuple[str, ...]] = ("audio_features",)
    config: PhonemeRecognizerConfig

    def __init__(self, config: PhonemeRecognizerConfig, audio_features: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.config = config
        self.audio_features = audio_features
        c = config
        self.norm = Normalizer(c.input_dim)
        self.project = nn.Linear(c.input_dim, c.dim)
        self.convs = nn.ModuleList(ConvBlock(c.dim, c.conv_kernel, c.dropout) for _ in range(c.conv_layers))
        self.encoder = transformer_encoder(c.dim, c.heads, c.layers, c.ff_dim, c.dropout) if c.layers else None
        self.out_norm = nn.LayerNorm(c.dim)
        self.head = nn.Linear(c.dim, c.vocab)

    def forward(self, features: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        """``features: [B, T, F]`` raw frame features, ``valid: [B, T]`` bool (False = padding; ``None``: all
        real) -> logits ``[B, T, vocab]``."""
        if features.ndim != 3 or features.shape[-1] != self.config.input_dim:
            raise TalkingHeadError(f"The phoneme recogniser reads [B, T, {self.config.input_dim}] features, got "
                                   f"{list(features.shape)}.")
        if valid is None:
            valid = torch.ones(features.shape[:2], dtype=torch.bool, device=features.device)
        keep = valid[..., None].to(features.dtype)                       # [B, T, 1]
        h = self.project(self.norm(features) * keep)                      # [B, T, dim]
        for block in self.convs:
            h = block(h, keep)
        if self.encoder is not None:
            h = self.encoder(h, src_key_padding_mask=~valid)
        return self.head(self.out_norm(h))                                # [B, T, vocab]

    @torch.no_grad()
    def frame_logits(self, features: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Logits of one sequence ``[T, F]`` -> ``[T, vocab]`` (CPU float32), in windows of ``window_frames``
        with ``context_frames`` on each side; memory is bounded by one window for any ``T``."""
        x = torch.as_tensor(np.asarray(features, dtype=np.float32) if isinstance(features, np.ndarray) else features)
        if x.ndim != 2 or x.shape[0] == 0:
            raise TalkingHeadError(f"recognise expects non-empty [T, F] features, got shape {tuple(x.shape)}.")
        device = next(self.parameters()).device
        was_training = self.training
        self.eval()
        w, ctx, total = self.config.window_frames, self.config.context_frames, x.shape[0]
        out = torch.empty(total, self.config.vocab)
        for start in range(0, total, w):
            lo, hi = max(0, start - ctx), min(total, start + w + ctx)
            logits = self(x[None, lo:hi].to(device, torch.float32))[0].float().cpu()   # [hi - lo, vocab]
            end = min(total, start + w)
            out[start:end] = logits[start - lo : end - lo]
        self.train(was_training)
        return out

    def recognise(self, features: np.ndarray | torch.Tensor, smooth: int | None = None) -> np.ndarray:
        """Per-frame phoneme ids of one sequence: ``features [T, F]`` -> ``[T]`` int64 ids in
        :data:`PHONEME_VOCAB` (never ``<pad>``). The argmax per frame, then a majority filter of ``smooth``
        frames (``None``: the config's ``smooth_frames``; 1 = none)."""
        logits = self.frame_logits(features)
        logits[:, PAD_ID] = -torch.inf
        ids = logits.argmax(dim=-1).numpy().astype(np.int64)
        return majority_filter(ids, self.config.smooth_frames if smooth is None else smooth)


def majority_filter(ids: np.ndarray, width: int) -> np.ndarray:
    """The most frequent id in a centred window of ``width`` (odd) frames around each frame ``[T] -> [T]``.

    A tie keeps the frame's own id, so ``width = 3`` replaces only a one-frame island whose two neighbours
    agree (``A B A`` -> ``A A A``; ``A B C`` stays) and leaves every run of two or more frames as it is;
    windows are cut at the sequence ends."""
    if width < 1 or width % 2 == 0:
        raise TalkingHeadError(f"The smoothing window must be an odd number of frames, got {width}.")
    ids = np.asarray(ids, dtype=np.int64)
    if width == 1 or ids.size == 0:
        return ids.copy()
    half = width // 2
    out = ids.copy()
    for t in range(ids.size):
        window = ids[max(0, t - half) : t + half + 1]
        values, counts = np.unique(window, return_counts=True)
        best = counts.max()
        if counts[values == ids[t]][0] < best:
            out[t] = values[counts.argmax()]
    return out


def frame_accuracy(predicted: np.ndarray | Sequence[np.ndarray], target: np.ndarray | Sequence[np.ndarray],
                   ignore: int = PAD_ID) -> float:
    """Fraction of frames whose predicted id equals the target, over the frames whose target is not
    ``ignore`` (``<pad>``). Arrays ``[T]`` (or ``[B, T]``), or lists of per-clip arrays: the frames of all
    clips are pooled (a micro average, so long clips weigh more). ``nan`` when no frame counts."""
    pred = _flat(predicted)
    true = _flat(target)
    if pred.shape != true.shape:
        raise TalkingHeadError(f"Predicted and target frames differ in number ({pred.size} vs {true.size}).")
    counted = true != ignore
    if not counted.any():
        return float("nan")
    return float((pred[counted] == true[counted]).mean())


def _flat(x: np.ndarray | Sequence[np.ndarray]) -> np.ndarray:
    if isinstance(x, np.ndarray | torch.Tensor):
        return np.asarray(x).reshape(-1)
    parts = [np.asarray(p).reshape(-1) for p in x]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

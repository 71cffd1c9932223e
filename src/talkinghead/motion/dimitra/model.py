"""Dimitra III-B, the conditional Motion Diffusion Transformer (cMDT): noisy motion ``x_t^{1:N}``, step ``t`` and
the conditions -> clean motion ``x_0^{1:N}``.

The conditions (III-B.2, III-B.3) each have their own encoder:

- speech features ``a^{1:N}`` (wav2vec, or the project's own frame features): linear + transformer encoder,
  :class:`SpeechEncoder`;
- per-frame phoneme tokens ``p^{1:N}`` (:data:`talkinghead.audio.phonemes.PHONEME_VOCAB`): embedding +
  transformer encoder, :class:`PhonemeEncoder`;
- the transcript ``S``: a pretrained CLIP text encoder in the paper, whose output is passed in and projected by
  :class:`TextFeatureProjection`; or, without a local CLIP, a small character-level transformer encoder trained
  with the model, :class:`TranscriptEncoder` (tokens from :func:`transcript_tokens`);
- the first frame ``x_0^1`` (so the sequence starts from the portrait's pose): an MLP, :class:`FirstFrameEncoder`.

The denoiser (III-B.3) is a transformer decoder (:class:`CMDT`): the noisy motion is projected to ``dim`` and
summed with sinusoidal positions; each layer is efficient self-attention over the motion, efficient
cross-attention to the condition tokens and a feed-forward block, with pre-norm residuals. Every attention
layer, the condition encoders' included, is efficient attention (:mod:`.attention`), so the cost is linear
in the sequence length. The output is the predicted clean motion ``x_0`` (the signal, not the noise).

How the conditions reach the decoder (the paper says only "self and cross attention layers"):

- cross-attention tokens, in this order: audio frames ``[N]``, phoneme frames ``[N]``, transcript tokens
  ``[1 + L]`` (a learned null token first, then the text; the null token is the only valid one when the
  transcript is dropped or absent), the first-frame token ``[1]`` and the step token ``[1]``. Keeping each
  condition as its own tokens (not summed) lets the key softmax weigh them separately, and efficient attention
  keeps ``2N + L + 3`` keys linear in cost. The step token lets the noise level shape which conditions the
  context draws on.
- an additive path into the decoder input: each motion frame gets its own audio and phoneme tokens, and every
  frame gets the step and first-frame embeddings. Efficient cross-attention mixes ``d_k`` global summaries per
  head and cannot route frame ``i``'s audio to motion frame ``i``, which lip sync needs; the sum gives that
  alignment exactly. The step and first frame are one vector per sequence, so adding them is the cheapest
  exact way to give every frame the noise level and the starting pose.

Dimitra trains three such models with the same architecture (III-B.4: lips 13, expression 51, head pose 6
channels); here ``motion_dim`` is read from the dataset's channel layout. The losses (``L_diff``, ``L_first``)
and sampling live elsewhere; this network knows no noise schedule.

Deviations from the paper, and why:

- **sizes**: the paper gives no width, depth, heads, feed-forward size, dropout or condition-encoder depth.
  The ``paper`` preset (the defaults) is our choice, the sizes of MDM (Tevet et al., ICLR 2023: width 512,
  8 layers, 4 heads, feed-forward 1024, dropout 0.1), the CLIP-conditioned motion diffusion transformer the
  cMDT's description resembles (Dimitra does not cite it); 2 layers per condition encoder ("simple trainable
  Transformer encoders"). ``cpu`` is far smaller so that the shipped model trains on a 2-core CPU in about half
  an hour; ``tiny`` is for tests.
- **speech features**: the paper cites wav2vec (Schneider et al. 2019, [22]); the ``paper`` preset takes
  768-d wav2vec 2.0 base features (the project's ``dimitra`` audio spec), ``cpu`` the project's 122-d
  encoder-free frame features (no pretrained weights can be downloaded here).
- **transcript**: the paper encodes ``S`` with a pretrained CLIP text encoder; its variant is not named. The
  ``paper`` preset takes 512-d CLIP ViT-B/32 text-encoder outputs through a linear projection
  (``external_text_dim``); with no local CLIP folder (``external_text_dim = None``, the ``cpu`` and ``tiny``
  presets) a small character-level transformer encoder is trained with the model instead.
- **transcript dropout** (from the project's issue 13, not in the paper): during training each sample loses
  its transcript with probability ``text_drop_prob`` (:meth:`CMDT.text_dropout`) and sees a learned null
  token instead, so generation without a transcript is a supported mode (and classifier-free guidance on the
  transcript becomes possible).
- **condition wiring**: the additive path, the step token and the token order above are our choices (see
  "How the conditions reach the decoder"); pre-norm residuals and the final LayerNorm likewise.
- **phonemes**: the project's 41-token ARPAbet vocabulary (pad, silence, 39 phonemes); the paper names its
  aligner [38] but not its phoneme set.
- **normalisation**: as in the DreamTalk denoiser, audio features and motion are standardised per channel with
  training-set statistics kept as checkpoint buffers (the paper does not mention any normalisation). The
  noisy and predicted motion are normalised; the audio and the first frame are given raw.
- **fixed-length windows**: the sequence has no padding mask; clips are cut to windows for training, and long
  sequences are generated window by window (III-B.4 "generating recursively").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Annotated, Any, ClassVar, cast

import torch
import torch.nn.functional as F
from torch import nn

from talkinghead.checkpoint import PretrainedMixin
from talkinghead.config import NON_NEGATIVE, Config, Range
from talkinghead.errors import TalkingHeadError
from talkinghead.motion.dimitra.attention import EfficientDecoderLayer, EfficientEncoder
from talkinghead.nn.embeddings import StepEmbedding, sinusoidal_positions
from talkinghead.nn.normalize import Normalizer

#: characters of the small transcript encoder; id 0 is padding, id 1 any other character
TEXT_CHARACTERS = " abcdefghijklmnopqrstuvwxyz0123456789'.,;:?!-"
TEXT_PAD_ID = 0
TEXT_UNKNOWN_ID = 1
TEXT_VOCAB_SIZE = len(TEXT_CHARACTERS) + 2
_TEXT_IDS = {ch: i + 2 for i, ch in enumerate(TEXT_CHARACTERS)}

#: ``len(talkinghead.audio.phonemes.PHONEME_VOCAB)``: pad, silence and the 39 ARPAbet phonemes
PHONEME_VOCAB_SIZE = 41


def transcript_tokens(texts: Sequence[str], max_length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Character ids of transcripts for :class:`TranscriptEncoder`.

    Lower-cased, runs of white space made one space, cut to ``max_length`` characters; characters outside
    :data:`TEXT_CHARACTERS` become :data:`TEXT_UNKNOWN_ID`. Returns ``tokens: [B, L]`` long (padded with
    :data:`TEXT_PAD_ID`, ``L`` = the longest, at least 1) and ``mask: [B, L]`` bool (True = a real character;
    an empty transcript has none, which :class:`CMDT` treats as no transcript).
    """
    rows = [[_TEXT_IDS.get(ch, TEXT_UNKNOWN_ID) for ch in " ".join(text.lower().split())[:max_length]]
            for text in texts]
    length = max([1, *map(len, rows)])
    tokens = torch.full((len(rows), length), TEXT_PAD_ID, dtype=torch.long)
    for i, row in enumerate(rows):
        tokens[i, : len(row)] = torch.tensor(row, dtype=torch.long)
    return tokens, tokens != TEXT_PAD_ID


@dataclass(frozen=True)
class CMDTConfig(Config):
    """Sizes of the cMDT. The defaults are the ``paper`` preset; the paper gives none of the network sizes, so
    they are our choice (MDM's, see the module docstring). ``external_text_dim``: width of precomputed text
    features (512 for CLIP ViT-B/32) or ``None`` for the small character-level transcript encoder.
    ``audio_context``: the speech encoder's local context ``k`` (a temporal convolution over ``2k + 1`` frames
    before its transformer; 0: none, the paper's wav2vec features carry their own context)."""

    motion_dim: int = 13
    dim: int = 512
    layers: int = 8
    heads: int = 4
    ff_dim: int = 1024
    dropout: float = 0.1
    audio_dim: int = 768
    phoneme_vocab: int = PHONEME_VOCAB_SIZE
    text_vocab: int = TEXT_VOCAB_SIZE
    max_text_length: int = 77
    external_text_dim: int | None = 512
    condition_layers: int = 2
    text_drop_prob: float = 0.1
    audio_context: Annotated[int, NON_NEGATIVE] = 0
    speech_drop_prob: Annotated[float, Range(0, 1)] = 0.0

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {"dim": 32, "layers": 2, "heads": 2, "ff_dim": 64, "dropout": 0.0, "audio_dim": 8,
                 "max_text_length": 16, "external_text_dim": None, "condition_layers": 1},
        "cpu": {"dim": 128, "layers": 4, "heads": 4, "ff_dim": 256, "dropout": 0.1, "audio_dim": 122,
                "max_text_length": 128, "external_text_dim": None, "condition_layers": 2},
        "paper": {},
    }
    #: fields added after checkpoints were shipped: absent in an older config.json, they take their defaults
    added_fields: ClassVar[tuple[str, ...]] = ("audio_context", "speech_drop_prob")


@dataclass(frozen=True)
class CMDTConditions:
    """The cMDT's conditions for a batch of ``B`` sequences of ``N`` frames.

    - ``audio: [B, N, audio_dim]`` speech features, raw (normalised inside);
    - ``phonemes: [B, N]`` long, a phoneme id per frame;
    - ``first_frame: [B, motion_dim]`` the first motion frame ``x_0^1``, raw units;
    - ``text_tokens: [B, L]`` long from :func:`transcript_tokens` (models without ``external_text_dim``), or
      ``text_features: [B, L, external_text_dim]`` (e.g. CLIP outputs), or neither: no transcript;
    - ``text_mask: [B, L]`` bool (True = a real token), ``None``: all real;
    - ``drop_text: [B]`` bool, True = this sample's transcript is replaced by the null token (training dropout,
      or generation without a transcript); ``None``: none dropped;
    - ``drop_speech: [B]`` bool, True = this sample hears no speech: its audio and phoneme tokens are zero on the
      additive path and masked out of cross-attention (training dropout, or the unconditional branch of speech
      guidance); ``None``: none dropped.
    """

    audio: torch.Tensor
    phonemes: torch.Tensor
    first_frame: torch.Tensor
    text_tokens: torch.Tensor | None = None
    text_features: torch.Tensor | None = None
    text_mask: torch.Tensor | None = None
    drop_text: torch.Tensor | None = None
    drop_speech: torch.Tensor | None = None


@dataclass(frozen=True)
class EncodedConditions:
    """The conditions after their encoders; they do not depend on the noisy motion or the step, so a sampler
    encodes them once (:meth:`CMDT.encode_conditions`).

    ``frames: [B, N, dim]`` audio + phoneme tokens per frame (the additive path); ``first_frame: [B, dim]``;
    ``memory: [B, M, dim]`` the cross-attention tokens without the step token, ``M = 2N + (1 + L) + 1``
    (``L = 0`` without a transcript);
    ``memory_mask: [B, M]`` bool (True = real token);
    ``projected``: per decoder layer, its cross-attention's key and value projections of ``memory``
    (``[B, M, dim]`` each; :meth:`CMDT.project_memory`), or None: a sampler makes them once per window, as the
    memory is the same at every step (only the step token, appended last, changes).
    """

    frames: torch.Tensor
    first_frame: torch.Tensor
    memory: torch.Tensor
    memory_mask: torch.Tensor
    projected: tuple[tuple[torch.Tensor, torch.Tensor], ...] | None = None


class SpeechEncoder(nn.Module):
    """III-B.3, the speech-feature encoder: ``a^{1:N}`` -> tokens (linear, sinusoidal positions, transformer).

    ``context = k > 0`` adds a residual temporal convolution over ``2k + 1`` frames (replicate padding, GELU)
    after the projection, so each frame's token sees its neighbours' sound (see the module docstring)."""

    def __init__(self, audio_dim: int, dim: int, heads: int, layers: int, ff_dim: int, dropout: float,
                 context: int = 0) -> None:
        super().__init__()
        self.project = nn.Linear(audio_dim, dim)
        self.context = (nn.Conv1d(dim, dim, 2 * context + 1, padding=context, padding_mode="replicate")
                        if context > 0 else None)
        self.encoder = EfficientEncoder(dim, heads, layers, ff_dim, dropout)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        """``audio: [B, N, audio_dim]`` normalised -> ``[B, N, dim]``."""
        x = self.project(audio)
        if self.context is not None:
            x = x + F.gelu(self.context(x.transpose(1, 2))).transpose(1, 2)                   # [B, N, dim]
        return self.encoder(x + sinusoidal_positions(x.shape[1], x.shape[2], x.device))


class PhonemeEncoder(nn.Module):
    """III-B.3, the phoneme encoder: ``p^{1:N}`` -> tokens (embedding, sinusoidal positions, transformer)."""

    def __init__(self, vocab: int, dim: int, heads: int, layers: int, ff_dim: int, dropout: float) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.encoder = EfficientEncoder(dim, heads, layers, ff_dim, dropout)

    def forward(self, phonemes: torch.Tensor) -> torch.Tensor:
        """``phonemes: [B, N]`` long -> ``[B, N, dim]``."""
        x = self.embed(phonemes)
        return self.encoder(x + sinusoidal_positions(x.shape[1], x.shape[2], x.device))


class TranscriptEncoder(nn.Module):
    """The small trained transcript encoder that stands in for CLIP (III-B.3): character embedding,
    sinusoidal positions, transformer; padding is masked out of its attention."""

    def __init__(self, vocab: int, dim: int, heads: int, layers: int, ff_dim: int, dropout: float) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim, padding_idx=TEXT_PAD_ID)
        self.encoder = EfficientEncoder(dim, heads, layers, ff_dim, dropout)

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``tokens: [B, L]`` long, ``mask: [B, L]`` bool (True = real character) -> ``[B, L, dim]``."""
        x = self.embed(tokens)
        return self.encoder(x + sinusoidal_positions(x.shape[1], x.shape[2], x.device), mask)


class TextFeatureProjection(nn.Module):
    """III-B.3, the transcript from a pretrained text encoder (CLIP in the paper): its outputs projected to the
    model width. ``features: [B, L, E]`` -> ``[B, L, dim]``."""

    def __init__(self, feature_dim: int, dim: int) -> None:
        super().__init__()
        self.project = nn.Sequential(nn.LayerNorm(feature_dim), nn.Linear(feature_dim, dim))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.project(features)


class FirstFrameEncoder(nn.Sequential):
    """III-B.3, "x_0^1 is encoded using a simple MLP encoder": ``[B, C]`` -> ``[B, dim]``."""

    def __init__(self, motion_dim: int, dim: int) -> None:
        super().__init__(nn.Linear(motion_dim, dim), nn.SiLU(), nn.Linear(dim, dim))


class CMDT(PretrainedMixin, nn.Module):
    """Dimitra's cMDT (III-B.3): ``x0* = G(x_t^{1:N}, t, a^{1:N}, p^{1:N}, S, x_0^1)``."""

    component: ClassVar[str] = "dimitra.cmdt"
    config_class: ClassVar[type[Config]] = CMDTConfig
    checkpoint_inputs: ClassVar[tuple[str, ...]] = ("layout", "audio_features")
    config: CMDTConfig

    def __init__(self, config: CMDTConfig, layout: dict[str, Any] | None = None,
                 audio_features: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.config = config
        self.layout = layout
        self.audio_features = audio_features
        c, d = config, config.dim
        encoder_args = (d, c.heads, c.condition_layers, c.ff_dim, c.dropout)
        self.audio_norm = Normalizer(c.audio_dim)
        self.motion_norm = Normalizer(c.motion_dim)
        self.speech_encoder = SpeechEncoder(c.audio_dim, *encoder_args, context=c.audio_context)
        self.phoneme_encoder = PhonemeEncoder(c.phoneme_vocab, *encoder_args)
        self.text_encoder: TranscriptEncoder | TextFeatureProjection
        if c.external_text_dim is None:
            self.text_encoder = TranscriptEncoder(c.text_vocab, *encoder_args)
        else:
            self.text_encoder = TextFeatureProjection(c.external_text_dim, d)
        self.null_text = nn.Parameter(torch.randn(1, 1, d) * 0.02)
        self.first_frame_encoder = FirstFrameEncoder(c.motion_dim, d)
        self.step_embedding = StepEmbedding(d)
        self.motion_in = nn.Linear(c.motion_dim, d)
        self.layers = nn.ModuleList(EfficientDecoderLayer(d, c.heads, c.ff_dim, c.dropout) for _ in range(c.layers))
        self.out_norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, c.motion_dim)

    def text_dropout(self, batch: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Which samples of a training batch lose their transcript: ``[B]`` bool, each True with probability
        ``text_drop_prob``."""
        drop = torch.rand(batch, generator=generator) < self.config.text_drop_prob
        return drop.to(self.head.weight.device)

    def speech_dropout(self, batch: int, generator: torch.Generator | None = None) -> torch.Tensor | None:
        """Which samples of a training batch hear no speech: ``[B]`` bool, each True with probability
        ``speech_drop_prob``; None when the model is trained without speech dropout."""
        if self.config.speech_drop_prob <= 0.0:
            return None
        drop = torch.rand(batch, generator=generator) < self.config.speech_drop_prob
        return drop.to(self.head.weight.device)

    def encode_conditions(self, conditions: CMDTConditions) -> EncodedConditions:
        """Run the condition encoders (see :class:`CMDTConditions` for the inputs' shapes)."""
        c = conditions
        self._check(c)
        audio = self.speech_encoder(self.audio_norm(c.audio))                  # [B, N, d]
        phonemes = self.phoneme_encoder(c.phonemes)                             # [B, N, d]
        text, text_mask = self._encode_text(c)                                  # [B, 1 + L, d], [B, 1 + L]
        first = self.first_frame_encoder(self.motion_norm(c.first_frame))      # [B, d]
        frame_mask = torch.ones(audio.shape[:2], dtype=torch.bool, device=audio.device)
        if c.drop_speech is not None:                                           # no speech for these samples
            hears = ~c.drop_speech.to(audio.device)                             # [B]
            audio = audio * hears[:, None, None]
            phonemes = phonemes * hears[:, None, None]
            frame_mask = frame_mask & hears[:, None]
        memory = torch.cat([audio, phonemes, text, first[:, None]], 1)          # [B, 2N + 1 + L + 1, d]
        memory_mask = torch.cat([frame_mask, frame_mask, text_mask, frame_mask[:, :1]], 1)
        return EncodedConditions(frames=audio + phonemes, first_frame=first, memory=memory, memory_mask=memory_mask)

    def forward(self, noisy: torch.Tensor, t: torch.Tensor,
                conditions: CMDTConditions | EncodedConditions) -> torch.Tensor:
        """Predict the clean motion.

        ``noisy: [B, N, C]`` normalised motion at step ``t: [B]``; ``conditions``: raw, or already encoded by
        :meth:`encode_conditions`. Returns the normalised clean motion ``x_0`` ``[B, N, C]``.
        """
        enc = conditions if isinstance(conditions, EncodedConditions) else self.encode_conditions(conditions)
        b, n, channels = noisy.shape
        if channels != self.config.motion_dim or enc.frames.shape[:2] != (b, n):
            raise TalkingHeadError(
                f"The noisy motion is {tuple(noisy.shape)} but the model expects [{enc.frames.shape[0]}, "
                f"{enc.frames.shape[1]}, {self.config.motion_dim}] (batch and frames of the conditions)."
            )
        step = self.step_embedding(t)                                           # [B, d]
        h = self.motion_in(noisy) + sinusoidal_positions(n, self.config.dim, noisy.device)
        h = h + enc.frames + (step + enc.first_frame)[:, None]                 # the additive path
        memory = torch.cat([enc.memory, step[:, None]], 1)                      # [B, M + 1, d], step token last
        memory_mask = torch.cat([enc.memory_mask, enc.memory_mask.new_ones(b, 1)], 1)
        projected = enc.projected or (None,) * len(self.layers)
        for layer, kv in zip(self.layers, projected, strict=True):
            h = layer(h, memory, memory_mask, kv)
        return self.head(self.out_norm(h))

    def project_memory(self, encoded: EncodedConditions) -> EncodedConditions:
        """``encoded`` with every decoder layer's cross-attention keys and values of its memory made now
        (:attr:`EncodedConditions.projected`); :meth:`forward` then projects only the step token. The same
        prediction, for a sampler that calls the network at many steps with one set of conditions."""
        kv = tuple(cast(EfficientDecoderLayer, layer).cross_attn.project(encoded.memory) for layer in self.layers)
        return replace(encoded, projected=kv)

    def _encode_text(self, c: CMDTConditions) -> tuple[torch.Tensor, torch.Tensor]:
        """Transcript tokens behind the null token: ``[B, 1 + L, d]`` and their mask ``[B, 1 + L]``.

        The null token is the only valid token of a sample whose transcript is dropped, absent or empty; the
        text tokens are the valid ones otherwise. With no transcript at all: ``[B, 1, d]``, all valid.
        """
        b = c.audio.shape[0]
        null = self.null_text.expand(b, 1, -1)
        if c.text_tokens is None and c.text_features is None:
            return null, torch.ones(b, 1, dtype=torch.bool, device=null.device)
        if isinstance(self.text_encoder, TranscriptEncoder):
            if c.text_tokens is None:
                raise TalkingHeadError("This model encodes the transcript itself; pass text_tokens, not text_features.")
            mask = c.text_mask if c.text_mask is not None else torch.ones_like(c.text_tokens, dtype=torch.bool)
            text = self.text_encoder(c.text_tokens, mask)
        else:
            if c.text_features is None:
                raise TalkingHeadError(
                    f"This model reads {self.config.external_text_dim}-d text features (e.g. CLIP); pass "
                    "text_features, not text_tokens."
                )
            text = self.text_encoder(c.text_features)
            mask = c.text_mask if c.text_mask is not None else text.new_ones(text.shape[:2], dtype=torch.bool)
        drop = ~mask.any(1)                                                     # [B] empty transcript
        if c.drop_text is not None:
            drop = drop | c.drop_text
        text_mask = torch.cat([drop[:, None], mask & ~drop[:, None]], 1)
        return torch.cat([null, text], 1), text_mask

    def _check(self, c: CMDTConditions) -> None:
        """One clear sentence for conditions that do not fit this model or each other."""
        cfg = self.config
        if c.audio.ndim != 3 or c.audio.shape[2] != cfg.audio_dim:
            raise TalkingHeadError(f"The audio features are {tuple(c.audio.shape)}; expected [B, N, {cfg.audio_dim}].")
        b, n = c.audio.shape[0], c.audio.shape[1]
        if tuple(c.phonemes.shape) != (b, n):
            raise TalkingHeadError(
                f"The phonemes are {tuple(c.phonemes.shape)}; expected one per audio frame, [{b}, {n}]."
            )
        if tuple(c.first_frame.shape) != (b, cfg.motion_dim):
            raise TalkingHeadError(
                f"The first frame is {tuple(c.first_frame.shape)}; expected [{b}, {cfg.motion_dim}]."
            )
        if c.text_tokens is not None and c.text_features is not None:
            raise TalkingHeadError("Give the transcript as text_tokens or as text_features, not both.")
        text = c.text_tokens if c.text_tokens is not None else c.text_features
        if text is not None and text.shape[0] != b:
            raise TalkingHeadError(f"The transcript has a batch of {text.shape[0]}; the audio has {b}.")
        if text is not None and text.shape[1] > cfg.max_text_length:
            raise TalkingHeadError(
                f"The transcript has {text.shape[1]} tokens; this model takes at most {cfg.max_text_length}."
            )
        for name, flags in (("drop_text", c.drop_text), ("drop_speech", c.drop_speech)):
            if flags is not None and tuple(flags.shape) != (b,):
                raise TalkingHeadError(f"{name} is {tuple(flags.shape)}; expected one flag per sample, [{b}].")

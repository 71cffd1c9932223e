"""DICE-Talk 3.1, the disentangled emotion embedder (Eq. 2-8): a clip's expression and audio -> a Gaussian
emotion prior ``N(mu_s, sigma_s^2)`` and its sample ``s``.

- **Visual branch** (follows StyleTalk, like DreamTalk's style encoder): the expression-coefficient sequence
  ``V_beta [N, E]`` lifted to ``d_s``, sinusoidal positions, a transformer encoder -> ``s_beta [N, d_s]``.
- **Audio branch**: frame-aligned audio features ``V_alpha [N, A]`` lifted to ``d_s``, positions, learnable
  transformer layers -> ``s_alpha [N, d_s]``.
- **Fusion** (Eq. 2-3), per fusion layer: ``s_alpha <- s_alpha + lambda * CA(W_Q s_alpha, W_K s_beta, W_V s_beta)``.
- **Attention pooling** (Eq. 4-5): ``w = softmax(W_s s^_alpha)`` over the frames, ``mu_s = w . s^_alpha`` and
  ``sigma_s^2 = w . (s^_alpha - mu_s)^2`` (the attention-weighted variance of the fused frames).
- **Sample** (Eq. 6): ``s = mu_s + sigma_s * eps``.
- **InfoNCE** (Eq. 7-8, :func:`info_nce`): positives share the identity and the emotion (one label per
  (speaker, emotion) group), negatives differ in either; ``zeta`` is the cosine similarity, ``tau`` the
  config's ``temperature``.
- **Modality dropout** (3.1 "Embedder Training", 4.1): in training each sample's ``s_beta`` or ``s_alpha`` is
  set to zero with probability ``modality_dropout`` each, never both (:func:`modality_keep`); at inference a
  missing modality (``None``) is the same zero sequence, so a prior comes from video only or audio only.

Padding frames (``valid = False``) are masked out of both branches' self-attention, the fusion's keys and the
pooling.

The embedder also holds the **emotion prompts** (4.1, "Ours-P"): the mean of ``mu_s`` over the training clips
of each emotion, filled in when the embedder is exported (:mod:`.embedder_training`) and looked up by name
with :meth:`EmotionEmbedder.emotion_prompt`, so ``--emotion NAME`` needs no data.

Deviations from the paper, and why:

- The visual input is the expression channels of this project's face model (e.g. 40 ARKit-named blendshape
  weights), not 64 3DMM coefficients: that is what the face frontend and the corpus provide. The layout is
  stored in the checkpoint.
- The audio input is whatever frame-aligned features the training dataset holds (25 fps): Whisper-Tiny's
  encoder output (384-d, the ``dice`` feature preset, the paper's choice) when the dataset was built with it,
  else the project's own low-level features (log-mel, MFCC, FBANK, f0, voicing, energy), because Whisper
  weights cannot be downloaded here. The choice is recorded in the checkpoint's ``audio_features``.
- The paper gives neither the number of audio or fusion layers, nor ``lambda`` (Eq. 3), ``tau`` (Eq. 7) or
  the dropout rate; they are config fields (``paper`` preset: 3 / 3 / 1.0 / 0.1 / 0.2 each, our choices).
  ``d_s`` and the visual encoder (256-d, three 8-head layers, 1024 feed-forward) are StyleTalk's.
- Each fusion layer normalises its query and key/value inputs (LayerNorm) and is followed by a residual
  feed-forward sublayer, the usual transformer-decoder parts the paper leaves unsaid; the residual stream
  is Eq. 3 as written.
- Eq. 5's variance is floored at ``1e-6`` before the square root and the logarithm (a clip whose fused frames
  are all equal would otherwise have an infinite gradient).
- The "fixed constant added to stabilise the similarity" (3.1) cancels in Eq. 8's ratio; the loss is
  computed with ``logsumexp`` instead, which is what makes it numerically stable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from talkinghead.checkpoint import PretrainedMixin
from talkinghead.config import Config
from talkinghead.errors import TalkingHeadError
from talkinghead.nn.attention import transformer_encoder
from talkinghead.nn.embeddings import sinusoidal_positions
from talkinghead.nn.normalize import Normalizer
from talkinghead.sequence import MotionSequence

VAR_FLOOR = 1e-6


@dataclass(frozen=True)
class EmbedderConfig(Config):
    """Sizes of the embedder. ``expression_dim`` / ``audio_dim`` are set from the training data (``paper``:
    64 3DMM coefficients, Whisper-Tiny's 384-d features); ``emotions`` names the rows of the emotion prompts."""

    expression_dim: int = 64
    audio_dim: int = 384
    d_s: int = 256
    heads: int = 8
    visual_layers: int = 3
    audio_layers: int = 3
    fusion_layers: int = 3
    ff_dim: int = 1024
    dropout: float = 0.1
    fusion_scale: float = 1.0          # lambda of Eq. 3
    modality_dropout: float = 0.2      # probability of zeroing s_beta, and (separately) of zeroing s_alpha
    temperature: float = 0.1           # tau of Eq. 7
    emotions: tuple[str, ...] = ()

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {"d_s": 32, "heads": 2, "visual_layers": 1, "audio_layers": 1, "fusion_layers": 1, "ff_dim": 64,
                 "dropout": 0.0},
        "cpu": {"d_s": 128, "heads": 4, "visual_layers": 2, "audio_layers": 2, "fusion_layers": 2, "ff_dim": 256},
        "paper": {},
    }

    def __post_init__(self) -> None:
        if self.d_s % self.heads or self.d_s % 2:
            raise TalkingHeadError(f"The embedder width d_s={self.d_s} must be even and divisible by "
                                   f"heads={self.heads}.")
        if not 0.0 <= self.modality_dropout <= 0.5:
            raise TalkingHeadError("Modality dropout must lie in [0, 0.5] so that both modalities are never dropped.")
        if self.temperature <= 0:
            raise TalkingHeadError("The InfoNCE temperature must be positive.")
        if len(set(self.emotions)) != len(self.emotions):
            raise TalkingHeadError("The embedder's emotion names repeat.")


@dataclass
class EmotionPrior:
    """The Gaussian emotion prior of a batch of clips: ``mean`` (``mu_s``, Eq. 4) and ``var`` (``sigma_s^2``,
    Eq. 5), both ``[B, d_s]``."""

    mean: torch.Tensor
    var: torch.Tensor

    @property
    def logvar(self) -> torch.Tensor:
        """``log sigma_s^2 [B, d_s]``."""
        return torch.log(self.var.clamp_min(VAR_FLOOR))

    @property
    def std(self) -> torch.Tensor:
        return torch.sqrt(self.var.clamp_min(VAR_FLOOR))

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        """Eq. 6: ``s = mu_s + sigma_s * eps``, ``eps ~ N(0, I)`` -> ``[B, d_s]`` (reparameterised)."""
        eps = torch.randn(self.mean.shape, generator=generator, device=self.mean.device, dtype=self.mean.dtype)
        return self.mean + self.std * eps


def modality_keep(batch: int, p: float, generator: torch.Generator | None = None,
                  device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Modality dropout (3.1, 4.1): ``(keep_visual, keep_audio)``, bool ``[B]`` each. A sample loses its
    visual features with probability ``p``, else its audio features with probability ``p``; never both."""
    u = torch.rand(batch, generator=generator, device=device)
    return u >= p, (u < p) | (u >= 2 * p)


def info_nce(s: torch.Tensor, labels: torch.Tensor, temperature: float) -> torch.Tensor:
    """Eq. 7-8 over a batch: ``s [B, d]`` priors, ``labels [B]`` (equal label = positive pair: same identity and
    same emotion; different label = negative) -> the mean over every ordered positive pair ``(i, p)`` of
    ``-log(w(s_p) / (w(s_p) + sum_n w(s_n)))`` with ``w(x) = exp(cos(s_i, x) / tau)``, ``n`` over ``i``'s negatives.
    """
    if s.ndim != 2 or labels.shape != s.shape[:1]:
        raise TalkingHeadError(f"InfoNCE takes priors [B, d] and labels [B], got {list(s.shape)} and "
                               f"{list(labels.shape)}.")
    z = F.normalize(s, dim=-1)
    logits = z @ z.T / temperature                                          # zeta / tau, [B, B]
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(s), dtype=torch.bool, device=s.device)
    positive = same & ~eye
    if not bool(positive.any()):
        raise TalkingHeadError("InfoNCE needs at least two samples with the same identity and emotion in a batch.")
    negatives = torch.logsumexp(logits.masked_fill(same, float("-inf")), dim=1)   # log sum_n w(s_n), [B]
    per_pair = torch.logaddexp(logits, negatives[:, None]) - logits               # Eq. 8 for every (i, p)
    return per_pair[positive].mean()


class _FusionLayer(nn.Module):
    """Eq. 2-3: ``s^_alpha = s_alpha + lambda * CA(W_Q s_alpha, W_K s_beta, W_V s_beta)``, then a residual
    feed-forward sublayer."""

    def __init__(self, dim: int, heads: int, ff_dim: int, dropout: float, scale: float) -> None:
        super().__init__()
        self.scale = scale
        self.norm_q = nn.LayerNorm(dim)
        self.norm_kv = nn.LayerNorm(dim)
        self.attention = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.norm_ff = nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, ff_dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(ff_dim, dim))

    def forward(self, s_alpha: torch.Tensor, s_beta: torch.Tensor, pad: torch.Tensor | None) -> torch.Tensor:
        """``s_alpha, s_beta: [B, N, d]``, ``pad: [B, N]`` (True = padding) -> ``[B, N, d]``."""
        kv = self.norm_kv(s_beta)
        attended, _ = self.attention(self.norm_q(s_alpha), kv, kv, key_padding_mask=pad, need_weights=False)
        fused = s_alpha + self.scale * attended                                  # Eq. 3
        return fused + self.ff(self.norm_ff(fused))


class _Branch(nn.Module):
    """Linear lift + sinusoidal positions + transformer encoder: ``[B, N, in] -> [B, N, d]``."""

    def __init__(self, in_dim: int, c: EmbedderConfig, layers: int) -> None:
        super().__init__()
        self.d = c.d_s
        self.lift = nn.Linear(in_dim, c.d_s)
        self.encoder = transformer_encoder(c.d_s, c.heads, layers, c.ff_dim, c.dropout)

    def forward(self, x: torch.Tensor, pad: torch.Tensor | None) -> torch.Tensor:
        tokens = self.lift(x) + sinusoidal_positions(x.shape[1], self.d, x.device)
        return self.encoder(tokens, src_key_padding_mask=pad)


class EmotionEmbedder(PretrainedMixin, nn.Module):
    """Expression ``[B, N, E]`` and audio features ``[B, N, A]`` (raw, frame-aligned) -> :class:`EmotionPrior`."""

    component: ClassVar[str] = "dice.embedder"
    config_class: ClassVar[type[Config]] = EmbedderConfig
    checkpoint_inputs: ClassVar[tuple[str, ...]] = ("layout", "audio_features")
    config: EmbedderConfig
    emotion_prompts: torch.Tensor
    prompt_clips: torch.Tensor

    def __init__(self, config: EmbedderConfig, layout: dict[str, Any] | None = None,
                 audio_features: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.config = config
        self.layout = layout
        self.audio_features = audio_features
        c = config
        self.expression_norm = Normalizer(c.expression_dim)
        self.audio_norm = Normalizer(c.audio_dim)
        self.visual = _Branch(c.expression_dim, c, c.visual_layers)
        self.audio = _Branch(c.audio_dim, c, c.audio_layers)
        self.fusion = nn.ModuleList(_FusionLayer(c.d_s, c.heads, c.ff_dim, c.dropout, c.fusion_scale)
                                    for _ in range(c.fusion_layers))
        self.pool_score = nn.Linear(c.d_s, 1, bias=False)                         # W_s of Eq. 4, [1, d_s]
        # the emotion prompts (4.1 "Ours-P"): mean mu_s per emotion and how many clips it averages
        self.register_buffer("emotion_prompts", torch.zeros(len(c.emotions), c.d_s))
        self.register_buffer("prompt_clips", torch.zeros(len(c.emotions)))

    # ------------------------------------------------------------------------------------------- branches
    def encode_visual(self, expression: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        """``expression: [B, N, E]`` raw, ``valid: [B, N]`` -> ``s_beta [B, N, d_s]``."""
        return self.visual(self.expression_norm(expression), None if valid is None else ~valid)

    def encode_audio(self, audio: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        """``audio: [B, N, A]`` raw features, ``valid: [B, N]`` -> ``s_alpha [B, N, d_s]``."""
        return self.audio(self.audio_norm(audio), None if valid is None else ~valid)

    def fuse(self, s_alpha: torch.Tensor, s_beta: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        """Eq. 2-3 over the fusion layers: ``[B, N, d_s]`` twice -> ``s^_alpha [B, N, d_s]``."""
        pad = None if valid is None else ~valid
        for layer in self.fusion:
            s_alpha = layer(s_alpha, s_beta, pad)
        return s_alpha

    def pool(self, fused: torch.Tensor, valid: torch.Tensor | None = None) -> EmotionPrior:
        """Eq. 4-5: attention pooling of ``s^_alpha [B, N, d_s]`` into ``mu_s`` and ``sigma_s^2`` ``[B, d_s]``."""
        logits = self.pool_score(fused).squeeze(-1)                               # W_s s^_alpha, [B, N]
        if valid is not None:
            logits = logits.masked_fill(~valid, float("-inf"))
        weights = torch.softmax(logits, dim=-1)
        mean = torch.einsum("bn,bnd->bd", weights, fused)                         # Eq. 4
        var = torch.einsum("bn,bnd->bd", weights, (fused - mean[:, None]) ** 2)   # Eq. 5
        return EmotionPrior(mean, var.clamp_min(VAR_FLOOR))

    # -------------------------------------------------------------------------------------------- forward
    def forward(self, expression: torch.Tensor | None, audio: torch.Tensor | None,
                valid: torch.Tensor | None = None) -> EmotionPrior:
        """``expression: [B, N, E]`` and ``audio: [B, N, A]`` raw, frame-aligned (``None``: that modality is
        absent, its features are zero), ``valid: [B, N]`` bool (True = real frame) -> the prior ``[B, d_s]``.

        In training mode, when both are given, each sample may drop one of them (:func:`modality_keep`).
        """
        ref = expression if expression is not None else audio
        if ref is None:
            raise TalkingHeadError("The emotion embedder needs an expression sequence, audio features or both.")
        b, n = ref.shape[:2]
        if expression is not None and audio is not None and expression.shape[:2] != audio.shape[:2]:
            raise TalkingHeadError(f"The expression {list(expression.shape[:2])} and audio {list(audio.shape[:2])} "
                                   "sequences must have the same batch and frame count.")
        if valid is not None:
            if valid.shape != (b, n):
                raise TalkingHeadError(f"The valid mask must be [{b}, {n}], got {list(valid.shape)}.")
            if not bool(valid.any(dim=1).all()):
                raise TalkingHeadError("Every sequence given to the emotion embedder needs at least one valid frame.")
        zeros = ref.new_zeros(b, n, self.config.d_s)
        s_beta = zeros if expression is None else self.encode_visual(expression, valid)
        s_alpha = zeros if audio is None else self.encode_audio(audio, valid)
        if self.training and self.config.modality_dropout > 0 and expression is not None and audio is not None:
            keep_visual, keep_audio = modality_keep(b, self.config.modality_dropout, device=ref.device)
            s_beta = s_beta * keep_visual[:, None, None]
            s_alpha = s_alpha * keep_audio[:, None, None]
        return self.pool(self.fuse(s_alpha, s_beta, valid), valid)

    def contrastive_loss(self, prior: EmotionPrior, labels: torch.Tensor) -> torch.Tensor:
        """Eq. 8 on samples of ``prior`` (Eq. 6); ``labels [B]``: one id per (identity, emotion) group."""
        return info_nce(prior.sample(), labels, self.config.temperature)

    # ------------------------------------------------------------------------------------------ inference
    @torch.no_grad()
    def prior(self, expression: torch.Tensor | None, audio: torch.Tensor | None,
              valid: torch.Tensor | None = None) -> EmotionPrior:
        """The prior in eval mode (no modality dropout, no gradient); shapes as :meth:`forward`, or unbatched
        ``[N, E]`` / ``[N, A]`` (then ``mean``/``var`` are ``[1, d_s]``)."""
        expression = None if expression is None else (expression[None] if expression.ndim == 2 else expression)
        audio = None if audio is None else (audio[None] if audio.ndim == 2 else audio)
        valid = None if valid is None else (valid[None] if valid.ndim == 1 else valid)
        was_training = self.training
        self.eval()
        try:
            return self(expression, audio, valid)
        finally:
            self.train(was_training)

    def clip_prior(self, motion: MotionSequence | None, audio: np.ndarray | None) -> EmotionPrior:
        """The prior of one reference clip: its tracked ``motion`` (this embedder's channel layout) and/or its
        audio features ``[T, A]`` (what ``audio_features`` names); both are cut to the shorter length."""
        if motion is not None and self.layout is not None:
            if tuple(motion.layout.channels) != tuple(self.layout.get("channels", ())):
                raise TalkingHeadError(f"The reference motion uses the layout '{motion.layout.name}', but the emotion "
                                       f"embedder was trained on '{self.layout.get('name')}'.")
        expression = None if motion is None else np.asarray(motion.expression, np.float32)
        feats = None if audio is None else np.asarray(audio, np.float32)
        lengths = [len(x) for x in (expression, feats) if x is not None]
        if not lengths or min(lengths) == 0:
            raise TalkingHeadError("The emotion reference has no frames.")
        n = min(lengths)
        device = self.pool_score.weight.device
        return self.prior(None if expression is None else torch.from_numpy(expression[:n]).to(device),
                          None if feats is None else torch.from_numpy(feats[:n]).to(device))

    # ------------------------------------------------------------------------------------- emotion prompts
    @property
    def emotions(self) -> tuple[str, ...]:
        return self.config.emotions

    def set_emotion_prompts(self, means: torch.Tensor, counts: torch.Tensor) -> None:
        """Install the per-emotion mean priors ``[K_e, d_s]`` (rows in :attr:`emotions` order) and their clip
        counts ``[K_e]``."""
        self.emotion_prompts.copy_(means)
        self.prompt_clips.copy_(counts)

    def emotion_prompt(self, name: str) -> torch.Tensor:
        """The mean prior ``[d_s]`` of emotion ``name`` over the training clips (4.1, "Ours-P")."""
        if name not in self.emotions:
            known = ", ".join(self.emotions) or "none"
            raise TalkingHeadError(f"The emotion embedder knows no emotion '{name}'; it knows {known}.")
        row = self.emotions.index(name)
        if float(self.prompt_clips[row]) <= 0:
            raise TalkingHeadError(f"The emotion embedder has no prompt for '{name}': no training clip had it.")
        return self.emotion_prompts[row].clone()

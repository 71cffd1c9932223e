"""DICE-Talk's denoising network (Sec. 3 "Preliminaries", Sec. 3.2 "Emotion Projection", Eq. 14, Fig. 2): the Stable
Video Diffusion spatio-temporal UNet with reference-image, audio and emotion attention.

:class:`DICEUNet` holds a diffusers ``UNetSpatioTemporalConditionModel`` (``self.unet``, SVD-img2vid's parameter
names, so SVD weights load unchanged: :meth:`DICEUNet.from_svd` reads a local folder with
``from_pretrained(dir, subfolder="unet", local_files_only=True)``) and adds, as new modules outside it:

- **reference image, as SVD does it**: the clean reference latent is concatenated to every frame's noisy latent
  (``in_channels = 2 c``) and a reference-image embedding is the cross-attention context of every spatial and
  temporal transformer block (SVD's ``attn2``). SVD embeds the image with CLIP-vision (one 1024-d token); no CLIP
  weights can be had here, so :class:`ReferenceEncoder`, a small convolutional encoder of the reference latent
  trained with the rest, gives a grid of ``g x g`` tokens instead. (A CLIP-vision encoder from a local folder could
  later fill the same slot: its image embedding is a ``[B, 1, 1024]`` context.)
- **audio attention** (DICE-Talk Sec. 3 "Overview": "we use an attention layer for processing following Sonic"):
  each frame's window of ``2m + 1`` audio feature frames (as EMO/Sonic) becomes ``2m + 1`` tokens
  (:class:`AudioProjection`). In a spatial block a frame attends to its own window; in a temporal block every
  position attends to the whole clip's windows, each token tagged with its frame's sinusoidal position (Sonic's
  global audio perception across time).
- **emotion attention** (Eq. 14): ``z_s = z_a + CA(Q(z_a), K(E_s), V(E_s))``, with ``z_a`` the features after the
  reference and the audio attention, in BOTH the spatial and the temporal transformer blocks, as the paper says
  ("injected into the spatial and temporal cross-attention layers").

Order inside each transformer block's cross-attention slot (``attn2``, a custom processor, :class:`_ConditionSlot`)::

    r   = attn2(norm2(h), image tokens)                       SVD's own reference cross-attention, unchanged
    z_a = h + r + A(LN(h + r), audio tokens)                   audio attention
    z_s = z_a + E(LN(z_a), E_s)                                Eq. 14
    (the block adds z_s - h to h, then runs its feed-forward)

``h`` (the residual stream before ``norm2``) is taken by a forward pre-hook on ``norm2``. Every added attention's
output projection starts at zero, so a loaded SVD UNet computes exactly what it computed before (tested).

Dropping a condition (training dropout, guidance; :mod:`.edm`): ``drop={"image"|"audio"|"emotion": bool [B]}``.
A dropped image zeroes the reference latent and the image tokens (what SVD's pipeline feeds as its unconditional
image); a dropped audio or emotion removes that attention's contribution for the sample (as if the layer were
absent), so "unconditional" is the same thing in training and at inference.

The mid-block output, averaged over frames and positions, is returned as ``features [B, C_mid]`` for the emotion
discriminator (Sec. 3.3, Eq. 16, :mod:`.discriminator`). The network never sees the noise schedule: it takes EDM's
``c_in``-scaled input and ``c_noise`` as its timestep (:mod:`.edm`).

Deviations and why:

- the reference-image tokens come from a small trained encoder of the reference latent, not CLIP-vision (no weights);
- pre-LayerNorm on the queries of the added attentions (Eq. 14 writes ``Q(z_a)``), as every sub-layer of SVD's
  transformer blocks is pre-normed;
- dropped audio/emotion remove the attention's output rather than feeding zero features, so "no condition" cannot be
  confused with "silence" and needs no learned null token;
- SVD's micro-conditioning ``added_time_ids`` (fps - 1, motion bucket, noise-augmentation level) is a fixed config
  value (``time_ids``) unless given, as the paper names no use of it; SVD's noise augmentation of the reference is
  left to the caller;
- ``cpu`` preset (128 px crops, factor-4 VAE, 32 x 32 latents): widths 32/64/128, one resnet per level, no
  transformer at the 32 x 32 level (SVD has none at its lowest resolution instead), so a 12-frame call stays well
  under a second on two CPU cores; the transformers at 16 x 16 and 8 x 8 carry the image, audio and emotion.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from talkinghead.config import Config
from talkinghead.errors import TalkingHeadError, first_line
from talkinghead.nn.normalize import Normalizer
from talkinghead.video.dice.edm import CONDITIONS

#: the diffusers block types of SVD's UNet, with and without transformers
_DOWN = {True: "CrossAttnDownBlockSpatioTemporal", False: "DownBlockSpatioTemporal"}
_UP = {True: "CrossAttnUpBlockSpatioTemporal", False: "UpBlockSpatioTemporal"}
#: diffusers builds every GroupNorm of the spatio-temporal blocks with 32 groups
_GROUPS = 32


@dataclass(frozen=True)
class DICEUNetConfig(Config):
    """The SVD UNet's shape and the added conditioning's sizes.

    SVD part (``UNetSpatioTemporalConditionModel``): ``block_out_channels`` per level, ``attention_levels`` (a
    spatio-temporal transformer after each resnet of that level), ``heads`` per level, ``layers_per_block``,
    ``transformer_layers``, ``latent_channels`` ``c`` (input ``2c``: noisy + reference latent), ``cross_attention_dim``
    (width of the image tokens), ``time_embed_dim`` (SVD's ``addition_time_embed_dim``; three ids), ``num_frames``
    and ``sample_size`` (recorded in the diffusers config only), ``time_ids`` (the fixed ``added_time_ids``).

    Added: ``reference_channels`` (the reference encoder's convolution widths; each after the first halves the
    resolution), ``reference_grid`` ``g`` (``g * g`` image tokens), ``audio_dim`` ``A`` (one audio frame's feature
    width, set from the dataset), ``audio_context`` ``m`` (``2m + 1`` frames per window), ``audio_token_dim``,
    ``emotion_dim`` ``d_e`` (the emotion feature ``E_s``'s width, the emotion bank's)."""

    block_out_channels: tuple[int, ...] = (320, 640, 1280, 1280)
    attention_levels: tuple[bool, ...] = (True, True, True, False)
    heads: tuple[int, ...] = (5, 10, 20, 20)
    layers_per_block: int = 2
    transformer_layers: int = 1
    latent_channels: int = 4
    cross_attention_dim: int = 1024
    time_embed_dim: int = 256
    num_frames: int = 25
    sample_size: int = 96
    time_ids: tuple[float, float, float] = (24.0, 127.0, 0.02)
    reference_channels: tuple[int, ...] = (128, 256, 512, 512)
    reference_grid: int = 4
    audio_dim: int = 384
    audio_context: int = 2
    audio_token_dim: int = 1024
    emotion_dim: int = 256

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {"block_out_channels": (32, 64), "attention_levels": (True, True), "heads": (1, 2),
                 "layers_per_block": 1, "cross_attention_dim": 32, "time_embed_dim": 8, "num_frames": 4,
                 "sample_size": 8, "reference_channels": (16, 32), "reference_grid": 2, "audio_dim": 6,
                 "audio_context": 1, "audio_token_dim": 16, "emotion_dim": 32},
        "cpu": {"block_out_channels": (32, 64, 128), "attention_levels": (False, True, True), "heads": (1, 2, 4),
                "layers_per_block": 1, "cross_attention_dim": 128, "time_embed_dim": 32, "num_frames": 12,
                "sample_size": 32, "reference_channels": (32, 64, 128), "reference_grid": 4, "audio_dim": 19,
                "audio_context": 2, "audio_token_dim": 128, "emotion_dim": 128},
        "paper": {},
    }

    def __post_init__(self) -> None:
        n = len(self.block_out_channels)
        if len(self.attention_levels) != n or len(self.heads) != n:
            raise TalkingHeadError("attention_levels and heads need one entry per entry of block_out_channels.")
        if any(c % _GROUPS or c % h for c, h in zip(self.block_out_channels, self.heads, strict=True)):
            raise TalkingHeadError("Every DICE UNet width must divide by 32 (its GroupNorms) and by its heads.")
        if not any(self.attention_levels):
            raise TalkingHeadError("The DICE UNet needs transformers at one level at least to read its conditions.")
        if self.layers_per_block < 1 or self.transformer_layers < 1 or self.audio_context < 0:
            raise TalkingHeadError("The DICE UNet needs one layer per block at least and a non-negative audio "
                                   "context.")
        if not self.reference_channels or self.reference_grid < 1:
            raise TalkingHeadError("The reference encoder needs one convolution width at least and a grid of 1 or "
                                   "more.")

    @property
    def audio_window(self) -> int:
        """``K = 2m + 1`` audio frames per generated frame."""
        return 2 * self.audio_context + 1

    def diffusers_config(self) -> dict[str, Any]:
        """Keyword arguments of ``UNetSpatioTemporalConditionModel``."""
        return {"sample_size": self.sample_size, "in_channels": 2 * self.latent_channels,
                "out_channels": self.latent_channels,
                "down_block_types": tuple(_DOWN[a] for a in self.attention_levels),
                "up_block_types": tuple(_UP[a] for a in reversed(self.attention_levels)),
                "block_out_channels": tuple(self.block_out_channels),
                "addition_time_embed_dim": self.time_embed_dim,
                "projection_class_embeddings_input_dim": 3 * self.time_embed_dim,
                "layers_per_block": self.layers_per_block, "cross_attention_dim": self.cross_attention_dim,
                "transformer_layers_per_block": self.transformer_layers,
                "num_attention_heads": tuple(self.heads), "num_frames": self.num_frames}


# ------------------------------------------------------------------------------------------- condition encoders

class ReferenceEncoder(nn.Module):
    """The reference-image embedding (SVD's CLIP-vision slot): reference latent ``[B, c, h, w]`` -> image tokens
    ``[B, g*g, D]`` (convolutions, adaptive average pooling to ``g x g``, a linear map, learned positions, LayerNorm).
    """

    def __init__(self, latent_channels: int, widths: tuple[int, ...], grid: int, dim: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(latent_channels, widths[0], 3, padding=1)]
        for a, b in zip(widths, widths[1:], strict=False):
            layers += [nn.SiLU(), nn.Conv2d(a, b, 3, stride=2, padding=1)]
        self.convs = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(grid)
        self.proj = nn.Linear(widths[-1], dim)
        self.position = nn.Parameter(torch.randn(grid * grid, dim) * 0.02)
        self.norm = nn.LayerNorm(dim)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        x = self.pool(F.silu(self.convs(latent)))                                     # [B, W, g, g]
        return self.norm(self.proj(x.flatten(2).transpose(1, 2)) + self.position)  # type: ignore[no-any-return]


class AudioProjection(nn.Module):
    """Raw audio windows ``[B, F, K, A]`` (``K = 2m + 1`` feature frames around each generated frame) -> tokens
    ``[B, F, K, D_a]``: standardised with the training set's statistics (``norm``, set by the trainer), an MLP, and a
    learned embedding of the offset ``-m..m``."""

    def __init__(self, audio_dim: int, window: int, dim: int) -> None:
        super().__init__()
        self.norm = Normalizer(audio_dim)
        self.mlp = nn.Sequential(nn.Linear(audio_dim, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.offset = nn.Parameter(torch.randn(window, dim) * 0.02)

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.norm(windows)) + self.offset  # type: ignore[no-any-return]


def frame_positions(frames: int, dim: int, device: torch.device | None = None) -> torch.Tensor:
    """Sinusoidal encodings of frame indices ``0..frames-1``: ``[frames, dim]`` (sines then cosines)."""
    half = dim // 2
    freq = torch.exp(-math.log(10000.0) * torch.arange(half, device=device) / max(half, 1))
    angles = torch.arange(frames, device=device, dtype=torch.float32)[:, None] * freq[None]
    return F.pad(torch.cat([angles.sin(), angles.cos()], dim=-1), (0, dim - 2 * half))


# ------------------------------------------------------------------------------------------ added attentions

class ConditionAttention(nn.Module):
    """Pre-norm cross-attention from a transformer block's tokens to a condition's tokens, output projection zero at
    initialisation. Returns the residual to add (not the sum).

    ``x [N, L, C]`` with ``N = M * g`` rows grouped by condition row (``g`` consecutive rows share one context row),
    ``context [M, K, D]``, ``keep [M]`` (1 keeps, 0 removes a row's contribution) -> ``[N, L, C]``. Grouping
    queries instead of repeating the context is exact (every query of a group attends to the same keys) and avoids
    copying the context ``g`` times."""

    def __init__(self, dim: int, context_dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm = nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(context_dim, dim, bias=False)
        self.to_v = nn.Linear(context_dim, dim, bias=False)
        self.to_out = nn.Linear(dim, dim)
        nn.init.zeros_(self.to_out.weight)
        nn.init.zeros_(self.to_out.bias)

    def forward(self, x: torch.Tensor, context: torch.Tensor, keep: torch.Tensor | None = None) -> torch.Tensor:
        n, length, c = x.shape
        m, k = context.shape[:2]
        if n % m:
            raise TalkingHeadError(f"{n} query rows cannot be grouped over {m} condition rows.")
        d = c // self.heads
        q = self.to_q(self.norm(x)).reshape(m, (n // m) * length, self.heads, d).transpose(1, 2)   # [M, h, gL, d]
        key = self.to_k(context).reshape(m, k, self.heads, d).transpose(1, 2)                   # [M, h, K, d]
        value = self.to_v(context).reshape(m, k, self.heads, d).transpose(1, 2)
        out = F.scaled_dot_product_attention(q, key, value)                           # [M, h, gL, d]
        out = self.to_out(out.transpose(1, 2).reshape(m, (n // m) * length, c))                  # [M, gL, C]
        if keep is not None:
            out = out * keep.to(out.dtype)[:, None, None]
        return out.reshape(n, length, c)


class ConditionLayers(nn.Module):
    """The audio and the emotion attention (Eq. 14) added to one transformer block (``dim`` wide, ``heads``)."""

    def __init__(self, dim: int, heads: int, audio_dim: int, emotion_dim: int) -> None:
        super().__init__()
        self.audio = ConditionAttention(dim, audio_dim, heads)
        self.emotion = ConditionAttention(dim, emotion_dim, heads)


@dataclass
class _Conditions:
    """What the processors read during one forward call (set and cleared by :meth:`DICEUNet.forward`).

    ``audio_frames [B*F, K, D_a]`` (spatial blocks), ``audio_clip [B, F*K, D_a]`` (temporal blocks), ``emotion
    [B, L_e, d_e]``; keep masks ``[B*F]`` / ``[B]`` (float, or None for all kept); ``mid`` the recorded mid-block
    output ``[B*F, C, h, w]``."""

    audio_frames: torch.Tensor | None = None
    audio_clip: torch.Tensor | None = None
    audio_keep_frames: torch.Tensor | None = None
    audio_keep: torch.Tensor | None = None
    emotion: torch.Tensor | None = None
    emotion_keep: torch.Tensor | None = None
    mid: torch.Tensor | None = None

    def clear(self) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, None)


class _ConditionSlot:
    """The ``attn2`` processor of one spatial or temporal transformer block (see the module docstring): SVD's
    reference cross-attention, then audio attention, then emotion attention (Eq. 14). ``capture`` is the forward
    pre-hook of the block's ``norm2`` that records the residual stream ``h``.

    Spatial blocks see rows ``[B*F, HW, C]`` (one per frame); temporal blocks rows ``[B*HW, F, C]`` (one per
    position), both sample-major, so ``B`` condition rows group them exactly."""

    def __init__(self, layers: ConditionLayers, conditions: _Conditions, temporal: bool) -> None:
        from diffusers.models.attention_processor import AttnProcessor2_0

        self.reference = AttnProcessor2_0()
        self.layers = layers
        self.conditions = conditions
        self.temporal = temporal
        self.residual: torch.Tensor | None = None

    def capture(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        self.residual = args[0]

    def __call__(self, attn: Any, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor | None = None,
                 attention_mask: torch.Tensor | None = None, temb: torch.Tensor | None = None) -> torch.Tensor:
        out: torch.Tensor = self.reference(attn, hidden_states, encoder_hidden_states, attention_mask, temb)
        h, self.residual = self.residual, None
        c = self.conditions
        if h is None or (c.audio_frames is None and c.emotion is None):
            return out
        z = h + out                                                                   # after reference attention
        audio = c.audio_clip if self.temporal else c.audio_frames
        if audio is not None:
            a = self.layers.audio(z, audio, c.audio_keep if self.temporal else c.audio_keep_frames)
            out, z = out + a, z + a                                                   # z_a
        if c.emotion is not None:
            out = out + self.layers.emotion(z, c.emotion, c.emotion_keep)             # Eq. 14: z_s - h
        return out


# ------------------------------------------------------------------------------------------------- the UNet

@dataclass
class DICEUNetOutput:
    """``sample [B, F, c, h, w]`` (the network output ``F_theta`` that EDM preconditions) and ``features [B, C_mid]``
    (the mid-block output averaged over frames and positions, for the emotion discriminator)."""

    sample: torch.Tensor
    features: torch.Tensor = field(repr=False)


def _condition_key(name: str) -> str:
    return name.replace(".", "_")


class DICEUNet(nn.Module):
    """``forward(sample [B, F, c, h, w], timestep [B] or [], reference [B, c, h, w], audio [B, F, K, A] or None,
    emotion [B, L_e, d_e] or None, drop {name: bool [B]} or None, added_time_ids [B, 3] or None) -> DICEUNetOutput``
    (see the module docstring). ``sample`` is the noisy latent clip as EDM scales it (``c_in * x``), ``timestep``
    EDM's ``c_noise``, ``reference`` the clean reference latent.

    The conditions reach the processors through state set for the length of one call, so one instance runs one
    forward at a time (no threads sharing it), and diffusers' ``set_attn_processor`` must not be called on
    ``self.unet`` (it would drop the added attentions)."""

    def __init__(self, config: DICEUNetConfig | None = None) -> None:
        from diffusers import UNetSpatioTemporalConditionModel
        from diffusers.models.attention import BasicTransformerBlock, TemporalBasicTransformerBlock

        super().__init__()
        self.config = config = config or DICEUNetConfig()
        unet: Any = UNetSpatioTemporalConditionModel(**config.diffusers_config())
        self.unet = unet
        self.reference_encoder = ReferenceEncoder(config.latent_channels, config.reference_channels,
                                                  config.reference_grid, config.cross_attention_dim)
        self.audio_projection = AudioProjection(config.audio_dim, config.audio_window, config.audio_token_dim)
        self.condition_layers = nn.ModuleDict()
        self._conditions = _Conditions()
        for name, module in unet.named_modules():
            if not isinstance(module, BasicTransformerBlock | TemporalBasicTransformerBlock) or module.attn2 is None:
                continue
            block: Any = module
            dim = int(block.norm2.normalized_shape[0])
            layers = ConditionLayers(dim, int(block.attn2.heads), config.audio_token_dim, config.emotion_dim)
            self.condition_layers[_condition_key(name)] = layers
            slot = _ConditionSlot(layers, self._conditions, isinstance(block, TemporalBasicTransformerBlock))
            block.attn2.set_processor(slot)  # a plain object: not a submodule, no state-dict entries
            block.norm2.register_forward_pre_hook(slot.capture)
        unet.mid_block.register_forward_hook(self._record_mid)

    def _record_mid(self, module: nn.Module, args: Any, output: torch.Tensor) -> None:
        self._conditions.mid = output

    # ------------------------------------------------------------------------------------------ inputs
    def reference_tokens(self, reference: torch.Tensor) -> torch.Tensor:
        """The image tokens of a reference latent: ``[B, c, h, w] -> [B, g*g, cross_attention_dim]``."""
        return self.reference_encoder(reference)  # type: ignore[no-any-return]

    def audio_tokens(self, audio: torch.Tensor) -> torch.Tensor:
        """Raw windows ``[B, F, K, A]`` -> tokens ``[B, F, K, D_a]``."""
        c = self.config
        if audio.ndim != 4 or audio.shape[2:] != (c.audio_window, c.audio_dim):
            raise TalkingHeadError(f"The DICE UNet takes audio windows [B, F, {c.audio_window}, {c.audio_dim}], got "
                                   f"{list(audio.shape)}.")
        return self.audio_projection(audio)  # type: ignore[no-any-return]

    def _check(self, sample: torch.Tensor, reference: torch.Tensor, emotion: torch.Tensor | None,
               drop: dict[str, torch.Tensor]) -> None:
        c = self.config
        if sample.ndim != 5 or sample.shape[2] != c.latent_channels:
            raise TalkingHeadError(f"The DICE UNet takes latent clips [B, F, {c.latent_channels}, h, w], got "
                                   f"{list(sample.shape)}.")
        b = sample.shape[0]
        if reference.shape != (b, *sample.shape[2:]):
            raise TalkingHeadError(f"The reference latent should be {[b, *sample.shape[2:]]}, got "
                                   f"{list(reference.shape)}.")
        if emotion is not None and (emotion.ndim != 3 or emotion.shape[0] != b or emotion.shape[2] != c.emotion_dim):
            raise TalkingHeadError(f"The emotion feature should be [{b}, L_e, {c.emotion_dim}], got "
                                   f"{list(emotion.shape)}.")
        unknown = sorted(set(drop) - set(CONDITIONS))
        if unknown:
            raise TalkingHeadError(f"Cannot drop {', '.join(unknown)}; the conditions are {', '.join(CONDITIONS)}.")
        if any(m.shape != (b,) for m in drop.values()):
            raise TalkingHeadError(f"Each drop mask should be a boolean tensor of shape [{b}].")

    # ------------------------------------------------------------------------------------------ forward
    def forward(self, sample: torch.Tensor, timestep: torch.Tensor, reference: torch.Tensor,
                audio: torch.Tensor | None = None, emotion: torch.Tensor | None = None,
                drop: dict[str, torch.Tensor] | None = None,
                added_time_ids: torch.Tensor | None = None) -> DICEUNetOutput:
        drop = dict(drop or {})
        self._check(sample, reference, emotion, drop)
        if self.unet.is_gradient_checkpointing:
            raise TalkingHeadError("The DICE UNet does not support gradient checkpointing: its recomputation would run "
                                   "without the audio and emotion conditions.")
        b, f = sample.shape[:2]
        keep = {name: (~mask.to(sample.device, torch.bool)).to(sample.dtype) for name, mask in drop.items()}
        tokens = self.reference_tokens(reference)                                     # [B, g*g, D]
        if "image" in keep:                                                           # SVD's unconditional image
            reference = reference * keep["image"][:, None, None, None]
            tokens = tokens * keep["image"][:, None, None]
        x = torch.cat([sample, reference[:, None].expand(-1, f, -1, -1, -1)], dim=2)  # [B, F, 2c, h, w]
        if added_time_ids is None:
            added_time_ids = torch.tensor(self.config.time_ids, dtype=sample.dtype, device=sample.device).expand(b, 3)
        timestep = torch.as_tensor(timestep, device=sample.device).reshape(-1)
        c = self._conditions
        try:
            if audio is not None:
                a = self.audio_tokens(audio)                                          # [B, F, K, D_a]
                if a.shape[:2] != (b, f):
                    raise TalkingHeadError(f"The audio windows cover {list(a.shape[:2])} (batch, frames), the clip "
                                           f"{[b, f]}.")
                c.audio_frames = a.flatten(0, 1)                                      # [B*F, K, D_a]
                at = a + frame_positions(f, a.shape[-1], a.device).to(a.dtype)[None, :, None]
                c.audio_clip = at.flatten(1, 2)                                       # [B, F*K, D_a]
                if "audio" in keep:
                    c.audio_keep = keep["audio"]
                    c.audio_keep_frames = keep["audio"].repeat_interleave(f)
            if emotion is not None:
                c.emotion = emotion.to(sample.dtype)
                c.emotion_keep = keep.get("emotion")
            out = self.unet(x, timestep, tokens, added_time_ids, return_dict=False)[0]
            mid = c.mid
        finally:
            c.clear()
        assert mid is not None
        features = mid.mean(dim=(2, 3)).view(b, f, -1).mean(dim=1)                   # [B, C_mid]
        return DICEUNetOutput(out, features)

    # ------------------------------------------------------------------------------------------ weights
    def svd_parameter_names(self) -> list[str]:
        """Names of the parameters an SVD checkpoint provides (``unet.*``); the rest are DICE-Talk's additions."""
        return [name for name, _ in self.named_parameters() if name.startswith("unet.")]

    def load_svd(self, state: dict[str, torch.Tensor], where: str = "the SVD UNet weights") -> None:
        """Load a ``UNetSpatioTemporalConditionModel`` state dict into ``self.unet`` (every key, with its shape)."""
        try:
            self.unet.load_state_dict(state, strict=True)
        except RuntimeError as err:
            first = str(err).strip().splitlines()[0]
            raise TalkingHeadError(f"{where} do not fit this UNet ({first}).") from err

    @classmethod
    def from_svd(cls, directory: str | Path, config: DICEUNetConfig | None = None) -> DICEUNet:
        """A DICE UNet whose SVD part comes from a local diffusers folder (``directory`` or its ``unet/``
        subfolder): the folder decides the SVD shape, ``config`` (default ``paper``) the added parts' sizes."""
        structure, state = load_svd_unet(directory)
        model = cls((config or DICEUNetConfig()).replace(**structure))
        model.load_svd(state, f"The UNet weights in {directory}")
        return model


# ---------------------------------------------------------------------------------------- SVD from a folder

def svd_structure(c: Any, where: str) -> dict[str, Any]:
    """The :class:`DICEUNetConfig` fields of a diffusers ``UNetSpatioTemporalConditionModel`` config; SVD-img2vid's
    structure only (``in_channels = 2 * out_channels``, SVD's block types, one transformer depth for all levels)."""
    down, up = tuple(c.down_block_types), tuple(c.up_block_types)
    levels = tuple(t == _DOWN[True] for t in down)
    heads = c.num_attention_heads
    heads = (heads,) * len(down) if isinstance(heads, int) else tuple(heads)
    layers, depth = c.layers_per_block, c.transformer_layers_per_block
    if (set(down) - set(_DOWN.values()) or up != tuple(_UP[a] for a in reversed(levels))
            or not isinstance(layers, int) or not isinstance(depth, int) or not isinstance(c.cross_attention_dim, int)
            or c.in_channels != 2 * c.out_channels
            or c.projection_class_embeddings_input_dim != 3 * c.addition_time_embed_dim):
        raise TalkingHeadError(f"{where} is not a UNet of Stable Video Diffusion (img2vid)'s structure.")
    return {"block_out_channels": tuple(c.block_out_channels), "attention_levels": levels, "heads": heads,
            "layers_per_block": layers, "transformer_layers": depth, "latent_channels": int(c.out_channels),
            "cross_attention_dim": int(c.cross_attention_dim), "time_embed_dim": int(c.addition_time_embed_dim),
            "num_frames": int(c.num_frames), "sample_size": int(c.sample_size or 0)}


def load_svd_unet(directory: str | Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """SVD's UNet from a local folder (``directory/unet`` if there, else ``directory``;
    ``from_pretrained(..., local_files_only=True)``): its :class:`DICEUNetConfig` fields and its weights."""
    from diffusers import UNetSpatioTemporalConditionModel

    path = Path(directory)
    subfolder = "unet" if (path / "unet" / "config.json").is_file() else None
    where = path / subfolder if subfolder else path
    if not (where / "config.json").is_file():
        raise TalkingHeadError(f"{path} holds no diffusers UNet (no config.json there or in unet/).")
    try:
        pretrained = UNetSpatioTemporalConditionModel.from_pretrained(str(path), subfolder=subfolder,
                                                                      local_files_only=True)
    except (OSError, ValueError, TypeError) as err:
        raise TalkingHeadError(f"{where} is not a diffusers UNetSpatioTemporalConditionModel folder "
                               f"({first_line(err)}).") from err
    return svd_structure(pretrained.config, str(where)), pretrained.state_dict()

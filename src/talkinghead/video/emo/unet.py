"""The Stable Diffusion 1.5-structured UNet that EMO's Backbone Network and ReferenceNet share (EMO 3.2: "the Backbone
Network has the similar UNet structure configuration with the SD 1.5"; "ReferenceNet possesses a structure identical
to that of the Backbone Network"; both "inherit weights from the original SD UNet").

Each is a diffusers ``UNet2DConditionModel`` built from :class:`UNetConfig`, so Stable Diffusion 1.5's parameter names
load unchanged (:func:`load_sd_weights`, :func:`unet_from_diffusers` from a local folder). Two changes:

- **no text cross-attention**: "the prompt embedding is not utilized" (3.2, Backbone Network), so each transformer
  block's ``attn2``/``norm2`` (the CLIP-text cross-attention) is removed; SD's weights for them are skipped on load.
- **reference-attention** (3.2, "Backbone Network", "ReferenceNet"): every self-attention ``attn1`` runs
  :class:`ReferenceAttnProcessor`, which can *record* its input (ReferenceNet: the reference feature maps "outputs
  from the self-attention layers") and can *read* reference tokens, appended to its keys and values (the Backbone:
  queries from the frame, keys/values from ``[frame; reference]``, SD's own ``to_q/to_k/to_v/to_out``). This is how
  ReferenceNet's features "undergo a reference-attention" with the Backbone's at matching layers, as in Animate
  Anyone [12], which EMO follows; the text cross-attention slot is where SD read its condition, and the reference
  now takes that role inside the self-attention.

:func:`run_unet` is the UNet's forward pass written over the diffusers blocks' own modules (``resnets``,
``attentions``, down/up samplers), with one call-back per *slot* (after each resnet/attention pair of a down or up
block, and after the middle attention): the Backbone inserts its audio-attention and temporal layers there
(AnimateDiff's motion-module positions), ReferenceNet records the motion frames' feature maps there. With no
call-back and no reference it computes exactly what ``UNet2DConditionModel.forward`` computes.

Deviation (``cpu`` preset, for speed): widths 32/64/128 and spatial attention (so reference- and audio-attention,
which ride on it) only at the 16 x 16 and 8 x 8 latent levels, not at the 32 x 32 one; the temporal modules stay at
every level. SD 1.5 attends at its three finest levels; here the finest level's attention over ``32 x 32 x 2``
tokens per frame costs about half of a denoising call, and without it one call on a 12-frame clip takes about 0.25 s
on the 2-core CPU (0.85 s with widths 64/128/192 and attention everywhere): with decoding, 12.3 s of compute per
second of video at 20 DDIM steps from strength 0.7 (BENCHMARKS.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from talkinghead.config import Config
from talkinghead.errors import TalkingHeadError, first_line

#: the width of the (removed) text cross-attention when building; nothing of it is kept
_TEXT_WIDTH = 8


@dataclass(frozen=True)
class UNetConfig(Config):
    """``UNet2DConditionModel``'s shape: ``block_out_channels`` per level (each but the last halves the resolution),
    ``attention_levels`` (a transformer after each resnet: ``CrossAttn*Block2D``; else ``*Block2D``; the middle always
    has one), ``layers_per_block``, ``heads`` (SD 1.5: 8; diffusers calls it ``attention_head_dim``),
    ``norm_num_groups``, ``latent_channels``, ``sample_size`` (latent side), ``use_linear_projection`` (SD 1.5: 1x1
    convolutions)."""

    block_out_channels: tuple[int, ...] = (320, 640, 1280, 1280)
    attention_levels: tuple[bool, ...] = (True, True, True, False)
    layers_per_block: int = 2
    heads: int = 8
    norm_num_groups: int = 32
    latent_channels: int = 4
    sample_size: int = 64
    use_linear_projection: bool = False

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {"block_out_channels": (16, 32), "attention_levels": (True, True), "layers_per_block": 1,
                 "heads": 2, "norm_num_groups": 8, "sample_size": 8},
        "cpu": {"block_out_channels": (32, 64, 128), "attention_levels": (False, True, True), "layers_per_block": 1,
                "heads": 4, "norm_num_groups": 16, "sample_size": 32},
        "paper": {},
    }

    def __post_init__(self) -> None:
        if len(self.attention_levels) != len(self.block_out_channels):
            raise TalkingHeadError("attention_levels needs one flag per entry of block_out_channels.")
        if any(c % self.norm_num_groups or c % self.heads for c in self.block_out_channels):
            raise TalkingHeadError("Every UNet width must divide by norm_num_groups and by heads.")

    def diffusers_config(self) -> dict[str, Any]:
        down = tuple("CrossAttnDownBlock2D" if a else "DownBlock2D" for a in self.attention_levels)
        up = tuple("CrossAttnUpBlock2D" if a else "UpBlock2D" for a in reversed(self.attention_levels))
        return {"sample_size": self.sample_size, "in_channels": self.latent_channels,
                "out_channels": self.latent_channels, "down_block_types": down, "up_block_types": up,
                "mid_block_type": "UNetMidBlock2DCrossAttn", "block_out_channels": tuple(self.block_out_channels),
                "layers_per_block": self.layers_per_block, "attention_head_dim": self.heads,
                "norm_num_groups": self.norm_num_groups, "cross_attention_dim": _TEXT_WIDTH,
                "use_linear_projection": self.use_linear_projection}


@dataclass(frozen=True)
class Slot:
    """A place in the UNet where the Backbone adds layers: ``name`` (``down_i_j``, ``mid``, ``up_i_j``), the width
    ``channels`` and whether a spatial transformer (reference-attention) sits there (``attention``)."""

    name: str
    channels: int
    attention: bool


# ------------------------------------------------------------------------------------------------ building

def text_attention_key(key: str) -> bool:
    """Whether a UNet state-dict key belongs to the removed text cross-attention (``attn2``/``norm2`` of a
    transformer block; a resnet's ``norm2`` is kept)."""
    return ".transformer_blocks." in key and (".attn2." in key or ".norm2." in key)


def build_unet(config: UNetConfig) -> Any:
    """A ``UNet2DConditionModel`` of ``config`` without text cross-attention, every self-attention running
    :class:`ReferenceAttnProcessor`."""
    from diffusers import UNet2DConditionModel
    from diffusers.models.attention import BasicTransformerBlock

    unet: Any = UNet2DConditionModel(**config.diffusers_config())
    for module in unet.modules():
        if isinstance(module, BasicTransformerBlock):
            block: Any = module
            block.attn2 = None
            block.norm2 = None
    unet.set_attn_processor(ReferenceAttnProcessor())
    return unet


def load_sd_weights(unet: nn.Module, state: dict[str, torch.Tensor], where: str = "the UNet weights") -> None:
    """Load a Stable Diffusion (``UNet2DConditionModel``) state dict: every key but the text cross-attention's
    must be there with its shape."""
    kept = {k: v for k, v in state.items() if not text_attention_key(k)}
    try:
        unet.load_state_dict(kept, strict=True)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0]
        raise TalkingHeadError(f"{where} do not fit this UNet ({first}).") from err


def config_from_diffusers(c: Any, where: str) -> UNetConfig:
    """The :class:`UNetConfig` of a diffusers ``UNet2DConditionModel`` config (SD 1.5's structure only)."""
    down, up = tuple(c.down_block_types), tuple(c.up_block_types)
    levels = tuple(t == "CrossAttnDownBlock2D" for t in down)
    layers = c.transformer_layers_per_block
    heads = c.num_attention_heads or c.attention_head_dim
    if (set(down) - {"CrossAttnDownBlock2D", "DownBlock2D"} or c.mid_block_type != "UNetMidBlock2DCrossAttn"
            or up != tuple("CrossAttnUpBlock2D" if a else "UpBlock2D" for a in reversed(levels))
            or (layers if isinstance(layers, int) else max(layers)) != 1 or not isinstance(heads, int)
            or not isinstance(c.layers_per_block, int) or c.in_channels != c.out_channels
            or c.class_embed_type is not None or c.addition_embed_type is not None):
        raise TalkingHeadError(f"{where} is not a UNet of Stable Diffusion 1.5's structure.")
    return UNetConfig(tuple(c.block_out_channels), levels, int(c.layers_per_block), heads, int(c.norm_num_groups),
                      int(c.in_channels), int(c.sample_size), bool(c.use_linear_projection))


def unet_from_diffusers(directory: str | Path) -> tuple[UNetConfig, dict[str, torch.Tensor]]:
    """SD 1.5's UNet from a local folder (``directory`` or ``directory/unet``): its config and weights."""
    from diffusers import UNet2DConditionModel

    path = Path(directory)
    if (path / "unet" / "config.json").is_file():
        path = path / "unet"
    if not (path / "config.json").is_file():
        raise TalkingHeadError(f"{path} holds no diffusers UNet (no config.json).")
    try:
        pretrained = UNet2DConditionModel.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError) as err:
        raise TalkingHeadError(f"{path} is not a diffusers UNet2DConditionModel folder ({first_line(err)}).") from err
    return config_from_diffusers(pretrained.config, str(path)), pretrained.state_dict()


def unet_slots(unet: Any) -> list[Slot]:
    """The slots of a UNet built by :func:`build_unet`, in the order :func:`run_unet` visits them."""
    slots = []
    for i, block in enumerate(unet.down_blocks):
        has = getattr(block, "attentions", None) is not None
        slots += [Slot(f"down_{i}_{j}", int(r.out_channels), has) for j, r in enumerate(block.resnets)]
    slots.append(Slot("mid", int(unet.mid_block.resnets[0].out_channels), True))
    for i, block in enumerate(unet.up_blocks):
        has = getattr(block, "attentions", None) is not None
        slots += [Slot(f"up_{i}_{j}", int(r.out_channels), has) for j, r in enumerate(block.resnets)]
    return slots


# ------------------------------------------------------------------------------------------ reference-attention

class ReferenceAttnProcessor:
    """Self-attention that may record its input and may read reference tokens (see the module docstring).

    ``record``: a list the input ``hidden_states [N, L, C]`` is appended to; ``reference [B, L_r, C]`` with
    ``N = B * F``: each of a sample's ``F`` frames attends over its own tokens and the reference's."""

    def __init__(self) -> None:
        from diffusers.models.attention_processor import AttnProcessor2_0

        self.attention = AttnProcessor2_0()

    def __call__(self, attn: Any, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor | None = None,
                 attention_mask: torch.Tensor | None = None, temb: torch.Tensor | None = None,
                 reference: torch.Tensor | None = None, record: list[torch.Tensor] | None = None) -> torch.Tensor:
        if record is not None:
            record.append(hidden_states)
        context = encoder_hidden_states
        if reference is not None:
            frames = hidden_states.shape[0] // reference.shape[0]
            own = hidden_states if context is None else context
            context = torch.cat([own, reference.repeat_interleave(frames, dim=0)], dim=1)   # [N, L + L_r, C]
        return self.attention(attn, hidden_states, context, attention_mask, temb)  # type: ignore[no-any-return]


# --------------------------------------------------------------------------------------------- forward

#: ``attention_kwargs(slot) -> kwargs of that slot's self-attention processor (or None)``
AttentionKwargs = Callable[[str], dict[str, Any] | None]
#: ``after(slot, h [N, C, H, W]) -> h``: what runs at a slot after its resnet (and transformer)
AfterSlot = Callable[[str, torch.Tensor], torch.Tensor]


def _none(slot: str) -> dict[str, Any] | None:
    return None


def _same(slot: str, h: torch.Tensor) -> torch.Tensor:
    return h


def run_unet(unet: Any, sample: torch.Tensor, timestep: torch.Tensor, attention_kwargs: AttentionKwargs = _none,
             after: AfterSlot = _same) -> torch.Tensor:
    """``UNet2DConditionModel``'s forward pass over its own modules: ``sample [N, c, h, w]``, ``timestep [N]`` ->
    ``[N, c, h, w]``, with ``attention_kwargs`` and ``after`` at each slot (see :func:`unet_slots`)."""
    emb = unet.time_embedding(unet.time_proj(timestep.reshape(-1).expand(sample.shape[0])).to(sample.dtype))
    h = unet.conv_in(sample)
    skips = [h]

    def pair(slot: str, resnet: Any, attention: Any, h: torch.Tensor) -> torch.Tensor:
        h = resnet(h, emb)
        if attention is not None:
            h = attention(h, cross_attention_kwargs=attention_kwargs(slot), return_dict=False)[0]
        return after(slot, h)

    for i, block in enumerate(unet.down_blocks):
        attentions = getattr(block, "attentions", None) or [None] * len(block.resnets)
        for j, (resnet, attention) in enumerate(zip(block.resnets, attentions, strict=True)):
            h = pair(f"down_{i}_{j}", resnet, attention, h)
            skips.append(h)
        for down in block.downsamplers or []:
            h = down(h)
            skips.append(h)
    mid = unet.mid_block
    h = mid.resnets[0](h, emb)
    for attention, resnet in zip(mid.attentions, mid.resnets[1:], strict=True):
        h = attention(h, cross_attention_kwargs=attention_kwargs("mid"), return_dict=False)[0]
        h = resnet(after("mid", h), emb)
    for i, block in enumerate(unet.up_blocks):
        attentions = getattr(block, "attentions", None) or [None] * len(block.resnets)
        for j, (resnet, attention) in enumerate(zip(block.resnets, attentions, strict=True)):
            h = pair(f"up_{i}_{j}", resnet, attention, torch.cat([h, skips.pop()], dim=1))
        for up in block.upsamplers or []:
            h = up(h, skips[-1].shape[2:] if skips else None)
    if unet.conv_norm_out is not None:
        h = unet.conv_act(unet.conv_norm_out(h))
    return unet.conv_out(h)  # type: ignore[no-any-return]

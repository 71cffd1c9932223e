"""AnimateDiff motion-module weights into EMO's temporal modules (EMO 3.3: "the temporal modules ... initialized
from AnimateDiff"; issue 16, item 4).

The temporal modules (:mod:`.temporal`) have AnimateDiff's structure: per layer a GroupNorm, ``proj_in``, transformer
blocks of two temporal self-attentions with a sinusoidal frame encoding added to each one's normed input and a
GEGLU feed-forward, then ``proj_out``, added to the input; and they sit at AnimateDiff's places (after each
resnet/attention pair of the down and up blocks, after the middle block). So a motion module loads by renaming:

=========================================================  ==================================================
AnimateDiff (diffusers ``MotionAdapter`` / original .ckpt)  here (``Backbone.temporal``)
=========================================================  ==================================================
``down_blocks.i.motion_modules.j.``                         ``down_i_j.``
``mid_block.motion_modules.0.``                             ``mid.``
``up_blocks.i.motion_modules.j.``                           ``up_i_j.``
``transformer_blocks.k.`` / ``temporal_transformer.``       ``blocks.k.`` / (dropped)
``norm1``, ``attn1`` / ``norms.0``, ``attention_blocks.0``  ``norms.0``, ``attentions.0``
``norm2``, ``attn2`` / ``norms.1``, ``attention_blocks.1``  ``norms.1``, ``attentions.1``
``norm3`` / ``ff_norm``; ``ff.net.*``                       ``ff_norm``; ``ff.net.*``
``pos_embed.pe`` / ``pos_encoder.pe`` (a fixed buffer)      not loaded: the encoding is computed, interleaved
=========================================================  ==================================================

EMO's own additions stay as initialised: the speed cross-attention (its output projection zero, so it adds nothing
until stage 3 trains it) and the motion frames, which only lengthen the sequence the self-attentions read. A motion
module without a middle block (AnimateDiff v1) leaves ``mid`` as initialised (the identity: ``proj_out`` is zero).

Two conventions must match AnimateDiff's for its weights to mean the same thing: the frame encoding is interleaved
(``TemporalConfig.positions = "interleaved"``, which :func:`animatediff_temporal_config` sets) and the attentions
have the motion module's heads (AnimateDiff's 8), blocks and norm groups (checked against its config), two
self-attentions and a 4x feed-forward (checked by the weights' names and shapes; the ``paper`` preset has them).
The input GroupNorm normalises each frame, as the original AnimateDiff does; diffusers' port normalises over all
frames of the clip together, which gives the same result when the frames share their statistics (the test relies
on that).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from talkinghead.errors import TalkingHeadError, first_line
from talkinghead.video.emo.temporal import TemporalConfig

_BLOCK = re.compile(r"^(down_blocks|up_blocks)\.(\d+)\.motion_modules\.(\d+)\.")
_MID = re.compile(r"^mid_block\.motion_modules\.0\.")
#: inner renames, applied in order (diffusers' names and the original release's)
_INNER = ((re.compile(r"^\.temporal_transformer\."), "."),
          (re.compile(r"\.transformer_blocks\.(\d+)\."), r".blocks.\1."),
          (re.compile(r"\.norm1\."), ".norms.0."), (re.compile(r"\.attn1\."), ".attentions.0."),
          (re.compile(r"\.norm2\."), ".norms.1."), (re.compile(r"\.attn2\."), ".attentions.1."),
          (re.compile(r"\.norm3\."), ".ff_norm."),
          (re.compile(r"\.attention_blocks\.(\d+)\."), r".attentions.\1."))


def our_name(name: str) -> str | None:
    """The temporal-module parameter a motion-module key loads into, or None (the position buffer; keys that are not
    motion-module keys)."""
    if name.endswith(("pos_embed.pe", "pos_encoder.pe")):
        return None
    block, mid = _BLOCK.match(name), _MID.match(name)
    if block:
        slot = f"{'down' if block.group(1) == 'down_blocks' else 'up'}_{block.group(2)}_{block.group(3)}"
        rest = "." + name[block.end():]
    elif mid:
        slot, rest = "mid", "." + name[mid.end():]
    else:
        return None
    for pattern, replacement in _INNER:
        rest = pattern.sub(replacement, rest)
    return slot + rest


def read_motion_module(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """A motion module from a local folder (a diffusers ``MotionAdapter``: ``config.json`` and its weights) or file
    (the original release's ``.safetensors`` or ``.ckpt``): its state dict and config (empty for a bare file)."""
    p = Path(path)
    if p.is_dir():
        if not (p / "config.json").is_file():
            raise TalkingHeadError(f"{p} holds no AnimateDiff motion adapter (no config.json).")
        from diffusers import MotionAdapter

        try:
            adapter = MotionAdapter.from_pretrained(str(p), local_files_only=True)
        except (OSError, ValueError) as err:
            raise TalkingHeadError(f"{p} is not a diffusers MotionAdapter folder ({first_line(err)}).") from err
        return adapter.state_dict(), dict(adapter.config)
    if not p.is_file():
        raise TalkingHeadError(f"There is no motion module at {p}.")
    loaded: Any
    try:
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file

            loaded = load_file(str(p))
        else:
            loaded = torch.load(str(p), map_location="cpu", weights_only=True)
            loaded = loaded.get("state_dict", loaded) if isinstance(loaded, dict) else loaded
    except Exception as err:  # noqa: BLE001 - any unreadable file is one sentence
        raise TalkingHeadError(f"{p} is not a readable motion-module file ({type(err).__name__}).") from err
    if not isinstance(loaded, dict) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise TalkingHeadError(f"{p} does not hold a state dict of tensors.")
    return loaded, {}


def animatediff_temporal_config(config: TemporalConfig, adapter: dict[str, Any]) -> TemporalConfig:
    """``config`` with AnimateDiff's conventions, checked against the adapter's config where it has one."""
    heads = adapter.get("motion_num_attention_heads", config.heads)
    layers = adapter.get("motion_transformer_layers_per_block", config.layers)
    groups = adapter.get("motion_norm_num_groups", config.norm_num_groups)
    if isinstance(layers, (list, tuple)):
        layers = max(layers) if len(set(layers)) == 1 else -1
    wanted = {"heads": heads, "layers": layers, "norm_num_groups": groups}
    wrong = [f"{k} {getattr(config, k)} (AnimateDiff: {v})" for k, v in wanted.items() if getattr(config, k) != v]
    if wrong:
        raise TalkingHeadError("These temporal modules cannot take this motion module's weights: " + ", ".join(wrong)
                               + "; use the paper preset.")
    return config.replace(positions="interleaved")


def load_motion_module(temporal: nn.ModuleDict, state: dict[str, torch.Tensor], where: str) -> list[str]:
    """Load a motion module's ``state`` into ``temporal`` (``Backbone.temporal``: slot name -> TemporalModule) in
    place; every AnimateDiff parameter of every slot it covers must be there with its shape. Returns the slots
    loaded."""
    mapped: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        name = our_name(key)
        if name is not None:
            mapped[name] = value
    slots = sorted({name.split(".", 1)[0] for name in mapped})
    if not slots:
        raise TalkingHeadError(f"{where} holds no AnimateDiff motion-module weights.")
    unknown = [s for s in slots if s not in temporal]
    if unknown:
        raise TalkingHeadError(f"{where} has motion modules at {unknown[0]}, which this UNet does not have.")
    own = {f"{slot}.{k}": v for slot in slots for k, v in temporal[slot].state_dict().items()}
    expected = [k for k in own if ".speed_" not in k]
    missing = [k for k in expected if k not in mapped]
    extra = [k for k in mapped if k not in own]
    if missing or extra:
        raise TalkingHeadError(f"{where} does not fit these temporal modules ({(missing or extra)[0]} "
                               f"{'missing' if missing else 'unexpected'}).")
    for k, v in mapped.items():
        if tuple(v.shape) != tuple(own[k].shape):
            raise TalkingHeadError(f"{where} does not fit these temporal modules ({k}: {list(v.shape)} against "
                                   f"{list(own[k].shape)}).")
    with torch.no_grad():
        for slot in slots:
            prefix = slot + "."
            temporal[slot].load_state_dict({k[len(prefix):]: v for k, v in mapped.items() if k.startswith(prefix)},
                                           strict=False)
    return slots

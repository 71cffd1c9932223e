"""AnimateDiff motion-module weights in EMO's temporal modules (``talkinghead.video.emo.animatediff``): the renamed
weights compute what diffusers' AnimateDiff module computes, every slot of the Backbone loads, and a module that does
not fit is refused with one sentence."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from talkinghead.errors import TalkingHeadError
from talkinghead.video.emo.animatediff import (
    animatediff_temporal_config,
    load_motion_module,
    our_name,
    read_motion_module,
)
from talkinghead.video.emo.network import EMOConfig, EMONetwork
from talkinghead.video.emo.temporal import TemporalConfig, TemporalModule


def _adapter(mid: bool = True, seed: int = 0) -> nn.Module:
    """A random diffusers MotionAdapter for EMO's tiny UNet (widths 16/32, one resnet per down block)."""
    from diffusers import MotionAdapter

    torch.manual_seed(seed)
    adapter = MotionAdapter(block_out_channels=(16, 32), motion_layers_per_block=1, motion_num_attention_heads=2,
                            motion_norm_num_groups=8, use_motion_mid_block=mid)
    with torch.no_grad():
        for p in adapter.parameters():                           # AnimateDiff zeroes proj_out: make every weight count
            p.normal_(0.0, 0.3)
    return adapter


def _frames(channels: int, frames: int) -> torch.Tensor:
    """``[F, C, H, W]`` whose frames are shifted copies of one map: each frame has the same per-group statistics,
    so normalising each frame (AnimateDiff) and the whole clip (diffusers' port) agree."""
    torch.manual_seed(1)
    x0 = torch.randn(1, channels, 5, 6)
    return torch.cat([torch.roll(x0, (f, 2 * f), (2, 3)) for f in range(frames)])


def test_renamed_weights_compute_what_diffusers_animatediff_module_computes() -> None:
    adapter = _adapter()
    reference = adapter.down_blocks[1].motion_modules[0].eval()
    state = {k: v for k, v in adapter.state_dict().items() if k.startswith("down_blocks.1.motion_modules.0.")}
    config = TemporalConfig(heads=2, self_attentions=2, ff_mult=4, norm_num_groups=8, positions="interleaved")
    ours = TemporalModule(32, config, speed_dim=4).eval()
    assert load_motion_module(nn.ModuleDict({"down_1_0": ours}), state, "the adapter") == ["down_1_0"]
    x = _frames(32, 6)
    with torch.no_grad():
        expected = reference(x, num_frames=6)
        got = ours(x, 6, None, 0)
        assert (expected - x).abs().mean() > 0.1                  # the module does something
        torch.testing.assert_close(got, expected, atol=2e-5, rtol=1e-4)
        concatenated = TemporalModule(32, config.replace(positions="concatenated"), speed_dim=4).eval()
        concatenated.load_state_dict(ours.state_dict())
        assert (concatenated(x, 6, None, 0) - expected).abs().max() > 1e-3   # the frame encoding's layout matters


def test_both_naming_schemes_map_onto_the_same_parameters() -> None:
    diffusers_names = {"down_blocks.1.motion_modules.0.transformer_blocks.0.attn2.to_q.weight",
                       "mid_block.motion_modules.0.transformer_blocks.0.norm3.bias",
                       "up_blocks.0.motion_modules.2.proj_in.weight"}
    original = {"down_blocks.1.motion_modules.0.temporal_transformer.transformer_blocks.0.attention_blocks.1.to_q"
                ".weight", "mid_block.motion_modules.0.temporal_transformer.transformer_blocks.0.ff_norm.bias",
                "up_blocks.0.motion_modules.2.temporal_transformer.proj_in.weight"}
    assert {our_name(k) for k in diffusers_names} == {our_name(k) for k in original} == {
        "down_1_0.blocks.0.attentions.1.to_q.weight", "mid.blocks.0.ff_norm.bias", "up_0_2.proj_in.weight"}
    assert our_name("down_blocks.0.motion_modules.0.transformer_blocks.0.pos_embed.pe") is None
    assert our_name("conv_in.weight") is None


def test_a_motion_adapter_folder_loads_into_every_slot_of_the_backbone(tmp_path: Path) -> None:
    adapter = _adapter()
    adapter.save_pretrained(tmp_path / "adapter")
    state, config = read_motion_module(tmp_path / "adapter")
    tiny = EMOConfig.preset("tiny")
    temporal = animatediff_temporal_config(tiny.temporal.replace(self_attentions=2, ff_mult=4), config)
    assert temporal.positions == "interleaved"
    net = EMONetwork(tiny.replace(temporal=temporal))
    speed_before = {k: v.clone() for k, v in net.backbone.temporal.state_dict().items() if ".speed_" in k}
    slots = load_motion_module(net.backbone.temporal, state, "the adapter")
    assert slots == sorted(net.backbone.temporal.keys()) and "mid" in slots and len(slots) == 7
    loaded = net.backbone.temporal.state_dict()
    assert torch.equal(loaded["up_1_1.blocks.0.attentions.1.to_v.weight"],
                       state["up_blocks.1.motion_modules.1.transformer_blocks.0.attn2.to_v.weight"])
    assert all(torch.equal(loaded[k], v) for k, v in speed_before.items())     # EMO's speed layers as they were
    with pytest.raises(TalkingHeadError, match="cannot take this motion module's weights: heads 4"):
        animatediff_temporal_config(temporal.replace(heads=4), config)


def test_a_module_that_does_not_fit_is_one_sentence(tmp_path: Path) -> None:
    net = EMONetwork(EMOConfig.preset("tiny"))                    # one self-attention, 2x feed-forward
    with pytest.raises(TalkingHeadError) as err:
        load_motion_module(net.backbone.temporal, _adapter(mid=False).state_dict(), "the adapter")
    assert str(err.value).startswith("the adapter does not fit these temporal modules")
    with pytest.raises(TalkingHeadError, match="no AnimateDiff motion-module weights"):
        load_motion_module(net.backbone.temporal, {"conv_in.weight": torch.zeros(1)}, "the file")
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad.ckpt").write_bytes(b"not a checkpoint")
    for path, sentence in ((tmp_path / "none", "There is no motion module"), (tmp_path / "empty", "no config.json"),
                           (tmp_path / "bad.ckpt", "not a readable motion-module file")):
        with pytest.raises(TalkingHeadError, match=sentence):
            read_motion_module(path)

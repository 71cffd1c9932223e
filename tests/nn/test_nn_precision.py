"""Inference precision (:mod:`talkinghead.nn.precision`): what ``auto`` resolves to, that bfloat16 autocast acts on
matrix products inside the block and nowhere else, and one sentence for an unknown precision."""

from __future__ import annotations

import pytest
import torch

from talkinghead.errors import TalkingHeadError
from talkinghead.nn.precision import inference_precision, native_bfloat16, resolve_precision


def test_auto_picks_bfloat16_only_where_it_is_native() -> None:
    assert resolve_precision("float32") == "float32" and resolve_precision("bfloat16") == "bfloat16"
    assert resolve_precision("auto") == ("bfloat16" if native_bfloat16("cpu") else "float32")
    assert not native_bfloat16("meta")
    with pytest.raises(TalkingHeadError, match="precision must be one of"):
        resolve_precision("float16")


def test_bfloat16_acts_inside_the_block_only() -> None:
    a, b = torch.randn(8, 16), torch.randn(16, 4)
    with inference_precision("bfloat16"):
        inside = a @ b
        summed = a + 1.0                                    # elementwise ops keep their inputs' type
    assert inside.dtype == torch.bfloat16 and summed.dtype == torch.float32
    assert (a @ b).dtype == torch.float32                   # and nothing leaks out of the block
    torch.testing.assert_close(inside.float(), a @ b, atol=0.1, rtol=0.02)
    with inference_precision("float32"):
        assert (a @ b).dtype == torch.float32

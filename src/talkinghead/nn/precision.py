"""Inference precision of the video generators' networks: float32, or bfloat16 autocast.

``bfloat16`` runs convolutions, matrix products and attention in bfloat16 (``torch.autocast``; normalisations,
softmax statistics and the sampler's own arithmetic stay in float32), which is several times faster on processors
that compute it natively: x86 CPUs with AVX512-BF16 or AMX, CUDA GPUs with bfloat16 support. Elsewhere it is
emulated and slower, so ``auto`` picks it only where it is native and float32 otherwise; the same request therefore
gives slightly different frames on different machines (on the shipped EMO and DICE-Talk models a few 8-bit levels at
most, BENCHMARKS.md), and the same frames on one machine.

    with inference_precision("auto", device):
        prediction = network(x, t).float()
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal, get_args

import torch

from talkinghead.errors import TalkingHeadError

Precision = Literal["float32", "bfloat16", "auto"]
PRECISIONS: tuple[str, ...] = get_args(Precision)


def native_bfloat16(device: torch.device | str = "cpu") -> bool:
    """Whether ``device`` computes bfloat16 matrix products natively (x86 AVX512-BF16 or AMX; CUDA with
    bfloat16 support)."""
    kind = torch.device(device).type
    if kind == "cpu":
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    if kind == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    return False


def resolve_precision(precision: str, device: torch.device | str = "cpu") -> str:
    """``float32`` or ``bfloat16``: ``precision`` itself, or for ``auto`` bfloat16 where it is native."""
    if precision not in PRECISIONS:
        raise TalkingHeadError(f"The precision must be one of {', '.join(PRECISIONS)}, got '{precision}'.")
    if precision == "auto":
        return "bfloat16" if native_bfloat16(device) else "float32"
    return precision


@contextmanager
def inference_precision(precision: str, device: torch.device | str = "cpu") -> Iterator[None]:
    """Run the block under bfloat16 autocast when :func:`resolve_precision` says so, else unchanged. Keep the block
    free of ``yield`` (autocast is per thread), and cast what leaves it back with ``.float()``."""
    if resolve_precision(precision, device) == "bfloat16":
        with torch.autocast(torch.device(device).type, dtype=torch.bfloat16):
            yield
    else:
        yield

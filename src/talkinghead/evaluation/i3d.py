"""I3D, the FVD feature network, loaded from a local directory (issue 7, item 2).

FVD (Unterthiner et al. 2018, "Towards accurate generative models of video: a new metric and
challenges", Sec. 3) is the Frechet distance (:mod:`.frechet`) between Gaussians fitted to features of
video clips from the Inflated 3D ConvNet (I3D; Carreira & Zisserman 2017, "Quo vadis, action
recognition?", Sec. 2.4) trained on Kinetics-400: an Inception-v1 (GoogLeNet) whose 2-D kernels are
inflated to 3-D. EMO (Tab. 1) and DICE-Talk (Tab. 1) report it.

:class:`InceptionI3D` is that network written from the architecture, with the parameter names of the
common PyTorch port (``InceptionI3d`` of pytorch-i3d: ``Conv3d_1a_7x7.conv3d.weight``,
``Conv3d_1a_7x7.bn.running_mean``, ``Mixed_3b.b0.conv3d.weight``, ``Mixed_3b.b1b.conv3d.weight``, ...,
``logits.conv3d.weight``/``bias``) and 400 Kinetics classes. Every convolution and max pool pads as
TF's ``SAME`` (asymmetric, the extra pixel at the end); batch norm has eps 1e-3. The head is the
original's: a ``[2, 7, 7]`` average pool (stride 1, VALID) over Mixed_5c, the 1x1x1 logits convolution,
and the mean of the logits over the remaining time steps (``averaged_logits`` of the TF model).

FVD feature, as in Unterthiner et al.'s reference code: the clip's 400 Kinetics logits from RGB uint8
clips ``[N, T, H, W, 3]`` (T = 16 frames), each frame bilinearly resized to ``image_size`` (224) and
scaled to ``[-1, 1]``.

Deviations, said here so numbers are read correctly:

- the reference code runs the TF-Hub ``i3d-kinetics-400`` module; this network takes the PyTorch port's
  weights, and the resize is PyTorch's bilinear (``align_corners=False``, no antialiasing), not TF1's
  ``resize_bilinear``, so values differ slightly from published FVDs;
- the average pool's window is cut to the feature map when it is smaller than ``[2, 7, 7]`` (clips
  shorter than 9 frames, or a smaller ``image_size`` in test configs); at 16 x 224 x 224 it is the
  original.

No weights ship with talkinghead: :func:`load_i3d` reads ``DIR/model.safetensors`` with strict name and
shape checks (pickles refused), like :func:`~talkinghead.evaluation.inception.load_inception`.
``width`` multiplies every channel count so tests build a tiny random network through the same code.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from talkinghead.checkpoint import PretrainedMixin
from talkinghead.config import Config
from talkinghead.errors import TalkingHeadError
from talkinghead.evaluation.inception import load_feature_network, run_batched, scaled

FVD_CLIP_LENGTH = 16

Triple = tuple[int, int, int]


@dataclass(frozen=True)
class I3DConfig(Config):
    """``width``: channel multiplier (1 = I3D); ``num_classes``: 400 (Kinetics-400); ``image_size``:
    the square frame side after resizing (224)."""

    width: float = 1.0
    num_classes: int = 400
    image_size: int = 224

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {"width": 1 / 16, "num_classes": 8, "image_size": 64},
        "paper": {},
    }


def same_padding(size: Sequence[int], kernel: Triple, stride: Triple) -> tuple[int, ...]:
    """TF ``SAME`` padding of a ``[T, H, W]`` input as ``F.pad``'s (w0, w1, h0, h1, t0, t1): output
    ``ceil(size / stride)``, the odd pixel at the end."""
    pads: list[int] = []
    for s, k, st in zip(reversed(list(size)), reversed(kernel), reversed(stride), strict=True):
        total = max((math.ceil(s / st) - 1) * st + k - s, 0)
        pads += [total // 2, total - total // 2]
    return tuple(pads)


class Unit3D(nn.Module):
    """Conv3d (SAME) + BatchNorm3d (eps 1e-3) + ReLU; keys ``conv3d.*``, ``bn.*`` (the logits unit:
    bias, no norm, no activation)."""

    def __init__(self, cin: int, cout: int, kernel: Triple = (1, 1, 1), stride: Triple = (1, 1, 1),
                 head: bool = False) -> None:
        super().__init__()
        self.kernel, self.stride, self.head = kernel, stride, head
        self.conv3d = nn.Conv3d(cin, cout, kernel, stride=stride, bias=head)
        self.bn = None if head else nn.BatchNorm3d(cout, eps=1e-3, momentum=0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: [B, C, T, H, W]`` -> ``[B, cout, ceil(T/st), ceil(H/sh), ceil(W/sw)]``."""
        x = self.conv3d(F.pad(x, same_padding(x.shape[2:], self.kernel, self.stride)))
        return x if self.bn is None else F.relu(self.bn(x))


def max_pool_same(x: torch.Tensor, kernel: Triple, stride: Triple) -> torch.Tensor:
    """3-D max pool with TF ``SAME`` padding (padded cells never win: they are -inf)."""
    return F.max_pool3d(F.pad(x, same_padding(x.shape[2:], kernel, stride), value=float("-inf")), kernel, stride)


class InceptionModule3D(nn.Module):
    """Mixed_*: 1x1 | 1x1-3x3x3 | 1x1-3x3x3 | maxpool 3x3x3-1x1 (``out`` = the six widths of the TF model)."""

    def __init__(self, cin: int, out: tuple[int, int, int, int, int, int], w: float) -> None:
        super().__init__()
        c = [scaled(n, w) for n in out]
        k3 = (3, 3, 3)
        self.b0 = Unit3D(cin, c[0])
        self.b1a = Unit3D(cin, c[1])
        self.b1b = Unit3D(c[1], c[2], k3)
        self.b2a = Unit3D(cin, c[3])
        self.b2b = Unit3D(c[3], c[4], k3)
        self.b3b = Unit3D(cin, c[5])
        self.out_channels = c[0] + c[2] + c[4] + c[5]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = max_pool_same(x, (3, 3, 3), (1, 1, 1))
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(pooled)], 1)


# (name, output widths) of the Inception modules, with the max pools (name, kernel, stride) between them
_MIXED: tuple[tuple[str, tuple[int, int, int, int, int, int]] | tuple[str, Triple, Triple], ...] = (
    ("MaxPool3d_3a_3x3", (1, 3, 3), (1, 2, 2)),
    ("Mixed_3b", (64, 96, 128, 16, 32, 32)),
    ("Mixed_3c", (128, 128, 192, 32, 96, 64)),
    ("MaxPool3d_4a_3x3", (3, 3, 3), (2, 2, 2)),
    ("Mixed_4b", (192, 96, 208, 16, 48, 64)),
    ("Mixed_4c", (160, 112, 224, 24, 64, 64)),
    ("Mixed_4d", (128, 128, 256, 24, 64, 64)),
    ("Mixed_4e", (112, 144, 288, 32, 64, 64)),
    ("Mixed_4f", (256, 160, 320, 32, 128, 128)),
    ("MaxPool3d_5a_2x2", (2, 2, 2), (2, 2, 2)),
    ("Mixed_5b", (256, 160, 320, 32, 128, 128)),
    ("Mixed_5c", (384, 192, 384, 48, 128, 128)),
)


class InceptionI3D(PretrainedMixin, nn.Module):
    """I3D (Inception-v1 inflated to 3-D), the network of FVD; parameter names of pytorch-i3d."""

    component: ClassVar[str] = "evaluation.i3d"
    config_class: ClassVar[type[Config]] = I3DConfig
    label: ClassVar[str] = "I3D"
    config: I3DConfig

    def __init__(self, config: I3DConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or I3DConfig()
        w = config.width
        self.Conv3d_1a_7x7 = Unit3D(3, scaled(64, w), (7, 7, 7), (2, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(scaled(64, w), scaled(64, w))
        self.Conv3d_2c_3x3 = Unit3D(scaled(64, w), scaled(192, w), (3, 3, 3))
        self.stages: list[tuple[str, Any]] = []
        channels = scaled(192, w)
        for name, *spec in _MIXED:
            if name.startswith("MaxPool"):
                self.stages.append((name, tuple(spec)))
            else:
                module = InceptionModule3D(channels, spec[0], w)  # type: ignore[arg-type]
                self.add_module(name, module)
                self.stages.append((name, module))
                channels = module.out_channels
        self.logits = Unit3D(channels, config.num_classes, head=True)
        self.feature_dim = config.num_classes
        self.eval()

    def preprocess(self, clips: torch.Tensor) -> torch.Tensor:
        """``clips: [B, T, H, W, 3]`` uint8 -> ``[B, 3, T, S, S]`` float in [-1, 1] (S = image_size)."""
        b, t = clips.shape[:2]
        x = clips.to(torch.float32).flatten(0, 1).permute(0, 3, 1, 2) / 255.0   # [B*T, 3, H, W]
        size = self.config.image_size
        if x.shape[-2:] != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        x = x.reshape(b, t, 3, size, size).permute(0, 2, 1, 3, 4)             # [B, 3, T, S, S]
        return 2.0 * x - 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: [B, 3, T, S, S]`` in [-1, 1] -> logits averaged over time ``[B, num_classes]``."""
        x = self.Conv3d_1a_7x7(x)
        x = max_pool_same(x, (1, 3, 3), (1, 2, 2))                               # MaxPool3d_2a_3x3
        x = self.Conv3d_2c_3x3(self.Conv3d_2b_1x1(x))
        for _, stage in self.stages:
            x = max_pool_same(x, *stage) if isinstance(stage, tuple) else stage(x)
        window = tuple(min(k, s) for k, s in zip((2, 7, 7), x.shape[2:], strict=True))
        x = self.logits(F.avg_pool3d(x, window, stride=1))                      # [B, classes, T', H', W']
        return x.mean(dim=(2, 3, 4))

    @torch.no_grad()
    def features(self, clips: Any, batch_size: int = 8) -> np.ndarray:
        """Clips ``[N, T, H, W, 3]`` uint8 (or an iterable of such arrays) -> FVD features
        ``[N, num_classes]`` float32, ``batch_size`` clips at a time."""
        return run_batched(self, clips, 4, batch_size, "I3D features (FVD)")


def split_clips(videos: Any, length: int = FVD_CLIP_LENGTH) -> np.ndarray:
    """Non-overlapping ``length``-frame clips ``[N, length, H, W, 3]`` of videos ``[T, H, W, 3]`` (a list,
    or one video); the frames after the last whole clip of each video are dropped."""
    if isinstance(videos, np.ndarray) and videos.ndim == 4:
        videos = [videos]
    clips = []
    for video in videos:
        v = np.asarray(video)
        if v.ndim != 4:
            raise TalkingHeadError(f"A video should be [T, H, W, 3] frames, got shape {v.shape}.")
        whole = len(v) // length * length
        if whole:
            clips.append(v[:whole].reshape(-1, length, *v.shape[1:]))
    if not clips:
        raise TalkingHeadError(f"No video is {length} frames long: FVD needs {length}-frame clips.")
    shapes = {c.shape[2:] for c in clips}
    if len(shapes) != 1:
        raise TalkingHeadError(f"The videos have different frame sizes: {sorted(shapes)}.")
    return np.concatenate(clips)


def load_i3d(directory: str | Path, device: str | torch.device = "cpu") -> InceptionI3D:
    """I3D from ``DIR/model.safetensors`` (+ optional ``config.json``; absent: the paper size)."""
    return load_feature_network(directory, InceptionI3D, device)

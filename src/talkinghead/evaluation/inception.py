"""FID's Inception-v3 feature network, loaded from a local directory (issue 7, item 2).

FID (Heusel et al. 2017, "GANs trained by a two time-scale update rule converge to a local Nash
equilibrium", Sec. "Experiments"/App. A.1) is the Frechet distance (Eq. 6, :mod:`.frechet`) between
Gaussians fitted to the 2048-d "pool_3" activations of the Inception-v3 graph
``inception-2015-12-05`` (Szegedy et al. 2016, "Rethinking the Inception architecture"). DreamTalk,
FD2Talk (Tab. 1), EMO (Tab. 1) and DICE-Talk (Tab. 1) report it over video frames.

:class:`FIDInceptionV3` is that network written from the architecture, with the parameter names of
torchvision's ``Inception3`` as used by the PyTorch port of the FID weights (pytorch-fid's
``pt_inception-2015-12-05``): ``Conv2d_1a_3x3.conv.weight``, ``Conv2d_1a_3x3.bn.running_mean``,
``Mixed_5b.branch1x1.conv.weight``, ..., ``fc.weight`` (1008 classes; no auxiliary classifier). The
TF graph differs from the torchvision layout in four blocks, which are reproduced here:

- the pool branch of Mixed_5b-d ("A"), Mixed_6b-e ("C") and Mixed_7b ("E", first) averages over the
  3x3 window *without* counting the zero padding (TF's ``avg_pool`` with SAME padding);
- the pool branch of Mixed_7c (second "E") is a 3x3 *max* pool.

Preprocessing as pytorch-fid: RGB uint8 frames ``[N, H, W, 3]`` -> ``[0, 1]`` -> bilinear resize to
``image_size`` (299; ``align_corners=False``, no antialiasing) -> ``2 x - 1`` in ``[-1, 1]``. The feature
is the global average of Mixed_7c's output (``[N, 2048]`` at full width).

No weights ship with talkinghead. :func:`load_inception` reads ``DIR/model.safetensors`` (converted
once by the user from the published pickle, see docs/evaluation.md) with strict name and shape checks;
pickle files are refused. The config's ``width`` multiplies every channel count so tests can build a
tiny random network through the same code (``InceptionConfig.preset("tiny")``); ``width = 1`` is the
published network.

This module also holds the loader and batching shared with :mod:`.i3d`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from talkinghead.checkpoint import (
    CONFIG_NAME,
    PretrainedMixin,
    read_checkpoint_info,
    read_safetensors,
    safetensors_file,
)
from talkinghead.config import Config
from talkinghead.errors import TalkingHeadError
from talkinghead.log import progress


@dataclass(frozen=True)
class InceptionConfig(Config):
    """``width``: channel multiplier (1 = the FID network); ``num_classes``: 1008 (the TF graph's
    classifier); ``image_size``: the square input side after resizing (299)."""

    width: float = 1.0
    num_classes: int = 1008
    image_size: int = 299

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {"width": 1 / 16, "num_classes": 10, "image_size": 96},
        "paper": {},
    }


def scaled(channels: int, width: float) -> int:
    """``channels * width`` rounded, at least 1."""
    return max(1, int(round(channels * width)))


class BasicConv(nn.Module):
    """Conv (no bias) + BatchNorm (eps 1e-3) + ReLU; keys ``conv.weight``, ``bn.*``."""

    def __init__(self, cin: int, cout: int, kernel: int | tuple[int, int], stride: int = 1,
                 padding: int | tuple[int, int] = 0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=1e-3)
        self.out_channels = cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _pool_branch_input(x: torch.Tensor, kind: Literal["avg", "max"]) -> torch.Tensor:
    """3x3, stride 1, SAME: TF averages over the valid pixels only; Mixed_7c uses a max pool."""
    if kind == "max":
        return F.max_pool2d(x, 3, stride=1, padding=1)
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


class BlockA(nn.Module):
    """Mixed_5b/5c/5d: 1x1 | 1x1-5x5 | 1x1-3x3-3x3 | avgpool-1x1."""

    def __init__(self, cin: int, pool_features: int, w: float) -> None:
        super().__init__()
        self.branch1x1 = BasicConv(cin, scaled(64, w), 1)
        self.branch5x5_1 = BasicConv(cin, scaled(48, w), 1)
        self.branch5x5_2 = BasicConv(scaled(48, w), scaled(64, w), 5, padding=2)
        self.branch3x3dbl_1 = BasicConv(cin, scaled(64, w), 1)
        self.branch3x3dbl_2 = BasicConv(scaled(64, w), scaled(96, w), 3, padding=1)
        self.branch3x3dbl_3 = BasicConv(scaled(96, w), scaled(96, w), 3, padding=1)
        self.branch_pool = BasicConv(cin, scaled(pool_features, w), 1)
        self.out_channels = 2 * scaled(64, w) + scaled(96, w) + scaled(pool_features, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.branch1x1(x)
        b = self.branch5x5_2(self.branch5x5_1(x))
        c = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        d = self.branch_pool(_pool_branch_input(x, "avg"))
        return torch.cat([a, b, c, d], 1)


class BlockB(nn.Module):
    """Mixed_6a (grid reduction 35 -> 17): 3x3/2 | 1x1-3x3-3x3/2 | maxpool/2."""

    def __init__(self, cin: int, w: float) -> None:
        super().__init__()
        self.branch3x3 = BasicConv(cin, scaled(384, w), 3, stride=2)
        self.branch3x3dbl_1 = BasicConv(cin, scaled(64, w), 1)
        self.branch3x3dbl_2 = BasicConv(scaled(64, w), scaled(96, w), 3, padding=1)
        self.branch3x3dbl_3 = BasicConv(scaled(96, w), scaled(96, w), 3, stride=2)
        self.out_channels = scaled(384, w) + scaled(96, w) + cin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.branch3x3(x)
        b = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([a, b, F.max_pool2d(x, 3, stride=2)], 1)


class BlockC(nn.Module):
    """Mixed_6b-e: 1x1 | 1x1-1x7-7x1 | 1x1-7x1-1x7-7x1-1x7 | avgpool-1x1 (factorised 7x7)."""

    def __init__(self, cin: int, channels_7x7: int, w: float) -> None:
        super().__init__()
        c7, c192 = scaled(channels_7x7, w), scaled(192, w)
        row, col = ((1, 7), (0, 3)), ((7, 1), (3, 0))
        self.branch1x1 = BasicConv(cin, c192, 1)
        self.branch7x7_1 = BasicConv(cin, c7, 1)
        self.branch7x7_2 = BasicConv(c7, c7, row[0], padding=row[1])
        self.branch7x7_3 = BasicConv(c7, c192, col[0], padding=col[1])
        self.branch7x7dbl_1 = BasicConv(cin, c7, 1)
        self.branch7x7dbl_2 = BasicConv(c7, c7, col[0], padding=col[1])
        self.branch7x7dbl_3 = BasicConv(c7, c7, row[0], padding=row[1])
        self.branch7x7dbl_4 = BasicConv(c7, c7, col[0], padding=col[1])
        self.branch7x7dbl_5 = BasicConv(c7, c192, row[0], padding=row[1])
        self.branch_pool = BasicConv(cin, c192, 1)
        self.out_channels = 4 * c192

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.branch1x1(x)
        b = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        c = self.branch7x7dbl_1(x)
        for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            c = layer(c)
        d = self.branch_pool(_pool_branch_input(x, "avg"))
        return torch.cat([a, b, c, d], 1)


class BlockD(nn.Module):
    """Mixed_7a (grid reduction 17 -> 8): 1x1-3x3/2 | 1x1-1x7-7x1-3x3/2 | maxpool/2."""

    def __init__(self, cin: int, w: float) -> None:
        super().__init__()
        c192 = scaled(192, w)
        self.branch3x3_1 = BasicConv(cin, c192, 1)
        self.branch3x3_2 = BasicConv(c192, scaled(320, w), 3, stride=2)
        self.branch7x7x3_1 = BasicConv(cin, c192, 1)
        self.branch7x7x3_2 = BasicConv(c192, c192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv(c192, c192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv(c192, c192, 3, stride=2)
        self.out_channels = scaled(320, w) + c192 + cin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.branch3x3_2(self.branch3x3_1(x))
        b = self.branch7x7x3_1(x)
        for layer in (self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4):
            b = layer(b)
        return torch.cat([a, b, F.max_pool2d(x, 3, stride=2)], 1)


class BlockE(nn.Module):
    """Mixed_7b/7c: 1x1 | 1x1-(1x3, 3x1) | 1x1-3x3-(1x3, 3x1) | pool-1x1 (avg in 7b, max in 7c)."""

    def __init__(self, cin: int, w: float, pool: Literal["avg", "max"]) -> None:
        super().__init__()
        c384 = scaled(384, w)
        self.pool = pool
        self.branch1x1 = BasicConv(cin, scaled(320, w), 1)
        self.branch3x3_1 = BasicConv(cin, c384, 1)
        self.branch3x3_2a = BasicConv(c384, c384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv(c384, c384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv(cin, scaled(448, w), 1)
        self.branch3x3dbl_2 = BasicConv(scaled(448, w), c384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv(c384, c384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv(c384, c384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv(cin, scaled(192, w), 1)
        self.out_channels = scaled(320, w) + 4 * c384 + scaled(192, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.branch1x1(x)
        b = self.branch3x3_1(x)
        b = torch.cat([self.branch3x3_2a(b), self.branch3x3_2b(b)], 1)
        c = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        c = torch.cat([self.branch3x3dbl_3a(c), self.branch3x3dbl_3b(c)], 1)
        d = self.branch_pool(_pool_branch_input(x, self.pool))
        return torch.cat([a, b, c, d], 1)


class FIDInceptionV3(PretrainedMixin, nn.Module):
    """The FID Inception-v3 (TF ``inception-2015-12-05`` graph, torchvision parameter names)."""

    component: ClassVar[str] = "evaluation.inception_fid"
    config_class: ClassVar[type[Config]] = InceptionConfig
    label: ClassVar[str] = "FID Inception-v3"
    config: InceptionConfig

    def __init__(self, config: InceptionConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or InceptionConfig()
        w = config.width
        self.Conv2d_1a_3x3 = BasicConv(3, scaled(32, w), 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv(scaled(32, w), scaled(32, w), 3)
        self.Conv2d_2b_3x3 = BasicConv(scaled(32, w), scaled(64, w), 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv(scaled(64, w), scaled(80, w), 1)
        self.Conv2d_4a_3x3 = BasicConv(scaled(80, w), scaled(192, w), 3)
        self.Mixed_5b = BlockA(scaled(192, w), 32, w)
        self.Mixed_5c = BlockA(self.Mixed_5b.out_channels, 64, w)
        self.Mixed_5d = BlockA(self.Mixed_5c.out_channels, 64, w)
        self.Mixed_6a = BlockB(self.Mixed_5d.out_channels, w)
        self.Mixed_6b = BlockC(self.Mixed_6a.out_channels, 128, w)
        self.Mixed_6c = BlockC(self.Mixed_6b.out_channels, 160, w)
        self.Mixed_6d = BlockC(self.Mixed_6c.out_channels, 160, w)
        self.Mixed_6e = BlockC(self.Mixed_6d.out_channels, 192, w)
        self.Mixed_7a = BlockD(self.Mixed_6e.out_channels, w)
        self.Mixed_7b = BlockE(self.Mixed_7a.out_channels, w, "avg")
        self.Mixed_7c = BlockE(self.Mixed_7b.out_channels, w, "max")
        self.feature_dim = self.Mixed_7c.out_channels
        self.fc = nn.Linear(self.feature_dim, config.num_classes)
        self.eval()

    def preprocess(self, frames: torch.Tensor) -> torch.Tensor:
        """``frames: [B, H, W, 3]`` uint8 -> ``[B, 3, S, S]`` float in [-1, 1] (S = image_size)."""
        x = frames.to(torch.float32).permute(0, 3, 1, 2) / 255.0
        size = self.config.image_size
        if x.shape[-2:] != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        return 2.0 * x - 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: [B, 3, S, S]`` in [-1, 1] -> pool_3 features ``[B, feature_dim]`` (2048 at full width)."""
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, 3, stride=2)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b, self.Mixed_6c,
                      self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b, self.Mixed_7c):
            x = block(x)
        return x.mean(dim=(2, 3))  # global average pool: [B, C, 8, 8] -> [B, C]

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """``x: [B, 3, S, S]`` -> class logits ``[B, num_classes]`` (not used by FID)."""
        return self.fc(self.forward(x))

    @torch.no_grad()
    def features(self, frames: Any, batch_size: int = 32) -> np.ndarray:
        """Frames ``[N, H, W, 3]`` uint8 (or an iterable of such arrays, e.g. one per video) ->
        pool_3 features ``[N, feature_dim]`` float32, computed ``batch_size`` frames at a time."""
        return run_batched(self, frames, 3, batch_size, "Inception features (FID)")


# --------------------------------------------------------------------------- shared with i3d.py

def _chunks(data: Any, item_ndim: int) -> tuple[list[Any] | Iterable[Any], list[int] | None]:
    """``data`` as a sequence/iterable of ``[n, *item]`` arrays, and their lengths when known."""
    if isinstance(data, np.ndarray | torch.Tensor):
        data = [data]
    if isinstance(data, list | tuple):
        return list(data), [int(np.shape(d)[0]) if np.ndim(d) == item_ndim + 1 else 0 for d in data]
    return data, None


def _batches(data: Any, item_ndim: int, batch_size: int, name: str) -> Iterator[np.ndarray]:
    """Split ``data`` (array ``[N, *item]`` or iterable of them) into uint8 arrays of at most ``batch_size``."""
    chunks, _ = _chunks(data, item_ndim)
    for chunk in chunks:
        array = np.asarray(chunk)
        if array.ndim != item_ndim + 1 or array.shape[-1] != 3:
            raise TalkingHeadError(f"{name} expects RGB arrays of {item_ndim + 1} dimensions ending in 3 "
                                   f"channels, got shape {array.shape}.")
        if array.dtype != np.uint8:
            raise TalkingHeadError(f"{name} expects uint8 RGB values (0-255), got {array.dtype}; convert with "
                                   "(x * 255).round().clip(0, 255).astype(np.uint8).")
        for start in range(0, len(array), batch_size):
            yield array[start:start + batch_size]


def run_batched(net: nn.Module, data: Any, item_ndim: int, batch_size: int, description: str) -> np.ndarray:
    """``net.forward(net.preprocess(batch))`` over ``data`` in batches, under ``no_grad``, with progress;
    the features ``[N, D]`` float32 (memory: one batch of inputs at a time plus the features)."""
    if batch_size < 1:
        raise TalkingHeadError("The batch size must be at least 1.")
    _, lengths = _chunks(data, item_ndim)
    device = next(net.parameters()).device
    out = []
    steps = None if lengths is None else sum(-(-n // batch_size) for n in lengths)
    with torch.no_grad():
        for batch in progress(_batches(data, item_ndim, batch_size, description), description, total=steps):
            x = net.preprocess(torch.from_numpy(np.ascontiguousarray(batch)).to(device))  # type: ignore[operator]
            out.append(net(x).float().cpu().numpy())
    if not out:
        raise TalkingHeadError(f"{description}: there are no frames to encode.")
    return np.concatenate(out, axis=0)


N = TypeVar("N", bound=nn.Module)

CONVERT_HINT = ("convert it once in your own environment with python -c \"import torch; from safetensors.torch "
                "import save_file; save_file(torch.load('WEIGHTS.pth', map_location='cpu'), "
                "'DIR/model.safetensors')\"")


def load_feature_network(directory: str | Path, cls: type[N], device: str | torch.device = "cpu") -> N:
    """Build ``cls`` from ``DIR/config.json`` (a talkinghead checkpoint config or a plain dict of config
    fields; absent: the ``paper`` preset) and load ``DIR/model.safetensors`` with strict name and shape
    checks. Pickle files are refused. ``num_batches_tracked`` buffers missing from the file (older
    PyTorch exports) are filled in, as they do not affect inference, and one uniform ``module.`` prefix
    (DataParallel) is dropped."""
    label = getattr(cls, "label", cls.__name__)
    path = Path(directory)
    weights = safetensors_file(path, label, CONVERT_HINT)
    config_class: type[Config] = cls.config_class  # type: ignore[attr-defined]
    config = _read_config(path, config_class, cls.component) or config_class.preset("paper")  # type: ignore[attr-defined]
    state = read_safetensors(weights)
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    model = cls(config)  # type: ignore[call-arg]
    expected = model.state_dict()
    for key, value in expected.items():
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = value
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
             if k in state and tuple(state[k].shape) != tuple(v.shape)]
    if missing or unexpected or wrong:
        parts = []
        for what, keys in (("missing", missing), ("unexpected", unexpected), ("of another shape", wrong)):
            if keys:
                parts.append(f"{len(keys)} {what} ({', '.join(keys[:3])}{', ...' if len(keys) > 3 else ''})")
        raise TalkingHeadError(f"{weights} does not hold {label} weights for width {config.width}: "  # type: ignore[attr-defined]
                               f"tensors {'; '.join(parts)}.")
    model.load_state_dict(state, strict=True)
    return model.to(device).eval()


def _is_checkpoint(path: Path) -> bool:
    try:
        meta = json.loads((path / CONFIG_NAME).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and meta.get("format") == "talkinghead-checkpoint"


def _read_config(path: Path, config_class: type[Config], component: str) -> Config | None:
    """The config in ``path/config.json`` (None when there is none)."""
    cfg_path = path / CONFIG_NAME
    if not cfg_path.exists():
        return None
    if _is_checkpoint(path):  # written by save_pretrained: format, version and component are checked
        return config_class.from_dict(read_checkpoint_info(path, component).config, partial=True)
    try:
        raw = json.loads(cfg_path.read_text())
    except (OSError, ValueError) as err:
        raise TalkingHeadError(f"{cfg_path} is not valid JSON.") from err
    if not isinstance(raw, dict):
        raise TalkingHeadError(f"{cfg_path} should hold a mapping of {config_class.__name__} fields.")
    return config_class.from_dict(raw, partial=True)


def load_inception(directory: str | Path, device: str | torch.device = "cpu") -> FIDInceptionV3:
    """The FID Inception-v3 from ``DIR/model.safetensors`` (+ optional ``config.json``); see
    :func:`load_feature_network`."""
    return load_feature_network(directory, FIDInceptionV3, device)

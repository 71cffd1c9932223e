"""The perceptual feature extractor ``phi`` of FD2Talk's autoencoder fine-tuning (Sec. 3.4.2, Eq. 14).

FD2Talk takes ``phi`` from LPIPS [56] (Zhang et al. 2018, "The unreasonable effectiveness of deep features as a
perceptual metric"): features of an ImageNet-trained network at several depths, each unit-normalised over
channels, compared by their squared difference summed over channels, averaged over space and depths (LPIPS with its
per-channel learned weights left at one; Eq. 14 writes an L1 norm of the feature difference; this
keeps the distance of the metric it cites).

Two extractors behind one interface (:func:`perceptual_distance`):

- :class:`VGG16Features`: VGG16's convolutional part (Simonyan and Zisserman 2015), LPIPS' backbone, read from a
  local folder (``model.safetensors`` with torchvision's parameter names ``features.0.weight`` ... ``features.28.bias``;
  other keys such as the classifier are ignored), tapped after ``relu1_2``, ``relu2_2``, ``relu3_3``, ``relu4_3`` and
  ``relu5_3``; inputs normalised with ImageNet's mean and standard deviation. No VGG weights ship with talkinghead.
- :class:`FacePerceptualNet`: **a perceptual network trained here**, the shipped default (named as such, never
  called VGG or LPIPS). No ImageNet network can be downloaded, so the stand-in learns face features from the
  talking-face video dataset: a five-stage convolutional network trained to regress each frame's face-model
  expression and head pose (standardised) and to classify its identity (``fd2talk.perceptual``). Its features
  therefore respond to what a talking-head frame must get right (mouth shape, eyes, pose, who it is), which is
  what LPIPS' ImageNet features are used for in the paper. Tapped after stages 1-4.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from talkinghead.checkpoint import PretrainedMixin, read_safetensors, safetensors_file
from talkinghead.config import Config
from talkinghead.errors import TalkingHeadError
from talkinghead.nn.normalize import Normalizer


@dataclass(frozen=True)
class PerceptualConfig(Config):
    """``channels`` per stage (each halves the resolution); ``targets``: regressed values per frame (expression +
    pose); ``identities``: identity classes of the training data."""

    channels: tuple[int, ...] = (32, 64, 128, 192, 256)
    targets: int = 46
    identities: int = 16

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {"channels": (8, 8, 16, 16, 16)},
        "cpu": {"channels": (16, 32, 64, 96, 128)},
        "paper": {"channels": (64, 128, 256, 384, 512)},
    }


def _stage(cin: int, cout: int) -> nn.Sequential:
    """A stride-2 stage: ``[B, cin, H, W] -> [B, cout, H/2, W/2]``."""
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.GroupNorm(min(8, cout), cout), nn.SiLU(),
                         nn.Conv2d(cout, cout, 3, padding=1), nn.GroupNorm(min(8, cout), cout), nn.SiLU())


class FacePerceptualNet(PretrainedMixin, nn.Module):
    """The perceptual network trained here (see the module docstring). ``features(images)`` gives the tapped maps;
    ``forward(images)`` the training heads ``(targets [B, targets], identity logits [B, identities])``."""

    component: ClassVar[str] = "fd2talk.perceptual"
    config_class: ClassVar[type[Config]] = PerceptualConfig
    taps: ClassVar[tuple[int, ...]] = (0, 1, 2, 3)

    def __init__(self, config: PerceptualConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or PerceptualConfig()
        chans = (3, *config.channels)
        self.stages = nn.ModuleList(_stage(a, b) for a, b in zip(chans[:-1], chans[1:], strict=True))
        self.target_norm = Normalizer(config.targets)
        self.regress = nn.Linear(config.channels[-1], config.targets)
        self.classify = nn.Linear(config.channels[-1], config.identities)

    def features(self, images: torch.Tensor) -> list[torch.Tensor]:
        """``images [B, 3, H, W]`` in ``[-1, 1]`` -> the maps after the tapped stages."""
        out, h = [], images
        for i, stage in enumerate(self.stages):
            h = stage(h)
            if i in self.taps:
                out.append(h)
        return out

    def pooled(self, images: torch.Tensor) -> torch.Tensor:
        """``images [B, 3, H, W]`` -> the last stage's globally averaged features ``[B, channels[-1]]``."""
        h = images
        for stage in self.stages:
            h = stage(h)
        return h.mean(dim=(2, 3))

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``images [B, 3, H, W]`` -> normalised targets ``[B, targets]``, identity logits ``[B, identities]``."""
        pooled = self.pooled(images)
        return self.regress(pooled), self.classify(pooled)


#: VGG16's ``features`` layout (torchvision): channels of each 3x3 conv, ``M`` a 2x2 max pool
VGG16_LAYOUT: tuple[int | str, ...] = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M",
                                       512, 512, 512, "M")
#: ``features`` indices after which LPIPS reads (relu1_2, relu2_2, relu3_3, relu4_3, relu5_3)
VGG16_TAPS = (3, 8, 15, 22, 29)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class VGG16Features(nn.Module):
    """VGG16's convolutional part with torchvision's names (``features.<i>``); weights from :func:`load_vgg16`."""

    mean: torch.Tensor
    std: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for item in VGG16_LAYOUT:
            if item == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(cin, int(item), 3, padding=1), nn.ReLU(inplace=False)]
                cin = int(item)
        self.features = nn.Sequential(*layers)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        """``images [B, 3, H, W]`` in ``[-1, 1]`` -> the five LPIPS maps."""
        h = ((images + 1) / 2 - self.mean) / self.std
        out = []
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in VGG16_TAPS:
                out.append(h)
        return out



def load_vgg16(directory: str | Path) -> VGG16Features:
    """VGG16 features from ``directory/model.safetensors`` (torchvision names; strict on the ``features.*`` keys)."""
    path = Path(directory)
    weights = read_safetensors(safetensors_file(path))
    net = VGG16Features()
    wanted = {k: v for k, v in net.state_dict().items() if k.startswith("features.")}
    missing = sorted(set(wanted) - set(weights))
    if missing:
        raise TalkingHeadError(f"{path} is not VGG16 weights with torchvision's names (missing {missing[0]}).")
    for key, value in wanted.items():
        if tuple(weights[key].shape) != tuple(value.shape):
            raise TalkingHeadError(f"{path}: {key} has shape {tuple(weights[key].shape)}, VGG16 needs "
                                   f"{tuple(value.shape)}.")
    net.load_state_dict({k: weights[k] for k in wanted}, strict=False)
    return net.eval().requires_grad_(False)


def feature_maps(net: nn.Module, images: torch.Tensor) -> list[torch.Tensor]:
    """The perceptual maps of either extractor."""
    if isinstance(net, FacePerceptualNet):
        return net.features(images)
    return net(images)  # type: ignore[no-any-return]


def perceptual_distance(net: nn.Module, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """LPIPS-style distance per image ``[B]`` between ``a, b [B, 3, H, W]`` in ``[-1, 1]`` (Eq. 14): each tapped map
    unit-normalised over channels, the squared difference summed over channels (LPIPS with its per-channel
    weights at one), averaged over space and over taps (so it lies in ``[0, 4]``)."""
    maps_a, maps_b = feature_maps(net, a), feature_maps(net, b)
    total = a.new_zeros(a.shape[0])
    for fa, fb in zip(maps_a, maps_b, strict=True):
        na = fa / (fa.pow(2).sum(1, keepdim=True).sqrt() + 1e-8)
        nb = fb / (fb.pow(2).sum(1, keepdim=True).sqrt() + 1e-8)
        total = total + (na - nb).pow(2).sum(1).mean(dim=(1, 2))
    return total / len(maps_a)


def load_perceptual(directory: str | Path) -> nn.Module:
    """The perceptual network in ``directory``: a talkinghead checkpoint of :class:`FacePerceptualNet`, or VGG16
    weights (a folder with ``model.safetensors`` and no talkinghead config). Frozen, in eval mode."""
    path = Path(directory)
    config = path / "config.json"
    if config.is_file() and json.loads(config.read_text()).get("component") == FacePerceptualNet.component:
        return FacePerceptualNet.from_pretrained(path).requires_grad_(False)
    if not path.is_dir():
        raise TalkingHeadError(f"The perceptual network folder {path} does not exist.")
    return load_vgg16(path)


def images_to_tensor(frames: Any) -> torch.Tensor:
    """``[B, H, W, 3]`` uint8 (numpy or torch) -> ``[B, 3, H, W]`` float in ``[-1, 1]``."""
    x = torch.as_tensor(frames)
    return x.permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def tensor_to_images(x: torch.Tensor) -> torch.Tensor:
    """``[B, 3, H, W]`` in ``[-1, 1]`` -> ``[B, H, W, 3]`` uint8."""
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1)


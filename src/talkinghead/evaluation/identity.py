"""F-SIM: how much generated frames look like the reference portrait's person (EMO Table 1, DICE-Talk Table 4).

EMO (Tian et al. 2024, Sec. 4.2) and DICE-Talk (Tan et al. 2025, Sec. 4.2) report F-SIM, the cosine similarity of
face-recognition embeddings of the reference image and of the generated frames, averaged over the frames. EMO reads it
as a population-reference index (the closer to the ground truth's value, the better: a method that leaves the frame
as the reference would score perfectly), DICE-Talk's Table 4 as higher is better. The
face-recognition network in this module is an IResNet (Duta et al. 2020's improved residual network as ArcFace uses
it; Deng et al. 2019, "ArcFace: additive angular margin loss for deep face recognition", Sec. 3) with the parameter
names of insightface's ``arcface_torch`` ``iresnet``:

- a stem ``conv1`` (3x3, stride 1) + ``bn1`` + ``prelu``;
- four stages ``layer1..layer4`` of ``IBasicBlock`` (``bn1 -> conv1 -> bn2 -> prelu -> conv2 (stride) -> bn3``, plus
  the shortcut, ``downsample.0`` 1x1 conv + ``downsample.1`` BN on the first block of a stage), each stage halving
  the side (112 -> 7 at the published size);
- ``bn2`` (2d) -> flatten -> ``fc`` -> ``features`` (BatchNorm1d, its scale fixed at 1): the embedding.

Two ways to get weights, named in every table that uses them:

- **local face-recognition weights** (:func:`load_identity_network` with a folder): an ``arcface_torch`` IResNet
  converted once to ``DIR/model.safetensors`` (+ ``config.json`` of :class:`IdentityNetConfig` fields; absent: the
  ``paper`` preset, IResNet-50, 512-d, 112 px); the column is ``F-SIM``;
- **the identity embedding trained here** (``talkinghead train judge.identity``, :mod:`.identity_training`; shipped
  in ``weights/judges/identity``): the same architecture at the ``cpu`` preset (a quarter of the width, one block a
  stage, 64 px, 128-d), trained with ArcFace's additive angular margin loss on the identities of the talking-face
  video dataset's train split; the column is ``F-SIM (id net)``. It has seen a dozen people, not millions: its
  verification accuracy on held-out identities is in its checkpoint's report and in docs/evaluation/identity/.

Deviations: faces are not aligned to ArcFace's five-point template; the network sees the centre square of the
dataset's face crop (``face_fraction`` of its side; the crop is ``crop_scale`` times the face box, 2 by default, so
the face fills that square much as it fills an aligned 112 px face). F-SIM's reference is the portrait's still crop
in the same crop space.
"""

from __future__ import annotations

from collections.abc import Callable
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

#: the published IResNet's stage widths (scaled by ``width``)
STAGE_WIDTHS = (64, 128, 256, 512)


@dataclass(frozen=True)
class IdentityNetConfig(Config):
    """``width``: channel multiplier of :data:`STAGE_WIDTHS` (1 = ArcFace's IResNet); ``layers``: blocks per stage
    ((3, 4, 14, 3) = IResNet-50); ``embedding_dim``: the embedding's size; ``image_size``: the square input side
    (a multiple of 16); ``face_fraction``: the centre square of a face crop given to the network, as a fraction of the
    crop's side; ``num_classes``: the training identities of the ArcFace head kept with a network trained here
    (0: no head, as in the published weights)."""

    width: float = 1.0
    layers: tuple[int, ...] = (3, 4, 14, 3)
    embedding_dim: int = 512
    image_size: int = 112
    face_fraction: float = 0.6
    num_classes: int = 0

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {"width": 1 / 16, "layers": (1, 1, 1, 1), "embedding_dim": 16, "image_size": 32},
        "cpu": {"width": 0.25, "layers": (1, 1, 1, 1), "embedding_dim": 128, "image_size": 64},
        "paper": {},
    }

    def __post_init__(self) -> None:
        if len(self.layers) != 4 or min(self.layers) < 1:
            raise TalkingHeadError(f"An IResNet has four stages of at least one block, got {self.layers}.")
        if self.image_size < 16 or self.image_size % 16:
            raise TalkingHeadError(f"The identity network's input side must be a multiple of 16, got "
                                   f"{self.image_size}.")
        if not 0.1 <= self.face_fraction <= 1.0 or self.width <= 0 or self.embedding_dim < 1 or self.num_classes < 0:
            raise TalkingHeadError("face_fraction must be in [0.1, 1], width and embedding_dim positive and "
                                   "num_classes 0 or more.")


def _channels(base: int, width: float) -> int:
    return max(1, int(round(base * width)))


class IBasicBlock(nn.Module):
    """``bn1 -> conv1 (3x3) -> bn2 -> prelu -> conv2 (3x3, stride) -> bn3`` plus the (downsampled) input."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin, eps=1e-5)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout, eps=1e-5)
        self.prelu = nn.PReLU(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, stride=stride, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout, eps=1e-5)
        self.downsample: nn.Module | None = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(cout, eps=1e-5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        return out + (x if self.downsample is None else self.downsample(x))


class IdentityNet(PretrainedMixin, nn.Module):
    """The IResNet face-recognition network (module docstring): ``[B, 3, S, S]`` in [-1, 1] -> ``[B, D]``."""

    component: ClassVar[str] = "judge.identity"
    config_class: ClassVar[type[Config]] = IdentityNetConfig
    label: ClassVar[str] = "IResNet face-recognition"
    config: IdentityNetConfig

    def __init__(self, config: IdentityNetConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or IdentityNetConfig()
        widths = [_channels(c, config.width) for c in STAGE_WIDTHS]
        self.conv1 = nn.Conv2d(3, widths[0], 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0], eps=1e-5)
        self.prelu = nn.PReLU(widths[0])
        cin = widths[0]
        for k, (blocks, cout) in enumerate(zip(config.layers, widths, strict=True)):
            stage = [IBasicBlock(cin, cout, 2)] + [IBasicBlock(cout, cout, 1) for _ in range(blocks - 1)]
            self.add_module(f"layer{k + 1}", nn.Sequential(*stage))
            cin = cout
        side = config.image_size // 16
        self.bn2 = nn.BatchNorm2d(cin, eps=1e-5)
        self.dropout = nn.Dropout(0.0)
        self.fc = nn.Linear(cin * side * side, config.embedding_dim)
        self.features = nn.BatchNorm1d(config.embedding_dim, eps=1e-5)
        nn.init.constant_(self.features.weight, 1.0)
        self.features.weight.requires_grad = False
        self.head: nn.Parameter | None = None
        if config.num_classes:   # ArcFace's class centres, for training only (not part of the published layout)
            self.head = nn.Parameter(torch.randn(config.num_classes, config.embedding_dim) * 0.01)

    def preprocess(self, frames: torch.Tensor) -> torch.Tensor:
        """``frames [B, H, W, 3]`` uint8 face crops -> ``[B, 3, S, S]`` in [-1, 1]: the centre square of side
        ``face_fraction * min(H, W)``, resized (bilinear, antialiased) to ``image_size``."""
        x = frames.to(torch.float32).permute(0, 3, 1, 2) / 255.0
        h, w = x.shape[-2:]
        side = max(1, int(round(self.config.face_fraction * min(h, w))))
        top, left = (h - side) // 2, (w - side) // 2
        x = x[..., top:top + side, left:left + side]
        size = self.config.image_size
        if side != size:
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=side > size)
        return 2.0 * x - 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x [B, 3, S, S]`` in [-1, 1] -> the embedding ``[B, D]`` (not normalised)."""
        x = self.prelu(self.bn1(self.conv1(x)))
        for k in range(1, 5):
            x = getattr(self, f"layer{k}")(x)
        x = self.dropout(torch.flatten(self.bn2(x), 1))
        return self.features(self.fc(x))

    @torch.no_grad()
    def embed(self, frames: Any, batch_size: int = 64) -> np.ndarray:
        """Face crops ``[N, H, W, 3]`` uint8 (or an iterable of such arrays) -> unit embeddings ``[N, D]`` float32."""
        from talkinghead.evaluation.inception import run_batched

        was_training = self.training
        self.eval()
        out = run_batched(self, frames, 3, batch_size, "identity embeddings (F-SIM)")
        self.train(was_training)
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def arcface_logits(embedding: torch.Tensor, centres: torch.Tensor, labels: torch.Tensor, scale: float = 16.0,
                   margin: float = 0.3) -> torch.Tensor:
    """ArcFace's logits (Deng et al. 2019, Eq. 3): ``s cos(theta_y + m)`` for the true class, ``s cos(theta_j)`` for the
    others, with ``cos theta`` between the normalised ``embedding [B, D]`` and class ``centres [C, D]``; where
    ``theta_y + m`` would pass pi, ``cos theta_y - m sin m`` keeps the logit decreasing in ``theta_y`` (as
    insightface does). ``labels [B]`` int64. Returns ``[B, C]``."""
    cos = F.normalize(embedding, dim=1) @ F.normalize(centres, dim=1).t()
    cos_y = cos.gather(1, labels[:, None]).clamp(-1 + 1e-7, 1 - 1e-7)
    theta = torch.acos(cos_y)
    with_margin = torch.where(theta + margin < torch.pi, torch.cos(theta + margin),
                              cos_y - margin * float(np.sin(margin)))
    return scale * cos.scatter(1, labels[:, None], with_margin)


# ------------------------------------------------------------------------------------------ F-SIM

F_SIM = "F-SIM"
F_SIM_TRAINED = "F-SIM (id net)"


@dataclass(frozen=True)
class IdentityNetwork:
    """The F-SIM column: its ``name``, a ``note`` on the network, and ``embed(frames [N, S, S, 3] uint8) -> [N, D]``
    unit vectors."""

    name: str
    note: str
    embed: Callable[[np.ndarray], np.ndarray]

    def similarity(self, frames: np.ndarray, reference: np.ndarray) -> np.ndarray:
        """Per-frame cosine similarity ``[N]`` of ``frames [N, S, S, 3]`` to the mean unit embedding of
        ``reference [K, S, S, 3]`` (one portrait crop, or a reference video's frames)."""
        return f_sim(self.embed(frames), self.embed(reference))


def f_sim(frames: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Cosine similarity ``[N]`` of unit embeddings ``frames [N, D]`` to the normalised mean of ``reference [K, D]``."""
    centre = np.asarray(reference, np.float64).mean(0)
    centre = centre / max(float(np.linalg.norm(centre)), 1e-12)
    return (np.asarray(frames, np.float64) @ centre).astype(np.float32)


def shipped_identity_folder() -> Path:
    from talkinghead.generators import weights_root

    return weights_root() / "judges" / "identity"


def load_identity_net(directory: str | Path) -> IdentityNet:
    """An identity network from a folder: a checkpoint trained here (``talkinghead train judge.identity``), or
    published ``arcface_torch`` IResNet weights as ``DIR/model.safetensors`` (+ optional ``config.json`` of
    :class:`IdentityNetConfig` fields; absent: the ``paper`` preset)."""
    from talkinghead.evaluation.inception import _is_checkpoint, load_feature_network

    path = Path(directory)
    if not path.is_dir():
        raise TalkingHeadError(f"The face-recognition folder {path} does not exist.")
    if _is_checkpoint(path):
        return IdentityNet.from_pretrained(path)
    return load_feature_network(path, IdentityNet)


def load_identity_network(face_recognition: str | Path | None = None) -> IdentityNetwork | None:
    """The F-SIM network: face-recognition weights from the folder ``face_recognition`` when given (column
    ``F-SIM``), else the identity embedding trained here in ``weights/judges/identity`` (column ``F-SIM (id net)``),
    else None."""
    trained = face_recognition is None
    folder = shipped_identity_folder() if trained else Path(face_recognition)  # type: ignore[arg-type]
    if trained and not (folder / "config.json").is_file():
        return None
    net = load_identity_net(folder)
    if net.config.num_classes or trained:
        name = F_SIM_TRAINED
        what = (f"the identity embedding trained here ({folder}; an IResNet at width {net.config.width:g}, "
                f"{net.config.image_size} px, trained with the ArcFace loss on the video dataset's train identities, "
                "not a face-recognition network trained on millions of faces): compare rows, not papers")
    else:
        name = F_SIM
        what = f"the face-recognition weights in {folder} (IResNet, {net.config.image_size} px)"
    note = (f"{name}: cosine similarity of each frame's identity embedding to the portrait's still crop's, averaged "
            f"over frames; {what}. Faces are the centre {net.config.face_fraction:g} of the crop, not aligned to "
            "ArcFace's five-point template.")
    return IdentityNetwork(name, note, net.embed)


# ------------------------------------------------------------------------------------------ verification

def pair_auc(embeddings: np.ndarray, labels: np.ndarray, groups: np.ndarray | None = None,
             other: np.ndarray | None = None) -> float:
    """Verification ROC AUC over pairs: the probability that a same-label pair's cosine similarity exceeds a
    different-label pair's (ties count half; the Mann-Whitney statistic). ``embeddings [N, D]`` (normalised here),
    ``labels [N]``; ``groups [N]`` (e.g. the clip of each frame): pairs within one group are left out, so two frames
    of one clip do not count as an easy match. ``other [N, D]``: a second embedding of the same frames (e.g. of
    altered copies); the pairs are then (frame i as embedded, frame j as ``other``), every i != j."""
    a = np.asarray(embeddings, np.float64)
    a = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b = a if other is None else np.asarray(other, np.float64)
    b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    labels = np.asarray(labels)
    n = len(a)
    keep = np.triu(np.ones((n, n), bool), 1) if other is None else ~np.eye(n, dtype=bool)
    if groups is not None:
        groups = np.asarray(groups)
        keep &= groups[:, None] != groups[None, :]
    sims = (a @ b.T)[keep]
    same = (labels[:, None] == labels[None, :])[keep]
    if same.all() or not same.any():
        raise TalkingHeadError("Verification needs pairs of the same and of different identities.")
    from scipy.stats import rankdata

    ranks = rankdata(sims)
    n_pos, n_neg = int(same.sum()), int((~same).sum())
    return float((ranks[same].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def grey_copy(frames: np.ndarray, gamma: float = 1.4) -> np.ndarray:
    """Frames ``[N, H, W, 3]`` uint8 in grey scale with a gamma change: the same faces without their colours, for a
    verification in which colour cannot match a pair."""
    x = np.asarray(frames, np.float32) @ np.array([0.299, 0.587, 0.114], np.float32) / 255.0
    return np.repeat((np.power(x, gamma) * 255.0).round().clip(0, 255).astype(np.uint8)[..., None], 3, axis=-1)


def colour_histogram(frames: np.ndarray, face_fraction: float = 0.6, bins: int = 8) -> np.ndarray:
    """A baseline "embedding" with no learning: the joint RGB histogram (``bins`` per channel) of the same centre
    square the identity network sees, square-rooted (Hellinger) so its cosine compares colour distributions.
    ``frames [N, H, W, 3]`` uint8 -> ``[N, bins**3]``."""
    frames = np.asarray(frames)
    h, w = frames.shape[1:3]
    side = max(1, int(round(face_fraction * min(h, w))))
    top, left = (h - side) // 2, (w - side) // 2
    centre = frames[:, top:top + side, left:left + side].reshape(len(frames), -1, 3).astype(np.int64) * bins // 256
    codes = centre[..., 0] * bins * bins + centre[..., 1] * bins + centre[..., 2]
    hist = np.stack([np.bincount(c, minlength=bins ** 3) for c in codes]).astype(np.float64)
    return np.sqrt(hist / hist.sum(1, keepdims=True))

"""A small classifier of motion sequences: the judge behind emotion accuracy and Style Accuracy.

- DreamTalk App. A.1, Style Accuracy (SA): "we split test videos into different speaking styles and
  train a style classifier to classify which style a face motion sequence belongs to ... we put the
  videos from the same speaker, emotion, and intensity into one style".
- DICE-Talk Sec. 4.2, Emo-Score: the papers use an image emotion recogniser (Ryumina et al. 2022) on
  frames. No such network is available here, so emotion is judged from motion by this classifier
  trained on the corpus's labelled clips (issue 7: "emotion accuracy from a classifier trained on the
  corpus motion"); its numbers are comparable within this project, not with the papers'.

The papers do not describe their classifiers' architecture. This one summarises a clip ``[T, C]``
(expression channels, optionally followed by the 6 pose columns) into a fixed vector of per-channel
statistics (mean, standard deviation, mean absolute frame-to-frame change), standardises it with the
training set's statistics, and classifies it with a one-hidden-layer MLP (``hidden = 0``: multinomial
logistic regression), trained full-batch with Adam on the cross-entropy. It is small on purpose: a
judge must be cheap and hard to overfit on a few hundred clips.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from talkinghead.checkpoint import PretrainedMixin
from talkinghead.config import Config
from talkinghead.errors import TalkingHeadError
from talkinghead.evaluation._checks import as_array
from talkinghead.log import log_event
from talkinghead.motion.sequence import MotionSequence

STATISTICS = ("mean", "std", "speed")


@dataclass(frozen=True)
class MotionClassifierConfig(Config):
    """Size and training of :class:`MotionClassifier`. ``classes``/``num_channels`` are set by ``fit``."""

    hidden: int = 64
    use_pose: bool = True
    epochs: int = 300
    learning_rate: float = 0.01
    weight_decay: float = 1e-3
    seed: int = 0
    classes: tuple[str, ...] = ()
    num_channels: int = 0

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {"hidden": 16, "epochs": 150},
        "cpu": {"hidden": 64, "epochs": 300},
        "paper": {"hidden": 128, "epochs": 500},
    }


def _clip_matrix(clip: Any, use_pose: bool, name: str) -> np.ndarray:
    """A clip as ``[T, C]``: expression (+ pose) of a MotionSequence, or a 2-D array as given."""
    if isinstance(clip, MotionSequence):
        parts = [clip.expression, clip.pose] if use_pose else [clip.expression]
        return np.concatenate(parts, axis=1).astype(np.float64)
    return as_array(clip, name, (2,))


def motion_features(clips: Sequence[Any], use_pose: bool = True) -> np.ndarray:
    """Per-clip summary features ``[N, 3C]`` of ``N`` clips ``[T_i, C]`` (T_i >= 2).

    For each channel: the mean over frames, the standard deviation and the mean absolute
    frame-to-frame change (a speed), concatenated in that order.
    """
    if isinstance(clips, MotionSequence | np.ndarray) or len(clips) == 0:
        raise TalkingHeadError("Motion features need a non-empty list of clips.")
    rows = []
    width = None
    for i, clip in enumerate(clips):
        x = _clip_matrix(clip, use_pose, f"Clip {i}")
        if x.shape[0] < 2:
            raise TalkingHeadError(f"Clip {i} has fewer than two frames.")
        if width is not None and x.shape[1] != width:
            raise TalkingHeadError(f"Clip {i} has {x.shape[1]} channels; the others have {width}.")
        width = x.shape[1]
        rows.append(np.concatenate([x.mean(0), x.std(0), np.abs(np.diff(x, axis=0)).mean(0)]))
    return np.stack(rows)


class MotionClassifier(nn.Module, PretrainedMixin):
    """Classifies a motion clip into one of ``config.classes``.

    ``forward(features: [B, 3C]) -> logits [B, K]`` on raw :func:`motion_features`; standardisation
    uses the stored training statistics (buffers ``feature_mean``, ``feature_std``).
    """

    component: ClassVar[str] = "evaluation.motion_classifier"
    config_class: ClassVar[type[Config]] = MotionClassifierConfig
    config: MotionClassifierConfig
    feature_mean: torch.Tensor
    feature_std: torch.Tensor

    def __init__(self, config: MotionClassifierConfig) -> None:
        super().__init__()
        if len(config.classes) < 2 or config.num_channels < 1:
            raise TalkingHeadError("A motion classifier needs at least two classes and one channel; "
                                   "build it with MotionClassifier.fit.")
        self.config = config
        dim = len(STATISTICS) * config.num_channels
        k = len(config.classes)
        self.register_buffer("feature_mean", torch.zeros(dim))
        self.register_buffer("feature_std", torch.ones(dim))
        if config.hidden > 0:
            self.net: nn.Module = nn.Sequential(nn.Linear(dim, config.hidden), nn.GELU(),
                                                nn.Linear(config.hidden, k))
        else:
            self.net = nn.Linear(dim, k)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """``features: [B, 3C]`` -> logits ``[B, K]``."""
        return self.net((features - self.feature_mean) / self.feature_std)

    @classmethod
    def fit(cls, clips: Sequence[Any], labels: Sequence[str], config: MotionClassifierConfig | None = None,
            ) -> MotionClassifier:
        """Train on ``clips`` (MotionSequences or ``[T, C]`` arrays) with string ``labels``."""
        config = config or MotionClassifierConfig.preset("cpu")
        labels = [str(label) for label in labels]
        if len(labels) != len(clips):
            raise TalkingHeadError(f"Got {len(clips)} clips but {len(labels)} labels.")
        classes = tuple(sorted(set(labels)))
        if len(classes) < 2:
            raise TalkingHeadError("A classifier needs clips of at least two classes.")
        features = motion_features(clips, config.use_pose)
        config = config.replace(classes=classes, num_channels=features.shape[1] // len(STATISTICS))
        torch.manual_seed(config.seed)
        model = cls(config)
        x = torch.as_tensor(features, dtype=torch.float32)
        y = torch.as_tensor([classes.index(label) for label in labels])
        model.feature_mean.copy_(x.mean(0))
        model.feature_std.copy_(x.std(0, unbiased=False).clamp_min(1e-6))
        optimiser = torch.optim.AdamW(model.parameters(), lr=config.learning_rate,
                                      weight_decay=config.weight_decay)
        model.train()
        loss = torch.zeros(())
        for _ in range(config.epochs):
            optimiser.zero_grad()
            loss = nn.functional.cross_entropy(model(x), y)
            loss.backward()
            optimiser.step()
        model.eval()
        log_event("motion classifier trained", clips=len(labels), classes=len(classes),
                  final_loss=round(float(loss.detach()), 4))
        return model

    @torch.no_grad()
    def predict_proba(self, clips: Sequence[Any]) -> np.ndarray:
        """Class probabilities ``[N, K]`` (columns in ``config.classes`` order)."""
        features = motion_features(clips, self.config.use_pose)
        if features.shape[1] != len(STATISTICS) * self.config.num_channels:
            raise TalkingHeadError(f"The classifier was trained on {self.config.num_channels} channels; "
                                   f"the clips have {features.shape[1] // len(STATISTICS)}.")
        logits = self(torch.as_tensor(features, dtype=torch.float32))
        return torch.softmax(logits, dim=-1).numpy()

    def predict(self, clips: Sequence[Any]) -> list[str]:
        """Predicted class names, one per clip."""
        return [self.config.classes[i] for i in self.predict_proba(clips).argmax(axis=1)]

    def accuracy(self, clips: Sequence[Any], labels: Sequence[str]) -> float:
        """Fraction of clips whose predicted class equals the label."""
        if len(labels) != len(clips):
            raise TalkingHeadError(f"Got {len(clips)} clips but {len(labels)} labels.")
        predicted = self.predict(clips)
        return float(np.mean([p == str(t) for p, t in zip(predicted, labels, strict=True)]))

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
training set's statistics, and classifies it with multinomial logistic regression (the default,
``hidden = 0``: a convex problem, so the judge does not depend on the seed) or a one-hidden-layer MLP
(``hidden > 0``), trained full-batch with L-BFGS (scipy) on the cross-entropy plus an L2 penalty on the
weights (``l2 * sum ||W||^2``). It is small and regularised on purpose: a judge must be cheap, and
with a few hundred clips an unregularised fit latches onto noise channels (tried: 0.55 held-out
accuracy against 0.87 with the penalty on the synthetic test problem).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from scipy import optimize
from torch import nn

from talkinghead.checkpoint import PretrainedMixin
from talkinghead.config import Config
from talkinghead.errors import TalkingHeadError
from talkinghead.evaluation._checks import as_array
from talkinghead.log import log_event
from talkinghead.sequence import MotionSequence

STATISTICS = ("mean", "std", "speed")


@contextmanager
def _single_thread() -> Iterator[None]:
    """Run torch on one thread: the matrices are tiny, and intra-op threads only add overhead
    (measured 100x slower fits on a busy 2-core machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _minimise_lbfgs(model: nn.Module, objective: Callable[[], torch.Tensor], max_iterations: int) -> None:
    """Minimise ``objective`` over the model's parameters with scipy's L-BFGS-B (torch gradients).

    scipy rather than ``torch.optim.LBFGS``: the first torch optimiser of a process imports
    torch._dynamo (seconds), which a metric should not pay for.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    sizes = [p.numel() for p in params]

    def load(theta: np.ndarray) -> None:
        with torch.no_grad():
            for p, chunk in zip(params, np.split(theta, np.cumsum(sizes)[:-1]), strict=True):
                p.copy_(torch.as_tensor(chunk, dtype=p.dtype).view_as(p))

    def value_and_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
        load(theta)
        for p in params:
            p.grad = None
        value = objective()
        value.backward()
        grad = np.concatenate([p.grad.detach().reshape(-1).double().numpy() for p in params])  # type: ignore[union-attr]
        return float(value.detach()), grad

    theta0 = np.concatenate([p.detach().reshape(-1).double().numpy() for p in params])
    result = optimize.minimize(value_and_grad, theta0, jac=True, method="L-BFGS-B",
                               options={"maxiter": max_iterations})
    load(result.x)


@dataclass(frozen=True)
class MotionClassifierConfig(Config):
    """Size and training of :class:`MotionClassifier`. ``classes``/``num_channels`` are set by ``fit``."""

    hidden: int = 0
    use_pose: bool = True
    max_iterations: int = 500
    l2: float = 1e-2
    seed: int = 0
    classes: tuple[str, ...] = ()
    num_channels: int = 0

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {"hidden": 0, "max_iterations": 200},
        "cpu": {"hidden": 0, "max_iterations": 500},
        "paper": {"hidden": 64, "max_iterations": 1000},
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
        with torch.random.fork_rng(devices=[]):  # seed the initialisation without touching global state
            torch.manual_seed(config.seed)
            model = cls(config)
        x = torch.as_tensor(features, dtype=torch.float32)
        y = torch.as_tensor([classes.index(label) for label in labels])
        model.feature_mean.copy_(x.mean(0))
        model.feature_std.copy_(x.std(0, unbiased=False).clamp_min(1e-6))
        weights = [p for name, p in model.named_parameters() if name.endswith("weight")]

        def objective() -> torch.Tensor:
            return nn.functional.cross_entropy(model(x), y) + config.l2 * sum((w**2).sum() for w in weights)

        model.train()
        with _single_thread():
            _minimise_lbfgs(model, objective, config.max_iterations)
        model.eval()
        with torch.no_grad():
            logits = model(x)
            loss = float(nn.functional.cross_entropy(logits, y))
            train_accuracy = float((logits.argmax(1) == y).float().mean())
        log_event("motion classifier trained", clips=len(labels), classes=len(classes),
                  cross_entropy=round(loss, 4), train_accuracy=round(train_accuracy, 4))
        return model

    @torch.no_grad()
    def predict_proba(self, clips: Sequence[Any]) -> np.ndarray:
        """Class probabilities ``[N, K]`` (columns in ``config.classes`` order)."""
        features = motion_features(clips, self.config.use_pose)
        if features.shape[1] != len(STATISTICS) * self.config.num_channels:
            raise TalkingHeadError(f"The classifier was trained on {self.config.num_channels} channels; "
                                   f"the clips have {features.shape[1] // len(STATISTICS)}.")
        with _single_thread():
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

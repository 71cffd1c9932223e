"""Style-prediction metrics SCD, MD and SA (DreamTalk App. A.1, Tab. 4).

DreamTalk App. A.1 devises three metrics for the style predictor:

- Style Code Distance (SCD): "the L2 distance between the predicted style codes and" the style codes
  extracted from the videos that provide the audio. Here: the mean over samples of ``||s_pred - s_ref||_2``.
- Motion Distance (MD): the predicted style codes and the audio generate face motions; MD is "the L2
  distance between the generated face motions and the face motions extracted from the ground truth
  videos". Here: for each clip the mean over frames of the per-frame L2 norm of the expression
  difference, then the mean over clips. (The paper does not say how frames are reduced; a per-frame
  norm averaged over time keeps the value independent of the clip length.)
- Style Accuracy (SA): a style classifier trained on test videos split into styles (same speaker,
  emotion and intensity) classifies the motions generated with predicted style codes; SA is its
  accuracy (the paper's ground truth scores 92.5%). The classifier is
  :class:`~talkinghead.evaluation.classifier.MotionClassifier`; :func:`style_label` builds the labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from talkinghead.errors import TalkingHeadError
from talkinghead.evaluation._checks import as_array, clip_list, expression_of, same_shape
from talkinghead.evaluation.classifier import MotionClassifier


def style_label(speaker: str, emotion: str, intensity: int | str) -> str:
    """The SA style class of a clip: speaker, emotion and intensity (DreamTalk App. A.1)."""
    return f"{speaker}/{emotion}/{intensity}"


def style_code_distance(predicted: Any, reference: Any) -> float:
    """SCD: mean L2 distance between style codes. ``predicted, reference: [N, D]`` (or ``[D]``)."""
    p = as_array(predicted, "The predicted style codes", (1, 2))
    r = as_array(reference, "The reference style codes", (1, 2))
    same_shape(p, r, "The predicted style codes", "the reference style codes")
    return float(np.mean(np.linalg.norm(np.atleast_2d(p) - np.atleast_2d(r), axis=-1)))


def motion_distance(generated: Any, reference: Any, max_length_mismatch: int = 2) -> float:
    """MD: mean per-frame L2 distance between generated and ground-truth face motion.

    ``generated``, ``reference``: lists of the same number of clips, each a MotionSequence (its
    expression ``[T, E]`` is used) or an ``[T, E]`` array. Clips whose lengths differ by up to
    ``max_length_mismatch`` frames (audio rounding) are compared over their common length.
    """
    gen = clip_list(generated, "The generated motions")
    ref = clip_list(reference, "The reference motions")
    if len(gen) != len(ref):
        raise TalkingHeadError(f"Got {len(gen)} generated and {len(ref)} reference motions.")
    values = []
    for i, (g_clip, r_clip) in enumerate(zip(gen, ref, strict=True)):
        g = expression_of(g_clip, f"Generated motion {i}")
        r = expression_of(r_clip, f"Reference motion {i}")
        if g.shape[1] != r.shape[1]:
            raise TalkingHeadError(f"Motion {i} has {g.shape[1]} generated and {r.shape[1]} reference channels.")
        if abs(len(g) - len(r)) > max_length_mismatch:
            raise TalkingHeadError(f"Motion {i} has {len(g)} generated and {len(r)} reference frames.")
        t = min(len(g), len(r))
        values.append(np.linalg.norm(g[:t] - r[:t], axis=1).mean())
    return float(np.mean(values))


def style_accuracy(classifier: MotionClassifier, generated: Sequence[Any], styles: Sequence[str]) -> float:
    """SA: accuracy of the style classifier on generated motions. ``styles``: target style labels."""
    return classifier.accuracy(generated, styles)

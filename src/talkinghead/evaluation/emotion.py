"""Emotion accuracy and Emo-Score (DICE-Talk Sec. 4.2, Tabs. 1, 2 and 4).

DICE-Talk: "To assess the accuracy of the generated facial expressions, we use the Emo-Score (Ryumina
et al., 2022). Specifically, we selected four easily recognizable emotions - neutral, happy, surprised,
and angry ... The average of these scores will be used as the overall Emo-Score. Additionally, we will
compare the average scores of neutral and non-neutral emotions."

Here the per-emotion score is the recall of the target emotion (the fraction of clips generated for
that emotion that the judge classifies as it), the judge being a :class:`MotionClassifier` trained on
the corpus's labelled expression clips instead of Ryumina et al.'s image network (not available here;
see :mod:`talkinghead.evaluation.classifier`). The Emo-Score is the mean of the per-emotion scores over
``score_emotions`` (DICE-Talk's four by default), "Neutral" the neutral score and "Non-neutral" the mean
over the others. Overall accuracy over all clips is reported too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from talkinghead.data.dataset import Dataset
from talkinghead.errors import TalkingHeadError
from talkinghead.evaluation.classifier import MotionClassifier, MotionClassifierConfig
from talkinghead.log import progress

DICE_EMOTIONS = ("neutral", "happy", "surprised", "angry")  # DICE-Talk Sec. 4.2


@dataclass(frozen=True)
class EmotionAccuracy:
    """Emotion judged from motion: overall accuracy, per-emotion recall, Emo-Score and its split."""

    accuracy: float
    per_emotion: dict[str, float]
    emo_score: float
    neutral: float
    non_neutral: float
    num_clips: int


def train_emotion_classifier(clips: Sequence[Any], emotions: Sequence[str],
                             config: MotionClassifierConfig | None = None) -> MotionClassifier:
    """Train the emotion judge on labelled clips (MotionSequences or ``[T, C]`` arrays)."""
    return MotionClassifier.fit(clips, emotions, config)


def train_emotion_classifier_from_dataset(dataset: Dataset | str, split: str = "train",
                                          config: MotionClassifierConfig | None = None) -> MotionClassifier:
    """Train the emotion judge on a dataset's clips of one split (labels: ``ClipMeta.emotion``)."""
    data = dataset if isinstance(dataset, Dataset) else Dataset(dataset)
    ids = data.ids(split)
    if not ids:
        raise TalkingHeadError(f"The dataset {data.root} has no clips in split '{split}'.")
    clips, emotions = [], []
    for clip_id in progress(ids, "reading clips", total=len(ids)):
        clip = data.clip(clip_id)
        clips.append(clip.motion)
        emotions.append(clip.meta.emotion)
    return train_emotion_classifier(clips, emotions, config)


def emotion_accuracy(classifier: MotionClassifier, clips: Sequence[Any], emotions: Sequence[str],
                     score_emotions: Sequence[str] = DICE_EMOTIONS) -> EmotionAccuracy:
    """Judge generated clips against the emotions they were generated for.

    ``clips``: N MotionSequences (or ``[T, C]`` arrays), ``emotions``: N target emotion names.
    Emotions of ``score_emotions`` with no clip are left out of the Emo-Score; NaN where nothing is left.
    """
    if len(clips) != len(emotions) or len(clips) == 0:
        raise TalkingHeadError(f"Emotion accuracy needs as many target emotions as clips (got {len(clips)} "
                               f"clips and {len(emotions)} emotions, at least one).")
    unknown = sorted(set(emotions) - set(classifier.config.classes))
    if unknown:
        raise TalkingHeadError(f"The emotion judge was not trained on {', '.join(unknown)}.")
    predicted = np.array(classifier.predict(clips))
    target = np.array([str(e) for e in emotions])
    correct = predicted == target
    per_emotion = {e: float(correct[target == e].mean()) for e in sorted(set(target))}
    scored = [e for e in score_emotions if e in per_emotion]
    others = [per_emotion[e] for e in scored if e != "neutral"]
    return EmotionAccuracy(
        accuracy=float(correct.mean()),
        per_emotion=per_emotion,
        emo_score=float(np.mean([per_emotion[e] for e in scored])) if scored else float("nan"),
        neutral=per_emotion.get("neutral", float("nan")) if "neutral" in scored else float("nan"),
        non_neutral=float(np.mean(others)) if others else float("nan"),
        num_clips=len(target),
    )

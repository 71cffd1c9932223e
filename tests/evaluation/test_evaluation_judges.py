"""Motion classifier, emotion accuracy / Emo-Score, SCD / MD / SA and clustering strength."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from talkinghead.data.dataset import Clip, ClipMeta, DatasetInfo, DatasetWriter
from talkinghead.errors import TalkingHeadError
from talkinghead.evaluation.classifier import MotionClassifier, MotionClassifierConfig, motion_features
from talkinghead.evaluation.clustering import clustering_strength
from talkinghead.evaluation.emotion import (
    emotion_accuracy,
    train_emotion_classifier,
    train_emotion_classifier_from_dataset,
)
from talkinghead.evaluation.style import motion_distance, style_accuracy, style_code_distance, style_label
from talkinghead.sequence import ChannelLayout, MotionSequence

LAYOUT = ChannelLayout("t", tuple(f"c{i}" for i in range(6)))
EMOTIONS = ("angry", "happy", "neutral", "surprised")


def _clip(emotion: str, rng: np.random.Generator, t: int = 30) -> MotionSequence:
    """Each emotion raises its own channel and moves at its own speed; speakers add random offsets."""
    k = EMOTIONS.index(emotion)
    expression = rng.normal(0, 0.3, size=(1, 6)) + rng.normal(0, 0.2, size=(t, 6))
    expression[:, k] += 1.0
    expression[:, 5] += np.sin(np.arange(t) * 0.2 * (k + 1)) * 0.5
    pose = rng.normal(0, 0.05, size=(t, 6))
    return MotionSequence(expression, pose, LAYOUT)


def _set(n_per: int, seed: int) -> tuple[list[MotionSequence], list[str]]:
    rng = np.random.default_rng(seed)
    labels = [e for e in EMOTIONS for _ in range(n_per)]
    return [_clip(e, rng) for e in labels], labels


def test_motion_features_hand_computed() -> None:
    clip = np.array([[0.0, 1.0], [2.0, 1.0], [4.0, 1.0]])
    np.testing.assert_allclose(motion_features([clip]), [[2.0, 1.0, np.sqrt(8 / 3), 0.0, 2.0, 0.0]])
    with pytest.raises(TalkingHeadError, match="two frames"):
        motion_features([clip[:1]])


def test_emotion_judge_learns_and_round_trips(tmp_path: Path) -> None:
    train, train_labels = _set(40, seed=0)
    test, test_labels = _set(10, seed=1)
    judge = train_emotion_classifier(train, train_labels, MotionClassifierConfig.preset("tiny"))
    result = emotion_accuracy(judge, test, test_labels)
    assert result.accuracy >= 0.85 and result.num_clips == 40
    predicted = np.array(judge.predict(test))
    truth = np.array(test_labels)
    for emotion in EMOTIONS:
        assert result.per_emotion[emotion] == pytest.approx(np.mean(predicted[truth == emotion] == emotion))
    assert result.emo_score == pytest.approx(np.mean([result.per_emotion[e] for e in EMOTIONS]))
    assert result.neutral == result.per_emotion["neutral"]
    assert result.non_neutral == pytest.approx(np.mean([result.per_emotion[e] for e in ("happy", "surprised",
                                                                                          "angry")]))
    # Motion that does not carry the emotion is judged near chance.
    rng = np.random.default_rng(2)
    shuffled = [test_labels[i] for i in rng.permutation(len(test_labels))]
    assert emotion_accuracy(judge, test, shuffled).accuracy < 0.6
    judge.save_pretrained(tmp_path / "judge")
    back = MotionClassifier.from_pretrained(tmp_path / "judge")
    np.testing.assert_allclose(back.predict_proba(test), judge.predict_proba(test), atol=1e-6)
    assert back.config.classes == EMOTIONS
    with pytest.raises(TalkingHeadError, match="not trained on"):
        emotion_accuracy(judge, test[:1], ["fear"])


def test_emotion_judge_from_a_dataset(tmp_path: Path) -> None:
    writer = DatasetWriter(tmp_path / "ds", DatasetInfo(fps=25.0, layout=LAYOUT))
    clips, labels = _set(12, seed=3)
    for i, (motion, emotion) in enumerate(zip(clips, labels, strict=True)):
        meta = ClipMeta(f"clip{i:03d}", "spk0", emotion, 1, "train" if i % 3 else "test")
        writer.write_clip(Clip(meta, np.zeros(len(motion) * 640, np.float32), motion))
    writer.finalize()
    judge = train_emotion_classifier_from_dataset(tmp_path / "ds", "train",
                                                  MotionClassifierConfig.preset("tiny", hidden=8, max_iterations=60))
    assert judge.config.classes == EMOTIONS
    train = [(c, lab) for i, (c, lab) in enumerate(zip(clips, labels, strict=True)) if i % 3]
    assert judge.accuracy([c for c, _ in train], [lab for _, lab in train]) == 1.0  # it saw these
    with pytest.raises(TalkingHeadError, match="no clips"):
        train_emotion_classifier_from_dataset(tmp_path / "ds", "val")


def test_style_metrics_hand_computed_and_style_accuracy() -> None:
    assert style_code_distance([[0.0, 0.0], [1.0, 1.0]], [[3.0, 4.0], [1.0, 1.0]]) == pytest.approx(2.5)
    ref = np.zeros((10, 2))
    gen = ref + np.array([3.0, 4.0])
    assert motion_distance([gen, gen[:9]], [ref, ref]) == pytest.approx(5.0)  # a 1-frame mismatch is cut
    with pytest.raises(TalkingHeadError, match="frames"):
        motion_distance([gen[:5]], [ref])
    with pytest.raises(TalkingHeadError, match="same shape"):
        style_code_distance(np.zeros((2, 3)), np.zeros((2, 4)))
    train, emotions = _set(40, seed=4)
    styles = [style_label("spk0", e, 2) for e in emotions]
    judge = MotionClassifier.fit(train, styles, MotionClassifierConfig.preset("tiny"))
    test, test_emotions = _set(10, seed=5)
    assert style_accuracy(judge, test, [style_label("spk0", e, 2) for e in test_emotions]) >= 0.85


def test_clustering_strength_hand_computed() -> None:
    # Class a at -1, 1 (centroid 0), class b at 9, 11 (centroid 10): d_intra 1, d_inter 10.
    x = np.array([[-1.0], [1.0], [9.0], [11.0]])
    result = clustering_strength(x, ["a", "a", "b", "b"])
    assert result.per_class == {"a": pytest.approx(10.0), "b": pytest.approx(10.0)}
    assert result.d_intra["a"] == pytest.approx(1.0) and result.d_inter["b"] == pytest.approx(10.0)
    # Three classes: c at 30, 32 (centroid 31): a's d_inter = (10 + 31) / 2.
    x3 = np.vstack([x, [[30.0], [32.0]]])
    three = clustering_strength(x3, ["a", "a", "b", "b", "c", "c"])
    assert three.per_class["a"] == pytest.approx(20.5)
    # Per identity: the second identity's clusters are twice as tight; ratios are averaged.
    x2 = np.vstack([x, x * np.array([[1.0]]) / 1.0])
    x2[4:] = np.array([[-0.5], [0.5], [9.5], [10.5]])
    grouped = clustering_strength(x2, ["a", "a", "b", "b"] * 2, groups=["p"] * 4 + ["q"] * 4)
    assert grouped.per_class["a"] == pytest.approx((10.0 + 20.0) / 2)
    assert grouped.mean == pytest.approx(15.0)
    with pytest.raises(TalkingHeadError, match="two classes"):
        clustering_strength(x, ["a"] * 4)


def test_classifier_input_errors() -> None:
    clips, labels = _set(3, seed=6)
    with pytest.raises(TalkingHeadError, match="two classes"):
        MotionClassifier.fit(clips[:3], labels[:3])
    with pytest.raises(TalkingHeadError, match="labels"):
        MotionClassifier.fit(clips, labels[:-1])
    judge = MotionClassifier.fit(clips, labels, MotionClassifierConfig.preset("tiny"))
    with pytest.raises(TalkingHeadError, match="channels"):
        judge.predict([np.zeros((10, 5))])

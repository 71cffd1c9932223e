"""Emotion judged from video frames: the Emo-Score column of ``evaluate-frames`` (DICE-Talk Sec. 4.2, Tabs. 1 and 4).

DICE-Talk scores emotion with Ryumina et al.'s image emotion network (not available here). Its stand-in is a
*video* emotion judge trained on the talking-face video dataset (issue 17: "a video emotion classifier trained on
the video dataset"): every frame of a clip is tracked (face mesh + face-model fit,
:func:`talkinghead.evaluation.frames.tracked_motion`) and the tracked expression sequence is classified by a
:class:`~talkinghead.evaluation.classifier.MotionClassifier` (per-channel mean, spread and speed; pose left out,
so the head's motion does not count). The judge learns from the *tracked* motion of the dataset's own frames, not
the clips' stored coefficients, so it sees what it will judge: the tracker's reading of rendered faces.

- :func:`train_video_emotion_judge`: up to ``per_emotion`` clips of each emotion of a split (default ``train``),
  each cut to ``max_frames``, tracked and fitted; the judge is saved like any checkpoint (``save_pretrained``);
- :func:`emotion_balanced_clips`: the clips of a split restricted to some emotions, taken round-robin over the
  emotions so that ``max_clips`` keeps them balanced;
- :func:`emotion_partner`: for the "emotion by video" rows, a clip of the same emotion spoken by another identity
  (the reference video), the first such clip of the same split.

Emo-Score, Neutral and Non-neutral are :func:`talkinghead.evaluation.emotion.emotion_accuracy` over DICE-Talk's
four emotions (neutral, happy, surprised, angry) among the clips evaluated.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from talkinghead.data.video.format import VideoDataset
from talkinghead.errors import TalkingHeadError
from talkinghead.evaluation.classifier import MotionClassifier, MotionClassifierConfig
from talkinghead.log import log_event, progress


def emotion_balanced_clips(data: VideoDataset, ids: Sequence[str], emotions: Sequence[str] | None,
                           max_clips: int | None) -> list[str]:
    """``ids`` of the given ``emotions`` (all when None), taken round-robin over the emotions (each emotion's clips
    in dataset order), at most ``max_clips``."""
    if not emotions:
        return list(ids)[:max_clips] if max_clips is not None else list(ids)
    by_emotion: dict[str, list[str]] = {e: [] for e in emotions}
    for clip_id in ids:
        emotion = data.meta(clip_id).emotion
        if emotion in by_emotion:
            by_emotion[emotion].append(clip_id)
    missing = [e for e, clips in by_emotion.items() if not clips]
    if missing:
        raise TalkingHeadError(f"The video dataset {data.root} has no clips of {', '.join(missing)} to evaluate.")
    out: list[str] = []
    for k in range(max(len(c) for c in by_emotion.values())):
        out += [clips[k] for clips in by_emotion.values() if k < len(clips)]
    return out[:max_clips] if max_clips is not None else out


def emotion_partner(data: VideoDataset, ids: Sequence[str], clip_id: str) -> str:
    """The first clip of ``ids`` with ``clip_id``'s emotion and another identity (face)."""
    meta = data.meta(clip_id)
    for other in ids:
        m = data.meta(other)
        if m.emotion == meta.emotion and m.identity != meta.identity:
            return other
    raise TalkingHeadError(f"No clip of the split shows '{meta.emotion}' on another face than {meta.identity}'s, so "
                           "the emotion cannot come from another person's video.")


def train_video_emotion_judge(data: VideoDataset, split: str = "train", *, per_emotion: int = 20,
                              max_frames: int | None = 75, emotions: Sequence[str] | None = None,
                              config: MotionClassifierConfig | None = None) -> MotionClassifier:
    """The video emotion judge: the tracked expression of up to ``per_emotion`` clips of each emotion (``emotions``:
    all of the split's when None) of ``split``, each cut to its first ``max_frames`` frames."""
    from talkinghead.evaluation.frames import tracked_motion

    ids = data.ids(split)
    names = sorted({data.meta(i).emotion for i in ids}) if emotions is None else list(emotions)
    chosen: list[str] = []
    for name in names:
        chosen += [i for i in ids if data.meta(i).emotion == name][:per_emotion]
    motions, labels = [], []
    for clip_id in progress(chosen, "tracking clips for the emotion judge", total=len(chosen)):
        clip = data.clip(clip_id, audio=False)
        n = len(clip) if max_frames is None else min(len(clip), max_frames)
        motion = tracked_motion(data.frames(clip_id, range(n)), clip.motion.fps)
        if motion is not None and len(motion) >= 2:
            motions.append(motion)
            labels.append(data.meta(clip_id).emotion)
    if len(set(labels)) < 2:
        raise TalkingHeadError(f"The split '{split}' of {data.root} gave tracked clips of fewer than two emotions; "
                               "an emotion judge needs at least two.")
    config = (config or MotionClassifierConfig.preset("cpu")).replace(use_pose=False)
    judge = MotionClassifier.fit(motions, labels, config)
    log_event("video emotion judge trained", clips=len(labels), untracked=len(chosen) - len(labels))
    return judge


def load_video_emotion_judge(spec: Any) -> MotionClassifier:
    """A saved judge folder, or a loaded judge as given."""
    if isinstance(spec, MotionClassifier):
        return spec
    return MotionClassifier.from_pretrained(spec)

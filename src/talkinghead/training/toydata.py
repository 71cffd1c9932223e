"""A small, structured random dataset in the project's format, for tests and benchmarks of the motion
models when the synthetic corpus is not at hand.

It is not the corpus: it has no speech. Each clip has smooth random "audio features" ``[T, D]`` and a
motion that depends on them in known ways, so a model can learn something real:

- mouth channels are fixed functions of the audio features at the same frame (sync: shifting the
  audio breaks the relation, which the lip expert must learn to detect);
- the other face channels carry a per-speaker and per-emotion offset (the speaking style, recoverable
  from a reference clip) and the emotion also scales the mouth (a style-dependent articulation);
- pose is a slow per-clip random walk; the identity descriptor is per speaker (plus small noise).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter1d

from talkinghead.data.dataset import Clip, ClipMeta, Dataset, DatasetInfo, DatasetWriter
from talkinghead.sequence import ChannelLayout, MotionSequence

EMOTIONS = ("neutral", "happy", "sad", "angry")


def toy_layout(mouth: int = 4, face: int = 6) -> ChannelLayout:
    m = tuple(f"mouth{i}" for i in range(mouth))
    f = tuple(f"face{i}" for i in range(face))
    return ChannelLayout("toy", m + f, {"mouth": m, "face": f})


def make_toy_dataset(root: str | Path, speakers: int = 3, clips_per_speaker: int = 4,
                     frames: tuple[int, int] = (60, 100), audio_dim: int = 8, descriptor_dim: int = 6,
                     seed: int = 0, mouth: int = 4, face: int = 6) -> Dataset:
    """Write (once) and open a toy dataset at ``root``."""
    root = Path(root)
    layout = toy_layout(mouth, face)
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(audio_dim, mouth)) / np.sqrt(audio_dim)
    speaker_style = rng.normal(scale=0.6, size=(speakers, face))
    emotion_style = rng.normal(scale=0.8, size=(len(EMOTIONS), face))
    emotion_gain = np.linspace(0.6, 1.6, len(EMOTIONS))
    descriptors = rng.normal(size=(speakers, descriptor_dim))
    info = DatasetInfo(25.0, layout, audio_features={"name": "toy", "dims": audio_dim})
    writer = DatasetWriter(root, info)
    for s in range(speakers):
        for k in range(clips_per_speaker):
            clip_id = f"s{s}_c{k}"
            e = int(rng.integers(len(EMOTIONS)))
            t = int(rng.integers(frames[0], frames[1] + 1))
            audio = gaussian_filter1d(rng.normal(size=(t, audio_dim)), 1.5, axis=0) * 2.0
            mouth_curve = emotion_gain[e] * np.tanh(audio @ mix)
            other = speaker_style[s] + emotion_style[e] + 0.1 * gaussian_filter1d(rng.normal(size=(t, face)), 3, axis=0)
            expression = np.concatenate([mouth_curve, other], axis=1)
            pose = np.cumsum(rng.normal(scale=0.01, size=(t, 6)), axis=0)
            identity = {"descriptor": (descriptors[s] + 0.05 * rng.normal(size=descriptor_dim)).astype(np.float32)}
            split = "val" if k == clips_per_speaker - 1 and clips_per_speaker > 2 else "train"
            motion = MotionSequence(expression, pose, layout, 25.0, identity, "toy")
            writer.write_clip(Clip(ClipMeta(clip_id, f"spk{s}", EMOTIONS[e], 1 + e % 3, split),
                                   np.zeros(t * 640, np.float32), motion, {"toy": audio.astype(np.float32)}))
    writer.finalize()
    return Dataset(root)

"""Motion as ARKit-style blendshape curves for 3D avatars (issue 3, item 5).

The CSV follows Live Link Face's layout, which avatar tools read: ``Timecode`` (``HH:MM:SS:FF.mmm``
at the motion's fps), ``BlendShapeCount``, the 52 ARKit blendshape columns in Live Link's order and
capitalisation (``EyeBlinkLeft``, ``JawOpen``, ...), then ``HeadYaw, HeadPitch, HeadRoll`` in
radians (the pose convention of :mod:`talkinghead.face.model`). ARKit channels the motion's layout
does not have (eye gaze, tongue, mouth roll upper, shrugs) are written as 0, so every file has
every column. Only layouts whose channels are ARKit names can be exported.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from talkinghead.errors import TalkingHeadError
from talkinghead.io.files import atomic_path
from talkinghead.sequence import MotionSequence

ARKIT_52 = (
    "eyeBlinkLeft", "eyeLookDownLeft", "eyeLookInLeft", "eyeLookOutLeft", "eyeLookUpLeft", "eyeSquintLeft",
    "eyeWideLeft", "eyeBlinkRight", "eyeLookDownRight", "eyeLookInRight", "eyeLookOutRight", "eyeLookUpRight",
    "eyeSquintRight", "eyeWideRight", "jawForward", "jawRight", "jawLeft", "jawOpen", "mouthClose",
    "mouthFunnel", "mouthPucker", "mouthRight", "mouthLeft", "mouthSmileLeft", "mouthSmileRight",
    "mouthFrownLeft", "mouthFrownRight", "mouthDimpleLeft", "mouthDimpleRight", "mouthStretchLeft",
    "mouthStretchRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper",
    "mouthPressLeft", "mouthPressRight", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthUpperUpLeft",
    "mouthUpperUpRight", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft",
    "browOuterUpRight", "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "noseSneerLeft",
    "noseSneerRight", "tongueOut",
)
HEAD_COLUMNS = ("HeadYaw", "HeadPitch", "HeadRoll")


def _timecode(frame: int, fps: float) -> str:
    seconds = frame / fps
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    whole = int(s)
    ff = int(round((s - whole) * fps))
    return f"{int(h):02d}:{int(m):02d}:{whole:02d}:{ff:02d}.{int(round((seconds % 1) * 1000)) % 1000:03d}"


def arkit_curves(motion: MotionSequence) -> tuple[list[str], np.ndarray]:
    """Column names and values ``[T, 55]`` (52 blendshapes then head yaw, pitch, roll)."""
    unknown = [c for c in motion.layout.channels if c not in ARKIT_52]
    if unknown:
        raise TalkingHeadError(
            f"The motion's '{motion.layout.name}' layout is not made of ARKit blendshapes "
            f"(e.g. '{unknown[0]}'), so it cannot be exported as ARKit curves.")
    values = np.zeros((len(motion), len(ARKIT_52) + 3), dtype=np.float64)
    for i, name in enumerate(ARKIT_52):
        if name in motion.layout.channels:
            values[:, i] = motion.channel(name)
    values[:, len(ARKIT_52):] = motion.pose[:, [1, 0, 2]]
    names = [n[0].upper() + n[1:] for n in ARKIT_52] + list(HEAD_COLUMNS)
    return names, values


def export_arkit_csv(motion: MotionSequence, path: str | Path) -> Path:
    """Write ``motion`` as a Live Link Face style CSV (atomically)."""
    path = Path(path)
    if path.suffix.lower() != ".csv":
        raise TalkingHeadError(f"The curves file should end in .csv, got {path.name}.")
    names, values = arkit_curves(motion)
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["Timecode", "BlendShapeCount", *names])
            for t, row in enumerate(values):
                writer.writerow([_timecode(t, motion.fps), len(names), *(f"{v:.6f}" for v in row)])
    return path

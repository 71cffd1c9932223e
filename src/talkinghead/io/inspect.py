"""Describe what a path holds, reading it through the same readers the pipeline uses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from talkinghead.errors import TalkingHeadError

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".m4a", ".opus", ".aac")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")


def inspect_path(path_str: str) -> dict[str, Any]:
    """Return a small JSON-ready description; raises ``TalkingHeadError`` for unreadable input."""
    from talkinghead.io.video import VIDEO_SUFFIXES

    path = Path(path_str)
    if not path.exists():
        raise TalkingHeadError(f"{path} does not exist.")
    suffix = path.suffix.lower()
    if path.is_dir():
        if (path / "dataset.json").exists():
            from talkinghead.data.dataset import Dataset

            ds = Dataset(path)
            return {"kind": "dataset", "clips": len(ds), "fps": ds.info.fps, "channels": ds.info.layout.size}
        from talkinghead.checkpoint import read_checkpoint_info

        info = read_checkpoint_info(path)
        return {"kind": "checkpoint", "component": info.component, "preset": info.preset}
    if suffix in AUDIO_SUFFIXES:
        from talkinghead.io.audio import load_audio

        audio = load_audio(path)
        return {"kind": "audio", "duration": round(audio.duration, 3), "sample_rate": audio.sample_rate,
                "peak": round(float(abs(audio.samples).max(initial=0.0)), 4)}
    if suffix in IMAGE_SUFFIXES:
        from talkinghead.io.image import load_image

        image = load_image(path)
        return {"kind": "image", "width": int(image.shape[1]), "height": int(image.shape[0])}
    if suffix in VIDEO_SUFFIXES:
        from talkinghead.io.video import probe_video, read_video

        video = read_video(path)
        vinfo = probe_video(path)
        return {"kind": "video", "frames": int(len(video.frames)), "fps": round(video.fps, 3),
                "width": vinfo.width, "height": vinfo.height,
                "audio_duration": round(video.audio.duration, 3) if video.audio else None}
    if suffix == ".npz":
        from talkinghead.sequence import MotionSequence

        motion = MotionSequence.load(path)
        return {"kind": "motion", "frames": len(motion), "fps": motion.fps, "layout": motion.layout.name,
                "channels": motion.layout.size, "source": motion.source}
    from talkinghead.checkpoint import PICKLE_SUFFIXES, read_checkpoint_info

    if suffix in PICKLE_SUFFIXES:
        read_checkpoint_info(path)  # raises the pickle refusal
    raise TalkingHeadError(f"{path} has a file type talkinghead does not know ({suffix or 'no suffix'}).")

"""``dataset-info`` and ``preview``: what a dataset holds, and a clip's ground truth made visible.

``dataset_summary(root)`` counts clips by split, emotion, intensity and speaker with their durations
(from the manifest alone, so it is fast on large datasets). ``preview_clip`` renders a clip's
ground-truth motion with the warp renderer (:mod:`talkinghead.render.warp_renderer`) on a portrait
(scikit-image's astronaut unless one is given), adding the clip's pose to the portrait's own, and
writes an mp4 with the clip's audio.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from talkinghead.data.dataset import Dataset
from talkinghead.errors import TalkingHeadError


def dataset_summary(root: str | Path) -> dict[str, Any]:
    """Counts and durations (seconds) by split, emotion, intensity and speaker."""
    ds = Dataset(root)
    by: dict[str, dict[str, list[float]]] = {k: defaultdict(lambda: [0, 0.0]) for k in
                                              ("split", "emotion", "intensity", "speaker")}
    for row in ds.rows:
        for key, value in (("split", row.split), ("emotion", row.emotion), ("intensity", str(row.intensity)),
                           ("speaker", row.speaker)):
            entry = by[key][value]
            entry[0] += 1
            entry[1] += row.duration
    durations = np.array([r.duration for r in ds.rows]) if ds.rows else np.zeros(1)
    speaker_split = Counter((r.speaker, r.split) for r in ds.rows)
    return {
        "root": str(ds.root),
        "clips": len(ds),
        "hours": round(float(durations.sum()) / 3600.0, 3),
        "duration_seconds": {"total": round(float(durations.sum()), 2), "mean": round(float(durations.mean()), 3),
                             "min": round(float(durations.min()), 3), "max": round(float(durations.max()), 3)},
        "fps": ds.info.fps,
        "layout": f"{ds.info.layout.name} ({ds.info.layout.size} channels)",
        "features": sorted((ds.info.audio_features.get("kinds") or {}).keys()),
        "speakers_per_split": dict(Counter(split for _, split in speaker_split)),
        **{f"by_{k}": {name: {"clips": v[0], "seconds": round(v[1], 2)} for name, v in sorted(table.items())}
           for k, table in by.items()},
    }


def format_summary(summary: dict[str, Any]) -> str:
    lines = [f"{summary['root']}: {summary['clips']} clips, {summary['hours']} h "
             f"(mean {summary['duration_seconds']['mean']} s, min {summary['duration_seconds']['min']} s, "
             f"max {summary['duration_seconds']['max']} s), {summary['fps']} fps, layout {summary['layout']}",
             f"audio features: {', '.join(summary['features']) or 'none'}",
             f"speakers per split: {summary['speakers_per_split']}"]
    for key in ("split", "emotion", "intensity", "speaker"):
        table = summary[f"by_{key}"]
        lines.append(f"by {key}:")
        lines.extend(f"  {name:<12} {v['clips']:>6} clips {v['seconds']:>10.1f} s" for name, v in table.items())
    return "\n".join(lines)


def preview_clip(root: str | Path, clip_id: str, output: str | Path, image: str | Path | None = None,
                 size: int = 256, with_pose: bool = True) -> Path:
    """Render clip ``clip_id`` of the dataset at ``root`` on a portrait into ``output`` (.mp4)."""
    from talkinghead.face.model import fit_image
    from talkinghead.io.audio import Audio
    from talkinghead.io.video import write_video
    from talkinghead.log import progress
    from talkinghead.render.warp_renderer import WarpRenderer, WarpRendererConfig
    from talkinghead.sequence import expression_for_layout

    output = Path(output)
    if output.suffix.lower() != ".mp4":
        raise TalkingHeadError(f"The preview {output} should end in .mp4.")
    clip = Dataset(root).clip(clip_id)
    if image is None:
        from skimage import data

        portrait = data.astronaut()
    else:
        from talkinghead.io.image import load_image

        portrait = load_image(image)
    fit = fit_image(portrait)
    renderer = WarpRenderer.from_fit(portrait, fit.identity, fit.expression, fit.pose,
                                     WarpRendererConfig(size=size, paste_back=False))
    from talkinghead.face.model import ARKIT_LAYOUT

    expression = expression_for_layout(clip.motion, ARKIT_LAYOUT)
    pose = fit.pose[None, :] + (clip.motion.pose if with_pose else np.zeros_like(clip.motion.pose))
    frames = progress(renderer.render(expression, pose.astype(np.float32)), "preview", total=len(clip.motion))
    write_video(output, frames, clip.motion.fps, audio=Audio(np.asarray(clip.audio, np.float32)))
    return output

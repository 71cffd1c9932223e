"""What a video dataset holds, and its clips made visible: ``dataset-info``, ``preview`` and contact sheets.

- :func:`video_summary` counts clips and frames by split, emotion, intensity, speaker, identity and
  portrait (from the manifest alone), with the identities per split, the clips with and without audio,
  and the size on disk.
- :func:`preview_video_clip` writes a clip's stored crops as an mp4 with its audio, the face box drawn and
  the head speed written on each frame.
- :func:`contact_sheet` draws a few frames of several clips as one PNG, with boxes and labels.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from talkinghead.data.video.format import VideoDataset
from talkinghead.errors import TalkingHeadError
from talkinghead.io.files import atomic_path

BOX_COLOUR = (60, 230, 60)
TEXT_COLOUR = (255, 255, 255)


def video_summary(root: str | Path) -> dict[str, Any]:
    """Counts, durations (seconds) and frames by split, emotion, intensity, speaker, identity, portrait."""
    from talkinghead.data.video.build import disk_bytes

    ds = VideoDataset(root)
    keys = ("split", "emotion", "intensity", "speaker", "identity", "portrait")
    by: dict[str, dict[str, list[float]]] = {k: defaultdict(lambda: [0, 0.0, 0]) for k in keys}
    for row in ds.rows:
        for key in keys:
            entry = by[key][str(getattr(row, key))]
            entry[0] += 1
            entry[1] += row.duration
            entry[2] += row.num_frames
    durations = np.array([r.duration for r in ds.rows]) if ds.rows else np.zeros(1)
    identity_split = {(r.identity, r.split) for r in ds.rows}
    size = disk_bytes(ds.root)
    return {
        "root": str(ds.root),
        "kind": "video",
        "clips": len(ds),
        "frames": int(sum(r.num_frames for r in ds.rows)),
        "hours": round(float(durations.sum()) / 3600.0, 3),
        "duration_seconds": {"total": round(float(durations.sum()), 2), "mean": round(float(durations.mean()), 3),
                             "min": round(float(durations.min()), 3), "max": round(float(durations.max()), 3)},
        "fps": ds.info.fps,
        "size": ds.info.size,
        "crop_scale": ds.info.crop_scale,
        "codec": ds.info.codec.to_dict(),
        "layout": f"{ds.info.layout.name} ({ds.info.layout.size} channels)",
        "features": sorted((ds.info.audio_features.get("kinds") or {}).keys()),
        "with_audio": sum(1 for r in ds.rows if r.has_audio),
        "without_audio": sum(1 for r in ds.rows if not r.has_audio),
        "identities_per_split": dict(Counter(split for _, split in identity_split)),
        "bytes_on_disk": size,
        "megabytes_on_disk": round(size / 2 ** 20, 1),
        **{f"by_{k}": {name: {"clips": v[0], "seconds": round(v[1], 2), "frames": int(v[2])}
                       for name, v in sorted(table.items())} for k, table in by.items()},
    }


def format_video_summary(summary: dict[str, Any]) -> str:
    d = summary["duration_seconds"]
    lines = [f"{summary['root']}: video dataset, {summary['clips']} clips, {summary['frames']} frames, "
             f"{summary['hours']} h (mean {d['mean']} s, min {d['min']} s, max {d['max']} s), {summary['fps']} fps",
             f"crops: {summary['size']} px, {summary['crop_scale']} face sizes; H.264 {summary['codec']['pix_fmt']} "
             f"crf {summary['codec']['crf']}; {summary['megabytes_on_disk']} MB on disk",
             f"layout {summary['layout']}; audio features: {', '.join(summary['features']) or 'none'}; "
             f"clips with audio {summary['with_audio']}, without {summary['without_audio']}",
             f"identities per split: {summary['identities_per_split']}"]
    for key in ("split", "emotion", "intensity", "identity", "portrait"):
        lines.append(f"by {key}:")
        lines.extend(f"  {name:<24} {v['clips']:>6} clips {v['seconds']:>9.1f} s {v['frames']:>8} frames"
                     for name, v in summary[f"by_{key}"].items())
    lines.append(f"speakers: {len(summary['by_speaker'])}")
    return "\n".join(lines)


def annotate(frame: np.ndarray, box: np.ndarray, text: str = "") -> np.ndarray:
    """A copy of ``frame [S, S, 3]`` with ``box`` (x0, y0, x1, y1) drawn and ``text`` at the bottom."""
    out = np.ascontiguousarray(frame.copy())
    x0, y0, x1, y1 = (int(round(float(v))) for v in box)
    cv2.rectangle(out, (x0, y0), (x1, y1), BOX_COLOUR, 1)
    if text:
        scale = max(out.shape[0] / 400.0, 0.3)
        cv2.putText(out, text, (3, out.shape[0] - 4), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 2, cv2.LINE_AA)
        cv2.putText(out, text, (3, out.shape[0] - 4), cv2.FONT_HERSHEY_SIMPLEX, scale, TEXT_COLOUR, 1, cv2.LINE_AA)
    return out


def preview_video_clip(root: str | Path, clip_id: str, output: str | Path, boxes: bool = True) -> Path:
    """Write clip ``clip_id``'s crops (face box and head speed drawn unless ``boxes`` is False) with its
    audio as ``output`` (.mp4)."""
    from talkinghead.io.audio import Audio
    from talkinghead.io.video import write_video

    output = Path(output)
    if output.suffix.lower() != ".mp4":
        raise TalkingHeadError(f"The preview {output} should end in .mp4.")
    ds = VideoDataset(root)
    clip = ds.clip(clip_id)
    frames = ds.frames(clip_id)
    if boxes:
        frames = np.stack([annotate(f, b, f"{s:.2f} deg/f") for f, b, s in zip(frames, clip.box, clip.speed,
                                                                               strict=True)])
    audio = Audio(np.asarray(clip.audio, np.float32)) if len(clip.audio) else None
    write_video(output, frames, ds.info.fps, audio=audio)
    return output


def pick_clips(root: str | Path, split: str, count: int, seed: int = 0) -> list[str]:
    """``count`` clips of ``split`` spread over its identities (one per identity in a seeded order, then a
    second round, ...), sorted by id."""
    ds = VideoDataset(root)
    by_identity: dict[str, list[str]] = defaultdict(list)
    for clip_id in ds.ids(split):
        by_identity[ds.meta(clip_id).identity].append(clip_id)
    if not by_identity:
        raise TalkingHeadError(f"The split '{split}' of {root} has no clips.")
    rng = np.random.default_rng(seed)
    names = [sorted(by_identity)[i] for i in rng.permutation(len(by_identity))]
    pools = {n: [by_identity[n][i] for i in rng.permutation(len(by_identity[n]))] for n in names}
    chosen: list[str] = []
    while len(chosen) < count and any(pools.values()):
        for name in names:
            if pools[name] and len(chosen) < count:
                chosen.append(pools[name].pop())
    return sorted(chosen)


def contact_sheet(root: str | Path, clip_ids: list[str], output: str | Path, columns: int = 6,
                  title: str = "") -> Path:
    """One PNG: a row per clip (``columns`` frames evenly spread, face boxes drawn; the clip's id, split,
    identity, emotion and intensity above it; each frame's index and head speed on it)."""
    from PIL import Image

    if not clip_ids:
        raise TalkingHeadError("Name at least one clip for the contact sheet.")
    output = Path(output)
    if output.suffix.lower() != ".png":
        raise TalkingHeadError(f"The contact sheet {output} should end in .png.")
    ds = VideoDataset(root)
    size = ds.info.size
    tile = max(size, 128)
    rows = []
    if title:
        rows.append(_caption(title, tile * columns, 22))
    for clip_id in clip_ids:
        meta = ds.meta(clip_id)
        clip = ds.clip(clip_id, audio=False)
        picks = np.unique(np.linspace(0, meta.num_frames - 1, columns).round().astype(int))
        frames = ds.frames(clip_id, picks)
        tiles = []
        for k, f in zip(picks, frames, strict=True):
            scaled = cv2.resize(f, (tile, tile), interpolation=cv2.INTER_NEAREST) if tile != size else f
            tiles.append(annotate(scaled, clip.box[k] * tile / size, f"#{k} {clip.speed[k]:.2f} deg/f"))
        while len(tiles) < columns:
            tiles.append(np.zeros_like(tiles[0]))
        rows.append(_caption(f"{clip_id} | {meta.split} | identity {meta.identity} | {meta.emotion} "
                             f"{meta.intensity} | audio {'yes' if meta.has_audio else 'no'}", tile * columns, 18))
        rows.append(np.concatenate(tiles, axis=1))
    with atomic_path(output) as tmp:
        Image.fromarray(np.concatenate(rows, axis=0)).save(tmp, format="PNG")
    return output


def _caption(text: str, width: int, height: int) -> np.ndarray:
    bar = np.full((height, width, 3), 32, np.uint8)
    cv2.putText(bar, text, (4, height - 6), cv2.FONT_HERSHEY_SIMPLEX, height / 40.0, TEXT_COLOUR, 1, cv2.LINE_AA)
    return bar

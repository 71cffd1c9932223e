"""Does FD2Talk's frame generator draw the mouth it is given? The UNet on the true motion against the true frames.

On ``--clips`` clips of each of a video dataset's ``--splits`` (default train and test: identities the UNet learnt,
and identities never trained on; taken from each identity in turn), each cut to
``--frames`` frames, the frame generator renders the clip's own motion with the clip's first frame as the reference
(as in training). MediaPipe's inner-lip gap (:func:`talkinghead.evaluation.mouth.lip_gap`, crops upscaled to
256 px for the detector) is measured on the generated and on the true frames, and per clip:

- ``r``: Pearson correlation of the two gap tracks (1: the mouth opens and closes where the motion says);
- ``spread``: the generated track's standard deviation over the true one's (1: as much mouth motion);
- ``closed``: the generated track's 5th percentile minus the true one's (0: closes as far).

Prints one JSON line with the medians over each split's clips (and writes it to ``--out`` when given);
``--checkpoint`` is a folder with FD2Talk's frame generator (default: the shipped ``weights/fd2talk``), e.g. one
with another UNet.

    .venv/bin/python scripts/probe_frame_mouth.py --checkpoint weights/fd2talk
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np


def gap_track(frames: np.ndarray) -> np.ndarray:
    """Inner-lip gap ``[T]`` of crops ``[T, S, S, 3]`` (nan where no face is found)."""
    import cv2

    from talkinghead.evaluation.mouth import lip_gap
    from talkinghead.face.landmarks import follow_face

    big = (cv2.resize(f, (256, 256), interpolation=cv2.INTER_CUBIC) for f in frames)
    return np.array([lip_gap(p) if p is not None else math.nan for p in follow_face(big)], np.float64)


def compare(generated: np.ndarray, true: np.ndarray) -> dict[str, float]:
    """``r``, ``spread`` and ``closed`` of two gap tracks (see the module docstring)."""
    from talkinghead.evaluation.mouth import pearson

    ok = np.isfinite(generated) & np.isfinite(true)
    if ok.sum() < 3:
        return {"r": math.nan, "spread": math.nan, "closed": math.nan, "found": float(ok.mean())}
    g, t = generated[ok], true[ok]
    return {"r": pearson(g, t), "spread": float(g.std() / max(t.std(), 1e-9)),
            "closed": float(np.percentile(g, 5) - np.percentile(t, 5)), "found": float(ok.mean())}


def spread_clips(ds: Any, split: str, count: int) -> list[str]:
    """``count`` clips of ``split`` of a video dataset, taken from each identity in turn, spread over its speakers."""
    by_identity: dict[str, list[str]] = {}
    for clip_id in sorted(ds.ids(split)):
        by_identity.setdefault(ds.meta(clip_id).identity, []).append(clip_id)
    lists = [v[::max(len(v) // max(count // len(by_identity) + 1, 1), 1)] for _, v in sorted(by_identity.items())]
    chosen = [v[k] for k in range(max(len(v) for v in lists)) for v in lists if k < len(v)]
    return chosen[:count]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--checkpoint", type=Path, default=None, help="a folder with FD2Talk's frame generator")
    p.add_argument("--video", type=Path, default=Path("/tmp/talkinghead-video/corpus"), help="a video dataset")
    p.add_argument("--splits", nargs="+", default=["train", "test"],
                   help="train: identities the UNet learnt (does it follow the motion?); test: unseen ones")
    p.add_argument("--clips", type=int, default=10)
    p.add_argument("--frames", type=int, default=75)
    p.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = p.parse_args(argv)

    from talkinghead.data.video.format import VideoDataset
    from talkinghead.errors import TalkingHeadError
    from talkinghead.evaluation.frames import fd2talk_frames
    from talkinghead.render.fd2talk.renderer import FD2TalkFrameRenderer

    if not (args.video / "dataset.json").is_file():
        print(f"{args.video} is not a video dataset (make one with scripts/video_corpus.sh).", file=sys.stderr)
        return 2
    try:
        renderer = FD2TalkFrameRenderer.from_pretrained(args.checkpoint)
        ds = VideoDataset(args.video)
    except TalkingHeadError as err:
        print(err, file=sys.stderr)
        return 2
    out: dict[str, Any] = {"checkpoint": str(args.checkpoint or "weights/fd2talk")}
    for split in args.splits:
        rows = []
        for clip_id in spread_clips(ds, split, args.clips):
            clip = ds.clip(clip_id, audio=False)
            n = min(args.frames, len(clip.motion))
            true = ds.frames(clip_id, range(n))
            generated = fd2talk_frames(renderer, true[0], clip.motion.slice(0, n), true.shape[1])
            rows.append(compare(gap_track(generated), gap_track(true)))
            print(f"{clip_id}: " + ", ".join(f"{k} {v:.3f}" for k, v in rows[-1].items()), file=sys.stderr)
        out[split] = {"clips": len(rows), **{k: round(float(np.nanmedian([r[k] for r in rows])), 4)
                                             for k in ("r", "spread", "closed", "found")}}
    print(json.dumps(out))
    if args.out is not None:
        args.out.write_text(json.dumps(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

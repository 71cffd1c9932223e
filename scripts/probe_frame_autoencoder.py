"""How sharp is FD2Talk's frame autoencoder alone? Reconstruction quality of real portraits and of unseen identities.

FD2Talk's frames are ``D([E(reference), J_0])`` (Sec. 3.3): whatever the UNet draws, the decoder bounds its detail.
This probe measures the autoencoder without the UNet, for comparing decoders (e.g. the 800-step one against one
fine-tuned with ``train fd2talk.autoencoder --decoder-only``):

- real portraits (``../shared/realdata`` faces, cut as the video dataset cuts its crops, 128 px): each decoded with
  itself as the reference; PSNR and sharpness (variance of the Laplacian of the face centre, over the photo
  crop's; ``scripts/identity_real.py``'s measure), over all portraits and over those no training split shows;
- the video dataset's ``--split`` (default test: identities never trained on): ``--frames`` frames, each decoded
  with its clip's first frame as the reference (as at inference); PSNR, SSIM and sharpness.

Prints one JSON line; ``--sheet PNG`` writes the portraits (top) over their reconstructions (bottom).

    .venv/bin/python scripts/probe_frame_autoencoder.py --autoencoder weights/fd2talk/autoencoder
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from identity_real import DEFAULT_DATA, face_crop, sharpness  # noqa: E402


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two uint8 images."""
    return float(10 * np.log10(255.0 ** 2 / max(np.mean((a.astype(float) - b.astype(float)) ** 2), 1e-10)))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--autoencoder", type=Path, required=True, help="a fd2talk.autoencoder checkpoint folder")
    p.add_argument("--realdata", type=Path, default=DEFAULT_DATA, help="the real development set (faces/)")
    p.add_argument("--video", type=Path, default=Path("/tmp/talkinghead-video/corpus"), help="a video dataset")
    p.add_argument("--split", default="test")
    p.add_argument("--frames", type=int, default=192)
    p.add_argument("--sheet", type=Path, default=None)
    args = p.parse_args(argv)

    import imageio.v3 as iio
    import torch
    from skimage.metrics import structural_similarity

    from talkinghead.data.video.format import VideoDataset
    from talkinghead.errors import TalkingHeadError
    from talkinghead.face.landmarks import detect_landmarks
    from talkinghead.render.fd2talk.autoencoder import FrameAutoencoder
    from talkinghead.render.fd2talk.perceptual import images_to_tensor, tensor_to_images

    faces = sorted((args.realdata / "faces").glob("*.png"))
    if not faces or not (args.video / "dataset.json").is_file():
        print("Needs the real faces (bash ../shared/realdata/fetch.sh) and a video dataset (--video).", file=sys.stderr)
        return 2
    try:
        ae = FrameAutoencoder.from_pretrained(args.autoencoder).eval()
    except (TalkingHeadError, OSError) as err:
        print(f"{args.autoencoder} holds no FD2Talk autoencoder ({err}).", file=sys.stderr)
        return 2

    def decode(reference: np.ndarray, target: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            ref, tgt = ae.encode(images_to_tensor(reference)), ae.encode(images_to_tensor(target))
            return tensor_to_images(ae.decode(ref, tgt)).numpy()  # type: ignore[no-any-return]

    ds = VideoDataset(args.video)
    trained = {ds.meta(i).portrait for i in ds.ids(None) if ds.meta(i).split == "train"}
    crops = []
    for f in faces:
        image = iio.imread(f)[..., :3]
        crops.append(face_crop(image, detect_landmarks(image).points))
    photos = np.stack(crops)
    rec = decode(photos, photos)
    sharp = [sharpness(r[None]) / sharpness(c[None]) for r, c in zip(rec, photos, strict=True)]
    quality = [psnr(r, c) for r, c in zip(rec, photos, strict=True)]
    unseen = [i for i, f in enumerate(faces) if f.stem not in trained]
    out: dict[str, float | int] = {
        "real_psnr": float(np.mean(quality)), "real_sharpness": float(np.mean(sharp)), "real_unseen": len(unseen),
        "real_unseen_psnr": float(np.mean([quality[i] for i in unseen])) if unseen else float("nan"),
        "real_unseen_sharpness": float(np.mean([sharp[i] for i in unseen])) if unseen else float("nan")}
    rng = np.random.default_rng(0)
    ids = ds.ids(args.split)
    per = args.frames // max(len(ids), 1) + 1
    p_, s_, h_ = [], [], []
    for clip in ids:
        n = ds.meta(clip).num_frames
        idx = sorted(rng.choice(np.arange(1, n), size=min(per, n - 1), replace=False).tolist())
        frames = ds.frames(clip, [0, *idx])
        for a, b in zip(decode(np.repeat(frames[:1], len(idx), 0), frames[1:]), frames[1:], strict=True):
            p_.append(psnr(a, b))
            s_.append(float(structural_similarity(a, b, channel_axis=2, data_range=255)))
            h_.append(sharpness(a[None]) / sharpness(b[None]))
        if len(p_) >= args.frames:
            break
    out.update(split_frames=len(p_), split_psnr=float(np.mean(p_)), split_ssim=float(np.mean(s_)),
               split_sharpness=float(np.mean(h_)))
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in out.items()}))
    if args.sheet is not None:
        pairs = [np.concatenate([c, r], 0) for c, r in zip(photos, rec, strict=True)]
        iio.imwrite(args.sheet, np.concatenate(pairs, 1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

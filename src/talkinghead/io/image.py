"""Image reading: jpg, png, webp, bmp, tiff (via Pillow) to RGB uint8 ``[H, W, 3]``.

Handles grayscale, palette, RGBA/LA (composited on a background colour), 16-bit and float
(rescaled), CMYK (converted) and EXIF orientation (applied). Images above ``MAX_PIXELS`` are
refused with a clear message instead of exhausting memory.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from talkinghead.errors import TalkingHeadError
from talkinghead.io.files import atomic_path

MAX_PIXELS = 64_000_000  # 8000 x 8000
MIN_SIDE = 32


def _to_rgb(img: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img).astype(np.float64)
        lo, hi = (0.0, 65535.0) if img.mode.startswith("I;16") else (float(arr.min()), float(arr.max()))
        if img.mode == "I" and arr.max() <= 65535 and arr.min() >= 0:
            lo, hi = 0.0, 65535.0 if arr.max() > 255 else 255.0
        scaled = np.clip((arr - lo) / max(hi - lo, 1e-12) * 255.0 + 0.5, 0, 255).astype(np.uint8)
        img = Image.fromarray(scaled, mode="L")
    if img.mode == "P":
        img = img.convert("RGBA") if "transparency" in img.info else img.convert("RGB")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        base = Image.new("RGBA", rgba.size, (*background, 255))
        img = Image.alpha_composite(base, rgba)
    return img.convert("RGB")


def load_image(path: str | Path, background: tuple[int, int, int] = (255, 255, 255)) -> np.ndarray:
    """Read an image file as RGB uint8 ``[H, W, 3]`` with EXIF orientation applied."""
    path = Path(path)
    if not path.exists():
        raise TalkingHeadError(f"The image file {path} does not exist.")
    if path.is_dir():
        raise TalkingHeadError(f"{path} is a folder, not an image file.")
    if path.stat().st_size == 0:
        raise TalkingHeadError(f"The image file {path} is empty.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                w, h = img.size
                if w * h > MAX_PIXELS:
                    raise TalkingHeadError(
                        f"{path} is {w}x{h} pixels, above the limit of {MAX_PIXELS // 1_000_000} megapixels; "
                        "resize it first."
                    )
                img.load()
                oriented: Image.Image = ImageOps.exif_transpose(img) or img
                rgb = _to_rgb(oriented, background)
    except TalkingHeadError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise TalkingHeadError(f"{path} is too large to read safely; resize it first.") from err
    except UnidentifiedImageError as err:
        raise TalkingHeadError(f"{path} is not an image file Pillow can read.") from err
    except (OSError, SyntaxError, ValueError) as err:
        raise TalkingHeadError(f"{path} is corrupt or truncated and could not be decoded.") from err
    arr = np.asarray(rgb, dtype=np.uint8)
    if min(arr.shape[:2]) < MIN_SIDE:
        raise TalkingHeadError(f"{path} is {arr.shape[1]}x{arr.shape[0]} pixels, too small for a portrait.")
    return arr


def save_image(path: str | Path, image: np.ndarray) -> Path:
    """Write an RGB uint8 image atomically; the format follows the suffix."""
    path = Path(path)
    with atomic_path(path) as tmp:
        Image.fromarray(np.ascontiguousarray(image)).save(tmp, format=Image.registered_extensions().get(
            path.suffix.lower(), "PNG"))
    return path

"""Image reading: modes, bit depths, EXIF orientation, alpha, size limits, bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from talkinghead.errors import TalkingHeadError
from talkinghead.io import image as image_io
from talkinghead.io.image import load_image, save_image


def _gradient(w: int = 64, h: int = 48) -> np.ndarray:
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0] = np.linspace(0, 255, w, dtype=np.uint8)[None, :]
    img[..., 1] = np.linspace(0, 255, h, dtype=np.uint8)[:, None]
    img[..., 2] = 90
    return img


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp", ".bmp", ".tiff"])
def test_formats(tmp_path: Path, suffix: str) -> None:
    src = _gradient()
    Image.fromarray(src).save(tmp_path / f"i{suffix}", quality=95) if suffix in (".jpg", ".webp") else \
        Image.fromarray(src).save(tmp_path / f"i{suffix}")
    out = load_image(tmp_path / f"i{suffix}")
    assert out.shape == src.shape and out.dtype == np.uint8
    lossless = suffix in (".png", ".bmp", ".tiff")
    assert np.abs(out.astype(int) - src).max() <= (0 if lossless else 12)


def test_grayscale_palette_cmyk(tmp_path: Path) -> None:
    src = _gradient()
    Image.fromarray(src).convert("L").save(tmp_path / "g.png")
    g = load_image(tmp_path / "g.png")
    assert g.shape == (48, 64, 3) and np.all(g[..., 0] == g[..., 1])
    Image.fromarray(src).convert("P").save(tmp_path / "p.png")
    assert load_image(tmp_path / "p.png").shape == (48, 64, 3)
    Image.fromarray(src).convert("CMYK").save(tmp_path / "c.jpg", quality=95)
    c = load_image(tmp_path / "c.jpg")
    assert np.abs(c.astype(int) - src).mean() < 6


def test_rgba_composited_on_background(tmp_path: Path) -> None:
    rgba = np.zeros((40, 40, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[:, :20, 3] = 255  # left half opaque red, right half transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    out = load_image(tmp_path / "a.png", background=(0, 0, 255))
    assert tuple(out[5, 5]) == (255, 0, 0)
    assert tuple(out[5, 35]) == (0, 0, 255)


def test_16_bit(tmp_path: Path) -> None:
    arr = (np.linspace(0, 65535, 64 * 48).reshape(48, 64)).astype(np.uint16)
    Image.fromarray(arr).save(tmp_path / "d.png")
    out = load_image(tmp_path / "d.png")
    assert out[0, 0, 0] == 0 and out[-1, -1, 0] == 255
    assert np.abs(out[..., 0].astype(float) - arr / 257.0).max() <= 1.0


def test_exif_orientation_applied(tmp_path: Path) -> None:
    src = _gradient(64, 48)
    img = Image.fromarray(src)
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    img.save(tmp_path / "r.jpg", exif=exif, quality=95)
    out = load_image(tmp_path / "r.jpg")
    assert out.shape == (64, 48, 3)
    expected = np.rot90(src, k=-1)
    assert np.abs(out.astype(int) - expected).mean() < 4


def test_size_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Image.fromarray(_gradient(200, 200)).save(tmp_path / "big.png")
    monkeypatch.setattr(image_io, "MAX_PIXELS", 100 * 100)
    with pytest.raises(TalkingHeadError, match="above the limit"):
        load_image(tmp_path / "big.png")


def test_bad_images(tmp_path: Path) -> None:
    (tmp_path / "e.png").write_bytes(b"")
    with pytest.raises(TalkingHeadError, match="empty"):
        load_image(tmp_path / "e.png")
    (tmp_path / "t.png").write_text("not an image")
    with pytest.raises(TalkingHeadError, match="not an image"):
        load_image(tmp_path / "t.png")
    Image.fromarray(_gradient(256, 256)).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "trunc.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(TalkingHeadError, match="corrupt or truncated"):
        load_image(tmp_path / "trunc.png")


def test_save_round_trip(tmp_path: Path) -> None:
    src = _gradient()
    save_image(tmp_path / "o.png", src)
    assert np.array_equal(load_image(tmp_path / "o.png"), src)

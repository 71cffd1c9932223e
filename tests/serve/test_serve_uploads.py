"""What a client sends, checked by content: image formats, audio from any container (and its length), style videos,
empty and corrupt files, the limits, the stored names (always the server's), and the choices a model cannot take."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from talkinghead.serve.engine import Engine
from talkinghead.serve.uploads import Refusal, Submission, UploadLimits, accept, store_audio, store_image, store_video

from media_helpers import make_video_file


def encoded(image: np.ndarray, kind: str) -> io.BytesIO:
    out = io.BytesIO()
    Image.fromarray(image).save(out, format=kind)
    out.seek(0)
    return out


def refused(call: Any, status: int) -> str:
    with pytest.raises(Refusal) as info:
        call()
    assert info.value.status == status
    message = str(info.value)
    assert message.endswith(".") and "\n" not in message and "/tmp/" not in message and "upload" not in message
    return message


@pytest.mark.parametrize("kind, suffix", [("PNG", "png"), ("JPEG", "jpg"), ("WEBP", "webp"), ("BMP", "bmp"),
                                          ("TIFF", "tiff")])
def test_images_are_stored_by_what_they_are(kind: str, suffix: str, portrait: np.ndarray, tmp_path: Path) -> None:
    path, image = store_image(encoded(portrait, kind), tmp_path, UploadLimits())
    assert path == tmp_path / f"portrait.{suffix}" and image.shape == portrait.shape and image.dtype == np.uint8
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_images_refused(portrait: np.ndarray, tmp_path: Path) -> None:
    limits = UploadLimits()
    assert "GIF" in refused(lambda: store_image(encoded(portrait, "GIF"), tmp_path, limits), 415)
    refused(lambda: store_image(io.BytesIO(b"%PDF-1.4 not a picture"), tmp_path, limits), 415)
    assert "empty" in refused(lambda: store_image(io.BytesIO(b""), tmp_path, limits), 422)
    truncated = encoded(portrait, "PNG").getvalue()[:5000]
    assert "corrupt" in refused(lambda: store_image(io.BytesIO(truncated), tmp_path, limits), 422)
    assert "too small" in refused(lambda: store_image(encoded(portrait[:20, :20], "PNG"), tmp_path, limits), 422)
    assert "20 MB" in refused(lambda: store_image(io.BytesIO(b"\0" * (21 * 1024 * 1024)), tmp_path, limits), 413)
    huge = Image.new("L", (9000, 8000))
    data = io.BytesIO()
    huge.save(data, format="PNG")
    data.seek(0)
    assert "megapixels" in refused(lambda: store_image(data, tmp_path, limits), 413)


def test_audio_from_any_container_and_its_length(tmp_path: Path) -> None:
    clip = make_video_file(tmp_path / "clip.mp4", num_frames=25)  # 1 s of tone inside an mp4
    (tmp_path / "a").mkdir()
    with open(clip, "rb") as stream:
        path, audio = store_audio(stream, tmp_path / "a", UploadLimits())
    assert path.parent == tmp_path / "a" and path.name.startswith("speech.")
    assert abs(audio.duration - 1.0) < 0.1
    (tmp_path / "b").mkdir()
    with open(clip, "rb") as stream:
        assert refused(lambda: store_audio(stream, tmp_path / "b", UploadLimits(audio_seconds=0.5)), 413) == \
            "The speech is longer than the limit of 0.5 s."
    silent = make_video_file(tmp_path / "silent.mp4", acodec=None)
    with open(silent, "rb") as stream:
        assert refused(lambda: store_audio(stream, tmp_path / "b", UploadLimits()), 415) == \
            "The speech file has no audio track."
    refused(lambda: store_audio(io.BytesIO(b"just some words\n" * 50), tmp_path / "b", UploadLimits()), 415)


def test_style_videos(portrait: np.ndarray, tmp_path: Path) -> None:
    clip = make_video_file(tmp_path / "clip.mp4", num_frames=30)
    with open(clip, "rb") as stream:
        path = store_video(stream, tmp_path, UploadLimits())
    assert path.name.startswith("style.") and path.suffix not in (".png", ".jpg")
    assert "no video track" in refused(lambda: store_video(encoded(portrait, "PNG"), tmp_path, UploadLimits()), 415)
    with open(clip, "rb") as stream:
        refused(lambda: store_video(stream, tmp_path, UploadLimits(audio_seconds=0.5)), 413)


def test_accept_builds_the_request_from_server_names(engine: Engine, portrait: np.ndarray, tmp_path: Path) -> None:
    clip = make_video_file(tmp_path / "clip.mp4", num_frames=30)
    folder = tmp_path / "job"
    folder.mkdir()
    with open(clip, "rb") as style:
        request = accept(Submission({"image": encoded(portrait, "JPEG"), "style_video": style},
                                    {"text": "  Hello.  ", "seed": "7", "steps": "", "head_motion": "0.5",
                                     "size": "512", "cfg_scale": "1.5"}), folder, UploadLimits(), engine)
    assert request.image == folder / "portrait.jpg" and request.text == "Hello." and request.audio is None
    assert request.style_video is not None and request.style_video.parent == folder
    assert (request.config.seed, request.config.steps, request.config.head_motion, request.config.size,
            request.config.cfg_scale) == (7, None, 0.5, 512, 1.5)


@pytest.mark.parametrize("fields, files, sentence", [
    ({"text": "Hi.", "model": "dimitra", "emotion": "happy"}, (), "The 'dimitra' model takes no emotion."),
    ({"text": "Hi.", "seed": "-1"}, (), "The seed must be between 0 and 4294967295, got -1."),
    ({"text": "Hi.", "steps": "5000"}, (), "The number of sampling steps must be between 1 and 1000, got 5000."),
    ({"text": "Hi.", "head_motion": "nan"}, (), "The head-motion scale must be between 0 and 5, got nan."),
    ({"text": "   "}, (), "Give the speech either as an audio file (field 'audio') or as text (field 'text'), exactly "
                           "one of them."),
    ({"text": "Hi.", "renderer": "nope"}, (), "There is no renderer called 'nope'; choose one of: fd2talk, warp."),
])
def test_options_refused_before_any_file_is_read(fields: dict[str, str], files: tuple[str, ...], sentence: str,
                                                 engine: Engine, tmp_path: Path) -> None:
    image = io.BytesIO(b"never read")
    with pytest.raises(Exception) as info:
        accept(Submission({"image": image}, fields), tmp_path, UploadLimits(), engine)
    assert str(info.value) == sentence
    assert image.tell() == 0 and list(tmp_path.iterdir()) == []

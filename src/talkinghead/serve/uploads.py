"""What a client may send, checked before a job is queued: the limits, the form's fields, and the portrait, speech
and style video, each judged by its content and stored in the job's folder under a name the server makes.

- A file's name and declared type are ignored: the portrait must decode as an image (Pillow, then the project's
  :func:`~talkinghead.io.image.load_image`), the speech must hold an audio track FFmpeg decodes (PyAV, then
  :func:`~talkinghead.io.audio.iter_audio` / ``load_audio``), the style video a video track (PyAV,
  :func:`~talkinghead.io.video.probe_video` and its first frame). Stored names are ``portrait.<format>``,
  ``speech.<container>``, ``style.<container>``, the suffix taken from what the content turned out to be.
- Sizes are counted while a file is copied, so an upload above its limit is never held whole; the speech's length
  is counted while it decodes.
- The options are parsed from text (as a form sends them) and checked by the pipeline itself
  (:class:`~talkinghead.pipeline.GenerateConfig`, :func:`~talkinghead.pipeline.read_inputs`) and by the engine (which
  models and renderers exist, and what each can do).

Every refusal is a :class:`Refusal`: one sentence, and the HTTP status that says why: 413 (above a limit), 415 (not
an image, not audio, not a video), 422 (a bad or missing option, a corrupt file).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, BinaryIO

import numpy as np

from talkinghead.config import AT_LEAST_ONE, POSITIVE, SEED, Config
from talkinghead.errors import TalkingHeadError
from talkinghead.serve.engine import Request

MB = 1024 * 1024
CHUNK = 1 << 16

FILE_FIELDS = ("image", "audio", "style_video")
TEXT_FIELDS = ("text", "model", "renderer", "emotion", "intensity", "head_motion", "steps", "cfg_scale", "seed",
               "size", "transcript")
FIELDS = FILE_FIELDS + TEXT_FIELDS

# Pillow's format names of the images the project reads (docs/contracts.md, Media) and the suffix each is stored with
IMAGE_FORMATS = {"PNG": "png", "JPEG": "jpg", "MPO": "jpg", "WEBP": "webp", "BMP": "bmp", "TIFF": "tiff"}
IMAGE_KINDS = "PNG, JPEG, WebP, BMP or TIFF"


@dataclass(frozen=True)
class UploadLimits(Config):
    """The largest uploads the server takes: the portrait (``image_mb``), the speech (``audio_mb`` and
    ``audio_seconds``), the style video (``video_mb``; no longer than ``audio_seconds`` either), and the text to speak
    or the transcript (``text_chars`` characters)."""

    image_mb: Annotated[float, POSITIVE] = 20.0
    audio_mb: Annotated[float, POSITIVE] = 50.0
    audio_seconds: Annotated[float, POSITIVE] = 120.0
    video_mb: Annotated[float, POSITIVE] = 50.0
    text_chars: Annotated[int, AT_LEAST_ONE] = 2000

    @property
    def request_bytes(self) -> int:
        """The largest request body: every file at its limit, and 1 MB for the fields and the form's framing."""
        return int((self.image_mb + self.audio_mb + self.video_mb + 1) * MB)

    @property
    def largest_file_mb(self) -> float:
        return max(self.image_mb, self.audio_mb, self.video_mb)


class Refusal(TalkingHeadError):
    """A request the server will not run: one sentence and its HTTP ``status`` (413, 415 or 422)."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Submission:
    """What a client sent, before any check: ``files`` (field name -> a binary stream; its filename is never read)
    and ``fields`` (field name -> text, as a form sends it; an empty text counts as not given)."""

    files: dict[str, BinaryIO] = field(default_factory=dict)
    fields: dict[str, str] = field(default_factory=dict)


def _mb(value: float) -> str:
    return f"{value:g} MB"


# ------------------------------------------------------------------------------------------------ files

def copy_limited(stream: BinaryIO, path: Path, limit_mb: float, what: str) -> int:
    """Copy ``stream`` to ``path`` counting bytes; above ``limit_mb`` the copy is removed and refused (413); an empty
    file is refused (422). The number of bytes."""
    limit = int(limit_mb * MB)
    size = 0
    with open(path, "wb") as out:
        while chunk := stream.read(CHUNK):
            size += len(chunk)
            if size > limit:
                break
            out.write(chunk)
    if size > limit:
        path.unlink()
        raise Refusal(f"{what} is larger than the limit of {_mb(limit_mb)}.", 413)
    if size == 0:
        path.unlink()
        raise Refusal(f"{what} is an empty file.")
    return size


def _reworded(err: TalkingHeadError, path: Path, what: str, status: int = 422) -> Refusal:
    """A loader's sentence about ``path`` as a sentence about ``what`` (the client never sees a server path)."""
    return Refusal(str(err).replace(str(path), what), status)


def _container(path: Path, what: str, track: str) -> str:
    """The FFmpeg container of ``path`` when it has a ``track`` ("audio" or "video") stream (415 otherwise); its
    name as a stored suffix."""
    import av

    try:
        with av.open(str(path)) as container:
            name = str(container.format.name)
            streams = container.streams.audio if track == "audio" else container.streams.video
            has_track = bool(streams) and not (track == "video" and (name.endswith("_pipe") or name == "image2"))
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as err:
        raise Refusal(f"{what} is not an {track} file FFmpeg can read.", 415) from err
    if not has_track:
        raise Refusal(f"{what} has no {track} track.", 415)
    return re.sub(r"[^a-z0-9]", "", name.split(",")[0].lower())[:8] or "bin"


def store_image(stream: BinaryIO, folder: Path, limits: UploadLimits) -> tuple[Path, np.ndarray]:
    """The portrait, stored as ``portrait.<format>`` and decoded (RGB uint8 ``[H, W, 3]``)."""
    import warnings

    from PIL import Image

    from talkinghead.io.image import MAX_PIXELS, load_image

    what = "The portrait"
    raw = folder / "portrait.upload"
    copy_limited(stream, raw, limits.image_mb, what)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(raw) as img:
                kind, (width, height) = str(img.format), img.size
    except Image.DecompressionBombError as err:
        raise Refusal(f"{what} has too many pixels to read safely.", 413) from err
    except Exception as err:  # Pillow raises many kinds for data that is no image
        raise Refusal(f"{what} is not an image ({IMAGE_KINDS}).", 415) from err
    if kind not in IMAGE_FORMATS:
        raise Refusal(f"{what} is a {kind} image; send {IMAGE_KINDS}.", 415)
    if width * height > MAX_PIXELS:
        raise Refusal(f"{what} is {width}x{height} pixels, above the limit of {MAX_PIXELS // 1_000_000} megapixels.",
                      413)
    path = raw.rename(folder / f"portrait.{IMAGE_FORMATS[kind]}")
    try:
        return path, load_image(path)
    except TalkingHeadError as err:
        raise _reworded(err, path, what) from err


def store_audio(stream: BinaryIO, folder: Path, limits: UploadLimits) -> tuple[Path, Any]:
    """The speech, stored as ``speech.<container>``, its length counted while decoding (413 above
    ``audio_seconds``); the decoded :class:`~talkinghead.io.audio.Audio`."""
    from talkinghead.io.audio import SAMPLE_RATE, iter_audio, join_audio

    what = "The speech file"
    raw = folder / "speech.upload"
    copy_limited(stream, raw, limits.audio_mb, what)
    path = raw.rename(folder / f"speech.{_container(raw, what, 'audio')}")
    limit = limits.audio_seconds * SAMPLE_RATE
    try:
        blocks, count = [], 0
        for block in iter_audio(path):  # decoded once, its length counted as it comes
            count += len(block)
            if count > limit:
                raise Refusal(f"The speech is longer than the limit of {limits.audio_seconds:g} s.", 413)
            blocks.append(block)
        return path, join_audio(blocks, path)
    except Refusal:
        raise
    except TalkingHeadError as err:
        raise _reworded(err, path, what) from err


def store_video(stream: BinaryIO, folder: Path, limits: UploadLimits) -> Path:
    """The style video, stored as ``style.<container>``; refused when it is no video, longer than
    ``audio_seconds``, or its first frame does not decode."""
    from talkinghead.io.video import iter_frames, probe_video

    what = "The style video"
    raw = folder / "style.upload"
    copy_limited(stream, raw, limits.video_mb, what)
    path = raw.rename(folder / f"style.{_container(raw, what, 'video')}")
    try:
        info = probe_video(path)
        if info.duration > limits.audio_seconds:
            raise Refusal(f"{what} is longer than the limit of {limits.audio_seconds:g} s.", 413)
        for _ in iter_frames(path):  # the first frame decodes (the generator closes the file when dropped)
            break
    except Refusal:
        raise
    except TalkingHeadError as err:
        raise _reworded(err, path, what) from err
    return path


# ----------------------------------------------------------------------------------------------- fields

def _given(fields: Mapping[str, str], name: str) -> str | None:
    value = fields.get(name)
    return value.strip() if value is not None and value.strip() else None


def _parsed(fields: Mapping[str, str], name: str, cast: Any, noun: str) -> Any:
    text = _given(fields, name)
    if text is None:
        return None
    try:
        return cast(text)
    except ValueError:
        raise Refusal(f"The field '{name}' must be {noun}, got '{text[:40]}'.") from None


def _integer(fields: Mapping[str, str], name: str) -> int | None:
    return _parsed(fields, name, int, "a whole number")  # type: ignore[no-any-return]


def _number(fields: Mapping[str, str], name: str) -> float | None:
    return _parsed(fields, name, float, "a number")  # type: ignore[no-any-return]


def check_form(submission: Submission) -> None:
    """Every field known, files and texts where each belongs, a portrait, and exactly one speech."""
    names = [*submission.files, *submission.fields]
    unknown = next((n for n in names if n not in FIELDS), None)
    if unknown is not None:
        raise Refusal(f"The form has an unknown field '{unknown[:40]}'; the fields are: {', '.join(FIELDS)}.")
    misplaced = next((n for n in submission.files if n not in FILE_FIELDS), None)
    if misplaced is not None:
        raise Refusal(f"The field '{misplaced}' takes text, not a file.")
    misplaced = next((n for n in submission.fields if n in FILE_FIELDS and submission.fields[n]), None)
    if misplaced is not None:
        raise Refusal(f"The field '{misplaced}' takes a file upload, not text.")
    if "image" not in submission.files:
        raise Refusal("A portrait is needed: send it as the file field 'image'.")
    if ("audio" in submission.files) == (_given(submission.fields, "text") is not None):
        raise Refusal("Give the speech either as an audio file (field 'audio') or as text (field 'text'), exactly "
                      "one of them.")


def _text(fields: Mapping[str, str], name: str, limits: UploadLimits, what: str) -> str | None:
    text = _given(fields, name)
    if text is not None and len(text) > limits.text_chars:
        raise Refusal(f"{what} is {len(text)} characters long, above the limit of {limits.text_chars}.", 413)
    return text


def accept(submission: Submission, folder: Path, limits: UploadLimits, engine: Any) -> Request:
    """Check a submission and store its files in ``folder``: the job's :class:`Request`, or one :class:`Refusal`
    (the fields are checked before any file is read). ``engine`` checks the model and renderer choices
    (:meth:`talkinghead.serve.engine.Engine.check_choice`)."""
    from talkinghead.audio.tts import EMOTIONS
    from talkinghead.io.audio import Audio
    from talkinghead.pipeline import GenerateConfig, GenerateInputs, read_inputs

    check_form(submission)
    fields = submission.fields
    text = _text(fields, "text", limits, "The text")
    transcript = _text(fields, "transcript", limits, "The transcript")
    emotion = _given(fields, "emotion")
    if emotion is not None and emotion not in EMOTIONS:
        raise Refusal(f"There is no emotion '{emotion[:40]}'; choose one of: {', '.join(EMOTIONS)}.")
    seed = _integer(fields, "seed")
    if seed is not None:
        SEED.check(seed, "The seed")
    head_motion, size = _number(fields, "head_motion"), _integer(fields, "size")
    config = GenerateConfig(steps=_integer(fields, "steps"), cfg_scale=_number(fields, "cfg_scale"), seed=seed or 0,
                            head_motion=1.0 if head_motion is None else head_motion, size=size or 256)
    model, renderer = _given(fields, "model"), _given(fields, "renderer")
    engine.check_choice(model, renderer, emotion=emotion is not None, style_video="style_video" in submission.files)
    intensity = _integer(fields, "intensity")

    image_path, image = store_image(submission.files["image"], folder, limits)
    audio_path, audio = None, Audio(np.zeros(16_000, np.float32))  # text: the pipeline speaks it when the job runs
    if "audio" in submission.files:
        audio_path, audio = store_audio(submission.files["audio"], folder, limits)
    style_video = store_video(submission.files["style_video"], folder, limits) if "style_video" in submission.files \
        else None
    read_inputs(GenerateInputs(image, audio, None, style_video, emotion, intensity), None)  # the pipeline's checks
    return Request(image_path, audio_path, text, style_video, emotion, intensity, transcript, model, renderer, config)


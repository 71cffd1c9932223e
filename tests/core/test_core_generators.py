"""The generator interface (issue 11): a toy motion generator and a toy video generator, registered here,
run through ``generate`` (CLI), the Python API and ``evaluate`` without any change to those; manifests,
the registry, ``talkinghead models``; one reverse-diffusion loop; a pipeline that names no paper."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from talkinghead import api
from talkinghead.cli import main
from talkinghead.errors import TalkingHeadError
from talkinghead.generators import (
    REGISTRY,
    Conditions,
    MotionGenerator,
    MotionOutput,
    Renderer,
    VideoGenerator,
    VideoOutput,
    generator_name,
    load,
    register,
    write_manifest,
)
from talkinghead.io.audio import Audio, save_wav
from talkinghead.io.video import probe_video
from talkinghead.sequence import MotionSequence

SRC = Path(__file__).resolve().parents[2] / "src" / "talkinghead"
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "evaluation"))
from sync_helpers import write_dataset  # noqa: E402


def envelope(conditions: Conditions) -> np.ndarray:
    """RMS of the audio per video frame ``[T]``, scaled to about [0, 1]."""
    hop = 16_000 // 25
    samples = np.resize(conditions.audio.samples, conditions.num_frames * hop).reshape(-1, hop)
    rms = np.sqrt((samples.astype(np.float64) ** 2).mean(1))
    return (rms / max(rms.max(), 1e-8)).astype(np.float32)


class ToyMotion:
    """jawOpen follows the loudness (times a gain read from its folder); the head is still."""

    kind: ClassVar[str] = "motion"
    name: ClassVar[str] = "toy-motion"
    capabilities: ClassVar[tuple[str, ...]] = ()

    def __init__(self, gain: float) -> None:
        self.gain = gain

    @classmethod
    def from_pretrained(cls, directory: str | Path | None = None) -> ToyMotion:
        gain = json.loads((Path(directory) / "gain.json").read_text())["gain"] if directory else 0.5
        return cls(float(gain))

    def generate(self, conditions: Conditions) -> MotionOutput:
        from talkinghead.face.model import ARKIT_LAYOUT

        jaw = self.gain * envelope(conditions)
        expression = np.zeros((len(jaw), ARKIT_LAYOUT.size), np.float32)
        expression[:, ARKIT_LAYOUT.channels.index("jawOpen")] = jaw
        pose = np.repeat(np.asarray(conditions.portrait.pose, np.float32)[None], len(jaw), 0)
        motion = MotionSequence(expression, pose, ARKIT_LAYOUT, conditions.fps, conditions.portrait.identity, "toy")
        return MotionOutput(motion, pose_generated=False, source="toy:loudness")


class ToyVideo:
    """Frames straight from the audio: the portrait (grey without one) with a dark bar that grows with
    the loudness (no motion coefficients)."""

    kind: ClassVar[str] = "video"
    name: ClassVar[str] = "toy-video"
    capabilities: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def from_pretrained(cls, directory: str | Path | None = None) -> ToyVideo:
        return cls()

    def generate(self, conditions: Conditions, size: int) -> VideoOutput:
        import cv2

        image = conditions.portrait.image
        base = np.full((size, size, 3), 128, np.uint8) if image is None else image
        env = envelope(conditions)

        def frames() -> Iterator[np.ndarray]:
            for level in env:
                frame = base.copy()
                h, w = frame.shape[:2]
                cv2.rectangle(frame, (w // 3, h // 2), (2 * w // 3, h // 2 + int(level * h / 8) + 1), (20, 10, 10), -1)
                yield frame

        return VideoOutput(frames(), len(env), conditions.fps, "toy:bar")


@pytest.fixture(scope="module", autouse=True)
def toys() -> Iterator[None]:
    register("toy-motion", "motion", ToyMotion, "test: jaw follows loudness")
    register("toy-video", "video", ToyVideo, "test: frames from loudness")
    yield
    REGISTRY.pop("toy-motion", None)
    REGISTRY.pop("toy-video", None)


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> Path:
    t = np.arange(int(1.2 * 16_000)) / 16_000
    wave = np.sin(2 * np.pi * 150 * t) * np.clip(np.sin(2 * np.pi * 3 * t), 0, None)
    return save_wav(tmp_path_factory.mktemp("speech") / "s.wav", Audio((0.3 * wave).astype(np.float32)))


@pytest.fixture(scope="module")
def portrait(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from skimage import data

    from talkinghead.io.image import save_image

    return save_image(tmp_path_factory.mktemp("img") / "p.png", data.astronaut())


@pytest.fixture(scope="module")
def toy_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("toy")
    (folder / "gain.json").write_text(json.dumps({"gain": 0.8}))
    write_manifest(folder, "toy-motion", {"gain": "gain.json"})
    return folder


def test_protocols_and_manifest(toy_checkpoint: Path, tmp_path: Path) -> None:
    from talkinghead.render.warp_renderer import WarpFrameRenderer

    assert isinstance(ToyMotion(1.0), MotionGenerator) and isinstance(ToyVideo(), VideoGenerator)
    assert isinstance(WarpFrameRenderer(), Renderer)
    assert generator_name(toy_checkpoint) == "toy-motion"
    assert isinstance(load(toy_checkpoint), ToyMotion) and load(toy_checkpoint).gain == 0.8
    (tmp_path / "talkinghead.json").write_text(json.dumps({"version": 1, "generator": "nobody"}))
    with pytest.raises(TalkingHeadError, match="no motion generator or video generator called 'nobody'"):
        load(tmp_path)
    (tmp_path / "talkinghead.json").write_text("{not json")
    with pytest.raises(TalkingHeadError, match="not readable JSON"):
        load(tmp_path)


def test_shipped_weights_say_what_they_are() -> None:
    from talkinghead.generators import read_manifest, weights_root

    manifest = read_manifest(weights_root() / "dreamtalk")
    assert manifest is not None and manifest["generator"] == "dreamtalk" and manifest["kind"] == "motion"
    assert all((weights_root() / "dreamtalk" / p).exists() for p in manifest["components"].values())


def test_toy_motion_generator_through_the_cli_and_api(toy_checkpoint: Path, speech: Path, portrait: Path,
                                                      tmp_path: Path) -> None:
    out = tmp_path / "toy.mp4"
    assert main(["generate", "--image", str(portrait), "--audio", str(speech), "--checkpoint", str(toy_checkpoint),
                 "-o", str(out), "--save-motion", str(tmp_path / "m.npz")]) == 0
    assert probe_video(out).num_frames == 30
    motion = MotionSequence.load(tmp_path / "m.npz")
    jaw = motion.channel("jawOpen")
    assert jaw.max() == pytest.approx(0.8, abs=1e-5) and jaw.min() < 0.1     # the gain of its folder
    result = api.generate_motion(portrait, speech, model="toy-motion")          # registry name, no weights
    assert result.motion is not None and result.motion.channel("jawOpen").max() == pytest.approx(0.5, abs=1e-5)
    assert result.style is None and result.style_source == "toy:loudness"


def test_toy_video_generator_through_the_cli_and_api(speech: Path, portrait: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "video.mp4"
    result = api.generate(portrait, speech, model="toy-video", output=out)
    assert result.motion is None and result.num_frames == 30
    info = probe_video(out)
    assert info.num_frames == 30 and info.has_audio and (info.width, info.height) == (512, 512)
    assert main(["generate", "--image", str(portrait), "--audio", str(speech), "--model", "toy-video",
                 "--save-motion", str(tmp_path / "m.npz"), "-o", str(tmp_path / "x.mp4")]) == 2
    assert "makes frames, not motion" in capsys.readouterr().err
    assert not (tmp_path / "x.mp4").exists()
    with pytest.raises(TalkingHeadError, match="takes no renderer"):
        api.generate(portrait, speech, model="toy-video", renderer="warp", output=tmp_path / "y.mp4")


def test_toys_through_evaluate(toy_checkpoint: Path, tmp_path: Path) -> None:
    from talkinghead.data.speakers import base_identity
    from talkinghead.evaluation.evaluate import EvaluateConfig, GeneratorMethod, Judges, evaluate, parse_baselines
    from talkinghead.face.model import ARKIT_LAYOUT
    from talkinghead.generators import load_named

    identity = {k: np.array(v) for k, v in base_identity().items()}
    data = write_dataset(tmp_path / "ds", ARKIT_LAYOUT, identity, {"train": 2, "val": 1, "test": 2}, frames=30,
                         mouth=("jawOpen", "mouthFunnel"))
    methods: list[Any] = parse_baselines(["gt", f"toy motion={toy_checkpoint}"])
    methods.append(GeneratorMethod("toy video", load_named("toy-video"), style="none"))
    report = evaluate(data, methods, tmp_path / "report", EvaluateConfig.preset("tiny", video_clips=2),
                      judges=Judges())
    rows = report.results
    assert rows["toy motion"]["E-FID"] >= 0 and "M-LMD" in rows["toy motion"]      # motion metrics
    assert "E-FID" not in rows["toy video"] and "M-LMD" not in rows["toy video"]   # no motion: none
    for row in ("Ground truth", "toy motion", "toy video"):
        assert np.isfinite(rows[row]["SSIM"]) and rows[row]["PSNR"] > 0            # video metrics always
    assert rows["Ground truth"]["SSIM"] == pytest.approx(1.0)
    assert rows["toy video"]["SSIM"] < rows["toy motion"]["SSIM"]                  # a grey frame is far off


def test_models_command_lists_the_registry(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["dreamtalk"]["kind"] == "motion" and rows["dreamtalk"]["ready"] and rows["dreamtalk"]["default"]
    assert rows["warp"]["kind"] == "renderer" and rows["warp"]["ready"]
    assert rows["toy-video"]["kind"] == "video"
    assert main(["models"]) == 0 and "dreamtalk *" in capsys.readouterr().out


def test_one_reverse_diffusion_loop_and_a_paper_free_pipeline() -> None:
    steps = [p.relative_to(SRC).as_posix() for p in SRC.rglob("*.py") if ".step(" in p.read_text()
             and re.search(r"scheduler\w*\.step\(", p.read_text())]
    assert steps == ["diffusion/samplers.py"]
    pipeline = (SRC / "pipeline.py").read_text()
    assert not re.search(r"\b(dreamtalk|dimitra|fd2talk|emo|dice(-talk)?|warp)\b", pipeline, re.IGNORECASE)

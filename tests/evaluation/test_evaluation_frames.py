"""``evaluate-frames``: frame generators on a video dataset in FD2Talk's Table 1 layout, and self-reenactment."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from talkinghead.cli import main
from talkinghead.data.video.build import VideoCorpusConfig, build_video_corpus
from talkinghead.data.video.format import VideoDataset
from talkinghead.errors import TalkingHeadError
from talkinghead.evaluation.frames import (
    DEFAULT_ROWS,
    FACE_NET_FD,
    HELD_ROW,
    FrameRow,
    cell,
    cut_clip,
    evaluate_frames,
    load_feature_network,
    parse_row,
    parse_rows,
    reenact_warp,
    self_reenactment,
)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def video(make_corpus: Callable[..., Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny video corpus: two test clips (speaker s000 on the mirrored astronaut), two train clips."""
    from PIL import Image
    from skimage import data

    portraits = tmp_path_factory.mktemp("portraits")
    Image.fromarray(np.ascontiguousarray(data.astronaut()[:, ::-1])).save(portraits / "mirror.png")
    out = tmp_path_factory.mktemp("frames") / "corpus"
    build_video_corpus(make_corpus("tiny", "frames_motion"), portraits, out, VideoCorpusConfig.preset("tiny"))
    return out


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Untrained tiny models: the perceptual network, FD2Talk's frame generator (also saved as a folder) and a
    DreamTalk denoiser reading the corpus's energy feature."""
    import torch

    from talkinghead.face.model import ARKIT_LAYOUT
    from talkinghead.motion.dreamtalk import DenoiserConfig, DreamTalkDenoiser
    from talkinghead.render.fd2talk.autoencoder import AutoencoderConfig, FrameAutoencoder
    from talkinghead.render.fd2talk.perceptual import FacePerceptualNet, PerceptualConfig
    from talkinghead.render.fd2talk.renderer import FD2TalkFrameRenderer, FrameSampling
    from talkinghead.render.fd2talk.unet import FrameUNet, UNetConfig

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("models")
    ae = FrameAutoencoder(AutoencoderConfig.preset("tiny", image_size=128))
    unet = FrameUNet(UNetConfig.preset("tiny", latent_size=128 // ae.factor, motion_dim=ARKIT_LAYOUT.size + 6))
    ae.save_pretrained(root / "unet_folder" / "autoencoder")
    unet.save_pretrained(root / "unet_folder" / "unet", extra={"crop_scale": 2.0})
    net = FacePerceptualNet(PerceptualConfig.preset("tiny"))
    net.save_pretrained(root / "perceptual")
    den = DreamTalkDenoiser(DenoiserConfig.preset("tiny", audio_dim=1, expression_dim=ARKIT_LAYOUT.size, window=2),
                            layout=ARKIT_LAYOUT.to_dict(), audio_features={"names": ["energy"], "dims": [1]})
    den.save_pretrained(root / "dreamtalk" / "denoiser")
    return {"renderer": FD2TalkFrameRenderer(ae, unet, crop_scale=2.0, sampling=FrameSampling.preset("tiny")),
            "perceptual": net, "root": root}


def test_ground_truth_warp_reproduces_the_dataset(video: Path, models: dict[str, Any], tmp_path: Path) -> None:
    rows: list[str | FrameRow] = ["Ground truth=dataset", "Static=static", "GT + warp=ground-truth+warp",
                                  FrameRow("GT + UNet", "ground-truth", models["renderer"]),
                                  f"Tiny DreamTalk + warp={models['root'] / 'dreamtalk'}+warp"]
    report = evaluate_frames(video, rows, tmp_path, max_clips=1, max_frames=12, perceptual=models["perceptual"])
    table = report.tables[0]
    gt, static, warp = table.results["Ground truth"], table.results["Static"], table.results["GT + warp"]
    assert table.clips == 1 and table.frames == 12
    # the corpus's renderer on the clip's own motion: the dataset frames up to H.264 coding
    assert warp["PSNR"] > 30 and warp["SSIM"] > 0.95
    assert static["PSNR"] < warp["PSNR"] - 5 and static["SSIM"] < warp["SSIM"]
    assert warp[FACE_NET_FD] < static[FACE_NET_FD]
    # the ground-truth row is the image columns' reference; the static row has no motion
    assert gt.get("PSNR") is None and gt.get(FACE_NET_FD) is None and gt["LSE-C"] == pytest.approx(warp["LSE-C"])
    assert static.get("LSE-C") is None and static.get("Diversity") is None and static["LSE-C (video)"] is not None
    assert table.results["GT + UNet"]["PSNR"] is not None
    assert table.results["Tiny DreamTalk + warp"]["LSE-D"] is not None
    saved = json.loads((tmp_path / "report.json").read_text())
    assert list(saved["tables"][0]["rows"]) == ["Ground truth", "Static", "GT + warp", "GT + UNet",
                                                 "Tiny DreamTalk + warp"]
    text = (tmp_path / "report.md").read_text()
    assert "| GT + warp |" in text and "PSNR ↑" in text and f"{FACE_NET_FD} ↓" in text and "not FID" in text


def test_frechet_substitute_is_zero_for_identical_frames(video: Path, models: dict[str, Any]) -> None:
    net = load_feature_network(models["perceptual"])
    assert net is not None and net.name == FACE_NET_FD
    data = VideoDataset(video)
    a, b = data.frames(data.ids("test")[0], range(12)), data.frames(data.ids("train")[0], range(12))
    assert net.distance(a, a) == pytest.approx(0.0, abs=1e-6)
    assert net.distance(a, b) > 1e-3


def test_row_spelling() -> None:
    assert parse_row("GT=dataset") == FrameRow("GT", "ground-truth", "dataset")
    assert parse_row("Still = static") == FrameRow("Still", None, "static")
    assert parse_row("DreamTalk + warp=dreamtalk+warp") == FrameRow("DreamTalk + warp", "dreamtalk", "warp")
    assert parse_row("x=gt+fd2talk").motion == "ground-truth"
    assert [r.name for r in parse_rows(DEFAULT_ROWS)] == ["Ground truth", "Static", "DreamTalk + warp",
                                                          "FD2Talk (DiTs + UNet)"]
    for bad in ("dataset", "=dataset", "x=warp", "x=+warp", "x=nobody+warp", "x=ground-truth+paint",
                "x=dreamtalk+dataset", "x=dreamtalk+static", "x=./no/such/folder+warp"):
        with pytest.raises(TalkingHeadError):
            parse_row(bad)
    with pytest.raises(TalkingHeadError, match="same name"):
        parse_rows(["a=dataset", "a=static"])


def test_bad_input_is_one_sentence(video: Path, tmp_path: Path) -> None:
    with pytest.raises(TalkingHeadError, match="does not exist"):
        evaluate_frames(tmp_path / "missing", ["GT=dataset"], None)
    with pytest.raises(TalkingHeadError, match="no clips with audio"):
        evaluate_frames(video, ["GT=dataset"], None, split="val")
    with pytest.raises(TalkingHeadError, match="at least 5 frames"):
        evaluate_frames(video, ["GT=dataset"], None, max_frames=2)


def test_self_reenactment_lines_up_with_the_real_frames(video: Path, models: dict[str, Any]) -> None:
    from talkinghead.evaluation.frames import _crop_mesh

    data = VideoDataset(video)
    clip_id = data.ids("test")[0]
    clip = cut_clip(data.clip(clip_id), 3)
    frames, mesh = data.frames(clip_id, range(3)), _crop_mesh(clip, 128)
    # the first frame driven by its own face is the first frame, pixel for pixel
    crops = np.asarray(clip.crop, np.float64)[[0, 0]]
    assert np.array_equal(next(reenact_warp(frames[[0, 0]], mesh[[0, 0]], crops)), frames[0])
    table = self_reenactment(video, None, {"Warp": "warp", "UNet": models["renderer"]}, max_frames=40,
                             perceptual=models["perceptual"])
    held, warp = table.results[HELD_ROW], table.results["Warp"]
    assert table.clips == 2 and table.frames == 2 * 39
    assert warp["PSNR"] > held["PSNR"] and warp["SSIM"] > held["SSIM"] > 0.5
    assert table.results["UNet"]["SSIM"] is not None


def test_cli_end_to_end(video: Path, models: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
                        ) -> None:
    out = tmp_path / "report"
    code = main(["evaluate-frames", "--data", str(video), "--output", str(out), "--row", "Ground truth=dataset",
                 "--row", "GT + warp=ground-truth+warp", "--row", f"UNet=ground-truth+{models['root'] / 'unet_folder'}",
                 "--max-clips", "1", "--max-frames", "6", "--perceptual", str(models["root"] / "perceptual"),
                 "--self-reenactment", str(video)])
    assert code == 0
    saved = json.loads((out / "report.json").read_text())
    assert [list(t["rows"]) for t in saved["tables"]] == [["Ground truth", "GT + warp", "UNet"],
                                                          [HELD_ROW, "Warp", "FD2Talk UNet (" +
                                                           str(models["root"] / "unet_folder") + ")"]]
    assert "evaluated 3 row(s)" in capsys.readouterr().out
    assert main(["evaluate-frames", "--data", str(tmp_path / "missing"), "--output", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "does not exist" in err and len(err.splitlines()) == 1


def test_cells_have_three_significant_digits() -> None:
    assert [cell(v) for v in (42.2984, 0.98852, 0.0051987, 1234.5, 0.0, None, float("inf"))] == \
        ["42.3", "0.989", "0.00520", "1234", "0", "–", "∞"]


# ------------------------------------------------------------------------------------------- Emo-Score (DICE-Talk)

class _Meta:
    def __init__(self, emotion: str, identity: str) -> None:
        self.emotion, self.identity = emotion, identity


class _Clips:
    """A stand-in for a video dataset's manifest: ``meta(id)`` and ``root``."""

    root = Path("fake")

    def __init__(self, rows: dict[str, tuple[str, str]]) -> None:
        self.rows = rows

    def meta(self, clip_id: str) -> _Meta:
        return _Meta(*self.rows[clip_id])


def test_clips_taken_in_turn_over_the_emotions_and_partners_of_another_identity() -> None:
    from talkinghead.evaluation.video_emotion import emotion_balanced_clips, emotion_partner

    data: Any = _Clips({"a1": ("angry", "p"), "a2": ("angry", "q"), "h1": ("happy", "p"), "s1": ("sad", "q"),
                        "a3": ("angry", "p"), "h2": ("happy", "q")})
    ids = list(data.rows)
    assert emotion_balanced_clips(data, ids, ["happy", "angry"], None) == ["h1", "a1", "h2", "a2", "a3"]
    assert emotion_balanced_clips(data, ids, ["happy", "angry"], 3) == ["h1", "a1", "h2"]
    assert emotion_balanced_clips(data, ids, None, 2) == ["a1", "a2"]
    with pytest.raises(TalkingHeadError, match="no clips of surprised"):
        emotion_balanced_clips(data, ids, ["happy", "surprised"], None)
    assert emotion_partner(data, ids, "a1") == "a2" and emotion_partner(data, ids, "h2") == "h1"
    with pytest.raises(TalkingHeadError, match="another face"):
        emotion_partner(data, ids, "s1")


class _EchoVideoGenerator:
    """A video generator that shows the dataset's own frames of the clip it is asked for (its audio's length) and
    records each request's style."""

    kind, name, crop_scale = "video", "echo", 2.0

    def __init__(self, data: VideoDataset) -> None:
        self.data, self.styles = data, []  # type: ignore[var-annotated]

    def crops(self, conditions: Any, size: int) -> np.ndarray:
        self.styles.append(conditions.style)
        for clip_id in self.data.ids("test"):
            clip = self.data.clip(clip_id)
            if len(clip.audio) >= len(conditions.audio.samples) and np.array_equal(
                    clip.audio[:len(conditions.audio.samples)], conditions.audio.samples):
                return self.data.frames(clip_id, range(conditions.num_frames))
        raise AssertionError("no clip has this audio")


def test_emo_score_judges_each_rows_tracked_frames(video: Path, tmp_path: Path) -> None:
    from talkinghead.evaluation.frames import parse_row
    from talkinghead.evaluation.video_emotion import train_video_emotion_judge

    data = VideoDataset(video)
    emotions = sorted({data.meta(i).emotion for i in data.ids("test")})
    assert emotions == ["happy", "neutral"]
    # a judge fitted on the very clips it then judges: the dataset's own frames are recognised every time
    judge = train_video_emotion_judge(data, "test", max_frames=20)
    assert judge.config.classes == ("happy", "neutral") and not judge.config.use_pose
    judge.save_pretrained(tmp_path / "judge")
    echo = _EchoVideoGenerator(data)
    rows = ["Ground truth=dataset", "Static=static", FrameRow("Echo", echo, "self", (("emotion", "clip"),))]
    report = evaluate_frames(video, rows, None, max_frames=20, sync_judges={}, emotion_judge=tmp_path / "judge",
                             emotions=["neutral", "happy"])
    results = report.tables[0].results
    assert results["Ground truth"]["Emotion acc."] == 1.0 and results["Echo"]["Emotion acc."] == 1.0
    assert results["Ground truth"]["Emo-Score"] == pytest.approx(1.0)
    # the still portrait shows one face for both clips: one emotion judged right at most
    assert results["Static"]["Emotion acc."] == 0.5
    # @emotion=clip asks the generator for the clip's emotion and intensity by name
    asked = {(s.emotion, s.intensity) for s in echo.styles}
    assert asked == {(data.meta(i).emotion, data.meta(i).intensity) for i in data.ids("test")}
    assert {"Emo-Score", "Neutral", "Non-neutral", "Emotion acc."} <= set(report.tables[0].columns)
    assert parse_row("x=emo+self@emotion=video").options == (("emotion", "video"),)
    with pytest.raises(TalkingHeadError, match="@emotion= takes clip or video"):
        parse_row("x=emo+self@emotion=prompt")

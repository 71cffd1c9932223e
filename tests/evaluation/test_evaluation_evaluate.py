"""The evaluate runner and its command: methods as rows, metrics as columns, known values per baseline."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from talkinghead.cli import main
from talkinghead.errors import TalkingHeadError
from talkinghead.evaluation.evaluate import (
    FVD_NAME,
    EvaluateConfig,
    GroundTruth,
    Judges,
    StaticFace,
    evaluate,
    markdown_tables,
    parse_baselines,
)

sys.path.insert(0, str(Path(__file__).parent))
from sync_helpers import write_dataset  # noqa: E402


@pytest.fixture(scope="module")
def arkit_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from talkinghead.data.speakers import base_identity
    from talkinghead.face.model import ARKIT_LAYOUT

    identity = {k: np.array(v) for k, v in base_identity().items()}
    return write_dataset(tmp_path_factory.mktemp("eval") / "ds", ARKIT_LAYOUT, identity,
                         {"train": 6, "val": 2, "test": 3}, frames=40, mouth=("jawOpen", "mouthFunnel"))


def _tiny_dreamtalk(folder: Path, regression: bool = False) -> Path:
    import torch

    from talkinghead.face.model import ARKIT_LAYOUT
    from talkinghead.motion.dreamtalk import DenoiserConfig, DreamTalkDenoiser

    torch.manual_seed(0)
    den = DreamTalkDenoiser(DenoiserConfig.preset("tiny", audio_dim=1, expression_dim=ARKIT_LAYOUT.size, window=2,
                                                  regression=regression),
                            layout=ARKIT_LAYOUT.to_dict(), audio_features={"names": ["energy"], "dims": [1]})
    den.save_pretrained(folder / "denoiser")
    return folder


def test_baselines_have_their_known_values(arkit_data: Path) -> None:
    report = evaluate(arkit_data, [GroundTruth(), StaticFace()], None,
                      EvaluateConfig.preset("tiny", video_clips=1), judges=Judges())
    gt, static = report.results["Ground truth"], report.results["Static face"]
    # ground truth against itself: zero landmark distance and Frechet distance, identical frames
    assert gt["M-LMD"] == pytest.approx(0.0, abs=1e-6) and gt["F-LMD"] == pytest.approx(0.0, abs=1e-6)
    assert gt["E-FID"] == pytest.approx(0.0, abs=1e-6)
    assert gt["PSNR"] == float("inf") or gt["PSNR"] > 60
    assert gt["SSIM"] == pytest.approx(1.0)
    # the static face does not move its head and is far from the ground truth mouth
    assert static["Diversity"] == pytest.approx(0.0) and static["Velocity"] == pytest.approx(0.0, abs=1e-6)
    assert static["M-LMD"] > 0.5 and static["E-FID"] > 0.0 and static["SSIM"] < 1.0
    text = markdown_tables(report)
    assert "| Method |" in text and "| Static face |" in text and "M-LMD ↓" in text


def test_parse_baselines_and_bad_specs(tmp_path: Path) -> None:
    diffusion = _tiny_dreamtalk(tmp_path / "diffusion")
    regression = _tiny_dreamtalk(tmp_path / "regression", regression=True)
    methods = parse_baselines(["gt", "static", f"regression={regression}", f"w/o lip expert={diffusion}",
                               f"denoiser only={diffusion / 'denoiser'}"])
    assert [m.name for m in methods] == ["Ground truth", "Static face", "Regression (same network, no diffusion)",
                                         "w/o lip expert", "denoiser only"]
    with pytest.raises(TalkingHeadError, match="trained with --regression"):
        parse_baselines([f"regression={diffusion}"])  # a diffusion checkpoint is no regression model
    with pytest.raises(TalkingHeadError):
        parse_baselines(["oracle"])
    with pytest.raises(TalkingHeadError):
        parse_baselines([f"x={tmp_path / 'missing'}"])
    with pytest.raises(TalkingHeadError, match="holds no checkpoint"):
        parse_baselines([f"x={tmp_path}"])
    with pytest.raises(TalkingHeadError, match="cannot be evaluated with a predicted style"):
        parse_baselines([f"style:x={diffusion}"])


def test_evaluate_command_writes_tables_and_judges(arkit_data: Path, tmp_path: Path) -> None:
    ckpt = _tiny_dreamtalk(tmp_path / "dreamtalk")
    regression = _tiny_dreamtalk(tmp_path / "regression", regression=True)
    out = tmp_path / "report"
    code = main(["--quiet", "evaluate", "--data", str(arkit_data), "--checkpoint", str(ckpt), "--preset", "tiny",
                 "--baselines", "ground-truth", "static", f"regression={regression}", "--video-clips", "1",
                 "--steps", "2", "--judge-steps", "4", "-o", str(out)])
    assert code == 0
    data = json.loads((out / "report.json").read_text())
    rows = data["results"]
    assert list(rows) == ["Ground truth", "Static face", "Regression (same network, no diffusion)", "DreamTalk (ours)"]
    for name, values in rows.items():
        for metric in ("LSE-D", "LSE-C", "M-LMD", "E-FID", "PSNR", "LSE-D (video)"):
            assert metric in values, (name, metric)
    assert rows["Ground truth"][FVD_NAME] == pytest.approx(0.0, abs=1e-3)
    assert (out / "judges" / "syncnet_motion" / "model.safetensors").exists()
    assert (out / "judges" / "syncnet_video" / "config.json").exists()
    md = (out / "report.md").read_text()
    assert "DreamTalk (ours)" in md and "trained here" in md and "FID" not in md.replace("E-FID", "")
    # a second run reuses the saved judges
    code = main(["--quiet", "evaluate", "--data", str(arkit_data), "--preset", "tiny", "--baselines", "gt",
                 "--video-clips", "0", "--sync-judge", str(out / "judges" / "syncnet_motion"),
                 "-o", str(tmp_path / "r2")])
    assert code == 0 and not (tmp_path / "r2" / "judges").exists()


def test_evaluate_errors_are_one_sentence(arkit_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["evaluate", "--data", str(tmp_path / "nope"), "-o", str(tmp_path / "r")])
    assert code == 2 and "error:" in capsys.readouterr().err
    code = main(["evaluate", "--data", str(arkit_data), "--checkpoint", str(tmp_path / "none"), "--baselines",
                 "-o", str(tmp_path / "r"), "--preset", "tiny"])
    assert code == 2

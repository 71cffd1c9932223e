"""The sync judge trains through the shared loop: exact resume, the EMA checkpoint with its report, the CLI."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from talkinghead.checkpoint import read_checkpoint_info
from talkinghead.cli import main
from talkinghead.evaluation.sync_training import one_cycle
from talkinghead.evaluation.syncnet import SyncNet
from talkinghead.sequence import ChannelLayout
from talkinghead.training.run import train
from talkinghead.training.state import load_state

sys.path.insert(0, str(Path(__file__).parent))
from sync_helpers import write_dataset  # noqa: E402

LAYOUT = ChannelLayout("t", ("open", "round", "brow", "blink"), {"mouth": ("open", "round")})


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("sync") / "ds", LAYOUT, {}, {"train": 8, "test": 2}, frames=40)


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def test_one_cycle_matches_torch() -> None:
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([p], lr=1e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1e-3, total_steps=50, pct_start=0.1)
    for step in range(50):
        assert one_cycle(step, 50, 1e-3) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-9, abs=1e-15)
        opt.step()
        sched.step()


def test_a_judge_run_exports_its_checkpoint_with_the_held_out_report(data: Path, tmp_path: Path) -> None:
    summary = train("judge.sync", data, tmp_path / "judge", "tiny", steps=12, batch_size=8, tensorboard=False)
    assert load_state(tmp_path / "judge.train").step == 12 and summary["component"] == "judge.sync"
    report = summary["report"]
    assert report["eval_split"] == "test" and np.isfinite(report["eval_lse_d"]) and report["steps"] == 12
    assert len(summary["metrics"]["accuracy"]) == 12
    info = read_checkpoint_info(tmp_path / "judge")
    assert info.extra["report"] == report and info.extra["command"] == "talkinghead train judge.sync --preset tiny"
    assert SyncNet.from_pretrained(tmp_path / "judge").config.visual_source == "channels:mouth"


def test_stop_after_then_resume_gives_the_same_weights(data: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from talkinghead.evaluation.syncnet import SyncTrainConfig

    presets = dict(SyncTrainConfig.presets, tiny={**SyncTrainConfig.presets["tiny"], "save_every": 5})
    monkeypatch.setattr(SyncTrainConfig, "presets", presets)
    kw = {"steps": 12, "batch_size": 8, "tensorboard": False}
    full = train("judge.sync", data, tmp_path / "full", "tiny", **kw)
    train("judge.sync", data, tmp_path / "cut", "tiny", stop_after=8, **kw)
    assert load_state(tmp_path / "cut.train").step == 5           # the steps since the last save are lost
    rest = train("judge.sync", data, tmp_path / "cut", "tiny", resume=True, **kw)
    assert rest["start"] == 5 and rest["end"] == 12
    np.testing.assert_allclose(full["losses"][5:], rest["losses"], rtol=0, atol=0)
    a, b = load_state(tmp_path / "full.train"), load_state(tmp_path / "cut.train")
    assert a.ema_updates == b.ema_updates == 12
    for x, y in ((a.model, b.model), (a.ema, b.ema)):
        assert x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)
    wa = load_file(str(tmp_path / "full" / "model.safetensors"))
    wb = load_file(str(tmp_path / "cut" / "model.safetensors"))
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def test_train_sync_judge_command_uses_the_loop(data: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train-sync-judge", "--data", str(data), "--out", str(tmp_path / "j"), "--preset", "tiny",
                 "--steps", "4"]) == 0
    assert "trained the motion sync judge" in capsys.readouterr().out
    assert load_state(tmp_path / "j.train").step == 4
    assert SyncNet.from_pretrained(tmp_path / "j").config.visual_dim == 2
    assert read_checkpoint_info(tmp_path / "j").extra["report"]["steps"] == 4
    assert main(["train", "judge.sync", "--data", str(data), "--out", str(tmp_path / "j"), "--preset", "tiny",
                 "--steps", "6", "--resume"]) == 0
    assert load_state(tmp_path / "j.train").step == 6


def test_shipped_judges_still_load() -> None:
    root = Path(__file__).resolve().parents[2] / "weights" / "judges"
    for domain in ("motion", "video"):
        judge = SyncNet.from_pretrained(root / f"syncnet_{domain}")
        assert judge.config.domain == domain

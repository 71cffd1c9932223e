"""DreamTalk ablation variants (Tab. 2, Tab. 4, the regression baseline): each trains with a falling loss,
records its variant in the checkpoint, loads again, and runs through its evaluate adapter."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from talkinghead.checkpoint import read_checkpoint_info
from talkinghead.cli import main
from talkinghead.data.dataset import Dataset
from talkinghead.errors import TalkingHeadError
from talkinghead.evaluation.evaluate import (
    EvaluateConfig,
    GeneratorMethod,
    GroundTruth,
    Judges,
    evaluate,
    generator_method,
    parse_baselines,
)
from talkinghead.motion.dreamtalk import DreamTalkDenoiser, StyleAwareLipExpert, StylePredictor
from talkinghead.training.run import build_solver, train

STEPS = 40


def _falls(summary: dict, factor: float = 0.8) -> None:
    losses = summary["losses"]
    assert np.mean(losses[-10:]) < factor * np.mean(losses[:10]), losses


@pytest.fixture(scope="module")
def uncond_expert(data: Path) -> Path:
    out = data.parent / "uncond_expert"
    summary = train("lip-expert", data, out, "tiny", steps=50, unconditional=True, tensorboard=False)
    losses = summary["losses"]
    assert np.mean(losses[-12:]) < np.mean(losses[:12]) - 0.03, losses
    return out


@pytest.fixture(scope="module")
def uncond_denoiser(data: Path, uncond_expert: Path) -> Path:
    out = data.parent / "den_uncond"
    _falls(train("denoiser", data, out, "tiny", steps=STEPS, lip_expert=uncond_expert, tensorboard=False))
    return out


@pytest.fixture(scope="module")
def regression_denoiser(data: Path) -> Path:
    out = data.parent / "den_regression"
    _falls(train("denoiser", data, out, "tiny", steps=STEPS, regression=True, tensorboard=False))
    return out


def test_unconditional_lip_expert_and_the_denoiser_trained_with_it(uncond_expert: Path,
                                                                   uncond_denoiser: Path) -> None:
    expert = StyleAwareLipExpert.from_pretrained(uncond_expert)
    assert not expert.config.style_aware and expert.style_encoder is None
    assert read_checkpoint_info(uncond_expert).extra["variant"] == ["unconditional"]
    info = read_checkpoint_info(uncond_denoiser)
    assert info.extra["lip_expert_variant"] == ["unconditional"] and info.extra["variant"] == []
    assert not DreamTalkDenoiser.from_pretrained(uncond_denoiser).config.regression


def test_regression_denoiser_records_its_variant(regression_denoiser: Path) -> None:
    den = DreamTalkDenoiser.from_pretrained(regression_denoiser)
    assert den.config.regression
    info = read_checkpoint_info(regression_denoiser)
    assert info.extra["variant"] == ["regression"] and "--regression" in info.extra["command"]


@pytest.mark.parametrize("variant", ["no_speaker_info", "same_clip_identity", "regression"])
def test_style_predictor_variants_train_and_load(data: Path, regression_denoiser: Path, variant: str) -> None:
    out = data.parent / f"sp_{variant}"
    _falls(train("style-predictor", data, out, "tiny", steps=2 * STEPS, denoiser=regression_denoiser,
                 tensorboard=False, **{variant: True}), 0.85)
    pred = StylePredictor.from_pretrained(out)
    assert pred.config.speaker_info == (variant != "no_speaker_info")
    assert pred.config.regression == (variant == "regression")
    extra = read_checkpoint_info(out).extra
    assert extra["variant"] == [variant] and len(extra["denoiser_fingerprint"]) == 16


def test_same_clip_identity_takes_the_identity_from_the_clip_itself(data: Path, regression_denoiser: Path) -> None:
    solver = build_solver("style-predictor", data, "tiny", denoiser=regression_denoiser,
                          same_clip_identity=True).solver
    calls = []
    original = solver.corpus.other_clip_of_speaker  # type: ignore[attr-defined]
    solver.corpus.other_clip_of_speaker = lambda rng, c: calls.append(c) or original(rng, c)  # type: ignore[attr-defined]
    batch = solver.make_batch(np.random.default_rng(0), 8)
    descriptors = {tuple(c.descriptor) for c in solver.corpus.clips}  # type: ignore[attr-defined]
    assert not calls and all(tuple(row) in descriptors for row in batch["identity"].numpy())
    full = build_solver("style-predictor", data, "tiny", denoiser=regression_denoiser).solver
    full.corpus.other_clip_of_speaker = lambda rng, c: calls.append(c) or original(rng, c)  # type: ignore[attr-defined]
    full.make_batch(np.random.default_rng(0), 8)
    assert len(calls) == 8


def test_variants_run_through_the_evaluate_adapters(data: Path, uncond_denoiser: Path, regression_denoiser: Path,
                                                   tmp_path: Path) -> None:
    sp_dir = data.parent / "sp_regression"
    if not sp_dir.is_dir():
        train("style-predictor", data, sp_dir, "tiny", steps=5, denoiser=regression_denoiser, regression=True,
              tensorboard=False)
    blind = tmp_path / "sp_blind"
    train("style-predictor", data, blind, "tiny", steps=5, denoiser=regression_denoiser, no_speaker_info=True,
          tensorboard=False)
    methods = parse_baselines(["gt", f"uncond lip expert={uncond_denoiser}", f"regression={regression_denoiser}",
                               f"style:regression predictor={sp_dir}", f"w/o speaker info={blind}"], steps=2)
    assert [getattr(m, "style", None) for m in methods] == [None, "reference", "reference", "predicted", "predicted"]
    assert methods[2].name == "Regression (same network, no diffusion)"  # a style-predictor checkpoint is detected:
    report = evaluate(data, methods, tmp_path / "report", EvaluateConfig.preset("tiny", split="val", video_clips=0),
                      judges=Judges())
    rows = report.results
    assert set(rows) == {m.name for m in methods}
    assert rows["Ground truth"]["MD"] == pytest.approx(0.0) and "SCD" not in rows["Ground truth"]
    for name in ("regression predictor", "w/o speaker info"):
        assert rows[name]["SCD"] > 0 and rows[name]["MD"] > 0 and 0 <= rows[name]["SA"] <= 1
    assert ("Style prediction (DreamTalk Tab. 4)", ["SCD", "MD", "SA"]) in report.tables
    assert "SCD ↓" in (tmp_path / "report" / "report.md").read_text()
    # the paper's protocol: the portrait comes from a clip of the same speaker with another emotion
    dataset = Dataset(data)
    method = methods[3]
    assert isinstance(method, GeneratorMethod)
    for clip_id, partner in method._partners.items():
        a, b = dataset.meta(clip_id), dataset.meta(partner)
        assert a.speaker == b.speaker and (a.emotion != b.emotion or method.notes)
    # the regression row is one forward pass: the same motion whatever the seed
    clip = dataset.clip(dataset.ids("val")[0])
    one = generator_method("r", regression_denoiser, steps=2, seed=0).generate(clip)
    two = generator_method("r", regression_denoiser, steps=2, seed=5).generate(clip)
    assert one is not None and two is not None
    np.testing.assert_array_equal(one.expression, two.expression)
    assert GroundTruth().generate(clip).expression.shape == one.expression.shape


def test_cli_variant_flags(data: Path, regression_denoiser: Path, tmp_path: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "lip-expert", "--data", str(data), "--out", str(tmp_path / "le"), "--preset", "tiny",
                 "--steps", "2", "--unconditional"]) == 0
    assert not StyleAwareLipExpert.from_pretrained(tmp_path / "le").config.style_aware
    assert main(["train", "style-predictor", "--data", str(data), "--out", str(tmp_path / "sp"), "--preset", "tiny",
                 "--steps", "2", "--denoiser", str(regression_denoiser), "--no-speaker-info",
                 "--same-clip-identity"]) == 0
    assert read_checkpoint_info(tmp_path / "sp").extra["variant"] == ["no_speaker_info", "same_clip_identity"]
    capsys.readouterr()
    # each component's parser knows only its own options
    assert main(["train", "denoiser", "--data", str(data), "--out", str(tmp_path / "d"), "--preset", "tiny",
                 "--unconditional"]) == 2
    assert "unrecognized arguments: --unconditional" in capsys.readouterr().err
    with pytest.raises(TalkingHeadError, match="--unconditional applies to lip-expert, not denoiser"):
        train("denoiser", data, tmp_path / "d", "tiny", unconditional=True)
    assert main(["evaluate", "--data", str(data), "-o", str(tmp_path / "r"), "--preset", "tiny", "--baselines",
                 f"regression={tmp_path / 'le'}"]) == 2


@pytest.mark.parametrize("component", ["denoiser", "style-predictor"])
def test_regression_training_step_sees_no_noise_and_no_step(data: Path, regression_denoiser: Path,
                                                            component: str) -> None:
    def losses(regression: bool) -> tuple[float, float]:
        inputs = {"denoiser": regression_denoiser} if component == "style-predictor" else {}
        solver = build_solver(component, data, "tiny", regression=regression, **inputs).solver
        torch.manual_seed(0)
        step = solver.wrap(solver.build_model()).eval()
        batch = solver.make_batch(np.random.default_rng(0), 4)
        other = dict(batch, noise=torch.randn_like(batch["noise"]), t=(batch["t"] + 400) % 1000)
        with torch.no_grad():
            return float(step(batch)[0]), float(step(other)[0])

    a, b = losses(True)
    assert a == pytest.approx(b, abs=1e-6)  # the fixed input: the noise and the step do not matter
    c, d = losses(False)
    assert abs(c - d) > 1e-4


def test_resume_of_a_state_saved_before_the_variant_fields(data: Path, tmp_path: Path) -> None:
    import json

    train("denoiser", data, tmp_path / "d", "tiny", steps=20, stop_after=10, tensorboard=False)
    meta_path = tmp_path / "d.train" / "state" / "state.json"
    meta = json.loads(meta_path.read_text())
    del meta["meta"]["model_config"]["regression"]  # as the state of a run started before the field existed
    meta_path.write_text(json.dumps(meta))
    rest = train("denoiser", data, tmp_path / "d", "tiny", steps=20, resume=True, tensorboard=False)
    assert rest["start"] == 10 and rest["end"] == 20


def test_resume_of_a_state_saved_before_a_top_level_config_field(data: Path, tmp_path: Path) -> None:
    """A field added to the model config itself (not a nested one) after the state was saved takes its default
    (DICE-Talk's ``learnable_ca`` arrived while its model was training)."""
    import json

    train("denoiser", data, tmp_path / "d", "tiny", steps=20, stop_after=10, tensorboard=False)
    meta_path = tmp_path / "d.train" / "state" / "state.json"
    meta = json.loads(meta_path.read_text())
    assert meta["meta"]["model_config"]["generate_pose"] is True   # the field's default
    del meta["meta"]["model_config"]["generate_pose"]
    meta_path.write_text(json.dumps(meta))
    rest = train("denoiser", data, tmp_path / "d", "tiny", steps=20, resume=True, tensorboard=False)
    assert rest["start"] == 10 and rest["end"] == 20
    meta["meta"]["model_config"]["d_model"] = 999                  # another model: refused
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(TalkingHeadError, match="another model config"):
        train("denoiser", data, tmp_path / "d", "tiny", steps=30, resume=True, tensorboard=False)

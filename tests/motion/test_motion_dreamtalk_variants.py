"""DreamTalk ablation variants (Tab. 2, Tab. 4, regression): what each variant ignores, one-pass sampling
of the regression variants, and checkpoints written before the variant fields existed still load."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from talkinghead.errors import TalkingHeadError
from talkinghead.motion.dreamtalk import (
    DenoiserConfig,
    DreamTalkDenoiser,
    LipExpertConfig,
    StyleAwareLipExpert,
    StylePredictor,
    StylePredictorConfig,
    generate_motion,
    predict_style,
)

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def _denoiser(**kw: object) -> DreamTalkDenoiser:
    torch.manual_seed(0)
    return DreamTalkDenoiser(DenoiserConfig.preset("tiny", audio_dim=8, expression_dim=10, **kw)).eval()


def _expert(**kw: object) -> StyleAwareLipExpert:
    torch.manual_seed(0)
    return StyleAwareLipExpert(LipExpertConfig.preset("tiny", audio_dim=8, expression_dim=10, mouth_vertices=4,
                                                      **kw)).eval()


def _predictor(**kw: object) -> StylePredictor:
    torch.manual_seed(0)
    return StylePredictor(StylePredictorConfig.preset("tiny", audio_dim=8, identity_dim=6, style_dim=32,
                                                      **kw)).eval()


def test_unconditional_lip_expert_ignores_the_style_reference() -> None:
    aware, uncond = _expert(), _expert(style_aware=False)
    assert uncond.style_encoder is None and not any(k.startswith("style_encoder.") for k in uncond.state_dict())
    assert sum(p.numel() for p in uncond.parameters()) < sum(p.numel() for p in aware.parameters())
    audio, vertices = torch.randn(3, 5, 8), torch.randn(3, 5, 4, 3)
    ref_a, ref_b = torch.randn(3, 12, 10), 3 * torch.randn(3, 12, 10)
    with torch.no_grad():
        torch.testing.assert_close(uncond(audio, vertices, ref_a), uncond(audio, vertices, ref_b))
        assert not torch.allclose(aware(audio, vertices, ref_a), aware(audio, vertices, ref_b))
        p = uncond(audio, vertices, ref_a)
    assert ((p >= 0) & (p <= 1)).all()


def test_style_predictor_without_speaker_info_ignores_identity() -> None:
    full, blind = _predictor(), _predictor(speaker_info=False)
    assert blind.speaker_in is None
    s, t, audio = torch.randn(2, 32), torch.tensor([5, 500]), torch.randn(2, 10, 8)
    id_a, id_b = torch.randn(2, 6), 3 * torch.randn(2, 6)
    with torch.no_grad():
        torch.testing.assert_close(blind(s, t, audio, id_a), blind(s, t, audio, None))
        assert not torch.allclose(full(s, t, audio, id_a), full(s, t, audio, id_b))
        with pytest.raises(TalkingHeadError):
            full(s, t, audio, None)


def test_regression_variants_run_once_from_their_fixed_input() -> None:
    den = _denoiser(regression=True)
    audio, style = torch.randn(2, 7, 8), torch.randn(2, 32)
    a = generate_motion(den, audio, style, generator=torch.Generator().manual_seed(1))
    b = generate_motion(den, audio, style, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(a, b)  # no noise anywhere: the output is a function of audio and style
    x, t = den.regression_input(2, 7)
    with torch.no_grad():
        torch.testing.assert_close(a, den.motion_norm.inverse(den(x, t, audio, style)))
        torch.testing.assert_close(den.regress(audio, style), den(x, t, audio, style))
    diffusion = _denoiser()
    c = generate_motion(diffusion, audio, style, steps=2, generator=torch.Generator().manual_seed(1))
    d = generate_motion(diffusion, audio, style, steps=2, generator=torch.Generator().manual_seed(2))
    assert not torch.allclose(c, d)

    pred = _predictor(regression=True)
    ident = torch.randn(2, 6)
    s1 = predict_style(pred, audio, ident, generator=torch.Generator().manual_seed(1))
    s2 = predict_style(pred, audio, ident, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(s1, s2)
    with torch.no_grad():
        torch.testing.assert_close(s1, pred.style_norm.inverse(pred.regress(audio, ident)))


@pytest.mark.parametrize(("build", "new_keys"), [
    (_denoiser, ("regression",)),
    (_expert, ("style_aware",)),
    (_predictor, ("speaker_info", "regression")),
])
def test_checkpoints_from_before_the_variant_fields_still_load(build, new_keys, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    model = build()
    model.save_pretrained(tmp_path / "ckpt")
    cfg_path = tmp_path / "ckpt" / "config.json"
    meta = json.loads(cfg_path.read_text())
    for key in new_keys:  # an old checkpoint's config has none of the variant keys
        assert key in meta["config"]
        del meta["config"][key]
    cfg_path.write_text(json.dumps(meta))
    loaded = type(model).from_pretrained(tmp_path / "ckpt")
    assert loaded.config == model.config
    for a, b in zip(model.state_dict().values(), loaded.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    del meta["config"]["dropout"]  # any other missing key is still refused
    cfg_path.write_text(json.dumps(meta))
    with pytest.raises(TalkingHeadError, match="lacks the key"):
        type(model).from_pretrained(tmp_path / "ckpt")


def test_variant_checkpoints_round_trip(tmp_path: Path) -> None:
    for i, model in enumerate([_denoiser(regression=True), _expert(style_aware=False),
                               _predictor(speaker_info=False, regression=True)]):
        model.save_pretrained(tmp_path / str(i))
        loaded = type(model).from_pretrained(tmp_path / str(i))
        assert loaded.config == model.config

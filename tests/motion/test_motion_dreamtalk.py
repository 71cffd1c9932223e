"""DreamTalk networks: shapes, the sliding window, the differentiable mouth mesh, the lip expert's
probability, style codes, save/load round trips and sampling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
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
    expert_loss,
    generate_motion,
    predict_style,
    sync_loss,
)
from talkinghead.motion.dreamtalk.denoiser import sliding_windows
from talkinghead.motion.dreamtalk.mouth import mouth_model
from talkinghead.training.toydata import toy_layout

LAYOUT = toy_layout().to_dict()


def _denoiser() -> DreamTalkDenoiser:
    torch.manual_seed(0)
    return DreamTalkDenoiser(DenoiserConfig.preset("tiny", audio_dim=8, expression_dim=10), LAYOUT,
                             {"names": ["toy"], "dims": [8]}).eval()


def _expert() -> StyleAwareLipExpert:
    torch.manual_seed(0)
    basis, neutral, _ = mouth_model(toy_layout(), None)
    e = StyleAwareLipExpert(LipExpertConfig.preset("tiny", audio_dim=8, expression_dim=10, mouth_vertices=4), LAYOUT)
    e.set_mouth_model(torch.from_numpy(basis), torch.from_numpy(neutral) + 1.0, 0.5)
    return e.eval()


def _predictor() -> StylePredictor:
    torch.manual_seed(0)
    return StylePredictor(StylePredictorConfig.preset("tiny", audio_dim=8, identity_dim=6, style_dim=32,
                                                      audio_pool=2)).eval()


def test_sliding_windows_center_and_edges() -> None:
    x = torch.arange(6.0).reshape(1, 6, 1)
    win = sliding_windows(x, 6, 2)
    assert win.shape == (1, 6, 5, 1)
    assert win[0, :, 2, 0].tolist() == [0, 1, 2, 3, 4, 5]          # centre = the frame itself
    assert win[0, 0, :, 0].tolist() == [0, 0, 0, 1, 2]              # replicated edge
    ctx = torch.arange(10.0).reshape(1, 10, 1)                       # L + 2w frames given
    assert sliding_windows(ctx, 6, 2)[0, 0, :, 0].tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(TalkingHeadError):
        sliding_windows(torch.zeros(1, 7, 1), 6, 2)


def test_denoiser_shapes_and_style_dependence() -> None:
    net = _denoiser()
    b, length = 2, 9
    x, audio = torch.randn(b, length, 16), torch.randn(b, length, 8)
    t = torch.tensor([10, 900])
    style = net.encode_style(torch.randn(b, 12, 16), torch.ones(b, 12, dtype=torch.bool))
    assert style.shape == (b, 32)
    out = net(x, t, audio, style)
    assert out.shape == (b, length, 16)
    assert not torch.allclose(out, net(x, t, audio, net.null_style(b)))
    # padding frames of the reference must not change the style code
    ref = torch.randn(1, 12, 16)
    padded = torch.cat([ref, torch.randn(1, 5, 16) * 50], 1)
    valid = torch.tensor([[True] * 12 + [False] * 5])
    torch.testing.assert_close(net.encode_style(ref), net.encode_style(padded, valid), atol=1e-5, rtol=1e-5)
    with pytest.raises(TalkingHeadError):
        net.encode_style(torch.randn(1, 5, 3))


def test_denoiser_frame_depends_only_on_its_window() -> None:
    net = _denoiser()
    x, audio = torch.randn(1, 20, 16), torch.randn(1, 20, 8)
    t, style = torch.tensor([100]), net.null_style(1)
    base = net(x, t, audio, style)
    audio2 = audio.clone()
    audio2[0, 19] += 5.0                                             # far from frame 0's window (w = 5)
    out = net(x, t, audio2, style)
    torch.testing.assert_close(out[0, :10], base[0, :10])
    assert not torch.allclose(out[0, 19], base[0, 19])


def test_lip_expert_mouth_mesh_probability_and_gradients() -> None:
    e = _expert()
    expr = torch.randn(3, 5, 10, requires_grad=True)
    verts = e.mouth_vertices(expr)
    assert verts.shape == (3, 5, 4, 3)
    torch.testing.assert_close((verts[..., 0] - 1.0).detach(), expr[..., :4].detach())
    p = e.sync_probability(torch.randn(3, 5, 8), expr, torch.randn(3, 16, 10))
    assert p.shape == (3,) and bool(((p >= 0) & (p <= 1 + 1e-6)).all())
    loss = sync_loss(p)
    loss.backward()
    assert expr.grad is not None and expr.grad[..., :4].abs().sum() > 0   # flows through the mouth mesh
    assert expr.grad[..., 4:].abs().sum() == 0                            # non-mouth channels: no vertices
    assert float(expert_loss(torch.tensor([0.9, 0.1]), torch.tensor([1, 0]))) < \
        float(expert_loss(torch.tensor([0.1, 0.9]), torch.tensor([1, 0])))


@pytest.mark.parametrize("build", [_denoiser, _expert, _predictor])
def test_save_pretrained_round_trip_gives_identical_outputs(build, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    model = build()
    for p in model.buffers():
        if p.is_floating_point() and p.ndim > 0:
            p.add_(torch.rand_like(p))  # non-default statistics must travel too
    model.save_pretrained(tmp_path / "ckpt")
    loaded = type(model).from_pretrained(tmp_path / "ckpt")
    assert loaded.config == model.config and loaded.layout == model.layout
    torch.manual_seed(1)
    if isinstance(model, DreamTalkDenoiser):
        args = (torch.randn(2, 6, 16), torch.tensor([3, 700]), torch.randn(2, 6, 8), torch.randn(2, 32))
    elif isinstance(model, StyleAwareLipExpert):
        args = (torch.randn(2, 5, 8), torch.randn(2, 5, 4, 3), torch.randn(2, 9, 10))
    else:
        args = (torch.randn(2, 32), torch.tensor([3, 700]), torch.randn(2, 11, 8), torch.randn(2, 6))
    with torch.no_grad():
        torch.testing.assert_close(model(*args), loaded(*args), atol=0, rtol=0)


def test_from_pretrained_refuses_another_component(tmp_path: Path) -> None:
    _expert().save_pretrained(tmp_path / "e")
    with pytest.raises(TalkingHeadError):
        DreamTalkDenoiser.from_pretrained(tmp_path / "e")


def test_generate_motion_and_predict_style_shapes_and_guidance() -> None:
    net, pred = _denoiser(), _predictor()
    audio = torch.randn(1, 14, 8)
    style = net.encode_style(torch.randn(1, 12, 16))
    g = torch.Generator().manual_seed(0)
    m1 = generate_motion(net, audio, style, guidance_scale=1.0, generator=g)
    g = torch.Generator().manual_seed(0)
    m0 = generate_motion(net, audio, style, guidance_scale=0.0, generator=g)
    assert m1.shape == (1, 14, 16) and torch.isfinite(m1).all()
    assert not torch.allclose(m0, m1)
    s = predict_style(pred, torch.randn(2, 11, 8), torch.randn(2, 6), steps=20)
    assert s.shape == (2, 32) and torch.isfinite(s).all()


def test_mouth_model_fallback_is_one_hot_on_mouth_channels() -> None:
    basis, neutral, source = mouth_model(toy_layout(), None)
    assert source == "channels:mouth" and basis.shape == (10, 4, 3) and neutral.shape == (4, 3)
    expr = np.random.default_rng(0).normal(size=(10,)).astype(np.float32)
    np.testing.assert_allclose(np.einsum("e,emk->mk", expr, basis)[:, 0], expr[:4])

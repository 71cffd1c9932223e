"""DICE-Talk's video diffusion backbone and objective: the SVD-structured UNet with reference-image, audio and emotion
attention (Sec. 3.2, Eq. 14), the EDM framework (preconditioning, training loss, 25-step sampler, per-condition
dropout, guidance) and the emotion discriminator (Sec. 3.3, Eq. 15-16)."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import pytest
import torch

from talkinghead.errors import TalkingHeadError
from talkinghead.video.dice.discriminator import (
    NO_LABEL,
    DiscriminatorConfig,
    EmotionDiscriminator,
    LatentEmotionJudge,
    ObjectiveConfig,
    content_cls_loss,
    emotion_cls_loss,
    total_loss,
)
from talkinghead.video.dice.edm import (
    CONDITIONS,
    EDMConfig,
    GuidanceScales,
    denoise,
    draw_condition_drop,
    dropped_masks,
    edm_denoiser,
    edm_loss,
    guided_denoiser,
    karras_sigmas,
    loss_weight,
    precondition,
    sample_edm,
)
from talkinghead.video.dice.unet import DICEUNet, DICEUNetConfig

pytestmark = pytest.mark.usefixtures("one_thread")

B, FRAMES, SIDE, L_E = 2, 3, 8, 4
STEPS = 20


def _one_sentence(err: pytest.ExceptionInfo[TalkingHeadError]) -> str:
    text = str(err.value)
    assert "\n" not in text and text.endswith("."), text
    return text


def _inputs(config: DICEUNetConfig, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    c = config.latent_channels
    return {"sample": torch.randn(B, FRAMES, c, SIDE, SIDE, generator=g),
            "timestep": torch.tensor([0.3, -0.7]),
            "reference": torch.randn(B, c, SIDE, SIDE, generator=g),
            "audio": torch.randn(B, FRAMES, config.audio_window, config.audio_dim, generator=g),
            "emotion": torch.randn(B, L_E, config.emotion_dim, generator=g)}


@pytest.fixture(scope="module")
def tiny() -> DICEUNet:
    torch.manual_seed(0)
    return DICEUNet(DICEUNetConfig.preset("tiny")).eval()


def _plain(model: DICEUNet) -> Any:
    """The bare diffusers UNet with the same weights."""
    from diffusers import UNetSpatioTemporalConditionModel

    plain: Any = UNetSpatioTemporalConditionModel(**model.config.diffusers_config()).eval()
    plain.load_state_dict(model.unet.state_dict())
    return plain


def _plain_forward(plain: Any, model: DICEUNet, x: dict[str, torch.Tensor], image: bool = True) -> torch.Tensor:
    reference = x["reference"] if image else torch.zeros_like(x["reference"])
    tokens = model.reference_tokens(x["reference"])
    tokens = tokens if image else torch.zeros_like(tokens)
    latents = torch.cat([x["sample"], reference[:, None].expand(-1, FRAMES, -1, -1, -1)], dim=2)
    ids = torch.tensor(model.config.time_ids).expand(B, 3)
    return plain(latents, x["timestep"], tokens, ids).sample  # type: ignore[no-any-return]


def _perturb(model: DICEUNet, kind: str, where: str = "", seed: int = 1) -> None:
    """Give the zero-initialised output projections of the added ``kind`` attentions ("audio"/"emotion") random
    weights, in the blocks whose name contains ``where``."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, layers in model.condition_layers.items():
            if where in name and (where != "transformer_blocks" or "temporal" not in name):
                out = getattr(layers, kind).to_out
                out.weight.copy_(torch.randn(out.weight.shape, generator=g) * 0.5)


# ----------------------------------------------------------------------------------------------------- UNet

def test_forward_shapes_and_pooled_mid_features(tiny: DICEUNet) -> None:
    x = _inputs(tiny.config)
    with torch.no_grad():
        out = tiny(**x)
    assert out.sample.shape == (B, FRAMES, 4, SIDE, SIDE) and torch.isfinite(out.sample).all()
    assert out.features.shape == (B, tiny.config.block_out_channels[-1])
    assert not torch.allclose(out.features[0], out.features[1])                     # per-sample, not a constant
    kinds = {"temporal" in name for name in tiny.condition_layers}
    assert kinds == {True, False}                        # Eq. 14 in both the spatial and the temporal blocks


def test_zero_initialised_additions_leave_the_svd_unet_unchanged(tiny: DICEUNet) -> None:
    """With audio, emotion and drop masks given, the untrained DICE UNet computes what the bare diffusers UNet computes
    on ``[noisy; reference]`` with the reference tokens as context; dropping the image is SVD's zero image."""
    plain, x = _plain(tiny), _inputs(tiny.config)
    with torch.no_grad():
        ours = tiny(**x).sample
        reference = _plain_forward(plain, tiny, x)
        assert torch.equal(ours, reference)
        no_image = tiny(**x, drop=dropped_masks({"image"}, B)).sample
        assert torch.equal(no_image, _plain_forward(plain, tiny, x, image=False))
        assert not torch.allclose(no_image, ours)                                     # the reference matters


def test_the_paper_preset_is_svd_img2vid_shaped() -> None:
    """The diffusers config of ``paper`` is SVD-img2vid(-xt)'s UNet (not built here: 1.5 B parameters)."""
    c = DICEUNetConfig.preset("paper").diffusers_config()
    assert c["in_channels"] == 8 and c["out_channels"] == 4 and c["cross_attention_dim"] == 1024
    assert c["block_out_channels"] == (320, 640, 1280, 1280) and c["num_attention_heads"] == (5, 10, 20, 20)
    assert c["down_block_types"] == ("CrossAttnDownBlockSpatioTemporal",) * 3 + ("DownBlockSpatioTemporal",)
    assert c["up_block_types"] == ("UpBlockSpatioTemporal",) + ("CrossAttnUpBlockSpatioTemporal",) * 3
    assert c["layers_per_block"] == 2 and c["addition_time_embed_dim"] == 256
    assert c["projection_class_embeddings_input_dim"] == 768


def test_svd_weights_load_from_a_local_folder(tmp_path: Path) -> None:
    from diffusers import UNetSpatioTemporalConditionModel

    config = DICEUNetConfig.preset("tiny")
    torch.manual_seed(3)
    svd: Any = UNetSpatioTemporalConditionModel(**config.diffusers_config()).eval()
    svd.save_pretrained(tmp_path / "svd" / "unet")
    model = DICEUNet.from_svd(tmp_path / "svd", DICEUNetConfig.preset("tiny", audio_dim=5)).eval()
    assert model.config == config.replace(audio_dim=5)
    state = svd.state_dict()
    assert all(torch.equal(v, state[k[len("unet."):]]) for k, v in model.state_dict().items() if k.startswith("unet."))
    assert set(model.svd_parameter_names()) == {f"unet.{k}" for k, _ in svd.named_parameters()}
    x = {**_inputs(config), "audio": None}
    with torch.no_grad():
        assert torch.equal(model(**x).sample, _plain_forward(svd, model, x))

    with pytest.raises(TalkingHeadError) as err:
        DICEUNet.from_svd(tmp_path / "nothing")
    assert "no diffusers UNet" in _one_sentence(err)
    other: Any = UNetSpatioTemporalConditionModel(**{**config.diffusers_config(), "in_channels": 4})
    other.save_pretrained(tmp_path / "other")
    with pytest.raises(TalkingHeadError) as err:
        DICEUNet.from_svd(tmp_path / "other")
    assert "Stable Video Diffusion" in _one_sentence(err)


def test_audio_and_emotion_change_the_output_once_trained(tiny: DICEUNet) -> None:
    x = _inputs(tiny.config)
    for kind in ("audio", "emotion"):
        model = copy.deepcopy(tiny)
        _perturb(model, kind)
        with torch.no_grad():
            base = model(**{**x, kind: None}).sample
            full = model(**x).sample
            other = model(**{**x, kind: x[kind].flip(0)}).sample
            one_dropped = model(**x, drop={kind: torch.tensor([True, False])}).sample
        assert (full - base).abs().max() > 1e-3                                       # the condition acts
        assert (other - full)[0].abs().max() > 1e-3                                   # and depends on its value
        assert torch.allclose(one_dropped[0], base[0], atol=1e-6)                     # dropped = absent, per sample
        assert torch.allclose(one_dropped[1], full[1], atol=1e-6)
        assert torch.equal(tiny(**x).sample, _plain_forward(_plain(tiny), tiny, x))   # the deep copy is separate


@pytest.mark.parametrize("where", ["temporal_transformer_blocks", "transformer_blocks"])
def test_emotion_attention_acts_in_spatial_and_in_temporal_blocks(tiny: DICEUNet, where: str) -> None:
    """Eq. 14 in either kind of block alone changes the output, and the emotion's tokens are attended (their order
    along L_e does not matter, their values do)."""
    model = copy.deepcopy(tiny)
    _perturb(model, "emotion", where)
    x = _inputs(tiny.config)
    with torch.no_grad():
        base = model(**{**x, "emotion": None}).sample
        full = model(**x).sample
        shuffled = model(**{**x, "emotion": x["emotion"].flip(1)}).sample
    assert (full - base).abs().max() > 1e-3
    assert torch.allclose(full, shuffled, atol=1e-5)


def test_bad_inputs_are_one_sentence(tiny: DICEUNet) -> None:
    x = _inputs(tiny.config)
    cases = [({"audio": x["audio"][..., :-1]}, "audio windows"),
             ({"emotion": x["emotion"][..., :-1]}, "emotion feature"),
             ({"reference": x["reference"][:1]}, "reference latent"),
             ({"sample": x["sample"][:, :, :3]}, "latent clips")]
    for change, words in cases:
        with pytest.raises(TalkingHeadError) as err:
            tiny(**{**x, **change})
        assert words in _one_sentence(err)
    with pytest.raises(TalkingHeadError) as err:
        tiny(**x, drop={"style": torch.ones(B, dtype=torch.bool)})
    assert "Cannot drop style" in _one_sentence(err)
    with pytest.raises(TalkingHeadError):
        DICEUNetConfig.preset("tiny", block_out_channels=(32, 48))


# ------------------------------------------------------------------------------------------------------ EDM

def test_preconditioning_identities() -> None:
    sd = 0.7
    sigma = torch.tensor([1e-6, 0.1, 1.0, 10.0, 700.0], dtype=torch.float64)
    p = precondition(sigma, sd)
    assert torch.allclose(p.c_in ** 2 * (sigma ** 2 + sd ** 2), torch.ones(5, dtype=torch.float64))
    assert torch.allclose(loss_weight(sigma, sd) * p.c_out ** 2, torch.ones(5, dtype=torch.float64))
    assert torch.allclose(p.c_skip + p.c_out ** 2 / sd ** 2, torch.ones(5, dtype=torch.float64))   # EDM's identity
    assert torch.allclose(p.c_noise, sigma.log() / 4)
    assert p.c_skip[-1] < 1e-5 and (p.c_out < 0).all()                                 # SVD's sign

    x = torch.randn(5, 3, 4)
    def network(x_in: torch.Tensor, c_noise: torch.Tensor) -> torch.Tensor:
        return torch.randn_like(x_in) * 10
    d, extra = denoise(network, x, torch.full((5,), 1e-7), sd)
    assert extra is None and torch.allclose(d, x, atol=1e-5)                          # sigma -> 0: D(x) = x


def test_edm_loss_is_zero_for_the_oracle_and_weighted_otherwise() -> None:
    config = EDMConfig.preset("tiny")
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(4, 2, 3, generator=g)
    sigma, noise = torch.tensor([0.01, 0.5, 2.0, 50.0]), torch.randn(4, 2, 3, generator=g)

    def oracle(x_in: torch.Tensor, c_noise: torch.Tensor) -> tuple[torch.Tensor, str]:
        s = (4 * c_noise).exp()
        p = precondition(s, config.sigma_data)
        x = x_in / p.c_in[:, None, None]
        return (x0 - p.c_skip[:, None, None] * x) / p.c_out[:, None, None], "features"

    out = edm_loss(oracle, x0, config, sigma=sigma, noise=noise)
    assert out.loss < 1e-8 and out.extra == "features" and torch.allclose(out.denoised, x0, atol=1e-5)
    zero = edm_loss(lambda x_in, c: torch.zeros_like(x_in), x0, config, sigma=sigma, noise=noise)
    p = precondition(sigma, config.sigma_data)                                        # D = c_skip (x0 + sigma n)
    expected = loss_weight(sigma, 1.0) * ((p.c_skip[:, None, None] * (x0 + sigma[:, None, None] * noise) - x0) ** 2
                                          ).flatten(1).mean(1)
    assert torch.allclose(zero.per_sample, expected, rtol=1e-5)
    drawn = edm_loss(oracle, x0, config, generator=torch.Generator().manual_seed(1))
    assert drawn.sigma.shape == (4,) and (drawn.sigma > 0).all()


def test_training_sigmas_follow_the_lognormal() -> None:
    from talkinghead.video.dice.edm import training_sigmas

    config = EDMConfig.preset("paper")
    log_sigma = training_sigmas(20000, config, torch.Generator().manual_seed(0)).log()
    assert abs(float(log_sigma.mean()) - 0.7) < 0.05 and abs(float(log_sigma.std()) - 1.6) < 0.05


@pytest.mark.parametrize("solver", ["euler", "heun"])
def test_the_sampler_ends_at_a_fixed_x0(solver: str) -> None:
    x0 = torch.randn(2, 3, 4, 4)
    calls: list[float] = []

    def denoiser(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        assert sigma.shape == (2,)
        calls.append(float(sigma[0]))
        return x0

    config = EDMConfig.preset("paper", solver=solver)
    out = sample_edm(denoiser, torch.randn(2, 3, 4, 4), config)
    assert torch.allclose(out, x0, atol=1e-4)
    assert len(calls) == (25 if solver == "euler" else 49) and calls[0] == pytest.approx(700.0)
    sigmas = karras_sigmas(25, 0.002, 700.0, 7.0)
    assert sigmas.shape == (26,) and sigmas[-1] == 0 and sigmas[-2] == pytest.approx(0.002)
    assert (sigmas[:-1].diff() < 0).all()


def test_the_sampler_reproduces_a_gaussian_through_its_exact_denoiser() -> None:
    """For data ~ N(0, s^2) the ideal denoiser is x s^2 / (s^2 + sigma^2); integrating the ODE must give std s."""
    s = 0.5
    config = EDMConfig.preset("cpu", solver="heun")

    def denoiser(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        return x * s ** 2 / (s ** 2 + sigma[:, None] ** 2)

    out = sample_edm(denoiser, torch.randn(4000, 8, generator=torch.Generator().manual_seed(0)), config)
    heun_error = abs(float(out.std()) - s)
    euler = sample_edm(denoiser, torch.randn(4000, 8, generator=torch.Generator().manual_seed(0)),
                       config.replace(solver="euler"))
    assert heun_error < 0.02 < abs(float(euler.std()) - s) < 0.1                     # second order is more exact


def test_condition_dropout_rates() -> None:
    config = EDMConfig.preset("cpu")
    n = 100000
    masks = draw_condition_drop(n, config, torch.Generator().manual_seed(0))
    assert set(masks) == set(CONDITIONS) and all(m.dtype == torch.bool and m.shape == (n,) for m in masks.values())
    a, i, e = masks["audio"], masks["image"], masks["emotion"]
    bound = 5 * math.sqrt(0.05 * 0.95 / n)                                            # five standard errors
    for case, p in [(a & ~i & ~e, 0.05), (i & ~a & ~e, 0.05), (e & ~a & ~i, 0.05), (a & i & e, 0.05),
                    (~a & ~i & ~e, 0.80)]:
        assert abs(float(case.float().mean()) - p) < 5 * math.sqrt(p * (1 - p) / n), p
    assert abs(float(a.float().mean()) - 0.10) < 2 * bound
    assert not bool(((a & i) & ~e).any())                                             # the cases are disjoint
    none = draw_condition_drop(1000, config.replace(drop_audio=0.0, drop_image=0.0, drop_emotion=0.0, drop_all=0.0))
    assert not any(bool(m.any()) for m in none.values())
    with pytest.raises(TalkingHeadError):
        EDMConfig(drop_audio=0.6, drop_all=0.6)


def test_guidance_combines_the_nested_predictions() -> None:
    value = {frozenset(CONDITIONS): 1.0, frozenset({"audio", "emotion"}): 3.0, frozenset({"emotion"}): 7.0,
             frozenset(): 15.0}
    calls: list[frozenset[str]] = []

    def predict(x: torch.Tensor, sigma: torch.Tensor, dropped: frozenset[str]) -> torch.Tensor:
        calls.append(dropped)
        return torch.full_like(x, value[dropped])

    x, sigma = torch.zeros(2, 3), torch.ones(2)
    out = guided_denoiser(predict, GuidanceScales(image=2.0, audio=1.5, emotion=3.0))(x, sigma)
    assert torch.allclose(out, torch.full_like(x, 1 + 2 * (3 - 1) + 1.5 * (7 - 3) + 3 * (15 - 7)))
    assert len(calls) == 4
    calls.clear()
    out = guided_denoiser(predict, GuidanceScales(image=1.0, audio=1.0, emotion=4.0))(x, sigma)
    assert torch.allclose(out, torch.full_like(x, 7 + 4 * (15 - 7))) and len(calls) == 2
    calls.clear()
    out = guided_denoiser(predict, GuidanceScales(1.0, 1.0, 1.0))(x, sigma)
    assert torch.allclose(out, torch.full_like(x, 15.0)) and calls == [frozenset()]


def test_guided_sampling_through_the_unet(tiny: DICEUNet) -> None:
    x = _inputs(tiny.config)
    config = EDMConfig.preset("tiny", steps=3)

    def predict(z: torch.Tensor, sigma: torch.Tensor, dropped: frozenset[str]) -> torch.Tensor:
        def network(z_in: torch.Tensor, c_noise: torch.Tensor) -> torch.Tensor:
            return tiny(z_in, c_noise, x["reference"], x["audio"], x["emotion"],
                        drop=dropped_masks(dropped, B)).sample
        return edm_denoiser(network, config.sigma_data)(z, sigma)

    out = sample_edm(guided_denoiser(predict, GuidanceScales()), torch.randn(B, FRAMES, 4, SIDE, SIDE), config)
    assert out.shape == (B, FRAMES, 4, SIDE, SIDE) and torch.isfinite(out).all()


def test_the_full_objective_overfits_one_clip(tiny: DICEUNet) -> None:
    """Eq. 15 (EDM's loss plus lambda L_cls) on one fixed clip with all conditions, at fixed noise draws: it falls by
    far in 20 steps, and the added audio and emotion attentions learn (their gradients are non-zero)."""
    torch.manual_seed(0)
    model = copy.deepcopy(tiny).train()
    disc = EmotionDiscriminator(DiscriminatorConfig.preset("tiny"))
    config = EDMConfig.preset("tiny")
    x = _inputs(tiny.config, seed=5)
    x0 = torch.randn(B, FRAMES, 4, SIDE, SIDE, generator=torch.Generator().manual_seed(6))
    labels = torch.tensor([2, 5])
    g = torch.Generator().manual_seed(7)
    draw = (torch.tensor([0.4, 1.5]), torch.randn(x0.shape, generator=g))
    optim = torch.optim.Adam([*model.parameters(), *disc.parameters()], lr=2e-3)

    def objective() -> tuple[torch.Tensor, torch.Tensor]:
        sigma, noise = draw

        def network(z_in: torch.Tensor, c_noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            out = model(z_in, c_noise, x["reference"], x["audio"], x["emotion"])
            return out.sample, out.features

        den = edm_loss(network, x0, config, sigma=sigma, noise=noise)
        cls = emotion_cls_loss(disc(den.extra), labels)
        return total_loss(den.loss, cls, None, ObjectiveConfig()).total, den.loss

    totals, denoising = [], []
    for step in range(STEPS):
        optim.zero_grad()
        loss, den = objective()
        loss.backward()
        if step == 0:
            grads = {kind: sum(float(getattr(layer, kind).to_out.weight.grad.abs().sum())  # type: ignore[union-attr]
                               for layer in model.condition_layers.values()) for kind in ("audio", "emotion")}
            assert grads["audio"] > 0 and grads["emotion"] > 0
        optim.step()
        totals.append(float(loss.detach()))
        denoising.append(float(den.detach()))
    assert totals[-1] < 0.2 * totals[0] and denoising[-1] < 0.2 * denoising[0], (totals, denoising)


# --------------------------------------------------------------------------------------------- discriminator

def test_the_discriminator_learns_separable_features() -> None:
    torch.manual_seed(0)
    config = DiscriminatorConfig.preset("tiny", feature_dim=16, emotions=4)
    disc = EmotionDiscriminator(config)
    centres = torch.randn(4, 16) * 2
    labels = torch.arange(4).repeat(16)
    features = centres[labels] + 0.3 * torch.randn(64, 16)
    optim = torch.optim.Adam(disc.parameters(), lr=1e-2)
    first = float(emotion_cls_loss(disc(features), labels).detach())
    assert first == pytest.approx(math.log(4), abs=0.7)
    for _ in range(60):
        optim.zero_grad()
        loss = emotion_cls_loss(disc(features), labels)
        loss.backward()
        optim.step()
    assert float(loss.detach()) < 0.1 * first and bool((disc(features).argmax(1) == labels).all())


def test_cls_loss_ignores_unlabelled_clips_and_eq15_adds_up() -> None:
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 3.0, 0.0], [5.0, 5.0, 5.0]], requires_grad=True)
    labels = torch.tensor([0, 1, NO_LABEL])
    loss = emotion_cls_loss(logits, labels)
    expected = -(torch.log_softmax(logits[:2], 1)[[0, 1], [0, 1]]).mean()
    assert torch.allclose(loss, expected)
    loss.backward()
    assert logits.grad is not None and torch.equal(logits.grad[2], torch.zeros(3))
    unlabelled = emotion_cls_loss(logits, torch.full((3,), NO_LABEL))
    assert float(unlabelled.detach()) == 0.0 and unlabelled.requires_grad
    with pytest.raises(TalkingHeadError) as err:
        emotion_cls_loss(logits, torch.tensor([0, 3, 1]))
    _one_sentence(err)
    parts = total_loss(torch.tensor(1.0), torch.tensor(2.0), torch.tensor(4.0), ObjectiveConfig(cls_weight=0.5,
                                                                                                vq_weight=0.25))
    assert float(parts.total) == pytest.approx(1 + 0.5 * 2 + 0.25 * 4)
    assert float(total_loss(torch.tensor(1.5), None, None).total) == 1.5


def test_the_content_judge_learns_from_clean_clips_and_trains_only_the_prediction() -> None:
    """The content variant: the judge's gradient comes from the clean clips alone (a prediction term that moved it
    could make it read whatever the generator emits), the prediction receives gradient, and an unlabelled prediction
    adds nothing."""
    torch.manual_seed(0)
    judge = LatentEmotionJudge(4, DiscriminatorConfig.preset("tiny", feature_dim=16, emotions=3))
    clean = torch.randn(3, 2, 4, 8, 8)
    predicted = torch.randn(3, 2, 4, 8, 8, requires_grad=True)
    labels = torch.tensor([0, 1, 2])
    loss, logits = content_cls_loss(judge, clean, predicted, labels, labels)
    assert logits.shape == (3, 3)
    loss.backward()
    combined = {n: p.grad.clone() for n, p in judge.named_parameters() if p.grad is not None}
    judge.zero_grad()
    emotion_cls_loss(judge(clean), labels).backward()
    for name, param in judge.named_parameters():
        assert param.grad is not None and torch.allclose(combined[name], param.grad, atol=1e-7), name
    assert predicted.grad is not None and float(predicted.grad.abs().sum()) > 0
    alone, _ = content_cls_loss(judge, clean, predicted, labels, torch.full((3,), NO_LABEL))
    assert float(alone.detach()) == pytest.approx(float(emotion_cls_loss(judge(clean), labels).detach()))
    # trained on clean clips whose emotion is a mean shift of one channel, it names the emotion of a new clip
    optim = torch.optim.Adam(judge.parameters(), lr=1e-2)
    shift = torch.zeros(3, 1, 4, 1, 1)
    shift[:, 0, :3, 0, 0] = torch.eye(3) * 2

    def clips(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.arange(3).repeat(n)
        return torch.randn(len(y), 2, 4, 8, 8) + shift[y], y

    for _ in range(40):
        x, y = clips(4)
        optim.zero_grad()
        content_cls_loss(judge, x, x, y, torch.full_like(y, NO_LABEL))[0].backward()
        optim.step()
    x, y = clips(4)
    assert bool((judge(x).argmax(1) == y).float().mean() > 0.9)

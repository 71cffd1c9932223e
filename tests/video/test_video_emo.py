"""EMO as a video generator (issue 16): the speed encoding, the face locator, Stable Diffusion UNet weights in the
Backbone (identity of the new layers at initialisation, the reference changing the output), temporal mixing, motion
frames and speed, the three training stages (each trains only its parts, its loss falls, the chain of checkpoints),
the latent VAE, the generator (ReferenceNet once per clip, any length, paste-back, seeds) and one-sentence errors."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from talkinghead.data.video.build import VideoCorpusConfig, build_video_corpus
from talkinghead.errors import TalkingHeadError
from talkinghead.generators import Conditions, Portrait, StyleRequest
from talkinghead.io.audio import Audio
from talkinghead.nn.latent import LatentVAE, LatentVAEConfig
from talkinghead.training.loop import fit
from talkinghead.video.emo import COMPONENTS
from talkinghead.video.emo import training as emo_training
from talkinghead.video.emo.face_locator import FaceLocator, FaceLocatorConfig, region_masks
from talkinghead.video.emo.network import EMOConfig, EMONetwork, group_of
from talkinghead.video.emo.pipeline import EMOGenerator, EMOSampling, write_emo_manifest
from talkinghead.video.emo.speed import speed_encoding, speed_windows
from talkinghead.video.emo.temporal import TemporalConfig, TemporalModule
from talkinghead.video.emo.unet import UNetConfig, text_attention_key, unet_from_diffusers

pytestmark = pytest.mark.usefixtures("one_thread")


def _one_sentence(err: pytest.ExceptionInfo[TalkingHeadError]) -> str:
    text = str(err.value)
    assert "\n" not in text and text.endswith("."), text
    return text


# ------------------------------------------------------------------------------------------- components

def test_speed_encoding_is_the_papers_tanh_over_buckets() -> None:
    centres, radii = torch.tensor([0.25, 0.75, 1.25]), torch.tensor([0.25, 0.25, 0.5])
    w = torch.tensor([0.0, 0.75, 3.0])
    s = speed_encoding(w, centres, radii)
    assert s.shape == (3, 3)
    assert torch.allclose(s, torch.tanh((w[:, None] - centres) / radii * 3))        # s_i = tanh((w - c_i) / r_i * 3)
    assert s[1, 1] == 0 and s[1, 0] > 0.99 and s[1, 2] < -0.9                       # in bucket 2: +1 below, -1 above
    assert (s[0] < -0.9).all() and (s[2] > 0.99).all()
    windows = speed_windows(np.array([1.0, 2.0, 3.0]), 2)                          # S^f stacks f - m .. f + m
    assert np.array_equal(windows[0], [1, 1, 1, 2, 3]) and np.array_equal(windows[2], [1, 2, 3, 3, 3])


def test_the_face_locator_encodes_the_box_mask_and_adds_nothing_until_trained() -> None:
    masks = region_masks(np.array([[2.0, 4.0, 9.0, 12.0], [0.0, 0.0, 31.0, 31.0]]), 32)
    assert masks.shape == (2, 1, 32, 32) and masks[0, 0, 4:13, 2:10].all() and masks[0].sum() == 9 * 8
    assert masks[1].all()                                                          # Fig. 7d: a uniform white mask
    torch.manual_seed(0)
    locator = FaceLocator(FaceLocatorConfig.preset("tiny"), latent_channels=4, factor=4)
    assert torch.equal(locator(masks), torch.zeros(2, 4, 8, 8))
    torch.nn.init.normal_(locator.conv_out.weight)
    out = locator(masks)
    assert out.shape == (2, 4, 8, 8) and not torch.allclose(out[0], out[1])


def test_a_stable_diffusion_unet_loads_and_new_layers_start_as_identity(tmp_path: Path) -> None:
    """SD weights (text cross-attention skipped) load into Backbone and ReferenceNet; with no reference the Backbone is
    SD's UNet per frame even with audio, speed, motion frames, temporal layers and a face region; the reference image
    changes the output."""
    from diffusers import UNet2DConditionModel

    torch.manual_seed(0)
    config = UNetConfig.preset("tiny")
    sd: Any = UNet2DConditionModel(**{**config.diffusers_config(), "cross_attention_dim": 24})
    sd.eval()
    sd.save_pretrained(tmp_path / "sd" / "unet")
    loaded, state = unet_from_diffusers(tmp_path / "sd")
    assert loaded == config and any(text_attention_key(k) for k in state)
    net = EMONetwork(EMOConfig.preset("tiny")).eval()
    net.load_stable_diffusion(state)
    assert torch.equal(net.backbone.unet.conv_in.weight, sd.conv_in.weight)
    assert torch.equal(net.reference_net.unet.conv_out.weight, sd.conv_out.weight)
    for block in sd.modules():                                                     # SD without its text attention
        if type(block).__name__ == "BasicTransformerBlock":
            block.attn2 = None
    x, t = torch.randn(2, 4, 4, 8, 8), torch.tensor([10, 700])
    motion = net.references(torch.randn(2, 4, 8, 8), torch.randn(2, 2, 4, 8, 8))
    motion.attention.clear()
    with torch.no_grad():
        expected = sd(x.flatten(0, 1), t.repeat_interleave(4), None).sample.view_as(x)
        with_reference = net(x, t, net.references(torch.randn(2, 4, 8, 8)))
        no_reference = net.backbone(x, t, None, None, None, 2)
        everything_new = net(x, t, None, region_masks(np.array([[4, 4, 20, 20]] * 2), 32),
                             torch.randn(2, 4, 5, 19), torch.rand(2, 4, 5))
    assert torch.allclose(no_reference, expected, atol=1e-5)
    assert torch.allclose(everything_new, expected, atol=1e-5)
    assert (with_reference - expected).abs().mean() > 1e-3
    with pytest.raises(TalkingHeadError) as err:
        net.load_stable_diffusion({k: v for k, v in state.items() if k != "conv_in.weight"})
    _one_sentence(err)


def _random_out(module: TemporalModule) -> TemporalModule:
    torch.nn.init.normal_(module.proj_out.weight, std=0.3)
    block: Any
    for block in module.blocks:
        torch.nn.init.normal_(block.speed_attention.to_out[0].weight, std=0.3)
    return module


def test_temporal_modules_mix_frames_and_read_motion_frames_and_speed() -> None:
    torch.manual_seed(0)
    module = TemporalModule(16, TemporalConfig.preset("tiny"), speed_dim=8).eval()
    b, f, n = 2, 5, 2
    h = torch.randn(b * f, 16, 4, 4)
    motion, speed = torch.randn(b, n, 16, 4, 4), torch.randn(b, f, 8)
    with torch.no_grad():
        assert torch.equal(module(h, f, motion, n, speed), h)                     # identity until trained
        _random_out(module)
        base = module(h, f, None, n)
        kicked = h.clone()
        kicked[0] += 3.0 * torch.randn_like(kicked[0])                             # an impulse in frame 0 of sample 0
        out = module(kicked, f, None, n)
        with_motion = module(h, f, motion, n)
        with_speed = module(h, f, None, n, speed)
    assert (out[2] - base[2]).abs().max() > 1e-3                                   # ... reaches frame 2
    assert torch.equal(out[f:], base[f:])                                          # ... not the other sample
    assert (with_motion[0] - base[0]).abs().max() > 1e-3                           # motion frames reach the targets
    assert (with_speed - base).abs().max() > 1e-3


def test_parameter_groups_cover_the_network() -> None:
    net = EMONetwork(EMOConfig.preset("tiny"))
    groups = net.parameter_groups()
    assert sum(len(v) for v in groups.values()) == len(list(net.parameters()))
    assert all(len(v) for v in groups.values())
    assert group_of("backbone.temporal.mid.blocks.0.speed_attention.to_q.weight") == "speed"
    assert group_of("backbone.temporal.mid.proj_in.weight") == "temporal"
    assert group_of("backbone.audio_attention.mid.attention.to_k.weight") == "audio"


def test_every_declared_option_reaches_its_builder() -> None:
    for spec in COMPONENTS:
        params = inspect.signature(spec.load_builder()).parameters
        assert all(o.name in params for o in spec.options), spec.name


def test_a_stable_diffusion_vae_loads_from_a_local_folder(tmp_path: Path) -> None:
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    config = LatentVAEConfig.preset("tiny")
    pretrained: Any = AutoencoderKL(**config.diffusers_config(), scaling_factor=0.25)
    pretrained.eval()
    pretrained.save_pretrained(tmp_path / "sd" / "vae")
    vae = LatentVAE.load(tmp_path / "sd")
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        z = vae.encode(images)
        assert torch.allclose(z, 0.25 * pretrained.encode(images).latent_dist.mode(), atol=1e-5)
        assert torch.allclose(vae.decode(z), pretrained.decode(z / 0.25).sample, atol=1e-5)
    assert vae.config == config and vae.factor == 4
    with pytest.raises(TalkingHeadError) as err:
        LatentVAE.load(tmp_path / "missing")
    _one_sentence(err)


# ----------------------------------------------------------------------------------------------- training

@pytest.fixture(scope="module")
def video(make_corpus: Callable[..., Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("emo_video") / "video"
    build_video_corpus(make_corpus("tiny", "emo_motion"), None, out, VideoCorpusConfig.preset("tiny"))
    return out


@pytest.fixture(scope="module")
def registered() -> Iterator[None]:
    """``emo`` in the generator registry (the lead adds the shipped entry)."""
    from talkinghead import generators

    added = "emo" not in generators.REGISTRY
    if added:
        generators.register("emo", "video", "talkinghead.video.emo.pipeline:EMOGenerator", "EMO")
    yield
    if added:
        generators.REGISTRY.pop("emo", None)


@pytest.fixture(scope="module")
def folder(video: Path, registered: None) -> Path:
    """The VAE and the three stages, two steps each, chained as ``talkinghead train`` chains them, with a manifest."""
    root = video.parent / "emo"

    def run(build: Callable[..., Any], name: str, **options: Any) -> None:
        built = build(video, "tiny", train_overrides={"steps": 2}, **options)
        fit(built.solver, built.config, root / name, preset="tiny", tensorboard=False, extra=built.extra)

    run(emo_training.build_vae, "vae")
    run(emo_training.build_image, "image", vae=root / "vae")
    run(emo_training.build_video, "video", vae=root / "vae", init=root / "image")
    run(emo_training.build_speed, "network", vae=root / "vae", init=root / "video")
    write_emo_manifest(root, {"steps": 2})
    return root


def _fit_one_batch(step: Any, optimizer: torch.optim.Optimizer, batch: dict[str, torch.Tensor],
                   steps: int) -> tuple[list[float], dict[str, torch.Tensor]]:
    """``steps`` optimiser steps on one fixed ``batch`` (the same noise every step): the losses and the last
    step's metrics."""
    losses, metrics = [], {}
    for _ in range(steps):
        torch.manual_seed(1)
        loss, metrics = step(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    return losses, metrics


@pytest.mark.parametrize("stage", ["image", "video", "speed"])
def test_each_stage_trains_only_its_parts_and_its_loss_falls(stage: str, folder: Path, video: Path) -> None:
    builds: dict[str, Callable[..., Any]] = {"image": emo_training.build_image, "video": emo_training.build_video,
                                             "speed": emo_training.build_speed}
    init: dict[str, Any] = {"video": {"init": folder / "image"}, "speed": {"init": folder / "video"}}
    built = builds[stage](video, "tiny", vae=folder / "vae", **init.get(stage, {}))
    solver = built.solver
    torch.manual_seed(0)
    model = solver.build_model()
    before = {k: v.clone() for k, v in model.named_parameters()}
    step = solver.wrap(model)
    batch = solver.make_batch(np.random.default_rng(0), 2)
    losses, _ = _fit_one_batch(step, solver.optimizer(model, built.config), batch, 25)
    assert np.mean(losses[-3:]) < 0.9 * np.mean(losses[:3]), losses
    trains = emo_training.TRAINS[stage]
    changed = {group_of(k) for k, v in model.named_parameters() if not torch.equal(v, before[k])}
    assert changed == set(trains)
    if stage == "speed":                                            # the paper keeps the audio layers out of stage 3
        assert "audio" not in changed


def test_decoder_only_fine_tuning_keeps_the_latent_space(folder: Path, video: Path, tmp_path: Path) -> None:
    """``emo.vae --decoder-only DIR``: the reconstruction loss falls on a fixed batch, only the decoder side changes
    (encoder, quant_conv and the latent scale as they were), and the exported VAE encodes exactly as before."""
    built = emo_training.build_vae(video, "tiny", decoder_only=folder / "vae", train_overrides={"steps": 2})
    solver = built.solver
    model = solver.build_model()
    before = {k: v.clone() for k, v in model.named_parameters()}
    step = solver.wrap(model)
    batch = solver.make_batch(np.random.default_rng(0), 4)
    losses, metrics = _fit_one_batch(step, solver.optimizer(model, built.config), batch, 30)
    assert "kl" not in metrics and np.mean(losses[-3:]) < 0.9 * np.mean(losses[:3]), losses
    changed = {k.split(".")[1] for k, v in model.named_parameters() if not torch.equal(v, before[k])}
    assert changed and changed <= {"decoder", "post_quant_conv"}
    solver.export(model, tmp_path / "vae", {})
    original, tuned = LatentVAE.from_pretrained(folder / "vae"), LatentVAE.from_pretrained(tmp_path / "vae")
    assert float(tuned.latent_scale) == float(original.latent_scale)
    with torch.no_grad():
        images = batch["images"][:2]
        torch.testing.assert_close(tuned.encode(images), original.encode(images))
    with pytest.raises(TalkingHeadError, match="Give one of"):
        emo_training.build_vae(video, "tiny", decoder_only=folder / "vae", vae=folder / "vae")
    augmented = emo_training.build_vae(video, "tiny", decoder_only=folder / "vae", augment=True)
    assert augmented.extra["augment"] is True and built.extra["augment"] is False
    changed_batch = augmented.solver.make_batch(np.random.default_rng(0), 4)["images"]
    assert changed_batch.shape == batch["images"].shape and not torch.allclose(changed_batch, batch["images"])


def test_init_fine_tunes_both_halves_and_measures_the_latent_scale_again(folder: Path, video: Path,
                                                                         tmp_path: Path) -> None:
    """``emo.vae --init DIR``: a fresh copy of DIR's VAE per ``build_model`` call (the loop exports from one), every
    parameter trained with the KL term, and the exported ``latent_scale`` one over the latents' deviation again."""
    original = LatentVAE.from_pretrained(folder / "vae")
    built = emo_training.build_vae(video, "tiny", init=folder / "vae")
    solver = built.solver
    model = solver.build_model()
    assert solver.build_model() is not model and built.extra["init"] == str(folder / "vae")
    for (name, value), (_, trained) in zip(model.state_dict().items(), original.state_dict().items(), strict=True):
        torch.testing.assert_close(value, trained, msg=name)
    before = {k: v.clone() for k, v in model.named_parameters()}
    batch = solver.make_batch(np.random.default_rng(0), 4)
    losses, metrics = _fit_one_batch(solver.wrap(model), solver.optimizer(model, built.config), batch, 30)
    assert "kl" in metrics and np.mean(losses[-3:]) < 0.9 * np.mean(losses[:3]), losses
    changed = {k.split(".")[1] for k, v in model.named_parameters() if not torch.equal(v, before[k])}
    assert {"encoder", "decoder"} <= changed
    solver.export(model, tmp_path / "vae", {})
    tuned = LatentVAE.from_pretrained(tmp_path / "vae")
    with torch.no_grad():
        tuned.latent_scale.fill_(1.0)
        std = float(tuned.encode(solver._scale_frames).std())
    assert float(LatentVAE.from_pretrained(tmp_path / "vae").latent_scale) == pytest.approx(1.0 / std, rel=1e-5)
    with pytest.raises(TalkingHeadError, match="Give one of"):
        emo_training.build_vae(video, "tiny", decoder_only=folder / "vae", init=folder / "vae")


def test_the_video_stage_takes_an_animatediff_module_only_where_it_fits(folder: Path, video: Path,
                                                                       tmp_path: Path) -> None:
    """``train emo.video --motion-module DIR``: the tiny preset's temporal modules (one self-attention, 2x
    feed-forward) cannot take AnimateDiff's two attentions; one sentence, before any training."""
    from diffusers import MotionAdapter

    MotionAdapter(block_out_channels=(16, 32), motion_layers_per_block=1, motion_num_attention_heads=2,
                  motion_norm_num_groups=8).save_pretrained(tmp_path / "adapter")
    with pytest.raises(TalkingHeadError) as err:
        emo_training.build_video(video, "tiny", vae=folder / "vae", init=folder / "image",
                                 motion_module=tmp_path / "adapter")
    assert "does not fit these temporal modules" in _one_sentence(err)


def test_the_stages_chain_into_checkpoints_that_keep_frozen_parts(folder: Path) -> None:
    from talkinghead.checkpoint import load_checkpoint, read_checkpoint_info

    (_, image), (_, video), (_, speed) = (load_checkpoint(folder / n, "emo.network") for n in
                                          ("image", "video", "network"))
    spatial = [k for k in image if group_of(k) in ("backbone", "reference_net", "face_locator")]
    assert spatial and all(torch.equal(image[k], video[k]) and torch.equal(video[k], speed[k]) for k in spatial)
    audio = [k for k in video if group_of(k) == "audio" or k.startswith("audio.norm")]
    assert all(torch.equal(video[k], speed[k]) for k in audio)
    assert not torch.equal(video["audio.norm.std"], image["audio.norm.std"])      # stage 2 set the statistics
    assert any(not torch.equal(video[k], speed[k]) for k in video if group_of(k) == "speed")
    extra = read_checkpoint_info(folder / "network").extra
    assert extra["stage"] == "speed" and extra["crop_size"] == 128 and extra["speed_median"] > 0
    vae = LatentVAE.from_pretrained(folder / "vae")
    assert vae.image_size == 32 and 0.1 < float(vae.latent_scale) < 100


# ---------------------------------------------------------------------------------------------- generator

def _audio(seconds: float) -> Audio:
    t = np.arange(int(16000 * seconds)) / 16000
    return Audio((0.3 * np.sin(2 * np.pi * 180 * t) * (np.sin(2 * np.pi * 3 * t) > 0)).astype(np.float32), 16000)


@pytest.fixture(scope="module")
def astronaut() -> Portrait:
    from skimage import data

    return Portrait.fit(data.astronaut())


def test_the_generator_makes_a_frame_per_audio_frame_pasted_into_the_photo(folder: Path, astronaut: Portrait) -> None:
    generator = EMOGenerator.from_pretrained(folder)
    assert generator.sampling.steps == 2 and generator.crop_size == 128
    conditions = Conditions(_audio(0.44), astronaut, seed=3)
    out = generator.generate(conditions, 256)
    frames = list(out.frames)
    assert out.num_frames == conditions.num_frames == len(frames) == 11          # 3 clips of f = 4, the last cut
    photo = astronaut.image
    assert photo is not None
    assert frames[0].shape == photo.shape and frames[0].dtype == np.uint8
    assert np.array_equal(frames[0][470:], photo[470:])                          # far below the face: the photo
    assert not np.array_equal(frames[0], photo)
    again = list(generator.generate(Conditions(_audio(0.44), astronaut, seed=3), 256).frames)
    other = list(generator.generate(Conditions(_audio(0.44), astronaut, seed=4), 256).frames)
    assert all(np.array_equal(a, b) for a, b in zip(frames, again, strict=True))
    assert not np.array_equal(frames[5], other[5])
    assert {"emo_sampling", "emo_decode"} <= set(out.timings)
    crops = list(EMOGenerator(generator.vae, generator.network, EMOSampling.preset("tiny", paste_back=False),
                              crop_size=128).generate(conditions, 96).frames)
    assert crops[0].shape == (96, 96, 3)


def test_sampling_can_start_part_way_from_the_reference(folder: Path, astronaut: Portrait) -> None:
    """A small ``strength`` keeps every frame near the reference crop (only the last, least noisy steps run); the
    paper's pure-noise start (strength 1) does not."""
    generator = EMOGenerator.from_pretrained(folder)
    with torch.no_grad():
        reference = generator.decode(generator.vae.encode(generator.crop(astronaut).image))[0].astype(float)

    def distance(strength: float) -> float:
        generator.sampling = generator.sampling.replace(strength=strength)
        crops = list(generator.crops(Conditions(_audio(0.2), astronaut), generator.image_size))
        return float(np.mean([np.abs(c - reference).mean() for c in crops]))

    assert distance(0.05) < 0.25 * distance(1.0)
    with pytest.raises(TalkingHeadError, match="strength"):
        EMOSampling(strength=0.0)


def test_bfloat16_precision_gives_nearly_the_same_frames(folder: Path, astronaut: Portrait) -> None:
    """``precision = "bfloat16"`` (the shipped manifest's ``auto`` on processors with native bfloat16) runs the
    networks and the decoder under autocast: different frames, within a few 8-bit levels of float32's."""
    generator = EMOGenerator.from_pretrained(folder)
    crops = {}
    for precision in ("float32", "bfloat16"):
        generator.sampling = generator.sampling.replace(precision=precision)
        crops[precision] = np.stack(list(generator.crops(Conditions(_audio(0.2), astronaut, seed=1), 64)))
    difference = np.abs(crops["float32"].astype(float) - crops["bfloat16"])
    assert 0 < difference.mean() < 2.0
    with pytest.raises(TalkingHeadError, match="precision"):
        EMOSampling(precision="half")  # type: ignore[arg-type]


def test_evaluate_frames_takes_a_video_generator_row(folder: Path, video: Path, astronaut: Portrait) -> None:
    """``NAME=FOLDER+self``: the generator's own crops (not pasted back), one per ground-truth frame, measured like
    any row."""
    from talkinghead.evaluation.frames import evaluate_frames, parse_row

    assert parse_row(f"EMO={folder}+self").renderer == "self"
    assert parse_row(f"EMO fast={folder}+self@speed=0.5@steps=3").options == (("speed", 0.5), ("steps", 3))
    for bad in ("x=ground-truth+self", "x=nobody+self", "x=ground-truth+warp@speed=1", f"x={folder}+self@speed=a",
                f"x={folder}+self@pace=1", f"x={folder}+self@speed=-1"):
        with pytest.raises(TalkingHeadError):
            parse_row(bad)
    with pytest.raises(TalkingHeadError, match="makes frames itself"):
        evaluate_frames(video, [f"x={folder}+warp"], None, split="train", max_clips=1, max_frames=6)
    report = evaluate_frames(video, ["GT=dataset", f"EMO={folder}+self@steps=1"], None, split="train",
                             max_clips=1, max_frames=6)
    table = report.tables[0]
    emo = table.results["EMO"]
    assert emo["PSNR"] is not None and 0 < emo["SSIM"] < 1
    # the motion columns come from tracking the generated frames, or the table says no face was tracked
    assert "Mean velocity" in emo or any("no motion columns" in n and "'EMO'" in n for n in table.notes)
    crops = list(EMOGenerator.from_pretrained(folder).crops(Conditions(_audio(0.2), astronaut), 48))
    assert len(crops) == 5 and crops[0].shape == (48, 48, 3) and crops[0].dtype == np.uint8


def test_paste_back_puts_the_crop_where_it_was_cut(folder: Path, astronaut: Portrait,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """With a decoder that returns the reference crop itself, every frame is the photo again (up to resampling)."""
    generator = EMOGenerator.from_pretrained(folder)
    crop = generator.crop(astronaut)
    assert 0 < crop.face[0] < crop.face[2] < 32 and 0 < crop.face[1] < crop.face[3] < 32
    reference = ((crop.image[0].permute(1, 2, 0) + 1) * 127.5).round().byte().numpy()
    monkeypatch.setattr(generator, "decode", lambda latents, *_: np.repeat(reference[None], len(latents), 0))
    frame = next(iter(generator.generate(Conditions(_audio(0.2), astronaut), 256).frames))
    x, y, side = crop.box.astype(int)
    inside = (slice(y + side // 4, y + 3 * side // 4), slice(x + side // 4, x + 3 * side // 4))
    assert astronaut.image is not None
    assert np.abs(frame[inside].astype(int) - astronaut.image[inside]).mean() < 25   # a 32 px crop, upsampled


def test_only_the_face_region_is_pasted_back(folder: Path, astronaut: Portrait,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A decoder that returns a white crop: the face region turns white, the crop's corners stay the photo (the whole
    crop with ``paste_region="crop"``)."""
    generator = EMOGenerator.from_pretrained(folder)
    monkeypatch.setattr(generator, "decode", lambda latents, *_: np.full((len(latents), 32, 32, 3), 255, np.uint8))
    crop = generator.crop(astronaut)
    x, y, side = crop.box.astype(int)
    corner = (slice(y + side // 16, y + side // 10), slice(x + side // 16, x + side // 10))   # the crop's corner
    k = side / 32
    fx0, fy0, fx1, fy1 = crop.face
    middle = (slice(int(y + k * (fy0 + fy1) / 2) - 2, int(y + k * (fy0 + fy1) / 2) + 2),
              slice(int(x + k * (fx0 + fx1) / 2) - 2, int(x + k * (fx0 + fx1) / 2) + 2))
    assert astronaut.image is not None and (astronaut.image[corner] < 250).any()
    face = next(iter(generator.generate(Conditions(_audio(0.2), astronaut), 256).frames))
    assert (face[middle] == 255).all() and np.abs(face[corner].astype(int) - astronaut.image[corner]).mean() < 2
    generator.sampling = generator.sampling.replace(paste_region="crop")
    frame = next(iter(generator.generate(Conditions(_audio(0.2), astronaut), 256).frames))
    assert np.abs(frame[corner].astype(int) - astronaut.image[corner]).mean() > 10


def test_reference_net_runs_once_per_clip_with_the_last_frames_as_motion_frames(
        folder: Path, astronaut: Portrait, monkeypatch: pytest.MonkeyPatch) -> None:
    generator = EMOGenerator.from_pretrained(folder)
    cfg = generator.network.emo_config
    calls: list[Any] = []
    original = generator.network.references

    def spy(reference: torch.Tensor, motion: torch.Tensor | None = None) -> Any:
        calls.append(motion)
        return original(reference, motion)

    monkeypatch.setattr(generator.network, "references", spy)
    conditions = Conditions(_audio(0.44), astronaut)
    audio = torch.from_numpy(generator.audio_windows(conditions))
    speed = torch.from_numpy(speed_windows(np.full(len(audio), 0.3, np.float32), cfg.context))
    crop = generator.crop(astronaut)
    with torch.no_grad():
        reference = generator.vae.encode(crop.image)
    clips = list(generator.sample_clips(reference, audio, speed, generator.region(crop, generator.sampling),
                                        generator.sampling, 0))
    assert [len(c) for c in clips] == [4, 4, 3] and len(calls) == 3                # not once per denoising step
    assert calls[0] is None                                                         # the first clip: zero maps
    assert torch.equal(calls[1][0], clips[0][-cfg.motion_frames:])                 # the last n frames of clip 1
    assert torch.equal(calls[2][0], clips[1][-cfg.motion_frames:])


def test_controls_change_the_conditions(folder: Path, astronaut: Portrait) -> None:
    generator = EMOGenerator.from_pretrained(folder)
    conditions = Conditions(_audio(0.2), astronaut)
    crop = generator.crop(astronaut)
    default = generator.region(crop, generator.settings(conditions))
    x, y, side = crop.box
    wide = generator.region(crop, generator.settings(conditions, face_region=(x, y, x + side, y + side / 2)))
    assert default.sum() < wide.sum() and wide[0, 0, :15].all() and not wide[0, 0, 17:].any()
    assert generator.settings(conditions, speed=1.3).speed == 1.3
    assert generator.settings(Conditions(_audio(0.2), astronaut, steps=7)).steps == 7


def test_bad_requests_are_one_sentence(folder: Path, astronaut: Portrait, video: Path, tmp_path: Path) -> None:
    generator = EMOGenerator.from_pretrained(folder)
    no_photo = Portrait(None, astronaut.identity, astronaut.expression, astronaut.pose)
    cases: list[tuple[Callable[[], Any], str]] = [
        (lambda: EMOGenerator.from_pretrained(tmp_path), "emo.vae"),
        (lambda: generator.generate(Conditions(_audio(0.2), no_photo), 256), "photo"),
        (lambda: generator.generate(Conditions(_audio(0.2), astronaut, StyleRequest(emotion="happy")), 256), "style"),
        (lambda: generator.generate(Conditions(_audio(0.2), astronaut, guidance=3.0), 256), "guidance"),
        (lambda: generator.generate(Conditions(_audio(0.2), astronaut), 256, face_region=(0, 0, 5, 5)), "outside"),
        (lambda: generator.generate(Conditions(_audio(0.2), astronaut), 256, speed=-1.0), "speed"),
        (lambda: EMOConfig.preset("tiny", motion_frames=9), "motion frames"),
        (lambda: emo_training.build_video(video, "tiny", vae=folder / "vae"), "--init"),
        (lambda: emo_training.build_image(video, "tiny"), "--vae"),
    ]
    for call, words in cases:
        with pytest.raises(TalkingHeadError) as err:
            call()
        assert words in _one_sentence(err), err.value


def test_wav2vec_features_come_from_the_encoder_the_manifest_names(folder: Path, astronaut: Portrait,
                                                                  tmp_path: Path) -> None:
    """A network trained on wav2vec 2.0 blocks reads them through a local encoder; without one, one sentence."""
    import transformers

    from talkinghead.audio.encoders import load_encoder
    from talkinghead.audio.spec import AudioFeatureSpec

    torch.manual_seed(0)
    wav2vec = transformers.Wav2Vec2Model(transformers.Wav2Vec2Config(
        hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32, conv_dim=(8,) * 7,
        num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2, vocab_size=8))
    wav2vec.save_pretrained(str(tmp_path / "wav2vec"))
    spec = AudioFeatureSpec.preset("emo", layers=(1, 2), encoder_dim=16)             # blocks 1-2 concatenated
    features = {"names": ["encoder"], "dims": [32], "dataset": {"spec": spec.to_dict(), "kinds": {"encoder": 32}},
                "fps": 25.0}
    base = EMOGenerator.from_pretrained(folder)
    config = base.network.emo_config
    network = EMONetwork(config.replace(audio=config.audio.replace(input_dim=32)), features).eval()
    conditions = Conditions(_audio(0.3), astronaut)
    windows = EMOGenerator(base.vae, network, encoder=load_encoder(tmp_path / "wav2vec"),
                           crop_size=128).audio_windows(conditions)
    assert windows.shape == (conditions.num_frames, 2 * config.context + 1, 32)
    assert np.array_equal(windows[3, config.context], windows[4, config.context - 1])   # neighbours are frames
    with pytest.raises(TalkingHeadError) as err:
        EMOGenerator(base.vae, network, crop_size=128).audio_windows(conditions)
    assert "audio_encoder" in _one_sentence(err)

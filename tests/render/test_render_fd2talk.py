"""FD2Talk's frame generator (3.3, 3.4.2): the perceptual distance, VGG16 and Stable Diffusion VAE loading from local
folders, the reference-conditioned decoder, the UNet's two cross-attentions learning a conditioned target, the three
stage-2 solvers on a tiny video dataset, the renderer behind ``generate`` (paired with FD2Talk's DiTs and by name)
with paste-back, and one-sentence errors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from talkinghead.data.video.build import VideoCorpusConfig, build_video_corpus
from talkinghead.data.video.format import VideoDataset
from talkinghead.errors import TalkingHeadError
from talkinghead.face.model import ARKIT_LAYOUT
from talkinghead.generators import Portrait, load_renderer, write_manifest
from talkinghead.render.fd2talk.autoencoder import AutoencoderConfig, FrameAutoencoder
from talkinghead.render.fd2talk.perceptual import (
    VGG16Features,
    images_to_tensor,
    load_perceptual,
    perceptual_distance,
    tensor_to_images,
)
from talkinghead.render.fd2talk.renderer import FD2TalkFrameRenderer, FrameSampling, holds_frame_generator
from talkinghead.render.fd2talk.training import held_out_clips, training_sampler
from talkinghead.render.fd2talk.unet import FrameUNet, UNetConfig
from talkinghead.render.paste import paste
from talkinghead.sequence import MotionSequence
from talkinghead.training.run import train

pytestmark = pytest.mark.usefixtures("one_thread")


def _one_sentence(err: pytest.ExceptionInfo[TalkingHeadError]) -> str:
    text = str(err.value)
    assert "\n" not in text and text.endswith("."), text
    return text


# ---------------------------------------------------------------------------------------------- networks

def test_perceptual_distance_is_zero_for_equal_images_and_grows_with_the_difference() -> None:
    torch.manual_seed(0)
    net = VGG16Features().eval()
    a = torch.rand(2, 3, 32, 32) * 2 - 1
    noise = torch.randn_like(a)
    d0 = perceptual_distance(net, a, a)
    d = [perceptual_distance(net, a, (a + s * noise).clamp(-1, 1)) for s in (0.05, 0.2, 0.8)]
    assert torch.allclose(d0, torch.zeros(2), atol=1e-6)
    assert all((x < y).all() for x, y in zip(d, d[1:], strict=False)) and (d[-1] <= 4).all()


def test_vgg16_loads_from_torchvision_names_and_refuses_other_weights(tmp_path: Path) -> None:
    torch.manual_seed(0)
    ref = VGG16Features()
    weights = {k: v.clone() for k, v in ref.state_dict().items() if k.startswith("features.")}
    save_file({**weights, "classifier.0.weight": torch.zeros(2, 2)}, str(tmp_path / "model.safetensors"))
    net = load_perceptual(tmp_path)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    assert all(torch.equal(p, q) for p, q in zip(net(x), ref(x), strict=True))
    save_file({k: v for k, v in weights.items() if k != "features.28.bias"}, str(tmp_path / "model.safetensors"))
    with pytest.raises(TalkingHeadError) as err:
        load_perceptual(tmp_path)
    assert "features.28.bias" in _one_sentence(err)


def test_a_stable_diffusion_vae_loads_and_decodes_as_before_until_fine_tuned(tmp_path: Path) -> None:
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    config = AutoencoderConfig.preset("tiny")
    pretrained = AutoencoderKL(**config.diffusers_config(), scaling_factor=0.25).eval()
    pretrained.save_pretrained(tmp_path / "vae")
    model = FrameAutoencoder.from_diffusers(tmp_path / "vae").eval()
    assert model.config == config and float(model.latent_scale) == 0.25 and model.factor == 4
    images = torch.rand(2, 3, 128, 128) * 2 - 1
    with torch.no_grad():
        z = pretrained.encode(images).latent_dist.mode()
        assert torch.allclose(model.encode(images), 0.25 * z, atol=1e-5)
        other_reference = torch.randn_like(z)                   # the reference half starts at zero
        assert torch.allclose(model.decode_raw(other_reference, z), pretrained.decode(z).sample, atol=1e-5)
    with pytest.raises(TalkingHeadError) as err:
        FrameAutoencoder.from_diffusers(tmp_path / "missing")
    _one_sentence(err)


def test_the_decoder_reads_the_reference_latent() -> None:
    torch.manual_seed(0)
    model = FrameAutoencoder(AutoencoderConfig.preset("tiny", image_size=32)).eval()
    z = torch.randn(1, 4, 8, 8)
    with torch.no_grad():
        assert not torch.allclose(model.decode_raw(z, z), model.decode_raw(-z, z))


@pytest.mark.parametrize(("conditioning", "reference_input"), [("two_cross_attention", False),
                                                               ("concatenated", False), ("two_cross_attention", True)])
def test_the_unet_learns_a_target_set_by_the_motion_and_the_reference(conditioning: str, reference_input: bool) -> None:
    """J_0 depends on both conditions: its sign on the motion's first coefficient, its pattern on the reference."""
    torch.manual_seed(0)
    config = UNetConfig.preset("tiny", latent_size=8, motion_dim=3, conditioning=conditioning,
                               reference_input=reference_input)
    net = FrameUNet(config)
    assert (net.mid_attn.phi2 is None) == (conditioning == "concatenated")
    assert net.conv_in.in_channels == (8 if reference_input else 4)
    motion = torch.tensor([[1.0, 0, 0], [-1.0, 0, 0]]).repeat(4, 1)           # [8, 3]
    reference = torch.randn(2, 4, 8, 8).repeat(4, 1, 1, 1)
    reference[4:] = reference[4:].flip(-1)
    target = motion[:, :1, None, None] * reference.abs()
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    losses = []
    for _ in range(120):
        t = torch.randint(0, 1000, (8,))
        pred = net(target + torch.randn_like(target) * (t[:, None, None, None] / 1000), t, motion, reference)
        loss = torch.nn.functional.mse_loss(pred, target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert np.mean(losses[-10:]) < 0.3 * np.mean(losses[:10])
    with torch.no_grad():
        t = torch.full((2,), 999)
        x = torch.zeros(2, 4, 8, 8)
        base = net(x, t, motion[:2], reference[:2])
        assert not torch.allclose(base, net(x, t, -motion[:2], reference[:2]), atol=1e-3)
        assert not torch.allclose(base, net(x, t, motion[:2], reference[:2].flip(-2)), atol=1e-3)


def test_paste_keeps_the_photo_away_from_the_face_and_shows_the_crop_inside() -> None:
    photo = np.full((100, 120, 3), 50, np.uint8)
    crop = np.full((16, 16, 3), 200, np.uint8)
    out = paste(photo, crop, np.array([40.0, 30.0, 32.0]), 0.2)
    assert out.shape == photo.shape and out.dtype == np.uint8
    assert (out[:25] == 50).all() and (out[:, :35] == 50).all() and (out[:, 80:] == 50).all()
    assert (out[44:48, 54:58] == 200).all()                              # the crop's middle, at full weight


def test_images_round_trip_through_tensors() -> None:
    frames = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    assert np.array_equal(tensor_to_images(images_to_tensor(frames)).numpy(), frames)


# -------------------------------------------------------------------------------------- solvers and renderer

@pytest.fixture(scope="module")
def motion_corpus(make_corpus: Callable[..., Path]) -> Path:
    return make_corpus("tiny", "fd2talk_frames_motion")


@pytest.fixture(scope="module")
def video(motion_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    motion = motion_corpus
    out = tmp_path_factory.mktemp("fd2talk_frames") / "video"
    build_video_corpus(motion, None, out, VideoCorpusConfig.preset("tiny"))
    return out


@pytest.fixture(scope="module")
def folder(video: Path) -> Path:
    """A tiny frame generator trained through the registry's three components, with a manifest."""
    root = video.parent / "fd2talk"
    train("fd2talk.perceptual", video, root / "perceptual", "tiny", steps=4, tensorboard=False)
    train("fd2talk.autoencoder", video, root / "autoencoder", "tiny", steps=4, tensorboard=False,
          perceptual=root / "perceptual")
    train("fd2talk.unet", video, root / "unet", "tiny", steps=4, tensorboard=False, autoencoder=root / "autoencoder")
    write_manifest(root, "fd2talk", {}, frames={"autoencoder": "autoencoder", "unet": "unet"},
                   frame_sampling={"steps": 2, "batch_frames": 3})
    return root


def test_the_three_solvers_write_checkpoints_that_load(folder: Path, video: Path) -> None:
    ae = FrameAutoencoder.from_pretrained(folder / "autoencoder")
    unet = FrameUNet.from_pretrained(folder / "unet")
    layout = VideoDataset(video).info.layout
    assert unet.config.latent_size == 128 // ae.factor and unet.config.motion_dim == layout.size + 6
    assert unet.layout == layout.to_dict()
    frames = VideoDataset(video).frames(VideoDataset(video).ids("train")[0], [0, 1, 2, 3])
    with torch.no_grad():
        latents = ae.encode(images_to_tensor(frames))
    assert 0.3 < float(latents.std()) < 3.0                            # latent_scale: about unit variance
    assert holds_frame_generator(folder) and not holds_frame_generator(folder / "unet")
    with pytest.raises(TalkingHeadError) as err:
        train("fd2talk.autoencoder", video, folder / "nope", "tiny", steps=1, tensorboard=False)
    assert "--perceptual" in _one_sentence(err)


def test_decoder_only_fine_tuning_keeps_the_unets_latent_space(folder: Path, video: Path, tmp_path: Path) -> None:
    """``fd2talk.autoencoder --decoder-only DIR``: the loss falls on a fixed batch with no KL term, only the decoder
    side changes, and the exported autoencoder encodes exactly as before (so the UNet trained on it stays valid)."""
    from talkinghead.render.fd2talk.training import build_autoencoder

    built = build_autoencoder(video, "tiny", perceptual=folder / "perceptual", decoder_only=folder / "autoencoder")
    solver = built.solver
    model = solver.build_model()
    before = {k: v.clone() for k, v in model.named_parameters()}
    step, optimizer = solver.wrap(model), solver.optimizer(model, built.config)
    batch = solver.make_batch(np.random.default_rng(0), 4)
    losses = []
    for _ in range(30):
        torch.manual_seed(1)                                            # the same posterior sample every step
        loss, metrics = step(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert "kl" not in metrics and np.mean(losses[-3:]) < 0.9 * np.mean(losses[:3]), losses
    changed = {k.split(".")[1] for k, v in model.named_parameters() if not torch.equal(v, before[k])}
    assert changed and changed <= {"decoder", "post_quant_conv"}
    solver.export(model, tmp_path / "autoencoder", {})
    original = FrameAutoencoder.from_pretrained(folder / "autoencoder")
    tuned = FrameAutoencoder.from_pretrained(tmp_path / "autoencoder")
    assert float(tuned.latent_scale) == float(original.latent_scale)
    with torch.no_grad():
        torch.testing.assert_close(tuned.encode(batch["target"][:2]), original.encode(batch["target"][:2]))
    with pytest.raises(TalkingHeadError, match="Give one of"):
        build_autoencoder(video, "tiny", perceptual=folder / "perceptual", decoder_only=folder / "autoencoder",
                          vae=folder / "autoencoder")
    # --init: both halves start from the trained autoencoder and learn (with the KL term)
    full = build_autoencoder(video, "tiny", perceptual=folder / "perceptual", init=folder / "autoencoder")
    start = full.solver.build_model()
    assert full.solver.build_model() is not start        # the loop's export model must not be the one it trains
    for (name, value), (_, trained) in zip(start.state_dict().items(), original.state_dict().items(), strict=True):
        torch.testing.assert_close(value, trained, msg=name)
    assert all(p.requires_grad for p in start.parameters())
    _, full_metrics = full.solver.wrap(start)(full.solver.make_batch(np.random.default_rng(0), 4))
    assert "kl" in full_metrics


def test_the_mouth_region_is_the_lower_middle_of_the_face_box_on_the_latent_grid() -> None:
    from talkinghead.render.fd2talk.training import mouth_region

    mask = mouth_region(np.array([[32.0, 32.0, 96.0, 96.0], [0.0, 0.0, 128.0, 128.0]]), 128, 32)
    assert mask.shape == (2, 1, 32, 32) and set(np.unique(mask)) == {0.0, 1.0}
    # x 48..80 px and y 71.7..94.1 px: cells whose centres (4 i + 2) lie inside, columns 12-19, rows 18-23
    expected = np.zeros((32, 32), np.float32)
    expected[18:24, 12:20] = 1
    np.testing.assert_array_equal(mask[0, 0], expected)
    rows, cols = np.nonzero(mask[1, 0])
    assert rows.min() == 20 and rows.max() == 30 and cols.min() == 8 and cols.max() == 23


def test_the_mouth_weight_adds_the_mouth_error_and_init_fine_tunes_a_trained_unet(folder: Path, video: Path) -> None:
    """``--mouth-weight W``: the loss is the error weighted 1 + W in the mouth region over the mean weight, so with
    the plain (Eq. 16) and mouth errors ``e``, ``m`` and the region's share ``f`` it is ``(e + W f m) / (1 + W f)``;
    ``--init DIR`` starts from DIR's UNet and refuses one of another shape."""
    from talkinghead.render.fd2talk.training import build_unet

    built = build_unet(video, "tiny", autoencoder=folder / "autoencoder", mouth_weight=9, init=folder / "unet")
    assert built.config.mouth_weight == 9.0 and built.extra["mouth_weight"] == 9.0
    model = built.solver.build_model()
    assert built.solver.build_model() is not model       # the loop's export model must not be the one it trains
    trained = FrameUNet.from_pretrained(folder / "unet")
    for (name, value), (_, original) in zip(model.state_dict().items(), trained.state_dict().items(), strict=True):
        torch.testing.assert_close(value, original, msg=name)
    batch = built.solver.make_batch(np.random.default_rng(0), 4)
    share = float(batch["mouth"].mean())
    assert 0.02 < share < 0.5
    step = built.solver.wrap(model)
    torch.manual_seed(3)
    with torch.no_grad():
        loss, metrics = step(batch)
    e, m = float(metrics["plain"]), float(metrics["mouth"])
    assert float(loss) == pytest.approx((e + 9 * share * m) / (1 + 9 * share), rel=1e-4)
    plain = build_unet(video, "tiny", autoencoder=folder / "autoencoder", init=folder / "unet")
    plain_step = plain.solver.wrap(plain.solver.build_model())
    torch.manual_seed(3)                                                # the same noise as above
    with torch.no_grad():
        loss0, metrics0 = plain_step(batch)
    assert float(loss0) == pytest.approx(e, rel=1e-5) and float(metrics0["mouth"]) == pytest.approx(m, rel=1e-5)
    with pytest.raises(TalkingHeadError, match="another shape"):
        build_unet(video, "tiny", autoencoder=folder / "autoencoder", init=folder / "unet", concat_conditions=True)


def test_the_adversarial_term_trains_a_discriminator_beside_the_decoder_and_is_not_saved(
        folder: Path, video: Path, tmp_path: Path) -> None:
    """``--adversarial-percent P``: the discriminator learns alone for the warm-up steps, then the generator term
    joins with LDM's adaptive weight; the optimiser holds the discriminator, the exported autoencoder does not."""
    from talkinghead.render.fd2talk.training import build_autoencoder

    built = build_autoencoder(video, "tiny", perceptual=folder / "perceptual", decoder_only=folder / "autoencoder",
                              adversarial_percent=50, train_overrides={"adversarial_warmup": 2})
    solver = built.solver
    assert built.config.adversarial_weight == 0.5 and built.extra["losses"]["adversarial_weight"] == 0.5
    model = solver.build_model()
    disc_before = {k: v.clone() for k, v in solver.discriminator.named_parameters()}
    step, optimizer = solver.wrap(model), solver.optimizer(model, built.config)
    batch = solver.make_batch(np.random.default_rng(0), 4)
    weights = []
    for _ in range(4):
        loss, metrics = step(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        weights.append(float(metrics["adv_weight"]))
    assert weights[:2] == [0.0, 0.0] and min(weights[2:]) > 0, weights
    assert any(not torch.equal(v, disc_before[k]) for k, v in solver.discriminator.named_parameters())
    solver.export(model, tmp_path / "autoencoder", {})
    keys = set(FrameAutoencoder.from_pretrained(tmp_path / "autoencoder").state_dict())
    assert keys == set(FrameAutoencoder.from_pretrained(folder / "autoencoder").state_dict())
    assert build_autoencoder(video, "tiny", perceptual=folder / "perceptual").solver.discriminator is None


def test_held_out_real_clips_are_the_last_of_each_video_and_are_not_trained_on(video: Path) -> None:
    ds = VideoDataset(video)
    held = held_out_clips(video)
    by_portrait: dict[str, list[str]] = {}
    for clip_id in ds.ids(None):
        by_portrait.setdefault(ds.meta(clip_id).portrait, []).append(clip_id)
    assert held == sorted(max(ids) for ids in by_portrait.values() if len(ids) > 1)
    sampler = training_sampler(video, video)
    assert not {lab.meta.id for lab in sampler.labels if lab.source == 1} & set(held)


def test_the_renderer_pastes_generated_faces_into_the_photo(folder: Path, portrait: np.ndarray) -> None:
    renderer = FD2TalkFrameRenderer.from_pretrained(folder)
    assert renderer.sampling.steps == 2 and renderer.image_size == 128
    fitted = Portrait.fit(portrait)
    expression = np.zeros((4, ARKIT_LAYOUT.size), np.float32)
    expression[2:, 0] = 0.6                                               # jawOpen in the last two frames
    motion = MotionSequence(expression, np.repeat(fitted.pose[None], 4, 0), ARKIT_LAYOUT)
    frames = list(renderer.render(fitted, motion, 256))
    again = list(renderer.render(fitted, motion, 256))
    assert len(frames) == 4 and frames[0].shape == portrait.shape and frames[0].dtype == np.uint8
    assert all(np.array_equal(a, b) for a, b in zip(frames, again, strict=True))       # seeded
    assert np.array_equal(frames[0][420:], portrait[420:])                # far below the face: the photo itself
    assert not np.array_equal(frames[0], portrait)
    crops = list(FD2TalkFrameRenderer(renderer.autoencoder, renderer.unet, renderer.crop_scale,
                                      FrameSampling.preset("tiny", paste_back=False)).render(fitted, motion, 96))
    assert crops[0].shape == (96, 96, 3)
    # only the face goes back (the default): the whole crop changes more of the photo, the face's middle in both
    whole_crop = FrameSampling.preset("tiny", paste_region="crop")
    whole = next(iter(FD2TalkFrameRenderer(renderer.autoencoder, renderer.unet, renderer.crop_scale,
                                           whole_crop).render(fitted, motion, 256)))
    changed_face = np.abs(frames[0].astype(int) - portrait).max(-1) > 0
    changed_crop = np.abs(whole.astype(int) - portrait).max(-1) > 0
    assert changed_face.sum() < 0.7 * changed_crop.sum() and not (changed_face & ~changed_crop).any()
    nose = np.round(renderer.frame_motion(fitted, motion, "absolute")[1][0, 4]).astype(int)
    assert changed_face[nose[1], nose[0]] and np.array_equal(frames[0][nose[1], nose[0]], whole[nose[1], nose[0]])
    with pytest.raises(TalkingHeadError) as err:
        renderer.render(Portrait(None, fitted.identity, fitted.expression, fitted.pose), motion, 256)
    assert "photo" in _one_sentence(err)


def test_bfloat16_precision_gives_nearly_the_same_crops(folder: Path, portrait: np.ndarray) -> None:
    """``precision = "bfloat16"`` (the shipped manifest's ``auto`` on processors with native bfloat16) runs the UNet
    and the decoder under autocast: different crops, within a few 8-bit levels of float32's."""
    renderer = FD2TalkFrameRenderer.from_pretrained(folder)
    fitted = Portrait.fit(portrait)
    expression = np.zeros((3, ARKIT_LAYOUT.size), np.float32)
    expression[1:, 0] = 0.5
    motion = MotionSequence(expression, np.repeat(fitted.pose[None], 3, 0), ARKIT_LAYOUT)
    crops = {p: np.stack(list(FD2TalkFrameRenderer(renderer.autoencoder, renderer.unet, renderer.crop_scale,
                                                   FrameSampling.preset("tiny", paste_back=False, precision=p))
                              .render(fitted, motion, 64)))
             for p in ("float32", "bfloat16")}
    difference = np.abs(crops["float32"].astype(float) - crops["bfloat16"])
    assert 0 < difference.mean() < 2.0
    with pytest.raises(TalkingHeadError, match="precision"):
        FrameSampling(precision="half")  # type: ignore[arg-type]


def test_mouth_guidance_extrapolates_from_the_reference_mouth_to_the_motions(folder: Path) -> None:
    """Guidance ``w`` steps with ``rest + w (moving - rest)``: 0 renders the rest condition (the motion with the
    reference's mouth), 1 the motion itself; a motion whose mouth is the reference's is untouched by any ``w``."""
    base = FD2TalkFrameRenderer.from_pretrained(folder)
    crop = np.random.default_rng(0).integers(0, 256, (128, 128, 3), dtype=np.uint8)
    motion = np.zeros((4, ARKIT_LAYOUT.size + 6), np.float32)
    motion[:, ARKIT_LAYOUT.indices("brows")] = 0.3
    motion[1:, ARKIT_LAYOUT.indices("mouth")] = np.linspace(0.2, 0.9, 3)[:, None]   # the mouth moves after frame 0
    own = motion[0].copy()
    own[0] = 0.4                                                          # the reference crop shows an open jaw

    def crops(w: float, coefficients: np.ndarray, reference: np.ndarray | None = own) -> np.ndarray:
        r = FD2TalkFrameRenderer(base.autoencoder, base.unet, base.crop_scale,
                                 FrameSampling.preset("tiny", paste_back=False, mouth_guidance=w))
        return np.stack(list(r.generate_crops(crop, coefficients, reference))).astype(int)

    rest = base.rest_coefficients(motion, own)
    assert np.array_equal(rest[:, ARKIT_LAYOUT.indices("brows")], motion[:, ARKIT_LAYOUT.indices("brows")])
    assert (rest[:, ARKIT_LAYOUT.indices("mouth")] == own[ARKIT_LAYOUT.indices("mouth")]).all()
    plain = crops(1.0, motion)
    assert np.abs(crops(0.0, motion) - crops(1.0, rest)).max() <= 1            # batching may move one level
    assert np.abs(crops(2.5, rest) - crops(1.0, rest)).max() <= 1
    assert np.abs(crops(2.5, motion) - plain).max() > 1                         # amplified where the mouth moved
    # without the reference's coefficients the first frame's are the rest: frame 0 is then its own rest
    assert np.abs(crops(3.0, motion, None)[0] - plain[0]).max() <= 1
    with pytest.raises(TalkingHeadError, match="mouth guidance"):
        FrameSampling(mouth_guidance=-1.0)


def test_mouth_guidance_max_gap_guides_only_references_whose_lips_are_shut(folder: Path, portrait: np.ndarray) -> None:
    """``mouth_guidance_max_gap``: the reference crop's own inner-lip gap decides. With the limit below the photo's
    gap (the astronaut smiles with parted lips) it renders exactly as without guidance; above it, as guided."""
    from talkinghead.evaluation.mouth import image_gap

    base = FD2TalkFrameRenderer.from_pretrained(folder)
    fitted = Portrait.fit(portrait)
    gap = image_gap(portrait)
    assert 0.05 < gap < 0.3
    expression = np.zeros((3, ARKIT_LAYOUT.size), np.float32)
    expression[1:, ARKIT_LAYOUT.indices("mouth")] = 0.6
    motion = MotionSequence(expression, np.repeat(fitted.pose[None], 3, 0), ARKIT_LAYOUT)

    def frames(w: float, max_gap: float | None) -> np.ndarray:
        r = FD2TalkFrameRenderer(base.autoencoder, base.unet, base.crop_scale,
                                 FrameSampling.preset("tiny", paste_back=False, mouth_guidance=w,
                                                      mouth_guidance_max_gap=max_gap))
        expected = 1.0 if max_gap is not None and max_gap < gap else w
        assert r.mouth_guidance_for(r.reference(fitted).still()) == expected
        return np.stack(list(r.render(fitted, motion, 64))).astype(int)

    faceless = FD2TalkFrameRenderer(base.autoencoder, base.unet, base.crop_scale,
                                    FrameSampling.preset("tiny", mouth_guidance=3.0, mouth_guidance_max_gap=1.0))
    assert faceless.mouth_guidance_for(np.full((64, 64, 3), 128, np.uint8)) == 1.0     # no face found: unguided
    unguided, guided = frames(1.0, None), frames(3.0, None)
    assert np.abs(guided - unguided).max() > 1
    assert np.array_equal(frames(3.0, gap - 0.03), unguided)
    assert np.array_equal(frames(3.0, gap + 0.03), guided)
    with pytest.raises(TalkingHeadError, match="lip gap"):
        FrameSampling(mouth_guidance_max_gap=float("nan"))


def test_the_renderer_is_registered_and_a_folder_without_it_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TalkingHeadError) as err:
        FD2TalkFrameRenderer.from_pretrained(tmp_path)
    assert "warp renderer" in _one_sentence(err)
    assert type(load_renderer("warp")).__name__ == "WarpFrameRenderer"
    with pytest.raises(TalkingHeadError) as err:
        load_renderer("nope")
    assert "fd2talk" in _one_sentence(err) and "warp" in str(err.value)


def test_generate_renders_fd2talk_motion_with_its_own_frame_generator(folder: Path, motion_corpus: Path,
                                                                     tmp_path: Path, portrait: np.ndarray,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The DiTs and the frame generator in one folder: ``generate`` uses the UNet unless ``renderer`` says otherwise."""
    import shutil

    from talkinghead.api import generate
    from talkinghead.io.audio import Audio
    from talkinghead.motion.fd2talk.generator import FD2TalkGenerator, write_fd2talk_manifest

    both = shutil.copytree(folder, tmp_path / "both")
    train("fd2talk.expression", motion_corpus, both / "expression", "tiny", steps=2, no_sync_loss=True,
          tensorboard=False)
    train("fd2talk.pose", motion_corpus, both / "pose", "tiny", steps=2, tensorboard=False)
    write_fd2talk_manifest(both, frames={"autoencoder": "autoencoder", "unet": "unet"},
                           frame_sampling={"steps": 2, "batch_frames": 5})
    assert isinstance(FD2TalkGenerator.from_pretrained(both).paired_renderer(), FD2TalkFrameRenderer)
    t = np.arange(8000) / 16000
    audio = Audio((0.3 * np.sin(2 * np.pi * 180 * t) * (np.sin(2 * np.pi * 3 * t) > 0)).astype(np.float32), 16000)
    small = portrait[::2, ::2].copy()
    calls: list[int] = []
    original = FD2TalkFrameRenderer.render
    monkeypatch.setattr(FD2TalkFrameRenderer, "render",
                        lambda self, *a, **k: calls.append(1) or original(self, *a, **k))
    made = generate(small, audio, output=tmp_path / "unet.mp4", checkpoint=both)
    warp = generate(small, audio, output=tmp_path / "warp.mp4", checkpoint=both, renderer="warp")
    assert calls == [1] and made.num_frames == warp.num_frames > 0
    assert (tmp_path / "unet.mp4").stat().st_size > 0 and (tmp_path / "warp.mp4").stat().st_size > 0
    assert "render" in made.timings


def test_augment_changes_the_autoencoders_pairs_alike_and_the_unets_colours_only(folder: Path, video: Path) -> None:
    """``--augment``: the autoencoder's pairs change, the UNet's pairs are recoloured while their motion and mouth
    region (from the untouched face boxes) stay as they were."""
    from talkinghead.render.fd2talk.training import build_autoencoder, build_unet

    plain = build_autoencoder(video, "tiny", perceptual=folder / "perceptual")
    built = build_autoencoder(video, "tiny", perceptual=folder / "perceptual", augment=True)
    assert built.extra["augment"] is True and plain.extra["augment"] is False
    a = plain.solver.make_batch(np.random.default_rng(0), 4)
    b = built.solver.make_batch(np.random.default_rng(0), 4)
    assert not torch.allclose(a["target"], b["target"])
    unet = build_unet(video, "tiny", autoencoder=folder / "autoencoder")
    unet_aug = build_unet(video, "tiny", autoencoder=folder / "autoencoder", augment=True)
    c = unet.solver.make_batch(np.random.default_rng(0), 4)
    d = unet_aug.solver.make_batch(np.random.default_rng(0), 4)
    torch.testing.assert_close(c["motion"], d["motion"])
    torch.testing.assert_close(c["mouth"], d["mouth"])
    assert not torch.allclose(c["target"], d["target"])
    # the target's brightest pixels stay where they were (colour only, no flip or zoom)
    for x, y in zip(c["target"].mean(1), d["target"].mean(1), strict=True):
        corr = np.corrcoef(x.flatten().numpy(), y.flatten().numpy())[0, 1]
        assert abs(corr) > 0.6


def test_any_reference_draws_the_unets_reference_from_other_frames_of_the_clip(folder: Path, video: Path) -> None:
    """The paper's reference is the clip's first frame; ``--any-reference`` takes any other frame of the clip."""
    from talkinghead.render.fd2talk.training import build_unet

    seen = {}
    for flag in (False, True):
        solver = build_unet(video, "tiny", autoencoder=folder / "autoencoder", any_reference=flag).solver
        draw = solver.sampler.pairs

        def capture(*args, _draw=draw, _flag=flag, **kwargs):  # type: ignore[no-untyped-def]
            seen[_flag] = batch = _draw(*args, **kwargs)
            return batch

        solver.sampler.pairs = capture  # type: ignore[method-assign]
        solver.make_batch(np.random.default_rng(0), 16)
    assert (seen[False].ref_index == 0).all()
    assert (seen[True].ref_index > 0).any() and (seen[True].ref_index != seen[True].index).all()

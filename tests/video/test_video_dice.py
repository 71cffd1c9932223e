"""DICE-Talk end to end (issue 17): the ``dice.network`` checkpoint and Eq. 15's training loss, the ``dice.video``
solver on a tiny video corpus (with a tiny ``dice.embedder`` and EMO's tiny VAE, two steps each), the loss falling on
a fixed batch, the frozen helpers staying frozen, each Table 4 ablation flag, the emotion bank's W_Q / W_K learning
with the inference-path fix, real (unlabelled) clips, and the ``dice`` generator (a frame per audio frame pasted into
the photo, seeds, emotion from a prompt, a reference motion, the speech or a mix, overlapping clips, one-sentence
errors)."""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from talkinghead.data.video.build import VideoCorpusConfig, build_video_corpus
from talkinghead.data.video.format import VideoDataset
from talkinghead.errors import TalkingHeadError
from talkinghead.generators import REGISTRY, Conditions, Portrait, StyleRequest, load_generator
from talkinghead.io.audio import Audio
from talkinghead.training.loop import fit
from talkinghead.training.run import train
from talkinghead.video.dice import COMPONENTS
from talkinghead.video.dice import training as dice_training
from talkinghead.video.dice.discriminator import LatentEmotionJudge
from talkinghead.video.dice.embedder import EmotionEmbedder, EmotionPrior
from talkinghead.video.dice.network import DICEConfig, DICENetwork
from talkinghead.video.dice.pipeline import DICEGenerator, DICESampling, clip_starts, write_dice_manifest
from talkinghead.video.emo import training as emo_training

pytestmark = pytest.mark.usefixtures("one_thread")


def _one_sentence(err: pytest.ExceptionInfo[TalkingHeadError]) -> str:
    text = str(err.value)
    assert "\n" not in text and text.endswith("."), text
    return text


# ------------------------------------------------------------------------------------------------ fixtures

@pytest.fixture(scope="module")
def motion(make_corpus: Callable[..., Path]) -> Path:
    return make_corpus("tiny", "dice_motion")


@pytest.fixture(scope="module")
def video(motion: Path) -> Path:
    out = motion.parent / "video"
    build_video_corpus(motion, None, out, VideoCorpusConfig.preset("tiny"))
    return out


@pytest.fixture(scope="module")
def folder(motion: Path, video: Path) -> Path:
    """EMO's VAE, the embedder and ``dice.video``, two steps each, as ``talkinghead train`` makes them, with a
    manifest."""
    root = video.parent / "dice"
    train("dice.embedder", motion, root / "embedder", "tiny", steps=2, tensorboard=False)
    vae = emo_training.build_vae(video, "tiny", train_overrides={"steps": 2})
    fit(vae.solver, vae.config, root / "vae", preset="tiny", tensorboard=False, extra=vae.extra)
    built = dice_training.build_video(video, "tiny", train_overrides={"steps": 2}, vae=root / "vae",
                                      embedder=root / "embedder")
    fit(built.solver, built.config, root / "network", preset="tiny", tensorboard=False, extra=built.extra)
    write_dice_manifest(root, {"steps": 2, "overlap": 1}, seed=0, commands=["(test fixture)"])
    return root


@pytest.fixture(scope="module")
def generator(folder: Path) -> DICEGenerator:
    return DICEGenerator.from_pretrained(folder)


@pytest.fixture(scope="module")
def astronaut() -> Portrait:
    from skimage import data

    return Portrait.fit(data.astronaut())


def _audio(seconds: float) -> Audio:
    t = np.arange(int(16000 * seconds)) / 16000
    return Audio((0.3 * np.sin(2 * np.pi * 180 * t) * (np.sin(2 * np.pi * 3 * t) > 0)).astype(np.float32), 16000)


def _build(video: Path, folder: Path, **options: Any) -> Any:
    return dice_training.build_video(video, "tiny", **{"vae": folder / "vae", "embedder": folder / "embedder",
                                                       **options})


def _perturb_emotion(network: DICENetwork, seed: int = 1) -> None:
    """Random weights for the UNet's zero-initialised emotion-attention outputs (as if trained longer)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layers in network.unet.condition_layers.values():
            out = layers.emotion.to_out
            out.weight.copy_(torch.randn(out.weight.shape, generator=g) * 0.5)


# ---------------------------------------------------------------------------------------------- checkpoint

def test_every_declared_option_reaches_its_builder() -> None:
    spec = next(s for s in COMPONENTS if s.name == "dice.video")
    params = inspect.signature(spec.load_builder()).parameters
    assert all(o.name in params for o in spec.options)
    assert {o.flag for o in spec.options} >= {"--no-bank", "--no-discriminator", "--deterministic-prior", "--embedder",
                                              "--vae", "--unet", "--real"}


def test_the_checkpoint_holds_the_data_sizes_and_audio_statistics(folder: Path) -> None:
    from talkinghead.checkpoint import read_checkpoint_info

    net = DICENetwork.from_pretrained(folder / "network")
    embedder = EmotionEmbedder.from_pretrained(folder / "embedder")
    cfg = net.dice_config
    assert cfg.emotions == embedder.emotions == ("happy", "neutral") and cfg.discriminator.emotions == 2
    assert cfg.emotion_dim == embedder.config.d_s and cfg.image_size == 32 and cfg.frames == 4
    assert net.bank is not None and net.discriminator is not None
    norm = net.unet.audio_projection.norm
    assert not torch.equal(norm.std, torch.ones_like(norm.std))                   # the trainer set the statistics
    extra = read_checkpoint_info(folder / "network").extra
    assert extra["crop_size"] == 128 and extra["prior_from"] == "clip" and extra["step"] == 2
    assert REGISTRY["dice"].kind == "video"
    assert isinstance(load_generator(folder), DICEGenerator)                      # the manifest names it


# ------------------------------------------------------------------------------------------------ training

@pytest.fixture(scope="module")
def solver(video: Path, folder: Path) -> Any:
    return _build(video, folder).solver


def test_the_full_objective_falls_on_a_fixed_batch_and_only_the_network_trains(solver: Any) -> None:
    torch.manual_seed(0)
    model = solver.build_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    frozen = {k: v.clone() for k, v in [*solver.vae.state_dict().items(),
                                        *(("embedder." + k, v) for k, v in solver.embedder.state_dict().items())]}
    step = solver.wrap(model)
    batch = solver.make_batch(np.random.default_rng(0), 2)
    optimizer = solver.optimizer(model, solver.train_config)
    history: dict[str, list[float]] = {}
    for _ in range(25):
        torch.manual_seed(1)                             # one fixed batch: the same noise, sigma, drops and prior
        loss, metrics = step(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        for k, v in metrics.items():
            history.setdefault(k, []).append(float(v))
    first, last = ({k: float(np.mean(v[sl])) for k, v in history.items()} for sl in (slice(0, 3), slice(-3, None)))
    # every part of Eq. 15 falls; L_vq slowly (only the selected prototypes move, at the learning rate's pace)
    assert last["denoising"] < 0.5 * first["denoising"] and last["cls"] < 0.5 * first["cls"], history
    assert last["vq"] < first["vq"] and last["loss"] < first["loss"] - 1.0, history
    changed = {k.split(".")[0] if not k.startswith("unet.") else ".".join(k.split(".")[:2])
               for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert changed == {"unet.unet", "unet.reference_encoder", "unet.audio_projection", "unet.condition_layers",
                       "bank", "discriminator"}, changed
    stats = [k for k in before if ".norm." in k and k.startswith("unet.audio_projection")]
    assert stats and all(torch.equal(model.state_dict()[k], before[k]) for k in stats)
    after = {**solver.vae.state_dict(), **{"embedder." + k: v for k, v in solver.embedder.state_dict().items()}}
    assert all(torch.equal(after[k], v) for k, v in frozen.items())


def _latents(solver: Any, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, EmotionPrior]:
    with torch.no_grad():
        frames = batch["frames"]
        lat = solver.vae.encode(frames.flatten(0, 1)).unflatten(0, frames.shape[:2])
        ref = solver.vae.encode(batch["reference"])
        prior = solver.embedder.prior(batch["prior_expression"], batch["prior_audio"], batch["prior_valid"])
    return lat, ref, prior


def _loss(net: DICENetwork, solver: Any, batch: dict[str, torch.Tensor], seed: int = 0, **kw: Any) -> Any:
    lat, ref, prior = _latents(solver, batch)
    return net.training_loss(lat, ref, batch["audio"], prior, batch["label"],
                             generator=torch.Generator().manual_seed(seed), **kw)


def test_the_content_variant_judges_the_prediction_and_its_gradient_reaches_the_unet(video: Path, folder: Path) -> None:
    """``--discriminate prediction``: the discriminator is a latent judge; L_cls's gradient reaches the UNet through
    the denoised prediction; the emotion-attention offset cannot name the emotion to it (the judge reads latents)."""
    built = _build(video, folder, discriminate="prediction").solver
    torch.manual_seed(0)
    net = built.build_model()
    assert isinstance(net.discriminator, LatentEmotionJudge) and net.dice_config.discriminate == "prediction"
    batch = built.make_batch(np.random.default_rng(0), 2)
    out = _loss(net, built, batch, drop={k: torch.zeros(2, dtype=torch.bool) for k in ("audio", "image", "emotion")})
    assert out.logits is not None and out.logits.shape == (2, net.dice_config.discriminator.emotions)
    assert float(out.losses.cls.detach()) > 0
    out.losses.cls.backward()
    assert bool(net.unet.unet.conv_out.weight.grad.abs().sum() > 0)               # through D(x; sigma)
    assert bool(net.discriminator.conv[0].weight.grad.abs().sum() > 0)            # from the clean clips
    with pytest.raises(TalkingHeadError, match="features"):
        DICEConfig.preset("tiny", discriminate="pixels")
    # a warm start from the paper-variant network: the UNet and bank copied, the new judge kept
    warm_solver = _build(video, folder, discriminate="prediction", init=folder / "network").solver
    torch.manual_seed(0)
    warm = warm_solver.build_model()
    shipped = DICENetwork.from_pretrained(folder / "network").state_dict()
    own = warm.state_dict()
    assert all(torch.equal(own[k], v) for k, v in shipped.items() if k.startswith(("unet.", "bank.")))
    assert not any(k.startswith("discriminator.conv") for k in shipped)
    assert torch.equal(own["discriminator.conv.0.weight"], net.state_dict()["discriminator.conv.0.weight"])


@pytest.mark.parametrize("flag", ["no_bank", "no_discriminator", "deterministic_prior", "learnable_ca"])
def test_each_ablation_changes_what_it_should(flag: str, video: Path, folder: Path, solver: Any) -> None:
    """w/o emotion bank: no bank, ``E_s = s``, no L_vq; w/o L_cls: no discriminator, L_cls = 0; deterministic prior:
    ``s = mu_s`` (Sec. 4.5); learnable CA: every sample attends to all the (randomly initialised) embeddings, no
    L_vq, and W_Q, W_K learn. The other parts of the loss stay."""
    ablated = _build(video, folder, **{flag: True}).solver
    torch.manual_seed(0)
    net = ablated.build_model()
    batch = ablated.make_batch(np.random.default_rng(0), 2)
    out = _loss(net, ablated, batch)
    parts = {k: float(v) for k, v in out.metrics().items()}
    out.losses.total.backward()
    _, _, prior = _latents(ablated, batch)
    assert bool(net.unet.unet.conv_in.weight.grad.abs().sum() > 0)                # the UNet always trains
    if flag == "no_bank":
        assert net.bank is None and not any(k.startswith("bank.") for k in net.state_dict())
        assert torch.equal(out.emotion[:, 0], out.s) and parts["vq"] == 0.0
        assert parts["cls"] > 0 and net.discriminator is not None
    elif flag == "learnable_ca":
        assert net.bank is not None and parts["vq"] == 0.0 and parts["cls"] > 0
        with torch.no_grad():
            assert torch.allclose(out.emotion[:, 0], net.bank.attend_all(out.s))
        # W_Q and W_K learn once the emotion attention reads E_s (its output starts at zero)
        _perturb_emotion(net)
        net.zero_grad()
        drop = {name: torch.zeros(2, dtype=torch.bool) for name in ("image", "audio", "emotion")}
        _loss(net, ablated, batch, drop=drop, has_emotion=torch.ones(2, dtype=torch.bool)).losses.total.backward()
        assert float(net.bank.to_q.weight.grad.abs().sum()) > 0 and float(net.bank.to_k.weight.grad.abs().sum()) > 0
        # not the data-dependent start of the bank: the embeddings are the bank's own N(0, 1) draw
        full = solver.build_model()
        assert full.bank is not None and not torch.allclose(net.bank.prototypes, full.bank.prototypes)
    elif flag == "no_discriminator":
        assert net.discriminator is None and out.logits is None and parts["cls"] == 0.0
        assert not any(k.startswith("discriminator.") for k in net.state_dict()) and parts["vq"] > 0
    else:
        assert torch.equal(out.s, prior.mean) and parts["vq"] > 0 and parts["cls"] > 0
        assert torch.equal(_loss(net, ablated, batch, seed=5).s, out.s)
    if flag != "deterministic_prior":                                             # the paper: Eq. 6's sample
        assert not torch.allclose(out.s, prior.mean)
        assert not torch.equal(_loss(net, ablated, batch, seed=5).s, out.s)
    assert net.dice_config.emotion_bank == (flag != "no_bank")
    assert net.dice_config.discrimination == (flag != "no_discriminator")
    assert net.dice_config.deterministic_prior == (flag == "deterministic_prior")
    assert net.dice_config.learnable_ca == (flag == "learnable_ca")
    if flag == "learnable_ca":
        with pytest.raises(TalkingHeadError, match="cannot go with --no-bank"):
            _build(video, folder, learnable_ca=True, no_bank=True)


def test_the_banks_query_and_key_maps_learn_with_the_inference_path_fix(solver: Any) -> None:
    """Eq. 11 with one retrieved key has a softmax of 1: W_Q and W_K get no gradient (the paper as written, fraction
    0). With samples on the inference path (Eq. 12-13) they do, and E_s there is Eq. 13's."""
    torch.manual_seed(0)
    base = solver.build_model()
    _perturb_emotion(base)                                    # the emotion attention reads E_s (as once trained)
    batch = solver.make_batch(np.random.default_rng(1), 2)
    drop = {name: torch.zeros(2, dtype=torch.bool) for name in ("image", "audio", "emotion")}
    grads = {}
    for fraction in (0.0, 1.0):
        net = copy.deepcopy(base)
        net.config = net.dice_config.replace(bank_inference_fraction=fraction)
        out = _loss(net, solver, batch, drop=drop, has_emotion=torch.ones(2, dtype=torch.bool))
        out.losses.total.backward()
        assert net.bank is not None
        grads[fraction] = [0.0 if w.grad is None else float(w.grad.abs().sum())
                           for w in (net.bank.to_q.weight, net.bank.to_k.weight, net.bank.to_v.weight)]
        with torch.no_grad():
            expected = net.bank.attend_all(out.s) if fraction else net.bank.retrieve(out.s)
        assert torch.allclose(out.emotion[:, 0], expected)
    assert grads[0.0][0] == 0.0 and grads[0.0][1] == 0.0 and grads[0.0][2] > 0
    assert all(g > 0 for g in grads[1.0])
    draws = base.draw_bank_path(4000, torch.Generator().manual_seed(0))
    assert abs(float(draws.float().mean()) - base.dice_config.bank_inference_fraction) < 0.03


def test_real_clips_are_unlabelled_and_drop_their_emotion(video: Path, folder: Path) -> None:
    """``--real``: its clips (the last of each video held out) carry label -1, no emotion, and L_cls skips them."""
    built = _build(video, folder, real=video, train_overrides={"real_fraction": 1.0})
    data = built.solver.data
    from talkinghead.render.fd2talk.training import held_out_clips

    held = held_out_clips(video)                          # the last clip of the (one) video, never trained on
    assert len(held) == 1 and held[0] not in [lab.meta.id for lab in data.sampler.labels]
    assert [lab.source for lab in data.sampler.labels] == [0, 1]
    batch = built.solver.make_batch(np.random.default_rng(0), 3)
    assert batch["label"].tolist() == [-1] * 3 and not bool(batch["has_emotion"].any())
    torch.manual_seed(0)
    net = built.solver.build_model()
    out = _loss(net, built.solver, batch, has_audio=batch["has_audio"], has_emotion=batch["has_emotion"])
    assert bool(out.drop["emotion"].all()) and out.labels.tolist() == [-1] * 3 and float(out.losses.cls.detach()) == 0.0
    labelled = _build(video, folder, real=video, train_overrides={"real_fraction": 0.0}).solver.make_batch(
        np.random.default_rng(0), 3)
    assert bool(labelled["has_emotion"].all()) and set(labelled["label"].tolist()) <= {0, 1}


def test_the_emotion_reference_is_the_clip_or_a_same_emotion_partner(video: Path, folder: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    own = _build(video, folder).solver.data
    rng = np.random.default_rng(0)
    assert [own.reference_clip(rng, k) for k in range(2)] == [0, 1]
    partner = _build(video, folder, prior_from="partner").solver.data
    assert partner.reference_clip(rng, 0) == 0                                   # no other identity: the clip
    monkeypatch.setattr(partner.sampler, "emotion_partners", lambda k, length, audio=True: [1 - k])
    assert [partner.reference_clip(rng, k) for k in range(2)] == [1, 0]


def test_the_reference_image_comes_from_the_clip_or_another_clip_of_its_identity(
        video: Path, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    own = _build(video, folder).solver.data
    rng = np.random.default_rng(0)
    count = len(own.labelled)
    assert [own.reference_frame_clip(rng, k) for k in range(count)] == list(range(count))
    solver = _build(video, folder, reference_from="identity", train_overrides={"real_fraction": 0.0}).solver
    data = solver.data
    identity = [lab.meta.identity for lab in data.sampler.labels]
    for k in range(count):
        j = data.reference_frame_clip(rng, k)
        assert identity[j] == identity[k] and (j != k or identity.count(identity[k]) == 1)
    # the batch's reference image is a frame of the chosen clip (made white here), the targets the clip's own
    monkeypatch.setattr(data, "reference_image", lambda rng, j: np.full((128, 128, 3), 255, np.uint8))
    monkeypatch.setattr(data, "reference_frame_clip", lambda rng, k: (k + 1) % count)
    batch = solver.make_batch(np.random.default_rng(0), 3)
    assert bool((batch["reference"] > 0.999).all()) and not bool((batch["frames"] > 0.999).all())
    monkeypatch.setattr(data, "reference_frame_clip", lambda rng, k: k)
    assert not bool((solver.make_batch(np.random.default_rng(0), 3)["reference"] > 0.999).all())
    with pytest.raises(TalkingHeadError, match="reference image"):
        _build(video, folder, reference_from="portrait")


# ----------------------------------------------------------------------------------------------- generator

def test_the_generator_makes_a_frame_per_audio_frame_pasted_into_the_photo(generator: DICEGenerator,
                                                                        astronaut: Portrait) -> None:
    assert generator.sampling.steps == 2 and generator.sampling.overlap == 1 and generator.crop_size == 128
    conditions = Conditions(_audio(0.44), astronaut, seed=3)
    out = generator.generate(conditions, 256)
    frames = list(out.frames)
    assert out.num_frames == conditions.num_frames == len(frames) == 11
    photo = astronaut.image
    assert photo is not None
    assert frames[0].shape == photo.shape and frames[0].dtype == np.uint8
    assert np.array_equal(frames[0][470:], photo[470:])                          # far below the face: the photo
    assert not np.array_equal(frames[0], photo)
    assert out.source == "dice (emotion audio)" and {"dice_sampling", "dice_decode"} <= set(out.timings)
    again = list(generator.generate(Conditions(_audio(0.44), astronaut, seed=3), 256).frames)
    other = list(generator.generate(Conditions(_audio(0.44), astronaut, seed=4), 256).frames)
    assert all(np.array_equal(a, b) for a, b in zip(frames, again, strict=True))
    assert not np.array_equal(frames[5], other[5])
    crops = list(generator.crops(Conditions(_audio(0.2), astronaut), 48))
    assert len(crops) == 5 and crops[0].shape == (48, 48, 3) and crops[0].dtype == np.uint8


def test_bfloat16_precision_gives_nearly_the_same_frames(generator: DICEGenerator, astronaut: Portrait) -> None:
    """``precision = "bfloat16"`` (the shipped manifest's ``auto`` on processors with native bfloat16) runs the
    network and the decoder under autocast: different frames, within a few 8-bit levels of float32's."""
    base = generator.sampling
    crops = {}
    try:
        for precision in ("float32", "bfloat16"):
            generator.sampling = base.replace(precision=precision)
            crops[precision] = np.stack(list(generator.crops(Conditions(_audio(0.2), astronaut, seed=1), 64)))
    finally:
        generator.sampling = base
    difference = np.abs(crops["float32"].astype(float) - crops["bfloat16"])
    assert 0 < difference.mean() < 2.0
    with pytest.raises(TalkingHeadError, match="precision"):
        DICESampling(precision="half")  # type: ignore[arg-type]


def test_only_the_face_box_is_pasted_back(generator: DICEGenerator, astronaut: Portrait,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A decoder that returns a white crop: the face turns white, the crop's corners stay the photo unless
    ``paste_region="crop"``."""
    gen = copy.copy(generator)
    size = gen.image_size
    monkeypatch.setattr(gen, "decode", lambda latents, *_: np.full((len(latents), size, size, 3), 255, np.uint8))
    crop = gen.crop(astronaut)
    x, y, side = crop.box.astype(int)
    corner = (slice(y + side // 16, y + side // 10), slice(x + side // 16, x + side // 10))
    k = side / gen.image_size
    cx, cy = (int(v) for v in (np.array([x, y]) + k * (crop.face[:2] + crop.face[2:]) / 2))
    photo = astronaut.image
    assert photo is not None
    face = next(iter(gen.generate(Conditions(_audio(0.2), astronaut), 256).frames))
    assert (face[cy - 2:cy + 2, cx - 2:cx + 2] == 255).all()
    assert np.abs(face[corner].astype(int) - photo[corner]).mean() < 2
    gen.sampling = gen.sampling.replace(paste_region="crop")
    whole = next(iter(gen.generate(Conditions(_audio(0.2), astronaut), 256).frames))
    assert np.abs(whole[corner].astype(int) - photo[corner]).mean() > 10


def test_overlapping_clips_continue_the_previous_clips_latents(generator: DICEGenerator,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Every frame comes out once; while clip k is sampled its first ``overlap`` frames are clip k - 1's final
    latents re-noised to each step's sigma with clip k's noise, and the emitted overlap cross-fades the two."""
    assert clip_starts(11, 4, 1) == [0, 3, 6, 9] and clip_starts(4, 4, 1) == [0] and clip_starts(5, 4, 0) == [0, 4]
    cfg = generator.network.dice_config
    calls: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
    original = generator.network.denoiser

    def spy(reference: torch.Tensor, audio: torch.Tensor, emotion: Any, scales: Any) -> Any:
        inner = original(reference, audio, emotion, scales)

        def denoiser(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
            out = inner(x, sigma)
            calls.append((x.clone(), sigma.clone(), out.clone()))
            return out  # type: ignore[no-any-return]

        return denoiser

    monkeypatch.setattr(generator.network, "denoiser", spy)
    c = cfg.unet.latent_channels
    audio = torch.randn(11, 2 * cfg.context + 1, cfg.unet.audio_dim)
    reference = torch.randn(1, c, 8, 8)
    tokens = generator.emotion_tokens(torch.randn(cfg.emotion_dim))
    settings = DICESampling.preset("tiny", overlap=1, steps=3)
    clips = list(generator.sample_clips(reference, audio, tokens, settings, seed=0))
    assert [len(k) for k in clips] == [3, 3, 3, 2] and len(calls) == 4 * 3         # 11 frames, each once
    draws = torch.Generator().manual_seed(0)
    noises = [torch.randn(1, 4, c, 8, 8, generator=draws) for _ in range(4)]
    for k in (1, 2, 3):
        held = calls[3 * k - 1][2][0, 3]                      # clip k - 1's final last frame (Euler's last x = D)
        for x, sigma, _ in calls[3 * k:3 * k + 3]:
            assert torch.allclose(x[0, 0], held + sigma[0] * noises[k][0, 0], atol=1e-5)
        new = calls[3 * k + 2][2][0, 0]                        # clip k's own estimate of that frame
        assert torch.allclose(clips[k][0], 0.5 * held + 0.5 * new, atol=1e-5)
    assert torch.allclose(clips[0], calls[2][2][0, :3], atol=1e-6)                 # the first clip is its own


def test_emotion_sources_prompts_reference_motion_audio_and_mixes(generator: DICEGenerator, astronaut: Portrait,
                                                                  video: Path) -> None:
    embedder = generator.embedder
    happy, neutral = embedder.emotion_prompt("happy"), embedder.emotion_prompt("neutral")
    assert torch.allclose(generator.prompt("happy", 2), happy, atol=1e-6)
    assert torch.allclose(generator.prompt("happy", 3) - neutral, 1.5 * (happy - neutral), atol=1e-6)
    assert torch.allclose(generator.prompt("happy", 1) - neutral, 0.5 * (happy - neutral), atol=1e-6)
    clip = VideoDataset(video).clip(VideoDataset(video).ids("train")[0])
    audio = _audio(0.2)

    def prior(style: StyleRequest) -> tuple[torch.Tensor, str]:
        return generator.emotion(Conditions(audio, astronaut, style))

    s_ref, source = prior(StyleRequest(reference=clip.motion))
    assert source == "reference" and torch.allclose(s_ref, embedder.clip_prior(clip.motion, None).mean[0])
    s_audio, source = prior(StyleRequest())
    assert source == "audio" and not torch.allclose(s_audio, s_ref)
    s_mix, source = prior(StyleRequest(emotion="happy", mix="neutral", mix_alpha=0.25))
    assert torch.allclose(s_mix, 0.75 * happy + 0.25 * neutral, atol=1e-6)
    assert source == "emotion:happy x0.75 + emotion:neutral x0.25"
    assert torch.equal(prior(StyleRequest(code=happy.numpy()))[0], happy)
    # at inference the bank attends to every prototype (Eq. 12-13)
    bank = generator.network.bank
    assert bank is not None
    assert torch.allclose(generator.emotion_tokens(happy)[0, 0], bank.attend_all(happy[None])[0])


def test_the_emotion_changes_the_frames_and_a_reference_motion_drives_them(generator: DICEGenerator,
                                                                          astronaut: Portrait, video: Path) -> None:
    clip = VideoDataset(video).clip(VideoDataset(video).ids("train")[0])
    trained = generator.emotion_tokens(generator.prompt("happy"))
    other = generator.emotion_tokens(generator.prompt("neutral"))
    assert not torch.allclose(trained, other)
    louder = DICEGenerator(generator.vae, generator.embedder, copy.deepcopy(generator.network),
                           DICESampling.preset("tiny"), generator.crop_scale, generator.crop_size)
    _perturb_emotion(louder.network)

    def frames(style: StyleRequest) -> np.ndarray:
        return np.stack(list(louder.crops(Conditions(_audio(0.2), astronaut, style, seed=2), 32))).astype(int)

    happy, neutral = frames(StyleRequest(emotion="happy")), frames(StyleRequest(emotion="neutral"))
    assert np.abs(happy - neutral).mean() > 0.05                                  # (identical if it were ignored)
    assert np.array_equal(frames(StyleRequest(emotion="happy")), happy)
    by_reference = frames(StyleRequest(reference=clip.motion))
    assert by_reference.shape == happy.shape and not np.array_equal(by_reference, happy)


def test_bad_requests_are_one_sentence(generator: DICEGenerator, folder: Path, astronaut: Portrait, video: Path,
                                       tmp_path: Path) -> None:
    no_photo = Portrait(None, astronaut.identity, astronaut.expression, astronaut.pose)
    audio = _audio(0.2)

    def run(style: StyleRequest | None = None, **kw: Any) -> Any:
        return generator.generate(Conditions(audio, kw.pop("portrait", astronaut), style or StyleRequest(), **kw), 256)

    cases: list[tuple[Callable[[], Any], str]] = [
        (lambda: DICEGenerator.from_pretrained(tmp_path), "dice.embedder"),
        (lambda: run(portrait=no_photo), "photo"),
        (lambda: run(StyleRequest(emotion="furious")), "furious"),
        (lambda: run(StyleRequest(emotion="happy", intensity=4)), "intensity"),
        (lambda: run(StyleRequest(emotion="happy", code=np.zeros(3))), "at most one"),
        (lambda: run(StyleRequest(code=np.zeros(3))), "values"),
        (lambda: run(StyleRequest(emotion="happy", mix="happy:7")), "neither a file"),
        (lambda: run(speed=1.0), "head-speed"),
        (lambda: _build(video, folder, embedder=None), "--embedder"),
        (lambda: dice_training.build_video(video, "tiny", embedder=folder / "embedder"), "--vae"),
        (lambda: DICEConfig.preset("tiny", context=2), "audio windows"),
        (lambda: DICESampling.preset("tiny", steps=0), "steps"),
        (lambda: DICEGenerator(generator.vae, generator.embedder, generator.network,
                               DICESampling.preset("tiny", overlap=4)), "overlap"),
    ]
    for call, words in cases:
        with pytest.raises(TalkingHeadError) as err:
            call()
        assert words in _one_sentence(err), err.value


def test_the_shipped_model_loads() -> None:
    """weights/dice loads with this version's configs (a field added to DICEConfig must reach the shipped one)."""
    shipped = Path(__file__).resolve().parents[2] / "weights" / "dice"
    generator = DICEGenerator.from_pretrained(shipped)
    assert generator.network.dice_config.discriminate == "features" and generator.image_size == 128

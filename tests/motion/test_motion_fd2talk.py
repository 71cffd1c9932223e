"""FD2Talk's motion DiT (3.2) and its training (3.4.1): the alignment mask of Eq. 4 against one built by hand and
its effect on what each frame hears, shapes, x0 prediction and the step of Eq. 5, tiny runs of the expression, pose
and single DiTs whose loss falls, the sync loss (present, weighted, through the identity's mouth, gone with
--no-sync-loss), the ablation flags recorded in the checkpoint, the checkpoint round trip, one-sentence errors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from error_helpers import one_sentence
from talkinghead.checkpoint import read_checkpoint_info
from talkinghead.diffusion import ScheduleConfig, make_scheduler, sample
from talkinghead.errors import TalkingHeadError
from talkinghead.face.model import ARKIT_LAYOUT, FaceModel
from talkinghead.motion.fd2talk import DiTConfig, MotionDiT, alignment_mask
from talkinghead.motion.fd2talk.data import FD2TalkCorpus
from talkinghead.sequence import POSE_NAMES
from talkinghead.training.registry import check_options, get_component
from talkinghead.training.run import build_solver, train

E = ARKIT_LAYOUT.size

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py: tiny models run single-threaded


def _tiny(**changes: Any) -> MotionDiT:
    torch.manual_seed(0)
    return MotionDiT(DiTConfig.preset("tiny", motion_dim=5, **changes)).eval()


@pytest.fixture(scope="module")
def corpus(make_corpus: Callable[..., Path]) -> Path:
    """The synthetic corpus's tiny preset (ARKit layout, identities with a neutral shape, tiny features)."""
    return make_corpus("tiny", "fd2talk_corpus")


@pytest.fixture(scope="module")
def expert(corpus: Path) -> Path:
    """A tiny lip expert on the corpus's features (a couple of steps: the test needs it frozen, not good)."""
    folder = corpus.parent / "lip_expert"
    train("dreamtalk.lip_expert", corpus, folder, "tiny", steps=2, tensorboard=False)
    return folder


@pytest.fixture(scope="module")
def trained(corpus: Path, expert: Path) -> dict[str, dict[str, Any]]:
    """The expression DiT (with the sync loss), the pose DiT and the single DiT, 40 tiny steps each."""
    runs: dict[str, tuple[str, dict[str, Any]]] = {"expression": ("fd2talk.expression", {"lip_expert": expert}),
                                                   "pose": ("fd2talk.pose", {}),
                                                   "joint": ("fd2talk.expression",
                                                             {"lip_expert": expert, "single_dit": True})}
    out = {}
    for name, (component, options) in runs.items():
        folder = corpus.parent / name
        out[name] = dict(train(component, corpus, folder, "tiny", steps=40, tensorboard=False, **options),
                         folder=folder)
    return out


def _extra(folder: Path) -> dict[str, Any]:
    return read_checkpoint_info(folder, MotionDiT.component).extra


# -------------------------------------------------------------------------------------------------- model

def test_the_alignment_mask_is_eq_4() -> None:
    for frames, keys, k in ((10, 10, 3), (6, 9, 1), (5, 5, 0)):
        by_hand = torch.zeros(frames, keys, dtype=torch.bool)
        for j in range(frames):                     # motion frame j (query)
            for i in range(keys):                   # condition frame i (key)
                by_hand[j, i] = j - k <= i <= j + k
        assert torch.equal(alignment_mask(frames, keys, k), by_hand)
    assert torch.equal(alignment_mask(4, 4, 0), torch.eye(4, dtype=torch.bool))
    assert int(alignment_mask(20, 20).sum(1).max()) == 7 and DiTConfig().align_k == 3     # k = 3: 2k + 1 frames


def test_each_motion_frame_hears_only_the_audio_within_k_frames() -> None:
    """One layer: self-attention comes before the cross-attention and the feed-forward is per frame, so output
    frame j can depend on audio frame i only through the masked cross-attention."""
    frames, hit = 24, 10
    for masked in (True, False):
        net = _tiny(layers=1, alignment_mask=masked)
        x, t = torch.randn(1, frames, 5), torch.tensor([500])
        audio = torch.randn(1, frames, 8)
        moved = audio.clone()
        moved[0, hit] += 3.0
        with torch.no_grad():
            change = (net(x, t, moved) - net(x, t, audio)).abs().amax(-1)[0]       # [F]
        heard = change > 1e-6
        if masked:
            assert heard.tolist() == [abs(j - hit) <= 3 for j in range(frames)]
        else:
            assert bool(heard.all())                                              # every frame hears frame 10


def test_shapes_and_the_step_conditions_every_frame() -> None:
    net = _tiny()
    x, audio = torch.randn(3, 16, 5), torch.randn(3, 16, 8)
    with torch.no_grad():
        out = net(x, torch.tensor([0, 10, 999]), audio)
        again = net(x, torch.tensor([0, 10, 998]), audio)
    assert out.shape == (3, 16, 5) and torch.isfinite(out).all()
    torch.testing.assert_close(out[:2], again[:2], atol=1e-6, rtol=0)
    assert not torch.allclose(out[2], again[2])
    assert net.condition(torch.tensor([1, 2, 3]), audio).shape == (3, 16, 32)


def test_x0_prediction_and_the_step_of_eq_5() -> None:
    """DDIM with x0 prediction is Eq. 5: p_{t-1} = sqrt(abar_{t-1}) x0 + sqrt(1 - abar_{t-1} - sigma^2) (p_t -
    sqrt(abar_t) x0) / sqrt(1 - abar_t) + sigma eps; a denoiser that knows x0 lands on it exactly."""
    schedule = ScheduleConfig()
    scheduler = make_scheduler(schedule, "ddim")
    scheduler.set_timesteps(10)
    t, prev = int(scheduler.timesteps[3]), int(scheduler.timesteps[4])
    abar = scheduler.alphas_cumprod
    x0, xt, eps = torch.randn(2, 7, 5), torch.randn(2, 7, 5), torch.randn(2, 7, 5)
    eta = 0.6
    sigma = eta * torch.sqrt((1 - abar[prev]) / (1 - abar[t]) * (1 - abar[t] / abar[prev]))
    by_hand = abar[prev].sqrt() * x0 + torch.sqrt(1 - abar[prev] - sigma**2) * (xt - abar[t].sqrt() * x0) \
        / torch.sqrt(1 - abar[t]) + sigma * eps
    step = scheduler.step(x0, t, xt, eta=eta, variance_noise=eps).prev_sample
    torch.testing.assert_close(step, by_hand, atol=1e-5, rtol=1e-5)

    target = torch.randn(1, 9, 5)
    out = sample(lambda x, t: target.expand_as(x), (1, 9, 5), make_scheduler(schedule), 10,
                 generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, target, atol=1e-5, rtol=1e-5)


def test_bad_inputs_fail_with_one_sentence() -> None:
    net = _tiny()
    x, t, audio = torch.randn(2, 8, 5), torch.tensor([1, 2]), torch.randn(2, 8, 8)
    for bad in ((torch.randn(2, 8, 4), t, audio), (x, t, torch.randn(2, 8, 7)), (x, t, torch.randn(2, 9, 8)),
                (x, torch.tensor([1]), audio)):
        with pytest.raises(TalkingHeadError) as err:
            net(*bad)
        one_sentence(err)
    for changes in ({"heads": 3}, {"align_k": -1}, {"layers": 0}):
        with pytest.raises(TalkingHeadError) as err:
            DiTConfig.preset("tiny", **changes)
        one_sentence(err)


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    net = _tiny(alignment_mask=False)
    net.motion_norm.set_stats(torch.arange(5.0), torch.full((5,), 2.0))
    net.save_pretrained(tmp_path / "dit")
    back = MotionDiT.from_pretrained(tmp_path / "dit")
    x, t, audio = torch.randn(2, 8, 5), torch.tensor([3, 700]), torch.randn(2, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(back(x, t, audio), net(x, t, audio), atol=0, rtol=0)
    assert back.config == net.config and not back.config.alignment_mask


# ------------------------------------------------------------------------------------------------ training

def test_the_registry_declares_the_components_and_their_flags() -> None:
    expression, pose = get_component("fd2talk.expression"), get_component("fd2talk.pose")
    assert [o.name for o in expression.options] == ["lip_expert", "no_sync_loss", "no_alignment_mask", "single_dit"]
    assert [o.name for o in pose.options] == ["no_alignment_mask"]
    with pytest.raises(TalkingHeadError, match="--single-dit applies to fd2talk.expression, not fd2talk.pose"):
        check_options("fd2talk.pose", {"single_dit": True})


def test_windows_hold_the_part_and_the_identity_mouth(corpus: Path, expert: Path) -> None:
    from talkinghead.data.dataset import Dataset

    names = tuple(read_checkpoint_info(expert).audio_features["names"])                 # type: ignore[index]
    parts = {"expression": E, "pose": 6, "joint": E + 6}
    for part, width in parts.items():
        c = FD2TalkCorpus(corpus, part, lip_features=names, identity_mouth=True)
        w = c.window(0, 3, 12)
        clip = Dataset(corpus).clip(c.clips[0].id)
        motion = {"expression": clip.motion.expression, "pose": clip.motion.pose,
                  "joint": np.concatenate([clip.motion.expression, clip.motion.pose], 1)}[part]
        assert c.motion_dim == width and w.motion.shape == (12, width)
        np.testing.assert_allclose(w.motion, motion[3:15], rtol=0, atol=1e-6)
        np.testing.assert_allclose(w.expression, clip.motion.expression[3:15], rtol=0, atol=1e-6)
        assert w.lip_audio is not None and w.lip_audio.shape == (12, 19)
    assert c.channels == (*ARKIT_LAYOUT.channels, *POSE_NAMES) and len(c.clips) == 2    # the train split
    _, basis = FaceModel.for_identity(clip.motion.identity["neutral"]).basis_tensor()
    np.testing.assert_array_equal(c.mouth_bases[c.clips[0].mouth], basis.numpy())          # [E, M, 3]


def test_each_dit_trains_and_its_loss_falls(trained: dict[str, dict[str, Any]]) -> None:
    for name, summary in trained.items():
        losses = summary["losses"]
        assert summary["steps_run"] == 40
        assert np.mean(losses[-10:]) < 0.8 * np.mean(losses[:10]), (name, losses)
    assert set(trained["expression"]["metrics"]) == {"exp", "sync", "p_sync", "loss"}
    assert set(trained["pose"]["metrics"]) == {"pose", "loss"}
    assert set(trained["joint"]["metrics"]) == {"exp", "pose", "sync", "p_sync", "loss"}
    m = trained["joint"]["metrics"]                                                     # Eq. 12
    np.testing.assert_allclose(m["loss"], np.array(m["exp"]) + np.array(m["pose"]) + 0.1 * np.array(m["sync"]),
                               rtol=1e-5)


def test_the_sync_loss_is_weighted_and_trains_the_dit_through_the_frozen_expert(corpus: Path, expert: Path) -> None:
    losses, grads = {}, {}
    for weight in (0.1, 2.0):
        built = build_solver("fd2talk.expression", corpus, "tiny", train_overrides={"lambda_sync": weight,
                                                                                      "lambda_exp": 0.0},
                             lip_expert=expert)
        solver = built.solver
        torch.manual_seed(0)
        model = solver.build_model()
        step = solver.wrap(model)
        batch = solver.make_batch(np.random.default_rng(5), 4)
        loss, metrics = step(batch)
        loss.backward()
        losses[weight] = (float(loss.detach()), float(metrics["sync"]), float(metrics["p_sync"]))
        grads[weight] = model.head.weight.grad.abs().sum()                                 # type: ignore[union-attr]
        assert not any(p.requires_grad for p in solver.lip_expert.parameters())
        assert not solver.lip_expert.training
        assert batch["mouth_basis"].shape == (4, E, 40, 3) and batch["lip_audio"].shape == (4, 5, 19)
    for weight, (loss, sync, p) in losses.items():
        assert loss == pytest.approx(weight * sync, rel=1e-5) and sync > 0 and 0 < p <= 1
    assert losses[0.1][1] == pytest.approx(losses[2.0][1], rel=1e-6)
    assert float(grads[0.1]) > 0 and float(grads[2.0]) == pytest.approx(20 * float(grads[0.1]), rel=1e-3)


def test_the_ablation_flags_change_what_is_trained_and_are_recorded(corpus: Path, expert: Path,
                                                                    trained: dict[str, Any], tmp_path: Path) -> None:
    full = _extra(trained["expression"]["folder"])
    assert full["variant"] == [] and full["sync_loss"] and full["alignment_mask"] and full["part"] == "expression"
    assert full["mouth"] == "identity" and full["lip_expert"] == str(expert) and full["window_frames"] == 12
    assert full["losses"] == {"lambda_exp": 1.0, "lambda_pose": 0.0, "lambda_sync": 0.1}
    assert full["command"] == "talkinghead train fd2talk.expression --preset tiny" and full["align_k"] == 3
    joint = _extra(trained["joint"]["folder"])
    assert joint["variant"] == ["single_dit"] and joint["part"] == "joint"
    assert joint["channels"] == [*ARKIT_LAYOUT.channels, *POSE_NAMES]
    assert MotionDiT.from_pretrained(trained["joint"]["folder"]).config.motion_dim == E + 6
    pose = _extra(trained["pose"]["folder"])
    assert pose["variant"] == [] and not pose["sync_loss"] and pose["lip_expert"] is None

    summary = train("fd2talk.expression", corpus, tmp_path / "plain", "tiny", steps=3, tensorboard=False,
                    no_sync_loss=True, no_alignment_mask=True)
    assert set(summary["metrics"]) == {"exp", "loss"}
    info = _extra(tmp_path / "plain")
    assert info["variant"] == ["no_alignment_mask", "no_sync_loss"] and not info["sync_loss"]
    assert not info["alignment_mask"] and info["lip_expert"] is None and info["mouth"] is None
    assert info["command"] == "talkinghead train fd2talk.expression --preset tiny --no-sync-loss --no-alignment-mask"
    assert not MotionDiT.from_pretrained(tmp_path / "plain").config.alignment_mask
    train("fd2talk.pose", corpus, tmp_path / "pose", "tiny", steps=2, tensorboard=False, no_alignment_mask=True)
    assert _extra(tmp_path / "pose")["variant"] == ["no_alignment_mask"]


def test_the_checkpoint_holds_the_trained_model(corpus: Path, trained: dict[str, Any]) -> None:
    from talkinghead.training.state import load_state

    folder = trained["pose"]["folder"]
    net = MotionDiT.from_pretrained(folder)
    solver = build_solver("fd2talk.pose", corpus, "tiny").solver
    reference = solver.build_model().eval()
    reference.load_state_dict(load_state(folder.with_name(folder.name + ".train")).ema)
    batch = solver.make_batch(np.random.default_rng(3), 2)
    with torch.no_grad():
        torch.testing.assert_close(net(batch["noise"], batch["t"], batch["audio"]),
                                   reference(batch["noise"], batch["t"], batch["audio"]), atol=0, rtol=0)
    assert net.layout is not None and net.layout["channels"] == list(POSE_NAMES) and net.preset_name == "tiny"
    assert net.audio_features is not None and net.audio_features["names"] == ["energy", "f0", "logmel", "voicing"]


def test_bad_training_inputs_fail_with_one_sentence(corpus: Path, expert: Path) -> None:
    with pytest.raises(TalkingHeadError, match="lip expert reads the audio feature") as err:
        build_solver("fd2talk.expression", corpus, "tiny")              # the shipped expert: 122-d features
    one_sentence(err)
    with pytest.raises(TalkingHeadError, match="at least the lip expert's clip length") as err:
        build_solver("fd2talk.expression", corpus, "tiny", train_overrides={"window_frames": 4}, lip_expert=expert)
    one_sentence(err)
    with pytest.raises(TalkingHeadError) as err:
        build_solver("fd2talk.expression", corpus, "tiny", lip_expert=corpus / "nowhere")
    one_sentence(err)

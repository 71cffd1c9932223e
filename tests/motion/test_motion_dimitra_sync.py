"""The lips model's optional sync loss (an extension beyond Dimitra's paper, mirroring FD2Talk's Expression
Transformer): the step adds ``lambda_sync * -log P_sync`` of the frozen lip expert on the predicted mouth put into
the window's full expression, gradients reach the cMDT through it, a tiny run's loss falls, the checkpoint records
it, and without it the batch and the loss are exactly the previous ones."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from error_helpers import one_sentence
from talkinghead.checkpoint import read_checkpoint_info
from talkinghead.diffusion import add_noise
from talkinghead.errors import TalkingHeadError
from talkinghead.face.model import ARKIT_LAYOUT, MOUTH_CHANNELS, FaceModel
from talkinghead.motion.dimitra import CMDT, CMDTConditions
from talkinghead.motion.dimitra.training.motion import LAMBDA_DIFF, build_part
from talkinghead.motion.dreamtalk.lip_expert import EPS
from talkinghead.training.registry import check_options, get_component
from talkinghead.training.run import train

E = ARKIT_LAYOUT.size
BASE_KEYS = {"motion", "first_frame", "audio", "phonemes", "text_tokens", "text_mask", "t", "noise"}
SYNC_KEYS = {"expression", "lip_start", "lip_audio", "mouth_basis", "style", "style_valid"}

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py: tiny models run single-threaded


@pytest.fixture(scope="module")
def corpus(make_corpus: Callable[..., Path]) -> Path:
    """The synthetic corpus's tiny preset: phone timings, transcripts, identities with a neutral shape."""
    return make_corpus("tiny", "dimitra_sync_corpus")


@pytest.fixture(scope="module")
def expert(corpus: Path) -> Path:
    """A tiny lip expert on the corpus's features (a couple of steps: the test needs it frozen, not good)."""
    folder = corpus.parent / "lip_expert"
    train("dreamtalk.lip_expert", corpus, folder, "tiny", steps=2, tensorboard=False)
    return folder


def _step(corpus: Path, expert: Path | None, seed: int = 5, **overrides: Any) -> tuple[Any, Any, Any, Any]:
    """A built lips solver, its fresh model (seeded), the step module and one batch."""
    sync = expert is not None
    solver = build_part("lips", corpus, "tiny", train_overrides=overrides or None, sync_loss=sync,
                        lip_expert=expert).solver
    torch.manual_seed(0)
    model = solver.build_model()
    torch.manual_seed(seed)
    batch = solver.make_batch(np.random.default_rng(seed), 4)
    return solver, model, solver.wrap(model), batch


def test_the_registry_gives_the_lips_model_alone_the_sync_loss() -> None:
    assert [o.name for o in get_component("dimitra.lips").options] == [
        "no_phonemes", "no_transcript", "sync_loss", "lip_expert", "audio_context", "phoneme_noise_percent",
        "speech_dropout_percent"]
    for part in ("face", "pose"):
        assert "sync_loss" not in [o.name for o in get_component(f"dimitra.{part}").options]
        with pytest.raises(TalkingHeadError, match=f"--sync-loss applies to dimitra.lips, not dimitra.{part}"):
            check_options(f"dimitra.{part}", {"sync_loss": True})


def test_the_batch_carries_the_windows_full_expression_and_the_experts_inputs(corpus: Path, expert: Path) -> None:
    from talkinghead.data.dataset import Dataset

    solver, _, _, batch = _step(corpus, expert)
    assert set(batch) == BASE_KEYS | SYNC_KEYS
    columns = list(solver.corpus.columns)
    assert [ARKIT_LAYOUT.channels[i] for i in columns] == list(MOUTH_CHANNELS)
    assert batch["expression"].shape == (4, 12, E) and batch["lip_audio"].shape == (4, 5, 19)
    assert batch["mouth_basis"].shape == (4, E, 40, 3) and batch["style"].shape[2] == E
    assert 8 <= batch["style"].shape[1] <= 16 and bool((batch["lip_start"] <= 12 - 5).all())
    torch.testing.assert_close(batch["expression"][..., columns], batch["motion"], rtol=0, atol=0)
    # the same frames of the same clip: the expert's audio and the identity's mouth basis
    windows = solver.corpus.sample(np.random.default_rng(5), 4, 12)
    dataset = Dataset(corpus)
    for i, w in enumerate(windows):
        clip = dataset.clip(w.clip)
        np.testing.assert_allclose(batch["expression"][i].numpy(), clip.motion.expression[w.start:w.start + 12],
                                   rtol=0, atol=1e-6)
        _, basis = FaceModel.for_identity(clip.motion.identity["neutral"]).basis_tensor()
        torch.testing.assert_close(batch["mouth_basis"][i], basis, rtol=0, atol=0)


def test_the_step_adds_the_weighted_sync_loss_of_the_predicted_mouth(corpus: Path, expert: Path) -> None:
    solver, model, step, batch = _step(corpus, expert)
    expert_net = solver.lip_expert
    assert not any(p.requires_grad for p in expert_net.parameters()) and not expert_net.training
    assert not any(n.startswith("_expert") for n, _ in step.named_parameters())          # not trained, not saved
    torch.manual_seed(1)
    loss, metrics = step(batch)
    assert set(metrics) == {"diff", "sync", "p_sync", "loss"}
    # by hand: x0 of the mouth, denormalised, into the window's full expression; P_sync on n frames from lip_start
    torch.manual_seed(1)
    x0 = model.motion_norm(batch["motion"])
    xt = add_noise(step.scheduler, x0, batch["noise"], batch["t"])
    pred = model(xt, batch["t"], CMDTConditions(
        audio=batch["audio"], phonemes=batch["phonemes"], first_frame=batch["first_frame"],
        text_tokens=batch["text_tokens"], text_mask=batch["text_mask"], drop_text=model.text_dropout(4)))
    full = batch["expression"].clone()
    full[..., list(solver.corpus.columns)] = model.motion_norm.inverse(pred)
    p = []
    for b in range(4):
        s = int(batch["lip_start"][b])
        vertices = expert_net.mouth_neutral + torch.einsum("ne,emk->nmk", full[b, s:s + 5], batch["mouth_basis"][b])
        p.append(expert_net(batch["lip_audio"][b:b + 1], vertices[None], batch["style"][b:b + 1],
                            batch["style_valid"][b:b + 1]))
    p_sync = torch.cat(p)
    sync = -torch.log(p_sync.clamp_min(EPS)).mean()
    diff = F.mse_loss(pred, x0)
    torch.testing.assert_close(metrics["p_sync"], p_sync.mean().detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(metrics["sync"], sync.detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(loss, LAMBDA_DIFF * diff + 0.1 * sync, rtol=1e-5, atol=1e-6)
    assert float(metrics["sync"]) > 0 and 0 < float(metrics["p_sync"]) <= 1


def test_gradients_reach_the_cmdt_through_the_sync_loss(corpus: Path, expert: Path) -> None:
    grads, syncs = {}, {}
    for weight in (0.1, 2.0):
        _, model, step, batch = _step(corpus, expert, lambda_diff=0.0, lambda_sync=weight)
        torch.manual_seed(1)
        loss, metrics = step(batch)
        loss.backward()
        assert float(loss.detach()) == pytest.approx(weight * float(metrics["sync"]), rel=1e-5)
        grads[weight] = float(model.head.weight.grad.abs().sum())                          # type: ignore[union-attr]
        syncs[weight] = float(metrics["sync"])
    assert syncs[0.1] == pytest.approx(syncs[2.0], rel=1e-6)
    assert grads[0.1] > 0 and grads[2.0] == pytest.approx(20 * grads[0.1], rel=1e-3)


def test_without_the_sync_loss_the_batch_and_the_loss_are_the_previous_ones(corpus: Path, expert: Path) -> None:
    _, _, plain_step, plain = _step(corpus, None)
    _, _, sync_step, synced = _step(corpus, expert)
    assert set(plain) == BASE_KEYS
    for key in BASE_KEYS:                                    # the sync inputs are drawn after the base batch
        torch.testing.assert_close(plain[key], synced[key], rtol=0, atol=0)
    torch.manual_seed(1)
    loss, metrics = plain_step(plain)
    assert set(metrics) == {"diff", "loss"}
    torch.testing.assert_close(loss, LAMBDA_DIFF * metrics["diff"], rtol=1e-6, atol=0)
    torch.manual_seed(1)
    with_sync, m = sync_step(synced)
    torch.testing.assert_close(m["diff"], metrics["diff"], rtol=0, atol=0)
    torch.testing.assert_close(with_sync, loss + 0.1 * m["sync"], rtol=1e-6, atol=1e-6)


def test_a_tiny_run_with_the_sync_loss_trains_and_is_recorded(corpus: Path, expert: Path, tmp_path: Path) -> None:
    summary = train("dimitra.lips", corpus, tmp_path / "lips", "tiny", steps=40, tensorboard=False, sync_loss=True,
                    lip_expert=expert)
    losses, m = summary["losses"], summary["metrics"]
    assert summary["steps_run"] == 40 and set(m) == {"diff", "sync", "p_sync", "loss"}
    assert np.mean(losses[-10:]) < 0.8 * np.mean(losses[:10]), losses
    np.testing.assert_allclose(m["loss"], LAMBDA_DIFF * np.array(m["diff"]) + 0.1 * np.array(m["sync"]), rtol=1e-5)
    info = read_checkpoint_info(tmp_path / "lips", CMDT.component).extra
    assert info["losses"] == {"lambda_diff": 6.0, "lambda_first": 0.0, "lambda_sync": 0.1}
    assert info["variant"] == ["sync_loss"] and info["lip_expert"] == str(expert) and info["mouth"] == "identity"
    assert info["command"] == "talkinghead train dimitra.lips --preset tiny --sync-loss"
    net = CMDT.from_pretrained(tmp_path / "lips")
    assert net.config.motion_dim == 13 and net.layout is not None and net.layout["channels"] == list(MOUTH_CHANNELS)

    plain = train("dimitra.lips", corpus, tmp_path / "plain", "tiny", steps=2, tensorboard=False)
    assert set(plain["metrics"]) == {"diff", "loss"}
    info = read_checkpoint_info(tmp_path / "plain", CMDT.component).extra
    assert info["losses"] == {"lambda_diff": 6.0, "lambda_first": 0.0, "lambda_sync": 0.0}
    assert info["variant"] == [] and info["lip_expert"] is None and info["mouth"] is None


def test_bad_sync_inputs_fail_with_one_sentence(corpus: Path, expert: Path) -> None:
    with pytest.raises(TalkingHeadError, match="lips model only, not the face model") as err:
        build_part("face", corpus, "tiny", sync_loss=True, lip_expert=expert)
    one_sentence(err)
    with pytest.raises(TalkingHeadError, match="only used by the sync loss") as err:
        build_part("lips", corpus, "tiny", lip_expert=expert)
    one_sentence(err)
    with pytest.raises(TalkingHeadError, match="at least the lip expert's clip length") as err:
        build_part("lips", corpus, "tiny", train_overrides={"window_frames": 4}, sync_loss=True, lip_expert=expert)
    one_sentence(err)
    with pytest.raises(TalkingHeadError, match="lip expert reads the audio feature") as err:
        build_part("lips", corpus, "tiny", sync_loss=True)           # the shipped expert: 122-d features
    one_sentence(err)


def test_phoneme_noise_replaces_that_share_of_the_training_tokens(corpus: Path) -> None:
    clean = build_part("lips", corpus, "tiny").solver.make_batch(np.random.default_rng(3), 8)
    build = build_part("lips", corpus, "tiny", phoneme_noise=0.5)
    noisy = build.solver.make_batch(np.random.default_rng(3), 8)
    assert build.extra["phoneme_noise"] == 0.5
    torch.testing.assert_close(noisy["motion"], clean["motion"])  # the same windows
    changed = (noisy["phonemes"] != clean["phonemes"]).float().mean()
    assert 0.35 < changed < 0.6  # half replaced, a few by the token they had
    assert (noisy["phonemes"] > 0).all()  # never the padding token
    with pytest.raises(TalkingHeadError, match="between 0 and 1"):
        build_part("lips", corpus, "tiny", phoneme_noise=1.5)

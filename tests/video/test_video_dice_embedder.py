"""DICE-Talk's emotion embedder (Sec. 3.1) and emotion bank (Sec. 3.2, Eq. 17): shapes and padding masks, modality
dropout, InfoNCE against a hand-written Eq. 8, the bank's training and inference retrieval against Eq. 9-13, the
VQ loss's gradients, a tiny training run on the toy motion corpus, the checkpoint round trip, the emotion prompts
and the `train` command."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from talkinghead.cli import main
from talkinghead.data.dataset import Dataset
from talkinghead.errors import TalkingHeadError
from talkinghead.training.data import MotionCorpus
from talkinghead.training.run import train
from talkinghead.training.toydata import make_toy_dataset
from talkinghead.video.dice.bank import BankConfig, EmotionBank
from talkinghead.video.dice.embedder import EmbedderConfig, EmotionEmbedder, info_nce, modality_keep
from talkinghead.video.dice.embedder_training import (
    EmotionClips,
    clip_means,
    clustering_by_modality,
    evaluate_embedder,
    leave_one_out_accuracy,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def _embedder(**overrides: object) -> EmotionEmbedder:
    torch.manual_seed(0)
    return EmotionEmbedder(EmbedderConfig.preset("tiny", expression_dim=6, audio_dim=5, **overrides)).eval()


@pytest.fixture(scope="module")
def data(make_corpus: Callable[..., Path]) -> Path:
    return make_corpus("toy", "dice_toy")


@pytest.fixture(scope="module")
def trained(data: Path) -> tuple[Path, dict]:
    out = data.parent / "embedder"
    summary = train("dice.embedder", data, out, "tiny", steps=60, tensorboard=False)
    return out, summary


# ------------------------------------------------------------------------------------------- the embedder

def test_prior_shapes_and_padding_frames_do_not_count() -> None:
    net = _embedder()
    expression, audio = torch.randn(3, 12, 6), torch.randn(3, 12, 5)
    valid = torch.ones(3, 12, dtype=torch.bool)
    valid[1, 7:] = False
    prior = net(expression, audio, valid)
    assert prior.mean.shape == prior.var.shape == prior.logvar.shape == (3, 32)
    assert bool((prior.var > 0).all()) and prior.sample().shape == (3, 32)
    # garbage in the padding frames changes nothing; the same clip cut to its real length gives the same prior
    noisy_e, noisy_a = expression.clone(), audio.clone()
    noisy_e[1, 7:] += 100.0
    noisy_a[1, 7:] -= 50.0
    again = net(noisy_e, noisy_a, valid)
    torch.testing.assert_close(again.mean, prior.mean)
    torch.testing.assert_close(again.var, prior.var)
    alone = net.prior(expression[1, :7], audio[1, :7])
    torch.testing.assert_close(alone.mean[0], prior.mean[1], atol=1e-5, rtol=1e-5)
    # without the mask the padding does count
    assert not torch.allclose(net(noisy_e, noisy_a).mean[1], prior.mean[1])


def test_one_modality_alone_gives_a_prior_and_bad_inputs_are_one_sentence() -> None:
    net = _embedder()
    expression, audio = torch.randn(2, 10, 6), torch.randn(2, 10, 5)
    video_only, audio_only, both = net(expression, None), net(None, audio), net(expression, audio)
    assert not torch.allclose(video_only.mean, both.mean) and not torch.allclose(audio_only.mean, both.mean)
    with pytest.raises(TalkingHeadError, match="needs an expression sequence, audio features or both"):
        net(None, None)
    with pytest.raises(TalkingHeadError, match="same batch and frame count"):
        net(expression, audio[:, :8])
    with pytest.raises(TalkingHeadError, match="at least one valid frame"):
        net(expression, audio, torch.zeros(2, 10, dtype=torch.bool))
    with pytest.raises(TalkingHeadError, match=r"valid mask must be \[2, 10\]"):
        net(expression, audio, torch.ones(2, 9, dtype=torch.bool))


def test_modality_dropout_never_drops_both_and_drops_each_at_its_rate() -> None:
    keep_visual, keep_audio = modality_keep(20_000, 0.2, torch.Generator().manual_seed(1))
    assert bool((keep_visual | keep_audio).all())
    assert abs(float((~keep_visual).float().mean()) - 0.2) < 0.015
    assert abs(float((~keep_audio).float().mean()) - 0.2) < 0.015
    assert abs(float((keep_visual & keep_audio).float().mean()) - 0.6) < 0.015


def test_in_training_each_sample_keeps_one_modality_when_the_rate_is_one_half() -> None:
    # p = 0.5: every sample loses exactly one modality, so its prior is its video-only or its audio-only prior
    net = _embedder(modality_dropout=0.5)
    expression, audio = torch.randn(16, 9, 6), torch.randn(16, 9, 5)
    video_only, audio_only = net(expression, None).mean, net(None, audio).mean
    torch.manual_seed(3)
    mixed = net.train()(expression, audio).mean
    is_video = torch.isclose(mixed, video_only, atol=1e-5).all(1)
    is_audio = torch.isclose(mixed, audio_only, atol=1e-5).all(1)
    assert bool((is_video ^ is_audio).all()) and bool(is_video.any()) and bool(is_audio.any())
    # with no dropout the training forward is the eval forward (the tiny preset has no attention dropout)
    plain = _embedder(modality_dropout=0.0)
    torch.testing.assert_close(plain.train()(expression, audio).mean, plain.eval()(expression, audio).mean)


def _info_nce_reference(s: torch.Tensor, labels: list[int], tau: float) -> float:
    """Eq. 7-8 written out: for every anchor i and every positive p, -log(w(p) / (w(p) + sum_n w(n)))."""
    def w(i: int, j: int) -> float:
        cos = float(torch.dot(s[i], s[j]) / (s[i].norm() * s[j].norm()))
        return math.exp(cos / tau)

    terms = []
    for i in range(len(s)):
        negatives = sum(w(i, n) for n in range(len(s)) if labels[n] != labels[i])
        for p in range(len(s)):
            if p != i and labels[p] == labels[i]:
                terms.append(-math.log(w(i, p) / (w(i, p) + negatives)))
    return sum(terms) / len(terms)


def test_info_nce_matches_eq_8_and_is_lower_when_positives_agree() -> None:
    torch.manual_seed(0)
    labels = [0, 0, 1, 1, 1, 2, 2, 3]      # groups of 2, 3, 2 and a lone sample (an anchor without positive)
    centres = torch.randn(4, 8)
    aligned = centres[labels] + 0.1 * torch.randn(8, 8)
    shuffled = aligned[torch.tensor([2, 5, 0, 7, 1, 3, 6, 4])]
    t = torch.tensor(labels)
    for s in (aligned, shuffled, torch.randn(8, 8)):
        assert float(info_nce(s, t, 0.2)) == pytest.approx(_info_nce_reference(s, labels, 0.2), rel=1e-5)
    assert float(info_nce(aligned, t, 0.2)) < float(info_nce(shuffled, t, 0.2)) - 1.0
    # equal similarities: every pair costs log(1 + its anchor's negatives)
    expected = np.mean([math.log(1 + 6)] * 2 + [math.log(1 + 5)] * 6 + [math.log(1 + 6)] * 2)
    assert float(info_nce(torch.ones(8, 3), t, 0.5)) == pytest.approx(expected)
    with pytest.raises(TalkingHeadError, match="at least two samples with the same identity and emotion"):
        info_nce(torch.randn(3, 4), torch.tensor([0, 1, 2]), 0.1)


# ----------------------------------------------------------------------------------------------- the bank

def test_vq_loss_moves_only_the_nearest_prototype_toward_the_prior() -> None:
    torch.manual_seed(0)
    bank = EmotionBank(BankConfig.preset("tiny", commitment=0.25))
    s = (bank.prototypes[3].detach() + 0.3 * torch.randn(32)).requires_grad_(True)
    k = int(bank.nearest(s))
    assert k == int(((bank.prototypes - s) ** 2).sum(1).argmin())
    loss = bank.vq_loss(s[None])
    chosen = bank.prototypes[k].detach()
    assert float(loss.detach()) == pytest.approx(float(1.25 * ((s.detach() - chosen) ** 2).sum()), rel=1e-5)
    loss.backward()
    grad = bank.prototypes.grad
    assert grad is not None
    others = torch.ones(len(grad), dtype=torch.bool)
    others[k] = False
    assert bool((grad[others] == 0).all()) and float(grad[k].norm()) > 0
    torch.testing.assert_close(grad[k], 2 * (chosen - s.detach()))                   # codebook term
    assert s.grad is not None
    torch.testing.assert_close(s.grad, 2 * 0.25 * (s.detach() - chosen))              # commitment term
    before = float((bank.prototypes[k] - s).detach().norm())
    with torch.no_grad():
        bank.prototypes -= 0.1 * grad
    assert float((bank.prototypes[k] - s).detach().norm()) < before


def test_bank_retrieval_follows_eq_9_to_13() -> None:
    torch.manual_seed(0)
    bank = EmotionBank(BankConfig.preset("tiny"))
    s = torch.randn(5, 32)
    C, h = bank.prototypes.detach(), bank.config.heads
    Wq, Wk, Wv = bank.to_q.weight.detach(), bank.to_k.weight.detach(), bank.to_v.weight.detach()
    # inference (Eq. 12-13): softmax(Q K_all^T / sqrt(d_head)) V_all per head, heads concatenated
    q, k, v = (s @ Wq.T).view(5, h, -1), (C @ Wk.T).view(-1, h, 16), (C @ Wv.T).view(-1, h, 16)
    expected = torch.stack([torch.stack([torch.softmax(q[m, j] @ k[:, j].T / 4.0, -1) @ v[:, j] for j in range(h)])
                            for m in range(5)]).reshape(5, 32)
    torch.testing.assert_close(bank.eval()(s), expected)
    torch.testing.assert_close(bank.attend_all(s.view(5, 1, 32)), expected.view(5, 1, 32))
    assert bank.attention_weights(s).shape == (5, h, 8)
    # training (Eq. 9-11): the nearest prototype is the only key, so E_s = W_V s* exactly
    nearest = ((s[:, None] - C[None]) ** 2).sum(-1).argmin(1)
    torch.testing.assert_close(bank.train()(s), C[nearest] @ Wv.T)
    assert bank(torch.randn(2, 3, 32)).shape == (2, 3, 32)
    with pytest.raises(TalkingHeadError, match="priors of width 32, got 16"):
        bank(torch.randn(2, 16))


# ------------------------------------------------------------------------------------------------ training

def test_a_tiny_training_run_lowers_the_loss(trained: tuple[Path, dict]) -> None:
    _, summary = trained
    losses = summary["losses"]
    assert np.mean(losses[-15:]) < 0.8 * np.mean(losses[:15]), losses
    report = summary["report"]
    assert report["split"] == "val" and 0.0 <= report["emotion_accuracy"] <= 1.0
    assert report["info_nce"] < report["info_nce_uniform"]


def test_checkpoint_round_trip_gives_identical_priors_and_prompts(trained: tuple[Path, dict], tmp_path: Path) -> None:
    out, _ = trained
    net = EmotionEmbedder.from_pretrained(out)
    assert net.preset_name == "tiny" and net.layout is not None and net.layout["name"] == "toy"
    assert net.audio_features is not None and net.audio_features["names"] == ["toy"]
    net.save_pretrained(tmp_path / "copy")
    again = EmotionEmbedder.from_pretrained(tmp_path / "copy")
    expression, audio = torch.randn(2, 20, 10), torch.randn(2, 20, 8)
    a, b = net.prior(expression, audio), again.prior(expression, audio)
    assert torch.equal(a.mean, b.mean) and torch.equal(a.var, b.var)
    assert torch.equal(net.emotion_prompts, again.emotion_prompts) and net.emotions == again.emotions


def test_every_training_emotion_has_its_mean_prior(trained: tuple[Path, dict], data: Path) -> None:
    out, _ = trained
    net = EmotionEmbedder.from_pretrained(out)
    dataset = Dataset(data)
    train_emotions = sorted({dataset.meta(i).emotion for i in dataset.ids("train")})
    assert list(net.emotions) == train_emotions
    clips = EmotionClips(MotionCorpus(data, "motion", ("toy",), split="train"))
    mu = clip_means(net, clips.clips)
    for name in train_emotions:
        rows = [i for i, e in enumerate(clips.emotion) if e == name]
        torch.testing.assert_close(net.emotion_prompt(name), mu[rows].mean(0), atol=1e-5, rtol=1e-5)
        assert float(net.prompt_clips[net.emotions.index(name)]) == len(rows)
    with pytest.raises(TalkingHeadError, match="knows no emotion 'bored'; it knows angry"):
        net.emotion_prompt("bored")


def test_measurements_on_a_split(trained: tuple[Path, dict], data: Path) -> None:
    out, _ = trained
    net = EmotionEmbedder.from_pretrained(out)
    result = evaluate_embedder(net, data, "train", window=16, batches=3, batch_size=8)
    assert result["clips"] == len(Dataset(data).ids("train")) and result["speakers"] == 3
    assert result["emotion_accuracy"] > result["emotion_chance"]
    assert 0.0 <= result["identity_accuracy"] <= 1.0 and result["info_nce"] < result["info_nce_uniform"]
    with pytest.raises(TalkingHeadError, match="has no 'test' clips"):
        evaluate_embedder(net, data, "test")


def test_table5_clustering_leaves_one_modality_out(trained: tuple[Path, dict], data: Path, tmp_path: Path) -> None:
    out, _ = trained
    net = EmotionEmbedder.from_pretrained(out)
    clips = EmotionClips(MotionCorpus(data, "motion", ("toy",), split="train"))
    first = clips.clips[0]
    expression, audio = torch.from_numpy(first.expression), torch.from_numpy(first.audio)
    for modality, (e, a) in {"video": (expression, None), "audio": (None, audio), "video + audio": (expression, audio)
                             }.items():
        mu = clip_means(net, [first], modality=modality)
        torch.testing.assert_close(mu[0], net.prior(e, a).mean[0], atol=1e-5, rtol=1e-5)
    assert clustering_by_modality(net, clips) is None  # one clip per (speaker, emotion): no d_intra
    # the same speakers and emotions (same seed and speaker count), 16 clips each: classes of several clips
    make_toy_dataset(tmp_path / "many", clips_per_speaker=16)
    many = EmotionClips(MotionCorpus(tmp_path / "many", "motion", ("toy",), split="train"))
    table = clustering_by_modality(net, many)
    assert table is not None and set(table) == {"audio", "video", "video + audio"}
    for row in table.values():
        assert row["mean"] == pytest.approx(np.mean(list(row["per_emotion"].values())))
    # training clusters the priors by emotion: well above the same embedder untrained
    torch.manual_seed(0)
    untrained = clustering_by_modality(EmotionEmbedder(net.config, net.layout, net.audio_features), many)
    assert untrained is not None
    print({m: (round(table[m]["mean"], 2), round(untrained[m]["mean"], 2)) for m in table})
    assert table["video + audio"]["mean"] > 1.5 * untrained["video + audio"]["mean"]


def test_leave_one_out_accuracy_leaves_the_sample_out() -> None:
    # sample 3 is nearest to its class mean only while it counts in that mean itself: left out, b's mean is
    # sample 2 (cosine 0.6 to it) and class a (cosine 0.8) wins
    z = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.8, 0.6]])
    assert leave_one_out_accuracy(z, ["a", "a", "b", "b"]) == pytest.approx(0.75)
    assert leave_one_out_accuracy(z, ["a", "b", "c", "d"]) is None


def test_the_train_command_lists_the_embedder(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["train", "--help"])
    assert done.value.code == 0 and "dice.embedder" in capsys.readouterr().out
    with pytest.raises(SystemExit) as done:
        main(["train", "dice.embedder", "--help"])
    text = capsys.readouterr().out
    assert done.value.code == 0 and "--positives {identity_emotion,emotion}" in text and "--steps" in text

"""Dimitra's cMDT: efficient attention against a hand-written reference, linear cost, the condition paths
(transcript dropout, the first frame, frame alignment), save/load, and a tiny model overfitting one batch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from talkinghead.audio.phonemes import PHONEME_VOCAB
from talkinghead.diffusion.schedules import ScheduleConfig, add_noise, make_scheduler
from talkinghead.errors import TalkingHeadError
from talkinghead.motion.dimitra import CMDT, CMDTConditions, CMDTConfig, EfficientAttention, efficient_attention
from talkinghead.motion.dimitra.model import PHONEME_VOCAB_SIZE, TEXT_UNKNOWN_ID, transcript_tokens

B, N, C, A = 2, 12, 6, 8  # batch, frames, motion channels, audio features (tiny preset)


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def _model(**overrides: Any) -> CMDT:
    torch.manual_seed(0)
    return CMDT(CMDTConfig.preset("tiny", motion_dim=C, audio_dim=A, **overrides)).eval()


def _conditions(seed: int = 1, **changes: Any) -> CMDTConditions:
    g = torch.Generator().manual_seed(seed)
    tokens, mask = transcript_tokens(["hello there", "a b"], 16)
    values: dict[str, Any] = dict(audio=torch.randn(B, N, A, generator=g),
                                  phonemes=torch.randint(0, PHONEME_VOCAB_SIZE, (B, N), generator=g),
                                  first_frame=torch.randn(B, C, generator=g), text_tokens=tokens, text_mask=mask)
    values.update(changes)
    return CMDTConditions(**values)


def _reference_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Shen et al.'s efficient attention written out per sample and head, normalisations by hand."""
    out = torch.zeros(*q.shape[:3], v.shape[-1], dtype=q.dtype)
    for b in range(q.shape[0]):
        for h in range(q.shape[1]):
            q_norm = q[b, h].exp() / q[b, h].exp().sum(dim=1, keepdim=True)           # each query over features
            keys, values = k[b, h][mask[b]], v[b, h][mask[b]]                         # real keys only
            k_norm = keys.exp() / keys.exp().sum(dim=0, keepdim=True)                  # each feature over positions
            out[b, h] = q_norm @ (k_norm.T @ values)
    return out


def test_efficient_attention_matches_reference_and_ignores_masked_keys() -> None:
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(2, 3, 7, 4, generator=g, dtype=torch.float64), torch.randn(2, 3, 9, 4, generator=g,
                                                                                   dtype=torch.float64)
    v = torch.randn(2, 3, 9, 5, generator=g, dtype=torch.float64)
    everything = torch.ones(2, 9, dtype=torch.bool)
    torch.testing.assert_close(efficient_attention(q, k, v), _reference_attention(q, k, v, everything))
    mask = torch.tensor([[True] * 6 + [False] * 3, [True, False] * 4 + [True]])
    out = efficient_attention(q, k, v, mask)
    torch.testing.assert_close(out, _reference_attention(q, k, v, mask))
    # changing the masked keys and values changes nothing
    k2, v2 = k.clone(), v.clone()
    for b in range(2):
        k2[b, :, ~mask[b]] = torch.randn(3, int((~mask[b]).sum()), 4, generator=g, dtype=torch.float64) * 50
        v2[b, :, ~mask[b]] = torch.randn(3, int((~mask[b]).sum()), 5, generator=g, dtype=torch.float64) * 50
    torch.testing.assert_close(efficient_attention(q, k2, v2, mask), out, atol=0, rtol=0)
    # a sample with no real key gets a zero context, not NaN
    none = torch.zeros(2, 9, dtype=torch.bool)
    assert torch.equal(efficient_attention(q, k, v, none), torch.zeros(2, 3, 7, 5, dtype=torch.float64))


def test_attention_module_splits_heads_like_the_reference() -> None:
    torch.manual_seed(0)
    attn = EfficientAttention(8, 2, context_dim=6).double()
    x, ctx = torch.randn(2, 5, 8, dtype=torch.float64), torch.randn(2, 9, 6, dtype=torch.float64)
    mask = torch.tensor([[True] * 9, [True] * 4 + [False] * 5])

    def heads(t: torch.Tensor) -> torch.Tensor:  # [B, M, 8] -> [B, 2, M, 4]
        return t.reshape(t.shape[0], t.shape[1], 2, 4).transpose(1, 2)

    ref = _reference_attention(heads(attn.to_q(x)), heads(attn.to_k(ctx)), heads(attn.to_v(ctx)), mask)
    expected = attn.out(ref.transpose(1, 2).reshape(2, 5, 8))
    torch.testing.assert_close(attn(x, ctx, mask), expected)
    assert EfficientAttention(8, 2)(x.float()).shape == (2, 5, 8)  # self-attention


class _LargestTensor(TorchDispatchMode):
    """Records the element count of the largest tensor any operation produces."""

    def __init__(self) -> None:
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel())
        return out


def test_cost_is_linear_no_sequence_by_sequence_tensor() -> None:
    torch.manual_seed(0)
    attn = EfficientAttention(32, 2)
    with torch.no_grad():
        long = attn(torch.randn(1, 20_000, 32))  # a dot-product attention would need 20000^2 floats per head
        assert long.shape == (1, 20_000, 32) and bool(long.isfinite().all())
        n = 2048
        model = _model()
        conditions = CMDTConditions(audio=torch.randn(1, n, A), phonemes=torch.randint(0, 41, (1, n)),
                                    first_frame=torch.randn(1, C), text_tokens=torch.randint(2, 40, (1, 16)))
        with _LargestTensor() as probe:
            out = model(torch.randn(1, n, C), torch.tensor([500]), conditions)
    assert out.shape == (1, n, C)
    # the largest tensors are [1, 2N + L + 3, dim] memories and [1, N, ff_dim] activations: linear in N
    assert probe.largest <= 3 * n * 64 < n * n


def test_output_shapes_with_text_dropped_or_absent() -> None:
    model = _model()
    x, t = torch.randn(B, N, C), torch.tensor([3, 900])
    full = _conditions()
    assert model(x, t, full).shape == (B, N, C)
    assert model(x, t, _conditions(drop_text=torch.tensor([True, False]))).shape == (B, N, C)
    assert model(x, t, _conditions(text_tokens=None, text_mask=None)).shape == (B, N, C)
    # encoded once (as a sampler does) gives the same result as raw conditions
    torch.testing.assert_close(model(x, t, model.encode_conditions(full)), model(x, t, full))
    # and with the memory's keys and values projected once (as a sampler does per window), at every step
    projected = model.project_memory(model.encode_conditions(full))
    for step in (torch.tensor([3, 900]), torch.tensor([999, 0])):
        torch.testing.assert_close(model(x, step, projected), model(x, step, full))
    # a model reading external text features (e.g. CLIP outputs) through a projection
    clip = _model(external_text_dim=12)
    features = CMDTConditions(audio=full.audio, phonemes=full.phonemes, first_frame=full.first_frame,
                              text_features=torch.randn(B, 5, 12))
    assert clip(x, t, features).shape == (B, N, C)
    with pytest.raises(TalkingHeadError, match="text_features"):
        clip(x, t, full)
    with pytest.raises(TalkingHeadError, match="text_tokens"):
        model(x, t, features)


def test_dropped_transcript_makes_output_independent_of_text() -> None:
    model = _model()
    x, t = torch.randn(B, N, C), torch.tensor([10, 700])
    other_tokens, other_mask = transcript_tokens(["something else entirely", "zzz"], 16)
    drop_first = torch.tensor([True, False])
    a = model(x, t, _conditions(drop_text=drop_first))
    b = model(x, t, _conditions(drop_text=drop_first, text_tokens=other_tokens, text_mask=other_mask))
    torch.testing.assert_close(a[0], b[0], atol=0, rtol=0)        # dropped: the text does not matter
    assert not torch.allclose(a[1], b[1], atol=1e-4)               # kept: it does
    # dropping the transcript is the same as giving none, and an empty transcript counts as none
    torch.testing.assert_close(model(x, t, _conditions(drop_text=torch.tensor([True, True]))),
                               model(x, t, _conditions(text_tokens=None, text_mask=None)), atol=1e-6, rtol=1e-6)
    empty_tokens, empty_mask = transcript_tokens(["", "a b"], 16)
    torch.testing.assert_close(model(x, t, _conditions(text_tokens=empty_tokens, text_mask=empty_mask))[0],
                               a[0], atol=1e-6, rtol=1e-6)


def test_dropped_speech_makes_output_independent_of_audio_and_phonemes() -> None:
    """Speech dropout (the extension behind speech guidance): a sample that hears no speech gets the same output
    whatever its audio and phonemes; the others still hear theirs; the training dropout rate is as configured."""
    model = _model(speech_drop_prob=0.5)
    x, t = torch.randn(B, N, C), torch.tensor([10, 700])
    drop_first = torch.tensor([True, False])
    other = _conditions(seed=7)
    a = model(x, t, _conditions(drop_speech=drop_first))
    b = model(x, t, _conditions(drop_speech=drop_first, audio=other.audio, phonemes=other.phonemes))
    torch.testing.assert_close(a[0], b[0], atol=0, rtol=0)
    assert not torch.allclose(a[1], b[1], atol=1e-4)
    assert not torch.allclose(a[0], model(x, t, _conditions())[0], atol=1e-4)   # dropping changes the sample
    flags = model.speech_dropout(4000, torch.Generator().manual_seed(0))
    assert flags is not None and abs(flags.float().mean().item() - 0.5) < 0.03
    assert _model().speech_dropout(8) is None                                   # off unless configured
    with pytest.raises(TalkingHeadError, match="drop_speech"):
        model(x, t, _conditions(drop_speech=torch.tensor([True])))


def test_first_frame_and_frame_aligned_audio_condition_the_output() -> None:
    model = _model()
    x, t = torch.randn(B, N, C), torch.tensor([10, 700])
    base = model(x, t, _conditions())
    moved = _conditions().first_frame + 1.0
    assert (model(x, t, _conditions(first_frame=moved)) - base).abs().mean() > 1e-3
    # the audio of frame k acts mostly on motion frame k (the additive path)
    audio = _conditions().audio.clone()
    audio[:, 5] += 3.0
    change = (model(x, t, _conditions(audio=audio)) - base).abs().mean(dim=(0, 2))  # [N]
    others = torch.cat([change[:5], change[6:]])
    assert change[5] > 3 * others.mean()


def test_audio_context_reaches_the_neighbouring_frames_only_through_the_convolution() -> None:
    from talkinghead.motion.dimitra.model import SpeechEncoder

    torch.manual_seed(0)
    plain, local = SpeechEncoder(A, 16, 2, 0, 32, 0.0), SpeechEncoder(A, 16, 2, 0, 32, 0.0, context=2)
    assert plain.context is None and local.context is not None and local.context.kernel_size == (5,)
    audio = torch.randn(1, N, A)
    moved = audio.clone()
    moved[:, 5] += 3.0
    for encoder, reach in ((plain, {5}), (local, {3, 4, 5, 6, 7})):  # no transformer layers: only the front end
        change = (encoder(moved) - encoder(audio)).abs().sum(-1)[0]  # [N]
        assert {int(i) for i in torch.nonzero(change > 1e-6)} == reach
    # in the whole model, saved and loaded with the option
    model = _model(audio_context=2)
    assert model.config.audio_context == 2
    x, t = torch.randn(B, N, C), torch.tensor([10, 700])
    assert model(x, t, _conditions()).shape == (B, N, C)
    assert CMDTConfig.preset("cpu").audio_context == 0 and CMDTConfig().audio_context == 0
    # a checkpoint config written before the option existed loads without it (the shipped weights' do)
    older = {k: v for k, v in CMDTConfig.preset("cpu").to_dict().items() if k != "audio_context"}
    assert CMDTConfig.from_dict(older) == CMDTConfig.preset("cpu")
    with pytest.raises(TalkingHeadError, match="lacks the key"):
        CMDTConfig.from_dict({k: v for k, v in older.items() if k != "dim"})


def test_text_dropout_probability_and_transcript_tokens() -> None:
    g = torch.Generator().manual_seed(0)
    assert not _model(text_drop_prob=0.0).text_dropout(64, g).any()
    assert _model(text_drop_prob=1.0).text_dropout(64, g).all()
    assert 0.05 < _model().text_dropout(4000, g).float().mean() < 0.15  # default 0.1
    tokens, mask = transcript_tokens(["Hi  there!", "é", ""], 4)
    assert tokens.shape == (3, 4) and tokens.dtype == torch.long
    assert mask.tolist() == [[True] * 4, [True, False, False, False], [False] * 4]
    assert tokens[1, 0] == TEXT_UNKNOWN_ID
    assert torch.equal(tokens[0], transcript_tokens(["hi t"], 4)[0][0])  # lower case, one space
    assert PHONEME_VOCAB_SIZE == len(PHONEME_VOCAB)


def test_bad_conditions_fail_with_one_sentence() -> None:
    model = _model()
    x, t = torch.randn(B, N, C), torch.tensor([1, 2])
    with pytest.raises(TalkingHeadError, match="audio features"):
        model(x, t, _conditions(audio=torch.randn(B, N, A + 1)))
    with pytest.raises(TalkingHeadError, match="phonemes"):
        model(x, t, _conditions(phonemes=torch.zeros(B, N + 1, dtype=torch.long)))
    with pytest.raises(TalkingHeadError, match="at most 16"):
        model(x, t, _conditions(text_tokens=torch.ones(B, 17, dtype=torch.long), text_mask=None))
    with pytest.raises(TalkingHeadError, match="noisy motion"):
        model(torch.randn(B, N + 1, C), t, _conditions())


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    model = _model()
    model.save_pretrained(tmp_path / "cmdt")
    loaded = CMDT.from_pretrained(tmp_path / "cmdt")
    assert loaded.config == model.config
    x, t = torch.randn(B, N, C), torch.tensor([5, 50])
    torch.testing.assert_close(loaded(x, t, _conditions()), model(x, t, _conditions()))
    for name in ("tiny", "cpu", "paper"):
        config = CMDTConfig.preset(name)
        assert CMDTConfig.from_dict(config.to_dict()) == config


def test_tiny_model_overfits_one_batch() -> None:
    """x0-prediction diffusion loss on one fixed batch (fixed noise and steps) falls at least 5x."""
    model = _model().train()
    scheduler = make_scheduler(ScheduleConfig(), "ddpm")
    g = torch.Generator().manual_seed(2)
    x0 = torch.randn(B, N, C, generator=g)
    t = torch.tensor([100, 600])
    noisy = add_noise(scheduler, x0, torch.randn(B, N, C, generator=g), t)
    conditions = _conditions()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(150):
        loss = torch.nn.functional.mse_loss(model(noisy, t, conditions), x0)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 5

"""Paper-neutral blocks: the normaliser round trip, pooling that ignores padding, positions and step
embeddings, and the encoder's mask."""

from __future__ import annotations

import math

import torch

from talkinghead.nn import Normalizer, SelfAttentionPooling, StepEmbedding, sinusoidal_positions, transformer_encoder


def test_normalizer_round_trip_and_buffers() -> None:
    norm = Normalizer(3)
    x = torch.randn(4, 5, 3) * 7 + 2
    norm.set_stats(x.reshape(-1, 3).mean(0), x.reshape(-1, 3).std(0))
    z = norm(x)
    torch.testing.assert_close(z.reshape(-1, 3).mean(0), torch.zeros(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(norm.inverse(z), x, atol=1e-5, rtol=1e-5)
    assert sorted(norm.state_dict()) == ["mean", "std"]  # kept in the checkpoint
    norm.set_stats(torch.zeros(3), torch.zeros(3))
    assert float(norm.std.min()) > 0  # a constant channel does not divide by zero


def test_pooling_ignores_padding_and_weights_sum_to_one() -> None:
    torch.manual_seed(0)
    pool = SelfAttentionPooling(8)
    tokens = torch.randn(2, 6, 8)
    valid = torch.tensor([[True] * 4 + [False] * 2, [True] * 6])
    pooled = pool(tokens, valid)
    garbage = tokens.clone()
    garbage[0, 4:] = 1e3
    torch.testing.assert_close(pool(garbage, valid), pooled)
    torch.testing.assert_close(pooled[0], pool(tokens[:1, :4])[0])
    same = torch.ones(1, 5, 8) * 3.0  # identical tokens: any convex weights give the token back
    torch.testing.assert_close(pool(same), torch.full((1, 8), 3.0))


def test_sinusoidal_positions() -> None:
    pe = sinusoidal_positions(10, 6)
    assert pe.shape == (10, 6)
    torch.testing.assert_close(pe[0, 0::2], torch.zeros(3))
    torch.testing.assert_close(pe[0, 1::2], torch.ones(3))
    torch.testing.assert_close(pe[3, 0], torch.tensor(math.sin(3.0)))
    assert sinusoidal_positions(7, 5).shape == (7, 5)  # odd widths work


def test_step_embedding_distinguishes_steps() -> None:
    torch.manual_seed(0)
    emb = StepEmbedding(16)
    out = emb(torch.tensor([0, 0, 500]))
    assert out.shape == (3, 16)
    torch.testing.assert_close(out[0], out[1])
    assert not torch.allclose(out[0], out[2])


def test_transformer_encoder_respects_padding_mask() -> None:
    torch.manual_seed(0)
    enc = transformer_encoder(8, 2, 1, 16, 0.0).eval()
    x = torch.randn(1, 5, 8)
    pad = torch.tensor([[False, False, False, True, True]])
    y = enc(x, src_key_padding_mask=pad)
    x2 = x.clone()
    x2[0, 3:] = 100.0
    torch.testing.assert_close(enc(x2, src_key_padding_mask=pad)[0, :3], y[0, :3])

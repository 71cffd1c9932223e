"""The patch discriminator and LDM's adversarial losses (talkinghead.nn.adversarial): shapes, the hinge losses against
a direct computation, the generator term leaving the discriminator alone, the adaptive weight against a hand-made
ratio, and a discriminator that learns to tell sharp images from blurred ones."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from talkinghead.nn.adversarial import DiscriminatorConfig, PatchDiscriminator, adaptive_weight, hinge_losses


def test_patch_logits_have_one_value_per_patch() -> None:
    net = PatchDiscriminator(DiscriminatorConfig.preset("cpu"))
    assert net(torch.zeros(2, 3, 128, 128)).shape == (2, 1, 16, 16)
    assert PatchDiscriminator(DiscriminatorConfig.preset("tiny"))(torch.zeros(1, 3, 32, 32)).shape == (1, 1, 8, 8)


def test_hinge_losses_match_their_definition_and_train_only_their_own_side() -> None:
    torch.manual_seed(0)
    disc = PatchDiscriminator(DiscriminatorConfig.preset("tiny"))
    real = torch.rand(3, 3, 32, 32) * 2 - 1
    source = torch.randn(3, 3, 32, 32, requires_grad=True)
    fake = torch.tanh(source)
    d_loss, g_loss = hinge_losses(disc, real, fake)
    with torch.no_grad():
        want_d = F.relu(1 - disc(real)).mean() + F.relu(1 + disc(fake)).mean()
        want_g = -disc(fake).mean()
    torch.testing.assert_close(d_loss, want_d)
    torch.testing.assert_close(g_loss, want_g)
    g_loss.backward()                                   # the generator term reaches the images, not the discriminator
    assert source.grad is not None and float(source.grad.abs().sum()) > 0
    assert all(p.grad is None for p in disc.parameters())
    source.grad = None
    d_loss.backward()                                   # the discriminator term reaches the discriminator only
    assert source.grad is None
    assert all(p.grad is not None for p in disc.parameters())


def test_adaptive_weight_is_the_ratio_of_the_gradient_norms_at_the_last_layer() -> None:
    torch.manual_seed(0)
    layer = nn.Conv2d(4, 3, 3, padding=1)
    out = layer(torch.randn(2, 4, 8, 8))
    target = torch.randn(2, 3, 8, 8)
    rec, adv = F.mse_loss(out, target), -out.mean() * 3.0
    weight = adaptive_weight(rec, adv, layer.weight)
    g_rec, = torch.autograd.grad(rec, layer.weight, retain_graph=True)
    g_adv, = torch.autograd.grad(adv, layer.weight, retain_graph=True)
    torch.testing.assert_close(weight, g_rec.norm() / (g_adv.norm() + 1e-4))
    assert not weight.requires_grad
    assert float(adaptive_weight(rec.detach(), adv, layer.weight)) == 0.0


def test_the_discriminator_learns_to_tell_sharp_images_from_blurred_ones() -> None:
    """Trained with the hinge loss on noise images (real) against their blurred copies (fake), its logits separate
    them on new draws: the signal the adversarial term gives a blurring decoder."""
    torch.manual_seed(0)
    disc = PatchDiscriminator(DiscriminatorConfig.preset("tiny"))
    opt = torch.optim.Adam(disc.parameters(), lr=2e-3)

    def pair(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        sharp = torch.rand(n, 3, 32, 32) * 2 - 1
        return sharp, F.avg_pool2d(sharp, 3, stride=1, padding=1, count_include_pad=False)

    for _ in range(60):
        real, fake = pair(8)
        d_loss, _ = hinge_losses(disc, real, fake)
        opt.zero_grad()
        d_loss.backward()
        opt.step()
    real, fake = pair(16)
    with torch.no_grad():
        assert float(disc(real).mean()) > float(disc(fake).mean()) + 1.0

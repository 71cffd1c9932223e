"""Classifier-free guidance on style and style interpolation (DreamTalk 3.3 Eq. 8, 4.5).

Eq. 8: ``m0* = omega * E(m_t, t, A_w, R) + (1 - omega) * E(m_t, t, A_w, null)``. ``omega = 1`` is the
conditional model (the paper's evaluation setting), ``omega = 0`` the unconditional (neutral) one.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def classifier_free_guidance(cond: torch.Tensor, uncond: torch.Tensor, scale: float) -> torch.Tensor:
    """Eq. 8 on the two predictions (any matching shapes)."""
    return scale * cond + (1.0 - scale) * uncond


def guided(denoise_cond: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
           denoise_uncond: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
           scale: float) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Wrap two network calls ``(x_t, t) -> x0`` into one guided call (Eq. 8).

    ``scale == 1`` skips the unconditional call, ``scale == 0`` the conditional one.
    """

    def denoise(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if scale == 1.0:
            return denoise_cond(x, t)
        if scale == 0.0:
            return denoise_uncond(x, t)
        return classifier_free_guidance(denoise_cond(x, t), denoise_uncond(x, t), scale)

    return denoise


def interpolate_styles(style_a: torch.Tensor, style_b: torch.Tensor, alpha: float) -> torch.Tensor:
    """Linear interpolation of two style codes (4.5, Fig. 11): ``(1 - alpha) a + alpha b``. ``[..., d]``."""
    return torch.lerp(style_a, style_b, alpha)

"""DreamTalk's windowed lock-step sampling: the denoiser call for the one reverse-diffusion loop
(:func:`talkinghead.diffusion.sample`) over sequences of any length, in bounded memory (DreamTalk 3.2-3.3).

The denoiser maps each frame from an 11-frame window (w = 5) of audio and noisy motion (3.2), so the
sequence can be cut anywhere. :class:`WindowedDenoiser` is a ``denoise(x [T, C], t) -> x0 [T, C]``
callable: windows of ``window_frames`` frames are denoised in batches of ``batch_windows``, and at each
step every window also reads the ``w`` neighbouring frames of the *current* noisy sequence on both
sides (overlapping context), so each frame's prediction is exactly what one pass over the whole clip
would give and the joins are seamless by construction, not by blending. Classifier-free guidance on
style (Eq. 8) wraps each window batch's call. Each batch's audio tokens are computed once
(:class:`CachedAudioDenoiser`), not at every step and guidance branch.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from talkinghead.diffusion import ScheduleConfig, guided, make_scheduler, sample


def window_starts(num_frames: int, window: int) -> list[int]:
    """Start frames of windows of ``window`` frames tiling ``num_frames`` (the last one ends at the last
    frame, overlapping its neighbour when ``window`` does not divide ``num_frames``)."""
    if num_frames <= window:
        return [0]
    starts = list(range(0, num_frames - window, window))
    starts.append(num_frames - window)
    return starts


def edge_padded(x: np.ndarray | torch.Tensor, pad: int) -> Any:
    """``x [T, D]`` with ``pad`` copies of the first and last frame added (the denoiser's edge rule)."""
    if isinstance(x, torch.Tensor):
        return torch.cat([x[:1].expand(pad, -1), x, x[-1:].expand(pad, -1)])
    return np.concatenate([np.repeat(x[:1], pad, 0), x, np.repeat(x[-1:], pad, 0)])


class CachedAudioDenoiser:
    """Sampling adapter over :class:`DreamTalkDenoiser` that keeps each window batch's audio tokens
    (:meth:`DreamTalkDenoiser.encode_audio`, 3.2): they depend on neither the noisy motion nor the step,
    so they are computed once instead of at every DDIM step and guidance branch (~40% of a step on the
    CPU). Tokens are kept up to ``budget_mb`` in total, beyond that recomputed, so memory stays bounded.
    """

    def __init__(self, denoiser: Any, budget_mb: int) -> None:
        self.net = denoiser
        self.budget = budget_mb * 2**20
        self.used = 0
        self.cache: dict[int, torch.Tensor] = {}

    def audio_tokens(self, key: int, audio: torch.Tensor, length: int) -> torch.Tensor:
        """``audio [B, length + 2w, D_a]`` raw -> tokens ``[B * length, 2w + 1, d]``."""
        if key in self.cache:
            return self.cache[key]
        tokens = self.net.encode_audio(audio, length)
        size = tokens.numel() * tokens.element_size()
        if self.used + size <= self.budget:
            self.cache[key] = tokens
            self.used += size
        return tokens

    def __call__(self, key: int, noisy: torch.Tensor, t: torch.Tensor, audio: torch.Tensor,
                 style: torch.Tensor) -> torch.Tensor:
        """As ``denoiser(noisy, t, audio, style)``: ``noisy [B, L, C]``, ``audio [B, L + 2w, D_a]`` -> ``[B, L, C]``."""
        tokens = self.audio_tokens(key, audio, noisy.shape[1])
        return self.net(noisy, t, None, style, audio_tokens=tokens)


class WindowedDenoiser:
    """``denoise(x [T, C], t [T]) -> x0 [T, C]`` for the whole sequence, window batch by window batch,
    guided on style (Eq. 8, scale ``cfg_scale``). ``audio [T, D_a]`` raw features, ``style [d]``."""

    def __init__(self, denoiser: Any, audio: np.ndarray, style: np.ndarray, cfg_scale: float,
                 window_frames: int, batch_windows: int, audio_cache_mb: int) -> None:
        self.w = denoiser.config.window
        self.window = min(window_frames, len(audio))
        starts = window_starts(len(audio), self.window)
        self.batches = [starts[i:i + batch_windows] for i in range(0, len(starts), batch_windows)]
        self.audio_ctx = torch.from_numpy(edge_padded(audio.astype(np.float32), 2 * self.w))   # [T + 4w, D]
        self.style = torch.from_numpy(np.asarray(style, np.float32))[None]
        self.null = denoiser.null_style(1)
        self.cfg_scale = cfg_scale
        self.net = CachedAudioDenoiser(denoiser, audio_cache_mb)

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        w, window = self.w, self.window
        x_ctx = edge_padded(x, w)                                                          # [T + 2w, C]
        x0 = torch.empty_like(x)
        for key, group in enumerate(self.batches):
            n = len(group)
            noisy = torch.stack([x_ctx[s:s + window + 2 * w] for s in group])             # [n, L + 2w, C]
            audio = torch.stack([self.audio_ctx[s:s + window + 4 * w] for s in group])    # [n, L + 4w, D]
            steps = torch.full((n,), int(t[0]), dtype=torch.long)

            def cond(xt: torch.Tensor, tt: torch.Tensor, a: torch.Tensor = audio, k: int = n,
                     g: int = key) -> torch.Tensor:
                return self.net(g, xt, tt, a, self.style.expand(k, -1))

            def uncond(xt: torch.Tensor, tt: torch.Tensor, a: torch.Tensor = audio, k: int = n,
                       g: int = key) -> torch.Tensor:
                return self.net(g, xt, tt, a, self.null.expand(k, -1))

            pred = guided(cond, uncond, self.cfg_scale)(noisy, steps)                      # [n, L + 2w, C]
            for k, s in enumerate(group):
                x0[s:s + window] = pred[k, w:w + window]
        return x0


@torch.no_grad()
def sample_motion(denoiser: Any, audio: np.ndarray, style: np.ndarray, *, steps: int = 10, cfg_scale: float = 1.0,
                  seed: int = 0, window_frames: int = 250, batch_windows: int = 4,
                  audio_cache_mb: int = 256) -> np.ndarray:
    """Motion ``[T, C]`` (raw units) for audio features ``[T, D_a]`` and a style code ``[d]``: DDIM with
    ``steps`` (App. C.4) through the one loop, or the one-step regression sampler for a denoiser trained
    with ``--regression``."""
    regression = bool(denoiser.config.regression)
    scheduler = make_scheduler(ScheduleConfig(num_inference_steps=steps), "regression" if regression else "ddim")
    denoise = WindowedDenoiser(denoiser, audio, style, cfg_scale, window_frames, batch_windows, audio_cache_mb)
    x0 = sample(denoise, (len(audio), denoiser.config.motion_dim), scheduler, steps,
                generator=torch.Generator().manual_seed(seed), description=None if regression else "motion (DDIM)")
    return denoiser.motion_norm.inverse(x0).numpy()

"""Audio augmentation of the synthetic corpus: loudness, microphone colour, noise and rooms.

So that models trained on espeak-ng speech generalise to recordings they never heard, each clip's
audio (drawn per clip from the clip's own seed) may get:

- a gain between -18 and +4 dB and a slow loudness drift of up to +-3 dB within the clip;
- a microphone colour: a random first-order high-pass (60-250 Hz) and low-pass (3.5-7.5 kHz);
- a room: convolution with a synthetic impulse response (a direct path, a few early reflections and
  an exponentially decaying noise tail with RT60 0.15-0.7 s), mixed 30-90% wet;
- additive noise at 5-35 dB SNR: white, pink (1/f), brown, or babble-like (speech-shaped noise with
  a syllable-rate envelope).
The clean signal's timing is unchanged (the room's direct path is at lag 0), so phoneme timings stay
exact. Peaks are limited to 0.99.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import fftconvolve, lfilter

SR = 16_000


@dataclass(frozen=True)
class AugmentConfig:
    """Probabilities of each augmentation (0 disables it)."""

    p_gain: float = 1.0
    p_colour: float = 0.5
    p_room: float = 0.35
    p_noise: float = 0.5


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2)) + 1e-12)


def room_impulse(rng: np.random.Generator, rt60: float, sr: int = SR) -> np.ndarray:
    """A synthetic room impulse response ``[L]`` with reverberation time ``rt60`` seconds."""
    length = int(rt60 * sr)
    t = np.arange(length) / sr
    tail = rng.standard_normal(length) * np.exp(-6.9 * t / rt60)  # -60 dB at rt60
    tail[: int(0.003 * sr)] = 0.0
    ir = 0.35 * tail / (np.sqrt(np.sum(tail ** 2)) + 1e-12)
    ir[0] = 1.0
    for _ in range(4):
        lag = int(rng.uniform(0.002, 0.025) * sr)
        ir[lag] += rng.uniform(-0.4, 0.4)
    return ir


def coloured_noise(rng: np.random.Generator, n: int, kind: str) -> np.ndarray:
    white = rng.standard_normal(n)
    if kind == "white":
        return white
    if kind == "brown":
        return lfilter([1.0], [1.0, -0.995], white)
    spectrum = np.fft.rfft(white)
    f = np.fft.rfftfreq(n, 1.0 / SR)
    if kind == "pink":
        spectrum /= np.sqrt(np.maximum(f, 20.0))
        return np.fft.irfft(spectrum, n)
    # babble-like: speech-shaped spectrum (peak near 500 Hz) with a 3-6 Hz syllabic envelope
    shape = (f / 500.0) / (1.0 + (f / 500.0) ** 2)
    x = np.fft.irfft(spectrum * shape, n)
    t = np.arange(n) / SR
    envelope = 1.0 + 0.8 * np.sin(2 * np.pi * rng.uniform(3, 6) * t + rng.uniform(0, 6.3))
    return x * envelope


def augment_audio(samples: np.ndarray, rng: np.random.Generator, config: AugmentConfig = AugmentConfig()
                  ) -> tuple[np.ndarray, dict[str, float | str]]:
    """Augment ``samples [N]`` (16 kHz); returns the new samples and a description of what was done."""
    x = np.asarray(samples, dtype=np.float64).copy()
    n = len(x)
    info: dict[str, float | str] = {}
    if n == 0:
        return x.astype(np.float32), info
    if rng.random() < config.p_colour:
        hp, lp = rng.uniform(60, 250), rng.uniform(3500, 7500)
        a = np.exp(-2 * np.pi * hp / SR)
        x = lfilter([(1 + a) / 2, -(1 + a) / 2], [1.0, -a], x)
        b = 1 - np.exp(-2 * np.pi * lp / SR)
        x = lfilter([b], [1.0, b - 1.0], x)
        info.update(highpass_hz=round(hp, 1), lowpass_hz=round(lp, 1))
    if rng.random() < config.p_room:
        rt60 = rng.uniform(0.15, 0.7)
        wet = rng.uniform(0.3, 0.9)
        reverberant = fftconvolve(x, room_impulse(rng, rt60))[:n]
        x = (1 - wet) * x + wet * reverberant * (_rms(x) / _rms(reverberant))
        info.update(rt60=round(rt60, 3), wet=round(wet, 2))
    if rng.random() < config.p_gain:
        gain_db = rng.uniform(-18.0, 4.0)
        drift_db = rng.uniform(-3.0, 3.0) * np.sin(np.pi * np.arange(n) / n * rng.uniform(0.5, 2.0))
        x = x * 10 ** ((gain_db + drift_db) / 20.0)
        info.update(gain_db=round(gain_db, 2))
    if rng.random() < config.p_noise:
        kind = ("white", "pink", "brown", "babble")[int(rng.integers(4))]
        snr = rng.uniform(5.0, 35.0)
        noise = coloured_noise(rng, n, kind)
        x = x + noise * (_rms(x) / _rms(noise)) * 10 ** (-snr / 20.0)
        info.update(noise=kind, snr_db=round(snr, 1))
    peak = float(np.max(np.abs(x)))
    if peak > 0.99:
        x *= 0.99 / peak
    return x.astype(np.float32), info

"""Compile librosa's numba kernels once, in a process that has loaded nothing else, before the tests.

librosa compiles some of its kernels (onset peak picking, pyin's local minima) with numba on first call
and caches them next to its sources. In a fresh .venv, compiling them inside a pytest worker that had
already loaded torch and MediaPipe segfaulted now and then (two different tests, in fresh clones; a numba
cache folder per worker did not help). Run here first, the workers only load the cached code.
"""

from __future__ import annotations

import numpy as np


def main() -> None:
    import librosa

    rng = np.random.default_rng(0)
    sr = 16000
    t = np.arange(sr) / sr
    y = (0.3 * np.sin(2 * np.pi * 180 * t) * (t % 0.25 < 0.12) + 0.01 * rng.standard_normal(sr)).astype(np.float32)
    librosa.onset.onset_detect(y=y, sr=sr, hop_length=160)
    librosa.pyin(y, fmin=60, fmax=400, sr=sr, frame_length=1024)


if __name__ == "__main__":
    main()

"""Low-level frame-aligned speech features: log-mel, MFCC, FBANK, f0, voicing, energy.

DreamTalk App. C.2.2 feeds its style predictor "MFCC, Mel-filterbank energy features (FBANK),
fundamental frequency, and voice flag" next to HuBERT features; every paper works at 16 kHz and
25 fps. Analysis runs at 100 Hz (25 ms windows, 10 ms hop, 16 kHz) and is brought to the video
frame rate by averaging over each frame's interval (:func:`talkinghead.audio.frames.to_frames`,
mode ``mean``), giving exactly ``T = frame_count(N, fps)`` rows for any fps.

* ``logmel``: log power of an ``n_mels``-band mel filterbank (Slaney, 20 Hz - 8 kHz, Hann, 512-pt FFT),
  the same numbers as ``librosa.feature.melspectrogram`` with ``center=True, pad_mode="constant"``.
* ``mfcc``: orthonormal DCT-II of the log-mel (dB), first ``n_mfcc`` coefficients (= librosa's
  ``mfcc(S=power_to_db(mel, top_db=None))``). Deltas are left to the window (:func:`frame_windows`).
* ``fbank``: Kaldi/python_speech_features-style log filterbank: ``n_fbank`` HTK mel bands, 0.97
  pre-emphasis (applied as its exact frequency response on the power spectrum), natural log.
* ``f0`` and ``voicing``: YIN (de Cheveigne & Kawahara 2002: difference function, cumulative mean
  normalised difference (CMND), absolute threshold, parabolic interpolation),
  60-500 Hz, 25 ms integration window. A 10 ms frame is voiced when its CMND minimum is below 0.25
  (periodicity) and it is loud enough (within 45 dB of the clip's loud frames, decided once the whole
  clip is seen). pYIN (librosa.pyin) was measured about 70x slower than this (BENCHMARKS.md) and is not
  used. YIN's estimate sits about 4 ms before the frame centre for a 130 Hz voice (the lag span is
  one-sided); pitch moves little in 4 ms.
  ``voicing`` is the voiced fraction of the frame (DreamTalk's voice flag, soft); ``f0`` averages
  the voiced 10 ms frames.
* ``energy``: log RMS level (dB) of the frame.

Normalisation ``"utterance"`` (robust to loudness, microphone and speaker): log-mel, MFCC and FBANK get
per-utterance mean and variance normalisation (CMVN: a gain is an additive constant in the log domain,
a microphone's response nearly so); energy becomes dB relative to the clip's loud frames (95th
percentile) divided by 20; f0 becomes octaves relative to the clip's median voiced f0 (0 when unvoiced),
removing the speaker's pitch register. ``"none"`` keeps raw values (log power, dB, Hz).

Long audio is analysed in chunks with enough context that the result equals one-shot analysis;
only the frame-rate outputs (``T x dims``) and three 100 Hz scalar tracks (for the clip-level voicing
and normalisation statistics) are kept, so an hour of audio needs bounded memory (with
:func:`extract_file_features`, the samples are streamed from the file too).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import scipy.fft

from talkinghead.audio.frames import frame_count, to_frames
from talkinghead.audio.preprocess import DCBlocker, clipped_fraction, iter_audio_chunks
from talkinghead.audio.spec import ENCODER_KIND, AudioFeatureSpec
from talkinghead.errors import TalkingHeadError
from talkinghead.io.audio import Audio
from talkinghead.log import log_event, progress

if TYPE_CHECKING:  # torch and transformers load only when an encoder is used
    from talkinghead.audio.encoders import SpeechEncoder

HOP = 160  # 10 ms at 16 kHz
WIN = 400  # 25 ms
N_FFT = 512
FMIN, FMAX = 60.0, 500.0
YIN_WIN = 400  # integration window W (25 ms)
YIN_FRAME = YIN_WIN + int(np.ceil(16_000 / FMIN)) + 1  # W + largest lag (60 Hz), centred on the frame
YIN_THRESHOLD = 0.1
VOICED_CMND = 0.25
VOICED_BELOW_PEAK_DB = 45.0
PREEMPHASIS = 0.97
EPS = 1e-10
CHUNK_SECONDS = 20.0

# Slaney's mel at 1 kHz, where the log region starts: 1000 Hz at 200/3 Hz per mel is 15 mel, computed as librosa
# computes it (14.999999999999998 in float64, one unit below 15.0; the edges of the filters differ otherwise)
_SLANEY_LOG_MEL = 1000.0 / (200.0 / 3)


def hz_to_mel(hz: np.ndarray | float, htk: bool) -> np.ndarray:
    """Mel of ``hz``: HTK's ``2595 log10(1 + f / 700)``, or Slaney's (linear below 1 kHz at 3 mel / 200 Hz,
    logarithmic above at 27 mel per factor 6.4)."""
    hz = np.asarray(hz, np.float64)
    if htk:
        return 2595.0 * np.log10(1.0 + hz / 700.0)
    mel = hz / (200.0 / 3)
    above = hz >= 1000.0
    return np.where(above, _SLANEY_LOG_MEL + np.log(np.maximum(hz, 1e-10) / 1000.0) / (np.log(6.4) / 27.0), mel)


def mel_to_hz(mel: np.ndarray | float, htk: bool) -> np.ndarray:
    """The inverse of :func:`hz_to_mel`."""
    mel = np.asarray(mel, np.float64)
    if htk:
        return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)
    hz = (200.0 / 3) * mel
    return np.where(mel >= _SLANEY_LOG_MEL, 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - _SLANEY_LOG_MEL)), hz)


@lru_cache(maxsize=8)
def _mel_matrix(sample_rate: int, n_mels: int, htk: bool) -> np.ndarray:
    """``[n_mels, N_FFT / 2 + 1]`` triangular mel filters from 20 Hz to Nyquist, centres equally spaced in mel;
    Slaney's filters have unit area (2 / bandwidth), HTK's a peak of 1. The same numbers as
    ``librosa.filters.mel`` (tested), without importing librosa (and numba) on every call's path."""
    fft_hz = np.fft.rfftfreq(N_FFT, 1.0 / sample_rate)
    edges = mel_to_hz(np.linspace(hz_to_mel(20.0, htk), hz_to_mel(sample_rate / 2, htk), n_mels + 2), htk)
    width = np.diff(edges)
    ramps = edges[:, None] - fft_hz[None, :]
    weights = np.maximum(0.0, np.minimum(-ramps[:-2] / width[:-1, None], ramps[2:] / width[1:, None]))
    weights = weights.astype(np.float32)
    if not htk:
        weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]  # (scaled after the cast, as librosa does)
    return weights


def periodic_hann(length: int) -> np.ndarray:
    """The periodic ("DFT-even") Hann window ``[length]`` float64, computed exactly as
    ``scipy.signal.get_window("hann", length, fftbins=True)`` does (a symmetric window of ``length + 1``
    points, its last dropped; tested equal to the bit), without importing ``scipy.signal`` (0.4-0.8 s)."""
    if length <= 1:
        return np.ones(max(length, 0), dtype=np.float64)
    fac = np.linspace(-np.pi, np.pi, length + 1, dtype=np.float64)
    w = np.zeros(length + 1, dtype=np.float64)
    for k, a in enumerate((0.5, 1.0 - 0.5)):
        w += a * np.cos(k * fac)
    return w[:-1]


@lru_cache(maxsize=2)
def _window() -> np.ndarray:
    w = periodic_hann(WIN).astype(np.float32)
    left = (N_FFT - WIN) // 2
    return np.pad(w, (left, N_FFT - WIN - left))


def _frames(x: np.ndarray, length: int, starts: np.ndarray) -> np.ndarray:
    """``[S]`` -> ``[K, length]`` strided views starting at ``starts`` (must be in range)."""
    view = np.lib.stride_tricks.sliding_window_view(x, length)
    return view[starts]


def _yin(frames: np.ndarray, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """YIN on ``[K, L]`` frames -> (f0 Hz [K], CMND minimum [K]); lags up to ``L - W - 1``.

    The integration window plus the lags span the whole frame, so the estimate belongs to the
    frame's centre (the analysis frames are centred on their 10 ms grid points).

    Eq. (6) of de Cheveigne & Kawahara: d(tau) = sum_{j<W} (x_j - x_{j+tau})^2
    = E(0) + E(tau) - 2 r(tau); Eq. (8): d'(tau) = d(tau) / ((1/tau) sum_{k<=tau} d(k)).
    """
    tau_min = max(2, int(np.floor(sample_rate / FMAX)))
    tau_max = min(frames.shape[1] - YIN_WIN - 1, int(np.ceil(sample_rate / FMIN)))
    x = frames.astype(np.float32)
    n = 1024
    spec_full = scipy.fft.rfft(x, n=n, axis=1)
    spec_head = scipy.fft.rfft(x[:, :YIN_WIN], n=n, axis=1)
    r = scipy.fft.irfft(spec_full * np.conj(spec_head), n=n, axis=1)[:, : tau_max + 1]
    sq = np.concatenate([np.zeros((x.shape[0], 1), np.float32), np.cumsum(x * x, axis=1)], axis=1)
    energy = sq[:, YIN_WIN : YIN_WIN + tau_max + 1] - sq[:, : tau_max + 1]  # E(tau) = sum_{j<W} x_{j+tau}^2
    d = np.maximum(energy[:, :1] + energy - 2 * r, 0.0)
    d[:, 0] = 0.0
    cum = np.cumsum(d[:, 1:], axis=1)
    taus = np.arange(1, tau_max + 1, dtype=np.float32)
    cmnd = np.ones_like(d)
    cmnd[:, 1:] = d[:, 1:] * taus / np.maximum(cum, EPS)
    band = cmnd[:, tau_min : tau_max + 1]
    # Absolute threshold: first local minimum below the threshold, else the global minimum.
    is_min = np.zeros_like(band, dtype=bool)
    is_min[:, 1:-1] = (band[:, 1:-1] <= band[:, :-2]) & (band[:, 1:-1] <= band[:, 2:])
    below = is_min & (band < YIN_THRESHOLD)
    first = np.where(below.any(axis=1), below.argmax(axis=1), band.argmin(axis=1))
    rows = np.arange(band.shape[0])
    # Parabolic interpolation around the chosen lag.
    i = np.clip(first, 1, band.shape[1] - 2)
    a, b, c = band[rows, i - 1], band[rows, i], band[rows, i + 1]
    denom = a - 2 * b + c
    shift = np.where(np.abs(denom) > EPS, 0.5 * (a - c) / np.where(np.abs(denom) > EPS, denom, 1.0), 0.0)
    shift = np.where(first == i, np.clip(shift, -1, 1), 0.0)
    tau = tau_min + first + shift
    f0 = sample_rate / np.maximum(tau, 1.0)
    return f0.astype(np.float32), band[rows, first].astype(np.float32)


def analyse(padded: np.ndarray, first: int, count: int, spec: AudioFeatureSpec) -> dict[str, np.ndarray]:
    """100 Hz analysis of frames ``first .. first+count-1`` of a signal.

    ``padded`` holds the signal's samples ``[first*HOP - YIN_FRAME/2, (first+count-1)*HOP + YIN_FRAME/2]``
    (zeros outside the signal); analysis frame ``k`` is centred on sample ``k * HOP``.
    Returns raw (unnormalised) tracks ``[count, D]``: log-mel (ln power), mfcc, fbank (ln), f0 (Hz),
    cmnd (periodicity measure), power (mean square).
    """
    centre0 = YIN_FRAME // 2
    centres = centre0 + np.arange(count) * HOP
    out: dict[str, np.ndarray] = {}
    need = set(spec.lowlevel_kinds)
    if need & {"logmel", "mfcc", "fbank"}:
        stft_frames = _frames(padded, N_FFT, centres - N_FFT // 2) * _window()
        power = np.abs(scipy.fft.rfft(stft_frames, axis=1)) ** 2  # [K, 257]
        if need & {"logmel", "mfcc"}:
            mel = power @ _mel_matrix(spec.sample_rate, spec.n_mels, False).T
            out["logmel"] = np.log(np.maximum(mel, EPS)).astype(np.float32)
            if "mfcc" in need:
                db = 10.0 / np.log(10.0) * out["logmel"]
                out["mfcc"] = scipy.fft.dct(db, type=2, norm="ortho", axis=1)[:, : spec.n_mfcc].astype(np.float32)
        if "fbank" in need:
            omega = np.linspace(0, np.pi, power.shape[1], dtype=np.float32)
            emphasis = 1 + PREEMPHASIS**2 - 2 * PREEMPHASIS * np.cos(omega)  # |1 - a e^{-jw}|^2
            fb = (power * emphasis) @ _mel_matrix(spec.sample_rate, spec.n_fbank, True).T
            out["fbank"] = np.log(np.maximum(fb, EPS)).astype(np.float32)
    if need & {"f0", "voicing", "energy"}:
        win = _frames(padded, WIN, centres - WIN // 2)
        out["power"] = np.mean(win.astype(np.float64) ** 2, axis=1, keepdims=True).astype(np.float32)
    if need & {"f0", "voicing"}:
        f0, cmnd = _yin(_frames(padded, YIN_FRAME, centres - YIN_FRAME // 2), spec.sample_rate)
        out["f0"], out["cmnd"] = f0[:, None], cmnd[:, None]
    return out


class LowLevelExtractor:
    """Streaming low-level features: ``push`` consecutive sample blocks, then ``finish`` -> ``[T, dims]``.

    The signal is taken as zero outside the samples pushed; analysis frame ``k`` is centred on sample
    ``k * HOP``. Spectral kinds are pooled to video frames as soon as their analysis frames exist;
    the scalar 100 Hz tracks (power, f0, periodicity: 12 bytes per 10 ms) are kept and pooled at the end
    because voicing and normalisation need the whole clip's statistics. Memory is bounded by one block
    plus ``T x dims`` outputs.
    """

    def __init__(self, spec: AudioFeatureSpec) -> None:
        if spec.sample_rate != 16_000:
            raise TalkingHeadError(f"Low-level features are defined at 16 kHz, not {spec.sample_rate} Hz.")
        self.spec = spec
        self.dc = DCBlocker(spec.sample_rate)
        self.half = YIN_FRAME // 2
        self.buf = np.zeros(self.half, dtype=np.float32)  # buf[0] is global sample buf_origin
        self.buf_origin = -self.half
        self.num_samples = 0
        self.clipped = 0
        self.next_k = 0  # next analysis frame to compute
        self.next_f = 0  # next video frame to pool
        self.rows: dict[str, np.ndarray] = {}  # spectral analysis rows not yet consumed
        self.rows_first = 0  # analysis index of rows[...][0]
        self.spectral = [k for k in ("logmel", "mfcc", "fbank") if k in spec.kinds]
        self.frames: dict[str, list[np.ndarray]] = {k: [] for k in self.spectral}
        self.tracks: dict[str, list[np.ndarray]] = {}
        self.step = spec.sample_rate / (spec.fps * HOP)  # analysis frames per video frame

    # analysis frames whose cells overlap video frame f: [_k_lo(f), _k_hi(f)] inclusive
    def _k_lo(self, f: int) -> int:
        return max(0, int(np.floor(f * self.step)) - 1)

    def _k_hi(self, f: int) -> int:
        return int(np.ceil((f + 1) * self.step)) + 1

    def push(self, block: np.ndarray) -> None:
        x = np.asarray(block, dtype=np.float32).reshape(-1)
        if x.size == 0:
            return
        self.clipped += int(np.sum(np.abs(x) >= 0.999))
        self.num_samples += x.size
        self.buf = np.concatenate([self.buf, self.dc(x)])
        available = self.buf_origin + self.buf.size  # global index one past the last buffered sample
        k_end = (available - self.half) // HOP + 1 if available >= self.half else 0
        self._analyse_until(k_end)
        self._pool_ready(limit=None)

    def _analyse_until(self, k_end: int) -> None:
        count = k_end - self.next_k
        if count <= 0:
            return
        lo = self.next_k * HOP - self.half - self.buf_origin
        hi = (k_end - 1) * HOP + self.half - self.buf_origin
        tracks = analyse(self.buf[lo:hi], self.next_k, count, self.spec)
        for key, value in tracks.items():
            if key in self.spectral:
                prev = self.rows.get(key)
                self.rows[key] = value if prev is None else np.concatenate([prev, value])
            elif key in ("power", "f0", "cmnd"):
                self.tracks.setdefault(key, []).append(value)
        if not self.rows:
            self.rows_first = k_end
        self.next_k = k_end
        drop = self.next_k * HOP - self.half - self.buf_origin  # keep what the next frame needs
        if drop > 0:
            self.buf = self.buf[drop:]
            self.buf_origin += drop

    def _pool_ready(self, limit: int | None) -> None:
        f_hi = self.next_f
        while (limit is None or f_hi < limit) and self._k_hi(f_hi) < self.next_k:
            f_hi += 1
        if limit is not None:
            f_hi = min(f_hi, limit)
        if f_hi <= self.next_f:
            return
        if self.spectral:
            times = (self.rows_first + np.arange(self.rows[self.spectral[0]].shape[0])) * HOP / self.spec.sample_rate
            for key in self.spectral:
                self.frames[key].append(_pool(self.rows[key], times, self.next_f, f_hi, self.spec.fps))
            keep_from = self._k_lo(f_hi) - self.rows_first
            if keep_from > 0:
                for key in self.spectral:
                    self.rows[key] = self.rows[key][keep_from:]
                self.rows_first += keep_from
        self.next_f = f_hi

    def finish(self) -> np.ndarray:
        """Flush with zero padding and return the normalised ``[T, dims_lowlevel]`` features."""
        if self.num_samples == 0:
            raise TalkingHeadError("The audio is empty: there is nothing to extract features from.")
        T = frame_count(self.num_samples, self.spec.fps, self.spec.sample_rate)
        k_last = max(self._k_hi(T - 1), (self.num_samples + HOP - 1) // HOP) + 1
        tail = (k_last * HOP + self.half) - (self.buf_origin + self.buf.size)
        if tail > 0:
            self.buf = np.concatenate([self.buf, np.zeros(tail, dtype=np.float32)])
        self._analyse_until(k_last)
        self._pool_ready(limit=T)
        if self.clipped > 0.001 * self.num_samples:
            log_event("audio is clipped; features may be less reliable",
                      clipped_fraction=round(self.clipped / self.num_samples, 4))
        return self._finalise(T)

    def _finalise(self, T: int) -> np.ndarray:
        spec = self.spec
        cols: dict[str, np.ndarray] = {}
        for kind in self.spectral:
            x = np.concatenate(self.frames[kind])[:T]
            cols[kind] = _cmvn(x) if spec.normalization == "utterance" else x
        if self.tracks:
            power = np.concatenate(self.tracks["power"])
            times = np.arange(power.shape[0]) * HOP / spec.sample_rate
            level = 10 * np.log10(power[:, 0] + 1e-12)
            # Reference level: the loud frames of the clip's actual samples (not the zero padding).
            real = level[: max(1, self.num_samples // HOP)]
            ref = float(np.percentile(real, 95))
            if "energy" in spec.kinds:
                db = 10 * np.log10(to_frames(power, times, T, spec.fps, "mean") + 1e-12)
                cols["energy"] = (db - ref) / 20 if spec.normalization == "utterance" else db
            if "f0" in self.tracks:
                f0 = np.concatenate(self.tracks["f0"])[:, 0]
                periodic = np.concatenate(self.tracks["cmnd"])[:, 0] < VOICED_CMND
                voiced = (periodic & (level > max(ref - VOICED_BELOW_PEAK_DB, -70.0))).astype(np.float64)
                pooled = to_frames(np.stack([voiced, voiced * f0], axis=1), times, T, spec.fps, "mean")
                v = pooled[:, :1]
                f0_frames = np.where(v > 1e-3, pooled[:, 1:] / np.maximum(v, 1e-3), 0.0)
                if "voicing" in spec.kinds:
                    cols["voicing"] = v
                if "f0" in spec.kinds:
                    if spec.normalization == "utterance":
                        mask = v[:, 0] >= 0.5
                        median = float(np.median(f0_frames[mask, 0])) if mask.any() else 1.0
                        cols["f0"] = np.where(f0_frames > 0, np.log2(np.maximum(f0_frames, 1e-3) / median), 0.0)
                    else:
                        cols["f0"] = f0_frames
        return np.concatenate([cols[k].astype(np.float32) for k in spec.lowlevel_kinds], axis=1)


def _pool(values: np.ndarray, times: np.ndarray, f_lo: int, f_hi: int, fps: float) -> np.ndarray:
    """Mean of a 100 Hz track over video frames ``[f_lo, f_hi)`` (absolute frame indices)."""
    return to_frames(values, times - f_lo / fps, f_hi - f_lo, fps, mode="mean")


def _cmvn(x: np.ndarray) -> np.ndarray:
    """Per-utterance mean and variance normalisation over frames (``[T, D]``)."""
    mean = x.mean(axis=0, keepdims=True)
    std = x.std(axis=0, keepdims=True)
    return (x - mean) / np.maximum(std, 1e-3)


def _blocks(samples: np.ndarray, size: int) -> Iterator[np.ndarray]:
    for start in range(0, samples.size, size):
        yield samples[start : start + size]


def lowlevel_features(blocks: Iterable[np.ndarray], spec: AudioFeatureSpec, total: int | None = None) -> np.ndarray:
    """Low-level kinds of ``spec`` from consecutive sample blocks -> ``[T, sum of kind dims]``."""
    extractor = LowLevelExtractor(spec)
    for block in progress(blocks, "audio features", total=total):
        extractor.push(block)
    return extractor.finish()


def extract_features(audio: Audio, spec: AudioFeatureSpec, encoder: SpeechEncoder | None = None) -> np.ndarray:
    """Frame-aligned features of ``audio`` as described by ``spec``: ``[T, spec.dims]`` float32.

    ``T = frame_count(len(samples), spec.fps)``. An ``encoder`` is required when ``spec.kinds``
    has ``"encoder"``; its type and width must match the spec.
    """
    if audio.sample_rate != spec.sample_rate:
        raise TalkingHeadError(f"The audio is at {audio.sample_rate} Hz but the features expect {spec.sample_rate} Hz.")
    if audio.samples.size == 0:
        raise TalkingHeadError("The audio is empty: there is nothing to extract features from.")
    size = int(CHUNK_SECONDS * spec.sample_rate)
    parts: dict[str, np.ndarray] = {}
    if spec.lowlevel_kinds:
        n_blocks = -(-audio.samples.size // size)
        low = lowlevel_features(_blocks(audio.samples, size), spec, total=n_blocks)
        start = 0
        for kind in spec.lowlevel_kinds:
            parts[kind] = low[:, start : start + spec.kind_dims(kind)]
            start += spec.kind_dims(kind)
    if ENCODER_KIND in spec.kinds:
        parts[ENCODER_KIND] = _encoder_features(audio, spec, encoder)
    return np.concatenate([parts[k] for k in spec.kinds], axis=1).astype(np.float32)


def extract_file_features(path: str | Path, spec: AudioFeatureSpec, encoder: SpeechEncoder | None = None) -> np.ndarray:
    """Like :func:`extract_features` for a file; low-level features stream it in bounded memory."""
    if ENCODER_KIND in spec.kinds:
        from talkinghead.io.audio import load_audio

        return extract_features(load_audio(path, spec.sample_rate), spec, encoder)
    return lowlevel_features(iter_audio_chunks(path, CHUNK_SECONDS, spec.sample_rate), spec)


def _encoder_features(audio: Audio, spec: AudioFeatureSpec, encoder: SpeechEncoder | None) -> np.ndarray:
    if encoder is None:
        raise TalkingHeadError(f"The audio features '{spec.name}' need a {spec.encoder} encoder; pass --encoder DIR.")
    if encoder.model_type != spec.encoder or encoder.output_dim(spec.layers) != spec.kind_dims(ENCODER_KIND):
        raise TalkingHeadError(
            f"The encoder in {encoder.directory} is a {encoder.model_type} with "
            f"{encoder.output_dim(spec.layers)} output dims, but the features '{spec.name}' expect a "
            f"{spec.encoder} with {spec.kind_dims(ENCODER_KIND)}."
        )
    return encoder.encode(audio, fps=spec.fps, layers=spec.layers)


__all__ = [
    "LowLevelExtractor", "analyse", "clipped_fraction", "extract_features", "extract_file_features",
    "lowlevel_features",
]

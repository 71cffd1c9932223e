"""DreamTalk while the speech arrives: incremental audio features and a chunked DDIM sampler (DreamTalk 3.2-3.3).

The offline sampler (:mod:`.windowed`) denoises every frame of the clip in lock-step. Here the audio comes
in pieces of any size and its length is unknown, so motion is made chunk by chunk, in bounded memory.

**Chunked sampling.** The denoiser maps each frame ``l`` from an 11-frame window (``w = 5``) of audio and
noisy motion (3.2), so a frame needs only its ``w`` neighbours on each side. A chunk denoises ``hop`` new
frames ``[s, s + hop)`` together with ``lookahead`` frames to their right ``[s + hop, e)``, ``e = s + hop +
lookahead``, through all DDIM steps (10 by default, App. C.4), once the audio features of frames ``< e`` exist:

- right of ``e`` there is nothing yet: audio features and noisy motion are edge-padded (the last frame
  repeated), the offline rule at a clip's end. With ``lookahead >= w`` every emitted frame's window holds
  real audio and jointly denoised neighbours; the look-ahead frames are thrown away and made again, with
  more audio, by the next chunk;
- left of ``s`` lie the last ``w`` frames already emitted (clean ``x_0``). At each step ``t`` they are put
  back to that step's noise level with the forward process ``q(x_t | x_0) = sqrt(abar_t) x_0 +
  sqrt(1 - abar_t) eps`` (replacement conditioning, as in inpainting with diffusion models) and fed as
  the left half of the windows, so the new frames are denoised to continue the emitted ones. ``eps`` is the
  frame's own starting noise: DDIM with ``eta = 0`` moves each frame along a deterministic path from that
  noise, so this is close to where the frame sat at step ``t`` in a one-pass run;
- every frame's starting noise ``x_T`` is drawn from ``(seed, frame index)`` alone, so the output does not
  depend on how the audio was cut into pushes;
- at the end (:meth:`StreamingDreamTalk.finish`) the last chunk runs without look-ahead and emits up to the
  clip's last frame, ``round(duration * 25)`` frames in all (:func:`talkinghead.audio.frames.frame_count`).

Cost: each chunk runs the denoiser ``steps`` times on its ``hop + lookahead`` frames only (their windows read
the context; :meth:`ChunkedSampler.predict`, equal to the denoiser's forward pass). Latency: a chunk can run
once the audio up to ``(s + hop + lookahead) / 25`` seconds plus 21 ms (half the pitch tracker's frame) has
arrived; the first frame of a chunk waits ``(hop + lookahead - 1) / 25 s + 21 ms``, its last ``lookahead / 25 s
+ 21 ms`` (defaults: 381 and 221 ms), plus the compute time.

**Audio features with running statistics** (:class:`StreamingFeatures`). The raw 100 Hz analysis is the
offline one (:func:`talkinghead.audio.features.analyse`: same DC blocker, windows, YIN) and is pooled to
25 fps with the same box filter, so the unnormalised features equal the offline ones (to float rounding; rows
are analysed in fixed groups, so the result is bit-identical however the audio was cut). The offline
"utterance" normalisation uses whole-clip statistics; here every frame is normalised once, when it is made,
with statistics of the frames up to and including it (never revised later):

- log-mel, MFCC, FBANK: ``(x - mean) / std`` per channel with a running mean and variance (Welford, equal
  weights, i.e. exactly the statistics of the frames so far; after ``stats_seconds`` an exponential window of
  that length, 60 s by default, so an hour-long stream adapts to its microphone). The standard deviation is
  floored at ``min_std`` = 2 natural-log units (its dB equivalent for MFCCs), so a stream that starts in
  near-silence does not blow its background noise up to speech-sized values;
- energy: ``(dB - ref) / 20`` with ``ref`` the 95th percentile of the 10 ms levels so far (a 0.1 dB
  histogram, forgetting like the means), but at least ``min_reference_db`` = -35 dBFS, so silence before the
  first word reads as quiet, not as loud;
- voicing: periodic (YIN CMND < 0.25) and within 45 dB of that running ``ref``, as offline;
- f0: octaves relative to the running median voiced f0 (a 1/120-octave histogram of the frames with voicing
  >= 0.5 so far); 0 until the first voiced frame.

Only a few thousand numbers are kept (samples for one analysis window, the 100 Hz rows of the frame being
pooled, two histograms, the running moments), whatever the stream's length.

**Head pose.** Offline, the pipeline subtracts the mean of the whole clip's generated pose. Causally,
:class:`StreamingDreamTalk` subtracts the running mean of the poses generated so far (equal weights, after
``stats_seconds`` an exponential window), so the first frame shows the portrait's own pose and the centre
settles on the clip's mean as it goes. ``pose_prior_seconds > 0`` counts the denoiser's training-set mean pose
as that many seconds of frames; measured on the shipped model it does worse (a style moves the mean pose, e.g.
"angry" tilts the head by 0.04 rad), so the default is 0.

Measured differences from the offline generator: docs/streaming.md.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from talkinghead.audio.features import HOP, VOICED_BELOW_PEAK_DB, VOICED_CMND, YIN_FRAME, analyse
from talkinghead.audio.frames import frame_count
from talkinghead.audio.preprocess import DCBlocker
from talkinghead.audio.spec import ENCODER_KIND, AudioFeatureSpec
from talkinghead.config import Config
from talkinghead.diffusion import ScheduleConfig, guided, make_scheduler, sample
from talkinghead.errors import TalkingHeadError

SPECTRAL = ("logmel", "mfcc", "fbank")
#: box filter taking 100 Hz analysis rows ``4f .. 4f+4`` to video frame ``f`` (25 fps): the cells of rows
#: ``4f`` and ``4f+4`` straddle the frame's edges (the offline :func:`talkinghead.audio.frames.to_frames`, mode mean)
POOL = np.array([0.5, 1.0, 1.0, 1.0, 0.5]) / 4.0
ROWS_PER_FRAME = 4
LEVEL_BINS = (-130.0, 10.0, 0.1)          # dB histogram: low, high, bin width
F0_BINS = (math.log2(40.0), math.log2(600.0), 1 / 120)   # log2(Hz) histogram


@dataclass(frozen=True)
class StreamingConfig(Config):
    """Settings of :class:`StreamingDreamTalk`. ``hop``: frames emitted per chunk; ``lookahead``: frames
    denoised to the chunk's right and made again by the next chunk (at least the window's half-width ``w``
    for every emitted frame to see real audio); ``steps``/``cfg_scale``: DDIM steps and guidance (Eq. 8);
    ``seed``: the starting noise. Running statistics: ``stats_seconds`` (memory of the feature and pose
    statistics), ``min_std`` (floor of the spectral features' standard deviation, natural-log units),
    ``min_reference_db`` (floor of the loudness reference, dBFS), ``pose_prior_seconds`` (weight of the
    training-set mean pose in the running mean pose)."""

    hop: int = 5
    lookahead: int = 5
    steps: int = 10
    cfg_scale: float = 1.0
    seed: int = 0
    stats_seconds: float = 60.0
    min_std: float = 2.0
    min_reference_db: float = -35.0
    pose_prior_seconds: float = 0.0

    presets: ClassVar[dict[str, dict[str, Any]]] = {"tiny": {}, "cpu": {}, "paper": {}}

    def __post_init__(self) -> None:
        if not 1 <= self.hop <= 250:
            raise TalkingHeadError(f"The hop must be between 1 and 250 frames, got {self.hop}.")
        if not 0 <= self.lookahead <= 250:
            raise TalkingHeadError(f"The look-ahead must be between 0 and 250 frames, got {self.lookahead}.")
        if not 1 <= self.steps <= 1000:
            raise TalkingHeadError(f"The number of sampling steps must be between 1 and 1000, got {self.steps}.")
        if not (math.isfinite(self.cfg_scale) and 0.0 <= self.cfg_scale <= 20.0):
            raise TalkingHeadError(f"The guidance scale must be between 0 and 20, got {self.cfg_scale}.")
        if self.seed < 0:
            raise TalkingHeadError(f"The seed must be a non-negative integer, got {self.seed}.")
        if not (self.stats_seconds >= 1.0 and self.min_std > 0 and self.pose_prior_seconds >= 0
                and math.isfinite(self.stats_seconds + self.min_std + self.min_reference_db
                                  + self.pose_prior_seconds)):
            raise TalkingHeadError("stats_seconds must be at least 1, min_std positive, pose_prior_seconds "
                                   "non-negative, and all of them finite.")


class _Histogram:
    """Counts of a scalar in fixed bins whose total is capped at ``memory`` (older counts fade
    proportionally): percentiles of everything seen so far, or of about the last ``memory`` values."""

    def __init__(self, low: float, high: float, width: float, memory: float) -> None:
        self.low, self.width = low, width
        self.counts = np.zeros(int(round((high - low) / width)), np.float64)
        self.memory = memory

    def add(self, values: np.ndarray) -> None:
        if values.size == 0:
            return
        idx = np.clip(((values - self.low) / self.width).astype(np.int64), 0, len(self.counts) - 1)
        self.counts += np.bincount(idx, minlength=len(self.counts))
        total = self.counts.sum()
        if total > self.memory:
            self.counts *= self.memory / total

    @property
    def empty(self) -> bool:
        return not self.counts.any()

    def quantile(self, q: float) -> float:
        """The ``q`` quantile (bin centre); NaN when empty."""
        cum = np.cumsum(self.counts)
        if cum[-1] <= 0:
            return math.nan
        i = int(np.searchsorted(cum, q * cum[-1]))
        return self.low + (min(i, len(cum) - 1) + 0.5) * self.width


class _RunningMoments:
    """Per-channel running mean and variance of ``[D]`` rows: equal weights for the first ``memory`` rows
    (Welford), then an exponential window of ``memory`` rows."""

    def __init__(self, dims: int, memory: float) -> None:
        self.mean = np.zeros(dims, np.float64)
        self.var = np.zeros(dims, np.float64)
        self.count = 0
        self.memory = memory

    def add(self, x: np.ndarray) -> None:
        self.count += 1
        a = max(1.0 / self.count, 1.0 / self.memory)
        delta = x - self.mean
        self.mean += a * delta
        self.var = (1 - a) * (self.var + a * delta * delta)


class StreamingFeatures:
    """The low-level features of ``spec`` (the denoiser's, "utterance" or "none" normalisation) for audio that
    arrives in pieces: :meth:`push` samples ``[N]`` float32 16 kHz -> the feature rows ``[n, spec.dims]`` of the
    video frames completed so far (normalised with running statistics, see the module docstring);
    :meth:`finish` -> the remaining rows, so that ``frame_count(total samples)`` rows come out in all."""

    def __init__(self, spec: AudioFeatureSpec, config: StreamingConfig | None = None) -> None:
        if ENCODER_KIND in spec.kinds:
            raise TalkingHeadError("Streaming needs features computed from the signal alone; this checkpoint reads "
                                   f"a {spec.encoder} encoder's features.")
        if spec.sample_rate != 16_000 or spec.fps * ROWS_PER_FRAME * HOP != spec.sample_rate:
            raise TalkingHeadError(f"Streaming features are defined at 16 kHz and 25 fps, not {spec.sample_rate} Hz "
                                   f"and {spec.fps} fps.")
        cfg = config or StreamingConfig()
        self.spec = spec
        self.config = cfg
        self.utterance = spec.normalization == "utterance"
        self.dc = DCBlocker(spec.sample_rate)
        self.half = YIN_FRAME // 2
        self.buf = np.zeros(self.half, np.float32)      # buf[0] is global sample buf_origin
        self.buf_origin = -self.half
        self.num_samples = 0
        self.next_k = 0                                  # next analysis row to compute
        self.rows: dict[str, np.ndarray] = {}            # raw 100 Hz rows from rows_first on
        self.rows_first = 0
        self.next_f = 0                                  # next video frame to finish
        self.finished = False
        self.spectral = [k for k in spec.lowlevel_kinds if k in SPECTRAL]
        self.spectral_dims = sum(spec.kind_dims(k) for k in self.spectral)
        # MFCCs are in dB (an orthonormal DCT of dB log-mel), the other spectral kinds in natural log units
        self.std_floor = np.concatenate([np.full(spec.kind_dims(k), cfg.min_std * (10 / math.log(10) if k == "mfcc"
                                                                                   else 1.0)) for k in self.spectral])
        self.moments = _RunningMoments(self.spectral_dims, cfg.stats_seconds * spec.fps)
        self.levels = _Histogram(*LEVEL_BINS, memory=cfg.stats_seconds * 100)
        self.pitch = _Histogram(*F0_BINS, memory=cfg.stats_seconds * spec.fps)
        self.levels_until = 0                            # analysis rows counted in ``levels``
        self.real_rows = math.inf                        # rows of real samples (known at finish)

    # ------------------------------------------------------------------------------------------ analysis
    def push(self, samples: np.ndarray) -> np.ndarray:
        """``samples [N]`` -> feature rows ``[n, dims]`` of the frames now complete (``n`` may be 0)."""
        if self.finished:
            raise TalkingHeadError("The audio stream has ended; start a new one.")
        x = np.asarray(samples, np.float32).reshape(-1)
        if x.size:
            self.num_samples += x.size
            self.buf = np.concatenate([self.buf, self.dc(x)])
            available = self.buf_origin + self.buf.size
            self._analyse_until((available - self.half) // HOP + 1 if available >= self.half else 0)
        return self._frames_until(None)

    def finish(self) -> np.ndarray:
        """The last rows (zero padding after the end, as offline); ``frame_count(samples pushed)`` rows in all."""
        if self.finished:
            raise TalkingHeadError("The audio stream has already ended.")
        self.finished = True
        total = frame_count(self.num_samples, self.spec.fps, self.spec.sample_rate)
        k_last = ROWS_PER_FRAME * total + 1
        tail = (k_last - 1) * HOP + self.half - (self.buf_origin + self.buf.size)
        if tail > 0:
            self.buf = np.concatenate([self.buf, np.zeros(tail, np.float32)])
        self.real_rows = max(1, self.num_samples // HOP)
        self._analyse_until(k_last)
        return self._frames_until(total)

    def _analyse_until(self, k_end: int) -> None:
        """Analyse rows up to ``k_end`` (exclusive) in fixed groups ``[0, 1)``, ``[4m + 1, 4m + 5)``: the
        numbers of a batched FFT and matrix product depend (in the last bits) on the batch, so fixed groups make
        the output independent of how the audio was cut into pushes."""
        while True:
            group_end = 1 if self.next_k == 0 else self.next_k + ROWS_PER_FRAME
            if group_end > k_end:
                break
            lo = self.next_k * HOP - self.half - self.buf_origin
            hi = (group_end - 1) * HOP + self.half - self.buf_origin
            tracks = analyse(self.buf[lo:hi], self.next_k, group_end - self.next_k, self.spec)
            if self.rows:
                self.rows = {key: np.concatenate([self.rows[key], value]) for key, value in tracks.items()}
            else:
                self.rows, self.rows_first = tracks, self.next_k
            self.next_k = group_end
        drop = self.next_k * HOP - self.half - self.buf_origin        # keep what the next row needs
        if drop > 0:
            self.buf = self.buf[drop:]
            self.buf_origin += drop

    def _frames_until(self, limit: int | None) -> np.ndarray:
        """Finish every video frame whose rows ``4f .. 4f+4`` exist (up to ``limit``): ``[n, dims]``."""
        out = []
        while (limit is None or self.next_f < limit) and ROWS_PER_FRAME * self.next_f + 4 < self.next_k:
            out.append(self._frame(self.next_f))
            self.next_f += 1
        keep = ROWS_PER_FRAME * self.next_f - self.rows_first           # rows the next frame needs
        if keep > 0 and self.rows:
            self.rows = {key: value[keep:] for key, value in self.rows.items()}
            self.rows_first += keep
        return np.stack(out).astype(np.float32) if out else np.zeros((0, self.spec.dims), np.float32)

    def _frame(self, f: int) -> np.ndarray:
        """The normalised features ``[dims]`` of video frame ``f`` (its rows are in ``self.rows``)."""
        first = ROWS_PER_FRAME * f - self.rows_first
        rows = {key: value[first:first + 5].astype(np.float64) for key, value in self.rows.items()}
        cols: dict[str, np.ndarray] = {}
        if self.spectral:
            x = np.concatenate([POOL @ rows[k] for k in self.spectral])
            if self.utterance:
                self.moments.add(x)
                x = (x - self.moments.mean) / np.maximum(np.sqrt(self.moments.var), self.std_floor)
            start = 0
            for k in self.spectral:
                cols[k] = x[start:start + self.spec.kind_dims(k)]
                start += self.spec.kind_dims(k)
        if "power" in rows:
            level = 10 * np.log10(rows["power"][:, 0] + 1e-12)
            # rows counted once each, up to this frame's last (padding after the end excluded, as offline)
            upto = int(min(ROWS_PER_FRAME * f + 5, max(self.real_rows, 1)))
            if upto > self.levels_until:
                self.levels.add(level[max(self.levels_until - (ROWS_PER_FRAME * f), 0):upto - ROWS_PER_FRAME * f])
                self.levels_until = upto
            ref = self.levels.quantile(0.95)
            ref = self.config.min_reference_db if math.isnan(ref) else max(ref, self.config.min_reference_db)
            if "energy" in self.spec.kinds:
                db = 10 * np.log10(POOL @ rows["power"][:, 0] + 1e-12)
                cols["energy"] = np.array([(db - ref) / 20 if self.utterance else db])
            if "f0" in rows:
                periodic = rows["cmnd"][:, 0] < VOICED_CMND
                voiced = (periodic & (level > max(ref - VOICED_BELOW_PEAK_DB, -70.0))).astype(np.float64)
                v = float(POOL @ voiced)
                f0 = float(POOL @ (voiced * rows["f0"][:, 0])) / max(v, 1e-3) if v > 1e-3 else 0.0
                if "voicing" in self.spec.kinds:
                    cols["voicing"] = np.array([v])
                if "f0" in self.spec.kinds:
                    if self.utterance:
                        if v >= 0.5:
                            self.pitch.add(np.array([math.log2(max(f0, 1e-3))]))
                        median = self.pitch.quantile(0.5)
                        cols["f0"] = np.array([0.0 if f0 <= 0 or math.isnan(median)
                                               else math.log2(max(f0, 1e-3)) - median])
                    else:
                        cols["f0"] = np.array([f0])
        return np.concatenate([cols[k] for k in self.spec.kinds])

    @property
    def kept_values(self) -> int:
        """How many numbers this extractor holds (bounded: it does not grow with the stream's length)."""
        return int(self.buf.size + sum(v.size for v in self.rows.values()) + self.levels.counts.size
                   + self.pitch.counts.size + 2 * self.moments.mean.size)


def frame_noise(seed: int, frame: int, channels: int) -> np.ndarray:
    """The starting noise ``x_T [C]`` of one frame: a function of ``(seed, frame)`` only."""
    return np.random.default_rng((seed, frame)).standard_normal(channels).astype(np.float32)


class ChunkedSampler:
    """DDIM over a stream, chunk by chunk (see the module docstring). ``add(audio [n, D_a])`` appends raw
    denoiser audio features of the next frames; :meth:`run` denoises every chunk that has its audio and
    returns the emitted frames' motion ``[m, C]`` (normalised units); ``run(final=True)`` also the frames
    left at the end. ``style [d]``: the style code."""

    def __init__(self, denoiser: Any, style: np.ndarray, config: StreamingConfig) -> None:
        self.net = denoiser
        self.config = config
        self.w = int(denoiser.config.window)
        self.channels = int(denoiser.config.motion_dim)
        self.regression = bool(denoiser.config.regression)
        self.scheduler = make_scheduler(ScheduleConfig(num_inference_steps=config.steps),
                                        "regression" if self.regression else "ddim")
        self.abar = None if self.regression else self.scheduler.alphas_cumprod.float()
        self.style = torch.from_numpy(np.asarray(style, np.float32))[None]
        self.null = denoiser.null_style(1)
        self.audio = np.zeros((0, int(denoiser.config.audio_dim)), np.float32)   # frames from audio_first on
        self.audio_first = 0
        self.context = torch.zeros(0, self.channels)      # the last <= w emitted frames, clean, normalised
        self.next = 0                                      # next frame to emit
        self.noise: dict[int, torch.Tensor] = {}

    @property
    def frames_heard(self) -> int:
        return self.audio_first + len(self.audio)

    def add(self, audio: np.ndarray) -> None:
        if len(audio):
            self.audio = np.concatenate([self.audio, np.asarray(audio, np.float32)])

    def run(self, final: bool = False) -> np.ndarray:
        """Denoise every chunk whose audio is here -> emitted motion ``[m, C]`` (normalised)."""
        c = self.config
        out = []
        total = self.frames_heard
        while self.next < total:
            s = self.next
            if s + c.hop + c.lookahead <= total:
                e, emit = s + c.hop + c.lookahead, s + c.hop
            elif final:
                e = emit = total
            else:
                break
            out.append(self._chunk(s, e, emit))
        return torch.cat(out).numpy() if out else np.zeros((0, self.channels), np.float32)

    def _frame_noise(self, frames: range) -> torch.Tensor:
        for j in frames:
            if j not in self.noise:
                self.noise[j] = torch.from_numpy(frame_noise(self.config.seed, j, self.channels))
        return torch.stack([self.noise[j] for j in frames]) if len(frames) else torch.zeros(0, self.channels)

    def predict(self, noisy: torch.Tensor, t: int, tokens: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """The denoiser's prediction (Eq. 2) for the middle frames only: ``noisy [n + 2w, C]`` (``w`` context
        frames each side), audio ``tokens [n, 2w + 1, d]`` of the middle frames, ``style [1, d]`` -> ``[n, C]``.
        The same computation as :meth:`DreamTalkDenoiser.forward` on the whole window (tested equal), without
        spending it on the context frames, whose predictions would be thrown away."""
        from talkinghead.motion.dreamtalk.denoiser import sliding_windows

        net, w = self.net, self.w
        n = noisy.shape[0] - 2 * w
        windows = sliding_windows(noisy[None], n, w)[0]                                    # [n, 2w+1, C]
        kv = net.key_value(torch.cat([tokens, windows], -1))
        kv = kv + net.step_embedding(torch.full((1,), t, dtype=torch.long))[:, None, :]
        query = style[:, None, :] + net.style_position                                     # [1, 2w+1, d]
        out = net.decoder(query.expand(n, -1, -1), kv)
        return net.head(out[:, w])

    @torch.no_grad()
    def _chunk(self, s: int, e: int, emit: int) -> torch.Tensor:
        """Denoise frames ``[s, e)`` given the emitted ones before ``s``; return frames ``[s, emit)``."""
        w, n = self.w, e - s
        # audio of frames s-w .. e+w-1 (the new frames' windows), edges repeated: [n + 2w, D_a]
        idx = np.clip(np.arange(s - w, e + w), 0, e - 1) - self.audio_first
        tokens = self.net.encode_audio(torch.from_numpy(self.audio[idx])[None], n)          # [n, 2w+1, d]
        ctx_frames = range(max(s - w, 0), s)
        pad = w - len(ctx_frames)                                               # frames before frame 0
        clean = self.context[len(self.context) - len(ctx_frames):]             # [<= w, C]
        ctx_noise = self._frame_noise(ctx_frames)
        start = torch.zeros(n, self.channels) if self.regression else self._frame_noise(range(s, e))

        def framed(xt: torch.Tensor, t: int) -> torch.Tensor:
            """The chunk's noisy frames ``[n, C]`` with ``w`` frames on each side -> ``[n + 2w, C]``: on the left the
            emitted frames re-noised to step ``t`` (q(x_t | x_0), each frame's own noise), on the right the last
            frame repeated (the edge rule of offline sampling)."""
            if self.abar is None:
                left = torch.zeros(len(ctx_frames), self.channels)
            else:
                a = self.abar[t]
                left = a.sqrt() * clean + (1 - a).sqrt() * ctx_noise
            if pad:
                left = torch.cat([(left[:1] if len(left) else xt[:1]).expand(pad, -1), left])
            return torch.cat([left, xt, xt[-1:].expand(w, -1)])

        def cond(xt: torch.Tensor, tt: torch.Tensor) -> torch.Tensor:
            return self.predict(framed(xt, int(tt[0])), int(tt[0]), tokens, self.style)

        def uncond(xt: torch.Tensor, tt: torch.Tensor) -> torch.Tensor:
            return self.predict(framed(xt, int(tt[0])), int(tt[0]), tokens, self.null)

        # the project's one reverse-diffusion loop (diffusion.samplers.sample), over this chunk's frames
        x = sample(guided(cond, uncond, self.config.cfg_scale), (n, self.channels), self.scheduler,
                   self.config.steps, initial_noise=start)
        emitted = x[:emit - s]
        self.context = torch.cat([self.context, emitted])[-w:]
        self.next = emit
        # forget what no later chunk reads: audio and noise of frames before next - w
        drop = self.next - w - self.audio_first
        if drop > 0:
            self.audio = self.audio[drop:]
            self.audio_first += drop
        for j in [j for j in self.noise if j < self.next - w]:
            del self.noise[j]
        return emitted

    @property
    def kept_values(self) -> int:
        return int(self.audio.size + self.context.numel() + sum(v.numel() for v in self.noise.values()))


@dataclass
class MotionChunk:
    """Motion made by one call: ``expression [n, E]`` and ``pose [n, 6]`` (generated, raw units) with
    ``pose_offset [n, 6]`` = pose minus the causal running mean pose; ``first``: the index of its first frame."""

    first: int
    expression: np.ndarray
    pose: np.ndarray
    pose_offset: np.ndarray

    def __len__(self) -> int:
        return len(self.expression)


class StreamingDreamTalk:
    """Audio samples in, DreamTalk motion out, as the speech arrives. ``denoiser``: a
    :class:`~talkinghead.motion.dreamtalk.denoiser.DreamTalkDenoiser`; ``style [d]``: the style code.
    :meth:`push` samples ``[N]`` float32 16 kHz mono -> :class:`MotionChunk` of the frames now final;
    :meth:`finish` -> the rest."""

    def __init__(self, denoiser: Any, style: np.ndarray, config: StreamingConfig | None = None) -> None:
        from talkinghead.audio.spec import checkpoint_spec, select_kinds

        cfg = config or StreamingConfig()
        self.config = cfg
        self.net = denoiser.eval()
        features = denoiser.audio_features or {}
        self.spec = checkpoint_spec(features, "denoiser", 25.0)
        self.names = list(features.get("names", []))
        self.dims = list(features.get("dims", []))
        self._select = lambda rows: select_kinds(rows, self.spec, self.names, self.dims, "denoiser")
        self._select(np.zeros((1, self.spec.dims), np.float32))     # checks the kinds once, before any audio
        self.features = StreamingFeatures(self.spec, cfg)
        self.sampler = ChunkedSampler(denoiser, style, cfg)
        self.expression_dim = int(denoiser.config.expression_dim)
        self.generates_pose = bool(denoiser.config.generate_pose)
        e = self.expression_dim
        prior = denoiser.motion_norm.mean[e:e + 6].double().numpy() if self.generates_pose else np.zeros(6)
        self.pose_prior = (prior, cfg.pose_prior_seconds * 25.0)
        self.pose_sum = np.zeros(6, np.float64)
        self.pose_count = 0.0
        self.emitted = 0

    def push(self, samples: np.ndarray) -> MotionChunk:
        self.sampler.add(self._select(self.features.push(samples)))
        return self._motion(self.sampler.run())

    def finish(self) -> MotionChunk:
        self.sampler.add(self._select(self.features.finish()))
        return self._motion(self.sampler.run(final=True))

    def chunks(self, pieces: Iterator[np.ndarray]) -> Iterator[MotionChunk]:
        """Every piece pushed, then the end: the motion as it is made."""
        for piece in pieces:
            yield self.push(piece)
        yield self.finish()

    def _motion(self, normalised: np.ndarray) -> MotionChunk:
        first = self.emitted
        raw = self.net.motion_norm.inverse(torch.from_numpy(normalised)).numpy() if len(normalised) else normalised
        e = self.expression_dim
        expression = raw[:, :e].astype(np.float32)
        pose = raw[:, e:e + 6].astype(np.float32) if self.generates_pose else np.zeros((len(raw), 6), np.float32)
        offset = np.zeros_like(pose)
        prior, weight = self.pose_prior
        memory = self.config.stats_seconds * 25.0
        for i, p in enumerate(pose):               # running mean with the training mean as a prior
            if self.pose_count + 1 > memory:
                self.pose_sum *= (memory - 1) / self.pose_count
                self.pose_count = memory - 1
            self.pose_sum += p
            self.pose_count += 1
            offset[i] = p - (self.pose_sum + weight * prior) / (self.pose_count + weight)
        self.emitted += len(raw)
        return MotionChunk(first, expression, pose, offset if self.generates_pose else np.zeros_like(pose))

    @property
    def frames_heard(self) -> int:
        """Video frames whose audio features exist."""
        return self.sampler.frames_heard

    @property
    def kept_values(self) -> int:
        """How many numbers the stream's state holds (features, audio context, motion context, noise)."""
        return self.features.kept_values + self.sampler.kept_values

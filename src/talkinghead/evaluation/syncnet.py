"""The lip-sync judge: a SyncNet-style audio / mouth embedding network, LSE-C and LSE-D (issue 7, item 2).

Chung & Zisserman 2016, "Out of time: automated lip sync in the wild" (SyncNet): two streams embed
0.2 s of audio (MFCC, 13 coefficients x 20 frames at 100 Hz) and the 5 video frames of the mouth over
the same 0.2 s; in-sync pairs lie close, offset pairs far apart. The papers' LSE-D and LSE-C ("Sync-D"
and "Sync-C": Wav2Lip Sec. 4.1, DreamTalk Tab. 1, FD2Talk Tab. 1, EMO, DICE-Talk Tab. 1) are computed
with the pretrained SyncNet as in its reference evaluation code (``SyncNetInstance.evaluate``): for
every offset ``k`` in ``-15..15`` frames the embedding distance ``||v_t - a_(t+k)||`` is averaged over
the frames ``t``; LSE-D is the minimum of these averages over ``k``, LSE-C (the confidence) is their
median minus that minimum, and the arg-minimum is the detected audio-visual offset. Both are averaged
over clips.

The pretrained SyncNet (trained on BBC video) is not available here, so this judge is trained on the
project's own data, in two domains:

- ``motion``: the visual stream reads the 5 frames of *mouth motion*: the displacement of the 40 lip
  vertices of the face model (``FaceModel.basis`` restricted to ``FACEMESH_LIPS``, model units = the
  eye-corner distance) from the clip's own neutral shape, so neither identity nor head pose enters; for
  a layout the face model does not know, the layout's ``mouth`` channels;
- ``video``: the visual stream reads 5 grayscale mouth crops (``crop_height x crop_width``), cut from
  rendered frames around the projected lips, rotated upright by the eye line and scaled by the
  eye-corner distance (SyncNet reads the lower half of a tracked face; this is the same idea).

Training is offset discrimination (a deviation from SyncNet's pairwise contrastive loss, following its
multi-way successor, Chung, Chung & Zisserman 2019, "Perfect match", Sec. 3): for a mouth window at
frame ``t`` the audio windows at ``t + k`` for every ``k`` in ``-train_offset..train_offset`` are the
candidates, the logits are the negative distances ``-||v_t - a_(t+k)||`` and the loss is the
cross-entropy of choosing ``k = 0``. This trains exactly what LSE-D measures (distances) and what the
offset accuracy reports (the arg-minimum).

Deviations: the visual streams read motion or small crops instead of 111x111 face halves; the layers are
smaller (configurable); offsets whose shifted frames fall outside the clip are left out of that offset's
average instead of being compared with zero padding as the reference code does. MFCCs are
mean/variance normalised per utterance (robust to level and microphone).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import cv2
import numpy as np
import torch
from torch import nn

from talkinghead.checkpoint import PretrainedMixin
from talkinghead.config import Config
from talkinghead.errors import TalkingHeadError
from talkinghead.face.topology import EYE_OUTER_L, EYE_OUTER_R
from talkinghead.log import progress
from talkinghead.sequence import ChannelLayout, MotionSequence
from talkinghead.training.loop import TrainConfig

SAMPLE_RATE = 16_000
DOMAINS = ("motion", "video")


# ------------------------------------------------------------------------------------------- config

@dataclass(frozen=True)
class SyncNetConfig(Config):
    """Sizes of :class:`SyncNet`. ``visual_dim``/``visual_source`` are set from the data when training
    the motion domain; ``crop_*`` are the video domain's mouth crops (pixels)."""

    domain: str = "motion"
    window: int = 5
    fps: float = 25.0
    n_mfcc: int = 13
    mfcc_rate: int = 100
    visual_dim: int = 0
    visual_source: str = ""
    crop_height: int = 32
    crop_width: int = 48
    channels: int = 64
    embed_dim: int = 128
    max_offset: int = 15

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {"channels": 16, "embed_dim": 32},
        "cpu": {"channels": 48, "embed_dim": 96},
        "paper": {"channels": 128, "embed_dim": 1024, "crop_height": 64, "crop_width": 96},
    }

    def __post_init__(self) -> None:
        if self.domain not in DOMAINS:
            raise TalkingHeadError(f"The sync judge's domain must be 'motion' or 'video', got '{self.domain}'.")
        if self.window < 3 or self.window % 2 == 0:
            raise TalkingHeadError(f"The sync window must be an odd number of frames (3 or more), got {self.window}.")
        if self.mfcc_rate % self.fps != 0 and not math.isclose(self.mfcc_rate / self.fps,
                                                                round(self.mfcc_rate / self.fps)):
            raise TalkingHeadError("The MFCC rate must be a whole multiple of the video frame rate.")
        if self.max_offset < 1:
            raise TalkingHeadError("max_offset must be at least one frame.")

    @property
    def mfcc_per_frame(self) -> int:
        return round(self.mfcc_rate / self.fps)

    @property
    def half(self) -> int:
        return self.window // 2


@dataclass(frozen=True)
class SyncTrainConfig(TrainConfig):
    """Training of the judge by offset discrimination (see the module docstring) in the shared loop
    (:mod:`talkinghead.evaluation.sync_training`): AdamW at a one-cycle learning rate peaking at ``lr``,
    no gradient clipping, an EMA of the weights."""

    steps: int = 1500
    batch_size: int = 48
    lr: float = 1e-3
    grad_clip: float = 0.0
    ema_decay: float = 0.99
    save_every: int = 500
    log_every: int = 75
    weight_decay: float = 1e-4
    train_offset: int = 8
    render_size: int = 128

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {"steps": 120, "batch_size": 16, "train_offset": 5, "ema_decay": 0.9, "save_every": 60,
                 "log_every": 10},
        "cpu": {"steps": 1500, "batch_size": 48},
        "paper": {"steps": 20000, "batch_size": 128, "train_offset": 15, "render_size": 256, "ema_decay": 0.999,
                  "save_every": 1000, "log_every": 500},
    }


# ------------------------------------------------------------------------------------ inputs: audio

def audio_mfcc(samples: np.ndarray, config: SyncNetConfig, num_frames: int) -> np.ndarray:
    """MFCC ``[num_frames * r, n_mfcc]`` (``r`` MFCC frames per video frame, 10 ms hop, 25 ms window),
    mean/variance normalised over the utterance and edge-padded or cut to the video length."""
    import librosa

    samples = np.asarray(samples, dtype=np.float32).reshape(-1)
    if samples.size == 0 or not np.all(np.isfinite(samples)):
        raise TalkingHeadError("The audio for the sync judge is empty or not finite.")
    hop = SAMPLE_RATE // config.mfcc_rate
    mfcc = librosa.feature.mfcc(y=samples, sr=SAMPLE_RATE, n_mfcc=config.n_mfcc, n_fft=400, hop_length=hop,
                                n_mels=40, fmin=20.0, fmax=7600.0).T  # [N, n_mfcc]
    mfcc = (mfcc - mfcc.mean(0)) / (mfcc.std(0) + 1e-5)
    want = num_frames * config.mfcc_per_frame
    if len(mfcc) < want:
        mfcc = np.concatenate([mfcc, np.repeat(mfcc[-1:], want - len(mfcc), 0)])
    return mfcc[:want].astype(np.float32)


def shift_audio(samples: np.ndarray, frames: int, fps: float = 25.0) -> np.ndarray:
    """The audio delayed by ``frames`` video frames (advanced when negative), same length, zero-filled.

    A judge that works detects offset ``+frames`` on the result (the mouth at ``t`` matches the
    audio at ``t + frames``)."""
    samples = np.asarray(samples, dtype=np.float32)
    n = int(round(frames * SAMPLE_RATE / fps))
    out = np.zeros_like(samples)
    if n >= 0:
        out[n:] = samples[:len(samples) - n] if n < len(samples) else out[n:]
    else:
        out[:n] = samples[-n:]
    return out


# ------------------------------------------------------------------------------- inputs: motion

def mouth_basis(layout: ChannelLayout, identity: dict[str, np.ndarray]) -> tuple[np.ndarray, str]:
    """``(basis [E, V], source)``: per-frame mouth features are ``expression @ basis``.

    With the face model's layout and a ``neutral`` identity: the lip-vertex displacements (V = 40 x 3);
    otherwise the layout's ``mouth`` channels (a selection matrix)."""
    from talkinghead.face.model import ARKIT_LAYOUT, FaceModel
    from talkinghead.face.topology import NUM_VERTICES

    neutral = identity.get("neutral")
    if layout.channels == ARKIT_LAYOUT.channels and neutral is not None and np.shape(neutral) == (NUM_VERTICES, 3):
        model = FaceModel.for_identity(np.asarray(neutral))
        basis = model.basis[:, model.mouth_indices]  # [E, 40, 3]
        return basis.reshape(len(basis), -1).astype(np.float32), "face_model:lips"
    cols = layout.indices("mouth") if "mouth" in layout.groups else list(range(layout.size))
    basis = np.zeros((layout.size, len(cols)), dtype=np.float32)
    basis[cols, np.arange(len(cols))] = 1.0
    return basis, "channels:mouth"


def mouth_motion_features(motion: MotionSequence) -> tuple[np.ndarray, str]:
    """The motion domain's visual input ``[T, V]`` of a clip and where it came from (see :func:`mouth_basis`)."""
    basis, source = mouth_basis(motion.layout, motion.identity)
    return (motion.expression @ basis).astype(np.float32), source


# -------------------------------------------------------------------------------- inputs: video

@functools.lru_cache(maxsize=1)
def default_portrait() -> tuple[np.ndarray, np.ndarray]:
    """scikit-image's astronaut (the corpus identities are fitted to it) and its fitted pose ``[6]``."""
    from skimage import data

    from talkinghead.face.model import fit_image

    image = data.astronaut()
    return image, fit_image(image).pose.astype(np.float32)


def mouth_crop(frame: np.ndarray, points: np.ndarray, rest: np.ndarray, height: int, width: int) -> np.ndarray:
    """A grayscale mouth crop ``[height, width] uint8`` of ``frame [H, W, 3]``.

    ``points [468, 2]``: the frame's projected landmarks (eye corners give scale and rotation);
    ``rest [468, 2]``: the same head with a neutral expression, whose lip centre places the crop, so
    the crop follows the head but not the mouth's own motion (which is what the judge must see)."""
    from talkinghead.face.model import mouth_vertex_indices

    eyes = points[EYE_OUTER_L] - points[EYE_OUTER_R]
    iod = float(np.hypot(*eyes))
    if not np.isfinite(iod) or iod < 1e-3:
        raise TalkingHeadError("The face is too small or degenerate to cut a mouth crop.")
    angle = math.atan2(float(eyes[1]), float(eyes[0]))
    centre = rest[mouth_vertex_indices()].mean(0)
    cos, sin = math.cos(angle), math.sin(angle)
    down = np.array([-sin, cos])  # image "down" of the face
    centre = centre + 0.12 * iod * down
    scale = width / (1.25 * iod)  # crop width = 1.25 eye-corner distances
    # crop pixel (u, v) <- image point centre + ((u - w/2) * right + (v - h/2) * down) / scale
    right = np.array([cos, sin])
    m = np.zeros((2, 3))
    m[:, 0] = right / scale
    m[:, 1] = down / scale
    m[:, 2] = centre - (width / 2) * right / scale - (height / 2) * down / scale
    gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    return cv2.warpAffine(gray, m, (width, height), flags=cv2.INTER_AREA | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE)


def render_mouth_crops(motion: MotionSequence, config: SyncNetConfig, portrait: np.ndarray | None = None,
                       portrait_pose: np.ndarray | None = None, render_size: int = 128) -> np.ndarray:
    """Render ``motion`` with the warp renderer and cut the mouth crops ``[T, h, w] uint8``
    (see :func:`render_clip`)."""
    return render_clip(motion, config, portrait, portrait_pose, render_size, keep_frames=False)[1]


def render_clip(motion: MotionSequence, config: SyncNetConfig, portrait: np.ndarray | None = None,
                portrait_pose: np.ndarray | None = None, render_size: int = 128, keep_frames: bool = True,
                ) -> tuple[np.ndarray | None, np.ndarray]:
    """Render ``motion``: face crops ``[T, S, S, 3] uint8`` (``None`` unless ``keep_frames``) and mouth
    crops ``[T, h, w] uint8``.

    The portrait defaults to the astronaut (whose fitted identity the corpus's are perturbed from); the
    motion's identity gives the mesh, its pose is applied relative to its first frame on top of the
    portrait's fitted pose (``portrait_pose``, zeros when a portrait is given without one)."""
    from talkinghead.face.model import ARKIT_LAYOUT, project
    from talkinghead.render import WarpRenderer, WarpRendererConfig
    from talkinghead.sequence import expression_for_layout, pose_for_portrait

    if "neutral" not in motion.identity or "frame" not in motion.identity:
        raise TalkingHeadError("Rendering mouth crops needs the motion's identity (neutral shape and frame).")
    if portrait is None:
        portrait, fitted = default_portrait()
    else:
        fitted = np.zeros(6, np.float32) if portrait_pose is None else np.asarray(portrait_pose, np.float32)
    identity = motion.identity
    zeros = np.zeros(ARKIT_LAYOUT.size, np.float32)
    renderer = WarpRenderer.from_fit(portrait, identity, zeros, fitted,
                                     WarpRendererConfig(size=render_size, paste_back=False))
    expression = expression_for_layout(motion, ARKIT_LAYOUT)
    pose = pose_for_portrait(motion.pose, fitted, "relative")
    points = project(identity, expression, pose)                     # [T, 468, 2] image pixels
    rest = project(identity, np.zeros_like(expression), pose)        # head only
    crops = np.empty((len(motion), config.crop_height, config.crop_width), np.uint8)
    frames = np.empty((len(motion), render_size, render_size, 3), np.uint8) if keep_frames else None
    for t in range(len(motion)):
        frame = renderer.render_crop(points[t])
        if frames is not None:
            frames[t] = frame
        crops[t] = mouth_crop(frame, renderer.box.to_crop(points[t]), renderer.box.to_crop(rest[t]),
                              config.crop_height, config.crop_width)
    return frames, crops


# ----------------------------------------------------------------------------------------- network

def _conv2d(cin: int, cout: int, stride: tuple[int, int] | int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class _AudioStream(nn.Module):
    """MFCC ``[B, 1, n_mfcc, 20]`` -> ``[B, d]`` (SyncNet's audio stream: 2-D convs over cepstrum x time)."""

    def __init__(self, c: SyncNetConfig) -> None:
        super().__init__()
        ch = c.channels
        self.net = nn.Sequential(_conv2d(1, ch), _conv2d(ch, 2 * ch, (1, 2)),
                                 _conv2d(2 * ch, 2 * ch, 2), _conv2d(2 * ch, 4 * ch, 2),
                                 nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4 * ch, c.embed_dim))

    def forward(self, mfcc: torch.Tensor) -> torch.Tensor:
        return self.net(mfcc)


class _MotionStream(nn.Module):
    """Mouth motion ``[B, window, V]`` -> ``[B, d]``: a per-frame MLP, then 1-D convs over the window."""

    def __init__(self, c: SyncNetConfig) -> None:
        super().__init__()
        if c.visual_dim < 1:
            raise TalkingHeadError("A motion-domain sync judge needs visual_dim (set by training).")
        ch = c.channels
        self.frame = nn.Sequential(nn.Linear(c.visual_dim, 2 * ch), nn.ReLU(inplace=True), nn.Linear(2 * ch, 2 * ch))
        self.temporal = nn.Sequential(
            nn.Conv1d(2 * ch, 2 * ch, 3, padding=1, bias=False), nn.BatchNorm1d(2 * ch), nn.ReLU(inplace=True),
            nn.Conv1d(2 * ch, 4 * ch, 3, padding=1, bias=False), nn.BatchNorm1d(4 * ch), nn.ReLU(inplace=True))
        self.out = nn.Linear(4 * ch * c.window, c.embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.frame(x).transpose(1, 2)        # [B, 2ch, window]
        return self.out(self.temporal(h).flatten(1))


class _VideoStream(nn.Module):
    """Mouth crops ``[B, window, h, w]`` (frames as channels, SyncNet's early fusion) -> ``[B, d]``."""

    def __init__(self, c: SyncNetConfig) -> None:
        super().__init__()
        ch = c.channels
        self.net = nn.Sequential(_conv2d(c.window, ch), _conv2d(ch, ch, 2), _conv2d(ch, 2 * ch, 2),
                                 _conv2d(2 * ch, 4 * ch, 2), _conv2d(4 * ch, 4 * ch, 2),
                                 nn.AdaptiveAvgPool2d((1, 2)), nn.Flatten(), nn.Linear(8 * ch, c.embed_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class SyncNet(PretrainedMixin, nn.Module):
    """The judge: ``embed_audio(mfcc [B, 20, n_mfcc]) -> [B, d]``, ``embed_visual(x) -> [B, d]``.

    ``x`` is ``[B, window, V]`` mouth motion (domain ``motion``, standardised with the stored training
    statistics) or ``[B, window, h, w]`` uint8-valued crops (domain ``video``, each crop normalised to
    zero mean and unit variance)."""

    component: ClassVar[str] = "evaluation.syncnet"
    config_class: ClassVar[type[Config]] = SyncNetConfig
    checkpoint_inputs: ClassVar[tuple[str, ...]] = ("layout",)
    config: SyncNetConfig
    visual_mean: torch.Tensor
    visual_std: torch.Tensor

    def __init__(self, config: SyncNetConfig, layout: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.config = config
        self.layout = layout
        self.audio = _AudioStream(config)
        self.visual: nn.Module = _MotionStream(config) if config.domain == "motion" else _VideoStream(config)
        dim = max(config.visual_dim, 1)
        self.register_buffer("visual_mean", torch.zeros(dim))
        self.register_buffer("visual_std", torch.ones(dim))

    def embed_audio(self, mfcc: torch.Tensor) -> torch.Tensor:
        """``mfcc: [B, window * r, n_mfcc]`` -> ``[B, d]``."""
        return self.audio(mfcc.transpose(1, 2)[:, None])  # [B, 1, n_mfcc, 20]

    def embed_visual(self, x: torch.Tensor) -> torch.Tensor:
        """``x: [B, window, V]`` (motion) or ``[B, window, h, w]`` (video) -> ``[B, d]``."""
        if self.config.domain == "motion":
            return self.visual((x - self.visual_mean) / self.visual_std)
        x = x.float()
        x = (x - x.mean(dim=(2, 3), keepdim=True)) / (x.std(dim=(2, 3), keepdim=True) + 4.0)
        return self.visual(x)

    # -- whole clips ------------------------------------------------------------------------------
    def visual_input(self, motion: MotionSequence, crops: np.ndarray | None = None) -> np.ndarray:
        """The visual stream's per-frame input of a clip: ``[T, V]`` mouth motion or ``[T, h, w]`` crops
        (rendered from ``motion`` when not given)."""
        if self.config.domain == "motion":
            feats, source = mouth_motion_features(motion)
            if feats.shape[1] != self.config.visual_dim:
                raise TalkingHeadError(f"The sync judge reads {self.config.visual_dim} mouth values a frame "
                                       f"({self.config.visual_source}); this motion gives {feats.shape[1]} ({source}).")
            return feats
        if crops is None:
            crops = render_mouth_crops(motion, self.config)
        return np.asarray(crops)

    @torch.no_grad()
    def embed_clip(self, audio: np.ndarray, visual: np.ndarray, batch: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """Embeddings of every full window of a clip: ``(visual [T', d], audio [T', d])``, ``T' = T - window + 1``,
        row ``i`` centred on frame ``i + window // 2``. ``audio``: samples at 16 kHz; ``visual [T, ...]``."""
        c = self.config
        num_frames = len(visual)
        if num_frames < c.window:
            raise TalkingHeadError(f"A clip needs at least {c.window} frames for the sync judge, got {num_frames}.")
        mfcc = torch.from_numpy(audio_mfcc(audio, c, num_frames))
        vis = torch.from_numpy(np.asarray(visual, dtype=np.float32))
        r = c.mfcc_per_frame
        v_windows = vis.unfold(0, c.window, 1)                         # [T', ..., window]
        v_windows = v_windows.movedim(-1, 1)                           # [T', window, ...]
        a_windows = mfcc.unfold(0, c.window * r, r).transpose(1, 2)    # [T', window*r, n_mfcc]
        was_training = self.training
        self.eval()
        try:
            vs = [self.embed_visual(v_windows[i:i + batch]) for i in range(0, len(v_windows), batch)]
            as_ = [self.embed_audio(a_windows[i:i + batch]) for i in range(0, len(a_windows), batch)]
        finally:
            self.train(was_training)
        return torch.cat(vs).numpy(), torch.cat(as_).numpy()

    def score(self, audio: np.ndarray, visual: np.ndarray) -> SyncScores:
        """LSE-D / LSE-C / offset of one clip (see :func:`sync_scores`)."""
        v, a = self.embed_clip(audio, visual)
        return sync_scores(v, a, self.config.max_offset)

    def score_motion(self, audio: np.ndarray, motion: MotionSequence, crops: np.ndarray | None = None) -> SyncScores:
        return self.score(audio, self.visual_input(motion, crops))


# ----------------------------------------------------------------------------------------- scores

@dataclass(frozen=True)
class SyncScores:
    """One clip's sync scores. ``distances [2K+1]``: mean distance at each offset ``-K..K``."""

    lse_d: float
    lse_c: float
    offset: int
    distances: np.ndarray = field(repr=False)
    offsets: np.ndarray = field(repr=False)


def offset_distances(visual: np.ndarray, audio: np.ndarray, max_offset: int) -> tuple[np.ndarray, np.ndarray]:
    """``(offsets [2K+1], mean distance [2K+1])``: for each ``k`` the mean over frames ``t`` of
    ``||visual_t - audio_(t+k)||`` (frames whose ``t + k`` lies outside are left out).

    ``K`` is ``max_offset`` or less for short clips (at least a third of the frames stay in every average).
    """
    v = np.asarray(visual, np.float64)
    a = np.asarray(audio, np.float64)
    if v.ndim != 2 or v.shape != a.shape or len(v) < 1:
        raise TalkingHeadError(f"Visual and audio embeddings must be [T, d] of the same shape, got "
                               f"{list(v.shape)} and {list(a.shape)}.")
    n = len(v)
    k_max = max(0, min(max_offset, n - max(1, math.ceil(n / 3))))
    offsets = np.arange(-k_max, k_max + 1)
    dists = np.empty(len(offsets))
    for j, k in enumerate(offsets):
        lo, hi = max(0, -k), min(n, n - k)
        dists[j] = np.linalg.norm(v[lo:hi] - a[lo + k:hi + k], axis=1).mean()
    return offsets, dists


def sync_scores(visual: np.ndarray, audio: np.ndarray, max_offset: int = 15) -> SyncScores:
    """LSE-D = min_k mean_t d(t, k), LSE-C = median_k mean_t d(t, k) - LSE-D, offset = argmin_k
    (SyncNet's reference evaluation; Wav2Lip Sec. 4.1). ``visual, audio: [T, d]`` embeddings, row ``t``
    of each the same frame."""
    offsets, dists = offset_distances(visual, audio, max_offset)
    best = int(np.argmin(dists))
    return SyncScores(float(dists[best]), float(np.median(dists) - dists[best]), int(offsets[best]), dists, offsets)


@dataclass(frozen=True)
class SyncSummary:
    """Scores averaged over clips; ``offset_accuracy``: fraction of clips whose detected offset is
    within ``tolerance`` frames of the expected one (0 for in-sync input)."""

    lse_d: float
    lse_c: float
    offset_accuracy: float
    num_clips: int

    def to_dict(self) -> dict[str, float]:
        return {"LSE-D": self.lse_d, "LSE-C": self.lse_c, "offset_accuracy": self.offset_accuracy,
                "clips": self.num_clips}


def summarize(scores: Sequence[SyncScores], expected: Sequence[int] | None = None, tolerance: int = 1) -> SyncSummary:
    if not scores:
        raise TalkingHeadError("No clips were scored by the sync judge.")
    expected = [0] * len(scores) if expected is None else list(expected)
    hits = [abs(s.offset - e) <= tolerance for s, e in zip(scores, expected, strict=True)]
    return SyncSummary(float(np.mean([s.lse_d for s in scores])), float(np.mean([s.lse_c for s in scores])),
                       float(np.mean(hits)), len(scores))


# -------------------------------------------------------------------------------------- training

@dataclass
class SyncClip:
    """A clip prepared for the judge: MFCC ``[T * r, n_mfcc]`` and the visual input ``[T, ...]``."""

    id: str
    mfcc: np.ndarray
    visual: np.ndarray
    audio: np.ndarray

    def __len__(self) -> int:
        return len(self.visual)


def prepare_clips(dataset: Any, split: str, config: SyncNetConfig, render_size: int = 128,
                  limit: int | None = None) -> tuple[list[SyncClip], str]:
    """Read a split and make each clip's judge inputs (crops are rendered for the video domain)."""
    from talkinghead.data.dataset import Dataset

    data = dataset if isinstance(dataset, Dataset) else Dataset(dataset)
    ids = data.ids(split)
    if limit is not None:
        ids = ids[:limit]
    if not ids:
        raise TalkingHeadError(f"The dataset {data.root} has no clips in split '{split}'.")
    clips, source = [], ""
    for clip_id in progress(ids, f"preparing {split} clips for the sync judge", total=len(ids)):
        clip = data.clip(clip_id)
        if len(clip.motion) < config.window + 2:
            continue
        if config.domain == "motion":
            visual, source = mouth_motion_features(clip.motion)
        else:
            visual, source = render_mouth_crops(clip.motion, config, render_size=render_size), "video:mouth_crops"
        clips.append(SyncClip(clip_id, audio_mfcc(clip.audio, config, len(visual)), visual,
                              np.asarray(clip.audio, np.float32)))
    if not clips:
        raise TalkingHeadError(f"No clip of split '{split}' is long enough for the sync judge.")
    return clips, source


def offset_batch(clips: list[SyncClip], config: SyncNetConfig, rng: np.random.Generator, size: int, reach: int
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """Visual windows ``[B, window, ...]`` and the candidate audio windows ``[B, 2*reach+1, window*r, n]``."""
    h, r = config.half, config.mfcc_per_frame
    usable = [c for c in clips if len(c) >= 2 * (h + reach) + 1]
    if not usable:
        raise TalkingHeadError(f"The clips are too short for training offsets of +-{reach} frames.")
    lengths = np.array([len(c) - 2 * (h + reach) for c in usable], np.float64)
    picks = rng.choice(len(usable), size=size, p=lengths / lengths.sum())
    vis, aud = [], []
    for i in picks:
        clip = usable[i]
        t = int(rng.integers(h + reach, len(clip) - h - reach))
        vis.append(clip.visual[t - h:t + h + 1])
        lo = (t - h - reach) * r
        span = clip.mfcc[lo:lo + (config.window + 2 * reach) * r]
        aud.append(np.stack([span[k * r:k * r + config.window * r] for k in range(2 * reach + 1)]))
    return torch.from_numpy(np.stack(vis).astype(np.float32)), torch.from_numpy(np.stack(aud))


def offset_logits(model: SyncNet, visual: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
    """``-||v - a_k||`` ``[B, K]`` for visual windows ``[B, ...]`` and candidates ``[B, K, window*r, n]``."""
    b, k = audio.shape[:2]
    v = model.embed_visual(visual)                                       # [B, d]
    a = model.embed_audio(audio.flatten(0, 1)).view(b, k, -1)            # [B, K, d]
    return -torch.sqrt(((v[:, None] - a) ** 2).sum(-1) + 1e-8)


def evaluate_offsets(model: SyncNet, clips: Sequence[SyncClip], shifts: Sequence[int] = (-6, 6),
                     tolerance: int = 1) -> dict[str, float]:
    """Offset-detection accuracy on clips: in sync (expected 0) and with the audio shifted by each of
    ``shifts`` frames (expected the shift); chance is ``(2 * tolerance + 1) / (2K + 1)``."""
    in_sync, shifted = [], []
    for clip in clips:
        in_sync.append(model.score(clip.audio, clip.visual))
        for s in shifts:
            shifted.append((model.score(shift_audio(clip.audio, s, model.config.fps), clip.visual), s))
    sync = summarize(in_sync, tolerance=tolerance)
    out = {"in_sync_accuracy": sync.offset_accuracy, "lse_d": sync.lse_d, "lse_c": sync.lse_c,
           "chance": (2 * tolerance + 1) / (2 * model.config.max_offset + 1), "clips": float(len(clips))}
    if shifted:
        out["shifted_accuracy"] = summarize([s for s, _ in shifted], [e for _, e in shifted], tolerance).offset_accuracy
    return out


def train_syncnet(dataset: Any, domain: str = "motion", preset: str = "cpu",
                  train_config: SyncTrainConfig | None = None, split: str = "train",
                  eval_split: str | None = "test", limit: int | None = None, **overrides: Any,
                  ) -> tuple[SyncNet, dict[str, Any]]:
    """Train a judge on ``dataset`` (a :class:`Dataset` or its folder) and measure its offset accuracy on
    ``eval_split`` (falls back to ``val``; None skips). Returns the model and a report dict.

    The run goes through the shared training loop (:func:`talkinghead.training.loop.fit`) into a
    temporary folder; ``talkinghead train judge.sync`` runs the same solver into a kept checkpoint (with
    ``--resume``). The caller's torch random state is left as it was."""
    import tempfile
    from pathlib import Path

    from talkinghead.evaluation.sync_training import SyncSolver
    from talkinghead.training.loop import fit

    tc = train_config or SyncTrainConfig.preset(preset)
    solver = SyncSolver(dataset, domain, preset, tc, split=split, eval_split=eval_split, limit=limit, **overrides)
    with torch.random.fork_rng(devices=[]), tempfile.TemporaryDirectory(prefix="sync-judge-") as tmp:
        summary = fit(solver, tc, Path(tmp) / "judge", preset=preset, tensorboard=False)
        model = SyncNet.from_pretrained(Path(tmp) / "judge")
    return model, summary["report"]

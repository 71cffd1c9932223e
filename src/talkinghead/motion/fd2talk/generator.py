"""FD2Talk's first stage as a motion generator (:class:`talkinghead.generators.MotionGenerator`; FD2Talk 3.2).

A checkpoint folder holds the two DiTs of 3.2, ``expression/`` (``theta_exp``) and ``pose/`` (``theta_pose``), or
Table 2's single DiT ``joint/`` (``--single-dit``); each a ``fd2talk.dit`` checkpoint of :mod:`.training.motion`
whose ``extra`` records its part, channels, the dataset's layout, the window length ``N`` and its variant. A
``talkinghead.json`` manifest names the generator ``fd2talk`` and the component folders
(:func:`write_fd2talk_manifest`). When the folder also holds the frame generator of 3.3 (``autoencoder/`` and
``unet/``, :mod:`talkinghead.render.fd2talk.renderer`), ``generate --model fd2talk`` renders with it
(:meth:`FD2TalkGenerator.paired_renderer`); otherwise, or with ``--renderer``, with the renderer asked for.

Generation (:meth:`FD2TalkGenerator.generate`):

1. speech features ``A``: each DiT's checkpoint spec through :meth:`Conditions.features` (the dataset's stored
   features for a dataset clip; wav2vec 2.0 features need the dataset's local encoder folder, as in training);
2. each DiT samples its channels from Gaussian noise ``x_T ~ N(0, I)`` of the whole sequence ``[T, C]``, ``T``
   iterations of x0 prediction (Eq. 3) and the step of Eq. 5 (:func:`talkinghead.diffusion.sample`; DDIM is
   Eq. 5 with ``sigma_t = eta * sigma_t^DDPM``);
3. expression ``[T, E]`` in the dataset's layout, raw units (relative to the closed rest face, like every motion
   model's; the renderer composes it with the portrait's) and the generated pose ``[T, 6]`` (``pose_generated``:
   the pipeline centres it on the portrait's pose and scales it by ``--head-motion``). A single DiT's output is
   split into the two.

Deviations and choices (the paper gives no inference details beyond Eq. 5):

- **sampler and steps**: DDIM with 10 steps by default (``cpu``, as the project's other motion models; ``eta``
  0), 4 (``tiny``); ``paper`` runs all 1000 steps with ``eta = 1``, which is Eq. 5 with ``sigma_t`` the DDPM
  posterior standard deviation.
- **long audio** (an extension: the paper samples ``F`` frames at once and says nothing of length): the DiTs were
  trained on windows of ``N`` frames and their self-attention and positions know no longer sequences, so the
  sequence is covered by windows of ``N`` frames overlapping by ``overlap`` (:func:`.dimitra.seams.recursive_windows`)
  and, at *every* denoising step, each window's x0 prediction is computed and the overlapping predictions are
  averaged with weights that ramp up over the overlap (:func:`window_weights`; MultiDiffusion, Bar-Tal et al.,
  ICML 2023). All windows share one noisy sequence, so they agree at every step and no window is sampled
  apart from its neighbours; windows are batched ``batch_windows`` at a time. Audio shorter than ``N`` is padded
  by repeating its last frame (training's rule for short clips) and the output cut.
- **noise**: one draw per DiT from a seed derived from the request's seed and the part (:func:`part_seed`), so a
  seed reproduces the output exactly.
- **style**: FD2Talk takes none; a style video, emotion or style code is refused, and so is a guidance scale
  (the DiTs are trained without condition dropout, so there is no unconditional branch).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch

from talkinghead.config import Config
from talkinghead.diffusion import ScheduleConfig, make_scheduler, sample
from talkinghead.errors import TalkingHeadError
from talkinghead.generators import Conditions, MotionOutput, read_manifest, weights_root, write_manifest
from talkinghead.log import Laps
from talkinghead.motion.dimitra.seams import recursive_windows, window_joins
from talkinghead.motion.fd2talk.data import PARTS, part_channels
from talkinghead.motion.fd2talk.model import MotionDiT
from talkinghead.motion.parts import read_part_record
from talkinghead.sequence import POSE_NAMES, ChannelLayout, MotionSequence

#: the component folders of the two-DiT model and of the single DiT (Table 2)
TWO_DITS = ("expression", "pose")
SINGLE_DIT = ("joint",)


@dataclass(frozen=True)
class FD2TalkSampling(Config):
    """FD2Talk's sampling settings: ``steps`` of ``sampler`` (x0 prediction, Eq. 5; ``eta`` for DDIM);
    ``window_frames`` the window length ``N`` (0 = each DiT's trained length), ``overlap`` the frames neighbouring
    windows share, ``batch_windows`` how many windows one network call takes (see the module docstring)."""

    steps: int = 10
    sampler: Literal["ddim", "ddpm"] = "ddim"
    eta: float = 0.0
    window_frames: int = 0
    overlap: int = 8
    batch_windows: int = 8

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {"steps": 4, "overlap": 4},
        "cpu": {},
        "paper": {"steps": 1000, "eta": 1.0},
    }

    def __post_init__(self) -> None:
        if not 1 <= self.steps <= 1000:
            raise TalkingHeadError(f"The number of sampling steps must be between 1 and 1000, got {self.steps}.")
        if self.sampler not in ("ddim", "ddpm") or not 0.0 <= self.eta <= 1.0:
            raise TalkingHeadError(f"FD2Talk samples with ddim or ddpm and eta in [0, 1], got {self.sampler} and "
                                   f"{self.eta}.")
        if self.window_frames < 0 or self.overlap < 0 or self.batch_windows < 1:
            raise TalkingHeadError("window_frames and overlap must be 0 or more and batch_windows at least 1.")


@dataclass(frozen=True)
class FD2TalkDiT:
    """One trained DiT with what its checkpoint's ``extra`` records: its ``part`` (``expression``, ``pose`` or
    ``joint``), ``channels``, the dataset's ``layout``, the trained window length and its ``variant`` flags."""

    part: str
    net: MotionDiT
    channels: tuple[str, ...]
    layout: ChannelLayout
    window_frames: int
    variant: tuple[str, ...]
    schedule: ScheduleConfig

    @classmethod
    def load(cls, folder: Path, part: str) -> FD2TalkDiT:
        """The ``part`` DiT in ``folder`` (one sentence when it holds another part or lacks its record)."""
        net = MotionDiT.from_pretrained(folder)
        record, variant = read_part_record(
            folder, MotionDiT.component, part, net.config.motion_dim, part_channels, "FD2Talk's", "DiT",
            "talkinghead train fd2talk.expression or fd2talk.pose",
            lambda extra: tuple(str(v) for v in extra.get("variant") or ()))
        if net.config.alignment_mask != ("no_alignment_mask" not in variant):
            raise TalkingHeadError(f"{folder} records an alignment-mask variant its model config does not have.")
        channels, layout, window, schedule = record.channels, record.layout, record.window, record.schedule
        return cls(part, net, channels, layout, window, variant, schedule)


def part_seed(seed: int, part: str) -> int:
    """The noise seed of the ``part`` DiT for a request's ``seed``."""
    return int(np.random.SeedSequence([seed % 2**32, PARTS.index(part)]).generate_state(1)[0])


def window_weights(frames: int, overlap: int) -> np.ndarray:
    """``[frames]`` weights of a window's frames when overlapping predictions are averaged: rising over the first
    ``overlap`` frames and falling over the last ``overlap``, ``min(1, (i + 1) / (overlap + 1),
    (frames - i) / (overlap + 1))``, so a window's edge counts least where a neighbour covers it."""
    i = np.arange(frames, dtype=np.float32)
    ramp = np.float32(overlap + 1)
    return np.minimum(np.minimum(1.0, (i + 1) / ramp), (frames - i) / ramp).astype(np.float32)


@torch.no_grad()
def sample_dit(model: FD2TalkDiT, audio: np.ndarray, settings: FD2TalkSampling, seed: int) -> np.ndarray:
    """Sample one DiT over the whole sequence: ``audio [T, A]`` raw features -> motion ``[T, C]`` raw units (see the
    module docstring: overlapping windows averaged at every step, one noise draw from ``seed``)."""
    net = model.net
    n = settings.window_frames or model.window_frames
    overlap = min(settings.overlap, n - 1)
    total = max(len(audio), n)                                                     # short audio is edge-padded
    device = net.head.weight.device
    index = np.clip(np.arange(total), 0, len(audio) - 1)
    features = torch.from_numpy(np.ascontiguousarray(audio[index], np.float32)).to(device)    # [T', A]
    starts = recursive_windows(total, n, overlap)
    weights = torch.from_numpy(window_weights(n, overlap)).to(device)[:, None]     # [N, 1]
    coverage = torch.zeros(total, 1, device=device)
    for s in starts:
        coverage[s:s + n] += weights

    def denoise(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """``x [1, T', C]`` the noisy sequence, ``t [1]`` -> the weighted mean of the windows' x0 ``[1, T', C]``."""
        out = torch.zeros_like(x[0])
        for first in range(0, len(starts), settings.batch_windows):
            chunk = starts[first:first + settings.batch_windows]
            xs = torch.stack([x[0, s:s + n] for s in chunk])                        # [W, N, C]
            audio_windows = torch.stack([features[s:s + n] for s in chunk])         # [W, N, A]
            pred = net(xs, t[:1].expand(len(chunk)), audio_windows)                # [W, N, C]
            for k, s in enumerate(chunk):
                out[s:s + n] += weights * pred[k]
        return (out / coverage)[None]

    scheduler = make_scheduler(model.schedule, settings.sampler)
    x0 = sample(denoise, (1, total, net.config.motion_dim), scheduler, settings.steps,
                generator=torch.Generator().manual_seed(seed), eta=settings.eta, device=device)   # [1, T', C]
    return net.motion_norm.inverse(x0)[0, :len(audio)].float().cpu().numpy()


def _component(folder: Path) -> str | None:
    from talkinghead.checkpoint import read_checkpoint_info

    try:
        return read_checkpoint_info(folder).component
    except TalkingHeadError:
        return None


class FD2TalkGenerator:
    """Audio + portrait -> expression and head pose (FD2Talk 3.2: the Expression and Pose Transformers, or
    Table 2's single DiT)."""

    kind: ClassVar[str] = "motion"
    name: ClassVar[str] = "fd2talk"
    title: ClassVar[str] = "FD2Talk"
    capabilities: ClassVar[tuple[str, ...]] = ("head-pose",)
    #: how ``evaluate`` asks for a style: FD2Talk takes none
    evaluation_style: ClassVar[str] = "none"
    evaluation_styles: ClassVar[tuple[str, ...]] = ("none",)

    def __init__(self, models: dict[str, FD2TalkDiT], directory: Path | None = None,
                 sampling: FD2TalkSampling | None = None) -> None:
        if tuple(models) not in (TWO_DITS, SINGLE_DIT):
            raise TalkingHeadError("FD2Talk needs an expression and a pose DiT, or one single DiT.")
        wrong = [name for name, m in models.items() if m.part != name]
        if wrong:
            raise TalkingHeadError(f"FD2Talk's {', '.join(wrong)} slot holds another part's DiT.")
        if "pose" in models and models["pose"].channels != POSE_NAMES:
            raise TalkingHeadError(f"The pose DiT generates {', '.join(models['pose'].channels)}, not the 6 pose "
                                   "channels.")
        self.models = models
        self.directory = directory
        self.sampling = sampling or FD2TalkSampling()

    def paired_renderer(self) -> Any | None:
        """FD2Talk's own frame generator (3.3) when this folder holds one (``--renderer`` not given), else None."""
        from talkinghead.render.fd2talk.renderer import FD2TalkFrameRenderer, holds_frame_generator

        if self.directory is None or not holds_frame_generator(self.directory):
            return None
        return FD2TalkFrameRenderer.from_pretrained(self.directory)

    # ------------------------------------------------------------------------------------ loading
    @classmethod
    def recognises(cls, path: Path) -> bool:
        """A folder without a manifest: ``expression/`` and ``pose/`` DiT checkpoints, or a ``joint/`` one."""
        return any(all(_component(path / name) == MotionDiT.component for name in names)
                   for names in (TWO_DITS, SINGLE_DIT))

    @classmethod
    def from_pretrained(cls, directory: str | Path | None = None,
                        sampling: FD2TalkSampling | None = None) -> FD2TalkGenerator:
        """From a checkpoint folder (default: the shipped ``weights/fd2talk``); the sampling settings given, else
        those of the manifest's ``sampling`` entry (any of :class:`FD2TalkSampling`'s fields), else the defaults."""
        path = Path(directory) if directory is not None else weights_root() / "fd2talk"
        if not path.is_dir():
            if directory is None:
                raise TalkingHeadError(f"FD2Talk's weights are not shipped yet ({path} is missing); train them with "
                                       "scripts/train_fd2talk.sh (talkinghead train fd2talk.expression and "
                                       "fd2talk.pose) and pass --checkpoint DIR.")
            raise TalkingHeadError(f"The FD2Talk checkpoint folder {path} does not exist.")
        manifest = read_manifest(path) or {}
        if manifest.get("generator", "fd2talk") != "fd2talk":
            raise TalkingHeadError(f"{path} holds a '{manifest['generator']}' checkpoint, not FD2Talk's.")
        named = {str(k): path / str(v) for k, v in (manifest.get("components") or {}).items()}
        folders = named or {name: path / name for name in (*TWO_DITS, *SINGLE_DIT) if (path / name).is_dir()}
        names = TWO_DITS if "expression" in folders or "pose" in folders else SINGLE_DIT
        missing = [n for n in names if n not in folders or not folders[n].is_dir()]
        if missing:
            raise TalkingHeadError(f"{path} lacks FD2Talk's {' and '.join(missing)} DiT; an FD2Talk folder holds "
                                   "expression/ and pose/ checkpoints, or one joint/ checkpoint (--single-dit).")
        settings = manifest.get("sampling")
        if sampling is None and settings:
            sampling = FD2TalkSampling.from_dict(dict(settings), partial=True)
        return cls({n: FD2TalkDiT.load(folders[n], n) for n in names}, path, sampling)

    # ------------------------------------------------------------------------------------ properties
    @property
    def layout(self) -> ChannelLayout:
        """The expression layout of the output: the dataset's the expression (or single) DiT was trained on."""
        return next(iter(self.models.values())).layout

    @property
    def single_dit(self) -> bool:
        return tuple(self.models) == SINGLE_DIT

    @property
    def window_frames(self) -> dict[str, int]:
        """Each DiT's window length ``N`` under the current settings."""
        return {name: self.sampling.window_frames or m.window_frames for name, m in self.models.items()}

    def settings(self, conditions: Conditions) -> FD2TalkSampling:
        """This generator's sampling settings with the request's steps where given."""
        return self.sampling.replace(steps=conditions.steps) if conditions.steps is not None else self.sampling

    def audio_features(self, conditions: Conditions) -> dict[str, np.ndarray]:
        """Each DiT's speech features ``[T_m, A_m]`` as its checkpoint specifies them."""
        out = {}
        for name, model in self.models.items():
            features = conditions.features(model.net.audio_features, f"FD2Talk {name} DiT")
            if features.shape[1] != model.net.config.audio_dim:
                raise TalkingHeadError(f"The FD2Talk {name} DiT's audio feature widths do not match its spec.")
            out[name] = features
        return out

    # ------------------------------------------------------------------------------------ motion
    def generate(self, conditions: Conditions) -> MotionOutput:
        """Features, then each DiT's sampling, then expression and pose (see the module docstring)."""
        if conditions.style.given or conditions.style.mix is not None:
            raise TalkingHeadError("FD2Talk takes no speaking style (style video, emotion or style code); its "
                                   "motion follows the audio.")
        if conditions.guidance is not None and conditions.guidance != 1.0:
            raise TalkingHeadError("FD2Talk has no classifier-free guidance; leave the guidance scale unset.")
        lap = Laps()
        settings = self.settings(conditions)
        audio = self.audio_features(conditions)
        frames = min(len(a) for a in audio.values())
        if frames < 1:
            raise TalkingHeadError("The audio is too short for a single video frame.")
        lap("features")
        motion = {name: sample_dit(m, audio[name][:frames], settings, part_seed(conditions.seed, name))
                  for name, m in self.models.items()}
        lap("motion")
        e = self.layout.size
        if self.single_dit:
            expression, pose = motion["joint"][:, :e], motion["joint"][:, e:e + len(POSE_NAMES)]
        else:
            expression, pose = motion["expression"], motion["pose"]
        variant = sorted({v for m in self.models.values() for v in m.variant})
        source = "fd2talk" + (f":{','.join(variant)}" if variant else "")
        sequence = MotionSequence(np.ascontiguousarray(expression), np.ascontiguousarray(pose), self.layout,
                                  conditions.fps, conditions.portrait.identity, f"generate:{source}")
        joins = sorted({j for n in self.window_frames.values()
                        for j in window_joins(max(frames, n), n, min(settings.overlap, n - 1)) if j < frames})
        return MotionOutput(sequence, True, None, source, lap.timings, tuple(joins))


def write_fd2talk_manifest(directory: str | Path, **extra: Any) -> Path:
    """Write the ``talkinghead.json`` of an FD2Talk folder (``expression/`` and ``pose/``, or ``joint/``) after
    checking that it loads; ``extra`` (e.g. the commands and seed) is stored with it."""
    path = Path(directory)
    from talkinghead.render.fd2talk.renderer import holds_frame_generator

    generator = FD2TalkGenerator.from_pretrained(path)
    if not holds_frame_generator(path, {"frames": extra.get("frames")}):   # the names this manifest will give
        extra.pop("frames", None)
    return write_manifest(path, FD2TalkGenerator.name, {name: name for name in generator.models}, **extra)

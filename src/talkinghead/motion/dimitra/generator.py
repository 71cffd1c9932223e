"""Dimitra as a motion generator (:class:`talkinghead.generators.MotionGenerator`; Dimitra III-B, III-B.4
"generating recursively").

A checkpoint folder holds the three cMDTs of III-B.4, ``lips/``, ``face/`` and ``pose/`` (each a
``dimitra.cmdt`` checkpoint of :mod:`.training.motion`, whose ``extra`` records its part, channels, the dataset's
layout, the window length ``N`` and the conditions it was trained with), optionally ``phonemes/`` (the frame-level
recogniser of :mod:`.phonemes`), and a ``talkinghead.json`` manifest naming the generator ``dimitra``.

Generation (:meth:`DimitraGenerator.generate`), fed exactly what the models were trained on (:mod:`.data`):

1. speech features ``a^{1:T}``: each part's checkpoint spec through :meth:`Conditions.features` (the dataset's
   stored features for a dataset clip);
2. a phoneme token per frame ``p^{1:T}`` (III-B.2), the first source at hand: the phone segments the conditions
   carry (a dataset clip's alignment), the forced alignment of the transcript (:func:`talkinghead.audio.align.align`,
   the paper's route), the recogniser's per-frame prediction (the project's addition, for audio without a
   transcript); a model trained with ``--no-phonemes`` reads ``<pad>`` everywhere, as in training;
3. the transcript ``S`` as character tokens (:func:`transcript_tokens`), the whole transcript for every window
   (as every training window saw its clip's whole transcript); without one, the null token alone, the mode the
   models learned through transcript dropout; a model trained with ``--no-transcript`` always gets the null token;
4. each part samples its own channels, window after window (:func:`sample_part`): windows of the trained ``N``
   frames (:func:`.seams.recursive_windows`); the first window is conditioned on ``x^1`` = the portrait's own
   coefficients (its expression split into the lip and face channels, its head pose), every later window on the
   generated frame just before it, the training convention of :mod:`.data` (III-B.4: "each conditioned on the
   last frame of the previous one"). Each window's conditions are encoded once, not at every step, and only one
   window is in memory, so memory is bounded for any length (attention is linear, no ``[T, T]`` exists). The
   denoiser is the one reverse loop :func:`talkinghead.diffusion.sample` with x0 prediction, DDIM by default;
5. the lip and face channels are put back into the dataset's layout, expression ``[T, E]`` (E = 40 for ARKit),
   raw units like every motion model's (relative to the closed rest face); pose ``[T, 6]`` as generated
   (``pose_generated``), absolute in the frame of the portrait's pose it started from. The pipeline places it on
   the portrait (its mean removed, scaled by ``--head-motion``) and the renderer composes the expression with the
   portrait's, as for DreamTalk. Because the face model starts from the portrait's own expression, its output
   already holds the portrait's values of the channels composition keeps as offsets (smile, brows, eyes:
   :func:`talkinghead.face.model.compose_expression`); those values are taken off the returned expression
   (:meth:`DimitraGenerator.portrait_offsets`) so composition does not count them twice.

Deviations and choices (the paper gives no inference details beyond recursion):

- **sampler and steps**: not in the paper; DDIM with 10 steps (``cpu``, as DreamTalk App. C.4), 4 (``tiny``),
  the full 1000-step DDPM chain (``paper``).
- **first frame**: the condition of a window is the frame *before* it, not its own first frame (the data
  module's convention, so the first window continues the portrait rather than copying it into frame 1).
- **the last window**: when ``N`` does not divide ``T`` it is moved back to end on the last frame, overlapping its
  predecessor and conditioned on the generated frame before its start, so every window has ``N`` frames of real
  audio; audio shorter than ``N`` is padded by repeating its last frame (training's rule for short clips) and cut.
- **noise**: each window draws its noise from its own seed (:func:`window_seed` of the request's seed, the part and
  the window index), so a seed reproduces the output exactly and any window can be re-sampled alone.
- **phonemes**: given phone segments come first; when forced alignment fails (a word it cannot pronounce, a lost
  path) and a recogniser is present, the recogniser is used instead (logged).
- **guidance** (an extension, not in the paper): classifier-free guidance on the transcript, the null token as the
  unconditional branch (``guidance``; 1 = off, the default). ``speech_guidance`` likewise on the speech, for a part
  trained with speech dropout (``--speech-dropout-percent``): the unconditional branch is the same conditions with
  the audio and phoneme tokens dropped, and the (transcript-guided) prediction is pushed away from it.
- **first lips** ``rest`` (the default; ``first_lips``): the lip model's first ``x^1`` is the closed rest mouth, not
  the portrait's own lip channels. Those channels are articulation, which composition takes from the motion alone
  (:func:`talkinghead.face.model.compose_expression`), so a photo's open mouth never reaches the image; and every
  training clip starts in silence with the mouth at rest. Starting from a laughing or screaming photo's open jaw
  kept the mouth open into the first pauses (real set, no transcript: pauses closed on 9 of 15 portraits).
  ``portrait`` is the paper's reading (the video's first frame).
- **first pose** ``mean`` (an option, default off): start the pose from the pose model's training mean instead of
  the portrait's pose, for a portrait whose pose frame differs from the training data's (e.g. a photo with models
  trained on the synthetic corpus, whose poses are offsets from the portrait).
- **transcript length**: the character encoder reads at most ``max_text_length`` characters (128 in ``cpu``), so a
  long transcript is cut there, as in training; every window sees the same (cut) transcript, because the paper
  does not say how ``S`` relates to a window and the corpus has no word timings to cut it by.
- models that read CLIP text features (``external_text_dim``) cannot be given a transcript: this project has no
  CLIP text encoder; they generate without one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch

from talkinghead.audio.phonemes import PAD_ID, frame_tokens
from talkinghead.config import Config
from talkinghead.diffusion import ScheduleConfig, classifier_free_guidance, make_scheduler, sample
from talkinghead.errors import TalkingHeadError
from talkinghead.generators import (
    Conditions,
    MotionOutput,
    Portrait,
    component_folders,
    read_manifest,
    weights_root,
    write_manifest,
)
from talkinghead.log import Laps, log_event, progress
from talkinghead.motion.dimitra.data import PARTS, part_columns, part_layout
from talkinghead.motion.dimitra.model import CMDT, CMDTConditions, transcript_tokens
from talkinghead.motion.dimitra.phonemes import PhonemeRecognizer
from talkinghead.motion.dimitra.seams import crossfade_weights, recursive_windows, window_joins
from talkinghead.motion.parts import read_part_record
from talkinghead.sequence import POSE_NAMES, ChannelLayout, MotionSequence, expression_for_layout

#: the recogniser's folder in a checkpoint folder (the parts' folders are named after the parts)
PHONEMES_DIR = "phonemes"


@dataclass(frozen=True)
class DimitraSampling(Config):
    """Dimitra's sampling settings. ``steps`` of ``sampler`` (x0 prediction; ``eta`` for DDIM); ``window_frames``:
    the recursion's window length ``N`` (0 = each part's trained length, which is what the models know);
    ``guidance``: classifier-free guidance scale on the transcript (1 = off); ``first_pose``: the pose ``x^1`` of
    the first window, the portrait's pose or the pose model's training mean (see the module docstring);
    ``overlap``: frames each later window shares with its predecessor, cross-faded from the predecessor's to its
    own (0 = the paper's plain recursion; see :mod:`.seams`); ``first_lips``: the lip channels of the first
    window's ``x^1``, the rest mouth (zeros, the default) or the portrait's own (see the module docstring)."""

    steps: int = 10
    sampler: Literal["ddim", "ddpm"] = "ddim"
    eta: float = 0.0
    window_frames: int = 0
    guidance: float = 1.0
    first_pose: Literal["portrait", "mean"] = "portrait"
    overlap: int = 8
    first_lips: Literal["rest", "portrait"] = "rest"
    speech_guidance: float = 1.0

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {"steps": 4, "overlap": 4},
        "cpu": {},
        "paper": {"sampler": "ddpm", "steps": 1000},
    }

    def __post_init__(self) -> None:
        if not 1 <= self.steps <= 1000:
            raise TalkingHeadError(f"The number of sampling steps must be between 1 and 1000, got {self.steps}.")
        if self.sampler not in ("ddim", "ddpm") or self.first_pose not in ("portrait", "mean"):
            raise TalkingHeadError("Dimitra samples with ddim or ddpm and starts the pose from 'portrait' or 'mean'.")
        if not (0.0 <= self.eta <= 1.0 and 0.0 <= self.guidance <= 20.0 and 0.0 <= self.speech_guidance <= 20.0):
            raise TalkingHeadError(f"eta must be in [0, 1] and the guidance scales in [0, 20], got {self.eta}, "
                                   f"{self.guidance} and {self.speech_guidance}.")
        if self.first_lips not in ("rest", "portrait"):
            raise TalkingHeadError("Dimitra starts the lips from the 'rest' mouth or the 'portrait''s own.")
        if self.overlap < 0:
            raise TalkingHeadError(f"The window overlap must be 0 or more frames, got {self.overlap}.")
        if self.window_frames < 0:
            raise TalkingHeadError(f"window_frames must be 0 (the trained length) or positive, got "
                                   f"{self.window_frames}.")


@dataclass(frozen=True)
class DimitraPart:
    """One of the three cMDTs (III-B.4) with what its checkpoint's ``extra`` records: its ``channels`` within the
    dataset's ``layout``, the trained window length ``window_frames`` and the conditions it was trained with
    (``phonemes`` / ``transcript`` False for the ``--no-phonemes`` / ``--no-transcript`` ablations)."""

    part: str
    net: CMDT
    channels: tuple[str, ...]
    layout: ChannelLayout
    window_frames: int
    phonemes: bool
    transcript: bool
    schedule: ScheduleConfig

    @classmethod
    def load(cls, folder: Path, part: str) -> DimitraPart:
        """The ``part`` model in ``folder`` (one sentence when it holds another part or lacks its record)."""
        net = CMDT.from_pretrained(folder)
        record, conditions = read_part_record(
            folder, CMDT.component, part, net.config.motion_dim, lambda layout, p: part_layout(layout, p).channels,
            "Dimitra's", "model", f"talkinghead train dimitra.{part}",
            lambda extra: dict(extra.get("conditions") or {}))
        channels, layout, window, schedule = record.channels, record.layout, record.window, record.schedule
        return cls(part, net, channels, layout, window, bool(conditions.get("phonemes", True)),
                   bool(conditions.get("transcript", True)), schedule)


@dataclass(frozen=True)
class PartInputs:
    """One part's conditions over the whole sequence of ``T`` frames: ``audio [T, A]`` raw features,
    ``phonemes [T]`` int64, ``first_frame [C]`` (``x^1`` of the first window, raw units), and the transcript as
    ``text_tokens [1, L]`` long with ``text_mask [1, L]`` bool (both None: the null token only)."""

    audio: np.ndarray
    phonemes: np.ndarray
    first_frame: np.ndarray
    text_tokens: torch.Tensor | None = None
    text_mask: torch.Tensor | None = None


@dataclass(frozen=True)
class DimitraInputs:
    """Everything the three parts read for one request: ``parts`` (:class:`PartInputs` per part), the frame
    count ``frames``, where the phonemes came from (``given``, ``aligned``, ``recognised`` or ``unused``) and the
    request's ``transcript`` ("" without one)."""

    parts: dict[str, PartInputs]
    frames: int
    phonemes_source: str
    transcript: str


def window_seed(seed: int, part: str, index: int) -> int:
    """The noise seed of window ``index`` of ``part`` for a request's ``seed`` (see the module docstring)."""
    return int(np.random.SeedSequence([seed % 2**32, PARTS.index(part), index]).generate_state(1)[0])


@torch.no_grad()
def sample_window(part: DimitraPart, inputs: PartInputs, start: int, first_frame: np.ndarray,
                  settings: DimitraSampling, seed: int) -> np.ndarray:
    """The window of ``N`` frames from ``start`` (frames past the end take the last frame's conditions),
    conditioned on ``first_frame [C]`` (raw units) -> its motion ``[N, C]`` in raw units.

    The conditions are encoded once; :func:`talkinghead.diffusion.sample` runs the reverse process on the
    normalised motion ``[1, N, C]`` with noise from ``seed``. With guidance, the conditional and unconditional
    branches are one batch ``[k, N, C]`` per step (one network call instead of ``k``; the same prediction to
    float rounding, 1.4e-6 on a real voice)."""
    net, n = part.net, settings.window_frames or part.window_frames
    device = net.head.weight.device
    index = np.clip(np.arange(start, start + n), 0, len(inputs.audio) - 1)              # [N], edge padded
    tokens, mask = inputs.text_tokens, inputs.text_mask
    # classifier-free guidance's branches, run as one batch at every step: the conditional prediction, then the
    # one without the transcript and the one without the speech where the settings guide on them
    on_text = tokens is not None and settings.guidance != 1.0
    on_speech = settings.speech_guidance != 1.0 and net.config.speech_drop_prob > 0.0
    drop_text = [False] + [True] * on_text + [False] * on_speech
    drop_speech = [False] + [False] * on_text + [True] * on_speech
    k = len(drop_text)
    audio = torch.from_numpy(np.ascontiguousarray(inputs.audio[index], np.float32))
    phonemes = torch.from_numpy(np.ascontiguousarray(inputs.phonemes[index], np.int64))
    conditions = CMDTConditions(
        audio=audio[None].expand(k, -1, -1).to(device), phonemes=phonemes[None].expand(k, -1).to(device),
        first_frame=torch.from_numpy(np.asarray(first_frame, np.float32).reshape(1, -1)).expand(k, -1).to(device),
        text_tokens=None if tokens is None else tokens.expand(k, -1).to(device),
        text_mask=None if mask is None else mask.expand(k, -1).to(device),
        drop_text=torch.tensor(drop_text, device=device) if on_text else None,
        drop_speech=torch.tensor(drop_speech, device=device) if on_speech else None)
    encoded = net.project_memory(net.encode_conditions(conditions))

    def denoise(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        out = net(x.expand(k, -1, -1), t.expand(k), encoded)                              # [k, N, C]
        pred = out[:1]
        if on_text:        # Eq. 8 on the transcript, then on the speech from the transcript-guided prediction
            pred = classifier_free_guidance(pred, out[1:2], settings.guidance)
        if on_speech:
            pred = classifier_free_guidance(pred, out[k - 1:k], settings.speech_guidance)
        return pred

    scheduler = make_scheduler(part.schedule, settings.sampler)
    x0 = sample(denoise, (1, n, net.config.motion_dim), scheduler, settings.steps,
                generator=torch.Generator().manual_seed(seed), eta=settings.eta, device=device)   # [1, N, C]
    return net.motion_norm.inverse(x0)[0].float().cpu().numpy()


def sample_part(part: DimitraPart, inputs: PartInputs, settings: DimitraSampling, seed: int) -> np.ndarray:
    """III-B.4, recursive generation of one part over the whole sequence -> ``[T, C]`` raw units: the windows of
    :func:`recursive_windows`, the first conditioned on ``inputs.first_frame``, each later one on the generated
    frame just before its start. With ``settings.overlap > 0`` the frames a later window shares with its
    predecessor are cross-faded from the predecessor's to its own (:func:`.seams.crossfade_weights`); without, it
    replaces them (the paper's recursion)."""
    total, n = len(inputs.audio), settings.window_frames or part.window_frames
    overlap = min(settings.overlap, n - 1)
    out = np.empty((total, part.net.config.motion_dim), np.float32)
    made = 0                                                      # frames [0, made) are generated
    previous, previous_start = out[:0], 0                         # the last window [N, C] and its start
    for index, start in enumerate(progress(recursive_windows(total, n, overlap), f"Dimitra {part.part} windows")):
        first = inputs.first_frame if start == 0 else out[start - 1].copy()
        window = sample_window(part, inputs, start, first, settings, window_seed(seed, part.part, index))
        stop = min(start + n, total)
        out[start:stop] = window[: stop - start]
        if overlap and start < made:                             # cross-fade the shared frames [start, made)
            weight = crossfade_weights(made - start)[:, None]
            out[start:made] = (1 - weight) * previous[start - previous_start:made - previous_start] \
                + weight * window[:made - start]
        previous, previous_start, made = window, start, stop
    return out


def _component(folder: Path) -> str | None:
    from talkinghead.checkpoint import read_checkpoint_info

    try:
        return read_checkpoint_info(folder).component
    except TalkingHeadError:
        return None


class DimitraGenerator:
    """Audio (+ transcript) + portrait -> lips, face expression and head pose (Dimitra, three cMDTs)."""

    kind: ClassVar[str] = "motion"
    name: ClassVar[str] = "dimitra"
    title: ClassVar[str] = "Dimitra"
    capabilities: ClassVar[tuple[str, ...]] = ("transcript", "phonemes", "guidance", "head-pose")
    #: how ``evaluate`` asks for a style: Dimitra takes none
    evaluation_style: ClassVar[str] = "none"
    evaluation_styles: ClassVar[tuple[str, ...]] = ("none",)
    #: ``evaluate`` gives the clip's first frame as the portrait's expression and pose (Dimitra's x^1, Sec. IV)
    evaluation_first_frame: ClassVar[bool] = True

    def __init__(self, lips: DimitraPart, face: DimitraPart, pose: DimitraPart,
                 recogniser: PhonemeRecognizer | None = None, directory: Path | None = None,
                 sampling: DimitraSampling | None = None) -> None:
        self.parts = {"lips": lips, "face": face, "pose": pose}
        wrong = [name for name, p in self.parts.items() if p.part != name]
        if wrong:
            raise TalkingHeadError(f"Dimitra's {', '.join(wrong)} slot holds another part's model.")
        if lips.layout != face.layout:
            raise TalkingHeadError("The lips and face models were trained on different channel layouts, so their "
                                   "channels cannot be put back together.")
        if pose.channels != POSE_NAMES:
            raise TalkingHeadError(f"The pose model generates {', '.join(pose.channels)}, not the 6 pose channels.")
        self.recogniser = recogniser
        self.directory = directory
        self.sampling = sampling or DimitraSampling()

    # ------------------------------------------------------------------------------------ loading
    @classmethod
    def recognises(cls, path: Path) -> bool:
        """A folder without a manifest: ``lips/``, ``face/`` and ``pose/`` cMDT checkpoints inside."""
        return all(_component(path / part) == CMDT.component for part in PARTS)

    @classmethod
    def from_pretrained(cls, directory: str | Path | None = None,
                        sampling: DimitraSampling | None = None) -> DimitraGenerator:
        """From a checkpoint folder (default: the shipped ``weights/dimitra``); the sampling settings given, else
        those of the manifest's ``sampling`` entry (any of :class:`DimitraSampling`'s fields), else the defaults."""
        path = Path(directory) if directory is not None else weights_root() / "dimitra"
        if not path.is_dir():
            if directory is None:
                raise TalkingHeadError(f"Dimitra's weights are not shipped yet ({path} is missing); train them with "
                                       "talkinghead train dimitra.lips, dimitra.face and dimitra.pose and pass "
                                       "--checkpoint DIR.")
            raise TalkingHeadError(f"The Dimitra checkpoint folder {path} does not exist.")
        manifest = read_manifest(path) or {}
        folders = cls._folders(path, manifest)
        missing = [part for part in PARTS if not folders[part].is_dir()]
        if missing:
            names = ", ".join(f"{folders[p].name}/" for p in missing)
            raise TalkingHeadError(f"{path} lacks Dimitra's {' and '.join(missing)} model ({names}); a Dimitra folder "
                                   "holds lips/, face/ and pose/ checkpoints.")
        lips, face, pose = (DimitraPart.load(folders[part], part) for part in PARTS)
        if sampling is None and manifest.get("sampling"):
            sampling = DimitraSampling.from_dict(dict(manifest["sampling"]), partial=True)
        recogniser_dir = folders[PHONEMES_DIR]
        recogniser = PhonemeRecognizer.from_pretrained(recogniser_dir) if recogniser_dir.is_dir() else None
        return cls(lips, face, pose, recogniser, path, sampling)

    @staticmethod
    def _folders(path: Path, manifest: dict[str, Any]) -> dict[str, Path]:
        """The component folders: as the folder's ``manifest`` names them, else named after the parts."""
        if manifest.get("generator", "dimitra") != "dimitra":
            raise TalkingHeadError(f"{path} holds a '{manifest['generator']}' checkpoint, not Dimitra's.")
        return component_folders(path, manifest.get("components"), (*PARTS, PHONEMES_DIR))

    # ------------------------------------------------------------------------------------ properties
    @property
    def layout(self) -> ChannelLayout:
        """The expression layout of the output: the dataset's the lips and face models were trained on."""
        return self.parts["lips"].layout

    @property
    def window_frames(self) -> dict[str, int]:
        """Each part's recursion window ``N`` under the current settings."""
        return {name: self.sampling.window_frames or p.window_frames for name, p in self.parts.items()}

    @property
    def needs_phonemes(self) -> bool:
        """Whether any part was trained with the phoneme condition."""
        return any(p.phonemes for p in self.parts.values())

    def settings(self, conditions: Conditions) -> DimitraSampling:
        """This generator's sampling settings with the request's steps and guidance where given."""
        changes: dict[str, Any] = {}
        if conditions.steps is not None:
            changes["steps"] = conditions.steps
        if conditions.guidance is not None:
            changes["guidance"] = conditions.guidance
        return self.sampling.replace(**changes) if changes else self.sampling

    # ------------------------------------------------------------------------------------ conditions
    def portrait_expression(self, portrait: Portrait) -> np.ndarray:
        """The portrait's own expression ``[E]`` in :attr:`layout` (a face fit's ARKit channels by name)."""
        from talkinghead.face.model import ARKIT_LAYOUT

        expression = np.asarray(portrait.expression, np.float32).reshape(-1)
        if expression.size == self.layout.size:
            return expression
        if expression.size == ARKIT_LAYOUT.size:
            fitted = MotionSequence(expression[None], np.zeros((1, 6), np.float32), ARKIT_LAYOUT)
            return expression_for_layout(fitted, self.layout)[0]
        raise TalkingHeadError(f"The portrait's expression has {expression.size} channels; the Dimitra models use "
                               f"the {self.layout.size} of layout '{self.layout.name}'.")

    def portrait_offsets(self, portrait: Portrait) -> np.ndarray:
        """``[E]``: the portrait's values of the channels that composition keeps as offsets (smile, brows, eyes:
        :func:`talkinghead.face.model.compose_expression`), 0 elsewhere. The face model continues from the
        portrait's own expression, so its output already holds them; they are taken off the returned motion so
        that composition, which adds them, does not count them twice."""
        from talkinghead.face.model import replaced_channels

        expression = self.portrait_expression(portrait)
        return np.where(replaced_channels(self.layout), 0.0, expression).astype(np.float32)

    def first_frames(self, conditions: Conditions, settings: DimitraSampling | None = None) -> dict[str, np.ndarray]:
        """``x^1`` of the first window per part (raw units): the portrait's expression split into its lip
        ``[13]`` and face ``[E - 13]`` channels (ARKit), and its pose ``[6]`` (or the pose model's training mean
        with ``first_pose = "mean"``); the lip channels are the rest mouth (zeros) unless ``first_lips =
        "portrait"``."""
        settings = settings or self.settings(conditions)
        expression = self.portrait_expression(conditions.portrait)
        pose = np.asarray(conditions.portrait.pose, np.float32).reshape(-1)
        if pose.shape != (len(POSE_NAMES),):
            raise TalkingHeadError(f"The portrait's pose has {pose.size} values; a head pose has 6.")
        if settings.first_pose == "mean":
            pose = self.parts["pose"].net.motion_norm.mean.float().cpu().numpy()
        lips = expression[list(part_columns(self.layout, "lips"))]
        if settings.first_lips == "rest":
            lips = np.zeros_like(lips)
        return {"lips": lips,
                "face": expression[list(part_columns(self.layout, "face"))], "pose": pose.copy()}

    def audio_features(self, conditions: Conditions) -> dict[str, np.ndarray]:
        """Each part's speech features ``[T_p, A_p]`` as its checkpoint specifies them."""
        out = {}
        for name, part in self.parts.items():
            features = conditions.features(part.net.audio_features, f"Dimitra {name} model")
            if features.shape[1] != part.net.config.audio_dim:
                raise TalkingHeadError(f"The Dimitra {name} model's audio feature widths do not match its spec.")
            out[name] = features
        return out

    def phoneme_ids(self, conditions: Conditions, frames: int) -> tuple[np.ndarray, str]:
        """A phoneme id per frame ``[frames]`` and its source (III-B.2; see the module docstring for the order)."""
        if not self.needs_phonemes:
            return np.full(frames, PAD_ID, np.int64), "unused"
        if conditions.phonemes:
            return frame_tokens(conditions.phonemes, frames, conditions.fps), "given"
        transcript = _transcript(conditions)
        if transcript:
            from talkinghead.audio.align import align

            try:
                return align(conditions.audio, transcript).tokens(conditions.fps, frames), "aligned"
            except TalkingHeadError as err:
                if self.recogniser is None:
                    raise
                log_event("forced alignment failed; phonemes from the recogniser", reason=str(err))
        if self.recogniser is not None:
            ids = self.recogniser.recognise(conditions.features(self.recogniser.audio_features, "phoneme recogniser"))
            return ids[np.clip(np.arange(frames), 0, len(ids) - 1)], "recognised"
        raise TalkingHeadError("These Dimitra models read a phoneme per frame: give the transcript so that it can be "
                               "aligned, or use a checkpoint folder with a phonemes/ recogniser.")

    def inputs(self, conditions: Conditions, settings: DimitraSampling | None = None) -> DimitraInputs:
        """Stages 1-3 of the module docstring: every part's conditions over the whole sequence."""
        settings = settings or self.settings(conditions)
        audio = self.audio_features(conditions)
        frames = min(len(a) for a in audio.values())
        if frames < 1:
            raise TalkingHeadError("The audio is too short for a single video frame.")
        phonemes, source = self.phoneme_ids(conditions, frames)
        transcript = _transcript(conditions)
        first = self.first_frames(conditions, settings)
        parts = {}
        for name, part in self.parts.items():
            tokens = mask = None
            if part.transcript and transcript:
                if part.net.config.external_text_dim is not None:
                    raise TalkingHeadError(f"The Dimitra {name} model reads CLIP text features, which this talkinghead "
                                           "cannot compute; generate without a transcript.")
                tokens, mask = transcript_tokens([transcript], part.net.config.max_text_length)
            ids = phonemes if part.phonemes else np.full(frames, PAD_ID, np.int64)
            parts[name] = PartInputs(audio[name][:frames], ids, first[name], tokens, mask)
        return DimitraInputs(parts, frames, source, transcript)

    # ------------------------------------------------------------------------------------ motion
    def generate(self, conditions: Conditions) -> MotionOutput:
        """Conditions, then the three parts' recursive sampling, then the expression and pose put together."""
        if conditions.style.given or conditions.style.mix is not None:
            raise TalkingHeadError("Dimitra takes no speaking style (style video, emotion or style code); its "
                                   "expression follows the audio and the transcript.")
        lap = Laps()
        settings = self.settings(conditions)
        inputs = self.inputs(conditions, settings)
        lap("conditions")
        motion = {name: sample_part(part, inputs.parts[name], settings, conditions.seed)
                  for name, part in self.parts.items()}
        lap("motion")
        layout = self.layout
        expression = np.zeros((inputs.frames, layout.size), np.float32)                   # [T, E]
        expression[:, list(part_columns(layout, "lips"))] = motion["lips"]
        expression[:, list(part_columns(layout, "face"))] = motion["face"]
        expression -= self.portrait_offsets(conditions.portrait)
        used_text = any(p.text_tokens is not None for p in inputs.parts.values())
        source = f"dimitra:phonemes={inputs.phonemes_source},transcript={'given' if used_text else 'none'}"
        sequence = MotionSequence(expression, motion["pose"], layout, conditions.fps, conditions.portrait.identity,
                                  f"generate:{source}")
        joins = sorted({j for name, n in self.window_frames.items()
                        for j in window_joins(inputs.frames, n, min(settings.overlap, n - 1))})
        return MotionOutput(sequence, True, None, source, lap.timings, tuple(joins))


def _transcript(conditions: Conditions) -> str:
    """The request's transcript with its white space made single spaces ("" when there is none)."""
    return " ".join((conditions.transcript or "").split())


def write_dimitra_manifest(directory: str | Path, **extra: Any) -> Path:
    """Write the ``talkinghead.json`` of a Dimitra folder (``lips/``, ``face/``, ``pose/``, optionally
    ``phonemes/``) after checking that it loads; ``extra`` (e.g. the commands and seed) is stored with it."""
    path = Path(directory)
    DimitraGenerator.from_pretrained(path)
    components = {key: key for key in (*PARTS, PHONEMES_DIR) if (path / key).is_dir()}
    return write_manifest(path, DimitraGenerator.name, components, **extra)

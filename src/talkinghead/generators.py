"""One interface for every paper (issue 11): conditions, three kinds of generator, a registry, ``load(dir)``.

Data flow (docs/architecture.md)::

    Conditions (audio, features on demand, phonemes/transcript, portrait + fit, style request, seed)
        | MotionGenerator.generate   (DreamTalk, Dimitra, FD2Talk's DiTs)        -> MotionOutput
        |     Renderer.render         (warp; FD2Talk's latent-diffusion UNet next) -> frames
        | VideoGenerator.generate    (EMO, DICE-Talk: frames straight from the conditions) -> VideoOutput

- :class:`Conditions` carries everything any generator may read; features are computed on demand per
  :class:`~talkinghead.audio.spec.AudioFeatureSpec` and cached, so two networks trained on the same spec
  share one extraction. Dataset clips bring their stored features (:meth:`Conditions.from_clip`).
- Each generator owns its sampling settings (its steps and guidance defaults; ``Conditions.steps`` and
  ``Conditions.guidance`` override them when given); the pipeline owns seed, size, threads, paste-back
  and encoding.
- A checkpoint folder says what it is: ``talkinghead.json`` (like diffusers' ``model_index.json``) names
  the generator and its components, so :func:`load` needs no flag. :data:`REGISTRY` maps names to
  classes (``"module:Class"``, imported only when used); :func:`register` adds one (tests, plug-ins).
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

import numpy as np

from talkinghead.errors import TalkingHeadError
from talkinghead.io.audio import Audio
from talkinghead.sequence import MotionSequence

FPS = 25.0
MANIFEST = "talkinghead.json"
MANIFEST_VERSION = 1
Kind = Literal["motion", "renderer", "video"]
KINDS: tuple[str, ...] = ("motion", "renderer", "video")

# ------------------------------------------------------------------------------------------ conditions


@dataclass
class Portrait:
    """The face to animate: the photo (RGB uint8 ``[H, W, 3]``; None for a dataset clip, whose face is
    only its identity) and its fit: ``identity`` (named arrays, ``descriptor [K]`` among them), the
    photo's own ``expression [E]`` and head ``pose [6]``."""

    image: np.ndarray | None
    identity: dict[str, np.ndarray]
    expression: np.ndarray
    pose: np.ndarray

    @classmethod
    def fit(cls, image: np.ndarray, face_index: int | None = None) -> Portrait:
        """Detect, landmark and fit the face model to a photo (:func:`talkinghead.face.model.fit_image`)."""
        from talkinghead.face.model import fit_image

        f = fit_image(image, face_index)
        return cls(image, f.identity, f.expression, f.pose)


@dataclass
class StyleRequest:
    """How the motion should look: at most one of ``video`` (a clip speaking in the wanted style),
    ``reference`` (a ready reference motion, e.g. a dataset clip's own), ``emotion`` (+ ``intensity``
    1-3) or ``code`` (a ready style code); none = the generator chooses (e.g. predicts it from the audio
    and the portrait). ``mix``/``mix_alpha``: a second style mixed in, where the generator can."""

    video: Path | None = None
    reference: MotionSequence | None = None
    emotion: str | None = None
    intensity: int | None = None
    code: np.ndarray | None = None
    mix: str | None = None
    mix_alpha: float = 0.5

    @property
    def given(self) -> bool:
        return any(x is not None for x in (self.video, self.reference, self.emotion, self.code))


@dataclass
class Conditions:
    """What a generator may read. ``audio`` at 16 kHz; ``num_frames`` video frames at ``fps``.

    ``precomputed``: named frame features ``{kind: [T, d]}`` (a dataset clip's stored features); when
    set, :meth:`features` cuts from them instead of extracting. ``frames``: a fixed frame count (a
    dataset clip's motion length), else it follows from the audio's length. ``speed`` (head rotation, degrees
    per frame) and ``face_region`` (``x0, y0, x1, y1`` photo pixels): EMO's controls.
    """

    audio: Audio
    portrait: Portrait
    style: StyleRequest = field(default_factory=StyleRequest)
    transcript: str | None = None
    phonemes: list[Any] | None = None
    seed: int = 0
    steps: int | None = None
    guidance: float | None = None
    fps: float = FPS
    precomputed: dict[str, np.ndarray] = field(default_factory=dict)
    frames: int | None = None
    speed: float | None = None
    face_region: tuple[float, float, float, float] | None = None
    _stacked: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    _style_motion: MotionSequence | None = field(default=None, repr=False)

    @classmethod
    def from_clip(cls, clip: Any, style: StyleRequest | None = None, portrait: Portrait | None = None,
                  seed: int = 0, steps: int | None = None) -> Conditions:
        """A dataset clip's audio, stored features, phonemes and transcript; its portrait is the clip's
        identity with its first frame's pose (or ``portrait``)."""
        m = clip.motion
        face = portrait or Portrait(None, m.identity, np.zeros(m.layout.size, np.float32), m.pose[0])
        return cls(Audio(np.asarray(clip.audio, np.float32)), face, style or StyleRequest(),
                   clip.transcript or None, list(clip.phones) or None, seed, steps, None, m.fps,
                   dict(clip.features), len(m))

    @property
    def num_frames(self) -> int:
        from talkinghead.audio.frames import frame_count

        return self.frames if self.frames is not None else frame_count(len(self.audio.samples), self.fps)

    def stacked_features(self, spec: Any) -> np.ndarray:
        """``[T, spec.dims]`` features of the audio for ``spec``, computed once per distinct spec."""
        from talkinghead.audio.features import extract_features

        key = json.dumps(spec.to_dict(), sort_keys=True)
        if key not in self._stacked:
            self._stacked[key] = extract_features(self.audio, spec)
        return self._stacked[key]

    def features(self, audio_features: dict[str, Any] | None, what: str) -> np.ndarray:
        """The features a checkpoint reads ``[T, D]``: its stored ``audio_features`` name the kinds (in
        order), their widths and the dataset's spec. From :attr:`precomputed` when given (cut to the
        shortest kind and to :attr:`frames`), else extracted with the checkpoint's spec."""
        from talkinghead.audio.spec import checkpoint_spec, select_kinds

        names = list((audio_features or {}).get("names", []))
        dims = list((audio_features or {}).get("dims", []))
        if self.precomputed:
            missing = [n for n in names if n not in self.precomputed]
            if not names or missing:
                raise TalkingHeadError(f"The clip lacks the audio feature(s) {', '.join(missing or ['(none named)'])} "
                                       f"that the {what} reads.")
            parts = [np.asarray(self.precomputed[n], np.float32).reshape(len(self.precomputed[n]), -1) for n in names]
            length = min(len(p) for p in parts) if self.frames is None else min(self.frames, *(len(p) for p in parts))
            return np.concatenate([p[:length] for p in parts], axis=1)
        spec = checkpoint_spec(audio_features, what, self.fps)
        return select_kinds(self.stacked_features(spec), spec, names, dims, what)

    def style_motion(self) -> MotionSequence | None:
        """The style reference as motion: the given reference, or the style video tracked (once)."""
        if self.style.reference is not None:
            return self.style.reference
        if self.style.video is None:
            return None
        if self._style_motion is None:
            from talkinghead.face.track import track_path

            self._style_motion = track_path(self.style.video, fps=self.fps)
        return self._style_motion


# --------------------------------------------------------------------------------------------- outputs

@dataclass
class MotionOutput:
    """What a motion generator made. ``motion``: ``[T]`` frames in the generator's channel layout, with
    the portrait's identity; its pose is the generated head pose when ``pose_generated`` (in the
    training data's pose frame, not yet placed on the portrait), else the portrait's pose held.
    ``style``: the style code used (None where the generator has none); ``source``: where it came from;
    ``joins``: the frames where a generator that works window by window started a new window (its first new
    frame; empty for one pass), which ``evaluate`` checks for seams."""

    motion: MotionSequence
    pose_generated: bool
    style: np.ndarray | None = None
    source: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    joins: tuple[int, ...] = ()


@dataclass
class VideoOutput:
    """What a video generator made: ``frames`` (an iterable of RGB uint8 ``[H, W, 3]``, the whole photo),
    ``num_frames`` of them at ``fps``; ``motion`` is None (no coefficients) unless it also tracks some."""

    frames: Iterable[np.ndarray]
    num_frames: int
    fps: float = FPS
    source: str = ""
    motion: MotionSequence | None = None
    timings: dict[str, float] = field(default_factory=dict)


# ------------------------------------------------------------------------------------------- protocols

@runtime_checkable
class MotionGenerator(Protocol):
    """Conditions -> face motion (DreamTalk, Dimitra, FD2Talk's DiTs)."""

    kind: ClassVar[str]                 # "motion"
    name: ClassVar[str]                 # registry name
    capabilities: ClassVar[tuple[str, ...]]

    @classmethod
    def from_pretrained(cls, directory: str | Path | None = None) -> MotionGenerator: ...

    def generate(self, conditions: Conditions) -> MotionOutput: ...


@runtime_checkable
class Renderer(Protocol):
    """Portrait + its fit + motion -> frames (warp; FD2Talk's latent-diffusion UNet next)."""

    kind: ClassVar[str]                 # "renderer"
    name: ClassVar[str]
    capabilities: ClassVar[tuple[str, ...]]

    @classmethod
    def from_pretrained(cls, directory: str | Path | None = None) -> Renderer: ...

    def render(self, portrait: Portrait, motion: MotionSequence, size: int) -> Iterator[np.ndarray]: ...


@runtime_checkable
class VideoGenerator(Protocol):
    """Conditions -> frames directly (EMO, DICE-Talk)."""

    kind: ClassVar[str]                 # "video"
    name: ClassVar[str]
    capabilities: ClassVar[tuple[str, ...]]

    @classmethod
    def from_pretrained(cls, directory: str | Path | None = None) -> VideoGenerator: ...

    def generate(self, conditions: Conditions, size: int) -> VideoOutput: ...


AnyGenerator = MotionGenerator | VideoGenerator

# -------------------------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class Entry:
    """A registered generator: its ``kind``, where its class is (``"module:Class"`` or the class) and a
    line for ``talkinghead models``."""

    name: str
    kind: str
    target: Any
    summary: str

    def load_class(self) -> Any:
        if not isinstance(self.target, str):
            return self.target
        module, _, attr = self.target.partition(":")
        return getattr(importlib.import_module(module), attr)


#: the shipped generators, one line per paper component; the defaults of ``generate``
REGISTRY: dict[str, Entry] = {e.name: e for e in (
    Entry("dreamtalk", "motion", "talkinghead.motion.dreamtalk.generator:DreamTalkGenerator",
          "DreamTalk: motion diffusion with a style reference, style predictor and emotion bank"),
    Entry("dimitra", "motion", "talkinghead.motion.dimitra.generator:DimitraGenerator",
          "Dimitra: motion diffusion transformers for lips, face and head pose from phonemes and transcript"),
    Entry("fd2talk", "motion", "talkinghead.motion.fd2talk.generator:FD2TalkGenerator",
          "FD2Talk: expression and head-pose diffusion transformers with an audio alignment mask"),
    Entry("emo", "video", "talkinghead.video.emo.pipeline:EMOGenerator",
          "EMO: audio-to-video latent diffusion with ReferenceNet, audio layers, temporal modules, face locator "
          "and speed layers"),
    Entry("dice", "video", "talkinghead.video.dice.pipeline:DICEGenerator",
          "DICE-Talk: video diffusion with a disentangled emotion embedder, emotion bank and emotion discrimination "
          "(emotion from a reference video, a prompt or the speech)"),
)}
#: the shipped renderers (a name may be both a generator and a renderer: ``fd2talk``'s DiTs and its frame UNet)
RENDERERS: dict[str, Entry] = {e.name: e for e in (
    Entry("warp", "renderer", "talkinghead.render.warp_renderer:WarpFrameRenderer",
          "geometric mesh warp of the portrait (no training)"),
    Entry("fd2talk", "renderer", "talkinghead.render.fd2talk.renderer:FD2TalkFrameRenderer",
          "FD2Talk's latent-diffusion UNet: each frame from noise, given its motion and the portrait's latent"),
)}
DEFAULT_GENERATOR = "dreamtalk"
DEFAULT_RENDERER = "warp"


def register(name: str, kind: str, target: Any, summary: str = "") -> Entry:
    """Add (or replace) a registry entry; ``target`` is a class or ``"module:Class"``."""
    if kind not in KINDS:
        raise TalkingHeadError(f"A generator's kind is one of {', '.join(KINDS)}, not '{kind}'.")
    entry = Entry(name, kind, target, summary)
    (RENDERERS if kind == "renderer" else REGISTRY)[name] = entry
    return entry


def entry(name: str, kinds: tuple[str, ...] = KINDS) -> Entry:
    """The registry entry ``name`` of one of ``kinds`` (one sentence when there is none)."""
    tables = [t for t, holds in ((REGISTRY, ("motion", "video")), (RENDERERS, ("renderer",)))
              if set(holds) & set(kinds)]
    found = next((t[name] for t in tables if name in t and t[name].kind in kinds), None)
    if found is None:
        choices = ", ".join(sorted({n for t in tables for n, e in t.items() if e.kind in kinds}))
        what = " or ".join("renderer" if k == "renderer" else f"{k} generator" for k in kinds)
        raise TalkingHeadError(f"There is no {what} called '{name}'; choose one of: {choices}.")
    return found


def weights_root() -> Path:
    """``weights/`` of the repository this package sits in (src layout): one folder per shipped model."""
    return Path(__file__).resolve().parents[2] / "weights"


def read_manifest(directory: str | Path) -> dict[str, Any] | None:
    """A checkpoint folder's ``talkinghead.json`` (None when it has none)."""
    path = Path(directory) / MANIFEST
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise TalkingHeadError(f"{path} is not readable JSON ({type(err).__name__}).") from err
    if not isinstance(data, dict) or not isinstance(data.get("generator"), str):
        raise TalkingHeadError(f"{path} does not name its generator.")
    if data.get("version", MANIFEST_VERSION) != MANIFEST_VERSION:
        raise TalkingHeadError(f"{path} is manifest version {data.get('version')}; this talkinghead reads "
                               f"version {MANIFEST_VERSION}.")
    return data


def component_folders(folder: Path, names: Mapping[str, Any] | None, components: Sequence[str]) -> dict[str, Path]:
    """Each component's folder in a checkpoint ``folder``: as ``names`` (a manifest's entry) calls it, else named after
    the component."""
    given = dict(names or {})
    return {c: folder / str(given.get(c, c)) for c in components}


def model_folders(directory: str | Path | None, name: str, components: Sequence[str], what: str, remedy: str,
                  entry: str = "components") -> tuple[Path, dict[str, Any], dict[str, Path]]:
    """A model's folder (``directory``, default the shipped ``weights/NAME``), its manifest (``{}`` without one) and
    its components' folders (named by the manifest's ``entry``, :func:`component_folders`); one sentence, "FOLDER
    holds no WHAT (... missing); REMEDY.", when a component has no ``config.json``."""
    folder = Path(directory) if directory is not None else weights_root() / name
    manifest = read_manifest(folder) or {}
    paths = component_folders(folder, manifest.get(entry), components)
    missing = [c for c, p in paths.items() if not (p / "config.json").is_file()]
    if missing:
        raise TalkingHeadError(f"{folder} holds no {what} ({' and '.join(missing)} missing); {remedy}.")
    return folder, manifest, paths


def write_manifest(directory: str | Path, generator: str, components: dict[str, str] | None = None,
                   **extra: Any) -> Path:
    """Write ``talkinghead.json`` naming ``generator`` (a registry name) and its component folders."""
    from talkinghead.io.files import atomic_path

    e = entry(generator)
    data = {"version": MANIFEST_VERSION, "generator": generator, "kind": e.kind,
            "components": dict(components or {}), **extra}
    path = Path(directory) / MANIFEST
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2) + "\n")
    return path


def generator_name(directory: str | Path) -> str:
    """Which generator a checkpoint folder holds: its manifest's name, or (folders made before manifests)
    the registered class whose ``recognises(directory)`` says so."""
    path = Path(directory)
    if not path.is_dir():
        raise TalkingHeadError(f"The checkpoint folder {path} does not exist.")
    manifest = read_manifest(path)
    if manifest is not None:
        return str(manifest["generator"])
    for name, e in REGISTRY.items():
        recognises = getattr(e.load_class(), "recognises", None) if e.kind != "renderer" else None
        if recognises is not None and recognises(path):
            return name
    raise TalkingHeadError(f"{path} has no {MANIFEST} and holds no checkpoint this talkinghead recognises.")


def load(directory: str | Path, kinds: tuple[str, ...] = ("motion", "video")) -> Any:
    """The generator a checkpoint folder holds, built by its class's ``from_pretrained``."""
    return entry(generator_name(directory), kinds).load_class().from_pretrained(directory)


def shipped_weights(name: str) -> Path | None:
    """``weights/NAME`` when that folder exists (the shipped weights of a registered name), else None."""
    folder = weights_root() / name
    return folder if folder.is_dir() else None


def load_named(name: str, kinds: tuple[str, ...] = ("motion", "video")) -> Any:
    """A registered generator with its shipped weights (``weights/NAME``; none for weight-free ones)."""
    return entry(name, kinds).load_class().from_pretrained(shipped_weights(name))


def load_generator(checkpoint: str | Path | None = None, name: str | None = None) -> Any:
    """``checkpoint`` (a folder) if given, else the registered ``name`` (default :data:`DEFAULT_GENERATOR`)."""
    if checkpoint is None:
        return load_named(name or DEFAULT_GENERATOR)
    held = generator_name(checkpoint)
    if name is not None and held != name:
        raise TalkingHeadError(f"{checkpoint} holds a '{held}' checkpoint, not '{name}'.")
    return entry(held, ("motion", "video")).load_class().from_pretrained(checkpoint)


def load_renderer(name: str | None = None) -> Any:
    """A renderer by registry name (default :data:`DEFAULT_RENDERER`) with its shipped weights, if any."""
    return load_named(name or DEFAULT_RENDERER, ("renderer",))


def installed() -> list[dict[str, Any]]:
    """Every registered generator and renderer: name, kind, what it can do, whether it is ready to use
    (weights shipped in ``weights/NAME`` or none needed) and its summary (``talkinghead models``)."""
    rows = []
    entries = [*REGISTRY.items(), *RENDERERS.items()]
    for name, e in sorted(entries, key=lambda kv: (KINDS.index(kv[1].kind), kv[0])):
        cls = e.load_class()
        folder = shipped_weights(name)
        needs = bool(getattr(cls, "needs_weights", True))
        rows.append({"name": name, "kind": e.kind, "capabilities": list(getattr(cls, "capabilities", ())),
                     "ready": folder is not None or not needs, "weights": str(folder) if folder else None,
                     "default": name in (DEFAULT_GENERATOR, DEFAULT_RENDERER), "summary": e.summary})
    return rows

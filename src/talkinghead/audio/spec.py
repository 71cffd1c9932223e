"""The audio feature spec: what a model's audio input is, stored in every checkpoint that reads audio.

A model trained on 80-band log-mel at 25 fps must not silently be fed 13 MFCCs, 30 fps features or
another wav2vec 2.0 layer. :class:`AudioFeatureSpec` names the features (kinds, encoder and its
layers, dims, fps, window, normalisation); a model stores ``spec.to_dict()`` as its checkpoint's
``audio_features`` (``CheckpointInfo.audio_features``) and calls :func:`check_compatible` when loading
or before generating, which raises a one-sentence :class:`TalkingHeadError` naming what differs.

Presets follow the papers:

* ``dreamtalk``: wav2vec 2.0 (1024-d, large) with an 11-frame window (w = 5), DreamTalk App. C.2.2 / C.1;
* ``dreamtalk_style``: HuBERT + MFCC + FBANK + f0 + voice flag for the style predictor, DreamTalk App. C.2.2;
* ``dimitra``: wav2vec features (768-d base model), Dimitra III-B.2; phoneme tokens come separately
  (:mod:`talkinghead.audio.phonemes`);
* ``emo``: several wav2vec blocks concatenated, neighbours m = 2 on each side, EMO 3.2 "Audio Layers"
  (the paper gives neither the blocks nor m; all 12 blocks of the base model and m = 2 are our choice);
* ``dice``: Whisper-Tiny encoder (384-d), DICE-Talk 3.1;
* ``cpu`` / ``lowlevel``: the encoder-free features the shipped CPU models use; ``tiny`` for tests.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from talkinghead.config import Config
from talkinghead.errors import TalkingHeadError

LOWLEVEL_KINDS = ("logmel", "mfcc", "fbank", "f0", "voicing", "energy")
ENCODER_KIND = "encoder"
ENCODER_TYPES = ("wav2vec2", "hubert", "whisper")
FEATURE_VERSION = 1  # bump when the extraction algorithm changes what the numbers mean


@dataclass(frozen=True)
class AudioFeatureSpec(Config):
    """Frame-aligned audio features: ``[T, dims]`` at ``fps``; a model reads windows of ``2*window+1``.

    ``kinds`` are concatenated in order; ``"encoder"`` stands for the pretrained encoder's
    ``layers`` (hidden-state indices: 0 = input embeddings, i = block i, negative from the end)
    concatenated, each ``encoder_dim`` wide. ``dims`` is derived (0 = fill in) and checked.
    """

    name: str = "lowlevel"
    kinds: tuple[str, ...] = LOWLEVEL_KINDS
    encoder: str = ""
    encoder_id: str = ""
    layers: tuple[int, ...] = ()
    encoder_dim: int = 0
    n_mels: int = 80
    n_mfcc: int = 13
    n_fbank: int = 26
    fps: float = 25.0
    sample_rate: int = 16_000
    window: int = 0
    normalization: Literal["utterance", "none"] = "utterance"
    version: int = FEATURE_VERSION
    dims: int = 0

    presets: ClassVar[dict[str, dict[str, Any]]] = {
        "tiny": {"name": "tiny", "kinds": ("logmel", "f0", "voicing", "energy"), "n_mels": 16},
        "lowlevel": {},
        "cpu": {"name": "cpu", "window": 5},
        "dreamtalk": {"name": "dreamtalk", "kinds": (ENCODER_KIND,), "encoder": "wav2vec2",
                      "layers": (-1,), "encoder_dim": 1024, "window": 5},
        "dreamtalk_style": {"name": "dreamtalk_style", "kinds": (ENCODER_KIND, "mfcc", "fbank", "f0", "voicing"),
                            "encoder": "hubert", "layers": (-1,), "encoder_dim": 1024},
        "dimitra": {"name": "dimitra", "kinds": (ENCODER_KIND,), "encoder": "wav2vec2", "layers": (-1,),
                    "encoder_dim": 768},
        "emo": {"name": "emo", "kinds": (ENCODER_KIND,), "encoder": "wav2vec2",
                "layers": tuple(range(1, 13)), "encoder_dim": 768, "window": 2},
        "dice": {"name": "dice", "kinds": (ENCODER_KIND,), "encoder": "whisper", "layers": (-1,),
                 "encoder_dim": 384},
    }

    def __post_init__(self) -> None:
        unknown = [k for k in self.kinds if k not in (*LOWLEVEL_KINDS, ENCODER_KIND)]
        if unknown or not self.kinds:
            raise TalkingHeadError(
                f"Unknown audio feature kind(s) {', '.join(unknown) or '(none given)'}; "
                f"choose from {', '.join((*LOWLEVEL_KINDS, ENCODER_KIND))}."
            )
        if len(set(self.kinds)) != len(self.kinds):
            raise TalkingHeadError(f"Audio feature kinds repeat: {', '.join(self.kinds)}.")
        if ENCODER_KIND in self.kinds:
            if self.encoder not in ENCODER_TYPES:
                raise TalkingHeadError(
                    f"An encoder feature needs encoder set to one of {', '.join(ENCODER_TYPES)}, "
                    f"got '{self.encoder}'."
                )
            if not self.layers:
                raise TalkingHeadError("An encoder feature needs at least one layer index.")
        if self.fps <= 0 or self.window < 0 or self.sample_rate <= 0:
            raise TalkingHeadError("An audio feature spec needs fps > 0, window >= 0 and sample_rate > 0.")
        if min(self.n_mels, self.n_mfcc, self.n_fbank) < 1 or self.n_mfcc > self.n_mels:
            raise TalkingHeadError("Feature band counts must be positive and n_mfcc <= n_mels.")
        expected = self.expected_dims()
        if self.dims == 0:
            object.__setattr__(self, "dims", expected)
        elif expected and self.dims != expected:
            raise TalkingHeadError(
                f"Audio feature spec '{self.name}' says {self.dims} dims but its parts make {expected}."
            )

    def kind_dims(self, kind: str) -> int:
        """Width of one kind's block in the concatenated feature."""
        return {
            "logmel": self.n_mels, "mfcc": self.n_mfcc, "fbank": self.n_fbank, "f0": 1, "voicing": 1,
            "energy": 1, ENCODER_KIND: self.encoder_dim * len(self.layers),
        }[kind]

    def expected_dims(self) -> int:
        """Sum of the kinds' widths (0 while an encoder's width is still unknown)."""
        if ENCODER_KIND in self.kinds and self.encoder_dim <= 0:
            return 0
        return sum(self.kind_dims(k) for k in self.kinds)

    @property
    def lowlevel_kinds(self) -> tuple[str, ...]:
        return tuple(k for k in self.kinds if k != ENCODER_KIND)

    @property
    def window_dims(self) -> int:
        """Width of one frame's flattened window, ``(2*window + 1) * dims``."""
        return (2 * self.window + 1) * self.dims

    def slices(self) -> dict[str, slice]:
        """Column range of each kind in ``[T, dims]``."""
        out, start = {}, 0
        for k in self.kinds:
            out[k] = slice(start, start + self.kind_dims(k))
            start += self.kind_dims(k)
        return out

    def with_encoder(self, encoder: str, encoder_id: str, encoder_dim: int) -> AudioFeatureSpec:
        """The same spec bound to a concrete encoder (fills width and identity)."""
        return dataclasses.replace(self, encoder=encoder, encoder_id=encoder_id, encoder_dim=encoder_dim, dims=0)


def check_compatible(stored: dict[str, Any] | AudioFeatureSpec | None, current: AudioFeatureSpec,
                     where: str = "the checkpoint") -> None:
    """Raise :class:`TalkingHeadError` unless ``current`` produces what ``stored`` was trained on.

    ``encoder_id`` is compared only when both sides name one (weights moved to another folder
    keep working); every other field must match exactly.
    """
    if stored is None:
        raise TalkingHeadError(f"{where} stores no audio feature spec, so its audio input cannot be checked.")
    stored_spec = stored if isinstance(stored, AudioFeatureSpec) else AudioFeatureSpec.from_dict(stored, partial=True)
    a, b = stored_spec.to_dict(), current.to_dict()
    ignore = {"name"}
    if not (a.get("encoder_id") and b.get("encoder_id")):
        ignore.add("encoder_id")
    diffs = [k for k in a if k not in ignore and a[k] != b.get(k)]
    if diffs:
        shown = "; ".join(f"{k} {a[k]!r} (stored) vs {b.get(k)!r} (now)" for k in diffs[:4])
        raise TalkingHeadError(f"The audio features do not match what {where} was trained on: {shown}.")


def checkpoint_spec(audio_features: dict[str, Any] | None, what: str, fps: float) -> AudioFeatureSpec:
    """The :class:`AudioFeatureSpec` a checkpoint's stored ``audio_features`` (its ``dataset.spec``) was
    trained on, checked against this version's extractor and the video frame rate ``fps``."""
    stored = (audio_features or {}).get("dataset", {}).get("spec")
    if not stored:
        raise TalkingHeadError(f"The {what} checkpoint stores no audio feature spec, so its audio input "
                               "cannot be computed.")
    spec = AudioFeatureSpec.from_dict(stored, partial=True)
    check_compatible(stored, spec.replace(version=FEATURE_VERSION), f"the {what}")
    if spec.fps != fps:
        raise TalkingHeadError(f"The {what} was trained on audio features at {spec.fps} fps; generate needs {fps}.")
    return spec


def select_kinds(stacked: Any, spec: AudioFeatureSpec, names: list[str], dims: list[int], what: str) -> Any:
    """The feature kinds ``names`` (in that order, widths ``dims``) cut from ``spec``'s stacked features
    ``[T, spec.dims]`` -> ``[T, sum(dims)]``."""
    import numpy as np

    slices = spec.slices()
    missing = [n for n in names if n not in slices]
    if not names or missing:
        raise TalkingHeadError(f"The {what} reads audio features ({', '.join(names) or 'none'}) its spec does "
                               "not produce.")
    parts = [stacked[:, slices[n]] for n in names]
    if [p.shape[1] for p in parts] != list(dims):
        raise TalkingHeadError(f"The {what}'s audio feature widths do not match its feature spec.")
    return np.concatenate(parts, axis=1)

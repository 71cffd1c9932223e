"""Checkpoint directories: ``config.json`` + ``model.safetensors`` (DESIGN.md, "Contracts").

``config.json`` holds::

    {"format": "talkinghead-checkpoint", "format_version": 1, "talkinghead_version": "0.1.0",
     "component": "dreamtalk.denoiser", "preset": "cpu", "config": {...every constructor argument...},
     "layout": {...channel layout or null...}, "audio_features": {...feature spec or null...},
     "extra": {...free-form: training command, seed, metrics...}}

Weights are stored only as safetensors. Pickle files (``.pt``, ``.pth``, ``.bin``, ``.ckpt``,
``.pkl``) are refused: unpickling an untrusted file can run arbitrary code.

Modules get ``save_pretrained``/``from_pretrained`` from :class:`PretrainedMixin`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from talkinghead import __version__
from talkinghead.config import Config, read_record
from talkinghead.errors import TalkingHeadError, first_line
from talkinghead.io.files import _umask, read_json
from talkinghead.sequence import ChannelLayout

FORMAT = "talkinghead-checkpoint"
FORMAT_VERSION = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".pkl", ".pickle", ".tar")


@dataclass
class CheckpointInfo:
    """What ``config.json`` says besides the weights."""

    component: str
    config: dict[str, Any]
    preset: str = "custom"
    layout: dict[str, Any] | None = None
    audio_features: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def save_checkpoint(directory: str | Path, info: CheckpointInfo, state: dict[str, torch.Tensor]) -> Path:
    """Write a checkpoint directory atomically (a temp dir renamed into place)."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        meta = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "talkinghead_version": __version__,
            "component": info.component,
            "preset": info.preset,
            "config": info.config,
            "layout": info.layout,
            "audio_features": info.audio_features,
            "extra": info.extra,
        }
        (tmp / CONFIG_NAME).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        tensors = {k: v.detach().to("cpu").contiguous() for k, v in state.items()}
        save_file(tensors, str(tmp / WEIGHTS_NAME), metadata={"component": info.component})
        tmp.chmod(0o777 & ~_umask())  # mkdtemp makes it private (0700)
        if directory.exists():
            backup = directory.with_name(f".{directory.name}.old")
            shutil.rmtree(backup, ignore_errors=True)
            os.replace(directory, backup)
            os.replace(tmp, directory)
            shutil.rmtree(backup, ignore_errors=True)
        else:
            os.replace(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory


def safetensors_file(directory: str | Path, what: str = "checkpoint", advice: str = "") -> Path:
    """``directory/model.safetensors`` of a weights folder (``what`` names it in errors). A pickle file, or a
    folder holding pickles and no safetensors, is refused (``advice``: what to do instead)."""
    directory = Path(directory)
    tail = f"; {advice}" if advice else ""
    if directory.is_file():
        if directory.suffix.lower() in PICKLE_SUFFIXES:
            raise TalkingHeadError(
                f"{directory} is a pickle file; talkinghead loads only safetensors {what} directories "
                f"because unpickling an untrusted file can run arbitrary code{tail}."
            )
        raise TalkingHeadError(f"{directory} is a file; give the {what} directory that holds {WEIGHTS_NAME}.")
    if not directory.is_dir():
        raise TalkingHeadError(f"The {what} directory {directory} does not exist.")
    weights = directory / WEIGHTS_NAME
    if not weights.exists():
        pickles = sorted(p.name for p in directory.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES)
        if pickles:
            raise TalkingHeadError(
                f"{directory} holds pickle weights ({', '.join(pickles)}) and no {WEIGHTS_NAME}; "
                f"talkinghead refuses pickle because unpickling can run arbitrary code{tail}."
            )
        raise TalkingHeadError(f"{directory} has no {WEIGHTS_NAME} with the {what} weights.")
    return weights


def read_safetensors(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file (CPU), or one sentence when it cannot be read."""
    try:
        return load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as err:
        raise TalkingHeadError(f"{path} is not a readable safetensors file: corrupt or truncated ({err}).") from err


def read_checkpoint_info(directory: str | Path, component: str | None = None) -> CheckpointInfo:
    """Read and validate ``config.json`` (every field's type, the layout); refuse pickles and other versions."""
    directory = safetensors_file(directory).parent
    cfg_path = directory / CONFIG_NAME
    if not cfg_path.exists():
        raise TalkingHeadError(f"{directory} has no {CONFIG_NAME}; it is not a talkinghead checkpoint.")
    meta = read_json(cfg_path, "checkpoint config")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise TalkingHeadError(f"{cfg_path} is not a talkinghead checkpoint config.")
    if meta.get("format_version") != FORMAT_VERSION:
        raise TalkingHeadError(
            f"{directory} uses checkpoint format version {meta.get('format_version')!r}, "
            f"but this talkinghead {__version__} reads version {FORMAT_VERSION}."
        )
    fields = {f.name for f in dataclasses.fields(CheckpointInfo)}
    # config and extra were allowed to be null (or missing)
    entries = {k: v for k, v in meta.items() if k in fields and not (k in ("config", "extra") and v is None)}
    info = read_record(CheckpointInfo, entries, str(cfg_path))
    if info.layout is not None:
        read_record(ChannelLayout, info.layout, f"The layout of {cfg_path}")
    if component is not None and info.component != component:
        raise TalkingHeadError(
            f"{directory} holds a '{info.component}' checkpoint, not the '{component}' that was asked for."
        )
    return info


def load_checkpoint(
    directory: str | Path, component: str | None = None
) -> tuple[CheckpointInfo, dict[str, torch.Tensor]]:
    """Return the checkpoint's info and its tensors (CPU)."""
    info = read_checkpoint_info(directory, component)
    return info, read_safetensors(Path(directory) / WEIGHTS_NAME)


@contextlib.contextmanager
def built_from(cfg_path: Path) -> Iterator[None]:
    """Build a model from the config in ``cfg_path``: a config it refuses (a wrong type, a value out of range, a
    size torch cannot make, heads that do not divide the width) is one sentence naming the file."""
    try:
        yield
    except TalkingHeadError as err:
        raise TalkingHeadError(f"{cfg_path} is not valid: {err}") from err
    except (AssertionError, ArithmeticError, RuntimeError, ValueError, TypeError, KeyError, IndexError) as err:
        raise TalkingHeadError(f"{cfg_path} describes a model that cannot be built ({first_line(err)}).") from err


M = TypeVar("M", bound="PretrainedMixin")


class PretrainedMixin:
    """``save_pretrained``/``from_pretrained`` for a ``torch.nn.Module`` built from one Config.

    Subclasses set ``component`` (a stable name) and ``config_class``, keep the config as
    ``self.config`` and may set ``self.layout`` / ``self.audio_features`` (JSON-ready dicts).
    """

    component: ClassVar[str]
    config_class: ClassVar[type[Config]]
    #: the :class:`CheckpointInfo` fields (``layout``, ``audio_features``) the constructor takes as keywords;
    #: ``save_pretrained`` stores them from the same-named attributes
    checkpoint_inputs: ClassVar[tuple[str, ...]] = ()
    config: Config
    preset_name: str = "custom"

    def save_pretrained(self, directory: str | Path, extra: dict[str, Any] | None = None) -> Path:
        module = self  # a torch.nn.Module by contract
        info = CheckpointInfo(
            component=self.component,
            config=self.config.to_dict(),
            preset=self.preset_name,
            layout=getattr(self, "layout", None),
            audio_features=getattr(self, "audio_features", None),
            extra=extra or {},
        )
        return save_checkpoint(directory, info, module.state_dict())  # type: ignore[attr-defined]

    @classmethod
    def from_pretrained(cls: type[M], directory: str | Path, **kwargs: Any) -> M:
        info, state = load_checkpoint(directory, cls.component)
        with built_from(Path(directory) / CONFIG_NAME):
            config = cls.config_class.from_dict(info.config)
            model = cls._build_from_checkpoint(config, info, **kwargs)
        try:
            model.load_state_dict(state, strict=True)  # type: ignore[attr-defined]
        except RuntimeError as err:
            first = str(err).splitlines()[0]
            raise TalkingHeadError(f"{directory} does not match its config ({first}).") from err
        model.preset_name = info.preset
        model.eval()  # type: ignore[attr-defined]
        return model

    @classmethod
    def _build_from_checkpoint(cls: type[M], config: Config, info: CheckpointInfo, **kwargs: Any) -> M:
        """Construct the module from its config and the ``checkpoint_inputs`` the checkpoint recorded."""
        inputs = {name: getattr(info, name) for name in cls.checkpoint_inputs}
        return cls(config, **inputs, **kwargs)  # type: ignore[call-arg]

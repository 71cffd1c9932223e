"""The registry of trainable components: ``paper.component`` -> :class:`ComponentSpec` (torch-free).

Each paper declares its trainable components in its own package (a module-level ``COMPONENTS`` tuple of
:class:`ComponentSpec`); :data:`PAPERS` lists those modules, one line per paper. A spec names the
component, its aliases (old CLI names), a help line, the component's own options (ablation flags, input
checkpoints) and a ``"module:function"`` builder that is imported only when the component is trained, so
listing the components (``talkinghead train --help``) does not import torch.

A builder is called as ``builder(data, preset, features=..., train_overrides=..., **options)`` and returns
a :class:`SolverBuild`: the solver, its training config and what the checkpoint's ``extra`` records.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from talkinghead.errors import TalkingHeadError

# One line per paper: the module that declares the paper's trainable components.
PAPERS = (
    "talkinghead.motion.dreamtalk.training",
    "talkinghead.motion.dimitra.training",
    "talkinghead.motion.fd2talk.training",
    "talkinghead.video.emo",
    "talkinghead.video.dice",
    "talkinghead.evaluation.judges",
)

OPTION_KINDS = ("flag", "path", "int", "choice")


@dataclass(frozen=True)
class Option:
    """One option of a component: ``--name-with-dashes`` on the command line, ``name`` as a keyword.

    ``kind``: ``flag`` (on/off, default off), ``path`` (a file or folder), ``int`` (in ``low .. high``;
    a count by default, at least 1) or ``choice`` (one of ``choices``). ``group`` titles the option's section
    in ``--help``.
    """

    name: str
    help: str
    kind: str = "flag"
    default: Any = None
    choices: tuple[str, ...] = ()
    metavar: str | None = None
    group: str = ""
    low: int = 1
    high: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in OPTION_KINDS:
            raise TalkingHeadError(f"Option kind '{self.kind}' is not one of {', '.join(OPTION_KINDS)}.")
        if self.high is not None and self.high < self.low:
            raise TalkingHeadError(f"Option {self.name}'s range {self.low}..{self.high} is empty.")

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def default_value(self) -> Any:
        return False if self.kind == "flag" else self.default


@dataclass(frozen=True)
class ComponentSpec:
    """A trainable component: registry ``name`` (``paper.component``), ``aliases``, a ``help`` line, its
    ``options`` and the ``builder`` (``"module:function"``, imported on first use)."""

    name: str
    builder: str
    help: str
    aliases: tuple[str, ...] = ()
    options: tuple[Option, ...] = field(default=())

    def option(self, name: str) -> Option | None:
        return next((o for o in self.options if o.name == name), None)

    def load_builder(self) -> Callable[..., SolverBuild]:
        module, _, function = self.builder.partition(":")
        return getattr(importlib.import_module(module), function)  # type: ignore[no-any-return]


@dataclass
class SolverBuild:
    """What a builder returns: ``solver`` (a :class:`talkinghead.training.loop.Solver`), its training
    ``config`` and the entries the checkpoint's ``extra`` records about the inputs."""

    solver: Any
    config: Any
    extra: dict[str, Any] = field(default_factory=dict)


@functools.cache
def components() -> dict[str, ComponentSpec]:
    """Every registered component by name (in the order of :data:`PAPERS`)."""
    table: dict[str, ComponentSpec] = {}
    for module in PAPERS:
        for spec in importlib.import_module(module).COMPONENTS:
            if spec.name in table:
                raise TalkingHeadError(f"Two papers register the training component '{spec.name}'.")
            table[spec.name] = spec
    return table


def get_component(name: str) -> ComponentSpec:
    """The spec registered under ``name`` or one of its aliases."""
    table = components()
    if name in table:
        return table[name]
    for spec in table.values():
        if name in spec.aliases:
            return spec
    raise TalkingHeadError(f"Unknown training component '{name}'; choose one of {', '.join(choices())}.")


def choices() -> list[str]:
    """Every name and alias that :func:`get_component` accepts."""
    return [n for spec in components().values() for n in (spec.name, *spec.aliases)]


def check_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` completed with the component's defaults; an option the component does not have is refused
    (saying which components have it)."""
    spec = get_component(name)
    for key in options:
        if spec.option(key) is None:
            owners = [s.aliases[0] if s.aliases else s.name for s in components().values() if s.option(key)]
            flag = "--" + key.replace("_", "-")
            if not owners:
                raise TalkingHeadError(f"No training component has the option {flag}.")
            raise TalkingHeadError(f"{flag} applies to {' and '.join(owners)}, not {name}.")
    return {o.name: options.get(o.name, o.default_value) for o in spec.options}


def command_line(name: str, preset: str, options: dict[str, Any]) -> str:
    """The ``talkinghead train`` command recorded in a checkpoint: flags that are set and non-path
    options away from their defaults (input checkpoints are recorded separately)."""
    spec = get_component(name)
    parts = [f"talkinghead train {name} --preset {preset}"]
    for o in spec.options:
        value = options.get(o.name, o.default_value)
        if o.kind == "flag" and value:
            parts.append(o.flag)
        elif o.kind in ("int", "choice") and value is not None and value != o.default:
            parts.append(f"{o.flag} {value}")
    return " ".join(parts)

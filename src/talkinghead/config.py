"""Typed, frozen configs with named presets.

Every component's config is a frozen dataclass deriving from :class:`Config`. Presets are named
sets of overrides declared on the class (``tiny`` for tests, ``cpu`` for the shipped defaults,
``paper`` for the papers' sizes)::

    @dataclass(frozen=True)
    class DenoiserConfig(Config):
        d_model: int = 256
        presets: ClassVar[dict[str, dict[str, Any]]] = {"tiny": {"d_model": 32}}

    cfg = DenoiserConfig.preset("tiny")

``to_dict``/``from_dict`` round-trip through JSON; ``from_dict`` refuses unknown or ill-typed keys
with a :class:`TalkingHeadError`, so a config from another version fails clearly.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, ClassVar, TypeVar, Union, get_args, get_origin

from talkinghead.errors import TalkingHeadError

C = TypeVar("C", bound="Config")


@dataclasses.dataclass(frozen=True)
class Config:
    """Base class of every component config (frozen dataclass with presets)."""

    presets: ClassVar[dict[str, dict[str, Any]]] = {}

    @classmethod
    def preset(cls: type[C], name: str, **overrides: Any) -> C:
        """Build the config of preset ``name`` ("default" is the dataclass defaults)."""
        if name != "default" and name not in cls.presets:
            known = ", ".join(["default", *cls.presets])
            raise TalkingHeadError(f"{cls.__name__} has no preset '{name}'; choose one of: {known}.")
        values = dict(cls.presets.get(name, {}))
        values.update(overrides)
        return cls.from_dict(values, partial=True)

    def replace(self: C, **changes: Any) -> C:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (tuples become lists, nested configs become dicts)."""
        return {f.name: _to_json(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls: type[C], data: dict[str, Any], partial: bool = False) -> C:
        """Build from a dict; unknown keys or wrong types raise ``TalkingHeadError``.

        With ``partial`` missing keys take their defaults; otherwise every field must be present
        (a checkpoint's config must be complete).
        """
        if not isinstance(data, dict):
            raise TalkingHeadError(f"{cls.__name__} expects a mapping, got {type(data).__name__}.")
        hints = typing.get_type_hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise TalkingHeadError(
                f"{cls.__name__} does not know the key(s) {', '.join(unknown)}; "
                "the config was probably written by another version of talkinghead."
            )
        missing = [n for n in fields if n not in data]
        if missing and not partial:
            raise TalkingHeadError(
                f"{cls.__name__} config lacks the key(s) {', '.join(missing)}; "
                "it was probably written by another version of talkinghead."
            )
        values = {name: _from_json(hints[name], data[name], f"{cls.__name__}.{name}") for name in data}
        return cls(**values)


def _to_json(value: Any) -> Any:
    if isinstance(value, Config):
        return value.to_dict()
    if isinstance(value, tuple | list):
        return [_to_json(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _to_json(v) for k, v in value.items()}
    return value


def _from_json(tp: Any, value: Any, where: str) -> Any:
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        errors = []
        for option in get_args(tp):
            try:
                return _from_json(option, value, where)
            except TalkingHeadError as err:
                errors.append(str(err))
        raise TalkingHeadError(f"{where} has a value of the wrong type: {value!r}.")
    if tp is type(None):
        if value is None:
            return None
        raise TalkingHeadError(f"{where} should be null, got {value!r}.")
    if isinstance(tp, type) and issubclass(tp, Config):
        return tp.from_dict(value, partial=True)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise TalkingHeadError(f"{where} should be a list, got {value!r}.")
        args = get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_from_json(args[0], v, where) for v in value)
        if len(args) != len(value):
            raise TalkingHeadError(f"{where} should have {len(args)} items, got {len(value)}.")
        return tuple(_from_json(a, v, where) for a, v in zip(args, value, strict=True))
    if origin is dict:
        if not isinstance(value, dict):
            raise TalkingHeadError(f"{where} should be a mapping, got {value!r}.")
        _, vt = get_args(tp)
        return {k: _from_json(vt, v, where) for k, v in value.items()}
    if origin is typing.Literal:
        if value not in get_args(tp):
            raise TalkingHeadError(f"{where} must be one of {get_args(tp)}, got {value!r}.")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TalkingHeadError(f"{where} should be a number, got {value!r}.")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TalkingHeadError(f"{where} should be an integer, got {value!r}.")
        return value
    if tp in (str, bool):
        if not isinstance(value, tp):
            raise TalkingHeadError(f"{where} should be a {tp.__name__}, got {value!r}.")
        return value
    return value

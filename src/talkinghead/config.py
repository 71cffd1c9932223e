"""Typed, frozen configs with named presets, and the typed reading of every talkinghead file format.

Every component's config is a frozen dataclass deriving from :class:`Config`. Presets are named
sets of overrides declared on the class (``tiny`` for tests, ``cpu`` for the shipped defaults,
``paper`` for the papers' sizes)::

    @dataclass(frozen=True)
    class DenoiserConfig(Config):
        d_model: Annotated[int, Range(1)] = 256
        presets: ClassVar[dict[str, dict[str, Any]]] = {"tiny": {"d_model": 32}}

    cfg = DenoiserConfig.preset("tiny")

``to_dict``/``from_dict`` round-trip through JSON; ``from_dict`` refuses unknown or ill-typed keys
with a :class:`TalkingHeadError`, so a config from another version fails clearly.

The same checks read the project's other formats (checkpoint ``config.json``, motion files, dataset
descriptions and manifest rows): :func:`read_record` builds any dataclass from parsed JSON, checking each
field against its annotation (types, :class:`Range` in ``Annotated`` metadata, finite numbers), and names
the file and the field in its one sentence.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Annotated, Any, ClassVar, TypeVar, Union, get_args, get_origin

from talkinghead.errors import TalkingHeadError, first_line

C = TypeVar("C", bound="Config")
T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Range:
    """The allowed values of a number: at least ``low`` (above it when ``open_low``), at most ``high``.
    Used as ``Annotated[int, Range(1)]`` on dataclass fields and by the command-line options
    (:mod:`talkinghead.options`); every number it passes is finite."""

    low: float | None = None
    high: float | None = None
    open_low: bool = False

    def __str__(self) -> str:
        if self.low is None:
            return "a finite number" if self.high is None else f"at most {_number(self.high)}"
        low = f"{'above' if self.open_low else 'at least'} {_number(self.low)}"
        if self.high is None:
            return low
        if self.open_low:
            return f"{low} and at most {_number(self.high)}"
        return f"between {_number(self.low)} and {_number(self.high)}"

    def problem(self, value: float) -> str | None:
        """What is wrong with ``value`` ("must be at least 1"), or None when it is in the range."""
        if not isinstance(value, int) and not math.isfinite(value):  # (ints are finite, and may exceed floats)
            return "must be a finite number"
        if (self.low is not None and (value <= self.low if self.open_low else value < self.low)) or \
                (self.high is not None and value > self.high):
            return f"must be {self}"
        return None

    def check(self, value: float, where: str) -> None:
        problem = self.problem(value)
        if problem is not None:
            raise TalkingHeadError(f"{where} {problem}, got {value!r}.")


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


POSITIVE = Range(0, open_low=True)
NON_NEGATIVE = Range(0)
AT_LEAST_ONE = Range(1)
SEED_HIGH = 2**32 - 1  # what every random generator here takes (Lightning's seed range)
SEED = Range(0, SEED_HIGH)


@dataclasses.dataclass(frozen=True)
class Config:
    """Base class of every component config (frozen dataclass with presets)."""

    presets: ClassVar[dict[str, dict[str, Any]]] = {}
    #: fields added after checkpoints were shipped: a complete config written before one existed lacks its
    #: key, and :meth:`from_dict` gives exactly these their defaults (the behaviour such a checkpoint was
    #: trained with); any other missing key is still refused
    added_fields: ClassVar[tuple[str, ...]] = ()

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
        """Build from a dict; unknown keys, wrong types and values out of range raise ``TalkingHeadError``.

        With ``partial`` missing keys take their defaults; otherwise every field must be present
        (a checkpoint's config must be complete) except those named in ``added_fields``.
        """
        return build_record(cls, with_added_defaults(cls, data), cls.__name__, partial=partial)


def with_added_defaults(cls: type[Config], data: Any) -> Any:
    """``data`` with the fields named in ``cls.added_fields`` set to their dataclass defaults where absent."""
    if not isinstance(data, dict) or not cls.added_fields:
        return data
    defaults = {f.name: f.default for f in dataclasses.fields(cls) if f.name in cls.added_fields}
    return {**{k: v for k, v in defaults.items() if k not in data}, **data}


def build_record(cls: type[T], data: Any, where: str, partial: bool = True) -> T:
    """An instance of the dataclass ``cls`` from a JSON mapping, each field checked against its annotation.

    ``where`` names the mapping in errors (its fields are ``where.name``; "" for a whole file: ``name``). Unknown
    keys are refused; fields without a default must be present, and with ``partial=False`` every field must. A
    refusal of the constructor's own checks (``__post_init__``) becomes a :class:`TalkingHeadError` too.
    """
    subject = where or "it"
    if not isinstance(data, dict):
        raise TalkingHeadError(f"{subject} should be a mapping, got {_shown(data)}.")
    hints = typing.get_type_hints(cls, include_extras=True)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(str(k) for k in set(data) - set(fields))
    if unknown:
        raise TalkingHeadError(f"{subject} does not know the key(s) {', '.join(unknown)}; it was probably written by "
                               "another version of talkinghead.")
    missing = [n for n, f in fields.items() if n not in data and (not partial or _required(f))]
    if missing:
        raise TalkingHeadError(f"{subject} lacks the key(s) {', '.join(missing)}; it was probably written by another "
                               "version of talkinghead.")
    values = {name: check_value(hints[name], value, f"{where}.{name}" if where else name)
              for name, value in data.items()}
    try:
        return cls(**values)
    except TalkingHeadError:
        raise
    except (AssertionError, ArithmeticError, ValueError, TypeError) as err:
        raise TalkingHeadError(f"{subject} is not valid ({first_line(err)}).") from err


def read_record(cls: type[T], data: Any, source: str) -> T:
    """:func:`build_record` for a whole file (or an entry of one) named ``source``: the sentence names it and
    the field."""
    try:
        return build_record(cls, data, "")
    except TalkingHeadError as err:
        raise TalkingHeadError(f"{source} is not valid: {err}") from err


def check_value(tp: Any, value: Any, where: str) -> Any:
    """``value`` (parsed JSON) as the annotation ``tp`` asks: the type, tuples from lists, nested configs and
    dataclasses, ``Literal`` values, finite numbers, the :class:`Range` of ``Annotated[..., Range(...)]``."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin is Annotated:
        inner, *extras = get_args(tp)
        value = check_value(inner, value, where)
        for extra in extras:
            if isinstance(extra, Range):
                extra.check(value, where)
        return value
    if origin in (Union, types.UnionType):
        options = get_args(tp)
        if value is None and type(None) in options:
            return None
        if len(options) == 2 and type(None) in options:  # Optional[X] and not null: X's own sentence
            return check_value(next(o for o in options if o is not type(None)), value, where)
        for option in options:
            try:
                return check_value(option, value, where)
            except TalkingHeadError:
                continue
        raise TalkingHeadError(f"{where} has a value of the wrong type: {_shown(value)}.")
    if tp is type(None):
        if value is None:
            return None
        raise TalkingHeadError(f"{where} should be null, got {_shown(value)}.")
    if isinstance(tp, type) and issubclass(tp, Config):
        if not isinstance(value, dict):
            raise TalkingHeadError(f"{where} should be a mapping, got {_shown(value)}.")
        return tp.from_dict(value, partial=True)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return build_record(tp, value, where)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise TalkingHeadError(f"{where} should be a list, got {_shown(value)}.")
        args = get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(check_value(args[0], v, where) for v in value)
        if len(args) != len(value):
            raise TalkingHeadError(f"{where} should have {len(args)} items, got {len(value)}.")
        return tuple(check_value(a, v, where) for a, v in zip(args, value, strict=True))
    if origin is list:
        if not isinstance(value, list | tuple):
            raise TalkingHeadError(f"{where} should be a list, got {_shown(value)}.")
        return [check_value(get_args(tp)[0], v, where) for v in value]
    if origin is dict:
        if not isinstance(value, dict):
            raise TalkingHeadError(f"{where} should be a mapping, got {_shown(value)}.")
        _, vt = get_args(tp)
        return {k: check_value(vt, v, f"{where}.{k}") for k, v in value.items()}
    if origin is typing.Literal:
        if value not in get_args(tp):
            raise TalkingHeadError(f"{where} must be one of {get_args(tp)}, got {_shown(value)}.")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise TalkingHeadError(f"{where} should be a number, got {_shown(value)}.")
        Range().check(value, where)  # finite
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TalkingHeadError(f"{where} should be an integer, got {_shown(value)}.")
        return value
    if tp in (str, bool):
        if not isinstance(value, tp):
            raise TalkingHeadError(f"{where} should be a {tp.__name__}, got {_shown(value)}.")
        return value
    return value


def _required(field: dataclasses.Field[Any]) -> bool:
    return field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING


def _shown(value: Any) -> str:
    """A value for a message: its repr, cut to 60 characters."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _to_json(value: Any) -> Any:
    if isinstance(value, Config):
        return value.to_dict()
    if isinstance(value, tuple | list):
        return [_to_json(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _to_json(v) for k, v in value.items()}
    return value

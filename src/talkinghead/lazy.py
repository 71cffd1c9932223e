"""Imports deferred to first use: names of a package (PEP 562), so that ``talkinghead --help`` pays for no torch, and
whole modules another library imports but the toolkit does not use (:func:`defer_module`)."""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Callable
from typing import Any


def lazy_getattr(package: str, where: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: ``name`` is imported from ``package.<where[name]>`` the
    first time it is read, then kept in the package's namespace."""

    def __getattr__(name: str) -> Any:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{where[name]}"), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__


class DeferredModule(types.ModuleType):
    """Stands in ``sys.modules`` for a module not imported yet; its first attribute read imports the real module
    (which then replaces it there) and every read is answered by the real one."""

    def __getattr__(self, attr: str) -> Any:
        if sys.modules.get(self.__name__) is self:
            del sys.modules[self.__name__]
        return getattr(importlib.import_module(self.__name__), attr)


def defer_module(name: str) -> None:
    """Let an ``import name`` that runs from now on cost nothing until the module is read from: a
    :class:`DeferredModule` stands in for it, unless it is imported already."""
    if name not in sys.modules:
        sys.modules[name] = DeferredModule(name)

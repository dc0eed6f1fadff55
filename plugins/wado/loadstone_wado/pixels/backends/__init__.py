"""Codec backends: one small module per decoding library, found by listing this package.

Each module follows the interface in :mod:`.base` (``NAME``, ``SYNTAXES``,
``CAN_CRASH``, ``is_available(uid)``, ``decode(src, description, uid,
index)``), as pydicom's ``pixels/decoders/`` plugins do.  Adding a backend
is adding one module here: it is found, checked and offered for its syntaxes
(after the decoders :mod:`..order` prefers, until it is given a place there).
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from types import ModuleType
from typing import cast

from .base import Backend, FrameBytes, RawFrame

__all__ = ["Backend", "FrameBytes", "RawFrame", "all_backends", "available", "backend", "names", "syntaxes"]

_NOT_BACKENDS = frozenset({"base"})


def _checked(module: ModuleType) -> Backend:
    for attribute, kind in (("NAME", str), ("SYNTAXES", frozenset), ("CAN_CRASH", bool)):
        if not isinstance(getattr(module, attribute, None), kind):
            raise TypeError(f"codec backend {module.__name__} needs {attribute} ({kind.__name__})")
    for function in ("is_available", "decode"):
        if not callable(getattr(module, function, None)):
            raise TypeError(f"codec backend {module.__name__} needs a function {function}()")
    return cast(Backend, module)


def _discover() -> tuple[Backend, ...]:
    modules = [importlib.import_module(f"{__name__}.{info.name}")
               for info in pkgutil.iter_modules(__path__)
               if not info.name.startswith("_") and info.name not in _NOT_BACKENDS]
    found = sorted((_checked(module) for module in modules), key=lambda b: (b.NAME, b.__name__))
    for index, one in enumerate(found):
        for other in found[index + 1:]:
            shared = one.SYNTAXES & other.SYNTAXES
            if one.NAME == other.NAME and shared:
                raise TypeError(f"codec backends {one.__name__} and {other.__name__} are both "
                                f"{one.NAME!r} for {', '.join(sorted(shared))}")
    return tuple(found)


_BACKENDS = _discover()
_SYNTAXES = frozenset().union(*(b.SYNTAXES for b in _BACKENDS))


def all_backends() -> tuple[Backend, ...]:
    """Every backend module, installed or not, by name."""
    return _BACKENDS


def syntaxes() -> frozenset[str]:
    """Every Transfer Syntax UID some backend decodes (installed or not)."""
    return _SYNTAXES


@functools.cache
def available(uid: str) -> tuple[Backend, ...]:
    """The backends installed for ``uid``, by name (cached: the first check may import a codec)."""
    return tuple(b for b in _BACKENDS if uid in b.SYNTAXES and b.is_available(uid))


def names(uid: str) -> tuple[str, ...]:
    """The names of the backends installed for ``uid``, alphabetical."""
    return tuple(b.NAME for b in available(uid))


def backend(name: str, uid: str) -> Backend:
    """The installed backend called ``name`` for ``uid``; KeyError when there is none."""
    for candidate in available(uid):
        if name == candidate.NAME:
            return candidate
    raise KeyError(f"no installed decoder {name!r} for {uid}")

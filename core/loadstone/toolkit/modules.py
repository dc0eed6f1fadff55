"""Packages that stay cheap to import: names imported from their modules on first access.

A plugin's package is imported whenever its ``plugin.py`` is (to read its
hooks, or to list it in ``loadstone plugins``), so its ``__init__`` should
not pull in numpy, Pillow or the load machinery for names nobody asked for
yet.  :func:`lazy_exports` makes the module ``__getattr__`` and ``__dir__``
of PEP 562 for that, once, instead of each package writing its own.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


ModuleGetattr = Callable[[str], Any]
ModuleDir = Callable[[], list[str]]


def lazy_exports(package: str, exports: Mapping[str, str]) -> tuple[ModuleGetattr, ModuleDir]:
    """``__getattr__`` and ``__dir__`` for ``package``, whose ``exports`` load on first access.

    ``exports`` maps each name to the module that defines it under that
    name, relative to ``package`` (``".loader"``) or absolute::

        __getattr__, __dir__ = lazy_exports(__name__, {"load_web": ".loader", "decode": "._decode"})

    The first access imports the module and stores the value in the
    package, so later lookups are plain attribute reads.  (For type
    checkers, import the same names under ``if TYPE_CHECKING:``.)
    """
    names = dict(exports)

    def __getattr__(name: str) -> Any:  # noqa: N807 - the module-level hook of PEP 562
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:  # noqa: N807
        return sorted(set(vars(sys.modules[package])) | set(names))

    return __getattr__, __dir__

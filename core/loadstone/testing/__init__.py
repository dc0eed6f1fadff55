"""loadstone's conformance kit: checks, pytest contracts and fixtures for plugin authors.

Test a plugin by subclassing a contract in a pytest module (name the
subclass ``Test…``) and setting class attributes; every ``test_*`` method
then checks one part of the contract, and checks that do not apply are
skipped with the reason::

    import loadstone
    from loadstone.testing import LoaderContract

    class TestMyLoader(LoaderContract):
        loader = "myscheme"                      # or the ImageLoader itself
        valid_ids = ["myscheme://a/1", "myscheme://a/2"]
        invalid_ids = {"myscheme://nope": loadstone.InvalidImageError}
        slow_id = "myscheme://slow/1"           # cancel and timeout checks (optional)
        has_metadata = True                      # metadata agrees with the images
        series_ids = ["myscheme://a"]            # expands to ids that load, in order

What is here:

* contracts (:mod:`loadstone.testing.contract`): :class:`LoaderContract`
  (the loader, and with its capability flags its metadata and series),
  :class:`MetadataContract`, :class:`SeriesContract`;
* checks as plain functions, for any test runner
  (:mod:`loadstone.testing.checks`): :func:`check_image`,
  :func:`check_failure`, :func:`check_loader`, :func:`check_metadata`,
  :func:`check_series`;
* global state (:mod:`loadstone.testing._isolation`): :func:`isolated`,
  :func:`restore_defaults`, :func:`reset_plugins`;
* pytest fixtures (:mod:`loadstone.testing.pytest_plugin`, registered by
  installing loadstone): ``loadstone_isolated``, ``loadstone_fresh_plugins``,
  ``loadstone_without_plugins``, ``loadstone_scheme``, ``loadstone_provider``,
  ``loadstone_load``, ``loadstone_load_error``.

Nothing in the kit changes loadstone's process-wide registry.  The checks
import numpy and the contracts pytest on first use, not with this package.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._isolation import isolated, reset_plugins, restore_defaults

if TYPE_CHECKING:
    from .checks import check_failure, check_image, check_loader, check_metadata, check_series
    from .contract import LoaderContract, MetadataContract, SeriesContract

__all__ = [
    "LoaderContract",
    "MetadataContract",
    "SeriesContract",
    "check_failure",
    "check_image",
    "check_loader",
    "check_metadata",
    "check_series",
    "isolated",
    "reset_plugins",
    "restore_defaults",
]

_LAZY = {
    "check_failure": ".checks",
    "check_image": ".checks",
    "check_loader": ".checks",
    "check_metadata": ".checks",
    "check_series": ".checks",
    "LoaderContract": ".contract",
    "MetadataContract": ".contract",
    "SeriesContract": ".contract",
}


def __getattr__(name: str) -> Any:
    try:
        module_name = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'loadstone.testing' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module_name, __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))

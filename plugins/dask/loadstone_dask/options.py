"""Load options on their way to the workers: checked on the client, shared on each worker.

Why: a ``before_send`` hook (or any option) that cannot be pickled would
otherwise fail on a worker, once per task, long after the graph was built;
here it fails at once, naming the option.  Options travel with cloudpickle,
as dask ships functions (closures, lambdas and ``async def`` hooks of a
script included).  On a worker, every task of one graph gets the *same*
options object back, so requests that loadstone shares between loads with
the same credentials (``loadstone.http.share_key``) are shared across
chunks too.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import cloudpickle

from loadstone.toolkit import LRUCache

__all__ = ["ShippedOptions", "ship_options", "check_shippable"]

#: Options that only make sense in the process that made them.
_LOCAL_ONLY = {"http_client": "an HttpClient holds this process's connections; configure one on the workers"}

# token -> the options of one graph, in this process (a worker keeps the last few graphs').
_interned: LRUCache[str, ShippedOptions] = LRUCache(64)


class ShippedOptions:
    """Load options that pickle once per graph and unpickle to one shared object per process."""

    __slots__ = ("token", "options")

    def __init__(self, token: str, options: Mapping[str, Any]) -> None:
        self.token = token
        self.options: Mapping[str, Any] = dict(options)

    def __reduce__(self) -> tuple[Any, tuple[str, dict[str, Any]]]:
        return (_intern, (self.token, dict(self.options)))

    def __repr__(self) -> str:
        return f"ShippedOptions({sorted(self.options)})"

    def __dask_tokenize__(self) -> str:
        return self.token


def _intern(token: str, options: dict[str, Any]) -> ShippedOptions:
    existing = _interned.get(token)
    if existing is not None:
        return existing
    shipped = ShippedOptions(token, options)
    _interned.put(token, shipped)
    return shipped


def check_shippable(name: str, value: object, what: str = "load option") -> None:
    """Raise ``TypeError`` naming ``name`` if ``value`` cannot be sent to dask workers."""
    try:
        cloudpickle.dumps(value)
    except Exception as exc:
        raise TypeError(
            f"{what} {name}={value!r} cannot be sent to the dask workers: cloudpickle failed "
            f"({type(exc).__name__}: {exc}); pass a module-level function or a picklable object "
            "(no open sockets, locks, clients or threads captured)") from exc


def ship_options(options: Mapping[str, Any]) -> ShippedOptions:
    """Check every option for the trip to the workers and wrap them (``TypeError`` if one cannot go)."""
    for name, value in options.items():
        if name in _LOCAL_ONLY and value is not None:
            raise TypeError(f"load option {name}={value!r} cannot be sent to the dask workers: "
                            f"{_LOCAL_ONLY[name]}")
        check_shippable(name, value)
    return _intern(uuid.uuid4().hex, dict(options))

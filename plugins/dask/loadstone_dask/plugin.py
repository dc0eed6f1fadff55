"""The pluggy hooks that the ``loadstone`` entry point ``dask`` names.

Wiring only, and cheap to import (no dask, no distributed): loadstone-dask
serves no scheme; it adds ``--scheduler``/``--workers`` to ``loadstone
fetch``, runs that fetch on dask workers, and offers its settings to
``loadstone --set dask.key=value``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from loadstone import hookimpl

from .config import config

if TYPE_CHECKING:
    from loadstone.config import PluginConfig
    from loadstone.fetching import FetchRecord, FetchSpec

__all__ = ["loadstone_cli_options", "loadstone_fetch", "loadstone_plugin_config", "loadstone_plugin_details"]


@hookimpl
def loadstone_cli_options(command: str, parser: argparse.ArgumentParser) -> None:
    """``loadstone fetch --scheduler ADDRESS`` / ``--workers N``."""
    if command == "fetch":
        from .fetch import add_options

        add_options(parser)


@hookimpl
def loadstone_fetch(image_ids: Sequence[str], spec: FetchSpec, args: argparse.Namespace,
                    report: Callable[[FetchRecord], None]) -> bool | None:
    """Run the fetch on dask workers when ``--scheduler`` or ``--workers`` was given."""
    if not getattr(args, "scheduler", None) and not getattr(args, "workers", None):
        return None
    from .fetch import distributed_fetch

    return distributed_fetch(image_ids, spec, args, report)


@hookimpl
def loadstone_plugin_config() -> PluginConfig[Any]:
    """The ``dask`` settings (``loadstone --set dask.retries=5``)."""
    return config


@hookimpl
def loadstone_plugin_details() -> Mapping[str, str]:
    """What ``loadstone plugins`` shows: the chunk target and the worker cache bound."""
    settings = config.get()
    cache = (f"{settings.cache_bytes / 2**20:g} MiB" if settings.cache_bytes
             else f"{settings.cache_fraction:g} of each worker's memory limit")
    return {"chunk": f"{settings.chunk_bytes / 2**20:g} MiB", "worker cache": cache,
            "retries": str(settings.retries)}

"""``loadstone_dask.config``: how the dask plugin cuts work into tasks and bounds worker memory.

In loadstone's one plugin-settings style (:mod:`loadstone.config`): a frozen
:class:`Settings` dataclass checked in ``__post_init__``, and one
:class:`~loadstone.config.PluginConfig` named ``dask``::

    from loadstone_dask import config
    config.chunk_bytes = 64 << 20           # bigger chunks
    with config.override(retries=0):
        ...

Initial values come from the environment, ``LOADSTONE_DASK_<SETTING>``
(``LOADSTONE_DASK_CACHE_FRACTION=0.2``), and ``loadstone --set
dask.retries=5`` sets one for a command.  Settings are read on the client
when a graph is built; the worker-side ones (``cache_fraction``,
``cache_bytes``) travel with the tasks, so workers need no environment.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from loadstone.config import PluginConfig

__all__ = ["Settings", "config", "DEFAULT_CHUNK_BYTES"]

#: Target size of one array chunk: some tens of MB, dask's own advice for chunk sizes.
DEFAULT_CHUNK_BYTES = 32 << 20


@dataclass(frozen=True)
class Settings:
    """The dask plugin's settings."""

    #: Bytes one array chunk (or one ``map_images`` task) aims at; whole images per chunk.
    chunk_bytes: int = DEFAULT_CHUNK_BYTES
    #: Images in one ``loadstone fetch --scheduler`` task (the progress bar moves by tasks).
    fetch_images_per_task: int = 8
    #: Retries of a task that failed with a transient error (``TransportError`` of the
    #: network or a 5xx, ``LoadTimeoutError``), for the functions that submit work
    #: themselves (``map_images``, the fetch); for arrays pass ``retries=`` to ``compute``.
    retries: int = 3
    #: Part of each worker's memory limit that its loadstone image cache may hold.
    cache_fraction: float = 0.1
    #: The workers' loadstone cache in bytes (wins over ``cache_fraction``; 0: use the fraction).
    cache_bytes: int = 0
    #: Before building a graph, ask every worker (``Client.run``) whether it can load each
    #: scheme in it.
    check_workers: bool = True
    #: Schemes whose series each worker expands once (``loadstone.series_image_ids``) before
    #: loading slices of a ``from_series`` volume: for ``wadors`` one series ``/metadata``
    #: request per worker instead of one per instance.
    series_warmup_schemes: frozenset[str] = field(default_factory=lambda: frozenset({"wadors"}))

    def __post_init__(self) -> None:
        for name in ("chunk_bytes", "fetch_images_per_task"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"dask.{name} must be a positive int, got {value!r}")
        for name in ("retries", "cache_bytes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"dask.{name} must be an int >= 0, got {value!r}")
        fraction = self.cache_fraction
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction <= 1:
            raise ValueError(f"dask.cache_fraction must be a number in (0, 1], got {fraction!r}")


#: The plugin's settings (``config.get()`` for a snapshot).
config: PluginConfig[Settings] = PluginConfig("dask", Settings)

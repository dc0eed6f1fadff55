"""The errors the dask plugin adds to loadstone's (every other failure is a loadstone error as it is)."""

from __future__ import annotations

from loadstone.errors import PluginError

__all__ = ["WorkerPluginMissingError"]


class WorkerPluginMissingError(PluginError):
    """A dask worker cannot load a scheme the graph needs (its plugin is missing there).

    ``worker`` is the worker's address, ``scheme`` the scheme, ``distribution``
    what to install on the workers (None: the loader was registered in code).
    """

    def __init__(self, message: str = "", *, image_id: str | None = None, worker: str = "",
                 scheme: str = "", distribution: str | None = None) -> None:
        super().__init__(message, image_id=image_id)
        self.worker = worker
        self.scheme = scheme
        self.distribution = distribution

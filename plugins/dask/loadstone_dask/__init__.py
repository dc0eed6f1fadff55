"""loadstone-dask: image ids as dask arrays, maps and fetches on a dask.distributed cluster.

dask does the distribution, loadstone does the loading on each worker::

    from distributed import Client
    import loadstone_dask

    client = Client("tcp://scheduler:8786")        # or none: dask's local threads
    volume = loadstone_dask.from_series("wadors:https://pacs/dicom-web/studies/S/series/E",
                                        headers={"Authorization": "Bearer …"})
    array, affine = volume                          # a lazy (slices, rows, columns) dask array
    means = loadstone_dask.map_images(lambda image: image.pixel_data.mean(), volume.image_ids)

:func:`from_image_ids` (any ids, whole images per chunk), :func:`from_series`
(a :class:`loadstone.volume.Volume` whose array is a dask array),
:func:`map_images` (a function run where each image loads) and ``loadstone
fetch --scheduler ADDRESS`` all follow dask's conventions: they run on the
current scheduler, and the functions that submit work take ``client=``.

Importing this package is cheap: dask and distributed load with the first
function used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loadstone.toolkit import lazy_exports

from .config import Settings, config
from .errors import WorkerPluginMissingError

if TYPE_CHECKING:
    from .array import from_image_ids
    from .clients import check_workers
    from .mapping import map_images
    from .volume import from_series
    from .worker import LoadstonePlugin, worker_state

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "from_image_ids",
    "from_series",
    "map_images",
    "check_workers",
    "LoadstonePlugin",
    "worker_state",
    "WorkerPluginMissingError",
    "Settings",
    "config",
]

__getattr__, __dir__ = lazy_exports(__name__, {
    "from_image_ids": ".array",
    "from_series": ".volume",
    "map_images": ".mapping",
    "check_workers": ".clients",
    "LoadstonePlugin": ".worker",
    "worker_state": ".worker",
})

"""loadstone-wado: DICOM image loaders for loadstone.

Schemes (registered through the ``loadstone`` entry point ``wado``):

* ``dicomfile:`` — a Part 10 file on disk (``dicomfile:/data/ct/1.dcm``,
  ``?frame=N`` for multi-frame) or one handed to :mod:`.file_manager`
  (``dicomfile:3``);
* ``wadouri:`` / ``dicomweb:`` — WADO-URI;
* ``wadors:`` — WADO-RS frames.

The public API: the loaders and the most used functions are attributes of
this package, imported on first access (``loadstone_wado.load_dicomfile``,
``loadstone_wado.read_part10``, …), so importing it costs no more than its
settings; and by module::

    from loadstone_wado import config            # settings: root folder, caps, decoders, decode pool
    from loadstone_wado import file_manager      # add(bytes | path | file) -> "dicomfile:N"
    from loadstone_wado import metadata_manager  # the DICOM JSON of wadors: instances
    from loadstone_wado import decode_pool       # start() / shutdown() the decode processes
    from loadstone_wado.pixels import available_transfer_syntaxes, decode_frame, PixelDescription
    from loadstone_wado.part10 import read_part10, dataset_cache, dataset_key
    from loadstone_wado.metadata import modules_from_dataset, modules_from_dicom_json
    from loadstone_wado.wadors import configure_batching
    from loadstone_wado.multipart import parse_multipart_related

Layers, each importing only the ones below it (checked by import-linter):
``plugin`` (hooks) > ``schemes`` (loaders, providers, series) > ``net`` |
``part10`` | ``pixels`` > ``dicom`` > ``config``.  ``file_manager``,
``decode_pool``, ``metadata``, ``metadata_manager``, ``multipart``,
``dicomfile``, ``wadouri`` and ``wadors`` are the documented names of modules
that live in those layers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loadstone.toolkit import lazy_exports

from . import config

if TYPE_CHECKING:
    from .dicom import modules_from_dataset, modules_from_dicom_json
    from .net import parse_multipart_related
    from .part10 import dataset_cache, dataset_key, read_part10
    from .pixels import (
        PixelDescription,
        available_transfer_syntaxes,
        decode_frame,
        image_from_dataset,
        image_from_frame,
    )
    from .schemes.dicomfile import load_dicomfile
    from .schemes.series import MultipleSeriesError
    from .schemes.wadors import load_wadors
    from .schemes.wadouri import load_wadouri

__version__ = "0.1.0"

__all__ = [
    "__version__",
    "config",
    "load_dicomfile",
    "load_wadouri",
    "load_wadors",
    "MultipleSeriesError",
    "read_part10",
    "dataset_cache",
    "dataset_key",
    "PixelDescription",
    "decode_frame",
    "image_from_frame",
    "image_from_dataset",
    "available_transfer_syntaxes",
    "modules_from_dataset",
    "modules_from_dicom_json",
    "parse_multipart_related",
]

# Names imported on first access (they pull in pydicom, numpy and the load machinery).
_LAZY = {
    "load_dicomfile": ".schemes.dicomfile",
    "load_wadouri": ".schemes.wadouri",
    "load_wadors": ".schemes.wadors",
    "MultipleSeriesError": ".schemes.series",
    "read_part10": ".part10",
    "dataset_cache": ".part10",
    "dataset_key": ".part10",
    "PixelDescription": ".pixels",
    "decode_frame": ".pixels",
    "image_from_frame": ".pixels",
    "image_from_dataset": ".pixels",
    "available_transfer_syntaxes": ".pixels",
    "modules_from_dataset": ".dicom",
    "modules_from_dicom_json": ".dicom",
    "parse_multipart_related": ".net",
}
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)

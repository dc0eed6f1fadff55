"""loadstone-wado: DICOM image loaders for loadstone.

Schemes (registered through the ``loadstone`` entry point ``wado``):

* ``dicomfile:`` — a Part 10 file on disk (``dicomfile:/data/ct/1.dcm``,
  ``?frame=N`` for multi-frame) or one handed to :mod:`.file_manager`
  (``dicomfile:3``);
* ``wadouri:`` / ``dicomweb:`` — WADO-URI;
* ``wadors:`` — WADO-RS frames.

The public API, by module (each imported on first use; importing this
package costs no more than its settings)::

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

from . import config

__version__ = "0.1.0"

__all__ = ["__version__", "config"]

"""loadstone-wado: DICOM image loaders for loadstone.

Schemes (registered through the ``loadstone`` entry point ``wado``):

* ``dicomfile:`` — a Part 10 file on disk (``dicomfile:/data/ct/1.dcm``,
  ``?frame=N`` for multi-frame) or one handed to :mod:`.file_manager`
  (``dicomfile:3``);
* ``wadouri:`` / ``dicomweb:`` — WADO-URI;
* ``wadors:`` — WADO-RS frames.

Importing this package is cheap: the modules (and pydicom) load on first use.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]

"""Old home of the ``wadouri:`` / ``dicomweb:`` loader; it lives in :mod:`loadstone_wado.schemes.wadouri`."""

from __future__ import annotations

from .schemes.wadouri import SCHEMES, WadoUriRef, load_wadouri, parse_wadouri_id

__all__ = ["WadoUriRef", "load_wadouri", "parse_wadouri_id", "SCHEMES"]

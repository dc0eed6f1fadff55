"""DICOMweb over :mod:`loadstone.http`: what the ``wadors:`` loader fetches, and how.

* :mod:`.ids` — what a ``wadors:`` id names (:class:`WadorsRef`) and the URLs derived from it;
* :mod:`.multipart` — ``multipart/related`` bodies as zero-copy parts;
* :mod:`.frames` — frame requests, batched among concurrent loads of one instance;
* :mod:`.metadata_store` — instances' DICOM JSON, registered or fetched once.
"""

from __future__ import annotations

from .ids import WadorsRef, parse_wadors_ref
from .multipart import Part, parse_media_type, parse_multipart_related

__all__ = ["WadorsRef", "parse_wadors_ref", "Part", "parse_media_type", "parse_multipart_related"]

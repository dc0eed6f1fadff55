"""Old home of the multipart parser; it lives in :mod:`loadstone_wado.net.multipart`."""

from __future__ import annotations

from .net.multipart import DEFAULT_TRANSFER_SYNTAXES, Part, parse_media_type, parse_multipart_related

__all__ = ["DEFAULT_TRANSFER_SYNTAXES", "Part", "parse_media_type", "parse_multipart_related"]

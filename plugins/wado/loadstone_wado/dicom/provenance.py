"""What a parsed Dataset remembers of where it came from, kept in its ``__dict__``.

:mod:`loadstone_wado.part10` writes it when it parses an object; the dataset
cache counts the size, ``dicomfile:`` compares the file signature, and the
pixel path reads deferred Pixel Data straight out of the source bytes.
"""

from __future__ import annotations

import mmap
from typing import Any

from pydicom.dataset import Dataset

__all__ = [
    "NBYTES_ATTRIBUTE",
    "SOURCE_ATTRIBUTE",
    "SIGNATURE_ATTRIBUTE",
    "Source",
    "remember",
    "source_of",
    "signature_of",
    "nbytes_of",
]

#: Bytes the parsed object occupied (its file or body size).
NBYTES_ATTRIBUTE = "_loadstone_nbytes"
#: The bytes the object was parsed from: large values (Pixel Data) are left unread by the
#: parser (deferred) and taken from here as zero-copy views.
SOURCE_ATTRIBUTE = "_loadstone_source"
#: (mtime_ns, size) of a file when it was read, to notice a file replaced since.
SIGNATURE_ATTRIBUTE = "_loadstone_signature"

Source = bytes | bytearray | memoryview | mmap.mmap


def remember(ds: Dataset, *, source: Source | None = None, nbytes: int | None = None,
             signature: tuple[int, int] | None = None) -> None:
    """Record what is known of ``ds``'s origin (only the values given)."""
    values: dict[str, Any] = {SOURCE_ATTRIBUTE: source, NBYTES_ATTRIBUTE: nbytes,
                              SIGNATURE_ATTRIBUTE: signature}
    for name, value in values.items():
        if value is not None:
            ds.__dict__[name] = value


def source_of(ds: Dataset) -> Source | None:
    """The bytes ``ds`` was parsed from, when its large values were deferred."""
    source: Source | None = ds.__dict__.get(SOURCE_ATTRIBUTE)
    return source


def signature_of(ds: Dataset) -> tuple[int, int] | None:
    """The (mtime_ns, size) of the file ``ds`` was read from, or None."""
    signature: tuple[int, int] | None = ds.__dict__.get(SIGNATURE_ATTRIBUTE)
    return signature


def nbytes_of(ds: Dataset) -> int | None:
    """The size of what ``ds`` was parsed from, when known."""
    known = ds.__dict__.get(NBYTES_ATTRIBUTE)
    return known if isinstance(known, int) else None

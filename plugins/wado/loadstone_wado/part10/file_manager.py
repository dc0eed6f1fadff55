"""Files handed over in memory or by path, loaded as ``dicomfile:N`` (Cornerstone's fileManager).

An application that has DICOM bytes (an upload, a zip member, a file
object) or a path it chose adds it here and gets an image id back::

    from loadstone_wado import file_manager
    image_id = file_manager.add(uploaded_bytes)        # "dicomfile:0"
    image = loadstone.load_and_cache_image(image_id).result()
    file_manager.remove(image_id)

Indices are never reused, even after :func:`purge`, so a stale id in the
image cache can never show another file's pixels.  Paths added here obey
the configured root folder like any ``dicomfile:`` path.
"""

from __future__ import annotations

import itertools
import os
import threading
from typing import BinaryIO

from loadstone.toolkit import is_ascii_int

from .cache import dataset_cache

__all__ = ["add", "get", "remove", "purge", "count", "index_of"]

_lock = threading.Lock()
_files: dict[int, bytes | str] = {}
_counter = itertools.count()

Entry = bytes | str


def add(source: bytes | bytearray | memoryview | str | os.PathLike[str] | BinaryIO) -> str:
    """Keep ``source`` (bytes, a path, or a binary file object, read now) and return its image id."""
    entry: Entry
    if isinstance(source, (bytes, bytearray, memoryview)):
        entry = bytes(source)
    elif isinstance(source, (str, os.PathLike)):
        entry = os.fspath(source)
        if not isinstance(entry, str):
            raise TypeError("file_manager.add takes str paths, not bytes paths")
    elif hasattr(source, "read"):
        data = source.read()
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError("file_manager.add needs a binary file object (read() returned text)")
        entry = bytes(data)
    else:
        raise TypeError(f"file_manager.add takes bytes, a path or a binary file object, "
                        f"not {type(source).__name__}")
    with _lock:
        index = next(_counter)
        _files[index] = entry
    return f"dicomfile:{index}"


def index_of(image_id_or_index: str | int) -> int:
    """The index in ``dicomfile:N`` (``?frame=`` ignored), or of an int; ValueError otherwise."""
    if isinstance(image_id_or_index, bool):
        raise ValueError("a file-manager index is an int or a 'dicomfile:N' id")
    if isinstance(image_id_or_index, int):
        return image_id_or_index
    text = str(image_id_or_index)
    if text[:10].lower() == "dicomfile:":
        text = text[10:]
    text = text.split("?", 1)[0]
    if not is_ascii_int(text):
        raise ValueError(f"{image_id_or_index!r} is not a file-manager id ('dicomfile:N')")
    return int(text)


def get(image_id_or_index: str | int) -> Entry | None:
    """The bytes or path kept under this id or index, or None."""
    with _lock:
        return _files.get(index_of(image_id_or_index))


def remove(image_id_or_index: str | int) -> bool:
    """Forget one file (and its parsed dataset); True if it was there."""
    index = index_of(image_id_or_index)
    with _lock:
        found = _files.pop(index, None) is not None
    if found:
        dataset_cache.remove(f"dicomfile:#{index}")
    return found


def purge() -> None:
    """Forget every file (and their parsed datasets); indices keep counting up."""
    with _lock:
        indices = list(_files)
        _files.clear()
    for index in indices:
        dataset_cache.remove(f"dicomfile:#{index}")


def count() -> int:
    """How many files are kept."""
    with _lock:
        return len(_files)

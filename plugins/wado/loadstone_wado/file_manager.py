"""Old home of the file manager; it lives in :mod:`loadstone_wado.part10.file_manager`."""

from __future__ import annotations

from .part10.file_manager import add, count, get, index_of, purge, remove

__all__ = ["add", "get", "remove", "purge", "count", "index_of"]

"""Metadata providers: ``(module, image_id) -> object | None``, asked by priority."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

from .toolkit.names import check_name

__all__ = ["MetadataProvider", "MetadataRegistry", "MODULES"]

MetadataProvider = Callable[[str, str], Any]

MODULES = (
    "imagePlaneModule",
    "imagePixelModule",
    "generalSeriesModule",
    "generalStudyModule",
    "generalImageModule",
    "patientModule",
    "voiLutModule",
    "modalityLutModule",
    "sopCommonModule",
    "multiframeModule",
    "transferSyntax",
    "dataset",  # the whole header: a pydicom Dataset (Part 10) or DICOM JSON (WADO-RS)
)

_log = logging.getLogger("loadstone.metadata")


class MetadataRegistry:
    """Providers sorted by priority (higher first; equal priorities in insertion order)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._providers: tuple[tuple[int, int, MetadataProvider], ...] = ()
        self._seq = 0
        self._prepare: Callable[[str], None] | None = None
        self._known: set[str] = set(MODULES)

    def declare_module(self, module: str) -> None:
        """Make a module name known (a plugin's own metadata module)."""
        self._known.add(module)

    def known_modules(self) -> list[str]:
        """The metadata module names loadstone and its plugins answer."""
        return sorted(self._known)

    def set_preparer(self, prepare: Callable[[str], None] | None) -> None:
        """``prepare(image_id)`` runs before providers are asked about an id (plugin discovery)."""
        self._prepare = prepare

    def add_provider(self, provider: MetadataProvider, priority: int = 0) -> None:
        """Register ``provider``; re-adding one changes its priority."""
        if not callable(provider):
            raise TypeError("a metadata provider must be callable (module, image_id) -> object | None")
        with self._lock:
            kept = [entry for entry in self._providers if entry[2] is not provider]
            self._seq += 1
            kept.append((int(priority), self._seq, provider))
            kept.sort(key=lambda entry: (-entry[0], entry[1]))
            self._providers = tuple(kept)

    def remove_provider(self, provider: MetadataProvider) -> bool:
        """Unregister ``provider``; False if it was not registered."""
        with self._lock:
            kept = tuple(entry for entry in self._providers if entry[2] is not provider)
            removed = len(kept) != len(self._providers)
            self._providers = kept
        return removed

    def providers(self) -> Iterator[tuple[MetadataProvider, int]]:
        """The providers in the order they are asked, with their priorities (every plugin's)."""
        prepare = self._prepare
        if prepare is not None:
            prepare("")
        for priority, _, provider in self._providers:
            yield provider, priority

    def get(self, module: str, image_id: str) -> Any:
        """The first non-None answer for ``module`` of ``image_id``, else None.

        A provider that raises is logged and skipped: metadata is advisory.
        A module name that looks like a typo of a known one
        (``imagePlaneModul``) is a ``ValueError`` with a suggestion.
        """
        if module not in self._known:
            check_name(module, self._known, "metadata module")
        prepare = self._prepare
        if prepare is not None:
            prepare(image_id)
        for _, _, provider in self._providers:
            try:
                answer = provider(module, image_id)
            except Exception:
                _log.warning("metadata provider %r raised for %s of %r", provider, module, image_id,
                             exc_info=True)
                continue
            if answer is not None:
                return answer
        return None

    __call__ = get

    def clear(self) -> None:
        """Remove every provider."""
        with self._lock:
            self._providers = ()

    def _snapshot(self) -> tuple[tuple[int, int, MetadataProvider], ...]:
        """The registrations as they are, without discovering plugins (for :mod:`loadstone.testing`)."""
        return self._providers

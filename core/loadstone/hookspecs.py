"""The hooks a loadstone plugin implements (all optional).

A plugin is a module named by an entry point in group ``loadstone``; it marks
its implementations with :data:`loadstone.hookimpl`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pluggy

__all__ = ["hookspec", "hookimpl", "PROJECT_NAME", "LoadstoneHookSpecs"]

PROJECT_NAME = "loadstone"
hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


class LoadstoneHookSpecs:
    """Hook specifications; pluggy checks implementations against these signatures."""

    @hookspec
    def loadstone_image_loaders(self) -> Mapping[str, Any]:  # type: ignore[empty-body]
        """Return ``{scheme: ImageLoader}`` for the schemes this plugin loads."""

    @hookspec
    def loadstone_metadata_providers(self) -> Iterable[tuple[Any, int]]:  # type: ignore[empty-body]
        """Return ``(provider, priority)`` pairs to add to ``loadstone.metadata``."""

    @hookspec(firstresult=True)
    def loadstone_series_image_ids(self, series_id: str) -> list[str] | None:
        """Expand ``series_id`` into ordered image ids, or None if not this plugin's."""

    @hookspec
    def loadstone_plugin_details(self) -> Mapping[str, str]:  # type: ignore[empty-body]
        """Extra facts for ``loadstone plugins`` (e.g. ``{"transfer syntaxes": "…"}``)."""

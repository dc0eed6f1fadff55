"""The hooks a loadstone plugin implements (all optional).

A plugin is a module named by an entry point in group ``loadstone``; it marks
its implementations with :data:`loadstone.hookimpl`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import argparse

    from .config import PluginConfig

# Annotations only: ``loadstone.fetching.FetchSpec`` / ``FetchRecord`` and
# ``loadstone.series.SeriesInfo`` (those modules sit above the plugin machinery).
FetchSpec = Any
FetchRecord = Any
SeriesInfo = Any

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
    def loadstone_series_image_ids(self, series_id: str, options: Mapping[str, Any]) -> list[str] | None:
        """Expand ``series_id`` into ordered image ids, or None if not this plugin's.

        ``options`` are the caller's load options (``headers``, ``before_send``…),
        for plugins that fetch to expand (a DICOMweb series' metadata); an
        implementation may leave the argument out.
        """

    @hookspec
    def loadstone_plugin_details(self) -> Mapping[str, str]:  # type: ignore[empty-body]
        """Extra facts for ``loadstone plugins`` (e.g. ``{"transfer syntaxes": "…"}``)."""

    @hookspec(firstresult=True)
    def loadstone_list_series(self, location: str, recursive: bool) -> list[SeriesInfo] | None:
        """The series at ``location`` (a folder, DICOMDIR, study…), or None if not this plugin's."""

    @hookspec
    def loadstone_plugin_config(self) -> PluginConfig[Any] | None:
        """The plugin's :class:`loadstone.config.PluginConfig` (for ``loadstone --set name.key=value``)."""

    @hookspec
    def loadstone_cli_options(self, command: str, parser: argparse.ArgumentParser) -> None:
        """Add options to the parser of ``loadstone COMMAND`` (e.g. ``fetch --scheduler``)."""

    @hookspec(firstresult=True)
    def loadstone_fetch(
        self, image_ids: Sequence[str], spec: FetchSpec, args: argparse.Namespace,
        report: Callable[[FetchRecord], None],
    ) -> bool | None:
        """Run ``loadstone fetch`` yourself when ``args`` ask for it (e.g. ``--scheduler``).

        Write each image with :func:`loadstone.fetching.fetch_one` (or the
        same files), call ``report(record)`` on the calling thread as each
        finishes, in any order, and return True; return None to leave the
        fetch to the next plugin or to the core.
        """

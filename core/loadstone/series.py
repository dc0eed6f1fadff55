"""What a location holds: the series in a folder, a DICOMDIR or a study, listed before loading any.

A folder of DICOM files may hold several series; expanding it blindly would
interleave them.  Plugins answer :func:`list_series` through the
``loadstone_list_series`` hook, and each :class:`SeriesInfo` carries the
series id that picks that one series (``dicomfile:/data/mixed?series=<UID>``).
"""

from __future__ import annotations

from dataclasses import dataclass

from . import _api
from .errors import UnknownSchemeError

__all__ = ["SeriesInfo", "list_series"]


@dataclass(frozen=True)
class SeriesInfo:
    """One series found at a location."""

    #: The id to expand it with ``series_image_ids`` / ``load_volume`` / ``fetch --series``.
    series_id: str
    series_instance_uid: str | None
    description: str | None
    modality: str | None
    #: Images in it (frames count one each).
    count: int
    #: Where it lies (its folder, or a URL).
    location: str | None = None

    def describe(self) -> str:
        """One line: UID, modality, description and count."""
        parts = [self.series_instance_uid or "(no Series Instance UID)", self.modality or "-",
                 repr(self.description) if self.description else "-", f"{self.count} image(s)"]
        return "  ".join(parts)


def list_series(location: str, recursive: bool = False) -> list[SeriesInfo]:
    """The series at ``location`` (a folder, a DICOMDIR, a study URL…), as the plugin that knows it says.

    ``recursive`` also looks into subfolders.  Raises
    :class:`UnknownSchemeError` when no plugin knows the location.
    """
    answer = _api.plugin_hooks().loadstone_list_series(location=location, recursive=recursive)
    if answer is None:
        if "dicomfile" in _api.scheme_distributions():
            hint = ("locations are folders, DICOMDIR files and the like; a series id is expanded with "
                    "loadstone.series_image_ids (loadstone fetch --series)")
        else:
            hint = "a DICOM folder or DICOMDIR needs loadstone-wado: pip install loadstone-wado"
        raise UnknownSchemeError(f"no installed plugin lists the series of {location!r}; {hint}",
                                 image_id=location)
    return list(answer)

"""What a ``wadors:`` id names, and the DICOMweb URLs derived from it.

Why a module: the loader, the metadata manager and the series expansion
must agree on how an id maps to its instance (the key metadata is stored
under) and to the URLs asked for, including ids whose URL carries a query
string (signed URLs, tokens), which must follow every derived URL.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from loadstone.errors import InvalidImageError
from loadstone.toolkit import close_match, parse_int

__all__ = ["WadorsRef", "parse_wadors_ref", "strip_scheme"]

_PATH = re.compile(
    r"^(?P<root>.+)/studies/(?P<study>[^/?#]+)/series/(?P<series>[^/?#]+)"
    r"(?:/instances/(?P<instance>[^/?#]+)(?:/frames/(?P<frames>[^/?#]*))?)?/?$"
)


def strip_scheme(image_id: str, schemes: Iterable[str] = ("wadors",)) -> str:
    """``image_id`` without a leading ``scheme:`` (matched case-insensitively)."""
    head, colon, rest = image_id.partition(":")
    if colon and head.lower() in schemes:
        return rest
    return image_id


@dataclass(frozen=True)
class WadorsRef:
    """A series, instance or frame of a DICOMweb server.

    ``root`` is the service root (``http://host/dicom-web``), ``query`` the
    id's query string with its ``?`` (or ``""``), kept on every URL built.
    """

    root: str
    study: str
    series: str
    instance: str | None = None
    frame: int | None = None
    query: str = ""

    @property
    def series_url(self) -> str:
        """``…/studies/S/series/E`` without the query."""
        return f"{self.root}/studies/{self.study}/series/{self.series}"

    @property
    def instance_url(self) -> str:
        """``…/instances/I`` without the query: the key metadata is stored under."""
        if self.instance is None:
            raise ValueError(f"{self.series_url} names a series, not an instance")
        return f"{self.series_url}/instances/{self.instance}"

    def frames_url(self, frames: Iterable[int]) -> str:
        """The URL that retrieves ``frames`` of this instance in one response."""
        return f"{self.instance_url}/frames/{','.join(str(f) for f in frames)}{self.query}"

    def metadata_url(self) -> str:
        """The instance's ``/metadata`` (or the series' if this names a series)."""
        base = self.series_url if self.instance is None else self.instance_url
        return f"{base}/metadata{self.query}"

    def frame_id(self, instance: str, frame: int, scheme: str = "wadors") -> str:
        """The image id of ``frame`` of ``instance`` in this ref's series."""
        return f"{scheme}:{self.series_url}/instances/{instance}/frames/{frame}{self.query}"

    def with_instance(self, instance: str) -> WadorsRef:
        """The ref of another instance of the same series."""
        return WadorsRef(self.root, self.study, self.series, instance, None, self.query)


def _check_query(query: str, value: str, image_id: str | None) -> None:
    """A ``frame``-like query key is a mistake: the frame of a wadors id is in its path.

    Other keys are the server's (signed URLs, tokens) and go on every request.
    """
    for item in query.split("&"):
        key = item.partition("=")[0]
        if key and close_match(key, ("frame", "frames")) is not None:
            raise InvalidImageError(
                f"the query key {key!r} of {value!r} names no frame: a wadors image id names its frame in "
                "the path, '…/instances/<instance>/frames/<n>' (the query string is sent to the server)",
                image_id=image_id)


def parse_wadors_ref(value: str, *, image_id: str | None = None, need_frame: bool = False) -> WadorsRef:
    """Parse a ``wadors:`` id (or a bare DICOMweb URL) down to series, instance or frame.

    Raises :class:`~loadstone.InvalidImageError` when the URL does not have
    the ``…/studies/S/series/E[/instances/I[/frames/N]]`` shape, when
    ``need_frame`` and no frame is named, or when the frame is not one
    positive integer (frames are 1-based, as in DICOM).
    """
    url = strip_scheme(value)
    base, qmark, query = url.partition("?")
    base = base.split("#", 1)[0]
    match = _PATH.match(base)
    if match is None:
        raise InvalidImageError(
            f"{value!r} is not a WADO-RS URL of the form "
            "'wadors:<root>/studies/<study>/series/<series>/instances/<instance>/frames/<n>'",
            image_id=image_id,
        )
    if query:
        _check_query(query, value, image_id)
    frames = match.group("frames")
    frame: int | None = None
    if frames is not None:
        frame = parse_int(frames, f"the frame of {value!r} (an image id names one frame number, 1-based)",
                          minimum=1, image_id=image_id)
    if need_frame and frame is None:
        raise InvalidImageError(
            f"{value!r} names no frame: a wadors image id ends in '/instances/<instance>/frames/<n>'",
            image_id=image_id,
        )
    return WadorsRef(
        root=match.group("root"),
        study=match.group("study"),
        series=match.group("series"),
        instance=match.group("instance"),
        frame=frame,
        query=qmark + query if query else "",
    )

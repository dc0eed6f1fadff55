"""``wadouri:`` / ``dicomweb:`` image ids: a whole Part 10 object over HTTP.

An id is the object's URL after the scheme, with an optional 1-based
``frame`` parameter for multi-frame objects, as in cornerstone::

    wadouri:http://host/wado?requestType=WADO&studyUID=…&seriesUID=…&objectUID=…&contentType=application%2Fdicom&frame=2

The object is fetched once and shared by all its frames: it is parsed into
:data:`.part10.dataset_cache` under the URL without its ``frame`` parameter
(the cache counts its bytes against a budget), so loading 30 frames of one
instance makes one request.  Concurrent loads of frames of one object share
the one fetch.

Options (besides loadstone's own): ``headers``, ``before_send``,
``http_client``, ``max_bytes`` — see :func:`loadstone.http.fetch`.  The dataset cache
is keyed by URL alone, as in cornerstone: credentials are checked by the
server on the first fetch only.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydicom.dataset import Dataset

from loadstone import Image, http, image_loader
from loadstone.errors import InvalidImageError
from loadstone.toolkit import HTTP_LOAD_OPTIONS, close_match, parse_int

from ..dicom.attributes import DatasetAttributes
from ..net.ids import strip_scheme
from ..part10.cache import dataset_cache
from ..part10.ids import dataset_key
from ..part10.reader import read_part10
from ..pixels.image import image_from_dataset

__all__ = ["WadoUriRef", "load_wadouri", "parse_wadouri_id", "SCHEMES"]

SCHEMES = ("wadouri", "dicomweb")
#: The parameters of WADO-URI requests (PS3.18 §9), sent to the server as they are.
WADO_URI_KEYS = ("requestType", "studyUID", "seriesUID", "objectUID", "contentType", "charset", "anonymize",
                 "annotation", "rows", "columns", "region", "windowCenter", "windowWidth", "frameNumber",
                 "imageQuality", "presentationUID", "presentationSeriesUID", "transferSyntax")
#: The one key that is loadstone's own (removed before the request): the 1-based frame.
_KNOWN_KEYS = (*WADO_URI_KEYS, "frame")

# Characters a query may carry literally (RFC 3986: unreserved, and the pchars "/", ":", "@").
_LITERAL_IN_QUERY = frozenset(string.ascii_letters + string.digits + "-._~/:@")
_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")


@dataclass(frozen=True)
class WadoUriRef:
    """What a ``wadouri:`` id names.

    ``url`` is what is fetched: the id's URL without its ``frame`` parameter
    (other parameters keep their order; see :func:`parse_wadouri_id` for
    the one change to their encoding).  ``frame`` is 1-based.
    ``cache_key`` is the dataset cache key shared by every frame of the
    object (:func:`loadstone_wado.part10.dataset_key`, which the metadata provider uses too).
    """

    url: str
    frame: int
    cache_key: str


def parse_wadouri_id(image_id: str) -> WadoUriRef:
    """Split a ``wadouri:``/``dicomweb:`` id into the URL to fetch and the frame.

    The ``frame`` query parameter is removed from the URL.  Percent-escapes
    of characters a query may carry literally (letters, digits, ``-._~/:@``)
    are unescaped: they mean the same to a conforming server, and Orthanc's
    WADO-URI does not unescape its arguments, so the usual
    ``contentType=application%2Fdicom`` would otherwise be refused.  Raises
    :class:`~loadstone.InvalidImageError` for a missing URL, a frame that is
    not a positive integer, or a ``frame`` given twice.
    """
    url = strip_scheme(image_id, SCHEMES).strip()
    if not url:
        raise InvalidImageError(f"{image_id!r} has no URL after its scheme", image_id=image_id)
    base = url.split("#", 1)[0]  # a fragment is never sent
    path, qmark, query = base.partition("?")
    frame = 1
    kept: list[str] = []
    frames_seen = 0
    if qmark:
        for item in query.split("&"):
            name, _, value = item.partition("=")
            if name != "frame":
                _check_key(name, image_id)
                kept.append(item)
                continue
            frames_seen += 1
            frame = parse_int(value, f"the frame in {image_id!r} (frames are 1-based)", minimum=1,
                              image_id=image_id)
    if frames_seen == 0 and any(item.partition("=")[0] == "frameNumber" for item in kept):
        raise InvalidImageError(
            "frameNumber= asks a WADO-URI server to render one frame; the frame loadstone decodes from the "
            "DICOM object is chosen with &frame=N (1-based)", image_id=image_id)
    if frames_seen > 1:
        raise InvalidImageError(f"{image_id!r} names its frame more than once", image_id=image_id)
    clean = path + ("?" + _unescape_literals("&".join(kept)) if any(kept) else "")
    return WadoUriRef(url=clean, frame=frame, cache_key=dataset_key(image_id) or f"wadouri:{clean}")


def _check_key(name: str, image_id: str) -> None:
    """A near miss of a WADO-URI parameter or of ``frame`` (``fram``, ``studyUid``) is ignored: refuse it."""
    if not name or name in _KNOWN_KEYS:
        return
    match = close_match(name, _KNOWN_KEYS)
    if match is not None:
        whose = "loadstone's frame number (1-based)" if match == "frame" else "a WADO-URI parameter"
        raise InvalidImageError(
            f"unknown query key {name!r} in a wadouri: id: did you mean {match!r} ({whose})? A misspelt key "
            "is ignored by the server", image_id=image_id)


def _unescape_literals(query: str) -> str:
    def replace(match: re.Match[str]) -> str:
        char = chr(int(match.group(1), 16))
        return char if char in _LITERAL_IN_QUERY else match.group(0)

    return _PERCENT.sub(replace, query)


@image_loader(options=HTTP_LOAD_OPTIONS)
def load_wadouri(image_id: str, options: Mapping[str, Any]) -> Image:
    """The ``wadouri:``/``dicomweb:`` loader: fetch the object once, decode the frame (on a worker thread)."""
    ref = parse_wadouri_id(image_id)

    def load() -> Dataset:
        response = http.fetch(ref.url, options)
        return read_part10(response.content, image_id=image_id)

    dataset = dataset_cache.get_or_load(ref.cache_key, load)
    frames = DatasetAttributes(dataset).number_of_frames()
    if ref.frame > frames:  # the object is fine (and stays cached): the id is wrong
        raise InvalidImageError(
            f"frame {ref.frame} is past the end: {ref.url} has {frames} frame(s)", image_id=image_id
        )
    try:
        return image_from_dataset(image_id, dataset, ref.frame)
    except InvalidImageError:
        # Bad pixel data (e.g. truncated): do not keep serving it; the next load fetches again.
        dataset_cache.remove(ref.cache_key)
        raise

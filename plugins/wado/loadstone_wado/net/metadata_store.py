"""The DICOM JSON of ``wadors:`` instances, as cornerstone's ``wadors.metaDataManager``.

Why: a WADO-RS frame is bare pixel bytes; how to decode it (rows, bits,
photometric interpretation, rescale…) is in the instance's metadata, which
an application often already has from its own QIDO/``/metadata`` calls and
registers with :func:`add`.  Beyond cornerstone, when nothing was registered
the loader fetches it by itself (:func:`fetch`: the instance's
``/metadata``), and :func:`fetch_series` fills the manager for every
instance of a series with one request.

Entries are keyed by instance (``…/studies/S/series/E/instances/I``, without
the frame and without a query string), so every frame of an instance shares
one entry; any ``wadors:`` id or bare DICOMweb URL naming the instance or
one of its frames can be used as the key.  Nothing is evicted: call
:func:`remove` or :func:`purge` (the JSON of a 1000-instance series is a few
MB).  Thread-safe; concurrent fetches of one URL are made once.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Hashable, Mapping
from typing import Any

from loadstone import http
from loadstone.errors import InvalidImageError
from loadstone.toolkit import SingleFlight

from ..dicom.attributes import JsonAttributes, json_tag
from .ids import WadorsRef, parse_wadors_ref

__all__ = [
    "InstanceMetadata",
    "add",
    "get",
    "remove",
    "purge",
    "fetch",
    "fetch_series",
    "entry",
    "instance_count",
]

_JSON_ACCEPT = "application/dicom+json, application/json;q=0.9"
_TRANSFER_SYNTAX = json_tag("TransferSyntaxUID") or "00020010"


class InstanceMetadata:
    """One instance's DICOM JSON, plus what loading learnt about it.

    ``transfer_syntax_uid`` is filled from the first frame received (the
    DICOM JSON of most servers does not carry (0002,0010)).  ``cache`` holds
    values derived from the JSON (e.g. the pixel description) so frames of
    one instance compute them once.
    """

    __slots__ = ("attrs", "transfer_syntax_uid", "cache", "_computing")

    def __init__(self, attrs: Mapping[str, Any]) -> None:
        self.attrs: Mapping[str, Any] = attrs
        self.transfer_syntax_uid: str | None = JsonAttributes(attrs).text("TransferSyntaxUID")
        self.cache: dict[str, Any] = {}
        self._computing: SingleFlight[str, Any] = SingleFlight()

    def derived(self, name: str, compute: Callable[[], Any]) -> Any:
        """``compute()`` once per entry (concurrent callers share it), then the remembered value."""
        try:
            return self.cache[name]
        except KeyError:
            pass

        def remember() -> Any:
            if name not in self.cache:  # computed by a caller that finished just before
                self.cache[name] = compute()
            return self.cache[name]

        return self._computing.do(name, remember)

    def metadata_attrs(self) -> Mapping[str, Any]:
        """The JSON with the learnt transfer syntax added, for metadata providers."""
        syntax = self.transfer_syntax_uid
        if syntax is None or _TRANSFER_SYNTAX in self.attrs:
            return self.attrs
        merged = dict(self.attrs)
        merged[_TRANSFER_SYNTAX] = {"vr": "UI", "Value": [syntax]}
        return merged


_lock = threading.Lock()
_entries: dict[str, InstanceMetadata] = {}
#: One fetch per (URL, credentials) at a time, shared by the loads that ask meanwhile.
_fetches: SingleFlight[tuple[str, Hashable], Any] = SingleFlight()


def _key(image_id: str) -> str:
    ref = parse_wadors_ref(image_id, image_id=image_id)
    if ref.instance is None:
        raise InvalidImageError(f"{image_id!r} names a series, not an instance", image_id=image_id)
    return ref.instance_url


def _check_json(dicom_json: object, what: str) -> Mapping[str, Any]:
    if isinstance(dicom_json, list) and len(dicom_json) == 1:
        dicom_json = dicom_json[0]  # an instance's /metadata answer is a one-item list
    if not isinstance(dicom_json, Mapping):
        raise TypeError(f"{what} must be one instance's DICOM JSON (a mapping of tags), "
                        f"not {type(dicom_json).__name__}")
    return dicom_json


def add(image_id: str, dicom_json: Mapping[str, Any]) -> None:
    """Register the DICOM JSON of the instance ``image_id`` names (any of its frames' ids will do).

    ``dicom_json`` is one instance's JSON (``{"00280010": {"vr": "US", "Value": [512]}, …}``);
    a one-item list, as ``/metadata`` returns, is accepted too.  Replaces
    what was there.
    """
    attrs = _check_json(dicom_json, "dicom_json")
    key = _key(image_id)
    with _lock:
        _entries[key] = InstanceMetadata(attrs)


def get(image_id: str) -> Mapping[str, Any] | None:
    """The registered DICOM JSON of the instance ``image_id`` names, or None (never fetches)."""
    found = entry(image_id)
    return None if found is None else found.attrs


def entry(image_id: str) -> InstanceMetadata | None:
    """The manager's record for the instance of ``image_id`` (None if absent)."""
    try:
        key = _key(image_id)
    except InvalidImageError:
        return None
    return _entries.get(key)


def remove(image_id: str) -> bool:
    """Forget the instance ``image_id`` names; True if it was there."""
    try:
        key = _key(image_id)
    except InvalidImageError:
        return False
    with _lock:
        return _entries.pop(key, None) is not None


def purge() -> None:
    """Forget every instance."""
    with _lock:
        _entries.clear()


def instance_count() -> int:
    """How many instances are registered."""
    return len(_entries)


def fetch(image_id: str, options: Mapping[str, Any] | None = None) -> InstanceMetadata:
    """The record of ``image_id``'s instance, fetching ``…/instances/I/metadata`` if absent.

    ``options`` are the load's (``headers``, ``before_send``, ``http_client``).
    Concurrent calls for one instance (with the same credentials) share one
    request.  Raises typed loadstone errors (``TransportError`` with the
    status, ``InvalidImageError`` for an answer that is not an instance's
    DICOM JSON, ``LoadTimeoutError``/``LoadCancelledError``).
    """
    ref = parse_wadors_ref(image_id, image_id=image_id)
    if ref.instance is None:
        raise InvalidImageError(f"{image_id!r} names a series, not an instance", image_id=image_id)
    key = ref.instance_url
    found = _entries.get(key)
    if found is not None:
        return found
    url = ref.metadata_url()

    def load() -> InstanceMetadata:
        attrs = _fetch_json(url, options, image_id)
        if len(attrs) != 1:
            raise InvalidImageError(
                f"{url} answered {len(attrs)} datasets, expected the metadata of one instance",
                image_id=image_id,
            )
        record = InstanceMetadata(attrs[0])
        with _lock:
            return _entries.setdefault(key, record)

    record: InstanceMetadata = _fetches.do((url, http.share_key(options)), load)
    return record


def fetch_series(series_id: str, options: Mapping[str, Any] | None = None) -> list[Mapping[str, Any]]:
    """Fetch ``…/series/E/metadata`` once and register every instance in it.

    Returns the instances' DICOM JSON in the server's order.  Instances
    already registered keep their entry (what the application added wins).
    """
    ref = parse_wadors_ref(series_id, image_id=series_id)
    series = WadorsRef(ref.root, ref.study, ref.series, None, None, ref.query)
    url = series.metadata_url()

    def load() -> list[Mapping[str, Any]]:
        instances = _fetch_json(url, options, series_id)
        with _lock:
            for attrs in instances:
                uid = JsonAttributes(attrs).text("SOPInstanceUID")
                if uid is None:
                    raise InvalidImageError(
                        f"an instance in {url} has no SOP Instance UID (0008,0018)", image_id=series_id
                    )
                _entries.setdefault(series.with_instance(uid).instance_url, InstanceMetadata(attrs))
        return instances

    instances: list[Mapping[str, Any]] = _fetches.do((url, http.share_key(options)), load)
    return instances


def _fetch_json(url: str, options: Mapping[str, Any] | None, image_id: str) -> list[Mapping[str, Any]]:
    response = http.fetch(url, options, accept=_JSON_ACCEPT)
    try:
        document = json.loads(response.content)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise InvalidImageError(f"{url} did not answer JSON: {exc}", image_id=image_id) from exc
    if isinstance(document, Mapping):
        document = [document]
    if not isinstance(document, list) or not all(isinstance(item, Mapping) for item in document):
        raise InvalidImageError(f"{url} did not answer a list of DICOM JSON datasets", image_id=image_id)
    return document

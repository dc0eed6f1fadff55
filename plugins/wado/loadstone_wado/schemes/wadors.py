"""``wadors:`` image ids: frames from a DICOMweb (WADO-RS) server.

An id is the frame's URL after the scheme, as in cornerstone::

    wadors:http://host/dicom-web/studies/S/series/E/instances/I/frames/1

How to decode a frame comes from the instance's DICOM JSON in
:mod:`..net.metadata_store` — registered by the application, or fetched from
the instance's ``/metadata`` on first use.  :func:`series_image_ids` expands
``wadors:…/studies/S/series/E`` (one request for the whole series' metadata)
into one id per frame, ordered in space.  Frames are requested in their
stored transfer syntax and decoded here; concurrent loads of one instance's
frames share requests (see :mod:`..net.frames` for the batching design).

Options (besides loadstone's own): ``headers`` (e.g. ``Authorization``),
``before_send`` (a hook that may edit each request), ``http_client`` (a
:class:`loadstone.http.HttpClient`), ``max_bytes`` (body cap per response).
"""

from __future__ import annotations

import base64
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urljoin

from loadstone import Image, http, image_loader
from loadstone.errors import InvalidImageError
from loadstone.toolkit import HTTP_LOAD_OPTIONS, SlicePosition, order_in_space

from ..dicom.attributes import JsonAttributes
from ..dicom.description import PixelDescription
from ..dicom.modules import modules_from_dicom_json
from ..dicom.syntaxes import EXPLICIT_LE
from ..net import frames as batcher
from ..net import metadata_store
from ..net.ids import WadorsRef, parse_wadors_ref
from ..net.multipart import parse_media_type, parse_multipart_related
from ..pixels.image import image_from_frame
from .metadata import DATASET_MODULE

__all__ = [
    "load_wadors",
    "metadata_provider",
    "series_image_ids",
    "parse_wadors_id",
    "configure_batching",
    "batching",
    "frame_stats",
    "WadorsRef",
]

_PER_FRAME_GROUPS = "52009230"
_NON_URGENT = {"prefetch", "compute", "thumbnail"}
# Attributes the decoder needs as values, which servers may send as BulkDataURIs.
_PALETTE_DATA = ("00281201", "00281202", "00281203", "00281221", "00281222", "00281223")
_BULK_ACCEPT = 'multipart/related; type="application/octet-stream", application/octet-stream;q=0.5'

#: The batching settings in force (mutable; see :func:`configure_batching`).
batching = batcher.settings
#: Request/frame counters, to see what batching did.
frame_stats = batcher.stats


def parse_wadors_id(image_id: str) -> WadorsRef:
    """The series, instance and frame a ``wadors:`` image id names.

    Raises :class:`~loadstone.InvalidImageError` for an id that is not
    ``wadors:<root>/studies/S/series/E/instances/I/frames/N`` with N >= 1.
    """
    return parse_wadors_ref(image_id, image_id=image_id, need_frame=True)


def configure_batching(
    *,
    enabled: bool | None = None,
    max_requests_per_instance: int | None = None,
    max_frames_per_request: int | None = None,
    read_ahead: int | None = None,
    read_ahead_seconds: float | None = None,
    read_ahead_bytes: int | None = None,
) -> batcher.BatchSettings:
    """Change how concurrent frame loads of one instance are merged; returns the settings.

    ``enabled=False`` sends one request per frame (cornerstone's behaviour).
    ``max_requests_per_instance`` (default 1) is how many requests for one
    instance may be in flight before further frames wait and leave together;
    ``max_frames_per_request`` (default 64) caps one batch.  ``read_ahead``
    (default 32; 0 disables) frames past the highest one asked for join a
    ``PREFETCH``/``COMPUTE``/``THUMBNAIL`` batch of a multi-frame instance and
    are kept for up to ``read_ahead_seconds`` (default 10), within
    ``read_ahead_bytes`` (default 256 MiB) in all, for the loads that ask
    for them next.
    """
    if enabled is not None:
        batching.enabled = bool(enabled)
    if max_requests_per_instance is not None:
        if max_requests_per_instance < 1:
            raise ValueError("max_requests_per_instance must be at least 1")
        batching.max_requests_per_instance = int(max_requests_per_instance)
    if max_frames_per_request is not None:
        if max_frames_per_request < 1:
            raise ValueError("max_frames_per_request must be at least 1")
        batching.max_frames_per_request = int(max_frames_per_request)
    if read_ahead is not None:
        if read_ahead < 0:
            raise ValueError("read_ahead must be 0 or more frames")
        batching.read_ahead = int(read_ahead)
    if read_ahead_seconds is not None:
        if read_ahead_seconds <= 0:
            raise ValueError("read_ahead_seconds must be positive")
        batching.read_ahead_seconds = float(read_ahead_seconds)
    if read_ahead_bytes is not None:
        if read_ahead_bytes < 0:
            raise ValueError("read_ahead_bytes must be 0 or more")
        batching.read_ahead_bytes = int(read_ahead_bytes)
    if read_ahead == 0 or read_ahead_bytes == 0:
        batcher.clear_read_ahead()
    return batching


@image_loader(options=HTTP_LOAD_OPTIONS)
def load_wadors(image_id: str, options: Mapping[str, Any]) -> Image:
    """The ``wadors:`` loader: metadata, then the frame (batched), then decode (on a worker thread)."""
    ref = parse_wadors_id(image_id)
    assert ref.frame is not None
    record = metadata_store.fetch(image_id, options)
    # Enhanced multi-frame objects may rescale or space each frame differently.
    per_frame = _PER_FRAME_GROUPS in record.attrs
    description: PixelDescription = record.derived(
        f"pixel_description:{ref.frame}" if per_frame else "pixel_description",
        lambda: _describe(record, ref, image_id, options, ref.frame if per_frame else None),
    )
    frames = description.number_of_frames
    if ref.frame > frames:
        raise InvalidImageError(
            f"frame {ref.frame} is past the end: the instance has {frames} frame(s)", image_id=image_id
        )
    request_type = str(getattr(options.get("request_type"), "value", options.get("request_type") or ""))
    urgent = request_type.lower() not in _NON_URGENT
    frame = batcher.fetch_frame(ref, options, urgent=urgent, frame_count=frames)
    syntax = frame.transfer_syntax_uid or record.transfer_syntax_uid or EXPLICIT_LE
    if record.transfer_syntax_uid is None and frame.transfer_syntax_uid is not None:
        record.transfer_syntax_uid = frame.transfer_syntax_uid
    started = time.perf_counter()
    image = image_from_frame(image_id, frame.data, description, syntax)
    if not image.decode_time_ms:
        image.decode_time_ms = (time.perf_counter() - started) * 1000.0
    return image


def _describe(record: metadata_store.InstanceMetadata, ref: WadorsRef, image_id: str,
              options: Mapping[str, Any], frame: int | None) -> PixelDescription:
    """The pixel description of an instance, bulk-data palettes fetched first."""
    attrs = record.attrs
    if any(_bulk_uri(attrs.get(tag)) for tag in _PALETTE_DATA):
        attrs = _inline_bulk_data(attrs, _PALETTE_DATA, ref, image_id, options)
        record.attrs = attrs
    try:
        return PixelDescription.from_dicom_json(attrs, frame)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise InvalidImageError(f"the metadata of {ref.instance_url} cannot describe its pixels: {exc}",
                                image_id=image_id) from exc


def _bulk_uri(element: object) -> str | None:
    if isinstance(element, Mapping) and "Value" not in element and "InlineBinary" not in element:
        uri = element.get("BulkDataURI")
        return uri if isinstance(uri, str) and uri else None
    return None


def _inline_bulk_data(attrs: Mapping[str, Any], tags: Sequence[str], ref: WadorsRef, image_id: str,
                      options: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``attrs`` with the BulkDataURIs of ``tags`` fetched and made InlineBinary."""
    resolved = dict(attrs)
    for tag in tags:
        element = attrs.get(tag)
        uri = _bulk_uri(element)
        if uri is None:
            continue
        assert isinstance(element, Mapping)
        url = urljoin(ref.instance_url + "/", uri)
        response = http.fetch(url, options, accept=_BULK_ACCEPT)
        content_type = response.headers.get("Content-Type", "")
        if parse_media_type(content_type)[0].startswith("multipart/"):
            parts = parse_multipart_related(response.content, content_type, image_id=image_id, url=url,
                                            status=response.status)
            data = bytes(parts[0].data)
        else:
            data = bytes(response.content)
        inline = base64.b64encode(data).decode("ascii")
        resolved[tag] = {"vr": element.get("vr", "OW"), "InlineBinary": inline}
    return resolved


def metadata_provider(module: str, image_id: str) -> Any:
    """Metadata modules for ``wadors:`` ids from :mod:`..net.metadata_store` (snake_case keys).

    Answers only from what is registered (it never blocks on the network):
    after a load, :func:`series_image_ids` or :func:`loadstone_wado.metadata_manager.add`.
    ``"dataset"`` answers the instance's DICOM JSON itself (with the
    transfer syntax learnt from its frames, and palette bulk data a load
    fetched made inline).
    """
    if image_id[:7].lower() != "wadors:":
        return None
    record = metadata_store.entry(image_id)
    if record is None:
        return None
    try:
        ref = parse_wadors_ref(image_id)
    except InvalidImageError:
        return None
    if module == DATASET_MODULE:
        return record.metadata_attrs()
    return modules_from_dicom_json(module, record.metadata_attrs(), ref.frame or 1)


def series_image_ids(series_id: str, options: Mapping[str, Any] | None = None) -> list[str] | None:
    """One ``wadors:`` id per frame of every instance of a series, ordered in space.

    ``series_id`` is ``wadors:<root>/studies/S/series/E`` (an instance URL
    gives that instance's frames).  Fetches the series' ``/metadata`` once
    and registers every instance with :mod:`..net.metadata_store`.  Instances
    are ordered along the slice normal (Image Position projected on the
    cross product of Image Orientation's row and column vectors), then by
    Instance Number; frames keep their order.  Returns None for ids that are
    not ``wadors:`` (so other plugins may answer).  ``options`` as for loads
    (``headers``, ``before_send``, ``http_client``).
    """
    if not isinstance(series_id, str) or series_id[:7].lower() != "wadors:":
        return None
    ref = parse_wadors_ref(series_id, image_id=series_id)
    if ref.frame is not None:
        return [series_id]
    if ref.instance is not None:
        record = metadata_store.fetch(series_id, options)
        count = JsonAttributes(record.attrs).number_of_frames()
        return [ref.frame_id(ref.instance, n) for n in range(1, count + 1)]
    instances = metadata_store.fetch_series(series_id, options)
    ids: list[str] = []
    for view in order_in_space([JsonAttributes(attrs) for attrs in instances], _slice_position):
        uid = view.text("SOPInstanceUID")
        assert uid is not None  # fetch_series checked
        ids.extend(ref.frame_id(uid, n) for n in range(1, view.number_of_frames() + 1))
    return ids


def _slice_position(view: JsonAttributes) -> SlicePosition:
    """Where an instance lies; ties broken by Instance Number, then SOP Instance UID."""
    tie = (view.number("InstanceNumber", 0.0) or 0.0, view.text("SOPInstanceUID") or "")
    return SlicePosition(view.numbers("ImagePositionPatient"), view.numbers("ImageOrientationPatient"), tie)

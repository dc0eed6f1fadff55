"""Bad input for wadouri: and wadors:, each a typed error that leaves no cache entry; and auth.

Real Orthanc answers (404, 400, 401) and crafted ones from a scripted server
(500, multipart without boundary or cut short, a server that stalls).
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Iterator
from typing import Any, TypeVar

import pytest

import loadstone
from loadstone import InvalidImageError, LoadTimeoutError, TransportError
from loadstone import http as lhttp
from loadstone_wado import metadata_manager, part10, wadors

try:
    from orthanc import (
        FakeServer,
        OrthancServer,
        Reply,
        UploadedFile,
        fake_server,
        multipart_body,
        no_leaked_threads,
        orthanc_auth_server,
        orthanc_server,
        static_server,
        uploaded_testdata,
        with_fresh_uids,
    )
except ImportError:  # tests/wado became a package
    from .orthanc import (  # type: ignore[no-redef]
        FakeServer,
        OrthancServer,
        Reply,
        UploadedFile,
        fake_server,
        multipart_body,
        no_leaked_threads,
        orthanc_auth_server,
        orthanc_server,
        static_server,
        uploaded_testdata,
        with_fresh_uids,
    )

__all__ = ["fake_server", "no_leaked_threads", "orthanc_auth_server", "orthanc_server", "static_server",
           "uploaded_testdata"]

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

E = TypeVar("E", bound=loadstone.LoadstoneError)

SERIES = "/dicom-web/studies/1.2/series/3.4"
INSTANCE = f"{SERIES}/instances/5.6"
PIXELS_2X2 = {
    "00080018": {"vr": "UI", "Value": ["5.6"]},
    "00280002": {"vr": "US", "Value": [1]},
    "00280004": {"vr": "CS", "Value": ["MONOCHROME2"]},
    "00280010": {"vr": "US", "Value": [2]},
    "00280011": {"vr": "US", "Value": [2]},
    "00280100": {"vr": "US", "Value": [8]},
    "00280101": {"vr": "US", "Value": [8]},
    "00280102": {"vr": "US", "Value": [7]},
    "00280103": {"vr": "US", "Value": [0]},
}


@pytest.fixture(autouse=True)
def _fresh_plugin_state() -> Iterator[None]:
    yield
    metadata_manager.purge()
    part10.dataset_cache.purge()


def fails(image_id: str, expected: type[E], *, dataset_kept: bool = False, **options: Any) -> E:
    """Load through the cache; the typed error, with nothing left in either cache.

    ``dataset_kept``: the object itself was fine (the frame number was not), so
    the dataset cache may keep it for the object's other frames.
    """
    load = loadstone.load_and_cache_image(image_id, **options)
    error = load.exception(30)
    assert isinstance(error, expected), f"{image_id}: expected {expected.__name__}, got {error!r}"
    assert error.image_id == image_id
    deadline = time.monotonic() + 2
    while image_id in loadstone.cache and time.monotonic() < deadline:
        time.sleep(0.01)
    assert image_id not in loadstone.cache, "a failed load stayed in loadstone.cache"
    key = part10.dataset_key(image_id)
    if not dataset_kept:
        assert key is None or key not in part10.dataset_cache, "a failed load stayed in the dataset cache"
    return error


# -- Orthanc's own answers ------------------------------------------------------------------------


def test_unknown_objects_are_404(orthanc_server: OrthancServer) -> None:
    error = fails(orthanc_server.wadouri_id("1.2.3", "4.5.6", "7.8.9"), TransportError)
    assert error.status == 404
    error = fails(orthanc_server.wadors_id("1.2.3", "4.5.6", "7.8.9", 1), TransportError)
    assert error.status == 404 and "/metadata" in str(error)
    with pytest.raises(TransportError) as info:
        loadstone.series_image_ids(orthanc_server.wadors_series("1.2.3", "4.5.6"))
    assert info.value.status == 404


def test_frame_zero_or_past_the_end(orthanc_server: OrthancServer,
                                    uploaded_testdata: dict[str, UploadedFile]) -> None:
    item = uploaded_testdata["examples_ybr_color.dcm"]  # 30 frames
    for frame, message in ((0, "1-based"), (31, "past the end")):
        fails(orthanc_server.wadouri_id(item.study, item.series, item.sop, frame), InvalidImageError,
              dataset_kept=frame > 0)
        error = fails(orthanc_server.wadors_id(item.study, item.series, item.sop, frame), InvalidImageError)
        assert message in str(error)


def test_server_400_for_a_frame_the_metadata_promised(orthanc_server: OrthancServer,
                                                      uploaded_testdata: dict[str, UploadedFile]) -> None:
    item = uploaded_testdata["CT_small.dcm"]
    attrs = orthanc_server.get_json(
        f"/dicom-web/studies/{item.study}/series/{item.series}/instances/{item.sop}/metadata")[0]
    attrs["00280008"] = {"vr": "IS", "Value": [5]}  # claims frames Orthanc does not have
    image_id = orthanc_server.wadors_id(item.study, item.series, item.sop, 3)
    metadata_manager.add(image_id, attrs)
    error = fails(image_id, TransportError)
    assert error.status == 400


# -- crafted answers ---------------------------------------------------------------------------------


def serve_metadata(server: FakeServer, attrs: dict[str, Any] = PIXELS_2X2) -> str:
    server.route(f"{INSTANCE}/metadata", Reply(200, {"Content-Type": "application/dicom+json"},
                                               json.dumps([attrs]).encode()))
    return f"wadors:{server.url}{INSTANCE}/frames/1"


def test_wadors_crafted_frame_answer_loads(fake_server: FakeServer) -> None:
    image_id = serve_metadata(fake_server)
    part_type = "application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1"
    body = multipart_body([(b"\x01\x02\x03\x04", part_type)])
    headers = {"Content-Type": "multipart/related; boundary=fake-boundary"}
    fake_server.route(f"{INSTANCE}/frames/", Reply(200, headers, body))
    image = loadstone.load_image(image_id).result(10)
    assert image.pixel_data.tolist() == [[1, 2], [3, 4]]
    assert loadstone.metadata.get("transferSyntax", image_id) is not None


def test_http_500(fake_server: FakeServer) -> None:
    image_id = serve_metadata(fake_server)
    fake_server.route(f"{INSTANCE}/frames/", Reply(500, {"Content-Type": "text/plain"}, b"internal error"))
    assert fails(image_id, TransportError).status == 500
    fake_server.route("/wado", Reply(500, {"Content-Type": "text/plain"}, b"internal error"))
    assert fails(f"wadouri:{fake_server.url}/wado?objectUID=1&frame=1", TransportError).status == 500


def test_http_404_from_a_plain_server(fake_server: FakeServer) -> None:
    assert fails(f"wadouri:{fake_server.url}/nothing/here.dcm", TransportError).status == 404
    assert fails(f"dicomweb:{fake_server.url}/nothing/here.dcm", TransportError).status == 404


@pytest.mark.parametrize("content_type", [
    "multipart/related", 'multipart/related; type="application/octet-stream"'])
def test_multipart_without_boundary(fake_server: FakeServer, content_type: str,
                                    caplog: pytest.LogCaptureFixture) -> None:
    # urllib3 logs the header defect with its traceback; a captured record would keep the
    # connection (through the traceback's frames) alive past the test.
    caplog.set_level(logging.ERROR, logger="urllib3")
    image_id = serve_metadata(fake_server)
    body = multipart_body([(b"\x01\x02\x03\x04", "application/octet-stream")])
    fake_server.route(f"{INSTANCE}/frames/", Reply(200, {"Content-Type": content_type}, body))
    assert "no boundary" in str(fails(image_id, InvalidImageError))


def test_multipart_cut_short(fake_server: FakeServer) -> None:
    image_id = serve_metadata(fake_server)
    body = multipart_body([(b"\x01\x02\x03\x04", "application/octet-stream")])
    headers = {"Content-Type": "multipart/related; boundary=fake-boundary"}
    # A complete HTTP answer whose multipart body is short:
    fake_server.route(f"{INSTANCE}/frames/", Reply(200, headers, body[:-25]))
    assert "cut short" in str(fails(image_id, TransportError))
    fake_server.route(f"{INSTANCE}/frames/", Reply(200, headers, body[:-25], content_length=len(body)))
    fails(image_id, TransportError)  # the connection closes before Content-Length bytes came


def test_wadouri_body_that_is_not_dicom(fake_server: FakeServer) -> None:
    fake_server.route("/wado", Reply(200, {"Content-Type": "image/jpeg"}, b"\xff\xd8\xff\xe0 not dicom"))
    fails(f"wadouri:{fake_server.url}/wado?objectUID=1", InvalidImageError)
    fake_server.route("/wado", Reply(200, {"Content-Type": "application/dicom"}, b""))
    fails(f"wadouri:{fake_server.url}/wado?objectUID=2", InvalidImageError)


def test_wadouri_truncated_object(fake_server: FakeServer,
                                  uploaded_testdata: dict[str, UploadedFile]) -> None:
    data = uploaded_testdata["CT_small.dcm"].data
    fake_server.route("/wado", Reply(200, {"Content-Type": "application/dicom"}, data[: len(data) // 2]))
    fails(f"wadouri:{fake_server.url}/wado?objectUID=1", InvalidImageError)


def stall(server: FakeServer, path: str, content_type: str) -> None:
    server.route(path, Reply(200, {"Content-Type": content_type}, b"\0" * 100_000, stall_after=10))


@pytest.mark.parametrize("scheme", ["wadouri", "wadors"])
def test_stalled_server_times_out_within_the_timeout(fake_server: FakeServer, scheme: str) -> None:
    if scheme == "wadors":
        image_id = serve_metadata(fake_server)
        stall(fake_server, f"{INSTANCE}/frames/", "multipart/related; boundary=x")
    else:
        image_id = f"wadouri:{fake_server.url}/wado?objectUID=1"
        stall(fake_server, "/wado", "application/dicom")
    started = time.monotonic()
    fails(image_id, LoadTimeoutError, timeout=0.5)
    assert time.monotonic() - started < 1.5


def test_stalled_metadata_times_out(fake_server: FakeServer) -> None:
    stall(fake_server, f"{INSTANCE}/metadata", "application/dicom+json")
    started = time.monotonic()
    fails(f"wadors:{fake_server.url}{INSTANCE}/frames/1", LoadTimeoutError, timeout=0.5)
    assert time.monotonic() - started < 1.5


def test_malformed_ids(fake_server: FakeServer) -> None:
    fails("wadors:http://127.0.0.1:9/not/dicomweb", InvalidImageError)
    fails(f"wadors:{fake_server.url}{INSTANCE}", InvalidImageError)
    fails(f"wadors:{fake_server.url}{INSTANCE}/frames/1,2", InvalidImageError)
    fails("wadouri:", InvalidImageError)
    fails(f"wadouri:{fake_server.url}/wado?frame=x", InvalidImageError)


# -- authentication -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def auth_instance(orthanc_auth_server: OrthancServer) -> UploadedFile:
    import pydicom.data

    path = pydicom.data.get_testdata_file("CT_small.dcm", download=False)
    assert path is not None
    with open(path, "rb") as handle:
        data, uids = with_fresh_uids(handle.read())
    orthanc_auth_server.upload(data)
    return UploadedFile("CT_small.dcm", data, uids["StudyInstanceUID"], uids["SeriesInstanceUID"],
                        uids["SOPInstanceUID"], 1, "1.2.840.10008.1.2.1", "MONOCHROME2")


def auth_ids(server: OrthancServer, item: UploadedFile) -> list[str]:
    uids = (item.study, item.series, item.sop)
    return [server.wadouri_id(*uids), server.wadors_id(*uids)]


def test_without_credentials_is_401(orthanc_auth_server: OrthancServer,
                                    auth_instance: UploadedFile) -> None:
    for image_id in auth_ids(orthanc_auth_server, auth_instance):
        assert fails(image_id, TransportError).status == 401
    wrong = {"Authorization": "Basic " + base64.b64encode(b"loadstone:wrong").decode()}
    for image_id in auth_ids(orthanc_auth_server, auth_instance):
        assert fails(image_id, TransportError, headers=wrong).status == 401


def test_credentials_in_the_headers_option(orthanc_auth_server: OrthancServer,
                                           auth_instance: UploadedFile) -> None:
    for image_id in auth_ids(orthanc_auth_server, auth_instance):
        image = loadstone.load_and_cache_image(image_id, headers=orthanc_auth_server.headers).result(30)
        assert image.rows == 128 and image.columns == 128


def test_credentials_from_a_before_send_hook(orthanc_auth_server: OrthancServer,
                                             auth_instance: UploadedFile) -> None:
    seen: list[str] = []

    def sign(request: lhttp.HttpRequest) -> None:
        seen.append(request.url)
        request.headers.update(orthanc_auth_server.headers)

    for image_id in auth_ids(orthanc_auth_server, auth_instance):
        assert loadstone.load_image(image_id, before_send=sign).result(30).rows == 128
    assert any("/wado?" in url for url in seen) and any("/frames/1" in url for url in seen)


def test_credentials_from_the_default_clients_hook(orthanc_auth_server: OrthancServer,
                                                   auth_instance: UploadedFile) -> None:
    async def sign(request: lhttp.HttpRequest) -> None:  # async hooks work too
        request.headers.update(orthanc_auth_server.headers)

    previous = lhttp.set_default_client(lhttp.HttpClient(before_send=sign))
    try:
        for image_id in auth_ids(orthanc_auth_server, auth_instance):
            assert loadstone.load_image(image_id).result(30).rows == 128
        series = orthanc_auth_server.wadors_series(auth_instance.study, auth_instance.series)
        assert wadors.series_image_ids(series) == [auth_ids(orthanc_auth_server, auth_instance)[1]]
    finally:
        client = lhttp.set_default_client(previous)
        if client is not None:
            client.close()

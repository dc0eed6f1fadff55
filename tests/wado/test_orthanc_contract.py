"""loadstone's LoaderContract for wadouri: and wadors:, against a real Orthanc.

The ids depend on the session's Orthanc port, so a class-scoped fixture
fills the contract's class attributes before its checks run; the slow id
points at a scripted server that stalls, for the cancel and timeout checks.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

from loadstone import InvalidImageError, TransportError
from loadstone.testing import LoaderContract
from loadstone_wado import metadata_manager

try:
    from orthanc import (
        FakeServer,
        OrthancServer,
        Reply,
        UploadedFile,
        no_leaked_threads,
        orthanc_server,
        static_server,
        uploaded_testdata,
    )
except ImportError:  # tests/wado became a package
    from .orthanc import (  # type: ignore[no-redef]
        FakeServer,
        OrthancServer,
        Reply,
        UploadedFile,
        no_leaked_threads,
        orthanc_server,
        static_server,
        uploaded_testdata,
    )

__all__ = ["orthanc_server", "uploaded_testdata", "no_leaked_threads", "static_server"]

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

STALLED = "/dicom-web/studies/9/series/9/instances/9"
SAMPLES = ("CT_small.dcm", "MR_small_RLE.dcm", "examples_ybr_color.dcm", "examples_palette.dcm",
           "JPEG2000.dcm", "MR_small_jpeg_ls_lossless.dcm", "liver_1frame.dcm")


@pytest.fixture(scope="module")
def stalling_server() -> Iterator[FakeServer]:
    """Answers WADO-URI and frame requests with a body that never finishes."""
    server = FakeServer().start()
    metadata = [{"00080018": {"vr": "UI", "Value": ["9"]}, "00280004": {"vr": "CS", "Value": ["MONOCHROME2"]},
                 "00280010": {"vr": "US", "Value": [2]}, "00280011": {"vr": "US", "Value": [2]},
                 "00280100": {"vr": "US", "Value": [8]}}]
    server.route(f"{STALLED}/metadata", Reply(200, {"Content-Type": "application/dicom+json"},
                                              json.dumps(metadata).encode()))
    server.route(f"{STALLED}/frames/", Reply(200, {"Content-Type": "multipart/related; boundary=x"},
                                             b"\0" * 100_000, stall_after=10))
    server.route("/wado", Reply(200, {"Content-Type": "application/dicom"}, b"\0" * 100_000, stall_after=10))
    try:
        yield server
    finally:
        server.stop()


def _fill(cls: Any, scheme: str, server: OrthancServer, data: dict[str, UploadedFile],
          stalling: FakeServer) -> None:
    def ids(item: UploadedFile, frame: int) -> str:
        if scheme == "wadouri":
            return server.wadouri_id(item.study, item.series, item.sop, frame)
        return server.wadors_id(item.study, item.series, item.sop, frame)

    cls.valid_ids = [ids(data[name], 1) for name in SAMPLES] + [ids(data["examples_ybr_color.dcm"], 30)]
    ct = data["CT_small.dcm"]
    if scheme == "wadouri":
        cls.invalid_ids = {
            server.wadouri_id("1.2.3", "4.5.6", "7.8.9"): TransportError,
            ids(ct, 2): InvalidImageError,
            ids(ct, 0): InvalidImageError,
            f"dicomweb:{server.url}/no-such-path": TransportError,
        }
        cls.slow_id = f"wadouri:{stalling.url}/wado?objectUID=9"
    else:
        cls.invalid_ids = {
            server.wadors_id("1.2.3", "4.5.6", "7.8.9"): TransportError,
            ids(ct, 2): InvalidImageError,
            ids(ct, 0): InvalidImageError,
            f"wadors:{server.dicomweb}/studies/{ct.study}/series/{ct.series}": InvalidImageError,
        }
        cls.slow_id = f"wadors:{stalling.url}{STALLED}/frames/1"


class _OrthancContract(LoaderContract):
    scheme: ClassVar[str] = ""

    @pytest.fixture(autouse=True, scope="class")
    @classmethod
    def _ids(cls, orthanc_server: OrthancServer, uploaded_testdata: dict[str, UploadedFile],
             stalling_server: FakeServer) -> Iterator[None]:
        _fill(cls, cls.scheme, orthanc_server, uploaded_testdata, stalling_server)
        yield
        metadata_manager.purge()


class TestWadouriContract(_OrthancContract):
    loader = "wadouri"
    scheme = "wadouri"


class TestWadorsContract(_OrthancContract):
    loader = "wadors"
    scheme = "wadors"

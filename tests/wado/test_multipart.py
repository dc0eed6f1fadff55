"""The multipart/related parser: DICOMweb framing, zero-copy parts, strict errors, speed."""

from __future__ import annotations

import dataclasses
import time
from typing import Any, cast

import pytest

from loadstone import InvalidImageError, TransportError
from loadstone_wado.multipart import Part, parse_media_type, parse_multipart_related

ORTHANC_TYPE = ('multipart/related; type="image/jpeg; transfer-syntax=1.2.840.10008.1.2.4.50"; '
                "boundary=8b7ce866-7cd0-490a")
BOUNDARY = "8b7ce866-7cd0-490a"


def body_of(parts: list[tuple[bytes, dict[str, str]]], boundary: str = BOUNDARY,
            preamble: bytes = b"", epilogue: bytes = b"\r\n") -> bytes:
    out = bytearray(preamble)
    for data, headers in parts:
        out += f"--{boundary}\r\n".encode()
        for name, value in headers.items():
            out += f"{name}: {value}\r\n".encode()
        out += b"\r\n" + data + b"\r\n"
    out += f"--{boundary}--".encode() + epilogue
    return bytes(out)


def orthanc_like(frames: list[bytes]) -> bytes:
    return body_of([
        (data, {
            "Content-Location": f"http://h/dicom-web/studies/1/series/2/instances/3/frames/{n}",
            "Content-Type": "image/jpeg; transfer-syntax=1.2.840.10008.1.2.4.50",
            "Content-Length": str(len(data)),
            "MIME-Version": "1.0",
        })
        for n, data in enumerate(frames, 1)
    ])


def test_orthanc_framing_keeps_media_type_syntax_and_location() -> None:
    frames = [b"\xff\xd8frame-one\xff\xd9\x00", b"\xff\xd8two\r\n--not-the-boundary\xff\xd9"]
    parts = parse_multipart_related(orthanc_like(frames), ORTHANC_TYPE)
    assert [bytes(p.data) for p in parts] == frames
    assert all(p.content_type == "image/jpeg" for p in parts)
    assert all(p.transfer_syntax_uid == "1.2.840.10008.1.2.4.50" for p in parts)
    assert parts[1].content_location is not None and parts[1].content_location.endswith("/frames/2")
    assert parts[0].headers["mime-version"] == "1.0"
    assert len(parts[0]) == len(frames[0])


def test_parts_are_zero_copy_views_of_the_body() -> None:
    body = orthanc_like([b"a" * 1000, b"b" * 2000])
    parts = parse_multipart_related(body, ORTHANC_TYPE)
    assert all(isinstance(p.data, memoryview) and p.data.obj is body for p in parts)
    assert parts[0].data.readonly
    mutable = bytearray(body)
    parts = parse_multipart_related(memoryview(mutable), ORTHANC_TYPE)
    assert parts[1].data.obj is mutable and parts[1].data.readonly


@pytest.mark.parametrize("header", [
    'multipart/related; type="application/octet-stream"; boundary="quoted; with=semicolon"',
    'multipart/related; boundary="quoted; with=semicolon"; type="application/octet-stream"',
    'Multipart/Related;BOUNDARY="quoted; with=semicolon"',
])
def test_boundary_quoted_or_not_and_in_any_position(header: str) -> None:
    body = body_of([(b"\x00\x01", {"Content-Type": "application/octet-stream"})],
                   boundary="quoted; with=semicolon")
    parts = parse_multipart_related(body, header)
    assert bytes(parts[0].data) == b"\x00\x01"


def test_syntax_falls_back_to_message_type_then_media_type_default() -> None:
    body = body_of([
        (b"x", {"Content-Type": "application/octet-stream"}),
        (b"y", {"Content-Type": "image/jls"}),
        (b"z", {"Content-Type": "image/dicom-rle; transfer-syntax=1.2.840.10008.1.2.5"}),
        (b"w", {}),
    ])
    with_type = f'multipart/related; type="application/octet-stream; transfer-syntax=1.2.840.10008.1.2"; ' \
                f"boundary={BOUNDARY}"
    parts = parse_multipart_related(body, with_type)
    assert [p.transfer_syntax_uid for p in parts] == [
        "1.2.840.10008.1.2", "1.2.840.10008.1.2", "1.2.840.10008.1.2.5", "1.2.840.10008.1.2"]
    parts = parse_multipart_related(body, f"multipart/related; boundary={BOUNDARY}")
    assert [p.transfer_syntax_uid for p in parts] == [
        "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.5", "1.2.840.10008.1.2.1"]
    assert parts[3].content_type == "application/octet-stream"
    star = f'multipart/related; type="application/octet-stream"; transfer-syntax=*; boundary={BOUNDARY}'
    assert parse_multipart_related(body, star)[0].transfer_syntax_uid == "1.2.840.10008.1.2.1"


def test_parts_without_content_length_are_found_by_their_delimiter() -> None:
    body = body_of([(b"first", {"Content-Type": "application/octet-stream"}),
                    (b"", {"Content-Type": "application/octet-stream"}),
                    (b"third\r\n-", {})],
                   preamble=b"This is a preamble.\r\n", epilogue=b"\r\nan epilogue")
    parts = parse_multipart_related(body, f"multipart/related; boundary={BOUNDARY}")
    assert [bytes(p.data) for p in parts] == [b"first", b"", b"third\r\n-"]


def test_transport_padding_and_folded_headers() -> None:
    body = (f"--{BOUNDARY}  \t\r\nContent-Type: application/octet-stream;\r\n"
            " transfer-syntax=1.2.840.10008.1.2\r\n\r\nDATA\r\n"
            f"--{BOUNDARY}--").encode()
    part = parse_multipart_related(body, f"multipart/related; boundary={BOUNDARY}")[0]
    assert bytes(part.data) == b"DATA" and part.transfer_syntax_uid == "1.2.840.10008.1.2"


def test_many_parts() -> None:
    frames = [bytes([n % 256]) * (n % 7) for n in range(5000)]
    parts = parse_multipart_related(orthanc_like(frames), ORTHANC_TYPE)
    assert [bytes(p.data) for p in parts] == frames


def test_large_body_is_fast() -> None:
    frame = bytes(range(256)) * 2048  # 512 KiB
    body = orthanc_like([frame] * 200)  # 100 MiB
    started = time.perf_counter()
    parts = parse_multipart_related(body, ORTHANC_TYPE)
    with_lengths = time.perf_counter() - started
    assert len(parts) == 200 and parts[-1].data == frame
    bare = body_of([(frame, {})] * 200)
    started = time.perf_counter()
    assert len(parse_multipart_related(bare, f"multipart/related; boundary={BOUNDARY}")) == 200
    searched = time.perf_counter() - started
    assert with_lengths < 0.1, f"{with_lengths:.3f} s for 100 MiB with Content-Length"
    assert searched < 1.0, f"{searched:.3f} s for 100 MiB found by delimiter"


# -- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", [
    "multipart/related", 'multipart/related; type="application/octet-stream"', "multipart/related; boundary=",
    'multipart/related; boundary=""',
])
def test_no_boundary_is_invalid(content_type: str) -> None:
    with pytest.raises(InvalidImageError, match="no boundary"):
        parse_multipart_related(orthanc_like([b"x"]), content_type, image_id="wadors:x", url="http://h/f")


@pytest.mark.parametrize("content_type", ["application/octet-stream", "", "text/html; boundary=x"])
def test_not_multipart_is_invalid(content_type: str) -> None:
    with pytest.raises(InvalidImageError, match="expected a multipart"):
        parse_multipart_related(b"--x\r\n\r\ny\r\n--x--", content_type)


def test_every_truncation_is_a_transport_error() -> None:
    body = orthanc_like([b"\x01\x02\x03\x04" * 10, b"\xff" * 33])
    for cut in range(len(body) - len(b"--\r\n") - len(BOUNDARY) - 2):
        with pytest.raises(TransportError, match="cut short") as info:
            parse_multipart_related(body[:cut], ORTHANC_TYPE, url="http://h/f", status=200)
        assert info.value.status == 200 and info.value.url == "http://h/f"
    bare = body_of([(b"abc", {}), (b"defg", {})])
    for cut in range(len(bare) - len(BOUNDARY) - 6):
        with pytest.raises(TransportError):
            parse_multipart_related(bare[:cut], f"multipart/related; boundary={BOUNDARY}")


@pytest.mark.parametrize(("body", "message"), [
    (b"no delimiter anywhere in this body", "does not occur"),
    (f"--{BOUNDARY}--\r\n".encode(), "without any part"),
    (f"--{BOUNDARY}\r\nContent-Length: 2\r\n\r\nabc\r\n--{BOUNDARY}--".encode(),
     "longer than its Content-Length"),
    (f"--{BOUNDARY}\r\nContent-Length: x1\r\n\r\nabc\r\n--{BOUNDARY}--".encode(), "Content-Length 'x1'"),
    (f"--{BOUNDARY}\r\nContent-Length: -1\r\n\r\nabc\r\n--{BOUNDARY}--".encode(), "Content-Length '-1'"),
    (f"--{BOUNDARY}\r\nno colon here\r\n\r\nabc\r\n--{BOUNDARY}--".encode(), "without a name"),
    (f"--{BOUNDARY}garbage\r\n\r\nabc\r\n--{BOUNDARY}--".encode(), "unexpected bytes"),
])
def test_malformed_bodies_are_invalid(body: bytes, message: str) -> None:
    with pytest.raises(InvalidImageError, match=message) as info:
        parse_multipart_related(body, f"multipart/related; boundary={BOUNDARY}", image_id="wadors:i")
    assert info.value.image_id == "wadors:i"


def test_part_lying_about_a_longer_length_is_truncation() -> None:
    body = f"--{BOUNDARY}\r\nContent-Length: 100\r\n\r\nabc\r\n--{BOUNDARY}--\r\n".encode()
    with pytest.raises(TransportError, match="declares 100 bytes"):
        parse_multipart_related(body, f"multipart/related; boundary={BOUNDARY}")


def test_rejects_other_body_types() -> None:
    with pytest.raises(TypeError):
        parse_multipart_related(cast(Any, "text"), ORTHANC_TYPE)


def test_parse_media_type() -> None:
    assert parse_media_type('Multipart/Related; Type="a/b; x=1"; boundary=qx; empty=""') == (
        "multipart/related", {"type": "a/b; x=1", "boundary": "qx", "empty": ""})
    assert parse_media_type('a/b; q="with \\"escaped\\" quotes"')[1]["q"] == 'with "escaped" quotes'
    assert parse_media_type("") == ("", {})
    assert parse_media_type("a/b; novalue; =x")[1] == {}


def test_part_is_a_frozen_dataclass() -> None:
    part = Part("application/octet-stream", None, None, memoryview(b"x"))
    field = "content_type"
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(part, field, "x")

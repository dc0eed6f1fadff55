"""The command line against a real Orthanc that wants credentials (issue 11): it takes what the API takes.

``--header``, ``LOADSTONE_HEADERS``, ``--bearer-token-env`` (through a small
gateway that turns a bearer token into Orthanc's Basic credentials, as an
authenticating proxy in front of a PACS does), ``--option``, ``--set`` and
``--timeout``, with ``info`` and ``fetch --series``.  Each command runs in a
subprocess, as a user runs it.
"""

from __future__ import annotations

import base64
import http.server
import io
import json
import os
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
import synthetic
from pydicom.uid import generate_uid

try:
    from orthanc import OrthancServer, basic_auth, no_leaked_threads, orthanc_auth_server, with_fresh_uids
except ImportError:  # tests/wado became a package
    from .orthanc import (  # type: ignore[no-redef]
        OrthancServer,
        basic_auth,
        no_leaked_threads,
        orthanc_auth_server,
        with_fresh_uids,
    )

__all__ = ["no_leaked_threads", "orthanc_auth_server"]

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

TOKEN = "gateway-token-42"


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("LOADSTONE_")}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "loadstone", *args], capture_output=True, text=True,
                          timeout=120, env=full_env)


def _error_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("loadstone: error: "), done.stderr
    return lines[0]


class Uploaded:
    """CT_small.dcm and a 3-slice synthetic CT series, in the authenticating Orthanc."""

    def __init__(self, server: OrthancServer) -> None:
        path = pydicom.data.get_testdata_file("CT_small.dcm", download=False)
        assert path is not None
        data, uids = with_fresh_uids(Path(path).read_bytes())
        server.upload(data)
        self.study, self.series = uids["StudyInstanceUID"], uids["SeriesInstanceUID"]
        self.sop = uids["SOPInstanceUID"]
        self.ct_study, self.ct_series = generate_uid(), generate_uid()
        frame_of_reference = generate_uid()
        for index in (2, 0, 1):  # uploaded out of order
            ds = synthetic.ct_dataset(index, 16, 16, study_uid=self.ct_study, series_uid=self.ct_series,
                                      frame_of_reference_uid=frame_of_reference)
            buffer = io.BytesIO()
            ds.save_as(buffer, enforce_file_format=True)
            server.upload(buffer.getvalue())
        self.positions = [[-5.6, -5.6, z * 1.25] for z in range(3)]


@pytest.fixture(scope="module")
def uploaded(orthanc_auth_server: OrthancServer) -> Uploaded:
    return Uploaded(orthanc_auth_server)


@pytest.fixture(scope="module")
def gateway(orthanc_auth_server: OrthancServer) -> Iterator[str]:
    """An HTTP gateway: ``Authorization: Bearer TOKEN`` in, Orthanc's Basic credentials out; else 401."""

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                body = b"<html><head><title>401 Bearer token required</title></head></html>"
                self.send_response(401)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            forwarded = {"Authorization": basic_auth()}
            if self.headers.get("Accept"):
                forwarded["Accept"] = self.headers["Accept"]
            request = urllib.request.Request(orthanc_auth_server.url + self.path, headers=forwarded)
            try:
                with urllib.request.urlopen(request, timeout=30) as answer:
                    status, body = answer.status, answer.read()
                    content_type = answer.headers.get("Content-Type")
            except urllib.error.HTTPError as exc:
                status, content_type, body = exc.code, exc.headers.get("Content-Type"), exc.read()
            self.send_response(status)
            if content_type:
                self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def _ids(server: OrthancServer, item: Uploaded) -> list[str]:
    uids = (item.study, item.series, item.sop)
    return [server.wadouri_id(*uids), server.wadors_id(*uids)]


def test_without_credentials_the_cli_says_401(orthanc_auth_server: OrthancServer, uploaded: Uploaded) -> None:
    for image_id in _ids(orthanc_auth_server, uploaded):
        done = _cli("info", image_id)
        assert done.returncode == 1
        assert "HTTP 401" in _error_line(done), image_id


def test_header_flag(orthanc_auth_server: OrthancServer, uploaded: Uploaded) -> None:
    for image_id in _ids(orthanc_auth_server, uploaded):
        done = _cli("info", image_id, "--header", f"Authorization: {basic_auth()}", "--json")
        assert done.returncode == 0, done.stderr
        answer = json.loads(done.stdout)
        assert (answer["rows"], answer["columns"]) == (128, 128)
        assert answer["metadata"]["generalImageModule"]["sop_instance_uid"] == uploaded.sop
        bad = "Authorization: Basic " + base64.b64encode(b"x:y").decode()
        wrong = _cli("info", image_id, "--header", bad)
        assert wrong.returncode == 1 and "HTTP 401" in _error_line(wrong)


def test_headers_from_the_environment(orthanc_auth_server: OrthancServer, uploaded: Uploaded) -> None:
    image_id = _ids(orthanc_auth_server, uploaded)[1]
    headers = f"Authorization: {basic_auth()}; X-Request: cli"
    done = _cli("info", image_id, env={"LOADSTONE_HEADERS": headers})
    assert done.returncode == 0, done.stderr


def test_bearer_token_from_an_environment_variable(gateway: str, orthanc_auth_server: OrthancServer,
                                                    uploaded: Uploaded) -> None:
    for image_id in _ids(orthanc_auth_server, uploaded):
        through = image_id.replace(orthanc_auth_server.url, gateway)
        refused = _cli("info", through)
        assert refused.returncode == 1 and "401 Bearer token required" in _error_line(refused)
        done = _cli("info", through, "--bearer-token-env", "PACS_TOKEN", "--json", env={"PACS_TOKEN": TOKEN})
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["rows"] == 128
        assert TOKEN not in " ".join(done.args)  # the token never was on the command line


def test_option_flag(orthanc_auth_server: OrthancServer, uploaded: Uploaded) -> None:
    wadouri, wadors = _ids(orthanc_auth_server, uploaded)
    credentials = json.dumps({"Authorization": basic_auth()})
    for image_id in (wadouri, wadors):
        done = _cli("info", image_id, "--option", f"headers={credentials}", "--option", "retries=0")
        assert done.returncode == 0, done.stderr
    capped = _cli("info", wadouri, "--option", f"headers={credentials}", "--option", "max_bytes=1000")
    assert capped.returncode == 1 and "1000" in _error_line(capped)
    typo = _cli("info", wadors, "--option", f"headers={credentials}", "--option", "retires=0")
    assert typo.returncode == 2
    assert "unknown load option 'retires': did you mean 'retries'?" in _error_line(typo)


def test_set_and_timeout_flags(orthanc_auth_server: OrthancServer, uploaded: Uploaded) -> None:
    image_id = _ids(orthanc_auth_server, uploaded)[0]
    header = f"Authorization: {basic_auth()}"
    capped = _cli("info", image_id, "--header", header, "--set", "wado.max_pixel_bytes=1000")
    assert capped.returncode == 1 and "max_pixel_bytes" in _error_line(capped)
    typo = _cli("info", image_id, "--header", header, "--set", "wado.max_pixel_byte=1000")
    assert typo.returncode == 2 and "did you mean 'max_pixel_bytes'?" in _error_line(typo)
    fine = _cli("info", image_id, "--header", header, "--timeout", "60")
    assert fine.returncode == 0, fine.stderr


def test_fetch_a_series_with_credentials(orthanc_auth_server: OrthancServer, uploaded: Uploaded,
                                         tmp_path: Path) -> None:
    series_id = orthanc_auth_server.wadors_series(uploaded.ct_study, uploaded.ct_series)
    refused = _cli("fetch", "--series", series_id, "-o", str(tmp_path / "no"), "-q")
    assert refused.returncode == 1 and "HTTP 401" in _error_line(refused)
    done = _cli("fetch", "--series", series_id, "-o", str(tmp_path / "out"), "-q",
                "--header", f"Authorization: {basic_auth()}")
    assert done.returncode == 0, done.stderr
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    entries = list(manifest["images"].values())
    positions = [entry["image_position_patient"] for entry in entries]  # in space order
    assert np.allclose(positions, uploaded.positions)
    assert all(entry["image_orientation_patient"] == [1, 0, 0, 0, 1, 0] for entry in entries)
    assert all(entry["pixel_spacing"] == [0.7, 0.7] for entry in entries)


def test_series_and_volume_with_credentials_in_python(orthanc_auth_server: OrthancServer,
                                                      uploaded: Uploaded) -> None:
    import loadstone

    series_id = orthanc_auth_server.wadors_series(uploaded.ct_study, uploaded.ct_series)
    with pytest.raises(loadstone.TransportError):
        loadstone.series_image_ids(series_id)
    ids = loadstone.series_image_ids(series_id, headers=orthanc_auth_server.headers)
    assert len(ids) == 3
    volume = loadstone.load_volume(series_id, headers=orthanc_auth_server.headers)
    assert volume.array.shape == (3, 16, 16) and list(volume.image_ids) == ids

"""A real Orthanc (with its DICOMweb plugin) for the WADO integration tests and benchmark.

Why a real server: WADO-URI, WADO-RS multipart framing, transfer-syntax
negotiation, metadata JSON and authentication are where DICOMweb clients
break, and only a real implementation exercises them honestly.

:class:`OrthancServer` starts ``/usr/sbin/Orthanc`` on a free loopback port
with a temporary storage folder, waits (bounded) until it answers, and at
:meth:`~OrthancServer.stop` sends SIGTERM, waits for the exit and kills it if
it does not go.  The pytest fixtures (``orthanc_server``,
``orthanc_auth_server``, ``uploaded_testdata``) are session-scoped and skip
cleanly when Orthanc is not installed.  Import them into a test module by
name (``from orthanc import orthanc_server``); with pytest's default import
mode the test's folder is on ``sys.path``.
"""

from __future__ import annotations

import base64
import contextlib
import http.server
import io
import json
import os
import secrets
import select
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ORTHANC_BINARY = Path(os.environ.get("LOADSTONE_ORTHANC", "/usr/sbin/Orthanc"))
DICOMWEB_PLUGIN = Path(
    os.environ.get("LOADSTONE_ORTHANC_DICOMWEB", "/usr/share/orthanc/plugins/libOrthancDicomWeb.so")
)
AUTH_USER, AUTH_PASSWORD = "loadstone", "s3cret-pw"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0

__all__ = [
    "FakeServer",
    "Reply",
    "fake_server",
    "multipart_body",
    "no_leaked_threads",
    "OrthancServer",
    "UploadedFile",
    "orthanc_missing",
    "orthanc_server",
    "orthanc_auth_server",
    "serve_statically",
    "static_server",
    "uploaded_testdata",
    "with_fresh_uids",
    "basic_auth",
]


def orthanc_missing() -> str | None:
    """Why Orthanc cannot run here (None if it can)."""
    if not ORTHANC_BINARY.exists():
        return (f"Orthanc is not installed ({ORTHANC_BINARY} is missing): "
                "apt-get install orthanc orthanc-dicomweb")
    if not DICOMWEB_PLUGIN.exists():
        return (f"Orthanc's DICOMweb plugin is not installed ({DICOMWEB_PLUGIN}): "
                "apt-get install orthanc-dicomweb")
    return None


def basic_auth(user: str = AUTH_USER, password: str = AUTH_PASSWORD) -> str:
    """The ``Authorization`` header value for HTTP Basic."""
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def _die_with_parent() -> None:
    """In the child: get SIGTERM if the test process dies, so no Orthanc outlives a killed run."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG (Linux)
    except (OSError, AttributeError):
        pass


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class OrthancServer:
    """One Orthanc process on loopback; a context manager that always stops it."""

    def __init__(self, workdir: Path, *, auth: bool = False) -> None:
        self.workdir = Path(workdir)
        self.auth = auth
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    # -- addresses ---------------------------------------------------------
    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def dicomweb(self) -> str:
        """The DICOMweb root (``…/dicom-web``)."""
        return f"{self.url}/dicom-web"

    @property
    def wado(self) -> str:
        """The WADO-URI endpoint."""
        return f"{self.url}/wado"

    @property
    def headers(self) -> dict[str, str]:
        """Headers that authenticate (empty without auth)."""
        return {"Authorization": basic_auth()} if self.auth else {}

    def wadouri_id(self, study: str, series: str, sop: str, frame: int | None = None) -> str:
        """A ``wadouri:`` image id for an instance (frame 1-based)."""
        query = (f"requestType=WADO&studyUID={study}&seriesUID={series}&objectUID={sop}"
                 "&contentType=application%2Fdicom")
        if frame is not None:
            query += f"&frame={frame}"
        return f"wadouri:{self.wado}?{query}"

    def wadors_id(self, study: str, series: str, sop: str, frame: int = 1) -> str:
        """A ``wadors:`` image id for a frame."""
        return f"wadors:{self.dicomweb}/studies/{study}/series/{series}/instances/{sop}/frames/{frame}"

    def wadors_series(self, study: str, series: str) -> str:
        """A ``wadors:`` series id."""
        return f"wadors:{self.dicomweb}/studies/{study}/series/{series}"

    # -- life cycle --------------------------------------------------------
    def _config(self) -> dict[str, Any]:
        db = self.workdir / "db"
        db.mkdir(parents=True, exist_ok=True)
        config: dict[str, Any] = {
            "Name": "loadstone-test",
            "StorageDirectory": str(db),
            "IndexDirectory": str(db),
            "HttpPort": self.port,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": self.auth,
            "DicomServerEnabled": False,
            "OrthancExplorerEnabled": False,
            "HttpCompressionEnabled": False,
            "Plugins": [str(DICOMWEB_PLUGIN)],
            "DicomWeb": {
                "Enable": True, "Root": "/dicom-web/", "EnableWado": True, "WadoRoot": "/wado",
                "Host": f"127.0.0.1:{self.port}",
            },
        }
        if self.auth:
            config["RegisteredUsers"] = {AUTH_USER: AUTH_PASSWORD}
        return config

    def start(self, timeout: float = START_TIMEOUT) -> OrthancServer:
        """Start on a free port and wait until it answers (bounded); retries a lost port race."""
        reason = orthanc_missing()
        if reason is not None:
            raise RuntimeError(reason)
        last_error = ""
        for _attempt in range(3):
            self.port = _free_port()
            config_path = self.workdir / "orthanc.json"
            config_path.write_text(json.dumps(self._config(), indent=1))
            self._log = open(self.workdir / "orthanc.log", "ab")  # noqa: SIM115 - closed in stop()
            self.process = subprocess.Popen(
                [str(ORTHANC_BINARY), str(config_path)],
                stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=self.workdir, preexec_fn=_die_with_parent,
            )
            try:
                self._wait_ready(timeout)
                return self
            except RuntimeError as exc:
                last_error = str(exc)
                self.stop()
        raise RuntimeError(f"Orthanc did not start: {last_error}")

    def _wait_ready(self, timeout: float) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Orthanc exited with {self.process.returncode}: {self.log_tail()}")
            try:
                self.get_json("/system", timeout=1.0)
                return
            except (OSError, ValueError):
                time.sleep(0.05)
        raise RuntimeError(f"Orthanc did not answer within {timeout} s: {self.log_tail()}")

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM, wait for the exit (it frees its database lock), kill if it hangs."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                process.wait(timeout)
        if self._log is not None:
            self._log.close()
            self._log = None

    @property
    def running(self) -> bool:
        """True while the process is alive."""
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 15) -> str:
        """The end of Orthanc's log, for error messages."""
        try:
            text = (self.workdir / "orthanc.log").read_text(errors="replace")
        except OSError:
            return "(no log)"
        return " | ".join(text.strip().splitlines()[-lines:])

    def __enter__(self) -> OrthancServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- REST helpers (plain urllib: independent of the code under test) -------
    def _request(self, path: str, data: bytes | None = None, content_type: str | None = None,
                 timeout: float = 30.0) -> bytes:
        request = urllib.request.Request(self.url + path, data=data, method="POST" if data else "GET")
        for name, value in self.headers.items():
            request.add_header(name, value)
        if content_type:
            request.add_header("Content-Type", content_type)
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return bytes(response.read())

    def get_json(self, path: str, timeout: float = 30.0) -> Any:
        """GET a REST path and decode its JSON."""
        return json.loads(self._request(path, timeout=timeout))

    def upload(self, data: bytes) -> dict[str, Any]:
        """POST one Part 10 object to ``/instances``; returns Orthanc's JSON answer."""
        answer: dict[str, Any] = json.loads(self._request("/instances", data, "application/dicom"))
        return answer


# -- test data ------------------------------------------------------------------------


def _same_length_uid(old: str) -> str:
    """A random UID as long as ``old``, so a byte-for-byte substitution keeps every offset."""
    length = len(old)
    if length < 4:
        raise ValueError(f"UID {old!r} is too short to replace")
    digits = str(secrets.randbelow(9) + 1) + "".join(str(secrets.randbelow(10)) for _ in range(length - 3))
    return "2." + digits


def with_fresh_uids(data: bytes) -> tuple[bytes, dict[str, str]]:
    """A copy of a Part 10 object with new Study/Series/SOP Instance UIDs.

    Many pydicom test files share UIDs; Orthanc would store them as one.  The
    UIDs are substituted byte for byte with same-length ones (every other
    byte, pixel data included, stays as it was); a deflated object, whose
    dataset is compressed, is rewritten with pydicom instead.
    """
    import pydicom
    from pydicom.uid import UID, generate_uid

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
        olds = {kw: str(ds.get(kw, "") or "") for kw in ("StudyInstanceUID", "SeriesInstanceUID",
                                                         "SOPInstanceUID")}
        if all(olds.values()):
            news = {kw: _same_length_uid(uid) for kw, uid in olds.items()}
            patched = data
            # Longest first: a study UID may be a prefix of its series' UID.
            for kw, old in sorted(olds.items(), key=lambda item: -len(item[1])):
                patched = patched.replace(old.encode("ascii"), news[kw].encode("ascii"))
            check = pydicom.dcmread(io.BytesIO(patched), force=True)
            if all(str(check.get(kw, "") or "") == news[kw] for kw in olds):
                return patched, news
        # Deflated (the UIDs are compressed) or missing UIDs: rewrite with pydicom.
        news = {kw: generate_uid() for kw in olds}
        for kw, uid in news.items():
            setattr(ds, kw, uid)
        if getattr(ds, "file_meta", None) is not None:
            ds.file_meta.MediaStorageSOPInstanceUID = UID(news["SOPInstanceUID"])
        buffer = io.BytesIO()
        ds.save_as(buffer)
        return buffer.getvalue(), news


@dataclass
class UploadedFile:
    """One pydicom test file as served (by Orthanc, or by a static server), with its UIDs.

    ``base`` is the server's URL: Orthanc's, or for the few files Orthanc
    refuses to store, a :class:`FakeServer` that serves them as WADO-URI and
    WADO-RS from the file itself (``served_by`` says which).
    """

    name: str
    data: bytes = field(repr=False)
    study: str
    series: str
    sop: str
    frames: int
    transfer_syntax: str
    photometric: str
    base: str = ""
    served_by: str = "orthanc"

    def wadouri_id(self, frame: int | None = None) -> str:
        """A ``wadouri:`` id of the object (frame 1-based)."""
        query = (f"requestType=WADO&studyUID={self.study}&seriesUID={self.series}&objectUID={self.sop}"
                 "&contentType=application%2Fdicom")
        return f"wadouri:{self.base}/wado?{query}" + (f"&frame={frame}" if frame is not None else "")

    def wadors_id(self, frame: int = 1) -> str:
        """A ``wadors:`` id of one frame."""
        return (f"wadors:{self.base}/dicom-web/studies/{self.study}/series/{self.series}"
                f"/instances/{self.sop}/frames/{frame}")

    @property
    def metadata_path(self) -> str:
        """The path of the instance's ``/metadata``."""
        return f"/dicom-web/studies/{self.study}/series/{self.series}/instances/{self.sop}/metadata"


def _pydicom_test_files() -> list[Path]:
    import pydicom
    from pydicom.data import get_testdata_files

    files = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in sorted(get_testdata_files()):
            path = Path(name)
            if not path.is_file():
                continue
            try:
                ds = pydicom.dcmread(path, stop_before_pixels=False)
            except Exception:
                continue
            if "PixelData" in ds:
                files.append(path)
    return files


def upload_testdata(server: OrthancServer,
                    static: FakeServer | None = None) -> tuple[list[UploadedFile], dict[str, str]]:
    """Upload every image-bearing pydicom test file with fresh UIDs.

    Files Orthanc refuses are served by ``static`` instead (when given).
    Returns the served files and, for those that could not be served, why.
    """
    import pydicom

    stored: list[UploadedFile] = []
    refused: dict[str, str] = {}
    seen: set[str] = set()
    for path in _pydicom_test_files():
        name = path.name if path.name not in seen else f"{path.parent.name}/{path.name}"
        seen.add(name)
        try:
            data, uids = with_fresh_uids(path.read_bytes())
        except Exception as exc:
            refused[name] = f"cannot give fresh UIDs: {type(exc).__name__}: {exc}"
            continue
        if not all(uids.values()):
            refused[name] = "has no Study/Series/SOP Instance UID"
            continue
        try:
            answer = server.upload(data)
            status = answer.get("Status")
        except urllib.error.HTTPError as exc:
            status = f"HTTP {exc.code}"
        base = server.url
        if status not in ("Success", "AlreadyStored"):
            if static is None:
                refused[name] = f"Orthanc refused it: {status}"
                continue
            base = serve_statically(static, data)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True, force=True)
        try:
            frames = max(1, int(ds.get("NumberOfFrames", 1) or 1))
        except (TypeError, ValueError):
            frames = 1
        meta = getattr(ds, "file_meta", None)
        stored.append(UploadedFile(
            name=name, data=data, study=uids["StudyInstanceUID"], series=uids["SeriesInstanceUID"],
            sop=uids["SOPInstanceUID"], frames=frames,
            transfer_syntax=str(meta.get("TransferSyntaxUID", "")) if meta is not None else "",
            photometric=str(ds.get("PhotometricInterpretation", "")),
            base=base, served_by="orthanc" if base == server.url else "static",
        ))
    return stored, refused


def serve_statically(server: FakeServer, data: bytes) -> str:
    """Serve one Part 10 object as WADO-URI and WADO-RS (metadata, frames) from ``server``.

    For objects no real server will store (Orthanc refuses a few malformed
    pydicom test files): the frames are cut from the file as stored, in its
    transfer syntax.  Returns the base URL to build ids on.
    """
    import pydicom
    from pydicom.encaps import generate_frames

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
    syntax = str(ds.file_meta.TransferSyntaxUID)
    frames_total = max(1, int(ds.get("NumberOfFrames", 1) or 1))
    pixel_bytes = bytes(ds.PixelData)
    if ds.file_meta.TransferSyntaxUID.is_compressed:
        frames = list(generate_frames(pixel_bytes, number_of_frames=frames_total))
    else:
        size = int(ds.Rows) * int(ds.Columns) * int(ds.get("SamplesPerPixel", 1)) * int(ds.BitsAllocated) // 8
        frames = [pixel_bytes[i * size:(i + 1) * size] for i in range(frames_total)]
    attrs = {tag: value for tag, value in ds.to_json_dict(bulk_data_threshold=1 << 30).items()
             if not tag.startswith("0002") and tag not in ("7FE00010", "7FE00008", "7FE00009")}
    instance = f"/static/{ds.SOPInstanceUID}"
    root = f"{instance}/dicom-web/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
    root += f"/instances/{ds.SOPInstanceUID}"
    server.route(f"{instance}/wado", Reply(200, {"Content-Type": "application/dicom"}, data))
    server.route(f"{root}/metadata", Reply(200, {"Content-Type": "application/dicom+json"},
                                           json.dumps([attrs]).encode()))

    def frames_reply(path: str, headers: dict[str, str]) -> Reply:
        numbers = [int(n) for n in path.split("?")[0].rsplit("/", 1)[1].split(",")]
        if any(n < 1 or n > len(frames) for n in numbers):
            return Reply(400, {"Content-Type": "text/plain"}, b"frame out of range")
        part_type = f"application/octet-stream; transfer-syntax={syntax}"
        body = multipart_body([(frames[n - 1], part_type) for n in numbers], "static-boundary")
        return Reply(200, {"Content-Type": "multipart/related; boundary=static-boundary"}, body)

    server.route(f"{root}/frames/", frames_reply)
    return server.url + instance



# -- pytest fixtures ----------------------------------------------------------------------


# Test modules import these fixtures by name, and pytest then registers one fixture per
# importing module: without sharing, every module would start its own Orthanc.  Each
# resource is therefore made once per process and stopped when its last user is done.
_shared: dict[str, list[Any]] = {}  # name -> [resource, users]


@contextlib.contextmanager
def _share(name: str, start: Callable[[], Any], stop: Callable[[Any], None]) -> Iterator[Any]:
    entry = _shared.get(name)
    if entry is None:
        entry = _shared[name] = [start(), 0]
    entry[1] += 1
    try:
        yield entry[0]
    finally:
        entry[1] -= 1
        if entry[1] == 0:
            del _shared[name]
            stop(entry[0])


def _server(tmp_path_factory: pytest.TempPathFactory, name: str, auth: bool) -> Iterator[OrthancServer]:
    reason = orthanc_missing()
    if reason is not None:
        pytest.skip(reason)

    def start() -> OrthancServer:
        server = OrthancServer(tmp_path_factory.mktemp(name), auth=auth)
        try:
            return server.start()
        except BaseException:
            server.stop()
            raise

    with _share(name, start, lambda server: server.stop()) as server:
        yield server


@pytest.fixture(scope="session")
def orthanc_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OrthancServer]:
    """An Orthanc with DICOMweb, no authentication, for the whole session."""
    yield from _server(tmp_path_factory, "orthanc", auth=False)


@pytest.fixture(scope="session")
def orthanc_auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OrthancServer]:
    """An Orthanc that answers 401 without HTTP Basic credentials (``server.headers`` has them)."""
    yield from _server(tmp_path_factory, "orthanc-auth", auth=True)


@pytest.fixture(scope="session")
def static_server() -> Iterator[FakeServer]:
    """A session-long :class:`FakeServer` for objects served statically."""
    def start() -> FakeServer:
        return FakeServer(persistent=True).start()

    with _share("static", start, lambda server: server.stop()) as server:
        yield server


@pytest.fixture(scope="session")
def uploaded_testdata(orthanc_server: OrthancServer,
                      static_server: FakeServer) -> Iterator[dict[str, UploadedFile]]:
    """Every image-bearing pydicom test file with fresh UIDs, by name: in Orthanc, or if it
    refuses one, on ``static_server``."""

    def upload() -> dict[str, UploadedFile]:
        stored, refused = upload_testdata(orthanc_server, static_server)
        if refused:
            warnings.warn(f"{len(refused)} test file(s) could not be served: {refused}", stacklevel=1)
        return {item.name: item for item in stored}

    with _share(f"testdata@{orthanc_server.url}", upload, lambda _: None) as files:
        yield files


# -- a scriptable server for answers no real server gives -----------------------------------


@dataclass
class Reply:
    """What :class:`FakeServer` answers: status, headers, body.

    ``stall_after`` bytes of the body are sent, then the handler waits until
    the server stops (a stalled server).  ``content_length`` overrides the
    header (``-1``: send none and close the connection after the body).
    """

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    stall_after: int | None = None
    content_length: int | None = None


Responder = Callable[[str, dict[str, str]], Reply]


class FakeServer:
    """A threaded loopback HTTP server whose answers the test scripts, by path prefix.

    ``requests`` records ``(path, headers)`` of every request.  :meth:`stop`
    releases stalled handlers, shuts the server down and joins its threads.
    """

    def __init__(self, *, persistent: bool = False) -> None:
        self.persistent = persistent  # lives across tests: its threads are not leaks
        self.routes: dict[str, Responder] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.release = threading.Event()
        self._lock = threading.Lock()
        self._server: http.server.ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._handlers: list[threading.Thread] = []

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def route(self, prefix: str, responder: Responder | Reply) -> None:
        """Answer paths starting with ``prefix`` (the longest prefix wins)."""
        if isinstance(responder, Reply):
            reply = responder

            def fixed(_path: str, _headers: dict[str, str]) -> Reply:
                return reply

            self.routes[prefix] = fixed
        else:
            self.routes[prefix] = responder

    def paths(self, prefix: str = "") -> list[str]:
        """The paths requested so far (starting with ``prefix``)."""
        with self._lock:
            return [path for path, _ in self.requests if path.startswith(prefix)]

    def start(self) -> FakeServer:
        """Listen on a free loopback port."""
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 3  # an idle keep-alive connection ends its handler thread

            def log_message(self, *args: Any) -> None:
                pass

            def _client_gone(self) -> bool:
                """True once the client closed or shut down its end (a stall ends with it)."""
                readable, _, _ = select.select([self.connection], [], [], 0)
                if not readable:
                    return False
                try:
                    return self.connection.recv(1, socket.MSG_PEEK) == b""
                except OSError:
                    return True

            def do_GET(self) -> None:
                headers = {k.lower(): v for k, v in self.headers.items()}
                with owner._lock:
                    owner.requests.append((self.path, headers))
                matches = [p for p in owner.routes if self.path.startswith(p)]
                if not matches:
                    reply = Reply(404, {"Content-Type": "text/plain"}, b"no such route")
                else:
                    reply = owner.routes[max(matches, key=len)](self.path, headers)
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                length = len(reply.body) if reply.content_length is None else reply.content_length
                if length >= 0:
                    self.send_header("Content-Length", str(length))
                if length != len(reply.body):  # no length, or a lie: the end of the body is the close
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                try:
                    if reply.stall_after is not None:
                        self.wfile.write(reply.body[: reply.stall_after])
                        self.wfile.flush()
                        self.close_connection = True
                        deadline = time.monotonic() + 30
                        while not owner.release.wait(0.05) and time.monotonic() < deadline:
                            if self._client_gone():
                                return
                        return
                    self.wfile.write(reply.body)
                except OSError:  # the client hung up (cancel, timeout)
                    self.close_connection = True

        handlers = self._handlers
        prefix = "persistent-fake-http" if self.persistent else "fake-http"

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def process_request(self, request: Any, client_address: Any) -> None:
                thread = threading.Thread(target=self.process_request_thread, args=(request, client_address),
                                          name=f"{prefix}-handler", daemon=True)
                handlers.append(thread)
                thread.start()

        server = Server(("127.0.0.1", 0), Handler)
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"{prefix}-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Release stalls, stop serving, close the sockets, join every thread it started."""
        self.release.set()
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        import gc

        from loadstone import http as lhttp

        # Close the client's idle keep-alive connections so their handlers see EOF.  urllib3 2's
        # PoolManager.clear() leaves that to the pools' finalizers, so collect them now.
        lhttp.default_client().close()
        gc.collect()
        for thread in self._handlers:
            thread.join(4)
        self._handlers.clear()

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def multipart_body(parts: Sequence[tuple[bytes, str]], boundary: str = "fake-boundary",
                   *, lengths: bool = True) -> bytes:
    """A ``multipart/related`` body of ``(data, part Content-Type)`` parts."""
    out = bytearray()
    for data, content_type in parts:
        out += f"--{boundary}\r\nContent-Type: {content_type}\r\n".encode()
        if lengths:
            out += f"Content-Length: {len(data)}\r\n".encode()
        out += b"\r\n" + data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out)


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """Threads a test starts are gone by its end (loadstone's own pools and timers excepted)."""
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + 5

    def leaked() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t not in before and t.is_alive()
                and not t.name.startswith(("loadstone-", "persistent-fake-http"))]

    while leaked() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not leaked(), f"threads left running: {leaked()}"


@pytest.fixture
def fake_server() -> Iterator[FakeServer]:
    """A :class:`FakeServer`, stopped after the test."""
    server = FakeServer().start()
    try:
        yield server
    finally:
        server.stop()

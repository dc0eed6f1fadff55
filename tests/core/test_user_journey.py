"""What a new user trips over (issue 11), tried as a new user would: public names, the CLI in a subprocess.

Typos are refused with a suggestion, every common mistake says what to do
instead, images are arrays, volumes and progress come from the core, and the
command line takes what the API takes (headers, tokens, options, settings,
timeouts).  Plugin-specific cases live with their plugin's tests
(tests/wado/test_series_folders.py, test_user_guidance.py,
test_cli_orthanc_auth.py; tests/web/test_web_dicom.py).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from loopback import Connection, Request, Server, reply, response
from PIL import Image as PILImage

import loadstone

TIMEOUT = 30


def _cli(*args: str, env: Mapping[str, str] | None = None, cwd: Path | None = None,
         stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("LOADSTONE_")}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "loadstone", *args], capture_output=True, text=True,
                          timeout=120, env=full_env, cwd=cwd, input=stdin)


def _one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("loadstone: error: "), done.stderr
    return lines[0][len("loadstone: error: "):]


# -- typos ---------------------------------------------------------------------------------------------
def test_load_option_typos() -> None:
    typo = "unknown load option 'priorty': did you mean 'priority'?"
    with pytest.raises(ValueError, match=re.escape(typo)) as caught:
        loadstone.load_image("example://ct/0", priorty=3)
    assert isinstance(caught.value, loadstone.LoadOptionError)
    refused = ("unknown load option 'window_centre': known: headers, ignore_cache, priority, request_type, "
               "timeout")
    with pytest.raises(loadstone.LoadOptionError, match=re.escape(refused)):
        loadstone.load_image("example://ct/0", window_centre=40)  # the demo takes loadstone's options only
    with pytest.raises(loadstone.LoadOptionError, match="'ignore_cahce': did you mean 'ignore_cache'"):
        loadstone.load_images(["example://ct/0", "example://ct/1"], ignore_cahce=True)
    with pytest.raises(loadstone.LoadOptionError, match="'timout'"):
        loadstone.load_volume("example://ct", timout=5)


def test_a_loader_that_declares_nothing_receives_everything(loadstone_scheme: Any) -> None:
    received: list[Mapping[str, Any]] = []

    @loadstone.image_loader
    def anything(image_id: str, options: Mapping[str, Any]) -> loadstone.Image:
        received.append(dict(options))
        return loadstone.Image.from_array(image_id, np.zeros((2, 2), np.uint8))

    scheme = loadstone_scheme(anything)
    loadstone.load_image(f"{scheme}:1", window_centre=40, my_token="t").result(TIMEOUT)
    assert received[-1]["window_centre"] == 40 and received[-1]["my_token"] == "t"
    with pytest.raises(loadstone.LoadOptionError, match="did you mean 'priority'"):  # near misses still not
        loadstone.load_image(f"{scheme}:2", priorty=1)


def test_a_loader_that_declares_its_options(loadstone_scheme: Any) -> None:
    @loadstone.image_loader(options=("frame_cache",))
    def declared(image_id: str, options: Mapping[str, Any]) -> loadstone.Image:
        return loadstone.Image.from_array(image_id, np.zeros((2, 2), np.uint8))

    scheme = loadstone_scheme(declared)
    assert loadstone.load_image(f"{scheme}:1", frame_cache=True).result(TIMEOUT).rows == 2
    with pytest.raises(loadstone.LoadOptionError, match="'frame_cach': did you mean 'frame_cache'\\?"):
        loadstone.load_image(f"{scheme}:2", frame_cach=True)


def test_event_and_metadata_module_typos() -> None:
    with pytest.raises(ValueError, match="unknown event 'IMAGE_LODED': did you mean 'IMAGE_LOADED'\\?"):
        loadstone.events.subscribe("IMAGE_LODED", print)
    with pytest.raises(ValueError, match="unknown metadata module 'imagePlaneModul': did you mean "
                                         "'imagePlaneModule'\\?"):
        loadstone.metadata.get("imagePlaneModul", "example://ct/0")
    unsubscribe = loadstone.events.subscribe("MY_APP_EVENT", print)  # a name far from every known one
    unsubscribe()
    assert loadstone.metadata.get("myPluginModule", "example://ct/0") is None


def test_cli_option_typo_is_a_usage_error() -> None:
    done = _cli("info", "example://ct/0", "--option", "window_centre=40")
    assert done.returncode == 2
    assert _one_error_line(done) == ("unknown load option 'window_centre': known: headers, ignore_cache, "
                                     "priority, request_type, timeout (given with --option)")


# -- guidance on mistakes ------------------------------------------------------------------------------------
def test_a_bare_path_suggests_its_id(tmp_path: Path) -> None:
    (tmp_path / "x.dcm").write_bytes(b"\0" * 128 + b"DICM")
    done = _cli("info", str(tmp_path / "x.dcm"))
    assert done.returncode == 1
    assert _one_error_line(done).endswith(f"; for a DICOM file use 'dicomfile:{tmp_path / 'x.dcm'}'")
    done = _cli("info", "./x.dcm", cwd=tmp_path)
    assert f"use 'dicomfile:{tmp_path / 'x.dcm'}'" in done.stderr
    done = _cli("info", str(tmp_path))
    assert f"it is a folder: as a series use 'dicomfile:{tmp_path}'" in done.stderr
    done = _cli("info", "C:\\data\\x.dcm")
    assert "looks like a Windows path: give it as 'dicomfile:C:\\data\\x.dcm'" in done.stderr


def test_an_unknown_scheme_suggests_the_nearest_installed_one() -> None:
    done = _cli("info", "dicomfle:/data/x.dcm")
    assert done.returncode == 1
    assert "no image loader for scheme 'dicomfle'" in done.stderr
    assert "did you mean 'dicomfile'?" in done.stderr
    assert "pip install" not in done.stderr


def test_pip_install_only_for_what_is_not_installed() -> None:
    disabled = _cli("info", "dicomfile:/x.dcm", env={"LOADSTONE_DISABLE_PLUGINS": "wado"})
    assert "plugin 'wado' serves it but is disabled (LOADSTONE_DISABLE_PLUGINS)" in disabled.stderr
    assert "pip install" not in disabled.stderr
    installed = _cli("info", "nosuchscheme:1")
    assert "pip install" not in installed.stderr


def test_a_series_id_given_as_an_image_id() -> None:
    with pytest.raises(loadstone.InvalidImageError) as caught:
        loadstone.load_image("example://ct").result(TIMEOUT)
    assert str(caught.value).startswith(
        "'example://ct' is a series id, not an image id: get its 64 image ids with "
        "loadstone.series_image_ids('example://ct') (on the command line: loadstone fetch --series "
        "example://ct -o DIR), or load one slice, e.g. 'example://ct/0'")
    done = _cli("info", "example://ct")
    assert done.returncode == 1 and "loadstone fetch --series example://ct" in _one_error_line(done)


def test_an_image_id_given_as_a_series(tmp_path: Path) -> None:
    with pytest.raises(loadstone.UnknownSchemeError) as caught:
        loadstone.series_image_ids("example://ct/3")
    assert str(caught.value).startswith(
        "no installed plugin expands 'example://ct/3' as a series (the plugin serving 'example:' does not "
        "know it); if it is an image id, load it with loadstone.load_image (on the command line: give it "
        "without --series)")
    done = _cli("fetch", "--series", "example://ct/3", "-o", str(tmp_path))
    assert done.returncode == 1 and "give it without --series" in _one_error_line(done)


def test_a_bad_mpr_id_states_the_grammar() -> None:
    grammar = ("mpr ids read mpr:<plane>[;<key>=<value>]*;series=<series id> (or ;volume=<volume id>), the "
               "source last; planes: axial, sagittal, coronal, oblique; keys: index, position, normal, up, "
               "point, size, spacing, slab, mode, interp (loadstone-mpr's README: 'Image id grammar')")
    for image_id, why in [("mpr:sagittal", "no source; end the id with ;series=<series id> or "
                                           ";volume=<volume id>"),
                          ("mpr:sagitall;series=example://ct", "unknown plane 'sagitall' (did you mean "
                                                               "'sagittal'?)"),
                          ("mpr:axial;slba=4;series=example://ct",
                           "unknown key 'slba' (did you mean 'slab'?)")]:
        with pytest.raises(loadstone.InvalidImageError) as caught:
            loadstone.load_image(image_id).result(TIMEOUT)
        assert str(caught.value).startswith(f"bad mpr id: {why}. {grammar}"), image_id
    done = _cli("render", "mpr:sagittal", "-o", "-")
    assert _one_error_line(done).startswith(f"bad mpr id: no source; end the id with ;series=<series id> or "
                                            f";volume=<volume id>. {grammar}")


def test_http_errors_quote_one_line_of_the_body() -> None:
    page = (b"<!DOCTYPE html>\n<html><head><title>404 Not Found - MyPACS</title></head><body>"
            + b"<p>a long help page</p>\n" * 300 + b"</body></html>")
    server = Server(routes={"/x.png": reply(page, "text/html", status=404, reason="Not Found")})
    try:
        url = server.url("/x.png")
        with pytest.raises(loadstone.TransportError) as caught:
            loadstone.load_image(url, retries=0).result(TIMEOUT)
        assert str(caught.value) == f"HTTP 404 Not Found from {url}: 404 Not Found - MyPACS"
        assert caught.value.status == 404
        done = _cli("info", url)
        assert _one_error_line(done) == f"HTTP 404 Not Found from {url}: 404 Not Found - MyPACS"
    finally:
        server.stop()


# -- images are arrays ---------------------------------------------------------------------------------------
def test_images_are_arrays_and_save_themselves(tmp_path: Path) -> None:
    image = loadstone.load_image("example://ct/32").result(TIMEOUT)
    array = np.asarray(image)
    assert array is image.pixel_data or np.shares_memory(array, image.pixel_data)
    assert (image.shape, image.dtype) == ((128, 128), np.dtype(np.int16)) == (array.shape, array.dtype)
    assert np.asarray(image, dtype=np.float32).dtype == np.float32
    assert float(np.mean(image)) == pytest.approx(float(image.pixel_data.mean()))
    image.save(tmp_path / "ct.npy")
    assert np.array_equal(np.load(tmp_path / "ct.npy"), image.pixel_data)
    image.save(str(tmp_path / "ct.png"), window_center=40, window_width=400)
    assert np.array_equal(np.asarray(PILImage.open(tmp_path / "ct.png")),
                          image.render(window_center=40, window_width=400))
    refused = "Image.save writes .png (rendered) or .npy (stored values), not '.jpg'"
    with pytest.raises(ValueError, match=re.escape(refused)):
        image.save(tmp_path / "ct.jpg")


# -- volumes and progress -----------------------------------------------------------------------------------
def test_load_volume_of_the_demo_ct() -> None:
    volume = loadstone.load_volume("example://ct")
    array, affine = volume
    assert array.shape == (64, 128, 128)
    assert volume.spacing == pytest.approx((2.5, 2.5, 3.0))
    assert np.allclose(affine, [[2.5, 0, 0, -158.75], [0, 2.5, 0, -158.75], [0, 0, 3, -250], [0, 0, 0, 1]])
    assert list(volume.image_ids) == loadstone.series_image_ids("example://ct")
    assert np.array_equal(array[10], loadstone.load_image("example://ct/10").result(TIMEOUT).pixel_data)
    assert loadstone.load_volume(volume.image_ids[:8]).array.shape == (8, 128, 128)  # ids work too


def test_as_completed_yields_every_load() -> None:
    loads = loadstone.load_images([f"example://mr/{i}" for i in range(6)])
    finished = list(loadstone.as_completed(loads, timeout=TIMEOUT))
    assert sorted(map(id, finished)) == sorted(map(id, loads)) and all(load.done() for load in finished)


PROGRESS_SCRIPT = """
import loadstone
loads = loadstone.load_images([f"example://ct/{i}" for i in range(20)], progress=True)
[load.result(30) for load in loads]
more = loadstone.load_images([f"example://mr/{i}" for i in range(5)])
for load in loadstone.as_completed(more, progress=True):
    pass
volume = loadstone.load_volume("example://mr", progress=True)
print("ok", volume.array.shape)
"""


def test_progress_bars_write_nothing_into_a_log_or_pipe(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOADSTONE_")}
    with open(log, "w") as handle:
        done = subprocess.run([sys.executable, "-c", PROGRESS_SCRIPT], stdout=subprocess.PIPE, stderr=handle,
                              text=True, timeout=120, env=env)
    assert done.returncode == 0 and done.stdout.startswith("ok ")
    assert log.read_text() == ""  # no bar, no carriage returns, no escape codes
    done = subprocess.run([sys.executable, "-c", PROGRESS_SCRIPT], capture_output=True, text=True,
                          timeout=120, env=env)
    assert done.returncode == 0 and done.stderr == ""
    fetched = _cli("fetch", "--series", "example://mr", "-o", str(tmp_path / "out"))
    assert fetched.returncode == 0 and "\r" not in fetched.stderr and "\x1b" not in fetched.stderr


# -- the CLI takes what the API takes ------------------------------------------------------------------------
@pytest.fixture
def png_server() -> Iterator[tuple[Server, list[Request]]]:
    """A loopback server that answers /a.png with a PNG and records every request's headers."""
    png = loadstone.Image.from_array("png", np.arange(64, dtype=np.uint8).reshape(8, 8)).to_png()
    seen: list[Request] = []
    lock = threading.Lock()

    def handler(request: Request, connection: Connection) -> None:
        with lock:
            seen.append(request)
        if request.headers.get("authorization") in (None, "Bearer wrong"):
            connection.send(response(401, b"<html><title>Unauthorized</title></html>",
                                     {"Content-Type": "text/html"}, "Unauthorized"))
            return
        connection.send(response(200, png, {"Content-Type": "image/png"}))

    server = Server(routes={"/a.png": handler})
    try:
        yield server, seen
    finally:
        server.stop()


def test_cli_headers_token_and_options(png_server: tuple[Server, list[Request]], tmp_path: Path) -> None:
    server, seen = png_server
    url = server.url("/a.png")
    refused = _cli("info", url)
    assert refused.returncode == 1 and "HTTP 401 Unauthorized" in _one_error_line(refused)

    done = _cli("info", url, "--header", "Authorization: Bearer abc", "--header", "X-Trace: 7", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rows"] == 8
    assert seen[-1].headers["authorization"] == "Bearer abc" and seen[-1].headers["x-trace"] == "7"

    done = _cli("info", url, env={"LOADSTONE_HEADERS": "Authorization: Bearer env; X-Env: 1"})
    assert done.returncode == 0, done.stderr
    assert (seen[-1].headers["authorization"], seen[-1].headers["x-env"]) == ("Bearer env", "1")

    done = _cli("info", url, "--bearer-token-env", "MY_TOKEN", env={"MY_TOKEN": "s3cret\n"})
    assert done.returncode == 0, done.stderr
    assert seen[-1].headers["authorization"] == "Bearer s3cret"
    missing = _cli("info", url, "--bearer-token-env", "NO_SUCH_VARIABLE")
    assert missing.returncode == 2
    assert _one_error_line(missing) == ("--bearer-token-env: the environment variable NO_SUCH_VARIABLE is "
                                        "not set or empty")

    capped = _cli("info", url, "--header", "Authorization: Bearer abc", "--option", "max_bytes=10")
    assert capped.returncode == 1 and "10 bytes" in capped.stderr
    as_json = _cli("info", url, "--option", 'headers={"Authorization": "Bearer json"}')
    assert as_json.returncode == 0, as_json.stderr
    assert seen[-1].headers["authorization"] == "Bearer json"


def test_cli_set_and_timeout(tmp_path: Path) -> None:
    PILImage.fromarray(np.full((5, 7), 9, np.uint8)).save(tmp_path / "grey.png")
    denied = _cli("info", f"web:file://{tmp_path / 'grey.png'}")
    assert denied.returncode == 1 and "file_root" in denied.stderr
    allowed = _cli("info", f"web:file://{tmp_path / 'grey.png'}", "--set", f"web.file_root={tmp_path}",
                   "--json")
    assert allowed.returncode == 0, allowed.stderr
    assert json.loads(allowed.stdout)["columns"] == 7
    typo = _cli("info", "example://ct/0", "--set", "web.file_rot=/data")
    assert typo.returncode == 2 and "did you mean 'file_root'?" in typo.stderr
    slow = _cli("info", "example://ct/0", "--set", "base64_demo.latency=5", "--timeout", "0.3")
    assert slow.returncode == 1
    assert _one_error_line(slow) == "load did not finish within 0.3 s (image id 'example://ct/0')"


def test_fetch_manifest_holds_the_geometry_to_restack(tmp_path: Path) -> None:
    done = _cli("fetch", "--series", "example://ct", "-o", str(tmp_path), "-q")
    assert done.returncode == 0, done.stderr
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["series"] == ["example://ct"]
    entries = manifest["images"]  # image id -> entry
    assert len(entries) == 64
    volume = loadstone.load_volume("example://ct")
    for image_id in (volume.image_ids[0], volume.image_ids[31], volume.image_ids[63]):
        entry = entries[image_id]
        plane = loadstone.metadata.get("imagePlaneModule", image_id)
        assert entry["image_position_patient"] == plane["image_position_patient"]
        assert entry["image_orientation_patient"] == plane["image_orientation_patient"]
        assert entry["pixel_spacing"] == plane["pixel_spacing"]
    # restacked from the files alone: sorted along the normal of their orientation
    normal = np.cross(*np.reshape(entries[volume.image_ids[0]]["image_orientation_patient"], (2, 3)))
    order = sorted(entries.values(), key=lambda e: float(np.dot(normal, e["image_position_patient"])))
    stacked = np.stack([np.load(tmp_path / entry["file"]) for entry in order])
    assert np.array_equal(stacked, volume.array)

"""The ``loadstone`` command line, run in-process through ``loadstone.cli.main``.

Synthetic images come from a user loader registered for the scheme
``clitest``; every test that changes global state undoes it (cache purged,
loaders unregistered, plugins forgotten).
"""

from __future__ import annotations

import io
import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import textwrap
import threading
import time
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image as PILImage

import loadstone
from loadstone import __version__
from loadstone.cli import main
from loadstone.testing import reset_plugins

SCHEME = "clitest"
SUMMARY_RE = re.compile(
    r"^(\d+) images, [\d.]+ MB in [\d.e-]+ s \([\d.e+-]+ images/s, [\d.e+-]+ MB/s\)$"
)


# -- fixtures ------------------------------------------------------------------
def synthetic(image_id: str) -> loadstone.Image:
    """A small CT-like int16 image, the same for the same id (so tests can recompute it)."""
    rng = np.random.default_rng(zlib.crc32(image_id.encode()))
    pixels = rng.integers(0, 3000, size=(12, 17), dtype=np.int16)
    return loadstone.Image.from_array(
        image_id, pixels, slope=1.0, intercept=-1024.0, window_center=40.0, window_width=400.0,
        row_pixel_spacing=0.5, column_pixel_spacing=0.75,
    )


def clitest_loader_function(image_id: str, options: Mapping[str, Any]) -> loadstone.Image:
    """Fails for ids containing 'bad'; otherwise a synthetic image."""
    if "bad" in image_id:
        raise loadstone.InvalidImageError("synthetic failure for a bad id", image_id=image_id)
    return synthetic(image_id)


@pytest.fixture
def clitest() -> Iterator[str]:
    """Register the ``clitest`` scheme; cache purged and loader removed afterwards."""
    loadstone.register_image_loader(SCHEME, loadstone.image_loader(clitest_loader_function))
    try:
        yield SCHEME
    finally:
        loadstone.cancel_load_all()
        loadstone.cache.purge()
        loadstone.unregister_image_loader(SCHEME)


@pytest.fixture
def hand_plugins() -> Iterator[None]:
    """Forget hand-registered plugins after the test (discovery runs again on next use)."""
    yield
    loadstone.cache.purge()
    reset_plugins()


def error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("loadstone: error:")]


def assert_one_error_line(err: str, *needles: str) -> str:
    """The stderr of a failed command: exactly one error line, no traceback."""
    assert "Traceback" not in err
    lines = error_lines(err)
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0]
    return lines[0]


def summary_count(out: str) -> int:
    """The N of the fetch summary line ``N images, …`` (the last line of stdout)."""
    match = SUMMARY_RE.match(out.strip().splitlines()[-1])
    assert match, out
    return int(match.group(1))


def read_png(path: Path | bytes) -> np.ndarray:
    source = io.BytesIO(path) if isinstance(path, bytes) else path
    with PILImage.open(source) as png:
        return np.asarray(png)


# -- top level -----------------------------------------------------------------
def test_version_runs_as_module() -> None:
    done = subprocess.run([sys.executable, "-m", "loadstone", "--version"],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"loadstone {__version__}"


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("plugins", "info", "render", "fetch", "demo"):
        assert command in out


def test_no_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    assert "usage: loadstone" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [
    ["nosuchcommand"],
    ["render", "clitest://a"],                          # -o missing
    ["render", "clitest://a", "-o", "x.png", "--window", "40"],
    ["fetch", "clitest://a", "-o", "d", "--concurrency", "0"],
    ["info", "clitest://a", "--timeout", "soon"],
])
def test_usage_errors_exit_2_with_one_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert_one_error_line(captured.err)
    assert "usage:" not in captured.err
    assert captured.out == ""


def test_zero_window_width_is_a_usage_error(clitest: str, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", "clitest://a", "-o", str(tmp_path / "a.png"), "--window", "40", "0"]) == 2
    assert_one_error_line(capsys.readouterr().err, "width")
    assert not (tmp_path / "a.png").exists()


# -- errors ----------------------------------------------------------------------
def test_unknown_scheme_exits_1_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "nosuchscheme://x/1"]) == 1
    captured = capsys.readouterr()
    assert_one_error_line(captured.err, "nosuchscheme")
    assert captured.err.count("\n") == 1
    assert captured.out == ""


def test_id_without_scheme_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "noscheme"]) == 1
    assert_one_error_line(capsys.readouterr().err, "no scheme")


def test_load_error_exits_1_with_one_line(clitest: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "clitest://bad"]) == 1
    assert_one_error_line(capsys.readouterr().err, "synthetic failure", "clitest://bad")


@pytest.mark.parametrize("argv", [
    ["--debug", "info", "nosuchscheme://x"],
    ["info", "nosuchscheme://x", "--debug"],
])
def test_debug_shows_the_traceback(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err
    assert "UnknownSchemeError" in err
    assert err.rstrip().splitlines()[-1].startswith("loadstone: error:")


def test_debug_logging_is_removed_afterwards(clitest: str, capsys: pytest.CaptureFixture[str]) -> None:
    import logging

    logger = logging.getLogger("loadstone")
    handlers, level = list(logger.handlers), logger.level
    assert main(["--debug", "info", "clitest://a"]) == 0
    assert logger.handlers == handlers
    assert logger.level == level


def test_timeout_gives_load_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    gate = threading.Event()

    def slow(image_id: str, options: Mapping[str, Any]) -> loadstone.Image:
        gate.wait(10)
        return synthetic(image_id)

    loadstone.register_image_loader("clitestslow", loadstone.image_loader(slow))
    try:
        started = time.perf_counter()
        assert main(["render", "clitestslow://a", "-o", str(tmp_path / "a.png"), "--timeout", "0.2"]) == 1
        assert time.perf_counter() - started < 5
        assert_one_error_line(capsys.readouterr().err, "0.2")
        assert not (tmp_path / "a.png").exists()
    finally:
        gate.set()
        loadstone.unregister_image_loader("clitestslow")


def test_unwritable_output_exits_1(clitest: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "missing-folder" / "a.png"
    assert main(["render", "clitest://a", "-o", str(target)]) == 1
    assert_one_error_line(capsys.readouterr().err, "missing-folder")


def test_keyboard_interrupt_cancels_loads_and_exits_130() -> None:
    """^C while ``info`` waits: the load is cancelled (its work stops) and the exit code is 130."""
    code = textwrap.dedent("""
        import sys, threading, loadstone
        from loadstone.cli import main

        stopped = threading.Event()

        @loadstone.image_loader
        def blocked(image_id, options):
            print("started", flush=True)
            context = loadstone.current_load()
            if context.wait(30):
                stopped.set()
                context.check()
            raise AssertionError("never cancelled")

        loadstone.register_image_loader("clitestblock", blocked)
        status = main(["info", "clitestblock://a", "--timeout", "60"])
        print("work stopped" if stopped.wait(10) else "work still running", flush=True)
        sys.exit(status)
    """)
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "started"
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 130, err
    assert "work stopped" in out
    assert_one_error_line(err, "interrupted")


# -- render ------------------------------------------------------------------------
@pytest.mark.parametrize(("extra", "window", "invert"), [
    ([], (None, None), None),
    (["--window", "-600", "1500"], (-600.0, 1500.0), None),
    (["--window", "300", "1500", "--invert"], (300.0, 1500.0), True),
])
def test_render_writes_the_rendered_png(extra: list[str], window: tuple[float | None, float | None],
                                        invert: bool | None, clitest: str, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out.png"
    assert main(["render", "clitest://r/1", "-o", str(out), *extra]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    expected = synthetic("clitest://r/1").render(window_center=window[0], window_width=window[1],
                                                 invert=invert)
    np.testing.assert_array_equal(read_png(out), expected)
    assert not list(tmp_path.glob(".*.part"))


def test_render_to_stdout(clitest: str, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    assert main(["render", "clitest://r/2", "-o", "-"]) == 0
    data = capsysbinary.readouterr().out
    np.testing.assert_array_equal(read_png(data), synthetic("clitest://r/2").render())


# -- info ----------------------------------------------------------------------------
@pytest.fixture
def clitest_metadata() -> Iterator[None]:
    def provider(module: str, image_id: str) -> object:
        if not image_id.startswith("clitest:"):
            return None
        if module == "imagePlaneModule":
            return {"pixel_spacing": np.array([0.5, 0.75]), "image_position_patient": (1.0, 2.0, 3.0),
                    "slice_location": float("nan")}
        if module == "generalSeriesModule":
            return {"modality": "CT", "series_number": np.int32(7)}
        return None

    loadstone.metadata.add_provider(provider, 100)
    try:
        yield
    finally:
        loadstone.metadata.remove_provider(provider)


def test_info_json(clitest: str, clitest_metadata: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "clitest://i/1", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    image = synthetic("clitest://i/1")
    assert data["image_id"] == "clitest://i/1"
    assert (data["rows"], data["columns"]) == (12, 17)
    assert data["shape"] == [12, 17]
    assert data["dtype"] == "int16"
    assert data["color"] is False
    assert data["number_of_components"] == 1
    assert data["photometric_interpretation"] == "MONOCHROME2"
    assert data["min_pixel_value"] == image.min_pixel_value
    assert data["max_pixel_value"] == image.max_pixel_value
    assert (data["slope"], data["intercept"]) == (1.0, -1024.0)
    assert (data["window_center"], data["window_width"]) == (40.0, 400.0)
    assert (data["row_pixel_spacing"], data["column_pixel_spacing"]) == (0.5, 0.75)
    assert data["size_in_bytes"] == image.pixel_data.nbytes
    assert data["load_time_ms"] >= 0 and data["decode_time_ms"] >= 0
    plane = data["metadata"]["imagePlaneModule"]
    assert plane == {"pixel_spacing": [0.5, 0.75], "image_position_patient": [1.0, 2.0, 3.0],
                     "slice_location": None}
    assert data["metadata"]["generalSeriesModule"] == {"modality": "CT", "series_number": 7}
    assert "patientModule" not in data["metadata"]  # not answered


def test_info_text(clitest: str, clitest_metadata: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "clitest://i/2"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^rows\s+12$", out, re.MULTILINE)
    assert re.search(r"^columns\s+17$", out, re.MULTILINE)
    assert re.search(r"^dtype\s+int16$", out, re.MULTILINE)
    assert re.search(r"^window_center\s+40$", out, re.MULTILINE)
    assert "imagePlaneModule" in out
    assert re.search(r"^\s+modality\s+CT$", out, re.MULTILINE)


def test_info_does_not_cache(clitest: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "clitest://i/3"]) == 0
    assert "clitest://i/3" not in loadstone.cache


def test_info_json_turns_provider_answers_into_json(clitest: str, capsys: pytest.CaptureFixture[str],
                                                    loadstone_provider: Any) -> None:
    from dataclasses import dataclass

    @dataclass
    class Plane:
        spacing: tuple[float, float]

    value = {"a": np.float32(1.5), "b": np.arange(3), "c": b"\x00\x01", "d": Plane((1.0, 2.0)),
             "e": {1, 2} - {1}, "f": float("inf"), 3: None}
    loadstone_provider(lambda module, image_id: value if module == "generalImageModule" else None, 100)
    assert main(["info", "clitest://j/1", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)  # strict JSON: no NaN or Infinity
    assert data["metadata"]["generalImageModule"] == {
        "a": 1.5, "b": [0, 1, 2], "c": "<2 bytes>", "d": {"spacing": [1.0, 2.0]}, "e": [2], "f": None,
        "3": None}


# -- plugins ----------------------------------------------------------------------------
class CliTestPlugin:
    """A hand-registered plugin with a loader and a series expansion."""

    @loadstone.hookimpl
    def loadstone_image_loaders(self) -> Mapping[str, Any]:
        return {"clitestplug": loadstone.image_loader(clitest_loader_function)}

    @loadstone.hookimpl
    def loadstone_series_image_ids(self, series_id: str) -> list[str] | None:
        if series_id != "clitestplug://series":
            return None
        return [f"clitestplug://series/{index}" for index in range(7)]

    @loadstone.hookimpl
    def loadstone_plugin_details(self) -> Mapping[str, str]:
        return {"note": "for the CLI tests"}


def test_plugins_lists_a_registered_plugin(hand_plugins: None, capsys: pytest.CaptureFixture[str]) -> None:
    loadstone.register_plugin(CliTestPlugin(), "clitest-plugin")
    assert main(["plugins"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:5] == ["PLUGIN", "DISTRIBUTION", "VERSION", "SCHEMES", "STATUS"]
    row = next(line for line in lines if line.startswith("clitest-plugin"))
    assert "clitestplug" in row
    assert "loaded" in row
    assert "    note: for the CLI tests" in lines


def test_plugins_json(hand_plugins: None, capsys: pytest.CaptureFixture[str]) -> None:
    loadstone.register_plugin(CliTestPlugin(), "clitest-plugin")
    assert main(["plugins", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    entry = next(item for item in data if item["name"] == "clitest-plugin")
    assert entry["schemes"] == ["clitestplug"]
    assert entry["status"] == "loaded"
    assert entry["details"] == {"note": "for the CLI tests"}


def test_plugins_when_none_are_installed(monkeypatch: pytest.MonkeyPatch, hand_plugins: None,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("LOADSTONE_DISABLE_PLUGIN_AUTOLOAD", "1")
    reset_plugins()
    assert main(["plugins"]) == 0
    assert "no loadstone plugins found" in capsys.readouterr().out


# -- fetch ----------------------------------------------------------------------------------
def fetched(folder: Path) -> dict[str, Any]:
    manifest: dict[str, Any] = json.loads((folder / "manifest.json").read_text())
    return manifest


def test_fetch_writes_npy_files_and_manifest(clitest: str, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    ids = [f"clitest://f/{index}" for index in range(12)]
    out = tmp_path / "out"
    assert main(["fetch", *ids, "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert summary_count(captured.out) == 12
    assert "\r" not in captured.err  # not a TTY: no bar drawn
    assert "\r" not in captured.err
    assert error_lines(captured.err) == []

    manifest = fetched(out)
    assert list(manifest["images"]) == ids  # input order
    assert manifest["failed"] == {}
    for image_id, entry in manifest["images"].items():
        expected = synthetic(image_id)
        array = np.load(out / entry["file"])
        np.testing.assert_array_equal(array, expected.pixel_data)
        assert array.dtype == expected.pixel_data.dtype
        assert entry["shape"] == [12, 17]
        assert entry["dtype"] == "int16"
        assert (entry["slope"], entry["intercept"]) == (1.0, -1024.0)
        assert (entry["window_center"], entry["window_width"]) == (40.0, 400.0)
        assert (entry["row_pixel_spacing"], entry["column_pixel_spacing"]) == (0.5, 0.75)
        assert "png" not in entry
        assert image_id not in loadstone.cache  # the CLI does not keep a warm cache
    assert sorted(path.name for path in out.iterdir()) == sorted(
        [entry["file"] for entry in manifest["images"].values()] + ["manifest.json"])


def test_fetch_with_a_failing_id(clitest: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ids = ["clitest://f/1", "clitest://bad/1", "clitest://f/2"]
    out = tmp_path / "out"
    assert main(["fetch", *ids, "-o", str(out), "--quiet"]) == 1
    captured = capsys.readouterr()
    assert summary_count(captured.out) == 2
    line = assert_one_error_line(captured.err, "1 of 3 images failed", "clitest://bad/1", "synthetic failure")
    assert captured.err == line + "\n"  # --quiet: nothing else
    manifest = fetched(out)
    assert list(manifest["images"]) == ["clitest://f/1", "clitest://f/2"]
    assert manifest["failed"]["clitest://bad/1"]["error"] == "InvalidImageError"
    for entry in manifest["images"].values():
        assert (out / entry["file"]).is_file()


def test_fetch_lists_only_the_first_failures(clitest: str, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    ids = [f"clitest://bad/{index}" for index in range(6)] + ["nosuchscheme://x"]
    assert main(["fetch", *ids, "-o", str(tmp_path), "-q"]) == 1
    line = assert_one_error_line(capsys.readouterr().err, "7 of 7 images failed", "and 4 more",
                                 "manifest.json")
    assert "clitest://bad/5" not in line
    assert set(fetched(tmp_path)["failed"]) == set(ids)


def test_fetch_series_with_png(hand_plugins: None, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    loadstone.register_plugin(CliTestPlugin(), "clitest-plugin")
    assert main(["fetch", "--series", "clitestplug://series", "-o", str(tmp_path), "--png", "--no-npy"]) == 0
    assert summary_count(capsys.readouterr().out) == 7
    manifest = fetched(tmp_path)
    assert manifest["series"] == ["clitestplug://series"]
    assert list(manifest["images"]) == [f"clitestplug://series/{index}" for index in range(7)]
    for image_id, entry in manifest["images"].items():
        assert "file" not in entry
        np.testing.assert_array_equal(read_png(tmp_path / entry["png"]), synthetic(image_id).render())
    assert not list(tmp_path.glob("*.npy"))


def test_fetch_unknown_series_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fetch", "--series", "nosuchscheme://s", "-o", str(tmp_path / "out")]) == 1
    assert_one_error_line(capsys.readouterr().err, "nosuchscheme://s")
    assert not (tmp_path / "out").exists()


def test_fetch_needs_ids(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fetch", "-o", str(tmp_path)]) == 2
    assert_one_error_line(capsys.readouterr().err, "IMAGE_ID")


def test_fetch_concurrency_limits_and_is_restored(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lock = threading.Lock()
    running = [0, 0]  # now, most

    def counted(image_id: str, options: Mapping[str, Any]) -> loadstone.Image:
        with lock:
            running[0] += 1
            running[1] = max(running)
        try:
            time.sleep(0.02)
            return synthetic(image_id)
        finally:
            with lock:
                running[0] -= 1

    before = loadstone.pool.get_max_concurrent("prefetch")
    loadstone.register_image_loader("clitestcount", loadstone.image_loader(counted))
    try:
        ids = [f"clitestcount://{index}" for index in range(12)]
        assert main(["fetch", *ids, "-o", str(tmp_path), "--concurrency", "2", "-q"]) == 0
    finally:
        loadstone.cache.purge()
        loadstone.unregister_image_loader("clitestcount")
    assert 1 <= running[1] <= 2
    assert loadstone.pool.get_max_concurrent("prefetch") == before
    assert len(fetched(tmp_path)["images"]) == 12


def test_fetch_repeated_ids_are_written_once(clitest: str, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fetch", "clitest://a", "clitest://a", "-o", str(tmp_path), "-q"]) == 0
    assert capsys.readouterr().out.startswith("1 images, ")
    assert len(list(tmp_path.glob("*.npy"))) == 1


def test_fetch_summary_counts_images_and_megabytes(clitest: str, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    ids = [f"clitest://m/{index}" for index in range(10)]
    assert main(["fetch", *ids, "-o", str(tmp_path), "-q"]) == 0
    summary = capsys.readouterr().out.strip().splitlines()[-1]
    assert SUMMARY_RE.match(summary)
    megabytes = 10 * synthetic("clitest://m/0").pixel_data.nbytes / 1e6  # MB = 10**6 bytes
    assert summary.startswith(f"10 images, {megabytes:.2g} MB in ")


def test_fetch_progress_bar_writes_nothing_to_a_log(tmp_path: Path) -> None:
    """In a pipe or a log file the tqdm bar draws nothing: no carriage returns, no escape codes."""
    done = subprocess.run(
        [sys.executable, "-m", "loadstone", "fetch", "--series", "example://ct", "-o", str(tmp_path)],
        capture_output=True, text=True, timeout=120, check=False)
    if "no image loader for scheme 'example'" in done.stderr:
        pytest.skip("loadstone-base64-demo not installed")
    assert done.returncode == 0, done.stderr
    assert "\r" not in done.stderr and "\x1b" not in done.stderr
    assert len(list(tmp_path.glob("*.npy"))) == 64


def test_progress_bar_on_a_terminal_redraws_in_place(tmp_path: Path) -> None:
    """On a terminal (a pseudo-terminal here) ``fetch`` draws one bar, redrawn with ``\\r``."""
    code = textwrap.dedent("""
        import sys, numpy as np, loadstone
        from loadstone.cli import main

        @loadstone.image_loader
        def load(image_id, options):
            if image_id.endswith("/bad"):
                raise loadstone.InvalidImageError("bad", image_id=image_id)
            return loadstone.Image.from_array(image_id, np.zeros((2, 2), np.uint8))

        loadstone.register_image_loader("clitestbar", load)
        ids = [f"clitestbar://{index}" for index in range(49)] + ["clitestbar://bad"]
        sys.exit(main(["fetch", *ids, "-o", sys.argv[1]]))
    """)
    leader, follower = pty.openpty()
    process = None
    try:
        process = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.DEVNULL,
                                   stderr=follower, env={**os.environ, "COLUMNS": "100"})
        os.close(follower)
        follower = -1
        chunks = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if not select.select([leader], [], [], 1.0)[0]:
                if process.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert process.wait(timeout=10) == 1  # one id failed
    finally:
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
        os.close(leader)
        if follower >= 0:
            os.close(follower)
    text = b"".join(chunks).decode().replace("\r\n", "\n")  # the terminal turns \n into \r\n
    bar, _, rest = text.partition("\n")
    assert bar.startswith("\r")
    last = bar.split("\r")[-1]
    assert "50/50" in last and "100%" in last and "1 failed" in last
    assert error_lines(rest) and "1 of 50 images failed" in rest


# -- demo ----------------------------------------------------------------------------------
def _example_installed() -> bool:
    try:
        return "example" in loadstone.schemes()
    except Exception:
        return False


@pytest.mark.skipif(not _example_installed(), reason="loadstone-base64-demo (scheme 'example') not installed")
def test_demo_renders_pngs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo"
    try:
        assert main(["demo", "-o", str(out)]) == 0
    finally:
        loadstone.cache.purge()
    lines = capsys.readouterr().out.strip().splitlines()
    pngs = sorted(out.glob("*.png"))
    assert len(pngs) >= 5
    assert len(lines) == len(pngs) + 1
    for line in lines[:-1]:
        path = Path(line.split()[0])
        assert path.is_file()
        pixels = read_png(path)
        assert pixels.dtype == np.uint8 and pixels.size > 0
        assert pixels.min() < pixels.max()  # not a blank image
    assert str(out.resolve()) in lines[-1]
    assert {path.name for path in pngs} >= {"ct-middle.png", "ct-lung.png", "ct-bone.png",
                                            "mr-middle.png", "color-0.png"}
    assert read_png(out / "color-0.png").ndim == 3


def test_demo_without_the_plugin_says_what_to_install(
        monkeypatch: pytest.MonkeyPatch, hand_plugins: None, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("LOADSTONE_DISABLE_PLUGIN_AUTOLOAD", "1")
    reset_plugins()
    assert main(["demo", "-o", str(tmp_path / "demo")]) == 1
    captured = capsys.readouterr()
    assert_one_error_line(captured.err, "pip install loadstone-base64-demo")
    assert captured.err.count("\n") == 1
    assert not (tmp_path / "demo").exists()

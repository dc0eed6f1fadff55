"""The conformance kit itself: it passes good plugins, catches broken ones, and skips what does not apply."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

import loadstone
from loadstone import Image, InvalidImageError, image_loader
from loadstone.testing import (
    LoaderContract,
    MetadataContract,
    SeriesContract,
    check_image,
    check_loader,
    check_metadata,
    check_series,
)

REPO = Path(__file__).resolve().parents[2]
SPACING = (0.5, 0.75)


def grey(image_id: str) -> Image:
    return Image.from_array(image_id, np.arange(20, dtype=np.int16).reshape(4, 5), window_center=10.0,
                            window_width=20.0, row_pixel_spacing=SPACING[0], column_pixel_spacing=SPACING[1])


@image_loader
def good_loader(image_id: str, options: Mapping[str, Any]) -> Image:
    name = image_id.split(":", 1)[1]
    if name == "missing":
        raise InvalidImageError("no such image", image_id=image_id)
    if name == "rgb":
        return Image.from_array(image_id, np.full((4, 5, 3), 7, dtype=np.uint8))
    return grey(image_id)


def good_metadata(module: str, image_id: str) -> Any:
    """What a provider of ``good_loader``'s grey ids answers."""
    if not image_id.startswith("kit:grey"):
        return None
    if module == "imagePixelModule":
        return {"rows": 4, "columns": 5, "samples_per_pixel": 1, "photometric_interpretation": "MONOCHROME2",
                "bits_allocated": 16, "bits_stored": 12, "pixel_representation": 1}
    if module == "imagePlaneModule":
        index = int(image_id.rsplit("/", 1)[1]) if "/" in image_id else 0
        return {"rows": 4, "columns": 5, "pixel_spacing": list(SPACING), "row_pixel_spacing": SPACING[0],
                "column_pixel_spacing": SPACING[1], "image_orientation_patient": [1, 0, 0, 0, 1, 0],
                "image_position_patient": [0.0, 0.0, 2.5 * index]}
    if module == "modalityLutModule":
        return {"rescale_slope": 1.0, "rescale_intercept": 0.0}
    return None


class TestGoodLoaderPasses(LoaderContract):
    loader = good_loader
    valid_ids = ("kit:grey", "kit:rgb")
    invalid_ids: ClassVar[Mapping[str, type[BaseException]]] = {"kit:missing": InvalidImageError}


class TestGoodMetadataPasses(MetadataContract):
    loader = good_loader
    valid_ids = ("kit:grey", "kit:grey/3")

    @pytest.fixture(autouse=True)
    def _provider(self, loadstone_provider: Callable[..., Any]) -> None:
        loadstone_provider(good_metadata)


class _SeriesPlugin:
    """Expands ``kit-series:N`` into N grey ids (in order, or in ``order``)."""

    def __init__(self, scheme: str, order: Sequence[int] | None = None) -> None:
        self.scheme = scheme
        self.order = order

    @loadstone.hookimpl
    def loadstone_series_image_ids(self, series_id: str) -> list[str] | None:
        prefix = f"{self.scheme}-series:"
        if not series_id.startswith(prefix):
            return None
        count = int(series_id[len(prefix):])
        order = self.order if self.order is not None else range(count)
        return [f"{self.scheme}:grey/{index}" for index in order]


@pytest.fixture
def series_scheme(loadstone_fresh_plugins: None, loadstone_scheme: Callable[..., str],
                  loadstone_provider: Callable[..., Any]) -> Callable[..., str]:
    """``series_scheme(order=None) -> scheme``: grey ids with positions and a plugin that expands series."""

    def make(order: Sequence[int] | None = None) -> str:
        scheme = loadstone_scheme(good_loader, "kit")
        loadstone.register_plugin(_SeriesPlugin(scheme, order), f"{scheme}-series-plugin")
        loadstone_provider(lambda module, image_id: good_metadata(
            module, image_id.replace(f"{scheme}:", "kit:", 1)) if image_id.startswith(f"{scheme}:") else None)
        return scheme

    return make


class TestGoodSeriesPasses(SeriesContract):
    invalid_series_ids: ClassVar[Mapping[str, type[BaseException]]] = {
        "nosuchscheme-series:3": loadstone.UnknownSchemeError}

    @pytest.fixture(autouse=True)
    def _series(self, series_scheme: Callable[..., str]) -> None:
        self.series_ids = [f"{series_scheme()}-series:4"]


# -- a loader that only cancel can stop ---------------------------------------------------
class _Stalling:
    """A loopback server that accepts and never answers: a load that only cancel can end."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.address = self.server.getsockname()
        self.stopped = threading.Event()

    def loader(self) -> Any:
        @image_loader
        def stall(image_id: str, options: Mapping[str, Any]) -> Image:
            sock = socket.create_connection(self.address, timeout=30)
            loadstone.current_load().on_cancel(lambda: sock.shutdown(socket.SHUT_RDWR))  # type: ignore[union-attr]
            try:
                sock.recv(1)
                loadstone.current_load().check()  # type: ignore[union-attr]
                raise AssertionError("unreachable: the server never sends")
            finally:
                sock.close()
                self.stopped.set()

        return stall


_stalling = _Stalling()


@pytest.fixture(scope="module", autouse=True)
def _close_stalling_server() -> Iterator[None]:
    yield
    _stalling.server.close()


class TestStallingLoaderHonoursCancelAndTimeout(LoaderContract):
    loader = _stalling.loader()
    valid_ids = ()
    slow_id = "stall:1"


# -- skipped, not passed ----------------------------------------------------------------------
class _Bare(LoaderContract):
    loader = good_loader


@pytest.mark.parametrize(("method", "reason"), [
    ("test_image_fields_agree_with_pixels", "no valid_ids"),
    ("test_failures_are_typed", "no invalid_ids"),
    ("test_failed_load_leaves_no_cache_entry", "no invalid_ids"),
    ("test_concurrent_loads_agree", "no valid_ids"),
    ("test_cancel_is_honoured", "no slow_id nor valid_ids"),
    ("test_timeout_is_honoured", "no slow_id"),
    ("test_metadata_agrees_with_images", "has_metadata is False"),
    ("test_series_expand_to_ids_that_load", "no series_ids"),
    ("test_series_are_in_order_in_space", "no series_ids"),
    ("test_invalid_series_fail_typed", "no invalid_series_ids"),
])
def test_checks_that_do_not_apply_are_skipped_with_the_reason(method: str, reason: str) -> None:
    with pytest.raises(pytest.skip.Exception, match=reason):
        getattr(_Bare(), method)()


@pytest.mark.parametrize(("flags", "method", "reason"), [
    ({"supports_cancel": False, "slow_id": "s:1"}, "test_cancel_is_honoured", "supports_cancel is False"),
    ({"supports_timeout": False, "slow_id": "s:1"}, "test_timeout_is_honoured", "supports_timeout is False"),
    ({"valid_ids": ("kit:grey",)}, "test_bulk_loads_agree", "set loader to the scheme"),
    ({"series_ids": ("x",), "series_in_space_order": False}, "test_series_are_in_order_in_space",
     "series_in_space_order is False"),
])
def test_capability_flags_skip_their_checks(flags: dict[str, Any], method: str, reason: str) -> None:
    contract = type("Flagged", (_Bare,), flags)()
    with pytest.raises(pytest.skip.Exception, match=reason):
        getattr(contract, method)()


# -- the registry is left alone ---------------------------------------------------------------------
def test_the_contract_never_changes_the_registry() -> None:
    before = loadstone.schemes()
    seen: list[list[str]] = []

    @image_loader
    def watching(image_id: str, options: Mapping[str, Any]) -> Image:
        seen.append(loadstone.schemes())  # what the registry holds while the kit loads
        return good_loader.func(image_id, options)

    class Watched(LoaderContract):
        loader = watching
        valid_ids = ("kit:grey",)
        invalid_ids: ClassVar[Mapping[str, type[BaseException]]] = {"kit:missing": InvalidImageError}

    contract = Watched()
    for name in dir(contract):
        if name.startswith("test_"):
            with contextlib.suppress(pytest.skip.Exception):
                getattr(contract, name)()
    assert seen and all(schemes == before for schemes in seen)
    assert loadstone.schemes() == before


# -- the checks catch what is wrong ------------------------------------------------------------------
def test_check_image_catches_wrong_min_max() -> None:
    image = Image.from_array("x:1", np.arange(4, dtype=np.uint8).reshape(2, 2))
    image.max_pixel_value = 99
    with pytest.raises(AssertionError, match="min/max"):
        check_image(image)


def test_check_image_catches_shape_mismatch() -> None:
    image = Image.from_array("x:1", np.zeros((2, 3), dtype=np.uint8))
    image.rows = 3
    with pytest.raises(AssertionError, match="shape"):
        check_image(image)


def test_check_loader_catches_untyped_failure() -> None:
    @image_loader
    def leaky(image_id: str, options: Mapping[str, Any]) -> Image:
        raise InvalidImageError("bad", image_id=image_id)

    with pytest.raises(AssertionError, match="expected UnsupportedError"):
        check_loader(leaky, [], {"leaky:1": loadstone.UnsupportedError}, timeout=5)


def test_check_loader_catches_a_blocking_loader() -> None:
    def blocking(image_id: str, options: Mapping[str, Any]) -> loadstone.ImageLoadObject:
        return loadstone.ImageLoadObject.from_image(Image.from_array(image_id, np.zeros((1, 1), np.uint8)))

    class Slow(LoaderContract):
        loader = blocking
        valid_ids = ("slow:1",)
        return_within = -1.0  # any time is too long: the check must fire

    with pytest.raises(AssertionError, match="slow work must run elsewhere"):
        Slow().test_returns_load_object_at_once()


def answering(**changes: dict[str, Any]) -> Callable[[str, str], Any]:
    """``good_metadata`` with some modules' keys changed (``imagePlaneModule={"rows": 7}``)."""

    def get(module: str, image_id: str) -> Any:
        answer = good_metadata(module, "kit:grey")
        if answer is not None and module in changes:
            answer = {**answer, **changes[module]}
        return answer

    return get


def test_check_metadata_passes_agreeing_answers() -> None:
    answers = check_metadata(grey("kit:grey"), get=answering())
    assert set(answers) == {"imagePixelModule", "imagePlaneModule", "modalityLutModule"}


@pytest.mark.parametrize(("changes", "message"), [
    ({"imagePixelModule": {"rows": 7}}, "imagePixelModule says rows 7, the image has 4"),
    ({"imagePixelModule": {"samples_per_pixel": 3}}, "3 sample.* but the image is grey"),
    ({"imagePixelModule": {"photometric_interpretation": "MONOCHROME1"}}, "says MONOCHROME1"),
    ({"imagePixelModule": {"bits_stored": 4}}, "outside the 4-bit signed range -8..7"),
    ({"imagePixelModule": {"bits_stored": 20}}, "bits_stored 20 above bits_allocated 16"),
    ({"imagePlaneModule": {"columns": 6}}, "imagePlaneModule says columns 6"),
    ({"imagePlaneModule": {"row_pixel_spacing": 0.6, "pixel_spacing": [0.6, 0.75]}},
     "row_pixel_spacing 0.6, the image 0.5"),
    ({"imagePlaneModule": {"pixel_spacing": [0.5, 0.8]}}, "disagrees with row/column_pixel_spacing"),
    ({"imagePlaneModule": {"row_pixel_spacing": None, "column_pixel_spacing": None, "pixel_spacing": None}},
     "row_pixel_spacing None, the image 0.5"),
    ({"imagePlaneModule": {"image_orientation_patient": [1, 0, 0, 0, 2, 0]}}, "not two orthogonal unit"),
    ({"imagePlaneModule": {"image_orientation_patient": [1, 0, 0]}}, "is not 6 numbers"),
    ({"imagePlaneModule": {"image_position_patient": [0, "x", 0]}}, "is not 3 numbers"),
    ({"modalityLutModule": {"rescale_intercept": -1024}}, "rescale_intercept -1024, the image 0"),
])
def test_check_metadata_catches_disagreement(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(AssertionError, match=message):
        check_metadata(grey("kit:grey"), get=answering(**changes))


def test_check_metadata_requires_what_it_is_told() -> None:
    with pytest.raises(AssertionError, match="no metadata provider answers patientModule"):
        check_metadata(grey("kit:grey"), get=answering(), required=("patientModule",))
    with pytest.raises(AssertionError, match="not a mapping"):
        check_metadata(grey("kit:grey"), get=lambda module, image_id: [1, 2])


def test_check_series_loads_and_orders(series_scheme: Callable[..., str]) -> None:
    scheme = series_scheme()
    images = check_series(f"{scheme}-series:3")
    assert [image.image_id for image in images] == [f"{scheme}:grey/{index}" for index in range(3)]
    assert not any(image.image_id in loadstone.cache for image in images)  # it cleans up after itself
    reverse = series_scheme(order=[2, 1, 0])
    check_series(f"{reverse}-series:3")  # descending along the normal is in order too


@pytest.mark.parametrize(("order", "message"), [
    ([0, 2, 1], "not in order along the slice normal"),
    ([0, 1, 1], "more than once"),
    ([], "not a non-empty list"),
])
def test_check_series_catches_bad_expansions(series_scheme: Callable[..., str], order: list[int],
                                             message: str) -> None:
    scheme = series_scheme(order=order)
    with pytest.raises(AssertionError, match=message):
        check_series(f"{scheme}-series:3")


def test_check_series_catches_ids_that_do_not_load(series_scheme: Callable[..., str]) -> None:
    scheme = series_scheme(order=[0, 1])
    loadstone.register_plugin(_SeriesPlugin(f"{scheme}bad"), f"{scheme}-bad-plugin")
    with pytest.raises(AssertionError, match="does not load: UnknownSchemeError"):
        check_series(f"{scheme}bad-series:2")


# -- as a plugin author uses it: a fresh pytest, the README's example ------------------------------------
README_TEST = re.compile(r"<!-- kit-test: (?P<path>\S+) -->\s*```\w*\n(?P<body>.*?)```", re.S)
README_PLUGIN = re.compile(r"<!-- plugin-file: loadstone_npy.py -->\s*```\w*\n(?P<body>.*?)```", re.S)

FIXTURE_TESTS = '''
import numpy as np
import loadstone

def load(image_id, options):
    return loadstone.ImageLoadObject.from_image(
        loadstone.Image.from_array(image_id, np.zeros((2, 2), np.uint8)))

SEEN = []

def test_a_fixture_registers(loadstone_scheme, loadstone_load, loadstone_load_error):
    scheme = loadstone_scheme(load)
    SEEN.append(scheme)
    assert loadstone_load(f"{scheme}:1").rows == 2
    loadstone_load_error("nosuchscheme:1", loadstone.UnknownSchemeError)
    loadstone.cache.set_maximum_size_bytes(10)

def test_b_it_is_gone_afterwards(loadstone_isolated):
    assert SEEN and SEEN[0] not in loadstone.schemes()
    assert loadstone.cache.get_maximum_size_bytes() == 10  # nothing put that back (no loadstone_isolated)
    loadstone.cache.set_maximum_size_bytes(20)

def test_c_isolated_put_it_back():
    assert loadstone.cache.get_maximum_size_bytes() == 10
'''


def test_the_readme_example_runs_as_it_stands(fake_dists: Any, tmp_path: Path) -> None:
    """The README's plugin, installed (a fake distribution), tested by its test in a fresh pytest."""
    readme = (REPO / "README.md").read_text()
    tests = {match["path"]: match["body"] for match in README_TEST.finditer(readme)}
    plugin = README_PLUGIN.search(readme)
    assert "test_npy.py" in tests and plugin is not None, "README lost the kit example"
    fake_dists.add("loadstone-npy", {"npy": "loadstone_npy"}, {"loadstone_npy": plugin["body"]},
                   schemes={"npy": "npy"})
    project = tmp_path / "loadstone-npy"
    (project / "tests" / "data").mkdir(parents=True)
    np.save(project / "tests" / "data" / "a.npy", np.arange(12, dtype=np.uint16).reshape(3, 4))
    (project / "tests" / "test_npy.py").write_text(tests["test_npy.py"])
    (project / "tests" / "test_fixtures.py").write_text(textwrap.dedent(FIXTURE_TESTS))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOADSTONE_", "PYTEST_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(fake_dists.root), env.get("PYTHONPATH", "")])
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "tests"],
                          cwd=project, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    summary = done.stdout.strip().splitlines()[-1]
    assert re.match(r"\d+ passed, \d+ skipped in ", summary), summary
    passed = int(summary.split()[0])
    assert passed >= 3 + 6  # the fixture tests and the contract's loader checks
    assert "no slow_id: set slow_id to an id whose load takes long enough to time out" in done.stdout
    assert "has_metadata is False" in done.stdout

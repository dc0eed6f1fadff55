"""A conformance kit for image loaders, to call from a plugin's own tests.

Subclass :class:`LoaderContract` in a pytest module (name the subclass
``Test…``) and set the class attributes; every ``test_*`` method then checks
one part of the loader contract::

    from loadstone.testing import LoaderContract
    from loadstone import InvalidImageError

    class TestMyLoader(LoaderContract):
        loader = "myscheme"                      # or the ImageLoader itself
        valid_ids = ["myscheme://a/1", "myscheme://a/2"]
        invalid_ids = {"myscheme://nope": InvalidImageError}

The checks are also plain functions (:func:`check_image`,
:func:`check_loader`) for use outside pytest.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from . import _state
from ._api import load_and_cache_image, load_image
from ._image import Image
from ._load_object import ImageLoadObject
from .errors import LoadCancelledError, LoadstoneError, LoadTimeoutError

__all__ = ["LoaderContract", "check_image", "check_loader", "check_failure"]

_PHOTOMETRIC_GREY = {"MONOCHROME1", "MONOCHROME2"}
_VOI_FUNCTIONS = {"LINEAR", "LINEAR_EXACT", "SIGMOID"}


def _fail(message: str) -> AssertionError:
    return AssertionError(message)


def check_image(image: object, image_id: str | None = None) -> Image:
    """Assert that an Image's fields agree with its pixels; returns it."""
    if not isinstance(image, Image):
        raise _fail(f"expected loadstone.Image, got {type(image).__name__}")
    where = f"image {image.image_id!r}"
    if image_id is not None and image.image_id != image_id:
        raise _fail(f"{where}: image_id differs from the requested {image_id!r}")
    data = image.get_pixel_data()
    if not isinstance(data, np.ndarray):
        raise _fail(f"{where}: pixel_data is {type(data).__name__}, not a numpy array")
    if data.shape[:2] != (image.rows, image.columns):
        raise _fail(f"{where}: pixel_data shape {data.shape} but rows x columns {image.rows}x{image.columns}")
    if image.height != image.rows or image.width != image.columns:
        raise _fail(f"{where}: height/width do not alias rows/columns")
    if image.color:
        if data.ndim != 3 or data.shape[2] not in (3, 4) or image.number_of_components != data.shape[2]:
            raise _fail(f"{where}: colour image needs (rows, columns, 3|4) pixels matching "
                        f"number_of_components, got {data.shape} / {image.number_of_components}")
    else:
        if data.ndim != 2 or image.number_of_components != 1:
            raise _fail(f"{where}: grey image needs (rows, columns) pixels and 1 component")
        if image.photometric_interpretation not in _PHOTOMETRIC_GREY:
            raise _fail(f"{where}: grey image with photometric interpretation "
                        f"{image.photometric_interpretation!r}")
        if image.invert != (image.photometric_interpretation == "MONOCHROME1"):
            raise _fail(f"{where}: invert must be True exactly for MONOCHROME1")
    if data.size:
        lo, hi = float(np.min(data)), float(np.max(data))
        if not (math.isclose(lo, image.min_pixel_value, rel_tol=1e-6, abs_tol=1e-6)
                and math.isclose(hi, image.max_pixel_value, rel_tol=1e-6, abs_tol=1e-6)):
            raise _fail(f"{where}: min/max {image.min_pixel_value}/{image.max_pixel_value} "
                        f"but the pixels span {lo}/{hi}")
    if image.size_in_bytes < data.nbytes:
        raise _fail(f"{where}: size_in_bytes {image.size_in_bytes} < pixel bytes {data.nbytes}")
    if not math.isfinite(image.slope) or image.slope == 0 or not math.isfinite(image.intercept):
        raise _fail(f"{where}: slope/intercept {image.slope}/{image.intercept} are not usable")
    if (image.window_center is None) != (image.window_width is None):
        raise _fail(f"{where}: window centre and width must both be set or both None")
    if image.window_width is not None and not image.window_width > 0:
        raise _fail(f"{where}: window width {image.window_width} must be above 0")
    if image.voi_lut_function.upper() not in _VOI_FUNCTIONS:
        raise _fail(f"{where}: unknown VOI LUT function {image.voi_lut_function!r}")
    for name in ("row_pixel_spacing", "column_pixel_spacing"):
        value = getattr(image, name)
        if value is not None and not (math.isfinite(value) and value > 0):
            raise _fail(f"{where}: {name} {value} must be a positive number of mm or None")
    rendered = image.render()
    if rendered.dtype != np.uint8 or rendered.shape[:2] != data.shape[:2]:
        raise _fail(f"{where}: render() gave {rendered.dtype} {rendered.shape}")
    return image


def check_failure(error: BaseException, expected: type[BaseException], image_id: str) -> None:
    """Assert a load failed with the expected typed error, naming the image id."""
    if not isinstance(error, LoadstoneError):
        raise _fail(f"{image_id!r}: untyped {type(error).__name__}: {error} escaped the load")
    if not isinstance(error, expected):
        raise _fail(f"{image_id!r}: expected {expected.__name__}, got {type(error).__name__}: {error}")
    if error.image_id not in (None, image_id):
        raise _fail(f"{image_id!r}: error names another image id {error.image_id!r}")


def _start(loader: Any, image_id: str, options: Mapping[str, Any]) -> ImageLoadObject:
    if isinstance(loader, str):
        return load_image(image_id, ignore_cache=True, **options)
    result = loader(image_id, dict(options))
    if not isinstance(result, ImageLoadObject):
        raise _fail(f"loader returned {type(result).__name__}, expected an ImageLoadObject")
    return result


def _outcome(start: Any, timeout: float) -> BaseException | None:
    try:
        start().result(timeout)
    except BaseException as exc:
        return exc
    return None


def check_loader(loader: Any, valid_ids: Sequence[str],
                 invalid_ids: Mapping[str, type[BaseException]] | None = None,
                 timeout: float = 30.0) -> list[Image]:
    """Run the non-timing checks imperatively; returns the loaded images."""
    images = []
    for image_id in valid_ids:
        images.append(check_image(_start(loader, image_id, {}).result(timeout), image_id))
    for image_id, expected in (invalid_ids or {}).items():
        error = _outcome(lambda image_id=image_id: _start(loader, image_id, {}), timeout)
        if error is None:
            raise _fail(f"{image_id!r} loaded, but {expected.__name__} was expected")
        check_failure(error, expected, image_id)
    return images


class LoaderContract:
    """Reusable pytest checks of the image-loader contract (subclass as ``Test…``)."""

    #: The ImageLoader under test, or a scheme to test through loadstone's dispatch.
    loader: ClassVar[Any] = None
    #: Ids that must load.
    valid_ids: ClassVar[Sequence[str]] = ()
    #: Ids that must fail, with the error class expected.
    invalid_ids: ClassVar[Mapping[str, type[BaseException]]] = {}
    #: An id whose load takes long enough to be cancelled or timed out (optional).
    slow_id: ClassVar[str | None] = None
    #: Bound on any single wait.
    result_timeout: ClassVar[float] = 30.0
    #: How long a loader may take to *return* its load object.
    return_within: ClassVar[float] = 0.5

    def _loader(self) -> Any:
        loader = type(self).loader  # through the class: a plain function must not bind to self
        if loader is None:
            raise _fail("set LoaderContract.loader to an ImageLoader or a scheme")
        return loader

    def _slow(self) -> str | None:
        return self.slow_id

    def test_returns_load_object_at_once(self) -> None:
        ids = [self._slow() or "", *self.valid_ids]
        for image_id in [i for i in ids if i][:3]:
            started = time.perf_counter()
            load_object = _start(self._loader(), image_id, {})
            elapsed = time.perf_counter() - started
            try:
                assert elapsed < self.return_within, (
                    f"loader took {elapsed:.3f} s to return for {image_id!r}; slow work must run elsewhere")
            finally:
                load_object.cancel()

    def test_image_fields_agree_with_pixels(self) -> None:
        assert self.valid_ids, "give at least one valid id"
        check_loader(self._loader(), self.valid_ids, None, self.result_timeout)

    def test_failures_are_typed(self) -> None:
        check_loader(self._loader(), (), self.invalid_ids, self.result_timeout)

    def test_failed_load_leaves_no_cache_entry(self) -> None:
        loader = self._loader()
        for image_id, expected in self.invalid_ids.items():
            with _through_dispatch(loader, image_id) as probe_id:
                error = _outcome(lambda probe_id=probe_id: load_and_cache_image(probe_id),
                                 self.result_timeout)
                assert isinstance(error, expected), (
                    f"{image_id!r}: expected {expected.__name__}, got {error!r}")
                _wait_until(lambda probe_id=probe_id: probe_id not in _state.cache, 2.0)
                assert probe_id not in _state.cache, f"failed load of {image_id!r} stayed in the cache"

    def test_concurrent_loads_agree(self) -> None:
        if not self.valid_ids:
            return
        image_id = self.valid_ids[0]
        results: list[Any] = []

        def worker() -> None:
            try:
                results.append(_start(self._loader(), image_id, {}).result(self.result_timeout))
            except BaseException as exc:
                results.append(exc)

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(self.result_timeout)
        assert len(results) == 4, "a concurrent load never finished"
        first = check_image(results[0], image_id)
        for other in results[1:]:
            other = check_image(other, image_id)
            assert np.array_equal(first.get_pixel_data(), other.get_pixel_data())

    def test_cancel_is_honoured(self) -> None:
        image_id = self._slow() or (self.valid_ids[0] if self.valid_ids else None)
        if image_id is None:
            return
        load_object = _start(self._loader(), image_id, {})
        load_object.cancel()
        error = _outcome(lambda: load_object, self.result_timeout)
        if self._slow() is not None or error is not None:
            assert isinstance(error, LoadCancelledError), f"cancel gave {error!r}"
        # A fast load may have finished before the cancel: then it must be a good image.
        else:
            check_image(load_object.result(0), image_id)

    def test_timeout_is_honoured(self) -> None:
        image_id = self._slow()
        if image_id is None:
            return
        timeout = 0.3
        started = time.perf_counter()
        error = _outcome(lambda: _start(self._loader(), image_id, {"timeout": timeout}), self.result_timeout)
        elapsed = time.perf_counter() - started
        assert isinstance(error, LoadTimeoutError), f"timeout gave {error!r}"
        assert elapsed < timeout + 2.0, f"timeout of {timeout} s took {elapsed:.2f} s"


@contextlib.contextmanager
def _through_dispatch(loader: Any, image_id: str) -> Iterator[str]:
    """Route ``image_id`` through loadstone's cache: by its scheme, or a private probe scheme."""
    if isinstance(loader, str):
        yield image_id
        return
    from ._plugins import normalize_scheme

    scheme = normalize_scheme(f"contract-probe-{id(loader):x}")

    def probe(probe_id: str, options: Mapping[str, Any]) -> ImageLoadObject:
        return loader(probe_id.split(":", 1)[1], options)

    _state.registry.register_image_loader(scheme, probe)
    try:
        yield f"{scheme}:{image_id}"
    finally:
        _state.registry.unregister_image_loader(scheme)


def _wait_until(condition: Any, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)

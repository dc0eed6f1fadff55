"""The conformance contracts: pytest base classes that run :mod:`loadstone.testing.checks` as tests.

As fsspec's ``fsspec.tests.abstract`` does for file systems: subclass a
contract in a test module under a ``Test…`` name, say what your plugin
serves and can do in class attributes, and every ``test_*`` method checks
one part of the contract.  A check that does not apply (no ``slow_id`` for
the timeout check, ``has_metadata = False``, no ``series_ids``…) is
*skipped with the reason*, so ``pytest -rs`` shows what was not checked.

* :class:`LoaderContract` — the whole contract of a plugin: its loader, and
  (when switched on) its metadata and series expansion;
* :class:`MetadataContract` — only the metadata checks (a plugin that adds
  providers for ids another plugin loads);
* :class:`SeriesContract` — only the series checks.

Attributes may be set as class attributes, or by an autouse fixture of the
subclass (on ``cls`` for a class-scoped one, on ``self`` for a
function-scoped one) when they depend on a server started by a fixture.

Nothing here changes loadstone's process-wide registry; each check runs
inside the ``loadstone_isolated`` fixture (from loadstone's pytest plugin,
registered when loadstone is installed), so what a check caches or starts is
undone after it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import pytest

from .._api import load_images, series_image_ids
from .._cache import ImageCache
from ..errors import LoadCancelledError, LoadTimeoutError
from .checks import (
    PIXEL_MODULE,
    PLANE_MODULE,
    _error_of,
    _fail,
    _outcome,
    _settled,
    _start,
    check_failure,
    check_image,
    check_loader,
    check_metadata,
    check_series,
    check_space_order,
)

__all__ = ["LoaderContract", "MetadataContract", "SeriesContract"]


class _Contract:
    """What every contract needs: how to load, the ids that load, and a bound on waits."""

    #: The ImageLoader under test, or a scheme (a str) to load through loadstone's dispatch.
    loader: ClassVar[Any] = None
    #: Ids that must load.
    valid_ids: ClassVar[Sequence[str]] = ()
    #: Bound on any single wait, in seconds.
    result_timeout: ClassVar[float] = 30.0

    @pytest.fixture(autouse=True)
    def _loadstone_contract_isolation(self, loadstone_isolated: None) -> None:
        """Every check runs isolated (the fixture comes from loadstone's pytest plugin)."""

    def _loader(self) -> Any:
        """The loader, or None to load through loadstone's dispatch by each id's scheme."""
        return type(self).loader  # through the class: a plain function must not bind to self

    def _kit_valid_ids(self, why: str) -> Sequence[str]:
        ids = self.valid_ids
        if not ids:
            pytest.skip(f"no valid_ids: {why}")
        return ids


class MetadataContract(_Contract):
    """Checks that the metadata providers agree with the images the ids load to.

    For every id (``metadata_ids``, by default ``valid_ids``) the image is
    loaded, then :func:`~loadstone.testing.check_metadata` compares
    ``imagePixelModule`` (rows, columns, samples, photometric
    interpretation, bits), ``imagePlaneModule`` (rows, columns, spacing,
    orientation, position) and ``modalityLutModule`` (slope, intercept) with
    it; the ``required_modules`` must answer.
    """

    #: Whether the plugin's metadata providers answer for these ids.
    has_metadata: ClassVar[bool] = True
    #: Ids whose metadata is checked (None: ``valid_ids``).
    metadata_ids: ClassVar[Sequence[str] | None] = None
    #: Modules that must answer for every one of them.
    required_modules: ClassVar[Sequence[str]] = (PIXEL_MODULE, PLANE_MODULE)

    def test_metadata_agrees_with_images(self) -> None:
        if not self.has_metadata:
            pytest.skip(f"{type(self).__name__}.has_metadata is False: no metadata providers to check")
        ids = self.metadata_ids
        if ids is None:
            ids = self._kit_valid_ids("set valid_ids (or metadata_ids) to ids with metadata")
        elif not ids:
            pytest.skip("metadata_ids is empty")
        for image_id in ids:
            image = check_image(_start(self._loader(), image_id, {}).result(self.result_timeout), image_id)
            check_metadata(image, image_id, required=self.required_modules)


class SeriesContract(_Contract):
    """Checks series expansion (``loadstone.series_image_ids``) and what it expands to.

    Every id of ``series_ids`` must expand to distinct ids that all load
    (through ``loadstone.load_images``, so a batch function is used), listed
    in order along the slice normal where ``imagePlaneModule`` places them;
    every id of ``invalid_series_ids`` must fail with its typed error.
    """

    #: Series ids the plugin expands.
    series_ids: ClassVar[Sequence[str]] = ()
    #: Series ids that must fail to expand, with the error class expected.
    invalid_series_ids: ClassVar[Mapping[str, type[BaseException]]] = {}
    #: Whether expansions list the slices in order in space (False for, e.g., a cine loop).
    series_in_space_order: ClassVar[bool] = True

    def _kit_series_ids(self) -> Sequence[str]:
        if not self.series_ids:
            pytest.skip("no series_ids: set series_ids to series the plugin expands")
        return self.series_ids

    def test_series_expand_to_ids_that_load(self) -> None:
        for series_id in self._kit_series_ids():
            check_series(series_id, timeout=self.result_timeout, in_space_order=False)

    def test_series_are_in_order_in_space(self) -> None:
        if not self.series_in_space_order:
            pytest.skip(f"{type(self).__name__}.series_in_space_order is False")
        placed = 0
        for series_id in self._kit_series_ids():
            check_series(series_id, timeout=self.result_timeout, in_space_order=False)
            placed = max(placed, check_space_order(series_id, series_image_ids(series_id)))
        if placed < 2:
            pytest.skip("no series has two slices that imagePlaneModule places (position and orientation)")

    def test_invalid_series_fail_typed(self) -> None:
        if not self.invalid_series_ids:
            pytest.skip("no invalid_series_ids")
        for series_id, expected in self.invalid_series_ids.items():
            try:
                ids = series_image_ids(series_id)
            except BaseException as exc:
                check_failure(exc, expected, series_id)
            else:
                raise _fail(f"series {series_id!r} expanded to {len(ids)} ids, but {expected.__name__} "
                            "was expected")


class LoaderContract(MetadataContract, SeriesContract):
    """Reusable pytest checks of the image-loader contract (subclass as ``Test…``).

    Set ``loader`` and ``valid_ids`` (and ``invalid_ids``, ``slow_id``); the
    capability flags say what else to check: ``supports_cancel`` and
    ``supports_timeout`` (default True), ``has_metadata`` (default False
    here) and ``series_ids``.
    """

    #: Ids that must fail, with the error class expected.
    invalid_ids: ClassVar[Mapping[str, type[BaseException]]] = {}
    #: An id whose load takes long enough to be cancelled or timed out (optional).
    slow_id: ClassVar[str | None] = None
    #: How long a loader may take to *return* its load object.
    return_within: ClassVar[float] = 0.5
    #: Whether cancelling a running load stops it with LoadCancelledError.
    supports_cancel: ClassVar[bool] = True
    #: Whether the ``timeout`` option ends a load with LoadTimeoutError.
    supports_timeout: ClassVar[bool] = True
    has_metadata: ClassVar[bool] = False

    def _loader(self) -> Any:
        loader = type(self).loader
        if loader is None:
            raise _fail("set LoaderContract.loader to an ImageLoader or a scheme")
        return loader

    def _slow(self) -> str | None:
        return self.slow_id

    def _kit_invalid_ids(self) -> Mapping[str, type[BaseException]]:
        if not self.invalid_ids:
            pytest.skip("no invalid_ids: set invalid_ids to ids that must fail, with their error class")
        return self.invalid_ids

    def test_returns_load_object_at_once(self) -> None:
        ids = [image_id for image_id in (self._slow(), *self.valid_ids) if image_id][:3]
        if not ids:
            pytest.skip("no valid_ids nor slow_id to load")
        for image_id in ids:
            started = time.perf_counter()
            load_object = _start(self._loader(), image_id, {})
            elapsed = time.perf_counter() - started
            try:
                assert elapsed < self.return_within, (
                    f"loader took {elapsed:.3f} s to return for {image_id!r}; slow work must run elsewhere")
            finally:
                load_object.cancel()

    def test_image_fields_agree_with_pixels(self) -> None:
        ids = self._kit_valid_ids("set valid_ids to ids that must load")
        check_loader(self._loader(), ids, None, self.result_timeout)

    def test_failures_are_typed(self) -> None:
        check_loader(self._loader(), (), self._kit_invalid_ids(), self.result_timeout)

    def test_failed_load_leaves_no_cache_entry(self) -> None:
        loader = self._loader()
        cache = ImageCache()  # a private cache: loadstone.cache and its registry stay as they are
        for image_id, expected in self._kit_invalid_ids().items():
            load_object = _start(loader, image_id, {})
            cache.put_image_load_object(image_id, load_object)
            error = _error_of(load_object, self.result_timeout)
            assert isinstance(error, expected), f"{image_id!r}: expected {expected.__name__}, got {error!r}"
            assert _settled(load_object, 2.0), f"{image_id!r}: the load never settled"
            assert image_id not in cache, f"failed load of {image_id!r} stayed in the cache"

    def test_concurrent_loads_agree(self) -> None:
        image_id = self._kit_valid_ids("nothing to load concurrently")[0]
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

    def test_bulk_loads_agree(self) -> None:
        """``load_images`` (the pool, and a batch function if the loader has one) gives the same images."""
        loader = self._loader()
        if not isinstance(loader, str):
            pytest.skip("load_images dispatches by scheme: set loader to the scheme to check the bulk path")
        valid = list(self._kit_valid_ids("nothing to load in bulk"))
        singles = [check_image(_start(loader, image_id, {}).result(self.result_timeout), image_id)
                   for image_id in valid]
        invalid = {image_id: error for image_id, error in self.invalid_ids.items() if image_id not in valid}
        ids = [*valid, *invalid]
        loads = load_images(ids, ignore_cache=True)
        for image_id, load_object in zip(ids, loads, strict=True):
            if image_id in invalid:
                error = _error_of(load_object, self.result_timeout)
                if error is None:
                    raise _fail(f"{image_id!r} loaded through load_images, but {invalid[image_id].__name__} "
                                "was expected")
                check_failure(error, invalid[image_id], image_id)
        for single, load_object in zip(singles, loads[: len(valid)], strict=True):
            image = check_image(load_object.result(self.result_timeout), single.image_id)
            assert np.array_equal(image.get_pixel_data(), single.get_pixel_data()), (
                f"{single.image_id!r}: load_images gave other pixels than load_image")

    def test_cancel_is_honoured(self) -> None:
        if not self.supports_cancel:
            pytest.skip(f"{type(self).__name__}.supports_cancel is False")
        image_id = self._slow() or (self.valid_ids[0] if self.valid_ids else None)
        if image_id is None:
            pytest.skip("no slow_id nor valid_ids to cancel")
        load_object = _start(self._loader(), image_id, {})
        load_object.cancel()
        error = _error_of(load_object, self.result_timeout)
        if self._slow() is not None or error is not None:
            assert isinstance(error, LoadCancelledError), f"cancel gave {error!r}"
        # A fast load may have finished before the cancel: then it must be a good image.
        else:
            check_image(load_object.result(0), image_id)

    def test_timeout_is_honoured(self) -> None:
        if not self.supports_timeout:
            pytest.skip(f"{type(self).__name__}.supports_timeout is False")
        image_id = self._slow()
        if image_id is None:
            pytest.skip("no slow_id: set slow_id to an id whose load takes long enough to time out")
        timeout = 0.3
        started = time.perf_counter()
        error = _outcome(lambda: _start(self._loader(), image_id, {"timeout": timeout}), self.result_timeout)
        elapsed = time.perf_counter() - started
        assert isinstance(error, LoadTimeoutError), f"timeout gave {error!r}"
        assert elapsed < timeout + 2.0, f"timeout of {timeout} s took {elapsed:.2f} s"

"""The conformance checks as plain functions: usable from any test runner, or none.

Each raises :class:`AssertionError` with a message that names the image id
and what disagrees; the contract classes of :mod:`loadstone.testing` run
them under pytest.

* :func:`check_image` — an :class:`~loadstone.Image`'s fields agree with its pixels;
* :func:`check_failure` — a failure is the expected typed error, naming its id;
* :func:`check_loader` — a loader loads its valid ids and fails its invalid ones, typed;
* :func:`check_metadata` — ``imagePixelModule``, ``imagePlaneModule`` and
  ``modalityLutModule`` agree with the loaded image;
* :func:`check_series` — a series id expands to distinct ids that all load, in
  order along the slice normal when the slices have positions.

They change nothing process-wide, except :func:`check_series`, which loads
through ``loadstone.load_images`` (the bulk path viewers use) and removes
from ``loadstone.cache`` what it added.
"""

from __future__ import annotations

import functools
import itertools
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from .. import _state
from .._api import load_image, load_images, series_image_ids
from .._image import Image
from .._load_object import ImageLoadObject
from ..errors import LoadstoneError
from ..toolkit.space import distance_along, slice_normal

__all__ = ["check_image", "check_failure", "check_loader", "check_metadata", "check_series",
           "PIXEL_MODULE", "PLANE_MODULE", "MODALITY_MODULE"]

PIXEL_MODULE = "imagePixelModule"
PLANE_MODULE = "imagePlaneModule"
MODALITY_MODULE = "modalityLutModule"

_PHOTOMETRIC_GREY = {"MONOCHROME1", "MONOCHROME2"}
_VOI_FUNCTIONS = {"LINEAR", "LINEAR_EXACT", "SIGMOID"}
#: How far direction cosines may be from unit length and orthogonal (real headers are rounded).
_COSINE_TOLERANCE = 1e-2
#: Slices closer than this (mm) along the normal count as one position (order not checked between them).
_SAME_PLACE_MM = 1e-4

MetadataGet = Callable[[str, str], Any]


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
    """Start one load: through loadstone's dispatch (``loader`` is a scheme), or the loader itself."""
    if isinstance(loader, str) or loader is None:
        return load_image(image_id, ignore_cache=True, **options)
    result = loader(image_id, dict(options))
    if not isinstance(result, ImageLoadObject):
        raise _fail(f"loader returned {type(result).__name__}, expected an ImageLoadObject")
    return result


def _error_of(load_object: ImageLoadObject, timeout: float) -> BaseException | None:
    """The error a load ends with, or None when it gives an image."""
    try:
        load_object.result(timeout)
    except BaseException as exc:
        return exc
    return None


def _outcome(start: Callable[[], ImageLoadObject], timeout: float) -> BaseException | None:
    """The error starting and waiting for a load ends with (loaders may raise at once), or None."""
    try:
        load_object = start()
    except BaseException as exc:
        return exc
    return _error_of(load_object, timeout)


def _settled(load_object: ImageLoadObject, timeout: float) -> bool:
    """Wait until the load settled *and* the done callbacks added before this call ran.

    ``result()`` wakes as soon as the promise is set, a moment before its
    callbacks (a cache's bookkeeping) run; callbacks run in the order they
    were added, so one added now runs after theirs.
    """
    done = threading.Event()
    load_object.promise.add_done_callback(lambda _promise: done.set())
    return done.wait(timeout)


def check_loader(loader: Any, valid_ids: Sequence[str],
                 invalid_ids: Mapping[str, type[BaseException]] | None = None,
                 timeout: float = 30.0) -> list[Image]:
    """Run the non-timing checks imperatively; returns the loaded images.

    ``loader`` is an ImageLoader, or a scheme (a str) to load through
    loadstone's dispatch.
    """
    images = []
    for image_id in valid_ids:
        images.append(check_image(_start(loader, image_id, {}).result(timeout), image_id))
    for image_id, expected in (invalid_ids or {}).items():
        error = _outcome(functools.partial(_start, loader, image_id, {}), timeout)
        if error is None:
            raise _fail(f"{image_id!r} loaded, but {expected.__name__} was expected")
        check_failure(error, expected, image_id)
    return images


# -- metadata ----------------------------------------------------------------------
def _numbers(value: Any, count: int) -> list[float] | None:
    """``count`` finite numbers, or None when ``value`` is not that."""
    try:
        numbers = [float(v) for v in value]
    except (TypeError, ValueError):
        return None
    if len(numbers) != count or not all(math.isfinite(n) for n in numbers):
        return None
    return numbers


def _number(answer: Mapping[str, Any], key: str, where: str, module: str) -> float | None:
    value = answer.get(key)
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise _fail(f"{where}: {module} {key} is {value!r}, not a number") from None
    if not math.isfinite(number):
        raise _fail(f"{where}: {module} {key} is {number}")
    return number


def _mapping(answer: Any, module: str, where: str) -> Mapping[str, Any]:
    if not isinstance(answer, Mapping):
        raise _fail(f"{where}: the {module} answer is a {type(answer).__name__}, not a mapping")
    return answer


def _same(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-6)


def _check_size(image: Image, answer: Mapping[str, Any], module: str, where: str) -> None:
    for key, value in (("rows", image.rows), ("columns", image.columns)):
        stated = _number(answer, key, where, module)
        if stated is not None and stated != value:
            raise _fail(f"{where}: {module} says {key} {stated:g}, the image has {value}")


def _check_pixel_module(image: Image, answer: Mapping[str, Any], where: str) -> None:
    module = PIXEL_MODULE
    _check_size(image, answer, module, where)
    photometric = answer.get("photometric_interpretation")
    photometric = None if photometric is None else str(photometric).strip().upper()
    samples = _number(answer, "samples_per_pixel", where, module)
    if samples is not None:
        colour = samples > 1 or photometric == "PALETTE COLOR"
        if colour != image.color:
            raise _fail(f"{where}: {module} says {samples:g} sample(s) per pixel ({photometric}), "
                        f"but the image is {'colour' if image.color else 'grey'}")
    grey = None if image.color else image.photometric_interpretation
    if grey is not None and photometric in _PHOTOMETRIC_GREY and photometric != grey:
        raise _fail(f"{where}: {module} says {photometric}, the image {grey}")
    allocated = _number(answer, "bits_allocated", where, module)
    stored = _number(answer, "bits_stored", where, module)
    if allocated is not None and stored is not None and stored > allocated:
        raise _fail(f"{where}: {module} has bits_stored {stored:g} above bits_allocated {allocated:g}")
    representation = _number(answer, "pixel_representation", where, module)
    if image.color or stored is None or representation is None or image.pixel_data.dtype.kind == "f":
        return
    bits = int(stored)
    low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if representation else (0, (1 << bits) - 1)
    if image.min_pixel_value < low or image.max_pixel_value > high:
        kind = "signed" if representation else "unsigned"
        raise _fail(f"{where}: stored values span {image.min_pixel_value:g}..{image.max_pixel_value:g}, "
                    f"outside the {bits}-bit {kind} range {low}..{high} that {module} states")


def _check_plane_module(image: Image, answer: Mapping[str, Any], where: str) -> None:
    module = PLANE_MODULE
    _check_size(image, answer, module, where)
    orientation = answer.get("image_orientation_patient")
    if orientation is not None:
        cosines = _numbers(orientation, 6)
        if cosines is None:
            raise _fail(f"{where}: {module} image_orientation_patient {orientation!r} is not 6 numbers")
        row, column = cosines[:3], cosines[3:]
        lengths = [math.sqrt(sum(c * c for c in v)) for v in (row, column)]
        dot = sum(r * c for r, c in zip(row, column, strict=True))
        if any(abs(length - 1.0) > _COSINE_TOLERANCE for length in lengths) or abs(dot) > _COSINE_TOLERANCE:
            raise _fail(f"{where}: {module} image_orientation_patient {cosines} is not two orthogonal "
                        "unit vectors")
    position = answer.get("image_position_patient")
    if position is not None and _numbers(position, 3) is None:
        raise _fail(f"{where}: {module} image_position_patient {position!r} is not 3 numbers")
    row_spacing = _number(answer, "row_pixel_spacing", where, module)
    column_spacing = _number(answer, "column_pixel_spacing", where, module)
    pair = answer.get("pixel_spacing")
    if pair is not None:
        numbers = _numbers(pair, 2)
        if numbers is None:
            raise _fail(f"{where}: {module} pixel_spacing {pair!r} is not 2 numbers")
        if row_spacing is None and column_spacing is None:
            row_spacing, column_spacing = numbers
        elif not (row_spacing is not None and column_spacing is not None
                  and _same(numbers[0], row_spacing) and _same(numbers[1], column_spacing)):
            raise _fail(f"{where}: {module} pixel_spacing {numbers} disagrees with row/column_pixel_spacing "
                        f"{row_spacing}/{column_spacing}")
    for name, stated in (("row_pixel_spacing", row_spacing), ("column_pixel_spacing", column_spacing)):
        actual = getattr(image, name)
        if (stated is None) != (actual is None) or (
                stated is not None and actual is not None and not _same(stated, actual)):
            raise _fail(f"{where}: {module} says {name} {stated}, the image {actual}")


def _check_modality_module(image: Image, answer: Mapping[str, Any], where: str) -> None:
    module = MODALITY_MODULE
    for key, actual in (("rescale_slope", image.slope), ("rescale_intercept", image.intercept)):
        stated = _number(answer, key, where, module)
        if stated is not None and not _same(stated, actual):
            raise _fail(f"{where}: {module} says {key} {stated:g}, the image {actual:g}")


_MODULE_CHECKS: dict[str, Callable[[Image, Mapping[str, Any], str], None]] = {
    PIXEL_MODULE: _check_pixel_module,
    PLANE_MODULE: _check_plane_module,
    MODALITY_MODULE: _check_modality_module,
}


def check_metadata(image: Image, image_id: str | None = None, *, required: Sequence[str] = (),
                   get: MetadataGet | None = None) -> dict[str, Any]:
    """Assert that the metadata providers' answers agree with a loaded image; returns the answers.

    Asks ``get(module, image_id)`` (by default ``loadstone.metadata.get``)
    for ``imagePixelModule``, ``imagePlaneModule`` and ``modalityLutModule``
    (and every module in ``required``, which must answer).  Compared, where
    the answer states a value: rows and columns; samples per pixel against
    colour; a grey photometric interpretation; the stored values against
    the range of ``bits_stored`` and ``pixel_representation``; the spacing
    (``row_pixel_spacing``/``column_pixel_spacing`` or ``pixel_spacing``),
    which the image must have exactly when the answer has it; the
    orientation (two orthogonal unit vectors) and position (3 numbers); and
    the rescale slope and intercept.
    """
    image_id = image.image_id if image_id is None else image_id
    where = f"image {image_id!r}"
    get = _state.metadata.get if get is None else get
    answers: dict[str, Any] = {}
    for module in dict.fromkeys([*_MODULE_CHECKS, *required]):
        answer = get(module, image_id)
        if answer is None:
            if module in required:
                raise _fail(f"{where}: no metadata provider answers {module}")
            continue
        answers[module] = answer
        check = _MODULE_CHECKS.get(module)
        if check is not None:
            check(image, _mapping(answer, module, where), where)
    return answers


# -- series ------------------------------------------------------------------------
def series_positions(image_ids: Sequence[str], get: MetadataGet | None = None) -> list[tuple[str, float]]:
    """(id, distance along the slice normal in mm) for each id whose ``imagePlaneModule`` places it.

    The normal is that of the first slice with an orientation; ids without
    a position (or a series without any orientation) are left out.
    """
    get = _state.metadata.get if get is None else get
    planes = [(image_id, get(PLANE_MODULE, image_id)) for image_id in image_ids]
    normal = None
    for _, plane in planes:
        if isinstance(plane, Mapping):
            normal = slice_normal(plane.get("image_orientation_patient"))
            if normal is not None:
                break
    if normal is None:
        return []
    placed = []
    for image_id, plane in planes:
        distance = distance_along(normal, plane.get("image_position_patient")) if isinstance(
            plane, Mapping) else None
        if distance is not None:
            placed.append((image_id, distance))
    return placed


def check_space_order(series_id: str, image_ids: Sequence[str], get: MetadataGet | None = None) -> int:
    """Assert the ids that ``imagePlaneModule`` places are monotonic along the slice normal.

    Either direction is in order; slices at one place may come in any
    order.  Returns how many ids had a place (fewer than 2: nothing checked).
    """
    placed = series_positions(image_ids, get)
    direction = 0.0
    for (before, at), (after, to) in itertools.pairwise(placed):
        step = to - at
        if abs(step) <= _SAME_PLACE_MM:
            continue
        if direction and (step > 0) != (direction > 0):
            raise _fail(f"series {series_id!r}: slices are not in order along the slice normal: "
                        f"{before!r} at {at:g} mm, then {after!r} at {to:g} mm, after steps of "
                        f"{direction:+g} mm")
        direction = direction or step
    return len(placed)


def check_series(series_id: str, *, timeout: float = 30.0, in_space_order: bool = True,
                 get: MetadataGet | None = None) -> list[Image]:
    """Assert that a series id expands to distinct ids that all load; returns their images.

    The ids are loaded with ``loadstone.load_images`` (so a loader's batch
    function is used) and removed from the cache again unless they were
    there before.  With ``in_space_order``, the ids that ``imagePlaneModule``
    places must be in order (either way) along the slice normal.
    """
    image_ids = series_image_ids(series_id)
    if not isinstance(image_ids, list) or not image_ids:
        raise _fail(f"series {series_id!r} expanded to {image_ids!r}, not a non-empty list of ids")
    odd = [image_id for image_id in image_ids if not isinstance(image_id, str) or ":" not in image_id]
    if odd:
        raise _fail(f"series {series_id!r}: {odd[0]!r} is not an image id ('scheme:…')")
    repeated = sorted({image_id for image_id in image_ids if image_ids.count(image_id) > 1})
    if repeated:
        raise _fail(f"series {series_id!r} lists {repeated[0]!r} more than once")
    cache = _state.cache
    was_cached = {image_id for image_id in image_ids if image_id in cache}
    loads = load_images(image_ids)
    try:
        images = []
        for image_id, load_object in zip(image_ids, loads, strict=True):
            try:
                image = load_object.result(timeout)
            except LoadstoneError as exc:
                raise _fail(f"series {series_id!r}: {image_id!r} does not load: "
                            f"{type(exc).__name__}: {exc}") from exc
            images.append(check_image(image, image_id))
    finally:
        for image_id, load_object in zip(image_ids, loads, strict=True):
            load_object.cancel()
            if image_id not in was_cached:
                cache.remove_image_load_object(image_id)
    if in_space_order:
        check_space_order(series_id, image_ids, get)
    return images

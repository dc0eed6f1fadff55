"""Bytes to a :class:`loadstone.Image`: checks first, then Pillow, then one copy into numpy.

Order of work for a body:

1. :func:`~loadstone_web._sniff.sniff` the magic number. Text (an HTML error
   page served with 200) is an ``InvalidImageError`` quoting the body's
   start; a known format that is not enabled is an ``UnsupportedError``
   naming the setting that enables it; anything else unknown is an
   ``InvalidImageError``.
2. Compare with ``Content-Type`` (HTTP only).
3. Read width and height from the header and refuse more than the pixel cap
   (``ResourceLimitError``) before Pillow parses anything.
4. ``PIL.Image.open(..., formats=[format])`` — the sniffed format, always one
   of the enabled ones, so no other Pillow plugin ever parses the bytes —
   then ``load()``: a truncated file is an ``InvalidImageError``
   (``ImageFile.LOAD_TRUNCATED_IMAGES`` is left alone, off by default).
5. EXIF orientation, mode normalisation, then the pixels are copied once,
   straight from Pillow's memory into the bytes that back the numpy array
   (``np.asarray(pil_image)`` copies twice: Pillow's ``tobytes`` packs 64 KiB
   chunks and then joins them).
"""

from __future__ import annotations

import io
import math
import threading
import time
from typing import Any

import numpy as np

from loadstone import (
    Image,
    InvalidImageError,
    ResourceLimitError,
    UnsupportedError,
    schemes,
)

from ._sniff import content_type_format, dimensions, hint_for, png_physical_spacing, quote_start, sniff
from .config import Settings

__all__ = ["decode", "pixels_of"]

_ORIENTATION_TAG = 0x0112
_SWAPS_AXES = frozenset({5, 6, 7, 8})
_PREINIT = frozenset({"PNG", "JPEG", "GIF", "BMP"})  # registered by PIL.Image.preinit()
_init_lock = threading.Lock()

# Pillow mode -> (raw mode for the packer, numpy dtype, components)
_LAYOUTS: dict[str, tuple[str, str, int]] = {
    "L": ("L", "u1", 1),
    "RGB": ("RGB", "u1", 3),
    "RGBA": ("RGBA", "u1", 4),
    "I;16": ("I;16", "<u2", 1),
    "I;16L": ("I;16L", "<u2", 1),
    "I;16N": ("I;16N", "=u2", 1),
    "I;16B": ("I;16B", ">u2", 1),
    "I": ("I", "=i4", 1),
    "F": ("F", "=f4", 1),
}
_TO_RGB = frozenset({"RGBX", "CMYK", "YCbCr", "LAB", "HSV"})
_TO_RGBA = frozenset({"LA", "La", "PA", "RGBa"})


def _pillow() -> Any:
    from PIL import Image as PILImage

    return PILImage


def _ensure_plugin(fmt: str) -> None:
    """Register Pillow's plugin for ``fmt`` once, under a lock (``Image.open`` would race)."""
    pil = _pillow()
    if fmt in pil.OPEN:
        return
    with _init_lock:
        if fmt in _PREINIT:
            pil.preinit()
        if fmt not in pil.OPEN:
            pil.init()


def effective_max_pixels(settings: Settings) -> int:
    """The pixel cap for a load: the configured one, lowered to Pillow's limit if that is lower.

    Using the lower of the two means Pillow's own decompression-bomb check
    never fires on anything that reaches it (no warning-and-continue).
    """
    limit = _pillow().MAX_IMAGE_PIXELS
    return settings.max_pixels if limit is None else min(settings.max_pixels, int(limit))


def decode(
    image_id: str,
    data: bytes | bytearray,
    settings: Settings,
    *,
    content_type: str | None = None,
) -> Image:
    """Check and decode one PNG/JPEG/... body into an Image (see the module docstring)."""
    started = time.perf_counter()
    fmt, extra = _check(image_id, data, settings, content_type)
    cap = effective_max_pixels(settings)
    size = dimensions(data, fmt)
    if size is not None:
        _check_size(image_id, fmt, size, cap, settings)

    pil = _pillow()
    _ensure_plugin(fmt)
    try:
        im = pil.open(io.BytesIO(data), formats=[fmt])
    except (pil.DecompressionBombError, pil.DecompressionBombWarning) as exc:
        raise ResourceLimitError(
            f"{fmt} image refused by Pillow's pixel limit: {exc}", image_id=image_id
        ) from exc
    except pil.UnidentifiedImageError as exc:
        raise InvalidImageError(f"not a readable {fmt} image: {exc}", image_id=image_id) from exc
    except Exception as exc:  # Pillow's plugins raise many kinds for bad headers
        raise InvalidImageError(f"bad {fmt} header: {type(exc).__name__}: {exc}", image_id=image_id) from exc
    with im:
        _check_size(image_id, fmt, im.size, cap, settings)
        extra["mode"] = im.mode
        frames = getattr(im, "n_frames", 1)
        if frames != 1:
            extra["frames"] = frames
        try:
            im.load()
        except MemoryError as exc:
            raise ResourceLimitError(
                f"out of memory decoding a {im.size} {fmt} image", image_id=image_id
            ) from exc
        except Exception as exc:
            raise InvalidImageError(
                f"truncated or corrupt {fmt} image: {type(exc).__name__}: {exc}", image_id=image_id
            ) from exc
        spacing = _spacing(data, fmt, im.info)
        orientation = 1
        if settings.apply_exif_orientation:
            orientation = _orientation(im)
            if orientation in (2, 3, 4, 5, 6, 7, 8):
                from PIL import ImageOps

                ImageOps.exif_transpose(im, in_place=True)
                extra["exif_orientation"] = orientation
                if orientation in _SWAPS_AXES and spacing is not None:
                    spacing = (spacing[1], spacing[0])
        target = im
        try:
            target = _normalise(im, image_id)
            array = pixels_of(target)
        finally:
            if target is not im:
                target.close()

    if extra["mode"] == "I" and fmt == "PNG" and array.size and array.min() >= 0 and array.max() <= 0xFFFF:
        array = array.astype(np.uint16)  # 16-bit grey PNG from a Pillow that opens it as "I"
    fields = _display_fields(array)
    if spacing is not None:
        fields["row_pixel_spacing"], fields["column_pixel_spacing"] = spacing
    fields["decode_time_ms"] = (time.perf_counter() - started) * 1000.0
    return Image.from_array(image_id, array, extra=extra, **fields)


# -- the checks before Pillow ---------------------------------------------------------
def _check(
    image_id: str, data: bytes | bytearray, settings: Settings, content_type: str | None
) -> tuple[str, dict[str, Any]]:
    """The format to decode, after the sniff / Content-Type / enabled-format checks."""
    enabled = settings.formats
    verdict = sniff(data)
    served = f"served as {content_type!r}" if content_type else "served without a Content-Type"
    if content_type is None:
        served = "read from a file"
    if not data:
        raise InvalidImageError(f"empty body ({served})", image_id=image_id)
    if verdict.kind == "text":
        raise InvalidImageError(
            f"not an image but text/HTML ({served}), probably an error page: body starts {quote_start(data)}",
            image_id=image_id,
        )
    if verdict.kind == "foreign":
        hint = hint_for(verdict, image_id, "wadouri" in schemes())
        hint = f"; {hint}" if hint else ""
        raise UnsupportedError(
            f"{verdict.format} is not a format loadstone-web decodes ({served}){hint}", image_id=image_id
        )
    if verdict.kind != "image" or verdict.format is None:
        raise InvalidImageError(
            f"not a {' or '.join(sorted(enabled)) or 'known'} image ({served}): "
            f"body starts {quote_start(data)}",
            image_id=image_id,
        )
    fmt = verdict.format
    if fmt not in enabled:
        raise UnsupportedError(
            f"{fmt} images are not enabled ({served}); enable them with "
            f"loadstone_web.config.enable({fmt!r}) (enabled: {', '.join(sorted(enabled)) or 'none'})",
            image_id=image_id,
        )
    extra: dict[str, Any] = {"format": fmt}
    if content_type is not None:
        extra["content_type"] = content_type
        claimed = content_type_format(content_type)
        if claimed not in ("", fmt):
            if settings.strict_content_type:
                raise InvalidImageError(
                    f"Content-Type {content_type!r} does not match the body, which is {fmt} "
                    "(loadstone_web.config.strict_content_type is on)",
                    image_id=image_id,
                )
            extra["content_type_mismatch"] = True
    return fmt, extra


def _check_size(image_id: str, fmt: str, size: tuple[int, int], cap: int, settings: Settings) -> None:
    width, height = size
    if width <= 0 or height <= 0:
        raise InvalidImageError(f"{fmt} header gives an empty image ({width}x{height})", image_id=image_id)
    if width * height > cap:
        which = (
            "loadstone_web.config.max_pixels"
            if cap == settings.max_pixels
            else "PIL.Image.MAX_IMAGE_PIXELS, below loadstone_web.config.max_pixels"
        )
        raise ResourceLimitError(
            f"{fmt} image of {width}x{height} = {width * height} pixels is above the cap of {cap} "
            f"pixels ({which}); refused before decoding (decompression bomb guard)",
            image_id=image_id,
        )


# -- after Pillow --------------------------------------------------------------------------
def _orientation(im: Any) -> int:
    try:
        value = im.getexif().get(_ORIENTATION_TAG, 1)
    except Exception:  # unreadable EXIF: keep the pixels as stored
        return 1
    return value if isinstance(value, int) else 1


def _has_transparency(im: Any) -> bool:
    flag = getattr(im, "has_transparency_data", None)  # Pillow >= 10.1
    if isinstance(flag, bool):
        return flag
    if im.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in im.info:
        return True
    return im.mode == "P" and getattr(im.palette, "mode", "") == "RGBA"


def _normalise(im: Any, image_id: str) -> Any:
    """An image in one of the modes of ``_LAYOUTS`` (``im`` itself when it already is)."""
    mode = im.mode
    try:
        if mode == "1":
            return im.convert("L")
        if mode in ("P", "L", "RGB"):
            if _has_transparency(im):
                return im.convert("RGBA")
            return im.convert("RGB") if mode == "P" else im
        if mode in _TO_RGBA:
            return im.convert("RGBA")
        if mode in _TO_RGB:
            return im.convert("RGB")
    except Exception as exc:
        raise InvalidImageError(f"cannot convert Pillow mode {mode!r}: {exc}", image_id=image_id) from exc
    if mode in _LAYOUTS:
        return im
    raise UnsupportedError(f"Pillow image mode {mode!r} is not supported", image_id=image_id)


def pixels_of(im: Any) -> np.ndarray:
    """The pixels of a Pillow image of a ``_LAYOUTS`` mode as a read-only array, copied once.

    The raw packer writes every line into one ``bytes`` of exactly the image's
    size, which numpy then views; native byte order is ensured for 16-bit.
    """
    im.load()  # a no-op once loaded
    rawmode, typestr, components = _LAYOUTS[im.mode]
    dtype = np.dtype(typestr)
    width, height = im.size
    nbytes = width * height * components * dtype.itemsize
    shape = (height, width) if components == 1 else (height, width, components)
    data = _pack(im, rawmode, nbytes, width)
    if data is None:  # packer unavailable (a future Pillow): the public, two-copy path
        array = np.asarray(im)
    else:
        array = np.frombuffer(data, dtype=dtype, count=width * height * components).reshape(shape)
    if not array.dtype.isnative:
        array = array.astype(array.dtype.newbyteorder("="))
    return array


def _pack(im: Any, rawmode: str, nbytes: int, width: int) -> bytes | None:
    pil = _pillow()
    getencoder = getattr(pil, "_getencoder", None)
    if getencoder is None:
        return None
    encoder = getencoder(im.mode, "raw", rawmode)
    try:
        encoder.setimage(im.im, (0, 0, *im.size))
        bufsize = max(nbytes, width * 4, 1)  # the raw encoder needs room for one whole line
        chunks = []
        while True:
            _, status, chunk = encoder.encode(bufsize)
            chunks.append(chunk)
            if status:
                break
        if status < 0:
            raise RuntimeError(f"Pillow raw encoder error {status}")
    finally:
        encoder.cleanup()
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _display_fields(array: np.ndarray) -> dict[str, Any]:
    """Default window: 128/255 for 8-bit, the full 16-bit range for 16-bit, else the data range."""
    if array.dtype == np.uint8:
        return {"window_center": 128.0, "window_width": 255.0}
    if array.dtype == np.uint16:
        return {"window_center": 32768.0, "window_width": 65535.0}
    if not array.size:
        return {}
    lo, hi = float(np.nanmin(array)), float(np.nanmax(array))
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return {}
    return {"window_center": (lo + hi) / 2.0, "window_width": max(hi - lo, 1.0)}


def _spacing(data: bytes | bytearray, fmt: str, info: dict[str, Any]) -> tuple[float, float] | None:
    """(row, column) pixel spacing in mm when the file records a physical resolution."""
    if fmt == "PNG":
        return png_physical_spacing(data)
    if fmt == "JPEG":
        unit = info.get("jfif_unit")
        density = info.get("jfif_density")
        per_mm = {1: 25.4, 2: 10.0}.get(unit) if isinstance(unit, int) else None
        if per_mm is None or not isinstance(density, tuple) or len(density) != 2:
            return None
        x, y = density
        if x > 0 and y > 0:
            return per_mm / float(y), per_mm / float(x)
        return None
    if fmt in ("BMP", "TIFF"):
        dpi = info.get("dpi")
        if isinstance(dpi, tuple) and len(dpi) == 2:
            try:
                x, y = float(dpi[0]), float(dpi[1])
            except (TypeError, ValueError):
                return None
            if x > 0 and y > 0 and math.isfinite(x) and math.isfinite(y):
                return 25.4 / y, 25.4 / x
    return None

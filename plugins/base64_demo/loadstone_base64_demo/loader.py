"""The ``example:`` image loader: embedded data in, :class:`loadstone.Image` out.

Nothing is synthesised and nothing touches the network: the slice comes out
of the decoded embedded volume (see :mod:`._pixels`).  The core's
:func:`loadstone.image_loader` makes the plain function a loader that
returns an ``ImageLoadObject`` at once, as every loader must, and runs it as
the load (on a worker thread, or on the caller's when the caller waits).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from loadstone import Image, image_loader
from loadstone.toolkit import sleep

from ._ids import parse_image_id
from ._pixels import read_slice
from .config import config

__all__ = ["load_example", "load_example_image"]


def load_example_image(image_id: str, options: Mapping[str, Any]) -> Image:
    """Build the Image for a demo id, synchronously; bad ids raise ``InvalidImageError``.

    ``options`` are accepted for the loader signature; the demo needs none.
    With ``config.latency`` set, the load first waits that long (ended early
    by its cancel or deadline, which it then raises).
    """
    spec, index = parse_image_id(image_id)
    latency = config.get().latency
    if latency:
        sleep(latency)
    started = time.perf_counter()
    pixels = read_slice(spec, index)
    decode_ms = (time.perf_counter() - started) * 1000.0
    window = spec.windows[0] if spec.windows else None
    geometry = spec.geometry
    return Image.from_array(
        image_id,
        pixels,
        slope=spec.slope,
        intercept=spec.intercept,
        window_center=window.center if window else None,
        window_width=window.width if window else None,
        row_pixel_spacing=geometry.pixel_spacing[0] if geometry else None,
        column_pixel_spacing=geometry.pixel_spacing[1] if geometry else None,
        photometric_interpretation=spec.photometric_interpretation,
        decode_time_ms=decode_ms,
    )


#: The ImageLoader registered for the ``example`` scheme: ``(image_id, options) -> ImageLoadObject``.
#: It takes loadstone's own options only: another (``window_centre=``) is refused as a typo.
load_example = image_loader(load_example_image, options=())

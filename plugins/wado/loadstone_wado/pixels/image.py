"""Decoded frames become :class:`loadstone.Image` objects.

``photometric_interpretation`` on the Image is the object's own value for
grey images (MONOCHROME1 sets ``invert``) and ``"RGB"`` for every colour
image, since colour is always delivered as RGB (YBR converted, palette
applied); ``image.extra`` keeps the original value, the transfer syntax,
the frame number and the decoder used.
"""

from __future__ import annotations

import time

from pydicom.dataset import Dataset

from loadstone import Image, InvalidImageError, LoadstoneError

from ..dicom.attributes import FileAttributes
from ..dicom.description import PixelDescription
from ..dicom.syntaxes import is_native
from .decode import decode_frame_full
from .frames import encapsulated_frame, pixel_buffer
from .limits import check_pixel_limits
from .stored import DecodedFrame, FrameBytes

__all__ = ["image_from_frame", "image_from_dataset", "build_image", "transfer_syntax_of"]


def build_image(image_id: str, decoded: DecodedFrame, description: PixelDescription,
                transfer_syntax_uid: str, frame: int = 1, load_started: float | None = None) -> Image:
    """The Image of a decoded frame, with rescale, window and spacing from ``description``."""
    pixels = decoded.pixels
    color = pixels.ndim == 3
    photometric = decoded.photometric_interpretation if color else description.photometric_interpretation
    image = Image(
        image_id=image_id,
        rows=int(pixels.shape[0]),
        columns=int(pixels.shape[1]),
        pixel_data=pixels,
        color=color,
        number_of_components=int(pixels.shape[2]) if color else 1,
        min_pixel_value=decoded.minimum,
        max_pixel_value=decoded.maximum,
        slope=description.rescale_slope,
        intercept=description.rescale_intercept,
        window_center=None if color else description.window_center,
        window_width=None if color else description.window_width,
        voi_lut_function=description.voi_lut_function,
        invert=(not color) and photometric == "MONOCHROME1",
        photometric_interpretation=photometric,
        row_pixel_spacing=description.row_pixel_spacing,
        column_pixel_spacing=description.column_pixel_spacing,
        decode_time_ms=decoded.decode_ms,
        extra={
            "transfer_syntax_uid": str(transfer_syntax_uid),
            "original_photometric_interpretation": description.photometric_interpretation,
            "frame": frame,
            "number_of_frames": description.number_of_frames,
            "decoder": decoded.decoder,
        },
    )
    if load_started is not None:
        image.load_time_ms = (time.perf_counter() - load_started) * 1000.0
    return image


def image_from_frame(image_id: str, frame: FrameBytes, description: PixelDescription,
                     transfer_syntax_uid: str) -> Image:
    """Decode one frame's bytes (as WADO-RS delivers them) into an Image."""
    decoded = decode_frame_full(frame, description, transfer_syntax_uid, image_id=image_id)
    return build_image(image_id, decoded, description, transfer_syntax_uid)


def transfer_syntax_of(ds: Dataset, image_id: str | None = None) -> str:
    """The dataset's Transfer Syntax UID, or :class:`InvalidImageError` saying it has none."""
    uid = FileAttributes(ds).text("TransferSyntaxUID")
    if not uid:
        raise InvalidImageError("the object has no (0002,0010) Transfer Syntax UID in its file meta "
                                "information, so its pixel data cannot be interpreted", image_id=image_id)
    return uid


def image_from_dataset(image_id: str, ds: Dataset, frame: int) -> Image:
    """Decode frame ``frame`` (1-based) of a parsed Part 10 dataset into an Image.

    The dataset is only read: frame tables built for multi-frame objects are
    kept on it so the next frame is found directly.
    """
    started = time.perf_counter()
    try:
        uid = transfer_syntax_of(ds, image_id)
        if isinstance(frame, bool) or not isinstance(frame, int):
            raise InvalidImageError(f"the frame number must be an int, got {frame!r}")
        description = PixelDescription.from_dataset(ds, frame)
        if frame < 1:
            raise InvalidImageError(f"frame {frame} does not exist: frame numbers start at 1")
        if frame > description.number_of_frames:
            raise InvalidImageError(f"frame {frame} is past the end: the object has "
                                    f"{description.number_of_frames} frame(s)")
        check_pixel_limits(description, image_id)
        buffer = pixel_buffer(ds)
        index = frame - 1
        if is_native(uid):
            source: FrameBytes = buffer
            decoded = decode_frame_full(source, description, uid, image_id=image_id, index=index)
            if description.number_of_frames > 1 and decoded.pixels.base is not None:
                decoded = _detached(decoded)
        else:
            data = encapsulated_frame(ds, buffer, index, description.number_of_frames)
            decoded = decode_frame_full(data, description, uid, image_id=image_id)
    except LoadstoneError as exc:
        if exc.image_id is None:
            exc.image_id = image_id
        raise
    return build_image(image_id, decoded, description, uid, frame, started)


def _detached(decoded: DecodedFrame) -> DecodedFrame:
    """A copy of a frame that is a view into a multi-frame buffer.

    Otherwise one cached frame would keep every frame's bytes alive while
    the image cache counts only its own.
    """
    pixels = decoded.pixels.copy()
    pixels.flags.writeable = False
    return decoded._replace(pixels=pixels)

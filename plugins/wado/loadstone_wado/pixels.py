"""Pixel decoding: DICOM frames in, :class:`loadstone.Image` out.

The public face of :mod:`loadstone_wado._pixels`, which the file and WADO
loaders share:

* :class:`PixelDescription` — the Image Pixel module and display values of
  an object, ``from_dataset(ds)`` or ``from_dicom_json(attrs)``;
* :func:`decode_frame` — one frame's bytes to stored values (colour as RGB);
* :func:`image_from_frame` / :func:`image_from_dataset` — straight to an Image;
* :func:`available_transfer_syntaxes` — what this installation can decode.
"""

from __future__ import annotations

from ._pixels import (
    DecodedFrame,
    PaletteLUT,
    PixelDescription,
    available_transfer_syntaxes,
    check_pixel_limits,
    decode_frame,
    decoder_order,
    image_from_dataset,
    image_from_frame,
    transfer_syntax_of,
)

__all__ = [
    "PixelDescription",
    "PaletteLUT",
    "DecodedFrame",
    "decode_frame",
    "image_from_frame",
    "image_from_dataset",
    "available_transfer_syntaxes",
    "decoder_order",
    "check_pixel_limits",
    "transfer_syntax_of",
]

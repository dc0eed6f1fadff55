"""Pixel decoding: DICOM frames in, :class:`loadstone.Image` out, shared by every loader.

* :func:`decode_frame` — one frame's bytes to stored values (colour as RGB);
* :func:`image_from_frame` / :func:`image_from_dataset` — straight to an Image;
* :func:`available_transfer_syntaxes` — what this installation can decode,
  and :func:`decoder_order` — which decoders, in which order;
* :class:`PixelDescription` (from :mod:`loadstone_wado.dicom`) — what the bytes mean.

Inside: :mod:`.backends` (one module per codec library), :mod:`.order`
(which backend first), :mod:`.stored` (decode, clean bits, colour),
:mod:`.pool` and :mod:`.worker` (the decode pool's processes),
:mod:`.decode` (cap, thread or pool, palette), :mod:`.frames` (frame N of a
dataset), :mod:`.image` (Image construction), :mod:`.limits`, :mod:`.color`.
"""

from __future__ import annotations

from ..dicom.description import PaletteLUT, PixelDescription
from .decode import decode_frame
from .image import image_from_dataset, image_from_frame, transfer_syntax_of
from .limits import check_pixel_limits
from .order import available_transfer_syntaxes, decoder_order
from .stored import DecodedFrame, decode_stored

__all__ = [
    "PixelDescription",
    "PaletteLUT",
    "DecodedFrame",
    "decode_frame",
    "decode_stored",
    "image_from_frame",
    "image_from_dataset",
    "available_transfer_syntaxes",
    "decoder_order",
    "check_pixel_limits",
    "transfer_syntax_of",
]

"""Pixel decoding for loadstone-wado; the public names are re-exported by :mod:`loadstone_wado.pixels`.

One module per job: ``description`` (what the bytes mean), ``native`` and
``codecs`` (uncompressed and compressed frames), ``color`` (YBR and palette),
``limits`` (the pixel cap), ``frames`` (finding frame N in a dataset),
``decode`` (the pipeline) and ``image`` (Image construction).
"""

from __future__ import annotations

from .codecs import available_transfer_syntaxes, decoder_order
from .decode import DecodedFrame, decode_frame, decode_stored
from .description import PaletteLUT, PixelDescription
from .image import image_from_dataset, image_from_frame, transfer_syntax_of
from .limits import check_pixel_limits

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

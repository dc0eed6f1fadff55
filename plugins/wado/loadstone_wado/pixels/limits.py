"""The pixel cap: refuse an object whose decoded size is beyond the configured limit.

Checked from the header values alone, before any pixel buffer is allocated,
so a forged ``Rows x Columns x Number of Frames`` cannot make a load
allocate gigabytes.
"""

from __future__ import annotations

from loadstone import ResourceLimitError

from ..config import get_config
from ..dicom.description import PixelDescription

__all__ = ["check_pixel_limits"]


def _size(nbytes: int) -> str:
    value = float(nbytes)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{nbytes} bytes"


def check_pixel_limits(description: PixelDescription, image_id: str | None = None) -> None:
    """Raise :class:`ResourceLimitError` if the object's decoded pixels exceed ``max_pixel_bytes``."""
    limit = get_config().max_pixel_bytes
    total = description.total_nbytes
    if description.photometric_interpretation == "PALETTE COLOR":
        total *= 3 * 2  # indices become 16-bit RGB at most
    if total > limit:
        raise ResourceLimitError(
            f"the decoded pixels would take {_size(total)} ({description.rows} rows x "
            f"{description.columns} columns x {description.number_of_frames} frames x "
            f"{description.samples_per_pixel} samples x {description.bytes_per_sample} bytes), above the "
            f"limit of {_size(limit)} (loadstone_wado.config max_pixel_bytes)",
            image_id=image_id,
        )

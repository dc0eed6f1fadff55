"""Old home of the ``wadors:`` loader; it lives in :mod:`loadstone_wado.schemes.wadors`."""

from __future__ import annotations

from .schemes.wadors import (
    WadorsRef,
    batching,
    configure_batching,
    frame_stats,
    load_wadors,
    metadata_provider,
    parse_wadors_id,
    series_image_ids,
)

__all__ = ["load_wadors", "metadata_provider", "series_image_ids", "parse_wadors_id", "configure_batching",
           "batching", "frame_stats", "WadorsRef"]

"""Old home of the decode pool; it lives in :mod:`loadstone_wado.pixels.pool`."""

from __future__ import annotations

from .pixels.pool import DecodePool, decode, describe, get_pool, shutdown, start, worker_count

__all__ = ["DecodePool", "get_pool", "decode", "start", "shutdown", "describe", "worker_count"]

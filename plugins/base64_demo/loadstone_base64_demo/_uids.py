"""Deterministic DICOM UIDs for the demo data.

The demo has no DICOM files to carry UIDs, yet viewers and the MPR plugin
group images by study, series and frame of reference.  UIDs are derived from
a name with UUID version 5 under the ``2.25`` root (ISO/IEC 9834-8), so they
are valid, unique to this demo, and the same on every run and machine.
"""

from __future__ import annotations

import functools
import uuid

__all__ = ["demo_uid"]

_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/loadstone/loadstone-base64-demo")


@functools.lru_cache(maxsize=1024)
def demo_uid(name: str) -> str:
    """The UID for ``name`` (e.g. ``"ct/series"``): ``2.25.<decimal UUID>``, at most 44 characters."""
    return f"2.25.{uuid.uuid5(_NAMESPACE, name).int}"

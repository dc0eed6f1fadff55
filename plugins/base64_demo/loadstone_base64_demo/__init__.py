"""loadstone-base64-demo: embedded demo images for the ``example:`` scheme.

Like the data of Cornerstone's live examples, the pixels ship base64-encoded
inside the package, so the demo works offline and loads the same everywhere:
``example://ct/0`` .. ``example://ct/63`` (CT, int16, HU by rescale),
``example://mr/0`` .. ``example://mr/31`` (sagittal MR, uint16) and
``example://color/0`` (RGB).  Installing the package registers the scheme;
nothing needs importing by hand.
"""

from __future__ import annotations

from ._series import SERIES
from .loader import load_example, load_example_image
from .metadata import metadata_provider

__all__ = ["SERIES_IDS", "load_example", "load_example_image", "metadata_provider"]

__version__ = "0.1.0"

#: The demo's series ids, for ``loadstone.series_image_ids``.
SERIES_IDS: tuple[str, ...] = tuple(spec.series_id for spec in SERIES.values())

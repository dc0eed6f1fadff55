"""loadstone-base64-demo: embedded demo images for the ``example:`` scheme.

Like the data of Cornerstone's live examples, the pixels ship base64-encoded
inside the package, so the demo works offline and loads the same everywhere:
``example://ct/0`` .. ``example://ct/63`` (CT, int16, HU by rescale),
``example://mr/0`` .. ``example://mr/31`` (sagittal MR, uint16) and
``example://color/0`` (RGB).  Installing the package registers the scheme;
nothing needs importing by hand.  ``config.latency`` simulates a slow source.

The package is cheap to import: the catalogue and the settings load at once,
the loader and the metadata provider (numpy) on first use of their names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loadstone.toolkit import lazy_exports

from ._series import SERIES
from .config import Settings, config

if TYPE_CHECKING:
    from .loader import load_example, load_example_image
    from .metadata import metadata_provider

__all__ = ["SERIES_IDS", "Settings", "config", "load_example", "load_example_image", "metadata_provider"]

__version__ = "0.1.0"

#: The demo's series ids, for ``loadstone.series_image_ids``.
SERIES_IDS: tuple[str, ...] = tuple(spec.series_id for spec in SERIES.values())

# Names imported on first access (they pull in numpy and the core's load machinery).
_LAZY = {"load_example": ".loader", "load_example_image": ".loader", "metadata_provider": ".metadata"}
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)

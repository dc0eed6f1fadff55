"""loadstone-mpr: derived images resliced from a volume built from any series.

Multiplanar reformatting on the client side, as the Cornerstone docs suggest
for derived images: ``mpr:`` ids name a plane of a volume built from any
series id (or from image ids registered with :func:`create_volume`)::

    import loadstone
    image = loadstone.load_image("mpr:sagittal;series=example://ct").result()
    image = loadstone.load_image(
        "mpr:oblique;normal=0.3,0.2,0.93;point=0,0,-40;slab=10;mode=mip;series=example://ct").result()
    array, affine = loadstone_mpr.get_volume("example://ct")

The grammar is in the README.  Installing the package registers the scheme.
The package is cheap to import: the settings and the id grammar load at
once, the volume and reslice machinery (numpy) on first use of their names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from loadstone.toolkit import lazy_exports

from ._grammar import MprSpec, Source, parse_mpr_id
from .config import Config, Settings, config

if TYPE_CHECKING:
    from loadstone.geometry import VolumeGeometry

    from ._geometry import PlaneGrid
    from ._volume import Volume, clear, create_volume, get_volume, remove_volume

__all__ = [
    "__version__",
    "config",
    "Config",
    "Settings",
    "create_volume",
    "remove_volume",
    "get_volume",
    "clear",
    "Volume",
    "VolumeGeometry",
    "PlaneGrid",
    "MprSpec",
    "Source",
    "parse_mpr_id",
]

__version__ = "0.1.0"

# Names imported on first access (they pull in numpy and the core's volume machinery).
_LAZY = {
    "create_volume": "._volume",
    "remove_volume": "._volume",
    "get_volume": "._volume",
    "clear": "._volume",
    "Volume": "._volume",
    "PlaneGrid": "._geometry",
    "VolumeGeometry": "loadstone.geometry",
}
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)

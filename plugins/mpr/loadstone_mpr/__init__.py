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
"""

from __future__ import annotations

from ._config import Config, config
from ._geometry import PlaneGrid, VolumeGeometry
from ._grammar import MprSpec, Source, parse_mpr_id
from ._volume import Volume, clear, create_volume, get_volume, remove_volume

__all__ = [
    "__version__",
    "config",
    "Config",
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

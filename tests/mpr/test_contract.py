"""The loader contract (loadstone.testing.LoaderContract) for the ``mpr`` scheme."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

import numpy as np
import pytest

import loadstone
from loadstone import InvalidImageError, ResourceLimitError, UnknownSchemeError
from loadstone.testing import LoaderContract

from .conftest import SynthFactory
from .helpers import has_scheme

CT = "example://ct"
MR = "example://mr"


@pytest.mark.skipif(not has_scheme("example"), reason="loadstone-base64-demo missing")
class TestMprLoaderContract(LoaderContract):
    loader = "mpr"
    has_metadata = True
    valid_ids: ClassVar[list[str]] = [
        f"mpr:sagittal;series={CT}",
        f"mpr:axial;index=10;series={CT}",
        f"mpr:oblique;normal=0,0.5,1;size=64x64;slab=6;mode=mean;series={CT}",
        f"mpr:coronal;position=0;interp=nearest;series={MR}",
    ]
    invalid_ids: ClassVar[dict[str, type[BaseException]]] = {
        f"mpr:sagittal;indx=3;series={CT}": InvalidImageError,
        f"mpr:sagittal;index=500;series={CT}": InvalidImageError,
        "mpr:axial;volume=no-such-volume": InvalidImageError,
        "mpr:axial;series=nosuchscheme://x": UnknownSchemeError,
    }


class TestMprLoaderContractSynthetic(LoaderContract):
    """Synthetic series, with a slow one for the cancel and timeout checks."""

    loader = "mpr"
    result_timeout: ClassVar[float] = 30.0
    has_metadata = True

    @pytest.fixture(autouse=True)
    def _series(self, synth: SynthFactory) -> Iterator[None]:
        volume = np.arange(6 * 8 * 10, dtype=np.int16).reshape(6, 8, 10)
        fast = synth(volume, pixel_spacing=(0.5, 0.5), slice_spacing=1.0)
        slow = synth(volume, delay=20.0)  # each slice waits until its load is cancelled
        big = synth(volume)
        self.valid_ids = [fast.mpr("sagittal"), fast.mpr("oblique", normal="1,1,1", slab=2, mode="minip"),
                          fast.mpr("axial", index=5, interp="nearest")]
        self.slow_id = slow.mpr("coronal")
        self.invalid_ids = {fast.mpr("axial", index=99): InvalidImageError,
                            fast.mpr("axial", bogus=1): InvalidImageError,
                            big.mpr("axial", size="20000x20000"): ResourceLimitError}
        yield
        for image_id in slow.ids:
            loadstone.cancel_load_image(image_id)

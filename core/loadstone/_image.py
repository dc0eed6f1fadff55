"""The :class:`Image`: decoded pixels plus what is needed to display them."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._png import encode_png
from ._render import render_image

__all__ = ["Image"]


@dataclass(eq=False)
class Image:
    """One decoded image, as a loader returns it.

    ``pixel_data`` holds the *stored* values: ``(rows, columns)`` for grey,
    ``(rows, columns, 3|4)`` for colour.  Modality units are
    ``stored * slope + intercept``.  Use :meth:`from_array` to fill the
    derived fields (size, min/max, colour) from an array.
    """

    image_id: str
    rows: int
    columns: int
    pixel_data: np.ndarray
    color: bool = False
    number_of_components: int = 1
    min_pixel_value: float = 0.0
    max_pixel_value: float = 0.0
    slope: float = 1.0
    intercept: float = 0.0
    window_center: float | None = None
    window_width: float | None = None
    voi_lut_function: str = "LINEAR"
    invert: bool = False
    photometric_interpretation: str = "MONOCHROME2"
    row_pixel_spacing: float | None = None
    column_pixel_spacing: float | None = None
    size_in_bytes: int = 0
    load_time_ms: float = 0.0
    decode_time_ms: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not self.size_in_bytes:
            self.size_in_bytes = int(self.pixel_data.nbytes)

    @classmethod
    def from_array(cls, image_id: str, pixel_data: np.ndarray, **fields: Any) -> Image:
        """Build an Image from an array, deriving size, colour and min/max.

        ``fields`` override anything derived (e.g. ``photometric_interpretation``).
        """
        array = np.asarray(pixel_data)
        if array.ndim == 2:
            components = 1
        elif array.ndim == 3 and array.shape[2] in (3, 4):
            components = int(array.shape[2])
        else:
            raise ValueError(
                f"pixel_data must be (rows, columns) or (rows, columns, 3|4), got shape {array.shape}"
            )
        color = components > 1
        if array.size:
            lo, hi = float(array.min()), float(array.max())
        else:
            lo = hi = 0.0
        values: dict[str, Any] = {
            "rows": int(array.shape[0]),
            "columns": int(array.shape[1]),
            "color": color,
            "number_of_components": components,
            "min_pixel_value": lo,
            "max_pixel_value": hi,
            "photometric_interpretation": ("RGBA" if components == 4 else "RGB")
            if color
            else "MONOCHROME2",
        }
        values.update(fields)
        return cls(image_id=image_id, pixel_data=array, **values)

    # -- aliases -----------------------------------------------------------
    @property
    def height(self) -> int:
        """Same as ``rows``."""
        return self.rows

    @property
    def width(self) -> int:
        """Same as ``columns``."""
        return self.columns

    # -- pixels ------------------------------------------------------------
    def get_pixel_data(self) -> np.ndarray:
        """The stored pixel values (as Cornerstone's ``getPixelData``)."""
        return self.pixel_data

    def modality_pixel_data(self, dtype: Any = np.float32) -> np.ndarray:
        """Pixels in modality units (``stored * slope + intercept``)."""
        data = self.pixel_data.astype(dtype, copy=True)
        if self.slope != 1.0:
            data *= self.slope
        if self.intercept != 0.0:
            data += self.intercept
        return data

    def render(
        self,
        window_center: float | None = None,
        window_width: float | None = None,
        invert: bool | None = None,
        voi_lut_function: str | None = None,
    ) -> np.ndarray:
        """Display-ready uint8 pixels: rescale, VOI window, MONOCHROME1 inversion."""
        return render_image(self, window_center, window_width, invert, voi_lut_function)

    def to_png(self, **render_options: Any) -> bytes:
        """PNG bytes of :meth:`render` (grey, RGB or RGBA)."""
        return encode_png(self.render(**render_options))

    def save(self, path: str | os.PathLike[str], **render_options: Any) -> None:
        """Write the image: ``.png`` rendered (``window_center=…`` etc. as for :meth:`render`),
        ``.npy`` the stored values."""
        target = Path(path)
        suffix = target.suffix.lower()
        if suffix == ".png":
            data = self.to_png(**render_options)
            target.write_bytes(data)
        elif suffix == ".npy":
            if render_options:
                raise TypeError(".npy keeps the stored values; render options apply to .png only")
            np.save(target, self.pixel_data, allow_pickle=False)
        else:
            raise ValueError("Image.save writes .png (rendered) or .npy (stored values), "
                             f"not {suffix or str(path)!r}")

    # -- numpy -------------------------------------------------------------
    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        """``numpy.asarray(image)``: the stored pixel values."""
        if dtype is None or np.dtype(dtype) == self.pixel_data.dtype:
            return self.pixel_data.copy() if copy else self.pixel_data
        return self.pixel_data.astype(dtype)

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape of the pixels: ``(rows, columns)`` grey, ``(rows, columns, components)`` colour."""
        return tuple(self.pixel_data.shape)

    @property
    def dtype(self) -> np.dtype[Any]:
        """The type of the stored values."""
        return self.pixel_data.dtype

    def _repr_png_(self) -> bytes:
        return self.to_png()

    def __repr__(self) -> str:
        kind = "colour" if self.color else "grey"
        return (
            f"Image({self.image_id!r}, {self.rows}x{self.columns} {kind}, "
            f"dtype={self.pixel_data.dtype}, range=[{self.min_pixel_value:g}, {self.max_pixel_value:g}])"
        )

"""What a frame's bytes mean: :class:`PixelDescription`, from a dataset or DICOM JSON.

The decoders need the Image Pixel module (rows, bits, photometric
interpretation, …); the :class:`loadstone.Image` also needs the modality and
VOI LUT values and the pixel spacing.  Both come from one place so the Part 10
path (``dicomfile:``, ``wadouri:``) and the DICOM JSON path (``wadors:``)
describe pixels identically.  Values are validated here, once, with messages
naming the element, so the decode path can trust them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydicom.datadict import dictionary_description
from pydicom.dataset import Dataset
from pydicom.pixels.processing import apply_color_lut

from loadstone import InvalidImageError, UnsupportedError

from .attributes import Attributes, DatasetAttributes, JsonAttributes, frame_value

__all__ = ["PixelDescription", "PaletteLUT", "PHOTOMETRIC_INTERPRETATIONS"]

#: Photometric interpretations this plugin decodes.
PHOTOMETRIC_INTERPRETATIONS = frozenset({
    "MONOCHROME1", "MONOCHROME2", "RGB", "PALETTE COLOR",
    "YBR_FULL", "YBR_FULL_422", "YBR_RCT", "YBR_ICT", "YBR_PARTIAL_420",
})
_VOI_FUNCTIONS = frozenset({"LINEAR", "LINEAR_EXACT", "SIGMOID"})


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True, eq=False)
class PaletteLUT:
    """A Palette Color lookup table as one ``(entries, 3|4)`` array of output values.

    Built through :func:`pydicom.pixels.apply_color_lut` (so segmented tables
    and 8-in-16-bit data are read exactly as pydicom reads them), applied with
    one indexing pass per frame instead of pydicom's masked passes.
    """

    first_mapped: int
    table: np.ndarray = field(repr=False)

    @classmethod
    def from_dataset(cls, ds: Dataset) -> PaletteLUT:
        """The LUT of a dataset holding the Palette Color Lookup Table elements."""
        try:
            descriptor = [int(v) for v in ds.RedPaletteColorLookupTableDescriptor]
            entries = descriptor[0] or 65536
            first = descriptor[1]
            if first >= 32768 and int(ds.get("PixelRepresentation", 0)) == 1:
                first -= 65536  # the descriptor is US but a signed first value
            table = apply_color_lut(np.arange(first, first + entries, dtype=np.int64), ds)
        except (AttributeError, KeyError, IndexError, ValueError, TypeError) as exc:
            raise InvalidImageError(f"the Palette Color Lookup Table is unusable: {exc}") from exc
        table.flags.writeable = False
        return cls(first, table)

    @property
    def channels(self) -> int:
        """3 for RGB, 4 when an alpha table is present."""
        return int(self.table.shape[1])

    def apply(self, indices: np.ndarray) -> np.ndarray:
        """Map stored values to colours (values outside the table clamp to its ends)."""
        entries = self.table.shape[0]
        if indices.dtype == np.uint8 and self.first_mapped == 0 and entries >= 256:
            index = indices
        else:
            index = indices.astype(np.int64) - self.first_mapped
            np.clip(index, 0, entries - 1, out=index)
        colours: np.ndarray = self.table[index]
        return colours


@dataclass(frozen=True)
class PixelDescription:
    """The Image Pixel module of one DICOM object, plus what an Image needs to display it.

    ``number_of_frames`` counts the whole object; a frame's bytes are decoded
    with the rest.  ``float_pixel`` marks Float / Double Float Pixel Data
    (``bits_allocated`` 32 / 64).  ``pixel_data_vr`` is the VR of the Pixel
    Data element when known (8-bit big-endian OW data is byte-swapped in pairs).
    """

    rows: int
    columns: int
    samples_per_pixel: int = 1
    bits_allocated: int = 16
    bits_stored: int = 16
    high_bit: int = 15
    pixel_representation: int = 0
    photometric_interpretation: str = "MONOCHROME2"
    planar_configuration: int = 0
    number_of_frames: int = 1
    rescale_slope: float = 1.0
    rescale_intercept: float = 0.0
    window_center: float | None = None
    window_width: float | None = None
    voi_lut_function: str = "LINEAR"
    row_pixel_spacing: float | None = None
    column_pixel_spacing: float | None = None
    float_pixel: bool = False
    palette: PaletteLUT | None = None
    pixel_data_vr: str | None = None

    def __post_init__(self) -> None:
        self.validate()

    # -- checks --------------------------------------------------------------
    def validate(self) -> None:
        """Raise :class:`InvalidImageError` naming the first inconsistent element."""
        def bad(message: str) -> InvalidImageError:
            return InvalidImageError(message)

        for name, tag in (("rows", "(0028,0010) Rows"), ("columns", "(0028,0011) Columns")):
            value = getattr(self, name)
            if not isinstance(value, int) or not 0 < value <= 65535:
                raise bad(f"a {tag} value of {value!r} is invalid; it must be in the range 1 to 65535")
        if self.samples_per_pixel not in (1, 3, 4):
            raise bad(f"a (0028,0002) Samples per Pixel value of {self.samples_per_pixel!r} is "
                      "invalid; it must be 1 or 3")
        if self.samples_per_pixel == 4:
            raise UnsupportedError("4 samples per pixel (ARGB/CMYK, retired) are not supported")
        allocated = self.bits_allocated
        if self.float_pixel:
            if allocated not in (32, 64):
                raise bad(f"float pixel data needs (0028,0100) Bits Allocated 32 or 64, got {allocated!r}")
        elif not isinstance(allocated, int) or not (
                allocated == 1 or (allocated % 8 == 0 and 8 <= allocated <= 64)):
            raise bad(f"a (0028,0100) Bits Allocated value of {allocated!r} is invalid; it must be 1 or "
                      "a multiple of 8 up to 64")
        stored = self.bits_stored
        if not self.float_pixel and not (isinstance(stored, int) and 1 <= stored <= allocated):
            raise bad(f"a (0028,0101) Bits Stored value of {self.bits_stored!r} is invalid; it must be "
                      f"between 1 and Bits Allocated ({allocated})")
        if self.pixel_representation not in (0, 1):
            raise bad(f"a (0028,0103) Pixel Representation value of {self.pixel_representation!r} is "
                      "invalid; it must be 0 or 1")
        if self.photometric_interpretation not in PHOTOMETRIC_INTERPRETATIONS:
            raise UnsupportedError(f"the (0028,0004) Photometric Interpretation "
                                   f"{self.photometric_interpretation!r} is not supported")
        if self.planar_configuration not in (0, 1):
            raise bad(f"a (0028,0006) Planar Configuration value of {self.planar_configuration!r} is "
                      "invalid; it must be 0 or 1")
        if not isinstance(self.number_of_frames, int) or self.number_of_frames < 1:
            raise bad(f"a (0028,0008) Number of Frames value of {self.number_of_frames!r} is invalid; "
                      "it must be 1 or more")
        if self.photometric_interpretation == "PALETTE COLOR" and self.samples_per_pixel != 1:
            raise bad("PALETTE COLOR needs (0028,0002) Samples per Pixel 1")

    # -- derived -----------------------------------------------------------
    @property
    def is_color(self) -> bool:
        """True when the decoded image has colour channels (RGB or palette)."""
        return self.samples_per_pixel > 1 or self.photometric_interpretation == "PALETTE COLOR"

    @property
    def bytes_per_sample(self) -> int:
        """Bytes of one decoded sample (1 for bit-packed data, which unpacks to uint8)."""
        return max(1, self.bits_allocated // 8)

    @property
    def pixels_per_frame(self) -> int:
        """Rows x Columns."""
        return self.rows * self.columns

    @property
    def frame_nbytes(self) -> int:
        """Bytes of one decoded frame of stored values (before any palette)."""
        return self.rows * self.columns * self.samples_per_pixel * self.bytes_per_sample

    @property
    def total_nbytes(self) -> int:
        """Bytes of every decoded frame of the object: what the pixel cap limits."""
        return self.frame_nbytes * self.number_of_frames

    @property
    def stored_dtype(self) -> np.dtype:
        """Native-endian dtype of the decoded stored values."""
        if self.float_pixel:
            return np.dtype(f"float{self.bits_allocated}")
        if self.bits_allocated == 1:
            return np.dtype("uint8")
        kind = "i" if self.pixel_representation else "u"
        return np.dtype(f"{kind}{self.bits_allocated // 8}")

    # -- constructors ------------------------------------------------------
    @classmethod
    def from_dataset(cls, ds: Dataset, frame: int | None = None) -> PixelDescription:
        """Describe the pixels of a pydicom dataset.

        With ``frame`` (1-based), rescale, window and spacing come from that
        frame's Per-Frame Functional Groups (else the Shared ones) when the
        object has them, as in enhanced multi-frame objects.
        """
        return _describe(DatasetAttributes(ds), frame)

    @classmethod
    def from_dicom_json(cls, attrs: Mapping[str, Any], frame: int | None = None) -> PixelDescription:
        """Describe the pixels of a DICOM JSON object (``{"00280010": {"vr": "US", "Value": [512]}}``).

        A palette needs its LUT data inline (``InlineBinary``); when the JSON
        only points at bulk data, ``palette`` stays None and decoding a
        PALETTE COLOR frame raises :class:`UnsupportedError` until the caller
        adds one (``dataclasses.replace(description, palette=PaletteLUT.from_dataset(ds))``).
        """
        return _describe(JsonAttributes(attrs), frame)


def _first_number(value: Any) -> float | None:
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    try:
        number = float(value) if value is not None and value != "" else None
    except (TypeError, ValueError):
        return None
    return number if number is not None and math.isfinite(number) else None


def _spacing(value: Any) -> tuple[float | None, float | None]:
    if isinstance(value, (list, tuple)) and len(value) >= 2:
        row, column = _first_number(value[0]), _first_number(value[1])
        if row and column and row > 0 and column > 0:
            return row, column
    return None, None


def _describe(source: Attributes, frame: int | None) -> PixelDescription:
    """Build a description from an attribute view (dataset or JSON)."""
    def required_int(keyword: str, tag: str) -> int:
        value = source.get(keyword)
        if value is None or value == "":
            raise InvalidImageError(f"missing required element {tag} {_spaced(keyword)}")
        return _as_int(value, keyword, tag)

    def optional_int(keyword: str, tag: str, default: int) -> int:
        value = source.get(keyword)
        if value is None or value == "":
            return default
        return _as_int(value, keyword, tag)

    float_keyword = source.pixel_keyword()
    float_pixel = float_keyword in ("FloatPixelData", "DoubleFloatPixelData")
    rows = required_int("Rows", "(0028,0010)")
    columns = required_int("Columns", "(0028,0011)")
    samples = optional_int("SamplesPerPixel", "(0028,0002)", 1)
    if float_pixel:
        allocated = 32 if float_keyword == "FloatPixelData" else 64
        stored, high, representation = allocated, allocated - 1, 0
    else:
        allocated = required_int("BitsAllocated", "(0028,0100)")
        stored = optional_int("BitsStored", "(0028,0101)", allocated)
        high = optional_int("HighBit", "(0028,0102)", stored - 1)
        representation = optional_int("PixelRepresentation", "(0028,0103)", 0)
    photometric = source.get("PhotometricInterpretation")
    if not photometric:
        raise InvalidImageError("missing required element (0028,0004) Photometric Interpretation")
    photometric = str(photometric).strip().upper()
    planar = optional_int("PlanarConfiguration", "(0028,0006)", 0) if samples > 1 else 0
    frames = optional_int("NumberOfFrames", "(0028,0008)", 1)

    slope = _first_number(frame_value(source, frame, "PixelValueTransformationSequence", "RescaleSlope"))
    intercept = _first_number(
        frame_value(source, frame, "PixelValueTransformationSequence", "RescaleIntercept"))
    center = _first_number(frame_value(source, frame, "FrameVOILUTSequence", "WindowCenter"))
    width = _first_number(frame_value(source, frame, "FrameVOILUTSequence", "WindowWidth"))
    if center is None or width is None or width <= 0:
        center = width = None
    function = frame_value(source, frame, "FrameVOILUTSequence", "VOILUTFunction")
    function = str(function).strip().upper() if function else "LINEAR"
    if function not in _VOI_FUNCTIONS:
        function = "LINEAR"
    spacing = frame_value(source, frame, "PixelMeasuresSequence", "PixelSpacing")
    row_spacing, column_spacing = _spacing(spacing)
    if row_spacing is None:
        row_spacing, column_spacing = _spacing(source.get("ImagerPixelSpacing"))

    palette = None
    if photometric == "PALETTE COLOR":
        palette_ds = source.palette_dataset()
        palette = PaletteLUT.from_dataset(palette_ds) if palette_ds is not None else None
    return PixelDescription(
        rows=rows,
        columns=columns,
        samples_per_pixel=samples,
        bits_allocated=allocated,
        bits_stored=stored,
        high_bit=high,
        pixel_representation=representation,
        photometric_interpretation=photometric,
        planar_configuration=planar,
        number_of_frames=frames,
        rescale_slope=slope if slope not in (None, 0.0) else 1.0,
        rescale_intercept=intercept if intercept is not None else 0.0,
        window_center=center,
        window_width=width,
        voi_lut_function=function,
        row_pixel_spacing=row_spacing,
        column_pixel_spacing=column_spacing,
        float_pixel=float_pixel,
        palette=palette,
        pixel_data_vr=source.pixel_vr(),
    )


def _spaced(keyword: str) -> str:
    """The element's name as the standard writes it ("Number of Frames")."""
    try:
        return str(dictionary_description(keyword))
    except KeyError:
        return keyword


def _as_int(value: Any, keyword: str, tag: str) -> int:
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    try:
        number = int(value)
        if isinstance(value, float) and number != value:
            raise ValueError(value)
    except (TypeError, ValueError):
        raise InvalidImageError(f"a {tag} {_spaced(keyword)} value of {value!r} is not an integer") from None
    return number

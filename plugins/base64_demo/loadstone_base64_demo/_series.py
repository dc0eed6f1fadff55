"""The catalogue of demo series: one place that says what each series is.

The loader, the metadata provider and the data generator all read these
specs, so a shape, a spacing or a rescale can only ever be stated once.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._geometry import Geometry

__all__ = [
    "PATIENT_ID",
    "PATIENT_NAME",
    "SERIES",
    "SeriesSpec",
    "StudySpec",
    "WindowPreset",
]

PATIENT_NAME = "Phantom^Loadstone"
PATIENT_ID = "LOADSTONE-DEMO-0001"

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
SECONDARY_CAPTURE_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.7"


@dataclass(frozen=True)
class WindowPreset:
    """A VOI window in modality units (HU for CT), as DICOM Window Center/Width."""

    center: float
    width: float
    explanation: str


@dataclass(frozen=True)
class StudySpec:
    """The study a series belongs to."""

    name: str  # UID seed
    description: str
    date: str  # DICOM DA
    time: str  # DICOM TM
    study_id: str
    accession_number: str


@dataclass(frozen=True)
class SeriesSpec:
    """Everything fixed about one demo series; per-slice values derive from it."""

    name: str  # the series part of the id: example://<name>/<n>
    modality: str
    description: str
    series_number: int
    study: StudySpec
    slices: int
    rows: int
    columns: int
    samples_per_pixel: int
    dtype: str  # numpy dtype of the stored values, little-endian as in the data file
    bits_stored: int
    photometric_interpretation: str
    sop_class_uid: str
    image_type: tuple[str, ...]
    slope: float
    intercept: float
    rescale_type: str
    windows: tuple[WindowPreset, ...]
    geometry: Geometry | None  # None: a secondary capture with no patient geometry
    pixel_padding_value: int | None = None

    @property
    def series_id(self) -> str:
        """The series id that :func:`loadstone.series_image_ids` expands."""
        return f"example://{self.name}"

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of the decoded data file: ``(slices, rows, columns[, samples])``."""
        if self.samples_per_pixel == 1:
            return (self.slices, self.rows, self.columns)
        return (self.slices, self.rows, self.columns, self.samples_per_pixel)

    @property
    def data_file(self) -> str:
        """Name of the base64 data file in the package's ``_data`` folder."""
        return f"{self.name}.b64"

    def image_id(self, index: int) -> str:
        """The canonical image id of slice ``index``."""
        return f"example://{self.name}/{index}"


CT_STUDY = StudySpec(
    name="study/ct",
    description="CT CHEST ABDOMEN (synthetic phantom)",
    date="20240115",
    time="093000",
    study_id="1",
    accession_number="LSDEMO001",
)
MR_STUDY = StudySpec(
    name="study/mr",
    description="MR HEAD (synthetic phantom)",
    date="20240122",
    time="141500",
    study_id="2",
    accession_number="LSDEMO002",
)

CT = SeriesSpec(
    name="ct",
    modality="CT",
    description="Axial 3.0 mm, contrast (synthetic)",
    series_number=2,
    study=CT_STUDY,
    slices=64,
    rows=128,
    columns=128,
    samples_per_pixel=1,
    dtype="<i2",
    bits_stored=16,
    photometric_interpretation="MONOCHROME2",
    sop_class_uid=CT_IMAGE_STORAGE,
    image_type=("ORIGINAL", "PRIMARY", "AXIAL"),
    slope=1.0,
    intercept=-1024.0,
    rescale_type="HU",
    windows=(
        WindowPreset(40.0, 400.0, "SOFT TISSUE"),
        WindowPreset(-600.0, 1500.0, "LUNG"),
        WindowPreset(300.0, 1500.0, "BONE"),
    ),
    geometry=Geometry(
        frame_of_reference="for/ct",
        # 128 x 2.5 mm = 320 mm field of view centred on the isocentre;
        # slices run feet to head (z grows), along the normal (0, 0, 1).
        first_position=(-158.75, -158.75, -250.0),
        row_cosines=(1.0, 0.0, 0.0),
        column_cosines=(0.0, 1.0, 0.0),
        pixel_spacing=(2.5, 2.5),
        slice_thickness=3.0,
        spacing_between_slices=3.0,
    ),
    # Outside the circular reconstruction field, as many scanners store it:
    # -2000 stored = -3024 HU.  It also keeps negative int16 values in the data.
    pixel_padding_value=-2000,
)

MR = SeriesSpec(
    name="mr",
    modality="MR",
    description="Sagittal T1 (synthetic)",
    series_number=3,
    study=MR_STUDY,
    slices=32,
    rows=128,
    columns=112,
    samples_per_pixel=1,
    dtype="<u2",
    bits_stored=12,
    photometric_interpretation="MONOCHROME2",
    sop_class_uid=MR_IMAGE_STORAGE,
    image_type=("ORIGINAL", "PRIMARY", "M", "NONE"),
    slope=1.0,
    intercept=0.0,
    rescale_type="US",
    windows=(WindowPreset(600.0, 1200.0, "T1 BRAIN"),),
    geometry=Geometry(
        frame_of_reference="for/mr",
        # Sagittal: columns run anterior -> posterior, rows superior -> inferior,
        # so the normal is (-1, 0, 0) and slices run from the patient's left to
        # right.  4.0 mm slices with a 0.5 mm gap: the spacing is not the thickness.
        first_position=(69.75, -99.9, 134.3),
        row_cosines=(0.0, 1.0, 0.0),
        column_cosines=(0.0, 0.0, -1.0),
        pixel_spacing=(1.8, 1.8),
        slice_thickness=4.0,
        spacing_between_slices=4.5,
    ),
)

COLOR = SeriesSpec(
    name="color",
    modality="OT",
    description="Colour test pattern (secondary capture)",
    series_number=900,
    study=CT_STUDY,
    slices=1,
    rows=256,
    columns=256,
    samples_per_pixel=3,
    dtype="u1",
    bits_stored=8,
    photometric_interpretation="RGB",
    sop_class_uid=SECONDARY_CAPTURE_IMAGE_STORAGE,
    image_type=("DERIVED", "SECONDARY"),
    slope=1.0,
    intercept=0.0,
    rescale_type="US",
    windows=(),
    geometry=None,
)

#: The demo series by name, in the order they are listed.
SERIES: dict[str, SeriesSpec] = {spec.name: spec for spec in (CT, MR, COLOR)}

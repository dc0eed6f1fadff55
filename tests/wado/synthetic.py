"""Synthetic DICOM objects for the wado tests and benchmarks, made with pydicom at run time.

Test data, not part of the plugin: tests import it as ``synthetic`` (pytest
puts this folder on ``sys.path``), benchmarks after adding this folder to it.

The test data shipped with pydicom is small (64x64 MR, 100x100 RGB); timings
and the decode pool need realistic 512x512 series in every transfer syntax.
Pixel content is a smooth CT-like phantom with mild noise, so the codecs see
the compression ratios of real images rather than of white noise.

Compression uses pydicom's encoders (``Dataset.compress``: RLE, JPEG-LS,
JPEG 2000) and GDCM for the JPEG process 1/2/14 syntaxes, which pydicom
cannot encode.  Nothing here is needed to *load* images.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    JPEG2000,
    UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
    SecondaryCaptureImageStorage,
    generate_uid,
)

__all__ = [
    "ct_phantom",
    "ct_dataset",
    "rgb_dataset",
    "compress",
    "write_series",
    "COMPRESSED_SYNTAXES",
]

#: Syntaxes :func:`compress` can produce here, with the encoder used.
COMPRESSED_SYNTAXES: dict[str, str] = {
    RLELossless: "pydicom",
    JPEGLSLossless: "pyjpegls",
    JPEGLSNearLossless: "pyjpegls",
    JPEG2000Lossless: "pylibjpeg-openjpeg",
    JPEG2000: "pylibjpeg-openjpeg",
    JPEGBaseline8Bit: "gdcm",
    JPEGExtended12Bit: "gdcm",
    JPEGLossless: "gdcm",
    JPEGLosslessSV1: "gdcm",
}


def ct_phantom(rows: int = 512, columns: int = 512, index: int = 0, bits_stored: int = 12) -> np.ndarray:
    """A signed 16-bit CT-like slice: air, a body ellipse, bone ring, slice-dependent organs."""
    y, x = np.mgrid[0:rows, 0:columns].astype(np.float32)
    cy, cx = rows / 2.0, columns / 2.0
    r = np.hypot((x - cx) / (0.42 * columns), (y - cy) / (0.36 * rows))
    image = np.full((rows, columns), -1000.0, dtype=np.float32)
    image[r < 1.0] = 40.0
    image[(r > 0.9) & (r < 1.0)] = 700.0
    organ = np.hypot(x - cx * (0.8 + 0.01 * (index % 20)), y - cy * 0.9) < 0.12 * columns
    image[organ] = 60.0 + 2.0 * (index % 30)
    image += 20.0 * np.sin(x / 17.0 + index / 5.0) * (r < 0.9)
    rng = np.random.default_rng(index)
    image += rng.normal(0.0, 8.0, size=image.shape).astype(np.float32) * (r < 1.0)
    low, high = -(1 << (bits_stored - 1)), (1 << (bits_stored - 1)) - 1
    return np.clip(np.rint(image), low, high).astype(np.int16)


def _file_meta(sop_class: str, sop_instance: str, transfer_syntax: str) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.MediaStorageSOPInstanceUID = UID(sop_instance)
    meta.TransferSyntaxUID = UID(transfer_syntax)
    return meta


def ct_dataset(
    index: int = 0,
    rows: int = 512,
    columns: int = 512,
    *,
    study_uid: str | None = None,
    series_uid: str | None = None,
    frame_of_reference_uid: str | None = None,
    slice_spacing: float = 1.25,
    unsigned: bool = False,
) -> Dataset:
    """One axial CT slice (Explicit VR Little Endian) at z = ``index * slice_spacing``.

    ``unsigned`` stores ``value + 1024`` as unsigned 16-bit with intercept -2048
    (JPEG baseline/extended cannot carry signed samples).
    """
    ds = Dataset()
    sop_uid = generate_uid()
    ds.file_meta = _file_meta(CTImageStorage, sop_uid, ExplicitVRLittleEndian)
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = sop_uid
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = series_uid or generate_uid()
    ds.FrameOfReferenceUID = frame_of_reference_uid or generate_uid()
    ds.Modality = "CT"
    ds.PatientName = "Synthetic^Phantom"
    ds.PatientID = "LS-0001"
    ds.StudyDate = "20240102"
    ds.StudyTime = "101500"
    ds.SeriesNumber = 1
    ds.InstanceNumber = index + 1
    ds.ImagePositionPatient = [-0.7 * columns / 2, -0.7 * rows / 2, index * slice_spacing]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing = [0.7, 0.7]
    ds.SliceThickness = slice_spacing
    ds.Rows = rows
    ds.Columns = columns
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    pixels = ct_phantom(rows, columns, index)
    if unsigned:
        ds.PixelRepresentation = 0
        ds.RescaleIntercept = -2048
        pixels = (pixels.astype(np.int32) + 2048).astype(np.uint16)
    else:
        ds.PixelRepresentation = 1
        ds.RescaleIntercept = 0
    ds.RescaleSlope = 1
    ds.WindowCenter = 40
    ds.WindowWidth = 400
    ds.PixelData = pixels.tobytes()
    return ds


def rgb_dataset(rows: int = 256, columns: int = 256, frames: int = 1) -> Dataset:
    """An 8-bit RGB secondary capture (``frames`` frames) with smooth colour gradients."""
    ds = Dataset()
    sop_uid = generate_uid()
    ds.file_meta = _file_meta(SecondaryCaptureImageStorage, sop_uid, ExplicitVRLittleEndian)
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = sop_uid
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "OT"
    ds.PatientName = "Synthetic^Colour"
    ds.PatientID = "LS-0002"
    ds.InstanceNumber = 1
    ds.Rows = rows
    ds.Columns = columns
    ds.SamplesPerPixel = 3
    ds.PhotometricInterpretation = "RGB"
    ds.PlanarConfiguration = 0
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    if frames > 1:
        ds.NumberOfFrames = frames
    y, x = np.mgrid[0:rows, 0:columns]
    planes = []
    for frame in range(frames):
        rgb = np.stack(
            [(x * 255 // max(columns - 1, 1)), (y * 255 // max(rows - 1, 1)),
             ((x + y + 8 * frame) % 256)], axis=-1,
        ).astype(np.uint8)
        planes.append(rgb)
    ds.PixelData = np.stack(planes).tobytes()
    return ds


def _gdcm_change_syntax(ds: Dataset, transfer_syntax: str) -> Dataset:
    """Re-encode ``ds`` with GDCM (JPEG processes 1, 2/4 and 14), via temporary files."""
    import gdcm
    import pydicom

    names = {
        JPEGBaseline8Bit: gdcm.TransferSyntax.JPEGBaselineProcess1,
        JPEGExtended12Bit: gdcm.TransferSyntax.JPEGExtendedProcess2_4,
        JPEGLossless: gdcm.TransferSyntax.JPEGLosslessProcess14,
        JPEGLosslessSV1: gdcm.TransferSyntax.JPEGLosslessProcess14_1,
    }
    with tempfile.TemporaryDirectory(prefix="loadstone-synth-") as folder:
        source, target = os.path.join(folder, "in.dcm"), os.path.join(folder, "out.dcm")
        ds.save_as(source, enforce_file_format=True)
        reader = gdcm.ImageReader()
        reader.SetFileName(source)
        if not reader.Read():
            raise RuntimeError("GDCM could not read the synthetic dataset")
        change = gdcm.ImageChangeTransferSyntax()
        change.SetTransferSyntax(gdcm.TransferSyntax(names[UID(transfer_syntax)]))
        change.SetInput(reader.GetImage())
        if not change.Change():
            raise RuntimeError(f"GDCM could not encode {UID(transfer_syntax).name}")
        writer = gdcm.ImageWriter()
        writer.SetFileName(target)
        writer.SetFile(reader.GetFile())
        writer.SetImage(change.GetOutput())
        if not writer.Write():
            raise RuntimeError("GDCM could not write the encoded dataset")
        return pydicom.dcmread(target)


def compress(ds: Dataset, transfer_syntax: str, **kwargs: Any) -> Dataset:
    """``ds`` encoded in ``transfer_syntax`` (a new dataset for GDCM syntaxes, ``ds`` itself otherwise).

    Lossy JPEG-LS uses ``jls_error=2`` and lossy JPEG 2000 ``j2k_cr=[10]``
    unless ``kwargs`` say otherwise.
    """
    uid = UID(transfer_syntax)
    if uid in (JPEGBaseline8Bit, JPEGExtended12Bit, JPEGLossless, JPEGLosslessSV1):
        return _gdcm_change_syntax(ds, uid)
    if uid == JPEGLSNearLossless:
        kwargs.setdefault("jls_error", 2)
    if uid == JPEG2000:
        kwargs.setdefault("j2k_cr", [10])
    ds.compress(uid, **kwargs)
    return ds


def write_series(
    folder: str | os.PathLike[str],
    count: int,
    *,
    rows: int = 512,
    columns: int = 512,
    transfer_syntax: str = ExplicitVRLittleEndian,
    shuffle: bool = True,
) -> list[Path]:
    """Write a ``count``-slice CT series into ``folder``; returns the paths in slice order.

    File names are shuffled (unless told otherwise) so that order must come
    from the geometry, not from the names.
    """
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    study, series, frame_of_reference = generate_uid(), generate_uid(), generate_uid()
    order: Sequence[int] = range(count)
    if shuffle:
        order = list(np.random.default_rng(7).permutation(count))
    unsigned = UID(transfer_syntax) in (JPEGBaseline8Bit, JPEGExtended12Bit)
    paths = [Path()] * count
    for name_index, index in enumerate(order):
        ds = ct_dataset(int(index), rows, columns, study_uid=study, series_uid=series,
                        frame_of_reference_uid=frame_of_reference, unsigned=unsigned)
        if UID(transfer_syntax) == JPEGBaseline8Bit:
            # Process 1 is 8-bit only: keep the top 8 of the 12 stored bits.
            pixels = np.frombuffer(ds.PixelData, dtype=np.uint16) >> 4
            ds.BitsAllocated, ds.BitsStored, ds.HighBit = 8, 8, 7
            ds.RescaleSlope, ds.RescaleIntercept = 16, -2048
            ds.PixelData = pixels.astype(np.uint8).tobytes()
        if UID(transfer_syntax) != ExplicitVRLittleEndian:
            ds = compress(ds, transfer_syntax)
        path = target / f"{name_index:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths[int(index)] = path
    return paths

"""Synthetic CT series as Part 10 bytes, for the tests and benchmarks that need a real DICOM series.

A smooth disc with mild noise, uncompressed (Explicit VR Little Endian),
slices 1.25 mm apart along -z (uploaded or written head to foot), with a
-1024 rescale intercept; or one multi-frame instance.  Made with pydicom at
run time: nothing to download, any size.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

__all__ = ["ct_series", "write_series"]


def ct_series(slices: int, size: int, frames: int = 1) -> tuple[str, str, list[bytes]]:
    """Part 10 bytes of a CT series (or one multi-frame instance when ``frames`` > 1)."""
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[:size, :size]
    body = ((xx - size / 2) ** 2 + (yy - size / 2) ** 2 < (size * 0.45) ** 2).astype(np.int16)
    study, series = generate_uid(), generate_uid()
    out = []
    for index in range(slices):
        ds = pydicom.Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = CTImageStorage
        uid = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = uid
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, uid
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.PatientID, ds.PatientName, ds.Modality = "BENCH", "Bench^WadoRS", "CT"
        ds.InstanceNumber = index + 1
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [-200.0, -200.0, -1.25 * index]  # uploaded head to foot
        ds.PixelSpacing, ds.SliceThickness = [0.78, 0.78], 1.25
        ds.Rows = ds.Columns = size
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
        ds.WindowCenter, ds.WindowWidth = 40, 400
        if frames > 1:
            ds.NumberOfFrames = frames
        stack = [(body * (1000 + 3 * (index + f)) + rng.integers(0, 40, body.shape)).astype(np.int16)
                 for f in range(frames)]
        ds.PixelData = np.stack(stack).tobytes()
        buffer = io.BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        out.append(buffer.getvalue())
    return study, series, out


def write_series(folder: Path, objects: list[bytes]) -> list[Path]:
    """Write Part 10 objects as ``0000.dcm``, ``0001.dcm``… into ``folder`` (created)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, data in enumerate(objects):
        path = folder / f"{index:04d}.dcm"
        path.write_bytes(data)
        paths.append(path)
    return paths

"""DICOMDIR files: the instances of a DICOM File-set, read through pydicom's ``FileSet``.

A DICOMDIR (PS3.10 §8, the index of a CD or a USB stick) lists the files of
its File-set by *Referenced File ID*, relative to its own folder.  A hostile
or broken DICOMDIR may name ``../../etc/passwd`` or an absolute path;
pydicom 3.0.2 refuses those itself (CVE-2026-32711) and every referenced
path is checked again here, for older pydicom 3.0 releases and for symbolic
links: each must resolve inside the DICOMDIR's folder, and inside the
configured root folder when there is one, or the whole DICOMDIR is refused
(:class:`~loadstone.PolicyDeniedError` naming the path).
"""

from __future__ import annotations

import io
import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pydicom import dcmread
from pydicom.fileset import FileInstance, FileSet

from loadstone import InvalidImageError, PolicyDeniedError
from loadstone.toolkit import read_file

from ..config import get_config
from .ids import resolve_path

__all__ = ["DicomdirEntry", "read_dicomdir", "is_dicomdir", "pydicom_warnings_to_log", "DICOMDIR_NAME"]

DICOMDIR_NAME = "DICOMDIR"
#: Directory record types whose instances carry pixels.
_IMAGE_RECORDS = frozenset({"IMAGE", "RT DOSE"})

_log = logging.getLogger("loadstone_wado.series")


@contextmanager
def pydicom_warnings_to_log(what: str) -> Iterator[None]:
    """Warnings raised inside (pydicom's, while reading odd files) go to the log, not the terminal.

    Logged at INFO on ``loadstone_wado.series`` with ``what`` (which folder or
    file); pydicom also logs them on its own ``pydicom`` logger.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for warning in caught:
        _log.info("while reading %s: %s: %s", what, warning.category.__name__, warning.message)


def is_dicomdir(path: Path) -> bool:
    """True for a file named ``DICOMDIR`` (the only name PS3.10 allows)."""
    return path.name.upper() == DICOMDIR_NAME and path.is_file()


@dataclass(frozen=True)
class DicomdirEntry:
    """One image instance a DICOMDIR references (from its directory records: no file is opened)."""

    path: Path
    series_instance_uid: str | None
    modality: str | None
    series_description: str | None
    series_number: int | None
    #: Number of Frames when the image record carries it, else 1.
    frames: int


def _text(instance: FileInstance, keyword: str) -> str | None:
    """A value from the instance's record or the records above it (series, study, patient)."""
    try:
        value = instance[keyword].value
    except KeyError:
        return None
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    text = str(value).strip() if value is not None else ""
    return text or None


def _integer(instance: FileInstance, keyword: str) -> int | None:
    text = _text(instance, keyword)
    try:
        return int(float(text)) if text is not None else None
    except ValueError:
        return None


def read_dicomdir(path: str | os.PathLike[str], image_id: str) -> list[DicomdirEntry]:
    """The image instances a DICOMDIR lists, in record order, each path checked (see the module).

    Raises :class:`~loadstone.InvalidImageError` for a file that is not a
    readable DICOMDIR and :class:`~loadstone.PolicyDeniedError` for one that
    references a file outside its folder (or outside the root folder).
    """
    dicomdir = resolve_path(path, image_id)
    folder = Path(os.path.realpath(dicomdir.parent))
    data = read_file(dicomdir, image_id, max_bytes=get_config().max_file_bytes,
                     limit_hint="loadstone_wado.config max_file_bytes").data
    with pydicom_warnings_to_log(str(dicomdir)):
        try:
            ds = dcmread(io.BytesIO(bytes(data)))
            ds.filename = str(dicomdir)  # FileSet takes the root folder from it
            file_set = FileSet()
            file_set.load(ds)
        except PermissionError as exc:  # pydicom >= 3.0.2: a Referenced File ID leaves the folder
            raise PolicyDeniedError(f"the DICOMDIR {str(dicomdir)!r} references a file outside its folder: "
                                    f"{exc}", image_id=image_id) from exc
        except Exception as exc:
            raise InvalidImageError(f"{str(dicomdir)!r} is not a readable DICOMDIR: {type(exc).__name__}: "
                                    f"{exc}", image_id=image_id) from exc
        entries = []
        for instance in file_set:
            node = instance.node
            if node.record_type not in _IMAGE_RECORDS:
                continue
            target = _checked(folder, Path(instance.path), dicomdir, image_id)
            entries.append(DicomdirEntry(
                path=target,
                series_instance_uid=_text(instance, "SeriesInstanceUID"),
                modality=_text(instance, "Modality"),
                series_description=_text(instance, "SeriesDescription"),
                series_number=_integer(instance, "SeriesNumber"),
                frames=max(1, _integer(instance, "NumberOfFrames") or 1),
            ))
    return entries


def _checked(folder: Path, target: Path, dicomdir: Path, image_id: str) -> Path:
    """``target`` resolved (symbolic links too), refused unless inside ``folder`` and the root."""
    resolved = Path(os.path.realpath(target))
    if resolved != folder and folder not in resolved.parents:
        raise PolicyDeniedError(f"the DICOMDIR {str(dicomdir)!r} references {str(target)!r}, which "
                                f"resolves to {str(resolved)!r}, outside its folder {str(folder)!r}",
                                image_id=image_id)
    return resolve_path(resolved, image_id)  # and inside the configured root, if any

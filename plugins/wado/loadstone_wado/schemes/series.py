"""The series of a ``dicomfile:`` folder or DICOMDIR: found, grouped by Series Instance UID, listed, expanded.

Series ids::

    dicomfile:/data/ct                        a folder that holds one series
    dicomfile:/data/mixed?series=<UID>        one series of a folder that holds several
    dicomfile:/data/study?series=<UID>&recursive=1   a series spread over subfolders
    dicomfile:/media/DICOMDIR?series=<UID>    a series of a DICOM File-set (CD, USB stick)

A folder holding several series is never interleaved: expanding it raises
:class:`MultipleSeriesError`, which lists each series (UID, description,
modality, count) with the id that picks it.  :func:`list_series` answers
``loadstone.list_series`` / ``loadstone series LOCATION`` the same way.
Files are read header-only (no pixels); files that are not DICOM or have no
image are skipped; pydicom's warnings about odd files go to the log
(``loadstone_wado.series``), not the terminal.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from pydicom.dataset import Dataset

from loadstone import InvalidImageError, SeriesInfo, current_load
from loadstone.toolkit import SlicePosition, order_in_space

from ..dicom.attributes import DatasetAttributes, frame_value
from ..part10.dicomdir import (
    DICOMDIR_NAME,
    DicomdirEntry,
    is_dicomdir,
    pydicom_warnings_to_log,
    read_dicomdir,
)
from ..part10.ids import DICOMFILE_PREFIX, SERIES_QUERY_KEYS, resolve_path, split_query

__all__ = ["MultipleSeriesError", "HeaderReader", "expand_folder", "list_location", "is_local_location"]

#: ``read(path, image_id) -> header`` (no pixels), raising for files that are not DICOM.
HeaderReader = Callable[[Path, str], Dataset]


class MultipleSeriesError(InvalidImageError):
    """A folder (or DICOMDIR) holds several series: pick one with its series id.

    ``series`` lists them (:class:`loadstone.SeriesInfo`, each with the
    ``series_id`` that picks it).
    """

    def __init__(self, message: str, *, image_id: str, series: list[SeriesInfo]) -> None:
        super().__init__(message, image_id=image_id)
        self.series = series


@dataclass(frozen=True)
class _File:
    """One image file found: where, its header, and its series."""

    path: Path
    header: Dataset | None  # None for DICOMDIR entries (not opened when listing)
    uid: str | None
    modality: str | None
    description: str | None
    number: int | None
    frames: int


def _from_header(path: Path, header: Dataset) -> _File:
    view = DatasetAttributes(header)
    number = view.number("SeriesNumber")
    return _File(path, header, view.text("SeriesInstanceUID"), view.text("Modality"),
                 view.text("SeriesDescription"), int(number) if number is not None else None,
                 view.number_of_frames())


def _from_entry(entry: DicomdirEntry) -> _File:
    return _File(entry.path, None, entry.series_instance_uid, entry.modality, entry.series_description,
                 entry.series_number, entry.frames)


# -- what a location names ---------------------------------------------------------------------
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+:")  # two letters at least: "C:\\data" is a path


def is_local_location(location: str) -> bool:
    """True for ``dicomfile:…`` and bare paths (``/data``, ``./ct``, ``C:\\data``), False for other ids."""
    if location[:len(DICOMFILE_PREFIX)].lower() == DICOMFILE_PREFIX:
        return True
    return _SCHEME.match(location) is None


@dataclass(frozen=True)
class _Location:
    path: Path
    uid: str | None  # ?series=
    recursive: bool  # &recursive=1


def _parse(location: str, series_id: str) -> _Location:
    rest = location[len(DICOMFILE_PREFIX):] if location[:len(DICOMFILE_PREFIX)].lower() == DICOMFILE_PREFIX \
        else location
    body, params = split_query(rest, series_id, SERIES_QUERY_KEYS)
    if body.startswith("file://"):
        body = body[len("file://"):]
    if not body:
        raise InvalidImageError("the dicomfile: series id names no folder", image_id=series_id)
    recursive = params.get("recursive", "0").lower()
    if recursive not in ("0", "1", "true", "false", "yes", "no"):
        raise InvalidImageError(f"recursive={params['recursive']!r}: expected 1 or 0", image_id=series_id)
    return _Location(resolve_path(body, series_id), params.get("series"), recursive in ("1", "true", "yes"))


# -- finding the files ---------------------------------------------------------------------------
def _candidates(folder: Path, recursive: bool) -> Iterable[Path]:
    """Regular files of ``folder`` (and its subfolders), names sorted, hidden ones skipped."""
    if not recursive:
        yield from sorted(p for p in folder.iterdir() if not p.name.startswith(".") and p.is_file())
        return
    for top, dirs, files in os.walk(folder):  # symbolic links to folders are not followed
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith("."):
                yield Path(top) / name


def _scan(folder: Path, recursive: bool, series_id: str, read: HeaderReader) -> list[_File]:
    found: list[_File] = []
    with pydicom_warnings_to_log(str(folder)):
        for candidate in _candidates(folder, recursive):
            context = current_load()
            if context is not None:
                context.check()
            try:
                resolved = resolve_path(candidate, series_id)
                header = read(resolved, series_id)
            except Exception:  # a file that is not DICOM, unreadable or denied is skipped
                continue
            if "Rows" not in header or "Columns" not in header:
                continue  # no image (a DICOMDIR, a report)
            found.append(_from_header(resolved, header))
    return found


def _files(where: _Location, series_id: str, read: HeaderReader) -> tuple[list[_File], Path | None]:
    """The image files a location holds, and the DICOMDIR they came from (None for a folder)."""
    path = where.path
    if path.is_dir() and (path / DICOMDIR_NAME).is_file() and not where.recursive:
        path = path / DICOMDIR_NAME
    if is_dicomdir(path):
        return [_from_entry(entry) for entry in read_dicomdir(path, series_id)], path
    if path.is_file():  # a multi-frame file is a series of its frames
        with pydicom_warnings_to_log(str(path)):
            header = read(path, series_id)
        return ([_from_header(path, header)] if "Rows" in header else []), None
    if path.is_dir():
        return _scan(path, where.recursive, series_id, read), None
    raise InvalidImageError(f"no such folder or file {str(path)!r}", image_id=series_id)


# -- grouping ------------------------------------------------------------------------------------
def _groups(files: list[_File]) -> dict[str | None, list[_File]]:
    groups: dict[str | None, list[_File]] = {}
    for entry in files:
        groups.setdefault(entry.uid, []).append(entry)
    return dict(sorted(groups.items(), key=lambda item: (
        item[1][0].number if item[1][0].number is not None else math.inf)))  # stable: first seen breaks ties


def _infos(where: _Location, groups: dict[str | None, list[_File]],
           dicomdir: Path | None) -> list[SeriesInfo]:
    """One :class:`SeriesInfo` per group, each with the shortest series id that picks it alone."""
    folder_uids: dict[Path, set[str | None]] = {}
    for uid, members in groups.items():
        for entry in members:
            folder_uids.setdefault(entry.path.parent, set()).add(uid)
    infos = []
    for uid, members in groups.items():
        pick = f"series={uid or ''}"
        if dicomdir is not None:
            series_id = f"{DICOMFILE_PREFIX}{dicomdir}" + (f"?{pick}" if len(groups) > 1 else "")
            location = str(dicomdir.parent)
        else:
            folders = {entry.path.parent for entry in members}
            if len(folders) == 1:
                folder = folders.pop()
                alone = folder_uids[folder] == {uid}
                series_id = f"{DICOMFILE_PREFIX}{folder}" + ("" if alone else f"?{pick}")
                location = str(folder)
            else:  # spread over subfolders
                series_id = f"{DICOMFILE_PREFIX}{where.path}?{pick}&recursive=1"
                location = str(where.path)
        first = members[0]
        infos.append(SeriesInfo(series_id=series_id, series_instance_uid=uid, description=first.description,
                                modality=first.modality, count=sum(entry.frames for entry in members),
                                location=location))
    return infos


#: Series an error message lists before "… and N more".
_LISTED = 6


def _listing(infos: list[SeriesInfo]) -> str:
    shown = "; ".join(f"{info.series_id} ({info.modality or 'no modality'}, "
                      f"{repr(info.description) if info.description else 'no description'}, "
                      f"{info.count} image(s))" for info in infos[:_LISTED])
    return shown + (f"; … and {len(infos) - _LISTED} more" if len(infos) > _LISTED else "")


def list_location(location: str, recursive: bool, read: HeaderReader) -> list[SeriesInfo]:
    """The series at a folder or DICOMDIR (``dicomfile:`` id or bare path), ``recursive`` into subfolders."""
    where = _parse(location, location)
    where = _Location(where.path, where.uid, where.recursive or recursive)
    files, dicomdir = _files(where, location, read)
    infos = _infos(where, _groups(files), dicomdir)
    if where.uid is not None:
        infos = [info for info in infos if (info.series_instance_uid or "") == where.uid]
    return infos


# -- expansion -------------------------------------------------------------------------------------
def _slices(entry: _File, read: HeaderReader, series_id: str) -> list[tuple[str, SlicePosition]]:
    """One (image id, position) per frame (from the functional groups of enhanced objects).

    A DICOMDIR's files are read here (header only); one that does not read
    as a DICOM image is skipped, as in a folder.
    """
    header = entry.header
    if header is None:
        try:
            header = read(entry.path, series_id)
        except Exception:
            return []
        if "Rows" not in header or "Columns" not in header:
            return []
    source = DatasetAttributes(header)
    frames = source.number_of_frames()
    number = source.number("InstanceNumber", 0.0) or 0.0
    per_frame = "PerFrameFunctionalGroupsSequence" in header
    result = []
    for frame in range(1, frames + 1):
        if frame == 1 or per_frame:
            position = frame_value(source, frame, "PlanePositionSequence", "ImagePositionPatient")
            orientation = frame_value(source, frame, "PlaneOrientationSequence", "ImageOrientationPatient")
        image_id = f"{DICOMFILE_PREFIX}{entry.path}" + (f"?frame={frame}" if frames > 1 else "")
        result.append((image_id, SlicePosition(position, orientation, (int(number), str(entry.path), frame))))
    return result


def expand_folder(series_id: str, read: HeaderReader) -> list[str]:
    """The image ids of a folder or DICOMDIR series id, ordered along the slice normal.

    Order: position along the normal (from the first oriented frame), then
    instance number, then path and frame number.  Several series without
    ``?series=``: :class:`MultipleSeriesError`.
    """
    where = _parse(series_id, series_id)
    files, dicomdir = _files(where, series_id, read)
    groups = _groups(files)
    if where.uid is not None:
        chosen = groups.get(where.uid) or (groups.get(None) if where.uid == "" else None)
        if chosen is None:
            infos = _infos(where, groups, dicomdir)
            held = f"it holds: {_listing(infos)}" if infos else "it holds no DICOM image"
            raise InvalidImageError(f"no series {where.uid!r} in {str(where.path)!r}; {held}",
                                    image_id=series_id)
        files = chosen
    elif len(groups) > 1:
        infos = _infos(where, groups, dicomdir)
        raise MultipleSeriesError(
            f"{str(where.path)!r} holds {len(infos)} series, which are not loaded mixed: pick one with its "
            f"series id: {_listing(infos)} (list them with 'loadstone series {where.path}' or "
            "loadstone.list_series)", image_id=series_id, series=infos)
    with pydicom_warnings_to_log(str(where.path)):
        slices = [item for entry in files for item in _slices(entry, read, series_id)]
    return [image_id for image_id, _ in order_in_space(slices, lambda item: item[1])]

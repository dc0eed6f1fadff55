"""The series of a folder and of a DICOMDIR, as a user meets them (issue 11).

A folder holding two series must not be interleaved: it is refused with a
list of its series and the id that picks each one; ``loadstone.list_series``
and ``loadstone series DIR`` list them; a DICOMDIR is read through pydicom's
FileSet with its paths kept inside its folder.  The API through public
names, the command line through a subprocess.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pydicom
import pytest
import synthetic
from pydicom.fileset import FileSet
from pydicom.uid import generate_uid

import loadstone
from loadstone_wado import config

AXIAL = ("Axial CT", 4)
SCOUT = ("Scout", 2)


def _write_series(folder: Path, description: str, count: int, *, prefix: str, number: int,
                  study: str | None = None) -> str:
    """``count`` 8x8 CT slices of one new series in ``folder``; returns its Series Instance UID."""
    folder.mkdir(parents=True, exist_ok=True)
    series, frame_of_reference = generate_uid(), generate_uid()
    for index in range(count):
        ds = synthetic.ct_dataset(index, 8, 8, study_uid=study, series_uid=series,
                                  frame_of_reference_uid=frame_of_reference)
        ds.SeriesDescription = description
        ds.SeriesNumber = number
        ds.save_as(folder / f"{prefix}{index:02d}.dcm", enforce_file_format=True)
    return series


@pytest.fixture
def mixed(tmp_path: Path) -> tuple[Path, str, str]:
    """A folder of two series written with pydicom (file names interleave them); (folder, axial, scout)."""
    folder = tmp_path / "mixed"
    study = generate_uid()
    axial = _write_series(folder, *AXIAL, prefix="a", number=2, study=study)
    scout = _write_series(folder, *SCOUT, prefix="b", number=1, study=study)
    (folder / "README.txt").write_text("not DICOM")
    return folder, axial, scout


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("LOADSTONE_")}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "loadstone", *args], capture_output=True, text=True,
                          timeout=120, env=full_env)


# -- a folder of two series -----------------------------------------------------------------------------
def test_a_folder_of_two_series_is_refused_with_the_list(mixed: tuple[Path, str, str]) -> None:
    folder, axial, scout = mixed
    with pytest.raises(loadstone.InvalidImageError) as caught:
        loadstone.series_image_ids(f"dicomfile:{folder}")
    error = caught.value
    message = str(error)
    assert f"'{folder}' holds 2 series, which are not loaded mixed: pick one with its series id: " in message
    # each series: UID (in its id), modality, description, count; the lower Series Number first
    assert (f"dicomfile:{folder}?series={scout} (CT, 'Scout', 2 image(s)); "
            f"dicomfile:{folder}?series={axial} (CT, 'Axial CT', 4 image(s))") in message
    assert f"(list them with 'loadstone series {folder}' or loadstone.list_series)" in message
    assert error.image_id == f"dicomfile:{folder}"
    # the typed error carries the list (loadstone.SeriesInfo)
    from loadstone_wado import MultipleSeriesError

    assert isinstance(error, MultipleSeriesError)
    assert [(s.series_instance_uid, s.description, s.modality, s.count) for s in error.series] == [
        (scout, "Scout", "CT", 2), (axial, "Axial CT", "CT", 4)]


def test_series_query_picks_one_series_in_space_order(mixed: tuple[Path, str, str]) -> None:
    folder, axial, scout = mixed
    ids = loadstone.series_image_ids(f"dicomfile:{folder}?series={axial}")
    assert ids == [f"dicomfile:{folder / f'a{i:02d}.dcm'}" for i in range(4)]
    assert loadstone.series_image_ids(f"dicomfile:{folder}?series={scout}") == [
        f"dicomfile:{folder / f'b{i:02d}.dcm'}" for i in range(2)]
    images = [load.result(30) for load in loadstone.load_images(ids)]
    modules = [loadstone.metadata.get("generalSeriesModule", i.image_id) for i in images]
    assert [module["series_instance_uid"] for module in modules] == [axial] * 4


def test_an_unknown_series_uid_lists_what_is_there(mixed: tuple[Path, str, str]) -> None:
    folder, _axial, _scout = mixed
    expected = f"no series '1.2.3' in '{folder}'; it holds: dicomfile:{folder}?series="
    with pytest.raises(loadstone.InvalidImageError, match=re.escape(expected)):
        loadstone.series_image_ids(f"dicomfile:{folder}?series=1.2.3")


def test_list_series_of_a_folder(mixed: tuple[Path, str, str]) -> None:
    folder, axial, scout = mixed
    found = loadstone.list_series(f"dicomfile:{folder}")
    assert found == loadstone.list_series(str(folder))  # a bare path works too
    assert [(s.series_id, s.series_instance_uid, s.description, s.modality, s.count, s.location)
            for s in found] == [
        (f"dicomfile:{folder}?series={scout}", scout, "Scout", "CT", 2, str(folder)),
        (f"dicomfile:{folder}?series={axial}", axial, "Axial CT", "CT", 4, str(folder)),
    ]
    for info in found:  # every listed id expands to that series alone
        assert len(loadstone.series_image_ids(info.series_id)) == info.count


def test_a_folder_of_one_series_keeps_its_plain_id(tmp_path: Path) -> None:
    uid = _write_series(tmp_path / "ct", *AXIAL, prefix="s", number=1)
    (found,) = loadstone.list_series(str(tmp_path / "ct"))
    assert found.series_id == f"dicomfile:{tmp_path / 'ct'}" and found.series_instance_uid == uid
    assert len(loadstone.series_image_ids(found.series_id)) == 4


def test_recursive_listing_and_expansion(tmp_path: Path) -> None:
    study = tmp_path / "study"
    alone = _write_series(study / "one", "Alone", 2, prefix="x", number=1)
    shared = _write_series(study / "two", "Shared", 2, prefix="y", number=2)
    other = _write_series(study / "two", "Other", 1, prefix="z", number=3)
    spread = _write_series(study / "three", "Spread", 1, prefix="w", number=4)
    # the same series continues in a fourth folder
    ds = synthetic.ct_dataset(5, 8, 8, series_uid=spread)
    ds.SeriesDescription, ds.SeriesNumber = "Spread", 4
    (study / "four").mkdir()
    ds.save_as(study / "four" / "w05.dcm", enforce_file_format=True)

    assert loadstone.list_series(str(study)) == []  # nothing at the top level
    found = {s.series_instance_uid: s for s in loadstone.list_series(str(study), recursive=True)}
    assert found[alone].series_id == f"dicomfile:{study / 'one'}"
    assert found[shared].series_id == f"dicomfile:{study / 'two'}?series={shared}"
    assert found[other].series_id == f"dicomfile:{study / 'two'}?series={other}"
    assert found[spread].series_id == f"dicomfile:{study}?series={spread}&recursive=1"
    assert found[spread].count == 2
    ids = loadstone.series_image_ids(found[spread].series_id)
    assert ids == [f"dicomfile:{study / 'three' / 'w00.dcm'}", f"dicomfile:{study / 'four' / 'w05.dcm'}"]


def test_cli_series_lists_a_folder(mixed: tuple[Path, str, str]) -> None:
    folder, axial, scout = mixed
    done = _cli("series", str(folder))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["SERIES", "INSTANCE", "UID", "MODALITY", "DESCRIPTION", "IMAGES", "SERIES",
                                "ID"]
    assert lines[1].split() == [scout, "CT", "Scout", "2", f"dicomfile:{folder}?series={scout}"]
    assert lines[2].split() == [axial, "CT", "Axial", "CT", "4", f"dicomfile:{folder}?series={axial}"]
    assert done.stderr == ""
    as_json = json.loads(_cli("series", str(folder), "--json").stdout)
    assert [entry["series_instance_uid"] for entry in as_json] == [scout, axial]
    assert as_json[1] == {"series_id": f"dicomfile:{folder}?series={axial}", "series_instance_uid": axial,
                          "description": "Axial CT", "modality": "CT", "count": 4, "location": str(folder)}


def test_cli_fetch_of_a_mixed_folder_says_how_to_pick(mixed: tuple[Path, str, str], tmp_path: Path) -> None:
    folder, _axial, scout = mixed
    done = _cli("fetch", "--series", f"dicomfile:{folder}", "-o", str(tmp_path / "out"), "-q")
    assert done.returncode == 1
    assert done.stderr.startswith(f"loadstone: error: '{folder}' holds 2 series, which are not loaded mixed")
    assert len(done.stderr.splitlines()) == 1
    picked = _cli("fetch", "--series", f"dicomfile:{folder}?series={scout}", "-o", str(tmp_path / "out"),
                  "-q")
    assert picked.returncode == 0, picked.stderr
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert len(manifest["images"]) == 2  # image id -> entry


def test_a_volume_from_a_dicomfile_series(mixed: tuple[Path, str, str]) -> None:
    folder, axial, _ = mixed
    volume = loadstone.load_volume(f"dicomfile:{folder}?series={axial}")
    assert volume.array.shape == (4, 8, 8)
    assert volume.spacing == pytest.approx((0.7, 0.7, 1.25))
    assert np.allclose(volume.affine[:3, 3], [-0.7 * 8 / 2, -0.7 * 8 / 2, 0.0])
    first = pydicom.dcmread(folder / "a00.dcm").pixel_array
    assert np.array_equal(volume.array[0], first)
    with pytest.raises(loadstone.InvalidImageError, match="holds 2 series"):
        loadstone.load_volume(f"dicomfile:{folder}")


# -- guidance: series ids and image ids ---------------------------------------------------------------
def test_a_folder_given_as_an_image_id_says_it_is_a_series(mixed: tuple[Path, str, str]) -> None:
    folder, _, _ = mixed
    with pytest.raises(loadstone.InvalidImageError) as caught:
        loadstone.load_image(f"dicomfile:{folder}").result(30)
    assert str(caught.value).startswith(
        f"'{folder}' is a folder: 'dicomfile:{folder}' is a series id, not an image id; get its image ids "
        f"with loadstone.series_image_ids('dicomfile:{folder}') (on the command line: loadstone fetch "
        f"--series dicomfile:{folder} -o DIR; loadstone series {folder} lists its series)")
    done = _cli("info", f"dicomfile:{folder}")
    assert done.returncode == 1
    assert "is a series id, not an image id" in done.stderr and "loadstone fetch --series" in done.stderr


def test_a_series_query_on_an_image_id_says_where_it_belongs(mixed: tuple[Path, str, str]) -> None:
    folder, axial, _ = mixed
    with pytest.raises(loadstone.InvalidImageError) as caught:
        loadstone.load_image(f"dicomfile:{folder}?series={axial}").result(30)
    assert str(caught.value).startswith(
        "?series= belongs to series ids (a folder or a DICOMDIR), not to an image id: expand the series with "
        "loadstone.series_image_ids(…) or 'loadstone fetch --series'")
    with pytest.raises(loadstone.InvalidImageError, match=re.escape("?frame= belongs to image ids")):
        loadstone.series_image_ids(f"dicomfile:{folder}?fram=2")


def test_an_image_id_given_as_a_series_says_so() -> None:
    with pytest.raises(loadstone.UnknownSchemeError) as caught:
        loadstone.series_image_ids("wadouri:http://127.0.0.1:9/wado?objectUID=1")
    assert ("no installed plugin expands 'wadouri:http://127.0.0.1:9/wado?objectUID=1' as a series (the "
            "plugin serving 'wadouri:' does not know it); if it is an image id, load it with "
            "loadstone.load_image (on the command line: give it without --series)") in str(caught.value)


# -- pydicom's warnings go to the log ----------------------------------------------------------------------
def test_pydicom_warnings_during_expansion_go_to_the_log(tmp_path: Path, testdata: Callable[[str], str],
                                                         caplog: pytest.LogCaptureFixture) -> None:
    # SC_rgb_jpeg.dcm says Explicit VR but is encoded Implicit: pydicom warns while reading its header.
    shutil.copy(testdata("SC_rgb_jpeg.dcm"), tmp_path / "odd.dcm")
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.INFO, "loadstone_wado"):
        warnings.simplefilter("always")
        ids = loadstone.series_image_ids(f"dicomfile:{tmp_path}")
        loadstone.list_series(str(tmp_path))
    assert ids == [f"dicomfile:{tmp_path / 'odd.dcm'}"]
    assert [str(w.message) for w in caught] == []
    assert any("Expected explicit VR, but found implicit VR" in r.getMessage()
               and r.name == "loadstone_wado.series" for r in caplog.records)
    code = ("import loadstone, sys; print(len(loadstone.series_image_ids(sys.argv[1])))")
    done = subprocess.run([sys.executable, "-c", code, f"dicomfile:{tmp_path}"], capture_output=True,
                          text=True, timeout=120)
    assert (done.returncode, done.stdout, done.stderr) == (0, "1\n", "")
    listed = _cli("series", str(tmp_path))
    assert listed.returncode == 0 and listed.stderr == ""


# -- DICOMDIR ----------------------------------------------------------------------------------------------
def test_a_dicomdir_lists_its_series(testdata: Callable[[str], str]) -> None:
    dicomdir = Path(testdata("DICOMDIR"))
    found = loadstone.list_series(str(dicomdir))
    file_set = FileSet(dicomdir)
    expected: dict[str, int] = {}
    for instance in file_set:
        expected[instance.SeriesInstanceUID] = expected.get(instance.SeriesInstanceUID, 0) + 1
    assert {s.series_instance_uid: s.count for s in found} == expected
    assert all(s.series_id == f"dicomfile:{dicomdir}?series={s.series_instance_uid}" for s in found)
    assert loadstone.list_series(str(dicomdir.parent)) == found  # the folder holding a DICOMDIR
    ct = next(s for s in found if s.modality == "CT" and s.count == 4)
    ids = loadstone.series_image_ids(ct.series_id)
    paths = {Path(instance.path) for instance in file_set.find(SeriesInstanceUID=ct.series_instance_uid)}
    assert {Path(i.split(":", 1)[1]) for i in ids} == paths
    assert all(load.result(30).rows > 0 for load in loadstone.load_images(ids))
    refused = re.escape(f"'{dicomdir}' holds {len(found)} series")
    with pytest.raises(loadstone.InvalidImageError, match=refused):
        loadstone.series_image_ids(f"dicomfile:{dicomdir}")


def _file_set(media: Path) -> Path:
    """A two-slice DICOM File-set written by pydicom (DICOMDIR, PT000000/…/IM00000N); returns ``media``."""
    file_set = FileSet()
    study, series = generate_uid(), generate_uid()
    for index in range(2):
        ds = synthetic.ct_dataset(index, 8, 8, study_uid=study, series_uid=series)
        ds.StudyID = "1"
        file_set.add(ds)
    file_set.write(media)
    return media


def _dicomdir_with_a_traversal(tmp_path: Path) -> tuple[Path, Path]:
    """A File-set by pydicom, its second record patched to '..\\outside-the-media-folder\\IM000001'."""
    media = _file_set(tmp_path / "media")
    outside = tmp_path / "outside-the-media-folder"
    outside.mkdir()
    shutil.copy(media / "PT000000" / "ST000000" / "SE000000" / "IM000001", outside / "IM000001")
    data = (media / "DICOMDIR").read_bytes()
    old, new = b"PT000000\\ST000000\\SE000000\\IM000001 ", b"..\\outside-the-media-folder\\IM000001"
    assert len(old) == len(new) and data.count(old) == 1  # same length: the record offsets stay right
    (media / "DICOMDIR").write_bytes(data.replace(old, new))
    return media, outside


def test_a_dicomdir_pointing_outside_its_folder_is_refused(tmp_path: Path) -> None:
    media, outside = _dicomdir_with_a_traversal(tmp_path)
    for location in (str(media / "DICOMDIR"), str(media), f"dicomfile:{media / 'DICOMDIR'}"):
        with pytest.raises(loadstone.PolicyDeniedError) as caught:
            loadstone.list_series(location)
        refused = f"the DICOMDIR '{media / 'DICOMDIR'}' references a file outside its folder"
        assert refused in str(caught.value)
    with pytest.raises(loadstone.PolicyDeniedError):
        loadstone.series_image_ids(f"dicomfile:{media / 'DICOMDIR'}")
    done = _cli("series", str(media))
    assert done.returncode == 1 and len(done.stderr.splitlines()) == 1
    assert "references a file outside its folder" in done.stderr and str(outside) not in done.stdout


def test_dicomdir_paths_are_checked_without_pydicoms_own_check(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """pydicom before 3.0.2 does not check Referenced File IDs: loadstone's own check refuses them too."""
    from pydicom.fileset import RecordNode

    def unchecked(self: RecordNode, root_path: Path) -> Path | None:  # pydicom 3.0.1's, without the check
        if "ReferencedFileID" not in self._record:
            raise AttributeError("No 'Referenced File ID' in the directory record")
        element = self._record["ReferencedFileID"]
        if element.VM < 1:
            return None
        return Path(element.value) if element.VM == 1 else Path(*element.value)

    monkeypatch.setattr(RecordNode, "file_id_path", unchecked)
    media, _outside = _dicomdir_with_a_traversal(tmp_path)
    with pytest.raises(loadstone.PolicyDeniedError) as caught:
        loadstone.list_series(str(media))
    assert "references" in str(caught.value) and f"outside its folder '{media}'" in str(caught.value)


def test_dicomdir_through_a_symlink_out_of_the_folder(tmp_path: Path) -> None:
    media = _file_set(tmp_path / "media")
    assert [s.count for s in loadstone.list_series(str(media))] == [2]  # as written, it lists
    target = media / "PT000000" / "ST000000" / "SE000000" / "IM000001"
    shutil.move(target, tmp_path / "elsewhere.dcm")
    target.symlink_to(tmp_path / "elsewhere.dcm")
    with pytest.raises(loadstone.PolicyDeniedError, match="outside"):
        loadstone.list_series(str(media))


def test_dicomdir_and_folders_keep_to_the_root(tmp_path: Path, mixed: tuple[Path, str, str],
                                               testdata: Callable[[str], str]) -> None:
    root = tmp_path / "root"
    root.mkdir()
    config.configure(root=root)
    with pytest.raises(loadstone.PolicyDeniedError, match="outside the allowed folder"):
        loadstone.list_series(testdata("DICOMDIR"))
    folder, _, _ = mixed
    with pytest.raises(loadstone.PolicyDeniedError):
        loadstone.list_series(str(folder))
    shutil.copytree(Path(testdata("DICOMDIR")).parent, root / "cd")
    assert loadstone.list_series("cd/DICOMDIR")  # relative to the root

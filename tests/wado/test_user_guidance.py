"""What a new user of the DICOM loaders trips over (issue 11): typos, options, the whole header, palettes.

Each typo is refused with a "did you mean"; loaders take the options they
read and refuse others; ``metadata.get("dataset", id)`` gives the whole
header; ``imagePixelModule`` of a PALETTE COLOR object carries its lookup
tables, as Cornerstone's does.  Through public names only.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.pixels import apply_color_lut

import loadstone
from loadstone_wado import metadata_manager

try:
    from orthanc import FakeServer, Reply, fake_server, multipart_body, no_leaked_threads
except ImportError:  # tests/wado became a package
    from .orthanc import (  # type: ignore[no-redef]
        FakeServer,
        Reply,
        fake_server,
        multipart_body,
        no_leaked_threads,
    )

__all__ = ["fake_server", "no_leaked_threads"]


def _error(image_id: str, **options: object) -> BaseException:
    with pytest.raises(loadstone.LoadstoneError) as caught:
        loadstone.load_image(image_id, **options).result(30)
    return caught.value


@pytest.fixture
def ct(testdata: Callable[[str], str], tmp_path: Path) -> Path:
    path = tmp_path / "ct.dcm"
    shutil.copy(testdata("CT_small.dcm"), path)
    return path


# -- query-key typos ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("query", "hint"), [("fram=2", " (did you mean 'frame'?)"),
                                             ("frames=2", " (did you mean 'frame'?)"),
                                             ("frame=1&fraem=2", " (did you mean 'frame'?)"),
                                             ("token=abc", "")])
def test_dicomfile_query_typos_are_refused(ct: Path, query: str, hint: str) -> None:
    error = _error(f"dicomfile:{ct}?{query}")
    assert isinstance(error, loadstone.InvalidImageError)
    key = re.split("[=&]", query.split("&")[-1])[0]
    assert str(error).startswith(
        f"unknown query key {key!r} in a dicomfile: id{hint}; dicomfile: image ids take ?frame=N; series ids "
        "(a folder, a DICOMDIR) take ?series=<Series Instance UID> and &recursive=1")


def test_dicomfile_query_that_is_part_of_a_file_name(ct: Path, tmp_path: Path) -> None:
    odd = tmp_path / "scan?fram=2"  # a "?" in a real file name still loads
    shutil.copy(ct, odd)
    assert loadstone.load_image(f"dicomfile:{odd}").result(30).rows == 128
    assert loadstone.load_image(f"dicomfile:{ct}?frame=1").result(30).rows == 128
    assert loadstone.load_image(f"dicomfile:{ct}?Frame=1").result(30).rows == 128  # keys ignore case


@pytest.mark.parametrize(("query", "message"), [
    ("fram=2", "unknown query key 'fram' in a wadouri: id: did you mean 'frame' (loadstone's frame number "
               "(1-based))? A misspelt key is ignored by the server"),
    ("StudyUID=1", "unknown query key 'StudyUID' in a wadouri: id: did you mean 'studyUID' (a WADO-URI "
                   "parameter)? A misspelt key is ignored by the server"),
    ("frameNumber=2", "frameNumber= asks a WADO-URI server to render one frame; the frame loadstone decodes "
                      "from the DICOM object is chosen with &frame=N (1-based)"),
])
def test_wadouri_query_typos_are_refused(fake_server: FakeServer, query: str, message: str) -> None:
    image_id = f"wadouri:{fake_server.url}/wado?requestType=WADO&objectUID=1&{query}"
    error = _error(image_id)
    assert isinstance(error, loadstone.InvalidImageError)
    assert str(error).startswith(message)
    assert fake_server.paths() == []  # refused before any request


def test_wadouri_keeps_keys_it_does_not_know(fake_server: FakeServer, testdata: Callable[[str], str]) -> None:
    data = Path(testdata("CT_small.dcm")).read_bytes()
    fake_server.route("/files/", Reply(200, {"Content-Type": "application/dicom"}, data))
    image = loadstone.load_image(f"wadouri:{fake_server.url}/files/ct.dcm?X-Amz-Signature=ab&token=c"
                                 "&frame=1").result(30)
    assert image.rows == 128
    assert fake_server.paths() == ["/files/ct.dcm?X-Amz-Signature=ab&token=c"]


@pytest.mark.parametrize("key", ["frame", "frames", "Frame"])
def test_wadors_frame_in_the_query_is_refused(key: str) -> None:
    image_id = f"wadors:http://127.0.0.1:9/dicom-web/studies/1/series/2/instances/3/frames/1?{key}=2"
    error = _error(image_id)
    assert isinstance(error, loadstone.InvalidImageError)
    assert (f"the query key {key!r} of {image_id!r} names no frame: a wadors image id names its frame in "
            "the path, '…/instances/<instance>/frames/<n>' (the query string is sent to the server)"
            ) in str(error)


# -- load options ------------------------------------------------------------------------------------
def test_dicomfile_takes_loadstones_options_only(ct: Path) -> None:
    with pytest.raises(ValueError, match=re.escape("unknown load option 'window_centre': known: headers, "
                                                   "ignore_cache, priority, request_type, timeout")):
        loadstone.load_image(f"dicomfile:{ct}", window_centre=40)
    with pytest.raises(ValueError, match=re.escape("unknown load option 'before_send'")):
        loadstone.load_image(f"dicomfile:{ct}", before_send=lambda request: None)
    typo = "unknown load option 'priorty': did you mean 'priority'?"
    with pytest.raises(ValueError, match=re.escape(typo)):
        loadstone.load_images([f"dicomfile:{ct}"], priorty=3)
    assert loadstone.load_image(f"dicomfile:{ct}", priority=-5, timeout=30).result(30).rows == 128


@pytest.mark.parametrize("scheme", ["wadouri", "wadors"])
def test_dicomweb_loaders_take_the_http_options(scheme: str) -> None:
    image_id = (f"{scheme}:http://127.0.0.1:9/dicom-web/studies/1/series/2/instances/3/frames/1"
                if scheme == "wadors" else f"{scheme}:http://127.0.0.1:9/wado?objectUID=1")
    seen: list[str] = []
    load = loadstone.load_image(image_id, before_send=lambda request: seen.append(request.url), retries=0,
                                max_bytes=1 << 20, headers={"Authorization": "Bearer x"})
    with pytest.raises(loadstone.TransportError):  # nothing listens on port 9: the options were accepted
        load.result(30)
    assert seen and seen[0].startswith("http://127.0.0.1:9/")
    with pytest.raises(ValueError, match=re.escape("unknown load option 'befor_send': did you mean "
                                                   "'before_send'?")):
        loadstone.load_image(image_id, befor_send=print)


# -- the whole header ------------------------------------------------------------------------------------
def test_the_dataset_of_a_dicomfile_id(ct: Path) -> None:
    image_id = f"dicomfile:{ct}"
    header = loadstone.metadata.get("dataset", image_id)  # before any load: the header, read once
    assert isinstance(header, Dataset)
    assert str(header.PatientName) == str(pydicom.dcmread(ct).PatientName)
    assert header["PatientName"].VR == "PN" and "KVP" in header  # a tag no module covers
    loadstone.load_and_cache_image(image_id).result(30)
    loaded = loadstone.metadata.get("dataset", image_id)
    assert "PixelData" in loaded and loaded.SOPInstanceUID == header.SOPInstanceUID


def test_the_dataset_of_a_wadouri_id_after_its_load(fake_server: FakeServer,
                                                    testdata: Callable[[str], str]) -> None:
    fake_server.route("/wado", Reply(200, {"Content-Type": "application/dicom"},
                                     Path(testdata("MR_small.dcm")).read_bytes()))
    image_id = f"wadouri:{fake_server.url}/wado?requestType=WADO&objectUID=1"
    assert loadstone.metadata.get("dataset", image_id) is None  # metadata never starts a download
    loadstone.load_image(image_id).result(30)
    assert loadstone.metadata.get("dataset", image_id).Modality == "MR"


def test_the_dataset_of_a_wadors_id_is_its_dicom_json(testdata: Callable[[str], str]) -> None:
    ds = pydicom.dcmread(testdata("CT_small.dcm"))
    attrs = ds.to_json_dict(bulk_data_threshold=1 << 30)
    image_id = ("wadors:http://127.0.0.1:9/dicom-web/studies/1/series/2/instances/"
                f"{ds.SOPInstanceUID}/frames/1")
    metadata_manager.add(image_id, attrs)
    answer = loadstone.metadata.get("dataset", image_id)
    assert answer["00180060"] == attrs["00180060"]  # KVP, as the server sent it
    assert loadstone.metadata.get("imagePixelModule", image_id)["rows"] == 128


# -- PALETTE COLOR lookup tables ---------------------------------------------------------------------------
def _expected_tables(ds: Dataset) -> list[list[int]]:
    descriptor = [int(v) for v in ds.RedPaletteColorLookupTableDescriptor]
    table = apply_color_lut(np.arange(descriptor[1], descriptor[1] + (descriptor[0] or 65536)), ds)
    return [table[:, channel].tolist() for channel in range(3)]


def _tables(module: dict[str, object]) -> list[object]:
    return [module[f"{colour}_palette_color_lookup_table_data"] for colour in ("red", "green", "blue")]


def test_palette_tables_from_the_file(testdata: Callable[[str], str]) -> None:
    path = testdata("examples_palette.dcm")
    module = loadstone.metadata.get("imagePixelModule", f"dicomfile:{path}")
    assert module["photometric_interpretation"] == "PALETTE COLOR"
    tables = _tables(module)
    assert tables == _expected_tables(pydicom.dcmread(path))
    assert all(len(table) == 256 for table in tables)  # type: ignore[arg-type]
    grey = loadstone.metadata.get("imagePixelModule", f"dicomfile:{testdata('CT_small.dcm')}")
    assert _tables(grey) == [None, None, None]


@pytest.fixture
def palette_server(fake_server: FakeServer, testdata: Callable[[str], str]) -> Iterator[tuple[str, Dataset]]:
    """examples_palette.dcm over WADO-RS, its lookup tables served only as bulk data."""
    ds = pydicom.dcmread(testdata("examples_palette.dcm"))
    attrs = {tag: value for tag, value in ds.to_json_dict(bulk_data_threshold=1 << 30).items()
             if not tag.startswith("0002") and tag != "7FE00010"}
    base = (f"/dicom-web/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
            f"/instances/{ds.SOPInstanceUID}")
    for tag, keyword in (("00281201", "Red"), ("00281202", "Green"), ("00281203", "Blue")):
        attrs[tag] = {"vr": "OW", "BulkDataURI": f"{fake_server.url}/bulk/{keyword}"}
        data = ds[f"{keyword}PaletteColorLookupTableData"].value
        fake_server.route(f"/bulk/{keyword}", Reply(200, {"Content-Type": "application/octet-stream"}, data))
    fake_server.route(f"{base}/metadata", Reply(200, {"Content-Type": "application/dicom+json"},
                                                json.dumps([attrs]).encode()))
    frame = multipart_body([(bytes(ds.PixelData), "application/octet-stream; transfer-syntax="
                                                  f"{ds.file_meta.TransferSyntaxUID}")], "b")
    fake_server.route(f"{base}/frames/", Reply(200, {"Content-Type": "multipart/related; boundary=b"}, frame))
    yield f"wadors:{fake_server.url}{base}/frames/1", ds


def test_palette_tables_from_dicom_json_bulk_data(palette_server: tuple[str, Dataset]) -> None:
    image_id, ds = palette_server
    image = loadstone.load_image(image_id).result(30)  # fetches the metadata and the bulk data
    assert image.photometric_interpretation == "RGB"
    assert _tables(loadstone.metadata.get("imagePixelModule", image_id)) == _expected_tables(ds)
    assert "InlineBinary" in loadstone.metadata.get("dataset", image_id)["00281201"]


def test_palette_tables_from_inline_dicom_json(testdata: Callable[[str], str]) -> None:
    ds = pydicom.dcmread(testdata("examples_palette.dcm"))
    attrs = ds.to_json_dict(bulk_data_threshold=1 << 30)
    assert base64.b64decode(attrs["00281201"]["InlineBinary"]) == ds.RedPaletteColorLookupTableData
    image_id = "wadors:http://127.0.0.1:9/dicom-web/studies/1/series/2/instances/3/frames/1"
    metadata_manager.add(image_id, attrs)
    assert _tables(loadstone.metadata.get("imagePixelModule", image_id)) == _expected_tables(ds)

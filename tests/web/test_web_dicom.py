"""DICOM Part 10 over plain HTTP is recognised as DICOM, whatever its preamble holds (issue 11).

pydicom's CT_small.dcm and MR_small.dcm start their 128-byte preamble with
``II*\\0``, TIFF's magic: the web loader used to call them TIFF ("TIFF images
are not enabled", and with TIFF enabled, a failed TIFF decode).  ``DICM`` at
offset 128 is checked first, and the error names the id that loads the file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import pydicom
import pytest
from pydicom.data import get_testdata_file

import loadstone
from loadstone_web import config

from .helpers import Server, reply

TIMEOUT = 20


def _testfile(name: str) -> Path:
    path = get_testdata_file(name, download=False)
    if path is None:
        pytest.skip(f"pydicom test file {name} is not installed")
    return Path(path)


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm"])
@pytest.mark.parametrize("formats", [None, ["PNG", "JPEG", "TIFF"]])
def test_tiff_preamble_dicom_over_http_is_called_dicom(serve: Callable[..., Server], name: str,
                                                       formats: list[str] | None) -> None:
    data = _testfile(name).read_bytes()
    assert data[:4] == b"II*\x00" and data[128:132] == b"DICM"  # the trap: a TIFF header in the preamble
    srv = serve({f"/{name}": reply(data, "application/octet-stream")})
    url = srv.url(f"/{name}")
    options = {"formats": formats} if formats else {}
    with pytest.raises(loadstone.UnsupportedError) as caught:
        loadstone.load_image(url, **options).result(TIMEOUT)
    message = str(caught.value)
    assert message.startswith("DICOM is not a format loadstone-web decodes (served as "
                              "'application/octet-stream'); a DICOM Part 10 file: load it with "
                              f"loadstone-wado as 'wadouri:{url}'")
    assert "TIFF" not in message
    # and the id it names does load it
    image = loadstone.load_image(f"wadouri:{url}").result(TIMEOUT)
    assert (image.rows, image.columns) == (pydicom.dcmread(_testfile(name)).Rows,
                                           pydicom.dcmread(_testfile(name)).Columns)


def test_web_scheme_and_cli_name_the_wadouri_id(serve: Callable[..., Server]) -> None:
    srv = serve({"/ct.dcm": reply(_testfile("CT_small.dcm").read_bytes(), "application/dicom")})
    url = srv.url("/ct.dcm")
    with pytest.raises(loadstone.UnsupportedError, match=f"load it with loadstone-wado as 'wadouri:{url}'"):
        loadstone.load_image(f"web:{url}").result(TIMEOUT)


def test_a_dicom_file_given_as_web_file_names_the_dicomfile_id(tmp_path: Path) -> None:
    folder = tmp_path / "my images"
    folder.mkdir()
    target = folder / "ct.dcm"
    target.write_bytes(_testfile("CT_small.dcm").read_bytes())
    config.file_root = tmp_path
    with pytest.raises(loadstone.UnsupportedError) as caught:
        loadstone.load_image(f"web:file://{quote(str(target))}").result(TIMEOUT)
    assert f"load it with loadstone-wado as 'dicomfile:{target}'" in str(caught.value)
    assert loadstone.load_image(f"dicomfile:{target}").result(TIMEOUT).rows == 128

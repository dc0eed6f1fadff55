"""``web:file:`` ids: off by default, confined to ``file_root``, typed errors for bad paths."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest

import loadstone
from loadstone import InvalidImageError, PolicyDeniedError, ResourceLimitError, UnsupportedError
from loadstone.errors import InvalidImageIdError
from loadstone_web import config

from .helpers import Images, pillow_decode

TIMEOUT = 20


def file_id(path: Path | str) -> str:
    return "web:" + Path(path).as_uri()


def load(image_id: str, **options: object) -> loadstone.Image:
    return loadstone.load_and_cache_image(image_id, **options).result(TIMEOUT)


def fails(image_id: str, expected: type[BaseException]) -> BaseException:
    with pytest.raises(expected) as info:
        load(image_id)
    assert image_id not in loadstone.cache
    return info.value


@pytest.fixture
def root(images: Images, tmp_path: Path) -> Path:
    """A file root holding two images, one in a sub-folder with a space in its name."""
    assert images.folder is not None
    folder = tmp_path / "root"
    (folder / "sub dir").mkdir(parents=True)
    (folder / "rgb.png").write_bytes(images.files["rgb.png"])
    (folder / "sub dir" / "exif-6.jpg").write_bytes(images.files["exif-6.jpg"])
    (tmp_path / "outside.png").write_bytes(images.files["rgb.png"])
    return folder


def test_files_are_off_by_default(root: Path) -> None:
    error = fails(file_id(root / "rgb.png"), PolicyDeniedError)
    assert "config.file_root" in str(error)


def test_files_under_the_root(root: Path, images: Images) -> None:
    config.file_root = root
    image = load(file_id(root / "rgb.png"))
    np.testing.assert_array_equal(image.pixel_data, pillow_decode(images.files["rgb.png"]))
    assert "content_type" not in image.extra
    rotated = load(file_id(root / "sub dir" / "exif-6.jpg"))  # %20 in the URL
    assert "%20" in file_id(root / "sub dir" / "exif-6.jpg")
    np.testing.assert_array_equal(rotated.pixel_data,
                                  pillow_decode(images.files["exif-6.jpg"], transpose=True))
    # web:file:/abs (one slash) and a path relative to the root work too
    assert load(f"web:file:{quote(str(root / 'rgb.png'))}").rows == 64
    assert load("web:file:sub%20dir/exif-6.jpg").rows == 96


def test_paths_outside_the_root_are_denied(root: Path, tmp_path: Path) -> None:
    config.file_root = root
    fails(file_id(tmp_path / "outside.png"), PolicyDeniedError)
    fails("web:file://" + quote(str(root)) + "/../outside.png", PolicyDeniedError)
    fails("web:file:../outside.png", PolicyDeniedError)
    if hasattr(os, "symlink"):
        (root / "link.png").symlink_to(tmp_path / "outside.png")
        fails(file_id(root / "link.png"), PolicyDeniedError)


def test_allow_any_file(root: Path, tmp_path: Path) -> None:
    config.allow_any_file = True
    assert load(file_id(tmp_path / "outside.png")).rows == 64


def test_bad_paths(root: Path) -> None:
    config.file_root = root
    error = fails(file_id(root / "missing.png"), InvalidImageError)
    assert "no such file" in str(error)
    fails(file_id(root / "sub dir"), InvalidImageError)
    fails("web:file://otherhost/share/a.png", UnsupportedError)
    fails("web:file:///a.png?x=1", InvalidImageIdError)
    (root / "notes.txt").write_text("hello, not an image")
    fails(file_id(root / "notes.txt"), InvalidImageError)


def test_file_over_the_byte_cap(root: Path) -> None:
    config.file_root = root
    config.max_bytes = 100
    fails(file_id(root / "rgb.png"), ResourceLimitError)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_does_not_hang(root: Path) -> None:
    config.file_root = root
    os.mkfifo(root / "pipe.png")
    started = time.monotonic()
    fails(file_id(root / "pipe.png"), InvalidImageError)
    assert time.monotonic() - started < 5


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0, reason="root reads anything")
def test_unreadable_file(root: Path) -> None:
    config.file_root = root
    path = root / "secret.png"
    path.write_bytes(b"\x89PNG")
    path.chmod(0)
    try:
        fails(file_id(path), PolicyDeniedError)
    finally:
        path.chmod(0o600)


@pytest.mark.parametrize(
    ("image_id", "expected"),
    [
        ("web:", InvalidImageIdError),
        ("web:ftp://host/a.png", UnsupportedError),
        ("web:data:image/png;base64,AAAA", UnsupportedError),
        ("http:///nohost.png", InvalidImageIdError),
    ],
)
def test_malformed_ids(image_id: str, expected: type[BaseException]) -> None:
    fails(image_id, expected)

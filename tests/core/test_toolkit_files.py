"""loadstone.toolkit files: the root-folder policy, and reads that cannot hang, overrun or escape."""

from __future__ import annotations

import mmap
import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from loadstone import InvalidImageError, PolicyDeniedError, ResourceLimitError
from loadstone.toolkit import RootPolicy, open_regular, read_file


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """``tmp/root`` with ``a.bin`` and ``sub/b.bin``, beside ``tmp/outside.bin``."""
    folder = tmp_path / "root"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.bin").write_bytes(b"a" * 10)
    (folder / "sub" / "b.bin").write_bytes(b"b" * 10)
    (tmp_path / "outside.bin").write_bytes(b"secret")
    return folder


# -- the policy ----------------------------------------------------------------------------
def test_paths_inside_the_root_resolve(root: Path) -> None:
    policy = RootPolicy(root)
    assert policy.resolve("a.bin") == root.resolve() / "a.bin"  # relative: to the root
    assert policy.resolve(str(root / "sub" / "b.bin")) == root.resolve() / "sub" / "b.bin"
    assert policy.resolve("sub/../a.bin") == root.resolve() / "a.bin"  # ".." that stays inside
    assert policy.resolve(root) == root.resolve()


@pytest.mark.parametrize("path", ["../outside.bin", "sub/../../outside.bin", "/etc/hostname"])
def test_paths_outside_the_root_are_denied(root: Path, path: str) -> None:
    with pytest.raises(PolicyDeniedError, match="outside the allowed folder") as caught:
        RootPolicy(root, hint="myplugin.config.root").resolve(path, "my:id")
    assert "myplugin.config.root" in str(caught.value)
    assert caught.value.image_id == "my:id"


def test_symlinks_out_of_the_root_are_denied(root: Path) -> None:
    (root / "escape").symlink_to(root.parent / "outside.bin")
    (root / "dir-escape").symlink_to(root.parent)
    (root / "inside").symlink_to(root / "sub" / "b.bin")
    policy = RootPolicy(root)
    for path in ("escape", "dir-escape/outside.bin", str(root / "escape")):
        with pytest.raises(PolicyDeniedError):
            policy.resolve(path)
    assert policy.resolve("inside") == root.resolve() / "sub" / "b.bin"


@pytest.mark.parametrize(("path", "message"), [
    ("a.bin\x00.png", "NUL"),
    ("", "names no file"),
    (b"a.bin", "text, not bytes"),
])
def test_bad_paths_are_invalid(root: Path, path: str, message: str) -> None:
    for policy in (RootPolicy(root), RootPolicy()):
        with pytest.raises(InvalidImageError, match=message):
            policy.resolve(path)


def test_without_a_root(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(PolicyDeniedError, match=r"set myplugin\.root"):
        RootPolicy(allow_any=False, hint="myplugin.root").resolve(str(root / "a.bin"))
    monkeypatch.chdir(root)
    anywhere = RootPolicy()  # the default: any path, made absolute against the working folder
    assert anywhere.resolve("sub/b.bin") == root / "sub" / "b.bin"
    assert anywhere.resolve("../outside.bin") == root.parent / "outside.bin"


# -- opening and reading ---------------------------------------------------------------------
@pytest.fixture
def fifo(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "pipe"
    os.mkfifo(path)
    yield path
    # Should an open ever block on it, a writer releases it.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError:
        return
    os.close(fd)


def test_a_fifo_is_refused_without_blocking(fifo: Path) -> None:
    outcome: list[BaseException] = []

    def attempt() -> None:
        try:
            read_file(fifo, "my:id", max_bytes=100)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=attempt)
    thread.start()
    thread.join(5)
    assert not thread.is_alive(), "opening a FIFO with no writer blocked"
    assert isinstance(outcome[0], InvalidImageError) and "a FIFO" in str(outcome[0])


@pytest.mark.parametrize(("name", "message"), [
    ("dir", "is a directory"),
    ("/dev/zero", "is a device"),
    ("missing.bin", "no such file"),
])
def test_what_is_not_a_regular_file_is_refused(tmp_path: Path, name: str, message: str) -> None:
    (tmp_path / "dir").mkdir()
    path = name if name.startswith("/") else tmp_path / name
    with pytest.raises(InvalidImageError, match=message) as caught:
        read_file(path, "my:id", max_bytes=1 << 20)
    assert caught.value.image_id == "my:id"
    with pytest.raises(InvalidImageError, match=message):
        open_regular(path)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_file_is_denied(root: Path) -> None:
    path = root / "a.bin"
    path.chmod(0)
    try:
        with pytest.raises(PolicyDeniedError, match="not allowed to read"):
            read_file(path, max_bytes=100)
    finally:
        path.chmod(stat.S_IRUSR | stat.S_IWUSR)


def test_open_regular_gives_a_blocking_descriptor(root: Path) -> None:
    fd, status = open_regular(root / "a.bin")
    try:
        assert status.st_size == 10
        assert os.get_blocking(fd)
        assert os.read(fd, 100) == b"a" * 10
    finally:
        os.close(fd)


def test_read_file_caps_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "ten.bin"
    path.write_bytes(bytes(range(10)))
    assert bytes(read_file(path, max_bytes=10).data) == bytes(range(10))  # at the cap: fine
    with pytest.raises(ResourceLimitError, match=r"above the limit of 9 bytes \(myplugin\.max_bytes\)"):
        read_file(path, "my:id", max_bytes=9, limit_hint="myplugin.max_bytes")
    head = read_file(path, max_bytes=10, head=4)
    assert bytes(head.data) == bytes(range(4)) and head.size == 10
    status = path.stat()
    assert read_file(path, max_bytes=10).signature == (status.st_mtime_ns, 10)


def test_read_file_refuses_empty_files_unless_asked(tmp_path: Path) -> None:
    path = tmp_path / "empty.bin"
    path.write_bytes(b"")
    with pytest.raises(InvalidImageError, match="empty"):
        read_file(path, max_bytes=10)
    assert bytes(read_file(path, max_bytes=10, allow_empty=True).data) == b""


def test_read_file_maps_large_files_when_allowed(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    payload = os.urandom(128 * 1024)
    big.write_bytes(payload)
    mapped = read_file(big, max_bytes=1 << 20, allow_mmap=True)
    assert isinstance(mapped.data, mmap.mmap)
    assert mapped.data[:] == payload
    mapped.data.close()
    assert isinstance(read_file(big, max_bytes=1 << 20).data, bytearray)  # not asked: read
    small = tmp_path / "small.bin"
    small.write_bytes(b"x" * 100)
    assert isinstance(read_file(small, max_bytes=1 << 20, allow_mmap=True).data, bytearray)  # too small

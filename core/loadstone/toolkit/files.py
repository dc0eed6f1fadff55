"""Local files named by image ids: a root-folder policy and reads that cannot hang or overrun.

Why one place: an image id is untrusted input.  ``..``, ``%2e%2e`` decoded
by the plugin, symbolic links and NUL bytes must not reach outside the folder
the application allowed; a FIFO, socket or device named by an id must be
refused without blocking in ``open``; and a file is read only up to a cap,
decided from its size before a byte is allocated.
"""

from __future__ import annotations

import mmap
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from ..errors import InvalidImageError, PolicyDeniedError, ResourceLimitError

__all__ = ["RootPolicy", "FileData", "open_regular", "read_file"]

_MMAP_MIN_BYTES = 64 * 1024


@dataclass(frozen=True)
class RootPolicy:
    """Which local paths ids may name: inside ``root``, or anywhere when ``allow_any``.

    ``hint`` names the setting that changes the policy, for error messages
    (e.g. ``"loadstone_web.config.file_root"``).
    """

    root: Path | None = None
    allow_any: bool = True
    hint: str = "the plugin's root setting"

    def resolve(self, path: str | os.PathLike[str], image_id: str | None = None) -> Path:
        """The absolute path an id names, checked against the policy.

        Relative paths are taken relative to ``root`` (else the working
        folder).  With a root, ``..`` and symbolic links are resolved first,
        so neither can lead outside it (:class:`PolicyDeniedError`).  Without
        one, the path is only made absolute (resolving costs a system call
        per component, on every load).
        """
        text = os.fspath(path)
        if not isinstance(text, str):
            raise InvalidImageError("file paths in image ids are text, not bytes", image_id=image_id)
        if "\x00" in text:
            raise InvalidImageError(f"the path {text!r} contains a NUL character", image_id=image_id)
        if not text:
            raise InvalidImageError("the image id names no file", image_id=image_id)
        root = self.root
        if root is None:
            if not self.allow_any:
                raise PolicyDeniedError(
                    f"reading local files is disabled: set {self.hint} to the folder images may be read from",
                    image_id=image_id)
            return Path(os.path.abspath(os.path.expanduser(text)))
        candidate = Path(text).expanduser()
        if not candidate.is_absolute():
            candidate = root / candidate
        try:
            resolved = Path(os.path.realpath(candidate, strict=False))
            real_root = Path(os.path.realpath(root))
        except (OSError, RuntimeError, ValueError) as exc:  # a symlink loop
            raise InvalidImageError(f"cannot resolve the path {text!r}: {exc}", image_id=image_id) from exc
        if resolved != real_root and real_root not in resolved.parents:
            raise PolicyDeniedError(
                f"the path {text!r} resolves to {str(resolved)!r}, outside the allowed folder "
                f"{str(root)!r} ({self.hint})", image_id=image_id)
        return resolved


def open_regular(path: str | os.PathLike[str], image_id: str | None = None) -> tuple[int, os.stat_result]:
    """Open a regular file for reading without ever blocking; returns (fd, stat).

    The open is non-blocking, so a FIFO with no writer does not hang; then
    anything that is not a regular file (a directory, FIFO, socket or
    device) is refused with :class:`InvalidImageError`.  The caller closes
    the descriptor.
    """
    shown = repr(os.fspath(path))
    flags = (os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
             | getattr(os, "O_BINARY", 0))
    try:
        fd = os.open(path, flags)
    except FileNotFoundError as exc:
        raise InvalidImageError(f"no such file {shown}", image_id=image_id) from exc
    except IsADirectoryError as exc:
        raise InvalidImageError(f"{shown} is a directory, not a file", image_id=image_id) from exc
    except PermissionError as exc:
        raise PolicyDeniedError(f"not allowed to read {shown}: {exc.strerror}", image_id=image_id) from exc
    except (OSError, ValueError) as exc:
        raise InvalidImageError(f"cannot open {shown}: {getattr(exc, 'strerror', None) or exc}",
                                image_id=image_id) from exc
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            mode = status.st_mode
            kind = ("a directory" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode)
                    else "a socket" if stat.S_ISSOCK(mode)
                    else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "something else")
            raise InvalidImageError(f"{shown} is {kind}, not a regular file", image_id=image_id)
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd, status


@dataclass(frozen=True)
class FileData:
    """What :func:`read_file` read: the bytes (or a read-only map) and the file's identity."""

    data: bytes | bytearray | mmap.mmap
    size: int
    #: (mtime_ns, size) when read: a file replaced since has another signature.
    signature: tuple[int, int]


def read_file(path: str | os.PathLike[str], image_id: str | None = None, *, max_bytes: int,
              limit_hint: str = "max_bytes", allow_mmap: bool = False, allow_empty: bool = False,
              head: int | None = None) -> FileData:
    """Read a regular file whole (or its first ``head`` bytes), refusing more than ``max_bytes``.

    With ``allow_mmap`` a file of 64 KiB or more is memory-mapped read-only
    (pages shared with the page cache: no copy).  Errors: missing, empty or
    not a regular file → :class:`InvalidImageError`; above the cap →
    :class:`ResourceLimitError` naming ``limit_hint``; not allowed →
    :class:`PolicyDeniedError`.
    """
    shown = repr(os.fspath(path))
    fd, status = open_regular(path, image_id)
    try:
        size = status.st_size
        if size == 0 and not allow_empty:
            raise InvalidImageError(f"{shown} is empty (0 bytes)", image_id=image_id)
        if size > max_bytes:
            raise ResourceLimitError(f"{shown} is {size} bytes, above the limit of {max_bytes} bytes "
                                     f"({limit_hint})", image_id=image_id)
        wanted = size if head is None else min(size, head)
        data: bytes | bytearray | mmap.mmap
        if allow_mmap and head is None and size >= _MMAP_MIN_BYTES:
            data = _map(fd, size) or _read_exactly(fd, wanted, shown, image_id)
        else:
            data = _read_exactly(fd, wanted, shown, image_id)
    except OSError as exc:
        raise InvalidImageError(f"cannot read {shown}: {exc.strerror or exc}", image_id=image_id) from exc
    finally:
        os.close(fd)
    return FileData(data, size, (status.st_mtime_ns, size))


def _map(fd: int, size: int) -> mmap.mmap | None:
    flags = getattr(mmap, "MAP_PRIVATE", 0) | getattr(mmap, "MAP_POPULATE", 0)
    try:
        return mmap.mmap(fd, size, flags=flags, prot=getattr(mmap, "PROT_READ", 1))
    except (OSError, ValueError, TypeError):
        return None  # not mappable (a special file system): read it


def _read_exactly(fd: int, size: int, shown: str, image_id: str | None) -> bytearray:
    buffer = bytearray(size)
    view = memoryview(buffer)
    position = 0
    try:
        while position < size:
            count = os.readv(fd, [view[position:]])
            if not count:
                break
            position += count
    finally:
        view.release()
    if position != size:
        raise InvalidImageError(f"{shown} shrank while being read ({position} of {size} bytes)",
                                image_id=image_id)
    return buffer

"""Helpers shared by the CLI commands: errors, loading one image, JSON and text formatting, files."""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import loadstone

if TYPE_CHECKING:
    from loadstone._image import Image

PROG = "loadstone"
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class UsageError(Exception):
    """A bad command line; reported as one line with exit code 2."""


def error(message: str) -> None:
    """Print the one error line every failure ends with."""
    print(f"{PROG}: error: {one_line(message)}", file=sys.stderr, flush=True)


def one_line(text: object) -> str:
    """Collapse whitespace and newlines: the one-line error rule holds for any message."""
    return " ".join(str(text).split())


def unique(ids: Sequence[str]) -> list[str]:
    """The ids without repeats, first occurrence order (one file per id)."""
    return list(dict.fromkeys(ids))


def timeout_of(args: argparse.Namespace) -> float | None:
    """The ``--timeout`` option as a load option: 0 means no limit."""
    value = float(args.timeout)
    return value if value > 0 else None


def load_one(image_id: str, timeout: float | None) -> Image:
    """Load one image (not cached), cancelling it if the wait is interrupted."""
    options: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
    load = loadstone.load_image(image_id, **options)
    try:
        # The load enforces its own timeout; the grace only guards a loader that ignores it.
        return load.result(None if timeout is None else timeout + 5.0)
    except BaseException:
        load.cancel()
        raise


def jsonable(value: Any) -> Any:
    """Plain JSON data from metadata answers (numpy, tuples, dataclasses, bytes, NaN → null)."""
    import dataclasses
    import enum

    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if isinstance(value, Mapping):
        return {str(key): jsonable(item) for key, item in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return jsonable({f.name: getattr(value, f.name) for f in dataclasses.fields(value)})
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"<{len(value)} bytes>"
    if hasattr(value, "tolist") and callable(value.tolist):  # numpy arrays and scalars
        return jsonable(value.tolist())
    if hasattr(value, "isoformat") and callable(value.isoformat):  # date, time, datetime
        return value.isoformat()
    if isinstance(value, (list, tuple, set, frozenset, deque)):
        return [jsonable(item) for item in value]
    return str(value)


def brief(value: Any, limit: int = 8) -> str:
    """A short one-line text form of a JSON-able value (long lists are elided)."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        shown = ", ".join(brief(item, limit) for item in value[:limit])
        more = f", … ({len(value)} values)" if len(value) > limit else ""
        return f"[{shown}{more}]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {brief(v, limit)}" for k, v in value.items()) + "}"
    return one_line(str(value))


def table(rows: list[list[str]]) -> list[str]:
    """Left-aligned columns separated by two spaces (trailing blanks trimmed)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
            for row in rows]


def write_atomic(path: Path, write: Callable[[IO[bytes]], object]) -> None:
    """Write through a temporary file and rename, so an interrupted run leaves no half file."""
    tmp = path.with_name(f".{path.name}.part")
    try:
        with open(tmp, "wb") as handle:
            write(handle)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    write_atomic(path, lambda handle: handle.write(data))


def make_dir(text: str) -> Path:
    """Create an output folder (and its parents) if needed."""
    path = Path(text)
    path.mkdir(parents=True, exist_ok=True)
    return path



"""Helpers shared by the CLI commands: errors, loading one image, JSON and text formatting, files."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import loadstone
from loadstone.fetching import write_atomic

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


def load_options_of(args: argparse.Namespace) -> dict[str, Any]:
    """The load options the command line gives: ``--header``, the token variable, ``--option``."""
    options: dict[str, Any] = {}
    for text in getattr(args, "option", None) or ():
        key, sep, value = text.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise UsageError(f"--option takes key=value with a Python-name key, got {text!r}")
        options[key] = _option_value(value)
    headers: dict[str, str] = {}
    for text in _header_lines(os.environ.get("LOADSTONE_HEADERS", "")):
        name, value = _header(text, "LOADSTONE_HEADERS")
        headers[name] = value
    variable = getattr(args, "bearer_token_env", None)
    if variable:
        token = os.environ.get(variable)
        if not token:
            raise UsageError(f"--bearer-token-env: the environment variable {variable} is not set or empty")
        headers["Authorization"] = f"Bearer {token.strip()}"
    for text in getattr(args, "header", None) or ():
        name, value = _header(text, "--header")
        headers[name] = value
    if headers:
        options["headers"] = {**options.get("headers", {}), **headers}
    return options


def _header_lines(text: str) -> list[str]:
    return [line.strip() for line in text.replace(";", "\n").splitlines() if line.strip()]


def _header(text: str, where: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    name = name.strip()
    if not sep or not name or any(c.isspace() for c in name):
        raise UsageError(f"{where} takes 'Name: value', got {text!r}")
    return name, value.strip()


def _option_value(text: str) -> Any:
    """JSON when it parses (numbers, true/false, lists), else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def apply_settings(args: argparse.Namespace) -> None:
    """``--set plugin.key=value``: change a plugin's configuration for this run."""
    for text in getattr(args, "set", None) or ():
        target, sep, value = text.partition("=")
        plugin, dot, key = target.strip().partition(".")
        if not sep or not dot or not plugin or not key:
            raise UsageError(f"--set takes plugin.key=value (e.g. web.file_root=/data), got {text!r}")
        configs = {config.name: config for config in loadstone.plugin_configs()}
        config = configs.get(plugin)
        if config is None:
            known = ", ".join(sorted(configs)) or "none"
            raise UsageError(f"--set: no plugin configuration named {plugin!r} (configurable: {known})")
        try:
            config.set_text(key, value)
        except (TypeError, ValueError) as exc:
            raise UsageError(f"--set {text}: {exc}") from None


def load_one(image_id: str, timeout: float | None, options: dict[str, Any] | None = None) -> Image:
    """Load one image (not cached), cancelling it if the wait is interrupted."""
    options = dict(options or {})
    if timeout is not None:
        options["timeout"] = timeout
    load = loadstone.load_image(image_id, **options)
    try:
        # The load enforces its own timeout; the grace only guards a loader that ignores it.
        return load.result(None if timeout is None else timeout + 5.0)
    except BaseException:
        load.cancel()
        raise


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


def write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    write_atomic(path, lambda handle: handle.write(data))


def make_dir(text: str) -> Path:
    """Create an output folder (and its parents) if needed."""
    path = Path(text)
    path.mkdir(parents=True, exist_ok=True)
    return path



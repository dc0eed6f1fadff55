"""``loadstone plugins``, ``loadstone info`` and ``loadstone render``: look at one thing at a time."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import loadstone
from loadstone.fetching import jsonable

from .common import (
    EXIT_OK,
    UsageError,
    brief,
    load_one,
    load_options_of,
    one_line,
    table,
    timeout_of,
    write_bytes,
)

if TYPE_CHECKING:
    from loadstone._image import Image

__all__ = ["cmd_plugins", "cmd_info", "cmd_render", "cmd_series", "image_summary", "image_metadata"]


def cmd_plugins(args: argparse.Namespace) -> int:
    """Why: the first thing to check when a scheme "is unknown" is what got installed and loaded."""
    infos = loadstone.plugins(details=True)
    if args.json:
        data = [
            {
                "name": info.name,
                "distribution": info.distribution,
                "version": info.version,
                "schemes": list(info.schemes),
                "status": info.status,
                "missing_dependencies": list(info.missing_dependencies),
                "details": dict(info.details),
            }
            for info in infos
        ]
        print(json.dumps(data, indent=2))
        return EXIT_OK
    if not infos:
        hint = ("plugin autoload is off (LOADSTONE_DISABLE_PLUGIN_AUTOLOAD)"
                if os.environ.get("LOADSTONE_DISABLE_PLUGIN_AUTOLOAD") else
                "try: pip install loadstone-base64-demo")
        print(f"no loadstone plugins found; {hint}")
        return EXIT_OK
    rows = [["PLUGIN", "DISTRIBUTION", "VERSION", "SCHEMES", "STATUS", "MISSING OPTIONAL DEPENDENCIES"]]
    for info in infos:
        rows.append([
            info.name,
            info.distribution or "-",
            info.version or "-",
            ", ".join(info.schemes) or "-",
            one_line(info.status),
            ", ".join(info.missing_dependencies) or "-",
        ])
    lines = table(rows)
    print(lines[0])
    for info, line in zip(infos, lines[1:], strict=True):
        print(line)
        for key, value in info.details.items():
            print(f"    {key}: {one_line(value)}")
    return EXIT_OK


_INFO_FIELDS = (
    "image_id", "rows", "columns", "color", "number_of_components", "dtype",
    "photometric_interpretation", "min_pixel_value", "max_pixel_value", "slope", "intercept",
    "window_center", "window_width", "voi_lut_function", "invert",
    "row_pixel_spacing", "column_pixel_spacing", "size_in_bytes", "load_time_ms", "decode_time_ms",
)


def image_summary(image: Image) -> dict[str, Any]:
    """The fields ``info`` prints, named as the :class:`loadstone.Image` attributes."""
    data: dict[str, Any] = {}
    for name in _INFO_FIELDS:
        if name == "dtype":
            data[name] = str(image.pixel_data.dtype)
        else:
            data[name] = jsonable(getattr(image, name))
    data["shape"] = list(image.pixel_data.shape)
    return data


def image_metadata(image_id: str) -> dict[str, Any]:
    """Every metadata module that some provider answers for ``image_id``.

    All but ``"dataset"`` (the whole header, a pydicom Dataset or DICOM JSON:
    for code, too long to print).
    """
    from loadstone._metadata import MODULES

    answers: dict[str, Any] = {}
    for module in MODULES:
        if module == "dataset":
            continue
        answer = loadstone.metadata.get(module, image_id)
        if answer is not None:
            answers[module] = jsonable(answer)
    return answers


def cmd_info(args: argparse.Namespace) -> int:
    """Why: one look at what a loader produced (and what metadata it offers) answers most questions."""
    image = load_one(args.image_id, timeout_of(args), load_options_of(args))
    summary = image_summary(image)
    metadata = image_metadata(args.image_id)
    if args.json:
        print(json.dumps({**summary, "metadata": metadata}, indent=2, allow_nan=False))
        return EXIT_OK
    rows = [[name, brief(summary[name])] for name in _INFO_FIELDS]
    for line in table(rows):
        print(line)
    if not metadata:
        print("metadata: none answered")
        return EXIT_OK
    print("metadata:")
    for module, answer in metadata.items():
        print(f"  {module}")
        if isinstance(answer, dict) and answer:
            for line in table([[key, brief(value)] for key, value in answer.items()]):
                print(f"    {line}")
        else:
            print(f"    {brief(answer)}")
    return EXIT_OK


def _window(args: argparse.Namespace) -> tuple[float | None, float | None]:
    if args.window is None:
        return None, None
    center, width = args.window
    if width <= 0:
        raise UsageError(f"--window: the width must be above 0, got {width:g}")
    return center, width


def cmd_render(args: argparse.Namespace) -> int:
    """Why: a PNG is the quickest check that pixels, rescale and window are right."""
    center, width = _window(args)
    image = load_one(args.image_id, timeout_of(args), load_options_of(args))
    png = image.to_png(window_center=center, window_width=width, invert=args.invert)
    if args.output == "-":
        sys.stdout.flush()
        sys.stdout.buffer.write(png)
        sys.stdout.buffer.flush()
        return EXIT_OK
    path = Path(args.output)
    write_bytes(path, png)
    print(path)
    return EXIT_OK




def cmd_series(args: argparse.Namespace) -> int:
    """Why: a folder often holds several series; pick one before loading (``--series ID``)."""
    found = loadstone.list_series(args.location, recursive=args.recursive)
    if args.json:
        print(json.dumps([jsonable(info) for info in found], indent=2))
        return EXIT_OK
    if not found:
        print(f"no series at {args.location}")
        return EXIT_OK
    rows = [["SERIES INSTANCE UID", "MODALITY", "DESCRIPTION", "IMAGES", "SERIES ID"]]
    for info in found:
        rows.append([info.series_instance_uid or "-", info.modality or "-", info.description or "-",
                     str(info.count), info.series_id])
    for line in table(rows):
        print(line)
    return EXIT_OK

"""``loadstone demo``: render the embedded demo images (plugin loadstone-base64-demo) to PNG."""

from __future__ import annotations

import argparse
from typing import Any

import loadstone
from loadstone.errors import LoadstoneError

from .common import EXIT_ERROR, EXIT_OK, error, make_dir, timeout_of, unique, write_bytes

__all__ = ["cmd_demo", "DEFAULT_DEMO_DIR", "DEMO_INSTALL_HINT"]

DEFAULT_DEMO_DIR = "loadstone-demo"
DEMO_INSTALL_HINT = (
    "pip install loadstone-base64-demo (or, from a checkout, pip install ./plugins/base64_demo)"
)

#: (file name, series id, slice, window center/width or None, description)
_DEMO_SERIES = (
    ("ct-middle.png", "example://ct", "middle", None, "CT, middle slice, stored window"),
    ("ct-lung.png", "example://ct", "middle", (-600.0, 1500.0), "CT, lung window"),
    ("ct-bone.png", "example://ct", "middle", (300.0, 1500.0), "CT, bone window"),
    ("mr-middle.png", "example://mr", "middle", None, "MR, middle slice"),
    ("color-0.png", "example://color/0", None, None, "colour image"),
)


def _demo_image_id(series_or_image: str, which: str | None) -> str:
    if which is None:
        return series_or_image
    ids = loadstone.series_image_ids(series_or_image)
    if not ids:
        raise LoadstoneError(f"demo series {series_or_image!r} has no images", image_id=series_or_image)
    return ids[len(ids) // 2]


def _window_label(image: Any, window: tuple[float, float] | None) -> str:
    if window is not None:
        return f"window {window[0]:g}/{window[1]:g}"
    if image.color:
        return "as stored"
    if image.window_center is not None and image.window_width is not None:
        return f"window {image.window_center:g}/{image.window_width:g}"
    return "full range"


def cmd_demo(args: argparse.Namespace) -> int:
    """Why: one command that shows the whole pipeline working, with nothing but the demo plugin."""
    from loadstone import _state

    if "example" not in _state.registry.schemes():
        error(f"the demo needs the 'example' scheme, which is not installed: {DEMO_INSTALL_HINT}")
        return EXIT_ERROR
    folder = make_dir(args.output)
    timeout = timeout_of(args)
    options: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
    failures: list[str] = []
    planned: list[tuple[str, str, tuple[float, float] | None, str]] = []
    for name, source, which, window, description in _DEMO_SERIES:
        try:
            planned.append((name, _demo_image_id(source, which), window, description))
        except LoadstoneError as exc:
            failures.append(f"{name}: {exc}")
    unique_ids = unique([image_id for _, image_id, _, _ in planned])
    loads = loadstone.load_images(unique_ids, **options)
    by_id = dict(zip(unique_ids, loads, strict=True))
    written = 0
    try:
        for name, image_id, window, description in planned:
            try:
                image = by_id[image_id].result(None if timeout is None else timeout + 5.0)
            except LoadstoneError as exc:
                failures.append(f"{name}: {exc}")
                continue
            center, width = window if window is not None else (None, None)
            png = image.to_png(window_center=center, window_width=width)
            path = folder / name
            write_bytes(path, png)
            written += 1
            shown = _window_label(image, window)
            print(f"{path}  {image_id}  {description} ({shown})")
    finally:
        for load in loads:
            load.cancel()
    print(f"{written} PNG files in {folder.resolve()}")
    if failures:
        error(f"{len(failures)} demo image(s) failed: " + "; ".join(failures))
        return EXIT_ERROR
    return EXIT_OK

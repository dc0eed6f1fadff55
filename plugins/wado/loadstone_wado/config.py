"""Settings of the wado plugin: root folder, size caps, decoder choice, decode pool.

One process-wide, immutable :class:`WadoConfig`; :func:`configure` swaps in a
changed copy (so a load in flight sees one consistent set of values) and
returns the previous one, which :func:`configure` or :func:`restore` put back::

    from loadstone_wado import config
    previous = config.configure(root="/data/dicom", max_pixel_bytes=1 << 30)
    ...
    config.restore(previous)

Initial values come from the environment, read once on first use:

=====================================  ==============================================
``LOADSTONE_WADO_ROOT``                 folder that ``dicomfile:`` paths must stay in
``LOADSTONE_WADO_MAX_PIXEL_BYTES``      decoded-size cap of one DICOM object
``LOADSTONE_WADO_MAX_FILE_BYTES``       size cap of one Part 10 file read whole
``LOADSTONE_WADO_DATASET_CACHE_BYTES``  budget of the parsed-dataset cache
``LOADSTONE_WADO_DECODERS``             ``uid=plugin,uid=plugin`` decoder overrides
``LOADSTONE_WADO_DECODE_POOL``          ``auto`` | ``always`` | ``never``
``LOADSTONE_WADO_DECODE_WORKERS``       processes of the decode pool
``LOADSTONE_WADO_MMAP``                 ``0`` reads files instead of memory-mapping them
=====================================  ==============================================
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

__all__ = [
    "WadoConfig",
    "get_config",
    "configure",
    "restore",
    "reset",
    "configured",
    "DEFAULT_MAX_PIXEL_BYTES",
    "DEFAULT_MAX_FILE_BYTES",
    "DEFAULT_DATASET_CACHE_BYTES",
    "DECODE_POOL_MODES",
]

#: 2 GiB of decoded pixels per DICOM object (all frames): far above a 2000-slice
#: enhanced CT, far below what a forged Rows x Columns x Frames header can ask for.
DEFAULT_MAX_PIXEL_BYTES = 2 << 30
#: A Part 10 object is read whole into memory; refuse bigger ones.
DEFAULT_MAX_FILE_BYTES = 4 << 30
#: Parsed datasets (pixel data included) kept for further frames and metadata.
DEFAULT_DATASET_CACHE_BYTES = 512 << 20
#: ``auto``: use the process pool for GIL-bound codecs when two or more compressed
#: frames decode at once; ``always``: for every compressed frame; ``never``: decode in-thread.
DECODE_POOL_MODES = ("auto", "always", "never")


def _frozen(mapping: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True)
class WadoConfig:
    """The plugin's settings; change them with :func:`configure`."""

    #: ``dicomfile:`` paths (and file-manager paths) must resolve inside this folder;
    #: None allows any path.  Relative ids are taken relative to it.
    root: Path | None = None
    #: Cap on Rows x Columns x Frames x Samples x bytes of one object, checked before decoding.
    max_pixel_bytes: int = DEFAULT_MAX_PIXEL_BYTES
    #: Cap on the size of one Part 10 file or body read into memory.
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    #: Byte budget of :data:`loadstone_wado.part10.dataset_cache`.
    dataset_cache_bytes: int = DEFAULT_DATASET_CACHE_BYTES
    #: Transfer Syntax UID -> decoder name (``gdcm``, ``pylibjpeg``, ``pyjpegls``,
    #: ``pillow``, ``pydicom``, ``numpy``): use only that one for the syntax.
    decoders: Mapping[str, str] = field(default_factory=lambda: _frozen({}))
    #: One of :data:`DECODE_POOL_MODES`.
    decode_pool: str = "auto"
    #: Processes of the decode pool; None: one per CPU core.
    decode_workers: int | None = None
    #: Memory-map ``dicomfile:`` files (read-only) instead of reading them into new memory.
    mmap_files: bool = True

    def __post_init__(self) -> None:
        _validate(self)


def _validate(config: WadoConfig) -> None:
    for name in ("max_pixel_bytes", "max_file_bytes", "dataset_cache_bytes"):
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a non-negative int of bytes, got {value!r}")
    if config.decode_pool not in DECODE_POOL_MODES:
        raise ValueError(f"decode_pool must be one of {', '.join(DECODE_POOL_MODES)}, "
                         f"got {config.decode_pool!r}")
    workers = config.decode_workers
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        raise ValueError(f"decode_workers must be a positive int or None, got {workers!r}")
    if not isinstance(config.mmap_files, bool):
        raise TypeError(f"mmap_files must be a bool, got {config.mmap_files!r}")
    if config.root is not None and not isinstance(config.root, Path):
        raise TypeError("root must be a pathlib.Path or None (configure() converts str)")


def _parse_decoders(text: str) -> dict[str, str]:
    result = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        uid, sep, name = item.partition("=")
        if not sep or not uid.strip() or not name.strip():
            raise ValueError(f"LOADSTONE_WADO_DECODERS entries must be 'uid=decoder', got {item!r}")
        result[uid.strip()] = name.strip()
    return result


def _from_environment() -> WadoConfig:
    env = os.environ
    values: dict[str, Any] = {}
    if env.get("LOADSTONE_WADO_ROOT"):
        values["root"] = env["LOADSTONE_WADO_ROOT"]
    for name in ("max_pixel_bytes", "max_file_bytes", "dataset_cache_bytes", "decode_workers"):
        text = env.get(f"LOADSTONE_WADO_{name.upper()}")
        if text:
            values[name] = int(text)
    if env.get("LOADSTONE_WADO_DECODE_POOL"):
        values["decode_pool"] = env["LOADSTONE_WADO_DECODE_POOL"].strip().lower()
    if env.get("LOADSTONE_WADO_MMAP"):
        values["mmap_files"] = env["LOADSTONE_WADO_MMAP"].strip().lower() not in ("0", "false", "no", "off")
    if env.get("LOADSTONE_WADO_DECODERS"):
        values["decoders"] = _parse_decoders(env["LOADSTONE_WADO_DECODERS"])
    return _build(WadoConfig(), values)


def _build(base: WadoConfig, changes: Mapping[str, Any]) -> WadoConfig:
    known = {f.name for f in dataclasses.fields(WadoConfig)}
    unknown = sorted(set(changes) - known)
    if unknown:
        raise TypeError(f"unknown wado setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    values = dict(changes)
    if values.get("root") is not None:
        values["root"] = Path(os.fspath(values["root"])).expanduser().resolve()
    if "decoders" in values:
        values["decoders"] = _frozen({str(k): str(v) for k, v in dict(values["decoders"] or {}).items()})
    return dataclasses.replace(base, **values)


_lock = threading.Lock()
_current: WadoConfig | None = None


def get_config() -> WadoConfig:
    """The settings in force (read from the environment on first call)."""
    global _current
    config = _current
    if config is None:
        with _lock:
            if _current is None:
                _current = _from_environment()
            config = _current
    return config


def configure(**changes: Any) -> WadoConfig:
    """Change some settings (keyword names of :class:`WadoConfig`); returns the previous settings.

    Values are validated before anything changes, so a bad call leaves the
    settings as they were.
    """
    global _current
    with _lock:
        previous = _current if _current is not None else _from_environment()
        _current = _build(previous, changes)
    return previous


def restore(config: WadoConfig) -> None:
    """Put back settings returned by :func:`configure`."""
    global _current
    if not isinstance(config, WadoConfig):
        raise TypeError(f"restore() takes a WadoConfig, got {type(config).__name__}")
    with _lock:
        _current = config


def reset() -> None:
    """Forget every change: the next use reads the environment again."""
    global _current
    with _lock:
        _current = None


@contextlib.contextmanager
def configured(**changes: Any) -> Iterator[WadoConfig]:
    """``with configured(root=...):`` — settings changed for the block, restored after."""
    previous = configure(**changes)
    try:
        yield get_config()
    finally:
        restore(previous)

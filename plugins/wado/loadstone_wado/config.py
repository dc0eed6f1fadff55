"""Settings of the wado plugin: root folder, size caps, decoder choice, decode pool.

In loadstone's one plugin-settings style (:mod:`loadstone.config`): a frozen
:class:`Settings` dataclass, checked in ``__post_init__``, and one
:class:`~loadstone.config.PluginConfig` named ``wado`` that swaps a changed
copy in whole, so a load in flight sees one consistent set of values::

    from loadstone_wado import config
    previous = config.configure(root="/data/dicom", max_pixel_bytes=1 << 30)
    ...
    config.restore(previous)
    with config.configured(decode_pool="never"):   # for a block (tests)
        ...
    config.config.max_pixel_bytes                   # the value in force

Initial values come from the environment, read once on first use:

=====================================  ==============================================
``LOADSTONE_WADO_ROOT``                 folder that ``dicomfile:`` paths must stay in
``LOADSTONE_WADO_MAX_PIXEL_BYTES``      decoded-size cap of one DICOM object
``LOADSTONE_WADO_MAX_FILE_BYTES``       size cap of one Part 10 file read whole
``LOADSTONE_WADO_DATASET_CACHE_BYTES``  budget of the parsed-dataset cache
``LOADSTONE_WADO_DECODERS``             ``uid=decoder,uid=decoder`` decoder overrides
``LOADSTONE_WADO_DECODE_POOL``          ``auto`` | ``always`` | ``never``
``LOADSTONE_WADO_DECODE_WORKERS``       processes of the decode pool
``LOADSTONE_WADO_MMAP``                 ``0`` reads files instead of memory-mapping them
=====================================  ==============================================
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from loadstone.config import PluginConfig

__all__ = [
    "Settings",
    "WadoConfig",
    "config",
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


def _lower(text: str) -> str:
    return text.strip().lower()


@dataclass(frozen=True)
class Settings:
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
    decoders: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    #: One of :data:`DECODE_POOL_MODES`.
    decode_pool: str = field(default="auto", metadata={"parse": _lower})
    #: Processes of the decode pool; None: one per CPU core.
    decode_workers: int | None = None
    #: Memory-map ``dicomfile:`` files (read-only) instead of reading them into new memory.
    mmap_files: bool = field(default=True, metadata={"env": "LOADSTONE_WADO_MMAP"})

    def __post_init__(self) -> None:
        for name in ("max_pixel_bytes", "max_file_bytes", "dataset_cache_bytes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative int of bytes, got {value!r}")
        if self.decode_pool not in DECODE_POOL_MODES:
            raise ValueError(f"decode_pool must be one of {', '.join(DECODE_POOL_MODES)}, "
                             f"got {self.decode_pool!r}")
        workers = self.decode_workers
        if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
            raise ValueError(f"decode_workers must be a positive int or None, got {workers!r}")
        if not isinstance(self.mmap_files, bool):
            raise TypeError(f"mmap_files must be a bool, got {self.mmap_files!r}")
        if self.root is not None:
            # A str is accepted and kept resolved, so the root check compares real paths.
            object.__setattr__(self, "root", Path(os.fspath(self.root)).expanduser().resolve())
        decoders = {str(k): str(v) for k, v in dict(self.decoders or {}).items()}
        for uid, name in decoders.items():
            if not uid.strip() or not name.strip():
                raise ValueError(f"decoders entries must be 'uid=decoder', got {uid!r}={name!r}")
        object.__setattr__(self, "decoders", MappingProxyType(decoders))


#: The old name of :class:`Settings`.
WadoConfig = Settings

#: The plugin's settings (``config.max_pixel_bytes``, ``config.configure(...)``, …).
config: PluginConfig[Settings] = PluginConfig("wado", Settings)

#: The settings in force (read from the environment on first call).
get_config = config.get
#: Change some settings (keyword names of :class:`Settings`); returns the previous settings.
configure = config.configure
#: Put back settings returned by :func:`configure`.
restore = config.restore
#: Forget every change: the next use reads the environment again.
reset = config.reset
#: ``with configured(root=...):`` — settings changed for the block, restored after.
configured = config.override

"""Which Part 10 object an image id names, and the dataset-cache key it is kept under.

``dicomfile:`` ids name a file (kept inside the configured root folder by a
:class:`loadstone.toolkit.RootPolicy`) or a file of the file manager;
``wadouri:`` / ``dicomweb:`` ids name a URL.  Every frame of one object
shares one key: :func:`dataset_key` is the id without its frame, which the
loaders store under and the metadata provider looks up.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

from loadstone import InvalidImageError, PolicyDeniedError
from loadstone.toolkit import RootPolicy, is_ascii_int, parse_int

from ..config import get_config
from . import file_manager

__all__ = [
    "DICOMFILE_PREFIX",
    "DicomFileRef",
    "parse_dicomfile_id",
    "split_frame",
    "resolve_path",
    "dataset_key",
]

DICOMFILE_PREFIX = "dicomfile:"


@dataclass(frozen=True)
class DicomFileRef:
    """A parsed ``dicomfile:`` id: a resolved path or a file-manager index, and a frame."""

    image_id: str
    path: Path | None
    index: int | None
    frame: int | None

    @property
    def key(self) -> str:
        """The dataset-cache key: the resolved path, or ``dicomfile:#N`` for the file manager."""
        if self.path is not None:
            return f"{DICOMFILE_PREFIX}{self.path}"
        return f"{DICOMFILE_PREFIX}#{self.index}"


def resolve_path(path: str | os.PathLike[str], image_id: str) -> Path:
    """Resolve ``path`` (``..`` and symlinks) inside the configured root folder, if there is one.

    Without a root, a path is only made absolute (no symlink lookups:
    resolving costs a system call per path component, on every load).
    """
    policy = RootPolicy(root=get_config().root, allow_any=True, hint="loadstone_wado.config root")
    return policy.resolve(path, image_id)


def split_frame(rest: str, image_id: str) -> tuple[str, int | None]:
    """``(what the id names, frame)`` from the text after ``dicomfile:`` (frame None when absent)."""
    body, qmark, query = rest.rpartition("?")
    if not qmark or not query.lower().startswith("frame="):
        return rest, None
    return body, parse_int(query[6:], "the frame number (frames are 1-based)", minimum=1, image_id=image_id)


def parse_dicomfile_id(image_id: str) -> DicomFileRef:
    """Parse and check a ``dicomfile:`` id (root policy included); typed errors say what is wrong."""
    if not isinstance(image_id, str) or image_id[:len(DICOMFILE_PREFIX)].lower() != DICOMFILE_PREFIX:
        raise InvalidImageError(f"{image_id!r} is not a dicomfile: image id", image_id=str(image_id))
    rest, frame = split_frame(image_id[len(DICOMFILE_PREFIX):], image_id)
    if rest.startswith("file://"):
        rest = rest[len("file://"):]
    if not rest:
        raise InvalidImageError("the dicomfile: id names no file", image_id=image_id)
    if is_ascii_int(rest):
        index = int(rest)
        entry = file_manager.get(index)
        if entry is None:
            raise InvalidImageError(
                f"the file manager has no file {index} (added files are 'dicomfile:N' ids from "
                "loadstone_wado.file_manager.add)", image_id=image_id)
        if isinstance(entry, str):
            resolve_path(entry, image_id)
        return DicomFileRef(image_id, None, index, frame)
    return DicomFileRef(image_id, resolve_path(rest, image_id), None, frame)


def dataset_key(image_id: str) -> str | None:
    """The cache key of an image id's dataset: the id without its frame, scheme normalised.

    ``dicomfile:`` ids map to their resolved path (or file-manager index);
    ``wadouri:`` and ``dicomweb:`` ids to ``wadouri:`` + the URL without its
    ``frame`` parameter.  None for other schemes and malformed or denied ids.
    """
    if not isinstance(image_id, str):
        return None
    scheme, sep, rest = image_id.partition(":")
    if not sep:
        return None
    scheme = scheme.lower()
    if scheme == "dicomfile":
        try:
            return parse_dicomfile_id(image_id).key
        except (InvalidImageError, PolicyDeniedError):
            return None
    if scheme in ("wadouri", "dicomweb"):
        url, qmark, query = rest.partition("?")
        if not qmark:
            return f"wadouri:{url}"
        kept = [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != "frame"]
        return f"wadouri:{url}?{urlencode(kept)}" if kept else f"wadouri:{url}"
    return None

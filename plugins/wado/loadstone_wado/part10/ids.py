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
from loadstone.toolkit import RootPolicy, close_match, did_you_mean, is_ascii_int, parse_int

from ..config import get_config
from . import file_manager

__all__ = [
    "DICOMFILE_PREFIX",
    "DicomFileRef",
    "parse_dicomfile_id",
    "split_frame",
    "split_query",
    "IMAGE_QUERY_KEYS",
    "SERIES_QUERY_KEYS",
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


#: Query keys of a ``dicomfile:`` image id: ``?frame=N``.
IMAGE_QUERY_KEYS = ("frame",)
#: Query keys of a ``dicomfile:`` series id (a folder or DICOMDIR): ``?series=UID&recursive=1``.
SERIES_QUERY_KEYS = ("series", "recursive")
_GRAMMAR = ("dicomfile: image ids take ?frame=N; series ids (a folder, a DICOMDIR) take "
            "?series=<Series Instance UID> and &recursive=1")


def _looks_like_query(query: str) -> bool:
    """``key=value[&key=value]…`` with name-like keys: a query, not a part of a file name."""
    items = query.split("&")
    return all(key.isidentifier() and sep for key, sep, _ in (item.partition("=") for item in items))


def split_query(rest: str, image_id: str, allowed: tuple[str, ...]) -> tuple[str, dict[str, str]]:
    """``(what the id names, {key: value})`` from the text after ``dicomfile:``.

    The text after the last ``?`` is a query when it reads ``key=value[&…]``.
    Keys other than ``allowed`` are refused with a "did you mean" from every
    ``dicomfile:`` key (``?fram=2`` would otherwise become part of the file
    name), unless the whole text names an existing file (a ``?`` in a file
    name).  Keys of the other kind of id (``series=`` on an image id,
    ``frame=`` on a series id) say which kind takes them.
    """
    body, qmark, query = rest.rpartition("?")
    if not qmark or not query or not _looks_like_query(query):
        return rest, {}
    params: dict[str, str] = {}
    for item in query.split("&"):
        key, _, value = item.partition("=")
        key = key.lower()
        if key in allowed:
            if key in params:
                raise InvalidImageError(f"{key}= is given twice", image_id=image_id)
            params[key] = value
            continue
        if _names_a_file(rest):
            return rest, {}
        raise InvalidImageError(_unknown_key_message(key, allowed), image_id=image_id)
    return body, params


def _names_a_file(text: str) -> bool:
    try:
        return os.path.exists(text[len("file://"):] if text.startswith("file://") else text)
    except (OSError, ValueError):
        return False


def _unknown_key_message(key: str, allowed: tuple[str, ...]) -> str:
    every = IMAGE_QUERY_KEYS + SERIES_QUERY_KEYS
    match = close_match(key, every)
    if match is not None and match not in allowed:
        if match in SERIES_QUERY_KEYS:
            return (f"?{match}= belongs to series ids (a folder or a DICOMDIR), not to an image id: "
                    "expand the series with loadstone.series_image_ids(…) or 'loadstone fetch --series'")
        return f"?{match}= belongs to image ids: a series id names a folder or a file, without ?{match}="
    return f"unknown query key {key!r} in a dicomfile: id{did_you_mean(key, allowed)}; {_GRAMMAR}"


def split_frame(rest: str, image_id: str) -> tuple[str, int | None]:
    """``(what the id names, frame)`` from the text after ``dicomfile:`` (frame None when absent)."""
    if "?" not in rest:  # the common case, on every load
        return rest, None
    body, params = split_query(rest, image_id, IMAGE_QUERY_KEYS)
    text = params.get("frame")
    if text is None:
        return body, None
    return body, parse_int(text, "the frame number (frames are 1-based)", minimum=1, image_id=image_id)


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

"""The module-level loading API: dispatch an image id to its scheme's loader."""

from __future__ import annotations

import concurrent.futures
import os
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from . import _state
from ._completion import follow_progress
from ._load_object import ImageLoadObject
from ._request_type import RequestType
from .errors import InvalidImageIdError, LoadOptionError, LoadstoneError, PluginError, UnknownSchemeError
from .toolkit.names import check_name

if TYPE_CHECKING:
    from ._loader import ImageLoader
    from ._plugins import PluginInfo
    from .config import PluginConfig

__all__ = [
    "register_image_loader",
    "register_unknown_image_loader",
    "unregister_image_loader",
    "get_image_loader",
    "load_image",
    "load_and_cache_image",
    "load_images",
    "cancel_load_image",
    "cancel_load_all",
    "series_image_ids",
    "plugins",
    "plugin_hooks",
    "plugin_configs",
    "scheme_distributions",
    "schemes",
    "scheme_of",
]


def scheme_of(image_id: object) -> str:
    """The lower-case scheme of an image id (the text before the first ``:``)."""
    if not isinstance(image_id, str):
        raise InvalidImageIdError(f"an image id must be a str, got {type(image_id).__name__}")
    colon = image_id.find(":")
    if colon <= 0:
        shown = repr(image_id) if image_id else "an empty string"
        raise InvalidImageIdError(
            f"image id {shown} has no scheme (expected 'scheme:…', e.g. 'example://ct/0')"
            + path_hint(image_id),
            image_id=image_id,
        )
    return image_id[:colon].lower()


_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff")


def path_hint(text: str) -> str:
    """For a bare local path given as an id: the id that loads it (``dicomfile:``, ``web:file:``)."""
    if not text or "\x00" in text:
        return ""
    try:
        path = os.path.abspath(os.path.expanduser(text))
        is_dir, is_file = os.path.isdir(path), os.path.isfile(path)
    except (OSError, ValueError):
        return ""
    if is_dir:
        return (f"; it is a folder: as a series use 'dicomfile:{path}' "
                "(loadstone fetch --series, loadstone.series_image_ids)")
    if not is_file and not text.startswith(("/", "./", "../", "~")):
        return ""
    if text.lower().endswith(_IMAGE_SUFFIXES):
        return f"; for a local image file use 'web:file://{path}' (with loadstone_web.config.file_root set)"
    if is_file and not _looks_like_dicom(path):
        return f"; give it the scheme of its loader (a DICOM file would be 'dicomfile:{path}')"
    return f"; for a DICOM file use 'dicomfile:{path}'"


def _looks_like_dicom(path: str) -> bool:
    if path.lower().endswith((".dcm", ".dicom")):
        return True
    try:
        with open(path, "rb") as handle:
            head = handle.read(132)
    except OSError:
        return False
    return head[128:132] == b"DICM"



def register_image_loader(scheme: str, loader: ImageLoader) -> None:
    """Use ``loader`` for ``scheme``; the user's registration wins over every plugin."""
    _state.registry.register_image_loader(scheme, loader)


def unregister_image_loader(scheme: str) -> bool:
    """Undo :func:`register_image_loader` for ``scheme``; True if a loader was registered.

    The plugin that serves the scheme (if any) serves it again.  Plugins'
    own loaders cannot be unregistered (disable the plugin instead).
    """
    return _state.registry.unregister_image_loader(scheme)


def get_image_loader(scheme: str) -> ImageLoader:
    """The loader that an id of ``scheme`` dispatches to (plugins discovered first).

    For plugins that compose loads and must call a loader outside the request
    pool, e.g. to avoid waiting on pool slots that their own caller holds.
    """
    return _state.registry.loader_for(scheme.lower(), f"{scheme}:")


def register_unknown_image_loader(loader: ImageLoader | None) -> ImageLoader | None:
    """Use ``loader`` for schemes nobody claims; returns the previous one."""
    return _state.registry.register_unknown_image_loader(loader)


def _check_options(options: Mapping[str, Any]) -> tuple[RequestType | None, int]:
    request_type = options.get("request_type")
    priority = options.get("priority", 0)
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise TypeError(f"priority must be an int, got {priority!r}")
    timeout = options.get("timeout")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))
                                or timeout <= 0):
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    headers = options.get("headers")
    if headers is not None and not isinstance(headers, Mapping):
        raise TypeError("headers must be a mapping of str to str")
    return (None if request_type is None else RequestType.parse(request_type)), priority


#: Options every load takes, whatever its loader.
CORE_OPTIONS = frozenset({"priority", "request_type", "timeout", "headers", "ignore_cache"})


def _check_accepted(loader: Any, options: Mapping[str, Any]) -> None:
    """Unknown option names: an error for a loader that declares its options, a typo check otherwise."""
    unknown = options.keys() - CORE_OPTIONS
    if not unknown:
        return
    accepted = getattr(loader, "accepted_options", None)
    if accepted is not None:
        unknown -= accepted
        known = CORE_OPTIONS | accepted
    else:
        known = CORE_OPTIONS  # a loader that declares nothing receives everything but near-misses
    for name in sorted(unknown):
        check_name(name, known, "load option", strict=accepted is not None, error=LoadOptionError)


def _dispatch(image_id: str, options: dict[str, Any], cache: bool) -> ImageLoadObject:
    scheme = scheme_of(image_id)
    request_type, priority = _check_options(options) if options else (None, 0)
    loader = _state.registry.loader_for(scheme, image_id)
    if options:
        _check_accepted(loader, options)
    if cache and options and options.get("ignore_cache"):
        _state.cache.remove_image_load_object(image_id)
    pool = _state.pool
    return pool.load(image_id, loader, options, request_type or RequestType.INTERACTION, priority,
                     _state.cache if cache else None)


def _cached(image_id: object) -> ImageLoadObject | None:
    try:
        return _state.cache.get_image_load_object(image_id)  # type: ignore[arg-type]
    except TypeError:  # unhashable id: let the validation say why
        return None


def load_image(image_id: str, **options: Any) -> ImageLoadObject:
    """Start loading ``image_id`` (or return its cached load); does not store in the cache.

    Raises :class:`UnknownSchemeError` (or :class:`InvalidImageIdError`) at
    once; every other failure arrives through the returned load object.
    """
    if not options.get("ignore_cache"):
        cached = _cached(image_id)
        if cached is not None:
            return cached
    return _dispatch(image_id, options, cache=False)


def load_and_cache_image(image_id: str, **options: Any) -> ImageLoadObject:
    """Like :func:`load_image`, and keep the load in ``loadstone.cache``.

    Concurrent calls for one id share one loader call.
    """
    if not options or not options.get("ignore_cache"):  # the hot path: a cache hit with no options
        cached = _cached(image_id)
        if cached is not None:
            return cached
    return _dispatch(image_id, options, cache=True)


def _failed(image_id: object, error: LoadstoneError) -> ImageLoadObject:
    promise: concurrent.futures.Future[Any] = concurrent.futures.Future()
    promise.set_exception(error)
    return ImageLoadObject(promise, image_id=image_id if isinstance(image_id, str) else "")


def load_images(image_ids: Iterable[str], **options: Any) -> list[ImageLoadObject]:
    """Load and cache many images through the pool (``PREFETCH`` unless told otherwise).

    Returns one load object per id, in order; a bad id gives a failed load
    object rather than stopping the others.  Ids whose loader has a batch
    function (see :meth:`loadstone.image_loader`) are loaded in groups by it.
    ``progress=True`` shows a bar (tqdm, on a terminal or in a notebook)
    that advances as the loads finish.
    """
    if isinstance(image_ids, str):
        raise TypeError("load_images takes an iterable of image ids, not one str")
    progress = options.pop("progress", False)
    options.setdefault("request_type", "prefetch")
    request_type, priority = _check_options(options)
    assert request_type is not None
    ignore_cache = bool(options.get("ignore_cache"))
    result: list[ImageLoadObject | None] = []
    batches: dict[int, tuple[Any, list[int], list[str]]] = {}
    for image_id in image_ids:
        try:
            cached = None if ignore_cache else _cached(image_id)
            if cached is not None:
                result.append(cached)
                continue
            loader = _state.registry.loader_for(scheme_of(image_id), image_id)
            _check_accepted(loader, options)
            if getattr(loader, "batch_function", None) is not None:
                if ignore_cache:
                    _state.cache.remove_image_load_object(image_id)
                positions, ids = batches.setdefault(id(loader), (loader, [], []))[1:]
                positions.append(len(result))
                ids.append(image_id)
                result.append(None)
                continue
            result.append(_dispatch(image_id, dict(options), cache=True))
        except LoadstoneError as exc:
            result.append(_failed(image_id, exc))
    for loader, positions, ids in batches.values():
        if len(ids) == 1:
            result[positions[0]] = _dispatch(ids[0], dict(options), cache=True)
            continue
        loads = _state.pool.load_batch(ids, loader, dict(options), request_type, priority, _state.cache)
        for position, load_object in zip(positions, loads, strict=True):
            result[position] = load_object
    loads = [load_object for load_object in result if load_object is not None]
    if progress:
        follow_progress(loads, progress)
    return loads


def cancel_load_image(image_id: str) -> bool:
    """Cancel the unfinished loads of ``image_id``; True if there was one."""
    return _state.pool.cancel_image(image_id)


def cancel_load_all() -> int:
    """Cancel every queued and running load; returns how many."""
    return _state.pool.cancel_all()


def series_image_ids(series_id: str, **options: Any) -> list[str]:
    """The image ids of a series id, in order, as the plugin that knows it says.

    ``options`` are load options the plugin may need to expand it, e.g. the
    ``headers`` (credentials) of a DICOMweb server whose series metadata it
    fetches; ``loadstone fetch --series`` passes ``--header`` and ``--option``.
    """
    scheme = scheme_of(series_id)
    try:
        ids = _state.registry.series_image_ids(series_id, options)
    except LoadstoneError:
        raise
    except Exception as exc:
        raise PluginError(f"expanding series {series_id!r} failed: {type(exc).__name__}: {exc}",
                          image_id=series_id) from exc
    if ids is None:
        error = _state.registry.unknown_scheme(scheme, series_id)
        if scheme in _state.registry.schemes():  # served: an image id, or a series it does not know
            raise UnknownSchemeError(
                f"no installed plugin expands {series_id!r} as a series (the plugin serving '{scheme}:' does "
                "not know it); if it is an image id, load it with loadstone.load_image (on the command "
                "line: give it without --series)",
                image_id=series_id, scheme=scheme, installed=error.installed, suggestion=None)
        raise UnknownSchemeError(
            f"no plugin expands series id {series_id!r}; " + error.message.split("; ", 1)[-1],
            image_id=series_id, scheme=scheme, installed=error.installed, suggestion=error.suggestion,
        )
    return ids


def plugin_hooks() -> Any:
    """The hooks of every installed plugin (all imported), to call as ``plugin_hooks().loadstone_…(…)``.

    For code that extends loadstone (the CLI, a plugin calling another's hook).
    """
    registry = _state.registry
    registry.prepare_all()
    return registry.hook()


def plugin_configs() -> list[PluginConfig[Any]]:
    """The configurations of every installed plugin that has one (see :mod:`loadstone.config`)."""
    answers = plugin_hooks().loadstone_plugin_config()
    return [config for config in answers if config is not None]


def scheme_distributions() -> dict[str, str | None]:
    """Every scheme this process can load, with the distribution that serves it (None: registered in code).

    Reads the ``loadstone.schemes`` declarations without importing plugins;
    for a scheme nothing here serves, :data:`loadstone.KNOWN_SCHEMES` names
    the distribution that adds it.
    """
    return _state.registry.scheme_distributions()


def schemes() -> list[str]:
    """Every scheme that loads: registered by the user, or served by an installed plugin; sorted.

    Imports no plugin (the installed ones declare their schemes, see
    ``loadstone.schemes`` in DESIGN.md), so it is cheap; plugins that
    declare nothing are listed once they have been imported.
    """
    return _state.registry.schemes()


def plugins(details: bool = False) -> list[PluginInfo]:
    """Every installed plugin (all imported): name, distribution, version, schemes, status.

    ``details=True`` also asks each plugin for what ``loadstone plugins``
    shows (e.g. the decoders it found), which may take a moment.
    """
    return _state.registry.plugins(details)

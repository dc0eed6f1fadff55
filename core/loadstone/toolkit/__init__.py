"""The toolkit plugin authors build loaders with: the mechanisms the core and every plugin share.

Each exists once, here, so a plugin never writes its own:

* :func:`call_later` / :func:`call_at` — one timer thread for every deadline;
* :class:`LRUCache` — bounded by bytes or by count, with eviction callbacks;
* :class:`SingleFlight` — concurrent callers of one key share one computation;
* :func:`wait_done`, :func:`wait_result`, :func:`sleep` — waits woken by the
  awaited work or the load's cancel and deadline, never by polling;
* :func:`order_in_space` — slices along the normal of their orientation;
* :class:`RootPolicy`, :func:`read_file`, :func:`open_regular` — local paths
  kept inside an allowed folder, read without blocking on FIFOs and capped
  before allocation;
* :func:`parse_int` — bounded ASCII integers from ids and headers;
* :func:`check_name` / :func:`did_you_mean` — typos of option, query-key,
  event and module names caught with a suggestion; :data:`HTTP_LOAD_OPTIONS`,
  the options a loader that fetches through :mod:`loadstone.http` declares;
* :func:`lazy_exports` — a package's heavier names imported on first access,
  so that importing it (and its ``plugin.py``) stays cheap.

HTTP has its own package, :mod:`loadstone.http` (``http.fetch(url, options)``
turns load options into a request), and plugin settings :mod:`loadstone.config`.
"""

from __future__ import annotations

from .files import FileData, RootPolicy, open_regular, read_file
from .lru import LRUCache
from .modules import lazy_exports
from .names import HTTP_LOAD_OPTIONS, check_name, check_names, close_match, did_you_mean
from .numbers import is_ascii_int, parse_int
from .singleflight import SingleFlight
from .space import SlicePosition, distance_along, order_in_space, slice_normal
from .timers import Timer, call_at, call_later
from .waits import rebrand, sleep, wait_done, wait_result

__all__ = [
    "HTTP_LOAD_OPTIONS",
    "FileData",
    "LRUCache",
    "RootPolicy",
    "SingleFlight",
    "SlicePosition",
    "Timer",
    "call_at",
    "call_later",
    "check_name",
    "check_names",
    "close_match",
    "did_you_mean",
    "distance_along",
    "is_ascii_int",
    "lazy_exports",
    "open_regular",
    "order_in_space",
    "parse_int",
    "read_file",
    "rebrand",
    "sleep",
    "slice_normal",
    "wait_done",
    "wait_result",
]

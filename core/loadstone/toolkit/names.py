"""Names a user types (options, query keys, events, metadata modules): typos caught, with a suggestion.

``load_image(id, priorty=3)`` or ``events.subscribe("IMAGE_LODED", …)``
would otherwise pass silently and do nothing.  :func:`check_name` raises a
``ValueError`` naming the typo and the closest known name (difflib).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["close_match", "did_you_mean", "check_name", "check_names", "HTTP_LOAD_OPTIONS"]

#: The load options :func:`loadstone.http.fetch` reads beyond loadstone's own (``headers``,
#: ``timeout``): a loader that fetches over HTTP declares them, e.g.
#: ``@image_loader(options=HTTP_LOAD_OPTIONS)``.
HTTP_LOAD_OPTIONS = frozenset({"before_send", "http_client", "max_bytes", "retries"})

#: How alike a name must be to a known one to be taken for a typo of it.
TYPO_CUTOFF = 0.8


def close_match(name: str, known: Iterable[str], cutoff: float = TYPO_CUTOFF) -> str | None:
    """The known name closest to ``name``, if it is close enough to be a typo of it."""
    matches = difflib.get_close_matches(name, list(known), n=1, cutoff=cutoff)
    if matches:
        return matches[0]
    lowered = {k.lower(): k for k in known}
    return lowered.get(name.lower())  # a case slip is a typo too


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"``, or ``""`` when nothing is close."""
    match = close_match(name, known, cutoff=0.6)
    return f" (did you mean {match!r}?)" if match else ""


def check_name(name: str, known: Iterable[str], what: str, *, strict: bool = False,
               error: type[Exception] = ValueError) -> None:
    """Raise ``error`` for a typo of a known name (or, when ``strict``, for any unknown name).

    Not strict: an unknown name far from every known one is accepted (a
    custom event, a plugin's own module), one close to a known name is not.
    """
    names = set(known)
    if name in names:
        return
    match = close_match(name, names)
    if match is None and not strict:
        return
    listing = ", ".join(sorted(names))
    hint = f"did you mean {match!r}? " if match else ""
    raise error(f"unknown {what} {name!r}: {hint}known: {listing}")


def check_names(names: Iterable[str], known: Iterable[str], what: str, *, strict: bool = False,
                error: type[Exception] = ValueError) -> None:
    """:func:`check_name` for each of ``names``."""
    known_set = set(known)
    for name in names:
        check_name(name, known_set, what, strict=strict, error=error)

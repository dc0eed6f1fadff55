"""URL policy and redirect following.

urllib3 is told never to redirect: following redirects here keeps one place
that decides which hosts may be contacted (``allowed_hosts``), refuses
https→http downgrades, and drops credentials when the origin changes.
"""

from __future__ import annotations

from collections.abc import Collection
from urllib.parse import urljoin, urlsplit

from urllib3 import HTTPHeaderDict

from ..errors import PolicyDeniedError, TransportError
from ._models import HttpRequest

__all__ = [
    "REDIRECT_STATUSES",
    "SENSITIVE_HEADERS",
    "check_url",
    "follow_redirect",
    "host_allowed",
    "origin",
]

REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# Never sent to an origin other than the one they were meant for.
SENSITIVE_HEADERS = ("authorization", "cookie", "proxy-authorization")
_BODY_HEADERS = ("content-length", "content-type", "content-encoding", "transfer-encoding")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) with the scheme's default port filled in.

    Raises ValueError for a malformed URL (e.g. an unclosed IPv6 bracket).
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port or _DEFAULT_PORTS.get(scheme)


def host_allowed(host: str, allowed_hosts: Collection[str] | None) -> bool:
    """True if ``host`` matches an entry: exact, or ``*.example.org`` for its subdomains."""
    if allowed_hosts is None:
        return True
    host = host.lower().rstrip(".")
    for entry in allowed_hosts:
        entry = entry.lower().rstrip(".")
        if entry.startswith("*."):
            if host.endswith(entry[1:]):
                return True
        elif host == entry:
            return True
    return False


def check_url(url: str, allowed_hosts: Collection[str] | None, image_id: str | None) -> None:
    """Refuse URLs this layer must not contact (malformed, wrong scheme, host not allowed)."""
    try:
        scheme, host, _ = origin(url)
    except ValueError as exc:
        raise TransportError(f"invalid URL {url!r}: {exc}", image_id=image_id, url=url) from exc
    if scheme not in _DEFAULT_PORTS:
        raise PolicyDeniedError(f"only http and https URLs can be fetched, not {url!r}", image_id=image_id)
    if not host_allowed(host, allowed_hosts):
        raise PolicyDeniedError(f"host {host!r} is not in allowed_hosts ({url})", image_id=image_id)


def follow_redirect(
    request: HttpRequest,
    status: int,
    location: str,
    *,
    allowed_hosts: Collection[str] | None,
    image_id: str | None,
) -> HttpRequest:
    """The request to send after ``status`` with ``Location: location``.

    303 (and 301/302 after a POST, as browsers do) becomes a body-less GET;
    307/308 repeat the method and body.
    """
    url = urljoin(request.url, location.strip())
    url = url.split("#", 1)[0]
    check_url(url, allowed_hosts, image_id)
    old = origin(request.url)
    new = origin(url)
    if old[0] == "https" and new[0] == "http":
        raise PolicyDeniedError(
            f"refusing redirect from https to http ({request.url} -> {url})", image_id=image_id
        )

    headers = HTTPHeaderDict(request.headers)
    if new != old:
        for name in SENSITIVE_HEADERS:
            headers.discard(name)
    headers.discard("host")

    method, body = request.method, request.body
    if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
        method, body = "GET", None
        for name in _BODY_HEADERS:
            headers.discard(name)
    return HttpRequest(method=method, url=url, headers=headers, body=body)

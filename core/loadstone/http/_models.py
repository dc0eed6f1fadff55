"""The request a ``before_send`` hook may edit, and the response a call returns."""

from __future__ import annotations

from dataclasses import dataclass, field

from urllib3 import HTTPHeaderDict

__all__ = ["HttpRequest", "HttpResponse"]


@dataclass
class HttpRequest:
    """What will be sent; hooks may change any field (e.g. add ``Authorization``).

    ``headers`` is case-insensitive.  ``url`` may be changed too (signed
    URLs); the ``allowed_hosts`` policy is applied after the hooks ran.
    """

    method: str
    url: str
    headers: HTTPHeaderDict = field(default_factory=HTTPHeaderDict)
    body: bytes | None = None


@dataclass(frozen=True)
class HttpResponse:
    """A complete response: the body is read (and size-checked) before it is returned.

    ``content`` is a ``bytearray`` when the body was read into a preallocated
    buffer (known length, no content coding), else ``bytes``; both work with
    ``numpy.frombuffer`` and ``memoryview`` without a copy.
    """

    status: int
    headers: HTTPHeaderDict = field(repr=False)
    content: bytes | bytearray = field(repr=False)
    url: str
    elapsed_ms: float
    reason: str = ""

    @property
    def content_type(self) -> str:
        """The media type, lower-cased, without parameters (``""`` if none).

        Parameters such as a multipart ``boundary`` stay in ``headers``.
        """
        value = self.headers.get("Content-Type", "")
        return value.split(";", 1)[0].strip().lower()

    @property
    def charset(self) -> str | None:
        """The ``charset`` parameter of ``Content-Type``, if given."""
        for param in self.headers.get("Content-Type", "").split(";")[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() == "charset":
                return value.strip().strip('"') or None
        return None

    @property
    def text(self) -> str:
        """The body decoded with its charset (UTF-8 by default); bad bytes are replaced."""
        encoding = self.charset or "utf-8"
        try:
            return self.content.decode(encoding, errors="replace")
        except LookupError:  # unknown charset name
            return self.content.decode("utf-8", errors="replace")

"""Parse ``multipart/related`` bodies, as DICOMweb servers send frames (PS3.18 8.7.1).

Why a parser of our own: the stdlib ``email`` parser copies every part and
guesses at malformed input, and regular expressions over a body of hundreds
of megabytes are slow.  This one walks the body with ``bytes.find`` and hands
each part out as a zero-copy :class:`memoryview` of the body, so a frame can
go to a decoder (or ``numpy.frombuffer``) without ever being copied.

It is strict where sloppiness would hide a broken transfer: a part that
declares a ``Content-Length`` must be followed by the next delimiter exactly
there, and a body that ends before the closing delimiter is reported as cut
short (:class:`~loadstone.TransportError`), never returned as fewer parts.
A body that is not a well-formed multipart message at all is
:class:`~loadstone.InvalidImageError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from loadstone.errors import InvalidImageError, TransportError

__all__ = [
    "DEFAULT_TRANSFER_SYNTAXES",
    "Part",
    "parse_media_type",
    "parse_multipart_related",
]

#: The transfer syntax a part means when its media type names none (PS3.18 Table 8.7.3-2/-5).
DEFAULT_TRANSFER_SYNTAXES: Mapping[str, str] = {
    "application/octet-stream": "1.2.840.10008.1.2.1",
    "image/jpeg": "1.2.840.10008.1.2.4.50",
    "image/jls": "1.2.840.10008.1.2.4.80",
    "image/x-jls": "1.2.840.10008.1.2.4.80",
    "image/jp2": "1.2.840.10008.1.2.4.90",
    "image/jpx": "1.2.840.10008.1.2.4.92",
    "image/dicom-rle": "1.2.840.10008.1.2.5",
    "image/x-dicom-rle": "1.2.840.10008.1.2.5",
    "image/jxl": "1.2.840.10008.1.2.4.110",
}

_CRLF = b"\r\n"
_HEADER_END = b"\r\n\r\n"
_MAX_HEADER_BYTES = 64 * 1024  # a part's header block; anything longer is not a DICOMweb part


@dataclass(frozen=True)
class Part:
    """One body part: its media type, transfer syntax and a view of its bytes.

    ``content_type`` is the media type without parameters, lower-cased
    (``application/octet-stream``, ``image/jpeg``…).  ``transfer_syntax_uid``
    is the part's ``transfer-syntax`` parameter, else the one the whole
    message's ``type`` parameter names, else the default for the media type
    (:data:`DEFAULT_TRANSFER_SYNTAXES`), else ``None``.  ``data`` is a
    read-only ``memoryview`` into the body (no copy): it keeps the body alive.
    """

    content_type: str
    transfer_syntax_uid: str | None
    content_location: str | None
    data: memoryview = field(repr=False)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return self.data.nbytes


def parse_media_type(value: str) -> tuple[str, dict[str, str]]:
    """Split a ``Content-Type`` value into the lower-cased media type and its parameters.

    Parameter names are lower-cased; quoted values are unquoted (``\\"`` and
    ``\\\\`` escapes honoured), and a ``;`` inside quotes does not split —
    DICOMweb puts one there: ``type="application/octet-stream; transfer-syntax=*"``.
    """
    pieces = _split_unquoted(value, ";")
    media = pieces[0].strip().lower() if pieces else ""
    params: dict[str, str] = {}
    for piece in pieces[1:]:
        name, eq, raw = piece.partition("=")
        name = name.strip().lower()
        if not name or not eq:
            continue
        params[name] = _unquote(raw.strip())
    return media, params


def parse_multipart_related(
    body: bytes | bytearray | memoryview,
    content_type: str,
    *,
    image_id: str | None = None,
    url: str | None = None,
    status: int | None = None,
) -> list[Part]:
    """The parts of a ``multipart/related`` (or any ``multipart/*``) body, in order.

    ``content_type`` is the response's ``Content-Type`` header; the boundary
    comes from its ``boundary`` parameter (quoted or not).  ``image_id``,
    ``url`` and ``status`` only go into the errors.

    Raises :class:`~loadstone.InvalidImageError` for a body that is not a
    well-formed multipart message (wrong media type, no boundary, no opening
    delimiter, a header block without its blank line, a bad ``Content-Length``,
    a part that overruns its declared length, no parts) and
    :class:`~loadstone.TransportError` for one that ends before its closing
    delimiter (the transfer was cut short).
    """
    where = f" from {url}" if url else ""
    media, params = parse_media_type(content_type or "")
    if not media.startswith("multipart/"):
        raise InvalidImageError(
            f"expected a multipart/related response{where}, got Content-Type {content_type!r}",
            image_id=image_id,
        )
    boundary = params.get("boundary", "")
    if not boundary:
        raise InvalidImageError(
            f"multipart response{where} has no boundary parameter in Content-Type {content_type!r}",
            image_id=image_id,
        )
    if len(boundary) > 200:  # RFC 2046: at most 70; be lenient but bounded
        raise InvalidImageError(
            f"multipart boundary{where} is {len(boundary)} characters long (at most 70 allowed)",
            image_id=image_id,
        )
    _, type_params = parse_media_type(params.get("type", ""))
    message_syntax = type_params.get("transfer-syntax")
    if message_syntax == "*":
        message_syntax = None

    buffer, view = _as_buffer(body)
    return _Scanner(buffer, view, boundary.encode("latin-1"), message_syntax, image_id, where,
                    url, status).parts()


class _Scanner:
    """Walks one body; kept as a class so the error context is not passed everywhere."""

    __slots__ = ("buf", "view", "dash", "delim", "syntax", "image_id", "where", "url", "status")

    def __init__(self, buf: bytes | bytearray, view: memoryview, boundary: bytes, syntax: str | None,
                 image_id: str | None, where: str, url: str | None, status: int | None) -> None:
        self.buf = buf
        self.view = view
        self.dash = b"--" + boundary
        self.delim = _CRLF + self.dash  # every delimiter but a first one at the very start
        self.syntax = syntax
        self.image_id = image_id
        self.where = where
        self.url = url
        self.status = status

    def invalid(self, message: str) -> InvalidImageError:
        return InvalidImageError(f"malformed multipart body{self.where}: {message}", image_id=self.image_id)

    def truncated(self, message: str) -> TransportError:
        return TransportError(
            f"multipart body{self.where} was cut short: {message}",
            image_id=self.image_id, status=self.status, url=self.url,
        )

    def parts(self) -> list[Part]:
        buf, size = self.buf, len(self.buf)
        if buf.startswith(self.dash):
            pos = len(self.dash)
        else:  # a preamble before the first delimiter is allowed (and ignored)
            found = buf.find(self.delim)
            if found < 0:
                if size == 0:
                    raise self.truncated("the body is empty")
                if self.dash.startswith(bytes(buf)):
                    raise self.truncated("the body ends inside the first delimiter")
                raise self.invalid(f"the boundary {self.dash[2:].decode('latin-1')!r} does not occur in "
                                   f"the {size}-byte body")
            pos = found + len(self.delim)
        parts: list[Part] = []
        while True:
            # After a delimiter: "--" closes the message; else optional padding, then CRLF.
            if buf.startswith(b"--", pos):
                if not parts:
                    raise self.invalid("the message closes without any part")
                return parts
            line_end = buf.find(_CRLF, pos)
            if line_end < 0:
                raise self.truncated(f"the body ends right after delimiter {len(parts) + 1}")
            if buf[pos:line_end].strip(b" \t"):
                raise self.invalid(f"unexpected bytes after delimiter {len(parts) + 1}: "
                                   f"{bytes(buf[pos:min(line_end, pos + 40)])!r}")
            pos = self._part(line_end + 2, parts)

    def _part(self, start: int, parts: list[Part]) -> int:
        """Read the part whose headers begin at ``start``; return where the next delimiter's tail is."""
        buf = self.buf
        number = len(parts) + 1
        if buf.startswith(_CRLF, start):  # no headers at all
            headers: dict[str, str] = {}
            data_start = start + 2
        else:
            head_end = buf.find(_HEADER_END, start, start + _MAX_HEADER_BYTES + 4)
            if head_end < 0:
                if len(buf) - start <= _MAX_HEADER_BYTES:
                    raise self.truncated(f"the headers of part {number} never end")
                raise self.invalid(f"the headers of part {number} are longer than {_MAX_HEADER_BYTES} bytes")
            headers = self._headers(bytes(buf[start:head_end]), number)
            data_start = head_end + 4

        length_text = headers.get("content-length")
        if length_text is not None:
            if not length_text.isdigit():
                raise self.invalid(f"part {number} has Content-Length {length_text!r}")
            data_end = data_start + int(length_text)
            if data_end > len(buf):
                raise self.truncated(f"part {number} declares {int(length_text)} bytes but only "
                                     f"{len(buf) - data_start} follow")
            if not buf.startswith(self.delim, data_end):
                if len(buf) < data_end + len(self.delim) and self.delim.startswith(bytes(buf[data_end:])):
                    raise self.truncated(f"the body ends inside the delimiter after part {number}")
                raise self.invalid(f"part {number} is longer than its Content-Length of {int(length_text)} "
                                   "bytes (no delimiter follows it)")
        else:
            data_end = buf.find(self.delim, data_start)
            if data_end < 0:
                raise self.truncated(f"no delimiter follows part {number}")

        media, params = parse_media_type(headers.get("content-type", "application/octet-stream"))
        syntax = params.get("transfer-syntax") or self.syntax or DEFAULT_TRANSFER_SYNTAXES.get(media)
        parts.append(Part(
            content_type=media,
            transfer_syntax_uid=syntax,
            content_location=headers.get("content-location"),
            data=self.view[data_start:data_end],
            headers=headers,
        ))
        return data_end + len(self.delim)

    def _headers(self, block: bytes, number: int) -> dict[str, str]:
        headers: dict[str, str] = {}
        last = ""
        for raw in block.split(_CRLF):
            line = raw.decode("latin-1")
            if line[:1] in (" ", "\t") and last:  # obsolete line folding
                headers[last] += " " + line.strip()
                continue
            name, colon, value = line.partition(":")
            name = name.strip().lower()
            if not colon or not name:
                raise self.invalid(f"part {number} has a header line without a name: {line[:80]!r}")
            headers[name] = value.strip()
            last = name
        return headers


def _as_buffer(body: bytes | bytearray | memoryview) -> tuple[bytes | bytearray, memoryview]:
    """Something with ``find``/``startswith`` and a read-only view of the same memory.

    A memoryview has no ``find``: use the object it views when it spans it
    whole (the usual case), else copy once.
    """
    if isinstance(body, memoryview):
        base = body.obj
        if (isinstance(base, (bytes, bytearray)) and body.contiguous and body.itemsize == 1
                and body.nbytes == len(base)):
            return base, body.toreadonly()
        data = body.tobytes()
        return data, memoryview(data)
    if isinstance(body, (bytes, bytearray)):
        return body, memoryview(body).toreadonly()
    raise TypeError(f"body must be bytes, bytearray or memoryview, not {type(body).__name__}")


def _split_unquoted(text: str, separator: str) -> list[str]:
    pieces: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == separator and not quoted:
            pieces.append("".join(current))
            current = []
            continue
        current.append(char)
    pieces.append("".join(current))
    return pieces


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        inner = value[1:-1]
        out: list[str] = []
        escaped = False
        for char in inner:
            if escaped:
                out.append(char)
                escaped = False
            elif char == "\\":
                escaped = True
            else:
                out.append(char)
        return "".join(out)
    return value

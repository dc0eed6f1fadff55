"""What the bytes are, before Pillow sees them: magic numbers, dimensions, text.

Everything here reads only the first bytes of a body (headers of the image
formats, the start of an HTML page), never decodes pixels, and never raises
anything but :class:`ValueError`-free answers: ``None`` means "cannot tell".
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from urllib.parse import unquote

__all__ = [
    "KNOWN_FORMATS",
    "Sniffed",
    "content_type_format",
    "dimensions",
    "png_physical_spacing",
    "quote_start",
    "sniff",
    "hint_for",
    "DICOM_HINT",
]

#: The formats loadstone-web can decode (Pillow's format names).
KNOWN_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF")

_TEXT_START = (b"<", b"{", b"[")
_BOMS = (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")


@dataclass(frozen=True)
class Sniffed:
    """The verdict on a body.

    ``kind`` is ``"image"`` (``format`` is one of :data:`KNOWN_FORMATS`),
    ``"foreign"`` (a recognised format loadstone-web does not decode:
    ``format`` names it, ``hint`` says what would), ``"text"`` (HTML, XML,
    JSON or plain text: an error page, most likely) or ``"unknown"``.
    """

    kind: str
    format: str | None = None
    hint: str = ""


#: What a DICOM Part 10 body is told to use instead (see :func:`hint_for`).
DICOM_HINT = ("a DICOM file: load it with loadstone-wado, as 'wadouri:<its URL>' "
              "(or 'dicomfile:<path>' from disk)")


def hint_for(verdict: Sniffed, image_id: str, wado_installed: bool = True) -> str:
    """The verdict's hint for this id: for DICOM, the id that loads it (``wadouri:`` / ``dicomfile:``)."""
    if verdict.format != "DICOM":
        return verdict.hint
    location = image_id[4:] if image_id[:4].lower() == "web:" else image_id
    if location[:5].lower() == "file:":
        path = unquote(location[5:])
        path = path[2:] if path.startswith("//") else path
        instead = f"dicomfile:{path}"
    else:
        instead = f"wadouri:{location}"
    install = "" if wado_installed else " (pip install loadstone-wado)"
    return f"a DICOM Part 10 file: load it with loadstone-wado as '{instead}'{install}"


def sniff(data: bytes | bytearray | memoryview) -> Sniffed:
    """Classify a body by its magic number (or, failing that, whether it is text).

    DICOM Part 10 (``DICM`` after a 128-byte preamble) is checked first: the
    preamble is free-form, and some files start it with another format's
    magic (pydicom's ``CT_small.dcm`` begins ``II*\\0``, a TIFF header).
    """
    head = bytes(data[:512])
    if len(head) >= 132 and head[128:132] == b"DICM":
        return Sniffed("foreign", "DICOM", DICOM_HINT)
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return Sniffed("image", "PNG")
    if head.startswith(b"\xff\xd8\xff"):
        return Sniffed("image", "JPEG")
    if head.startswith((b"GIF87a", b"GIF89a")):
        return Sniffed("image", "GIF")
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return Sniffed("image", "WEBP")
    if head.startswith((b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")):
        return Sniffed("image", "TIFF")
    if head.startswith(b"BM") and len(head) >= 26 and struct.unpack_from("<I", head, 14)[0] in (
        12, 40, 52, 56, 64, 108, 124,
    ):
        return Sniffed("image", "BMP")
    foreign = _foreign(head)
    if foreign is not None:
        return foreign
    if _is_text(head):
        return Sniffed("text")
    return Sniffed("unknown")


def _foreign(head: bytes) -> Sniffed | None:
    if head.startswith(b"%PDF"):
        return Sniffed("foreign", "PDF")
    if head.startswith((b"\x00\x00\x00\x0cjP  \r\n\x87\n", b"\xff\x4f\xff\x51")):
        return Sniffed("foreign", "JPEG 2000")
    if head[4:8] == b"ftyp" and head[8:12] in (b"avif", b"avis", b"heic", b"heix", b"mif1", b"msf1"):
        return Sniffed("foreign", "AVIF/HEIF")
    if head.startswith(b"\x00\x00\x01\x00") and len(head) >= 6 and head[4:6] != b"\x00\x00":
        return Sniffed("foreign", "ICO")
    text = _strip_text_start(head).lower()
    if text.startswith(b"<svg") or (text.startswith(b"<?xml") and b"<svg" in head.lower()):
        return Sniffed("foreign", "SVG")
    return None


def _strip_text_start(head: bytes) -> bytes:
    for bom in _BOMS:
        if head.startswith(bom):
            head = head[len(bom) :]
            break
    return head.lstrip()


def _is_text(head: bytes) -> bool:
    """HTML, XML, JSON or plain text: what servers send instead of an image."""
    stripped = _strip_text_start(head)
    if not stripped:
        return bool(head)  # whitespace only
    if stripped.startswith(_TEXT_START):
        return True
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return True  # UTF-16 with a byte-order mark
    try:
        text = stripped.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(stripped) - 4:  # not just a character cut at the 512-byte edge
            return False
        text = stripped[: exc.start].decode("utf-8")
    return all(ch.isprintable() or ch in "\t\r\n\f" for ch in text)


def quote_start(data: bytes | bytearray | memoryview, limit: int = 120) -> str:
    """The start of a body, for an error message: text as text, binary as a bytes repr."""
    head = bytes(data[: limit * 4])
    if _is_text(head):
        text = " ".join(_strip_text_start(head).decode("utf-8", errors="replace").split())
        return repr(text if len(text) <= limit else text[: limit - 1] + "…")
    return repr(head[: min(limit, 32)])


# -- Content-Type ---------------------------------------------------------------
_TYPE_FORMATS = {
    "image/png": "PNG",
    "image/x-png": "PNG",
    "image/apng": "PNG",
    "image/jpeg": "JPEG",
    "image/jpg": "JPEG",
    "image/pjpeg": "JPEG",
    "image/jfif": "JPEG",
    "image/webp": "WEBP",
    "image/gif": "GIF",
    "image/bmp": "BMP",
    "image/x-bmp": "BMP",
    "image/x-ms-bmp": "BMP",
    "image/tiff": "TIFF",
    "image/tif": "TIFF",
    "image/x-tiff": "TIFF",
}
_GENERIC_TYPES = frozenset(
    {
        "",
        "application/octet-stream",
        "binary/octet-stream",
        "application/binary",
        "application/x-binary",
        "application/download",
        "application/x-download",
        "application/force-download",
        "application/unknown",
    }
)


def content_type_format(content_type: str) -> str | None:
    """What a (lower-cased, parameter-free) media type claims.

    The format name for the image types above, ``""`` for types that claim
    nothing (absent, ``application/octet-stream``), or the type itself for
    anything else (``text/html``, ``image/avif``).
    """
    if content_type in _GENERIC_TYPES:
        return ""
    return _TYPE_FORMATS.get(content_type, content_type)


# -- dimensions -------------------------------------------------------------------
def dimensions(data: bytes | bytearray | memoryview, fmt: str) -> tuple[int, int] | None:
    """(width, height) from the header of a ``fmt`` body, or None if not found there.

    Read before Pillow parses anything, so that the pixel cap applies to
    what the file *claims*, whatever its compressed size.
    """
    view = memoryview(data)
    try:
        if fmt == "PNG":
            return _png_size(view)
        if fmt == "JPEG":
            return _jpeg_size(view)
        if fmt == "GIF":
            return _gif_size(view)
        if fmt == "BMP":
            return _bmp_size(view)
        if fmt == "WEBP":
            return _webp_size(view)
        if fmt == "TIFF":
            return _tiff_size(view)
    except (struct.error, IndexError, ValueError):
        return None
    finally:
        view.release()
    return None


def _png_size(view: memoryview) -> tuple[int, int] | None:
    if bytes(view[12:16]) != b"IHDR":
        return None
    width, height = struct.unpack_from(">II", view, 16)
    return int(width), int(height)


_SOF_MARKERS = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD9)})


def _jpeg_size(view: memoryview) -> tuple[int, int] | None:
    pos = 2
    end = len(view)
    while pos + 4 <= end:
        if view[pos] != 0xFF:
            return None
        while pos < end and view[pos] == 0xFF:  # fill bytes
            pos += 1
        if pos >= end:
            return None
        marker = view[pos]
        pos += 1
        if marker in _STANDALONE:
            continue
        if marker == 0xDA:  # start of scan: no frame header before it
            return None
        (length,) = struct.unpack_from(">H", view, pos)
        if marker in _SOF_MARKERS:
            height, width = struct.unpack_from(">HH", view, pos + 3)
            return (int(width), int(height)) if height else None  # height 0: set by a DNL marker
        if length < 2:
            return None
        pos += length
    return None


def _gif_size(view: memoryview) -> tuple[int, int]:
    width, height = struct.unpack_from("<HH", view, 6)
    return int(width), int(height)


def _bmp_size(view: memoryview) -> tuple[int, int]:
    (header,) = struct.unpack_from("<I", view, 14)
    if header == 12:
        width, height = struct.unpack_from("<HH", view, 18)
    else:
        width, height = struct.unpack_from("<ii", view, 18)
    return abs(int(width)), abs(int(height))


def _webp_size(view: memoryview) -> tuple[int, int] | None:
    chunk = bytes(view[12:16])
    if chunk == b"VP8 ":
        if bytes(view[23:26]) != b"\x9d\x01\x2a":
            return None
        width, height = struct.unpack_from("<HH", view, 26)
        return int(width) & 0x3FFF, int(height) & 0x3FFF
    if chunk == b"VP8L":
        if view[20] != 0x2F:
            return None
        (bits,) = struct.unpack_from("<I", view, 21)
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":
        w = view[24] | view[25] << 8 | view[26] << 16
        h = view[27] | view[28] << 8 | view[29] << 16
        return w + 1, h + 1
    return None


def _tiff_size(view: memoryview) -> tuple[int, int] | None:
    order = bytes(view[:2])
    if order not in (b"II", b"MM"):
        return None
    e = "<" if order == b"II" else ">"
    (magic,) = struct.unpack_from(e + "H", view, 2)
    if magic != 42:  # BigTIFF (43): left to Pillow, and to the check after it opened the file
        return None
    (ifd,) = struct.unpack_from(e + "I", view, 4)
    (count,) = struct.unpack_from(e + "H", view, ifd)
    found: dict[int, int] = {}
    for index in range(min(count, 512)):
        tag, kind, n = struct.unpack_from(e + "HHI", view, ifd + 2 + 12 * index)
        if tag in (256, 257) and n == 1:
            if kind == 3:  # SHORT
                (value,) = struct.unpack_from(e + "H", view, ifd + 2 + 12 * index + 8)
            elif kind == 4:  # LONG
                (value,) = struct.unpack_from(e + "I", view, ifd + 2 + 12 * index + 8)
            else:
                continue
            found[tag] = int(value)
    if 256 in found and 257 in found:
        return found[256], found[257]
    return None


# -- physical size ----------------------------------------------------------------
def png_physical_spacing(data: bytes | bytearray | memoryview) -> tuple[float, float] | None:
    """(row spacing, column spacing) in mm from a PNG ``pHYs`` chunk in metres, else None.

    ``pHYs`` must come before the first ``IDAT``, so only the header is read.
    Row spacing is the distance between rows (from pixels per metre along
    y), column spacing the distance between columns (along x).
    """
    view = memoryview(data)
    try:
        pos = 8
        for _ in range(64):  # chunks before IDAT: a handful in real files
            length, kind = struct.unpack_from(">I4s", view, pos)
            if kind in (b"IDAT", b"IEND"):
                return None
            if kind == b"pHYs" and length >= 9:
                per_x, per_y = struct.unpack_from(">II", view, pos + 8)
                unit = view[pos + 16]
                if unit == 1 and per_x > 0 and per_y > 0:
                    return 1000.0 / per_y, 1000.0 / per_x
                return None
            pos += 12 + int(length)
    except (struct.error, IndexError):
        return None
    finally:
        view.release()
    return None

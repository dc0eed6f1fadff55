"""Real PNG and JPEG files over a real loopback HTTP server: pixels equal Pillow's own decode."""

from __future__ import annotations

import io
import math
from collections.abc import Callable

import numpy as np
import pytest
from PIL import Image as PILImage

import loadstone
from loadstone import InvalidImageError, UnsupportedError
from loadstone.testing import check_image
from loadstone_web import config, decode_bytes
from loadstone_web._decode import pixels_of
from loadstone_web._sniff import dimensions, sniff

from .helpers import Images, Server, pillow_decode, reply

TIMEOUT = 20

# name -> (Pillow conversion giving the reference, color, components, dtype)
CASES = {
    "rgb.png": (None, True, 3, np.uint8),
    "rgba.png": (None, True, 4, np.uint8),
    "palette.png": ("RGB", True, 3, np.uint8),
    "palette-transparent.png": ("RGBA", True, 4, np.uint8),
    "grey.png": (None, False, 1, np.uint8),
    "grey-alpha.png": ("RGBA", True, 4, np.uint8),
    "grey16.png": (None, False, 1, np.uint16),
    "bilevel.png": ("L", False, 1, np.uint8),
    "baseline.jpg": (None, True, 3, np.uint8),
    "progressive.jpg": (None, True, 3, np.uint8),
    "cmyk.jpg": ("RGB", True, 3, np.uint8),
    "grey.jpg": (None, False, 1, np.uint8),
}


def load(image_id: str, **options: object) -> loadstone.Image:
    return loadstone.load_and_cache_image(image_id, **options).result(TIMEOUT)


@pytest.mark.parametrize("name", sorted(CASES))
def test_pixels_equal_pillows_decode(server: Server, images: Images, name: str) -> None:
    convert, color, components, dtype = CASES[name]
    url = server.url(f"/{name}")
    image = check_image(load(url), url)
    expected = pillow_decode(images.files[name], convert=convert)
    assert image.pixel_data.dtype == dtype
    assert image.pixel_data.shape == expected.shape
    np.testing.assert_array_equal(image.pixel_data, expected)
    assert image.color is color
    assert image.number_of_components == components
    assert image.min_pixel_value == float(expected.min())
    assert image.max_pixel_value == float(expected.max())
    assert (image.rows, image.columns) == expected.shape[:2]
    assert image.size_in_bytes == expected.nbytes
    assert image.photometric_interpretation == (
        {3: "RGB", 4: "RGBA"}[components] if color else "MONOCHROME2"
    )
    assert not image.invert
    assert image.slope == 1.0 and image.intercept == 0.0
    if dtype == np.uint8:
        assert (image.window_center, image.window_width) == (128.0, 255.0)
    else:
        assert (image.window_center, image.window_width) == (32768.0, 65535.0)
    assert image.extra["format"] == ("PNG" if name.endswith(".png") else "JPEG")
    assert image.extra["url"] == url
    assert image.decode_time_ms > 0 and image.load_time_ms >= image.decode_time_ms
    assert loadstone.cache.get_image_load_object(url) is not None


@pytest.mark.parametrize(("mode", "key"), [("L", 40), ("RGB", (40, 40, 40))])
def test_transparent_colour_key_becomes_alpha(serve: Callable[..., Server], mode: str,
                                              key: int | tuple[int, ...]) -> None:
    picture = PILImage.fromarray(np.arange(48, dtype=np.uint8).reshape(6, 8)).convert(mode)
    out = io.BytesIO()
    picture.save(out, "PNG", transparency=key)
    srv = serve({"/t.png": reply(out.getvalue(), "image/png")})
    image = load(srv.url("/t.png"))
    expected = pillow_decode(out.getvalue(), convert="RGBA")
    np.testing.assert_array_equal(image.pixel_data, expected)
    assert image.number_of_components == 4 and expected[5, 0, 3] == 0  # value 40 is transparent


def test_sixteen_bit_grey_keeps_its_values(server: Server, images: Images) -> None:
    image = load(server.url("/grey16.png"))
    with PILImage.open(io.BytesIO(images.files["grey16.png"])) as im:
        assert im.mode in ("I;16", "I")
    assert image.pixel_data.dtype == np.uint16
    assert image.min_pixel_value == 1000.0
    assert image.max_pixel_value > 255  # really 16-bit, not squeezed to 8
    assert image.render().dtype == np.uint8


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied(server: Server, images: Images, orientation: int) -> None:
    name = f"exif-{orientation}.jpg"
    image = load(server.url(f"/{name}"))
    expected = pillow_decode(images.files[name], transpose=True)
    np.testing.assert_array_equal(image.pixel_data, expected)
    swapped = orientation in (5, 6, 7, 8)
    assert (image.rows, image.columns) == ((96, 64) if swapped else (64, 96))
    # The file says 0.1 mm between columns, 0.2 mm between rows; a 90-degree turn swaps them.
    row, column = (0.1, 0.2) if swapped else (0.2, 0.1)
    assert image.row_pixel_spacing == pytest.approx(row)
    assert image.column_pixel_spacing == pytest.approx(column)
    assert image.extra.get("exif_orientation", 1) == orientation


def test_exif_orientation_can_be_switched_off(server: Server, images: Images) -> None:
    config.apply_exif_orientation = False
    image = load(server.url("/exif-6.jpg"))
    np.testing.assert_array_equal(image.pixel_data, pillow_decode(images.files["exif-6.jpg"]))


def test_physical_spacing(server: Server) -> None:
    png = load(server.url("/rgb-dpi.png"))  # pHYs 10000 x 5000 px per metre
    assert png.column_pixel_spacing == pytest.approx(0.1)
    assert png.row_pixel_spacing == pytest.approx(0.2)
    jpeg = load(server.url("/density-cm.jpg"))  # JFIF 40 x 20 dots per cm
    assert jpeg.column_pixel_spacing == pytest.approx(0.25)
    assert jpeg.row_pixel_spacing == pytest.approx(0.5)
    for name in ("rgb.png", "baseline.jpg"):  # no resolution (PNG) / JFIF aspect only (unit 0)
        image = load(server.url(f"/{name}"))
        assert image.row_pixel_spacing is None and image.column_pixel_spacing is None


@pytest.mark.parametrize("scheme", ["http", "web"])
def test_schemes(server: Server, images: Images, scheme: str) -> None:
    url = server.url("/rgb.png")
    image_id = url if scheme == "http" else f"web:{url}"
    image = load(image_id)
    assert image.image_id == image_id
    np.testing.assert_array_equal(image.pixel_data, pillow_decode(images.files["rgb.png"]))


def test_scheme_is_case_insensitive(server: Server) -> None:
    url = server.url("/grey.png")
    assert load("WEB:" + url).rows == 64
    assert load("HTTP" + url[4:]).rows == 64


def test_plugin_is_discovered() -> None:
    info = {p.name: p for p in loadstone.plugins()}["web"]
    assert info.status == "loaded"
    assert set(info.schemes) == {"http", "https", "web"}
    assert info.distribution == "loadstone-web"


def test_accept_header_lists_enabled_formats(server: Server) -> None:
    load(server.url("/rgb.png"))
    (request,) = server.requests_for("/rgb.png")
    assert request.headers["accept"].startswith("image/png, image/jpeg")
    assert "image/gif" not in request.headers["accept"]


# -- optional formats ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "fmt", "convert", "shape"),
    [
        ("anim.gif", "GIF", "RGB", (24, 32, 3)),
        ("rgb.webp", "WEBP", None, (64, 96, 3)),
        ("rgb.bmp", "BMP", None, (64, 96, 3)),
        ("grey16.tif", "TIFF", None, (40, 56)),
    ],
)
def test_optional_formats(server: Server, images: Images, name: str, fmt: str, convert: str | None,
                          shape: tuple[int, ...]) -> None:
    url = server.url(f"/{name}")
    with pytest.raises(UnsupportedError, match=rf"config\.enable\('{fmt}'\)"):
        loadstone.load_image(url).result(TIMEOUT)
    config.enable(fmt)
    image = check_image(loadstone.load_image(url).result(TIMEOUT), url)
    expected = pillow_decode(images.files[name], convert=convert)  # GIF: the first frame
    assert image.pixel_data.shape == shape
    np.testing.assert_array_equal(image.pixel_data, expected)
    if fmt == "GIF":
        assert image.extra["frames"] == 3
    if fmt == "TIFF":
        assert image.pixel_data.dtype == np.uint16


def test_per_load_formats_option(server: Server) -> None:
    url = server.url("/anim.gif")
    image = loadstone.load_image(url, formats=["png", "jpg", "gif"]).result(TIMEOUT)
    assert image.color
    with pytest.raises(UnsupportedError):
        loadstone.load_image(server.url("/baseline.jpg"), formats=["PNG"]).result(TIMEOUT)


# -- Content-Type against the bytes --------------------------------------------------------
HTML = b"<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body>Please log in</body></html>"


@pytest.mark.parametrize("content_type", ["text/html; charset=utf-8", "image/png", None])
def test_html_page_with_status_200_is_invalid(serve: Callable[..., Server], content_type: str | None) -> None:
    srv = serve({"/a.png": reply(HTML, content_type)})
    url = srv.url("/a.png")
    with pytest.raises(InvalidImageError, match=r"text/HTML.*<!DOCTYPE html> <html><head><title>Sign in"):
        loadstone.load_and_cache_image(url).result(TIMEOUT)
    assert url not in loadstone.cache


@pytest.mark.parametrize(
    "content_type", ["image/jpeg", "text/plain", "application/octet-stream", None, "IMAGE/PNG"]
)
def test_content_type_mismatch(
    serve: Callable[..., Server], images: Images, content_type: str | None
) -> None:
    srv = serve({"/x": reply(images.files["rgb.png"], content_type)})
    image = load(srv.url("/x"))
    np.testing.assert_array_equal(image.pixel_data, pillow_decode(images.files["rgb.png"]))
    mismatch = content_type in ("image/jpeg", "text/plain")
    assert image.extra.get("content_type_mismatch", False) is mismatch
    loadstone.cache.purge()
    config.strict_content_type = True
    if mismatch:
        with pytest.raises(InvalidImageError, match="does not match the body, which is PNG"):
            load(srv.url("/x"))
    else:
        load(srv.url("/x"))


def test_unknown_and_foreign_bodies(serve: Callable[..., Server]) -> None:
    dicom = b"\x00" * 128 + b"DICM" + b"\x02\x00" * 40
    srv = serve({
        "/noise": reply(bytes(range(256)) * 4, "image/png"),
        "/dicom": reply(dicom, "application/dicom"),
        "/svg": reply(b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>', "image/svg+xml"),
        "/empty": reply(b"", "image/png"),
    })
    with pytest.raises(InvalidImageError, match=r"not a JPEG or PNG image .*body starts b'\\x00\\x01"):
        load(srv.url("/noise"))
    with pytest.raises(UnsupportedError, match="loadstone-wado"):
        load(srv.url("/dicom"))
    with pytest.raises(UnsupportedError, match="SVG"):
        load(srv.url("/svg"))
    with pytest.raises(InvalidImageError, match="empty body"):
        load(srv.url("/empty"))


# -- decoding details ------------------------------------------------------------------------
def test_pixels_are_copied_once_and_read_only(images: Images) -> None:
    image = decode_bytes(images.files["baseline.jpg"], content_type="image/jpeg")
    array = image.pixel_data
    assert array.flags.c_contiguous
    assert not array.flags.writeable  # shared by every user of the cached image
    base = array.base
    while isinstance(base, np.ndarray):
        base = base.base
    assert isinstance(base, bytes) and len(base) == array.nbytes  # one buffer, filled once by Pillow
    with PILImage.open(io.BytesIO(images.files["baseline.jpg"])) as im:
        np.testing.assert_array_equal(pixels_of(im), np.asarray(im))


def test_pixels_of_every_layout() -> None:
    values: list[tuple[str, float | tuple[float, ...]]] = [
        ("L", 7), ("RGB", (1, 2, 3)), ("RGBA", (1, 2, 3, 4)),
        ("I;16", 300), ("I;16B", 300), ("I", -5), ("F", 1.5),
    ]
    for mode, value in values:
        im = PILImage.new(mode, (5, 3), value)
        array = pixels_of(im)
        expected = np.asarray(im)
        np.testing.assert_array_equal(array, expected)
        assert array.dtype.isnative and array.shape == expected.shape


def test_sniff_and_header_dimensions(images: Images) -> None:
    expected = {"rgb.png": ("PNG", (96, 64)), "baseline.jpg": ("JPEG", (96, 64)),
                "progressive.jpg": ("JPEG", (96, 64)), "anim.gif": ("GIF", (32, 24)),
                "rgb.webp": ("WEBP", (96, 64)), "rgb.bmp": ("BMP", (96, 64)),
                "grey16.tif": ("TIFF", (56, 40)), "bomb.png": ("PNG", (12000, 8000)),
                "exif-6.jpg": ("JPEG", (96, 64))}
    for name, (fmt, size) in expected.items():
        verdict = sniff(images.files[name])
        assert (verdict.kind, verdict.format) == ("image", fmt), name
        assert dimensions(images.files[name], fmt) == size, name
    lossy = io.BytesIO()
    PILImage.new("RGBA", (33, 17)).save(lossy, "WEBP", quality=50)
    assert dimensions(lossy.getvalue(), "WEBP") == (33, 17)
    assert sniff(b"  \n<html>").kind == "text"
    assert sniff(b'{"error": "no"}').kind == "text"
    assert sniff(b"Forbidden").kind == "text"
    assert sniff(b"\x00\x01\x02\x03").kind == "unknown"
    assert dimensions(b"\xff\xd8\xff", "JPEG") is None  # too short: no answer, no exception


def test_render_and_png_of_loaded_images(server: Server) -> None:
    for name in ("rgba.png", "grey16.png", "cmyk.jpg"):
        image = load(server.url(f"/{name}"))
        assert image.to_png().startswith(b"\x89PNG")
        assert math.isfinite(image.window_center or 0)


def test_https_scheme_is_claimed() -> None:
    # No TLS server here: the https id reaches the loader and fails as a transport error.
    with pytest.raises(loadstone.TransportError):
        loadstone.load_image("https://127.0.0.1:9/a.png", retries=0).result(TIMEOUT)

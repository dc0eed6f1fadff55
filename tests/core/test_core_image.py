"""Image: fields derived by from_array, render() per DICOM PS3.3 C.11.2.1.2, PNG output."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from PIL import Image as PILImage

import loadstone
from loadstone import Image

# -- expected values straight from the standard (PS3.3 C.11.2.1.2) --------------
Y_MIN, Y_MAX = 0.0, 255.0


def linear(x: float, c: float, w: float) -> float:
    """C.11.2.1.2.1 LINEAR (w >= 1)."""
    if x <= c - 0.5 - (w - 1) / 2:
        return Y_MIN
    if x > c - 0.5 + (w - 1) / 2:
        return Y_MAX
    return ((x - (c - 0.5)) / (w - 1) + 0.5) * (Y_MAX - Y_MIN) + Y_MIN


def linear_exact(x: float, c: float, w: float) -> float:
    """C.11.2.1.3.2 LINEAR_EXACT (w > 0)."""
    if x <= c - w / 2:
        return Y_MIN
    if x > c + w / 2:
        return Y_MAX
    return ((x - c) / w + 0.5) * (Y_MAX - Y_MIN) + Y_MIN


def sigmoid(x: float, c: float, w: float) -> float:
    """C.11.2.1.3.1 SIGMOID (w > 0)."""
    exponent = -4 * (x - c) / w
    if exponent > 700:  # math.exp would overflow; the limit is y_min
        return Y_MIN
    return (Y_MAX - Y_MIN) / (1 + math.exp(exponent)) + Y_MIN


FORMULAS = {"LINEAR": linear, "LINEAR_EXACT": linear_exact, "SIGMOID": sigmoid}


def unambiguous(y: float) -> bool:
    """Output levels whose rounding to an integer does not depend on the tie rule."""
    return abs((y - math.floor(y)) - 0.5) > 1e-6


def quantize(y: float) -> int:
    assert unambiguous(y)
    return min(255, max(0, math.floor(y + 0.5)))


def check_render(rendered: np.ndarray, modality: np.ndarray, formula, c: float, w: float) -> int:
    """Compare every unambiguous pixel with the formula; returns how many were compared."""
    assert rendered.dtype == np.uint8
    assert rendered.shape == modality.shape
    compared = 0
    for got, x in zip(rendered.ravel().tolist(), modality.ravel().tolist(), strict=True):
        y = formula(float(x), c, w)
        if unambiguous(y):
            assert got == quantize(y), f"x={x}: got {got}, formula gives {y}"
            compared += 1
    return compared


# -- Image.from_array ---------------------------------------------------------------
def test_from_array_grey_derives_fields() -> None:
    pixels = np.array([[-5, 0, 7], [100, 3, 2]], dtype=np.int16)
    image = Image.from_array("grey:1", pixels)
    assert (image.rows, image.columns) == (2, 3)
    assert (image.height, image.width) == (2, 3)
    assert image.color is False
    assert image.number_of_components == 1
    assert image.min_pixel_value == -5.0
    assert image.max_pixel_value == 100.0
    assert image.size_in_bytes == 12
    assert image.photometric_interpretation == "MONOCHROME2"
    assert image.get_pixel_data() is image.pixel_data
    np.testing.assert_array_equal(image.get_pixel_data(), pixels)
    assert (image.slope, image.intercept) == (1.0, 0.0)
    assert image.window_center is None and image.window_width is None
    assert image.voi_lut_function == "LINEAR"
    assert image.invert is False


@pytest.mark.parametrize(("components", "photometric"), [(3, "RGB"), (4, "RGBA")])
def test_from_array_colour_derives_fields(components: int, photometric: str) -> None:
    pixels = np.arange(5 * 4 * components, dtype=np.uint8).reshape(5, 4, components)
    image = Image.from_array("rgb:1", pixels)
    assert (image.rows, image.columns, image.height, image.width) == (5, 4, 5, 4)
    assert image.color is True
    assert image.number_of_components == components
    assert image.min_pixel_value == 0.0
    assert image.max_pixel_value == float(5 * 4 * components - 1)
    assert image.size_in_bytes == pixels.nbytes == 5 * 4 * components
    assert image.photometric_interpretation == photometric


def test_from_array_fields_override_derived_values() -> None:
    image = Image.from_array(
        "o:1", np.zeros((2, 2), np.uint16), photometric_interpretation="MONOCHROME1", invert=True,
        slope=2.0, intercept=-3.0, size_in_bytes=999, row_pixel_spacing=0.5,
    )
    assert image.photometric_interpretation == "MONOCHROME1"
    assert image.invert is True
    assert (image.slope, image.intercept) == (2.0, -3.0)
    assert image.size_in_bytes == 999
    assert image.row_pixel_spacing == 0.5


def test_height_and_width_are_read_only_aliases() -> None:
    image = Image.from_array("a:1", np.zeros((3, 7), np.uint8))
    with pytest.raises(AttributeError):
        image.height = 4  # type: ignore[misc]
    with pytest.raises(AttributeError):
        image.width = 4  # type: ignore[misc]
    image.rows = 9
    assert image.height == 9


@pytest.mark.parametrize("shape", [(4,), (2, 2, 2), (2, 2, 5), (1, 2, 2, 3)])
def test_from_array_rejects_other_shapes(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="shape"):
        Image.from_array("bad:1", np.zeros(shape, np.uint8))


def test_size_in_bytes_defaults_to_nbytes_when_built_directly() -> None:
    pixels = np.zeros((4, 5), np.float32)
    image = Image("d:1", 4, 5, pixels)
    assert image.size_in_bytes == 80


# -- render(): VOI LUT functions ------------------------------------------------------
@pytest.mark.parametrize("function", ["LINEAR", "LINEAR_EXACT", "SIGMOID"])
@pytest.mark.parametrize(("c", "w"), [(40.0, 100.0), (40.0, 101.0), (0.0, 1.0), (-17.5, 33.0)])
def test_voi_functions_on_integer_data(function: str, c: float, w: float) -> None:
    if function != "LINEAR" and w == 1.0:
        w = 2.0
    stored = np.arange(-200, 201, dtype=np.int16).reshape(1, -1)
    image = Image.from_array("voi:1", stored, voi_lut_function=function)
    rendered = image.render(window_center=c, window_width=w)
    compared = check_render(rendered, stored.astype(np.float64), FORMULAS[function], c, w)
    assert compared >= 0.97 * stored.size  # a few levels fall exactly on .5


@pytest.mark.parametrize("function", ["LINEAR", "LINEAR_EXACT", "SIGMOID"])
def test_voi_functions_on_float_data_include_window_edges(function: str) -> None:
    c, w = 40.0, 100.0
    edges = {
        "LINEAR": [c - 0.5 - (w - 1) / 2, c - 0.5 + (w - 1) / 2],
        "LINEAR_EXACT": [c - w / 2, c + w / 2],
        "SIGMOID": [c - w / 2, c + w / 2],
    }[function]
    points = []
    for edge in edges:
        points += [edge - 1.0, edge - 1e-3, edge, edge + 1e-3, edge + 0.3, edge + 1.0]
    points += [c - 0.2, c + 0.2, c + 7.3, -1e6, 1e6]
    values = np.array([points], dtype=np.float64)
    image = Image.from_array("voi:2", values)
    rendered = image.render(window_center=c, window_width=w, voi_lut_function=function)
    compared = check_render(rendered, values, FORMULAS[function], c, w)
    assert compared == values.size


def test_linear_window_edges_exactly() -> None:
    # c=40, w=100: the standard's edges are x <= -10 -> 0 and x > 89 -> 255.
    stored = np.array([[-11, -10, -9, 40, 88, 89, 90]], dtype=np.int32)
    rendered = Image.from_array("e:1", stored).render(window_center=40, window_width=100)
    expected = [0, 0, round(((-9 - 39.5) / 99 + 0.5) * 255), round((0.5 / 99 + 0.5) * 255),
                round((48.5 / 99 + 0.5) * 255), 255, 255]
    assert rendered.tolist() == [expected]
    assert expected == [0, 0, 3, 129, 252, 255, 255]


def test_linear_exact_window_edges_exactly() -> None:
    # c=40, w=100: x <= -10 -> 0, x > 90 -> 255, and 90 itself is still inside (-> 255.0).
    stored = np.array([[-11, -10, -9, 41, 89, 90, 91]], dtype=np.int32)
    rendered = Image.from_array("e:2", stored).render(
        window_center=40, window_width=100, voi_lut_function="LINEAR_EXACT"
    )
    assert rendered.tolist() == [[0, 0, 3, 130, 252, 255, 255]]


def test_sigmoid_is_half_way_at_the_centre_and_symmetric() -> None:
    stored = np.array([[10, 20, 30]], dtype=np.float32)
    rendered = Image.from_array("s:1", stored, voi_lut_function="SIGMOID").render(
        window_center=20, window_width=40
    )
    low = quantize(sigmoid(10, 20, 40))
    assert rendered.tolist() == [[low, rendered[0, 1], 255 - low]]
    assert rendered[0, 1] in (127, 128)  # exactly 127.5: either tie rule


def test_voi_function_comes_from_the_image_unless_overridden() -> None:
    stored = np.arange(0, 101, dtype=np.uint8).reshape(1, -1)
    image = Image.from_array("f:1", stored, voi_lut_function="SIGMOID", window_center=50.0,
                             window_width=30.0)
    check_render(image.render(), stored.astype(float), sigmoid, 50.0, 30.0)
    check_render(image.render(voi_lut_function="LINEAR"), stored.astype(float), linear, 50.0, 30.0)


def test_unknown_voi_function_is_rejected() -> None:
    image = Image.from_array("f:2", np.zeros((2, 2), np.uint8), voi_lut_function="GAMMA")
    with pytest.raises(ValueError, match="GAMMA"):
        image.render(window_center=1, window_width=2)


# -- render(): modality LUT, default and explicit windows, inversion -----------------
def test_modality_rescale_is_applied_before_the_window() -> None:
    stored = np.arange(0, 2048, 7, dtype=np.uint16).reshape(1, -1)
    slope, intercept = 2.0, -1024.0
    image = Image.from_array("ct:1", stored, slope=slope, intercept=intercept,
                             window_center=40.0, window_width=400.0)
    modality = stored.astype(np.float64) * slope + intercept
    compared = check_render(image.render(), modality, linear, 40.0, 400.0)
    assert compared >= stored.size - 2
    # Windowing the stored values instead would give a different picture.
    assert not np.array_equal(image.render(),
                              Image.from_array("ct:2", stored).render(window_center=40, window_width=400))


def test_modality_rescale_on_float_data() -> None:
    stored = np.linspace(-3.0, 3.0, 61, dtype=np.float32).reshape(1, -1)
    image = Image.from_array("pt:1", stored, slope=0.5, intercept=10.0)
    modality = stored.astype(np.float64) * 0.5 + 10.0
    check_render(image.render(window_center=10.0, window_width=2.0), modality, linear, 10.0, 2.0)


def test_default_window_spans_min_to_max_in_modality_units() -> None:
    stored = np.array([[100, 350, 600, 1100]], dtype=np.int16)
    image = Image.from_array("dw:1", stored, slope=3.0, intercept=-50.0)
    lo, hi = 100 * 3.0 - 50.0, 1100 * 3.0 - 50.0
    c, w = (lo + hi) / 2, hi - lo
    rendered = image.render()
    check_render(rendered, stored * 3.0 - 50.0, linear, c, w)
    assert rendered[0, 0] == 0 and rendered[0, -1] == 255


def test_default_window_on_float_data() -> None:
    stored = np.array([[-1.5, -0.25, 0.0, 2.5]], dtype=np.float64)
    rendered = Image.from_array("dw:2", stored).render()
    check_render(rendered, stored, linear, 0.5, 4.0)
    assert rendered[0, 0] == 0 and rendered[0, -1] == 255


def test_image_window_is_used_and_explicit_arguments_override_it() -> None:
    stored = np.arange(-300, 301, 5, dtype=np.int16).reshape(1, -1)
    image = Image.from_array("w:1", stored, window_center=0.0, window_width=200.0)
    x = stored.astype(np.float64)
    check_render(image.render(), x, linear, 0.0, 200.0)
    check_render(image.render(window_center=50, window_width=20), x, linear, 50.0, 20.0)
    # One argument overrides only its half of the stored window.
    check_render(image.render(window_center=100), x, linear, 100.0, 200.0)
    check_render(image.render(window_width=500), x, linear, 0.0, 500.0)


def test_monochrome1_inverts() -> None:
    stored = np.arange(0, 256, 3, dtype=np.uint8).reshape(1, -1)
    normal = Image.from_array("m:2", stored)
    inverted = Image.from_array("m:1", stored, photometric_interpretation="MONOCHROME1", invert=True)
    np.testing.assert_array_equal(inverted.render(), 255 - normal.render())
    np.testing.assert_array_equal(inverted.render(invert=False), normal.render())
    np.testing.assert_array_equal(normal.render(invert=True), 255 - normal.render())
    np.testing.assert_array_equal(
        inverted.render(window_center=100, window_width=50),
        255 - normal.render(window_center=100, window_width=50),
    )


def test_inversion_on_float_data() -> None:
    stored = np.array([[0.0, 0.3, 0.7, 1.0]], dtype=np.float32)
    image = Image.from_array("m:3", stored, invert=True)
    expected = [255 - quantize(linear(float(x), 0.5, 1.0)) for x in stored.ravel()]
    assert image.render().tolist() == [expected]


@pytest.mark.parametrize("components", [3, 4])
def test_colour_uint8_passes_through(components: int) -> None:
    rng = np.random.default_rng(7)
    pixels = rng.integers(0, 256, size=(6, 5, components), dtype=np.uint8)
    image = Image.from_array("c:1", pixels, window_center=10.0, window_width=5.0)
    rendered = image.render()
    assert rendered.dtype == np.uint8
    np.testing.assert_array_equal(rendered, pixels)


def test_render_of_bool_mask_with_false_pixels() -> None:
    mask = np.array([[False, True], [True, False]])
    image = Image.from_array("mask:1", mask)
    assert image.render().tolist() == [[0, 255], [255, 0]]


def test_render_of_empty_image() -> None:
    image = Image.from_array("empty:1", np.zeros((0, 3), np.uint16))
    rendered = image.render()
    assert rendered.shape == (0, 3) and rendered.dtype == np.uint8


# -- PNG ------------------------------------------------------------------------------
def decode_png(data: bytes) -> tuple[str, np.ndarray]:
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    with PILImage.open(io.BytesIO(data)) as png:
        png.load()
        return png.mode, np.asarray(png)


def test_png_grey_equals_render() -> None:
    stored = np.arange(-500, 700, dtype=np.int16).reshape(30, 40)
    image = Image.from_array("p:1", stored, slope=1.5, intercept=3.0, window_center=100.0,
                             window_width=300.0)
    mode, decoded = decode_png(image.to_png())
    assert mode == "L"
    np.testing.assert_array_equal(decoded, image.render())
    mode, decoded = decode_png(image._repr_png_())
    np.testing.assert_array_equal(decoded, image.render())


def test_png_passes_render_options() -> None:
    stored = np.arange(0, 1200, dtype=np.uint16).reshape(30, 40)
    image = Image.from_array("p:2", stored)
    options = {"window_center": 300.0, "window_width": 120.0, "invert": True}
    _, decoded = decode_png(image.to_png(**options))
    np.testing.assert_array_equal(decoded, image.render(**options))
    assert not np.array_equal(decoded, image.render())


@pytest.mark.parametrize(("components", "mode"), [(3, "RGB"), (4, "RGBA")])
def test_png_colour_equals_render(components: int, mode: str) -> None:
    rng = np.random.default_rng(components)
    pixels = rng.integers(0, 256, size=(9, 11, components), dtype=np.uint8)
    image = Image.from_array("p:3", pixels)
    for data in (image.to_png(), image._repr_png_()):
        got_mode, decoded = decode_png(data)
        assert got_mode == mode
        assert decoded.shape == (9, 11, components)
        np.testing.assert_array_equal(decoded, image.render())
        np.testing.assert_array_equal(decoded, pixels)


def test_png_of_float_image() -> None:
    values = np.linspace(-1.0, 1.0, 64, dtype=np.float32).reshape(8, 8)
    image = Image.from_array("p:4", values)
    mode, decoded = decode_png(image.to_png())
    assert mode == "L"
    np.testing.assert_array_equal(decoded, image.render())


def test_image_is_exported_lazily_from_the_package() -> None:
    assert loadstone.Image is Image

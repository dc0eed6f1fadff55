"""The embedded demo plugin: pixels, Hounsfield units, geometry, metadata, ids, size.

Geometry checks use only what the metadata provider states (positions,
orientation, spacing), so they prove the pixels sit where the metadata says.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import math
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import numpy as np
import pytest

import loadstone
from loadstone import Image, InvalidImageError
from loadstone.testing import LoaderContract
from loadstone_base64_demo import SERIES_IDS, load_example, metadata_provider, plugin
from loadstone_base64_demo import _pixels as pixels
from loadstone_base64_demo._series import SERIES

PACKAGE_DIR = Path(plugin.__file__).resolve().parent
GENERATOR = Path(__file__).resolve().parents[2] / "plugins" / "base64_demo" / "tools" / "make_demo_data.py"
UID = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*")

MODULES = (
    "imagePlaneModule",
    "imagePixelModule",
    "generalSeriesModule",
    "generalStudyModule",
    "generalImageModule",
    "patientModule",
    "voiLutModule",
    "modalityLutModule",
    "sopCommonModule",
    "multiframeModule",
    "transferSyntax",
)
COUNTS = {"example://ct": 64, "example://mr": 32, "example://color": 1}

BAD_IDS = [
    "example://ct/64",  # one past the end
    "example://mr/32",
    "example://color/1",
    "example://ct/-1",
    "example://ct/+1",
    "example://ct/007",  # not canonical
    "example://ct/1.5",
    "example://ct/ 1",
    "example://ct/",
    "example://ct",
    "example://ct/1/2",
    "example://ct/1?frame=1",
    "example://nope/0",
    "example:ct/0",
    "example:",
    "example://ct/99999999999999999999999999",
]


def load(image_id: str) -> Image:
    return load_example(image_id, {}).result(30)


def hu(image: Image) -> np.ndarray:
    return image.get_pixel_data().astype(np.float64) * image.slope + image.intercept


def module(name: str, image_id: str) -> dict[str, Any]:
    answer = metadata_provider(name, image_id)
    assert answer is not None, (name, image_id)
    return answer


def plane(image_id: str) -> dict[str, Any]:
    return module("imagePlaneModule", image_id)


def series(series_id: str) -> list[str]:
    ids = plugin.loadstone_series_image_ids(series_id)
    assert ids is not None
    return ids


def locate(series_id: str, point: tuple[float, float, float]) -> tuple[str, int, int]:
    """The image id and (row, column) nearest a patient point, from the metadata alone."""
    ids = series(series_id)
    first = plane(ids[0])
    row_cos = np.array(first["row_cosines"])
    col_cos = np.array(first["column_cosines"])
    normal = np.cross(row_cos, col_cos)
    p = np.array(point)
    distance = {i: float(np.dot(p - np.array(plane(i)["image_position_patient"]), normal)) for i in ids}
    image_id = min(ids, key=lambda i: abs(distance[i]))
    origin = np.array(plane(image_id)["image_position_patient"])
    row_spacing, column_spacing = first["pixel_spacing"]
    row = round(float(np.dot(p - origin, col_cos)) / row_spacing)
    column = round(float(np.dot(p - origin, row_cos)) / column_spacing)
    return image_id, row, column


def hu_at(point: tuple[float, float, float], radius: int = 1) -> np.ndarray:
    """CT values (HU) in the (2 radius + 1)^2 patch round a patient point."""
    image_id, row, column = locate("example://ct", point)
    values = hu(load(image_id))
    assert radius <= row < values.shape[0] - radius and radius <= column < values.shape[1] - radius
    return values[row - radius : row + radius + 1, column - radius : column + radius + 1]


# -- images -------------------------------------------------------------------------
def test_ct_slice_is_signed_16_bit_with_hu_rescale() -> None:
    image = load("example://ct/20")
    data = image.get_pixel_data()
    assert (image.rows, image.columns) == (128, 128)
    assert data.shape == (128, 128) and data.dtype == np.int16
    assert not image.color and image.number_of_components == 1
    assert image.photometric_interpretation == "MONOCHROME2" and not image.invert
    assert (image.slope, image.intercept) == (1.0, -1024.0)
    assert (image.window_center, image.window_width) == (40.0, 400.0)
    assert (image.row_pixel_spacing, image.column_pixel_spacing) == (2.5, 2.5)
    assert image.min_pixel_value == float(data.min()) and image.max_pixel_value == float(data.max())
    # Outside the reconstruction circle: the padding value, negative in int16.
    assert data[0, 0] == -2000 and hu(image)[0, 0] == -3024.0


def test_mr_slice_is_unsigned_16_bit_in_12_bits() -> None:
    image = load("example://mr/16")
    data = image.get_pixel_data()
    assert data.shape == (128, 112) and data.dtype == np.uint16
    assert (image.rows, image.columns) == (128, 112)
    assert data.min() >= 0 and data.max() < 4096 and data.max() > 500
    assert (image.slope, image.intercept) == (1.0, 0.0)
    assert (image.window_center, image.window_width) == (600.0, 1200.0)
    assert (image.row_pixel_spacing, image.column_pixel_spacing) == (1.8, 1.8)


def test_colour_image_is_rgb_test_pattern() -> None:
    image = load("example://color/0")
    data = image.get_pixel_data()
    assert data.shape == (256, 256, 3) and data.dtype == np.uint8
    assert image.color and image.number_of_components == 3
    assert image.photometric_interpretation == "RGB"
    assert image.window_center is None and image.window_width is None
    bars = [
        (255, 255, 255),
        (255, 255, 0),
        (0, 255, 255),
        (0, 255, 0),
        (255, 0, 255),
        (255, 0, 0),
        (0, 0, 255),
        (0, 0, 0),
    ]
    for k, rgb in enumerate(bars):  # channel order is R, G, B
        assert tuple(data[16, 32 * k + 16]) == rgb
    ramp = data[250]
    assert np.array_equal(ramp[:, 0], np.arange(256)) and np.array_equal(ramp[:, 1], ramp[:, 2])
    assert tuple(data[136, 128 + 90]) == pytest.approx((255, 16, 16), abs=8)  # wheel: red at 3 o'clock


def test_image_ids_are_matched_case_insensitively_and_kept() -> None:
    image = load("EXAMPLE://CT/5")
    assert image.image_id == "EXAMPLE://CT/5"
    assert np.array_equal(image.get_pixel_data(), load("example://ct/5").get_pixel_data())


@pytest.mark.parametrize(
    ("point", "low", "high"),
    [
        ((0.0, -140.0, -121.0), -1000, -1000),  # air in front of the body: exact, no noise outside it
        ((-90.0, 0.0, -199.0), 95, 125),  # liver, contrast-enhanced
        ((-141.0, 5.0, -199.0), -120, -80),  # subcutaneous fat
        ((15.06, 42.0, -199.0), 190, 230),  # descending aorta, contrast
        ((0.0, 62.0, -199.0), 270, 330),  # cancellous bone of a vertebral body
        ((-50.0, -20.0, -79.0), -900, -800),  # right lung
        ((15.0, -28.0, -121.0), 200, 240),  # blood pool of the heart
        ((-70.0, -15.0, -205.0), 25, 65),  # the low-density liver lesion
    ],
)
def test_known_regions_have_their_hounsfield_units(
    point: tuple[float, float, float], low: float, high: float
) -> None:
    assert low <= float(np.median(hu_at(point))) <= high


def test_bone_is_dense_and_lung_is_air_like() -> None:
    spine = hu_at((0.0, 62.0, -199.0), radius=9)
    assert spine.max() >= 700  # cortical rim
    lungs = hu(load(locate("example://ct", (0.0, 0.0, -79.0))[0]))
    assert np.count_nonzero((lungs > -950) & (lungs < -750)) > 2000


def test_slices_differ_in_anatomy_not_only_noise() -> None:
    volume = np.stack([hu(load(i)) for i in series("example://ct")])
    assert len({s.tobytes() for s in volume}) == 64
    # Lungs fill the upper (head-side) slices, the abdomen the lower ones.
    lung_fraction = ((volume > -950) & (volume < -700)).mean(axis=(1, 2))
    assert lung_fraction[:10].max() < 0.02 and lung_fraction[-10:].min() > 0.2
    mr = [load(i).get_pixel_data() for i in series("example://mr")]
    assert len({s.tobytes() for s in mr}) == 32


def test_returned_pixels_are_the_callers_and_the_cache_is_read_only() -> None:
    first = load("example://ct/7")
    original = first.get_pixel_data().copy()
    first.get_pixel_data()[:] = 0  # a caller may scribble on its own copy
    assert np.array_equal(load("example://ct/7").get_pixel_data(), original)
    assert not pixels.read_volume(SERIES["ct"]).flags.writeable


def test_volume_is_decoded_once_under_concurrency(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real_decode = pixels.decode

    def counting_decode(text: bytes, spec: Any) -> np.ndarray:
        calls.append(spec.name)
        return real_decode(text, spec)

    pixels.clear()
    monkeypatch.setattr(pixels, "decode", counting_decode)
    barrier = threading.Barrier(8)
    results: list[np.ndarray] = []

    def worker(k: int) -> None:
        barrier.wait()
        results.append(load(f"example://mr/{k}").get_pixel_data())

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(results) == 8 and calls == ["mr"]


def test_corrupt_data_is_an_invalid_image_error() -> None:
    spec = SERIES["ct"]
    with pytest.raises(InvalidImageError):
        pixels.decode(b"not base64 at all!", spec)
    with pytest.raises(InvalidImageError):
        pixels.decode(pixels.encode(np.zeros(spec.shape, np.int16), spec)[:-200], spec)


# -- geometry -------------------------------------------------------------------------
@pytest.mark.parametrize("series_id", ["example://ct", "example://mr"])
def test_geometry_is_consistent(series_id: str) -> None:
    ids = series(series_id)
    planes = [plane(i) for i in ids]
    first = planes[0]
    row_cos, col_cos = np.array(first["row_cosines"]), np.array(first["column_cosines"])
    assert first["image_orientation_patient"] == [*first["row_cosines"], *first["column_cosines"]]
    assert np.linalg.norm(row_cos) == pytest.approx(1.0) and np.linalg.norm(col_cos) == pytest.approx(1.0)
    assert float(np.dot(row_cos, col_cos)) == pytest.approx(0.0, abs=1e-12)
    normal = np.cross(row_cos, col_cos)
    spacing = first["spacing_between_slices"]
    assert spacing > 0 and first["slice_thickness"] > 0
    assert first["pixel_spacing"] == [first["row_pixel_spacing"], first["column_pixel_spacing"]]
    positions = np.array([p["image_position_patient"] for p in planes])
    steps = np.diff(positions, axis=0)
    assert np.allclose(steps, spacing * normal, atol=1e-6)  # along the normal, by the spacing
    locations = [p["slice_location"] for p in planes]
    assert np.allclose(np.diff(locations), spacing) and np.allclose(locations, positions @ normal)
    for p in planes:  # the same plane orientation, frame and size for every slice
        assert p["image_orientation_patient"] == first["image_orientation_patient"]
        assert p["frame_of_reference_uid"] == first["frame_of_reference_uid"]
        assert (p["rows"], p["columns"], p["pixel_spacing"]) == (
            first["rows"],
            first["columns"],
            first["pixel_spacing"],
        )
    image = load(ids[0])
    assert (image.rows, image.columns) == (first["rows"], first["columns"])
    assert [image.row_pixel_spacing, image.column_pixel_spacing] == first["pixel_spacing"]


def test_ct_is_axial_feet_to_head_and_mr_is_sagittal() -> None:
    ct, mr = plane("example://ct/0"), plane("example://mr/0")
    assert ct["image_orientation_patient"] == [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    assert plane("example://ct/63")["image_position_patient"][2] > ct["image_position_patient"][2]
    assert mr["image_orientation_patient"] == [0.0, 1.0, 0.0, 0.0, 0.0, -1.0]
    assert mr["slice_thickness"] != mr["spacing_between_slices"]  # a gap: spacing is what counts
    assert ct["frame_of_reference_uid"] != mr["frame_of_reference_uid"]


def test_mr_anatomy_sits_where_the_geometry_says() -> None:
    # Eyes lie anterior and low, the brain above them: check through the metadata.
    image_id, row, column = locate("example://mr", (30.0, -62.0, 4.0))  # left eye (dark vitreous)
    eye = load(image_id).get_pixel_data()[row - 1 : row + 2, column - 1 : column + 2]
    image_id, row, column = locate("example://mr", (0.0, 8.0, 80.0))  # white matter high in the midline
    brain = load(image_id).get_pixel_data()[row - 1 : row + 2, column - 1 : column + 2]
    assert float(np.median(eye)) < 300 < 700 < float(np.median(brain))


# -- metadata --------------------------------------------------------------------------
def all_ids() -> Iterator[str]:
    for series_id in SERIES_IDS:
        yield from series(series_id)


def test_every_module_is_answered_for_every_image() -> None:
    for image_id in all_ids():
        for name in MODULES:
            answer = metadata_provider(name, image_id)
            assert isinstance(answer, dict) and answer, (name, image_id)
            assert all(re.fullmatch(r"[a-z][a-z0-9_]*", key) for key in answer), answer
            json.dumps(answer)  # plain numbers, strings, lists and None only


def test_metadata_values() -> None:
    ct, mr, colour = "example://ct/3", "example://mr/3", "example://color/0"
    assert metadata_provider("modalityLutModule", ct) == {
        "rescale_slope": 1.0,
        "rescale_intercept": -1024.0,
        "rescale_type": "HU",
    }
    voi = metadata_provider("voiLutModule", ct)
    assert voi is not None
    assert voi["window_center"] == [40.0, -600.0, 300.0] and voi["window_width"] == [400.0, 1500.0, 1500.0]
    assert len(voi["explanation"]) == 3 and voi["voi_lut_function"] == "LINEAR"
    pixel = metadata_provider("imagePixelModule", ct)
    assert pixel is not None
    assert (
        pixel["bits_allocated"],
        pixel["bits_stored"],
        pixel["high_bit"],
        pixel["pixel_representation"],
    ) == (16, 16, 15, 1)
    assert (pixel["samples_per_pixel"], pixel["photometric_interpretation"]) == (1, "MONOCHROME2")
    mr_pixel = metadata_provider("imagePixelModule", mr)
    assert mr_pixel is not None and (mr_pixel["bits_stored"], mr_pixel["pixel_representation"]) == (12, 0)
    rgb = metadata_provider("imagePixelModule", colour)
    assert rgb is not None
    assert (
        rgb["samples_per_pixel"],
        rgb["photometric_interpretation"],
        rgb["planar_configuration"],
        rgb["bits_allocated"],
    ) == (3, "RGB", 0, 8)
    assert metadata_provider("multiframeModule", ct) == {"number_of_frames": 1}
    assert metadata_provider("transferSyntax", ct) == {"transfer_syntax_uid": "1.2.840.10008.1.2.1"}
    assert [module("generalSeriesModule", i)["modality"] for i in (ct, mr, colour)] == ["CT", "MR", "OT"]
    assert module("generalImageModule", ct)["instance_number"] == 4
    assert metadata_provider("patientModule", ct) == metadata_provider("patientModule", mr)
    colour_plane = plane(colour)
    assert colour_plane["image_position_patient"] is None and colour_plane["rows"] == 256


def test_uids_are_valid_and_group_images_correctly() -> None:
    sop_uids = set()
    for image_id in all_ids():
        sop = metadata_provider("sopCommonModule", image_id)
        image = metadata_provider("generalImageModule", image_id)
        assert sop is not None and image is not None
        assert sop["sop_instance_uid"] == image["sop_instance_uid"]
        sop_uids.add(sop["sop_instance_uid"])
        for name, key in (
            ("sopCommonModule", "sop_class_uid"),
            ("sopCommonModule", "sop_instance_uid"),
            ("generalSeriesModule", "series_instance_uid"),
            ("generalStudyModule", "study_instance_uid"),
        ):
            value = module(name, image_id)[key]
            assert UID.fullmatch(value) and len(value) <= 64, value
    assert len(sop_uids) == sum(COUNTS.values())

    def uid(name: str, key: str, image_id: str) -> str:
        return str(module(name, image_id)[key])

    series_uids = {uid("generalSeriesModule", "series_instance_uid", s + "/0") for s in SERIES_IDS}
    assert len(series_uids) == 3
    assert uid("generalSeriesModule", "series_instance_uid", "example://ct/0") == uid(
        "generalSeriesModule", "series_instance_uid", "example://ct/63"
    )
    assert uid("generalStudyModule", "study_instance_uid", "example://ct/0") == uid(
        "generalStudyModule", "study_instance_uid", "example://color/0"
    )
    assert uid("generalStudyModule", "study_instance_uid", "example://ct/0") != uid(
        "generalStudyModule", "study_instance_uid", "example://mr/0"
    )


def test_provider_answers_fresh_dicts() -> None:
    answer = plane("example://ct/1")
    answer["image_position_patient"][0] = 12345.0
    assert plane("example://ct/1")["image_position_patient"][0] != 12345.0


@pytest.mark.parametrize("image_id", [*BAD_IDS, "wadors:http://h/x", "https://h/a.png", "", "ct/1"])
def test_provider_says_none_for_ids_it_does_not_serve(image_id: str) -> None:
    for name in MODULES:
        assert metadata_provider(name, image_id) is None


def test_provider_says_none_for_unknown_modules() -> None:
    assert metadata_provider("overlayPlaneModule", "example://ct/0") is None
    assert metadata_provider("imageplanemodule", "example://ct/0") is None


def test_registered_through_the_core() -> None:
    info = {p.name: p for p in loadstone.plugins()}["base64_demo"]
    assert info.status == "loaded" and "example" in info.schemes
    assert loadstone.metadata.get("imagePlaneModule", "example://ct/0") == plane("example://ct/0")
    assert loadstone.series_image_ids("Example://CT") == series("example://ct")
    image = loadstone.load_image("Example://CT/9", ignore_cache=True).result(30)
    assert np.array_equal(image.get_pixel_data(), load("example://ct/9").get_pixel_data())


# -- series ids ------------------------------------------------------------------------
@pytest.mark.parametrize("series_id", ["example://ct", "EXAMPLE://CT", "example://ct/", "Example://Ct/"])
def test_series_ids_expand_in_order(series_id: str) -> None:
    ids = series(series_id)
    assert ids == [f"example://ct/{n}" for n in range(64)]


@pytest.mark.parametrize("series_id", list(COUNTS))
def test_series_are_ordered_along_the_normal(series_id: str) -> None:
    ids = series(series_id)
    assert len(ids) == COUNTS[series_id]
    first = plane(ids[0])
    if first["image_position_patient"] is None:
        return
    normal = np.cross(first["row_cosines"], first["column_cosines"])
    distances = [float(np.dot(plane(i)["image_position_patient"], normal)) for i in ids]
    assert all(b > a for a, b in itertools.pairwise(distances))


@pytest.mark.parametrize(
    "series_id", ["example://nope", "example://ct/3", "example://", "wadors:http://h/s", "", "example:ct"]
)
def test_other_series_ids_are_left_to_other_plugins(series_id: str) -> None:
    assert plugin.loadstone_series_image_ids(series_id) is None


# -- errors ----------------------------------------------------------------------------
@pytest.mark.parametrize("image_id", BAD_IDS)
def test_bad_ids_raise_invalid_image_error(image_id: str) -> None:
    load_object = load_example(image_id, {})  # returns at once; the failure is in the result
    with pytest.raises(InvalidImageError) as raised:
        load_object.result(30)
    assert raised.value.image_id == image_id
    assert not isinstance(raised.value, (IndexError, KeyError))


# -- size and provenance -------------------------------------------------------------
def test_package_is_small() -> None:
    files = [f for f in PACKAGE_DIR.rglob("*") if f.is_file() and "__pycache__" not in f.parts]
    total = sum(f.stat().st_size for f in files)
    data = sum(f.stat().st_size for f in (PACKAGE_DIR / "_data").glob("*.b64"))
    assert data < 1_600_000 and total < 2_000_000, (data, total)
    assert sorted(f.name for f in (PACKAGE_DIR / "_data").glob("*.b64")) == ["color.b64", "ct.b64", "mr.b64"]


@pytest.fixture(scope="module")
def generator() -> ModuleType:
    if not GENERATOR.is_file():
        pytest.skip("the generator script is only in a source checkout")
    spec = importlib.util.spec_from_file_location("make_demo_data", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_embedded_data_is_what_the_generator_makes(generator: ModuleType) -> None:
    # Noise is clipped, so the noise-free phantoms bound the data whatever the RNG.
    ct = np.stack([hu(load(i)) for i in series("example://ct")])
    assert np.abs(ct - generator.clean_ct_hu()).max() <= generator.NOISE_CLIP * generator.CT_NOISE_HU + 1
    mr = np.stack([load(i).get_pixel_data().astype(np.float64) for i in series("example://mr")])
    bound = math.sqrt(2) * generator.NOISE_CLIP * generator.MR_NOISE + 1
    assert np.abs(mr - generator.clean_mr()).max() <= bound
    assert np.array_equal(load("example://color/0").get_pixel_data(), generator.make_color()[0])


# -- the core's loader contract ---------------------------------------------------------
_CONTRACT_INVALID = {
    "example://ct/64": InvalidImageError,
    "example://nope/0": InvalidImageError,
    "example://ct/x": InvalidImageError,
}


class TestDemoConformance(LoaderContract):
    loader = load_example
    has_metadata = True
    valid_ids: ClassVar[list[str]] = [
        "example://ct/0",
        "example://ct/63",
        "example://mr/31",
        "example://color/0",
    ]
    invalid_ids = _CONTRACT_INVALID


class TestDemoConformanceThroughDispatch(LoaderContract):
    loader = "example"
    valid_ids: ClassVar[list[str]] = ["example://ct/32", "EXAMPLE://MR/0", "example://color/0"]
    invalid_ids = _CONTRACT_INVALID
    has_metadata = True
    series_ids: ClassVar[list[str]] = list(SERIES_IDS)
    invalid_series_ids: ClassVar[dict[str, type[BaseException]]] = {
        "example://nope": loadstone.UnknownSchemeError}

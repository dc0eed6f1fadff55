"""The ``mpr:`` id grammar: what parses, and every way a typo is refused."""

from __future__ import annotations

import pytest

from loadstone import InvalidImageError
from loadstone_mpr import Source, parse_mpr_id
from loadstone_mpr._grammar import is_mpr_id, with_index


def test_readme_examples_parse() -> None:
    spec = parse_mpr_id("mpr:sagittal;index=64;series=example://ct")
    assert (spec.plane, spec.index, spec.source) == ("sagittal", 64, Source("series", "example://ct"))
    spec = parse_mpr_id("mpr:axial;position=-30.5;series=example://ct")
    assert (spec.plane, spec.position, spec.index) == ("axial", -30.5, None)
    spec = parse_mpr_id(
        "mpr:oblique;normal=0.3,0.2,0.93;point=0,0,-40;up=0,-1,0;size=256x128;spacing=0.8;slab=10;"
        "mode=mip;interp=linear;series=example://ct")
    assert spec.plane == "oblique"
    assert spec.normal == (0.3, 0.2, 0.93)
    assert spec.point == (0.0, 0.0, -40.0)
    assert spec.up == (0.0, -1.0, 0.0)
    assert spec.size == (256, 128)  # columns x rows
    assert spec.spacing == (0.8, 0.8)
    assert (spec.slab, spec.mode, spec.interp) == (10.0, "mip", "linear")


def test_defaults() -> None:
    spec = parse_mpr_id("mpr:coronal;series=example://ct")
    assert spec.index is None and spec.position is None and spec.size is None and spec.spacing is None
    assert (spec.slab, spec.mode, spec.interp) == (0.0, "mip", "linear")


@pytest.mark.parametrize("series", [
    "wadors:http://host:8042/dicom-web/studies/1.2.3/series/4.5.6",
    "wadouri:http://host/wado?requestType=WADO&studyUID=1&seriesUID=2&contentType=application%2Fdicom",
    "dicomfile:/data/ct series;with=odd;chars?x=1&y=2",
    "mpr:sagittal;series=example://ct",
])
def test_series_id_is_taken_verbatim(series: str) -> None:
    spec = parse_mpr_id(f"mpr:axial;slab=2;series={series}")
    assert spec.source == Source("series", series)
    assert spec.slab == 2.0


def test_volume_source() -> None:
    spec = parse_mpr_id("mpr:axial;index=3;volume=my volume;v=2")
    assert spec.source == Source("volume", "my volume;v=2")
    assert spec.source.key == "volume=my volume;v=2"


def test_case_and_aliases() -> None:
    spec = parse_mpr_id("MPR:Sagittal;INDEX=3;Interp=Nearest;Mode=MAX;slab=4;Series=example://ct")
    assert (spec.plane, spec.index, spec.interp, spec.mode) == ("sagittal", 3, "nearest", "mip")
    assert parse_mpr_id("mpr:axial;mode=min;series=a:b").mode == "minip"
    assert parse_mpr_id("mpr:axial;mode=avg;series=a:b").mode == "mean"
    assert parse_mpr_id("mpr:axial;size=64;series=a:b").size == (64, 64)
    assert parse_mpr_id("mpr:axial;spacing=0.5,0.7;series=a:b").spacing == (0.5, 0.7)


@pytest.mark.parametrize(("image_id", "says"), [
    ("mpr:axial;slice=3;series=example://ct", "unknown key 'slice'"),
    ("mpr:axial;indx=3;series=example://ct", "unknown key 'indx'"),
    ("mpr:axial;index=3;index=4;series=example://ct", "twice"),
    ("mpr:axial;index=3;position=2;series=example://ct", "not both"),
    ("mpr:axial;index=-1;series=example://ct", "whole number"),
    ("mpr:axial;index=1.5;series=example://ct", "whole number"),
    ("mpr:axial;position=abc;series=example://ct", "not a number"),
    ("mpr:axial;position=nan;series=example://ct", "finite"),
    ("mpr:axial;position=inf;series=example://ct", "finite"),
    ("mpr:axial;normal=0,0,1;series=example://ct", "oblique planes"),
    ("mpr:oblique;index=3;normal=0,0,1;series=example://ct", "point="),
    ("mpr:oblique;series=example://ct", "needs normal"),
    ("mpr:oblique;normal=0,1;series=example://ct", "three"),
    ("mpr:axial;size=0x10;series=example://ct", "at least 1x1"),
    ("mpr:axial;size=10x10x10;series=example://ct", "<columns>x<rows>"),
    ("mpr:axial;spacing=0;series=example://ct", "above 0"),
    ("mpr:axial;spacing=1,2,3;series=example://ct", "spacing"),
    ("mpr:axial;slab=-1;series=example://ct", ">= 0"),
    ("mpr:axial;mode=median;slab=3;series=example://ct", "mode="),
    ("mpr:axial;interp=cubic;series=example://ct", "interp="),
    ("mpr:axial;index=3", "no source"),
    ("mpr:axial", "no source"),
    ("mpr:axial;series=", "empty"),
    ("mpr:axial;index=;series=example://ct", "empty"),
    ("mpr:axial;index;series=example://ct", "not key=value"),
    ("mpr:transverse;series=example://ct", "unknown plane"),
    ("mpr:axial;series=no-scheme", "scheme:"),
])
def test_bad_ids_are_refused(image_id: str, says: str) -> None:
    with pytest.raises(InvalidImageError) as caught:
        parse_mpr_id(image_id)
    assert says in str(caught.value)
    assert caught.value.image_id == image_id


def test_is_mpr_id() -> None:
    assert is_mpr_id("mpr:axial;series=a:b")
    assert is_mpr_id("MPR:axial;series=a:b")
    assert not is_mpr_id("mprx:axial")
    assert not is_mpr_id("example://ct/1")
    assert not is_mpr_id(None)


def test_with_index_keeps_everything_else() -> None:
    stack = "mpr:Sagittal;slab=2;series=wadors:http://h/s?a=1;b=2"
    assert with_index(stack, 7) == "mpr:Sagittal;index=7;slab=2;series=wadors:http://h/s?a=1;b=2"
    assert parse_mpr_id(with_index(stack, 7)).index == 7

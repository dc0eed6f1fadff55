"""``loadstone_web.config``: validation, overrides, per-load options, packaging metadata."""

from __future__ import annotations

from importlib.metadata import distribution, entry_points
from pathlib import Path

import pytest

import loadstone
from loadstone_web import DEFAULT_FORMATS, DEFAULT_MAX_PIXELS, config
from loadstone_web.loader import settings_for
from loadstone_web.plugin import loadstone_image_loaders, loadstone_plugin_details


def test_defaults() -> None:
    settings = config.snapshot()
    assert settings.formats == DEFAULT_FORMATS == {"PNG", "JPEG"}
    assert settings.max_pixels == DEFAULT_MAX_PIXELS == 89_478_485
    assert settings.file_root is None and settings.allow_any_file is False
    assert settings.strict_content_type is False and settings.apply_exif_orientation is True
    assert "JPEG" in repr(config)


def test_formats_are_normalised_and_validated() -> None:
    config.formats = ["jpg", "Png", "tif"]
    assert config.formats == {"JPEG", "PNG", "TIFF"}
    config.enable("gif", "WEBP")
    config.disable("tiff")
    assert config.formats == {"JPEG", "PNG", "GIF", "WEBP"}
    with pytest.raises(ValueError, match="unknown image format 'svg'"):
        config.formats = ["svg"]
    with pytest.raises(ValueError):
        config.enable("heic")


def test_values_are_validated(tmp_path: Path) -> None:
    for bad in (0, -1, True, 1.5, "10"):
        with pytest.raises(ValueError):
            config.max_pixels = bad
        with pytest.raises(ValueError):
            config.max_bytes = bad
    with pytest.raises(ValueError, match="absolute"):
        config.file_root = "relative/dir"
    config.file_root = str(tmp_path)
    assert config.file_root == tmp_path
    with pytest.raises(AttributeError, match=r"no setting 'max_pixel'"):
        config.max_pixel = 5
    with pytest.raises(AttributeError):
        config.update(nope=1)
    with pytest.raises(TypeError):
        config.headers = "Authorization: x"
    with pytest.raises(TypeError):
        config.before_send = "not callable"


def test_override_is_undone() -> None:
    with config.override(formats={"PNG"}, strict_content_type=True):
        assert config.formats == {"PNG"} and config.strict_content_type
    assert config.formats == DEFAULT_FORMATS and not config.strict_content_type


def test_per_load_options() -> None:
    settings = settings_for({"formats": ["gif"], "max_pixels": 10, "max_bytes": 20, "headers": {"a": "b"}})
    assert (settings.formats, settings.max_pixels, settings.max_bytes) == ({"GIF"}, 10, 20)
    assert settings_for({}) is config.snapshot()
    with pytest.raises(ValueError):
        settings_for({"max_pixels": "many"})


def test_bad_option_is_a_typed_error() -> None:
    with pytest.raises(loadstone.ImageLoadError, match="bad load option"):
        loadstone.load_image("http://127.0.0.1:9/a.png", max_pixels=-3).result(10)


def test_hooks_and_details(tmp_path: Path) -> None:
    loaders = loadstone_image_loaders()
    assert set(loaders) == {"http", "https", "web"}
    assert loadstone_plugin_details()["web:file:"] == "disabled"
    config.file_root = tmp_path
    assert loadstone_plugin_details()["web:file:"] == f"under {tmp_path}"


def test_distribution_metadata() -> None:
    dist = distribution("loadstone-web")
    assert dist.version == "0.1.0"
    assert dist.metadata["License-Expression"] == "MIT"
    requires = " ".join(dist.requires or [])
    for name in ("loadstone", "numpy", "Pillow>=10"):
        assert name in requires
    (point,) = [ep for ep in entry_points(group="loadstone") if ep.name == "web"]
    assert point.value == "loadstone_web.plugin"
    import loadstone_web

    assert loadstone_web.__file__ is not None
    assert (Path(loadstone_web.__file__).parent / "py.typed").exists()

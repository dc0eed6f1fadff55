"""Dispatch of an image id to its scheme's loader."""

from __future__ import annotations

import pytest

import loadstone
from loadstone import (
    ImageLoadError,
    ImageLoadObject,
    InvalidImageIdError,
    PluginError,
    UnknownSchemeError,
)


@pytest.fixture
def recording_loader(make_image):
    """A raw loader that records (image_id, options) and returns a finished load."""
    calls: list[tuple[str, dict]] = []

    def loader(image_id, options):
        calls.append((image_id, dict(options)))
        return ImageLoadObject.from_image(make_image(image_id))

    loader.calls = calls
    return loader


def test_scheme_is_matched_case_insensitively(register, recording_loader, unique_scheme) -> None:
    scheme = unique_scheme("case")
    register(recording_loader, scheme.upper())
    for image_id in (f"{scheme}:a", f"{scheme.upper()}:b", f"{scheme.capitalize()}:c"):
        assert loadstone.load_image(image_id).result(timeout=5).image_id == image_id
    assert [call[0] for call in recording_loader.calls] == [f"{scheme}:a", f"{scheme.upper()}:b",
                                                            f"{scheme.capitalize()}:c"]
    assert loadstone.scheme_of(f"{scheme.upper()}://x:y") == scheme


def test_the_whole_image_id_reaches_the_loader(register, recording_loader) -> None:
    scheme = register(recording_loader)
    image_id = f"{scheme}:http://host:8080/a?b=c:d"
    loadstone.load_image(image_id).result(timeout=5)
    assert recording_loader.calls[0][0] == image_id


def test_unknown_scheme_lists_installed_schemes_and_suggests_a_distribution(
    no_plugins, register, recording_loader
) -> None:
    mine = register(recording_loader)
    with pytest.raises(UnknownSchemeError) as caught:
        loadstone.load_image("wadors:http://host/dicom-web/studies/1/series/2/instances/3/frames/1")
    error = caught.value
    assert not isinstance(error, InvalidImageIdError)
    assert error.scheme == "wadors"
    assert error.suggestion == "loadstone-wado"
    assert mine in error.installed
    assert "loadstone-wado" in str(error)
    assert mine in str(error)
    assert error.image_id.startswith("wadors:")
    with pytest.raises(UnknownSchemeError) as caught:
        loadstone.load_and_cache_image("WADORS:x")
    assert caught.value.suggestion == "loadstone-wado"


def test_unknown_scheme_without_a_known_distribution(no_plugins) -> None:
    with pytest.raises(UnknownSchemeError) as caught:
        loadstone.load_image("nosuchscheme:1")
    assert caught.value.suggestion is None
    assert "pip install" not in str(caught.value)
    assert caught.value.installed == ()
    assert "none" in str(caught.value)
    assert "nosuchscheme" not in loadstone.cache


@pytest.mark.parametrize("bad", ["", 123, None, "noscheme", ":abc", b"bytes:1"])
@pytest.mark.parametrize("api", ["load_image", "load_and_cache_image"])
def test_invalid_image_ids(bad, api) -> None:
    with pytest.raises(InvalidImageIdError) as caught:
        getattr(loadstone, api)(bad)
    error = caught.value
    assert isinstance(error, UnknownSchemeError)
    assert isinstance(error, ValueError)
    assert isinstance(error, TypeError)
    assert isinstance(error, loadstone.LoadstoneError)
    assert len(loadstone.cache) == 0


def test_register_unknown_image_loader(no_plugins, recording_loader) -> None:
    assert loadstone.register_unknown_image_loader(recording_loader) is None
    image = loadstone.load_image("whatever:1").result(timeout=5)
    assert image.image_id == "whatever:1"
    assert recording_loader.calls[0][0] == "whatever:1"

    def other(image_id, options):
        return recording_loader(image_id, options)

    assert loadstone.register_unknown_image_loader(other) is recording_loader
    assert loadstone.register_unknown_image_loader(None) is other
    with pytest.raises(UnknownSchemeError):
        loadstone.load_image("whatever:2")


def test_unknown_loader_does_not_take_registered_schemes(no_plugins, register, make_image) -> None:
    used: list[str] = []

    def known(image_id, options):
        used.append("known")
        return ImageLoadObject.from_image(make_image(image_id))

    def fallback(image_id, options):
        used.append("fallback")
        return ImageLoadObject.from_image(make_image(image_id))

    scheme = register(known)
    loadstone.register_unknown_image_loader(fallback)
    loadstone.load_image(f"{scheme}:1").result(timeout=5)
    loadstone.load_image("elsewhere:1").result(timeout=5)
    assert used == ["known", "fallback"]


def test_registration_validates_arguments() -> None:
    with pytest.raises(TypeError):
        loadstone.register_image_loader("okscheme", "not callable")
    with pytest.raises(ValueError):
        loadstone.register_image_loader("bad scheme", lambda i, o: None)
    with pytest.raises(ValueError):
        loadstone.register_image_loader("1abc", lambda i, o: None)
    with pytest.raises(TypeError):
        loadstone.register_unknown_image_loader(42)


class _SchemePlugin:
    def __init__(self, scheme, loader):
        self.scheme = scheme
        self.loader = loader

    @loadstone.hookimpl
    def loadstone_image_loaders(self):
        return {self.scheme: self.loader}


def test_user_loader_wins_over_a_plugin(fresh_registry, unique_scheme, make_image) -> None:
    scheme = unique_scheme("win")
    used: list[str] = []

    def plugin_loader(image_id, options):
        used.append("plugin")
        return ImageLoadObject.from_image(make_image(image_id))

    def user_loader(image_id, options):
        used.append("user")
        return ImageLoadObject.from_image(make_image(image_id))

    info = loadstone.register_plugin(_SchemePlugin(scheme, plugin_loader), f"plug-{scheme}")
    assert info.status == "loaded"
    assert info.schemes == (scheme,)
    loadstone.load_image(f"{scheme}:1").result(timeout=5)
    loadstone.register_image_loader(scheme, user_loader)
    loadstone.load_image(f"{scheme}:2").result(timeout=5)
    assert used == ["plugin", "user"]
    # The plugin is back once the user's registration is gone.
    assert loadstone.unregister_image_loader(scheme) is True
    loadstone.load_image(f"{scheme}:3").result(timeout=5)
    assert used == ["plugin", "user", "plugin"]


def test_user_loader_registered_before_the_plugin_still_wins(fresh_registry, unique_scheme,
                                                            make_image) -> None:
    scheme = unique_scheme("early")
    used: list[str] = []

    def make(name):
        def loader(image_id, options):
            used.append(name)
            return ImageLoadObject.from_image(make_image(image_id))
        return loader

    loadstone.register_image_loader(scheme, make("user"))
    loadstone.register_plugin(_SchemePlugin(scheme, make("plugin")), f"plug-{scheme}")
    loadstone.load_image(f"{scheme}:1").result(timeout=5)
    assert used == ["user"]


def test_options_reach_the_loader_unknown_ones_too(register, recording_loader) -> None:
    scheme = register(recording_loader)
    loadstone.load_image(f"{scheme}:1", priority=3, request_type="thumbnail", timeout=12.5,
                         headers={"Authorization": "Bearer x"}, frame_cache="off", custom=[1, 2])
    options = recording_loader.calls[0][1]
    assert options["priority"] == 3
    assert options["request_type"] == "thumbnail"
    assert options["timeout"] == 12.5
    assert options["headers"] == {"Authorization": "Bearer x"}
    assert options["frame_cache"] == "off"
    assert options["custom"] == [1, 2]
    loadstone.load_and_cache_image(f"{scheme}:2", my_option=True).result(timeout=5)
    assert recording_loader.calls[1][1] == {"my_option": True}


def test_no_options_gives_the_loader_an_empty_mapping(register, recording_loader) -> None:
    scheme = register(recording_loader)
    loadstone.load_image(f"{scheme}:1").result(timeout=5)
    assert recording_loader.calls[0][1] == {}


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"priority": "high"}, TypeError),
        ({"priority": 1.5}, TypeError),
        ({"timeout": -1}, ValueError),
        ({"timeout": 0}, ValueError),
        ({"request_type": "urgent"}, ValueError),
        ({"headers": [("a", "b")]}, TypeError),
    ],
)
def test_invalid_options_are_rejected_at_once(register, recording_loader, options, error) -> None:
    scheme = register(recording_loader)
    with pytest.raises(error):
        loadstone.load_image(f"{scheme}:1", **options)
    assert recording_loader.calls == []


def test_a_raw_loader_that_raises_fails_only_its_load(register) -> None:
    def broken(image_id, options):
        raise KeyError("oops")

    scheme = register(broken)
    load_object = loadstone.load_and_cache_image(f"{scheme}:1")  # does not raise
    with pytest.raises(ImageLoadError) as caught:
        load_object.result(timeout=5)
    assert isinstance(caught.value.__cause__, KeyError)
    assert caught.value.image_id == f"{scheme}:1"
    assert f"{scheme}:1" not in loadstone.cache


@pytest.mark.parametrize("returned", [None, "image", 42])
def test_a_raw_loader_returning_something_else_fails_with_plugin_error(register, returned,
                                                                       make_image) -> None:
    def wrong(image_id, options):
        return returned

    scheme = register(wrong)
    with pytest.raises(PluginError) as caught:
        loadstone.load_image(f"{scheme}:1").result(timeout=5)
    assert caught.value.image_id == f"{scheme}:1"
    assert "ImageLoadObject" in str(caught.value)


def test_a_raw_loader_returning_an_image_instead_of_a_load_object(register, make_image) -> None:
    scheme = register(lambda image_id, options: make_image(image_id))
    with pytest.raises(PluginError):
        loadstone.load_image(f"{scheme}:1").result(timeout=5)


def test_a_raw_loader_whose_promise_yields_a_non_image(register) -> None:
    def loader(image_id, options):
        load_object = ImageLoadObject(image_id=image_id)
        load_object.promise.set_result({"not": "an image"})
        return load_object

    scheme = register(loader)
    with pytest.raises(PluginError):
        loadstone.load_and_cache_image(f"{scheme}:1").result(timeout=5)
    assert f"{scheme}:1" not in loadstone.cache


def test_a_raw_loader_failing_with_a_foreign_exception_is_typed(register) -> None:
    def loader(image_id, options):
        load_object = ImageLoadObject(image_id=image_id)
        load_object.promise.set_exception(OSError(5, "I/O error"))
        return load_object

    scheme = register(loader)
    with pytest.raises(ImageLoadError) as caught:
        loadstone.load_image(f"{scheme}:1").result(timeout=5)
    assert isinstance(caught.value.__cause__, OSError)

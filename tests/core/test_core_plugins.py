"""Plugin discovery through real entry points (fake distributions on sys.path, no pip)."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import loadstone
from loadstone import ImageLoadObject, LoadstoneWarning, PluginError, UnknownSchemeError

PLUGIN_SOURCE = """
import numpy as np

import loadstone


@loadstone.image_loader
def _load(image_id, options):
    return loadstone.Image.from_array(image_id, np.full((2, 3), VALUE, np.uint8))


@loadstone.hookimpl
def loadstone_image_loaders():
    return {"SCHEME": _load}


@loadstone.hookimpl
def loadstone_series_image_ids(series_id):
    if series_id.startswith("SCHEME-series:"):
        count = int(series_id.split(":", 1)[1])
        return [f"SCHEME:{i}" for i in range(count)]
    return None


def _provider(module, image_id):
    if module == "imagePlaneModule" and image_id.startswith("SCHEME:"):
        return {"pixel_spacing": [0.5, 0.5], "from": "MODULE"}
    return None


@loadstone.hookimpl
def loadstone_metadata_providers():
    return [(_provider, 3)]
"""


def plugin_source(scheme: str, value: int = 7, module: str = "") -> str:
    return (PLUGIN_SOURCE.replace("SCHEME", scheme).replace("VALUE", str(value))
            .replace("MODULE", module))


def infos_by_name() -> dict[str, loadstone.PluginInfo]:
    return {info.name: info for info in loadstone.plugins()}


@pytest.fixture
def fakeplug(fake_dists):
    """Distribution ``fakeplug``, entry point ``fakeplug = fakeplug_mod_…``: returns (scheme, module)."""
    module = fake_dists.module_name("fakeplug_mod")
    scheme = f"fake{fake_dists.token}"
    fake_dists.add("fakeplug", {"fakeplug": module}, {module: plugin_source(scheme, module=module)})
    return scheme, module


def test_a_scheme_loads_through_discovery_alone(fakeplug) -> None:
    scheme, module = fakeplug
    assert module not in sys.modules  # discovery is lazy
    image = loadstone.load_and_cache_image(f"{scheme}:1").result(timeout=10)
    assert module in sys.modules
    assert image.image_id == f"{scheme}:1"
    assert image.pixel_data.tolist() == [[7, 7, 7], [7, 7, 7]]
    info = infos_by_name()["fakeplug"]
    assert info.distribution == "fakeplug"
    assert info.version == "1.0"
    assert info.schemes == (scheme,)
    assert info.status == "loaded" and info.loaded
    assert scheme in loadstone.schemes()
    # Upper case in the id still finds the plugin's scheme.
    assert loadstone.load_image(f"{scheme.upper()}:2").result(timeout=10).rows == 2


def test_plugin_metadata_providers_are_registered(fakeplug) -> None:
    scheme, module = fakeplug
    assert infos_by_name()["fakeplug"].loaded
    priorities = [priority for provider, priority in loadstone.metadata.providers()
                  if getattr(provider, "__module__", None) == module]
    assert priorities == [3]
    answer = loadstone.metadata.get("imagePlaneModule", f"{scheme}:1")
    assert answer == {"pixel_spacing": [0.5, 0.5], "from": module}
    assert loadstone.metadata.get("patientModule", f"{scheme}:1") is None


def test_metadata_first_rediscovers_after_reset(fakeplug) -> None:
    scheme, module = fakeplug
    loadstone.metadata.get("imagePlaneModule", "warmup:1")  # first metadata use in this process
    loadstone.testing.reset_plugins()
    answer = loadstone.metadata.get("imagePlaneModule", f"{scheme}:1")
    assert answer == {"pixel_spacing": [0.5, 0.5], "from": module}


def test_series_image_ids_through_the_plugin_hook(fakeplug) -> None:
    scheme, _ = fakeplug
    assert loadstone.series_image_ids(f"{scheme}-series:3") == [f"{scheme}:0", f"{scheme}:1", f"{scheme}:2"]
    with pytest.raises(UnknownSchemeError) as caught:
        loadstone.series_image_ids("noplugin-series:1")
    assert caught.value.image_id == "noplugin-series:1"
    assert "noplugin-series:1" in str(caught.value)
    with pytest.raises(loadstone.InvalidImageIdError):
        loadstone.series_image_ids("no scheme at all")


def _run_python(code: str, root, extra_env: dict[str, str] | None = None) -> dict:
    env = {key: value for key, value in os.environ.items() if not key.startswith("LOADSTONE_")}
    env["PYTHONPATH"] = str(root)
    env.update(extra_env or {})
    completed = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120, env=env,
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout.strip().splitlines()[-1])


def test_import_loadstone_imports_no_plugin_and_no_pluggy(fakeplug, fake_dists) -> None:
    _, module = fakeplug
    code = f"""
        import json, sys, warnings
        warnings.simplefilter("ignore")
        import loadstone

        def heavy():
            return sorted(
                name for name in sys.modules
                if name.split(".")[0] in ("pluggy", {module!r}, "PIL", "pydicom", "urllib3")
                or name.startswith("loadstone_")
            )

        at_import = heavy()
        plugins = {{info.name: info.status for info in loadstone.plugins()}}
        print(json.dumps({{"at_import": at_import, "plugins": plugins, "after": heavy()}}))
    """
    result = _run_python(code, fake_dists.root)
    assert result["at_import"] == []
    assert result["plugins"]["fakeplug"] == "loaded"
    assert module in result["after"] and "pluggy" in result["after"]


def test_asking_for_metadata_first_discovers_plugins(fakeplug, fake_dists) -> None:
    scheme, module = fakeplug
    code = f"""
        import json, warnings
        warnings.simplefilter("ignore")
        import loadstone
        print(json.dumps(loadstone.metadata.get("imagePlaneModule", "{scheme}:4")))
    """
    assert _run_python(code, fake_dists.root) == {"pixel_spacing": [0.5, 0.5], "from": module}


def test_a_plugin_that_fails_to_import_is_reported_and_the_rest_work(fakeplug, fake_dists) -> None:
    scheme, _ = fakeplug
    broken = fake_dists.module_name("brokenplug_mod")
    fake_dists.add("brokenplug", {"brokenplug": broken},
                   {broken: "raise RuntimeError('missing native library')\n"})
    with pytest.warns(LoadstoneWarning, match="brokenplug") as record:
        infos = infos_by_name()
    info = infos["brokenplug"]
    assert info.status.startswith("failed:")
    assert "RuntimeError" in info.status and "missing native library" in info.status
    assert not info.loaded
    assert info.schemes == ()
    assert any("missing native library" in str(w.message) for w in record)
    assert infos["fakeplug"].status == "loaded"
    assert loadstone.load_image(f"{scheme}:1").result(timeout=10).image_id == f"{scheme}:1"


GARBAGE = {
    "a list": "return [('SCHEME', _load)]",
    "a non-callable loader": "return {'SCHEME': 'not a loader'}",
    "an invalid scheme": "return {'SCHEME bad!': _load}",
    "an exception": "raise RuntimeError('hook exploded')",
}


@pytest.mark.parametrize("kind", [*GARBAGE, "a wrong hook signature"])
def test_a_plugin_breaking_the_hook_contract_is_failed_and_reported(fakeplug, fake_dists, kind) -> None:
    good_scheme, _ = fakeplug
    module = fake_dists.module_name("garbage_mod")
    scheme = f"garbage{fake_dists.token}"
    if kind in GARBAGE:
        hook = f"def loadstone_image_loaders():\n    {GARBAGE[kind].replace('SCHEME', scheme)}\n"
    else:
        hook = f"def loadstone_image_loaders(unexpected):\n    return {{'{scheme}': _load}}\n"
    source = f"import loadstone\n\ndef _load(image_id, options):\n    raise AssertionError\n\n" \
             f"@loadstone.hookimpl\n{hook}"
    fake_dists.add("garbageplug", {"garbageplug": module}, {module: source})
    with pytest.warns(LoadstoneWarning, match="garbageplug"):
        infos = infos_by_name()
    info = infos["garbageplug"]
    assert info.status.startswith("failed:"), info.status
    assert info.schemes == ()
    with pytest.raises(UnknownSchemeError):
        loadstone.load_image(f"{scheme}:1")
    assert infos["fakeplug"].status == "loaded"
    assert loadstone.load_image(f"{good_scheme}:1").result(timeout=10).image_id == f"{good_scheme}:1"


def test_a_scheme_claimed_twice_goes_to_the_first_entry_point_name(fake_dists) -> None:
    scheme = f"claimed{fake_dists.token}"
    first = fake_dists.module_name("aclaim_mod")
    second = fake_dists.module_name("bclaim_mod")
    # Distribution names sort the other way round: only the entry-point name decides.
    fake_dists.add("adist", {"bclaim": second}, {second: plugin_source(scheme, value=2)})
    fake_dists.add("zdist", {"aclaim": first}, {first: plugin_source(scheme, value=1)})
    for _ in range(2):  # the same winner on every discovery
        loadstone.testing.reset_plugins()
        with pytest.warns(LoadstoneWarning, match=scheme) as record:
            infos = infos_by_name()
        message = next(str(w.message) for w in record if scheme in str(w.message))
        assert "aclaim" in message and "bclaim" in message
        assert infos["aclaim"].schemes == (scheme,)
        assert infos["bclaim"].schemes == ()
        assert infos["bclaim"].status == "loaded"
        image = loadstone.load_image(f"{scheme}:1").result(timeout=10)
        assert int(image.pixel_data[0, 0]) == 1


def test_plugins_report_missing_dependencies(fake_dists) -> None:
    module = fake_dists.module_name("needy_mod")
    scheme = f"needy{fake_dists.token}"
    missing = f"loadstone-test-absent-{fake_dists.token}"
    fake_dists.add("needyplug", {"needyplug": module}, {module: plugin_source(scheme)},
                   requires=("numpy>=1.0", f"{missing}>=2; extra == 'codecs'"))
    info = infos_by_name()["needyplug"]
    assert info.status == "loaded"
    assert info.missing_dependencies == (missing,)


@pytest.mark.parametrize("disable", ["fakeplug", "FakePlug", "other, fakeplug-dist ,x"])
def test_disable_plugins_by_name_or_distribution(monkeypatch, fake_dists, disable) -> None:
    module = fake_dists.module_name("fakeplug_mod")
    scheme = f"fake{fake_dists.token}"
    fake_dists.add("fakeplug-dist", {"fakeplug": module}, {module: plugin_source(scheme)})
    monkeypatch.setenv("LOADSTONE_DISABLE_PLUGINS", disable)
    info = infos_by_name()["fakeplug"]
    assert info.status == "disabled"
    assert info.schemes == ()
    assert info.distribution == "fakeplug-dist"
    assert module not in sys.modules
    with pytest.raises(UnknownSchemeError):
        loadstone.load_image(f"{scheme}:1")
    assert scheme not in loadstone.schemes()


@pytest.mark.parametrize("value", ["1", "true", "yes"])
def test_disable_plugin_autoload(monkeypatch, fakeplug, value) -> None:
    scheme, module = fakeplug
    monkeypatch.setenv("LOADSTONE_DISABLE_PLUGIN_AUTOLOAD", value)
    assert loadstone.plugins() == []
    with pytest.raises(UnknownSchemeError):
        loadstone.load_image(f"{scheme}:1")
    assert module not in sys.modules
    # Hand registration still works without autoload.
    imported = __import__(module)
    info = loadstone.register_plugin(imported, "by-hand")
    assert info.schemes == (scheme,)
    assert [p.name for p in loadstone.plugins()] == ["by-hand"]
    assert loadstone.load_image(f"{scheme}:1").result(timeout=10).image_id == f"{scheme}:1"


def test_autoload_flag_zero_keeps_discovery_on(monkeypatch, fakeplug) -> None:
    monkeypatch.setenv("LOADSTONE_DISABLE_PLUGIN_AUTOLOAD", "0")
    assert infos_by_name()["fakeplug"].status == "loaded"


# -- plugins registered by hand -----------------------------------------------------------
class _SeriesPlugin:
    def __init__(self, prefix, answer):
        self.prefix = prefix
        self.answer = answer

    @loadstone.hookimpl
    def loadstone_series_image_ids(self, series_id):
        if not series_id.startswith(self.prefix):
            return None
        if isinstance(self.answer, BaseException):
            raise self.answer
        return self.answer


def test_series_image_ids_from_a_registered_plugin(fresh_registry, unique_scheme) -> None:
    scheme = unique_scheme("series")
    loadstone.register_plugin(_SeriesPlugin(f"{scheme}:", (f"{scheme}:a", f"{scheme}:b")), scheme)
    assert loadstone.series_image_ids(f"{scheme}:study/1") == [f"{scheme}:a", f"{scheme}:b"]
    with pytest.raises(UnknownSchemeError):
        loadstone.series_image_ids(f"other{scheme}:1")


def test_a_series_hook_that_raises_gives_plugin_error(fresh_registry, unique_scheme) -> None:
    scheme = unique_scheme("series")
    loadstone.register_plugin(_SeriesPlugin(f"{scheme}:", KeyError("no such series")), scheme)
    with pytest.raises(PluginError) as caught:
        loadstone.series_image_ids(f"{scheme}:1")
    assert isinstance(caught.value.__cause__, KeyError)
    assert caught.value.image_id == f"{scheme}:1"


def test_register_plugin_twice_under_one_name_is_an_error(fresh_registry, unique_scheme) -> None:
    name = unique_scheme("twice")
    loadstone.register_plugin(_SeriesPlugin("never:", None), name)
    with pytest.raises(PluginError):
        loadstone.register_plugin(_SeriesPlugin("never:", None), name)


class _DetailsPlugin:
    def __init__(self, scheme):
        self.scheme = scheme

    @loadstone.hookimpl
    def loadstone_image_loaders(self):
        return {self.scheme: lambda image_id, options: ImageLoadObject.from_image(
            loadstone.Image.from_array(image_id, np.zeros((1, 1), np.uint8)))}

    @loadstone.hookimpl
    def loadstone_plugin_details(self):
        return {"codecs": "raw", "frames": 1}


def test_register_plugin_reports_schemes_and_details(fresh_registry, unique_scheme) -> None:
    scheme = unique_scheme("details")
    info = loadstone.register_plugin(_DetailsPlugin(scheme), f"details-{scheme}")
    assert info.schemes == (scheme,)
    assert dict(info.details) == {}  # display-only hooks run only when details are asked for
    detailed = {i.name: i for i in loadstone.plugins(details=True)}[f"details-{scheme}"]
    assert dict(detailed.details) == {"codecs": "raw", "frames": "1"}
    listed = infos_by_name()[f"details-{scheme}"]
    assert listed.status == "loaded"
    assert listed.distribution is None
    assert loadstone.load_image(f"{scheme}:1").result(timeout=5).rows == 1


GATE_SOURCE = """
import threading

entered = threading.Event()
release = threading.Event()
"""


def test_a_load_while_another_thread_discovers_waits_for_discovery(fake_dists) -> None:
    scheme = f"slow{fake_dists.token}"
    gate_name = fake_dists.module_name("gate")
    module = fake_dists.module_name("slowplug_mod")
    slow_source = (f"import {gate_name} as _gate\n_gate.entered.set()\nassert _gate.release.wait(30)\n"
                   + plugin_source(scheme))
    fake_dists.add("slowplug", {"slowplug": module}, {gate_name: GATE_SOURCE, module: slow_source})
    gate = importlib.import_module(gate_name)
    discovering = threading.Thread(target=loadstone.plugins)  # first use: discovers, stuck in the import
    discovering.start()
    try:
        assert gate.entered.wait(10)
        # A correct registry makes this load wait for the discovery, which only this timer can
        # end while the test thread is blocked; the buggy one fails at once, long before it fires.
        fallback = threading.Timer(1.0, gate.release.set)
        fallback.start()
        try:
            image = loadstone.load_image(f"{scheme}:1").result(timeout=10)
        finally:
            fallback.cancel()
            fallback.join(5)
    finally:
        gate.release.set()
        discovering.join(10)
    assert not discovering.is_alive()
    assert image.image_id == f"{scheme}:1"

"""Static, lazy discovery: ``loadstone.schemes`` entry points say which plugin serves a scheme.

Fake distributions (``fake_dists``) declare their schemes as pip-installed
ones do; a plugin module is imported only when one of its schemes is asked
for, and a plugin that declares nothing when a scheme nobody declared is.
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from typing import Any

import pytest

import loadstone
from loadstone import LoadstoneWarning, UnknownSchemeError

PLUGIN = """
import numpy as np
import loadstone

@loadstone.image_loader
def _load(image_id, options):
    return loadstone.Image.from_array(image_id, np.zeros((1, 2), np.uint8))

@loadstone.hookimpl
def loadstone_image_loaders():
    return {SCHEMES}

def _provider(module, image_id):
    return {"from": __name__} if module == "generalSeriesModule" else None

@loadstone.hookimpl
def loadstone_metadata_providers():
    return [(_provider, 0)]

@loadstone.hookimpl
def loadstone_series_image_ids(series_id):
    scheme, _, rest = series_id.partition(":")
    if scheme not in {SCHEMES} or not rest.startswith("series/"):
        return None
    return [f"{scheme}:{index}" for index in range(int(rest[len("series/"):]))]
"""


def plugin(*schemes: str, before: str = "") -> str:
    mapping = "{" + ", ".join(f"{scheme!r}: _load" for scheme in schemes) + "}"
    return before + PLUGIN.replace("{SCHEMES}", mapping)


@pytest.fixture
def three(fake_dists: Any) -> dict[str, tuple[str, str]]:
    """Plugins ``alpha`` (declared by distribution), ``beta`` (by entry-point name), ``gamma`` (undeclared).

    Returns name -> (scheme, module).
    """
    made = {}
    for name, declare_by in (("alpha", "distribution"), ("beta", "entry point"), ("gamma", None)):
        module = fake_dists.module_name(f"{name}_mod")
        scheme = f"{name}{fake_dists.token}"
        dist = f"{name}-dist"
        owner = dist if declare_by == "distribution" else name
        fake_dists.add(dist, {name: module}, {module: plugin(scheme)},
                       schemes={scheme: owner} if declare_by else None)
        made[name] = (scheme, module)
    return made


def imported(made: dict[str, tuple[str, str]]) -> set[str]:
    return {name for name, (_, module) in made.items() if module in sys.modules}


def test_schemes_are_known_without_importing_any_plugin(three: dict[str, tuple[str, str]]) -> None:
    listed = loadstone.schemes()
    assert three["alpha"][0] in listed and three["beta"][0] in listed
    assert three["gamma"][0] not in listed  # it declares nothing: known only once imported
    assert imported(three) == set()


@pytest.mark.parametrize("name", ["alpha", "beta"])
def test_a_declared_scheme_imports_its_plugin_only(three: dict[str, tuple[str, str]], name: str) -> None:
    scheme, _ = three[name]
    assert loadstone.load_image(f"{scheme}:1").result(10).image_id == f"{scheme}:1"
    assert imported(three) == {name}


def test_metadata_and_series_of_a_declared_scheme_import_its_plugin_only(
        three: dict[str, tuple[str, str]]) -> None:
    scheme, module = three["alpha"]
    assert loadstone.metadata.get("generalSeriesModule", f"{scheme}:1") == {"from": module}
    assert imported(three) == {"alpha"}
    scheme, _ = three["beta"]
    assert loadstone.series_image_ids(f"{scheme}:series/2") == [f"{scheme}:0", f"{scheme}:1"]
    assert imported(three) == {"alpha", "beta"}


def test_an_undeclared_scheme_imports_the_plugins_that_declare_nothing(
        three: dict[str, tuple[str, str]]) -> None:
    scheme, _ = three["gamma"]
    assert loadstone.load_image(f"{scheme}:1").result(10).image_id == f"{scheme}:1"
    assert imported(three) == {"gamma"}
    assert scheme in loadstone.schemes()
    with pytest.raises(UnknownSchemeError):
        loadstone.load_image("nobodysscheme:1")
    assert imported(three) == {"gamma"}  # the declared plugins stay unimported


def test_a_declared_plugin_that_fails_to_import_says_why(fake_dists: Any) -> None:
    module = fake_dists.module_name("broken_mod")
    scheme = f"broken{fake_dists.token}"
    source = plugin(scheme, before="raise ImportError('libfoo.so: cannot open shared object')\n")
    fake_dists.add("broken-dist", {"broken": module}, {module: source}, schemes={scheme: "broken"})
    with pytest.warns(LoadstoneWarning, match="broken"), pytest.raises(UnknownSchemeError) as caught:
        loadstone.load_image(f"{scheme}:1")
    message = str(caught.value)
    assert "broken-dist" in message and "failed to load" in message
    assert "libfoo.so: cannot open shared object" in message
    assert "pip install" not in message
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said once: asking again neither warns nor imports again
        with pytest.raises(UnknownSchemeError, match=r"libfoo\.so"):
            loadstone.load_image(f"{scheme}:2")
    assert scheme not in loadstone.schemes()
    assert {info.name: info.status for info in loadstone.plugins()}["broken"].startswith("failed: import")


def test_a_disabled_declared_plugin_says_so(fake_dists: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    module = fake_dists.module_name("off_mod")
    scheme = f"off{fake_dists.token}"
    fake_dists.add("off-dist", {"off": module}, {module: plugin(scheme)}, schemes={scheme: "off"})
    monkeypatch.setenv("LOADSTONE_DISABLE_PLUGINS", "off")
    with pytest.raises(UnknownSchemeError, match="disabled") as caught:
        loadstone.load_image(f"{scheme}:1")
    assert "pip install" not in str(caught.value)
    assert module not in sys.modules


def test_an_unknown_scheme_close_to_an_installed_one_suggests_it(three: dict[str, tuple[str, str]]) -> None:
    scheme, _ = three["alpha"]
    typo = scheme[:-1] + ("x" if scheme[-1] != "x" else "y")
    with pytest.raises(UnknownSchemeError, match=f"did you mean '{scheme}'") as caught:
        loadstone.load_image(f"{typo}:1")
    assert caught.value.scheme == typo
    assert imported(three) == {"gamma"}  # only the undeclared plugin was looked into


def test_a_known_scheme_whose_plugin_is_not_installed_names_the_distribution(
        loadstone_without_plugins: None) -> None:
    with pytest.raises(UnknownSchemeError, match="loadstone-base64-demo") as caught:
        loadstone.load_image("example://ct/0")
    assert caught.value.suggestion == "loadstone-base64-demo"


def test_an_example_id_imports_the_demo_plugin_only() -> None:
    """With every plugin installed, the first ``example:`` load imports the demo plugin and no other."""
    if "example" not in loadstone.schemes():
        pytest.skip("loadstone-base64-demo is not installed")
    code = ("import sys, loadstone\n"
            "loadstone.load_image('example://ct/0').result(30)\n"
            "print(sorted({name.split('.')[0] for name in sys.modules if name.startswith('loadstone_')}))\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOADSTONE_")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['loadstone_base64_demo']"

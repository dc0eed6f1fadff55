"""``loadstone.toolkit.lazy_exports``: a package's names imported on first access (PEP 562)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """A package ``lazypkg`` exporting ``value`` from its submodule ``heavy``, lazily."""
    folder = tmp_path / "lazypkg"
    folder.mkdir()
    (folder / "__init__.py").write_text(
        "from loadstone.toolkit import lazy_exports\n"
        "__getattr__, __dir__ = lazy_exports(__name__, {'value': '.heavy'})\n")
    (folder / "heavy.py").write_text("value = 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        yield importlib.import_module("lazypkg")
    finally:
        sys.modules.pop("lazypkg", None)
        sys.modules.pop("lazypkg.heavy", None)


def test_names_load_on_first_access_only(package: ModuleType) -> None:
    assert "lazypkg.heavy" not in sys.modules
    assert "value" in dir(package)
    assert package.value == 42
    assert "lazypkg.heavy" in sys.modules
    assert vars(package)["value"] == 42  # stored: later reads are plain attribute reads


def test_unknown_names_are_attribute_errors(package: ModuleType) -> None:
    with pytest.raises(AttributeError, match="'lazypkg' has no attribute 'nope'"):
        package.nope  # noqa: B018
    assert not hasattr(package, "other")

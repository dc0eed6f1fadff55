"""Public helpers for plugins that compose loads."""

from __future__ import annotations

import pytest

import loadstone
from loadstone import UnknownSchemeError


def test_get_image_loader_returns_the_dispatched_loader_case_insensitively() -> None:
    def loader(image_id, options):  # type: ignore[no-untyped-def]
        raise AssertionError("not called")

    loadstone.register_image_loader("composed", loader)
    assert loadstone.get_image_loader("COMPOSED") is loader
    with pytest.raises(UnknownSchemeError):
        loadstone.get_image_loader("nosuchscheme")


def test_use_load_context_makes_a_context_current() -> None:
    context = loadstone.LoadContext("ctx:1")
    assert loadstone.current_load() is None
    with loadstone.use_load_context(context):
        assert loadstone.current_load() is context
    assert loadstone.current_load() is None

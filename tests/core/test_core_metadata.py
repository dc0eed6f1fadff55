"""Metadata providers: priority order, first non-None answer, plugins' providers."""

from __future__ import annotations

import logging

import pytest

import loadstone
from loadstone import MetadataRegistry

METADATA = loadstone.metadata


def answering(answer, asked=None):
    def provider(module, image_id):
        if asked is not None:
            asked.append((provider.label, module, image_id))
        return answer(module, image_id) if callable(answer) else answer

    provider.label = repr(answer)
    return provider


def test_higher_priority_is_asked_first_and_first_non_none_wins(add_provider) -> None:
    asked: list = []
    low = add_provider(answering({"from": "low"}, asked), priority=-5)
    high = add_provider(answering(None, asked), priority=10)
    middle = add_provider(answering({"from": "middle"}, asked), priority=3)
    assert METADATA.get("imagePlaneModule", "meta:1") == {"from": "middle"}
    assert [label for label, _, _ in asked] == [high.label, middle.label]
    assert asked[0][1:] == ("imagePlaneModule", "meta:1")
    order = [provider for provider, _ in METADATA.providers() if provider in (low, high, middle)]
    assert order == [high, middle, low]


def test_equal_priorities_keep_insertion_order(add_provider) -> None:
    add_provider(answering("first"), priority=7)
    add_provider(answering("second"), priority=7)
    assert METADATA.get("generalSeriesModule", "meta:2") == "first"


def test_falsy_but_not_none_answers_win(add_provider) -> None:
    add_provider(answering({}), priority=100)
    add_provider(answering({"x": 1}), priority=50)
    assert METADATA.get("patientModule", "meta:3") == {}


def test_answers_may_depend_on_module_and_image_id(add_provider) -> None:
    def provider(module, image_id):
        if module == "imagePixelModule" and image_id.startswith("metaown:"):
            return {"rows": 2, "columns": 3}
        return None

    add_provider(provider)
    assert METADATA.get("imagePixelModule", "metaown:1") == {"rows": 2, "columns": 3}
    assert METADATA.get("imagePlaneModule", "metaown:1") is None
    assert METADATA("imagePixelModule", "metaown:9") == {"rows": 2, "columns": 3}


def test_remove_provider(add_provider) -> None:
    winner = add_provider(answering("winner"), priority=99)
    add_provider(answering("fallback"), priority=98)
    assert METADATA.get("voiLutModule", "meta:4") == "winner"
    assert METADATA.remove_provider(winner) is True
    assert METADATA.remove_provider(winner) is False
    assert METADATA.get("voiLutModule", "meta:4") == "fallback"


def test_re_adding_a_provider_changes_its_priority(add_provider) -> None:
    a = add_provider(answering("a"), priority=1)
    add_provider(answering("b"), priority=2)
    assert METADATA.get("sopCommonModule", "meta:5") == "b"
    add_provider(a, priority=3)
    assert METADATA.get("sopCommonModule", "meta:5") == "a"
    assert sum(provider is a for provider, _ in METADATA.providers()) == 1


def test_a_raising_provider_is_skipped_and_logged(add_provider, caplog) -> None:
    def broken(module, image_id):
        raise KeyError("no such tag")

    add_provider(broken, priority=1000)
    add_provider(answering("good"), priority=999)
    with caplog.at_level(logging.WARNING, logger="loadstone.metadata"):
        assert METADATA.get("modalityLutModule", "meta:6") == "good"
    assert any(record.name == "loadstone.metadata" for record in caplog.records)


def test_no_answer_is_none(add_provider) -> None:
    add_provider(answering(None))
    assert METADATA.get("transferSyntax", "nobody-knows:1") is None


def test_add_provider_needs_a_callable() -> None:
    with pytest.raises(TypeError):
        METADATA.add_provider("not callable")


def test_a_private_registry() -> None:
    registry = MetadataRegistry()
    assert registry.get("imagePlaneModule", "x:1") is None
    registry.add_provider(lambda module, image_id: {"m": module}, 0)
    assert registry.get("imagePlaneModule", "x:1") == {"m": "imagePlaneModule"}
    registry.clear()
    assert list(registry.providers()) == []


class _MetadataPlugin:
    def __init__(self, high, plain):
        self.high = high
        self.plain = plain

    @loadstone.hookimpl
    def loadstone_metadata_providers(self):
        return [(self.high, 5), self.plain]


def test_plugin_providers_through_register_plugin(fresh_registry, add_provider, unique_scheme) -> None:
    name = unique_scheme("metaplugin")
    image_id = f"{name}:1"

    def high(module, image_id_):
        return {"source": "plugin-high"} if image_id_ == image_id and module == "imagePlaneModule" else None

    def plain(module, image_id_):
        return {"source": "plugin-plain"} if image_id_ == image_id else None

    info = loadstone.register_plugin(_MetadataPlugin(high, plain), name)
    assert info.status == "loaded"
    assert info.schemes == ()
    priorities = {provider: priority for provider, priority in METADATA.providers()}
    assert priorities[high] == 5 and priorities[plain] == 0
    assert METADATA.get("imagePlaneModule", image_id) == {"source": "plugin-high"}
    assert METADATA.get("patientModule", image_id) == {"source": "plugin-plain"}
    # A user provider with a higher priority overrides the plugin's.
    add_provider(answering({"source": "user"}), priority=6)
    assert METADATA.get("imagePlaneModule", image_id) == {"source": "user"}
    # Forgetting the plugins removes their providers.
    loadstone.testing.reset_plugins()
    remaining = [provider for provider, _ in METADATA.providers()]
    assert high not in remaining and plain not in remaining


class _BadMetadataPlugin:
    @loadstone.hookimpl
    def loadstone_metadata_providers(self):
        return [("not callable", 1)]


def test_a_plugin_with_bad_provider_entries_is_failed(fresh_registry, unique_scheme) -> None:
    name = unique_scheme("badmeta")
    with pytest.warns(loadstone.LoadstoneWarning, match=name):
        info = loadstone.register_plugin(_BadMetadataPlugin(), name)
    assert info.status.startswith("failed:")
    assert any(p.name == name and p.status.startswith("failed:") for p in loadstone.plugins())

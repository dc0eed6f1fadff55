"""loadstone.config.PluginConfig: plugin settings as a validated, immutable snapshot."""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import pytest

from loadstone.config import PluginConfig, configs, get_config_by_name, parse_text


@dataclass(frozen=True)
class Settings:
    max_bytes: int = 1000
    ratio: float = 0.5
    verbose: bool = False
    root: Path | None = None
    timeout: Optional[float] = None  # noqa: UP045 - the older spelling must work too
    hosts: frozenset[str] = frozenset()
    ports: tuple[int, ...] = ()
    headers: Mapping[str, str] = field(default_factory=dict)
    label: str = "x"
    token: str = field(default="", metadata={"env": "MYPLUGIN_TOKEN"})
    client: Any = field(default=None, metadata={"env": None})
    mode: str = field(default="auto", metadata={"parse": str.lower})

    def __post_init__(self) -> None:
        if self.max_bytes < 1:
            raise ValueError("max_bytes must be at least 1")


@pytest.fixture
def config(monkeypatch: pytest.MonkeyPatch) -> PluginConfig[Settings]:
    """A config of a plugin name no other test uses, with no environment of its own."""
    name = f"kit-{uuid.uuid4().hex[:8]}"
    made = PluginConfig(name, Settings)
    for setting in made.fields():
        variable = made.env_name(setting)
        if variable:
            monkeypatch.delenv(variable, raising=False)
    return made


def test_settings_read_and_write_as_attributes(config: PluginConfig[Settings]) -> None:
    assert config.max_bytes == 1000 and config.label == "x"
    before = config.get()
    config.max_bytes = 5
    assert config.max_bytes == 5
    assert before.max_bytes == 1000  # a snapshot taken earlier does not change
    assert isinstance(config.get(), Settings) and config.as_dict()["max_bytes"] == 5


def test_a_bad_value_is_refused_by_the_dataclass_and_changes_nothing(config: PluginConfig[Settings]) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        config.max_bytes = 0
    with pytest.raises(ValueError, match="at least 1"):
        config.configure(label="changed", max_bytes=-1)
    assert config.max_bytes == 1000 and config.label == "x"


def test_configure_restore_override_and_reset(config: PluginConfig[Settings]) -> None:
    previous = config.configure(max_bytes=10, verbose=True)
    assert (config.max_bytes, config.verbose) == (10, True)
    assert previous.max_bytes == 1000
    with config.override(max_bytes=20) as inside:
        assert inside.max_bytes == 20 and config.max_bytes == 20 and config.verbose
    assert config.max_bytes == 10
    config.restore(previous)
    assert (config.max_bytes, config.verbose) == (1000, False)
    with pytest.raises(TypeError, match="restore"):
        config.restore({"max_bytes": 1})  # type: ignore[arg-type]
    config.max_bytes = 30
    config.reset()
    assert config.max_bytes == 1000


def test_settings_come_from_the_environment(config: PluginConfig[Settings],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    prefix = f"LOADSTONE_{config.name.upper().replace('-', '_')}_"
    assert config.env_name("max_bytes") == prefix + "MAX_BYTES"
    monkeypatch.setenv(prefix + "MAX_BYTES", "4096")
    monkeypatch.setenv(prefix + "VERBOSE", "yes")
    monkeypatch.setenv(prefix + "HOSTS", "a.example.org, b.example.org")
    monkeypatch.setenv("MYPLUGIN_TOKEN", "secret")  # the name a field gives
    monkeypatch.setenv(prefix + "TOKEN", "ignored")  # not the default name, then
    monkeypatch.setenv(prefix + "CLIENT", "ignored")  # env None: never from the environment
    monkeypatch.setenv(prefix + "LABEL", "")  # empty: not set
    config.reset()
    assert config.max_bytes == 4096 and config.verbose is True
    assert config.hosts == frozenset({"a.example.org", "b.example.org"})
    assert config.token == "secret"
    assert config.client is None and config.label == "x"
    assert config.env_name("token") == "MYPLUGIN_TOKEN" and config.env_name("client") is None
    monkeypatch.setenv(prefix + "MAX_BYTES", "0")
    config.reset()
    with pytest.raises(ValueError, match="at least 1"):  # checked like any other value
        config.get()


@pytest.mark.parametrize(("name", "text", "value"), [
    ("max_bytes", "2048", 2048),
    ("max_bytes", "0x10", 16),
    ("ratio", "0.25", 0.25),
    ("verbose", "on", True),
    ("verbose", "0", False),
    ("root", "/data/images", Path("/data/images")),
    ("root", "none", None),
    ("timeout", "2.5", 2.5),
    ("timeout", "", None),
    ("hosts", "a, b,,c", frozenset({"a", "b", "c"})),
    ("ports", "80, 443", (80, 443)),
    ("headers", "Authorization=Bearer x, X-Trace = 1", {"Authorization": "Bearer x", "X-Trace": "1"}),
    ("label", " spaced ", " spaced "),
    ("mode", "FAST", "fast"),
])
def test_set_text_converts_by_the_field_type(config: PluginConfig[Settings], name: str, text: str,
                                             value: Any) -> None:
    previous = config.set_text(name, text)
    assert getattr(config, name) == value
    assert type(getattr(config, name)) is type(value)
    assert getattr(previous, name) == getattr(Settings(), name)


@pytest.mark.parametrize(("name", "text", "message"), [
    ("max_bytes", "ten", "'ten' is not an integer"),
    ("ratio", "half", "is not a number"),
    ("verbose", "maybe", "is not a boolean"),
    ("headers", "novalue", "key=value"),
    ("ports", "80,http", "'http' is not an integer"),
])
def test_set_text_refuses_what_does_not_convert(config: PluginConfig[Settings], name: str, text: str,
                                                message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        config.set_text(name, text)
    assert f"{config.name}.{name}" in str(caught.value)
    assert getattr(config, name) == getattr(Settings(), name)


def test_unknown_settings_suggest_the_close_one(config: PluginConfig[Settings]) -> None:
    with pytest.raises(AttributeError, match="did you mean 'max_bytes'"):
        _ = config.max_byte
    with pytest.raises(AttributeError, match="did you mean 'verbose'"):
        config.verbos = True
    with pytest.raises(TypeError, match=r"unknown .* setting 'raito' \(did you mean 'ratio'\?\)"):
        config.configure(raito=1.0)
    with pytest.raises(TypeError, match="did you mean 'hosts'"):
        config.set_text("host", "a")
    with pytest.raises(AttributeError):
        _ = config.__wrapped__  # dunder lookups are plain misses (copy, inspect, mocks)


def test_configs_are_found_by_plugin_name(config: PluginConfig[Settings]) -> None:
    assert get_config_by_name(config.name) is config
    assert configs()[config.name] is config
    assert get_config_by_name("no-such-plugin") is None
    assert "max_bytes" in dir(config)


def test_a_change_is_seen_whole_or_not_at_all(config: PluginConfig[Settings]) -> None:
    """Readers take one snapshot: never half of a configure() of two settings."""
    stop = threading.Event()
    torn: list[Settings] = []

    def read() -> None:
        while not stop.is_set():
            snapshot = config.get()
            if snapshot.max_bytes != snapshot.ports[0]:
                torn.append(snapshot)

    config.configure(max_bytes=1, ports=(1,))
    readers = [threading.Thread(target=read) for _ in range(2)]
    for reader in readers:
        reader.start()
    try:
        for value in range(2, 2000):
            config.configure(max_bytes=value, ports=(value,))
    finally:
        stop.set()
        for reader in readers:
            reader.join(5)
    assert torn == []


def test_settings_that_a_config_attribute_would_hide_are_refused() -> None:
    @dataclass(frozen=True)
    class Clashing:
        name: str = "mine"
        reset: bool = False

    with pytest.raises(TypeError, match="'name', 'reset'"):
        PluginConfig(f"kit-{uuid.uuid4().hex[:8]}", Clashing)


def test_only_dataclasses_make_a_config() -> None:
    with pytest.raises(TypeError, match="dataclass"):
        PluginConfig(f"kit-{uuid.uuid4().hex[:8]}", dict)


def test_parse_text_directly() -> None:
    assert parse_text("3", int) == 3
    assert parse_text("a,b", tuple[str, ...]) == ("a", "b")
    assert parse_text("1.5, 2", tuple[float, float]) == (1.5, 2.0)
    with pytest.raises(ValueError, match="2 values"):
        parse_text("1, 2, 3", tuple[float, float])
    convert: Callable[[str], Any] = Path
    assert parse_text("~/x", convert) == Path("~/x").expanduser()
    assert dataclasses.is_dataclass(Settings)

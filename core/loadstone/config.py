"""Plugin settings in one style: an immutable snapshot per plugin, swapped atomically.

A plugin declares its settings as a frozen dataclass (defaults, and checks in
``__post_init__``) and makes one :class:`PluginConfig` of it in its
``config.py``::

    @dataclass(frozen=True)
    class Settings:
        root: Path | None = None
        max_bytes: int = 256 << 20

        def __post_init__(self) -> None:
            if self.max_bytes < 1:
                raise ValueError("max_bytes must be positive")

    config = PluginConfig("myplugin", Settings)

Users then read and change it the same way for every plugin::

    config.max_bytes                     # the value in force
    config.max_bytes = 1 << 30           # checked, then swapped in whole
    previous = config.configure(root="/data", max_bytes=1 << 30)
    config.restore(previous)
    with config.override(root="/tmp"):   # for a block (tests)
        ...
    config.reset()                       # back to defaults and environment

Initial values come from the environment, read on first use:
``LOADSTONE_<PLUGIN>_<SETTING>`` (``LOADSTONE_MYPLUGIN_MAX_BYTES=1000``), or the
name a field gives in ``metadata={"env": "…"}``; ``metadata={"env": None}``
keeps a setting out of the environment (callables, clients).  Text (from the
environment or ``loadstone --set myplugin.max_bytes=1000``) is converted by
the field's type: int, float, bool, str, Path, frozensets and tuples
(comma-separated, each item converted by the item type: ``tuple[float, float]``
takes exactly two) and mappings (``k=v,k=v``, values converted by the value
type), or by a ``metadata={"parse": function}``.  A setting may not be named
like a :class:`PluginConfig` attribute (``name``, ``reset``, ``get``…).

A load takes one snapshot (:meth:`PluginConfig.get`) and uses it throughout,
so it never sees half of a change.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import os
import threading
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Generic, TypeVar

__all__ = ["PluginConfig", "parse_text", "configs", "get_config_by_name"]

S = TypeVar("S")

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")
_registry: dict[str, PluginConfig[Any]] = {}
_registry_lock = threading.Lock()


class PluginConfig(Generic[S]):
    """The settings of one plugin: a frozen dataclass instance, replaced whole on every change."""

    _own = frozenset({"name", "settings_type", "_lock", "_current", "_env_prefix", "_fields", "_hints"})

    def __init__(self, name: str, settings_type: type[S], *, env_prefix: str | None = None) -> None:
        if not dataclasses.is_dataclass(settings_type):
            raise TypeError("PluginConfig needs a dataclass type of settings")
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "settings_type", settings_type)
        object.__setattr__(self, "_lock", threading.Lock())
        object.__setattr__(self, "_current", None)
        object.__setattr__(self, "_env_prefix", env_prefix or f"LOADSTONE_{name.upper().replace('-', '_')}_")
        fields = {f.name: f for f in dataclasses.fields(settings_type) if f.init}
        hidden = [name for name in fields if name in PluginConfig._own or hasattr(PluginConfig, name)]
        if hidden:  # config.name would read the plugin's name, never the setting
            raise TypeError(f"settings {', '.join(map(repr, hidden))} of {settings_type.__name__} have the "
                            "names of PluginConfig attributes, which would hide them: rename them")
        object.__setattr__(self, "_fields", fields)
        object.__setattr__(self, "_hints", None)
        with _registry_lock:
            _registry[name] = self

    # -- reading ---------------------------------------------------------
    def get(self) -> S:
        """The settings in force (read from the environment on first use)."""
        current = self._current
        if current is None:
            with self._lock:
                if self._current is None:
                    object.__setattr__(self, "_current", self._from_environment())
                current = self._current
        return typing.cast(S, current)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in PluginConfig._own:
            raise AttributeError(name)
        if name in self._fields:
            return getattr(self.get(), name)
        raise AttributeError(f"{self.name} has no setting {name!r}{_did_you_mean(name, self._fields)}")

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self._fields:
            self.configure(**{name: value})
            return
        if hasattr(type(self), name):
            object.__setattr__(self, name, value)
            return
        raise AttributeError(f"{self.name} has no setting {name!r}{_did_you_mean(name, self._fields)}")

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self._fields))

    def fields(self) -> list[str]:
        """The setting names."""
        return list(self._fields)

    def as_dict(self) -> dict[str, Any]:
        """The settings in force as a plain dict."""
        current = self.get()
        return {name: getattr(current, name) for name in self._fields}

    # -- changing --------------------------------------------------------
    def configure(self, **changes: Any) -> S:
        """Change some settings; returns the previous snapshot (for :meth:`restore`).

        Every value is checked before anything changes, so a bad call leaves
        the settings as they were.  Unknown names raise ``TypeError`` with a
        suggestion.
        """
        self._check_names(changes)
        with self._lock:
            previous = self._current if self._current is not None else self._from_environment()
            object.__setattr__(self, "_current", dataclasses.replace(previous, **changes))  # type: ignore[type-var]
        return typing.cast(S, previous)

    def restore(self, previous: S) -> None:
        """Put back a snapshot that :meth:`configure` returned."""
        if not isinstance(previous, self.settings_type):
            raise TypeError(f"restore() takes a {self.settings_type.__name__}, got {type(previous).__name__}")
        with self._lock:
            object.__setattr__(self, "_current", previous)

    def reset(self) -> None:
        """Forget every change: the next use starts from the defaults and the environment again."""
        with self._lock:
            object.__setattr__(self, "_current", None)

    def _snapshot(self) -> S | None:
        """The settings as they are, None when not read yet (for :mod:`loadstone.testing`)."""
        return typing.cast("S | None", self._current)

    def _put_back(self, snapshot: S | None) -> None:
        """Undo every change made since :meth:`_snapshot`."""
        with self._lock:
            object.__setattr__(self, "_current", snapshot)

    @contextlib.contextmanager
    def override(self, **changes: Any) -> Iterator[S]:
        """``with config.override(root=...):`` the settings changed for the block, restored after."""
        previous = self.configure(**changes)
        try:
            yield self.get()
        finally:
            self.restore(previous)

    def set_text(self, name: str, text: str) -> S:
        """Set one setting from text (``--set plugin.name=value``); returns the previous snapshot."""
        self._check_names({name: None})
        return self.configure(**{name: self._parse(name, text)})

    # -- text --------------------------------------------------------------
    def _check_names(self, changes: Mapping[str, Any]) -> None:
        unknown = [name for name in changes if name not in self._fields]
        if unknown:
            name = unknown[0]
            raise TypeError(f"unknown {self.name} setting {name!r}{_did_you_mean(name, self._fields)}; "
                            f"settings: {', '.join(self._fields)}")

    def _parse(self, name: str, text: str) -> Any:
        field = self._fields[name]
        parse = field.metadata.get("parse")
        if parse is not None:
            return parse(text)
        hints = self._hints
        if hints is None:
            hints = typing.get_type_hints(self.settings_type)
            object.__setattr__(self, "_hints", hints)
        try:
            return parse_text(text, hints[name])
        except ValueError as exc:
            raise ValueError(f"{self.name}.{name}: {exc}") from None

    def env_name(self, name: str) -> str | None:
        """The environment variable that sets ``name``, or None."""
        field = self._fields[name]
        if "env" in field.metadata:
            return typing.cast("str | None", field.metadata["env"])
        return f"{self._env_prefix}{name.upper()}"

    def _from_environment(self) -> S:
        values: dict[str, Any] = {}
        for name in self._fields:
            variable = self.env_name(name)
            text = os.environ.get(variable) if variable else None
            if text:
                values[name] = self._parse(name, text)
        settings: S = self.settings_type(**values)
        return settings

    def __repr__(self) -> str:
        return f"<PluginConfig {self.name}: {self.get()!r}>"


def parse_text(text: str, annotation: Any) -> Any:
    """Convert text to a value of ``annotation`` (the types plugin settings use)."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        if type(None) in args and text.strip().lower() in ("", "none", "null"):
            return None
        errors = []
        for option in options:
            try:
                return parse_text(text, option)
            except ValueError as exc:
                errors.append(str(exc))
        raise ValueError("; ".join(errors) or f"cannot convert {text!r}")
    if annotation is bool:
        lowered = text.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        raise ValueError(f"{text!r} is not a boolean (1/0, true/false, yes/no, on/off)")
    if annotation is int:
        try:
            return int(text.strip(), 0)
        except ValueError:
            raise ValueError(f"{text!r} is not an integer") from None
    if annotation is float:
        try:
            return float(text.strip())
        except ValueError:
            raise ValueError(f"{text!r} is not a number") from None
    if annotation is str or annotation is Any:
        return text
    if annotation is Path:
        return Path(text.strip()).expanduser()
    if origin in (frozenset, set, tuple, list) or annotation in (frozenset, tuple):
        items = [part.strip() for part in text.split(",") if part.strip()]
        if origin is tuple and args and args[-1] is not Ellipsis:  # tuple[float, float]: so many values
            if len(items) != len(args):
                raise ValueError(f"{text!r} is not {len(args)} values (comma-separated)")
            return tuple(parse_text(item, arg) for item, arg in zip(items, args, strict=True))
        values = [parse_text(item, args[0]) for item in items] if args else items
        return frozenset(values) if origin in (frozenset, set) or annotation is frozenset else tuple(values)
    if origin in (dict, Mapping, typing.Mapping) or annotation is dict:
        result = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            key, sep, value = part.partition("=")
            if not sep or not key.strip():
                raise ValueError(f"mapping entries are 'key=value', got {part!r}")
            result[key.strip()] = parse_text(value.strip(), args[1]) if len(args) == 2 else value.strip()
        return result
    if callable(annotation) and isinstance(annotation, type):
        return annotation(text)
    raise ValueError(f"no conversion from text to {annotation!r}")


def _did_you_mean(name: str, known: Mapping[str, Any] | list[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def configs() -> dict[str, PluginConfig[Any]]:
    """Every plugin configuration created so far, by plugin name."""
    with _registry_lock:
        return dict(_registry)


def get_config_by_name(name: str) -> PluginConfig[Any] | None:
    """The configuration a plugin registered under ``name`` (its plugin must be imported)."""
    with _registry_lock:
        return _registry.get(name)


ConfigParser = Callable[[str], Any]

"""Plugin discovery and the scheme → loader registry.

Discovery is lazy (the first load, metadata query or ``plugins()`` call),
isolated (a plugin that fails to import or breaks the hook contract is
reported and skipped; the rest work) and deterministic (entry points are
taken in name order; the first plugin to claim a scheme keeps it, with a
warning).  Loaders registered by the user always win over plugins.
"""

from __future__ import annotations

import os
import re
import threading
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import LoadstoneWarning, PluginError, UnknownSchemeError

if TYPE_CHECKING:
    import pluggy

    from ._loaders import ImageLoader
    from ._metadata import MetadataRegistry

__all__ = ["PluginInfo", "PluginRegistry", "KNOWN_SCHEMES", "normalize_scheme"]

ENTRY_POINT_GROUP = "loadstone"

#: Which distribution adds a scheme, for the hint in UnknownSchemeError.
KNOWN_SCHEMES = {
    "example": "loadstone-base64-demo",
    "wadouri": "loadstone-wado",
    "dicomweb": "loadstone-wado",
    "wadors": "loadstone-wado",
    "dicomfile": "loadstone-wado",
    "http": "loadstone-web",
    "https": "loadstone-web",
    "web": "loadstone-web",
    "mpr": "loadstone-mpr",
}

_SCHEME_RE = re.compile(r"^[a-z][a-z0-9+.\-]*$")


def normalize_scheme(scheme: str) -> str:
    """Lower-case and validate a scheme name (RFC 3986 characters)."""
    if not isinstance(scheme, str):
        raise TypeError(f"a scheme must be a str, got {type(scheme).__name__}")
    normalized = scheme.strip().lower()
    if not _SCHEME_RE.match(normalized):
        raise ValueError(f"invalid scheme {scheme!r}: letters, digits, '+', '-', '.', starting with a letter")
    return normalized


@dataclass(frozen=True)
class PluginInfo:
    """What ``loadstone.plugins()`` reports for one plugin."""

    name: str
    distribution: str | None
    version: str | None
    schemes: tuple[str, ...]
    status: str  # "loaded" | "failed: …" | "disabled"
    missing_dependencies: tuple[str, ...] = ()
    details: Mapping[str, str] = field(default_factory=dict)

    @property
    def loaded(self) -> bool:
        """True when the plugin works."""
        return self.status == "loaded"


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no", "off")


def _disabled_names() -> set[str]:
    raw = os.environ.get("LOADSTONE_DISABLE_PLUGINS", "")
    return {part.strip().lower() for part in raw.split(",") if part.strip()}


def _requirement_name(requirement: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    return match.group(1) if match else requirement


def _missing_dependencies(distribution: Any) -> tuple[str, ...]:
    """Requirements of the distribution (extras included) that are not installed."""
    import importlib.metadata as md

    missing: list[str] = []
    for requirement in distribution.requires or ():
        name = _requirement_name(requirement)
        try:
            md.version(name)
        except md.PackageNotFoundError:
            if name not in missing:
                missing.append(name)
    return tuple(missing)


class PluginRegistry:
    """Loaders by scheme: the user's, then the plugins' (found on first use)."""

    def __init__(self, metadata: MetadataRegistry) -> None:
        self._lock = threading.RLock()
        self._metadata = metadata
        self._user_loaders: dict[str, ImageLoader] = {}
        self._plugin_loaders: dict[str, tuple[ImageLoader, str]] = {}
        self._unknown_loader: ImageLoader | None = None
        self._infos: dict[str, PluginInfo] = {}
        self._dists: dict[str, Any] = {}
        self._providers_by_plugin: dict[str, list[Callable[..., Any]]] = {}
        self._discovered = False
        self._discovering = False
        self._manager: pluggy.PluginManager | None = None
        # Asking for metadata first must find the plugins' providers too.
        metadata._before_first_use = self.ensure_discovered

    # -- user registrations ------------------------------------------------
    def register_image_loader(self, scheme: str, loader: ImageLoader) -> None:
        if not callable(loader):
            raise TypeError("an image loader must be callable (image_id, options) -> ImageLoadObject")
        with self._lock:
            self._user_loaders[normalize_scheme(scheme)] = loader

    def unregister_image_loader(self, scheme: str) -> bool:
        with self._lock:
            return self._user_loaders.pop(normalize_scheme(scheme), None) is not None

    def register_unknown_image_loader(self, loader: ImageLoader | None) -> ImageLoader | None:
        if loader is not None and not callable(loader):
            raise TypeError("the unknown image loader must be callable or None")
        with self._lock:
            previous, self._unknown_loader = self._unknown_loader, loader
        return previous

    # -- lookup ------------------------------------------------------------
    def loader_for(self, scheme: str, image_id: str) -> ImageLoader:
        """The loader of a (lower-case) scheme, else the unknown loader, else UnknownSchemeError."""
        loader = self._user_loaders.get(scheme)
        if loader is not None:
            return loader
        self.ensure_discovered()
        claimed = self._plugin_loaders.get(scheme)
        if claimed is not None:
            return claimed[0]
        if self._unknown_loader is not None:
            return self._unknown_loader
        raise self.unknown_scheme(scheme, image_id)

    def unknown_scheme(self, scheme: str, image_id: str) -> UnknownSchemeError:
        installed = tuple(self.schemes())
        suggestion = KNOWN_SCHEMES.get(scheme)
        listing = ", ".join(installed) or "none"
        message = f"no image loader for scheme {scheme!r}; installed schemes: {listing}"
        if suggestion:
            message += f"; `pip install {suggestion}` adds it"
        return UnknownSchemeError(
            message, image_id=image_id, scheme=scheme, installed=installed, suggestion=suggestion
        )

    def schemes(self) -> list[str]:
        """Every scheme with a loader, sorted."""
        self.ensure_discovered()
        return sorted(set(self._user_loaders) | set(self._plugin_loaders))

    def plugins(self) -> list[PluginInfo]:
        """Every discovered plugin with its status, and what optional dependencies it lacks."""
        self.ensure_discovered()
        with self._lock:
            infos = list(self._infos.values())
        result = []
        for info in infos:
            dist = self._dists.get(info.name)
            if dist is not None and info.status != "disabled":
                info = PluginInfo(info.name, info.distribution, info.version, info.schemes,
                                  info.status, _missing_dependencies(dist), info.details)
            result.append(info)
        return result

    @property
    def manager(self) -> pluggy.PluginManager:
        """The pluggy plugin manager (created on first use)."""
        if self._manager is None:
            import pluggy

            from .hookspecs import PROJECT_NAME, LoadstoneHookSpecs

            manager = pluggy.PluginManager(PROJECT_NAME)
            manager.add_hookspecs(LoadstoneHookSpecs)
            self._manager = manager
        return self._manager

    def series_image_ids(self, series_id: str) -> list[str] | None:
        """Ask the plugins to expand a series id (first answer wins)."""
        self.ensure_discovered()
        result = self.manager.hook.loadstone_series_image_ids(series_id=series_id)
        return None if result is None else list(result)

    # -- discovery ---------------------------------------------------------
    def ensure_discovered(self) -> None:
        """Discover plugins once; other threads wait until discovery is complete."""
        if self._discovered:
            return
        with self._lock:  # an RLock: a plugin imported during discovery may re-enter
            if self._discovered or self._discovering:
                return
            self._discovering = True
            try:
                if not _env_flag("LOADSTONE_DISABLE_PLUGIN_AUTOLOAD"):
                    self._discover_entry_points()
            finally:
                self._discovering = False
                self._discovered = True

    def reset(self) -> None:
        """Forget every plugin (not the user's loaders); the next use discovers again."""
        with self._lock:
            manager = self._manager
            if manager is not None:
                for name in list(self._infos):
                    if manager.get_plugin(name) is not None:
                        manager.unregister(name=name)
            for info in self._infos.values():
                self._drop_providers(info.name)
            self._plugin_loaders.clear()
            self._infos.clear()
            self._dists.clear()
            self._providers_by_plugin.clear()
            self._discovered = False
            # Asking for metadata first must rediscover the plugins' providers.
            self._metadata._before_first_use = self.ensure_discovered

    def _drop_providers(self, name: str) -> None:
        for provider in self._providers_by_plugin.get(name, ()):
            self._metadata.remove_provider(provider)

    def _discover_entry_points(self) -> None:
        import importlib.metadata as md

        disabled = _disabled_names()
        entry_points = sorted(md.entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name)
        seen: set[str] = set()
        for ep in entry_points:
            if ep.name in seen:  # the same distribution visible twice on sys.path
                continue
            seen.add(ep.name)
            dist = getattr(ep, "dist", None)
            dist_name = dist.metadata["Name"] if dist is not None else None
            version = dist.version if dist is not None else None
            if dist is not None:
                self._dists[ep.name] = dist
            if ep.name.lower() in disabled or (dist_name or "").lower() in disabled:
                self._infos[ep.name] = PluginInfo(ep.name, dist_name, version, (), "disabled")
                continue
            try:
                module = ep.load()
            except Exception as exc:
                self._fail(ep.name, dist_name, version, f"import failed: {type(exc).__name__}: {exc}")
                continue
            self.register_plugin(module, ep.name, dist_name, version)

    def _fail(self, name: str, dist: str | None, version: str | None, why: str) -> None:
        self._infos[name] = PluginInfo(name, dist, version, (), f"failed: {why}")
        warnings.warn(f"loadstone plugin {name!r} ({dist or 'no distribution'}) disabled: {why}",
                      LoadstoneWarning, stacklevel=4)

    def register_plugin(self, plugin: object, name: str | None = None,
                        distribution: str | None = None, version: str | None = None) -> PluginInfo:
        """Register a plugin object or module by hand (as discovery does for entry points)."""
        with self._lock:
            name = name or getattr(plugin, "__name__", None) or type(plugin).__name__
            if name in self._infos and self._infos[name].status == "loaded":
                raise PluginError(f"a plugin named {name!r} is already registered")
            manager = self.manager
            try:
                manager.register(plugin, name=name)
            except Exception as exc:
                self._fail(name, distribution, version, f"invalid hooks: {exc}")
                return self._infos[name]
            try:
                loaders = self._collect_loaders(name)
                providers = self._collect_providers(name)
                details = self._collect_details(name)
            except Exception as exc:
                manager.unregister(name=name)
                self._fail(name, distribution, version, str(exc))
                return self._infos[name]
            claimed = []
            for scheme, loader in loaders.items():
                owner = self._plugin_loaders.get(scheme)
                if owner is not None:
                    warnings.warn(
                        f"scheme {scheme!r} is claimed by plugins {owner[1]!r} and {name!r}; "
                        f"using {owner[1]!r} (register_image_loader overrides)",
                        LoadstoneWarning, stacklevel=3,
                    )
                    continue
                self._plugin_loaders[scheme] = (loader, name)
                claimed.append(scheme)
            self._providers_by_plugin[name] = [provider for provider, _ in providers]
            for provider, priority in providers:
                self._metadata.add_provider(provider, priority)
            info = PluginInfo(name, distribution, version, tuple(sorted(claimed)), "loaded", (), details)
            self._infos[name] = info
            return info

    def _impls(self, hook_name: str, plugin_name: str) -> list[Callable[..., Any]]:
        hook = getattr(self.manager.hook, hook_name)
        return [impl.function for impl in hook.get_hookimpls() if impl.plugin_name == plugin_name]

    def _collect_loaders(self, name: str) -> dict[str, ImageLoader]:
        loaders: dict[str, ImageLoader] = {}
        for function in self._impls("loadstone_image_loaders", name):
            answer = function()
            if not isinstance(answer, Mapping):
                raise PluginError(
                    f"loadstone_image_loaders returned {type(answer).__name__}, expected a mapping"
                )
            for scheme, loader in answer.items():
                try:
                    key = normalize_scheme(scheme)
                except (TypeError, ValueError) as exc:
                    raise PluginError(f"loadstone_image_loaders: {exc}") from exc
                if not callable(loader):
                    raise PluginError(f"loadstone_image_loaders: loader for {key!r} is not callable")
                loaders[key] = loader
        return loaders

    def _collect_providers(self, name: str) -> list[tuple[Callable[..., Any], int]]:
        providers: list[tuple[Callable[..., Any], int]] = []
        for function in self._impls("loadstone_metadata_providers", name):
            answer = function()
            if answer is None:
                continue
            if not isinstance(answer, Iterable):
                raise PluginError("loadstone_metadata_providers must return (provider, priority) pairs")
            for item in answer:
                provider, priority = (item, 0) if callable(item) else _pair(item)
                providers.append((provider, priority))
        return providers

    def _collect_details(self, name: str) -> dict[str, str]:
        details: dict[str, str] = {}
        for function in self._impls("loadstone_plugin_details", name):
            answer = function()
            if isinstance(answer, Mapping):
                details.update({str(k): str(v) for k, v in answer.items()})
        return details


def _pair(item: object) -> tuple[Callable[..., Any], int]:
    try:
        provider: Any
        priority: Any
        provider, priority = item  # type: ignore[misc]
    except (TypeError, ValueError):
        raise PluginError(f"metadata provider entry {item!r} is not (provider, priority)") from None
    if not callable(provider) or isinstance(priority, bool) or not isinstance(priority, int):
        raise PluginError(f"metadata provider entry {item!r} is not (callable, int)")
    return provider, priority

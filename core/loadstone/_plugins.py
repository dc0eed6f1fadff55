"""Plugin discovery and the scheme → loader registry.

Discovery is static and lazy, as fsspec's registry is: the entry-point group
``loadstone.schemes`` says which installed plugin serves a scheme
(``dicomfile = "wado"``: the plugin's entry-point name, or its distribution)
without importing anything, so loading an ``example:`` id imports the demo
plugin only.  Plugins that declare no schemes are imported when a scheme
nobody declared is asked for.  Discovery is isolated (a plugin that fails to
import or breaks the hook contract is reported and skipped; the rest work)
and deterministic (entry points in name order; the first plugin to claim a
scheme keeps it, with a warning).  Loaders registered by the user always win.
"""

from __future__ import annotations

import difflib
import importlib.metadata as md
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

    from ._loader import ImageLoader
    from ._metadata import MetadataRegistry

__all__ = ["PluginInfo", "PluginRegistry", "KNOWN_SCHEMES", "normalize_scheme", "scheme_of_id"]

ENTRY_POINT_GROUP = "loadstone"
SCHEMES_GROUP = "loadstone.schemes"

#: Which distribution adds a scheme, for the hint when nothing installed serves it
#: (as fsspec's ``known_implementations``).  Installed plugins speak for themselves.
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


def scheme_of_id(image_id: object) -> str | None:
    """The lower-case scheme of an id, or None when it has none (no error: for lookups)."""
    if not isinstance(image_id, str):
        return None
    colon = image_id.find(":")
    return image_id[:colon].lower() if colon > 0 else None


@dataclass(frozen=True)
class PluginInfo:
    """What ``loadstone.plugins()`` reports for one plugin."""

    name: str
    distribution: str | None
    version: str | None
    schemes: tuple[str, ...]
    status: str  # "loaded" | "failed: …" | "disabled" | "not loaded"
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
    missing: list[str] = []
    for requirement in distribution.requires or ():
        name = _requirement_name(requirement)
        try:
            md.version(name)
        except md.PackageNotFoundError:
            if name not in missing:
                missing.append(name)
    return tuple(missing)


@dataclass
class _Candidate:
    """An installed plugin found by its entry point, imported or not yet."""

    entry_point: Any
    distribution: str | None
    version: str | None
    dist: Any
    declared: list[str] = field(default_factory=list)  # schemes from ``loadstone.schemes``
    state: str = "found"  # found | loaded | failed | disabled


class PluginRegistry:
    """Loaders by scheme: the user's, then the plugins' (imported when their scheme is first asked for)."""

    def __init__(self, metadata: MetadataRegistry) -> None:
        self._lock = threading.RLock()
        self._metadata = metadata
        self._user_loaders: dict[str, ImageLoader] = {}
        self._plugin_loaders: dict[str, tuple[ImageLoader, str]] = {}
        self._unknown_loader: ImageLoader | None = None
        self._infos: dict[str, PluginInfo] = {}
        self._providers_by_plugin: dict[str, list[Callable[..., Any]]] = {}
        self._candidates: dict[str, _Candidate] | None = None
        self._owners: dict[str, str] = {}  # declared scheme -> plugin name
        self._ready_schemes: set[str] = set()
        self._manager: pluggy.PluginManager | None = None
        metadata.set_preparer(self.prepare_for_id)

    # -- user registrations ------------------------------------------------
    def register_image_loader(self, scheme: str, loader: ImageLoader) -> None:
        if not callable(loader):
            raise TypeError("an image loader must be callable (image_id, options) -> ImageLoadObject")
        with self._lock:
            self._user_loaders[normalize_scheme(scheme)] = loader

    def unregister_image_loader(self, scheme: str) -> bool:
        with self._lock:
            return self._user_loaders.pop(normalize_scheme(scheme), None) is not None

    def clear_user_loaders(self) -> None:
        with self._lock:
            self._user_loaders.clear()
            self._unknown_loader = None

    def user_registrations(self) -> tuple[dict[str, ImageLoader], ImageLoader | None]:
        """The user's loaders by scheme and the unknown loader (for :mod:`loadstone.testing`)."""
        with self._lock:
            return dict(self._user_loaders), self._unknown_loader

    def restore_user_registrations(self, loaders: Mapping[str, ImageLoader],
                                   unknown: ImageLoader | None) -> None:
        """Put back what :meth:`user_registrations` returned."""
        with self._lock:
            self._user_loaders = dict(loaders)
            self._unknown_loader = unknown

    def plugin_providers(self) -> list[Callable[..., Any]]:
        """The metadata providers that discovered or hand-registered plugins added."""
        with self._lock:
            return [provider for providers in self._providers_by_plugin.values() for provider in providers]

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
        claimed = self._plugin_loaders.get(scheme)
        if claimed is not None:
            return claimed[0]
        self.prepare_scheme(scheme)
        claimed = self._plugin_loaders.get(scheme)
        if claimed is not None:
            return claimed[0]
        if self._unknown_loader is not None:
            return self._unknown_loader
        raise self.unknown_scheme(scheme, image_id)

    def prepare_scheme(self, scheme: str) -> None:
        """Import the plugin that declares ``scheme``, else every plugin that declares nothing."""
        if scheme in self._ready_schemes:
            return
        with self._lock:
            if scheme in self._ready_schemes:
                return
            candidates = self._find()
            owner = self._owners.get(scheme)
            if owner is not None:
                self._load(owner, candidates[owner])
            if scheme not in self._plugin_loaders:
                for name, candidate in candidates.items():
                    if not candidate.declared:
                        self._load(name, candidate)
            self._ready_schemes.add(scheme)

    def prepare_for_id(self, image_id: str) -> None:
        """Before metadata is asked about ``image_id``: the plugins that may answer are imported."""
        scheme = scheme_of_id(image_id)
        if scheme is None:
            self.prepare_all()
        elif scheme not in self._ready_schemes:
            self.prepare_scheme(scheme)

    def prepare_all(self) -> None:
        """Import every installed plugin (``plugins()``, series ids nobody declared)."""
        with self._lock:
            for name, candidate in self._find().items():
                self._load(name, candidate)

    def unknown_scheme(self, scheme: str, image_id: str) -> UnknownSchemeError:
        """The error for a scheme nothing serves, with the most useful hint there is."""
        installed = tuple(self.schemes())
        listing = ", ".join(installed) or "none"
        message = f"no image loader for scheme {scheme!r}; installed schemes: {listing}"
        suggestion = None
        owner = self._owners.get(scheme)
        candidate = None if owner is None or self._candidates is None else self._candidates.get(owner)
        info = self._infos.get(owner) if owner is not None else None
        if candidate is not None and info is not None and info.status.startswith("failed"):
            message += (f"; plugin {owner!r} ({candidate.distribution}) serves it but failed to load: "
                        f"{info.status[len('failed: '):]}")
        elif candidate is not None and candidate.state == "disabled":
            message += f"; plugin {owner!r} serves it but is disabled (LOADSTONE_DISABLE_PLUGINS)"
        elif len(scheme) == 1 and image_id[2:3] in ("\\", "/"):
            message += (f"; {image_id!r} looks like a Windows path: give it as 'dicomfile:{image_id}' "
                        "(or 'web:file:///…' for a PNG/JPEG)")
        else:
            close = difflib.get_close_matches(scheme, installed, n=1)
            if close:
                message += f"; did you mean {close[0]!r}?"
            known = KNOWN_SCHEMES.get(scheme)
            if known:
                suggestion = known
                if not _installed(known):
                    message += f"; `pip install {known}` adds it"
                elif _env_flag("LOADSTONE_DISABLE_PLUGIN_AUTOLOAD"):
                    message += (f"; {known} is installed, but plugin discovery is off "
                                "(LOADSTONE_DISABLE_PLUGIN_AUTOLOAD)")
                else:
                    message += f"; {known} is installed but does not declare it (reinstall it)"
        return UnknownSchemeError(message, image_id=image_id, scheme=scheme, installed=installed,
                                  suggestion=suggestion)

    def schemes(self) -> list[str]:
        """Every scheme with a loader or declared by an installed plugin, sorted (imports nothing)."""
        self._find()
        working = {scheme for scheme, owner in self._owners.items()
                   if self._candidates is not None and self._candidates[owner].state in ("found", "loaded")}
        return sorted(set(self._user_loaders) | set(self._plugin_loaders) | working)

    def scheme_distributions(self) -> dict[str, str | None]:
        """Scheme -> the distribution that serves it, for every installed scheme (imports nothing).

        User-registered loaders map to None; a scheme nothing installed serves
        but a known distribution adds maps to that distribution only if asked
        for by name (see :data:`KNOWN_SCHEMES`).
        """
        candidates = self._find()
        result: dict[str, str | None] = {}
        for scheme, owner in self._owners.items():
            result[scheme] = candidates[owner].distribution
        for scheme, (_, name) in self._plugin_loaders.items():
            candidate = candidates.get(name)
            result.setdefault(scheme, candidate.distribution if candidate is not None else None)
        for scheme in self._user_loaders:
            result[scheme] = None
        return result

    def plugins(self, details: bool = False) -> list[PluginInfo]:
        """Every installed plugin with its status (all imported); ``details`` runs the display hooks."""
        self.prepare_all()
        with self._lock:
            infos = list(self._infos.values())
        result = []
        for info in infos:
            candidate = self._candidates.get(info.name) if self._candidates is not None else None
            has_dist = candidate is not None and candidate.dist is not None
            missing = _missing_dependencies(candidate.dist) if has_dist and candidate is not None else ()
            extra = self._collect_details(info.name) if details and info.loaded else info.details
            result.append(PluginInfo(info.name, info.distribution, info.version, info.schemes,
                                     info.status, missing if info.status != "disabled" else (), extra))
        return result

    @property
    def manager(self) -> pluggy.PluginManager:
        """The pluggy plugin manager (created on first use)."""
        if self._manager is None:
            import pluggy  # pluggy is imported with the first plugin, not with loadstone

            from .hookspecs import PROJECT_NAME, LoadstoneHookSpecs

            manager = pluggy.PluginManager(PROJECT_NAME)
            manager.add_hookspecs(LoadstoneHookSpecs)
            self._manager = manager
        return self._manager

    def hook(self) -> Any:
        """The hook caller of every imported plugin (``registry.hook().loadstone_…(...)``)."""
        return self.manager.hook

    def series_image_ids(self, series_id: str, options: Mapping[str, Any] | None = None) -> list[str] | None:
        """Ask the plugins to expand a series id (first answer wins), with the caller's load options."""
        scheme = scheme_of_id(series_id)
        if scheme is not None:
            self.prepare_scheme(scheme)
        given = dict(options or {})
        result = self.manager.hook.loadstone_series_image_ids(series_id=series_id, options=given)
        if result is None and not self._all_loaded():
            self.prepare_all()
            result = self.manager.hook.loadstone_series_image_ids(series_id=series_id, options=given)
        return None if result is None else list(result)

    # -- discovery ---------------------------------------------------------
    def _find(self) -> dict[str, _Candidate]:
        """The installed plugins and the schemes they declare, read once (nothing imported)."""
        candidates = self._candidates
        if candidates is not None:
            return candidates
        with self._lock:
            if self._candidates is not None:
                return self._candidates
            found: dict[str, _Candidate] = {}
            owners: dict[str, str] = {}
            if not _env_flag("LOADSTONE_DISABLE_PLUGIN_AUTOLOAD"):
                found, owners = _read_entry_points()
            disabled = _disabled_names()
            for name, candidate in found.items():
                if name.lower() in disabled or (candidate.distribution or "").lower() in disabled:
                    candidate.state = "disabled"
                    self._infos[name] = PluginInfo(name, candidate.distribution, candidate.version,
                                                   tuple(candidate.declared), "disabled")
            self._owners = owners
            self._candidates = found
            return found

    def _all_loaded(self) -> bool:
        return self._candidates is not None and all(c.state != "found" for c in self._candidates.values())

    def _load(self, name: str, candidate: _Candidate) -> None:
        if candidate.state != "found":
            return
        try:
            module = candidate.entry_point.load()
        except Exception as exc:
            candidate.state = "failed"
            self._fail(name, candidate.distribution, candidate.version,
                       f"import failed: {type(exc).__name__}: {exc}")
            return
        info = self.register_plugin(module, name, candidate.distribution, candidate.version)
        candidate.state = "loaded" if info.loaded else "failed"

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
            self._providers_by_plugin.clear()
            self._candidates = None
            self._owners = {}
            self._ready_schemes = set()

    def _drop_providers(self, name: str) -> None:
        for provider in self._providers_by_plugin.get(name, ()):
            self._metadata.remove_provider(provider)

    def _fail(self, name: str, dist: str | None, version: str | None, why: str) -> None:
        self._infos[name] = PluginInfo(name, dist, version, (), f"failed: {why}")
        warnings.warn(f"loadstone plugin {name!r} ({dist or 'no distribution'}) disabled: {why}",
                      LoadstoneWarning, stacklevel=5)

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
                        LoadstoneWarning, stacklevel=4,
                    )
                    continue
                self._plugin_loaders[scheme] = (loader, name)
                claimed.append(scheme)
            self._providers_by_plugin[name] = [provider for provider, _ in providers]
            for provider, priority in providers:
                self._metadata.add_provider(provider, priority)
            info = PluginInfo(name, distribution, version, tuple(sorted(claimed)), "loaded")
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
            try:
                answer = function()
            except Exception as exc:  # display only: a broken probe is shown, not raised
                details["error"] = f"{type(exc).__name__}: {exc}"
                continue
            if isinstance(answer, Mapping):
                details.update({str(k): str(v) for k, v in answer.items()})
        return details


def _read_entry_points() -> tuple[dict[str, _Candidate], dict[str, str]]:
    """Plugins (group ``loadstone``) by name, and declared scheme -> plugin name (``loadstone.schemes``)."""
    everything = md.entry_points()
    plugins = sorted(everything.select(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name)
    found: dict[str, _Candidate] = {}
    by_distribution: dict[str, list[str]] = {}
    for ep in plugins:
        if ep.name in found:  # the same distribution visible twice on sys.path
            continue
        dist = getattr(ep, "dist", None)
        dist_name = dist.metadata["Name"] if dist is not None else None
        found[ep.name] = _Candidate(ep, dist_name, dist.version if dist is not None else None, dist)
        if dist_name:
            by_distribution.setdefault(_canonical(dist_name), []).append(ep.name)
    owners: dict[str, str] = {}
    for ep in sorted(everything.select(group=SCHEMES_GROUP), key=lambda ep: (ep.value, ep.name)):
        try:
            scheme = normalize_scheme(ep.name)
        except ValueError:
            continue
        target = ep.value.strip()
        dist = getattr(ep, "dist", None)
        same_dist = by_distribution.get(_canonical(dist.metadata["Name"]), []) if dist is not None else []
        if target in found:
            owner = target
        elif _canonical(target) in by_distribution:
            owner = by_distribution[_canonical(target)][0]
        elif len(same_dist) == 1:
            owner = same_dist[0]
        else:
            continue
        if scheme in owners and owners[scheme] != owner:
            warnings.warn(f"scheme {scheme!r} is declared by plugins {owners[scheme]!r} and {owner!r}; "
                          f"using {owners[scheme]!r}", LoadstoneWarning, stacklevel=5)
            continue
        owners[scheme] = owner
        found[owner].declared.append(scheme)
    return found, owners


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _installed(distribution: str) -> bool:
    try:
        md.version(distribution)
    except md.PackageNotFoundError:
        return False
    return True


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

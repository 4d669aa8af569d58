"""The pluggy plugin manager: built-in probes and catalogue sources, then third-party plugins.

Built once per process, on first use (never by ``import persona_ollama``). Third-party plugins
come from the entry-point group ``persona_ollama``; one that fails to load is recorded in
:func:`load_problems` and costs only itself.
"""

from __future__ import annotations

import functools
import importlib.metadata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pluggy

from . import accelerators, hookspecs
from .hookspecs import PROJECT
from .packaged_catalogue import PackagedCatalogue

# Built-in plugins are registered under names with this prefix; any other name is third-party.
BUILTIN_PREFIX = f"{PROJECT}."


@dataclass(frozen=True)
class Implementation:
    """One plugin's implementation of a hook, callable on its own."""

    plugin_name: str
    function: Callable[..., Any]
    argnames: tuple[str, ...]

    def __call__(self, **kwargs: Any) -> Any:
        # Like pluggy's own call loop: pass only the arguments the implementation declares.
        return self.function(*(kwargs[name] for name in self.argnames))


@dataclass(frozen=True)
class _State:
    manager: pluggy.PluginManager
    problems: tuple[str, ...]


@functools.cache
def _state() -> _State:
    manager = pluggy.PluginManager(PROJECT)
    manager.add_hookspecs(hookspecs)
    manager.register(PackagedCatalogue(), name=f"{BUILTIN_PREFIX}packaged_catalogue")
    for name, probe in accelerators.BUILTIN_PROBES.items():
        manager.register(probe, name=f"{BUILTIN_PREFIX}{name}")
    return _State(manager, tuple(_load_entry_points(manager)))


def _load_entry_points(manager: pluggy.PluginManager) -> list[str]:
    """Load third-party plugins; return why any failed (empty when all loaded)."""
    try:
        manager.load_setuptools_entrypoints(PROJECT)
    except Exception:  # noqa: BLE001 - pluggy stops at the first plugin that fails to load,
        return _load_one_by_one(manager)  # so load the rest one by one: it costs only itself
    return []


def _load_one_by_one(manager: pluggy.PluginManager) -> list[str]:
    problems = []
    for name in _entry_point_names():
        if manager.has_plugin(name) or manager.is_blocked(name):
            continue
        try:
            manager.load_setuptools_entrypoints(PROJECT, name=name)
        except Exception as error:  # noqa: BLE001 - third-party import code can raise anything
            manager.set_blocked(name)
            problems.append(f"plugin {name!r} failed to load: {type(error).__name__}: {error}")
    return problems


def _entry_point_names() -> list[str]:
    names = {
        entry_point.name
        for distribution in importlib.metadata.distributions()
        for entry_point in distribution.entry_points
        if entry_point.group == PROJECT
    }
    return sorted(names)


def plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, built on first call."""
    return _state().manager


def load_problems() -> tuple[str, ...]:
    """Why any third-party plugin failed to load (empty when all loaded); doctor shows them."""
    return _state().problems


def reset() -> None:
    """Forget the plugin manager, so the next call scans entry points again (for tests)."""
    _state.cache_clear()


def implementations(hook_name: str) -> list[Implementation]:
    """A hook's implementations from the lowest priority to the highest.

    That is the reverse of pluggy's call order: ``trylast`` ones, then the others in
    registration order, then ``tryfirst`` ones. Calling each one separately lets a caller
    keep the others' answers when one plugin fails.
    """
    caller: pluggy.HookCaller = getattr(plugin_manager().hook, hook_name)
    return [
        Implementation(impl.plugin_name, impl.function, tuple(impl.argnames))
        for impl in caller.get_hookimpls()
    ]


def plugins() -> list[tuple[str, str | None]]:
    """(plugin name, "distribution version" or None when not installed from a distribution),
    built-ins included, sorted by name; doctor lists the third-party ones."""
    manager = plugin_manager()
    origins = {
        id(plugin): f"{dist.project_name} {dist.version}"
        for plugin, dist in manager.list_plugin_distinfo()
    }
    return sorted(
        (name, origins.get(id(plugin)))
        for name, plugin in manager.list_name_plugin()
        if plugin is not None
    )

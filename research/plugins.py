"""The plugin manager: loads the built-ins and third-party plugins and looks names up.

Every plugin, built-in or not, is a module listed in the ``research`` entry-point group.
Each is imported on its own and each registration hook implementation is called on its
own, so one broken plugin is reported by name while the rest keep working. A name
registered twice is an error naming both plugins.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from types import ModuleType
from typing import Any

import pluggy

from research import PROJECT, hookspecs

log = logging.getLogger(__name__)

KINDS = ("optimizers", "schedules", "datasets", "samplers", "strategies", "executors", "pruners")
SINGULAR = {kind: kind[:-1] for kind in KINDS} | {"strategies": "strategy"}
OBSERVERS = ("on_trial_start", "on_epoch_end", "on_trial_end")


class PluginError(Exception):
    """A plugin problem the user must fix (duplicate name, unknown name)."""


@dataclass
class PluginInfo:
    """What one plugin is, where it comes from and what it provides."""

    name: str
    module: str
    distribution: str
    version: str
    registers: dict[str, list[str]] = field(default_factory=dict)
    observes: list[str] = field(default_factory=list)
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "module": self.module,
            "distribution": self.distribution,
            "version": self.version,
            "registers": self.registers,
            "observes": self.observes,
            "error": self.error,
        }


@dataclass
class Plugins:
    """Loaded plugins: factories by kind and name, and the observer hooks."""

    manager: pluggy.PluginManager
    infos: dict[str, PluginInfo]
    registry: dict[str, dict[str, Callable[..., Any]]]
    owners: dict[tuple[str, str], str]
    problems: list[str] = field(default_factory=list)

    def names(self, kind: str) -> list[str]:
        """Registered names of one kind, sorted."""
        return sorted(self.registry[kind])

    def get(self, kind: str, name: str) -> Callable[..., Any]:
        """The factory registered as ``name``; an unknown name lists the available ones."""
        try:
            return self.registry[kind][name]
        except KeyError:
            available = ", ".join(self.names(kind)) or "none installed"
            raise PluginError(f"unknown {SINGULAR[kind]} '{name}'; choose one of: {available}") from None

    def owner(self, kind: str, name: str) -> str:
        """The plugin that registered ``name``."""
        return self.owners[(kind, name)]

    def notify(self, hook: str, **kwargs: Any) -> None:
        """Call an observer hook on every plugin; one that raises is reported and skipped."""
        for impl in getattr(self.manager.hook, hook).get_hookimpls():
            try:
                impl.function(*[kwargs[arg] for arg in impl.argnames])
            except Exception as err:  # plugin code: report it by name, keep training
                message = f"plugin '{impl.plugin_name}' failed in {hook}: {type(err).__name__}: {err}"
                if message not in self.problems:
                    self.problems.append(message)
                    log.warning(message)


def _register_into(plugins: Plugins, kind: str, plugin_name: str) -> Callable[[str, Any], None]:
    """The ``register(name, factory)`` callback handed to one plugin for one kind."""

    def register(name: str, factory: Callable[..., Any]) -> None:
        if not isinstance(name, str) or not name:
            raise PluginError(f"plugin '{plugin_name}' registered a {SINGULAR[kind]} with an invalid name {name!r}")
        if not callable(factory):
            raise PluginError(f"plugin '{plugin_name}' registered {SINGULAR[kind]} '{name}' with a non-callable factory")
        if name in plugins.registry[kind]:
            first = plugins.owners[(kind, name)]
            raise PluginError(
                f"{SINGULAR[kind]} '{name}' is registered twice: by plugin '{first}' and by plugin "
                f"'{plugin_name}'; uninstall one of them or rename its {SINGULAR[kind]}"
            )
        plugins.registry[kind][name] = factory
        plugins.owners[(kind, name)] = plugin_name
        plugins.infos[plugin_name].registers.setdefault(kind, []).append(name)

    return register


def _load_entry_points(manager: pluggy.PluginManager, infos: dict[str, PluginInfo], problems: list[str]) -> None:
    found = sorted(entry_points(group=PROJECT), key=lambda ep: (ep.dist.name if ep.dist else "", ep.name))
    for ep in found:
        dist = ep.dist.name if ep.dist else "unknown"
        version = ep.dist.version if ep.dist else "unknown"
        name = ep.name if ep.name not in infos else f"{dist}:{ep.name}"
        info = PluginInfo(name=name, module=ep.value, distribution=dist, version=version)
        infos[name] = info
        try:
            module = ep.load()
        except Exception as err:  # a third party's import error: report it, load the rest
            info.error = f"{type(err).__name__}: {err}"
            problems.append(f"plugin '{name}' ({dist}) failed to load: {info.error}")
            log.warning(problems[-1])
            continue
        manager.register(module, name=name)


def load_plugins(modules: Iterable[ModuleType | object] = ()) -> Plugins:
    """Load every plugin of the ``research`` entry-point group, plus ``modules`` given directly.

    ``modules`` lets a notebook or a test add plugins without installing a distribution.
    Raises PluginError when two plugins register the same name.
    """
    manager = pluggy.PluginManager(PROJECT)
    manager.add_hookspecs(hookspecs)
    infos: dict[str, PluginInfo] = {}
    problems: list[str] = []
    _load_entry_points(manager, infos, problems)
    for module in modules:
        name = getattr(module, "__name__", type(module).__name__)
        infos[name] = PluginInfo(name=name, module=name, distribution="(in process)", version="")
        manager.register(module, name=name)

    plugins = Plugins(manager, infos, {kind: {} for kind in KINDS}, {}, problems)
    for kind in KINDS:
        for impl in getattr(manager.hook, f"register_{kind}").get_hookimpls()[::-1]:
            try:
                impl.function(register=_register_into(plugins, kind, impl.plugin_name))
            except PluginError:
                raise
            except Exception as err:  # plugin code: report it by name, keep the others
                message = f"plugin '{impl.plugin_name}' failed in register_{kind}: {type(err).__name__}: {err}"
                infos[impl.plugin_name].error = message
                problems.append(message)
                log.warning(message)
    for hook in OBSERVERS:
        for impl in getattr(manager.hook, hook).get_hookimpls():
            infos[impl.plugin_name].observes.append(hook)
    return plugins

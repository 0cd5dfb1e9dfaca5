"""The plugin manager: loads a set of plugins, looks names up, builds plugins and calls hooks.

Every plugin, built-in or not, is a module listed in the ``research`` entry-point group, or a
module or object handed to :func:`load_plugins`. Each is imported on its own and each hook
implementation is called on its own, so one broken plugin is reported by name while the rest
keep working. Two plugins that register one name *clash*: listing still works and shows both;
only using that name is refused, with the distribution to uninstall.

A loaded set is described by a ``PluginSet`` (importable names), which travels with every
unit of work, so a worker process loads exactly the study's plugins.
"""

from __future__ import annotations

import contextlib
import difflib
import importlib
import importlib.util
import logging
import re
import reprlib
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pluggy

from research import DISTRIBUTION, PROJECT, hookspecs
from research.contracts import PRODUCTS
from research.errors import PluginFailure, ResearchError, UsageError, raised
from research.options import bad_default, check, check_required, declared
from research.words import plural

if TYPE_CHECKING:
    from research.report.figure import Figure
    from research.study.control import Control
    from research.study.store import Store
    from research.study.store import Study as StudyRecord

log = logging.getLogger(__name__)

KINDS = ("trainers", "models", "optimizers", "schedules", "datasets", "samplers", "strategies", "executors", "pruners")
SINGULAR = {kind: kind[:-1] for kind in KINDS} | {"strategies": "strategy"}
OBSERVERS = ("on_trial_start", "on_epoch_end", "on_trial_end")
CONTRIBUTIONS = ("register_commands", "study_figure", "describe_event")
# Arguments the host passes to a factory by contract, not options a user gives.
CONTRACT_ARGUMENTS = {"executors": ("workers",), "models": ("dtype", "rng"), "trainers": ("plugins",)}
# What a registered name may be: typed in commands, part of study and file names (a colon
# names a plugin by its import path instead, package.module:Class).
REGISTERED_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
# The dict Python code gives a plugin's options in, by kind; the other kinds' are given by name.
OPTION_TABLES = {"trainers": "trainer_options", "datasets": "dataset_options", "samplers": "sampler_options",
                 "pruners": "prune_options", "executors": "executor_options"}
# The command line's NAME=VALUE flag for a plugin's options, by kind.
OPTION_FLAGS = {kind: f"--{SINGULAR[kind]}-opt" for kind in KINDS} | {"optimizers": "--opt", "schedules": "--opt",
                                                                      "pruners": "--prune-opt"}
IN_PROCESS = "(in process)"


def _lacking(expected: type, product: Any) -> list[str]:
    """The public members of the contract ``expected`` that ``product`` does not have."""
    members = [*vars(expected), *getattr(expected, "__annotations__", {})]
    return [m for m in dict.fromkeys(members) if not m.startswith("_") and not hasattr(product, m)]


def _class_name(thing: Any) -> str:
    """``module.Class`` of a class, or of an object's class."""
    cls = thing if isinstance(thing, type) else type(thing)
    return f"{cls.__module__}.{cls.__qualname__}"


class PluginError(UsageError):
    """A plugin problem the user must fix: an unknown or clashing name, a bad option, a
    plugin that refused its options."""


@dataclass
class PluginInfo:
    """What one plugin is, where it comes from and what it provides."""

    name: str
    module: str
    distribution: str
    version: str
    registers: dict[str, list[str]] = field(default_factory=dict)
    observes: list[str] = field(default_factory=list)
    contributes: list[str] = field(default_factory=list)  # commands, figures, event descriptions
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "module": self.module, "distribution": self.distribution, "version": self.version,
            "registers": self.registers, "observes": self.observes, "contributes": self.contributes,
            "error": self.error,
        }


@dataclass(frozen=True)
class PluginSet:
    """Which plugins a study uses, by name: the installed ones (``entry_points``) and the
    ``modules`` given directly (``package.module`` or ``package.module:attribute``). Objects
    that cannot be imported by name are listed as ``<in process: NAME>``."""

    entry_points: bool = True
    modules: tuple[str, ...] = ()

    def unimportable(self) -> list[str]:
        """The plugins a worker in another process could not import."""
        return [m for m in self.modules if m.startswith("<")]


@dataclass
class Plugins:
    """A loaded plugin set: factories by kind and name, clashes, and the hooks."""

    manager: pluggy.PluginManager
    infos: dict[str, PluginInfo]
    set: PluginSet = field(default_factory=PluginSet)
    registry: dict[str, dict[str, Callable[..., Any]]] = field(default_factory=lambda: {k: {} for k in KINDS})
    owners: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    log_problems: bool = True  # also log each problem as it happens (a program that shows them itself: False)
    echo_problems: bool = False  # print each as a warning line instead (a worker process: nothing shows them)

    # names --------------------------------------------------------------------------------

    def names(self, kind: str) -> list[str]:
        """Registered names of one kind, sorted (clashing names included)."""
        return sorted(self.registry[kind])

    def get(self, kind: str, name: str) -> Callable[..., Any]:
        """The factory registered as ``name``. An unknown name lists the available ones; a
        clashing one says which distribution to uninstall."""
        if name not in self.registry[kind] and ":" in name:
            self._import_by_name(kind, name)
        try:
            factory = self.registry[kind][name]
        except KeyError:
            available = ", ".join(self.names(kind)) or "none installed"
            by_path = ", or a class by its import path, package.module:Class" if kind == "trainers" else ""
            failed = sorted(n for n, info in self.infos.items() if info.error)
            why = (f" ({', '.join(f'plugin {n!r}' for n in failed)} failed to load, which may be why: "
                   "`research plugins` says what went wrong)") if failed else ""
            raise PluginError(f"unknown {SINGULAR[kind]} '{name}'; choose one of: {available}{by_path}{why}") from None
        if len(self.owners[(kind, name)]) > 1:
            raise PluginError(self.clash_message(kind, name))
        return factory

    def require(self, names: Mapping[str, Any], user: str) -> None:
        """Every plugin that ``names`` names by kind (``{"dataset": "rings", "strategy": ...}``: a
        stored study's settings, a trial's configuration) is installed. ``user`` (a stored study,
        a model file) keeps only the names, so a missing one is to be installed again, not
        replaced by another: a PluginError saying so, instead of the list to choose from."""
        for kind in KINDS:
            name = names.get(SINGULAR[kind])
            if isinstance(name, str) and ":" not in name and name not in self.registry[kind]:
                raise PluginError(f"{user} uses {SINGULAR[kind]} '{name}', which no installed plugin registers (one "
                                  "uninstalled since?); install the package that registers it again (`research "
                                  "plugins` lists the installed ones)")

    def _import_by_name(self, kind: str, name: str) -> None:
        """A factory named by its import path (``package.module:Class``) instead of registered:
        imported once, and importable by worker processes by the same name."""
        module_name, _, attribute = name.partition(":")
        try:
            factory = getattr(_imported(module_name), attribute)
        except (ImportError, AttributeError) as err:
            raise PluginError(f"cannot import {SINGULAR[kind]} '{name}' ({type(err).__name__}: {err}); "
                              "check the name, and that the module is on the Python path") from None
        if not callable(factory):
            raise PluginError(f"{SINGULAR[kind]} '{name}' is a {type(factory).__name__}, not a class or function")
        self.registry[kind][name] = factory
        self.owners[(kind, name)] = [module_name]
        self.infos.setdefault(module_name, PluginInfo(module_name, module_name, IN_PROCESS, ""))

    def owner(self, kind: str, name: str) -> str:
        """The plugin that registered ``name`` (the first, for a clashing name)."""
        return self.owners[(kind, name)][0]

    def builtin(self, kind: str, name: str) -> bool:
        """Whether ``name`` is one of research's own (registered by this distribution alone)."""
        return all(self.infos[owner].distribution == DISTRIBUTION for owner in self.owners[(kind, name)])

    def clash_message(self, kind: str, name: str) -> str:
        owners = self.owners[(kind, name)]
        if len(set(owners)) == 1:  # one plugin registering the name twice: its own mistake
            return (f"{SINGULAR[kind]} '{name}' is registered twice by plugin '{owners[0]}' (distribution "
                    f"{self.infos[owners[0]].distribution}); it must register the name once")
        described = " and ".join(f"by plugin '{o}' (distribution {self.infos[o].distribution})" for o in owners)
        others = sorted({self.infos[o].distribution for o in owners} - {DISTRIBUTION, IN_PROCESS})
        fix = " or ".join(f"`pip uninstall {d}`" for d in others) or "remove one of them"
        return f"{SINGULAR[kind]} '{name}' is registered twice: {described}; uninstall one: {fix}"

    # building -----------------------------------------------------------------------------

    def options_of(self, kind: str, name: str) -> dict[str, Any] | None:
        """The declared options (research.options.Spec by name) of a plugin; None when its
        factory takes any keyword."""
        factory = self.get(kind, name)
        try:
            specs = declared(factory)
        except ValueError as err:  # a declaration no value fits (research.options.Spec): the plugin's to fix
            raise PluginError(f"{SINGULAR[kind]} '{name}' (plugin '{self.owner(kind, name)}'): {err}") from None
        if specs is None:
            return None
        return {n: s for n, s in specs.items() if n not in CONTRACT_ARGUMENTS.get(kind, ())}

    def check_options(self, kind: str, name: str, options: Mapping[str, Any], *,
                      complete: bool = False) -> dict[str, Any]:
        """``options`` converted and checked against the plugin's declaration; ``complete``:
        every option without a default is among them (what building the plugin needs)."""
        owner = f"{SINGULAR[kind]} '{name}'"
        checked = check(owner, self.options_of(kind, name), options)
        if complete:
            check_required(owner, self.options_of(kind, name), checked, OPTION_TABLES.get(kind), OPTION_FLAGS[kind],
                           own_flags=":" not in name)
        return checked

    def build(self, kind: str, name: str, *args: Any, **options: Any) -> Any:
        """Check ``options``, call the factory, check what it returns.

        Raises PluginError for the user's mistakes (unknown name, bad option, a ValueError or
        TypeError from the factory: plugins raise those for bad options), PluginFailure when
        the plugin's code fails otherwise or returns the wrong kind of object.
        """
        owner = f"{SINGULAR[kind]} '{name}'"
        factory = self.get(kind, name)
        contract = {key: options.pop(key) for key in CONTRACT_ARGUMENTS.get(kind, ()) if key in options}
        checked = self.check_options(kind, name, options, complete=True)
        wrong = bad_default(self.options_of(kind, name), checked)
        if wrong is not None:
            spec, valid = wrong
            raise PluginFailure(f"plugin '{self.owner(kind, name)}': {owner} declares {spec.name}={spec.default!r} "
                                f"as its default, but {spec.name} must be {valid}; the plugin must change its "
                                f"default (meanwhile give {OPTION_FLAGS[kind]} {spec.name}=VALUE)")
        try:
            product = factory(*args, **contract, **checked)
        except (ResearchError, PluginFailure):  # named already (a trainer building its model...)
            raise
        except (ValueError, TypeError) as err:
            lines = str(err).splitlines()
            text = lines[0] if lines else type(err).__name__
            if len(lines) > 1:  # one line is shown: say that there is more, and where
                text += f" (and {plural(len(lines) - 1, 'more line')}: --debug shows them)"
            raise PluginError(text if text.startswith(owner) else f"{owner}: {text}") from err
        except (Exception, SystemExit) as err:  # plugin code: name the plugin, keep the cause for --debug
            raise PluginFailure(f"plugin '{self.owner(kind, name)}' failed building {owner}: {raised(err)}") from err
        expected = PRODUCTS.get(kind)
        if expected is not None and not isinstance(product, expected):
            raise PluginFailure(self._breach(kind, name, f"returned a {_class_name(product)}", _lacking(expected, product)))
        return product

    def check_class(self, kind: str, name: str) -> None:
        """A plugin that is a class without a method its kind's contract requires, refused
        before anything is built or stored (each trial of a study would fail on it)."""
        factory, expected = self.get(kind, name), PRODUCTS.get(kind)
        if isinstance(factory, type) and expected is not None:
            missing = [m for m in _lacking(expected, factory) if callable(getattr(expected, m, None))]
            if missing:
                raise PluginFailure(self._breach(kind, name, f"is the class {_class_name(factory)}", missing))

    def _breach(self, kind: str, name: str, what: str, missing: list[str]) -> str:
        """The line for a plugin whose product breaks its kind's contract: the members a
        protocol lists that it lacks, or the class it is not (a dataset is a Dataset)."""
        contract, named = PRODUCTS[kind], f"plugin '{self.owner(kind, name)}': {SINGULAR[kind]} '{name}' {what}"
        if not getattr(contract, "_is_protocol", False):
            return f"{named}, not a {_class_name(contract)} (what every {SINGULAR[kind]} factory returns)"
        lacks = f" without {', '.join(missing)}" if missing else ""
        return f"{named}{lacks}; every {SINGULAR[kind]} has what research.contracts.{contract.__name__} lists"

    # hooks --------------------------------------------------------------------------------

    def report(self, message: str) -> None:
        """Record a plugin problem (once), shown as the command's warnings and by `research plugins`."""
        if message not in self.problems:
            self.problems.append(message)
            if self.echo_problems:  # a closed stderr (a pipe's reader gone) must not fail the trial
                with contextlib.suppress(OSError):
                    print(f"warning: {message}", file=sys.stderr, flush=True)
            elif self.log_problems:
                log.warning(message)

    def notify(self, hook: str, **kwargs: Any) -> None:
        """Call an observer hook on every plugin; one that raises is reported and skipped."""
        for _ in self.each(hook, lambda: kwargs):
            pass

    def each(self, hook: str, arguments: Callable[[], dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
        """Call an observer hook plugin by plugin, each with fresh ``arguments()``, and yield
        the plugin's name with the arguments it was given (what it added to them); one that
        raises is reported and skipped."""
        for impl in getattr(self.manager.hook, hook).get_hookimpls():
            given = arguments()
            try:
                impl.function(*[given[arg] for arg in impl.argnames])
            except (Exception, SystemExit) as err:  # plugin code: report it by name, keep the others
                self.report(f"plugin '{impl.plugin_name}' failed in {hook}: {raised(err)}")
                continue
            yield impl.plugin_name, given

    def first(self, hook: str, expect: type | None = None, **kwargs: Any) -> Any:
        """The first answer (not None) of a firstresult hook, latest registered first, as
        pluggy orders them; an implementation that raises, or answers with something other
        than an ``expect`` (when given), is reported by name and the next one asked."""
        for impl in reversed(getattr(self.manager.hook, hook).get_hookimpls()):
            try:
                answer = impl.function(*[kwargs[arg] for arg in impl.argnames])
            except (Exception, SystemExit) as err:  # plugin code: report it by name, ask the next one
                self.report(f"plugin '{impl.plugin_name}' failed in {hook}: {raised(err)}")
                continue
            if answer is not None and expect is not None and not isinstance(answer, expect):
                wanted = expect.__name__ if expect.__module__ == "builtins" else _class_name(expect)
                self.report(f"plugin '{impl.plugin_name}': its {hook} returned {reprlib.repr(answer)}, not a "
                            f"{wanted}; it is ignored")
                continue
            if answer is not None:
                return answer
        return None

    def describe(self, study: StudyRecord, event: Mapping[str, Any]) -> str:
        """One readable line for a stored event: the plugins' answer, or its kind and data."""
        import json

        text = self.first("describe_event", str, study=study, event=event)
        return text if text is not None else f"{event['kind']} {json.dumps(event['data'])}"

    def figure(self, store: Store, study: StudyRecord, metric: str, named: bool = True) -> Figure | None:
        """The plugins' figure of a study, or None when none of them draws this study (or
        none draws a Figure: each such answer is reported)."""
        from research.report.figure import Figure

        return self.first("study_figure", Figure, store=store, study=study, metric=metric, named=named)

    def controls(self, study: StudyRecord) -> list[Control]:
        """What a user may do to ``study`` from outside its process (the plugins' answer to
        ``study_controls``); an answer that is not a list of Control is reported and ignored."""
        from research.study.control import Control

        answer = self.first("study_controls", study=study)
        if answer is None:
            return []
        if not isinstance(answer, (list, tuple)) or not all(isinstance(c, Control) for c in answer):
            self.report(f"a study_controls hook returned {type(answer).__name__}, not a list of "
                         f"research.study.control.Control; the study offers no controls")
            return []
        return list(answer)


def _register_into(plugins: Plugins, kind: str, plugin_name: str) -> Callable[[str, Any], None]:
    """The ``register(name, factory)`` callback handed to one plugin for one kind."""

    def register(name: str, factory: Callable[..., Any]) -> None:
        if not isinstance(name, str) or not name:
            raise PluginError(f"plugin '{plugin_name}' registered a {SINGULAR[kind]} with an invalid name {name!r}")
        if not REGISTERED_NAME.fullmatch(name):
            raise PluginError(f"plugin '{plugin_name}' registered a {SINGULAR[kind]} named {name!r}; a name is "
                              "letters, digits, '.', '_' and '-', starting with a letter or digit (it is typed in "
                              "commands and makes file names)")
        if not callable(factory):
            raise PluginError(f"plugin '{plugin_name}' registered {SINGULAR[kind]} '{name}' with a non-callable factory")
        owners = plugins.owners.setdefault((kind, name), [])
        owners.append(plugin_name)
        plugins.infos[plugin_name].registers.setdefault(kind, []).append(name)
        if len(owners) == 1:
            plugins.registry[kind][name] = factory
        else:
            plugins.report(plugins.clash_message(kind, name))

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
        except (Exception, SystemExit) as err:  # a third party's import error: report it, load the rest
            info.error = raised(err)
            problems.append(f"plugin '{name}' ({dist}) failed to load: {info.error}")
            continue
        _register(manager, module, info, problems)


def _register(manager: pluggy.PluginManager, module: object, info: PluginInfo, problems: list[str]) -> None:
    """Register one plugin; the same module installed twice, or a hook whose arguments do not
    match its spec, is reported, not fatal: the other plugins keep working."""
    twin = manager.get_name(module)
    if twin is not None:
        info.error = f"the same module as plugin '{twin}': two installations of one package"
        problems.append(f"plugin '{info.name}' (distribution {info.distribution}) is {info.error}; uninstall one")
        return
    try:
        manager.register(module, name=info.name)
    except pluggy.PluginValidationError as err:
        manager.unregister(name=info.name)
        info.error = str(err).replace("\n", " ").strip()
        problems.append(f"plugin '{info.name}' ({info.distribution}) failed to load: {info.error}; "
                        "see docs/plugins.md for the hooks' arguments")


def _unknown_hooks(manager: pluggy.PluginManager) -> list[str]:
    """A hook implementation no spec has (``register_sampler`` for ``register_samplers``) is
    never called: say so, with the nearest hook's name, rather than ignore it silently."""
    specified = [name for name, caller in vars(manager.hook).items() if getattr(caller, "spec", None) is not None]
    found = []
    for name, caller in vars(manager.hook).items():
        if getattr(caller, "spec", True) is None:
            near = difflib.get_close_matches(name, specified, n=1)
            hint = f"did you mean {near[0]}? " if near else ""
            for impl in caller.get_hookimpls():
                found.append(f"plugin '{impl.plugin_name}' implements {name}, which is not a research hook, so it is "
                             f"never called; {hint}docs/plugins.md lists the hooks")
    return found


def importable_name(plugin: object) -> str | None:
    """``package.module`` or ``package.module:attribute`` naming ``plugin``, if another process
    could import it by that name; None otherwise (defined in __main__, a notebook, a function)."""
    if isinstance(plugin, ModuleType):
        name = plugin.__name__
        return name if name != "__main__" and importlib.util.find_spec(name) is not None else None
    module_name = getattr(plugin, "__module__", None) or type(plugin).__module__
    if module_name in (None, "__main__", "builtins"):
        return None
    try:
        module = importlib.import_module(module_name)
    except ImportError:  # defined by code that is not a module (exec, a notebook cell)
        return None
    for attribute, value in vars(module).items():
        if value is plugin:
            return f"{module_name}:{attribute}"
    return None


def _import(name: str) -> object:
    """The plugin module (or object) named ``package.module[:attribute]``; a PluginError naming
    it when it cannot be imported (a plugin given by the caller, not one installed)."""
    module_name, _, attribute = name.partition(":")
    try:
        module = _imported(module_name)
        return getattr(module, attribute) if attribute else module
    except PluginError:
        raise
    except (ImportError, AttributeError, ValueError) as err:  # ValueError: an empty module name
        raise PluginError(f"cannot import plugin '{name}' ({type(err).__name__}: {err}); check the name, and that "
                          "it is on the Python path") from None


def _imported(module_name: str) -> ModuleType:
    """The module, imported; a PluginError naming it when its own code raises while it is
    imported (a syntax error, a failing statement): the caller's code, not research's bug."""
    try:
        return importlib.import_module(module_name)
    except (ImportError, ValueError):  # not found (or an empty name): the callers say so
        raise
    except Exception as err:  # noqa: BLE001 - any error of the module's own code
        raise PluginError(f"module '{module_name}' raised while it was imported: {type(err).__name__}: {err}; fix "
                          f"it (`python -c 'import {module_name}'` shows the traceback)") from None


def _plugin_name(plugin: object) -> str:
    if isinstance(plugin, ModuleType):
        return plugin.__name__
    return getattr(plugin, "__name__", None) or type(plugin).__name__


def _unique(name: str, taken: Mapping[str, Any]) -> str:
    """``name``, or ``name (2)``, ``name (3)``... when a plugin has it already: a script's own
    ``models.py`` beside the built-in plugin ``models``."""
    unique, count = name, 1
    while unique in taken:
        count += 1
        unique = f"{name} ({count})"
    return unique


def load_plugins(modules: Iterable[ModuleType | object | str] = (), *, entry_points: bool = True,
                 log_problems: bool = True) -> Plugins:
    """Load the installed plugins (the ``research`` entry-point group, unless
    ``entry_points=False``) and ``modules``: plugin modules or objects given directly, or
    their importable names (``"package.module"``, ``"package.module:attribute"``).

    Never raises for a broken or clashing plugin: ``problems`` says what went wrong (and is
    logged as warnings unless ``log_problems=False``); using a clashing name is refused. A
    module given here that is also installed is loaded once. A lone name or module, not in a
    list, is refused: a name would be read as its letters (``cannot import plugin 'm'``).
    """
    if isinstance(modules, (str, ModuleType)) or not isinstance(modules, Iterable):
        one = repr(modules) if isinstance(modules, str) else getattr(modules, "__name__", "my_module")
        raise UsageError(f"plugins must be a list of plugin modules or their names, e.g. plugins=[{one}]; "
                         f"got {type(modules).__name__}")
    manager = pluggy.PluginManager(PROJECT)
    manager.add_hookspecs(hookspecs)
    infos: dict[str, PluginInfo] = {}
    problems: list[str] = []
    if entry_points:
        _load_entry_points(manager, infos, problems)
    names = []
    for plugin in modules:
        if isinstance(plugin, str):
            importable: str | None = plugin
            plugin = _import(plugin)
        else:
            importable = importable_name(plugin)
        if manager.get_name(plugin) is not None:  # installed too: already loaded
            continue
        name = _unique(_plugin_name(plugin), infos)
        names.append(importable or f"<in process: {name}>")
        infos[name] = PluginInfo(name=name, module=importable or name, distribution=IN_PROCESS, version="")
        _register(manager, plugin, infos[name], problems)
        if manager.get_name(plugin) is not None and not manager.get_hookcallers(plugin):
            problems.append(f"plugin {importable or repr(plugin)} implements no hook of research's (functions "
                            "marked @research.hookimpl, named as in docs/plugins.md): nothing of it is used")

    problems += _unknown_hooks(manager)
    plugins = Plugins(manager, infos, PluginSet(entry_points, tuple(names)), log_problems=log_problems)
    for problem in problems:
        plugins.report(problem)
    for kind in KINDS:
        for impl in getattr(manager.hook, f"register_{kind}").get_hookimpls():
            try:
                impl.function(register=_register_into(plugins, kind, impl.plugin_name))
            except (Exception, SystemExit) as err:  # plugin code: report it by name, keep the others
                message = f"plugin '{impl.plugin_name}' failed in register_{kind}: {raised(err)}"
                infos[impl.plugin_name].error = message
                plugins.report(message)
    for hooks, listed in ((OBSERVERS, "observes"), (CONTRIBUTIONS, "contributes")):
        for hook in hooks:
            for impl in getattr(manager.hook, hook).get_hookimpls():
                getattr(infos[impl.plugin_name], listed).append(hook)
    _LOADED[plugins.set] = plugins
    return plugins


# The last set loaded for each description in this process: a worker running in the study's
# own process (the serial executor) uses the study's very plugins, objects included; a worker
# process loads its set once and keeps it for the next units of work of that set.
_LOADED: dict[PluginSet, Plugins] = {}


def plugins_for(spec: PluginSet) -> Plugins:
    """The plugins described by ``spec``, loaded in this process at most once."""
    loaded = _LOADED.get(spec)
    if loaded is None:
        unimportable = spec.unimportable()
        if unimportable:
            raise PluginError(f"cannot load {', '.join(unimportable)} in a worker process: it is not importable by name")
        # A worker process: its problems (an observer that raises) are shown as they happen,
        # once per process, in the command line's own words.
        loaded = load_plugins(spec.modules, entry_points=spec.entry_points, log_problems=False)
        loaded.echo_problems = True
    return loaded

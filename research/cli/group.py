"""The command group of ``research``: built-in commands, commands that plugins add, and one
error handling for all of them.

Plugins' commands (the ``register_commands`` hook) and the flags plugins declare for
``research train`` are only known once the plugins are loaded, which happens when a
command is looked up, not at import: ``research --version`` loads nothing.
"""

from __future__ import annotations

import functools
import importlib
import os
import re
import sys
from collections.abc import Callable
from typing import Any

import typer
from typer.core import TyperGroup

from research.cli.console import CLOSED_PIPE, stopped, terminal
from research.errors import PluginFailure, ResearchError, traceback_text, unencodable_name

# click's UsageError (bad or missing flags and arguments), wherever this typer keeps its click.
_USAGE_ERROR = next(kind for kind in typer.BadParameter.__mro__ if kind.__name__ == "UsageError")

# Commands built from the loaded plugins: name -> "module:function(plugins) -> command".
# ``research train``'s flags come from the plugins' declarations.
_BUILT_FROM_PLUGINS = {"train": "research.cli.train:train_command"}


_CLI_EXITS = (typer.Exit, typer.Abort, *(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException"))
"""What a command raises to end itself: exits and the command line's own errors (click's,
which typer may carry inside itself: click is not a dependency of research)."""


def _owned(callback: Callable[..., Any], plugin: str, name: str) -> Callable[..., Any]:
    """A plugin command's ``callback`` whose failures name the plugin: its bug, not research's;
    but not an exit, a refusal worded for the user, nor the system's (an OSError, a store
    locked or damaged: research.study.guarded.passes), each said as research says it."""

    @functools.wraps(callback)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return callback(*args, **kwargs)
        except _CLI_EXITS:
            raise
        except Exception as err:
            from research.study.guarded import passes

            if passes(err):
                raise
            raise PluginFailure(f"plugin '{plugin}': command '{name}' failed: {type(err).__name__}: {err}") from err

    return run


def _writes_to_null_device() -> bool:
    """Whether standard output is the null device (as a closed pipe leaves it, console.py)."""
    try:
        return os.path.samestat(os.fstat(sys.stdout.fileno()), os.stat(os.devnull))
    except (OSError, ValueError, AttributeError):  # no file behind it (a test's captured output)
        return False


def _build(name: str, plugins: Any) -> Any:
    module, _, function = _BUILT_FROM_PLUGINS[name].partition(":")
    return getattr(importlib.import_module(module), function)(plugins)


def _flags_untyped(params: list[Any]) -> list[Any]:
    """A flag takes no value, so its help shows no ``<bool>`` type (typer shows one unless the
    metavar is set)."""
    for param in params:
        if getattr(param, "is_flag", False) and not getattr(param, "metavar", None):
            param.metavar = ""
    return params


def _without_flag_types(command: Any, ctx: Any) -> Any:
    if command is not None:
        _flags_untyped(command.get_params(ctx))
    return command


def _one_line(error: Any, group: Any = None) -> typer.Exit:
    """A flag or argument the command cannot take: one line naming it and where the help is
    (typer's boxed usage message otherwise). ``group``: the context of ``research`` itself, for an
    error raised before the command's own context was made (``--batchnorm=false``)."""
    ctx = error.ctx
    if ctx is not None:
        command, where = ctx.command, ctx.command_path
    else:
        name, command = group.meta.get(_RESOLVED, (None, None)) if group is not None else (None, None)
        where = f"{group.command_path} {name}" if name else "research"
    unwritable = _encode_error(error)
    if unwritable is not None:  # a path typed under a locale without its characters
        typer.echo(f"error: {unencodable_name(unwritable)}", err=True)
        return typer.Exit(error.exit_code)
    message = " ".join(error.format_message().split()).rstrip(".")
    typer.echo(f"error: {message}{_switch_hint(message, command, ctx)} (see `{where} --help`)", err=True)
    return typer.Exit(error.exit_code)


def _encode_error(error: Any) -> UnicodeEncodeError | None:
    """The UnicodeEncodeError behind a value typer could not convert (a path it could not
    encode), kept by pydantic's ValidationError as its cause; None for any other."""
    cause = error.__cause__
    if isinstance(cause, UnicodeEncodeError):
        return cause
    found = [e.get("ctx", {}).get("error") for e in getattr(cause, "errors", lambda: [])()]
    return next((e for e in found if isinstance(e, UnicodeEncodeError)), None)


_TRUTH_WORDS = {"true", "false", "yes", "no", "on", "off", "1", "0"}
_RESOLVED = "research.resolved"  # ctx.meta: the subcommand's name and command, once resolved


def _switch_hint(message: str, command: Any, ctx: Any) -> str:
    """That a switch takes no value, and its forms: after ``--batchnorm false``'s "unexpected
    extra argument (false)" (the switch given on the command line of ``ctx``), or
    ``--batchnorm=false``'s "does not take a value"."""
    if command is None:
        return ""
    switches = [p for p in command.params if getattr(p, "is_flag", False)]
    valued = re.search(r"Option '(--[^']+)' does not take a value", message)
    extra = re.search(r"unexpected extra argument\S* \(([^)\s]+)", message)
    if valued is not None:
        given = [p for p in switches if valued.group(1) in (*p.opts, *p.secondary_opts)]
    elif extra is not None and extra.group(1).lower() in _TRUTH_WORDS and ctx is not None:
        given = [p for p in switches if p.name in ctx.params
                 and getattr(ctx.get_parameter_source(p.name), "name", "") == "COMMANDLINE"]
    else:
        given = []
    if not given:
        return ""
    switch = given[-1]
    off = f" or {switch.secondary_opts[0]}" if switch.secondary_opts else ", or leave it out"
    said = "" if valued is not None else f" {switch.opts[0]} takes no value:"  # the message says it already
    return f";{said} write {switch.opts[0]}{off}"


class ResearchGroup(TyperGroup):
    """A TyperGroup that adds the plugins' commands and turns every error into one line."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        """Run the command line. A help page whose reader went away (``research --help | head``)
        ends with the closed pipe's exit code, as every other output does: the help's console
        (typer's, not research's) exits 1 after pointing standard output at the null device."""
        silent_before = _writes_to_null_device()
        try:
            return super().main(*args, **kwargs)
        except SystemExit as stop:
            if stop.code == 1 and not silent_before and _writes_to_null_device():
                raise SystemExit(CLOSED_PIPE) from None
            raise

    def _plugin_commands(self, ctx: Any) -> dict[str, Any]:
        """The commands plugins add, built once per invocation, each plugin's apart so that a
        name taken already is refused naming the plugins (a plugin problem: `research plugins`
        and the command's warnings show it): a built-in command's name, or one that two
        plugins add (neither is added, as with any name two plugins register)."""
        term = terminal(ctx)
        if term.plugin_commands is None:
            plugins = term.plugins
            added: dict[str, list[tuple[str, Any]]] = {}
            for plugin, extra in plugins.each("register_commands", lambda: {"cli": typer.Typer()}):
                found = typer.main.get_group(extra["cli"]).commands if extra["cli"].registered_commands else {}
                for name, command in found.items():
                    added.setdefault(name, []).append((plugin, command))
            term.plugin_commands = {}
            for name, by in sorted(added.items()):
                owners = " and ".join(sorted(f"'{plugin}'" for plugin, _ in by))
                if name in self.commands or name in _BUILT_FROM_PLUGINS:
                    plugins.report(f"plugin {owners} adds a command '{name}', the name of a built-in one; it is not "
                                   "added: rename it in that plugin")
                elif len(by) > 1:
                    plugins.report(f"plugins {owners} both add a command '{name}'; neither is added: uninstall or "
                                   "change one of them")
                else:
                    plugin, command = by[0]
                    if command.callback is not None:
                        command.callback = _owned(command.callback, plugin, name)
                    term.plugin_commands[name] = command
        return term.plugin_commands

    def list_commands(self, ctx: Any) -> list[str]:
        return [*_BUILT_FROM_PLUGINS, *super().list_commands(ctx), *self._plugin_commands(ctx)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name in _BUILT_FROM_PLUGINS:
            command = _build(cmd_name, terminal(ctx).plugins)
        else:
            if cmd_name == "plugins":  # it lists every plugin problem: those of the plugins' commands too
                self._plugin_commands(ctx)
            command = super().get_command(ctx, cmd_name) or self._plugin_commands(ctx).get(cmd_name)
        return _without_flag_types(command, ctx)

    def get_params(self, ctx: Any) -> list[Any]:
        return _flags_untyped(super().get_params(ctx))

    def make_context(self, info_name: Any, args: list[str], parent: Any = None, **extra: Any) -> Any:
        """Read ``research``'s own flags; a bad one is one line too (no arguments: the help)."""
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except _USAGE_ERROR as error:
            if type(error).__name__ == "NoArgsIsHelpError" or "--debug" in args:
                raise
            raise _one_line(error) from None
        except KeyboardInterrupt as stop:  # click would say "Aborted!" and exit 1
            raise stopped(stop) from None

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        name, command, rest = super().resolve_command(ctx, args)
        ctx.meta[_RESOLVED] = (name, command)  # for an error in its flags before its context exists
        return name, command, rest

    def invoke(self, ctx: Any) -> Any:
        """Run the command; an error becomes one line and an exit code (see console.py). The
        plugin problems met meanwhile (a describe_event that raised) and not shown yet end its
        output, whatever the command."""
        try:
            result = super().invoke(ctx)
            terminal(ctx).warn_problems()
            return result
        except _USAGE_ERROR as error:
            if terminal(ctx).debug:
                terminal(ctx).err.print(traceback_text(error), highlight=False, markup=False, soft_wrap=True)
            raise _one_line(error, ctx) from None
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise
        except (Exception, KeyboardInterrupt) as error:
            term = terminal(ctx)
            if not isinstance(error, ResearchError) or error.failed:  # a refusal stays one line
                term.warn_problems()  # an observer that failed before the failure is told, as after a success
            if term.debug:  # the traceback, then the same line and exit code as without --debug
                term.err.print(traceback_text(error), highlight=False, markup=False, soft_wrap=True)
            raise term.exit_for(error) from None

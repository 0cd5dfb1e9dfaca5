"""The terminal of one command: its two consoles, ``--debug``, the plugins, and how errors end.

Every command (built-in or a plugin's) reaches it through its typer context with
:func:`terminal`. Errors are one line on standard error:

- ``research.errors.ResearchError`` (a mistake the user can fix): its message, exit code 2;
  exit code 1 when it says the user's own code failed as it ran (``failed``: a crashed
  ``--command`` program);
- ``OSError`` and SQLite's operational errors (a full disk, a folder without write
  permission, a locked file): the system's message, exit code 1; a damaged store file too,
  with the fix;
- ``MemoryError`` (a limit such as ``ulimit -v`` that the size checks cannot see): what to
  make smaller, exit code 1;
- anything else is a bug: one line that says so and names the exception, exit code 1;
- Ctrl-C: exit code 130;
- a closed pipe on standard output (``research show S | head``): silence, exit code 141, as
  a program killed by SIGPIPE.

With ``--debug`` the traceback comes first, then the same line and exit code. Plugin problems
met on the way (an observer that raised) are warning lines before a failure's line (not before a
refusal's: it stays one line), as after a success.
"""

from __future__ import annotations

import errno
import json
import math
import os
import signal
import sqlite3
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape

from research.errors import PluginFailure, ResearchError, unencodable_name

if TYPE_CHECKING:
    from research.plugins import Plugins

USER_ERROR, FAILED, INTERRUPTED, TERMINATED, CLOSED_PIPE = 2, 1, 130, 143, 141


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill PID``, a scheduler ending a job): the same orderly stop as Ctrl-C, so
    running trials are marked interrupted and nothing finished is lost."""


def stop_word(stop: KeyboardInterrupt) -> str:
    """How a stop is said: "terminated" (SIGTERM) or "interrupted" (Ctrl-C)."""
    return "terminated" if isinstance(stop, Terminated) else "interrupted"


def stopped(stop: KeyboardInterrupt) -> typer.Exit:
    """Ctrl-C or SIGTERM, while a command runs or before (as the command line is read): its
    word on standard error and its exit code (130, 143)."""
    print(stop_word(stop), file=sys.stderr, flush=True)
    return typer.Exit(TERMINATED if isinstance(stop, Terminated) else INTERRUPTED)


def stop_on_sigterm() -> None:
    """Turn SIGTERM into :class:`Terminated` in this process."""

    def terminate(signum: int, frame: object) -> None:
        raise Terminated

    signal.signal(signal.SIGTERM, terminate)


def legible_in_any_locale(argv: list[str]) -> list[str]:
    """``argv`` as typed, and standard output and error that print every character, under a
    locale whose encoding is not UTF-8 (``LC_ALL=C`` without Python's UTF-8 mode): there an
    argument's non-ASCII bytes arrive as lone surrogates, which no store or file name takes,
    and a ``±`` in a table ends the command. Arguments that are UTF-8 are read as UTF-8; a
    character the streams cannot encode is printed as ``?``, one column as the table measured."""
    for stream in (sys.stdout, sys.stderr):
        if "utf" not in (getattr(stream, "encoding", None) or "utf").lower() and hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="replace")
    return [_as_typed(arg) for arg in argv]


def _as_typed(arg: str) -> str:
    """An argument decoded from its bytes as UTF-8 (what a terminal sends under any locale)."""
    try:
        return os.fsencode(arg).decode("utf-8")
    except UnicodeDecodeError:  # not UTF-8 either: left as Python decoded it
        return arg


PIECE = 1 << 16  # characters per write of a long output


def echo(text: str, *, nl: bool = True) -> None:
    """``text`` on standard output, written in pieces: of one large write CPython reports no
    closed pipe (it writes what the pipe takes and drops the rest), so ``research sample -n
    100000 --json | head -c 10`` ended with 0; a piece that finds the pipe closed ends the
    command as any closed pipe does (exit 141)."""
    text += "\n" if nl else ""
    for start in range(0, len(text), PIECE):
        typer.echo(text[start:start + PIECE], nl=False)


def echo_json(value: Any, **options: Any) -> None:
    """``value`` as one JSON document on standard output (``echo``), its non-finite numbers (a
    diverged epoch's NaN loss) as null: JSON has no NaN, and a script's parser refuses it."""
    echo(json.dumps(_finite_or_none(value), allow_nan=False, **options))


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(v) for v in value]
    return value


PIPED_WIDTH = 160  # piped or captured output: room for wide tables instead of 80 columns


class _Console(Console):
    """rich's console, but a reader gone away is the command's closed pipe (exit 141, module
    docstring), not rich's own exit 1, which a script cannot tell from a failure."""

    def on_broken_pipe(self) -> None:
        raise BrokenPipeError


def _console(stderr: bool) -> Console:
    """A console on standard error or output; piped, it is PIPED_WIDTH wide unless COLUMNS
    says otherwise (``COLUMNS=100 research show s > s.txt``)."""
    console = _Console(stderr=stderr)
    if not console.is_terminal and not os.environ.get("COLUMNS", "").strip().isdigit():
        console.width = PIPED_WIDTH
    return console


@dataclass
class Terminal:
    """What one invocation of ``research`` prints to and knows."""

    debug: bool = False
    out: Console = field(default_factory=lambda: _console(stderr=False))
    err: Console = field(default_factory=lambda: _console(stderr=True))
    _plugins: Plugins | None = None
    plugin_commands: dict[str, Any] | None = None  # what register_commands added, built on first lookup
    _warned: int = 0  # the plugin problems shown already

    @property
    def plugins(self) -> Plugins:
        """The installed plugins, loaded once per invocation (never raises: problems are
        listed in ``plugins.problems``)."""
        if self._plugins is None:
            from research.plugins import load_plugins

            self._plugins = load_plugins(log_problems=False)  # warn_problems shows them
        return self._plugins

    def error(self, message: str) -> None:
        """``error: message`` on standard error, as one line."""
        first = message.splitlines()[0] if message else "unknown error"
        self.err.print(f"[bold red]error:[/] {escape(first)}", highlight=False, soft_wrap=True)

    def fail(self, message: str, code: int = USER_ERROR) -> typer.Exit:
        """Print ``error: message`` and return the Exit to raise."""
        self.error(message)
        return typer.Exit(code)

    def warn_problems(self) -> None:
        """The plugin problems met while this command ran and not shown yet, one warning line
        each."""
        if self._plugins is not None:
            for problem in self._plugins.problems[self._warned:]:
                self.err.print(f"warning: {problem}", highlight=False, markup=False, soft_wrap=True)
            self._warned = len(self._plugins.problems)

    def exit_for(self, error: BaseException) -> typer.Exit:
        """Print ``error`` as its category says (module docstring) and return the Exit."""
        if isinstance(error, KeyboardInterrupt):
            return stopped(error)
        if isinstance(error, BrokenPipeError):
            _silence_stdout()
            return typer.Exit(CLOSED_PIPE)
        if isinstance(error, ResearchError):
            stop = self.fail(str(error) or type(error).__name__, FAILED if error.failed else USER_ERROR)
            detail = getattr(error, "detail", None)
            if detail:  # a program's last lines of stderr, as a study shows them with its trial
                self.err.print(detail, highlight=False, markup=False)
            return stop
        full_store = isinstance(error, sqlite3.OperationalError) and "disk is full" in str(error)
        if full_store or (isinstance(error, OSError) and error.errno == errno.ENOSPC):  # say what to do
            where = " writing the store" if full_store else f" writing {error.filename}" if error.filename else ""
            return self.fail(f"no space left on the device{where}; free some space and run the command again "
                             "(what was stored before is kept)", FAILED)
        if isinstance(error, OSError) and error.errno in DENIED and error.filename:  # say what to do
            return self.fail(f"{error.filename}: {error.strerror}; {DENIED[error.errno]} (what was stored before is "
                             "kept)", FAILED)
        if isinstance(error, OSError) and error.errno in PATH_MISTAKES:  # a path typed: the user's to fix
            return self.fail(f"{error.filename}: {PATH_MISTAKES[error.errno]}", USER_ERROR)
        if isinstance(error, sqlite3.OperationalError) and "locked" in str(error):  # past the store's wait
            return self.fail(f"the store stayed locked by another process ({error}); let that process finish and run "
                             "the command again (what was stored before is kept)", FAILED)
        if isinstance(error, (OSError, sqlite3.OperationalError)):
            return self.fail(str(error) or type(error).__name__, FAILED)
        if type(error) is sqlite3.DatabaseError:  # SQLite's own word for a damaged file, not a misuse
            return self.fail(f"the store's file is damaged ({error}); restore it from a copy, or use another --store",
                             FAILED)
        if isinstance(error, MemoryError):  # past a limit the size checks cannot see (ulimit -v): no bug of ours
            return self.fail("out of memory: this process may not allocate what the model and its data need; make it "
                             "smaller (its size options, such as --hidden or --channels, or --batch-size) or give the "
                             "process more memory", FAILED)
        if isinstance(error, PluginFailure):  # names the plugin and what it raised
            return self.fail(f"{error} (a bug in that plugin: `research --debug ...` shows the traceback for its "
                             "authors)", FAILED)
        if isinstance(error, UnicodeEncodeError) and _file_names_in(error.encoding):
            return self.fail(unencodable_name(error), FAILED)
        return self.fail(f"{type(error).__name__}: {error} (this is a bug, not a mistake of yours; "
                         "run it again as `research --debug ...` for the traceback and report it)", FAILED)


PATH_MISTAKES = {
    errno.ENAMETOOLONG: "the name is too long for the file system; choose a shorter one",
    errno.ENOTDIR: "a part of that path is a file, not a folder; choose another path",
}
"""OSErrors that say a path given is wrong, with the fix: exit code 2, as any mistake of input."""

_NO_ACCESS = "give this user access to it and its folder (chmod), or use another place"
DENIED = {errno.EACCES: _NO_ACCESS, errno.EPERM: _NO_ACCESS,
          errno.EROFS: "it is on a read-only file system: use a writable place"}
"""OSErrors of access, with the fix; exit code 1, as other system errors (a file's mode changed
under a running command is no mistake of input)."""


def _file_names_in(encoding: str) -> bool:
    """Whether ``encoding`` is the one this process writes file names in (the locale's)."""
    import codecs
    import sys

    try:
        return codecs.lookup(encoding).name == codecs.lookup(sys.getfilesystemencoding()).name
    except LookupError:
        return False


def _silence_stdout() -> None:
    """Point standard output at /dev/null, so that flushing it at exit raises nothing more."""
    import os
    import sys

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def terminal(ctx: typer.Context) -> Terminal:
    """The terminal of the invocation ``ctx`` belongs to (made on first use)."""
    root = ctx.find_root()
    if not isinstance(root.obj, Terminal):
        root.obj = Terminal(debug=bool(root.params.get("debug")))
    return root.obj

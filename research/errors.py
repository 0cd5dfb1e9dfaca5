"""The errors research raises for things a user can fix.

Every one of them derives from ``ResearchError``; the command line prints its message as
one line and exits 2. Anything else that escapes is a bug (exit 1, a line that says so, and
whose it is for ``PluginFailure``: a plugin's own code that failed),
except the operating system's refusals (a full disk, a folder without write permission),
which are the environment's and print their message with exit 1. ``call_plugin`` runs a
plugin's code so that what it raises is that plugin's PluginFailure, named.

The subclasses also derive from ``ValueError`` where Python code would expect one (a bad
value given to a function), so ``except ValueError`` keeps working for callers.
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable
from typing import Any

# Set while ``research --debug`` runs, inherited by the processes it starts: a trial's failure
# then carries its traceback, wherever the trial ran.
DEBUG_ENV = "RESEARCH_DEBUG"


class ResearchError(Exception):
    """A problem the user can fix: the message is one line naming it and the fix. ``failed``:
    the user's own code failed as it ran (a ``--command`` program that crashed), which the
    command line ends as a failure (exit 1), as it does a plugin's, not as a refusal."""

    failed = False


class UsageError(ResearchError, ValueError):
    """A bad argument, flag or file given to a command or function."""


class PluginFailure(Exception):
    """A plugin's own code failed in a way that is not about the user's input: a bug in
    that plugin, reported with its name (exit 1, a line that says whose bug it is)."""


def unencodable_name(error: UnicodeEncodeError, use: str = "written") -> str:
    """Why a file name cannot be ``use``d (written, read) here: the locale's encoding
    (``LC_ALL=C`` with Python's UTF-8 mode off) has no byte for one of its characters (café)."""
    name = error.object if isinstance(error.object, str) else repr(error.object)
    missing = name[error.start:error.end][:1] or "?"
    return (f"the file name '{name}' cannot be {use} under this locale: its encoding ({error.encoding}) has no "
            f"U+{ord(missing):04X} ('{missing}'); use a UTF-8 locale (export LC_ALL=C.UTF-8) or Python's UTF-8 mode "
            "(export PYTHONUTF8=1), or give that file an ASCII name")


def unreadable(err: OSError) -> str:
    """Why a file that is there cannot be read (no permission), and the fix, to follow its
    name: a data file, its digest, a checkpoint or model file say it alike."""
    fix = "give this user read permission (chmod +r)" if isinstance(err, PermissionError) else "check the file"
    return f"cannot be read ({err.strerror or err}); {fix}"


def raised(err: BaseException) -> str:
    """What plugin code raised, for its failure line: ``KeyError: 'x'``. An exit (``sys.exit``,
    argparse's ``parse_args`` reading research's own command line) is said as such, with the
    fix: such code ended the whole study, silently, before it was caught."""
    if isinstance(err, SystemExit):
        return (f"it called sys.exit({err.code!r}); code research runs must raise an exception instead "
                "(argparse's parse_args() reads research's own command line: pass it the arguments)")
    return f"{type(err).__name__}: {err}"


def call_plugin(named: str, method: str, function: Callable[..., Any], *args: Any,
                passes: tuple[type[BaseException], ...] = ()) -> Any:
    """``function(*args)``, a plugin's code: what it raises (a ``sys.exit`` too) is a PluginFailure
    that says ``{named} failed in {method}: ...`` (:func:`raised`), the cause kept for --debug, but
    research's own errors, out of memory and ``passes`` (a refusal the caller handles), which go on
    as they are. ``named`` says whose code it is: ``plugin 'x': trainer 'y'``."""
    try:
        return function(*args)
    except (ResearchError, PluginFailure, MemoryError, *passes):
        raise
    except (Exception, SystemExit) as err:
        raise PluginFailure(f"{named} failed in {method}: {raised(err)}") from err


def tracebacks_wanted() -> bool:
    """Whether errors should carry their tracebacks: ``research --debug`` is running (or a
    process it started)."""
    return os.environ.get(DEBUG_ENV) == "1"


def traceback_text(err: BaseException) -> str:
    """``err``'s traceback, its causes' first, as Python prints it."""
    return "".join(traceback.format_exception(err)).rstrip()

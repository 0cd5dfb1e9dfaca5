"""Words for messages and labels, shared by the commands, the reports, the strategies and the data
checks: counts with their nouns, and the commands a message tells the user to type."""

import shlex
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from research.defaults import DEFAULTS, STORE


def plural(count: int, word: str) -> str:
    """``1 trial``, ``2 trials``: a count with its noun, for labels and messages."""
    return f"{count} {word}{'s' * (count != 1)}"


def joined(texts: Iterable[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    *head, last = texts
    return f"{', '.join(head)} and {last}" if head else last


def study_command(verb: str, name: str, store: str | Path) -> str:
    """`research VERB NAME` for study ``name`` of ``store``, as the user would type it (with
    ``--store`` unless it is the default one)."""
    return f"research {verb} {shlex.quote(name)}" + (f" --store {shlex.quote(str(store))}" if str(store) != STORE else "")


def resume_command(name: str, store: str | Path, executor: str, executor_options: Mapping[str, Any]) -> str:
    """`research resume NAME` that goes on where this run ran: the executor is no part of a study
    (a resume runs on the process pool unless told), so another one and its options are named."""
    flags = "" if executor == DEFAULTS["executor"] else f" --executor {shlex.quote(executor)}"
    flags += "".join(f" --executor-opt {shlex.quote(f'{key}={value}')}" for key, value in executor_options.items())
    return study_command("resume", name, store) + flags

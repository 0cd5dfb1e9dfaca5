"""What can happen at a babysit boundary: continue, change one hyperparameter, roll back,
stop; and how a typed answer (at the prompt) becomes one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from research.errors import UsageError

ACTIONS_HELP = "continue, set NAME=VALUE, rollback, stop"


@dataclass(frozen=True)
class Action:
    """One decision at a segment boundary."""

    kind: str  # continue | set | rollback | rollback-cut | stop
    source: str  # remote | user | policy
    name: str | None = None
    value: Any = None
    reason: str = ""
    command: int | None = None  # the event id of a remote command


def parse_action(text: str, source: str, command: int | None = None) -> Action:
    """``continue`` (or empty), ``set lr=0.01`` (or ``lr=0.01``), ``rollback``, ``stop``."""
    words = text.strip()
    head = words.split(maxsplit=1)[0].lower() if words else "continue"
    if head in ("c", "continue", ""):
        return Action("continue", source, command=command)
    if head in ("r", "rollback"):
        return Action("rollback", source, reason=source, command=command)
    if head in ("s", "stop", "q", "quit"):
        return Action("stop", source, reason=source, command=command)
    assignment = words[len(head):].strip() if head == "set" else words
    name, sep, value = assignment.partition("=")
    if not sep or not name.strip() or not value.strip():
        raise UsageError(f"cannot read '{text}'; answer one of: {ACTIONS_HELP}")
    return Action("set", source, name.strip(), value.strip(), reason=source, command=command)

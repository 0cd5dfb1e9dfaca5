"""The events a babysit study writes to the store: one definition for the session that
writes them, the commands that queue them and the log, figure and report that read them.

Each kind's data is a ``TypedDict``; an event in the store is ``{"id", "trial_id", "time",
"kind", "data"}`` with one of these as ``data``. While a remote command is being carried
out, the events it causes also carry ``command``: the id of that command's event, so a
command is applied once even across a crash.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any, TypedDict

from research import hookimpl

Metrics = dict[str, float]


class Segment(TypedDict):
    """A segment ("day") ended at a boundary: its number, epoch, last metrics, whether the
    loss diverged, and the changeable hyperparameters at that moment."""

    segment: int
    epoch: int
    metrics: Metrics | None
    diverged: bool
    hyper: dict[str, Any]


class Change(TypedDict):
    """One hyperparameter changed at a boundary; ``trial`` when the policy was only trying it
    (an outcome decides whether it stays)."""

    name: str
    old: Any
    new: Any
    source: str  # remote | user | policy
    reason: str
    epoch: int
    before: Metrics | None
    trial: bool


class Outcome(TypedDict):
    """How the change event ``change`` turned out after the next segment."""

    change: int
    name: str
    kept: bool
    tried: bool
    before: Metrics | None
    after: Metrics | None
    segment: int


class Rollback(TypedDict, total=False):
    """The model went back from ``from_epoch`` to the boundary at ``to_epoch``; the epochs in
    between stay in the store, marked rolled back; ``hyper`` is what the boundary restored.
    ``cut_from``: the policy's undo of a bad segment, whose rate it cuts next (the rate that
    failed); absent for other rollbacks and in stores from before."""

    from_epoch: int
    to_epoch: int
    epochs_undone: int
    reason: str
    hyper: dict[str, Any]
    cut_from: float


class Refused(TypedDict):
    """An action that could not be carried out, and why."""

    action: str
    name: str | None
    value: Any
    source: str
    reason: str


class Command(TypedDict, total=False):
    """A command queued from another terminal (``research set/rollback/stop``)."""

    action: str  # set | rollback | stop
    name: str
    value: str


class Stop(TypedDict):
    source: str
    epoch: int


class Resume(TypedDict):
    epoch: int


class End(TypedDict, total=False):
    """How a run ended; ``reason`` when it was cut short (Ctrl-C, SIGTERM, an error)."""

    status: str  # finished | diverged | interrupted (stopped, or cut short: it resumes)
    epoch: int
    stopped: bool
    reason: str


SEGMENT, CHANGE, OUTCOME, ROLLBACK, REFUSED = "segment", "change", "outcome", "rollback", "refused"
COMMAND, STOP, RESUME, END = "command", "stop", "resume", "end"
STRATEGY = "babysit"  # the name this plugin registers its strategy under
KINDS = (SEGMENT, CHANGE, OUTCOME, ROLLBACK, REFUSED, COMMAND, STOP, RESUME, END)


def unhandled_commands(recorded: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The command events among a study's ``recorded`` events that no event has carried out
    yet (an event that carries one out names it in its ``command``), oldest first."""
    done = {e["data"]["command"] for e in recorded if "command" in e["data"]}
    return [e for e in recorded if e["kind"] == COMMAND and e["id"] not in done]


def stopped(ends: list[dict[str, Any]]) -> bool:
    """Whether the run's last end event (of ``ends``) was a stop: such a run resumes from its
    boundary, whatever its trial's status says."""
    return bool(ends) and bool(ends[-1]["data"].get("stopped"))


def _number(value: Any) -> float:
    return value if isinstance(value, (int, float)) else math.nan


def _shown(metrics: Mapping[str, Any]) -> list[str]:
    """The metrics a line shows: the validation loss and accuracy where the trainer reports
    them, else its first two."""
    return [name for name in ("val_loss", "val_acc") if name in metrics] or list(metrics)[:2]


def verdict(outcome: Mapping[str, Any]) -> str:
    """How a change turned out, in one word: "kept" or "undone" when the policy tried it;
    "stands" for one that was no trial (a command, the user's, or the policy's answer to a
    spike), which is never judged, only undone by a rollback."""
    if not outcome.get("kept", True):
        return "undone"
    return "kept" if outcome.get("tried", True) else "stands"


def describe(kind: str, d: Mapping[str, Any]) -> str | None:
    """One readable line for a babysit event; None for another kind."""
    if kind == SEGMENT:
        metrics = d.get("metrics") or {}
        state = "diverged" if d.get("diverged") else ", ".join(
            f"{name.replace('_', ' ')} {_number(metrics[name]):.4f}" for name in _shown(metrics))
        return f"segment {d['segment']} ended at epoch {d['epoch']}: {state or 'no metrics'}"
    if kind == CHANGE:
        old, new = (f"{v:.4g}" if isinstance(v, float) else v for v in (d["old"], d["new"]))
        return f"{d['name']} {old} -> {new} at epoch {d['epoch']} ({d['reason']})"
    if kind == OUTCOME:
        said = verdict(d)
        before, after = d.get("before") or {}, d.get("after") or {}
        both = [name for name in _shown(before) if name in after][:1]
        return f"{d['name']} change {said}{' (not a trial)' if said == 'stands' else ''}" + "".join(
            f": {name.replace('_', ' ')} {_number(before[name]):.4f} -> {_number(after[name]):.4f}" for name in both)
    if kind == ROLLBACK:
        return f"rolled back from epoch {d['from_epoch']} to {d['to_epoch']} ({d['reason']})"
    if kind == REFUSED:
        return f"refused {' '.join(filter(None, (d['action'], d.get('name'))))}: {d['reason']}"
    if kind == COMMAND:
        what = f" {d['name']}={d.get('value', '')}" if d.get("name") else ""
        return f"command {d['action']}{what} received"
    if kind == STOP:
        return f"stopped at epoch {d['epoch']} ({d['source']})"
    if kind == RESUME:
        return f"resumed at epoch {d['epoch']}"
    if kind == END:
        why = "stopped" if d.get("stopped") else d.get("reason")
        return f"ended {d['status']} at epoch {d['epoch']}" + (f" ({why})" if why else "")
    return None


@hookimpl
def describe_event(study: Any, event: Mapping[str, Any]) -> str | None:
    """The log's line for an event of a babysit study (other studies are left to other plugins)."""
    if study.strategy != STRATEGY:
        return None
    try:
        return describe(event["kind"], event["data"])
    except KeyError:  # written by an older version, with other fields: shown as stored
        return f"{event['kind']} {json.dumps(event['data'])}"

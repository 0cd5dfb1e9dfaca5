"""Steering a babysit study from another terminal (`research set/rollback/stop`) and reading
its story (`research log`). Commands are events in the store; the babysitter applies them at
its next segment boundary and records what it did."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from research.cli.app import err, fail, out, user_errors
from research.nn.config import NESTED, RUN_DEFAULTS
from research.events import describe
from research.study.store import Store

# Configuration keys fixed for the life of a model: the run's own keys except the batch size
# (Trainer.tunable() is the rest: optimizer hyperparameters and schedule options).
FIXED = (set(RUN_DEFAULTS) - {"batch_size"}) | set(NESTED)


def send(name: str, store_path: Path, action: str, assignment: str | None = None) -> None:
    """Queue one command for a babysit study; obvious mistakes are refused right here."""
    with user_errors(), Store(store_path, create=False) as store:
        study = store.study(name)
        if study.strategy != "babysit":
            raise fail(f"study '{name}' is a {study.strategy} study; set/rollback/stop steer babysit studies")
        data: dict[str, Any] = {"action": action}
        if assignment is not None:
            key, sep, value = assignment.partition("=")
            key, value = key.strip(), value.strip()
            trials = store.trials(study)
            changeable = sorted(k for k in (trials[0].config if trials else {}) if k not in FIXED)
            if not sep or not key or not value:
                raise fail(f"cannot read '{assignment}'; write NAME=VALUE, e.g. lr=0.003")
            if changeable and key not in changeable:
                raise fail(f"cannot change '{key}' while training; changeable: {', '.join(changeable)}")
            try:
                float(value)
            except ValueError:
                raise fail(f"{key} must be a number, got '{value}'") from None
            data |= {"name": key, "value": value}
        store.add_event(study, "command", data)
        running = any(t.status == "running" for t in store.trials(study))
    when = "at its next segment boundary" if running else "when it resumes (it is not running now)"
    err.print(f"queued {action}{' ' + assignment if assignment else ''} for '{name}': applied {when}",
              highlight=False)


def plain(value: Any) -> Any:
    """``value`` with its non-finite numbers (a diverged segment's NaN loss) as None: JSON has
    no NaN, so ``--json`` output stays readable by any JSON parser."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def show_log(name: str, store_path: Path, as_json: bool) -> None:
    with user_errors(), Store(store_path, create=False) as store:
        events = store.events(store.study(name))
    if as_json:
        typer.echo(json.dumps(plain({"study": name, "events": events}), allow_nan=False))
        return
    table = Table(title=f"events of {name}")
    for column in ("#", "time", "kind", "what"):
        table.add_column(column)
    for event in events:
        table.add_row(str(event["id"]), time.strftime("%H:%M:%S", time.localtime(event["time"])), event["kind"],
                      describe(event))
    out.print(table)

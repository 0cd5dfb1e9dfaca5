"""``research set``, ``research rollback`` and ``research stop``: steering a running babysit
study from another terminal. Each queues a command event in the store; the babysitter
applies it at its next segment boundary and records what it did (``research log``)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from research_plugins.babysit import events

from research import hookimpl
from research.cli.console import Terminal, terminal
from research.defaults import STORE
from research.errors import UsageError
from research.plugins import Plugins
from research.study.control import Control, ControlField
from research.study.store import Store

StudyArgument = Annotated[str, typer.Argument(help="The babysit study.")]
StoreOption = Annotated[Path, typer.Option("--store", help="The SQLite store file.")]


def changeable(store: Store, study: Any, plugins: Plugins, config: Mapping[str, Any]) -> list[str]:
    """What may change while the model trains: what its trainer said at the last boundary
    (each segment event records ``tunable()``); before the first boundary, for the research
    trainer, the batch size and the options of the trial's optimizer and schedule (a name both
    have qualified: ``optimizer.beta``); for
    another trainer nothing is known yet (the session refuses a bad name itself)."""
    from research.nn.config import RUN_DEFAULTS
    from research.study.trainer import trainer_name

    segments = store.events(study, kind=events.SEGMENT)
    if segments:
        return sorted(segments[-1]["data"].get("hyper") or {})
    if trainer_name(config) != RUN_DEFAULTS["trainer"]:
        return []
    declared = {part: set(plugins.options_of(part + "s", str(config.get(part, RUN_DEFAULTS[part]))) or ())
                for part in ("optimizer", "schedule")}
    shared = declared["optimizer"] & declared["schedule"]  # qualified, as the trainer's tunable() names them
    return sorted({"batch_size"} | {f"{part}.{name}" if name in shared else name
                                    for part, names in declared.items() for name in names})


def check_value(plugins: Plugins, config: Mapping[str, Any], hyper: Mapping[str, Any], key: str, value: str) -> None:
    """Refuse now what the babysitter would refuse at the boundary: for the research trainer,
    the same declared option's checks (``optimizer 'adam': lr must be a number > 0, got '-1'``);
    for another trainer, a finite number where its value is one (its value at the last
    boundary, ``hyper``; before the first, the trial's configuration's)."""
    from research.nn.config import RUN, RUN_DEFAULTS
    from research.study.trainer import trainer_name

    if trainer_name(config) == RUN_DEFAULTS["trainer"]:
        if key == "batch_size":
            RUN["batch_size"].convert("training", value)
            return
        part, dot, bare = key.partition(".")
        for kind in ("optimizer", "schedule"):
            if dot and part != kind:
                continue
            plugin = str(config.get(kind, RUN_DEFAULTS[kind]))
            spec = (plugins.options_of(kind + "s", plugin) or {}).get(bare if dot else key)
            if spec is not None:
                spec.convert(f"{kind} '{plugin}'", value)
                return
    current = hyper[key] if key in hyper else config.get(key)
    if isinstance(current, (int, float)) and not isinstance(current, bool):
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            raise UsageError(f"{key} must be a finite number, like its value {current!r}; got '{value}'")


def _same(current: Any, value: str) -> bool:
    """Whether the text ``value`` gives the value ``current`` has (0.2 for "0.2" or "2e-1")."""
    if isinstance(current, (int, float)) and not isinstance(current, bool):
        try:
            return float(value) == current
        except ValueError:
            return False
    return str(current) == value


def values_ahead(recorded: list[dict[str, Any]], rolled_back: bool) -> dict[str, Any]:
    """The hyperparameters the next segment trains with: its boundary's (the last segment's,
    or what a rollback there restored) with the changes made at it, unless ``rolled_back``: a
    rollback queued for the next boundary goes back to that boundary, which undoes them."""
    segments = [e for e in recorded if e["kind"] == events.SEGMENT]
    if not segments:
        return {}
    values = dict(segments[-1]["data"].get("hyper") or {})
    for event in (e for e in recorded if e["id"] > segments[-1]["id"]):
        if event["kind"] == events.ROLLBACK:
            values = dict(event["data"].get("hyper") or values)
        elif event["kind"] == events.CHANGE and not rolled_back:
            values[event["data"]["name"]] = event["data"]["new"]
    return values


def queue(store: Store, study: Any, plugins: Plugins, action: str, assignment: str | None = None) -> str:
    """Queue one command for a babysit study and say when it applies; what the babysitter
    would refuse is refused right here, with the same checks. The command line and the
    dashboard's controls both come here: one mechanism, the same events."""
    name = study.name
    if study.strategy != events.STRATEGY:
        raise UsageError(f"study '{name}' is a {study.strategy} study; set/rollback/stop steer "
                         f"{events.STRATEGY} studies")
    if assignment is not None:  # a mistake in what was typed is said first, whatever the study's state
        key, sep, value = (part.strip() for part in assignment.partition("="))
        if not sep or not key or not value:
            raise UsageError(f"cannot read '{assignment}'; write NAME=VALUE, e.g. lr=0.003")
    trials = store.trials(study)
    ended = trials and trials[0].status in ("finished", "diverged")
    if ended and not events.stopped(store.events(study, kind=events.END)):  # a stopped run resumes
        if action == "stop":
            raise UsageError(f"study '{name}' has ended ({trials[0].status}), so there is nothing to stop")
        raise UsageError(f"study '{name}' has ended ({trials[0].status}); nothing would apply the {action}: "
                         f"continue it first (research train --study {name} --segments N)")
    data = events.Command(action=action)
    recorded = store.events(study)
    queued = [c["data"] for c in events.unhandled_commands(recorded)]
    rollbacks = sum(c.get("action") == "rollback" for c in queued)
    if assignment is not None:
        config = trials[0].config if trials else {}
        names = changeable(store, study, plugins, config) if trials else []
        if names and key not in names:
            raise UsageError(f"unknown hyperparameter '{key}'; changeable: {', '.join(names)}")
        live = values_ahead(recorded, rolled_back=False)
        hyper = values_ahead(recorded, rolled_back=True) if rollbacks else live
        check_value(plugins, config, hyper, key, value)
        pending = any(c.get("name") == key for c in queued) or rollbacks > 1  # those decide what it meets
        if key in hyper and not pending and _same(hyper[key], value):  # it would spend a boundary on nothing
            if rollbacks:
                raise UsageError(f"the rollback queued for '{name}' brings {key} back to {hyper[key]} already; "
                                 "nothing would change: send the rollback alone")
            raise UsageError(f"{key} is {hyper[key]} already (since the last boundary); nothing would change")
        replay = key in live and all(live.get(k) == v for k, v in hyper.items() if k != key) and _same(live[key], value)
        if rollbacks and not pending and replay:  # a rollback restores the random state too: the same epochs again
            raise UsageError(f"the rollback queued for '{name}' then {key}={value} would train the segment it undoes "
                             f"again as it was ({key} was {live[key]} there); set another value, or send the "
                             "rollback alone")
        data |= events.Command(name=key, value=value)
    running = any(t.status == "running" for t in store.trials(study))
    if action == "stop" and not running:  # kept for a resume, it would end that run after one segment
        raise UsageError(f"study '{name}' is not running, so there is nothing to stop; a stop ends a running "
                         "babysit study at its next segment boundary")
    when = "at its next segment boundary" if running else "when it resumes (it is not running now)"
    what = f"{action} {data['name']}={data['value']}" if "name" in data else action
    if action != "rollback" and data in queued:
        return f"the same {what} for '{name}' is queued already: applied {when}"  # twice would apply twice
    store.add_event(study, events.COMMAND, data)
    if action == "set" and rollbacks:  # as `rollback` then `lr=0.2` at the prompt: back, then the value tried there
        return f"queued {what} for '{name}': applied {when}, after the rollback queued before it " \
               "(tried from the boundary it goes back to)"
    return f"queued {what} for '{name}': applied {when}"


def send(term: Terminal, name: str, store_path: Path, action: str, assignment: str | None = None) -> None:
    """``research set/rollback/stop``: :func:`queue` on the study named ``name``."""
    with Store(store_path, create=False) as store:
        said = queue(store, store.study(name), term.plugins, action, assignment)
    term.err.print(said, highlight=False)


def _set(store: Store, study: Any, values: Mapping[str, str], plugins: Plugins) -> str:
    return queue(store, study, plugins, "set", values.get("assignment", ""))


def _rollback(store: Store, study: Any, values: Mapping[str, str], plugins: Plugins) -> str:
    return queue(store, study, plugins, "rollback")


def _stop(store: Store, study: Any, values: Mapping[str, str], plugins: Plugins) -> str:
    return queue(store, study, plugins, "stop")


@hookimpl
def study_controls(study: Any) -> list[Control] | None:
    """A babysit study's buttons (research dashboard --allow-control): the same set, rollback
    and stop as the commands."""
    if study.strategy != events.STRATEGY:
        return None
    return [
        Control("set", "Set", "Change a hyperparameter at the next segment boundary.", _set,
                (ControlField("assignment", "NAME=VALUE", "lr=0.003"),)),
        Control("rollback", "Roll back", "Undo the last segment at the next boundary.", _rollback,
                confirm="Undo the last segment at the next boundary?"),
        Control("stop", "Stop", "Stop the study cleanly at the next segment boundary.", _stop,
                confirm="Stop the study at its next segment boundary?"),
    ]


@hookimpl
def register_commands(cli: typer.Typer) -> None:
    """Add set, rollback and stop."""

    @cli.command("set")
    def set_hyper(ctx: typer.Context, name: StudyArgument,
                  assignment: Annotated[str, typer.Argument(metavar="NAME=VALUE", help="e.g. lr=0.003")],
                  store: StoreOption = Path(STORE)) -> None:
        """Change a hyperparameter of a running babysit study at its next segment boundary."""
        send(terminal(ctx), name, store, "set", assignment)

    @cli.command()
    def rollback(ctx: typer.Context, name: StudyArgument, store: StoreOption = Path(STORE)) -> None:
        """Undo the last segment of a running babysit study at its next boundary."""
        send(terminal(ctx), name, store, "rollback")

    @cli.command()
    def stop(ctx: typer.Context, name: StudyArgument, store: StoreOption = Path(STORE)) -> None:
        """Stop a running babysit study cleanly at its next segment boundary."""
        send(terminal(ctx), name, store, "stop")

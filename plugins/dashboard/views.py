"""What the dashboard shows, as JSON-ready dicts read from a store opened read-only: the
studies, one study (settings, counts, ranked trials, events, controls), its figures, what is
new since a cursor, one trial, and studies side by side.

Figures are the core's and the plugins' ``Figure`` data (research.report.figure), the same
the PNG pictures and the HTML report draw, so a plugin's own picture appears here unchanged.
Whole views of a study are remembered until the study changes (:class:`Views`): a study of
1,000 trials x 100 epochs is read once, then each poll sends only the rows added since the
client's cursor.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from itertools import groupby
from operator import itemgetter
from pathlib import Path
from typing import Any

from research.defaults import DEFAULTS
from research.errors import UsageError
from research.plugins import Plugins
from research.report.figure import Figure
from research.report.figures import curves_figure, parallel_figure, scores_figure, trial_figure
from research.report.html import fixed_values
from research.report.importance import importance_figure
from research.report.tables import objective_of, ranked, searched_names, status_counts, what_it_trains
from research.study.runner import holder
from research.study.store import CONFIRMATIONS_FROM, DONE_STATUSES, METRIC_COLUMNS, Store, Study

Curves = dict[int, list[dict[str, Any]]]
REMEMBERED = 32  # whole views kept (a few studies' figures and tables)
CURVES_REMEMBERED = 4  # studies whose every epoch is kept in memory (a 1,000 x 100 study: about 17 MB)


def study_state(store: Store, study: Study, counts: dict[str, int]) -> str:
    """``running`` (a live runner holds it), ``empty`` (no trial yet), ``finished`` (every trial
    done) or ``stopped`` (trials left to train: resume it)."""
    if holder(store, study) is not None:
        return "running"
    if not counts:
        return "empty"
    return "finished" if all(status in DONE_STATUSES for status in counts) else "stopped"


def read_curves(store: Store, study: Study) -> Curves:
    """The study's curves with what the views read of them: of every epoch its number and the
    metrics the study ranks by (its own and the tie-break's: ``Objective.select``), and each
    trial's selected epoch whole (the ranking shows its test metrics). Every metric of every
    epoch (``Store.curves``) took nearly three times as long to read and twice the memory, for
    nothing the views show; a study ranked by a metric its trainer adds (not a column) is read so."""
    objective = objective_of(study)
    ranked_by = (objective.metric, objective.tie_break.metric)
    if not set(ranked_by) <= set(METRIC_COLUMNS):
        return store.curves(study)
    rows = store.db.execute(
        f"SELECT t.number, m.id, m.epoch, {', '.join('m.' + name for name in ranked_by)} FROM metrics m "
        "JOIN trials t ON t.id = m.trial_id WHERE t.study_id = ? AND m.rolled_back = 0 ORDER BY t.number, m.epoch",
        (study.id,)).fetchall()
    columns = ("epoch", *ranked_by)
    curves: Curves = {}
    selected: dict[int, tuple[int, int]] = {}  # the selected epoch's row id -> (trial, place in its curve)
    for number, group in groupby(rows, key=itemgetter(0)):
        trial = list(group)
        curve = curves[number] = [dict(zip(columns, row[2:])) for row in trial]
        chosen = objective.select(curve)
        if chosen is not None:
            place = curve.index(chosen)
            selected[trial[place][1]] = (number, place)
    for row_id, epoch in store.epochs(selected).items():
        number, place = selected[row_id]
        curves[number][place] = epoch
    return curves


def version(store: Store, study: Study) -> tuple[Any, ...]:
    """What changes whenever anything shown of ``study`` changes: its last epoch row, its
    trials' statuses and times, its last event, its settings and whether a runner holds it."""
    epochs = store.db.execute("SELECT MAX(m.id), COUNT(*) FROM metrics m JOIN trials t ON t.id = m.trial_id "
                              "WHERE t.study_id = ?", (study.id,)).fetchone()
    trials = store.db.execute("SELECT COUNT(*), MAX(started), MAX(ended), GROUP_CONCAT(status) FROM trials "
                              "WHERE study_id = ?", (study.id,)).fetchone()
    events = store.db.execute("SELECT MAX(id) FROM events WHERE study_id = ?", (study.id,)).fetchone()
    return (*epochs, *trials, *events, study.name, repr(study.settings), holder(store, study) is not None)


class Views:
    """Whole views of studies, remembered until their study's :func:`version` changes. Safe to
    share between request threads: a view, or a study's curves, that two requests need at once
    is made once, the second waiting for the first (a study page asks for its figures and its
    table at once, and both need the curves and the ranking)."""

    def __init__(self) -> None:
        self._kept: OrderedDict[tuple[Any, ...], tuple[tuple[Any, ...], Any]] = OrderedDict()
        self._curves: OrderedDict[tuple[str, int], tuple[tuple[int, int], Curves]] = OrderedDict()
        self._making: dict[tuple[Any, ...], Future[Any]] = {}  # (view, version) -> what its maker will give
        self._reading: dict[tuple[str, int], threading.Lock] = {}  # a study's curves are read by one at a time
        self._lock = threading.Lock()

    def curves(self, store: Store, study: Study) -> Curves:
        """The study's curves as the views read them (:func:`read_curves`), read whole once,
        then only the epochs committed since (a running study adds a few rows a second to a
        hundred thousand), whole ones. Read whole again when anything else changed them (a
        rollback). The dict returned is never changed afterwards: an update makes a new one,
        sharing the unchanged curves."""
        key = (str(store.path), study.id)
        with self._lock:
            reading = self._reading.setdefault(key, threading.Lock())
        with reading:  # a second request for them waits, then finds them read
            with self._lock:
                kept = self._curves.get(key)
            store.db.execute("BEGIN")  # one snapshot: the counts and the rows read agree
            try:
                count, last = store.live_epochs(study)
                if kept is not None and kept[0] == (count, last):
                    return kept[1]
                curves: Curves | None = None
                if kept is not None and last > kept[0][1]:
                    added = store.epochs_after(study, kept[0][1])
                    if kept[0][0] + len(added) == count:  # nothing but new epochs
                        changed = {number for _, number, _ in added}
                        curves = dict(kept[1])
                        for number in changed:
                            curves[number] = list(curves.get(number, []))
                        for _, number, row in added:
                            curves[number].append(row)
                        for number in changed:
                            curves[number].sort(key=lambda row: row["epoch"])
                if curves is None:
                    curves = read_curves(store, study)
            finally:
                store.db.execute("COMMIT")
            with self._lock:
                self._curves[key] = ((count, last), curves)
                self._curves.move_to_end(key)
                while len(self._curves) > CURVES_REMEMBERED:
                    self._curves.popitem(last=False)
            return curves

    def get(self, store: Store, study: Study, kind: str, make: Callable[[], Any],
            now: tuple[Any, ...] | None = None) -> Any:
        """The view ``kind`` of ``study``, made by ``make()`` unless remembered for this version;
        ``now``: the version, read before anything the view is made of, when the caller needs
        several views (each read of it counts a study's epochs)."""
        key = (str(store.path), study.id, kind)
        now = version(store, study) if now is None else now
        with self._lock:
            kept = self._kept.get(key)
            if kept is not None and kept[0] == now:
                self._kept.move_to_end(key)
                return kept[1]
            making = self._making.get((key, now))
            if making is None:
                mine = self._making[(key, now)] = Future()
        if making is not None:
            return making.result()  # made by another request this moment (its error too)
        try:
            made = make()
        except BaseException as err:
            with self._lock:
                del self._making[(key, now)]
            mine.set_exception(err)
            raise
        with self._lock:
            del self._making[(key, now)]
            self._kept[key] = (now, made)
            self._kept.move_to_end(key)
            while len(self._kept) > REMEMBERED:
                self._kept.popitem(last=False)
        mine.set_result(made)
        return made


def best_score(store: Store, study: Study) -> float | None:
    """The study's best score on its own metric (the top of its ranking, whose order among
    equal scores does not change the value), from one aggregate query; confirmations, which
    the ranking leaves out, are left out."""
    objective = objective_of(study)
    found = [value for number, value in store.best_by_trial(study, objective.metric, objective.sign > 0).items()
             if number < CONFIRMATIONS_FROM]
    return (max(found) if objective.sign > 0 else min(found)) if found else None


def studies(store: Store) -> list[dict[str, Any]]:
    """One row per study: name, strategy, state, created, what it trains (as `research studies`
    says it: ``mlp on digits``, or another trainer with its options) and its dataset (None for a
    trainer of its own: a --command program's data is its own), trials done of total, best
    score and what it is."""
    found = []
    for study in store.studies():
        counts = status_counts(store, study)
        objective = objective_of(study)
        base = study.settings.get("base") or {}
        own_trainer = base.get("trainer", DEFAULTS["trainer"]) == DEFAULTS["trainer"]
        found.append({
            "name": study.name, "strategy": study.strategy, "state": study_state(store, study, counts),
            "created": study.created, "trains": what_it_trains(base),
            "dataset": base.get("dataset", DEFAULTS["dataset"]) if own_trainer else None,
            "done": sum(n for status, n in counts.items() if status in DONE_STATUSES),
            "total": max(int(study.settings.get("trials") or 0), sum(counts.values())),
            "statuses": counts, "metric": objective.metric, "direction": objective.direction,
            "best": best_score(store, study),
        })
    return found


def cursor(store: Store, study: Study) -> dict[str, Any]:
    """Where the client's copy of ``study`` ends: its last epoch row and event, and the time."""
    epoch = store.db.execute("SELECT MAX(m.id) FROM metrics m JOIN trials t ON t.id = m.trial_id "
                             "WHERE t.study_id = ?", (study.id,)).fetchone()[0]
    event = store.db.execute("SELECT MAX(id) FROM events WHERE study_id = ?", (study.id,)).fetchone()[0]
    return {"epoch": epoch or 0, "event": event or 0, "time": time.time()}


def _event(store: Store, study: Study, plugins: Plugins, event: dict[str, Any], number: int,
           trials: dict[int, int]) -> dict[str, Any]:
    return {"id": event["id"], "number": number, "time": event["time"], "kind": event["kind"],
            "trial": trials.get(event["trial_id"]), "epoch": event["data"].get("epoch"),
            "text": plugins.describe(study, event)}


def _trial_numbers(store: Store, study: Study) -> dict[int, int]:
    """Trial row id -> trial number."""
    return dict(store.db.execute("SELECT id, number FROM trials WHERE study_id = ?", (study.id,)).fetchall())


def events(store: Store, study: Study, plugins: Plugins, after: int = 0) -> list[dict[str, Any]]:
    """The study's events after row ``after``, described by the plugin that wrote them and
    numbered from 1 in the study, as ``research log`` numbers them."""
    trials = _trial_numbers(store, study)
    earlier = store.db.execute("SELECT COUNT(*) FROM events WHERE study_id = ? AND id <= ?",
                               (study.id, after)).fetchone()[0]
    return [_event(store, study, plugins, event, earlier + index, trials)
            for index, event in enumerate(store.events(study, after=after), start=1)]


def _ranked_rows(rows: list[dict[str, Any]], metric: str) -> list[dict[str, Any]]:
    return [{"number": r["number"], "status": r["status"], "round": r["round"], "epochs": r["epochs"],
             "best": r[f"best_{metric}"], "best_epoch": r["best_epoch"], "final": r[f"final_{metric}"],
             "test": r["test"], "config": r["config"], "error": r["error"]} for r in rows]


def overview(store: Store, study: Study, plugins: Plugins, views: Views, allow_control: bool) -> dict[str, Any]:
    """A study's page: settings, fixed values, state, counts, ranked trials, events, controls."""
    objective = objective_of(study)
    counts = status_counts(store, study)
    now = version(store, study)

    def read() -> dict[str, Any]:
        curves = views.curves(store, study)
        views.get(store, study, "ranked", lambda: ranked(store, study, curves=curves), now)
        return fixed_values(store, study, curves)

    fixed = views.get(store, study, "fixed", read, now)
    rows = views.get(store, study, "ranked", lambda: ranked(store, study), now)
    controls = plugins.controls(study) if allow_control else []
    return {
        "name": study.name, "strategy": study.strategy, "created": study.created,
        "state": study_state(store, study, counts), "statuses": counts,
        "budget": study.settings.get("trials"), "settings": study.settings,
        "fixed": fixed,
        "metric": objective.metric, "direction": objective.direction, "searched": searched_names(study),
        "trials": _ranked_rows(rows, objective.metric), "events": events(store, study, plugins),
        "controls": [{"name": c.name, "label": c.label, "help": c.help, "confirm": c.confirm,
                      "fields": [{"name": f.name, "label": f.label, "placeholder": f.placeholder} for f in c.fields]}
                     for c in controls],
        "cursor": cursor(store, study),
    }


def figures(store: Store, study: Study, plugins: Plugins, views: Views) -> dict[str, Any]:
    """The study's figures as data, in page order: the study's own (a plugin's picture, or the
    overlaid curves, which the client extends live with each new epoch: ``live`` names the
    metric), then the score against each hyperparameter, the parallel coordinates and which
    hyperparameters mattered (once enough trials have a score). Their
    ``cursor`` was read before them: the updates after it may repeat an epoch they hold."""

    now = version(store, study)

    def make() -> dict[str, Any]:
        read_from = cursor(store, study)  # before the curves are read: the figures hold at least this
        metric = objective_of(study).metric
        curves = views.curves(store, study)
        rows = views.get(store, study, "ranked", lambda: ranked(store, study, curves=curves), now)  # for all three
        own = plugins.figure(store, study, metric, named=False)
        found = []
        if own is None:
            found.append({"figure": curves_figure(store, study, metric, curves=curves, rows=rows).as_dict(),
                          "live": metric})
        else:
            found.append({"figure": own.as_dict(), "live": None})
        for extra in (scores_figure(store, study, curves=curves, rows=rows),
                      parallel_figure(store, study, curves=curves, rows=rows),
                      _importance(store, study, curves)):
            if extra is not None:
                found.append({"figure": extra.as_dict(), "live": None})
        return {"figures": found, "problems": list(plugins.problems), "cursor": read_from}

    return views.get(store, study, "figures", make, now)


def _importance(store: Store, study: Study, curves: dict[int, list[dict[str, Any]]]) -> Figure | None:
    """The importance figure, from the curves read for the other figures: the numbers of
    `research importance` and the report, with as many resamples (0.2 s at 1,000 trials; with
    fewer, the page gave other intervals and p-values, and a parameter significant there only);
    None while too few trials have a score to measure it."""
    try:
        return importance_figure(store, study, curves=curves)
    except UsageError:
        return None


def updates(store: Store, study: Study, plugins: Plugins, after: int, events_after: int,
            since: float) -> dict[str, Any]:
    """What changed since the client's cursor: epochs committed after row ``after`` (as
    ``[trial, epoch, metrics]``), events after row ``events_after``, and the trials started
    or ended since ``since`` (seconds), with the study's state and counts."""
    started = time.time()  # what starts or ends from now on is the next answer's
    for table, cursor, key in (("metrics", after, "after"), ("events", events_after, "events_after")):
        last = store.db.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}").fetchone()[0]
        if cursor > last:  # no row would ever come after it until the store grew past it: a silent stall
            raise UsageError(f"{key}={cursor} is past the store's last row ({last}); send the cursor the "
                             "last answer gave, or 0 to start")
    found = store.epochs_after(study, after)
    epochs = [[number, row["epoch"], {k: v for k, v in row.items() if k != "epoch" and v is not None}]
              for _, number, row in found]
    new_events = events(store, study, plugins, events_after)
    changed = [{"number": t.number, "status": t.status, "config": t.config}
               for t in store.trials(study)
               if t.number < CONFIRMATIONS_FROM and max(t.started or 0, t.ended or 0) >= since]
    counts = status_counts(store, study)
    # The next cursor is where what was sent ends, so nothing committed meanwhile is skipped.
    now = {"epoch": found[-1][0] if found else after, "event": new_events[-1]["id"] if new_events else events_after,
           "time": started}
    return {"epochs": epochs, "events": new_events, "trials": changed,
            "state": study_state(store, study, counts), "statuses": counts, "cursor": now}


def trial(store: Store, study: Study, number: int, plugins: Plugins) -> dict[str, Any]:
    """One trial: its record, its curve as a figure, its events."""
    record = store.trial(study, number)
    status = next(t.status for t in store.trials(study) if t.number == number)  # a dead runner's: interrupted
    objective = objective_of(study)
    chosen = objective.select(store.curve(record))
    own = [event for event in events(store, study, plugins) if event["trial"] == number]
    return {"study": study.name, "number": number, "status": status, "seed": record.seed,
            "round": record.round, "error": record.error, "config": record.config, "started": record.started,
            "ended": record.ended, "metric": objective.metric, "best": chosen.get(objective.metric) if chosen else None,
            "best_epoch": chosen["epoch"] if chosen else None, "figure": trial_figure(store, study, number).as_dict(),
            "events": own}


def compare(store: Store, names: list[str], views: Views) -> list[dict[str, Any]]:
    """Studies side by side: each one's overlaid curves and its best trials."""
    if not names:
        raise UsageError("name the studies to compare: ?study=A&study=B")
    found = []
    for name in names:
        study = store.study(name)
        objective = objective_of(study)

        def read(study: Study = study) -> tuple[list[dict[str, Any]], dict[str, Any]]:
            curves = views.curves(store, study)
            rows = ranked(store, study, curves=curves)
            return rows, curves_figure(store, study, curves=curves, rows=rows).as_dict()

        rows, figure = views.get(store, study, "ranked and curves", read)
        found.append({"name": study.name, "strategy": study.strategy, "metric": objective.metric,
                      "direction": objective.direction, "searched": searched_names(study),
                      "trials": _ranked_rows(rows[:5], objective.metric), "count": len(rows),
                      "best": rows[0][f"best_{objective.metric}"] if rows else None, "figure": figure})
    return found


def store_problem(path: Path) -> str | None:
    """Why the store at ``path`` cannot be shown (one line), or None when it can."""
    from research.errors import ResearchError

    try:
        Store(path, read_only=True).close()
    except ResearchError as err:
        return str(err)
    except sqlite3.DatabaseError as err:  # a store's file damaged (cut short): said as a missing one is
        return f"the store's file is damaged ({err}); restore it from a copy, or use another --store"
    return None

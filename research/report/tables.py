"""A study's results as rows: trials ranked by a metric, counts by status, every epoch
exported as CSV or JSON.

Everything here only reads the store, so it can run while the study is being written.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from research.defaults import DEFAULTS
from research.errors import UsageError
from research.study.objective import TEST_PREFIX, Objective, natural_direction
from research.study.ranking import failed_last
from research.study.store import TRIAL_STATUSES, Store, Study

METRIC_NAMES = ("val_acc", "val_loss", "train_acc", "train_loss", "lr")
LOWER_IS_BETTER = ("val_loss", "train_loss")
EXPORT_FORMATS = ("csv", "json")


def check_metric(metric: str, reported_too: set[str] | frozenset[str] = frozenset()) -> str:
    """``metric`` if it is one a curve has (the built-in ones, and ``reported_too``: what a
    study's trainer reported); a UsageError naming the choices otherwise."""
    if metric not in METRIC_NAMES and metric not in reported_too:
        choices = [*METRIC_NAMES, *sorted(set(reported_too) - set(METRIC_NAMES))]
        raise UsageError(f"unknown metric '{metric}'; choose one of: {', '.join(choices)}")
    return metric


def reported(curves: dict[int, list[dict[str, Any]]]) -> set[str]:
    """The metrics the curves hold (every name but epoch)."""
    return {name for curve in curves.values() for row in curve for name in row} - {"epoch"}


def objective_of(study: Study, metric: str | None = None, store: Store | None = None) -> Objective:
    """The study's objective, or ``metric`` (any a curve has, ``lr`` too, and with ``store``
    any its trainer reported) in its natural direction when another is asked."""
    own = Objective.of(study.settings)
    if metric is None or metric == own.metric:
        return own
    extra = reported(store.curves(study)) if store is not None and metric not in METRIC_NAMES else set()
    return Objective(check_metric(metric, extra), natural_direction(metric))


def check_record(study: Any, function: str) -> Study:
    """``study`` if it is a study's record, what ``function`` reads (``store.study(NAME)``, an
    open study's ``.record``); a UsageError naming how to get one otherwise."""
    if isinstance(study, Study):
        return study
    if isinstance(study, str):
        raise UsageError(f"{function} takes the study's record, not its name: pass store.study({study!r})")
    if isinstance(getattr(study, "record", None), Study):
        raise UsageError(f"{function} takes the study's record, not the open study: pass study.record")
    raise UsageError(f"{function} takes a study's record, got {type(study).__name__}; pass store.study(NAME), "
                     "or study.record of an open study")


def ranked(store: Store, study: Study, metric: str | None = None,
           curves: dict[int, list[dict[str, Any]]] | None = None) -> list[dict[str, Any]]:
    """One row per trial, best first by the study's objective (or by ``metric`` in its natural
    direction), equal scores by the validation loss (Objective.rank), failed trials last
    (ranking.failed_last): its status, round,
    configuration, error, its best and final value of the metric (``best_<metric>``,
    ``best_epoch``, ``final_<metric>``) and the held-out test metrics of that best epoch
    (``test``: ``{"test_acc": ..., "test_loss": ...}``, empty when the trainer reports none).
    ``curves``: the study's curves when the caller has read them already."""
    check_record(study, "ranked")
    objective = objective_of(study, metric, store)
    metric = objective.metric
    curves = store.curves(study) if curves is None else curves
    selected = {}
    confirmations = store.confirmations(study)  # reported on their own (research.study.confirm)
    rows = []
    for trial in store.trials(study):
        if trial.number in confirmations:
            continue
        curve = curves.get(trial.number, [])
        chosen = selected[trial.number] = objective.select(curve)
        rows.append({
            "number": trial.number,
            "status": trial.status,
            "round": trial.round,
            "epochs": len(curve),
            f"best_{metric}": chosen.get(metric) if chosen else None,
            "best_epoch": chosen["epoch"] if chosen else None,
            f"final_{metric}": curve[-1].get(metric) if curve else None,
            "test": {k: v for k, v in chosen.items() if k.startswith(TEST_PREFIX)} if chosen else {},
            "config": trial.config,
            "error": trial.error,
        })
    order = failed_last(objective.order_selected(selected), {row["number"]: row["status"] for row in rows})
    by_number = {row["number"]: row for row in rows}
    return [by_number[number] for number in order]


def searched_names(study: Study) -> list[str]:
    """The hyperparameters the study searched over (its table columns)."""
    return list(study.settings.get("space", {}))


def summarize(rows: list[dict[str, Any]], max_epochs: int) -> dict[str, Any]:
    """Trial counts by status, epochs trained, and the epochs pruning saved, from
    :func:`ranked` rows."""
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    saved = sum(max(max_epochs - row["epochs"], 0) for row in rows if row["status"] == "pruned")
    return {"trials": len(rows), "statuses": counts, "epochs_trained": sum(row["epochs"] for row in rows),
            "pruned": counts.get("pruned", 0), "epochs_saved_by_pruning": saved}


def status_counts(store: Store, study: Study) -> dict[str, int]:
    """How many search trials of the study are in each status (statuses in their usual order;
    confirmations are not counted)."""
    confirmations = store.confirmations(study)
    counts: dict[str, int] = {}
    for trial in store.trials(study):
        if trial.number in confirmations:
            continue
        counts[trial.status] = counts.get(trial.status, 0) + 1
    order = {status: index for index, status in enumerate(TRIAL_STATUSES)}
    return {s: counts[s] for s in sorted(counts, key=lambda s: (order.get(s, len(order)), s))}


def export(store: Store, study: Study, fmt: str) -> str:
    """Every epoch of every trial, with the trial's configuration, as CSV or JSON; the epochs a
    rollback undid too (babysit's), apart: JSON's ``undone``, CSV's ``rolled_back`` column
    (only in a study that has some, after each trial's live epochs)."""
    check_record(study, "export")
    if fmt not in EXPORT_FORMATS:
        raise UsageError(f"unknown export format '{fmt}'; choose {' or '.join(EXPORT_FORMATS)}")
    curves, undone = store.curves(study), store.curves(study, undone=True)
    trials = store.trials(study)
    if fmt == "json":
        return json.dumps({
            "study": study.name, "strategy": study.strategy, "settings": study.settings,
            "trials": [{"number": t.number, "status": t.status, "error": t.error, "round": t.round,
                        "config": t.config, "curve": curves.get(t.number, []), "undone": undone.get(t.number, [])}
                       for t in trials],
        }, indent=2)
    names = searched_names(study)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    found = reported(curves) | reported(undone)
    metric_columns = ["train_loss", "train_acc", "val_loss", "val_acc",
                      *[name for name in ("test_loss", "test_acc") if name in found], "lr", "seconds"]
    metric_columns += sorted(found - set(metric_columns))  # a trainer's own metrics
    flag = ["rolled_back"] if undone else []
    head = ["trial", "status", *names, "epoch"]
    writer.writerow([*head, *_metric_headers(metric_columns, head + flag), *flag])
    for t in trials:
        for undid, rows in ((0, curves.get(t.number, [])), (1, undone.get(t.number, []))):
            for row in rows:
                writer.writerow([t.number, t.status, *[t.config.get(n) for n in names], row["epoch"],
                                 *[row.get(c) for c in metric_columns], *([undid] if undone else [])])
    return buffer.getvalue()


def _metric_headers(metrics: list[str], fixed: list[str]) -> list[str]:
    """Each metric column's CSV name: its own, but ``epoch_<name>`` for the epoch's learning
    rate and a metric named like a searched hyperparameter (a searched ``lr`` keeps its name),
    with ``epoch_`` again while another column has that name: two columns of one name lose one
    to a CSV reader."""
    headers, used = [], {*fixed, *metrics}
    for name in metrics:
        if name == "lr" or name in fixed:
            name = f"epoch_{name}"
            while name in used:
                name = f"epoch_{name}"
            used.add(name)
        headers.append(name)
    return headers


def what_it_trains(base: dict[str, Any]) -> str:
    """``mlp on digits`` for research's own trainer; another trainer with its options."""
    trainer = str(base.get("trainer", DEFAULTS["trainer"]))
    if trainer != DEFAULTS["trainer"]:
        options = ", ".join(f"{k}={v}" for k, v in (base.get("trainer_options") or {}).items())
        return f"{trainer} ({options})" if options else trainer
    return f"{base.get('model', DEFAULTS['model'])} on {base.get('dataset', DEFAULTS['dataset'])}"

"""The picture of a babysit study, as data (research.report.figure): the one model's curve
with its story.

The live curve is solid; epochs undone by a rollback are faded and dashed from the epoch they
branched off; a dotted line at every change is labelled with what changed ("(undone)" when
its outcome was not kept); an arrow points back for every rollback; diverged epochs are
crossed; the learning rate is drawn below (unless it is the metric shown). The metric shown
is the one the policy decides on unless another is asked for. Beside it: the
hyperparameters at the last boundary and the timeline of every change (when, what, from and
to, by whom, kept or undone).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

from research_plugins.babysit import events

from research import hookimpl
from research.report.figure import Arrow, Axis, EdgeCross, Figure, Legend, Panel, Series, Table, VLine
from research.report.figures import metric_axis, metric_label, short
from research.study.objective import Objective
from research.study.store import Store, Study
from research.words import plural

Row = dict[str, Any]
LIVE, ROLLED_BACK, DIVERGED = "live curve", "rolled back", "diverged (NaN loss)"
RED, ORANGE = 3, 1  # palette indexes


def branches(rows: list[Row]) -> list[list[Row]]:
    """The rolled-back stretches of a curve given in training order, each starting from the
    epoch it branched off (the latest epoch before its first, when there is one)."""
    found: list[list[Row]] = []
    for index, row in enumerate(rows):
        if not row["rolled_back"]:
            continue
        previous = rows[index - 1] if index else None
        if found and previous is not None and previous["rolled_back"] and previous["epoch"] == row["epoch"] - 1:
            found[-1].append(row)
            continue
        anchor = next((r for r in reversed(rows[:index]) if r["epoch"] == row["epoch"] - 1), None)
        found.append(([anchor] if anchor else []) + [row])
    return found


LOSSES = ("train_loss", "val_loss")


def losses_of(rows: list[Row]) -> tuple[str, ...]:
    """The losses the trainer reports: those some epoch has a value of. A program may report
    neither (its lines hold val_acc alone): a NULL loss is then no sign of divergence."""
    return tuple(name for name in LOSSES if any(r.get(name) is not None for r in rows))


def diverged(row: Row, losses: tuple[str, ...]) -> bool:
    """An epoch whose reported loss (``losses_of``) was not finite (stored as NULL)."""
    return any(row.get(name) is None for name in losses)


def change_text(change: events.Change, verdict: str | None) -> str:
    """A change's label on the plot: what changed, and "(undone)" when a rollback took it back."""
    text = f"{change.get('name')} {short(change.get('old'))} -> {short(change.get('new'))}"
    return text + (" (undone)" if verdict == "undone" else "")


def curve_panel(rows: list[Row], column: str, x: Axis, y: Axis, height: float, marks: list[Any]) -> Panel:
    """One column's curve: the live line, rolled-back branches, diverged epochs, then
    ``marks``. The metrics of a diverged epoch mean nothing (a cross on the bottom edge); its
    learning rate does."""
    meaningful = column == "lr"
    steps = column == "lr"  # a rate holds through the epoch it ends
    losses = losses_of(rows)

    def points(part: list[Row]) -> tuple[list[float], list[float]]:
        shown = [r for r in part if r.get(column) is not None and (meaningful or not diverged(r, losses))]
        return [r["epoch"] for r in shown], [r.get(column) for r in shown]

    live = sorted((r for r in rows if not r["rolled_back"]), key=lambda r: r["epoch"])
    series = [Series(*points(live), LIVE, "highlighted", steps=steps, info={"part": "live"})]
    for branch in branches(rows):
        epochs, values = points(branch)
        if epochs:
            series.append(Series(epochs, values, ROLLED_BACK, "faded", "dashed", steps, "dot",
                                 info={"part": "rolled back", "from": epochs[0], "to": epochs[-1]}))
    crossed = [r for r in rows if diverged(r, losses)]
    if meaningful:
        epochs, values = points(crossed)
        if epochs:
            series.append(Series(epochs, values, DIVERGED, style="points", marker="cross", color=RED))
    else:
        marks = [EdgeCross(r["epoch"], DIVERGED, RED, {"epoch": r["epoch"]}) for r in crossed] + marks
    return Panel(x, y, series, marks, height)


def watched_metric(study: Study, rows: list[Row]) -> str:
    """The metric babysit's policy decides on (``session.watched``): the study's metric when
    one was chosen, else the validation loss when the curve has one, else the study's."""
    from research_plugins.babysit.session import watched

    settings = SimpleNamespace(metric=study.settings.get("metric"), objective=Objective.of(study.settings))
    return watched(settings, {name: value for row in rows for name, value in row.items() if value is not None}).metric


def babysit_figure(store: Store, study: Study, metric: str | None = None) -> Figure:
    """The figure of a babysit study's one model for ``metric`` (None: the one its policy
    decides on)."""
    trials = store.trials(study)
    rows = store.curve(trials[0], rolled_back=True) if trials else []
    watching = metric is None
    metric = metric or watched_metric(study, rows)
    log = store.events(study)
    outcomes = [cast(events.Outcome, e["data"]) for e in log if e["kind"] == events.OUTCOME]
    verdicts = {outcome.get("change"): events.verdict(outcome) for outcome in outcomes}
    changes = [(e["id"], cast(events.Change, e["data"])) for e in log if e["kind"] == events.CHANGE]
    rollbacks = [cast(events.Rollback, e["data"]) for e in log if e["kind"] == events.ROLLBACK]
    segments = [cast(events.Segment, e["data"]) for e in log if e["kind"] == events.SEGMENT]

    at: dict[int, list[str]] = {}
    for number, change in changes:
        at.setdefault(int(change.get("epoch", 0)), []).append(change_text(change, verdicts.get(number)))
    lines = [VLine(epoch, "; ".join(texts), "change", ORANGE) for epoch, texts in sorted(at.items())]
    arrows = [Arrow(start, end, f"rollback {start}->{end}", "rollback", RED)
              for start, end in ((r.get("from_epoch", 0), r.get("to_epoch", 0)) for r in rollbacks)]

    last = max([r["epoch"] for r in rows] + list(at), default=1)
    x = Axis("epoch", integer=True, limits=(-0.3, last + 0.7))  # room for the labels of a change at the end
    y = metric_axis(metric, [r.get(metric) for r in rows if not diverged(r, losses_of(rows))])
    panels = [curve_panel(rows, metric, x, y, 3, [*lines, *arrows])]
    if metric != "lr" and any(r.get("lr") is not None for r in rows):  # a trainer may not report its rate
        unlabelled = [VLine(line.x, legend=line.legend, color=line.color) for line in lines]
        panels.append(curve_panel(rows, "lr", x, Axis("lr", "log"), 1, unlabelled))

    hyper = segments[-1].get("hyper") if segments else None
    tables = [Table("Hyperparameters at the last boundary", ("name", "value"), list(hyper.items()))] if hyper else []
    if changes:
        tables.append(Table("Hyperparameter timeline", ("epoch", "name", "from", "to", "by", "outcome"),
                            [(c.get("epoch"), c.get("name"), c.get("old"), c.get("new"), c.get("source"),
                              verdicts.get(number, "")) for number, c in changes]))
    status = trials[0].status if trials else "no model yet"
    return Figure(
        title=f"{study.name}: {status}, {plural(len(changes), 'change')}, {plural(len(rollbacks), 'rollback')}",
        panels=panels, share_x=True, legend=Legend(),
        name="Learning curve, changes and rollbacks",
        caption=f"The {metric_label(metric)} of the one model by epoch"
                f"{' (what the policy decides on)' if watching else ''}. The live curve is solid; epochs undone by a "
                "rollback are faded and dashed from where they branched off; a dotted line marks every change, "
                "labelled with what changed; arrows point back for rollbacks; crosses mark diverged epochs.",
        tables=tables,
        size=(9, 6) if len(panels) > 1 else (9, 5),
    )


@hookimpl
def study_figure(store: Store, study: Study, metric: str, named: bool) -> Figure | None:
    """The figure of a babysit study (other studies are left to other plugins): of the metric
    the user named, else of the one the policy decides on (the validation loss unless the
    study chose a metric)."""
    if study.strategy != events.STRATEGY:
        return None
    return babysit_figure(store, study, metric if named else None)

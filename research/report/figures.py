"""The core's own figures, as data: every trial's learning curve overlaid, the score against
each searched hyperparameter, the trials as parallel coordinates over the searched
hyperparameters and the score, one trial's curves, and the study's figure (a plugin's, or
else the curves).

Every core figure highlights the same top trials, chosen by the study's ranking, in the same
colors and labels (:func:`leaders`), and a metric's axis is focused on them (:func:`focus`).
Also the small helpers a plugin's figure uses to look like these: :func:`short` numbers and
:func:`metric_axis`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from research.report.figure import Axis, EdgeCross, Figure, Legend, Panel, Series, VLine
from research.report.tables import LOWER_IS_BETTER, check_metric, objective_of, ranked, reported, searched_names
from research.study.objective import Objective, natural_direction
from research.study.store import Store, Study

if TYPE_CHECKING:
    from research.plugins import Plugins


PALETTE = 10  # colors before they repeat
GOLDEN = 0.6180339887  # spreads the dots of one choice the same way every time
LOG_MARGIN, LINEAR_MARGIN = 1.3, 0.04  # room around a searched range: a factor on log axes, a share of the span
EPOCH_AXIS = Axis("epoch", integer=True)
FOCUS_QUANTILE, FOCUS_MARGIN, FIT_ALL = 0.1, 0.08, 1.5  # how an axis is focused on the top trials (see focus)
NOT_SCORES = ("lr", "seconds")  # metrics whose axis always fits every value
SPLIT_LOOKS = {"val": (0, "solid"), "train": (1, "dashed"), "test": (2, "solid")}  # a split's color and line
LABEL_ROOM = 0.16  # the share of a panel's width a vertical line's label takes, right of the line


def short(value: Any) -> str:
    """A value as a label: finite floats to 4 significant digits, anything else as it is."""
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:.4g}"
    return str(value)


def metric_label(metric: str) -> str:
    """``val_acc`` -> ``val acc``."""
    return metric.replace("_", " ")


def metric_axis(metric: str, values: Iterable[float | None]) -> Axis:
    """The y axis of a metric: a log scale for the learning rate, and for a loss whose
    positive ``values`` span a factor of 10 or more; linear otherwise."""
    positive = [v for v in values if v is not None and v > 0]
    wide = bool(positive) and max(positive) >= 10 * min(positive)
    log_scale = metric == "lr" or (metric in LOWER_IS_BETTER and wide)
    return Axis(metric_label(metric), "log" if log_scale else "linear")


def leaders(rows: list[dict[str, Any]], study: Study, top: int) -> dict[int, tuple[int, str]]:
    """The study's ``top`` best trials by its ranking (``rows`` from :func:`ranked` of the
    study), each with its palette color and legend label (``#3 (0.97): lr=0.01``: its score
    and searched values), best first: every panel of every core figure highlights these,
    alike, whatever metric it shows."""
    score = f"best_{objective_of(study).metric}"
    names = searched_names(study)
    found = {}
    for rank, row in enumerate(r for r in rows if r[score] is not None):
        if rank == top:
            break
        label = f"#{row['number']} ({short(row[score])})"
        if names:
            label += ": " + ", ".join(f"{n}={short(row['config'].get(n))}" for n in names)
        found[row["number"]] = (rank % PALETTE, label)
    return found


def bounds(metric: str) -> tuple[float, float]:
    """The values ``metric`` can take: 0 to 1 for an accuracy, from 0 for a loss or an error,
    any otherwise."""
    if metric.endswith(("acc", "accuracy")):
        return 0.0, 1.0
    if metric.endswith(("loss", "error")):
        return 0.0, math.inf
    return -math.inf, math.inf


def focus(axis: Axis, objective: Objective, top: list[list[float]], every: list[float]) -> Axis:
    """``axis`` (of ``objective.metric``) with limits on the range that tells the top trials
    apart, so a few bad trials do not squash the good ones into one band.

    ``top`` holds the top trials' curves, ``every`` every value shown. For a maximized metric
    the range runs from the lower of the top trials' 10% quantile (over all their epochs) and
    their worst best value, up to the highest value of all; a minimized one is mirrored (from
    the lowest of all up to the higher of their 90% quantile and their worst best value). On a
    log axis this is reckoned in logarithms. A margin of 8% of the range is added at each end,
    then the range is clipped to what the metric can take (:func:`bounds`). Curves that leave
    it run off the bad end. The axis is left to fit everything when everything fits in 1.5
    such ranges, when no top trial has a value, and for ``lr`` and ``seconds`` (not scores).
    """
    if objective.metric in NOT_SCORES:
        return axis
    log = axis.scale == "log"

    def shown(values: Iterable[float]) -> list[float]:
        return [math.log10(v) if log else v for v in values if not log or v > 0]

    curves = [c for c in (shown(curve) for curve in top) if c]
    everything = shown(every)
    if not curves:
        return axis
    points = [v for c in curves for v in c]
    if objective.sign > 0:
        low = min(float(np.quantile(points, FOCUS_QUANTILE)), min(max(c) for c in curves))
        high = max(everything)
    else:
        low = min(everything)
        high = max(float(np.quantile(points, 1 - FOCUS_QUANTILE)), max(min(c) for c in curves))
    span = high - low
    if span <= 0 or max(everything) - min(everything) <= FIT_ALL * span:
        return axis
    low, high = low - FOCUS_MARGIN * span, high + FOCUS_MARGIN * span
    if log:
        low, high = 10**low, 10**high
    least, most = bounds(objective.metric)
    return replace(axis, limits=(max(low, least), min(high, most)))


def _points(curve: list[dict[str, Any]], metric: str) -> tuple[list[int], list[float]]:
    """The epochs of ``curve`` that have a value of ``metric``, and their values; a list at a
    time, not a pair of values a point (a study's 100,000 points took most of its curves figure)."""
    y = [epoch.get(metric) for epoch in curve]
    if None not in y:
        return [epoch["epoch"] for epoch in curve], y
    return [epoch["epoch"] for epoch, value in zip(curve, y) if value is not None], [v for v in y if v is not None]


def curves_figure(store: Store, study: Study, metric: str | None = None, top: int = 5, *,
                  curves: dict[int, list[dict[str, Any]]] | None = None, rows: list[dict[str, Any]] | None = None) -> Figure:
    """Overlaid learning curves of every trial (``metric``, default the study's): the ``top``
    best by the study's ranking in color with their score and configuration in the legend
    (:func:`leaders`), the rest faded gray, a cross where each pruned trial was stopped; the
    y axis focused on the top trials (:func:`focus`). ``curves`` and ``rows`` (``ranked(store,
    study)``): what the caller has read already."""
    curves = store.curves(study) if curves is None else curves
    rows = ranked(store, study, curves=curves) if rows is None else rows
    own = objective_of(study)
    metric = own.metric if metric in (None, own.metric) else check_metric(metric, reported(curves))
    objective = own if metric == own.metric else Objective(metric, natural_direction(metric))
    best = leaders(rows, study, top)
    series, stopped = [], []
    for row in rows:
        x, y = _points(curves.get(row["number"], []), metric)
        if not x:
            continue
        if row["status"] == "pruned":
            stopped.append((row["number"], (x[-1], y[-1])))
        info = {"trial": row["number"], "status": row["status"], f"best_{own.metric}": row[f"best_{own.metric}"],
                "config": row["config"]}
        if row["number"] in best:
            color, label = best[row["number"]]
            series.append(Series(x, y, label, "highlighted", color=color, info=info))
        else:
            series.append(Series(x, y, emphasis="faded", color=None, info=info))
    values = [v for s in series for v in s.y]
    axis = metric_axis(metric, values)
    axis = focus(axis, objective, [list(s.y) for s in series if s.emphasis == "highlighted"], values)
    highlighted = f"top {len(best)} highlighted" if len(best) < len(rows) else "all shown"
    caption = f"Every trial's {metric_label(metric)} by epoch; the {len(best)} best in color, the others gray."
    if axis.limits is not None:
        caption += " The axis shows the range of the best trials; worse values run off it."
    if stopped:
        numbers, ends = zip(*stopped)
        x, y = zip(*ends)
        series.append(Series(x, y, "pruned (stopped here)", "normal", "points", marker="cross", color=None,
                             info={"trials": list(numbers)}))
        caption += " Crosses: pruned trials, where they were stopped."
    return Figure(
        title=f"{study.name}: {len(rows)} trials, {highlighted}" if rows else f"{study.name}: no trials yet",
        panels=[Panel(EPOCH_AXIS, axis, series)],
        legend=Legend(title=f"ranked by best {metric_label(own.metric)}"),
        name="Learning curves",
        caption=caption,
        size=(8, 5),
    )


def _param_axis(name: str, param: Any) -> Axis:
    """The x axis of a searched hyperparameter, on its own scale."""
    from research.space import Choice, Float

    if isinstance(param, Choice):
        return Axis(name, "choice", categories=[str(v) for v in param.values])
    scale = getattr(param, "scale", "linear")
    low, high = param.low, param.high
    if scale == "log":
        return Axis(f"{name} (log scale)", "log", limits=(low / LOG_MARGIN, high * LOG_MARGIN))
    if scale == "log1m":
        return Axis(f"{name} (log scale of 1 - {name})", "log1m",
                    limits=(1 - (1 - low) * LOG_MARGIN, 1 - (1 - high) / LOG_MARGIN))
    margin = LINEAR_MARGIN * (high - low)
    return Axis(name + (" (linear)" if isinstance(param, Float) else ""), limits=(low - margin, high + margin))


def _param_x(param: Any, value: Any, number: int) -> float | None:
    """Where a trial's ``value`` of a parameter goes on its axis (None: not on it); the dots of
    one choice are spread a little, the same way every time."""
    from research.space import Choice

    if value is None:
        return None
    if isinstance(param, Choice):
        positions = {repr(v): i for i, v in enumerate(param.values)}
        if repr(value) not in positions:
            return None
        return positions[repr(value)] + 0.25 * (((number * GOLDEN) % 1.0) - 0.5)
    return float(value)


def scores_figure(store: Store, study: Study, metric: str | None = None, top: int = 5, *,
                  curves: dict[int, list[dict[str, Any]]] | None = None, rows: list[dict[str, Any]] | None = None) -> Figure | None:
    """Best ``metric`` of every trial against each searched hyperparameter, on the parameter's
    own scale: the rounds of coarse-to-fine in their own colors, the study's ``top`` best
    trials ringed in their colors and labels of the curves (:func:`leaders`), trials without
    a score as crosses at the bottom. None when nothing was searched. ``metric`` None is the
    study's objective; ``curves`` and ``rows`` (``ranked(store, study)``): what the caller has
    read already."""
    from research.space import parse_param

    metric = objective_of(study, metric, store).metric
    space = {name: parse_param(name, text) for name, text in study.settings.get("space", {}).items()}
    if not space:
        return None
    curves = store.curves(study) if curves is None else curves
    own = ranked(store, study, curves=curves) if rows is None else rows
    rows = own if metric == objective_of(study).metric else ranked(store, study, metric, curves=curves)
    best = leaders(own, study, top)
    score = f"best_{metric}"
    rounds = sorted({r["round"] for r in rows if r["round"] is not None})
    color_of = {r: (len(best) + i) % PALETTE for i, r in enumerate(rounds)}  # after the top trials' colors
    scored = sorted((r for r in rows if r[score] is not None), key=lambda r: (r["round"] is None, r["round"] or 0))
    by_number = {r["number"]: r for r in scored}
    ringed = [by_number[number] for number in best if number in by_number]

    def info(row: dict[str, Any]) -> dict[str, Any]:
        return {"trial": row["number"], score: row[score], "config": row["config"]}

    panels = []
    for name, param in space.items():
        at = {r["number"]: _param_x(param, r["config"].get(name), r["number"]) for r in rows}
        rings = [Series([at[r["number"]]], [r[score]], best[r["number"]][1], "highlighted", "points", marker="ring",
                        color=best[r["number"]][0], info=info(r)) for r in ringed if at[r["number"]] is not None]
        dots = [Series([at[r["number"]]], [r[score]], f"round {r['round']}" if r["round"] is not None else "",
                       "normal", "points", marker="dot", color=color_of.get(r["round"]), info=info(r))
                for r in scored if at[r["number"]] is not None]
        marks = [EdgeCross(at[r["number"]], "no score", None, {"trial": r["number"], "config": r["config"]})
                 for r in rows if r[score] is None and at[r["number"]] is not None]
        # The key: the top trials first, then the rounds.
        panels.append(Panel(_param_axis(name, param), Axis(f"best {metric_label(metric)}"), rings + dots, marks))
    columns = min(3, len(panels))
    lines = math.ceil(len(panels) / columns)
    return Figure(
        title=f"{study.name}: best {metric_label(metric)} by hyperparameter",
        panels=panels, columns=columns, share_y=True, legend=Legend(place="below"),
        name="Score against each hyperparameter",
        caption=f"Each dot is a trial, on the parameter's own scale: log for log parameters, 1 - value on a log "
                f"axis (labelled with the value) for log1m ones. The {len(best)} best trials are ringed in their "
                f"colors of the learning curves. Trials without a score are crosses at the bottom.",
        size=(0.8 + 3.4 * columns, 0.6 + 3.0 * lines + 0.45),
    )


def _bound(value: float) -> str:
    """One end of a searched range as a label: 1e-04 for the very small or large, 0.999 otherwise."""
    if value != 0 and not 1e-3 <= abs(value) < 1e5:
        mantissa, exponent = f"{value:.3e}".split("e")
        return f"{mantissa.rstrip('0').rstrip('.')}e{exponent}"
    return f"{value:.4g}"


def _range_label(name: str, param: Any) -> str:
    """A parallel axis' label: the parameter's name over its range and scale (``lr`` over
    ``1e-04..1 (log)``), or its choices (``adam|momentum``)."""
    from research.space import Choice, Int

    if isinstance(param, Choice):
        return f"{name}\n{'|'.join(str(v) for v in param.values)}"
    if isinstance(param, Int):
        return f"{name}\n{param.low}..{param.high} (int{', log' if param.scale == 'log' else ''})"
    scale = {"log1m": "log 1-x"}.get(param.scale, param.scale)
    return f"{name}\n{_bound(param.low)}..{_bound(param.high)} ({scale})"


def _position(param: Any) -> Callable[[Any], float | None]:
    """The map from a value of ``param`` to its place in the searched range on the parameter's
    own scale, 0 at low and 1 at high (log10 for log, log10(1 - value) for log1m; a choice's
    values evenly spaced in their order, 0.5 when there is one); None for a value not on it."""
    from research.space import Choice

    if isinstance(param, Choice):
        last = len(param.values) - 1
        places = {repr(v): i / last if last else 0.5 for i, v in enumerate(param.values)}
        return lambda value: places.get(repr(value))
    forward = {"log": math.log10, "log1m": lambda v: math.log10(1 - v)}.get(param.scale, float)
    t0, t1 = forward(param.low), forward(param.high)

    def place(value: Any) -> float | None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return None
        if (param.scale == "log" and value <= 0) or (param.scale == "log1m" and value >= 1):
            return None
        return (forward(value) - t0) / (t1 - t0)

    return place


def parallel_figure(store: Store, study: Study, metric: str | None = None, top: int = 5, *,
                    curves: dict[int, list[dict[str, Any]]] | None = None, rows: list[dict[str, Any]] | None = None) -> Figure | None:
    """Parallel coordinates: each scored trial as one line across the searched hyperparameters,
    each at its place in the searched range on its own scale, to its best ``metric`` (default
    the study's) between the worst and the best seen, so the settings that go with good scores
    show at a glance. The ``top`` trials as in the curves (:func:`leaders`), the rest gray.
    None when nothing was searched. ``curves`` and ``rows`` (``ranked(store, study)``): what
    the caller has read already."""
    from research.space import parse_param

    space = {name: parse_param(name, text) for name, text in study.settings.get("space", {}).items()}
    if not space:
        return None
    curves = store.curves(study) if curves is None else curves
    objective = objective_of(study, metric, store)
    own, metric, score = objective_of(study).metric, objective.metric, f"best_{objective.metric}"
    ranking = ranked(store, study, curves=curves) if rows is None else rows
    rows = ranking if metric == own else ranked(store, study, metric, curves=curves)
    best = leaders(ranking, study, top)
    # The score's axis runs from the worst score seen to the best, whatever the direction.
    scored = sorted((r[score] for r in rows if r[score] is not None), key=objective.key)
    worst, highest = (objective.key(scored[0]), objective.key(scored[-1])) if scored else (0.0, 0.0)
    shown = f"best {metric_label(metric)}" + (f"\n{short(scored[0])}..{short(scored[-1])}" if scored else "")
    places = {name: _position(param) for name, param in space.items()}
    x = tuple(range(len(space) + 1))
    faded, highlighted = [], {}
    for row in rows:
        if row[score] is None:
            continue
        y = [places[name](row["config"].get(name)) for name in space]
        if None in y:
            continue
        key = objective.key(row[score])
        y.append((key - worst) / (highest - worst) if highest > worst else 1.0)
        info = {"trial": row["number"], score: row[score], "config": row["config"]}
        if row["number"] in best:
            color, label = best[row["number"]]
            highlighted[row["number"]] = Series(x, y, label, "highlighted", color=color, info=info)
        else:
            faded.append(Series(x, y, emphasis="faded", color=None, info=info))
    series = faded + [highlighted[number] for number in best if number in highlighted]  # the best drawn last
    return Figure(
        title=f"{study.name}: {len(series)} trials across the searched hyperparameters",
        panels=[Panel(Axis("", "choice", categories=[*(_range_label(n, p) for n, p in space.items()), shown]),
                      Axis("position in the searched range (score: worst to best seen)", limits=(0, 1)), series)],
        legend=Legend(title=f"ranked by best {metric_label(own)}", place="below"),
        name="Parallel coordinates",
        caption=f"Each line is a trial. On each hyperparameter's axis it stands at its value's place in the "
                f"searched range on the parameter's own scale (log for log parameters, 1 - value on a log "
                f"scale for log1m ones), low at the bottom, high at the top; a choice's values are spread evenly "
                f"in the order given. The last axis is its best {metric_label(metric)}, from the worst seen at "
                f"the bottom to the best at the top. The {len(highlighted)} best trials in their colors of the "
                f"learning curves, the others gray. Trials without a score or a searched value are left out.",
        size=(max(6.0, 1.4 + 1.5 * len(x)), 5.5),
    )


def _family(metric: str) -> list[str]:
    """``metric`` and the same measure on the other splits: val_acc, train_acc, test_acc."""
    split, _, stem = metric.partition("_")
    if split not in SPLIT_LOOKS or not stem:
        return [metric]
    return [metric, *(f"{other}_{stem}" for other in SPLIT_LOOKS if other != split)]


def _split_series(curve: list[dict[str, Any]], names: list[str], number: int) -> list[Series]:
    """One series per metric of ``names`` the curve reports, labelled by its split (one key
    for every panel): val solid in color 0, train dashed in 1, test solid in 2."""
    found = []
    for name in names:
        points = [(row["epoch"], row[name]) for row in curve if row.get(name) is not None]
        if points:
            split = name.partition("_")[0]
            color, style = SPLIT_LOOKS.get(split, (0, "solid"))
            x, y = zip(*points)
            found.append(Series(x, y, split if split in SPLIT_LOOKS else metric_label(name), style=style,
                                color=color, info={"trial": number, "metric": name}))
    return found


def _epochs_with_room(curve: list[dict[str, Any]], chosen: int) -> Axis:
    """The epoch axis, widened to the right when the ``chosen`` epoch's label would run off it."""
    epochs = [row["epoch"] for row in curve]
    low, high = min(epochs), max(epochs)
    high = max(high, low + 1, (chosen - LABEL_ROOM * low) / (1 - LABEL_ROOM))
    margin = LINEAR_MARGIN * (high - low)
    return replace(EPOCH_AXIS, limits=(low - margin, high + margin))


def trial_figure(store: Store, study: Study, number: int) -> Figure:
    """One trial's live curves: the study's metric by epoch beside its train and test
    counterparts, and below them the losses (the accuracies when the metric is a loss), with
    a line at the epoch the study judges the trial by. A StoreError for a missing trial."""
    trial = store.trial(study, number)
    status = next(t.status for t in store.trials(study) if t.number == number)  # a dead runner's: interrupted
    curve = store.curve(trial)
    objective = objective_of(study)
    metric = objective.metric
    stem = metric.partition("_")[2] if metric.partition("_")[0] in SPLIT_LOOKS else ""
    other = "acc" if stem == "loss" else "loss"
    chosen = objective.select(curve)
    epochs = _epochs_with_room(curve, chosen["epoch"]) if chosen else EPOCH_AXIS
    panels = []
    for names in (_family(metric), [f"{split}_{other}" for split in ("train", "val", "test")]):
        series = _split_series(curve, names, number)
        if panels and not series:
            continue
        label = metric_label(names[0].partition("_")[2] if len(names) > 1 else names[0])
        axis = replace(metric_axis(names[0], [v for s in series for v in s.y]), label=label)
        marks = [VLine(chosen["epoch"], "" if panels else f"chosen epoch {chosen['epoch']}", color=None)] \
            if chosen else []
        panels.append(Panel(epochs, axis, series, marks, height=1.0 if not panels else 0.7))
    return Figure(
        title=f"{study.name}: trial {number} ({status})",
        panels=panels,
        share_x=True,
        name=f"Trial {number}",
        caption=f"Trial {number}'s {metric_label(metric)} by epoch (train dashed) and its "
                f"{'accuracies' if other == 'acc' else 'losses'}; the dotted line marks the epoch the study "
                f"judges it by, its best {metric_label(metric)}.",
        size=(8, 6.5 if len(panels) > 1 else 5),
    )


def study_figure(store: Store, study: Study, metric: str | None, plugins: Plugins) -> Figure:
    """The study's figure: the first plugin's answer to the ``study_figure`` hook, or else the
    overlaid learning curves. A plugin that raises or answers with something other than a
    Figure is reported by name in ``plugins.problems``, and the next one asked (Plugins.first).
    ``metric`` None is the study's own."""
    own = objective_of(study).metric
    named = metric is not None
    metric = own if metric in (None, own) else check_metric(metric, reported(store.curves(study)))
    answer = plugins.figure(store, study, metric, named)
    return curves_figure(store, study, metric) if answer is None else answer

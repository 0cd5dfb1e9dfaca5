"""The core's own figures, as data: every trial's learning curve overlaid, the score against
each searched hyperparameter, and the study's figure (a plugin's, or else the curves).

Every core figure highlights the same top trials, chosen by the study's ranking, in the same
colors and labels (:func:`leaders`), and a metric's axis is focused on them (:func:`focus`).
Also the small helpers a plugin's figure uses to look like these: :func:`short` numbers and
:func:`metric_axis`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from research.report.figure import Axis, EdgeCross, Figure, Legend, Panel, Series
from research.report.tables import LOWER_IS_BETTER, check_metric, objective_of, ranked, reported, searched_names
from research.study.objective import Objective, natural_direction
from research.study.store import Store, Study

if TYPE_CHECKING:
    from research.plugins import Plugins

log = logging.getLogger(__name__)

PALETTE = 10  # colors before they repeat
GOLDEN = 0.6180339887  # spreads the dots of one choice the same way every time
LOG_MARGIN, LINEAR_MARGIN = 1.3, 0.04  # room around a searched range: a factor on log axes, a share of the span
EPOCH_AXIS = Axis("epoch", integer=True)
FOCUS_QUANTILE, FOCUS_MARGIN, FIT_ALL = 0.1, 0.08, 1.5  # how an axis is focused on the top trials (see focus)
NOT_SCORES = ("lr", "seconds")  # metrics whose axis always fits every value


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


def curves_figure(store: Store, study: Study, metric: str | None = None, top: int = 5) -> Figure:
    """Overlaid learning curves of every trial (``metric``, default the study's): the ``top``
    best by the study's ranking in color with their score and configuration in the legend
    (:func:`leaders`), the rest faded gray; the y axis focused on the top trials
    (:func:`focus`)."""
    rows = ranked(store, study)
    own = objective_of(study)
    curves = store.curves(study)
    metric = own.metric if metric in (None, own.metric) else check_metric(metric, reported(curves))
    objective = own if metric == own.metric else Objective(metric, natural_direction(metric))
    best = leaders(rows, study, top)
    series = []
    for row in rows:
        points = [(c["epoch"], c.get(metric)) for c in curves.get(row["number"], []) if c.get(metric) is not None]
        if not points:
            continue
        info = {"trial": row["number"], "status": row["status"], f"best_{own.metric}": row[f"best_{own.metric}"],
                "config": row["config"]}
        x, y = zip(*points)
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


def scores_figure(store: Store, study: Study, metric: str | None = None, top: int = 5) -> Figure | None:
    """Best ``metric`` of every trial against each searched hyperparameter, on the parameter's
    own scale: the rounds of coarse-to-fine in their own colors, the study's ``top`` best
    trials ringed in their colors and labels of the curves (:func:`leaders`), trials without
    a score as crosses at the bottom. None when nothing was searched. ``metric`` None is the
    study's objective."""
    from research.space import parse_param

    metric = objective_of(study, metric, store).metric
    space = {name: parse_param(name, text) for name, text in study.settings.get("space", {}).items()}
    if not space:
        return None
    rows = ranked(store, study, metric)
    best = leaders(rows if metric == objective_of(study).metric else ranked(store, study), study, top)
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


def study_figure(store: Store, study: Study, metric: str | None, plugins: Plugins) -> Figure:
    """The study's figure: the first plugin's answer to the ``study_figure`` hook, or else the
    overlaid learning curves. A plugin that raises is reported by name in ``plugins.problems``
    (and the next one asked); an answer that is not a Figure is reported there too, naming the
    plugins that implement the hook; either way the curves are drawn instead. ``metric`` None
    is the study's own."""
    own = objective_of(study).metric
    named = metric is not None
    metric = own if metric in (None, own) else check_metric(metric, reported(store.curves(study)))
    answer = plugins.figure(store, study, metric, named)
    if answer is None:
        return curves_figure(store, study, metric)
    if not isinstance(answer, Figure):
        names = ", ".join(impl.plugin_name for impl in plugins.manager.hook.study_figure.get_hookimpls())
        message = (f"a study_figure hook (of {names}) returned a {type(answer).__name__}, not a "
                   f"research.report.figure.Figure; drew the learning curves instead")
        if message not in plugins.problems:
            plugins.problems.append(message)
            log.warning(message)
        return curves_figure(store, study, metric)
    return answer

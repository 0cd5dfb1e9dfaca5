"""The core's own figures, as data: every trial's learning curve overlaid, the score against
each searched hyperparameter, and the study's figure (a plugin's, or else the curves).

Also the small helpers a plugin's figure uses to look like these: :func:`short` numbers and
:func:`metric_axis`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from research.report.figure import Axis, EdgeCross, Figure, Legend, Panel, Series
from research.report.tables import LOWER_IS_BETTER, check_metric, objective_of, ranked, reported, searched_names
from research.study.store import Store, Study

if TYPE_CHECKING:
    from research.plugins import Plugins

log = logging.getLogger(__name__)

PALETTE = 10  # colors before they repeat
GOLDEN = 0.6180339887  # spreads the dots of one choice the same way every time
LOG_MARGIN, LINEAR_MARGIN = 1.3, 0.04  # room around a searched range: a factor on log axes, a share of the span
EPOCH_AXIS = Axis("epoch", integer=True)


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


def curves_figure(store: Store, study: Study, metric: str | None = None, top: int = 5) -> Figure:
    """Overlaid learning curves of every trial (``metric``, default the study's): the ``top``
    best by the study's objective in color with their configuration in the legend, the rest
    faded gray."""
    rows = ranked(store, study)
    own = objective_of(study).metric
    score = f"best_{own}"
    curves = store.curves(study)
    metric = own if metric in (None, own) else check_metric(metric, reported(curves))
    best = [r["number"] for r in rows if r[score] is not None][:top]
    names = searched_names(study)
    series = []
    for row in rows:
        points = [(c["epoch"], c.get(metric)) for c in curves.get(row["number"], []) if c.get(metric) is not None]
        if not points:
            continue
        info = {"trial": row["number"], "status": row["status"], score: row[score], "config": row["config"]}
        x, y = zip(*points)
        if row["number"] in best:
            rank = best.index(row["number"])
            label = f"#{row['number']} ({short(row[score])})"
            if names:
                label += ": " + ", ".join(f"{n}={short(row['config'].get(n))}" for n in names)
            series.append(Series(x, y, label, "highlighted", color=rank % PALETTE, info=info))
        else:
            series.append(Series(x, y, emphasis="faded", color=None, info=info))
    values = [c.get(metric) for curve in curves.values() for c in curve]
    shown = f"top {len(best)} highlighted" if len(best) < len(rows) else "all shown"
    return Figure(
        title=f"{study.name}: {len(rows)} trials, {shown}" if rows else f"{study.name}: no trials yet",
        panels=[Panel(EPOCH_AXIS, metric_axis(metric, values), series)],
        legend=Legend(title=f"best {metric_label(metric)}"),
        name="Learning curves",
        caption=f"Every trial's {metric_label(metric)} by epoch; the {len(best)} best in color, the others gray.",
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


def scores_figure(store: Store, study: Study, metric: str | None = None) -> Figure | None:
    """Best ``metric`` of every trial against each searched hyperparameter, on the parameter's
    own scale; the rounds of coarse-to-fine in their own colors, the best trial marked, trials
    without a score as crosses at the bottom. None when nothing was searched. ``metric`` None
    is the study's objective."""
    from research.space import parse_param

    metric = objective_of(study, metric, store).metric
    space = {name: parse_param(name, text) for name, text in study.settings.get("space", {}).items()}
    if not space:
        return None
    rows = ranked(store, study, metric)
    score = f"best_{metric}"
    rounds = sorted({r["round"] for r in rows if r["round"] is not None})
    color_of = {r: i % PALETTE for i, r in enumerate(rounds)}
    best = rows[0] if rows and rows[0][score] is not None else None
    others = sorted((r for r in rows if r[score] is not None and r is not best),
                    key=lambda r: (r["round"] is None, r["round"] or 0))
    panels = []
    for name, param in space.items():
        series, marks = [], []
        for row in others + ([best] if best else []):
            x = _param_x(param, row["config"].get(name), row["number"])
            if x is None:
                continue
            label = f"round {row['round']}" if row["round"] is not None else ""
            if row is best:
                label = f"best (#{row['number']})"
            series.append(Series([x], [row[score]], label, "highlighted" if row is best else "normal", "points",
                                 marker="dot", color=color_of.get(row["round"], 0),
                                 info={"trial": row["number"], score: row[score], "config": row["config"]}))
        for row in rows:
            x = _param_x(param, row["config"].get(name), row["number"])
            if row[score] is None and x is not None:
                marks.append(EdgeCross(x, "no score", None, {"trial": row["number"], "config": row["config"]}))
        panels.append(Panel(_param_axis(name, param), Axis(f"best {metric_label(metric)}"), series, marks))
    columns = min(3, len(panels))
    lines = math.ceil(len(panels) / columns)
    return Figure(
        title=f"{study.name}: best {metric_label(metric)} by hyperparameter",
        panels=panels, columns=columns, share_y=True, legend=Legend(place="below"),
        name="Score against each hyperparameter",
        caption="Each dot is a trial, on the parameter's own scale: log for log parameters, 1 - value on a log "
                "axis (labelled with the value) for log1m ones. Trials without a score are crosses at the bottom.",
        size=(0.8 + 3.4 * columns, 0.6 + 3.0 * lines + 0.45),
    )


def study_figure(store: Store, study: Study, metric: str | None, plugins: Plugins) -> Figure:
    """The study's figure: the first plugin's answer to the ``study_figure`` hook, or else the
    overlaid learning curves. A plugin that raises is reported by name in ``plugins.problems``
    (and the next one asked); an answer that is not a Figure is reported there too, naming the
    plugins that implement the hook; either way the curves are drawn instead. ``metric`` None
    is the study's own."""
    own = objective_of(study).metric
    metric = own if metric in (None, own) else check_metric(metric, reported(store.curves(study)))
    answer = plugins.figure(store, study, metric)
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

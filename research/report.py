"""Reports of a study: the ranked trials, exports, and its pictures (learning curves, the
babysat model's changes, the score against each hyperparameter).

Everything here only reads the store, so it can run while the study is being written.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

from research.study.store import Store, Study

METRIC_NAMES = ("val_acc", "val_loss", "train_acc", "train_loss", "lr")
LOWER_IS_BETTER = ("val_loss", "train_loss")


def ranked(store: Store, study: Study, metric: str = "val_acc") -> list[dict[str, Any]]:
    """One row per trial, best first: its status, configuration and best/final metrics."""
    curves = store.curves(study)
    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
    rows = []
    for trial in store.trials(study):
        curve = curves.get(trial.number, [])
        values = [(row[metric], row["epoch"]) for row in curve if row[metric] is not None]
        best, best_epoch = max(values, key=lambda v: sign * v[0]) if values else (None, None)
        rows.append({
            "number": trial.number,
            "status": trial.status,
            "round": trial.round,
            "epochs": len(curve),
            f"best_{metric}": best,
            "best_epoch": best_epoch,
            f"final_{metric}": curve[-1][metric] if curve else None,
            "config": trial.config,
            "error": trial.error,
        })
    key = f"best_{metric}"
    rows.sort(key=lambda r: (r[key] is None, -sign * r[key] if r[key] is not None else 0.0, r["number"]))
    return rows


def searched_names(study: Study) -> list[str]:
    """The hyperparameters the study searched over (its table columns)."""
    return list(study.settings.get("space", {}))


def export(store: Store, study: Study, fmt: str) -> str:
    """Every epoch of every trial, with the trial's configuration, as CSV or JSON."""
    curves = store.curves(study)
    trials = store.trials(study)
    if fmt == "json":
        return json.dumps({
            "study": study.name, "strategy": study.strategy, "settings": study.settings,
            "trials": [{"number": t.number, "status": t.status, "error": t.error, "round": t.round,
                        "config": t.config, "curve": curves.get(t.number, [])} for t in trials],
        }, indent=2)
    if fmt != "csv":
        raise ValueError(f"unknown export format '{fmt}'; choose csv or json")
    names = searched_names(study)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    metric_columns = ["train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds"]
    # The epoch's own learning rate is "epoch_lr": a searched "lr" keeps its name.
    writer.writerow(["trial", "status", *names, "epoch", *[f"epoch_{c}" if c == "lr" else c for c in metric_columns]])
    for t in trials:
        for row in curves.get(t.number, []):
            writer.writerow([t.number, t.status, *[t.config.get(n) for n in names], row["epoch"],
                             *[row[c] for c in metric_columns]])
    return buffer.getvalue()


# pictures ------------------------------------------------------------------------------------
#
# Figures are built with matplotlib's object API on an Agg canvas: no display, no pyplot state,
# nothing changed for a notebook that imports this module.

PICTURE_FORMATS = ("png", "svg")
DPI = 100


def check_metric(metric: str) -> str:
    """``metric`` if it is one a curve has; a ValueError naming the choices otherwise."""
    if metric not in METRIC_NAMES:
        raise ValueError(f"unknown metric '{metric}'; choose one of: {', '.join(METRIC_NAMES)}")
    return metric


def picture_format(path: str | Path) -> str:
    """The format a picture path asks for by its extension: png or svg (else a ValueError)."""
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in PICTURE_FORMATS:
        shown = f"'.{suffix}'" if suffix else "no extension"
        raise ValueError(f"cannot write a picture to {Path(path).name} ({shown}); "
                         f"name a {' or '.join('.' + f for f in PICTURE_FORMATS)} file")
    return suffix


def new_figure(width: float, height: float, *, left: float = 0.8, right: float = 0.25, bottom: float = 0.6,
               top: float = 0.45, **subplots: Any) -> tuple[Any, Any]:
    """A ``width`` x ``height`` inch figure on an Agg canvas and its axes (``Figure.subplots``
    arguments), with fixed margins in inches: a layout engine would cost more than the drawing."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    fig.subplots_adjust(left=left / width, right=1 - right / width, bottom=bottom / height, top=1 - top / height)
    return fig, fig.subplots(**subplots)


def save_figure(fig: Any, path: str | Path) -> Path:
    """Write ``fig`` as PNG or SVG, by the extension of ``path``."""
    path = Path(path)
    fmt = picture_format(path)
    fig.savefig(path, format=fmt, metadata={"Software": None} if fmt == "png" else {"Date": None})
    return path


def figure_png(fig: Any) -> bytes:
    """``fig`` as PNG bytes (for embedding)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def _short(value: Any) -> str:
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:.4g}"
    return str(value)


def _label(metric: str) -> str:
    return metric.replace("_", " ")


def _marker(epochs: int) -> str | None:
    """Dots on the curves while there are few epochs to see them apart."""
    return "o" if epochs <= 15 else None


def log_axis(axis: Any) -> None:
    """Put ``axis`` (``ax.xaxis`` or ``ax.yaxis``) on a log scale with plain tick labels
    (0.2, 0.5, 1 rather than 2x10^-1); in-between ticks are labelled only on a short range."""
    from matplotlib.ticker import Formatter

    class PlainLog(Formatter):
        def __init__(self, minor: bool):
            self.minor = minor

        def __call__(self, x: float, pos: int | None = None) -> str:
            low, high = sorted(self.axis.get_view_interval())
            if x <= 0 or low <= 0:
                return ""
            decades = math.log10(high / low)
            if self.minor:
                mantissa = round(x / 10 ** math.floor(math.log10(x) + 1e-9), 6)
                shown = (2, 3, 5) if decades <= 1.2 else (2, 5) if decades <= 2.5 else ()
                if decades > 0.5 and mantissa not in shown:
                    return ""
            return f"{x:g}"

    getattr(axis.axes, f"set_{axis.axis_name}scale")("log")
    axis.set_major_formatter(PlainLog(minor=False))
    axis.set_minor_formatter(PlainLog(minor=True))


def _wide(values: Any) -> bool:
    """Do the positive ``values`` span a factor of 10 or more (worth a log axis)?"""
    positive = [v for v in values if v is not None and v > 0]
    return bool(positive) and max(positive) >= 10 * min(positive)


def curves_figure(store: Store, study: Study, metric: str = "val_acc", top: int = 5) -> Any:
    """Overlaid learning curves of every trial in gray, the ``top`` best in color."""
    from matplotlib.ticker import MaxNLocator

    check_metric(metric)
    rows = ranked(store, study, metric)
    curves = store.curves(study)
    best = [r["number"] for r in rows if r[f"best_{metric}"] is not None][:top]
    longest = max((len(c) for c in curves.values()), default=0)
    fig, ax = new_figure(8, 5)
    for row in rows:
        curve = [(c["epoch"], c[metric]) for c in curves.get(row["number"], []) if c[metric] is not None]
        if not curve or row["number"] in best:
            continue
        ax.plot(*zip(*curve), color="0.72", linewidth=0.9, marker=_marker(longest), markersize=2, zorder=1)
    names = searched_names(study)
    for rank, number in enumerate(best):
        curve = [(c["epoch"], c[metric]) for c in curves[number] if c[metric] is not None]
        row = next(r for r in rows if r["number"] == number)
        label = f"#{number} ({_short(row[f'best_{metric}'])})"
        if names:
            label += ": " + ", ".join(f"{n}={_short(row['config'].get(n))}" for n in names)
        ax.plot(*zip(*curve), color=f"C{rank % 10}", linewidth=2, marker=_marker(longest), markersize=3,
                label=label, zorder=2)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(_label(metric))
    shown = f"top {len(best)} highlighted" if len(best) < len(rows) else "all shown"
    ax.set_title(f"{study.name}: {len(rows)} trials, {shown}" if rows else f"{study.name}: no trials yet")
    if metric == "lr" or (metric in LOWER_IS_BETTER and _wide(c[metric] for cs in curves.values() for c in cs)):
        log_axis(ax.yaxis)
    ax.grid(alpha=0.3)
    if best:
        ax.legend(fontsize=7, loc="best", title=f"best {_label(metric)}", title_fontsize=7)
    return fig


def plot_curves(store: Store, study: Study, path: str | Path, metric: str = "val_acc", top: int = 5) -> Path:
    """Overlaid learning curves of every trial, the ``top`` best highlighted; PNG or SVG."""
    check_metric(metric)
    picture_format(path)
    return save_figure(curves_figure(store, study, metric, top), path)


def _branches(rows: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The rolled-back stretches of a curve given in training order, each starting from the
    epoch it branched off (the latest epoch before its first, when there is one)."""
    branches: list[list[dict[str, Any]]] = []
    for index, row in enumerate(rows):
        if not row["rolled_back"]:
            continue
        previous = rows[index - 1] if index else None
        if branches and previous is not None and previous["rolled_back"] and previous["epoch"] == row["epoch"] - 1:
            branches[-1].append(row)
            continue
        anchor = next((r for r in reversed(rows[:index]) if r["epoch"] == row["epoch"] - 1), None)
        branches.append(([anchor] if anchor else []) + [row])
    return branches


def _diverged(row: dict[str, Any]) -> bool:
    """An epoch whose loss was not finite (stored as NULL)."""
    return row.get("train_loss") is None or row.get("val_loss") is None


def _change_text(data: dict[str, Any], kept: bool | None) -> str:
    text = f"{data.get('name')} {_short(data.get('old'))} -> {_short(data.get('new'))}"
    return text + (" (undone)" if kept is False else "")


def _headroom(ax: Any, values: list[float], band: float) -> None:
    """Y limits that fit ``values`` in the lower part of ``ax``, leaving the top ``band``
    (a fraction of the height) free for labels, with no ticks up there."""
    from matplotlib.ticker import Locator

    if not values or not band:
        return
    log = ax.get_yscale() == "log"
    low, high = min(values), max(values)
    if log:
        low, high = math.log10(low), math.log10(high)
    span = (high - low) or max(abs(high) * 0.1, 0.05)
    bottom, limit = low - 0.12 * span, high + 0.04 * span
    top = bottom + (limit - bottom) / (1 - band)
    ax.set_ylim((10**bottom, 10**top) if log else (bottom, top))

    class Below(Locator):
        """The ticks of ``base`` up to the top of the data."""

        def __init__(self, base: Locator, highest: float):
            self.base, self.highest = base, highest

        def set_axis(self, axis: Any) -> None:
            super().set_axis(axis)
            self.base.set_axis(axis)

        def __call__(self) -> list[float]:
            return [t for t in self.base() if t <= self.highest]

    highest = 10**limit if log else limit
    ax.yaxis.set_major_locator(Below(ax.yaxis.get_major_locator(), highest))
    ax.yaxis.set_minor_locator(Below(ax.yaxis.get_minor_locator(), highest))


def babysit_figure(store: Store, study: Study, metric: str = "val_acc") -> Any:
    """One model's curve: the live epochs solid, the rolled-back ones faded, a dotted line and
    label at every change, an arrow back for every rollback, diverged epochs crossed; the
    learning rate below it. Labels and arrows sit in a band above the curve."""
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator
    from matplotlib.transforms import blended_transform_factory, offset_copy

    check_metric(metric)
    trials = store.trials(study)
    rows = store.curve(trials[0], rolled_back=True) if trials else []
    events = store.events(study)
    kept = {e["data"].get("change"): e["data"].get("kept") for e in events if e["kind"] == "outcome"}
    changes = [e for e in events if e["kind"] == "change"]
    rollbacks = [e["data"] for e in events if e["kind"] == "rollback"]
    lower = metric != "lr"
    if lower:
        fig, (ax, ax_lr) = new_figure(9, 6, nrows=2, sharex=True,
                                      gridspec_kw={"height_ratios": [3, 1], "hspace": 0.08})
        panels = (ax, ax_lr)
    else:
        fig, ax = new_figure(9, 5)
        panels = (ax,)
    if metric == "lr" or (metric in LOWER_IS_BETTER and _wide(r[metric] for r in rows if not _diverged(r))):
        log_axis(ax.yaxis)
    color, faded = "C0", 0.35

    def draw(axes: Any, column: str) -> list[float]:
        """Draw one column's curve on ``axes``; returns the values drawn. The metrics of a
        diverged epoch mean nothing (its cross sits on the bottom edge); its lr does."""
        meaningful = column == "lr"
        steps = {"drawstyle": "steps-pre"} if column == "lr" else {}  # a rate holds during the epoch it ends

        def shown(row: dict[str, Any]) -> bool:
            return row[column] is not None and (meaningful or not _diverged(row))

        drawn: list[float] = []
        for branch in _branches(rows):
            points = [(r["epoch"], r[column]) for r in branch if shown(r)]
            if points:
                axes.plot(*zip(*points), color=color, alpha=faded, linestyle="--", linewidth=1.4, marker="o",
                          markersize=3, zorder=1, **steps)
                drawn += [v for _, v in points]
        live = sorted((r["epoch"], r[column]) for r in rows if not r["rolled_back"] and shown(r))
        if live:
            axes.plot(*zip(*live), color=color, linewidth=2, marker=_marker(len(live)), markersize=3, zorder=2,
                      **steps)
            drawn += [v for _, v in live]
        diverged = [r for r in rows if _diverged(r)]
        if diverged and meaningful:
            axes.plot([r["epoch"] for r in diverged if r[column] is not None],
                      [r[column] for r in diverged if r[column] is not None],
                      linestyle="none", marker="x", color="C3", markersize=7, zorder=3)
        elif diverged:
            bottom_edge = blended_transform_factory(axes.transData, axes.transAxes)
            axes.plot([r["epoch"] for r in diverged], [0.025] * len(diverged), linestyle="none", marker="x",
                      color="C3", markersize=7, transform=bottom_edge, zorder=3)
        return drawn

    band = 0.3 if changes or rollbacks else 0.0
    _headroom(ax, draw(ax, metric), band)
    if lower:
        log_axis(ax_lr.yaxis)
        draw(ax_lr, "lr")
        ax_lr.set_ylabel("lr")
        ax_lr.grid(alpha=0.3)
    handles = [Line2D([], [], color=color, linewidth=2, label="live curve")]
    if any(r["rolled_back"] for r in rows):
        handles.append(Line2D([], [], color=color, alpha=faded, linestyle="--", marker="o", markersize=3,
                              label="rolled back"))
    if any(_diverged(r) for r in rows):
        handles.append(Line2D([], [], color="C3", linestyle="none", marker="x", label="diverged (NaN loss)"))

    # In the band: the changes made at each boundary, then the rollbacks as arrows back in time.
    band_place = blended_transform_factory(ax.transData, ax.transAxes)
    right_of_line = offset_copy(band_place, fig=fig, x=3, units="points")
    at: dict[int, list[str]] = {}
    for event in changes:
        at.setdefault(int(event["data"].get("epoch", 0)), []).append(_change_text(event["data"], kept.get(event["id"])))
    for index, (epoch, texts) in enumerate(sorted(at.items())):
        for axes in panels:
            axes.axvline(epoch, color="C1", linestyle=":", linewidth=1.5, zorder=0)
        ax.text(epoch, 0.975 - 0.055 * (index % 3), "; ".join(texts), transform=right_of_line, ha="left", va="top",
                fontsize=7, color="0.1", zorder=4,
                bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.8})
    if changes:
        handles.append(Line2D([], [], color="C1", linestyle=":", linewidth=1.5, label="change"))
    for index, data in enumerate(rollbacks):
        y = 0.77 - 0.06 * (index % 2)
        start, end = data.get("from_epoch", 0), data.get("to_epoch", 0)
        ax.annotate("", xy=(end, y), xytext=(start, y), xycoords=band_place, textcoords=band_place,
                    arrowprops={"arrowstyle": "-|>", "color": "C3", "linewidth": 1.4, "shrinkA": 0, "shrinkB": 0},
                    zorder=4)
        ax.text((start + end) / 2, y + 0.008, f"rollback {start}->{end}", transform=band_place, ha="center",
                va="bottom", fontsize=7, color="C3", zorder=4)
    if rollbacks:
        handles.append(Line2D([], [], color="C3", marker="<", markersize=5, linewidth=1.4, label="rollback"))

    ax.set_ylabel(_label(metric))
    ax.grid(alpha=0.3)
    panels[-1].set_xlabel("epoch")
    panels[-1].xaxis.set_major_locator(MaxNLocator(integer=True))
    epochs = [r["epoch"] for r in rows] + [int(e["data"].get("epoch", 0)) for e in changes]
    ax.set_xlim(-0.3, max(epochs, default=1) + 0.7)
    status = trials[0].status if trials else "no model yet"
    ax.set_title(f"{study.name}: {status}, {len(changes)} change{'s' * (len(changes) != 1)}, "
                 f"{len(rollbacks)} rollback{'s' * (len(rollbacks) != 1)}")
    ax.legend(handles=handles, fontsize=7, loc="best", framealpha=0.9, bbox_to_anchor=(0, 0, 1, 1 - band))
    return fig


def plot_babysit(store: Store, study: Study, path: str | Path, metric: str = "val_acc") -> Path:
    """The babysat model's curve with its changes and rollbacks; PNG or SVG."""
    check_metric(metric)
    picture_format(path)
    return save_figure(babysit_figure(store, study, metric), path)


def is_one_model(store: Store, study: Study) -> bool:
    """A babysit study (or one that was trained in segments like one)."""
    return study.strategy == "babysit" or bool(store.events(study, kind="segment"))


def study_figure(store: Store, study: Study, metric: str = "val_acc") -> Any:
    """The study's picture: the one curve with its changes (babysit), overlaid curves otherwise."""
    if is_one_model(store, study):
        return babysit_figure(store, study, metric)
    return curves_figure(store, study, metric)


def plot_study(store: Store, study: Study, path: str | Path, metric: str = "val_acc") -> Path:
    """Save the study's picture (see :func:`study_figure`) as PNG or SVG."""
    check_metric(metric)
    picture_format(path)
    return save_figure(study_figure(store, study, metric), path)


def _log1m_tick(x: float, _: Any = None) -> str:
    """A tick on the 1 - beta axis labelled with beta itself: 0.01 -> 0.99."""
    if not 0 < x < 1:
        return ""
    digits = max(1, math.ceil(-math.log10(x) - 1e-9))
    return f"{1 - x:.{digits}f}"


def scores_figure(store: Store, study: Study, metric: str = "val_acc") -> Any | None:
    """Best ``metric`` of every trial against each searched hyperparameter, on the parameter's
    own scale (log for ``log``; 1 - value on a log axis, labelled with the value, for
    ``log1m``); rounds of coarse-to-fine in their own colors. None when nothing was searched."""
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
    from matplotlib.transforms import blended_transform_factory

    from research.space import Choice, Float, parse_param

    check_metric(metric)
    space = {name: parse_param(name, text) for name, text in study.settings.get("space", {}).items()}
    if not space:
        return None
    rows = ranked(store, study, metric)
    rounds = sorted({r["round"] for r in rows if r["round"] is not None})
    color_of = {r: f"C{i % 10}" for i, r in enumerate(rounds)}
    columns = min(3, len(space))
    lines = math.ceil(len(space) / columns)
    legend_room = 0.45
    fig, axes = new_figure(0.8 + 3.4 * columns, 0.6 + 3.0 * lines + legend_room, bottom=0.6 + legend_room, top=0.5,
                           nrows=lines, ncols=columns, sharey=True, squeeze=False,
                           gridspec_kw={"wspace": 0.08, "hspace": 0.3})
    score = f"best_{metric}"
    best = rows[0]["number"] if rows and rows[0][score] is not None else None
    for ax, (name, param) in zip(axes.flat, space.items()):
        scale = getattr(param, "scale", "linear")
        if isinstance(param, Choice):
            position = {repr(v): i for i, v in enumerate(param.values)}
        scored, unscored = [], []
        for row in rows:
            value = row["config"].get(name)
            if value is None:
                continue
            if isinstance(param, Choice):
                if repr(value) not in position:
                    continue
                # spread the dots of one choice a little, the same way every time
                x = position[repr(value)] + 0.25 * (((row["number"] * 0.6180339887) % 1.0) - 0.5)
            elif scale == "log1m":
                x = 1.0 - float(value)
            else:
                x = float(value)
            (scored if row[score] is not None else unscored).append((x, row))
        if scored:
            ax.scatter([x for x, _ in scored], [row[score] for _, row in scored], zorder=3,
                       s=[46 if row["number"] == best else 22 for _, row in scored],
                       c=[color_of.get(row["round"], "C0") for _, row in scored],
                       edgecolors=["black" if row["number"] == best else "none" for _, row in scored],
                       linewidths=1.2)
        if unscored:
            bottom = blended_transform_factory(ax.transData, ax.transAxes)
            ax.scatter([x for x, _ in unscored], [0.03] * len(unscored), marker="x", color="0.5", s=22,
                       transform=bottom, zorder=3)
        if isinstance(param, Choice):
            ax.set_xticks(range(len(param.values)), [str(v) for v in param.values])
            ax.set_xlim(-0.5, len(param.values) - 0.5)
            ax.set_xlabel(name)
        elif scale == "log":
            log_axis(ax.xaxis)
            ax.set_xlim(param.low / 1.3, param.high * 1.3)
            ax.set_xlabel(f"{name} (log scale)")
        elif scale == "log1m":
            ax.set_xscale("log")
            ax.set_xlim((1 - param.low) * 1.3, (1 - param.high) / 1.3)  # reversed: beta grows to the right
            ax.xaxis.set_major_locator(LogLocator(base=10))
            ax.xaxis.set_major_formatter(FuncFormatter(_log1m_tick))
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_xlabel(f"{name} (log scale of 1 - {name})")
        else:
            margin = 0.04 * (param.high - param.low)
            ax.set_xlim(param.low - margin, param.high + margin)
            ax.set_xlabel(name + (" (linear)" if isinstance(param, Float) else ""))
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(space):]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel(f"best {_label(metric)}")
    handles = [Line2D([], [], linestyle="none", marker="o", color=color_of[r], label=f"round {r}") for r in rounds]
    if best is not None:
        handles.append(Line2D([], [], linestyle="none", marker="o", color="white", markeredgecolor="black",
                              label=f"best (#{best})"))
    if any(r[score] is None for r in rows):
        handles.append(Line2D([], [], linestyle="none", marker="x", color="0.5", label="no score"))
    if handles:
        fig.legend(handles=handles, loc="lower center", ncols=min(len(handles), 6), fontsize=8, frameon=False)
    fig.suptitle(f"{study.name}: best {_label(metric)} by hyperparameter", fontsize=10)
    return fig


def plot_scores(store: Store, study: Study, path: str | Path, metric: str = "val_acc") -> Path:
    """Save :func:`scores_figure` as PNG or SVG (a ValueError when nothing was searched)."""
    check_metric(metric)
    picture_format(path)
    fig = scores_figure(store, study, metric)
    if fig is None:
        raise ValueError(f"study '{study.name}' searched no hyperparameters: nothing to plot against")
    return save_figure(fig, path)


def summarize(rows: list[dict], max_epochs: int) -> dict:
    """Trial counts by status, epochs trained, and the epochs pruning saved."""
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    saved = sum(max(max_epochs - row["epochs"], 0) for row in rows if row["status"] == "pruned")
    return {"trials": len(rows), "statuses": counts, "epochs_trained": sum(row["epochs"] for row in rows),
            "pruned": counts.get("pruned", 0), "epochs_saved_by_pruning": saved}

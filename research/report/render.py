"""Figures drawn with matplotlib: the only drawing code of research.

A ``research.report.figure.Figure`` is drawn with matplotlib's object API on an Agg canvas
(no display, no pyplot state, nothing changed for a notebook that imports this module), with
margins fixed in inches: a layout engine would cost more than the drawing.

How the data looks:
  - a series' emphasis: highlighted 2 points wide and on top; normal 1.4; faded behind, pale
    in its color or thin light gray without one; ``auto`` markers are dots while the panel's
    longest series has at most 15 points; a ``ring`` is a hollow circle, 2 points thick, on
    top of the dots it marks out;
  - log axes have plain tick labels (0.2, 0.5, 1 rather than 2x10^-1); a log1m axis puts
    1 - value on a log axis growing to the right, its ticks labelled with the value;
  - a panel with labelled marks keeps the top 30% of its height for them, with no ticks up
    there, so labels and arrows never sit on the curve;
  - a key below the panels takes as many columns as fit the width, and the picture grows by
    the lines it needs beyond the first.
"""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib.figure as mplfigure
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.lines import Line2D
from matplotlib.ticker import Formatter, FuncFormatter, Locator, LogLocator, MaxNLocator, NullFormatter
from matplotlib.transforms import blended_transform_factory, offset_copy

from research.report.figure import Arrow, Axis, Figure, Legend, Mark, Panel, Series, VLine
from research.report.files import PICTURE_FORMATS, picture_format, write_file
from research.report.owner import PNG_KEY

DPI = 100
LEFT, RIGHT, BOTTOM, TOP, TOP_SUPTITLE = 0.8, 0.25, 0.6, 0.45, 0.5  # margins, inches
LEGEND_ROOM = 0.45  # inches under the panels for a legend placed below them
BAND = 0.3  # the share of a panel's height kept for mark labels
FEW = 15  # auto markers: dots up to this many points
FADED_ALPHA = 0.35
LINE_GRAY, MARK_GRAY = "0.72", "0.5"
MARKERS = {"dot": "o", "cross": "x", "none": None}


def _color(index: int | None, gray: str) -> str:
    return gray if index is None else f"C{index % 10}"


class PlainLog(Formatter):
    """Log tick labels as plain numbers; in-between ticks labelled only on a short range."""

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


def _log1m_tick(x: float, _: Any = None) -> str:
    """A tick on the 1 - value axis labelled with the value itself: 0.01 -> 0.99."""
    if not 0 < x < 1:
        return ""
    digits = max(1, math.ceil(-math.log10(x) - 1e-9))
    return f"{1 - x:.{digits}f}"


class Below(Locator):
    """The ticks of ``base`` up to ``highest`` (none in the band above the data)."""

    def __init__(self, base: Locator, highest: float):
        self.base, self.highest = base, highest

    def set_axis(self, axis: Any) -> None:
        super().set_axis(axis)
        self.base.set_axis(axis)

    def __call__(self) -> list[float]:
        return [t for t in self.base() if t <= self.highest]


def _scale(axis: Any, spec: Axis) -> Callable[[float], float]:
    """Put a matplotlib ``axis`` (``ax.xaxis`` or ``ax.yaxis``) on ``spec``'s scale and
    limits; returns the map from data values to drawn coordinates."""
    ax, name = axis.axes, axis.axis_name
    set_limits = getattr(ax, f"set_{name}lim")
    to_drawn: Callable[[float], float] = (lambda v: 1.0 - v) if spec.scale == "log1m" else (lambda v: v)
    if spec.scale in ("log", "log1m"):
        getattr(ax, f"set_{name}scale")("log")
    if spec.scale == "log":
        axis.set_major_formatter(PlainLog(minor=False))
        axis.set_minor_formatter(PlainLog(minor=True))
    elif spec.scale == "log1m":
        axis.set_major_locator(LogLocator(base=10))
        axis.set_major_formatter(FuncFormatter(_log1m_tick))
        axis.set_minor_formatter(NullFormatter())
    elif spec.scale == "choice":
        axis.set_ticks(range(len(spec.categories)), labels=list(spec.categories))
        set_limits(-0.5, len(spec.categories) - 0.5)
    if spec.limits and spec.scale != "choice":
        set_limits(*(to_drawn(v) for v in spec.limits))  # log1m: reversed, so the value grows to the right
    if spec.integer:
        axis.set_major_locator(MaxNLocator(integer=True))
    return to_drawn


def _look(series: Series, longest: int) -> dict[str, Any]:
    """The matplotlib line properties of a series (also its legend sample)."""
    highlighted, faded = series.emphasis == "highlighted", series.emphasis == "faded"
    points = series.style == "points"
    marker = "o" if longest <= FEW else None
    marker = MARKERS.get(series.marker, marker)
    look: dict[str, Any] = {"color": _color(series.color, MARK_GRAY if points else LINE_GRAY),
                            "linestyle": "none" if points else "--" if series.style == "dashed" else "-",
                            "marker": marker}
    if series.steps:
        look["drawstyle"] = "steps-pre"  # a value holds until the point that ends its step
    if points and series.marker == "ring":
        look.update(marker="o", markersize=11, markerfacecolor="none", markeredgecolor=look["color"],
                    markeredgewidth=2, zorder=5)
    elif points:
        look.update(markersize=7 if marker == "x" else 6.8 if highlighted else 4.7, zorder=4 if highlighted else 3)
        if highlighted:
            look.update(markeredgecolor="black", markeredgewidth=1.2)
        elif marker == "o":
            look.update(markeredgewidth=0)
    elif faded and series.color is None:
        look.update(linewidth=0.9, markersize=2, zorder=1)
    else:
        look.update(linewidth=2 if highlighted else 1.4, markersize=3, zorder=1 if faded else 2)
    if faded and series.color is not None:
        look["alpha"] = FADED_ALPHA
    return look


def _sample(item: Series | Mark, longest: int) -> Line2D:
    """The legend's picture of a series or a mark."""
    if isinstance(item, Series):
        look = _look(item, longest)
        if item.style == "points":
            look["markersize"] = 9 if item.marker == "ring" else 6
            if item.emphasis == "highlighted" and item.marker != "ring":
                look["markerfacecolor"] = "white"  # the one marked out
        return Line2D([], [], **look)
    color = _color(item.color, MARK_GRAY)
    if isinstance(item, VLine):
        return Line2D([], [], color=color, linestyle=":", linewidth=1.5)
    if isinstance(item, Arrow):
        return Line2D([], [], color=color, marker="<", markersize=5, linewidth=1.4)
    return Line2D([], [], color=color, linestyle="none", marker="x")


def _headroom(ax: Any, values: list[float], band: float, limits: tuple[float, float] | None) -> None:
    """Y limits that fit ``values`` (or exactly the axis' ``limits``, when it has them) in the
    lower part of ``ax``, leaving the top ``band`` (a fraction of the height) free for labels,
    with no ticks up there."""
    log = ax.get_yscale() == "log"
    values = [v for v in limits or values if v > 0 or not log]
    if not values:
        return
    if log:
        values = [math.log10(v) for v in values]
    low, high = min(values), max(values)
    span = (high - low) or max(abs(high) * 0.1, 0.05)
    bottom, limit = (low, high) if limits else (low - 0.12 * span, high + 0.04 * span)
    top = bottom + (limit - bottom) / (1 - band)
    ax.set_ylim((10**bottom, 10**top) if log else (bottom, top))
    highest = 10**limit if log else limit
    ax.yaxis.set_major_locator(Below(ax.yaxis.get_major_locator(), highest))
    ax.yaxis.set_minor_locator(Below(ax.yaxis.get_minor_locator(), highest))


def _marks(ax: Any, marks: tuple[Mark, ...], to_x: Callable[[float], float]) -> None:
    """Vertical lines with their labels staggered in the band, arrows below them, crosses on
    the bottom edge."""
    band_place = blended_transform_factory(ax.transData, ax.transAxes)  # x in data, y in axes fractions
    right_of_line = offset_copy(band_place, fig=ax.figure, x=3, units="points")
    labels = arrows = 0
    pointed = [m for m in marks if isinstance(m, Arrow)]
    rows = _arrow_rows(ax, [(to_x(a.start), to_x(a.end), a.text) for a in pointed])
    step = min(0.06, 0.08 / max(max(rows, default=0), 1))  # the rows between 0.71 and 0.79, under the lines' labels
    for mark in marks:
        color = _color(mark.color, MARK_GRAY)
        if isinstance(mark, VLine):
            ax.axvline(to_x(mark.x), color=color, linestyle=":", linewidth=1.5, zorder=0)
            if mark.text:
                ax.text(to_x(mark.x), 0.975 - 0.055 * (labels % 3), mark.text, transform=right_of_line, ha="left",
                        va="top", fontsize=7, color="0.1", zorder=4,
                        bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none", "alpha": 0.8})
                labels += 1
        elif isinstance(mark, Arrow):
            y = 0.71 + step * (max(rows) - rows[arrows])
            start, end = to_x(mark.start), to_x(mark.end)
            ax.annotate("", xy=(end, y), xytext=(start, y), xycoords=band_place, textcoords=band_place, zorder=4,
                        arrowprops={"arrowstyle": "-|>", "color": color, "linewidth": 1.4, "shrinkA": 0, "shrinkB": 0})
            if mark.text:
                ax.text((start + end) / 2, y + 0.008, mark.text, transform=band_place, ha="center", va="bottom",
                        fontsize=7, color=color, zorder=4)
            arrows += 1
        else:
            ax.plot([to_x(mark.x)], [0.025], linestyle="none", marker="x", color=color, markersize=6,
                    transform=band_place, zorder=3)


def _arrow_rows(ax: Any, arrows: list[tuple[float, float, str]], most: int = 3) -> list[int]:
    """The row of each arrow (x from, x to, label), top row 0: the first row where neither
    the arrow nor its label (7-point text centred above it) meets one placed before, so that
    two rollbacks to one epoch do not print their labels into each other; at most ``most``
    rows (a run with more at one place shares them)."""
    low, high = ax.get_xlim()
    width = ax.figure.get_figwidth() * ax.get_position().width * 72  # the axes' width in points
    per_point = abs(high - low) / width
    taken: list[list[tuple[float, float]]] = []
    rows = []
    for start, end, text in arrows:
        middle, half = (start + end) / 2, (len(text) * 7 * 0.55 / 2 + 3) * per_point
        span = (min(start, end, middle - half), max(start, end, middle + half))
        row = next((r for r, spans in enumerate(taken) if all(span[1] < a or span[0] > b for a, b in spans)),
                   min(len(taken), most - 1))
        if row == len(taken):
            taken.append([])
        taken[row].append(span)
        rows.append(row)
    return rows


def _panel(ax: Any, panel: Panel, *, label_x: bool, label_y: bool) -> tuple[float, int]:
    """Draw one panel; returns the band kept for labels and its longest series' length."""
    to_x, to_y = _scale(ax.xaxis, panel.x), _scale(ax.yaxis, panel.y)
    longest = max((len(s.x) for s in panel.series), default=0)
    for series in panel.series:
        if series.x:
            ax.plot([to_x(v) for v in series.x], [to_y(v) for v in series.y], **_look(series, longest))
    _marks(ax, panel.marks, to_x)
    band = BAND if any(isinstance(m, Arrow) or (isinstance(m, VLine) and m.text) for m in panel.marks) else 0.0
    if band:
        limits = (to_y(panel.y.limits[0]), to_y(panel.y.limits[1])) if panel.y.limits else None
        _headroom(ax, [to_y(v) for s in panel.series for v in s.y], band, limits)
    if label_x:
        ax.set_xlabel(panel.x.label)
    if label_y:
        ax.set_ylabel(panel.y.label)
    ax.grid(alpha=0.3)
    return band, longest


def draw(figure: Figure) -> mplfigure.Figure:
    """``figure`` as a matplotlib Figure on an Agg canvas (for saving, or for tests to read)."""
    rows, columns, count = figure.rows, figure.columns, len(figure.panels)
    legend = figure.legend
    room = LEGEND_ROOM if legend is not None and legend.place == "below" else 0.0
    width, height = figure.size or (8.0 if columns == 1 else LEFT + 3.4 * columns, 2.0 + 3.0 * rows + room)
    top = TOP_SUPTITLE if columns > 1 else TOP
    fig = mplfigure.Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    fig.subplots_adjust(left=LEFT / width, right=1 - RIGHT / width, bottom=(BOTTOM + room) / height,
                        top=1 - top / height)
    heights = [max(p.height for p in figure.panels[r * columns:(r + 1) * columns]) for r in range(rows)]
    grid = fig.subplots(rows, columns, squeeze=False, sharex=figure.share_x, sharey=figure.share_y,
                        gridspec_kw={"height_ratios": heights, "hspace": 0.08 if figure.share_x else 0.3,
                                     "wspace": 0.08 if figure.share_y else 0.25})
    axes = list(grid.flat)
    for ax in axes[count:]:
        ax.set_visible(False)
    drawn = [_panel(ax, panel, label_x=not figure.share_x or index + columns >= count,
                    label_y=not figure.share_y or index % columns == 0)
             for index, (ax, panel) in enumerate(zip(axes, figure.panels))]
    if columns > 1:
        fig.suptitle(figure.title, fontsize=10)
    else:
        axes[0].set_title(figure.title)
    if legend is not None:
        _legend(fig, axes[0], legend, figure.panels, drawn)
    return fig


def _legend(fig: mplfigure.Figure, first: Any, legend: Legend, panels: tuple[Panel, ...],
            drawn: list[tuple[float, int]]) -> None:
    """One entry per distinct label: the series of every panel first, then the marks; inside
    the first panel (below its band), or under the panels."""
    entries: dict[str, Line2D] = {}
    items = [(s, longest) for panel, (_, longest) in zip(panels, drawn) for s in panel.series]
    items += [(m, 0) for panel in panels for m in panel.marks]
    for item, longest in items:
        label = item.label if isinstance(item, Series) else item.legend
        if label and label not in entries:
            entries[label] = _sample(item, longest)
            entries[label].set_label(label)
    if not entries:
        return
    handles, title = list(entries.values()), legend.title or None
    if legend.place == "below":
        _legend_below(fig, handles, title)
    else:
        first.legend(handles=handles, fontsize=7, loc="best", framealpha=0.9, title=title, title_fontsize=7,
                     bbox_to_anchor=(0, 0, 1, 1 - drawn[0][0]))


def _legend_below(fig: mplfigure.Figure, handles: list[Line2D], title: str | None) -> None:
    """The key under the panels in as many columns (up to 6) as fit the width; when it needs
    more than the one line kept for it, the figure grows by the difference."""
    width, height = fig.get_size_inches()
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    for columns in range(min(len(handles), 6), 0, -1):
        key = fig.legend(handles=handles, loc="lower center", ncols=columns, fontsize=8, frameon=False,
                         title=title, title_fontsize=8, bbox_to_anchor=(0.5, 0))
        if key.get_window_extent(renderer).width <= fig.dpi * width or columns == 1:
            break
        key.remove()
    extra = key.get_window_extent(renderer).height / fig.dpi - LEGEND_ROOM
    if extra > 0:
        params = fig.subplotpars
        bottom, top = params.bottom * height + extra, (1 - params.top) * height
        fig.set_size_inches(width, height + extra)
        fig.subplots_adjust(bottom=bottom / (height + extra), top=1 - top / (height + extra))


def to_bytes(figure: Figure, fmt: str = "png", study_mark: str | None = None) -> bytes:
    """``figure`` drawn as PNG or SVG bytes (no timestamps: the same figure gives the same bytes),
    carrying ``study_mark`` when given (``research.report.owner``: whose picture it is)."""
    if fmt not in PICTURE_FORMATS:
        raise ValueError(f"unknown picture format '{fmt}'; choose one of: {', '.join(PICTURE_FORMATS)}")
    buffer = io.BytesIO()
    with warnings.catch_warnings():  # a name in a script the font lacks (a CJK study name) is drawn as boxes, quietly
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from font", category=UserWarning)
        metadata: dict[str, str | None] = {"Software": None} if fmt == "png" else {"Date": None}
        if study_mark is not None:
            metadata[PNG_KEY if fmt == "png" else "Identifier"] = study_mark
        draw(figure).savefig(buffer, format=fmt, metadata=metadata)
    return buffer.getvalue()


def save(figure: Figure, path: str | Path, study_mark: str | None = None) -> Path:
    """Write ``figure`` as PNG or SVG, by the extension of ``path``, marked as ``study_mark``'s."""
    return write_file(path, to_bytes(figure, picture_format(path), study_mark))

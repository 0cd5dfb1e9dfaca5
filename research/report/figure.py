"""A figure as data: what a picture of a study shows, with no drawing code in it.

`research plot` draws a ``Figure`` with matplotlib (research.report.render), the HTML report
embeds that drawing, and a web page can draw the same data with a chart library:
``Figure.as_dict()`` is plain JSON and ``Figure.from_dict`` reads it back. A plugin's
``study_figure`` hook returns one.

Coordinates are in data units (epochs, a hyperparameter's own values, a metric's values);
the axis scale says how to place them. Colors are indexes into a palette of ten
(matplotlib's C0..C9, wrapping around); None is a neutral gray. Every value is checked when
the object is built, so a mistake names the field instead of failing in a renderer.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from functools import cache
from typing import Any

SCALES = ("linear", "log", "log1m", "choice")
EMPHASES = ("highlighted", "normal", "faded")
STYLES = ("solid", "dashed", "points")
MARKERS = ("auto", "dot", "cross", "ring", "none")
PLACES = ("inside", "below")


def _one_of(owner: str, name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{owner} {name} must be one of: {', '.join(choices)}; got {value!r}")


def _numbers(owner: str, name: str, values: Any) -> tuple[float, ...]:
    """``values`` as a tuple of finite numbers (a ValueError naming the field otherwise)."""
    numbers = tuple(values)
    # The common case at the speed of C: plain ints and floats whose sum is finite (an inf or a
    # NaN makes any sum inf or NaN). Anything else is looked at value by value.
    if {*map(type, numbers)} <= NUMBERS and math.isfinite(sum(numbers)):
        return numbers
    for value in numbers:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"{owner} {name} must hold finite numbers (leave missing points out); got {value!r}")
    return numbers


def _color(owner: str, value: Any) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise ValueError(f"{owner} color must be a palette index (0, 1, ...) or None; got {value!r}")


SCALARS = frozenset({int, float, str, bool, type(None)})
NUMBERS = frozenset({int, float})


@cache
def _field_names(kind: type) -> tuple[str, ...]:
    """The fields of dataclass ``kind`` (``dataclasses.fields`` looks them up again on every call)."""
    return tuple(f.name for f in fields(kind))


def _plain(value: Any) -> Any:
    """``value`` as plain data: what ``dataclasses.asdict`` gives (tuples stay tuples), without
    its deep copy of every number, which made a study of 100,000 points take a second. Scalars
    are passed on without a call of their own: a study's figures hold thousands of series."""
    if type(value) in SCALARS:
        return value
    if is_dataclass(value):
        value = {name: getattr(value, name) for name in _field_names(type(value))}
    if isinstance(value, dict):
        return {key: item if type(item) in SCALARS else _plain(item) for key, item in value.items()}
    if isinstance(value, (tuple, list)):
        if {*map(type, value)} <= SCALARS:
            return type(value)(value)
        return type(value)(_plain(item) for item in value)
    return value


def _set(obj: Any, **values: Any) -> None:
    """Normalize fields of a frozen dataclass (lists to tuples) in ``__post_init__``."""
    for name, value in values.items():
        object.__setattr__(obj, name, value)


@dataclass(frozen=True)
class Axis:
    """One axis of a panel. Its ``limits`` are the range every renderer shows: the core's
    curves focus a metric's axis on the top trials this way (research.report.figures.focus)."""

    label: str = ""  # the text along the axis
    scale: str = "linear"  # linear | log | log1m (1 - value on a log axis, ticks show the value) | choice
    categories: tuple[str, ...] = ()  # choice: the names of positions 0, 1, 2, ...
    limits: tuple[float, float] | None = None  # the range shown, low to high, in data units; None: fit the data
    integer: bool = False  # ticks on whole numbers only (epochs)

    def __post_init__(self) -> None:
        _one_of("axis", "scale", self.scale, SCALES)
        _set(self, categories=tuple(str(c) for c in self.categories))
        if self.limits is not None:
            limits = _numbers("axis", "limits", self.limits)
            if len(limits) != 2 or limits[0] > limits[1]:
                raise ValueError(f"axis limits must be (low, high) with low <= high; got {self.limits!r}")
            if (self.scale == "log" and limits[0] <= 0) or (self.scale == "log1m" and limits[1] >= 1):
                raise ValueError(f"axis limits {limits!r} do not fit the {self.scale} scale (log: above 0, "
                                 f"log1m: below 1)")
            _set(self, limits=limits)


@dataclass(frozen=True)
class Series:
    """Points, joined by a line unless ``style`` is points; one legend entry per distinct label."""

    x: tuple[float, ...]  # x of each point (a choice axis: the category's position)
    y: tuple[float, ...]  # y of each point, as many as x
    label: str = ""  # legend text, shared by the series with the same label; "" for none
    emphasis: str = "normal"  # highlighted (thick, on top) | normal | faded (thin or pale, behind)
    style: str = "solid"  # solid | dashed | points (no line)
    steps: bool = False  # hold each y until the next x (a value that holds through an epoch)
    # auto (dots while the panel's longest series has at most 15 points) | dot | cross | none | ring (a hollow
    # circle in the series' color around a point another series draws: marks that point out)
    marker: str = "auto"
    color: int | None = 0  # palette index; None: neutral gray
    info: dict[str, Any] = field(default_factory=dict)  # what hovering shows: trial number, configuration, ...

    def __post_init__(self) -> None:
        x, y = _numbers("series", "x", self.x), _numbers("series", "y", self.y)
        if len(x) != len(y):
            raise ValueError(f"series '{self.label}' has {len(x)} x values and {len(y)} y values; give one y per x")
        _set(self, x=x, y=y, info=dict(self.info))
        _one_of("series", "emphasis", self.emphasis, EMPHASES)
        _one_of("series", "style", self.style, STYLES)
        _one_of("series", "marker", self.marker, MARKERS)
        _color("series", self.color)


@dataclass(frozen=True)
class VLine:
    """A dotted vertical line across the panel at ``x``, its text beside it near the top."""

    x: float  # where the line stands
    text: str = ""  # the label beside the line ("" for none)
    legend: str = ""  # legend text for this kind of mark ("" for none)
    color: int | None = 1  # palette index; None: neutral gray
    kind: str = field(default="vline", init=False)  # the mark's type, for readers of as_dict()

    def __post_init__(self) -> None:
        _set(self, x=_numbers("vline", "x", [self.x])[0])
        _color("vline", self.color)


@dataclass(frozen=True)
class Arrow:
    """An arrow near the top of the panel from x ``start`` to x ``end``, its text above it."""

    start: float  # where the arrow starts
    end: float  # where it points
    text: str = ""  # the label above the arrow
    legend: str = ""  # legend text for this kind of mark ("" for none)
    color: int | None = 3  # palette index; None: neutral gray
    kind: str = field(default="arrow", init=False)  # the mark's type, for readers of as_dict()

    def __post_init__(self) -> None:
        start, end = _numbers("arrow", "start/end", [self.start, self.end])
        _set(self, start=start, end=end)
        _color("arrow", self.color)


@dataclass(frozen=True)
class EdgeCross:
    """A cross on the panel's bottom edge at ``x``: a point that has no y (a diverged epoch,
    a trial without a score)."""

    x: float  # where the cross stands
    legend: str = ""  # legend text for this kind of mark ("" for none)
    color: int | None = 3  # palette index; None: neutral gray
    info: dict[str, Any] = field(default_factory=dict)  # what hovering shows
    kind: str = field(default="cross", init=False)  # the mark's type, for readers of as_dict()

    def __post_init__(self) -> None:
        _set(self, x=_numbers("cross", "x", [self.x])[0], info=dict(self.info))
        _color("cross", self.color)


Mark = VLine | Arrow | EdgeCross
MARKS: dict[str, type[VLine] | type[Arrow] | type[EdgeCross]] = {"vline": VLine, "arrow": Arrow, "cross": EdgeCross}


@dataclass(frozen=True)
class Panel:
    """One plotting area: two axes, the series drawn in it and its marks."""

    x: Axis  # the horizontal axis
    y: Axis  # the vertical axis
    series: tuple[Series, ...] = ()  # drawn faded first, highlighted last; legend entries in this order
    marks: tuple[Mark, ...] = ()  # vertical lines, arrows and edge crosses; legend entries after the series'
    height: float = 1.0  # its share of the row heights, relative to the other rows' (3 and 1: three to one)

    def __post_init__(self) -> None:
        _set(self, series=tuple(self.series), marks=tuple(self.marks))
        if not self.height > 0:
            raise ValueError(f"panel height must be positive; got {self.height!r}")


@dataclass(frozen=True)
class Table:
    """A small table shown beside the figure in HTML (not drawn in the picture)."""

    title: str  # the heading above it
    headers: tuple[str, ...]  # column names
    rows: tuple[tuple[Any, ...], ...]  # one tuple of values (text, number, bool or None) per row

    def __post_init__(self) -> None:
        _set(self, headers=tuple(str(h) for h in self.headers), rows=tuple(tuple(row) for row in self.rows))


@dataclass(frozen=True)
class Legend:
    """The key to the series and marks that have a label."""

    title: str = ""  # the heading of the key ("" for none)
    place: str = "inside"  # inside the first panel, where it hides least | below the panels

    def __post_init__(self) -> None:
        _one_of("legend", "place", self.place, PLACES)


@dataclass(frozen=True)
class Figure:
    """A whole picture: its panels in rows of ``columns``, a title, a legend, and what a page
    shows around it (a heading, a caption, tables). A legend below the panels that needs
    more than one line makes the picture that much taller than ``size``."""

    title: str  # drawn above the panels
    panels: tuple[Panel, ...]  # in reading order: left to right, then top to bottom
    columns: int = 1  # panels per row; 1 stacks them
    share_x: bool = False  # every panel shows the same x range (only the bottom row labels it)
    share_y: bool = False  # every panel shows the same y range (only the first column labels it)
    legend: Legend | None = field(default_factory=Legend)  # None: no key
    name: str = ""  # what the figure shows in a few words: a page's heading for it
    caption: str = ""  # how to read it, shown under the heading in HTML
    tables: tuple[Table, ...] = ()  # shown beside the figure in HTML
    size: tuple[float, float] | None = None  # width and height in inches (100 pixels each); None: from the rows

    def __post_init__(self) -> None:
        _set(self, panels=tuple(self.panels), tables=tuple(self.tables))
        if not self.panels:
            raise ValueError("a figure needs at least one panel")
        if isinstance(self.columns, bool) or not isinstance(self.columns, int) or self.columns < 1:
            raise ValueError(f"figure columns must be a whole number >= 1; got {self.columns!r}")
        if self.size is not None:
            size = _numbers("figure", "size", self.size)
            if len(size) != 2 or min(size) <= 0:
                raise ValueError(f"figure size must be (width, height) in inches; got {self.size!r}")
            _set(self, size=size)

    @property
    def empty(self) -> bool:
        """Nothing to draw: no panel has a point or a mark (a study with no epoch yet); such a
        figure is not drawn but said."""
        return not any(series.x for panel in self.panels for series in panel.series) \
            and not any(panel.marks for panel in self.panels)

    @property
    def rows(self) -> int:
        """How many rows the panels fill."""
        return math.ceil(len(self.panels) / self.columns)

    def as_dict(self) -> dict[str, Any]:
        """The figure as plain data (dicts, lists, strings, numbers) for ``json.dumps``; marks
        carry their ``kind``."""
        return _plain(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Figure:
        """The figure that ``as_dict()`` (or its JSON, read back) describes."""

        def mark(d: Mapping[str, Any]) -> Mark:
            fields = {k: v for k, v in d.items() if k != "kind"}
            return MARKS[d["kind"]](**fields)

        def panel(d: Mapping[str, Any]) -> Panel:
            return Panel(x=Axis(**d["x"]), y=Axis(**d["y"]), series=[Series(**s) for s in d["series"]],
                         marks=[mark(m) for m in d["marks"]], height=d["height"])

        legend = data.get("legend")
        return cls(**{**data, "panels": [panel(p) for p in data["panels"]],
                      "legend": Legend(**legend) if legend is not None else None,
                      "tables": [Table(**t) for t in data.get("tables", ())]})

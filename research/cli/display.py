"""Terminal views: the live table of running trials, ranked tables, sample histograms."""

from __future__ import annotations

import math
import time
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from research.errors import UsageError
from research.space import Choice, Int, Param
from research.study.confirm import spread_text
from research.study.objective import Objective
from research.study.store import DONE_STATUSES


def fmt(value: Any) -> str:
    """A table cell: numbers to 4 significant digits, missing values as a dash."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    return str(value)


class LiveTrials:
    """A reporter that keeps a live table of the running trials on the console: the whole
    study's progress (trials ended in earlier runs included) with an estimate of the time
    left. Redirected to a file it draws nothing live and writes its last line once; pruned
    trials are counted, not listed one by one (``research show`` says why each was)."""

    def __init__(self, console: Console, budget: int, epochs: int, names: list[str], objective: Objective,
                 ended_before: dict[str, int] | None = None, show: str = "research show"):
        self.console = console
        self.budget, self.epochs, self.names, self.objective = budget, epochs, names, objective
        self.show = show  # the command that shows the study, as the user types it
        self.running: dict[int, dict[str, Any]] = {}
        self.before = dict(ended_before or {})
        self.ended: dict[str, int] = {}  # in this run
        self.errors: dict[str, tuple[int, str]] = {}  # said_once: errors shown, by their first line
        self.started = time.monotonic()
        self.live: Live | None = None

    def __enter__(self) -> LiveTrials:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.update(self._render(final=True))
            self.live.__exit__(*exc)
        elif self.ended:  # redirected: the final line, once
            self.console.print(self._header(final=True), highlight=False, markup=False)
        pruned = self.ended.get("pruned", 0)
        if pruned:
            self.console.print(f"{pruned} trial{'s' if pruned > 1 else ''} pruned; `{self.show}` "
                               "says why", highlight=False, markup=False)

    def _refresh(self) -> None:
        """Redraw; the live view starts with the first trial, so a study that fails to start
        prints only its error. Without a terminal there is nothing to redraw."""
        if not self.console.is_terminal:
            return
        if self.live is None:
            self.live = Live(self._render(), console=self.console, refresh_per_second=4, transient=False)
            self.live.__enter__()
        self.live.update(self._render())

    def _header(self, final: bool = False) -> str:
        """The progress line: trials done (an interrupted one is not: it goes on when resumed)
        and, while the study runs, the time left at this run's pace."""
        counts = dict(self.before)
        for status, count in self.ended.items():
            counts[status] = counts.get(status, 0) + count
        done = sum(count for status, count in counts.items() if status in DONE_STATUSES)
        summary = ", ".join(f"{count} {status}" for status, count in sorted(counts.items())) or "none ended yet"
        elapsed = time.monotonic() - self.started
        here = sum(count for status, count in self.ended.items() if status in DONE_STATUSES)
        left = max(self.budget - done, 0)
        eta = f", about {_duration(elapsed / here * left)} left" if here and left and not final else ""
        return (f"trials {done}/{self.budget} done ({summary}), {len(self.running)} running, "
                f"{_duration(elapsed)}{eta}")

    def _render(self, final: bool = False) -> Group:
        header = Text(self._header(final))
        if final or not self.running:  # no empty table left above what follows
            return Group(header)
        table = Table(show_edge=False, pad_edge=False)
        shown = self.objective.metric.replace("_", " ")
        for column in ("trial", "epoch", *self.names, "train loss", shown, f"best {shown}"):
            table.add_column(column, justify="right")
        for number, row in sorted(self.running.items()):
            table.add_row(str(number), f"{row['epoch']}/{self.epochs}", *[fmt(row["config"].get(n)) for n in self.names],
                          fmt(row.get("train_loss")), fmt(row.get("value")), fmt(row.get("best")))
        return Group(header, table)

    def trial_started(self, number: int, config: dict[str, Any]) -> None:
        self.running[number] = {"config": config, "epoch": 0}
        self._refresh()

    def epoch_done(self, number: int, epoch: int, metrics: dict[str, float]) -> None:
        row = self.running.setdefault(number, {"config": {}, "epoch": 0})
        value = metrics.get(self.objective.metric)
        best = value if self.objective.better(value, row.get("best")) else row.get("best")
        row.update(epoch=epoch, train_loss=metrics.get("train_loss"), value=value, best=best)
        self._refresh()

    def note(self, text: str) -> None:
        self.console.print(text, highlight=False, markup=False)

    def prompt(self, summary: str, choices: str) -> str:
        raise UsageError("the table of trials cannot ask questions; this strategy needs a display of its own")

    def trial_ended(self, number: int, status: str, error: str | None) -> None:
        self.running.pop(number, None)
        self.ended[status] = self.ended.get(status, 0) + 1
        if error and status != "pruned":
            self.console.print(f"trial {number} {status}: {said_once(self.errors, number, error)}", highlight=False,
                               markup=False)
        self._refresh()


def said_once(seen: dict[str, tuple[int, str]], number: int, error: str) -> str:
    """``error`` of trial ``number`` as a line shows it: in full the first time, then as the
    trial that failed alike first (a mistake that fails every trial would repeat its traceback).
    Alike is the same first line: the lines after it (a program's stderr) may differ by the
    trial's values, and are then left to ``research show --json``."""
    head = error.split("\n", 1)[0]
    first, said = seen.setdefault(head, (number, error))
    if first == number:
        return error
    if said == error:
        return f"the same as trial {first}"
    return f"{head} (as trial {first}; its other lines differ: `research show --json` has them)"


def _duration(seconds: float) -> str:
    """``42s``, ``3m05s``, ``1h02m``."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


# Columns a narrow terminal leaves out first, in this order (the rank, the trial, its score,
# its test accuracy and the searched values stay).
EXPENDABLE = ("final", "test loss", "at epoch", "status")


def ranked_table(rows: list[dict[str, Any]], names: list[str], title: str, metric: str,
                 limit: int | None = None, width: int | None = None) -> Table | Text:
    """The ranked trials (:func:`research.report.ranked` rows by ``metric``), best first, with
    the held-out test metrics of each one's best epoch and the searched values. Numbers are
    never cut short: headers wrap, and when the table is wider than ``width`` (the
    terminal's) the EXPENDABLE columns are left out, which the caption says; narrower still,
    each trial is a block of lines (as_records)."""
    shown = rows[:limit] if limit else rows
    tests = sorted({name for row in shown for name in row.get("test", {})})
    label = metric.replace("_", " ")
    columns = {"rank": [str(rank) for rank in range(1, len(shown) + 1)],
               "trial": [str(row["number"]) for row in shown]}
    if any(row.get("round") is not None for row in shown):  # coarse-to-fine's (round 0 the first, as the docs)
        columns["round"] = [fmt(row.get("round")) for row in shown]
    columns |= {"status": [row["status"] for row in shown],
               f"best {label}": [fmt(row[f"best_{metric}"]) for row in shown],
               "at epoch": [fmt(row["best_epoch"]) for row in shown],
               f"final {label}": [fmt(row[f"final_{metric}"]) for row in shown]}
    columns |= {name.replace("_", " "): [fmt(row.get("test", {}).get(name)) for row in shown] for name in tests}
    columns |= {name: [fmt(row["config"].get(name)) for row in shown] for name in names}
    every = dict(columns)
    left_out = []
    for expendable in EXPENDABLE:
        if _fits(columns, width, wrapped=True):
            break
        header = next((h for h in columns if h.startswith(expendable)), None)
        if header is not None:
            del columns[header]
            left_out.append(header)
    if not _fits(columns, width, wrapped=True):  # too narrow for any table: every column, row by row
        return as_records(title, every, lambda cells: f"{cells['rank']}. trial {cells['trial']}")
    wrapped = not _fits(columns, width, wrapped=False)
    caption = f"left out for the terminal's width: {', '.join(left_out)}" if left_out else None
    table = Table(title=title, caption=caption)
    for header, cells in columns.items():
        table.add_column(header, justify="right", width=_column_width(header, cells, wrapped))
    for row in zip(*columns.values()):
        table.add_row(*row)
    return table


def as_records(title: str, columns: dict[str, list[str]], heading: Any) -> Text:
    """A table too wide for the terminal as one block per row: ``heading(cells)``, then a
    ``name  value`` line per column; no width cuts a number short."""
    names = [name for name in columns if name not in ("rank", "trial")]
    pad = max(map(len, names), default=0)
    lines = [title]
    for cells in (dict(zip(columns, row)) for row in zip(*columns.values())):
        lines += [heading(cells)] + [f"   {name.ljust(pad)}  {cells[name]}" for name in names]
    return Text("\n".join(lines))


def _column_width(header: str, cells: list[str], wrapped: bool) -> int:
    """As wide as the widest cell and the header (its longest word when headers wrap):
    numbers and names are never cut."""
    return max([len(cell) for cell in cells] + ([len(word) for word in header.split()] if wrapped else [len(header)]))


def _fits(columns: dict[str, list[str]], width: int | None, wrapped: bool) -> bool:
    """Whether the table fits in ``width`` characters (each column's padding and rule too)."""
    return width is None or 1 + sum(3 + _column_width(h, c, wrapped) for h, c in columns.items()) <= width


def confirmation_table(found: list[Any], metric: str, seeds: int | None = None, width: int | None = None
                       ) -> Table | Text:
    """Confirmed trials (research.study.confirm.Confirmed), best first: each one's own score
    and test accuracy beside the mean, spread and range over its replicates."""
    label = metric.replace("_", " ")
    columns: dict[str, list[str]] = {"trial": [], "seeds": [], label: [], f"{label} over seeds": [], "test acc": [],
                                     "test acc over seeds": []}
    for item in found:
        summary = item.as_dict(metric)
        columns["trial"].append(str(item.trial))
        # the replicates with a score, of those asked for or stored (a run asking fewer sees them all)
        columns["seeds"].append(f"{summary[metric]['n']}/{max(seeds or 0, len(item.replicates))}")
        columns[label].append(fmt(item.score))
        columns[f"{label} over seeds"].append(spread_text(summary[metric]))
        columns["test acc"].append(fmt(item.test.get("test_acc")))
        columns["test acc over seeds"].append(spread_text(summary.get("test_acc")))
    title = "confirmed with new seeds: mean ± standard deviation [min .. max]"
    if not _fits(columns, width, wrapped=True):
        return as_records(title, columns, lambda cells: f"trial {cells['trial']}")
    table = Table(title=escape(title))
    wrapped = not _fits(columns, width, wrapped=False)
    for header, cells in columns.items():
        table.add_column(header, justify="right", width=_column_width(header, cells, wrapped))
    for row in zip(*columns.values()):
        table.add_row(*row)
    return table


MAX_INTEGER_BINNING = 100_000  # integers mapped one by one to their bins; a wider range bins as floats do


def _integer_bins(param: Int, values: list[Any], bins: int) -> tuple[list[str], list[int]]:
    """Bins of whole integers on the parameter's scale: each integer in the bin its unit
    position falls in, a bin that holds none left out, each labelled by its integers (one
    value per row when there are at most ``bins``), so no row can look empty by construction."""
    where = {k: min(int(param.to_unit(k) * bins), bins - 1) for k in range(param.low, param.high + 1)}
    members: dict[int, list[int]] = {}
    for k, b in where.items():
        members.setdefault(b, []).append(k)
    counts = dict.fromkeys(members, 0)
    for value in values:
        counts[where[int(value)]] += 1
    labels = [str(ks[0]) if len(ks) == 1 else f"{ks[0]} .. {ks[-1]}" for ks in members.values()]
    return labels, list(counts.values())


def histogram(name: str, param: Param, values: list[Any], bins: int = 10, width: int = 40) -> Table:
    """A text histogram of sampled values, binned uniformly on the parameter's own scale."""
    table = Table(title=f"{name} ({param.describe()})", show_header=False, box=None)
    table.add_column("bin", justify="right")
    table.add_column("bar")
    table.add_column("count", justify="right")
    if isinstance(param, Choice):
        labels = [str(v) for v in param.values]
        counts = [sum(1 for v in values if v == choice) for choice in param.values]
    elif isinstance(param, Int) and param.high - param.low < MAX_INTEGER_BINNING:
        labels, counts = _integer_bins(param, values, bins)
    else:
        counts = [0] * bins
        for value in values:
            counts[min(int(param.to_unit(value) * bins), bins - 1)] += 1
        edges = [param.from_unit(i / bins) for i in range(bins + 1)]
        labels = [f"{fmt(float(edges[i]))} .. {fmt(float(edges[i + 1]))}" for i in range(bins)]
    peak = max(counts) or 1
    for label, count in zip(labels, counts):
        table.add_row(label, "█" * round(width * count / peak), str(count))
    return table

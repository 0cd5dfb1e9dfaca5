"""A study as one self-contained HTML page: its settings, status counts, ranked trials, the
study's figure (a plugin's, or the learning curves) with its caption and tables, the score
against each searched hyperparameter, the trials as parallel coordinates over the searched
hyperparameters and the score, which hyperparameters mattered (research.report.importance),
and the study's events, each in the words of the plugin that wrote it.

The page needs nothing but itself: pictures are PNG data URIs, the style sheet is inline,
there is no script. Every piece of text from the store or a plugin is escaped.
"""

from __future__ import annotations

import base64
import json
import time
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any

from research.errors import UsageError
from research.report.figure import Figure
from research.report.figures import parallel_figure, scores_figure, study_figure
from research.report.files import check_html_path, write_file
from research.report.importance import importance_figure
from research.report.owner import mark
from research.report.tables import objective_of, ranked, searched_names, status_counts, summarize
from research.study.confirm import confirmed, spread_text
from research.study.store import Store, Study

if TYPE_CHECKING:
    from research.plugins import Plugins


STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1100px;
       padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.2em; margin-top: 1.8em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
h3 { font-size: 1em; margin: 0.8em 0 0.3em; }
p.meta { color: #666; margin-top: 0; }
table { border-collapse: collapse; font-size: 0.9em; margin: 0.5em 0; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.best td { background: #eef6ee; }
td.error { color: #a00; max-width: 28em; }
.status-finished { color: #070; } .status-failed, .status-diverged { color: #a00; }
.status-running, .status-interrupted { color: #a60; } .status-pruned { color: #666; }
div.figure { display: flex; flex-wrap: wrap; gap: 1em; align-items: flex-start; }
img { max-width: 100%; height: auto; border: 1px solid #eee; }
code { background: #f4f4f4; padding: 0 0.2em; }
"""


class Markup(str):
    """HTML already escaped by this module: put in a table as it is."""


def _cell(value: Any) -> str:
    """A value as escaped cell text: floats to 4 significant digits, missing as a dash."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return escape(f"{value:.4g}")
    if isinstance(value, (dict, list)):
        return escape(json.dumps(value))
    return escape(str(value))


def _table(headers: list[str] | tuple[str, ...], rows: list[list[Any]] | tuple[tuple[Any, ...], ...], *,
           numeric: set[int] | frozenset[int] = frozenset(), row_classes: list[str] | None = None,
           cell_classes: dict[int, Any] | None = None) -> str:
    """An HTML table; ``numeric`` column indexes are right-aligned; cells are escaped here
    unless given as ``Markup``."""
    lines = ["<table>", "<tr>" + "".join(f"<th>{escape(h)}</th>" for h in headers) + "</tr>"]
    for index, row in enumerate(rows):
        css = f' class="{escape(row_classes[index])}"' if row_classes and row_classes[index] else ""
        cells = []
        for column, value in enumerate(row):
            classes = ["num"] if column in numeric else []
            if cell_classes and column in cell_classes:
                classes.append(cell_classes[column](value))
            attribute = f' class="{escape(" ".join(classes))}"' if classes else ""
            text = str(value) if isinstance(value, Markup) else _cell(value)
            cells.append(f"<td{attribute}>{text}</td>")
        lines.append(f"<tr{css}>" + "".join(cells) + "</tr>")
    lines.append("</table>")
    return "\n".join(lines)


def _when(seconds: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds)) if seconds else "-"


def fixed_values(store: Store, study: Study, curves: dict[int, list[dict[str, Any]]] | None = None) -> dict[str, Any]:
    """What every trial ran with that the study did not search: the values all its trials'
    stored configurations share (their effective configuration, so the defaults their plugins
    filled in show too), or what the study was given while it has no trial. ``epochs`` is the
    most epochs any trial trained when that is more than configured (a run that went on past
    its first configuration, as when a study is resumed for longer)."""
    configs = [trial.config for trial in store.trials(study)] or [study.settings.get("base") or {}]
    searched = set(searched_names(study))
    fixed = {key: value for key, value in configs[0].items()
             if key not in searched and all(key in config and config[key] == value for config in configs[1:])}
    curves = store.curves(study) if curves is None else curves
    trained = max((row["epoch"] for curve in curves.values() for row in curve), default=0)
    if isinstance(fixed.get("epochs"), int) and trained > fixed["epochs"]:
        fixed["epochs"] = trained
    return fixed


def _settings_section(study: Study, fixed: dict[str, Any]) -> str:
    settings = study.settings
    space = settings.get("space") or {}
    objective = objective_of(study)
    general = [["strategy", study.strategy], ["created", _when(study.created)],
               ["objective", f"{objective.direction} {objective.metric}"]]
    # A sampler means something only when there was a space to sample.
    keys = ("sampler", "sampler_options", "seed", "trials", "options") if space else ("seed", "trials", "options")
    for key in keys:
        if key in settings and settings[key] not in ({}, None):
            general.append([key.replace("_", " "), settings[key]])
    parts = ["<h2>Settings</h2>", _table(["setting", "value"], general)]
    if fixed:
        parts += ["<h3>Fixed for every trial</h3>",
                  _table(["name", "value"], [[k, v] for k, v in sorted(fixed.items())])]
    if space:
        parts += ["<h3>Search space</h3>"]
        if settings.get("from_study"):  # --from-study: the box it copied, and whose
            parts += [f"<p>A box around the best quarter of study '{escape(settings['from_study'])}''s trials "
                      "(copied when this study began).</p>"]
        parts += [_table(["name", "definition"], [[k, v] for k, v in space.items()])]
    return "\n".join(parts)


def _status_section(store: Store, study: Study, fixed: dict[str, Any]) -> str:
    counts = status_counts(store, study)
    total = sum(counts.values())
    rows = [[Markup(f'<span class="status-{escape(s)}">{escape(s)}</span>'), n] for s, n in counts.items()]
    budget = study.settings.get("trials")
    heading = f"Trials: {total}" + (f" of {budget}" if budget and budget != total else "")
    summary = summarize(ranked(store, study), int(fixed.get("epochs", 0)))
    pruning = (f"<p>{summary['epochs_trained']} epochs trained; pruning stopped {summary['pruned']} trials "
               f"and saved {summary['epochs_saved_by_pruning']} epochs.</p>\n" if summary["pruned"] else "")
    return (f"<h2>{escape(heading)}</h2>\n" + pruning
            + _table(["status", "trials"], rows + [["total", total]], numeric={1}))


def _ranked_section(store: Store, study: Study) -> str:
    rows = ranked(store, study)
    score = objective_of(study).metric
    shown = score.replace("_", " ")
    names = searched_names(study)
    with_rounds = any(r["round"] is not None for r in rows)
    tests = sorted({name for row in rows for name in row["test"]})  # the held-out split's, at the best epoch
    headers = ["rank", "trial", "status"] + (["round"] if with_rounds else []) + \
              [f"best {shown}", "at epoch", f"final {shown}"] + [t.replace("_", " ") for t in tests] + \
              ["epochs"] + names + ["error"]
    table_rows, classes = [], []
    for rank, row in enumerate(rows, start=1):
        error = row["error"] or ""
        first_line = error.splitlines()[0] if error else ""
        error_cell = Markup(f'<span title="{escape(error)}">{escape(first_line)}</span>' if error else "")
        table_rows.append([rank, row["number"], row["status"]] + ([row["round"]] if with_rounds else []) +
                          [row[f"best_{score}"], row["best_epoch"], row[f"final_{score}"]] +
                          [row["test"].get(t) for t in tests] + [row["epochs"]] +
                          [row["config"].get(n) for n in names] + [error_cell])
        classes.append("best" if rank == 1 and row[f"best_{score}"] is not None else "")
    numeric = set(range(len(headers) - 1)) - {2}  # all but the status and the error
    return "<h2>Trials, best first</h2>\n" + _table(
        headers, table_rows, numeric=numeric, row_classes=classes,
        cell_classes={2: lambda status: f"status-{status}", len(headers) - 1: lambda _: "error"})


def _confirmations_section(store: Store, study: Study) -> str:
    """The trials trained again with new seeds (research confirm): mean ± sd [min .. max]."""
    objective = objective_of(study)
    found = confirmed(store, study, objective)
    if not found:
        return ""
    shown = objective.metric.replace("_", " ")
    rows = []
    for item in found:
        summary = item.as_dict(objective.metric)
        rows.append([item.trial, f"{summary[objective.metric]['n']}/{len(item.replicates)}", item.score,
                     spread_text(summary[objective.metric]), item.test.get("test_acc"),
                     spread_text(summary.get("test_acc"))])
    headers = ["trial", "seeds", shown, f"{shown} over seeds", "test acc", "test acc over seeds"]
    return ("<h2>Confirmed with new seeds</h2>\n<p>Mean ± standard deviation [min .. max] over each trial's "
            "replicates, beside its own score.</p>\n" + _table(headers, rows, numeric=set(range(6))))


def _figure_section(figure: Figure) -> str:
    """The figure under its name and caption, its tables beside it; a figure with nothing in
    it (no trained epoch yet) is said, not drawn."""
    from research.report.render import to_bytes

    name = figure.name or figure.title
    if figure.empty:
        return f"<h2>{escape(name)}</h2>\n<p>Nothing to plot yet: no trial has trained an epoch.</p>"
    data = base64.b64encode(to_bytes(figure, "png")).decode("ascii")
    parts = [f"<h2>{escape(name)}</h2>"]
    if figure.caption:
        parts.append(f"<p>{escape(figure.caption)}</p>")
    parts.append('<div class="figure">')
    parts.append(f'<img alt="{escape(figure.title)}" src="data:image/png;base64,{data}">')
    for table in figure.tables:
        parts += ["<div>", f"<h3>{escape(table.title)}</h3>", _table(table.headers, table.rows), "</div>"]
    parts.append("</div>")
    return "\n".join(parts)


def _importance_section(store: Store, study: Study) -> str:
    """Which hyperparameters mattered; a study with too few scored trials says so instead."""
    try:
        figure = importance_figure(store, study)
    except UsageError as why:
        return f"<h2>Hyperparameter importance</h2>\n<p>Not measured: {escape(str(why))}.</p>"
    return _figure_section(figure) if figure is not None else ""


def _events_section(store: Store, study: Study, plugins: Plugins) -> str:
    """Every event the study's strategy stored, in the words of the plugin that wrote it,
    numbered from 1 in the study as ``research log`` numbers them."""
    rows = [[number, time.strftime("%H:%M:%S", time.localtime(event["time"])), event["kind"],
             event["data"].get("epoch"), plugins.describe(study, event)]
            for number, event in enumerate(store.events(study), start=1)]
    if not rows:
        return ""
    return "<h2>Events</h2>\n" + _table(["#", "time", "kind", "epoch", "what"], rows, numeric={0, 3})


def render_report(store: Store, study: Study, plugins: Plugins) -> str:
    """The whole report page of ``study`` as one HTML string; ``plugins`` draw its figure and
    describe its events."""
    fixed = fixed_values(store, study)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta name="research-study" content="{escape(mark(store, study))}">',
        f"<title>{escape(study.name)}: research report</title>",
        f"<style>{STYLE}</style>",
        "</head>",
        "<body>",
        f"<h1>Study {escape(study.name)}</h1>",
        f'<p class="meta">{escape(study.strategy)} study, report written {escape(_when(time.time()))}</p>',
        _settings_section(study, fixed),
        _status_section(store, study, fixed),
        _ranked_section(store, study),
        _confirmations_section(store, study),
        _figure_section(study_figure(store, study, None, plugins)),
    ]
    for searched in (scores_figure(store, study), parallel_figure(store, study)):
        if searched is not None:  # None: the study searched nothing
            parts.append(_figure_section(searched))
    parts += [_importance_section(store, study), _events_section(store, study, plugins), "</body>", "</html>", ""]
    return "\n".join(p for p in parts if p)


def write_report(store: Store, study: Study, path: str | Path, plugins: Plugins) -> Path:
    """Write the report of ``study`` to ``path`` (an .html file); returns the path."""
    path = check_html_path(path)
    return write_file(path, render_report(store, study, plugins).encode("utf-8"))

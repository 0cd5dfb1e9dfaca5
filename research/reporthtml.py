"""A study as one self-contained HTML page: its settings, status counts, ranked trials, the
learning curves, the score against each searched hyperparameter, and for a babysat model the
story of its changes.

The page needs nothing but itself: pictures are PNG data URIs, the style sheet is inline,
there is no script. Every piece of text from the store is escaped.
"""

from __future__ import annotations

import base64
import json
import time
from html import escape
from pathlib import Path
from typing import Any

from research.events import describe
from research.report import figure_png, is_one_model, ranked, scores_figure, searched_names, study_figure, summarize
from research.study.store import TRIAL_STATUSES, Store, Study

HTML_SUFFIXES = (".html", ".htm")
SCORE = "val_acc"

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1100px;
       padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.2em; margin-top: 1.8em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
p.meta { color: #666; margin-top: 0; }
table { border-collapse: collapse; font-size: 0.9em; margin: 0.5em 0; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.best td { background: #eef6ee; }
td.error { color: #a00; max-width: 28em; }
.status-finished { color: #070; } .status-failed, .status-diverged { color: #a00; }
.status-running, .status-interrupted { color: #a60; } .status-pruned { color: #666; }
img { max-width: 100%; height: auto; border: 1px solid #eee; }
code { background: #f4f4f4; padding: 0 0.2em; }
"""


def check_html_path(path: str | Path) -> Path:
    """``path`` if it names an .html file; a ValueError with the fix otherwise."""
    path = Path(path)
    if path.suffix.lower() not in HTML_SUFFIXES:
        raise ValueError(f"cannot write the report to {path.name}; name an .html file, e.g. -o report.html")
    return path


def status_counts(store: Store, study: Study) -> dict[str, int]:
    """How many trials of the study are in each status (statuses in their usual order)."""
    counts: dict[str, int] = {}
    for trial in store.trials(study):
        counts[trial.status] = counts.get(trial.status, 0) + 1
    return {s: counts[s] for s in sorted(counts, key=lambda s: (TRIAL_STATUSES.index(s)
                                                                 if s in TRIAL_STATUSES else len(TRIAL_STATUSES), s))}


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


def _table(headers: list[str], rows: list[list[Any]], *, numeric: set[int] | frozenset[int] = frozenset(),
           row_classes: list[str] | None = None, cell_classes: dict[int, Any] | None = None) -> str:
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


def _picture(fig: Any, alt: str) -> str:
    data = base64.b64encode(figure_png(fig)).decode("ascii")
    return f'<img alt="{escape(alt)}" src="data:image/png;base64,{data}">'


def _when(seconds: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds)) if seconds else "-"


def _settings_section(study: Study, one_model: bool) -> str:
    settings = study.settings
    general = [["strategy", study.strategy], ["created", _when(study.created)]]
    keys = ("seed", "options") if one_model else ("sampler", "sampler_options", "seed", "trials", "options")
    for key in keys:
        if key in settings and settings[key] not in ({}, None):
            general.append([key.replace("_", " "), settings[key]])
    parts = ["<h2>Settings</h2>", _table(["setting", "value"], general)]
    base = settings.get("base") or {}
    if base:
        parts += ["<h3>Fixed for every trial</h3>",
                  _table(["name", "value"], [[k, v] for k, v in sorted(base.items())])]
    space = settings.get("space") or {}
    if space:
        parts += ["<h3>Search space</h3>", _table(["name", "definition"], [[k, v] for k, v in space.items()])]
    return "\n".join(parts)


def _status_section(store: Store, study: Study) -> str:
    counts = status_counts(store, study)
    total = sum(counts.values())
    rows = [[Markup(f'<span class="status-{escape(s)}">{escape(s)}</span>'), n] for s, n in counts.items()]
    budget = study.settings.get("trials")
    heading = f"Trials: {total}" + (f" of {budget}" if budget and budget != total else "")
    summary = summarize(ranked(store, study), int(study.settings.get("base", {}).get("epochs", 0)))
    pruning = (f"<p>{summary['epochs_trained']} epochs trained; pruning stopped {summary['pruned']} trials "
               f"and saved {summary['epochs_saved_by_pruning']} epochs.</p>\n" if summary["pruned"] else "")
    return (f"<h2>{escape(heading)}</h2>\n" + pruning
            + _table(["status", "trials"], rows + [["total", total]], numeric={1}))


def _ranked_section(store: Store, study: Study) -> str:
    rows = ranked(store, study, SCORE)
    names = searched_names(study)
    with_rounds = any(r["round"] is not None for r in rows)
    headers = ["rank", "trial", "status"] + (["round"] if with_rounds else []) + \
              ["best val acc", "at epoch", "final val acc", "epochs"] + names + ["error"]
    table_rows, classes = [], []
    for rank, row in enumerate(rows, start=1):
        error = row["error"] or ""
        first_line = error.splitlines()[0] if error else ""
        error_cell = Markup(f'<span title="{escape(error)}">{escape(first_line)}</span>' if error else "")
        table_rows.append([rank, row["number"], row["status"]] + ([row["round"]] if with_rounds else []) +
                          [row[f"best_{SCORE}"], row["best_epoch"], row[f"final_{SCORE}"], row["epochs"]] +
                          [row["config"].get(n) for n in names] + [error_cell])
        classes.append("best" if rank == 1 and row[f"best_{SCORE}"] is not None else "")
    numeric = set(range(len(headers) - 1)) - {2}  # all but the status and the error
    return "<h2>Trials, best first</h2>\n" + _table(
        headers, table_rows, numeric=numeric, row_classes=classes,
        cell_classes={2: lambda status: f"status-{status}", len(headers) - 1: lambda _: "error"})


def _events_section(store: Store, study: Study) -> str:

    rows = []
    for event in store.events(study):
        if event["kind"] == "command-done":
            continue
        epoch = event["data"].get("epoch", event["data"].get("from_epoch"))
        rows.append([event["id"], time.strftime("%H:%M:%S", time.localtime(event["time"])), event["kind"], epoch,
                     describe(event)])
    if not rows:
        return "<h2>Events</h2>\n<p>No events yet.</p>"
    return "<h2>Events: segments, changes, rollbacks</h2>\n" + _table(["#", "time", "kind", "epoch", "what"], rows,
                                                                      numeric={0, 3})


def _final_hyper_section(store: Store, study: Study) -> str:
    segments = store.events(study, kind="segment")
    hyper = segments[-1]["data"].get("hyper") if segments else None
    if not hyper:
        return ""
    return "<h3>Hyperparameters at the last boundary</h3>\n" + _table(["name", "value"],
                                                                        [[k, v] for k, v in hyper.items()])


def render_report(store: Store, study: Study) -> str:
    """The whole report page as one HTML string."""
    one_model = is_one_model(store, study)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f"<title>{escape(study.name)}: research report</title>",
        f"<style>{STYLE}</style>",
        "</head>",
        "<body>",
        f"<h1>Study {escape(study.name)}</h1>",
        f'<p class="meta">{escape(study.strategy)} study, report written {escape(_when(time.time()))}</p>',
        _settings_section(study, one_model),
        _status_section(store, study),
        _ranked_section(store, study),
    ]
    if one_model:
        parts += [_final_hyper_section(store, study), "<h2>Learning curve, changes and rollbacks</h2>",
                  "<p>The live curve is solid; epochs undone by a rollback are faded; a dotted line marks "
                  "every change, labelled with what changed.</p>",
                  _picture(study_figure(store, study, SCORE), "the learning curve with its changes and rollbacks"),
                  _events_section(store, study)]
    else:
        parts += ["<h2>Learning curves</h2>",
                  _picture(study_figure(store, study, SCORE), "overlaid learning curves, the best highlighted")]
        scores = scores_figure(store, study, SCORE)
        if scores is not None:
            parts += ["<h2>Score against each hyperparameter</h2>",
                      "<p>Each dot is a trial, on the parameter's own scale: log for <code>log</code> parameters, "
                      "1 - value on a log axis (labelled with the value) for <code>log1m</code> ones. Trials "
                      "without a score are crosses at the bottom.</p>",
                      _picture(scores, "best validation accuracy against each searched hyperparameter")]
    parts += ["</body>", "</html>", ""]
    return "\n".join(p for p in parts if p)


def write_report(store: Store, study: Study, path: str | Path) -> Path:
    """Write the report of ``study`` to ``path`` (an .html file); returns the path."""
    path = check_html_path(path)
    path.write_text(render_report(store, study), encoding="utf-8")
    return path

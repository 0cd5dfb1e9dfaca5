"""Reports of a study: the ranked trials, their learning curves as a picture, exports.

Everything here only reads the store, so it can run while the study is being written.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

from research.store import Store, Study

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
    writer.writerow(["trial", "status", *names, "epoch", *metric_columns])
    for t in trials:
        for row in curves.get(t.number, []):
            writer.writerow([t.number, t.status, *[t.config.get(n) for n in names], row["epoch"],
                             *[row[c] for c in metric_columns]])
    return buffer.getvalue()


def plot_curves(store: Store, study: Study, path: str | Path, metric: str = "val_acc", top: int = 5) -> Path:
    """Overlaid learning curves of every trial, the ``top`` best highlighted; PNG or SVG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    rows = ranked(store, study, metric)
    curves = store.curves(study)
    best = [r["number"] for r in rows if r[f"best_{metric}"] is not None][:top]
    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    for row in rows:
        curve = [(c["epoch"], c[metric]) for c in curves.get(row["number"], []) if c[metric] is not None]
        if not curve or row["number"] in best:
            continue
        ax.plot(*zip(*curve), color="0.75", linewidth=0.9, zorder=1)
    colors = plt.get_cmap("tab10")
    for rank, number in enumerate(best):
        curve = [(c["epoch"], c[metric]) for c in curves[number] if c[metric] is not None]
        config = next(r["config"] for r in rows if r["number"] == number)
        label = f"#{number} " + ", ".join(f"{n}={_short(config.get(n))}" for n in searched_names(study))
        ax.plot(*zip(*curve), color=colors(rank), linewidth=2, label=label, zorder=2)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric.replace("_", " "))
    ax.set_title(f"{study.name}: {len(rows)} trials, top {len(best)} highlighted")
    if metric in ("val_loss", "train_loss"):
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    if best:
        ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path


def _short(value: Any) -> str:
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:.4g}"
    return str(value)


def plot_study(store: Store, study: Study, path: str | Path, metric: str = "val_acc") -> Path:
    """The study's picture: overlaid curves for many trials."""
    return plot_curves(store, study, path, metric)

"""`research importance`: which searched hyperparameters mattered in a study (PED-ANOVA, see
research.study.importance), as a table with a bar per parameter, or as JSON.

It opens the store without creating it and only reads, so it is safe to run against a study
that is being written.
"""

from __future__ import annotations

from pathlib import Path

from rich.markup import escape
from rich.table import Table

from research.cli.console import Terminal, echo_json
from research.errors import UsageError
from research.study.importance import Importance, study_importance
from research.study.store import Store

BAR_WIDTH = 30  # characters of a share of 1


def bar(share: float, width: int = BAR_WIDTH) -> str:
    """``share`` (0..1) as a bar of block characters, to an eighth of a character."""
    eighths = round(max(share, 0.0) * width * 8)
    return "█" * (eighths // 8) + ("", "▏", "▎", "▍", "▌", "▋", "▊", "▉")[eighths % 8]


def importance_table(name: str, found: Importance) -> Table:
    """One row per parameter, the largest share first."""
    table = Table(title=f"study {name}: which hyperparameters mattered for the best {found.top} of "
                        f"{found.trials} trials")
    for column, justify in (("parameter", "left"), ("scale", "left"), ("share", "right"), ("±", "right"),
                            ("", "left"), ("p", "right"), ("trials (top)", "right")):
        table.add_column(column, justify=justify)
    for item in found.params:
        shown = escape(item.name) + (f" [dim](if {escape(item.condition)})[/]" if item.condition else "")
        table.add_row(shown, item.scale, f"{item.share:.2f}", f"{item.error:.2f}", bar(item.share),
                      f"{item.p:.3f}", f"{item.trials} ({item.top})")
    return table


def show_importance(term: Terminal, name: str, store_path: Path, quantile: float, as_json: bool) -> None:
    if not 0 < quantile < 1:
        raise UsageError(f"--quantile must be between 0 and 1 (0.1: the best 10% of the trials), got {quantile}")
    with Store(store_path, create=False) as store:
        found = study_importance(store, store.study(name), quantile=quantile)
    if as_json:
        echo_json({"study": name, **found.as_dict()})
        return
    term.out.print(importance_table(name, found))
    term.out.print(f"share: what each parameter alone explains of reaching the top {found.top}, of what they explain "
                   "together (PED-ANOVA)", highlight=False, markup=False)
    term.out.print(f"±: its bootstrap standard error ({found.resamples} resamples); p: the chance a parameter that does "
                   f"not matter gets as much ({found.resamples} shuffles)", highlight=False, markup=False)
    if found.note:
        term.out.print(f"note: {found.note}", highlight=False, markup=False)

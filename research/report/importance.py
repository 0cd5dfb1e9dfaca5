"""Which hyperparameters mattered, as a figure: each searched parameter's share of what the
main effects explain of reaching the study's top trials (research.study.importance), a bar
with its bootstrap interval beside it, the largest at the top.

The figure model has no bars: a bar is a thick line from 0 to the share, ended by a dot, on
a choice axis of the parameters' names, so PNG, the HTML report and the dashboard draw it
with no code of their own.
"""

from __future__ import annotations

from typing import Any

from research.report.figure import Axis, Figure, Legend, Panel, Series, Table
from research.study.importance import RESAMPLES, Importance, study_importance
from research.study.store import Store, Study

INTERVAL_OFFSET = 0.22  # the interval's line sits this far below its bar, on the names' axis


def importance_figure(store: Store, study: Study, *, curves: dict[int, list[dict[str, Any]]] | None = None,
                      resamples: int = RESAMPLES) -> Figure | None:
    """The importance of the study's searched hyperparameters (``curves``: the study's, when
    read already); None when it searched none. A UsageError (research.study.importance) when
    too few trials have a score."""
    if not study.settings.get("space"):
        return None
    found = study_importance(store, study, curves=curves, resamples=resamples)
    return figure_of(study.name, found)


def figure_of(name: str, found: Importance) -> Figure:
    """``found`` drawn: one row per parameter, the largest share at the top."""
    params = list(reversed(found.params))  # a choice axis puts its first category at the bottom
    series = []
    for row, item in enumerate(params):
        info = {"parameter": item.name, "share": round(item.share, 4), "±": round(item.error, 4),
                "p": round(item.p, 4), "trials": item.trials, "top trials": item.top}
        series.append(Series([0.0, item.share], [row, row], "share", "highlighted", marker="none", color=0,
                             info=info))
        series.append(Series([item.share], [row], "", "highlighted", "points", marker="dot", color=0, info=info))
        series.append(Series([item.low, item.high], [row - INTERVAL_OFFSET] * 2, "bootstrap 5..95%", marker="none",
                             color=1, info=info))
    widest = max([1e-9, *(item.high for item in params)])  # an interval holds its share
    caption = (f"PED-ANOVA (Watanabe et al., IJCAI 2023): how much each hyperparameter alone explains of being "
               f"among the best {found.top} of {found.trials} trials, as a share of what they explain together. "
               f"Beside each bar its 5..95% interval over {found.resamples} bootstrap resamples of the trials (their "
               f"spread, set on the share); p is the chance a parameter that does not matter gets as much "
               f"({found.resamples} shuffles).")
    if found.note:
        caption += f" Note: {found.note}."
    table = Table("importance", ("parameter", "scale", "share", "±", "p", "trials (top)"),
                  [(item.name, item.scale, round(item.share, 3), round(item.error, 3), round(item.p, 3),
                    f"{item.trials} ({item.top})") for item in found.params])
    return Figure(
        title=f"{name}: hyperparameter importance",
        panels=[Panel(Axis("share of the explained variance", limits=(0.0, min(1.0, widest * 1.08))),
                      Axis("", "choice", categories=[item.name for item in params]), series)],
        legend=Legend(place="below"),
        name="Hyperparameter importance",
        caption=caption,
        tables=[table],
        size=(7.0, 1.6 + 0.45 * len(params) + 0.45),
    )

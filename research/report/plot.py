"""A study's pictures as PNG or SVG files: its own figure, the overlaid curves, the score
against each hyperparameter. The metric and the file name are checked before anything is read
or drawn. A figure with nothing in it (a study with no trained epoch yet) is not written: the
functions return None, and the caller says so."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from research.errors import UsageError
from research.report.figure import Figure
from research.report.figures import curves_figure, scores_figure, study_figure
from research.report.files import check_picture_path
from research.report.owner import mark
from research.study.store import Store, Study

if TYPE_CHECKING:
    from research.plugins import Plugins


def _save(figure: Figure, path: Path, store: Store, study: Study) -> Path | None:
    """Draw ``figure`` of ``study`` to ``path``, marked as its; None, and nothing written, when
    it has nothing to draw."""
    from research.report.render import save

    return None if figure.empty else save(figure, path, mark(store, study))


def plot_study(store: Store, study: Study, path: str | Path, metric: str | None, plugins: Plugins) -> Path | None:
    """Save the study's figure (see :func:`research.report.figures.study_figure`: a plugin's,
    or the overlaid curves) as PNG or SVG, by the extension of ``path``; None when there is
    nothing to plot (no trained epoch yet), and no file is written."""
    path = check_picture_path(path)  # the metric is checked by the figure
    return _save(study_figure(store, study, metric, plugins), path, store, study)


def plot_curves(store: Store, study: Study, path: str | Path, metric: str | None = None, top: int = 5) -> Path | None:
    """Overlaid learning curves of every trial, the ``top`` best highlighted; PNG or SVG. None
    when there is nothing to plot, and no file is written."""
    path = check_picture_path(path)  # the metric is checked by the figure
    return _save(curves_figure(store, study, metric, top), path, store, study)


def plot_scores(store: Store, study: Study, path: str | Path, metric: str | None = None) -> Path | None:
    """Save the score against each searched hyperparameter as PNG or SVG (a UsageError when
    nothing was searched); None when there is no trial to plot, and no file is written."""
    path = check_picture_path(path)  # the metric is checked by the figure
    figure = scores_figure(store, study, metric)
    if figure is None:
        raise UsageError(f"study '{study.name}' searched no hyperparameters: nothing to plot against; "
                         f"plot its curves with plot_curves")
    return _save(figure, path, store, study)

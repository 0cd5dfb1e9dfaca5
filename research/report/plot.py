"""A study's pictures as PNG or SVG files: its own figure, the overlaid curves, the score
against each hyperparameter. The metric and the file name are checked before anything is read
or drawn."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from research.errors import UsageError
from research.report.figures import curves_figure, scores_figure, study_figure
from research.report.files import check_folder, picture_format
from research.study.store import Store, Study

if TYPE_CHECKING:
    from research.plugins import Plugins


def _checked(path: str | Path) -> Path:
    """The picture's path checked; the metric is checked by the figure (a study's own metric
    may be one its trainer reports)."""
    picture_format(path)
    return check_folder(path)


def plot_study(store: Store, study: Study, path: str | Path, metric: str | None, plugins: Plugins) -> Path:
    """Save the study's figure (see :func:`research.report.figures.study_figure`: a plugin's,
    or the overlaid curves) as PNG or SVG, by the extension of ``path``."""
    from research.report.render import save

    path = _checked(path)
    return save(study_figure(store, study, metric, plugins), path)


def plot_curves(store: Store, study: Study, path: str | Path, metric: str | None = None, top: int = 5) -> Path:
    """Overlaid learning curves of every trial, the ``top`` best highlighted; PNG or SVG."""
    from research.report.render import save

    path = _checked(path)
    return save(curves_figure(store, study, metric, top), path)


def plot_scores(store: Store, study: Study, path: str | Path, metric: str | None = None) -> Path:
    """Save the score against each searched hyperparameter as PNG or SVG (a UsageError when
    nothing was searched)."""
    from research.report.render import save

    path = _checked(path)
    figure = scores_figure(store, study, metric)
    if figure is None:
        raise UsageError(f"study '{study.name}' searched no hyperparameters: nothing to plot against; "
                         f"plot its curves with plot_curves")
    return save(figure, path)

"""Reports of a study: ranked tables and exports, its figures as data, those figures drawn
to PNG or SVG, and the one-file HTML report.

Modules, one idea each:
  - ``tables``: ranked trials, status counts, summaries, CSV/JSON export;
  - ``figure``: the figure data model (no drawing code), what a plugin's ``study_figure``
    hook returns;
  - ``figures``: the core's figures (overlaid curves, score against each hyperparameter,
    parallel coordinates, one trial's curves) and the study's figure (a plugin's, or the curves);
  - ``importance``: which hyperparameters mattered, as a figure (research.study.importance);
  - ``render``: the only matplotlib code; ``plot``: figures as files; ``html``: the report;
    ``files``: checks of output paths and the writes; ``owner``: which study a file was drawn
    from, so that a default file name never replaces another study's.

Everything here only reads the store, so it can run while the study is being written.
Mistakes a user can fix (an unknown metric, a wrong extension, a missing folder) raise
``research.errors.UsageError``. Importing this package does not import matplotlib.
"""

from research.report.figure import Figure
from research.report.figures import curves_figure, parallel_figure, scores_figure, study_figure, trial_figure
from research.report.files import check_folder, check_html_path, picture_format
from research.report.html import render_report, write_report
from research.report.importance import importance_figure
from research.report.plot import plot_curves, plot_scores, plot_study
from research.report.tables import check_metric, export, objective_of, ranked, searched_names, status_counts, summarize

__all__ = [
    "Figure", "check_folder", "check_html_path", "check_metric", "curves_figure", "export", "importance_figure",
    "objective_of", "parallel_figure", "picture_format", "plot_curves", "plot_scores", "plot_study", "ranked",
    "render_report", "scores_figure", "searched_names", "status_counts", "study_figure", "summarize", "trial_figure",
    "write_report",
]

"""`research plot` and `research report`: a study's picture and its self-contained HTML report.

Both only read the store (opened without creating it), so they are safe to run against a
study that is being written.
"""

from __future__ import annotations

from pathlib import Path

from research.cli.console import Terminal
from research.errors import UsageError
from research.report import check_html_path, objective_of, plot_study, write_report
from research.report.files import check_output, check_picture_path
from research.report.owner import mark, own_path, renamed
from research.study.store import Store, Study
from research.study.study import budget_reached
from research.words import study_command


def default_output(name: str, suffix: str) -> Path:
    """STUDY.png (or .html) in the working directory; a slash in the name does not make a folder."""
    return Path(name.replace("/", "_").replace("\\", "_") + suffix)


def plot_command(term: Terminal, name: str, store_path: Path, output: Path | None, metric: str | None) -> None:
    """Save the study's picture of ``metric`` (None: the study's own): a plugin's figure of its
    study, or the overlaid curves. With nothing to plot (no trained epoch, or none with a value
    of ``metric``) no file is written and the command fails (exit 2) in one line naming why and
    what to do: asked for a picture, a script must not go on with a stale or missing file."""
    named = check_output(check_picture_path(output), store_path) if output else None  # said before the store
    with Store(store_path, create=False) as store:
        study = store.study(name)
        default = default_output(name, ".png")  # or STUDY-2.png..., where it is another study's (own_path)
        path = named or check_output(check_picture_path(own_path(default, mark(store, study))), store_path)
        written = plot_study(store, study, path, metric, term.plugins)
        why = None if written is not None else nothing_to_plot(store, study, metric)
    term.warn_problems()
    if why is not None:
        raise UsageError(why)
    term.out.print(f"wrote {written}{renamed(written, output or default)}", highlight=False, markup=False,
                   soft_wrap=True)


def nothing_to_plot(store: Store, study: Study, metric: str | None, other: str = "choose another --metric") -> str:
    """Why a study has nothing to plot, and the fix, in one line (``other``: how to plot another
    metric, where none of the epochs has a value of this one)."""
    trials = store.trials(study)
    if store.curves(study):
        shown = metric or objective_of(study).metric
        return f"nothing to plot: no epoch of study '{study.name}' has a value of {shown}; {other}"
    if trials and all(t.status == "failed" for t in trials):
        return (f"nothing to plot: every trial of study '{study.name}' failed before its first epoch; "
                f"`{study_command('show', study.name, store.path)}` says why")
    spent = budget_reached(store, study, study.settings.get("max_minutes"), study.settings.get("max_epochs"))
    larger = " with a larger --max-minutes or --max-epochs (or --no-budget)" if spent else ""
    return (f"nothing to plot: study '{study.name}' has no trained epoch yet; train it with "
            f"`{study_command('resume', study.name, store.path)}`{larger}")


def report_command(term: Terminal, name: str, store_path: Path, output: Path | None) -> None:
    """Write the study's report as one self-contained HTML file."""
    named = check_output(check_html_path(output), store_path) if output else None  # said before the store
    with Store(store_path, create=False) as store:
        study = store.study(name)
        default = default_output(name, ".html")  # or STUDY-2.html..., where it is another study's (own_path)
        path = named or check_output(check_html_path(own_path(default, mark(store, study))), store_path)
        written = write_report(store, study, path, term.plugins)
    term.warn_problems()
    term.out.print(f"wrote {written}{renamed(written, output or default)}", highlight=False, markup=False,
                   soft_wrap=True)

"""`research plot` and `research report`: a study's picture and its self-contained HTML report.

Both only read the store (opened without creating it), so they are safe to run against a
study that is being written.
"""

from __future__ import annotations

from pathlib import Path

from research.cli.console import Terminal
from research.report import check_folder, check_html_path, picture_format, plot_study, write_report
from research.study.store import Store


def default_output(name: str, suffix: str) -> Path:
    """STUDY.png (or .html) in the working directory; a slash in the name does not make a folder."""
    return Path(name.replace("/", "_").replace("\\", "_") + suffix)


def plot_command(term: Terminal, name: str, store_path: Path, output: Path | None, metric: str | None) -> None:
    """Save the study's picture of ``metric`` (None: the study's own): a plugin's figure of its
    study, or the overlaid curves."""
    path = output or default_output(name, ".png")
    picture_format(path)
    check_folder(path)
    with Store(store_path, create=False) as store:
        written = plot_study(store, store.study(name), path, metric, term.plugins)
    term.warn_problems()
    term.out.print(f"wrote {written}", highlight=False, markup=False, soft_wrap=True)


def report_command(term: Terminal, name: str, store_path: Path, output: Path | None) -> None:
    """Write the study's report as one self-contained HTML file."""
    path = check_folder(check_html_path(output or default_output(name, ".html")))
    with Store(store_path, create=False) as store:
        written = write_report(store, store.study(name), path, term.plugins)
    term.warn_problems()
    term.out.print(f"wrote {written}", highlight=False, markup=False, soft_wrap=True)

"""`research plot` and `research report`: a study's picture and its self-contained HTML report.

Both only read the store (opened without creating it), so they are safe to run against a
study that is being written.
"""

from __future__ import annotations

from pathlib import Path

from research.cli.app import out, user_errors
from research.study.store import Store


def default_output(name: str, suffix: str) -> Path:
    """STUDY.png (or .html) in the working directory; a slash in the name does not make a folder."""
    return Path(name.replace("/", "_").replace("\\", "_") + suffix)


def _check_folder(path: Path) -> None:
    folder = path.parent
    if not folder.is_dir():
        raise ValueError(f"cannot write {path}: folder {folder} does not exist; create it or choose another -o")


def plot_command(name: str, store_path: Path, output: Path | None, metric: str) -> None:
    """Save the study's picture: overlaid curves (caviar) or the one curve with its changes (babysit)."""
    from research.report import check_metric, picture_format, plot_study

    with user_errors():
        check_metric(metric)
        path = output or default_output(name, ".png")
        picture_format(path)
        _check_folder(path)
        with Store(store_path, create=False) as store:
            written = plot_study(store, store.study(name), path, metric)
    out.print(f"wrote {written}", highlight=False, markup=False, soft_wrap=True)


def report_command(name: str, store_path: Path, output: Path | None) -> None:
    """Write the study's report as one self-contained HTML file."""
    from research.reporthtml import check_html_path, write_report

    with user_errors():
        path = check_html_path(output or default_output(name, ".html"))
        _check_folder(path)
        with Store(store_path, create=False) as store:
            written = write_report(store, store.study(name), path)
    out.print(f"wrote {written}", highlight=False, markup=False, soft_wrap=True)

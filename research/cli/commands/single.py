"""`research train` without a strategy: one model, a progress bar and its learning curve."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from research.cli.console import INTERRUPTED, TERMINATED, Terminal, Terminated, echo_json, stop_word
from research.contracts import TrialInfo
from research.nn.config import UnknownParameterError
from research.report.files import check_output
from research.study.objective import Objective
from research.study.provenance import anchored, file_digests
from research.study.spec import StudyOptions, with_study_hint
from research.study.trainer import declared_metrics, divergence, make_trainer, resume_run, run_trainer

FORMATS = {"lr": ".3g", "seconds": ".2f"}  # every other metric: .4f


def epoch_table(history: list[dict[str, float]]) -> Table:
    """One row per epoch, a column per metric the trainer reported (in its order)."""
    names = list(dict.fromkeys(name for metrics in history for name in metrics))
    table = Table(title="learning curve")
    table.add_column("epoch", justify="right")
    for name in names:
        table.add_column("s" if name == "seconds" else name.replace("_", " "), justify="right")
    for epoch, metrics in enumerate(history, start=1):
        table.add_row(str(epoch), *[format(metrics[n], FORMATS.get(n, ".4f")) if n in metrics else "-" for n in names])
    return table


def _show_finished(term: Terminal, trainer: Any, ending: dict[str, str], as_json: bool) -> None:
    """The epochs a run that stopped early finished, as the finished run's are (a table, or the
    JSON document with its ``ending``, the status and error): without a checkpoint nothing else
    keeps them."""
    if not trainer.history:
        return
    if as_json:
        echo_json({**ending, "config": trainer.config, "history": trainer.history})
    else:
        term.out.print(epoch_table(trainer.history))


def train_one(term: Terminal, options: StudyOptions, *, checkpoint: Path | None, as_json: bool) -> None:
    """Train one model from options.base; exit 1 if it diverged, 130 if interrupted. With a
    checkpoint, its declared paths are anchored as a study's are (research.study.provenance)
    and their files' digests recorded: the same flags given in another directory, where a
    relative path names another file, are refused instead of resuming on that file, and so is
    a file changed in place. Without one, they stay as given, and so do the errors that name
    them."""
    err = term.err
    if checkpoint is not None:  # a typo in the folder is refused before training, not made into folders
        check_output(checkpoint, options.store, "--checkpoint")  # nor the store, nor a file research keeps
    base = anchored(options.base, term.plugins) if checkpoint is not None else options.base
    objective = Objective.make(options.metric, options.direction, known=declared_metrics(term.plugins, base))
    try:
        trainer = make_trainer(base, term.plugins)
    except UnknownParameterError as err:  # `trails = 8` in a study.toml without a strategy
        raise with_study_hint(err, alone=True) from None
    files = file_digests(base, term.plugins) if checkpoint is not None else None
    if checkpoint is not None and checkpoint.exists():
        resume_run(trainer, checkpoint, files)
        err.print(f"resuming from {checkpoint} at epoch {trainer.epoch}", highlight=False)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    try:
        with Progress(*columns, console=err, disable=as_json) as progress:
            task = progress.add_task("training", total=trainer.epochs, completed=trainer.epoch)

            def show(epoch: int, metrics: dict[str, float]) -> None:
                shown = [n for n in ("val_acc", "val_loss") if n in metrics] or list(metrics)[:2]
                progress.update(task, completed=epoch, description="  ".join(
                    f"{n.replace('_', ' ')} {metrics[n]:.4f}" for n in shown))

            trial = TrialInfo(study=None, number=0, config=trainer.config)
            result = run_trainer(trainer, trial, term.plugins, on_epoch=show, checkpoint_path=checkpoint,
                                 files=files)
    except KeyboardInterrupt as stop:  # the epochs it finished are shown: without a checkpoint, nothing else keeps them
        _show_finished(term, trainer, {"status": "interrupted"}, as_json)
        kept = (f"; resume with --checkpoint {checkpoint}" if checkpoint and checkpoint.exists() else
                f"; no epoch finished, so nothing was written to {checkpoint}" if checkpoint else
                "; nothing more is kept: with --checkpoint FILE a run can resume")
        err.print(f"{stop_word(stop)} after epoch {trainer.epoch}{kept}", highlight=False)
        raise typer.Exit(TERMINATED if isinstance(stop, Terminated) else INTERRUPTED) from None
    except Exception as error:  # a trainer's failure: its error line follows the epochs it finished
        _show_finished(term, trainer, {"status": "failed", "error": f"{type(error).__name__}: {error}"}, as_json)
        raise
    term.warn_problems()
    if as_json:
        echo_json({"status": result.status, "config": result.config, "history": result.history})
    else:
        term.out.print(epoch_table(result.history))
        reported = [m[objective.metric] for m in result.history if objective.metric in m]
        best = objective.best([value for value in reported if math.isfinite(value)])  # NaN is no value
        shown = "none (no epoch trained)" if best is None else f"{best:.4f}"
        if reported and best is None:
            shown = "none (every value was NaN or infinite)"
        if not reported and result.history:  # a trainer that does not declare its metrics
            shown = f"not reported (it reports {', '.join(result.history[-1])}; choose one with --metric)"
        term.out.print(f"{result.status}: best {objective.metric.replace('_', ' ')} {shown}")
    if result.status == "diverged":
        err.print(divergence(trainer, base, term.plugins), highlight=False, markup=False, soft_wrap=True)
        raise typer.Exit(1)

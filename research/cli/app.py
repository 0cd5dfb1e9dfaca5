"""The `research` command line: a thin typer layer over the Python API.

Commands are declared here; their implementations live in research/cli/commands/ and are
imported when they run, so `research --version` imports nothing heavy. ``research train``
is built from the plugins' declarations (research/cli/train.py), and plugins add commands
of their own (the ``register_commands`` hook). Errors: research/cli/console.py.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from research import __version__
from research.cli.console import Terminal, legible_in_any_locale, stop_on_sigterm, stopped, terminal
from research.cli.group import ResearchGroup
from research.defaults import DEFAULTS, MAX_CONFIRMED, STORE
from research.errors import DEBUG_ENV

app = typer.Typer(
    cls=ResearchGroup,
    help="Hyperparameter research on small neural networks.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

StoreOption = Annotated[Path, typer.Option("--store", help="The SQLite store file.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print plain JSON on stdout.")]
StudyArgument = Annotated[str, typer.Argument(help="The study.")]
MAX_PREVIEW_DRAWS = 100_000  # `research sample` draws them one by one: about 4 s
MAX_PREVIEW_BINS = 1_000


class OneLineFormatter(logging.Formatter):
    """A log record as one line: its message's first, without the traceback attached."""

    def format(self, record: logging.LogRecord) -> str:
        record.message = record.getMessage()
        return (self.formatMessage(record).splitlines() or [""])[0]


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"research {__version__}")
        raise typer.Exit()


def _set_for_the_command(ctx: typer.Context, name: str, value: str) -> None:
    """Set environment variable ``name`` until the command ends (as it was before then)."""
    before = os.environ.get(name)
    os.environ[name] = value

    def restore() -> None:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before

    ctx.call_on_close(restore)


@app.callback()
def root(
    ctx: typer.Context,
    version: Annotated[
        Optional[bool],
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
) -> None:
    """Hyperparameter research on small neural networks."""
    ctx.obj = Terminal(debug=debug) if not isinstance(ctx.obj, Terminal) else ctx.obj
    ctx.obj.debug = debug
    # Warnings only, with --debug too: its promise is tracebacks, not every library's DEBUG records.
    logging.basicConfig(level=logging.WARNING, format="warning: %(message)s")
    if debug:  # failed trials carry their tracebacks, in this process and those it starts
        _set_for_the_command(ctx, DEBUG_ENV, "1")
    else:  # a library's record, a traceback attached, is one line too (--debug shows it whole)
        for handler in logging.getLogger().handlers:
            handler.setFormatter(OneLineFormatter("warning: %(message)s"))
    if os.environ.get("RESEARCH_KERNELS"):
        import research.kernels  # noqa: F401  (a set the CPU cannot run: one line here, not a plugin failing to load)


@app.command("plugins")
def list_plugins(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List every plugin, what it registers and where it comes from."""
    from research.cli.commands.inspect import show_plugins

    show_plugins(terminal(ctx), as_json)


@app.command()
def sample(
    ctx: typer.Context,
    space: Annotated[Optional[list[str]], typer.Option("--space", help="NAME=DEFINITION, e.g. beta=log1m:0.9..0.999.")] = None,
    n: Annotated[int, typer.Option("-n", help="How many configurations to draw (at most 100,000).")] = 1000,
    sampler: Annotated[str, typer.Option(help="Sampler plugin.")] = DEFAULTS["sampler"],
    sampler_opt: Annotated[Optional[list[str]], typer.Option("--sampler-opt", help="Sampler option key=value.")] = None,
    optimizer: Annotated[str, typer.Option(help="Without --space: preview this optimizer's default space.")] = DEFAULTS["optimizer"],
    seed: Annotated[int, typer.Option(help="Seed of the draws.")] = 0,
    bins: Annotated[int, typer.Option(help="Histogram bins (at most 1,000).")] = 10,
    as_json: JsonOption = False,
) -> None:
    """Preview what a sampler draws: a histogram per parameter on its own scale."""
    from research.cli.commands.inspect import preview_samples
    from research.cli.train import parse_pairs
    from research.errors import UsageError

    if not 1 <= n <= MAX_PREVIEW_DRAWS:
        raise UsageError(f"-n must be from 1 to {MAX_PREVIEW_DRAWS:,} (a preview; a study draws as many as it needs), "
                         f"got {n}")
    if not 1 <= bins <= MAX_PREVIEW_BINS:
        raise UsageError(f"--bins must be from 1 to {MAX_PREVIEW_BINS:,}, got {bins}")
    preview_samples(terminal(ctx), space or [], n, sampler, parse_pairs(sampler_opt, "--sampler-opt"), optimizer,
                    seed, bins, as_json)


@app.command()
def resume(
    ctx: typer.Context,
    name: StudyArgument,
    store: StoreOption = Path(STORE),
    trials: Annotated[Optional[int], typer.Option(help="A new trial budget (default: the study's).")] = None,
    max_minutes: Annotated[Optional[float], typer.Option(help="A new budget of minutes (default: the study's).")] = None,
    max_epochs: Annotated[Optional[int], typer.Option(help="A new budget of epochs (default: the study's).")] = None,
    no_budget: Annotated[bool, typer.Option(
        "--no-budget", help="Lift the study's budgets of minutes and epochs, for this run and the next.")] = False,
    workers: Annotated[Optional[int], typer.Option(
        help="Trials side by side, kept with the study (default: the study's, else one per core).")] = None,
    executor: Annotated[Optional[str], typer.Option(help=f"Executor plugin (default: {DEFAULTS['executor']}).")] = None,
    executor_opt: Annotated[Optional[list[str]], typer.Option(help="Executor option key=value.")] = None,
    retry_failed: Annotated[bool, typer.Option(
        "--retry-failed", help="Resume the failed trials too, from their last checkpoint (once their cause is fixed)."
    )] = False,
    plot: Annotated[Optional[Path], typer.Option(
        help="Where to save the study's picture \\[default: STUDY-curves.png].")] = None,
    as_json: JsonOption = False,
) -> None:
    """Continue a study with its stored settings (after Ctrl-C, a kill, or to raise its budget)."""
    from research.cli.commands.studies import resume_study

    resume_study(terminal(ctx), name, store, trials=trials, workers=workers, executor=executor,
                 executor_opt=executor_opt, plot=plot, as_json=as_json, max_minutes=max_minutes, max_epochs=max_epochs,
                 no_budget=no_budget, retry_failed=retry_failed)


YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation (for scripts); by default "
                                                              "it asks, and refuses without a terminal.")]


@app.command()
def delete(ctx: typer.Context, name: StudyArgument, store: StoreOption = Path(STORE), yes: YesOption = False) -> None:
    """Delete a study: its trials, curves, events and checkpoints."""
    from research.cli.commands.studies import delete_command

    delete_command(terminal(ctx), name, store, yes)


@app.command()
def rename(
    ctx: typer.Context,
    old: Annotated[str, typer.Argument(help="The study.")],
    new: Annotated[str, typer.Argument(help="Its new name.")],
    store: StoreOption = Path(STORE),
    yes: YesOption = False,
) -> None:
    """Give a study another name."""
    from research.cli.commands.studies import rename_command

    rename_command(terminal(ctx), old, new, store, yes)


@app.command()
def studies(ctx: typer.Context, store: StoreOption = Path(STORE), as_json: JsonOption = False) -> None:
    """List the studies in the store with their trial counts."""
    from research.cli.commands.inspect import list_studies

    list_studies(terminal(ctx), store, as_json)


@app.command()
def show(
    ctx: typer.Context,
    name: StudyArgument,
    store: StoreOption = Path(STORE),
    top: Annotated[Optional[int], typer.Option(help="Show only the best N trials.")] = None,
    as_json: JsonOption = False,
) -> None:
    """The ranked trials of a study with their configurations and best metrics."""
    from research.cli.commands.inspect import show_study

    show_study(terminal(ctx), name, store, top, as_json)


@app.command("export")
def export_study(
    ctx: typer.Context,
    name: StudyArgument,
    store: StoreOption = Path(STORE),
    format: Annotated[Optional[str], typer.Option(
        "--format", help="csv or json \\[default: json for an -o file named .json, else csv].")] = None,
    output: Annotated[Optional[Path], typer.Option("-o", "--output",
                                                   help="Write here instead of stdout (-: stdout).")] = None,
) -> None:
    """Every epoch of every trial as CSV or JSON."""
    from research.cli.commands.inspect import export_to

    export_to(terminal(ctx), name, store, format, output)


@app.command()
def confirm(
    ctx: typer.Context,
    name: StudyArgument,
    store: StoreOption = Path(STORE),
    top: Annotated[int, typer.Option("--top", help="How many of the best trials to train again (at most 100).",
                                     min=1, max=MAX_CONFIRMED)] = 3,
    seeds: Annotated[int, typer.Option("--seeds", help="New seeds for each of them (at most 100).", min=1,
                                       max=MAX_CONFIRMED)] = 5,
    workers: Annotated[Optional[int], typer.Option(help="Trials side by side \\[default: one per core].")] = None,
    executor: Annotated[Optional[str], typer.Option(help=f"Executor plugin \\[default: {DEFAULTS['executor']}].")] = None,
    executor_opt: Annotated[Optional[list[str]], typer.Option("--executor-opt",
                                                              help="Executor option key=value.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Train the study's best trials again with new seeds: is the winner luck?"""
    from research.cli.commands.studies import confirm_command

    confirm_command(terminal(ctx), name, store, top=top, seeds=seeds, workers=workers, executor=executor,
                    executor_opt=executor_opt, as_json=as_json)


@app.command("export-model")
def export_model(
    ctx: typer.Context,
    name: StudyArgument,
    store: StoreOption = Path(STORE),
    trial: Annotated[Optional[int], typer.Option("--trial", help="The trial \\[default: the study's best].")] = None,
    output: Annotated[Optional[Path], typer.Option("-o", "--output",
                                                   help="The model file \\[default: STUDY-trial-N.npz].")] = None,
) -> None:
    """A trial's model as it was after its best epoch, as a file research.load_model reads."""
    from research.cli.commands.kept import export_model_command

    export_model_command(terminal(ctx), name, store, trial, output)


@app.command()
def log(ctx: typer.Context, name: StudyArgument, store: StoreOption = Path(STORE), as_json: JsonOption = False) -> None:
    """The events of a study in order, as its strategy describes them."""
    from research.cli.commands.events import show_log

    show_log(terminal(ctx), name, store, as_json)


@app.command()
def plot(
    ctx: typer.Context,
    name: StudyArgument,
    store: StoreOption = Path(STORE),
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="A .png or .svg file \\[default: STUDY.png].")] = None,
    metric: Annotated[Optional[str], typer.Option(
        help="val_acc, val_loss, train_acc, train_loss, lr, or a metric the study's trainer reported "
             "\\[default: the study's metric, unless its strategy's own picture draws another].")] = None,
) -> None:
    """Plot a study: its strategy's picture, or the overlaid learning curves of its trials."""
    from research.cli.commands.reports import plot_command

    plot_command(terminal(ctx), name, store, output, metric)


@app.command()
def importance(
    ctx: typer.Context,
    name: StudyArgument,
    store: StoreOption = Path(STORE),
    quantile: Annotated[float, typer.Option(help="The share of the trials that counts as the top "
                                                 "(at least 3 trials).")] = 0.1,
    as_json: JsonOption = False,
) -> None:
    """Which searched hyperparameters mattered: each one's share, with its uncertainty (PED-ANOVA)."""
    from research.cli.commands.importance import show_importance

    show_importance(terminal(ctx), name, store, quantile, as_json)


@app.command()
def report(
    ctx: typer.Context,
    name: StudyArgument,
    store: StoreOption = Path(STORE),
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="The HTML file \\[default: STUDY.html].")] = None,
) -> None:
    """One self-contained HTML report: ranked table, curves, score against each hyperparameter."""
    from research.cli.commands.reports import report_command

    report_command(terminal(ctx), name, store, output)


def main() -> None:
    """Console-script entry point: SIGTERM stops a command as Ctrl-C does; any locale reads
    the arguments as typed and prints every character."""
    stop_on_sigterm()
    try:
        app(args=legible_in_any_locale(sys.argv[1:]))
    except KeyboardInterrupt as stop:  # while typer builds the command line, before any command runs
        raise SystemExit(stopped(stop).exit_code) from None

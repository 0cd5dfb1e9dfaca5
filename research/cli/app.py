"""The `research` command line: a thin typer layer over the Python API.

Errors are one line on stderr with the fix; exit codes: 0 ok, 1 failed run, 2 bad usage or
input, 130 interrupted. ``--debug`` shows tracebacks.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape

from research import __version__

app = typer.Typer(
    help="Hyperparameter research on small neural networks.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
out = Console()
err = Console(stderr=True)
for _console in (out, err):
    if not _console.is_terminal:  # piped or captured: room for wide tables instead of 80 columns
        _console.width = 160
STATE = {"debug": False}
DEFAULT_STORE = Path("research.db")

StoreOption = Annotated[Path, typer.Option("--store", help="The SQLite store file.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print plain JSON on stdout.")]


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``error: message`` on stderr and return the Exit to raise."""
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the errors users cause into one line and exit code 2 (tracebacks with --debug)."""
    from research.nn.checkpoint import CheckpointError
    from research.nn.config import ConfigError
    from research.data import DatasetError
    from research.plugins import PluginError
    from research.space import SpaceError
    from research.study.store import StoreError

    expected = (ConfigError, PluginError, DatasetError, SpaceError, CheckpointError, StoreError,
                ValueError, TypeError, OSError, sqlite3.Error)
    try:
        yield
    except expected as error:
        if STATE["debug"]:
            raise
        text = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise fail(text) from None


def parse_pairs(pairs: list[str] | None, flag: str) -> dict[str, str]:
    """``key=value`` strings from a repeatable option into a dict."""
    result: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise fail(f"cannot read {flag} '{pair}'; write key=value, e.g. {flag} beta1=0.95")
        result[key.strip()] = value.strip()
    return result


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"research {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        Optional[bool],
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
) -> None:
    """Hyperparameter research on small neural networks."""
    STATE["debug"] = debug
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING, format="warning: %(message)s")


@app.command()
def train(
    strategy: Annotated[Optional[str], typer.Option(help="Train many models: caviar; omit to train one model.")] = None,
    optimizer: Annotated[Optional[str], typer.Option(help="Optimizer plugin (see `research plugins`).")] = None,
    lr: Annotated[Optional[float], typer.Option(help="Learning rate (the optimizer's default if omitted).")] = None,
    layers: Annotated[Optional[int], typer.Option(help="Hidden layers [default: 2].")] = None,
    hidden: Annotated[Optional[int], typer.Option(help="Units per hidden layer [default: 128].")] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", help="Mini-batch size [default: 64].")] = None,
    epochs: Annotated[Optional[int], typer.Option(help="Epochs per model [default: 20; caviar: 15].")] = None,
    dataset: Annotated[Optional[str], typer.Option(help="digits (built in), spirals, moons, blobs, npz, csv.")] = None,
    schedule: Annotated[Optional[str], typer.Option(help="Learning-rate schedule plugin [default: constant].")] = None,
    batchnorm: Annotated[Optional[bool], typer.Option("--batchnorm/--no-batchnorm", help="Batchnorm in hidden layers.")] = None,
    dtype: Annotated[Optional[str], typer.Option(help="float32 or float64.")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Seed (of the model, or of the whole study).")] = None,
    opt: Annotated[Optional[list[str]], typer.Option("--opt", help="Optimizer or schedule option key=value.")] = None,
    dataset_opt: Annotated[Optional[list[str]], typer.Option("--dataset-opt", help="Dataset option key=value.")] = None,
    checkpoint: Annotated[Optional[Path], typer.Option(help="One model: checkpoint after every epoch; resume from it.")] = None,
    space: Annotated[Optional[list[str]], typer.Option("--space", help="NAME=DEFINITION, e.g. lr=log:1e-4..1.")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", help="A study.toml with options and [space.NAME] tables.")] = None,
    trials: Annotated[Optional[int], typer.Option(help="Trials in the study [default: 32].")] = None,
    workers: Annotated[Optional[int], typer.Option(help="Trials side by side [default: one per core].")] = None,
    sampler: Annotated[Optional[str], typer.Option(help="random, coarse-to-fine, latin-hypercube, grid.")] = None,
    sampler_opt: Annotated[Optional[list[str]], typer.Option("--sampler-opt", help="Sampler option key=value.")] = None,
    executor: Annotated[Optional[str], typer.Option(help="process (default), serial or dask.")] = None,
    executor_opt: Annotated[Optional[list[str]], typer.Option("--executor-opt", help="Executor option key=value.")] = None,
    prune: Annotated[Optional[str], typer.Option(help="Caviar: stop losing trials early: asha, median, none.")] = None,
    prune_opt: Annotated[Optional[list[str]], typer.Option("--prune-opt", help="Pruner option key=value.")] = None,
    study: Annotated[Optional[str], typer.Option(help="Study name; an existing study is resumed.")] = None,
    store: Annotated[Optional[Path], typer.Option("--store", help="The SQLite store [default: research.db].")] = None,
    plot: Annotated[Optional[Path], typer.Option(help="Where to save the learning curves [default: STUDY-curves.png].")] = None,
    segment_epochs: Annotated[Optional[int], typer.Option("--segment-epochs", help="Babysit: epochs per segment.")] = None,
    segments: Annotated[Optional[int], typer.Option(help="Babysit: segments (days) to train.")] = None,
    interactive: Annotated[bool, typer.Option("--interactive", help="Babysit: ask what to do after each segment.")] = False,
    policy: Annotated[Optional[str], typer.Option(help="Babysit: automatic policy, auto or none.")] = None,
    strategy_opt: Annotated[Optional[list[str]], typer.Option("--strategy-opt", help="Strategy option key=value.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON instead of tables.")] = False,
) -> None:
    """Train one model from flags, or many with --strategy caviar."""
    from research.study.spec import StudyOptions, build_study_options

    flags = {
        "strategy": strategy, "optimizer": optimizer, "lr": lr, "layers": layers, "hidden": hidden,
        "batch_size": batch_size, "epochs": epochs, "dataset": dataset, "schedule": schedule,
        "batchnorm": batchnorm, "dtype": dtype, "seed": seed, "trials": trials, "workers": workers,
        "sampler": sampler, "executor": executor, "study": study, "store": store, "prune": prune,
    }
    extras = {
        "opt": parse_pairs(opt, "--opt"), "dataset_options": parse_pairs(dataset_opt, "--dataset-opt"),
        "sampler_options": parse_pairs(sampler_opt, "--sampler-opt"),
        "executor_options": parse_pairs(executor_opt, "--executor-opt"), "space": space or [],
        "prune_options": parse_pairs(prune_opt, "--prune-opt"),
        "strategy_options": {
            **parse_pairs(strategy_opt, "--strategy-opt"),
            **{k: v for k, v in {"segment_epochs": segment_epochs, "segments": segments, "policy": policy,
                                 "interactive": interactive or None}.items() if v is not None},
        },
    }
    with user_errors():
        options: StudyOptions = build_study_options(flags, extras, config)
    if options.strategy is None:
        from research.cli.commands.single import train_one

        train_one(options, checkpoint=checkpoint, as_json=as_json)
    else:
        from research.cli.commands.studies import run_study

        run_study(options, plot=plot, as_json=as_json)


@app.command("plugins")
def list_plugins(as_json: JsonOption = False) -> None:
    """List every plugin, what it registers and where it comes from."""
    from research.cli.commands.inspect import show_plugins

    show_plugins(as_json)


@app.command()
def sample(
    space: Annotated[Optional[list[str]], typer.Option("--space", help="NAME=DEFINITION, e.g. beta=log1m:0.9..0.999.")] = None,
    n: Annotated[int, typer.Option("-n", help="How many configurations to draw.")] = 1000,
    sampler: Annotated[str, typer.Option(help="Sampler plugin.")] = "random",
    sampler_opt: Annotated[Optional[list[str]], typer.Option("--sampler-opt", help="Sampler option key=value.")] = None,
    optimizer: Annotated[str, typer.Option(help="Without --space: preview this optimizer's default space.")] = "adam",
    seed: Annotated[int, typer.Option(help="Seed of the draws.")] = 0,
    bins: Annotated[int, typer.Option(help="Histogram bins.")] = 10,
    as_json: JsonOption = False,
) -> None:
    """Preview what a sampler draws: a histogram per parameter on its own scale."""
    from research.cli.commands.inspect import preview_samples

    if n < 1 or bins < 1:
        raise fail("-n and --bins must be at least 1")
    preview_samples(space or [], n, sampler, parse_pairs(sampler_opt, "--sampler-opt"), optimizer, seed, bins, as_json)


@app.command()
def studies(store: StoreOption = DEFAULT_STORE, as_json: JsonOption = False) -> None:
    """List the studies in the store with their trial counts."""
    from research.cli.commands.inspect import list_studies

    list_studies(store, as_json)


@app.command()
def show(
    name: Annotated[str, typer.Argument(help="The study.")],
    store: StoreOption = DEFAULT_STORE,
    top: Annotated[Optional[int], typer.Option(help="Show only the best N trials.")] = None,
    as_json: JsonOption = False,
) -> None:
    """The ranked trials of a study with their configurations and best metrics."""
    from research.cli.commands.inspect import show_study

    show_study(name, store, top, as_json)


@app.command("export")
def export_study(
    name: Annotated[str, typer.Argument(help="The study.")],
    store: StoreOption = DEFAULT_STORE,
    format: Annotated[str, typer.Option("--format", help="csv or json.")] = "csv",
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="Write here instead of stdout.")] = None,
) -> None:
    """Every epoch of every trial as CSV or JSON."""
    from research.cli.commands.inspect import export_to

    export_to(name, store, format, output)


@app.command("set")
def set_hyper(
    name: Annotated[str, typer.Argument(help="The babysit study.")],
    assignment: Annotated[str, typer.Argument(metavar="NAME=VALUE", help="e.g. lr=0.003")],
    store: StoreOption = DEFAULT_STORE,
) -> None:
    """Change a hyperparameter of a running babysit study at its next segment boundary."""
    from research.cli.commands.remote import send

    send(name, store, "set", assignment)


@app.command()
def rollback(name: Annotated[str, typer.Argument(help="The babysit study.")], store: StoreOption = DEFAULT_STORE) -> None:
    """Undo the last segment of a running babysit study at its next boundary."""
    from research.cli.commands.remote import send

    send(name, store, "rollback")


@app.command()
def stop(name: Annotated[str, typer.Argument(help="The babysit study.")], store: StoreOption = DEFAULT_STORE) -> None:
    """Stop a running babysit study cleanly at its next segment boundary."""
    from research.cli.commands.remote import send

    send(name, store, "stop")


@app.command()
def log(
    name: Annotated[str, typer.Argument(help="The study.")],
    store: StoreOption = DEFAULT_STORE,
    as_json: JsonOption = False,
) -> None:
    """The events of a study in order: segments, changes, rollbacks, commands."""
    from research.cli.commands.remote import show_log

    show_log(name, store, as_json)


@app.command()
def plot(
    name: Annotated[str, typer.Argument(help="The study.")],
    store: StoreOption = DEFAULT_STORE,
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="A .png or .svg file [default: STUDY.png].")] = None,
    metric: Annotated[str, typer.Option(help="val_acc, val_loss, train_acc, train_loss or lr.")] = "val_acc",
) -> None:
    """Plot a study: overlaid curves (caviar) or the one curve with its changes (babysit)."""
    from research.cli.commands.reports import plot_command

    plot_command(name, store, output, metric)


@app.command()
def report(
    name: Annotated[str, typer.Argument(help="The study.")],
    store: StoreOption = DEFAULT_STORE,
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="The HTML file [default: STUDY.html].")] = None,
) -> None:
    """One self-contained HTML report: ranked table, curves, score against each hyperparameter."""
    from research.cli.commands.reports import report_command

    report_command(name, store, output)


def main() -> None:
    """Console-script entry point."""
    app()

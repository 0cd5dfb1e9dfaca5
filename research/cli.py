"""The `research` command line: a thin typer layer over the Python API."""

from typing import Annotated, Optional

import typer

from research import __version__

app = typer.Typer(
    help="Hyperparameter research on small neural networks.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


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
) -> None:
    """Hyperparameter research on small neural networks."""


def main() -> None:
    """Console-script entry point."""
    app()

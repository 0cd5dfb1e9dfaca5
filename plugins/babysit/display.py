"""Babysit's terminal display: a line per epoch, a note for every change, and the prompt of
interactive mode with a one-line picture of the curve so far."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from rich.console import Console


def fmt(value: Any) -> str:
    """A number to 4 significant digits (non-finite ones as they are), anything else as text."""
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    return "-" if value is None else str(value)


def sparkline(values: list[float | None]) -> str:
    """A one-line picture of a curve: one block character per value, NaN as a space."""
    blocks = "▁▂▃▄▅▆▇█"
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return ""
    low, high = min(finite), max(finite)
    span = (high - low) or 1.0
    return "".join(" " if v is None or not math.isfinite(v) else blocks[int((v - low) / span * 7)]
                   for v in values) + f"  ({low:.4f} .. {high:.4f})"


class BabysitConsole:
    """A reporter (research.contracts.Reporter) for one babysat model; ``ask`` reads the
    user's answer at the prompt."""

    def __init__(self, console: Console, ask: Callable[[str], str]):
        self.console = console
        self.ask = ask

    def trial_started(self, number: int, config: dict[str, Any]) -> None:
        pass

    def epoch_done(self, number: int, epoch: int, metrics: dict[str, float]) -> None:
        shown = [n for n in ("train_loss", "val_loss", "val_acc", "lr") if n in metrics] or \
            [n for n in metrics if n != "seconds"]
        widths = {"train_loss": 8, "val_loss": 8, "val_acc": 7}
        self.console.print(f"epoch {epoch:>4}  " + "  ".join(
            f"{n.replace('_', ' ')} {fmt(metrics[n]):>{widths.get(n, 0)}}" for n in shown), highlight=False)

    def trial_ended(self, number: int, status: str, error: str | None) -> None:
        self.console.print("babysitting stopped" if status == "interrupted" else f"babysitting {status}",
                           highlight=False)

    def note(self, text: str) -> None:
        self.console.print(f"  -> {text}", highlight=False, markup=False)

    def prompt(self, summary: str, choices: str) -> str:
        self.console.print(summary, highlight=False, markup=False)
        return self.ask(choices)

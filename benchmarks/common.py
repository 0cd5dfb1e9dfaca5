"""Helpers shared by the end-to-end benchmarks: timing, statistics, plain-text tables, and
their command lines (checked counts, --quick's values, one-line errors).

The machines these run on are small and shared (2 cores, other jobs running), so every
benchmark reports medians over repeats, measures the things it compares in the same run
(interleaved where possible), and prints the load average so a reader can judge the noise.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

__all__ = [
    "at_least",
    "environment",
    "format_table",
    "median",
    "positive",
    "print_table",
    "quick_or",
    "rate",
    "refuse",
    "run",
    "spread",
    "time_interleaved",
    "timed",
]


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def spread(values: Sequence[float]) -> tuple[float, float]:
    """(25th, 75th) percentiles, a noise indicator robust to the odd descheduled repeat."""
    if len(values) < 2:
        v = values[0] if values else float("nan")
        return v, v
    q = statistics.quantiles(values, n=4, method="inclusive")
    return q[0], q[2]


def rate(seconds: float) -> float:
    """Events per second from seconds per event."""
    return 1.0 / seconds if seconds > 0 else float("inf")


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """(wall seconds, result) of one call."""
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def time_interleaved(
    variants: dict[str, Callable[[], Any]], *, warmup: int, repeats: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """(wall seconds, CPU seconds) per call of each variant, calls interleaved round-robin.

    Each round calls every variant once, in an order rotated every round, so a burst of
    load from another process hits all variants alike rather than one of them. The first
    ``warmup`` rounds are discarded. CPU seconds (``time.process_time``, all threads of
    this process) leave out the time the process waited for a core, so on a loaded
    machine they are the steadier measure of the work done.
    """
    names = list(variants)
    wall: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(warmup + repeats):
        k = round_ % len(names)
        for name in names[k:] + names[:k]:
            c0, w0 = time.process_time(), time.perf_counter()
            variants[name]()
            w1, c1 = time.perf_counter(), time.process_time()
            if round_ >= warmup:
                wall[name].append(w1 - w0)
                cpu[name].append(c1 - c0)
    return wall, cpu


def environment() -> str:
    """One line on where the numbers come from: CPU count, load average, versions."""
    import numpy as np

    try:
        load = "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    except OSError:
        load = "load average n/a"
    return (
        f"{platform.machine()} {os.cpu_count()} cpus, {load}; python {platform.python_version()}, "
        f"numpy {np.__version__}"
    )


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, floatfmt: str = ".3g") -> str:
    """A plain-text table, numbers right-aligned, ready to paste into an issue."""

    def cell(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, float):
            return format(value, floatfmt)
        return str(value)

    text = [[cell(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in text]) for i, h in enumerate(headers)]
    numeric = [any(isinstance(row[i], (int, float)) for row in rows)
               and all(isinstance(row[i], (int, float)) or row[i] in ("", None) for row in rows)
               for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)).rstrip()

    out = [line(list(headers)), line(["-" * w for w in widths])]
    out += [line(r) for r in text]
    return "\n".join(out)


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], *, title: str | None = None,
                floatfmt: str = ".3g") -> None:
    if title:
        print(title)
    print(format_table(headers, rows, floatfmt=floatfmt))
    print()
    sys.stdout.flush()


def at_least(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number >= ``minimum`` (argparse refuses anything else in one line)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}, got {value}")
        return value

    return parse


def positive(text: str) -> float:
    """An argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text}")
    return value


def quick_or(args: argparse.Namespace, quick: dict[str, Any], full: dict[str, Any]) -> None:
    """Fill the options left out (None): their ``quick`` values with --quick, else their ``full``
    ones. An option given wins over --quick (--quick --trials 4 runs 4 trials)."""
    for name, value in full.items():
        if getattr(args, name) is None:
            setattr(args, name, quick.get(name, value) if args.quick else value)


OPTIONAL = {"torch", "optuna", "sklearn", "scipy", "mlxtend", "dask", "distributed", "starlette", "uvicorn",
            "plotly", "httpx2"}
"""Packages a benchmark may need beyond research's own: the bench extra's."""


def run(main: Callable[[], None]) -> None:
    """Run a benchmark's ``main`` as `research` runs a command: a mistake research refuses (a
    bad option, ``RESEARCH_KERNELS=foo``) or a package of the bench extra that is missing is one
    line and exit code 2; Ctrl-C is exit code 130."""
    from research.errors import ResearchError

    try:
        if os.environ.get("RESEARCH_KERNELS"):  # said as itself, not as the plugins failing to load
            from research import kernels

            kernels.isa()
        main()
    except ResearchError as err:
        refuse(str(err))
    except ModuleNotFoundError as err:
        if (err.name or "").split(".")[0] not in OPTIONAL:
            raise
        refuse(f"this benchmark needs {err.name}, which the bench extra installs: pip install -e '.[bench]'")
    except KeyboardInterrupt:
        sys.exit(130)


def refuse(message: str) -> None:
    """``error: message`` on standard error, exit code 2: a mistake of input, as `research` says one."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)

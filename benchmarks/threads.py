"""Threads: two Python threads running kernels side by side, against one thread.

What is measured
    For each size (float32 values per array), the wall time of `calls` adam_update calls on
    one set of arrays (param, grad, m, v) in one thread, and of the same calls on each of two
    sets in two threads at once; the ratio two/one. The C calls release the GIL, so on two
    free cores the ratio is near 1.0 (a held GIL would make it 2.0); arrays larger than the
    caches share the memory bandwidth (the ratio grows towards 2), and short calls pay for
    handing the GIL over.

    Beside it, the same with a numpy stand-in (five ufuncs, which release the GIL too): it
    says whether the machine could overlap two threads at that moment. On a loaded machine
    both ratios rise together; a research ratio well above numpy's is a finding.

How
    Calls per measurement: enough for about --seconds of work in one thread. Each repeat
    times one thread, then two, for research and numpy in turn; the table shows the best
    (smallest) time of --repeats repeats of each, so a descheduled repeat does not count.

Usage
    python benchmarks/threads.py            # sizes 2^16 ... 2^22, about 20 seconds
    python benchmarks/threads.py --quick    # fewer repeats, shorter measurements
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import at_least, environment, positive, print_table, run

from research import kernels

SIZES = [1 << 16, 1 << 18, 1 << 20, 1 << 22]

State = list[np.ndarray]


def _state(size: int) -> State:
    """param, grad, m, v of `size` float32 values."""
    return [np.full(size, value, np.float32) for value in (1.0, 0.5, 0.0, 0.0)]


def research_adam(state: State) -> None:
    kernels.adam_update(*state, step=1)


def numpy_adam(state: State) -> None:
    """A stand-in of numpy ufuncs, which release the GIL: can the machine overlap two now?"""
    param, grad, m, v = state
    np.multiply(grad, 0.1, out=m)
    np.multiply(grad, grad, out=v)
    np.sqrt(v, out=v)
    np.divide(m, v, out=m)
    np.subtract(param, m, out=param)


def one_and_two(step: Callable[[State], None], calls: int, first: State, second: State):
    """Wall seconds of `calls` steps on first alone, and on first and second in two threads."""

    def work(state: State) -> None:
        for _ in range(calls):
            step(state)

    start = time.perf_counter()
    work(first)
    single = time.perf_counter() - start
    threads = [threading.Thread(target=work, args=(state,)) for state in (first, second)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return single, time.perf_counter() - start


def measure(size: int, seconds: float, repeats: int) -> list:
    states = [_state(size), _state(size)]
    research_adam(states[0])
    start = time.perf_counter()
    for _ in range(5):
        research_adam(states[0])
    call = (time.perf_counter() - start) / 5
    calls = max(1, round(seconds / call))
    best = {name: [float("inf"), float("inf")] for name in ("research", "numpy")}
    for _ in range(repeats):
        for name, step in (("research", research_adam), ("numpy", numpy_adam)):
            single, pair = one_and_two(step, calls, *states)
            best[name] = [min(best[name][0], single), min(best[name][1], pair)]
    (single, pair), (np_single, np_pair) = best["research"], best["numpy"]
    return [
        f"2^{size.bit_length() - 1}",
        f"{4 * size * 4 / 1e6:.1f}",
        f"{call * 1e6:,.1f}",
        calls,
        f"{single * 1e3:.1f}",
        f"{pair * 1e3:.1f}",
        f"{pair / single:.2f}",
        f"{np_pair / np_single:.2f}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, shorter runs")
    parser.add_argument("--seconds", type=positive, help="work per measurement (default 0.15)")
    parser.add_argument("--repeats", type=at_least(1), help="repeats, best kept (default 5)")
    args = parser.parse_args()
    seconds = args.seconds if args.seconds is not None else 0.05 if args.quick else 0.15
    repeats = args.repeats if args.repeats is not None else 3 if args.quick else 5

    print(environment())
    if (os.cpu_count() or 1) < 2:
        print("one CPU: two threads cannot run side by side here; the ratios show time sharing")
    rows = [measure(size, seconds, repeats) for size in SIZES]
    print_table(
        ["size", "MB a thread", "call us", "calls", "one thread ms", "two threads ms",
         "two/one", "numpy two/one"],
        rows,
        title="adam_update float32 in two threads against one (best of "
        f"{repeats}; 1.0 = full overlap, 2.0 = none)",
    )
    print(environment().split("; ")[0])


if __name__ == "__main__":
    run(main)

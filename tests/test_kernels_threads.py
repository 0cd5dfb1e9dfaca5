"""The C kernels release the GIL: Python runs in another thread during a kernel call.

What two threads gain in wall time depends on the machine and its load, so it is measured in
benchmarks/threads.py, not asserted here.
"""

import threading
import time

import numpy as np

from research import kernels

LONG_SIZE = 1 << 23  # 32 MB an array: one call of several milliseconds


def _ticks_during(call) -> tuple[int, float]:
    """How many times the main thread ran while a worker thread made ``call()`` (the first and
    last tenth of the call left out), and how long the call took."""
    inside = []

    def worker():
        start = time.perf_counter()
        call()
        inside.append((start, time.perf_counter()))

    ticks = []
    thread = threading.Thread(target=worker)
    thread.start()
    while thread.is_alive():
        ticks.append(time.perf_counter())
    thread.join()
    start, end = inside[0]
    margin = 0.1 * (end - start)
    return sum(start + margin < t < end - margin for t in ticks), end - start


def test_kernel_call_releases_the_gil():
    """The main thread keeps running Python while a worker thread is inside one kernel call.

    Holds on a single free core too: the scheduler shares it, whereas a held GIL would stop
    the main thread for the whole call.
    """
    state = [np.full(LONG_SIZE, value, np.float32) for value in (1.0, 0.5, 0.0, 0.0)]
    during, seconds = _ticks_during(lambda: kernels.adam_update(*state, step=1))
    assert during > 100, f"main thread ran {during} times in a {seconds:.4f} s kernel call"


def test_a_plan_step_over_large_arrays_releases_the_gil():
    """The plans' step calls its kernels from C (research._step); over as many values, it lets
    go of the GIL as the functions do."""
    plan = kernels.AdamPlan(*([np.full(LONG_SIZE, value, np.float32)] for value in (1.0, 0.5, 0.0, 0.0)))
    during, seconds = _ticks_during(lambda: plan.step(1, 1e-3))
    assert during > 100, f"main thread ran {during} times in a {seconds:.4f} s plan step"

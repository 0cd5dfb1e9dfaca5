"""The C kernels release the GIL: Python runs in another thread during a kernel call.

What two threads gain in wall time depends on the machine and its load, so it is measured in
benchmarks/threads.py, not asserted here.
"""

import threading
import time

import numpy as np

from research import kernels

LONG_SIZE = 1 << 23  # 32 MB an array: one call of several milliseconds


def test_kernel_call_releases_the_gil():
    """The main thread keeps running Python while a worker thread is inside one kernel call.

    Holds on a single free core too: the scheduler shares it, whereas a held GIL would stop
    the main thread for the whole call.
    """
    state = [np.full(LONG_SIZE, value, np.float32) for value in (1.0, 0.5, 0.0, 0.0)]
    inside = []

    def worker():
        start = time.perf_counter()
        kernels.adam_update(*state, step=1)
        inside.append((start, time.perf_counter()))

    ticks = []
    thread = threading.Thread(target=worker)
    thread.start()
    while thread.is_alive():
        ticks.append(time.perf_counter())
    thread.join()
    start, end = inside[0]
    margin = 0.1 * (end - start)
    during = sum(start + margin < t < end - margin for t in ticks)
    assert during > 100, f"main thread ran {during} times in a {end - start:.4f} s kernel call"


def test_a_plan_step_over_large_arrays_releases_the_gil():
    """The plans' step calls its kernels from C (research._step); over as many values, it lets
    go of the GIL as the functions do."""
    state = [np.full(LONG_SIZE, value, np.float32) for value in (1.0, 0.5, 0.0, 0.0)]
    plan = kernels.AdamPlan(*([a] for a in state))
    inside = []

    def worker():
        start = time.perf_counter()
        plan.step(1, 1e-3)
        inside.append((start, time.perf_counter()))

    ticks = []
    thread = threading.Thread(target=worker)
    thread.start()
    while thread.is_alive():
        ticks.append(time.perf_counter())
    thread.join()
    start, end = inside[0]
    margin = 0.1 * (end - start)
    during = sum(start + margin < t < end - margin for t in ticks)
    assert during > 100, f"main thread ran {during} times in a {end - start:.4f} s plan step"

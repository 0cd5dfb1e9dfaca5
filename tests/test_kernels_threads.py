"""The C kernels release the GIL: Python threads run them side by side.

One adam_update on SIZE float32 values takes roughly 100-200 ms, long enough to tell a
released GIL (two threads take about one call's time on two cores) from a held one (two
calls' time). Timings take the best of a few repetitions to be robust to noise.
"""

import os
import threading
import time

import numpy as np
import pytest

from research import kernels

SIZE = 16_000_000
REPEATS = 3
MAX_RATIO = 1.6


@pytest.fixture(scope="module")
def states():
    """Two independent (param, grad, m, v) sets of SIZE float32 values."""
    return [[np.full(SIZE, value, np.float32) for value in (1.0, 0.5, 0.0, 0.0)] for _ in range(2)]


def _adam(state):
    kernels.adam_update(*state, step=1)


def _control(state):
    """numpy ufuncs release the GIL: a reference for what this machine can overlap now."""
    np.sqrt(state[1], out=state[2])
    np.multiply(state[2], state[1], out=state[3])


def _best_times(work, first, second):
    """Best wall times of work(first) alone and of work(first), work(second) in two threads."""
    single = pair = float("inf")
    for _ in range(REPEATS):
        start = time.perf_counter()
        work(first)
        single = min(single, time.perf_counter() - start)
        threads = [threading.Thread(target=work, args=(state,)) for state in (first, second)]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        pair = min(pair, time.perf_counter() - start)
    return single, pair


def test_kernel_call_releases_the_gil(states):
    """The main thread keeps running Python while a worker thread is inside a kernel.

    Holds on one core too: the scheduler shares the core, whereas a held GIL would stop
    the main thread for the whole call.
    """
    inside = []

    def worker():
        start = time.perf_counter()
        _adam(states[0])
        inside.append((start, time.perf_counter()))

    ticks = []
    thread = threading.Thread(target=worker)
    thread.start()
    while thread.is_alive():
        ticks.append(time.perf_counter())
    thread.join()
    start, end = inside[0]
    margin = 0.1 * (end - start)
    during = [t for t in ticks if start + margin < t < end - margin]
    assert len(during) > 100, f"main thread ran {len(during)} times in a {end - start:.3f} s call"


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs at least 2 CPUs")
def test_two_threads_run_kernels_side_by_side(states):
    control_single, control_pair = _best_times(_control, *states)
    if control_pair > MAX_RATIO * control_single:
        pytest.skip(
            f"the machine is busy: two threads of numpy took {control_pair / control_single:.2f}x "
            "one thread"
        )
    single, pair = _best_times(_adam, *states)
    assert pair < MAX_RATIO * single, (
        f"two threads took {pair * 1e3:.0f} ms, one call {single * 1e3:.0f} ms "
        f"({pair / single:.2f}x, want < {MAX_RATIO}x)"
    )

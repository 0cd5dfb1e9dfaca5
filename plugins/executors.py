"""Built-in executors: ``process`` (a pool of worker processes) and ``serial`` (in-process).

An executor is any ``concurrent.futures.Executor``; strategies only submit and wait.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from typing import Any, Callable

from research import hookimpl

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS")


def pin_threads() -> None:
    """Worker initializer: one BLAS/OpenMP thread per worker, since parallelism is across
    trials (two workers each running a multi-threaded BLAS would fight over the cores)."""
    for name in THREAD_VARIABLES:
        os.environ[name] = "1"
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


def process_executor(workers: int = 0, start_method: str = "spawn") -> Executor:
    """A process pool of ``workers`` processes (0: one per core), each pinned to one thread.

    ``spawn`` by default: a fresh interpreter per worker, safe with threads and BLAS.
    """
    workers = int(workers) or os.cpu_count() or 1
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    methods = multiprocessing.get_all_start_methods()
    if start_method not in methods:
        raise ValueError(f"start_method must be one of {', '.join(methods)}, got '{start_method}'")
    return ProcessPoolExecutor(
        max_workers=workers, mp_context=multiprocessing.get_context(start_method), initializer=pin_threads
    )


class SerialExecutor(Executor):
    """Runs each task at submit time in this process: for debugging (breakpoints and
    tracebacks work) and for tiny studies."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as err:  # delivered through the future, as a pool would
            if isinstance(err, KeyboardInterrupt):
                raise
            future.set_exception(err)
        return future


def serial_executor(workers: int = 1) -> Executor:
    """In-process execution; ``workers`` is accepted and ignored (always one)."""
    return SerialExecutor()


@hookimpl
def register_executors(register):
    register("process", process_executor)
    register("serial", serial_executor)

"""Built-in executors: ``process`` (a pool of worker processes) and ``serial`` (in-process).

An executor is any ``concurrent.futures.Executor``; strategies only submit and wait. Each
also makes the channel whole-trial tasks stream through (research.study.channel).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Annotated, Any, Callable

from research import hookimpl
from research.errors import UsageError
from research.options import Option, checked
from research.study.channel import DirectChannel, ManagerChannel
from research.study.orphans import exit_with_parent

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS")
GUARD = 'if __name__ == "__main__":'
NOT_STARTED = (f"worker processes could not start: the first one ended before it ran anything (its own message, if "
               f"any, is above). Each worker imports the main script again, so a script that runs a study with the "
               f"process executor must start it under `{GUARD}` (see docs/python-api.md)")
STARTING = (f"research: this worker process ends: the main script, which each worker imports, starts a study when "
            f"imported; start the study under `{GUARD}`")


def pin_threads() -> None:
    """Worker initializer: one BLAS/OpenMP thread per worker, since parallelism is across
    trials (two workers each running a multi-threaded BLAS would fight over the cores)."""
    for name in THREAD_VARIABLES:
        os.environ[name] = "1"
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)


def init_worker() -> None:
    """Process-pool initializer: one thread (``pin_threads``), Ctrl-C left to the study's
    process, which stops the pool itself (a worker taking the terminal's SIGINT would only
    die printing a KeyboardInterrupt traceback), and an exit when the study's process dies."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    pin_threads()
    exit_with_parent()


Workers = Annotated[int, Option("Worker processes (0: one per core); passed by the host", min=0)]
"""The worker count every executor factory takes first (research.contracts.ExecutorFactory)."""

StartMethod = Annotated[str, Option("How worker processes start",
                                    choices=tuple(multiprocessing.get_all_start_methods()))]


class ProcessExecutor(ProcessPoolExecutor):
    """A process pool whose tasks stream through a manager's queue."""

    def channel(self) -> ManagerChannel:
        return ManagerChannel()


def wait_for_a_worker(pool: ProcessPoolExecutor) -> None:
    """Return once a worker of ``pool`` has run a call, or raise UsageError when it ended first.

    A worker that cannot start (the script that started the study starts it again when the
    worker imports it) would break this pool at the first task, and every pool made to replace
    it: each trial would fail after its retries, each worker printing its traceback. Checking
    one worker is enough, since all of them start alike.
    """
    try:
        pool.submit(os.getpid).result()
    except BrokenProcessPool:
        pool.shutdown(wait=False, cancel_futures=True)
        raise UsageError(NOT_STARTED) from None
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise


@checked("executor", "process")
def process_executor(workers: Workers = 0, *, start_method: StartMethod = "spawn") -> Executor:
    """A process pool of ``workers`` processes (0: one per core), each pinned to one thread,
    returned once its first worker runs.

    ``spawn`` by default: a fresh interpreter per worker, safe with threads and BLAS.
    """
    workers = workers or os.cpu_count() or 1
    pool = ProcessExecutor(
        max_workers=workers, mp_context=multiprocessing.get_context(start_method), initializer=init_worker
    )
    wait_for_a_worker(pool)
    return pool


def end_a_starting_worker(**options: Any) -> None:
    """Checked before a study is stored (``ExecutorFactory.check``): in a worker process that is
    still starting, importing the main script of a study that starts at import, end the
    worker with one line instead of a traceback (or, had it got further, a study of its own).
    ``_inheriting`` is how multiprocessing itself tells that a process is still starting."""
    if getattr(multiprocessing.current_process(), "_inheriting", False):
        raise SystemExit(STARTING)


process_executor.check = end_a_starting_worker  # type: ignore[attr-defined]


class SerialExecutor(Executor):
    """Runs each task at submit time in this process: for debugging (breakpoints and
    tracebacks work) and for tiny studies.

    Tasks run with one BLAS thread, as in a pool's workers: the same results bit for bit
    (a multi-threaded matrix product sums in another order), and no threads fighting over
    the cores.
    """

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        from threadpoolctl import threadpool_limits

        future: Future = Future()
        try:
            with threadpool_limits(1):
                result = fn(*args, **kwargs)
            future.set_result(result)
        except BaseException as err:  # delivered through the future, as a pool would
            if isinstance(err, KeyboardInterrupt):
                raise
            future.set_exception(err)
        return future

    def channel(self) -> DirectChannel:
        """Tasks run here: their messages go to the study as they are sent."""
        return DirectChannel()


@checked("executor", "serial")
def serial_executor(workers: Workers = 1) -> Executor:
    """In-process execution; ``workers`` is accepted and ignored (always one)."""
    return SerialExecutor()


serial_executor.in_process = True  # type: ignore[attr-defined]  # tasks run here: see ExecutorFactory


@hookimpl
def register_executors(register: Callable[[str, Callable[..., Any]], None]) -> None:
    register("process", process_executor)
    register("serial", serial_executor)

"""Built-in executors: ``process`` (a pool of worker processes) and ``serial`` (in-process).

An executor is any ``concurrent.futures.Executor``; strategies only submit and wait. Each
also makes the channel whole-trial tasks stream through (research.study.channel).
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import shutil
import signal
import uuid
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Annotated, Any, Callable

from research import hookimpl, kernels
from research.errors import UsageError
from research.interrupts import interrupts_held
from research.options import Option, checked
from research.scratch import scratch_folder
from research.spawning import forget as forget_safe_path
from research.spawning import without_working_folder
from research.study.channel import DirectChannel, ManagerChannel
from research.study.orphans import exit_with_parent

START_ATTEMPTS = 5  # new pools tried when their workers are killed from outside as they start
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


def init_worker(parent: int, kernels_isa: str) -> None:
    """Process-pool initializer: one thread (``pin_threads``), Ctrl-C left to the study's
    process, which stops the pool itself (a worker taking the terminal's SIGINT would only
    die printing a KeyboardInterrupt traceback), an exit when the study's process (``parent``)
    dies, even before this one ran, and the kernels' instruction set of the study's process,
    which the study records (a new interpreter would choose its own, not one set by
    ``kernels.use_isa``); the setting that kept it from the working folder's modules dropped
    (research.spawning)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    exit_with_parent(parent)
    pin_threads()
    kernels.use_isa(kernels_isa)
    forget_safe_path()


Workers = Annotated[int, Option("Worker processes (0: one per core); passed by the host", min=0)]
"""The worker count every executor factory takes first (research.contracts.ExecutorFactory)."""

StartMethod = Annotated[str, Option("How worker processes start",
                                    choices=tuple(multiprocessing.get_all_start_methods()))]


def spooled(folder: str, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> str:
    """Run ``fn`` in a worker and leave its outcome (result or exception) in a file of
    ``folder``, returning the file's path: only that short path crosses the pool's shared
    result pipe. A worker killed while writing a large result into that pipe would leave half
    a message in it, and the pool's reader would wait for the rest for ever (a study that
    hangs with no worker left); a path is written in one atomic pipe write, and a half-written
    file is only ever this task's loss."""
    try:
        outcome: tuple[str, Any] = ("result", fn(*args, **kwargs))
    except BaseException as err:  # delivered to the caller's future, as the pool would
        outcome = ("error", err)
    path = os.path.join(folder, f"{os.getpid()}-{uuid.uuid4().hex}.pickle")
    with open(path + ".part", "wb") as file:
        pickle.dump(outcome, file, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(path + ".part", path)
    return path


def unspool(path: str) -> Any:
    """The outcome :func:`spooled` left at ``path`` (the file removed): its result, or its
    exception raised."""
    try:
        with open(path, "rb") as file:
            kind, value = pickle.load(file)
    finally:
        os.unlink(path)
    if kind == "error":
        raise value
    return value


class ProcessExecutor(ProcessPoolExecutor):
    """A process pool whose results come back through files (:func:`spooled`) and whose
    whole-trial tasks stream through a manager's queue."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.spool = str(scratch_folder("research-results-"))

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        with interrupts_held(), without_working_folder():  # the workers this starts are born deaf to Ctrl-C
            inner = super().submit(spooled, self.spool, fn, *args, **kwargs)
        outer: Future = Future()

        def deliver(done: Future) -> None:
            if done.cancelled():
                outer.cancel()
                outer.set_running_or_notify_cancel()
                return
            error = done.exception()
            if error is not None:
                outer.set_exception(error)
                return
            try:
                outer.set_result(unspool(done.result()))
            except BaseException as err:  # the task's own exception, or its outcome's file unreadable
                outer.set_exception(err)

        inner.add_done_callback(deliver)
        return outer

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Shut the pool down and remove its results' folder (a task still running when the
        caller stops waiting is abandoned, its outcome with it)."""
        super().shutdown(wait=wait, cancel_futures=cancel_futures)
        shutil.rmtree(self.spool, ignore_errors=True)

    def terminate_workers(self) -> None:
        """End the workers now (a second Ctrl-C while a stop waits on them): a task that hangs
        would keep the study's process waiting for ever, at its exit too."""
        for process in list((self._processes or {}).values()):
            process.kill()
        self.shutdown(wait=False, cancel_futures=True)

    def channel(self) -> ManagerChannel:
        return ManagerChannel()


class WorkerKilled(Exception):
    """A worker of a new pool was killed from outside before it ran anything."""


def wait_for_a_worker(pool: ProcessPoolExecutor) -> None:
    """Return once a worker of ``pool`` has run a call; raise UsageError when one ended by
    itself first, WorkerKilled when one was killed from outside (a signal: try a new pool).

    A worker that cannot start (the script that started the study starts it again when the
    worker imports it) would break this pool at the first task, and every pool made to replace
    it: each trial would fail after its retries, each worker printing its traceback. Checking
    one worker is enough, since all of them start alike.
    """
    processes: list[Any] = []
    try:
        started = pool.submit(os.getpid)
        processes = list(getattr(pool, "_processes", {}).values())  # the pool forgets the dead ones
        started.result()
    except BrokenProcessPool:
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.join(timeout=5)
        # A worker that ended by itself (the script's guard) has an exit code of 0 or more; the
        # others were killed from outside or by the broken pool (a signal: negative), or are
        # still being ended.
        if any(process.exitcode is not None and process.exitcode >= 0 for process in processes):
            raise UsageError(NOT_STARTED) from None
        raise WorkerKilled("a worker was killed while the pool started") from None
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise


def most_workers() -> int:
    """The most worker processes one machine starts for a study: 8 per core (at least 16).
    More would only queue for the cores, each holding a model and its data in memory."""
    return max(16, 8 * (os.cpu_count() or 1))


def _check_processes(workers: int = 0, start_method: str = "spawn") -> None:
    """Checked before a study is stored (``ExecutorFactory.check``): a worker that is still
    starting ends (``end_a_starting_worker``), and more worker processes than ``most_workers()``
    are refused, since a pool starts one per pending trial, up to ``workers``."""
    end_a_starting_worker()
    if workers > most_workers():
        raise ValueError(f"--workers {workers:,} would start up to as many processes on this machine, more than its "
                         f"{most_workers()} (8 per core); give --workers {most_workers()} or fewer")


@checked("executor", "process")
def process_executor(workers: Workers = 0, *, start_method: StartMethod = "spawn") -> Executor:
    """A process pool of ``workers`` processes (0: one per core), each pinned to one thread,
    returned once its first worker runs.

    ``spawn`` by default: a fresh interpreter per worker, safe with threads and BLAS.
    """
    workers = workers or os.cpu_count() or 1
    killed = 0
    while True:
        with interrupts_held(), without_working_folder():  # the resource tracker starts with the pool, as there
            pool = ProcessExecutor(
                max_workers=workers, mp_context=multiprocessing.get_context(start_method), initializer=init_worker,
                initargs=(os.getpid(), kernels.isa())
            )
        try:
            wait_for_a_worker(pool)
            return pool
        except WorkerKilled:
            killed += 1
            if killed == START_ATTEMPTS:
                raise UsageError(f"worker processes were killed while starting, {killed} times in a row; find what "
                                 "kills them (memory limits, a job scheduler), then resume the study") from None


def end_a_starting_worker() -> None:
    """In a worker process that is still starting, importing the main script of a study that
    starts at import, end the worker with one line instead of a traceback (or, had it got
    further, a study of its own).
    ``_inheriting`` is how multiprocessing itself tells that a process is still starting."""
    if getattr(multiprocessing.current_process(), "_inheriting", False):
        raise SystemExit(STARTING)


process_executor.check = _check_processes  # type: ignore[attr-defined]


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

"""Code that runs inside Dask workers; imported only when the dask executor is used, so
loading the plugins never imports Dask."""

from __future__ import annotations

import signal
import threading
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin
from research_plugins.executors import pin_threads

from research.spawning import forget as forget_safe_path


class PinThreads(WorkerPlugin):
    """One BLAS/OpenMP thread per worker, also for workers that join or restart later; a
    local cluster's worker drops the setting that kept it from the working folder's modules
    as it started (research.spawning)."""

    name = "research-pin-threads"

    def setup(self, worker: Any) -> None:
        pin_threads()
        forget_safe_path()


class IgnoreInterrupts(WorkerPlugin):
    """For the workers of a local cluster only: Ctrl-C in the terminal reaches them too,
    but the study's process closes the cluster itself (a worker taking SIGINT would only
    die printing tracebacks). Workers the user started keep their own Ctrl-C."""

    name = "research-ignore-interrupts"

    def setup(self, worker: Any) -> None:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)

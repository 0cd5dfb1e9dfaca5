"""Code that runs inside Dask workers; imported only when the dask executor is used, so
loading the plugins never imports Dask."""

from __future__ import annotations

from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

from research_plugins.executors import pin_threads


class PinThreads(WorkerPlugin):
    """One BLAS/OpenMP thread per worker, also for workers that join or restart later."""

    name = "research-pin-threads"

    def setup(self, worker: Any) -> None:
        pin_threads()

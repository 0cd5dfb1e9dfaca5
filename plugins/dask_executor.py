"""The ``dask`` executor: trials on a Dask cluster, or on a local one started on the spot.

Segments travel to the workers with their checkpoint as bytes and come back with the new
one, so workers never open the store: only the process that owns the study writes it. When
a worker dies mid-segment, Dask runs that segment again on another worker from the same
checkpoint, so the trial continues exactly and counts once.

Needs the extra: ``pip install 'research[dask]'``.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import Executor, Future
from typing import Any, Callable

from research import hookimpl

INSTALL_HINT = "the dask executor needs Dask: pip install 'research[dask]'"


class DaskExecutor(Executor):
    """A concurrent.futures view of a Dask client that also closes what it started."""

    def __init__(self, client: Any, cluster: Any | None):
        self.client = client
        self.cluster = cluster
        self.executor = client.get_executor(pure=False)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        return self.executor.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        try:
            self.executor.shutdown(wait=wait and not cancel_futures)
        finally:
            self.client.close()
            if self.cluster is not None:
                self.cluster.close()


def dask_executor(workers: int | str = 0, address: str | None = None, timeout: float | str = 10.0) -> Executor:
    """Connect to the scheduler at ``address`` (e.g. tcp://host:8786), or without one start
    a local cluster of ``workers`` processes (0: one per core) with one thread each."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ValueError(INSTALL_HINT) from None
    try:
        seconds = float(timeout)
    except ValueError:
        raise ValueError(f"executor option timeout must be a number of seconds, got {timeout!r}") from None
    if address:
        try:
            client = Client(address, timeout=seconds)
        except (OSError, TimeoutError) as err:
            raise ValueError(
                f"cannot reach the Dask scheduler at {address} ({type(err).__name__}); start one with "
                "`dask scheduler` and check --executor-opt address=..."
            ) from None
        cluster = None
    else:
        count = int(workers) or os.cpu_count() or 1
        cluster = LocalCluster(n_workers=count, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=logging.ERROR)
        client = Client(cluster)
    from research_plugins.dask_workers import PinThreads

    client.register_plugin(PinThreads())
    return DaskExecutor(client, cluster)


@hookimpl
def register_executors(register: Any) -> None:
    register("dask", dask_executor)

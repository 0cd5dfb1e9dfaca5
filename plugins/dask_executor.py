"""The ``dask`` executor: trials on a Dask cluster, or on a local one started on the spot.

Segments travel to the workers with their trial state (arrays) and come back with the new
one, so workers never open the store: only the process that owns the study writes it. When
a worker dies mid-segment, Dask runs that segment again on another worker from the same
checkpoint, so the trial continues exactly and counts once. When the scheduler is lost,
the segments in flight are sent again through a new connection, or the study stops with
its running trials interrupted (resumable) when the scheduler cannot be reached.

Needs the extra: ``pip install 'research-hparams[dask]'``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import uuid
import warnings
from concurrent.futures import BrokenExecutor, Executor, Future
from typing import Annotated, Any, Callable

from research_plugins.executors import Workers, most_workers

from research import hookimpl
from research.extras import install_command
from research.interrupts import interrupts_held
from research.options import Option, checked
from research.spawning import without_working_folder

log = logging.getLogger(__name__)


def _not_installed() -> str:
    return f"Dask is not installed; {install_command('dask')}"


class SchedulerLost(BrokenExecutor):
    """The connection to the scheduler broke: every task in flight is lost with it."""


class DaskChannel:
    """Whole-trial tasks stream through a Dask queue on the scheduler, and a trial's stop is a
    Dask event (research.study.channel): the workers may be on other machines."""

    def __init__(self, client: Any):
        from distributed import Queue

        self.prefix = f"research-{uuid.uuid4().hex}"
        self.client = client
        self.queue: Any = Queue(self.prefix, client=client)
        self.handler: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {"prefix": self.prefix}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.prefix, self.client, self.queue, self.handler = state["prefix"], None, None, None

    def listen(self, handler: Any) -> None:
        self.handler = handler

    def poll(self) -> None:
        if self.handler is not None:
            for message in self.queue.get(batch=True):
                self.handler(message)

    def stop(self, number: int) -> None:
        from distributed import Event

        Event(f"{self.prefix}-stop-{number}", client=self.client).set()

    def close(self) -> None:
        self.handler = None

    def send(self, message: Any) -> None:
        from distributed import Queue

        if self.queue is None:  # in a worker: the worker's own client
            self.queue = Queue(self.prefix)
        self.queue.put(message)

    def stopped(self, number: int) -> bool:
        from distributed import Event

        return bool(Event(f"{self.prefix}-stop-{number}").is_set())


class DaskExecutor(Executor):
    """A concurrent.futures view of a Dask client that also closes what it started.

    A task whose worker dies is Dask's to run again elsewhere. A task Dask cancels (we
    never cancel one while it is wanted) went with the scheduler: its future raises
    :class:`SchedulerLost`, a ``BrokenExecutor``, so the strategy starts a new executor and
    sends the segments again, as when a process pool breaks.
    """

    def __init__(self, client: Any, cluster: Any | None, address: str | None = None):
        self.client = client
        self.cluster = cluster
        self.address = address or "the local cluster"
        self.executor = client.get_executor(pure=False)
        self.closed = self.lost = False

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        outer: Future = Future()

        def relay(inner: Future) -> None:
            if not outer.set_running_or_notify_cancel():
                return
            if inner.cancelled():
                self.lost = True
                outer.set_exception(SchedulerLost(f"lost the Dask scheduler at {self.address}"))
            elif inner.exception() is not None:
                outer.set_exception(inner.exception())
            else:
                outer.set_result(inner.result())

        self.executor.submit(fn, *args, **kwargs).add_done_callback(relay)
        return outer

    def channel(self) -> DaskChannel:
        return DaskChannel(self.client)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Close the client (and the local cluster); quietly when the scheduler is gone."""
        from distributed.client import ClosedClientError

        if self.closed:
            return
        self.closed = True
        names = ("distributed", "distributed.client", "tornado.application")
        loggers = [logging.getLogger(name) for name in names]
        levels = [logger.level for logger in loggers]
        # Closing stops the client's reconnection after a lost scheduler, and cancelling the
        # segments in flight (Ctrl-C) ends their relay callbacks: both log tracebacks of
        # errors that are the point of shutting down.
        if self.lost or cancel_futures:
            for logger in loggers:
                logger.setLevel(logging.CRITICAL)
        try:
            self.executor.shutdown(wait=wait and not cancel_futures)
        except (ClosedClientError, OSError):  # the scheduler went first (OSError: CommClosedError)
            pass
        finally:
            try:
                self.client.close()
                if self.cluster is not None:
                    self.cluster.close()
            finally:
                for logger, level in zip(loggers, levels):
                    logger.setLevel(level)


@checked("executor", "dask")
def dask_executor(
    workers: Workers = 0,
    *,
    address: Annotated[str | None, Option("Scheduler address, e.g. tcp://host:8786 (none: a local cluster)")] = None,
    timeout: Annotated[float, Option("Seconds to wait for the scheduler", above=0.0, max=3600.0)] = 10.0,
) -> Executor:
    """Connect to the scheduler at ``address`` (e.g. tcp://host:8786), or without one start
    a local cluster of ``workers`` processes (0: one per core) with one thread each."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ValueError(_not_installed()) from None
    _quiet_dask_logs()
    cluster = None  # a scheduler of the user's: no cluster of this study's own
    if address:
        _check_scheduler(address, timeout)
        try:
            client = Client(address, timeout=timeout)
        except (OSError, TimeoutError) as err:
            raise ValueError(_unreachable(address, type(err).__name__)) from None
        if not client.scheduler_info().get("workers"):  # its tasks would wait, the study silent
            log.warning(f"the Dask scheduler at {address} has no workers yet: the study waits for them; start "
                        f"them with `dask worker {address} --nthreads 1`")
    else:
        count = workers or os.cpu_count() or 1
        _check_local(count)  # a resume's --workers comes here unchecked
        # No dashboard; the scheduler's HTTP server (health, metrics) on a free port rather
        # than 8787, so studies side by side do not warn "Port 8787 is already in use".
        # Started with Ctrl-C held (its event loop's thread, and so the processes it spawns, begin
        # with SIGINT blocked): cut while its workers started, the cluster printed their
        # tracebacks and failed to close ("AssertionError: Status.init"). A Ctrl-C meanwhile
        # closes it once it is up.
        try:
            with interrupts_held(), without_working_folder():
                cluster = LocalCluster(n_workers=count, threads_per_worker=1, processes=True,
                                       dashboard_address=None, scheduler_kwargs={"dashboard_address": ":0"},
                                       silence_logs=logging.ERROR)
        except KeyboardInterrupt:
            if cluster is not None:  # up: the stop was held until then
                cluster.close()
            raise
        client = Client(cluster)
    from research_plugins.dask_workers import IgnoreInterrupts, PinThreads

    client.register_plugin(PinThreads())
    if cluster is not None:
        client.register_plugin(IgnoreInterrupts())
    return DaskExecutor(client, cluster, address)


def _unreachable(address: str, why: str) -> str:
    return (f"cannot reach the Dask scheduler at {address} ({why}); start one with `dask scheduler` and check the "
            "scheduler's address (--executor-opt address=... or [executor_options] in a study file)")


def _check_scheduler(address: str, timeout: float) -> None:
    """Complete Dask's handshake with ``address`` within ``timeout`` seconds, or raise ValueError.

    Dask's own client bounds only the TCP connect: a port that accepts but does not speak
    Dask's protocol (a web server, an SSH daemon) would hang it, or make it read a banner as
    a frame length and ask for exabytes. The probe runs on its own event loop in a thread of
    its own, so it works whether or not the caller's thread already runs one.
    """
    from distributed.comm import connect, registry
    from distributed.comm.addressing import parse_address, parse_host_port

    host_port = None
    try:  # a malformed address is said as such, not as a peer that answers wrongly
        scheme, location = parse_address(address)
        if scheme in ("http", "https"):  # the dashboard's page, copied from a browser
            raise ValueError(f"{scheme}:// is a web page's, such as the Dask dashboard's; the scheduler's own "
                             "address starts with tcp://")
        if scheme not in registry.backends:
            raise ValueError(f"Dask speaks no protocol '{scheme}'; it knows {', '.join(sorted(registry.backends))}")
        if scheme in ("tcp", "tls"):
            host_port = parse_host_port(location)
            if not host_port[0]:  # else the host lookup fails as "no host is named " (an empty name)
                raise ValueError("no host before the port")
            if not 0 < host_port[1] < 65536:
                raise ValueError(f"port {host_port[1]} is not a port number, 1 to 65535")
    except ValueError as err:
        raise ValueError(f"--executor-opt address={address} is not a scheduler address ({err}); write "
                         "tcp://HOST:PORT, e.g. tcp://127.0.0.1:8786") from None

    async def handshake() -> None:
        comm = await asyncio.wait_for(connect(address, timeout=timeout), timeout)
        await comm.close()

    failure: list[str] = []

    def probe() -> None:
        if host_port is not None:  # Dask's connect tries again until its timeout, whatever the cause
            try:
                socket.create_connection(host_port, timeout=timeout).close()
            except socket.gaierror:
                failure.append(f"no host is named {host_port[0]}")
                return
            except ConnectionRefusedError:
                failure.append(f"nothing listens on port {host_port[1]} there: the connection was refused")
                return
            except OSError:
                failure.append(f"no answer within {timeout:g} s")
                return
        try:
            asyncio.run(handshake())
        except (OSError, asyncio.TimeoutError):
            failure.append(f"no answer within {timeout:g} s")
        except Exception:  # noqa: BLE001 - whatever the peer sent (its exception names nothing useful), it is not Dask
            failure.append("something answers there, but not in Dask's protocol")

    thread = threading.Thread(target=probe, name="research-dask-probe", daemon=True)
    thread.start()
    thread.join(timeout + 5.0)  # the probe's own deadline ends it first
    if thread.is_alive():
        failure.append(f"no answer within {timeout:g} s")
    if failure:
        raise ValueError(_unreachable(address, failure[0]))


def _dask_ready(address: str | None = None, timeout: float = 10.0, workers: int = 0, **options: Any) -> None:
    """The dask executor's check before a study is stored: Dask must be installed, the
    scheduler, when an address is given, must answer in Dask's protocol, and a local cluster
    must be of workers this machine can start."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise ValueError(_not_installed()) from None
    if address:
        _check_scheduler(address, timeout)
    else:
        _check_local(workers or os.cpu_count() or 1)


def _check_local(count: int) -> None:
    """A local cluster's worker processes all start at once: a million took over 10 minutes
    without a trial, the process at 3 GB; at most ``most_workers()``."""
    if count > most_workers():
        raise ValueError(f"a local Dask cluster starts its {count:,} worker processes at once, more than this "
                         f"machine's {most_workers()} (8 per core); give --workers {most_workers()} or fewer, or "
                         "--executor-opt address=... for a cluster of machines")


dask_executor.check = _dask_ready  # type: ignore[attr-defined]


def _quiet_dask_logs() -> None:
    """Keep Dask's chatter out of the study's output, unless the application logs debug lines.

    On import, distributed sets its loggers to INFO and, when the application already logs
    through the root logger (the command line does), lets them print through it: every
    worker added or removed and the cluster's shutdown would show up as a warning line, and
    a worker's death as Dask's "Restarting worker" and "Couldn't gather 1 keys". The study
    says what such events cost in its own words (a trial retried, or failed with its
    reason), so Dask's warnings go, and so do the errors its event loop logs (tornado's
    "Exception in callback") when the scheduler's connection breaks, a case the study
    handles: it connects again or stops in one line.
    """
    level = logging.getLogger().getEffectiveLevel()
    if level <= logging.DEBUG:
        return
    # distributed's own configuration gives some of its loggers a level (distributed.client:
    # WARNING), which the parent's would not override.
    names = ["distributed", *(name for name in logging.root.manager.loggerDict if name.startswith("distributed."))]
    for name, quiet in [*((name, logging.ERROR) for name in names), ("tornado.application", logging.CRITICAL)]:
        logger = logging.getLogger(name)
        if not logger.handlers and logger.level < max(level, quiet):
            logger.setLevel(max(level, quiet))
    # A trial's state travels with its task: a model of a few MiB makes Dask warn, in several lines
    # each time, that the graph is large; that is how the executor works, not a problem to report.
    warnings.filterwarnings("ignore", message="Sending large graph", category=UserWarning)


@hookimpl
def register_executors(register: Any) -> None:
    register("dask", dask_executor)

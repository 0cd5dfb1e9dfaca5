"""How a task that trains a whole trial talks to the study while it runs.

Most trainers are cheap to move, so a strategy sends a trial to the workers a few epochs at a
time and every result comes back with the task. A trainer that is not (its factory sets
``whole_trial = True``: the ``command`` trainer keeps a program running) gets the whole trial
in one task instead, and the task streams what it produces through a channel: each epoch's
metrics as it ends, the trial's state when a checkpoint is due, and its state after an epoch
that beats its best so far. The other way, the study
asks a task to stop (a pruned trial, Ctrl-C). Only the study's process reads messages and
writes the store, as with ordinary tasks.

A channel is made by the executor, since only it knows where its workers run
(``executor.channel()``): :class:`DirectChannel` for tasks in this process,
:class:`ManagerChannel` for worker processes on this machine, the ``dask`` executor's own for
a cluster. Channels travel inside tasks, so they pickle.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import secrets
import tempfile
from collections.abc import Callable
from multiprocessing import util
from multiprocessing.managers import SyncManager
from typing import Any, Protocol, runtime_checkable

from research.errors import UsageError
from research.interrupts import interrupts_held
from research.spawning import without_working_folder
from research.study.orphans import exit_with_parent

Message = tuple
"""``("epoch", number, epoch, metrics)``, ``("state", number, epoch, state)`` (a checkpoint is
due) or ``("best", number, epoch, (metrics, state))`` (the trial's best epoch so far,
research.study.best)."""
Handler = Callable[[Message], None]


@runtime_checkable
class Channel(Protocol):
    """The study's side: ``listen(handler)`` once, ``poll()`` often (every message that arrived
    goes to the handler, in the order sent), ``stop(number)`` to ask trial ``number``'s task to
    end after its current epoch, ``close()`` at the end. The task's side: ``send(message)``
    and ``stopped(number)``."""

    def listen(self, handler: Handler) -> None: ...
    def poll(self) -> None: ...
    def stop(self, number: int) -> None: ...
    def close(self) -> None: ...
    def send(self, message: Message) -> None: ...
    def stopped(self, number: int) -> bool: ...


class DirectChannel:
    """For tasks that run in the study's own process (the serial executor): a message goes to
    the handler as it is sent, so epochs are committed while the task still runs."""

    def __init__(self) -> None:
        self.handler: Handler | None = None
        self.pending: list[Message] = []
        self.stops: set[int] = set()

    def listen(self, handler: Handler) -> None:
        self.handler = handler
        self.poll()

    def poll(self) -> None:
        while self.pending and self.handler is not None:
            self.handler(self.pending.pop(0))

    def send(self, message: Message) -> None:
        self.pending.append(message)
        self.poll()

    def stop(self, number: int) -> None:
        self.stops.add(number)

    def stopped(self, number: int) -> bool:
        return number in self.stops

    def close(self) -> None:
        self.pending.clear()


SOCKET_FOLDER_MAX = 70
"""The longest temporary folder, in bytes, under which multiprocessing's socket file
(``pymp-*/listener-*``, 32 bytes more) fits the 104 bytes of a socket path on macOS."""


def _address() -> str | None:
    """Where the channel's manager listens: an abstract socket where the system has them, else
    multiprocessing's own file in the temporary folder (None), which must be short enough."""
    if util.abstract_sockets_supported:
        return f"\0research-{secrets.token_hex(8)}"
    folder = tempfile.gettempdir()
    size = len(os.fsencode(folder))
    if size > SOCKET_FOLDER_MAX:
        raise UsageError(f"the temporary folder {folder} is too deep for the socket that worker processes talk "
                         f"through ({size} bytes, at most {SOCKET_FOLDER_MAX}): set TMPDIR to a shorter folder, "
                         "such as /tmp")
    return None


class ManagerChannel:
    """For worker processes on this machine: a queue and a set of stops kept by a
    ``multiprocessing`` manager (a small server process, started only for studies that need
    it). Its proxies pickle into tasks; workers started by this process may use them.

    Where the system has them (Linux), the server listens on an abstract socket, which has no
    file: multiprocessing's own is a file in the temporary folder, whose path a socket limits to
    about 100 bytes, so a deep ``TMPDIR`` made every study on worker processes fail, and a
    killed study left the file behind. Connections are still authenticated by the process's key.
    Elsewhere (macOS) the file stays, and a folder too deep for it is refused in one line."""

    def __init__(self) -> None:
        self.manager = SyncManager(address=_address(), ctx=multiprocessing.get_context("spawn"))
        with interrupts_held(), without_working_folder():  # the server is born deaf to Ctrl-C
            self.manager.start(exit_with_parent, (os.getpid(),))  # and ends with the study's process
        self.messages = self.manager.Queue()
        self.stops = self.manager.dict()
        self.handler: Handler | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"messages": self.messages, "stops": self.stops}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.manager, self.handler = None, None
        self.messages, self.stops = state["messages"], state["stops"]

    def listen(self, handler: Handler) -> None:
        self.handler = handler

    def poll(self) -> None:
        while self.handler is not None:
            try:
                message = self.messages.get_nowait()
            except queue.Empty:
                return
            self.handler(message)

    def send(self, message: Message) -> None:
        self.messages.put(message)

    def stop(self, number: int) -> None:
        self.stops[number] = True

    def stopped(self, number: int) -> bool:
        return number in self.stops

    def close(self) -> None:
        if self.manager is not None:
            self.manager.shutdown()
            self.manager = None


def channel_of(executor: Any, name: str, owner: str) -> Channel:
    """The channel ``executor`` (executor ``name`` of plugin ``owner``) makes for whole-trial
    tasks; one line saying so when it has none."""
    make = getattr(executor, "channel", None)
    if make is None:
        raise UsageError(f"plugin '{owner}': executor '{name}' cannot run a trainer that trains whole trials (it has "
                         "no channel(); see docs/plugins.md); choose another with --executor")
    return make()

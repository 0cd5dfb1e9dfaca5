"""Ctrl-C and SIGTERM held off while a file is written or processes start, then delivered.

Python raises an interrupt (``KeyboardInterrupt``, or ``Terminated`` for SIGTERM) at whatever
line is running. Inside numpy's ``savez`` that line is in the middle of a zip archive: the
archive's own cleanup then fails ("Can't close the ZIP file while there is an open writing
handle"), and that ValueError replaces the interrupt, so an orderly stop became a crash
that left the running trials marked running instead of interrupted. Writes that must not
be cut run under ``interrupts_deferred()``: a signal that arrives meanwhile is noted, and
raised again, to the handler that was in place, once the write is done. Processes started
under ``interrupts_held()`` also begin with SIGINT blocked.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from research.spawning import without_working_folder

try:
    from multiprocessing import resource_tracker
except ImportError:  # Windows has none
    resource_tracker = None

HELD = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM until the block ends, then raise the first one that came.

    Only the main thread runs Python's signal handlers (and can change them): in another
    thread no interrupt can be raised, so nothing changes there; nor where a handler was not
    set from Python (an embedding program's), which could not be put back."""
    if threading.current_thread() is not threading.main_thread() or None in map(signal.getsignal, HELD):
        yield
        return
    arrived: list[int] = []

    def note(signum: int, frame: object) -> None:
        arrived.append(signum)

    previous = {signum: signal.signal(signum, note) for signum in HELD}
    _deferrals.append((previous, arrived, note))
    try:
        yield
    finally:
        _deferrals.pop()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if arrived:
            signal.raise_signal(arrived[0])


_deferrals: list[tuple[dict, list[int], object]] = []  # the main thread's deferrals in force, innermost last


@contextmanager
def interrupts_allowed() -> Iterator[None]:
    """Inside ``interrupts_deferred``, a part that waits on the user (a prompt) takes SIGINT and
    SIGTERM as they come, as outside it: one that came before is raised as the part begins.
    Elsewhere (no deferral in force, another thread) nothing changes."""
    if threading.current_thread() is not threading.main_thread() or not _deferrals:
        yield
        return
    previous, arrived, note = _deferrals[-1]
    for signum, handler in previous.items():
        signal.signal(signum, handler)
    try:
        if arrived:
            signal.raise_signal(arrived.pop(0))
        yield
    finally:
        for signum in previous:
            signal.signal(signum, note)


@contextmanager
def interrupts_held() -> Iterator[None]:
    """SIGINT blocked in this thread meanwhile, so that the processes (and threads) started
    meanwhile begin with it blocked: the signal mask survives fork and exec. A terminal's
    Ctrl-C reaches every process of the group; the study's process handles it and stops its
    workers, while a process still importing (a pool's worker before its initializer, a
    manager's server before it ignores SIGINT) would die printing a KeyboardInterrupt
    traceback. Blocked, not ignored: a Ctrl-C that comes meanwhile stays pending, and the
    study's process takes it when the block ends. SIGINT and SIGTERM are also deferred
    (``interrupts_deferred``): another thread (the live display's) may take a signal the mask
    holds off here, and Python then runs its handler in this thread all the same; raised
    between a worker's start and the data it waits for, it left that worker an empty pipe and
    an EOFError traceback.

    The first process multiprocessing spawns starts its resource tracker first, and that start
    unblocks SIGINT in the calling thread when it is done: every process after it, the pool's
    first workers among them, began with SIGINT open. The tracker is started before the block,
    told not to warn of the semaphores it frees when this process dies without freeing them
    (a `kill -9`: "There appear to be 5 leaked semaphore objects", with a path of Python's)."""
    if resource_tracker is not None:
        with without_working_folder(), _tracker_quiet():  # a process like the others it precedes (research.spawning)
            resource_tracker.ensure_running()
    with interrupts_deferred():
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            yield
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)  # one held meanwhile is deferred now


TRACKER_QUIET = "ignore:resource_tracker:UserWarning"
"""The warning filter the resource tracker starts with: its warnings all begin so."""


@contextmanager
def _tracker_quiet() -> Iterator[None]:
    """A process multiprocessing starts meanwhile (the tracker) takes this interpreter's -W
    options (sys.warnoptions) with TRACKER_QUIET among them."""
    sys.warnoptions.append(TRACKER_QUIET)
    try:
        yield
    finally:
        sys.warnoptions.remove(TRACKER_QUIET)

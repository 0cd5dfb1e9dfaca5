"""Ctrl-C and SIGTERM held off while a file is written, then delivered.

Python raises an interrupt (``KeyboardInterrupt``, or ``Terminated`` for SIGTERM) at whatever
line is running. Inside numpy's ``savez`` that line is in the middle of a zip archive: the
archive's own cleanup then fails ("Can't close the ZIP file while there is an open writing
handle"), and that ValueError replaces the interrupt, so an orderly stop became a crash
that left the running trials marked running instead of interrupted. Writes that must not
be cut run under ``interrupts_deferred()``: a signal that arrives meanwhile is noted, and
raised again, to the handler that was in place, once the write is done.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

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
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if arrived:
            signal.raise_signal(arrived[0])

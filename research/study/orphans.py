"""Helper processes that must not outlive the study's process.

A study killed with ``kill -9`` (or a lost power supply, or an out-of-memory kill) runs no
cleanup: its worker processes and helper servers would be reparented and keep running,
training trials nobody will read. Each of them calls :func:`exit_with_parent` when it
starts, and ends itself within ``PARENT_CHECK_SECONDS`` of its parent's death.
"""

from __future__ import annotations

import os
import threading
import time

PARENT_CHECK_SECONDS = 1.0


def exit_with_parent(parent: int, interval: float = PARENT_CHECK_SECONDS) -> None:
    """Start a daemon thread that ends this process (exit status 1) once its parent is gone.

    ``parent`` is the pid of the process that started this one, passed in: a process still
    starting when its parent died would find its new parent (init) and watch that, for ever."""
    if os.getppid() != parent:
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(interval)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="research-exit-with-parent", daemon=True).start()

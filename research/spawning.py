"""Python processes started from a study's process without the working folder's modules in
the way while they start.

A process that multiprocessing spawns (a pool's worker, a manager's server, a local Dask
cluster's worker) starts as ``python -c ...`` in the study's working folder, which Python
puts first on ``sys.path`` until the process takes the study's own path. A file there named
like a module that start-up imports (``array.py``, ``queue.py``, ``signal.py``) was imported in
its place: every worker failed before it ran anything, blamed on a missing
``if __name__ == "__main__":``. ``PYTHONSAFEPATH`` (Python 3.11) leaves that folder out; the
processes drop research's setting once started (``forget``), so that the programs they run (a
``--command`` trainer's ``python train.py``) import from their own folder as usual.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

SAFE_PATH = "PYTHONSAFEPATH"
OURS = "research"  # any non-empty value sets it; this one tells research's setting from the user's


@contextmanager
def without_working_folder() -> Iterator[None]:
    """Processes started inside do not import from the working folder while they start; the
    user's own setting of ``PYTHONSAFEPATH``, if any, is left as it is."""
    if SAFE_PATH in os.environ:
        yield
        return
    os.environ[SAFE_PATH] = OURS
    try:
        yield
    finally:
        os.environ.pop(SAFE_PATH, None)


def forget() -> None:
    """In a process started inside ``without_working_folder``: drop research's setting (not
    the user's), which the programs this process starts would otherwise inherit."""
    if os.environ.get(SAFE_PATH) == OURS:
        del os.environ[SAFE_PATH]

"""Temporary folders named by the process that made them, so that a later one removes those of
processes that have ended.

A process killed with ``kill -9``, or by the out-of-memory killer, runs no cleanup: the folders
it kept in the temporary folder (a process pool's results, the command trainer's copy of a
program's checkpoint, which may be large) would stay there for good. Each is named
``{prefix}{pid}-{random}``; making one first removes the folders of that prefix whose process
is gone. A folder of a process that is still running, of another user, or named otherwise is
left alone.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


def scratch_folder(prefix: str) -> Path:
    """A new folder in the temporary folder, named after this process, made after removing the
    folders of ``prefix`` left by processes that have ended."""
    root = Path(tempfile.gettempdir())
    remove_orphans(root, prefix)
    return Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=root))


def remove_orphans(root: Path, prefix: str) -> None:
    """Remove the folders ``{prefix}{pid}-*`` in ``root`` that belong to this user and whose
    process has ended. Only where processes can be probed without a signal (POSIX)."""
    if os.name != "posix":
        return
    for path in root.glob(f"{prefix}*"):
        pid = _maker(path.name[len(prefix):])
        if pid is None or _running(pid):
            continue
        try:
            if path.lstat().st_uid != os.getuid() or not path.is_dir():
                continue
        except OSError:  # removed meanwhile by another process sweeping
            continue
        shutil.rmtree(path, ignore_errors=True)


def _maker(rest: str) -> int | None:
    """The pid a folder's name gives after its prefix (``1234-abcd``), or None."""
    pid, dash, _ = rest.partition("-")
    return int(pid) if dash and pid.isdigit() and 0 < int(pid) < 2**31 else None


def _running(pid: int) -> bool:
    """Whether a process ``pid`` exists (another user's too: probing it is refused, not failed)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

"""Temporary folders named by the process that made them, so that a later one removes those of
processes that have ended.

A process killed with ``kill -9``, or by the out-of-memory killer, runs no cleanup: the folders
it kept in the temporary folder (a process pool's results, the command trainer's copy of a
program's checkpoint, which may be large) would stay there for good. Each is named
``{prefix}{pid}-{host}-{random}``; making one first removes the folders of that prefix, made on
this host, whose process is gone. A folder of a process that is still running, of another host
(containers that share a temporary folder each have a host name and their own pids), of another
user, or named otherwise is left alone.
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
import tempfile
from pathlib import Path


def scratch_folder(prefix: str) -> Path:
    """A new folder in the temporary folder, named after this process, made after removing the
    folders of ``prefix`` left by processes that have ended."""
    root, host = Path(tempfile.gettempdir()), _host()
    _remove_orphans(root, prefix, host)
    return Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-{host}-", dir=root))


def _remove_orphans(root: Path, prefix: str, host: str) -> None:
    """Remove the folders ``{prefix}{pid}-{host}-*`` in ``root`` made on this host by this user
    whose process has ended. Only where processes can be probed without a signal (POSIX)."""
    if os.name != "posix":
        return
    for path in root.glob(f"{prefix}*"):
        pid = _maker(path.name[len(prefix):], host)
        if pid is None or _running(pid):
            continue
        try:
            found = path.lstat()
        except OSError:  # removed meanwhile by another process sweeping
            continue
        if found.st_uid != os.getuid() or not stat.S_ISDIR(found.st_mode):  # a file or a link: not ours
            continue
        shutil.rmtree(path, ignore_errors=True)


def _host() -> str:
    """This host's name as folder names carry it (no separator or dash of its own)."""
    return "".join(c if c.isalnum() or c in "._" else "_" for c in socket.gethostname())[:64] or "host"


def _maker(rest: str, host: str) -> int | None:
    """The pid a folder's name gives after its prefix (``1234-{host}-abcd``) when ``host`` made
    it, or None."""
    pid, dash, tail = rest.partition("-")
    if not (dash and pid.isdigit() and tail.startswith(f"{host}-")):
        return None
    return int(pid) if 0 < int(pid) < 2**31 else None


def _running(pid: int) -> bool:
    """Whether a process ``pid`` exists (another user's too: probing it is refused, not failed)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

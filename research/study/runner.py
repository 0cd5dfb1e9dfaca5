"""One runner per study: a lease in the store, renewed by a heartbeat.

A process that runs a study (``Study.run``) first claims it: a row in the store's ``runners``
table with its pid, host and start, whose heartbeat a daemon thread renews every
``HEARTBEAT_SECONDS`` on a connection of its own. A second runner is refused in one line
naming the first. A runner that died (``kill -9``, a power loss, a host that vanished) holds
nothing: on the same host its pid is gone at once (a zombie, dead but not yet reaped by its
parent, counts as gone), on any host its heartbeat stops and after
``STALE_SECONDS`` the next runner may take over. Trials a dead runner left ``running`` read as
``interrupted`` (``Store.trials``).

The same rows keep a study's clock: each run's time is added to ``study_clock`` when it ends
(a dead runner's, up to its last heartbeat, when the next one claims the study), so a
budget of minutes counts every run (``elapsed``).
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from research.study.store import StoreError

if TYPE_CHECKING:
    from research.study.store import Store
    from research.study.store import Study as StudyRecord

HEARTBEAT_SECONDS = 5.0
STALE_SECONDS = 30.0
TABLES = ("CREATE TABLE IF NOT EXISTS runners (study_id INTEGER PRIMARY KEY, pid INTEGER NOT NULL, "
          "host TEXT NOT NULL, started REAL NOT NULL, heartbeat REAL NOT NULL)",
          "CREATE TABLE IF NOT EXISTS study_clock (study_id INTEGER PRIMARY KEY, seconds REAL NOT NULL)",
          "CREATE TABLE IF NOT EXISTS runs (id INTEGER PRIMARY KEY, study_id INTEGER NOT NULL, host TEXT NOT NULL, "
          "started REAL NOT NULL, info TEXT NOT NULL)")


@dataclass(frozen=True)
class Runner:
    """Who holds a study: a process on a host, since when, and its last heartbeat."""

    pid: int
    host: str
    started: float
    heartbeat: float

    def alive(self, now: float) -> bool:
        """Its heartbeat is fresh and, on this host, its process exists."""
        if self.host == socket.gethostname() and not _pid_exists(self.pid):
            return False
        return now - self.heartbeat < STALE_SECONDS

    def mine(self) -> bool:
        return self.pid == os.getpid() and self.host == socket.gethostname()

    def describe(self) -> str:
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.started))
        return f"pid {self.pid} on {self.host}, running since {since}"


def holder(store: Store, study: StudyRecord) -> Runner | None:
    """The live runner of ``study``, or None (never one, or it died)."""
    try:
        row = store.db.execute("SELECT pid, host, started, heartbeat FROM runners WHERE study_id = ?",
                               (study.id,)).fetchone()
    except sqlite3.OperationalError:  # a store no runner has claimed anything in: no table yet
        return None
    runner = Runner(*row) if row is not None else None
    return runner if runner is not None and runner.alive(time.time()) else None


def refuse_if_run_elsewhere(store: Store, study: StudyRecord) -> None:
    """The StoreError ``claim`` would raise, raised before a command prints what it starts."""
    runner = holder(store, study)
    if runner is not None and not runner.mine():
        raise _busy(study, runner)


def _busy(study: StudyRecord, runner: Runner) -> StoreError:
    return StoreError(f"study '{study.name}' is already being run by {runner.describe()}; wait for it to end, or "
                      f"stop it (Ctrl-C, or kill {runner.pid}) and run this again")


def elapsed(store: Store, study: StudyRecord) -> float:
    """Seconds ``study`` has been run, over all its runs, the live one included."""
    try:
        row = store.db.execute("SELECT seconds FROM study_clock WHERE study_id = ?", (study.id,)).fetchone()
    except sqlite3.OperationalError:  # never run under a lease
        return 0.0
    live = holder(store, study)
    return (row[0] if row else 0.0) + (time.time() - live.started if live is not None else 0.0)


def _add_time(db: sqlite3.Connection, study_id: int, seconds: float) -> None:
    db.execute("INSERT INTO study_clock VALUES (?, ?) ON CONFLICT (study_id) DO UPDATE SET seconds = seconds + ?",
               (study_id, max(seconds, 0.0), max(seconds, 0.0)))


class Lease:
    """This process's claim on a study, renewed until :meth:`release`."""

    def __init__(self, store: Store, study: StudyRecord, started: float):
        self.started = started
        self.path, self.study_id = store.path, study.id
        self.pid, self.host = os.getpid(), socket.gethostname()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._beat, name="research-heartbeat", daemon=True)
        self.thread.start()

    def _beat(self) -> None:
        db = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
        try:
            while not self.stopped.wait(HEARTBEAT_SECONDS):
                db.execute("UPDATE runners SET heartbeat = ? WHERE study_id = ? AND pid = ? AND host = ?",
                           (time.time(), self.study_id, self.pid, self.host))
        except sqlite3.Error:  # the store went away: the study's own writes will say so
            pass
        finally:
            db.close()

    def release(self, store: Store) -> None:
        """Stop the heartbeat and give the study up (a later runner needs no wait)."""
        self.stopped.set()
        self.thread.join()
        with store.transaction() as db:
            _add_time(db, self.study_id, time.time() - self.started)
            db.execute("DELETE FROM runners WHERE study_id = ? AND pid = ? AND host = ?",
                       (self.study_id, self.pid, self.host))


def last_run(store: Store, study: StudyRecord) -> dict[str, Any] | None:
    """What the study's last run recorded of itself (research.study.provenance), or None."""
    try:
        row = store.db.execute("SELECT host, started, info FROM runs WHERE study_id = ? ORDER BY id DESC LIMIT 1",
                               (study.id,)).fetchone()
    except sqlite3.OperationalError:  # never run under a lease
        return None
    if row is None:
        return None
    return {"host": row[0], "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(row[1])),
            **json.loads(row[2])}


def claim(store: Store, study: StudyRecord, info: Mapping[str, Any] | None = None) -> Lease:
    """Become ``study``'s runner (recording ``info``, what this run runs on); a live other
    runner is a StoreError naming it."""
    now = time.time()
    with store.transaction() as db:
        for table in TABLES:
            db.execute(table)
        if db.execute("SELECT 1 FROM studies WHERE id = ?", (study.id,)).fetchone() is None:
            raise StoreError(f"study '{study.name}' was deleted from {store.path} as this run began; nothing of it "
                             "is trained again")
        row = db.execute("SELECT pid, host, started, heartbeat FROM runners WHERE study_id = ?",
                         (study.id,)).fetchone()
        if row is not None:
            runner = Runner(*row)
            if runner.alive(now) and not runner.mine():
                raise _busy(study, runner)
            _add_time(db, study.id, runner.heartbeat - runner.started)  # a run that never released its claim
        db.execute("INSERT OR REPLACE INTO runners VALUES (?, ?, ?, ?, ?)",
                   (study.id, os.getpid(), socket.gethostname(), now, now))
        db.execute("INSERT INTO runs (study_id, host, started, info) VALUES (?, ?, ?, ?)",
                   (study.id, socket.gethostname(), now, json.dumps(dict(info or {}))))
    return Lease(store, study, now)


def _pid_exists(pid: int) -> bool:
    """Whether process ``pid`` is running on this host. A zombie (killed, not yet reaped by its
    parent) is not: it holds nothing, and waiting for its parent could take the whole stale time."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        pass
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """Whether ``pid`` has exited and waits to be reaped, as Linux's /proc says (False where
    there is no /proc)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2:][:1] in ("Z", "X")  # "pid (command) state ..."

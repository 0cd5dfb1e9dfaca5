"""Helpers for the study tests: run the CLI, read a store behind its back, compare curves."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from research.cli import app
from research.study.store import METRIC_COLUMNS, Store

runner = CliRunner()

# Every number of a curve except the wall-clock time of the epoch.
COMPARED = tuple(c for c in METRIC_COLUMNS if c != "seconds")
TINY = ["--hidden", "16", "--epochs", "3"]


def research_command() -> list[str]:
    """The installed console script of this interpreter's environment."""
    beside = Path(sys.executable).parent / "research"
    found = str(beside) if beside.exists() else shutil.which("research")
    assert found, "the `research` console script is not installed; run pip install -e '.[test]'"
    return [found]


def cli(*args: str) -> Any:
    """Run the app in process; returns typer's Result (exit_code, stdout, stderr)."""
    return runner.invoke(app, [str(a) for a in args])


def start(args: list[str], cwd: Path) -> subprocess.Popen:
    """Start `research ARGS` in its own session (so its worker processes can be signalled
    as a group), output captured."""
    return subprocess.Popen(research_command() + [str(a) for a in args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def run(args: list[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(research_command() + [str(a) for a in args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def signal_group(process: subprocess.Popen, sig: int) -> None:
    """Send ``sig`` to the process group ``process`` leads (itself and its workers)."""
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass


def kill_group(process: subprocess.Popen) -> str:
    """SIGKILL the whole group (the leader and its workers); returns the leader's stderr."""
    signal_group(process, signal.SIGKILL)
    return process.communicate(timeout=30)[1] or ""


def query(path: Path, sql: str, args: tuple = ()) -> list[tuple]:
    """Read the store with a plain SQLite connection, as another program would."""
    db = sqlite3.connect(path, timeout=30)
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


def wait_for(condition: Callable[[], bool], timeout: float, interval: float = 0.01,
             process: subprocess.Popen | None = None) -> bool:
    """Poll ``condition`` until it holds; False on timeout or when ``process`` has ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return True
        except sqlite3.OperationalError:  # the store's tables are not created yet
            pass
        if process is not None and process.poll() is not None:
            return False
        time.sleep(interval)
    return False


def epochs_by_trial(path: Path, study: str) -> dict[int, list[int]]:
    """The committed (live) epochs of every trial of ``study``, straight from SQLite."""
    with Store(path, create=False) as store:
        curves = store.curves(store.study(study))
        numbers = [t.number for t in store.trials(store.study(study))]
    return {n: [row["epoch"] for row in curves.get(n, [])] for n in numbers}


def statuses(path: Path, study: str) -> dict[int, str]:
    with Store(path, create=False) as store:
        return {t.number: t.status for t in store.trials(store.study(study))}


def curves(path: Path, study: str, *, seconds: bool = False) -> dict[int, list[tuple]]:
    """Every trial's curve as tuples (epoch, metrics...), without ``seconds`` unless asked."""
    columns = METRIC_COLUMNS if seconds else COMPARED
    with Store(path, create=False) as store:
        found = store.curves(store.study(study))
    return {n: [(row["epoch"], *(row[c] for c in columns)) for row in rows] for n, rows in found.items()}


def configs(path: Path, study: str) -> dict[int, dict[str, Any]]:
    with Store(path, create=False) as store:
        return {t.number: t.config for t in store.trials(store.study(study))}


def integrity(path: Path) -> str:
    return query(path, "PRAGMA integrity_check")[0][0]


def dump(path: Path) -> str:
    """Every row of the store as SQL text."""
    db = sqlite3.connect(path)
    try:
        return "\n".join(db.iterdump())
    finally:
        db.close()


def fingerprint(path: Path) -> tuple[str, int, int, bytes]:
    """What must not change when a command is refused: rows, size, mtime, bytes."""
    try:
        rows = dump(path)
    except sqlite3.DatabaseError:  # not a database at all: its bytes say it all
        rows = ""
    state = path.stat()
    return rows, state.st_size, state.st_mtime_ns, path.read_bytes()

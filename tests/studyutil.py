"""Helpers for the study tests: run the CLI, read a store behind its back, compare curves."""

from __future__ import annotations

import json
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
from research.study.store import METRIC_COLUMNS, Store, StoreError

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
    return runner.invoke(app, [str(a) for a in args], prog_name="research")


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


def signal_when(process: subprocess.Popen, condition: Callable[[], bool], sig: int = signal.SIGINT
                ) -> tuple[bool, str]:
    """Send ``sig`` to ``process``'s group once ``condition`` holds, and wait for it to end:
    (whether the condition held, its stderr). The group is killed whatever happens."""
    try:
        caught = wait_for(condition, timeout=90, process=process)
        signal_group(process, sig)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            kill_group(process)
    return caught, stderr


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


# -- a folder where `research` runs as a user runs it -------------------------------------------

WAIT = 120.0


class Folder:
    """A working folder whose `research` commands see ``site`` on PYTHONPATH, as a user who
    ran ``export PYTHONPATH=...`` would."""

    def __init__(self, path: Path, site: Path):
        self.path, self.site = path, site
        path.mkdir(parents=True, exist_ok=True)
        self.env = {**{k: v for k, v in os.environ.items() if k != "PYTHONPATH"}, "PYTHONPATH": str(site)}

    def run(self, *args: Any) -> subprocess.CompletedProcess:
        return subprocess.run(research_command() + [str(a) for a in args], cwd=self.path, env=self.env,
                              capture_output=True, text=True, timeout=WAIT)

    def json(self, *args: Any) -> Any:
        done = self.run(*args, "--json")
        assert done.returncode == 0, done.stdout + done.stderr
        return json.loads(done.stdout)

    def start(self, name: str, *args: Any) -> subprocess.Popen:
        """`research ARGS` in its own process group (it and its workers can be killed
        together); its output goes to NAME.out and NAME.err (a pipe nobody reads would
        block it)."""
        with open(self.path / f"{name}.out", "w") as out, open(self.path / f"{name}.err", "w") as err:
            return subprocess.Popen(research_command() + [str(a) for a in args], cwd=self.path, env=self.env,
                                    stdout=out, stderr=err, text=True, start_new_session=True)

    def said(self, name: str) -> str:
        return (self.path / f"{name}.err").read_text()[-3000:]

    @property
    def db(self) -> Path:
        return self.path / "research.db"




def live_epochs(db: Path) -> int:
    """Epochs committed so far in the store (0 before the run has made it)."""
    if not db.exists():
        return 0
    try:
        with Store(db, create=False) as store:
            return store.db.execute("SELECT COUNT(*) FROM metrics WHERE rolled_back = 0").fetchone()[0]
    except StoreError:  # the file exists, its tables not yet
        return 0


def running_trials(db: Path, study: str) -> int:
    """How many of the study's trials are running now (0 before the run has stored it)."""
    try:
        with Store(db, create=False) as store:
            return sum(t.status == "running" for t in store.trials(store.study(study)))
    except StoreError:
        return 0


def events(db: Path, study: str, kind: str | None = None) -> list[dict[str, Any]]:
    if not db.exists():
        return []
    try:
        with Store(db, create=False) as store:
            found = store.find_study(study)
            return store.events(found, kind=kind) if found else []
    except StoreError:
        return []


def stored(db: Path, study: str) -> tuple[dict[int, str], dict[int, list[dict[str, Any]]]]:
    """Every trial's status, and its curve with every metric it reported (the built-in
    columns it left empty and the wall-clock ``seconds`` left out)."""
    with Store(db, create=False) as store:
        record = store.study(study)
        statuses = {t.number: t.status for t in store.trials(record)}
        curves = {number: [{k: v for k, v in row.items() if v is not None and k != "seconds"} for row in rows]
                  for number, rows in store.curves(record).items()}
    return statuses, curves


def kill_then_resume(folder: Folder, command: list[Any], least: int,
                     after_kill: Callable[[], None] | None = None) -> list[int]:
    """Start ``command``, SIGKILL it and its workers once ``least`` epochs are committed while a
    trial runs (then call ``after_kill``), then run the same command again to the end. Returns
    the trials the kill interrupted."""
    name = command[command.index("--study") + 1]
    process = folder.start("killed", *command)
    try:
        assert wait_for(lambda: live_epochs(folder.db) >= least and running_trials(folder.db, name) > 0, WAIT,
                        process=process), folder.said("killed")
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=WAIT)
    if after_kill is not None:
        after_kill()
    statuses, _ = stored(folder.db, name)
    interrupted = [number for number, status in statuses.items() if status == "interrupted"]  # its runner is gone
    assert interrupted, f"the kill interrupted no trial: {statuses}"
    again = folder.run(*command)
    assert again.returncode == 0, again.stderr
    return interrupted


def kept_epochs(folder) -> dict[int, int]:
    """The epoch of each trial's kept best state in a study's checkpoint folder (any study's
    under ``folder``); fails if any other .npz is left there."""
    from research.study.best import read_kept

    files = list(Path(folder).rglob("*.npz"))
    assert all(f.name.endswith("-best.npz") for f in files), files
    return {int(f.name.split("-")[1]): read_kept(f).epoch for f in files}

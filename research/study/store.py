"""The SQLite store of studies, trials, learning curves and events.

One file (``research.db`` by default) in WAL mode, so readers (``research show``, a
dashboard) never block the writer and never see a half-written epoch. Every finished epoch
and every event is committed as it happens. Only the process that owns a study writes to
it; workers send their results back to that process.
"""

from __future__ import annotations

import json
import math
import os
import re
import sqlite3
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from research.errors import ResearchError

SCHEMA_VERSION = 2  # 2: metrics.extra, the metrics a trainer reports beyond METRIC_COLUMNS
TRIAL_STATUSES = ("pending", "running", "finished", "failed", "diverged", "pruned", "interrupted")
DONE_STATUSES = ("finished", "failed", "diverged", "pruned")
METRIC_COLUMNS = ("train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds")
LOCK_WAIT = 60.0  # seconds a connection waits for another one's lock before giving up
CONFIRMATIONS_FROM = 1_000_000
"""Confirmation trials (``research confirm``: a trial trained again with another seed) are
numbered from here, apart from the search's trials, whose numbers samplers and budgets count."""
CONFIRMATIONS_TABLE = """CREATE TABLE IF NOT EXISTS confirmations (
    trial_id INTEGER PRIMARY KEY REFERENCES trials(id),
    confirms INTEGER NOT NULL,
    replicate INTEGER NOT NULL
)"""

ADDED_INDEXES = {"metrics_by_trial": "CREATE INDEX IF NOT EXISTS metrics_by_trial ON metrics (trial_id, rolled_back)"}
"""Indexes of SCHEMA that stores made before them lack: their first writer adds them. They change
no layout (an older research reads such a store as before), so the schema version stays.
``metrics_by_trial`` finds a study's epochs, rolled back ones too, through its trials (to count
them, find its last epoch row, the epochs after a cursor) instead of reading every study's."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS studies (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    strategy TEXT NOT NULL,
    settings TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS trials (
    id INTEGER PRIMARY KEY,
    study_id INTEGER NOT NULL REFERENCES studies(id),
    number INTEGER NOT NULL,
    config TEXT NOT NULL,
    seed INTEGER NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    round INTEGER,
    started REAL,
    ended REAL,
    UNIQUE (study_id, number)
);
CREATE TABLE IF NOT EXISTS metrics (
    id INTEGER PRIMARY KEY,
    trial_id INTEGER NOT NULL REFERENCES trials(id),
    epoch INTEGER NOT NULL,
    train_loss REAL, train_acc REAL, val_loss REAL, val_acc REAL, lr REAL, seconds REAL,
    rolled_back INTEGER NOT NULL DEFAULT 0,
    extra TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS live_epochs ON metrics (trial_id, epoch) WHERE rolled_back = 0;
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    study_id INTEGER NOT NULL REFERENCES studies(id),
    trial_id INTEGER REFERENCES trials(id),
    time REAL NOT NULL,
    kind TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_study ON events (study_id, id);
""" + "".join(f"{statement};\n" for statement in ADDED_INDEXES.values())


TABLES = tuple(re.findall(r"CREATE TABLE IF NOT EXISTS (\w+)", SCHEMA))
"""The tables every store has (``confirmations`` comes with the first confirm)."""


class StoreError(ResearchError):
    """A store that cannot be used (wrong file, newer schema, unknown study)."""


class EmptyStore(StoreError):
    """A store file with no tables yet: opened for reading, it holds nothing (its first study,
    or another process making it this moment, writes them)."""


@dataclass(frozen=True)
class Study:
    id: int
    name: str
    strategy: str
    settings: dict[str, Any]
    created: float


@dataclass(frozen=True)
class TrialRecord:
    id: int
    study_id: int
    number: int
    config: dict[str, Any]
    seed: int
    status: str
    error: str | None
    round: int | None
    started: float | None
    ended: float | None


def _finite(value: float | None) -> float | None:
    """SQLite has no NaN: store non-finite metrics as NULL."""
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def _epoch_rows(columns: tuple[str, ...], rows: list[tuple], skip: int = 0) -> list[dict[str, Any]]:
    """Each row's epoch as a dict: its ``columns`` (the fields after the first ``skip``), then its
    extra metrics (JSON in the last field). Every row's extra metrics are decoded in one call: a
    call a row took as long as the rest of reading a study's 100,000 epochs."""
    extras = json.loads(f"[{','.join(row[-1] or 'null' for row in rows)}]")
    return [dict(zip(columns, row[skip:]), **extra) if extra else dict(zip(columns, row[skip:]))
            for row, extra in zip(rows, extras)]


class Store:
    """A connection to one store file. Not shared between processes or threads.

    ``read_only`` opens the file through SQLite's read-only mode (no write can go through
    this connection, it can never create the file or change its schema): for viewers that
    must not touch a store that studies are writing, like the dashboard.

    A store in a folder nobody can write to (a read-only mount, an archive) is read as
    immutable when it is not being written (no ``-wal`` file beside it): SQLite's WAL readers
    otherwise need to create their ``-shm`` file there. A write to it is refused in one line.
    """

    def __init__(self, path: str | os.PathLike, *, create: bool = True, read_only: bool = False):
        self.path = Path(path)
        self.read_only = read_only
        self.extra = "extra"  # the column of extra metrics ("NULL" when reading a schema-1 store)
        create = create and not read_only
        if not create and not self.path.exists():
            raise StoreError(f"store {self.path} does not exist; run a study first or pass --store PATH")
        if self.path.is_dir():  # SQLite says "disk I/O error" or "unable to open database file"
            raise StoreError(f"store {self.path} is a folder, not a store file; pass --store with a file's path "
                             f"(such as {self.path / 'research.db'})")
        # Read as it is, SQLite making no -shm file beside it: a store in a folder that cannot be
        # written to, or a read-only one (whose -shm, made read-only too, kept refusing writes
        # after the store was made writable again), unless a write-ahead log holds its newest rows.
        writable = os.access(self.path.parent, os.W_OK) and os.access(self.path, os.W_OK)
        self.frozen = self.path.exists() and not writable and not Path(f"{self.path}-wal").exists()
        if create and self.path.is_file() and not os.access(self.path, os.W_OK):
            raise StoreError(self._read_only_message())
        if create and self.path.parent.exists() and not self.path.parent.is_dir():
            raise StoreError(f"cannot make store {self.path}: {self.path.parent} is a file, not a folder; pass another "
                             "--store PATH")
        if create and not self.path.parent.is_dir():  # SQLite says only "unable to open database file"
            raise StoreError(f"cannot make store {self.path}: folder {self.path.parent} does not exist; create it or "
                             "pass another --store PATH")
        if create and not self.path.exists() and not os.access(self.path.parent, os.W_OK):  # the same words
            raise StoreError(f"cannot make store {self.path}: folder {self.path.parent} cannot be written to; make it "
                             "writable or pass another --store PATH")
        try:
            if read_only or (self.frozen and not create):
                mode = "ro&immutable=1" if self.frozen else "ro"
                uri = f"{self.path.resolve().as_uri()}?mode={mode}"
                self.db = sqlite3.connect(uri, uri=True, timeout=LOCK_WAIT, isolation_level=None)
            else:
                self.db = sqlite3.connect(self.path, timeout=LOCK_WAIT, isolation_level=None)
        except sqlite3.Error as err:  # a directory, a missing folder, no permission
            raise StoreError(f"cannot open store {self.path} ({err}); pass another --store PATH") from None
        try:
            if self.frozen and create:
                raise StoreError(self._frozen_message())
            self.db.execute(f"PRAGMA busy_timeout = {LOCK_WAIT * 1000:.0f}")
            # Check before switching to WAL: a file that is not a store is left untouched.
            self._check_schema(create)
            if read_only or self.frozen:
                self.db.execute("PRAGMA query_only = ON")
            else:
                self._use_wal()
                self.db.execute("PRAGMA synchronous = NORMAL")
                self.db.execute("PRAGMA foreign_keys = ON")
        except sqlite3.DatabaseError as err:
            self.db.close()
            if isinstance(err, sqlite3.OperationalError) and "readonly" in str(err) and create:  # its -shm, say
                raise StoreError(self._read_only_message()) from None
            if isinstance(err, sqlite3.OperationalError) and "locked" in str(err):
                raise StoreError(f"store {self.path} stayed locked by another process for {LOCK_WAIT:.0f} s ({err}); "
                                 "let that process finish, or pass another --store PATH") from None
            if getattr(err, "sqlite_errorname", None) == "SQLITE_CORRUPT":  # a store's file damaged (cut short):
                raise  # as when a damaged page is read later (research.cli.console), not "another --store"
            raise StoreError(f"{self.path} is not a research store ({err}); pass another --store PATH") from None
        except StoreError:
            self.db.close()
            raise

    def _use_wal(self) -> None:
        """Put the file in WAL mode (a no-op once it is), retrying while another connection holds the lock.

        Switching needs the exclusive lock; when two connections both hold a read lock and want it,
        SQLite answers one "database is locked" at once without waiting (its deadlock rule), so the
        busy timeout does not cover this: a run creating its store while another process opens it."""
        deadline = time.monotonic() + LOCK_WAIT
        while True:
            try:
                self.db.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as err:
                if "locked" not in str(err) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def _read_only_files(self) -> list[Path]:
        """The store's files (itself, its -wal and -shm) that exist and cannot be written."""
        files = [self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm")]
        return [file for file in files if file.exists() and not os.access(file, os.W_OK)]

    def _read_only_message(self) -> str:
        files = " ".join(str(file) for file in self._read_only_files() or [self.path])
        return (f"store {self.path} is a read-only file; it can be read (research show, studies, report, "
                f"dashboard) but a study cannot run or change it: make it writable (chmod u+w {files})")

    def _frozen_message(self) -> str:
        if os.access(self.path.parent, os.W_OK):  # the folder takes writes: the store's files are read-only
            return self._read_only_message()
        return (f"store {self.path} is in a folder that cannot be written to; it can be read (research show, "
                f"studies, report, dashboard) but a study cannot run or change it there: copy it to a writable "
                f"folder, with the {self.path.stem}-checkpoints folder beside it (its trials' kept weights)")

    def _check_schema(self, create: bool) -> None:
        tables = {row[0] for row in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not tables and not create:  # readers never write, not even a schema
            raise EmptyStore(f"{self.path} is empty, not a research store yet; run a study first or pass --store PATH")
        if not tables:
            self._use_wal()  # before the tables: no one sees a store in the old journal mode
            with self.transaction() as db:
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
                db.execute("INSERT OR IGNORE INTO meta VALUES ('store_id', ?)", (uuid.uuid4().hex,))
            return
        row = self.db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() if "meta" in tables else None
        if row is None:
            raise StoreError(f"{self.path} is an SQLite file but not a research store; pass another --store PATH")
        missing = [table for table in TABLES if table not in tables]
        if missing:
            raise StoreError(f"{self.path} is a damaged research store (it has no table {', '.join(missing)}); "
                             "restore it from a copy, or pass another --store PATH")
        version = int(row[0]) if str(row[0]).isdigit() else -1
        if version == 1:
            if create:
                self._upgrade_from_1()
            else:  # a reader never writes: it reads the old layout as it is
                self.extra = "NULL"
        elif version != SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} has store schema {row[0]} but this research reads schema {SCHEMA_VERSION}; "
                "upgrade research or use another --store PATH"
            )
        if create and self.identity() is None:  # a store from before ids, at its first writer
            with self.transaction() as db:
                db.execute("INSERT OR IGNORE INTO meta VALUES ('store_id', ?)", (uuid.uuid4().hex,))
        if create:
            self._add_indexes()

    def _add_indexes(self) -> None:
        """Create the ADDED_INDEXES this store lacks (a store from before them, at its first writer)."""
        made = {row[0] for row in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
        missing = [statement for name, statement in ADDED_INDEXES.items() if name not in made]
        if missing:
            with self.transaction() as db:
                for statement in missing:
                    db.execute(statement)

    def _upgrade_from_1(self) -> None:
        """Schema 1 to 2 in place (a column for extra metrics), after a backup copy beside it."""
        backup = self.path.with_name(self.path.name + ".schema-1.bak")
        target = sqlite3.connect(backup)
        try:
            self.db.backup(target)
        finally:
            target.close()
        with self.transaction() as db:
            db.execute("ALTER TABLE metrics ADD COLUMN extra TEXT")
            db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))

    def identity(self) -> str | None:
        """A random id made with the store (given by its first writer, for a store from before
        ids), kept in its meta table: the store under any file name, copies of it too. Its
        checkpoints folder names it, so the folder stays its own when both are moved. None for a
        store from before ids that no writer has opened yet."""
        row = self.db.execute("SELECT value FROM meta WHERE key = 'store_id'").fetchone()
        return None if row is None else str(row[0])

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic write (BEGIN IMMEDIATE takes the write lock up front: no deadlocks).

        BEGIN and COMMIT are inside the ``try``: a Ctrl-C that comes while BEGIN waits for the
        lock is raised as the call returns, and one between the block and COMMIT at the COMMIT
        call; either way the transaction is rolled back, never left open for the next one."""
        if self.frozen:
            raise StoreError(self._frozen_message())
        try:
            self.db.execute("BEGIN IMMEDIATE")
            yield self.db
            self.db.execute("COMMIT")
        except BaseException as err:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            if isinstance(err, sqlite3.OperationalError) and "readonly" in str(err) and not self.read_only:
                # the file made read-only since it was opened
                raise StoreError(self._read_only_message()) from None
            raise

    # studies -------------------------------------------------------------------------------

    def create_study(self, name: str, strategy: str, settings: Mapping[str, Any]) -> Study:
        with self.transaction() as db:
            try:
                db.execute(
                    "INSERT INTO studies (name, strategy, settings, created) VALUES (?, ?, ?, ?)",
                    (name, strategy, json.dumps(settings), time.time()),
                )
            except sqlite3.IntegrityError:
                raise StoreError(f"study '{name}' already exists in {self.path}; choose another --study name") from None
        return self.study(name)

    def rename_study(self, study: Study, new: str) -> Study:
        """Give ``study`` another name; a name already taken is a StoreError."""
        with self.transaction() as db:
            try:
                db.execute("UPDATE studies SET name = ? WHERE id = ?", (new, study.id))
            except sqlite3.IntegrityError:
                raise StoreError(f"study '{new}' already exists in {self.path}; choose another name") from None
        return self.study(new)

    def delete_study(self, study: Study) -> None:
        """Remove ``study`` with its trials, curves and events, in one transaction."""
        with self.transaction() as db:
            trials = "SELECT id FROM trials WHERE study_id = ?"
            db.execute(f"DELETE FROM metrics WHERE trial_id IN ({trials})", (study.id,))
            db.execute("DELETE FROM events WHERE study_id = ?", (study.id,))
            confirmations = "confirmations"  # made by the first `research confirm`; refers to trials
            if db.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (confirmations,)).fetchone():
                db.execute(f"DELETE FROM {confirmations} WHERE trial_id IN ({trials})", (study.id,))
            db.execute("DELETE FROM trials WHERE study_id = ?", (study.id,))
            for table in ("runners", "study_clock", "runs"):  # tables the first runner creates
                if db.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (table,)).fetchone():
                    db.execute(f"DELETE FROM {table} WHERE study_id = ?", (study.id,))
            db.execute("DELETE FROM studies WHERE id = ?", (study.id,))

    def find_study(self, name: str) -> Study | None:
        row = self.db.execute("SELECT id, name, strategy, settings, created FROM studies WHERE name = ?", (name,)).fetchone()
        if row is None:
            return None
        return Study(row[0], row[1], row[2], json.loads(row[3]), row[4])

    def study(self, name: str) -> Study:
        found = self.find_study(name)
        if found is None:
            names = ", ".join(s.name for s in self.studies()) or "none yet"
            raise StoreError(f"no study '{name}' in {self.path}; studies: {names}")
        return found

    def studies(self) -> list[Study]:
        rows = self.db.execute("SELECT id, name, strategy, settings, created FROM studies ORDER BY id").fetchall()
        return [Study(r[0], r[1], r[2], json.loads(r[3]), r[4]) for r in rows]

    def update_settings(self, study: Study, settings: Mapping[str, Any]) -> None:
        with self.transaction() as db:
            db.execute("UPDATE studies SET settings = ? WHERE id = ?", (json.dumps(settings), study.id))

    # trials --------------------------------------------------------------------------------

    def add_trial(self, study: Study, number: int, config: Mapping[str, Any], seed: int,
                  round: int | None = None) -> TrialRecord:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO trials (study_id, number, config, seed, status, round, started) "
                "VALUES (?, ?, ?, ?, 'running', ?, ?)",
                (study.id, number, json.dumps(config), seed, round, time.time()),
            )
        return self.trial(study, number)

    def trial(self, study: Study, number: int) -> TrialRecord:
        row = self.db.execute(
            "SELECT id, study_id, number, config, seed, status, error, round, started, ended "
            "FROM trials WHERE study_id = ? AND number = ?", (study.id, number)).fetchone()
        if row is None:
            raise StoreError(f"study '{study.name}' has no trial {number}")
        return TrialRecord(row[0], row[1], row[2], json.loads(row[3]), *row[4:])

    def trials(self, study: Study) -> list[TrialRecord]:
        """The study's trials; one left ``running`` by a runner that is gone reads as ``interrupted``."""
        rows = self.db.execute(
            "SELECT id, study_id, number, config, seed, status, error, round, started, ended "
            "FROM trials WHERE study_id = ? ORDER BY number", (study.id,)).fetchall()
        trials = [TrialRecord(r[0], r[1], r[2], json.loads(r[3]), *r[4:]) for r in rows]
        if self._runner_gone(study, [t.status for t in trials]):
            trials = [replace(t, status="interrupted") if t.status == "running" else t for t in trials]
        return trials

    def statuses(self, study: Study) -> dict[int, tuple[str, int | None]]:
        """Each trial's (status, round) by number, as ``trials`` reads them, without their
        configurations: a sampler's history needs them before every trial, and decoding every
        configuration each time made a study's trials slower the more it had."""
        rows = self.db.execute("SELECT number, status, round FROM trials WHERE study_id = ? ORDER BY number",
                               (study.id,)).fetchall()
        gone = self._runner_gone(study, [status for _, status, _ in rows])
        return {number: ("interrupted" if gone and status == "running" else status, round_)
                for number, status, round_ in rows}

    def configs(self, study: Study, numbers: Iterable[int]) -> dict[int, dict[str, Any]]:
        """The configurations of the study's trials ``numbers`` (those that exist), by number."""
        wanted, found = sorted(set(numbers)), {}
        for start in range(0, len(wanted), 500):  # within SQLite's limit on a query's parameters
            part = wanted[start:start + 500]
            rows = self.db.execute(f"SELECT number, config FROM trials WHERE study_id = ? AND number IN "
                                   f"({', '.join('?' * len(part))})", (study.id, *part)).fetchall()
            found |= {number: json.loads(config) for number, config in rows}
        return found

    def _runner_gone(self, study: Study, statuses: list[str]) -> bool:
        """Whether trials marked running are left by a runner that is gone (they read as interrupted)."""
        if "running" not in statuses:
            return False
        from research.study.runner import holder

        return holder(self, study) is None

    def add_confirmation(self, study: Study, number: int, config: Mapping[str, Any], seed: int, confirms: int,
                         replicate: int) -> TrialRecord:
        """Record trial ``number`` (from CONFIRMATIONS_FROM) as replicate ``replicate`` of trial
        ``confirms``: its configuration with another seed."""
        with self.transaction() as db:
            db.execute(CONFIRMATIONS_TABLE)
            db.execute("INSERT INTO trials (study_id, number, config, seed, status, started) "
                       "VALUES (?, ?, ?, ?, 'pending', ?)", (study.id, number, json.dumps(config), seed, time.time()))
            trial_id = db.execute("SELECT id FROM trials WHERE study_id = ? AND number = ?",
                                  (study.id, number)).fetchone()[0]
            db.execute("INSERT INTO confirmations VALUES (?, ?, ?)", (trial_id, confirms, replicate))
        return self.trial(study, number)

    def confirmations(self, study: Study) -> dict[int, tuple[int, int]]:
        """The study's confirmation trials: number -> (the trial it confirms, its replicate)."""
        if not self.db.execute("SELECT 1 FROM sqlite_master WHERE name = 'confirmations'").fetchone():
            return {}
        rows = self.db.execute("SELECT t.number, c.confirms, c.replicate FROM confirmations c "
                               "JOIN trials t ON t.id = c.trial_id WHERE t.study_id = ?", (study.id,)).fetchall()
        return {number: (confirms, replicate) for number, confirms, replicate in rows}

    def set_config(self, trial: TrialRecord, config: Mapping[str, Any]) -> None:
        """Record a trial's effective configuration (defaults filled in by its plugins)."""
        with self.transaction() as db:
            db.execute("UPDATE trials SET config = ? WHERE id = ?", (json.dumps(config), trial.id))

    def set_status(self, trial: TrialRecord, status: str, error: str | None = None) -> None:
        if status not in TRIAL_STATUSES:
            raise ValueError(f"unknown trial status {status!r}")
        ended = time.time() if status in DONE_STATUSES or status == "interrupted" else None
        with self.transaction() as db:
            db.execute("UPDATE trials SET status = ?, error = ?, ended = ? WHERE id = ?",
                       (status, error, ended, trial.id))

    def retry_failed(self, study: Study) -> list[int]:
        """The study's failed trials become interrupted, to be resumed (their error cleared):
        returns their numbers."""
        with self.transaction() as db:
            numbers = [n for (n,) in db.execute(
                "SELECT number FROM trials WHERE study_id = ? AND status = 'failed' ORDER BY number", (study.id,))]
            db.execute("UPDATE trials SET status = 'interrupted', error = NULL, ended = ? "
                       "WHERE study_id = ? AND status = 'failed'", (time.time(), study.id))
        return numbers

    def mark_running_interrupted(self, study: Study) -> int:
        """Trials left 'running' by a process that died are interrupted: returns how many."""
        with self.transaction() as db:
            cursor = db.execute("UPDATE trials SET status = 'interrupted', ended = ? "
                                "WHERE study_id = ? AND status = 'running'", (time.time(), study.id))
        return cursor.rowcount

    # metrics -------------------------------------------------------------------------------

    def add_epoch(self, trial: TrialRecord, epoch: int, metrics: Mapping[str, float]) -> None:
        """Commit one finished epoch. Idempotent: an epoch trained again after a resume (from an
        older checkpoint, so with the same values) leaves the committed row as it was."""
        values = tuple(_finite(metrics.get(column)) for column in METRIC_COLUMNS)
        extra = {name: _finite(value) for name, value in metrics.items() if name not in METRIC_COLUMNS}
        with self.transaction() as db:
            db.execute(f"INSERT OR IGNORE INTO metrics (trial_id, epoch, {', '.join(METRIC_COLUMNS)}, extra) "
                       f"VALUES (?, ?, {', '.join('?' * len(METRIC_COLUMNS))}, ?)",
                       (trial.id, epoch, *values, json.dumps(extra) if extra else None))

    def roll_back(self, trial: TrialRecord, after_epoch: int) -> int:
        """Mark the epochs after ``after_epoch`` as rolled back (kept, but no longer the live
        curve); returns how many."""
        with self.transaction() as db:
            return _mark_rolled_back(db, trial, after_epoch)

    def curve(self, trial: TrialRecord | int, *, rolled_back: bool = False) -> list[dict[str, float | None]]:
        """A trial's live curve by epoch; with ``rolled_back=True`` also the epochs undone by
        rollbacks, in the order they were trained, each with a ``rolled_back`` flag."""
        trial_id = trial if isinstance(trial, int) else trial.id
        columns = ("epoch",) + METRIC_COLUMNS + ("rolled_back",)
        where = "" if rolled_back else " AND rolled_back = 0"
        order = "id" if rolled_back else "epoch"
        rows = self.db.execute(f"SELECT {', '.join(columns)}, {self.extra} FROM metrics WHERE trial_id = ?{where} "
                               f"ORDER BY {order}", (trial_id,)).fetchall()
        return _epoch_rows(columns, rows)

    def curves(self, study: Study, *, in_commit_order: bool = False,
               undone: bool = False) -> dict[int, list[dict[str, float | None]]]:
        """Every trial's live curve at once, by trial number (one query). Each epoch is a dict
        of ``epoch``, the METRIC_COLUMNS (None where not reported or not finite) and any
        other metric the trainer reported. With ``in_commit_order`` the dict's trials come in
        the order their first epoch was committed and ``commit`` numbers every epoch in the
        order it was committed across the study (what a pruner saw then). With ``undone``, the
        epochs rollbacks undid instead, in the order they were trained (trials without any are
        left out)."""
        columns = ("epoch",) + METRIC_COLUMNS + (("commit",) if in_commit_order else ())
        order = "m.id" if in_commit_order else "t.number, m.id" if undone else "t.number, m.epoch"
        rows = self.db.execute(
            f"SELECT t.number, m.epoch, {', '.join('m.' + c for c in METRIC_COLUMNS)}"
            f"{', m.id' if in_commit_order else ''}, {self.extra} "
            "FROM metrics m JOIN trials t ON t.id = m.trial_id WHERE t.study_id = ? AND m.rolled_back = ? "
            f"ORDER BY {order}", (study.id, int(undone))).fetchall()
        result: dict[int, list[dict[str, float | None]]] = {}
        for row, epoch in zip(rows, _epoch_rows(columns, rows, skip=1)):
            result.setdefault(row[0], []).append(epoch)
        return result

    def epochs_after(self, study: Study, after: int) -> list[tuple[int, int, dict[str, Any]]]:
        """The live epochs of ``study`` committed after row ``after``, in commit order, each
        as (row id, trial number, the epoch as :meth:`curves` gives it): what a viewer that
        has read up to row ``after`` has not seen yet."""
        columns = ("epoch",) + METRIC_COLUMNS
        rows = self.db.execute(
            f"SELECT m.id, t.number, m.epoch, {', '.join('m.' + c for c in METRIC_COLUMNS)}, {self.extra} "
            "FROM metrics m JOIN trials t ON t.id = m.trial_id "
            "WHERE t.study_id = ? AND m.id > ? AND m.rolled_back = 0 ORDER BY m.id", (study.id, after)).fetchall()
        return [(row[0], row[1], epoch) for row, epoch in zip(rows, _epoch_rows(columns, rows, skip=2))]

    def epochs(self, ids: Iterable[int]) -> dict[int, dict[str, Any]]:
        """The epochs of metric rows ``ids`` (those that exist), by row id, each as :meth:`curves`
        gives it."""
        columns, wanted, found = ("epoch",) + METRIC_COLUMNS, sorted(set(ids)), {}
        for start in range(0, len(wanted), 500):  # within SQLite's limit on a query's parameters
            part = wanted[start:start + 500]
            rows = self.db.execute(f"SELECT id, epoch, {', '.join(METRIC_COLUMNS)}, {self.extra} FROM metrics "
                                   f"WHERE id IN ({', '.join('?' * len(part))})", part).fetchall()
            found |= {row[0]: epoch for row, epoch in zip(rows, _epoch_rows(columns, rows, skip=1))}
        return found

    def live_epochs(self, study: Study) -> tuple[int, int]:
        """How many live epochs ``study`` has and the last row id among all its epochs (0 for
        none): together they change whenever its curves do."""
        found = self.db.execute("SELECT COUNT(*) FILTER (WHERE m.rolled_back = 0), MAX(m.id) FROM metrics m "
                                "JOIN trials t ON t.id = m.trial_id WHERE t.study_id = ?", (study.id,)).fetchone()
        return int(found[0]), int(found[1] or 0)

    def best_by_trial(self, study: Study, metric: str, maximize: bool) -> dict[int, float]:
        """Every trial's best finite value of ``metric`` on its live curve (one query; a metric
        outside the built-in columns is read from the extra ones)."""
        if metric in METRIC_COLUMNS:
            value, args = f"m.{metric}", ()
        elif self.extra == "NULL":  # a schema-1 store read as it is: no extra metrics
            return {}
        else:
            value, args = "json_extract(m.extra, ?)", (f'$."{metric}"',)
        best = "MAX" if maximize else "MIN"
        rows = self.db.execute(
            f"SELECT t.number, {best}({value}) FROM trials t JOIN metrics m ON m.trial_id = t.id "
            "AND m.rolled_back = 0 WHERE t.study_id = ? GROUP BY t.number", (*args, study.id)).fetchall()
        return {number: float(found) for number, found in rows if isinstance(found, (int, float))}

    # events --------------------------------------------------------------------------------

    def add_event(self, study: Study, kind: str, data: Mapping[str, Any],
                  trial: TrialRecord | None = None, *, rolled_back_after: int | None = None) -> int:
        """Record an event; with ``rolled_back_after``, in the same transaction, the epochs of
        ``trial`` after that one marked rolled back (``roll_back``): a rollback's record and its
        mark in the curve are one write, so no reader (nor a resumed run) sees one without the other."""
        with self.transaction() as db:
            cursor = db.execute("INSERT INTO events (study_id, trial_id, time, kind, data) VALUES (?, ?, ?, ?, ?)",
                                (study.id, trial.id if trial else None, time.time(), kind, json.dumps(data)))
            if rolled_back_after is not None and trial is not None:
                _mark_rolled_back(db, trial, rolled_back_after)
        return int(cursor.lastrowid)

    def events(self, study: Study, *, after: int = 0, kind: str | None = None) -> list[dict[str, Any]]:
        query = "SELECT id, trial_id, time, kind, data FROM events WHERE study_id = ? AND id > ?"
        args: list[Any] = [study.id, after]
        if kind is not None:
            query += " AND kind = ?"
            args.append(kind)
        rows = self.db.execute(query + " ORDER BY id", args).fetchall()
        return [{"id": r[0], "trial_id": r[1], "time": r[2], "kind": r[3], "data": json.loads(r[4])} for r in rows]


def find_stored_settings(path: str | os.PathLike, name: str) -> dict[str, Any] | None:
    """The stored settings of study ``name`` in the store at ``path``; None when the store or
    the study does not exist (reading it changes nothing)."""
    if not Path(path).exists() or Path(path).stat().st_size == 0:  # nothing stored yet
        return None
    try:
        with Store(path, create=False) as store:
            found = store.find_study(name)
            return dict(found.settings) if found is not None else None
    except EmptyStore:  # another process is making it (in WAL mode, its tables not yet written)
        return None


def stored_settings(path: str | os.PathLike, name: str) -> dict[str, Any]:
    """The settings study ``name`` in the store at ``path`` was created with
    (``StudySettings(**stored_settings(...))`` resumes it); a StoreError naming the stored
    studies when there is no such study."""
    found = find_stored_settings(path, name)
    if found is not None:
        return found
    if not Path(path).is_file():
        raise StoreError(f"no store file {path}; give the path of the store that holds study '{name}'")
    with Store(path, create=False) as store:
        return dict(store.study(name).settings)  # a StoreError naming the studies it has


def _mark_rolled_back(db: sqlite3.Connection, trial: TrialRecord, after_epoch: int) -> int:
    """Mark ``trial``'s live epochs after ``after_epoch`` rolled back, in ``db``'s transaction;
    how many."""
    return db.execute("UPDATE metrics SET rolled_back = 1 WHERE trial_id = ? AND epoch > ? AND rolled_back = 0",
                      (trial.id, after_epoch)).rowcount

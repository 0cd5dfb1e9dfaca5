"""The SQLite store: schema and version, files that are not stores, WAL, and several
processes writing and reading one file at once."""

import multiprocessing
import os
import shutil
import sqlite3
import traceback
from pathlib import Path

import pytest

from research.study import study as study_module
from research.study.store import SCHEMA_VERSION, Store, StoreError
from tests.studyutil import integrity, query

WRITERS = 2
TRIALS = 12
EPOCHS = 12  # per writer: 12 trials + 144 epochs + 12 statuses + 12 events = 180 commits


def test_new_store_has_schema_version_and_wal(tmp_path):
    path = tmp_path / "research.db"
    with Store(path) as store:
        assert store.studies() == []
    tables = {row[0] for row in query(path, "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"meta", "studies", "trials", "metrics", "events"} <= tables
    assert query(path, "SELECT value FROM meta WHERE key = 'schema_version'") == [(str(SCHEMA_VERSION),)]
    assert query(path, "PRAGMA journal_mode") == [("wal",)]
    with Store(path) as store:  # reopening keeps everything
        assert store.studies() == []


def test_a_new_store_is_in_wal_mode_before_it_has_tables(tmp_path, monkeypatch):
    """A process opening the store while it is being made must never see its tables in the old
    journal mode: switching from there takes the exclusive lock, and two connections switching at
    once got "database is locked" at once, whatever the busy timeout."""
    statements, connect = [], sqlite3.connect

    def traced(*args, **kwargs):
        db = connect(*args, **kwargs)
        db.set_trace_callback(statements.append)
        return db

    monkeypatch.setattr(sqlite3, "connect", traced)
    Store(tmp_path / "research.db").close()
    wal = statements.index("PRAGMA journal_mode = WAL")
    first_table = next(i for i, statement in enumerate(statements) if statement.lstrip().startswith("CREATE TABLE"))
    assert wal < first_table


class LockedAtFirst:
    """A connection whose first ``times`` journal-mode switches answer "database is locked"."""

    def __init__(self, db: sqlite3.Connection, times: int):
        self.db, self.times = db, times

    def execute(self, statement: str, *args):
        if statement.startswith("PRAGMA journal_mode") and self.times:
            self.times -= 1
            raise sqlite3.OperationalError("database is locked")
        return self.db.execute(statement, *args)


def test_the_switch_to_wal_is_retried_while_another_connection_holds_the_lock(tmp_path):
    with Store(tmp_path / "research.db") as store:
        store.db = LockedAtFirst(store.db, times=3)
        store._use_wal()
        assert store.db.times == 0
        store.db = store.db.db


def test_a_store_locked_for_too_long_is_named_as_locked_not_as_a_foreign_file(tmp_path, monkeypatch):
    path = tmp_path / "research.db"
    Store(path).close()

    def locked(self):
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(Store, "_use_wal", locked)
    with pytest.raises(StoreError, match="stayed locked by another process for 60 s .*let that process finish"):
        Store(path)


def test_records_round_trip(tmp_path):
    with Store(tmp_path / "research.db") as store:
        study = store.create_study("s", "caviar", {"trials": 2})
        trial = store.add_trial(study, 0, {"lr": 0.1}, seed=7)
        store.add_epoch(trial, 1, {"val_acc": 0.5, "val_loss": float("nan"), "seconds": 0.1})
        store.add_epoch(trial, 1, {"val_acc": 0.6, "seconds": 0.2})  # a re-sent epoch changes nothing
        store.set_status(trial, "failed", "ValueError: bad")
        assert [row["val_acc"] for row in store.curve(trial)] == [0.5]
        assert store.curve(trial)[0]["val_loss"] is None
        record = store.trial(study, 0)
        assert (record.status, record.error) == ("failed", "ValueError: bad")
        assert (record.config, record.seed) == ({"lr": 0.1}, 7)
        with pytest.raises(StoreError, match="already exists"):
            store.create_study("s", "caviar", {})
        with pytest.raises(StoreError, match="no study 'nope'.*studies: s"):
            store.study("nope")


def test_extra_metrics_round_trip(tmp_path):
    """A trainer's own metrics (beyond the built-in columns) are stored and read back with the
    epoch; a non-finite one reads back as None, like the built-in ones."""
    with Store(tmp_path / "research.db") as store:
        study = store.create_study("s", "caviar", {})
        trial = store.add_trial(study, 0, {}, seed=0)
        store.add_epoch(trial, 1, {"val_acc": 0.5, "val_f1": 0.25, "perplexity": float("inf")})
        store.add_epoch(trial, 2, {"val_acc": 0.6})
        assert store.curve(trial)[0]["val_f1"] == 0.25 and store.curve(trial)[0]["perplexity"] is None
        assert "val_f1" not in store.curve(trial)[1]
        assert store.curves(study)[0][0]["val_f1"] == 0.25
        store.add_epoch(trial, 3, {"val_acc": 0.4, "val_f1": 0.5})
        assert store.best_by_trial(study, "val_f1", maximize=True) == {0: 0.5}
        assert store.best_by_trial(study, "val_f1", maximize=False) == {0: 0.25}
        assert store.best_by_trial(study, "val_acc", maximize=True) == {0: 0.6}
        assert store.best_by_trial(study, "perplexity", maximize=True) == {}  # never finite
        ids = [row_id for (row_id,) in store.db.execute("SELECT id FROM metrics ORDER BY id")]
        assert list(store.epochs([*ids, 999]).values()) == store.curves(study)[0]  # by row id, as curves gives them


def _schema_1(path) -> None:
    """A store as schema 1 left it: no column for extra metrics."""
    with Store(path) as store:
        trial = store.add_trial(store.create_study("old", "caviar", {}), 0, {}, seed=0)
        store.add_epoch(trial, 1, {"val_acc": 0.5})
    db = sqlite3.connect(path)
    db.execute("ALTER TABLE metrics DROP COLUMN extra")
    db.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    db.commit()
    db.close()


def test_a_schema_1_store_is_read_as_it_is_and_upgraded_by_a_writer_after_a_backup(tmp_path):
    path = tmp_path / "research.db"
    _schema_1(path)
    before = path.read_bytes()
    with Store(path, create=False) as reader:
        assert [row["val_acc"] for row in reader.curves(reader.study("old"))[0]] == [0.5]
    assert path.read_bytes() == before  # a reader writes nothing
    with Store(path) as writer:
        trial = writer.trial(writer.study("old"), 0)
        writer.add_epoch(trial, 2, {"val_acc": 0.6, "val_f1": 0.3})
        assert [row.get("val_f1") for row in writer.curve(trial)] == [None, 0.3]
    assert query(path, "SELECT value FROM meta WHERE key = 'schema_version'") == [(str(SCHEMA_VERSION),)]
    backup = tmp_path / "research.db.schema-1.bak"
    assert query(backup, "SELECT value FROM meta WHERE key = 'schema_version'") == [("1",)]
    assert query(backup, "SELECT COUNT(*) FROM metrics") == [(1,)]


def test_a_store_from_before_an_added_index_gets_it_from_its_first_writer_only(tmp_path):
    """An index added to the schema since a store was made: readers read the store as it is, its
    first writer adds the index (once), and the schema version stays (older research reads it)."""
    path = tmp_path / "research.db"
    with Store(path) as store:
        trial = store.add_trial(store.create_study("old", "caviar", {}), 0, {}, seed=0)
        store.add_epoch(trial, 1, {"val_acc": 0.5})
    db = sqlite3.connect(path)
    db.execute("DROP INDEX metrics_by_trial")
    db.commit()
    db.close()
    indexes = "SELECT name FROM sqlite_master WHERE type = 'index' AND name = 'metrics_by_trial'"
    before = path.read_bytes()
    for options in ({"read_only": True}, {"create": False}):
        with Store(path, **options) as reader:
            assert [row["val_acc"] for row in reader.curves(reader.study("old"))[0]] == [0.5]
            assert reader.live_epochs(reader.study("old"))[0] == 1
    assert path.read_bytes() == before and query(path, indexes) == []  # a reader writes nothing
    for _ in range(2):  # the second writer finds it there
        with Store(path) as writer:
            assert writer.live_epochs(writer.study("old"))[0] == 1
    assert query(path, indexes) == [("metrics_by_trial",)]
    assert query(path, "SELECT value FROM meta WHERE key = 'schema_version'") == [(str(SCHEMA_VERSION),)]


def _one_line(error: pytest.ExceptionInfo) -> str:
    text = str(error.value)
    assert text and "\n" not in text, text
    return text


def test_wrong_schema_version_is_refused(tmp_path):
    path = tmp_path / "research.db"
    Store(path).close()
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    db.commit()
    db.close()
    with pytest.raises(StoreError) as error:
        Store(path)
    assert "999" in _one_line(error) and "--store" in str(error.value)


def test_sqlite_file_that_is_not_a_store_is_refused_and_untouched(tmp_path):
    path = tmp_path / "other.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE notes (text TEXT)")
    db.execute("INSERT INTO notes VALUES ('mine')")
    db.commit()
    db.close()
    before = path.read_bytes()
    with pytest.raises(StoreError) as error:
        Store(path)
    assert "not a research store" in _one_line(error)
    with pytest.raises(StoreError):
        Store(path, create=False)
    assert path.read_bytes() == before  # not even switched to WAL
    assert query(path, "SELECT text FROM notes") == [("mine",)]


def test_a_read_only_store_file_is_read_and_refused_for_writes_in_one_line(tmp_path, monkeypatch):
    """SQLite's 'attempt to write a readonly database' came out raw, with exit code 1."""
    path = tmp_path / "research.db"
    with Store(path) as store:
        store.create_study("s", "caviar", {"trials": 2})
    access = os.access

    def no_write(target, mode):  # as after chmod a-w, for a user other than root
        return not (str(target) == str(path) and mode == os.W_OK) and access(target, mode)

    monkeypatch.setattr(os, "access", no_write)
    with pytest.raises(StoreError) as error:
        Store(path)
    assert _one_line(error).startswith(f"store {path} is a read-only file; it can be read")
    assert f"make it writable (chmod u+w {path})" in _one_line(error)
    with Store(path, create=False) as store:
        assert [s.name for s in store.studies()] == ["s"]
    # Read as it is: the -shm file SQLite made beside it came out read-only too, and refused the
    # writes after the store was made writable again.
    assert not Path(f"{path}-shm").exists()
    shm = Path(f"{path}-shm")
    shm.write_bytes(b"")  # as such a reader left it

    def both_no_write(target, mode):  # the -shm read-only too: the fix names it as well
        return not (str(target) in (str(path), str(shm)) and mode == os.W_OK) and access(target, mode)

    monkeypatch.setattr(os, "access", both_no_write)
    with pytest.raises(StoreError) as error:
        Store(path)
    assert f"make it writable (chmod u+w {path} {shm})" in _one_line(error)
    shm.unlink()
    monkeypatch.undo()
    with Store(path) as store:  # a write refused by SQLite itself (the file made read-only since)
        store.db.execute("PRAGMA query_only = ON")
        with pytest.raises(StoreError, match="is a read-only file"):
            store.create_study("t", "caviar", {"trials": 2})
        assert [s.name for s in store.studies()] == ["s"]


def test_a_store_missing_a_table_is_refused_before_anything_is_written(tmp_path):
    path = tmp_path / "research.db"
    with Store(path) as store:
        store.create_study("s", "caviar", {"trials": 2})
    db = sqlite3.connect(path)
    db.execute("DROP TABLE metrics")
    db.commit()
    db.close()
    for create in (True, False):
        with pytest.raises(StoreError) as error:
            Store(path, create=create)
        assert _one_line(error) == (f"{path} is a damaged research store (it has no table metrics); restore it from "
                                    "a copy, or pass another --store PATH")
    assert query(path, "SELECT name FROM studies") == [("s",)]


def test_garbage_file_is_refused_and_untouched(tmp_path):
    path = tmp_path / "research.db"
    path.write_bytes(b"these are my notes, not a database\n" * 200)
    before = path.read_bytes()
    for create in (True, False):
        with pytest.raises(StoreError) as error:
            Store(path, create=create)
        assert "not a research store" in _one_line(error)
    assert path.read_bytes() == before


def test_readers_write_nothing_into_an_empty_file(tmp_path):
    path = tmp_path / "research.db"
    path.write_bytes(b"")
    with pytest.raises(StoreError) as error:
        Store(path, create=False)
    assert "empty" in _one_line(error)
    assert path.read_bytes() == b""
    with Store(path) as store:  # a writer makes it a store
        assert store.studies() == []


def test_a_store_another_process_is_making_holds_no_study_yet(tmp_path):
    """A store switched to WAL before its tables (another process making it this moment) was
    "empty, not a research store yet; run a study first" to a new study, which is what failed."""
    from research.study.store import find_stored_settings

    path = tmp_path / "research.db"
    sqlite3.connect(path).execute("PRAGMA journal_mode = WAL").fetchone()
    assert path.stat().st_size > 0
    assert find_stored_settings(path, "s") is None
    with Store(path) as store:
        assert store.studies() == []


def test_a_store_in_a_missing_folder_names_the_folder(tmp_path):
    """SQLite said only "unable to open database file"."""
    with pytest.raises(StoreError) as error:
        Store(tmp_path / "nope" / "r.db")
    assert _one_line(error) == (f"cannot make store {tmp_path / 'nope' / 'r.db'}: folder {tmp_path / 'nope'} does not "
                                "exist; create it or pass another --store PATH")


def test_a_store_in_a_folder_that_takes_no_files_names_the_folder(tmp_path, monkeypatch):
    """SQLite said only "unable to open database file"."""
    access = os.access
    monkeypatch.setattr(os, "access", lambda target, mode: str(target) != str(tmp_path) and access(target, mode))
    with pytest.raises(StoreError) as error:
        Store(tmp_path / "r.db")
    assert _one_line(error) == (f"cannot make store {tmp_path / 'r.db'}: folder {tmp_path} cannot be written to; make "
                                "it writable or pass another --store PATH")
    assert not (tmp_path / "r.db").exists()


@pytest.mark.parametrize("create", [True, False])
def test_a_folder_given_as_the_store_is_named_as_a_folder(tmp_path, create):
    """SQLite said "disk I/O error"."""
    with pytest.raises(StoreError) as error:
        Store(tmp_path, create=create)
    assert _one_line(error) == (f"store {tmp_path} is a folder, not a store file; pass --store with a file's path "
                                f"(such as {tmp_path / 'research.db'})")


def test_missing_store_is_not_created_by_readers(tmp_path):
    path = tmp_path / "research.db"
    with pytest.raises(StoreError) as error:
        Store(path, create=False)
    assert "does not exist" in _one_line(error)
    assert not path.exists()


# several processes at once ---------------------------------------------------------------


def _writer(path, name, start, errors):
    """One study's owner: trials, epochs, statuses and events, each its own commit."""
    try:
        start.wait(30)
        with Store(path) as store:
            study = store.create_study(name, "caviar", {"trials": TRIALS})
            for number in range(TRIALS):
                trial = store.add_trial(study, number, {"lr": 10.0**-number}, seed=number)
                for epoch in range(1, EPOCHS + 1):
                    store.add_epoch(trial, epoch, {"train_loss": 1.0 / epoch, "train_acc": 0.5, "val_loss": 1.0,
                                                   "val_acc": epoch / EPOCHS, "lr": 0.1, "seconds": 0.01})
                store.set_status(trial, "finished")
                store.add_event(study, "trial_end", {"number": number}, trial)
    except BaseException:
        errors.put(f"{name}: {traceback.format_exc()}")


def _reader(path, start, stop, errors, seen):
    """A dashboard polling the store while it is written: never blocked, never a torn epoch."""
    try:
        start.wait(30)
        polls = 0
        last: dict[str, int] = {}
        while not stop.is_set() or polls == 0:
            with Store(path) as store:
                for study in store.studies():
                    curves = store.curves(study)
                    count = sum(len(rows) for rows in curves.values())
                    assert count >= last.get(study.name, 0), "a reader saw rows disappear"
                    last[study.name] = count
                    for rows in curves.values():
                        for row in rows:
                            assert None not in row.values(), f"a half-written epoch: {row}"
                    store.trials(study)
                    store.events(study)
            polls += 1
        seen.put(polls)
    except BaseException:
        errors.put(f"reader: {traceback.format_exc()}")


def test_concurrent_writers_and_a_polling_reader(tmp_path):
    """Two processes write their own study into one new file while a third reads: no
    'database is locked', every row there, the file intact."""
    path = tmp_path / "research.db"
    context = multiprocessing.get_context("spawn")
    start, stop = context.Event(), context.Event()
    errors, seen = context.Queue(), context.Queue()
    writers = [context.Process(target=_writer, args=(path, f"w{i}", start, errors)) for i in range(WRITERS)]
    reader = context.Process(target=_reader, args=(path, start, stop, errors, seen))
    Store(path).close()  # the reader needs the file; the writers race to open it
    for process in (*writers, reader):
        process.start()
    start.set()
    for process in writers:
        process.join(120)
    stop.set()
    reader.join(120)
    problems = []
    while not errors.empty():
        problems.append(errors.get())
    assert not problems, "\n".join(problems)
    assert all(p.exitcode == 0 for p in (*writers, reader))
    assert seen.get(timeout=5) >= 1  # polls made while the writers ran

    assert integrity(path) == "ok"
    with Store(path, create=False) as store:
        assert sorted(s.name for s in store.studies()) == [f"w{i}" for i in range(WRITERS)]
        for study in store.studies():
            trials = store.trials(study)
            assert [t.number for t in trials] == list(range(TRIALS))
            assert all(t.status == "finished" for t in trials)
            curves = store.curves(study)
            assert all([row["epoch"] for row in curves[n]] == list(range(1, EPOCHS + 1)) for n in range(TRIALS))
            assert len(store.events(study)) == TRIALS


def _opener(path, start, errors):
    try:
        start.wait(30)
        with Store(path) as store:
            store.studies()
    except BaseException:
        errors.put(traceback.format_exc())


def test_processes_creating_one_store_at_once(tmp_path):
    """Several first runs at the same moment: one creates the schema, none fails."""
    path = tmp_path / "research.db"
    context = multiprocessing.get_context("spawn")
    start, errors = context.Event(), context.Queue()
    openers = [context.Process(target=_opener, args=(path, start, errors)) for _ in range(4)]
    for process in openers:
        process.start()
    start.set()
    for process in openers:
        process.join(60)
    problems = []
    while not errors.empty():
        problems.append(errors.get())
    assert not problems, "\n".join(problems)
    assert query(path, "SELECT value FROM meta WHERE key = 'schema_version'") == [(str(SCHEMA_VERSION),)]
    assert len(query(path, "SELECT value FROM meta WHERE key = 'store_id'")) == 1
    assert query(path, "PRAGMA journal_mode") == [("wal",)]


def test_a_store_in_a_folder_that_cannot_be_written_is_read_not_written(tmp_path, monkeypatch):
    import os
    from pathlib import Path

    path = tmp_path / "research.db"
    with Store(path) as store:
        study = store.create_study("s", "caviar", {})
        store.add_event(study, "note", {"text": "x"})
    assert not (tmp_path / "research.db-wal").exists()  # closed: nothing being written
    writable = os.access
    monkeypatch.setattr("research.study.store.os.access",
                        lambda where, mode: False if Path(where) == tmp_path else writable(where, mode))
    with Store(path, create=False) as reader:  # SQLite's WAL readers would need a -shm file there
        assert [s.name for s in reader.studies()] == ["s"] and len(reader.events(reader.study("s"))) == 1
        with pytest.raises(StoreError, match="cannot be written to; it can be read"):
            reader.add_event(reader.study("s"), "note", {})
    with pytest.raises(StoreError, match="copy it to a writable folder"):
        Store(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["research.db"]  # nothing created beside it


def test_an_interrupt_as_begin_returns_leaves_no_transaction_open(tmp_path):
    """Python raises a pending Ctrl-C as a call returns: right after BEGIN IMMEDIATE took the
    lock. The transaction is rolled back, and the next one (the cleanup that marks trials
    interrupted) starts, instead of 'cannot start a transaction within a transaction'."""
    with Store(tmp_path / "research.db") as store:
        connection = store.db

        class InterruptedAfterBegin:
            def execute(self, sql, *args):
                result = connection.execute(sql, *args)
                if sql == "BEGIN IMMEDIATE":
                    raise KeyboardInterrupt
                return result

            def __getattr__(self, name):
                return getattr(connection, name)

        store.db = InterruptedAfterBegin()
        with pytest.raises(KeyboardInterrupt):
            with store.transaction():
                pass
        store.db = connection
        assert not connection.in_transaction
        assert store.create_study("after", "caviar", {}).name == "after"


def test_a_store_moved_with_its_checkpoints_folder_keeps_its_kept_weights(tmp_path):
    """The folder's claim named the old file, so after `mv research.db lab.db` and `mv
    research-checkpoints lab-checkpoints` the store made a new empty folder: export-model said the
    trial had no kept weights, and a resume trained an interrupted trial again from epoch 1."""
    from tests.studyutil import TINY, cli

    done = cli("train", "--strategy", "caviar", "--study", "s", "--store", tmp_path / "research.db", "--trials", "2",
               "--executor", "serial", "--plot", tmp_path / "s.png", *TINY)
    assert done.exit_code == 0, done.output
    (tmp_path / "research.db").rename(tmp_path / "lab.db")
    (tmp_path / "research-checkpoints").rename(tmp_path / "lab-checkpoints")
    exported = cli("export-model", "s", "--store", tmp_path / "lab.db", "-o", tmp_path / "best.npz")
    assert exported.exit_code == 0, exported.output
    assert not (tmp_path / "lab.db-checkpoints").exists()
    with Store(tmp_path / "lab.db") as store:  # a writer: the claim takes the new name
        folder = study_module.checkpoint_folder(store, store.study("s"))
        assert folder.parent == tmp_path / "lab-checkpoints"
        assert (tmp_path / "lab-checkpoints" / "store.txt").read_text() == f"lab.db\n{store.identity()}\n"

    # a copy beside the original, of the same stem: the original keeps its folder to itself
    shutil.copy(tmp_path / "lab.db", tmp_path / "lab.sqlite")
    with Store(tmp_path / "lab.sqlite") as copy:
        assert study_module.checkpoints_base(copy.path, copy.identity()) == tmp_path / "lab.sqlite-checkpoints"
    shutil.copy(tmp_path / "lab.db", tmp_path / "alone.db")  # without its folder: said so, with the fix
    alone = cli("export-model", "s", "--store", tmp_path / "alone.db", "-o", tmp_path / "alone.npz")
    assert alone.exit_code == 2
    assert "no kept weights here: " in alone.stderr and "study-1 does not exist, as when a store is moved or " \
        "copied without its checkpoints folder; put that folder beside it as alone-checkpoints" in \
        " ".join(alone.stderr.split())
    # a copy with its folder copied and renamed to match: the copy's own
    shutil.copy(tmp_path / "lab.db", tmp_path / "backup.db")
    shutil.copytree(tmp_path / "lab-checkpoints", tmp_path / "backup-checkpoints")
    exported = cli("export-model", "s", "--store", tmp_path / "backup.db", "-o", tmp_path / "backup.npz")
    assert exported.exit_code == 0, exported.output


def test_two_stores_of_one_stem_keep_their_checkpoints_apart(tmp_path):
    """a.db and a.sqlite side by side both have a study 1: the first to train claims
    a-checkpoints/, the other uses a.sqlite-checkpoints/, and deleting one's study leaves the
    other's kept weights."""
    from tests.studyutil import TINY, cli, kept_epochs

    for store in ("a.db", "a.sqlite"):
        done = cli("train", "--strategy", "caviar", "--study", "s", "--store", tmp_path / store, "--trials", "2",
                   "--executor", "serial", "--plot", tmp_path / f"{store}.png", *TINY)
        assert done.exit_code == 0, done.output
    assert (tmp_path / "a-checkpoints" / "store.txt").read_text().split("\n")[0] == "a.db"
    assert (tmp_path / "a.sqlite-checkpoints" / "store.txt").read_text().split("\n")[0] == "a.sqlite"
    assert set(kept_epochs(tmp_path / "a-checkpoints")) == set(kept_epochs(tmp_path / "a.sqlite-checkpoints")) == {0, 1}

    deleted = cli("delete", "s", "--store", tmp_path / "a.sqlite", "--yes")
    assert deleted.exit_code == 0, deleted.output
    assert set(kept_epochs(tmp_path / "a-checkpoints")) == {0, 1}
    exported = cli("export-model", "s", "--store", tmp_path / "a.db", "-o", tmp_path / "best.npz")
    assert exported.exit_code == 0, exported.output


def test_a_store_without_an_extension_beside_one_of_its_stem_keeps_its_own_folder(tmp_path):
    """`--store lab` beside lab.db has one candidate name, lab-checkpoints, which lab.db had
    claimed: lab took it anyway and removed lab.db's kept weights as strays. It gets
    lab-checkpoints-2, and keeps it when lab.db and its folder go."""
    from tests.studyutil import TINY, cli, kept_epochs

    for store in ("lab.db", "lab"):
        done = cli("train", "--strategy", "caviar", "--study", "s", "--store", tmp_path / store, "--trials", "2",
                   "--executor", "serial", "--plot", tmp_path / f"{store}.png", *TINY)
        assert done.exit_code == 0, done.output
        assert "held 2 checkpoint files of no trial" not in done.stderr
    assert (tmp_path / "lab-checkpoints" / "store.txt").read_text().split("\n")[0] == "lab.db"
    assert (tmp_path / "lab-checkpoints-2" / "store.txt").read_text().split("\n")[0] == "lab"
    assert set(kept_epochs(tmp_path / "lab-checkpoints")) == set(kept_epochs(tmp_path / "lab-checkpoints-2")) == {0, 1}
    exported = cli("export-model", "s", "--store", tmp_path / "lab.db", "-o", tmp_path / "best.npz")
    assert exported.exit_code == 0, exported.output

    (tmp_path / "lab.db").unlink()
    shutil.rmtree(tmp_path / "lab-checkpoints")
    with Store(tmp_path / "lab") as store:  # its own folder, not the first name that came free
        assert study_module.checkpoints_base(store.path, store.identity()) == tmp_path / "lab-checkpoints-2"
    exported = cli("export-model", "s", "--store", tmp_path / "lab", "-o", tmp_path / "lab.npz")
    assert exported.exit_code == 0, exported.output


def test_a_damaged_claim_is_named_not_passed_over(tmp_path, monkeypatch):
    """A checkpoints folder whose store.txt was damaged: random bytes stopped the resume with
    "UnicodeDecodeError ... this is a bug"; text of no store made it train on in a new folder,
    leaving the kept weights behind. Now refused in one line naming the file; without it the
    store claims its folder again."""
    from tests.studyutil import TINY, cli

    monkeypatch.chdir(tmp_path)  # the resumes draw their picture in the working folder

    done = cli("train", "--strategy", "caviar", "--study", "s", "--store", tmp_path / "lab.db", "--trials", "2",
               "--executor", "serial", "--plot", tmp_path / "s.png", *TINY)
    assert done.exit_code == 0, done.output
    claim = tmp_path / "lab-checkpoints" / "store.txt"
    for damage in (b"\xa8\x13\xff\x00 garbage", b"lab\nnot an id\n", b""):
        claim.write_bytes(damage)
        resumed = cli("resume", "s", "--store", tmp_path / "lab.db", "--trials", "3")
        assert resumed.exit_code == 2, resumed.output
        assert " ".join(resumed.stderr.split()) == (
            f"error: the checkpoints folder {tmp_path / 'lab-checkpoints'} has a damaged claim {claim} (it names the "
            "store file the folder belongs to, and its id); delete that file if the folder is lab.db's, or move the "
            "folder away if it is not, and run again")
        assert not (tmp_path / "lab.db-checkpoints").exists()
    claim.write_text("garbage\n")  # text that reads as a claim without an id, of no store beside it: passed over
    resumed = cli("resume", "s", "--store", tmp_path / "lab.db", "--trials", "3")
    assert resumed.exit_code == 2 and "is claimed by a store 'garbage'" in resumed.stderr, resumed.output
    assert not (tmp_path / "lab.db-checkpoints").exists()
    claim.unlink()
    resumed = cli("resume", "s", "--store", tmp_path / "lab.db", "--trials", "3")
    assert resumed.exit_code == 0, resumed.output
    with Store(tmp_path / "lab.db") as store:
        assert len(store.trials(store.study("s"))) == 3
        assert claim.read_text() == f"lab.db\n{store.identity()}\n"
    assert sorted(p.name for p in (tmp_path / "lab-checkpoints").iterdir()) == ["store.txt", "study-1"]


def test_a_file_where_the_checkpoints_folder_goes_is_refused_before_a_study_is_stored(tmp_path):
    """A file named research-checkpoints: "a damaged claim ... store.txt" (there was none), and the
    refused study stayed in the store, empty (the next one became caviar-2); then the store file
    itself stayed, made empty before the refusal. A store path through a file said its folder did
    not exist."""
    from tests.studyutil import TINY, cli

    (tmp_path / "lab-checkpoints").write_text("x")
    done = cli("train", "--strategy", "caviar", "--store", tmp_path / "lab.db", "--trials", "1", *TINY,
               "--executor", "serial", "--plot", tmp_path / "s.png")
    assert done.exit_code == 2 and " ".join(done.stderr.split()) == (
        f"error: {tmp_path / 'lab-checkpoints'} is a file, where the checkpoints folder of lab.db goes; move it away, "
        "or use another --store")
    assert not (tmp_path / "lab.db").exists()
    with Store(tmp_path / "lab.db") as store:  # a store made later is refused the same way
        assert store.studies() == []
    again = cli("train", "--strategy", "caviar", "--store", tmp_path / "lab.db", "--trials", "1", *TINY)
    assert again.exit_code == 2 and "is a file, where the checkpoints folder" in again.stderr
    with Store(tmp_path / "lab.db") as store:
        assert store.studies() == []
    through = cli("train", "--strategy", "caviar", "--store", tmp_path / "lab-checkpoints" / "x.db", "--trials", "1",
                  *TINY)
    assert through.exit_code == 2 and " ".join(through.stderr.split()) == (
        f"error: cannot make store {tmp_path / 'lab-checkpoints' / 'x.db'}: {tmp_path / 'lab-checkpoints'} is a file, "
        "not a folder; pass another --store PATH")

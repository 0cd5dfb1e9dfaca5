"""Checkpoints are proven before they are used (research.nn.checkpoint.read_checkpoint): one
swapped between trials, copied from another study, truncated, emptied, damaged, foreign or
from an earlier research is one warning line naming it, and the study goes on from the last
point it can prove, to the curves (and kept weights) of a run that was never disturbed."""

from __future__ import annotations

import re
import shutil
import struct
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from research.nn import checkpoint
from research.study.best import best_path, read_kept
from tests.studyutil import cli, curves, kept_epochs, statuses

CAVIAR = ["train", "--strategy", "caviar", "--study", "s", "--trials", "2", "--epochs", "3", "--hidden", "16",
          "--executor", "serial", "--workers", "2"]
FOLDER = Path("research-checkpoints/study-1")
BABYSIT = ["train", "--strategy", "babysit", "--study", "b", "--hidden", "16", "--segment-epochs", "1"]


def kept_states(folder: Path) -> dict[int, tuple[int, dict[str, list]]]:
    found = {}
    for number, epoch in kept_epochs(folder).items():
        state = read_kept(best_path(folder / "study-1", number)).state
        found[number] = (epoch, {k: v.tolist() for k, v in state.items() if k.startswith("model.")})
    return found


def warnings(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("warning:")]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The caviar study run without interruption."""
    where = tmp_path_factory.mktemp("reference")
    result = cli(*CAVIAR, "--store", where / "ref.db", "--plot", where / "ref.png")
    assert result.exit_code == 0, result.output
    return {"curves": curves(where / "ref.db", "s"), "kept": kept_states(where / "ref-checkpoints")}


@pytest.fixture
def paused(tmp_path, monkeypatch):
    """The study stopped by its epoch budget: both trials interrupted at epoch 2, each with a
    checkpoint and a kept best state."""
    monkeypatch.chdir(tmp_path)
    result = cli(*CAVIAR, "--max-epochs", "3", "--plot", "s.png")
    assert result.exit_code == 0, result.output
    assert statuses(Path("research.db"), "s") == {0: "interrupted", 1: "interrupted"}
    names = {p.name for p in FOLDER.iterdir()}
    assert {"trial-00000.npz", "trial-00001.npz", "trial-00000-best.npz", "trial-00001-best.npz"} <= names
    return tmp_path


def resume() -> object:
    result = cli("resume", "s", "--max-epochs", "100", "--executor", "serial", "--plot", "s.png")
    assert result.exit_code == 0, result.output
    return result


def assert_as_uninterrupted(reference) -> None:
    db = Path("research.db")
    assert statuses(db, "s") == {0: "finished", 1: "finished"}
    assert curves(db, "s") == reference["curves"]
    assert kept_states(Path("research-checkpoints")) == reference["kept"]


def flip_a_data_byte(path: Path) -> None:
    """Change one byte inside the largest array's data, leaving the zip's structure intact:
    only its CRC-32 can tell."""
    with zipfile.ZipFile(path) as archive:
        info = max(archive.infolist(), key=lambda i: i.file_size)
    data = bytearray(path.read_bytes())
    name_length, extra_length = struct.unpack("<HH", data[info.header_offset + 26: info.header_offset + 30])
    at = info.header_offset + 30 + name_length + extra_length + info.compress_size // 2
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))


def without_identity(path: Path) -> None:
    """As this project's previous version wrote it: the same arrays, no identity record."""
    with np.load(path) as saved:
        arrays = {k: saved[k] for k in saved.files if k != checkpoint.IDENTITY_KEY}
    np.savez(path, **arrays)


FAULTS = {
    "truncated": (lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
                  "cannot be read, it is truncated or damaged (BadZipFile"),
    "emptied": (lambda p: p.write_bytes(b""), "is empty"),
    "bad-crc": (flip_a_data_byte, "cannot be read, it is truncated or damaged (BadZipFile: Bad CRC-32"),
    "foreign": (lambda p: np.savez(p, x=np.zeros(3)), "carries no identity"),
    "garbage": (lambda p: p.write_bytes(b"not an archive"), "cannot be read: it is not an .npz archive of plain arrays"),
    "objects": (lambda p: np.savez(p, x=np.array([{}], dtype=object)),
                "cannot be read: it is not an .npz archive of plain arrays"),
    "earlier-research": (without_identity, "carries no identity"),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_damaged_checkpoint_gives_way_to_the_kept_best_state(paused, reference, fault):
    damage, reason = FAULTS[fault]
    path = FOLDER / "trial-00000.npz"
    damage(path)
    result = resume()
    assert len(warnings(result)) == 1, result.stderr
    line = warnings(result)[0]
    assert line.startswith(f"warning: checkpoint {path} {reason}"), line
    assert line.endswith("; trial 0 trains again from epoch 2, where its kept best state is"), line
    assert_as_uninterrupted(reference)


def test_a_damaged_checkpoint_without_a_kept_state_trains_from_the_start(paused, reference):
    (FOLDER / "trial-00001-best.npz").unlink()
    (FOLDER / "trial-00001.npz").write_bytes(b"PK\x03\x04")
    result = resume()
    assert len(warnings(result)) == 1
    assert warnings(result)[0].startswith("warning: checkpoint research-checkpoints/study-1/trial-00001.npz cannot "
                                          "be read, it is truncated or damaged (")
    assert warnings(result)[0].endswith("; trial 1 trains again from epoch 0")
    assert_as_uninterrupted(reference)


def test_checkpoints_swapped_between_trials_are_refused(paused, reference):
    a, b = FOLDER / "trial-00000.npz", FOLDER / "trial-00001.npz"
    a.rename(FOLDER / "swap")
    b.rename(a)
    (FOLDER / "swap").rename(b)
    result = resume()
    assert warnings(result) == [
        f"warning: checkpoint {a} belongs to trial 1, not 0; trial 0 trains again from epoch 2, "
        "where its kept best state is",
        f"warning: checkpoint {b} belongs to trial 0, not 1; trial 1 trains again from epoch 2, "
        "where its kept best state is"]
    assert_as_uninterrupted(reference)


def test_a_checkpoint_copied_from_another_study_is_refused(paused, reference):
    other = cli(*CAVIAR, "--seed", "7", "--max-epochs", "3", "--store", "other.db", "--plot", "o.png")
    assert other.exit_code == 0, other.output
    shutil.copyfile(Path("other-checkpoints/study-1/trial-00000.npz"), FOLDER / "trial-00000.npz")
    shutil.copyfile(Path("other-checkpoints/study-1/trial-00001-best.npz"), FOLDER / "trial-00001-best.npz")
    result = resume()
    when = r"created \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}"
    found = sorted(warnings(result))
    assert len(found) == 2, found
    assert re.fullmatch(r"warning: checkpoint research-checkpoints/study-1/trial-00000\.npz belongs to another study "
                        rf"\('s', id 1, {when}\), not 's' \(id 1, {when}\); trial 0 trains again from epoch 2, "
                        "where its kept best state is", found[0]), found[0]
    assert re.fullmatch(r"warning: checkpoint research-checkpoints/study-1/trial-00001-best\.npz belongs to another "
                        rf"study \('s', id 1, {when}\), not 's' \(id 1, {when}\); it is dropped and trial 1 trains "
                        "again from epoch 0 to rebuild it", found[1]), found[1]
    assert_as_uninterrupted(reference)


def test_export_model_refuses_another_trials_kept_weights(paused):
    a, b = FOLDER / "trial-00000-best.npz", FOLDER / "trial-00001-best.npz"
    shutil.copyfile(b, a)
    result = cli("export-model", "s", "--trial", "0", "--output", "m.npz")
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2 and lines == [f"error: checkpoint {a} belongs to trial 1, not 0"], result.stderr
    assert not Path("m.npz").exists()
    assert cli("export-model", "s", "--trial", "1", "--output", "m.npz").exit_code == 0


@pytest.mark.parametrize("fault", ["truncated", "bad-crc", "earlier-research"])
def test_a_damaged_kept_best_state_is_dropped_and_rebuilt(paused, reference, fault):
    damage, reason = FAULTS[fault]
    path = FOLDER / "trial-00000-best.npz"
    damage(path)
    result = resume()
    assert len(warnings(result)) == 1, warnings(result)
    line = warnings(result)[0]
    assert line.startswith(f"warning: checkpoint {path} {reason}"), line
    assert line.endswith("; it is dropped and trial 0 trains again from epoch 0 to rebuild it")
    assert_as_uninterrupted(reference)


def test_a_renamed_study_keeps_its_checkpoints(paused, reference):
    renamed = cli("rename", "s", "t", "--yes")
    assert renamed.exit_code == 0, renamed.output
    result = cli("resume", "t", "--max-epochs", "100", "--executor", "serial", "--plot", "t.png")
    assert result.exit_code == 0 and warnings(result) == [], result.output
    assert curves(Path("research.db"), "t") == reference["curves"]


def test_read_checkpoint_proves_what_a_file_is(tmp_path):
    me = checkpoint.Identity(1, "s", 10.0, 0, "abc")
    path = tmp_path / "c.npz"
    state = {"meta": checkpoint.pack_json({"epoch": 4}), "w": np.arange(3.0)}
    checkpoint.save(path, state, me)
    found = checkpoint.read_checkpoint(path, me, epoch=4)
    assert found.identity == me and found.epoch == 4 and np.array_equal(found.arrays["w"], state["w"])
    assert checkpoint.read_checkpoint(path, me.but(study="renamed")).epoch == 4  # the name is not compared
    for other, reason in [(me.but(trial=3), "belongs to trial 0, not 3"),
                          (me.but(study_id=2), "belongs to another study ('s', id 1, created "),
                          (me.but(created=11.0), "belongs to another study"),
                          (me.but(config="xyz"), "was written for another configuration of trial 0"),
                          (me.but(kind="best"), "is a 'state' file, not a 'best' one")]:
        with pytest.raises(checkpoint.CheckpointProblem, match=re.escape(reason)):
            checkpoint.read_checkpoint(path, other)
    with pytest.raises(checkpoint.CheckpointProblem, match="holds epoch 4, not 2"):
        checkpoint.read_checkpoint(path, me, epoch=2)


# babysit -----------------------------------------------------------------------------------------


def test_babysit_latest_truncated_goes_back_to_its_last_boundary(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from research.cli import app

    runner = CliRunner()

    def run(where: Path, *args, input=None):
        argv = [*BABYSIT, "--store", where / "research.db", "--plot", where / "b.png", *args]
        return runner.invoke(app, [str(a) for a in argv], input=input)

    def two_runs(where: Path, damage=None):
        where.mkdir()
        first = run(where, "--segments", "2", "--policy", "none", "--interactive", input="continue\nset lr=0.005\n")
        assert first.exit_code == 0, first.output
        if damage is not None:
            damage(where / "research-checkpoints" / "study-1")
        return run(where, "--segments", "3", "--policy", "none")

    reference = two_runs(tmp_path / "ref")
    assert reference.exit_code == 0 and warnings(reference) == [], reference.output
    expected = curves(tmp_path / "ref" / "research.db", "b")
    assert [row[-1] for row in expected[0]] == [0.001, 0.001, 0.005]  # the change at the boundary holds

    monkeypatch.chdir(tmp_path)
    where = Path("damaged")
    latest = where / "research-checkpoints/study-1/latest.npz"
    again = two_runs(where, lambda folder: latest.write_bytes(latest.read_bytes()[:100]))
    assert again.exit_code == 0, again.output
    assert warnings(again) == [
        f"warning: checkpoint {latest} cannot be read, it is truncated or damaged (BadZipFile: File is not a zip "
        "file); the run goes back to its last boundary checkpoint (epoch 2) and trains again from there"]
    assert curves(where / "research.db", "b") == expected  # the change made at the boundary applied again
    assert read_kept(where / "research-checkpoints/study-1/trial-00000-best.npz").epoch == \
        read_kept(tmp_path / "ref/research-checkpoints/study-1/trial-00000-best.npz").epoch

    # Without a boundary to go back to: refused in one line, with the fix.
    gone = Path("gone")
    broken = gone / "research-checkpoints/study-1/latest.npz"

    def lose_everything(folder: Path) -> None:
        for boundary in folder.glob("boundary-*.npz"):
            boundary.unlink()
        broken.write_bytes(b"")

    refused = two_runs(gone, lose_everything)
    assert refused.exit_code == 2
    assert refused.stderr.strip().splitlines()[1:] == [  # after the line naming the study
        f"error: checkpoint {broken} is empty, and no boundary checkpoint is left to go back to; "
        "`research delete b` and train the study again"]


def test_a_copy_cut_short_leaves_the_old_file_whole(tmp_path, monkeypatch):
    """Babysit's kept best states were copied in place: a kill mid-copy left half a file
    ("not a zip file"), and the best epoch's weights were lost."""
    old, new = tmp_path / "kept.npz", tmp_path / "new.npz"
    checkpoint.save(old, {"w": np.zeros(3)})
    checkpoint.save(new, {"w": np.ones(100_000)})
    before = old.read_bytes()

    def cut(source, target):
        Path(target).write_bytes(Path(source).read_bytes()[:1000])
        raise KeyboardInterrupt

    monkeypatch.setattr(shutil, "copyfile", cut)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.copy(new, old)
    assert old.read_bytes() == before
    monkeypatch.undo()
    checkpoint.copy(new, old)
    assert np.array_equal(checkpoint.load(old)["w"], np.ones(100_000))


def test_a_write_that_fails_leaves_no_part_and_a_run_sweeps_what_a_kill_left(tmp_path, monkeypatch):
    """A full disk left each half-written trial-NNNNN-best.npz.tmp holding space, and a killed
    run's stayed until the study was deleted."""
    import errno

    from research.plugins import load_plugins
    from research.study.store import Store
    from research.study.study import StudySettings, open_study

    def full(handle, **arrays):
        handle.write(b"part of it")
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patched:
        patched.setattr(np, "savez", full)
        with pytest.raises(OSError):
            checkpoint.save(tmp_path / "c.npz", {"w": np.zeros(3)})
    assert sorted(p.name for p in tmp_path.iterdir()) == []

    plugins = load_plugins()
    settings = StudySettings(strategy="caviar", base={"epochs": 1, "hidden": 8}, space={"lr": "log:1e-3..1e-1"},
                             trials=1)
    with Store(tmp_path / "research.db") as store:
        study = open_study(store, "s", settings, plugins, executor="serial")
        left = study.checkpoints / "trial-00000-best.npz.tmp"
        left.write_bytes(b"half")  # as a SIGKILL mid-write leaves it
        study.run(plugins.build("strategies", "caviar"))
        assert not left.exists()


def test_a_checkpoints_folder_that_takes_no_file_is_refused_before_anything_is_stored(paused, reference, monkeypatch):
    """A checkpoints folder this user could not write (a read-only copy, another user's folder):
    the resume trained a task, failed on its checkpoint with "[Errno 13] Permission denied" and no
    fix, and a new study was stored before that. (The tests run as root, which no mode stops, so
    the folder's refusal is simulated.)"""
    from research.study.store import Store

    touch = Path.touch

    def denied(self, *args, **kwargs):
        if self.name.startswith(".write-test"):
            raise PermissionError(13, "Permission denied", str(self))
        return touch(self, *args, **kwargs)

    before = curves(Path("research.db"), "s")
    with monkeypatch.context() as patched:
        patched.setattr(Path, "touch", denied)
        resumed = cli("resume", "s", "--max-epochs", "100", "--executor", "serial")
        assert resumed.exit_code == 2, resumed.output
        assert resumed.stderr.splitlines()[-1] == (
            f"error: cannot write checkpoints into {FOLDER} (Permission denied); make that folder writable (chmod -R "
            f"u+w {FOLDER}) and run again: what is stored is kept")
        assert curves(Path("research.db"), "s") == before
        fresh = cli(*CAVIAR, "--study", "t", "--store", "other.db")
        assert fresh.exit_code == 2 and "cannot write checkpoints into other-checkpoints" in fresh.stderr
        with Store(Path("other.db")) as store:
            assert store.studies() == []
    resume()
    assert_as_uninterrupted(reference)


def test_a_checkpoint_that_cannot_be_written_loses_no_epoch(tmp_path, monkeypatch):
    """A checkpoint write refused mid-study (its folder's mode changed): the trial's last task,
    sent on before, ended while the study stopped and was kept, so the trial was "finished" with
    its first epoch never committed. Now it stays interrupted, and the resume trains it again."""
    from research.study.study import Study

    # One trial of two epochs, in a pool: its second task runs while the first's result is recorded.
    one = [*CAVIAR[:-4], "--trials", "1", "--epochs", "2", "--executor", "process", "--workers", "2"]
    (tmp_path / "ref").mkdir()
    monkeypatch.chdir(tmp_path / "ref")
    assert cli(*one, "--plot", "s.png").exit_code == 0
    undisturbed = curves(Path("research.db"), "s")
    monkeypatch.chdir(tmp_path)

    def denied(self, number, state):
        time.sleep(1)  # time for the trial's next task, sent on before, to end
        raise PermissionError(13, "Permission denied", str(self.checkpoint_path(number)))

    with monkeypatch.context() as patched:
        patched.setattr(Study, "save_checkpoint", denied)
        failed = cli(*one)
    assert failed.exit_code == 1, failed.output
    assert failed.stderr.splitlines()[-1] == (
        f"error: {FOLDER / 'trial-00000.npz'}: Permission denied; give this user access to it and its folder (chmod), "
        "or use another place (what was stored before is kept)")
    for number, curve in curves(Path("research.db"), "s").items():
        assert [row[0] for row in curve] == list(range(1, len(curve) + 1)), (number, curve)
    again = cli("resume", "s", "--plot", "s.png")
    assert again.exit_code == 0, again.output
    assert statuses(Path("research.db"), "s") == {0: "finished"}
    assert curves(Path("research.db"), "s") == undisturbed


def test_a_resume_s_warnings_come_after_its_ranked_table(paused, reference):
    """A warning printed while the study ran (or before it) scrolled away above the final
    table; the user reads the table last, so the warnings follow it, stdout left to it."""
    FAULTS["truncated"][0](FOLDER / "trial-00000.npz")
    result = resume()
    lines = result.output.splitlines()
    table_end = max(i for i, line in enumerate(lines) if line.startswith("└"))
    warned = [i for i, line in enumerate(lines) if line.startswith("warning:")]
    assert len(warned) == 1 and warned[0] > table_end, result.output
    assert "warning:" not in result.stdout
    assert_as_uninterrupted(reference)

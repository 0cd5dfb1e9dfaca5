"""Studies from the command line: killed and interrupted studies resume exactly, readers
never block the writer, every bad flag is one line and exit 2 with the store untouched,
and the listing, export and sample commands."""

import csv
import io
import json
import math
import multiprocessing
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from research.errors import UsageError
from research.extras import install_command
from research.study.best import best_path, read_kept
from research.study.orphans import exit_with_parent
from research.study.runner import Runner
from research.study.store import Store, StoreError
from tests.studyutil import (
    cli,
    configs,
    curves,
    epochs_by_trial,
    fingerprint,
    integrity,
    kept_epochs,
    kill_group,
    live_epochs,
    query,
    research_command,
    run,
    signal_group,
    signal_when,
    start,
    statuses,
    wait_for,
)

# Small enough to be quick, slow enough to be caught mid-way: batches of 4 keep some trial
# part-way for about 0.3 s on a fast CPU (0.16 s with batches of 8), for the tests that kill or
# stop the study then.
STUDY = ["train", "--strategy", "caviar", "--study", "s", "--trials", "4", "--workers", "2", "--epochs", "6",
         "--hidden", "16", "--batch-size", "4"]
ALL_EPOCHS = {n: [1, 2, 3, 4, 5, 6] for n in range(4)}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The same study run without interruption, in another store."""
    where = tmp_path_factory.mktemp("reference")
    result = cli(*STUDY, "--store", where / "reference.db", "--plot", where / "curves.png")
    assert result.exit_code == 0, result.output
    assert statuses(where / "reference.db", "s") == {n: "finished" for n in range(4)}
    return {"curves": curves(where / "reference.db", "s"), "configs": configs(where / "reference.db", "s"),
            "kept": kept_states(where / "reference-checkpoints")}


def kept_states(folder):
    """Each trial's kept epoch and model weights (research.study.best)."""
    found = {}
    for number, epoch in kept_epochs(folder).items():
        state = read_kept(best_path(folder / "study-1", number)).state
        found[number] = (epoch, {k: v.tolist() for k, v in state.items() if k.startswith("model.")})
    return found


def midway(db):
    """Some epochs committed and some trial part-way through its epochs."""
    def check():
        rows = query(db, "SELECT t.status, COUNT(m.epoch) FROM trials t LEFT JOIN metrics m ON m.trial_id = t.id "
                         "GROUP BY t.id")
        return sum(n for _, n in rows) >= 3 and any(status == "running" and 0 < n < 6 for status, n in rows)
    return check


def trial_rows(db):
    """Raw rows, to see duplicates the API would hide."""
    return {
        "trials": query(db, "SELECT t.number, t.id, t.started FROM trials t JOIN studies s ON s.id = t.study_id "
                            "WHERE s.name = 's' ORDER BY t.number"),
        "epochs": query(db, "SELECT t.number, m.epoch, COUNT(*) FROM metrics m JOIN trials t ON t.id = m.trial_id "
                            "GROUP BY t.number, m.epoch HAVING COUNT(*) > 1"),
    }


def assert_resumed_exactly(db, before, reference):
    """After the resume: every epoch committed before is untouched, nothing twice, the
    same curves as the uninterrupted study."""
    assert integrity(db) == "ok"
    after = curves(db, "s", seconds=True)
    for number, rows in before.items():
        assert after[number][: len(rows)] == rows, f"trial {number} lost or rewrote an epoch"
    assert statuses(db, "s") == {n: "finished" for n in range(4)}
    assert epochs_by_trial(db, "s") == ALL_EPOCHS
    rows = trial_rows(db)
    assert [r[0] for r in rows["trials"]] == [0, 1, 2, 3] and rows["epochs"] == []
    assert query(db, "SELECT COUNT(*) FROM metrics") == [(24,)]
    assert configs(db, "s") == reference["configs"]
    assert curves(db, "s") == reference["curves"]
    assert kept_states(db.parent / "research-checkpoints") == reference["kept"]  # the same best epochs' weights


def test_sigkill_then_resume_gives_the_uninterrupted_study(tmp_path, reference):
    db = tmp_path / "research.db"
    args = [*STUDY, "--store", "research.db"]
    process = start(args, tmp_path)
    stderr = ""
    try:
        caught = wait_for(midway(db), timeout=90, process=process)
    finally:
        stderr = kill_group(process)  # SIGKILL to the study and its workers
    assert caught, f"the study ended before it could be killed:\n{stderr}"

    assert integrity(db) == "ok"
    before = curves(db, "s", seconds=True)
    left = [n for n, status in statuses(db, "s").items() if status == "interrupted"]  # its runner was killed
    assert left, "no trial was running when the study was killed"
    partial = [n for n in left if 0 < len(before.get(n, [])) < 6]
    assert partial, "no trial was part-way through when the study was killed"
    started = trial_rows(db)["trials"]

    resumed = run(args, tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert_resumed_exactly(db, before, reference)
    # The trials left running were continued, not started over as new trials.
    assert trial_rows(db)["trials"][: len(started)] == started


def children(pid: int) -> set[int]:
    """The processes whose parent is ``pid`` (from /proc)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended while we looked
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_workers_and_helpers_exit_when_the_study_is_killed_alone(tmp_path, reap):
    """kill -9 of the study's process only (not its group): its pool workers and the
    resource tracker are reparented, and must end by themselves within seconds."""
    db = tmp_path / "research.db"
    process = start([*STUDY, "--store", "research.db"], tmp_path)
    reap.append(process)
    assert wait_for(midway(db), timeout=90, process=process)
    helpers = children(process.pid)
    assert len(helpers) >= 2, helpers  # two workers (and the resource tracker)
    process.kill()
    process.wait(timeout=30)
    assert wait_for(lambda: not any(alive(pid) for pid in helpers), timeout=15), \
        [pid for pid in helpers if alive(pid)]


def _watch_then_sleep(parent: int) -> None:
    exit_with_parent(parent)
    time.sleep(60)


def test_a_helper_whose_parent_died_before_it_watched_ends_at_once():
    """A worker still starting when the study was killed took init for its parent and lived on."""
    process = multiprocessing.get_context("spawn").Process(target=_watch_then_sleep, args=(-1,))  # not its parent
    process.start()
    process.join(30)
    assert process.exitcode == 1


def test_ctrl_c_exits_130_marks_running_trials_interrupted_and_resumes(tmp_path, reference):
    db = tmp_path / "research.db"
    args = [*STUDY, "--store", "research.db"]
    process = start(args, tmp_path)
    try:
        caught = wait_for(midway(db), timeout=90, process=process)
        signal_group(process, signal.SIGINT)  # what Ctrl-C in a terminal sends: to the workers too
        try:
            _, stderr = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            stderr = kill_group(process)
            pytest.fail(f"Ctrl-C did not stop the study within 30 s:\n{stderr}")
    finally:
        if process.poll() is None:
            kill_group(process)
    assert caught, f"the study ended before it could be interrupted:\n{stderr}"
    assert process.returncode == 130, stderr
    assert "interrupted: finished epochs are kept; continue with `research resume s`" in stderr
    assert "Traceback" not in stderr  # the workers leave Ctrl-C to the study's process

    assert integrity(db) == "ok"
    found = statuses(db, "s")
    assert "running" not in found.values()
    assert "interrupted" in found.values()
    before = curves(db, "s", seconds=True)
    assert sum(map(len, before.values())) >= 3  # finished epochs are kept

    resumed = run(args, tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert_resumed_exactly(db, before, reference)


def test_the_epochs_a_stop_waits_for_are_kept(tmp_path):
    """Ctrl-C lets the running trials end their epoch, and said so, but threw those epochs
    away: a study of long epochs lost one epoch's work per worker at every stop."""
    db = tmp_path / "research.db"
    args = ["train", "--strategy", "caviar", "--study", "s", "--trials", "1", "--epochs", "3", "--hidden", "2000",
            "--layers", "3", "--workers", "1", "--executor", "process", "--store", "research.db"]
    # SIGINT as epoch 1 is committed: the task of epoch 2 is in flight (sent on before the commit)
    process = start(args, tmp_path)
    committed, stderr = signal_when(process, lambda: live_epochs(db) == 1)
    assert committed and process.returncode == 130, stderr
    assert epochs_by_trial(db, "s") == {0: [1, 2]}, stderr
    assert statuses(db, "s") == {0: "interrupted"}
    resumed = run(["resume", "s"], tmp_path)  # from the state of epoch 2: nothing trained twice
    assert resumed.returncode == 0, resumed.stderr
    assert [row[0] for row in query(db, "SELECT epoch FROM metrics ORDER BY id")] == [1, 2, 3]


def test_the_epochs_a_stopped_confirmation_waits_for_are_kept(tmp_path):
    """The same for `research confirm`: its replicates' epochs that ended during the wait."""
    db = tmp_path / "research.db"
    search = run(["train", "--strategy", "caviar", "--study", "s", "--trials", "1", "--epochs", "3", "--hidden", "2000",
                  "--layers", "3", "--executor", "serial", "--store", "research.db"], tmp_path)
    assert search.returncode == 0, search.stderr
    process = start(["confirm", "s", "--top", "1", "--seeds", "1", "--workers", "1", "--executor", "process"],
                    tmp_path)
    committed, stderr = signal_when(process, lambda: query(db, "SELECT COUNT(*) FROM metrics") == [(4,)])
    assert committed and process.returncode == 130, stderr
    replicate = max(epochs_by_trial(db, "s"))
    assert epochs_by_trial(db, "s")[replicate] == [1, 2], stderr
    resumed = run(["confirm", "s", "--top", "1", "--seeds", "1"], tmp_path)  # from the state of epoch 2
    assert resumed.returncode == 0, resumed.stderr
    assert [epoch for (epoch,) in query(db, "SELECT m.epoch FROM metrics m JOIN trials t ON m.trial_id = t.id "
                                             "WHERE t.number = ? ORDER BY m.id", (replicate,))] == [1, 2, 3]


def test_resume_continues_a_study_with_its_stored_settings(tmp_path):
    first = run(["train", "--strategy", "caviar", "--study", "r", "--trials", "2", "--epochs", "2", "--hidden", "16",
                 "--executor", "serial", "--space", "lr=log:1e-3..1e-1"], tmp_path)
    assert first.returncode == 0, first.stderr
    more = run(["resume", "r", "--trials", "3", "--executor", "serial"], tmp_path)  # a larger budget, nothing else
    assert more.returncode == 0, more.stderr
    alone = run(["train", "--study", "r", "--trials", "4", "--executor", "serial"], tmp_path)  # the same, as train
    assert alone.returncode == 0, alone.stderr
    db = tmp_path / "research.db"
    assert statuses(db, "r") == {n: "finished" for n in range(4)}
    assert {c["hidden"] for c in configs(db, "r").values()} == {16}
    assert epochs_by_trial(db, "r") == {n: [1, 2] for n in range(4)}
    [listed] = json.loads(run(["studies", "--json"], tmp_path).stdout)["studies"]
    assert {k: listed[k] for k in ("name", "trains", "epochs", "trials", "budget", "runner")} == {
        "name": "r", "trains": "mlp on digits", "epochs": 2, "trials": {"finished": 4}, "budget": 4, "runner": None}
    assert listed["best"] > 0.1 and len(listed["created"]) == len("2026-12-02 15:04")
    wrong = run(["resume", "r", "--trials", "5", "--executor", "nope"], tmp_path)
    assert wrong.returncode == 2 and "unknown executor 'nope'" in wrong.stderr


def test_a_resume_runs_the_workers_the_study_was_given_until_told_otherwise(tmp_path):
    """--workers is kept with the study (gp, which does not wait, sees the trials running beside
    it: a resume on one worker per core would ask it with other trials in view)."""
    from research.study.store import find_stored_settings

    db = tmp_path / "research.db"
    base = ["--epochs", "1", "--hidden", "16", "--space", "lr=log:1e-3..1e-1"]
    assert run(["train", "--strategy", "caviar", "--study", "w", "--trials", "1", "--workers", "1", *base],
               tmp_path).returncode == 0
    assert find_stored_settings(db, "w")["workers"] == 1
    assert run(["resume", "w", "--trials", "2"], tmp_path).returncode == 0
    assert find_stored_settings(db, "w")["workers"] == 1
    assert run(["resume", "w", "--trials", "3", "--workers", "2"], tmp_path).returncode == 0
    assert find_stored_settings(db, "w")["workers"] == 2
    assert run(["train", "--strategy", "caviar", "--study", "d", "--trials", "1", *base], tmp_path).returncode == 0
    assert "workers" not in find_stored_settings(db, "d")  # one per core, wherever it runs
    assert statuses(db, "w") == {n: "finished" for n in range(3)}


def test_a_budget_of_epochs_stops_the_study_resumably_and_a_larger_one_finishes_it(tmp_path):
    common = ["--trials", "3", "--epochs", "3", "--hidden", "16", "--executor", "serial", "--workers", "1"]
    straight = run(["train", "--strategy", "caviar", "--study", "s", *common, "--store", "straight.db"], tmp_path)
    assert straight.returncode == 0, straight.stderr
    first = run(["train", "--strategy", "caviar", "--study", "s", *common, "--max-epochs", "5"], tmp_path)
    assert first.returncode == 0, first.stderr
    assert "budget reached (5 epochs trained, of --max-epochs 5)" in first.stderr
    # what goes on names the executor this run used (the study does not keep it)
    assert "`research resume s --executor serial` with a larger --max-minutes or --max-epochs" in " ".join(
        first.stderr.split())  # the console wraps long lines
    db = tmp_path / "research.db"
    assert statuses(db, "s") == {0: "finished", 1: "interrupted"}
    assert epochs_by_trial(db, "s") == {0: [1, 2, 3], 1: [1, 2]}
    # it said "trials 2/3 done (1 finished, 1 interrupted), ..., about 1s left" of a study that had stopped
    progress = next(line for line in first.stderr.splitlines() if line.startswith("trials "))
    assert progress.startswith("trials 1/3 done (1 finished, 1 interrupted), 0 running, ") and "left" not in progress
    still = run(["resume", "s"], tmp_path)  # the same budget: nothing more to train
    assert still.returncode == 0 and "budget reached" in still.stderr
    assert epochs_by_trial(db, "s") == {0: [1, 2, 3], 1: [1, 2]}
    more = run(["resume", "s", "--max-epochs", "9"], tmp_path)
    assert more.returncode == 0, more.stderr
    assert "budget reached (9 epochs trained, of --max-epochs 9) as its last trial ended" in more.stderr
    assert "unfinished" not in more.stderr  # none was left to interrupt
    assert statuses(db, "s") == {n: "finished" for n in range(3)}
    assert curves(db, "s") == curves(tmp_path / "straight.db", "s")  # as if never stopped


def test_a_study_file_takes_model_options_as_the_flag_does(tmp_path):
    """--model-opt had no table in a study.toml: [model_options] was an unknown table."""
    from research.study.spec import build_study_options

    (tmp_path / "m.toml").write_text("epochs = 1\n[model_options]\nhidden = 8\n")
    assert build_study_options({}, {}, tmp_path / "m.toml").base["model.hidden"] == 8
    (tmp_path / "twice.toml").write_text('[options]\n"model.hidden" = 9\n[model_options]\nhidden = 8\n')
    with pytest.raises(UsageError, match=r"model.hidden is given twice, in \[options\] and as hidden in "
                                         r"\[model_options\]; give it once"):
        build_study_options({}, {}, tmp_path / "twice.toml")


def test_a_study_file_takes_a_strategy_s_and_a_trainer_s_flags_by_name(tmp_path):
    """guide.md: each flag's name is a key; segments, policy or command were "unknown parameter
    ... for model 'mlp'" (they worked only in [strategy_options] and [trainer_options])."""
    (tmp_path / "b.toml").write_text('strategy = "babysit"\nstudy = "b"\nsegments = 2\nsegment_epochs = 1\n'
                                     'policy = "none"\nhidden = 8\n')
    done = run(["train", "--config", "b.toml"], tmp_path)
    assert done.returncode == 0, done.stderr
    with Store(tmp_path / "research.db", create=False) as store:
        assert store.study("b").settings["options"] == {"segments": 2, "segment_epochs": 1, "policy": "none"}
    (tmp_path / "twice.toml").write_text('strategy = "babysit"\nsegments = 2\n[strategy_options]\nsegments = 3\n')
    for key, value in (("plot", '"x.png"'), ("json", "true"), ("checkpoint", '"c.npz"')):  # "unknown parameter
        (tmp_path / "flag.toml").write_text(f'strategy = "caviar"\n{key} = {value}\n')  # 'plot' for model 'mlp'"
        flag = run(["train", "--config", "flag.toml"], tmp_path)
        assert flag.returncode == 2 and flag.stderr.strip() == (
            f"error: config file flag.toml: {key} is a flag of the command, not a setting of the study: give --{key} "
            "on the command line")
    twice = run(["train", "--config", "twice.toml"], tmp_path)
    assert twice.returncode == 2 and twice.stderr.strip() == (
        "error: config file twice.toml: segments is given twice, as a key and in [strategy_options]; give it once")
    shutil.copy(Path(__file__).resolve().parent.parent / "docs" / "examples" / "digits_script.py", tmp_path)
    (tmp_path / "c.toml").write_text('strategy = "caviar"\nstudy = "c"\ntrials = 1\nepochs = 1\nmetric = "val_loss"\n'
                                     'command = "python digits_script.py"\n')  # the trainer it names is picked
    program = run(["train", "--config", "c.toml"], tmp_path)
    assert program.returncode == 0, program.stderr
    assert epochs_by_trial(tmp_path / "research.db", "c") == {0: [1]}


def test_a_budget_of_epochs_starts_no_trial_the_running_ones_will_spend_it_on(tmp_path):
    """Two one-epoch trials in flight covered --max-epochs 2, yet a third started beside them."""
    done = run(["train", "--strategy", "caviar", "--study", "s", "--trials", "6", "--epochs", "1", "--hidden", "8",
                "--workers", "2", "--executor", "process", "--max-epochs", "2"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "budget reached (2 epochs trained, of --max-epochs 2)" in done.stderr
    assert epochs_by_trial(tmp_path / "research.db", "s") == {0: [1], 1: [1]}


def test_a_budget_spent_before_a_trial_starts_is_said_so(tmp_path):
    """--max-epochs 2 of six one-epoch trials left four unstarted, yet the note said "its unfinished
    trials are interrupted"; a budget spent before any trial started added a warning blaming the
    strategy (plugin 'caviar'), and `research plot` said to resume, which trained nothing."""
    common = ["--trials", "6", "--epochs", "1", "--hidden", "8", "--executor", "serial", "--workers", "1"]
    part = run(["train", "--strategy", "caviar", "--study", "p", *common, "--max-epochs", "2"], tmp_path)
    assert part.returncode == 0, part.stderr
    assert "budget reached (2 epochs trained, of --max-epochs 2); its other trials were not started: " in \
        " ".join(part.stderr.split())
    none = run(["train", "--strategy", "caviar", "--study", "n", *common, "--max-minutes", "1e-9"], tmp_path)
    said = " ".join(none.stderr.split())
    assert none.returncode == 0 and "; no trial started: `research resume n --executor serial` with a larger" in said
    assert "warning" not in said
    plotted = run(["plot", "n"], tmp_path)
    assert plotted.returncode == 2 and plotted.stderr.strip() == (
        "error: nothing to plot: study 'n' has no trained epoch yet; train it with `research resume n` with a larger "
        "--max-minutes or --max-epochs (or --no-budget)")


def test_a_budget_is_lifted_with_no_budget(tmp_path):
    """A study's budget could only grow: `--max-minutes inf` was refused with "leave it out for no
    budget", and a resume that left it out kept the stored one, training nothing."""
    common = ["--trials", "2", "--epochs", "2", "--hidden", "8", "--executor", "serial"]
    first = run(["train", "--strategy", "caviar", "--study", "s", *common, "--max-epochs", "1"], tmp_path)
    assert first.returncode == 0 and "(with --no-budget, to the end)" in " ".join(first.stderr.split())
    endless = run(["resume", "s", "--max-minutes", "inf"], tmp_path)
    assert endless.returncode == 2 and endless.stderr.strip().endswith(
        "--max-minutes must be a finite number > 0, got inf; leave it out for no budget (`research resume NAME "
        "--no-budget` lifts a study's)")
    both = run(["resume", "s", "--no-budget", "--max-epochs", "3"], tmp_path)
    assert both.returncode == 2 and both.stderr.strip() == (
        "error: --no-budget lifts the study's budgets; give it without --max-minutes and --max-epochs")
    lifted = run(["resume", "s", "--no-budget"], tmp_path)
    assert lifted.returncode == 0, lifted.stderr
    db = tmp_path / "research.db"
    assert statuses(db, "s") == {0: "finished", 1: "finished"}
    with Store(db, create=False) as store:
        assert store.study("s").settings["max_epochs"] is None  # for the next run too


def test_a_budget_of_minutes_counts_every_run(tmp_path):
    args = ["train", "--strategy", "caviar", "--study", "m", "--trials", "1000", "--epochs", "5", "--hidden", "16",
            "--executor", "serial", "--max-minutes", "0.05"]
    first = run(args, tmp_path)
    assert first.returncode == 0 and re.search(r"budget reached \(0\.\d+ minutes run, of --max-minutes 0\.05\)",
                                               first.stderr), first.stderr
    db = tmp_path / "research.db"
    trained = sum(map(len, epochs_by_trial(db, "m").values()))
    # the trials running when the minutes ran out are interrupted (none when they all had just
    # finished: the timing decides; the epochs budget's test checks interruption exactly)
    assert 0 < trained < 5000 and set(statuses(db, "m").values()) <= {"finished", "interrupted"}
    again = run(["resume", "m"], tmp_path)  # the minutes of the first run count: spent already
    assert again.returncode == 0 and "budget reached" in again.stderr
    assert sum(map(len, epochs_by_trial(db, "m").values())) == trained


def test_the_ranked_table_says_when_it_shows_only_the_best(tmp_path):
    done = run(["train", "--strategy", "caviar", "--trials", "11", "--epochs", "1", "--hidden", "8", "--executor",
                "serial"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "the best 10 of 11 trials; `research show caviar-1` lists all" in done.stdout
    elsewhere = run(["train", "--strategy", "caviar", "--trials", "11", "--epochs", "1", "--hidden", "8", "--executor",
                     "serial", "--store", "other.db"], tmp_path)  # the hint must work as typed
    assert "the best 10 of 11 trials; `research show caviar-1 --store other.db` lists all" in elsewhere.stdout


def test_the_ranked_table_shows_coarse_to_fines_rounds(tmp_path):
    """The README's "2 rounds of 8, the second finer" could be seen only in `research export`."""
    done = run(["train", "--strategy", "caviar", "--sampler", "coarse-to-fine", "--sampler-opt", "round_size=2",
                "--trials", "4", "--epochs", "1", "--hidden", "8", "--executor", "serial", "--study", "c"], tmp_path)
    assert done.returncode == 0, done.stderr
    rows = json.loads(run(["show", "c", "--json"], tmp_path).stdout)["trials"]
    shown = run(["show", "c"], tmp_path).stdout
    header = next(line for line in shown.splitlines() if "trial" in line and "round" in line)
    cells = [line.split("│")[1:4] for line in shown.splitlines() if line.startswith("│")]
    assert {(int(trial), int(round_)) for _, trial, round_ in cells} == {(r["number"], r["round"]) for r in rows}
    assert {r["round"] for r in rows} == {0, 1} and header
    random = run(["train", "--strategy", "caviar", "--trials", "2", "--epochs", "1", "--hidden", "8", "--executor",
                  "serial", "--study", "r"], tmp_path)
    assert random.returncode == 0 and "round" not in run(["show", "r"], tmp_path).stdout  # no rounds, no column


def test_redirected_progress_is_one_line_for_the_whole_study_and_pruning_is_summarized(tmp_path):
    args = ["train", "--strategy", "caviar", "--study", "p", "--epochs", "4", "--hidden", "16", "--executor", "serial",
            "--prune", "asha", "--seed", "1"]
    first = run([*args, "--trials", "8"], tmp_path)
    assert first.returncode == 0, first.stderr
    lines = first.stderr.splitlines()
    progress = [line for line in lines if line.startswith("trials ")]
    assert len(progress) == 1 and progress[0].startswith("trials 8/8 done ("), first.stderr
    assert not any("┃" in line for line in lines)  # no live table drawn into a file
    pruned = statuses(tmp_path / "research.db", "p")
    count = sum(status == "pruned" for status in pruned.values())
    assert count and f"{count} trial{'s' if count > 1 else ''} pruned; `research show p` says why" in lines
    assert not any(" pruned: " in line for line in lines)
    more = run(["resume", "p", "--trials", "10"], tmp_path)
    assert more.returncode == 0, more.stderr
    assert any(line.startswith("trials 10/10 done (") for line in more.stderr.splitlines())  # the whole study


def test_show_says_what_the_last_run_ran_on(tmp_path):
    done = run(["train", "--strategy", "caviar", "--study", "r", "--trials", "1", "--epochs", "1", "--hidden", "8",
                "--executor", "serial"], tmp_path)
    assert done.returncode == 0, done.stderr
    shown = run(["show", "r"], tmp_path).stdout.replace("\n", " ")
    assert re.search(r"last run \S+ \S+ on \S+: research \S+, python \S+, numpy \S+, \S+ \S+, kernels [0-9a-f]{16}",
                     shown), shown


def test_repeating_a_command_says_which_study_it_repeats(tmp_path):
    args = ["train", "--strategy", "caviar", "--trials", "1", "--epochs", "1", "--hidden", "16", "--executor", "serial"]
    assert "a new study with the settings" not in run(args, tmp_path).stderr
    again = run(args, tmp_path)
    assert again.returncode == 0, again.stderr
    assert ("study 'caviar-2' in research.db" in again.stderr and "a new study with the settings of 'caviar-1'; "
            "`research resume caviar-1` would have continued that one" in again.stderr)


def test_rename_and_delete_with_confirmation_take_the_checkpoints_along(tmp_path):
    common = ["--trials", "1", "--epochs", "2", "--hidden", "16", "--executor", "serial"]
    for name in ("a", "b"):
        assert run(["train", "--strategy", "caviar", "--study", name, *common], tmp_path).returncode == 0
    folder = tmp_path / "research-checkpoints"
    (folder / "study-1").mkdir(parents=True, exist_ok=True)
    (folder / "study-1" / "trial-00000.npz").write_bytes(b"kept with study a")
    renamed = run(["rename", "a", "first", "--yes"], tmp_path)
    assert renamed.returncode == 0 and "renamed study 'a' to 'first'" in renamed.stderr
    taken = run(["rename", "first", "b", "--yes"], tmp_path)
    assert taken.returncode == 2 and "study 'b' already exists" in taken.stderr
    asked = run(["delete", "first"], tmp_path)  # no terminal to ask on: --yes is required
    assert asked.returncode == 2 and "needs confirmation: add --yes" in asked.stderr
    assert (folder / "study-1" / "trial-00000.npz").exists()
    deleted = run(["delete", "first", "--yes"], tmp_path)
    assert deleted.returncode == 0, deleted.stderr
    assert not (folder / "study-1").exists()
    names = [s["name"] for s in json.loads(run(["studies", "--json"], tmp_path).stdout)["studies"]]
    assert names == ["b"]
    assert query(tmp_path / "research.db", "SELECT COUNT(*) FROM trials") == [(1,)]
    again = run(["train", "--strategy", "caviar", "--study", "first", *common], tmp_path)  # the name is free
    assert again.returncode == 0, again.stderr


def test_a_study_whose_checkpoints_cannot_be_removed_is_not_deleted(tmp_path, monkeypatch):
    """As a user who may not write the checkpoints folder, `research delete` said "deleted study"
    and left the checkpoints behind. (The tests run as root, whom no mode stops: the folder's
    refusal is simulated.)"""
    import os

    from tests.studyutil import cli

    monkeypatch.chdir(tmp_path)
    assert cli("train", "--strategy", "caviar", "--study", "s", "--trials", "1", "--epochs", "1", "--hidden", "8",
               "--executor", "serial", "--plot", "s.png").exit_code == 0
    folder = Path("research-checkpoints")
    access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != folder and access(path, mode))
    refused = cli("delete", "s", "--yes")
    assert refused.exit_code == 2, refused.output
    assert refused.stderr.splitlines()[-1] == (
        f"error: cannot delete study 's': its checkpoints in {folder / 'study-1'} cannot be removed ({folder} is not "
        f"writable); make them writable (chmod -R u+w {folder}) and run again: nothing was deleted")
    assert [s["name"] for s in json.loads(cli("studies", "--json").stdout)["studies"]] == ["s"]
    assert (folder / "study-1").is_dir()
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    assert cli("delete", "s", "--yes").exit_code == 0
    assert not (folder / "study-1").exists()


def test_ctrl_c_in_babysit_leaves_its_trial_interrupted_and_says_how_to_continue(tmp_path):
    db = tmp_path / "research.db"
    args = ["train", "--strategy", "babysit", "--study", "b", "--segments", "200", "--segment-epochs", "2",
            "--hidden", "16", "--policy", "none"]
    process = start(args, tmp_path)
    caught, stderr = signal_when(process, lambda: live_epochs(db) >= 4)
    assert caught and process.returncode == 130, stderr
    assert "interrupted: finished epochs are kept; continue with `research resume b`" in stderr
    assert statuses(db, "b") == {0: "interrupted"}


@pytest.mark.parametrize("sig, code, said", [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")])
def test_a_signal_at_babysit_s_prompt_stops_as_anywhere_else(tmp_path, sig, code, said):
    """The prompt took Ctrl-C (and SIGTERM) for the end of input: "babysitting stopped", exit 0."""
    db = tmp_path / "research.db"
    process = subprocess.Popen(research_command() + ["train", "--strategy", "babysit", "--study", "b", "--segments",
                                                     "4", "--segment-epochs", "1", "--hidden", "8", "--interactive"],
                               cwd=tmp_path, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    try:
        asked = wait_for(lambda: live_epochs(db) >= 1, timeout=90, process=process)
        time.sleep(1.0)  # at the prompt: it waits for an answer that does not come
        signal_group(process, sig)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            kill_group(process)
    assert asked and process.returncode == code, stderr
    assert f"{said}: finished epochs are kept; continue with `research resume b`" in stderr
    assert statuses(db, "b") == {0: "interrupted"}


def test_a_second_runner_is_refused_and_a_dead_ones_study_is_taken_over(tmp_path):
    db = tmp_path / "research.db"
    args = [*STUDY, "--store", "research.db"]
    args[args.index("--epochs") + 1] = "400"  # long enough to be running while the second one tries
    first = start(args, tmp_path)
    try:
        assert wait_for(midway(db), timeout=90, process=first)
        second = run(["resume", "s"], tmp_path)
        assert second.returncode == 2
        [line] = second.stderr.strip().splitlines()  # no header line first: nothing starts
        assert line.startswith(f"error: study 's' is already being run by pid {first.pid} on ")
        confirm = run(["confirm", "s", "--top", "1", "--seeds", "1"], tmp_path)
        assert confirm.returncode == 2 and confirm.stderr.strip().splitlines() == [line], confirm.stderr
        before = query(db, "SELECT settings FROM studies")
        more = run(["resume", "s", "--trials", "9", "--workers", "1"], tmp_path)  # it stored them, then refused
        assert more.returncode == 2 and more.stderr.strip().splitlines() == [line], more.stderr
        assert query(db, "SELECT settings FROM studies") == before
        assert "running" in statuses(db, "s").values()  # the second one touched nothing
    finally:
        kill_group(first)  # kill -9: no cleanup at all
    shown = run(["show", "s", "--json"], tmp_path)
    assert {t["status"] for t in json.loads(shown.stdout)["trials"]} <= {"finished", "interrupted"}, shown.stdout
    taken = start(["resume", "s"], tmp_path)  # the dead runner holds nothing: no wait
    try:
        assert wait_for(lambda: "running" in statuses(db, "s").values(), timeout=60, process=taken)
    finally:
        kill_group(taken)


@pytest.mark.skipif(not hasattr(os, "waitid") or not Path("/proc/self/stat").exists(), reason="Linux's /proc")
def test_a_killed_runner_its_parent_has_not_reaped_holds_nothing():
    """A runner killed by a parent that has not waited for it yet (a zombie) is dead: the next
    `research resume` need not wait out the stale time for its heartbeat."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        fresh = Runner(child.pid, socket.gethostname(), time.time(), time.time())
        assert fresh.alive(time.time())
        child.kill()
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # dead, not reaped: a zombie
        assert Path(f"/proc/{child.pid}/stat").exists()
        assert not fresh.alive(time.time())
    finally:
        child.kill()
        child.wait()


def test_sigterm_stops_like_ctrl_c_and_resumes_exactly(tmp_path, reference):
    """`kill PID` (SIGTERM to the study's process only, as a job scheduler sends it): exit 143,
    running trials interrupted, no worker left behind, the same curves after a resume."""
    db = tmp_path / "research.db"
    args = [*STUDY, "--store", "research.db"]
    process = start(args, tmp_path)
    try:
        caught = wait_for(midway(db), timeout=90, process=process)
        helpers = children(process.pid)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            kill_group(process)
    assert caught and process.returncode == 143, stderr
    assert "terminated: finished epochs are kept; continue with `research resume s`" in stderr
    assert "Traceback" not in stderr
    assert wait_for(lambda: not any(alive(pid) for pid in helpers), timeout=15)
    assert "running" not in statuses(db, "s").values()
    before = curves(db, "s", seconds=True)
    resumed = run(["resume", "s"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert_resumed_exactly(db, before, reference)


def test_readers_never_block_the_writer(tmp_path):
    """show, studies and export against a study being written: all succeed, the study completes."""
    db = tmp_path / "research.db"
    process = start([*STUDY, "--store", "research.db"], tmp_path)
    try:
        assert wait_for(lambda: query(db, "SELECT COUNT(*) FROM trials")[0][0] > 0, timeout=90, process=process)
        reads = during = 0
        while process.poll() is None or reads == 0:
            unfinished = "running" in statuses(db, "s").values()
            for args in (["show", "s", "--store", db], ["show", "s", "--store", db, "--json"],
                         ["studies", "--json", "--store", db], ["export", "s", "--format", "csv", "--store", db]):
                result = cli(*args)
                assert result.exit_code == 0, (args, result.output)
            json.loads(cli("studies", "--json", "--store", db).stdout)
            reads += 1
            during += unfinished and process.poll() is None
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            kill_group(process)
    assert process.returncode == 0, stderr
    assert during >= 1, "no read happened while trials were running"
    assert statuses(db, "s") == {n: "finished" for n in range(4)}
    assert epochs_by_trial(db, "s") == ALL_EPOCHS
    assert integrity(db) == "ok"


# bad input: one line, exit 2, nothing written ----------------------------------------------


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory):
    """A store holding one finished study 's', and config files with mistakes."""
    where = tmp_path_factory.mktemp("bad-input")
    result = cli("train", "--strategy", "caviar", "--study", "s", "--trials", "2", "--epochs", "1", "--hidden", "16",
                 "--executor", "serial", "--space", "lr=log:1e-3..1e-1", "--store", where / "research.db",
                 "--plot", where / "s.png")
    assert result.exit_code == 0, result.output
    (where / "broken.toml").write_text("trials = [\n")
    (where / "table.toml").write_text("trials = 2\n[optimizers]\nlr = 0.1\n")
    (where / "misspelled.toml").write_text("trails = 2\n")
    (where / "number.toml").write_text("store = 5\n")
    (where / "bounds.toml").write_text('[space.lr]\nscale = "log"\n')
    (where / "ok.toml").write_text('trials = 2\nepochs = 1\nhidden = 16\nexecutor = "serial"\n[space.lr]\n'
                                   'low = 1e-3\nhigh = 1e-1\nscale = "log"\n')
    (where / "notes.db").write_bytes(b"not a database, just notes\n" * 100)
    (where / "empty.db").write_bytes(b"")
    (where / "data.csv").write_text("a,b,label\n1,2,0\n3,4,1\n2,2,0\n4,4,1\n")
    return where


TRAIN = ["train", "--trials", "2", "--epochs", "1", "--hidden", "16", "--executor", "serial", "--store",
         "{dir}/research.db"]
CAVIAR = [*TRAIN, "--strategy", "caviar"]
RESUME = [*CAVIAR, "--study", "s"]

BAD = [
    ([*CAVIAR, "--sampler", "rnd"], r"unknown sampler 'rnd'; choose one of: .*random"),
    ([*TRAIN, "--strategy", "cavair"], r"unknown strategy 'cavair'; choose one of: .*caviar"),
    ([*CAVIAR, "--executor", "threads"], r"unknown executor 'threads'; choose one of: .*process, serial"),
    ([*CAVIAR, "--executor-opt", "nodes=3"], r"executor 'serial': unknown option 'nodes'; it takes no options"),
    ([*CAVIAR, "--space", "lr"], r"cannot read --space 'lr'; write NAME=DEFINITION"),
    ([*CAVIAR, "--space", "lr=log1e-4..1"], r"lr: 'log1e-4' is not a number"),
    ([*CAVIAR, "--space", "lr=log:1..1e-4"], r"lr: low must be below high, got 1.0..0.0001"),
    ([*CAVIAR, "--space", "lr=log:0.1..0.1"], r"lr: low must be below high"),
    ([*CAVIAR, "--space", "lr=log:0..1"], r"lr: the log scale needs low > 0, got low=0.0"),
    ([*CAVIAR, "--space", "beta1=log1m:0.9..1"], r"beta1: the log1m scale needs high < 1, got high=1.0"),
    ([*CAVIAR, "--space", "lrate=log:1e-4..1"],
     r"unknown search-space parameter 'lrate' for model 'mlp', optimizer 'adam'.*valid names: .*beta1.*\blr\b"),
    ([*CAVIAR, "--space", "dataset_options=1,2"],  # a table of options is no searchable name, nor listed as one
     r"unknown search-space parameter 'dataset_options' .*valid names: (?!.*_options).*\blr\b"),
    ([*CAVIAR, "--trials", "0"], r"trials must be an integer >= 1, got 0"),
    ([*CAVIAR, "--space", "layers=1,two"], r"the space's layers=1,two draws values it cannot take: model 'mlp': "
     r"layers must be an integer in \[0, 1000\], got 'two'; change the space"),
    ([*CAVIAR, "--space", "beta1=0.5..1.5"], r"optimizer 'adam': beta1 must be a number in \[0, 1\), got 1.5"),
    ([*CAVIAR, "--config", "{dir}/broken.toml"], r"config file .*broken.toml is not valid TOML"),
    ([*CAVIAR, "--config", "{dir}/table.toml"], r"config file .*table.toml: unknown table"),
    ([*CAVIAR, "--config", "{dir}/number.toml"],  # it was "TypeError: expected str ... (this is a bug ...)"
     r"config file .*number.toml: store must be text in quotes \(store = \"...\"\), got 5$"),
    ([*CAVIAR, "--config", "{dir}/misspelled.toml"], r"unknown parameter 'trails' \(the study setting 'trials'\?\) for "),
    (["train", "--config", "{dir}/misspelled.toml"],  # no strategy: one model, which the hint says too
     r"unknown parameter 'trails' \(the study setting 'trials'\? a study needs a strategy too\) for "),
    ([*CAVIAR, "--config", "{dir}/bounds.toml"], r"lr: missing low and high; give low and high, or values"),
    ([*CAVIAR, "--config", "{dir}/missing.toml"], r"config file .*missing.toml does not exist"),
    ([*RESUME, "--space", "lr=log:1e-4..1"],
     r"""study 's' was created with space = \{"lr": "log:0\.001\.\.0\.1"\}, not space = \{"lr": "log:0\.0001\.\.1\.0"\}; """
     r"drop that option to continue it, or choose a new --study name"),
    ([*RESUME, "--config", "{dir}/ok.toml", "--seed", "5"], r"study 's' was created with seed = 0, not seed = 5"),
    (["rename", "s", "s", "--store", "{dir}/research.db"], r"study 's' already has that name; give the new one"),
    ([*CAVIAR, "--metric", "nosuch"], r"unknown metric 'nosuch'; choose one of: val_acc, val_loss, train_acc, "
     r"train_loss, lr, seconds$"),
    (["resume", "s", "--store", "{dir}/research.db", "--trials", "1"],
     r"study 's' has started trials 0 to 1, so its budget cannot go below 2 trials, asked for 1; ask for 2 or more"),
    ([*RESUME, "--layers", "3"], r"study 's' was created without layers, not layers = 3"),
    ([*RESUME, "--metric", "val_loss"],
     r"study 's' was created without metric \(its default\), not metric = \"val_loss\""),  # was "metric = null"
    (["train", "--study", "s", "--store", "{dir}/research.db", "--seed", "5"],
     r"study 's' was created with seed = 0, not seed = 5"),
    (["train", "--study", "s", "--store", "{dir}/research.db", "--optimizer", "momentum"],
     r"study 's' was created with optimizer = \"adam\", not optimizer = \"momentum\""),
    ([*CAVIAR, "--dataset", "csv", "--dataset-opt", "path={dir}/data.csv", "--dataset-opt", "label=y"],
     r"data.csv: has no label column 'y' \(columns: 'a', 'b', 'label'\); pass label=NAME"),
    ([*CAVIAR, "--dataset", "csv", "--dataset-opt", "path={dir}/missing.csv"], r"missing.csv: no such file"),
    ([*CAVIAR, "--workers", "0"],
     r"workers must be at least 1, got 0; leave --workers out for the default \(the study's, else one per core\)"),
    # 1,000 on 2 cores was taken, and a resume started a process per pending trial
    (["train", "--strategy", "caviar", "--store", "{dir}/research.db", "--workers", "1000"],
     r"executor 'process': --workers 1,000 would start up to as many processes on this machine, more than its \d+ "
     r"\(8 per core\); give --workers \d+ or fewer"),
    ([*CAVIAR, "--space", "hidden=int:16..256"],
     r"hidden is both fixed \(--hidden 16\) and searched \(--space hidden=int:16..256\); drop one of them"),
    (["train", "--study", "nosuchstudy", "--store", "{dir}/research.db"],
     r"no study 'nosuchstudy' in .*research.db; add --strategy NAME to start it"),
    (["resume", "nosuchstudy", "--store", "{dir}/research.db"], r"no study 'nosuchstudy' in .*research.db"),
    (["resume", "s", "--store", "{dir}/absent.db"], r"no study 's': there is no store .*absent.db here; run the "
                                                    r"command where the study's store is, or pass --store PATH"),
    (["show", "nosuchstudy", "--store", "{dir}/research.db"], r"no study 'nosuchstudy' in .*; studies: s"),
    (["export", "nosuchstudy", "--store", "{dir}/research.db"], r"no study 'nosuchstudy'"),
    (["export", "s", "--format", "xml", "--store", "{dir}/research.db"], r"unknown export format 'xml'"),
    (["export", "s", "-o", "{dir}/missing/s.csv", "--store", "{dir}/research.db"],
     r"cannot write .*s.csv: folder .*missing does not exist; create it or choose another -o"),
    (["export", "s", "-o", "{dir}", "--store", "{dir}/research.db"], r"cannot write .*: it is a folder; name a file in it, or "
     r"choose another -o"),
    ([*CAVIAR, "--plot", "{dir}/missing/curves.png"], r"folder .*missing does not exist; create it or choose another --plot"),
    ([*CAVIAR, "--plot", "{dir}/curves.jpg"], r"cannot write a picture to curves.jpg \('.jpg'\); name a .png or .svg"),
    ([*CAVIAR, "--store", "{dir}/notes.db"], r"notes.db is not a research store"),
    (["show", "s", "--store", "{dir}/notes.db"], r"notes.db is not a research store"),
    (["studies", "--store", "{dir}/notes.db"], r"notes.db is not a research store"),
    (["studies", "--store", "{dir}/nowhere.db"], r"store .*nowhere.db does not exist"),
    (["show", "s", "--store", "{dir}/empty.db"], r"empty.db is empty, not a research store yet"),
    ([*CAVIAR, "--store", "{dir}"],
     r"store .* is a folder, not a store file; pass --store with a file.s path \(such as .*research.db\)"),
]


def _case_id(args):
    for prefix in (RESUME, CAVIAR, TRAIN):
        if args[: len(prefix)] == prefix:
            return " ".join(args[len(prefix):]).replace("{dir}/", "")
    return " ".join(args).replace("{dir}/", "")


@pytest.mark.parametrize("args, message", BAD, ids=[_case_id(a) for a, _ in BAD])
def test_bad_input_is_one_line_exit_2_and_the_store_is_untouched(store_dir, tmp_path, args, message):
    store_dir = Path(shutil.copytree(store_dir, tmp_path / "copy"))  # a failure here spoils no other case
    args = [a.format(dir=store_dir) for a in args]
    watched = [store_dir / "research.db", store_dir / "notes.db", store_dir / "empty.db"]
    before = [fingerprint(path) for path in watched]
    result = cli(*args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert re.search(message, lines[0]), lines[0]
    assert result.stdout == ""
    assert [fingerprint(path) for path in watched] == before
    assert not (store_dir / "nowhere.db").exists()
    with Store(store_dir / "research.db", create=False) as store:
        assert [s.name for s in store.studies()] == ["s"]


def test_an_executor_that_cannot_work_is_refused_before_the_study_is_stored(store_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if Dask were not installed
    result = cli(*[a.format(dir=store_dir) for a in CAVIAR], "--executor", "dask", "--study", "d")
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: executor 'dask': Dask is not installed; {install_command('dask')}"
    with Store(store_dir / "research.db", create=False) as store:
        assert store.find_study("d") is None


def test_bad_input_names_the_unknown_table(store_dir):
    result = cli(*[a.format(dir=store_dir) for a in CAVIAR], "--config", store_dir / "table.toml")
    assert result.exit_code == 2
    assert "[optimizers]" in result.stderr


def test_a_store_moved_without_its_checkpoints_folder_is_not_resumed_from_scratch_in_silence(tmp_path):
    """Its interrupted trials started again from epoch 0, the folder made anew and empty."""
    common = ["--trials", "2", "--epochs", "3", "--hidden", "8", "--executor", "serial"]
    first = run(["train", "--strategy", "caviar", "--study", "s", *common, "--max-epochs", "4"], tmp_path)
    assert first.returncode == 0, first.stderr
    moved = tmp_path / "moved"
    moved.mkdir()
    (tmp_path / "research.db").rename(moved / "research.db")
    before = fingerprint(moved / "research.db")
    for args in (["resume", "s"], ["confirm", "s", "--top", "1", "--seeds", "1"]):
        refused = run(args, moved)
        assert refused.returncode == 2
        assert refused.stderr.strip() == (
            "error: study 's' keeps its checkpoints in research-checkpoints/study-1, which does not "
            "exist, as when a store is moved or copied without its checkpoints folder; put that folder there, or "
            "create it empty to go on without it (its unfinished trials then start again from epoch 0)")
    assert fingerprint(moved / "research.db") == before
    (tmp_path / "research-checkpoints").rename(moved / "research-checkpoints")
    resumed = run(["resume", "s"], moved)
    assert resumed.returncode == 0, resumed.stderr


def test_a_study_killed_before_its_first_checkpoint_resumes(tmp_path):
    """A --command study killed in its first seconds (its programs copy their folders every few
    seconds) had epochs and no checkpoints folder yet: its resume was refused as a store moved
    without its folder. The folder is made with the study."""
    from research.plugins import load_plugins
    from research.study.study import StudySettings, open_study

    plugins = load_plugins()
    settings = StudySettings(strategy="caviar", base={"epochs": 3, "hidden": 8}, space={"lr": "log:1e-3..1e-1"},
                             trials=2)
    with Store(tmp_path / "research.db") as store:
        study = open_study(store, "s", settings, plugins, executor="serial")
        assert study.checkpoints.is_dir() and not any(study.checkpoints.iterdir())
        trial = study.new_trial(0, study.make_sampler())  # as a killed run leaves it: epochs, no checkpoint
        store.add_epoch(trial, 1, {"val_acc": 0.5, "val_loss": 1.0})
        store.set_status(trial, "interrupted")
    resumed = run(["resume", "s", "--executor", "serial"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr


def test_resuming_with_the_same_options_and_a_new_budget(store_dir, tmp_path):
    """The budget may grow on resume: the two stored trials stay, one more runs."""
    db = tmp_path / "research.db"
    db.write_bytes((store_dir / "research.db").read_bytes())
    before = curves(db, "s", seconds=True)
    result = cli("train", "--strategy", "caviar", "--study", "s", "--trials", "3", "--epochs", "1", "--hidden", "16",
                 "--executor", "serial", "--space", "lr=log:1e-3..1e-1", "--store", db, "--plot", tmp_path / "s.png")
    assert result.exit_code == 0, result.output
    assert statuses(db, "s") == {0: "finished", 1: "finished", 2: "finished"}
    assert {n: rows for n, rows in curves(db, "s", seconds=True).items() if n < 2} == before


@pytest.mark.parametrize("option, says", [
    ("seed=0", None), ("test_fraction=0.2", None), ("val_fraction=0.20", None),
    ("seed=1", "was created with dataset option seed = 0, not dataset option seed = \"1\"; drop that option"),
])
def test_a_dataset_option_given_as_the_study_has_it_continues_the_study(store_dir, tmp_path, option, says):
    """A dataset option at its default (stored by omission) was refused as "created without
    dataset_options, not dataset_options = {...}", the whole table shown."""
    db = tmp_path / "research.db"
    db.write_bytes((store_dir / "research.db").read_bytes())
    result = cli("train", "--study", "s", "--store", db, "--trials", "2", "--executor", "serial", "--dataset-opt", option,
                 "--plot", tmp_path / "s.png")
    assert result.exit_code == (2 if says else 0), result.output
    assert says is None or says in result.stderr


def test_an_option_written_another_way_continues_the_study(tmp_path):
    """`--opt beta=0.8` is stored as its text; `--opt beta=8e-1` was refused as another value."""
    study = ["train", "--strategy", "caviar", "--study", "m", "--optimizer", "momentum", "--epochs", "1", "--hidden",
             "8", "--executor", "serial", "--store", tmp_path / "r.db", "--plot", tmp_path / "m.png", "--space",
             "lr=log:1e-2..1e-1"]
    assert cli(*study, "--opt", "beta=0.8", "--trials", "1").exit_code == 0
    assert cli(*study, "--opt", "beta=8e-1", "--trials", "2").exit_code == 0
    refused = cli(*study, "--opt", "beta=0.7", "--trials", "3")
    assert refused.exit_code == 2 and 'created with beta = "0.8", not beta = "0.7"' in refused.stderr
    searched = cli("train", "--study", "m", "--store", tmp_path / "r.db", "--lr", "0.05")  # "created without lr"
    assert searched.exit_code == 2 and "study 'm' searches lr (lr=log:0.01..0.1), so it has no fixed lr" in \
        searched.stderr


# listings, exports, sample previews --------------------------------------------------------


def test_studies_show_and_export(store_dir):
    db = store_dir / "research.db"
    stored = curves(db, "s", seconds=True)

    listing = json.loads(cli("studies", "--json", "--store", db).stdout)
    [study] = listing["studies"]
    assert study["name"] == "s" and study["strategy"] == "caviar" and study["budget"] == 2
    assert study["trials"] == {"finished": 2}
    val_acc = 4  # curves() rows: (epoch, train_loss, train_acc, val_loss, val_acc, lr, seconds)
    best = max(row[val_acc] for rows in stored.values() for row in rows)
    assert study["best"] == best and (study["metric"], study["direction"]) == ("val_acc", "maximize")
    text = cli("studies", "--store", db)
    assert text.exit_code == 0 and "2 finished" in text.stdout

    shown = cli("show", "s", "--store", db, "--json")
    assert shown.exit_code == 0, shown.output
    data = json.loads(shown.stdout)
    assert data["study"] == "s" and data["strategy"] == "caviar"
    assert data["settings"]["space"] == {"lr": "log:0.001..0.1"} and data["settings"]["trials"] == 2
    assert [row["best_val_acc"] for row in data["trials"]] == sorted((row["best_val_acc"] for row in data["trials"]),
                                                                    reverse=True)
    assert all(row["status"] == "finished" and row["epochs"] == 1 and 1e-3 <= row["config"]["lr"] <= 0.1
               for row in data["trials"])
    top = json.loads(cli("show", "s", "--store", db, "--json", "--top", "1").stdout)
    assert top["trials"] == data["trials"][:1]
    table = cli("show", "s", "--store", db)
    assert table.exit_code == 0 and "study s (caviar): best first" in table.stdout and "lr" in table.stdout

    exported = cli("export", "s", "--format", "csv", "--store", db)
    assert exported.exit_code == 0, exported.output
    header, *rows = list(csv.reader(io.StringIO(exported.stdout)))
    assert header == ["trial", "status", "lr", "epoch", "train_loss", "train_acc", "val_loss", "val_acc",
                      "test_loss", "test_acc", "epoch_lr", "seconds"]
    assert len(rows) == 2 and sorted(int(r[0]) for r in rows) == [0, 1]
    configs_ = configs(db, "s")
    for row in rows:
        number = int(row[0])
        curve = stored[number][0]
        assert row[1] == "finished" and float(row[2]) == configs_[number]["lr"] and row[3] == "1"
        named = dict(zip(header, row))
        built_in = ("train_loss", "train_acc", "val_loss", "val_acc", "epoch_lr", "seconds")
        assert [float(named[c]) for c in built_in] == list(curve[1:])
        assert 0 <= float(named["test_acc"]) <= 1 and float(named["test_loss"]) > 0

    named = store_dir / "named.json"  # CSV was written into it
    assert cli("export", "s", "--store", db, "-o", named).exit_code == 0
    assert json.loads(named.read_text())["study"] == "s"
    dashed = cli("export", "s", "--format", "csv", "--store", db, "-o", "-")  # it made a file named "-"
    assert dashed.exit_code == 0 and dashed.stdout == exported.stdout and not Path("-").exists()
    plotted = cli("plot", "s", "--store", db, "-o", "-")
    assert plotted.exit_code == 2 and plotted.stderr.strip() == (
        "error: -o - names standard output, which this command does not write its file to; name a file")

    as_json = json.loads(cli("export", "s", "--format", "json", "--store", db).stdout)
    assert as_json["study"] == "s" and as_json["settings"]["space"] == {"lr": "log:0.001..0.1"}
    assert {t["number"]: [c["val_acc"] for c in t["curve"]] for t in as_json["trials"]} == {
        n: [row[val_acc] for row in curve] for n, curve in stored.items()}
    assert all(t["status"] == "finished" and t["error"] is None for t in as_json["trials"])

    target = store_dir / "export.csv"
    written = cli("export", "s", "--format", "csv", "--store", db, "-o", target)
    assert written.exit_code == 0 and target.read_text() == exported.stdout


def test_sample_json_stays_in_bounds_on_the_right_scale():
    result = cli("sample", "--space", "lr=log:1e-4..1", "--space", "beta=log1m:0.9..0.999", "-n", "500", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["space"] == {"lr": "log:0.0001..1.0", "beta": "log1m:0.9..0.999"}
    samples = data["samples"]
    assert len(samples) == 500 and all(set(s) == {"lr", "beta"} for s in samples)
    assert all(1e-4 <= s["lr"] <= 1 and 0.9 <= s["beta"] <= 0.999 for s in samples)
    # log-uniform: half the draws below 1e-2; uniform in log(1 - beta): half above 0.99
    assert 0.4 < sum(s["lr"] < 1e-2 for s in samples) / 500 < 0.6
    assert 0.4 < sum(s["beta"] > 0.99 for s in samples) / 500 < 0.6
    again = cli("sample", "--space", "lr=log:1e-4..1", "--space", "beta=log1m:0.9..0.999", "-n", "500", "--json")
    assert json.loads(again.stdout) == data  # seeded: the same draws


def test_sample_histogram_counts_every_draw():
    result = cli("sample", "--space", "lr=log:1e-4..1", "--space", "beta=log1m:0.9..0.999", "-n", "500",
                 "--bins", "5")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    titles = [i for i, line in enumerate(lines) if "(log" in line]
    assert [lines[i].strip() for i in titles] == ["lr (log:0.0001..1.0)", "beta (log1m:0.9..0.999)"]
    for first, end in zip(titles, titles[1:] + [len(lines)]):
        rows = [line for line in lines[first + 1:end] if ".." in line]
        assert len(rows) == 5
        assert sum(int(line.split()[-1]) for line in rows) == 500
        assert all("█" in line for line in rows)
    # bins are equal on the parameter's own scale: lr's edges are decades apart by 0.8
    edges = [float(lines[titles[0] + 1 + i].split("..")[0]) for i in range(5)]
    assert all(math.isclose(math.log10(b / a), 0.8, rel_tol=0.01) for a, b in zip(edges, edges[1:]))


def test_sample_notes_a_range_that_spans_decades_on_the_linear_scale():
    """The preview shows the crowding; the note under it says what to write instead, and a
    scale written out (even linear:) is not questioned."""
    result = cli("sample", "--space", "lr=0.0001..1", "--space", "wd=linear:0.0001..1", "-n", "50")
    assert result.exit_code == 0, result.output
    notes = [line for line in result.stdout.splitlines() if "note:" in line]
    assert notes == ["  note: lr=0.0001..1.0 is on the linear scale, so 90% of its draws land in 0.1..1.0; "
                     "lr=log:0.0001..1.0 draws every decade alike (lr=linear:0.0001..1.0 keeps the linear scale and "
                     "is not questioned)"], result.stdout


def test_a_study_notes_a_range_on_the_linear_scale_that_spans_decades_before_it_trains(tmp_path):
    """From the study file and from --space alike (the flag over the file's), under the study's
    first line; a study file's fix is its scale key."""
    config = tmp_path / "study.toml"
    config.write_text("[space.lr]\nlow = 0.0001\nhigh = 1\n\n[space.beta2]\nlow = 0.9\nhigh = 0.9999\n")
    result = cli("train", "--strategy", "caviar", "--config", config, "--space", "beta2=log1m:0.9..0.9999",
                 "--trials", "1", "--epochs", "1", "--hidden", "8", "--store", tmp_path / "s.db", "--plot",
                 tmp_path / "s.png")
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert lines[1] == ('  note: [space.lr] 0.0001..1.0 is on the linear scale, so 90% of its draws land in 0.1..1.0; '
                        'scale = "log" in it draws every decade alike (scale = "linear" keeps the linear scale and is '
                        'not questioned)'), result.stderr
    assert sum("note:" in line for line in lines) == 1, result.stderr


def test_sample_rejects_bad_input():
    for args, message in ((["--space", "lr=log:0..1"], "log scale needs low > 0"), (["-n", "0"], "-n"),
                          (["--sampler", "nope"], "unknown sampler 'nope'")):
        result = cli("sample", *args)
        assert result.exit_code == 2, result.output
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], result.stderr


def test_a_study_another_process_creates_meanwhile_is_resumed_not_refused_as_taken(tmp_path, monkeypatch):
    """Two identical commands started at once: the one that lost the race to create the study
    said "study 'u' already exists ...; choose another --study name", though the same command
    resumes it. It goes on as with a stored study (the lease then says who runs it); with
    other settings, it is refused naming them, without internal names."""
    from research.plugins import load_plugins
    from research.study.study import StudySettings, open_study

    plugins = load_plugins()
    first = StudySettings(strategy="caviar", base={"epochs": 2, "hidden": 16}, space={"lr": "log:1e-3..1e-1"},
                          trials=2)
    with Store(tmp_path / "research.db") as store:
        open_study(store, "u", first, plugins, executor="serial")

        def missed_once(self, name, real=Store.find_study):  # it looked just before the other process made it
            monkeypatch.setattr(Store, "find_study", real)
            return None

        monkeypatch.setattr(Store, "find_study", missed_once)
        study = open_study(store, "u", first, plugins, executor="serial")
        assert study.record.name == "u" and len(store.studies()) == 1
        monkeypatch.setattr(Store, "find_study", missed_once)
        with pytest.raises(UsageError, match=r"^study 'u' was created with seed = 0, not 1; resume it with the "
                                             r"settings it was created with \(`research show u` shows them"):
            open_study(store, "u", replace(first, seed=1), plugins, executor="serial")


def test_a_resume_that_races_a_rename_or_a_delete_never_makes_a_study_anew(tmp_path):
    """`research resume S` read S's settings, `research rename S T` (or delete) came between,
    and the resume then created a new S from scratch: a delete silently undone, a rename that
    left two studies."""
    from research.plugins import load_plugins
    from research.study.runner import claim
    from research.study.study import StudySettings, open_study

    plugins = load_plugins()
    settings = StudySettings(strategy="caviar", base={"epochs": 1, "hidden": 8}, space={"lr": "log:1e-3..1e-1"},
                             trials=1)
    with Store(tmp_path / "research.db") as store:
        with pytest.raises(StoreError, match=r"^study 's' is no longer in .*research\.db \(renamed or deleted "
                                             r"meanwhile\)"):
            open_study(store, "s", settings, plugins, executor="serial", stored=True)
        assert store.studies() == []
        study = open_study(store, "s", settings, plugins, executor="serial")
        store.delete_study(study.record)  # after it was opened, before its run claimed it
        with pytest.raises(StoreError, match=r"^study 's' was deleted from .* as this run began"):
            claim(store, study.record)
        assert store.studies() == []


def test_the_python_api_resumes_renames_and_deletes_by_name(tmp_path):
    from research.plugins import load_plugins
    from research.study.store import stored_settings
    from research.study.study import StudySettings, delete_study, open_study, rename_study

    plugins = load_plugins()
    first = StudySettings(strategy="caviar", base={"epochs": 2, "hidden": 16}, space={"lr": "log:1e-3..1e-1"},
                          trials=2)
    with Store(tmp_path / "research.db") as store:
        open_study(store, "api", first, plugins, executor="serial").run(plugins.build("strategies", "caviar"))
        settings = StudySettings(**stored_settings(tmp_path / "research.db", "api"))
        assert settings == first
        with pytest.raises(UsageError, match=r"^study 'api' was created with seed = 0, not 1; resume it with the "):
            open_study(store, "api", replace(first, seed=1), plugins, executor="serial")
        settings.trials = 3
        study = open_study(store, "api", settings, plugins, executor="serial")
        study.run(plugins.build("strategies", "caviar"))
        assert [t.status for t in store.trials(study.record)] == ["finished"] * 3
        assert rename_study(store, "api", "renamed").name == "renamed"
        delete_study(store, "renamed")
        assert store.studies() == []
        with pytest.raises(StoreError, match=r"^no study 'renamed' in .*research\.db; studies: none yet$"):
            StudySettings(**stored_settings(tmp_path / "research.db", "renamed"))  # was None: a TypeError
        with pytest.raises(StoreError, match=r"^no store file .*nope\.db; give the path of the store"):
            stored_settings(tmp_path / "nope.db", "api")
        with pytest.raises(UsageError, match=r"^study name '' is not allowed"):
            open_study(store, "", first, plugins, executor="serial")  # was a new auto-named study each time
        with pytest.raises(UsageError, match=r"^workers must be an integer >= 0, got -1"):
            open_study(store, "w", first, plugins, executor="process", workers=-1)
        assert store.studies() == []  # nothing stored by a refusal


def test_export_does_not_depend_on_the_hash_seed(tmp_path):
    """The stored settings keep the flags' declared order, not a set's (which follows PYTHONHASHSEED)."""
    exports = []
    for seed in ("0", "2"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        store = str(tmp_path / f"h{seed}.db")
        subprocess.run([*research_command(), "train", "--strategy", "caviar", "--trials", "1",
                        "--epochs", "1", "--batch-size", "32", "--hidden", "16", "--study", "s", "--store", store],
                       env=env, cwd=tmp_path, check=True, capture_output=True)
        text = subprocess.run([*research_command(), "export", "s", "--store", store, "--format", "json"],
                              env=env, cwd=tmp_path, check=True, capture_output=True, text=True).stdout
        exports.append(list(json.loads(text)["settings"]["base"]))
    assert exports[0] == exports[1]


def test_continuing_with_the_studys_own_values_is_accepted(store_dir, tmp_path):
    """--seed without --strategy is the study's seed; a plugin left at its default is the one named."""
    store = Path(shutil.copytree(store_dir, tmp_path / "copy")) / "research.db"
    for flags in (["--seed", "0"], ["--optimizer", "adam"], ["--seed", "0", "--optimizer", "adam"]):
        result = cli("train", "--study", "s", "--store", store, "--executor", "serial", "--plot", tmp_path / "s.png",
                     *flags)
        assert result.exit_code == 0, (flags, result.output)


def test_a_value_given_as_text_and_as_a_number_is_the_same_value(tmp_path):
    """--opt stores "0.8"; the study's file says beta1 = 0.8: a resume with it was refused as
    "created with beta1 = "0.8", not beta1 = 0.8"."""
    space = '[space.lr]\nlow = 0.001\nhigh = 0.1\nscale = "log"\n'
    (tmp_path / "s.toml").write_text(f'strategy = "caviar"\ntrials = 1\nepochs = 1\nhidden = 8\n{space}')
    (tmp_path / "t.toml").write_text(f'strategy = "caviar"\ntrials = 1\nepochs = 1\nhidden = 8\n{space}'
                                     "[options]\nbeta1 = 0.8\n")
    assert run(["train", "--config", "s.toml", "--study", "s", "--opt", "beta1=0.8"], tmp_path).returncode == 0
    again = run(["train", "--config", "t.toml", "--study", "s"], tmp_path)
    assert again.returncode == 0, again.stderr
    other = run(["train", "--config", "t.toml", "--study", "s", "--opt", "beta1=0.9"], tmp_path)
    assert other.returncode == 2 and 'not beta1 = "0.9"' in other.stderr


def test_one_trial_and_one_epoch_are_counted_in_the_singular(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    made = cli("train", "--strategy", "caviar", "--trials", "1", "--epochs", "1", "--hidden", "16", "--executor", "serial",
               "--study", "one")
    assert made.exit_code == 0, made.output
    assert "study 'one' in research.db: 1 trial over " in made.stderr
    shown = cli("show", "one")
    assert "1 trial (1 finished), 1 epoch trained" in shown.stdout

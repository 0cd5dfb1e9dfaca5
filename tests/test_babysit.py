"""The babysit strategy end to end: the automatic policy (divergence, spikes, plateaus),
remote control from another process, the interactive prompt, exact rollbacks, and a killed
study that resumes with its story intact."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from research.cli import app
from research.errors import UsageError
from research.nn import checkpoint
from research.nn.training import Trainer
from research.plugins import load_plugins
from research.report.tables import ranked
from research.study.best import best_path, read_kept
from research.study.runner import claim
from research.study.store import Store, StoreError
from tests.studyutil import COMPARED, research_command, runner, wait_for

SMALL = ["--hidden", "16"]
# Slow enough (a tenth of a second an epoch on one core) that another process can act between
# epochs; one BLAS thread each, so two processes on two cores do not starve each other.
SLOW = ["--hidden", "256", "--layers", "3"]
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
WAIT = 60.0


def babysit(tmp_path: Path, *args: Any, study: str = "s", input: str | None = None) -> Any:
    """`research train --strategy babysit` in this process (typer's Result)."""
    argv = ["train", "--strategy", "babysit", "--study", study, "--store", tmp_path / "research.db",
            "--plot", tmp_path / f"{study}.png", *args]
    return runner.invoke(app, [str(a) for a in argv], input=input)


def log(tmp_path: Path, study: str = "s") -> list[dict[str, Any]]:
    """The study's events through `research log --json`, read as strict JSON (no NaN)."""
    result = runner.invoke(app, ["log", study, "--store", str(tmp_path / "research.db"), "--json"])
    assert result.exit_code == 0, result.output

    def refuse(name: str) -> None:
        raise AssertionError(f"`research log --json` printed {name}, which is not JSON")

    return json.loads(result.stdout, parse_constant=refuse)["events"]


def kinds(events: list[dict[str, Any]]) -> list[str]:
    return [e["kind"] for e in events]


def curve(db: Path, study: str = "s", *, rolled_back: bool = False) -> list[dict[str, Any]]:
    with Store(db, create=False) as store:
        trial = store.trials(store.study(study))[0]
        return store.curve(trial, rolled_back=rolled_back)


def status(db: Path, study: str = "s") -> str:
    with Store(db, create=False) as store:
        return store.trials(store.study(study))[0].status


def values(rows: list[dict[str, Any]]) -> list[tuple]:
    """Rows as (epoch, every metric but the wall-clock seconds)."""
    return [(row["epoch"], *(row[c] for c in COMPARED)) for row in rows]


def as_rows(history: list[dict[str, float]], first: int) -> list[tuple]:
    return [(first + i, *(m[c] for c in COMPARED)) for i, m in enumerate(history)]


# the automatic policy --------------------------------------------------------------------------


@pytest.mark.parametrize("case, options, old, new", [
    # Plain SGD without batchnorm at lr 40 blows up to NaN in the first epoch.
    ("diverged", ["--lr", "40", "--strategy-opt", "cut=0.02"], 40.0, 0.8),
    # At lr 1.5 the validation loss jumps from epoch 2 to epoch 4 (0.60 -> 3.13).
    ("spiked", ["--lr", "1.5"], 1.5, 0.75),
])
def test_policy_rolls_back_and_cuts_a_learning_rate_that_is_far_too_high(tmp_path, case, options, old, new):
    result = babysit(tmp_path, "--optimizer", "sgd", "--no-batchnorm", "--hidden", "32", "--segment-epochs", "2",
                     "--segments", "6", *options, "--json")
    assert result.exit_code == 0, result.output
    db = tmp_path / "research.db"
    assert status(db) == "finished"

    events = log(tmp_path)
    first_rollback = next(i for i, e in enumerate(events) if e["kind"] == "rollback")
    segment, rollback, change = events[first_rollback - 1:first_rollback + 2]
    assert [segment["kind"], rollback["kind"], change["kind"]] == ["segment", "rollback", "change"]
    assert segment["data"]["diverged"] is (case == "diverged")
    if case == "diverged":  # NaN reaches `research log --json` as null
        assert segment["data"]["metrics"]["val_loss"] is None
    assert case in rollback["data"]["reason"] and rollback["data"]["reason"].startswith("policy")
    assert rollback["data"]["to_epoch"] < rollback["data"]["from_epoch"] == segment["data"]["epoch"]
    assert change["data"]["name"] == "lr" and change["data"]["source"] == "policy"
    assert change["data"]["old"] == pytest.approx(old) and change["data"]["new"] == pytest.approx(new)
    assert change["data"]["reason"].startswith("policy") and case in change["data"]["reason"]
    assert change["data"]["epoch"] == rollback["data"]["to_epoch"]
    outcome = next(e for e in events if e["kind"] == "outcome" and e["data"]["change"] == change["id"])
    assert outcome["data"]["kept"] and not outcome["data"]["tried"]
    assert kinds(events)[-1] == "end" and events[-1]["data"]["status"] == "finished"

    # The undone epochs stay in the store, flagged, with the rate that caused the trouble.
    undone = [row for row in curve(db, rolled_back=True) if row["rolled_back"]]
    first_undone = [row for row in undone if row["lr"] == pytest.approx(old)]
    assert len(first_undone) == rollback["data"]["epochs_undone"] > 0
    assert [row["epoch"] for row in first_undone] == list(
        range(rollback["data"]["to_epoch"] + 1, rollback["data"]["from_epoch"] + 1))

    # The live curve has each epoch once, trains at the cut rate right after the rollback, and
    # recovers.
    live = curve(db)
    assert [row["epoch"] for row in live] == list(range(1, len(live) + 1))
    assert live[change["data"]["epoch"]]["lr"] == pytest.approx(new)
    assert all(row["val_loss"] is not None for row in live)  # the store keeps non-finite values as NULL
    assert live[-1]["val_acc"] > 0.85

    # The state kept for export is the one of the best live epoch, rollbacks notwithstanding.
    with Store(db) as store:
        best = ranked(store, store.study("s"))[0]
    kept = read_kept(best_path(tmp_path / "research-checkpoints" / "study-1", 0))
    assert kept.epoch == best["best_epoch"] and kept.metrics["val_acc"] == best["best_val_acc"]
    assert checkpoint.unpack_json(kept.state["meta"])["epoch"] == kept.epoch


def scripted_val_loss(monkeypatch: pytest.MonkeyPatch, loss_at_lr: dict[float, float]) -> None:
    """Train for real, but report the validation loss the scenario needs for each rate, so the
    plateau rule sees exactly the situation under test."""
    real = Trainer.train_epoch

    def train_epoch(self: Trainer) -> dict[str, float]:
        metrics = real(self)
        metrics["val_loss"] = loss_at_lr[metrics["lr"]]  # the same dict is in self.history
        return metrics

    monkeypatch.setattr(Trainer, "train_epoch", train_epoch)


@pytest.mark.parametrize("after, kept, segments", [(0.8, True, 3), (1.2, False, 4)])
def test_a_plateau_change_is_kept_only_when_the_next_segment_is_better(tmp_path, monkeypatch, after, kept, segments):
    """Flat validation loss at lr 1e-3: the policy tries 5e-4 at the boundary of epoch 2. The
    segment after it reports ``after``: better keeps the change (and the 20% gain is no
    plateau), worse rolls back to epoch 2, which brings 1e-3 back, and the cooldown then
    leaves the rate alone for the next segment."""
    scripted_val_loss(monkeypatch, {1e-3: 1.0, 5e-4: after})
    result = babysit(tmp_path, *SMALL, "--segment-epochs", "1", "--segments", segments, "--lr", "1e-3")
    assert result.exit_code == 0, result.output
    events = log(tmp_path)

    changes = [e for e in events if e["kind"] == "change"]
    assert changes[0]["data"] | {"before": None} == {
        "name": "lr", "old": 1e-3, "new": 5e-4, "source": "policy", "epoch": 2, "trial": True, "before": None,
        "reason": "policy: plateau (val loss improved 0.00% < 1.00%)"}
    assert changes[0]["data"]["before"]["val_loss"] == 1.0
    outcome = next(e for e in events if e["kind"] == "outcome")
    assert outcome["data"]["change"] == changes[0]["id"]
    assert outcome["data"]["kept"] is kept and outcome["data"]["tried"] is True
    assert outcome["data"]["before"]["val_loss"] == 1.0 and outcome["data"]["after"]["val_loss"] == after
    assert outcome["data"]["segment"] == 3

    db = tmp_path / "research.db"
    live = curve(db)
    assert [row["epoch"] for row in live] == [1, 2, 3]
    if kept:
        assert kinds(events) == ["segment", "segment", "change", "segment", "outcome", "end"]
        assert [row["lr"] for row in live] == [1e-3, 1e-3, 5e-4]
        assert not any(row["rolled_back"] for row in curve(db, rolled_back=True))
    else:
        assert kinds(events) == ["segment", "segment", "change", "segment", "outcome", "rollback", "segment", "end"]
        rollback = next(e for e in events if e["kind"] == "rollback")
        assert rollback["id"] > outcome["id"]
        assert rollback["data"] | {"hyper": None} == {
            "from_epoch": 3, "to_epoch": 2, "epochs_undone": 1, "hyper": None,
            "reason": "policy: the lr change did not help"}
        assert rollback["data"]["hyper"]["lr"] == 1e-3  # the old value is back
        assert [e["data"]["hyper"]["lr"] for e in events if e["kind"] == "segment"] == [1e-3, 1e-3, 5e-4, 1e-3]
        assert [row["lr"] for row in live] == [1e-3, 1e-3, 1e-3]
        assert [(row["epoch"], row["lr"]) for row in curve(db, rolled_back=True) if row["rolled_back"]] == [(3, 5e-4)]
    assert len(changes) == 1


def test_the_policy_never_cuts_the_rate_below_its_floor(tmp_path, monkeypatch):
    """It halved on every plateau without end: a 100000-segment run was at lr 1e-13 by epoch 372.
    Here each halving pays (the loss follows the rate), then the next segment is a plateau."""
    real = Trainer.train_epoch

    def train_epoch(self: Trainer) -> dict[str, float]:
        metrics = real(self)
        metrics["val_loss"] = metrics["lr"] * 1000
        return metrics

    monkeypatch.setattr(Trainer, "train_epoch", train_epoch)
    result = babysit(tmp_path, *SMALL, "--segment-epochs", "1", "--segments", "12", "--lr", "1e-3",
                     "--strategy-opt", "floor=0.25")
    assert result.exit_code == 0, result.output
    changes = [e["data"] for e in log(tmp_path) if e["kind"] == "change"]
    assert [c["new"] for c in changes] == [5e-4, 2.5e-4]  # 1.25e-4 is below 0.25 x 1e-3
    assert curve(tmp_path / "research.db")[-1]["lr"] == 2.5e-4


def test_policy_none_ends_a_diverged_run(tmp_path):
    result = babysit(tmp_path, "--optimizer", "sgd", "--no-batchnorm", "--lr", "40", "--hidden", "32",
                     "--segments", "3", "--policy", "none")
    assert result.exit_code == 1, result.output
    assert "diverged" in result.stderr.splitlines()[-1]
    events = log(tmp_path)
    assert kinds(events) == ["segment", "end"] and events[-1]["data"]["status"] == "diverged"
    assert status(tmp_path / "research.db") == "diverged"


# remote control ---------------------------------------------------------------------------------


def start(args: list[Any], cwd: Path, name: str) -> subprocess.Popen:
    """`research ARGS` in its own process group, on one BLAS thread; its output goes to
    NAME.out and NAME.err in ``cwd`` (files: a pipe nobody reads would block it)."""
    with open(cwd / f"{name}.out", "w") as out, open(cwd / f"{name}.err", "w") as err:
        return subprocess.Popen(research_command() + [str(a) for a in args], cwd=cwd, stdout=out, stderr=err,
                                text=True, start_new_session=True, env={**os.environ, **ONE_THREAD})


def said(cwd: Path, name: str) -> str:
    """What a process started by :func:`start` wrote on stderr so far."""
    return (cwd / f"{name}.err").read_text()


def research(*args: Any, cwd: Path) -> subprocess.CompletedProcess:
    """A second `research` process, as from another terminal."""
    return subprocess.run(research_command() + [str(a) for a in args], cwd=cwd, capture_output=True, text=True,
                          timeout=WAIT, env={**os.environ, **ONE_THREAD})


def stored_events(db: Path, study: str = "s", kind: str | None = None) -> list[dict[str, Any]]:
    with Store(db, create=False) as store:
        return store.events(store.study(study), kind=kind)


def live_epochs(db: Path, study: str = "s") -> int:
    """Live epochs committed so far (0 until the run has created its store and trial)."""
    if not db.exists():
        return 0
    try:
        store = Store(db, create=False)
    except StoreError:  # the run has created the file but not its tables yet
        return 0
    with store:
        found = store.find_study(study)
        trials = store.trials(found) if found else []
        return len(store.curve(trials[0])) if trials else 0




def test_remote_set_rollback_refusals_and_stop(tmp_path, reap):
    db = tmp_path / "research.db"
    process = start(["train", "--strategy", "babysit", "--study", "s", "--store", db, "--plot", tmp_path / "s.png",
                     "--segment-epochs", "1", "--segments", "2000", "--policy", "none", *SLOW], tmp_path, "run")
    reap.append(process)

    def wait(condition: Any, what: str) -> None:
        if not wait_for(condition, WAIT, process=process):
            raise AssertionError(f"timed out waiting for {what}; the run said:\n{said(tmp_path, 'run')[-3000:]}")

    wait(lambda: live_epochs(db) >= 1, "the first epoch")

    # Mistakes the command line can see are refused there, in one line, and queue nothing.
    # (`research` commands run in this process too when what matters is only the store.)
    for assignment, words in [("nonsense=1", "unknown hyperparameter 'nonsense'"), ("lr=fast", "lr must be a number"),
                              ("lr", "cannot read 'lr'"), ("epochs=3", "unknown hyperparameter 'epochs'")]:
        refused = runner.invoke(app, ["set", "s", assignment, "--store", str(db)])
        assert refused.exit_code == 2, refused.output
        assert refused.stderr.startswith("error: ") and words in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1
    assert stored_events(db, kind="command") == []

    # A rollback, applied at the next boundary.
    sent = runner.invoke(app, ["rollback", "s", "--store", str(db)])
    assert sent.exit_code == 0 and "queued rollback" in sent.stderr
    wait(lambda: stored_events(db, kind="rollback"), "the rollback")
    rollback = stored_events(db, kind="rollback")[0]["data"]
    assert rollback["reason"] == "remote" and rollback["to_epoch"] == rollback["from_epoch"] - 1

    # lr=0.003, applied at the next boundary: the epochs after it train at 0.003.
    sent = research("set", "s", "lr=0.003", "--store", db, cwd=tmp_path)
    assert sent.returncode == 0, sent.stderr
    assert "queued set lr=0.003 for 's': applied at its next segment boundary" in sent.stderr
    wait(lambda: stored_events(db, kind="change"), "the change")
    change = stored_events(db, kind="change")[0]
    assert change["data"] | {"before": None} == {"name": "lr", "old": 0.001, "new": 0.003, "source": "remote",
                                                 "reason": "remote", "epoch": change["data"]["epoch"],
                                                 "trial": False, "before": None, "command": change["data"]["command"]}
    wait(lambda: live_epochs(db) > change["data"]["epoch"] + 1, "two epochs at the new rate")

    # A value out of the optimizer's range is refused when it is sent, by the same check the run makes.
    sent = research("set", "s", "beta1=1.5", "--store", db, cwd=tmp_path)
    assert sent.returncode == 2
    assert sent.stderr.strip() == "error: optimizer 'adam': beta1 must be a number in [0, 1), got '1.5'"

    sent = research("stop", "s", "--store", db, cwd=tmp_path)
    assert sent.returncode == 0, sent.stderr
    assert process.wait(timeout=WAIT) == 0, said(tmp_path, "run")
    assert f"babysitting stopped\n  -> `research resume s --store {db}` resumes it from here" in said(tmp_path, "run")
    for line in ("remote command: rollback", "remote command: set lr=0.003", "remote command: stop"):
        assert line in said(tmp_path, "run")  # the training terminal shows each as it applies
    events = stored_events(db)
    commands = [e for e in events if e["kind"] == "command"]
    assert [c["data"] for c in commands] == [
        {"action": "rollback"}, {"action": "set", "name": "lr", "value": "0.003"}, {"action": "stop"}]
    done = [e["data"]["command"] for e in events if "command" in e["data"]]
    assert done == [c["id"] for c in commands]  # each handled once, in order, by the event it caused
    handled = {"rollback": "rollback", "lr": "change", "beta1": "refused", "stop": "stop"}
    for command in commands:
        reply = next(e for e in events if e["id"] > command["id"] and e["kind"] in set(handled.values()))
        assert reply["kind"] == handled[command["data"].get("name", command["data"]["action"])]
    assert kinds(events)[-2:] == ["stop", "end"]
    stop, end = (next(e for e in events if e["kind"] == k)["data"] for k in ("stop", "end"))
    assert stop["source"] == "remote" and end == {"status": "interrupted", "epoch": stop["epoch"], "stopped": True}
    assert status(db) == "interrupted"  # resumable: the dashboard lists the study as stopped, not finished
    # A stopped run resumes from its boundary: a change for it waits (it was refused as "ended").
    late = research("set", "s", "lr=0.01", "--store", db, cwd=tmp_path)
    assert late.returncode == 0 and "queued set lr=0.01 for 's': applied when it resumes" in late.stderr, late.stderr
    # A stop has nothing to stop: kept for the resume, it would end that run after one segment.
    late = research("stop", "s", "--store", db, cwd=tmp_path)
    assert late.returncode == 2
    assert late.stderr.strip() == ("error: study 's' is not running, so there is nothing to stop; a stop ends a "
                                   "running babysit study at its next segment boundary")

    live = curve(db)
    assert [row["epoch"] for row in live] == list(range(1, len(live) + 1))
    at = change["data"]["epoch"]
    assert all(row["lr"] == 0.001 for row in live[:at]) and all(row["lr"] == 0.003 for row in live[at:])
    assert len(live[at:]) >= 2


def test_a_stop_for_a_finished_study_says_there_is_nothing_to_stop(tmp_path):
    """It said to continue the study first, as if one had to train it again to stop it."""
    done = babysit(tmp_path, *SMALL, "--segment-epochs", "1", "--segments", "1", "--policy", "none")
    assert done.exit_code == 0, done.output
    sent = runner.invoke(app, ["stop", "s", "--store", str(tmp_path / "research.db")])
    assert sent.exit_code == 2
    assert sent.stderr.strip() == "error: study 's' has ended (finished), so there is nothing to stop"
    typo = runner.invoke(app, ["set", "s", "lr", "--store", str(tmp_path / "research.db")])  # was "has ended"
    assert typo.exit_code == 2 and typo.stderr.strip() == "error: cannot read 'lr'; write NAME=VALUE, e.g. lr=0.003"
    # continued with --epochs: it said "created with epochs = 15" (a length babysit never used)
    more = runner.invoke(app, ["train", "--study", "s", "--store", str(tmp_path / "research.db"), "--epochs", "3",
                               "--segments", "2"])
    assert more.exit_code == 2 and more.stderr.strip() == (
        "error: strategy 'babysit' trains --segments x --segment-epochs epochs; drop --epochs")


def test_remote_commands_need_a_babysit_study(tmp_path):
    result = runner.invoke(app, ["train", "--strategy", "caviar", "--study", "c", "--store", str(tmp_path / "r.db"),
                                 "--plot", str(tmp_path / "c.png"), "--trials", "1", "--epochs", "1", *SMALL,
                                 "--executor", "serial"])
    assert result.exit_code == 0, result.output
    sent = runner.invoke(app, ["stop", "c", "--store", str(tmp_path / "r.db")])
    assert sent.exit_code == 2
    assert sent.stderr.strip() == ("error: study 'c' is a caviar study; set/rollback/stop steer babysit studies")
    logged = runner.invoke(app, ["log", "c", "--store", str(tmp_path / "r.db")])  # an empty table said nothing
    assert logged.exit_code == 0, logged.output
    assert " ".join(logged.stdout.split()) == (f"study 'c' (caviar) has recorded no events; its trials are in "
                                               f"`research show c --store {tmp_path / 'r.db'}`")


def test_a_command_queued_twice_is_queued_once(tmp_path):
    """Each queued copy was carried out: the log showed the run stopped twice, or the same
    change made again and judged; rollbacks add up (two go back two segments)."""
    db = tmp_path / "r.db"
    with Store(db) as store:
        study = store.create_study("s", "babysit", {})
        trial = store.add_trial(study, 0, {"epochs": 4}, 0)
        store.set_status(trial, "running")
        lease = claim(store, study)  # a live runner: the study is running
    try:
        sent = [runner.invoke(app, [*command, "--store", str(db)])
                for command in (["stop", "s"], ["stop", "s"], ["set", "s", "lr=0.1"], ["set", "s", "lr=0.1"],
                                ["set", "s", "lr=0.2"], ["rollback", "s"], ["rollback", "s"])]
    finally:
        with Store(db) as store:
            lease.release(store)
    assert [r.exit_code for r in sent] == [0] * 7, [r.output for r in sent]
    assert "the same stop for 's' is queued already: applied at its next segment boundary" in sent[1].stderr
    assert "the same set lr=0.1 for 's' is queued already: applied at its next segment boundary" in sent[3].stderr
    assert [e["data"] for e in stored_events(db, kind="command")] == [
        {"action": "stop"}, {"action": "set", "name": "lr", "value": "0.1"},
        {"action": "set", "name": "lr", "value": "0.2"}, {"action": "rollback"}, {"action": "rollback"}]


def test_a_set_to_the_value_it_has_is_refused_at_once(tmp_path):
    """`research set long lr=0.2` where lr was 0.2 was queued, and the boundary spent on a change
    "lr 0.2 -> 0.2" judged like any other. Refused, unless another set of lr is queued (then it
    may take that back)."""
    db = tmp_path / "r.db"
    with Store(db) as store:
        study = store.create_study("s", "babysit", {})
        trial = store.add_trial(study, 0, {"epochs": 4}, 0)
        store.set_status(trial, "running")
        store.add_event(study, "segment", {"segment": 1, "epoch": 1, "metrics": {}, "diverged": False,
                                           "hyper": {"lr": 0.2, "batch_size": 64}}, trial)
        lease = claim(store, study)
    try:
        sent = [runner.invoke(app, [*command, "--store", str(db)])
                for command in (["set", "s", "lr=2e-1"], ["set", "s", "batch_size=64"], ["set", "s", "lr=0.5"],
                                ["set", "s", "lr=0.2"])]
    finally:
        with Store(db) as store:
            lease.release(store)
    assert [r.exit_code for r in sent] == [2, 2, 0, 0], [r.output for r in sent]
    assert sent[0].stderr.strip() == "error: lr is 0.2 already (since the last boundary); nothing would change"
    assert [e["data"].get("value") for e in stored_events(db, kind="command")] == ["0.5", "0.2"]


def test_commands_queued_after_a_stop_wait_for_the_resume(tmp_path):
    """A set queued after a stop was applied after the log said the run had stopped; it now
    waits, and the resumed run applies it at its first boundary."""
    first = babysit(tmp_path, *SMALL, "--segment-epochs", "1", "--segments", "1", "--policy", "none")
    assert first.exit_code == 0, first.output
    with Store(tmp_path / "research.db") as store:  # as the commands queue them, the run being between epochs
        study = store.study("s")
        for data in ({"action": "stop"}, {"action": "set", "name": "lr", "value": "0.01"}):
            store.add_event(study, "command", data)
    stopped = babysit(tmp_path, *SMALL, "--segment-epochs", "1", "--segments", "3", "--policy", "none")
    assert stopped.exit_code == 0, stopped.output
    events = log(tmp_path)
    assert kinds(events)[-3:] == ["segment", "stop", "end"] and "change" not in kinds(events)
    assert events[-1]["data"] == {"status": "interrupted", "epoch": 2, "stopped": True}
    assert status(tmp_path / "research.db") == "interrupted"

    resumed = babysit(tmp_path, *SMALL, "--segment-epochs", "1", "--segments", "4", "--policy", "none")
    assert resumed.exit_code == 0, resumed.output
    events = log(tmp_path)
    change = next(e["data"] for e in events if e["kind"] == "change")
    assert (change["name"], change["new"], change["epoch"], change["source"]) == ("lr", 0.01, 3, "remote")
    assert events[-1]["data"] == {"status": "finished", "epoch": 4, "stopped": False}
    assert status(tmp_path / "research.db") == "finished"


def test_a_stop_at_the_last_boundary_finishes(tmp_path):
    """No segment is left to resume: the trial is finished, not interrupted."""
    result = babysit(tmp_path, *SMALL, "--segment-epochs", "1", "--segments", "2", "--policy", "none",
                     "--interactive", input="continue\nstop\n")
    assert result.exit_code == 0, result.output
    events = log(tmp_path)
    assert kinds(events)[-2:] == ["stop", "end"]
    assert events[-1]["data"] == {"status": "finished", "epoch": 2, "stopped": False}
    assert status(tmp_path / "research.db") == "finished" and "babysitting finished" in result.stderr


def test_fewer_segments_than_trained_are_refused_before_they_are_stored(tmp_path):
    """`--segments 1` on a study that trained 2 said "nothing to do" (exit 0) yet stored
    segments = 1: its settings then said it trained fewer than it had."""
    first = babysit(tmp_path, *SMALL, "--segment-epochs", "1", "--segments", "2", "--policy", "none")
    assert first.exit_code == 0, first.output
    fewer = babysit(tmp_path, *SMALL, "--segment-epochs", "1", "--segments", "1", "--policy", "none")
    assert fewer.exit_code == 2
    assert "study 's' has trained 2 segments, so --segments cannot go below 2, asked for 1" in " ".join(
        fewer.stderr.split())
    with Store(tmp_path / "research.db", create=False) as store:
        assert store.study("s").settings["options"]["segments"] == 2
    same = babysit(tmp_path, *SMALL, "--segment-epochs", "1", "--segments", "2", "--policy", "none")
    assert same.exit_code == 0 and "nothing to do" in same.stderr


@pytest.mark.parametrize("given", [["--segment-epochs", "5"], ["--policy", "auto"], ["--strategy-opt", "spike=3"]])
def test_options_for_a_run_that_has_nothing_to_do_are_refused_not_stored(tmp_path, given):
    """A finished study given other options but no more segments said "nothing to do" (exit 0),
    trained nothing, and stored the options all the same: its settings no longer said how it
    had trained."""
    first = babysit(tmp_path, *SMALL, "--segment-epochs", "1", "--segments", "2", "--policy", "none")
    assert first.exit_code == 0, first.output
    with Store(tmp_path / "research.db", create=False) as store:
        before = store.study("s").settings
    again = babysit(tmp_path, *SMALL, "--segment-epochs", "1", "--segments", "2", "--policy", "none", *given)
    assert again.exit_code == 2 and " ".join(again.stderr.split()) == (
        "error: study 's' has ended (finished) and these options train nothing, so they are not stored; ask for "
        "more --segments than 2 to train on")
    with Store(tmp_path / "research.db", create=False) as store:
        assert store.study("s").settings == before
    more = babysit(tmp_path, *SMALL, "--segment-epochs", "1", "--segments", "3", "--policy", "none", *given)
    assert more.exit_code == 0, more.output  # with a segment to train, they are taken


def test_a_new_study_drops_the_files_a_deleted_store_left(tmp_path):
    """The store deleted by hand, its checkpoints folder left: a new babysit study took the old
    latest.npz for its own and stopped with an error; caviar drops such files, babysit does too."""
    first = babysit(tmp_path, *SMALL, "--segment-epochs", "1", "--segments", "2", "--policy", "none")
    assert first.exit_code == 0, first.output
    (tmp_path / "research.db").unlink()
    again = babysit(tmp_path, *SMALL, "--segment-epochs", "1", "--segments", "2", "--policy", "none")
    assert again.exit_code == 0, again.output
    assert "checkpoint files of no trial of study 's' (its store was replaced?); they are removed" in " ".join(
        again.stderr.split())
    assert [row["epoch"] for row in curve(tmp_path / "research.db")] == [1, 2]


# the interactive prompt ---------------------------------------------------------------------------


def test_a_rollback_where_the_policy_undid_its_own_change_undoes_one_segment_not_two(tmp_path, monkeypatch):
    """The policy undid its tried lr change at a boundary, then the user's rollback there undid the
    segment before as well, with a change the policy had kept: "undo the last segment" twice."""
    from research.study.objective import Objective

    monkeypatch.setattr(Objective, "better", lambda self, new, old: False)  # every tried change fails
    result = babysit(tmp_path, *SMALL, "--segment-epochs", "1", "--segments", "5", "--strategy-opt", "plateau=0.99",
                     "--strategy-opt", "cooldown=0", "--interactive",
                     input="continue\ncontinue\nrollback\ncontinue\ncontinue\ncontinue\n")
    assert result.exit_code == 0, result.output
    events = log(tmp_path)
    rollbacks = [e["data"] for e in events if e["kind"] == "rollback"]
    assert (rollbacks[0]["from_epoch"], rollbacks[0]["to_epoch"]) == (3, 2)
    assert all(r["reason"] == "policy: the lr change did not help" for r in rollbacks)  # the user's undid nothing
    refused = [e["data"] for e in events if e["kind"] == "refused"]
    assert [(r["action"], r["source"]) for r in refused] == [("rollback", "user")]
    assert refused[0]["reason"].startswith("the last segment was undone at this boundary already (policy: the lr ")


def test_queued_changes_apply_one_a_boundary_in_order(tmp_path):
    """Two sets queued for one boundary were both applied there (and judged by one segment):
    the panda way changes one hyperparameter at a time."""
    stopped = babysit(tmp_path, *SMALL, "--segment-epochs", "1", "--segments", "4", "--policy", "none",
                      "--interactive", input="stop\n")
    assert stopped.exit_code == 0, stopped.output
    for assignment in ("lr=0.01", "beta1=0.8"):
        queued = runner.invoke(app, ["set", "s", assignment, "--store", str(tmp_path / "research.db")])
        assert queued.exit_code == 0, queued.output
    resumed = babysit(tmp_path, *SMALL, "--segment-epochs", "1", "--segments", "4", "--policy", "none")
    assert resumed.exit_code == 0, resumed.output
    assert "remote command: set beta1=0.8 waits for the next boundary (one change a boundary)" in resumed.stderr
    changes = [e["data"] for e in log(tmp_path) if e["kind"] == "change"]
    assert [(c["name"], c["new"], c["epoch"]) for c in changes] == [("lr", 0.01, 2), ("beta1", 0.8, 3)]


def test_a_stop_queued_behind_sets_stops_at_the_next_boundary(tmp_path):
    """A stop sent after two sets waited behind the second (one change a boundary), so the run
    trained a segment more and stopped right after applying that set, which never trained."""
    stopped = babysit(tmp_path, *SMALL, "--segment-epochs", "1", "--segments", "6", "--policy", "none",
                      "--interactive", input="stop\n")
    assert stopped.exit_code == 0, stopped.output
    with Store(tmp_path / "research.db") as store:  # as sent while it ran (a stopped study refuses a stop)
        study = store.study("s")
        for command in ({"action": "set", "name": "lr", "value": "0.01"},
                        {"action": "set", "name": "beta1", "value": "0.8"}, {"action": "stop"}):
            store.add_event(study, "command", command)
    resumed = babysit(tmp_path, *SMALL, "--segment-epochs", "1", "--segments", "6", "--policy", "none")
    assert resumed.exit_code == 0, resumed.output
    events = log(tmp_path)
    assert [(e["data"]["name"], e["data"]["epoch"]) for e in events if e["kind"] == "change"] == [("lr", 2)]
    assert [e["data"]["epoch"] for e in events if e["kind"] == "stop"][-1] == 2
    assert [e["data"].get("name") for e in events if e["kind"] == "command"
            and e["id"] not in {x["data"].get("command") for x in events}] == ["beta1"]  # still queued


def test_an_interactive_set_to_the_value_it_has_is_refused(tmp_path):
    """`lr = 0.02` when lr was 0.02 logged "lr 0.02 -> 0.02" as a change and spent a segment."""
    result = babysit(tmp_path, *SMALL, "--segment-epochs", "1", "--segments", "3", "--policy", "none", "--lr", "0.02",
                     "--interactive", input="lr = 0.02\ncontinue\nstop\n")
    assert result.exit_code == 0, result.output
    assert "refused set lr: lr is 0.02 already; give another value" in result.stderr
    assert [e for e in log(tmp_path) if e["kind"] == "change"] == []


def test_a_set_then_a_rollback_queued_for_one_boundary_go_back_then_try_the_value(tmp_path):
    """In the order sent, the rollback undid the set, which trained no epoch, in silence."""
    stopped = babysit(tmp_path, *SMALL, "--segment-epochs", "1", "--segments", "4", "--policy", "none",
                      "--interactive", input="continue\nstop\n")
    assert stopped.exit_code == 0, stopped.output
    for command in (["set", "s", "lr=0.02"], ["rollback", "s"]):
        queued = runner.invoke(app, [*command, "--store", str(tmp_path / "research.db")])
        assert queued.exit_code == 0, queued.output
    resumed = babysit(tmp_path, *SMALL, "--segment-epochs", "1", "--segments", "4", "--policy", "none")
    assert resumed.exit_code == 0, resumed.output
    events = log(tmp_path)
    rollback, change = (next(e for e in events if e["kind"] == kind) for kind in ("rollback", "change"))
    assert rollback["id"] < change["id"] and change["data"]["epoch"] == rollback["data"]["to_epoch"]
    assert [(row["epoch"], row["lr"]) for row in curve(tmp_path / "research.db")][-1][1] == 0.02  # it trained


def test_a_set_queued_after_a_rollback_is_checked_against_what_the_rollback_restores(tmp_path):
    """A set sent after a rollback applies after it, from the boundary it goes back to, as at the
    prompt; it was checked against the last segment's values, not what the rollback brings back
    (lr=0.001 below was queued, then refused at the boundary), and its line did not say so."""
    db = tmp_path / "research.db"
    stopped = babysit(tmp_path, *SMALL, "--segment-epochs", "1", "--segments", "6", "--policy", "none",
                      "--interactive", input="stop\n")
    assert stopped.exit_code == 0, stopped.output
    with Store(db) as store:  # lr 0.001 -> 0.01 at the boundary of epoch 2, where the run stops
        study = store.study("s")
        for command in ({"action": "set", "name": "lr", "value": "0.01"}, {"action": "stop"}):
            store.add_event(study, "command", command)
    resumed = babysit(tmp_path, *SMALL, "--segment-epochs", "1", "--segments", "6", "--policy", "none")
    assert resumed.exit_code == 0, resumed.output

    def send(*command: str) -> Any:
        return runner.invoke(app, [*command, "--store", str(db)])

    assert send("set", "s", "lr=0.01").stderr.strip() == \
        "error: lr is 0.01 already (since the last boundary); nothing would change"
    assert send("rollback", "s").exit_code == 0
    restored = send("set", "s", "lr=0.001")
    assert restored.exit_code == 2 and restored.stderr.strip() == (
        "error: the rollback queued for 's' brings lr back to 0.001 already; nothing would change: send the "
        "rollback alone")
    replay = send("set", "s", "lr=0.01")
    assert replay.exit_code == 2 and " ".join(replay.stderr.split()) == (
        "error: the rollback queued for 's' then lr=0.01 would train the segment it undoes again as it was "
        "(lr was 0.01 there); set another value, or send the rollback alone")
    tried = send("set", "s", "lr=0.05")
    assert tried.exit_code == 0 and " ".join(tried.stderr.split()) == (
        "queued set lr=0.05 for 's': applied when it resumes (it is not running now), after the rollback queued "
        "before it (tried from the boundary it goes back to)")
    assert [e["data"].get("value") for e in stored_events(db, kind="command")][-2:] == [None, "0.05"]
    again = babysit(tmp_path, *SMALL, "--segment-epochs", "1", "--segments", "6", "--policy", "none")
    assert again.exit_code == 0, again.output
    events = log(tmp_path)
    rollback = next(e["data"] for e in events if e["kind"] == "rollback")
    change = [e["data"] for e in events if e["kind"] == "change"][-1]
    assert (rollback["from_epoch"], rollback["to_epoch"], rollback["hyper"]["lr"]) == (3, 2, 0.001)
    assert (change["old"], change["new"], change["epoch"]) == (0.001, 0.05, 2)
    assert "refused" not in kinds(events)


def test_an_interactive_rollback_asks_again_at_the_boundary_it_went_back_to(tmp_path):
    """It trained the undone segment again at once, before any new answer: a rollback then a new
    value (the panda's "go back and try another") could not be asked for."""
    result = babysit(tmp_path, *SMALL, "--segment-epochs", "1", "--segments", "4", "--policy", "none",
                     "--interactive", input="continue\nrollback\nset lr=0.02\ncontinue\ncontinue\n")
    assert result.exit_code == 0, result.output
    events = log(tmp_path)
    assert kinds(events) == ["segment", "segment", "rollback", "change", "segment", "outcome", "segment", "end"]
    rollback, change = (next(e["data"] for e in events if e["kind"] == kind) for kind in ("rollback", "change"))
    assert (rollback["from_epoch"], rollback["to_epoch"], change["epoch"], change["new"]) == (2, 1, 1, 0.02)
    assert [(row["epoch"], row["lr"]) for row in curve(tmp_path / "research.db")] == [
        (1, 0.001), (2, 0.02), (3, 0.02)]


def test_the_prompt_after_a_rollback_to_the_start_says_nothing_is_trained(tmp_path):
    """It showed "epoch 0: val acc nan" and an empty curve."""
    result = babysit(tmp_path, *SMALL, "--segment-epochs", "1", "--segments", "2", "--policy", "none",
                     "--interactive", input="rollback\nstop\n")
    assert result.exit_code == 0, result.output
    assert "\nepoch 0: nothing trained yet; lr=0.001, " in result.stderr and " nan" not in result.stderr


def test_interactive_answers_from_stdin(tmp_path):
    result = babysit(tmp_path, *SMALL, "--segment-epochs", "1", "--segments", "8", "--policy", "none",
                     "--interactive", input="set lr=0.01\nrollback\nnonsense\ncontinue\nstop\n")
    assert result.exit_code == 0, result.output
    # A nonsense answer is explained in one line and asked again; nothing crashes.
    assert "cannot read 'nonsense'; answer one of: continue, set NAME=VALUE, rollback, stop\n" in result.stderr
    assert result.stdout.count("[continue, set NAME=VALUE, rollback, stop]:") == 5

    events = log(tmp_path)  # asked again after the rollback, at the boundary it went back to
    assert kinds(events) == ["segment", "change", "segment", "outcome", "rollback", "outcome", "segment", "stop", "end"]
    outcomes = [e["data"] for e in events if e["kind"] == "outcome"]  # kept, then undone by the rollback
    assert [(o["name"], o["kept"]) for o in outcomes] == [("lr", True), ("lr", False)]
    change, rollback, stop = (next(e for e in events if e["kind"] == k)["data"] for k in ("change", "rollback", "stop"))
    assert (change["name"], change["old"], change["new"], change["source"], change["epoch"]) == (
        "lr", 0.001, 0.01, "user", 1)
    assert (rollback["from_epoch"], rollback["to_epoch"], rollback["reason"]) == (2, 1, "user")
    assert rollback["hyper"]["lr"] == 0.001  # the boundary of epoch 1 was saved before the change
    assert stop == {"source": "user", "epoch": 2}
    assert events[-1]["data"] == {"status": "interrupted", "epoch": 2, "stopped": True}
    live = curve(tmp_path / "research.db")
    assert [(row["epoch"], row["lr"]) for row in live] == [(1, 0.001), (2, 0.001)]
    assert [(row["epoch"], row["lr"]) for row in curve(tmp_path / "research.db", rolled_back=True)
            if row["rolled_back"]] == [(2, 0.01)]

    # A stopped study goes on with the same command, to its 8 segments.
    again = babysit(tmp_path, *SMALL, "--segment-epochs", "1", "--segments", "8", "--policy", "none",
                    "--interactive", input="continue\n" * 5)
    assert again.exit_code == 0, again.output
    events = log(tmp_path)
    assert kinds(events)[9:] == ["resume", "segment", "segment", "segment", "segment", "segment", "end"]
    assert events[-1]["data"] == {"status": "finished", "epoch": 7, "stopped": False}
    assert [row["epoch"] for row in curve(tmp_path / "research.db")] == list(range(1, 8))


def test_interactive_refusals_and_end_of_input(tmp_path):
    """A change the model refuses is recorded with its reason and the question is asked again at
    the same boundary; the end of standard input means stop."""
    result = babysit(tmp_path, *SMALL, "--segment-epochs", "1", "--segments", "8", "--policy", "none",
                     "--interactive", input="set nope=1\nset beta1=1.5\nset lr=0.01\nrollback\n")
    assert result.exit_code == 0, result.output
    events = log(tmp_path)
    assert kinds(events) == ["segment", "refused", "refused", "change", "segment", "outcome", "rollback", "outcome",
                             "stop", "end"]
    first, second = (e["data"] for e in events if e["kind"] == "refused")
    assert first["name"] == "nope" and first["reason"].startswith("unknown hyperparameter 'nope'; changeable: ")
    assert second["name"] == "beta1" and "beta1" in second["reason"] and "1.5" in second["reason"]
    assert "refused set nope: unknown hyperparameter 'nope'" in result.stderr
    assert events[-1]["data"] == {"status": "interrupted", "epoch": 1, "stopped": True}


# rollbacks are exact --------------------------------------------------------------------------------


def test_training_after_a_rollback_equals_training_from_the_boundary(tmp_path):
    """Segments of 2 epochs; lr 0.01 from epoch 2, then rolled back to epoch 2 (which also
    brings lr 1e-3 back), then two more segments. The epochs after the rollback equal a fresh
    trainer restored from the boundary file, value for value; and since the rollback undid the
    change, the whole live curve equals a run that never had it."""
    result = babysit(tmp_path, *SMALL, "--segment-epochs", "2", "--segments", "4", "--policy", "none",
                     "--interactive", input="set lr=0.01\nrollback\ncontinue\ncontinue\n")
    assert result.exit_code == 0, result.output
    db = tmp_path / "research.db"
    live = curve(db)
    assert [row["epoch"] for row in live] == [1, 2, 3, 4, 5, 6]
    undone = [row for row in curve(db, rolled_back=True) if row["rolled_back"]]
    assert [(row["epoch"], row["lr"]) for row in undone] == [(3, 0.01), (4, 0.01)]

    with Store(db, create=False) as store:
        config = store.trials(store.study("s"))[0].config
    plugins = load_plugins()
    boundary = tmp_path / "research-checkpoints" / "study-1" / "boundary-00002.npz"
    restored = Trainer(config, plugins)
    restored.restore(boundary)
    assert restored.epoch == 2 and restored.base_lr == 0.001
    for _ in range(4):
        restored.train_epoch()
    assert values(live[2:]) == as_rows(restored.history[2:], first=3)
    assert values(live[:2]) == as_rows(restored.history[:2], first=1)

    straight = Trainer(config, plugins)
    for _ in range(6):
        straight.train_epoch()
    assert values(live) == as_rows(straight.history, first=1)


# a killed study resumes -------------------------------------------------------------------------------


def test_a_killed_study_resumes_from_its_last_checkpoint(tmp_path, reap):
    """SIGKILL mid-segment, then the same command again: it completes; the events before the
    kill are all kept, a resume event follows them, every epoch is live once, and the curve
    and segment boundaries equal an uninterrupted run's (in another store)."""
    args = ["train", "--strategy", "babysit", "--study", "k", "--segment-epochs", "2", "--segments", "5",
            "--policy", "none", *SLOW]
    db, reference_db = tmp_path / "research.db", tmp_path / "reference.db"
    command = args + ["--store", db, "--plot", tmp_path / "k.png"]
    process = start(command, tmp_path, "killed")
    reference = start(args + ["--store", reference_db, "--plot", tmp_path / "ref.png"], tmp_path, "reference")
    reap.extend([process, reference])

    assert wait_for(lambda: live_epochs(db, "k") >= 3, WAIT, process=process), said(tmp_path, "killed")
    os.killpg(process.pid, signal.SIGKILL)
    assert process.wait(timeout=WAIT) == -signal.SIGKILL
    before = stored_events(db, "k")
    assert 3 <= live_epochs(db, "k") < 10 and status(db, "k") == "interrupted"  # its runner is gone

    again = research(*command, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    after = stored_events(db, "k")
    assert after[:len(before)] == before
    resume = after[len(before)]
    assert resume["kind"] == "resume" and resume["data"]["epoch"] >= 3
    assert [e["kind"] for e in after[len(before) + 1:]].count("resume") == 0
    assert after[-1]["kind"] == "end" and after[-1]["data"]["status"] == "finished"
    assert status(db, "k") == "finished"

    live = curve(db, "k")
    assert [row["epoch"] for row in live] == list(range(1, 11))
    assert not any(row["rolled_back"] for row in curve(db, "k", rolled_back=True))
    assert reference.wait(timeout=WAIT) == 0, said(tmp_path, "reference")
    assert values(live) == values(curve(reference_db, "k"))
    assert [e["data"]["epoch"] for e in after if e["kind"] == "segment"] == [2, 4, 6, 8, 10]


@pytest.mark.parametrize("cut, code, reason", [(KeyboardInterrupt, 130, "interrupted"),
                                                (MemoryError("out of memory"), 1, "error: out of memory")])
def test_a_run_cut_short_mid_segment_ends_in_the_log(tmp_path, monkeypatch, cut, code, reason):
    """Ctrl-C (or an error) in a segment left no end event: the log stopped at the last
    segment as if the run went on. It ends "interrupted", with why, and the resume finishes."""
    real = Trainer.train_epoch

    def cut_at_epoch_3(self):
        if self.epoch == 3:
            raise cut
        return real(self)

    monkeypatch.setattr(Trainer, "train_epoch", cut_at_epoch_3)
    result = babysit(tmp_path, *SMALL, "--segment-epochs", "2", "--segments", "3", "--policy", "none")
    assert result.exit_code == code, result.output
    events = log(tmp_path)
    assert events[-1]["kind"] == "end"
    assert events[-1]["data"] == {"status": "interrupted", "epoch": 3, "stopped": False, "reason": reason}
    shown = runner.invoke(app, ["log", "s", "--store", str(tmp_path / "research.db")])
    assert f"ended interrupted at epoch 3 ({reason})" in shown.stdout
    monkeypatch.undo()
    resumed = runner.invoke(app, ["resume", "s", "--store", str(tmp_path / "research.db"),
                                  "--plot", str(tmp_path / "r.png")])
    assert resumed.exit_code == 0, resumed.output
    assert log(tmp_path)[-1]["data"] == {"status": "finished", "epoch": 6, "stopped": False}


def test_a_run_cut_between_an_epoch_and_its_checkpoint_ends_where_its_resume_goes_on(tmp_path, monkeypatch):
    """SIGTERM after epoch 4 trained, before it was saved: the log said "ended interrupted at
    epoch 4" and the resume went on from epoch 3 (and trained epoch 4 again). The end names the
    epoch the resume goes on from."""
    from research.nn import checkpoint as checkpoints

    real = checkpoints.save

    def cut_saving_epoch_4(path, *args, **kwargs):
        if Path(path).name == "latest.npz" and cut_saving_epoch_4.epochs == 4:
            raise KeyboardInterrupt
        return real(path, *args, **kwargs)

    monkeypatch.setattr(Trainer, "train_epoch", counting(Trainer.train_epoch, cut_saving_epoch_4))
    monkeypatch.setattr(checkpoints, "save", cut_saving_epoch_4)
    result = babysit(tmp_path, *SMALL, "--segment-epochs", "2", "--segments", "3", "--policy", "none")
    assert result.exit_code == 130, result.output
    assert log(tmp_path)[-1]["data"] == {"status": "interrupted", "epoch": 3, "stopped": False,
                                         "reason": "interrupted"}
    monkeypatch.undo()
    resumed = runner.invoke(app, ["resume", "s", "--store", str(tmp_path / "research.db"),
                                  "--plot", str(tmp_path / "r.png")])
    assert resumed.exit_code == 0, resumed.output
    assert next(e for e in log(tmp_path) if e["kind"] == "resume")["data"]["epoch"] == 3


def counting(train_epoch, holder):
    """train_epoch that counts its epochs in ``holder.epochs`` (how far the trainer got)."""
    holder.epochs = 0

    def counted(self):
        metrics = train_epoch(self)
        holder.epochs = self.epoch
        return metrics

    return counted


def test_a_run_cut_between_a_boundarys_segment_and_its_decisions_decides_on_resume(tmp_path, monkeypatch):
    """Killed after segment 2's event was committed, before the policy's halving there: the
    resume trained segment 3 at the old rate (its curve left the uninterrupted run's). The
    boundary's decisions are taken on resume, and the curves are the same."""
    from research_plugins.babysit.session import Session

    args = [*SMALL, "--segment-epochs", "1", "--segments", "4", "--strategy-opt", "plateau=0.99",
            "--strategy-opt", "cooldown=0"]
    reference = babysit(tmp_path, *args, study="r")
    assert reference.exit_code == 0, reference.output
    real, calls = Session.judge_pending, []

    def cut_at_the_second_boundary(self):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # as a SIGKILL there: the segment's event is in, no decision yet
        return real(self)

    monkeypatch.setattr(Session, "judge_pending", cut_at_the_second_boundary)
    cut = babysit(tmp_path, *args)
    assert cut.exit_code == 130, cut.output
    monkeypatch.undo()
    resumed = runner.invoke(app, ["resume", "s", "--store", str(tmp_path / "research.db"),
                                  "--plot", str(tmp_path / "r.png")])
    assert resumed.exit_code == 0, resumed.output
    compared = [(row["epoch"], row["rolled_back"], row["lr"], row["val_loss"]) for row in
                curve(tmp_path / "research.db", "s", rolled_back=True)]
    assert compared == [(row["epoch"], row["rolled_back"], row["lr"], row["val_loss"]) for row in
                        curve(tmp_path / "research.db", "r", rolled_back=True)]
    changes = [e for e in log(tmp_path) if e["kind"] == "change"]
    assert [c["data"]["epoch"] for c in changes] == [
        c["data"]["epoch"] for c in log(tmp_path, "r") if c["kind"] == "change"] and any(
        c["data"]["epoch"] == 2 for c in changes)


def test_the_studies_list_shows_the_epochs_babysit_trains_not_the_default(tmp_path):
    store = tmp_path / "b.db"
    done = runner.invoke(app, ["train", "--strategy", "babysit", "--segment-epochs", "1", "--segments", "3",
                               "--hidden", "8", "--store", str(store), "--plot", str(tmp_path / "b.png")])
    assert done.exit_code == 0, done.output
    listed = runner.invoke(app, ["studies", "--store", str(store), "--json"])
    [study] = json.loads(listed.stdout)["studies"]
    assert study["epochs"] == 3
    # more segments later: the column said 3 still (the trial's first configuration)
    more = runner.invoke(app, ["train", "--strategy", "babysit", "--study", study["name"], "--segment-epochs", "1",
                               "--segments", "5", "--hidden", "8", "--store", str(store), "--plot",
                               str(tmp_path / "b.png")])
    assert more.exit_code == 0, more.output
    listed = runner.invoke(app, ["studies", "--store", str(store), "--json"])
    assert json.loads(listed.stdout)["studies"][0]["epochs"] == 5
    # a babysit study stopped before its trial was stored: "15", caviar's default kept in its base
    with Store(store) as opened:
        opened.create_study("early", "babysit", {"base": {"epochs": 15}, "space": {}})
    listed = runner.invoke(app, ["studies", "--store", str(store), "--json"])
    assert {s["name"]: s["epochs"] for s in json.loads(listed.stdout)["studies"]}["early"] is None


def test_log_lines_show_the_metrics_the_trainer_reports():
    """A trainer that reports no val_acc (a program's val_loss only) showed "val acc nan" at
    every segment, and an outcome without a later segment showed "-> nan"."""
    from research_plugins.babysit.events import describe

    assert describe("segment", {"segment": 2, "epoch": 4, "metrics": {"val_loss": 0.25}}) == \
        "segment 2 ended at epoch 4: val loss 0.2500"
    assert describe("segment", {"segment": 1, "epoch": 2, "metrics": {"mse": 1.5, "r2": 0.5, "x": 1}}) == \
        "segment 1 ended at epoch 2: mse 1.5000, r2 0.5000"
    assert describe("outcome", {"name": "lr", "kept": False, "before": {"val_loss": 0.3}, "after": None}) == \
        "lr change undone"
    assert describe("outcome", {"name": "lr", "kept": True, "before": {"val_loss": 0.3, "val_acc": 0.5},
                                "after": {"val_loss": 0.2, "val_acc": 0.6}}) == "lr change kept: val loss 0.3000 -> 0.2000"
    # a change given (a command), which the policy never judges, was said to be "kept" when it did worse
    assert describe("outcome", {"name": "lr", "kept": True, "tried": False, "before": {"val_loss": 0.3},
                                "after": {"val_loss": 0.4}}) == \
        "lr change stands (not a trial): val loss 0.3000 -> 0.4000"
    assert describe("outcome", {"name": "lr", "kept": False, "tried": False, "before": None, "after": None}) == \
        "lr change undone"
    assert describe("refused", {"action": "rollback", "name": None, "value": None, "source": "remote",
                                "reason": "nothing to roll back: no earlier boundary"}) == \
        "refused rollback: nothing to roll back: no earlier boundary"
    # a rate halved many times printed every digit: "lr 2.842170943040401e-15 -> 1.4210854715202005e-15"
    assert describe("change", {"name": "lr", "old": 2.842170943040401e-15, "new": 1.4210854715202005e-15, "epoch": 9,
                               "reason": "policy: plateau"}) == "lr 2.842e-15 -> 1.421e-15 at epoch 9 (policy: plateau)"
    assert describe("change", {"name": "batch_size", "old": 32, "new": 64, "epoch": 4, "reason": "remote"}) == \
        "batch_size 32 -> 64 at epoch 4 (remote)"


class BrokenSetHyper:
    """An own loop whose set_hyper has a bug: it breaks its own state, then raises KeyError."""

    def __init__(self, config):
        self.x, self.lr = 5.0, float(config.get("lr", 0.1))

    def train_epoch(self):
        self.x -= self.lr * 2 * self.x
        return {"val_loss": self.x * self.x}

    def tunable(self):
        return {"lr": self.lr}

    def set_hyper(self, name, value):
        self.lr = -1.0  # half done
        raise KeyError("set_hyper bug")

    def state(self):
        import numpy as np
        return {"x": np.array(self.x), "lr": np.array(self.lr)}

    def load_state(self, state):
        self.x, self.lr = float(state["x"]), float(state["lr"])


def test_a_trainer_whose_set_hyper_breaks_has_the_change_refused_and_undone(tmp_path):
    """A KeyError in the loop's set_hyper ended the study with "this is a bug ... report it",
    and every resume applied the queued change again."""
    result = babysit(tmp_path, "--trainer", f"{__name__}:BrokenSetHyper", "--lr", "0.1", "--metric", "val_loss",
                     "--segment-epochs", "1", "--segments", "3", "--policy", "none", "--interactive",
                     input="set lr=0.05\ncontinue\ncontinue\ncontinue\n")
    assert result.exit_code == 0, result.output
    refused = [e["data"] for e in log(tmp_path) if e["kind"] == "refused"]
    assert [r["reason"] for r in refused] == [
        f"plugin '{__name__}': trainer '{__name__}:BrokenSetHyper' failed in set_hyper: KeyError: 'set_hyper bug'"]
    with Store(tmp_path / "research.db", create=False) as store:
        losses = [row["val_loss"] for row in store.curve(store.trials(store.study("s"))[0])]
    assert losses == pytest.approx([(5.0 * 0.8 ** k) ** 2 for k in (1, 2, 3)])  # lr 0.1 throughout: undone


def test_only_the_newest_boundaries_stay_on_disk(tmp_path):
    """Every boundary's checkpoint was kept for ever: 2,000 segments of a 512-unit model took 9 GB."""
    result = babysit(tmp_path, *SMALL, "--segment-epochs", "1", "--segments", "6", "--policy", "none",
                     "--strategy-opt", "keep_boundaries=3")
    assert result.exit_code == 0, result.output
    folder = next((tmp_path / "research-checkpoints").glob("study-*"))
    assert sorted(p.name for p in folder.glob("boundary-*")) == [f"boundary-{e:05d}.npz" for e in (4, 5, 6)]
    assert sorted(p.name for p in folder.glob("kept-at-*")) == [f"kept-at-{e:05d}.npz" for e in (4, 5, 6)]
    again = babysit(tmp_path, *SMALL, "--segment-epochs", "1", "--segments", "8", "--policy", "none",
                    "--strategy-opt", "keep_boundaries=3")  # a resume goes on from the newest one
    assert again.exit_code == 0, again.output
    assert sorted(p.name for p in folder.glob("boundary-*")) == [f"boundary-{e:05d}.npz" for e in (6, 7, 8)]


def test_a_change_at_the_last_boundary_says_a_resume_trains_with_it(tmp_path):
    """It read as if it had mattered to this run, which ended right after it; kept in the state, it
    is for a resume with more segments."""
    result = babysit(tmp_path, *SMALL, "--segment-epochs", "1", "--segments", "2", "--policy", "none",
                     "--interactive", input="continue\nset lr=0.05\n")
    assert result.exit_code == 0, result.output
    # it said "a resume with more --segments", which `research resume` does not take
    assert "the last segment has ended: `research train --study" in " ".join(result.stderr.split())
    assert "--segments N` (N more than" in " ".join(result.stderr.split())
    again = babysit(tmp_path, *SMALL, "--segment-epochs", "1", "--segments", "3", "--policy", "none")
    assert again.exit_code == 0, again.output
    assert [e["data"]["new"] for e in log(tmp_path) if e["kind"] == "change"] == [0.05]


def test_a_last_segment_that_diverges_is_rolled_back_so_the_run_can_go_on(tmp_path):
    """`research set` of lr=1e32 at the last boundary ended the run as diverged, for good: the
    policy did nothing after the last segment, and a diverged run cannot be continued."""
    result = babysit(tmp_path, "--optimizer", "momentum", "--lr", "0.05", "--hidden", "32", "--segment-epochs", "1",
                     "--segments", "2", "--interactive", input="set lr=1e32\ncontinue\n")
    assert result.exit_code == 0, result.output
    events = log(tmp_path)
    assert kinds(events)[-4:] == ["rollback", "outcome", "change", "end"]  # the user's change undone, lr cut
    assert events[-4]["data"]["reason"] == "policy: the loss diverged at lr 1e+32"
    assert not events[-3]["data"]["kept"] and events[-2]["data"]["new"] == pytest.approx(0.025)
    assert events[-1]["data"]["status"] == "finished" and events[-1]["data"]["epoch"] == 1
    assert status(tmp_path / "research.db") == "finished"
    assert [row["epoch"] for row in curve(tmp_path / "research.db")] == [1]  # the diverged epoch is undone
    more = babysit(tmp_path, "--segments", "3", "--interactive", input="continue\n")
    assert more.exit_code == 0, more.output
    assert [row["epoch"] for row in curve(tmp_path / "research.db")] == [1, 2]
    assert all(row["val_loss"] is not None for row in curve(tmp_path / "research.db"))


def test_a_set_another_trainer_would_refuse_is_refused_before_its_first_boundary():
    """`research set slowc lr=abc` on a --command study in its first segment was queued (exit 0)
    and refused only at the boundary; so was lr=nan at any time. Before the first boundary the
    trial's configuration gives the value's kind."""
    from research_plugins.babysit.commands import check_value

    plugins = load_plugins()
    config = {"trainer": "command", "lr": 0.1, "epochs": 12}
    for hyper in ({}, {"lr": 0.1}):
        for bad in ("abc", "nan", "inf"):
            with pytest.raises(UsageError, match=f"^lr must be a finite number, like its value 0.1; got '{bad}'$"):
                check_value(plugins, config, hyper, "lr", bad)
        check_value(plugins, config, hyper, "lr", "0.05")
    check_value(plugins, config, {}, "mode", "fast")  # a name it has no number of: the program's to judge


POLICY_UNDOES = [*SMALL, "--segment-epochs", "3", "--segments", "40", "--seed", "4", "--optimizer", "sgd", "--lr",
                 "0.5"]
"""A run whose plateau policy tries changes and undoes some (rollbacks), in about 120 epochs."""


def cut_then_resumed(tmp_path: Path, monkeypatch: Any, owner: Any, name: str, cut: Any,
                     args: list[str] = POLICY_UNDOES) -> tuple[Path, Path]:
    """The store of a run of ``args`` (POLICY_UNDOES) cut where ``cut(self, real, *args)`` raises
    KeyboardInterrupt (as a kill there would cut it: a raise is not a signal, so no deferral
    holds it), ``owner.name`` replaced meanwhile, then resumed to its end; and the store of the
    same run uninterrupted."""
    (tmp_path / "straight").mkdir()
    assert babysit(tmp_path / "straight", *args).exit_code == 0
    real = getattr(owner, name)
    monkeypatch.setattr(owner, name, lambda self, *more: cut(self, real, *more))
    assert babysit(tmp_path, *args).exit_code == 130
    monkeypatch.setattr(owner, name, real)
    assert babysit(tmp_path, *args).exit_code == 0
    return tmp_path / "research.db", tmp_path / "straight" / "research.db"


SPIKES = ["--segment-epochs", "3", "--segments", "6", "--optimizer", "sgd", "--lr", "3", "--no-batchnorm",
          "--hidden", "1024", "--seed", "2"]
"""A run whose policy undoes a diverged first segment and a spiked second one (rollback, then a
rate cut, at epochs 1 and 6), the boundary rate each time the rate that failed."""


@pytest.mark.parametrize("where", ["finish_rollback", "set"])
def test_a_run_cut_inside_a_policy_undo_resumes_to_the_same_curves(tmp_path, monkeypatch, where):
    """Killed after the undo of the spiked segment was recorded but before it was carried out
    (finish_rollback), where the boundary's rate was the one that failed (nothing told the state
    left from the state gone back to), the resumed run went on from the undone epoch 6, its
    epochs 4 to 6 live twice; killed after the undo but before the rate cut (set), it trained the
    undone segment again at the rate that failed, and lost a segment."""
    from research_plugins.babysit.session import Session

    def cut(self, real, arg):
        if arg == 3 if where == "finish_rollback" else arg.reason.startswith("policy: the val loss spiked"):
            raise KeyboardInterrupt
        return real(self, arg)

    resumed, straight = cut_then_resumed(tmp_path, monkeypatch, Session, where, cut, SPIKES)
    assert values(curve(resumed)) == values(curve(straight))
    assert values(curve(resumed, rolled_back=True)) == values(curve(straight, rolled_back=True))


def test_a_ctrl_c_during_a_boundary_stops_once_it_is_decided(tmp_path, monkeypatch):
    """A Ctrl-C that came while the policy undid a segment stopped the run between the rollback
    and the rate cut (a real signal: the boundary defers it until it is decided and saved)."""
    import os
    import signal

    from research_plugins.babysit.session import Session

    real = Session.rollback_to

    def ctrl_c(self, epoch, reason, cut_from=None):
        if reason.startswith("policy: the val loss spiked"):
            os.kill(os.getpid(), signal.SIGINT)
        return real(self, epoch, reason, cut_from)

    (tmp_path / "straight").mkdir()
    assert babysit(tmp_path / "straight", *SPIKES).exit_code == 0
    monkeypatch.setattr(Session, "rollback_to", ctrl_c)
    assert babysit(tmp_path, *SPIKES).exit_code == 130
    recorded = log(tmp_path)
    spiked = next(i for i, e in enumerate(recorded) if e["kind"] == "rollback"
                  and e["data"]["reason"].startswith("policy: the val loss spiked"))
    assert [e["kind"] for e in recorded[spiked:]][:2] == ["rollback", "change"]  # the cut made before it stopped
    monkeypatch.setattr(Session, "rollback_to", real)
    assert babysit(tmp_path, *SPIKES).exit_code == 0
    assert values(curve(tmp_path / "research.db")) == values(curve(tmp_path / "straight" / "research.db"))


def test_a_run_cut_between_undoing_a_change_and_its_rollback_goes_back_on_resume(tmp_path, monkeypatch):
    """Killed after the policy judged a change undone but before it went back, the resumed run
    kept training from the undone segment: the log said "lr change undone" and no rollback came."""
    from research_plugins.babysit.session import Session

    def cut(self, real, epoch, reason):
        if reason.startswith("policy: the"):  # judge_pending's: the outcome is stored, the rollback not yet
            raise KeyboardInterrupt
        return real(self, epoch, reason)

    resumed, straight = cut_then_resumed(tmp_path, monkeypatch, Session, "rollback_to", cut)
    assert values(curve(resumed)) == values(curve(straight))
    assert any(e["kind"] == "outcome" and not e["data"]["kept"] for e in log(tmp_path / "straight")), "none undone"


@pytest.mark.parametrize("removed", ["latest.npz", "*"])
def test_a_run_whose_checkpoints_were_removed_goes_back_or_refuses(tmp_path, removed):
    """Without latest.npz the run took itself for a new one: an IndexError called a bug of the
    plugin's; with the folder emptied it trained from epoch 0 again beside the stored curve."""
    args = [*SMALL, "--segment-epochs", "2", "--segments", "3"]
    assert babysit(tmp_path, *args).exit_code == 0
    folder = next((tmp_path / "research-checkpoints").glob("study-*"))
    for path in folder.glob(removed):
        path.unlink()
    before = values(curve(tmp_path / "research.db"))
    result = babysit(tmp_path, *SMALL, "--segment-epochs", "2", "--segments", "4")
    if removed == "latest.npz":  # back to the last boundary (epoch 6), one more segment
        assert result.exit_code == 0, result.output
        assert "the run goes back to its last boundary checkpoint (epoch 6)" in result.stderr
        assert [row[0] for row in values(curve(tmp_path / "research.db"))] == list(range(1, 9))
    else:
        assert result.exit_code == 2, result.output
        assert "latest.npz does not exist, and no boundary checkpoint is left to go back to" in result.stderr
        assert values(curve(tmp_path / "research.db")) == before


def test_a_run_cut_inside_a_rollback_finishes_it_on_resume(tmp_path, monkeypatch):
    """Killed after a rollback wrote the boundary's state as latest.npz but before the store
    marked the later epochs rolled back, the resumed run trained from the boundary beside them."""
    from research.study.store import Store as StoreClass

    def cut(self, real, trial, epoch):
        raise KeyboardInterrupt

    resumed, straight = cut_then_resumed(tmp_path, monkeypatch, StoreClass, "roll_back", cut)
    assert values(curve(resumed)) == values(curve(straight))


def test_a_run_cut_in_the_segment_after_a_rollback_is_not_rolled_back_again(tmp_path, monkeypatch):
    """The rollback a run recorded last is carried out again on resume only while latest.npz
    still holds the state it went back from, not once the next segment has trained."""
    from research_plugins.babysit.session import Session

    seen: list[int] = []

    def cut(self, real):
        if self.undone_here:  # the segment after the policy's undo: cut at its second epoch
            seen.append(self.trainer.epoch)
            if len(seen) == 2:
                raise KeyboardInterrupt
        return real(self)

    resumed, straight = cut_then_resumed(tmp_path, monkeypatch, Session, "train_epoch", cut)
    assert values(curve(resumed, rolled_back=True)) == values(curve(straight, rolled_back=True))  # none undone twice


def test_a_run_cut_between_a_change_s_checkpoint_and_its_event_changes_once(tmp_path, monkeypatch):
    """A change's checkpoint is written before its event: cut between the two, the resumed run
    took the boundary's decisions again from the changed state, and halved the rate twice."""
    from research_plugins.babysit import events as babysit_events
    from research_plugins.babysit.session import Session

    cuts: list[str] = []

    def cut(self, real, kind, data):
        if kind == babysit_events.CHANGE and len(self.events(babysit_events.SEGMENT)) >= 5 and not cuts:
            cuts.append(kind)
            raise KeyboardInterrupt
        return real(self, kind, data)

    resumed, straight = cut_then_resumed(tmp_path, monkeypatch, Session, "event", cut)
    assert cuts and values(curve(resumed)) == values(curve(straight))


def test_a_run_cut_at_the_end_of_the_segment_after_a_rollback_is_not_rolled_back_again(tmp_path, monkeypatch):
    """The segment trained again after a rollback ends at the epoch the rollback went back from:
    cut there, before its boundary, the resume took it for the rollback's own cut state and
    rolled it back once more (two more rolled-back rows)."""
    from research_plugins.babysit.session import Session

    def cut(self, real):
        if self.undone_here:  # the end of the segment after the policy's undo, before its boundary
            raise KeyboardInterrupt
        return real(self)

    resumed, straight = cut_then_resumed(tmp_path, monkeypatch, Session, "save_boundary", cut)
    assert values(curve(resumed, rolled_back=True)) == values(curve(straight, rolled_back=True))


def story(events: list[dict[str, Any]]) -> list[tuple]:
    """What a run did, as (kind, data) without what a cut adds (its resume, its interrupted end),
    what differs for that reason only (event ids, command ids) and the seconds epochs took."""

    def kept(data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        return {k: kept(v) for k, v in data.items() if k not in ("command", "change", "seconds")}

    return [(e["kind"], kept(e["data"])) for e in events
            if e["kind"] not in ("resume", "command") and e["data"].get("status") != "interrupted"]


@pytest.mark.parametrize("where", ["roll_back", "set", "event"])
def test_a_run_killed_between_a_remote_rollback_and_the_set_sent_with_it_applies_the_set_there(
        tmp_path, monkeypatch, where):
    """A remote rollback and set for one boundary, the run killed inside the rollback (roll_back),
    after it (set), or between the set's checkpoint and its event (event): the resumed run trained
    the undone segment again with the old rate and applied the set one boundary later (or, cut
    after its checkpoint, refused it as the value the run had)."""
    from research_plugins.babysit import events as babysit_events
    from research_plugins.babysit.session import Session

    from research.study.store import Store as StoreClass

    args = [*SMALL, "--segment-epochs", "1", "--segments", "4", "--policy", "none"]
    for run in ("straight", "cut"):  # stopped at epoch 1, the commands queued for the resume's boundary at 2
        (tmp_path / run).mkdir()
        assert babysit(tmp_path / run, *args, "--interactive", input="stop\n").exit_code == 0
        for command in (["rollback", "s"], ["set", "s", "lr=0.02"]):
            queued = runner.invoke(app, [*command, "--store", str(tmp_path / run / "research.db")])
            assert queued.exit_code == 0, queued.output
    args += ["--strategy-opt", "interactive=false"]
    assert babysit(tmp_path / "straight", *args).exit_code == 0
    owner = StoreClass if where == "roll_back" else Session
    real = getattr(owner, where)

    def kill(self, *more: Any, **named: Any) -> Any:  # as a kill -9 there (a raise: no deferral holds it)
        if where != "event" or more[0] == babysit_events.CHANGE:
            raise KeyboardInterrupt
        return real(self, *more, **named)

    monkeypatch.setattr(owner, where, kill)
    cut = babysit(tmp_path / "cut", *args)
    assert cut.exit_code == 130, cut.output
    monkeypatch.setattr(owner, where, real)
    resumed = babysit(tmp_path / "cut", *args)
    assert resumed.exit_code == 0, resumed.output
    assert story(log(tmp_path / "cut")) == story(log(tmp_path / "straight"))
    assert values(curve(tmp_path / "cut" / "research.db", rolled_back=True)) == \
        values(curve(tmp_path / "straight" / "research.db", rolled_back=True))


def test_a_run_killed_among_remote_commands_after_the_policy_s_undo_refuses_as_it_did(tmp_path, monkeypatch):
    """Two rollbacks and a set sent for the boundary where the policy undid its tried change: both
    rollbacks are refused there (the last segment is undone already), then the set applies. Killed
    after the first refusal, the resumed run applied the rest a boundary late; it now goes on with
    them there, the second rollback refused as before, not undoing the segment before."""
    from research_plugins.babysit import events as babysit_events
    from research_plugins.babysit.session import Session

    from research.study.objective import Objective

    monkeypatch.setattr(Objective, "better", lambda self, new, old: False)  # every tried change fails
    args = [*SMALL, "--segment-epochs", "1", "--segments", "5", "--strategy-opt", "plateau=0.99",
            "--strategy-opt", "cooldown=0"]
    train_epoch, event = Session.train_epoch, Session.event

    def sent_during_segment_3(self):  # as from another terminal while segment 3 trains
        if len(self.events(babysit_events.SEGMENT)) == 2 and not self.events(babysit_events.COMMAND):
            for command in ({"action": "rollback"}, {"action": "rollback"},
                            {"action": "set", "name": "lr", "value": "0.02"}):
                self.store.add_event(self.record, babysit_events.COMMAND, command)
        return train_epoch(self)

    def kill_after_a_refusal(self, kind, data, **named):
        recorded = event(self, kind, data, **named)
        if kind == babysit_events.REFUSED:
            raise KeyboardInterrupt  # as a kill -9 right after it
        return recorded

    monkeypatch.setattr(Session, "train_epoch", sent_during_segment_3)
    (tmp_path / "straight").mkdir()
    assert babysit(tmp_path / "straight", *args).exit_code == 0
    monkeypatch.setattr(Session, "event", kill_after_a_refusal)
    assert babysit(tmp_path, *args).exit_code == 130
    monkeypatch.setattr(Session, "train_epoch", train_epoch)
    monkeypatch.setattr(Session, "event", event)
    resumed = babysit(tmp_path, *args)
    assert resumed.exit_code == 0, resumed.output
    straight = log(tmp_path / "straight")
    assert [(e["data"]["action"], e["data"]["reason"][:40]) for e in straight if e["kind"] == "refused"] == [
        ("rollback", "the last segment was undone at this boun")] * 2
    assert story(log(tmp_path)) == story(straight)
    assert values(curve(tmp_path / "research.db", rolled_back=True)) == \
        values(curve(tmp_path / "straight" / "research.db", rolled_back=True))


def test_a_command_sent_after_a_boundary_s_remote_commands_waits_for_the_next_across_a_kill(tmp_path, monkeypatch):
    """A rollback sent while the segment after a boundary's remote rollback and set trains, the run
    killed before that segment's first epoch was committed: the resume takes up that boundary's
    commands (all carried out), not the later rollback, which waits for the next boundary as it did."""
    from research_plugins.babysit import events as babysit_events
    from research_plugins.babysit.session import Session

    args = [*SMALL, "--segment-epochs", "1", "--segments", "4", "--policy", "none"]
    for run in ("straight", "cut"):
        (tmp_path / run).mkdir()
        assert babysit(tmp_path / run, *args, "--interactive", input="stop\n").exit_code == 0
        for command in (["rollback", "s"], ["set", "s", "lr=0.02"]):
            assert runner.invoke(app, [*command, "--store", str(tmp_path / run / "research.db")]).exit_code == 0
    args += ["--strategy-opt", "interactive=false"]
    real = Session.train_epoch

    def send_a_rollback(self, kill: bool = False) -> Any:
        if self.events(babysit_events.CHANGE) and self.trainer.epoch == 1:  # the segment after the set
            if not self.events(babysit_events.COMMAND)[2:]:
                self.store.add_event(self.record, babysit_events.COMMAND, {"action": "rollback"})
            if kill:
                raise KeyboardInterrupt
        return real(self)

    monkeypatch.setattr(Session, "train_epoch", send_a_rollback)
    assert babysit(tmp_path / "straight", *args).exit_code == 0
    monkeypatch.setattr(Session, "train_epoch", lambda self: send_a_rollback(self, kill=True))
    assert babysit(tmp_path / "cut", *args).exit_code == 130
    monkeypatch.setattr(Session, "train_epoch", real)
    assert babysit(tmp_path / "cut", *args).exit_code == 0
    straight = log(tmp_path / "straight")
    assert [(e["data"]["from_epoch"], e["data"]["to_epoch"]) for e in straight if e["kind"] == "rollback"] == [
        (2, 1), (2, 1)]  # the second at the next boundary
    assert story(log(tmp_path / "cut")) == story(straight)


def test_a_command_sent_while_a_boundary_carries_out_its_own_waits_for_the_next_across_a_kill(tmp_path, monkeypatch):
    """A set sent after a boundary read its commands (a rollback) but before it recorded the first
    result waits for the next boundary; the run killed before the next epoch was committed, the
    resume took it for one of that boundary's and applied it there, a segment early."""
    from research_plugins.babysit import events as babysit_events
    from research_plugins.babysit.session import Session

    args = [*SMALL, "--segment-epochs", "1", "--segments", "4", "--policy", "none"]
    for run in ("straight", "cut"):
        (tmp_path / run).mkdir()
        assert babysit(tmp_path / run, *args, "--interactive", input="stop\n").exit_code == 0
        assert runner.invoke(app, ["rollback", "s", "--store", str(tmp_path / run / "research.db")]).exit_code == 0
    args += ["--strategy-opt", "interactive=false"]
    apply, train_epoch = Session.apply, Session.train_epoch

    def sent_meanwhile(self, action):  # as from another terminal, just after the boundary read its commands
        if action.command is not None and len(self.events(babysit_events.COMMAND)) == 1:
            self.store.add_event(self.record, babysit_events.COMMAND, {"action": "set", "name": "lr", "value": "0.02"})
        return apply(self, action)

    def kill_after_the_boundary(self):
        if self.events(babysit_events.ROLLBACK):
            raise KeyboardInterrupt  # as a kill -9 before the next epoch is committed
        return train_epoch(self)

    monkeypatch.setattr(Session, "apply", sent_meanwhile)
    assert babysit(tmp_path / "straight", *args).exit_code == 0
    monkeypatch.setattr(Session, "train_epoch", kill_after_the_boundary)
    assert babysit(tmp_path / "cut", *args).exit_code == 130
    monkeypatch.setattr(Session, "train_epoch", train_epoch)
    assert babysit(tmp_path / "cut", *args).exit_code == 0
    straight = log(tmp_path / "straight")
    assert [(e["data"]["from_epoch"], e["data"]["to_epoch"]) for e in straight if e["kind"] == "rollback"] == [(2, 1)]
    assert [e["data"]["epoch"] for e in straight if e["kind"] == "change"] == [2]  # the next boundary's
    assert story(log(tmp_path / "cut")) == story(straight)


@pytest.mark.parametrize("where", ["finish_rollback", "decide"])
def test_a_run_killed_after_the_policy_s_undo_takes_that_boundary_s_commands_there(tmp_path, monkeypatch, where):
    """A rollback and a set sent while segment 3 trains, whose boundary undoes the policy's tried
    change: the rollback is refused there (undone already) and the set applies. Killed inside the
    policy's undo (finish_rollback) or after it (decide), the resumed run trained the undone
    segment again and carried the commands out a boundary late."""
    from research_plugins.babysit import events as babysit_events
    from research_plugins.babysit.session import Session

    from research.study.objective import Objective

    monkeypatch.setattr(Objective, "better", lambda self, new, old: False)  # every tried change fails
    args = [*SMALL, "--segment-epochs", "1", "--segments", "5", "--strategy-opt", "plateau=0.99",
            "--strategy-opt", "cooldown=0"]
    train_epoch, real = Session.train_epoch, getattr(Session, where)

    def sent_during_segment_3(self):  # as from another terminal
        if len(self.events(babysit_events.SEGMENT)) == 2 and not self.events(babysit_events.COMMAND):
            for command in ({"action": "rollback"}, {"action": "set", "name": "lr", "value": "0.02"}):
                self.store.add_event(self.record, babysit_events.COMMAND, command)
        return train_epoch(self)

    def kill_at_the_undo(self, *more: Any) -> Any:  # as a kill -9 there (a raise: no deferral holds it)
        if self.undone_here and not self.events(babysit_events.REFUSED):
            raise KeyboardInterrupt
        return real(self, *more)

    monkeypatch.setattr(Session, "train_epoch", sent_during_segment_3)
    (tmp_path / "straight").mkdir()
    assert babysit(tmp_path / "straight", *args).exit_code == 0
    monkeypatch.setattr(Session, where, kill_at_the_undo)
    assert babysit(tmp_path, *args).exit_code == 130
    monkeypatch.setattr(Session, where, real)
    resumed = babysit(tmp_path, *args)
    assert resumed.exit_code == 0, resumed.output
    straight = log(tmp_path / "straight")
    undo = next(i for i, e in enumerate(straight) if e["kind"] == "rollback")
    assert [(e["kind"], e["data"].get("source")) for e in straight[undo:undo + 4]] == [
        ("rollback", None), ("refused", "remote"), ("change", "remote"), ("segment", None)]
    assert story(log(tmp_path)) == story(straight)
    assert values(curve(tmp_path / "research.db", rolled_back=True)) == \
        values(curve(tmp_path / "straight" / "research.db", rolled_back=True))


ANSWERS = ["continue", "set nope=1", "rollback", "set lr=0.02", "continue", "continue"]
"""Answers for 4 one-epoch segments: at the second boundary a refusal, a rollback, then a set."""


@pytest.mark.parametrize("where, asked", [("refused", 2), ("rolled back", 3), ("set", 3)])
def test_a_run_killed_while_the_user_decides_a_boundary_asks_there_again(tmp_path, monkeypatch, where, asked):
    """Killed at the prompt after a refused answer, at the prompt after a rollback, or between the
    set answered next and its event (its checkpoint written): the resumed run asked nothing more
    at that boundary (a refusal or a rollback counted as its decision), trained on, and asked for
    the answer a boundary late (after the set, with the rate set and not recorded). It asks there
    again: the answers from the one the kill cut (``asked``: the prompts answered before it)."""
    from research_plugins.babysit import events as babysit_events
    from research_plugins.babysit.session import Session

    args = [*SMALL, "--segment-epochs", "1", "--segments", "4", "--policy", "none", "--interactive"]
    (tmp_path / "straight").mkdir()
    assert babysit(tmp_path / "straight", *args, input="\n".join(ANSWERS) + "\n").exit_code == 0
    ask_user, event, prompts = Session.ask_user, Session.event, []

    def kill_at_the_prompt(self):
        prompts.append(1)
        if where != "set" and len(prompts) > asked:
            raise KeyboardInterrupt  # as Ctrl-C while it waits on the user
        return ask_user(self)

    def kill_before_the_event(self, kind, data, **named):
        if kind == babysit_events.CHANGE:
            raise KeyboardInterrupt  # as a kill -9 there (a raise: no deferral holds it)
        return event(self, kind, data, **named)

    monkeypatch.setattr(Session, "ask_user", kill_at_the_prompt)
    monkeypatch.setattr(Session, "event", kill_before_the_event if where == "set" else event)
    assert babysit(tmp_path, *args, input="\n".join(ANSWERS) + "\n").exit_code == 130
    monkeypatch.setattr(Session, "ask_user", ask_user)
    monkeypatch.setattr(Session, "event", event)
    resumed = babysit(tmp_path, *args, input="\n".join(ANSWERS[asked:]) + "\n")
    assert resumed.exit_code == 0, resumed.output
    straight = log(tmp_path / "straight")
    assert [(e["kind"], e["data"].get("epoch")) for e in straight if e["kind"] in ("refused", "rollback", "change")] \
        == [("refused", None), ("rollback", None), ("change", 1)]
    assert story(log(tmp_path)) == story(straight)
    assert values(curve(tmp_path / "research.db", rolled_back=True)) == \
        values(curve(tmp_path / "straight" / "research.db", rolled_back=True))

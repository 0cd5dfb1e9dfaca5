"""The ``command`` trainer: any program that prints one JSON line of metrics per epoch.

Studies run the installed `research` command as a user does, on docs/examples/digits_script.py
(the documented script) and on small programs written here that misbehave on purpose: a
crash, garbage on stdout, silence, a program that ignores SIGTERM. Each must end its own
trial with one line while the study goes on. A study killed with SIGKILL resumes without
losing a committed epoch; pruned trials' programs are ended; babysit changes and rollbacks
restart the program from the exact checkpoint; the process, serial and Dask executors all
stream epochs back as they come.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from research import script
from research.errors import UsageError
from research.plugins import load_plugins
from research.study.store import Store
from research.study.trainer import make_trainer
from tests.studyutil import WAIT, Folder, kill_then_resume, research_command, stored

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "docs" / "examples" / "digits_script.py"

# A quadratic bowl minimized by gradient descent: val_loss falls fast for a large lr. It
# misbehaves (as $BEHAVIOR says) in trials whose lr is below 0.01, after one good epoch.
TOY = '''
import json, os, signal, sys, time
from research import script

trial = script.trial(defaults={"lr": 0.1, "epochs": 4})
lr = float(trial.config["lr"])
behavior = trial.config.get("behavior", "good") if lr < 0.01 else "good"
if lr >= 1:
    sys.exit(f"lr {lr} is too large for this loop")
saved = trial.checkpoint_dir / "x.json"
x = json.loads(saved.read_text()) if trial.start_epoch else 5.0
if behavior == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
for epoch in trial.remaining:
    if epoch == 2 and behavior == "crash":
        print("about to fail", file=sys.stderr)
        raise ValueError(f"boom at lr {lr:.3g}")
    if epoch == 2 and behavior == "garbage":
        print("hello from the training loop")
    if epoch == 2 and behavior in ("silent", "stubborn"):
        time.sleep(600)
    x = x - lr * 2 * x
    saved.write_text(json.dumps(x))
    if not trial.report(val_loss=x * x, val_acc=1 / (1 + x * x)) and behavior != "deaf":
        break
'''


def python(path: Path | str) -> str:
    """The command that runs ``path`` with this interpreter (which has research installed)."""
    return f"{shlex.quote(sys.executable)} {shlex.quote(str(path))}"


@pytest.fixture
def folder(tmp_path, reap) -> Folder:
    """A working folder with the toy and the documented script; the programs' working
    folders (research-command-*) go to ``tmp`` inside it, to be checked for leftovers."""
    here = Folder(tmp_path / "work", tmp_path / "site")
    (here.path / "toy.py").write_text(TOY)
    shutil.copy(EXAMPLE, here.path / "digits_script.py")
    (here.path / "tmp").mkdir()
    here.env["TMPDIR"] = str(here.path / "tmp")
    return here


def leftovers(folder: Folder) -> list[str]:
    return sorted(p.name for p in (folder.path / "tmp").iterdir())


# -- the helper ---------------------------------------------------------------------------------


def test_the_helper_run_by_hand_trains_the_defaults_and_prints_the_lines(tmp_path):
    done = subprocess.run([sys.executable, str(EXAMPLE)], capture_output=True, text=True,
                                        timeout=WAIT, cwd=tmp_path, env={**os.environ, "TMPDIR": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [line["epoch"] for line in lines] == list(range(1, 11))
    assert lines[-1]["val_acc"] > 0.9 and set(lines[0]) == {"epoch", "val_acc", "val_loss", "train_loss"}
    page = (ROOT / "docs" / "own-model.md").read_text().split("$ python digits_script.py\n")[1].split("```")[0]
    shown = [json.loads(line) for line in page.splitlines() if line.startswith("{")]
    assert len(shown) == 3  # the lines the page prints: to the last digits BLAS gives alike on every CPU
    for printed, run in zip(shown, [lines[0], lines[1], lines[9]]):
        assert printed == pytest.approx(run, rel=1e-9, abs=0)


def test_the_helper_under_research_reads_the_protocol_and_waits_for_each_answer(tmp_path, monkeypatch):
    (tmp_path / "config.json").write_text(json.dumps({"lr": 0.5, "epochs": 4}))
    monkeypatch.setenv(script.CONFIG, str(tmp_path / "config.json"))
    monkeypatch.setenv(script.CHECKPOINT_DIR, str(tmp_path))
    monkeypatch.setenv(script.START_EPOCH, "2")
    monkeypatch.setenv(script.EPOCHS, "4")
    trial = script.trial(defaults={"lr": 0.1, "momentum": 0.9})
    assert trial.config == {"lr": 0.5, "epochs": 4, "momentum": 0.9} and trial.driven
    assert list(trial.remaining) == [3, 4]
    trial.output, trial.answers = io.StringIO(), io.StringIO("continue\nstop\n")
    assert trial.report(val_loss=1.5) is True
    assert trial.report(val_loss=1.0) is False
    assert [json.loads(line) for line in trial.output.getvalue().splitlines()] == \
        [{"epoch": 3, "val_loss": 1.5}, {"epoch": 4, "val_loss": 1.0}]
    with pytest.raises(TypeError, match="metric 'val_loss' must be a number"):
        trial.report(val_loss="low")
    trial.answers = io.StringIO("continue\n")
    trial.report(val_loss=np.float32(0.5))  # numpy's scalars are numbers
    assert script.param_variable("optimizer.eps") == "RESEARCH_PARAM_OPTIMIZER_EPS"


# -- the trainer, driven directly -------------------------------------------------------------


def driven(tmp_path: Path, program: str, **config) -> object:
    path = tmp_path / "program.py"
    path.write_text(textwrap.dedent(program))
    options = {"command": python(path), "idle_timeout": 5.0, "grace": 1.0}
    return make_trainer({"trainer": "command", "trainer_options": options, "epochs": 3, **config}, load_plugins())


def test_the_program_gets_its_configuration_as_a_file_and_as_variables(tmp_path):
    trainer = driven(tmp_path, """
        import json, os
        config = json.load(open(os.environ["RESEARCH_CONFIG"]))
        for epoch in range(int(os.environ["RESEARCH_START_EPOCH"]) + 1, int(os.environ["RESEARCH_EPOCHS"]) + 1):
            ok = config["optimizer.eps"] == 1e-8 and os.environ["RESEARCH_PARAM_OPTIMIZER_EPS"] == "1e-08"
            ok = ok and os.environ["RESEARCH_PARAM_ACTIVATION"] == "tanh" and "trainer" not in config
            print(json.dumps({"epoch": epoch, "val_acc": float(ok), "files": len(os.listdir(
                os.environ["RESEARCH_CHECKPOINT_DIR"]))}), flush=True)
            open(os.path.join(os.environ["RESEARCH_CHECKPOINT_DIR"], f"e{epoch}"), "w").close()
            if input() != "continue":
                break
        """, **{"optimizer.eps": 1e-8, "activation": "tanh"})
    try:
        assert [trainer.train_epoch() for _ in range(3)] == [{"val_acc": 1.0, "files": n} for n in range(3)]
    finally:
        trainer.close()


@pytest.mark.parametrize("line, message", [
    ('{"epoch": 3, "val_acc": 1}', "the command reported epoch 3 (line 1 of its output) where epoch 1 was due"),
    ('{"epoch": "1", "val_acc": 1}', 'the command reported epoch "1" (line 1 of its output); an epoch is a whole '
                                     'number without quotes, as {"epoch": 1}'),
    ('{"val_acc": "high"}', 'the command reported val_acc = "high" (line 1 of its output); metrics must be numbers'),
    # the program's JSON as it wrote it, not Python's True, None and {'a': 1}
    ('{"val_acc": true}', "the command reported val_acc = true (line 1 of its output)"),
    ('{"val_acc": null}', "the command reported val_acc = null (line 1 of its output)"),
    ('{"val_acc": {"a": 1}}', 'the command reported val_acc = {"a": 1} (line 1 of its output)'),
    ('{"val_acc": 1, "x": "' + 'y' * 70000 + '"}',
     "the command printed a line of over 64 KiB (line 1 of its output), longer than a line of metrics may be"),
    ('[1, 2]', "the command printed '[1, 2]' (line 1 of its output), not a JSON object of metrics"),
    ('{"val_acc": 1' + '0' * 400 + '}', "the command reported val_acc = 1000000000000000000000000000000000000... (line 1"),
])
def test_a_line_that_breaks_the_protocol_is_one_error_naming_it(tmp_path, line, message):
    trainer = driven(tmp_path, f"print({line!r}, flush=True); input()")
    with pytest.raises(UsageError) as caught:
        trainer.train_epoch()
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)
    trainer.close()


def test_a_program_that_stops_early_or_cannot_start_is_one_error(tmp_path):
    trainer = driven(tmp_path, "")
    with pytest.raises(UsageError, match=r"exited after epoch 0 of 3 without reporting the rest; it must train until"):
        trainer.train_epoch()
    trainer.close()
    missing = make_trainer({"trainer": "command", "trainer_options": {"command": "no-such-program --x"}},
                           load_plugins())
    with pytest.raises(UsageError, match=r"cannot start 'no-such-program' \(No such file or directory\); check "):
        missing.train_epoch()


def test_an_idle_timeout_beyond_any_clock_is_refused_before_anything_runs(folder):
    """--idle-timeout 1e11 passed the check, then "OverflowError: timestamp out of range" called a
    bug of the plugin's, in every trial of a study that could then not be continued."""
    done = folder.run(*study("--command", python("toy.py"), "--trials", "1", "--epochs", "1", "--idle-timeout",
                             "1e11", "--study", "t"))
    assert done.returncode == 2
    assert "error: trainer 'command': idle_timeout must be a number in (0, 1e+09], got " in done.stderr
    assert not (folder.path / "research.db").exists()


def test_state_and_load_state_restart_the_program_from_the_copied_folder(tmp_path):
    program = TOY.replace("trial.config.get(\"behavior\", \"good\")", "\"good\"")
    trainer = driven(tmp_path, program, lr=0.2, epochs=6, momentum="0.9")  # --opt momentum=0.9 arrives as text
    try:
        first = [trainer.train_epoch() for _ in range(2)]
        state = trainer.state()
        later = [trainer.train_epoch() for _ in range(3)]
        trainer.load_state(state)  # back to epoch 2: the program starts again from the copy
        again = [trainer.train_epoch() for _ in range(3)]
        assert again == later and first[1]["val_loss"] == pytest.approx((5.0 * 0.6 ** 2) ** 2)
        trainer.set_hyper("lr", "0.05")  # a babysit change: the program restarts with it
        assert trainer.tunable() == {"lr": 0.05, "momentum": "0.9"}
        x = (5.0 * 0.6 ** 5) * 0.9
        assert trainer.train_epoch()["val_loss"] == pytest.approx(x * x)
        with pytest.raises(ValueError, match="unknown hyperparameter 'seed'; changeable: lr, momentum"):
            trainer.set_hyper("seed", 3)
        with pytest.raises(ValueError, match="'momentum' must be a finite number, like its value '0.9'; got 'abc'"):
            trainer.set_hyper("momentum", "abc")  # the program got 'abc' for a number
        with pytest.raises(ValueError, match="'lr' must be a finite float, like its value 0.05; got 'fast'"):
            trainer.set_hyper("lr", "fast")
        for value in ("nan", "inf", "-1e999"):  # the program trained on with them, and the policy halved nan
            with pytest.raises(ValueError, match=f"'lr' must be a finite float, like its value 0.05; got '{value}'"):
                trainer.set_hyper("lr", value)
        assert trainer.tunable() == {"lr": 0.05, "momentum": "0.9"}
    finally:
        trainer.close()


# -- studies --------------------------------------------------------------------------------


def study(*args: object) -> list[object]:
    return ["train", "--strategy", "caviar", *args]


@pytest.mark.parametrize("behavior, failure", [
    ("crash", "the command exited with status 1 after epoch 1: ValueError: boom at lr "),
    ("garbage", "the command printed 'hello from the training loop' (line 2 of its output), not a JSON object"),
    ("silent", "the command printed nothing for 2 s after epoch 1 and was ended; raise --idle-timeout"),
    ("stubborn", "the command printed nothing for 2 s after epoch 1 and was ended; raise --idle-timeout"),
])
def test_a_misbehaving_program_fails_its_trial_in_one_line_and_the_study_goes_on(folder, behavior, failure):
    # the idle timeout is what ends a silent program; for the others it only has to spare the good
    # trials on a loaded machine (with 1 s a good trial's epoch was once taken for silence)
    idle = "2" if behavior in ("silent", "stubborn") else "60"
    done = folder.run(*study("--command", python("toy.py"), "--space", "lr=log:1e-3..1e-1", "--trials", "5",
                             "--workers", "2", "--epochs", "4", "--opt", f"behavior={behavior}", "--idle-timeout",
                             idle, "--trainer-opt", "grace=0.5", "--study", "s", "--metric", "val_loss"))
    assert done.returncode == 0, done.stderr
    statuses, curves = stored(folder.db, "s")
    lrs = {t["number"]: t["config"]["lr"] for t in folder.json("show", "s")["trials"]}
    bad = {n for n, lr in lrs.items() if lr < 0.01}
    assert bad and len(bad) < 5, lrs
    assert statuses == {n: "failed" if n in bad else "finished" for n in range(5)}
    assert all(len(curves[n]) == (1 if n in bad else 4) for n in range(5))
    said = {int(line.split()[1]): line.split(": ", 1)[1] for line in done.stderr.splitlines()
            if re.match(r"trial \d+ failed: ", line)}
    assert set(said) == bad and all(text.startswith(failure) for text in said.values()), done.stderr
    if behavior == "crash":  # the tail of its stderr, once per failed trial
        assert done.stderr.count("about to fail") == len(bad)
    assert leftovers(folder) == []


def test_a_program_s_one_line_of_stderr_is_said_once(folder):
    """The message quoted the line, and the stderr tail printed it again under it."""
    (folder.path / "exit3.py").write_text("import sys\nprint('bad config', file=sys.stderr)\nsys.exit(3)\n")
    done = folder.run("train", "--command", python("exit3.py"), "--epochs", "3")
    assert done.returncode == 1
    assert "error: the command exited with status 3 after epoch 0: bad config" in done.stderr
    assert done.stderr.count("bad config") == 1, done.stderr


def test_a_deep_temporary_folder_does_not_stop_a_study_on_worker_processes(folder):
    """The study's channel listened on a socket file in $TMPDIR, whose path a socket limits to
    about 100 bytes: a deeper TMPDIR failed the study with "EOFError (this is a bug)"."""
    deep = folder.path / "tmp" / ("t" * 60) / ("u" * 60)
    deep.mkdir(parents=True)
    folder.env["TMPDIR"] = str(deep)
    done = folder.run(*study("--command", python("toy.py"), "--trials", "2", "--workers", "2", "--epochs", "2",
                             "--executor", "process", "--study", "deep", "--metric", "val_loss"))
    assert done.returncode == 0, done.stderr
    statuses, curves = stored(folder.db, "deep")
    assert statuses == {0: "finished", 1: "finished"} and all(len(curve) == 2 for curve in curves.values())
    assert list(deep.iterdir()) == []


def test_without_abstract_sockets_a_temporary_folder_too_deep_is_one_line(tmp_path, monkeypatch):
    """macOS has no abstract sockets: there multiprocessing's socket file stays in $TMPDIR, and
    a folder too deep for it is refused in one line naming the fix, not an EOFError."""
    from multiprocessing import util

    from research.study import channel

    monkeypatch.setattr(util, "abstract_sockets_supported", False)
    deep = tmp_path / ("t" * 80)
    deep.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(deep))
    with pytest.raises(UsageError, match=r"^the temporary folder .* is too deep for the socket that worker "
                                         r"processes talk through \(\d+ bytes, at most 70\): set TMPDIR to a "
                                         r"shorter folder, such as /tmp$"):
        channel.ManagerChannel()
    monkeypatch.setattr(tempfile, "tempdir", "/tmp")
    assert channel._address() is None  # multiprocessing's own file, as before


MANAGER_MASK = """
import pathlib, re
from research.study import channel

if __name__ == "__main__":
    made = channel.ManagerChannel()
    status = pathlib.Path(f"/proc/{made.manager._process.pid}/status").read_text()
    made.close()
    print(int(re.search(r"^SigBlk:\\s*([0-9a-f]+)$", status, re.M).group(1), 16))
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads the signal mask from /proc")
def test_the_manager_server_starts_with_ctrl_c_blocked(tmp_path):
    """A terminal's Ctrl-C reaches every process of the group: the manager's server (a
    `--command` study on worker processes) could die importing, with a KeyboardInterrupt
    traceback, before it ignores SIGINT. Started first in a process, it started
    multiprocessing's resource tracker, whose start unblocked SIGINT again: a fresh process."""
    (tmp_path / "mask.py").write_text(MANAGER_MASK)
    blocked = int(subprocess.run([sys.executable, "mask.py"], cwd=tmp_path, capture_output=True, text=True,
                                 check=True, timeout=WAIT).stdout)
    assert blocked & (1 << (2 - 1))  # SIGINT is signal 2: bit 1 of the mask


def test_a_study_killed_with_sigkill_resumes_without_losing_a_committed_epoch(folder, tmp_path, reap):
    command = study("--command", python("digits_script.py"), "--space", "lr=log:1e-3..1", "--trials", "6",
                    "--workers", "2", "--epochs", "12", "--strategy-opt", "checkpoint_seconds=0", "--study", "k")
    reference = Folder(tmp_path / "reference", folder.site)
    shutil.copy(folder.path / "digits_script.py", reference.path)
    straight = reference.start("straight", *command)
    reap.append(straight)
    before: dict[int, list] = {}

    def remember() -> None:
        before.update(stored(folder.db, "k")[1])

    kill_then_resume(folder, command, least=20, after_kill=remember)
    assert straight.wait(timeout=WAIT) == 0, reference.said("straight")
    statuses, curves = stored(folder.db, "k")
    assert statuses == {n: "finished" for n in range(6)}
    assert all(len(curve) == 12 for curve in curves.values())
    assert sum(len(curve) for curve in before.values()) >= 20
    assert all(curves[n][:len(curve)] == curve for n, curve in before.items())  # nothing committed was lost
    assert (statuses, curves) == stored(reference.db, "k")  # and the resumed trials went on exactly


def test_pruned_trials_programs_are_ended_and_nothing_is_left_behind(folder):
    done = folder.run(*study("--command", python("toy.py"), "--space", "lr=log:1e-3..0.4", "--trials", "8",
                             "--workers", "2", "--epochs", "6", "--metric", "val_loss", "--prune", "median",
                             "--prune-opt", "warmup_epochs=1", "--study", "p"))
    assert done.returncode == 0, done.stderr
    statuses, curves = stored(folder.db, "p")
    pruned = [n for n, s in statuses.items() if s == "pruned"]
    assert pruned and all(len(curves[n]) < 6 for n in pruned)
    assert all(len(curves[n]) == 6 for n, s in statuses.items() if s == "finished")
    assert leftovers(folder) == []


@pytest.mark.parametrize("executor", ["serial", "dask"])
def test_other_executors_stream_the_epochs_too(folder, executor):
    if executor == "dask" and importlib.util.find_spec("distributed") is None:
        pytest.skip("Dask is not installed (the [dask] extra)")
    done = folder.run(*study("--command", python("toy.py"), "--space", "lr=log:1e-2..0.4", "--trials", "3",
                             "--workers", "2", "--epochs", "3", "--executor", executor, "--study", executor))
    assert done.returncode == 0, done.stderr
    statuses, curves = stored(folder.db, executor)
    assert statuses == {n: "finished" for n in range(3)} and all(len(c) == 3 for c in curves.values())


def babysat(folder: Folder, segments: int, answers: str) -> subprocess.CompletedProcess:
    """Study "b": the toy babysat at lr 0.05 in segments of 2 epochs, answering the prompt with
    ``answers``, its policy off."""
    return subprocess.run(research_command() + [
        "train", "--strategy", "babysit", "--command", python("toy.py"), "--lr", "0.05", "--metric", "val_loss",
        "--segment-epochs", "2", "--segments", str(segments), "--policy", "none", "--interactive", "--study", "b"],
        cwd=folder.path, env=folder.env, input=answers, capture_output=True, text=True, timeout=WAIT)


def test_babysit_changes_and_rolls_back_through_restarts_from_exact_copies(folder):
    """At the prompt: lr 0.05 -> 0.3 at epoch 4 (the program restarts with it from its folder),
    then a rollback of that segment (restarted from the copy of epoch 4, lr 0.05 again)."""
    done = babysat(folder, 4, "continue\nset lr=0.3\nrollback\ncontinue\n")
    assert done.returncode == 0, done.stderr
    with Store(folder.db, create=False) as store:
        trial = store.trials(store.study("b"))[0]
        every = store.curve(trial, rolled_back=True)
    undone = [row["val_loss"] for row in every if row["rolled_back"]]
    live = [row["val_loss"] for row in every if not row["rolled_back"]]
    x4 = 5.0 * 0.9 ** 4
    assert undone == pytest.approx([(x4 * 0.4) ** 2, (x4 * 0.4 ** 2) ** 2])  # the change, from epoch 4's folder
    assert live == pytest.approx([(5.0 * 0.9 ** k) ** 2 for k in range(1, 7)])  # the rollback, exact
    assert leftovers(folder) == []


def test_a_babysit_change_the_program_refuses_is_undone_and_the_run_goes_on(folder):
    """research cannot check a program's values before it runs with them: the program exits
    at its start. Before, the study ended there, and every resume restarted it with the value."""
    done = babysat(folder, 3, "continue\nset lr=2\ncontinue\n")
    assert done.returncode == 0, done.stderr
    with Store(folder.db, create=False) as store:
        study = store.study("b")
        trial = store.trials(study)[0]
        assert [row["val_loss"] for row in store.curve(trial, rolled_back=True)] == pytest.approx(
            [(5.0 * 0.9 ** k) ** 2 for k in range(1, 7)])  # lr 0.05 throughout, nothing trained with 2
        events = store.events(study)
    assert [e["data"]["reason"] for e in events if e["kind"] == "rollback"] == [
        "undid lr=2.0: the next epoch failed with it: the command exited with status 1 after epoch 4: "
        "lr 2.0 is too large for this loop"]
    assert [(e["data"]["name"], e["data"]["kept"]) for e in events if e["kind"] == "outcome"] == [("lr", False)]
    assert trial.status == "finished" and leftovers(folder) == []


def test_a_program_that_trains_on_after_stop_is_named_and_restarted_from_the_boundary_copy(folder):
    """A program that ignored `stop` trained another epoch into its folder before it was ended;
    the change's restart then ran on that folder, a silent epoch ahead (or failed on the
    program's own check, blamed on the change). The restart is refused naming the protocol
    break; the change is undone by a rollback to the boundary's exact copy."""
    done = subprocess.run(research_command() + [
        "train", "--strategy", "babysit", "--command", python("toy.py"), "--lr", "0.005", "--opt", "behavior=deaf",
        "--trainer-opt", "grace=0.5", "--metric", "val_loss", "--segment-epochs", "2", "--segments", "3",
        "--policy", "none", "--interactive", "--study", "b"],
        cwd=folder.path, env=folder.env, input="continue\nset lr=0.004\ncontinue\n", capture_output=True, text=True,
        timeout=WAIT)
    assert done.returncode == 0, done.stderr
    with Store(folder.db, create=False) as store:
        study = store.study("b")
        live = [row["val_loss"] for row in store.curve(store.trials(study)[0])]
        reasons = [e["data"]["reason"] for e in store.events(study) if e["kind"] == "rollback"]
    assert live == pytest.approx([(5.0 * 0.99 ** k) ** 2 for k in range(1, 7)])  # lr 0.005 throughout, exact
    assert reasons == ["undid lr=0.004: the next epoch failed with it: the command did not exit within 0.5s of "
                       "reading stop and was ended, so its checkpoint folder may hold a later epoch than it reported; "
                       "a program must exit when it reads stop (or raise --trainer-opt grace=SECONDS if it needs "
                       "longer)"]


@pytest.mark.parametrize("report", ["val_loss=1.0 / epoch", "val_acc=float('inf'), val_loss=0.5"],
                         ids=["no-val-acc", "infinite-val-acc"])
def test_a_study_whose_program_never_reports_its_metric_stops_after_its_first_trial(folder, report):
    """The study's metric is val_acc unless told; a program reporting only val_loss ranked
    nothing in silence, then trained every trial for nothing to rank, and exited 0. One that
    reported it only as infinite was told it did not report it at all."""
    (folder.path / "unranked.py").write_text(
        "from research import script\ntrial = script.trial(defaults={'lr': 0.1, 'epochs': 2})\n"
        f"for epoch in trial.remaining:\n    if not trial.report({report}):\n        break\n")
    done = folder.run(*study("--command", python("unranked.py"), "--trials", "3", "--epochs", "2",
                             "--executor", "serial", "--workers", "1", "--study", "m"))
    assert done.returncode == 2, done.stderr
    assert re.fullmatch(r"error: trial \d of study 'm' finished without a finite value of the study's metric val_acc "
                        r"\(it reports val_loss\), so no trial could be ranked; train a new study with --metric NAME, "
                        r"or make its trainer report val_acc as a finite number",
                        done.stderr.strip().splitlines()[-1]), done.stderr
    with Store(folder.path / "research.db") as store:
        statuses = [t.status for t in store.trials(store.study("m"))]
        assert statuses == ["finished"], statuses  # kept; no other started (all 3 used to train)


def test_a_program_edited_between_runs_of_a_study_is_said_when_it_goes_on(folder):
    """Its digest was recorded (research show) but a resume after an edit went on in silence."""
    args = study("--command", python("toy.py"), "--trials", "2", "--epochs", "2", "--executor", "serial",
                 "--study", "s", "--metric", "val_loss", "--max-epochs", "2")
    assert folder.run(*args).returncode == 0
    toy = folder.path / "toy.py"
    toy.write_text(toy.read_text() + "# a fix\n")
    edited = folder.run("resume", "s", "--no-budget")
    assert edited.returncode == 0, edited.stderr
    assert "warning: toy.py changed since the study's last run" in edited.stderr, edited.stderr


def test_a_command_a_shell_could_not_read_is_refused_before_anything_is_stored(folder):
    """shlex's "No closing quotation" was one model's whole message, and a study's "this is a bug"
    after it was stored."""
    for args in (["--command", 'python "x', "--epochs", "1"], study("--command", 'python "x', "--trials", "2")):
        done = folder.run("train", *args) if args[0] == "--command" else folder.run(*args)
        assert done.returncode == 2, done.stderr
        assert done.stderr.strip().splitlines()[-1] == (
            "error: trainer 'command': cannot read the command 'python \"x' (No closing quotation); quote it as a shell "
            "would, e.g. --command 'python train.py --name \"my run\"'")
    assert not folder.db.exists()
    empty = folder.run(*study("--command", " ", "--trials", "2"))  # stored, it failed every trial for good
    assert empty.returncode == 2 and empty.stderr.strip() == (
        "error: trainer 'command': the command is empty; give the program, e.g. --command 'python train.py'")
    assert not folder.db.exists()


def test_a_study_without_the_command_is_refused_before_it_is_stored(folder):
    """It was stored, and every trial failed on the missing option."""
    done = folder.run(*study("--trainer", "command", "--epochs", "1", "--trials", "2", "--study", "none"))
    assert done.returncode == 2
    assert done.stderr.strip() == ("error: trainer 'command' needs its option 'command' (a string), which has no "
                                   "default; give it with --command (from Python: trainer_options={'command': ...})")
    assert not folder.db.exists() or "none" not in folder.run("studies").stdout


@pytest.mark.skipif(sys.prefix == sys.base_prefix, reason="research runs in a virtual environment")
def test_python_in_the_command_is_the_one_research_runs_in_activated_or_not(folder):
    """`--command 'python toy.py'` from a venv that was not activated ran another Python,
    without research: "No module named 'research'"."""
    own = os.path.dirname(sys.executable)
    folder.env["PATH"] = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if p != own)
    done = folder.run("train", "--command", "python toy.py", "--epochs", "2", "--metric", "val_loss", "--json")
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)["history"]) == 2


@pytest.mark.parametrize("where", [(), ("--workdir", "prog"), ("--opt", "workdir=prog")],
                         ids=["here", "flag", "by-name"])
def test_a_study_records_the_program_it_ran(folder, where):
    """The digest is of the file the program ran: in its workdir, however that was given (set by
    name, the digest was taken here, of another toy.py)."""
    (folder.path / "prog").mkdir()
    (folder.path / "prog" / "toy.py").write_text(TOY + "# the one in prog\n")
    done = folder.run(*study("--command", python("toy.py"), "--space", "lr=log:1e-2..0.4", "--trials", "1",
                             "--epochs", "1", "--executor", "serial", "--study", "v", *where))
    assert done.returncode == 0, done.stderr
    ran = folder.json("show", "v")["provenance"]
    digest = hashlib.sha256((folder.path / ("prog" if where else "") / "toy.py").read_bytes()).hexdigest()[:16]
    assert ran["trainer"]["command"] == python("toy.py")
    assert ran["trainer"]["sha256 of toy.py"] == digest  # the script as it was when the study ran
    assert ran["research"] and ran["numpy"] and len(ran["kernels"]) == 16


def test_a_study_resumed_from_another_directory_runs_its_program_where_it_was_started(folder, tmp_path):
    """The program ran in the directory of `research resume`, so `python toy.py` was not found."""
    command = study("--command", f"{shlex.quote(sys.executable)} toy.py", "--space", "lr=log:1e-2..0.4",
                    "--epochs", "2", "--executor", "serial", "--study", "w")
    assert folder.run(*command, "--trials", "1").returncode == 0
    assert folder.run(*command, "--trials", "2").returncode == 0  # the same flags still continue it
    elsewhere = Folder(tmp_path / "elsewhere", folder.site)
    resumed = elsewhere.run("resume", "w", "--trials", "3", "--store", folder.db)
    assert resumed.returncode == 0, resumed.stderr
    statuses, _ = stored(folder.db, "w")
    assert statuses == {0: "finished", 1: "finished", 2: "finished"}
    settings = folder.json("show", "w")["settings"]
    assert settings["base"]["trainer_options"]["workdir"] == str(folder.path)
    missing = folder.run(*study("--command", python("toy.py"), "--workdir", "nowhere", "--trials", "1",
                                "--epochs", "1", "--executor", "serial", "--study", "m"))
    assert missing.returncode == 1  # the trial fails: a Dask worker may lack the directory the study has
    assert "trial 0 failed: trainer 'command': workdir 'nowhere' is not a directory on this machine; create it " \
           "(the program and its files go there) or give another with --workdir" in " ".join(missing.stderr.split())


def test_one_model_with_the_command_alone(folder):
    done = folder.run("train", "--command", python("toy.py"), "--lr", "0.2", "--epochs", "3", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert [round(m["val_loss"], 6) for m in result["history"]] == [round((5.0 * 0.6 ** k) ** 2, 6) for k in (1, 2, 3)]
    missing = folder.run("train", "--command", "no-such-program", "--epochs", "2")
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines()[-1] == \
        "error: trainer 'command' cannot start 'no-such-program' (No such file or directory); check --command"
    (folder.path / "broken.py").write_text("print(\n")
    broken = folder.run("train", "--command", python("broken.py"), "--epochs", "2")
    assert broken.returncode == 1  # it failed as it ran, as a Python loop's exception does (it was 2, a refusal)
    lines = broken.stderr.strip().splitlines()
    error = next(k for k, line in enumerate(lines) if line.startswith("error: "))
    assert lines[error].startswith("error: the command exited with status 1 after epoch 0: SyntaxError")
    assert any("broken.py" in line for line in lines[error + 1:])  # its stderr's last lines, as a study shows


def test_the_stored_state_is_plain_arrays(tmp_path):
    trainer = driven(tmp_path, TOY, lr=0.2)
    try:
        trainer.train_epoch()
        state = trainer.state()
        assert all(isinstance(v, np.ndarray) and v.dtype != object for v in state.values())
    finally:
        trainer.close()


def test_a_program_that_reports_every_epoch_and_exits_without_reading_its_answers_finishes(tmp_path):
    """Its answers stay in the pipe's buffer; flushing them as the pipe closes raised
    BrokenPipeError, which failed trials whose every epoch was committed."""
    trainer = driven(tmp_path, """
        import json
        for epoch in (1, 2, 3):
            print(json.dumps({"epoch": epoch, "val_loss": 1.0 / epoch, "val_acc": 0.5}), flush=True)
    """)
    first = trainer.train_epoch()
    program = getattr(trainer, "trainer", trainer).process
    program.wait(timeout=30)  # gone before any answer reaches it
    assert [first, trainer.train_epoch(), trainer.train_epoch()] == [
        {"val_loss": 1.0 / epoch, "val_acc": 0.5} for epoch in (1, 2, 3)]
    trainer.close()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_a_wrapped_program_that_hangs_is_ended_with_its_child(tmp_path):
    """A wrapper's child holds the output pipe after the wrapper is ended: closing it waited for
    that child's next line, for ever; and the child, orphaned, went on hanging."""
    child = tmp_path / "child.py"
    child.write_text('import json, os, sys, time\nprint(os.getpid(), file=sys.stderr, flush=True)\n'
                     'print(json.dumps({"val_loss": 1.0}), flush=True)\ntime.sleep(60)\n')
    wrapper = tmp_path / "wrapper.sh"
    wrapper.write_text(f"#!/bin/sh\n{python(child)} 2>{tmp_path / 'pid'}\n")
    wrapper.chmod(0o755)
    trainer = make_trainer({"trainer": "command", "epochs": 3, "trainer_options": {
        "command": str(wrapper), "idle_timeout": 1.0, "grace": 0.5}}, load_plugins())
    trainer.train_epoch()
    pid = int((tmp_path / "pid").read_text())
    started = time.monotonic()
    try:
        with pytest.raises(UsageError, match=r"^the command printed nothing for 1 s after epoch 1 and was ended"):
            trainer.train_epoch()
        trainer.close()
        assert time.monotonic() - started < 20
        while _running(pid) and time.monotonic() - started < 20:  # init reaps it
            time.sleep(0.05)
        assert not _running(pid)
    finally:
        subprocess.run(["kill", "-9", str(pid)], check=False, capture_output=True)


def _running(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting to be reaped has ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_an_executor_without_a_channel_is_named_with_its_plugin():
    """"the bare executor cannot run ..." named no plugin, as every other plugin's line does."""
    from research.study.channel import channel_of

    with pytest.raises(UsageError, match=r"^plugin 'audit': executor 'bare' cannot run a trainer that trains whole "
                                         r"trials \(it has no channel\(\); see docs/plugins.md\); choose another"):
        channel_of(object(), "bare", "audit")

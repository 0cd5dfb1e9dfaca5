"""Worker processes that die: a study whose pool workers are killed again and again retries
on fresh pools and ends with the same curves as one that nobody disturbed, never hanging; a
pool whose workers are killed as they start is tried again and then given up in one line;
the results that cross from the workers come back whole or not at all."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest
from research_plugins.executors import ProcessExecutor, spooled, unspool

from tests.studyutil import Folder, cli, curves, live_epochs, start, statuses, wait_for

# Long enough (about 3 s of training with 2 workers on a fast CPU) for the kills to land: with 3
# epochs of batches of 64 the study was over in 0.2 s after its workers started, and a run could
# end before the first kill.
STUDY = ["--study", "s", "--trials", "10", "--epochs", "40", "--batch-size", "4", "--hidden", "32", "--seed", "5",
         "--strategy-opt", "retries=100"]
WAIT = 120.0


def pool_workers(pid: int) -> list[int]:
    """The pool's worker processes among ``pid``'s children (spawned interpreters)."""
    found = subprocess.run(["pgrep", "-P", str(pid), "-f", "spawn_main"], capture_output=True, text=True).stdout
    return [int(child) for child in found.split()]


def test_workers_killed_again_and_again_cost_only_time(tmp_path, reap):
    undisturbed = cli("train", "--strategy", "caviar", "--store", tmp_path / "serial.db", "--executor", "serial",
                      "--plot", tmp_path / "a.png", *STUDY)
    assert undisturbed.exit_code == 0, undisturbed.output
    process = start(["train", "--strategy", "caviar", "--store", tmp_path / "killed.db", "--workers", "2",
                     "--plot", tmp_path / "b.png", *STUDY], tmp_path)
    reap.append(process)
    rng, kills, deadline = random.Random(0), 0, time.monotonic() + WAIT
    while process.poll() is None and kills < 6 and time.monotonic() < deadline:
        time.sleep(rng.uniform(0.3, 0.9))
        workers = pool_workers(process.pid)
        if workers:
            try:
                os.kill(rng.choice(workers), signal.SIGKILL)
                kills += 1
            except ProcessLookupError:
                pass
    try:
        out, err = process.communicate(timeout=WAIT)  # a pool waiting for a half-sent result would hang here
    except subprocess.TimeoutExpired:
        pytest.fail(f"the study hung after {kills} workers were killed")
    assert process.returncode == 0, err
    assert "Traceback" not in err and "BrokenProcessPool" not in err
    assert kills >= 1
    assert set(statuses(tmp_path / "killed.db", "s").values()) == {"finished"}
    assert curves(tmp_path / "killed.db", "s") == curves(tmp_path / "serial.db", "s")


def test_results_come_back_whole_through_files(tmp_path):
    path = spooled(str(tmp_path), sum, [1, 2, 3])
    assert unspool(path) == 6 and not os.path.exists(path)
    failed = spooled(str(tmp_path), int, "x")
    with pytest.raises(ValueError, match="invalid literal"):
        unspool(failed)
    assert list(tmp_path.iterdir()) == []


def test_a_pool_removes_its_results_folder(tmp_path):
    pool = ProcessExecutor(max_workers=1)
    try:
        assert pool.submit(pow, 2, 10).result(timeout=WAIT) == 1024
        folder = Path(pool.spool)
        assert folder.is_dir()
    finally:
        pool.shutdown()
    assert not folder.exists()


def test_workers_killed_as_they_start_are_given_up_in_one_line(monkeypatch):
    from research_plugins import executors

    from research.errors import UsageError

    def killed(pool):
        pool.shutdown(wait=False)
        raise executors.WorkerKilled("killed")

    monkeypatch.setattr(executors, "wait_for_a_worker", killed)
    with pytest.raises(UsageError, match=f"killed while starting, {executors.START_ATTEMPTS} times in a row"):
        executors.process_executor(1)


@pytest.mark.parametrize("delay", [0.4, 0.8])
def test_ctrl_c_while_workers_start_prints_no_traceback(tmp_path, reap, delay):
    process = start(["train", "--strategy", "caviar", "--study", "c", "--store", tmp_path / "c.db", "--trials", "8",
                     "--epochs", "100", "--hidden", "256", "--workers", "2", "--plot", tmp_path / "c.png"], tmp_path)
    reap.append(process)
    time.sleep(delay)  # the pool's workers are starting (importing) about now
    os.killpg(process.pid, signal.SIGINT)  # a terminal's Ctrl-C reaches the whole group
    out, err = process.communicate(timeout=WAIT)
    assert process.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err


HANGING = '''
import time
import numpy as np

class Hang:
    """Trains epoch 1, then hangs in epoch 2 (a deadlocked data loader)."""

    def __init__(self, config):
        self.epoch = 0

    def train_epoch(self):
        self.epoch += 1
        if self.epoch == 2:
            time.sleep(3600)
        return {"val_acc": 0.5, "val_loss": 1.0}

    def state(self):
        return {"epoch": np.array(self.epoch)}

    def load_state(self, state):
        self.epoch = int(state["epoch"])
'''


def test_a_second_ctrl_c_ends_workers_whose_trainer_hangs(tmp_path, reap):
    """The first Ctrl-C waits for the running epochs; with a trainer that hangs, the study
    waited for ever, and a second Ctrl-C left it (and its workers) waiting at exit too."""
    folder = Folder(tmp_path / "work", tmp_path / "site")
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "hanging.py").write_text(HANGING)
    process = folder.start("run", "train", "--strategy", "caviar", "--trainer", "hanging:Hang", "--epochs", "3",
                           "--trials", "2", "--workers", "2", "--study", "h")
    reap.append(process)
    assert wait_for(lambda: live_epochs(folder.db) >= 2, WAIT, process=process), folder.said("run")
    os.killpg(process.pid, signal.SIGINT)
    assert wait_for(lambda: "Ctrl-C again stops their workers now" in folder.said("run"), WAIT, process=process)
    os.killpg(process.pid, signal.SIGINT)
    assert process.wait(timeout=WAIT) == 130, folder.said("run")
    left = lambda: subprocess.run(["ps", "-o", "pid=,stat=,args=", "-g", str(process.pid)], capture_output=True,  # noqa: E731
                                  text=True).stdout.strip()
    assert wait_for(lambda: not left(), 10), left()  # no worker left behind
    assert statuses(folder.db, "h") == {0: "interrupted", 1: "interrupted"}


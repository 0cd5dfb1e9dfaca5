"""The dask executor: a local cluster gives the process executor's study value for value; a
worker killed mid-study costs nothing but time; Ctrl-C closes a local cluster quietly; a
real scheduler and worker started from the command line run a study, and losing the
scheduler interrupts it resumably; the errors a user meets are one line with the fix."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("distributed")

from research.extras import install_command  # noqa: E402
from research.plugins import load_plugins  # noqa: E402
from research.study.store import Store  # noqa: E402
from research.study.study import QuietReporter, StudySettings, open_study  # noqa: E402
from tests.studyutil import (  # noqa: E402
    TINY,
    cli,
    configs,
    curves,
    epochs_by_trial,
    kept_epochs,
    kill_group,
    query,
    run,
    signal_group,
    start,
    statuses,
    wait_for,
)

CHATTER = ("Remove worker", "Lost all workers", "Nanny at", "Closing scheduler", "Scheduler closing")


def caviar(tmp_path, *args, store, study="s"):
    return cli("train", "--strategy", "caviar", "--study", study, "--store", tmp_path / store,
               "--plot", tmp_path / f"{study}-{store}.png", *TINY, *args)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_local_cluster_gives_the_process_executors_study(tmp_path, monkeypatch):
    """Same seed: the same configurations and curves, value for value (wall-clock seconds
    aside), whether two worker processes of a pool or of a local Dask cluster train them."""
    monkeypatch.chdir(tmp_path)
    pool = caviar(tmp_path, "--trials", "4", "--seed", "3", "--executor", "process", "--workers", "2",
                  store="pool.db")
    assert pool.exit_code == 0, pool.output
    dask = caviar(tmp_path, "--trials", "4", "--seed", "3", "--executor", "dask", "--workers", "2",
                  store="dask.db")
    assert dask.exit_code == 0, dask.output

    assert statuses(tmp_path / "dask.db", "s") == {n: "finished" for n in range(4)}
    assert configs(tmp_path / "dask.db", "s") == configs(tmp_path / "pool.db", "s")
    expected = curves(tmp_path / "pool.db", "s")
    assert all(len(rows) == 3 for rows in expected.values())
    assert curves(tmp_path / "dask.db", "s") == expected
    assert kept_epochs(tmp_path / "dask-checkpoints") == kept_epochs(tmp_path / "pool-checkpoints")


# A worker killed mid-study ------------------------------------------------------------------

class WorkerKiller(QuietReporter):
    """After an epoch comes back, SIGKILL a worker process that is busy with a segment
    (once): the segment it was training is lost with it."""

    def __init__(self):
        self.executor = None
        self.killed: list[tuple[str, int, tuple]] = []

    def epoch_done(self, number, epoch, metrics):
        if self.killed or self.executor is None:
            return
        client = self.executor.client
        busy = {address: keys for address, keys in client.processing().items() if keys}
        if busy:
            address, keys = next(iter(busy.items()))
            pid = client.run(os.getpid, workers=[address])[address]
            os.kill(pid, signal.SIGKILL)
            self.killed.append((address, pid, keys))


def run_api_study(path: Path, executor: str, reporter=None, workers: int = 2):
    """A caviar study through the Python API; returns the study (its store closed)."""
    plugins = load_plugins()
    settings = StudySettings(strategy="caviar", base={"epochs": 3, "hidden": 16, "batch_size": 8},
                             space={"lr": "log:1e-3..1e-1"}, seed=5, trials=5)
    with Store(path) as store:
        study = open_study(store, "s", settings, plugins, executor=executor, workers=workers, reporter=reporter)
        if isinstance(reporter, WorkerKiller):
            factory = study.make_executor

            def make_executor():
                reporter.executor = factory()
                return reporter.executor

            study.make_executor = make_executor
        plugins.get("strategies", "caviar")().run(study)
    return study


def test_a_worker_killed_mid_study_costs_only_time(tmp_path):
    """Dask runs the lost segment again elsewhere from the checkpoint it carries: every
    trial finishes once, each epoch committed once, the curves those of an undisturbed run."""
    run_api_study(tmp_path / "serial.db", "serial", workers=1)
    killer = WorkerKiller()
    run_api_study(tmp_path / "dask.db", "dask", killer)

    assert killer.killed, "no worker was busy after any epoch: nothing was killed"
    _, pid, keys = killer.killed[0]
    assert keys, "the killed worker had no segment in flight"
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    db = tmp_path / "dask.db"
    assert statuses(db, "s") == {n: "finished" for n in range(5)}
    assert epochs_by_trial(db, "s") == {n: [1, 2, 3] for n in range(5)}
    assert query(db, "SELECT COUNT(*) FROM metrics") == [(15,)]
    assert query(db, "SELECT COUNT(*) FROM trials") == [(5,)]
    assert configs(db, "s") == configs(tmp_path / "serial.db", "s")
    assert curves(db, "s") == curves(tmp_path / "serial.db", "s")


def alive(group: int) -> list[int]:
    """The live processes of a process group (zombies waiting to be reaped do not count)."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == group and fields[0] != "Z":
            found.append(int(entry))
    return found


def test_ctrl_c_closes_the_local_cluster_quietly_and_the_study_resumes(tmp_path):
    """Ctrl-C reaches the cluster's workers too (one process group): the study's process
    closes the cluster, exits 130 without a traceback, leaves no process behind, and the
    resumed study (on another executor) is the undisturbed one."""
    db = tmp_path / "research.db"
    args = ["train", "--strategy", "caviar", "--study", "s", "--trials", "4", "--epochs", "6", "--hidden", "16",
            "--batch-size", "8", "--seed", "7", "--plot", "curves.png"]
    process = start([*args, "--store", "research.db", "--executor", "dask", "--workers", "2"], tmp_path)
    try:
        caught = wait_for(lambda: query(db, "SELECT COUNT(*) FROM metrics")[0][0] >= 3, timeout=90, process=process)
        signal_group(process, signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            kill_group(process)
    assert caught, stderr
    assert process.returncode == 130, stderr
    # the executor is no part of the study: the hint names it, or the resume would run on the process pool
    assert "interrupted: finished epochs are kept; continue with `research resume s --executor dask`" in stderr
    assert "Traceback" not in stderr, stderr
    assert wait_for(lambda: not alive(process.pid), timeout=20), f"processes outlived the study: {alive(process.pid)}"
    assert "interrupted" in statuses(db, "s").values()

    # The executor is no part of a study's identity: it resumes on a process pool.
    resumed = run([*args, "--store", "research.db", "--executor", "process", "--workers", "2"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert epochs_by_trial(db, "s") == {n: [1, 2, 3, 4, 5, 6] for n in range(4)}
    assert query(db, "SELECT COUNT(*) FROM metrics") == [(24,)]
    serial = cli(*args, "--store", tmp_path / "serial.db", "--executor", "serial", "--plot", tmp_path / "serial.png")
    assert serial.exit_code == 0, serial.output
    assert curves(db, "s") == curves(tmp_path / "serial.db", "s")


# A real scheduler and worker -------------------------------------------------------------------

def dask_command(*args: str) -> list[str]:
    beside = Path(sys.executable).parent / "dask"
    return [str(beside) if beside.exists() else "dask", *args]


def stop(process: subprocess.Popen) -> None:
    """SIGTERM the process group (a nanny and its worker), SIGKILL if it lingers."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=15)
        except ProcessLookupError:
            pass


class Cluster:
    """A `dask scheduler` and its `dask worker`s started as commands, each in its own session
    (their output in ``folder``); stopped by ``stop``, whatever happened."""

    def __init__(self, folder: Path):
        self.address = f"tcp://127.0.0.1:{free_port()}"
        self.folder = folder
        self.scheduler: subprocess.Popen | None = None
        self.worker: subprocess.Popen | None = None
        self.logs: list[Any] = []

    def _start(self, name: str, *args: str) -> subprocess.Popen:
        self.logs.append(open(self.folder / f"{name}.log", "w"))
        return subprocess.Popen(dask_command(name, *args), stdout=self.logs[-1], stderr=subprocess.STDOUT,
                                start_new_session=True, cwd=self.folder)

    def start_scheduler(self) -> None:
        self.scheduler = self._start("scheduler", "--host", "127.0.0.1", "--port", self.address.rsplit(":", 1)[1],
                                     "--no-dashboard")

    def start_worker(self) -> None:
        """One single-threaded worker, ready once it has registered."""
        from distributed import Client

        self.worker = self._start("worker", self.address, "--nthreads", "1", "--nworkers", "1", "--no-dashboard")
        with Client(self.address, timeout=30) as client:
            client.wait_for_workers(1, timeout=60)

    def stop(self) -> None:
        for process in (self.worker, self.scheduler):
            if process is not None:
                stop(process)
        for handle in self.logs:
            handle.close()


@pytest.fixture
def cluster(tmp_path):
    """A `dask scheduler` and one single-threaded `dask worker` on 127.0.0.1."""
    found = Cluster(tmp_path)
    try:
        found.start_scheduler()
        found.start_worker()
        yield found
    finally:
        found.stop()


LOCAL_WORKER_MASK = """
import os, re
from research.plugins import load_plugins

if __name__ == "__main__":
    executor = load_plugins().build("executors", "dask", 1)
    try:
        for pid in executor.client.run(os.getpid).values():
            print(int(re.search(r"^SigBlk:\\s*([0-9a-f]+)$", open(f"/proc/{pid}/status").read(), re.M).group(1), 16))
    finally:
        executor.shutdown()
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads the signal mask from /proc")
def test_a_local_cluster_starts_its_workers_with_ctrl_c_blocked(tmp_path):
    """A Ctrl-C while the cluster's workers started (about a second after the study began)
    printed their KeyboardInterrupt tracebacks, then the cluster's own failure to close
    ("AssertionError: Status.init"): the cluster now starts with Ctrl-C held, as the process
    pool's workers do, and closes once it is up."""
    (tmp_path / "mask.py").write_text(LOCAL_WORKER_MASK)
    done = subprocess.run([sys.executable, "mask.py"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    masks = [int(line) for line in done.stdout.split()]
    assert masks and all(mask & (1 << (2 - 1)) for mask in masks)  # SIGINT is signal 2: bit 1 of the mask


def test_a_scheduler_without_workers_is_said_and_the_study_runs_once_one_comes(tmp_path):
    """The study waited for workers in silence, as if it hung."""
    found, process = Cluster(tmp_path), None
    try:
        found.start_scheduler()
        process = start(["train", "--strategy", "caviar", "--study", "s", "--trials", "2", *TINY, "--store", "r.db",
                         "--executor", "dask", "--executor-opt", f"address={found.address}", "--workers", "1"],
                        tmp_path)
        said = [process.stderr.readline().strip() for _ in range(2)]  # the study's header, then the warning
        assert said[1] == (f"warning: the Dask scheduler at {found.address} has no workers yet: the study waits for "
                           f"them; start them with `dask worker {found.address} --nthreads 1`"), said
        found.start_worker()
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        assert statuses(tmp_path / "r.db", "s") == {0: "finished", 1: "finished"}
    finally:
        if process is not None and process.poll() is None:
            signal_group(process, signal.SIGKILL)
        found.stop()


def test_a_study_on_a_real_scheduler_by_address(tmp_path, cluster):
    args = ["train", "--strategy", "caviar", "--study", "s", "--trials", "3", "--seed", "2", *TINY,
            "--plot", "curves.png"]
    started = time.monotonic()
    remote = run([*args, "--store", "remote.db", "--executor", "dask", "--executor-opt", f"address={cluster.address}",
                  "--workers", "1"], tmp_path)
    assert remote.returncode == 0, remote.stderr
    assert time.monotonic() - started < 60
    assert not [line for line in remote.stderr.splitlines() if any(text in line for text in CHATTER)], remote.stderr
    assert statuses(tmp_path / "remote.db", "s") == {n: "finished" for n in range(3)}

    local = cli(*args, "--store", tmp_path / "serial.db", "--executor", "serial", "--plot", tmp_path / "serial.png")
    assert local.exit_code == 0, local.output
    assert curves(tmp_path / "remote.db", "s") == curves(tmp_path / "serial.db", "s")


def test_a_lost_scheduler_interrupts_the_running_trials_and_they_resume(tmp_path, cluster):
    """The scheduler dies mid-study: the segments in flight are lost with it, a new
    connection is tried, and when none comes the study stops in seconds with one line,
    its running trials interrupted (not failed); the resumed study completes exactly."""
    args = ["train", "--strategy", "caviar", "--study", "s", "--trials", "12", "--epochs", "4", "--hidden", "16",
            "--batch-size", "8", "--seed", "8", "--plot", "curves.png", "--store", "research.db"]
    db = tmp_path / "research.db"
    process = start([*args, "--executor", "dask", "--workers", "1", "--executor-opt", f"address={cluster.address}",
                     "--executor-opt", "timeout=2"], tmp_path)
    try:
        caught = wait_for(lambda: query(db, "SELECT COUNT(*) FROM metrics")[0][0] >= 2, timeout=60, process=process)
        os.killpg(cluster.scheduler.pid, signal.SIGKILL)
        killed = time.monotonic()
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            kill_group(process)
    assert caught, stderr
    assert time.monotonic() - killed < 30
    assert process.returncode == 2, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and cluster.address in errors[0], stderr
    # The command to run once a scheduler answers again (cluster.md said the study printed it; it did not).
    assert errors[0].endswith(f"; the study keeps what it trained: `research resume s --executor dask --executor-opt "
                              f"address={cluster.address} --executor-opt timeout=2` continues it"), stderr
    assert "Traceback" not in stderr and "CancelledError" not in stderr, stderr
    found = statuses(db, "s")
    assert "failed" not in found.values() and "running" not in found.values(), found
    assert "interrupted" in found.values(), found

    resumed = run([*args, "--executor", "process", "--workers", "2"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert epochs_by_trial(db, "s") == {n: [1, 2, 3, 4] for n in range(12)}
    assert query(db, "SELECT COUNT(*) FROM metrics") == [(48,)]


def test_an_unreachable_scheduler_is_one_line_naming_it_and_exit_2(tmp_path):
    address = f"tcp://127.0.0.1:{free_port()}"
    result = caviar(tmp_path, "--trials", "2", "--executor", "dask", "--executor-opt", f"address={address}",
                    "--executor-opt", "timeout=1", store="r.db")
    assert result.exit_code == 2, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and address in errors[0] and "dask scheduler" in errors[0], result.stderr
    assert "connection was refused" in errors[0], result.stderr  # at once, not "no answer" after the timeout
    assert "Traceback" not in result.stderr
    unknown = caviar(tmp_path, "--trials", "2", "--executor", "dask", "--executor-opt",
                     "address=tcp://nosuchhost.invalid:8786", store="r.db")
    assert unknown.exit_code == 2
    assert "(no host is named nosuchhost.invalid)" in unknown.stderr, unknown.stderr


@pytest.mark.parametrize("banner", [b"", b"SSH-2.0-OpenSSH_9.2p1\r\n"], ids=["silent", "banner"])
def test_a_port_that_is_not_a_scheduler_is_refused_within_the_timeout_and_stores_nothing(tmp_path, banner):
    """A web server (silent until asked) or an SSH daemon (a banner Dask would read as a frame
    length of exabytes) on the address: one line within the timeout, and no study stored."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def answer() -> None:
        with contextlib.suppress(OSError):
            while True:
                peer, _ = server.accept()
                accepted.append(peer)
                peer.sendall(banner)

    threading.Thread(target=answer, daemon=True).start()
    address = f"tcp://127.0.0.1:{server.getsockname()[1]}"
    started = time.monotonic()
    try:
        result = caviar(tmp_path, "--trials", "2", "--executor", "dask", "--executor-opt", f"address={address}",
                        "--executor-opt", "timeout=2", store="r.db")
    finally:
        server.close()
        for peer in accepted:
            peer.close()
    assert time.monotonic() - started < 30
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [result.stderr.strip()], result.stderr
    assert result.stderr.startswith(f"error: executor 'dask': cannot reach the Dask scheduler at {address} (")
    said = "no answer within 2 s" if not banner else "something answers there, but not in Dask's protocol"
    assert said in result.stderr
    assert not (tmp_path / "r.db").exists() or Store(tmp_path / "r.db").studies() == []


def test_bad_dask_options_are_one_line(tmp_path):
    result = caviar(tmp_path, "--executor", "dask", "--executor-opt", "adress=tcp://127.0.0.1:8786", store="r.db")
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [
        "error: executor 'dask': unknown option 'adress'; valid names: address, timeout"]

    garbage = caviar(tmp_path, "--executor", "dask", "--executor-opt", "address=garbage", store="r.db")
    assert garbage.exit_code == 2  # it said "something answers there, but not in Dask's protocol", nothing answered
    assert garbage.stderr.strip().splitlines() == [
        "error: executor 'dask': --executor-opt address=garbage is not a scheduler address (missing port number in "
        "address 'garbage'); write tcp://HOST:PORT, e.g. tcp://127.0.0.1:8786"]

    # They said "something answers there" and "nothing listens on port 99999", where nothing could.
    for address, why in [
            ("http://127.0.0.1:8787", "http:// is a web page's, such as the Dask dashboard's; the scheduler's own "
                                      "address starts with tcp://"),
            ("127.0.0.1:99999", "port 99999 is not a port number, 1 to 65535"),
            ("udp://127.0.0.1:8786", "Dask speaks no protocol 'udp'; it knows inproc, tcp, tls")]:
        wrong = caviar(tmp_path, "--executor", "dask", "--executor-opt", f"address={address}", store="r.db")
        assert wrong.exit_code == 2
        assert wrong.stderr.startswith(f"error: executor 'dask': --executor-opt address={address} is not a scheduler "
                                       f"address ({why}"), wrong.stderr
    assert not (tmp_path / "r.db").exists()

    from research_plugins.dask_executor import dask_executor

    with pytest.raises(ValueError, match=r"^executor 'dask': timeout must be a number in \(0, 3600\], got 'soon'$"):
        dask_executor(address="tcp://127.0.0.1:1", timeout="soon")


def test_a_timeout_beyond_an_hour_is_refused_in_one_line(tmp_path):
    """timeout=1e9 was taken: a port that accepts and never answers hung the study for good."""
    address = f"tcp://127.0.0.1:{free_port()}"
    result = caviar(tmp_path, "--executor", "dask", "--executor-opt", f"address={address}",
                    "--executor-opt", "timeout=1e9", store="r.db")
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == ["error: executor 'dask': timeout must be a number in (0, 3600], "
                                                  "got '1e9'"], result.stderr
    hour = caviar(tmp_path, "--executor", "dask", "--executor-opt", f"address={address}",
                  "--executor-opt", "timeout=3600", store="r.db")
    assert hour.exit_code == 2 and "connection was refused" in hour.stderr, hour.stderr  # the bound itself is taken
    assert not (tmp_path / "r.db").exists()


def test_an_address_without_a_host_is_refused_before_any_connection(tmp_path):
    """tcp://:8799 said "cannot reach the Dask scheduler at tcp://:8799 (no host is named )"."""
    for address in ("tcp://:8799", "tls://:8799", ":8799"):
        result = caviar(tmp_path, "--executor", "dask", "--executor-opt", f"address={address}", store="r.db")
        assert result.exit_code == 2, result.output
        assert result.stderr.strip().splitlines() == [
            f"error: executor 'dask': --executor-opt address={address} is not a scheduler address (no host before "
            "the port); write tcp://HOST:PORT, e.g. tcp://127.0.0.1:8786"], result.stderr
    assert not (tmp_path / "r.db").exists()


def test_an_unreachable_scheduler_of_a_study_file_names_no_flag_the_user_did_not_give(tmp_path):
    """An address from [executor_options] in a study.toml was to be checked as --executor-opt address=...;
    cluster.md shows the line as it is."""
    from research_plugins.dask_executor import _unreachable

    address = f"tcp://127.0.0.1:{free_port()}"
    config = tmp_path / "study.toml"
    config.write_text(f'strategy = "caviar"\ntrials = 2\nexecutor = "dask"\n\n[executor_options]\n'
                      f'address = "{address}"\n')
    result = cli("train", "--config", config, "--store", tmp_path / "r.db", *TINY)
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines() == [
        f"error: executor 'dask': cannot reach the Dask scheduler at {address} (nothing listens on port "
        f"{address.rsplit(':', 1)[1]} there: the connection was refused); start one with `dask scheduler` and check "
        "the scheduler's address (--executor-opt address=... or [executor_options] in a study file)"], result.stderr
    documented = Path(__file__).parent.parent / "docs" / "cluster.md"
    shown = [line for line in documented.read_text().splitlines() if "cannot reach the Dask scheduler" in line]
    assert shown == [f"error: executor 'dask': {_unreachable('tcp://10.0.0.1:8786', 'no answer within 10 s')}"]


def test_without_dask_the_error_says_how_to_install_it(tmp_path, monkeypatch):
    from research_plugins.dask_executor import dask_executor

    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(ValueError) as raised:
        dask_executor(workers=1)
    assert str(raised.value) == f"Dask is not installed; {install_command('dask')}"
    result = caviar(tmp_path, "--trials", "2", "--executor", "dask", store="r.db")
    assert result.exit_code == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: executor 'dask': Dask is not installed; {install_command('dask')}"], result.stderr


def test_dasks_chatter_stays_out_of_the_study_output(monkeypatch):
    """A worker's death printed Dask's "Restarting worker" and "Couldn't gather 1 keys" as
    warning lines, and a lost scheduler tornado's 50-line "Exception in callback": the study
    says what they cost in its own words. --debug (the root logger at DEBUG) keeps them."""
    from research_plugins.dask_executor import _quiet_dask_logs

    names = ("distributed", "distributed.client", "tornado.application")  # the client's has its own level
    for name in names:
        monkeypatch.setattr(logging.getLogger(name), "level", logging.WARNING)
    monkeypatch.setattr(logging.getLogger(), "level", logging.DEBUG)
    _quiet_dask_logs()
    assert [logging.getLogger(name).level for name in names] == [logging.WARNING] * 3
    monkeypatch.setattr(logging.getLogger(), "level", logging.WARNING)
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        _quiet_dask_logs()
        # A trial's state travels with its task: a model of some MiB made Dask warn, in 4 lines, each time.
        warnings.warn("Sending large graph of size 12.87 MiB.", UserWarning)
        warnings.warn("something else", UserWarning)
    assert [str(w.message) for w in shown] == ["something else"]
    assert [logging.getLogger(name).level for name in names] == [logging.ERROR, logging.ERROR, logging.CRITICAL]



def test_a_local_cluster_of_more_workers_than_the_machine_takes_is_refused_at_once(tmp_path):
    """--workers 1000000 started a million worker processes: over 10 minutes without a trial,
    the process at 3 GB. A local cluster starts at most 8 per core."""
    from research_plugins.executors import most_workers

    started = time.monotonic()
    result = cli("train", "--strategy", "caviar", "--store", tmp_path / "r.db", "--executor", "dask", "--workers",
                 "1000000", *TINY)
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: executor 'dask': a local Dask cluster starts its 1,000,000 worker processes at once, more than this "
        f"machine's {most_workers()} (8 per core); give --workers {most_workers()} or fewer, or --executor-opt "
        "address=... for a cluster of machines")
    assert time.monotonic() - started < 30
    assert not (tmp_path / "r.db").exists()  # refused before anything is stored (the executor's check)

"""The caviar strategy end to end: reproducible whatever the executor and the number of
workers, the ranked table and the plot, failed and diverged trials."""

import json
import re
import sys

import pytest

from tests.studyutil import TINY, cli, configs, curves, epochs_by_trial, kept_epochs, statuses
from tests.thirdparty import make_distribution

PNG = b"\x89PNG\r\n\x1a\n"

BOOM = '''
    """A third-party optimizer whose step always raises."""
    from research import hookimpl

    class Boom:
        def __init__(self, params, lr=0.01):
            self.params = params
            self.hyper = {"lr": float(lr)}

        def set(self, name, value):
            self.hyper[name] = float(value)

        def step(self, grads):
            raise RuntimeError("boom: this optimizer cannot step")

        def state(self):
            return {}

        def load_state(self, state):
            pass

    @hookimpl
    def register_optimizers(register):
        register("boom", Boom)
'''


def caviar(tmp_path, *args, store="research.db", study="s"):
    return cli("train", "--strategy", "caviar", "--study", study, "--store", tmp_path / store,
               "--plot", tmp_path / f"{study}-{store}.png", *TINY, *args)


def test_serial_and_process_executors_give_the_same_study(tmp_path, monkeypatch):
    """Same seed: same configurations and the same curves value for value, whether the
    trials run one by one in this process or two at a time in worker processes."""
    monkeypatch.chdir(tmp_path)
    serial = caviar(tmp_path, "--trials", "4", "--seed", "3", "--executor", "serial", store="serial.db")
    assert serial.exit_code == 0, serial.output
    pool = caviar(tmp_path, "--trials", "4", "--seed", "3", "--executor", "process", "--workers", "2",
                  "--json", store="pool.db")
    assert pool.exit_code == 0, pool.output

    assert statuses(tmp_path / "serial.db", "s") == {n: "finished" for n in range(4)}
    assert statuses(tmp_path / "pool.db", "s") == {n: "finished" for n in range(4)}
    assert configs(tmp_path / "serial.db", "s") == configs(tmp_path / "pool.db", "s")
    assert len({json.dumps(c, sort_keys=True) for c in configs(tmp_path / "pool.db", "s").values()}) == 4
    expected = curves(tmp_path / "serial.db", "s")
    assert all(len(rows) == 3 for rows in expected.values())
    assert curves(tmp_path / "pool.db", "s") == expected

    # The ranked table (text) and the ranking (JSON): best validation accuracy first.
    assert "study s: best first" in serial.stdout and "learning curves:" in serial.stdout
    result = json.loads(pool.stdout)
    best = [row["best_val_acc"] for row in result["trials"]]
    assert best == sorted(best, reverse=True) and len(best) == 4
    assert {row["number"] for row in result["trials"]} == set(range(4))
    table_order = [int(line.split("│")[2]) for line in serial.stdout.splitlines() if line[:1] == "│"]
    assert table_order == [row["number"] for row in result["trials"]]

    for name in ("s-serial.db.png", "s-pool.db.png"):
        picture = tmp_path / name
        data = picture.read_bytes()
        assert data[:8] == PNG and len(data) > 1000
    assert result["plot"] == str(tmp_path / "s-pool.db.png")
    # A finished study keeps no checkpoints to resume from, only the state of each trial's best epoch.
    assert kept_epochs(tmp_path / "pool-checkpoints") == {row["number"]: row["best_epoch"] for row in result["trials"]}


def test_a_value_only_the_model_rejects_is_refused_before_the_study_is_stored(tmp_path):
    """hidden=100000000 (declared valid, but a model beyond the size limit): the model is built
    for each value the space can draw, so the study stops before anything is stored, whichever
    order the choices come in (it used to fail the trials that drew it, one by one)."""
    with_reason = ("model 'mlp': hidden=100000000 with layers=2 (64 inputs, 10 classes) makes 10,000,007,800,000,010 "
                   "parameters, more than the limit of 2,147,483,648; lower --hidden or --layers")
    for choices in ("100000000,16", "16,100000000"):
        result = cli("train", "--strategy", "caviar", "--study", "s", "--store", tmp_path / "research.db", "--plot",
                     tmp_path / "s.png", "--epochs", "3", "--trials", "4", "--executor", "serial", "--sampler", "grid",
                     "--space", f"hidden={choices}")
        assert result.exit_code == 2, result.output
        assert " ".join(result.stderr.split()) == (f"error: the space's hidden={choices} draws values the model "
                                                    f"refuses: {with_reason}; change the space")
    assert not (tmp_path / "research.db").exists() or statuses(tmp_path / "research.db", "s") == {}


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A folder on the Python path for throwaway plugins; the working directory is the test's
    folder (a resume's picture, s-curves.png, went into the checkout)."""
    path = tmp_path / "site"
    monkeypatch.syspath_prepend(str(path))  # spawned workers get this sys.path too
    monkeypatch.chdir(tmp_path)
    yield path
    for name in [m for m in sys.modules if m.startswith("tp_")]:
        del sys.modules[name]


def test_a_plugin_that_raises_fails_its_trials_in_worker_processes(tmp_path, site):
    make_distribution(site, "tp-boom", "tp_boom", BOOM)
    result = caviar(tmp_path, "--trials", "4", "--executor", "process", "--workers", "2", "--sampler", "grid",
                    "--space", "optimizer=adam,boom", "--json")
    assert result.exit_code == 0, result.output
    from research.study.store import Store

    with Store(tmp_path / "research.db", create=False) as store:
        trials = store.trials(store.study("s"))
    assert [(t.config["optimizer"], t.status) for t in trials] == [
        ("adam", "finished"), ("boom", "failed"), ("adam", "finished"), ("boom", "failed")]
    boom = "plugin 'tp_boom': optimizer 'boom' failed in epoch 1: RuntimeError: boom: this optimizer cannot step"
    assert {t.error for t in trials if t.status == "failed"} == {boom}
    rows = {row["number"]: row for row in json.loads(result.stdout)["trials"]}
    assert rows[1]["error"] == boom and rows[1]["epochs"] == 0
    assert rows[0]["epochs"] == 3


@pytest.mark.parametrize("executor", ["serial", "process"])
def test_debug_shows_where_a_trial_failed_in_the_process_it_ran_in(tmp_path, site, executor):
    """`research --debug` promised tracebacks; a failed trial's stayed one line (its worker's
    traceback was dropped), and DEBUG records of every library (matplotlib's) flooded the
    terminal instead."""
    import os

    make_distribution(site, "tp-boom", "tp_boom", BOOM)
    args = ["train", "--strategy", "caviar", "--study", "s", "--store", tmp_path / "research.db", "--plot",
            tmp_path / "s.png", *TINY, "--trials", "1", "--optimizer", "boom", "--executor", executor,
            "--workers", "1"]
    plain = cli(*args[:4], "plain", *args[5:])
    assert "Traceback" not in plain.output
    debug = cli("--debug", *args)
    assert debug.exit_code == 1, debug.output  # every trial failed
    said = debug.stderr
    assert "trial 0 failed: plugin 'tp_boom': optimizer 'boom' failed in epoch 1: RuntimeError: boom" in said
    assert "Traceback (most recent call last)" in said and "in step" in said, said  # the plugin's frame
    assert "DEBUG" not in said and "findfont" not in said
    assert "RESEARCH_DEBUG" not in os.environ  # only while the command ran


def test_a_diverged_trial_is_stored_as_diverged(tmp_path):
    result = caviar(tmp_path, "--trials", "2", "--executor", "serial", "--optimizer", "sgd", "--no-batchnorm",
                    "--sampler", "grid", "--space", "lr=0.05,1e6")
    assert result.exit_code == 0, result.output
    assert statuses(tmp_path / "research.db", "s") == {0: "finished", 1: "diverged"}
    epochs = epochs_by_trial(tmp_path / "research.db", "s")
    assert epochs[0] == [1, 2, 3] and 1 <= len(epochs[1]) <= 3


def test_a_study_where_every_trial_diverges_exits_1(tmp_path):
    result = caviar(tmp_path, "--trials", "2", "--executor", "serial", "--optimizer", "sgd", "--no-batchnorm",
                    "--space", "lr=log:1e5..1e6")
    assert result.exit_code == 1, result.output
    assert statuses(tmp_path / "research.db", "s") == {0: "diverged", 1: "diverged"}
    assert result.stderr.strip().splitlines()[-1].startswith("error: every trial failed or diverged")
    assert "research show s" in result.stderr


FLAKY = '''
    """A third-party SGD whose step raises while RESEARCH_TEST_BROKEN is set: a cause outside
    the trial (a broken plugin version, a machine) that is later fixed."""
    import os

    from research import hookimpl
    from research.nn.optimizer import Optimizer

    class Flaky(Optimizer):
        def __init__(self, params, lr=0.05):
            super().__init__(params, lr=lr)

        def step(self, grads):
            if os.environ.get("RESEARCH_TEST_BROKEN"):
                raise RuntimeError("flaky: broken for now")
            for param, grad in zip(self.params, grads):
                param -= self.hyper["lr"] * grad

    @hookimpl
    def register_optimizers(register):
        register("flaky", Flaky)
'''


def test_trials_that_fail_alike_show_their_error_once(tmp_path, site, monkeypatch):
    """A mistake that fails every trial printed its message (a program's traceback too) once per
    trial, as the study ran and again in `research show`."""
    make_distribution(site, "tp-flaky", "tp_flaky", FLAKY)
    monkeypatch.setenv("RESEARCH_TEST_BROKEN", "1")
    result = caviar(tmp_path, "--trials", "3", "--epochs", "2", "--executor", "serial", "--optimizer", "flaky",
                    "--space", "lr=log:0.01..0.1")
    assert result.exit_code == 1, result.output
    said = " ".join(result.stderr.split())
    assert said.count("RuntimeError: flaky: broken for now") == 1, result.stderr
    assert len(re.findall(r"trial \d failed: the same as trial \d", said)) == 2, said  # the first to fail says it
    shown = " ".join(cli("show", "s", "--store", tmp_path / "research.db").stdout.split())
    assert shown.count("RuntimeError: flaky: broken for now") == 1, shown
    assert "trial 1 failed: the same as trial 0" in shown and "trial 2 failed: the same as trial 0" in shown


def test_failures_alike_but_for_their_programs_stderr_are_said_once():
    """A program that printed its lr to stderr repeated its whole tail for every trial that
    failed alike: alike is the same first line."""
    from research.cli.display import said_once

    seen: dict = {}
    tail = "the command exited with status 1 after epoch 2: boom\n  lr={}\n  ValueError: boom"
    assert said_once(seen, 0, tail.format(0.1)) == tail.format(0.1)
    assert said_once(seen, 1, tail.format(0.1)) == "the same as trial 0"
    assert said_once(seen, 2, tail.format(0.2)) == ("the command exited with status 1 after epoch 2: boom (as trial 0; "
                                                    "its other lines differ: `research show --json` has them)")
    assert said_once(seen, 3, "another failure") == "another failure"


def test_retry_failed_resumes_failed_trials_from_their_checkpoints_to_the_uninterrupted_curves(
        tmp_path, site, monkeypatch):
    """A resume while a plugin is broken fails every trial, the half-trained ones too; once it
    is fixed, `resume --retry-failed` continues them from the checkpoints they kept and starts
    the others, and the study comes out as if nothing had happened."""
    make_distribution(site, "tp-flaky", "tp_flaky", FLAKY)
    args = ["--trials", "3", "--epochs", "6", "--executor", "serial", "--workers", "1", "--optimizer", "flaky",
            "--seed", "5", "--space", "lr=log:0.01..0.1"]
    reference = caviar(tmp_path, *args, store="reference.db")
    assert reference.exit_code == 0, reference.output

    first = caviar(tmp_path, *args, "--max-epochs", "8")  # trial 0 finishes, trial 1 stops at epoch 2
    assert first.exit_code == 0, first.output
    assert statuses(tmp_path / "research.db", "s") == {0: "finished", 1: "interrupted"}
    monkeypatch.setenv("RESEARCH_TEST_BROKEN", "1")
    broken = cli("resume", "s", "--store", tmp_path / "research.db", "--max-epochs", "100")
    assert broken.exit_code == 0, broken.output
    assert ("trial 1 failed: plugin 'tp_flaky': optimizer 'flaky' failed in epoch 3: RuntimeError: flaky: broken "
            "for now") in " ".join(broken.stderr.split())  # the console wraps long lines
    assert statuses(tmp_path / "research.db", "s") == {0: "finished", 1: "failed", 2: "failed"}
    assert (tmp_path / "research-checkpoints").exists()
    said = " ".join(broken.stdout.split())  # below the table: why each failed, and what goes on from there
    assert "trial 2 failed: plugin 'tp_flaky': optimizer 'flaky' failed in epoch 1" in said
    assert (f"once the cause is fixed, `research resume s --store {tmp_path / 'research.db'} --retry-failed` "
            "continues the failed trials") in said

    monkeypatch.delenv("RESEARCH_TEST_BROKEN")
    plain = cli("resume", "s", "--store", tmp_path / "research.db")
    assert plain.exit_code == 0, plain.output  # failed trials stay failed without the flag
    assert statuses(tmp_path / "research.db", "s") == {0: "finished", 1: "failed", 2: "failed"}
    retried = cli("resume", "s", "--store", tmp_path / "research.db", "--retry-failed")
    assert retried.exit_code == 0, retried.output
    assert "retrying failed trials 1, 2" in retried.stderr
    assert statuses(tmp_path / "research.db", "s") == {n: "finished" for n in range(3)}
    assert curves(tmp_path / "research.db", "s") == curves(tmp_path / "reference.db", "s")
    again = cli("resume", "s", "--store", tmp_path / "research.db", "--retry-failed")
    assert again.exit_code == 0 and "no failed trial to retry" in again.stderr, again.output


BROKEN_PARTS = '''
    """Plugin code that fails as an epoch trains, one part at a time."""
    from research import hookimpl
    from research.nn.optimizer import Optimizer

    class Negative:
        options = {}

        def lr(self, base_lr, epoch):
            return -1.0

    class Crashing:
        options = {}

        def lr(self, base_lr, epoch):
            return {}["missing"]

    class Dividing(Optimizer):
        def __init__(self, params, lr=0.01):
            super().__init__(params, lr=lr)

        def step(self, grads):
            return 1 / 0

    @hookimpl
    def register_schedules(register):
        register("negative", Negative)
        register("crashing", Crashing)

    @hookimpl
    def register_optimizers(register):
        register("dividing", Dividing)
'''


@pytest.mark.parametrize("flags, message", [
    (["--schedule", "negative"],
     "plugin 'tp_parts': schedule 'negative' returned the rate -1.0 for epoch 1, not a finite number > 0"),
    (["--schedule", "crashing"], "plugin 'tp_parts': schedule 'crashing' failed in epoch 1: KeyError: 'missing'"),
    (["--optimizer", "dividing"],
     "plugin 'tp_parts': optimizer 'dividing' failed in epoch 1: ZeroDivisionError: division by zero"),
])
def test_plugin_code_failing_as_an_epoch_trains_is_named_with_its_plugin(tmp_path, site, flags, message):
    """The lone run says whose bug it is (exit 1); a study's trial fails with the same line."""
    make_distribution(site, "tp-parts", "tp_parts", BROKEN_PARTS)
    lone = cli("train", *flags, *TINY)
    assert lone.exit_code == 1, lone.output
    assert lone.stderr.strip().splitlines()[-1] == (
        f"error: {message} (a bug in that plugin: `research --debug ...` shows the traceback for its authors)")
    study = caviar(tmp_path, "--trials", "1", "--executor", "serial", *flags)
    assert study.exit_code == 1, study.output
    from research.study.store import Store

    with Store(tmp_path / "research.db", create=False) as store:
        [trial] = store.trials(store.study("s"))
    assert (trial.status, trial.error) == ("failed", message)


@pytest.mark.parametrize("flags, message", [
    (["--hidden", "100000000"], "error: model 'mlp': hidden=100000000 with layers=2 (64 inputs, 10 classes) makes "),
    (["--model", "cnn", "--dataset", "moons"], "error: model 'cnn': input_shape must be (channels, height, width), "),
    (["--trainer-opt", "x=1"], "error: trainer 'research': unknown option 'x'; it takes no options"),
])
def test_a_fixed_value_only_the_model_refuses_stops_the_study_before_it_starts(tmp_path, flags, message):
    result = cli("train", "--strategy", "caviar", "--store", tmp_path / "research.db", "--trials", "2", "--epochs", "1",
                 "--executor", "serial", *flags)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(message) and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "research.db").exists()


def test_a_new_study_drops_the_checkpoints_a_deleted_store_left_in_one_line(tmp_path):
    """Each trial's leftover file got a warning line of its own (32 for the default study)."""
    first = caviar(tmp_path, "--trials", "3", "--executor", "serial")
    assert first.exit_code == 0, first.output
    (tmp_path / "research.db").unlink()
    again = caviar(tmp_path, "--trials", "3", "--executor", "serial")
    assert again.exit_code == 0, again.output
    warnings = [line for line in again.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "checkpoint files of no trial of study 's' (its store was replaced?); they are " \
        "removed" in " ".join(again.stderr.split()), again.stderr
    assert statuses(tmp_path / "research.db", "s") == {0: "finished", 1: "finished", 2: "finished"}

"""Trainer plugins: the unit a strategy drives. The built-in research trainer is one; a
researcher's own training loop, a small class named by its import path, trains through a
lone run, caviar with process workers (resumed exactly after a kill) and babysit."""

from __future__ import annotations

import json
import sys
import textwrap
from typing import Annotated

import numpy as np
import pytest
from typer.testing import CliRunner

import research
from research.cli import app
from research.errors import UsageError
from research.options import Option
from research.plugins import load_plugins
from research.study.trainer import Driven, make_trainer
from tests.studyutil import curves

runner = CliRunner()

OWN_LOOP = '''
    """A researcher's own loop: logistic regression on two Gaussian blobs, plain numpy."""
    import numpy as np


    class Blobs:
        """research's Python trainer protocol: built from the trial's configuration; one more
        epoch per train_epoch(); its state as arrays; lr may change between epochs."""

        def __init__(self, config):
            rng = np.random.default_rng(config.get("seed", 0))
            self.x = np.concatenate([rng.normal(-1, 1, (100, 2)), rng.normal(1, 1, (100, 2))])
            self.y = np.repeat([0.0, 1.0], 100)
            self.w = np.zeros(2)
            self.lr = float(config.get("lr", 0.1))
            self.rng = rng

        def train_epoch(self):
            order = self.rng.permutation(len(self.y))
            for i in order:
                p = 1 / (1 + np.exp(-self.x[i] @ self.w))
                self.w -= self.lr * (p - self.y[i]) * self.x[i]
            p = 1 / (1 + np.exp(-self.x @ self.w))
            loss = float(-np.mean(self.y * np.log(p + 1e-12) + (1 - self.y) * np.log(1 - p + 1e-12)))
            return {"val_loss": loss, "val_acc": float(np.mean((p > 0.5) == self.y)), "margin": float(abs(self.w).sum())}

        def state(self):
            return {"w": self.w.copy(), "rng": np.array(json.dumps(self.rng.bit_generator.state))}

        def load_state(self, state):
            self.w[:] = state["w"]
            self.rng.bit_generator.state = json.loads(str(state["rng"][()]))

        def tunable(self):
            return {"lr": self.lr}

        def set_hyper(self, name, value):
            if name != "lr":
                raise ValueError(f"cannot change {name}")
            self.lr = float(value)


    import json
'''


@pytest.fixture
def own_loop(tmp_path, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    (site / "my_loop.py").write_text(textwrap.dedent(OWN_LOOP))
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("PYTHONPATH", str(site))  # for the process pool's workers
    monkeypatch.chdir(tmp_path)
    yield "my_loop:Blobs"
    sys.modules.pop("my_loop", None)


def test_a_loop_edited_between_runs_of_a_study_is_said_when_it_goes_on(own_loop, tmp_path):
    """Only data files were digested: a study resumed after its loop was edited mixed two
    versions of it in silence (fixing a bug and going on is allowed: it is said, not refused)."""
    args = ["train", "--strategy", "caviar", "--trainer", own_loop, "--study", "s", "--trials", "2", "--epochs", "2",
            "--executor", "serial", "--space", "lr=log:0.01..0.1", "--store", str(tmp_path / "r.db")]
    first = runner.invoke(app, [*args, "--max-epochs", "2"])
    assert first.exit_code == 0, first.output
    same = runner.invoke(app, ["resume", "s", "--store", str(tmp_path / "r.db"), "--max-epochs", "3"])
    assert same.exit_code == 0 and "changed since" not in same.stderr, same.output
    loop = tmp_path / "site" / "my_loop.py"
    loop.write_text(loop.read_text() + "# a fix\n")
    edited = runner.invoke(app, ["resume", "s", "--store", str(tmp_path / "r.db")])
    assert edited.exit_code == 0, edited.output
    assert "warning: my_loop.py changed since the study's last run: the epochs it trains from here on run the new " \
           "version" in edited.stderr
    shown = runner.invoke(app, ["show", "s", "--store", str(tmp_path / "r.db")])
    assert "my_loop.py sha256 " in " ".join(shown.output.split())


def test_the_research_trainer_is_a_plugin():
    plugins = load_plugins()
    assert "research" in plugins.names("trainers")
    trainer = make_trainer({"epochs": 2, "hidden": 8}, plugins)
    assert not isinstance(trainer, Driven) and trainer.epochs == 2


def test_a_class_named_by_its_import_path_trains_a_lone_run(own_loop):
    result = research.train({"trainer": own_loop, "epochs": 5, "lr": 0.05, "seed": 3})
    assert result.status == "finished" and len(result.history) == 5
    assert result.history[-1]["val_acc"] > 0.8 and "margin" in result.history[-1]


def test_its_state_round_trips_to_the_same_continuation(own_loop, tmp_path):
    plugins = load_plugins()
    config = {"trainer": own_loop, "epochs": 4, "lr": 0.05}
    straight = make_trainer(config, plugins)
    whole = [straight.train_epoch() for _ in range(4)]
    first = make_trainer(config, plugins)
    first.train_epoch(), first.train_epoch()
    first.save(tmp_path / "half.npz")
    second = make_trainer(config, plugins)
    second.restore(tmp_path / "half.npz")
    assert second.epoch == 2 and second.history == whole[:2]
    assert [second.train_epoch() for _ in range(2)] == whole[2:]


def test_caviar_with_process_workers_and_a_custom_metric(own_loop, tmp_path):
    result = runner.invoke(app, ["train", "--strategy", "caviar", "--trainer", own_loop, "--trials", "4",
                                 "--workers", "2", "--epochs", "3", "--space", "lr=log:0.001..0.5",
                                 "--metric", "margin", "--direction", "maximize", "--json"])
    assert result.exit_code == 0, result.output
    trials = json.loads(result.stdout)["trials"]
    assert [t["status"] for t in trials] == ["finished"] * 4
    margins = [t["best_margin"] for t in trials]
    assert margins == sorted(margins, reverse=True)
    stored = curves(tmp_path / "research.db", "caviar-1")
    assert sorted(len(c) for c in stored.values()) == [3, 3, 3, 3]


def test_babysit_changes_the_loops_lr(own_loop):
    result = runner.invoke(app, ["train", "--strategy", "babysit", "--trainer", own_loop,
                                 "--segment-epochs", "1", "--segments", "4", "--policy", "none", "--interactive",
                                 "--json"], input="set lr=0.01\ncontinue\ncontinue\ncontinue\n")
    assert result.exit_code == 0, result.output
    log = json.loads(runner.invoke(app, ["log", "babysit-1", "--json"]).stdout)["events"]
    change = next(e["data"] for e in log if e["kind"] == "change")
    assert (change["name"], change["new"]) == ("lr", 0.01)


def test_mistakes_in_a_trainer_are_one_line(own_loop):
    with pytest.raises(UsageError, match=r"cannot import trainer 'my_loop:Nope' \(AttributeError"):
        research.train({"trainer": "my_loop:Nope"})

    class Bad:
        def __init__(self, config):
            pass

        def train_epoch(self):
            return {"val_acc": "high"}

        def state(self):
            return {}

        def load_state(self, state):
            pass

    class Plugin:
        @research.hookimpl
        def register_trainers(self, register):
            register("bad", Bad)

    with pytest.raises(UsageError, match=r"trainer 'bad': metric 'val_acc' must be a number, got 'high'"):
        research.train({"trainer": "bad", "epochs": 1}, plugins=[Plugin()])
    Bad.train_epoch = lambda self: {"val_acc": 10 ** 400}  # its 401 digits were all printed
    with pytest.raises(UsageError, match=r"^trainer 'bad': metric 'val_acc' must be a number, got 10+\.\.\.0+ \(an "
                                         r"integer of 401 digits, beyond what a float holds\)$"):
        research.train({"trainer": "bad", "epochs": 1}, plugins=[Plugin()])
    Bad.train_epoch = lambda self: {"val_acc": 0.5, "epoch": 3}  # exported as every row's epoch
    with pytest.raises(UsageError, match=r"^trainer 'bad': metric 'epoch' has the name of an epoch's own column in "
                                         r"the store and its exports \(epoch, trial, status, rolled_back\); report"):
        research.train({"trainer": "bad", "epochs": 1}, plugins=[Plugin()])
    Bad.train_epoch = lambda self: {}  # "must return a dict of metrics, got {}": a dict it was
    with pytest.raises(UsageError, match=r"^trainer 'bad': train_epoch must return a dict of metrics by name, such as "
                                         r"\{'val_acc': 0\.9\}, got an empty dict$"):
        research.train({"trainer": "bad", "epochs": 1}, plugins=[Plugin()])
    Bad.train_epoch = lambda self: {3: 1.0}  # "metric 3 must be a number, got 1.0"
    with pytest.raises(UsageError, match=r"^trainer 'bad': train_epoch returned a metric named 3; name each metric "
                                         r"with a string, such as 'val_acc'$"):
        research.train({"trainer": "bad", "epochs": 1}, plugins=[Plugin()])
    Bad.train_epoch = lambda self: {"val_acc": np.float32(0.5), "val_loss": np.float64(1.0), "seen": np.int64(7)}
    result = research.train({"trainer": "bad", "epochs": 1}, plugins=[Plugin()])
    assert result.history == [{"val_acc": 0.5, "val_loss": 1.0, "seen": 7.0}]  # numpy's scalars are numbers
    result = runner.invoke(app, ["train", "--trainer", "nope"])
    assert result.exit_code == 2
    assert "unknown trainer 'nope'; choose one of: command, research, or a class by its import path" in result.stderr
    assert np.isfinite(0.0)


def test_a_state_that_needs_pickled_objects_is_refused_when_saved(tmp_path):
    """Not when a resume cannot read the checkpoint: the trainer and the entry are named at once."""
    from research.study.trainer import Driven

    class Holding:
        def train_epoch(self):
            return {"val_loss": 1.0}

        def state(self):
            return {"w": np.zeros(2), "obj": object()}

    driven = Driven(Holding(), {"trainer": "holding", "epochs": 1}, "tests")
    driven.train_epoch()
    with pytest.raises(UsageError, match=r"^trainer 'holding': state\(\) entry 'obj' \(object\) is not an array of "):
        driven.save(tmp_path / "c.npz")
    assert not (tmp_path / "c.npz").exists()
    Holding.state = lambda self: [np.zeros(2)]
    with pytest.raises(UsageError, match=r"^trainer 'holding': state\(\) must return a dict of arrays, got list$"):
        driven.save(tmp_path / "c.npz")


def test_an_own_trainer_that_raises_is_named_with_its_plugin_and_the_epoch():
    """A bug in a trainer of one's own is reported as that plugin's, not as research's."""
    from research.errors import PluginFailure
    from research.study.trainer import Driven

    class Failing:
        calls = 0

        def train_epoch(self):
            self.calls += 1
            if self.calls == 2:
                raise IndexError("list index out of range")
            return {"val_loss": 1.0}

    driven = Driven(Failing(), {"trainer": "failing", "epochs": 3}, "my_plugin")
    driven.train_epoch()
    with pytest.raises(PluginFailure, match=r"^plugin 'my_plugin': trainer 'failing' failed in epoch 2: "
                                            r"IndexError: list index out of range$") as raised:
        driven.train_epoch()
    assert isinstance(raised.value.__cause__, IndexError)
    assert driven.epoch == 1 and len(driven.history) == 1


class Stateless:
    """A trainer without state()/load_state(): no trial of it could be checkpointed."""

    def __init__(self, config):
        self.config = config

    def train_epoch(self):
        return {"val_acc": 0.5}


def test_a_trainer_class_without_a_contract_method_is_refused_before_a_study_is_stored(tmp_path):
    """Each trial failed on it, with "returned a Trainer, not a Trainer" (the user's class
    was named Trainer too)."""
    from research.errors import PluginFailure
    from research.study import StudySettings, open_study
    from research.study.store import Store

    settings = StudySettings(strategy="caviar", base={"trainer": f"{__name__}:Stateless", "epochs": 1}, space={},
                             trials=2)
    with Store(tmp_path / "r.db") as store:
        with pytest.raises(PluginFailure, match=rf"trainer '{__name__}:Stateless' is the class {__name__}\.Stateless "
                                                r"without state, load_state; every trainer has what "
                                                r"research\.contracts\.Trainer lists$"):
            open_study(store, "s", settings, load_plugins(), executor="serial")
        assert store.studies() == []
    with pytest.raises(PluginFailure, match=rf"returned a {__name__}\.Stateless without state, load_state"):
        make_trainer({"trainer": f"{__name__}:Stateless", "epochs": 1}, load_plugins())


class NaNAccuracy(Stateless):
    """Reports a NaN accuracy (stored as no value), or a NaN then a real one."""

    def __init__(self, config):
        super().__init__(config)
        self.epoch = 0

    def train_epoch(self):
        self.epoch += 1
        return {"val_acc": 0.7 if self.epoch == 2 and self.config.get("seed") == 1 else float("nan"),
                "val_loss": 1.0}

    def state(self):
        return {}

    def load_state(self, state):
        pass


@pytest.mark.parametrize("seed, says", [(0, "finished: best val acc none (every value was NaN or infinite)"),
                                        (1, "finished: best val acc 0.7000")])
def test_a_lone_run_summary_takes_a_nan_metric_as_no_value(seed, says):
    """It said "best val acc nan", and a NaN before a real value hid it (max of NaN first)."""
    result = runner.invoke(app, ["train", "--trainer", f"{__name__}:NaNAccuracy", "--epochs", "3", "--seed", str(seed)])
    assert result.exit_code == 0, result.output
    assert says in result.stdout


class Decaying:
    """plugins.md's Decay: the loss kept per epoch is an option, ``rate``."""

    metrics = ("val_loss",)

    def __init__(self, config, *, rate: Annotated[float, Option("Loss kept per epoch", above=0, below=1)] = 0.5):
        self.loss, self.rate = 1.0, rate

    def train_epoch(self):
        self.loss *= self.rate
        return {"val_loss": self.loss}

    def state(self):
        return {"loss": np.array(self.loss)}

    def load_state(self, state):
        self.loss = float(state["loss"])


class NeedsDepth(Decaying):
    """Decaying with a required option that declares a flag."""

    def __init__(self, config, *, depth: Annotated[int, Option("Layers", min=1, flag="--depth")]):
        super().__init__(config)


def test_a_required_option_of_a_trainer_named_by_its_path_is_asked_for_by_its_name_value_flag():
    """"give it with --depth": a trainer named by its import path has no flags, so that failed
    with "No such option: --depth"."""
    result = runner.invoke(app, ["train", "--trainer", f"{__name__}:NeedsDepth", "--epochs", "1"])
    assert result.exit_code == 2
    assert result.stderr.strip().endswith("which has no default; give it with --trainer-opt depth=... (from Python: "
                                          "trainer_options={'depth': ...})")
    assert runner.invoke(app, ["train", "--trainer", f"{__name__}:NeedsDepth", "--epochs", "1", "--trainer-opt",
                               "depth=2", "--metric", "val_loss"]).exit_code == 0


class FailsAtThree(Decaying):
    """Decaying, until its third epoch raises (a loop's bug)."""

    def train_epoch(self):
        if self.loss < 0.3:
            raise RuntimeError("out of batches")
        return super().train_epoch()


@pytest.mark.parametrize("as_json", [False, True])
def test_a_lone_run_whose_trainer_fails_shows_the_epochs_it_finished(as_json):
    """stdout was empty, with or without --json: without --checkpoint the two epochs it trained
    were kept nowhere (an interrupted run showed them)."""
    result = runner.invoke(app, ["train", "--trainer", f"{__name__}:FailsAtThree", "--epochs", "5", "--metric",
                                 "val_loss", *(["--json"] if as_json else [])])
    assert result.exit_code == 1, result.output
    assert "failed in epoch 3: RuntimeError: out of batches (a bug in that plugin" in result.stderr
    if as_json:
        shown = json.loads(result.stdout)
        assert shown["status"] == "failed" and "out of batches" in shown["error"]
        assert [epoch["val_loss"] for epoch in shown["history"]] == [0.5, 0.25]
    else:
        assert "0.2500" in result.stdout and "0.5000" in result.stdout


def test_a_trainer_option_is_searched_by_name(tmp_path):
    """`--space rate=0.3,0.6` trained every trial with the default 0.5, while the table showed
    the drawn rates."""
    from research.study import StudySettings, open_study
    from research.study.store import Store

    plugins = load_plugins()
    base = {"trainer": f"{__name__}:Decaying", "epochs": 2}
    settings = StudySettings(strategy="caviar", base=base, space={"rate": "0.3,0.6"}, trials=4, sampler="grid",
                             metric="val_loss")
    with Store(tmp_path / "r.db") as store:
        study = open_study(store, "s", settings, plugins, executor="serial")
        study.run(plugins.build("strategies", "caviar"))
        finals = {t.config["rate"]: store.curve(t)[-1]["val_loss"] for t in store.trials(study.record)}
        assert finals == pytest.approx({0.3: 0.09, 0.6: 0.36})
        bad = [({"rate": "0.3,1.5"}, base, r"^the space's rate=0\.3,1\.5 draws values it cannot take: trainer "),
               ({"rate": "0.3,0.6"}, {**base, "trainer_options": {"rate": 0.2}},
                r"^rate is both a trainer option \(rate=0\.2\) and searched \(rate=0\.3,0\.6\); drop one$")]
        for space, fixed, says in bad:
            with pytest.raises(UsageError, match=says):
                open_study(store, "t", StudySettings(strategy="caviar", base=fixed, space=space, trials=2), plugins)
        assert [s.name for s in store.studies()] == ["s"]
    assert research.train(trainer=f"{__name__}:Decaying", rate=0.25, epochs=2).history[-1]["val_loss"] == 0.0625


EXITING = '''
    import argparse
    import sys

    from my_loop import Blobs


    class Exits(Blobs):
        """Calls sys.exit in its second epoch (its weights have moved), as a script's loop may."""

        def train_epoch(self):
            if self.w.any():
                sys.exit(3)
            return super().train_epoch()


    class ParsesArgs(Blobs):
        """Reads the command line with argparse, which exits on research's own arguments (given
        here: the test runner's command line is another)."""

        def __init__(self, config):
            argparse.ArgumentParser().parse_args(["train", "--epochs", "2"])
            super().__init__(config)
'''


def test_a_loop_that_exits_fails_its_trial_in_one_line_instead_of_ending_the_study(own_loop, tmp_path):
    """sys.exit in a loop (argparse's parse_args reading research's command line) ended the whole
    study with its exit code and no message, its trials marked interrupted as after Ctrl-C."""
    (tmp_path / "site" / "exiting.py").write_text(textwrap.dedent(EXITING))
    study = runner.invoke(app, ["train", "--strategy", "caviar", "--trainer", "exiting:Exits", "--trials", "2",
                                "--workers", "2", "--epochs", "3", "--space", "lr=log:0.001..0.5", "--json"])
    assert study.exit_code == 1, study.output  # every trial failed
    trials = json.loads(study.stdout)["trials"]
    assert [t["status"] for t in trials] == ["failed", "failed"]
    shown = json.loads(runner.invoke(app, ["show", "caviar-1", "--json"]).stdout)
    errors = {t["error"] for t in shown["trials"]}
    assert errors == {"plugin 'exiting': trainer 'exiting:Exits' failed in epoch 2: it called sys.exit(3); code "
                      "research runs must raise an exception instead (argparse's parse_args() reads research's own "
                      "command line: pass it the arguments)"}
    alone = runner.invoke(app, ["train", "--trainer", "exiting:ParsesArgs", "--epochs", "2"])
    assert alone.exit_code == 1
    assert "error: plugin 'exiting' failed building trainer 'exiting:ParsesArgs': it called sys.exit(2)" in alone.stderr


@pytest.mark.parametrize("raised, code, says", [
    (RuntimeError("bug in my load_state"), 1, "plugin 'my_loop': trainer 'my_loop:Broken' failed in load_state: "
                                              "RuntimeError: bug in my load_state"),
    (KeyError("missing key in my load_state"), 1, "plugin 'my_loop': trainer 'my_loop:Broken' failed in "
                                                  "load_state: KeyError: 'missing key in my load_state'"),
    (ValueError("shape (3,) is not (2,)"), 2, "checkpoint c.npz does not fit this run (shape (3,) is not (2,)); use "
                                              "the options it was written with, or delete it"),
])
def test_what_a_loops_load_state_raises_is_named_as_its_own(own_loop, raised, code, says):
    """A RuntimeError in one's own load_state was "this is a bug, not a mistake of yours" (of
    research), a KeyError "does not fit this run ... delete it" (a valid checkpoint); a
    ValueError still says the checkpoint does not fit."""
    import my_loop

    class Broken(my_loop.Blobs):
        def load_state(self, state):
            raise raised

    my_loop.Broken = Broken
    done = runner.invoke(app, ["train", "--trainer", "my_loop:Broken", "--epochs", "1", "--checkpoint", "c.npz"])
    assert done.exit_code == 0, done.output
    again = runner.invoke(app, ["train", "--trainer", "my_loop:Broken", "--epochs", "2", "--checkpoint", "c.npz"])
    assert again.exit_code == code
    assert again.stderr.strip().splitlines()[-1].startswith(f"error: {says}"), again.stderr

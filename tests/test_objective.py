"""A study's objective: any metric of the curve, either direction, used by ranking, scores for
samplers, pruning, babysit's policy and the reports."""

from __future__ import annotations

import json
import sys

import pytest
from research_plugins.pruners import Median
from typer.testing import CliRunner

from research.cli import app
from research.errors import UsageError
from research.plugins import load_plugins
from research.report import ranked
from research.study import StudySettings, open_study
from research.study.objective import Objective
from research.study.store import Store
from tests.thirdparty import make_distribution

runner = CliRunner()
LOSSES = {0: [0.9, 0.5, 0.4], 1: [0.8, 0.7, 0.6], 2: [1.0, 0.3, 0.35]}  # best: trial 2 (0.3), then 0, then 1


@pytest.mark.parametrize("metric, direction", [
    ("val_loss", "minimize"), ("valloss", "minimize"), ("train_error", "minimize"), ("top1_err", "minimize"),
    ("error_rate", "minimize"), ("val_mse", "minimize"), ("val_ce", "minimize"), ("perplexity", "minimize"),
    ("val_acc", "maximize"), ("val_f1", "maximize"), ("lossless_acc", "maximize"), ("recall", "maximize"),
    ("errors", "minimize"), ("numerrors", "minimize"), ("val_losses", "minimize"), ("costs", "minimize"),  # plurals
    ("travel_costs", "minimize"), ("n_errors", "minimize"),
])
def test_a_loss_or_an_error_is_minimized_by_default_whatever_its_name(metric, direction):
    """top1_err, error_rate, val_mse were maximized: the worst trial ranked first, in silence."""
    assert Objective.make(metric, known=None).direction == direction


def test_defaults_and_checks():
    assert Objective.make() == Objective("val_acc", "maximize")
    assert Objective.make("val_loss") == Objective("val_loss", "minimize")
    assert Objective.make("train_acc", "minimize").sign == -1.0
    with pytest.raises(UsageError, match="unknown metric 'accuracy'; choose one of: val_acc"):
        Objective.make("accuracy")
    with pytest.raises(UsageError, match="direction must be maximize or minimize, got 'up'"):
        Objective.make("val_acc", "up")
    loss = Objective.make("val_loss")
    assert loss.best([0.5, None, float("nan"), 0.4]) == 0.4
    assert loss.better(0.3, 0.4) and not loss.better(0.5, 0.4) and loss.better(0.9, None)
    assert loss.key(0.25) == -0.25 and loss.key(float("inf")) is None


@pytest.fixture
def loss_study(tmp_path):
    settings = StudySettings(strategy="caviar", base={"epochs": 3}, space={"lr": "log:1e-4..1"}, trials=3,
                             metric="val_loss", direction="minimize")
    store = Store(tmp_path / "r.db")
    study = open_study(store, "loss", settings, load_plugins(), executor="serial")
    for number, curve in LOSSES.items():
        trial = store.add_trial(study.record, number, {"lr": 0.01}, 0)
        for epoch, loss in enumerate(curve, start=1):
            store.add_epoch(trial, epoch, {"val_loss": loss, "val_acc": 0.5, "train_loss": 1.0, "train_acc": 0.5})
        store.set_status(trial, "finished")
    yield store, study
    store.close()


def test_a_minimized_loss_ranks_and_scores_trials(loss_study):
    store, study = loss_study
    rows = ranked(store, study.record)
    assert [r["number"] for r in rows] == [2, 0, 1]
    assert [r["best_val_loss"] for r in rows] == [0.3, 0.4, 0.6] and [r["best_epoch"] for r in rows] == [2, 3, 3]
    assert study.scores() == {0: -0.4, 1: -0.6, 2: -0.3}  # higher is better for samplers
    history = study.history(3, load_plugins().build("samplers", "coarse-to-fine", round_size=3))
    assert [t.number for t in history.finished()] == [2, 0, 1]


def test_the_median_rule_on_losses_by_hand():
    """At epoch 2 the others' losses are 0.5 and 0.3: median 0.4. A trial at 0.7 is worse
    (pruned); at 0.35 it is better (kept). The pruner sees higher-is-better scores."""
    loss = Objective.make("val_loss")
    others = {n: [loss.key(v) for v in LOSSES[n][:2]] for n in (0, 2)}
    median = Median(warmup_epochs=1, min_trials=2)
    worse = median.prune(7, 2, {**others, 7: [loss.key(0.9), loss.key(0.7)]}, max_epochs=3)
    assert worse is not None and "median" in worse
    assert median.prune(7, 2, {**others, 7: [loss.key(0.9), loss.key(0.35)]}, max_epochs=3) is None


RECORDING_PRUNER = """
    import json
    from research import hookimpl

    class Recording:
        \"\"\"Prunes nothing; writes the curves it is shown to seen.json.\"\"\"

        def prune(self, number, epoch, curves, max_epochs):
            with open("seen.json", "w") as file:
                json.dump({str(n): list(c) for n, c in curves.items()}, file)

    @hookimpl
    def register_pruners(register):
        register("recording", Recording)
"""


def test_the_command_line_optimizes_and_shows_the_chosen_metric(tmp_path, monkeypatch):
    site = tmp_path / "site"
    make_distribution(site, "tp-recording", "tp_recording", RECORDING_PRUNER)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["train", "--strategy", "caviar", "--trials", "3", "--epochs", "2", "--hidden", "8",
                                 "--executor", "serial", "--metric", "val_loss", "--prune", "recording", "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["trials"]
    losses = [r["best_val_loss"] for r in rows]
    assert losses == sorted(losses)
    with Store("research.db", create=False) as store:
        study = store.study("caviar-1")
        assert (study.settings["metric"], study.settings["direction"]) == ("val_loss", "minimize")
        stored = {n: [row["val_loss"] for row in curve] for n, curve in store.curves(study).items()}
    seen = json.loads((tmp_path / "seen.json").read_text())
    assert seen and all(curve == [-v for v in stored[int(n)][:len(curve)]] for n, curve in seen.items())
    shown = runner.invoke(app, ["show", "caviar-1"])
    assert "best val loss" in shown.stdout
    listing = json.loads(runner.invoke(app, ["studies", "--json"]).stdout)["studies"][0]
    assert listing["metric"] == "val_loss" and listing["best"] == losses[0]
    sys.modules.pop("tp_recording", None)


def test_a_bad_metric_is_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["train", "--strategy", "caviar", "--metric", "accuracy"])
    assert result.exit_code == 2
    assert result.stderr.strip().startswith("error: unknown metric 'accuracy'; choose one of: val_acc")
    for column, what in (("lr", "the learning rate each epoch trained with"), ("seconds", "the time each epoch took")):
        ranked_by_it = runner.invoke(app, ["train", "--strategy", "caviar", "--metric", column])  # it ranked trials by lr
        assert ranked_by_it.exit_code == 2 and f"cannot optimize '{column}': it is {what}, not a result" in \
            ranked_by_it.stderr
    assert not (tmp_path / "research.db").exists()


LOSS_ONLY = '''
class Trainer:
    metrics = ("val_loss",)

    def __init__(self, config):
        self.loss = 1.0

    def train_epoch(self):
        self.loss *= 0.5
        return {"val_loss": self.loss}

    def state(self):
        return {}

    def load_state(self, state):
        pass
'''


def test_a_trainer_without_val_acc_is_judged_by_the_first_metric_it_declares(tmp_path, monkeypatch):
    (tmp_path / "lossonly.py").write_text(LOSS_ONLY)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    lone = runner.invoke(app, ["train", "--trainer", "lossonly:Trainer", "--epochs", "3"])
    assert lone.exit_code == 0, lone.output
    assert "finished: best val loss 0.1250" in lone.stdout
    refused = runner.invoke(app, ["train", "--trainer", "lossonly:Trainer", "--epochs", "3", "--metric", "val_acc"])
    assert refused.exit_code == 2 and "unknown metric 'val_acc'; choose one of: val_loss" in refused.stderr
    study = runner.invoke(app, ["train", "--strategy", "caviar", "--trainer", "lossonly:Trainer", "--epochs", "2",
                                "--trials", "2", "--space", "lr=log:1e-3..1", "--executor", "serial", "--json"])
    assert study.exit_code == 0, study.output
    with Store("research.db", create=False) as store:
        assert store.study("caviar-1").settings["metric"] == "val_loss"
    sys.modules.pop("lossonly", None)


def test_a_failed_trial_ranks_after_the_others_whatever_its_score(tmp_path):
    """A --command study whose crashed trials had the best early epochs ranked them first:
    the headline of `research show`, the trial `export-model` and `confirm` took."""
    from research.study.confirm import top_trials

    with Store(tmp_path / "r.db") as store:
        study = store.create_study("s", "caviar", {"trials": 3})
        for number, (acc, status) in enumerate([(0.7, "finished"), (0.9, "failed"), (0.6, "pruned")]):
            trial = store.add_trial(study, number, {"lr": 0.1}, 0)
            store.add_epoch(trial, 1, {"val_acc": acc, "val_loss": 1 - acc})
            store.set_status(trial, status, "boom" if status == "failed" else None)
        assert [row["number"] for row in ranked(store, study)] == [0, 2, 1]
        assert top_trials(store, study, Objective.make("val_acc", None), 2) == [0, 2]

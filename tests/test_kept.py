"""What a study keeps: the state of each trial's best epoch, exported as a model that predicts
on raw inputs, and confirmations of the best trials with new seeds."""

from __future__ import annotations

import json
import os
import warnings
from typing import Annotated

import numpy as np
import pytest

import research
from research.data import Dataset, load_digits
from research.nn import checkpoint
from research.options import Option, checked
from research.study.best import best_path, read_kept
from research.study.store import CONFIRMATIONS_FROM, Store
from tests.studyutil import TINY, cli
from tests.thirdparty import make_distribution

SCRIPTED = "tests.test_kept:Scripted"


class Scripted:
    """A trainer whose curve is written in advance: validation accuracy peaks at epoch 2 and
    ties at epoch 4 with a higher loss; its state is the epoch it reached."""

    curve = [(0.5, 1.0), (0.9, 0.3), (0.7, 0.5), (0.9, 0.4), (0.6, 0.9)]

    def __init__(self, config):
        self.reached = 0

    def train_epoch(self):
        acc, loss = self.curve[self.reached]
        self.reached += 1
        return {"val_acc": acc, "val_loss": loss, "test_acc": acc / 2}

    def state(self):
        return {"reached": np.array(self.reached)}

    def load_state(self, state):
        self.reached = int(state["reached"])


def study(tmp_path, *args):
    result = cli("train", "--strategy", "caviar", "--store", tmp_path / "r.db", "--plot", tmp_path / "p.png", *args)
    assert result.exit_code == 0, result.output
    return result


def test_the_kept_state_is_the_best_epochs_ties_broken_by_the_validation_loss(tmp_path):
    study(tmp_path, "--study", "s", "--trainer", SCRIPTED, "--epochs", "5", "--trials", "1", "--executor", "serial")
    kept = read_kept(best_path(tmp_path / "r-checkpoints" / "study-1", 0))
    assert kept.epoch == 2 and int(kept.state["trainer.reached"]) == 2
    assert checkpoint.unpack_json(kept.state["meta"])["epoch"] == 2
    shown = json.loads(cli("show", "s", "--store", tmp_path / "r.db", "--json").stdout)
    row = shown["trials"][0]
    assert row["best_epoch"] == 2 and row["final_val_acc"] == 0.6 and row["test"] == {"test_acc": 0.45}


def test_an_exported_model_predicts_raw_inputs_as_it_scored_at_its_best_epoch(tmp_path):
    study(tmp_path, "--study", "s", *TINY, "--trials", "3", "--workers", "2")
    done = cli("export-model", "s", "--store", tmp_path / "r.db", "-o", tmp_path / "model.npz")
    assert done.exit_code == 0, done.output
    best = json.loads(cli("show", "s", "--store", tmp_path / "r.db", "--json").stdout)["trials"][0]
    assert f"trial {best['number']} of 's' after epoch {best['best_epoch']}" in done.stderr

    model = research.load_model(tmp_path / "model.npz")
    assert model.source["trial"] == best["number"] and model.source["epoch"] == best["best_epoch"]
    data = load_digits()
    raw = {split: getattr(data, f"x_{split}") * data.feature_scale + data.feature_mean for split in ("val", "test")}
    assert (model.predict(raw["val"]) == data.y_val).mean() == pytest.approx(best["best_val_acc"])
    assert (model.predict(raw["test"]) == data.y_test).mean() == pytest.approx(best["test"]["test_acc"])
    images = raw["test"].reshape(-1, 1, 8, 8)  # the sample shape works as well as flat rows
    assert np.array_equal(model.predict(images), model.predict(raw["test"]))
    probabilities = model.predict_proba(raw["test"][:5])
    assert probabilities.shape == (5, 10) and np.allclose(probabilities.sum(axis=1), 1)
    assert model.classes == tuple(str(d) for d in range(10))
    with pytest.raises(ValueError, match=r"inputs must be \(N, 64\), \(N, 1, 8, 8\) or \(N, 8, 8\), got shape \(3, 63\)"):
        model.predict(np.zeros((3, 63)))
    assert np.array_equal(model.predict(images[:, 0]), model.predict(raw["test"]))  # (N, 8, 8): no channel axis
    with pytest.raises(ValueError, match=r"inputs must be \(N, 64\), \(N, 1, 8, 8\) or \(N, 8, 8\), got shape \(3, 4, 16\)"):
        model.predict(np.zeros((3, 4, 16)))  # 64 numbers a sample, in another layout
    holes = raw["test"][:8].copy()
    holes[[2, 5], 3] = [np.nan, np.inf]
    with pytest.raises(ValueError, match=r"^inputs hold NaN or infinity in 2 of 8 rows \(2, 5\); the model has no "):
        model.predict(holes)  # its argmax was class 0
    huge = raw["test"][:4].copy()
    huge[1, 0] = 1e39  # finite, but not in float32
    with pytest.raises(ValueError, match=r"^inputs in 1 of 4 rows \(1\) are beyond what the model's float32 holds"):
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # and no raw numpy warning on the way
            model.predict(huge)
    with pytest.raises(ValueError, match=r"got shape \(64,\); one sample is x\[None\]"):
        model.predict(raw["test"][0])
    assert model.predict(raw["test"][:0]).shape == (0,) and model.predict_proba(raw["test"][:0]).shape == (0, 10)
    assert model.evaluate(raw["test"], data.y_test)[1] == pytest.approx(best["test"]["test_acc"])
    with pytest.raises(TypeError, match=r"^y must be class indices, integers in \[0, 10\) .*got dtype float64"):
        model.evaluate(raw["test"], data.y_test + 0.5)  # a cast would take class 1.5 for 1
    with pytest.raises(TypeError, match="got dtype bool"):
        model.evaluate(raw["test"][:2], np.array([True, False]))
    with pytest.raises(ValueError, match=r"^y must be class indices in \[0, 10\), got values in \[-1, 3\]"):
        model.evaluate(raw["test"][:2], np.array([3, -1]))
    with pytest.raises(ValueError, match=r"^y must have shape \(3,\), one class index per input, got \(2,\)"):
        model.evaluate(raw["test"][:3], data.y_test[:2])


def test_a_model_file_whose_model_plugin_is_not_installed_asks_for_it_again(tmp_path):
    """load_model said "unknown model 'tanhnet'; choose one of: cnn, mlp": a file cannot choose."""
    from research.nn.exported import RECORD
    from research.plugins import PluginError

    study(tmp_path, "--study", "s", *TINY, "--trials", "1", "--executor", "serial")
    assert cli("export-model", "s", "--store", tmp_path / "r.db", "-o", tmp_path / "m.npz").exit_code == 0
    arrays = checkpoint.load(tmp_path / "m.npz")
    arrays[RECORD] = checkpoint.pack_json({**checkpoint.unpack_json(arrays[RECORD]), "model": "tanhnet"})
    checkpoint.save(tmp_path / "m.npz", arrays)
    with pytest.raises(PluginError, match=r"m\.npz uses model 'tanhnet', which no installed plugin registers .*; "
                                          "install the package that registers it again"):
        research.load_model(tmp_path / "m.npz")


def test_a_diverged_trial_is_not_exported(tmp_path):
    """Every trial diverged at its first epoch (val acc 0, its loss NaN): export-model wrote the
    best of them, exit 0, a model whose every prediction was NaN (class 0)."""
    done = cli("train", "--strategy", "caviar", "--study", "d", "--store", tmp_path / "r.db", "--trials", "2",
               "--epochs", "2", "--executor", "serial", "--optimizer", "sgd", "--no-batchnorm", "--space",
               "lr=log:1e5..1e6", "--plot", tmp_path / "d.png")
    assert done.exit_code == 1, done.output  # every trial diverged
    exported = cli("export-model", "d", "--store", tmp_path / "r.db", "-o", tmp_path / "m.npz")
    assert exported.exit_code == 2 and not (tmp_path / "m.npz").exists()
    assert exported.stderr == ("error: cannot export trial 0 of study 'd': it had diverged by epoch 1, the one kept "
                               "(its train_loss is NaN or inf), so its model cannot predict; export a trial that did "
                               "not diverge (--trial N)\n")


def test_export_refusals_are_one_line(tmp_path):
    study(tmp_path, "--study", "s", "--trainer", SCRIPTED, "--epochs", "2", "--trials", "1", "--executor", "serial")
    db = tmp_path / "r.db"
    cases = [
        (["export-model", "s", "--store", db], "trainer 'tests.test_kept:Scripted' cannot export a model"),
        (["export-model", "s", "--store", db, "--trial", "7"], "study 's' has no trial 7"),
        (["export-model", "nope", "--store", db], "no study 'nope'"),
        (["export-model", "s", "--store", db, "-o", tmp_path / "m.pkl"], "name an .npz file"),
        (["export-model", "s", "--store", db, "-o", tmp_path / "no" / "m.npz"], "does not exist"),
    ]
    for args, message in cases:
        result = cli(*args)
        assert result.exit_code == 2 and message in result.stderr and len(result.stderr.splitlines()) == 1, args
    from research.errors import UsageError
    from research.plugins import load_plugins
    from research.study.export import export_trial
    from research.study.store import Store

    with Store(db) as store, pytest.raises(UsageError, match=r"^the trial to export is a trial number, an integer, got '0'$"):
        export_trial(store, store.study("s"), "0", tmp_path / "m.npz", load_plugins())  # was a format-code ValueError
    (tmp_path / "not-a-model.npz").write_bytes(b"junk")
    with pytest.raises(checkpoint.CheckpointError, match="^model file .*not-a-model.npz cannot be read"):
        research.load_model(tmp_path / "not-a-model.npz")
    with pytest.raises(checkpoint.CheckpointError, match="^model file .*absent.npz does not exist$"):
        research.load_model(tmp_path / "absent.npz")  # it said "checkpoint absent.npz"
    with pytest.raises(checkpoint.CheckpointError, match="^model file .* is a folder, not a file$"):
        research.load_model(tmp_path)  # "cannot be read, it is truncated or damaged (IsADirectoryError"
    np.savez(tmp_path / "other.npz", x=np.zeros(2))
    with pytest.raises(checkpoint.CheckpointError, match="is not a model file"):
        research.load_model(tmp_path / "other.npz")


def test_confirm_trains_the_best_trials_again_apart_from_the_search(tmp_path):
    db = tmp_path / "r.db"
    study(tmp_path, "--study", "s", *TINY, "--trials", "3", "--workers", "2")
    before = json.loads(cli("show", "s", "--store", db, "--json").stdout)
    done = cli("confirm", "s", "--store", db, "--top", "2", "--seeds", "2", "--json")
    assert done.exit_code == 0, done.output
    found = json.loads(done.stdout)["confirmed"]
    assert [c["trial"] for c in found] == [row["number"] for row in before["trials"][:2]]
    for item in found:
        assert item["val_acc"]["n"] == 2 and item["val_acc"]["min"] <= item["val_acc"]["mean"] <= item["val_acc"]["max"]
        assert item["test_acc"]["n"] == 2 and item["val_acc"]["std"] is not None
        assert all(r["number"] >= CONFIRMATIONS_FROM and r["status"] == "finished" for r in item["replicates"])
    with Store(db) as store:
        record = store.study("s")
        trials = {t.number: t for t in store.trials(record)}
        links = store.confirmations(record)
    assert len(links) == 4 and len({trials[n].seed for n in links} | {trials[n].seed for n in range(3)}) == 7
    assert all(trials[n].config == {**trials[o].config, "seed": trials[n].seed} for n, (o, _) in links.items())

    assert done.stderr.splitlines()[0].endswith("of 's' with 2 new seeds each")
    # The search is as it was: ranked without the replicates, which show has on their own.
    after = json.loads(cli("show", "s", "--store", db, "--json").stdout)
    assert after["trials"] == before["trials"] and after["summary"] == before["summary"]
    assert [c["trial"] for c in after["confirmations"]] == [c["trial"] for c in found]
    report = cli("report", "s", "--store", db, "-o", tmp_path / "s.html")
    assert report.exit_code == 0, report.output
    page = (tmp_path / "s.html").read_text(encoding="utf-8")
    assert "<h2>Confirmed with new seeds</h2>" in page and "<th>test acc</th>" in page
    # A replicate keeps its best weights too: it exports (it was refused as "no trial 1000000").
    replicate = found[0]["replicates"][0]
    exported = cli("export-model", "s", "--store", db, "--trial", replicate["number"], "-o", tmp_path / "r.npz")
    assert exported.exit_code == 0, exported.output
    assert f"trial {replicate['number']} of 's'" in exported.stderr and (tmp_path / "r.npz").exists()
    missing = cli("export-model", "s", "--store", db, "--trial", "999")  # it named the search's trials only
    assert missing.exit_code == 2 and missing.stderr.strip() == (
        f"error: study 's' has no trial 999; its trials are 0..2, and the replicates of `research confirm` "
        f"{CONFIRMATIONS_FROM}..{CONFIRMATIONS_FROM + 3}")
    # Asked again, nothing more trains.
    epochs = len(json.loads(cli("export", "s", "--store", db, "--format", "json").stdout)["trials"])
    again = cli("confirm", "s", "--store", db, "--top", "2", "--seeds", "2", "--json")
    assert json.loads(again.stdout)["confirmed"] == found
    assert len(json.loads(cli("export", "s", "--store", db, "--format", "json").stdout)["trials"]) == epochs
    fewer = cli("confirm", "s", "--store", db, "--top", "2", "--seeds", "1")  # every stored replicate counts
    assert fewer.exit_code == 0 and fewer.stdout.count(" 2/2 ") == 2 and "/1 " not in fewer.stdout, fewer.stdout
    # what is left to train is said so ("with 2 new seeds each", training none)
    assert again.stderr.splitlines()[0].endswith("with 2 seeds each: all 4 runs are trained already, nothing to train")
    more = cli("confirm", "s", "--store", db, "--top", "2", "--seeds", "3")
    assert more.stderr.splitlines()[0].endswith("with 3 seeds each, 2 of 6 runs left to train")
    # A larger search budget adds search trials 3 and 4: the replicates take no search numbers.
    study(tmp_path, "--study", "s", "--trials", "5")
    with Store(db) as store:
        numbers = sorted(t.number for t in store.trials(store.study("s")))
    assert numbers[:5] == [0, 1, 2, 3, 4] and all(n >= CONFIRMATIONS_FROM for n in numbers[5:])
    # A study with confirmations is deleted whole.
    assert cli("delete", "s", "--store", db, "--yes").exit_code == 0
    with Store(db) as store:
        assert store.studies() == [] and store.confirmations(record) == {}


def test_confirm_from_python_names_its_own_arguments():
    """Python callers were told of --top and --seeds, flags they never gave."""
    from research.errors import UsageError
    from research.study.confirm import Confirm

    with pytest.raises(UsageError, match=r"^Confirm needs top as a whole number from 1 to 100, got 0 \(every "
                                         r"replicate is stored before it trains\)$"):
        Confirm(0, 2)
    for top, seeds, shown in ((1.5, 1, "top .* got 1.5"), ("2", 1, "top .* got '2'"), (1, True, "seeds .* got True"),
                              (1, 10**6, "seeds .* got 1000000")):  # a million stored rows, every later run slow
        with pytest.raises(UsageError, match=f"^Confirm needs {shown} "):
            Confirm(top, seeds)  # they failed deep in the run, as a TypeError
    assert Confirm(np.int64(2), 3).top == 2
    assert "Input should be less than or equal to 100" in cli("confirm", "s", "--seeds", "101").stderr


def test_confirm_refuses_a_strategy_that_changes_hyperparameters_while_training(tmp_path):
    db = tmp_path / "r.db"
    result = cli("train", "--strategy", "babysit", "--study", "b", "--store", db, "--hidden", "16",
                 "--segment-epochs", "1", "--segments", "2", "--plot", tmp_path / "b.png")
    assert result.exit_code == 0, result.output
    refused = cli("confirm", "b", "--store", db)
    assert refused.exit_code == 2 and "strategy 'babysit' changes hyperparameters" in refused.stderr
    assert cli("confirm", "nope", "--store", db).exit_code == 2


@pytest.mark.parametrize("flags, message", [
    (["--executor", "bogus"], "error: unknown executor 'bogus'; choose one of: "),
    (["--executor-opt", "bogus=1"], "error: executor 'process': unknown option 'bogus'"),
])
def test_confirm_with_a_bad_executor_stores_nothing(tmp_path, flags, message):
    """It stored 15 pending replicates and a run, then refused the executor."""
    db = tmp_path / "r.db"
    result = cli("train", "--strategy", "caviar", "--study", "c", "--store", db, "--hidden", "8", "--trials", "3",
                 "--epochs", "1", "--executor", "serial", "--plot", tmp_path / "c.png")
    assert result.exit_code == 0, result.output
    before = cli("export", "c", "--store", db, "--format", "json").stdout
    refused = cli("confirm", "c", "--store", db, *flags)
    assert refused.exit_code == 2 and refused.stderr.strip().startswith(message), refused.stderr
    with Store(db) as store:
        assert store.confirmations(store.study("c")) == {}
    assert cli("export", "c", "--store", db, "--format", "json").stdout == before


class Scores:
    """A linear model with evaluate but no logits."""

    def __init__(self, input_shape, n_classes, *, dtype, rng):
        self.W = np.zeros((int(np.prod(input_shape)), n_classes), dtype)
        self.params = [self.W]

    def check_data(self, x, y):
        return x, y

    def loss_and_grads(self, x, y, *, checked=False):
        return 0.5, 1.0, [np.zeros_like(self.W)]

    def evaluate(self, x, y):
        return 0.5, float((np.argmax(x @ self.W, axis=1) == y).mean())

    def state(self):
        return {"W": self.W}

    def load_state(self, state):
        np.copyto(self.W, state["W"])


def exported(tmp_path, model_class):
    """``model_class`` exported as model 'scores' (3 features, classes a and b), loaded again."""
    from research import hookimpl
    from research.nn.exported import model_arrays, write_model

    class Plugin:
        @hookimpl
        def register_models(self, register):
            register("scores", model_class)

    path = write_model(tmp_path / "m.npz", model_arrays("scores", {}, (3,), ["a", "b"], "float32",
                                                        {"W": np.ones((3, 2), np.float32)}, None, None, {}))
    return research.load_model(path, plugins=[Plugin()])


def test_a_model_without_logits_exports_and_evaluates_and_predict_says_what_is_missing(tmp_path):
    """logits(x) is optional for a model plugin: its exported file loads and evaluates; only
    predict needs it, and says so."""
    from research.errors import UsageError

    model = exported(tmp_path, Scores)
    assert model.evaluate(np.zeros((2, 3)), [0, 0]) == (0.5, 1.0)
    with pytest.raises(UsageError, match=r"^model 'scores' has no logits\(x\), so it cannot predict \(it can "):
        model.predict(np.zeros((2, 3)))


@pytest.mark.parametrize(("logits", "message"), [
    (lambda z: z[:, :1], r"logits\(x\) returned shape \(4, 1\), dtype float32, not \(4, 2\) float class scores"),
    (lambda z: z.T, r"logits\(x\) returned shape \(2, 4\), dtype float32, not \(4, 2\)"),
    (lambda z: z.tolist(), r"logits\(x\) returned list, not \(4, 2\) float class scores \(a row per input"),
    (lambda z: z.astype(np.int64), r"logits\(x\) returned shape \(4, 2\), dtype int64"),
    (lambda z: np.where(np.arange(4)[:, None] % 2, np.nan, z), r"logits\(x\) holds NaN in 2 of 4 rows \(1, 3\)"),
])
def test_logits_that_are_not_a_row_of_scores_per_input_are_refused_not_predicted(tmp_path, logits, message):
    """A plugin's clipped, transposed or NaN logits gave classes (always 0..2, or class 0) and
    probabilities of the wrong shape, without a word."""
    from research.errors import UsageError

    class Bad(Scores):
        def logits(self, x):
            return logits(x @ self.W)

    model = exported(tmp_path, Bad)
    for method in (model.predict, model.predict_proba, model.logits):
        with pytest.raises(UsageError, match=f"^model 'scores': {message}"):
            method(np.arange(12, dtype=float).reshape(4, 3))


EDITOR = '''
    """An observer that edits the study's data file (named by EDITED) as trial 0 ends."""
    import os

    from research import hookimpl

    @hookimpl
    def on_trial_end(trial, result):
        if trial.number == 0:
            with open(os.environ["EDITED"], "a") as file:
                file.write("9,9,cat\\n")
'''


def test_a_data_file_changed_while_a_study_runs_stops_it(tmp_path, site, monkeypatch):
    """The digest was taken when a run started: trials started after the file changed trained on
    the new data beside the earlier ones, and the study finished as if nothing happened. The
    files are checked before each task: the run stops, what it trained is kept, and it resumes
    once the file is restored."""
    make_distribution(site, "tp-editor", "tp_editor", EDITOR)
    rng = np.random.default_rng(0)
    data = tmp_path / "pets.csv"
    original = "a,b,label\n" + "\n".join(f"{a:.3f},{b:.3f},{'cat' if a > 0 else 'dog'}"
                                        for a, b in rng.normal(size=(60, 2))) + "\n"
    data.write_text(original)
    monkeypatch.setenv("EDITED", str(data))
    study = ["train", "--strategy", "caviar", "--dataset", "csv", "--dataset-opt", "path=pets.csv", "--trials", "3",
             "--epochs", "2", "--hidden", "8", "--executor", "serial", "--workers", "1", "--study", "pets"]
    done = cli(*study)
    assert done.exit_code == 2, done.output
    assert f"error: study 'pets': the data file {data} has changed since this run started (sha256 " in \
        " ".join(done.stderr.split())
    with Store(tmp_path / "research.db") as store:
        trials = store.trials(store.study("pets"))
        assert [t.status for t in trials] == ["finished", "interrupted"]
        assert store.curve(trials[1]) == []  # trial 1 was never given a task on the new file
    data.write_text(original)
    resumed = cli("resume", "pets")
    assert resumed.exit_code == 0, resumed.output  # trial 0 of the observer's edit is done: no edit again
    with Store(tmp_path / "research.db") as store:
        assert [t.status for t in store.trials(store.study("pets"))] == ["finished"] * 3


def test_a_touched_data_file_with_the_same_bytes_goes_on(tmp_path):
    """Only the digest decides: a file rewritten the same (its time moved) is the same data."""
    from research.study.provenance import WatchedFiles, file_digest

    data = tmp_path / "d.csv"
    data.write_text("a,label\n1,x\n")
    files = WatchedFiles({str(data): file_digest(data)})
    assert files.changed() is None
    os.utime(data, ns=(1, 1))
    data.write_text("a,label\n1,x\n")
    assert files.changed() is None
    data.write_text("a,label\n2,x\n")
    assert files.changed().startswith(f"the data file {data} has changed since this run started (sha256 ")
    data.unlink()
    assert files.changed() == f"the data file {data} is gone since this run started"


LEDGER = '''
    """A third-party dataset reading a csv file through an option of its own name, ``ledger``."""
    from typing import Annotated

    from research import hookimpl
    from research.data import load_csv
    from research.options import Option, checked

    @checked("dataset", "ledger")
    def load_ledger(ledger: Annotated[str, Option("The csv file", path=True)] = "ledger.csv"):
        return load_csv(ledger)

    @hookimpl
    def register_datasets(register):
        register("ledger", load_ledger)
'''


@pytest.mark.parametrize("dataset, option", [("csv", "path"), ("ledger", "ledger")])
def test_a_study_whose_data_file_changed_neither_resumes_nor_exports(tmp_path, site, dataset, option):
    """The class names and the input scaling of an exported model came from the file as it was at
    export time (cat became zebra: 0.06 accuracy, no warning), and a resume trained new trials on
    the changed data beside the old ones. The guard follows the options a dataset declares as
    paths: it read only the one named `path`, so a third-party dataset's file went unwatched."""
    make_distribution(site, "tp-ledger", "tp_ledger", LEDGER)
    rng = np.random.default_rng(0)
    rows = [f"{a:.3f},{b:.3f},{'cat' if a > 0 else 'dog'}" for a, b in rng.normal(size=(60, 2))]
    data = tmp_path / "pets.csv"
    data.write_text("a,b,label\n" + "\n".join(rows) + "\n")
    study = ["train", "--strategy", "caviar", "--dataset", dataset, "--dataset-opt", f"{option}=pets.csv",
             "--trials", "2", "--epochs", "2", "--hidden", "8", "--executor", "serial", "--study", "pets"]
    assert cli(*study).exit_code == 0
    shown = cli("show", "pets")
    assert f"{data} sha256 " in shown.stdout.replace("\n", "")
    original = data.read_text()
    data.write_text(original.replace(",cat\n", ",zebra\n"))
    export = cli("export-model", "pets", "-o", "m.npz")
    assert export.exit_code == 2 and not (tmp_path / "m.npz").exists()
    assert export.stderr.strip().startswith("error: cannot export trial ")
    assert f"the data file {data} has changed since the study's last run (sha256 " in export.stderr
    resume = cli("resume", "pets", "--trials", "4")
    assert resume.exit_code == 2 and "its trials would mix two datasets: restore the file" in resume.stderr
    with Store(tmp_path / "research.db") as store:
        assert len(store.trials(store.study("pets"))) == 2  # nothing trained on the new file
        assert store.study("pets").settings["trials"] == 2  # nor the refused command's budget stored
    data.write_text(original)
    assert cli("export-model", "pets", "-o", "m.npz").exit_code == 0
    assert research.load_model(tmp_path / "m.npz").classes == ("cat", "dog")


def test_a_run_recorded_before_files_were_digested_still_guards_its_data_file():
    """Runs recorded earlier kept the one data file's digest in the research trainer's record."""
    from research.study.provenance import data_changed

    before = {"trainer": {"data": "/d/pets.csv", "sha256 of data": "aaaa"}}
    assert data_changed(before, {"files": {"/d/pets.csv": "aaaa"}}) is None
    assert data_changed(before, {"files": {"/d/pets.csv": "bbbb"}}) == \
        "the data file /d/pets.csv has changed since the study's last run (sha256 aaaa, now bbbb)"
    assert data_changed({"files": {"/d/a.csv": "aaaa"}}, {"files": {"/d/a.csv": "aaaa", "/d/b.csv": "cccc"}}) is None
    assert data_changed(None, {"files": {"/d/a.csv": "aaaa"}}) is None


def test_a_study_on_a_relative_data_path_resumes_and_exports_from_any_directory(tmp_path, monkeypatch):
    """The path was stored as given, so `research resume` from another directory said the file
    did not exist; the same flags from the study's own directory still continue it."""
    (tmp_path / "here").mkdir()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "here")
    rng = np.random.default_rng(0)
    rows = [f"{a:.3f},{b:.3f},{'cat' if a > 0 else 'dog'}" for a, b in rng.normal(size=(60, 2))]
    (tmp_path / "here" / "pets.csv").write_text("a,b,label\n" + "\n".join(rows) + "\n")
    store = tmp_path / "r.db"
    study = ["train", "--strategy", "caviar", "--dataset", "csv", "--dataset-opt", "path=pets.csv", "--epochs", "2",
             "--hidden", "8", "--executor", "serial", "--study", "pets", "--store", store]
    assert cli(*study, "--trials", "2").exit_code == 0
    continued = cli(*study, "--trials", "3")
    assert continued.exit_code == 0, continued.output
    monkeypatch.chdir(tmp_path / "elsewhere")
    resumed = cli("resume", "pets", "--trials", "4", "--store", store)
    assert resumed.exit_code == 0, resumed.output
    assert cli("export-model", "pets", "-o", "m.npz", "--store", store).exit_code == 0
    with Store(store) as opened:
        record = opened.study("pets")
        assert len(opened.trials(record)) == 4
        assert record.settings["base"]["dataset_options"]["path"] == str(tmp_path / "here" / "pets.csv")


def test_a_data_path_through_a_folder_and_back_is_stored_without_it(tmp_path, monkeypatch):
    """`path=tmp/../pets.csv` was stored with its `..`: once tmp was gone the study could not
    resume or export, and `path=pets.csv` did not continue it."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "tmp").mkdir()
    rows = [f"{a:.3f},{'cat' if a > 0 else 'dog'}" for a in np.random.default_rng(0).normal(size=40)]
    (tmp_path / "pets.csv").write_text("a,label\n" + "\n".join(rows) + "\n")
    study = ["train", "--strategy", "caviar", "--dataset", "csv", "--epochs", "1", "--hidden", "8", "--executor",
             "serial", "--study", "pets", "--store", tmp_path / "r.db"]
    assert cli(*study, "--dataset-opt", "path=tmp/../pets.csv", "--trials", "1").exit_code == 0
    (tmp_path / "tmp").rmdir()
    assert cli(*study, "--dataset-opt", "path=pets.csv", "--trials", "2").exit_code == 0
    assert cli("export-model", "pets", "-o", "m.npz", "--store", tmp_path / "r.db").exit_code == 0
    with Store(tmp_path / "r.db") as opened:
        assert opened.study("pets").settings["base"]["dataset_options"]["path"] == str(tmp_path / "pets.csv")


@checked("dataset", "shelf")
def load_shelf(shelf: Annotated[str, Option("The folder", path=True)] = ".",
               name: Annotated[str, Option("A name, not a path")] = "pets.csv") -> Dataset:
    """A dataset whose folder option, ``shelf``, is a declared path."""
    return load_digits()


class Shelf:
    """An in-process plugin registering ``load_shelf``."""

    @research.hookimpl
    def register_datasets(self, register):
        register("shelf", load_shelf)


def test_the_paths_a_study_anchors_are_those_its_plugins_declare(tmp_path, monkeypatch):
    """The core anchored the dataset option named `path` and nothing else; now any option a
    dataset or trainer declares with path=True, given or by default, and no other."""
    from research.plugins import load_plugins
    from research.study.provenance import anchored

    monkeypatch.chdir(tmp_path)
    (tmp_path / "pets.csv").write_text("a,label\n1,x\n")
    (tmp_path / "books").mkdir()
    plugins = load_plugins([Shelf()])
    base = {"dataset": "shelf", "dataset_options": {"name": "pets.csv"}}
    assert anchored(base, plugins)["dataset_options"] == {"name": "pets.csv", "shelf": str(tmp_path)}
    given = {"dataset": "shelf", "dataset_options": {"shelf": "books", "name": "pets.csv"}}
    assert anchored(given, plugins)["dataset_options"] == {"shelf": str(tmp_path / "books"), "name": "pets.csv"}
    missing = {"dataset": "shelf", "dataset_options": {"shelf": "gone"}}
    assert anchored(missing, plugins) == missing
    csv = {"dataset": "csv", "dataset_options": {"path": "pets.csv"}}
    assert anchored(csv, plugins)["dataset_options"] == {"path": str(tmp_path / "pets.csv")}
    command = {"trainer": "command", "trainer_options": {"command": "python train.py"}}
    assert anchored(command, plugins)["trainer_options"] == {"command": "python train.py", "workdir": str(tmp_path)}
    by_name = {**command, "workdir": "books"}  # a trainer's option set by name stays where it was given
    assert anchored(by_name, plugins) == {**command, "workdir": str(tmp_path / "books")}
    unknown = {"dataset": "nope", "dataset_options": {"path": "pets.csv"}}
    assert anchored(unknown, plugins) == unknown  # the study's own checks name the unknown dataset
    assert anchored({}, plugins) == {}  # digits and the research trainer declare no path

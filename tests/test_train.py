"""One training run: determinism, checkpoints, divergence, configuration errors, quality."""

import numpy as np
import pytest

import research
from research.cli import app
from research.contracts import TrialInfo
from research.errors import UsageError
from research.nn.training import Trainer
from research.plugins import PluginError, load_plugins
from research.study.trainer import run_trainer
from tests.studyutil import runner

FAST = {"epochs": 3, "hidden": 32, "dataset": "digits"}


def curve(result):
    return [{k: v for k, v in m.items() if k != "seconds"} for m in result.history]


def test_same_seed_same_curve_value_for_value():
    a = research.train(FAST, seed=3)
    b = research.train(FAST, seed=3)
    c = research.train(FAST, seed=4)
    assert curve(a) == curve(b)
    assert curve(a) != curve(c)


@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd", "momentum", "rmsprop"])
def test_checkpoint_resumes_to_the_identical_continuation(tmp_path, optimizer):
    config = {**FAST, "epochs": 4, "optimizer": optimizer, "schedule": "exponential"}
    uninterrupted = research.train(config)

    plugins = load_plugins()
    first = Trainer(config, plugins)
    for _ in range(2):
        first.train_epoch()
    first.save(tmp_path / "ckpt.npz")
    del first
    resumed = Trainer(config, plugins)
    resumed.restore(tmp_path / "ckpt.npz")
    result = run_trainer(resumed, TrialInfo(None, 0, resumed.config), plugins)
    assert curve(result) == curve(uninterrupted)


def test_train_with_checkpoint_path_resumes(tmp_path):
    path = tmp_path / "run.npz"
    research.train(FAST, epochs=2, checkpoint_path=path)
    resumed = research.train(FAST, checkpoint_path=path, resume=True)
    assert curve(resumed) == curve(research.train(FAST))


def test_a_run_resumed_on_a_changed_data_file_is_refused(tmp_path):
    """research.train(resume=True) guards its data files as the command line does."""
    from research.nn.checkpoint import CheckpointError

    rows = [f"{i % 7}.5,{i % 3},{'a' if i % 2 else 'b'}" for i in range(40)]
    data = tmp_path / "d.csv"
    data.write_text("x,y,label\n" + "\n".join(rows) + "\n")
    config = {"dataset": "csv", "dataset_options": {"path": str(data)}, "hidden": 8}
    path = tmp_path / "run.npz"
    research.train(config, epochs=1, checkpoint_path=path)
    data.write_text(data.read_text() + "1.5,1,a\n")
    with pytest.raises(CheckpointError, match="the data file .*d.csv has changed since checkpoint .*run.npz was written"):
        research.train(config, epochs=2, checkpoint_path=path, resume=True)


def test_a_checkpoint_with_a_relative_data_path_resumes_from_the_cli_or_python_alike(tmp_path, monkeypatch):
    """--checkpoint stored the csv's path as absolute and research.train as given, so each
    refused the other's checkpoint ("written with ... 'path': '/abs/d.csv', not 'd.csv'")."""
    monkeypatch.chdir(tmp_path)
    rows = [f"{i % 7}.5,{i % 3},{'a' if i % 2 else 'b'}" for i in range(40)]
    (tmp_path / "d.csv").write_text("x,y,label\n" + "\n".join(rows) + "\n")
    flags = ["--dataset", "csv", "--dataset-opt", "path=d.csv", "--hidden", "8"]
    first = runner.invoke(app, ["train", *flags, "--epochs", "1", "--checkpoint", "cli.npz"])
    assert first.exit_code == 0, first.output
    config = {"dataset": "csv", "dataset_options": {"path": "d.csv"}, "hidden": 8}
    from_python = research.train(config, epochs=2, checkpoint_path="cli.npz", resume=True)
    assert len(from_python.history) == 2
    research.train(config, epochs=1, checkpoint_path="api.npz")
    again = runner.invoke(app, ["train", *flags, "--epochs", "2", "--checkpoint", "api.npz", "--json"])
    assert again.exit_code == 0, again.output


def test_a_checkpoint_carries_its_format_and_one_of_another_is_refused(tmp_path):
    path = tmp_path / "run.npz"
    research.train(FAST, epochs=1, checkpoint_path=path)
    with np.load(path) as saved:
        arrays = {key: saved[key] for key in saved.files}
    assert int(arrays.pop("research_checkpoint_format")) == 1
    np.savez(path, **arrays)  # as written before the format was recorded: read as format 1
    assert len(research.train(FAST, checkpoint_path=path, resume=True).history) == 3
    np.savez(path, **arrays, research_checkpoint_format=np.array(2))  # by a newer research
    with pytest.raises(UsageError, match=r"is of format 2, but this research reads format 1; use the research"):
        research.train(FAST, checkpoint_path=path, resume=True)


def test_divergence_stops_the_run_cleanly():
    result = research.train(FAST, optimizer="sgd", lr=1e6, batchnorm=False, epochs=10)
    assert result.status == "diverged"
    assert len(result.history) < 10


def test_metrics_are_complete_and_sane():
    result = research.train(FAST)
    assert result.status == "finished" and len(result.history) == 3
    for metrics in result.history:
        assert set(metrics) == {"train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc", "lr",
                                "seconds"}
        assert 0 <= metrics["val_acc"] <= 1 and 0 <= metrics["test_acc"] <= 1 and metrics["train_loss"] > 0


def test_the_test_split_is_scored_with_the_model_of_each_epoch():
    """test_acc is the accuracy on the held-out split, not the validation one; no split, no test metrics."""
    from research.data import load_digits

    result = research.train(FAST)
    trainer_data = load_digits()
    assert result.history[-1]["test_acc"] != result.history[-1]["val_acc"]
    assert round(result.history[-1]["test_acc"] * len(trainer_data.y_test)) == pytest.approx(
        result.history[-1]["test_acc"] * len(trainer_data.y_test))
    without = research.train(FAST, dataset_options={"test_fraction": 0})
    assert "test_acc" not in without.history[-1]


def test_schedule_drives_the_learning_rate():
    result = research.train(FAST, optimizer="sgd", lr=0.1, schedule="inverse-time", decay_rate=1.0)
    assert [m["lr"] for m in result.history] == pytest.approx([0.1, 0.05, 0.1 / 3])


def test_float64_on_request():
    plugins = load_plugins()
    trainer = Trainer({**FAST, "dtype": "float64"}, plugins)
    assert all(p.dtype == np.float64 for p in trainer.model.params)


@pytest.mark.parametrize(
    "config, message",
    [
        ({"epochs": -1}, "epochs must be an integer >= 1"),
        ({"layers": "two"}, "layers must be an integer"),
        ({"dtype": "float16"}, "dtype must be one of: float32, float64"),
        ({"bogus": 1}, "unknown parameter 'bogus'.*valid names: .*beta1"),
        ({"optimizer": "sgd", "beta1": 0.9}, "unknown parameter 'beta1'"),
        ({"dataset_options": "x"}, "^dataset_options must be a dict of option names to values, got 'x'$"),
        ({"trainer_options": [1]}, "^trainer_options must be a dict of option names to values, got \\[1\\]$"),
        ({"trainer": "command"}, "^trainer 'command' needs its option 'command' \\(a string\\), which has no default; "
                                 "give it with --command \\(from Python: trainer_options={'command': ...}\\)$"),
        ({"dataset": "csv"}, "^dataset 'csv' needs its option 'path' \\(a string\\), which has no default; give it "
                             "with --dataset-opt path=\\.\\.\\. \\(from Python: dataset_options={'path': ...}\\)$"),
    ],
)
def test_bad_configuration_names_the_problem(config, message):
    with pytest.raises(UsageError, match=message):
        research.train(FAST | config)


def test_a_config_that_is_not_a_dict_is_refused():
    with pytest.raises(UsageError, match=r"^config must be a dict of names to values, got list; e\.g\. "):
        research.train([("lr", 0.1)])


def test_unknown_optimizer_lists_choices():
    with pytest.raises(PluginError, match="unknown optimizer 'adma'; choose one of"):
        research.train(FAST, optimizer="adma")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_default_configuration_reaches_96_percent_on_digits(seed):
    """Trained on 60% of the digits (20% validation, 20% held out for the test score)."""
    result = research.train(seed=seed, epochs=30)
    assert result.best_val_acc >= 0.96, result.history[-1]

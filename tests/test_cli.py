"""The command line: version, single-model training, one-line errors."""

import json
import logging
import re
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from research.cli import app
from tests.studyutil import cli, curves

runner = CliRunner()


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.startswith("research ")


def test_train_prints_the_curve_table():
    result = runner.invoke(app, ["train", "--epochs", "2", "--hidden", "16"])
    assert result.exit_code == 0, result.output
    assert "learning curve" in result.stdout and "best val acc" in result.stdout


def test_train_json_and_plugin_options():
    args = ["train", "--epochs", "2", "--hidden", "16", "--optimizer", "momentum", "--opt", "beta=0.8",
            "--schedule", "step", "--opt", "step_size=1", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["status"] == "finished" and data["config"]["beta"] == 0.8
    assert len(data["history"]) == 2 and data["history"][1]["lr"] < data["history"][0]["lr"]


def test_train_checkpoint_resumes(tmp_path):
    path = tmp_path / "run.npz"
    first = runner.invoke(app, ["train", "--epochs", "1", "--hidden", "16", "--checkpoint", str(path), "--json"])
    assert first.exit_code == 0 and path.exists()
    second = runner.invoke(app, ["train", "--epochs", "2", "--hidden", "16", "--checkpoint", str(path), "--json"])
    assert second.exit_code == 0, second.output
    assert len(json.loads(second.stdout)["history"]) == 2


def test_a_file_dataset_without_its_path_is_refused_before_a_study_is_stored(tmp_path, monkeypatch):
    """The csv dataset's path was declared with a default of None: `research plugins` listed it as
    optional, and only building the dataset said it was not."""
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["train", "--strategy", "caviar", "--dataset", "csv", "--trials", "1"])
    assert result.exit_code == 2
    assert result.stderr.replace("\n", "") == (
        "error: dataset 'csv' needs its option 'path' (a string), which has no default; give it with "
        "--dataset-opt path=... (from Python: dataset_options={'path': ...})")
    assert not (tmp_path / "research.db").exists()
    listed = json.loads(runner.invoke(app, ["plugins", "--json"]).stdout)["options"]["datasets"]
    assert listed["csv"]["path"]["required"] and listed["npz"]["path"]["required"]


def test_a_checkpoint_resumed_elsewhere_on_another_file_of_the_same_name_is_refused(tmp_path, monkeypatch):
    """A lone run stored its data path as given, so the same flags in another directory
    resumed the checkpoint on that directory's file of the same name, mixing two datasets."""
    rng = np.random.default_rng(0)
    for folder in ("here", "there"):
        (tmp_path / folder).mkdir()
        rows = [f"{a:.3f},{b:.3f},{'cat' if a > 0 else 'dog'}" for a, b in rng.normal(size=(40, 2))]
        (tmp_path / folder / "pets.csv").write_text("a,b,label\n" + "\n".join(rows) + "\n")
    path = tmp_path / "run.npz"
    flags = ["train", "--dataset", "csv", "--dataset-opt", "path=pets.csv", "--hidden", "8", "--checkpoint", str(path)]
    monkeypatch.chdir(tmp_path / "here")
    assert runner.invoke(app, [*flags, "--epochs", "1"]).exit_code == 0
    monkeypatch.chdir(tmp_path / "there")
    elsewhere = runner.invoke(app, [*flags, "--epochs", "2"])
    assert elsewhere.exit_code == 2
    said = elsewhere.stderr.replace("\n", "")
    here, there = (repr(str(tmp_path / folder / "pets.csv")) for folder in ("here", "there"))
    assert said.startswith(f"error: checkpoint {path} was written with dataset_options=")
    assert f"'path': {here}}}, not {{" in said and f"'path': {there}}}; use the options it was written with" in said
    monkeypatch.chdir(tmp_path / "here")
    resumed = runner.invoke(app, [*flags, "--epochs", "2", "--json"])
    assert resumed.exit_code == 0, resumed.output
    assert len(json.loads(resumed.stdout)["history"]) == 2


def test_a_checkpoint_whose_data_file_changed_in_place_is_refused(tmp_path, monkeypatch):
    """The checkpoint recorded the path, not the file: an edited csv resumed the run on the new
    rows, one curve from two datasets."""
    rng = np.random.default_rng(0)
    rows = [f"{a:.3f},{b:.3f},{'cat' if a > 0 else 'dog'}" for a, b in rng.normal(size=(40, 2))]
    data = tmp_path / "pets.csv"
    data.write_text("a,b,label\n" + "\n".join(rows) + "\n")
    monkeypatch.chdir(tmp_path)
    flags = ["train", "--dataset", "csv", "--dataset-opt", "path=pets.csv", "--hidden", "8", "--checkpoint", "run.npz"]
    assert runner.invoke(app, [*flags, "--epochs", "1"]).exit_code == 0
    original = data.read_text()
    data.write_text(original + "9.000,9.000,cat\n")
    edited = runner.invoke(app, [*flags, "--epochs", "2"])
    assert edited.exit_code == 2, edited.output
    said = " ".join(edited.stderr.split())
    assert said.startswith(f"error: the data file {data} has changed since checkpoint run.npz was written (sha256 ")
    assert said.endswith("): restore the file, or delete the checkpoint to start over on the new one")
    assert "resuming" not in edited.stderr
    data.write_text(original)
    resumed = runner.invoke(app, [*flags, "--epochs", "2", "--json"])
    assert resumed.exit_code == 0, resumed.output
    assert len(json.loads(resumed.stdout)["history"]) == 2


@pytest.mark.parametrize("flags, message", [
    (["--hidden", "8", "--model-opt", "hidden=16"], "hidden is given twice, as --hidden 8 and as --model-opt hidden=16"),
    (["--lr", "0.01", "--opt", "lr=0.5"], "lr is given twice, as --lr 0.01 and as --opt lr=0.5"),
    (["--batch-size", "32", "--opt", "batch_size=16"], "batch_size is given twice, as --batch-size 32 and as --opt"),
    (["--strategy", "babysit", "--segments", "3", "--strategy-opt", "segments=5"],
     "segments is given twice, as --segments 3 and as --strategy-opt segments=5"),
    (["--strategy", "caviar", "--command", "python a.py", "--trainer-opt", "command=b"],
     "command is given twice, as --command 'python a.py' and as --trainer-opt command=b"),
    (["--strategy", "caviar", "--space", "hidden=int:16..64", "--model-opt", "hidden=8"],
     r"hidden is both fixed \(--model-opt hidden=8\) and searched \(--space hidden=int:16..64\); drop one of them"),
])
def test_a_value_given_twice_is_refused_before_anything_runs(tmp_path, flags, message):
    """One of the two silently won; a searched width fixed again trained, then failed to export."""
    result = runner.invoke(app, ["train", "--epochs", "1", "--store", str(tmp_path / "r.db"), *flags])
    assert result.exit_code == 2, result.output
    assert re.match(f"error: {message}", " ".join(result.stderr.split())), result.stderr
    assert not (tmp_path / "r.db").exists()


@pytest.mark.parametrize("space, message", [
    ("layers=0.5..3", "layers takes whole numbers but the space draws any number in linear:0.5..3.0; write "
                      "layers=int:1..3"),
    ("hidden=0..64", "hidden takes whole numbers but the space draws any number in linear:0.0..64.0; write "
                     "hidden=int:1..64"),
    ("layers=0.2..0.8", "layers takes whole numbers but the space draws any number in linear:0.2..0.8; give a range "
                        "of whole numbers it takes"),
])
def test_a_range_of_any_number_for_a_whole_number_option_suggests_one_it_takes(tmp_path, space, message):
    """The suggestion kept the bounds: int:0.5..3, itself refused, and int:0..64 for a width of at least 1."""
    result = runner.invoke(app, ["train", "--strategy", "caviar", "--epochs", "1", "--store", str(tmp_path / "r.db"),
                                 "--space", space])
    assert result.exit_code == 2, result.output
    assert " ".join(result.stderr.split()) == f"error: {message}"


def test_an_option_given_twice_from_python_is_refused():
    import research
    from research.nn.config import ConfigError

    with pytest.raises(ConfigError, match=r"^hidden is given twice, as hidden = 8 and as model.hidden = 16; give it once$"):
        research.train(epochs=1, hidden=8, **{"model.hidden": 16})


def test_one_value_given_under_two_spellings_is_taken_once():
    """A trial's stored configuration keeps the value given (``model.bn_momentum='0.05'``) and
    its effective one (``bn_momentum=0.05``): taking them for two values failed every resumed
    trial of a study made with --model-opt."""
    import research

    one = research.train(epochs=1, hidden=8, bn_momentum=0.05, **{"model.bn_momentum": "0.05"})
    assert one.config["bn_momentum"] == 0.05


def test_a_study_with_model_options_resumes(tmp_path):
    db = tmp_path / "r.db"
    common = ["--store", db, "--plot", tmp_path / "s.png", "--executor", "serial"]
    first = cli("train", "--strategy", "caviar", "--study", "s", "--trials", "2", "--epochs", "3", "--hidden", "8",
                "--model-opt", "bn_momentum=0.05", "--max-epochs", "4", *common)
    assert first.exit_code == 0, first.output
    resumed = cli("resume", "s", "--no-budget", *common)
    assert resumed.exit_code == 0, resumed.output
    reference = cli("train", "--strategy", "caviar", "--study", "r", "--trials", "2", "--epochs", "3", "--hidden",
                    "8", "--model-opt", "bn_momentum=0.05", *common)
    assert reference.exit_code == 0, reference.output
    assert curves(db, "s") == curves(db, "r")


def test_a_checkpoint_resumed_with_other_values_is_refused_naming_them(tmp_path):
    """Its optimizer's lr and its shuffling would silently win over the new flags."""
    path = tmp_path / "run.npz"
    assert runner.invoke(app, ["train", "--epochs", "1", "--hidden", "16", "--checkpoint", str(path)]).exit_code == 0
    cases = [(["--lr", "0.1"], "lr=0.001, not 0.1"), (["--seed", "5"], "seed=0, not 5"),
             # values that change the arrays' shapes were "does not fit (W1 has shape ...)"
             (["--hidden", "32"], "hidden=16, not 32"), (["--layers", "3"], "layers=2, not 3"),
             (["--optimizer", "adamw"], "optimizer='adam', not 'adamw', weight_decay=None, not 0.01"),
             # the choice first, then the options only one of the two optimizers has
             (["--optimizer", "sgd"], "lr=0.001, not 0.01, optimizer='adam', not 'sgd', beta1=0.9, not None (and 3 more)")]
    for flags, values in cases:
        result = runner.invoke(app, ["train", "--epochs", "2", "--hidden", "16", "--checkpoint", str(path), *flags])
        assert result.exit_code == 2, result.output
        assert " ".join(result.stderr.split()) == (
            f"error: checkpoint {path} was written with {values}; use the options it was written with (only epochs "
            "may change), or delete it to start over")
    assert runner.invoke(app, ["train", "--epochs", "3", "--hidden", "16", "--checkpoint", str(path)]).exit_code == 0
    fewer = runner.invoke(app, ["train", "--epochs", "2", "--hidden", "16", "--checkpoint", str(path), "--json"])
    assert fewer.exit_code == 2  # it returned the checkpoint's 3 epochs, in silence
    assert " ".join(fewer.stderr.split()) == (f"error: checkpoint {path} holds 3 epochs, more than the 2 asked; ask "
                                              "for 3 epochs or more, or delete it to start over")


def test_a_checkpoint_in_a_missing_folder_is_refused_before_training(tmp_path):
    path = tmp_path / "typo" / "run.npz"
    result = runner.invoke(app, ["train", "--epochs", "1", "--hidden", "16", "--checkpoint", str(path)])
    assert result.exit_code == 2
    assert result.stderr.strip() == (f"error: cannot write {path}: folder {path.parent} does not exist; create it or "
                                     "choose another --checkpoint")
    assert not path.parent.exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--optimizer", "adma"], "unknown optimizer 'adma'; choose one of"),
        (["--lr", "0"], "lr"),
        (["--lr", "-0.1"], "lr"),
        (["--epochs", "-3"], "epochs must be an integer >= 1"),
        (["--dataset", "npz", "--dataset-opt", "path=missing.npz"], "missing.npz"),
        (["--dataset", "mnist"], "unknown dataset 'mnist'"),
        (["--opt", "nonsense"], "cannot read --opt 'nonsense'"),
        (["--opt", "beta3=0.5"], "unknown parameter 'beta3'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message):
    result = runner.invoke(app, ["train", "--epochs", "1", *args])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert __import__("re").search(message, lines[0]), lines[0]


def test_divergence_exits_1():
    result = runner.invoke(app, ["train", "--epochs", "5", "--optimizer", "sgd", "--lr", "1e6", "--no-batchnorm"])
    assert result.exit_code == 1
    assert "diverged" in result.stdout


def test_json_output_of_a_diverged_run_is_json_any_parser_reads():
    """`"train_loss": NaN`: Python reads it, JSON (and JavaScript's JSON.parse) does not."""
    def strict(constant):
        raise ValueError(f"{constant} is no JSON")

    result = runner.invoke(app, ["train", "--epochs", "3", "--optimizer", "sgd", "--lr", "1e6", "--no-batchnorm",
                                 "--json"])
    assert result.exit_code == 1
    shown = json.loads(result.stdout, parse_constant=strict)
    assert shown["status"] == "diverged" and None in shown["history"][-1].values()


def test_a_log_record_with_a_traceback_is_one_line():
    from research.cli.app import OneLineFormatter

    try:
        raise OSError("in <TCP (closed) ConnectionPool.gather>: Stream is closed\nsecond line")
    except OSError:
        record = logging.LogRecord("tornado.application", logging.ERROR, __file__, 1, "Exception in %s",
                                   ("callback",), sys.exc_info())
    assert OneLineFormatter("warning: %(message)s").format(record) == "warning: Exception in callback"


@pytest.mark.parametrize("origin, command", [
    (None, "pip install 'research-hparams[dask]'"),
    ({"url": "https://example.org/research_hparams-0.1.0.tar.gz", "archive_info": {}},
     "pip install 'research-hparams[dask]'"),
    ({"url": "file://{checkout}/research%20src", "dir_info": {}}, "pip install '{checkout}/research src[dask]'"),
    ({"url": "file://{checkout}/research", "dir_info": {"editable": True}}, "pip install -e '{checkout}/research[dask]'"),
])
def test_an_extra_is_installed_from_where_research_came_from(monkeypatch, tmp_path, origin, command):
    """A checkout's install was told to pip install research-hparams[dask], which its index may lack.
    ``{checkout}`` stands for a folder research was installed from."""
    from research import extras

    if origin is not None:
        origin = {**origin, "url": origin["url"].replace("{checkout}", str(tmp_path))}

    class Installed:
        def read_text(self, name):
            return json.dumps(origin) if origin is not None and name == "direct_url.json" else None

    monkeypatch.setattr(extras.metadata, "distribution", lambda name: Installed())
    assert extras.install_command("dask") == command.replace("{checkout}", str(tmp_path))


@pytest.mark.parametrize("written", [False, True])
def test_a_lone_run_stopped_before_its_first_epoch_names_no_checkpoint_to_resume_from(monkeypatch, tmp_path,
                                                                                       written):
    """"resume with --checkpoint run.npz" after a Ctrl-C before epoch 1, where no file was written."""
    from research.nn.training import Trainer

    real = Trainer.train_epoch

    def stop_at(self):
        if self.epoch == (1 if written else 0):
            raise KeyboardInterrupt
        return real(self)

    monkeypatch.setattr(Trainer, "train_epoch", stop_at)
    path = tmp_path / "run.npz"
    result = cli("train", "--epochs", "5", "--hidden", "8", "--checkpoint", path)
    assert result.exit_code == 130, result.output
    assert result.stderr.strip().splitlines()[-1] == (
        f"interrupted after epoch 1; resume with --checkpoint {path}" if written else
        f"interrupted after epoch 0; no epoch finished, so nothing was written to {path}")
    assert path.exists() == written


@pytest.mark.parametrize("json_out", [False, True])
@pytest.mark.parametrize("stop, code, word", [("KeyboardInterrupt", 130, "interrupted"), ("Terminated", 143,
                                                                                           "terminated")])
def test_a_lone_run_stopped_shows_what_it_finished_and_says_how_it_stopped(monkeypatch, stop, code, word, json_out):
    """Ctrl-C or SIGTERM: a lone run without --checkpoint printed only "interrupted after epoch
    378", its epochs gone, and exited 130 for a SIGTERM too."""
    from research.cli import console
    from research.nn.training import Trainer

    real = Trainer.train_epoch

    def stop_at_epoch_3(self):
        if self.epoch == 2:
            raise getattr(console, stop) if stop == "Terminated" else KeyboardInterrupt
        return real(self)

    monkeypatch.setattr(Trainer, "train_epoch", stop_at_epoch_3)
    result = cli("train", "--epochs", "5", "--hidden", "8", *(["--json"] if json_out else []))
    assert result.exit_code == code, result.output
    assert result.stderr.strip().splitlines()[-1] == (
        f"{word} after epoch 2; nothing more is kept: with --checkpoint FILE a run can resume")
    if json_out:
        shown = json.loads(result.stdout)
        assert shown["status"] == "interrupted" and len(shown["history"]) == 2
    else:
        assert "learning curve" in result.stdout and "│     2 │" in result.stdout


def test_a_damaged_checkpoint_of_a_lone_run_is_refused_with_the_fix(tmp_path):
    """It said only "checkpoint t.npz cannot be read, it is truncated or damaged (...)"; the other
    refusals of a lone run's checkpoint say what to do."""
    path = tmp_path / "c.npz"
    assert cli("train", "--epochs", "2", "--hidden", "8", "--checkpoint", path).exit_code == 0
    path.write_bytes(path.read_bytes()[:300])
    again = cli("train", "--epochs", "3", "--hidden", "8", "--checkpoint", path)
    assert again.exit_code == 2, again.output
    said = " ".join(again.stderr.split())
    assert said.startswith("error: checkpoint ") and "cannot be read, it is truncated or damaged (BadZipFile" in said
    assert said.endswith("; restore it, or start over with another checkpoint path (delete this file only if it is "
                         "this run's own)")


def test_a_lone_run_s_checkpoint_is_never_the_store_or_a_file_research_keeps(tmp_path, monkeypatch):
    """--checkpoint research.db was read as a damaged checkpoint, and the fix said to delete it;
    --checkpoint research-checkpoints/x.ck wrote into the store's own folder."""
    monkeypatch.chdir(tmp_path)
    assert cli("train", "--strategy", "caviar", "--trials", "1", "--epochs", "1", "--hidden", "8", "--executor",
               "serial").exit_code == 0
    for path, says in (("research.db", "it is the store research.db"),
                       ("research-checkpoints/x.ck", "it is in the store's checkpoints folder")):
        refused = cli("train", "--epochs", "1", "--hidden", "8", "--checkpoint", path)
        assert refused.exit_code == 2 and f"cannot write {path}: {says}" in refused.stderr, refused.output


def test_running_out_of_memory_is_one_line_that_says_what_to_make_smaller(tmp_path, monkeypatch):
    """Under `ulimit -v` a model the size checks let through raised MemoryError mid-training: "this
    is a bug, not a mistake of yours"."""
    from research.nn.training import Trainer

    def exhausted(self, *args, **kwargs):
        raise MemoryError

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(Trainer, "train_epoch", exhausted)
    result = runner.invoke(app, ["train", "--epochs", "1", "--hidden", "8"])
    assert result.exit_code == 1, result.output
    assert result.stderr.splitlines()[-1] == (
        "error: out of memory: this process may not allocate what the model and its data need; make it smaller "
        "(its size options, such as --hidden or --channels, or --batch-size) or give the process more memory")

"""Mistakes made through the Python API are one-line UsageErrors naming the argument and the
fix, raised before anything is stored or trained (they were raw AttributeErrors, numpy's
ValueErrors, silently ignored arguments, or flags of the command line)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import research
from research.cli import app
from research.errors import UsageError
from research.nn.checkpoint import CheckpointError
from research.plugins import load_plugins
from research.report import export, ranked
from research.study import StudySettings, open_study
from research.study.store import Store

runner = CliRunner()
GOOD = {"strategy": "caviar", "base": {"epochs": 1}, "space": {}, "seed": 0, "trials": 2}
FAST = {"epochs": 1, "hidden": 16}


# 1. StudySettings ---------------------------------------------------------------------------

SEED = "seed must be an integer in 0 <= seed < 2**63, got "


@pytest.mark.parametrize("changed, message", [
    ({"seed": "x"}, SEED + "'x'"),
    ({"seed": -1}, SEED + "-1"),
    ({"seed": 1.5}, SEED + "1.5"),
    ({"seed": None}, SEED + "None"),
    ({"seed": True}, SEED + "True"),
    ({"seed": 2**63}, SEED + str(2**63)),  # the command line's --seed stops there too
    ({"seed": 2**70}, SEED + str(2**70)),
    ({"metric": 3}, "metric must be a metric's name such as 'val_acc', or None, got 3"),
    ({"metric": ""}, "metric must be a metric's name such as 'val_acc', or None, got ''"),
    ({"direction": 3}, "direction must be 'maximize' or 'minimize', or None (the metric's natural direction), got 3"),
    ({"base": [("epochs", 1)]},
     "base must be a dict of parameter names to fixed values, e.g. base={'epochs': 5}; got list"),
    ({"base": {1: 2}},
     "base must be a dict of parameter names to fixed values, e.g. base={'epochs': 5}; got the key 1"),
    ({"space": ["lr=log:1e-3..1"]},
     "space must be a dict of parameter names to definitions, e.g. space={'lr': 'log:1e-3..1'}; got list"),
    ({"space": None},
     "space must be a dict of parameter names to definitions, e.g. space={'lr': 'log:1e-3..1'}; got NoneType"),
    ({"strategy": 3}, "strategy must be a plugin's name (a string; `research plugins` lists them), got 3"),
    ({"sampler": None}, "sampler must be a plugin's name (a string; `research plugins` lists them), got None"),
    ({"sampler_options": [1]}, "sampler_options must be a dict of option names to values; got list"),
    ({"options": "x"}, "options must be a dict of option names to values; got str"),
    ({"prune_options": [1]}, "prune_options must be a dict of option names to values; got list"),
    ({"max_minutes": "x"}, "max_minutes must be a finite number > 0, got 'x'"),
    ({"max_epochs": 1.5}, "max_epochs must be a whole number > 0, got 1.5"),
    ({"from_study": 3}, "from_study must be a study's name, or None, got 3"),
])
def test_settings_of_the_wrong_form_are_refused_before_anything_is_stored(tmp_path: Path, changed, message) -> None:
    db = tmp_path / "research.db"
    plugins = load_plugins()
    with Store(db) as store:
        with pytest.raises(UsageError) as info:
            open_study(store, "bad", StudySettings(**{**GOOD, **changed}), plugins, executor="serial").run(
                plugins.build("strategies", "caviar"))
        assert str(info.value) == message
        assert store.studies() == []


@pytest.mark.parametrize("options, message", [
    ({"bogus": 1}, "strategy 'caviar': unknown option 'bogus'"),
    ({"retries": -3}, "strategy 'caviar': retries must be an integer >= 0, got -3"),
])
def test_strategy_options_are_checked_before_the_study_is_stored(tmp_path: Path, options, message) -> None:
    """They were stored unchecked: the study ran, and `research resume` then refused it."""
    plugins = load_plugins()
    with Store(tmp_path / "research.db") as store:
        with pytest.raises(UsageError, match=message):
            open_study(store, "bad", StudySettings(**GOOD, options=options), plugins, executor="serial")
        assert store.studies() == []


def test_a_resumed_study_runs_its_strategy_with_its_stored_options(tmp_path: Path) -> None:
    """python-api.md's resume built the strategy with its defaults: the stored options were
    shown but not used. ``study.run()`` builds the study's strategy with them."""
    from research.study.store import stored_settings

    plugins = load_plugins()
    settings = StudySettings(**{**GOOD, "base": {**FAST, "epochs": 2}}, options={"segment_epochs": 2})
    with Store(tmp_path / "research.db") as store:
        study = open_study(store, "s", settings, plugins, executor="serial")
        built = []
        real = plugins.build

        def recording(kind, name, *args, **options):
            built.append((kind, name, options))
            return real(kind, name, *args, **options)

        plugins.build = recording
        study.run()
    assert ("strategies", "caviar", {"segment_epochs": 2}) in built
    again = StudySettings(**stored_settings(tmp_path / "research.db", "s"))
    assert again.options == {"segment_epochs": 2}


def test_a_seed_string_leaves_no_study_that_resume_calls_a_bug(tmp_path: Path) -> None:
    """It was stored empty, then numpy's "unrecognized seed string" stopped the run; `research
    resume` on it said "this is a bug"."""
    db = tmp_path / "research.db"
    with Store(db) as store, pytest.raises(UsageError, match="^seed must be an integer"):
        open_study(store, "seed-str", StudySettings(**{**GOOD, "seed": "x"}), load_plugins(), executor="serial")
    result = runner.invoke(app, ["resume", "seed-str", "--store", str(db)])
    assert result.exit_code == 2, result.output
    assert "bug" not in result.stderr and "seed-str" in result.stderr


def test_the_largest_seed_the_command_line_takes_opens_a_study(tmp_path: Path) -> None:
    with Store(tmp_path / "research.db") as store:
        study = open_study(store, "big", StudySettings(**{**GOOD, "seed": 2**63 - 1}), load_plugins(),
                           executor="serial")
        assert study.record.settings["seed"] == 2**63 - 1


# 2. checkpoints --------------------------------------------------------------------------

def test_resume_without_a_checkpoint_path_is_refused() -> None:
    """It trained from the start, in silence."""
    with pytest.raises(UsageError) as info:
        research.train(FAST, resume=True)
    assert str(info.value) == ("resume=True needs checkpoint_path, the checkpoint to continue from; e.g. "
                               "research.train(..., checkpoint_path='run.npz', resume=True)")


def test_a_checkpoint_path_that_cannot_be_written_is_refused_before_training(tmp_path: Path) -> None:
    """A missing folder was created (the command line refuses it), a file as the folder was a
    FileExistsError after the first epoch, a number a TypeError."""
    missing = tmp_path / "typo" / "sub" / "run.npz"
    afile = tmp_path / "afile"
    afile.write_text("x")
    cases = [(missing, f"cannot write {missing}: folder {missing.parent} does not exist; create it or choose "
                       "another checkpoint_path"),
             (afile / "run.npz", f"cannot write {afile / 'run.npz'}: {afile} is a file, not a folder; choose "
                                 "another checkpoint_path"),
             (tmp_path, f"cannot write {tmp_path}: it is a folder; name a file in it, or choose another "
                        "checkpoint_path"),
             (123, "checkpoint_path must be a file path (a str or pathlib.Path), got int; e.g. "
                   "checkpoint_path='run.npz'")]
    for path, message in cases:
        with pytest.raises(UsageError) as info:
            research.train(FAST, checkpoint_path=path)
        assert str(info.value) == message
    assert not (tmp_path / "typo").exists()


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc, a folder that takes no new file")
def test_a_checkpoint_in_a_folder_that_takes_no_file_is_refused_in_the_api_and_the_cli() -> None:
    """Both were a raw FileNotFoundError on /proc/x.npz.tmp, after the first epoch."""
    with pytest.raises(UsageError) as info:
        research.train(FAST, checkpoint_path="/proc/x.npz")
    assert str(info.value).startswith("cannot write /proc/x.npz: folder /proc takes no new file (")
    assert str(info.value).endswith("); choose another checkpoint_path")
    result = runner.invoke(app, ["train", "--epochs", "2", "--hidden", "16", "--checkpoint", "/proc/x.npz"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: cannot write /proc/x.npz: folder /proc takes no new file (")
    assert result.stderr.strip().endswith("); choose another --checkpoint")
    assert len(result.stderr.strip().splitlines()) == 1


def test_the_cli_names_a_file_where_the_checkpoint_folder_should_be(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("x")
    result = runner.invoke(app, ["train", "--epochs", "1", "--hidden", "16", "--checkpoint", str(afile / "x.npz")])
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: cannot write {afile / 'x.npz'}: {afile} is a file, not a folder; " \
                                    "choose another --checkpoint"


def test_a_checkpoint_error_through_the_api_names_no_flag(tmp_path: Path) -> None:
    """It said "(only --epochs may change)" and "(--epochs)" to a Python caller."""
    path = tmp_path / "run.npz"
    research.train(FAST, epochs=2, checkpoint_path=path)
    with pytest.raises(CheckpointError) as info:
        research.train(FAST, lr=0.1, checkpoint_path=path, resume=True)
    assert str(info.value) == (f"checkpoint {path} was written with lr=0.001, not 0.1; use the options it was "
                               "written with (only epochs may change), or delete it to start over")
    with pytest.raises(CheckpointError) as info:
        research.train(FAST, checkpoint_path=path, resume=True)
    assert str(info.value) == (f"checkpoint {path} holds 2 epochs, more than the 1 asked; ask for 2 epochs or more, "
                               "or delete it to start over")


# 3. plugins ------------------------------------------------------------------------------

@pytest.mark.parametrize("plugins, message", [
    ("my_module", "plugins must be a list of plugin modules or their names, e.g. plugins=['my_module']; got str"),
    (research, "plugins must be a list of plugin modules or their names, e.g. plugins=[research]; got module"),
    (None, "plugins must be a list of plugin modules or their names, e.g. plugins=[my_module]; got NoneType"),
])
def test_plugins_that_are_not_a_list_are_refused(plugins, message) -> None:
    """A name was read as its letters: cannot import plugin 'm'."""
    with pytest.raises(UsageError) as info:
        research.train(FAST, plugins=plugins)
    assert str(info.value) == message
    with pytest.raises(UsageError) as info:
        load_plugins(plugins)
    assert str(info.value) == message


# 4. ranked -------------------------------------------------------------------------------

def test_ranked_and_export_name_what_to_pass_for_the_study(tmp_path: Path) -> None:
    """A name, None or the open study were AttributeErrors."""
    with Store(tmp_path / "research.db") as store:
        study = open_study(store, "my-study", StudySettings(**GOOD), load_plugins(), executor="serial")
        for function, name in ((ranked, "ranked"), (lambda store, study: export(store, study, "csv"), "export")):
            cases = [("my-study", f"{name} takes the study's record, not its name: pass store.study('my-study')"),
                     (study, f"{name} takes the study's record, not the open study: pass study.record"),
                     (None, f"{name} takes a study's record, got NoneType; pass store.study(NAME), or study.record "
                            "of an open study")]
            for wrong, message in cases:
                with pytest.raises(UsageError) as info:
                    function(store, wrong)
                assert str(info.value) == message
        assert ranked(store, study.record) == []


def test_an_existing_checkpoint_is_not_written_over_without_resume(tmp_path):
    """A second call with the same checkpoint_path trained anew and replaced the file in silence."""
    path = tmp_path / "run.npz"
    research.train(FAST, epochs=1, checkpoint_path=path)
    before = path.read_bytes()
    with pytest.raises(UsageError, match=r"checkpoint .*run\.npz exists: pass resume=True to continue it, or delete it"):
        research.train(FAST, epochs=2, checkpoint_path=path)
    assert path.read_bytes() == before


def test_a_misspelled_parameter_gets_its_close_name() -> None:
    """`epoch = 1` in a study.toml (or research.train(epoch=1)) listed some thirty names and said
    nothing of the one meant."""
    from research.nn.config import UnknownParameterError

    with pytest.raises(UnknownParameterError, match=r"^unknown parameter 'epoch' \(did you mean 'epochs'\?\) for "):
        research.train(epoch=1)
    with pytest.raises(UnknownParameterError, match=r"^unknown parameter 'gamma' for "):  # nothing close: no guess
        research.train(gamma=1)

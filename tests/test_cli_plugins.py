"""What plugins contribute to the command line: `research train` flags from their
declarations, commands of their own, one-line errors naming them; and what the command line
refuses: a flag that does not apply, a bug shown as a bug."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner

from research.cli import app
from tests.thirdparty import make_distribution

runner = CliRunner()
TINY = ["--hidden", "8", "--epochs", "1"]




def one_error_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_train_help_lists_flags_declared_by_the_model_and_the_strategies():
    result = runner.invoke(app, ["train", "--help"])
    assert result.exit_code == 0, result.output
    for flag in ("--hidden", "--layers", "--batchnorm", "--epochs", "--batch-size", "--segment-epochs", "--segments",
                 "--interactive", "--policy", "--strategy", "--trials"):
        assert flag in result.stdout, flag
    assert "(strategy babysit)" in result.stdout


def test_train_help_says_which_strategies_use_each_study_setting():
    """`--trials`, `--sampler`, `--workers`... read as if every strategy used them; babysit
    refuses each. Their help names the strategies that use them, as a plugin's flag does."""
    result = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.replace("│", " ").split())
    for shown in ("Trials in the study (strategy caviar) [default: 32].",
                  "Sampler plugin (strategy caviar) [default: random]. Installed:",
                  "Sampler option key=value (strategy caviar).", "e.g. lr=log:1e-4..1 (strategy caviar).",
                  "over all its trials (strategy caviar) [default: none]."):
        assert shown in text, shown
    assert "Learning rate [default: the optimizer's]." in text  # not a study setting: no strategy named


@pytest.mark.parametrize("args, message", [
    (["--strategy", "caviar", "--strategy-opt", "foo=1"],
     "error: strategy 'caviar': unknown option 'foo'; valid names: segment_epochs, retries, checkpoint_seconds"),
    (["--strategy", "caviar", "--strategy-opt", "segment_epochs=abc"],
     "error: strategy 'caviar': segment_epochs must be an integer >= 1, got 'abc'"),
    (["--strategy", "babysit", "--strategy-opt", "interactive=ture"],
     "error: strategy 'babysit': interactive must be true or false, got 'ture'"),
    (["--strategy", "babysit", "--policy", "sometimes"],
     "error: strategy 'babysit': policy must be one of: auto, none, got 'sometimes'"),
    (["--segments", "3"], "error: --segments is an option of a study strategy; add --strategy babysit"),
    (["--strategy", "caviar", "--segments", "3"],
     "error: --segments does not apply to strategy 'caviar'; it is an option of --strategy babysit"),
    (["--strategy", "babysit", "--trials", "4"], "error: strategy 'babysit' does not use --trials"),
    (["--strategy", "babysit", "--sampler", "grid"], "error: strategy 'babysit' does not use --sampler"),
    (["--trials", "4"], "error: --trials shapes a study; add --strategy NAME"),
    (["--max-minutes", "1"], "error: --max-minutes shapes a study; add --strategy NAME"),
    (["--strategy-opt", "patience=3"], "error: --strategy-opt is an option of a study strategy; add --strategy NAME"),
    (["--executor-opt", "address=x"], "error: --executor-opt shapes a study; add --strategy NAME"),
    (["--strategy", "caviar", "--checkpoint", "x.npz"], "error: --checkpoint is for one model; a study keeps"),
    (["--plot", "x.png"], "error: --plot names a study's picture; one model prints its table"),
    (["--store", "x.db"], "error: --store is where studies are kept, and one model keeps nothing in a store: drop "
                          "--store, or add"),
    (["--strategy", "babysit", "--max-epochs", "3"], "error: strategy 'babysit' does not use --max-epochs"),
    (["--strategy", "babysit", "--epochs", "7"],  # trained 2 x 1 epochs in silence
     "error: strategy 'babysit' trains --segments x --segment-epochs epochs; drop --epochs"),
    (["--strategy", "caviar", "--max-minutes", "nan"], "error: --max-minutes must be a finite number > 0, got nan"),
    (["--strategy", "caviar", "--max-minutes", "inf"],
     "error: --max-minutes must be a finite number > 0, got inf; leave it out for no budget"),
    (["--sampler", "grid", "--strategy", "caviar", "--sampler-opt", "points=3"],
     "error: sampler 'grid': unknown option 'points'; valid names: points_per_axis"),
    (["--hidden", "0"], "error: model 'mlp': hidden must be an integer >= 1, got 0"),
    (["--dtype", "float16"], "error: training: dtype must be one of: float32, float64, got 'float16'"),
    (["--model", "cnn", "--no-batchnorm"],  # was named --batchnorm, the flag not given
     "error: --no-batchnorm does not apply to model 'cnn'; it is an option of --model mlp"),
])
def test_options_and_flags_that_do_not_apply_are_one_line_and_exit_2(tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    # babysit's length is its segments'; a cnn has no --hidden
    tiny = ["--hidden", "8"] if "babysit" in args else ["--epochs", "1"] if "cnn" in args else TINY
    result = runner.invoke(app, ["train", *tiny, *args])
    assert result.exit_code == 2, result.output
    assert one_error_line(result).startswith(message)
    assert not (tmp_path / "research.db").exists()  # refused before any store is made


@pytest.mark.parametrize("text, flags, message", [
    ('strategy = "babysit"\nepochs = 4\n', [],
     "error: strategy 'babysit' trains --segments x --segment-epochs epochs; drop epochs in study.toml"),
    ('strategy = "babysit"\ntrials = 4\nsampler = "gp"\n', [],
     "error: strategy 'babysit' does not use sampler in study.toml, trials in study.toml (of the study settings it "
     "uses none of them); drop them"),
    ('strategy = "babysit"\ntrials = 4\n', ["--trials", "5"], "error: strategy 'babysit' does not use --trials ("),
    # a lone run took the file's store in silence (and kept nothing there), where --store is refused
    ('store = "x.db"\n', [], "error: store in study.toml is where studies are kept, and one model keeps nothing in a "
     "store: drop it, or add --strategy NAME"),
])
def test_a_study_file_key_that_does_not_apply_is_named_as_the_files(tmp_path, monkeypatch, text, flags, message):
    """Errors named the flag for a study.toml's key: "drop --epochs" for a file that said epochs = 4."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "study.toml").write_text(text)
    result = runner.invoke(app, ["train", "--hidden", "8", "--config", "study.toml", *flags])
    assert result.exit_code == 2, result.output
    assert one_error_line(result).startswith(message)
    assert not (tmp_path / "research.db").exists()


THIRD_PARTY = '''
    from typing import Annotated
    import typer
    from research import hookimpl
    from research.options import Option
    from research.study.sampler import Sampler
    from research.space import sample_uniform
    from research.study.strategy import Strategy

    class Jittered(Sampler):
        name = "jittered"

        def __init__(self, *, spread: Annotated[float, Option("How far", min=0)] = 1.0):
            self.spread = spread

        def ask(self, space, history, rng):
            return sample_uniform(space, rng)

    class Boom(Strategy):
        name = "boom"

        def run(self, study):
            raise KeyError("x")

    def wordy_sampler():
        raise ValueError("this sampler needs\\ntwo lines to explain")

    def picky_sampler(*, level: int = 1):
        if level > 3:
            raise ValueError("level must be at most 3")
        return Jittered()

    @hookimpl
    def register_samplers(register):
        register("jittered", Jittered)
        register("picky", picky_sampler)
        register("wordy", wordy_sampler)

    @hookimpl
    def register_strategies(register):
        register("boom", Boom)

    @hookimpl
    def register_datasets(register):
        register("notds", lambda seed=0: {"x": 1})

    @hookimpl
    def register_commands(cli):
        @cli.command()
        def hello(name: str = "world") -> None:
            """Say hello from a plugin."""
            typer.echo(f"hello {name}")

        @cli.command()
        def broken() -> None:
            """A command with a bug."""
            raise RuntimeError("boom")
'''


def test_a_third_party_command_runs_and_is_listed(site):
    make_distribution(site, "tp-cli", "tp_cli", THIRD_PARTY)
    listed = runner.invoke(app, ["--help"])
    assert listed.exit_code == 0 and "hello" in listed.stdout and "Say hello from a plugin" in listed.stdout
    result = runner.invoke(app, ["hello", "--name", "panda"])
    assert result.exit_code == 0 and result.stdout == "hello panda\n"


def test_a_bug_is_one_line_that_names_the_plugin_with_exit_1_and_debug_shows_it(site):
    """It said "this is a bug, not a mistake of yours ... report it", as if research's."""
    make_distribution(site, "tp-cli", "tp_cli", THIRD_PARTY)
    result = runner.invoke(app, ["broken"])
    assert result.exit_code == 1
    line = one_error_line(result)
    assert line.startswith("error: plugin 'tp_cli': command 'broken' failed: RuntimeError: boom (a bug in that plugin")
    assert "--debug" in line
    debug = runner.invoke(app, ["--debug", "broken"])  # the traceback, then the same line and exit code
    assert debug.exit_code == 1
    assert "Traceback (most recent call last)" in debug.stderr and "RuntimeError: boom" in debug.stderr
    assert debug.stderr.strip().splitlines()[-1] == line


OBSERVED = '''
    from research import hookimpl
    from research.space import sample_uniform

    class LaterBroken:
        def ask(self, space, history, rng):
            if history.number >= 1:
                raise RuntimeError("second draw")
            return sample_uniform(space, rng)

    @hookimpl
    def register_samplers(register):
        register("later-broken", LaterBroken)

    @hookimpl
    def on_epoch_end(trial, epoch, metrics):
        raise ValueError("observer down")
'''


def test_an_observer_that_failed_is_told_when_the_study_then_stops_on_an_error(site, tmp_path, monkeypatch):
    """The observer's warning was printed after a study that ended well, and lost when it
    stopped on an error: only the error line was left."""
    monkeypatch.chdir(tmp_path)
    make_distribution(site, "tp-obs", "tp_obs", OBSERVED)
    result = runner.invoke(app, ["train", "--strategy", "caviar", "--sampler", "later-broken", "--executor", "serial",
                                 "--trials", "3", *TINY])
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: plugin 'tp_obs': sampler 'later-broken' failed in ask: RuntimeError: second")
    assert any(line.startswith("warning: plugin 'tp_obs' failed in on_epoch_end: ValueError: observer down")
               for line in lines[:-1]), result.stderr


def test_an_observer_that_failed_is_told_after_the_ranked_table_json_left_pure(site, tmp_path, monkeypatch):
    """The plugin problems were printed just before the final table, where a user reading it
    last missed them; they follow it, and --json keeps stdout to the JSON."""
    monkeypatch.chdir(tmp_path)
    make_distribution(site, "tp-obs", "tp_obs", OBSERVED)
    result = runner.invoke(app, ["train", "--strategy", "caviar", "--executor", "serial", "--trials", "2", *TINY])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    table_end = max(i for i, line in enumerate(lines) if line.startswith("└"))
    warned = [i for i, line in enumerate(lines) if line.startswith("warning: plugin 'tp_obs' failed in on_epoch_end")]
    assert warned and min(warned) > table_end, result.output
    as_json = runner.invoke(app, ["train", "--strategy", "caviar", "--executor", "serial", "--trials", "2", "--json",
                                  *TINY])
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.stdout)["trials"] and "warning: plugin 'tp_obs'" in as_json.stderr


def test_debug_keeps_the_exit_code_of_a_mistake(tmp_path, monkeypatch):
    """With --debug a mistake of the user's raised its traceback and exited 1, a failure to a
    script; it shows the traceback and exits 2, as without --debug."""
    monkeypatch.chdir(tmp_path)
    plain = runner.invoke(app, ["show", "nothing"])
    debug = runner.invoke(app, ["--debug", "show", "nothing"])
    assert plain.exit_code == debug.exit_code == 2
    assert "Traceback (most recent call last)" in debug.stderr
    assert debug.stderr.strip().splitlines()[-1] == plain.stderr.strip()
    flag = runner.invoke(app, ["--debug", "show", "--bogus"])
    assert flag.exit_code == 2 and flag.stderr.strip().splitlines()[-1].startswith("error: No such option: --bogus")


def test_a_strategy_that_raises_is_named_as_the_bug_of_its_plugin(site):
    """It said "this is a bug, not a mistake of yours ... report it", as if research's."""
    make_distribution(site, "tp-cli", "tp_cli", THIRD_PARTY)
    result = runner.invoke(app, ["train", "--strategy", "boom", *TINY, "--trials", "1"])
    assert result.exit_code == 1
    last = result.stderr.strip().splitlines()[-1]  # after the study's header
    assert last.startswith("error: plugin 'tp_cli': strategy 'boom' failed in run: KeyError: 'x' (a bug in that plugin")
    listed = runner.invoke(app, ["studies", "--json"])  # the empty study it made is not kept (it held no trial)
    assert listed.exit_code == 0 and json.loads(listed.stdout)["studies"] == [], listed.output


FAILING_AT_ONCE = """
    from research import hookimpl
    from research.study.strategy import Strategy


    def dict_executor(workers):
        return {"workers": workers}


    class Boom(Strategy):
        def run(self, study):
            raise KeyError("x")


    class Idle(Strategy):
        def run(self, study):
            pass


    @hookimpl
    def register_executors(register):
        register("dict", dict_executor)


    @hookimpl
    def register_strategies(register):
        register("boom", Boom)
        register("idle", Idle)
"""


@pytest.mark.parametrize("args, says", [
    (["--strategy", "caviar", "--executor", "dict"], "executor 'dict' returned a builtins.dict, not a "),
    (["--strategy", "boom"], "strategy 'boom' failed in run: KeyError: 'x'"),
])
def test_a_study_that_fails_before_storing_a_trial_is_not_kept(site, args, says):
    """An executor that returned a dict, or a strategy that raised at once, left an empty study
    that `research studies` listed and whose resume failed again; a study stored before is kept."""
    make_distribution(site, "tp-early", "tp_early", FAILING_AT_ONCE)
    result = runner.invoke(app, ["train", *args, "--trials", "1", *TINY])
    assert result.exit_code == 1, result.output
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: plugin 'tp_early': {says}"), result.stderr
    listed = runner.invoke(app, ["studies", "--json"])
    assert listed.exit_code == 0 and json.loads(listed.stdout)["studies"] == [], listed.output
    assert not [path for path in (site.parent / "research-checkpoints").glob("study-*")]


def test_a_stored_study_is_kept_when_a_later_run_fails_before_storing_a_trial(site):
    """Only a study made for the run that failed is forgotten: one stored before is the user's."""
    from research.errors import PluginFailure
    from research.plugins import load_plugins
    from research.study import StudySettings, open_study
    from research.study.guarded import Guarded
    from research.study.store import Store

    make_distribution(site, "tp-early", "tp_early", FAILING_AT_ONCE)
    plugins = load_plugins()
    settings = StudySettings(strategy="idle", base={"epochs": 1, "hidden": 8}, space={"lr": "log:1e-3..1e-1"},
                             trials=1)
    with Store(site.parent / "research.db") as store:
        open_study(store, "kept", settings, plugins, executor="serial").run()
        again = open_study(store, "kept", settings, plugins, executor="serial")
        with pytest.raises(PluginFailure, match="strategy 'boom' failed in run"):
            again.run(Guarded(plugins.build("strategies", "boom"), "strategy 'boom'", "tp_early"))
        assert [study.name for study in store.studies()] == ["kept"]


DISPLAYED = """
    from research import hookimpl
    from research_plugins.caviar import Caviar


    class Display:
        def trial_started(self, number, config):
            pass

        def epoch_done(self, number, epoch, metrics):
            raise RuntimeError("display broke")

        def trial_ended(self, number, status, error):
            pass

        def note(self, text):
            pass

        def prompt(self, summary, choices):
            return "stop"


    class Entered(Display):
        def __enter__(self):
            raise RuntimeError("cannot enter")

        def __exit__(self, *exc):
            return None


    class Shown(Caviar):
        def __init__(self, *, display: str = "loud"):
            super().__init__()
            self.display = display

        def reporter(self, console, ask):
            if self.display == "raising":
                raise KeyError("console")
            return {"loud": Display, "entered": Entered, "dict": dict}[self.display]()


    @hookimpl
    def register_strategies(register):
        register("shown", Shown)
"""


@pytest.mark.parametrize("display, says", [
    ("loud", "the display of strategy 'shown' failed in epoch_done: RuntimeError: display broke"),
    ("entered", "the display of strategy 'shown' failed in __enter__: RuntimeError: cannot enter"),
    ("raising", "strategy 'shown' failed in reporter: KeyError: 'console'"),
    ("dict", "strategy 'shown': reporter() returned a dict without trial_started, epoch_done, trial_ended, note, "
             "prompt; a strategy's display has what research.contracts.Reporter lists"),
])
def test_a_strategy_display_that_fails_is_named_as_the_bug_of_its_plugin(site, display, says):
    """Its reporter() raising, or its display's __enter__, said "this is a bug, not a mistake of
    yours ... report it", as if research's; its epoch_done was blamed on the strategy's run."""
    make_distribution(site, "tp-shown", "tp_shown", DISPLAYED)
    result = runner.invoke(app, ["train", "--strategy", "shown", "--strategy-opt", f"display={display}",
                                 "--executor", "serial", "--trials", "1", *TINY])
    assert result.exit_code == 1, result.output
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: plugin 'tp_shown': {says}"), result.stderr


@pytest.mark.parametrize("study", [[], ["--strategy", "caviar", "--trials", "2", "--workers", "1"]])
def test_a_dataset_factory_returning_no_dataset_is_named_alone_and_in_a_study(site, study):
    """Alone it blamed the built-in trainer ("plugin 'trainers' failed building trainer 'research'"),
    in a study it was "a bug, not a mistake of yours" with no plugin named."""
    make_distribution(site, "tp-cli", "tp_cli", THIRD_PARTY)
    result = runner.invoke(app, ["train", "--dataset", "notds", "--epochs", "1", *study])
    assert result.exit_code == 1, result.output
    assert result.stderr.strip().splitlines()[-1].startswith(
        "error: plugin 'tp_cli': dataset 'notds' returned a builtins.dict, not a research.data.dataset.Dataset (what "
        "every dataset factory returns)")


def test_third_party_options_get_the_same_one_line_errors(site):
    make_distribution(site, "tp-cli", "tp_cli", THIRD_PARTY)
    study = ["train", "--strategy", "caviar", *TINY, "--trials", "1", "--executor", "serial"]
    unknown = runner.invoke(app, [*study, "--sampler", "jittered", "--sampler-opt", "width=2"])
    assert unknown.exit_code == 2
    assert one_error_line(unknown) == "error: sampler 'jittered': unknown option 'width'; valid names: spread"
    bad = runner.invoke(app, [*study, "--sampler", "jittered", "--sampler-opt", "spread=-1"])
    assert one_error_line(bad) == "error: sampler 'jittered': spread must be a number >= 0, got '-1'"
    refused = runner.invoke(app, [*study, "--sampler", "picky", "--sampler-opt", "level=5"])
    assert refused.exit_code == 2
    assert one_error_line(refused) == "error: sampler 'picky': level must be at most 3"
    wordy = runner.invoke(app, [*study, "--sampler", "wordy"])  # its second line was dropped without a word
    assert one_error_line(wordy) == ("error: sampler 'wordy': this sampler needs (and 1 more line: --debug shows "
                                     "them)")
    plain = runner.invoke(app, [*study, "--sampler", "picky", "--sampler-opt", "level=x"])
    assert one_error_line(plain) == "error: sampler 'picky': level must be an integer, got 'x'"
    ok = runner.invoke(app, [*study, "--sampler", "jittered", "--sampler-opt", "spread=2", "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["trials"][0]["status"] == "finished"


def test_train_help_names_the_installed_plugins_where_a_flag_takes_one():
    shown = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "400", "TERMINAL_WIDTH": "400"}).stdout
    lines = {line.split()[1]: line for line in shown.splitlines() if line.startswith("│ --")}
    assert "Installed: babysit, caviar." in lines["--strategy"]
    assert "Installed: asha, median." in lines["--prune"] and "[default: none]" in lines["--prune"]
    assert "Installed: command, research." in lines["--trainer"]


COMMANDS = ["train", "plugins", "sample", "resume", "delete", "rename", "studies", "show", "export", "confirm",
            "export-model", "log", "plot", "importance", "report", "set", "rollback", "stop"]


@pytest.mark.parametrize("command", [[name] for name in COMMANDS] + [[]])
def test_help_shows_flags_without_a_value_type_and_keeps_bracketed_text(command):
    shown = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "400", "TERMINAL_WIDTH": "400"}).stdout
    assert "<bool>" not in shown and "--help " in shown
    assert not re.search(r" \.(\s|$)", shown, re.M)  # what is left when markup eats a bracketed "[default: ...]"
    if command == ["train"]:
        lines = {line.split()[1]: line for line in shown.splitlines() if line.startswith("│ --")}
        assert "[space.NAME]" in lines["--config"] and "(model mlp) [default: 2]." in lines["--layers"]
        assert "--no-batchnorm" in lines["--batchnorm"] and "[default: True]" in lines["--batchnorm"]


def test_a_command_whose_name_is_taken_is_refused_naming_the_plugin(site):
    """A plugin's `train` (a built-in's name) and a second plugin's `hello` (the first's):
    the first is refused, both plugins' `hello` too, and `research plugins` names them."""
    make_distribution(site, "tp-cli", "tp_cli", THIRD_PARTY)
    make_distribution(site, "tp-clash", "tp_clash", '''
        from research import hookimpl

        @hookimpl
        def register_commands(cli):
            @cli.command()
            def train() -> None:
                """Not the built-in train."""

            @cli.command()
            def hello() -> None:
                """Not tp_cli's hello."""
    ''')
    listed = runner.invoke(app, ["plugins", "--json"])
    assert listed.exit_code == 0, listed.output
    problems = json.loads(listed.stdout)["problems"]
    assert problems == [
        "plugins 'tp_clash' and 'tp_cli' both add a command 'hello'; neither is added: uninstall or change one of them",
        "plugin 'tp_clash' adds a command 'train', the name of a built-in one; it is not added: rename it in that plugin"]
    result = runner.invoke(app, ["hello", "--name", "panda"])
    assert result.exit_code == 2 and "No such command 'hello'" in result.output
    assert runner.invoke(app, ["broken"]).exit_code == 1  # tp_cli's other command is there


def test_a_flag_without_its_dashes_fails_its_plugin_alone(site):
    """Option(flag="depth") made every `research train` fail with a TypeError from typer, and
    `research --help` print a traceback, whatever model was used."""
    make_distribution(site, "tp-flag", "tp_flag", '''
        from typing import Annotated
        from research import hookimpl
        from research.nn.model import MLP
        from research.options import Option

        def deep(input_shape, n_classes, *, dtype, rng,
                 depth: Annotated[int, Option("Depth", min=1, flag="depth")] = 1):
            return MLP(input_shape, n_classes, dtype=dtype, rng=rng, layers=depth)

        @hookimpl
        def register_models(register):
            register("deep", deep)
    ''')
    listed = runner.invoke(app, ["plugins", "--json"])
    assert listed.exit_code == 0, listed.output
    assert any("plugin 'tp_flag'" in p and "failed to load: ValueError: Option(flag='depth') is not a long flag; "
               "write it as '--depth'" in p for p in json.loads(listed.stdout)["problems"])
    assert runner.invoke(app, ["--help"]).exit_code == 0
    result = runner.invoke(app, ["train", *TINY])
    assert result.exit_code == 0, result.output


def test_a_flag_that_another_option_has_is_not_offered_nor_listed_and_the_refusal_names_the_way(site):
    """A model's --hidden (the mlp's) and a sampler's flag (samplers have none): `research
    plugins` listed both as flags, and `--model floathidden --hidden 3` said only that --hidden
    is the mlp's."""
    make_distribution(site, "tp-flags", "tp_flags", '''
        from typing import Annotated
        from research import hookimpl
        from research.nn.model import MLP
        from research.options import Option
        from research.study.sampler import Sampler

        def floathidden(input_shape, n_classes, *, dtype, rng,
                        hidden: Annotated[float, Option("Width", min=0.5, flag="--hidden")] = 1.5):
            return MLP(input_shape, n_classes, dtype=dtype, rng=rng, hidden=int(hidden * 10))

        class Flagged(Sampler):
            name = "flagged"

            def __init__(self, *, spread: Annotated[int, Option("Spread", min=1, flag="--spread")] = 1):
                self.spread = spread

        @hookimpl
        def register_models(register):
            register("floathidden", floathidden)

        @hookimpl
        def register_samplers(register):
            register("flagged", Flagged)
    ''')
    listed = runner.invoke(app, ["plugins", "--json"])
    assert listed.exit_code == 0, listed.output
    shown = json.loads(listed.stdout)
    assert shown["options"]["models"]["floathidden"]["hidden"]["flag"] is None
    assert shown["options"]["samplers"]["flagged"]["spread"]["flag"] is None
    assert shown["options"]["models"]["mlp"]["hidden"]["flag"] == "--hidden"
    assert ("model 'floathidden' declares flag --hidden, which another option has; not offered: set it with "
            "--model-opt hidden=VALUE") in shown["problems"]
    assert ("sampler 'flagged' declares flag --spread, but only models, trainers and strategies have flags of "
            "their own; not offered: set it with --sampler-opt spread=VALUE") in shown["problems"]
    result = runner.invoke(app, ["train", "--model", "floathidden", "--hidden", "3", "--epochs", "1"])
    assert result.exit_code == 2
    assert one_error_line(result).endswith("(to model 'floathidden', give it as --model-opt hidden=VALUE)")
    done = runner.invoke(app, ["train", "--model", "floathidden", "--model-opt", "hidden=3", "--epochs", "1"])
    assert done.exit_code == 0, done.output


def test_two_third_parties_that_want_one_flag_both_lose_it_and_a_built_in_of_any_kind_keeps_its(site, tmp_path):
    """The plugin loaded first took a contested flag, so installing a model that declared
    --patience broke a strategy's documented --patience; and a model's --segments (models come
    before strategies) took babysit's."""
    make_distribution(site, "tp-rivals", "tp_rivals", '''
        from typing import Annotated
        from research import hookimpl
        from research.nn.model import MLP
        from research.options import Option
        from research.study.strategy import Strategy

        def patient(input_shape, n_classes, *, dtype, rng,
                    patience: Annotated[int, Option("Patience", min=1, flag="--patience")] = 2,
                    segments: Annotated[int, Option("Segments", min=1, flag="--segments")] = 2):
            return MLP(input_shape, n_classes, dtype=dtype, rng=rng, hidden=8)

        class Waiting(Strategy):
            name = "waiting"

            def __init__(self, *, patience: Annotated[int, Option("Patience", min=1, flag="--patience")] = 3):
                self.patience = patience

            def run(self, study):
                pass

        @hookimpl
        def register_models(register):
            register("patient", patient)

        @hookimpl
        def register_strategies(register):
            register("waiting", Waiting)
    ''')
    listed = runner.invoke(app, ["plugins", "--json"])
    shown = json.loads(listed.stdout)
    assert shown["options"]["strategies"]["babysit"]["segments"]["flag"] == "--segments"
    assert shown["options"]["models"]["patient"]["segments"]["flag"] is None
    assert shown["options"]["models"]["patient"]["patience"]["flag"] is None
    assert shown["options"]["strategies"]["waiting"]["patience"]["flag"] is None
    assert ("model 'patient' and strategy 'waiting' both declare flag --patience; neither is offered: set them with "
            "--model-opt patience=VALUE and --strategy-opt patience=VALUE") in shown["problems"]
    assert ("model 'patient' declares flag --segments, which another option has; not offered: set it with "
            "--model-opt segments=VALUE") in shown["problems"]
    babysat = runner.invoke(app, ["train", "--strategy", "babysit", "--segments", "1", "--segment-epochs", "1",
                                  "--hidden", "8", "--store", str(tmp_path / "b.db"),
                                  "--plot", str(tmp_path / "b.png")])
    assert babysat.exit_code == 0, babysat.output


def test_a_default_outside_its_own_declaration_is_the_plugin_s_bug_named_before_it_runs(site):
    """`k: Annotated[int, Option(min=1)] = 0` reached the sampler's code unchecked, and a study
    ran with it; a model's bad default was blamed on the mlp it built."""
    make_distribution(site, "tp-defaults", "tp_defaults", '''
        from typing import Annotated
        from research import hookimpl
        from research.nn.model import MLP
        from research.nn.schedule import Schedule
        from research.options import Option
        from research.study.sampler import Sampler

        class Zero(Sampler):
            name = "zero"

            def __init__(self, *, k: Annotated[int, Option("k", min=1)] = 0):
                self.k = k

            def ask(self, space, history, rng):
                return {n: p.from_unit(rng.random()) for n, p in space.items()}

        class Wide(Schedule):
            name = "wide"

            def __init__(self, *, factor: Annotated[float, Option("f", above=0, below=1)] = 2.0):
                self.factor = factor

            def lr(self, base_lr, epoch):
                return base_lr

        def thin(input_shape, n_classes, *, dtype, rng, width: Annotated[int, Option("Width", min=1)] = 0):
            return MLP(input_shape, n_classes, dtype=dtype, rng=rng, hidden=width)

        @hookimpl
        def register_samplers(register):
            register("zero", Zero)

        @hookimpl
        def register_schedules(register):
            register("wide", Wide)

        @hookimpl
        def register_models(register):
            register("thin", thin)
    ''')
    study = ["train", "--strategy", "caviar", "--trials", "2", *TINY, "--space", "lr=log:1e-3..1e-1"]
    result = runner.invoke(app, [*study, "--sampler", "zero"])
    assert result.exit_code == 1
    assert one_error_line(result).startswith(
        "error: plugin 'tp_defaults': sampler 'zero' declares k=0 as its default, but k must be an integer >= 1; "
        "the plugin must change its default (meanwhile give --sampler-opt k=VALUE)")
    assert runner.invoke(app, [*study, "--sampler", "zero", "--sampler-opt", "k=2"]).exit_code == 0
    wide = runner.invoke(app, ["train", *TINY, "--schedule", "wide"])
    assert wide.exit_code == 1 and "schedule 'wide' declares factor=2.0 as its default, but factor must be " \
                                   "a number in (0, 1)" in one_error_line(wide)
    thin = runner.invoke(app, ["train", "--model", "thin", "--epochs", "1"])
    assert thin.exit_code == 1 and "model 'thin' declares width=0 as its default" in one_error_line(thin)


def test_a_strategy_that_returns_at_once_is_said_to_have_trained_nothing(site):
    """It looked like success: an empty table, exit 0, and a hint to resume, which did the same."""
    make_distribution(site, "tp-idle", "tp_idle", '''
        from research import hookimpl
        from research.study.strategy import Strategy

        class Idle(Strategy):
            name = "idle"

            def run(self, study):
                pass

        @hookimpl
        def register_strategies(register):
            register("idle", Idle)
    ''')
    result = runner.invoke(app, ["train", "--strategy", "idle", "--trials", "3", *TINY])
    assert result.exit_code == 0, result.output
    assert ("warning: strategy 'idle' ended without starting a trial, so nothing was trained (plugin 'tp_idle')"
            in result.stderr)
    assert "research resume" not in result.output  # which trains nothing either
    done = runner.invoke(app, ["train", "--strategy", "caviar", "--trials", "1", *TINY])
    assert done.exit_code == 0 and "without starting a trial" not in done.stderr


MISCAST = """
    from research import hookimpl
    from research_plugins.caviar import Caviar


    class Yes(Caviar):
        accepts = "yes"


    class Five(Caviar):
        epochs_from = 5


    class Maybe(Caviar):
        replays = "maybe"


    @hookimpl
    def register_strategies(register):
        register("yes", Yes)
        register("five", Five)
        register("maybe", Maybe)
"""


@pytest.mark.parametrize("strategy, says", [
    ("yes", "accepts = 'yes'; it must be a set of the study settings it uses, of: space, trials, sampler, workers, "
            "executor, prune, budget"),
    ("five", "epochs_from = 5; it must say what sets each trial's length (a str), or be None"),
    ("maybe", "replays = 'maybe'; it must be True or False"),
])
def test_a_strategy_declaring_a_setting_of_the_wrong_type_is_named(site, strategy, says):
    """accepts = 'yes' was read as the settings y, e, s: "strategy 'yes' does not use --trials
    (of the study settings it uses none of them)"; the others were taken as given."""
    make_distribution(site, "tp-miscast", "tp_miscast", MISCAST)
    result = runner.invoke(app, ["train", "--strategy", strategy, "--trials", "1", *TINY])
    assert result.exit_code == 1, result.output
    assert one_error_line(result).startswith(f"error: plugin 'tp_miscast': strategy '{strategy}' declares {says} (a "
                                             "bug in that plugin"), result.stderr
    assert not (site.parent / "research.db").exists()

NANS = """
    from research import hookimpl
    from research.nn.model import MLP


    class NanFirst(MLP):
        def loss_and_grads(self, x, y, *, checked=False):
            loss, acc, grads = super().loss_and_grads(x, y, checked=checked)
            return float("nan"), acc, grads


    class NanEval(MLP):
        def evaluate(self, x, y):
            return float("nan"), 0.5


    class NanLoop:
        metrics = ("val_loss",)

        def __init__(self, config):
            pass

        def train_epoch(self):
            return {"val_loss": float("nan")}

        def state(self):
            return {}

        def load_state(self, state):
            pass


    @hookimpl
    def register_models(register):
        register("nanfirst", NanFirst)
        register("naneval", NanEval)


    @hookimpl
    def register_trainers(register):
        register("nanloop", NanLoop)
"""


@pytest.mark.parametrize("args, says", [
    (["--model", "nanfirst", "--model-opt", "hidden=8"],
     "plugin 'tp_nans': model 'nanfirst': loss_and_grads returned the loss nan on the first mini-batch, before the "
     "optimizer's first step, so no learning rate causes it; check the model (and the data)"),
    (["--model", "naneval", "--model-opt", "hidden=8"],
     "plugin 'tp_nans': model 'naneval': evaluate returned the validation loss nan from finite weights, after an epoch "
     "of finite training losses; check its evaluate, and if it is sound, try a smaller --lr"),
    (["--trainer", "nanloop"],
     "trainer 'nanloop' (plugin 'tp_nans') reported val_loss=nan at epoch 1, so the run stopped as diverged; its own "
     "settings or code gave that loss"),
    (["--lr", "1e8", "--optimizer", "momentum", "--no-batchnorm", "--hidden", "8"],
     "the loss became NaN or infinite: try a smaller --lr"),
])
def test_a_diverged_run_is_advised_as_whose_code_computed_the_loss(site, args, says, tmp_path):
    """Every diverged run was told "try a smaller --lr", even when a model plugin computed NaN
    before any step, or a trainer plugin that reads no --lr reported it; and the same run
    resumed from its checkpoint, already diverged, fell back to that advice."""
    make_distribution(site, "tp-nans", "tp_nans", NANS)
    for run in ("first", "resumed"):
        result = runner.invoke(app, ["train", *args, "--epochs", "3", "--checkpoint", str(tmp_path / "run.npz")],
                               env={"COLUMNS": "80"})
        assert result.exit_code == 1, (run, result.output)
        assert result.stderr.strip().splitlines()[-1] == says, (run, result.stderr)
    assert "resuming from" in result.stderr

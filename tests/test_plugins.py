"""Plugin discovery through real entry points, duplicates, broken plugins, observers."""

import json
import re
import subprocess
import sys

import pytest
from typer.testing import CliRunner

import research
from research.cli import app
from research.plugins import PluginError, load_plugins
from tests.studyutil import research_command
from tests.thirdparty import SIGN_SGD, make_distribution

runner = CliRunner()


def test_builtins_come_through_entry_points():
    plugins = load_plugins()
    assert {"adam", "adamw", "sgd", "momentum", "rmsprop"} <= set(plugins.names("optimizers"))
    assert {"constant", "inverse-time", "exponential", "step"} <= set(plugins.names("schedules"))
    assert "digits" in plugins.names("datasets")
    assert plugins.infos[plugins.owner("optimizers", "adam")].distribution == "research-hparams"


def test_third_party_plugin_is_listed_and_trains(site):
    make_distribution(site, "tp-signsgd", "tp_signsgd", SIGN_SGD, version="1.2.3")
    result = runner.invoke(app, ["plugins", "--json"])
    assert result.exit_code == 0, result.output
    listing = {p["name"]: p for p in json.loads(result.stdout)["plugins"]}
    plugin = listing["tp_signsgd"]
    assert plugin["distribution"] == "tp-signsgd" and plugin["version"] == "1.2.3"
    assert plugin["registers"] == {"optimizers": ["signsgd"]}
    assert plugin["observes"] == ["on_epoch_end"]

    run = research.train(optimizer="signsgd", lr=0.01, epochs=2, hidden=16)
    assert run.status == "finished" and len(run.history) == 2
    observed = sys.modules["tp_signsgd"].EPOCHS
    assert [epoch for epoch, _ in observed] == [1, 2]


def test_a_clash_is_listed_and_refused_only_where_the_name_is_used(site):
    make_distribution(site, "tp-dup", "tp_dup", """
        from research import hookimpl
        @hookimpl
        def register_optimizers(register):
            register("adam", object)
    """)
    plugins = load_plugins()  # never raises for a clash
    message = ("optimizer 'adam' is registered twice: by plugin 'optimizers' (distribution research-hparams) and "
               "by plugin 'tp_dup' (distribution tp-dup); uninstall one: `pip uninstall tp-dup`")
    assert message in plugins.problems
    with pytest.raises(PluginError) as refused:
        plugins.get("optimizers", "adam")
    assert str(refused.value) == message
    assert plugins.get("optimizers", "sgd")  # other names work

    listing = runner.invoke(app, ["plugins", "--json"])
    assert listing.exit_code == 0, listing.output
    assert message in json.loads(listing.stdout)["problems"]
    shown = runner.invoke(app, ["plugins"])
    assert shown.exit_code == 0 and "tp_dup" in shown.stdout

    used = runner.invoke(app, ["train", "--epochs", "1", "--hidden", "8"])  # adam is the default optimizer
    assert used.exit_code == 2 and "pip uninstall tp-dup" in used.stderr
    other = runner.invoke(app, ["train", "--epochs", "1", "--hidden", "8", "--optimizer", "sgd"])
    assert other.exit_code == 0, other.output


def test_broken_plugin_is_reported_and_the_rest_works(site):
    make_distribution(site, "tp-broken", "tp_broken", "raise ImportError('needs libfoo')\n")
    plugins = load_plugins()
    assert any("tp_broken" in p and "needs libfoo" in p for p in plugins.problems)
    assert "adam" in plugins.names("optimizers")
    result = runner.invoke(app, ["plugins", "--json"])
    assert result.exit_code == 0
    listing = {p["name"]: p for p in json.loads(result.stdout)["plugins"]}
    assert "needs libfoo" in listing["tp_broken"]["error"]


def test_a_plugin_that_registers_a_name_twice_is_told_so(site):
    """It read "registered twice: by plugin 'tp_twice' ... and by plugin 'tp_twice' ...; uninstall one"."""
    make_distribution(site, "tp-twice", "tp_twice", """
        from research import hookimpl
        from research_plugins.optimizers import SGD
        @hookimpl
        def register_optimizers(register):
            register("sgd2", SGD)
            register("sgd2", SGD)
    """)
    plugins = load_plugins()
    assert ("optimizer 'sgd2' is registered twice by plugin 'tp_twice' (distribution tp-twice); it must register the "
            "name once") in plugins.problems, plugins.problems


def test_an_option_declared_with_an_empty_range_breaks_its_plugin_naming_the_declaration(site):
    """`Option(min=5, max=1)` was accepted: `research plugins` showed "an integer in [5, 1]", and
    every value the user gave was refused as theirs."""
    make_distribution(site, "tp-empty", "tp_empty", """
        from typing import Annotated
        from research.options import Option
        K = Annotated[int, Option("k", min=5, max=1)]
    """)
    plugins = load_plugins()
    assert any("tp_empty" in p and "Option(min=5, max=1) admits no value; its lower end must be below its upper end"
               in p for p in plugins.problems), plugins.problems


def test_failing_registration_hook_is_reported(site):
    make_distribution(site, "tp-badreg", "tp_badreg", """
        from research import hookimpl
        @hookimpl
        def register_samplers(register):
            raise RuntimeError("boom")
    """)
    plugins = load_plugins()
    assert "plugin 'tp_badreg' failed in register_samplers: RuntimeError: boom" in plugins.problems


@pytest.mark.parametrize("hook, problem", [
    ("def register_samplers(reg):", "Argument(s) {'reg'} are declared in the hookimpl but can not be found"),
    ("def register_sampler(register):", "implements register_sampler, which is not a research hook, so it is never "
                                        "called; did you mean register_samplers? docs/plugins.md lists the hooks"),
], ids=["argument-names", "misspelled"])
def test_a_hook_research_cannot_call_is_reported_and_the_rest_works(site, hook, problem):
    make_distribution(site, "tp-hook", "tp_hook", f"""
        from research import hookimpl
        @hookimpl
        {hook}
            pass
    """)
    plugins = load_plugins()
    assert any("plugin 'tp_hook'" in p and problem in p for p in plugins.problems), plugins.problems
    assert "random" in plugins.names("samplers")
    result = runner.invoke(app, ["plugins"])
    assert result.exit_code == 0, result.output
    assert runner.invoke(app, ["--help"]).exit_code == 0


@pytest.mark.parametrize("name", ["Bad Name", "a/b", "-x", "mod:Class"])
def test_a_name_that_commands_and_file_names_cannot_carry_is_not_registered(name):
    """register("Bad Name", ...) was accepted: a study "Bad Name-1", a file "Bad Name-1-curves.png"."""
    class Plugin:
        __name__ = "badname"

        @research.hookimpl
        def register_strategies(self, register):
            register(name, object)

    plugins = load_plugins([Plugin()])
    assert name not in plugins.names("strategies")
    assert any(f"registered a strategy named {name!r}; a name is letters, digits" in p for p in plugins.problems)


def test_an_unknown_name_says_which_plugins_failed_to_load(site):
    make_distribution(site, "tp-gone", "tp_gone", "import not_a_module_anywhere\n")
    result = runner.invoke(app, ["train", "--trainer", "gone", "--epochs", "1"])
    assert result.exit_code == 2
    assert "unknown trainer 'gone'; choose one of: " in result.stderr
    assert "(plugin 'tp_gone' failed to load, which may be why: `research plugins` says what went wrong)" \
        in result.stderr


def test_observer_that_raises_does_not_stop_training(site):
    make_distribution(site, "tp-badobs", "tp_badobs", """
        from research import hookimpl
        @hookimpl
        def on_epoch_end(trial, epoch, metrics):
            raise RuntimeError("observer broke")
    """)
    run = research.train(epochs=2, hidden=16)
    assert run.status == "finished" and len(run.history) == 2


@pytest.mark.parametrize("where, code", [
    ("import", "raise SystemExit(3)\n"),
    ("register_samplers", "from research import hookimpl\n@hookimpl\ndef register_samplers(register):\n"
                          "    raise SystemExit(3)\n"),
    ("on_epoch_end", "from research import hookimpl\n@hookimpl\ndef on_epoch_end(trial, epoch, metrics):\n"
                     "    raise SystemExit(3)\n"),
])
def test_a_plugin_that_calls_sys_exit_is_reported_by_name_and_training_goes_on(site, where, code):
    """An observer calling sys.exit ended a lone run with its exit code and no word (a study
    blamed its strategy); a module doing it at import ended every command."""
    make_distribution(site, "tp-exits", "tp_exits", code)
    result = runner.invoke(app, ["train", "--epochs", "2", "--hidden", "8"])
    assert result.exit_code == 0, result.output
    assert "warning: plugin 'tp_exits'" in result.stderr and "it called sys.exit(3)" in result.stderr
    assert (where == "import" and "failed to load" in result.stderr) or f"failed in {where}" in result.stderr


def test_a_plugin_problem_met_by_any_command_is_a_warning_line(site):
    """`research log` never showed that a describe_event answered no text (`research report`
    did): only some commands printed the problems met while they ran."""
    assert runner.invoke(app, ["train", "--strategy", "babysit", "--segments", "1", "--segment-epochs", "1",
                               "--hidden", "8", "--study", "b"]).exit_code == 0
    make_distribution(site, "tp-wordless", "tp_wordless", """
        from research import hookimpl
        @hookimpl
        def describe_event(study, event):
            return 42
    """)
    result = runner.invoke(app, ["log", "b"])
    assert result.exit_code == 0, result.output
    assert result.stderr.count("warning: plugin 'tp_wordless': its describe_event returned 42, not a str") == 1


def test_a_stored_study_whose_plugin_was_uninstalled_asks_for_it_again(site):
    """`research resume` said "unknown optimizer 'signsgd'; choose one of: adam, ...": a stored
    study cannot choose another; its plugin's package is to be installed again."""
    import shutil

    from research.plugins import load_plugins

    make_distribution(site, "tp-signsgd", "tp_signsgd", SIGN_SGD)
    made = runner.invoke(app, ["train", "--strategy", "caviar", "--optimizer", "signsgd", "--trials", "1",
                               "--epochs", "1", "--hidden", "8", "--study", "s", "--workers", "1",
                               "--executor", "serial"])
    assert made.exit_code == 0, made.output
    shutil.rmtree(site / "tp_signsgd-0.1.dist-info")
    (site / "tp_signsgd.py").unlink()
    for command in (["resume", "s"], ["confirm", "s"], ["export-model", "s"]):
        result = runner.invoke(app, command)
        assert result.exit_code == 2, result.output
        assert "uses optimizer 'signsgd', which no installed plugin registers (one uninstalled since?); install the " \
               "package that registers it again" in result.stderr, result.stderr
    assert "signsgd" not in load_plugins().names("optimizers")
    for command in (["show", "s"], ["plot", "s"], ["report", "s"], ["export", "s"], ["log", "s"]):
        assert runner.invoke(app, command).exit_code == 0, command  # readers need none of its plugins


def test_an_observer_failing_in_worker_processes_is_a_warning_line_once_per_worker(site, tmp_path):
    make_distribution(site, "tp-badobs", "tp_badobs", """
        from research import hookimpl
        @hookimpl
        def on_epoch_end(trial, epoch, metrics):
            raise RuntimeError("observer broke")
    """)
    done = subprocess.run([*research_command(), "train", "--strategy", "caviar", "--trials", "4", "--epochs", "2",
                           "--hidden", "8", "--workers", "2", "--executor", "process"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if "observer broke" in line]
    assert 1 <= len(lines) <= 2, done.stderr  # each worker process says it once
    assert set(lines) == {"warning: plugin 'tp_badobs' failed in on_epoch_end: RuntimeError: observer broke"}


def test_a_script_module_named_like_a_builtin_plugin_loads_beside_it(tmp_path, monkeypatch):
    """A user's models.py passed as plugins=[models] raised pluggy's 'Plugin name already registered'."""
    (tmp_path / "models.py").write_text(
        "import research\n\n\n@research.hookimpl\ndef register_models(register):\n"
        "    from research.nn.model import MLP\n\n    register('mymlp', MLP)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "models", raising=False)
    import models

    plugins = load_plugins([models])
    assert plugins.problems == [] and {"mlp", "cnn", "mymlp"} <= set(plugins.registry["models"])
    assert plugins.owner("models", "mymlp") == "models (2)" and plugins.owner("models", "mlp") == "models"


def test_unknown_name_lists_the_available_ones():
    plugins = load_plugins()
    with pytest.raises(PluginError, match="unknown optimizer 'adma'; choose one of: adam, adamw"):
        plugins.get("optimizers", "adma")


def test_in_process_plugin_module():
    class Observer:
        seen = []

        @research.hookimpl
        def on_trial_end(self, trial, result):
            self.seen.append(result.status)

    observer = Observer()
    research.train(epochs=1, hidden=8, plugins=[observer])
    assert observer.seen == ["finished"]


@pytest.mark.parametrize(("source", "said"), [
    ("def f(:\n    pass\n", "SyntaxError: invalid syntax (broken_module.py, line 1)"),
    ("raise RuntimeError('no data here')\n", "RuntimeError: no data here"),
])
def test_a_module_of_yours_that_raises_while_imported_is_named_with_the_fix(tmp_path, monkeypatch, source, said):
    """It was "(this is a bug, not a mistake of yours ... report it)", exit 1, or blamed on the
    built-in trainer plugin that imported it: the error is in the user's module."""
    (tmp_path / "broken_module.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    message = (f"module 'broken_module' raised while it was imported: {said}; fix it (`python -c 'import "
               "broken_module'` shows the traceback)")
    with pytest.raises(PluginError, match=f"^{re.escape(message)}$"):
        load_plugins(["broken_module"])
    for flag in ("--trainer", "--model"):
        sys.modules.pop("broken_module", None)
        result = CliRunner().invoke(app, ["train", flag, "broken_module:Thing", "--epochs", "1"])
        assert (result.exit_code, result.stderr.strip()) == (2, f"error: {message}")
    result = CliRunner().invoke(app, ["train", "--strategy", "caviar", "--model", "broken_module:Thing",
                                      "--trials", "2", "--epochs", "1", "--store", "r.db"])
    assert (result.exit_code, result.stderr.strip()) == (2, f"error: {message}")
    assert not (tmp_path / "r.db").exists()


def test_choices_an_option_of_its_type_cannot_take_are_the_plugins_mistake(tmp_path, monkeypatch):
    """`k: Annotated[int, Option(choices=("a", "b"))]` loaded, listed "one of: a, b", and refused
    every value: `--sampler-opt k=a` said "k must be one of: a, b, got 'a'"."""
    (tmp_path / "badchoices.py").write_text(
        "from typing import Annotated\n"
        "from research.options import Option\n"
        "from research_plugins.samplers import RandomSampler\n\n\n"
        "class Bad(RandomSampler):\n"
        "    def __init__(self, *, k: Annotated[int, Option('k', choices=('a', 'b'))] = 1):\n"
        "        super().__init__()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["train", "--strategy", "caviar", "--sampler", "badchoices:Bad", "--trials", "2",
                                      "--epochs", "1", "--store", "r.db"])
    assert (result.exit_code, result.stderr.strip()) == (
        2, "error: sampler 'badchoices:Bad' (plugin 'badchoices'): option 'k' (int) declares the choice 'a', which is "
           "no int; give choices of its type")
    assert not (tmp_path / "r.db").exists()


def test_plugins_given_by_the_caller_that_cannot_work_are_named():
    """A name that cannot be imported was a raw ModuleNotFoundError; an object without a
    single hook (a number, an unrelated module) was taken in silence."""
    with pytest.raises(PluginError, match=r"^cannot import plugin 'not a module' \(ModuleNotFoundError: "):
        load_plugins(["not a module"])
    with pytest.raises(PluginError, match=r"^cannot import plugin 'json:nothing' \(AttributeError: "):
        load_plugins(["json:nothing"])
    assert load_plugins([42], log_problems=False).problems == [
        "plugin 42 implements no hook of research's (functions marked @research.hookimpl, named as in "
        "docs/plugins.md): nothing of it is used"]


def test_a_warning_to_a_closed_stderr_does_not_fail_the_trial(site, tmp_path):
    """`research train ... 2>&1 | head -1`: the worker's warning met a closed pipe, and the
    BrokenPipeError failed a healthy trial for good."""
    make_distribution(site, "tp-badobs", "tp_badobs", """
        from research import hookimpl
        @hookimpl
        def on_epoch_end(trial, epoch, metrics):
            raise RuntimeError("observer broke")
    """)
    process = subprocess.Popen([*research_command(), "train", "--strategy", "caviar", "--study", "p", "--trials", "4",
                                "--epochs", "2", "--hidden", "8", "--workers", "2"], cwd=tmp_path,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    process.stderr.readline()  # its first line, as `head -1` reads it; then the reader is gone
    process.stderr.close()
    process.wait(timeout=120)
    shown = subprocess.run([*research_command(), "show", "p", "--json"], cwd=tmp_path, capture_output=True, text=True)
    assert [row["status"] for row in json.loads(shown.stdout)["trials"]] == ["finished"] * 4, shown.stdout

"""A study's sampler and pruner are plugin code: when it fails, or draws what the space does
not hold, the line names the plugin (before, a KeyError in a sampler said "this is a bug ...
report it", a sampler that drew nothing trained the default, and one that drew text was
blamed on the user's optimizer setting)."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import pytest

import research
from research.errors import PluginFailure
from research.plugins import load_plugins
from research.study import StudySettings, open_study
from research.study.store import Store

SPACE = {"lr": "log:1e-3..1e-1", "layers": "1,2", "hidden2": "int:8..32 if layers>=2"}


class Drawing:
    """A sampler plugin that draws what ``answer(number)`` says."""

    def __init__(self, answer):
        self.answer = answer

    def ask(self, space, history, rng):
        return self.answer(history.number)


class Raising:
    def prune(self, number, epoch, curves, max_epochs):
        raise RuntimeError("pruner broke")


class Exiting:
    def prune(self, number, epoch, curves, max_epochs):
        sys.exit(5)


class Answering:
    """A pruner that answers ``ANSWER`` (a test sets it) for every trial and epoch."""

    ANSWER: Any = None

    def prune(self, number, epoch, curves, max_epochs):
        return Answering.ANSWER


def plugin(answer) -> Any:
    class Plugin:
        __name__ = "odd"

        @research.hookimpl
        def register_samplers(self, register):
            register("odd", lambda: Drawing(answer))

        @research.hookimpl
        def register_pruners(self, register):
            register("raising", Raising)
            register("exiting", Exiting)
            register("answering", Answering)

    return Plugin()


def run(tmp_path, answer, **settings) -> Store:
    plugins = load_plugins([plugin(answer)])
    chosen = StudySettings(strategy="caviar", base={"epochs": 2, "hidden": 8}, space=SPACE, trials=2, sampler="odd",
                           **settings)
    store = Store(tmp_path / "r.db")
    study = open_study(store, "s", chosen, plugins, executor="serial")
    study.run(plugins.build("strategies", "caviar"))
    return store


GOOD = {"lr": 0.01, "layers": 1}


@pytest.mark.parametrize("answer, says", [
    (lambda n: {}["x"], r"^plugin 'odd': sampler 'odd' failed in ask: KeyError: 'x'$"),
    (lambda n: sys.exit(4), r"^plugin 'odd': sampler 'odd' failed in ask: it called sys.exit\(4\); code research runs "
                            r"must raise an exception instead"),
    (lambda n: [0.01, 1], r"^plugin 'odd': sampler 'odd' drew for trial 0 a list, not a dict of parameter values$"),
    (lambda n: {"layers": 1}, r"^plugin 'odd': sampler 'odd' drew for trial 0 no value of lr \(log:0\.001\.\.0\.1\); "
                              r"the trial would train with a default$"),
    (lambda n: {**GOOD, "lr": "banana"}, r"drew for trial 0 lr='banana', outside the space lr=log:0\.001\.\.0\.1$"),
    (lambda n: {**GOOD, "layers": 2}, r"drew for trial 0 no value of hidden2 \(int:8\.\.32 if layers>=2\)"),
    (lambda n: {**GOOD, "epochs": 100}, r"drew for trial 0 epochs, which the space does not search \(it searches "
                                        r"lr, layers, hidden2\)$"),
])
def test_a_sampler_that_fails_or_draws_outside_the_space_is_named_before_the_study_is_stored(tmp_path, answer, says):
    with pytest.raises(PluginFailure, match=says):
        run(tmp_path, answer)
    with Store(tmp_path / "r.db") as store:
        assert store.studies() == []  # its first draw is checked first


def test_a_later_draw_outside_the_space_fails_the_study_naming_the_sampler(tmp_path):
    with pytest.raises(PluginFailure, match=r"^plugin 'odd': sampler 'odd' drew for trial 1 lr=5\.0, outside "):
        run(tmp_path, lambda n: {**GOOD, "lr": 5.0 if n else 0.01})


class AskFails:
    def ask(self, space, history, rng):
        return {}["x"]


class DrawsText:
    def ask(self, space, history, rng):
        return {"lr": "fast"}


class NoSpace:
    """An optimizer plugin that declares no default space."""

    def __init__(self, lr: float = 0.1):
        self.lr = lr

    def step(self, params, grads):
        pass


@pytest.mark.parametrize("flags, says", [
    (["--sampler", "tests.test_guarded:AskFails"], "error: plugin 'tests.test_guarded': sampler "
                                                   "'tests.test_guarded:AskFails' failed in ask: KeyError: 'x'"),
    (["--sampler", "tests.test_guarded:DrawsText"], "drew for trial 0 lr='fast', outside the space lr=log:0.0001..1"),
    (["--optimizer", "tests.test_guarded:NoSpace"], "error: optimizer 'tests.test_guarded:NoSpace' declares no default "
                                                    "space to preview; name one with --space NAME=DEFINITION"),
])
def test_sample_checks_what_the_sampler_draws_as_a_study_does(flags, says):
    """research sample called a failing sampler's KeyError a bug of research's, printed
    histograms of draws outside the space, and nothing (exit 0) for a space with no parameter."""
    from typer.testing import CliRunner

    from research.cli import app

    space = [] if "--optimizer" in flags else ["--space", "lr=log:1e-4..1"]
    result = CliRunner().invoke(app, ["sample", *flags, *space, "-n", "4"])
    assert result.exit_code != 0 and says in result.stderr, result.output


def test_numpy_values_are_stored_as_plain_numbers(tmp_path):
    store = run(tmp_path, lambda n: {"lr": np.float32(0.01), "layers": np.int64(2), "hidden2": np.int32(16)})
    with store:
        configs = [t.config for t in store.trials(store.study("s"))]
    assert [(type(c["lr"]), type(c["layers"]), type(c["hidden2"])) for c in configs] == [(float, int, int)] * 2


def test_a_pruner_that_raises_is_named(tmp_path):
    with pytest.raises(PluginFailure, match=r"^plugin 'odd': pruner 'raising' failed in prune: RuntimeError: pruner "
                                            r"broke$"):
        run(tmp_path, lambda n: GOOD, prune="raising")


def test_plugin_code_that_calls_sys_exit_fails_naming_the_plugin(tmp_path):
    """sys.exit in a strategy's run, a sampler's ask or a pruner's prune ended the command with
    the plugin's exit code and no line at all; it is the plugin's failure, as in a model's code."""
    with pytest.raises(PluginFailure, match=r"^plugin 'odd': pruner 'exiting' failed in prune: it called "
                                            r"sys.exit\(5\); code research runs must raise"):
        run(tmp_path, lambda n: GOOD, prune="exiting")

    class Leaving:
        def run(self, study):
            sys.exit(3)

    from research.study.guarded import Guarded

    with pytest.raises(PluginFailure, match=r"^plugin 'mine': strategy 'leaving' failed in run: it called "
                                            r"sys.exit\(3\)"):
        Guarded(Leaving(), "strategy 'leaving'", "mine").run(None)


@pytest.mark.parametrize("answer", [False, "", "  ", 0, True, ["a"]])
def test_a_pruner_answering_neither_none_nor_a_reason_is_named_and_stops_nothing(tmp_path, monkeypatch, answer):
    """`False` once pruned every trial (its reason shown as "False"), a list failed inside SQLite."""
    monkeypatch.setattr(Answering, "ANSWER", answer)
    with pytest.raises(PluginFailure, match=r"^plugin 'odd': pruner 'answering' answered .* for trial \d+ at epoch 1; "
                                            r"prune must return None to let a trial go on, or the reason it stops"):
        run(tmp_path, lambda n: GOOD, prune="answering")
    with Store(tmp_path / "r.db") as store:
        assert {t.status for t in store.trials(store.study("s"))} <= {"interrupted", "pending"}


def test_a_pruners_answer_is_checked_for_every_strategy_not_only_caviar(tmp_path, monkeypatch):
    """A strategy of a third party asked ``make_pruner().prune`` and took ``False`` (or a list) as
    it came: the check ran only inside caviar."""
    monkeypatch.setattr(Answering, "ANSWER", False)
    plugins = load_plugins([plugin(lambda n: GOOD)])
    chosen = StudySettings(strategy="caviar", base={"epochs": 2, "hidden": 8}, space=SPACE, trials=2, sampler="odd",
                           prune="answering")
    with Store(tmp_path / "r.db") as store:
        pruner = open_study(store, "s", chosen, plugins, executor="serial").make_pruner()
        with pytest.raises(PluginFailure, match=r"^plugin 'odd': pruner 'answering' answered False for trial 3 at "
                                                r"epoch 1; prune must return None"):
            pruner.prune(3, 1, {3: [0.5]}, 2)
        monkeypatch.setattr(Answering, "ANSWER", "below the median")
        assert pruner.prune(3, 1, {3: [0.5]}, 2) == "below the median"


@pytest.mark.parametrize("declared, says", [
    ({"needs_finished": "yes"}, r"sampler 'declaring' declares needs_finished as 'yes', not a method; define it as "
                                r"research.contracts.Sampler describes it, or leave it out$"),
    ({"needs_finished": lambda self, number: "yes"},
     r"sampler 'declaring': needs_finished\(0\) returned 'yes'; it must return how many trials must be done before "
     r"trial 0 is asked, an integer from 0 to 0$"),
    ({"needs_finished": lambda self, number: number + 1}, r"sampler 'declaring': needs_finished\(0\) returned 1; "),
    ({"round_of": lambda self, number: "first"},
     r"sampler 'declaring': round_of\(0\) returned 'first'; it must return the round of trial 0, an integer, or None$"),
    ({"round_of": 3}, r"sampler 'declaring' declares round_of as 3, not a method"),
])
def test_a_sampler_declaring_an_optional_method_wrongly_is_named_not_the_strategy(tmp_path, declared, says):
    """`needs_finished = "yes"` failed in the strategy's code: "plugin 'caviar': strategy
    'caviar' failed in run: TypeError: 'str' object is not callable", blaming the built-in."""
    declaring = type("Declaring", (Drawing,), declared)

    class Plugin:
        __name__ = "odd"

        @research.hookimpl
        def register_samplers(self, register):
            register("declaring", lambda: declaring(lambda n: GOOD))

    plugins = load_plugins([Plugin()])
    chosen = StudySettings(strategy="caviar", base={"epochs": 1, "hidden": 8}, space=SPACE, trials=2,
                           sampler="declaring")
    with Store(tmp_path / "r.db") as store:
        study = open_study(store, "s", chosen, plugins, executor="serial")
        with pytest.raises(PluginFailure, match=r"^plugin 'odd': " + says):
            study.run()


def test_a_sampler_answering_budget_fixed_with_no_reason_is_named():
    from research.study.guarded import GuardedSampler

    class Fixed(Drawing):
        def budget_fixed(self):
            return True

    with pytest.raises(PluginFailure, match=r"^plugin 'odd': sampler 'fixed': budget_fixed\(\) returned True; it "
                                            r"must return why the trial budget cannot change \(a str\), or None$"):
        GuardedSampler(Fixed(lambda n: GOOD), "sampler 'fixed'", "odd").budget_fixed()
    assert GuardedSampler(Drawing(lambda n: GOOD), "sampler 'plain'", "odd").needs_finished(5) == 0

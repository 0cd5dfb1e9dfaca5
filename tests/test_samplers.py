"""The built-in samplers: bounds, determinism, rounds, strata, grids, options."""

from __future__ import annotations

import json
import logging
import math
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from research_plugins import samplers
from research_plugins.samplers import CoarseToFine, Grid, LatinHypercube, RandomSampler

from research.contracts import Sampler as ContractSampler
from research.options import UnknownOptionError, declared
from research.plugins import load_plugins
from research.space import Choice, Condition, Float, Int, sample_uniform
from research.study.history import History, TrialSummary
from research.study.sampler import Sampler
from tests.studyutil import run

CLASSES = {"random": RandomSampler, "coarse-to-fine": CoarseToFine, "latin-hypercube": LatinHypercube, "grid": Grid}

SPACE = {
    "lr": Float(1e-5, 1.0, "log", name="lr"),
    "beta": Float(0.8, 0.9999, "log1m", name="beta"),
    "dropout": Float(0.0, 0.6, name="dropout"),
    "width": Int(16, 512, "log", name="width"),
    "layers": Int(1, 4, name="layers"),
    "activation": Choice(("relu", "tanh", "gelu"), name="activation"),
}


def every_sampler() -> list:
    return [RandomSampler(), CoarseToFine(round_size=4), LatinHypercube(), Grid(), Grid(points_per_axis=3)]


def run_study(sampler, space, objective, budget: int, seed: int) -> list[TrialSummary]:
    """A study loop as the caviar strategy runs it, one trial at a time, nothing failing."""
    trials: list[TrialSummary] = []
    for n in range(budget):
        limit = (sampler.needs_finished(n) if hasattr(sampler, "needs_finished") else 0) or n
        history = History(number=n, budget=budget, seed=seed, trials=tuple(t for t in trials if t.number < limit))
        config = sampler.ask(space, history, np.random.default_rng([seed, n]))
        round_ = sampler.round_of(n) if hasattr(sampler, "round_of") else None
        trials.append(TrialSummary(n, config, "finished", objective(config), round_))
    return trials


# -- every sampler ---------------------------------------------------------------------------------


@pytest.mark.parametrize("sampler", every_sampler(), ids=repr)
def test_every_sampler_stays_in_bounds_over_a_study(sampler) -> None:
    trials = run_study(sampler, SPACE, lambda c: -c["dropout"] + c["layers"], budget=40, seed=3)
    for trial in trials:
        assert list(trial.config) == list(SPACE)
        for name, value in trial.config.items():
            assert SPACE[name].contains(value), (name, value)
        assert type(trial.config["width"]) is int and type(trial.config["lr"]) is float


@pytest.mark.parametrize("sampler", every_sampler(), ids=repr)
def test_every_sampler_is_deterministic(sampler) -> None:
    objective = lambda c: -abs(math.log10(c["lr"]) + 2.5)  # noqa: E731
    first = run_study(sampler, SPACE, objective, budget=20, seed=7)
    again = run_study(type(sampler)(**sampler.options), SPACE, objective, budget=20, seed=7)
    assert [t.config for t in first] == [t.config for t in again]
    history = History(number=20, budget=30, seed=7, trials=tuple(first))
    asks = [sampler.ask(SPACE, history, np.random.default_rng([7, 20])) for _ in range(2)]
    assert asks[0] == asks[1]


def test_register_samplers_registers_exactly_the_built_ins_in_order() -> None:
    plugins = load_plugins([samplers], entry_points=False)
    assert list(plugins.registry["samplers"].items()) == list(CLASSES.items()) and not plugins.problems


def test_built_ins_subclass_the_core_base() -> None:
    # Third parties build on research.study.sampler.Sampler, as the built-ins do.
    assert not hasattr(samplers, "Sampler") or samplers.Sampler is Sampler
    for cls in CLASSES.values():
        assert issubclass(cls, Sampler) and isinstance(cls(), ContractSampler)


def test_samplers_without_rounds_never_wait() -> None:
    for sampler in (RandomSampler(), LatinHypercube(), Grid()):
        assert [sampler.round_of(n) for n in range(5)] == [None] * 5
        assert [sampler.needs_finished(n) for n in range(5)] == [0] * 5


def test_random_is_sample_uniform() -> None:
    history = History(number=3, budget=10, seed=0)
    expected = sample_uniform(SPACE, np.random.default_rng(5))
    assert RandomSampler().ask(SPACE, history, np.random.default_rng(5)) == expected


# -- coarse to fine ---------------------------------------------------------------------------------

UNIT_SPACE = {
    "lr": Float(1e-5, 1.0, "log", name="lr"),
    "beta": Float(0.8, 0.9999, "log1m", name="beta"),
    "dropout": Float(0.0, 0.6, name="dropout"),
}
OPTIMUM = np.array([0.3, 0.72, 0.15])  # in unit coordinates


def units(config: dict) -> np.ndarray:
    return np.array([UNIT_SPACE[name].to_unit(config[name]) for name in UNIT_SPACE])


def synthetic(config: dict) -> float:
    return -float(np.sum((units(config) - OPTIMUM) ** 2))


def test_rounds_and_waiting() -> None:
    sampler = CoarseToFine(round_size=4)
    assert [sampler.round_of(n) for n in range(10)] == [0, 0, 0, 0, 1, 1, 1, 1, 2, 2]
    assert [sampler.needs_finished(n) for n in range(10)] == [0, 0, 0, 0, 4, 4, 4, 4, 8, 8]
    assert CoarseToFine().round_of(7) == 0 and CoarseToFine().round_of(8) == 1
    assert CoarseToFine().needs_finished(17) == 16


def test_coarse_to_fine_concentrates_around_the_optimum() -> None:
    round0, round3 = [], []
    for seed in range(5):
        trials = run_study(CoarseToFine(round_size=8), UNIT_SPACE, synthetic, budget=32, seed=seed)
        distance = {t.number: float(np.linalg.norm(units(t.config) - OPTIMUM)) for t in trials}
        assert [t.round for t in trials] == [n // 8 for n in range(32)]
        round0 += [distance[t.number] for t in trials if t.round == 0]
        round3 += [distance[t.number] for t in trials if t.round == 3]
    assert np.mean(round3) < 0.5 * np.mean(round0)


def test_coarse_to_fine_beats_random_search_on_the_same_budget() -> None:
    def best(sampler, seed: int) -> float:
        return max(t.score for t in run_study(sampler, UNIT_SPACE, synthetic, budget=32, seed=seed))

    # Averaged over 20 seeds: a single study can lose (when round 0 finds nothing near the
    # optimum, the shrinking boxes cannot reach it), so few seeds make a coin toss.
    seeds = range(20)
    fine = [best(CoarseToFine(), seed) for seed in seeds]
    random = [best(RandomSampler(), seed) for seed in seeds]
    assert np.mean(fine) > np.mean(random)
    assert np.median(fine) > np.median(random)  # typically about twice as close, in squared distance


def _history(number: int, scored: dict[int, float], configs: dict[int, dict], status: str = "finished") -> History:
    trials = tuple(
        TrialSummary(n, configs[n], status, scored.get(n) if status == "finished" else None) for n in sorted(configs)
    )
    return History(number=number, budget=32, seed=0, trials=trials)


def test_coarse_to_fine_samples_in_the_box_around_the_best() -> None:
    space = {"x": Float(0.0, 1.0, name="x"), "lr": Float(1e-4, 1.0, "log", name="lr")}
    configs = {
        0: {"x": 0.2, "lr": 1e-2},
        1: {"x": 0.9, "lr": 1e-4},
        2: {"x": 0.5, "lr": 0.5},
        3: {"x": 0.02, "lr": 1.0},
    }
    scores = {0: 0.9, 1: 0.1, 2: 0.5, 3: 0.95}
    sampler = CoarseToFine(round_size=4, top_k=1, shrink=0.5)
    for number in range(4, 8):  # round 1: width 0.5 around trial 3 (the best), slid inside [0, 1]
        config = sampler.ask(space, _history(number, scores, configs), np.random.default_rng(number))
        assert 0.0 <= config["x"] <= 0.5
        assert space["lr"].to_unit(config["lr"]) >= 0.5 - 1e-12
    sampler = CoarseToFine(round_size=4, top_k=2, shrink=0.5)
    xs = [sampler.ask(space, _history(n, scores, configs), np.random.default_rng(n))["x"] for n in range(4, 8)]
    # round robin: trials 4 and 6 around trial 3 (x=0.02), 5 and 7 around trial 0 (x=0.2)
    assert all(0.0 <= xs[i] <= 0.5 for i in (0, 2)) and all(0.0 <= xs[i] <= 0.45 for i in (1, 3))
    trials = [TrialSummary(n, configs[n], "finished", scores[n]) for n in range(4)]
    # round 2 (trial 8..11) with more trials: width 0.25 around the best of rounds 0 and 1
    trials += [TrialSummary(n, {"x": 0.6, "lr": 0.1}, "finished", 0.99 if n == 5 else 0.0) for n in range(4, 8)]
    history = History(number=9, budget=32, seed=0, trials=tuple(trials))
    for seed in range(20):
        x = CoarseToFine(round_size=4, top_k=1).ask(space, history, np.random.default_rng(seed))["x"]
        assert 0.6 - 0.125 <= x <= 0.6 + 0.125


def test_coarse_to_fine_ignores_trials_of_its_own_round() -> None:
    configs = {n: sample_uniform(SPACE, np.random.default_rng(n)) for n in range(11)}
    scores = {n: n / 10 for n in range(11)}
    sampler = CoarseToFine(round_size=8)
    seen = sampler.ask(SPACE, _history(11, scores, {n: configs[n] for n in range(8)}), np.random.default_rng(1))
    everything = sampler.ask(SPACE, _history(11, scores, configs), np.random.default_rng(1))
    assert seen == everything


def test_coarse_to_fine_falls_back_to_random_when_nothing_finished() -> None:
    configs = {n: sample_uniform(SPACE, np.random.default_rng(n)) for n in range(8)}
    for history in (_history(9, {}, configs, status="failed"), _history(9, {}, {}), _history(3, {0: 1.0}, configs)):
        got = CoarseToFine().ask(SPACE, history, np.random.default_rng(4))
        assert got == RandomSampler().ask(SPACE, history, np.random.default_rng(4))


def test_coarse_to_fine_keeps_the_best_choice_more_often_in_later_rounds() -> None:
    space = {"act": Choice(("relu", "tanh", "gelu", "elu", "selu"), name="act")}
    sampler = CoarseToFine(round_size=1, top_k=1, shrink=0.5)

    def kept(number: int) -> float:
        trials = tuple(TrialSummary(n, {"act": "gelu"}, "finished", float(n == 0)) for n in range(number))
        history = History(number=number, budget=100, seed=0, trials=trials)
        rng = np.random.default_rng(number)
        picks = [sampler.ask(space, history, rng)["act"] for _ in range(2000)]
        return picks.count("gelu") / len(picks)

    # P(keep) = 1 - 0.5**r, plus the random draw's 1/5 chance of gelu otherwise.
    rates = [kept(r) for r in (1, 2, 4)]
    for r, rate in zip((1, 2, 4), rates):
        assert rate == pytest.approx(1 - 0.5**r + 0.5**r / 5, abs=0.04)
    assert rates[0] < rates[1] < rates[2]


def test_coarse_to_fine_survives_configs_outside_the_space() -> None:
    space = {"act": Choice(("relu", "tanh"), name="act"), "x": Float(0.0, 1.0, name="x")}
    trials = (TrialSummary(0, {"act": "gone", "x": 7.0}, "finished", 1.0),)
    config = CoarseToFine(round_size=1).ask(space, History(1, 10, 0, trials), np.random.default_rng(0))
    assert config["act"] in ("relu", "tanh") and 0.5 <= config["x"] <= 1.0


# -- latin hypercube ----------------------------------------------------------------------------


@pytest.mark.parametrize("budget", [1, 7, 20])
def test_latin_hypercube_uses_every_stratum_once_per_axis(budget: int) -> None:
    space = {k: v for k, v in SPACE.items() if isinstance(v, Float)}
    trials = run_study(LatinHypercube(), space, lambda c: 0.0, budget=budget, seed=11)
    for name, param in space.items():
        strata = sorted(int(param.to_unit(t.config[name]) * budget) for t in trials)
        assert strata == list(range(budget)), name


def test_latin_hypercube_spreads_choices_and_ints_evenly() -> None:
    trials = run_study(LatinHypercube(), SPACE, lambda c: 0.0, budget=30, seed=2)
    counts = [sum(t.config["activation"] == v for t in trials) for v in SPACE["activation"].values]
    assert counts == [10, 10, 10]
    layers = [sum(t.config["layers"] == v for t in trials) for v in range(1, 5)]
    assert min(layers) >= 7 and max(layers) <= 8


@pytest.mark.parametrize("seed", [0, 3, 12, 19])
def test_latin_hypercube_gives_each_choice_and_linear_int_an_equal_share_within_one(seed: int) -> None:
    """At a random position inside its stratum, a stratum that straddles two values gave either:
    layers=1,2,3 over 5 trials came out 1, 2, 3, 2, 2."""
    for budget in range(1, 24):
        for size in (2, 3, 4, 5, 7):
            space = {"c": Choice(tuple(range(size)), name="c"), "k": Int(1, size, name="k"),
                     "x": Float(0.0, 1.0, name="x")}
            trials = run_study(LatinHypercube(), space, lambda c: 0.0, budget=budget, seed=seed)
            for name in ("c", "k"):
                counts = Counter(t.config[name] for t in trials)
                shares = [counts.get(value, 0) for value in (range(size) if name == "c" else range(1, size + 1))]
                assert max(shares) - min(shares) <= 1, (budget, size, name, shares)


def test_latin_hypercube_permutations_depend_on_seed_and_axis() -> None:
    a = LatinHypercube.permutation(0, 0, 50)
    assert sorted(a) == list(range(50))
    assert np.array_equal(a, LatinHypercube.permutation(0, 0, 50))
    assert not np.array_equal(a, LatinHypercube.permutation(1, 0, 50))
    assert not np.array_equal(a, LatinHypercube.permutation(0, 1, 50))


def test_latin_hypercube_cycles_beyond_the_budget() -> None:
    space = {"x": Float(0.0, 1.0, name="x")}
    sampler = LatinHypercube()
    for n in range(5):
        first = sampler.ask(space, History(n, 5, 3), np.random.default_rng(n))["x"]
        later = sampler.ask(space, History(n + 5, 5, 3), np.random.default_rng(n + 100))["x"]
        assert int(first * 5) == int(later * 5)


# -- grid ---------------------------------------------------------------------------------------


def test_grid_points_in_mixed_radix_order() -> None:
    space = {"lr": Float(1e-4, 1.0, "log", name="lr"), "act": Choice(("relu", "tanh"), name="act")}
    sampler = Grid(points_per_axis=5)
    got = [sampler.ask(space, History(n, 10, 0), np.random.default_rng(n)) for n in range(12)]
    expected = [{"lr": lr, "act": act} for lr in (1e-4, 1e-3, 1e-2, 1e-1, 1.0) for act in ("relu", "tanh")]
    assert [g["act"] for g in got[:10]] == [e["act"] for e in expected]
    assert [g["lr"] for g in got[:10]] == pytest.approx([e["lr"] for e in expected], rel=1e-12)
    assert got[10:] == got[:2]  # the grid cycles


def test_grid_default_points_fit_the_budget() -> None:
    floats = {k: Float(0.0, 1.0, name=k) for k in "ab"}
    assert Grid().points_for(floats, 20) == 4  # 16 <= 20 < 25
    assert Grid().points_for(floats, 25) == 5
    assert Grid().points_for(floats, 3) == 2  # at least 2
    assert Grid().points_for({**floats, "c": Choice((1, 2), name="c")}, 20) == 3  # 9 * 2 <= 20 < 32
    assert Grid().points_for({"a": floats["a"]}, 1000) == 1000
    assert Grid(points_per_axis="7").points_for(floats, 20) == 7
    xs = [Grid().ask(floats, History(n, 9, 0), np.random.default_rng(0)) for n in range(9)]
    assert xs == [{"a": a, "b": b} for a in (0.0, 0.5, 1.0) for b in (0.0, 0.5, 1.0)]


def test_grid_int_axes_skip_repeats() -> None:
    assert Grid(points_per_axis=5).axes({"n": Int(1, 3, name="n")}, 10) == {"n": [1, 2, 3]}
    assert Grid(points_per_axis=3).axes({"n": Int(0, 100, name="n")}, 10) == {"n": [0, 50, 100]}


def test_grid_tries_few_distinct_values_random_tries_many() -> None:
    # The reason to prefer random search: on 16 trials over 2 axes, a grid tries 4 learning
    # rates; random search tries 16. If only lr matters, the grid wasted 12 trials.
    space = {"lr": Float(1e-4, 1.0, "log", name="lr"), "unimportant": Float(0.0, 1.0, name="unimportant")}
    grid = run_study(Grid(), space, lambda c: 0.0, budget=16, seed=0)
    rand = run_study(RandomSampler(), space, lambda c: 0.0, budget=16, seed=0)
    assert len({t.config["lr"] for t in grid}) == 4
    assert len({t.config["lr"] for t in rand}) == 16


def grid_warnings(sampler, space, budget: int, caplog, asks: int | None = None) -> list[str]:
    """The warnings of a study's asks of trials ``0..asks-1``, as its check (trial 0) and then its
    trials ask them, each with its own sampler."""
    with caplog.at_level(logging.WARNING, logger=samplers.__name__):
        Grid(**sampler.options).ask(space, History(0, budget, 0), np.random.default_rng(0))
        for n in range(budget if asks is None else asks):
            sampler.ask(space, History(n, budget, 0), np.random.default_rng(n))
    return [r.getMessage() for r in caplog.records if r.name == samplers.__name__]


LR_BETA = {"lr": Float(1e-4, 1.0, "log", name="lr"), "beta1": Float(0.8, 0.999, "log1m", name="beta1")}


def test_a_grid_larger_than_the_budget_warns_once(monkeypatch, caplog) -> None:
    """4 trials of a 10 x 10 grid all had lr=1e-4, in silence. The warning says facts, not flags:
    it named --trials, which `research sample` does not take (-n there)."""
    monkeypatch.setattr(samplers, "_checked", set())
    assert grid_warnings(Grid(points_per_axis=10), LR_BETA, 4, caplog) == [
        "sampler 'grid': 4 trials cover 4 of the grid's 100 points (10 per axis, the last parameter varying "
        "fastest), so 1 of its 2 parameters never varies (lr=0.0001); the whole grid takes 100 trials; with "
        "points_per_axis=2 it fits in 4"]
    caplog.clear()
    assert grid_warnings(Grid(points_per_axis=10), LR_BETA, 100, caplog, asks=3) == []  # resumed with 100 trials
    assert grid_warnings(Grid(), LR_BETA, 4, caplog) == []  # the default fits the budget
    assert grid_warnings(Grid(points_per_axis=3), LR_BETA, 9, caplog) == []


@pytest.mark.parametrize("space, sampler, budget, what", [
    # every parameter varies, a corner of the grid is left out
    (LR_BETA, Grid(points_per_axis=3), 8,
     "8 trials cover 8 of the grid's 9 points (3 per axis, the last parameter varying fastest), so the rest are never "
     "tried; the whole grid takes 9 trials; with points_per_axis=2 it fits in 8"),
    # 3 axes of 2 points are more than 4 trials: no points_per_axis fits
    ({**LR_BETA, "dropout": Float(0.0, 0.5, name="dropout")}, Grid(), 4,
     "4 trials cover 4 of the grid's 8 points (2 per axis, the last parameter varying fastest), so 1 of its 3 "
     "parameters never varies (lr=0.0001); the whole grid takes 8 trials"),
    # a conditional space's repeats merged: 4 points for relu, 16 for tanh
    ({"act": Choice(("relu", "tanh"), name="act"),
      "hidden2": Int(8, 64, name="hidden2", when=Condition("act", "=", ("tanh",))), "lr": LR_BETA["lr"]},
     Grid(points_per_axis=4), 5,
     "5 trials cover 5 of the grid's 20 points (4 per axis, the last parameter varying fastest), so 1 of its 3 "
     "parameters never varies (hidden2=8); the whole grid takes 20 trials"),
    # beyond GRID_LISTED trials the points are not listed: the order tells which never vary
    ({**LR_BETA, "dropout": Float(0.0, 0.5, name="dropout")}, Grid(points_per_axis=10_000), 10**6,
     "1000000 trials cover 1000000 of the grid's 1000000000000 points (10000 per axis, the last parameter varying "
     "fastest), so 1 of its 3 parameters never varies (lr=0.0001); the whole grid takes 1000000000000 trials; with "
     "points_per_axis=100 it fits in 1000000"),
])
def test_a_grid_warning_names_what_the_budget_leaves_out(space, sampler, budget, what) -> None:
    assert sampler.too_big(space, budget) == f"sampler 'grid': {what}"


def test_a_study_with_a_grid_larger_than_its_trials_warns_once_and_runs(tmp_path) -> None:
    result = run(["train", "--strategy", "caviar", "--study", "grid1", "--trials", "4", "--epochs", "1", "--hidden",
                  "8", "--sampler", "grid", "--sampler-opt", "points_per_axis=10", "--space", "lr=log:1e-4..1",
                  "--space", "beta1=log1m:0.8..0.999", "--executor", "serial", "--json"], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert [line for line in result.stderr.splitlines() if line.startswith("warning:")] == [
        "warning: sampler 'grid': 4 trials cover 4 of the grid's 100 points (10 per axis, the last parameter varying "
        "fastest), so 1 of its 2 parameters never varies (lr=0.0001); the whole grid takes 100 trials; with "
        "points_per_axis=2 it fits in 4"]
    assert {row["config"]["lr"] for row in json.loads(result.stdout)["trials"]} == {0.0001}


@pytest.mark.parametrize("sampler, options, fixed", [
    ("grid", [], True), ("latin-hypercube", [], True), ("grid", ["--sampler-opt", "points_per_axis=2"], False),
    ("random", [], False)])
def test_a_design_over_the_budget_keeps_its_budget(tmp_path, sampler, options, fixed) -> None:
    """A grid of the default size resumed with --trials 9 went on with the 3 x 3 grid's points 4 to
    8 after the 2 x 2 grid's first 4 (two points tried twice, two never), and a latin hypercube
    used a stratum twice and another never; a grid of a given size, and random draws, go on."""
    from tests.studyutil import cli, query

    study = ["train", "--strategy", "caviar", "--study", "d", "--store", tmp_path / "r.db", "--trials", "4", "--epochs",
             "1", "--hidden", "8", "--sampler", sampler, *options, "--space", "lr=log:1e-4..1", "--space",
             "bn_momentum=0..1", "--executor", "serial", "--plot", tmp_path / "d.png"]
    assert cli(*study).exit_code == 0
    before = query(tmp_path / "r.db", "SELECT number, config FROM trials ORDER BY number")
    resumed = cli("resume", "d", "--store", tmp_path / "r.db", "--trials", "9", "--plot", tmp_path / "d.png")
    if not fixed:
        assert resumed.exit_code == 0, resumed.output
        return
    assert resumed.exit_code == 2, resumed.output
    assert resumed.stderr.strip().startswith(f"error: study 'd' draws its trials with sampler '{sampler}' as a design "
                                             "over its budget of 4 trials (")
    assert resumed.stderr.strip().endswith("so that budget cannot change: the trials drawn would not be those of a "
                                           "design over 9; run a new study with --trials 9 (`research resume d` "
                                           "finishes this one)")
    assert query(tmp_path / "r.db", "SELECT number, config FROM trials ORDER BY number") == before


# -- the plugin example in docs/samplers.md ----------------------------------------------------------


def test_the_documented_example_sampler_works() -> None:
    text = (Path(__file__).resolve().parent.parent / "docs" / "samplers.md").read_text()
    code = text.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict = {}
    exec(compile(code, "docs/samplers.md", "exec"), namespace)
    registered = {}
    namespace["register_samplers"](registered.__setitem__)
    sampler = registered["perturb"](warmup="8", step="0.05")
    trials = run_study(sampler, UNIT_SPACE, synthetic, budget=24, seed=0)
    assert all(UNIT_SPACE[k].contains(v) for t in trials for k, v in t.config.items())
    assert max(t.score for t in trials[8:]) >= max(t.score for t in trials[:8])
    with pytest.raises(ValueError, match="warmup must be an integer >= 1"):
        registered["perturb"](warmup=0)


# -- options ------------------------------------------------------------------------------------


def test_options_are_declared_in_the_signatures() -> None:
    described = {name: {key: spec.describe() for key, spec in (declared(cls) or {}).items()}
                 for name, cls in CLASSES.items()}
    assert described == {
        "random": {},
        "coarse-to-fine": {"round_size": "an integer >= 1", "top_k": "an integer >= 1",
                           "shrink": "a number in (0, 1]"},
        "latin-hypercube": {},
        "grid": {"points_per_axis": "an integer in [2, 10000] or none"},
    }


def test_options_from_strings() -> None:
    sampler = CoarseToFine(round_size="4", top_k=" 2 ", shrink="0.25")
    assert sampler.options == {"round_size": 4, "top_k": 2, "shrink": 0.25}
    assert CoarseToFine(round_size=4.0).options["round_size"] == 4
    assert CoarseToFine(shrink=1).options["shrink"] == 1.0
    assert Grid(points_per_axis="3").options == {"points_per_axis": 3}
    assert Grid(points_per_axis="none").options == {"points_per_axis": None}
    assert repr(CoarseToFine()) == "CoarseToFine(round_size=8, top_k=3, shrink=0.5)"


@pytest.mark.parametrize(
    "factory, options, message",
    [
        (CoarseToFine, {"round_size": 0}, "round_size must be an integer >= 1, got 0"),
        (CoarseToFine, {"round_size": "abc"}, "round_size must be an integer >= 1, got 'abc'"),
        (CoarseToFine, {"round_size": 2.5}, "round_size must be an integer >= 1"),
        (CoarseToFine, {"round_size": True}, "round_size must be an integer >= 1"),
        (CoarseToFine, {"top_k": "0"}, "top_k must be an integer >= 1"),
        (CoarseToFine, {"top_k": "inf"}, "top_k must be a finite integer >= 1"),
        (CoarseToFine, {"shrink": 0}, r"shrink must be a number in \(0, 1\], got 0"),
        (CoarseToFine, {"shrink": "1.5"}, r"shrink must be a number in \(0, 1\]"),
        (CoarseToFine, {"shrink": "nan"}, r"shrink must be a finite number in \(0, 1\]"),
        (CoarseToFine, {"shrink": None}, r"shrink must be a number in \(0, 1\]"),
        (Grid, {"points_per_axis": 1}, r"points_per_axis must be an integer in \[2, 10000\] or none, got 1"),
        (Grid, {"points_per_axis": "many"}, r"points_per_axis must be an integer in \[2, 10000\]"),
    ],
)
def test_bad_option_values(factory, options, message) -> None:
    with pytest.raises(ValueError, match=message) as info:
        factory(**options)
    assert str(info.value).startswith(f"sampler '{factory.name}': ") and "\n" not in str(info.value)


@pytest.mark.parametrize(
    "factory, options, message",
    [
        (
            CoarseToFine,
            {"rounds": 3},
            "sampler 'coarse-to-fine': unknown option 'rounds'; valid names: round_size, top_k, shrink",
        ),
        (Grid, {"points": 3, "k": 2}, "sampler 'grid': unknown options 'points', 'k'; valid names: points_per_axis"),
        (RandomSampler, {"seed": 1}, "sampler 'random': unknown option 'seed'; it takes no options"),
        (LatinHypercube, {"budget": 10}, "sampler 'latin-hypercube': unknown option 'budget'; it takes no options"),
    ],
)
def test_unknown_options_list_the_valid_ones(factory, options, message) -> None:
    with pytest.raises(UnknownOptionError) as info:
        factory(**options)
    assert str(info.value) == message
    assert isinstance(info.value, ValueError) and isinstance(info.value, TypeError)


# -- what a study shows a sampler ------------------------------------------------------------------


class _Recording(Sampler):
    """Random search that remembers the history of each ask."""

    name = "recording"

    def __init__(self, rounds: int = 0) -> None:
        self.rounds, self.seen = rounds, []

    def needs_finished(self, number: int) -> int:
        return number // self.rounds * self.rounds if self.rounds else 0

    def ask(self, space, history, rng):
        self.seen.append([t.number for t in history.trials])
        return sample_uniform(space, rng)


@pytest.mark.parametrize("rounds, expected", [
    (0, [[], [0], [0, 1], [0, 1, 2]]),  # no wait: every trial so far, running or not
    (3, [[], [0], [0, 1], [0, 1, 2]]),  # waits for 0..2 from trial 3 on: only those
    (2, [[], [0], [0, 1], [0, 1]]),  # trial 3 waits for 0..1: trial 2 is not shown
])
def test_a_study_shows_a_sampler_every_earlier_trial_unless_it_waits(tmp_path, rounds, expected) -> None:
    from research.study.store import Store
    from research.study.study import StudySettings, open_study

    settings = StudySettings(strategy="caviar", base={"epochs": 1}, space={"lr": "log:1e-3..1"})
    sampler = _Recording(rounds)
    with Store(tmp_path / "research.db") as store:
        study = open_study(store, "h", settings, load_plugins(), executor="serial")
        for number in range(4):
            study.new_trial(number, sampler)
    assert sampler.seen == expected


def test_a_study_keeps_its_workers_so_a_resume_shows_a_sampler_what_the_study_did(tmp_path) -> None:
    """A sampler that does not wait sees the trials running beside it: a resume that ran more
    workers than the study would show it other trials. The study keeps the workers it named; a
    resume that names none runs as many, one that names some runs those and keeps them."""
    from research.study.store import Store
    from research.study.study import StudySettings, open_study

    settings = StudySettings(strategy="caviar", base={"epochs": 1}, space={"lr": "log:1e-3..1"}, workers=1)
    plugins = load_plugins()
    with Store(tmp_path / "research.db") as store:
        assert open_study(store, "w", settings, plugins, executor="serial").workers == 1
        unnamed = StudySettings(**{**store.find_study("w").settings, "workers": None})
        assert open_study(store, "w", unnamed, plugins, executor="serial").workers == 1
        assert open_study(store, "w", unnamed, plugins, executor="serial", workers=3).workers == 3
        assert store.find_study("w").settings["workers"] == 1  # a run's own workers= is not the study's
        assert open_study(store, "w", replace(unnamed, workers=2), plugins, executor="serial").workers == 2
        assert store.find_study("w").settings["workers"] == 2
        plain = StudySettings(strategy="caviar", base={"epochs": 1}, space={"lr": "log:1e-3..1"})
        assert "workers" not in open_study(store, "p", plain, plugins, executor="serial").record.settings
        with pytest.raises(ValueError, match="workers must be an integer >= 1, got 0"):
            open_study(store, "z", replace(plain, workers=0), plugins, executor="serial")


@pytest.mark.parametrize("definition, rows", [
    ("int:1..4", ["1", "2", "3", "4"]),
    ("int:8..16", [str(k) for k in range(8, 17)]),
    ("int:log:1..4", ["1", "2", "3", "4"]),
])
def test_research_sample_draws_an_integer_space_one_row_per_value(definition, rows):
    """Bins of equal width cut between integers: rows that can never fill, labels twice."""
    from research.cli.display import histogram
    from research.space import parse_param

    param = parse_param("n", definition)
    values = [param.from_unit(u) for u in np.random.default_rng(0).random(400)]
    table = histogram("n", param, values)
    labels = list(table.columns[0].cells)
    counts = [int(c) for c in table.columns[2].cells]
    assert labels == rows and sum(counts) == 400 and min(counts) > 0


def test_research_sample_bins_a_wide_integer_space_by_whole_integers():
    from research.cli.display import histogram
    from research.space import parse_param

    param = parse_param("n", "int:log:16..1024")
    table = histogram("n", param, [16, 1024, 100])
    labels = list(table.columns[0].cells)
    assert len(labels) == 10 and labels[0].startswith("16 .. ") and labels[-1].endswith(" .. 1024")
    ends = [(int(a), int(b)) for a, b in (label.split(" .. ") for label in labels)]
    assert all(b + 1 == a2 for (_, b), (a2, _) in zip(ends, ends[1:]))  # every integer in exactly one row


def test_a_samplers_history_decodes_each_configuration_once(tmp_path, monkeypatch):
    """Every trial decoded every stored configuration for its sampler's history: a study of
    5,500 trials started 5 a second where it had started 37."""
    from research.study import StudySettings, open_study
    from research.study.store import Store

    asked = []
    real = Store.configs
    monkeypatch.setattr(Store, "configs", lambda self, study, numbers: asked.append(sorted(numbers)) or
                        real(self, study, numbers))
    settings = StudySettings(strategy="caviar", base={"epochs": 1, "hidden": 8}, space={"lr": "log:1e-3..1e-1"},
                             trials=4)
    with Store(tmp_path / "r.db") as store:
        study = open_study(store, "s", settings, load_plugins(), executor="serial")
        sampler = study.make_sampler()
        for number in range(4):
            study.new_trial(number, sampler)
        history = study.history(4, sampler)
        stored = store.trials(study.record)
    assert asked == [[0], [1], [2], [3]]  # trial 0's history is empty; each later one adds one
    assert [(t.number, t.status, t.config) for t in history.trials] == [
        (t.number, t.status, {"lr": t.config["lr"]}) for t in stored]  # no runner: interrupted, as trials() says

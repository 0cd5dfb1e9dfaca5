"""Pruning: the best validation accuracy ASHA (and the median rule) reach, for how many
epochs, against random search without pruning and random search given twice the budget.

What is measured
    The same ``--trials`` trials (default 60) of random search on digits (adam, batchnorm
    MLP, batch 64, float32) over::

        lr       log      1e-4 .. 1
        beta1    log1m    0.8 .. 0.999     (uniform in log(1 - beta1))
        hidden   int      16 .. 256
        layers   choice   1, 2, 3

    ``--epochs`` epochs each (default 20), through the Python API (``open_study`` + the
    ``caviar`` strategy, one epoch per segment, as pruning needs) with the process executor
    and ``--workers`` workers (default 2), on a temporary store. Trial n's configuration and
    seed depend only on the study seed and n, so every search below draws the same trials:

        random      the trials trained to the end, no pruning
        asha        the same trials with ``--prune asha`` (defaults: min_epochs 1,
                    reduction 3: rungs at epochs 1, 3, 9)
        asha r=2    ``--prune asha --prune-opt reduction=2`` (rungs at 1, 2, 4, 8, 16;
                    keeps the top half at each)
        median      the same trials with ``--prune median`` (defaults: warm-up 2 epochs,
                    at least 3 other trials at the epoch)
        random 2x   random search with twice the budget: the ``random`` study resumed with
                    twice the trials (the Hyperband paper's baseline), its wall time the sum

    For each: epochs trained (committed epochs in the store), wall time, trials pruned, the
    best validation accuracy of any trial at any epoch (what research ranks by), and the
    epochs trained (in commit order) until that best was first reached. The target: ASHA's
    best within one validation image (1/359) of random search's best, with at most half its
    epochs. Repeated for ``--seeds`` study seeds (default 3); the first table gives the mean
    over seeds, the second every seed.

    ASHA's decisions depend on the order trials reach a rung, so on timing: two runs of the
    same seed can prune differently. The machine has 2 cores shared with other jobs (the
    load average is printed), which moves wall times, not epochs or accuracies.

Usage
    python benchmarks/pruning.py              # 60 trials x 20 epochs x 3 seeds (several minutes)
    python benchmarks/pruning.py --quick      # 30 trials x 9 epochs x 1 seed
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import at_least, environment, print_table, quick_or, run  # noqa: E402

from research.plugins import load_plugins  # noqa: E402
from research.study.store import Store  # noqa: E402
from research.study.study import StudySettings, open_study  # noqa: E402

SPACE = {"lr": "log:1e-4..1", "beta1": "log1m:0.8..0.999", "hidden": "int:16..256", "layers": "1,2,3"}
VALIDATION_IMAGES = 359  # digits: 1,797 images, 20 % held out
SEARCHES = ("random", "asha", "asha r=2", "median", "random 2x")
PRUNERS = {"asha": ("asha", {}), "asha r=2": ("asha", {"reduction": 2}), "median": ("median", {})}


def run_search(plugins, store: Store, name: str, prune: str, seed: int, trials: int, epochs: int,
               workers: int, options: dict | None = None) -> float:
    """Run (or resume) one study; returns its wall seconds."""
    settings = StudySettings(strategy="caviar", base={"dataset": "digits", "optimizer": "adam", "epochs": epochs},
                             space=dict(SPACE), sampler="random", seed=seed, trials=trials, prune=prune,
                             prune_options=dict(options or {}))
    study = open_study(store, name, settings, plugins, executor="process", workers=workers)
    start = time.perf_counter()
    plugins.get("strategies", "caviar")().run(study)
    return time.perf_counter() - start


def outcome(store: Store, name: str, wall: float) -> dict:
    """Epochs, pruned trials, best accuracy and the epochs spent until it was first reached."""
    record = store.study(name)
    rows = store.db.execute(
        "SELECT m.val_acc FROM metrics m JOIN trials t ON t.id = m.trial_id "
        "WHERE t.study_id = ? AND m.rolled_back = 0 ORDER BY m.id", (record.id,)).fetchall()
    values = [v for (v,) in rows]
    best = max((v for v in values if v is not None), default=0.0)
    to_best = next(i for i, v in enumerate(values, start=1) if v == best) if values else 0
    statuses = [t.status for t in store.trials(record)]
    return {"wall": wall, "epochs": len(values), "best": best, "to_best": to_best,
            "pruned": statuses.count("pruned"), "trials": len(statuses),
            "bad": statuses.count("diverged") + statuses.count("failed")}


def one_seed(plugins, directory: Path, seed: int, trials: int, epochs: int, workers: int) -> dict[str, dict]:
    with Store(directory / f"seed-{seed}.db") as store:
        found = {}
        wall = run_search(plugins, store, "random", "none", seed, trials, epochs, workers)
        found["random"] = outcome(store, "random", wall)
        for search, (prune, options) in PRUNERS.items():
            pruned_wall = run_search(plugins, store, search, prune, seed, trials, epochs, workers, options)
            found[search] = outcome(store, search, pruned_wall)
        more = run_search(plugins, store, "random", "none", seed, 2 * trials, epochs, workers)
        found["random 2x"] = outcome(store, "random", wall + more)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=at_least(1), help="trials per study (default 60, quick 30)")
    parser.add_argument("--epochs", type=at_least(1), help="epochs per trial (default 20, quick 9)")
    parser.add_argument("--seeds", type=at_least(1), help="study seeds (default 3, quick 1)")
    parser.add_argument("--workers", type=at_least(1), default=2, help="process executor's workers (default 2)")
    parser.add_argument("--quick", action="store_true", help="30 trials x 9 epochs x 1 seed")
    args = parser.parse_args()
    quick_or(args, {"trials": 30, "epochs": 9, "seeds": 1}, {"trials": 60, "epochs": 20, "seeds": 3})
    plugins = load_plugins()
    print(f"# pruning: {args.trials} trials x {args.epochs} epochs on digits, {args.seeds} seed(s), "
          f"process executor x {args.workers}; {environment()}\n")

    results: dict[int, dict[str, dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            results[seed] = one_seed(plugins, Path(tmp), seed, args.trials, args.epochs, args.workers)
            print(f"seed {seed} done", file=sys.stderr, flush=True)

    def mean(search: str, key: str) -> float:
        return statistics.fmean(results[s][search][key] for s in results)

    base_epochs = mean("random", "epochs")
    rows = []
    for search in SEARCHES:
        rows.append([search, round(mean(search, "trials")), mean(search, "epochs"), mean(search, "epochs") / base_epochs,
                     mean(search, "wall"), mean(search, "pruned"), mean(search, "best"), mean(search, "to_best"),
                     min(results[s][search]["best"] for s in results), max(results[s][search]["best"] for s in results)])
    print_table(["search", "trials", "epochs", "x random", "wall s", "pruned", "best val acc", "epochs to best",
                 "min best", "max best"], rows, title=f"mean over {args.seeds} seed(s)", floatfmt=".4g")

    rows = []
    for seed, found in results.items():
        for search in SEARCHES:
            r = found[search]
            rows.append([seed, search, r["epochs"], r["wall"], r["pruned"], r["bad"], r["best"], r["to_best"]])
    print_table(["seed", "search", "epochs", "wall s", "pruned", "diverged/failed", "best val acc", "epochs to best"],
                rows, title="every seed", floatfmt=".4g")

    def images(accuracy: float) -> int:  # accuracies are counts of validation images: compare counts
        return round(accuracy * VALIDATION_IMAGES)

    for search in ("asha", "asha r=2"):
        met = [images(found["random"]["best"]) - images(found[search]["best"]) <= 1
               and found[search]["epochs"] <= 0.5 * found["random"]["epochs"] for found in results.values()]
        behind = [images(found["random"]["best"]) - images(found[search]["best"]) for found in results.values()]
        print(f"target ({search}'s best within 1/{VALIDATION_IMAGES} of random's, with at most half its epochs): "
              f"met for {sum(met)} of {len(met)} seed(s); validation images behind random, by seed: {behind}")


if __name__ == "__main__":
    run(main)

"""Caviar throughput: trials per minute with 1 and 2 worker processes, the store's cost, and
the command trainer's overhead.

What is measured
    1. A caviar study on digits with ``--model`` (default ``cnn``: the built-in CNN on 1x8x8
       images, its default options; ``mlp``: MLP 64-128-128-10), adam, batch 64, float32,
       ``--trials`` trials of ``--epochs`` epochs each (default 8 x 5),
       random sampler over the learning rate (log 1e-4..1e-2), process executor, with 1 and
       with 2 workers, through the Python API (``research.study.study.open_study``, the ``caviar``
       strategy from ``research.plugins.load_plugins``), each on a fresh store in a temporary
       directory. Wall time covers ``Caviar.run`` entirely: starting the worker pool
       (spawned interpreters importing numpy and research), sampling, training, shipping
       every epoch's checkpoint back, writing checkpoints and committing epochs.
       Configurations depend only on the study seed and the trial number, so every variant
       trains exactly the same models.

       Two ways to cut the trials into tasks are run: ``segment_epochs=1`` (caviar's
       default: every epoch streams back as it finishes, with its checkpoint) and
       ``segment_epochs=--epochs`` (one task per trial, one checkpoint per trial). The target
       is on the default. The variants run in alternating order ``--repeats`` times;
       medians are reported.

       A "bare pool" control trains the same number of models (lr 1e-3) with plain
       ``Trainer`` calls on an already started process pool, with no store, checkpoints or
       pool start: its 2/1 ratio is what this machine allows right now, whatever caviar does.
       The verdict is on caviar's 2/1 ratio as a fraction of that ceiling, both without a
       pool start (the bare pool's is started before it is timed): target >= 0.9.

       Also reported: the pool start alone (spawning the workers and importing research in
       each, measured on its own), trials/min without it, the training seconds the store
       recorded (the ``seconds`` metric summed over all epochs), the parallel efficiency
       ``training seconds / (workers x wall)``, and the seconds the main process spent in
       ``Study.save_checkpoint`` and ``Store.add_epoch`` (timed by wrapping those two
       methods on the study's own objects), which it does one after the other for all
       workers.

    2. The store's overhead per committed epoch: ``Store.add_epoch`` in a loop on a temporary
       SQLite database (WAL, synchronous=NORMAL as research opens it), median microseconds
       per commit, and its share of a trial's time (commit time / median epoch time of the
       studies above). For context, the other per-epoch costs of streaming with
       ``segment_epochs=1``: copying the trainer's state (model and optimizer, in the
       worker; it travels with the segment) and writing it as .npz atomically (in the main
       process, ``Study.save_checkpoint``, at most every ``checkpoint_seconds`` per trial).

    3. The ``command`` trainer's overhead, against a training epoch of the same model: the
       start of a Python program that imports research.script and reports once (what a
       resume or a babysit change costs); one protocol round trip per epoch (a program that
       reports 200 lines without training: the line, its parsing, the answer); packing the
       checkpoint folder of the model (``state()``, when a checkpoint is due); and one whole
       trial of ``--epochs`` epochs trained by a script through the command trainer against
       the same trial trained in-process by the research trainer, as overhead per epoch.

The machine has 2 cores shared with other jobs: the 2-worker speedup is bounded by 2 and
lowered by any other load (the load average is printed).

Usage
    python benchmarks/caviar.py               # CNN, 8 trials x 5 epochs, 3 alternating repeats
    python benchmarks/caviar.py --model mlp   # the MLP
    python benchmarks/caviar.py --quick       # 1 repeat, fewer store commits
"""

from __future__ import annotations

import argparse
import functools
import os
import shlex
import sys
import tempfile
import time
from concurrent.futures import wait
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import at_least, environment, median, print_table, run

from research.plugins import load_plugins
from research.study.store import Store
from research.study.study import StudySettings, open_study


@functools.lru_cache(maxsize=1)
def _worker_plugins():
    """The installed plugins, loaded once per worker process (as run_task's workers do)."""
    return load_plugins()


def _warm_up(delay: float) -> int:
    """A task for the pool-start measurement: what a worker imports before its first trial."""
    import research.study.worker  # noqa: F401

    _worker_plugins()
    time.sleep(delay)
    return os.getpid()


def _train_trial(model: str, epochs: int, seed: int) -> float:
    """A trial without caviar: build a trainer and train it; returns its training seconds."""
    from research.nn.training import Trainer

    trainer = Trainer({"dataset": "digits", "model": model, "epochs": epochs, "seed": seed}, _worker_plugins())
    return sum(trainer.train_epoch()["seconds"] for _ in range(epochs))


def bare_pool(plugins, model: str, workers: int, trials: int, epochs: int) -> float:
    """Wall seconds for ``trials`` plain trainings on an already started pool of ``workers``:
    the ceiling for caviar on this machine now (no store, no checkpoints, no pool start)."""
    executor = plugins.get("executors", "process")(workers=workers)
    wait([executor.submit(_warm_up, 0.3) for _ in range(workers)])
    start = time.perf_counter()
    wait([executor.submit(_train_trial, model, epochs, seed) for seed in range(trials)])
    wall = time.perf_counter() - start
    executor.shutdown(wait=True)
    return wall


def pool_start(plugins, workers: int) -> float:
    """Seconds to spawn ``workers`` processes and import research in each."""
    delay = 0.3
    start = time.perf_counter()
    executor = plugins.get("executors", "process")(workers=workers)
    futures = [executor.submit(_warm_up, delay) for _ in range(workers)]
    wait(futures)
    elapsed = time.perf_counter() - start - delay
    executor.shutdown(wait=True)
    return elapsed


def _timing(method, spent: list[float]):
    """``method`` wrapped to add its wall time to ``spent``."""

    def timed(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            spent.append(time.perf_counter() - t0)

    return timed


def run_study(plugins, directory: Path, model: str, workers: int, trials: int, epochs: int, segment: int,
              tag: str) -> dict:
    """One caviar study on a fresh store; wall time, what the store recorded, and the time
    the main process spent writing checkpoints and committing epochs."""
    store = Store(directory / f"{tag}.db")
    settings = StudySettings(
        strategy="caviar",
        base={"dataset": "digits", "model": model, "epochs": epochs},
        space={"lr": "log:1e-4..1e-2"},
        sampler="random",
        seed=0,
        trials=trials,
    )
    study = open_study(store, tag, settings, plugins, executor="process", workers=workers)
    strategy = plugins.get("strategies", "caviar")(segment_epochs=segment)
    # Instrument the main process's per-epoch writes (instance attributes: nothing else changes).
    checkpoint_writes: list[float] = []
    commits: list[float] = []
    study.save_checkpoint = _timing(study.save_checkpoint, checkpoint_writes)
    store.add_epoch = _timing(store.add_epoch, commits)
    start = time.perf_counter()
    strategy.run(study)
    wall = time.perf_counter() - start
    curves = store.curves(study.record)
    statuses = [t.status for t in store.trials(study.record)]
    seconds = [row["seconds"] for curve in curves.values() for row in curve]
    store.close()
    return {
        "wall": wall,
        "train_seconds": float(sum(seconds)),
        "epoch_seconds": median(seconds),
        "epochs": len(seconds),
        "finished": statuses.count("finished"),
        "main_writes": float(sum(checkpoint_writes) + sum(commits)),
    }


def store_overhead(directory: Path, commits: int) -> list[float]:
    """Seconds per ``Store.add_epoch`` commit on a fresh database."""
    store = Store(directory / "commits.db")
    record = store.create_study("commits", "caviar", {})
    trial = store.add_trial(record, 0, {"lr": 0.01}, 0)
    metrics = {"train_loss": 0.5, "train_acc": 0.9, "val_loss": 0.6, "val_acc": 0.88, "lr": 0.01,
               "seconds": 0.01}
    times = []
    clock = time.perf_counter
    for epoch in range(1, commits + 1):
        t0 = clock()
        store.add_epoch(trial, epoch, metrics)
        times.append(clock() - t0)
    store.close()
    return times[10:]  # the first commits create the WAL and warm the page cache


def checkpoint_costs(plugins, directory: Path, model: str, repeats: int) -> tuple[float, float, int]:
    """(seconds to copy a trainer's state, seconds to write it as .npz atomically, bytes)."""
    from research.nn.training import Trainer

    trainer = Trainer({"dataset": "digits", "model": model, "epochs": 5}, plugins)
    trainer.train_epoch()
    store = Store(directory / "checkpoint.db")
    record = store.create_study("checkpoints", "caviar", {})
    store.add_trial(record, 0, {"dataset": "digits", "model": model, "epochs": 5}, 0)  # whose checkpoint is written
    from research.study.study import Study

    study = Study(store, record, StudySettings("caviar", {}, {}), plugins, workers=1)
    pack, write = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        state = trainer.state()
        t1 = time.perf_counter()
        study.save_checkpoint(0, state)
        t2 = time.perf_counter()
        pack.append(t1 - t0)
        write.append(t2 - t1)
    store.close()
    return median(pack), median(write), study.checkpoint_path(0).stat().st_size


REPORT_ONLY = """from research import script
trial = script.trial()
for _ in trial.remaining:
    if not trial.report(val_loss=1.0):
        break
"""
TRAIN_SCRIPT = """from research import script
from research.nn.training import Trainer
from research.plugins import load_plugins
trial = script.trial()
trainer = Trainer(trial.config, load_plugins())
saved = trial.checkpoint_dir / "trainer.npz"
if trial.start_epoch:
    trainer.restore(saved)
for _ in trial.remaining:
    metrics = trainer.train_epoch()
    trainer.save(saved)
    if not trial.report(**metrics):
        break
"""


def command_trainer(directory: Path, program: str, config: dict):
    """The command trainer on ``program`` (a Python source), as a study's worker builds it."""
    from research.study.trainer import make_trainer

    path = directory / f"program-{abs(hash(program))}.py"
    path.write_text(program)
    command = f"{shlex.quote(sys.executable)} {shlex.quote(str(path))}"
    return make_trainer({"trainer": "command", "trainer_options": {"command": command}, **config}, load_plugins())


def program_start(directory: Path, repeats: int) -> float:
    """Seconds from starting a program that imports research.script to its first line."""
    times = []
    for _ in range(repeats):
        trainer = command_trainer(directory, REPORT_ONLY, {"epochs": 1})
        start = time.perf_counter()
        trainer.train_epoch()
        times.append(time.perf_counter() - start)
        trainer.close()
    return median(times)


def round_trip(directory: Path, lines: int) -> float:
    """Seconds per epoch line of a program that does nothing else: line, parsing, answer."""
    trainer = command_trainer(directory, REPORT_ONLY, {"epochs": lines + 1})
    trainer.train_epoch()
    start = time.perf_counter()
    for _ in range(lines):
        trainer.train_epoch()
    elapsed = time.perf_counter() - start
    trainer.close()
    return elapsed / lines


def command_trial(plugins, directory: Path, model: str, epochs: int) -> dict:
    """One trial of ``model`` trained by a script (the research trainer inside it) through the
    command trainer: the script's start before its first line, and per later epoch the wall
    time between lines beyond the epoch's own training seconds (its checkpoint, the line, the
    answer); the cost of packing its folder."""
    command = command_trainer(directory, TRAIN_SCRIPT, {"dataset": "digits", "model": model, "epochs": epochs})
    walls, seconds = [], []
    for _ in range(epochs):
        start = time.perf_counter()
        seconds.append(command.train_epoch()["seconds"])
        walls.append(time.perf_counter() - start)
    packs = []
    for _ in range(5):  # the program waits for its answer: its folder is at rest
        t0 = time.perf_counter()
        state = command.state()
        packs.append(time.perf_counter() - t0)
    command.close()
    return {"start": walls[0] - seconds[0], "per_epoch": median([w - s for w, s in zip(walls[1:], seconds[1:])]),
            "epoch": median(seconds[1:]), "pack": median(packs), "bytes": int(state["trainer.folder"].size)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one repeat, fewer commits")
    parser.add_argument("--model", default="cnn", choices=("cnn", "mlp"), help="the model trained (default cnn)")
    parser.add_argument("--trials", type=at_least(1), default=8, help="trials per study (default 8)")
    parser.add_argument("--epochs", type=at_least(1), default=5, help="epochs per trial (default 5)")
    parser.add_argument("--repeats", type=at_least(1), help="alternating 1-/2-worker runs (default 3, quick 1)")
    parser.add_argument("--commits", type=at_least(1), help="Store.add_epoch commits timed (default 2000, quick 300)")
    parser.add_argument("--dir", type=Path, help="where the temporary stores go (default: the system temp dir)")
    args = parser.parse_args()
    repeats = args.repeats or (1 if args.quick else 3)
    commits = args.commits or (300 if args.quick else 2000)

    print(f"benchmarks/caviar.py: caviar on digits, {args.trials} trials x {args.epochs} epochs, "
          f"model {args.model}, process executor")
    print(environment())
    plugins = load_plugins()
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="research-bench-") as tmp:
        directory = Path(tmp)
        print(f"stores in {directory}\n")

        # (workers, epochs per task): per-epoch streaming (the default) and one task per trial
        variants = [(1, 1), (2, 1), (1, args.epochs), (2, args.epochs)]
        results: dict[tuple[int, int], list[dict]] = {v: [] for v in variants}
        starts: dict[int, list[float]] = {1: [], 2: []}
        bare: dict[int, list[float]] = {1: [], 2: []}
        bare_pool(plugins, args.model, 1, 2, args.epochs)  # warm-up: the first training in a run is slower
        for r in range(repeats):
            for workers in ((1, 2) if r % 2 == 0 else (2, 1)):
                starts[workers].append(pool_start(plugins, workers))
                bare[workers].append(bare_pool(plugins, args.model, workers, args.trials, args.epochs))
            order = variants if r % 2 == 0 else variants[::-1]
            for workers, segment in order:
                results[workers, segment].append(run_study(
                    plugins, directory, args.model, workers, args.trials, args.epochs, segment,
                    f"w{workers}-s{segment}-r{r}"))

        rows = []
        summary = {}
        for workers, segment in variants:
            runs = results[workers, segment]
            wall = median([run["wall"] for run in runs])
            start = median(starts[workers])
            train = median([run["train_seconds"] for run in runs])
            writes = median([run["main_writes"] for run in runs])
            finished = min(run["finished"] for run in runs)
            per_min = args.trials / wall * 60
            per_min_warm = args.trials / max(wall - start, 1e-9) * 60
            summary[workers, segment] = (per_min, per_min_warm)
            rows.append([workers, segment, wall, per_min, start, per_min_warm, train,
                         100 * train / (workers * wall), writes, f"{finished}/{args.trials}"])
        for workers in (1, 2):
            wall = median(bare[workers])
            summary[workers, "bare"] = (args.trials / wall * 60,) * 2
            rows.append([workers, "bare pool", wall, args.trials / wall * 60, 0.0, args.trials / wall * 60,
                         None, None, 0.0, f"{args.trials}/{args.trials}"])
        rows = [[("" if v is None else v) for v in row] for row in rows]
        print_table(["workers", "epochs/task", "wall s", "trials/min", "pool start s", "trials/min excl. start",
                     "training s", "efficiency %", "main writes s", "finished"], rows,
                    title=f"Caviar throughput (median of {repeats} alternating run(s) each; "
                          "'main writes': checkpoint files + epoch commits in the main process):",
                    floatfmt=".3g")

        speedup = summary[2, 1][0] / summary[1, 1][0]
        ceiling = summary[2, "bare"][0] / summary[1, "bare"][0]
        warm = summary[2, 1][1] / summary[1, 1][1]
        rows = [["2 / 1 workers, trials/min (epochs/task 1)", speedup, "", ""],
                ["  as a fraction of the bare pool's 2 / 1", speedup / ceiling, "", ""],
                ["  same, excluding pool start", warm, "", ""],
                ["  as a fraction of the bare pool's 2 / 1 (both without a pool start)", warm / ceiling, ">= 0.9",
                 "met" if warm / ceiling >= 0.9 else "NOT met"],
                [f"2 / 1 workers, trials/min (epochs/task {args.epochs})",
                 summary[2, args.epochs][0] / summary[1, args.epochs][0], "", ""],
                ["  same, excluding pool start", summary[2, args.epochs][1] / summary[1, args.epochs][1], "", ""],
                ["2 / 1 workers, bare pool (machine ceiling now)", summary[2, "bare"][0] / summary[1, "bare"][0],
                 "", ""]]
        print_table(["ratio", "value", "target", "verdict"], rows, title="Speedup (same run):", floatfmt=".2f")

        commit_times = store_overhead(directory, commits)
        pack, write, size = checkpoint_costs(plugins, directory, args.model, 30 if args.quick else 100)
        epoch = median([run["epoch_seconds"] for runs in results.values() for run in runs])
        commit = median(commit_times)
        rows = [
            ["Store.add_epoch (commit)", commit * 1e6, 100 * commit / epoch],
            ["copy trainer state (worker)", pack * 1e6, 100 * pack / epoch],
            ["write checkpoint .npz (main, throttled)", write * 1e6, 100 * write / epoch],
            ["one training epoch (median, from the store)", epoch * 1e6, 100.0],
        ]
        print_table(["per committed epoch", "median us", "% of an epoch"], rows,
                    title=f"Per-epoch costs of streaming ({len(commit_times)} commits; checkpoint "
                          f"{size / 1024:.0f} KiB):", floatfmt=".4g")
        q = np.percentile(np.array(commit_times) * 1e6, [10, 90, 99])
        print(f"add_epoch commit percentiles: p10 {q[0]:.0f} us, p90 {q[1]:.0f} us, p99 {q[2]:.0f} us")
        print(f"store share of a trial ({args.epochs} epochs): {100 * commit / epoch:.2f}% "
              f"({args.epochs * commit * 1e3:.2f} ms of {args.epochs * epoch * 1e3:.0f} ms training)\n")

        started = program_start(directory, 3 if args.quick else 7)
        trip = round_trip(directory, 200)
        trials = [command_trial(plugins, directory, args.model, max(args.epochs, 3)) for _ in range(repeats)]
        epoch = median([t["epoch"] for t in trials])
        rows = [
            ["start of a program importing research.script, to its first line", started * 1e3,
             100 * started / epoch],
            [f"start of the {args.model} script (numpy, research, data, model), before its first epoch",
             median([t["start"] for t in trials]) * 1e3, 100 * median([t["start"] for t in trials]) / epoch],
            ["per epoch: the line and the answer alone (protocol round trip)", trip * 1e3, 100 * trip / epoch],
            ["per epoch: the script's checkpoint, line and answer (beyond its training)",
             median([t["per_epoch"] for t in trials]) * 1e3, 100 * median([t["per_epoch"] for t in trials]) / epoch],
            [f"pack the checkpoint folder ({trials[0]['bytes'] / 1024:.0f} KiB), when one is due",
             median([t["pack"] for t in trials]) * 1e3, 100 * median([t["pack"] for t in trials]) / epoch],
            [f"one training epoch of {args.model} (inside the script, median)", epoch * 1e3, 100.0],
        ]
        print_table(["command trainer", "median ms", "% of an epoch"], rows,
                    title=f"The command trainer's overhead (median of {len(trials)} trial(s); a program starts once "
                          "per trial, and again only to resume or apply a babysit change):", floatfmt=".3g")


if __name__ == "__main__":
    run(main)

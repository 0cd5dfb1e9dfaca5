"""Executors compared: trials per minute on digits with serial, process (2) and Dask (2),
and what Dask costs per trial.

What is measured
    1. Throughput. A caviar study on digits with the default model (MLP 64-128-128-10,
       batchnorm, adam, batch 64, float32), ``--trials`` trials of ``--epochs`` epochs
       (default 16 x 10), random sampler over the learning rate (log 1e-4..1e-2), each epoch a
       segment (caviar's default: every epoch travels back with its checkpoint), through the
       Python API (``open_study`` + the ``caviar`` strategy) on a fresh store in a temporary
       directory, with each executor:

           serial   in the study's process, one trial at a time
           process  a pool of 2 spawned worker processes (``--executor process --workers 2``)
           dask     a local Dask cluster of 2 single-threaded worker processes
                    (``--executor dask --workers 2``: LocalCluster + Client started by the
                    study, closed at its end)

       Each is also run with one segment per trial (``segment_epochs`` = epochs: one task
       and one checkpoint per trial), which shows the executors' scaling without caviar's
       per-epoch work in the study's process (checkpoint write, commits, pruning check).
       Wall time covers ``Caviar.run`` entirely, executor start and shutdown included.
       Configurations depend only on the study seed and trial number, so every executor
       trains the same models (and the study checks that they reach the same curves). The
       variants run in rotated order ``--repeats`` times; medians are reported, with
       trials/min with and without the executor's start (measured on its own, item 2).

    2. Start-up: seconds from creating the executor until every worker has imported
       research and answered a first task, and seconds to shut it down.

    3. Overhead per segment, the executor's share of a trial: the median round trip of a
       task that does nothing with a checkpoint-sized payload (the default model's
       state, both ways, as a segment carries it), submitted one after another on a started
       executor; per trial of one-epoch segments that is ``epochs`` round trips. And the
       residual per trial of each study: ``(wall - start - stop - training seconds /
       workers) / trials``, which also holds the study process's checkpoint writes and
       commits and any worker idle time (waiting for the study process, or at the end).

The machine has 2 cores shared with other jobs (the load average is printed): the 2-worker
numbers are bounded by 2x serial and lowered by any other load.

Usage
    python benchmarks/executors.py             # 16 trials x 10 epochs, 3 rotated repeats
    python benchmarks/executors.py --quick     # 1 repeat, 6 trials x 3 epochs
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import wait
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import at_least, environment, median, print_table, quick_or, run  # noqa: E402

from research.plugins import load_plugins  # noqa: E402
from research.study.store import Store  # noqa: E402
from research.study.study import StudySettings, open_study  # noqa: E402

EXECUTORS = ("serial", "process", "dask")


def _ready(delay: float) -> int:
    """A worker's first task: import what a segment needs, then hold the worker a moment
    so each worker gets one."""
    import research.study.worker  # noqa: F401
    from research.plugins import load_plugins

    load_plugins()
    time.sleep(delay)
    return os.getpid()


def _echo(data: bytes) -> bytes:
    return data


def make_executor(plugins, name: str, workers: int):
    return plugins.get("executors", name)(workers=workers)


def start_and_stop(plugins, name: str, workers: int) -> tuple[float, float]:
    """(seconds until every worker answered its first task, seconds to shut down)."""
    delay = 0.3
    t0 = time.perf_counter()
    executor = make_executor(plugins, name, workers)
    pids = {f.result() for f in [executor.submit(_ready, delay) for _ in range(workers)]}
    started = time.perf_counter() - t0 - delay
    if name != "serial" and len(pids) != workers:
        started = float("nan")  # one worker took both tasks: not a start-up measurement
    t1 = time.perf_counter()
    executor.shutdown(wait=True)
    return started, time.perf_counter() - t1


def checkpoint_state(plugins) -> dict:
    from research.nn.training import Trainer

    trainer = Trainer({"dataset": "digits", "epochs": 1}, plugins)
    trainer.train_epoch()
    return trainer.state()


def round_trips(plugins, name: str, workers: int, payload: dict, count: int) -> float:
    """Median seconds for one task carrying ``payload`` there and back, one at a time."""
    executor = make_executor(plugins, name, workers)
    wait([executor.submit(_ready, 0.1) for _ in range(workers)])
    times = []
    for _ in range(count):
        t0 = time.perf_counter()
        executor.submit(_echo, payload).result()
        times.append(time.perf_counter() - t0)
    executor.shutdown(wait=True)
    return median(times[3:])


def run_study(plugins, directory: Path, name: str, workers: int, trials: int, epochs: int, segment: int,
              tag: str) -> dict:
    store = Store(directory / f"{tag}.db")
    settings = StudySettings(strategy="caviar", base={"dataset": "digits", "epochs": epochs},
                             space={"lr": "log:1e-4..1e-2"}, sampler="random", seed=0, trials=trials)
    study = open_study(store, tag, settings, plugins, executor=name, workers=workers)
    start = time.perf_counter()
    plugins.get("strategies", "caviar")(segment_epochs=segment).run(study)
    wall = time.perf_counter() - start
    curves = store.curves(study.record)
    statuses = [t.status for t in store.trials(study.record)]
    store.close()
    return {
        "wall": wall,
        "train_seconds": float(sum(row["seconds"] for curve in curves.values() for row in curve)),
        "finished": statuses.count("finished"),
        "curves": {n: [row["val_loss"] for row in curve] for n, curve in curves.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=at_least(1), help="trials per study (default 16, quick 6)")
    parser.add_argument("--epochs", type=at_least(1), help="epochs per trial (default 10, quick 3)")
    parser.add_argument("--repeats", type=at_least(1), help="rotated repeats (default 3, quick 1)")
    parser.add_argument("--round-trips", type=at_least(1), help="round trips timed (default 40, quick 20)")
    parser.add_argument("--quick", action="store_true", help="1 repeat, 6 trials x 3 epochs")
    args = parser.parse_args()
    quick_or(args, {"trials": 6, "epochs": 3, "repeats": 1, "round_trips": 20},
             {"trials": 16, "epochs": 10, "repeats": 3, "round_trips": 40})
    workers = {"serial": 1, "process": 2, "dask": 2}
    segments = {"epoch": 1, "trial": args.epochs}
    plugins = load_plugins()
    print(f"# executors: {args.trials} trials x {args.epochs} epochs on digits, default model; {environment()}\n")

    starts: dict[str, list[float]] = {n: [] for n in EXECUTORS}
    stops: dict[str, list[float]] = {n: [] for n in EXECUTORS}
    results: dict[tuple[str, str], list[dict]] = {(n, k): [] for n in EXECUTORS for k in segments}
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        for repeat in range(args.repeats):
            order = EXECUTORS[repeat % 3:] + EXECUTORS[:repeat % 3]
            for name in order:
                started, stopped = start_and_stop(plugins, name, workers[name])
                starts[name].append(started)
                stops[name].append(stopped)
                for kind, segment in segments.items():
                    results[name, kind].append(run_study(plugins, directory, name, workers[name], args.trials,
                                                         args.epochs, segment, f"{name}-{kind}-{repeat}"))
        payload = checkpoint_state(plugins)
        trips = {name: round_trips(plugins, name, workers[name], payload, args.round_trips) for name in EXECUTORS}

    reference = results["serial", "epoch"][0]["curves"]
    rows = []
    walls = {}
    unmeasured = 0
    for kind, segment in segments.items():
        for name in EXECUTORS:
            runs = results[name, kind]
            wall = walls[name, kind] = median([r["wall"] for r in runs])
            start, stop = median(starts[name]), median(stops[name])
            train = median([r["train_seconds"] for r in runs])
            net = wall - start - stop  # start and stop are measured apart: at a small size they can take it all
            residual = (net - train / workers[name]) / args.trials
            same = all(r["curves"] == reference and r["finished"] == args.trials for r in runs)
            measurable = net > 0.1 * wall
            unmeasured += not measurable
            rows.append([name, workers[name], f"{segment} ({kind})", wall, args.trials * 60 / wall,
                         args.trials * 60 / net if measurable else "-", train,
                         residual * 1e3 if measurable else "-", "yes" if same else "NO"])
    print_table(["executor", "workers", "epochs/segment", "wall s", "trials/min", "trials/min w/o start+stop",
                 "training s", "residual/trial ms", "same curves"], rows,
                title=f"caviar studies, median of {args.repeats}", floatfmt=".3g")
    if unmeasured:
        print("-: the executor's start and stop, measured apart (below), took 90% or more of that study's wall time, "
              "so what is left is noise; the full run's larger studies measure it")

    rows = [[name, workers[name], median(starts[name]), median(stops[name]), trips[name] * 1e3,
             trips[name] * args.epochs * 1e3] for name in EXECUTORS]
    print_table(["executor", "workers", "start s", "stop s", "round trip ms", f"x {args.epochs} segments ms"], rows,
                title=f"executor overhead: start until every worker answered, shutdown, and a task carrying a "
                      f"{sum(a.nbytes for a in payload.values()) // 1024} KiB checkpoint there and back on a started executor", floatfmt=".3g")
    dask, process = {r[0]: r for r in rows}["dask"], {r[0]: r for r in rows}["process"]
    print(f"Dask vs process pool: start {dask[2] - process[2]:+.2f} s per study, round trips "
          f"{dask[5] - process[5]:+.1f} ms per trial of {args.epochs} one-epoch segments; wall "
          f"{walls['dask', 'epoch'] / walls['process', 'epoch']:.2f}x (one epoch per segment), "
          f"{walls['dask', 'trial'] / walls['process', 'trial']:.2f}x (one segment per trial)")


if __name__ == "__main__":
    run(main)

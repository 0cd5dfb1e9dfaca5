"""One training run: mini-batches, learning-rate schedule, per-epoch metrics, checkpoints.

A ``Trainer`` owns everything a run needs (data, model, optimizer, schedule, RNG) and
advances one epoch at a time, so strategies can stop, inspect, change a hyperparameter,
checkpoint or roll back between epochs. The same seed gives the same curve value for
value; a checkpoint restores the exact continuation.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from threadpoolctl import ThreadpoolController

from research.nn import checkpoint
from research.nn.config import RUN, ConfigError, RunConfig, flat, resolve
from research.contracts import RunResult, TrialInfo
from research.plugins import Plugins, load_plugins

@lru_cache(maxsize=1)
def _thread_pools() -> tuple:
    """This process's BLAS/OpenMP libraries, found once: finding them costs about a
    millisecond, which ThreadpoolController.limit() would pay on every epoch."""
    return tuple(ThreadpoolController().lib_controllers)


@contextmanager
def _one_blas_thread() -> Iterator[None]:
    """BLAS/OpenMP on one thread inside the block, the previous counts restored after."""
    pools = _thread_pools()
    before = [pool.num_threads for pool in pools]
    for pool in pools:
        pool.set_num_threads(1)
    try:
        yield
    finally:
        for pool, count in zip(pools, before):
            pool.set_num_threads(count)


class Trainer:
    """A model being trained, advanced one epoch at a time."""

    def __init__(self, config: Mapping[str, Any], plugins: Plugins):
        self.plugins = plugins
        self.resolved: RunConfig = resolve(config, plugins)
        run = self.resolved.run
        dtype = np.dtype(run["dtype"])
        dataset = plugins.build("datasets", run["dataset"], **self.resolved.dataset)
        self.x_train = np.ascontiguousarray(dataset.x_train, dtype=dtype)
        self.y_train = np.ascontiguousarray(dataset.y_train, dtype=np.int64)
        self.x_val = np.ascontiguousarray(dataset.x_val, dtype=dtype)
        self.y_val = np.ascontiguousarray(dataset.y_val, dtype=np.int64)
        init_seed, shuffle_seed = np.random.SeedSequence(run["seed"]).spawn(2)
        self.model = plugins.build("models", run["model"], dataset.input_shape, dataset.n_classes, dtype=dtype,
                                   rng=np.random.default_rng(init_seed), **self.resolved.model)
        # Checked once here, so that every batch can skip the checks (checked=True below).
        self.x_train, self.y_train = self.model.check_data(self.x_train, self.y_train)
        self.optimizer = plugins.build("optimizers", run["optimizer"], self.model.params, **self.resolved.optimizer)
        self.schedule = plugins.build("schedules", run["schedule"], **self.resolved.schedule)
        self.base_lr = float(self.optimizer.hyper["lr"])
        # Record the effective values (defaults filled, strings converted by the plugins).
        self.config = {**run, **flat({"model": self.resolved.model, "optimizer": self.optimizer.hyper,
                                      "schedule": self.schedule.options}),
                       "dataset_options": dict(self.resolved.dataset)}
        self.rng = np.random.default_rng(shuffle_seed)
        self.batch_size = run["batch_size"]
        self.epoch = 0
        self.history: list[dict[str, float]] = []
        self.diverged = False

    def _batches(self) -> Iterable[np.ndarray]:
        """Index arrays of one shuffled epoch; a last batch of one sample joins the previous
        one, since batchnorm needs two values per feature."""
        order = self.rng.permutation(len(self.x_train))
        starts = list(range(0, len(order), self.batch_size))
        if len(starts) > 1 and len(order) - starts[-1] < 2:
            starts.pop()
        ends = starts[1:] + [len(order)]
        return (order[a:b] for a, b in zip(starts, ends))

    def train_epoch(self) -> dict[str, float]:
        """Train one epoch and return its metrics; a non-finite loss marks the run diverged.

        BLAS runs on one thread: these matrices are small, so threads only add overhead, and
        the same thread count everywhere keeps curves identical value for value (a
        multi-threaded matmul sums in another order)."""
        with _one_blas_thread():
            return self._train_epoch()

    def _train_epoch(self) -> dict[str, float]:
        started = time.perf_counter()
        lr = float(self.schedule.lr(self.base_lr, self.epoch))
        self.optimizer.set("lr", lr)
        loss_sum = correct = seen = 0.0
        with np.errstate(all="ignore"):
            for index in self._batches():
                loss, acc, grads = self.model.loss_and_grads(self.x_train[index], self.y_train[index], checked=True)
                loss_sum += loss * len(index)
                correct += acc * len(index)
                seen += len(index)
                if not math.isfinite(loss):
                    self.diverged = True
                    break
                self.optimizer.step(grads)
            val_loss, val_acc = self.model.evaluate(self.x_val, self.y_val)
        self.epoch += 1
        metrics = {
            "train_loss": loss_sum / seen,
            "train_acc": correct / seen,
            "val_loss": float(val_loss),
            "val_acc": float(val_acc),
            "lr": lr,
            "seconds": time.perf_counter() - started,
        }
        if not math.isfinite(metrics["val_loss"]):
            self.diverged = True
        self.history.append(metrics)
        return metrics

    def tunable(self) -> dict[str, Any]:
        """The hyperparameters that may change between epochs, with their current values:
        the optimizer's (``lr`` is the base rate), the schedule's options and the batch size."""
        return {**self.optimizer.hyper, "lr": self.base_lr, **self.schedule.options, "batch_size": self.batch_size}

    def set_hyper(self, name: str, value: Any) -> None:
        """Change one hyperparameter between epochs; a bad name or value raises ValueError
        and changes nothing. A name the optimizer and the schedule share is written qualified
        (``optimizer.NAME``, ``schedule.NAME``)."""
        part, dot, bare = name.partition(".")
        if dot and part in ("optimizer", "schedule"):
            if bare not in (self.optimizer.hyper if part == "optimizer" else self.schedule.options):
                raise ConfigError(f"cannot change '{name}': the {part} has no option '{bare}'")
            name = bare
        if name == "lr":
            self.optimizer.set("lr", value)
            self.base_lr = float(self.optimizer.hyper["lr"])
        elif name in self.optimizer.hyper:
            self.optimizer.set(name, value)
        elif name in self.schedule.options:
            self.schedule = self.plugins.build("schedules", self.resolved.run["schedule"],
                                               **{**self.schedule.options, name: value})
        elif name == "batch_size":
            self.batch_size = RUN["batch_size"].convert("training", value)
        else:
            raise ConfigError(f"cannot change '{name}' while training; changeable: {', '.join(sorted(self.tunable()))}")

    def state(self) -> dict[str, np.ndarray]:
        """Everything needed to continue exactly: model, optimizer, RNG, epoch, curve."""
        arrays = {f"model.{k}": v for k, v in self.model.state().items()}
        arrays |= {f"optimizer.{k}": v for k, v in self.optimizer.state().items()}
        arrays["rng"] = checkpoint.pack_json(self.rng.bit_generator.state)
        arrays["meta"] = checkpoint.pack_json(
            {"epoch": self.epoch, "base_lr": self.base_lr, "history": self.history,
             "diverged": self.diverged, "config": self.config, "batch_size": self.batch_size,
             "schedule": self.schedule.options}
        )
        return arrays

    def load_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Restore a state from :meth:`state` into this trainer."""
        self.model.load_state({k[6:]: v for k, v in arrays.items() if k.startswith("model.")})
        self.optimizer.load_state({k[10:]: v for k, v in arrays.items() if k.startswith("optimizer.")})
        self.rng.bit_generator.state = checkpoint.unpack_json(arrays["rng"])
        meta = checkpoint.unpack_json(arrays["meta"])
        self.epoch, self.base_lr = meta["epoch"], meta["base_lr"]
        self.history, self.diverged = meta["history"], meta["diverged"]
        self.batch_size = meta["batch_size"]
        if meta["schedule"] != self.schedule.options:
            self.schedule = self.plugins.build("schedules", self.resolved.run["schedule"], **meta["schedule"])

    def save(self, path: str | Path) -> None:
        checkpoint.save(path, self.state())

    def restore(self, path: str | Path) -> None:
        """Continue from the checkpoint at ``path``; one that belongs to another configuration
        is a CheckpointError naming it."""
        state = checkpoint.load(path)
        try:
            self.load_state(state)
        except (KeyError, ValueError) as err:
            text = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise checkpoint.CheckpointError(f"checkpoint {path} does not fit this run ({text}); "
                                             "use the options it was written with, or delete it") from None


EpochCallback = Callable[[int, dict[str, float]], None]


def run_trainer(
    trainer: Trainer,
    trial: TrialInfo,
    *,
    on_epoch: EpochCallback | None = None,
    checkpoint_path: str | Path | None = None,
) -> RunResult:
    """Train until the configured number of epochs (or divergence), notifying observers.

    With ``checkpoint_path`` a checkpoint is written after every epoch, so an interrupted
    run resumes from its last finished epoch. Ctrl-C ends the run as ``interrupted``, an
    exception as ``failed`` (observers hear of both; the exception goes on).
    """
    plugins, epochs = trainer.plugins, trainer.resolved.run["epochs"]
    plugins.notify("on_trial_start", trial=trial)
    status, error = "running", None
    try:
        while trainer.epoch < epochs and not trainer.diverged:
            metrics = trainer.train_epoch()
            if checkpoint_path is not None:
                trainer.save(checkpoint_path)
            if on_epoch is not None:
                on_epoch(trainer.epoch, metrics)
            plugins.notify("on_epoch_end", trial=trial, epoch=trainer.epoch, metrics=metrics)
        status = "diverged" if trainer.diverged else "finished"
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    except Exception as err:
        status, error = "failed", f"{type(err).__name__}: {err}"
        raise
    finally:
        result = RunResult(status=status, history=list(trainer.history), config=trainer.config, error=error)
        plugins.notify("on_trial_end", trial=trial, result=result)
    return result


def train(
    config: Mapping[str, Any] | None = None,
    *,
    plugins: Iterable[ModuleType | object] = (),
    on_epoch: EpochCallback | None = None,
    checkpoint_path: str | Path | None = None,
    resume: bool = False,
    **options: Any,
) -> RunResult:
    """Train one model and return its result (``result.history`` is the learning curve).

    ``config`` and keyword ``options`` are merged (options win), e.g.
    ``research.train(optimizer="adam", lr=0.01, layers=2, hidden=64, epochs=20)``.
    ``plugins`` adds plugin modules for this call, next to the installed ones. With
    ``resume=True`` and an existing ``checkpoint_path`` the run continues from it.
    """
    loaded = load_plugins(plugins)
    trainer = Trainer({**(config or {}), **options}, loaded)
    if resume and checkpoint_path is not None and Path(checkpoint_path).exists():
        trainer.restore(checkpoint_path)
    trial = TrialInfo(study=None, number=0, config=trainer.config)
    return run_trainer(trainer, trial, on_epoch=on_epoch, checkpoint_path=checkpoint_path)

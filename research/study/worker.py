"""The unit of work a strategy hands to an executor: train one trial for a few epochs.

A task carries everything needed to continue a trial anywhere (its configuration, its last
state as arrays, and the study's plugin set by importable names) and comes back with the
finished epochs and the new state, so only the process that owns the study writes the
store. Each worker process keeps the trainers it has just advanced, so a trial that comes
back to the same worker skips rebuilding and restoring.

A task with a ``channel`` trains its trial to the end (or until the study asks it to stop)
and streams each epoch, and a state whenever a checkpoint is due, as it goes
(research.study.channel): for trainers that must not move between workers.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from research.contracts import RunResult, TrialInfo
from research.errors import PluginFailure, ResearchError, traceback_text
from research.plugins import Plugins, PluginSet, plugins_for
from research.study.objective import Objective
from research.study.trainer import make_trainer

CACHED_TRAINERS = 4
ALL_EPOCHS = 2**31
"""The epochs of a task that trains a trial to its end (a trainer that trains whole trials)."""


@dataclass(frozen=True)
class Task:
    """Train trial ``number`` of ``study`` for up to ``epochs`` more epochs, with the
    study's ``plugins``."""

    study: str
    number: int
    config: dict[str, Any]
    epochs: int
    plugins: PluginSet
    checkpoint: dict[str, np.ndarray] | None = None  # Trainer.state() to continue from
    parent: str | None = None  # token of the result the checkpoint came from
    channel: Any = None  # research.study.channel.Channel: stream epochs and states through it
    checkpoint_seconds: float = 0.0  # with a channel: least seconds between streamed states
    objective: Objective | None = None  # what selects the trial's epoch: its state is kept (research.study.best)
    beat: tuple[float, float] | None = None  # the rank of the epoch kept so far (None: none)
    tracebacks: bool = False  # a failure's text carries its traceback (research --debug)


@dataclass(frozen=True)
class TaskResult:
    """What a task produced: finished epochs, the new checkpoint and the trial's status
    (``running`` while epochs remain; ``finished``, ``diverged`` or ``failed``; ``stopped``
    when the study asked a streaming task to stop); ``best``: the epoch of this task that
    ranked above ``Task.beat`` and above the others, with the trainer's state after it;
    ``config``: on a trial's first task, its effective configuration (the plugins' defaults
    filled in), for the store."""

    number: int
    epochs: list[tuple[int, dict[str, float]]]
    status: str
    checkpoint: dict[str, np.ndarray] | None = None
    token: str | None = None
    error: str | None = None
    best: tuple[int, dict[str, np.ndarray]] | None = None
    config: dict[str, Any] | None = None  # a trial's first task: its effective configuration


class _TrainerCache:
    """The few trainers this process advanced last, by (study, trial) and result token."""

    def __init__(self, size: int):
        self.size = size
        self.entries: OrderedDict[tuple[str, int], tuple[str, Any]] = OrderedDict()

    def take(self, task: Task) -> Any | None:
        entry = self.entries.pop((task.study, task.number), None)
        if entry is not None and task.parent is not None and entry[0] == task.parent:
            return entry[1]
        if entry is not None:
            entry[1].close()
        return None

    def put(self, task: Task, token: str, trainer: Any) -> None:
        self.entries[(task.study, task.number)] = (token, trainer)
        while len(self.entries) > self.size:
            self.entries.popitem(last=False)[1][1].close()


_cache = _TrainerCache(CACHED_TRAINERS)


def _trainer_for(task: Task, plugins: Plugins) -> Any:
    trainer = _cache.take(task)
    if trainer is None:
        trainer = make_trainer(task.config, plugins)
        if task.checkpoint is not None:
            trainer.load_state(task.checkpoint)
    return trainer


def failure_text(err: BaseException, with_traceback: bool) -> str:
    """Why a trial failed, in one line: the message of a user's mistake as it is; for
    anything else (a bug in a plugin or here) the exception's type too. An error with a
    ``detail`` (a program's last lines of stderr) keeps it on the lines after, to be shown
    once; ``with_traceback`` (``research --debug``) adds the traceback after them."""
    text = str(err) if isinstance(err, (ResearchError, PluginFailure)) else f"{type(err).__name__}: {err}"
    lines = [text.splitlines()[0] if text else type(err).__name__]
    detail = getattr(err, "detail", None)
    lines += [detail] if detail else []
    lines += [traceback_text(err)] if with_traceback else []
    return "\n".join(lines)


def run_task(task: Task) -> TaskResult:
    """Advance one trial; any error (bad configuration, plugin code) makes it ``failed``.
    Observers hear of its start, each epoch and its end (finished, diverged or failed)."""
    plugins = plugins_for(task.plugins)
    trial = TrialInfo(task.study, task.number, task.config)
    epochs: list[tuple[int, dict[str, float]]] = []
    trainer: Any = None
    stopped = False
    best: tuple[int, dict[str, np.ndarray] | None] | None = None  # None state: the state the task ends with
    config: dict[str, Any] | None = None  # a trial's first task: its effective configuration
    beat = task.beat
    try:
        trainer = _trainer_for(task, plugins)
        if trainer.epoch == 0:
            config = {**trainer.config, **task.config}  # defaults filled, every given name kept as given
            plugins.notify("on_trial_start", trial=trial)
        total = trainer.epochs
        streamed_at = time.monotonic()
        for _ in range(task.epochs):
            if trainer.epoch >= total or trainer.diverged:
                break
            metrics = trainer.train_epoch()
            epochs.append((trainer.epoch, metrics))
            plugins.notify("on_epoch_end", trial=trial, epoch=trainer.epoch, metrics=metrics)
            rank = task.objective.rank(metrics) if task.objective is not None else None
            if rank is not None and (beat is None or rank > beat):
                # The task's last epoch needs no copy: the state the task ends with is that epoch's.
                last = task.channel is None and (len(epochs) == task.epochs or trainer.epoch >= total
                                                 or trainer.diverged)
                beat, best = rank, (trainer.epoch, None if last else _copied(trainer.state()))
            if task.channel is not None:
                task.channel.send(("epoch", task.number, trainer.epoch, metrics))
                if best is not None and best[0] == trainer.epoch:
                    task.channel.send(("best", task.number, trainer.epoch, (metrics, best[1])))
                ongoing = trainer.epoch < total and not trainer.diverged
                if ongoing and time.monotonic() - streamed_at >= task.checkpoint_seconds:
                    task.channel.send(("state", task.number, trainer.epoch, trainer.state()))
                    streamed_at = time.monotonic()
                if ongoing and task.channel.stopped(task.number):
                    stopped = True
                    break
    except Exception as err:  # plugin or configuration error: the trial fails, the study goes on
        message = failure_text(err, task.tracebacks)
        history = trainer.history if trainer is not None else []
        plugins.notify("on_trial_end", trial=trial, result=RunResult("failed", list(history), task.config, message))
        if trainer is not None:
            trainer.close()
        kept = best if best is not None and best[1] is not None else None  # an end state after an error is not kept
        return TaskResult(task.number, epochs, "failed", error=message, best=kept, config=config)
    if stopped:  # its state goes back: a trial stopped by a budget resumes from here
        state = trainer.state()
        trainer.close()
        return TaskResult(task.number, epochs, "stopped", state, best=best, config=config)
    status = "diverged" if trainer.diverged else "finished" if trainer.epoch >= total else "running"
    state = trainer.state() if status == "running" or (best is not None and best[1] is None) else None
    if best is not None and best[1] is None:
        best = (best[0], state)  # one object: pickled once with the result
    if status != "running":
        plugins.notify("on_trial_end", trial=trial, result=RunResult(status, list(trainer.history), trainer.config))
        trainer.close()
        return TaskResult(task.number, epochs, status, best=best, config=config)
    token = uuid.uuid4().hex
    _cache.put(task, token, trainer)
    return TaskResult(task.number, epochs, status, state, token, best=best, config=config)


def _copied(state: dict[str, Any]) -> dict[str, np.ndarray]:
    """A state that later epochs cannot change (a trainer may hand out its live arrays)."""
    return {key: np.array(value, copy=True) for key, value in state.items()}

"""The unit of work a strategy hands to an executor: train one trial for a few epochs.

A segment carries everything needed to continue a trial anywhere (its configuration and
its last state, as arrays) and comes back with the finished epochs and the new
checkpoint, so only the process that owns the study writes the store. Each worker process
keeps the trainers it has just advanced, so a trial that comes back to the same worker
skips rebuilding and restoring.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from research.plugins import Plugins, load_plugins
from research.nn.training import Trainer, TrialInfo

CACHED_TRAINERS = 4


@dataclass(frozen=True)
class Segment:
    """Train trial ``number`` of ``study`` for up to ``epochs`` more epochs."""

    study: str
    number: int
    config: dict[str, Any]
    epochs: int
    checkpoint: dict[str, np.ndarray] | None = None  # Trainer.state() to continue from
    parent: str | None = None  # token of the result the checkpoint came from
    changes: dict[str, Any] = field(default_factory=dict)  # hyperparameters to set first


@dataclass(frozen=True)
class SegmentResult:
    """What a segment produced: finished epochs, the new checkpoint and the trial's status
    (``running`` while epochs remain; ``finished``, ``diverged`` or ``failed``)."""

    number: int
    epochs: list[tuple[int, dict[str, float]]]
    status: str
    checkpoint: dict[str, np.ndarray] | None = None
    token: str | None = None
    error: str | None = None


@lru_cache(maxsize=1)
def _plugins() -> Plugins:
    """The plugins of this worker process, loaded once."""
    return load_plugins()


class _TrainerCache:
    """The few trainers this process advanced last, by (study, trial) and result token."""

    def __init__(self, size: int):
        self.size = size
        self.entries: OrderedDict[tuple[str, int], tuple[str, Trainer]] = OrderedDict()

    def take(self, segment: Segment) -> Trainer | None:
        entry = self.entries.pop((segment.study, segment.number), None)
        if entry is not None and segment.parent is not None and entry[0] == segment.parent:
            return entry[1]
        return None

    def put(self, segment: Segment, token: str, trainer: Trainer) -> None:
        self.entries[(segment.study, segment.number)] = (token, trainer)
        while len(self.entries) > self.size:
            self.entries.popitem(last=False)


_cache = _TrainerCache(CACHED_TRAINERS)


def _trainer_for(segment: Segment, plugins: Plugins) -> Trainer:
    trainer = _cache.take(segment)
    if trainer is None:
        trainer = Trainer(segment.config, plugins)
        if segment.checkpoint is not None:
            trainer.load_state(segment.checkpoint)
    for name, value in segment.changes.items():
        trainer.set_hyper(name, value)
    return trainer


def run_segment(segment: Segment) -> SegmentResult:
    """Advance one trial; any error (bad configuration, plugin code) makes it ``failed``."""
    plugins = _plugins()
    trial = TrialInfo(segment.study, segment.number, segment.config)
    epochs: list[tuple[int, dict[str, float]]] = []
    try:
        trainer = _trainer_for(segment, plugins)
        if trainer.epoch == 0:
            plugins.notify("on_trial_start", trial=trial)
        total = trainer.resolved.run["epochs"]
        for _ in range(segment.epochs):
            if trainer.epoch >= total or trainer.diverged:
                break
            metrics = trainer.train_epoch()
            epochs.append((trainer.epoch, metrics))
            plugins.notify("on_epoch_end", trial=trial, epoch=trainer.epoch, metrics=metrics)
    except Exception as err:  # plugin or configuration error: the trial fails, the study goes on
        message = f"{type(err).__name__}: {err}".splitlines()[0]
        return SegmentResult(segment.number, epochs, "failed", error=message)
    status = "diverged" if trainer.diverged else "finished" if trainer.epoch >= total else "running"
    token = uuid.uuid4().hex
    _cache.put(segment, token, trainer)
    return SegmentResult(segment.number, epochs, status, trainer.state(), token)

"""Built-in pruners: stop trials that are clearly losing, so caviar spends its epochs on the
promising ones.

A pruner is asked after every committed epoch of a running trial. It sees only what the
store holds (every trial's live score curve: the study's metric by epoch, negated when the
study minimizes it, so higher is always better), so its decisions survive a resume. Their
reasons speak of ranks, which read the same whichever way the metric goes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Annotated, Any

from research import hookimpl
from research.options import Configurable, Option

Curves = dict[int, list[float | None]]


def _value_at(curve: list[float | None], epoch: int) -> float | None:
    """The metric at ``epoch`` (1-based), if the trial got there with a finite value."""
    if len(curve) < epoch:
        return None
    value = curve[epoch - 1]
    return value if value is not None and math.isfinite(value) else None


class ASHA(Configurable):
    """Asynchronous successive halving (Li et al., MLSys 2020), stopping variant.

    Rungs sit at ``min_epochs * reduction**k`` epochs (below ``max_epochs``). When a trial
    reaches a rung it goes on only if its value there is in the top ``1/reduction`` of
    every trial that has reached that rung so far (itself included): with n such trials it
    must be at least the ``max(1, n // reduction)``-th best. Otherwise it stops as pruned.
    Early arrivals compete with fewer trials, as in the asynchronous algorithm.
    """

    kind, name = "pruner", "asha"

    def __init__(self, *, min_epochs: Annotated[int, Option("Epochs of the first rung", min=1)] = 1,
                 reduction: Annotated[int, Option("Keep the top 1/reduction at each rung", min=2)] = 3,
                 max_epochs: Annotated[int, Option("Stop every trial here (0: never)", min=0)] = 0):
        self.min_epochs, self.reduction, self.max_epochs = min_epochs, reduction, max_epochs

    def rungs(self, max_epochs: int) -> list[int]:
        """Epochs at which trials are judged (the last epoch is never a rung: it ends anyway)."""
        limit = min(self.max_epochs or max_epochs, max_epochs)
        rungs, epoch = [], self.min_epochs
        while epoch < limit:
            rungs.append(epoch)
            epoch *= self.reduction
        return rungs

    def inert(self, max_epochs: int) -> str | None:
        """Why ASHA cannot judge a study of ``max_epochs`` epochs, or None: no rung would stop
        any trial, or ``max_epochs`` below the study's would stop every one (as pruned, so
        none would finish, and coarse-to-fine centers its boxes on finished trials), or above
        it would cap nothing (a mistake for --epochs)."""
        if self.max_epochs and self.max_epochs < max_epochs:
            return (f"max_epochs={self.max_epochs} would stop every trial at epoch {self.max_epochs} of the study's "
                    f"{max_epochs}, as pruned, so none would finish; train with --epochs {self.max_epochs} instead")
        if self.max_epochs > max_epochs:
            return (f"max_epochs={self.max_epochs} is above the study's {max_epochs} epochs, so it would cap nothing "
                    f"(it caps trials whose epochs are searched); train with --epochs {self.max_epochs}, or leave "
                    "max_epochs out")
        if self.rungs(max_epochs):
            return None
        return (f"min_epochs={self.min_epochs} leaves no rung before the study's last epoch ({max_epochs}), so it "
                "would prune nothing; lower min_epochs or raise --epochs")

    def prune(self, number: int, epoch: int, curves: Curves, max_epochs: int) -> str | None:
        if self.max_epochs and epoch >= self.max_epochs and epoch < max_epochs:
            return f"reached max_epochs={self.max_epochs}"
        if epoch not in self.rungs(max_epochs):
            return None
        mine = _value_at(curves.get(number, []), epoch)
        if mine is None:
            return None
        values = sorted((v for c in curves.values() if (v := _value_at(c, epoch)) is not None), reverse=True)
        keep = max(1, len(values) // self.reduction)
        threshold = values[keep - 1]
        if mine >= threshold:
            return None
        # Ranks, not values: a minimized metric's scores are negated, so its values would read wrong.
        rank = 1 + sum(v > mine for v in values)
        return f"ASHA rung {epoch}: ranked {rank} of {len(values)} trials; the top {keep} (1/{self.reduction}) go on"


class Median(Configurable):
    """Stop a trial whose value is below the median of the other trials at the same epoch,
    once ``warmup_epochs`` have passed and at least ``min_trials`` others reached that epoch."""

    kind, name = "pruner", "median"

    def __init__(self, *, warmup_epochs: Annotated[int, Option("Epochs never judged", min=0)] = 2,
                 min_trials: Annotated[int, Option("Other trials needed at an epoch", min=1)] = 3):
        self.warmup_epochs, self.min_trials = warmup_epochs, min_trials

    def inert(self, max_epochs: int) -> str | None:
        """Why no trial of ``max_epochs`` epochs could ever be stopped, or None."""
        if self.warmup_epochs + 1 < max_epochs:
            return None
        fix = "lower warmup_epochs or raise --epochs" if self.warmup_epochs else "raise --epochs"
        return (f"warmup_epochs={self.warmup_epochs} leaves no epoch to judge before the study's last ({max_epochs}), "
                f"so it would prune nothing; {fix}")

    def prune(self, number: int, epoch: int, curves: Curves, max_epochs: int) -> str | None:
        if epoch <= self.warmup_epochs or epoch >= max_epochs:
            return None
        mine = _value_at(curves.get(number, []), epoch)
        others = sorted(v for n, c in curves.items() if n != number and (v := _value_at(c, epoch)) is not None)
        if mine is None or len(others) < self.min_trials:
            return None
        middle = len(others) // 2
        median = others[middle] if len(others) % 2 else (others[middle - 1] + others[middle]) / 2
        if mine < median:
            return f"median rule at epoch {epoch}: worse than the median of {len(others)} others"
        return None


@hookimpl
def register_pruners(register: Callable[[str, Callable[..., Any]], None]) -> None:
    """Register asha and median."""
    register("asha", ASHA)
    register("median", Median)

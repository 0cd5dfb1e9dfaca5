"""What a study optimizes: one metric of the learning curve and a direction.

A trial's score is its best epoch by that metric (ties broken by the validation loss). Everything that compares trials (ranking,
pruners, samplers that learn, babysit's policy, reports) asks the objective, so a study
that minimizes the validation loss is ranked, pruned and plotted by it throughout. Code
that wants "higher is better" uses ``key``: the value, negated when the metric is minimized.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from research.errors import UsageError

METRICS = ("val_acc", "val_loss", "train_acc", "train_loss")
"""The metrics every trainer reports, each epoch, that a study may optimize."""
TEST_PREFIX = "test_"
"""Metrics of the held-out test split (``test_acc``, ``test_loss``): reported for the epoch
the objective selects, never optimized, so the test score stays an honest estimate."""
NOT_RESULTS = {"lr": "the learning rate each epoch trained with", "seconds": "the time each epoch took"}
"""Columns every epoch has that say how it ran, not how well: a new study never optimizes them."""
DIRECTIONS = ("maximize", "minimize")
DEFAULT_METRIC = "val_acc"


def default_metric(known: tuple[str, ...] | None) -> str:
    """The metric optimized when none is named: val_acc, unless the trainer declares metrics
    without it (a regression, a loss only); then the first one it declares."""
    return known[0] if known and DEFAULT_METRIC not in known else DEFAULT_METRIC


LOWER_WORDS = frozenset({"loss", "losses", "error", "errors", "err", "mse", "mae", "rmse", "nll", "ce", "xent",
                         "perplexity", "ppl", "wer", "cer", "cost", "costs", "regret"})
"""Words that make a metric lower-is-better wherever they stand in its name, split at underscores
(``top1_err``, ``error_rate``, ``val_mse``): a loss, an error or its rate, a divergence."""


def natural_direction(metric: str) -> str:
    """Minimize a loss or an error (a name ending in loss, losses, error or errors, or with a
    word of LOWER_WORDS: ``val_loss``, ``n_errors``, ``top1_err``, ``error_rate``, ``val_mse``),
    maximize anything else."""
    lower = metric.lower()
    if lower.endswith(("loss", "losses", "error", "errors")) or LOWER_WORDS & set(lower.split("_")):
        return "minimize"
    return "maximize"


@dataclass(frozen=True)
class Objective:
    """A metric and its direction."""

    metric: str = DEFAULT_METRIC
    direction: str = "maximize"

    @classmethod
    def make(cls, metric: str | None = None, direction: str | None = None,
             known: tuple[str, ...] | None = METRICS) -> Objective:
        """The objective for ``metric`` (default: ``default_metric(known)``), in ``direction`` (default: minimize
        a loss, maximize the rest). ``known``: the metrics the trainer reports (None: any name,
        for a trainer that does not say); a name outside them is a one-line UsageError."""
        metric = metric or default_metric(known)
        if metric.startswith(TEST_PREFIX):
            raise UsageError(f"the study cannot optimize '{metric}': the held-out test split only reports, for "
                             "the trials validation chose; optimize a validation metric such as val_acc or val_loss")
        if known is not None and metric in NOT_RESULTS:  # a stored study's objective (known=None) is read as is
            raise UsageError(f"the study cannot optimize '{metric}': it is {NOT_RESULTS[metric]}, not a result; "
                             "optimize a validation metric such as val_acc or val_loss")
        if known is not None and metric not in known:
            choices = [name for name in known if not name.startswith(TEST_PREFIX)]  # reported, never optimized
            raise UsageError(f"unknown metric '{metric}'; choose one of: {', '.join(choices)}")
        if not metric.isidentifier():
            raise UsageError(f"a metric is a name like val_acc, got '{metric}'")
        direction = direction or natural_direction(metric)
        if direction not in DIRECTIONS:
            raise UsageError(f"direction must be maximize or minimize, got '{direction}'")
        return cls(metric, direction)

    @classmethod
    def of(cls, settings: Mapping[str, Any]) -> Objective:
        """The objective a study's stored settings name (studies from before the choice
        existed optimized the validation accuracy)."""
        return cls.make(settings.get("metric"), settings.get("direction"), known=None)

    @property
    def sign(self) -> float:
        return 1.0 if self.direction == "maximize" else -1.0

    def key(self, value: float | None) -> float | None:
        """``value`` as a higher-is-better number (None, NaN and inf stay unusable: None)."""
        if value is None or not math.isfinite(value):
            return None
        return self.sign * float(value)

    def best(self, values: Iterable[float | None]) -> float | None:
        """The best usable value of a curve, None when there is none."""
        usable = [v for v in values if self.key(v) is not None]
        return max(usable, key=lambda v: self.sign * v) if usable else None

    def better(self, new: float | None, old: float | None) -> bool:
        """Is ``new`` strictly better than ``old`` (an unusable value never is; anything usable
        beats an unusable old one)?"""
        a, b = self.key(new), self.key(old)
        return a is not None and (b is None or a > b)

    @property
    def tie_break(self) -> Objective:
        """What decides between equal scores: the validation loss, minimized (the validation
        accuracy, maximized, when the loss is the metric itself). Small validation sets make
        ties common (many trials at 1.0 accuracy); the loss still tells them apart."""
        return Objective("val_acc", "maximize") if self.metric == "val_loss" else Objective("val_loss", "minimize")

    def rank(self, epoch: Mapping[str, Any]) -> tuple[float, float] | None:
        """An epoch's place, higher is better: its score (``key``), then the tie-break's; None
        when its score is unusable."""
        score = self.key(epoch.get(self.metric))
        if score is None:
            return None
        tie = self.tie_break
        tied = tie.key(epoch.get(tie.metric))
        return score, tied if tied is not None else -math.inf

    def select(self, curve: Iterable[Mapping[str, Any]]) -> Mapping[str, Any] | None:
        """The epoch a trial is judged by: the best ``rank`` (the earliest among equals), None
        when no epoch has a usable score. Its test metrics are the trial's reported ones."""
        # ``rank`` inlined: this runs over every epoch of every trial each time a study is ranked.
        tie = self.tie_break
        metric, sign, tie_metric, tie_sign = self.metric, self.sign, tie.metric, tie.sign
        best, best_rank = None, None
        for epoch in curve:
            value = epoch.get(metric)
            if value is None or not math.isfinite(value):
                continue
            tied = epoch.get(tie_metric)
            rank = (sign * value, tie_sign * tied if tied is not None and math.isfinite(tied) else -math.inf)
            if best_rank is None or rank > best_rank:
                best, best_rank = epoch, rank
        return best

    def order(self, curves: Mapping[int, Iterable[Mapping[str, Any]]]) -> list[int]:
        """Trial numbers best first: by the ``rank`` of each one's selected epoch, trials
        without a usable score last, equal ones by number. The one ranking every table,
        picture and command uses."""
        return self.order_selected({number: self.select(curve) for number, curve in curves.items()})

    def order_selected(self, selected: Mapping[int, Mapping[str, Any] | None]) -> list[int]:
        """:meth:`order` from each trial's epoch already chosen by :meth:`select` (None: no
        usable score)."""
        ranks = {number: self.rank(chosen) if chosen is not None else None for number, chosen in selected.items()}
        return sorted(ranks, key=lambda n: (ranks[n] is None, tuple(-v for v in ranks[n] or ()), n))

    @property
    def label(self) -> str:
        """``val acc (max)``: for table headers."""
        return f"{self.metric.replace('_', ' ')} ({self.direction[:3]})"

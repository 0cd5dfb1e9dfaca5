"""What a sampler may look at: the study's trials so far, as plain values.

Samplers keep no hidden state: everything they need to decide the next configuration is
here, rebuilt from the store, so a resumed study continues exactly where it stopped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class TrialSummary:
    """One trial as a sampler sees it. ``score`` is higher-is-better: its best value so far of
    the study's metric, negated when the study minimizes it (research.study.objective); None
    when the trial has no usable result yet or failed."""

    number: int
    config: dict[str, Any]
    status: str
    score: float | None = None
    round: int | None = None


@dataclass(frozen=True)
class History:
    """The trials of a study (finished and running), and the trial being asked for."""

    number: int
    budget: int
    seed: int
    trials: tuple[TrialSummary, ...] = field(default_factory=tuple)

    def finished(self) -> list[TrialSummary]:
        """Trials with a usable score, best first (ties by number, for determinism)."""
        done = [t for t in self.trials if t.status == "finished" and t.score is not None]
        return sorted(done, key=lambda t: (-t.score, t.number))

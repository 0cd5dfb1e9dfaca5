"""A study's search trials in the order ``research show`` ranks them, with their scores.

Each trial is judged by the epoch its objective selects (``Objective.select``: the best value
of the study's metric, ties by the validation loss) and ranked best first; its score is that
value as a higher-is-better number (``Objective.key``), None when it has none (ranked last).
Confirmation trials are not the search's and are left out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from research.study.objective import Objective
from research.study.store import Store, Study, TrialRecord

SCORED = ("finished", "pruned", "diverged")
"""Trial statuses whose score says something of their region: a pruned or diverged trial's
best epoch counts as much as a finished one's (failed and running trials do not)."""


def failed_last(order: list[int], statuses: Mapping[int, str]) -> list[int]:
    """Trial numbers ranked best first (``order``), the failed ones moved after the rest in
    their order: a trial that crashed after a good epoch is shown, but an error is no result
    to head a ranking, be confirmed or exported as the best."""
    return [n for n in order if statuses.get(n) != "failed"] + [n for n in order if statuses.get(n) == "failed"]


def ranked_epochs(store: Store, study: Study, statuses: Iterable[str],
                  curves: Mapping[int, list[dict[str, Any]]] | None = None
                  ) -> list[tuple[TrialRecord, Mapping[str, Any] | None]]:
    """The study's search trials of ``statuses``, best first, each with the epoch it is judged
    by (None: no usable score); ``curves``: the study's, when the caller has read them already."""
    objective = Objective.of(study.settings)
    wanted = set(statuses)
    confirmations = store.confirmations(study)
    trials = {t.number: t for t in store.trials(study) if t.status in wanted and t.number not in confirmations}
    curves = store.curves(study) if curves is None else curves
    chosen = {number: objective.select(curves.get(number, [])) for number in trials}
    return [(trials[number], chosen[number]) for number in objective.order_selected(chosen)]


def ranked_scores(store: Store, study: Study, statuses: Iterable[str],
                  curves: Mapping[int, list[dict[str, Any]]] | None = None) -> list[tuple[TrialRecord, float | None]]:
    """:func:`ranked_epochs`, each trial with its score rather than its epoch."""
    objective = Objective.of(study.settings)
    return [(trial, objective.key(epoch[objective.metric]) if epoch else None)
            for trial, epoch in ranked_epochs(store, study, statuses, curves)]

"""A winner on one seed may be luck: ``research confirm`` trains a study's best trials again
with new seeds and reports the mean and spread of their scores.

Each replicate is a trial of the same study (numbered from ``CONFIRMATIONS_FROM``, marked
with the trial it confirms), trained to its configured epochs through the study's executor,
an epoch per task so that every epoch is committed as it comes and a checkpoint is written
every ``CHECKPOINT_SECONDS``: an interrupted confirmation resumes where it stopped, and
asking again for replicates that exist trains nothing. Search trials never see them:
samplers, budgets and the ranking count the search's trials only.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import time
from concurrent.futures import FIRST_COMPLETED, BrokenExecutor, Future, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from research.defaults import MAX_CONFIRMED
from research.errors import UsageError, tracebacks_wanted
from research.study.objective import TEST_PREFIX, Objective
from research.study.ranking import failed_last
from research.study.store import CONFIRMATIONS_FROM, DONE_STATUSES, Store, TrialRecord
from research.study.store import Study as StudyRecord
from research.study.worker import ALL_EPOCHS, Task, TaskResult, failure_text, run_task

if TYPE_CHECKING:
    from research.study.study import Study

CHECKPOINT_SECONDS = 2.0
RETRIES = 2
"""New workers a replicate may need after its worker died."""


def confirmation_seed(seed: int, replicate: int) -> int:
    """Replicate ``replicate``'s seed, from the confirmed trial's seed: new, and the same
    each time it is asked for (so asking again finds the replicate already trained)."""
    return int(np.random.SeedSequence([seed, 0x5EED, replicate]).generate_state(1)[0] % (2**31))


def top_trials(store: Store, record: StudyRecord, objective: Objective, top: int) -> list[int]:
    """The ``top`` best search trials with a score (Objective.order), as ``research show``
    ranks them (failed ones last)."""
    statuses = {t.number: t.status for t in store.trials(record)}
    return failed_last(_scored_order(store.curves(record), store.confirmations(record), objective), statuses)[:top]


def _scored_order(curves: dict[int, list[dict[str, Any]]], confirmations: dict[int, tuple[int, int]],
                  objective: Objective) -> list[int]:
    """The search trials that have a score, best first."""
    search = {n: curve for n, curve in curves.items() if n not in confirmations and objective.select(curve)}
    return objective.order(search)


class Confirm:
    """Train ``seeds`` replicates of each of the study's ``top`` best trials: a run that
    ``Study.run`` drives like a strategy (it holds the study's lease)."""

    def __init__(self, top: int, seeds: int):
        for name, value in (("top", top), ("seeds", seeds)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 1 <= value <= MAX_CONFIRMED:
                raise UsageError(f"Confirm needs {name} as a whole number from 1 to {MAX_CONFIRMED}, got {value!r} "
                                 "(every replicate is stored before it trains)")
        self.top, self.seeds = int(top), int(seeds)

    def run(self, study: Study) -> None:
        _ConfirmRun(study, self.plan(study)).run()

    def chosen(self, study: Study) -> list[int]:
        """The trials to confirm, best first; a UsageError when the study has none that can be."""
        record = study.record
        strategy = study.plugins.get("strategies", record.strategy)
        if not getattr(strategy, "replays", True):
            raise UsageError(f"strategy '{record.strategy}' changes hyperparameters while a trial trains, so a "
                             "trial's configuration does not train it again; confirm a study of another strategy")
        chosen = top_trials(study.store, record, study.settings.objective, self.top)
        if not chosen:
            raise UsageError(f"study '{record.name}' has no trial with a scored epoch yet; train it first")
        return chosen

    def plan(self, study: Study) -> list[TrialRecord]:
        """The replicates to train (made in the store when missing), oldest first."""
        store, record = study.store, study.record
        chosen = self.chosen(study)
        existing = {link: number for number, link in store.confirmations(record).items()}
        numbers = [t.number for t in store.trials(record)]
        following = max([CONFIRMATIONS_FROM - 1, *numbers]) + 1
        for original in chosen:
            trial = store.trial(record, original)
            for replicate in range(1, self.seeds + 1):
                if (original, replicate) not in existing:
                    seed = confirmation_seed(trial.seed, replicate)
                    store.add_confirmation(record, following, {**trial.config, "seed": seed}, seed, original, replicate)
                    existing[(original, replicate)] = following
                    following += 1
        wanted = [existing[(o, r)] for o in chosen for r in range(1, self.seeds + 1)]
        trials = {t.number: t for t in store.trials(record)}
        return [trials[n] for n in wanted if trials[n].status not in DONE_STATUSES]


class _ConfirmRun:
    """The replicates in flight, an epoch per task, on the study's executor."""

    def __init__(self, study: Study, pending: list[TrialRecord]):
        self.study, self.pending = study, list(pending)
        self.whole = study.whole_trial
        self.in_flight: dict[Future, TrialRecord] = {}
        self.saved_at: dict[int, float] = {}
        self.failures: dict[int, int] = {}
        self.latest: dict[int, dict | None] = {}  # the state each replicate's next task starts from
        self.tokens: dict[int, str | None] = {}  # ... and the result it came with (a worker may still hold it)
        self.executor: Any = None
        self.unsent: list[TrialRecord] = []  # submitted to an executor that had broken

    def run(self) -> None:
        study = self.study
        self.executor = study.make_executor()
        try:
            while self.pending or self.in_flight or self.unsent:
                while self.pending and len(self.in_flight) < study.workers and not self.unsent:
                    self.start(self.pending.pop(0))
                done, _ = wait(self.in_flight, return_when=FIRST_COMPLETED) if self.in_flight else (set(), set())
                lost = [trial for future in done if (trial := self.handle(future)) is not None]
                if lost or self.unsent:
                    self.recover(lost)
        except BaseException:
            study.store.mark_running_interrupted(study.record)
            self.executor.shutdown(wait=True, cancel_futures=True)
            with contextlib.suppress(Exception):  # the stop's own cause is the one to report; what is not
                self.keep_what_ended()  # kept trains again on resume, from its last checkpoint
            raise
        self.executor.shutdown(wait=True)

    def keep_what_ended(self) -> None:
        """After the stop's wait: the tasks that ended meanwhile keep their epochs, and a
        replicate that goes on its state, to resume from (they were thrown away)."""
        study = self.study
        for future, trial in self.in_flight.items():
            if not future.done() or future.cancelled() or future.exception() is not None:
                continue  # never ran, still out (an executor that does not wait), or lost with its worker
            result = future.result()
            study.offer_best(trial.number, result.epochs, result.best)
            study.keep_config(trial, result.config)
            if result.status == "running" and result.checkpoint is not None:
                study.save_checkpoint(trial.number, result.checkpoint)
            self.commit(trial, result.epochs)
            if result.status != "running":
                self.end(trial, result.status, result.error)

    def start(self, trial: TrialRecord) -> None:
        study = self.study
        state = study.load_checkpoint(trial.number)
        if state is not None:
            study.reconcile(trial, state)
        study.store.set_status(trial, "running")
        study.reporter.trial_started(trial.number, trial.config)
        self.latest[trial.number] = state
        self.submit(trial)

    def submit(self, trial: TrialRecord) -> None:
        task: Task = self.study.task(trial, ALL_EPOCHS if self.whole else 1, self.latest.get(trial.number),
                                     self.tokens.get(trial.number))
        try:
            self.in_flight[self.executor.submit(run_task, task)] = trial
        except BrokenExecutor:  # broke since the last wait (a worker died): lost, for recover
            self.unsent.append(trial)

    def handle(self, future: Future) -> TrialRecord | None:
        """Commit what a task trained and send the replicate on; the trial when its worker died."""
        trial = self.in_flight.pop(future)
        try:
            result = future.result()
        except BrokenExecutor:
            return trial
        except Exception as err:
            result = TaskResult(trial.number, [], "failed", error=failure_text(err, tracebacks_wanted()))
        study = self.study
        study.offer_best(trial.number, result.epochs, result.best)
        study.keep_config(trial, result.config)
        if result.status == "running":
            self.latest[trial.number], self.tokens[trial.number] = result.checkpoint, result.token
            now = time.monotonic()
            if now - self.saved_at.get(trial.number, -math.inf) >= CHECKPOINT_SECONDS:
                study.save_checkpoint(trial.number, result.checkpoint)
                self.saved_at[trial.number] = now
            self.submit(trial)
        self.commit(trial, result.epochs)
        if result.status != "running":
            self.end(trial, result.status, result.error)
        return None

    def commit(self, trial: TrialRecord, epochs: list[tuple[int, dict[str, float]]]) -> None:
        for epoch, metrics in epochs:
            self.study.store.add_epoch(trial, epoch, metrics)
            self.study.reporter.epoch_done(trial.number, epoch, metrics)

    def recover(self, lost: list[TrialRecord]) -> None:
        """The executor broke: a new one takes every replicate in flight, from its last state."""
        lost += self.unsent + list(self.in_flight.values())
        self.in_flight.clear()
        self.unsent.clear()
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.executor = self.study.make_executor()
        for trial in lost:
            self.failures[trial.number] = self.failures.get(trial.number, 0) + 1
            if self.failures[trial.number] > RETRIES:
                self.end(trial, "failed", f"its worker died {self.failures[trial.number]} times")
            else:
                self.tokens[trial.number] = None
                self.submit(trial)

    def end(self, trial: TrialRecord, status: str, error: str | None) -> None:
        self.study.store.set_status(trial, status, error)
        self.study.drop_checkpoint(trial.number)
        self.study.reporter.trial_ended(trial.number, status, error)


@dataclass
class Confirmed:
    """One confirmed trial: its own score and test metrics, and its replicates'."""

    trial: int
    score: float | None
    test: dict[str, float]
    replicates: list[dict[str, Any]] = field(default_factory=list)  # number, replicate, status, score, test

    @staticmethod
    def spread(values: list[float]) -> dict[str, float | int | None]:
        """Mean, standard deviation (n - 1), min and max of ``values``."""
        if not values:
            return {"n": 0, "mean": None, "std": None, "min": None, "max": None}
        array = np.asarray(values, dtype=np.float64)
        std = float(array.std(ddof=1)) if len(array) > 1 else None
        return {"n": len(array), "mean": float(array.mean()), "std": std, "min": float(array.min()),
                "max": float(array.max())}

    def as_dict(self, metric: str) -> dict[str, Any]:
        finished = [r for r in self.replicates if r["status"] == "finished"]
        tests = sorted({name for r in finished for name in r["test"]})
        return {"trial": self.trial, f"best_{metric}": self.score, "test": self.test,
                "replicates": self.replicates,
                metric: self.spread([r["score"] for r in finished if r["score"] is not None]),
                **{name: self.spread([r["test"][name] for r in finished if name in r["test"]]) for name in tests}}


def spread_text(summary: dict[str, Any] | None) -> str:
    """``0.9612 ± 0.0041 [0.9554 .. 0.9666]`` (mean ± standard deviation [min .. max]) from
    ``Confirmed.spread``; a dash without values."""
    if not summary or not summary["n"]:
        return "-"
    std = f" ± {summary['std']:.2g}" if summary["std"] is not None else ""
    return f"{summary['mean']:.4g}{std} [{summary['min']:.4g} .. {summary['max']:.4g}]"


def confirmed(store: Store, record: StudyRecord, objective: Objective) -> list[Confirmed]:
    """Every trial of the study that has replicates, best first, with what they scored (a
    replicate's score is its selected epoch's, as for any trial)."""
    links = store.confirmations(record)
    if not links:
        return []
    curves = store.curves(record)
    trials = {t.number: t for t in store.trials(record)}

    def scored(number: int) -> tuple[float | None, dict[str, float]]:
        chosen = objective.select(curves.get(number, []))
        if chosen is None:
            return None, {}
        return chosen.get(objective.metric), {k: v for k, v in chosen.items() if k.startswith(TEST_PREFIX)}

    found: dict[int, Confirmed] = {}
    for number, (original, replicate) in sorted(links.items(), key=lambda item: item[1]):
        if original not in found:
            found[original] = Confirmed(original, *scored(original))
        score, test = scored(number)
        found[original].replicates.append({"number": number, "replicate": replicate, "seed": trials[number].seed,
                                           "status": trials[number].status, "score": score, "test": test})
    order = {number: place for place, number in enumerate(_scored_order(curves, links, objective))}
    return sorted(found.values(), key=lambda c: order.get(c.trial, len(order)))

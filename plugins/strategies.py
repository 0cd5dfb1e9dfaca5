"""Built-in strategies. ``caviar``: many models trained side by side, every epoch of every
trial streamed to the store as it finishes."""

from __future__ import annotations

from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import Any

from research import hookimpl
from research.store import DONE_STATUSES, TrialRecord
from research.study import Study
from research.worker import Segment, SegmentResult, run_segment


class Caviar:
    """Train the study's trials side by side, ``workers`` at a time.

    Each trial advances ``segment_epochs`` epochs per task (1: every epoch streams back as
    soon as it is done). A trial continues from its checkpoint, so a resumed study
    finishes its interrupted trials exactly as if nothing had happened.
    """

    def __init__(self, segment_epochs: int | str = 1):
        self.segment_epochs = int(segment_epochs)
        if self.segment_epochs < 1:
            raise ValueError(f"segment_epochs must be >= 1, got {segment_epochs}")

    def run(self, study: Study) -> None:
        store, record = study.store, study.record
        store.mark_running_interrupted(record)
        trials = {t.number: t for t in store.trials(record)}
        sampler = study.make_sampler()
        budget = study.settings.trials
        resumable = sorted(n for n, t in trials.items() if t.status == "interrupted" and n < budget)
        fresh = [n for n in range(budget) if n not in trials]
        in_flight: dict[Future, TrialRecord] = {}
        executor = study.make_executor()

        def submit(trial: TrialRecord, data: bytes | None, parent: str | None = None) -> None:
            segment = Segment(record.name, trial.number, trial.config, self.segment_epochs, data, parent)
            in_flight[executor.submit(run_segment, segment)] = trial

        def start_next() -> bool:
            """Start one more trial if the budget and the sampler allow; False if none can start."""
            if resumable:
                trial = trials[resumable.pop(0)]
                data = study.load_checkpoint(trial.number)
                if data is not None:
                    study.reconcile(trial, data)
                store.set_status(trial, "running")
                study.reporter.trial_started(trial.number, trial.config)
                submit(trial, data)
                return True
            if not fresh:
                return False
            number = fresh[0]
            needed = sampler.needs_finished(number) if hasattr(sampler, "needs_finished") else 0
            if any(trials.get(n) is None or trials[n].status not in DONE_STATUSES for n in range(needed)):
                return False
            fresh.pop(0)
            trial = study.new_trial(number, sampler)
            trials[number] = trial
            study.reporter.trial_started(number, trial.config)
            submit(trial, None)
            return True

        try:
            while True:
                while len(in_flight) < study.workers and start_next():
                    pass
                if not in_flight:
                    break
                done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                for future in done:
                    trial = in_flight.pop(future)
                    result = _result_of(future, trial)
                    self._record(study, trial, result)
                    if result.status == "running":
                        submit(trial, result.checkpoint, result.token)
                    else:
                        trials[trial.number] = store.trial(record, trial.number)
        except BaseException:
            executor.shutdown(wait=True, cancel_futures=True)
            store.mark_running_interrupted(record)
            raise
        executor.shutdown(wait=True)

    @staticmethod
    def _record(study: Study, trial: TrialRecord, result: SegmentResult) -> None:
        """Checkpoint first, then commit the epochs: a crash in between loses nothing."""
        if result.checkpoint is not None:
            study.save_checkpoint(trial.number, result.checkpoint)
        for epoch, metrics in result.epochs:
            study.store.add_epoch(trial, epoch, metrics)
            study.reporter.epoch_done(trial.number, epoch, metrics)
        if result.status != "running":
            study.store.set_status(trial, result.status, result.error)
            study.drop_checkpoint(trial.number)
            study.reporter.trial_ended(trial.number, result.status, result.error)


def _result_of(future: Future, trial: TrialRecord) -> SegmentResult:
    """A segment's result; a worker that crashed outright fails just that trial."""
    try:
        return future.result()
    except Exception as err:  # worker process died or the task could not be sent
        return SegmentResult(trial.number, [], "failed", error=f"{type(err).__name__}: {err}".splitlines()[0])


@hookimpl
def register_strategies(register: Any) -> None:
    register("caviar", Caviar)

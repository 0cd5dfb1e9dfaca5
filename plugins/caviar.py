"""Built-in strategy ``caviar``: many models trained side by side, every epoch of every
trial streamed to the store as it finishes."""

from __future__ import annotations

import contextlib
import math
import time
from concurrent.futures import FIRST_COMPLETED, BrokenExecutor, Future, wait
from dataclasses import replace
from typing import TYPE_CHECKING, Annotated, Any

from research import hookimpl
from research.errors import ResearchError, tracebacks_wanted
from research.options import Option
from research.study.channel import Message, channel_of
from research.study.store import DONE_STATUSES, TrialRecord
from research.study.strategy import Strategy
from research.study.worker import ALL_EPOCHS, Task, TaskResult, failure_text, run_task
from research.words import resume_command

if TYPE_CHECKING:
    from research.study.study import Study

POLL_SECONDS = 0.05
QUIET_STOP_SECONDS = 2.0  # a stop that waits longer than this on the workers says so
"""How often the study reads the messages of whole-trial tasks."""


class Caviar(Strategy):
    """Train the study's trials side by side, ``workers`` at a time.

    Each trial advances ``segment_epochs`` epochs per task (1: every epoch streams back as
    soon as it is done). A trial continues from its checkpoint, so a resumed study
    finishes its interrupted trials exactly as if nothing had happened. When the executor
    itself breaks (a worker process killed), a fresh one takes over the tasks in flight,
    up to ``retries`` times per trial. A trial's checkpoint is written to disk at most every
    ``checkpoint_seconds`` (its state travels with each task in memory), so a killed
    study trains again at most that much per trial, to the same values.

    A trainer that trains whole trials (``whole_trial`` on its factory: the ``command``
    trainer) gets one task per trial instead of segments; its epochs, and its state every
    ``checkpoint_seconds``, stream back through the executor's channel as they come
    (research.study.channel), and a pruned trial's task is asked to stop.
    """

    name = "caviar"

    def __init__(self, *, segment_epochs: Annotated[int, Option("Epochs per task sent to a worker", min=1)] = 1,
                 retries: Annotated[int, Option("New workers a trial may need after its worker died", min=0)] = 2,
                 checkpoint_seconds: Annotated[float, Option("Least seconds between a trial's checkpoints",
                                                             min=0)] = 2.0):
        self.segment_epochs, self.retries, self.checkpoint_seconds = segment_epochs, retries, checkpoint_seconds

    def run(self, study: Study) -> None:
        _CaviarRun(study, self).run()


class _CaviarRun:
    """One run of a caviar study: which trials are waiting, in flight and done."""

    def __init__(self, study: Study, options: Caviar):
        self.study, self.options = study, options
        self.store, self.record = study.store, study.record
        self.store.mark_running_interrupted(self.record)
        self.trials = {t.number: t for t in self.store.trials(self.record)}
        self.sampler = study.make_sampler()
        self.pruner = study.make_pruner()
        # The pruner's view: every trial's committed score by epoch (higher is better: the
        # study's metric, negated when minimized), read from the store once and then kept up
        # to date as epochs are committed.
        self.objective = study.settings.objective
        confirmations = self.store.confirmations(self.record)  # not the search's: not judged against
        self.curves: dict[int, list[float | None]] = (
            {n: self.scores(curve) for n, curve in self.store.curves(self.record).items() if n not in confirmations}
            if self.pruner is not None else {})
        self.base_epochs = int(study.settings.base.get("epochs", 0)) or None  # None: each trial draws its own
        budget = study.settings.trials
        self.resumable = sorted(n for n, t in self.trials.items() if t.status == "interrupted" and n < budget)
        self.trial_budget = budget
        self.next_fresh = 0  # the lowest number that may still be free (generated, never listed: budgets can be huge)
        self.in_flight: dict[Future, tuple[TrialRecord, Task]] = {}
        self.unsent: list[tuple[TrialRecord, Task]] = []  # submitted to an executor that had broken
        self.failures: dict[int, int] = {}
        self.saved_at: dict[int, float] = {}  # when each trial's checkpoint was last written
        self.committed: dict[int, int] = {}  # the last epoch this run committed, by trial
        self.unrecorded: set[int] = set()  # trials whose result failed to be recorded (a checkpoint not written)
        self.executor: Any = None
        self.channel: Any = None  # whole-trial tasks stream through it (None: segments)
        self.latest: dict[int, dict] = {}  # whole-trial tasks: the last state streamed, by trial
        self.ended: set[int] = set()  # whole-trial tasks: trials ended while their task runs
        self.budget: str | None = None  # why the study's budget is spent, once it is

    def submit(self, trial: TrialRecord, task: Task) -> None:
        """Send ``task`` to the executor; one that broke since the last wait (a worker died)
        takes it as lost, for :meth:`recover` to resend on a new executor."""
        try:
            self.in_flight[self.executor.submit(run_task, task)] = (trial, task)
        except BrokenExecutor:
            self.unsent.append((trial, task))

    def task(self, trial: TrialRecord, state: dict | None, parent: str | None = None) -> Task:
        if self.channel is None:
            return self.study.task(trial, self.options.segment_epochs, state, parent)
        return replace(self.study.task(trial, ALL_EPOCHS, state), channel=self.channel,
                       checkpoint_seconds=self.options.checkpoint_seconds)

    def spent(self, pending: int = 0) -> bool:
        """Whether the study's minutes or epochs are spent, with ``pending`` epochs about to be
        committed (checked until they are)."""
        if self.budget is None:
            self.budget = self.study.budget_reached(pending)
        return self.budget is not None

    def pause(self, trial: TrialRecord, result: TaskResult) -> None:
        """The budget is spent: the trial stops after this epoch, resumable from its state."""
        self.study.offer_best(trial.number, result.epochs, result.best)
        self.study.keep_config(trial, result.config)
        if result.checkpoint is not None:
            self.study.save_checkpoint(trial.number, result.checkpoint)
        self.commit(trial, result.epochs)
        self.store.set_status(trial, "interrupted")
        self.study.reporter.trial_ended(trial.number, "interrupted", None)
        self.trials[trial.number] = self.store.trial(self.record, trial.number)

    def start_next(self) -> bool:
        """Start one more trial if the budget and the sampler allow; False if none can start. A
        budget of epochs counts an epoch for each task in flight (each commits one at least):
        trials started beside them overshot it."""
        study = self.study
        if self.spent() or study.budget_reached(len(self.in_flight)) is not None:
            return False
        if self.resumable:
            trial = self.trials[self.resumable.pop(0)]
            data = study.load_checkpoint(trial.number)
            if data is not None:
                study.reconcile(trial, data)
                if self.pruner is not None:  # the reconciled epochs join the pruner's view
                    self.curves[trial.number] = self.scores(self.store.curve(trial))
            self.store.set_status(trial, "running")
            study.reporter.trial_started(trial.number, trial.config)
            reason = self.missed_prune_reason(trial)
            if reason is not None:
                self.end(trial, "pruned", reason)
                self.trials[trial.number] = self.store.trial(self.record, trial.number)
            else:
                self.submit(trial, self.task(trial, data))
            return True
        number = self.first_fresh()
        if number is None:
            return False
        needed = self.sampler.needs_finished(number) if hasattr(self.sampler, "needs_finished") else 0
        if any(self.trials.get(n) is None or self.trials[n].status not in DONE_STATUSES for n in range(needed)):
            return False
        trial = study.new_trial(number, self.sampler)
        self.trials[number] = trial
        study.reporter.trial_started(number, trial.config)
        self.submit(trial, self.task(trial, None))
        return True

    def new_channel(self) -> Any:
        """The executor's channel for whole-trial tasks (research.study.channel)."""
        name = self.study.executor_name
        return channel_of(self.executor, name, self.study.plugins.owner("executors", name))

    def first_fresh(self) -> int | None:
        """The lowest trial number within the budget not stored yet, or None."""
        while self.next_fresh < self.trial_budget and self.next_fresh in self.trials:
            self.next_fresh += 1
        return self.next_fresh if self.next_fresh < self.trial_budget else None

    def run(self) -> None:
        self.executor = self.study.make_executor()
        try:
            if self.study.whole_trial:
                self.channel = self.new_channel()
                self.channel.listen(self.on_message)
            while True:
                while len(self.in_flight) < self.study.workers and not self.unsent and self.start_next():
                    pass
                if self.unsent:
                    self.recover([])
                    continue
                if not self.in_flight:
                    break
                done, _ = wait(self.in_flight, timeout=POLL_SECONDS if self.channel else None,
                               return_when=FIRST_COMPLETED)
                if self.channel is not None:
                    self.channel.poll()  # before the results: a task's epochs come before its end
                broken = [self.in_flight.pop(future) for future in done if self.handle(future) is False]
                if broken or self.unsent:
                    self.recover(broken)
                if self.channel is not None and self.budget is not None:
                    self.stop_all()  # whole-trial tasks end after their epoch
        except BaseException:
            # The store first: waiting for the workers can itself be interrupted (Ctrl-C twice).
            self.store.mark_running_interrupted(self.record)
            if self.channel is not None:  # whole-trial tasks end after their epoch, not the trial's
                self.stop_all()
            self.stop_executor()
            with contextlib.suppress(Exception):  # the stop's own cause is the one to report; what is not
                self.keep_what_ended()  # kept trains again on resume, from its last checkpoint
            raise
        finally:
            if self.channel is not None:
                self.channel.close()
        self.executor.shutdown(wait=True)
        if self.budget is not None:  # counted again: the trials in flight when it was reached committed since
            spent = self.study.budget_reached() or self.budget
            trials = {t.number: t for t in self.store.trials(self.record)}
            if all(n in trials and trials[n].status in DONE_STATUSES for n in range(self.study.settings.trials)):
                self.study.reporter.note(f"budget reached ({spent}) as its last trial ended")
            else:
                study = self.study
                again = resume_command(study.name, study.store.path, study.executor_name, study.executor_options)
                unfinished = any(t.status not in DONE_STATUSES for t in trials.values())
                which = ("its unfinished trials are interrupted" if unfinished else
                         "its other trials were not started" if trials else "no trial started")
                study.reporter.note(f"budget reached ({spent}); {which}: `{again}` with a larger --max-minutes or "
                                    "--max-epochs goes on (with --no-budget, to the end)")

    def stop_executor(self) -> None:
        """After a Ctrl-C, SIGTERM or error: let the running tasks end their epoch (saved as it
        ends), saying so when that takes a while; a second Ctrl-C or SIGTERM meanwhile ends the
        workers at once, where the executor can (a hung trainer would keep the study waiting
        for ever, at exit too)."""
        terminate = getattr(self.executor, "terminate_workers", None)  # not every executor owns its workers
        try:
            if wait(self.in_flight, timeout=QUIET_STOP_SECONDS).not_done:
                again = "stops their workers now" if terminate is not None else "stops waiting for them"
                self.study.tell(f"waiting for the running trials to end their epoch; Ctrl-C again {again} (those "
                                "epochs are lost, the finished ones kept)")
            self.executor.shutdown(wait=True, cancel_futures=True)
        except BaseException:
            if terminate is not None:
                terminate()
            raise

    def keep_what_ended(self) -> None:
        """After the stop's wait: the tasks that ended meanwhile keep their epochs and states, as a
        budget's pause keeps them (the epochs they were let finish were thrown away)."""
        if self.channel is not None:
            self.channel.poll()
        for future, (trial, _) in list(self.in_flight.items()):
            if (not future.done() or future.cancelled() or future.exception() is not None or trial.number in self.ended
                    or trial.number in self.unrecorded):
                # never ran, still out (an executor that does not wait), lost with its worker, or sent on before
                # its last result failed to be recorded (its epochs after a gap): trained again on resume
                continue
            result = future.result()
            if result.status in ("running", "stopped"):
                self.pause(trial, result)
            else:
                self.record_result(trial, result)

    def stop_all(self) -> None:
        """Ask every whole-trial task in flight to stop; a channel already broken is let be."""
        for _, task in self.in_flight.values():
            try:
                self.channel.stop(task.number)
            except Exception:  # the study is stopping anyway: what broke is reported by the caller
                return

    def on_message(self, message: Message) -> None:
        """What a whole-trial task streamed: an epoch is committed and judged at once (a pruned
        trial's task is asked to stop); a state becomes the trial's checkpoint."""
        kind, number, epoch, payload = message
        trial = self.trials.get(number)
        if trial is None or number in self.ended:
            return
        if kind == "state":
            self.latest[number] = payload
            self.study.save_checkpoint(number, payload)
            return
        if kind == "best":
            metrics, state = payload
            self.study.offer_best(number, [(epoch, metrics)], (epoch, state))
            return
        fresh = self.commit(trial, [(epoch, payload)])
        self.spent()
        length = self.epochs_of(trial)
        if fresh and length is not None and epoch < length:
            reason = self.prune_reason(trial, fresh)
            if reason is not None:
                self.channel.stop(number)
                self.ended.add(number)
                self.end(trial, "pruned", reason)
                self.trials[number] = self.store.trial(self.record, number)

    def handle(self, future: Future) -> bool | None:
        """Record a finished task and send the trial on; False when the executor broke."""
        trial, _ = self.in_flight[future]
        try:
            result = future.result()
        except BrokenExecutor:  # a process pool's worker died, or a Dask scheduler was lost
            return False
        except Exception as err:  # the task could not run at all: fail just this trial
            result = TaskResult(trial.number, [], "failed", error=failure_text(err, tracebacks_wanted()))
        del self.in_flight[future]
        if self.channel is not None:
            if trial.number in self.ended:  # pruned while it ran: what it did after is not wanted
                self.ended.discard(trial.number)
                self.study.keep_config(trial, result.config)
                return None
            self.latest.pop(trial.number, None)
        if result.status == "stopped" or (result.status == "running" and self.spent(len(result.epochs))):
            self.pause(trial, result)
            return None
        if result.status == "running" and self.pruner is None:
            # Send the trial on first, so its worker trains while this process writes.
            self.submit(trial, self.task(trial, result.checkpoint, result.token))
            self.record_result(trial, result)
            return None
        fresh = self.record_result(trial, result)
        if result.status == "running":
            reason = self.prune_reason(trial, fresh)
            if reason is None:
                self.submit(trial, self.task(trial, result.checkpoint, result.token))
                return None
            self.end(trial, "pruned", reason)
        self.trials[trial.number] = self.store.trial(self.record, trial.number)
        return None

    def recover(self, broken: list[tuple[TrialRecord, Task]]) -> None:
        """The executor broke (a worker died): start a new one and resend every task that
        was in flight, from the checkpoints they carry."""
        lost = broken + self.unsent + list(self.in_flight.values())
        self.in_flight.clear()
        self.unsent.clear()
        self.executor.shutdown(wait=False, cancel_futures=True)
        try:
            self.executor = self.study.make_executor()
        except ResearchError as err:  # no new one (a Dask scheduler gone for good): the study stops here
            again = resume_command(self.study.name, self.store.path, self.study.executor_name,
                                   self.study.executor_options)
            raise type(err)(f"{err}; the study keeps what it trained: `{again}` continues it") from err
        if self.channel is not None:  # the new executor's workers talk through its own channel
            self.channel.close()
            self.channel = self.new_channel()
            self.channel.listen(self.on_message)
        for trial, task in lost:
            if trial.number in self.ended:
                self.ended.discard(trial.number)
                continue
            if self.channel is not None:  # a whole-trial task goes on from its last streamed state
                task = replace(task, checkpoint=self.latest.get(trial.number, task.checkpoint), parent=None,
                               channel=self.channel)
            self.failures[trial.number] = self.failures.get(trial.number, 0) + 1
            if self.failures[trial.number] > self.options.retries:
                self.end(trial, "failed", f"its worker died {self.failures[trial.number]} times")
                self.trials[trial.number] = self.store.trial(self.record, trial.number)
            else:
                self.study.reporter.note(f"trial {trial.number}: its work was lost with a worker or the "
                                         "scheduler, retrying from its last checkpoint")
                self.submit(trial, task)

    def prune_reason(self, trial: TrialRecord, epochs: list[int]) -> str | None:
        """Judge the epochs just committed. An epoch trained again after a resume (from a
        checkpoint older than the store) was judged when it was first committed, against the
        curves of that moment: judging it again now would see later trials and decide otherwise."""
        length = self.epochs_of(trial)
        if self.pruner is None or length is None:
            return None
        for epoch in epochs:
            reason = self.pruner.prune(trial.number, epoch, self.curves, length)
            if reason is not None:
                return reason
        return None

    def epochs_of(self, trial: TrialRecord) -> int | None:
        """The epochs ``trial`` trains, the pruner's ``max_epochs`` for it: the study's, or its own
        draw where the space searches epochs (the pruner never ran on such a study)."""
        drawn = trial.config.get("epochs")
        return int(drawn) if isinstance(drawn, int) and not isinstance(drawn, bool) else self.base_epochs

    def scores(self, curve: list[dict[str, float | None]]) -> list[float | None]:
        """A stored curve as the pruner sees it: the score of each epoch."""
        return [self.objective.key(row.get(self.objective.metric)) for row in curve]

    def missed_prune_reason(self, trial: TrialRecord) -> str | None:
        """Judge a resumed trial's committed epochs again, each against the curves as they
        stood when it was committed (the order of the rows): a kill between committing an
        epoch and judging it (or reconciled epochs) must not let a losing trial train on.
        Decisions already made come out the same, so a trial that went on goes on."""
        length = self.epochs_of(trial)
        if self.pruner is None or length is None:
            return None
        committed = self.store.curves(self.record, in_commit_order=True)
        confirmations = self.store.confirmations(self.record)
        rows = sorted((row["commit"], number, row) for number, curve in committed.items() for row in curve
                      if number not in confirmations)
        curves: dict[int, list[float | None]] = {}
        for _, number, row in rows:
            epoch = row["epoch"]
            curves.setdefault(number, []).append(self.objective.key(row.get(self.objective.metric)))
            if number == trial.number:
                reason = self.pruner.prune(number, epoch, curves, length)
                if reason is not None:
                    return reason
        return None

    def record_result(self, trial: TrialRecord, result: TaskResult) -> list[int]:
        """Commit the epochs, writing the trial's checkpoint first when the last one is
        ``checkpoint_seconds`` old. Every epoch is committed as it comes; a resume continues
        from the last checkpoint and trains the epochs after it again, to the same values."""
        try:
            self.study.offer_best(trial.number, result.epochs, result.best)
            self.study.keep_config(trial, result.config)
            now = time.monotonic()
            due = now - self.saved_at.get(trial.number, -math.inf) >= self.options.checkpoint_seconds
            if result.checkpoint is not None and result.status == "running" and due:
                self.study.save_checkpoint(trial.number, result.checkpoint)
                self.saved_at[trial.number] = now
            fresh = self.commit(trial, result.epochs)
        except BaseException:  # its epochs not all committed: a later result of it is not kept (keep_what_ended)
            self.unrecorded.add(trial.number)
            raise
        if result.status != "running":
            self.end(trial, result.status, result.error)
        return fresh

    def commit(self, trial: TrialRecord, epochs: list[tuple[int, dict[str, float]]]) -> list[int]:
        """Commit epochs this run has not committed yet (a whole-trial task's epochs come
        streamed, then again with its result), and show them. Returns the epochs new to the
        pruner's view (an epoch trained again after a resume is there already)."""
        fresh = []
        for epoch, metrics in epochs:
            if epoch <= self.committed.get(trial.number, 0):
                continue
            self.committed[trial.number] = epoch
            self.store.add_epoch(trial, epoch, metrics)
            if self.pruner is not None:
                curve = self.curves.setdefault(trial.number, [])
                if epoch == len(curve) + 1:
                    curve.append(self.objective.key(metrics.get(self.objective.metric)))
                    fresh.append(epoch)
            self.study.reporter.epoch_done(trial.number, epoch, metrics)
        return fresh

    def end(self, trial: TrialRecord, status: str, error: str | None) -> None:
        """The trial is done; a failed one keeps its checkpoint, for `research resume
        --retry-failed` to continue it once the cause is fixed (a plugin, a machine)."""
        self.store.set_status(trial, status, error)
        if status == "failed":
            self.study.best.flush(trial.number)
        else:
            self.study.drop_checkpoint(trial.number)
        self.study.reporter.trial_ended(trial.number, status, error)


@hookimpl
def register_strategies(register: Any) -> None:
    register("caviar", Caviar)

"""One babysitting run: the trainer, its boundary checkpoints on disk, its events in the
store, and the decisions at each boundary (remote commands, the user, the policy)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from research_plugins.babysit import events
from research_plugins.babysit.actions import ACTIONS_HELP, Action, parse_action
from research_plugins.babysit.commands import values_ahead
from research_plugins.babysit.display import sparkline

from research.cli.console import stop_word
from research.contracts import RunResult, TrialInfo
from research.errors import PluginFailure, ResearchError
from research.interrupts import interrupts_allowed, interrupts_deferred
from research.nn import checkpoint
from research.study.objective import Objective
from research.study.trainer import make_trainer
from research.words import study_command

if TYPE_CHECKING:
    from research_plugins.babysit.strategy import Babysit

    from research.study.study import Study


def _rollbacks_first(actions: list[Action]) -> list[Action]:
    """Remote actions in the order they are carried out: each rollback before the sets sent
    just before it. "set lr=0.02" then "rollback" means: go back, then try 0.02 there (in the
    order sent, the rollback undid the set, which trained no epoch)."""
    ordered: list[Action] = []
    for action in actions:
        at = len(ordered)
        while action.kind == "rollback" and at > 0 and ordered[at - 1].kind == "set":
            at -= 1
        ordered.insert(at, action)
    return ordered


def _remote_action(command: Mapping[str, Any]) -> Action:
    """The action a command event (``research set/rollback/stop``) asks for."""
    data = command["data"]
    if data.get("action") == "set":
        return Action("set", "remote", data.get("name"), data.get("value"), "remote", command["id"])
    return Action(str(data.get("action")), "remote", reason="remote", command=command["id"])


def _taken(recorded: list[dict[str, Any]], commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Of ``commands``, those the boundary after the last segment takes: the ones queued before
    that segment's event (one sent later waits for the next boundary). The store holds this
    bound, so a resumed run takes the same ones; bound by when the boundary read them, one sent
    just after the read waited, yet a run killed after the boundary's first result took it there."""
    ended = max((e["id"] for e in recorded if e["kind"] == events.SEGMENT), default=None)
    return [c for c in commands if ended is None or c["id"] < ended]


def _since_segment(recorded: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events after the last segment's: what its boundary decided (so far, in a killed run)."""
    last = max((i for i, e in enumerate(recorded) if e["kind"] == events.SEGMENT), default=None)
    return [] if last is None else recorded[last + 1:]


def _carried_out(here: list[dict[str, Any]]) -> dict[int, str]:
    """The result of each remote command a boundary carried out (its events ``here`` name it),
    by the command's event id."""
    return {e["data"]["command"]: "refused" if e["kind"] == events.REFUSED else "changed"
            for e in here if "command" in e["data"]}


def _policy_undid(here: list[dict[str, Any]]) -> str | None:
    """Why the policy undid its tried change at a boundary (``judge_pending``'s rollback among
    its events ``here``), if it did."""
    undid = {_undid(e["data"]["name"]) for e in here if e["kind"] == events.OUTCOME and not e["data"]["kept"]}
    return next((e["data"]["reason"] for e in here if e["kind"] == events.ROLLBACK and e["data"]["reason"] in undid),
                None)


def _by_user(decision: Mapping[str, Any]) -> bool:
    """Whether a recorded decision answered the prompt (a rollback says so by its reason)."""
    data = decision["data"]
    return data.get("source") == "user" or (decision["kind"] == events.ROLLBACK and data.get("reason") == "user")


def _goes_on_after(decision: Mapping[str, Any], undone: str | None) -> bool:
    """Whether a boundary has more to decide after one of its recorded decisions: after the
    policy's undo of its tried change (``undone``: its reason), the commands, the user or the
    policy decide there; after a remote command's result (but a stop's), the next command;
    after the user's refused answer or rollback, the user, asked again."""
    if "command" in decision["data"]:
        return decision["kind"] != events.STOP
    if _by_user(decision):
        return decision["kind"] in (events.REFUSED, events.ROLLBACK)
    return decision["kind"] == events.ROLLBACK and decision["data"]["reason"] == undone


def _why_cut(cause: BaseException) -> str:
    """What cut a run short, in a few words for its end event."""
    if isinstance(cause, KeyboardInterrupt):
        return stop_word(cause)
    return f"error: {str(cause).splitlines()[0] if str(cause) else type(cause).__name__}"


def _undid(name: str) -> str:
    """Why the policy undid its change of ``name``: the reason of that rollback."""
    return f"policy: the {name} change did not help"


def watched(settings: Any, metrics: Mapping[str, float]) -> Objective:
    """What the policy watches: the study's objective when one was chosen (``--metric``), else
    the validation loss (a smoother signal than the accuracy) when the trainer reports one,
    else the study's objective."""
    if settings.metric is None and "val_loss" in metrics:
        return Objective.make("val_loss", known=None)
    return settings.objective


class Session:
    """One babysitting run: the trainer, its boundaries on disk and its events in the store."""

    def __init__(self, study: Study, options: Babysit):
        self.study, self.o = study, options
        self.store, self.record = study.store, study.record
        self.folder: Path = study.checkpoints
        self.folder.mkdir(parents=True, exist_ok=True)
        self.store.mark_running_interrupted(self.record)
        existing = self.store.trials(self.record)
        self.ended = options.ended(self.store, self.record) is not None
        self.command: int | None = None  # the remote command being carried out, if any
        self.undone_here: str | None = None  # why the policy undid the last segment at this boundary, if it did
        if existing:
            self.trial = existing[0]
        else:
            config = {**study.settings.base, "epochs": options.epochs(), "seed": study.settings.seed}
            self.trial = self.store.add_trial(self.record, 0, config, study.settings.seed)
        self.trainer = make_trainer(self.trial.config, study.plugins)
        if not existing:
            self.store.set_config(self.trial, self.trainer.config)
        latest = self.folder / "latest.npz"
        self.saved = 0  # the epoch latest.npz holds: where a resume goes on from
        if self.ended:
            return
        if latest.exists() or self.boundaries() or self.store.curve(self.trial):  # trained before: its state
            restored = self.restore_latest(latest)
            if not self.finish_cut_rollback():  # else its epochs past the boundary are rolled back, not missed
                self.study.reconcile(self.trial, restored.arrays)
            self.saved = self.trainer.epoch
            self.event(events.RESUME, events.Resume(epoch=self.trainer.epoch))
        else:
            self.save_boundary()
            self.save_latest()
        self.store.set_status(self.trial, "running")

    # checkpoints ---------------------------------------------------------------------------

    def identity(self, kind: str) -> checkpoint.Identity:
        """What this run's files of ``kind`` carry and are checked against (latest, boundary)."""
        return self.study.identity(self.trial.number, kind)

    def restore_latest(self, latest: Path) -> checkpoint.Checkpoint:
        """Continue from ``latest.npz`` when it is proven to be this run's; else from the last
        boundary checkpoint (the changes made at it applied again, its kept best state back),
        with one warning line; else refuse in one line."""
        try:
            return checkpoint.restore(self.trainer, latest, self.identity("latest"))
        except checkpoint.CheckpointProblem as problem:
            unusable = problem
        boundaries = self.boundaries()
        fix = f"`research delete {self.record.name}` and train the study again"
        if not boundaries:
            raise checkpoint.CheckpointError(f"{unusable}, and no boundary checkpoint is left to go back to; {fix}")
        epoch = boundaries[-1]
        try:
            found = checkpoint.restore(self.trainer, self.boundary_path(epoch), self.identity("boundary"), epoch=epoch)
        except checkpoint.CheckpointProblem as problem:
            raise checkpoint.CheckpointError(f"{unusable}, and its last boundary {problem}; {fix}") from None
        for name, value in self.changes_at(epoch):
            self.trainer.set_hyper(name, value)
        self.study.best.restore(0, self.kept_path(epoch))
        self.save_latest()
        self.study.warn(f"warning: {unusable}; the run goes back to its last boundary checkpoint "
                                 f"(epoch {epoch}) and trains again from there")
        return found

    def changes_at(self, epoch: int) -> list[tuple[str, Any]]:
        """The changes made at the boundary ``epoch`` since the trainer last came to it (its
        segment's end, or a rollback to it), which its boundary checkpoint does not hold."""
        recorded = self.store.events(self.record)
        arrivals = [e["id"] for e in recorded
                    if (e["kind"] == events.SEGMENT and e["data"].get("epoch") == epoch)
                    or (e["kind"] == events.ROLLBACK and e["data"].get("to_epoch") == epoch)]
        since = max(arrivals, default=0)
        return [(e["data"]["name"], e["data"]["new"]) for e in recorded
                if e["kind"] == events.CHANGE and e["id"] > since and e["data"].get("epoch") == epoch]

    # bookkeeping ---------------------------------------------------------------------------

    def event(self, kind: str, data: dict[str, Any], rolled_back_after: int | None = None) -> int:
        """Record an event; while a remote command is carried out, its id goes with the event
        (one atomic write marks the command done, so it never applies twice); a rollback's
        marks its undone epochs in the same write."""
        if self.command is not None:
            data = {**data, "command": self.command}
        return self.store.add_event(self.record, kind, data, self.trial, rolled_back_after=rolled_back_after)

    def save_latest(self) -> None:
        """The state to resume from; written before the event describing a change, so a
        crash in between never leaves the store ahead of the checkpoint."""
        checkpoint.save(self.folder / "latest.npz", self.trainer.state(), self.identity("latest"))
        self.saved = self.trainer.epoch

    def events(self, kind: str) -> list[dict[str, Any]]:
        return self.store.events(self.record, kind=kind)

    def boundary_path(self, epoch: int) -> Path:
        return self.folder / f"boundary-{epoch:05d}.npz"

    def boundaries(self) -> list[int]:
        """Epochs of the boundaries that are still on the live line, oldest first."""
        return sorted(int(p.stem.split("-")[1]) for p in self.folder.glob("boundary-*.npz"))

    def save_boundary(self) -> None:
        """The boundary's state, and what the run keeps as its best epoch so far (a rollback
        to this boundary brings both back). Only the newest ``keep_boundaries`` stay on disk:
        a long run's would fill it (a 512-unit model's 2,000 segments took 9 GB)."""
        self.study.best.copy_to(0, self.kept_path(self.trainer.epoch))
        checkpoint.save(self.boundary_path(self.trainer.epoch), self.trainer.state(), self.identity("boundary"))
        for old in self.boundaries()[:-self.o.keep_boundaries]:
            self.boundary_path(old).unlink(missing_ok=True)
            self.kept_path(old).unlink(missing_ok=True)

    def kept_path(self, epoch: int) -> Path:
        return self.folder / f"kept-at-{epoch:05d}.npz"

    def last_metrics(self) -> dict[str, float] | None:
        return self.trainer.history[-1] if self.trainer.history else None

    def undecided_changes(self) -> list[dict[str, Any]]:
        """Change events whose outcome (the metrics after the next segment) is not recorded yet,
        made before the last segment ended: one made at its boundary (by a killed run whose
        boundary is taken on) waits for the segment after it."""
        ended = max((e["id"] for e in self.events(events.SEGMENT)), default=0)
        decided = {e["data"]["change"] for e in self.events(events.OUTCOME)}
        return [e for e in self.events(events.CHANGE) if e["id"] not in decided and e["id"] < ended]

    # the loop ------------------------------------------------------------------------------

    def run(self) -> None:
        reporter = self.study.reporter
        if self.ended:
            reporter.note(f"study '{self.record.name}' has already ended ({self.trial.status}); nothing to do")
            return
        if self.trainer.epoch == 0:
            self.study.plugins.notify("on_trial_start", trial=self.info())
        try:
            self.train_segments()
        except BaseException as cause:  # Ctrl-C, SIGTERM, an error: the log says where the run was cut,
            with suppress(Exception):  # the epoch its resume goes on from; a store that fails must not hide the cause
                self.event(events.END, events.End(status="interrupted", epoch=self.saved, stopped=False,
                                                  reason=_why_cut(cause)))
            raise

    def train_segments(self) -> None:
        """Segments until ``segments`` have ended, the run was stopped, or it diverged; first
        the rest of the decisions of a boundary that a killed run did not finish."""
        stopped: bool | None = False
        if self.unfinished_boundary():
            stopped = self.boundary(len(self.events(events.SEGMENT)), resumed=True)
        else:
            self.finish_cut_policy()
        while stopped is False and len(self.events(events.SEGMENT)) < self.o.segments:
            self.train_segment()
            segment = len(self.events(events.SEGMENT)) + 1
            if not self.trainer.diverged:
                self.save_boundary()
            self.event(events.SEGMENT, events.Segment(segment=segment, epoch=self.trainer.epoch,
                                                      metrics=self.last_metrics(), diverged=self.trainer.diverged,
                                                      hyper=self.trainer.tunable()))
            stopped = self.boundary(segment)
        if stopped is not None:
            self.end("finished", stopped and len(self.events(events.SEGMENT)) < self.o.segments)  # none left: done

    def boundary(self, segment: int, resumed: bool = False) -> bool | None:
        """A boundary's decisions (the last segment's changes judged, then remote commands, the
        user, the policy), the state saved after them: whether the run must stop; None when it
        ended there (it diverged, and nothing saved it). ``resumed``: a killed run's boundary
        that it did not finish (``unfinished_boundary``), taken on from the decisions it recorded.

        A Ctrl-C or SIGTERM meanwhile stops the run once the boundary is decided and saved, not
        half-way (a rollback recorded, the rate cut that goes with it not: the resumed run
        trained the undone segment again at the old rate), except while a prompt waits on the
        user (``ask_user``), where it stops at once, as anywhere else."""
        with interrupts_deferred():
            self.undone_here = None
            if resumed:
                # From the hyperparameters its recorded decisions left: a change checkpointed but not
                # recorded is made again, not twice (the policy halved the rate twice). Nothing has
                # trained since, so setting them back is exact.
                recorded = self.store.events(self.record)
                self.set_back(values_ahead(recorded, rolled_back=False))
                self.undone_here = _policy_undid(_since_segment(recorded))
                cut = self.undone_without_rollback()
                if cut is not None:  # a run killed between recording an undo and going back goes back now
                    self.undone_here = _undid(cut["data"]["name"])
                    self.rollback_to(self.change_epoch(cut["data"]["change"]), self.undone_here)
            self.judge_pending()
            stopped = self.decide(segment)
            self.save_latest()
            if self.trainer.diverged and not stopped:
                self.end("diverged")
                return None
            return stopped

    def set_back(self, hyper: Mapping[str, Any]) -> None:
        """The trainer's hyperparameters set to the recorded ``hyper`` where they differ."""
        current = self.trainer.tunable()
        for name, value in hyper.items():
            if name in current and current[name] != value:
                self.trainer.set_hyper(name, value)

    def unfinished_boundary(self) -> bool:
        """Whether the run resumes at its last boundary before that boundary was decided (killed
        between its segment's event and its last decision, nothing trained since): it goes on
        from the decisions it recorded, as an uninterrupted run goes on (resumed as it was, the
        run trained on, and what was left, the policy's change, the commands or the user's
        answer there, came a boundary late or not at all). Undecided after the policy's undo of
        its tried change, a remote command's result, and the user's refused answer or rollback
        (``_goes_on_after``); decided by any other change, rollback, refusal or stop, or the
        run's end there (finished or diverged; an end that a Ctrl-C or an error cut short
        decides nothing). A ``continue`` answer is not recorded: killed after one (nothing
        decided after it) before the next epoch was committed, the run asks there again."""
        recorded = self.store.events(self.record)
        segments = [e for e in recorded if e["kind"] == events.SEGMENT]
        here = _since_segment(recorded)
        rollbacks = [e["data"]["to_epoch"] for e in here if e["kind"] == events.ROLLBACK]
        if not segments or self.trainer.epoch != (rollbacks[-1] if rollbacks else segments[-1]["data"]["epoch"]):
            return False  # trained on from where its decisions left the model
        undone = _policy_undid(here)
        decisions = (events.CHANGE, events.ROLLBACK, events.REFUSED, events.STOP)
        return all(_goes_on_after(e, undone) for e in here if e["kind"] in decisions or (
            e["kind"] == events.END and e["data"].get("status") != "interrupted"))

    def end(self, status: str, stopped: bool = False) -> None:
        """Record how the run ended and tell the user; a stopped run's trial is interrupted
        (it resumes from its boundary, as a paused caviar trial does), a finished or diverged
        one has ended for the observers too."""
        status = "interrupted" if stopped else status
        self.event(events.END, events.End(status=status, epoch=self.trainer.epoch, stopped=stopped))
        self.store.set_status(self.trial, status)
        self.study.reporter.trial_ended(0, status, None)
        if stopped:  # named: the same command would start another study when the name was made up
            self.study.reporter.note(f"`{study_command('resume', self.record.name, self.store.path)}` resumes it "
                                     "from here")
        else:
            result = RunResult(status, list(self.trainer.history), self.trainer.config)
            self.study.plugins.notify("on_trial_end", trial=self.info(), result=result)
        self.trainer.close()  # a trainer running a program ends it now

    def info(self) -> TrialInfo:
        """The trial as observers see it."""
        return TrialInfo(self.record.name, self.trial.number, self.trainer.config)

    def decide(self, segment: int) -> bool:
        """Carry out this boundary's decisions: remote commands, else the user's answers (asked
        again after a refusal, and after a rollback, at the boundary it went back to), else the
        policy's. Returns True when the run must stop. A set beyond the boundary's one change
        waits, with the commands after it, for the next boundary, but for a stop, carried out
        here all the same (it waited a boundary per queued set). The commands queued after a
        stop stay queued, for the run that resumes it. What a killed run did here (a boundary
        taken on from its recorded decisions) counts: the commands it carried out, the user's
        rollbacks (the policy leaves the boundary to the user after one)."""
        recorded = self.store.events(self.record)
        here = _since_segment(recorded)
        done = _carried_out(here)
        results: list[str] = []
        changed = waiting = False
        for action in _rollbacks_first(self.remote_actions(recorded, done)):
            if (action.kind == "set" and changed) or (waiting and action.kind != "stop"):
                if not waiting:  # one change a boundary: the rest wait, in order, but for a stop
                    self.study.reporter.note(f"remote command: set {action.name}={action.value} waits for the next "
                                             "boundary (one change a boundary)")
                waiting = True
                continue
            if action.command in done:  # carried out before a kill: counted, not carried out again
                results.append(done[action.command])
            else:
                self.study.reporter.note(f"remote command: {action.kind}" + (
                    f" {action.name}={action.value}" if action.kind == "set" else ""))
                results.append(self.apply(action))
            changed = changed or (action.kind == "set" and results[-1] == "changed")
            if results[-1] == "stop":
                break
        again = self.o.interactive and not results
        results += ["changed" for e in here if e["kind"] == events.ROLLBACK and _by_user(e)]
        while again:
            for action in self.ask_user():
                result = self.apply(action)
                again = result == "refused" or (action.kind == "rollback" and result == "changed")
                results += [result] if result != "refused" else []
        # The policy looks ahead, so not after the last segment, unless that segment diverged: its
        # rollback still saves the run (it ends at the boundary before, and a longer run goes on).
        last = segment >= self.o.segments
        if all(r == "continue" for r in results) and self.o.policy == "auto" and (not last or self.trainer.diverged):
            results += [self.apply(action) for action in self.policy_actions(segment)]
        return "stop" in results

    def train_segment(self) -> None:
        """The rest of the segment that began at the last boundary (all ``segment_epochs``
        unless a killed run resumes mid-segment), each epoch committed and checkpointed as it
        ends. Boundaries thus stay where an uninterrupted run puts them."""
        reporter = self.study.reporter
        start = max((b for b in self.boundaries() if b <= self.trainer.epoch), default=0)
        for _ in range(self.o.segment_epochs - (self.trainer.epoch - start)):
            if self.trainer.diverged:
                break
            metrics = self.train_epoch()
            state = self.trainer.state()
            if self.study.best.offer(0, self.trainer.epoch, metrics, state):
                self.study.best.flush(0)  # before the checkpoint: a resume never trains past a lost best
            checkpoint.save(self.folder / "latest.npz", state, self.identity("latest"))
            self.saved = self.trainer.epoch
            self.store.add_epoch(self.trial, self.trainer.epoch, metrics)
            reporter.epoch_done(0, self.trainer.epoch, metrics)
            self.study.plugins.notify("on_epoch_end", trial=self.info(), epoch=self.trainer.epoch, metrics=metrics)

    def train_epoch(self) -> dict[str, float]:
        """One epoch. When the first epoch after changes made at this boundary fails (a program
        that refuses its new value: research cannot check that beforehand), the changes are
        undone by going back to the boundary, and the epoch is trained without them; a resumed
        run that fails there is mended the same way."""
        try:
            return self.trainer.train_epoch()
        except (ResearchError, PluginFailure, MemoryError) as err:
            epoch = self.trainer.epoch
            changed = self.changes_at(epoch) if epoch in self.boundaries() else []
            if not changed:
                raise
            what = ", ".join(f"{name}={value}" for name, value in changed)
            self.rollback_to(epoch, f"undid {what}: the next epoch failed with it: {str(err).splitlines()[0]}")
        return self.trainer.train_epoch()

    # where changes come from ----------------------------------------------------------------

    def remote_actions(self, recorded: list[dict[str, Any]], done: dict[int, str]) -> list[Action]:
        """The commands from ``research set/rollback/stop`` this boundary takes, oldest first:
        those not handled yet that were queued before its segment ended (``_taken``), and those
        it carried out already (``done``, by a killed run)."""
        took = set(done) | {c["id"] for c in _taken(recorded, events.unhandled_commands(recorded))}
        return [_remote_action(c) for c in recorded if c["kind"] == events.COMMAND and c["id"] in took]

    def ask_user(self) -> list[Action]:
        """Prompt until the answer is understood: one action per boundary."""
        summary = self.summary()
        while True:
            with interrupts_allowed():  # the boundary defers them, not a wait on the user
                answer = self.study.reporter.prompt(summary, ACTIONS_HELP)
            try:
                return [parse_action(answer, "user")]
            except ValueError as err:
                summary = str(err)

    def summary(self) -> str:
        """What the prompt shows: the curve so far, the last epoch's metrics, the hyperparameters
        (after a rollback to the start, only those: nothing is trained)."""
        m = self.last_metrics() or {}
        hyper = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                          for k, v in self.trainer.tunable().items())
        if not self.trainer.history:
            return f"epoch 0: nothing trained yet; {hyper}"
        metric = watched(self.study.settings, m).metric
        shown = [n for n in ("val_loss", "val_acc") if n in m] or [metric]
        state = "DIVERGED" if self.trainer.diverged else ", ".join(
            f"{n.replace('_', ' ')} {m.get(n, float('nan')):.4f}" for n in shown)
        curve = "val_acc" if all("val_acc" in h for h in self.trainer.history) else metric
        return f"{curve.replace('_', ' ')} by epoch: {sparkline([h.get(curve) for h in self.trainer.history])}\n" \
               f"epoch {self.trainer.epoch}: {state}; {hyper}"

    def policy_actions(self, segment: int) -> list[Action]:
        """The automatic policy's decision at this boundary (at most one change), on the
        watched metric (see ``watched``)."""
        current = self.last_metrics()
        watch = watched(self.study.settings, current or {})
        metric = watch.metric
        name = metric.replace("_", " ")
        live = [m[metric] for m in self.trainer.history[:-1] if watch.key(m.get(metric)) is not None]
        lr = self.trainer.tunable().get("lr")
        if lr is None:  # a trainer without a learning rate to change: the policy has nothing to do
            return []
        if (self.trainer.diverged or current is None or not math.isfinite(current.get("val_loss", 0.0))
                or watch.key(current.get(metric)) is None):
            return [Action("rollback-cut", "policy", reason=f"policy: the loss diverged at lr {lr:.4g}")]
        if live and self.spiked(watch, current[metric], watch.best(live)):
            return [Action("rollback-cut", "policy", reason=f"policy: the {name} spiked at lr {lr:.4g}")]
        previous = self.previous_boundary_metrics()
        reverted = [e for e in self.events(events.OUTCOME) if not e["data"]["kept"]]
        cooling = reverted and segment - reverted[-1]["data"]["segment"] <= self.o.cooldown
        if previous is not None and not cooling and watch.key(previous.get(metric)) is not None:
            change = (current[metric] - previous[metric]) / max(abs(previous[metric]), 1e-12)
            gain = watch.sign * change + 0.0  # + 0.0: no "-0.00%" when nothing changed
            if gain < self.o.plateau and lr * self.o.cut >= self.lowest_lr():
                moved = f"improved {gain:.2%} < {self.o.plateau:.2%}" if gain >= 0 else \
                    f"worse by {-gain:.2%}, not improved by {self.o.plateau:.2%}"
                return [Action("set", "policy", "lr", lr * self.o.cut, f"policy: plateau ({name} {moved})")]
        return []

    def lowest_lr(self) -> float:
        """The least rate the policy cuts to: ``floor`` times the rate the run started with (the
        first change's old value), so that a long run on a plateau does not halve it to nothing."""
        first = next((e["data"]["old"] for e in self.events(events.CHANGE) if e["data"]["name"] == "lr"), None)
        start = first if isinstance(first, (int, float)) else self.trainer.tunable()["lr"]
        return float(start) * self.o.floor

    def spiked(self, watch: Objective, value: float, best: float) -> bool:
        """Is ``value`` worse than the best so far by the factor ``spike`` (a minimized metric
        above spike x best, a maximized one below best / spike)?"""
        if watch.direction == "minimize":
            return value > self.o.spike * best
        return value < best / self.o.spike

    def previous_boundary_metrics(self) -> dict[str, float] | None:
        """Metrics at the boundary before the current one (the start of the last segment)."""
        boundaries = self.boundaries()
        if len(boundaries) < 2 or boundaries[-2] == 0:
            return None
        return self.trainer.history[boundaries[-2] - 1]

    def judge_pending(self) -> None:
        """Record how each change of the last boundary turned out; a change the policy was only
        trying is kept if the segment after it is better, and undone (rolled back) otherwise."""
        after = self.last_metrics()
        segment = len(self.events(events.SEGMENT))
        for change in self.undecided_changes():
            before, tried = change["data"]["before"], change["data"]["trial"]
            watch = watched(self.study.settings, after or {})
            better = (not self.trainer.diverged and after is not None and before is not None
                      and watch.better(after.get(watch.metric), before.get(watch.metric)))
            kept = better or not tried
            self.event(events.OUTCOME, events.Outcome(change=change["id"], name=change["data"]["name"], kept=kept,
                                                      tried=tried, before=before, after=after, segment=segment))
            if not kept:
                self.undone_here = _undid(change["data"]["name"])
                self.rollback_to(change["data"]["epoch"], self.undone_here)

    def undone_without_rollback(self) -> dict[str, Any] | None:
        """The outcome that undid a change at this boundary (recorded after its last segment)
        when no rollback followed it: the run was cut between the two."""
        recorded = self.store.events(self.record)
        segments = [e["id"] for e in recorded if e["kind"] == events.SEGMENT]
        here = [e for e in recorded if segments and e["id"] > segments[-1]]
        if any(e["kind"] == events.ROLLBACK for e in here):
            return None
        return next((e for e in here if e["kind"] == events.OUTCOME and not e["data"]["kept"]), None)

    def change_epoch(self, change: int) -> int:
        """The boundary epoch the change event ``change`` was made at."""
        return next(e["data"]["epoch"] for e in self.events(events.CHANGE) if e["id"] == change)

    # applying decisions ---------------------------------------------------------------------

    def apply(self, action: Action) -> str:
        """Carry out one action: returns "continue", "stop", "changed" or "refused"."""
        self.command = action.command
        try:
            if action.kind == "continue":
                return "continue"
            if action.kind == "stop":
                self.event(events.STOP, events.Stop(source=action.source, epoch=self.trainer.epoch))
                return "stop"
            if action.kind == "rollback":
                if self.undone_here:  # "undo the last segment": the policy's own undo did it at this boundary
                    raise ValueError(f"the last segment was undone at this boundary already ({self.undone_here}); "
                                     "send rollback again to undo the one before")
                self.rollback_to(self.previous_boundary(), action.reason)
            elif action.kind == "rollback-cut":
                # Undo the bad segment, then cut the learning rate (cut_after_rollback).
                failed = self.trainer.tunable()["lr"]
                self.rollback_to(self.previous_boundary(), action.reason, cut_from=failed)
                self.cut_after_rollback(failed, action.reason)
            elif action.kind == "set":
                self.set(action)
            else:
                raise ValueError(f"unknown action '{action.kind}'; use one of: {ACTIONS_HELP}")
            return "changed"
        except (ValueError, PluginFailure) as err:
            if isinstance(err, PluginFailure):  # the trainer's code broke carrying it out: undone, the run goes on
                checkpoint.restore(self.trainer, self.folder / "latest.npz", self.identity("latest"))
            self.event(events.REFUSED, events.Refused(action=action.kind, name=action.name, value=action.value,
                                                      source=action.source, reason=str(err).splitlines()[0]))
            self.study.reporter.note(f"refused {' '.join(filter(None, (action.kind, action.name)))}: {err}")
            return "refused"
        finally:
            self.command = None

    def previous_boundary(self) -> int:
        """The last boundary before the current epoch (where undoing the last segment goes)."""
        boundaries = self.boundaries()
        earlier = [b for b in boundaries if b < self.trainer.epoch]
        if not earlier:
            dropped = bool(boundaries) and boundaries[0] > 0  # older ones were, for the disk
            raise ValueError("nothing to roll back: no earlier boundary" + (
                f" is kept (the newest {self.o.keep_boundaries} are; --strategy-opt keep_boundaries=N keeps more)"
                if dropped else ""))
        return earlier[-1]

    def set(self, action: Action) -> None:
        tunable = self.trainer.tunable()
        if action.name not in tunable:
            raise ValueError(f"unknown hyperparameter '{action.name}'; changeable: {', '.join(sorted(tunable))}")
        old = tunable[action.name]
        self.trainer.set_hyper(action.name, action.value)
        new = self.trainer.tunable()[action.name]
        if new == old:  # it would spend the boundary, and a segment judged, on nothing
            raise ValueError(f"{action.name} is {old} already; give another value")
        self.save_latest()
        self.event(events.CHANGE, events.Change(
            name=action.name, old=old, new=new, source=action.source, reason=action.reason, epoch=self.trainer.epoch,
            before=self.last_metrics(), trial=action.source == "policy" and action.reason.startswith("policy: plateau")))
        last = len(self.events(events.SEGMENT)) >= self.o.segments  # no segment of this run trains with it
        more = study_command("train --study", self.record.name, self.store.path) + " --segments N"
        later = f"; the last segment has ended: `{more}` (N more than {self.o.segments}) trains with it" if last else ""
        change = f"{old:.4g} -> {new:.4g}" if isinstance(new, float) else f"{old} -> {new}"
        self.study.reporter.note(f"{action.name} {change} ({action.reason}){later}")

    def cut_after_rollback(self, failed: float, reason: str) -> None:
        """The policy's rate cut after undoing a bad segment: the smaller of the rate that failed
        and the one the rollback restored, times ``cut``, never below the floor nor above the
        restored rate (at the floor already: the rollback alone)."""
        restored = self.trainer.tunable()["lr"]
        lr = min(max(min(failed, restored) * self.o.cut, self.lowest_lr()), restored)
        if lr != restored:
            self.set(Action("set", "policy", "lr", lr, reason))

    def rollback_to(self, epoch: int, reason: str, cut_from: float | None = None) -> None:
        """Restore the boundary at ``epoch`` exactly and mark the later epochs rolled back (in
        the write that records the rollback). The rollback is recorded first, then carried out
        (``finish_rollback``), so that a run cut anywhere in it finishes it when it resumes
        (``finish_cut_rollback``). ``cut_from``: the rate a policy's undo cuts next, recorded
        so that a run cut before the cut makes it when it resumes (``finish_cut_policy``)."""
        from_epoch = self.trainer.epoch
        checkpoint.restore(self.trainer, self.boundary_path(epoch), self.identity("boundary"), epoch=epoch)
        undone = sum(row["epoch"] > epoch for row in self.store.curve(self.trial))
        # The boundary's hyperparameters come back too (a change made at it is undone): say so.
        data = events.Rollback(from_epoch=from_epoch, to_epoch=epoch, epochs_undone=undone, reason=reason,
                               hyper=self.trainer.tunable())
        if cut_from is not None:
            data["cut_from"] = cut_from
        self.event(events.ROLLBACK, data, rolled_back_after=epoch)
        self.finish_rollback(epoch)
        self.study.reporter.note(f"rolled back from epoch {from_epoch} to {epoch} ({reason})")

    def finish_rollback(self, epoch: int) -> None:
        """What a recorded rollback to the boundary ``epoch`` (restored in memory) changes: the
        later epochs marked rolled back (its event's write marked them already; a rollback
        recorded by a research from before did not, so a resume finishing it marks them), the
        changes made since marked undone, the kept best state and the boundaries on disk, then
        latest.npz, the state a resume goes on from."""
        self.store.roll_back(self.trial, epoch)
        self.mark_undone(epoch)
        self.study.best.restore(0, self.kept_path(epoch))
        for later in [b for b in self.boundaries() if b > epoch]:
            self.boundary_path(later).unlink()
            self.kept_path(later).unlink(missing_ok=True)
        self.save_latest()

    def last_rollback(self) -> dict[str, Any] | None:
        """The rollback event recorded last when no segment ended and no change was made since
        (what a run cut in a rollback, or between a policy's undo and its rate cut, left)."""
        kinds = (events.ROLLBACK, events.SEGMENT, events.CHANGE)
        last = next((e for e in reversed(self.store.events(self.record)) if e["kind"] in kinds), None)
        return last if last is not None and last["kind"] == events.ROLLBACK else None

    def finish_cut_rollback(self) -> bool:
        """A rollback recorded last (no segment ended, no change made since: each saves
        latest.npz before its event) whose latest.npz still holds the state it went back from
        was cut before it was carried out: carried out now, as it would have been. Whether
        there was one. latest.npz holds that state when it is at the epoch the rollback left
        and either has hyperparameters other than the boundary's (the event records them) or
        no epoch after the boundary is live (the event's write marked them rolled back). The
        segment trained again after a rollback, to that same epoch with the boundary's
        hyperparameters, has committed its first epochs (each after its checkpoint): it is not
        rolled back again; nor would it matter, but for its last epoch not yet committed: the
        same epochs train again to the same values."""
        last = self.last_rollback()
        if last is None or self.trainer.epoch != last["data"]["from_epoch"] \
                or last["data"]["from_epoch"] == last["data"]["to_epoch"]:
            return False
        same = json.loads(json.dumps(self.trainer.tunable())) == last["data"].get("hyper")
        if same and any(row["epoch"] > last["data"]["to_epoch"] for row in self.store.curve(self.trial)):
            return False
        epoch = last["data"]["to_epoch"]
        checkpoint.restore(self.trainer, self.boundary_path(epoch), self.identity("boundary"), epoch=epoch)
        self.finish_rollback(epoch)
        return True

    def finish_cut_policy(self) -> None:
        """A policy's undo of a bad segment recorded and carried out last, without the rate cut
        that follows it (a run killed between the two trained the undone segment again at the
        rate that failed, and lost a segment): the cut made now, from the rates the rollback
        recorded (a cut checkpointed but not recorded is made again from them)."""
        last = self.last_rollback()
        if last is None or "cut_from" not in last["data"] \
                or self.trainer.epoch != last["data"]["to_epoch"]:
            return
        with interrupts_deferred():
            self.set_back(last["data"].get("hyper") or {})
            self.cut_after_rollback(last["data"]["cut_from"], last["data"]["reason"])
            self.save_latest()

    def mark_undone(self, epoch: int) -> None:
        """Changes made at the boundary ``epoch`` or later are undone by going back to it: each
        one not already marked gets an outcome saying so (the log and the picture show it)."""
        last = {e["data"]["change"]: e["data"] for e in self.events(events.OUTCOME)}
        segment = len(self.events(events.SEGMENT))
        for change in self.events(events.CHANGE):
            data = change["data"]
            if data["epoch"] >= epoch and last.get(change["id"], {}).get("kept", True):
                self.event(events.OUTCOME, events.Outcome(
                    change=change["id"], name=data["name"], kept=False, tried=data["trial"], before=data["before"],
                    after=last.get(change["id"], {}).get("after"), segment=segment))

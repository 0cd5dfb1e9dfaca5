"""A study: a named series of trials in the store, with its settings, search space,
sampler and executor. Strategies get a ``Study`` and drive it; the CLI and notebooks
create one with :func:`open_study`.
"""

from __future__ import annotations

import glob
import inspect
import json
import os
import re
import shutil
import sqlite3
import sys
from collections.abc import Mapping
from concurrent.futures import Executor
from contextlib import suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from research.contracts import Reporter
from research.defaults import DEFAULTS, NO_PRUNER
from research.errors import UsageError, tracebacks_wanted
from research.nn import checkpoint
from research.nn.config import UnknownParameterError, check_draws
from research.options import check_required
from research.plugins import OPTION_FLAGS, OPTION_TABLES, PluginError, Plugins
from research.space import Param, Space, parse_space, restrict
from research.study.best import BestStates
from research.study.guarded import Guarded, GuardedPruner, GuardedSampler, draw
from research.study.history import History, TrialSummary
from research.study.objective import DIRECTIONS, Objective
from research.study.provenance import WatchedFiles, anchored, code_changed, data_changed, provenance
from research.study.runner import claim, elapsed, holder, last_run, refuse_if_run_elsewhere
from research.study.spec import check_budget, check_seed, positive_integer, with_study_hint
from research.study.store import CONFIRMATIONS_FROM, DONE_STATUSES, Store, StoreError, TrialRecord
from research.study.store import Study as StudyRecord
from research.study.trainer import PLUMBING as TRAINER_PLUMBING
from research.study.trainer import declared_metrics, options_given, trainer_name, trainer_options
from research.study.worker import Task
from research.words import joined

# Settings that define a study: resuming with different values would mix two experiments.
IDENTITY = ("strategy", "base", "space", "sampler", "sampler_options", "seed", "prune", "prune_options", "metric",
            "direction")


class QuietReporter:
    """A reporter that shows nothing (the Python API's default)."""

    def trial_started(self, number: int, config: dict[str, Any]) -> None:
        pass

    def epoch_done(self, number: int, epoch: int, metrics: dict[str, float]) -> None:
        pass

    def trial_ended(self, number: int, status: str, error: str | None) -> None:
        pass

    def note(self, text: str) -> None:
        pass

    def prompt(self, summary: str, choices: str) -> str:
        raise UsageError("this strategy asks questions and needs a terminal; run it from the command line")


@dataclass
class StudySettings:
    """Everything that defines a study, stored with it so ``--study NAME`` can resume it."""

    strategy: str
    base: dict[str, Any]
    space: dict[str, str]
    sampler: str = DEFAULTS["sampler"]
    sampler_options: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    trials: int = 16
    options: dict[str, Any] = field(default_factory=dict)
    prune: str = NO_PRUNER
    prune_options: dict[str, Any] = field(default_factory=dict)
    metric: str | None = None  # the objective's metric: None is research.study.objective's default
    direction: str | None = None  # maximize | minimize; None: the metric's natural direction
    max_minutes: float | None = None  # the study's budget of minutes over all its runs (None: none)
    max_epochs: int | None = None  # ... and of epochs over all its trials
    from_study: str | None = None  # the study whose best region this one's space was copied from
    # Trials side by side when a run names none (None: one per core). Kept, so a resume runs as
    # many as the study did: a sampler that does not wait sees the trials running beside it.
    workers: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "strategy": self.strategy, "base": self.base, "space": self.space, "sampler": self.sampler,
            "sampler_options": self.sampler_options, "seed": self.seed, "trials": self.trials,
            "options": self.options, "prune": self.prune, "prune_options": self.prune_options,
            "metric": self.metric, "direction": self.direction, "max_minutes": self.max_minutes,
            "max_epochs": self.max_epochs, **({"from_study": self.from_study} if self.from_study else {}),
            **({"workers": self.workers} if self.workers is not None else {}),
        }

    @property
    def objective(self) -> Objective:
        """What the study optimizes (research.study.objective)."""
        return Objective.make(self.metric, self.direction, known=None)


NAME_LIMIT = 100
NAME_BYTES = 200  # as UTF-8: a name is part of file names (STUDY-curves.png, STUDY-trial-N.npz), at most 255 bytes
_NAME = re.compile(r"\w[\w.+@=,-]*(?: [\w.+@=,-]+)*")
NAME_RULES = (f"1 to {NAME_LIMIT} letters, digits and . _ - + @ = , (single spaces between words), "
              f"starting with a letter, digit or _, and at most {NAME_BYTES} bytes as UTF-8")


def check_name(name: Any) -> str:
    """A new study's name, checked: names reach commands, file names and other programs'
    arguments, so a slash, a leading dot or dash, control characters or spaces at the ends
    are refused (``NAME_RULES``). Stored studies keep whatever names they have."""
    if not isinstance(name, str) or len(name) > NAME_LIMIT or not _NAME.fullmatch(name) \
            or len(name.encode("utf-8", "surrogatepass")) > NAME_BYTES:
        shown = repr(name) if not isinstance(name, str) or len(name) <= 40 else repr(name[:40]) + "..."
        raise UsageError(f"study name {shown}{_unseen(name)} is not allowed; a name is {NAME_RULES}")
    return name


def _unseen(name: Any) -> str:
    """The first character of ``name`` no name may hold, named, when it does not show itself: a
    decomposed accent ('café' typed as e + U+0301) looks allowed."""
    import unicodedata

    bad = next((c for c in name if not re.fullmatch(r"[\w.+@=, -]", c)), None) if isinstance(name, str) else None
    if bad is None or unicodedata.category(bad)[0] != "M":  # a mark: it joins the letter before it
        return ""
    return f" (it holds U+{ord(bad):04X} {unicodedata.name(bad, 'a combining mark')})"


def trial_seed(study_seed: int, number: int) -> int:
    """A trial's seed from the study's seed and the trial's number only, so a study gives
    the same trials whatever the number of workers or the order trials finish in."""
    return int(np.random.SeedSequence([study_seed, number]).generate_state(1)[0] % (2**31))


def trial_identity(store: Store, record: StudyRecord, number: int, kind: str = "state") -> checkpoint.Identity:
    """What trial ``number``'s checkpoints carry and are checked against when read: the study
    (id, name, creation time), the trial, a digest of its configuration (the keys the study
    sets: its fixed values, its space, the seed; plugins' defaults, filled in later, are left
    out) and the kind of file."""
    config = store.trial(record, number).config
    keys = sorted(set(record.settings.get("base") or {}) | set(record.settings.get("space") or {}) | {"seed"})
    return checkpoint.Identity(record.id, record.name, record.created, number,
                               checkpoint.config_digest({key: config.get(key) for key in keys}), kind)


class Study:
    """An open study: its store record, settings, plugins and where its checkpoints live."""

    def __init__(self, store: Store, record: StudyRecord, settings: StudySettings, plugins: Plugins,
                 *, executor: str = DEFAULTS["executor"], executor_options: Mapping[str, Any] | None = None,
                 workers: int = 0, reporter: Reporter | None = None, hold_warnings: bool = False):
        self.store = store
        self.record = record
        self.name = record.name
        self.settings = settings
        self.plugins = plugins
        self.space: Space = parse_space(settings.space)
        self.executor_name = executor
        self.executor_options = dict(executor_options or {})
        self.workers = workers or settings.workers or os.cpu_count() or 1  # the run's, the study's, per core
        self.reporter: Reporter = reporter or QuietReporter()
        self.checkpoints = checkpoint_folder(store, record)
        self.digests: dict[int, str] = {}  # each trial's configuration digest, for its checkpoints' identity
        self.searched: dict[int, dict[str, Any]] = {}  # each trial's searched values, for its sampler's history
        self.best = BestStates(self.checkpoints, settings.objective, identity=self.identity, warn=self.warn)
        self.ranked = False  # some epoch has a value of the study's metric (refuse_unranked)
        self.provenance: dict[str, Any] | None = None  # checked by open_study, for the first run to record
        self.files = WatchedFiles({})  # the data files as this run found them (run), checked before each task
        self.created = False  # made by open_study for this run: forgotten if the run fails before storing anything
        self.held: list[str] | None = [] if hold_warnings else None  # warnings kept for the caller (warn)

    def run(self, strategy: Any = None, *, retry_failed: bool = False) -> None:
        """Run ``strategy`` on this study as its only runner (research.study.runner): a live
        runner elsewhere is a StoreError naming it. By default the study's own strategy, built
        with its options (``settings.options``, as stored or changed by this resume). Whatever
        stops the run (Ctrl-C, an error), the trials it left running are marked interrupted,
        ready to resume, and the states of their best epochs are written. ``retry_failed``: the
        failed trials are interrupted first, so the strategy resumes them (from their
        checkpoint, or from the start)."""
        try:
            self._run(strategy, retry_failed)
        except Exception:
            self.forget_if_empty()
            raise

    def _run(self, strategy: Any, retry_failed: bool) -> None:
        if strategy is None:
            strategy = built_strategy(self.plugins, self.settings)
        info, self.provenance = self.provenance, None  # the data files are digested once per run
        if info is None:
            info = refuse_changed_data(self.store, self.record, self.plugins, self.settings.base)
        self.files = WatchedFiles(info.get("files") or {})
        lease = claim(self.store, self.record, info)
        for stale in self.checkpoints.glob("*.tmp"):  # a killed run's half-written file: this run is the only one
            stale.unlink(missing_ok=True)
        try:
            if retry_failed:
                numbers = self.store.retry_failed(self.record)
                self.reporter.note(f"retrying failed {'trial' if len(numbers) == 1 else 'trials'} "
                                   f"{', '.join(map(str, numbers))}" if numbers else "no failed trial to retry")
            strategy.run(self)
            self.warn_if_unranked()
        finally:
            self.store.mark_running_interrupted(self.record)
            self.best.flush()
            lease.release(self.store)

    def forget_if_empty(self) -> None:
        """Delete this study when open_study made it for a run that failed before it stored a
        trial or an event (an executor that returned no executor, a strategy that raised at
        once): it held nothing to lose, and kept, it was clutter that `research studies` listed
        and whose resume failed again. Left as it is when it cannot be deleted (a store locked
        meanwhile): the run's own error is what the user must see."""
        if not self.created:  # a stored study is the user's, empty or not
            return
        with suppress(StoreError, OSError, sqlite3.Error):
            if not self.store.trials(self.record) and not self.store.events(self.record):
                delete_study(self.store, self.name)
                self.created = False

    def warn_if_unranked(self) -> None:
        """Trials that trained without ever reporting the study's metric rank nothing (a program
        or loop that names its metrics otherwise): one line naming the metrics they report."""
        if self.ranked:  # refuse_unranked saw a value already
            return
        metric = self.settings.objective.metric
        epochs = [row for curve in self.store.curves(self.record).values() for row in curve]
        if not epochs or any(row.get(metric) is not None for row in epochs):
            return
        self.warn(f"warning: no epoch of study '{self.name}' has a value of its metric {metric} (its trials report "
                  f"{_reported(epochs)}), so nothing is ranked or pruned; train a new study with --metric NAME")

    def budget_reached(self, pending: int = 0) -> str | None:
        """Why the study must stop now (its minutes or epochs are spent, counting ``pending``
        epochs trained but not committed yet), or None."""
        return budget_reached(self.store, self.record, self.settings.max_minutes, self.settings.max_epochs, pending)

    # trials -------------------------------------------------------------------------------

    def make_sampler(self) -> Any:
        return built_sampler(self.plugins, self.settings)

    def make_pruner(self) -> Any | None:
        """The study's pruner, or None when it prunes nothing; its code's failures name its plugin."""
        return built_pruner(self.plugins, self.settings) if self.settings.prune != NO_PRUNER else None

    def make_executor(self) -> Executor:
        return self.plugins.build("executors", self.executor_name, workers=self.workers, **self.executor_options)

    @property
    def whole_trial(self) -> bool:
        """Whether the study's trainer trains a trial in one task, streaming its epochs
        (``whole_trial`` on the factory, research.study.channel), rather than in segments."""
        return bool(getattr(self.plugins.get("trainers", trainer_name(self.settings.base)), "whole_trial", False))

    def task(self, trial: TrialRecord, epochs: int, state: dict[str, np.ndarray] | None = None,
             parent: str | None = None) -> Task:
        """The unit of work that trains ``trial`` for up to ``epochs`` more epochs from
        ``state`` (None: from the start), with this study's plugins; a UsageError when a data
        file has changed since the run started (its worker would read the new one)."""
        changed = self.files.changed()
        if changed:
            raise UsageError(f"study '{self.name}': {changed}; its later trials would train on other data than "
                             "its earlier ones: restore the file and resume (what was trained is kept), or train "
                             "a new study on it")
        return Task(self.name, trial.number, trial.config, epochs, self.plugins.set, state, parent,
                    objective=self.settings.objective, beat=self.best.rank(trial.number),
                    tracebacks=tracebacks_wanted())

    def config_for(self, sampled: Mapping[str, Any]) -> dict[str, Any]:
        """A trial's full configuration: the study's fixed values plus the sampled ones."""
        return {**self.settings.base, **sampled}

    def history(self, number: int, sampler: Any) -> History:
        """What the sampler may see when asked for trial ``number``.

        A sampler that waits (``needs_finished`` > 0) sees only the trials it waited for, so its
        answer never depends on timing; others see every trial so far, finished or running.
        """
        scores = self.scores()
        waited = sampler.needs_finished(number) if hasattr(sampler, "needs_finished") else 0
        limit = waited or number
        statuses = {n: found for n, found in self.store.statuses(self.record).items() if n < limit}
        unseen = [n for n in statuses if n not in self.searched]
        if unseen:  # a configuration never changes: each is decoded once, not before every trial
            self.searched |= {n: {k: config.get(k) for k in self.space}
                              for n, config in self.store.configs(self.record, unseen).items()}
        summaries = tuple(TrialSummary(n, dict(self.searched[n]), status, scores.get(n), round_)
                          for n, (status, round_) in statuses.items())
        return History(number=number, budget=self.settings.trials, seed=self.settings.seed, trials=summaries)

    def scores(self) -> dict[int, float]:
        """Every trial's score, higher is better: its best value of the objective's metric,
        negated when the metric is minimized (Objective.key)."""
        objective = self.settings.objective
        best = self.store.best_by_trial(self.record, objective.metric, objective.direction == "maximize")
        return {number: key for number, value in best.items() if (key := objective.key(value)) is not None}

    def new_trial(self, number: int, sampler: Any) -> TrialRecord:
        """Ask the sampler for trial ``number`` and record it as running."""
        sampled = draw(self.space, sampler, self.history(number, sampler), self.settings.seed)
        round_ = sampler.round_of(number) if hasattr(sampler, "round_of") else None
        config = self.config_for(sampled)
        config["seed"] = trial_seed(self.settings.seed, number)
        return self.store.add_trial(self.record, number, config, config["seed"], round_)

    # checkpoints ----------------------------------------------------------------------------

    def checkpoint_path(self, number: int) -> Path:
        return self.checkpoints / f"trial-{number:05d}.npz"

    def identity(self, number: int, kind: str = "state") -> checkpoint.Identity:
        """What trial ``number``'s checkpoints carry and are checked against (``trial_identity``)."""
        if number not in self.digests:
            self.digests[number] = trial_identity(self.store, self.record, number).config
        return checkpoint.Identity(self.record.id, self.record.name, self.record.created, number,
                                   self.digests[number], kind)

    def drop_strays(self) -> None:
        """A new study's folder holds no file of it: what is there was another study's of the
        same id (its store deleted or replaced, the folder left), which would be taken for this
        study's checkpoints and refused file by file. Removed, with one warning line."""
        strays = sorted(self.checkpoints.glob("*.npz"))
        for path in strays:
            path.unlink(missing_ok=True)
        if strays:
            self.warn(f"warning: {self.checkpoints} held {len(strays)} checkpoint files of no trial of study "
                      f"'{self.name}' (its store was replaced?); they are removed")

    def warn(self, text: str) -> None:
        """A warning line for the user: kept in ``held`` when the caller holds warnings (the
        command line shows them after its final table, where they are read last and not
        scrolled away or drawn over by the live view), else said at once (``tell``)."""
        if self.held is None:
            self.tell(text)
        else:
            self.held.append(text)

    def tell(self, text: str) -> None:
        """One line for the user on standard error now, whatever the reporter (a reporter's
        note is wrapped to the terminal's width, and the Python API's shows nothing)."""
        print(text, file=sys.stderr, flush=True)

    def save_checkpoint(self, number: int, state: dict[str, np.ndarray]) -> None:
        """Write a trial's checkpoint (a Trainer state) as .npz, atomically, with the trial's
        identity, and the state of its best epoch so far (never older than the checkpoint,
        research.study.best)."""
        self.best.flush(number)
        checkpoint.save(self.checkpoint_path(number), state, self.identity(number))

    def load_checkpoint(self, number: int) -> dict[str, np.ndarray] | None:
        """The state trial ``number`` resumes from: its checkpoint when it is proven to be
        this trial's (research.nn.checkpoint.read_checkpoint), None to train from the start.

        A checkpoint that cannot be used (damaged, another trial's or study's, an earlier
        research's) gives way to the trial's kept best state, an older proven point, or to the
        start; a kept best state that cannot be used is dropped and the trial trains from the
        start, which finds it again. Training is deterministic and committed epochs are never
        rewritten, so the curve comes out the same. Each unusable file is one warning line."""
        path = self.checkpoint_path(number)
        kept = self.best.read(number)  # an unusable file is dropped
        try:
            found = checkpoint.read_checkpoint(path, self.identity(number)) if path.exists() else None
        except checkpoint.CheckpointProblem as problem:
            found, unusable = None, problem
        else:
            unusable = None
        if isinstance(kept, checkpoint.CheckpointProblem):
            if unusable is not None:
                self.warn(f"warning: {unusable}; trial {number} trains again from epoch 0")
            self.warn(f"warning: {kept}; it is dropped and trial {number} trains again from epoch 0 to rebuild it")
            path.unlink(missing_ok=True)  # a later resume must not start past the epochs that rebuild it
            return None
        if unusable is None:
            return found.arrays if found is not None else None
        if kept is not None and checkpoint.state_epoch(kept.state) == kept.epoch:
            self.warn(f"warning: {unusable}; trial {number} trains again from epoch {kept.epoch}, "
                      "where its kept best state is")
            return dict(kept.state)
        self.warn(f"warning: {unusable}; trial {number} trains again from epoch 0")
        return None

    def drop_checkpoint(self, number: int) -> None:
        """The trial ended: its checkpoint goes, the state of its best epoch is written, and a
        study whose first finished trial never reported its metric stops (refuse_unranked)."""
        self.best.flush(number)
        self.checkpoint_path(number).unlink(missing_ok=True)
        self.refuse_unranked(number)

    def refuse_unranked(self, number: int) -> None:
        """Trial ``number`` finished without one value of the study's metric, and no trial
        has one: its trainer names its metrics otherwise, so every trial would train for
        nothing to rank. A UsageError stops the study now (what trained stays stored)."""
        metric = self.settings.objective.metric
        trial = self.store.trial(self.record, number)
        if self.ranked or trial.status != "finished":
            return
        # This trial's curve first: the whole study's is read only when it has no value (once).
        epochs = self.store.curve(trial)
        if not any(row.get(metric) is not None for row in epochs):
            epochs = [row for curve in self.store.curves(self.record).values() for row in curve]
        self.ranked = any(row.get(metric) is not None for row in epochs)
        if self.ranked:
            return
        # The store keeps a NaN or infinite value as none, so "not reported" and "never finite" read alike.
        raise UsageError(f"trial {number} of study '{self.name}' finished without a finite value of the study's "
                         f"metric {metric} (it reports {_reported(epochs)}), so no trial could be ranked; train a new "
                         f"study with --metric NAME, or make its trainer report {metric} as a finite number")

    def keep_config(self, trial: TrialRecord, config: dict[str, Any] | None) -> None:
        """Record a trial's effective configuration (TaskResult.config), so reports show the
        defaults its plugins filled in; but not for a searched parameter inactive in it (its
        condition fails): a plugin's default there would pass for a drawn value."""
        if config is not None:
            config = restrict(self.space, config)
            if config != trial.config:
                self.store.set_config(trial, config)

    def offer_best(self, number: int, epochs: list[tuple[int, dict[str, float]]],
                   best: tuple[int, dict[str, np.ndarray]] | None) -> None:
        """Keep the state a task captured at its best epoch (TaskResult.best), if it ranks
        above the trial's kept one; written with the next checkpoint or at the trial's end."""
        if best is not None:
            metrics = dict(epochs).get(best[0])
            if metrics is not None:
                self.best.offer(number, best[0], metrics, best[1])

    def reconcile(self, trial: TrialRecord, state: dict[str, np.ndarray]) -> int:
        """Commit epochs a checkpoint holds that the store missed (the process died between
        writing the checkpoint and committing); returns the checkpoint's epoch."""
        meta = checkpoint.unpack_json(state["meta"])
        stored = {row["epoch"] for row in self.store.curve(trial)}
        for epoch, metrics in enumerate(meta["history"], start=1):
            if epoch not in stored:
                self.store.add_epoch(trial, epoch, metrics)
        return int(meta["epoch"])


CLAIM = "store.txt"  # in a checkpoints folder: the store file it belongs to, and that store's id


def budget_reached(store: Store, record: StudyRecord, max_minutes: float | None, max_epochs: int | None,
                   pending: int = 0) -> str | None:
    """Why study ``record`` has spent its budget of ``max_minutes`` or ``max_epochs`` (counting
    ``pending`` epochs trained but not committed yet), or None."""
    if max_epochs is not None:
        trained = pending + store.db.execute(
            "SELECT COUNT(*) FROM metrics m JOIN trials t ON t.id = m.trial_id "
            "WHERE t.study_id = ? AND m.rolled_back = 0", (record.id,)).fetchone()[0]
        if trained >= max_epochs:
            return f"{trained} epochs trained, of --max-epochs {max_epochs}"
    if max_minutes is not None:
        minutes = elapsed(store, record) / 60
        if minutes >= max_minutes:
            return f"{minutes:.2f} minutes run, of --max-minutes {max_minutes:g}"
    return None


def checkpoints_base(path: Path, identity: str | None) -> Path:
    """The folder beside the store file ``path`` (of id ``identity``, Store.identity) that holds
    its studies' checkpoints: ``<stem>-checkpoints``; ``<file name>-checkpoints`` when another
    store of the same stem (a.db beside a.sqlite) claimed that one first; ``<file
    name>-checkpoints-2`` (3, ...) when both are another's (``lab`` beside ``lab.db``). Their
    studies share ids, so sharing a folder would let one store's runs overwrite, and its
    deletes remove, the other's checkpoints. The first store to use a folder claims it
    (``store.txt``: its file name and id); a folder from before claims was its. The folder this
    store claimed is its own for good, whatever comes or goes beside it; else the first that
    is no other store's: unclaimed, or claimed by a store of the same id under another name
    that cannot be using it (a store moved, or copied, with its folder renamed to match), and
    the claim then takes this name."""
    base, claim = _chosen_base(path, identity)
    if claim != (path.name, identity or claim[1]):
        try:
            base.mkdir(parents=True, exist_ok=True)
            part = base / f".{CLAIM}.{os.getpid()}"  # whole or not at all: a reader never sees half a claim
            try:
                part.write_text(f"{path.name}\n{identity or ''}".strip() + "\n", encoding="utf-8")
                os.replace(part, base / CLAIM)
            finally:
                part.unlink(missing_ok=True)
        except OSError:  # a read-only place: nothing will be written there either
            pass
    return base


def _chosen_base(path: Path, identity: str | None) -> tuple[Path, tuple[str | None, str]]:
    """checkpoints_base's choice, without claiming it: the folder and its claim (owner, id);
    refused in one line where none can be this store's."""
    bases = _bases(path)
    claims = {base: _claim(base) for base in bases}

    def free(base: Path) -> bool:
        if base.exists() and not base.is_dir():
            raise UsageError(f"{base} is a file, where the checkpoints folder of {path.name} goes; move it away, or "
                             "use another --store")
        owner, owner_id = claims[base]
        if owner is not None and not _valid_claim(owner, owner_id):
            raise UsageError(f"the checkpoints folder {base} has a damaged claim {base / CLAIM} (it names the store "
                             "file the folder belongs to, and its id); delete that file if the folder is "
                             f"{path.name}'s, or move the folder away if it is not, and run again")
        if owner and not owner_id and owner != path.name and not path.with_name(owner).exists():
            # No id and no such store beside it: nothing tells whose the folder is (text that is no
            # claim reads as one), and passing it over would leave its checkpoints behind.
            raise UsageError(f"the checkpoints folder {base} is claimed by a store '{owner}' ({base / CLAIM}) that is "
                             f"not beside it; delete that file if the folder is {path.name}'s, or move the folder "
                             "away if it is not, and run again")
        moved = owner and identity and owner_id == identity and not _uses(path.with_name(owner), base)
        return owner is None or bool(moved)

    base = next((b for b in bases if claims[b][0] == path.name), None) or next(b for b in bases if free(b))
    return base, claims[base]


def check_checkpoints_place(path: Path) -> None:
    """Refuse, before the store file ``path`` is made, a place where its checkpoints folder
    cannot go (a file of that name, a claim that cannot be read), as checkpoints_base would once
    the store exists: a refused run leaves no empty store behind."""
    if not path.exists():
        _chosen_base(path, None)


def _claim(base: Path) -> tuple[str | None, str]:
    """Who claimed the checkpoints folder ``base``: the store's file name and id; (None, "")
    when no store did; ("", "") when its claim cannot be read."""
    try:
        owner, _, owner_id = (base / CLAIM).read_text(encoding="utf-8").strip().partition("\n")
    except (FileNotFoundError, NotADirectoryError):  # no claim, or no folder to hold one
        return None, ""
    except (OSError, UnicodeDecodeError):
        return "", ""
    return owner, owner_id


def _valid_claim(owner: str, owner_id: str) -> bool:
    """Whether a claim can be a store's: a file name (of any folder's store: the folder may
    have been renamed with a moved store) and a store's id (or none, from a store before ids)."""
    return bool(owner) and Path(owner).name == owner and re.fullmatch(r"[0-9a-f]{32}|", owner_id) is not None


def _bases(path: Path) -> list[Path]:
    """The folders that may hold the checkpoints of the store file ``path``, preferred first:
    ``<stem>-checkpoints``, ``<file name>-checkpoints``, the numbered ones beside them that
    exist, and the next number."""
    named = dict.fromkeys([path.with_name(path.stem + "-checkpoints"), path.with_name(path.name + "-checkpoints")])
    prefix = path.name + "-checkpoints-"
    try:
        numbers = sorted(int(p.name[len(prefix):]) for p in path.parent.glob(glob.escape(prefix) + "*")
                         if p.name[len(prefix):].isdigit())
    except OSError:  # a folder that cannot be listed: the named ones only, and the first number
        numbers = []
    return [*named, *(path.with_name(f"{prefix}{k}") for k in [*numbers, max(numbers, default=1) + 1])]


def _study_folder(base: Path, record: StudyRecord) -> Path:
    """A study's folder in the checkpoints folder ``base``: by its id, so a rename keeps it."""
    return base / f"study-{record.id}"


def _uses(store: Path, base: Path) -> bool:
    """Whether the store file ``store`` exists and may keep its checkpoints in ``base``."""
    numbered = base.name.startswith(store.name + "-checkpoints-")
    return store.is_file() and (numbered or base.name in (store.stem + "-checkpoints", store.name + "-checkpoints"))


def refuse_unwritable(folder: Path) -> None:
    """A study's checkpoints folder (or the store's, for a new study) must take files: its
    trials' checkpoints and best states. Made if missing; else one line with the fix, before
    anything trains or is stored (a read-only copy of a store and its folder, a folder another
    user made). Without it, a trial trained its first task, then failed on its checkpoint."""
    probe = folder / f".write-test.{os.getpid()}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe.touch()
        probe.unlink()
    except OSError as err:
        where = folder if folder.is_dir() else folder.parent
        raise StoreError(f"cannot write checkpoints into {folder} ({err.strerror or err}); make that folder writable "
                         f"(chmod -R u+w {where}) and run again: what is stored is kept") from None


def checkpoint_folder(store: Store, record: StudyRecord) -> Path:
    """Where a study's checkpoints live: beside the store (``checkpoints_base``), in a folder
    named by the study's id (a rename keeps it, any name is safe). A folder by the study's
    name, from before, is moved there."""
    base = checkpoints_base(store.path, store.identity())
    folder = _study_folder(base, record)
    legacy = base / record.name
    by_id = re.fullmatch(r"study-\d+", record.name)  # such a name may be another study's folder
    if not folder.exists() and not by_id and _is_folder(legacy) and legacy.resolve().parent == base.resolve():
        legacy.rename(folder)
    return folder


def _is_folder(path: Path) -> bool:
    """Whether ``path`` is a folder; False for a name the file system refuses (a stored study's
    name longer than a file name may be: it could never have had such a folder)."""
    try:
        return path.is_dir()
    except OSError:
        return False


def _reported(epochs: list[dict[str, Any]]) -> str:
    """The metrics some epoch has a finite value of, for messages."""
    names = sorted({name for row in epochs for name, value in row.items() if value is not None and name != "epoch"})
    return ", ".join(names) or "no number"


def delete_study(store: Store, name: str) -> None:
    """Delete study ``name`` from ``store``, with its checkpoints; one being run is refused, and
    so is one whose checkpoints this user cannot remove (said deleted, they stayed), before
    anything is deleted."""
    record = store.study(name)
    _refuse_a_live_runner(store, record, "delete")
    folder = checkpoint_folder(store, record)
    stuck = [path for path in ([folder, *folder.rglob("*")] if folder.is_dir() else []) if path.is_dir()
             and not os.access(path, os.W_OK | os.X_OK)]
    if folder.is_dir() and not os.access(folder.parent, os.W_OK | os.X_OK):
        stuck.insert(0, folder.parent)
    if stuck:
        raise StoreError(f"cannot delete study '{name}': its checkpoints in {folder} cannot be removed ({stuck[0]} "
                         f"is not writable); make them writable (chmod -R u+w {folder.parent}) and run again: "
                         "nothing was deleted")
    store.delete_study(record)
    shutil.rmtree(folder, ignore_errors=True)


def rename_study(store: Store, old: str, new: str) -> StudyRecord:
    """Rename study ``old`` to ``new`` (its checkpoints stay where they are: by id)."""
    check_name(new)
    record = store.study(old)
    _refuse_a_live_runner(store, record, "rename")
    checkpoint_folder(store, record)  # a folder by the old name moves to the id's first
    return store.rename_study(record, new)


def _refuse_a_live_runner(store: Store, record: StudyRecord, action: str) -> None:
    runner = holder(store, record)
    if runner is not None:
        raise StoreError(f"study '{record.name}' is being run by {runner.describe()}; stop it before you {action} it")


def built_strategy(plugins: Plugins, settings: StudySettings) -> Guarded:
    """The study's strategy, built with its options, whose code's failures name its plugin."""
    strategy = plugins.build("strategies", settings.strategy, **settings.options)
    return Guarded(strategy, f"strategy '{settings.strategy}'", plugins.owner("strategies", settings.strategy))


def built_sampler(plugins: Plugins, settings: StudySettings) -> GuardedSampler:
    """The study's sampler, whose code's failures and answers of the wrong kind name its plugin
    (research.study.guarded)."""
    sampler = plugins.build("samplers", settings.sampler, **settings.sampler_options)
    return GuardedSampler(sampler, f"sampler '{settings.sampler}'", plugins.owner("samplers", settings.sampler))


def built_pruner(plugins: Plugins, settings: StudySettings) -> GuardedPruner:
    """The study's pruner, whose code's failures and answers other than None or a reason name
    its plugin (research.study.guarded), whichever strategy asks it."""
    pruner = plugins.build("pruners", settings.prune, **settings.prune_options)
    return GuardedPruner(pruner, f"pruner '{settings.prune}'", plugins.owner("pruners", settings.prune))


def default_space(plugins: Plugins, base: Mapping[str, Any]) -> dict[str, Param]:
    """What to tune when the user names nothing: the trainer's declared default space (the
    research trainer's is its optimizer's), or nothing."""
    trainer = plugins.get("trainers", trainer_name(base))
    declared = getattr(trainer, "default_space", None)
    return dict(declared(base, plugins)) if declared is not None else {}


def check_settings(settings: StudySettings) -> None:
    """The form of each of ``settings``' fields (a name, a dict, a seed in range...), checked
    before anything reads or stores them: a Python caller's list for a dict or text for a seed
    is one line naming the field and its form, not an error from deep inside a run (the
    command line's flags are checked as they are read, research.study.spec)."""
    for name in ("strategy", "sampler", "prune"):
        value = getattr(settings, name)
        if not isinstance(value, str) or not value:
            raise UsageError(f"{name} must be a plugin's name (a string; `research plugins` lists them), "
                             f"got {value!r}")
    _check_names_to("base", settings.base, "parameter names to fixed values, e.g. base={'epochs': 5}")
    _check_names_to("space", settings.space, "parameter names to definitions, e.g. space={'lr': 'log:1e-3..1'}")
    for name in ("sampler_options", "options", "prune_options"):
        _check_names_to(name, getattr(settings, name), "option names to values")
    check_seed(settings.seed)
    for name, what in (("metric", "a metric's name such as 'val_acc'"), ("from_study", "a study's name")):
        value = getattr(settings, name)
        if value is not None and (not isinstance(value, str) or not value):
            raise UsageError(f"{name} must be {what}, or None, got {value!r}")
    if settings.direction not in (None, *DIRECTIONS):
        raise UsageError(f"direction must be {' or '.join(map(repr, DIRECTIONS))}, or None (the metric's natural "
                         f"direction), got {settings.direction!r}")
    check_budget("max_minutes", settings.max_minutes, float)
    check_budget("max_epochs", settings.max_epochs, int)


def _check_names_to(name: str, value: Any, form: str) -> None:
    """A field that is a dict keyed by names (``form`` says of what); anything else is a UsageError."""
    if not isinstance(value, Mapping):
        raise UsageError(f"{name} must be a dict of {form}; got {type(value).__name__}")
    for key in value:
        if not isinstance(key, str):
            raise UsageError(f"{name} must be a dict of {form}; got the key {key!r}")


def check_study(settings: StudySettings, plugins: Plugins, executor: str = DEFAULTS["executor"],
                executor_options: Mapping[str, Any] | None = None) -> None:
    """Everything about a study that can be checked before it is stored: its space against
    the plugins' declarations, its strategy, trial budget, sampler, pruner and executor with
    their options (the Python API's StudySettings as much as the command line's flags)."""
    plugins.check_options("strategies", settings.strategy, settings.options, complete=True)
    positive_integer("trials", settings.trials, 1)
    space = parse_space(settings.space)
    trainer = plugins.get("trainers", trainer_name(settings.base))
    plugins.check_class("trainers", trainer_name(settings.base))
    _check_trainer_options(settings, space, plugins)
    check = getattr(trainer, "check_space", None)
    if check is not None:  # the trainer knows its configuration (the research trainer does)
        try:
            check(space, settings.base, plugins)
        except UnknownParameterError as err:
            raise with_study_hint(err) from None
    Objective.make(settings.metric, settings.direction, known=declared_metrics(plugins, settings.base))
    sampler = built_sampler(plugins, settings)
    if space:  # its first draw, as the study will ask it (a sampler is stateless given the history)
        draw(space, sampler, History(number=0, budget=settings.trials, seed=settings.seed), settings.seed)
    if settings.prune != NO_PRUNER:
        pruner = built_pruner(plugins, settings)
        epochs = settings.base.get("epochs") if "epochs" not in settings.space else None
        inert = getattr(pruner, "inert", None)  # optional: why it could never stop a trial of these epochs
        reason = inert(epochs) if inert is not None and isinstance(epochs, int) else None
        if reason:
            raise UsageError(f"pruner '{settings.prune}': {reason}")
    _check_executor(plugins, executor, executor_options or {}, settings.workers)


def _refuse_new_design(name: str, settings: StudySettings, stored: Mapping[str, Any], plugins: Plugins) -> None:
    """A new trial budget for a study whose sampler lays its draws over the budget (latin-hypercube,
    a grid of the default size) is refused once a trial is drawn: with 9 trials, a grid drawn for 4
    went on with the 3 x 3 grid's points 4 to 8, trying two points twice and two never."""
    reason = getattr(built_sampler(plugins, settings), "budget_fixed", lambda: None)()
    if reason:
        raise UsageError(f"study '{name}' draws its trials with sampler '{settings.sampler}' as a design over its "
                         f"budget of {stored.get('trials')} trials ({reason}), so that budget cannot change: the "
                         f"trials drawn would not be those of a design over {settings.trials}; run a new study with "
                         f"--trials {settings.trials} (`research resume {name}` finishes this one)")


def _check_trainer_options(settings: StudySettings, space: Space, plugins: Plugins) -> None:
    """The trainer's options, fixed (``trainer_options``, or by name) and searched by name
    (research.study.trainer.options_given), against its declarations; every option without a
    default among them."""
    name = trainer_name(settings.base)
    owner, declared = f"trainer '{name}'", plugins.options_of("trainers", name) or {}
    searched = [key for key in space if key in declared and key not in TRAINER_PLUMBING]
    fixed = trainer_options(settings.base)
    for key in searched:
        if key in fixed:
            raise UsageError(f"{key} is both a trainer option ({key}={fixed[key]!r}) and searched "
                             f"({key}={space[key].describe()}); drop one")
        check_draws(key, space[key], declared[key], owner)
    given = plugins.check_options("trainers", name, options_given(settings.base, plugins))
    check_required(owner, declared, [*given, *searched], OPTION_TABLES["trainers"], OPTION_FLAGS["trainers"])


def refuse_fixed_and_searched(settings: StudySettings, plugins: Plugins, executor: str = DEFAULTS["executor"],
                              executor_options: Mapping[str, Any] | None = None,
                              fix: str = "drop the fixed {name}, or leave {name} out of the space") -> None:
    """A fixed value (``settings.base``) the space also searches would be silently replaced by
    the sampled one: it is checked as any fixed value (a bad one is named as such), then
    refused in one line ending with ``fix`` (``{name}`` filled in)."""
    both = [name for name in settings.space if name in settings.base]
    if not both:
        return
    check_study(replace(settings, space={k: v for k, v in settings.space.items() if k not in both}), plugins,
                executor, executor_options)
    name = both[0]
    raise UsageError(f"{name} is both fixed ({name} = {settings.base[name]!r}) and searched "
                     f"({name}={settings.space[name]}); " + fix.format(name=name))


def open_study(store: Store, name: str | None, settings: StudySettings, plugins: Plugins, *, checked: bool = False,
               stored: bool = False, **options: Any) -> Study:
    """Create the study, or resume it when a study of that name exists with the same settings.

    ``stored``: the settings were read from the stored study, which must still be there (a
    resume racing a rename or delete never makes a new study of that name).
    The trial budget may change on resume; anything else that differs is an error naming it,
    as is a study another process runs (before anything of it is stored anew). The settings are
    checked first (``check_study``) unless the caller did (``checked=True``).
    """
    check_settings(settings)  # before anything reads them
    settings = replace(settings, base=anchored(settings.base, plugins))
    if not checked:
        check_study(settings, plugins, options.get("executor", DEFAULTS["executor"]),
                    options.get("executor_options") or {})
    if "workers" in options:
        positive_integer("workers", options["workers"], 0)
    if settings.workers is not None:
        positive_integer("workers", settings.workers, 1)
    existing = store.find_study(name) if name is not None else None
    if existing is None and stored:  # renamed or deleted since its settings were read: never made anew
        raise StoreError(f"study '{name}' is no longer in {store.path} (renamed or deleted meanwhile); "
                         f"`research studies --store {store.path}` lists the stored ones")
    if existing is None:  # a stored study keeps the settings it was created with
        refuse_fixed_and_searched(settings, plugins, options.get("executor", DEFAULTS["executor"]),
                                  options.get("executor_options") or {})
        # a place that cannot be its checkpoints folder, or takes no file, is said before anything is stored
        refuse_unwritable(checkpoints_base(store.path, store.identity()))
        name = check_name(name) if name is not None else _fresh_name(store, settings.strategy)
        try:
            record = store.create_study(name, settings.strategy, settings.as_dict())
        except StoreError:  # another process made it meanwhile: resumed as a stored study is, or refused
            existing = store.find_study(name)
            if existing is None:
                raise
        else:
            study = Study(store, record, settings, plugins, **options)
            study.created = True
            study.drop_strays()
            # Made now, not at the first checkpoint: a study killed before one (a program's trial
            # copies its folder every few seconds) is not taken for one moved without its folder.
            with suppress(OSError):  # a place that takes no folder takes no checkpoint either: said then
                study.checkpoints.mkdir(parents=True, exist_ok=True)
            return study
    refuse_if_run_elsewhere(store, existing)  # before any of its settings is stored anew
    refuse_lost_checkpoints(store, existing)
    refuse_unwritable(checkpoint_folder(store, existing))  # a trial would train, then wait on its checkpoint
    # a study stored before paths were anchored compares as if it had been
    stored = {**existing.settings, "base": anchored(existing.settings["base"], plugins)}
    if settings.workers is None:  # settings that name no workers keep the study's
        settings = replace(settings, workers=stored.get("workers"))
    for key in IDENTITY:
        if json.loads(json.dumps(getattr(settings, key))) != stored.get(key):
            raise UsageError(
                f"study '{name}' was created with {key} = {json.dumps(stored.get(key))}, not "
                f"{json.dumps(getattr(settings, key))}; resume it with the settings it was created with "
                f"(`research show {name}` shows them, stored_settings() reads them), or choose another study name")
    started = [t.number for t in store.trials(existing) if t.number < CONFIRMATIONS_FROM]
    if started and settings.trials <= max(started):
        raise UsageError(f"study '{name}' has started trials 0 to {max(started)}, so its budget cannot go below "
                         f"{max(started) + 1} trials, asked for {settings.trials}; ask for {max(started) + 1} or more "
                         "(a trial beyond the budget would never be resumed)")
    if started and settings.trials != stored.get("trials"):
        _refuse_new_design(name, settings, stored, plugins)
    if json.loads(json.dumps(settings.options)) != stored.get("options"):
        _check_resumed_options(store, existing, settings, plugins)
    may_change = ("trials", "options", "max_minutes", "max_epochs", "workers")
    info = refuse_changed_data(store, existing, plugins, settings.base)  # before a new budget is stored
    if any(json.loads(json.dumps(getattr(settings, key))) != stored.get(key) for key in may_change):
        store.update_settings(existing, settings.as_dict())
        existing = store.study(name)
    study = Study(store, existing, settings, plugins, **options)
    study.provenance = info
    changed = code_changed(last_run(store, existing), info)
    if changed:
        study.warn(f"warning: {joined(changed)} changed since the study's last run: the epochs it trains from "
                   "here on run the new version")
    return study


def _check_resumed_options(store: Store, record: StudyRecord, settings: StudySettings, plugins: Plugins) -> None:
    """The strategy's word on its options changed on resume (``Strategy.check_resumed``),
    before they are stored: options it cannot go on with are refused, not stored and ignored."""
    check = getattr(built_strategy(plugins, settings), "check_resumed", None)
    if check is not None:
        check(store, record)


def refuse_lost_checkpoints(store: Store, record: StudyRecord) -> None:
    """A UsageError when the study has trials part-way through and no checkpoints folder (a
    store moved or copied without it): they would start again from epoch 0, in silence."""
    bases = _bases(store.path)
    # Neither base: none is claimed (nor made) for a command that may be refused.
    folder = checkpoint_folder(store, record) if any(b.exists() for b in bases) else _study_folder(bases[0], record)
    if folder.exists():
        return
    if any(t.status not in DONE_STATUSES and store.curve(t) for t in store.trials(record)):  # unfinished ones only
        raise UsageError(f"study '{record.name}' keeps its checkpoints in {folder}, which does not exist, as when a "
                         "store is moved or copied without its checkpoints folder; put that folder there, or create "
                         "it empty to go on without it (its unfinished trials then start again from epoch 0)")


def refuse_changed_data(store: Store, record: StudyRecord, plugins: Plugins, base: Mapping[str, Any]
                        ) -> dict[str, Any]:
    """This run's provenance (research.study.provenance), once no file the study's last run read
    has changed since; a UsageError otherwise: its trials would mix two datasets."""
    info = provenance(plugins, base)
    changed = data_changed(last_run(store, record), info)
    if changed:
        raise UsageError(f"study '{record.name}': {changed}; its trials would mix two datasets: restore the file, "
                         "or train a new study on it")
    return info


def _check_executor(plugins: Plugins, name: str, executor_options: Mapping[str, Any], workers: int | None) -> None:
    """An unknown executor or option is an error before the study is created, not after; so
    is a plugin given as an object when the executor's workers are other processes. A check
    that declares a ``workers`` parameter is given the study's (None: one per core)."""
    options = plugins.check_options("executors", name, executor_options)
    available = getattr(plugins.get("executors", name), "check", None)
    if available is not None:  # what it needs is installed, reachable...: before anything is stored
        try:
            if "workers" in inspect.signature(available).parameters:
                options = {**options, "workers": workers or 0}
            available(**options)
        except (ValueError, TypeError) as err:
            raise UsageError(f"executor '{name}': {err}") from None
    unimportable = plugins.set.unimportable()
    if unimportable and not getattr(plugins.get("executors", name), "in_process", False):
        raise PluginError(
            f"the {name} executor trains in other processes, which cannot import {', '.join(unimportable)}: "
            "define the plugin in an importable module, or use an executor that trains in this process "
            "(serial)")


def _fresh_name(store: Store, strategy: str) -> str:
    taken = {s.name for s in store.studies()}
    number = 1
    while f"{strategy}-{number}" in taken:
        number += 1
    return f"{strategy}-{number}"

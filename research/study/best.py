"""The weights each trial is judged by: the trainer's state at its selected epoch.

A trial's score is its best epoch (``Objective.select``), so the model a researcher wants
afterwards is that epoch's, not the last one's. Whoever trains a trial captures the
trainer's state whenever an epoch beats the trial's best so far (``Task.beat``, in
research.study.worker) and hands it here; it is written to ``trial-NNNNN-best.npz`` beside
the trial's checkpoint whenever the checkpoint is, and when the trial ends, so the file is
never older than the checkpoint a resume starts from (epochs after that checkpoint are
trained again, to the same values, and offered again).

The file carries the trial's identity (research.nn.checkpoint); one that cannot be proven
to be the trial's (damaged, another trial's, an earlier research's) is dropped with a
warning, and the study trains the trial again so that its kept epoch is found again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from research.nn import checkpoint
from research.study.objective import Objective

EPOCH_KEY = "best_epoch"
"""The key of the file's JSON record of the epoch: ``{"epoch": e, "metrics": {...}}``."""


@dataclass(frozen=True)
class Kept:
    """A trial's selected epoch: its number, its metrics and the trainer's state after it."""

    epoch: int
    metrics: dict[str, float]
    state: dict[str, np.ndarray]


def best_path(folder: Path, number: int) -> Path:
    return folder / f"trial-{number:05d}-best.npz"


def read_kept(path: Path, expect: checkpoint.Identity | None = None) -> Kept:
    """The kept epoch in ``path``, checked (research.nn.checkpoint.read_checkpoint, against
    ``expect`` when given): a CheckpointProblem naming the file when it cannot be used."""
    arrays = checkpoint.read_checkpoint(path, expect).arrays
    try:
        record = checkpoint.unpack_json(arrays.pop(EPOCH_KEY))
        return Kept(int(record["epoch"]), dict(record["metrics"]), arrays)
    except (KeyError, TypeError, ValueError):
        raise checkpoint.CheckpointProblem(path, "holds no kept epoch (it is not research's)") from None


class BestStates:
    """The best state of each trial of a study: kept in memory as epochs come, written when
    ``flush`` is called (with the trial's checkpoint, at its end)."""

    def __init__(self, folder: Path, objective: Objective,
                 identity: Callable[[int], checkpoint.Identity] | None = None,
                 warn: Callable[[str], None] | None = None):
        """``identity(number)``: what trial ``number``'s file must carry (written with it,
        checked when it is read; None: nothing is); ``warn``: where a dropped file is said."""
        self.folder, self.objective = folder, objective
        self.identity, self.warn = identity, warn
        self.pending: dict[int, Kept] = {}
        self.ranks: dict[int, tuple[float, float] | None] = {}

    def expected(self, number: int) -> checkpoint.Identity | None:
        return self.identity(number).but(kind="best") if self.identity is not None else None

    def rank(self, number: int) -> tuple[float, float] | None:
        """The rank (Objective.rank) of the epoch kept for trial ``number``, None if none is
        (a file that cannot be used is dropped, with a warning)."""
        if number not in self.ranks:
            kept = self.kept(number)
            self.ranks[number] = self.objective.rank(kept.metrics) if kept is not None else None
        return self.ranks[number]

    def kept(self, number: int) -> Kept | None:
        """Trial ``number``'s kept epoch as written, None if there is none; a file that cannot
        be used is dropped, with one warning line, and None is answered."""
        found = self.read(number)
        if isinstance(found, checkpoint.CheckpointProblem):
            if self.warn is not None:
                self.warn(f"warning: {found}; it is dropped and rebuilt as trial {number} trains")
            return None
        return found

    def read(self, number: int) -> Kept | checkpoint.CheckpointProblem | None:
        """Trial ``number``'s written file: its kept epoch, None when there is none, or the
        problem that makes it unusable, after dropping it (the caller says what happens)."""
        path = best_path(self.folder, number)
        if not path.exists():
            return None
        try:
            return read_kept(path, self.expected(number))
        except checkpoint.CheckpointProblem as problem:
            path.unlink(missing_ok=True)
            self.ranks.pop(number, None)
            return problem

    def offer(self, number: int, epoch: int, metrics: dict[str, float], state: dict[str, Any]) -> bool:
        """Keep ``state`` as trial ``number``'s if its epoch ranks above the one kept; says so."""
        rank = self.objective.rank(metrics)
        kept = self.rank(number)
        if rank is None or (kept is not None and rank <= kept):
            return False
        self.pending[number] = Kept(epoch, dict(metrics), state)
        self.ranks[number] = rank
        return True

    def flush(self, number: int | None = None) -> None:
        """Write the pending state of trial ``number`` (every trial's when None)."""
        for n in [number] if number is not None else list(self.pending):
            kept = self.pending.pop(n, None)
            if kept is not None:
                record = checkpoint.pack_json({"epoch": kept.epoch, "metrics": kept.metrics})
                checkpoint.save(best_path(self.folder, n), {**kept.state, EPOCH_KEY: record}, self.expected(n))

    def copy_to(self, number: int, path: Path) -> None:
        """Copy what is kept of trial ``number`` to ``path`` (nothing is written when nothing
        is kept): a strategy that goes back in a trial restores it with ``restore``."""
        self.flush(number)
        kept = best_path(self.folder, number)
        if kept.exists():
            checkpoint.copy(kept, path)

    def restore(self, number: int, path: Path) -> None:
        """Trial ``number`` went back to where ``copy_to`` wrote ``path``: what it kept then
        is kept again (nothing, when ``path`` does not exist), later epochs' states are gone."""
        self.pending.pop(number, None)
        self.ranks.pop(number, None)
        if path.exists():
            checkpoint.copy(path, best_path(self.folder, number))
        else:
            best_path(self.folder, number).unlink(missing_ok=True)

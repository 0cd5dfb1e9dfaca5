"""A trial's model, exported: the kept state of its best epoch (research.study.best) restored
into its trainer, and the trainer's model written as a model file (research.nn.exported)."""

from __future__ import annotations

import numbers
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from research.errors import UsageError
from research.nn.exported import model_arrays, write_model
from research.plugins import Plugins
from research.study.best import best_path, read_kept
from research.study.provenance import data_changed, file_digests
from research.study.runner import last_run
from research.study.store import Store, StoreError
from research.study.store import Study as StudyRecord
from research.study.study import checkpoint_folder, trial_identity
from research.study.trainer import make_trainer, trainer_name

DIVERGED_BY = ("train_loss", "val_loss")
"""The metrics whose value, NaN or inf (None in the store), says an epoch diverged."""


def _finite(value: Any) -> bool:
    """Whether an array of a model's state holds no NaN or inf (True for one of no numbers)."""
    array = np.asarray(value)
    return not np.issubdtype(array.dtype, np.inexact) or bool(np.isfinite(array).all())


@dataclass(frozen=True)
class Exported:
    """What was written: the file, and the trial and epoch its weights come from."""

    path: Path
    trial: int
    epoch: int
    metrics: dict[str, float]


def export_trial(store: Store, record: StudyRecord, number: int, path: str | os.PathLike,
                 plugins: Plugins) -> Exported:
    """Write trial ``number``'s model, as it was after its best epoch, to ``path``."""
    if isinstance(number, bool) or not isinstance(number, numbers.Integral):
        raise UsageError(f"the trial to export is a trial number, an integer, got {number!r}")
    number = int(number)
    trial = store.trial(record, number)
    plugins.require(trial.config, f"trial {number} of study '{record.name}'")
    name = trainer_name(trial.config)
    factory = plugins.get("trainers", name)
    if isinstance(factory, type) and not hasattr(factory, "export"):
        raise UsageError(f"trainer '{name}' cannot export a model (it has no export(); a training loop of your own "
                         "can have one, docs/own-model.md): each trial's best state is kept as the trainer's own "
                         "arrays (a program's: its checkpoint folder, packed) in "
                         f"{checkpoint_folder(store, record)}")
    folder = checkpoint_folder(store, record)
    kept_file = best_path(folder, number)
    if not kept_file.exists() and not folder.exists() and store.curve(trial):
        raise StoreError(f"trial {number} of study '{record.name}' has no kept weights here: {folder} does not exist, "
                         "as when a store is moved or copied without its checkpoints folder; put that folder beside it "
                         f"as {folder.parent.name}")
    if not kept_file.exists():
        raise StoreError(f"trial {number} of study '{record.name}' has no kept weights (no epoch with a score was "
                         "trained, or it was trained before research kept them); pick another with --trial")
    kept = read_kept(kept_file, trial_identity(store, record, number, "best"))
    changed = data_changed(last_run(store, record), {"files": file_digests(trial.config, plugins)})
    if changed:  # the model's class names and input scaling come from the data
        raise UsageError(f"cannot export trial {number} of study '{record.name}': {changed}, and the model's class "
                         "names and input scaling come from it: restore the file the study trained on")
    trainer = make_trainer(trial.config, plugins)
    try:
        trainer.load_state(kept.state)
        model: dict[str, Any] = trainer.export()
    finally:
        trainer.close()
    lost = [f"its {name} is NaN or inf" for name in DIVERGED_BY  # NaN and inf are stored as None
            if name in kept.metrics and (kept.metrics[name] is None or not _finite(kept.metrics[name]))]
    lost += [f"its {name} holds NaN or inf" for name, value in model["state"].items() if not _finite(value)]
    if lost:
        raise UsageError(f"cannot export trial {number} of study '{record.name}': it had diverged by epoch "
                         f"{kept.epoch}, the one kept ({lost[0]}), so its model cannot predict; export a trial that "
                         "did not diverge (--trial N)")
    source = {"study": record.name, "trial": number, "epoch": kept.epoch, "metrics": kept.metrics,
              "config": trial.config}
    written = write_model(path, model_arrays(**model, source=source))
    return Exported(written, number, kept.epoch, kept.metrics)

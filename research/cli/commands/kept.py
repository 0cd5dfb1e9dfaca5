"""`research export-model`: a trial's kept weights (its best epoch's) as a model file."""

from __future__ import annotations

from pathlib import Path

from research.cli.console import Terminal
from research.cli.display import fmt
from research.errors import UsageError
from research.report.files import check_output
from research.report.tables import objective_of, ranked
from research.study.export import export_trial
from research.study.store import Store, StoreError


def export_model_command(term: Terminal, name: str, store_path: Path, trial: int | None, output: Path | None) -> None:
    with Store(store_path, create=False) as store:
        record = store.study(name)
        rows = ranked(store, record)
        if trial is None:
            scored = [row for row in rows if row["best_epoch"] is not None]
            if not scored:
                raise StoreError(f"study '{name}' has no trial with a scored epoch yet; train it first")
            trial = scored[0]["number"]
        elif trial not in {row["number"] for row in rows} and trial not in (replicas := store.confirmations(record)):
            also = f", and the replicates of `research confirm` {min(replicas)}..{max(replicas)}" if replicas else ""
            raise StoreError(f"study '{name}' has no trial {trial}; its trials are 0..{len(rows) - 1}{also}")
        path = Path(output or f"{name}-trial-{trial}.npz")
        if path.is_dir():
            raise UsageError(f"cannot write a model to {path}: it is a folder; name an .npz file in it, e.g. "
                             f"-o {path / 'model.npz'}")
        if path.suffix.lower() != ".npz":
            raise UsageError(f"cannot write a model to {path.name}; name an .npz file, e.g. -o model.npz")
        check_output(path, store_path)
        done = export_trial(store, record, trial, path, term.plugins)
    metric = objective_of(record).metric
    scores = ", ".join(f"{key.replace('_', ' ')} {fmt(done.metrics.get(key))}"
                       for key in (metric, "test_acc") if key in done.metrics)
    term.err.print(f"wrote {done.path}: trial {done.trial} of '{name}' after epoch {done.epoch} ({scores}); "
                   f"research.load_model('{done.path}') restores it", highlight=False, markup=False)

"""`research train --strategy NAME`: run or resume a study, then show what won."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from research.cli import err, fail, out, user_errors
from research.display import LiveTrials, ranked_table
from research.plugins import load_plugins
from research.report import plot_curves, ranked, searched_names
from research.store import Store
from research.study import StudySettings, default_space, open_study
from research.studyspec import StudyOptions

SHOWN = 10


def run_study(options: StudyOptions, *, plot: Path | None, as_json: bool) -> None:
    """Open (or resume) the study, run its strategy with a live table, print the ranking,
    save the curves. Ctrl-C keeps every finished epoch and exits 130."""
    with user_errors():
        plugins = load_plugins()
        strategy = plugins.get("strategies", options.strategy)()
        space = options.space or {n: p.describe() for n, p in default_space(plugins, options.base).items()}
        settings = StudySettings(strategy=options.strategy, base=options.base, space=space,
                                 sampler=options.sampler, sampler_options=options.sampler_options,
                                 seed=options.seed, trials=options.trials)
        store = Store(options.store)
    with store, user_errors():
        study = open_study(store, options.study, settings, plugins, executor=options.executor,
                           executor_options=options.executor_options, workers=options.workers)
        names = list(study.space)
        err.print(f"study '{study.name}' in {options.store}: {options.trials} trials over "
                  f"{', '.join(f'{n}={t}' for n, t in space.items())}", highlight=False)
        display = LiveTrials(err, options.trials, int(options.base.get("epochs", 0)), names)
        study.reporter = display
        try:
            with display:
                strategy.run(study)
        except KeyboardInterrupt:
            err.print(f"interrupted: finished epochs are kept; resume with --study {study.name}", highlight=False)
            raise typer.Exit(130) from None
        rows = ranked(store, study.record)
        picture = plot_curves(store, study.record, plot or Path(f"{study.name}-curves.png"))
    for problem in plugins.problems:
        err.print(f"warning: {problem}", highlight=False, markup=False)
    if as_json:
        typer.echo(json.dumps({"study": study.name, "plot": str(picture), "trials": rows}))
    else:
        out.print(ranked_table(rows, searched_names(study.record), f"study {study.name}: best first", SHOWN))
        out.print(f"learning curves: {picture}", highlight=False)
    if rows and all(r["status"] in ("failed", "diverged") for r in rows):
        raise fail("every trial failed or diverged; see `research show " + study.name + "`", code=1)

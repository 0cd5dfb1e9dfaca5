"""`research train --strategy NAME`: run or resume a study, then show what came out."""

from __future__ import annotations

import json
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import typer

from research.cli.app import err, fail, out, user_errors
from research.cli.display import LiveTrials, SegmentConsole, ranked_table
from research.plugins import load_plugins
from research.report import plot_study, ranked, searched_names
from research.study.store import Store
from research.study.study import Study, StudySettings, default_space, open_study
from research.study.spec import StudyOptions

SHOWN = 10


def ask_stdin(choices: str) -> str:
    """The interactive babysitter's question; end of input means stop."""
    try:
        return typer.prompt(f"[{choices}]", default="continue", show_default=False)
    except typer.Abort:
        return "stop"


def _settings(options: StudyOptions, strategy: Any, plugins: Any) -> StudySettings:
    one_model = getattr(strategy, "view", "trials") == "segments"
    if one_model:
        space: dict[str, str] = {}
    else:
        space = options.space or {n: p.describe() for n, p in default_space(plugins, options.base).items()}
    return StudySettings(strategy=options.strategy, base=options.base, space=space, sampler=options.sampler,
                         sampler_options=options.sampler_options, seed=options.seed,
                         trials=1 if one_model else options.trials, options=options.strategy_options,
                         prune=options.prune, prune_options=options.prune_options)


def _display(study: Study, strategy: Any, options: StudyOptions) -> Any:
    if getattr(strategy, "view", "trials") == "segments":
        return SegmentConsole(err, ask_stdin)
    return LiveTrials(err, study.settings.trials, int(options.base.get("epochs", 0)), list(study.space))


def run_study(options: StudyOptions, *, plot: Path | None, as_json: bool) -> None:
    """Open (or resume) the study, run its strategy with a live view, print the outcome,
    save the curves. Ctrl-C keeps every finished epoch and exits 130."""
    with user_errors():
        plugins = load_plugins()
        strategy = plugins.get("strategies", options.strategy)(**options.strategy_options)
        settings = _settings(options, strategy, plugins)
        store = Store(options.store)
    with store, user_errors():
        study = open_study(store, options.study, settings, plugins, executor=options.executor,
                           executor_options=options.executor_options, workers=options.workers)
        searched = ", ".join(f"{n}={t}" for n, t in settings.space.items())
        err.print(f"study '{study.name}' in {options.store}: "
                  + (f"{settings.trials} trials over {searched}" if searched else f"{options.strategy}"),
                  highlight=False)
        study.reporter = _display(study, strategy, options)
        try:
            try:
                with study.reporter if isinstance(study.reporter, LiveTrials) else nullcontext():
                    strategy.run(study)
            finally:
                if isinstance(study.reporter, LiveTrials) and not err.is_terminal:
                    err.line()  # piped, rich's live table ends mid-line: what follows needs its own
        except KeyboardInterrupt:
            err.print(f"interrupted: finished epochs are kept; resume with --study {study.name}", highlight=False)
            raise typer.Exit(130) from None
        rows = ranked(store, study.record)
        picture = plot_study(store, study.record, plot or Path(f"{study.name}-curves.png"))
    for problem in plugins.problems:
        err.print(f"warning: {problem}", highlight=False, markup=False)
    if as_json:
        typer.echo(json.dumps({"study": study.name, "plot": str(picture), "trials": rows}))
    else:
        out.print(ranked_table(rows, searched_names(study.record), f"study {study.name}: best first", SHOWN))
        out.print(f"learning curves: {picture}", highlight=False)
    if rows and all(r["status"] in ("failed", "diverged") for r in rows):
        raise fail(f"every trial failed or diverged; see `research show {study.name}`", code=1)

"""`research train --strategy NAME`: run or resume a study, then show what came out."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import replace
from pathlib import Path
from typing import Any

import typer

from research.cli.commands.reports import nothing_to_plot
from research.cli.console import INTERRUPTED, TERMINATED, Terminal, Terminated, echo_json, stop_word
from research.cli.display import LiveTrials, confirmation_table, ranked_table, said_once
from research.contracts import Reporter
from research.errors import PluginFailure, UsageError
from research.report import plot_study, ranked, searched_names, status_counts
from research.report.files import check_picture_path
from research.report.owner import mark, own_path, renamed
from research.study.guarded import Guarded, GuardedReporter
from research.study.objective import DEFAULT_METRIC, default_metric
from research.study.spec import StudyOptions
from research.study.store import DONE_STATUSES, Store
from research.study.strategy import accepted
from research.study.study import (
    Study,
    StudySettings,
    check_checkpoints_place,
    check_name,
    check_study,
    default_space,
    open_study,
    refuse_fixed_and_searched,
)
from research.study.trainer import declared_metrics
from research.words import plural, resume_command, study_command

SHOWN = 10


def ask_stdin(choices: str) -> str:
    """A strategy's question to the user at the terminal; an empty answer is "continue", the
    end of input "stop". Ctrl-C and SIGTERM stop the command as anywhere else (click's prompt
    took them for end of input: a stop that exited 0)."""
    try:
        answer = input(f"[{choices}]: ")
    except EOFError:
        return "stop"
    return answer.strip() or "continue"


def _declared_default_metric(plugins: Any, base: dict[str, Any]) -> str | None:
    """The metric a study optimizes when none is named, if not val_acc: the first one its
    trainer declares, when they lack val_acc (stored, so that every part of the study agrees)."""
    chosen = default_metric(declared_metrics(plugins, base))
    return None if chosen == DEFAULT_METRIC else chosen


def _settings(options: StudyOptions, strategy: Any, plugins: Any) -> StudySettings:
    """What defines the study; settings the strategy does not use are left out (a strategy
    without a trial budget trains one model)."""
    accepts = accepted(strategy)
    space: dict[str, str] = {}
    if "space" in accepts:
        space = options.space or {n: p.describe() for n, p in default_space(plugins, options.base).items()}
    settings = StudySettings(strategy=options.strategy, base=options.base, space=space, sampler=options.sampler,
                           sampler_options=options.sampler_options, seed=options.seed,
                           trials=options.trials if "trials" in accepts else 1, options=options.strategy_options,
                           prune=options.prune, prune_options=options.prune_options,
                           metric=options.metric or _declared_default_metric(plugins, options.base),
                           direction=options.direction,
                           max_minutes=options.max_minutes if "budget" in accepts else None,
                           max_epochs=options.max_epochs if "budget" in accepts else None,
                           from_study=options.from_study if "space" in accepts else None,
                           workers=(options.workers or None) if "workers" in accepts else None)
    if not options.space:  # with --space, research.study.spec has refused it already
        refuse_fixed_and_searched(settings, plugins, options.executor, options.executor_options,
                                  fix="drop the fixed {name}, or name what to search with --space (the default space "
                                      "searches {name})")
    return settings


def _own_display(term: Terminal, strategy: Guarded) -> Reporter | None:
    """The strategy's own display, its failures named as its plugin's (research.study.guarded),
    or None; asked before the study is stored, so that its failure stores nothing."""
    own = strategy.reporter(term.err, ask_stdin) if hasattr(strategy, "reporter") else None
    if own is None:
        return None
    if not isinstance(own, Reporter):
        missing = ", ".join(name for name in ("trial_started", "epoch_done", "trial_ended", "note", "prompt")
                            if not callable(getattr(own, name, None)))
        raise PluginFailure(f"{strategy.named}: reporter() returned a {type(own).__name__} without {missing}; "
                            "a strategy's display has what research.contracts.Reporter lists")
    return GuardedReporter(own, f"the display of {strategy.label}", strategy.owner)


def _live_table(term: Terminal, study: Study, options: StudyOptions, retry_failed: bool) -> Reporter:
    """The live table of running trials (the failed ones about to be retried not counted as
    done)."""
    ended = {status: count for status, count in status_counts(study.store, study.record).items()
             if status in DONE_STATUSES and not (retry_failed and status == "failed")}
    return LiveTrials(term.err, study.settings.trials, int(options.base.get("epochs", 0)), list(study.space),
                      study.settings.objective, ended, study_command("show", study.name, options.store))


def run_study(term: Terminal, options: StudyOptions, *, plot: Path | None, as_json: bool,
              retry_failed: bool = False) -> None:
    """Open (or resume) the study, run its strategy with a live view, print the outcome,
    save its picture. Ctrl-C keeps every finished epoch and exits 130."""
    plugins, err = term.plugins, term.err
    if plot is not None:  # a path that cannot be written is refused before the study trains, not after
        check_picture_path(plot, "--plot")
    strategy = plugins.build("strategies", options.strategy, **options.strategy_options)
    named = Guarded(strategy, f"strategy '{options.strategy}'", plugins.owner("strategies", options.strategy))
    settings = _settings(options, strategy, plugins)
    check_study(settings, plugins, options.executor, options.executor_options)  # before a store is made
    check_checkpoints_place(Path(options.store))
    own = _own_display(term, named)
    with Store(options.store) as store:
        twins = [] if options.study else _same_settings(store, settings)
        study = open_study(store, options.study, settings, plugins, checked=True, stored=options.resumes,
                           executor=options.executor, executor_options=options.executor_options,
                           workers=options.workers, hold_warnings=True)
        searched = ", ".join(f"{n}={t}" for n, t in settings.space.items())
        err.print(f"study '{study.name}' in {options.store}: "
                  + (f"{plural(settings.trials, 'trial')} over {searched}" if searched else f"{options.strategy}"),
                  highlight=False)
        if settings.from_study:
            err.print(f"  its space: a box around the best quarter of study '{settings.from_study}''s trials "
                      "(copied: that study may be deleted)", highlight=False)
        for advice in options.advice if settings.space else ():  # said before it trains, when it can be fixed
            err.print(f"  note: {advice}", highlight=False, markup=False, soft_wrap=True)
        if twins:
            again = study_command("resume", twins[-1], options.store)
            err.print(f"  a new study with the settings of '{twins[-1]}'; `{again}` would have continued that one",
                      highlight=False)
        study.reporter = own or _live_table(term, study, options, retry_failed)
        entered = hasattr(study.reporter, "__enter__")
        resume = resume_command(study.name, options.store, options.executor, options.executor_options)
        with _said_if_stopped_or_failed(term, study, f"continue with `{resume}`"):
            try:
                with study.reporter if entered else nullcontext():  # type: ignore[attr-defined]
                    study.run(named, retry_failed=retry_failed)  # a third party's bug names its plugin
            except Exception:  # its display failed to open or close: a study made for this run and left empty goes
                study.forget_if_empty()
                raise
        rows = ranked(store, study.record)
        idle = not rows and not study.budget_reached()  # a strategy that returned at once: nothing to show or plot
        if idle:
            study.warn(f"warning: strategy '{options.strategy}' ended without starting a trial, so nothing was "
                       f"trained (plugin '{plugins.owner('strategies', options.strategy)}')")
        default = Path(f"{study.name}-curves.png")
        picture = plot_study(store, study.record, plot or own_path(default, mark(store, study.record)), None, plugins)
        if picture:
            plotted = f"learning curves: {picture}{renamed(picture, plot or default)}"
        else:
            plotted = "" if idle else nothing_to_plot(store, study.record, None, "train a new study with --metric NAME")
    show = study_command("show", study.name, options.store)
    if as_json:
        echo_json({"study": study.name, "plot": str(picture) if picture else None, "trials": rows})
    else:
        term.out.print(ranked_table(rows, searched_names(study.record), f"study {study.name}: best first",
                                    settings.objective.metric, SHOWN, width=term.out.width))
        if len(rows) > SHOWN:
            term.out.print(f"the best {SHOWN} of {len(rows)} trials; `{show}` lists all", highlight=False)
        if plotted:  # none for an idle strategy: no advice to resume what trains nothing
            term.out.print(plotted, highlight=False)
    failed = [row for row in rows if row["status"] == "failed"]
    every_one = rows and all(r["status"] in ("failed", "diverged") for r in rows)
    if failed and not as_json and not every_one:  # why, as `research show` says it, and what goes on from there
        seen: dict[str, tuple[int, str]] = {}
        for row in failed:
            term.out.print(f"trial {row['number']} failed: {said_once(seen, row['number'], row['error'])}",
                           highlight=False, markup=False)
        term.out.print(f"once the cause is fixed, `{resume} --retry-failed` continues the failed "
                       f"{'trial' if len(failed) == 1 else 'trials'}", highlight=False, markup=False)
    _warn_at_end(term, study)
    if every_one:
        retry = f"; once the cause is fixed, `{resume} --retry-failed` continues the failed ones" if failed else ""
        raise term.fail(f"every trial failed or diverged; see `{show}`{retry}", code=1)


def _say(term: Terminal, lines: list[str] | None) -> None:
    """Each line on standard error as it is (no markup, never wrapped)."""
    for line in lines or []:
        term.err.print(line, highlight=False, markup=False, soft_wrap=True)


def _warn_at_end(term: Terminal, study: Study) -> None:
    """The study's held warnings, then the plugin problems not shown yet: after the command's
    final output (a table on stdout), where a user reading it last sees them."""
    _say(term, study.held)
    term.warn_problems()


@contextmanager
def _said_if_stopped_or_failed(term: Terminal, study: Study, goes_on: str) -> Iterator[None]:
    """What train, resume and confirm say when their run of ``study`` stops or fails, one way for
    all three: a stop (Ctrl-C, SIGTERM; Study.run has marked the running trials interrupted)
    prints the held warnings and the plugin problems, then a line saying what is kept and how the
    run ``goes_on``, and exits 130 or 143; any other error prints the held warnings and goes on
    up, so that the group's line for it (after the plugin problems) comes last."""
    try:
        yield
    except KeyboardInterrupt as stop:
        how = stop_word(stop)
        _warn_at_end(term, study)
        term.err.print(f"{how}: finished epochs are kept; {goes_on}", highlight=False)
        raise typer.Exit(TERMINATED if isinstance(stop, Terminated) else INTERRUPTED) from None
    except BaseException:
        _say(term, study.held)
        raise


def resume_study(term: Terminal, name: str, store: Path, *, trials: int | None, workers: int | None,
                 executor: str | None, executor_opt: list[str] | None, plot: Path | None, as_json: bool,
                 max_minutes: float | None = None, max_epochs: int | None = None, no_budget: bool = False,
                 retry_failed: bool = False) -> None:
    """`research resume NAME`: the stored settings, with only the run's own choices (workers,
    executor, a new trial budget, new budgets or none, retrying the failed trials) from the flags."""
    from research.cli.train import parse_pairs, refuse_what_does_not_apply
    from research.study.spec import build_study_options, resumed
    from research.study.store import StoreError, find_stored_settings

    stored = find_stored_settings(store, name)
    if stored is None:
        raise StoreError(no_study(name, store))
    flags = {"study": name, "store": store, "trials": trials, "workers": workers, "executor": executor,
             "max_minutes": max_minutes, "max_epochs": max_epochs}
    extras = {"executor_options": parse_pairs(executor_opt, "--executor-opt")}
    if no_budget and (max_minutes is not None or max_epochs is not None):
        raise UsageError("--no-budget lifts the study's budgets; give it without --max-minutes and --max-epochs")
    options = resumed(build_study_options(flags, extras, None), stored, term.plugins)
    if no_budget:
        options = replace(options, max_minutes=None, max_epochs=None, given=options.given | {"budget"})
    refuse_what_does_not_apply(term.plugins, options, {})
    run_study(term, options, plot=plot, as_json=as_json, retry_failed=retry_failed)


def no_study(name: str, store: Path) -> str:
    """That study ``name`` is not in ``store``, and where to look: a store that does not exist
    here has no stored ones to list."""
    if not store.exists():
        return (f"no study '{name}': there is no store {store} here; run the command where the study's store is, or "
                "pass --store PATH")
    return f"no study '{name}' in {store}; `research studies --store {store}` lists the stored ones"


def confirm_command(term: Terminal, name: str, store: Path, *, top: int, seeds: int, workers: int | None,
                    executor: str | None, executor_opt: list[str] | None, as_json: bool) -> None:
    """`research confirm NAME`: the study's best trials trained again with new seeds, then the
    mean and spread of their scores (research.study.confirm)."""
    from research.cli.train import parse_pairs
    from research.study.confirm import Confirm, confirmed
    from research.study.spec import build_study_options, resumed
    from research.study.store import StoreError, find_stored_settings

    stored = find_stored_settings(store, name)
    if stored is None:
        raise StoreError(no_study(name, store))
    flags = {"study": name, "store": store, "workers": workers, "executor": executor}
    options = resumed(build_study_options(flags, {"executor_options": parse_pairs(executor_opt, "--executor-opt")},
                                          None), stored, term.plugins)
    plugins = term.plugins
    strategy = plugins.build("strategies", options.strategy, **options.strategy_options)
    settings = _settings(options, strategy, plugins)
    check_study(settings, plugins, options.executor, options.executor_options)  # before a replicate is stored
    with Store(store) as opened:
        study = open_study(opened, name, settings, plugins, checked=True, stored=True, executor=options.executor,
                           executor_options=options.executor_options, workers=options.workers, hold_warnings=True)
        run = Confirm(top, seeds)
        chosen = run.chosen(study)  # refused before anything is printed
        links = {link: n for n, link in opened.confirmations(study.record).items()}
        statuses = {t.number: t.status for t in opened.trials(study.record)}
        done_before: dict[str, int] = {}
        for key in [(o, r) for o in chosen for r in range(1, seeds + 1) if (o, r) in links]:
            status = statuses[links[key]]
            if status in DONE_STATUSES:
                done_before[status] = done_before.get(status, 0) + 1
        which = f"{'trial' if len(chosen) == 1 else 'trials'} {', '.join(map(str, chosen))}"
        wanted = len(chosen) * seeds
        left = wanted - sum(done_before.values())
        how = (f"with {plural(seeds, 'new seed')} each" if left == wanted else
               f"with {plural(seeds, 'seed')} each, {left} of {wanted} runs left to train" if left else
               f"with {plural(seeds, 'seed')} each: all {wanted} runs are trained already, nothing to train")
        term.err.print(f"confirming {which} of '{name}' {how}", highlight=False)
        study.reporter = LiveTrials(term.err, len(chosen) * seeds, int(options.base.get("epochs", 0)),
                                    list(study.space), settings.objective, done_before, name)
        with _said_if_stopped_or_failed(term, study, "the same command goes on"), study.reporter:
            study.run(run)
        found = [c for c in confirmed(opened, study.record, settings.objective) if c.trial in chosen]
    metric = settings.objective.metric
    if as_json:
        echo_json({"study": name, "metric": metric, "confirmed": [c.as_dict(metric) for c in found]})
    else:
        term.out.print(confirmation_table(found, metric, seeds, width=term.out.width))
    _warn_at_end(term, study)


def _confirm(question: str, yes: bool) -> None:
    """Go on when ``--yes`` was given or the user says so; without a terminal, ask for ``--yes``."""
    import sys

    if yes:
        return
    if not sys.stdin.isatty():
        raise UsageError(f"{question} needs confirmation: add --yes")
    if not typer.confirm(question, default=False, err=True):
        typer.echo("declined: nothing changed", err=True)
        raise typer.Exit(1)


def delete_command(term: Terminal, name: str, store_path: Path, yes: bool) -> None:
    """`research delete NAME`: the study and its checkpoints, after confirmation."""
    from research.study.study import delete_study

    with Store(store_path, create=False) as store:
        record = store.study(name)
        count = len(store.trials(record))
        _confirm(f"delete study '{name}' ({plural(count, 'trial')}) and its checkpoints from {store_path}?", yes)
        delete_study(store, name)
    term.err.print(f"deleted study '{name}'", highlight=False)


def rename_command(term: Terminal, old: str, new: str, store_path: Path, yes: bool) -> None:
    """`research rename OLD NEW`, after confirmation."""
    from research.study.study import rename_study

    check_name(new)  # before the store is opened or the user asked
    if new == old:
        raise UsageError(f"study '{old}' already has that name; give the new one")
    with Store(store_path, create=False) as store:
        store.study(old)
        _confirm(f"rename study '{old}' to '{new}' in {store_path}?", yes)
        rename_study(store, old, new)
    term.err.print(f"renamed study '{old}' to '{new}'", highlight=False)


def _same_settings(store: Store, settings: StudySettings) -> list[str]:
    """The stored studies whose settings are exactly these (a repeated command makes another)."""
    wanted = json.loads(json.dumps(settings.as_dict()))
    return [s.name for s in store.studies() if s.settings == wanted]

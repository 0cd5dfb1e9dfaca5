"""Read-only commands: plugins, sample previews, studies, show, export.

They open the store without creating it and only read, so they are safe to run against a
study that is being written.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table

from research.cli.console import Terminal, echo, echo_json
from research.cli.display import confirmation_table, fmt, histogram, ranked_table, said_once
from research.cli.train import flag_names
from research.errors import UsageError
from research.plugins import KINDS, OPTION_FLAGS, SINGULAR, Plugins
from research.report import export, objective_of, ranked, searched_names, status_counts, summarize
from research.report.files import check_output, write_file
from research.report.tables import what_it_trains
from research.space import check_conditions, parse_flags
from research.study.confirm import confirmed
from research.study.guarded import Guarded, draw
from research.study.history import History
from research.study.provenance import describe
from research.study.runner import holder, last_run
from research.study.store import Store
from research.words import plural


def declared_options(plugins: Plugins) -> dict[str, dict[str, dict[str, dict[str, Any]]]]:
    """kind -> name -> option -> what it is (type, default, help, flag), for every registered
    plugin whose factory declares its options (a clashing name is left out). A flag is shown
    where `research train` offers it (research.cli.train.declared_flags reports the others)."""
    from research.cli.train import offered_flags

    flags = offered_flags(plugins)
    listing: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}
    for kind in KINDS:
        for name in plugins.names(kind):
            try:
                specs = plugins.options_of(kind, name)
            except UsageError:
                continue
            listing.setdefault(kind, {})[name] = {
                option: {"type": spec.type.__name__, "valid": spec.describe(),
                         "default": None if spec.required else spec.default, "required": spec.required,
                         "help": spec.option.help, "flag": flags.get((kind, name, option))}
                for option, spec in (specs or {}).items()}
    return listing


def _option_text(option: str, spec: dict[str, Any]) -> str:
    """``hidden=128 (an integer >= 1; flag --hidden)``; ``command (required, a string; flag --command)``:
    the flag apart from the values, which it could pass for one of (``one of: auto, none``)."""
    head = f"{option} (required, " if spec["required"] else f"{option}={spec['default']} ("
    switch = spec["type"] == "bool" and spec["default"] is not False
    flag = f"; flag {flag_names(spec['flag'], switch)}" if spec["flag"] else ""
    return f"{head}{spec['valid']}{flag})"


def show_plugins(term: Terminal, as_json: bool) -> None:
    plugins = term.plugins
    infos = [info.as_dict() for info in plugins.infos.values()]
    options = declared_options(plugins)
    if as_json:
        echo_json({"plugins": infos, "options": options, "problems": plugins.problems}, indent=2, default=str)
        return
    table = Table(title="plugins")
    for column in ("plugin", "registers", "hooks", "from"):
        table.add_column(column)
    for info in infos:
        registers = "; ".join(f"{kind}: {', '.join(names)}" for kind, names in info["registers"].items())
        shown = escape(registers) if registers else f"[red]{escape(info['error'] or '')}[/]"
        hooks = ", ".join(info["observes"] + info["contributes"])
        table.add_row(escape(info["name"]), shown, hooks, escape(f"{info['distribution']} {info['version']}"))
    term.out.print(table)
    listing = Table(title="options (NAME=VALUE after the flag in 'set with', or the option's own flag where shown)")
    for column in ("kind", "name", "set with", "options"):
        listing.add_column(column)
    for kind, names in options.items():
        for name, declared in names.items():
            listing.add_row(SINGULAR[kind], escape(name), OPTION_FLAGS[kind], escape(
                "; ".join(_option_text(option, spec) for option, spec in declared.items()) or "-"))
    term.out.print(listing)
    term.warn_problems()


def preview_samples(term: Terminal, definitions: list[str], n: int, sampler_name: str, sampler_options: dict, optimizer: str,
                    seed: int, bins: int, as_json: bool) -> None:
    """Draw n configurations as a study would (no results: every trial is a first try)."""
    from research.study.spec import check_seed

    check_seed(seed, "--seed")
    plugins = term.plugins
    flagged = parse_flags(definitions)
    advice = {name: said for name, (_, said) in flagged.items()}
    if definitions:
        space = {name: param for name, (param, _) in flagged.items()}
    else:
        space = dict(getattr(plugins.get("optimizers", optimizer), "search_space", {}))
        if not space:
            raise UsageError(f"optimizer '{optimizer}' declares no default space to preview; name one with --space "
                             "NAME=DEFINITION")
    check_conditions(space)
    sampler = Guarded(plugins.build("samplers", sampler_name, **sampler_options), f"sampler '{sampler_name}'",
                      plugins.owner("samplers", sampler_name))
    draws = [draw(space, sampler, History(number=i, budget=n, seed=seed), seed) for i in range(n)]  # as a study checks
    if as_json:
        echo_json({"space": {k: p.describe() for k, p in space.items()}, "samples": draws})
        return
    for name, param in space.items():
        values = [d[name] for d in draws if name in d]
        term.out.print(histogram(name, param, values, bins=bins))
        if param.when is not None:
            term.out.print(f"  {name} exists in {len(values)} of {n} draws (if {param.when.describe()})")
        if advice.get(name):
            term.out.print(f"  note: {advice[name]}", highlight=False, markup=False, soft_wrap=True)


def _open(store: Path) -> Store:
    return Store(store, create=False)


def _study_epochs(plugins: Plugins, strategy: str, base: dict[str, Any]) -> int | None:
    """The base's epochs, but none for a strategy that sets its trials' length itself
    (``epochs_from``: babysit's segments), whose base keeps the default it never uses."""
    try:
        sets_its_own = getattr(plugins.get("strategies", strategy), "epochs_from", None)
    except UsageError:  # a strategy no longer installed: its study is still listed
        sets_its_own = None
    return None if sets_its_own else base.get("epochs")


def list_studies(term: Terminal, store_path: Path, as_json: bool) -> None:
    with _open(store_path) as store:
        rows = []
        for study in store.studies():
            counts = status_counts(store, study)
            objective = objective_of(study)
            best = ranked(store, study)
            base = study.settings.get("base", {})
            # What its trials train: a strategy may set it itself (babysit: segments x segment epochs),
            # and a run that went on past its first configuration trains more (babysit's added segments).
            configured = {row["config"].get("epochs") for row in best}
            epochs = configured.pop() if len(configured) == 1 else _study_epochs(term.plugins, study.strategy, base)
            if isinstance(epochs, int):
                epochs = max([epochs] + [row["epochs"] for row in best])
            runner = holder(store, study)
            rows.append({"name": study.name, "strategy": study.strategy,
                         "created": time.strftime("%Y-%m-%d %H:%M", time.localtime(study.created)),
                         "trains": what_it_trains(base), "epochs": epochs, "trials": counts,
                         "budget": study.settings.get("trials"), "metric": objective.metric,
                         "direction": objective.direction,
                         "best": best[0][f"best_{objective.metric}"] if best else None,
                         "runner": None if runner is None else {
                             "pid": runner.pid, "host": runner.host,
                             "since": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(runner.started))}})
    if as_json:
        echo_json({"studies": rows})
        return
    table = Table(title=f"studies in {store_path}")
    for column in ("study", "strategy", "created", "trains", "epochs", "trials", "objective", "best", "running now"):
        table.add_column(column)
    for row in rows:
        table.add_row(escape(row["name"]), row["strategy"], row["created"], escape(row["trains"]), fmt(row["epochs"]),
                      ", ".join(f"{v} {k}" for k, v in sorted(row["trials"].items())),
                      f"{row['direction']} {row['metric']}", fmt(row["best"]),
                      f"pid {row['runner']['pid']} on {row['runner']['host']}" if row["runner"] else "")
    term.out.print(table)


def show_study(term: Terminal, name: str, store_path: Path, top: int | None, as_json: bool) -> None:
    if top is not None and top < 1:
        raise UsageError(f"--top must be at least 1, got {top}; leave it out to list every trial")
    with _open(store_path) as store:
        study = store.study(name)
        rows = ranked(store, study)
        ran = last_run(store, study)
        objective = objective_of(study)
        found = confirmed(store, study, objective)
    summary = summarize(rows, int(study.settings.get("base", {}).get("epochs", 0)))
    if as_json:
        echo_json({"study": name, "strategy": study.strategy, "settings": study.settings,
                    "summary": summary, "trials": rows[:top] if top else rows, "provenance": ran,
                    "confirmations": [c.as_dict(objective.metric) for c in found]})
        return
    term.out.print(ranked_table(rows, searched_names(study), f"study {name} ({study.strategy}): best first",
                                objective_of(study).metric, top, width=term.out.width))
    if top and len(rows) > top:
        term.out.print(f"the best {top} of {len(rows)} trials", highlight=False)
    statuses = ", ".join(f"{count} {status}" for status, count in sorted(summary["statuses"].items()))
    pruned = (f"; pruning saved {summary['epochs_saved_by_pruning']} epochs" if summary["pruned"] else "")
    term.out.print(f"{plural(summary['trials'], 'trial')}{f' ({statuses})' if statuses else ''}, "
                   f"{plural(summary['epochs_trained'], 'epoch')} trained{pruned}", highlight=False)
    seen: dict[str, tuple[int, str]] = {}
    for row in rows:
        if row["error"]:
            term.out.print(f"trial {row['number']} {row['status']}: {said_once(seen, row['number'], row['error'])}",
                           highlight=False, markup=False)
    if found:
        term.out.print(confirmation_table(found, objective.metric, width=term.out.width))
    if ran is not None:
        term.out.print(f"last run {ran['started']} on {ran['host']}: {describe(ran)}", highlight=False, markup=False)


def export_to(term: Terminal, name: str, store_path: Path, fmt_name: str | None, output: Path | None) -> None:
    """`research export`: to ``output``, or standard output when None or ``-``; in ``fmt_name``,
    else the one the output's name says (CSV was written into a file named .json)."""
    output = None if output == Path("-") else output
    if fmt_name is None:
        fmt_name = "json" if output is not None and output.suffix.lower() == ".json" else "csv"
    if output is not None:
        check_output(output, store_path)
    with _open(store_path) as store:
        text = export(store, store.study(name), fmt_name)
        if output is None:
            echo(text, nl=False)
        else:
            write_file(output, text.encode())
            term.err.print(f"wrote {output}", highlight=False)

"""``research train``: its flags, part fixed and part declared by the plugins.

The fixed flags pick plugins and shape a study (``--strategy``, ``--model``, ``--trials``...).
The others come from declarations (research.options): the run's options with a ``flag``
(``--epochs``...), every model's (``--hidden`` is the mlp's) and every strategy's
(``--segments`` is babysit's). A model's or strategy's flag given with another one, and a
study setting the chosen strategy does not use, are refused rather than ignored.
"""

from __future__ import annotations

import inspect
import shlex
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.markup import escape

from research.cli.console import terminal
from research.defaults import DEFAULTS, STORE
from research.errors import PluginFailure, UsageError
from research.options import Spec
from research.plugins import KINDS, OPTION_FLAGS, SINGULAR, Plugins

HELP = "Train one model from flags, or a study of many with --strategy NAME."


def parse_pairs(pairs: list[str] | None, flag: str) -> dict[str, str]:
    """``key=value`` strings from a repeatable option into a dict. A key given twice and an
    empty value are refused, as ``--space`` refuses a name twice: one would silently win, the
    other silently be the default."""
    result: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = (part.strip() for part in pair.partition("="))
        if not sep or not key:
            raise UsageError(f"cannot read {flag} '{pair}'; write {flag} NAME=VALUE (research plugins lists each "
                             "plugin's options)")
        if not value:
            raise UsageError(f"{flag} {key}= has no value; write {flag} {key}=VALUE, or leave it out for the default")
        if key in result:
            raise UsageError(f"{flag} {key} is given twice ({shlex.quote(result[key])} and {shlex.quote(value)}); "
                             "give it once")
        result[key] = value
    return result


def _option(flag: str, text: str, kind: type = str) -> Any:
    """A flag whose value is None when not given (``text`` is shown as written, brackets too)."""
    return Annotated[Optional[kind], typer.Option(flag, help=escape(text), show_default=False)]


def _pairs(flag: str, text: str) -> Any:
    """A repeatable ``key=value`` flag."""
    return Annotated[Optional[list[str]], typer.Option(flag, help=escape(text), show_default=False)]


# name -> (annotation, the study setting it belongs to, if any)
FIXED: dict[str, tuple[Any, str | None]] = {
    "strategy": (_option("--strategy", "Run a study with this strategy plugin; omit to train one model."), None),
    "trainer": (_option("--trainer", f"Trainer plugin, or package.module:Class [default: {DEFAULTS['trainer']}]."),
                None),
    "trainer_opt": (_pairs("--trainer-opt", "Trainer option key=value."), None),
    "model": (_option("--model", f"Model plugin [default: {DEFAULTS['model']}]."), None),
    "model_opt": (_pairs("--model-opt", "Model option key=value."), None),
    "optimizer": (_option("--optimizer", f"Optimizer plugin [default: {DEFAULTS['optimizer']}]."), None),
    "lr": (_option("--lr", "Learning rate [default: the optimizer's].", float), None),
    "dataset": (_option("--dataset", f"Dataset plugin [default: {DEFAULTS['dataset']}]."), None),
    "schedule": (_option("--schedule", f"Learning-rate schedule plugin [default: {DEFAULTS['schedule']}]."), None),
    "seed": (_option("--seed", "Seed of the model, or of the whole study [default: 0].", int), None),
    "opt": (_pairs("--opt", "Optimizer or schedule option key=value."), None),
    "dataset_opt": (_pairs("--dataset-opt", "Dataset option key=value."), None),
    "checkpoint": (_option("--checkpoint", "One model: checkpoint after every epoch; resume from it.", Path), None),
    "config": (_option("--config", "A study.toml with options and [space.NAME] tables.", Path), None),
    "space": (_pairs("--space", "NAME=DEFINITION, e.g. lr=log:1e-4..1."), "space"),
    "from_study": (_option("--from-study", "Search where another study found its best: its space narrowed to a box "
                                           "around its best quarter of trials (--space adds or replaces "
                                           "names) [default: none]."), "space"),
    "trials": (_option("--trials", "Trials in the study [default: 32].", int), "trials"),
    "workers": (_option("--workers", "Trials side by side, kept with the study [default: one per core; a "
                                     "resumed study's own].", int), "workers"),
    "sampler": (_option("--sampler", f"Sampler plugin [default: {DEFAULTS['sampler']}]."), "sampler"),
    "sampler_opt": (_pairs("--sampler-opt", "Sampler option key=value."), "sampler"),
    "executor": (_option("--executor", f"Executor plugin [default: {DEFAULTS['executor']}]."), "executor"),
    "executor_opt": (_pairs("--executor-opt", "Executor option key=value."), "executor"),
    "max_minutes": (_option("--max-minutes", "A study's budget of wall-clock minutes, over all its runs; when "
                                             "spent, running trials end their epoch and the study stops, "
                                             "resumable with a larger one [default: none].", float), "budget"),
    "max_epochs": (_option("--max-epochs", "A study's budget of epochs, over all its trials [default: none].", int),
                   "budget"),
    "prune": (_option("--prune", "Pruner plugin that stops losing trials early, or none [default: none]."), "prune"),
    "prune_opt": (_pairs("--prune-opt", "Pruner option key=value."), "prune"),
    "strategy_opt": (_pairs("--strategy-opt", "Strategy option key=value."), None),
    "metric": (_option("--metric", "What the study optimizes: val_acc, val_loss, train_acc, train_loss, or any "
                                   "metric its trainer reports [default: val_acc, or the first metric a trainer without it declares]."),
               None),
    "direction": (_option("--direction", "maximize or minimize [default: minimize a loss or an error (val_loss, "
                                         "top1_err, val_mse...), maximize the rest]."), None),
    "study": (_option("--study", "Study name; an existing study is resumed [default: a new STRATEGY-N]."), None),
    "store": (_option("--store", f"The SQLite store [default: {STORE}].", Path), None),
    "plot": (_option("--plot", "Where to save the study's picture [default: STUDY-curves.png].", Path), None),
    "as_json": (Annotated[bool, typer.Option("--json", help="Print the result as JSON instead of tables.")], None),
}


# Repeatable key=value flags and the table of the study options each fills.
PAIR_TABLES = {"opt": "opt", "model_opt": "model_options", "dataset_opt": "dataset_options",
               "sampler_opt": "sampler_options", "executor_opt": "executor_options", "prune_opt": "prune_options",
               "strategy_opt": "strategy_options", "trainer_opt": "trainer_options"}
# Fixed flags that are not settings of the run or study (the rest go to build_study_options).
NOT_SETTINGS = {*PAIR_TABLES, "space", "checkpoint", "config", "plot", "as_json"}


def flag_names(flag: str, on_by_default: bool) -> str:
    """The flags that set a declared option: ``--batchnorm/--no-batchnorm`` for a switch that is
    on by default, the one ``flag`` otherwise."""
    return f"{flag}/--no-{flag.lstrip('-')}" if on_by_default else flag


def _declared_option(spec: Spec, owners: str) -> Any:
    """The typer annotation of a declared option's flag; ``owners`` says whose it is."""
    flag = spec.option.flag
    assert flag is not None
    default = "" if spec.required or spec.default is None else f" [default: {spec.default}]"
    text = escape(f"{spec.option.help or spec.name}{owners}{default}.")
    if spec.type is bool:
        return Annotated[Optional[bool], typer.Option(flag_names(flag, spec.default is not False), help=text,
                                                      show_default=False)]
    kind = spec.type if spec.type in (int, float) else str
    return Annotated[Optional[kind], typer.Option(flag, help=text, show_default=False)]


# Kinds whose plugins may declare `research train` flags, and the word for one of them.
OWNERS = {"trainers": "trainer", "models": "model", "strategies": "strategy"}
Owned = dict[str, tuple[Spec, str, list[str]]]  # parameter -> (spec, kind, plugins that declare it)


def declared_flags(plugins: Plugins) -> tuple[dict[str, Spec], Owned]:
    """The run's flagged options, and the flags models, trainers and strategies declare, each
    with the plugins that declare it: ``{parameter name: ...}``. Plugins of one kind that
    declare an option of one name, flag and type share it (``--hidden`` for the mlp and another
    model). Any other clash is reported as a plugin problem and the flag left out (its option
    is set with the kind's NAME=VALUE flag, ``--model-opt hidden=...``): built-ins, of every
    kind, keep theirs; two third parties that want one flag both lose it, whatever order they
    load in (as two plugins' commands of one name). A flag on a kind without flags (a
    sampler's) is reported the same way."""
    from research.nn.config import RUN

    taken = {"--help", *(option_flag(a) for a, _ in FIXED.values())}
    run = {spec.name: spec for spec in RUN.values() if spec.option.flag}
    taken |= {spec.option.flag for spec in run.values()}
    declared: list[tuple[str, str, Spec]] = []
    for kind in KINDS:
        for name in plugins.names(kind):
            try:
                specs = plugins.options_of(kind, name) or {}
            except UsageError:  # a clashing name: its flags are not offered
                continue
            declared += [(kind, name, spec) for spec in specs.values() if spec.option.flag]
    declared.sort(key=lambda item: not plugins.builtin(item[0], item[1]))  # built-ins first (a stable sort)
    owned: Owned = {}
    holder: dict[str, str] = {}  # flag -> the parameter offered with it
    for kind, name, spec in declared:
        word, flag = SINGULAR[kind], str(spec.option.flag)
        parameter = f"{word}_{spec.name}".replace("-", "_")
        known = owned.get(parameter)
        instead = f"set it with {OPTION_FLAGS[kind]} {spec.name}=VALUE"
        if kind not in OWNERS:
            plugins.report(f"{word} '{name}' declares flag {flag}, but only models, trainers and "
                           f"strategies have flags of their own; not offered: {instead}")
            continue
        if known is not None and known[0].option.flag == flag and known[0].type is spec.type:
            known[2].append(name)
            continue
        rival = owned.get(holder.get(flag, ""))
        if rival is not None and not any(plugins.builtin(rival[1], other) for other in rival[2]):
            del owned[holder.pop(flag)]  # two third parties: neither keeps it
            theirs = " and ".join(f"'{other}'" for other in rival[2])
            plugins.report(f"{SINGULAR[rival[1]]} {theirs} and {word} '{name}' both declare flag {flag}; neither "
                           f"is offered: set them with {OPTION_FLAGS[rival[1]]} {rival[0].name}=VALUE and "
                           f"{OPTION_FLAGS[kind]} {spec.name}=VALUE")
        elif flag in taken or known is not None:
            plugins.report(f"{word} '{name}' declares flag {flag}, which another option has; not "
                           f"offered: {instead}")
        else:
            owned[parameter] = (spec, kind, [name])
            holder[flag] = parameter
        taken.add(flag)
    return run, owned


def offered_flags(plugins: Plugins) -> dict[tuple[str, str, str], str]:
    """The flag of each plugin option that has one on `research train`: ``(kind, plugin, option)``
    -> flag (a declared flag that is not offered, declared_flags, is not here)."""
    return {(kind, name, spec.name): str(spec.option.flag)
            for spec, kind, names in declared_flags(plugins)[1].values() for name in names}


def option_flag(annotation: Any) -> str:
    """The first flag name of a typer ``Annotated[..., typer.Option(...)]``."""
    info = annotation.__metadata__[0]
    first = info.param_decls[0] if info.param_decls else info.default  # in Annotated, names come first
    return str(first).split("/")[0]


# Fixed flags that name a plugin, and its kind: their help lists the installed ones.
PLUGIN_FLAGS = {"strategy": "strategies", "trainer": "trainers", "model": "models", "optimizer": "optimizers",
                "dataset": "datasets", "schedule": "schedules", "sampler": "samplers", "executor": "executors",
                "prune": "pruners"}


def _naming_installed(annotation: Any, names: list[str]) -> Any:
    """A fixed flag's annotation whose help ends with the installed plugins' names."""
    info = annotation.__metadata__[0]
    text = f"{info.help} Installed: {escape(', '.join(names))}."
    return Annotated[annotation.__origin__, typer.Option(*info.param_decls, help=text, show_default=False)]


def _strategies_using(plugins: Plugins) -> dict[str, list[str]]:
    """For each study setting that some installed strategy does not use (research.study.strategy.
    STUDY_SETTINGS, a strategy's ``accepts``), the strategies that use it."""
    from research.study.strategy import STUDY_SETTINGS, accepted

    accepts = {}
    for name in plugins.names("strategies"):
        try:
            accepts[name] = accepted(plugins.get("strategies", name))
        except UsageError:  # a clashing name: not offered
            continue
    return {setting: [name for name, used in accepts.items() if setting in used] for setting in STUDY_SETTINGS
            if not all(setting in used for used in accepts.values())}


def _used_by(annotation: Any, strategies: list[str]) -> Any:
    """A study setting's flag whose help says which strategies use it, as a plugin's own flag
    says whose it is: ``Trials in the study (strategy caviar) [default: 32].``"""
    info = annotation.__metadata__[0]
    whose = f" (strategy {', '.join(strategies)})" if strategies else " (no installed strategy uses it)"
    text = str(info.help)
    at = text.find(" \\[default")  # before the default (escaped for rich), else before the last period
    at = at if at >= 0 else len(text.rstrip("."))
    text = text[:at] + escape(whose) + text[at:]
    return Annotated[annotation.__origin__, typer.Option(*info.param_decls, help=text, show_default=False)]


def _signature(plugins: Plugins) -> tuple[inspect.Signature, Owned, tuple[str, ...]]:
    run, owned = declared_flags(plugins)
    annotations = {name: annotation for name, (annotation, _) in FIXED.items()}
    using = _strategies_using(plugins)
    annotations |= {name: _used_by(annotation, using[setting])
                    for name, (annotation, setting) in FIXED.items() if setting in using}
    annotations |= {name: _naming_installed(annotations[name], plugins.names(kind))
                    for name, kind in PLUGIN_FLAGS.items() if plugins.names(kind)}
    annotations |= {name: _declared_option(spec, "") for name, spec in run.items()}
    annotations |= {parameter: _declared_option(spec, f" ({OWNERS[kind]} {', '.join(names)})")
                    for parameter, (spec, kind, names) in owned.items()}
    parameters = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation,
                                    default=False if name == "as_json" else None)
                  for name, annotation in annotations.items()]
    return inspect.Signature(parameters), owned, tuple(run)  # declared order: a set's would follow the hash seed


def train_command(plugins: Plugins) -> Any:
    """``research train`` with the flags the loaded plugins declare."""
    signature, owned, run_flags = _signature(plugins)

    def train(ctx: typer.Context, **values: Any) -> None:
        run_train(ctx, values, owned, run_flags)

    train.__doc__ = HELP
    context = inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context)
    train.__signature__ = signature.replace(parameters=[context, *signature.parameters.values()])  # type: ignore
    train.__annotations__ = {p.name: p.annotation for p in train.__signature__.parameters.values()}  # type: ignore
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command("train")(train)
    return typer.main.get_command(app)


RESEARCH_PARTS = ("model", "optimizer", "schedule", "dataset")
"""What the research trainer's flags choose; another trainer trains a model of its own."""


def _option_with_flag(plugins: Plugins, kind: str, name: str, flag: str) -> str | None:
    """The option of plugin ``name`` that declares ``flag``, if any (one the command line does
    not offer: another option has that flag, declared_flags)."""
    try:
        specs = plugins.options_of(kind, name) or {}
    except UsageError:
        return None
    return next((spec.name for spec in specs.values() if spec.option.flag == flag), None)


def refuse_what_does_not_apply(plugins: Plugins, options: Any, given: dict[str, tuple[str, list[str]]],
                               picked_by: str | None = None) -> None:
    """A model's or strategy's flag given with another one, or a study setting the strategy
    does not use, is an error rather than a silent no-op. ``picked_by``: the flag of a trainer's
    own that chose the trainer (no --trainer given), which a refusal names."""
    from research.study.strategy import STUDY_SETTINGS, accepted, miscast

    chosen = {"trainers": str(options.base.get("trainer", DEFAULTS["trainer"])),
              "models": str(options.base.get("model", DEFAULTS["model"])), "strategies": options.strategy}
    for kind, name in chosen.items():
        if name is not None and ":" not in name:
            plugins.get(kind, name)  # an unknown name is the mistake to name, not a flag given with it
    if chosen["trainers"] != DEFAULTS["trainer"]:  # the parts below are the research trainer's
        parts = [f"--{key}" for key in RESEARCH_PARTS if key in options.base]
        parts += [flag for flag, (kind, _) in given.items() if kind == "models"]
        parts += ["--model-opt"] * any(key.startswith("model.") for key in options.base)
        parts += ["--dataset-opt"] * ("dataset_options" in options.base)
        if parts and picked_by:  # the user may not know a flag chose another trainer
            raise UsageError(f"{picked_by} is an option of trainer '{chosen['trainers']}', so it trains with that "
                             f"trainer, which trains its own model: {', '.join(parts)} cannot apply; drop {picked_by} "
                             f"to train with the research trainer, or {', '.join(parts)}")
        if parts:
            raise UsageError(f"{', '.join(parts)} {'choose' if len(parts) > 1 else 'chooses'} what the research "
                             f"trainer trains, and trainer '{chosen['trainers']}' trains its own model; drop "
                             f"{'them' if len(parts) > 1 else 'it'} (a value your trainer reads goes in --opt NAME=VALUE)")
    for flag, (kind, owners) in given.items():
        word = OWNERS[kind]
        if chosen[kind] not in owners:
            whose = " or ".join(f"--{word} {o}" for o in owners)
            if chosen[kind] is None:
                raise UsageError(f"{flag} is an option of a study {word}; add {whose}")
            hint = ""
            own = _option_with_flag(plugins, kind, chosen[kind], flag)
            if ":" in chosen[kind] or own:  # by its import path, or its own flag not offered: no flags of its own
                option = own or flag[2:].replace("-", "_")
                hint = f" (to {word} '{chosen[kind]}', give it as --{word}-opt {option}=VALUE)"
            raise UsageError(f"{flag} does not apply to {word} '{chosen[kind]}'; it is an option of {whose}{hint}")
    if options.strategy is None:
        if options.strategy_options:
            raise UsageError("--strategy-opt is an option of a study strategy; add --strategy NAME "
                             "(see `research plugins`)")
        if options.given:
            names = ", ".join(_setting_flags(g, options) for g in sorted(options.given))
            verb = "shape" if len(options.given) > 1 else "shapes"
            raise UsageError(f"{names} {verb} a study; add --strategy NAME (see `research plugins`)")
        return
    factory = plugins.get("strategies", options.strategy)
    wrong = miscast(factory)
    if wrong is not None:
        raise PluginFailure(f"plugin '{plugins.owner('strategies', options.strategy)}': strategy "
                            f"'{options.strategy}' {wrong}")
    _refuse_epochs(options.strategy, factory, options)
    accepts = accepted(factory)
    refused = sorted(options.given - set(accepts))
    if refused:
        uses = ", ".join(_setting_flags(a) for a in STUDY_SETTINGS if a in accepts) or "none of them"
        flags = [_setting_given(r, options) for r in refused]
        raise UsageError(f"strategy '{options.strategy}' does not use {', '.join(flags)} "
                         f"(of the study settings it uses {uses}); drop {'them' if len(flags) > 1 else 'it'}")


def _refuse_epochs(strategy: str, factory: Any, options: Any) -> None:
    """--epochs (or a study.toml's epochs) for a strategy that sets each trial's length itself."""
    epochs_from = getattr(factory, "epochs_from", None)
    if epochs_from and "epochs" in options.explicit:
        raise UsageError(f"strategy '{strategy}' trains {epochs_from} epochs; drop "
                         f"{options.named('epochs', '--epochs')}")


def _setting_given(setting: str, options: Any) -> str:
    """What gave a study setting: its flags, or the study.toml's keys when only the file did."""
    from research.study.spec import SETTING_KEYS

    keys = [key for key in SETTING_KEYS[setting] if key in options.from_file]
    return f"{', '.join(keys)} in {options.config}" if keys else _setting_flags(setting, options)


def _setting_flags(setting: str, options: Any = None) -> str:
    """The flag (or flags) that give a study setting: the ones ``options`` gave, if given."""
    if setting == "budget":
        flags = ("max_minutes", "max_epochs")
        given = [f for f in flags if options is not None and getattr(options, f) is not None]
        return "/".join(f"--{f.replace('_', '-')}" for f in given or flags)
    if setting == "space" and options is not None and options.from_study is not None:
        return "--space/--from-study"
    if setting in ("sampler", "executor", "prune") and options is not None and setting not in options.explicit:
        return f"--{setting}-opt"  # only its options were given
    return f"--{setting}"


def _continued(options: Any, plugins: Plugins) -> Any:
    """With ``--study NAME`` of a stored study, the options that continue it (its stored
    settings fill in what the flags left out); a name not in the store needs ``--strategy``.
    A new study with ``--from-study`` gets its space from there."""
    from research.study.spec import refuse_pruner_options_alone, resumed
    from research.study.store import find_stored_settings
    from research.study.zoom import with_region

    stored = find_stored_settings(options.store, options.study) if options.study is not None else None
    if stored is not None:
        if stored["strategy"] in plugins.names("strategies"):  # its own length, not "created with epochs = 15"
            _refuse_epochs(stored["strategy"], plugins.get("strategies", stored["strategy"]), options)
        return resumed(options, stored, plugins)
    refuse_pruner_options_alone(options)
    if options.study is None:
        return with_region(options)
    if options.strategy is None:
        raise UsageError(f"no study '{options.study}' in {options.store}; add --strategy NAME to start it "
                         "(`research studies` lists the stored ones)")
    from research.study.study import check_name

    check_name(options.study)  # a new study: its name is checked before anything is stored
    return with_region(options)


def _given_twice(name: str, first: str, second: str) -> UsageError:
    """The one refusal of a value given in two places, each as the user wrote it: one would silently win."""
    return UsageError(f"{name} is given twice, as {first} and as {second}; give it once")


def _refuse_given_twice(named: dict[str, Any], pairs: dict[str, Any], by_flag: dict[str, str], table: str) -> None:
    """A value given by its own flag and again in a key=value table."""
    twice = sorted(set(named) & set(pairs))
    if twice:
        name = twice[0]
        flag = by_flag.get(name) or (option_flag(FIXED[name][0]) if name in FIXED else f"--{name.replace('_', '-')}")
        pair = shlex.quote(f"{name}={pairs[name]}")
        raise _given_twice(name, f"{flag} {shlex.quote(str(named[name]))}", f"{table} {pair}")


def _file_keys(owned: Owned) -> dict[str, tuple[str, str, str | None]]:
    """A study.toml's keys named after a strategy's or trainer's flag (``segments`` for
    ``--segments``): ``{key: (its table, the option, the trainer it picks or None)}``, as the
    flags route them (a model's are top-level keys already)."""
    tables = {"strategies": "strategy_options", "trainers": "trainer_options"}
    return {str(spec.option.flag).lstrip("-").replace("-", "_"):
            (tables[kind], spec.name, names[0] if kind == "trainers" and len(names) == 1 else None)
            for spec, kind, names in owned.values() if kind in tables}


def run_train(ctx: typer.Context, values: dict[str, Any], owned: Owned, run_flags: tuple[str, ...]) -> None:
    """Merge the flags with the config file, check what applies, then train one model or
    run the study."""
    from research.study.spec import build_study_options

    term = terminal(ctx)
    plugins = term.plugins
    given: dict[str, tuple[str, list[str]]] = {}
    declared: dict[str, dict[str, Any]] = {kind: {} for kind in OWNERS}
    picked_by = None  # the flag of a trainer's own that chose it, no --trainer given
    for parameter, (spec, kind, names) in owned.items():
        if values.get(parameter) is not None:
            flag = str(spec.option.flag)
            if values[parameter] is False and spec.type is bool:  # a --name/--no-name pair: as it was given
                flag = "--no-" + flag.removeprefix("--")
            given[flag] = (kind, names)
            declared[kind][spec.name] = values[parameter]
            if kind == "trainers" and values.get("trainer") is None and len(names) == 1:
                values["trainer"] = names[0]  # a trainer's own flag picks that trainer
                picked_by = flag
    flags = {key: values.get(key) for key in (*FIXED, *run_flags) if key not in NOT_SETTINGS} | declared["models"]
    extras: dict[str, Any] = {table: parse_pairs(values.get(key), option_flag(FIXED[key][0]))
                              for key, table in PAIR_TABLES.items()}
    by_flag = {spec.name: str(spec.option.flag) for spec, _, _ in owned.values()}
    for key, table, named in (("model_opt", "model_options", declared["models"]),
                              ("strategy_opt", "strategy_options", declared["strategies"]),
                              ("trainer_opt", "trainer_options", declared["trainers"]),
                              ("opt", "opt", {k: v for k, v in flags.items() if v is not None})):
        _refuse_given_twice(named, extras[table], by_flag, option_flag(FIXED[key][0]))
    model = {f"model.{k}": v for k, v in extras.pop("model_options").items()}
    twice = sorted(set(model) & set(extras["opt"]))  # --model-opt k=v is --opt model.k=v: one would silently win
    if twice:
        name, short, opt = twice[0], twice[0][len("model."):], extras["opt"]
        raise _given_twice(name, f"--opt {shlex.quote(f'{name}={opt[name]}')}",
                           f"--model-opt {shlex.quote(f'{short}={model[name]}')}")
    extras["opt"] |= model
    extras["strategy_options"] |= declared["strategies"]
    extras["trainer_options"] |= declared["trainers"]
    extras["space"] = values.get("space") or []
    options = build_study_options(flags, extras, values.get("config"), _file_keys(owned))
    options = _continued(options, plugins)
    refuse_what_does_not_apply(plugins, options, given, picked_by)
    if options.strategy is not None and values.get("checkpoint") is not None:
        raise UsageError("--checkpoint is for one model; a study keeps every trial's checkpoints itself "
                         "(`research resume` continues it): drop --checkpoint")
    if options.strategy is None and values.get("plot") is not None:
        raise UsageError("--plot names a study's picture; one model prints its table: drop --plot, or add --strategy")
    if options.strategy is None and "store" in options.explicit:  # the flag, or a study.toml's key
        said = options.named("store", "--store")
        raise UsageError(f"{said} is where studies are kept, and one model keeps nothing in a store: drop "
                         f"{'it' if said != '--store' else '--store'}, or add --strategy NAME (--checkpoint PATH keeps "
                         "one model's training)")
    if options.strategy is None:
        from research.cli.commands.single import train_one

        train_one(term, options, checkpoint=values.get("checkpoint"), as_json=bool(values.get("as_json")))
    else:
        from research.cli.commands.studies import run_study

        run_study(term, options, plot=values.get("plot"), as_json=bool(values.get("as_json")))


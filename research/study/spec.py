"""What the user asked for, from a study.toml and command-line flags (flags win).

A study.toml holds the same options as the flags, plus a ``[space.NAME]`` table per searched
parameter::

    strategy = "caviar"
    trials = 32
    epochs = 15
    optimizer = "adam"
    [space.lr]
    low = 1e-4
    high = 1
    scale = "log"
    [space.layers]
    values = [1, 2, 3]
"""

from __future__ import annotations

import difflib
import json
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from research.defaults import DEFAULTS, NO_PRUNER, STORE
from research.nn.config import STUDY_EPOCHS, ConfigError, UnknownParameterError
from research.plugins import Plugins
from research.space import from_table, parse_flags, scale_advice
from research.study.provenance import ANCHORED, anchored

STUDY_KEYS = ("strategy", "trials", "workers", "sampler", "executor", "study", "store", "prune", "metric",
              "direction", "max_minutes", "max_epochs", "from_study")
TABLES = ("space", "sampler_options", "executor_options", "dataset_options", "trainer_options", "strategy_options",
          "prune_options", "model_options",
          "options")
# The file's keys whose value names something (text; a number or list there was "a bug").
TEXT_KEYS = ("strategy", "sampler", "executor", "study", "store", "prune", "metric", "direction", "from_study")
STUDY_DEFAULTS = {"trials": 32, "workers": 0, "sampler": DEFAULTS["sampler"], "executor": DEFAULTS["executor"],
                  "store": STORE, "prune": NO_PRUNER}
# The study settings a strategy may or may not use (research.study.strategy.STUDY_SETTINGS),
# and the keys of the file and flags that set each.
SETTING_KEYS = {"space": ("space", "from_study"), "trials": ("trials",), "sampler": ("sampler", "sampler_options"),
                "workers": ("workers",), "executor": ("executor", "executor_options"),
                "prune": ("prune", "prune_options"), "budget": ("max_minutes", "max_epochs")}


@dataclass
class StudyOptions:
    """Options of one `research train` invocation, merged and checked for shape."""

    strategy: str | None
    base: dict[str, Any]
    space: dict[str, str] = field(default_factory=dict)
    trials: int = 32
    workers: int = 0
    sampler: str = DEFAULTS["sampler"]
    sampler_options: dict[str, Any] = field(default_factory=dict)
    executor: str = DEFAULTS["executor"]
    executor_options: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    study: str | None = None
    store: Path = Path(STORE)
    strategy_options: dict[str, Any] = field(default_factory=dict)
    prune: str = NO_PRUNER
    prune_options: dict[str, Any] = field(default_factory=dict)
    given: frozenset[str] = frozenset()  # the study settings the file or the flags named
    metric: str | None = None  # the objective (research.study.objective); None: the default
    direction: str | None = None
    explicit: frozenset[str] = frozenset()  # every key the file or the flags named (base keys, "seed"...)
    max_minutes: float | None = None  # the study's budget beyond its trials (None: none)
    max_epochs: int | None = None
    from_study: str | None = None  # a new study's space: a box around that study's best (research.study.zoom)
    resumes: bool = False  # the options continue a stored study, which must still be there when it opens
    config: Path | None = None  # the study.toml read, if any
    from_file: frozenset[str] = frozenset()  # the keys and tables only the study.toml gave (no flag over them)
    advice: tuple[str, ...] = ()  # ranges given without a scale that span decades (research.space.scale_advice)

    def named(self, key: str, flag: str) -> str:
        """How an error names what gave ``key``: the study.toml's key, or the flag."""
        return f"{key} in {self.config}" if key in self.from_file else flag


MAX_DEPTH = 16
"""How deeply a study.toml's tables and lists may nest (``[space.lr]`` is 2)."""
SEED_LIMIT = 2**63
"""Seeds are 0 <= seed < SEED_LIMIT: what SQLite's 64-bit integers hold."""


BOM = b"\xef\xbb\xbf"  # UTF-8's byte order mark: TOML has no place for it; Notepad writes it


def read_toml(path: Path) -> dict[str, Any]:
    """A study.toml as a dict; a missing file, a folder, a file that is not text, a syntax
    error or nesting deeper than ``MAX_DEPTH`` (which would exhaust Python's recursion in the
    parser or after it) is a one-line ConfigError."""
    too_deep = f"config file {path}: nested too deeply (more than {MAX_DEPTH} levels of tables and lists); flatten it"
    try:
        with open(path, "rb") as handle:
            text = handle.read()
        data = tomllib.loads(text.removeprefix(BOM).decode("utf-8"))  # the mark some editors write first
    except FileNotFoundError:
        raise ConfigError(f"config file {path} does not exist; check the --config path") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {path} is a folder; give the study.toml file in it") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not text (not UTF-8); give a study.toml file") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"config file {path} is not valid TOML: {err}") from None
    except RecursionError:
        raise ConfigError(too_deep) from None
    if _depth(data) > MAX_DEPTH:
        raise ConfigError(too_deep)
    for key in TABLES:
        if key in data and not isinstance(data[key], dict):
            raise ConfigError(f"config file {path}: '{key}' must be a table ([{key}])")
    for key in TEXT_KEYS:
        if key in data and not isinstance(data[key], str):
            raise ConfigError(f"config file {path}: {key} must be text in quotes ({key} = \"...\"), got {data[key]!r}")
        if key in data and key != "study" and not data[key].strip():  # study: the rule of names says it
            raise ConfigError(f"config file {path}: {key} is empty; give it a value, or leave it out")
    for key, value in data.items():
        if isinstance(value, dict) and key not in TABLES:
            raise ConfigError(f"config file {path}: unknown table [{key}]; tables are: {', '.join(TABLES)}")
    return data


def _depth(data: Any) -> int:
    """How deeply ``data``'s dicts and lists nest (a scalar is 0), without recursion."""
    deepest, stack = 0, [(data, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth + 1)
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def _space_from(path: Path | None, tables: dict[str, Any]) -> tuple[dict[str, str], dict[str, str | None]]:
    """The ``[space.NAME]`` tables as ``--space`` text, and each one's advice on its scale."""
    space, advice = {}, {}
    for name, table in tables.items():
        if not isinstance(table, dict):
            raise ConfigError(f"config file {path}: [space.{name}] must be a table with low/high/scale or values")
        param = from_table(name, table)
        space[name], advice[name] = param.describe(), scale_advice(name, param, "scale" in table, table=True)
    return space, advice


def positive_integer(name: str, value: Any, low: int) -> int:
    """``value`` if it is an integer (not a bool) of at least ``low``; a ConfigError otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}")
    return value


def check_seed(value: Any, flag: str = "seed") -> int:
    """A seed in 0 <= seed < 2**63 (SQLite keeps it as given); anything else is refused."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < SEED_LIMIT:
        raise ConfigError(f"{flag} must be an integer in 0 <= seed < 2**63, got {value!r}")
    return value


def _objective(study: dict[str, Any]) -> tuple[str | None, str | None]:
    """The metric and direction asked for, checked (a typo is refused before anything runs)."""
    from research.study.objective import Objective

    if study["metric"] is None and study["direction"] is None:
        return None, None
    objective = Objective.make(study["metric"], study["direction"], known=None)  # the trainer's names: later
    return objective.metric, objective.direction


def _where_fixed(key: str, value: Any, flags: dict[str, Any], extras: dict[str, Any], config_path: Path | None
                 ) -> str:
    """A fixed value as the user gave it: by its flag, by --opt, or in the config file."""
    if key in extras.get("opt", {}):  # --model-opt k=v is here as model.k (as --opt model.k=v)
        return f"--model-opt {key[len('model.'):]}={value}" if key.startswith("model.") else f"--opt {key}={value}"
    if flags.get(key) is not None:
        return f"--{key.replace('_', '-')} {value}"
    return f"{key} = {value!r} in {config_path}"


COMMAND_FLAGS = ("plot", "json", "checkpoint", "config")
"""`research train` flags that a study.toml cannot hold: where this run writes (its picture, a
lone run's checkpoint), how it prints, the file itself."""


def build_study_options(flags: dict[str, Any], extras: dict[str, Any], config_path: Path | None,
                        file_keys: Mapping[str, tuple[str, str, str | None]] | None = None) -> StudyOptions:
    """Merge defaults < study.toml < flags into StudyOptions. ``file_keys``: the file's keys
    named after a plugin's flag (``segments``), each with the table its option goes to, the
    option's name and the trainer it picks (None: none), as the flag would."""
    empty = next((key for key in TEXT_KEYS if key != "study" and isinstance(flags.get(key), str)  # a name's rule
                  and not flags[key].strip()), None)
    if empty is not None:  # '' stood for the default: --metric '' ran on val_acc, --store '' on research.db
        raise ConfigError(f"--{empty.replace('_', '-')} is empty; give it a value, or leave the flag out")
    data = read_toml(config_path) if config_path is not None else {}
    for key in COMMAND_FLAGS:  # what this run does with its output: the command line's, not the study's
        if key in data:
            raise ConfigError(f"config file {config_path}: {key} is a flag of the command, not a setting of the "
                              f"study: give --{key} on the command line")
    for key, (table, option, picks) in (file_keys or {}).items():
        if key in data and key not in TABLES:
            if option in data.get(table, {}):
                raise ConfigError(f"config file {config_path}: {key} is given twice, as a key and in [{table}]; "
                                  "give it once")
            data.setdefault(table, {})[option] = data.pop(key)
            if picks is not None:
                data.setdefault("trainer", picks)
    for key, value in data.pop("model_options", {}).items():  # as --model-opt k=v is --opt model.k=v
        if f"model.{key}" in data.get("options", {}):
            raise ConfigError(f"config file {config_path}: model.{key} is given twice, in [options] and as {key} in "
                              "[model_options]; give it once")
        data.setdefault("options", {})[f"model.{key}"] = value
    merged = {**data, **{k: v for k, v in flags.items() if v is not None}}
    tables = {key: dict(data.get(key, {})) for key in TABLES}
    for key in ("sampler_options", "executor_options", "dataset_options", "trainer_options", "strategy_options",
                "prune_options"):
        tables[key].update(extras.get(key, {}))

    space, advice = _space_from(config_path, tables["space"])
    flagged = parse_flags(extras.get("space", []))
    named = set(flagged)
    for name, (param, said) in flagged.items():
        space[name], advice[name] = param.describe(), said  # over the config file's: flags win

    fixed = {**merged, **tables["options"], **extras.get("opt", {})}
    fixed_and_searched = sorted((name, key) for name in space for key in fixed if _same_option(name, key))
    if fixed_and_searched:
        name, key = fixed_and_searched[0]
        searched = f"--space {name}={space[name]}" if name in named else \
            f"[space.{name}] in {config_path}: {space[name]}"
        raise ConfigError(f"{name} is both fixed ({_where_fixed(key, fixed[key], flags, extras, config_path)}) and "
                          f"searched ({searched}); drop one of them")
    given = frozenset(setting for setting, keys in SETTING_KEYS.items()
                      if any(merged.get(key) is not None or tables.get(key) for key in keys) or
                      (setting == "space" and space))
    explicit = frozenset(merged) | {key for key in TABLES if tables[key] or extras.get(key)}
    strategy = merged.pop("strategy", None)
    study = {key: merged.pop(key, STUDY_DEFAULTS.get(key)) for key in STUDY_KEYS if key != "strategy"}
    seed = merged.pop("seed", 0)
    base = {k: v for k, v in merged.items() if k not in TABLES}
    base.update(tables["options"], **extras.get("opt", {}))
    explicit |= set(tables["options"]) | set(extras.get("opt", {}))
    for nested in ("dataset_options", "trainer_options"):
        if tables[nested]:
            base[nested] = tables[nested]
    if strategy is None:
        base["seed"] = seed
    elif "epochs" not in space:  # a searched trial length has no default
        base.setdefault("epochs", STUDY_EPOCHS)
    from_file = frozenset(key for key in data if flags.get(key) is None and not extras.get(key))

    def said(key: str) -> str:  # how an error names a setting: its study.toml key, or its flag
        return f"{key} in {config_path}" if key in from_file else "--" + key.replace("_", "-")

    return StudyOptions(
        strategy=strategy,
        base=base,
        space=space,
        trials=positive_integer("trials", study["trials"], 1),
        workers=_workers(study["workers"], "workers" in explicit),
        sampler=str(study["sampler"]),
        sampler_options=tables["sampler_options"],
        executor=str(study["executor"]),
        executor_options=tables["executor_options"],
        seed=check_seed(seed),
        study=study["study"],
        store=Path(study["store"]),
        strategy_options=tables["strategy_options"],
        prune=str(study["prune"]),
        prune_options=tables["prune_options"],
        given=given,
        metric=_objective(study)[0],
        direction=_objective(study)[1],
        explicit=frozenset(explicit | ({"space"} if space else set())),
        max_minutes=check_budget(said("max_minutes"), study["max_minutes"], float),
        max_epochs=check_budget(said("max_epochs"), study["max_epochs"], int),
        from_study=_text("from_study", study["from_study"]),
        config=config_path,
        from_file=from_file,
        advice=tuple(line for line in advice.values() if line),
    )


def refuse_pruner_options_alone(options: StudyOptions) -> None:
    """A new study's --prune-opt without --prune: options of no pruner. (A stored study's
    pruner is its own: ``resumed`` compares the options with its.)"""
    if options.prune_options and options.prune == NO_PRUNER:
        raise ConfigError("--prune-opt needs a pruner: add --prune NAME (see `research plugins`)")


def _same_option(a: str, b: str) -> bool:
    """Whether two keys may name one option: ``hidden`` and ``model.hidden`` (a qualifier says
    whose option a name is), not ``model.eps`` and ``optimizer.eps``."""
    (qa, _, na), (qb, _, nb) = (key.rpartition(".") for key in (a, b))
    return na == nb and (not qa or not qb or qa == qb)


def _text(name: str, value: Any) -> str | None:
    """A name given as text (None: not given)."""
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise ConfigError(f"{name} must be a study's name, got {value!r}")
    return value


def _workers(value: Any, given: bool) -> int:
    """Trials side by side; 0 (one per core) is the default, not a value to give."""
    if given and not isinstance(value, bool) and isinstance(value, int) and value < 1:
        raise ConfigError(f"workers must be at least 1, got {value}; leave --workers out for the default "
                          "(the study's, else one per core)")
    return positive_integer("workers", value, 1 if given else 0)


def check_budget(name: str, value: Any, kind: type) -> Any:
    """A budget of minutes or epochs: None, or a positive number."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or (kind is int and not float(value).is_integer()) or value <= 0:
        raise ConfigError(f"{name} must be a {'whole' if kind is int else 'finite'} number > 0, got {value!r}"
                          + ("; leave it out for no budget (`research resume NAME --no-budget` lifts a study's)"
                             if isinstance(value, float) and math.isinf(value) else ""))
    return kind(value)


def _same_value(old: Any, new: Any) -> bool:
    """Whether a stored value and a given one are the same: equal, or the same number written
    two ways (``--opt beta1=0.8`` stores "0.8", a study.toml's ``beta1 = 0.8`` the number, and
    ``--opt beta1=8e-1`` is "8e-1")."""
    if old == new:
        return True
    if isinstance(old, str) and isinstance(new, str):
        try:
            return float(old) == float(new)
        except ValueError:
            return False
    text, number = (old, new) if isinstance(old, str) else (new, old)
    if not isinstance(text, str) or isinstance(number, bool) or not isinstance(number, (int, float)):
        return False
    try:
        return float(text) == number
    except ValueError:
        return False


def resumed(options: StudyOptions, stored: dict[str, Any], plugins: Plugins) -> StudyOptions:
    """The options that continue the stored study ``options.study``: its settings wherever the
    flags and the file named nothing, a larger (or smaller) trial budget and strategy options
    as given; a named value that differs from the study's is a one-line error naming it."""
    named = options.explicit
    pruner = {"pruner": stored["prune"]} if stored.get("prune") not in (None, NO_PRUNER) else {}
    plugins.require({**stored, **stored["base"], **pruner}, f"study '{options.study}'")

    def keep(what: str, old: Any, new: Any) -> Any:
        if old is _MISSING or not _same_value(old, json.loads(json.dumps(new))):
            was = f"without {what}" if old is _MISSING else f"without {what} (its default)" if old is None \
                else f"with {what} = {json.dumps(old)}"
            raise ConfigError(f"study '{options.study}' was created {was}, not {what} = {json.dumps(new)}; drop that "
                              "option to continue it, or choose a new --study name")
        return old

    if options.strategy is not None:
        keep("strategy", stored["strategy"], options.strategy)
    base = anchored(stored["base"], plugins)  # a relative path option names what it names here
    for key, value in anchored(options.base, plugins).items():
        if key == "seed" and key in named:  # without --strategy, --seed is read as a run's: here the study's
            keep(key, stored.get("seed"), value)
        elif key in named and key in PLUGIN_TABLES and isinstance(value, Mapping):
            kind, selector = PLUGIN_TABLES[key]  # option by option, an option left out stored as its default
            declared = plugins.options_of(kind, base.get(selector, DEFAULTS[selector])) or {}
            for option, given in value.items():
                spec = declared.get(option)
                default = _MISSING if spec is None or spec.required else spec.default
                keep(f"{selector} option {option}", (base.get(key) or {}).get(option, default), given)
        elif key in named and key in stored["space"] and key not in base:  # "created without lr" said nothing
            raise ConfigError(f"study '{options.study}' searches {key} ({key}={stored['space'][key]}), so it has no "
                              f"fixed {key}; drop that option to continue it, or choose a new --study name")
        elif key in named:  # a plugin left at its default is stored by omission
            keep(key, base.get(key, DEFAULTS.get(key, _MISSING)), value)
    if "space" in named:
        keep("space", stored["space"], options.space)
    if "from_study" in named:  # its box was copied when the study began: the source is not read again
        keep("from_study", stored.get("from_study", _MISSING), options.from_study)
    for key in ("sampler", "sampler_options", "prune", "prune_options", "seed", "metric", "direction"):
        if key in named:
            keep(key, stored.get(key), getattr(options, key))
    return replace(
        options, strategy=stored["strategy"], base=base, space=dict(stored["space"]), sampler=stored["sampler"],
        sampler_options=dict(stored["sampler_options"]), seed=stored["seed"], prune=stored["prune"],
        prune_options=dict(stored["prune_options"]), metric=stored.get("metric"), direction=stored.get("direction"),
        trials=options.trials if "trials" in named else stored["trials"],
        max_minutes=options.max_minutes if "max_minutes" in named else stored.get("max_minutes"),
        max_epochs=options.max_epochs if "max_epochs" in named else stored.get("max_epochs"),
        strategy_options={**stored.get("options", {}), **options.strategy_options},
        from_study=stored.get("from_study"),
        given=options.given & {"trials", "workers", "executor", "budget"}, resumes=True)


_MISSING = object()
PLUGIN_TABLES = {table: (kind, selector) for kind, selector, table, _ in ANCHORED}
"""The options a configuration holds as a table of the plugin it names: the dataset's, the trainer's."""


def with_study_hint(err: UnknownParameterError, alone: bool = False) -> UnknownParameterError:
    """``err`` noting the study setting its unknown name is close to (``trails``: trials), since
    a study.toml's top-level keys are fixed values and study settings both; ``alone``: the run
    is no study (it has no strategy), which the note says too."""
    close = difflib.get_close_matches(err.name, STUDY_KEYS, n=1, cutoff=0.8)
    if not close:
        return err
    return err.noted(f"the study setting '{close[0]}'?" + (" a study needs a strategy too" if alone else ""))

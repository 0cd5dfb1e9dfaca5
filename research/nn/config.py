"""One run's configuration: defaults, checks, and the split into the parts that consume it.

A configuration is a flat dict, so a search space can name any hyperparameter directly
(``lr``, ``beta1``, ``hidden``, ``decay_rate``...). Four keys pick plugins (``dataset``,
``model``, ``optimizer``, ``schedule``); the run's own options are declared by ``run_options``
below, the model's, the optimizer's and the schedule's by their factories, so each key is
routed to the one that declares it and checked by that declaration.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from research.defaults import DEFAULTS
from research.errors import UsageError
from research.options import Option, OptionError, Spec, check, declared, defaults
from research.plugins import Plugins
from research.space import Float, Param

SELECTORS = ("trainer", "dataset", "model", "optimizer", "schedule")
"""Keys that pick a plugin of the kind of the same name."""
NESTED = ("dataset_options", "trainer_options")
"""Keys whose value is a dict of the dataset's (or the trainer's) own options."""
PARTS = ("model", "optimizer", "schedule")
"""Who takes the remaining keys, each by its declaration; a name two of them declare is
written qualified: ``optimizer.eps``, ``model.bn_eps``."""
STUDY_EPOCHS = 15
"""Epochs of a study's trials when the user names none (a lone model trains run_options' 20)."""


def run_options(
    *,
    epochs: Annotated[int, Option("Epochs per model (a study's trials: 15)", min=1, flag="--epochs")] = 20,
    batch_size: Annotated[int, Option("Mini-batch size", min=2, flag="--batch-size")] = 64,
    dtype: Annotated[str, Option("Floating-point type of the model", choices=("float32", "float64"),
                                 flag="--dtype")] = "float32",
    seed: Annotated[int, Option("Seed of the model's initialization and shuffling", min=0, max=2**63 - 1)] = 0,
) -> None:
    """The run's own options: this signature is their declaration (research.options)."""


RUN: dict[str, Spec] = declared(run_options) or {}
RUN_DEFAULTS: dict[str, Any] = {**{kind: DEFAULTS[kind] for kind in SELECTORS}, **defaults(RUN)}
"""Every key a run has before any plugin is chosen, with its default."""


class ConfigError(UsageError):
    """A configuration value or name that cannot be used; one line naming it and the fix."""


class UnknownParameterError(ConfigError):
    """A name no part of the run takes: ``name``, the parts ``chosen``, the ``valid`` names;
    ``note`` follows the name (a caller that knows more says it with ``noted``)."""

    def __init__(self, name: str, chosen: str, valid: list[str], note: str = ""):
        close = difflib.get_close_matches(name, valid, n=1, cutoff=0.8) if not note else []
        note = note or (f" (did you mean '{close[0]}'?)" if close else "")  # epoch, hiden: epochs, hidden
        super().__init__(f"unknown parameter '{name}'{note} for {chosen}; valid names: {', '.join(valid)}")
        self.name, self.chosen, self.valid = name, chosen, valid

    def noted(self, note: str) -> UnknownParameterError:
        return UnknownParameterError(self.name, self.chosen, self.valid, f" ({note})")


@dataclass(frozen=True)
class RunConfig:
    """A validated configuration, split by who consumes each part."""

    run: dict[str, Any]
    model: dict[str, Any]
    optimizer: dict[str, Any]
    schedule: dict[str, Any]
    dataset: dict[str, Any]


def part_options(plugins: Plugins, selected: Mapping[str, str]) -> dict[str, dict[str, Spec] | None]:
    """The declared options of the chosen model, optimizer and schedule (None: takes any)."""
    return {part: plugins.options_of(part + "s", selected[part]) for part in PARTS}


def route(key: str, owners: Mapping[str, Mapping[str, Spec] | None], selected: Mapping[str, str]) -> tuple[str, str]:
    """(part, option name) that takes ``key``: by its qualifier (``optimizer.eps``), else the
    one part that declares it, else a part that takes any option. Ambiguous and unknown names
    are ConfigErrors listing the fix."""
    prefix, dot, name = key.partition(".")
    if dot:
        if prefix not in owners:
            raise ConfigError(f"unknown qualifier '{prefix}' in '{key}'; qualify with one of: {', '.join(owners)}")
        return prefix, name
    declaring = [part for part, specs in owners.items() if specs is not None and key in specs]
    if len(declaring) > 1:
        both = " and ".join(f"{part} '{selected[part]}'" for part in declaring)
        raise ConfigError(f"'{key}' is an option of {both}; write {' or '.join(f'{p}.{key}' for p in declaring)}")
    if declaring:
        return declaring[0], key
    open_ended = [part for part in ("optimizer", "schedule", "model") if owners[part] is None]
    if open_ended:
        return open_ended[0], key
    valid = sorted({*RUN_DEFAULTS, *NESTED, *(n for specs in owners.values() for n in specs or ())})
    chosen = ", ".join(f"{part} '{selected[part]}'" for part in PARTS)
    raise UnknownParameterError(key, chosen, valid)


def resolve(config: Mapping[str, Any], plugins: Plugins) -> RunConfig:
    """Fill defaults, route each key to the declaration it belongs to and check its value.

    Unknown keys are errors that list every name the chosen plugins understand.
    """
    for key in NESTED:
        if not isinstance(config.get(key) or {}, Mapping):
            raise ConfigError(f"{key} must be a dict of option names to values, got {config[key]!r}")
    merged = {**RUN_DEFAULTS, **{k: v for k, v in config.items() if k not in NESTED}}
    selected = {kind: str(merged.pop(kind)) for kind in SELECTORS}
    run = check("training", RUN, {name: merged.pop(name) for name in RUN})
    dataset = plugins.check_options("datasets", selected["dataset"], dict(config.get("dataset_options") or {}))
    owners = part_options(plugins, selected)
    parts: dict[str, dict[str, Any]] = {part: {} for part in PARTS}
    keys: dict[tuple[str, str], str] = {}  # the key that gave each option
    for key, value in merged.items():
        part, name = route(key, owners, selected)
        if (part, name) in keys:  # hidden and model.hidden: one would silently win
            first = keys[part, name]
            if _same_value(plugins, part, selected[part], name, merged[first], value):
                continue  # a trial's stored configuration keeps the value given and its effective one
            raise ConfigError(f"{name} is given twice, as {first} = {merged[first]!r} and as {key} = {value!r}; "
                              "give it once")
        keys[part, name] = key
        parts[part][name] = value
    checked = {part: plugins.check_options(part + "s", selected[part], parts[part]) for part in PARTS}
    return RunConfig(run={**selected, **run}, dataset=dataset, **checked)


def _same_value(plugins: Plugins, part: str, chosen: str, name: str, first: Any, second: Any) -> bool:
    """Whether two spellings of one option (``bn_momentum`` and ``model.bn_momentum``) give it
    one value once converted as the option declares (``0.05`` and ``'0.05'``)."""
    if first == second or str(first) == str(second):
        return True
    try:
        converted = [plugins.check_options(part + "s", chosen, {name: value})[name] for value in (first, second)]
    except Exception:  # a value the option refuses: refused as given twice, then as itself
        return False
    return bool(converted[0] == converted[1])


def flat(parts: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Named values of several parts as one flat configuration; a name two parts have is
    written qualified (``optimizer.eps``), as ``resolve`` reads it back."""
    seen: dict[str, int] = {}
    for values in parts.values():
        for name in values:
            seen[name] = seen.get(name, 0) + 1
    return {(f"{part}.{name}" if seen[name] > 1 else name): value
            for part, values in parts.items() for name, value in values.items()}


def check_draws(name: str, param: Param, spec: Spec, owner: str) -> None:
    """Every value the space can draw for ``name`` is one ``spec`` accepts: each choice, or both
    ends of a range (an option's range is an interval). Refused before the study starts, not
    by every trial that draws it."""
    if spec.type is int and isinstance(param, Float):
        # the whole numbers the range holds that the option takes (0.5..3 suggested int:0.5..3, itself refused)
        option = spec.option
        lows, highs = [math.ceil(param.low)], [math.floor(param.high)]
        if option is not None:
            lows += [math.ceil(option.min)] if option.min is not None else []
            lows += [math.floor(option.above) + 1] if option.above is not None else []
            highs += [math.floor(option.max)] if option.max is not None else []
            highs += [math.ceil(option.below) - 1] if option.below is not None else []
        low, high = max(lows), min(highs)
        scale = "log:" if param.scale == "log" and low > 0 else ""
        fix = f"write {name}=int:{scale}{low}..{high}" if low < high else "give a range of whole numbers it takes"
        raise ConfigError(f"{name} takes whole numbers but the space draws any number in {param.describe()}; {fix}")
    values = getattr(param, "values", None)
    for value in (param.low, param.high) if values is None else values:
        try:
            spec.convert(owner, value)
        except OptionError as err:
            raise ConfigError(f"the space's {name}={param.describe()} draws values it cannot take: {err}; "
                              "change the space") from None

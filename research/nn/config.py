"""One run's configuration: defaults, checks, and the split into the parts that consume it.

A configuration is a flat dict, so a search space can name any hyperparameter directly
(``lr``, ``beta1``, ``hidden``, ``decay_rate``...). Three keys pick plugins (``dataset``,
``optimizer``, ``schedule``); the run's own options are declared by ``run_options`` below,
the model's by its class, the optimizer's and the schedule's by their factories, so each
key is routed to the one that declares it and checked by that declaration.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from research.defaults import DEFAULTS
from research.errors import UsageError
from research.nn.model import MLP
from research.options import Option, Spec, check, declared, defaults
from research.plugins import Plugins

SELECTORS = ("dataset", "optimizer", "schedule")
"""Keys that pick a plugin of the kind of the same name."""
NESTED = ("dataset_options",)
"""Keys whose value is a dict of the dataset's own options."""
MODEL_HOST_ARGUMENTS = ("dtype", "rng")
"""Model arguments the trainer passes from the run (not options of the model)."""
STUDY_EPOCHS = 15
"""Epochs of a study's trials when the user names none (a lone model trains run_options' 20)."""


def run_options(
    *,
    epochs: Annotated[int, Option("Epochs per model (a study's trials: 15)", min=1, flag="--epochs")] = 20,
    batch_size: Annotated[int, Option("Mini-batch size", min=2, flag="--batch-size")] = 64,
    dtype: Annotated[str, Option("Floating-point type of the model", choices=("float32", "float64"),
                                 flag="--dtype")] = "float32",
    seed: Annotated[int, Option("Seed of the model's initialization and shuffling", min=0)] = 0,
) -> None:
    """The run's own options: this signature is their declaration (research.options)."""


RUN: dict[str, Spec] = declared(run_options) or {}
MODEL: dict[str, Spec] = {n: s for n, s in (declared(MLP) or {}).items() if n not in MODEL_HOST_ARGUMENTS}
RUN_DEFAULTS: dict[str, Any] = {**{kind: DEFAULTS[kind] for kind in SELECTORS}, **defaults(RUN), **defaults(MODEL)}
"""Every key a run has before any plugin is chosen, with its default."""


class ConfigError(UsageError):
    """A configuration value or name that cannot be used; one line naming it and the fix."""


@dataclass(frozen=True)
class RunConfig:
    """A validated configuration, split by who consumes each part."""

    run: dict[str, Any]
    model: dict[str, Any]
    optimizer: dict[str, Any]
    schedule: dict[str, Any]
    dataset: dict[str, Any]


def resolve(config: Mapping[str, Any], plugins: Plugins) -> RunConfig:
    """Fill defaults, route each key to the declaration it belongs to and check its value.

    Unknown keys are errors that list every name the chosen plugins understand.
    """
    merged = {**RUN_DEFAULTS, **{k: v for k, v in config.items() if k not in NESTED}}
    selected = {kind: str(merged.pop(kind)) for kind in SELECTORS}
    run = check("training", RUN, {name: merged.pop(name) for name in RUN})
    model = check(MLP.owner_name(), MODEL, {name: merged.pop(name) for name in MODEL})
    dataset = plugins.check_options("datasets", selected["dataset"], dict(config.get("dataset_options") or {}))
    optimizer_names = plugins.options_of("optimizers", selected["optimizer"])
    schedule_names = plugins.options_of("schedules", selected["schedule"])

    optimizer: dict[str, Any] = {}
    schedule: dict[str, Any] = {}
    for key, value in merged.items():
        if optimizer_names is None or key in optimizer_names:
            optimizer[key] = value
        elif schedule_names is None or key in schedule_names:
            schedule[key] = value
        else:
            valid = sorted({*RUN_DEFAULTS, *NESTED, *(optimizer_names or ()), *(schedule_names or ())})
            raise ConfigError(
                f"unknown parameter '{key}' for optimizer '{selected['optimizer']}' and schedule "
                f"'{selected['schedule']}'; valid names: {', '.join(valid)}"
            )
    optimizer = plugins.check_options("optimizers", selected["optimizer"], optimizer)
    schedule = plugins.check_options("schedules", selected["schedule"], schedule)
    return RunConfig(run={**selected, **run}, model=model, optimizer=optimizer, schedule=schedule, dataset=dataset)

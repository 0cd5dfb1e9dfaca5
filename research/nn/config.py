"""One run's configuration: defaults, validation, and the split into model, optimizer and
schedule parts.

A configuration is a flat dict, so a search space can name any hyperparameter directly
(``lr``, ``beta1``, ``hidden``, ``decay_rate``...). Structural keys pick the plugins.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from research.plugins import Plugins

# Keys the engine itself understands, with their defaults.
RUN_DEFAULTS: dict[str, Any] = {
    "dataset": "digits",
    "optimizer": "adam",
    "schedule": "constant",
    "epochs": 20,
    "batch_size": 64,
    "hidden": 128,
    "layers": 2,
    "batchnorm": True,
    "dtype": "float32",
    "seed": 0,
    "bn_momentum": 0.1,
}
NESTED = ("dataset_options",)


class ConfigError(ValueError):
    """A configuration value or name that cannot be used; one line naming it and the fix."""


@dataclass(frozen=True)
class RunConfig:
    """A validated configuration, split by who consumes each part."""

    run: dict[str, Any]
    optimizer: dict[str, Any]
    schedule: dict[str, Any]
    dataset: dict[str, Any]


def option_names(factory: Callable[..., Any], skip: int = 0) -> set[str] | None:
    """Keyword options a plugin factory accepts (None when it takes **kwargs: anything goes)."""
    try:
        params = list(inspect.signature(factory).parameters.values())[skip:]
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)}


def _integer(key: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ConfigError(f"{key} must be an integer >= {low}, got {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"{key} must be an integer >= {low}, got {value!r}") from None
    if number != int(number) or number < low:
        raise ConfigError(f"{key} must be an integer >= {low}, got {value!r}")
    return int(number)


def _boolean(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{key} must be true or false, got {value!r}")


def _check_run(run: dict[str, Any]) -> None:
    run["epochs"] = _integer("epochs", run["epochs"], 1)
    run["batch_size"] = _integer("batch_size", run["batch_size"], 2)
    run["hidden"] = _integer("hidden", run["hidden"], 1)
    run["layers"] = _integer("layers", run["layers"], 0)
    run["seed"] = _integer("seed", run["seed"], 0)
    run["batchnorm"] = _boolean("batchnorm", run["batchnorm"])
    if run["dtype"] not in ("float32", "float64"):
        raise ConfigError(f"dtype must be float32 or float64, got {run['dtype']!r}")
    try:
        momentum = float(run["bn_momentum"])
    except (TypeError, ValueError):
        momentum = -1.0
    if not 0.0 <= momentum <= 1.0:
        raise ConfigError(f"bn_momentum must be a number in [0, 1], got {run['bn_momentum']!r}")
    run["bn_momentum"] = momentum


def resolve(config: Mapping[str, Any], plugins: Plugins) -> RunConfig:
    """Fill defaults, check every value and route each key to its consumer.

    Unknown keys are errors that list every name the chosen plugins understand.
    """
    merged = {**RUN_DEFAULTS, **{k: v for k, v in config.items() if k not in NESTED}}
    run = {key: merged.pop(key) for key in RUN_DEFAULTS}
    dataset = dict(config.get("dataset_options") or {})
    dataset_names = option_names(plugins.get("datasets", run["dataset"]))
    unknown = sorted(set(dataset) - dataset_names) if dataset_names is not None else []
    if unknown:
        raise ConfigError(
            f"unknown option '{unknown[0]}' for dataset '{run['dataset']}'; valid options: "
            f"{', '.join(sorted(dataset_names)) or 'none'}"
        )
    optimizer_names = option_names(plugins.get("optimizers", run["optimizer"]), skip=1)
    schedule_names = option_names(plugins.get("schedules", run["schedule"]))
    _check_run(run)

    optimizer: dict[str, Any] = {}
    schedule: dict[str, Any] = {}
    for key, value in merged.items():
        if optimizer_names is None or key in optimizer_names:
            optimizer[key] = value
        elif schedule_names is None or key in schedule_names:
            schedule[key] = value
        else:
            valid = sorted(set(RUN_DEFAULTS) | (optimizer_names or set()) | (schedule_names or set()))
            raise ConfigError(
                f"unknown parameter '{key}' for optimizer '{run['optimizer']}' and schedule "
                f"'{run['schedule']}'; valid names: {', '.join(valid)}"
            )
    return RunConfig(run=run, optimizer=optimizer, schedule=schedule, dataset=dataset)

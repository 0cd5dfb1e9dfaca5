"""The unit a strategy drives: a trainer plugin, one epoch at a time.

A trainer plugin (research.contracts.Trainer) is built from a trial's configuration and
trains one more epoch each time it is asked, returning that epoch's metrics; it saves and
restores its whole state as arrays. ``make_trainer`` builds the one a configuration names
(``trainer``, default ``research``: research's own loop on model plugins) and, for a
trainer that keeps no books of its own, wraps it in ``Driven``, which counts the epochs,
keeps the curve, notices divergence and saves all that with the trainer's state. Workers,
babysit and a lone run all drive the result the same way::

    trainer = make_trainer(config, plugins)
    while trainer.epoch < trainer.epochs and not trainer.diverged:
        metrics = trainer.train_epoch()
"""

from __future__ import annotations

import inspect
import math
import reprlib
from collections.abc import Callable, Iterable, Mapping
from os import PathLike
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from research.contracts import RunResult, TrialInfo, is_number, not_a_number
from research.defaults import DEFAULTS
from research.errors import UsageError, call_plugin
from research.nn import checkpoint
from research.nn.config import RUN, RUN_DEFAULTS
from research.plugins import Plugins, load_plugins
from research.study.provenance import anchored, data_changed, file_digests

BOOKS = ("epoch", "history", "diverged", "epochs")
"""What a trainer that keeps its own books has (the research trainer does)."""
OPTIONS = "trainer_options"
"""The configuration key holding the trainer's own options."""
PLUMBING = ("trainer", OPTIONS, "seed", "epochs")
"""Configuration keys that are never a trainer's option, whatever it declares."""


RESERVED_METRICS = ("epoch", "trial", "status", "rolled_back")
"""Names of an epoch's own columns in the store and its exports: a metric so named would
overwrite them (every exported row said epoch 3)."""


def trainer_name(config: Mapping[str, Any]) -> str:
    return str(config.get("trainer", DEFAULTS["trainer"]))


def trainer_options(config: Mapping[str, Any]) -> dict[str, Any]:
    """The options ``config`` gives its trainer (``trainer_options``), which must be a dict."""
    options = config.get(OPTIONS) or {}
    if not isinstance(options, Mapping):
        raise UsageError(f"{OPTIONS} must be a dict of option names to values, got {options!r}")
    return dict(options)


def options_given(config: Mapping[str, Any], plugins: Plugins) -> dict[str, Any]:
    """The trainer's options: ``trainer_options``, and each option it declares that the
    configuration sets by name (a searched ``rate``, or ``--opt rate=0.3``), as a model's
    options are set; one given both ways is refused."""
    options = trainer_options(config)
    declared = plugins.options_of("trainers", trainer_name(config)) or {}
    named = {key: config[key] for key in declared if key in config and key not in PLUMBING}
    both = sorted(set(named) & set(options))
    if both:
        raise UsageError(f"trainer '{trainer_name(config)}': {both[0]} is given twice, as a trainer option "
                         f"({both[0]}={options[both[0]]!r}) and by name ({both[0]}={named[both[0]]!r}); drop one")
    return {**options, **named}


def configured_epochs(config: Mapping[str, Any]) -> int:
    """The epochs a configuration asks for (the run's default when it names none), checked."""
    return RUN["epochs"].convert(f"trainer '{trainer_name(config)}'", config.get("epochs", RUN_DEFAULTS["epochs"]))


def make_trainer(config: Mapping[str, Any], plugins: Plugins) -> Any:
    """The trainer ``config`` names, built with its options, ready to be driven (it has
    ``epoch``, ``history``, ``diverged``, ``epochs``, ``train_epoch``, ``tunable``,
    ``set_hyper``, ``state``, ``load_state``, ``save``, ``restore``, ``config``, ``close``)."""
    name = trainer_name(config)
    factory = plugins.get("trainers", name)
    host = {"plugins": plugins} if "plugins" in _parameters(factory) else {}
    trainer = plugins.build("trainers", name, dict(config), **host, **options_given(config, plugins))
    if all(hasattr(trainer, attribute) for attribute in BOOKS):
        return trainer
    return Driven(trainer, config, plugins.owner("trainers", name))


def diverged_trainer(owner: str, plugin: str, reported: str = "a loss that is NaN or infinite") -> str:
    """Why a trainer plugin's run stopped as diverged: its loop reported ``reported``. It has
    hyperparameters of its own (it may not read --lr at all), so the line names it, not a flag."""
    return (f"{owner} (plugin '{plugin}') reported {reported}, so the run stopped as diverged; its own settings or "
            "code gave that loss")


def divergence(trainer: Any, config: Mapping[str, Any], plugins: Plugins) -> str:
    """Why ``trainer``'s run diverged, with the fix that fits: what it said when it diverged (a
    checkpoint keeps it); for a checkpoint that predates that, a smaller --lr with research's own
    loop, else the trainer named."""
    said = getattr(trainer, "divergence", None)
    if said:
        return said
    name = trainer_name(config)
    if name == DEFAULTS["trainer"]:
        return "the loss became NaN or infinite: try a smaller --lr"
    return diverged_trainer(f"trainer '{name}'", plugins.owner("trainers", name))


def declared_metrics(plugins: Plugins, config: Mapping[str, Any]) -> tuple[str, ...] | None:
    """The metric names the trainer ``config`` names declares (its factory's ``metrics``); None
    when it does not say."""
    known = getattr(plugins.get("trainers", trainer_name(config)), "metrics", None)
    return tuple(known) if known is not None else None


def _parameters(factory: Any) -> set[str]:
    try:
        return set(inspect.signature(factory).parameters)
    except (TypeError, ValueError):
        return set()


class Driven:
    """A trainer that keeps no books, driven epoch by epoch: the epoch count, the curve, and
    divergence (a loss that is not finite) are kept here and saved with its state."""

    def __init__(self, trainer: Any, config: Mapping[str, Any], plugin: str):
        self.trainer = trainer
        self.owner = f"trainer '{trainer_name(config)}'"
        self.plugin = plugin  # the plugin that registered it, named when its code fails
        self.epochs = configured_epochs(config)
        self.config = dict(getattr(trainer, "config", None) or config)
        self.epoch = 0
        self.history: list[dict[str, float]] = []
        self.diverged = False
        self.divergence: str | None = None  # why it diverged (set with diverged)

    def train_epoch(self) -> dict[str, float]:
        """Train one more epoch; its metrics must be a dict of numbers (one line naming the
        trainer otherwise); what its code raises is reported as that plugin's."""
        metrics = call_plugin(self.named, f"epoch {self.epoch + 1}", lambda: self.trainer.train_epoch())
        if not isinstance(metrics, Mapping) or not metrics:
            got = "an empty dict" if isinstance(metrics, Mapping) else reprlib.repr(metrics)
            raise UsageError(f"{self.owner}: train_epoch must return a dict of metrics by name, such as "
                             f"{{'val_acc': 0.9}}, got {got}")
        checked: dict[str, float] = {}
        for name, value in metrics.items():
            if not isinstance(name, str):
                raise UsageError(f"{self.owner}: train_epoch returned a metric named {reprlib.repr(name)}; name each "
                                 "metric with a string, such as 'val_acc'")
            if not is_number(value):
                raise UsageError(f"{self.owner}: {not_a_number(name, value)}")
            if name in RESERVED_METRICS:
                raise UsageError(f"{self.owner}: metric {name!r} has the name of an epoch's own column in the store "
                                 f"and its exports ({', '.join(RESERVED_METRICS)}); report it under another name")
            checked[name] = float(value)
        self.epoch += 1
        self.history.append(checked)
        losses = [f"{name}={value}" for name, value in checked.items() if name.endswith("loss") and
                  not math.isfinite(value)]
        if losses:
            self.diverged = True
            self.divergence = diverged_trainer(self.owner, self.plugin, f"{', '.join(losses)} at epoch {self.epoch}")
        return checked

    def tunable(self) -> dict[str, Any]:
        """What may change between epochs (nothing, unless the trainer says)."""
        tunable = getattr(self.trainer, "tunable", None)
        return dict(self._plugin_call("tunable", tunable)) if tunable is not None else {}

    def set_hyper(self, name: str, value: Any) -> None:
        """Change ``name`` to ``value``; the trainer's ValueError refuses it (babysit records the
        refusal), anything else it raises is its plugin's bug, named."""
        if not hasattr(self.trainer, "set_hyper"):
            raise UsageError(f"{self.owner} cannot change '{name}' while training (it has no set_hyper)")
        self._plugin_call("set_hyper", self.trainer.set_hyper, name, value)

    def _plugin_call(self, method: str, function: Any, *args: Any) -> Any:
        """``function(*args)`` of the trainer, what it raises but a ValueError or research's own
        errors reported as its plugin's."""
        return call_plugin(self.named, method, function, *args, passes=(ValueError,))

    @property
    def named(self) -> str:
        """Whose code the trainer is, as a failure line says it: ``plugin 'x': trainer 'y'``."""
        return f"plugin '{self.plugin}': {self.owner}"

    def state(self) -> dict[str, np.ndarray]:
        """The trainer's state and the books, as arrays a checkpoint holds (no pickled objects:
        one that needs them is refused now, by name, not when a resume cannot read it)."""
        state = self._plugin_call("state", self.trainer.state)
        if not isinstance(state, Mapping):
            raise UsageError(f"{self.owner}: state() must return a dict of arrays, got {type(state).__name__}")
        arrays = {}
        for key, value in state.items():
            array = np.asarray(value)
            if not isinstance(key, str) or array.dtype.hasobject:
                raise UsageError(f"{self.owner}: state() entry {key!r} ({type(value).__name__}) is not an array of "
                                 "numbers, booleans or text; store arrays only (a checkpoint holds no objects)")
            arrays[f"trainer.{key}"] = array
        arrays["meta"] = checkpoint.pack_json({"epoch": self.epoch, "history": self.history,
                                               "diverged": self.diverged, "divergence": self.divergence,
                                               "config": self.config})
        return arrays

    def load_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        meta = checkpoint.unpack_json(arrays["meta"])
        # Its ValueError says the state does not fit (a checkpoint of another model); anything else is its bug.
        self._plugin_call("load_state", self.trainer.load_state,
                          {k[len("trainer."):]: v for k, v in arrays.items() if k.startswith("trainer.")})
        self.epoch, self.history, self.diverged = meta["epoch"], meta["history"], meta["diverged"]
        self.divergence = meta.get("divergence")  # why, so a resumed run gives the same advice (older: none)

    def save(self, path: str | Path) -> None:
        checkpoint.save(path, self.state())

    def restore(self, path: str | Path) -> None:
        checkpoint.restore_run(self, path, self.config)

    def export(self) -> dict[str, Any]:
        """The trainer's model for research.nn.exported (its own ``export()``)."""
        export = getattr(self.trainer, "export", None)
        if export is None:
            raise UsageError(f"{self.owner} cannot export a model (it has no export()); its own files hold its model")
        return dict(export())

    def close(self) -> None:
        close = getattr(self.trainer, "close", None)
        if close is not None:
            close()


EpochCallback = Callable[[int, dict[str, float]], None]


def run_trainer(
    trainer: Any,
    trial: TrialInfo,
    plugins: Plugins,
    *,
    on_epoch: EpochCallback | None = None,
    checkpoint_path: str | Path | None = None,
    files: Mapping[str, str] | None = None,
) -> RunResult:
    """Train until the configured number of epochs (or divergence), notifying observers.

    With ``checkpoint_path`` a checkpoint is written after every epoch, so an interrupted
    run resumes from its last finished epoch (:func:`resume_run`); it records ``files``, the
    digests of the data files the run reads. Ctrl-C ends the run as ``interrupted``, an
    exception as ``failed`` (observers hear of both; the exception goes on).
    """
    epochs = trainer.epochs
    plugins.notify("on_trial_start", trial=trial)
    status, error = "running", None
    try:
        while trainer.epoch < epochs and not trainer.diverged:
            metrics = trainer.train_epoch()
            if checkpoint_path is not None:
                checkpoint.save(checkpoint_path, trainer.state(), files=files)
            if on_epoch is not None:
                on_epoch(trainer.epoch, metrics)
            plugins.notify("on_epoch_end", trial=trial, epoch=trainer.epoch, metrics=metrics)
        status = "diverged" if trainer.diverged else "finished"
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    except Exception as err:
        status, error = "failed", f"{type(err).__name__}: {err}"
        raise
    finally:
        result = RunResult(status=status, history=list(trainer.history), config=trainer.config, error=error)
        plugins.notify("on_trial_end", trial=trial, result=result)
        trainer.close()
    return result


def resume_run(trainer: Any, path: str | Path, files: Mapping[str, str]) -> None:
    """Restore a lone run's ``trainer`` from its own checkpoint at ``path``. Refused, before
    anything is loaded, when a data file it was trained on has changed since (``files``: the
    digests this run reads, ``file_digests``): its curve would go on with another dataset."""
    try:
        changed = data_changed({"files": checkpoint.recorded_files(path)}, {"files": files},
                               since=f"checkpoint {checkpoint.shown(path)} was written")
        if changed:
            raise checkpoint.CheckpointError(f"{changed}: restore the file, or delete the checkpoint to start over "
                                             "on the new one")
        trainer.restore(path)
    except checkpoint.CheckpointProblem as problem:
        if "delete it" in problem.reason:
            raise
        raise checkpoint.CheckpointError(f"{problem}; restore it, or start over with another checkpoint path "
                                         "(delete this file only if it is this run's own)") from None


def train(
    config: Mapping[str, Any] | None = None,
    *,
    plugins: Iterable[ModuleType | object] = (),
    on_epoch: EpochCallback | None = None,
    checkpoint_path: str | Path | None = None,
    resume: bool = False,
    **options: Any,
) -> RunResult:
    """Train one model and return its result (``result.history`` is the learning curve).

    ``config`` and keyword ``options`` are merged (options win), e.g.
    ``research.train(optimizer="adam", lr=0.01, layers=2, hidden=64, epochs=20)``; a
    ``trainer`` key names another trainer plugin (or ``package.module:Class``), whose
    options go in ``trainer_options``.
    ``plugins`` adds plugin modules for this call, next to the installed ones. With
    ``resume=True`` and an existing ``checkpoint_path`` the run continues from it; without it an
    existing checkpoint is refused rather than written over. A checkpoint path that cannot be
    written is refused before training, as ``--checkpoint`` is. With a checkpoint, a relative
    path option (the csv dataset's ``path``) is made absolute, as ``--checkpoint`` makes it: a
    checkpoint written by either resumes in the other, from any directory.
    """
    from research.report.files import check_writable  # here: research.report imports this module (worker)

    if not isinstance(config or {}, Mapping):
        raise UsageError(f"config must be a dict of names to values, got {type(config).__name__}; "
                         "e.g. research.train({'lr': 0.1}) or research.train(lr=0.1)")
    if checkpoint_path is not None:
        if not isinstance(checkpoint_path, (str, PathLike)):
            raise UsageError(f"checkpoint_path must be a file path (a str or pathlib.Path), got "
                             f"{type(checkpoint_path).__name__}; e.g. checkpoint_path='run.npz'")
        check_writable(checkpoint_path, "checkpoint_path")
        if not resume and Path(checkpoint_path).exists():  # training anew would write over it
            raise UsageError(f"checkpoint {checkpoint_path} exists: pass resume=True to continue it, or delete it "
                             "(or choose another checkpoint_path) to start over")
    elif resume:
        raise UsageError("resume=True needs checkpoint_path, the checkpoint to continue from; e.g. "
                         "research.train(..., checkpoint_path='run.npz', resume=True)")
    loaded = load_plugins(plugins)
    base = {**(config or {}), **options}
    if checkpoint_path is not None:  # paths made absolute, as --checkpoint's: a checkpoint of either resumes in both
        base = anchored(base, loaded)
    trainer = make_trainer(base, loaded)
    files = file_digests(base, loaded) if checkpoint_path is not None else None
    if resume and checkpoint_path is not None and Path(checkpoint_path).exists():
        resume_run(trainer, checkpoint_path, files)
    trial = TrialInfo(study=None, number=0, config=trainer.config)
    return run_trainer(trainer, trial, loaded, on_epoch=on_epoch, checkpoint_path=checkpoint_path, files=files)

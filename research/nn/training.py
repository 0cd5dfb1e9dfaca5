"""One training run: mini-batches, learning-rate schedule, per-epoch metrics, checkpoints.

A ``Trainer`` owns everything a run needs (data, model, optimizer, schedule, RNG) and
advances one epoch at a time, so strategies can stop, inspect, change a hyperparameter,
checkpoint or roll back between epochs. The same seed gives the same curve value for
value; a checkpoint restores the exact continuation.
"""

from __future__ import annotations

import math
import reprlib
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import ThreadpoolController

from research.contracts import is_number
from research.errors import PluginFailure, ResearchError, UsageError, call_plugin, raised
from research.nn import checkpoint
from research.nn.config import (
    NESTED,
    RUN,
    RUN_DEFAULTS,
    SELECTORS,
    ConfigError,
    RunConfig,
    UnknownParameterError,
    check_draws,
    flat,
    part_options,
    resolve,
    route,
)
from research.plugins import Plugins
from research.space import Choice, Int, Param


@lru_cache(maxsize=1)
def _thread_pools() -> tuple:
    """This process's BLAS/OpenMP libraries, found once: finding them costs about a
    millisecond, which ThreadpoolController.limit() would pay on every epoch."""
    return tuple(ThreadpoolController().lib_controllers)


@contextmanager
def _one_blas_thread() -> Iterator[None]:
    """BLAS/OpenMP on one thread inside the block, the previous counts restored after."""
    pools = _thread_pools()
    before = [pool.num_threads for pool in pools]
    for pool in pools:
        pool.set_num_threads(1)
    try:
        yield
    finally:
        for pool, count in zip(pools, before):
            pool.set_num_threads(count)


def _with_defaults(plugins: Plugins, kind: str, name: str, given: Mapping[str, Any]) -> dict[str, Any]:
    """A plugin's options as it ran: the declared defaults, then the ``given`` values."""
    specs = plugins.options_of(kind, name) or {}
    defaults = {n: spec.default for n, spec in specs.items() if not spec.required and spec.default is not None}
    return {**defaults, **given}


def _selections(when: Any, space: Mapping[str, Param], fixed: dict[str, str]) -> list[dict[str, str]]:
    """The plugin choices a parameter meets: for a searched one that exists only with some
    plugins (``when``: ``beta2=... if optimizer=adam,adamw``) each of those; otherwise every
    plugin choice the space searches (``optimizer=adam,momentum``), or the fixed ones."""
    if when is not None and when.parent in SELECTORS and when.op == "=":
        return [{**fixed, when.parent: str(value)} for value in when.values]
    selections = [fixed]
    for kind in SELECTORS:
        if isinstance(space.get(kind), Choice):
            selections = [{**s, kind: str(value)} for s in selections for value in space[kind].values]
    return selections


def _check_fixed_across_choices(fixed: Mapping[str, Any], space: Mapping[str, Param], selection: dict[str, str],
                                plugins: Plugins) -> None:
    """A fixed option (``--opt beta2=0.99``) of a plugin the space chooses among must be one that
    every choice takes: checked against the default choice alone, it failed the trials that drew
    another (momentum has no beta2), and --retry-failed could never mend them."""
    searched = [kind for kind in SELECTORS if isinstance(space.get(kind), Choice)]
    if not searched:
        return
    choices = [(selected, part_options(plugins, selected)) for selected in _selections(None, space, selection)]
    for name, value in fixed.items():
        if name in RUN or name in SELECTORS or name in NESTED:
            continue
        for selected, owners in choices:
            try:
                route(name, owners, selected)
            except UnknownParameterError:
                kind = searched[0]  # the choice it meets
                raise ConfigError(f"{name}={value} is fixed for every trial, but {kind} '{selected[kind]}', which the "
                                  f"space searches, has no {name}; give it only where it exists, e.g. --space "
                                  f"'{name}={value} if {_choosing(selection, space, plugins, name)}'") from None


def _choosing(fixed: dict[str, str], space: Mapping[str, Param], plugins: Plugins, name: str) -> str:
    """A condition naming the choices of the first searched plugin kind under which ``name``
    is understood."""
    kind = next(k for k in SELECTORS if isinstance(space.get(k), Choice))
    takers = []
    for value in space[kind].values:
        selected = {**fixed, kind: str(value)}
        try:
            route(name, part_options(plugins, selected), selected)
            takers.append(str(value))
        except ConfigError:
            pass
    return f"{kind}={','.join(takers) or '...'}"



MAX_PROBED = 32  # an integer range of at most this many values is built value by value


def _probes(param: Param) -> list[Any]:
    """The values of a searched model option the model is built with before a study starts:
    each choice; every integer of a short integer range, else both ends and their neighbours
    (a model may refuse a value inside a range it declares: an even kernel_size); both ends
    of a real range."""
    values = getattr(param, "values", None)
    if values is not None:
        return list(values)
    if isinstance(param, Int):
        if param.high - param.low < MAX_PROBED:
            return list(range(param.low, param.high + 1))
        return [param.low, param.low + 1, param.high - 1, param.high]
    return [param.low, param.high]

class Trainer:
    """A model being trained, advanced one epoch at a time: the ``research`` trainer plugin
    (research.contracts.Trainer), with the model, optimizer, schedule and dataset plugins the
    configuration names. It keeps its own books (``epoch``, ``history``, ``diverged``)."""

    metrics = ("val_acc", "val_loss", "train_acc", "train_loss", "test_acc", "test_loss", "lr", "seconds")

    def __init__(self, config: Mapping[str, Any], plugins: Plugins):
        self.plugins = plugins
        self.resolved: RunConfig = resolve(config, plugins)
        run = self.resolved.run
        dtype = np.dtype(run["dtype"])
        dataset = plugins.build("datasets", run["dataset"], **self.resolved.dataset)
        self.x_train = np.ascontiguousarray(dataset.x_train, dtype=dtype)
        self.y_train = np.ascontiguousarray(dataset.y_train, dtype=np.int64)
        self.x_val = np.ascontiguousarray(dataset.x_val, dtype=dtype)
        self.y_val = np.ascontiguousarray(dataset.y_val, dtype=np.int64)
        self.x_test = np.ascontiguousarray(dataset.x_test, dtype=dtype) if dataset.has_test else None
        self.y_test = np.ascontiguousarray(dataset.y_test, dtype=np.int64) if dataset.has_test else None
        self.dataset = dataset
        init_seed, shuffle_seed = np.random.SeedSequence(run["seed"]).spawn(2)
        self.model = plugins.build("models", run["model"], dataset.input_shape, dataset.n_classes, dtype=dtype,
                                   rng=np.random.default_rng(init_seed), **self.resolved.model)
        # Checked once here, so that every batch can skip the checks (checked=True below).
        self.x_train, self.y_train = self.model.check_data(self.x_train, self.y_train)
        self.optimizer = plugins.build("optimizers", run["optimizer"], self.model.params, **self.resolved.optimizer)
        self.schedule = plugins.build("schedules", run["schedule"], **self.resolved.schedule)
        self.base_lr = float(self.optimizer.hyper["lr"])
        # Record the effective values (defaults filled, strings converted by the plugins).
        model = _with_defaults(plugins, "models", run["model"], self.resolved.model)
        self.config = {**run, **flat({"model": model, "optimizer": self.optimizer.hyper,
                                      "schedule": self.schedule.options}),
                       "dataset_options": _with_defaults(plugins, "datasets", run["dataset"], self.resolved.dataset)}
        self.rng = np.random.default_rng(shuffle_seed)
        self.batch_size = run["batch_size"]
        self.epoch = 0
        self.history: list[dict[str, float]] = []
        self.diverged = False
        self.divergence: str | None = None  # why it diverged, with the fix that fits (set with diverged)
        self._grads_fit = False  # the model's gradients checked against its parameters once

    def _batches(self) -> Iterable[np.ndarray]:
        """Index arrays of one shuffled epoch; a last batch of one sample joins the previous
        one, since batchnorm needs two values per feature."""
        order = self.rng.permutation(len(self.x_train))
        starts = list(range(0, len(order), self.batch_size))
        if len(starts) > 1 and len(order) - starts[-1] < 2:
            starts.pop()
        ends = starts[1:] + [len(order)]
        return (order[a:b] for a, b in zip(starts, ends))

    def train_epoch(self) -> dict[str, float]:
        """Train one epoch and return its metrics; a non-finite loss marks the run diverged.

        BLAS runs on one thread: these matrices are small, so threads only add overhead, and
        the same thread count everywhere keeps curves identical value for value (a
        multi-threaded matmul sums in another order)."""
        with _one_blas_thread():
            return self._train_epoch()

    def _train_epoch(self) -> dict[str, float]:
        started = time.perf_counter()
        part = "schedule"  # whose code runs: an error it raises is reported as that plugin's
        try:
            lr = self.schedule.lr(self.base_lr, self.epoch)
            if not is_number(lr) or not 0 < lr < math.inf:
                raise PluginFailure(f"{self._plugin('schedule')} returned the rate {lr!r} for epoch {self.epoch + 1}, "
                                    "not a finite number > 0")
            lr = float(lr)
            part = "optimizer"
            self.optimizer.set("lr", lr)
            loss_sum = correct = seen = 0.0
            with np.errstate(all="ignore"):
                for index in self._batches():
                    part = "model"
                    loss, acc, grads = self.model.loss_and_grads(self.x_train[index], self.y_train[index],
                                                                 checked=True)
                    if not self._grads_fit:  # once: a model's answers keep their types and shapes
                        self._check_returned(loss, acc, grads)
                    self._check_accuracy("loss_and_grads", acc)
                    loss_sum += loss * len(index)
                    correct += acc * len(index)
                    seen += len(index)
                    if not math.isfinite(loss):
                        self._diverge(first_step=self.epoch == 0 and seen == len(index), loss=loss)
                        break
                    part = "optimizer"
                    self.optimizer.step(grads)
                part = "model"
                val_loss, val_acc = self._evaluate(self.x_val, self.y_val)
                # The held-out test score is kept with each epoch but never selects: the reports
                # show it for the epoch validation chose (research.study.objective).
                test = self._evaluate(self.x_test, self.y_test) if self.x_test is not None else None
        except (ResearchError, PluginFailure, MemoryError):
            raise
        except (Exception, SystemExit) as err:  # plugin code (a built-in's too): name the plugin, keep the cause
            raise PluginFailure(f"{self._plugin(part)} failed in epoch {self.epoch + 1}: {raised(err)}") from err
        self.epoch += 1
        metrics = {
            "train_loss": loss_sum / seen,
            "train_acc": correct / seen,
            "val_loss": val_loss,
            "val_acc": val_acc,
            "lr": lr,
            "seconds": time.perf_counter() - started,
        }
        if test is not None:
            metrics["test_loss"], metrics["test_acc"] = float(test[0]), float(test[1])
        if not math.isfinite(metrics["val_loss"]) and not self.diverged:
            self._diverge(val_loss=val_loss)
        self.history.append(metrics)
        return metrics

    def _diverge(self, *, first_step: bool = False, loss: float | None = None, val_loss: float | None = None) -> None:
        """Mark the run diverged, saying why with the fix that fits: a learning rate too large
        makes the weights overflow, but a model that computes NaN before the optimizer's first
        step, or evaluates to NaN from finite weights after an epoch of finite training losses,
        is itself the cause, and a smaller --lr would not help."""
        self.diverged = True
        model = self._plugin("model")
        if first_step:
            self.divergence = (f"{model}: loss_and_grads returned the loss {loss!r} on the first mini-batch, "
                               "before the optimizer's first step, so no learning rate causes it; check the model "
                               "(and the data)")
        elif val_loss is not None and all(np.isfinite(param).all() for param in self.model.params):
            self.divergence = (f"{model}: evaluate returned the validation loss {val_loss!r} from finite weights, "
                               "after an epoch of finite training losses; check its evaluate, and if it is sound, "
                               "try a smaller --lr")
        else:
            self.divergence = "the loss became NaN or infinite: try a smaller --lr"

    def _evaluate(self, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        """The model's eval-mode ``(loss, accuracy)`` on a whole split, checked to be two numbers:
        a string or None was converted (or failed) in research's own arithmetic, which then
        took the blame for the model's mistake."""
        answer = self.model.evaluate(x, y)
        try:
            loss, accuracy = answer
        except (TypeError, ValueError):  # not a pair
            loss = accuracy = None
        if not (is_number(loss) and is_number(accuracy)):
            raise PluginFailure(f"{self._plugin('model')}: evaluate returned {reprlib.repr(answer)}; it must return "
                                "(loss, accuracy), two numbers")
        self._check_accuracy("evaluate", accuracy)
        return float(loss), float(accuracy)

    def _check_accuracy(self, method: str, accuracy: Any) -> None:
        """A model's accuracy is the fraction of samples it classified right, in [0, 1] (NaN, of
        a diverged run, is stored as no value); 2.0 or 97.5 (a percentage) would be stored and
        ranked above every true accuracy, and counts a batch's right answers wrong."""
        if not (math.isnan(accuracy) or 0 <= accuracy <= 1):
            raise PluginFailure(f"{self._plugin('model')}: {method} returned the accuracy {accuracy!r}; an accuracy is "
                                "the fraction of samples classified right, a number in [0, 1]")

    def _check_returned(self, loss: Any, acc: Any, grads: Any) -> None:
        """What loss_and_grads returned: the loss and accuracy as numbers, the gradients one
        per parameter array with its shape and dtype; otherwise research's arithmetic, or the
        optimizer, would be blamed for the model's mistake."""
        for name, value in (("loss", loss), ("accuracy", acc)):
            if not is_number(value):
                raise PluginFailure(f"{self._plugin('model')}: loss_and_grads returned its {name} as {value!r}; it "
                                    "must return (loss, accuracy, gradients), the first two numbers")
        params = self.model.params
        if not isinstance(grads, (list, tuple)) or len(grads) != len(params):
            count = len(grads) if isinstance(grads, (list, tuple)) else type(grads).__name__
            raise PluginFailure(f"{self._plugin('model')}: loss_and_grads returned {count} gradients for its "
                                f"{len(params)} parameter arrays; it must return one per entry of params, in order")
        for k, (grad, param) in enumerate(zip(grads, params)):
            if getattr(grad, "shape", None) != param.shape or getattr(grad, "dtype", None) != param.dtype:
                shown = f"{getattr(grad, 'shape', '?')} {getattr(grad, 'dtype', type(grad).__name__)}"
                raise PluginFailure(f"{self._plugin('model')}: loss_and_grads returned gradient {k} as {shown}, for "
                                    f"params[{k}] of {param.shape} {param.dtype}; each gradient must be like its "
                                    "parameter")
        self._grads_fit = True

    def _plugin(self, part: str) -> str:
        """``part`` (model, optimizer or schedule) as an error names it: its name and the
        plugin that registered it."""
        name = self.resolved.run[part]
        return f"plugin '{self.plugins.owner(part + 's', name)}': {part} '{name}'"

    @staticmethod
    def check_space(space: Mapping[str, Param], base: Mapping[str, Any], plugins: Plugins) -> None:
        """The fixed values are checked in full, and a fixed dataset is loaded once (a missing file
        or a wrong column fails the study before it starts, not each trial); every searched name
        must be understood by the run, the model, the optimizer or the schedule, and a searched
        plugin choice must name installed plugins. A searched value an option's declaration
        refuses (a choice, an end of a range) fails the study before it starts; a value that
        only fails together with others fails the trials that draw it. A model the space does
        not touch is built once here with its dataset, so that a fixed value only the model
        refuses (a model too large, images it cannot read) stops the study before it starts
        instead of failing every trial; with a model option searched, the model is built for
        the values the space can draw for it (``_probes``), the rest fixed."""
        fixed = {k: v for k, v in base.items() if k not in space}
        resolved = resolve(fixed, plugins)
        dataset = plugins.build("datasets", resolved.run["dataset"], **resolved.dataset) if "dataset" not in space \
            else None
        model_fixed = dataset is not None and not {"model", "dtype"} & set(space)
        model_draws: list[tuple[str, str, Param]] = []  # (name, option, param) of the model searched alone
        chosen_draws: list[tuple[str, str, Param, dict[str, str]]] = []  # ... of a model the space chooses
        fixed_selection = {kind: str({**RUN_DEFAULTS, **fixed}[kind]) for kind in SELECTORS}
        for name, param in space.items():
            if name in SELECTORS:
                for choice in getattr(param, "values", ()):
                    plugins.get(name + "s", str(choice))
                continue
            spec = RUN.get(name)
            if spec is None:
                for selected in _selections(param.when, space, fixed_selection):
                    owners = part_options(plugins, selected)
                    try:
                        part, option = route(name, owners, selected)
                    except ConfigError as err:
                        if isinstance(err, UnknownParameterError):  # a table of options is fixed, never searched
                            err = UnknownParameterError(err.name, err.chosen, [v for v in err.valid if v not in NESTED])
                        text = str(err).replace("unknown parameter", "unknown search-space parameter", 1)
                        if param.when is None and selected != fixed_selection:
                            text += (f"; the space searches {', '.join(k for k in SELECTORS if k in space)}: "
                                     f"make {name} conditional, e.g. --space '{name}={param.describe()} if "
                                     f"{_choosing(fixed_selection, space, plugins, name)}'")
                        raise ConfigError(text) from None
                    if part == "model" and param.when is None and "model" not in space:
                        model_draws.append((name, option, param))
                    elif part == "model":  # a model the space chooses: probed as that model
                        chosen_draws.append((name, option, param, selected))
                    model_fixed = model_fixed and part != "model"
                    found = (owners[part] or {}).get(option)
                    if found is not None:
                        check_draws(name, param, found, f"{part} '{selected[part]}'")
            else:
                check_draws(name, param, spec, "training")
        _check_fixed_across_choices(fixed, space, fixed_selection, plugins)

        def build(chosen: Any = resolved, **options: Any) -> None:
            plugins.build("models", chosen.run["model"], dataset.input_shape, dataset.n_classes,
                          dtype=np.dtype(chosen.run["dtype"]), rng=np.random.default_rng(0),
                          **{**chosen.model, **options})

        if model_fixed:
            build()
        elif dataset is not None and "dtype" not in space:
            # Each value the space can draw for a model option, the others fixed (as the model the
            # space chose when it chooses one: kernel_size=3,4 if model=cnn): what only the model
            # refuses (an even kernel_size) stops the study instead of failing its trials.
            probed = [(name, option, param, resolved) for name, option, param in model_draws]
            probed += [(name, option, param, resolve({**fixed, **selected}, plugins))
                       for name, option, param, selected in chosen_draws]
            for name, option, param, chosen in probed:
                for value in _probes(param):
                    try:
                        build(chosen, **{option: value})
                    except UsageError as err:
                        raise ConfigError(f"the space's {name}={param.describe()} draws values the model refuses: "
                                          f"{str(err).splitlines()[0]}; change the space") from None

    @staticmethod
    def default_space(base: Mapping[str, Any], plugins: Plugins) -> dict[str, Param]:
        """The chosen optimizer's declared search space: what to tune when the user names nothing."""
        optimizer = plugins.get("optimizers", str(base.get("optimizer", RUN_DEFAULTS["optimizer"])))
        return dict(getattr(optimizer, "search_space", {}))

    @property
    def epochs(self) -> int:
        """The epochs this run trains in all."""
        return int(self.resolved.run["epochs"])

    def close(self) -> None:
        """Nothing to release: the run holds arrays only."""

    def tunable(self) -> dict[str, Any]:
        """The hyperparameters that may change between epochs, with their current values:
        the optimizer's (``lr`` is the base rate), the schedule's options and the batch size;
        a name the optimizer and the schedule share is qualified (``optimizer.beta``,
        ``schedule.beta``), as a configuration writes it."""
        return {**flat({"optimizer": {**self.optimizer.hyper, "lr": self.base_lr}, "schedule": self.schedule.options}),
                "batch_size": self.batch_size}

    def set_hyper(self, name: str, value: Any) -> None:
        """Change one hyperparameter between epochs, named as ``tunable`` names it (qualified
        too when it need not be); a bad name or value raises ValueError and changes nothing."""
        if name == "batch_size":
            self.batch_size = RUN["batch_size"].convert("training", value)
            return
        owners = {"optimizer": self.optimizer.hyper, "schedule": self.schedule.options}
        part, dot, bare = name.partition(".")
        if not (dot and part in owners):  # a bare name: of the one part that has it (tunable qualifies the rest)
            if name not in self.tunable():
                raise ConfigError(f"unknown hyperparameter '{name}'; changeable: {', '.join(sorted(self.tunable()))}")
            part, bare = next(p for p, options in owners.items() if name in options), name
        elif bare not in owners[part]:
            raise ConfigError(f"cannot change '{name}': the {part} has no option '{bare}'")
        if part == "optimizer":
            self.optimizer.set(bare, value)
            if bare == "lr":
                self.base_lr = float(self.optimizer.hyper["lr"])
        else:
            self.schedule = self.plugins.build("schedules", self.resolved.run["schedule"],
                                               **{**self.schedule.options, bare: value})

    def _call(self, part: str, method: str, *args: Any, passes: tuple[type[BaseException], ...] = ()) -> Any:
        """``part``'s (model's or optimizer's) ``method`` on ``args``; what its code raises is its
        plugin's failure, named (PluginFailure), but research's own errors, out of memory and
        ``passes`` (a ValueError of a state that does not fit)."""
        target = getattr(self, part)
        return call_plugin(self._plugin(part), method, lambda: getattr(target, method)(*args), passes=passes)

    def _state_of(self, part: str) -> Mapping[str, Any]:
        """The model's or optimizer's ``state()``: a dict, or the failure of its plugin, named."""
        state = self._call(part, "state")
        if not isinstance(state, Mapping):
            raise PluginFailure(f"{self._plugin(part)}: state() returned {type(state).__name__}, not a dict of "
                                "arrays by name")
        return state

    def state(self) -> dict[str, np.ndarray]:
        """Everything needed to continue exactly: model, optimizer, RNG, epoch, curve."""
        arrays = {f"model.{k}": v for k, v in self._state_of("model").items()}
        arrays |= {f"optimizer.{k}": v for k, v in self._state_of("optimizer").items()}
        arrays["rng"] = checkpoint.pack_json(self.rng.bit_generator.state)
        arrays["meta"] = checkpoint.pack_json(
            {"epoch": self.epoch, "base_lr": self.base_lr, "history": self.history,
             "diverged": self.diverged, "divergence": self.divergence, "config": self.config,
             "batch_size": self.batch_size,
             "schedule": self.schedule.options}
        )
        return arrays

    def load_state(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Restore a state from :meth:`state` into this trainer."""
        refused = (KeyError, ValueError)  # a state that does not fit
        try:
            self._call("model", "load_state", {k[6:]: v for k, v in arrays.items() if k.startswith("model.")},
                       passes=refused)
        except refused as err:  # the checkpoint's, unless the model cannot read its own state either
            try:
                self.model.load_state(self._state_of("model"))
            except refused as own:
                raise PluginFailure(f"{self._plugin('model')}: load_state cannot read what its own state() returns "
                                    f"({raised(own)}); state() must return every parameter and buffer") from err
            raise
        self._call("optimizer", "load_state", {k[10:]: v for k, v in arrays.items() if k.startswith("optimizer.")},
                   passes=(ValueError,))
        self.rng.bit_generator.state = checkpoint.unpack_json(arrays["rng"])
        meta = checkpoint.unpack_json(arrays["meta"])
        self.epoch, self.base_lr = meta["epoch"], meta["base_lr"]
        self.history, self.diverged = meta["history"], meta["diverged"]
        self.divergence = meta.get("divergence")  # why, so a resumed run gives the same advice (older: none)
        self.batch_size = meta["batch_size"]
        if meta["schedule"] != self.schedule.options:
            self.schedule = self.plugins.build("schedules", self.resolved.run["schedule"], **meta["schedule"])

    def export(self) -> dict[str, Any]:
        """The model alone, as research.nn.exported.model_arrays takes it: the model plugin's
        name, options and arrays, the sample shape, the class names, and the standardization
        of raw inputs (the training split's mean and scale)."""
        return {"model": self.resolved.run["model"], "options": dict(self.resolved.model),
                "input_shape": self.dataset.input_shape, "classes": self.dataset.classes,
                "dtype": str(np.dtype(self.resolved.run["dtype"])), "state": self.model.state(),
                "feature_mean": self.dataset.feature_mean, "feature_scale": self.dataset.feature_scale}

    def save(self, path: str | Path) -> None:
        checkpoint.save(path, self.state())

    def restore(self, path: str | Path) -> None:
        """Continue from the checkpoint at ``path``; one that belongs to another configuration
        is a CheckpointError naming it, and so is one written with other values
        (checkpoint.restore_run)."""
        checkpoint.restore_run(self, path, self.config)

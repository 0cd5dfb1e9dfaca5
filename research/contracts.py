"""What every kind of plugin is, as typed protocols, and the records plugins are handed.

A plugin's factory is registered by name (see research.hookspecs) and called with keyword
options; what it returns must have the methods below. The plugin manager checks the methods
when it builds a plugin, so a missing one is a one-line error naming the plugin, not an
AttributeError in the middle of a study.

Reusable bases implement most of a protocol for you:

- ``research.nn.optimizer.Optimizer``: parameters, checked hyperparameters, state, kernel plans;
- ``research.nn.schedule.Schedule``, ``research.study.sampler.Sampler``,
  ``research.study.strategy.Strategy``: option checking and the optional methods' defaults;
- ``research.options.Configurable``: option checking for any other plugin class.
"""

from __future__ import annotations

import math
import numbers
import reprlib
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from research.data.dataset import Dataset

if TYPE_CHECKING:
    import numpy as np

    from research.space import Param
    from research.study.history import History
    from research.study.study import Study


def is_number(value: object) -> bool:
    """A metric value research accepts: a real number a float holds, numpy's scalars included;
    not a bool (True is an int to Python, but a metric of True is a mistake)."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        return False
    try:
        float(value)
    except OverflowError:  # an int beyond 1.8e308
        return False
    return True


def not_a_number(name: str, value: object) -> str:
    """Why metric ``name``'s ``value`` is refused (``is_number`` said no), in a line of its own
    length: an integer of hundreds of digits is shown short, with its reason."""
    shown = reprlib.repr(value)
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        shown += f" (an integer of {len(str(abs(int(value))))} digits, beyond what a float holds)"
    return f"metric {name!r} must be a number, got {shown}"


Register = Callable[[str, Callable[..., Any]], None]
"""The callback a registration hook receives: ``register(name, factory)``."""


@dataclass(frozen=True)
class TrialInfo:
    """What observers are told about a run: its study (None for a lone model), its number
    and its full configuration."""

    study: str | None
    number: int
    config: dict[str, Any]


@dataclass
class RunResult:
    """How a run ended (``finished``, ``diverged``, ``failed``, ``interrupted``) and its
    learning curve: one metrics dict per epoch."""

    status: str
    history: list[dict[str, float]] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def best_val_acc(self) -> float:
        scores = [m["val_acc"] for m in self.history if math.isfinite(m.get("val_acc", math.nan))]
        return max(scores, default=float("nan"))


@runtime_checkable
class Optimizer(Protocol):
    """Built as ``factory(params, **hyperparameters)``; updates ``params`` in place.

    ``hyper`` holds the current hyperparameters (``lr`` among them: schedules and babysitting
    change it); ``set`` checks and changes one between steps (a bad name or value raises
    ValueError and changes nothing); ``state``/``load_state`` round-trip everything needed to
    continue exactly, as a flat dict of arrays. The factory has a ``search_space`` attribute:
    its hyperparameters' default search space, on the right scales.
    """

    hyper: Mapping[str, float]

    def set(self, name: str, value: Any) -> None: ...
    def step(self, grads: Sequence[np.ndarray]) -> None: ...
    def state(self) -> dict[str, np.ndarray]: ...
    def load_state(self, state: Mapping[str, np.ndarray]) -> None: ...


@runtime_checkable
class Trainer(Protocol):
    """Built as ``factory(config, **options)`` (``config`` the trial's whole configuration, a
    dict; ``plugins=`` the loaded plugin set too when the factory has a parameter of that
    name): one trial's training, advanced one epoch at a time.

    ``train_epoch()`` trains one more epoch and returns its metrics, a dict of numbers (at
    least the study's metric; a loss that is not finite means the run diverged);
    ``state()``/``load_state()`` round-trip everything needed to continue exactly, as a flat
    dict of arrays. Optional: ``tunable()`` (what may change between epochs, with its value)
    and ``set_hyper(name, value)`` for babysitting; ``config`` (the effective configuration
    to record); ``close()`` (release a process or files). ``metrics`` on the factory names the
    metrics it reports. A trainer that also keeps ``epoch``, ``history``, ``diverged`` and
    ``epochs`` (the research trainer does) is driven as it is; any other is driven by
    ``research.study.trainer.Driven``, which keeps them for it. ``whole_trial = True`` on the
    factory: the trainer must not move between workers, so a trial is one task that streams
    its epochs back (research.study.channel). ``provenance(config) -> dict`` on the factory:
    what a study records of it when a run starts (a program's digest; research.study.provenance);
    the config's ``trainer_options`` hold every option the trainer gets, those set by name too.
    ``export() -> dict`` (optional): its model alone, as ``research.nn.exported.model_arrays``
    takes it, for ``research export-model``. Metrics named ``test_*`` are the held-out test
    split's: reported for the epoch validation selects, never optimized.
    """

    def train_epoch(self) -> dict[str, float]: ...
    def state(self) -> dict[str, np.ndarray]: ...
    def load_state(self, state: Mapping[str, np.ndarray]) -> None: ...


@runtime_checkable
class Model(Protocol):
    """Built as ``factory(input_shape, n_classes, *, dtype, rng, **options)``: a classifier whose
    parameters an optimizer updates.

    ``input_shape`` is one sample's shape (``dataset.input_shape``: ``(64,)`` for tabular
    digits, ``(1, 8, 8)`` for the images); the model receives samples as rows of
    ``prod(input_shape)`` values (``x`` of shape (N, prod(input_shape)), C-contiguous), so
    ``x.reshape(len(x), *input_shape)`` is a view. ``params`` is the list of parameter arrays
    (updated in place by the optimizer, never rebound); ``loss_and_grads`` trains on one
    mini-batch (batch statistics, running averages updated) and returns the mean loss, the
    accuracy and one gradient per parameter; ``evaluate`` is eval mode on a whole set;
    ``check_data`` checks and converts a dataset once so that mini-batches taken from it can
    skip the checks (``checked=True``); ``state``/``load_state`` round-trip every parameter
    and buffer. Optional: ``logits(x)`` (eval mode, (N, n_classes)), which an exported model
    predicts with (research.nn.exported). ``research.nn.model.MLP`` is the built-in example.
    """

    params: list[np.ndarray]

    def check_data(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...
    def loss_and_grads(self, x: np.ndarray, y: np.ndarray, *, checked: bool = False
                       ) -> tuple[float, float, list[np.ndarray]]: ...
    def evaluate(self, x: np.ndarray, y: np.ndarray) -> tuple[float, float]: ...
    def state(self) -> dict[str, np.ndarray]: ...
    def load_state(self, state: Mapping[str, np.ndarray]) -> None: ...


@runtime_checkable
class Schedule(Protocol):
    """Built as ``factory(**options)``: the learning rate of each epoch (from 0) given the
    base rate, and ``options`` (the checked values, which rebuild it)."""

    options: Mapping[str, Any]

    def lr(self, base_lr: float, epoch: int) -> float: ...


@runtime_checkable
class Sampler(Protocol):
    """Built as ``factory(**options)``: proposes one configuration at a time.

    Stateless given the history, so a resumed study needs no sampler state. Optional:
    ``round_of(number) -> int | None`` (recorded with the trial), ``needs_finished(number)
    -> int`` (trials 0..k-1 must be done before trial ``number`` is asked) and
    ``budget_fixed() -> str | None`` (why the trial budget cannot change once a trial is drawn:
    a design over it); the base class ``research.study.sampler.Sampler`` gives the defaults.
    """

    def ask(self, space: Mapping[str, Param], history: History, rng: np.random.Generator) -> dict[str, Any]: ...


@runtime_checkable
class Strategy(Protocol):
    """Built as ``factory(**options)``: drives a study with ``run(study)``.

    Optional: ``accepts``, the study settings it uses (a subset of
    ``research.study.strategy.STUDY_SETTINGS``; a flag for another is refused),
    ``epochs_from``, what sets each trial's length when the strategy does (--epochs refused), and
    ``reporter(console, ask)``, its own terminal display (a ``Reporter``) instead of the
    live table of trials. The base class ``research.study.strategy.Strategy`` gives both.
    """

    def run(self, study: Study) -> None: ...


@runtime_checkable
class Pruner(Protocol):
    """Built as ``factory(**options)``: after each committed epoch of a running trial, a
    reason to stop it (status ``pruned``) or None. ``curves`` maps every trial's number to
    its score by epoch, higher is better (the study's metric, negated when the study
    minimizes it; None for an unusable value), from the store only, so decisions survive a
    resume; ``max_epochs`` is the epochs trial ``number`` trains (the study's, or its own draw
    where the space searches epochs). Optional ``inert(max_epochs) -> str | None``: why it cannot judge a study of that
    many epochs, as when it could never stop a trial (the study is refused with that reason),
    or None."""

    def prune(self, number: int, epoch: int, curves: Mapping[int, list[float | None]],
              max_epochs: int) -> str | None: ...


class DatasetFactory(Protocol):
    """``factory(**options) -> research.data.Dataset``: standardized train and validation
    arrays and the class names (see research.data for who standardizes what)."""

    def __call__(self, **options: Any) -> Dataset: ...


class ExecutorFactory(Protocol):
    """``factory(workers, **options) -> concurrent.futures.Executor``. A factory whose tasks
    run in the calling process sets ``in_process = True`` on itself: plugins given to a
    study as objects (not importable by name) then work too. ``factory.check(**options)``,
    when present, raises ValueError before a study is stored when the executor cannot work
    (Dask not installed, no scheduler answering). The executor's ``channel()``
    (research.study.channel.Channel) carries whole-trial tasks' messages; without it such
    trainers are refused."""

    def __call__(self, workers: int, **options: Any) -> Executor: ...


@runtime_checkable
class Reporter(Protocol):
    """What a strategy tells the user as it goes, and how it asks the user. The command line
    enters it as a context manager when it is one."""

    def trial_started(self, number: int, config: dict[str, Any]) -> None: ...
    def epoch_done(self, number: int, epoch: int, metrics: dict[str, float]) -> None: ...
    def trial_ended(self, number: int, status: str, error: str | None) -> None: ...
    def note(self, text: str) -> None: ...
    def prompt(self, summary: str, choices: str) -> str: ...


PRODUCTS: dict[str, type] = {
    "trainers": Trainer,
    "models": Model,
    "optimizers": Optimizer,
    "schedules": Schedule,
    "datasets": Dataset,
    "samplers": Sampler,
    "strategies": Strategy,
    "executors": Executor,
    "pruners": Pruner,
}
"""The class or protocol each kind's factory must return, checked when a plugin is built."""

"""The plugin contract of research: the only file a plugin author must read.

A plugin is a module with functions marked ``@research.hookimpl`` whose names are the hooks
below. It is found through the ``research`` entry-point group::

    [project.entry-points.research]
    myplugin = "my_package.my_module"

Registration hooks receive a ``register(name, factory)`` callback. Names are short and
lowercase; a name registered twice (by any two plugins) is an error naming both. Factories
take keyword options only: the command line passes ``--<kind>-opt key=value`` pairs as strings,
so a factory converts what it needs. The protocols below are duck-typed.

Optimizer
    ``factory(params, **hyperparameters) -> optimizer``. ``params`` is the model's list of
    arrays, updated in place. The optimizer has ``hyper`` (a dict of its current
    hyperparameters), ``set(name, value)`` (validates and changes one between steps; a bad
    name or value raises ValueError), ``step(grads)``, ``state()`` ->
    dict of arrays (everything needed to resume exactly) and ``load_state(state)``. The factory
    has a ``search_space`` attribute: a dict of name -> research.space parameter, its default
    search space on the right scale (learning rate ``log``, betas ``log1m``).
Schedule
    ``factory(**options) -> schedule`` with ``lr(base_lr, epoch) -> float`` (epoch counts from
    0) and ``options`` (a dict of its checked options, which rebuild it), and optionally a
    ``search_space`` attribute on the factory for its options.
Dataset
    ``factory(**options) -> research.data.Dataset`` (standardized train/validation arrays and
    class names).
Sampler
    ``factory(**options) -> sampler`` with ``ask(space, history, rng) -> dict``: one
    configuration. Stateless given the history, so a resumed study needs no sampler state.
Strategy
    ``factory(**options) -> strategy`` with ``run(study)``.
Executor
    ``factory(workers, **options) -> concurrent.futures.Executor``.
Pruner
    ``factory(**options) -> pruner`` with ``prune(number, epoch, curves, max_epochs) -> str |
    None``: after each committed epoch of a running trial, a reason to stop it (status
    ``pruned``) or None. ``curves`` maps every trial's number to its validation accuracy by
    epoch (from the store only, so decisions survive a resume).

Observer hooks are optional; one that raises is reported by plugin name and training goes on.
"""

from collections.abc import Callable, Mapping
from typing import Any

from research import hookspec

Register = Callable[[str, Callable[..., Any]], None]


@hookspec
def register_optimizers(register: Register) -> None:
    """Register optimizer factories.

    :param register: call ``register(name, factory)`` once per optimizer.
    """


@hookspec
def register_schedules(register: Register) -> None:
    """Register learning-rate schedule factories.

    :param register: call ``register(name, factory)`` once per schedule.
    """


@hookspec
def register_datasets(register: Register) -> None:
    """Register dataset factories.

    :param register: call ``register(name, factory)`` once per dataset.
    """


@hookspec
def register_samplers(register: Register) -> None:
    """Register sampler factories.

    :param register: call ``register(name, factory)`` once per sampler.
    """


@hookspec
def register_strategies(register: Register) -> None:
    """Register strategy factories (caviar, babysit, ...).

    :param register: call ``register(name, factory)`` once per strategy.
    """


@hookspec
def register_executors(register: Register) -> None:
    """Register executor factories.

    :param register: call ``register(name, factory)`` once per executor.
    """


@hookspec
def register_pruners(register: Register) -> None:
    """Register pruner factories (asha, median, ...).

    :param register: call ``register(name, factory)`` once per pruner.
    """


@hookspec
def on_trial_start(trial: Any) -> None:
    """Called when a trial (one training run) starts.

    :param trial: the trial: ``trial.study`` (name or None), ``trial.number`` and
        ``trial.config`` (the full configuration dict).
    :returns: nothing; the host ignores return values.
    """


@hookspec
def on_epoch_end(trial: Any, epoch: int, metrics: Mapping[str, float]) -> None:
    """Called after every epoch of a trial, once its metrics are known.

    :param trial: the trial, as in :func:`on_trial_start`.
    :param epoch: the epoch just finished, counting from 1.
    :param metrics: ``train_loss``, ``train_acc``, ``val_loss``, ``val_acc``, ``lr``, ``seconds``.
    :returns: nothing; the host ignores return values.
    """


@hookspec
def on_trial_end(trial: Any, result: Any) -> None:
    """Called when a trial ends, however it ended.

    :param trial: the trial, as in :func:`on_trial_start`.
    :param result: the run's result: ``result.status`` (finished, diverged, failed, ...)
        and ``result.history`` (one metrics dict per epoch).
    :returns: nothing; the host ignores return values.
    """

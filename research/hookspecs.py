"""The hooks of research: the plugin contract, with research.contracts (what each kind of
plugin returns) and research.options (how options are declared).

A plugin is a module (or an object) with functions marked ``@research.hookimpl`` named like
the hooks below; implement only the ones you need. Installed plugins are found through the
``research`` entry-point group::

    [project.entry-points.research]
    myplugin = "my_package.my_module"

Built-in plugins come in the same way. Every hook implementation is called on its own: one
that raises is reported by plugin name and the others go on.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from research import hookspec
from research.contracts import Register, RunResult, TrialInfo

if TYPE_CHECKING:
    import typer

    from research.report.figure import Figure
    from research.study.control import Control
    from research.study.store import Store
    from research.study.store import Study as StudyRecord


@hookspec
def register_trainers(register: Register) -> None:
    """Register trainer factories (research.contracts.Trainer): what trains one trial, an
    epoch at a time.

    :param register: call ``register(name, factory)`` once per trainer; the factory is
        called as ``factory(config, **options)`` (and ``plugins=`` the loaded plugin set when
        it has a parameter of that name).
    """


@hookspec
def register_models(register: Register) -> None:
    """Register model factories (research.contracts.Model).

    :param register: call ``register(name, factory)`` once per model; the factory is called
        as ``factory(input_shape, n_classes, dtype=..., rng=..., **options)``.
    """


@hookspec
def register_optimizers(register: Register) -> None:
    """Register optimizer factories (research.contracts.Optimizer).

    :param register: call ``register(name, factory)`` once per optimizer; the factory is
        called as ``factory(params, **hyperparameters)``.
    """


@hookspec
def register_schedules(register: Register) -> None:
    """Register learning-rate schedule factories (research.contracts.Schedule).

    :param register: call ``register(name, factory)`` once per schedule.
    """


@hookspec
def register_datasets(register: Register) -> None:
    """Register dataset factories (research.contracts.DatasetFactory).

    :param register: call ``register(name, factory)`` once per dataset.
    """


@hookspec
def register_samplers(register: Register) -> None:
    """Register sampler factories (research.contracts.Sampler).

    :param register: call ``register(name, factory)`` once per sampler.
    """


@hookspec
def register_strategies(register: Register) -> None:
    """Register strategy factories (research.contracts.Strategy).

    :param register: call ``register(name, factory)`` once per strategy.
    """


@hookspec
def register_executors(register: Register) -> None:
    """Register executor factories (research.contracts.ExecutorFactory).

    :param register: call ``register(name, factory)`` once per executor; the factory is
        called as ``factory(workers=N, **options)``.
    """


@hookspec
def register_pruners(register: Register) -> None:
    """Register pruner factories (research.contracts.Pruner).

    :param register: call ``register(name, factory)`` once per pruner.
    """


@hookspec
def register_commands(cli: typer.Typer) -> None:
    """Add commands to the ``research`` command line.

    :param cli: a ``typer.Typer``: decorate functions with ``@cli.command()``. Its commands
        appear beside the built-in ones; raise ``research.errors.ResearchError`` (or a
        subclass) for a mistake the user can fix, printed as one line with exit code 2.
    """


@hookspec(firstresult=True)
def study_figure(store: Store, study: StudyRecord, metric: str, named: bool) -> Figure | None:
    """The picture of a study, as data: ``research plot``, the HTML report and any other
    view draw it from what this returns.

    :param store: the study's store, opened for reading.
    :param study: the study's record (``study.strategy`` says which strategy ran it).
    :param metric: the metric to show: ``val_acc``, ``val_loss``, ``train_acc``,
        ``train_loss`` or ``lr`` (or any other the study's trainer reported).
    :param named: whether the user named ``metric`` (False: it is the study's own, passed
        because none was named, and a plugin may show what suits its picture better).
        Optional, like every hook argument: an implementation may leave it out.
    :returns: a ``research.report.figure.Figure``, or None to leave the study to another
        plugin (the first answer wins; without one, the overlaid learning curves).
    """


@hookspec(firstresult=True)
def describe_event(study: StudyRecord, event: Mapping[str, Any]) -> str | None:
    """One readable line for an event of a study's log (``research log``, the report).

    :param study: the study's record (``study.strategy`` says which strategy wrote it).
    :param event: ``id``, ``trial_id``, ``time``, ``kind`` and ``data`` (the dict the
        strategy stored).
    :returns: the line, or None for events this plugin does not write (the first answer
        wins; without one, the kind and the data as JSON).
    """


@hookspec(firstresult=True)
def study_controls(study: StudyRecord) -> list[Control] | None:
    """What a user may do to a study from outside its process, for front ends such as
    ``research dashboard --allow-control`` (its buttons and forms).

    :param study: the study's record (``study.strategy`` says which strategy runs it).
    :returns: a list of ``research.study.control.Control`` (each applies itself by writing
        what the plugin's own command writes), or None to leave the study to another plugin
        (the first answer wins; without one, a study offers no controls).
    """


@hookspec
def on_trial_start(trial: TrialInfo) -> None:
    """Called when a trial (one training run) starts, in the process that trains it.

    :param trial: ``trial.study`` (its name, None for a lone model), ``trial.number`` and
        ``trial.config`` (the full configuration).
    :returns: nothing; the host ignores return values.
    """


@hookspec
def on_epoch_end(trial: TrialInfo, epoch: int, metrics: Mapping[str, float]) -> None:
    """Called after every epoch of a trial, once its metrics are known.

    :param trial: the trial, as in :func:`on_trial_start`.
    :param epoch: the epoch just finished, counting from 1.
    :param metrics: ``train_loss``, ``train_acc``, ``val_loss``, ``val_acc``, ``lr``, ``seconds``.
    :returns: nothing; the host ignores return values.
    """


@hookspec
def on_trial_end(trial: TrialInfo, result: RunResult) -> None:
    """Called when a trial's training ends, in the process that trains it: a lone model
    however it ended; a study's trial when it finishes, diverges or fails (a trial the
    study prunes or interrupts is not trained further and ends without this call).

    :param trial: the trial, as in :func:`on_trial_start`.
    :param result: ``result.status`` (finished, diverged, failed, interrupted) and
        ``result.history`` (one metrics dict per epoch).
    :returns: nothing; the host ignores return values.
    """

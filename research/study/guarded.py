"""A study's plugins, called so that a failure of their code names them; what a sampler
draws, checked against the space before a trial is stored; what a pruner decides, checked
before a trial stops.

A strategy, sampler or pruner is the user's or a third party's code, run in the study's
process: when it raises, the line must say whose bug it is (``plugin 'x': sampler 'y' failed
in ask: ...``), not ask the user to report it to research. A sampler that
draws a value outside the space, leaves a parameter out (its default would be trained in
silence) or adds one the space does not search (it would replace a fixed value) is refused
the same way, as is a pruner's answer that is neither None nor a reason (``False`` must not
stop a trial).
"""

from __future__ import annotations

import numbers
import sqlite3
from collections.abc import Mapping
from typing import Any

import numpy as np

from research.errors import PluginFailure, ResearchError, raised
from research.space import Choice, Float, Int, Param, Space, active, restrict
from research.study.history import History


class Guarded:
    """``target`` (a plugin's product) whose methods, when its code raises anything but what
    passes as itself (``passes``), raise PluginFailure naming ``owner`` (the plugin) and
    ``label`` (``sampler 'gp'``). Attributes it lacks are lacking here too, so ``hasattr``
    tests for optional methods hold."""

    def __init__(self, target: Any, label: str, owner: str):
        self.target, self.label, self.owner = target, label, owner

    @property
    def named(self) -> str:
        """How a line names it: ``plugin 'gp': sampler 'gp'``."""
        return f"plugin '{self.owner}': {self.label}"

    def __getattr__(self, name: str) -> Any:
        if name in ("target", "label", "owner") or name.startswith("__"):  # not set yet (a copy being made)
            raise AttributeError(name)
        value = getattr(self.target, name)
        if not callable(value):
            return value
        return lambda *args, **kwargs: self._call(name, value, *args, **kwargs)

    def _call(self, name: str, method: Any, *args: Any, **kwargs: Any) -> Any:
        """``method`` (the target's ``name``) called; what its code raises names the plugin."""
        try:
            return method(*args, **kwargs)
        except (Exception, SystemExit) as err:  # sys.exit in a plugin is its failure, not the command's end
            if isinstance(err, Exception) and passes(err):
                raise
            raise PluginFailure(f"{self.named} failed in {name}: {raised(err)}") from err


class GuardedReporter(Guarded):
    """A strategy's own display (``Guarded``), entered and left as a context manager when it
    is one, those calls named too: Python looks ``__enter__`` up on the class, past
    ``__getattr__``."""

    def __enter__(self) -> GuardedReporter:
        if hasattr(type(self.target), "__enter__"):
            self._call("__enter__", self.target.__enter__)
        return self

    def __exit__(self, *exc: Any) -> Any:
        if hasattr(type(self.target), "__exit__"):
            return self._call("__exit__", self.target.__exit__, *exc)
        return None


def passes(err: Exception) -> bool:
    """Whether an error a plugin's call raised is no bug of the plugin's: worded for the user
    already (ResearchError), named already (PluginFailure), or the system's (out of memory, an
    OSError, a locked or damaged store; SQLite's other errors are its misuse)."""
    system = (MemoryError, OSError, sqlite3.OperationalError)
    return isinstance(err, (ResearchError, PluginFailure, *system)) or type(err) is sqlite3.DatabaseError


def draw(space: Space, sampler: Any, history: History, seed: int) -> dict[str, Any]:
    """What ``sampler`` draws for trial ``history.number`` (its generator seeded by the study's
    seed and the number), checked (:func:`checked_draw`), without the parameters inactive in it."""
    drawn = sampler.ask(space, history, np.random.default_rng([seed, history.number]))
    label = sampler.named if isinstance(sampler, Guarded) else f"sampler {type(sampler).__name__}"
    return restrict(space, checked_draw(space, drawn, label, history.number))


class GuardedSampler(Guarded):
    """A sampler (``Guarded``) whose optional answers are checked as well, for whichever
    strategy asks: ``needs_finished(number)`` how many trials (0 to ``number``) must be done
    first, ``round_of(number)`` an integer or None, ``budget_fixed()`` a reason or None. A
    sampler without one answers the base's default (research.study.sampler); a wrong answer,
    or the name declared as anything but a method (``needs_finished = "yes"``), is the
    sampler's bug, named: it failed in the strategy's code, which took the blame."""

    def needs_finished(self, number: int) -> int:
        waited = self._optional("needs_finished", 0, number)
        if not _integer(waited) or not 0 <= waited <= number:
            raise PluginFailure(f"{self.named}: needs_finished({number}) returned {waited!r}; it must return how many "
                                f"trials must be done before trial {number} is asked, an integer from 0 to {number}")
        return int(waited)

    def round_of(self, number: int) -> int | None:
        round_ = self._optional("round_of", None, number)
        if round_ is not None and not _integer(round_):
            raise PluginFailure(f"{self.named}: round_of({number}) returned {round_!r}; it must return the round of "
                                f"trial {number}, an integer, or None")
        return None if round_ is None else int(round_)

    def budget_fixed(self) -> str | None:
        reason = self._optional("budget_fixed", None)
        if reason is not None and not isinstance(reason, str):
            raise PluginFailure(f"{self.named}: budget_fixed() returned {reason!r}; it must return why the trial "
                                "budget cannot change (a str), or None")
        return reason

    def _optional(self, name: str, default: Any, *args: Any) -> Any:
        """The sampler's optional method ``name`` called on ``args``, or ``default`` without it."""
        method = getattr(self.target, name, None)
        if method is None:
            return default
        if not callable(method):
            raise PluginFailure(f"{self.named} declares {name} as {method!r}, not a method; define it as "
                                f"research.contracts.Sampler describes it, or leave it out")
        return self._call(name, method, *args)


def _integer(value: Any) -> bool:
    """An integer (numpy's too), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


class GuardedPruner(Guarded):
    """A pruner (``Guarded``) whose answers are checked as well, for whichever strategy asks:
    ``prune`` returns None (the trial goes on) or the reason it stops, a non-empty str; any
    other answer is the pruner's bug (PluginFailure): ``False`` must not stop a trial."""

    def prune(self, number: int, epoch: int, curves: Mapping[int, list[float | None]], max_epochs: int) -> str | None:
        reason = self.__getattr__("prune")(number, epoch, curves, max_epochs)
        if reason is None or (isinstance(reason, str) and reason.strip()):
            return reason
        raise PluginFailure(f"{self.named} answered {reason!r} for trial {number} at epoch {epoch}; prune must return "
                            "None to let a trial go on, or the reason it stops (a non-empty str)")


def checked_draw(space: Space, drawn: Any, label: str, number: int) -> dict[str, Any]:
    """``drawn`` (a sampler's answer for trial ``number``) as plain values, every parameter
    active in it present and inside its range, no other name; PluginFailure otherwise."""
    where = f"{label} drew for trial {number}"
    if not isinstance(drawn, Mapping):
        raise PluginFailure(f"{where} a {type(drawn).__name__}, not a dict of parameter values")
    extra = [name for name in drawn if name not in space]
    if extra:
        raise PluginFailure(f"{where} {', '.join(map(str, extra))}, which the space does not search "
                            f"(it searches {', '.join(space)})")
    values = {name: _plain(space[name], value) for name, value in drawn.items()}
    for name, param in space.items():
        if not active(space, values, name):
            continue
        if name not in values:
            raise PluginFailure(f"{where} no value of {name} ({param.describe()}); the trial would train "
                                "with a default")
        if not param.contains(values[name]):
            raise PluginFailure(f"{where} {name}={values[name]!r}, outside the space {name}={param.describe()}")
    return values


def _plain(param: Param, value: Any) -> Any:
    """A numpy number as the Python number the store keeps (JSON has no numpy types), a
    choice as the choice's own value; anything else as it is, for the range check to refuse."""
    if isinstance(value, bool):
        return value
    if isinstance(param, Int) and isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(param, Float) and isinstance(value, numbers.Real):
        return float(value)
    if isinstance(param, Choice):
        return next((choice for choice in param.values if _same(choice, value)), value)
    return value


def _same(choice: Any, value: Any) -> bool:
    """A drawn value is this choice: the same text, or the same number (numpy's too)."""
    if isinstance(choice, str) or isinstance(value, str):
        return isinstance(choice, str) and isinstance(value, str) and choice == value
    numeric = isinstance(value, numbers.Real) and isinstance(choice, numbers.Real)
    return numeric and not isinstance(value, bool) and not isinstance(choice, bool) and choice == value

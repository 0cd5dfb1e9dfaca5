"""The built-in learning-rate schedules: constant, inverse-time, exponential and step.

A schedule is built from keyword options (strings from ``--schedule-opt key=value`` are
converted and checked) and gives the learning rate of each epoch from the initial one::

    schedule = Step(step_size=10, factor=0.5)
    schedule.lr(base_lr=0.1, epoch=25)   # 0.025; epochs count from 0

Each is a ``research.nn.schedule.Schedule``: options declared in its ``__init__``
(research.options) and kept as attributes, ``options`` (the checked values) and
``search_space`` (its options' default search space, on a sensible scale).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from research import hookimpl
from research.nn.schedule import Schedule
from research.options import Option
from research.space import Float, Int


class Constant(Schedule):
    """The initial rate throughout: ``alpha = alpha0``."""

    name = "constant"
    search_space = {}

    def lr(self, base_lr: float, epoch: int) -> float:
        alpha0, _ = self._epoch(base_lr, epoch)
        return alpha0


class InverseTime(Schedule):
    """Inverse-time decay: ``alpha = alpha0 / (1 + decay_rate * epoch)``.

    :param decay_rate: >= 0 (0 is constant); 1 halves the rate after the first epoch.
    """

    name = "inverse-time"
    search_space = {"decay_rate": Float(0.01, 10.0, "log", name="decay_rate")}

    def __init__(self, *, decay_rate: Annotated[float, Option("Decay per epoch", min=0.0)] = 1.0) -> None:
        self.decay_rate = decay_rate

    def lr(self, base_lr: float, epoch: int) -> float:
        alpha0, epoch = self._epoch(base_lr, epoch)
        return alpha0 / (1.0 + self.decay_rate * epoch)


class Exponential(Schedule):
    """Exponential decay: ``alpha = decay_rate**epoch * alpha0``.

    :param decay_rate: the factor per epoch, in (0, 1] (1 is constant).
    """

    name = "exponential"
    search_space = {"decay_rate": Float(0.8, 0.999, "log1m", name="decay_rate")}

    def __init__(self, *, decay_rate: Annotated[float, Option("Factor per epoch", above=0.0, max=1.0)] = 0.95) -> None:
        self.decay_rate = decay_rate

    def lr(self, base_lr: float, epoch: int) -> float:
        alpha0, epoch = self._epoch(base_lr, epoch)
        return self.decay_rate**epoch * alpha0


class Step(Schedule):
    """Step decay: ``alpha = alpha0 * factor**(epoch // step_size)``.

    :param step_size: epochs between drops, an integer >= 1.
    :param factor: multiplies the rate at each drop, in (0, 1] (1 is constant).
    """

    name = "step"
    search_space = {
        "step_size": Int(2, 50, "log", name="step_size"),
        "factor": Float(0.1, 0.9, "log", name="factor"),
    }

    def __init__(self, *, step_size: Annotated[int, Option("Epochs between drops", min=1)] = 10,
                 factor: Annotated[float, Option("Factor at each drop", above=0.0, max=1.0)] = 0.5) -> None:
        self.step_size, self.factor = step_size, factor

    def lr(self, base_lr: float, epoch: int) -> float:
        alpha0, epoch = self._epoch(base_lr, epoch)
        return alpha0 * self.factor ** (epoch // self.step_size)


@hookimpl
def register_schedules(register: Callable[[str, Callable[..., Any]], None]) -> None:
    """Register constant, inverse-time, exponential and step."""
    register("constant", Constant)
    register("inverse-time", InverseTime)
    register("exponential", Exponential)
    register("step", Step)


"""The built-in learning-rate schedules: constant, inverse-time, exponential and step.

A schedule is built from keyword options (strings from ``--schedule-opt key=value`` are
converted and checked) and gives the learning rate of each epoch from the initial one::

    schedule = Step(step_size=10, factor=0.5)
    schedule.lr(base_lr=0.1, epoch=25)   # 0.025; epochs count from 0

Each class has ``options`` (the checked values) and ``search_space`` (its options' default
search space, on a sensible scale).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from research import hookimpl
from research.options import OptionChecked, in_range, number
from research.space import Float, Int, Param


class Schedule(OptionChecked):
    """Shared machinery: unknown option names are errors that list the valid ones.

    Subclasses set ``name`` and ``search_space``, define ``__init__`` with explicit
    keyword-only options (setting ``self.options``) and ``lr``.
    """

    kind = "schedule"
    search_space: ClassVar[dict[str, Param]] = {}
    options: dict[str, Any]

    def _epoch(self, base_lr: float, epoch: int) -> tuple[float, int]:
        """``base_lr`` and ``epoch`` checked (a positive rate, an integer epoch >= 0)."""
        alpha0 = in_range(self.owner, "base_lr", base_lr, lambda x: x > 0.0, "> 0")
        if isinstance(epoch, bool) or int(epoch) != epoch or epoch < 0:
            raise ValueError(f"{self.owner}: epoch must be an integer >= 0, got {epoch!r}")
        return alpha0, int(epoch)

    def lr(self, base_lr: float, epoch: int) -> float:
        """The learning rate of ``epoch`` (counting from 0) for initial rate ``base_lr``."""
        raise NotImplementedError

    def __repr__(self) -> str:
        options = ", ".join(f"{name}={value!r}" for name, value in self.options.items())
        return f"{type(self).__name__}({options})"


class Constant(Schedule):
    """The initial rate throughout: ``alpha = alpha0``."""

    name = "constant"
    search_space = {}

    def __init__(self) -> None:
        self.options = {}

    def lr(self, base_lr: float, epoch: int) -> float:
        alpha0, _ = self._epoch(base_lr, epoch)
        return alpha0


class InverseTime(Schedule):
    """Inverse-time decay: ``alpha = alpha0 / (1 + decay_rate * epoch)``.

    :param decay_rate: >= 0 (0 is constant); 1 halves the rate after the first epoch.
    """

    name = "inverse-time"
    search_space = {"decay_rate": Float(0.01, 10.0, "log", name="decay_rate")}

    def __init__(self, *, decay_rate: float | str = 1.0) -> None:
        rate = in_range(self.owner, "decay_rate", decay_rate, lambda x: x >= 0.0, ">= 0")
        self.options = {"decay_rate": rate}

    def lr(self, base_lr: float, epoch: int) -> float:
        alpha0, epoch = self._epoch(base_lr, epoch)
        return alpha0 / (1.0 + self.options["decay_rate"] * epoch)


class Exponential(Schedule):
    """Exponential decay: ``alpha = decay_rate**epoch * alpha0``.

    :param decay_rate: the factor per epoch, in (0, 1] (1 is constant).
    """

    name = "exponential"
    search_space = {"decay_rate": Float(0.8, 0.999, "log1m", name="decay_rate")}

    def __init__(self, *, decay_rate: float | str = 0.95) -> None:
        rate = in_range(self.owner, "decay_rate", decay_rate, lambda x: 0.0 < x <= 1.0, "in (0, 1]")
        self.options = {"decay_rate": rate}

    def lr(self, base_lr: float, epoch: int) -> float:
        alpha0, epoch = self._epoch(base_lr, epoch)
        return self.options["decay_rate"] ** epoch * alpha0


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

    def __init__(self, *, step_size: int | str = 10, factor: float | str = 0.5) -> None:
        size = number(self.owner, "step_size", step_size)
        if size != int(size) or size < 1:
            raise ValueError(f"{self.owner}: step_size must be an integer >= 1, got {step_size!r}")
        self.options = {
            "step_size": int(size),
            "factor": in_range(self.owner, "factor", factor, lambda x: 0.0 < x <= 1.0, "in (0, 1]"),
        }

    def lr(self, base_lr: float, epoch: int) -> float:
        alpha0, epoch = self._epoch(base_lr, epoch)
        return alpha0 * self.options["factor"] ** (epoch // self.options["step_size"])


@hookimpl
def register_schedules(register: Callable[[str, Callable[..., Any]], None]) -> None:
    """Register constant, inverse-time, exponential and step."""
    register("constant", Constant)
    register("inverse-time", InverseTime)
    register("exponential", Exponential)
    register("step", Step)


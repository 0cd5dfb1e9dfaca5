"""The base of learning-rate schedule plugins (research.contracts.Schedule).

A schedule is built from keyword options, declared in its ``__init__`` (research.options:
strings from ``--schedule-opt key=value`` are converted and checked), and gives the
learning rate of each epoch from the initial one::

    class Cosine(Schedule):
        '''alpha = alpha0 * (1 + cos(pi * min(epoch, epochs) / epochs)) / 2'''

        name = "cosine"
        search_space = {"epochs": Int(10, 200, "log", name="epochs")}

        def __init__(self, *, epochs: Annotated[int, Option("Epochs to reach 0", min=1)] = 50):
            self.epochs = epochs

        def lr(self, base_lr, epoch):
            alpha0, epoch = self._epoch(base_lr, epoch)
            return alpha0 * (1 + math.cos(math.pi * min(epoch, self.epochs) / self.epochs)) / 2

Each option is kept as the attribute of its name; ``options`` gathers them (what rebuilds
the schedule) and ``search_space`` gives their default search space, on a sensible scale.
"""

from __future__ import annotations

from typing import ClassVar

from research.options import Configurable, Option, Spec
from research.space import Param

_BASE_LR = Spec("base_lr", float, option=Option(above=0.0))
_EPOCH = Spec("epoch", int, option=Option(min=0))


class Schedule(Configurable):
    """Shared machinery: options declared in ``__init__``'s signature and checked there,
    ``_epoch`` to check ``lr``'s arguments.

    Subclasses set ``name`` and ``search_space``, define ``__init__`` (if they have options)
    and ``lr``.
    """

    kind = "schedule"
    search_space: ClassVar[dict[str, Param]] = {}

    def _epoch(self, base_lr: float, epoch: int) -> tuple[float, int]:
        """``base_lr`` and ``epoch`` checked (a positive rate, an integer epoch >= 0)."""
        return _BASE_LR.convert(self.owner, base_lr), _EPOCH.convert(self.owner, epoch)

    def lr(self, base_lr: float, epoch: int) -> float:
        """The learning rate of ``epoch`` (counting from 0) for initial rate ``base_lr``."""
        raise NotImplementedError(f"{type(self).__name__} defines no lr(base_lr, epoch), which every schedule has")

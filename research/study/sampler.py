"""The base of sampler plugins (research.contracts.Sampler).

A sampler proposes one configuration at a time from the search space, the study's
``History`` and a generator::

    class Halton(Sampler):
        name = "halton"

        def __init__(self, *, scramble: Annotated[bool, Option("Scramble the sequence")] = True):
            self.scramble = scramble

        def ask(self, space, history, rng):
            ...   # {name: param.from_unit(u) for each parameter}

Options are declared in ``__init__`` (research.options) and kept as attributes of their
names. Samplers are stateless given the history, so a resumed study continues exactly.
Two optional methods tell the strategy how to schedule trials; the base gives their
defaults:

- ``round_of(number) -> int | None``: the round trial ``number`` belongs to (recorded in
  the store), None for samplers without rounds;
- ``needs_finished(number) -> int``: trials ``0..k-1`` must all be finished (or failed)
  before trial ``number`` may be asked, and the history shows only them (so the answer never
  depends on timing); 0 means no wait, and the history shows every trial so far, finished or
  running (a model-based sampler sees what is still running and can avoid it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from research.options import Configurable
from research.space import Param
from research.study.history import History


class Sampler(Configurable):
    """Shared machinery: option checking, ``round_of`` (None), ``needs_finished`` (0) and
    ``budget_fixed`` (None).

    Subclasses set ``name``, define ``__init__`` with declared keyword-only options (each
    kept as the attribute of its name) and ``ask``.
    """

    kind = "sampler"

    def ask(self, space: Mapping[str, Param], history: History, rng: np.random.Generator) -> dict[str, Any]:
        """One configuration: ``{name: value}`` for every parameter of ``space``."""
        raise NotImplementedError(f"{type(self).__name__} defines no ask(space, history, rng), which every sampler has")

    def round_of(self, number: int) -> int | None:
        """The round of trial ``number``; None: this sampler has no rounds."""
        return None

    def needs_finished(self, number: int) -> int:
        """How many leading trials must be done before trial ``number`` is asked (0: none)."""
        return 0

    def budget_fixed(self) -> str | None:
        """Why a study's trial budget cannot change once a trial is drawn (its draws are a design
        laid over ``history.budget``: another budget is another design, whose points the trials
        drawn so far are not), or None (the base: draws that do not depend on the budget)."""
        return None

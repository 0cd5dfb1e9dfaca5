"""The base of strategy plugins: what a strategy declares beyond ``run(study)``.

A strategy drives a study (research.contracts.Strategy). Besides its own options, declared
in ``__init__`` like any ``Configurable`` (an ``Option(flag="--name")`` makes a
``research train`` flag of one), it says which of the study's settings it uses, so a flag
that does not apply to it is refused instead of ignored, and it may bring its own terminal
display.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

from research.contracts import Reporter
from research.options import Configurable

if TYPE_CHECKING:
    from rich.console import Console

    from research.study.store import Store
    from research.study.store import Study as StudyRecord
    from research.study.study import Study

STUDY_SETTINGS = ("space", "trials", "sampler", "workers", "executor", "prune", "budget")
"""The study settings a strategy may use: the searched space and the trial budget, the
sampler, the worker count, the executor and the pruner (each with its ``--NAME`` flag and
its ``-opt`` options), and the study's budget of time and epochs (``--max-minutes``,
``--max-epochs``: ``Study.budget_reached``)."""


def miscast(strategy: object) -> str | None:
    """What a strategy (or its factory) declares with the wrong type, said as the fix, or None:
    ``accepts = "yes"`` was read as the settings y, e, s, so every setting was refused as one
    it "uses none of"; ``epochs_from = 5`` and ``replays = "no"`` were taken as given."""
    accepts = getattr(strategy, "accepts", STUDY_SETTINGS)
    if isinstance(accepts, str) or not isinstance(accepts, (set, frozenset, tuple, list)) \
            or not set(accepts) <= set(STUDY_SETTINGS):
        return (f"declares accepts = {accepts!r}; it must be a set of the study settings it uses, of: "
                f"{', '.join(STUDY_SETTINGS)}")
    epochs_from = getattr(strategy, "epochs_from", None)
    if epochs_from is not None and not isinstance(epochs_from, str):
        return f"declares epochs_from = {epochs_from!r}; it must say what sets each trial's length (a str), or be None"
    replays = getattr(strategy, "replays", True)
    if not isinstance(replays, bool):
        return f"declares replays = {replays!r}; it must be True or False"
    return None


def accepted(strategy: object) -> frozenset[str]:
    """The study settings a strategy (or its factory) uses: its ``accepts``, else all of them,
    as the base declares (a strategy of any class may leave it out)."""
    return frozenset(getattr(strategy, "accepts", STUDY_SETTINGS))


class Strategy(Configurable):
    """Shared machinery of strategies: option checking (see research.options), every study
    setting accepted, the command line's live table of trials as the display.

    Subclasses set ``name``, declare options in ``__init__`` and define ``run``.
    """

    kind = "strategy"
    accepts: ClassVar[frozenset[str]] = frozenset(STUDY_SETTINGS)
    epochs_from: ClassVar[str | None] = None
    """What gives each trial its length when the strategy sets it itself (babysit: "--segments x
    --segment-epochs"), so that --epochs is refused rather than ignored; None: the study's epochs."""
    replays: ClassVar[bool] = True
    """Whether a trial's stored configuration trains it again the same way, which ``research
    confirm`` relies on; False for a strategy that changes hyperparameters while a trial trains."""

    def run(self, study: Study) -> None:
        """Drive ``study`` until its budget is spent (or it is stopped): ask for trials, train
        them through ``study``'s executor, commit every epoch to ``study.store``."""
        raise NotImplementedError(f"{type(self).__name__} defines no run(study), which every strategy has")

    def check_resumed(self, store: Store, record: StudyRecord) -> None:
        """Refuse (UsageError) options the stored study ``record`` cannot go on with, such as
        fewer segments than it has trained; called by ``open_study`` before a resume stores
        them. The base accepts any."""

    def reporter(self, console: Console, ask: Callable[[str], str]) -> Reporter | None:
        """This strategy's own terminal display, or None for the live table of trials.

        :param console: where to print (standard error of the command line).
        :param ask: asks the user a question (its argument lists the choices) and returns
            the answer; end of input answers "stop".
        """
        return None

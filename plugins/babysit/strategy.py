"""The babysit strategy: its options (four of them are ``research train`` flags), its
display, and its registration."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

from research_plugins.babysit.display import BabysitConsole
from research_plugins.babysit.events import END, SEGMENT, STRATEGY, stopped
from rich.console import Console

from research import hookimpl
from research.errors import UsageError
from research.options import Option
from research.study.strategy import Strategy

if TYPE_CHECKING:
    from research.contracts import Reporter
    from research.study.store import Store
    from research.study.store import Study as StudyRecord
    from research.study.study import Study


class Babysit(Strategy):
    """Train one model in segments, changing one hyperparameter at a time between them.

    It trains one model of the given configuration: no search space, trial budget, sampler,
    workers, executor or pruner (``accepts`` is empty).
    """

    name = STRATEGY
    accepts = frozenset()
    epochs_from = "--segments x --segment-epochs"
    replays = False  # its changes are made while the model trains: the stored configuration is the start only

    def __init__(
        self,
        *,
        segment_epochs: Annotated[int, Option("Epochs per segment (a day)", min=1, max=10_000,
                                              flag="--segment-epochs")] = 2,
        segments: Annotated[int, Option("Segments to train", min=1, max=100_000, flag="--segments")] = 15,
        policy: Annotated[str, Option("The automatic policy: auto or none", choices=("auto", "none"),
                                      flag="--policy")] = "auto",
        interactive: Annotated[bool, Option("Ask what to do after each segment", flag="--interactive")] = False,
        plateau: Annotated[float, Option("Smallest relative gain in val loss that is not a plateau",
                                         min=0.0, max=1.0)] = 0.01,
        spike: Annotated[float, Option("Val loss above spike x the best so far is a spike", min=1.0)] = 1.5,
        cut: Annotated[float, Option("Factor the policy multiplies the learning rate by", above=0.0,
                                     below=1.0)] = 0.5,
        floor: Annotated[float, Option("Least fraction of the starting learning rate the policy cuts to",
                                       above=0.0, max=1.0)] = 1e-3,
        cooldown: Annotated[int, Option("Segments without a policy change after an undone one", min=0,
                                        max=1000)] = 2,
        keep_boundaries: Annotated[int, Option("Boundary checkpoints kept on disk, the newest: rollbacks in a row "
                                               "undo at most one fewer segments", min=2)] = 10,
    ):
        self.segment_epochs, self.segments, self.policy, self.interactive = segment_epochs, segments, policy, interactive
        self.plateau, self.spike, self.cut, self.floor, self.cooldown = plateau, spike, cut, floor, cooldown
        self.keep_boundaries = keep_boundaries

    def epochs(self) -> int:
        """The most epochs the model can reach: every segment trained, none rolled back."""
        return self.segments * self.segment_epochs

    def ended(self, store: Store, record: StudyRecord) -> str | None:
        """The status of a stored run that has ended and goes no further with these options, else
        None. A finished run goes on when more segments are asked for than it trained, or when
        its end was a stop (a stopped run's trial is interrupted, but older stores hold it as
        finished); a diverged one does not."""
        trials = store.trials(record)
        if not trials or trials[0].status not in ("finished", "diverged"):
            return None
        ends = store.events(record, kind=END)
        if ends and ends[-1]["data"]["status"] == "finished" and (
                stopped(ends) or len(store.events(record, kind=SEGMENT)) < self.segments):
            return None
        return trials[0].status

    def check_resumed(self, store: Store, record: StudyRecord) -> None:
        """Options the run would not use are refused before they are stored: fewer segments than
        the study has trained (its settings would say it trained fewer), and any change to a run
        that has ended and goes no further (nothing trains, yet the stored study would change)."""
        trained = len(store.events(record, kind=SEGMENT))
        if self.segments < trained:
            raise UsageError(f"study '{record.name}' has trained {trained} segments, so --segments cannot go below "
                             f"{trained}, asked for {self.segments}; ask for more than {trained} to train on")
        status = self.ended(store, record)
        if status is not None:
            fix = f"ask for more --segments than {trained} to train on" if status == "finished" else \
                "a diverged run goes no further: train a new study"
            raise UsageError(f"study '{record.name}' has ended ({status}) and these options train nothing, so they "
                             f"are not stored; {fix}")

    def run(self, study: Study) -> None:
        from research_plugins.babysit.session import Session

        Session(study, self).run()

    def reporter(self, console: Console, ask: Callable[[str], str]) -> Reporter:
        return BabysitConsole(console, ask)


@hookimpl
def register_strategies(register: Any) -> None:
    register(STRATEGY, Babysit)

"""Built-in strategy ``babysit`` (the "panda" school): one model trained in segments, one
hyperparameter nudged at a time between them.

After each segment of ``segment_epochs`` epochs the model is checkpointed (a *boundary*),
then changes come, in this order, from: commands sent from another terminal (``research
set/rollback/stop STUDY``), the user at the prompt (``interactive``), and the automatic
policy. Every change, rollback and decision is an event in the store with the metrics
before and after, so ``research log STUDY`` tells the whole story.

A rollback restores a boundary checkpoint exactly (parameters, optimizer state, RNG,
schedule), so training after a rollback equals training from that checkpoint; the undone
epochs stay in the store, marked rolled back.

The plugin's parts: ``strategy`` (options, display, registration), ``session`` (one run),
``actions`` (what a boundary can do), ``events`` (what it stores), ``commands`` (``research
set/rollback/stop``), ``display`` (the terminal) and ``figure`` (its picture, as data).

The automatic policy:
  - the loss diverged or spiked (val loss above ``spike`` x the best so far): roll back
    the segment and multiply the learning rate that caused it by ``cut`` (after the last
    segment too when it diverged: the run ends at the boundary before, not as diverged);
  - the validation loss plateaued (improved by less than ``plateau``, relative): try
    multiplying the learning rate by ``cut``, and keep that only if the next segment is better
    (otherwise roll back, which also undoes the change, and wait ``cooldown`` segments).
"""

from research_plugins.babysit.commands import register_commands, study_controls
from research_plugins.babysit.events import describe_event
from research_plugins.babysit.figure import study_figure
from research_plugins.babysit.strategy import register_strategies

__all__ = ["describe_event", "register_commands", "register_strategies", "study_controls", "study_figure"]

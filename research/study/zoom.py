"""Coarse to fine across studies: a new study's space, a box around an earlier study's best.

``research train --from-study NAME`` starts a study in the region the study NAME found good:
for each of its searched parameters, the smallest box on the parameter's own scale (unit
coordinates: log for a learning rate, log(1 - beta) for a beta) that holds its best quarter of
scored trials (finished, pruned or diverged: a pruned trial's best epoch says as much of its
region as a finished one's), widened by a quarter of its width on each side (at least ``MIN_WIDTH`` of the whole
range, so that one good value still leaves room to look around), and the values of a choice
that those trials took. The box is copied into the new study's settings as plain space
definitions, so the new study never reads the source again: deleting it breaks no resume.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from research.errors import UsageError
from research.space import Choice, Float, Int, Param, can_hold, parse_space, restrict
from research.study.ranking import SCORED, ranked_scores
from research.study.spec import StudyOptions
from research.study.store import Store

TOP_FRACTION = 0.25  # the source's best quarter of its scored trials
MIN_TRIALS = 4  # fewer scored trials say nothing of a region
MIN_WIDTH = 0.1  # of the unit range: the narrowest box on any axis
PAD = 0.25  # of the box's width, added on each side
DIGITS = 3  # significant digits of a bound, rounded outward


def with_region(options: StudyOptions) -> StudyOptions:
    """A new study's options with ``--from-study``'s region as its space (``--space`` names
    added or replaced); other options as they are."""
    if options.from_study is None:
        return options
    if not options.store.exists():
        raise UsageError(f"--from-study {options.from_study}: there is no store {options.store} to read it from; "
                         "name the store that holds it with --store")
    with Store(options.store, read_only=True) as store:
        region = best_region(store, options.from_study)
    return replace(options, space={**region, **options.space})


def best_region(store: Store, source: str) -> dict[str, str]:
    """The space of study ``source`` narrowed around its best quarter of trials (module doc),
    as definitions."""
    record = store.study(source)
    texts = record.settings.get("space") or {}
    if not texts:
        raise UsageError(f"study '{source}' searched no space ({record.strategy}); --from-study needs a study "
                         "that searched one")
    space = parse_space(texts)
    ranked = [(trial, score) for trial, score in ranked_scores(store, record, SCORED) if score is not None]
    if len(ranked) < MIN_TRIALS:
        failed = sum(trial.status == "failed" for trial in store.trials(record))
        fix = (f"{failed} failed: fix the cause, then `research resume {source} --retry-failed`" if failed else
               "resume it with more --trials first")
        raise UsageError(f"study '{source}' has {len(ranked)} trials with a score (finished, pruned or diverged); "
                         f"--from-study needs at least {MIN_TRIALS}; {fix}")
    if len({score for _, score in ranked}) == 1:
        raise UsageError(f"the {len(ranked)} scored trials of study '{source}' all have the same score, so no "
                         "region is better than another; zoom into a study whose metric tells its trials apart")
    top = [restrict(space, trial.config) for trial, _ in ranked[:max(1, math.ceil(len(ranked) * TOP_FRACTION))]]
    narrowed = {name: _narrowed(param, [c[name] for c in top if c.get(name) is not None])
                for name, param in space.items()}
    return _without_dead_conditions(narrowed)


def _narrowed(param: Param, values: list[Any]) -> Param:
    """``param`` around ``values`` (the best trials' values; none: ``param`` unchanged)."""
    if not values:
        return param
    if isinstance(param, Choice):
        return replace(param, values=tuple(v for v in param.values if v in values))
    units = [min(max(param.to_unit(v), 0.0), 1.0) for v in values]
    low, high = min(units), max(units)
    pad = max((high - low) * PAD, (MIN_WIDTH - (high - low)) / 2)
    low, high = max(low - pad, 0.0), min(high + pad, 1.0)
    if isinstance(param, Int):
        low_value, high_value = param.from_unit(low), param.from_unit(high)
        if low_value == high_value:  # a one-integer box: one more on a side that has room
            low_value, high_value = (low_value - 1, high_value) if high_value == param.high else (
                low_value, high_value + 1)
        return replace(param, low=low_value, high=high_value)
    low_value, high_value = param.from_unit(low), param.from_unit(high)
    rounded = _rounded(param, low_value, down=True), _rounded(param, high_value, down=False)
    if rounded[0] < rounded[1]:
        low_value, high_value = rounded
    return replace(param, low=low_value, high=high_value)


def _rounded(param: Float, value: float, down: bool) -> float:
    """``value`` to DIGITS significant digits, outward (on log1m, of 1 - value), kept inside
    the parameter's bounds."""
    if value in (param.low, param.high):
        return value
    distance = 1.0 - value if param.scale == "log1m" else value
    if distance == 0:
        return value
    step = 10.0 ** (math.floor(math.log10(abs(distance))) - DIGITS + 1)
    outward = down if param.scale != "log1m" else not down  # a lower beta is a larger 1 - beta
    rounded = (math.floor if outward else math.ceil)(distance / step) * step
    value = round(1.0 - rounded if param.scale == "log1m" else rounded, 12)
    return min(max(value, param.low), param.high)


def _without_dead_conditions(space: Mapping[str, Param]) -> dict[str, str]:
    """The space as definitions; a condition keeps only the values its parent still takes, and
    a parameter whose condition can no longer hold is left out (it was never active at the top)."""
    kept: dict[str, Param] = dict(space)
    changed = True
    while changed:
        changed = False
        for name, param in list(kept.items()):
            when = param.when
            if when is None:
                continue
            parent = kept.get(when.parent)
            if parent is None or not can_hold(when, parent):
                del kept[name]
                changed = True
                continue
            if when.op == "=" and isinstance(parent, Choice):
                values = tuple(v for v in when.values if any(str(v) == str(c) for c in parent.values))
                if not values:
                    del kept[name]
                    changed = True
                elif values != when.values:
                    kept[name] = replace(param, when=replace(when, values=values))
    return {name: param.describe() for name, param in kept.items()}

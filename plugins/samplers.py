"""The built-in samplers: random, coarse-to-fine, latin-hypercube and grid.

A sampler proposes one configuration at a time::

    sampler = CoarseToFine(round_size=8, top_k=3, shrink=0.5)
    config = sampler.ask(space, history, rng)   # {"lr": 0.0031, "beta": 0.987, ...}

Every sampler works in unit coordinates (``param.to_unit`` / ``param.from_unit``), where
uniform is uniform on the parameter's own scale: log-uniform for a ``log`` learning rate,
uniform in log(1 - beta) for a ``log1m`` beta. Every value comes from ``param.from_unit``,
so it is on its scale and inside its bounds.

Samplers are stateless: what they need is in the ``History`` (the trial being asked,
the budget, the study seed, the earlier trials), so a resumed study continues exactly.
Given the same history and the same ``rng`` state, ``ask`` returns the same configuration.

Each is a ``research.study.sampler.Sampler`` (which describes the optional ``round_of`` and
``needs_finished``). Options are declared in each ``__init__`` (research.options) and come
from ``--sampler-opt key=value`` as strings: they are converted and checked, and an unknown
option is an error that lists the valid ones.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Callable, Mapping
from typing import Annotated, Any

import numpy as np

from research import hookimpl
from research.options import Option
from research.space import Choice, Int, Param, restrict, sample_uniform
from research.study.history import History, TrialSummary
from research.study.sampler import Sampler

# Salt for the Latin-hypercube permutations, so they never share a stream with the
# per-trial generators (seeded [seed, number]) that strategies hand to ``ask``.
_LHS_SALT = 0x4C4853  # "LHS"
GRID_MAX_POINTS = 10_000  # per axis: each ask lists every axis's points
GRID_LISTED = 100_000  # a grid is checked against a budget up to this by listing its points; beyond, by its order
LHS_MAX_STRATA = 2**20  # a larger budget repeats these strata: each ask builds one permutation of them per axis
log = logging.getLogger(__name__)
_checked: set[tuple] = set()  # grids checked against their budget in this process: one warning, not one per ask


class RandomSampler(Sampler):
    """Random search: every parameter uniform in its unit coordinate.

    That is log-uniform for a ``log`` parameter (lr = 10**r, r uniform) and uniform in
    log10(1 - beta) for a ``log1m`` one. Trials are independent: no rounds, no waiting.
    """

    name = "random"

    def ask(self, space: Mapping[str, Param], history: History, rng: np.random.Generator) -> dict[str, Any]:
        return sample_uniform(space, rng)


def _unit(param: Param, value: Any) -> float | None:
    """The unit coordinate of a recorded value, clipped to [0, 1]; None if unusable."""
    try:
        u = float(param.to_unit(value))
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):
        return None
    return min(max(u, 0.0), 1.0) if math.isfinite(u) else None


class CoarseToFine(Sampler):
    """Coarse to fine: rounds of random search in boxes that shrink around the best trials.

    Trial ``n`` belongs to round ``r = n // round_size``.

    - Round 0 is random search over the whole space.
    - Round ``r >= 1`` waits for rounds ``0..r-1`` to end. Its centers are the ``top_k``
      best finished trials of those rounds (best score first). Trial ``n`` takes center
      ``i = (n - r * round_size) % len(centers)`` (round-robin: the best gets the first trial
      of the round, the second best the next, ...). For each float or int parameter it
      draws uniformly from an interval of width ``w = shrink**r`` in unit coordinates that
      contains the center's coordinate ``c``: ``[c - w/2, c + w/2]``, slid inside [0, 1]
      when it would stick out (the width stays ``w``, so the density stays uniform and
      never piles up at a bound). For a choice it keeps the center's value with
      probability ``1 - shrink**r`` and otherwise draws a value uniformly.
    - If no trial of the earlier rounds finished with a score (all failed), the round is
      random search over the whole space.

    :param round_size: trials per round, an integer >= 1 (default 8).
    :param top_k: how many of the best earlier trials to refine around, >= 1 (default 3).
    :param shrink: each round's box width as a fraction of the previous round's, in (0, 1]
        (default 0.5: round r searches ``0.5**r`` of every axis).
    """

    name = "coarse-to-fine"

    def __init__(self, *, round_size: Annotated[int, Option("Trials per round", min=1)] = 8,
                 top_k: Annotated[int, Option("Best trials to refine around", min=1)] = 3,
                 shrink: Annotated[float, Option("Box width per round, relative", above=0.0, max=1.0)] = 0.5) -> None:
        self.round_size, self.top_k, self.shrink = round_size, top_k, shrink

    def round_of(self, number: int) -> int:
        return int(number) // self.round_size

    def needs_finished(self, number: int) -> int:
        return self.round_of(number) * self.round_size

    def centers(self, space: Mapping[str, Param], history: History) -> list[TrialSummary]:
        """The best finished trials of the rounds before ``history.number``, best first."""
        limit = self.needs_finished(history.number)
        usable = [t for t in history.finished() if t.number < limit and all(k in t.config for k in space)]
        return usable[: self.top_k]

    def ask(self, space: Mapping[str, Param], history: History, rng: np.random.Generator) -> dict[str, Any]:
        r = self.round_of(history.number)
        centers = self.centers(space, history) if r > 0 else []
        if not centers:
            return sample_uniform(space, rng)
        center = centers[(history.number - r * self.round_size) % len(centers)]
        width = self.shrink ** r
        config: dict[str, Any] = {}
        for name, param in space.items():
            # Always two draws per parameter, so the stream does not depend on the branch.
            a, b = float(rng.random()), float(rng.random())
            c = _unit(param, center.config[name])
            if isinstance(param, Choice):
                keep = c is not None and a >= width  # probability 1 - shrink**r
                config[name] = param.from_unit(c if keep else b)  # from_unit(c): the center's value
            elif c is None:
                config[name] = param.from_unit(b)
            else:
                low = min(max(c - width / 2, 0.0), 1.0 - width)
                config[name] = param.from_unit(low + b * width)
        return config


class LatinHypercube(Sampler):
    """A Latin hypercube over the study's budget.

    Each axis is cut into ``B = history.budget`` equal strata (at most ``LHS_MAX_STRATA``)
    in unit coordinates. Axis ``d`` (the d-th parameter of the space) has its own
    permutation ``perm_d`` of the strata, drawn from ``numpy.random.default_rng([seed, salt,
    d])`` (the study seed, so it is the
    same for every trial and on resume). Trial ``n`` takes stratum ``perm_d[n % B]`` plus a
    uniform jitter from ``rng`` inside it (a choice or a linear int: its centre, so that
    each value gets an equal share, within one): over ``B`` trials every stratum of every
    axis is used exactly once, so even a small budget spreads evenly over each hyperparameter.
    Beyond the budget the strata repeat with new jitter. A budget below 1 counts as 1
    (random search).
    """

    name = "latin-hypercube"

    @staticmethod
    def permutation(seed: int, axis: int, budget: int) -> np.ndarray:
        """The stratum order of ``axis`` for a study of ``seed`` and ``budget`` trials."""
        return np.random.default_rng([int(seed) % 2**64, _LHS_SALT, axis]).permutation(max(int(budget), 1))

    def budget_fixed(self) -> str:
        return "its strata are the budget's"

    def ask(self, space: Mapping[str, Param], history: History, rng: np.random.Generator) -> dict[str, Any]:
        strata = min(max(int(history.budget), 1), LHS_MAX_STRATA)
        config: dict[str, Any] = {}
        for axis, (name, param) in enumerate(space.items()):
            stratum = int(self.permutation(history.seed, axis, strata)[history.number % strata])
            jitter = float(rng.random())  # drawn for every axis: the float axes' draws do not depend on the others
            config[name] = param.from_unit((stratum + (0.5 if _equal_slices(param) else jitter)) / strata)
        return config


def _equal_slices(param: Param) -> bool:
    """Whether ``param``'s values own equal slices of the unit axis (a choice, a linear int): at
    the centre of its stratum, each value then takes an equal share of the strata (within one);
    a random position inside would let a stratum that straddles two values give either."""
    return isinstance(param, Choice) or (isinstance(param, Int) and param.scale == "linear")


class Grid(Sampler):
    """Grid search, kept for contrast: prefer random search.

    With ``k`` points per axis a grid tries only ``k`` distinct values of each
    hyperparameter, whatever the budget; when one hyperparameter matters and another does
    not, ``k**2`` trials teach what ``k`` would, while random search tries as many
    distinct values of the important one as there are trials.

    Float and int axes take ``k`` points evenly spaced in unit coordinates, bounds included
    (``u = i / (k - 1)``; an int axis drops repeated integers); a choice axis takes each of
    its values. Trial ``n`` takes grid point ``n % G`` (``G`` points in all, so the grid
    cycles when the budget exceeds it) in mixed-radix order: the last parameter varies
    fastest, like ``itertools.product``. In a conditional space a point leaves out the
    parameters inactive at it, and points that differ only there count once. ``rng`` is not
    used. A grid with more points than the budget warns once per process (``too_big``): its
    first parameters would keep their first value in silence.

    :param points_per_axis: ``k``, an integer >= 2. Default: the largest ``k >= 2`` with
        ``k**d * C <= budget``, where ``d`` is the number of float and int axes and ``C``
        the product of the choices' sizes.
    """

    name = "grid"

    def __init__(self, *,
                 points_per_axis: Annotated[int | None, Option("Points per axis", min=2, max=GRID_MAX_POINTS)] = None):
        self.points_per_axis = points_per_axis

    def budget_fixed(self) -> str | None:
        if self.points_per_axis is None:
            return "points_per_axis left out: its points per axis are the most the budget holds"
        return None

    def points_for(self, space: Mapping[str, Param], budget: int) -> int:
        """``k``: the option, or the largest that fits the budget (at least 2, at most
        ``GRID_MAX_POINTS``)."""
        if self.points_per_axis is not None:
            return self.points_per_axis
        d = sum(not isinstance(p, Choice) for p in space.values())
        c = math.prod(len(p.values) for p in space.values() if isinstance(p, Choice))
        k = 2
        if d:
            k = max(2, int((max(budget, 1) / c) ** (1.0 / d)))
            while (k + 1) ** d * c <= budget:
                k += 1
            while k > 2 and k**d * c > budget:
                k -= 1
        return min(k, GRID_MAX_POINTS)

    def axes(self, space: Mapping[str, Param], budget: int) -> dict[str, list[Any]]:
        """The values each parameter takes on the grid, in grid order."""
        k = self.points_for(space, budget)
        axes: dict[str, list[Any]] = {}
        for name, param in space.items():
            if isinstance(param, Choice):
                axes[name] = list(param.values)
            else:
                values = [param.from_unit(i / (k - 1)) for i in range(k)]
                axes[name] = list(dict.fromkeys(values))  # ints may repeat; order kept
        return axes

    def points(self, space: Mapping[str, Param], budget: int, wanted: int) -> list[dict[str, Any]]:
        """The grid's first ``wanted`` distinct configurations (all of them, when it has fewer)
        in grid order. A parameter inactive at a point (its condition fails) is left out of it,
        so points that differ only there are one: a conditional space's grid never trains
        the same configuration twice."""
        axes = self.axes(space, budget)
        found: dict[tuple, dict[str, Any]] = {}
        for values in itertools.product(*axes.values()):
            config = restrict(space, dict(zip(axes, values)))
            found.setdefault(tuple(config.items()), config)
            if len(found) == wanted:
                break
        return list(found.values())

    def too_big(self, space: Mapping[str, Param], budget: int) -> str | None:
        """Why the budget leaves part of the grid untried, naming the parameters that never vary
        over the trials (in mixed-radix order the first ones keep their first value), or None."""
        budget = max(budget, 1)
        axes = self.axes(space, budget)
        size = math.prod(map(len, axes.values()))  # at least the points: a conditional space merges repeats
        if size <= budget:
            return None
        if budget <= GRID_LISTED:  # the trials' points listed, as ask lists them
            tried = self.points(space, budget, budget + 1)
            if len(tried) <= budget:
                return None
            never = [name for name, values in axes.items()
                     if len(values) > 1 and len({point[name] for point in tried[:budget] if name in point}) <= 1]
        else:  # a parameter varies once those after it have taken all their values
            after = [math.prod(map(len, list(axes.values())[i + 1:])) for i in range(len(axes))]
            never = [name for (name, values), stride in zip(axes.items(), after)
                     if len(values) > 1 and stride >= budget]
        if size <= GRID_LISTED and any(p.when is not None for p in space.values()):
            size = len(self.points(space, budget, size))  # the points, repeats merged
        what = (f"{len(never)} of its {len(axes)} parameters never var{'y' if len(never) > 1 else 'ies'} "
                f"({', '.join(f'{name}={axes[name][0]}' for name in never)})" if never else "the rest are never tried")
        fit = Grid().points_for(space, budget)  # the default: as many points per axis as the budget covers
        fits = math.prod(map(len, Grid(points_per_axis=fit).axes(space, budget).values())) <= budget
        # Facts, not flags: `research sample` counts its draws with -n, and a stored study keeps its options.
        lower = f"; with points_per_axis={fit} it fits in {budget}" if self.points_per_axis is not None and fits else ""
        return (f"sampler 'grid': {budget} trials cover {budget} of the grid's {size} points "
                f"({self.points_for(space, budget)} per axis, the last parameter varying fastest), so {what}; the "
                f"whole grid takes {size} trials{lower}")

    def ask(self, space: Mapping[str, Param], history: History, rng: np.random.Generator) -> dict[str, Any]:
        key = (tuple((name, param.describe()) for name, param in space.items()), history.budget, self.points_per_axis)
        if key not in _checked:  # a warning, not an error: a study may be resumed with more trials
            _checked.add(key)
            if warning := self.too_big(space, history.budget):
                log.warning(warning)
        points = self.points(space, history.budget, history.number + 1)
        return points[history.number % len(points)]


@hookimpl
def register_samplers(register: Callable[[str, Callable[..., Any]], None]) -> None:
    """Register random, coarse-to-fine, latin-hypercube and grid."""
    register("random", RandomSampler)
    register("coarse-to-fine", CoarseToFine)
    register("latin-hypercube", LatinHypercube)
    register("grid", Grid)

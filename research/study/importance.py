"""Which searched hyperparameters mattered: PED-ANOVA over a study's trials.

PED-ANOVA (Watanabe, Bansal, Hutter, "PED-ANOVA: Efficiently Quantifying Hyperparameter
Importance in Arbitrary Subspaces", IJCAI 2023, arXiv:2304.10255) asks how much each
hyperparameter alone explains of *being among the best trials*. Take the trials the study
counts, n of them, best first, and the top set of their k best (the top ``quantile``,
gamma' = k / n). Let b(u) be the density of a parameter's values among all n trials and
t(u) among the top k, both on the parameter's unit coordinate u in [0, 1] (its own scale:
log for ``log``, log(1 - value) for ``log1m``, integers and choices as discrete points).
The indicator "in the top set" has mean gamma' over the trials; the variance of its mean
given the parameter alone (its main effect) is

    v_d = gamma'^2 * D(t || b),   D(t || b) = integral_0^1 b(u) * (t(u) / b(u) - 1)^2 du,

the Pearson divergence of the top set's density from the baseline's, so a parameter whose
best values look like all the others (t = b) explains nothing. The share reported is
``v_d / sum_e v_e``: of what the main effects explain, this parameter's part. The baseline is
every trial the study tried (gamma = 1 in the paper), not the uniform distribution: a sampler
that concentrates its draws (tpe, coarse-to-fine) then does not make a parameter look
important by itself.

Densities are Parzen estimates on a grid of ``GRID`` cells (one cell per integer when there
are at most ``GRID`` of them): a Gaussian kernel on every value, its width by Scott's rule
``h = 1.059 * min(sd, IQR / 1.34) * n**(-1/5)`` (at least one cell), each kernel cut to
[0, 1] and renormalized, plus ``PRIOR`` trial's worth of uniform mass so a small top set is
pulled toward "no information". A choice's density is its counts plus the same prior spread
over its values. With masses m per cell the integral is ``sum (m_t - m_b)^2 / m_b``.

A conditional parameter (inactive in some trials: absent or None in their configuration) is
measured on the trials where it is active, n_a of them with k_a in the top set, and weighted
by how much of each set that is, as conditional PED-ANOVA does (Hatta et al., KDD 2026,
arXiv:2601.20800, as optuna cites it):
``v_d = gamma'^2 * (alpha^2 / beta) * D(t_a || b_a)``, ``alpha = k_a / k``, ``beta = n_a / n``.

Uncertainty, honestly: ``resamples`` bootstrap draws of the trials (with replacement, seeded)
give each share's standard error and 5..95% interval (the bootstrap's spread, set on the share:
``_interval``); the same number of shuffles of the scores (which parameter values go with which
score) give each parameter's permutation p-value, the chance that a parameter that does not
matter gets at least its v_d. The divergence of a small top set is biased upward, which lifts
the share of parameters that do not matter: the p-value says whether a share stands above that
floor; the bootstrap does not correct it.

Which trials count (``study_importance``): the study's search trials that finished, were
pruned or diverged, each scored as ``research show`` ranks it (its best value of the study's
metric, negated when minimized; ties by the validation loss). Pruned and diverged trials keep
the score they reached, as in the ranking: leaving them out would hide the parameters that
get trials pruned; a trial with no usable score ranks last, in the baseline and never in the
top set. Failed trials (an error, not a result), trials still running or interrupted, and
confirmation trials do not count.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from research.errors import UsageError
from research.space import Choice, Int, Param, active, parse_space, restrict
from research.study.objective import Objective
from research.study.ranking import SCORED, ranked_epochs
from research.study.store import Store, Study

QUANTILE = 0.1  # the top set: the best 10% of the trials
MIN_TOP = 3  # trials in the top set at least (more than the quantile gives when the study is small)
FEW_TRIALS = 20  # below this many trials with a score the shares are mostly noise: said in the note
CHANCE_P = 0.05  # when no parameter's p is below this, none stands out from chance: said in the note
GRID = 100  # cells of a numeric parameter's density on [0, 1]
PRIOR = 1.0  # trials' worth of uniform mass added to every density
RESAMPLES = 200  # bootstrap draws, and as many shuffles for the p-values


@dataclass(frozen=True)
class ParamImportance:
    """One parameter's part: its ``share`` of the main effects, the bootstrap's standard
    ``error`` and 5..95% interval set on the share (``low``, ``high``: ``_interval``), the
    permutation ``p`` value, and the ``trials`` (and ``top`` trials) it was active in, on which
    it was measured."""

    name: str
    scale: str  # linear, log, log1m, int, int:log or choice
    share: float
    error: float
    low: float
    high: float
    p: float
    trials: int
    top: int
    condition: str | None = None  # ``optimizer=adam``: when the parameter exists


@dataclass(frozen=True)
class Importance:
    """A study's importances, the largest share first, with how they were computed and a
    ``note`` (None, or one line saying why they mean little)."""

    params: tuple[ParamImportance, ...]
    trials: int  # trials counted
    scored: int  # of them with a usable score
    top: int  # trials in the top set
    quantile: float  # the quantile asked for (top / trials may be more: at least MIN_TOP)
    resamples: int
    seed: int
    note: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def scale_of(param: Param) -> str:
    """The parameter's kind and scale in a word: ``log``, ``int:log``, ``choice``..."""
    if isinstance(param, Choice):
        return "choice"
    if isinstance(param, Int):
        return "int" if param.scale == "linear" else f"int:{param.scale}"
    return param.scale


@dataclass(frozen=True)
class Encoded:
    """One parameter's values over the trials: ``cell`` (n,) the grid cell (a choice: the
    value's index), -1 where inactive; ``u`` (n,) the unit coordinate (NaN where inactive);
    ``centers`` (cells,) of the grid on [0, 1] (None for a choice) and ``widths`` (cells,) the
    share of [0, 1] each cell (each value of a choice) holds."""

    cell: np.ndarray
    u: np.ndarray
    centers: np.ndarray | None
    widths: np.ndarray

    @property
    def cells(self) -> int:
        return len(self.widths)


def encode(param: Param, values: Sequence[Any]) -> Encoded:
    """The trials' ``values`` of ``param`` on its grid; a value it cannot take (None, absent,
    out of range) marks the trial inactive for it."""
    n = len(values)
    cell, u = np.full(n, -1), np.full(n, np.nan)
    known = [i for i, value in enumerate(values) if value is not None and param.contains(value)]
    if isinstance(param, Choice):
        for i in known:
            cell[i] = param.values.index(values[i])
        return Encoded(cell, u, None, np.full(len(param.values), 1.0 / len(param.values)))
    for i in known:
        u[i] = min(max(param.to_unit(values[i]), 0.0), 1.0)
    if isinstance(param, Int) and param.high - param.low < GRID:
        centers = np.array([param.to_unit(k) for k in range(param.low, param.high + 1)])
        edges = np.concatenate([[0.0], (centers[1:] + centers[:-1]) / 2, [1.0]])
        for i in known:
            cell[i] = values[i] - param.low
        return Encoded(cell, u, centers, np.diff(edges))
    for i in known:
        cell[i] = min(int(u[i] * GRID), GRID - 1)
    return Encoded(cell, u, (np.arange(GRID) + 0.5) / GRID, np.full(GRID, 1.0 / GRID))


def bandwidth(u: np.ndarray) -> np.ndarray:
    """Scott's rule on the unit coordinates ``u`` (..., n), NaN where a value is left out:
    ``1.059 * min(sd, IQR / 1.34) * n**(-1/5)`` (the sd alone when the IQR is 0), at least
    one grid cell; one bandwidth per row (a float for one set)."""
    u = np.atleast_2d(u)
    counted = np.sum(~np.isnan(u), axis=-1)
    filled = np.where(counted[:, None] > 0, u, 0.5)  # a row with nothing counted: any value, floored below
    # The sample sd over the values counted, 0 where there is only one (nanstd would warn there).
    deviation = np.where(np.isnan(filled), 0.0, filled - np.nanmean(filled, axis=-1, keepdims=True))
    sd = np.where(counted > 1, np.sqrt(np.sum(deviation ** 2, axis=-1) / np.maximum(counted - 1, 1)), 0.0)
    ordered = np.sort(filled, axis=-1)
    q1, q3 = (_quantile(ordered, counted, q) for q in (0.25, 0.75))
    spread = np.where(q3 > q1, np.minimum(sd, (q3 - q1) / 1.34), sd)
    h = np.maximum(1.059 * spread * np.maximum(counted, 1) ** -0.2, 1.0 / GRID)
    return h if h.shape[0] > 1 else h[0]


def _quantile(ordered: np.ndarray, counted: np.ndarray, q: float) -> np.ndarray:
    """numpy's linear quantile ``q`` of the first ``counted`` values of each row of ``ordered``
    (sorted, NaN last): np.nanpercentile without its loop over rows (the caller sorts once for
    both quartiles)."""
    at = q * np.maximum(counted - 1, 0)
    low = np.floor(at).astype(int)
    high = np.minimum(low + 1, np.maximum(counted - 1, 0))
    below = np.take_along_axis(ordered, low[:, None], -1)[:, 0]
    above = np.take_along_axis(ordered, high[:, None], -1)[:, 0]
    return below + (above - below) * (at - low)


def _gaussians(centers: np.ndarray, h: np.ndarray) -> np.ndarray:
    """``exp(-(c_j - c_i)^2 / (2 h^2))`` (R, cells, cells) for each bandwidth of ``h`` (R,). On an
    evenly spaced grid the value depends on |i - j| alone: computed once per distance, then
    gathered (the exponentials of the full matrices dominated the bootstrap)."""
    cells = len(centers)
    steps = np.diff(centers)
    if cells > 1 and np.allclose(steps, steps[0]):
        distance = np.abs(np.arange(cells)[:, None] - np.arange(cells)[None, :])
        return np.exp(-0.5 * (np.arange(cells) * steps[0] / h[:, None]) ** 2)[:, distance]
    gap = centers[None, None, :] - centers[None, :, None]
    return np.exp(-0.5 * (gap / h[:, None, None]) ** 2)


def density(encoded: Encoded, rows: np.ndarray, *, same_trials: bool = False) -> np.ndarray:
    """The Parzen masses (..., cells) of the values in ``rows`` (..., m) (indexes of trials,
    repeats allowed; one set per row; an inactive trial is left out), each summing to 1: a
    Gaussian kernel per value, cut to [0, 1] and renormalized (a choice: its count), plus
    ``PRIOR`` trials' worth of uniform mass. ``same_trials``: every row holds the same trials in
    another order (the shuffles), so rows differ only by their bandwidth's rounding and each
    distinct bandwidth is smoothed once (smoothing every row took a third of a study's importance)."""
    single = np.ndim(rows) == 1
    rows = np.atleast_2d(rows)
    cells = encoded.cell[rows]
    valid = cells >= 0
    offsets = np.arange(len(rows))[:, None] * encoded.cells
    counts = np.bincount((cells + offsets)[valid], minlength=len(rows) * encoded.cells).astype(float)
    counts = counts.reshape(len(rows), encoded.cells)
    widths = encoded.widths
    if encoded.centers is not None:
        h = np.atleast_1d(bandwidth(np.where(valid, encoded.u[rows], np.nan)))
        first, again = np.unique(h, return_index=True, return_inverse=True)[1:] if same_trials else (slice(None),) * 2
        kernel = _gaussians(encoded.centers, h[first])  # symmetric: row i is the kernel of a value in cell i
        cut = kernel @ widths  # (rows smoothed, cells): the mass each cell's kernel keeps inside [0, 1]
        counts = (((counts[first] / cut)[:, None, :] @ kernel)[:, 0, :] * widths)[again]
    masses = (counts + PRIOR * widths) / (valid.sum(axis=-1, keepdims=True) + PRIOR)
    return masses[0] if single else masses


def pearson(top: np.ndarray, base: np.ndarray) -> np.ndarray:
    """``sum (top - base)^2 / base`` over the cells (the last axis): the Pearson divergence of
    two mass vectors (one per row)."""
    return np.sum((top - base) ** 2 / base, axis=-1)


def _variances(encoded: list[Encoded], rows: np.ndarray, k: int, *, shuffles: bool = False) -> np.ndarray:
    """v (R, d) of each parameter for each ordering of trials in ``rows`` (R, n), best first:
    the first ``k`` of a row are its top set; ``shuffles``: every row orders all the trials."""
    n = rows.shape[1]
    found = np.zeros((len(rows), len(encoded)))
    for d, param in enumerate(encoded):
        in_top = np.sum(param.cell[rows[:, :k]] >= 0, axis=1)
        active = np.sum(param.cell[rows] >= 0, axis=1)
        usable = (in_top > 0) & (active >= 2)
        if not usable.any():
            continue
        alpha, beta = in_top / k, np.maximum(active, 1) / n
        divergence = pearson(density(param, rows[:, :k]), density(param, rows, same_trials=shuffles))
        found[:, d] = np.where(usable, (k / n) ** 2 * alpha**2 / beta * divergence, 0.0)
    return found


def _shares(v: np.ndarray) -> np.ndarray:
    """v / sum(v) along the last axis; all zeros where nothing explains anything."""
    total = v.sum(axis=-1, keepdims=True)
    return np.divide(v, total, out=np.zeros_like(v), where=total > 0)


def importance(space: Mapping[str, Param], configs: Sequence[Mapping[str, Any]], scores: Sequence[float | None], *,
               quantile: float = QUANTILE, resamples: int = RESAMPLES, seed: int = 0) -> Importance:
    """Each parameter of ``space``'s share of what the main effects explain of reaching the top
    ``quantile`` of ``scores`` (higher is better; None: no usable score, ranked last), over the
    trials' ``configs`` (a parameter absent or None in one is inactive there). Equal scores keep
    the order given (give the trials ranked, ties broken). A UsageError when fewer than
    ``2 * MIN_TOP`` trials have a score."""
    if not 0 < quantile < 1:
        raise UsageError(f"the top quantile must be between 0 and 1 (0.1: the best 10%), got {quantile}")
    if resamples < 1:
        raise UsageError(f"resamples must be at least 1, got {resamples}")
    if len(configs) != len(scores):
        raise UsageError(f"{len(configs)} configurations and {len(scores)} scores; give one score per trial")
    _check_trials(space, configs, scores)
    n, scored = len(scores), sum(score is not None for score in scores)
    if scored < 2 * MIN_TOP:
        raise UsageError(f"importance needs at least {2 * MIN_TOP} trials with a score (and means little below "
                         f"{FEW_TRIALS}), got {scored}; run more trials")
    if len({score for score in scores if score is not None}) == 1:
        raise UsageError(f"the {scored} scored trials all have the same score, so no hyperparameter explains a "
                         "difference; measure a study whose metric tells its trials apart")
    k = max(math.ceil(quantile * n), MIN_TOP)
    if k > scored - MIN_TOP:
        raise UsageError(f"the top {quantile:.0%} is {k} trials and {scored} of {n} have a score, which leaves "
                         f"fewer than {MIN_TOP} to set it against; ask for a smaller quantile or run more trials")
    keys = np.array([score if score is not None else -np.inf for score in scores], dtype=float)
    rank = np.empty(n, dtype=int)
    rank[np.argsort(-keys, kind="stable")] = np.arange(n)  # 0 for the best
    by_rank = np.argsort(rank)
    names = list(space)
    encoded = [encode(space[name], [config.get(name) if active(space, config, name) else None for config in configs])
               for name in names]
    v = _variances(encoded, by_rank[None, :], k)[0]
    rng = np.random.default_rng(seed)
    drawn = rng.integers(0, n, size=(resamples, n))
    boot = _shares(_variances(encoded, np.take_along_axis(drawn, np.argsort(rank[drawn], axis=1, kind="stable"), 1),
                              k))
    shuffled = _variances(encoded, rng.permuted(np.tile(np.arange(n), (resamples, 1)), axis=1), k, shuffles=True)
    shares = _shares(v)
    low, high = _interval(boot, shares)
    error = np.std(boot, axis=0, ddof=1) if resamples > 1 else np.zeros(len(names))
    p = (1 + np.sum(shuffled >= v, axis=0)) / (1 + resamples)
    found = [ParamImportance(name, scale_of(space[name]), float(shares[d]), float(error[d]), float(low[d]),
                             float(high[d]), float(p[d]), int(np.sum(encoded[d].cell >= 0)),
                             int(np.sum(encoded[d].cell[by_rank[:k]] >= 0)),
                             space[name].when.describe() if space[name].when is not None else None)
             for d, name in enumerate(names)]
    found.sort(key=lambda item: -item.share)
    return Importance(tuple(found), n, scored, k, quantile, resamples, seed, _note(n, scored, k, quantile, found))


def _interval(boot: np.ndarray, shares: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each share's interval (low, high), (d,) each: the bootstrap shares ``boot`` (R, d) from
    their 5th to their 95th percentile, moved so that their median falls on the ``shares`` (d,),
    and cut to [0, 1]: ``share - (median - q5) .. share + (q95 - median)``.

    A resample repeats trials, which sharpens its top set's density and lifts every divergence,
    so the resampled shares sit off the share (a dominant one's below it, a negligible one's
    above) and their plain percentiles could leave the share outside its own interval (one share in
    twenty or so, in studies of 10 to 40 trials). How far the share would move is what the
    bootstrap measures; where its shares sit is that artefact of resampling, so the spread is
    kept and set on the share. It corrects no bias of the share itself (the module's note)."""
    q5, median, q95 = np.percentile(boot, [5, 50, 95], axis=0)
    return np.clip(shares - (median - q5), 0.0, 1.0), np.clip(shares + (q95 - median), 0.0, 1.0)


def _check_trials(space: Mapping[str, Param], configs: Sequence[Mapping[str, Any]],
                  scores: Sequence[float | None]) -> None:
    """A UsageError naming a space's value that is no parameter (a definition's text), or the
    first trial whose score is not a finite number or None (a NaN would count as scored), or
    whose configuration gives a parameter active in it no value or one outside the space (it
    would be dropped from that parameter's share in silence). A value of a parameter inactive in
    a trial (its condition false there) is not counted, as a study would not have drawn it."""
    for name, param in space.items():
        if not isinstance(param, Param):
            raise UsageError(f"space[{name!r}] is {param!r}, not a parameter; make the space with "
                             "research.space.parse_space({...}) or of Float, Int and Choice")
    for i, score in enumerate(scores):
        if score is not None and (isinstance(score, (bool, np.bool_))
                                  or not (isinstance(score, (int, float, np.number)) and math.isfinite(score))):
            raise UsageError(f"scores[{i}] is {score!r}; give a finite number, or None for a trial without a usable "
                             "score")
    for i, config in enumerate(configs):
        if not isinstance(config, Mapping):
            raise UsageError(f"configs[{i}] is {config!r:.80}, not a configuration; give each trial a mapping of "
                             "its parameters' values ({'lr': 0.01, ...})")
        for name, param in space.items():
            value = config.get(name)
            if value is None:
                if active(space, config, name):
                    raise UsageError(f"configs[{i}] has no value of {name}, which is active in it; give every trial "
                                     "the values it trained with")
            elif active(space, config, name) and not param.contains(value):
                raise UsageError(f"configs[{i}] has {name}={value!r}, outside the space {name}={param.describe()}")


def _note(n: int, scored: int, k: int, quantile: float, found: Sequence[ParamImportance]) -> str | None:
    """One line when the numbers mean little: too few trials, no parameter apart from chance, or a
    top set made bigger than asked."""
    parts = []
    if scored < FEW_TRIALS:
        parts.append(f"only {scored} trials have a score: at this size the shares are mostly noise (see ± and p); "
                     f"run more trials, {FEW_TRIALS} at least, 100 for a clear answer")
    elif found and (least := min(found, key=lambda item: item.p)).p > CHANCE_P:
        parts.append(f"no parameter stands out from chance (the smallest p is {least.p:.3f}, {least.name}'s), so "
                     "the order of the shares may be noise; run more trials")
    if k > math.ceil(quantile * n):
        parts.append(f"the top set is the best {k} of {n} trials ({k / n:.0%}, not the {quantile:.0%} asked); "
                     f"run {math.ceil(MIN_TOP / quantile)} trials or more for the {quantile:.0%} to hold {MIN_TOP}")
    return "; ".join(parts) or None


def study_importance(store: Store, study: Study, *, quantile: float = QUANTILE, resamples: int = RESAMPLES,
                     seed: int = 0, curves: Mapping[int, list[dict[str, Any]]] | None = None) -> Importance:
    """:func:`importance` of a stored study, over the trials that count (module docstring),
    scored and ranked as ``research show`` ranks them (``curves``: the study's curves when the
    caller has read them, ``Store.curves``). A UsageError for a study that searched no
    hyperparameters."""
    texts = study.settings.get("space") or {}
    if not texts:
        raise UsageError(f"study '{study.name}' ({study.strategy}) searched no hyperparameters, so none can matter "
                         "more than another; measure a study that samples a search space")
    objective = Objective.of(study.settings)
    ranked = ranked_epochs(store, study, SCORED, curves)
    places = [objective.rank(epoch) if epoch is not None else None for _, epoch in ranked]
    # importance() reads only the order of the scores: each trial's is its place in the ranking,
    # so trials tie only when their tie-break ties too.
    first: dict[tuple[float, float], int] = {}
    scores = [-first.setdefault(place, i) if place is not None else None for i, place in enumerate(places)]
    space = parse_space(texts)
    found = importance(space, [restrict(space, trial.config) for trial, _ in ranked], scores, quantile=quantile,
                       resamples=resamples, seed=seed)
    if len({place[0] for place in places if place is not None}) == 1:  # the ranking is the tie-break's alone
        tie = objective.tie_break.metric
        note = (f"every scored trial has the same {objective.metric}, so the top set is the best by {tie}, the "
                f"tie-break of the ranking")
        found = replace(found, note="; ".join(filter(None, (note, found.note))))
    return found

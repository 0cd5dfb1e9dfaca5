"""The `gp` sampler: Bayesian optimization with a Gaussian process and expected improvement.

After ``startup`` trials (the centre of the space, then a Latin hypercube), each ask fits a Gaussian process to
the scored trials and proposes the candidate of highest expected improvement over the best score so far::

    sampler = GaussianProcess(startup=6)
    config = sampler.ask(space, history, rng)   # {"lr": 0.0031, "beta": 0.987, ...}

Inputs are features in [0, 1]: a float's unit coordinate (``param.to_unit``, so log and
log1m scales are modelled on their own scale), an int's unit coordinate snapped to the
middle of its integer's slice, a choice as one-hot columns. An inactive parameter (value
None or absent, a conditional space) sits at 0.5, or on no one-hot column.

The model, on scores standardized to mean 0 and variance 1, the lower half compressed
(``tame_lower_half``: how bad a bad trial was says little about where the best ones are), as
``y``, shape (n,)::

    k(x, x') = s2 * (1 + sqrt(5) r + 5/3 r**2) * exp(-sqrt(5) r),   r**2 = sum_d (x_d - x'_d)**2 / l_d**2
    y ~ N(0, K + noise * I)

(Matern 5/2 with one length scale ``l_d`` per feature column, a constant mean of 0 on the
standardized scores, a noise term). ``log l``, ``log s2`` and ``log noise`` maximize the log
marginal likelihood plus weak log-normal priors, by L-BFGS on its analytic gradient within
fixed bounds. Nothing is kept between asks: every ask refits from the same start, so the
answer depends only on the history and ``rng``.

Which trials count (``TrialSummary.score`` is higher-is-better):

- finished with a score: observed;
- pruned with a score (its best partial score): observed with that score; the pruner
  stopped it for being bad, and its partial score says so;
- diverged: observed with the worst score of the others (the region blew up);
- pending, running or interrupted (to be resumed): not done yet, so a constant liar: they
  are conditioned on with the worst observed score (not used to fit the hyperparameters),
  so the next ask moves away from them instead of proposing them again to a parallel worker;
- failed, or anything without a score: left out (a failure may be the machine's, not the
  configuration's).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Annotated, Any

import numpy as np
from research_plugins.samplers import LatinHypercube
from threadpoolctl import threadpool_limits

from research import hookimpl
from research.options import Option
from research.space import Choice, Int, Param, sample_uniform
from research.study.history import History
from research.study.sampler import Sampler

PENDING = ("pending", "running", "interrupted")
OBSERVED = ("finished", "pruned")
SNAP_MAX = 4096  # ints with more values are modelled as continuous (a table per ask is too long)
LOCAL_CENTERS = 5  # best trials perturbed, then best candidates refined
LOCAL_STEPS = (0.01, 0.03, 0.1, 0.3)  # std of a local step, unit coordinates (chosen per candidate)
REFINE_STEPS = (0.003, 0.01, 0.03)
# Bounds of (log l, log s2, log noise) and the centres/widths of their log-normal priors.
LOG_L = (math.log(0.01), math.log(30.0))
LOG_S2 = (math.log(0.05), math.log(20.0))
LOG_NOISE = (math.log(1e-6), math.log(1.0))
PRIOR_L, PRIOR_S2, PRIOR_NOISE = (math.log(0.5), 1.5), (0.0, 1.0), (math.log(1e-2), 2.0)
FIT_EVALUATIONS = 30  # of the log evidence and its gradient, per ask
FIT_MAX = 100  # trials the hyperparameters are fitted on (evenly spread over the study), for the cost
SQRT5 = math.sqrt(5.0)
TAME_WIDTH = 0.5  # standardized units over which the scores below the median keep their scale


def standardize(values: np.ndarray) -> np.ndarray:
    """Mean 0 and variance 1 (a constant stays at 0)."""
    sd = values.std()
    return (values - values.mean()) / (sd if sd > 0 else 1.0)


def tame_lower_half(y: np.ndarray, width: float = TAME_WIDTH) -> np.ndarray:
    """Standardized scores with those below the median pulled toward it, order kept, restandardized:
    ``median - width * log1p((median - y) / width)``.

    A network that diverged or a learning rate far too small scores many standard deviations
    below the good trials; fitted as they are, those few outliers set the model's variance and
    length scales, and the differences among the good trials, where the next trial should go,
    look like noise. Compressed (at most logarithmically), they still say "bad here", and the
    model spends itself on the top half. Measured (docs/samplers.md): no loss on the synthetic
    objectives, slightly better picks on digits and breast cancer; cutting the lower half flat
    instead lost the smooth objectives' optima.
    """
    median = float(np.median(y))
    below = np.maximum(median - y, 0.0)
    return standardize(np.where(y < median, median - width * np.log1p(below / width), y))


class Features:
    """Configurations as feature rows in [0, 1], and unit coordinates as candidates.

    A candidate is a row of unit coordinates, one per parameter (shape (m, P)); its features
    (shape (m, F)) are a float's coordinate, an int's coordinate snapped to its integer's
    middle, a choice's one-hot columns (the value ``from_unit`` picks), and an inactive
    parameter's 0.5 or zero columns.
    """

    def __init__(self, space: Mapping[str, Param]) -> None:
        self.space = dict(space)
        self.names = list(space)
        self.columns: list[slice] = []
        start = 0
        for param in space.values():
            width = len(param.values) if isinstance(param, Choice) else 1
            self.columns.append(slice(start, start + width))
            start += width
        self.width = start
        self.snaps = {name: _snap_table(p) for name, p in space.items() if isinstance(p, Int)}

    def unit(self, name: str, value: Any) -> float | None:
        """The unit coordinate of a recorded value in [0, 1]; None if absent or unusable."""
        if value is None:
            return None
        try:
            u = float(self.space[name].to_unit(value))
        except (TypeError, ValueError, ZeroDivisionError, OverflowError):
            return None
        return min(max(u, 0.0), 1.0) if math.isfinite(u) else None

    def units(self, configs: list[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
        """Unit rows (len(configs), P) of recorded configurations and whether each value is
        there (same shape); a missing one (None, absent, unusable) is 0.5 and inactive."""
        u = np.full((len(configs), len(self.names)), 0.5)
        live = np.zeros(u.shape, dtype=bool)
        for i, config in enumerate(configs):
            for p, name in enumerate(self.names):
                c = self.unit(name, config.get(name))
                if c is not None:
                    u[i, p], live[i, p] = c, True
        return u, live

    def snap(self, name: str, u: np.ndarray) -> np.ndarray:
        """An int's coordinates moved to the middle of their integer's slice (floats: as given)."""
        table = self.snaps.get(name)
        if table is None:
            return u
        edges, middles = table
        return middles[np.searchsorted(edges, u)]

    def rows(self, u: np.ndarray, live: np.ndarray | None = None) -> np.ndarray:
        """Feature rows (m, F) of unit rows ``u`` (m, P); ``live`` (m, P) says which parameters
        are active (default: as their conditions say, ``active``); inactive ones sit at 0.5,
        or on no one-hot column."""
        live = self.active(u) if live is None else live
        x = np.zeros((len(u), self.width))
        for p, (name, param, cols) in enumerate(zip(self.names, self.space.values(), self.columns)):
            on = live[:, p]
            if isinstance(param, Choice):
                k = len(param.values)
                index = np.minimum((u[:, p] * k).astype(int), k - 1)
                x[np.flatnonzero(on), cols.start + index[on]] = 1.0
            else:
                x[:, cols.start] = np.where(on, self.snap(name, u[:, p]), 0.5)
        return x

    def active(self, u: np.ndarray) -> np.ndarray:
        """Whether each parameter is active in each candidate (m, P): its condition holds on its
        parent's value and the parent is active (research.space.active, on whole columns)."""
        live = np.ones(u.shape, dtype=bool)
        done: set[int] = set()

        def settle(p: int) -> None:
            when = self.space[self.names[p]].when
            done.add(p)
            if when is None:
                return
            if when.parent not in self.space:
                live[:, p] = False
                return
            q = self.names.index(when.parent)
            if q not in done:
                settle(q)
            parent = self.space[when.parent]
            if isinstance(parent, Choice):
                k = len(parent.values)
                holds = np.array([when.holds(v) for v in parent.values])
                ok = holds[np.minimum((u[:, q] * k).astype(int), k - 1)]
            else:
                ok = np.array([when.holds(parent.from_unit(float(c))) for c in u[:, q]], dtype=bool)
            live[:, p] = live[:, q] & ok

        for p in range(len(self.names)):
            if p not in done:
                settle(p)
        return live

    def config(self, u: np.ndarray) -> dict[str, Any]:
        """The configuration of one candidate (P,): every parameter, through ``from_unit``."""
        return {name: param.from_unit(float(c)) for (name, param), c in zip(self.space.items(), u)}


def _snap_table(param: Int) -> tuple[np.ndarray, np.ndarray] | None:
    """(edges, middles) of an int's slices in unit coordinates: integer ``low + i`` owns
    ``edges[i-1] < u <= edges[i]`` and sits at ``middles[i]``; None for a range too long."""
    if param.high - param.low + 1 > SNAP_MAX:
        return None
    values = range(param.low, param.high + 1)
    edges = np.array([param.to_unit(k + 0.5) for k in values[:-1]])
    middles = np.array([min(max(param.to_unit(k), 0.0), 1.0) for k in values])
    return edges, middles


def matern(x: np.ndarray, z: np.ndarray, lengths: np.ndarray, s2: float) -> tuple[np.ndarray, np.ndarray]:
    """Matern 5/2 between rows of ``x`` (n, F) and ``z`` (m, F), and ``r`` (n, m).

    ``k = s2 * (1 + sqrt(5) r + 5/3 r**2) * exp(-sqrt(5) r)``, ``r**2 = sum_d (x_d - z_d)**2 / l_d**2``.
    """
    a, b = x / lengths, z / lengths
    r = a @ b.T  # in place from here on: these arrays are large for candidates
    r *= -2.0
    r += (a * a).sum(1)[:, None]
    r += (b * b).sum(1)[None, :]
    np.maximum(r, 0.0, out=r)
    np.sqrt(r, out=r)
    k = np.multiply(r, -SQRT5)
    np.exp(k, out=k)
    poly = np.multiply(r, 5.0 / 3.0)  # s2 * (1 + r * (sqrt(5) + 5/3 r))
    poly += SQRT5
    poly *= r
    poly += 1.0
    poly *= s2
    k *= poly
    return k, r


def _cholesky(k: np.ndarray) -> np.ndarray | None:
    """``L`` with ``L @ L.T = k + jitter * I``, the jitter raised until it works; None if never."""
    scale = float(np.mean(np.diag(k)))
    for jitter in (0.0, 1e-10, 1e-8, 1e-6, 1e-4):
        try:
            return np.linalg.cholesky(k + jitter * scale * np.eye(len(k)))
        except np.linalg.LinAlgError:
            continue
    return None


def log_evidence(theta: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Log marginal likelihood plus log priors, and its gradient, at ``theta`` (F + 2,).

    ``theta = [log l_1..log l_F, log s2, log noise]``; with ``K = k(x, x) + noise * I``,
    ``alpha = K^-1 y`` and ``W = alpha alpha^T - K^-1``::

        lml = -y^T alpha / 2 - log det(K) / 2 - n log(2 pi) / 2
        d lml / d theta_j = tr(W dK/dtheta_j) / 2
        dK/dlog s2 = K - noise I,  dK/dlog noise = noise I,
        dK/dlog l_d = s2 * 5/3 (1 + sqrt(5) r) exp(-sqrt(5) r) * (x_d - x'_d)**2 / l_d**2

    Returns (-inf, zeros) when ``K`` cannot be factored.
    """
    n, f = x.shape
    lengths, s2, noise = np.exp(theta[:f]), math.exp(theta[f]), math.exp(theta[f + 1])
    k, r = matern(x, x, lengths, s2)
    chol = _cholesky(k + noise * np.eye(n))
    if chol is None:
        return -math.inf, np.zeros_like(theta)
    inverse_l = np.linalg.inv(chol)
    k_inv = inverse_l.T @ inverse_l
    alpha = k_inv @ y
    lml = -0.5 * float(y @ alpha) - float(np.log(np.diag(chol)).sum()) - 0.5 * n * math.log(2 * math.pi)
    w = np.outer(alpha, alpha) - k_inv
    grad = np.empty_like(theta)
    # sum_ij A_ij (x_id - x_jd)**2 = 2 sum_i x_id**2 rowsum(A)_i - 2 sum_i x_id (A x)_id for symmetric A
    # s2 * 5/3 (1 + sqrt(5) r) exp(-sqrt(5) r), from k (exp is the costly part)
    a = w * k * ((5.0 / 3.0) * (1.0 + SQRT5 * r) / (1.0 + SQRT5 * r + (5.0 / 3.0) * r * r))
    grad[:f] = (x * x * a.sum(1)[:, None] - x * (a @ x)).sum(0) / lengths**2
    grad[f] = 0.5 * float((w * k).sum())
    grad[f + 1] = 0.5 * noise * float(np.trace(w))
    prior, dprior = _log_prior(theta, f)
    return lml + prior, grad + dprior


def _log_prior(theta: np.ndarray, f: int) -> tuple[float, np.ndarray]:
    """Independent normal priors on each log hyperparameter (up to a constant), and the gradient."""
    centre = np.array([PRIOR_L[0]] * f + [PRIOR_S2[0], PRIOR_NOISE[0]])
    width = np.array([PRIOR_L[1]] * f + [PRIOR_S2[1], PRIOR_NOISE[1]])
    z = (theta - centre) / width
    return -0.5 * float(z @ z), -z / width


def maximize(fun: Callable[[np.ndarray], tuple[float, np.ndarray]], x0: np.ndarray, low: np.ndarray,
             high: np.ndarray, evaluations: int) -> np.ndarray:
    """Projected L-BFGS ascent of ``fun`` (value, gradient) from ``x0`` within [low, high], for
    at most ``evaluations`` calls: the two-loop recursion over the last 6 steps (directions
    held at the bounds they push against), backtracking until the value rises enough."""
    x = np.clip(x0, low, high)
    value, grad = fun(x)
    calls = 1
    steps: list[tuple[np.ndarray, np.ndarray]] = []
    while calls < evaluations and math.isfinite(value):
        q = -grad  # the recursion descends on -fun
        alphas = []
        for s, g in reversed(steps):
            a = float(s @ q) / float(g @ s)
            alphas.append(a)
            q = q - a * g
        if steps:
            s, g = steps[-1]
            q = q * (float(s @ g) / float(g @ g))
        for (s, g), a in zip(steps, reversed(alphas)):
            q = q + s * (a - float(g @ q) / float(g @ s))
        direction = -q
        if float(direction @ grad) <= 0:  # not an ascent direction: start over from the gradient
            steps, direction = [], grad / max(1.0, float(np.linalg.norm(grad)))
        direction[((x <= low) & (direction < 0)) | ((x >= high) & (direction > 0))] = 0.0
        t, rose = 1.0, False
        while calls < evaluations and not rose:
            candidate = np.clip(x + t * direction, low, high)
            new_value, new_grad = fun(candidate)
            calls += 1
            rose = new_value > value + 1e-4 * float(grad @ (candidate - x))  # Armijo: a sufficient rise
            t *= 0.3
        if not rose:
            break
        s, g = candidate - x, -(new_grad - grad)
        if float(s @ g) > 1e-12:
            steps = (steps + [(s, g)])[-6:]
        converged = abs(new_value - value) < 1e-6 * max(1.0, abs(value))
        x, value, grad = candidate, new_value, new_grad
        if converged:
            break
    return x


_ERFC = (-1.26551223, 1.00002368, 0.37409196, 0.09678418, -0.18628806, 0.27886807, -1.13520398, 1.48851587,
         -0.82215223, 0.17087277)


def erfcx(x: np.ndarray) -> np.ndarray:
    """``exp(x**2) * erfc(x)`` for ``x >= 0``, to a relative 1.2e-7 (Numerical Recipes' erfcc,
    without its ``exp(-x**2)`` factor, so it never underflows)."""
    t = 1.0 / (1.0 + 0.5 * x)
    poly = np.zeros_like(t)
    for c in reversed(_ERFC[1:]):
        poly = c + t * poly
    return t * np.exp(_ERFC[0] + t * poly)


def log_expected_improvement(mean: np.ndarray, sd: np.ndarray, best: float) -> np.ndarray:
    """``log EI`` of predictions ``mean``, ``sd`` (m,) over ``best``, without underflow.

    ``EI = sd * h(z)``, ``z = (mean - best) / sd``, ``h(z) = phi(z) + z Phi(z)``. For ``z < 0``,
    ``h(z) = exp(-z**2/2) (1/sqrt(2 pi) + z/2 erfcx(-z/sqrt(2)))``; below ``z = -30`` the bracket
    is its asymptotic series ``(1/z**2 - 3/z**4 + 15/z**6) / sqrt(2 pi)``.
    """
    z = (mean - best) / sd
    c = 1.0 / math.sqrt(2 * math.pi)
    zp = np.maximum(z, 0.0)
    upper = c * np.exp(-0.5 * zp * zp) + zp * (1.0 - 0.5 * np.exp(-0.5 * zp * zp) * erfcx(zp / math.sqrt(2)))
    zn = np.minimum(z, 0.0)
    bracket = c + 0.5 * zn * erfcx(-zn / math.sqrt(2))
    far = np.minimum(zn, -30.0)
    series = c * (1 / far**2 - 3 / far**4 + 15 / far**6)
    lower = -0.5 * zn * zn + np.log(np.maximum(np.where(zn < -30.0, series, bracket), 1e-300))
    return np.log(sd) + np.where(z >= 0, np.log(np.maximum(upper, 1e-300)), lower)


class Posterior:
    """The GP conditioned on feature rows ``x`` (n, F) with values ``y`` (n,), predicting the
    latent function (without noise) at new rows."""

    def __init__(self, theta: np.ndarray, x: np.ndarray, y: np.ndarray) -> None:
        f = x.shape[1]
        self.x, self.lengths, self.s2 = x, np.exp(theta[:f]), math.exp(theta[f])
        k, _ = matern(x, x, self.lengths, self.s2)
        chol = _cholesky(k + math.exp(theta[f + 1]) * np.eye(len(x)))
        if chol is None:
            raise np.linalg.LinAlgError("the kernel matrix cannot be factored")
        inverse_l = np.linalg.inv(chol)
        self.k_inv = inverse_l.T @ inverse_l
        self.alpha = self.k_inv @ y

    def predict(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mean and standard deviation (m,) at rows ``z`` (m, F)."""
        kz, _ = matern(z, self.x, self.lengths, self.s2)
        var = self.s2 - np.einsum("ij,ij->i", kz @ self.k_inv, kz)
        return kz @ self.alpha, np.sqrt(np.maximum(var, 1e-12 * self.s2))


class GaussianProcess(Sampler):
    """Gaussian-process Bayesian optimization with expected improvement (module docstring).

    The first trial is the centre of the space (every parameter at the middle of its own
    scale: where a user's ranges put their best guess); the next ``startup - 1`` are a Latin
    hypercube over ``startup - 1`` trials (the ``latin-hypercube`` sampler's draws with that
    budget: every axis covered evenly before the model has anything to say); later trials
    asked before ``startup`` trials have a score (several workers, failed trials) are random.
    Then each ask fits the GP and scores ``candidates`` uniform candidates plus local steps
    around the best trials (std 0.01 to 0.3 in unit coordinates; a choice redrawn with
    probability 0.2), then smaller steps around the best of those, and returns the highest
    expected improvement.

    :param startup: scored trials before the model takes over, >= 2 (default 6).
    :param candidates: uniform random candidates per ask, >= 16 (default 1024); the local ones
        add a quarter of this, twice.
    """

    name = "gp"

    def __init__(self, *, startup: Annotated[int, Option("Scored trials before the model is used", min=2)] = 6,
                 candidates: Annotated[int, Option("Random candidates scored per ask", min=16, max=1_000_000)] = 1024
                 ) -> None:
        self.startup, self.candidates = startup, candidates

    def ask(self, space: Mapping[str, Param], history: History, rng: np.random.Generator) -> dict[str, Any]:
        features = Features(space)
        data = self.data(features, history)
        if data is None:  # the start: the centre, a Latin hypercube over the next ``startup - 1`` trials,
            if history.number == 0:  # random after them (its strata would repeat the same few combinations)
                return {name: param.from_unit(0.5) for name, param in space.items()}
            if history.number < self.startup:
                return LatinHypercube().ask(space, replace(history, number=history.number - 1,
                                                           budget=self.startup - 1), rng)
            return sample_uniform(space, rng)
        # One BLAS thread: at these sizes threads gain nothing, and beside the training workers
        # they wait on each other (asks of 0.3-2 s instead of 50 ms were measured).
        with threadpool_limits(limits=1, user_api="blas"):
            return self.propose(features, *data, rng)

    def propose(self, features: Features, x: np.ndarray, y: np.ndarray, pending: np.ndarray, units: np.ndarray,
                rng: np.random.Generator) -> dict[str, Any]:
        """Fit the GP to ``x``, ``y`` (from ``data``), condition it on the pending rows too, and
        return the candidate of highest expected improvement (or a random one if it fails)."""
        space = features.space
        f = x.shape[1]
        x0 = np.array([PRIOR_L[0]] * f + [0.0, math.log(1e-2)])
        low = np.array([LOG_L[0]] * f + [LOG_S2[0], LOG_NOISE[0]])
        high = np.array([LOG_L[1]] * f + [LOG_S2[1], LOG_NOISE[1]])
        fit = np.unique(np.linspace(0, len(y) - 1, min(len(y), FIT_MAX)).round().astype(int))
        theta = maximize(lambda t: log_evidence(t, x[fit], y[fit]), x0, low, high, FIT_EVALUATIONS)
        try:
            posterior = Posterior(theta, np.vstack([x, pending]), np.concatenate([y, np.full(len(pending), y.min())]))
        except np.linalg.LinAlgError:
            return sample_uniform(space, rng)
        best = float(y.max())

        def acquire(u: np.ndarray) -> np.ndarray:
            mean, sd = posterior.predict(features.rows(u))
            return log_expected_improvement(mean, sd, best)

        centres = units[np.argsort(-y, kind="stable")[:LOCAL_CENTERS]]
        u = np.vstack([rng.random((self.candidates, len(space))),
                       self.steps(space, centres, self.candidates // 4, LOCAL_STEPS, rng)])
        score = acquire(u)
        top = u[np.argsort(-score, kind="stable")[:LOCAL_CENTERS]]
        refined = self.steps(space, top, self.candidates // 4, REFINE_STEPS, rng)
        u, score = np.vstack([u, refined]), np.concatenate([score, acquire(refined)])
        return features.config(u[int(np.argmax(score))])

    def data(self, features: Features, history: History
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
        """(x (n, F), standardized scores y (n,), pending rows (p, F), observed unit rows (n, P)),
        or None while fewer than ``startup`` trials count (module docstring for which do)."""
        trials = sorted(history.trials, key=lambda t: t.number)
        scored = [t for t in trials if t.status in OBSERVED and t.score is not None and math.isfinite(t.score)]
        if len(scored) < self.startup:
            return None
        worst = min(t.score for t in scored)
        numbers = {t.number for t in scored}
        observed = [t for t in trials if t.number in numbers or t.status == "diverged"]
        scores = np.array([t.score if t.status in OBSERVED else worst for t in observed], dtype=float)
        y = tame_lower_half(standardize(scores))
        units, live = features.units([t.config for t in observed])
        pending = features.rows(*features.units([t.config for t in trials if t.status in PENDING]))
        return features.rows(units, live), y, pending, units

    @staticmethod
    def steps(space: Mapping[str, Param], centres: np.ndarray, count: int, sizes: tuple[float, ...],
              rng: np.random.Generator) -> np.ndarray:
        """``count`` candidates (count, P) stepped from ``centres`` (c, P), taken in turn: each
        coordinate moves by a normal step of a std drawn from ``sizes``; a choice is redrawn
        with probability 0.2 instead."""
        start = centres[np.arange(count) % len(centres)]
        sd = rng.choice(np.array(sizes), size=(count, 1))
        moved = np.clip(start + sd * rng.standard_normal(start.shape), 0.0, 1.0)
        redraw = rng.random(start.shape) < 0.2
        fresh = rng.random(start.shape)
        for p, param in enumerate(space.values()):
            if isinstance(param, Choice):
                moved[:, p] = np.where(redraw[:, p], fresh[:, p], start[:, p])
        return moved


@hookimpl
def register_samplers(register: Callable[[str, Callable[..., Any]], None]) -> None:
    """Register gp."""
    register("gp", GaussianProcess)

"""Kernel speed: research's C kernels against textbook numpy and PyTorch CPU, one thread.

What is measured
    Median microseconds per call of each kernel, for each dtype (float32, float64) and size:

    batchnorm forward   x (N, C) in (64, 128), (256, 512), (1024, 1024), (4096, 4096) and
                        NCHW (32, 64, 32, 32); training mode, running statistics updated.
    batchnorm backward  the same shapes; dx, dgamma, dbeta from dy and the saved statistics.
    Adam                one update of 1e3 ... 1e7 parameters (one tensor), step counting up.
    batchnorm + ReLU    (--kernel fused) the fused kernels (batchnorm_relu_forward, training,
                        running statistics updated; batchnorm_relu_backward) on the batchnorm
                        shapes, against the unfused research composition (batchnorm_forward
                        then numpy.maximum(y, 0, out=y); numpy.where(y > 0, dy, 0) into a
                        buffer then batchnorm_backward, all with out= buffers) and torch's
                        batch_norm then relu (forward; backward: autograd through both), with
                        the ratios unfused/fused and torch/fused from the same rounds.

    research  the public API (research.kernels) as a training loop calls it: output
              buffers allocated once and passed as out= / dx_out= ..., so nothing is
              allocated per call. Time includes the wrapper's validation.
    numpy     the textbook expressions (CS231n layers.py / optim.py style), which allocate
              their temporaries.
    torch     PyTorch CPU with torch.set_num_threads(1): torch.nn.functional.batch_norm in
              training mode (allocates its outputs), its autograd backward
              (torch.autograd.grad on the graph of one forward, retained), and
              torch.optim.Adam with foreach=True and with fused=True, one optimizer.step()
              per call. Skipped, with a note, when torch is not importable.

    Beside the times: the bytes the kernel must move (each array read or written once:
    x and y for the forward, dy, x and dx for the backward, p, g, m, v read and p, m, v
    written for Adam, plus the per-channel vectors), the GB/s that makes at research's
    median, its fraction of the measured single-thread copy bandwidth (np.copyto between
    two 256 MB arrays, read + write counted, median), and the ratios torch/research
    (against the faster torch variant for Adam) and numpy/research.

How
    The variants of one case run interleaved round-robin, in an order rotated every round,
    so load from other processes (these machines are small and shared) hits them alike.
    Each round calls a variant in a burst of back-to-back calls (enough for about 0.2 ms,
    so tiny calls are not timer-bound and run cache-warm as in a training loop; one call
    for large sizes) and records the burst's time per call. Rounds per case adapt to the
    case's speed: about --budget seconds per case, between --min-rounds and 1000 rounds.
    The whole run takes about a minute (--quick: about half that).
    Before timing, each case checks research against numpy (max relative difference).

    The last tables are the per-call cost on tiny arrays (where the C work is a few
    nanoseconds): the Python overhead of a call of each function, with and without out=
    buffers, of each plan call (forward(), step(), ...) and of making a plan.

    --baseline PATH compares with another checkout of research (say the previous commit:
    `git worktree add ../kernels-base HEAD`, its extension built in a venv of its own with
    `pip install -e`). Its research.kernels is imported beside this one, every table gets a
    "baseline" variant (the same call on the same sizes through the other checkout's
    wrappers and C code), timed interleaved with the others in the same rounds, and the
    ratio research/baseline (above 1: this checkout is slower).

Usage
    python benchmarks/kernels.py                      # everything, both dtypes
    python benchmarks/kernels.py --quick              # fewer rounds
    python benchmarks/kernels.py --dtype float32 --kernel adam --no-torch
    python benchmarks/kernels.py --kernel fused                # batchnorm + ReLU, fused vs not
    python benchmarks/kernels.py --no-torch --baseline ../kernels-base
"""

from __future__ import annotations

import argparse
import importlib
import itertools
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import environment, median, print_table

from research import kernels

BN_SHAPES = [(64, 128), (256, 512), (1024, 1024), (4096, 4096), (32, 64, 32, 32)]
ADAM_SIZES = [10**3, 10**4, 10**5, 10**6, 10**7]
EPS = 1e-5
MOMENTUM = 0.1
ADAM = {"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}
BURST_SECONDS = 2e-4
MAX_ROUNDS = 1000


# --------------------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------------------

def time_cases(variants: dict[Any, Callable[[], object]], budget: float, min_rounds: int) -> dict[Any, float]:
    """Median seconds per call of each variant, interleaved in rotated round-robin bursts."""
    names = list(variants)
    burst = {}
    probe = {}
    for name, fn in variants.items():
        fn()  # warm up: first-touch page faults, lazy initialization
        start = time.perf_counter()
        fn()
        probe[name] = max(time.perf_counter() - start, 1e-8)
        burst[name] = max(1, int(BURST_SECONDS / probe[name]))
    per_round = sum(probe[name] * burst[name] for name in names)
    rounds = int(min(MAX_ROUNDS, max(min_rounds, budget / per_round)))
    samples: dict[Any, list[float]] = {name: [] for name in names}
    perf_counter = time.perf_counter
    for r in range(rounds):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            fn, reps = variants[name], burst[name]
            start = perf_counter()
            for _ in range(reps):
                fn()
            samples[name].append((perf_counter() - start) / reps)
    return {name: median(values) for name, values in samples.items()}


class CopyBandwidth:
    """Single-thread copy bandwidth: np.copyto between two 256 MB arrays, read + write.

    Sampled before and after every table, since other jobs on a shared machine change it;
    each table's fractions use the median of the samples taken around it.
    """

    def __init__(self, megabytes: int = 256):
        n = megabytes * 2**20 // 8
        self.src = np.ones(n)
        self.dst = np.zeros(n)
        np.copyto(self.dst, self.src)
        self.samples: list[float] = []

    def sample(self, repeats: int = 5) -> list[float]:
        """GB/s of `repeats` copies, also kept for the run's summary."""
        rates = []
        for _ in range(repeats):
            start = time.perf_counter()
            np.copyto(self.dst, self.src)
            rates.append(2 * self.src.nbytes / (time.perf_counter() - start) / 1e9)
        self.samples += rates
        return rates


# --------------------------------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------------------------------

@dataclass
class Case:
    """One row: a kernel at one dtype and size, its variants and its traffic."""

    size: str
    nbytes: int
    variants: dict[str, Callable[[], object]]
    error: float
    torch_names: tuple[str, ...] = field(default_factory=tuple)


def _channel_shape(x: np.ndarray) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(reduction axes, broadcast shape of a per-channel vector) for x (N, C, *spatial)."""
    axes = (0,) + tuple(range(2, x.ndim))
    return axes, (1, x.shape[1]) + (1,) * (x.ndim - 2)


def _rel_err(actual: np.ndarray, expected: np.ndarray) -> float:
    scale = float(np.abs(expected).max()) or 1.0
    return float(np.abs(actual.astype(np.float64) - expected).max()) / scale


def bn_forward_case(shape: tuple[int, ...], dtype: type, torch, baseline) -> Case:
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(shape) * 2.0 + 0.5).astype(dtype)
    c = shape[1]
    gamma = rng.uniform(0.5, 1.5, c).astype(dtype)
    beta = rng.standard_normal(c).astype(dtype)
    y = np.empty_like(x)
    axes, bshape = _channel_shape(x)
    m = x.size // c

    def forward(k: ModuleType, y: np.ndarray) -> Callable[[], None]:
        rm, rv = np.zeros(c, dtype), np.ones(c, dtype)
        mean, invstd = np.empty(c, dtype), np.empty(c, dtype)
        return lambda: k.batchnorm_forward(x, gamma, beta, EPS, rm, rv, MOMENTUM, out=y,
                                           mean_out=mean, invstd_out=invstd)

    research = forward(kernels, y)

    nrm, nrv = np.zeros(c, dtype), np.ones(c, dtype)
    g4, b4 = gamma.reshape(bshape), beta.reshape(bshape)

    def numpy_textbook():
        mu = x.mean(axis=axes)
        xc = x - mu.reshape(bshape)
        var = (xc**2).mean(axis=axes)
        std = np.sqrt(var + EPS)
        xhat = xc / std.reshape(bshape)
        out = g4 * xhat + b4
        nrm[:] = (1 - MOMENTUM) * nrm + MOMENTUM * mu
        nrv[:] = (1 - MOMENTUM) * nrv + MOMENTUM * var * (m / (m - 1))
        return out

    research()
    error = _rel_err(y, numpy_textbook())
    variants = {"research": research, "numpy": numpy_textbook}
    if baseline is not None:
        variants["baseline"] = forward(baseline, np.empty_like(x))
    torch_names: tuple[str, ...] = ()
    if torch is not None:
        xt, gt, bt = torch.from_numpy(x), torch.from_numpy(gamma), torch.from_numpy(beta)
        trm, trv = torch.zeros(c, dtype=xt.dtype), torch.ones(c, dtype=xt.dtype)
        batch_norm = torch.nn.functional.batch_norm

        def torch_forward():
            return batch_norm(xt, trm, trv, gt, bt, True, MOMENTUM, EPS)

        variants["torch"] = torch_forward
        torch_names = ("torch",)
    itemsize = np.dtype(dtype).itemsize
    nbytes = (2 * x.size + 8 * c) * itemsize  # x, y; gamma, beta, running x2 r/w, mean, invstd
    return Case("x".join(map(str, shape)), nbytes, variants, error, torch_names)


def bn_backward_case(shape: tuple[int, ...], dtype: type, torch, baseline) -> Case:
    rng = np.random.default_rng(1)
    x = (rng.standard_normal(shape) * 2.0 + 0.5).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    c = shape[1]
    gamma = rng.uniform(0.5, 1.5, c).astype(dtype)
    beta = np.zeros(c, dtype)
    _, mean, invstd = kernels.batchnorm_forward(x, gamma, beta, EPS)
    dx = np.empty_like(x)
    axes, bshape = _channel_shape(x)
    m = x.size // c

    def backward(k: ModuleType, dx: np.ndarray) -> Callable[[], None]:
        dgamma, dbeta = np.empty(c, dtype), np.empty(c, dtype)
        return lambda: k.batchnorm_backward(dy, x, gamma, mean, invstd, dx_out=dx,
                                            dgamma_out=dgamma, dbeta_out=dbeta)

    research = backward(kernels, dx)

    mean4, invstd4, gamma4 = mean.reshape(bshape), invstd.reshape(bshape), gamma.reshape(bshape)

    def numpy_textbook():
        xhat = (x - mean4) * invstd4
        db = dy.sum(axis=axes)
        dg = (dy * xhat).sum(axis=axes)
        out = gamma4 * invstd4 / m * (m * dy - db.reshape(bshape) - xhat * dg.reshape(bshape))
        return out, dg, db

    research()
    error = _rel_err(dx, numpy_textbook()[0])
    variants = {"research": research, "numpy": numpy_textbook}
    if baseline is not None:
        variants["baseline"] = backward(baseline, np.empty_like(x))
    torch_names: tuple[str, ...] = ()
    if torch is not None:
        xt = torch.from_numpy(x).clone().requires_grad_(True)
        gt = torch.from_numpy(gamma).clone().requires_grad_(True)
        bt = torch.from_numpy(beta).clone().requires_grad_(True)
        yt = torch.nn.functional.batch_norm(xt, None, None, gt, bt, True, MOMENTUM, EPS)
        dyt = torch.from_numpy(dy)
        inputs = (xt, gt, bt)

        def torch_backward():
            return torch.autograd.grad(yt, inputs, dyt, retain_graph=True)

        variants["torch"] = torch_backward
        torch_names = ("torch",)
    itemsize = np.dtype(dtype).itemsize
    nbytes = (3 * x.size + 5 * c) * itemsize  # dy, x, dx; gamma, mean, invstd, dgamma, dbeta
    return Case("x".join(map(str, shape)), nbytes, variants, error, torch_names)


def bn_relu_case(shape: tuple[int, ...], dtype: type, torch, backward: bool) -> Case:
    """Fused batchnorm + ReLU (forward, or backward) against the unfused composition."""
    rng = np.random.default_rng(2)
    x = (rng.standard_normal(shape) * 2.0 + 0.5).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    c = shape[1]
    gamma = rng.uniform(0.5, 1.5, c).astype(dtype)
    beta = rng.standard_normal(c).astype(dtype)
    rm, rv = np.zeros(c, dtype), np.ones(c, dtype)
    y, y0, g, dx, dx0 = (np.empty_like(x) for _ in range(5))
    mean, invstd, dgamma, dbeta = (np.empty(c, dtype) for _ in range(4))
    kernels.batchnorm_relu_forward(x, gamma, beta, EPS, out=y, mean_out=mean, invstd_out=invstd)

    if not backward:
        def fused():
            kernels.batchnorm_relu_forward(x, gamma, beta, EPS, rm, rv, MOMENTUM, out=y,
                                           mean_out=mean, invstd_out=invstd)

        def unfused():
            kernels.batchnorm_forward(x, gamma, beta, EPS, rm, rv, MOMENTUM, out=y0,
                                      mean_out=mean, invstd_out=invstd)
            np.maximum(y0, 0, out=y0)

        fused(), unfused()
        error = _rel_err(y, y0.astype(np.float64))
    else:
        def fused():
            kernels.batchnorm_relu_backward(dy, y, x, gamma, mean, invstd, dx_out=dx,
                                            dgamma_out=dgamma, dbeta_out=dbeta)

        def unfused():
            np.multiply(dy, y > 0, out=g)
            kernels.batchnorm_backward(g, x, gamma, mean, invstd, dx_out=dx0,
                                       dgamma_out=dgamma, dbeta_out=dbeta)

        fused(), unfused()
        error = _rel_err(dx, dx0.astype(np.float64))
    variants = {"research": fused, "unfused": unfused}
    torch_names: tuple[str, ...] = ()
    if torch is not None:
        F = torch.nn.functional
        if not backward:
            xt, gt, bt = torch.from_numpy(x), torch.from_numpy(gamma), torch.from_numpy(beta)
            trm, trv = torch.zeros(c, dtype=xt.dtype), torch.ones(c, dtype=xt.dtype)

            def torch_variant():
                return F.relu(F.batch_norm(xt, trm, trv, gt, bt, True, MOMENTUM, EPS))
        else:
            xt = torch.from_numpy(x).clone().requires_grad_(True)
            gt = torch.from_numpy(gamma).clone().requires_grad_(True)
            bt = torch.from_numpy(beta).clone().requires_grad_(True)
            yt = F.relu(F.batch_norm(xt, None, None, gt, bt, True, MOMENTUM, EPS))
            dyt = torch.from_numpy(dy)

            def torch_variant():
                return torch.autograd.grad(yt, (xt, gt, bt), dyt, retain_graph=True)

        variants["torch"] = torch_variant
        torch_names = ("torch",)
    itemsize = np.dtype(dtype).itemsize
    # The fused kernel's traffic: x, y (forward); dy, y, x, dx (backward).
    nbytes = (4 if backward else 2) * x.size * itemsize
    return Case("x".join(map(str, shape)), nbytes, variants, error, torch_names)


def run_fused_table(title: str, cases, budget: float, min_rounds: int) -> None:
    """Fused against unfused (and torch): times and ratios from the same interleaved rounds."""
    rows, torch_seen = [], False
    for make in cases:
        case = make()
        times = time_cases(case.variants, budget, min_rounds)
        t = times["research"]
        torch_seen = bool(case.torch_names)
        row = [case.size, _fmt_us(t), _fmt_us(times["unfused"])]
        row += [_fmt_us(times["torch"])] if torch_seen else []
        row += [f"{case.nbytes / t / 1e9:.1f}", f"{times['unfused'] / t:.2f}"]
        row += [f"{times['torch'] / t:.2f}"] if torch_seen else []
        rows.append(row + [f"{case.error:.0e}"])
    headers = ["size", "fused us", "unfused us", *(["torch us"] if torch_seen else []), "GB/s",
               "unfused/fused", *(["torch/fused"] if torch_seen else []), "max rel diff"]
    print_table(headers, rows, title=title)


def adam_case(size: int, dtype: type, torch, baseline) -> Case:
    rng = np.random.default_rng(2)
    p0 = rng.standard_normal(size).astype(dtype)
    g = (rng.standard_normal(size) * 0.1).astype(dtype)
    m0 = (rng.standard_normal(size) * 0.01).astype(dtype)
    v0 = (rng.random(size) * 1e-3).astype(dtype)
    lr, b1, b2, eps = ADAM["lr"], ADAM["beta1"], ADAM["beta2"], ADAM["eps"]

    def adam(k: ModuleType, p: np.ndarray, m: np.ndarray, v: np.ndarray) -> Callable[[], None]:
        steps = itertools.count(10)
        return lambda: k.adam_update(p, g, m, v, next(steps), lr, b1, b2, eps, 0.0)

    p, m, v = p0.copy(), m0.copy(), v0.copy()
    research = adam(kernels, p, m, v)

    state = {"p": p0.copy(), "m": m0.copy(), "v": v0.copy(), "t": 9}

    def numpy_textbook():
        state["t"] += 1
        t = state["t"]
        state["m"] = b1 * state["m"] + (1 - b1) * g
        mt = state["m"] / (1 - b1**t)
        state["v"] = b2 * state["v"] + (1 - b2) * (g**2)
        vt = state["v"] / (1 - b2**t)
        state["p"] -= lr * mt / (np.sqrt(vt) + eps)

    kernels.adam_update(p, g, m, v, 10, lr, b1, b2, eps, 0.0)
    numpy_textbook()
    step_p = state["p"].astype(np.float64) - p0
    error = _rel_err(p - p0, step_p)
    variants = {"research": research, "numpy": numpy_textbook}
    if baseline is not None:
        variants["baseline"] = adam(baseline, p0.copy(), m0.copy(), v0.copy())
    torch_names: tuple[str, ...] = ()
    if torch is not None:
        for kind in ("foreach", "fused"):
            pt = torch.from_numpy(p0.copy()).requires_grad_(True)
            pt.grad = torch.from_numpy(g.copy())
            opt = torch.optim.Adam([pt], lr=lr, betas=(b1, b2), eps=eps, **{kind: True})
            opt.step()  # creates the state (exp_avg, exp_avg_sq)
            variants[f"torch {kind}"] = opt.step
        torch_names = ("torch foreach", "torch fused")
    nbytes = 7 * size * np.dtype(dtype).itemsize  # p, g, m, v read; p, m, v written
    return Case(f"{size:.0e}".replace("e+0", "e"), nbytes, variants, error, torch_names)


# --------------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------------

def _fmt_us(seconds: float) -> str:
    us = seconds * 1e6
    return f"{us:,.1f}" if us < 1000 else f"{us:,.0f}"


def run_table(title: str, cases, copy: CopyBandwidth, budget: float, min_rounds: int) -> None:
    headers = None
    rows = []
    around = copy.sample()
    results = []
    for make in cases:
        case = make()
        times = time_cases(case.variants, budget, min_rounds)
        results.append((case, times))
    around += copy.sample()
    bandwidth = median(around)
    for case, times in results:
        t_res = times["research"]
        gbs = case.nbytes / t_res / 1e9
        torch_cols = [_fmt_us(times[name]) for name in case.torch_names]
        best_torch = min((times[name] for name in case.torch_names), default=math.nan)
        baseline = "baseline" in times
        row = [case.size, _fmt_us(t_res), *([_fmt_us(times["baseline"])] if baseline else []),
               _fmt_us(times["numpy"]), *torch_cols,
               f"{case.nbytes / 1e6:,.3g}", f"{gbs:.1f}", f"{100 * gbs / bandwidth:.0f}%"]
        if baseline:
            row.append(f"{t_res / times['baseline']:.2f}")
        if case.torch_names:
            row.append(f"{best_torch / t_res:.2f}")
        row += [f"{times['numpy'] / t_res:.1f}", f"{case.error:.0e}"]
        rows.append(row)
        if headers is None:
            headers = ["size", "research us", *(["baseline us"] if baseline else []), "numpy us",
                       *[f"{n} us" for n in case.torch_names], "MB moved", "GB/s", "of copy BW"]
            if baseline:
                headers.append("research/baseline")
            if case.torch_names:
                headers.append("torch/research")
            headers += ["numpy/research", "max rel diff"]
    print_table(headers, rows, title=f"{title}; copy bandwidth {bandwidth:.1f} GB/s "
                f"(min {min(around):.1f}, max {max(around):.1f})")


def overhead_calls(k: ModuleType, dtype: type) -> dict[str, Callable[[], object]]:
    """Calls on tiny arrays through the kernels module `k`: what a call costs beyond the C work.

    Each module gets arrays of its own, so the variants of two modules do not share any.
    """
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 3)).astype(dtype)
    dy = rng.standard_normal((4, 3)).astype(dtype)
    gamma, beta = np.ones(3, dtype), np.zeros(3, dtype)
    rm, rv = np.zeros(3, dtype), np.ones(3, dtype)
    y, mean, invstd = np.empty_like(x), np.empty(3, dtype), np.empty(3, dtype)
    dx, dg, db = np.empty_like(x), np.empty(3, dtype), np.empty(3, dtype)
    k.batchnorm_forward(x, gamma, beta, out=y, mean_out=mean, invstd_out=invstd)
    p, g, m, v = (rng.standard_normal(16).astype(dtype) for _ in range(4))
    v = np.abs(v)
    params = [rng.standard_normal(16).astype(dtype) for _ in range(8)]
    grads, ms, vs = ([np.zeros_like(a) for a in params] for _ in range(3))
    bn_arrays = (x, gamma, beta, y, mean, invstd, rm, rv)
    bn_grads = {"dy": dy, "dx": dx, "dgamma": dg, "dbeta": db}
    bn = k.BatchNormPlan(*bn_arrays, **bn_grads, eps=EPS, momentum=MOMENTUM)
    adam1 = k.AdamPlan([p], [g], [m], [v])
    adam8 = k.AdamPlan(params, grads, ms, vs)
    momentum, rmsprop, sgd = k.MomentumPlan([p], [g], [m]), k.RMSpropPlan([p], [g], [v]), k.SGDPlan([p], [g])
    return {
        "batchnorm_forward, out= buffers, running stats": lambda: k.batchnorm_forward(
            x, gamma, beta, EPS, rm, rv, MOMENTUM, out=y, mean_out=mean, invstd_out=invstd),
        "batchnorm_forward, allocating": lambda: k.batchnorm_forward(x, gamma, beta),
        "batchnorm_backward, out= buffers": lambda: k.batchnorm_backward(
            dy, x, gamma, mean, invstd, dx_out=dx, dgamma_out=dg, dbeta_out=db),
        "batchnorm_backward, allocating": lambda: k.batchnorm_backward(
            dy, x, gamma, mean, invstd),
        "batchnorm_inference, out= buffer": lambda: k.batchnorm_inference(
            x, gamma, beta, rm, rv, EPS, out=y),
        "adam_update (16 elements)": lambda: k.adam_update(p, g, m, v, 5, 1e-3, 0.9, 0.999,
                                                           1e-8, 0.0),
        "momentum_update (16 elements)": lambda: k.momentum_update(p, g, m, 1e-3, 0.9),
        "rmsprop_update (16 elements)": lambda: k.rmsprop_update(p, g, v, 1e-3, 0.99, 1e-8),
        "sgd_update (16 elements)": lambda: k.sgd_update(p, g, 1e-3),
        "BatchNormPlan.forward(), running stats": bn.forward,
        "BatchNormPlan.inference()": bn.inference,
        "BatchNormPlan.backward()": bn.backward,
        "AdamPlan.step (1 array of 16)": lambda: adam1.step(5, 1e-3, 0.9, 0.999, 1e-8, 0.0),
        "AdamPlan.step (8 arrays of 16)": lambda: adam8.step(5, 1e-3, 0.9, 0.999, 1e-8, 0.0),
        "MomentumPlan.step (1 array of 16)": lambda: momentum.step(1e-3, 0.9),
        "RMSpropPlan.step (1 array of 16)": lambda: rmsprop.step(1e-3, 0.99, 1e-8),
        "SGDPlan.step (1 array of 16)": lambda: sgd.step(1e-3),
        "BatchNormPlan(...) made, with backward": lambda: k.BatchNormPlan(
            *bn_arrays, **bn_grads, eps=EPS, momentum=MOMENTUM),
        "AdamPlan(...) made, 8 arrays": lambda: k.AdamPlan(params, grads, ms, vs),
    }


def overhead_table(dtype: type, budget: float, min_rounds: int, baseline) -> None:
    """Per-call time on tiny arrays of each function and plan call (and of making a plan)."""
    variants = {(name, "research"): fn for name, fn in overhead_calls(kernels, dtype).items()}
    if baseline is not None:
        variants |= {(name, "baseline"): fn for name, fn in overhead_calls(baseline, dtype).items()}
    times = time_cases(variants, budget, min_rounds)
    headers = ["call (x 4x3, " + np.dtype(dtype).name + ")", "research us"]
    if baseline is not None:
        headers += ["baseline us", "research/baseline"]
    rows = []
    for (name, which), t in times.items():
        if which == "research":
            row = [name, f"{t * 1e6:.2f}"]
            if baseline is not None:
                base = times[(name, "baseline")]
                row += [f"{base * 1e6:.2f}", f"{t / base:.2f}"]
            rows.append(row)
    print_table(headers, rows, title="Per-call cost on tiny arrays (the wrapper's Python overhead)")


def load_baseline(checkout: str) -> ModuleType:
    """research.kernels of another checkout (its C extension built in place), imported beside
    this one: its modules are loaded under their own names, kept by the returned module, then
    taken out of sys.modules again, so `research` stays this checkout."""
    root = Path(checkout).resolve()
    if not list((root / "research").glob("_kernels*.so")):
        sys.exit(f"error: {root} has no built research/_kernels*.so; run pip install -e there")

    def ours() -> dict[str, ModuleType]:
        return {n: m for n, m in sys.modules.items() if n == "research" or n.startswith("research.")}

    saved = ours()
    for name in saved:
        del sys.modules[name]
    sys.path.insert(0, str(root))
    try:
        module = importlib.import_module("research.kernels")
    finally:
        sys.path.remove(str(root))
        for name in ours():
            del sys.modules[name]
        sys.modules.update(saved)
    if not Path(module.__file__).resolve().is_relative_to(root):
        sys.exit(f"error: research.kernels came from {module.__file__}, not from {root}")
    return module


def _cpu_line() -> str:
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and model in ("", platform.machine()):
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    simd = [s for s in ("avx2", "avx512f") if s in flags]
    return f"cpu: {model}" + (f" ({', '.join(simd)})" if simd else "")


def _import_torch(disabled: bool):
    if disabled:
        print("torch: disabled (--no-torch), columns skipped")
        return None
    try:
        import torch
    except ImportError:
        print("torch: not importable, columns skipped (pip install -e '.[bench]')")
        return None
    torch.set_num_threads(1)
    print(f"torch: {torch.__version__}, {torch.get_num_threads()} thread, "
          f"cpu capability {torch.backends.cpu.get_cpu_capability()}")
    return torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (under a minute)")
    parser.add_argument("--dtype", choices=["float32", "float64", "both"], default="both")
    parser.add_argument("--kernel", action="append", choices=["forward", "backward", "fused", "adam", "overhead"],
                        help="run only these tables (repeatable; default all)")
    parser.add_argument("--budget", type=float, help="seconds per case (default 1.0, quick 0.2)")
    parser.add_argument("--min-rounds", type=int, help="rounds per case at least (default 7, quick 3)")
    parser.add_argument("--no-torch", action="store_true", help="skip PyTorch even if installed")
    parser.add_argument("--baseline", metavar="PATH",
                        help="another checkout of research (extension built) to time side by side")
    args = parser.parse_args()
    budget = args.budget if args.budget is not None else (0.2 if args.quick else 1.0)
    min_rounds = args.min_rounds if args.min_rounds is not None else (3 if args.quick else 7)
    dtypes = [np.float32, np.float64] if args.dtype == "both" else [getattr(np, args.dtype)]
    which = args.kernel or ["forward", "backward", "fused", "adam", "overhead"]

    print(environment())
    print(_cpu_line())
    torch = _import_torch(args.no_torch)
    baseline = load_baseline(args.baseline) if args.baseline else None
    if baseline is not None:
        print(f"baseline: research.kernels of {args.baseline}")
    if os.environ.get("OPENBLAS_CORETYPE"):
        print(f"OPENBLAS_CORETYPE={os.environ['OPENBLAS_CORETYPE']} (no effect on these kernels)")
    started = time.perf_counter()
    copy = CopyBandwidth()
    print(f"single-thread copy bandwidth (np.copyto, 256 MB, read + write, median of 9): "
          f"{median(copy.sample(9)):.1f} GB/s")
    print("GB/s counts the bytes each kernel must move; 'of copy BW' compares it with the copy\n"
          "bandwidth measured around each table (over 100%: the data fit in cache)")
    print()

    for dtype in dtypes:
        name = np.dtype(dtype).name
        if "forward" in which:
            run_table(f"Batchnorm forward, training, {name} (us per call, median)",
                      [lambda s=s, d=dtype: bn_forward_case(s, d, torch, baseline) for s in BN_SHAPES],
                      copy, budget, min_rounds)
        if "backward" in which:
            run_table(f"Batchnorm backward, {name} (us per call, median)",
                      [lambda s=s, d=dtype: bn_backward_case(s, d, torch, baseline) for s in BN_SHAPES],
                      copy, budget, min_rounds)
        if "fused" in which:
            for backward in (False, True):
                what = "backward" if backward else "forward, training"
                run_fused_table(
                    f"Batchnorm + ReLU {what}, {name}: fused against unfused (us per call, median)",
                    [lambda s=s, d=dtype, b=backward: bn_relu_case(s, d, torch, b) for s in BN_SHAPES],
                    budget, min_rounds)
        if "adam" in which:
            run_table(f"Adam, one step, {name} (us per call, median)",
                      [lambda s=s, d=dtype: adam_case(s, d, torch, baseline) for s in ADAM_SIZES],
                      copy, budget, min_rounds)
    if "overhead" in which:
        for dtype in dtypes:
            overhead_table(dtype, budget, min_rounds, baseline)
    rates = copy.samples
    print(f"copy bandwidth over the run: median {median(rates):.1f} GB/s, min {min(rates):.1f}, "
          f"max {max(rates):.1f} (a wide range means other jobs loaded the machine)")
    print(f"{environment().split('; ')[0]}; total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()

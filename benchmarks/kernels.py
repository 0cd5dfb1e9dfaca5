"""Kernel speed: research's C kernels against textbook numpy and PyTorch CPU, one thread.

What is measured
    Median microseconds per call of each kernel, for each dtype (float32, float64) and size:

    batchnorm forward   x (N, C) in (64, 128), (256, 512), (1024, 1024), (4096, 4096) and
                        NCHW (32, 64, 32, 32); training mode, running statistics updated.
    batchnorm backward  the same shapes; dx, dgamma, dbeta from dy and the saved statistics.
    batchnorm + ReLU    (--kernel fused) the fused kernels (batchnorm_relu_forward, training,
                        running statistics updated; batchnorm_relu_backward) on the batchnorm
                        shapes, against the unfused research composition (batchnorm_forward
                        then numpy.maximum(y, 0, out=y); numpy.multiply(dy, y > 0) into a
                        buffer then batchnorm_backward, all with out= buffers) and torch's
                        batch_norm then relu (forward; backward: autograd through both), with
                        the ratios unfused/fused and torch/fused from the same rounds.
    optimizers          one update of 1e3 ... 1e7 parameters (one tensor), lr 1e-3:
        Adam            adam_update, betas (0.9, 0.999), eps 1e-8, step counting up;
                        torch.optim.Adam.
        AdamW           the same with decoupled weight decay 0.01 (adam_update's
                        weight_decay); torch.optim.AdamW.
        momentum        momentum_update, v = beta*v + (1-beta)*g; p -= lr*v, beta 0.9;
                        torch.optim.SGD(momentum=0.9, dampening=0.9). torch's momentum is
                        v = beta*v + (1-dampening)*g, so dampening = beta makes it the same
                        step; its default (dampening 0: v = beta*v + g) scales the step by
                        1/(1-beta) and moves the same bytes.
        RMSprop         rmsprop_update, s = beta*s + (1-beta)*g*g; p -= lr*g/(sqrt(s)+eps),
                        beta 0.99, eps 1e-8; torch.optim.RMSprop(alpha=0.99), the same step.

    research  the public API (research.kernels) as a training loop calls it: output
              buffers allocated once and passed as out= / dx_out= ..., so nothing is
              allocated per call. Time includes the wrapper's validation.
    numpy     the textbook expressions (CS231n layers.py / optim.py style), which allocate
              their temporaries.
    torch     PyTorch CPU with torch.set_num_threads(1): torch.nn.functional.batch_norm in
              training mode (allocates its outputs), its autograd backward
              (torch.autograd.grad on the graph of one forward, retained), and each
              optimizer's torch.optim class with foreach=True and with fused=True, one
              optimizer.step() per call; an implementation this torch lacks (RMSprop has no
              fused one in 2.13) is left out with a note under the title. Skipped, with a
              note, when torch is not importable.
    bound     (batchnorm forward and backward) the least traffic any such kernel moves, run
              on research's own arrays in the same rounds: numpy.negative(x, out=y) for the
              forward (x read once, y written once), numpy.add(dy, x, out=dx) for the
              backward (dy and x read once, dx written once), ordinary stores as research's.
              torch/bound is then the most any kernel could beat torch by on that row, in
              that run: where it is under 2, the "2x torch" target is out of reach there.

    Beside the times, the traffic of research's kernel and the bandwidth it reaches at
    research's median time:

    min MB     the bytes the kernel must move: each array read or written once (x and y for
               the forward; dy, x and dx for the backward; the fused backward also reads y;
               an optimizer reads p, g and its state and writes p and the state), plus the
               per-channel vectors. min GB/s is min MB over the time.
    real MB    the bytes the kernel moves between memory and the caches as it is written
               (csrc/batchnorm_impl.h, csrc/optim_impl.h), each call starting with its
               arrays in memory. An array written without streaming stores (none are used)
               is first read for ownership: a written output counts twice its bytes. A
               batchnorm kernel makes two passes, per-channel sums then the elementwise
               pass, and both read every input (x; dy and x; dy, y and x): the second read
               counts only when what the first pass reads before the second starts (a strip
               of 32 KiB of every row for (N, C) input; for NCHW one channel, or a group of
               channels once the inputs reach 4 MiB, as the kernels group them; times the
               inputs) exceeds the cache (below); otherwise it is served by the cache. So
               the forward moves 4 arrays' worth (x twice, y twice) at 4096x4096 and 3 (x, y
               twice) when x fits, the backward 6 or 4, the fused backward 8 or 5. An
               optimizer makes one pass and writes in place the lines it has just read:
               real = min (Adam and AdamW 7 arrays, momentum and RMSprop 5). real GB/s is
               real MB over the time.
    roofline   real GB/s as a fraction of the single-thread triad bandwidth: c = a + b
               (np.add(a, b, out=c) on three 128 MB float64 arrays) counted as its real
               traffic, 4 arrays (a and b read, c read for ownership and written), median
               of samples taken before and after each table (printed in its title with
               their spread). Its stores are ordinary write-allocating ones, as the
               kernels' are; a large copy (np.copyto, a memcpy that streams past the cache)
               avoids the read for ownership, and a lone read stream is slower on one core
               (latency-bound), so neither is the kernels' ceiling. In-place updates over
               several streams (the optimizers) run faster than the triad: over 100% at 1e7
               means at the memory limit. Rows whose arrays fit in the cache pass 100% too
               (they stay cached between calls).
               Target: at least 80% in the rows whose min MB exceeds twice the cache
               (4096x4096 and the optimizers at 1e7; with a cache of 24 MiB also the
               float64 NCHW backward and fused backward); each table names those rows under
               its title, with their rooflines and the verdict.
    cache      what the traffic count takes as the cache: the largest triad footprint (3
               arrays of 1 to 64 MiB) that runs at least 1.5x as fast as the 128 MB triad
               and is not over the last-level size from sysfs (where sysfs gives one),
               measured at the start. Data re-read from within it moves faster than the
               roofline's bandwidth; beyond it, at that bandwidth, wherever it lives. A
               footprint over the last level runs faster in part (on a 32 MiB L3, 3 x 16
               MiB ran 1.4-1.6x the 128 MB triad), but is not in it. Measured, because sysfs can
               mislead: a many-core Xeon's says 480 MiB, yet one core runs the triad on 3 x
               16 MiB at twice the 128 MB triad's rate and on 3 x 32 MiB only 1.15-1.3x as
               fast, from run to run (partly cached; a 1.25x rule took it for cache in some
               runs and then counted no row of 4096x4096 as a target row).

    Then the ratios torch/research (against the faster torch variant for the optimizers)
    and numpy/research, and the largest relative difference between research and numpy.

How
    The variants of one case run interleaved round-robin, in an order rotated every round,
    so load from other processes (these machines are small and shared) hits them alike.
    Each round calls a variant once untimed, then in a timed burst of back-to-back calls
    (enough for about 0.2 ms, so tiny calls are not timer-bound; one call for large sizes)
    and records the burst's time per call. The untimed call brings the variant's arrays
    back into the cache as far as they fit, as a training step has the input of its
    batchnorm in cache, just written by the layer before. Without it, a 1024x1024 call
    (8-12 MiB of arrays) was timed right after another variant had evicted part of them
    (numpy's temporaries alone take over 20 MiB), and paid to fetch them back: in C, such
    a first call took 1.2-1.4x a warm one. That cost fell unevenly: research shares its
    arrays with bound, and a --baseline checkout did not. Rounds per case adapt to the
    case's speed: about --budget seconds per case, between --min-rounds and 1000 rounds.
    The whole run takes about two minutes (--quick: under one).
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
    python benchmarks/kernels.py --kernel adamw --kernel momentum --kernel rmsprop
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
from common import at_least, environment, median, positive, print_table, refuse, run

from research.errors import ResearchError

try:
    from research import kernels
except ResearchError as err:  # RESEARCH_KERNELS=foo: it chooses its instruction set as it is imported
    refuse(str(err))

BN_SHAPES = [(64, 128), (256, 512), (1024, 1024), (4096, 4096), (32, 64, 32, 32)]
OPTIMIZER_SIZES = [10**3, 10**4, 10**5, 10**6, 10**7]
EPS = 1e-5
MOMENTUM = 0.1
LR = 1e-3
ADAM = {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8}
ADAMW_WEIGHT_DECAY = 0.01
MOMENTUM_BETA = 0.9
RMSPROP = {"beta": 0.99, "eps": 1e-8}
FIRST_STEP = 10  # Adam's step count of the first timed call: bias corrections as mid-training
BURST_SECONDS = 2e-4
MAX_ROUNDS = 1000
STRIP_BYTES = 32768  # RS_STRIP_BYTES in csrc/batchnorm_impl.h: the (N, C) kernels' channel strip
CACHED_BYTES, GROUP_BYTES, SPAN_BYTES, GROUP_MAX = 4 << 20, 256 << 10, 8192, 64  # its NCHW groups (RS_...)
CACHE_PROBE_MIB = (1, 2, 4, 8, 16, 32, 64)  # per array of the smaller triads that find the cache
CACHE_FASTER = 1.5  # a footprint in cache runs at least this much faster than the 128 MB triad
ROOFLINE_TARGET = 0.8


# --------------------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------------------

def time_cases(variants: dict[Any, Callable[[], object]], budget: float, min_rounds: int) -> dict[Any, float]:
    """Median seconds per call of each variant, interleaved in rotated round-robin bursts,
    each after one untimed call."""
    names = list(variants)
    burst = {}
    probe = {}
    for name, fn in variants.items():
        fn()  # warm up: first-touch page faults, lazy initialization
        start = time.perf_counter()
        fn()
        probe[name] = max(time.perf_counter() - start, 1e-8)
        burst[name] = max(1, int(BURST_SECONDS / probe[name]))
    per_round = sum(probe[name] * (burst[name] + 1) for name in names)
    rounds = int(min(MAX_ROUNDS, max(min_rounds, budget / per_round)))
    samples: dict[Any, list[float]] = {name: [] for name in names}
    perf_counter = time.perf_counter
    for r in range(rounds):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            fn, reps = variants[name], burst[name]
            fn()  # untimed: brings back what the variant before evicted from the cache
            start = perf_counter()
            for _ in range(reps):
                fn()
            samples[name].append((perf_counter() - start) / reps)
    return {name: median(values) for name, values in samples.items()}


class TriadBandwidth:
    """Single-thread triad bandwidth, the roofline's ceiling: c = a + b on three 128 MB arrays
    (4x a 32 MB cache), counted as real traffic (a and b read, c read for ownership and
    written: 4 arrays).

    Sampled before and after every table (`repeats` times each), since other jobs on a shared
    machine change it; each table's rooflines use the median of the samples taken around it.
    """

    def __init__(self, repeats: int, megabytes: int = 128):
        n = megabytes * 2**20 // 8
        self.a, self.b, self.c = np.ones(n), np.ones(n), np.zeros(n)
        np.add(self.a, self.b, out=self.c)
        self.repeats = repeats
        self.samples: list[float] = []

    def sample(self, repeats: int | None = None) -> list[float]:
        """GB/s of `repeats` triads (default: self.repeats), also kept for the run's summary."""
        rates = []
        for _ in range(repeats or self.repeats):
            start = time.perf_counter()
            np.add(self.a, self.b, out=self.c)
            rates.append(4 * self.c.nbytes / (time.perf_counter() - start) / 1e9)
        self.samples += rates
        return rates


def measured_cache_bytes(big_rate: float, ceiling: int | None) -> tuple[int, list[tuple[int, float]]]:
    """The cache, for the traffic count: the largest footprint of a triad (three arrays of
    CACHE_PROBE_MIB) that runs at least CACHE_FASTER x `big_rate`, the 128 MB triad's GB/s
    (3 MiB when none does), and not over `ceiling` (the last-level size sysfs gives, if any),
    and each footprint's median GB/s. The sizes grow until one is not faster, or is over the
    ceiling: beyond it the data moves at the roofline's rate, wherever it lives. A footprint
    over the last level is not in it, however fast it runs: on a 32 MiB L3 the triad on 3 x
    16 MiB ran 1.4-1.6x the 128 MB one, so the speed alone took 24 or 48 MiB from run to
    run, and the float64 NCHW rows in and out of the target."""
    rates: list[tuple[int, float]] = []
    cache = 3 * CACHE_PROBE_MIB[0] * 2**20
    for mib in CACHE_PROBE_MIB:
        rate = median(TriadBandwidth(repeats=max(9, 512 // mib), megabytes=mib).sample())
        rates.append((3 * mib * 2**20, rate))
        if rate < CACHE_FASTER * big_rate or (ceiling is not None and 3 * mib * 2**20 > ceiling):
            break
        cache = 3 * mib * 2**20
    return cache, rates


def last_level_cache_bytes() -> int | None:
    """Size of the CPU's largest cache from Linux sysfs, None where sysfs does not say (printed
    beside the measured cache: the two can differ)."""
    units = {"K": 2**10, "M": 2**20, "G": 2**30}
    sizes = []
    for path in Path("/sys/devices/system/cpu/cpu0/cache").glob("index*/size"):
        text = path.read_text().strip()
        if text[:-1].isdigit() and text[-1] in units:
            sizes.append(int(text[:-1]) * units[text[-1]])
    return max(sizes, default=None)


# --------------------------------------------------------------------------------------------------
# Traffic
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Traffic:
    """Bytes of one call: `minimum` counts each array once; `real` is what the kernel as written
    moves between memory and the caches. `target` marks the rows the roofline target is about:
    arrays larger than twice the cache (`measured_cache_bytes`)."""

    minimum: int
    real: int
    target: bool


def sums_pass_bytes(x: np.ndarray, inputs: int) -> int:
    """Bytes of one input array that a batchnorm kernel reading `inputs` arrays like x sums
    before its elementwise pass re-reads them: a strip of STRIP_BYTES of every row for (N, C);
    for NCHW one channel, or a group of channels as csrc/batchnorm_impl.h's runs_group makes
    them (whose second pass runs one group behind the sums: two groups, but both of a size
    made to stay in L2)."""
    n, c, inner = x.shape[0], x.shape[1], x.size // (x.shape[0] * x.shape[1])
    if inner == 1:
        return n * min(c * x.itemsize, STRIP_BYTES)
    channel = n * inner * x.itemsize
    if channel * inputs * c < CACHED_BYTES:
        return channel
    run = inner * x.itemsize
    group = min(max(GROUP_BYTES // (channel * inputs), -(-SPAN_BYTES // run)), GROUP_MAX)
    return min(group, c) * channel


def batchnorm_traffic(x: np.ndarray, inputs: int, channel_bytes: int, cache: int) -> Traffic:
    """Traffic of a two-pass batchnorm kernel reading `inputs` arrays shaped like x in both passes
    and writing one (read for ownership, then written back), plus `channel_bytes` of per-channel
    vectors. The second pass's reads come from the cache when the first pass's block fits in it."""
    array = x.nbytes
    reread = 0 if inputs * sums_pass_bytes(x, inputs) <= cache else inputs * array
    minimum = (inputs + 1) * array + channel_bytes
    real = inputs * array + reread + 2 * array + channel_bytes
    return Traffic(minimum, real, minimum > 2 * cache)


def optimizer_traffic(size: int, dtype: type, state: int, cache: int) -> Traffic:
    """Traffic of a one-pass optimizer update: p, g and `state` arrays read, p and the state
    written back in place (lines just read: no read for ownership), so real = minimum."""
    nbytes = (3 + 2 * state) * size * np.dtype(dtype).itemsize
    return Traffic(nbytes, nbytes, nbytes > 2 * cache)


# --------------------------------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------------------------------

@dataclass
class Case:
    """One row: a kernel at one dtype and size, its variants and its traffic; `notes` say what
    the table leaves out (a torch implementation this torch lacks)."""

    size: str
    traffic: Traffic
    variants: dict[str, Callable[[], object]]
    error: float
    torch_names: tuple[str, ...] = field(default_factory=tuple)
    notes: tuple[str, ...] = field(default_factory=tuple)


def _channel_shape(x: np.ndarray) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(reduction axes, broadcast shape of a per-channel vector) for x (N, C, *spatial)."""
    axes = (0,) + tuple(range(2, x.ndim))
    return axes, (1, x.shape[1]) + (1,) * (x.ndim - 2)


def _rel_err(actual: np.ndarray, expected: np.ndarray) -> float:
    scale = float(np.abs(expected).max()) or 1.0
    return float(np.abs(actual.astype(np.float64) - expected).max()) / scale


def bn_forward_case(shape: tuple[int, ...], dtype: type, torch, baseline, cache: int) -> Case:
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
    # The least traffic of any forward: x read once, y written once with ordinary stores.
    variants = {"research": research, "numpy": numpy_textbook, "bound": lambda: np.negative(x, out=y)}
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
    # x read, y written; gamma, beta, the running statistics read and written, mean, invstd
    traffic = batchnorm_traffic(x, 1, 8 * c * x.itemsize, cache)
    return Case("x".join(map(str, shape)), traffic, variants, error, torch_names)


def bn_backward_case(shape: tuple[int, ...], dtype: type, torch, baseline, cache: int) -> Case:
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
    # The least traffic of any backward: dy and x read once, dx written once with ordinary stores.
    variants = {"research": research, "numpy": numpy_textbook, "bound": lambda: np.add(dy, x, out=dx)}
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
    # dy, x read, dx written; gamma, mean, invstd, dgamma, dbeta
    traffic = batchnorm_traffic(x, 2, 5 * c * x.itemsize, cache)
    return Case("x".join(map(str, shape)), traffic, variants, error, torch_names)


def bn_relu_case(shape: tuple[int, ...], dtype: type, torch, backward: bool, cache: int) -> Case:
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
    # The fused kernel's: x read, y written, the forward's vectors; dy, y, x read, dx written,
    # gamma, mean, invstd, dgamma, dbeta.
    if backward:
        traffic = batchnorm_traffic(x, 3, 5 * c * x.itemsize, cache)
    else:
        traffic = batchnorm_traffic(x, 1, 8 * c * x.itemsize, cache)
    return Case("x".join(map(str, shape)), traffic, variants, error, torch_names)


@dataclass(frozen=True)
class Optimizer:
    """An optimizer as its table times it: one step per call on p, g and `state` arrays of its
    own (Adam's m and v), each variant on copies of the same starting arrays.

    research(k, p, g, state)  a call of research.kernels module k updating p and state in place;
    textbook(arrays, g)       the numpy textbook step on arrays = [p, *state]: p updated in
                              place, the state replaced by new arrays (it allocates its
                              temporaries, as CS231n's optim.py does);
    torch_optimizer(torch)    the torch.optim class and arguments of the same step.
    """

    title: str
    state: int
    research: Callable[[ModuleType, np.ndarray, np.ndarray, list[np.ndarray]], Callable[[], None]]
    textbook: Callable[[list[np.ndarray], np.ndarray], Callable[[], None]]
    torch_optimizer: Callable[[Any], tuple[type, dict[str, Any]]]


def adam(weight_decay: float) -> Optimizer:
    """Adam, or AdamW (decoupled decay) when weight_decay > 0."""
    b1, b2, eps = ADAM["beta1"], ADAM["beta2"], ADAM["eps"]

    def research(k, p, g, state):
        m, v = state
        steps = itertools.count(FIRST_STEP)
        return lambda: k.adam_update(p, g, m, v, next(steps), LR, b1, b2, eps, weight_decay)

    def textbook(arrays, g):
        steps = itertools.count(FIRST_STEP)

        def step():
            t = next(steps)
            p, m, v = arrays
            arrays[1] = m = b1 * m + (1 - b1) * g
            arrays[2] = v = b2 * v + (1 - b2) * (g**2)
            mt, vt = m / (1 - b1**t), v / (1 - b2**t)
            if weight_decay:
                p *= 1 - LR * weight_decay
            p -= LR * mt / (np.sqrt(vt) + eps)

        return step

    def torch_optimizer(torch):
        kind = torch.optim.AdamW if weight_decay else torch.optim.Adam
        return kind, {"lr": LR, "betas": (b1, b2), "eps": eps, "weight_decay": weight_decay}

    title = f"AdamW (weight decay {weight_decay:g})" if weight_decay else "Adam"
    return Optimizer(title, 2, research, textbook, torch_optimizer)


def momentum() -> Optimizer:
    """Momentum, v = beta*v + (1-beta)*g; torch's SGD matches it with dampening = beta."""
    beta = MOMENTUM_BETA

    def research(k, p, g, state):
        (v,) = state
        return lambda: k.momentum_update(p, g, v, LR, beta)

    def textbook(arrays, g):
        def step():
            p, v = arrays
            arrays[1] = v = beta * v + (1 - beta) * g
            p -= LR * v

        return step

    def torch_optimizer(torch):
        return torch.optim.SGD, {"lr": LR, "momentum": beta, "dampening": beta}

    return Optimizer(f"Momentum (beta {beta:g})", 1, research, textbook, torch_optimizer)


def rmsprop() -> Optimizer:
    """RMSprop, s = beta*s + (1-beta)*g*g; p -= lr*g/(sqrt(s)+eps), as torch's."""
    beta, eps = RMSPROP["beta"], RMSPROP["eps"]

    def research(k, p, g, state):
        (sq,) = state
        return lambda: k.rmsprop_update(p, g, sq, LR, beta, eps)

    def textbook(arrays, g):
        def step():
            p, sq = arrays
            arrays[1] = sq = beta * sq + (1 - beta) * g**2
            p -= LR * g / (np.sqrt(sq) + eps)

        return step

    def torch_optimizer(torch):
        return torch.optim.RMSprop, {"lr": LR, "alpha": beta, "eps": eps}

    return Optimizer(f"RMSprop (beta {beta:g})", 1, research, textbook, torch_optimizer)


OPTIMIZERS = {
    "adam": adam(0.0),
    "adamw": adam(ADAMW_WEIGHT_DECAY),
    "momentum": momentum(),
    "rmsprop": rmsprop(),
}
KERNELS = ["forward", "backward", "fused", *OPTIMIZERS, "overhead"]


def torch_optimizer_steps(torch, opt: Optimizer, p0: np.ndarray, g: np.ndarray):
    """(variants, notes): the optimizer's torch step with foreach=True and with fused=True, each
    on its own copy of p0 with its state made by a first step; a kind this torch rejects is left
    out with a note."""
    kind, kwargs = opt.torch_optimizer(torch)
    variants, notes = {}, []
    for impl in ("foreach", "fused"):
        pt = torch.from_numpy(p0.copy()).requires_grad_(True)
        pt.grad = torch.from_numpy(g)
        try:
            optimizer = kind([pt], **kwargs, **{impl: True})
            optimizer.step()  # creates the state
        except (TypeError, RuntimeError) as exc:
            notes.append(f"torch {impl}: none for {kind.__name__} in torch {torch.__version__} "
                         f"({str(exc).splitlines()[0]})")
            continue
        variants[f"torch {impl}"] = optimizer.step
    return variants, notes


def optimizer_case(opt: Optimizer, size: int, dtype: type, torch, baseline, cache: int) -> Case:
    rng = np.random.default_rng(2)
    p0 = rng.standard_normal(size, dtype)
    g = rng.standard_normal(size, dtype) * dtype(0.1)
    state0 = [rng.random(size, dtype) * dtype(1e-3) for _ in range(opt.state)]

    p, state = p0.copy(), [s.copy() for s in state0]
    research = opt.research(kernels, p, g, state)
    arrays = [p0.copy(), *(s.copy() for s in state0)]
    numpy_textbook = opt.textbook(arrays, g)

    # One step each from the same arrays, then the timed calls go on from there.
    opt.research(kernels, p, g, state)()
    numpy_textbook()
    error = _rel_err(p - p0, arrays[0].astype(np.float64) - p0)
    variants = {"research": research, "numpy": numpy_textbook}
    if baseline is not None:
        variants["baseline"] = opt.research(baseline, p0.copy(), g, [s.copy() for s in state0])
    notes: list[str] = []
    if torch is not None:
        steps, notes = torch_optimizer_steps(torch, opt, p0, g)
        variants |= steps
    traffic = optimizer_traffic(size, dtype, opt.state, cache)
    size_name = f"{size:.0e}".replace("e+0", "e")
    return Case(size_name, traffic, variants, error, tuple(n for n in variants if n.startswith("torch")),
                tuple(notes))


# --------------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------------

def _fmt_us(seconds: float) -> str:
    us = seconds * 1e6
    return f"{us:,.1f}" if us < 1000 else f"{us:,.0f}"


def roofline(traffic: Traffic, seconds: float, bandwidth: float) -> float:
    """The fraction of the triad bandwidth that the real traffic streams at."""
    return traffic.real / seconds / 1e9 / bandwidth


TRAFFIC_HEADERS = ["min MB", "min GB/s", "real MB", "real GB/s", "roofline"]


def traffic_cells(traffic: Traffic, seconds: float, bandwidth: float) -> list[str]:
    """The TRAFFIC_HEADERS columns of one row whose research call took `seconds`."""
    return [f"{traffic.minimum / 1e6:,.3g}", f"{traffic.minimum / seconds / 1e9:.1f}",
            f"{traffic.real / 1e6:,.3g}", f"{traffic.real / seconds / 1e9:.1f}",
            f"{100 * roofline(traffic, seconds, bandwidth):.0f}%"]


def measure(cases, triad: TriadBandwidth, budget: float, min_rounds: int):
    """(case, times) of each case, and the triad bandwidth sampled before and after them."""
    around = triad.sample()
    results = []
    for make in cases:
        case = make()
        results.append((case, time_cases(case.variants, budget, min_rounds)))
    around += triad.sample()
    return results, around


def table_title(title: str, results, around: list[float]) -> str:
    """The table's title, the triad bandwidth its rooflines use, its target rows and its notes."""
    bandwidth = median(around)
    rows = [(case.size, roofline(case.traffic, times["research"], bandwidth))
            for case, times in results if case.traffic.target]
    target = f"target: roofline >= {ROOFLINE_TARGET:.0%} where min MB > twice the cache"
    if rows:
        met = all(fraction >= ROOFLINE_TARGET for _, fraction in rows)
        cells = ", ".join(f"{size} {100 * fraction:.0f}%" for size, fraction in rows)
        target += f" ({cells}): {'met' if met else 'NOT met'}"
    else:
        target += ": no such row in this table"
    notes = dict.fromkeys(note for case, _ in results for note in case.notes)
    return "\n".join([f"{title}; roofline = real GB/s / triad bandwidth {bandwidth:.1f} GB/s "
                      f"(min {min(around):.1f}, max {max(around):.1f})", target, *notes])


def run_table(title: str, cases, triad: TriadBandwidth, budget: float, min_rounds: int) -> None:
    """research against numpy, torch (and the baseline): times, traffic, roofline, ratios."""
    results, around = measure(cases, triad, budget, min_rounds)
    bandwidth = median(around)
    headers = None
    rows = []
    for case, times in results:
        t_res = times["research"]
        torch_cols = [_fmt_us(times[name]) for name in case.torch_names]
        best_torch = min((times[name] for name in case.torch_names), default=math.nan)
        baseline, bound = "baseline" in times, "bound" in times
        row = [case.size, _fmt_us(t_res), *([_fmt_us(times["baseline"])] if baseline else []),
               _fmt_us(times["numpy"]), *torch_cols, *([_fmt_us(times["bound"])] if bound else []),
               *traffic_cells(case.traffic, t_res, bandwidth)]
        if baseline:
            row.append(f"{t_res / times['baseline']:.2f}")
        if case.torch_names:
            row.append(f"{best_torch / t_res:.2f}")
            if bound:
                row.append(f"{best_torch / times['bound']:.2f}")
        row += [f"{times['numpy'] / t_res:.1f}", f"{case.error:.0e}"]
        rows.append(row)
        if headers is None:
            headers = ["size", "research us", *(["baseline us"] if baseline else []), "numpy us",
                       *[f"{n} us" for n in case.torch_names], *(["bound us"] if bound else []),
                       *TRAFFIC_HEADERS]
            if baseline:
                headers.append("research/baseline")
            if case.torch_names:
                headers += ["torch/research", *(["torch/bound"] if bound else [])]
            headers += ["numpy/research", "max rel diff"]
    print_table(headers, rows, title=table_title(title, results, around))


def run_fused_table(title: str, cases, triad: TriadBandwidth, budget: float, min_rounds: int) -> None:
    """Fused against unfused (and torch): times, traffic, roofline and ratios from the same
    interleaved rounds."""
    results, around = measure(cases, triad, budget, min_rounds)
    bandwidth = median(around)
    rows, torch_seen = [], False
    for case, times in results:
        t = times["research"]
        torch_seen = bool(case.torch_names)
        row = [case.size, _fmt_us(t), _fmt_us(times["unfused"])]
        row += [_fmt_us(times["torch"])] if torch_seen else []
        row += [*traffic_cells(case.traffic, t, bandwidth), f"{times['unfused'] / t:.2f}"]
        row += [f"{times['torch'] / t:.2f}"] if torch_seen else []
        rows.append(row + [f"{case.error:.0e}"])
    headers = ["size", "fused us", "unfused us", *(["torch us"] if torch_seen else []), *TRAFFIC_HEADERS,
               "unfused/fused", *(["torch/fused"] if torch_seen else []), "max rel diff"]
    print_table(headers, rows, title=table_title(title, results, around))


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
    return (f"cpu: {model}" + (f" ({', '.join(simd)})" if simd else "")
            + f"; research kernels: {kernels.isa()} (of {', '.join(kernels.supported_isas())}; RESEARCH_KERNELS "
            "forces one)")


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
    parser.add_argument("--dtype", choices=["float32", "float64", "both"], default="both",
                        help="the dtypes to time (default: %(default)s)")
    parser.add_argument("--kernel", action="append", choices=KERNELS,
                        help="run only these tables (repeatable; default all)")
    parser.add_argument("--budget", type=positive, help="seconds per case (default 1.0, quick 0.2)")
    parser.add_argument("--min-rounds", type=at_least(1), help="rounds per case at least (default 7, quick 3)")
    parser.add_argument("--no-torch", action="store_true", help="skip PyTorch even if installed")
    parser.add_argument("--baseline", metavar="PATH",
                        help="another checkout of research (extension built) to time side by side (default: none)")
    args = parser.parse_args()
    budget = args.budget if args.budget is not None else (0.2 if args.quick else 1.0)
    min_rounds = args.min_rounds if args.min_rounds is not None else (3 if args.quick else 7)
    dtypes = [np.float32, np.float64] if args.dtype == "both" else [getattr(np, args.dtype)]
    which = args.kernel or KERNELS

    print(environment())
    print(_cpu_line())
    torch = _import_torch(args.no_torch)
    baseline = load_baseline(args.baseline) if args.baseline else None
    if baseline is not None:
        print(f"baseline: research.kernels of {args.baseline}")
    if os.environ.get("OPENBLAS_CORETYPE"):
        print(f"OPENBLAS_CORETYPE={os.environ['OPENBLAS_CORETYPE']} (no effect on these kernels)")
    started = time.perf_counter()
    triad = TriadBandwidth(repeats=3 if args.quick else 5)
    big_rate = median(triad.sample(9))
    print(f"single-thread triad bandwidth (c = a + b, 128 MB arrays, 4 arrays counted, median of 9): "
          f"{big_rate:.1f} GB/s")
    sysfs = last_level_cache_bytes()
    cache, rates = measured_cache_bytes(big_rate, sysfs)
    print(f"cache: {cache / 2**20:.0f} MiB, the largest triad footprint at least {CACHE_FASTER}x as fast ("
          + ", ".join(f"{size / 2**20:.0f} MiB {rate:.1f} GB/s" for size, rate in rates) + ") and not over the "
          + (f"last-level cache, {sysfs / 2**20:.0f} MiB (sysfs)" if sysfs else "last-level cache (not in sysfs)"))
    print("min MB counts each array once; real MB what the kernel moves (outputs read for ownership,\n"
          "batchnorm's second read when it misses the cache); roofline: real GB/s over the triad\n"
          "bandwidth measured around each table (over 100%: the data fit in cache, or in-place\n"
          "streams beat the triad)")
    print()

    for dtype in dtypes:
        name = np.dtype(dtype).name
        if "forward" in which:
            run_table(f"Batchnorm forward, training, {name} (us per call, median)",
                      [lambda s=s, d=dtype: bn_forward_case(s, d, torch, baseline, cache) for s in BN_SHAPES],
                      triad, budget, min_rounds)
        if "backward" in which:
            run_table(f"Batchnorm backward, {name} (us per call, median)",
                      [lambda s=s, d=dtype: bn_backward_case(s, d, torch, baseline, cache) for s in BN_SHAPES],
                      triad, budget, min_rounds)
        if "fused" in which:
            for backward in (False, True):
                what = "backward" if backward else "forward, training"
                run_fused_table(
                    f"Batchnorm + ReLU {what}, {name}: fused against unfused (us per call, median)",
                    [lambda s=s, d=dtype, b=backward: bn_relu_case(s, d, torch, b, cache) for s in BN_SHAPES],
                    triad, budget, min_rounds)
        for key, opt in OPTIMIZERS.items():
            if key in which:
                run_table(f"{opt.title}, one step, {name} (us per call, median)",
                          [lambda s=s, d=dtype, o=opt: optimizer_case(o, s, d, torch, baseline, cache)
                           for s in OPTIMIZER_SIZES],
                          triad, budget, min_rounds)
    if "overhead" in which:
        for dtype in dtypes:
            overhead_table(dtype, budget, min_rounds, baseline)
    rates = triad.samples
    print(f"triad bandwidth over the run: median {median(rates):.1f} GB/s, min {min(rates):.1f}, "
          f"max {max(rates):.1f} (a wide range means other jobs loaded the machine)")
    print(f"{environment().split('; ')[0]}; total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    run(main)

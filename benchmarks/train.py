"""Training speed: epochs per second of one small MLP in research, pure numpy and PyTorch.

What is measured
    One epoch of the same model on the same data: scikit-learn's digits as research loads
    them (1,438 training and 359 validation images of 64 features, standardized), an MLP
    64 -> 128 -> 128 -> 10 with two hidden layers linear (no bias) -> batchnorm -> ReLU, a
    linear output layer with bias, softmax cross-entropy, Adam (lr 1e-3, betas 0.9/0.999,
    eps 1e-8), mini-batches of 64 in a fresh random order every epoch, float32. An epoch is
    23 optimizer steps plus an eval-mode pass over the validation set (loss and accuracy),
    which is what ``research.nn.training.Trainer.train_epoch`` does; the other two do the same
    work, training loss and accuracy included.

    (a) research: ``Trainer.train_epoch`` (numpy matmuls, C batchnorm and Adam kernels).
        Setup (dataset loading, model construction) is excluded.
    (b) numpy: the same model written here the textbook way (CS231n ``layers.py`` style:
        batchnorm forward/backward and Adam as numpy expressions that allocate their
        temporaries).
    (c) torch: ``nn.Sequential(Linear(bias=False), BatchNorm1d, ReLU) x 2 -> Linear``,
        ``CrossEntropyLoss``, ``torch.optim.Adam``, ``torch.set_num_threads(1)``, the
        validation pass under ``torch.no_grad()`` in eval mode. Skipped when torch is not
        importable.

    All three start from the same initial weights (research's He initialization, copied)
    and run with BLAS pinned to one thread (``threadpoolctl.threadpool_limits(1)``), since
    research parallelizes across trials, one thread per worker. The final validation
    accuracies are printed as a check that the three train the same model.

How
    The variants' epochs are interleaved round-robin (rotated order every round) so that
    load from other processes on a shared machine hits them alike. After ``--warmup``
    rounds, ``--repeats`` epochs of each are timed with ``time.perf_counter``; the table
    gives epochs/s from the median epoch time, the interquartile range, and the ratios of
    the medians, all from this one run.

    Then research's epoch is profiled with cProfile (top 15 functions by cumulative and by
    internal time), its time split by category (tottime per function, so the categories
    partition the profiled time; cProfile inflates Python call overhead, so these shares
    overstate it a little) and, without the profiler, by phase: forward/backward,
    optimizer step, validation pass, batching. The "BLAS floor" is the time of the same
    matmuls alone on preallocated arrays: no implementation built on numpy's matmul can
    be faster than that.

    With ``--baseline PYTHON`` the same epochs of another checkout (the research that
    PYTHON imports, e.g. a venv with the previous commit installed) are timed too, by
    ``benchmarks/baseline_epochs.py`` in a subprocess, interleaved with this checkout's.

Usage
    python benchmarks/train.py            # 40 timed epochs per variant
    python benchmarks/train.py --quick    # 10 timed epochs, fewer profiled epochs
    python benchmarks/train.py --baseline ../base/.venv/bin/python   # against another checkout
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import math
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import environment, median, print_table, rate, spread, time_interleaved

from research.plugins import load_plugins
from research.nn.training import Trainer

CONFIG = {
    "dataset": "digits",
    "hidden": 128,
    "layers": 2,
    "batchnorm": True,
    "optimizer": "adam",
    "lr": 1e-3,
    "beta1": 0.9,
    "beta2": 0.999,
    "eps": 1e-8,
    "batch_size": 64,
    "dtype": "float32",
    "epochs": 10_000,
    "seed": 0,
}
BN_EPS = 1e-5
BN_MOMENTUM = 0.1


def initial_params(model) -> list[np.ndarray]:
    """research's initial parameters, by name, in the order W1, gamma1, beta1, ..., W{L+1}, b{L+1}."""
    named = dict(zip(model.param_names, model.params))
    names = [f"{kind}{i}" for i in range(1, model.layers + 1) for kind in ("W", "gamma", "beta")]
    names += [f"W{model.layers + 1}", f"b{model.layers + 1}"]
    return [named[name] for name in names]


def batches(rng: np.random.Generator, n: int, batch_size: int) -> list[np.ndarray]:
    """Index arrays of one shuffled epoch, as research makes them (a last batch of one
    sample joins the previous one)."""
    order = rng.permutation(n)
    starts = list(range(0, n, batch_size))
    if len(starts) > 1 and n - starts[-1] < 2:
        starts.pop()
    ends = starts[1:] + [n]
    return [order[a:b] for a, b in zip(starts, ends)]


# --------------------------------------------------------------------------------------------------
# (b) The textbook numpy model
# --------------------------------------------------------------------------------------------------

class NumpyMLP:
    """The same MLP in plain numpy expressions, with numpy Adam.

    Parameters in research's order: W1, gamma1, beta1, W2, gamma2, beta2, W3, b3.
    """

    def __init__(self, params: list[np.ndarray], layers: int, lr: float, beta1: float, beta2: float,
                 eps: float):
        self.params = [p.copy() for p in params]
        self.layers = layers
        hidden = params[0].shape[1]
        dtype = params[0].dtype
        self.running = [[np.zeros(hidden, dtype), np.ones(hidden, dtype)] for _ in range(layers)]
        self.m = [np.zeros_like(p) for p in self.params]
        self.v = [np.zeros_like(p) for p in self.params]
        self.t = 0
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps

    def _forward(self, x, train):
        caches = []
        h = x
        for i in range(self.layers):
            W, gamma, beta = self.params[3 * i: 3 * i + 3]
            z = h @ W
            rm, rv = self.running[i]
            if train:
                n = z.shape[0]
                mu = z.mean(axis=0)
                zc = z - mu
                var = (zc ** 2).mean(axis=0)
                invstd = 1.0 / np.sqrt(var + BN_EPS)
                zhat = zc * invstd
                rm[:] = (1 - BN_MOMENTUM) * rm + BN_MOMENTUM * mu
                rv[:] = (1 - BN_MOMENTUM) * rv + BN_MOMENTUM * var * (n / (n - 1))
            else:
                invstd = 1.0 / np.sqrt(rv + BN_EPS)
                zhat = (z - rm) * invstd
            a = gamma * zhat + beta
            h_next = np.maximum(a, 0)
            caches.append((h, zhat, invstd, h_next))
            h = h_next
        W_out, b_out = self.params[-2:]
        s = h @ W_out + b_out
        return s, caches, h

    @staticmethod
    def _softmax_cross_entropy(s, y):
        n = s.shape[0]
        shifted = s - s.max(axis=1, keepdims=True)
        logsumexp = np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        logp = shifted - logsumexp
        loss = -float(logp[np.arange(n), y].sum(dtype=np.float64)) / n
        correct = int(np.count_nonzero(s.argmax(axis=1) == y))
        return loss, correct, logp

    def train_step(self, x, y):
        n = x.shape[0]
        s, caches, h = self._forward(x, train=True)
        loss, correct, logp = self._softmax_cross_entropy(s, y)
        ds = np.exp(logp)
        ds[np.arange(n), y] -= 1
        ds /= n
        grads = [None] * len(self.params)
        W_out = self.params[-2]
        grads[-2] = h.T @ ds
        grads[-1] = ds.sum(axis=0)
        dh = ds @ W_out.T
        for i in range(self.layers - 1, -1, -1):
            h_in, zhat, invstd, h_out = caches[i]
            W, gamma, _ = self.params[3 * i: 3 * i + 3]
            da = dh * (h_out > 0)
            dgamma = (da * zhat).sum(axis=0)
            dbeta = da.sum(axis=0)
            dzhat = da * gamma
            dz = (invstd / n) * (n * dzhat - dzhat.sum(axis=0) - zhat * (dzhat * zhat).sum(axis=0))
            grads[3 * i: 3 * i + 3] = [h_in.T @ dz, dgamma, dbeta]
            if i:
                dh = dz @ W.T
        self._adam(grads)
        return loss, correct

    def _adam(self, grads):
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        bc1, bc2 = 1 - b1 ** self.t, 1 - b2 ** self.t
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            m[:] = b1 * m + (1 - b1) * g
            v[:] = b2 * v + (1 - b2) * (g * g)
            m_hat = m / bc1
            v_hat = v / bc2
            p -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)

    def evaluate(self, x, y):
        s, _, _ = self._forward(x, train=False)
        loss, correct, _ = self._softmax_cross_entropy(s, y)
        return loss, correct / len(y)


class NumpyRun:
    def __init__(self, trainer: Trainer, seed: int):
        self.x, self.y = trainer.x_train, trainer.y_train
        self.x_val, self.y_val = trainer.x_val, trainer.y_val
        self.model = NumpyMLP(initial_params(trainer.model), trainer.model.layers, CONFIG["lr"], CONFIG["beta1"],
                              CONFIG["beta2"], CONFIG["eps"])
        self.rng = np.random.default_rng(seed)
        self.val_acc = math.nan

    def epoch(self):
        loss_sum = correct = 0.0
        for index in batches(self.rng, len(self.x), CONFIG["batch_size"]):
            loss, c = self.model.train_step(self.x[index], self.y[index])
            loss_sum += loss * len(index)
            correct += c
        _, self.val_acc = self.model.evaluate(self.x_val, self.y_val)
        return loss_sum / len(self.x), correct / len(self.x)


# --------------------------------------------------------------------------------------------------
# (c) PyTorch
# --------------------------------------------------------------------------------------------------

class TorchRun:
    def __init__(self, trainer: Trainer, seed: int):
        import torch
        from torch import nn

        self.torch = torch
        torch.set_num_threads(1)
        model = trainer.model
        layers: list = []
        fan_in = model.n_features
        for _ in range(model.layers):
            layers += [nn.Linear(fan_in, model.hidden, bias=False),
                       nn.BatchNorm1d(model.hidden, eps=BN_EPS, momentum=BN_MOMENTUM), nn.ReLU()]
            fan_in = model.hidden
        layers.append(nn.Linear(fan_in, model.n_classes))
        self.net = nn.Sequential(*layers)
        # research's initial weights: Linear.weight is W.T
        linears = [m for m in self.net if isinstance(m, nn.Linear)]
        norms = [m for m in self.net if isinstance(m, nn.BatchNorm1d)]
        p = initial_params(model)
        with torch.no_grad():
            for i, (lin, bn) in enumerate(zip(linears, norms)):
                lin.weight.copy_(torch.from_numpy(p[3 * i].T.copy()))
                bn.weight.copy_(torch.from_numpy(p[3 * i + 1]))
                bn.bias.copy_(torch.from_numpy(p[3 * i + 2]))
            linears[-1].weight.copy_(torch.from_numpy(p[-2].T.copy()))
            linears[-1].bias.copy_(torch.from_numpy(p[-1]))
        self.loss_fn = nn.CrossEntropyLoss()
        self.opt = torch.optim.Adam(self.net.parameters(), lr=CONFIG["lr"],
                                    betas=(CONFIG["beta1"], CONFIG["beta2"]), eps=CONFIG["eps"])
        self.x = torch.from_numpy(trainer.x_train)
        self.y = torch.from_numpy(trainer.y_train)
        self.x_val = torch.from_numpy(trainer.x_val)
        self.y_val = torch.from_numpy(trainer.y_val)
        self.rng = np.random.default_rng(seed)
        self.val_acc = math.nan

    def epoch(self):
        torch = self.torch
        self.net.train()
        loss_sum = correct = 0.0
        for index in batches(self.rng, len(self.x), CONFIG["batch_size"]):
            index = torch.from_numpy(index)
            xb, yb = self.x[index], self.y[index]
            out = self.net(xb)
            loss = self.loss_fn(out, yb)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            loss_sum += loss.item() * len(index)
            correct += (out.argmax(dim=1) == yb).sum().item()
        self.net.eval()
        with torch.no_grad():
            out = self.net(self.x_val)
            self.loss_fn(out, self.y_val).item()
            self.val_acc = (out.argmax(dim=1) == self.y_val).float().mean().item()
        return loss_sum / len(self.x), correct / len(self.x)


def torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


# --------------------------------------------------------------------------------------------------
# Profile of research's epoch
# --------------------------------------------------------------------------------------------------

def category(filename: str, function: str) -> str:
    """Which bucket a profiled function's own time goes to."""
    name = f"{filename}:{function}"
    if "research._kernels" in function:
        return "C kernels (batchnorm, adam)"
    if function.startswith(("_linear_", "_output_")) and filename.endswith("model.py"):
        return "matmuls (numpy BLAS, in _linear_*/_output_*)"
    if filename.endswith(os.path.join("research", "kernels.py")) or "from_buffer" in function:
        return "kernel wrappers (checks, cffi)"
    if "_softmax_cross_entropy" in function or "argmax" in name or "count_nonzero" in name:
        return "softmax cross-entropy"
    if "_relu" in function:
        return "ReLU"
    if filename.endswith("optimizers.py"):
        return "optimizer Python (step, grad checks)"
    if "train_epoch" in function:
        return "train_epoch (batch indexing x[idx])"
    if filename.endswith(os.path.join("research", "model.py")):
        return "model Python (forward/backward glue, checks)"
    if "reduce" in function or "fromnumeric" in filename or "_methods" in filename:
        return "numpy reductions (sums in backward, checks)"
    return "other Python / numpy"


def profile(trainer: Trainer, epochs: int) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(epochs):
        trainer.train_epoch()
    profiler.disable()
    stats = pstats.Stats(profiler)
    total = stats.total_tt
    for key, title in (("cumulative", "cumulative time"), ("tottime", "internal time")):
        buffer = io.StringIO()
        pstats.Stats(profiler, stream=buffer).strip_dirs().sort_stats(key).print_stats(15)
        text = buffer.getvalue()
        body = text[text.index("   ncalls"):].rstrip()
        print(f"cProfile of {epochs} research epochs, top 15 by {title} "
              f"(profiled total {total * 1e3:.0f} ms = {total / epochs * 1e3:.2f} ms/epoch):")
        print(body)
        print()
    buckets: dict[str, float] = {}
    for (filename, _, function), (_, _, tottime, _, _) in stats.stats.items():
        bucket = category(filename, function)
        buckets[bucket] = buckets.get(bucket, 0.0) + tottime
    rows = [(name, seconds / epochs * 1e3, 100 * seconds / total)
            for name, seconds in sorted(buckets.items(), key=lambda kv: -kv[1])]
    print_table(["category (internal time, profiled)", "ms/epoch", "%"], rows,
                title="Where research's epoch goes, by category:", floatfmt=".2f")


def phases(trainer: Trainer, epochs: int) -> list[float]:
    """Unprofiled ms/epoch of forward+backward, optimizer step, validation, batching (medians)."""
    model, optimizer = trainer.model, trainer.optimizer
    clock = time.perf_counter
    per_epoch: list[list[float]] = []
    with np.errstate(all="ignore"):
        for _ in range(epochs):
            fb = step = 0.0
            start = clock()
            for index in trainer._batches():
                xb, yb = trainer.x_train[index], trainer.y_train[index]
                t1 = clock()
                _, _, grads = model.loss_and_grads(xb, yb)
                t2 = clock()
                optimizer.step(grads)
                t3 = clock()
                fb += t2 - t1
                step += t3 - t2
            t4 = clock()
            model.evaluate(trainer.x_val, trainer.y_val)
            t5 = clock()
            per_epoch.append([fb, step, t5 - t4, (t4 - start) - fb - step, t5 - start])
    return [median([e[i] for e in per_epoch]) * 1e3 for i in range(5)]


def blas_floor(trainer: Trainer, repeats: int) -> float:
    """ms for the matmuls of one epoch alone: 8 per step (3 forward, 3 dW, 2 dx) and 3 for
    the validation pass, on preallocated arrays of research's shapes."""
    model = trainer.model
    d, h, k = model.n_features, model.hidden, model.n_classes
    dtype = model.dtype
    rng = np.random.default_rng(0)
    W1, W2, W3 = (rng.standard_normal(s).astype(dtype) for s in ((d, h), (h, h), (h, k)))
    sizes = [len(b) for b in batches(rng, len(trainer.x_train), trainer.batch_size)]

    def buffers(n):
        return {name: rng.standard_normal(shape).astype(dtype) for name, shape in
                (("x", (n, d)), ("h1", (n, h)), ("h2", (n, h)), ("s", (n, k)), ("dh", (n, h)))}

    work = {n: buffers(n) for n in set(sizes) | {len(trainer.x_val)}}
    dW1, dW2, dW3 = np.empty_like(W1), np.empty_like(W2), np.empty_like(W3)

    def epoch():
        for n in sizes:
            b = work[n]
            np.matmul(b["x"], W1, out=b["h1"])
            np.matmul(b["h1"], W2, out=b["h2"])
            np.matmul(b["h2"], W3, out=b["s"])
            np.matmul(b["h2"].T, b["s"], out=dW3)
            np.matmul(b["s"], W3.T, out=b["dh"])
            np.matmul(b["h1"].T, b["dh"], out=dW2)
            np.matmul(b["dh"], W2.T, out=b["h2"])
            np.matmul(b["x"].T, b["dh"], out=dW1)
        b = work[len(trainer.x_val)]
        np.matmul(b["x"], W1, out=b["h1"])
        np.matmul(b["h1"], W2, out=b["h2"])
        np.matmul(b["h2"], W3, out=b["s"])

    times = []
    for _ in range(repeats + 3):
        t0 = time.perf_counter()
        epoch()
        times.append(time.perf_counter() - t0)
    return median(times[3:]) * 1e3


class BaselineRun:
    """research's epoch as another checkout trains it: ``benchmarks/baseline_epochs.py`` run
    by that checkout's interpreter, one epoch per request. Its times are measured there,
    around ``train_epoch`` only."""

    def __init__(self, python: str):
        script = Path(__file__).with_name("baseline_epochs.py")
        self.process = subprocess.Popen([python, str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True, cwd=tempfile.gettempdir())
        self.send(json.dumps(CONFIG))
        self.wall: list[float] = []
        self.cpu: list[float] = []
        self.val_acc = math.nan

    def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def epoch(self) -> None:
        self.send("epoch")
        assert self.process.stdout is not None
        answer = self.process.stdout.readline().split()
        if len(answer) != 3:
            raise SystemExit(f"the baseline interpreter stopped answering (got {answer!r}); run "
                             "benchmarks/baseline_epochs.py with it to see why")
        wall, cpu, self.val_acc = (float(x) for x in answer)
        self.wall.append(wall)
        self.cpu.append(cpu)

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)


def compare_with_baseline(trainer: Trainer, python: str, warmup: int, repeats: int) -> None:
    """This checkout's epochs against another checkout's, interleaved in one run."""
    baseline = BaselineRun(python)
    try:
        own_wall, own_cpu = time_interleaved({"this checkout": trainer.train_epoch, "baseline": baseline.epoch},
                                             warmup=warmup, repeats=repeats)
    finally:
        baseline.close()
    wall = {"this checkout": own_wall["this checkout"], "baseline": baseline.wall[warmup:]}
    cpu = {"this checkout": own_cpu["this checkout"], "baseline": baseline.cpu[warmup:]}
    acc = {"this checkout": trainer.history[-1]["val_acc"], "baseline": baseline.val_acc}
    rows = [[name, rate(median(wall[name])), median(wall[name]) * 1e3, rate(median(cpu[name])), acc[name]]
            for name in wall]
    rows.append(["baseline / this (time)", median(wall["baseline"]) / median(wall["this checkout"]), "",
                 median(cpu["baseline"]) / median(cpu["this checkout"]), ""])
    print_table(["research", "epochs/s", "ms/epoch", "epochs/CPU-s", "val acc"], rows,
                title=f"Against the baseline interpreter {python} ({repeats} epochs each, interleaved; a ratio "
                      "above 1 means this checkout is faster):", floatfmt=".4g")


# --------------------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (about 10 s)")
    parser.add_argument("--repeats", type=int, help="timed epochs per variant (default 40, quick 10)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed epochs per variant first")
    parser.add_argument("--profile-epochs", type=int, help="epochs under cProfile (default 40, quick 15)")
    parser.add_argument("--no-torch", action="store_true", help="skip PyTorch even if installed")
    parser.add_argument("--baseline", metavar="PYTHON",
                        help="also time the epochs of the research that this interpreter imports (another "
                             "checkout's venv), interleaved with this checkout's")
    args = parser.parse_args()
    repeats = args.repeats or (10 if args.quick else 40)
    profile_epochs = args.profile_epochs or (15 if args.quick else 40)

    print("benchmarks/train.py: epochs/s of an MLP 64-128-128-10 (batchnorm, adam, batch 64, "
          "float32) on digits")
    print(environment())
    use_torch = not args.no_torch and torch_available()
    if use_torch:
        import torch

        print(f"torch {torch.__version__}, torch.set_num_threads(1)")
    else:
        print("torch: not importable (or --no-torch), skipped")
    print("BLAS pinned to 1 thread (threadpoolctl); epochs interleaved round-robin\n")

    plugins = load_plugins()
    with threadpool_limits(1):
        trainer = Trainer(CONFIG, plugins)
        variants = {"research": trainer.train_epoch}
        numpy_run = NumpyRun(trainer, seed=1)
        variants["numpy"] = numpy_run.epoch
        torch_run = None
        if use_torch:
            torch_run = TorchRun(trainer, seed=1)
            variants["torch"] = torch_run.epoch
        times, cpu = time_interleaved(variants, warmup=args.warmup, repeats=repeats)
        epochs_done = args.warmup + repeats

        med = {name: median(t) for name, t in times.items()}
        med_cpu = {name: median(t) for name, t in cpu.items()}
        rows = []
        val_acc = {"research": trainer.history[-1]["val_acc"], "numpy": numpy_run.val_acc}
        if torch_run is not None:
            val_acc["torch"] = torch_run.val_acc
        for name, t in times.items():
            q1, q3 = spread(t)
            rows.append([name, rate(med[name]), med[name] * 1e3, f"{q1 * 1e3:.2f}..{q3 * 1e3:.2f}",
                         rate(min(t)), med_cpu[name] * 1e3, rate(med_cpu[name]), val_acc[name]])
        print_table(["variant", "epochs/s", "ms/epoch", "IQR ms", "best epochs/s", "CPU ms/epoch",
                     "epochs/CPU-s", f"val acc @{epochs_done}"], rows,
                    title=f"Epoch speed ({repeats} timed epochs each after {args.warmup} warm-up; "
                          "wall-clock median, best, and median CPU time):",
                    floatfmt=".4g")

        ratio_rows = []
        for other, target in (("torch", 1.5), ("numpy", 2.0)):
            if other not in med:
                continue
            ratio = med[other] / med["research"]
            best_ratio = min(times[other]) / min(times["research"])
            cpu_ratio = med_cpu[other] / med_cpu["research"]
            verdict = "/".join("met" if r >= target else "NOT met" for r in (ratio, cpu_ratio))
            ratio_rows.append([f"research / {other}", ratio, best_ratio, cpu_ratio, f">= {target}", verdict])
        print_table(["speed ratio", "median wall", "best wall", "median CPU", "target",
                     "verdict (wall/CPU medians)"],
                    ratio_rows, title="Ratios (epochs/s of research over the other; same run):", floatfmt=".2f")

        if args.baseline:
            compare_with_baseline(Trainer(CONFIG, plugins), args.baseline, args.warmup, repeats)

        warm = Trainer(CONFIG, plugins)
        for _ in range(args.warmup):
            warm.train_epoch()
        profile(warm, profile_epochs)
        fb, step, val, batching, total = phases(warm, max(profile_epochs, 10))
        floor = blas_floor(warm, max(profile_epochs, 10))
        rows = [
            ["forward + backward (loss_and_grads)", fb, 100 * fb / total],
            ["optimizer step (adam)", step, 100 * step / total],
            ["validation pass (evaluate, 359 rows)", val, 100 * val / total],
            ["batching (shuffle, x[idx], loop)", batching, 100 * batching / total],
            ["whole epoch", total, 100.0],
            ["matmuls alone, same shapes (BLAS floor)", floor, 100 * floor / total],
        ]
        print_table(["phase (no profiler)", "ms/epoch", "% of epoch"], rows,
                    title="research's epoch by phase, unprofiled (median):", floatfmt=".2f")


if __name__ == "__main__":
    main()

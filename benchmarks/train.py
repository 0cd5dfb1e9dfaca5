"""Training speed: epochs per second of one small model in research, pure numpy and PyTorch.

What is measured
    One epoch of the same model on the same data: scikit-learn's digits as research loads
    them (1,079 training, 359 validation and 359 held-out test images of 64 features,
    standardized), Adam (lr 1e-3, betas 0.9/0.999, eps 1e-8), mini-batches of 64 in a fresh
    random order every epoch, float32. An epoch is 17 optimizer steps plus eval-mode passes
    over the validation and test sets (loss and accuracy), which is what
    ``research.nn.training.Trainer.train_epoch`` does; the other two do the same work,
    training loss and accuracy included. The model is

    --model mlp (default): an MLP 64 -> 128 -> 128 -> 10 with two hidden layers linear (no
        bias) -> batchnorm -> ReLU, a linear output layer with bias, softmax cross-entropy;
    --model cnn: research's ``cnn`` with its default options (``--model-opt key=value`` to
        change them) on the 1x8x8 images: blocks conv 3x3 "same" (no bias) -> batchnorm ->
        ReLU -> 2x2 max pooling, then a linear head with bias, softmax cross-entropy.

    (a) research: ``Trainer.train_epoch`` (numpy matmuls, C batchnorm and Adam kernels; the
        CNN's second block by Winograd's F(2x2, 3x3) with C transforms, its pooling in C).
        Setup (dataset loading, model construction) is excluded.
    (b) numpy: the same model written here the textbook way (CS231n ``layers.py`` style:
        batchnorm forward/backward and Adam as numpy expressions that allocate their
        temporaries; for the CNN, NCHW arrays, im2col as a strided window view copied by a
        reshape, one matmul per convolution and direction, col2im by k*k slice additions,
        spatial batchnorm as an (N*H*W, C) batchnorm, max pooling by reshape with ties sharing
        the gradient, as CS231n's ``max_pool_backward_reshape``).
    (c) torch: ``nn.Sequential(Linear(bias=False), BatchNorm1d, ReLU) x 2 -> Linear`` (for the
        CNN ``(Conv2d(bias=False), BatchNorm2d, ReLU, MaxPool2d(2)) x blocks -> Flatten ->
        Linear``), ``CrossEntropyLoss``, ``torch.optim.Adam``, ``torch.set_num_threads(1)``,
        the validation pass under ``torch.no_grad()`` in eval mode. Skipped when torch is not
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
    overstate it a little; numpy's ufuncs, matmul included, are not functions to cProfile, so
    their time counts as their caller's) and, without the profiler, by phase:
    forward/backward, optimizer step, validation pass, batching. The "BLAS floor" is the time
    of the same matmuls alone on preallocated arrays: no implementation built on numpy's
    matmul can be faster than that. For the CNN, whose work is numpy calls cProfile cannot see,
    a table by operation times each numpy function research.nn.cnn calls (through a stand-in
    for its ``np`` that times every call).

    With ``--accuracy`` it trains research's model from scratch for ``--epochs`` (30) epochs
    with seeds 0, 1 and 2, as ``research.train(model=..., epochs=30, seed=s)`` does, and
    prints the final and best validation accuracy of each, instead of timing.

    With ``--baseline PYTHON`` the same epochs of another checkout (the research that
    PYTHON imports, e.g. a venv with the previous commit installed) are timed too, by
    ``benchmarks/baseline_epochs.py`` in a subprocess, interleaved with this checkout's.

Usage
    python benchmarks/train.py            # the MLP, 40 timed epochs per variant
    python benchmarks/train.py --model cnn               # the CNN
    python benchmarks/train.py --model cnn --accuracy    # the CNN's accuracy, seeds 0, 1, 2
    python benchmarks/train.py --quick    # 10 timed epochs, fewer profiled epochs
    python benchmarks/train.py --baseline ../base/.venv/bin/python   # against another checkout
"""

from __future__ import annotations

import argparse
import contextlib
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
from numpy.lib.stride_tricks import sliding_window_view
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import at_least, environment, median, print_table, rate, run, spread, time_interleaved

from research.nn.training import Trainer
from research.plugins import load_plugins

CONFIG = {
    "dataset": "digits",
    "model": "mlp",
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
CNN_CONFIG = {key: value for key, value in CONFIG.items() if key not in ("hidden", "layers", "batchnorm")}
CNN_CONFIG["model"] = "cnn"  # and the model's defaults
BN_EPS = 1e-5
BN_MOMENTUM = 0.1


def initial_params(model) -> list[np.ndarray]:
    """research's initial parameters, by name, in the order W1, gamma1, beta1, ..., W{L+1}, b{L+1}
    (the MLP's hidden layers or the CNN's blocks, then the output layer)."""
    named = dict(zip(model.param_names, model.params))
    depth = model.layers if hasattr(model, "layers") else model.blocks
    names = [f"{kind}{i}" for i in range(1, depth + 1) for kind in ("W", "gamma", "beta")]
    names += [f"W{depth + 1}", f"b{depth + 1}"]
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
# (b) The textbook numpy models
# --------------------------------------------------------------------------------------------------

def bn_forward(z, gamma, beta, running, train):
    """Batchnorm of z (M, C) per column, allocating: (a, zhat, invstd); updates running = [mean,
    var] in training mode (unbiased variance, momentum BN_MOMENTUM)."""
    rm, rv = running
    if train:
        m = z.shape[0]
        mu = z.mean(axis=0)
        zc = z - mu
        var = (zc ** 2).mean(axis=0)
        invstd = 1.0 / np.sqrt(var + BN_EPS)
        zhat = zc * invstd
        rm[:] = (1 - BN_MOMENTUM) * rm + BN_MOMENTUM * mu
        rv[:] = (1 - BN_MOMENTUM) * rv + BN_MOMENTUM * var * (m / (m - 1))
    else:
        invstd = 1.0 / np.sqrt(rv + BN_EPS)
        zhat = (z - rm) * invstd
    return gamma * zhat + beta, zhat, invstd


def bn_backward(da, zhat, invstd, gamma):
    """(dz, dgamma, dbeta) of bn_forward from da (M, C)."""
    m = da.shape[0]
    dgamma = (da * zhat).sum(axis=0)
    dbeta = da.sum(axis=0)
    dzhat = da * gamma
    dz = (invstd / m) * (m * dzhat - dzhat.sum(axis=0) - zhat * (dzhat * zhat).sum(axis=0))
    return dz, dgamma, dbeta


class NumpyModel:
    """What the textbook models share: parameters in research's order, the output layer, softmax
    cross-entropy, numpy Adam. Subclasses give ``_hidden(x, train) -> (h, caches)`` and
    ``_hidden_backward(dh, caches, grads)``."""

    def __init__(self, params: list[np.ndarray], depth: int, lr: float, beta1: float, beta2: float,
                 eps: float):
        self.params = [p.copy() for p in params]
        self.depth = depth
        dtype = params[0].dtype
        self.running = [[np.zeros(len(params[3 * i + 1]), dtype), np.ones(len(params[3 * i + 1]), dtype)]
                        for i in range(depth)]
        self.m = [np.zeros_like(p) for p in self.params]
        self.v = [np.zeros_like(p) for p in self.params]
        self.t = 0
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, eps

    def _forward(self, x, train):
        h, caches = self._hidden(x, train)
        W_out, b_out = self.params[-2:]
        return h @ W_out + b_out, caches, h

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
        self._hidden_backward(ds @ W_out.T, caches, grads)
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


class NumpyMLP(NumpyModel):
    """The same MLP in plain numpy expressions, with numpy Adam.

    Parameters in research's order: W1, gamma1, beta1, W2, gamma2, beta2, W3, b3.
    """

    def __init__(self, trainer: Trainer):
        super().__init__(initial_params(trainer.model), trainer.model.layers, CONFIG["lr"], CONFIG["beta1"],
                         CONFIG["beta2"], CONFIG["eps"])

    def _hidden(self, x, train):
        caches = []
        h = x
        for i in range(self.depth):
            W, gamma, beta = self.params[3 * i: 3 * i + 3]
            a, zhat, invstd = bn_forward(h @ W, gamma, beta, self.running[i], train)
            h_next = np.maximum(a, 0)
            caches.append((h, zhat, invstd, h_next))
            h = h_next
        return h, caches

    def _hidden_backward(self, dh, caches, grads):
        for i in range(self.depth - 1, -1, -1):
            h_in, zhat, invstd, h_out = caches[i]
            W, gamma, _ = self.params[3 * i: 3 * i + 3]
            dz, dgamma, dbeta = bn_backward(dh * (h_out > 0), zhat, invstd, gamma)
            grads[3 * i: 3 * i + 3] = [h_in.T @ dz, dgamma, dbeta]
            if i:
                dh = dz @ W.T


def conv_forward(x, W):
    """Convolution of x (N, C, H, W) with W (F, C, k, k), stride 1, "same" zero padding, no bias:
    (out (N, F, H, W), cols (C*k*k, N*H*W)). im2col: a window view copied by a reshape."""
    n, c, h, w = x.shape
    f, _, k, _ = W.shape
    p = (k - 1) // 2
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    cols = sliding_window_view(xp, (k, k), axis=(2, 3)).transpose(1, 4, 5, 0, 2, 3).reshape(c * k * k, -1)
    out = (W.reshape(f, -1) @ cols).reshape(f, n, h, w).transpose(1, 0, 2, 3)
    return out, cols


def conv_backward(dout, cols, W, need_dx):
    """(dx (N, C, H, W) or None, dW) of conv_forward; col2im by k*k slice additions."""
    n, f, h, w = dout.shape
    _, c, k, _ = W.shape
    p = (k - 1) // 2
    dout2 = dout.transpose(1, 0, 2, 3).reshape(f, -1)
    dW = (dout2 @ cols.T).reshape(W.shape)
    if not need_dx:
        return None, dW
    dcols = (W.reshape(f, -1).T @ dout2).reshape(c, k, k, n, h, w)
    dxp = np.zeros((n, c, h + 2 * p, w + 2 * p), dout.dtype)
    for i in range(k):
        for j in range(k):
            dxp[:, :, i:i + h, j:j + w] += dcols[:, i, j].transpose(1, 0, 2, 3)
    return dxp[:, :, p:p + h, p:p + w], dW


class NumpyCNN(NumpyModel):
    """research's cnn in plain numpy, NCHW: per block conv -> spatial batchnorm -> ReLU -> 2x2 max
    pooling (by reshape; ties share the gradient), then the linear head. Even sizes only."""

    def __init__(self, trainer: Trainer):
        model = trainer.model
        super().__init__(initial_params(model), model.blocks, CONFIG["lr"], CONFIG["beta1"], CONFIG["beta2"],
                         CONFIG["eps"])
        self.input_shape = model.input_shape
        sizes = [model.input_shape[1:]] + [shape[1:] for shape in model.block_shapes]
        self.pool = [after[0] < before[0] for before, after in zip(sizes, sizes[1:])]
        for (h, w), pooled in zip(sizes, self.pool):
            assert not pooled or (h % 2 == 0 and w % 2 == 0), "the textbook pooling needs even sizes"

    def _hidden(self, x, train):
        caches = []
        h = x.reshape(len(x), *self.input_shape)
        for i in range(self.depth):
            W, gamma, beta = self.params[3 * i: 3 * i + 3]
            z, cols = conv_forward(h, W)
            n, c, hh, ww = z.shape
            a2, zhat, invstd = bn_forward(z.transpose(0, 2, 3, 1).reshape(-1, c), gamma, beta, self.running[i],
                                          train)
            r = np.maximum(a2.reshape(n, hh, ww, c).transpose(0, 3, 1, 2), 0)
            h = r.reshape(n, c, hh // 2, 2, ww // 2, 2).max(axis=3).max(axis=4) if self.pool[i] else r
            caches.append((cols, zhat, invstd, r, h))
        return h.reshape(len(x), -1), caches

    def _hidden_backward(self, dh, caches, grads):
        dh = dh.reshape(caches[-1][4].shape)
        for i in range(self.depth - 1, -1, -1):
            cols, zhat, invstd, r, h = caches[i]
            W, gamma, _ = self.params[3 * i: 3 * i + 3]
            n, c, hh, ww = r.shape
            if self.pool[i]:
                r6 = r.reshape(n, c, hh // 2, 2, ww // 2, 2)
                mask = r6 == h[:, :, :, None, :, None]
                dr = (mask * dh[:, :, :, None, :, None] / mask.sum(axis=(3, 5), keepdims=True)).reshape(r.shape)
            else:
                dr = dh
            da = (dr * (r > 0)).transpose(0, 2, 3, 1).reshape(-1, c)
            dz, dgamma, dbeta = bn_backward(da, zhat, invstd, gamma)
            dz = dz.reshape(n, hh, ww, c).transpose(0, 3, 1, 2)
            dh, dW = conv_backward(dz, cols, W, need_dx=i > 0)
            grads[3 * i: 3 * i + 3] = [dW, dgamma, dbeta]


class NumpyRun:
    def __init__(self, trainer: Trainer, seed: int):
        self.x, self.y = trainer.x_train, trainer.y_train
        self.x_val, self.y_val = trainer.x_val, trainer.y_val
        self.x_test, self.y_test = trainer.x_test, trainer.y_test
        self.model = (NumpyCNN if trainer.config["model"] == "cnn" else NumpyMLP)(trainer)
        self.rng = np.random.default_rng(seed)
        self.val_acc = math.nan

    def epoch(self):
        loss_sum = correct = 0.0
        for index in batches(self.rng, len(self.x), CONFIG["batch_size"]):
            loss, c = self.model.train_step(self.x[index], self.y[index])
            loss_sum += loss * len(index)
            correct += c
        _, self.val_acc = self.model.evaluate(self.x_val, self.y_val)
        self.model.evaluate(self.x_test, self.y_test)
        return loss_sum / len(self.x), correct / len(self.x)


# --------------------------------------------------------------------------------------------------
# (c) PyTorch
# --------------------------------------------------------------------------------------------------

def torch_mlp(model):
    """The MLP as nn.Sequential, with research's initial weights (Linear.weight is W.T)."""
    import torch
    from torch import nn

    layers: list = []
    fan_in = model.n_features
    for _ in range(model.layers):
        layers += [nn.Linear(fan_in, model.hidden, bias=False),
                   nn.BatchNorm1d(model.hidden, eps=BN_EPS, momentum=BN_MOMENTUM), nn.ReLU()]
        fan_in = model.hidden
    layers.append(nn.Linear(fan_in, model.n_classes))
    net = nn.Sequential(*layers)
    linears = [m for m in net if isinstance(m, nn.Linear)]
    norms = [m for m in net if isinstance(m, nn.BatchNorm1d)]
    p = initial_params(model)
    with torch.no_grad():
        for i, (lin, bn) in enumerate(zip(linears, norms)):
            lin.weight.copy_(torch.from_numpy(p[3 * i].T.copy()))
            bn.weight.copy_(torch.from_numpy(p[3 * i + 1]))
            bn.bias.copy_(torch.from_numpy(p[3 * i + 2]))
        linears[-1].weight.copy_(torch.from_numpy(p[-2].T.copy()))
        linears[-1].bias.copy_(torch.from_numpy(p[-1]))
    return net


def torch_cnn(model):
    """research's cnn as nn.Sequential, with its initial weights (Conv2d.weight is W, OIHW)."""
    import torch
    from torch import nn

    layers: list = []
    c, h, _ = model.input_shape
    p = initial_params(model)
    for i, (c_out, h_out, _) in enumerate(model.block_shapes):
        conv = nn.Conv2d(c, c_out, model.kernel_size, padding=(model.kernel_size - 1) // 2, bias=False)
        bn = nn.BatchNorm2d(c_out, eps=BN_EPS, momentum=BN_MOMENTUM)
        with torch.no_grad():
            conv.weight.copy_(torch.from_numpy(p[3 * i]))
            bn.weight.copy_(torch.from_numpy(p[3 * i + 1]))
            bn.bias.copy_(torch.from_numpy(p[3 * i + 2]))
        layers += [conv, bn, nn.ReLU()] + ([nn.MaxPool2d(2)] if h_out < h else [])
        c, h = c_out, h_out
    head = nn.Linear(p[-2].shape[0], model.n_classes)
    with torch.no_grad():
        head.weight.copy_(torch.from_numpy(p[-2].T.copy()))
        head.bias.copy_(torch.from_numpy(p[-1]))
    return nn.Sequential(*layers, nn.Flatten(), head)


class TorchRun:
    def __init__(self, trainer: Trainer, seed: int):
        import torch
        from torch import nn

        self.torch = torch
        torch.set_num_threads(1)
        model = trainer.model
        cnn = trainer.config["model"] == "cnn"
        self.net = torch_cnn(model) if cnn else torch_mlp(model)
        self.loss_fn = nn.CrossEntropyLoss()
        self.opt = torch.optim.Adam(self.net.parameters(), lr=CONFIG["lr"],
                                    betas=(CONFIG["beta1"], CONFIG["beta2"]), eps=CONFIG["eps"])
        shape = model.input_shape if cnn else (model.n_features,)
        self.x = torch.from_numpy(trainer.x_train).reshape(-1, *shape)
        self.y = torch.from_numpy(trainer.y_train)
        self.x_val = torch.from_numpy(trainer.x_val).reshape(-1, *shape)
        self.y_val = torch.from_numpy(trainer.y_val)
        self.x_test = torch.from_numpy(trainer.x_test).reshape(-1, *shape)
        self.y_test = torch.from_numpy(trainer.y_test)
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
            out = self.net(self.x_test)
            self.loss_fn(out, self.y_test).item()
            (out.argmax(dim=1) == self.y_test).float().mean().item()
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
    if filename.endswith(os.path.join("research", "nn", "cnn.py")):
        return "cnn forward/backward (numpy ufuncs and matmuls inside, not seen by cProfile)"
    if filename.endswith(os.path.join("research", "nn", "model.py")):
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


def cnn_operations(trainer: Trainer, epochs: int) -> None:
    """Where the cnn's epoch goes, by operation: the numpy functions research.nn.cnn calls as
    ``np.<name>`` (and the Winograd plan's) are timed by a stand-in for its ``np`` that wraps each
    call (about 1 us per call added, counted in the calls), the im2col gathers (``ndarray.take``),
    the batchnorm, Winograd and pooling plans and the rest from a cProfile of the same epochs."""
    import research.kernels._winograd as winograd_module
    import research.nn.cnn as cnn_module

    spent: dict[str, float] = {}

    class TimedNumpy:
        def __getattr__(self, name):
            function = getattr(np, name)
            if not callable(function) or isinstance(function, type):
                return function

            def timed(*args, **kwargs):
                t0 = time.perf_counter()
                try:
                    return function(*args, **kwargs)
                finally:
                    spent[name] = spent.get(name, 0.0) + time.perf_counter() - t0
            return timed

    profiler = cProfile.Profile()
    cnn_module.np = winograd_module.np = TimedNumpy()
    started = time.perf_counter()
    try:
        profiler.enable()
        for _ in range(epochs):
            trainer.train_epoch()
        profiler.disable()
    finally:
        cnn_module.np = winograd_module.np = np
    total = time.perf_counter() - started
    buckets = {
        "matmuls (convolutions, head's input gradient)": spent.pop("matmul", 0.0),
        "copies (input transpose, W transposes)": spent.pop("copyto", 0.0),
        "other numpy calls of cnn.py": sum(spent.values()),
    }
    for (filename, _, function), (_, _, tottime, cumtime, _) in pstats.Stats(profiler).stats.items():
        if "method 'take'" in function:
            buckets["im2col gathers (ndarray.take)"] = buckets.get("im2col gathers (ndarray.take)", 0.0) + tottime
        elif filename.endswith("_plans.py") and function in ("forward", "backward", "inference"):
            buckets["batchnorm (C kernels, plans)"] = buckets.get("batchnorm (C kernels, plans)", 0.0) + tottime
        elif filename.endswith("_winograd.py") and function in ("forward", "backward"):
            buckets["Winograd transforms (C kernels, plans)"] = (
                buckets.get("Winograd transforms (C kernels, plans)", 0.0) + tottime)
        elif filename.endswith("_pooling.py") and function in ("forward", "backward"):
            buckets["max pooling (C kernels, plans)"] = buckets.get("max pooling (C kernels, plans)", 0.0) + tottime
        elif filename.endswith("model.py") and function.startswith(("_output", "_softmax")):
            buckets["head and softmax (model.py)"] = buckets.get("head and softmax (model.py)", 0.0) + cumtime
    buckets["the rest (Python, optimizer, batching, checks)"] = total - sum(buckets.values())
    rows = [(name, seconds / epochs * 1e3, 100 * seconds / total) for name, seconds in buckets.items()]
    print_table(["operation", "ms/epoch", "%"], rows, floatfmt=".2f",
                title=f"Where the cnn's epoch goes, by operation ({epochs} epochs, timed call by call):")


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
            model.evaluate(trainer.x_test, trainer.y_test)
            t5 = clock()
            per_epoch.append([fb, step, t5 - t4, (t4 - start) - fb - step, t5 - start])
    return [median([e[i] for e in per_epoch]) * 1e3 for i in range(5)]


def median_ms(epoch, repeats: int) -> float:
    """Median ms of `repeats` calls of epoch() after 3 untimed ones."""
    times = []
    for _ in range(repeats + 3):
        t0 = time.perf_counter()
        epoch()
        times.append(time.perf_counter() - t0)
    return median(times[3:]) * 1e3


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

    return median_ms(epoch, repeats)


def cnn_blas_floor(trainer: Trainer, repeats: int) -> float:
    """ms for the matmuls of one CNN epoch alone, on preallocated arrays of research's shapes: per
    step and block the convolution's forward, dW and (but the first block) dx matmuls (an im2col
    block's one each; a Winograd block's 16 each, as one stacked matmul, and its kernels'
    transforms), the head's three; the forward ones for the validation pass."""
    model = trainer.model
    dtype, k2 = model.dtype, model.kernel_size ** 2
    rng = np.random.default_rng(0)
    sizes = [len(b) for b in batches(rng, len(trainer.x_train), trainer.batch_size)]
    inputs = [model.input_shape] + model.block_shapes[:-1]
    d = math.prod(model.block_shapes[-1])

    def arrays(*shape):
        return rng.standard_normal(shape).astype(dtype)

    def step_products(n, train):
        """(a, b, out) for each matmul of one step on n samples."""
        products = []
        for i, ((c_in, h, w), (c_out, _, _)) in enumerate(zip(inputs, model.block_shapes)):
            m = h * w * n
            if model._blocks[i].winograd:
                tiles = m // 4
                products.append((arrays(16, 9), arrays(9, c_out * c_in), arrays(16, c_out * c_in)))
                products.append((arrays(16, c_out, c_in), arrays(16, c_in, tiles), arrays(16, c_out, tiles)))
                if train:
                    products.append((arrays(16, c_out, tiles), arrays(16, c_in, tiles).transpose(0, 2, 1),
                                     arrays(16, c_out, c_in)))
                    products.append((arrays(9, 16), arrays(16, c_out * c_in), arrays(9, c_out * c_in)))
                    if i:
                        products.append((arrays(16, c_out, c_in).transpose(0, 2, 1), arrays(16, c_out, tiles),
                                         arrays(16, c_in, tiles)))
                continue
            products.append((arrays(c_out, c_in * k2), arrays(c_in * k2, m), arrays(c_out, m)))
            if train:
                products.append((arrays(c_out, m), arrays(m, c_in * k2).T.copy().T, arrays(c_out, c_in * k2)))
                if i:
                    products.append((arrays(c_in, c_out * k2), arrays(c_out * k2, m), arrays(c_in, m)))
        k = model.n_classes
        products.append((arrays(k, d), arrays(d, n), arrays(k, n)))
        if train:
            products += [(arrays(d, n), arrays(n, k), arrays(d, k)), (arrays(d, k), arrays(k, n), arrays(d, n))]
        return products

    work = {n: step_products(n, True) for n in set(sizes)}
    val = step_products(len(trainer.x_val), False)

    def epoch():
        for n in sizes:
            for a, b, out in work[n]:
                np.matmul(a, b, out=out)
        for a, b, out in val:
            np.matmul(a, b, out=out)

    return median_ms(epoch, repeats)


class BaselineRun:
    """research's epoch as another checkout trains it: ``benchmarks/baseline_epochs.py`` run
    by that checkout's interpreter, one epoch per request. Its times are measured there,
    around ``train_epoch`` only."""

    def __init__(self, python: str, config: dict):
        script = Path(__file__).with_name("baseline_epochs.py")
        self.process = subprocess.Popen([python, str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True, cwd=tempfile.gettempdir())
        self.send(json.dumps(config))
        self.wall: list[float] = []
        self.cpu: list[float] = []
        self.val_acc = math.nan

    def send(self, line: str) -> None:
        assert self.process.stdin is not None
        try:
            self.process.stdin.write(line + "\n")
            self.process.stdin.flush()
        except BrokenPipeError:  # it ended (not a research checkout's python, or it failed)
            raise SystemExit(f"error: the baseline interpreter ended (exit code {self.process.wait()}); run "
                             "benchmarks/baseline_epochs.py with it to see why") from None

    def epoch(self) -> None:
        self.send("epoch")
        assert self.process.stdout is not None
        answer = self.process.stdout.readline().split()
        if len(answer) != 3:
            raise SystemExit(f"error: the baseline interpreter stopped answering (got {answer!r}); run "
                             "benchmarks/baseline_epochs.py with it to see why")
        wall, cpu, self.val_acc = (float(x) for x in answer)
        self.wall.append(wall)
        self.cpu.append(cpu)

    def close(self) -> None:
        assert self.process.stdin is not None
        with contextlib.suppress(BrokenPipeError):  # it ended already: why is said by whoever found it
            self.process.stdin.close()
        self.process.wait(timeout=30)


def compare_with_baseline(config: dict, plugins, python: str, warmup: int, repeats: int) -> None:
    """This checkout's epochs against another checkout's, interleaved in one run."""
    trainer = Trainer(config, plugins)
    baseline = BaselineRun(python, config)
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

def accuracy(config: dict, plugins, epochs: int) -> None:
    """research's final and best validation accuracy after `epochs` epochs, seeds 0, 1, 2."""
    rows = []
    for seed in range(3):
        trainer = Trainer({**config, "epochs": epochs, "seed": seed}, plugins)
        started = time.perf_counter()
        for _ in range(epochs):
            trainer.train_epoch()
        seconds = time.perf_counter() - started
        final = trainer.history[-1]["val_acc"]
        best = max(m["val_acc"] for m in trainer.history)
        rows.append([seed, final, round(final * len(trainer.y_val)), best, seconds])
    print_table(["seed", f"val acc @{epochs}", "correct of 359", "best val acc", "seconds"], rows,
                title=f"research {config['model']}, {epochs} epochs from scratch per seed:", floatfmt=".4f")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=("mlp", "cnn"), default="mlp", help="the model to train (default mlp)")
    parser.add_argument("--model-opt", action="append", default=[], metavar="KEY=VALUE",
                        help="an option of the model (repeatable), e.g. channels=32")
    parser.add_argument("--accuracy", action="store_true",
                        help="train seeds 0, 1, 2 for --epochs epochs and print their validation accuracy")
    parser.add_argument("--epochs", type=at_least(1), default=30, help="epochs per seed with --accuracy (default 30)")
    parser.add_argument("--quick", action="store_true", help="fewer repeats and profiled epochs")
    parser.add_argument("--repeats", type=at_least(1), help="timed epochs per variant (default 40, quick 10)")
    parser.add_argument("--warmup", type=at_least(0), default=3, help="untimed epochs per variant first (default 3)")
    parser.add_argument("--profile-epochs", type=at_least(1), help="epochs under cProfile (default 40, quick 15)")
    parser.add_argument("--no-torch", action="store_true", help="skip PyTorch even if installed")
    parser.add_argument("--baseline", metavar="PYTHON",
                        help="also time the epochs of the research that this interpreter imports (another "
                             "checkout's venv), interleaved with this checkout's")
    args = parser.parse_args()
    repeats = args.repeats or (10 if args.quick else 40)
    profile_epochs = args.profile_epochs or (15 if args.quick else 40)
    config = dict(CNN_CONFIG if args.model == "cnn" else CONFIG)
    for pair in args.model_opt:
        key, equals, value = pair.partition("=")
        if not equals or not key.strip():
            parser.error(f"--model-opt {pair!r}: write KEY=VALUE, e.g. channels=32")
        config[key.strip()] = value.strip()
    if args.baseline is not None:  # checked now, not after this checkout's epochs; its own folder is a temporary one
        args.baseline = os.path.abspath(args.baseline)  # not resolved: a venv's python is a link to the base one
        if not (os.path.isfile(args.baseline) and os.access(args.baseline, os.X_OK)):
            parser.error(f"--baseline {args.baseline}: no such executable; give another checkout's venv python")
    plugins = load_plugins()

    with threadpool_limits(1):
        trainer = Trainer(config, plugins)
        if args.model == "cnn":
            model = trainer.model
            shapes = " -> ".join("x".join(map(str, shape)) for shape in [model.input_shape, *model.block_shapes])
            what = (f"the cnn {shapes} -> {model.n_classes} ({model.kernel_size}x{model.kernel_size} kernels; "
                    f"{', '.join(f'{k}={v}' for k, v in model.options.items())})")
        else:
            what = "an MLP 64-128-128-10"
        print(f"benchmarks/train.py: epochs/s of {what} (batchnorm, adam, batch 64, float32) on digits")
        print(environment())
        if args.accuracy:
            print()
            accuracy(config, plugins, args.epochs)
            return
        use_torch = not args.no_torch and torch_available()
        if use_torch:
            import torch

            print(f"torch {torch.__version__}, torch.set_num_threads(1)")
        else:
            print("torch: not importable (or --no-torch), skipped")
        print("BLAS pinned to 1 thread (threadpoolctl); epochs interleaved round-robin\n")

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
        # The kernels' targets: the MLP epoch at least 2.2x numpy, the CNN epoch at least 2x torch.
        targets = (("torch", 2.0), ("numpy", 1.5)) if args.model == "cnn" else (("torch", 1.5), ("numpy", 2.2))
        for other, target in targets:
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
            compare_with_baseline(config, plugins, args.baseline, args.warmup, repeats)

        warm = Trainer(config, plugins)
        for _ in range(args.warmup):
            warm.train_epoch()
        profile(warm, profile_epochs)
        if args.model == "cnn":
            cnn_operations(warm, max(profile_epochs // 2, 5))
        fb, step, val, batching, total = phases(warm, max(profile_epochs, 10))
        floor = (cnn_blas_floor if args.model == "cnn" else blas_floor)(warm, max(profile_epochs, 10))
        rows = [
            ["forward + backward (loss_and_grads)", fb, 100 * fb / total],
            [f"optimizer step ({config['optimizer']})", step, 100 * step / total],
            [f"validation and test passes (evaluate, {len(warm.x_val)} + {len(warm.x_test)} rows)", val,
             100 * val / total],
            ["batching (shuffle, x[idx], loop)", batching, 100 * batching / total],
            ["whole epoch", total, 100.0],
            ["matmuls alone, same shapes (BLAS floor)", floor, 100 * floor / total],
        ]
        print_table(["phase (no profiler)", "ms/epoch", "% of epoch"], rows,
                    title="research's epoch by phase, unprofiled (median):", floatfmt=".2f")


if __name__ == "__main__":
    run(main)

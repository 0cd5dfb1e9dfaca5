"""A multilayer perceptron classifier: numpy matmuls for the linear layers, C kernels for batchnorm
and the loss.

Architecture, with L = `layers` hidden layers, layer i of H_i units, D = `n_features` inputs and
K = `n_classes` outputs::

    h0 = x                                            (N, D)     H_0 = D
    hidden layer i = 1..L:
        z_i = h_{i-1} @ W_i                           (N, H_i)   W_i: (H_{i-1}, H_i), no bias
        a_i = gamma_i * (z_i - mean) * invstd + beta_i           batchnorm (beta replaces the bias)
            (or a_i = z_i + b_i when batchnorm is off)
        h_i = max(a_i, 0)                             (N, H_i)   ReLU (fused with the batchnorm)
    s = h_L @ W_{L+1} + b_{L+1}                       (N, K)     logits
    loss = mean_n [log sum_k exp(s_nk) - s_{n, y_n}]             softmax cross-entropy

Widths: H_i = `hidden` for every layer, except that layers 2, 3 and 4 take `hidden2`, `hidden3`,
`hidden4` when those are given (`MLP.widths` lists H_1..H_L). A width of a layer beyond L is not
used. `layers = 0` is softmax regression. Batchnorm conventions are those of `research.kernels` (and
PyTorch): the biased batch variance normalizes, the unbiased one feeds the running variance, and
`momentum` weights the new value: `running = (1 - momentum) * running + momentum * batch_stat`.

Parameters live in `MLP.params` (names in `MLP.param_names`), in a fixed order::

    W1, gamma1, beta1, ..., WL, gammaL, betaL, W{L+1}, b{L+1}     (batchnorm on)
    W1, b1, ..., WL, bL, W{L+1}, b{L+1}                            (batchnorm off)

Optimizers update these arrays in place; the model never rebinds them. The running statistics
(`running_mean{i}`, `running_var{i}`) are buffers, not parameters.

Speed: every activation and gradient array is preallocated per batch size and reused, matmuls and
kernels write into them through `out=`; the scratch arrays that serve one layer at a time (ReLU
zeros and mask, the batchnorm input gradient) are allocated once for the widest layer, each layer
using an (N, H_i) view of their first N * H_i values. With batchnorm, each batch size's work
arrays come with one fused `kernels.BatchNormPlan(..., relu=True)` per hidden layer, bound to them
and to the layer's parameters, gradients and buffers (all arrays the model never rebinds):
batchnorm + ReLU is one unchecked C call forward (z_i -> h_i) and one backward (dh_i, masked by
h_i > 0 on the fly, -> dz_i), with the same results bit for bit as batchnorm, then ReLU and its mask
as separate passes. The loss, each sample's hit and the logits' gradient are one C call too
(`kernels.softmax_cross_entropy`). The price is that the gradient arrays returned by
`loss_and_grads` are overwritten by the next call: copy them to keep them.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ClassVar

import numpy as np

from research import kernels
from research.options import Configurable, Option, OptionError, Spec, declared

__all__ = ["MLP"]

_MAX_WORKSPACES = 8  # batch sizes whose activation buffers are kept (train, last batch, eval...)

# Size limits of the built-in models (docs/models.md), checked before any array is allocated.
MAX_PARAMS = 2**31
"""At most this many parameters (2**31: 8 GiB of float32 values, 16 GiB with their gradients)."""
MAX_DEPTH = 1000
"""At most this many hidden layers (the mlp's ``layers``) or blocks (the cnn's ``blocks``): each is
Python objects and a kernel plan per batch size, whatever its width."""
STATE_COPIES = 4
"""Arrays of each parameter's size a training run holds: the parameters, their gradients and an
optimizer's two state arrays (Adam's m and v). STATE_COPIES * n_params * itemsize must fit in
``memory_limit()``, and the work arrays of a mini-batch in what is left."""


@functools.cache
def memory_limit() -> int | None:
    """Bytes this process may use: the machine's physical memory (``os.sysconf``), or the
    cgroup v2 limit of its container when lower; None when neither is known (then only
    MAX_PARAMS applies). Read once per process: the evaluation passes of every epoch ask,
    and reading the cgroup file each time took 5% of a digits MLP epoch."""
    limits = []
    try:
        limits.append(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):  # not a POSIX system, or the names are unknown
        pass
    try:
        text = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if text.isdigit():
            limits.append(int(text))
    except OSError:
        pass
    limits = [limit for limit in limits if limit > 0]
    return min(limits) if limits else None


def _gib(n_bytes: int) -> str:
    return f"{n_bytes / 2**30:,.1f} GiB"


# --------------------------------------------------------------------------------------------------
# Layers: forward and backward side by side. All work in place in caller-owned arrays.
# --------------------------------------------------------------------------------------------------

def _linear_forward(x, W, b, out):
    """Affine map `out = x @ W + b`.

    :param x: (N, D) input.
    :param W: (D, H) weights.
    :param b: (H,) bias, or None for no bias.
    :param out: (N, H) output, written.
    """
    np.matmul(x, W, out=out)
    if b is not None:
        out += b
    return out


def _linear_backward(dout, x, W, dW, db, dx):
    """Gradients of `out = x @ W + b`.

    `dW = x.T @ dout`, `db = sum_n dout`, `dx = dout @ W.T`.

    :param dout: (N, H) upstream gradient.
    :param x: (N, D) the forward input.
    :param W: (D, H) weights.
    :param dW: (D, H) written.
    :param db: (H,) written, or None when the layer has no bias.
    :param dx: (N, D) written, or None when the input needs no gradient (first layer).
    """
    np.matmul(x.T, dout, out=dW)
    if db is not None:
        np.add.reduce(dout, axis=0, out=db)
    if dx is not None:
        np.matmul(dout, W.T, out=dx)


def _output_forward(h, W, b, s):
    """Output layer `s = h @ W + b`: the logits, one row per sample.

    :param h: (N, H) input.
    :param W: (H, K) weights.
    :param b: (K,) bias.
    :param s: (N, K) logits, written.
    """
    np.matmul(h, W, out=s)
    s += b
    return s


def _output_backward(ds, h, W, dW, db, dh):
    """Gradients of the output layer from ds (N, K), `d loss / d s`.

    `dW = h.T @ ds`, `db = sum_n ds`, `dh = ds @ W.T`.

    :param ds: (N, K) upstream gradient.
    :param h: (N, H) the forward input.
    :param W: (H, K) weights.
    :param dW: (H, K) written.
    :param db: (K,) written.
    :param dh: (N, H) written, or None when the input needs no gradient (softmax regression).
    """
    np.matmul(h.T, ds, out=dW)
    np.add.reduce(ds, axis=0, out=db)
    if dh is not None:
        np.matmul(ds, W.T, out=dh)


def _relu_forward(a, zeros):
    """`h = max(a, 0)`, in place: a (N, H) becomes h.

    zeros is an (N, H) array of zeros: numpy's SIMD loop for two same-shape arrays is several
    times faster than the broadcast of a scalar 0.
    """
    return np.maximum(a, zeros, out=a)


def _relu_backward(dh, h, zeros, mask):
    """`da = dh * [h > 0]`, in place: dh (N, H) becomes da. h is the forward output.

    zeros is an (N, H) array of zeros (see `_relu_forward`), mask an (N, H) bool array, written.
    """
    np.greater(h, zeros, out=mask)
    return np.multiply(dh, mask, out=dh)


def _softmax_cross_entropy(out, y):
    """Softmax cross-entropy of the logits in ``out.s`` against labels y, summed over the batch,
    with the gradient of the *mean* loss, ``(softmax(s) - onehot(y)) / N``, into ``out.ds``.

    One C kernel (``research.kernels.softmax_cross_entropy``): per sample, the loss, whether
    its first argmax is the label, and the gradient, in one pass.

    :param out: the ``_LossArrays`` of the batch (s filled by the output layer).
    :param y: (N,) int64 labels in [0, K).
    :returns: (summed loss, number of correct predictions).
    """
    kernels.softmax_cross_entropy(out.s, y, 1.0 / out.s.shape[0], loss_out=out.loss, hit_out=out.hit,
                                  grad_out=out.ds)
    return float(np.add.reduce(out.loss, dtype=np.float64)), int(np.count_nonzero(out.hit))


class _LossArrays:
    """The output side of a batch of n rows: logits s and their gradient ds (N, K), and each
    sample's loss and hit (N,), written by `_softmax_cross_entropy`."""

    def __init__(self, n, n_classes, dtype):
        self.s = np.empty((n, n_classes), dtype)
        self.ds = np.empty((n, n_classes), dtype)
        self.loss = np.empty(n, dtype)
        self.hit = np.empty(n, dtype)


# --------------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------------

_N_FEATURES = Spec("n_features", int, option=Option(min=1))
_N_CLASSES = Spec("n_classes", int, option=Option(min=2))
_BATCH_SIZE = Spec("batch_size", int, option=Option(min=1))


@dataclass(eq=False)
class _HiddenLayer:
    """One hidden layer's arrays: parameters and their gradients (the very arrays listed in
    MLP.params and MLP.grads), batchnorm buffers, and the batch statistics saved for backward.

    With batchnorm: b and db are None. Without: gamma, beta, their gradients, the running
    statistics (buffers) and the saved batch statistics (mean, invstd) are None.
    """

    W: np.ndarray                          # (H_{i-1}, H_i), H_0 = D
    dW: np.ndarray
    b: np.ndarray | None = None            # (H_i,)
    db: np.ndarray | None = None
    gamma: np.ndarray | None = None        # (H_i,)
    dgamma: np.ndarray | None = None
    beta: np.ndarray | None = None         # (H_i,)
    dbeta: np.ndarray | None = None
    running_mean: np.ndarray | None = None  # (H_i,) buffer
    running_var: np.ndarray | None = None   # (H_i,) buffer
    mean: np.ndarray | None = None          # (H_i,) batch mean of the last training forward
    invstd: np.ndarray | None = None        # (H_i,) its 1 / sqrt(var + eps)


class _Workspace:
    """Activation and gradient arrays for one batch size N (all (N, ...) arrays of the model),
    and the batchnorm plans bound to them.

    Per hidden layer i, (N, H_i) arrays: `h[i]`, `z[i]`, `dh[i]`. Scratch that one layer uses at
    a time is allocated once, N * max_i H_i values (`zeros_values`, `mask_values`, `dz_values`),
    and layer i reads the (N, H_i) view of its first N * H_i values (`zeros[i]`, `mask[i]`,
    `dz[i]`): C-contiguous, so the plans and matmuls take them as they take whole arrays. The ReLU
    scratch (`zeros`, `mask`) serves the layers without batchnorm (None per layer with it: the
    fused batchnorm + ReLU plans mask on the fly).
    """

    def __init__(self, n, widths, n_classes, batchnorm, dtype):
        L, values = len(widths), n * max(widths, default=0)
        self.h = [np.empty((n, w), dtype) for w in widths]                  # ReLU outputs
        self.z = ([np.empty((n, w), dtype) for w in widths]                 # pre-batchnorm
                  if batchnorm else [None] * L)
        self.dh = [np.empty((n, w), dtype) for w in widths]                 # d loss / d h_i
        self.zeros_values = np.zeros(values, dtype) if L and not batchnorm else None  # for the ReLU
        self.mask_values = np.empty(values, bool) if L and not batchnorm else None    # h > 0, ReLU backward
        self.dz_values = np.empty(values, dtype) if batchnorm and L else None  # d loss / d z_i

        def views(buffer):
            return [buffer[:n * w].reshape(n, w) if buffer is not None else None for w in widths]

        self.zeros, self.mask, self.dz = views(self.zeros_values), views(self.mask_values), views(self.dz_values)
        self.out = _LossArrays(n, n_classes, dtype)       # logits, their gradient, per-sample loss
        self.bn: list[kernels.BatchNormPlan] = []         # per hidden layer, set by MLP._workspace


BnMomentum = Annotated[float, Option("Weight of the batch statistic in the running averages", min=0.0, max=1.0)]
BnEps = Annotated[float, Option("Batchnorm epsilon", above=0.0)]
"""The batchnorm options of the built-in models, the same for every model that has them."""


class Classifier(Configurable):
    """What the built-in models share: checks of the data, eval mode in batches, logits and
    predictions, the state round trip. A subclass sets ``n_features``, ``n_classes``,
    ``dtype``, ``params``/``param_names`` and ``buffers``/``buffer_names``, and defines
    ``_workspace(n)`` (work arrays with ``out``, a ``_LossArrays``) and ``_forward(x, ws,
    train)`` returning the logits (N, K), ``ws.out.s``."""

    kind = "model"
    HOST_ARGUMENTS: ClassVar[tuple[str, ...]] = ("dtype", "rng")
    EVAL_BATCH: ClassVar[int] = 1024  # rows per eval-mode forward pass (memory only: results do not depend on it)

    @property
    def options(self) -> dict[str, Any]:
        """The model's options (the declared keyword arguments but dtype and rng); an option
        left unset (None, as the mlp's ``hidden2``) is left out, so that models without it have
        the options, configurations and records they had before it existed."""
        specs = declared(type(self)) or {}
        return {name: value for name in specs if name not in self.HOST_ARGUMENTS
                if (value := getattr(self, name)) is not None}

    @property
    def n_params(self) -> int:
        """Number of scalar parameters."""
        return sum(p.size for p in self.params)

    def __getstate__(self):
        # Work arrays are scratch, and their plans point into them: a copy makes its own.
        state = self.__dict__.copy()
        state["_workspaces"] = {}
        return state

    def _check_x(self, x):
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"x must have shape (N, {self.n_features}), got {x.shape}")
        if x.shape[0] == 0:
            raise ValueError("x is empty (N = 0)")
        if x.dtype.kind not in "fiu":
            raise ValueError(f"x must hold real numbers, got dtype {x.dtype}")
        return np.ascontiguousarray(x, dtype=self.dtype)  # no copy when already right

    def _check_y(self, y, n):
        y = np.asarray(y)
        if y.shape != (n,):
            raise ValueError(f"y must have shape ({n},) to match x, got {y.shape}")
        if y.dtype.kind not in "iu":
            raise ValueError(f"y must hold integer class labels, got dtype {y.dtype}")
        # One pass: seen as unsigned, a negative label is huge, so max < K checks both ends.
        unsigned = y.view(y.dtype.str.replace("i", "u"))     # same size and byte order
        if int(np.maximum.reduce(unsigned)) >= self.n_classes:
            lo, hi = int(np.minimum.reduce(y)), int(np.maximum.reduce(y))
            raise ValueError(f"labels must be in [0, {self.n_classes}), got values in [{lo}, {hi}]")
        return y.astype(np.intp, copy=False)  # uint64 * int would give float64 indices

    def _check_batch_size(self, batch_size):
        """Rows per eval-mode pass: ``batch_size``, or ``EVAL_BATCH`` when None; fewer when the
        work arrays of that many rows would take more than half the memory left beside the
        parameters, where the dataset and the training batch's arrays live too (results do not
        depend on it)."""
        rows = _BATCH_SIZE.convert(self.owner, self.EVAL_BATCH if batch_size is None else batch_size)
        budget = self._work_budget()
        return rows if budget is None else max(1, min(rows, budget // 2 // self._row_bytes))

    # Sizes. A subclass calls _check_size in __init__, before it allocates anything, and sets
    # _row_bytes (bytes of work arrays per row of a batch); _workspace calls _check_rows.
    _row_bytes: int = 0
    _param_bytes: int = 0
    SIZE_FLAGS: ClassVar[str] = ""  # the options that set the size, for messages: "--hidden or --layers"

    def _size_flags(self) -> str:
        """The options to lower, for the size messages: ``SIZE_FLAGS`` unless a model says more."""
        return self.SIZE_FLAGS

    def _check_size(self, n_params: int, row_values: int, shape: str) -> None:
        """Refuse a model that cannot fit, before allocating: more than MAX_PARAMS parameters,
        or STATE_COPIES arrays of them beyond ``memory_limit()``. ``row_values`` is the number
        of work values per row of a batch; ``shape`` says what made the size, for the message."""
        itemsize = self.dtype.itemsize
        if n_params > MAX_PARAMS:
            count = f"{n_params:,}" if n_params < 10**21 else f"more than 10**{len(str(n_params)) - 1}"
            raise OptionError(f"{self.owner}: {shape} makes {count} parameters, more than the limit of "
                              f"{MAX_PARAMS:,}; lower {self._size_flags()}")
        need, memory = STATE_COPIES * n_params * itemsize, memory_limit()
        if memory is not None and need > memory:
            raise OptionError(f"{self.owner}: {shape} makes {n_params:,} parameters, which with their gradients "
                              f"and optimizer state need {_gib(need)}, more than this machine's {_gib(memory)}; "
                              f"lower {self._size_flags()}")
        self._param_bytes = need
        self._row_bytes = max(1, row_values * itemsize)

    def _work_budget(self) -> int | None:
        """Bytes left for work arrays once the parameters and their state are counted."""
        memory = memory_limit()
        return None if memory is None else max(0, memory - self._param_bytes)

    def _check_rows(self, n: int) -> None:
        """Refuse a batch of n rows whose work arrays would not fit, before allocating them."""
        budget = self._work_budget()
        if budget is not None and n * self._row_bytes > budget:
            raise OptionError(f"{self.owner}: a batch of {n:,} rows needs {_gib(n * self._row_bytes)} of work "
                              f"arrays, more than the {_gib(budget)} this machine has left beside the parameters; "
                              f"lower --batch-size (at most {budget // self._row_bytes:,} rows fit) "
                              f"or {self._size_flags()}")

    def _make_room(self, n: int) -> None:
        """Before a workspace of n rows is made: refuse n rows that cannot fit (``_check_rows``),
        then drop the kept workspaces of other batch sizes, oldest first, while ``_MAX_WORKSPACES``
        are kept or all of them together would take more than half the memory left beside the
        parameters. Each fitted alone, but training's, the last batch's and evaluation's together
        ran a wide CNN out of memory (killed by the system) where the size check let it through."""
        self._check_rows(n)
        budget = self._work_budget()

        def crowded() -> bool:
            if len(self._workspaces) >= _MAX_WORKSPACES:
                return True
            return budget is not None and (n + sum(self._workspaces)) * self._row_bytes > budget // 2

        while self._workspaces and crowded():
            del self._workspaces[next(iter(self._workspaces))]  # the oldest batch size

    def check_data(self, x, y):
        """x and y checked and converted as `loss_and_grads` and `evaluate` need them.

        Rows taken from the results (`x[index]`, `y[index]` with an integer index array) need no
        further check, so a training loop checks its dataset once here and then passes
        `checked=True` to `loss_and_grads`, which skips the per-batch checks (the label range
        check reads every label).

        :param x: (N, n_features) real numbers, N >= 1.
        :param y: (N,) integer labels in [0, n_classes).
        :returns: (x, y): x C-contiguous of the model dtype, y of numpy.intp; the arguments
            themselves when they already are.
        :raises ValueError: naming the problem, as `loss_and_grads` would.
        """
        x = self._check_x(x)
        return x, self._check_y(y, x.shape[0])

    def evaluate(self, x, y, batch_size=None):
        """Mean cross-entropy and accuracy in eval mode (running averages; nothing is updated).

        :param x: (N, n_features) inputs.
        :param y: (N,) integer labels in [0, n_classes).
        :param batch_size: rows per forward pass (default ``EVAL_BATCH``; memory bound only: the
            result does not depend on it).
        :returns: (loss, accuracy) as floats.
        """
        x = self._check_x(x)
        n = x.shape[0]
        y = self._check_y(y, n)
        batch_size = self._check_batch_size(batch_size)
        loss, n_correct = 0.0, 0
        for start in range(0, n, batch_size):
            xb, yb = x[start:start + batch_size], y[start:start + batch_size]
            ws = self._workspace(xb.shape[0])
            self._forward(xb, ws, train=False)
            lb, cb = _softmax_cross_entropy(ws.out, yb)
            loss += lb
            n_correct += cb
        return loss / n, n_correct / n

    def logits(self, x, batch_size=None):
        """Eval-mode logits s (N, n_classes), a new array."""
        x = self._check_x(x)
        batch_size = self._check_batch_size(batch_size)
        out = np.empty((x.shape[0], self.n_classes), self.dtype)
        for start in range(0, x.shape[0], batch_size):
            xb = x[start:start + batch_size]
            out[start:start + xb.shape[0]] = self._forward(xb, self._workspace(xb.shape[0]), train=False)
        return out

    def predict(self, x, batch_size=None):
        """Eval-mode predicted classes (N,) int64: the argmax of the logits."""
        return np.argmax(self.logits(x, batch_size), axis=1)

    def state(self) -> dict[str, np.ndarray]:
        """Copies of every parameter and buffer by name, e.g. for `numpy.savez(path, **state)`."""
        return {name: a.copy() for name, a in
                zip(self.param_names + self.buffer_names, self.params + self.buffers)}

    def load_state(self, state) -> None:
        """Copy a `state()` into the existing arrays, in place (params are never rebound).

        Everything is validated before anything is copied: the names must be exactly this
        model's and each shape must match (values are cast to the model dtype).

        :param state: mapping name -> array (a dict, or the `numpy.load` of an .npz).
        :raises ValueError: on missing or unexpected names, or a wrong shape.
        """
        targets = dict(zip(self.param_names + self.buffer_names, self.params + self.buffers))
        names = set(state.keys())
        missing = [n for n in targets if n not in names]
        unexpected = sorted(names - targets.keys())
        if missing or unexpected:
            raise ValueError(f"state does not match this model ({self!r}): "
                             f"missing {missing}, unexpected {unexpected}")
        sources = {}
        for name, dst in targets.items():
            src = np.asarray(state[name])
            if src.shape != dst.shape:
                raise ValueError(f"state[{name!r}] has shape {src.shape}, expected {dst.shape}")
            if not (np.issubdtype(src.dtype, np.floating) or np.issubdtype(src.dtype, np.integer)):
                raise ValueError(f"state[{name!r}] must be numeric, got dtype {src.dtype}")
            sources[name] = src
        for name, dst in targets.items():
            np.copyto(dst, sources[name], casting="same_kind")


class MLP(Classifier):
    """MLP classifier: hidden layers linear -> batchnorm -> ReLU, softmax cross-entropy output.

    :param input_shape: one sample's shape (an int for a flat vector); its D = prod(input_shape)
        values are the inputs, in row order (an image's pixels as one vector).
    :param n_classes: K, number of classes (>= 2).
    :param hidden: H, units of hidden layer 1 and of every layer without its own width (>= 1).
    :param layers: L, number of hidden layers (>= 0; 0 is softmax regression).
    :param hidden2: units of hidden layer 2 (>= 1), or None (default) for ``hidden``; likewise
        ``hidden3`` and ``hidden4`` for layers 3 and 4. Layers beyond 4 have ``hidden`` units.
        The width of a layer the model does not have (``hidden3`` with ``layers=2``) is not
        used, and is no error: a search over ``layers`` may keep ``hidden3`` fixed.
    :param batchnorm: batchnorm in the hidden layers; when off, hidden layers get a bias instead.
    :param dtype: float32 (default) or float64, for parameters, buffers and computation.
    :param rng: the only source of randomness (He initialization: W ~ N(0, 2 / fan_in)).
    :param bn_momentum: weight of the batch statistic in the running averages, in [0, 1].
    :param bn_eps: batchnorm epsilon (> 0).

    The model's options (``hidden``, ``layers``, ``hidden2``..``hidden4``, ``batchnorm``,
    ``bn_momentum``, ``bn_eps``) are declared in ``__init__``'s signature (research.options),
    with the ``research train`` flag of those that have one: strings are converted and every
    value is checked before anything is built, a bad one being one line (``model 'mlp': hidden
    must be an integer >= 1, got 0``).
    ``dtype`` and ``rng`` are what the host passes (``HOST_ARGUMENTS``), not options.

    Attributes: `params` and `param_names` (aligned, fixed order, updated in place by optimizers),
    `grads` (aligned with params, rewritten by every `loss_and_grads`), `buffers` and
    `buffer_names` (running statistics), `widths` (H_1..H_L, a tuple), `dtype`, `config`
    (constructor arguments except rng).

    A model reuses its work arrays across calls: use one model from one thread at a time.
    """

    name = "mlp"
    SIZE_FLAGS = "--hidden or --layers"

    def __init__(
        self, input_shape, n_classes, /, *,
        hidden: Annotated[int, Option("Units per hidden layer (but hidden2..4)", min=1, flag="--hidden")] = 128,
        layers: Annotated[int, Option("Hidden layers (0: softmax regression)", min=0, max=MAX_DEPTH,
                                      flag="--layers")] = 2,
        hidden2: Annotated[int | None, Option("Units of hidden layer 2 (default: --hidden)", min=1)] = None,
        hidden3: Annotated[int | None, Option("Units of hidden layer 3 (default: --hidden)", min=1)] = None,
        hidden4: Annotated[int | None, Option("Units of hidden layer 4 (default: --hidden)", min=1)] = None,
        batchnorm: Annotated[bool, Option("Batchnorm in the hidden layers", flag="--batchnorm")] = True,
        dtype: Any = np.float32,
        rng: np.random.Generator,
        bn_momentum: BnMomentum = 0.1,
        bn_eps: BnEps = 1e-5,
    ):
        # One sample's shape (an image's too): the MLP sees its values as one flat vector.
        shape = (input_shape,) if isinstance(input_shape, (int, np.integer, str)) else tuple(input_shape)
        n_features = _N_FEATURES.convert(self.owner, math.prod(_N_FEATURES.convert(self.owner, n) for n in shape))
        n_classes = _N_CLASSES.convert(self.owner, n_classes)
        try:
            dt = np.dtype(dtype) if dtype is not None else None  # np.dtype(None) is float64
        except TypeError:
            dt = None
        if dt is None or dt.name not in ("float32", "float64"):
            raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator (numpy.random.default_rng(seed)),"
                            f" got {type(rng).__name__}")

        self.n_features, self.n_classes = n_features, n_classes
        self.hidden, self.layers, self.batchnorm = hidden, layers, batchnorm
        self.hidden2, self.hidden3, self.hidden4 = own = hidden2, hidden3, hidden4
        self.widths: tuple[int, ...] = _widths(hidden, layers, own)
        self.dtype = dt
        self.bn_momentum, self.bn_eps = bn_momentum, bn_eps
        given = "".join(f", {name}={value}" for name, value in self._own_widths().items())
        self._check_size(*_mlp_size(n_features, n_classes, hidden, layers, batchnorm, own),
                         f"hidden={hidden}{given} with layers={layers} ({n_features} inputs, {n_classes} classes)")

        def he(fan_in, fan_out):
            # drawn in float64 so that float32 and float64 models of one seed agree
            w = rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in)
            return np.ascontiguousarray(w, dtype=dt)

        self.params: list[np.ndarray] = []
        self.param_names: list[str] = []
        self.grads: list[np.ndarray] = []   # aligned with params, written by loss_and_grads
        self.buffers: list[np.ndarray] = []
        self.buffer_names: list[str] = []

        def param(name, array):
            """Register a parameter; return it and its gradient array."""
            self.params.append(array)
            self.param_names.append(name)
            self.grads.append(np.zeros_like(array))
            return array, self.grads[-1]

        def buffer(name, array):
            self.buffers.append(array)
            self.buffer_names.append(name)
            return array

        self._layers: list[_HiddenLayer] = []
        fan_in = n_features
        for i, width in enumerate(self.widths, start=1):
            layer = _HiddenLayer(*param(f"W{i}", he(fan_in, width)))
            if self.batchnorm:
                layer.gamma, layer.dgamma = param(f"gamma{i}", np.ones(width, dt))
                layer.beta, layer.dbeta = param(f"beta{i}", np.zeros(width, dt))
                layer.running_mean = buffer(f"running_mean{i}", np.zeros(width, dt))
                layer.running_var = buffer(f"running_var{i}", np.ones(width, dt))
                layer.mean, layer.invstd = np.empty(width, dt), np.empty(width, dt)
            else:
                layer.b, layer.db = param(f"b{i}", np.zeros(width, dt))
            self._layers.append(layer)
            fan_in = width
        self._W_out, self._dW_out = param(f"W{layers + 1}", he(fan_in, n_classes))
        self._b_out, self._db_out = param(f"b{layers + 1}", np.zeros(n_classes, dt))
        self._workspaces: dict[int, _Workspace] = {}

    # ----------------------------------------------------------------------------------------------

    def _own_widths(self) -> dict[str, int]:
        """The per-layer widths given (``hidden2``..``hidden4`` not None), by name."""
        return {name: value for name, value in zip(_OWN_WIDTHS, (self.hidden2, self.hidden3, self.hidden4))
                if value is not None}

    def _size_flags(self) -> str:
        """``--hidden or --layers``, with the per-layer widths given between them."""
        return ", ".join(["--hidden", *self._own_widths()]) + " or --layers"

    @property
    def config(self) -> dict:
        """Constructor arguments except rng, enough to rebuild the model for `load_state`; the
        per-layer widths only when given, so a config without them (any written before they
        existed) rebuilds the same model."""
        return {"n_features": self.n_features, "n_classes": self.n_classes, "hidden": self.hidden,
                "layers": self.layers, **self._own_widths(), "batchnorm": self.batchnorm,
                "dtype": self.dtype.name, "bn_momentum": self.bn_momentum, "bn_eps": self.bn_eps}

    def __repr__(self):
        c = self.config
        own = "".join(f", {name}={value}" for name, value in self._own_widths().items())
        return (f"MLP({c['n_features']}, {c['n_classes']}, hidden={c['hidden']}, "
                f"layers={c['layers']}{own}, batchnorm={c['batchnorm']}, dtype={c['dtype']})")

    # ----------------------------------------------------------------------------------------------

    def _workspace(self, n):
        ws = self._workspaces.get(n)
        if ws is None:
            self._make_room(n)
            ws = _Workspace(n, self.widths, self.n_classes, self.batchnorm, self.dtype)
            if self.batchnorm:
                # Layer i, batchnorm + ReLU fused: z_i -> h_i = max(a_i, 0) forward; dh_i, masked
                # by h_i > 0 on the fly, -> dz_i, dgamma_i, dbeta_i backward.
                ws.bn = [kernels.BatchNormPlan(
                    z, layer.gamma, layer.beta, h, layer.mean, layer.invstd,
                    layer.running_mean, layer.running_var,
                    dy=dh, dx=dz, dgamma=layer.dgamma, dbeta=layer.dbeta,
                    eps=self.bn_eps, momentum=self.bn_momentum, relu=True)
                    for layer, z, h, dh, dz in zip(self._layers, ws.z, ws.h, ws.dh, ws.dz)]
            self._workspaces[n] = ws
        return ws

    # ----------------------------------------------------------------------------------------------

    def _forward(self, x, ws, train):
        """Logits into ws.out.s (N, K); activations kept in ws for the backward pass.

        train: batchnorm from batch statistics (saved in layer.mean, layer.invstd; running
        averages updated); otherwise from the running averages, and nothing but ws is written.
        """
        h = x                                                   # (N, D), then (N, H_i)
        if self.batchnorm:
            for layer, z, h_out, bn in zip(self._layers, ws.z, ws.h, ws.bn):
                _linear_forward(h, layer.W, None, out=z)        # z = h @ W
                if train:                                       # h = max(BN(z), 0) in one pass, batch
                    bn.forward()                                # statistics into layer.mean, .invstd
                else:
                    bn.inference()
                h = h_out
        else:
            for layer, a, zeros in zip(self._layers, ws.h, ws.zeros):
                _linear_forward(h, layer.W, layer.b, out=a)     # a = h @ W + b
                h = _relu_forward(a, zeros)
        return _output_forward(h, self._W_out, self._b_out, ws.out.s)

    def _backward(self, x, ws):
        """Gradients into self.grads from ws.out.ds (N, K) and the activations of _forward."""
        inputs = [x] + ws.h                  # the input of each linear layer: h_0 = x, h_1..h_L
        L = self.layers
        _output_backward(ws.out.ds, inputs[L], self._W_out, self._dW_out, self._db_out,
                         ws.dh[L - 1] if L else None)
        for i in range(L - 1, -1, -1):
            layer = self._layers[i]
            if self.batchnorm:
                ws.bn[i].backward()                             # dh_i (ws.dh[i]), masked by h_i > 0,
                dz = ws.dz[i]                                   # -> ws.dz[i], dgamma, dbeta
            else:                                               # in place: dh_i -> da_i = dz_i
                dz = _relu_backward(ws.dh[i], ws.h[i], ws.zeros[i], ws.mask[i])  # (a = z + b)
            _linear_backward(dz, inputs[i], layer.W, layer.dW, layer.db,
                             ws.dh[i - 1] if i else None)       # no gradient for x

    # ----------------------------------------------------------------------------------------------

    def loss_and_grads(self, x, y, *, checked=False):
        """Training step's forward and backward on one mini-batch.

        Batchnorm uses the batch statistics and updates the running averages in place.

        :param x: (N, n_features) inputs (cast to the model dtype if needed; N >= 2 with batchnorm).
        :param y: (N,) integer labels in [0, n_classes).
        :param checked: True when x and y come from `check_data` (or rows of its results):
            nothing is checked or converted then. Unchecked bad input cannot corrupt memory but
            gives a numpy error or wrong results (a negative label counts from the end).
        :returns: (mean cross-entropy, accuracy, grads) with grads aligned with `params`. The
            grads are the model's own arrays (`self.grads`), overwritten by the next call.
        """
        if not checked:
            x, y = self.check_data(x, y)
        n = x.shape[0]
        if self.batchnorm and self.layers and n < 2:
            raise ValueError(f"training with batchnorm needs at least 2 examples per batch, got {n}")
        ws = self._workspace(n)
        self._forward(x, ws, train=True)
        loss, n_correct = _softmax_cross_entropy(ws.out, y)
        self._backward(x, ws)
        return loss / n, n_correct / n, list(self.grads)

    # ----------------------------------------------------------------------------------------------


_OWN_WIDTHS = ("hidden2", "hidden3", "hidden4")
"""The options that give hidden layers 2, 3 and 4 their own width."""


def _widths(hidden: int, layers: int, own: Sequence[int | None] = ()) -> tuple[int, ...]:
    """H_1..H_L: ``own[i - 2]`` (hidden2, hidden3, hidden4) for layer i >= 2 when it is given
    (not None), ``hidden`` for every other layer; own widths beyond L are not used."""
    return tuple(own[i - 2] if 2 <= i < len(own) + 2 and own[i - 2] is not None else hidden
                 for i in range(1, layers + 1))


def _mlp_size(d: int, k: int, hidden: int, layers: int, batchnorm: bool,
              own: Sequence[int | None] = ()) -> tuple[int, int]:
    """(parameters, work values per batch row) of an MLP, counted exactly as __init__ and
    _Workspace allocate them (the bool mask counted as a value: an overestimate).

    With widths H_i = _widths(hidden, layers, own) and H_0 = d: parameters
    ``sum_i H_{i-1} H_i + (2 or 1) * sum_i H_i + H_L k + k``; per row, (3 or 2) arrays of each
    layer's width (h, dh and z with batchnorm), (3 or 2) of the widest (ReLU zeros and mask,
    dz with batchnorm), the logits and their gradient, the softmax scratch and the row index.
    """
    widths = _widths(hidden, layers, own)
    if not widths:
        return d * k + k, 2 * k + 2
    n_params = (sum(a * b for a, b in zip((d, *widths), widths)) + (2 if batchnorm else 1) * sum(widths)
                + widths[-1] * k + k)
    per_row = (3 * sum(widths) + max(widths) if batchnorm else 2 * (sum(widths) + max(widths))) + 2 * k + 2
    return n_params, per_row

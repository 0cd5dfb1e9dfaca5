"""A multilayer perceptron classifier: numpy matmuls for the linear layers, C kernels for batchnorm.

Architecture, with L = `layers` hidden layers of H = `hidden` units, D = `n_features` inputs and
K = `n_classes` outputs::

    h0 = x                                            (N, D)
    hidden layer i = 1..L:
        z_i = h_{i-1} @ W_i                           (N, H)   W_i: (D or H, H), no bias
        a_i = gamma_i * (z_i - mean) * invstd + beta_i         batchnorm (beta replaces the bias)
            (or a_i = z_i + b_i when batchnorm is off)
        h_i = max(a_i, 0)                             (N, H)   ReLU
    s = h_L @ W_{L+1} + b_{L+1}                       (N, K)   logits
    loss = mean_n [log sum_k exp(s_nk) - s_{n, y_n}]           softmax cross-entropy

`layers = 0` is softmax regression. Batchnorm conventions are those of `research.kernels` (and
PyTorch): the biased batch variance normalizes, the unbiased one feeds the running variance, and
`momentum` weights the new value: `running = (1 - momentum) * running + momentum * batch_stat`.

Parameters live in `MLP.params` (names in `MLP.param_names`), in a fixed order::

    W1, gamma1, beta1, ..., WL, gammaL, betaL, W{L+1}, b{L+1}     (batchnorm on)
    W1, b1, ..., WL, bL, W{L+1}, b{L+1}                            (batchnorm off)

Optimizers update these arrays in place; the model never rebinds them. The running statistics
(`running_mean{i}`, `running_var{i}`) are buffers, not parameters.

Speed: every activation and gradient array is preallocated per batch size and reused, matmuls and
kernels write into them through `out=`. The price is that the gradient arrays returned by
`loss_and_grads` are overwritten by the next call: copy them to keep them.
"""

from __future__ import annotations

import operator

import numpy as np

from research import kernels

__all__ = ["MLP"]

_MAX_WORKSPACES = 8  # batch sizes whose activation buffers are kept (train, last batch, eval...)


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
        np.sum(dout, axis=0, out=db)
    if dx is not None:
        np.matmul(dout, W.T, out=dx)


def _relu_forward(a):
    """`h = max(a, 0)`, in place: a (N, H) becomes h."""
    return np.maximum(a, 0, out=a)


def _relu_backward(dh, h):
    """`da = dh * [h > 0]`, in place: dh (N, H) becomes da. h is the forward output."""
    dh *= h > 0
    return dh


def _softmax_cross_entropy(s, y, rows, rowbuf, grad):
    """Softmax cross-entropy, summed over the batch, stable (row maximum subtracted).

    `p = softmax(s)`, `loss = sum_n [log sum_k exp(s_nk) - s_{n, y_n}]`; the gradient of the
    *mean* loss is `ds = (p - onehot(y)) / N`.

    :param s: (N, K) logits; destroyed: overwritten by ds when grad, else by scratch values.
    :param y: (N,) integer labels in [0, K).
    :param rows: (N,) `arange(N)`.
    :param rowbuf: (N, 1) scratch.
    :param grad: whether to write ds into s.
    :returns: (summed loss, number of correct argmax predictions).
    """
    n = s.shape[0]
    n_correct = int(np.count_nonzero(np.argmax(s, axis=1) == y))
    np.max(s, axis=1, keepdims=True, out=rowbuf)
    s -= rowbuf                                   # shifted logits: max_k s_nk = 0
    loss = -float(s[rows, y].sum(dtype=np.float64))
    np.exp(s, out=s)
    np.sum(s, axis=1, keepdims=True, out=rowbuf)  # >= 1, so the log below is safe
    if grad:
        s /= rowbuf                               # p
        s[rows, y] -= 1.0
        s *= 1.0 / n                              # ds
    np.log(rowbuf, out=rowbuf)
    loss += float(rowbuf.sum(dtype=np.float64))
    return loss, n_correct


# --------------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------------

def _positive_int(name, value, minimum):
    try:
        v = operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}") from None
    if isinstance(value, bool) or v < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return v


class _Workspace:
    """Activation and gradient arrays for one batch size N (all (N, ...) arrays of the model)."""

    def __init__(self, n, n_hidden_layers, hidden, n_classes, batchnorm, dtype):
        shape = (n, hidden)
        self.h = [np.empty(shape, dtype) for _ in range(n_hidden_layers)]   # ReLU outputs
        self.z = ([np.empty(shape, dtype) for _ in range(n_hidden_layers)]  # pre-batchnorm
                  if batchnorm else [None] * n_hidden_layers)
        self.dh = [np.empty(shape, dtype) for _ in range(n_hidden_layers)]  # d loss / d h_i
        self.dz = np.empty(shape, dtype) if batchnorm and n_hidden_layers else None
        self.s = np.empty((n, n_classes), dtype)                           # logits, then ds
        self.rowbuf = np.empty((n, 1), dtype)
        self.rows = np.arange(n)


class MLP:
    """MLP classifier: hidden layers linear -> batchnorm -> ReLU, softmax cross-entropy output.

    :param n_features: D, input width (>= 1).
    :param n_classes: K, number of classes (>= 2).
    :param hidden: H, units per hidden layer (>= 1).
    :param layers: L, number of hidden layers (>= 0; 0 is softmax regression).
    :param batchnorm: batchnorm in the hidden layers; when off, hidden layers get a bias instead.
    :param dtype: float32 (default) or float64, for parameters, buffers and computation.
    :param rng: the only source of randomness (He initialization: W ~ N(0, 2 / fan_in)).
    :param bn_momentum: weight of the batch statistic in the running averages, in [0, 1].
    :param bn_eps: batchnorm epsilon (> 0).

    Attributes: `params` and `param_names` (aligned, fixed order, updated in place by optimizers),
    `buffers` and `buffer_names` (running statistics), `dtype`, `config` (constructor arguments
    except rng).
    """

    def __init__(self, n_features, n_classes, *, hidden=64, layers=2, batchnorm=True,
                 dtype=np.float32, rng: np.random.Generator, bn_momentum=0.1, bn_eps=1e-5):
        n_features = _positive_int("n_features", n_features, 1)
        n_classes = _positive_int("n_classes", n_classes, 2)
        hidden = _positive_int("hidden", hidden, 1)
        layers = _positive_int("layers", layers, 0)
        if not isinstance(batchnorm, (bool, np.bool_)):
            raise ValueError(f"batchnorm must be True or False, got {batchnorm!r}")
        try:
            dt = np.dtype(dtype) if dtype is not None else None  # np.dtype(None) is float64
        except TypeError:
            dt = None
        if dt is None or dt.name not in ("float32", "float64"):
            raise ValueError(f"dtype must be float32 or float64, got {dtype!r}")
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator (numpy.random.default_rng(seed)),"
                            f" got {type(rng).__name__}")
        bn_momentum = float(bn_momentum)
        if not 0.0 <= bn_momentum <= 1.0:
            raise ValueError(f"bn_momentum must be in [0, 1], got {bn_momentum}")
        bn_eps = float(bn_eps)
        if not bn_eps > 0.0:  # also rejects nan
            raise ValueError(f"bn_eps must be > 0, got {bn_eps}")

        self.n_features, self.n_classes = n_features, n_classes
        self.hidden, self.layers, self.batchnorm = hidden, layers, bool(batchnorm)
        self.dtype = dt
        self.bn_momentum, self.bn_eps = bn_momentum, bn_eps

        def he(fan_in, fan_out):
            # drawn in float64 so that float32 and float64 models of one seed agree
            w = rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in)
            return np.ascontiguousarray(w, dtype=dt)

        self.params: list[np.ndarray] = []
        self.param_names: list[str] = []
        self.buffers: list[np.ndarray] = []
        self.buffer_names: list[str] = []

        def add(name, array, params=True):
            (self.params if params else self.buffers).append(array)
            (self.param_names if params else self.buffer_names).append(name)
            return array

        self._hidden_layers = []  # (W, b, gamma, beta, running_mean, running_var, mean, invstd)
        fan_in = n_features
        for i in range(1, layers + 1):
            W = add(f"W{i}", he(fan_in, hidden))
            if self.batchnorm:
                b = None
                gamma = add(f"gamma{i}", np.ones(hidden, dt))
                beta = add(f"beta{i}", np.zeros(hidden, dt))
                rmean = add(f"running_mean{i}", np.zeros(hidden, dt), params=False)
                rvar = add(f"running_var{i}", np.ones(hidden, dt), params=False)
                mean, invstd = np.empty(hidden, dt), np.empty(hidden, dt)  # saved for backward
            else:
                b = add(f"b{i}", np.zeros(hidden, dt))
                gamma = beta = rmean = rvar = mean = invstd = None
            self._hidden_layers.append((W, b, gamma, beta, rmean, rvar, mean, invstd))
            fan_in = hidden
        self._W_out = add(f"W{layers + 1}", he(fan_in, n_classes))
        self._b_out = add(f"b{layers + 1}", np.zeros(n_classes, dt))

        self.grads: list[np.ndarray] = [np.zeros_like(p) for p in self.params]
        self._workspaces: dict[int, _Workspace] = {}

    # ----------------------------------------------------------------------------------------------

    @property
    def config(self) -> dict:
        """Constructor arguments except rng, enough to rebuild the model for `load_state`."""
        return {"n_features": self.n_features, "n_classes": self.n_classes, "hidden": self.hidden,
                "layers": self.layers, "batchnorm": self.batchnorm, "dtype": self.dtype.name,
                "bn_momentum": self.bn_momentum, "bn_eps": self.bn_eps}

    @property
    def n_params(self) -> int:
        """Number of scalar parameters."""
        return sum(p.size for p in self.params)

    def __repr__(self):
        c = self.config
        return (f"MLP({c['n_features']}, {c['n_classes']}, hidden={c['hidden']}, "
                f"layers={c['layers']}, batchnorm={c['batchnorm']}, dtype={c['dtype']})")

    # ----------------------------------------------------------------------------------------------

    def _workspace(self, n):
        ws = self._workspaces.get(n)
        if ws is None:
            if len(self._workspaces) >= _MAX_WORKSPACES:
                del self._workspaces[next(iter(self._workspaces))]  # oldest batch size
            ws = _Workspace(n, self.layers, self.hidden, self.n_classes, self.batchnorm,
                            self.dtype)
            self._workspaces[n] = ws
        return ws

    def _check_x(self, x):
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"x must have shape (N, {self.n_features}), got {x.shape}")
        if x.shape[0] == 0:
            raise ValueError("x is empty (N = 0)")
        if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
            raise ValueError(f"x must be numeric, got dtype {x.dtype}")
        return np.ascontiguousarray(x, dtype=self.dtype)  # no copy when already right

    def _check_y(self, y, n):
        y = np.asarray(y)
        if y.shape != (n,):
            raise ValueError(f"y must have shape ({n},) to match x, got {y.shape}")
        if not np.issubdtype(y.dtype, np.integer):
            raise ValueError(f"y must hold integer class labels, got dtype {y.dtype}")
        lo, hi = int(y.min()), int(y.max())
        if lo < 0 or hi >= self.n_classes:
            raise ValueError(f"labels must be in [0, {self.n_classes}), got values in [{lo}, {hi}]")
        return y

    def _check_batch_size(self, batch_size):
        return _positive_int("batch_size", batch_size, 1)

    # ----------------------------------------------------------------------------------------------

    def _forward(self, x, ws, train):
        """Logits into ws.s (N, K); activations kept in ws for the backward pass.

        train: batchnorm from batch statistics (saved mean/invstd, running averages updated);
        otherwise from the running averages, and nothing but ws is written.
        """
        h = x
        for (W, b, gamma, beta, rmean, rvar, mean, invstd), z, h_next in zip(
                self._hidden_layers, ws.z, ws.h):
            if self.batchnorm:
                _linear_forward(h, W, None, out=z)
                if train:
                    kernels.batchnorm_forward(z, gamma, beta, self.bn_eps, rmean, rvar,
                                              self.bn_momentum, out=h_next, mean_out=mean,
                                              invstd_out=invstd)
                else:
                    kernels.batchnorm_inference(z, gamma, beta, rmean, rvar, self.bn_eps,
                                                out=h_next)
            else:
                _linear_forward(h, W, b, out=h_next)
            h = _relu_forward(h_next)
        return _linear_forward(h, self._W_out, self._b_out, out=ws.s)

    def _backward(self, x, ws):
        """Gradients into self.grads from ds in ws.s (N, K) and the activations of _forward."""
        g = self.grads
        k = len(g)
        inputs = [x] + ws.h  # input of each linear layer: h_0 = x, h_1..h_L
        # output layer: W{L+1}, b{L+1} are the last two params
        dh = ws.dh[-1] if self.layers else None
        _linear_backward(ws.s, inputs[-1], self._W_out, g[k - 2], g[k - 1], dh)
        k -= 2
        for i in range(self.layers - 1, -1, -1):
            W, b, gamma, beta, rmean, rvar, mean, invstd = self._hidden_layers[i]
            dh = _relu_backward(ws.dh[i], ws.h[i])               # now d loss / d a_i
            if self.batchnorm:
                dW, dgamma, dbeta = g[k - 3], g[k - 2], g[k - 1]
                kernels.batchnorm_backward(dh, ws.z[i], gamma, mean, invstd, dx_out=ws.dz,
                                           dgamma_out=dgamma, dbeta_out=dbeta)
                dz, db = ws.dz, None
                k -= 3
            else:
                dW, db = g[k - 2], g[k - 1]
                dz = dh
                k -= 2
            _linear_backward(dz, inputs[i], W, dW, db, ws.dh[i - 1] if i else None)

    # ----------------------------------------------------------------------------------------------

    def loss_and_grads(self, x, y):
        """Training step's forward and backward on one mini-batch.

        Batchnorm uses the batch statistics and updates the running averages in place.

        :param x: (N, n_features) inputs (cast to the model dtype if needed; N >= 2 with batchnorm).
        :param y: (N,) integer labels in [0, n_classes).
        :returns: (mean cross-entropy, accuracy, grads) with grads aligned with `params`. The
            grads are the model's own arrays (`self.grads`), overwritten by the next call.
        """
        x = self._check_x(x)
        n = x.shape[0]
        y = self._check_y(y, n)
        if self.batchnorm and self.layers and n < 2:
            raise ValueError(f"training with batchnorm needs at least 2 examples per batch, got {n}")
        ws = self._workspace(n)
        self._forward(x, ws, train=True)
        loss, n_correct = _softmax_cross_entropy(ws.s, y, ws.rows, ws.rowbuf, grad=True)
        self._backward(x, ws)
        return loss / n, n_correct / n, list(self.grads)

    def evaluate(self, x, y, batch_size=1024):
        """Mean cross-entropy and accuracy in eval mode (running averages; nothing is updated).

        :param x: (N, n_features) inputs.
        :param y: (N,) integer labels in [0, n_classes).
        :param batch_size: rows per forward pass (memory bound only; the result does not depend on it).
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
            lb, cb = _softmax_cross_entropy(ws.s, yb, ws.rows, ws.rowbuf, grad=False)
            loss += lb
            n_correct += cb
        return loss / n, n_correct / n

    def logits(self, x, batch_size=1024):
        """Eval-mode logits s (N, n_classes), a new array."""
        x = self._check_x(x)
        batch_size = self._check_batch_size(batch_size)
        out = np.empty((x.shape[0], self.n_classes), self.dtype)
        for start in range(0, x.shape[0], batch_size):
            xb = x[start:start + batch_size]
            out[start:start + xb.shape[0]] = self._forward(xb, self._workspace(xb.shape[0]),
                                                           train=False)
        return out

    def predict(self, x, batch_size=1024):
        """Eval-mode predicted classes (N,) int64: the argmax of the logits."""
        return np.argmax(self.logits(x, batch_size), axis=1)

    # ----------------------------------------------------------------------------------------------

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

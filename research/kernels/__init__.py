"""Batchnorm and optimizer kernels: validated numpy wrappers over the C core.

This module is the only importer of `research._kernels` (csrc/kernels.h compiled by cffi).
Every function checks types, dtypes, shapes, contiguity, writability, aliasing and scalar
ranges before any C runs, then calls the `_f32` or `_f64` twin for the arrays' dtype.

Conventions:
- Arrays are numpy, C-contiguous, and all float32 or all float64 (mixing is a TypeError).
- x is (N, C) or (N, C, *spatial); statistics are per channel over all other axes, so the
  C layout is (n, c, inner) with inner = prod(spatial) (1 for (N, C) input).
- Functions allocate their outputs unless `out=`-style buffers are given; a given buffer
  is filled and returned (the returned object is the buffer).
- Arrays a kernel writes (outputs, running statistics, optimizer state) must not share
  memory with any other argument: the C code declares them `restrict`.
- The C calls release the GIL, so threads can run kernels side by side.

The checks read array attributes only (no copies, no conversions) because the wrappers run
once per layer per step: a call on tiny arrays costs a few microseconds.

Plans (`BatchNormPlan`, `AdamPlan`, `MomentumPlan`, `RMSpropPlan`, `SGDPlan`) bind a kernel
to fixed arrays: every array check above runs once, when the plan is made, and each later
call is one C call on the bound arrays (their contents change between calls, their identity
does not). Training loops that reuse their work arrays use plans; the functions stay for
everything else.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial

import numpy as np

from research._kernels import ffi, lib

__all__ = [
    "AdamPlan",
    "BatchNormPlan",
    "MomentumPlan",
    "RMSpropPlan",
    "SGDPlan",
    "adam_update",
    "batchnorm_backward",
    "batchnorm_forward",
    "batchnorm_inference",
    "momentum_update",
    "rmsprop_update",
    "sgd_update",
]

_INF = math.inf
_from_buffer = ffi.from_buffer
_KERNELS = (
    "batchnorm_forward",
    "batchnorm_inference",
    "batchnorm_backward",
    "adam_update",
    "momentum_update",
    "rmsprop_update",
    "sgd_update",
)


@dataclass(frozen=True, slots=True)
class _Twin:
    """The numpy dtype, the cffi array type and the C kernels of one precision."""

    dtype: np.dtype
    ctype: object
    batchnorm_forward: object
    batchnorm_inference: object
    batchnorm_backward: object
    adam_update: object
    momentum_update: object
    rmsprop_update: object
    sgd_update: object

    @classmethod
    def of(cls, dtype: type, ctype: str, suffix: str) -> _Twin:
        kernels = (getattr(lib, f"rs_{name}_{suffix}") for name in _KERNELS)
        return cls(np.dtype(dtype), ffi.typeof(f"{ctype}[]"), *kernels)


_F32 = _Twin.of(np.float32, "float", "f32")
_F64 = _Twin.of(np.float64, "double", "f64")
_TWINS = {_F32.dtype: _F32, _F64.dtype: _F64}  # a byte-swapped dtype is equal to neither

_PER_CHANNEL = "(C,): one value per channel of x"
_LIKE_X = "the shape of x"
_LIKE_PARAM = "the shape of param"


def _source(name: str, a, writable: bool = False) -> _Twin:
    """Check the array that fixes a call's dtype; return the kernels of that dtype."""
    if not isinstance(a, np.ndarray):
        raise TypeError(
            f"{name} must be a numpy.ndarray of float32 or float64, got {type(a).__name__}"
        )
    twin = _TWINS.get(a.dtype)
    if twin is None:
        raise TypeError(
            f"{name} must have dtype float32 or float64 (native byte order), got {a.dtype}"
        )
    flags = a.flags
    if not flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous (use numpy.ascontiguousarray)")
    if writable and not flags.writeable:
        raise ValueError(f"{name} is read-only but is updated in place; pass a writable array")
    return twin


def _buffer(name: str, a, twin: _Twin, shape: tuple, what: str, writable: bool = False):
    """Check an array against the call's dtype and its expected shape; return its cffi buffer.

    `what` says where the expected shape comes from, for the error message.
    """
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray of {twin.dtype}, got {type(a).__name__}")
    dt = a.dtype
    if dt is not twin.dtype and dt != twin.dtype:
        raise TypeError(f"{name} must have dtype {twin.dtype} like the other arrays, got {dt}")
    if a.shape != shape:
        raise ValueError(f"{name} must have shape {shape} ({what}), got {a.shape}")
    flags = a.flags
    if not flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous (use numpy.ascontiguousarray)")
    if writable and not flags.writeable:
        raise ValueError(f"{name} is read-only but is written; pass a writable array")
    return _from_buffer(twin.ctype, a, writable)


def _output(name: str, buf, twin: _Twin, shape: tuple, what: str):
    """An output: a fresh array when ``buf`` is None, else ``buf`` checked (dtype, shape,
    contiguity, writability). Returns (the array, its cffi buffer)."""
    if buf is None:
        buf = np.empty(shape, twin.dtype)
        return buf, _from_buffer(twin.ctype, buf)
    return buf, _buffer(name, buf, twin, shape, what, True)


def _layout(x: np.ndarray) -> tuple[int, int, int]:
    """(n, c, inner) of x viewed as (N, C, prod(spatial)), the layout of the C kernels."""
    shape = x.shape
    if len(shape) < 2:
        raise ValueError(f"x must have shape (N, C) or (N, C, *spatial), got {shape}")
    return shape[0], shape[1], 1 if len(shape) == 2 else math.prod(shape[2:])


def _owned_distinct(*arrays) -> bool:
    """True when each array owns its memory (no base) and none is passed twice.

    Such arrays cannot overlap, so the exact (slower) check can be skipped.
    """
    for a in arrays:
        if a.base is not None:
            return False
    return len(set(map(id, arrays))) == len(arrays)


def _check_disjoint(written: tuple, read: tuple) -> None:
    """Raise ValueError when an array a kernel writes shares memory with another argument.

    written and read are (name, array or None) pairs. numpy's bounds check is exact here,
    as every array is C-contiguous. Callers skip this when _owned_distinct holds.
    """
    written = [(name, a) for name, a in written if a is not None]
    others = written + [(name, a) for name, a in read if a is not None]
    for i, (name, a) in enumerate(written):
        for other, b in others[i + 1 :]:
            if np.may_share_memory(a, b):
                raise ValueError(
                    f"{name} shares memory with {other}; the kernel writes {name}, "
                    "so pass separate arrays"
                )


# Scalar checks, shared by the functions and the plans' step (the values may change between
# calls). Hot paths test all their scalars in one chain of comparisons first and call these,
# which raise the message naming the culprit, only when that chain fails.


def _check_eps(eps) -> None:
    if not 0.0 < eps < _INF:
        raise ValueError(f"eps must be a finite number > 0, got {eps!r}")


def _check_momentum(momentum) -> None:
    if not 0.0 <= momentum <= 1.0:
        raise ValueError(f"momentum must be in [0, 1], got {momentum!r}")


def _check_step(step, name: str = "step") -> None:
    if type(step) is not int and not isinstance(step, np.integer):
        raise TypeError(f"{name} must be an integer >= 1, got {type(step).__name__}")
    if step < 1:
        raise ValueError(f"{name} must be an integer >= 1 (1 for the first update), got {step}")


def _check_lr(lr) -> None:
    if not 0.0 <= lr < _INF:
        raise ValueError(f"lr must be a finite number >= 0, got {lr!r}")


def _check_beta(name: str, beta) -> None:
    if not 0.0 <= beta < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {beta!r}")


def _check_weight_decay(weight_decay) -> None:
    if not 0.0 <= weight_decay < _INF:
        raise ValueError(f"weight_decay must be a finite number >= 0, got {weight_decay!r}")


def _check_adam(step, lr, beta1, beta2, eps, weight_decay, step_name: str = "step") -> None:
    _check_step(step, step_name)
    _check_lr(lr)
    _check_beta("beta1", beta1)
    _check_beta("beta2", beta2)
    _check_eps(eps)
    _check_weight_decay(weight_decay)


def _check_rmsprop(lr, beta, eps) -> None:
    _check_lr(lr)
    _check_beta("beta", beta)
    _check_eps(eps)


def batchnorm_forward(
    x,
    gamma,
    beta,
    eps=1e-5,
    running_mean=None,
    running_var=None,
    momentum=0.1,
    *,
    out=None,
    mean_out=None,
    invstd_out=None,
):
    """Batchnorm training forward: normalize each channel with its batch statistics.

        mean[j]   = mean of x[:, j, ...]
        var[j]    = mean of (x[:, j, ...] - mean[j])**2                (biased)
        invstd[j] = 1 / sqrt(var[j] + eps)
        y         = gamma[j] * (x - mean[j]) * invstd[j] + beta[j]

    When running_mean and running_var are given (both or neither) they are updated in
    place with the unbiased batch variance (m = N * prod(spatial) values per channel):

        running_mean = (1 - momentum) * running_mean + momentum * mean
        running_var  = (1 - momentum) * running_var  + momentum * var * m / (m - 1)

    Inputs:
    - x: (N, C) or (N, C, *spatial), float32 or float64, N * prod(spatial) >= 2
    - gamma, beta: (C,) scale and shift
    - eps: finite, > 0, added to the variance
    - running_mean, running_var: (C,) or None, updated in place
    - momentum: in [0, 1], the weight of the new batch statistic
    - out, mean_out, invstd_out: optional buffers for y, mean, invstd

    Returns a tuple of:
    - y: same shape as x (out when given)
    - mean, invstd: (C,), what batchnorm_backward needs
    """
    twin = _source("x", x)
    n, c, inner = _layout(x)
    if n * inner < 2:
        raise ValueError(
            f"x must have at least 2 values per channel (N * prod(spatial) >= 2), got {x.shape}"
        )
    channels = (c,)
    ctype = twin.ctype
    px = _from_buffer(ctype, x)
    pgamma = _buffer("gamma", gamma, twin, channels, _PER_CHANNEL)
    pbeta = _buffer("beta", beta, twin, channels, _PER_CHANNEL)
    if not (0.0 < eps < _INF and 0.0 <= momentum <= 1.0):
        _check_eps(eps)
        _check_momentum(momentum)
    if running_mean is None and running_var is None:
        prm = prv = ffi.NULL
    elif running_mean is None or running_var is None:
        raise ValueError("running_mean and running_var must be given together (both or neither)")
    else:
        prm = _buffer("running_mean", running_mean, twin, channels, _PER_CHANNEL, True)
        prv = _buffer("running_var", running_var, twin, channels, _PER_CHANNEL, True)
    given = out is not None or mean_out is not None or invstd_out is not None
    out, py = _output("out", out, twin, x.shape, _LIKE_X)
    mean_out, pmean = _output("mean_out", mean_out, twin, channels, _PER_CHANNEL)
    invstd_out, pinvstd = _output("invstd_out", invstd_out, twin, channels, _PER_CHANNEL)
    # Fresh outputs overlap nothing: without buffers or running stats there is nothing to check.
    if given or running_mean is not None:
        arrays = (x, gamma, beta, out, mean_out, invstd_out)
        if running_mean is not None:
            arrays += (running_mean, running_var)
        if not _owned_distinct(*arrays):
            _check_disjoint(
                (
                    ("running_mean", running_mean),
                    ("running_var", running_var),
                    ("out", out),
                    ("mean_out", mean_out),
                    ("invstd_out", invstd_out),
                ),
                (("x", x), ("gamma", gamma), ("beta", beta)),
            )
    twin.batchnorm_forward(
        n, c, inner, px, pgamma, pbeta, eps, momentum, prm, prv, py, pmean, pinvstd
    )
    return out, mean_out, invstd_out


def batchnorm_inference(x, gamma, beta, running_mean, running_var, eps=1e-5, *, out=None):
    """Batchnorm inference forward: normalize each channel with the running statistics.

        y = gamma[j] * (x - running_mean[j]) / sqrt(running_var[j] + eps) + beta[j]

    Inputs:
    - x: (N, C) or (N, C, *spatial), float32 or float64
    - gamma, beta, running_mean, running_var: (C,)
    - eps: finite, > 0, added to the variance
    - out: optional buffer for y

    Returns:
    - y: same shape as x (out when given)
    """
    twin = _source("x", x)
    n, c, inner = _layout(x)
    channels = (c,)
    px = _from_buffer(twin.ctype, x)
    pgamma = _buffer("gamma", gamma, twin, channels, _PER_CHANNEL)
    pbeta = _buffer("beta", beta, twin, channels, _PER_CHANNEL)
    prm = _buffer("running_mean", running_mean, twin, channels, _PER_CHANNEL)
    prv = _buffer("running_var", running_var, twin, channels, _PER_CHANNEL)
    if not 0.0 < eps < _INF:
        _check_eps(eps)
    given = out is not None
    out, py = _output("out", out, twin, x.shape, _LIKE_X)
    if given and not _owned_distinct(out, x, gamma, beta, running_mean, running_var):
        _check_disjoint(
            (("out", out),),
            (
                ("x", x),
                ("gamma", gamma),
                ("beta", beta),
                ("running_mean", running_mean),
                ("running_var", running_var),
            ),
        )
    twin.batchnorm_inference(n, c, inner, px, pgamma, pbeta, prm, prv, eps, py)
    return out


def batchnorm_backward(dy, x, gamma, mean, invstd, *, dx_out=None, dgamma_out=None, dbeta_out=None):
    """Batchnorm backward from the mean and invstd saved by batchnorm_forward.

    With xhat = (x - mean[j]) * invstd[j] and m = N * prod(spatial) values per channel:

        dbeta[j]  = sum of dy[:, j, ...]
        dgamma[j] = sum of (dy * xhat)[:, j, ...]
        dx        = gamma[j] * invstd[j] / m * (m * dy - dbeta[j] - xhat * dgamma[j])

    Inputs:
    - dy: upstream gradient, same shape as x
    - x: (N, C) or (N, C, *spatial), float32 or float64
    - gamma, mean, invstd: (C,)
    - dx_out, dgamma_out, dbeta_out: optional buffers for the gradients

    Returns a tuple of:
    - dx: same shape as x
    - dgamma, dbeta: (C,)
    """
    twin = _source("x", x)
    n, c, inner = _layout(x)
    channels = (c,)
    ctype = twin.ctype
    px = _from_buffer(ctype, x)
    pdy = _buffer("dy", dy, twin, x.shape, _LIKE_X)
    pgamma = _buffer("gamma", gamma, twin, channels, _PER_CHANNEL)
    pmean = _buffer("mean", mean, twin, channels, _PER_CHANNEL)
    pinvstd = _buffer("invstd", invstd, twin, channels, _PER_CHANNEL)
    given = dx_out is not None or dgamma_out is not None or dbeta_out is not None
    dx_out, pdx = _output("dx_out", dx_out, twin, x.shape, _LIKE_X)
    dgamma_out, pdgamma = _output("dgamma_out", dgamma_out, twin, channels, _PER_CHANNEL)
    dbeta_out, pdbeta = _output("dbeta_out", dbeta_out, twin, channels, _PER_CHANNEL)
    if given and not _owned_distinct(dy, x, gamma, mean, invstd, dx_out, dgamma_out, dbeta_out):
        _check_disjoint(
            (("dx_out", dx_out), ("dgamma_out", dgamma_out), ("dbeta_out", dbeta_out)),
            (("dy", dy), ("x", x), ("gamma", gamma), ("mean", mean), ("invstd", invstd)),
        )
    twin.batchnorm_backward(n, c, inner, pdy, px, pgamma, pmean, pinvstd, pdx, pdgamma, pdbeta)
    return dx_out, dgamma_out, dbeta_out


def adam_update(
    param, grad, m, v, step, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0
):
    """Adam (Kingma & Ba) step in place, bias-corrected; AdamW when weight_decay != 0.

        m      = beta1 * m + (1 - beta1) * grad
        v      = beta2 * v + (1 - beta2) * grad**2
        param -= lr * weight_decay * param                     (decoupled, AdamW)
        param -= lr * (m / (1 - beta1**step)) / (sqrt(v / (1 - beta2**step)) + eps)

    Both subtractions use param from before the step, as PyTorch's AdamW does.

    Inputs:
    - param, grad, m, v: same shape, float32 or float64; param, m, v updated in place
    - step: integer >= 1, the number of this update (1 for the first)
    - lr, weight_decay: finite, >= 0; beta1, beta2: in [0, 1); eps: finite, > 0

    Returns None: the update is in place.
    """
    twin = _source("param", param, True)
    shape = param.shape
    pp = _from_buffer(twin.ctype, param, True)
    pg = _buffer("grad", grad, twin, shape, _LIKE_PARAM)
    pm = _buffer("m", m, twin, shape, _LIKE_PARAM, True)
    pv = _buffer("v", v, twin, shape, _LIKE_PARAM, True)
    if not (
        type(step) is int
        and step >= 1
        and 0.0 <= lr < _INF
        and 0.0 <= beta1 < 1.0
        and 0.0 <= beta2 < 1.0
        and 0.0 < eps < _INF
        and 0.0 <= weight_decay < _INF
    ):
        _check_adam(step, lr, beta1, beta2, eps, weight_decay)
    if not _owned_distinct(param, grad, m, v):
        _check_disjoint((("param", param), ("m", m), ("v", v)), (("grad", grad),))
    twin.adam_update(param.size, pp, pg, pm, pv, step, lr, beta1, beta2, eps, weight_decay)


def momentum_update(param, grad, velocity, lr, beta=0.9):
    """Momentum step in place (exponentially weighted average of the gradients).

        velocity = beta * velocity + (1 - beta) * grad
        param   -= lr * velocity

    Inputs:
    - param, grad, velocity: same shape, float32 or float64; param, velocity updated in place
    - lr: finite, >= 0; beta: in [0, 1)

    Returns None: the update is in place.
    """
    twin = _source("param", param, True)
    shape = param.shape
    pp = _from_buffer(twin.ctype, param, True)
    pg = _buffer("grad", grad, twin, shape, _LIKE_PARAM)
    pvel = _buffer("velocity", velocity, twin, shape, _LIKE_PARAM, True)
    if not (0.0 <= lr < _INF and 0.0 <= beta < 1.0):
        _check_lr(lr)
        _check_beta("beta", beta)
    if not _owned_distinct(param, grad, velocity):
        _check_disjoint((("param", param), ("velocity", velocity)), (("grad", grad),))
    twin.momentum_update(param.size, pp, pg, pvel, lr, beta)


def rmsprop_update(param, grad, sq, lr, beta=0.999, eps=1e-8):
    """RMSprop step in place.

        sq     = beta * sq + (1 - beta) * grad**2
        param -= lr * grad / (sqrt(sq) + eps)

    Inputs:
    - param, grad, sq: same shape, float32 or float64; param, sq updated in place
    - lr: finite, >= 0; beta: in [0, 1); eps: finite, > 0

    Returns None: the update is in place.
    """
    twin = _source("param", param, True)
    shape = param.shape
    pp = _from_buffer(twin.ctype, param, True)
    pg = _buffer("grad", grad, twin, shape, _LIKE_PARAM)
    psq = _buffer("sq", sq, twin, shape, _LIKE_PARAM, True)
    if not (0.0 <= lr < _INF and 0.0 <= beta < 1.0 and 0.0 < eps < _INF):
        _check_rmsprop(lr, beta, eps)
    if not _owned_distinct(param, grad, sq):
        _check_disjoint((("param", param), ("sq", sq)), (("grad", grad),))
    twin.rmsprop_update(param.size, pp, pg, psq, lr, beta, eps)


def sgd_update(param, grad, lr, weight_decay=0.0):
    """Plain SGD step in place, with optional (coupled, L2) weight decay.

        param -= lr * (grad + weight_decay * param)

    Inputs:
    - param, grad: same shape, float32 or float64; param updated in place
    - lr, weight_decay: finite, >= 0

    Returns None: the update is in place.
    """
    twin = _source("param", param, True)
    pp = _from_buffer(twin.ctype, param, True)
    pg = _buffer("grad", grad, twin, param.shape, _LIKE_PARAM)
    if not (0.0 <= lr < _INF and 0.0 <= weight_decay < _INF):
        _check_lr(lr)
        _check_weight_decay(weight_decay)
    if not _owned_distinct(param, grad):
        _check_disjoint((("param", param),), (("grad", grad),))
    twin.sgd_update(param.size, pp, pg, lr, weight_decay)


# --------------------------------------------------------------------------------------------
# Plans: kernels bound to fixed arrays, checked once
# --------------------------------------------------------------------------------------------


def _fail(kind: type, message: str):
    """Raise a new `kind(message)`: what a plan calls in place of a kernel it cannot run."""
    raise kind(message)


class _Plan:
    """Base of the plans: attributes are set once, in __init__, and a plan is never copied.

    A plan holds cffi pointers into its arrays, so a copy of a plan would still write the
    original arrays: copying (or pickling) raises TypeError instead.
    """

    __slots__ = ()

    def _bind(self, **attributes) -> None:
        for name, value in attributes.items():
            object.__setattr__(self, name, value)

    def __setattr__(self, name, value):
        raise AttributeError(
            f"{type(self).__name__} is bound to its arrays for good; make a new plan "
            "to use other arrays"
        )

    def __delattr__(self, name):
        self.__setattr__(name, None)

    def __reduce__(self):
        raise TypeError(
            f"a {type(self).__name__} cannot be copied or pickled: it points into its arrays; "
            "make a new plan from the copied arrays"
        )


class BatchNormPlan(_Plan):
    """Batchnorm bound to one layer's fixed arrays: each call is one C call, unchecked.

    Every check `batchnorm_forward`, `batchnorm_inference` and `batchnorm_backward` make
    (types, dtypes, shapes, contiguity, writability, aliasing, eps and momentum ranges) runs
    here, once. The plan then reads and writes these very arrays on every call: fill `x`
    (and `dy`) in place, call, read `y` (and `dx`, `dgamma`, `dbeta`). Their contents may
    change freely between calls; their identity may not: a new array (another batch size, a
    rebound attribute) needs a new plan. The checks are not repeated, so do not change a
    bound array's shape, dtype or flags in place while the plan is in use.

    Formulas, conventions and shapes are those of the functions (same C kernels, same
    arguments, so the same results bit for bit):

        forward():    y = gamma * (x - mean) * invstd + beta   from the batch statistics,
                      written to mean, invstd (and the running statistics, when bound)
        inference():  y = gamma * (x - running_mean) / sqrt(running_var + eps) + beta
        backward():   dx, dgamma, dbeta from dy, x, gamma, mean, invstd

    Inputs:
    - x: (N, C) or (N, C, *spatial), float32 or float64; only read
    - gamma, beta: (C,) scale and shift; only read
    - y: the shape of x, written by forward() and inference()
    - mean, invstd: (C,), written by forward(), read by backward()
    - running_mean, running_var: (C,) or None (both or neither); updated by forward(), read
      by inference(), which needs them
    - dy, dx, dgamma, dbeta: all four or none, for backward(): dy has the shape of x and is
      only read; dx (shape of x), dgamma, dbeta (C,) are written
    - eps: finite, > 0; momentum: in [0, 1]; both fixed for the plan

    Aliasing: as in the functions, an array an operation writes must not share memory with
    any other array of that operation (so y may be dy, but not x; dx may be y). Arrays that
    are only read may repeat.

    forward() needs N * prod(spatial) >= 2; a plan with fewer values per channel (a single
    sample, for evaluation) is made anyway and raises ValueError from forward() only.

    The bound arrays and scalars are read-only attributes (`plan.x`, `plan.eps`, ...).
    """

    __slots__ = (
        "x",
        "gamma",
        "beta",
        "y",
        "mean",
        "invstd",
        "running_mean",
        "running_var",
        "dy",
        "dx",
        "dgamma",
        "dbeta",
        "eps",
        "momentum",
        "_forward",
        "_inference",
        "_backward",
    )

    def __init__(
        self,
        x,
        gamma,
        beta,
        y,
        mean,
        invstd,
        running_mean=None,
        running_var=None,
        *,
        dy=None,
        dx=None,
        dgamma=None,
        dbeta=None,
        eps=1e-5,
        momentum=0.1,
    ):
        twin = _source("x", x)
        n, c, inner = _layout(x)
        shape, channels = x.shape, (c,)
        ctype = twin.ctype
        px = _from_buffer(ctype, x)
        pgamma = _buffer("gamma", gamma, twin, channels, _PER_CHANNEL)
        pbeta = _buffer("beta", beta, twin, channels, _PER_CHANNEL)
        py = _buffer("y", y, twin, shape, _LIKE_X, True)
        pmean = _buffer("mean", mean, twin, channels, _PER_CHANNEL, True)
        pinvstd = _buffer("invstd", invstd, twin, channels, _PER_CHANNEL, True)
        _check_eps(eps)
        _check_momentum(momentum)
        if running_mean is None and running_var is None:
            prm = prv = ffi.NULL
        elif running_mean is None or running_var is None:
            raise ValueError(
                "running_mean and running_var must be given together (both or neither)"
            )
        else:
            prm = _buffer("running_mean", running_mean, twin, channels, _PER_CHANNEL, True)
            prv = _buffer("running_var", running_var, twin, channels, _PER_CHANNEL, True)
        gradients = (dy, dx, dgamma, dbeta)
        with_backward = dy is not None
        if any((g is None) == with_backward for g in gradients):
            raise ValueError("dy, dx, dgamma and dbeta must be given together (all or none)")
        if with_backward:
            pdy = _buffer("dy", dy, twin, shape, _LIKE_X)
            pdx = _buffer("dx", dx, twin, shape, _LIKE_X, True)
            pdgamma = _buffer("dgamma", dgamma, twin, channels, _PER_CHANNEL, True)
            pdbeta = _buffer("dbeta", dbeta, twin, channels, _PER_CHANNEL, True)
        arrays = (x, gamma, beta, y, mean, invstd)
        if running_mean is not None:
            arrays += (running_mean, running_var)
        if with_backward:
            arrays += gradients
        if not _owned_distinct(*arrays):
            # forward() writes the most: its check covers inference() (y against the rest).
            _check_disjoint(
                (
                    ("running_mean", running_mean),
                    ("running_var", running_var),
                    ("y", y),
                    ("mean", mean),
                    ("invstd", invstd),
                ),
                (("x", x), ("gamma", gamma), ("beta", beta)),
            )
            if with_backward:
                _check_disjoint(
                    (("dx", dx), ("dgamma", dgamma), ("dbeta", dbeta)),
                    (("dy", dy), ("x", x), ("gamma", gamma), ("mean", mean), ("invstd", invstd)),
                )

        if n * inner < 2:
            forward = partial(
                _fail,
                ValueError,
                "x must have at least 2 values per channel (N * prod(spatial) >= 2), got "
                f"{shape}: this plan can run inference() and backward() only",
            )
        else:
            forward = partial(
                twin.batchnorm_forward,
                *(n, c, inner, px, pgamma, pbeta, eps, momentum, prm, prv, py, pmean, pinvstd),
            )
        if running_mean is None:
            inference = partial(
                _fail,
                ValueError,
                "inference() needs running_mean and running_var; this plan was made without",
            )
        else:
            inference = partial(
                twin.batchnorm_inference, n, c, inner, px, pgamma, pbeta, prm, prv, eps, py
            )
        if with_backward:
            backward = partial(
                twin.batchnorm_backward,
                *(n, c, inner, pdy, px, pgamma, pmean, pinvstd, pdx, pdgamma, pdbeta),
            )
        else:
            backward = partial(
                _fail,
                ValueError,
                "backward() needs dy, dx, dgamma and dbeta; this plan was made without",
            )
        self._bind(
            x=x,
            gamma=gamma,
            beta=beta,
            y=y,
            mean=mean,
            invstd=invstd,
            running_mean=running_mean,
            running_var=running_var,
            dy=dy,
            dx=dx,
            dgamma=dgamma,
            dbeta=dbeta,
            eps=eps,
            momentum=momentum,
            _forward=forward,
            _inference=inference,
            _backward=backward,
        )

    def forward(self) -> None:
        """Training forward of `batchnorm_forward`: y, mean, invstd from x (and the running
        statistics updated, when bound). Returns None: read the bound arrays."""
        self._forward()

    def inference(self) -> None:
        """Inference forward of `batchnorm_inference`: y from x and the running statistics.
        Returns None: read `y`."""
        self._inference()

    def backward(self) -> None:
        """`batchnorm_backward`: dx, dgamma, dbeta from dy, x, gamma and the mean and invstd
        of the last forward(). Returns None: read the bound arrays."""
        self._backward()

    def __repr__(self) -> str:
        parts = [f"x={self.x.shape} {self.x.dtype}"]
        parts.append("running stats" if self.running_mean is not None else "no running stats")
        parts.append("backward" if self.dy is not None else "no backward")
        return f"BatchNormPlan({', '.join(parts)}, eps={self.eps!r}, momentum={self.momentum!r})"


def _sequence(name: str, arrays) -> tuple:
    """A plan's sequence of arrays as a tuple (an array itself is refused: it is a sequence
    of rows, not of arrays)."""
    if isinstance(arrays, np.ndarray) or not hasattr(arrays, "__iter__"):
        raise TypeError(
            f"{name} must be a sequence of numpy arrays (one per parameter), "
            f"got {type(arrays).__name__}"
        )
    return tuple(arrays)


class _UpdatePlan(_Plan):
    """Shared binding of the optimizer plans: params[i] is updated from grads[i] and the
    state arrays [i], by one C call per i, in order."""

    __slots__ = ("params", "grads", "_calls")
    _kernel = ""  # the _Twin attribute, e.g. "adam_update"
    _states: tuple[str, ...] = ()  # the names of the state sequences, e.g. ("ms", "vs")

    def __init__(self, params, grads, *states):
        params = _sequence("params", params)
        grads = _sequence("grads", grads)
        states = tuple(_sequence(name, s) for name, s in zip(self._states, states))
        if not params:
            raise ValueError("params is empty: a plan needs at least one array to update")
        for name, arrays in (("grads", grads), *zip(self._states, states)):
            if len(arrays) != len(params):
                raise ValueError(
                    f"{name} has {len(arrays)} arrays but params has {len(params)}: "
                    "one per parameter array"
                )
        calls = []
        for i, p in enumerate(params):
            twin = _source(f"params[{i}]", p, True)
            shape, like = p.shape, f"the shape of params[{i}]"
            pointers = [
                _from_buffer(twin.ctype, p, True),
                _buffer(f"grads[{i}]", grads[i], twin, shape, like),
            ]
            written = [(f"params[{i}]", p)]
            for name, arrays in zip(self._states, states):
                pointers.append(_buffer(f"{name}[{i}]", arrays[i], twin, shape, like, True))
                written.append((f"{name}[{i}]", arrays[i]))
            if not _owned_distinct(grads[i], *(a for _, a in written)):
                _check_disjoint(tuple(written), ((f"grads[{i}]", grads[i]),))
            calls.append(partial(getattr(twin, self._kernel), p.size, *pointers))
        self._bind(params=params, grads=grads, _calls=tuple(calls))
        self._bind(**dict(zip(self._states, states)))

    def __len__(self) -> int:
        return len(self._calls)

    def __repr__(self) -> str:
        size = sum(p.size for p in self.params)
        return f"{type(self).__name__}({len(self._calls)} arrays, {size} values)"


class AdamPlan(_UpdatePlan):
    """`adam_update` bound to fixed lists of arrays: `step(t, ...)` updates every params[i].

        plan = AdamPlan(params, grads, ms, vs)
        plan.step(t, lr, beta1, beta2, eps, weight_decay)

    does what `for i: adam_update(params[i], grads[i], ms[i], vs[i], t, lr, ...)` does (same C
    calls, same order, same results), with the array checks made once, here: each params[i]
    float32 or float64, C-contiguous and writable; grads[i], ms[i], vs[i] of its dtype and
    shape, C-contiguous, ms[i] and vs[i] writable; params[i], ms[i], vs[i] sharing memory with
    no other array of update i. Arrays of different updates may differ in dtype and shape.
    The sequences are copied to tuples (`plan.params`, `plan.grads`, `plan.ms`, `plan.vs`):
    the plan reads and writes these very arrays, whose contents change between steps. A new
    array (a rebound gradient) needs a new plan; so does an in-place change of a bound
    array's shape, dtype or flags, which the plan does not see.

    The scalars may change from step to step, so `step` checks them on every call, as
    `adam_update` does (t an integer >= 1; lr, weight_decay finite >= 0; betas in [0, 1);
    eps finite > 0), before anything is updated.
    """

    __slots__ = ("ms", "vs")
    _kernel = "adam_update"
    _states = ("ms", "vs")

    def __init__(self, params, grads, ms, vs):
        super().__init__(params, grads, ms, vs)

    def step(self, t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0) -> None:
        """One Adam update of every bound parameter array (t = 1 for the first)."""
        # One comparison chain when all is well; the checks that name the culprit otherwise.
        if not (
            type(t) is int
            and t >= 1
            and 0.0 <= lr < _INF
            and 0.0 <= beta1 < 1.0
            and 0.0 <= beta2 < 1.0
            and 0.0 < eps < _INF
            and 0.0 <= weight_decay < _INF
        ):
            _check_adam(t, lr, beta1, beta2, eps, weight_decay, "t")
        for call in self._calls:
            call(t, lr, beta1, beta2, eps, weight_decay)


class MomentumPlan(_UpdatePlan):
    """`momentum_update` bound to fixed lists of arrays, like `AdamPlan`:
    `MomentumPlan(params, grads, velocities).step(lr, beta)` does
    `for i: momentum_update(params[i], grads[i], velocities[i], lr, beta)`, with the array
    checks made once; lr (finite, >= 0) and beta (in [0, 1)) are checked on every step."""

    __slots__ = ("velocities",)
    _kernel = "momentum_update"
    _states = ("velocities",)

    def __init__(self, params, grads, velocities):
        super().__init__(params, grads, velocities)

    def step(self, lr, beta=0.9) -> None:
        """One momentum update of every bound parameter array."""
        if not (0.0 <= lr < _INF and 0.0 <= beta < 1.0):
            _check_lr(lr)
            _check_beta("beta", beta)
        for call in self._calls:
            call(lr, beta)


class RMSpropPlan(_UpdatePlan):
    """`rmsprop_update` bound to fixed lists of arrays, like `AdamPlan`:
    `RMSpropPlan(params, grads, sqs).step(lr, beta, eps)` does
    `for i: rmsprop_update(params[i], grads[i], sqs[i], lr, beta, eps)`, with the array
    checks made once; the scalars are checked on every step."""

    __slots__ = ("sqs",)
    _kernel = "rmsprop_update"
    _states = ("sqs",)

    def __init__(self, params, grads, sqs):
        super().__init__(params, grads, sqs)

    def step(self, lr, beta=0.999, eps=1e-8) -> None:
        """One RMSprop update of every bound parameter array."""
        if not (0.0 <= lr < _INF and 0.0 <= beta < 1.0 and 0.0 < eps < _INF):
            _check_rmsprop(lr, beta, eps)
        for call in self._calls:
            call(lr, beta, eps)


class SGDPlan(_UpdatePlan):
    """`sgd_update` bound to fixed lists of arrays, like `AdamPlan`:
    `SGDPlan(params, grads).step(lr, weight_decay)` does
    `for i: sgd_update(params[i], grads[i], lr, weight_decay)`, with the array checks made
    once; lr and weight_decay (finite, >= 0) are checked on every step."""

    __slots__ = ()
    _kernel = "sgd_update"

    def __init__(self, params, grads):
        super().__init__(params, grads)

    def step(self, lr, weight_decay=0.0) -> None:
        """One SGD update of every bound parameter array."""
        if not (0.0 <= lr < _INF and 0.0 <= weight_decay < _INF):
            _check_lr(lr)
            _check_weight_decay(weight_decay)
        for call in self._calls:
            call(lr, weight_decay)

"""research.kernels against independent numpy transcriptions computed in float64.

Batchnorm backward is also checked against central finite differences of the forward.
Shapes cover (N, C) and (N, C, *spatial) layouts, sizes that are not multiples of the
vector width, and channels over more than one strip: the C code sweeps the channels of the
(N, C) layout in strips of 32768 bytes, 8192 float32 or 4096 float64 channels (inference
also for (N, C, *spatial); see csrc/batchnorm_impl.h). 4097 channels are two float64 strips
and one float32 strip; 8291 (not a multiple of either) are two float32 and three float64
strips. N stays small, so these cases stay fast.
"""

import numpy as np
import pytest

from research import kernels

DTYPES = [np.float32, np.float64]


def _shapes(*shapes):
    """pytest params with readable ids such as 5x3x4x4."""
    return [pytest.param(shape, id="x".join(map(str, shape))) for shape in shapes]


MULTI_STRIP = [(9, 4097), (3, 8291), (2, 8291, 2)]
# Over 4 MiB even as float32 (RS_CACHED_BYTES, csrc/batchnorm_impl.h): the NCHW kernels take
# their channel-group path; 19 channels and 97x97 runs are no multiple of a group or a vector.
# The (N, C) forward sweeps two rows at a time there, then the odd last row.
GROUPED = [(6, 19, 97, 97), (1025, 1031)]
# Over 16 MiB even as float32 (RS_STREAM_BYTES): the (N, C) passes sweep four rows at a time
# (in the forward n // 4 rows apart), then the rows left (three, one); the backward's apply does
# so only where a strip's channels take more than 4 KiB (RS_L1_COEF_BYTES): not for 1023
# float32 channels.
STREAMED = [(1027, 4099), (4101, 1023)]
SHAPES = _shapes((2, 1), (3, 7), (64, 128), (5, 3, 4, 4), (2, 3, 5, 7), (2, 1030, 3), *MULTI_STRIP, *GROUPED,
                 *STREAMED)
SIZES = [1, 3, 7, 17, 1000, 1029, 4099]
# (rtol, atol) of a kernel result against the float64 reference, per dtype.
TOL = {np.float32: (2e-5, 2e-5), np.float64: (1e-12, 1e-12)}


def _axes(x):
    """The axes statistics reduce over: all but the channel axis 1."""
    return (0, *range(2, x.ndim))


def _per_channel(v, x):
    """v of shape (C,) shaped to broadcast against x."""
    return v.reshape((1, -1) + (1,) * (x.ndim - 2))


def _batch(shape, dtype, rng):
    x = rng.normal(0.5, 2.0, size=shape).astype(dtype)
    gamma = rng.uniform(0.5, 1.5, size=shape[1]).astype(dtype)
    beta = rng.normal(size=shape[1]).astype(dtype)
    return x, gamma, beta


def ref_forward(x, gamma, beta, eps):
    """mean, biased var, invstd, y in float64."""
    x = x.astype(np.float64)
    mean = x.mean(axis=_axes(x))
    var = x.var(axis=_axes(x))
    invstd = 1.0 / np.sqrt(var + eps)
    xhat = (x - _per_channel(mean, x)) * _per_channel(invstd, x)
    y = _per_channel(gamma.astype(np.float64), x) * xhat + _per_channel(beta.astype(np.float64), x)
    return y, mean, var, invstd


def ref_backward(dy, x, gamma, eps):
    """dx, dgamma, dbeta by the staged chain rule of the computational graph (CS231n)."""
    dy, x, gamma = (a.astype(np.float64) for a in (dy, x, gamma))
    axes = _axes(x)
    m = x.size // x.shape[1]
    mu = x.mean(axis=axes, keepdims=True)
    xc = x - mu
    var = (xc**2).mean(axis=axes, keepdims=True)
    invstd = 1.0 / np.sqrt(var + eps)
    xhat = xc * invstd
    dbeta = dy.sum(axis=axes)
    dgamma = (dy * xhat).sum(axis=axes)
    dxhat = dy * _per_channel(gamma, x)
    dvar = (dxhat * xc).sum(axis=axes, keepdims=True) * -0.5 * invstd**3
    dmu = -(dxhat * invstd).sum(axis=axes, keepdims=True) - 2.0 * dvar * xc.mean(
        axis=axes, keepdims=True
    )
    dx = dxhat * invstd + dvar * 2.0 * xc / m + dmu / m
    return dx, dgamma, dbeta


def _close(actual, expected, dtype, scale=1.0):
    rtol, atol = TOL[dtype]
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol * scale)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_forward_matches_numpy(shape, dtype):
    rng = np.random.default_rng(0)
    x, gamma, beta = _batch(shape, dtype, rng)
    y, mean, invstd = kernels.batchnorm_forward(x, gamma, beta, eps=1e-5)
    ry, rmean, _, rinvstd = ref_forward(x, gamma, beta, 1e-5)
    assert y.shape == x.shape and y.dtype == dtype
    assert mean.shape == invstd.shape == (shape[1],)
    assert mean.dtype == invstd.dtype == dtype
    _close(mean, rmean, dtype)
    _close(invstd, rinvstd, dtype)
    _close(y, ry, dtype, scale=10.0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_backward_matches_numpy(shape, dtype):
    rng = np.random.default_rng(1)
    x, gamma, beta = _batch(shape, dtype, rng)
    dy = rng.normal(size=shape).astype(dtype)
    _, mean, invstd = kernels.batchnorm_forward(x, gamma, beta, eps=1e-5)
    dx, dgamma, dbeta = kernels.batchnorm_backward(dy, x, gamma, mean, invstd)
    rdx, rdgamma, rdbeta = ref_backward(dy, x, gamma, 1e-5)
    assert dx.shape == x.shape and dx.dtype == dtype
    assert dgamma.shape == dbeta.shape == (shape[1],)
    m = x.size // shape[1]
    # Sums over m values carry m roundings of the storage type.
    _close(dbeta, rdbeta, dtype, scale=np.sqrt(m) * 10)
    _close(dgamma, rdgamma, dtype, scale=np.sqrt(m) * 10)
    _close(dx, rdx, dtype, scale=100.0)


def _numeric_gradient(f, a, indices, h=1e-5):
    """Central differences of the scalar f() with respect to a.flat[i] for i in indices."""
    grad = np.empty(len(indices))
    flat = a.reshape(-1)
    for k, i in enumerate(indices):
        old = flat[i]
        flat[i] = old + h
        plus = f()
        flat[i] = old - h
        minus = f()
        flat[i] = old
        grad[k] = (plus - minus) / (2 * h)
    return grad


@pytest.mark.parametrize("shape", SHAPES[:-len(STREAMED)])  # the streamed sweeps: against numpy above
def test_backward_matches_finite_differences(shape):
    """d/d(x, gamma, beta) of loss = sum(w * y), float64, on up to 60 entries of x."""
    rng = np.random.default_rng(2)
    x, gamma, beta = _batch(shape, np.float64, rng)
    w = rng.normal(size=shape)

    def loss():
        return float(np.sum(w * kernels.batchnorm_forward(x, gamma, beta, eps=1e-5)[0]))

    _, mean, invstd = kernels.batchnorm_forward(x, gamma, beta, eps=1e-5)
    dx, dgamma, dbeta = kernels.batchnorm_backward(w, x, gamma, mean, invstd)
    some = rng.choice(x.size, size=min(x.size, 60), replace=False)
    c = shape[1]
    # Every channel when there are few; else some, with both sides of each strip boundary.
    edges = [j for j in (0, 2047, 2048, 4095, 4096, c - 1) if j < c]
    channels = np.arange(c) if c <= 256 else np.unique([*edges, *rng.choice(c, 40, replace=False)])
    for analytic, a, indices in [(dx, x, some), (dgamma, gamma, channels), (dbeta, beta, channels)]:
        numeric = _numeric_gradient(loss, a, indices)
        np.testing.assert_allclose(analytic.reshape(-1)[indices], numeric, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", _shapes((2, 1), (3, 7), (5, 3, 4, 4), *MULTI_STRIP))
def test_running_statistics_follow_pytorch_rule(shape, dtype):
    """20 steps of running = (1 - momentum) * running + momentum * stat (unbiased var)."""
    rng = np.random.default_rng(3)
    c = shape[1]
    running_mean = np.zeros(c, dtype)
    running_var = np.ones(c, dtype)
    ref_mean = np.zeros(c)
    ref_var = np.ones(c)
    momentum = 0.1
    for _ in range(20):
        x, gamma, beta = _batch(shape, dtype, rng)
        kernels.batchnorm_forward(x, gamma, beta, 1e-5, running_mean, running_var, momentum)
        x64 = x.astype(np.float64)
        ref_mean = (1 - momentum) * ref_mean + momentum * x64.mean(axis=_axes(x))
        ref_var = (1 - momentum) * ref_var + momentum * x64.var(axis=_axes(x), ddof=1)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(running_mean, ref_mean, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(running_var, ref_var, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("shape", _shapes((4096, 8), (64, 8, 16)))
def test_variance_is_stable_for_large_offsets(shape):
    """float32 input 1e4 + N(0, 1) gives the float64 variance to 1e-4 relative."""
    rng = np.random.default_rng(4)
    x = (1e4 + rng.normal(size=shape)).astype(np.float32)
    gamma = np.ones(shape[1], np.float32)
    beta = np.zeros(shape[1], np.float32)
    eps = 1e-5
    _, mean, invstd = kernels.batchnorm_forward(x, gamma, beta, eps)
    var = 1.0 / invstd.astype(np.float64) ** 2 - eps
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(var, x64.var(axis=_axes(x)), rtol=1e-4)
    np.testing.assert_allclose(mean, x64.mean(axis=_axes(x)), rtol=1e-6)


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(4, 3), (4, 3, 5)])
def test_a_channel_with_a_nan_or_a_huge_spread_gets_nan_statistics_not_finite_ones(shape, dtype, fused):
    """A NaN variance was clamped to 0: invstd came out 1/sqrt(eps) and the running variance
    decayed toward 0, finite and wrong, where numpy's statistics are NaN or inf."""
    x = np.ones(shape, dtype)
    x[1, 0] = np.nan  # channel 0: a NaN
    big = np.finfo(dtype).max
    for row, value in enumerate([big, -big, big]):  # channel 1: an inf variance
        x[row, 1] = value
    ones, zeros = np.ones(shape[1], dtype), np.zeros(shape[1], dtype)
    running_mean, running_var = zeros.copy(), ones.copy()
    forward = kernels.batchnorm_relu_forward if fused else kernels.batchnorm_forward
    _, mean, invstd = forward(x, ones, zeros, 1e-5, running_mean, running_var, 0.1)
    assert np.isnan(mean[0]) and not np.isfinite(invstd[0]) and not np.isfinite(running_var[0])
    assert not np.isfinite(invstd[1]) or invstd[1] == 0  # 1/sqrt(inf) is 0: never 1/sqrt(eps)
    assert not np.isfinite(running_var[1])
    assert np.isfinite(invstd[2]) and running_var[2] == pytest.approx(0.9)  # a constant channel: variance 0


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_inference_matches_formula(shape, dtype):
    rng = np.random.default_rng(5)
    x, gamma, beta = _batch(shape, dtype, rng)
    running_mean = rng.normal(size=shape[1]).astype(dtype)
    running_var = rng.uniform(0.5, 2.0, size=shape[1]).astype(dtype)
    y = kernels.batchnorm_inference(x, gamma, beta, running_mean, running_var, eps=1e-3)
    f = [_per_channel(a.astype(np.float64), x) for a in (gamma, beta, running_mean, running_var)]
    expected = f[0] * (x.astype(np.float64) - f[2]) / np.sqrt(f[3] + 1e-3) + f[1]
    assert y.shape == x.shape and y.dtype == dtype
    _close(y, expected, dtype, scale=10.0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_out_buffers_are_filled_and_returned(dtype):
    rng = np.random.default_rng(6)
    x, gamma, beta = _batch((6, 5, 3), dtype, rng)
    y, mean, invstd = np.empty_like(x), np.empty(5, dtype), np.empty(5, dtype)
    got = kernels.batchnorm_forward(x, gamma, beta, out=y, mean_out=mean, invstd_out=invstd)
    assert got[0] is y and got[1] is mean and got[2] is invstd
    expected = kernels.batchnorm_forward(x, gamma, beta)
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_array_equal(a, b)

    yi = np.empty_like(x)
    assert kernels.batchnorm_inference(x, gamma, beta, mean, 1 / invstd**2, out=yi) is yi

    dy = rng.normal(size=x.shape).astype(dtype)
    dx, dgamma, dbeta = np.empty_like(x), np.empty(5, dtype), np.empty(5, dtype)
    got = kernels.batchnorm_backward(
        dy, x, gamma, mean, invstd, dx_out=dx, dgamma_out=dgamma, dbeta_out=dbeta
    )
    assert got[0] is dx and got[1] is dgamma and got[2] is dbeta
    for a, b in zip(got, kernels.batchnorm_backward(dy, x, gamma, mean, invstd), strict=True):
        np.testing.assert_array_equal(a, b)


def _state(size, dtype, rng, positive=False):
    a = rng.normal(size=size)
    return (np.abs(a) if positive else a).astype(dtype)


def _opt_close(actual, expected, dtype):
    rtol = 1e-4 if dtype == np.float32 else 1e-6
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * np.abs(expected).max())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_adam_follows_transcription(size, weight_decay, dtype):
    """100 steps of Adam (AdamW when weight_decay > 0) against a float64 transcription."""
    rng = np.random.default_rng(7)
    lr, beta1, beta2, eps = 1e-2, 0.9, 0.999, 1e-8
    param = _state(size, dtype, rng)
    m = np.zeros(size, dtype)
    v = np.zeros(size, dtype)
    p64, m64, v64 = param.astype(np.float64), np.zeros(size), np.zeros(size)
    for step in range(1, 101):
        grad = _state(size, dtype, rng)
        result = kernels.adam_update(param, grad, m, v, step, lr, beta1, beta2, eps, weight_decay)
        assert result is None
        g = grad.astype(np.float64)
        p64 = p64 - lr * weight_decay * p64
        m64 = beta1 * m64 + (1 - beta1) * g
        v64 = beta2 * v64 + (1 - beta2) * g * g
        mhat = m64 / (1 - beta1**step)
        vhat = v64 / (1 - beta2**step)
        p64 = p64 - lr * mhat / (np.sqrt(vhat) + eps)
    _opt_close(m, m64, dtype)
    _opt_close(v, v64, dtype)
    _opt_close(param, p64, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", SIZES)
def test_momentum_follows_transcription(size, dtype):
    rng = np.random.default_rng(8)
    lr, beta = 0.05, 0.9
    param, velocity = _state(size, dtype, rng), np.zeros(size, dtype)
    p64, v64 = param.astype(np.float64), np.zeros(size)
    for _ in range(100):
        grad = _state(size, dtype, rng)
        assert kernels.momentum_update(param, grad, velocity, lr, beta) is None
        v64 = beta * v64 + (1 - beta) * grad.astype(np.float64)
        p64 = p64 - lr * v64
    _opt_close(velocity, v64, dtype)
    _opt_close(param, p64, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", SIZES)
def test_rmsprop_follows_transcription(size, dtype):
    rng = np.random.default_rng(9)
    lr, beta, eps = 1e-2, 0.99, 1e-8
    param, sq = _state(size, dtype, rng), _state(size, dtype, rng, positive=True)
    p64, s64 = param.astype(np.float64), sq.astype(np.float64)
    for _ in range(100):
        grad = _state(size, dtype, rng)
        assert kernels.rmsprop_update(param, grad, sq, lr, beta, eps) is None
        g = grad.astype(np.float64)
        s64 = beta * s64 + (1 - beta) * g * g
        p64 = p64 - lr * g / (np.sqrt(s64) + eps)
    _opt_close(sq, s64, dtype)
    _opt_close(param, p64, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_sgd_follows_transcription(size, weight_decay, dtype):
    rng = np.random.default_rng(10)
    lr = 0.05
    param = _state(size, dtype, rng)
    p64 = param.astype(np.float64)
    for _ in range(100):
        grad = _state(size, dtype, rng)
        assert kernels.sgd_update(param, grad, lr, weight_decay) is None
        p64 = p64 - lr * (grad.astype(np.float64) + weight_decay * p64)
    _opt_close(param, p64, dtype)


# float64 transcriptions of one update: (p, g, states, t, scalars) -> (p, states).
def _adam64(p, g, states, t, scalars):
    (m, v), (lr, beta1, beta2, eps, weight_decay) = states, scalars
    m, v = beta1 * m + (1 - beta1) * g, beta2 * v + (1 - beta2) * g * g
    p = p - lr * weight_decay * p - lr * (m / (1 - beta1**t)) / (np.sqrt(v / (1 - beta2**t)) + eps)
    return p, (m, v)


def _momentum64(p, g, states, t, scalars):
    (velocity,), (lr, beta) = states, scalars
    velocity = beta * velocity + (1 - beta) * g
    return p - lr * velocity, (velocity,)


def _rmsprop64(p, g, states, t, scalars):
    (sq,), (lr, beta, eps) = states, scalars
    sq = beta * sq + (1 - beta) * g * g
    return p - lr * g / (np.sqrt(sq) + eps), (sq,)


def _sgd64(p, g, states, t, scalars):
    lr, weight_decay = scalars
    return p - lr * (g + weight_decay * p), ()


PLANS = {  # plan class, its transcription, its state count, its step's scalars (t first for Adam)
    "adam": (kernels.AdamPlan, _adam64, 2, (1e-2, 0.9, 0.999, 1e-8, 0.1)),
    "momentum": (kernels.MomentumPlan, _momentum64, 1, (0.05, 0.9)),
    "rmsprop": (kernels.RMSpropPlan, _rmsprop64, 1, (1e-2, 0.99, 1e-8)),
    "sgd": (kernels.SGDPlan, _sgd64, 0, (0.05, 0.01)),
}


@pytest.mark.parametrize("kind", PLANS)
def test_update_plans_follow_transcription(kind):
    """A plan's step (the batched C kernels: one call per run of arrays of one dtype) over
    arrays of several sizes and both dtypes, 50 steps against the float64 transcription."""
    cls, update, n_states, scalars = PLANS[kind]
    rng = np.random.default_rng(12)
    dtypes = [np.float32, np.float32, np.float64, np.float32, np.float64]
    params = [_state(size, dtype, rng) for size, dtype in zip([1, 7, 17, 1029, 4099], dtypes)]
    states = [[_state(p.size, p.dtype, rng, positive=True) for p in params] for _ in range(n_states)]
    p64 = [p.astype(np.float64) for p in params]
    s64 = [[s[i].astype(np.float64) for s in states] for i in range(len(params))]
    grads = [np.empty_like(p) for p in params]
    plan = cls(params, grads, *states)
    for t in range(1, 51):
        for g in grads:
            g[...] = rng.normal(size=g.size)
        assert (plan.step(t, *scalars) if kind == "adam" else plan.step(*scalars)) is None
        for i, g in enumerate(grads):
            p64[i], s64[i] = update(p64[i], g.astype(np.float64), s64[i], t, scalars)
    for i, p in enumerate(params):
        _opt_close(p, p64[i], p.dtype)
        for s, s_ref in zip(states, s64[i]):
            _opt_close(s[i], s_ref, p.dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_optimizers_accept_any_matching_shape(dtype):
    """Updates are elementwise: a (3, 4, 5) parameter is one run of 60 values."""
    rng = np.random.default_rng(11)
    param = _state((3, 4, 5), dtype, rng)
    grad = _state((3, 4, 5), dtype, rng)
    expected = param.astype(np.float64) - 0.1 * grad
    kernels.sgd_update(param, grad, 0.1)
    _opt_close(param, expected, dtype)

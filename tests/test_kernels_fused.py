"""The fused batchnorm + ReLU kernels: equal to the unfused composition, and to numpy.

`batchnorm_relu_forward`, `batchnorm_relu_inference` and `batchnorm_relu_backward` against
(1) the unfused research kernels (batchnorm then `numpy.maximum(y, 0)`; the mask
`numpy.where(y > 0, dy, 0)` then batchnorm backward), bit for bit, since the C code does the
same arithmetic; (2) independent numpy transcriptions in float64; (3) central finite
differences (float64) for the backward. Then the checks: bad input refused with one
ValueError/TypeError naming the argument, before any C runs; and `BatchNormPlan(relu=True)`.
"""

import numpy as np
import pytest

from research import kernels
from tests.test_kernels_numerics import DTYPES, _axes, _batch, _close, _numeric_gradient, _per_channel, _shapes
from tests.test_kernels_numerics import ref_backward as bn_ref_backward
from tests.test_kernels_numerics import ref_forward as bn_ref_forward
from tests.test_kernels_validation import F32, C, N, _readonly, _strided, forward_args, inference_args
from tests.test_kernels_validation import backward_args as unfused_backward_args

# (N, C) and NCHW, odd sizes, c = 1, inner = 1 with spatial axes, channels over strips, and an
# NCHW input over 4 MiB (the channel-group path), (N, C) inputs over 16 MiB (four rows a sweep,
# then the rest; the backward's apply one row a sweep for 1023 float32 channels).
SHAPES = _shapes((2, 1), (3, 7), (64, 128), (2, 1, 1, 1), (5, 3, 4, 4), (2, 3, 5, 7), (1, 4, 3, 3),
                 (7, 1, 3), (2, 1030, 3), (9, 4097), (3, 8291), (6, 19, 97, 97), (1027, 4099), (4101, 1023))


def ref_forward(x, gamma, beta, eps):
    """y = relu(batchnorm(x)), mean, biased var, invstd, all float64: numpy's batchnorm, then the ReLU."""
    y, mean, var, invstd = bn_ref_forward(x, gamma, beta, eps)
    return np.maximum(y, 0.0), mean, var, invstd


def ref_backward(dy, x, gamma, beta, eps):
    """dx, dgamma, dbeta of relu(batchnorm(x)), float64: the ReLU's mask, then numpy's batchnorm backward."""
    z = bn_ref_forward(x, gamma, beta, eps)[0]
    return bn_ref_backward(dy.astype(np.float64) * (z > 0), x, gamma, eps)


# --- equal to the unfused composition, bit for bit ---------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_forward_equals_batchnorm_then_relu(shape, dtype):
    rng = np.random.default_rng(0)
    x, gamma, beta = _batch(shape, dtype, rng)
    c = shape[1]
    stats = [rng.normal(size=c).astype(dtype), rng.uniform(0.5, 2, size=c).astype(dtype)]
    fused_stats, plain_stats = [s.copy() for s in stats], [s.copy() for s in stats]
    y, mean, invstd = kernels.batchnorm_relu_forward(x, gamma, beta, 1e-5, *fused_stats, 0.2)
    y0, mean0, invstd0 = kernels.batchnorm_forward(x, gamma, beta, 1e-5, *plain_stats, 0.2)
    assert y.dtype == mean.dtype == invstd.dtype == dtype and y.shape == shape
    np.testing.assert_array_equal(y, np.maximum(y0, 0))
    np.testing.assert_array_equal(mean, mean0)
    np.testing.assert_array_equal(invstd, invstd0)
    for fused, plain in zip(fused_stats, plain_stats, strict=True):
        np.testing.assert_array_equal(fused, plain)
    assert (y >= 0).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_backward_equals_mask_then_batchnorm_backward(shape, dtype):
    rng = np.random.default_rng(1)
    x, gamma, beta = _batch(shape, dtype, rng)
    dy = rng.normal(size=shape).astype(dtype)
    y, mean, invstd = kernels.batchnorm_relu_forward(x, gamma, beta)
    got = kernels.batchnorm_relu_backward(dy, y, x, gamma, mean, invstd)
    masked = np.where(y > 0, dy, 0).astype(dtype)
    for a, b in zip(got, kernels.batchnorm_backward(masked, x, gamma, mean, invstd), strict=True):
        assert a.dtype == dtype
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_inference_equals_batchnorm_inference_then_relu(shape, dtype):
    rng = np.random.default_rng(2)
    x, gamma, beta = _batch(shape, dtype, rng)
    rm = rng.normal(size=shape[1]).astype(dtype)
    rv = rng.uniform(0.5, 2.0, size=shape[1]).astype(dtype)
    y = kernels.batchnorm_relu_inference(x, gamma, beta, rm, rv, eps=1e-3)
    np.testing.assert_array_equal(y, np.maximum(kernels.batchnorm_inference(x, gamma, beta, rm, rv, 1e-3), 0))
    expected = np.maximum(
        _per_channel(gamma.astype(np.float64), x) * (x - _per_channel(rm.astype(np.float64), x))
        / np.sqrt(_per_channel(rv.astype(np.float64), x) + 1e-3) + _per_channel(beta.astype(np.float64), x), 0)
    _close(y, expected, dtype, scale=10.0)


# --- against numpy in float64 and finite differences -------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_forward_and_backward_match_numpy(shape, dtype):
    rng = np.random.default_rng(3)
    x, gamma, beta = _batch(shape, dtype, rng)
    dy = rng.normal(size=shape).astype(dtype)
    y, mean, invstd = kernels.batchnorm_relu_forward(x, gamma, beta, 1e-5)
    ry, rmean, _, rinvstd = ref_forward(x, gamma, beta, 1e-5)
    _close(mean, rmean, dtype)
    _close(invstd, rinvstd, dtype)
    _close(y, ry, dtype, scale=10.0)
    dx, dgamma, dbeta = kernels.batchnorm_relu_backward(dy, y, x, gamma, mean, invstd)
    rdx, rdgamma, rdbeta = ref_backward(dy, x, gamma, beta, 1e-5)
    # The mask may differ from the reference's where y rounds to 0 in float32: none of
    # these seeds puts a value within rounding of 0.
    m = x.size // shape[1]
    _close(dbeta, rdbeta, dtype, scale=np.sqrt(m) * 10)
    _close(dgamma, rdgamma, dtype, scale=np.sqrt(m) * 10)
    _close(dx, rdx, dtype, scale=100.0)


@pytest.mark.parametrize("shape", _shapes((2, 1), (3, 7), (16, 5), (5, 3, 4, 4), (2, 3, 5, 7), (7, 1, 3)))
def test_backward_matches_finite_differences(shape):
    """d/d(x, gamma, beta) of loss = sum(w * relu(batchnorm(x))), float64."""
    rng = np.random.default_rng(4)
    x, gamma, beta = _batch(shape, np.float64, rng)
    w = rng.normal(size=shape)

    def loss():
        return float(np.sum(w * kernels.batchnorm_relu_forward(x, gamma, beta, eps=1e-5)[0]))

    y, mean, invstd = kernels.batchnorm_relu_forward(x, gamma, beta, eps=1e-5)
    dx, dgamma, dbeta = kernels.batchnorm_relu_backward(w, y, x, gamma, mean, invstd)
    some = rng.choice(x.size, size=min(x.size, 60), replace=False)
    channels = np.arange(shape[1])
    for analytic, a, indices in [(dx, x, some), (dgamma, gamma, channels), (dbeta, beta, channels)]:
        numeric = _numeric_gradient(loss, a, indices, h=1e-6)
        np.testing.assert_allclose(analytic.reshape(-1)[indices], numeric, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", _shapes((2, 1), (3, 7), (5, 3, 4, 4), (9, 4097)))
def test_running_statistics_follow_pytorch_rule(shape, dtype):
    rng = np.random.default_rng(5)
    c = shape[1]
    running_mean, running_var = np.zeros(c, dtype), np.ones(c, dtype)
    ref_mean, ref_var = np.zeros(c), np.ones(c)
    for _ in range(20):
        x, gamma, beta = _batch(shape, dtype, rng)
        kernels.batchnorm_relu_forward(x, gamma, beta, 1e-5, running_mean, running_var, 0.1)
        x64 = x.astype(np.float64)
        ref_mean = 0.9 * ref_mean + 0.1 * x64.mean(axis=_axes(x))
        ref_var = 0.9 * ref_var + 0.1 * x64.var(axis=_axes(x), ddof=1)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(running_mean, ref_mean, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(running_var, ref_var, rtol=rtol, atol=rtol)


def test_gradient_is_zero_where_relu_is_off():
    """All of a channel below zero (beta very negative): dgamma, dbeta and dx are 0 there."""
    rng = np.random.default_rng(6)
    x, gamma, beta = _batch((8, 3), np.float64, rng)
    beta[1] = -100.0
    y, mean, invstd = kernels.batchnorm_relu_forward(x, gamma, beta)
    assert (y[:, 1] == 0).all()
    dx, dgamma, dbeta = kernels.batchnorm_relu_backward(np.ones_like(x), y, x, gamma, mean, invstd)
    assert dgamma[1] == dbeta[1] == 0 and (dx[:, 1] == 0).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_out_buffers_are_filled_and_returned(dtype):
    rng = np.random.default_rng(7)
    x, gamma, beta = _batch((6, 5, 3), dtype, rng)
    y, mean, invstd = np.empty_like(x), np.empty(5, dtype), np.empty(5, dtype)
    got = kernels.batchnorm_relu_forward(x, gamma, beta, out=y, mean_out=mean, invstd_out=invstd)
    assert got[0] is y and got[1] is mean and got[2] is invstd
    yi = np.empty_like(x)
    assert kernels.batchnorm_relu_inference(x, gamma, beta, mean, 1 / invstd**2, out=yi) is yi
    dy = rng.normal(size=x.shape).astype(dtype)
    dx, dgamma, dbeta = np.empty_like(x), np.empty(5, dtype), np.empty(5, dtype)
    got = kernels.batchnorm_relu_backward(dy, y, x, gamma, mean, invstd,
                                          dx_out=dx, dgamma_out=dgamma, dbeta_out=dbeta)
    assert got[0] is dx and got[1] is dgamma and got[2] is dbeta
    for a, b in zip(got, kernels.batchnorm_relu_backward(dy, y, x, gamma, mean, invstd), strict=True):
        np.testing.assert_array_equal(a, b)


# --- bad input ----------------------------------------------------------------------------------

def backward_args():
    """The unfused backward's arguments and the forward's output y (the ReLU's mask)."""
    args = unfused_backward_args()
    return {"dy": args.pop("dy"), "y": np.maximum(args["x"], 0), **args}


FUNCTIONS = {
    "forward": (kernels.batchnorm_relu_forward, forward_args),
    "inference": (kernels.batchnorm_relu_inference, inference_args),
    "backward": (kernels.batchnorm_relu_backward, backward_args),
}

# (function, argument, bad value made from the valid arguments, exception, message regex)
# fmt: off
BAD = [
    ("forward", "x", lambda a: [[1.0] * 3] * 4, TypeError, r"x must be a numpy\.ndarray"),
    ("forward", "x", lambda a: a["x"].astype(np.int64), TypeError, r"x must have dtype float32 or float64"),
    ("forward", "x", lambda a: a["x"].astype(">f4"), TypeError, r"native byte order"),
    ("forward", "x", lambda a: _strided(a["x"]), ValueError, r"x must be C-contiguous"),
    ("forward", "x", lambda a: np.ones(5, F32), ValueError, r"x must have shape \(N, C\) or \(N, C, \*spatial\)"),
    ("forward", "x", lambda a: np.ones((1, C), F32), ValueError, r"x must have at least 2 values per channel"),
    ("forward", "x", lambda a: np.ones((1, C, 1, 1), F32), ValueError, r"x must have at least 2 values"),
    ("forward", "gamma", lambda a: a["gamma"].astype(np.float64), TypeError,
     r"gamma must have dtype float32 like the other arrays, got float64"),
    ("forward", "beta", lambda a: np.ones(C + 1, F32), ValueError, r"beta must have shape \(3,\)"),
    ("forward", "running_var", lambda a: None, ValueError, r"running_mean and running_var must be given together"),
    ("forward", "running_mean", lambda a: _readonly(a["running_mean"]), ValueError, r"running_mean is read-only"),
    ("forward", "eps", lambda a: 0.0, ValueError, r"eps must be a finite number > 0"),
    ("forward", "eps", lambda a: float("nan"), ValueError, r"eps must be a finite number > 0"),
    ("forward", "momentum", lambda a: 1.5, ValueError, r"momentum must be in \[0, 1\]"),
    ("forward", "momentum", lambda a: -0.1, ValueError, r"momentum must be in \[0, 1\]"),
    ("forward", "out", lambda a: np.empty((N, C + 1), F32), ValueError, r"out must have shape \(4, 3\)"),
    ("forward", "out", lambda a: a["x"], ValueError, r"out shares memory with x"),
    ("forward", "mean_out", lambda a: a["running_mean"], ValueError, r"running_mean shares memory with mean_out"),
    ("inference", "x", lambda a: a["x"].astype(np.float16), TypeError, r"x must have dtype float32 or float64"),
    ("inference", "running_var", lambda a: np.ones(C - 1, F32), ValueError, r"running_var must have shape \(3,\)"),
    ("inference", "eps", lambda a: -1.0, ValueError, r"eps must be a finite number > 0"),
    ("inference", "out", lambda a: a["x"], ValueError, r"out shares memory with x"),
    ("backward", "y", lambda a: np.ones((N, C + 1), F32), ValueError, r"y must have shape \(4, 3\) \(the shape of x\)"),
    ("backward", "y", lambda a: a["y"].astype(np.float64), TypeError, r"y must have dtype float32"),
    ("backward", "y", lambda a: _strided(a["y"]), ValueError, r"y must be C-contiguous"),
    ("backward", "y", lambda a: list(a["y"]), TypeError, r"y must be a numpy\.ndarray"),
    ("backward", "dy", lambda a: a["dy"].T.copy(), ValueError, r"dy must have shape \(4, 3\)"),
    ("backward", "invstd", lambda a: np.ones((C, 1), F32), ValueError, r"invstd must have shape \(3,\)"),
    ("backward", "dx_out", lambda a: a["y"], ValueError, r"dx_out shares memory with y"),
    ("backward", "dx_out", lambda a: a["dy"], ValueError, r"dx_out shares memory with dy"),
    ("backward", "dgamma_out", lambda a: _readonly(a["gamma"]), ValueError, r"dgamma_out is read-only"),
]
# fmt: on


@pytest.mark.parametrize("function, name, bad, error, match",
                         [pytest.param(*row, id=f"{row[0]}-{row[1]}-{i}") for i, row in enumerate(BAD)])
def test_bad_input_is_rejected_before_c_runs(function, name, bad, error, match):
    func, make_args = FUNCTIONS[function]
    args = make_args()
    args[name] = bad(args)
    before = {k: v.copy() for k, v in args.items() if isinstance(v, np.ndarray)}
    with pytest.raises(error, match=match):
        func(**args)
    for key, value in before.items():
        np.testing.assert_array_equal(args[key], value, err_msg=f"{key} was written")


def test_read_only_inputs_may_repeat():
    """Arrays only read may be the same (dy as y, gamma as beta) or read-only."""
    args = backward_args()
    args["dy"] = args["y"] = _readonly(args["y"])
    dx, _, _ = kernels.batchnorm_relu_backward(**args)
    masked = np.where(args["y"] > 0, args["y"], 0).astype(F32)
    np.testing.assert_array_equal(dx, kernels.batchnorm_backward(masked, args["x"], args["gamma"],
                                                                 args["mean"], args["invstd"])[0])


# --- the plan ----------------------------------------------------------------------------------


def _plan_arrays(shape, dtype, rng):
    x, gamma, beta = _batch(shape, dtype, rng)
    c = shape[1]
    return dict(x=x, gamma=gamma, beta=beta, y=np.empty_like(x), mean=np.empty(c, dtype),
                invstd=np.empty(c, dtype), running_mean=np.zeros(c, dtype), running_var=np.ones(c, dtype),
                dy=rng.normal(size=shape).astype(dtype), dx=np.empty_like(x), dgamma=np.empty(c, dtype),
                dbeta=np.empty(c, dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", _shapes((2, 1), (64, 128), (5, 3, 4, 4)))
def test_plan_with_relu_matches_the_functions(shape, dtype):
    rng = np.random.default_rng(8)
    a = _plan_arrays(shape, dtype, rng)
    plan = kernels.BatchNormPlan(**a, eps=1e-4, momentum=0.2, relu=True)
    assert plan.relu is True and "relu" in repr(plan)
    rm, rv = a["running_mean"].copy(), a["running_var"].copy()
    for _ in range(3):
        a["x"][...] = rng.normal(size=shape)
        plan.forward()
        y, mean, invstd = kernels.batchnorm_relu_forward(a["x"], a["gamma"], a["beta"], 1e-4, rm, rv, 0.2)
        np.testing.assert_array_equal(a["y"], y)
        np.testing.assert_array_equal(a["running_var"], rv)
        plan.backward()
        for got, want in zip((a["dx"], a["dgamma"], a["dbeta"]),
                             kernels.batchnorm_relu_backward(a["dy"], y, a["x"], a["gamma"], mean, invstd),
                             strict=True):
            np.testing.assert_array_equal(got, want)
    plan.inference()
    np.testing.assert_array_equal(a["y"], kernels.batchnorm_relu_inference(a["x"], a["gamma"], a["beta"], rm, rv, 1e-4))


def test_plan_with_relu_refuses_dx_sharing_y():
    """The fused backward reads y, so dx must not be y's buffer (the plain plan allows it)."""
    a = _plan_arrays((4, 3), np.float32, np.random.default_rng(9))
    a["dx"] = a["y"]
    kernels.BatchNormPlan(**a)
    with pytest.raises(ValueError, match=r"dx shares memory with y"):
        kernels.BatchNormPlan(**a, relu=True)


def test_plan_relu_must_be_a_bool():
    a = _plan_arrays((4, 3), np.float32, np.random.default_rng(10))
    with pytest.raises(TypeError, match=r"^relu must be True or False, got 1 \(int\)$"):
        kernels.BatchNormPlan(**a, relu=1)
    assert kernels.BatchNormPlan(**a, relu=np.True_).relu is True  # numpy's bool is a bool


def test_plan_with_relu_needs_its_arrays_as_the_plain_one():
    a = _plan_arrays((4, 3), np.float32, np.random.default_rng(11))
    for name in ("running_mean", "running_var", "dy", "dx", "dgamma", "dbeta"):
        a[name] = None
    plan = kernels.BatchNormPlan(**a, relu=True)
    plan.forward()
    with pytest.raises(ValueError, match=r"inference\(\) needs running_mean and running_var"):
        plan.inference()
    with pytest.raises(ValueError, match=r"backward\(\) needs dy, dx, dgamma and dbeta"):
        plan.backward()

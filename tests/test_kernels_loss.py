"""kernels.softmax_cross_entropy against an independent numpy reference and finite differences,
in float32 and float64, and its refusals of bad input before any C runs."""

import numpy as np
import pytest

from research import kernels
from tests.test_kernels_validation import _unaligned

DTYPES = [np.float32, np.float64]
TOL = {np.float32: 2e-6, np.float64: 1e-13}


def reference(s, y, scale):
    """Loss, hit and gradient in float64, the textbook way (log-sum-exp with the row maximum)."""
    s = s.astype(np.float64)
    shifted = s - s.max(axis=1, keepdims=True)
    logsum = np.log(np.exp(shifted).sum(axis=1))
    rows = np.arange(len(y))
    loss = logsum - shifted[rows, y]
    p = np.exp(shifted - logsum[:, None])
    p[rows, y] -= 1.0
    return loss, (s.argmax(axis=1) == y).astype(np.float64), scale * p


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n, k, offset", [(64, 10, 0.0), (7, 1, 0.0), (5, 3, 1e4), (33, 100, -50.0), (0, 4, 0.0)])
def test_matches_the_reference(n, k, offset, dtype):
    rng = np.random.default_rng(n + k)
    s = (rng.standard_normal((n, k)) * 3 + offset).astype(dtype)
    y = rng.integers(0, k, n)
    loss, hit, grad = kernels.softmax_cross_entropy(s, y, 1.0 / max(n, 1))
    want_loss, want_hit, want_grad = reference(s, y, 1.0 / max(n, 1))
    assert loss.dtype == hit.dtype == grad.dtype == dtype
    assert loss.shape == hit.shape == (n,) and grad.shape == (n, k)
    np.testing.assert_allclose(loss, want_loss, rtol=TOL[dtype], atol=TOL[dtype])
    np.testing.assert_array_equal(hit, want_hit)
    np.testing.assert_allclose(grad, want_grad, rtol=TOL[dtype], atol=TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
def test_the_gradient_is_the_mean_loss_derivative_by_finite_differences(dtype):
    rng = np.random.default_rng(3)
    n, k = 6, 4
    s = rng.standard_normal((n, k))
    y = rng.integers(0, k, n)
    _, _, grad = kernels.softmax_cross_entropy(s.astype(dtype), y, 1.0 / n)
    step = 1e-6
    numeric = np.empty_like(s)
    for i in range(n):
        for c in range(k):
            up, down = s.copy(), s.copy()
            up[i, c] += step
            down[i, c] -= step
            mean = [kernels.softmax_cross_entropy(v, y, 1.0)[0].mean() for v in (up, down)]
            numeric[i, c] = (mean[0] - mean[1]) / (2 * step)
    np.testing.assert_allclose(grad, numeric, atol=1e-6 if dtype is np.float32 else 1e-9)


def test_ties_predict_the_first_maximum_and_huge_logits_stay_finite():
    s = np.array([[2.0, 2.0, 1.0], [1e30, -1e30, 0.0], [0.0, 0.0, 0.0]], np.float32)
    y = np.array([1, 0, 0])
    loss, hit, grad = kernels.softmax_cross_entropy(s, y)
    assert hit.tolist() == [0.0, 1.0, 1.0]  # argmax is the first of equal maxima
    assert np.isfinite(loss).all() and np.isfinite(grad).all()
    assert loss[1] == 0.0 and loss[2] == pytest.approx(np.log(3))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_row_with_a_nan_or_a_plus_inf_logit_is_a_miss(dtype):
    """An all-NaN row counted as a hit when its label was 0 (the first index stood as the
    maximum), in every clone alike; [inf, 0, 0] too, with a NaN loss."""
    s = np.array([[np.nan] * 3, [0.1, np.nan, 0.5], [np.inf, 0.0, 0.0], [-np.inf, 1.0, 0.0]], dtype)
    y = np.array([0, 2, 0, 1])
    before = kernels.isa()
    try:
        for isa in kernels.supported_isas():
            kernels.use_isa(isa)
            loss, hit, _ = kernels.softmax_cross_entropy(s, y)
            assert hit.tolist() == [0.0, 0.0, 0.0, 1.0], isa
            assert np.isnan(loss[:3]).all() and np.isfinite(loss[3])
    finally:
        kernels.use_isa(before)


def test_buffers_are_filled_and_returned():
    s = np.random.default_rng(0).standard_normal((8, 5))
    y = np.arange(8) % 5
    buffers = np.empty(8), np.empty(8), np.empty((8, 5))
    got = kernels.softmax_cross_entropy(s, y, 0.5, loss_out=buffers[0], hit_out=buffers[1], grad_out=buffers[2])
    assert all(a is b for a, b in zip(got, buffers))
    for a, b in zip(got, reference(s, y, 0.5)):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)


S = np.zeros((4, 3))
Y = np.array([0, 1, 2, 1])


@pytest.mark.parametrize("args, kwargs, error, message", [
    ((S, Y + 1), {}, ValueError, r"labels must be class indices in \[0, 3\), got values in \[1, 3\]"),
    ((S, Y - 1), {}, ValueError, r"labels must be class indices in \[0, 3\), got values in \[-1, 1\]"),
    ((S, Y.astype(np.int32)), {}, TypeError, r"labels must have dtype int64 .*astype\(numpy.int64\)"),
    ((S, Y.astype(float)), {}, TypeError, r"labels must have dtype int64"),
    ((S, Y[:3]), {}, ValueError, r"labels must have shape \(4,\)"),
    ((S, Y.tolist()), {}, TypeError, r"labels must be a numpy.ndarray of int64"),
    ((S, np.repeat(Y, 2)[::2]), {}, ValueError, r"labels must be C-contiguous"),
    ((S, _unaligned(Y)), {}, ValueError, r"labels is not aligned to its 8-byte values"),
    ((S, np.ma.array(Y)), {}, TypeError, r"labels is a masked array"),
    ((np.zeros(4), Y), {}, ValueError, r"logits must have shape \(N, K\) with K >= 1"),
    ((np.zeros((4, 0)), Y), {}, ValueError, r"logits must have shape \(N, K\) with K >= 1"),
    ((S.astype(np.int64), Y), {}, TypeError, r"logits must have dtype float32 or float64"),
    ((S, Y, 0.0), {}, ValueError, r"scale must be a finite number > 0 \(1 / N"),
    ((S, Y, float("nan")), {}, ValueError, r"scale must be a finite number > 0"),
    ((S, Y), {"grad_out": np.empty((4, 3), np.float32)}, TypeError, r"grad_out must have dtype float64"),
    ((S, Y), {"loss_out": np.empty(3)}, ValueError, r"loss_out must have shape \(4,\)"),
    ((S, Y), {"grad_out": S}, ValueError, r"grad_out shares memory with logits"),
])
def test_bad_input_is_refused_before_c_runs(args, kwargs, error, message):
    before = [a.copy() for a in (*args, *kwargs.values()) if isinstance(a, np.ndarray)]
    with pytest.raises(error, match=message):
        kernels.softmax_cross_entropy(*args, **kwargs)
    after = [a for a in (*args, *kwargs.values()) if isinstance(a, np.ndarray)]
    assert all(a.tobytes() == b.tobytes() for a, b in zip(before, after))  # bytes: np.empty may hold NaN

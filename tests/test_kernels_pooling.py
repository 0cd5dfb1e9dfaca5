"""The CNN's C max pooling over window corners (research.kernels._pooling.CornerPoolPlan): against
numpy's maximum and a first-maximum routing written here, on every instruction set this CPU
runs, bit for bit; and its checks, which keep bad arrays from reaching C."""

import re

import numpy as np
import pytest

from research import kernels
from research.kernels._pooling import CornerPoolPlan

DTYPES = [np.float32, np.float64]


def arrays(c=3, s=5, tail=3, dtype=np.float64, seed=0):
    """x with ties (values from three levels) and a NaN, y, dy and a dx full of garbage."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 3, size=(c, 4 * s + tail)).astype(dtype)
    x[0, 2 * s + 1] = np.nan                     # window 1 of channel 0: its maximum is NaN
    dy = rng.standard_normal((c, s)).astype(dtype)
    return x, np.empty((c, s), dtype), dy, np.full_like(x, 7.0)


def reference(x, dy, s):
    """numpy's maximum in the kernel's order; each window's gradient at its first corner equal
    to the maximum, the last corner when none is."""
    c0, c1, c2, c3 = (x[:, q * s:(q + 1) * s] for q in range(4))
    y = np.maximum(np.maximum(c2, c3), np.maximum(c0, c1))
    dx = np.zeros_like(x)
    left = np.ones(y.shape, bool)
    for q, corner in enumerate((c0, c1, c2)):
        first = left & (corner == y)
        dx[:, q * s:(q + 1) * s] = np.where(first, dy, 0)
        left &= ~first
    dx[:, 3 * s:4 * s] = np.where(left, dy, 0)
    return y, dx


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("isa", kernels.supported_isas())
def test_forward_and_backward_match_the_reference_on_every_instruction_set(isa, dtype):
    x, y, dy, dx = arrays(c=4, s=37, tail=5, dtype=dtype)
    before = kernels.isa()
    kernels.use_isa(isa)
    try:
        plan = CornerPoolPlan(x, y, dy, dx)
    finally:
        kernels.use_isa(before)
    plan.forward()
    plan.backward()
    want_y, want_dx = reference(x, dy, 37)
    assert np.isnan(y[0, 1])                     # a NaN maximum is not hidden
    assert y.tobytes() == want_y.tobytes()
    assert dx.tobytes() == want_dx.tobytes()     # the values no window covers are zeroed too


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_plan_reads_its_arrays_anew_on_every_call(dtype):
    x, y, dy, dx = arrays(dtype=dtype, tail=0)
    plan = CornerPoolPlan(x, y, dy, dx)
    for seed in (1, 2):
        x[...], _, dy[...], _ = arrays(dtype=dtype, tail=0, seed=seed)
        plan.forward()
        plan.backward()
        want_y, want_dx = reference(x, dy, 5)
        np.testing.assert_array_equal(y, want_y)
        np.testing.assert_array_equal(dx, want_dx)


def bad(name, value):
    """The four arrays with one replaced."""
    x, y, dy, dx = arrays()
    given = {"x": x, "y": y, "dy": dy, "dx": dx}
    given[name] = value(given) if callable(value) else value
    return given


@pytest.mark.parametrize(
    ("given", "error", "message"),
    [
        (bad("x", [[1.0]]), TypeError, "x must be a numpy.ndarray of float32 or float64"),
        (bad("x", np.zeros((3, 23), np.int64)), TypeError, "x must have dtype float32 or float64"),
        (bad("dy", lambda a: a["dy"].astype(np.float32)), TypeError, "dy must have dtype float64 like the other"),
        (bad("x", lambda a: np.asfortranarray(a["x"])), ValueError, "x must be C-contiguous"),
        (bad("x", np.zeros(23)), ValueError, "x must have shape (C, L)"),
        (bad("y", [[0.0]]), TypeError, "y must be a numpy.ndarray of float64"),
        (bad("y", lambda a: np.empty((3, 6))), ValueError, "4 * s <= L"),
        (bad("y", lambda a: np.empty((2, 5))), ValueError, "4 * s <= L"),
        (bad("dx", lambda a: np.empty((3, 22))), ValueError, "dx must have shape (3, 23) (the shape of x)"),
        (bad("dy", lambda a: np.empty((3, 4))), ValueError, "dy must have shape (3, 5) (the shape of y)"),
        (bad("dx", lambda a: a["x"]), ValueError, "dx shares memory with x"),
        (bad("y", lambda a: a["x"].reshape(-1)[:15].reshape(3, 5)), ValueError, "y shares memory with x"),
    ],
)
def test_bad_arrays_are_refused_before_any_c_runs(given, error, message):
    with pytest.raises(error, match=re.escape(message)):
        CornerPoolPlan(**given)


def test_a_read_only_output_is_refused():
    x, y, dy, dx = arrays()
    y.flags.writeable = False
    with pytest.raises(ValueError, match="y is read-only but is written"):
        CornerPoolPlan(x, y, dy, dx)

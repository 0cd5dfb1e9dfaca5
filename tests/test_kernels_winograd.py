"""The CNN's Winograd convolution (research.kernels._winograd.WinogradPlan): against a direct 3x3
convolution written here in float64, on every instruction set this CPU runs, the same bits on
each; and its checks, which keep bad arrays from reaching C."""

import re

import numpy as np
import pytest

from research import kernels
from research.kernels._winograd import WinogradPlan

DTYPES = [np.float32, np.float64]
TOLERANCE = {np.float32: 2e-5, np.float64: 1e-12}  # relative to the largest value


def corners(a):
    """(K, H, W, n) -> (K, 4, H * W / 4 * n): each corner of the 2x2 tiles one run, the plan's z."""
    k, h, w, n = a.shape
    return a.reshape(k, h // 2, 2, w // 2, 2, n).transpose(0, 2, 4, 1, 3, 5).reshape(k, 4, -1)


def reference(x, weight, dz):
    """z, dweight and dx of the "same" cross-correlation, shift by shift in float64."""
    x, weight = x.astype(np.float64), weight.astype(np.float64)
    c, h, w, n = x.shape
    k = weight.shape[0]
    dy = dz.astype(np.float64).reshape(k, 2, 2, h // 2, w // 2, n).transpose(0, 3, 1, 4, 2, 5).reshape(k, h, w, n)
    padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    z, dweight, dpadded = np.zeros((k, h, w, n)), np.zeros(weight.shape), np.zeros_like(padded)
    for u in range(3):
        for v in range(3):
            window = padded[:, u:u + h, v:v + w]
            z += np.einsum("oc,chwn->ohwn", weight[:, :, u, v], window)
            dweight[:, :, u, v] = np.einsum("ohwn,chwn->oc", dy, window)
            dpadded[:, u:u + h, v:v + w] += np.einsum("oc,ohwn->chwn", weight[:, :, u, v], dy)
    return corners(z), dweight, dpadded[:, 1:-1, 1:-1]


def arrays(c=3, k=4, h=6, w=4, n=70, dtype=np.float64, seed=0):
    """x, weight, z, dz, dweight, dx (the written ones full of garbage)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((c, h, w, n)).astype(dtype)
    weight = rng.standard_normal((k, c, 3, 3)).astype(dtype)
    dz = rng.standard_normal((k, 4, h * w // 4 * n)).astype(dtype)
    return x, weight, np.full_like(dz, 7.0), dz, np.full_like(weight, 7.0), np.full_like(x, 7.0)


def close(got, want, dtype):
    np.testing.assert_allclose(got, want, rtol=0, atol=TOLERANCE[dtype] * np.abs(want).max())


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(3, 4, 6, 4, 70), (16, 16, 4, 4, 64), (1, 2, 2, 2, 1)])
def test_the_convolution_and_its_gradients_on_every_instruction_set(shape, dtype):
    c, k, h, w, n = shape
    results = {}
    for isa in kernels.supported_isas():
        x, weight, z, dz, dweight, dx = arrays(c, k, h, w, n, dtype)
        before = kernels.isa()
        kernels.use_isa(isa)
        try:
            plan = WinogradPlan(x, weight, z, dz, dweight, dx)
        finally:
            kernels.use_isa(before)
        plan.forward()
        plan.backward()
        want_z, want_dweight, want_dx = reference(x, weight, dz)
        close(z, want_z, dtype)
        close(dweight, want_dweight, dtype)
        close(dx, want_dx, dtype)
        results[isa] = z.tobytes() + dx.tobytes()
    assert len(set(results.values())) == 1, f"instruction sets differ: {sorted(results)}"  # a study's curves too


@pytest.mark.parametrize("dtype", DTYPES)
def test_without_an_input_gradient_and_with_new_values_every_call(dtype):
    x, weight, z, dz, dweight, _ = arrays(dtype=dtype)
    plan = WinogradPlan(x, weight, z, dz, dweight)
    for seed in (1, 2):
        new = arrays(dtype=dtype, seed=seed)
        x[...], weight[...], dz[...] = new[0], new[1], new[3]
        plan.forward()
        plan.backward()
        want_z, want_dweight, _ = reference(x, weight, dz)
        close(z, want_z, dtype)
        close(dweight, want_dweight, dtype)


def bad(name, value):
    """The six arrays with one replaced."""
    given = dict(zip(("x", "weight", "z", "dz", "dweight", "dx"), arrays()))
    given[name] = value(given) if callable(value) else value
    return given


@pytest.mark.parametrize(
    ("given", "error", "message"),
    [
        (bad("x", [[1.0]]), TypeError, "x must be a numpy.ndarray of float32 or float64"),
        (bad("x", lambda a: a["x"].astype(np.int64)), TypeError, "x must have dtype float32 or float64"),
        (bad("x", np.zeros((3, 5, 4, 70))), ValueError, "x must have shape (C, H, W, n) with H and W even"),
        (bad("x", lambda a: a["x"][..., ::2]), ValueError, "x must be C-contiguous"),
        (bad("weight", [1.0]), TypeError, "weight must be a numpy.ndarray of float64"),
        (bad("weight", lambda a: a["weight"][..., :2]), ValueError, "weight must have shape (4, 3, 3, 3)"),
        (bad("weight", lambda a: a["weight"][0]), ValueError, "weight must have shape (K, 3, 3, 3)"),
        (bad("dz", lambda a: a["dz"].astype(np.float32)), TypeError, "dz must have dtype float64 like the other"),
        (bad("z", lambda a: a["z"][:, :3]), ValueError, "z must have shape (4, 4, 420)"),
        (bad("dx", lambda a: np.empty((3, 6, 4, 69))), ValueError, "dx must have shape (3, 6, 4, 70)"),
        (bad("dx", lambda a: a["x"]), ValueError, "dx shares memory with x"),
        (bad("dweight", lambda a: a["weight"]), ValueError, "dweight shares memory with weight"),
    ],
)
def test_bad_arrays_are_refused_before_any_c_runs(given, error, message):
    with pytest.raises(error, match=re.escape(message)):
        WinogradPlan(**given)


def test_a_read_only_output_is_refused():
    x, weight, z, dz, dweight, dx = arrays()
    z.flags.writeable = False
    with pytest.raises(ValueError, match="z is read-only but is written"):
        WinogradPlan(x, weight, z, dz, dweight, dx)

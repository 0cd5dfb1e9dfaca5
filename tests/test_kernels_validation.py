"""research.kernels rejects bad input before any C runs, naming the argument at fault.

Each case starts from valid arguments, replaces one by a bad value (built from the valid
ones, so aliasing cases can point at another argument) and expects the exception type
and a message naming the argument.
"""

import inspect
import traceback
import warnings

import numpy as np
import pytest

from research import kernels
from research.kernels._codegen import checked
from research.kernels._table import KERNELS as DECLARED
from research.kernels._table import SGD_UPDATE

N, C = 4, 3
F32 = np.float32


def _readonly(a):
    a = a.copy()
    a.flags.writeable = False
    return a


def _strided(a):
    """A copy of a with the same shape whose last axis is not contiguous."""
    wide = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
    wide[..., ::2] = a
    return wide[..., ::2]


def _unaligned(a):
    """A writable copy of a whose values start one byte past an aligned address."""
    raw = np.zeros(a.nbytes + 1, np.uint8)
    view = np.frombuffer(raw.data, a.dtype, count=a.size, offset=1).reshape(a.shape)
    view[...] = a
    assert not view.flags.aligned and view.flags.writeable
    return view


def _masked(a):
    return np.ma.array(a, mask=np.zeros(a.shape, bool))


def _overlapping_views(a):
    """Two arrays of a's shape and dtype sharing all but one element."""
    flat = np.zeros(a.size + 1, a.dtype)
    return flat[:-1].reshape(a.shape), flat[1:].reshape(a.shape)


def forward_args():
    rng = np.random.default_rng(0)
    return dict(
        x=rng.normal(size=(N, C)).astype(F32),
        gamma=np.ones(C, F32),
        beta=np.zeros(C, F32),
        eps=1e-5,
        running_mean=np.zeros(C, F32),
        running_var=np.ones(C, F32),
        momentum=0.1,
    )


def inference_args():
    args = forward_args()
    del args["momentum"]
    return args


def backward_args():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(N, C)).astype(F32)
    return dict(
        dy=rng.normal(size=(N, C)).astype(F32),
        x=x,
        gamma=np.ones(C, F32),
        mean=x.mean(axis=0),
        invstd=np.ones(C, F32),
    )


def _update_args(*states, **scalars):
    """Valid optimizer arguments: param and grad (10 values), zeroed states, the scalars."""
    arrays = dict(param=np.ones(10, F32), grad=np.ones(10, F32))
    return arrays | {name: np.zeros(10, F32) for name in states} | scalars


def adam_args():
    return _update_args(
        "m", "v", step=1, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0
    )


def momentum_args():
    return _update_args("velocity", lr=0.1, beta=0.9)


def rmsprop_args():
    return _update_args("sq", lr=0.1, beta=0.99, eps=1e-8)


def sgd_args():
    return _update_args(lr=0.1, weight_decay=0.0)


KERNELS = {
    "batchnorm_forward": (kernels.batchnorm_forward, forward_args),
    "batchnorm_inference": (kernels.batchnorm_inference, inference_args),
    "batchnorm_backward": (kernels.batchnorm_backward, backward_args),
    "adam_update": (kernels.adam_update, adam_args),
    "momentum_update": (kernels.momentum_update, momentum_args),
    "rmsprop_update": (kernels.rmsprop_update, rmsprop_args),
    "sgd_update": (kernels.sgd_update, sgd_args),
}


def _value(v):
    """A bad value given as is."""
    return lambda args: v


def _edit(name, f):
    """A bad value made by f from the valid argument `name` (or that argument itself)."""
    return lambda args: f(args[name])


def _same(a):
    return a


def _cases(kernel, rows):
    """pytest params from rows of (id, argument, bad value, exception type, message regex)."""
    return [
        pytest.param(kernel, name, bad, error, match, id=f"{kernel}-{id}")
        for id, name, bad, error, match in rows
    ]


def _array_rows(first, other, written, written_like=None):
    """Rows every kernel shares: its first array, another input, an array it writes.

    written_like names the valid argument whose shape `written` has, when `written` is an
    output buffer that the valid arguments leave out.
    """
    # fmt: off
    return [
        ("first-list", first, _value([1.0] * 6), TypeError, rf"{first} must be a numpy\.ndarray"),
        ("first-int", first, _edit(first, lambda a: a.astype(np.int64)), TypeError,
         rf"{first} must have dtype float32 or float64.*int64"),
        ("first-float16", first, _edit(first, lambda a: a.astype(np.float16)), TypeError,
         rf"{first} must have dtype float32 or float64.*float16"),
        ("first-swapped", first, _edit(first, lambda a: a.astype(">f4")), TypeError,
         rf"{first} must have dtype float32 or float64 \(native byte order\)"),
        ("first-strided", first, _edit(first, _strided), ValueError,
         rf"{first} must be C-contiguous"),
        ("other-tuple", other, _value((1.0, 2.0, 3.0)), TypeError,
         rf"{other} must be a numpy\.ndarray"),
        ("mixed", other, _edit(other, lambda a: a.astype(np.float64)), TypeError,
         rf"{other} must have dtype float32 like the other arrays, got float64"),
        ("other-int", other, _edit(other, lambda a: a.astype(np.int32)), TypeError,
         rf"{other} must have dtype float32.*int32"),
        ("other-strided", other, _edit(other, _strided), ValueError,
         rf"{other} must be C-contiguous"),
        ("readonly", written, _edit(written_like or written, _readonly), ValueError,
         rf"{written} is read-only"),
        ("first-unaligned", first, _edit(first, _unaligned), ValueError,
         rf"{first} is not aligned to its 4-byte values .*pass {first}\.copy\(\)"),
        ("other-unaligned", other, _edit(other, _unaligned), ValueError, rf"{other} is not aligned"),
        ("written-unaligned", written, _edit(written_like or written, _unaligned), ValueError,
         rf"{written} is not aligned"),
        ("first-masked", first, _edit(first, _masked), TypeError,
         rf"{first} is a masked array, whose mask the kernels would ignore"),
        ("other-masked", other, _edit(other, _masked), TypeError, rf"{other} is a masked array"),
    ]
    # fmt: on


def _scalar_rows(name, bad_values, match):
    return [
        (f"{name}={v}", name, _value(v), ValueError, rf"{name} must be {match}") for v in bad_values
    ]


NOT_POSITIVE = [0.0, -1e-5, float("nan"), float("inf")]
NOT_NONNEGATIVE = [-0.1, float("nan"), float("inf")]
NOT_BETA = [-0.1, 1.0, 1.5, float("nan")]

# fmt: off
CASES = [
    *_cases("batchnorm_forward", [
        *_array_rows("x", "gamma", "running_mean"),
        ("x-1d", "x", _value(np.ones(5, F32)), ValueError,
         r"x must have shape \(N, C\) or \(N, C, \*spatial\)"),
        ("one-row", "x", _value(np.ones((1, C), F32)), ValueError,
         r"x must have at least 2 values per channel"),
        ("one-pixel", "x", _value(np.ones((1, C, 1, 1), F32)), ValueError,
         r"x must have at least 2 values per channel"),
        ("gamma-length", "gamma", _value(np.ones(C + 1, F32)), ValueError,
         r"gamma must have shape \(3,\) \(\(C,\): one value per channel of x\), got \(4,\)"),
        ("beta-2d", "beta", _value(np.ones((1, C), F32)), ValueError,
         r"beta must have shape \(3,\)"),
        ("running_var-length", "running_var", _value(np.ones(C - 1, F32)), ValueError,
         r"running_var must have shape \(3,\)"),
        ("running_var-readonly", "running_var", _edit("running_var", _readonly), ValueError,
         r"running_var is read-only"),
        ("running_var-missing", "running_var", _value(None), ValueError,
         r"running_mean and running_var must be given together"),
        ("running_mean-missing", "running_mean", _value(None), ValueError,
         r"running_mean and running_var must be given together"),
        *_scalar_rows("eps", NOT_POSITIVE, r"a finite number > 0"),
        *_scalar_rows("momentum", [-0.1, 1.1, float("nan")], r"in \[0, 1\]"),
        ("out-shape", "out", _value(np.empty((N, C + 1), F32)), ValueError,
         r"out must have shape \(4, 3\) \(the shape of x\)"),
        ("out-dtype", "out", _value(np.empty((N, C))), TypeError, r"out must have dtype float32"),
        ("out-readonly", "out", _edit("x", _readonly), ValueError, r"out is read-only"),
        ("out-strided", "out", _edit("x", _strided), ValueError, r"out must be C-contiguous"),
        ("mean_out-dtype", "mean_out", _value(np.empty(C)), TypeError,
         r"mean_out must have dtype float32"),
        ("mean_out-shape", "mean_out", _value(np.empty(C + 1, F32)), ValueError,
         r"mean_out must have shape \(3,\)"),
        ("invstd_out-readonly", "invstd_out", _edit("gamma", _readonly), ValueError,
         r"invstd_out is read-only"),
        ("out-is-x", "out", _edit("x", _same), ValueError, r"out shares memory with x"),
        ("mean_out-is-gamma", "mean_out", _edit("gamma", _same), ValueError,
         r"mean_out shares memory with gamma"),
        ("running-stats-same", "running_var", _edit("running_mean", _same), ValueError,
         r"running_mean shares memory with running_var"),
        ("running_mean-is-beta", "running_mean", _edit("beta", _same), ValueError,
         r"running_mean shares memory with beta"),
        ("running_mean-in-x", "running_mean", _edit("x", lambda x: x[0]), ValueError,
         r"running_mean shares memory with x"),
    ]),
    *_cases("batchnorm_inference", [
        *_array_rows("x", "running_var", "out", "x"),
        ("x-1d", "x", _value(np.ones(5, F32)), ValueError,
         r"x must have shape \(N, C\) or \(N, C, \*spatial\)"),
        ("running_mean-length", "running_mean", _value(np.ones(C + 2, F32)), ValueError,
         r"running_mean must have shape \(3,\)"),
        *_scalar_rows("eps", NOT_POSITIVE, r"a finite number > 0"),
        ("out-shape", "out", _value(np.empty((N + 1, C), F32)), ValueError,
         r"out must have shape \(4, 3\)"),
        ("out-is-x", "out", _edit("x", _same), ValueError, r"out shares memory with x"),
    ]),
    *_cases("batchnorm_backward", [
        *_array_rows("x", "dy", "dx_out", "x"),
        ("dy-shape", "dy", _value(np.ones((N, C + 1), F32)), ValueError,
         r"dy must have shape \(4, 3\) \(the shape of x\)"),
        ("gamma-length", "gamma", _value(np.ones(C + 1, F32)), ValueError,
         r"gamma must have shape \(3,\)"),
        ("mean-dtype", "mean", _value(np.ones(C)), TypeError, r"mean must have dtype float32"),
        ("invstd-2d", "invstd", _value(np.ones((C, 1), F32)), ValueError,
         r"invstd must have shape \(3,\)"),
        ("dx_out-shape", "dx_out", _value(np.empty((C, N), F32)), ValueError,
         r"dx_out must have shape \(4, 3\)"),
        ("dgamma_out-readonly", "dgamma_out", _edit("gamma", _readonly), ValueError,
         r"dgamma_out is read-only"),
        ("dbeta_out-dtype", "dbeta_out", _value(np.empty(C)), TypeError,
         r"dbeta_out must have dtype float32"),
        ("dx_out-is-dy", "dx_out", _edit("dy", _same), ValueError, r"dx_out shares memory with dy"),
        ("dbeta_out-is-mean", "dbeta_out", _edit("mean", _same), ValueError,
         r"dbeta_out shares memory with mean"),
    ]),
    *_cases("adam_update", [
        *_array_rows("param", "grad", "m"),
        ("param-readonly", "param", _edit("param", _readonly), ValueError, r"param is read-only"),
        ("v-readonly", "v", _edit("v", _readonly), ValueError, r"v is read-only"),
        ("grad-shape", "grad", _value(np.ones(11, F32)), ValueError,
         r"grad must have shape \(10,\) \(the shape of param\), got \(11,\)"),
        ("m-reshaped", "m", _value(np.ones((2, 5), F32)), ValueError, r"m must have shape \(10,\)"),
        ("v-strided", "v", _edit("v", _strided), ValueError, r"v must be C-contiguous"),
        ("step-0", "step", _value(0), ValueError, r"step must be an integer >= 1"),
        ("step-negative", "step", _value(-3), ValueError, r"step must be an integer >= 1"),
        ("step-float", "step", _value(1.0), TypeError, r"step must be an integer"),
        ("step-bool", "step", _value(True), TypeError, r"step must be an integer"),
        ("step-str", "step", _value("1"), TypeError, r"step must be an integer"),
        *_scalar_rows("lr", NOT_NONNEGATIVE, r"a finite number >= 0"),
        *_scalar_rows("beta1", NOT_BETA, r"in \[0, 1\)"),
        *_scalar_rows("beta2", NOT_BETA, r"in \[0, 1\)"),
        *_scalar_rows("eps", NOT_POSITIVE, r"a finite number > 0"),
        *_scalar_rows("weight_decay", NOT_NONNEGATIVE, r"a finite number >= 0"),
        ("m-is-v", "v", _edit("m", _same), ValueError, r"m shares memory with v"),
        ("grad-is-param", "grad", _edit("param", _same), ValueError,
         r"param shares memory with grad"),
        ("m-is-grad", "m", _edit("grad", _same), ValueError, r"m shares memory with grad"),
    ]),
    *_cases("momentum_update", [
        *_array_rows("param", "grad", "velocity"),
        ("velocity-shape", "velocity", _value(np.zeros(9, F32)), ValueError,
         r"velocity must have shape \(10,\)"),
        *_scalar_rows("lr", NOT_NONNEGATIVE, r"a finite number >= 0"),
        *_scalar_rows("beta", NOT_BETA, r"in \[0, 1\)"),
        ("velocity-is-param", "velocity", _edit("param", _same), ValueError,
         r"param shares memory with velocity"),
    ]),
    *_cases("rmsprop_update", [
        *_array_rows("param", "sq", "sq"),
        ("grad-shape", "grad", _value(np.zeros((10, 1), F32)), ValueError,
         r"grad must have shape \(10,\)"),
        *_scalar_rows("lr", NOT_NONNEGATIVE, r"a finite number >= 0"),
        *_scalar_rows("beta", NOT_BETA, r"in \[0, 1\)"),
        *_scalar_rows("eps", NOT_POSITIVE, r"a finite number > 0"),
        ("sq-is-grad", "sq", _edit("grad", _same), ValueError, r"sq shares memory with grad"),
    ]),
    *_cases("sgd_update", [
        *_array_rows("param", "grad", "param"),
        *_scalar_rows("lr", NOT_NONNEGATIVE, r"a finite number >= 0"),
        *_scalar_rows("weight_decay", NOT_NONNEGATIVE, r"a finite number >= 0"),
        ("grad-view-of-param", "grad", _edit("param", lambda a: a[::-1][::-1]), ValueError,
         r"param shares memory with grad"),
    ]),
]
# fmt: on


def _snapshot(args):
    return {k: v.copy() for k, v in args.items() if isinstance(v, np.ndarray)}


@pytest.mark.parametrize("kernel, name, bad, error, match", CASES)
def test_bad_input_is_rejected_before_c_runs(kernel, name, bad, error, match):
    func, make_args = KERNELS[kernel]
    args = make_args()
    args[name] = bad(args)
    before = _snapshot(args)
    with pytest.raises(error, match=match):
        func(**args)
    for key, value in before.items():
        np.testing.assert_array_equal(args[key], value, err_msg=f"{key} was written")


@pytest.mark.parametrize(
    "kernel, first, second, like",
    [
        ("batchnorm_forward", "mean_out", "invstd_out", "gamma"),
        ("batchnorm_forward", "running_mean", "running_var", "gamma"),
        ("batchnorm_forward", "out", "x", "x"),
        ("batchnorm_backward", "dgamma_out", "dbeta_out", "gamma"),
        ("batchnorm_backward", "dx_out", "dy", "x"),
        ("adam_update", "m", "v", "m"),
        ("momentum_update", "param", "velocity", "param"),
        ("rmsprop_update", "param", "sq", "param"),
        ("sgd_update", "param", "grad", "param"),
    ],
)
def test_partially_overlapping_views_are_rejected(kernel, first, second, like):
    """Views of one buffer sharing all but one element: caught by the exact check."""
    func, make_args = KERNELS[kernel]
    args = make_args()
    args[first], args[second] = _overlapping_views(args[like])
    with pytest.raises(ValueError, match=rf"{first} shares memory with {second}"):
        func(**args)


def test_disjoint_views_and_repeated_inputs_are_accepted():
    """Only written arrays must be separate: read-only inputs may repeat or share a buffer."""
    args = forward_args()
    stats = np.zeros((4, C), np.float32)
    args["running_mean"], args["running_var"] = stats[0], stats[1]
    args["running_var"][:] = 1.0
    y, mean, invstd = kernels.batchnorm_forward(
        **{**args, "beta": args["gamma"]}, mean_out=stats[2], invstd_out=stats[3]
    )
    assert mean.base is stats and invstd.base is stats
    np.testing.assert_allclose(mean, args["x"].mean(axis=0), rtol=1e-6)

    params = np.ones(40, np.float32)
    p, g, m, v = params.reshape(4, 10)
    kernels.adam_update(p, g, m, v, 1)
    kernels.batchnorm_backward(y, y, args["gamma"], mean, invstd)


def test_read_only_inputs_are_accepted():
    """Arrays a kernel only reads may be read-only (running stats in inference, grad)."""
    args = {
        k: _readonly(v) if isinstance(v, np.ndarray) else v for k, v in inference_args().items()
    }
    kernels.batchnorm_inference(**args)
    sgd = sgd_args()
    sgd["grad"] = _readonly(sgd["grad"])
    kernels.sgd_update(**sgd)


def test_one_row_is_enough_for_inference():
    """Inference uses running statistics, so a single sample is fine."""
    args = inference_args()
    args["x"] = args["x"][:1].copy()
    assert kernels.batchnorm_inference(**args).shape == (1, C)


def test_numpy_integer_step_is_accepted():
    args = adam_args()
    args["step"] = np.int64(3)
    kernels.adam_update(**args)


@pytest.mark.parametrize("kernel", DECLARED, ids=[k.name for k in DECLARED])
def test_functions_are_written_from_their_declarations(kernel):
    """A function takes its kernel's declared arguments; its checks are readable source."""
    func = getattr(kernels, kernel.name)
    assert sorted(inspect.signature(func).parameters) == sorted(a.keyword for a in kernel.args)
    assert f"_twin.{kernel.name}(" in inspect.getsource(func)


def test_a_stub_unlike_its_declaration_is_refused():
    with pytest.raises(TypeError, match=r"must take exactly the arguments of sgd_update"):

        @checked(SGD_UPDATE)
        def sgd_update(param, grad, lr, decay=0.0):
            """Misnamed decay."""


def test_tracebacks_show_the_check_that_failed():
    with pytest.raises(ValueError) as info:
        kernels.sgd_update(np.ones(3, F32), np.ones(4, F32), 0.1)
    lines = traceback.format_exception(info.value)
    assert any("_buffer('grad', grad, _twin, _like" in line for line in lines), lines
    assert not any("During handling" in line for line in lines), lines  # the hand-over does not chain


def _fast_only(monkeypatch, func):
    """Make the full checks of `func` fail the test: the call must stay on its common path."""

    def handed_over(*args, **kwargs):
        raise AssertionError(f"{func.__name__} handed a common call to its full checks")

    monkeypatch.setitem(func.__globals__, "_checked", handed_over)


@pytest.mark.parametrize("kernel", sorted(KERNELS))
@pytest.mark.parametrize("buffers", [False, True], ids=["allocating", "out-buffers"])
def test_common_calls_take_the_inline_path_and_match_the_full_checks(kernel, buffers, monkeypatch):
    """Plain arrays of the right dtype and shape (the training loop's case) never reach the full
    checks, and the inline path computes exactly what the full checks' path does."""
    func, make_args = KERNELS[kernel]
    args = make_args()
    for name, shape in (("out", (N, C)), ("mean_out", C), ("invstd_out", C), ("dx_out", (N, C)),
                        ("dgamma_out", C), ("dbeta_out", C)):
        if buffers and name in inspect.signature(func).parameters:
            args[name] = np.empty(shape, F32)
    full = {key: value.copy() if isinstance(value, np.ndarray) else value for key, value in args.items()}
    expected = func.__globals__["_checked"](**full)
    with monkeypatch.context() as patch:
        _fast_only(patch, func)
        got = func(**args)
    returned = [() if r is None else r if isinstance(r, tuple) else (r,) for r in (expected, got)]
    assert len(returned[0]) == len(returned[1])
    for a, b in zip(*returned):
        assert np.array_equal(a, b)
    for key, value in args.items():
        if isinstance(value, np.ndarray):
            assert np.array_equal(value, full[key]), key  # the arrays updated in place, alike


def relu_backward_args():
    args = backward_args()
    return {"dy": args.pop("dy"), "y": np.maximum(args["x"], 0)} | args


def loss_args():
    rng = np.random.default_rng(2)
    return dict(logits=rng.normal(size=(N, C)).astype(F32), labels=np.arange(N) % C)


# Every kernel of the table, for the overlap tests.
EVERY_KERNEL = KERNELS | {
    "batchnorm_relu_forward": (kernels.batchnorm_relu_forward, forward_args),
    "batchnorm_relu_inference": (kernels.batchnorm_relu_inference, inference_args),
    "batchnorm_relu_backward": (kernels.batchnorm_relu_backward, relu_backward_args),
    "softmax_cross_entropy": (kernels.softmax_cross_entropy, loss_args),
}


def test_the_overlap_tests_cover_every_kernel():
    assert sorted(EVERY_KERNEL) == sorted(k.name for k in DECLARED)


def _arrays(kernel):
    """Valid arguments of `kernel`, with its outputs added as arrays of their own (by keyword)."""
    func, make_args = EVERY_KERNEL[kernel]
    returned = func(**make_args())
    returned = returned if isinstance(returned, tuple) else (returned,)
    outputs = next(k for k in DECLARED if k.name == kernel).outputs
    return make_args() | {a.keyword: r for a, r in zip(outputs, returned)}


def _same_object_pairs():
    """Every pair of array arguments of one shape and dtype, per kernel: the pairs that can be
    one object. The inline path tests only those with a written array in them."""
    for declared in sorted(DECLARED, key=lambda k: k.name):
        given = _arrays(declared.name)
        arrays = [a for a in declared.arrays if a.keyword in given]
        for i, first in enumerate(arrays):
            for second in arrays[i + 1 :]:
                a, b = given[first.keyword], given[second.keyword]
                if (a.shape, a.dtype) == (b.shape, b.dtype):
                    yield pytest.param(declared.name, first.keyword, second.keyword, first.written or second.written,
                                       id=f"{declared.name}-{first.keyword}-{second.keyword}")


@pytest.mark.parametrize("kernel, first, second, written", list(_same_object_pairs()))
def test_one_object_in_two_places_is_refused_only_when_written(kernel, first, second, written):
    """One array passed for two arguments: refused, naming both, when the kernel writes either
    (whichever path the call takes); computed as usual when both are only read."""
    func, _ = EVERY_KERNEL[kernel]
    args = _arrays(kernel)
    args[second] = args[first]
    if written:
        with pytest.raises(ValueError, match=rf"({first} shares memory with {second}|{second} shares memory with {first})"):
            func(**args)
    else:
        func(**args)


@pytest.mark.parametrize("kind", [np.float16, np.float32, np.float64])
def test_numpy_float_scalars_are_checked_as_doubles_without_warnings(kind):
    """A numpy float32 compared with the largest double compares in float32, where that is inf:
    inf passed and every valid call warned of the overflow. Now inf and NaN are refused and a
    valid value goes through quietly, in functions and plans alike."""
    p, g = np.ones(4, np.float32), np.ones(4, np.float32)
    plan = kernels.SGDPlan([p], [g])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for bad in (kind("inf"), kind("-inf"), kind("nan")):
            with pytest.raises(ValueError, match=r"^lr must be a finite number >= 0, got "):
                kernels.sgd_update(p, g, bad)
            with pytest.raises(ValueError, match=r"^lr must be a finite number >= 0, got "):
                plan.step(bad)
            with pytest.raises(ValueError, match=r"^eps must be a finite number > 0, got "):
                kernels.batchnorm_forward(np.ones((4, 2), np.float32), np.ones(2, np.float32), np.zeros(2, np.float32),
                                          bad)
        assert np.array_equal(p, np.ones(4, np.float32))  # nothing reached C
        kernels.sgd_update(p, g, kind(0.5))
        plan.step(kind(0.25))
    assert np.array_equal(p, np.full(4, 0.25, np.float32))
    with pytest.raises(TypeError, match=r"^lr must be a finite number >= 0, got ndarray "):
        kernels.sgd_update(p, g, np.array([1e-3]))


def test_booleans_are_no_rates():
    """True passed as 1.0 (a bool is an int to Python), in functions and plans alike."""
    p, g = np.ones(4, np.float32), np.ones(4, np.float32)
    plan = kernels.SGDPlan([p], [g])
    for flag in (True, np.bool_(False)):
        with pytest.raises(TypeError, match=r"^lr must be a finite number >= 0, got bool"):
            kernels.sgd_update(p, g, flag)
        with pytest.raises(TypeError, match=r"^lr must be a finite number >= 0, got bool"):
            plan.step(flag)
        with pytest.raises(TypeError, match=r"^eps must be a finite number > 0, got bool"):
            kernels.batchnorm_forward(np.ones((4, 2), np.float32), np.ones(2, np.float32), np.zeros(2, np.float32),
                                      eps=flag)
    assert np.array_equal(p, np.ones(4, np.float32))

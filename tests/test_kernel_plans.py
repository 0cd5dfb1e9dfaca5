"""Plans (research.kernels.*Plan): checked once, then the very C calls of the functions.

Each plan must give the functions' results bit for bit (same kernels, same arguments), refuse at
creation every input the functions refuse (same exception type, a message naming the argument),
and the optimizers built on plans must re-bind when the gradient arrays they are given change.
"""

import copy
import inspect
import pickle

import numpy as np
import pytest
from research._step import call as packed_step
from research._step import make as make_packed
from research_plugins.optimizers import SGD, Adam, AdamW, Momentum, RMSprop

from research import kernels
from research.kernels import _plans
from research.kernels._c import F32, F64
from research.nn.model import MLP
from tests.test_kernels_validation import _masked, _overlapping_views, _readonly, _strided, _unaligned

DTYPES = [np.float32, np.float64]
SHAPES = [(2, 1), (7, 5), (3, 4, 5, 6), (4, 3, 2)]


def _same(a, b, what=""):
    """Equal bit for bit (NaN payloads and signed zeros included)."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape, what
    assert a.tobytes() == b.tobytes(), what


def _bn_arrays(shape, dtype, seed=0, running=True, backward=True):
    """Valid BatchNormPlan arguments for x of `shape` (each array its own memory)."""
    rng = np.random.default_rng(seed)
    c = shape[1]
    args = dict(
        x=(rng.normal(size=shape) * 3 + 1).astype(dtype),
        gamma=rng.uniform(0.5, 2, c).astype(dtype),
        beta=rng.normal(size=c).astype(dtype),
        y=np.empty(shape, dtype),
        mean=np.empty(c, dtype),
        invstd=np.empty(c, dtype),
    )
    if running:
        args["running_mean"] = rng.normal(size=c).astype(dtype)
        args["running_var"] = rng.uniform(0.5, 2, c).astype(dtype)
    if backward:
        args["dy"] = rng.normal(size=shape).astype(dtype)
        args["dx"] = np.empty(shape, dtype)
        args["dgamma"] = np.empty(c, dtype)
        args["dbeta"] = np.empty(c, dtype)
    return args


# --- batchnorm: the same results as the functions --------------------------------------------


@pytest.mark.parametrize("running", [True, False], ids=["running", "no-running"])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_batchnorm_plan_matches_functions(dtype, shape, running):
    args = _bn_arrays(shape, dtype, running=running)
    ref = {k: v.copy() for k, v in args.items()}  # the functions' own copies of every array
    plan = kernels.BatchNormPlan(**args, eps=1e-3, momentum=0.25)
    rng = np.random.default_rng(5)
    for step in range(3):
        # New contents in the bound arrays (identity fixed), the same for the reference.
        new_x = (rng.normal(size=shape) * (step + 1) - step).astype(dtype)
        new_dy = rng.normal(size=shape).astype(dtype)
        args["x"][...] = ref["x"][...] = new_x
        args["dy"][...] = ref["dy"][...] = new_dy

        assert plan.forward() is None
        y, mean, invstd = kernels.batchnorm_forward(
            ref["x"], ref["gamma"], ref["beta"], 1e-3, ref.get("running_mean"),
            ref.get("running_var"), 0.25,
        )
        _same(args["y"], y, "y")
        _same(args["mean"], mean, "mean")
        _same(args["invstd"], invstd, "invstd")
        if running:
            _same(args["running_mean"], ref["running_mean"], "running_mean")
            _same(args["running_var"], ref["running_var"], "running_var")

        assert plan.backward() is None
        dx, dgamma, dbeta = kernels.batchnorm_backward(
            ref["dy"], ref["x"], ref["gamma"], mean, invstd
        )
        _same(args["dx"], dx, "dx")
        _same(args["dgamma"], dgamma, "dgamma")
        _same(args["dbeta"], dbeta, "dbeta")

        if running:
            assert plan.inference() is None
            y_eval = kernels.batchnorm_inference(
                ref["x"], ref["gamma"], ref["beta"], ref["running_mean"], ref["running_var"], 1e-3
            )
            _same(args["y"], y_eval, "inference y")


def test_batchnorm_plan_reads_parameters_as_they_are_now():
    """gamma and beta are bound too: an in-place update shows in the next call."""
    args = _bn_arrays((6, 3), np.float64)
    plan = kernels.BatchNormPlan(**args)
    plan.forward()
    args["gamma"] *= 2.0
    args["beta"] += 1.0
    plan.forward()
    y, _, _ = kernels.batchnorm_forward(args["x"], args["gamma"], args["beta"])
    _same(args["y"], y)


def test_batchnorm_plan_attributes_are_the_bound_arrays():
    args = _bn_arrays((4, 3), np.float32)
    plan = kernels.BatchNormPlan(**args, eps=1e-4, momentum=0.3)
    for name, a in args.items():
        assert getattr(plan, name) is a, name
    assert plan.eps == 1e-4 and plan.momentum == 0.3
    assert "BatchNormPlan(x=(4, 3) float32" in repr(plan)


def test_one_sample_plan_runs_inference_and_backward_only():
    """A plan for a batch of one is made (evaluation needs it); forward() alone refuses."""
    args = _bn_arrays((1, 3), np.float64)
    plan = kernels.BatchNormPlan(**args)
    plan.inference()
    expected = kernels.batchnorm_inference(
        args["x"], args["gamma"], args["beta"], args["running_mean"], args["running_var"]
    )
    _same(args["y"], expected)
    plan.backward()
    with pytest.raises(ValueError, match=r"x must have at least 2 values per channel"):
        plan.forward()
    one_pixel = kernels.BatchNormPlan(**_bn_arrays((1, 2, 1, 1), np.float32))
    with pytest.raises(ValueError, match=r"at least 2 values per channel"):
        one_pixel.forward()


def test_missing_parts_refuse_their_operation():
    plan = kernels.BatchNormPlan(**_bn_arrays((4, 3), np.float32, running=False, backward=False))
    plan.forward()
    with pytest.raises(ValueError, match=r"inference\(\) needs running_mean and running_var"):
        plan.inference()
    with pytest.raises(ValueError, match=r"backward\(\) needs dy, dx, dgamma and dbeta"):
        plan.backward()


# --- batchnorm: bad input refused at creation --------------------------------------------------


# (id, argument, bad value made from the valid arguments, exception, message regex)
BN_BAD = [
    ("x-list", "x", lambda a: [[1.0] * 3] * 4, TypeError, r"x must be a numpy\.ndarray"),
    ("x-int", "x", lambda a: a["x"].astype(np.int64), TypeError,
     r"x must have dtype float32 or float64.*int64"),
    ("x-float16", "x", lambda a: a["x"].astype(np.float16), TypeError, r"x must have dtype"),
    ("x-swapped", "x", lambda a: a["x"].astype(">f4"), TypeError, r"native byte order"),
    ("x-strided", "x", lambda a: _strided(a["x"]), ValueError, r"x must be C-contiguous"),
    ("x-unaligned", "x", lambda a: _unaligned(a["x"]), ValueError, r"x is not aligned to its 4-byte values"),
    ("x-masked", "x", lambda a: _masked(a["x"]), TypeError, r"x is a masked array"),
    ("x-1d", "x", lambda a: np.ones(5, np.float32), ValueError,
     r"x must have shape \(N, C\) or \(N, C, \*spatial\)"),
    ("gamma-tuple", "gamma", lambda a: (1.0, 1.0, 1.0), TypeError,
     r"gamma must be a numpy\.ndarray"),
    ("gamma-f64", "gamma", lambda a: a["gamma"].astype(np.float64), TypeError,
     r"gamma must have dtype float32 like the other arrays, got float64"),
    ("gamma-length", "gamma", lambda a: np.ones(4, np.float32), ValueError,
     r"gamma must have shape \(3,\) \(\(C,\): one value per channel of x\), got \(4,\)"),
    ("beta-strided", "beta", lambda a: _strided(a["beta"]), ValueError,
     r"beta must be C-contiguous"),
    ("y-shape", "y", lambda a: np.empty((4, 4), np.float32), ValueError,
     r"y must have shape \(4, 3\) \(the shape of x\)"),
    ("y-dtype", "y", lambda a: np.empty((4, 3)), TypeError, r"y must have dtype float32"),
    ("y-readonly", "y", lambda a: _readonly(a["y"]), ValueError, r"y is read-only"),
    ("mean-readonly", "mean", lambda a: _readonly(a["mean"]), ValueError, r"mean is read-only"),
    ("invstd-2d", "invstd", lambda a: np.empty((3, 1), np.float32), ValueError,
     r"invstd must have shape \(3,\)"),
    ("running_var-readonly", "running_var", lambda a: _readonly(a["running_var"]), ValueError,
     r"running_var is read-only"),
    ("running_mean-length", "running_mean", lambda a: np.zeros(2, np.float32), ValueError,
     r"running_mean must have shape \(3,\)"),
    ("running_var-missing", "running_var", lambda a: None, ValueError,
     r"running_mean and running_var must be given together"),
    ("running_mean-missing", "running_mean", lambda a: None, ValueError,
     r"running_mean and running_var must be given together"),
    ("dy-missing", "dy", lambda a: None, ValueError,
     r"dy, dx, dgamma and dbeta must be given together"),
    ("dbeta-missing", "dbeta", lambda a: None, ValueError,
     r"dy, dx, dgamma and dbeta must be given together"),
    ("dy-shape", "dy", lambda a: np.ones((4, 4), np.float32), ValueError,
     r"dy must have shape \(4, 3\) \(the shape of x\)"),
    ("dx-int", "dx", lambda a: np.empty((4, 3), np.int32), TypeError,
     r"dx must have dtype float32"),
    ("dgamma-readonly", "dgamma", lambda a: _readonly(a["dgamma"]), ValueError,
     r"dgamma is read-only"),
    ("dbeta-f64", "dbeta", lambda a: np.empty(3), TypeError, r"dbeta must have dtype float32"),
    *[(f"eps={v}", "eps", lambda a, v=v: v, ValueError, r"eps must be a finite number > 0")
      for v in (0.0, -1e-5, float("nan"), float("inf"))],
    *[(f"momentum={v}", "momentum", lambda a, v=v: v, ValueError, r"momentum must be in \[0, 1\]")
      for v in (-0.1, 1.1, float("nan"))],
    # aliasing: an array an operation writes shares memory with another array of that operation
    ("y-is-x", "y", lambda a: a["x"], ValueError, r"y shares memory with x"),
    ("mean-is-gamma", "mean", lambda a: a["gamma"], ValueError, r"mean shares memory with gamma"),
    ("running-stats-same", "running_var", lambda a: a["running_mean"], ValueError,
     r"running_mean shares memory with running_var"),
    ("running_mean-in-x", "running_mean", lambda a: a["x"][0], ValueError,
     r"running_mean shares memory with x"),
    ("invstd-is-running_var", "invstd", lambda a: a["running_var"], ValueError,
     r"running_var shares memory with invstd"),
    ("dx-is-dy", "dx", lambda a: a["dy"], ValueError, r"dx shares memory with dy"),
    ("dx-is-x", "dx", lambda a: a["x"], ValueError, r"dx shares memory with x"),
    ("dbeta-is-mean", "dbeta", lambda a: a["mean"], ValueError, r"dbeta shares memory with mean"),
    ("dgamma-is-gamma", "dgamma", lambda a: a["gamma"], ValueError,
     r"dgamma shares memory with gamma"),
]


@pytest.mark.parametrize(
    "name, bad, error, match", [pytest.param(*row[1:], id=row[0]) for row in BN_BAD]
)
def test_batchnorm_plan_refuses_bad_input(name, bad, error, match):
    args = _bn_arrays((4, 3), np.float32)
    scalars = {"eps": 1e-5, "momentum": 0.1}
    if name in scalars:
        scalars[name] = bad(args)
    else:
        args[name] = bad(args)
    with pytest.raises(error, match=match):
        kernels.BatchNormPlan(**args, **scalars)


@pytest.mark.parametrize(
    "first, second, like",
    [("mean", "invstd", "mean"), ("running_mean", "running_var", "mean"), ("y", "x", "x"),
     ("dgamma", "dbeta", "mean"), ("dx", "dy", "x")],
)
def test_batchnorm_plan_refuses_partially_overlapping_views(first, second, like):
    args = _bn_arrays((4, 3), np.float32)
    args[first], args[second] = _overlapping_views(args[like])
    with pytest.raises(ValueError, match=rf"{first} shares memory with {second}"):
        kernels.BatchNormPlan(**args)


def test_batchnorm_plan_accepts_what_the_functions_accept():
    """Arrays only read may repeat or share a buffer; y may double as dy (forward writes y,
    backward reads dy: never in one call); read-only x, gamma, beta and dy are fine."""
    args = _bn_arrays((5, 3), np.float64)
    stats = np.zeros((6, 3))
    names = ["mean", "invstd", "dgamma", "dbeta", "running_mean", "running_var"]
    args.update(zip(names, stats))
    args["running_var"][:] = 1.0
    args["beta"] = args["gamma"]
    args["dy"] = args["y"]
    args["x"] = _readonly(args["x"])
    plan = kernels.BatchNormPlan(**args)
    plan.forward()
    y, mean, invstd = kernels.batchnorm_forward(args["x"], args["gamma"], args["gamma"])
    _same(args["y"], y)
    plan.backward()
    dx, _, _ = kernels.batchnorm_backward(y, args["x"], args["gamma"], mean, invstd)
    _same(args["dx"], dx)


def test_plans_are_fixed_and_not_copied():
    plan = kernels.BatchNormPlan(**_bn_arrays((4, 3), np.float32))
    with pytest.raises(AttributeError, match="make a new plan"):
        plan.x = np.zeros((4, 3), np.float32)
    with pytest.raises(AttributeError):
        del plan.gamma
    with pytest.raises(AttributeError):
        plan.other = 1
    adam = kernels.AdamPlan([np.ones(3)], [np.ones(3)], [np.zeros(3)], [np.zeros(3)])
    with pytest.raises(AttributeError, match="make a new plan"):
        adam.ms = [np.zeros(3)]
    for p in (plan, adam):
        for clone in (copy.copy, copy.deepcopy, pickle.dumps):
            with pytest.raises(TypeError, match="cannot be copied or pickled"):
                clone(p)


# --- optimizer plans -----------------------------------------------------------------------------

OPT_SHAPES = [(4, 3), (3,), (2, 2, 2), (1,)]


def _opt_arrays(dtypes, n_states, seed=0):
    rng = np.random.default_rng(seed)
    params = [rng.normal(size=s).astype(d) for s, d in zip(OPT_SHAPES, dtypes)]
    grads = [rng.normal(size=p.shape).astype(p.dtype) for p in params]
    states = [[np.abs(rng.normal(size=p.shape)).astype(p.dtype) for p in params]
              for _ in range(n_states)]
    return params, grads, states


UPDATES = {
    # name: (plan class, state count, per-call function(p, g, *states, *scalars), step scalars)
    "adam": (kernels.AdamPlan, 2,
             lambda p, g, m, v, t, s: kernels.adam_update(p, g, m, v, t, *s),
             lambda t: (t, (3e-3 * t, 0.8, 0.99, 1e-7, 0.01 * (t % 2)))),
    "momentum": (kernels.MomentumPlan, 1,
                 lambda p, g, vel, t, s: kernels.momentum_update(p, g, vel, *s),
                 lambda t: (None, (0.1 / t, 0.9))),
    "rmsprop": (kernels.RMSpropPlan, 1,
                lambda p, g, sq, t, s: kernels.rmsprop_update(p, g, sq, *s),
                lambda t: (None, (0.01, 0.95, 1e-6 * t))),
    "sgd": (kernels.SGDPlan, 0,
            lambda p, g, t, s: kernels.sgd_update(p, g, *s),
            lambda t: (None, (0.1, 0.001 * t))),
}


@pytest.mark.parametrize("dtypes", [[np.float32] * 4, [np.float64] * 4,
                                    [np.float32, np.float64, np.float64, np.float32]],
                         ids=["f32", "f64", "mixed"])
@pytest.mark.parametrize("number", [float, np.float64], ids=["python", "numpy"])
@pytest.mark.parametrize("kind", UPDATES)
def test_update_plan_matches_functions(kind, dtypes, number):
    """Python's numbers take the step's C path (research._step), numpy's the Python one: both
    are the functions' updates, bit for bit."""
    cls, n_states, update, scalars = UPDATES[kind]
    params, grads, states = _opt_arrays(dtypes, n_states)
    ref_params, ref_grads = [p.copy() for p in params], [g.copy() for g in grads]
    ref_states = [[a.copy() for a in s] for s in states]
    plan = cls(params, grads, *states)
    assert len(plan) == len(params) and plan.params == tuple(params) and plan.grads == tuple(grads)
    rng = np.random.default_rng(3)
    for t in range(1, 5):
        for g, rg in zip(grads, ref_grads):
            g[...] = rg[...] = rng.normal(size=g.shape)
        step, values = scalars(t)
        values = tuple(number(v) for v in values)
        assert (plan.step(step, *values) if step is not None else plan.step(*values)) is None
        for i in range(len(params)):
            update(ref_params[i], ref_grads[i], *(s[i] for s in ref_states), step, values)
        for i in range(len(params)):
            _same(params[i], ref_params[i], f"params[{i}] at t={t}")
            for s, rs in zip(states, ref_states):
                _same(s[i], rs[i], f"state[{i}] at t={t}")


def test_a_step_is_one_c_call_per_run_of_one_dtype(monkeypatch):
    """The arrays of consecutive updates of one dtype go to C together, in one call of the
    batched kernel, in the plan's order: three runs here (float32, float64, float32), on the
    step's C path (research._step) and on its Python one (a numpy scalar takes it)."""
    packed, calls = [], []
    monkeypatch.setattr(_plans, "make_packed", lambda runs, *rest: packed.append(runs) or make_packed(runs, *rest))
    for twin in (F32, F64):
        def counted(isa, count, arrays, *scalars, real=twin.sgd_updates, dtype=twin.dtype):
            calls.append((dtype, count))
            real(isa, count, arrays, *scalars)
        monkeypatch.setattr(twin, "sgd_updates", counted)
    dtypes = [np.float32, np.float32, np.float64, np.float32]
    params, grads, _ = _opt_arrays(dtypes, 0)
    ref = [p.copy() for p in params]
    plan = kernels.SGDPlan(params, grads)
    plan.step(0.1, 0.01)
    assert [(kernel, count) for kernel, _, count, _ in packed[0]] == \
        [(F32.packed["sgd_update"], 2), (F64.packed["sgd_update"], 1), (F32.packed["sgd_update"], 1)]
    assert calls == []
    plan.step(np.float64(0.1), 0.01)
    assert calls == [(np.dtype(np.float32), 2), (np.dtype(np.float64), 1), (np.dtype(np.float32), 1)]
    for p, r, g in zip(params, ref, grads):
        kernels.sgd_update(r, g, 0.1, 0.01)
        kernels.sgd_update(r, g, 0.1, 0.01)
        _same(p, r)


def test_the_packed_step_refuses_what_a_plan_would_never_give_it():
    """research._step is private, but a wrong call is an error, never a crash."""
    with pytest.raises(TypeError, match="make"):
        make_packed([], (), 1, None)
    with pytest.raises(TypeError, match="each run must be a tuple of 4 items"):
        make_packed(((1, 2),), (), 1, None)
    with pytest.raises(ValueError, match="a run needs a kernel and its arrays"):
        make_packed(((0, 0, 1, 0),), (), 1, None)
    with pytest.raises(ValueError, match="invalid PyCapsule"):
        packed_step(object(), 1.0)
    params, grads, _ = _opt_arrays([np.float64], 0)
    plan = kernels.SGDPlan(params, grads)
    assert packed_step(plan._packed, 0.1) is False  # a scalar short: nothing called
    assert packed_step(plan._packed, 0.1, float("nan")) is False


@pytest.mark.parametrize("kind", UPDATES)
def test_updates_run_in_order_on_shared_memory(kind):
    """An array given to two updates is updated twice, in the plan's order, within a run (the
    same array twice) and across runs (a float32 view of a float64 param): as the functions
    called one after another."""
    cls, n_states, update, scalars = UPDATES[kind]
    rng = np.random.default_rng(5)
    buffer = rng.normal(size=4)
    params = [buffer, buffer.view(np.float32), rng.normal(size=3), None]
    params[3] = params[2]
    grads = [rng.normal(size=p.shape).astype(p.dtype) for p in params]
    states = [[np.abs(rng.normal(size=p.shape)).astype(p.dtype) for p in params] for _ in range(n_states)]
    ref = [params[0].copy(), None, params[2].copy(), None]
    ref[1], ref[3] = ref[0].view(np.float32), ref[2]
    ref_states = [[a.copy() for a in s] for s in states]
    plan = cls(params, grads, *states)
    for t in (1, 2):
        step, values = scalars(t)
        plan.step(step, *values) if step is not None else plan.step(*values)
        for i in range(4):
            update(ref[i], grads[i], *(s[i] for s in ref_states), step, values)
        for i in range(4):
            _same(params[i], ref[i], f"params[{i}] at t={t}")


@pytest.mark.parametrize("kind", UPDATES)
def test_step_takes_the_function_scalars_with_their_defaults(kind):
    """step(...) takes the per-call function's scalars, in order, with the same defaults."""
    cls = UPDATES[kind][0]
    function = getattr(kernels, cls._kernel.name)
    step = list(inspect.signature(cls.step).parameters.values())[1:]
    scalars = list(inspect.signature(function).parameters.values())[-len(step) :]
    assert [p.default for p in step] == [p.default for p in scalars]
    assert [p.name for p in scalars] == [s.name for s in cls._kernel.scalars]


def test_batchnorm_plan_defaults_are_the_functions():
    plan = inspect.signature(kernels.BatchNormPlan).parameters
    forward = inspect.signature(kernels.batchnorm_forward).parameters
    assert (plan["eps"].default, plan["momentum"].default) == (
        forward["eps"].default,
        forward["momentum"].default,
    )


def test_update_plan_state_attributes():
    params, grads, (ms, vs) = _opt_arrays([np.float64] * 4, 2)
    plan = kernels.AdamPlan(params, grads, ms, vs)
    assert plan.ms == tuple(ms) and plan.vs == tuple(vs)
    _, _, (vel,) = _opt_arrays([np.float64] * 4, 1)
    assert kernels.MomentumPlan(params, grads, vel).velocities == tuple(vel)
    assert kernels.RMSpropPlan(params, grads, vel).sqs == tuple(vel)
    assert "AdamPlan(4 arrays" in repr(plan)


def _adam_case(edit):
    params, grads, (ms, vs) = _opt_arrays([np.float32] * 4, 2)
    args = {"params": params, "grads": grads, "ms": ms, "vs": vs}
    edit(args)
    return args


def _set(name, i, make):
    def edit(args):
        args[name] = list(args[name])
        args[name][i] = make(args)
    return edit


ADAM_BAD = [
    ("params-array", lambda a: a.update(params=np.ones(3, np.float32)), TypeError,
     r"params must be a sequence of numpy arrays"),
    ("grads-not-iterable", lambda a: a.update(grads=3), TypeError,
     r"grads must be a sequence of numpy arrays"),
    ("params-empty", lambda a: a.update(params=[], grads=[], ms=[], vs=[]), ValueError,
     r"params is empty"),
    ("grads-short", lambda a: a.update(grads=a["grads"][:3]), ValueError,
     r"grads has 3 arrays but params has 4"),
    ("vs-long", lambda a: a.update(vs=a["vs"] + a["vs"][:1]), ValueError,
     r"vs has 5 arrays but params has 4"),
    ("param-list", _set("params", 1, lambda a: [1.0, 2.0, 3.0]), TypeError,
     r"params\[1\] must be a numpy\.ndarray"),
    ("param-int", _set("params", 0, lambda a: np.ones((4, 3), np.int64)), TypeError,
     r"params\[0\] must have dtype float32 or float64"),
    ("param-readonly", _set("params", 2, lambda a: _readonly(a["params"][2])), ValueError,
     r"params\[2\] is read-only"),
    ("param-strided", _set("params", 0, lambda a: _strided(a["params"][0])), ValueError,
     r"params\[0\] must be C-contiguous"),
    ("grad-dtype", _set("grads", 1, lambda a: a["grads"][1].astype(np.float64)), TypeError,
     r"grads\[1\] must have dtype float32 like the other arrays, got float64"),
    ("grad-shape", _set("grads", 0, lambda a: np.ones((3, 4), np.float32)), ValueError,
     r"grads\[0\] must have shape \(4, 3\) \(the shape of params\[0\]\), got \(3, 4\)"),
    ("grad-strided", _set("grads", 0, lambda a: _strided(a["grads"][0])), ValueError,
     r"grads\[0\] must be C-contiguous"),
    ("grad-unaligned", _set("grads", 1, lambda a: _unaligned(a["grads"][1])), ValueError,
     r"grads\[1\] is not aligned to its 4-byte values .*pass grads\[1\]\.copy\(\)"),
    ("m-readonly", _set("ms", 3, lambda a: _readonly(a["ms"][3])), ValueError,
     r"ms\[3\] is read-only"),
    ("v-shape", _set("vs", 2, lambda a: np.zeros(8, np.float32)), ValueError,
     r"vs\[2\] must have shape \(2, 2, 2\)"),
    ("m-is-v", _set("vs", 1, lambda a: a["ms"][1]), ValueError,
     r"ms\[1\] shares memory with vs\[1\]"),
    ("grad-is-param", _set("grads", 0, lambda a: a["params"][0]), ValueError,
     r"params\[0\] shares memory with grads\[0\]"),
    ("m-view-of-grad", _set("ms", 1, lambda a: a["grads"][1][::-1][::-1]), ValueError,
     r"ms\[1\] shares memory with grads\[1\]"),
]


@pytest.mark.parametrize("edit, error, match", [pytest.param(*r[1:], id=r[0]) for r in ADAM_BAD])
def test_adam_plan_refuses_bad_arrays(edit, error, match):
    with pytest.raises(error, match=match):
        kernels.AdamPlan(**_adam_case(edit))


def test_other_update_plans_refuse_bad_arrays():
    params, grads, (vel,) = _opt_arrays([np.float32] * 4, 1)
    with pytest.raises(ValueError, match=r"velocities\[0\] shares memory with grads\[0\]"):
        kernels.MomentumPlan(params, grads, [grads[0]] + vel[1:])
    with pytest.raises(ValueError, match=r"params\[1\] shares memory with sqs\[1\]"):
        kernels.RMSpropPlan(params, grads, [vel[0], params[1]] + vel[2:])
    with pytest.raises(ValueError, match=r"sqs has 2 arrays"):
        kernels.RMSpropPlan(params, grads, vel[:2])
    with pytest.raises(ValueError, match=r"params\[3\] shares memory with grads\[3\]"):
        kernels.SGDPlan(params, grads[:3] + [params[3]])
    with pytest.raises(ValueError, match=r"params\[0\] must be C-contiguous"):
        kernels.SGDPlan([_strided(params[0])], grads[:1])


NOT_POSITIVE = [0.0, -1e-5, float("nan"), float("inf")]
NOT_NONNEGATIVE = [-0.1, float("nan"), float("inf")]
NOT_BETA = [-0.1, 1.0, float("nan")]

STEP_BAD = [
    *[("adam", {"t": v}, ValueError, r"t must be an integer >= 1") for v in (0, -2)],
    *[("adam", {"t": v}, TypeError, r"t must be an integer") for v in (1.0, True, "1")],
    *[("adam", {"lr": v}, ValueError, r"lr must be a finite number >= 0") for v in NOT_NONNEGATIVE],
    *[("adam", {"beta1": v}, ValueError, r"beta1 must be in \[0, 1\)") for v in NOT_BETA],
    *[("adam", {"beta2": v}, ValueError, r"beta2 must be in \[0, 1\)") for v in NOT_BETA],
    *[("adam", {"eps": v}, ValueError, r"eps must be a finite number > 0") for v in NOT_POSITIVE],
    *[("adam", {"weight_decay": v}, ValueError, r"weight_decay must be a finite number >= 0")
      for v in NOT_NONNEGATIVE],
    *[("momentum", {"lr": v}, ValueError, r"lr must be") for v in NOT_NONNEGATIVE],
    *[("momentum", {"beta": v}, ValueError, r"beta must be in \[0, 1\)") for v in NOT_BETA],
    *[("rmsprop", {"beta": v}, ValueError, r"beta must be in \[0, 1\)") for v in NOT_BETA],
    *[("rmsprop", {"eps": v}, ValueError, r"eps must be a finite number > 0")
      for v in NOT_POSITIVE],
    *[("sgd", {"weight_decay": v}, ValueError, r"weight_decay must be") for v in NOT_NONNEGATIVE],
    *[("adam", {"lr": v}, TypeError, r"^lr must be a finite number >= 0, got ") for v in ("0.1", None, 1j)],
    ("momentum", {"beta": "0.9"}, TypeError, r"^beta must be in \[0, 1\)"),
]
STEP_GOOD = {"adam": {"t": 1, "lr": 1e-3}, "momentum": {"lr": 0.1}, "rmsprop": {"lr": 0.1},
             "sgd": {"lr": 0.1}}


@pytest.mark.parametrize("kind, bad, error, match",
                         [pytest.param(*r, id=f"{r[0]}-{r[1]}") for r in STEP_BAD])
def test_step_checks_scalars_and_changes_nothing(kind, bad, error, match):
    cls, n_states, _, _ = UPDATES[kind]
    params, grads, states = _opt_arrays([np.float64] * 4, n_states)
    plan = cls(params, grads, *states)
    before = [a.copy() for a in params + [s for ss in states for s in ss]]
    with pytest.raises(error, match=match):
        plan.step(**{**STEP_GOOD[kind], **bad})
    for a, b in zip(params + [s for ss in states for s in ss], before):
        _same(a, b)


def test_numpy_integer_t_is_accepted():
    params, grads, (ms, vs) = _opt_arrays([np.float32] * 4, 2)
    kernels.AdamPlan(params, grads, ms, vs).step(np.int64(2))


@pytest.mark.parametrize("t", [2**30 - 1, 2**30, 2**63 - 1, np.uint64(2**63 - 1)])
def test_every_t_of_a_long_long_is_accepted(t):
    """The inline test of t stops at 2**30 - 1 (the ints CPython compares fastest); a larger
    t takes the exact check, which accepts it: the step is the function's, bit for bit."""
    params, grads, (ms, vs) = _opt_arrays([np.float64] * 4, 2)
    p0, m0, v0 = ([a.copy() for a in arrays] for arrays in (params, ms, vs))
    kernels.AdamPlan(params, grads, ms, vs).step(t, 0.01)
    for p, g, m, v in zip(p0, grads, m0, v0):
        kernels.adam_update(p, g, m, v, t, 0.01)
    for got, want in zip(params + ms + vs, p0 + m0 + v0):
        _same(got, want)


# --- the optimizers on plans ---------------------------------------------------------------------

OPTIMIZERS = {
    "sgd": (SGD, {"lr": 0.1, "weight_decay": 0.01},
            lambda p, g, s, h, t: kernels.sgd_update(p, g, h["lr"], h["weight_decay"])),
    "momentum": (Momentum, {"lr": 0.1, "beta": 0.8},
                 lambda p, g, s, h, t: kernels.momentum_update(p, g, s[0], h["lr"], h["beta"])),
    "rmsprop": (RMSprop, {"lr": 0.01},
                lambda p, g, s, h, t: kernels.rmsprop_update(p, g, s[0], h["lr"], h["beta"],
                                                             h["eps"])),
    "adam": (Adam, {"lr": 0.01},
             lambda p, g, s, h, t: kernels.adam_update(p, g, s[0], s[1], t, h["lr"], h["beta1"],
                                                       h["beta2"], h["eps"])),
    "adamw": (AdamW, {"lr": 0.01, "weight_decay": 0.1},
              lambda p, g, s, h, t: kernels.adam_update(p, g, s[0], s[1], t, h["lr"], h["beta1"],
                                                        h["beta2"], h["eps"], h["weight_decay"])),
}


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_optimizer_rebinds_when_grads_change_identity(name):
    """Same arrays: one plan for every step. New arrays (or strided ones, copied): a new plan.
    Either way the updates are those of the per-call functions, bit for bit."""
    cls, hyper, update = OPTIMIZERS[name]
    params, _, _ = _opt_arrays([np.float32, np.float64, np.float32, np.float64], 0)
    ref = [p.copy() for p in params]
    opt = cls(params, **hyper)
    ref_states = [[np.zeros_like(p) for _ in cls.buffer_names] for p in ref]
    rng = np.random.default_rng(7)
    grads = [np.empty_like(p) for p in params]
    plans = []
    for t in range(1, 9):
        if t in (3, 6):
            grads = [np.empty_like(p) for p in params]  # rebound, as a model without reuse would
        if t == 5:
            opt.set("lr", hyper["lr"] / 2)
        values = [rng.normal(size=p.shape).astype(p.dtype) for p in params]
        for g, v in zip(grads, values):
            g[...] = v
        given = grads
        if t == 7:  # strided views of new memory: copied by the optimizer, bound for one step
            given = [_strided(v) for v in values]
        opt.step(given)
        plans.append(opt._bound_plan)
        for i, (p, v) in enumerate(zip(ref, values)):
            update(p, v, ref_states[i], opt.hyper, t)
        for i in range(len(params)):
            _same(params[i], ref[i], f"{name} params[{i}] at step {t}")
    assert opt.t == 8
    # steps 1-2, 3-5 and 6 share plans; 7 (copies) and 8 (back to `grads`) each bind anew
    assert plans[0] is plans[1] and plans[2] is plans[3] is plans[4]
    assert len({id(p) for p in plans}) == 5


def test_optimizer_rebinds_when_a_grad_changes_shape_in_place():
    params = [np.ones((2, 3)), np.ones(4)]
    grads = [np.ones((2, 3)), np.ones(4)]
    opt = Adam(params)
    opt.step(grads)
    grads[0].shape = (3, 2)  # same array, same memory, other shape: the step must refuse it
    with pytest.raises(ValueError, match=r"grads\[0\] must be a \(2, 3\) float64 array"):
        opt.step(grads)
    grads[0].shape = (2, 3)
    opt.step(grads)
    assert opt.t == 2


def test_optimizer_rebinds_when_its_own_arrays_are_replaced():
    params = [np.ones(3), np.ones(2)]
    grads = [np.full(3, 0.5), np.full(2, 0.5)]
    opt = Momentum(params, lr=0.1)
    opt.step(grads)
    first = opt._bound_plan
    opt.buffers["velocity"][1] = np.zeros(2)  # replaced, not filled: the plan must follow
    opt.step(grads)
    assert opt._bound_plan is not first
    assert opt._bound_plan.velocities[1] is opt.buffers["velocity"][1]
    np.testing.assert_allclose(opt.buffers["velocity"][1], 0.05)


def test_failed_step_changes_nothing():
    params = [np.ones(3, np.float32), np.ones(2, np.float32)]
    opt = Adam(params)
    opt.step([np.ones(3, np.float32), np.ones(2, np.float32)])
    state = opt.state()
    before = [p.copy() for p in params]
    with pytest.raises(ValueError, match=r"shares memory"):
        opt.step([params[0], np.ones(2, np.float32)])  # grads[0] is params[0]
    with pytest.raises(ValueError, match=r"grads\[1\] must be a \(2,\) float32"):
        opt.step([np.ones(3, np.float32), np.ones(3, np.float32)])
    assert opt.t == 1
    for a, b in zip(params, before):
        _same(a, b)
    for key, value in opt.state().items():
        _same(value, state[key], key)


def test_optimizer_copy_binds_its_own_plan():
    params = [np.ones(4), np.ones(2)]
    grads = [np.full(4, 0.1), np.full(2, 0.1)]
    opt = Adam(params, lr=0.1)
    opt.step(grads)
    twin = copy.deepcopy(opt)
    assert twin._bound_plan is None
    twin.step(grads)
    assert twin._bound_plan.params[0] is twin.params[0] is not params[0]
    assert opt.t == 1 and twin.t == 2
    np.testing.assert_allclose(params[0], 0.9, rtol=1e-6)  # the original moved once only


# --- the model -----------------------------------------------------------------------------------


def _model(**kw):
    return MLP(6, 3, hidden=5, layers=2, rng=np.random.default_rng(0), **kw)


def _data(n=9, seed=1):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 6)), rng.integers(0, 3, n)


def test_model_binds_one_plan_per_layer_and_batch_size():
    model = _model()
    x, y = _data()
    model.loss_and_grads(x, y)
    model.evaluate(x[:1], y[:1])
    for n in (9, 1):
        ws = model._workspaces[n]
        assert len(ws.bn) == 2
        for i, (plan, layer) in enumerate(zip(ws.bn, model._layers)):
            assert plan.x is ws.z[i] and plan.y is ws.h[i] and plan.dy is ws.dh[i]
            assert plan.gamma is layer.gamma and plan.dgamma is layer.dgamma
            assert plan.running_mean is layer.running_mean and plan.mean is layer.mean
    assert _model(batchnorm=False)._workspace(4).bn == []


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_checked_batches_match_checked_ones(dtype):
    a, b = _model(dtype=dtype), _model(dtype=dtype)
    x, y = _data(n=20)
    xc, yc = b.check_data(x, y)
    assert xc.dtype == dtype and yc.dtype == np.intp
    for index in (np.arange(0, 20, 2), np.arange(20)[::-3], np.arange(7)):
        la, aa, ga = a.loss_and_grads(x[index], y[index])
        lb, ab, gb = b.loss_and_grads(xc[index], yc[index], checked=True)
        assert (la, aa) == (lb, ab)
        for g, h in zip(ga, gb):
            _same(g, h)


@pytest.mark.parametrize("y, match", [
    ([0, 1, 3], r"labels must be in \[0, 3\), got values in \[0, 3\]"),
    ([0, -1, 2], r"got values in \[-1, 2\]"),
    (np.array([0, -1, 2], ">i4"), r"got values in \[-1, 2\]"),
    (np.array([0, 200, 2], np.uint8), r"got values in \[0, 200\]"),
    (np.array([0, -128, 2], np.int8), r"got values in \[-128, 2\]"),
])
def test_label_range_is_checked_at_both_ends(y, match):
    model = _model()
    x, _ = _data(n=3)
    with pytest.raises(ValueError, match=match):
        model.loss_and_grads(x, y)
    with pytest.raises(ValueError, match=match):
        model.check_data(x, y)


def test_labels_of_any_integer_dtype_and_byte_order_give_one_result():
    x, y = _data(n=6)
    results = []
    for dtype in (np.int64, ">i8", np.uint8, ">u2", np.int8, np.uint64):
        loss, acc, grads = _model().loss_and_grads(x, y.astype(dtype))
        results.append((loss, acc, [g.copy() for g in grads]))
    for loss, acc, grads in results[1:]:
        assert (loss, acc) == results[0][:2]
        for g, h in zip(grads, results[0][2]):
            _same(g, h)


def test_model_copy_makes_its_own_plans():
    model = _model()
    x, y = _data()
    model.loss_and_grads(x, y)
    twin = copy.deepcopy(model)
    assert twin._workspaces == {}
    lt, _, gt = twin.loss_and_grads(x, y)
    assert twin._workspaces[9].bn[0].gamma is twin._layers[0].gamma
    lm, _, gm = model.loss_and_grads(x, y)
    assert lt == lm
    for g, h in zip(gt, gm):
        _same(g, h)

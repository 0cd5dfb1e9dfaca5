"""The built-in optimizers against independent numpy transcriptions of their formulas."""

from __future__ import annotations

import copy
import inspect
import math
from typing import Annotated

import numpy as np
import pytest
from research_plugins import optimizers
from research_plugins.optimizers import SGD, Adam, AdamW, Momentum, RMSprop

from research import hookimpl
from research.contracts import Optimizer as ContractOptimizer
from research.nn.optimizer import Beta, LearningRate, Optimizer
from research.options import Option, UnknownOptionError, declared
from research.plugins import load_plugins
from research.space import Float

SHAPES = [(3,), (2, 1), (4, 5), (2, 3, 4, 5)]
DTYPES = [np.float32, np.float64]
CLASSES = {"sgd": SGD, "momentum": Momentum, "rmsprop": RMSprop, "adam": Adam, "adamw": AdamW}
DEFAULTS = {
    "sgd": {"lr": 0.01, "weight_decay": 0.0},
    "momentum": {"lr": 0.01, "beta": 0.9},
    "rmsprop": {"lr": 1e-3, "beta": 0.9, "eps": 1e-8},
    "adam": {"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8},
    "adamw": {"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.01},
}
BUFFERS = {"sgd": (), "momentum": ("velocity",), "rmsprop": ("sq",), "adam": ("m", "v"), "adamw": ("m", "v")}
# Hyperparameters for the comparisons (not the defaults, so each one matters), and the changes
# made between steps halfway through (as strings, as the command line gives them).
HYPER = {
    "sgd": {"lr": 0.05, "weight_decay": 0.01},
    "momentum": {"lr": 0.05, "beta": 0.8},
    "rmsprop": {"lr": 0.01, "beta": 0.95, "eps": 1e-6},
    "adam": {"lr": 0.01, "beta1": 0.8, "beta2": 0.99, "eps": 1e-6},
    "adamw": {"lr": 0.01, "beta1": 0.8, "beta2": 0.99, "eps": 1e-6, "weight_decay": 0.1},
}
CHANGES = {
    "sgd": {"lr": "0.02", "weight_decay": "0"},
    "momentum": {"lr": "0.1", "beta": "0.5"},
    "rmsprop": {"lr": "0.003", "beta": "0.99"},
    "adam": {"lr": "0.003", "beta2": "0.999"},
    "adamw": {"lr": "0.003", "weight_decay": "0.2"},
}


# --- independent references: one step in float64 numpy, straight from the formulas -------------


def reference_step(name: str, p: np.ndarray, g: np.ndarray, s: dict, h: dict, t: int) -> None:
    """Update ``p`` and the buffers ``s`` in place; ``t`` counts steps from 1."""
    if name == "sgd":
        p -= h["lr"] * (g + h["weight_decay"] * p)
    elif name == "momentum":
        s["velocity"] = h["beta"] * s["velocity"] + (1 - h["beta"]) * g
        p -= h["lr"] * s["velocity"]
    elif name == "rmsprop":
        s["sq"] = h["beta"] * s["sq"] + (1 - h["beta"]) * g**2
        p -= h["lr"] * g / (np.sqrt(s["sq"]) + h["eps"])
    else:
        decay = h.get("weight_decay", 0.0)
        s["m"] = h["beta1"] * s["m"] + (1 - h["beta1"]) * g
        s["v"] = h["beta2"] * s["v"] + (1 - h["beta2"]) * g**2
        m_hat = s["m"] / (1 - h["beta1"] ** t)
        v_hat = s["v"] / (1 - h["beta2"] ** t)
        p -= h["lr"] * decay * p + h["lr"] * m_hat / (np.sqrt(v_hat) + h["eps"])


def make_params(dtype, seed=0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape).astype(dtype) for shape in SHAPES]


def make_grads(dtype, steps, seed=1) -> list[list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [[rng.standard_normal(shape).astype(dtype) for shape in SHAPES] for _ in range(steps)]


def tolerance(dtype) -> dict:
    return {"rtol": 1e-9, "atol": 1e-12} if dtype == np.float64 else {"rtol": 2e-5, "atol": 2e-5}


# --- numerics ------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", CLASSES)
def test_matches_reference_over_many_steps_with_changes(name, dtype):
    steps = 40
    params = make_params(dtype)
    expected = [p.astype(np.float64) for p in params]
    buffers = [{b: np.zeros(p.shape) for b in BUFFERS[name]} for p in params]
    h = dict(HYPER[name])
    opt = CLASSES[name](params, **h)
    for t, grads in enumerate(make_grads(dtype, steps), start=1):
        if t == steps // 2 + 1:
            for key, value in CHANGES[name].items():
                opt.set(key, value)
                h[key] = float(value)
        opt.step(grads)
        for p, g, s in zip(expected, grads, buffers):
            reference_step(name, p, g.astype(np.float64), s, h, t)
    assert opt.t == steps
    for i, (p, want) in enumerate(zip(params, expected)):
        assert p.dtype == dtype
        np.testing.assert_allclose(p, want, **tolerance(dtype), err_msg=f"params[{i}]")
        for b in BUFFERS[name]:
            np.testing.assert_allclose(opt.buffers[b][i], buffers[i][b], **tolerance(dtype), err_msg=f"{b}.{i}")


@pytest.mark.parametrize("name", CLASSES)
def test_hyper_assignment_takes_effect_at_next_step(name):
    a, b = make_params(np.float64), make_params(np.float64)
    opt_a, opt_b = CLASSES[name](a), CLASSES[name](b)
    grads = make_grads(np.float64, 2)
    opt_a.step(grads[0])
    opt_b.step(grads[0])
    opt_a.set("lr", 0.5)
    opt_b.hyper["lr"] = "0.5"  # direct assignment is converted and checked the same way
    assert opt_b.hyper["lr"] == 0.5
    opt_a.step(grads[1])
    opt_b.step(grads[1])
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_adam_first_step_is_lr_times_sign():
    # Bias correction makes Adam's first step lr * g / (|g| + eps') whatever beta1 and beta2 are.
    p = np.zeros(4)
    g = np.array([2.0, -3.0, 0.5, -0.25])
    Adam([p], lr=0.1, beta1=0.5, beta2=0.7, eps=1e-12).step([g])
    np.testing.assert_allclose(p, -0.1 * np.sign(g), rtol=1e-9)


def test_adamw_decay_is_decoupled_from_gradient_statistics():
    p = np.full(3, 2.0)
    AdamW([p], lr=0.1, weight_decay=0.5).step([np.zeros(3)])
    np.testing.assert_allclose(p, 2.0 - 0.1 * 0.5 * 2.0)


def test_non_contiguous_grads_are_accepted():
    base = make_grads(np.float64, 1)[0]
    strided = [np.asfortranarray(g) if g.ndim > 1 and g.shape[1] > 1 else g for g in base]
    assert not all(g.flags.c_contiguous for g in strided)
    a, b = make_params(np.float64), make_params(np.float64)
    Adam(a).step(base)
    Adam(b).step(strided)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


# --- state ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", CLASSES)
def test_state_round_trip_continues_exactly(name, dtype, tmp_path):
    grads = make_grads(dtype, 30)
    whole = make_params(dtype)
    opt = CLASSES[name](whole, **HYPER[name])
    for i, g in enumerate(grads):
        if i == 10:
            opt.set("lr", "0.02")
        opt.step(g)

    first = make_params(dtype)
    before = CLASSES[name](first, **HYPER[name])
    for i, g in enumerate(grads[:15]):
        if i == 10:
            before.set("lr", "0.02")
        before.step(g)
    np.savez(tmp_path / "opt.npz", **before.state())
    np.savez(tmp_path / "params.npz", *first)
    with np.load(tmp_path / "params.npz") as saved:
        resumed = [np.ascontiguousarray(saved[f"arr_{i}"]) for i in range(len(first))]
    after = CLASSES[name](resumed)  # default hyperparameters: the state brings the real ones
    with np.load(tmp_path / "opt.npz") as saved:
        after.load_state(saved)
    assert after.hyper == opt.hyper and after.t == 15
    for g in grads[15:]:
        after.step(g)

    assert after.t == opt.t == 30
    for x, y in zip(resumed, whole):
        np.testing.assert_array_equal(x, y)
    for key, value in opt.state().items():
        np.testing.assert_array_equal(after.state()[key], value, err_msg=key)


@pytest.mark.parametrize("name", CLASSES)
def test_state_keys_and_types(name):
    opt = CLASSES[name](make_params(np.float32))
    opt.step(make_grads(np.float32, 1)[0])
    state = opt.state()
    buffers = {f"{b}.{i}" for b in BUFFERS[name] for i in range(len(SHAPES))}
    hyper = {f"hyper.{k}" for k in DEFAULTS[name]}
    assert set(state) == {"t"} | buffers | hyper
    assert state["t"].shape == () and state["t"].dtype == np.int64 and state["t"] == 1
    for key in hyper:
        assert state[key].shape == () and state[key].dtype == np.float64
    for key in buffers:
        i = int(key.rsplit(".", 1)[1])
        assert state[key].shape == SHAPES[i] and state[key].dtype == np.float32
        assert state[key] is not opt.buffers[key.split(".")[0]][i]  # a copy, not a view


def test_load_state_copies_into_existing_arrays():
    opt = Adam(make_params(np.float64))
    m0 = opt.buffers["m"][0]
    state = opt.state()
    state["m.0"] = np.full(SHAPES[0], 7.0)
    opt.load_state(state)
    assert opt.buffers["m"][0] is m0
    np.testing.assert_array_equal(m0, 7.0)


@pytest.mark.parametrize(
    "edit, match",
    [
        (lambda s: s.pop("v.1"), "missing v.1"),
        (lambda s: s.update(velocity=np.zeros(3)), "unexpected velocity"),
        (lambda s: s.update({"m.2": np.zeros((5, 4))}), r"'m.2' must be a \(4, 5\)"),
        (lambda s: s.update(t=np.array(-1)), "'t' must be a non-negative integer"),
        (lambda s: s.update(t=np.array(1.5)), "'t' must be a non-negative integer"),
        (lambda s: s.update({"hyper.beta1": np.array(1.0)}), r"beta1 must be a number in \[0, 1\), got 1.0$"),
        (lambda s: s.update({"hyper.eps": np.array("x")}), r"eps must be a number > 0, got 'x'$"),
    ],
)
def test_load_state_rejects_bad_state_and_changes_nothing(edit, match):
    opt = Adam(make_params(np.float64))
    opt.step(make_grads(np.float64, 1)[0])
    before = opt.state()
    bad = opt.state()
    bad["m.0"] += 1.0
    bad["hyper.lr"] = np.array(0.5)
    edit(bad)
    with pytest.raises(ValueError, match=match):
        opt.load_state(bad)
    for key, value in opt.state().items():
        np.testing.assert_array_equal(value, before[key], err_msg=key)


def test_deepcopy_is_independent():
    params = make_params(np.float64)
    opt = Adam(params, lr=0.01)
    opt.step(make_grads(np.float64, 1)[0])
    twin = copy.deepcopy(opt)
    twin.set("lr", 0.5)
    twin.step(make_grads(np.float64, 1, seed=5)[0])
    assert opt.hyper["lr"] == 0.01 and opt.t == 1 and twin.t == 2
    assert not np.array_equal(twin.params[0], params[0])


# --- hyperparameters -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", CLASSES)
def test_defaults_and_signature(name):
    cls = CLASSES[name]
    assert cls(make_params(np.float64)).hyper == DEFAULTS[name]
    parameters = list(inspect.signature(cls).parameters.values())
    # The host routes options by signature: params, then explicit keyword-only hyperparameters.
    assert parameters[0].name == "params"
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in parameters[1:])
    assert {p.name: p.default for p in parameters[1:]} == DEFAULTS[name]


def test_strings_are_converted():
    opt = AdamW(make_params(np.float64), lr="0.5", beta1=" 0.8 ", beta2="0.99", eps="1e-7", weight_decay="1e-3")
    assert opt.hyper == {"lr": 0.5, "beta1": 0.8, "beta2": 0.99, "eps": 1e-7, "weight_decay": 1e-3}
    assert all(type(v) is float for v in opt.hyper.values())


BAD = {
    "lr": ([0, -1.0, "abc", "", math.nan, math.inf, True, None], "> 0"),
    "beta": ([1.0, -0.1, 1.5, "x"], "in [0, 1)"),
    "beta1": ([1, -1e-9, "nan"], "in [0, 1)"),
    "beta2": ([1.0, -0.5, [0.9]], "in [0, 1)"),
    "eps": ([0.0, -1e-8, "inf"], "> 0"),
    "weight_decay": ([-0.1, "-1", math.nan], ">= 0"),
}
BAD_CASES = [
    pytest.param(name, key, value, text, id=f"{name}-{key}={value!r}")
    for name in CLASSES
    for key in DEFAULTS[name]
    for value in BAD[key][0]
    for text in [BAD[key][1]]
]


@pytest.mark.parametrize("name, key, value, text", BAD_CASES)
def test_bad_hyperparameters(name, key, value, text):
    cls = CLASSES[name]
    with pytest.raises(ValueError) as info:
        cls(make_params(np.float64), **{key: value})
    message = str(info.value)
    assert message.startswith(f"optimizer '{name}': {key} must be")
    assert text in message and "\n" not in message

    opt = cls(make_params(np.float64))
    with pytest.raises(ValueError, match=f"{key} must be"):
        opt.set(key, value)
    with pytest.raises(ValueError, match=f"{key} must be"):
        opt.hyper[key] = value
    with pytest.raises(ValueError, match=f"{key} must be"):
        opt.hyper.update({key: value})
    assert opt.hyper == DEFAULTS[name]


@pytest.mark.parametrize("name", CLASSES)
def test_unknown_hyperparameters_list_the_valid_ones(name):
    cls = CLASSES[name]
    valid = ", ".join(DEFAULTS[name])
    for error in (TypeError, ValueError, UnknownOptionError):
        with pytest.raises(error) as info:
            cls(make_params(np.float64), lr=0.1, momentum=0.9, rho=0.9)
        assert str(info.value) == f"optimizer '{name}': unknown options 'momentum', 'rho'; valid names: {valid}"
    opt = cls(make_params(np.float64))
    with pytest.raises(UnknownOptionError, match=f"^optimizer '{name}': unknown option 'betas'; valid names: {valid}$"):
        opt.set("betas", 0.9)
    with pytest.raises(TypeError, match="unknown option 'betas'"):
        opt.hyper["betas"] = 0.9
    with pytest.raises(ValueError, match="unknown option 'betas'"):
        opt.hyper.setdefault("betas", 0.9)
    with pytest.raises(TypeError, match="cannot be removed"):
        del opt.hyper["lr"]
    assert opt.hyper == DEFAULTS[name]


def test_adam_has_no_weight_decay():
    with pytest.raises(TypeError, match="^optimizer 'adam': unknown option 'weight_decay'; valid names: lr, beta1"):
        Adam(make_params(np.float64), weight_decay=0.1)


RANGES = {"lr": "a number > 0", "beta": "a number in [0, 1)", "beta1": "a number in [0, 1)",
          "beta2": "a number in [0, 1)", "eps": "a number > 0", "weight_decay": "a number >= 0"}


@pytest.mark.parametrize("name", CLASSES)
def test_hyperparameters_are_declared_options(name):
    # The signature is the one declaration: the plugin manager, the command line and the
    # optimizer itself all read the names, types, defaults and ranges from it.
    specs = declared(CLASSES[name])
    assert list(specs) == list(DEFAULTS[name])
    assert {key: spec.default for key, spec in specs.items()} == DEFAULTS[name]
    assert all(spec.type is float and not spec.optional for spec in specs.values())
    assert {key: spec.describe() for key, spec in specs.items()} == {key: RANGES[key] for key in specs}
    assert CLASSES[name](make_params(np.float64)).options == DEFAULTS[name]


# --- parameters and gradients --------------------------------------------------------------------


@pytest.mark.parametrize(
    "params, error, match",
    [
        ([], ValueError, "no parameter arrays"),
        ([[1.0, 2.0]], TypeError, r"params\[0\] must be a float32 or float64 array, got a list"),
        ([np.zeros(3), np.zeros(3, dtype=np.int64)], TypeError, r"params\[1\] .* got a int64 array"),
        ([np.zeros((3, 4))[:, 1]], ValueError, r"params\[0\] must be C-contiguous"),
        ([np.zeros(3)[::-1].copy(), np.broadcast_to(np.zeros(1), (3,))], ValueError, r"params\[1\]"),
    ],
)
def test_bad_params(params, error, match):
    with pytest.raises(error, match=match):
        SGD(params)


@pytest.mark.parametrize("name", CLASSES)
def test_bad_grads_change_nothing(name):
    params = make_params(np.float64)
    opt = CLASSES[name](params)
    good = make_grads(np.float64, 1)[0]
    before = [p.copy() for p in params]
    bad_cases = [
        (good[:-1], "got 3 gradients for 4 parameter arrays"),
        (good[:-1] + [good[-1].reshape(2, 3, 20)], r"grads\[3\] must be a \(2, 3, 4, 5\) float64 array"),
        (good[:-1] + [good[-1].astype(np.float32)], r"grads\[3\] .* got \(2, 3, 4, 5\) float32"),
        (good[:-1] + [good[-1].tolist()], r"grads\[3\] .* got list"),
    ]
    for grads, match in bad_cases:
        with pytest.raises(ValueError, match=match):
            opt.step(grads)
    assert opt.t == 0
    for p, q in zip(params, before):
        np.testing.assert_array_equal(p, q)


# --- search spaces and registration --------------------------------------------------------------


@pytest.mark.parametrize("name", CLASSES)
def test_search_space(name):
    cls = CLASSES[name]
    space = cls.search_space
    assert space["lr"] == Float(1e-4, 1.0, "log", name="lr")
    assert set(space) <= set(DEFAULTS[name])
    for key, param in space.items():
        assert param.name == key
        assert param.contains(DEFAULTS[name][key])
    expected_scales = {"beta": "log1m", "beta1": "log1m", "beta2": "log1m", "eps": "log", "weight_decay": "log"}
    for key, scale in expected_scales.items():
        if key in space:
            assert space[key].scale == scale
    if name in ("adam", "adamw"):
        assert space["beta1"] == Float(0.9, 0.999, "log1m", name="beta1")
        assert space["beta2"] == Float(0.99, 0.9999, "log1m", name="beta2")
    if name == "adamw":
        assert space["weight_decay"] == Float(1e-6, 1e-1, "log", name="weight_decay")


def test_register_optimizers_registers_exactly_the_built_ins_in_order():
    plugins = load_plugins([optimizers], entry_points=False)
    assert list(plugins.registry["optimizers"].items()) == list(CLASSES.items()) and not plugins.problems
    assert all(issubclass(cls, Optimizer) for cls in CLASSES.values())  # the core base


# --- a third-party optimizer on the core base ----------------------------------------------------


class Lion(Optimizer):
    """Lion (Chen et al. 2023), written as a third party would: declared hyperparameters and
    ``step``; the base does the rest."""

    name = "lion"
    buffer_names = ("m",)

    def __init__(self, params, *, lr: LearningRate = 1e-4, beta1: Beta = 0.9, beta2: Beta = 0.99,
                 decoupled: Annotated[bool, Option("Decay the weights too")] = False) -> None:
        super().__init__(params, lr=lr, beta1=beta1, beta2=beta2, decoupled=decoupled)

    def step(self, grads):
        grads, h = self._grads(grads), self.hyper
        for p, g, m in zip(self.params, grads, self.buffers["m"]):
            p -= h["lr"] * (np.sign(h["beta1"] * m + (1 - h["beta1"]) * g) + h["decoupled"] * p)
            m *= h["beta2"]
            m += (1 - h["beta2"]) * g
        self.t += 1


def lion_reference(params, grads, h):
    ps, ms = [p.astype(np.float64) for p in params], [np.zeros(p.shape) for p in params]
    for step in grads:
        for p, g, m in zip(ps, step, ms):
            p -= h["lr"] * (np.sign(h["beta1"] * m + (1 - h["beta1"]) * g) + h["decoupled"] * p)
            m *= h["beta2"]
            m += (1 - h["beta2"]) * g
    return ps


def test_third_party_optimizer_steps_sets_and_round_trips(tmp_path):
    params = make_params(np.float64)
    grads = make_grads(np.float64, 6)
    opt = Lion(params, lr="0.01", beta1=0.8, decoupled="no")
    assert opt.hyper == {"lr": 0.01, "beta1": 0.8, "beta2": 0.99, "decoupled": False}
    for g in grads[:3]:
        opt.step(g)
    opt.set("beta2", "0.9")
    np.savez(tmp_path / "lion.npz", **opt.state())
    resumed = [p.copy() for p in params]
    twin = Lion(resumed)
    with np.load(tmp_path / "lion.npz") as saved:
        twin.load_state(saved)
    assert twin.hyper == opt.hyper and twin.t == 3 and twin.hyper["decoupled"] is False
    for g in grads[3:]:
        opt.step(g)
        twin.step(g)
    for p, q in zip(params, resumed):
        np.testing.assert_array_equal(p, q)
    first = lion_reference(make_params(np.float64), grads[:3], {"lr": 0.01, "beta1": 0.8, "beta2": 0.99,
                                                                 "decoupled": False})
    check = Lion(make_params(np.float64), lr=0.01, beta1=0.8)
    for g in grads[:3]:
        check.step(g)
    for p, want in zip(check.params, first):
        np.testing.assert_allclose(p, want, rtol=1e-12)


@pytest.mark.parametrize("options, message", [
    ({"lr": 0}, "optimizer 'lion': lr must be a number > 0, got 0"),
    ({"beta2": "1"}, "optimizer 'lion': beta2 must be a number in [0, 1), got '1'"),
    ({"decoupled": "ture"}, "optimizer 'lion': decoupled must be true or false, got 'ture'"),
    ({"rho": 0.9}, "optimizer 'lion': unknown option 'rho'; valid names: lr, beta1, beta2, decoupled"),
])
def test_third_party_optimizer_bad_options_are_one_line(options, message):
    with pytest.raises(ValueError) as info:
        Lion(make_params(np.float64), **options)
    assert str(info.value) == message
    opt = Lion(make_params(np.float64))
    with pytest.raises(ValueError) as info:
        opt.set(*next(iter(options.items())))
    assert str(info.value) == message
    assert opt.hyper == {"lr": 1e-4, "beta1": 0.9, "beta2": 0.99, "decoupled": False}


def test_third_party_optimizer_through_the_plugin_manager():
    class LionPlugin:
        @hookimpl
        def register_optimizers(self, register):
            register("lion", Lion)

    plugins = load_plugins([LionPlugin()], entry_points=False)
    assert list(plugins.options_of("optimizers", "lion")) == ["lr", "beta1", "beta2", "decoupled"]
    opt = plugins.build("optimizers", "lion", make_params(np.float64), lr="3e-4", decoupled="yes")
    assert isinstance(opt, ContractOptimizer) and opt.hyper["lr"] == 3e-4 and opt.hyper["decoupled"] is True
    with pytest.raises(ValueError, match=r"^optimizer 'lion': beta1 must be a number in \[0, 1\), got '-1'$"):
        plugins.build("optimizers", "lion", make_params(np.float64), beta1="-1")


def test_a_subclass_must_pass_on_what_it_declares():
    class Forgetful(Optimizer):
        name = "forgetful"

        def __init__(self, params, *, lr: LearningRate = 0.1, beta: Beta = 0.5) -> None:
            super().__init__(params, lr=lr)

    with pytest.raises(TypeError, match=r"must pass Optimizer.__init__ exactly .* \(lr, beta\), got lr"):
        Forgetful(make_params(np.float64))

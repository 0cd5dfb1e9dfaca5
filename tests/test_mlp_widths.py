"""Per-layer widths of the mlp (``hidden2``..``hidden4``): shapes, gradients against central
differences and the numpy reference of tests/test_model.py, bit-identical results without them,
size limits, the command line, checkpoints and exported model files."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import research
from research.data import load_digits
from research.errors import UsageError
from research.nn import checkpoint
from research.nn import model as model_module
from research.nn.exported import load_model, model_arrays, write_model
from research.nn.model import MAX_PARAMS, MLP
from tests.studyutil import cli
from tests.test_model import make_data, randomize, reference

D, K = 4, 3
WIDTHS = {"hidden": 8, "layers": 3, "hidden2": 5, "hidden3": 3}  # H_1..H_3 = 8, 5, 3
DTYPES = [np.float32, np.float64]


def make(seed=0, **kw):
    return MLP(D, K, rng=np.random.default_rng(seed), **{**WIDTHS, **kw})


def restored_buffers(model, buffers):
    for b, saved in zip(model.buffers, buffers):
        b[...] = saved


# -- shapes ------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batchnorm", [True, False])
def test_each_layer_has_its_own_width(dtype, batchnorm):
    m = make(batchnorm=batchnorm, dtype=dtype)
    assert m.widths == (8, 5, 3)
    shapes = dict(zip(m.param_names, (p.shape for p in m.params)))
    assert {n: shapes[n] for n in ("W1", "W2", "W3", "W4", "b4")} == {
        "W1": (D, 8), "W2": (8, 5), "W3": (5, 3), "W4": (3, K), "b4": (K,)}
    per_unit = ("gamma", "beta") if batchnorm else ("b",)
    for i, width in enumerate(m.widths, start=1):
        assert all(shapes[f"{name}{i}"] == (width,) for name in per_unit)
    buffers = dict(zip(m.buffer_names, (b.shape for b in m.buffers)))
    assert buffers == ({f"running_{s}{i}": (w,) for i, w in enumerate(m.widths, start=1) for s in ("mean", "var")}
                       if batchnorm else {})
    assert all(p.dtype == dtype and g.shape == p.shape and g.dtype == dtype for p, g in zip(m.params, m.grads))
    ws = m._workspace(6)
    assert [a.shape for a in ws.h] == [a.shape for a in ws.dh] == [(6, 8), (6, 5), (6, 3)]
    if not batchnorm:  # the ReLU's own scratch; with batchnorm the fused plans need none
        assert [a.shape for a in ws.zeros] == [a.shape for a in ws.mask] == [(6, 8), (6, 5), (6, 3)]
        assert all(a.flags.c_contiguous for a in ws.zeros + ws.mask)
    else:
        assert ws.zeros == ws.mask == [None, None, None]
        assert [a.shape for a in ws.z] == [a.shape for a in ws.dz] == [(6, 8), (6, 5), (6, 3)]


def test_widths_of_layers_1_and_beyond_4_are_hidden():
    m = MLP(D, K, hidden=6, layers=6, hidden2=2, hidden3=3, hidden4=4, rng=np.random.default_rng(0))
    assert m.widths == (6, 2, 3, 4, 6, 6)
    assert MLP(D, K, hidden=6, layers=4, hidden3=3, rng=np.random.default_rng(0)).widths == (6, 6, 3, 6)
    assert MLP(D, K, hidden=6, layers=0, hidden2=2, rng=np.random.default_rng(0)).widths == ()


def test_initial_weights_are_he_draws_of_each_shape_in_order():
    m = make(dtype=np.float64, batchnorm=False)
    rng = np.random.default_rng(0)
    for name, fan_in, fan_out in (("W1", D, 8), ("W2", 8, 5), ("W3", 5, 3), ("W4", 3, K)):
        expected = rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in)
        np.testing.assert_array_equal(m.params[m.param_names.index(name)], expected, err_msg=name)


# -- numerics ----------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-12), (np.float32, 1e-5)])
@pytest.mark.parametrize("batchnorm", [True, False])
@pytest.mark.parametrize("train", [True, False])
def test_forward_matches_the_numpy_reference(dtype, rtol, batchnorm, train):
    model = randomize(make(batchnorm=batchnorm, dtype=dtype))
    x, y = make_data()
    expected_loss, expected_logits, _ = reference(model, x, y, train)
    loss = model.loss_and_grads(x, y)[0] if train else model.evaluate(x, y)[0]
    assert loss == pytest.approx(expected_loss, rel=rtol)
    if not train:
        np.testing.assert_allclose(model.logits(x), expected_logits, rtol=rtol * 10, atol=rtol)


def test_float32_gradients_close_to_float64():
    x, y = make_data()
    l64, _, g64 = randomize(make(dtype=np.float64)).loss_and_grads(x, y)
    l32, _, g32 = randomize(make(dtype=np.float32)).loss_and_grads(x, y)
    assert l32 == pytest.approx(l64, rel=1e-5)
    for a, b in zip(g64, g32):
        assert b.dtype == np.float32
        np.testing.assert_allclose(b, a, rtol=1e-3, atol=1e-5)


def test_batch_sizes_share_the_scratch_and_match_a_fresh_model():
    x, y = make_data(n=12)
    model = make()
    for n in (12, 5, 12, 2):
        fresh = make()
        fresh.load_state(model.state())
        lf, _, gf = fresh.loss_and_grads(x[:n], y[:n])
        lm, _, gm = model.loss_and_grads(x[:n], y[:n])
        assert lf == lm
        for a, b in zip(gf, gm):
            np.testing.assert_array_equal(a, b)
    assert set(model._workspaces) == {12, 5, 2}


# -- without per-layer widths: as before -----------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("batchnorm", [True, False])
def test_widths_equal_to_hidden_give_identical_results(dtype, batchnorm):
    x, y = make_data(n=9)
    plain = MLP(D, K, hidden=6, layers=4, batchnorm=batchnorm, dtype=dtype, rng=np.random.default_rng(3))
    same = MLP(D, K, hidden=6, layers=4, hidden2=6, hidden3=6, hidden4=6, batchnorm=batchnorm, dtype=dtype,
               rng=np.random.default_rng(3))
    assert plain.param_names == same.param_names and plain.buffer_names == same.buffer_names
    for _ in range(3):
        lp, ap, gp = plain.loss_and_grads(x, y)
        ls, as_, gs = same.loss_and_grads(x, y)
        assert (lp, ap) == (ls, as_)
        for p, q, g, h in zip(plain.params, same.params, gp, gs):
            np.testing.assert_array_equal(g, h)
            p -= 0.1 * g
            q -= 0.1 * h
    for p, q in zip(plain.buffers, same.buffers):
        np.testing.assert_array_equal(p, q)
    np.testing.assert_array_equal(plain.logits(x), same.logits(x))


def test_a_model_without_widths_has_the_config_and_options_it_had():
    m = MLP(D, K, hidden=6, layers=2, rng=np.random.default_rng(0))
    assert m.config == {"n_features": D, "n_classes": K, "hidden": 6, "layers": 2, "batchnorm": True,
                        "dtype": "float32", "bn_momentum": 0.1, "bn_eps": 1e-5}
    assert m.options == {"hidden": 6, "layers": 2, "batchnorm": True, "bn_momentum": 0.1, "bn_eps": 1e-5}
    assert repr(m) == "MLP(4, 3, hidden=6, layers=2, batchnorm=True, dtype=float32)"
    w = make()
    assert w.config["hidden2"] == 5 and w.config["hidden3"] == 3 and "hidden4" not in w.config
    assert repr(w) == "MLP(4, 3, hidden=8, layers=3, hidden2=5, hidden3=3, batchnorm=True, dtype=float32)"


@pytest.mark.parametrize("dtype", DTYPES)
def test_widths_of_absent_layers_are_unused(dtype):
    x, y = make_data()
    plain = MLP(D, K, hidden=6, layers=2, dtype=dtype, rng=np.random.default_rng(1))
    unused = MLP(D, K, hidden=6, layers=2, hidden3=50, hidden4="7", dtype=dtype, rng=np.random.default_rng(1))
    assert unused.widths == (6, 6) and unused.n_params == plain.n_params
    assert unused.options["hidden3"] == 50 and unused.options["hidden4"] == 7  # kept, as given
    lp, _, gp = plain.loss_and_grads(x, y)
    gp = [g.copy() for g in gp]
    lu, _, gu = unused.loss_and_grads(x, y)
    assert lp == lu
    for g, h in zip(gp, gu):
        np.testing.assert_array_equal(g, h)
    # the state of one loads into the other: the unused widths make no arrays
    unused.load_state(plain.state())


# -- options and limits --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["hidden2", "hidden3", "hidden4"])
@pytest.mark.parametrize("value", [0, -3, "abc", 2.5, True])
def test_a_bad_width_is_one_line_naming_the_option(name, value):
    with pytest.raises(UsageError, match=f"^model 'mlp': {name} must be an integer >= 1 or none, got {value!r}$"):
        MLP(D, K, layers=1, rng=np.random.default_rng(0), **{name: value})


def test_widths_arrive_as_strings_or_none():
    a = MLP(D, K, hidden=8, layers=3, hidden2="5", hidden3="3", hidden4="none", rng=np.random.default_rng(0))
    b = make()
    assert a.options == b.options and a.widths == b.widths
    for p, q in zip(a.params, b.params):
        np.testing.assert_array_equal(p, q)


def test_the_command_line_refuses_a_bad_width_in_one_line(tmp_path):
    result = cli("train", "--epochs", "1", "--model-opt", "hidden2=abc")
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: model 'mlp': hidden2 must be an integer >= 1 or none, got 'abc'"


@settings(max_examples=30, deadline=None)
@given(d=st.integers(1, 9), k=st.integers(2, 5), hidden=st.integers(1, 7), layers=st.integers(0, 5),
       own=st.lists(st.one_of(st.none(), st.integers(1, 9)), min_size=3, max_size=3), batchnorm=st.booleans())
def test_the_size_counts_each_layer_s_width_exactly(d, k, hidden, layers, own, batchnorm):
    m = MLP(d, k, hidden=hidden, layers=layers, hidden2=own[0], hidden3=own[1], hidden4=own[2],
            batchnorm=batchnorm, rng=np.random.default_rng(0), dtype=np.float64)
    n_params, per_row = model_module._mlp_size(d, k, hidden, layers, batchnorm, own)
    assert n_params == m.n_params
    ws = m._workspace(3)
    allocated = sum(a.size for a in vars(ws).values() if isinstance(a, np.ndarray))
    allocated += sum(a.size for arrays in (ws.h, ws.z, ws.dh) for a in arrays if a is not None)
    assert allocated <= 3 * per_row
    if not any(own):
        assert (n_params, per_row) == model_module._mlp_size(d, k, hidden, layers, batchnorm)


def test_a_wide_layer_beyond_the_limit_is_refused_naming_its_option():
    with pytest.raises(UsageError) as info:
        MLP(64, 10, hidden=8, layers=3, hidden2=10**5, hidden3=10**5, rng=np.random.default_rng(0))
    text = str(info.value)
    assert "\n" not in text and f"{MAX_PARAMS:,}" in text
    assert text.startswith("model 'mlp': hidden=8, hidden2=100000, hidden3=100000 with layers=3 ")
    assert text.endswith("lower --hidden, hidden2, hidden3 or --layers")
    MLP(64, 10, hidden=8, layers=2, hidden3=10**9, rng=np.random.default_rng(0))  # unused: no parameters


def test_memory_counts_the_wide_layer(monkeypatch):
    monkeypatch.setattr(model_module, "memory_limit", lambda: 2**20)  # a 1 MiB machine
    MLP(8, 3, hidden=16, layers=2, rng=np.random.default_rng(0))
    with pytest.raises(UsageError, match=r"more than this machine's .*; lower --hidden, hidden2 or --layers$"):
        MLP(8, 3, hidden=16, layers=2, hidden2=20_000, rng=np.random.default_rng(0))


# -- a search, checkpoints, exported models --------------------------------------------------------


def test_a_search_over_layers_draws_hidden2_for_two_layers_or_more(tmp_path):
    db = tmp_path / "research.db"
    result = cli("train", "--strategy", "caviar", "--study", "s", "--trials", "4", "--epochs", "1",
                 "--executor", "serial", "--space", "layers=1,2,3", "--space", "hidden2=int:8..32 if layers>=2",
                 "--store", db, "--plot", tmp_path / "curves.png")
    assert result.exit_code == 0, result.output
    connection = sqlite3.connect(db)
    try:
        rows = connection.execute("SELECT config, status FROM trials ORDER BY number").fetchall()
    finally:
        connection.close()
    assert len(rows) == 4 and {status for _, status in rows} == {"finished"}
    configs = [json.loads(text) for text, _ in rows]
    for config in configs:
        assert ("hidden2" in config) == (config["layers"] >= 2)
        assert 8 <= config.get("hidden2", 8) <= 32
    # The best trial exported as a model file: rebuilt with its widths, it scores as it did.
    wide = next(number for number, config in enumerate(configs) if config["layers"] >= 2)
    exported = cli("export-model", "s", "--trial", wide, "--store", db, "-o", tmp_path / "model.npz")
    assert exported.exit_code == 0, exported.output
    model = load_model(tmp_path / "model.npz")
    assert model.model.widths[1] == configs[wide]["hidden2"]
    shown = json.loads(cli("show", "s", "--store", db, "--json").stdout)["trials"]
    data = load_digits()
    raw = data.x_val * data.feature_scale + data.feature_mean
    best = next(row for row in shown if row["number"] == wide)
    assert (model.predict(raw) == data.y_val).mean() == pytest.approx(best["best_val_acc"])


def test_a_checkpoint_round_trips(tmp_path):
    x, y = make_data()
    a = randomize(make(seed=1))
    a.loss_and_grads(x, y)  # moves the running statistics
    checkpoint.save(tmp_path / "m.npz", {f"model.{name}": v for name, v in a.state().items()})
    config = dict(a.config)
    b = MLP(config.pop("n_features"), config.pop("n_classes"), rng=np.random.default_rng(9), **config)
    b.load_state({k[len("model."):]: v for k, v in checkpoint.load(tmp_path / "m.npz").items()
                  if k.startswith("model.")})
    for name, array in a.state().items():
        np.testing.assert_array_equal(b.state()[name], array, err_msg=name)
    np.testing.assert_array_equal(a.logits(x), b.logits(x))
    with pytest.raises(ValueError, match=r"W2.*shape \(8, 5\), expected \(8, 8\)"):
        MLP(D, K, hidden=8, layers=3, rng=np.random.default_rng(0)).load_state(a.state())


def test_a_run_with_widths_resumes_from_its_checkpoint_to_the_same_curve(tmp_path):
    config = {"layers": 3, "hidden": 16, "hidden2": 8, "hidden3": 4, "seed": 3}
    straight = research.train(config, epochs=2)
    research.train(config, epochs=1, checkpoint_path=tmp_path / "run.npz")
    resumed = research.train(config, epochs=2, checkpoint_path=tmp_path / "run.npz", resume=True)
    assert [row["val_loss"] for row in resumed.history] == [row["val_loss"] for row in straight.history]


@pytest.mark.parametrize("options", [{"hidden": 8, "layers": 3, "hidden2": 5, "hidden3": 3},
                                     {"hidden": 8, "layers": 2}])  # as a file written before the widths
def test_an_exported_model_loads_back_and_predicts_the_same(tmp_path, options):
    x, y = make_data(n=20)
    m = randomize(MLP(D, K, rng=np.random.default_rng(4), **options))
    m.loss_and_grads(x, y)
    arrays = model_arrays("mlp", options, (D,), ("a", "b", "c"), "float32", m.state(), None, None, {"trial": 0})
    loaded = load_model(write_model(tmp_path / "model.npz", arrays))
    assert loaded.model.widths == m.widths and loaded.model.config == m.config
    np.testing.assert_array_equal(loaded.logits(x), m.logits(x))
    np.testing.assert_array_equal(loaded.predict(x), m.predict(x))
